//! `vfiokit` (run as `cargo xtask …` in the repository): the command-line composer.
//!
//! Thin by design: argument parsing, output (human and JSON) and exit codes live here; every rule
//! lives in a library crate. Exit codes: 0 done, 1 error (bad input, I/O), 2 usage,
//! 3 refused by a safety rule or problems found.

mod inspect;
mod test_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// PCI, GPU and USB passthrough for Proxmox VE hosts, planned and checked before anything changes.
#[derive(Debug, Parser)]
#[command(name = "vfiokit", version, about)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// The host's root directory: `/` for this host, or a recorded host such as
    /// `testdata/elitedesk-800-g4/fresh`.
    #[arg(long, global = true, default_value = "/", value_name = "DIR")]
    root: PathBuf,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the IOMMU state, the IOMMU groups with their devices, drivers and host roles.
    Inspect,
    /// Run the whole test suite (for developers; installs pciutils first when run as root).
    #[command(hide = true)]
    Test,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect => inspect::run(&cli.common),
        Command::Test => test_cmd::run_tests(),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
