//! Every hostile or broken input in `testdata/bad-input` (and a few made here), through every
//! command that reads it: exit 1 or 3, a message naming the file and a position, never a panic.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use vfiokit_fakesys::{copy_recorded, testdata_dir};

fn vfiokit(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vfiokit"))
        .args(args)
        .output()
        .expect("run vfiokit");
    let code = out.status.code().unwrap_or(-1);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (code, text)
}

fn files(kind: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(testdata_dir().join("bad-input").join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Exit 1 or 3 (never 0 and never a panic's 101), and the message names `name` and a position.
fn assert_rejected(args: &[&str], name: &str) {
    let (code, text) = vfiokit(args);
    assert!(code == 1 || code == 3, "{args:?} exited {code}:\n{text}");
    assert!(
        text.contains(name),
        "{args:?} does not name {name}:\n{text}"
    );
    let positioned = text.contains("offset")
        || text.contains(&format!("{name}:"))
            && text
                .split(&format!("{name}:"))
                .skip(1)
                .any(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    assert!(positioned, "{args:?}: no line or offset in:\n{text}");
}

#[test]
fn broken_vm_configs_through_lint_fmt_and_show() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = files("vm");
    // Made here: a 10 MB line that is no key, and a link loop.
    let long = dir.path().join("long-line.conf");
    fs::write(&long, format!("memory: 1024\n{}\n", "x".repeat(10 << 20))).unwrap();
    inputs.push(long);
    let looped = dir.path().join("loop.conf");
    std::os::unix::fs::symlink("loop.conf", &looped).unwrap();
    for f in &inputs {
        let name = f.file_name().unwrap().to_str().unwrap();
        for cmd in [&["vm", "lint"][..], &["vm", "fmt"], &["vm", "show"]] {
            let mut args = cmd.to_vec();
            args.push(f.to_str().unwrap());
            if name == "loop.conf" {
                let (code, text) = vfiokit(&args);
                assert_eq!(code, 1, "{text}");
                assert!(
                    text.contains("loop.conf") && text.contains("symbolic links"),
                    "{text}"
                );
                continue;
            }
            assert_rejected(&args, name);
        }
    }
}

#[test]
fn broken_roms_through_check_and_extract() {
    for f in files("rom") {
        let name = f.file_name().unwrap().to_str().unwrap();
        let path = f.to_str().unwrap();
        let (code, text) = vfiokit(&["vbios", "check", path, "--device", "8086:3e92"]);
        assert_eq!(code, 3, "{name}: {text}");
        assert!(
            text.contains("offset") || text.contains("empty"),
            "{name}: {text}"
        );
        let (code, text) = vfiokit(&["vbios", "extract", path, "--list"]);
        assert!(code == 1 || code == 3, "{name}: exit {code}: {text}");
    }
}

#[test]
fn broken_host_files_through_setup_host_and_verify() {
    let places: [(&str, &str); 4] = [
        ("default-grub-not-utf8", "etc/default/grub"),
        ("modprobe-not-utf8.conf", "etc/modprobe.d/x.conf"),
        ("modules-not-utf8", "etc/modules"),
        ("cmdline-not-utf8", "proc/cmdline"),
    ];
    assert_eq!(
        files("etc").len(),
        places.len(),
        "every file of bad-input/etc has a place here"
    );
    for (file, place) in places {
        let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
        fs::copy(
            testdata_dir().join("bad-input/etc").join(file),
            dir.path().join(place),
        )
        .unwrap();
        let r = root.root().to_str().unwrap();
        let name = Path::new(place).file_name().unwrap().to_str().unwrap();
        for cmd in [
            &["setup-host", "--device", "00:02.0"][..],
            &["verify"],
            &["setup-host", "--device", "00:02.0", "--apply"],
        ] {
            let mut args = cmd.to_vec();
            args.extend(["--root", r]);
            if place == "proc/cmdline" && cmd[0] == "setup-host" {
                // setup-host reads the boot loader's file, not the running command line; the
                // running one is read by every scan and reported, never fatal.
                let (code, text) = vfiokit(&args);
                assert!(code == 0 || code == 1, "{text}");
                continue;
            }
            assert_rejected(&args, name);
        }
        let (code, text) = vfiokit(&["inspect", "--root", r]);
        assert_eq!(
            code, 0,
            "inspect still reports the rest of the host: {text}"
        );
    }
}

#[test]
fn files_only_root_can_read() {
    // Tests run as root: drop to nobody so that permissions bite.
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let conf = dir.path().join("etc/pve/qemu-server/100.conf");
    let mut perm = fs::metadata(&conf).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o600);
    fs::set_permissions(&conf, perm).unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_vfiokit"),
            "vm",
            "lint",
        ])
        .arg(&conf)
        .output()
        .expect("setpriv (util-linux) is needed");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("100.conf") && err.contains("Permission denied"),
        "{err}"
    );
    let _ = root;
}

#[test]
fn errors_under_json_are_json_on_stdout_too() {
    let (_dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vfiokit"))
        .args(["undo", "--json", "--root"])
        .arg(root.root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = v["error"].as_str().unwrap();
    assert!(
        message.starts_with("nothing to undo: no journal at "),
        "{message}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: nothing to undo"));
    // Nothing to undo writes nothing under the root, not even the lock.
    assert!(!root.root().join("var/lock").exists());
}
