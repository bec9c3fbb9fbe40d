//! `cargo xtask test`: the whole test suite on a fresh machine, tools included.
//!
//! The lspci agreement tests need pciutils. A test never skips because a tool is missing, so
//! this command makes sure the tool is there first: as root on a Debian-like system it installs
//! it with apt-get (saying so), otherwise it stops and says what to install.

use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

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

/// Makes sure `lspci` exists, installing pciutils as root with apt-get when it does not.
fn ensure_pciutils() -> anyhow::Result<()> {
    if have("lspci") {
        return Ok(());
    }
    if is_root() && have("apt-get") {
        eprintln!("lspci is missing: installing pciutils (the lspci agreement tests need it)");
        if run(Command::new("apt-get").arg("update").arg("-qq"))?
            && run(Command::new("apt-get").args(["install", "-y", "-qq", "pciutils"]))?
        {
            return Ok(());
        }
    }
    bail!("lspci is missing: install pciutils (apt-get install pciutils), then run this again")
}

/// Runs the test suite: nextest when installed (faster), cargo test otherwise, then the doc tests.
pub fn run_tests() -> anyhow::Result<ExitCode> {
    ensure_pciutils()?;
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
    let docs = run(Command::new(&cargo).args(["test", "--workspace", "--doc"]))?;
    Ok(if units && docs {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
