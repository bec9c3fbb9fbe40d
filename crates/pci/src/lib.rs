//! PCI functions as Linux shows them in sysfs.
//!
//! Every PCI function has a directory under `/sys/bus/pci/devices/<domain:bus:device.function>`
//! with its `uevent` (driver, class, ids, subsystem ids, modalias in one read), the attribute
//! files that repeat it (`vendor`, `device`, `subsystem_*`, `class`, `modalias`), `revision`, the
//! binary `config` space, a `driver` link to the driver bound to it, an `iommu_group` link and,
//! on kernels from 5.15, `reset_method`. This crate reads them into [`PciDevice`]s through a
//! [`SysRoot`](vfiokit_sysfs::SysRoot), so the same code reads a live host (`/`) or a recorded one
//! (`testdata/…`): `uevent` and `config` first, the attribute files where a recording has no
//! `uevent`. It adds what the files only imply:
//!
//! - [`PciAddress`], [`VendorId`], [`DeviceId`], [`PciId`] (`vendor:device`), [`ClassCode`]:
//!   strict parsing, canonical display;
//! - names from the PCI id database ([`vendor_name`], [`device_name`], [`ClassCode::name`]);
//! - capabilities from the config space ([`ConfigSpace`]): PCI Express type (a root-complex
//!   integrated endpoint such as an Intel iGPU, a root port), Function Level Reset, PM, MSI/MSI-X,
//!   ACS ([`AcsFlags`] as lspci decodes them), SR-IOV; a capability list cut short is a problem
//!   naming the file, never a panic;
//! - reset methods ([`PciScan::reset_methods`]): the kernel's `reset_method` where it has one,
//!   else what config space and topology allow;
//! - SR-IOV state ([`Sriov`]) and mediated device types ([`MdevType`], below i915);
//! - which kernel module would claim a device ([`ModuleAliases`], `modules.alias` as modprobe reads it).
//!
//! It never reads `/etc`.
//!
//! ```
//! use vfiokit_pci::{scan, PciAddress};
//! use vfiokit_sysfs::SysRoot;
//!
//! let root = SysRoot::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/elitedesk-800-g4/fresh"))?;
//! let host = scan(&root)?;
//! let igpu = host.get("00:02.0".parse::<PciAddress>()?).ok_or("no iGPU")?;
//! assert_eq!(igpu.class.to_string(), "030000");
//! assert_eq!(igpu.driver.as_deref(), Some("i915"));
//! assert_eq!(igpu.id().to_string(), "8086:3e92");
//! assert_eq!(host.reset_methods(igpu).unwrap(), ["flr", "pm"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod address;
mod alias;
mod class;
pub mod config;
mod device;

pub use address::{DeviceId, PciAddress, PciId, VendorId};
pub use alias::{ModuleAliases, fnmatch};
pub use class::{ClassCode, device_name, vendor_name};
pub use config::{Acs, AcsFlags, ConfigSpace, PcieType, SriovCap};
pub use device::{MdevType, PciDevice, PciScan, ResetMethods, Sriov, read_device, scan, scan_with};

/// Errors of this crate: input that is not a PCI address, id or class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Not `[domain:]bus:device.function`.
    #[error("invalid PCI address {input:?}: {reason}")]
    BadAddress {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not four hex digits.
    #[error("invalid PCI id {input:?}: expected four hex digits")]
    BadId {
        /// What was given.
        input: String,
    },
    /// Not `vendor:device` with four hex digits on each side.
    #[error("invalid PCI id {input:?}: expected vendor:device, four hex digits each")]
    BadPciId {
        /// What was given.
        input: String,
    },
    /// Not six hex digits.
    #[error("invalid PCI class {input:?}: expected six hex digits")]
    BadClass {
        /// What was given.
        input: String,
    },
}

/// Reads the `modules.alias` of the running kernel under `root` (release from
/// `/proc/sys/kernel/osrelease`). `Ok(None)` when the host has no such file.
pub fn load_module_aliases(
    root: &vfiokit_sysfs::SysRoot,
) -> Result<Option<ModuleAliases>, vfiokit_sysfs::Error> {
    let Some(release) = root.read_attr_opt(&root.proc_osrelease())? else {
        return Ok(None);
    };
    let path = root.modules_alias(release.trim());
    Ok(root
        .read_attr_opt(&path)?
        .map(|text| ModuleAliases::parse(&text)))
}
