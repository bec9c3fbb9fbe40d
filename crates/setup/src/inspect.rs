//! `vfiokit inspect`'s report: the host model as the JSON contract spells it.
//!
//! Field names are part of the contract (`../shared/ARCHITECTURE.md`): ids are lowercase hex
//! without `0x`, classes six digits, revisions two, PCI addresses full, IOMMU groups integers.

use serde::Serialize;
use vfiokit_iommu::{Host, IommuKind};
use vfiokit_pci::{ModuleAliases, PciDevice};

/// Everything `inspect --json` prints.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// `iommu`.
    pub iommu: IommuJson<'a>,
    /// `groups`.
    pub groups: Vec<GroupJson>,
    /// `devices`.
    pub devices: Vec<DeviceJson<'a>>,
    /// `usb`.
    pub usb: Vec<UsbJson>,
    /// Files that could not be read (extension of the contract).
    pub problems: Vec<String>,
}

/// The IOMMU state.
#[derive(Debug, Serialize)]
pub struct IommuJson<'a> {
    /// `enabled`.
    pub enabled: bool,
    /// `kind`.
    pub kind: Option<IommuKind>,
    /// `interrupt_remapping`.
    pub interrupt_remapping: Option<bool>,
    /// `acs_override`.
    pub acs_override: Option<&'a str>,
}

/// One IOMMU group.
#[derive(Debug, Serialize)]
pub struct GroupJson {
    /// `id`.
    pub id: u32,
    /// `viable`.
    pub viable: bool,
    /// `devices`.
    pub devices: Vec<String>,
    /// Why the group is not viable, one entry per blocking member (extension).
    pub blockers: Vec<BlockerJson>,
}

/// A member that keeps a group from being given to a VM.
#[derive(Debug, Serialize)]
pub struct BlockerJson {
    /// `address`.
    pub address: String,
    /// `reason`.
    pub reason: String,
}

/// One USB device.
#[derive(Debug, Serialize)]
pub struct UsbJson {
    /// `bus`.
    pub bus: u16,
    /// `port`.
    pub port: String,
    /// `vendor`.
    pub vendor: String,
    /// `product`.
    pub product: String,
    /// `vendor_name`.
    pub vendor_name: Option<String>,
    /// `product_name`.
    pub product_name: Option<String>,
    /// `bDeviceClass`, two hex digits (`00`: defined per interface).
    pub class: String,
    /// `controller`.
    pub controller: Option<String>,
    /// `speed`.
    pub speed: Option<String>,
    /// What it is: input device, Bluetooth adapter, storage device, hub, device (extension).
    pub kind: &'static str,
    /// `bInterfaceClass` of each interface (extension).
    pub interfaces: Vec<String>,
}

/// One PCI function.
#[derive(Debug, Serialize)]
pub struct DeviceJson<'a> {
    /// `address`.
    pub address: String,
    /// `vendor`.
    pub vendor: String,
    /// `device`.
    pub device: String,
    /// `class`.
    pub class: String,
    /// `subsystem_vendor`.
    pub subsystem_vendor: Option<String>,
    /// `subsystem_device`.
    pub subsystem_device: Option<String>,
    /// `revision`.
    pub revision: Option<String>,
    /// `driver`.
    pub driver: Option<&'a str>,
    /// `iommu_group`.
    pub iommu_group: Option<u32>,
    /// `vendor_name`.
    pub vendor_name: Option<&'static str>,
    /// `device_name`.
    pub device_name: Option<&'static str>,
    /// `roles`.
    pub roles: Vec<&'static str>,
    /// Whether the device has an expansion ROM BAR the host can read its ROM from (extension;
    /// `null` when `resource` is missing).
    pub rom_bar: Option<bool>,
    /// Kernel modules whose aliases match the device (extension; `lspci -k`'s "Kernel modules").
    pub modules: Vec<&'a str>,
    /// The PCI Express port type (`endpoint`, `root-port`, `rc-integrated-endpoint`, …), `null`
    /// for conventional PCI.
    pub pcie_type: Option<&'static str>,
    /// Reset methods as the kernel spells them in `reset_method` (`[]`: none).
    pub reset: Vec<String>,
    /// The ACS capability register, `null` without an ACS capability.
    pub acs: Option<AcsJson>,
    /// Mediated device types (GVT-g vGPUs), omitted when the device has none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mdev_types: Vec<MdevJson>,
    /// SR-IOV state, omitted when the device has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sriov: Option<SriovJson>,
    /// For an Intel iGPU, its three modes (whole device, GVT-g, SR-IOV): supported, and what
    /// the host lacks for each (extension; omitted for other devices and without host facts).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub igpu_modes: Vec<crate::share::ModeStatus>,
}

/// The ACS capability bits (lspci's `ACSCap`).
#[derive(Debug, Serialize)]
pub struct AcsJson {
    /// Source Validation.
    pub sv: bool,
    /// Translation Blocking.
    pub tb: bool,
    /// P2P Request Redirect.
    pub rr: bool,
    /// P2P Completion Redirect.
    pub cr: bool,
    /// Upstream Forwarding.
    pub uf: bool,
    /// P2P Egress Control.
    pub ec: bool,
    /// Direct Translated P2P.
    pub dt: bool,
}

/// One mediated device type.
#[derive(Debug, Serialize)]
pub struct MdevJson {
    /// The type directory's name, what `mdev=` takes (`i915-GVTg_V5_4`).
    pub id: String,
    /// Its `name` file (`GVTg_V5_4`).
    pub name: String,
    /// Its `description`, one line.
    pub description: String,
    /// Instances that can still be created.
    pub available_instances: u32,
    /// Instances that exist (extension).
    pub instances_in_use: u32,
}

/// SR-IOV state of a physical function.
#[derive(Debug, Serialize)]
pub struct SriovJson {
    /// `sriov_totalvfs`.
    pub total_vfs: u16,
    /// `sriov_numvfs`.
    pub num_vfs: u16,
    /// The enabled virtual functions.
    pub vfs: Vec<String>,
}

/// The kernel modules whose aliases match `d` (`lspci -k`'s "Kernel modules").
pub fn modules<'a>(aliases: Option<&'a ModuleAliases>, d: &PciDevice) -> Vec<&'a str> {
    match (aliases, &d.modalias) {
        (Some(a), Some(m)) => a.modules_for(m),
        _ => Vec::new(),
    }
}

/// The report of a scanned host.
pub fn report<'a>(host: &'a Host, aliases: Option<&'a ModuleAliases>) -> Report<'a> {
    let iommu = IommuJson {
        enabled: host.iommu.enabled,
        kind: host.iommu.kind,
        interrupt_remapping: host.iommu.interrupt_remapping,
        acs_override: host.iommu.acs_override.as_deref(),
    };
    let groups = host
        .groups
        .iter()
        .map(|g| {
            let blockers: Vec<BlockerJson> = host
                .blockers(g)
                .into_iter()
                .map(|b| BlockerJson {
                    address: b.address.to_string(),
                    reason: b.reason,
                })
                .collect();
            GroupJson {
                id: g.id,
                viable: blockers.is_empty(),
                devices: g.devices.iter().map(ToString::to_string).collect(),
                blockers,
            }
        })
        .collect();
    let devices = host
        .pci
        .devices
        .iter()
        .map(|d| DeviceJson {
            address: d.address.to_string(),
            vendor: d.vendor.to_string(),
            device: d.device.to_string(),
            class: d.class.to_string(),
            subsystem_vendor: d.subsystem_vendor.map(|v| v.to_string()),
            subsystem_device: d.subsystem_device.map(|v| v.to_string()),
            revision: d.revision.map(|r| format!("{r:02x}")),
            driver: d.driver.as_deref(),
            iommu_group: d.iommu_group,
            vendor_name: d.vendor_name(),
            device_name: d.device_name(),
            roles: host
                .roles_of(d.address)
                .iter()
                .map(|r| r.role.name())
                .collect(),
            rom_bar: d.rom_bar,
            modules: modules(aliases, d),
            pcie_type: d
                .config
                .as_ref()
                .and_then(|c| c.pcie)
                .and_then(|t| t.json_name()),
            reset: host.pci.reset_methods(d).unwrap_or_default(),
            acs: d.config.as_ref().and_then(|c| c.acs).map(|a| {
                let f = a.capabilities();
                AcsJson {
                    sv: f.sv,
                    tb: f.tb,
                    rr: f.rr,
                    cr: f.cr,
                    uf: f.uf,
                    ec: f.ec,
                    dt: f.dt,
                }
            }),
            mdev_types: d
                .mdev_types
                .iter()
                .map(|m| MdevJson {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    description: m
                        .description
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" "),
                    available_instances: m.available_instances,
                    instances_in_use: m.instances_in_use,
                })
                .collect(),
            sriov: d.sriov.as_ref().map(|s| SriovJson {
                total_vfs: s.total_vfs,
                num_vfs: s.num_vfs,
                vfs: s.vfs.iter().map(ToString::to_string).collect(),
            }),
            igpu_modes: Vec::new(),
        })
        .collect();
    let usb = host
        .usb
        .devices
        .iter()
        .map(|u| UsbJson {
            bus: u.bus,
            port: u.port.clone(),
            vendor: format!("{:04x}", u.id.vendor),
            product: format!("{:04x}", u.id.product),
            vendor_name: u
                .manufacturer
                .clone()
                .or_else(|| u.id.vendor_name().map(str::to_string)),
            product_name: u
                .product
                .clone()
                .or_else(|| u.id.product_name().map(str::to_string)),
            class: format!("{:02x}", u.class),
            controller: u.controller.map(|c| c.to_string()),
            speed: u.speed.clone(),
            kind: u.kind(),
            interfaces: u
                .interfaces
                .iter()
                .map(|i| format!("{:02x}", i.class))
                .collect(),
        })
        .collect();
    Report {
        iommu,
        groups,
        devices,
        usb,
        problems: host.all_problems(),
    }
}

/// The report of a host's facts: [`report`] plus what only the facts know (an iGPU's modes).
pub fn report_with_facts<'a>(
    facts: &'a crate::HostFacts,
    aliases: Option<&'a ModuleAliases>,
) -> Report<'a> {
    let mut r = report(&facts.host, aliases);
    for (dev, d) in r.devices.iter_mut().zip(&facts.host.pci.devices) {
        dev.igpu_modes = crate::share::igpu_modes(facts, d);
    }
    r
}
