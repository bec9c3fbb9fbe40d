//! `vfiokit` (run as `cargo xtask …` in the repository): the command-line composer.
//!
//! Thin by design: argument parsing, output (human and JSON) and exit codes live here; every rule
//! lives in a library crate. Exit codes: 0 done, 1 error (bad input, I/O), 2 usage,
//! 3 refused by a safety rule or problems found.

mod apply;
mod inspect;
mod plan;
mod setup_cmd;
mod setup_host;
mod test_cmd;
mod verify;

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
    /// Plan (or, with --apply, make) the host changes that give DEVICEs to VMs: kernel command line,
    /// modules, modprobe.d, initramfs. Refuses (exit 3) when the host would lose something it needs.
    SetupHost {
        /// A PCI function to give to a VM (`00:02.0`); repeat for several.
        #[arg(long = "device", value_name = "ADDR", required = true, num_args = 1..)]
        devices: Vec<vfiokit_pci::PciAddress>,
        /// Accept losing this host-critical function along with a device; repeat for each one.
        #[arg(long = "force-collateral", value_name = "ADDR", num_args = 1..)]
        force_collateral: Vec<vfiokit_pci::PciAddress>,
        /// Write the files (and, on the root `/`, run the commands). Without it nothing changes.
        #[arg(long)]
        apply: bool,
    },
    /// Restore the files the last --apply changed, byte for byte.
    Undo,
    /// Audit the host and its VM configs against every rule; exit 3 when something is wrong.
    Verify,
    /// Run the whole test suite (for developers; installs pciutils first when run as root).
    #[command(hide = true)]
    Test,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect => inspect::run(&cli.common),
        Command::SetupHost {
            devices,
            force_collateral,
            apply,
        } => setup_cmd::setup_host(&cli.common, &devices, &force_collateral, apply),
        Command::Undo => setup_cmd::undo(&cli.common),
        Command::Verify => verify::run(&cli.common),
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
