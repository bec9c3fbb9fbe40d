//! Host facts sharpen an explanation; a device the host does not have gets none.

use expect_test::expect;
use vfiokit_explain::{DeviceFacts, GroupMember, HostContext, KindId, VmUse, explain};

const ROM_LINE: &str = "[  495.151099] vfio-pci 0000:00:02.0: Invalid PCI ROM header signature: expecting 0xaa55, got 0xa1f9";

fn host(addr: &str, facts: DeviceFacts) -> HostContext {
    let mut ctx = HostContext::default();
    ctx.devices.insert(addr.to_string(), facts);
    ctx
}

fn igd() -> DeviceFacts {
    DeviceFacts {
        boot_vga: true,
        rom_bar: Some(false),
        reset_methods: Some(vec![]),
        iommu_group: Some(0),
        ..DeviceFacts::default()
    }
}

#[test]
fn rom_line_on_a_device_without_rom_bar() {
    let ctx = host("0000:00:02.0", igd());
    let r = explain(ROM_LINE, Some(&ctx));
    let e = &r.explained[0];
    assert_eq!(
        (e.kind, e.device.as_deref()),
        (KindId::RomHeaderInvalid, Some("0000:00:02.0"))
    );
    assert!(
        e.explanation.contains("0000:00:02.0 has no ROM BAR"),
        "{}",
        e.explanation
    );
    assert!(!e.explanation.contains("harmless"), "{}", e.explanation);
    assert!(e.fix.contains("vfiokit vbios extract"), "{}", e.fix);
}

#[test]
fn a_romfile_that_does_not_exist_is_not_called_harmless() {
    let mut facts = igd();
    facts.vms.push(VmUse {
        vmid: 100,
        key: "hostpci0".into(),
        romfile: Some("igpu-uhd630.rom".into()),
        romfile_present: Some(false),
        rombar: None,
    });
    let r = explain(ROM_LINE, Some(&host("0000:00:02.0", facts)));
    let e = &r.explained[0];
    assert!(!e.explanation.contains("harmless"), "{}", e.explanation);
    assert!(
        e.explanation.contains(
            "VM 100 gives it romfile=igpu-uhd630.rom (hostpci0), but that file does not exist"
        ),
        "{}",
        e.explanation
    );
    assert!(
        e.fix
            .starts_with("Put the ROM at /usr/share/kvm/igpu-uhd630.rom"),
        "{}",
        e.fix
    );
}

#[test]
fn rom_line_is_harmless_when_a_vm_gives_a_romfile() {
    let mut facts = igd();
    facts.vms.push(VmUse {
        vmid: 100,
        key: "hostpci0".into(),
        romfile: Some("igpu-uhd630.rom".into()),
        romfile_present: Some(true),
        rombar: None,
    });
    // The context may key the device in its short spelling.
    let ctx = host("00:02.0", facts);
    let r = explain(ROM_LINE, Some(&ctx));
    let e = &r.explained[0];
    expect![[r#"
        The device's option ROM (VBIOS) failed validation: the kernel found no 0xaa55 signature (0xffff: unreadable, 0x0000: empty, anything else: not a ROM) or no PCIR structure, or QEMU could not read the ROM. A guest that needs this ROM gets no usable VBIOS (black screen, no POST). 0000:00:02.0 has no ROM BAR: there is no option ROM on the device to read, and what the kernel read (the legacy shadow copy at 0xC0000 of the boot VGA device) is not one. VM 100 gives it romfile=igpu-uhd630.rom (hostpci0), so this message is harmless: QEMU loads the ROM from that file, not from the device."#]]
    .assert_eq(&e.explanation);
    expect![[r#"Nothing to do for VM 100; to check the file itself: `vfiokit vbios check /usr/share/kvm/igpu-uhd630.rom`."#]]
        .assert_eq(&e.fix);
}

#[test]
fn a_device_the_host_does_not_have_gets_no_host_claims() {
    let without = explain(ROM_LINE, None);
    let other_host = host("0000:01:00.0", igd());
    let with_other = explain(ROM_LINE, Some(&other_host));
    assert_eq!(without, with_other);
    let e = &with_other.explained[0];
    assert!(!e.explanation.contains("ROM BAR"));
    assert!(!e.explanation.contains("harmless"));
    assert!(!e.explanation.contains("On this host"));
}

#[test]
fn group_with_the_default_route_nic() {
    let ctx = host(
        "0000:00:1f.3",
        DeviceFacts {
            iommu_group: Some(7),
            group_members: vec![
                GroupMember {
                    address: "0000:00:1f.0".into(),
                    roles: vec!["platform-device".into()],
                },
                GroupMember {
                    address: "0000:00:1f.6".into(),
                    roles: vec!["default-route-nic".into()],
                },
            ],
            ..DeviceFacts::default()
        },
    );
    let log = "kvm: -device vfio-pci,host=0000:00:1f.3,id=hostpci1: vfio 0000:00:1f.3: group 7 is not viable";
    let e = &explain(log, Some(&ctx)).explained[0];
    assert_eq!(e.kind, KindId::GroupNotViable);
    assert!(
        e.explanation
            .contains("0000:00:1f.6 (the NIC behind the host's default route)"),
        "{}",
        e.explanation
    );
    assert!(
        e.explanation.contains("takes the host's network away"),
        "{}",
        e.explanation
    );
    assert!(
        e.fix
            .starts_with("`vfiokit setup-host --device 0000:00:1f.3`"),
        "{}",
        e.fix
    );
    assert!(e.fix.contains("setup-host will refuse"), "{}", e.fix);
}

#[test]
fn no_reset_method() {
    let ctx = host(
        "0000:c5:00.0",
        DeviceFacts {
            reset_methods: Some(vec![]),
            ..DeviceFacts::default()
        },
    );
    let log = "error writing '1' to '/sys/bus/pci/devices/0000:c5:00.0/reset': Inappropriate ioctl for device";
    let e = &explain(log, Some(&ctx)).explained[0];
    assert_eq!(e.kind, KindId::ResetUnsupported);
    assert!(
        e.explanation.contains("0000:c5:00.0 has no reset method"),
        "{}",
        e.explanation
    );
}

#[test]
fn interrupt_remapping_on_is_not_answered_with_unsafe_interrupts() {
    let log = "vfio_iommu_type1_attach_group: No interrupt remapping support.  Use the module param \"allow_unsafe_interrupts\" to enable VFIO IOMMU support on this platform";
    let plain = &explain(log, None).explained[0];
    assert!(plain.fix.contains("allow_unsafe_interrupts=1"));
    let ctx = HostContext {
        interrupt_remapping: Some(true),
        ..HostContext::default()
    };
    let e = &explain(log, Some(&ctx)).explained[0];
    assert!(
        e.explanation
            .contains("allow_unsafe_interrupts is not the answer"),
        "{}",
        e.explanation
    );
    assert!(
        e.fix.starts_with("Do not set allow_unsafe_interrupts"),
        "{}",
        e.fix
    );

    // And the ambiguous container failure becomes rmrr on such a host.
    let ambiguous = "kvm: -device vfio-pci,host=0000:01:00.0: vfio 0000:01:00.0: failed to setup container for group 1: failed to set iommu for container: Operation not permitted";
    let kinds: Vec<KindId> = explain(ambiguous, Some(&ctx))
        .explained
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, [KindId::Rmrr]);
}

#[test]
fn boot_vga_holds_the_framebuffer() {
    let ctx = host(
        "0000:07:00.0",
        DeviceFacts {
            boot_vga: true,
            ..DeviceFacts::default()
        },
    );
    let log = "[  511.005586] vfio-pci 0000:07:00.0: BAR 1: can't reserve [mem 0xd0000000-0xdfffffff 64bit pref]";
    let e = &explain(log, Some(&ctx)).explained[0];
    assert!(
        e.explanation
            .contains("0000:07:00.0 is this host's boot VGA device"),
        "{}",
        e.explanation
    );
    assert!(
        e.fix
            .starts_with("`vfiokit setup-host --device 0000:07:00.0`"),
        "{}",
        e.fix
    );
    // The parameter that releases the framebuffer is the host kernel's, as setup-host plans it.
    for (release, has, lacks) in [
        (
            "6.8.12-11-pve",
            "no kernel parameter is needed",
            "initcall_blacklist",
        ),
        (
            "5.15.131-1-pve",
            "initcall_blacklist=sysfb_init",
            "no kernel parameter",
        ),
        ("5.4.203-1-pve", "video=efifb:off", "initcall_blacklist"),
    ] {
        let mut ctx = ctx.clone();
        ctx.kernel_release = Some(release.into());
        let e = &explain(log, Some(&ctx)).explained[0];
        assert!(
            e.fix.contains(has) && !e.fix.contains(lacks),
            "{release}: {}",
            e.fix
        );
    }
}

#[test]
fn report_json_has_the_contract_field_names() {
    let r = explain(&format!("{ROM_LINE}\n{ROM_LINE}\nnoise"), None);
    let v = serde_json::to_value(&r).unwrap();
    let e = &v["explained"][0];
    let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "count",
            "device",
            "explanation",
            "fix",
            "kind",
            "line",
            "severity",
            "text"
        ]
    );
    assert_eq!(e["kind"], "rom-header-invalid");
    assert_eq!(e["severity"], "warning");
    assert_eq!(e["device"], "0000:00:02.0");
    assert_eq!(e["line"], 1);
    assert_eq!(e["count"], 2);
    assert_eq!(v["unrecognized"], 1);
}

#[test]
fn a_rom_allocation_failure_on_the_boot_gpu_is_not_blamed_on_the_framebuffer() {
    // The 780M's log, line 118: the boot VGA device, already owned by vfio-pci.
    let line = "[  602.951998] vfio-pci 0000:c5:00.0: ROM [??? 0x00000000 flags 0x20000000]: can't assign; bogus alignment";
    let ctx = host("0000:c5:00.0", igd());
    let e = &explain(line, Some(&ctx)).explained[0];
    assert_eq!(e.kind, KindId::BarCantReserve);
    assert!(
        e.explanation.contains("allocation failure"),
        "{}",
        e.explanation
    );
    assert!(e.explanation.contains("expansion ROM"), "{}", e.explanation);
    assert!(
        !e.explanation.contains("framebuffer sits in its BAR"),
        "{}",
        e.explanation
    );
    assert!(!e.fix.contains("sysfb_init"), "{}", e.fix);
    assert!(!e.fix.contains("setup-host"), "{}", e.fix);
    assert!(
        e.fix.contains("romfile=") && e.fix.contains("pci=realloc"),
        "{}",
        e.fix
    );
    assert!(e.fix.contains("Above 4G decoding"), "{}", e.fix);
    // `can't reserve` on the boot GPU is the framebuffer's.
    let line = "vfio-pci 0000:c5:00.0: BAR 0: can't reserve [mem 0xc0000000-0xcfffffff 64bit pref]";
    let e = &explain(line, Some(&ctx)).explained[0];
    assert!(
        e.explanation.contains("framebuffer sits in its BAR"),
        "{}",
        e.explanation
    );
    assert!(
        !e.explanation.contains("allocation failure"),
        "{}",
        e.explanation
    );
    assert!(e.fix.contains("sysfb_init"), "{}", e.fix);
}
