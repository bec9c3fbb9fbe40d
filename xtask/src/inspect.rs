//! `vfiokit inspect`: what the host has, how it is grouped, and what each device means to it.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde::Serialize;
use vfiokit_iommu::{Host, IommuKind};
use vfiokit_pci::{ModuleAliases, PciDevice};

use crate::Common;

#[derive(Serialize)]
struct Report<'a> {
    iommu: IommuJson<'a>,
    groups: Vec<GroupJson>,
    devices: Vec<DeviceJson<'a>>,
    usb: Vec<UsbJson>,
    /// Files that could not be read (extension of the contract).
    problems: Vec<String>,
}

#[derive(Serialize)]
struct IommuJson<'a> {
    enabled: bool,
    kind: Option<IommuKind>,
    interrupt_remapping: Option<bool>,
    acs_override: Option<&'a str>,
}

#[derive(Serialize)]
struct GroupJson {
    id: u32,
    viable: bool,
    devices: Vec<String>,
    /// Why the group is not viable, one entry per blocking member (extension).
    blockers: Vec<BlockerJson>,
}

#[derive(Serialize)]
struct BlockerJson {
    address: String,
    reason: String,
}

#[derive(Serialize)]
struct UsbJson {
    bus: u16,
    port: String,
    vendor: String,
    product: String,
    vendor_name: Option<String>,
    product_name: Option<String>,
    /// `bDeviceClass`, two hex digits (`00`: defined per interface).
    class: String,
    controller: Option<String>,
    speed: Option<String>,
    /// What it is: input device, Bluetooth adapter, storage device, hub, device (extension).
    kind: &'static str,
    /// `bInterfaceClass` of each interface (extension).
    interfaces: Vec<String>,
}

#[derive(Serialize)]
struct DeviceJson<'a> {
    address: String,
    vendor: String,
    device: String,
    class: String,
    subsystem_vendor: Option<String>,
    subsystem_device: Option<String>,
    revision: Option<String>,
    driver: Option<&'a str>,
    iommu_group: Option<u32>,
    vendor_name: Option<&'static str>,
    device_name: Option<&'static str>,
    roles: Vec<&'static str>,
    /// Whether the device has an expansion ROM BAR the host can read its ROM from (extension;
    /// `null` when `resource` is missing).
    rom_bar: Option<bool>,
    /// Kernel modules whose aliases match the device (extension; `lspci -k`'s "Kernel modules").
    modules: Vec<&'a str>,
}

/// Runs `inspect`. Exit 0 whenever the host could be read, with or without an IOMMU.
pub fn run(common: &Common) -> anyhow::Result<ExitCode> {
    let root = common.open_root()?;
    let host = Host::scan(&root)?;
    let aliases = vfiokit_pci::load_module_aliases(&root).unwrap_or_else(|e| {
        eprintln!("warning: {e}");
        None
    });
    if common.json {
        let report = report(&host, aliases.as_ref());
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", human(&host, aliases.as_ref()));
    }
    Ok(ExitCode::SUCCESS)
}

fn modules<'a>(aliases: Option<&'a ModuleAliases>, d: &PciDevice) -> Vec<&'a str> {
    match (aliases, &d.modalias) {
        (Some(a), Some(m)) => a.modules_for(m),
        _ => Vec::new(),
    }
}

fn report<'a>(host: &'a Host, aliases: Option<&'a ModuleAliases>) -> Report<'a> {
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

/// One device as a line: address, class, names, ids, driver; then its roles indented below.
fn device_lines(out: &mut String, host: &Host, d: &PciDevice, aliases: Option<&ModuleAliases>) {
    let class_name = d.class.name().unwrap_or("Unknown class");
    let vendor = d.vendor_name().unwrap_or("Unknown vendor");
    let device = d.device_name().unwrap_or("Unknown device");
    let driver = d.driver.as_deref().unwrap_or("none");
    let _ = writeln!(
        out,
        "  {} [{}] {class_name}: {vendor} {device} [{}:{}]  driver: {driver}",
        d.address, d.class, d.vendor, d.device
    );
    if d.class.is_display() && d.rom_bar == Some(false) {
        let _ = writeln!(
            out,
            "      no ROM BAR: a VM needs romfile= for it (the kernel's \"Invalid PCI ROM header signature\" is this)"
        );
    }
    let mods = modules(aliases, d);
    if !mods.is_empty() {
        let _ = writeln!(out, "      kernel modules: {}", mods.join(", "));
    }
    for role in host.roles_of(d.address) {
        let _ = writeln!(out, "      role {}: {}", role.role, role.detail);
    }
    for u in host.usb_below(d.address) {
        let depth = u.port.matches('.').count();
        let speed = u
            .speed
            .as_deref()
            .map(|s| format!(", {s} Mb/s"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "      {:indent$}usb {} [{}] {} ({}{speed})",
            "",
            u.port,
            u.id,
            u.name(),
            u.kind(),
            indent = depth * 2
        );
    }
}

fn human(host: &Host, aliases: Option<&ModuleAliases>) -> String {
    let mut out = String::new();
    let state = &host.iommu;
    if state.enabled {
        let kind = match state.kind {
            Some(IommuKind::Intel) => "Intel VT-d",
            Some(IommuKind::Amd) => "AMD-Vi",
            Some(IommuKind::Other) | None => "IOMMU",
        };
        let remap = match state.interrupt_remapping {
            Some(true) => "interrupt remapping on",
            Some(false) => {
                "NO interrupt remapping (VFIO needs allow_unsafe_interrupts=1, a security risk)"
            }
            None => "interrupt remapping unknown",
        };
        let _ = writeln!(
            out,
            "IOMMU: on, {kind} ({}), {remap}",
            state.units.join(", ")
        );
    } else {
        let _ = writeln!(
            out,
            "IOMMU: off. No device can be given to a VM until it is on: enable VT-d (Intel) or \
             AMD-Vi/IOMMU (AMD) in the firmware setup, add intel_iommu=on iommu=pt (Intel) or \
             iommu=pt (AMD) to the kernel command line, and reboot."
        );
    }
    if let Some(acs) = &state.acs_override {
        let _ = writeln!(
            out,
            "ACS override on the command line: pcie_acs_override={acs} (a security risk: devices \
             the kernel reports as isolated may still reach each other by DMA)"
        );
    }
    for group in &host.groups {
        let blockers = host.blockers(group);
        if blockers.is_empty() {
            let _ = writeln!(out, "\nIOMMU group {}: viable", group.id);
        } else {
            let _ = writeln!(out, "\nIOMMU group {}: not viable", group.id);
            for b in &blockers {
                let _ = writeln!(out, "  ! {} {}", b.address, b.reason);
            }
        }
        for addr in &group.devices {
            if let Some(d) = host.device(*addr) {
                device_lines(&mut out, host, d, aliases);
            }
        }
    }
    let ungrouped: Vec<&PciDevice> = host
        .pci
        .devices
        .iter()
        .filter(|d| d.iommu_group.is_none())
        .collect();
    if !ungrouped.is_empty() {
        let _ = writeln!(out, "\nDevices without an IOMMU group:");
        for d in ungrouped {
            device_lines(&mut out, host, d, aliases);
        }
    }
    let problems = host.all_problems();
    if !problems.is_empty() {
        let _ = writeln!(out, "\nCould not read:");
        for p in &problems {
            let _ = writeln!(out, "  {p}");
        }
    }
    out
}
