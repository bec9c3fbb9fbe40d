//! `vfiokit` (run as `cargo xtask …` in the repository): the command-line composer.
//!
//! Thin by design: argument parsing, output (human and JSON) and exit codes live here; every rule
//! lives in a library crate. Exit codes: 0 done, 1 error (bad input, I/O), 2 usage,
//! 3 refused by a safety rule or problems found.

/// Writes to stdout like std's `print!`, but a reader that went away (`vfiokit inspect | head`)
/// ends the program quietly, as the shell expects, instead of std's panic. Shadows `print!` in
/// every module below.
macro_rules! print {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($arg)*) {
            $crate::stdout_failed(e);
        }
    }};
}

/// `println!` with the same handling of a closed pipe as [`print!`].
macro_rules! println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::stdout_failed(e);
        }
    }};
}

mod capture;
#[cfg(feature = "dev")]
mod dev;
mod explain_cmd;
mod inspect;
mod setup_cmd;
mod vbios_cmd;
mod vm_cmd;

use std::path::{Path, PathBuf};
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
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
}

impl Common {
    /// The root to read: `--root`, or `/`.
    pub fn root_dir(&self) -> &Path {
        self.root.as_deref().unwrap_or(Path::new("/"))
    }

    /// Opens the root, with an error that names it.
    pub fn open_root(&self) -> anyhow::Result<vfiokit_sysfs::SysRoot> {
        let dir = self.root_dir();
        vfiokit_sysfs::SysRoot::new(dir)
            .map_err(|e| anyhow::anyhow!("cannot use {} as the host root: {e}", dir.display()))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the IOMMU state, the IOMMU groups with their devices, drivers and host roles.
    Inspect,
    /// Plan (or, with --apply, make) the host changes that give DEVICEs to VMs: kernel command line,
    /// modules, modprobe.d, initramfs. Refuses (exit 3) when the host would lose something it needs.
    SetupHost {
        /// A PCI function to give to a VM (`00:02.0`); repeat for several.
        #[arg(long = "device", value_name = "ADDR", required_unless_present_any = ["share", "vfs"], num_args = 1..)]
        devices: Vec<vfiokit_pci::PciAddress>,
        /// Accept losing this host-critical function along with a device; repeat for each one.
        #[arg(long = "force-collateral", value_name = "ADDR", num_args = 1..)]
        force_collateral: Vec<vfiokit_pci::PciAddress>,
        /// Share the Intel iGPU with VMs instead of giving it away: GVT-g, or SR-IOV with --vfs.
        #[arg(long, value_name = "ADDR", conflicts_with_all = ["devices", "force_collateral"])]
        share: Option<vfiokit_pci::PciAddress>,
        /// With --share: the number of SR-IOV virtual functions (gen 12 and later iGPUs).
        #[arg(long, value_name = "N", requires = "share", value_parser = clap::value_parser!(u16).range(1..=7))]
        vfs: Option<u16>,
        /// Write the files (and, on the root `/`, run the commands). Without it nothing changes.
        #[arg(long)]
        apply: bool,
    },
    /// Restore the files the last --apply changed, byte for byte.
    Undo,
    /// Audit the host and its VM configs against every rule; exit 3 when something is wrong.
    Verify {
        /// Also check the cluster mappings against another node's recorded host (NAME=ROOT).
        #[arg(long = "node", value_name = "NAME=ROOT", num_args = 1..)]
        nodes: Vec<vfiokit_setup::mapping::NodeSpec>,
        /// Plan the fix of every finding a file edit can fix (a diff; nothing is written).
        #[arg(long)]
        fix: bool,
        /// With --fix: write the fixes (journal and undo as for setup-host).
        #[arg(long, requires = "fix")]
        apply: bool,
    },
    /// Explain kernel, QEMU and Proxmox log lines for this host; exit 3 when one is an error.
    Explain {
        /// Log files (`-`: standard input); without one, the kernel log of the host at --root.
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Proxmox cluster resource mappings.
    #[command(subcommand)]
    Mapping(MappingCommand),
    /// Plan (or, with --apply, make) the VM config changes that give it the iGPU, devices and USB devices.
    #[command(group(clap::ArgGroup::new("what").required(true).multiple(true)
        .args(["igd", "devices", "usb", "primary", "roms", "clone_from", "mapping", "mdev"])))]
    SetupVm {
        /// The VM id (`/etc/pve/qemu-server/<vmid>.conf`).
        #[arg(long)]
        vmid: u32,
        /// The Intel iGPU to give in legacy mode (the VM's only display), normally 00:02.0.
        #[arg(long, value_name = "ADDR")]
        igd: Option<vfiokit_pci::PciAddress>,
        /// Further PCI functions to give; repeat or list several.
        #[arg(long = "device", value_name = "ADDR", num_args = 1..)]
        devices: Vec<vfiokit_pci::PciAddress>,
        /// USB devices to redirect by id (VID:PID); repeat or list several.
        #[arg(long, value_name = "VID:PID", num_args = 1..)]
        usb: Vec<vfiokit_usbredir::UsbId>,
        /// The iGPU's ROM file, under /usr/share/kvm.
        #[arg(long, value_name = "NAME")]
        romfile: Option<String>,
        /// Make this passed display controller the VM's display (x-vga=1, vga: none).
        #[arg(long, value_name = "ADDR")]
        primary: Option<vfiokit_pci::PciAddress>,
        /// A ROM file under /usr/share/kvm for a passed device (romfile=); repeat for each.
        #[arg(long = "rom", value_name = "ADDR=FILE", num_args = 1..)]
        roms: Vec<vfiokit_setup::gpu::RomArg>,
        /// Copy smbios1 and vmgenid from this config (keeps a cloned Windows licensed).
        #[arg(long, value_name = "FILE")]
        clone_from: Option<PathBuf>,
        /// Write the config. Without it nothing changes.
        #[arg(long)]
        apply: bool,
        /// Use this cluster resource mapping (`/etc/pve/mapping/pci.cfg`, `usb.cfg`) instead of
        /// host addresses; a mapping of an Intel iGPU at 00:02.0 on every node is set up in legacy mode.
        #[arg(long, value_name = "ID")]
        mapping: Option<String>,
        /// A GVT-g vGPU of the iGPU: ADDR=TYPE (`00:02.0=i915-GVTg_V5_4`); repeat for several.
        #[arg(long, value_name = "ADDR=TYPE", num_args = 1.., value_parser = parse_mdev)]
        mdev: Vec<(vfiokit_pci::PciAddress, String)>,
        /// Print the equivalent `qm set` command instead of a diff (nothing is written).
        #[arg(long, value_name = "FORMAT", value_parser = ["qm"], conflicts_with = "apply")]
        print: Option<String>,
        /// Plan the known remedy for passed functions without a reset method: vendor-reset for
        /// the AMD reset-bug families, the remove-and-rescan hookscript (a workaround) for an APU GPU.
        #[arg(long, alias = "reset-hook")]
        reset_remedy: bool,
    },
    /// Record the host at --root into a new directory that every command can replay (read-only).
    Capture {
        /// The directory to create (must not exist).
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: PathBuf,
        /// Replace MAC and IP addresses, serial numbers, host names and UUIDs, consistently.
        #[arg(long)]
        anonymize: bool,
    },
    /// PCI option ROMs: check, build from EFI drivers, extract from vendor firmware.
    #[command(subcommand)]
    Vbios(vbios_cmd::VbiosCommand),
    /// Proxmox VM config files: lint, re-render, show.
    #[command(subcommand)]
    Vm(VmCommand),
    /// The team's commands (`test`, `bench`, `fakesys`), with the `dev` feature only.
    #[cfg(feature = "dev")]
    #[command(flatten)]
    Dev(dev::DevCommand),
}

#[derive(Debug, Subcommand)]
enum MappingCommand {
    /// Plan (or --apply) `/etc/pve/mapping/pci.cfg` (and `usb.cfg`) entries for a device on every node.
    Plan {
        /// The mapping id (`igpu`).
        #[arg(long)]
        name: String,
        /// The PCI device, `VID:DID` (`8086:3e92`).
        #[arg(long)]
        device: vfiokit_pci::PciId,
        /// A USB device to map under the same id, `VID:PID`.
        #[arg(long)]
        usb: Option<vfiokit_usbredir::UsbId>,
        /// A node and its recorded host (a capture, or `/` for this node): `NAME=ROOT`.
        #[arg(long = "node", value_name = "NAME=ROOT", required = true, num_args = 1..)]
        nodes: Vec<vfiokit_setup::mapping::NodeSpec>,
        /// Which device on a node with several: `NAME=ADDR`.
        #[arg(long = "path", value_name = "NAME=ADDR", num_args = 1.., value_parser = parse_node_path)]
        paths: Vec<(String, vfiokit_pci::PciAddress)>,
        /// Write the files under --root (the root holding /etc/pve).
        #[arg(long)]
        apply: bool,
    },
}

/// `NODE=ADDR`.
fn parse_node_path(s: &str) -> Result<(String, vfiokit_pci::PciAddress), String> {
    let (node, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NODE=ADDR, got {s:?}"))?;
    Ok((
        node.to_string(),
        addr.parse()
            .map_err(|e: vfiokit_pci::Error| e.to_string())?,
    ))
}

/// `ADDR=TYPE` of `--mdev`.
fn parse_mdev(s: &str) -> Result<(vfiokit_pci::PciAddress, String), String> {
    let (addr, ty) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ADDR=TYPE, got {s:?}"))?;
    let addr = addr
        .parse()
        .map_err(|e: vfiokit_pci::Error| e.to_string())?;
    Ok((addr, ty.to_string()))
}

#[derive(Debug, Subcommand)]
enum VmCommand {
    /// Check configs with Proxmox's rules and messages; exit 3 on errors. With --root, also
    /// against that host (ROM files, devices).
    Lint {
        /// Config files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a config re-rendered: byte for byte what Proxmox accepts.
    Fmt {
        /// The config file.
        file: PathBuf,
        /// Print Proxmox's own canonical form instead (sorted keys, dropped lines gone).
        #[arg(long)]
        canonical: bool,
    },
    /// A typed view: machine, firmware, devices, USB, the legacy-IGD verdict.
    Show {
        /// The config file.
        file: PathBuf,
    },
}

/// A file's text, with an error naming the file and the offset of a byte that is not UTF-8.
fn read_utf8(path: &Path) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// Standard output failed: a closed pipe ends the program with the shell's 141 (128 + SIGPIPE);
/// anything else is an error like any other.
fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(1);
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect => inspect::run(&cli.common),
        Command::SetupHost {
            devices,
            force_collateral,
            share,
            vfs,
            apply,
        } => match share {
            Some(device) => setup_cmd::share_host(
                &cli.common,
                vfiokit_setup::share::Request { device, vfs },
                apply,
            ),
            None => setup_cmd::setup_host(&cli.common, &devices, &force_collateral, apply),
        },
        Command::Undo => setup_cmd::undo(&cli.common),
        Command::Verify { nodes, fix, apply } => setup_cmd::verify(&cli.common, &nodes, fix, apply),
        Command::Explain { files } => explain_cmd::run(&cli.common, &files),
        Command::Mapping(MappingCommand::Plan {
            name,
            device,
            usb,
            nodes,
            paths,
            apply,
        }) => setup_cmd::mapping_plan(
            &cli.common,
            vfiokit_setup::mapping::Request {
                name,
                device,
                usb,
                nodes: &[],
                paths,
            },
            &nodes,
            apply,
        ),
        Command::SetupVm {
            vmid,
            igd,
            devices,
            usb,
            romfile,
            primary,
            roms,
            clone_from,
            mapping,
            mdev,
            apply,
            print,
            reset_remedy,
        } => setup_cmd::setup_vm(
            &cli.common,
            vfiokit_setup::vm::Request {
                vmid,
                igd,
                devices,
                usb,
                romfile,
                clone_from: None,
                mapping,
                primary,
                roms,
                mdev,
                reset_remedy,
            },
            clone_from,
            apply,
            print.is_some(),
        ),
        Command::Vbios(cmd) => vbios_cmd::run(&cli.common, cmd),
        Command::Capture { output, anonymize } => capture::run(&cli.common, &output, anonymize),
        Command::Vm(VmCommand::Lint { files }) => vm_cmd::lint(&cli.common, &files),
        Command::Vm(VmCommand::Fmt { file, canonical }) => vm_cmd::fmt(&file, canonical),
        Command::Vm(VmCommand::Show { file }) => vm_cmd::show(&cli.common, &file),
        #[cfg(feature = "dev")]
        Command::Dev(cmd) => dev::run(&cli.common, cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            // Tools reading --json get the error as JSON too: `{"error": message}`.
            if cli.common.json {
                println!("{}", serde_json::json!({ "error": format!("{err:#}") }));
            }
            ExitCode::from(1)
        }
    }
}
