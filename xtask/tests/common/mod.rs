//! What the end-to-end tests share: running the built `vfiokit` binary.

use std::process::Command;

/// Runs `vfiokit ARGS…`: exit code (-1 when killed by a signal), stdout, stderr.
pub fn vfiokit(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vfiokit"))
        .args(args)
        .output()
        .expect("run vfiokit");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
