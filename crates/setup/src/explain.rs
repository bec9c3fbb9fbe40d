//! Log lines explained for this host: the host's facts turned into the
//! [`HostContext`] that [`vfiokit_explain`] sharpens its explanations with.
//!
//! ```
//! use vfiokit_setup::{HostFacts, explain};
//! use vfiokit_sysfs::SysRoot;
//!
//! let root = SysRoot::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/elitedesk-800-g4/fresh"))?;
//! let facts = HostFacts::gather(&root)?;
//! let line = "vfio-pci 0000:00:02.0: Invalid PCI ROM header signature: expecting 0xaa55, got 0xffff";
//! let report = explain::explain_host(&facts, line);
//! assert!(report.explained[0].explanation.contains("has no ROM BAR"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use vfiokit_pci::PciDevice;

use crate::facts::HostFacts;

pub use vfiokit_explain::{
    DeviceFacts, Explained, GroupMember, HostContext, KINDS, KindId, Report,
    Severity as LogSeverity, VmUse, explain,
};

/// Everything the facts say about the host that explanations use: kernel release, IOMMU and
/// interrupt remapping, and per PCI function its name, boot VGA, ROM BAR, host roles, IOMMU
/// group with the other members and their roles, and the entries of this node's VM configs
/// that pass it by host address (entries through a cluster mapping are not resolved), whether
/// their ROM files exist, and its reset methods where the facts' scope read them.
pub fn context(facts: &HostFacts) -> HostContext {
    let host = &facts.host;
    let roles = |d: &PciDevice| -> Vec<String> {
        host.roles_of(d.address)
            .iter()
            .map(|r| r.role.name().to_string())
            .collect()
    };
    let vms: Vec<(u32, Vec<(String, vfiokit_vmconf::HostPci)>)> = facts
        .vms
        .iter()
        .filter(|v| v.local)
        .filter_map(|v| Some((v.vmid, crate::vm::hostpcis(&v.config()?))))
        .collect();
    let devices = host
        .pci
        .devices
        .iter()
        .map(|d| {
            let a = d.address;
            let group_members = d
                .iommu_group
                .and_then(|g| host.group(g))
                .map(|g| {
                    g.devices
                        .iter()
                        .filter(|m| **m != a)
                        .map(|m| GroupMember {
                            address: m.to_string(),
                            roles: host.device(*m).map(&roles).unwrap_or_default(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let uses = vms
                .iter()
                .flat_map(|(vmid, entries)| entries.iter().map(move |e| (*vmid, e)))
                .filter(|(_, (_, h))| crate::vm::names(h, a))
                .map(|(vmid, (key, h))| VmUse {
                    vmid,
                    key: key.clone(),
                    romfile: h.romfile.clone(),
                    // Known for names under /usr/share/kvm, which the facts hold.
                    romfile_present: h
                        .romfile
                        .as_deref()
                        .filter(|r| crate::gpu::in_kvm_dir(r))
                        .map(|r| facts.rom(r).is_some()),
                    rombar: h.rombar,
                })
                .collect();
            let facts = DeviceFacts {
                name: name(d),
                boot_vga: d.boot_vga == Some(true),
                rom_bar: d.rom_bar,
                reset_methods: host.pci.reset_methods(d),
                roles: roles(d),
                iommu_group: d.iommu_group,
                group_members,
                vms: uses,
            };
            (a.to_string(), facts)
        })
        .collect();
    HostContext {
        kernel_release: facts.release.as_ref().map(|r| r.trim().to_string()),
        iommu_enabled: Some(host.iommu.enabled),
        interrupt_remapping: host.iommu.interrupt_remapping,
        devices,
    }
}

/// `text` explained with this host's facts ([`context`]).
pub fn explain_host(facts: &HostFacts, text: &str) -> Report {
    explain(text, Some(&context(facts)))
}

/// A name for messages from the PCI id database (`Intel Corporation CoffeeLake-S GT2 [UHD
/// Graphics 630]`), or the vendor's name with the ids.
fn name(d: &PciDevice) -> Option<String> {
    match (d.vendor_name(), d.device_name()) {
        (Some(v), Some(n)) => Some(format!("{v} {n}")),
        (None, Some(n)) => Some(n.to_string()),
        (Some(v), None) => Some(format!("{v} device {}", crate::id_of(d))),
        (None, None) => None,
    }
}
