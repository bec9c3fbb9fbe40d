//! GPUs on the recorded hosts: multifunction entries, pcie/x-vga/romfile, ROM checks, the boot
//! framebuffer by kernel version, legacy IGD on QEMU ≥ 10.1.

use std::fs;

use vfiokit_fakesys::copy_recorded;
use vfiokit_pci::PciAddress;
use vfiokit_setup::gpu::{RomArg, entries};
use vfiokit_setup::{HostFacts, audit, fix_plan, host, vm};
use vfiokit_sysfs::SysRoot;
use vfiokit_vmconf::{Machine, MachineKind, VmConfig};

fn a(s: &str) -> PciAddress {
    s.parse().unwrap()
}

fn rom(s: &str) -> RomArg {
    s.parse().unwrap()
}

fn facts_of(root: &SysRoot) -> HostFacts {
    HostFacts::gather(root).unwrap()
}

fn hostpci_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("hostpci"))
        .map(str::to_string)
        .collect()
}

/// The 780M request that reproduces the author's VM 100.
fn um880_request() -> vm::Request {
    vm::Request {
        vmid: 100,
        devices: vec![a("c5:00.0"), a("c5:00.1")],
        primary: Some(a("c5:00.0")),
        roms: vec![
            rom("c5:00.0=vbios_1002_1900.bin"),
            rom("c5:00.1=AMDGopDriver_8845hs.rom"),
        ],
        ..Default::default()
    }
}

/// A legacy x86 option ROM image (512 bytes, checksum 0) for `vendor:device`.
fn legacy_rom(vendor: u16, device: u16) -> Vec<u8> {
    let mut r = vec![0u8; 512];
    r[0] = 0x55;
    r[1] = 0xAA;
    r[2] = 1;
    r[3] = 0xCB; // retf
    r[0x18] = 0x1C;
    r[0x1C..0x20].copy_from_slice(b"PCIR");
    r[0x20..0x22].copy_from_slice(&vendor.to_le_bytes());
    r[0x22..0x24].copy_from_slice(&device.to_le_bytes());
    r[0x26] = 0x18;
    r[0x2B] = 0x03; // class 030000
    r[0x2C] = 1; // image length
    r[0x31] = 0x80; // last image
    let sum: u8 = r.iter().fold(0u8, |s, b| s.wrapping_add(*b));
    r[511] = 0u8.wrapping_sub(sum);
    r
}

/// An EFI driver ROM (X64 boot-services driver) whose PCIR names `vendor:device`.
fn efi_rom(vendor: u16, device: u16) -> Vec<u8> {
    let mut pe = vec![0u8; 0xA0];
    pe[..2].copy_from_slice(b"MZ");
    pe[0x3C] = 0x40;
    pe[0x40..0x44].copy_from_slice(b"PE\0\0");
    pe[0x44..0x46].copy_from_slice(&0x8664u16.to_le_bytes());
    pe[0x58..0x5A].copy_from_slice(&0x20Bu16.to_le_bytes());
    pe[0x9C] = 11;
    pe.extend([0u8; 600]);
    vfiokit_vbios::build(
        &vfiokit_vbios::BuildOptions::new(vendor, device),
        &[vfiokit_vbios::Input::Efi {
            name: "gop.efi".into(),
            bytes: pe,
        }],
    )
    .unwrap()
}

#[test]
fn the_780m_authors_hostpci_lines_from_the_fresh_vm() {
    let (_dir, root) = copy_recorded("minisforum-um880pro/fresh").unwrap();
    let facts = facts_of(&root);
    let planned = vm::plan(&facts, &um880_request()).unwrap().unwrap();
    let text = planned.plan.render();
    let file = &planned.plan.files[0];
    let new = VmConfig::parse(&file.new);
    let configured = fs::read_to_string(
        vfiokit_fakesys::testdata_dir()
            .join("minisforum-um880pro/configured/etc/pve/qemu-server/100.conf"),
    )
    .unwrap();
    assert_eq!(hostpci_lines(&file.new), hostpci_lines(&configured));
    assert_eq!(
        hostpci_lines(&file.new),
        [
            "hostpci0: 0000:c5:00.0,pcie=1,x-vga=1,romfile=vbios_1002_1900.bin",
            "hostpci1: 0000:c5:00.1,pcie=1,romfile=AMDGopDriver_8845hs.rom"
        ]
    );
    // `vga: none` is already in the author's config; the rest differs only by the hookscript.
    assert_eq!(new.get("vga"), Some("none"));
    let theirs = VmConfig::parse(&configured);
    for k in theirs.keys() {
        if k != "hookscript" {
            assert_eq!(new.get(k), theirs.get(k), "{k}");
        }
    }
    // Separate groups: the plan says why each function is an entry of its own.
    assert!(text.contains("are in IOMMU groups of their own"), "{text}");
    // The ROMs are not on the recorded host: warnings, not refusals.
    assert_eq!(
        planned
            .plan
            .notes
            .iter()
            .filter(|n| n.contains("does not exist yet"))
            .count(),
        2,
        "{:?}",
        planned.plan.notes
    );
    // The qm form carries the same values.
    assert_eq!(planned.qm[0].0, "hostpci0");
}

#[test]
fn present_roms_are_checked_against_the_vms_firmware() {
    let (dir, root) = copy_recorded("minisforum-um880pro/fresh").unwrap();
    let kvm = dir.path().join("usr/share/kvm");
    fs::create_dir_all(&kvm).unwrap();
    fs::write(kvm.join("vbios_1002_1900.bin"), legacy_rom(0x1002, 0x1900)).unwrap();
    // The GOP names the GPU function but goes on the audio function, as published.
    fs::write(kvm.join("AMDGopDriver_8845hs.rom"), efi_rom(0x1002, 0x1900)).unwrap();
    let facts = facts_of(&root);
    let planned = vm::plan(&facts, &um880_request()).unwrap().unwrap();
    let notes = planned.plan.notes.join("\n");
    assert!(
        notes.contains("is a legacy VBIOS for 0000:c5:00.0"),
        "{notes}"
    );
    assert!(
        notes.contains("EFI driver names 0000:c5:00.0 (1002:1900), not 0000:c5:00.1 (1002:1640)"),
        "{notes}"
    );
    assert!(!notes.contains("does not exist"), "{notes}");

    // Under SeaBIOS the GOP on the audio function would never load: refused.
    let conf = dir.path().join("etc/pve/qemu-server/100.conf");
    let text = fs::read_to_string(&conf)
        .unwrap()
        .replace("bios: ovmf\n", "");
    fs::write(&conf, text).unwrap();
    let facts = facts_of(&root);
    let refused = vm::plan(&facts, &um880_request()).unwrap().unwrap_err();
    assert!(
        refused.message.contains("SeaBIOS would not load")
            && refused.message.contains("0000:c5:00.1 (1002:1640)"),
        "{}",
        refused.message
    );
}

#[test]
fn absolute_romfiles_and_misplaced_flags_are_refused() {
    let (_dir, root) = copy_recorded("minisforum-um880pro/fresh").unwrap();
    let facts = facts_of(&root);
    let mut req = um880_request();
    req.roms[0] = rom("c5:00.0=/root/vbios.bin");
    let refused = vm::plan(&facts, &req).unwrap().unwrap_err();
    assert!(
        refused.message.contains("absolute path")
            && refused.message.contains("/usr/share/kvm//root/vbios.bin"),
        "{}",
        refused.message
    );
    // --primary must be a passed display controller; --rom must name a passed device.
    let mut req = um880_request();
    req.primary = Some(a("c5:00.1"));
    assert!(vm::plan(&facts, &req).is_err());
    let mut req = um880_request();
    req.devices = vec![a("c5:00.0")];
    let err = vm::plan(&facts, &req).unwrap_err().to_string();
    assert!(err.contains("0000:c5:00.1 is not passed"), "{err}");
}

#[test]
fn the_rtx_2060_is_one_function_less_entry() {
    let root = SysRoot::new(vfiokit_fakesys::testdata_dir().join("am4-rtx2060/fresh")).unwrap();
    let facts = facts_of(&root);
    let e = entries(&facts.host, &[a("07:00.0")]);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].host, "0000:07:00");
    assert_eq!(
        e[0].functions,
        [a("07:00.0"), a("07:00.1"), a("07:00.2"), a("07:00.3")]
    );
    assert!(
        e[0].why.contains("one multifunction device"),
        "{}",
        e[0].why
    );
    // Asking for the audio function as well changes nothing; in any order.
    assert_eq!(entries(&facts.host, &[a("07:00.1"), a("07:00.0")]), e);
    // The 780M: the GPU's slot has seven functions, each in its own group.
    let root =
        SysRoot::new(vfiokit_fakesys::testdata_dir().join("minisforum-um880pro/fresh")).unwrap();
    let facts = facts_of(&root);
    let e = entries(&facts.host, &[a("c5:00.0"), a("c5:00.1")]);
    assert_eq!(
        e.iter().map(|e| e.host.as_str()).collect::<Vec<_>>(),
        ["0000:c5:00.0", "0000:c5:00.1"]
    );
}

#[test]
fn setup_host_for_the_rtx_2060_binds_four_functions_and_releases_the_framebuffer() {
    // Group 2 also holds AMD's driverless dummy host bridge 00:03.0 and the card's own USB-C
    // function 07:00.3: collateral, not harm, so no --force-collateral is needed.
    let (_dir, root) = copy_recorded("am4-rtx2060/fresh").unwrap();
    let facts = facts_of(&root);
    let req = host::Request {
        devices: vec![a("07:00.0")],
        force_collateral: vec![],
    };
    let planned = host::plan(&facts, &req).unwrap().unwrap();
    let text = planned.plan.render();
    assert!(
        text.contains("+options vfio-pci ids=10de:1e89,10de:10f8,10de:1ad8,10de:1ad9"),
        "{text}"
    );
    assert!(text.contains("initcall_blacklist=sysfb_init\"\n"), "{text}");
    assert!(
        text.contains("why: initcall_blacklist=sysfb_init: 0000:07:00.0 is the host's boot GPU"),
        "{text}"
    );
    for m in ["nouveau", "snd_hda_intel", "xhci_pci", "i2c_nvidia_gpu"] {
        assert!(
            text.contains(&format!("+softdep {m} pre: vfio-pci")),
            "{m}\n{text}"
        );
    }
    assert!(text.contains("+blacklist nouveau") && text.contains("+blacklist i2c_nvidia_gpu"));
    // The host keeps its onboard audio and USB: those modules are not blacklisted.
    assert!(!text.contains("+blacklist snd_hda_intel") && !text.contains("+blacklist xhci_pci"));
    assert!(
        !text.contains("amd_iommu") && !text.contains("intel_iommu"),
        "{text}"
    );
}

#[test]
fn setup_vm_gives_the_rtx_2060_as_one_function_less_entry() {
    let (_dir, root) = copy_recorded("am4-rtx2060/fresh").unwrap();
    let facts = facts_of(&root);
    let req = vm::Request {
        vmid: 100,
        devices: vec![a("07:00.0")],
        ..Default::default()
    };
    let planned = vm::plan(&facts, &req).unwrap().unwrap();
    let new = &planned.plan.files[0].new;
    assert_eq!(hostpci_lines(new), ["hostpci0: 0000:07:00,pcie=1"], "{new}");
}

#[test]
fn setup_host_for_the_780m_adds_no_parameter_on_6_8() {
    let (_dir, root) = copy_recorded("minisforum-um880pro/fresh").unwrap();
    let facts = facts_of(&root);
    let req = host::Request {
        devices: vec![a("c5:00.0"), a("c5:00.1")],
        ..Default::default()
    };
    let planned = host::plan(&facts, &req).unwrap().unwrap();
    let text = planned.plan.render();
    assert!(
        text.contains("+options vfio-pci ids=1002:1900,1002:1640"),
        "{text}"
    );
    assert!(
        text.contains("+softdep amdgpu pre: vfio-pci")
            && text.contains("+softdep snd_hda_intel pre: vfio-pci")
    );
    assert!(
        !text.contains("sysfb") && !text.contains("video=") && !text.contains("amd_iommu"),
        "{text}"
    );
    let note = planned.plan.notes.join("\n");
    assert!(
        note.contains("vfio-pci removes the firmware framebuffer")
            && note.contains("console goes dark"),
        "{note}"
    );
}

#[test]
fn boot_framebuffer_rule_finds_and_fixes_the_missing_parameter() {
    let (dir, root) = copy_recorded("am4-rtx2060/fresh").unwrap();
    let conf = dir.path().join("etc/pve/qemu-server/100.conf");
    let mut text = fs::read_to_string(&conf).unwrap();
    text.push_str("hostpci0: 0000:07:00,pcie=1\n");
    fs::write(&conf, text).unwrap();
    let facts = facts_of(&root);
    let findings = audit(&facts, &[]);
    let f: Vec<_> = findings
        .iter()
        .filter(|f| f.check == "boot-framebuffer")
        .collect();
    assert_eq!(f.len(), 1, "{findings:?}");
    assert!(
        f[0].fixable && f[0].message.contains("lacks initcall_blacklist=sysfb_init"),
        "{}",
        f[0].message
    );
    let plan = fix_plan(&facts, &findings).unwrap().render();
    assert!(
        plan.contains("+GRUB_CMDLINE_LINUX_DEFAULT=\"quiet initcall_blacklist=sysfb_init\""),
        "{plan}"
    );
    // Once the parameter is configured, the rule is quiet.
    let grub = dir.path().join("etc/default/grub");
    let g = fs::read_to_string(&grub)
        .unwrap()
        .replace("=\"quiet\"", "=\"quiet initcall_blacklist=sysfb_init\"");
    fs::write(&grub, g).unwrap();
    let facts = facts_of(&root);
    assert!(
        audit(&facts, &[])
            .iter()
            .all(|f| f.check != "boot-framebuffer")
    );
    // The 780M on 6.8: vfio-pci evicts the framebuffer itself, nothing to find.
    let root = SysRoot::new(vfiokit_fakesys::testdata_dir().join("minisforum-um880pro/configured"))
        .unwrap();
    assert!(
        audit(&facts_of(&root), &[])
            .iter()
            .all(|f| f.check != "boot-framebuffer")
    );
}

#[test]
fn legacy_igd_on_the_n100_follows_qemu_11() {
    let (dir, root) = copy_recorded("n100/fresh").unwrap();
    let facts = facts_of(&root);
    let req = vm::Request {
        vmid: 100,
        igd: Some(a("00:02.0")),
        ..Default::default()
    };
    let planned = vm::plan(&facts, &req).unwrap().unwrap();
    let new = VmConfig::parse(&planned.plan.files[0].new);
    assert_eq!(new.get("machine"), Some("pc-i440fx-11.0"));
    assert_eq!(new.get("vga"), Some("none"));
    let args = new.get("args").unwrap();
    assert!(args.contains("-set device.hostpci0.x-igd-lpc=on"), "{args}");
    assert!(!args.contains("x-igd-legacy-mode"), "{args}");
    let notes = planned.plan.notes.join("\n");
    assert!(notes.contains("only for generations 6–9"), "{notes}");
    // The same iGPU on QEMU 9.2 would not start: refused with why.
    fs::write(
        dir.path().join("var/lib/vfiokit/capture/qemu-version"),
        "QEMU emulator version 9.2.0 (pve-qemu-kvm_9.2.0-5)\n",
    )
    .unwrap();
    let refused = vm::plan(&facts_of(&root), &req).unwrap().unwrap_err();
    assert!(
        refused.message.contains("unsupported in legacy mode"),
        "{}",
        refused.message
    );
}

#[test]
fn proxmox_9_machine_versions_parse() {
    for (m, v) in [
        ("pc-q35-11.0+pve1", (11, 0)),
        ("pc-q35-11.0+pve2", (11, 0)),
        ("pc-q35-10.0+pve1", (10, 0)),
    ] {
        let parsed = Machine::parse(m).unwrap();
        assert_eq!(parsed.kind, MachineKind::Q35);
        assert_eq!(parsed.version, Some(v));
    }
}

fn reasons_of(p: &vm::VmPlan) -> String {
    p.plan.files[0].reasons.join("\n")
}

#[test]
fn reasons_are_true_for_the_qemu_version_and_the_device() {
    // The N100 runs QEMU 11.0: no claim about 9.2 that does not apply.
    let root = SysRoot::new(vfiokit_fakesys::testdata_dir().join("n100/fresh")).unwrap();
    let facts = facts_of(&root);
    let req = vm::Request {
        vmid: 100,
        igd: Some(a("00:02.0")),
        romfile: Some("x.rom".into()),
        ..Default::default()
    };
    let why = reasons_of(&vm::plan(&facts, &req).unwrap().unwrap());
    assert!(!why.contains("seed's 9.2.0 did"), "{why}");
    assert!(!why.contains("11.0+pve1 does not start"), "{why}");
    assert!(why.contains("QEMU 11.0 supports x-igd-gms"), "{why}");
    // Its iGPU is integrated into the root complex: no "PCIe link as on the host".
    let req = vm::Request {
        vmid: 100,
        devices: vec![a("00:02.0")],
        ..Default::default()
    };
    let why = reasons_of(&vm::plan(&facts, &req).unwrap().unwrap());
    assert!(why.contains("pcie=1: "), "{why}");
    assert!(!why.contains("expect a PCIe link"), "{why}");
    assert!(why.contains("integrated into the root complex"), "{why}");
    // The EliteDesk's only keyboard: the host loses it while the VM runs.
    let root =
        SysRoot::new(vfiokit_fakesys::testdata_dir().join("elitedesk-800-g4/fresh")).unwrap();
    let req = vm::Request {
        vmid: 100,
        usb: vec!["062a:4101".parse().unwrap()],
        ..Default::default()
    };
    let notes = vm::plan(&facts_of(&root), &req)
        .unwrap()
        .unwrap()
        .plan
        .notes
        .join("\n");
    assert!(
        notes.contains("the host's only USB input device"),
        "{notes}"
    );
}

#[test]
fn verify_takes_the_roms_setup_vm_takes() {
    // The author's working setup: a legacy VBIOS on the GPU and the GOP on the audio function,
    // under OVMF. setup-vm plans it with warnings, so verify must not call it an error.
    let (dir, root) = copy_recorded("minisforum-um880pro/configured").unwrap();
    let kvm = dir.path().join("usr/share/kvm");
    fs::create_dir_all(&kvm).unwrap();
    fs::write(kvm.join("vbios_1002_1900.bin"), legacy_rom(0x1002, 0x1900)).unwrap();
    fs::write(kvm.join("AMDGopDriver_8845hs.rom"), efi_rom(0x1002, 0x1900)).unwrap();
    let unloadable = |root: &SysRoot| -> Vec<String> {
        audit(&facts_of(root), &[])
            .into_iter()
            .filter(|f| f.check == "romfile-unloadable")
            .map(|f| f.message)
            .collect()
    };
    assert_eq!(unloadable(&root), Vec::<String>::new());
    // An Intel VBIOS in the GPU's place is refused by setup-vm and flagged by verify alike.
    fs::write(kvm.join("vbios_1002_1900.bin"), legacy_rom(0x8086, 0x3e92)).unwrap();
    let found = unloadable(&root);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("VM 100 hostpci0: OVMF would not load"),
        "{found:?}"
    );
    let refused = vm::plan(&facts_of(&root), &um880_request())
        .unwrap()
        .unwrap_err();
    assert!(
        refused.message.contains("OVMF would not load"),
        "setup-vm refuses what verify flags: {}",
        refused.message
    );
}
