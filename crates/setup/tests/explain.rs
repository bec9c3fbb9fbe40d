//! Log lines explained with a host's facts, and the `kernel-log` rule.

use vfiokit_setup::explain::{self, KindId};
use vfiokit_setup::{HostFacts, Severity, audit};
use vfiokit_sysfs::SysRoot;

const ROM_LINE: &str =
    "vfio-pci 0000:00:02.0: Invalid PCI ROM header signature: expecting 0xaa55, got 0xffff";
const BAR_LINE: &str = "[  511.005586] vfio-pci 0000:00:02.0: BAR 2: can't reserve [mem 0xc0000000-0xcfffffff 64bit pref]";

fn recorded(name: &str) -> HostFacts {
    let dir = format!("{}/../../testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    HostFacts::gather(&SysRoot::new(dir).unwrap()).unwrap()
}

#[test]
fn the_seed_rom_line_is_the_igpu_without_a_rom_bar() {
    let facts = recorded("elitedesk-800-g4/fresh");
    let report = explain::explain_host(&facts, ROM_LINE);
    assert_eq!(report.explained.len(), 1, "{report:?}");
    let e = &report.explained[0];
    assert_eq!(e.kind, KindId::RomHeaderInvalid);
    assert_eq!(e.device.as_deref(), Some("0000:00:02.0"));
    assert!(
        e.explanation.contains("0000:00:02.0 has no ROM BAR"),
        "{}",
        e.explanation
    );
}

#[test]
fn the_context_carries_the_host_facts() {
    let ctx = explain::context(&recorded("elitedesk-800-g4/configured"));
    assert_eq!(ctx.iommu_enabled, Some(true));
    assert!(
        ctx.kernel_release
            .as_deref()
            .is_some_and(|r| r.ends_with("-pve"))
    );
    let igpu = ctx.device("00:02.0").expect("the iGPU");
    assert!(igpu.boot_vga);
    assert_eq!(igpu.rom_bar, Some(false));
    assert!(
        igpu.roles.iter().any(|r| r == "boot-vga"),
        "{:?}",
        igpu.roles
    );
    assert!(
        igpu.name
            .as_deref()
            .is_some_and(|n| n.contains("UHD Graphics 630"))
    );
    assert!(igpu.iommu_group.is_some());
    let vm = igpu
        .vms
        .iter()
        .find(|v| v.vmid == 100)
        .expect("VM 100 uses it");
    assert_eq!(vm.key, "hostpci0");
    assert_eq!(vm.romfile.as_deref(), Some("igpu-uhd630.rom"));
    // The audio function shares its group with the NIC behind the default route.
    let audio = ctx.device("0000:00:1f.3").expect("the audio function");
    assert!(
        audio
            .group_members
            .iter()
            .any(|m| m.roles.iter().any(|r| r == "default-route-nic")),
        "{:?}",
        audio.group_members
    );
}

#[test]
fn a_host_without_the_device_makes_no_claim_about_it() {
    let (_dir, root) = vfiokit_fakesys::hosts::amd_ryzen().write_temp().unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    assert!(
        facts
            .host
            .pci
            .devices
            .iter()
            .all(|d| d.address.to_string() != "0000:00:02.0")
    );
    let with = explain::explain_host(&facts, ROM_LINE);
    let without = explain::explain(ROM_LINE, None);
    assert_eq!(with.explained[0].device.as_deref(), Some("0000:00:02.0"));
    assert_eq!(with, without);
    assert!(!with.explained[0].explanation.contains("ROM BAR"));
}

#[test]
fn the_recorded_kernel_log_becomes_unfixable_findings() {
    let (_dir, root) = vfiokit_fakesys::copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let log = root.var_lib("vfiokit/capture/kernel-log");
    let _ = std::fs::remove_file(&log);
    let clean = HostFacts::gather(&root).unwrap();
    assert!(clean.kernel_log.is_none());
    assert!(audit(&clean, &[]).iter().all(|f| f.check != "kernel-log"));

    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let text = format!(
        "[    0.000000] DMAR: IOMMU enabled\n[    0.400000] DMAR-IR: Enabled IRQ remapping in x2apic mode\n{BAR_LINE}\n{BAR_LINE}\n{ROM_LINE}\n"
    );
    std::fs::write(&log, text).unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let found: Vec<_> = audit(&facts, &[])
        .into_iter()
        .filter(|f| f.check == "kernel-log")
        .collect();
    // The BAR failure (an error) and the ROM line (a warning); the info line is not a finding.
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found.iter().all(|f| !f.fixable));
    let bar = &found[0];
    assert_eq!(bar.severity, Severity::Error);
    assert!(
        bar.message
            .starts_with("bar-cant-reserve on 0000:00:02.0, 2 times"),
        "{}",
        bar.message
    );
    assert_eq!(
        bar.path.as_deref(),
        Some(std::path::Path::new("var/lib/vfiokit/capture/kernel-log"))
    );
    assert_eq!(bar.line, Some(3));
    assert!(!bar.fix.is_empty());
    assert_eq!(found[1].severity, Severity::Warning);
    assert!(
        found[1]
            .message
            .starts_with("rom-header-invalid on 0000:00:02.0")
    );
}
