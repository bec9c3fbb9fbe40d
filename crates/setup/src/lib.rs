//! vfiokit's rules: what a host needs for passthrough, what is wrong with it, and the plan that
//! fixes it.
//!
//! The flow is facts → rules → plan. [`HostFacts::gather`] reads everything once through a
//! [`SysRoot`](vfiokit_sysfs::SysRoot): the PCI/IOMMU/USB host model, the boot loader's command
//! line file, `/etc/modules`, `/etc/modprobe.d`, the VM configs, cluster mappings, the QEMU
//! version and the ROM files in `/usr/share/kvm`; [`HostFacts::gather_for`] limits the reads
//! about single functions and files (reset methods, ROM files) to a request's [`Scope`] and what
//! the VM configs name. Every planner and check below is a pure function of those facts and a
//! request:
//!
//! - [`rules::RULES`], **one rule table**: each rule has a stable id (the `check` of a finding),
//!   detects its findings and, where a file edit can fix one, carries that edit ([`rules::Fix`]).
//!   [`audit`] runs the table (`vfiokit verify`); [`fix_plan`] turns every fixable finding into a
//!   [`Plan`](vfiokit_plan::Plan) (`verify --fix`); [`host::plan`] plans the requested devices and
//!   the same fixes (`setup-host`), so the planner and the auditor cannot disagree.
//! - [`host::plan`]: kernel command line, modules, modprobe.d for the devices to give away, or a
//!   typed [`Refusal`] naming every host-critical function that would leave with them.
//! - [`vm::plan`]: the VM config (legacy-mode iGPU, devices, USB redirection by id or port).
//! - [`mapping::plan`]: Proxmox cluster resource mappings from each node's host.
//!
//! Applying a plan is [`vfiokit_plan::apply`]'s job; this crate never writes.
//!
//! ```
//! use vfiokit_setup::{HostFacts, host};
//! use vfiokit_sysfs::SysRoot;
//!
//! let root = SysRoot::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/elitedesk-800-g4/fresh"))?;
//! let facts = HostFacts::gather(&root)?;
//! let request = host::Request { devices: vec!["00:02.0".parse()?, "00:14.3".parse()?], ..Default::default() };
//! let planned = host::plan(&facts, &request)?.map_err(|refusal| refusal.to_string())?;
//! assert!(planned.plan.render().contains("+options vfio-pci ids=8086:3e92,8086:a370"));
//! // The seed's audio function shares its group with the NIC behind the default route.
//! let refused = host::plan(&facts, &host::Request { devices: vec!["00:1f.3".parse()?], ..Default::default() })?;
//! assert!(refused.is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod edit;
pub mod explain;
mod facts;
pub mod gpu;
pub mod host;
pub mod inspect;
pub mod mapping;
mod refusal;
pub mod reset;
pub mod rules;
pub mod share;
pub mod vm;

use std::path::PathBuf;

pub use facts::{HostFacts, Scope, TextFile, VmFile, kernel_version};
pub use refusal::{Harm, Refusal};
pub use rules::{Finding, Severity, audit, fix_plan};

/// What can stop a planner or the gathering of facts (a refusal by a safety rule is not an
/// error: planners return it as a [`Refusal`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the host failed.
    #[error(transparent)]
    Sys(#[from] vfiokit_sysfs::Error),
    /// The host model could not be read.
    #[error(transparent)]
    Host(#[from] vfiokit_iommu::Error),
    /// A configuration file could not be read or edited.
    #[error(transparent)]
    Kcmdline(#[from] vfiokit_kcmdline::Error),
    /// No such PCI device on this host.
    #[error("no PCI device {0} on this host")]
    NoDevice(vfiokit_pci::PciAddress),
    /// Without IOMMU groups nothing can be checked or given away.
    #[error(
        "the IOMMU is off on this host, so what leaves with each device cannot be checked: enable VT-d \
         (Intel) or AMD-Vi (AMD) in the firmware setup, boot with intel_iommu=on (Intel), then plan again"
    )]
    IommuOff,
    /// Neither boot loader configuration file exists.
    #[error("cannot find the boot loader's command line: {0}")]
    NoBootLoader(String),
    /// The running kernel's release could not be read.
    #[error("{}: cannot read the running kernel's release", .0.display())]
    NoRelease(PathBuf),
    /// A VM config that does not exist.
    #[error("VM {vmid} has no config: looked for {local} and {nodes}/*/qemu-server/{vmid}.conf")]
    NoVmConfig {
        /// The VM.
        vmid: u32,
        /// The local path looked at.
        local: String,
        /// The nodes directory looked at.
        nodes: String,
    },
    /// A file that is not UTF-8 text.
    #[error("{}: not UTF-8 text (invalid byte at offset {offset})", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Where the first invalid byte is.
        offset: usize,
    },
    /// A request that cannot be planned, with why.
    #[error("{0}")]
    Invalid(String),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// `vendor:device` of a function (`8086:3e92`), as modprobe's `ids=` and Proxmox write it.
pub(crate) fn id_of(d: &vfiokit_pci::PciDevice) -> String {
    d.id().to_string()
}
