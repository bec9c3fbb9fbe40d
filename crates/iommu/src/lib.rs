//! IOMMU groups and what giving a device to a VM costs the host.
//!
//! The IOMMU isolates DMA per *group* (`/sys/kernel/iommu_groups/<n>/devices/`): a VM gets a whole
//! group or nothing, so assigning one function detaches every other member of its group from the
//! host too. This crate reads the IOMMU's state (enabled, Intel or AMD, interrupt remapping, an ACS
//! override on the command line), the groups, whether the kernel would let VFIO use each group now
//! (the rule since Linux 5.19: every member unbound or held by vfio-pci, a vfio variant, pci-stub
//! or pcieport), the **host role** of each function (the NIC of the default route or of another
//! network the host has an address on, the root disk's controller, the USB controller with the
//! keyboard, chipset functions), and the **collateral** of assigning a device: every other
//! function that leaves the host with it, with its roles. A requested bridge is refused outright
//! ([`Error::RequestedBridge`], naming the devices behind it): vfio-pci takes only functions with
//! a normal header.
//!
//! Roles follow where a function sits and what the host does with it, not its class alone:
//! chipset (`platform-device`) roles only go to functions on a root bus, so a card's own
//! functions behind its bridge are never platform devices, and a driverless host bridge without
//! BARs that is not the root complex (AMD's "Dummy Host Bridge") is a placeholder the host does
//! not miss. The root disk's controllers are traced through device-mapper, LVM and md, and on
//! ZFS through the root pool's vdevs as `zpool status -P` lists them ([`zpool_vdevs`]); only a
//! root that cannot be traced marks every storage controller.
//!
//! It edits nothing.
//!
//! ```
//! use vfiokit_iommu::{Host, HostRole};
//! use vfiokit_sysfs::SysRoot;
//!
//! let root = SysRoot::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/elitedesk-800-g4/configured"))?;
//! let host = Host::scan(&root)?;
//! let audio = host.device("00:1f.3".parse()?).ok_or("no audio function")?;
//! let lost = host.collateral(audio)?;
//! let nic = lost.iter().find(|c| c.address.to_string() == "0000:00:1f.6").ok_or("no NIC")?;
//! assert!(host.roles_of(nic.address).iter().any(|r| r.role == HostRole::DefaultRouteNic));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod groups;
mod roles;
mod safety;
mod state;
mod zpool;

pub use groups::{Blocker, CollateralDevice, IommuGroup, collateral, read_groups, viability};
pub use roles::{HostRole, Role, Roles, find_roles};
pub use safety::{Assessment, Harm, assess};
pub use state::{IommuKind, IommuState, cmdline_value, read_state};
pub use zpool::{PoolVdevs, zpool_vdevs};

use vfiokit_pci::{PciAddress, PciDevice, PciScan, ResetMethods};
use vfiokit_sysfs::{Error as SysError, SysRoot};
use vfiokit_usbredir::{SysfsBackend, UsbBackend, UsbScan};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The host could not be read at all (no `/sys/bus/pci/devices` under the root).
    #[error("not a Linux host root: {0}")]
    NotAHost(#[source] SysError),
    /// No PCI function at that address.
    #[error("no PCI device {address} on this host")]
    UnknownDevice {
        /// The address asked for.
        address: PciAddress,
    },
    /// A bridge was requested: vfio-pci only takes functions with a normal (type 0) header, and
    /// the devices behind a bridge are what a VM can have. A refusal, not a host failure.
    #[error(
        "{address} ({name}) is a PCI bridge, which no VM can have: vfio-pci refuses every function whose header type is not normal (type 0), so bridges stay with the host on pcieport; {}",
        behind_words(behind)
    )]
    RequestedBridge {
        /// The bridge.
        address: PciAddress,
        /// What it is ("Intel Corporation Alder Lake-N PCI Express Root Port #7").
        name: String,
        /// The devices behind it ([`Host::behind`]): what can be requested instead.
        behind: Vec<PciAddress>,
    },
    /// The device has no IOMMU group: the IOMMU is off, or it does not translate this device.
    #[error(
        "{address} has no IOMMU group: turn the IOMMU on (VT-d or AMD-Vi in the firmware setup, intel_iommu=on for Intel) and reboot"
    )]
    NoGroup {
        /// The device.
        address: PciAddress,
    },
}

/// What to request instead of a bridge, for [`Error::RequestedBridge`].
fn behind_words(behind: &[PciAddress]) -> String {
    if behind.is_empty() {
        return "no device is behind it, so there is nothing to give a VM there".into();
    }
    let list: Vec<String> = behind.iter().map(ToString::to_string).collect();
    format!("the functions behind it: {}", list.join(" "))
}

/// A host as vfiokit sees it: PCI functions, IOMMU state and groups, and host roles.
#[derive(Debug)]
pub struct Host {
    /// The IOMMU.
    pub iommu: IommuState,
    /// Every PCI function, sorted by address.
    pub pci: PciScan,
    /// IOMMU groups, sorted by number (empty without an IOMMU).
    pub groups: Vec<IommuGroup>,
    /// Roles of the functions that have any.
    pub roles: Roles,
    /// USB devices, with the controller each hangs off.
    pub usb: UsbScan,
    /// Everything that could not be read, each naming its path (the PCI scan's problems included).
    pub problems: Vec<SysError>,
}

impl Host {
    /// Everything the scan could not read, PCI and IOMMU files and USB devices alike, for
    /// people: each names its path or device.
    pub fn all_problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        out.extend(self.usb.problems.iter().cloned());
        out
    }

    /// Reads the host under `root`. Only a root without `/sys/bus/pci/devices` is an error;
    /// anything else that cannot be read becomes a problem and the rest is still reported.
    pub fn scan(root: &SysRoot) -> Result<Host, Error> {
        Host::scan_with(root, ResetMethods::Now)
    }

    /// [`Host::scan`], with the PCI functions' `reset_method` files read now or left for
    /// [`PciScan::read_reset_methods`](vfiokit_pci::PciScan::read_reset_methods).
    pub fn scan_with(root: &SysRoot, reset: ResetMethods) -> Result<Host, Error> {
        let mut pci = vfiokit_pci::scan_with(root, reset).map_err(Error::NotAHost)?;
        let mut problems = std::mem::take(&mut pci.problems);
        let groups = groups::read_groups_scanned(root, &pci, &mut problems);
        let iommu = read_state(root, !groups.is_empty(), &mut problems);
        let usb = SysfsBackend::new(root.clone())
            .devices()
            .unwrap_or_else(|e| {
                problems.push(SysError::Parse {
                    path: root.sys_bus_devices("usb"),
                    expected: "a readable USB device list",
                    found: e.to_string(),
                });
                UsbScan::default()
            });
        let roles = find_roles(root, &pci, &usb, &mut problems);
        Ok(Host {
            iommu,
            pci,
            groups,
            roles,
            usb,
            problems,
        })
    }

    /// The function at `address`.
    pub fn device(&self, address: PciAddress) -> Option<&PciDevice> {
        self.pci.get(address)
    }

    /// The roles of a function (empty when it has none).
    pub fn roles_of(&self, address: PciAddress) -> &[Role] {
        self.roles.get(&address).map_or(&[], Vec::as_slice)
    }

    /// The USB devices below the controller at `address`.
    pub fn usb_below(
        &self,
        address: PciAddress,
    ) -> impl Iterator<Item = &vfiokit_usbredir::UsbDevice> {
        self.usb
            .devices
            .iter()
            .filter(move |d| d.controller == Some(address))
    }

    /// The group with number `id`.
    pub fn group(&self, id: u32) -> Option<&IommuGroup> {
        groups::find_group(&self.groups, id)
    }

    /// Why a group cannot be given to a VM now; empty when it can.
    pub fn blockers(&self, group: &IommuGroup) -> Vec<Blocker> {
        viability(group, &self.pci)
    }

    /// The devices behind the bridge at `bridge`: every function whose chain of parents passes
    /// through it and that is no bridge itself, sorted.
    pub fn behind(&self, bridge: PciAddress) -> Vec<PciAddress> {
        self.pci
            .devices
            .iter()
            .filter(|d| !d.is_bridge())
            .filter(|d| {
                let mut parent = d.parent;
                // A chain longer than the buses a domain can have is a loop in a broken recording.
                for _ in 0..=256 {
                    match parent {
                        Some(p) if p == bridge => return true,
                        Some(p) => parent = self.device(p).and_then(|d| d.parent),
                        None => return false,
                    }
                }
                false
            })
            .map(|d| d.address)
            .collect()
    }

    /// The other functions that leave the host when `device` is given to a VM.
    pub fn collateral(&self, device: &PciDevice) -> Result<Vec<CollateralDevice>, Error> {
        collateral(device, &self.groups, &self.pci).ok_or(Error::NoGroup {
            address: device.address,
        })
    }
}
