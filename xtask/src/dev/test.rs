//! `cargo xtask test`: the whole test suite on a fresh machine, tools included.
//!
//! The lspci agreement tests need pciutils; the Debian package test needs dpkg-dev, lintian,
//! man-db and binutils. A test never skips because a tool is missing, so this command makes sure
//! the tools are there first: as root on a Debian-like system it installs the missing packages
//! with apt-get (saying so), otherwise it stops and says what to install.

use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

/// Whether `tool` is on the PATH.
fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The tools the tests run, each with the Debian package that has it (as `.ci/run` lists them).
const TOOLS: &[(&str, &str)] = &[
    ("lspci", "pciutils"),
    ("dpkg-shlibdeps", "dpkg-dev"),
    ("lintian", "lintian"),
    ("man", "man-db"),
    ("readelf", "binutils"),
];

fn run(cmd: &mut Command) -> anyhow::Result<bool> {
    eprintln!("$ {cmd:?}");
    Ok(cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?
        .success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Makes sure every tool of [`TOOLS`] exists, installing the missing packages as root with
/// apt-get.
fn ensure_tools() -> anyhow::Result<()> {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(t, _)| !have(t))
        .map(|(_, p)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if is_root() && have("apt-get") {
        eprintln!("installing {} (the tests need them)", missing.join(" "));
        let mut install = Command::new("apt-get");
        install
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing);
        if run(Command::new("apt-get").arg("update").arg("-qq"))? && run(&mut install)? {
            return Ok(());
        }
    }
    bail!(
        "missing tools: install {} (apt-get install), then run this again",
        missing.join(" ")
    )
}

/// Runs the test suite: nextest when installed (faster), cargo test otherwise, then the doc tests.
pub fn run_tests() -> anyhow::Result<ExitCode> {
    ensure_tools()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let nextest = Command::new(&cargo)
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let units = if nextest {
        run(Command::new(&cargo).args(["nextest", "run", "--workspace", "--no-fail-fast"]))?
    } else {
        run(Command::new(&cargo).args(["test", "--workspace", "--all-targets", "--no-fail-fast"]))?
    };
    // The team's commands (src/dev/) are compiled only with the dev feature: their unit tests too.
    let dev = run(Command::new(&cargo).args([
        "test",
        "-p",
        "xtask",
        "--features",
        "dev",
        "--bin",
        "vfiokit",
        "--no-fail-fast",
    ]))?;
    let docs = run(Command::new(&cargo).args(["test", "--workspace", "--doc"]))?;
    Ok(if units && dev && docs {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
