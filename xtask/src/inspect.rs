//! `vfiokit inspect`: what the host has, how it is grouped, and what each device means to it.

use std::fmt::Write as _;
use std::process::ExitCode;

use vfiokit_iommu::{Host, IommuKind};
use vfiokit_pci::{ModuleAliases, PciDevice};

use crate::Common;

/// Runs `inspect`. Exit 0 whenever the host could be read, with or without an IOMMU.
pub fn run(common: &Common) -> anyhow::Result<ExitCode> {
    let root = common.open_root()?;
    let facts = vfiokit_setup::HostFacts::gather(&root)?;
    let host = &facts.host;
    let aliases = facts.aliases.as_ref();
    if common.json {
        let report = vfiokit_setup::inspect::report_with_facts(&facts, aliases);
        // Streamed: a 10,000-function host's JSON is never held as one string.
        use std::io::Write as _;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let written = serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush());
        if let Err(e) = written {
            crate::stdout_failed(e);
        }
    } else {
        print!("{}", human(host, aliases));
        for d in &host.pci.devices {
            let modes = vfiokit_setup::share::igpu_modes(&facts, d);
            if !modes.is_empty() {
                println!("\niGPU {} sharing modes:", d.address);
            }
            for m in modes {
                let state = match (m.supported, m.missing.is_empty()) {
                    (false, _) => format!("not supported: {}", m.missing.join("; ")),
                    (true, true) => "ready".to_string(),
                    (true, false) => format!("missing: {}", m.missing.join("; ")),
                };
                println!("  {}: {state}", m.mode);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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
    // An SR-IOV VF has no ROM BAR by design; its guest display needs a GOP ROM only with x-vga.
    if d.class.is_display() && d.rom_bar == Some(false) && d.physfn.is_none() {
        let _ = writeln!(
            out,
            "      no ROM BAR: a VM needs romfile= for it (the kernel's \"Invalid PCI ROM header signature\" is this)"
        );
    }
    let mods = vfiokit_setup::inspect::modules(aliases, d);
    if !mods.is_empty() {
        let _ = writeln!(out, "      kernel modules: {}", mods.join(", "));
    }
    if d.class.base() != 0x06 {
        let reset = host.pci.reset_methods(d).unwrap_or_default();
        let reset = if reset.is_empty() {
            "none (its state carries over from one VM start to the next)".to_string()
        } else {
            reset.join(", ")
        };
        let _ = writeln!(out, "      reset: {reset}");
    }
    for m in &d.mdev_types {
        let _ = writeln!(
            out,
            "      mdev type {} ({}): {} available, {} in use",
            m.id, m.name, m.available_instances, m.instances_in_use
        );
    }
    if let Some(s) = &d.sriov {
        let _ = writeln!(
            out,
            "      SR-IOV: {} of {} VFs enabled",
            s.num_vfs, s.total_vfs
        );
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
