//! The team's commands: the test runner, generated hosts, benchmarks and the Debian package. Built only with the `dev`
//! feature, which the `cargo xtask` alias turns on; the installed `vfiokit` has none of them.

mod bench;
mod dist;
mod man;
mod test;

use std::process::ExitCode;

use clap::Subcommand;

use crate::Common;

/// Commands for developers, hidden from `--help`.
#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Generated hosts for benchmarks and tests.
    #[command(subcommand, hide = true)]
    Fakesys(bench::FakesysCommand),
    /// Performance comparisons against lspci (see docs/PERFORMANCE.md).
    #[command(subcommand, hide = true)]
    Bench(bench::BenchCommand),
    /// Run the whole test suite (installs pciutils first when run as root).
    #[command(hide = true)]
    Test,
    /// Build the Debian package target/dist/vfiokit_<version>_amd64.deb (see docs/PACKAGING.md).
    #[command(hide = true)]
    Dist(dist::DistArgs),
}

/// Runs a developer command.
pub fn run(common: &Common, cmd: DevCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DevCommand::Fakesys(cmd) => bench::run_fakesys(common, cmd),
        DevCommand::Bench(cmd) => bench::run_bench(common, cmd),
        DevCommand::Test => test::run_tests(),
        DevCommand::Dist(args) => dist::run(&args),
    }
}
