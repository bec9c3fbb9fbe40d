//! Resets: `vm-device-no-reset` in `verify`, the warning and the remedy in `setup-vm` (the 780M's
//! remove-and-rescan hookscript, vendor-reset for Navi 10), and no warning where the host or VFIO
//! can reset the function (the RTX 2060, a function with a method).

use std::fs;
use std::path::Path;

use vfiokit_fakesys::{BarKind, PciFn, PcieType, copy_recorded, hosts};
use vfiokit_pci::PciAddress;
use vfiokit_plan::{SystemRunner, apply, undo};
use vfiokit_setup::{HostFacts, audit, vm};
use vfiokit_sysfs::SysRoot;

fn a(s: &str) -> PciAddress {
    s.parse().unwrap()
}

fn facts_of(root: &SysRoot) -> HostFacts {
    HostFacts::gather(root).unwrap()
}

fn no_reset(facts: &HostFacts) -> Vec<String> {
    audit(facts, &[])
        .into_iter()
        .filter(|f| f.check == "vm-device-no-reset")
        .map(|f| format!("{} | {}", f.message, f.fix))
        .collect()
}

fn reset_notes(plan: &vfiokit_plan::Plan) -> Vec<&String> {
    plan.notes
        .iter()
        .filter(|n| n.contains("reset method") || n.contains("reset bug"))
        .collect()
}

fn request(vmid: u32, devices: &[&str], remedy: bool) -> vm::Request {
    vm::Request {
        vmid,
        devices: devices.iter().map(|d| a(d)).collect(),
        reset_remedy: remedy,
        ..Default::default()
    }
}

#[test]
fn verify_names_the_780m_gpu_without_a_reset_method() {
    let (_dir, root) = copy_recorded("minisforum-um880pro/configured").unwrap();
    let facts = facts_of(&root);
    let found = audit(&facts, &[]);
    let checks: Vec<&str> = found.iter().map(|f| f.check).collect();
    assert!(checks.contains(&"vfio-virqfd"), "{checks:?}");
    let mine: Vec<_> = found
        .iter()
        .filter(|f| f.check == "vm-device-no-reset")
        .collect();
    // Only the GPU function: its HDMI audio c5:00.1 lists `pm`.
    assert_eq!(mine.len(), 1, "{mine:#?}");
    let f = mine[0];
    assert_eq!(f.severity, vfiokit_setup::Severity::Warning);
    assert!(!f.fixable && f.edit.is_none());
    assert_eq!(
        f.path.as_deref(),
        Some(Path::new("etc/pve/qemu-server/100.conf"))
    );
    assert!(f.message.starts_with("VM 100 hostpci0: 0000:c5:00.0 (1002:1900, an AMD APU's integrated GPU) has no reset method"), "{}", f.message);
    assert!(
        f.message.contains("does not hold 0000:c5:00.2"),
        "{}",
        f.message
    );
    for word in [
        "Workaround: the remove-and-rescan hookscript",
        "It is a workaround, not a fix",
        "still has no reset method",
        "from inside the guest is not covered",
        "--reset-remedy",
        "VM 100 has hookscript local:snippets/vm100-hooks.sh",
    ] {
        assert!(f.fix.contains(word), "{word:?} not in {}", f.fix);
    }
}

#[test]
fn setup_vm_on_the_fresh_780m_warns_and_plans_the_hookscript_on_request() {
    let (dir, root) = copy_recorded("minisforum-um880pro/fresh").unwrap();
    let facts = facts_of(&root);
    // Without --reset-remedy: a warning naming the workaround, nothing else planned for it.
    let plain = vm::plan(&facts, &request(100, &["c5:00.0", "c5:00.1"], false))
        .unwrap()
        .unwrap();
    let notes = reset_notes(&plain.plan);
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(notes[0].starts_with(
        "warning: 0000:c5:00.0 (1002:1900, an AMD APU's integrated GPU) has no reset method"
    ));
    assert!(notes[0].contains("--reset-remedy") && notes[0].contains("workaround, not a fix"));
    assert_eq!(plain.plan.files.len(), 1);
    assert!(!plain.plan.files[0].new.contains("hookscript"));

    // Without the snippets directory it is planned all the same (the apply creates it), with a
    // note that the storage local must hold snippets; the command prints as a shell runs it.
    let planned = vm::plan(&facts, &request(100, &["c5:00.0", "c5:00.1"], true))
        .unwrap()
        .unwrap();
    let notes = planned.plan.notes.join("\n");
    assert!(
        notes.contains("var/lib/vz/snippets does not exist")
            && notes.contains("pvesm set local --content"),
        "{notes}"
    );
    let rendered = planned.plan.render();
    assert!(
        rendered.contains("  sh -c 'test ! -e /var/lib/vz/snippets/vfiokit-reset-100.sh || chmod +x /var/lib/vz/snippets/vfiokit-reset-100.sh'    # "),
        "{rendered}"
    );
    let (dir2, root2) = copy_recorded("minisforum-um880pro/fresh").unwrap();
    apply(&root2, &planned.plan, "setup-vm", &root2, &SystemRunner).unwrap();
    assert!(
        dir2.path()
            .join("var/lib/vz/snippets/vfiokit-reset-100.sh")
            .is_file()
    );
    undo(&root2, &root2, &SystemRunner).unwrap();
    fs::create_dir_all(dir.path().join("var/lib/vz/snippets")).unwrap();
    let facts = facts_of(&root);
    let planned = vm::plan(&facts, &request(100, &["c5:00.0", "c5:00.1"], true))
        .unwrap()
        .unwrap();
    let plan = &planned.plan;
    let paths: Vec<&Path> = plan.files.iter().map(|f| f.path.as_path()).collect();
    assert_eq!(
        paths,
        [
            Path::new("etc/pve/qemu-server/100.conf"),
            Path::new("var/lib/vz/snippets/vfiokit-reset-100.sh")
        ]
    );
    let conf = &plan.files[0];
    assert!(
        conf.new
            .contains("\nhookscript: local:snippets/vfiokit-reset-100.sh\n")
    );
    assert!(
        conf.reasons
            .iter()
            .any(|r| r.starts_with("hookscript: workaround, not a fix"))
    );
    assert!(planned.qm.contains(&(
        "hookscript".into(),
        "local:snippets/vfiokit-reset-100.sh".into()
    )));
    let script = &plan.files[1];
    assert_eq!(script.old, None);
    expect_test::expect![[r#"
        #!/bin/sh
        # Written by vfiokit for VM 100: the remove-and-rescan workaround for an AMD APU GPU
        # without a reset method. It is a workaround, not a fix: the GPU still cannot be reset,
        # a shutdown from inside the guest does not run pre-stop, and a hung GPU still needs a
        # host reboot. Proxmox calls it as: vfiokit-reset-100.sh <vmid> <phase>
        phase="$2"
        echo "vfiokit-reset: VM $1 $phase" > /dev/kmsg
        case "$phase" in
        pre-start|post-stop)
            # bring back the functions pre-stop removed, freshly enumerated
            echo 1 > /sys/bus/pci/rescan
            sleep 2
            ;;
        pre-stop)
            if [ -e /sys/bus/pci/devices/0000:c5:00.0 ]; then
                echo 1 > /sys/bus/pci/devices/0000:c5:00.0/remove
                sleep 1
            fi
            if [ -e /sys/bus/pci/devices/0000:c5:00.1 ]; then
                echo 1 > /sys/bus/pci/devices/0000:c5:00.1/remove
                sleep 1
            fi
            ;;
        esac
        exit 0
    "#]]
    .assert_eq(&script.new);
    assert!(script.reasons[0].starts_with("workaround, not a fix"));
    let chmod = &plan.commands[0].argv;
    assert_eq!(chmod[..2], ["sh", "-c"]);
    assert!(chmod[2].ends_with("chmod +x /var/lib/vz/snippets/vfiokit-reset-100.sh"));

    // Apply and undo, byte for byte.
    let conf_path = dir.path().join("etc/pve/qemu-server/100.conf");
    let before = fs::read(&conf_path).unwrap();
    apply(&root, plan, "setup-vm", &root, &SystemRunner).unwrap();
    let hook = dir.path().join("var/lib/vz/snippets/vfiokit-reset-100.sh");
    assert_eq!(fs::read_to_string(&hook).unwrap(), script.new);
    assert_eq!(fs::read_to_string(&conf_path).unwrap(), conf.new);
    // Planning again changes nothing.
    let again = vm::plan(
        &facts_of(&root),
        &request(100, &["c5:00.0", "c5:00.1"], true),
    )
    .unwrap()
    .unwrap();
    assert!(again.plan.is_empty(), "{}", again.plan.render());
    undo(&root, &root, &SystemRunner).unwrap();
    assert_eq!(fs::read(&conf_path).unwrap(), before);
    assert!(!hook.exists());
}

#[test]
fn another_hookscript_is_not_replaced() {
    let (dir, root) = copy_recorded("minisforum-um880pro/configured").unwrap();
    fs::create_dir_all(dir.path().join("var/lib/vz/snippets")).unwrap();
    let facts = facts_of(&root);
    let refusal = vm::plan(&facts, &request(100, &["c5:00.0"], true))
        .unwrap()
        .unwrap_err();
    assert!(
        refusal
            .message
            .contains("already has hookscript local:snippets/vm100-hooks.sh"),
        "{}",
        refusal.message
    );
}

#[test]
fn the_rtx_2060_is_reset_by_vfio_through_its_bus() {
    let (_dir, root) = copy_recorded("am4-rtx2060/fresh").unwrap();
    let facts = facts_of(&root);
    // The kernel lists no method for the GPU and its audio (no FLR, and not alone on bus 07)...
    for f in ["07:00.0", "07:00.1"] {
        let d = facts.host.device(a(f)).unwrap();
        assert_eq!(facts.host.pci.reset_methods(d), Some(Vec::<String>::new()));
    }
    // ...but the VM gets every function of bus 07, so VFIO resets the bus: no warning.
    let planned = vm::plan(&facts, &request(100, &["07:00.0"], false))
        .unwrap()
        .unwrap();
    assert!(planned.plan.files[0].new.contains("hostpci0: 0000:07:00,"));
    assert_eq!(reset_notes(&planned.plan), Vec::<&String>::new());
    apply(&root, &planned.plan, "setup-vm", &root, &SystemRunner).unwrap();
    assert_eq!(no_reset(&facts_of(&root)), Vec::<String>::new());
    // With --reset-remedy there is nothing to do.
    let remedy = vm::plan(&facts_of(&root), &request(100, &["07:00.0"], true))
        .unwrap()
        .unwrap();
    assert!(remedy.plan.is_empty());
    assert!(
        remedy
            .plan
            .notes
            .iter()
            .any(|n| n.contains("nothing planned"))
    );
}

/// A Ryzen host with a Navi 10 card (RX 5700 XT, `1002:731f`, no reset method, and its HDMI
/// audio `1002:ab38` with `pm`) behind root port 00:03.1, VM 100 without devices, and optionally
/// vendor-reset built by DKMS for the running kernel.
fn navi10(vendor_reset: bool) -> (tempfile::TempDir, SysRoot) {
    let mut h = hosts::amd_ryzen();
    h.pci(
        PciFn::new("0000:00:03.1", 0x1022, 0x1483, 0x060400)
            .bridge(9)
            .driver("pcieport")
            .group(20)
            .pcie(PcieType::RootPort)
            .pm(),
    )
    .pci(
        PciFn::new("0000:09:00.0", 0x1002, 0x731f, 0x030000)
            .parent("0000:00:03.1")
            .driver("vfio-pci")
            .group(21)
            .bar(0, BarKind::Mem64Prefetch, 0x7d_0000_0000, 256 << 20)
            .pcie(PcieType::LegacyEndpoint)
            .reset_method(&[]),
    )
    .pci(
        PciFn::new("0000:09:00.1", 0x1002, 0xab38, 0x040300)
            .parent("0000:00:03.1")
            .driver("vfio-pci")
            .group(21)
            .bar(0, BarKind::Mem32, 0xfca0_0000, 0x4000)
            .pcie(PcieType::LegacyEndpoint)
            .pm(),
    )
    .file(
        "etc/pve/qemu-server/100.conf",
        "bios: ovmf\nmachine: q35\nmemory: 8192\nname: macos\n",
    )
    .file("etc/modules", "vfio\nvfio_iommu_type1\nvfio_pci\n");
    if vendor_reset {
        h.module_dep("updates/dkms/vendor-reset.ko:");
    }
    let (dir, root) = h.write_temp().unwrap();
    fs::create_dir_all(dir.path().join("etc/udev/rules.d")).unwrap();
    (dir, root)
}

#[test]
fn navi_10_gets_vendor_reset() {
    let (_dir, root) = navi10(false);
    let facts = facts_of(&root);
    // The Radeon RX 6000 (Navi 21) of the host lists `pm` and is not a vendor-reset family:
    // a function with a method gets no warning.
    let rdna2 = vm::plan(&facts, &request(100, &["01:00.0"], false))
        .unwrap()
        .unwrap();
    assert_eq!(reset_notes(&rdna2.plan), Vec::<&String>::new());

    let plain = vm::plan(&facts, &request(100, &["09:00.0"], false))
        .unwrap()
        .unwrap();
    let notes = reset_notes(&plain.plan);
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(notes[0].starts_with("warning: 0000:09:00.0 (1002:731f, AMD Navi 10) has the AMD reset bug and no reset method"), "{}", notes[0]);
    assert!(notes[0].contains("vendor-reset") && notes[0].contains("device_specific"));
    assert!(notes[0].contains("--reset-remedy"));

    // Not built for this kernel: refused, saying what to install.
    let refusal = vm::plan(&facts, &request(100, &["09:00.0"], true))
        .unwrap()
        .unwrap_err();
    for word in [
        "not built for the running kernel 6.8.12-11-pve",
        "lib/modules/6.8.12-11-pve/modules.dep",
        "proxmox-headers-$(uname -r)",
        "https://github.com/gnif/vendor-reset",
        "dkms install .",
        "vfiokit never downloads",
    ] {
        assert!(
            refusal.message.contains(word),
            "{word:?} not in {}",
            refusal.message
        );
    }

    // In the VM config it is a verify warning with the same remedy.
    apply(&root, &plain.plan, "setup-vm", &root, &SystemRunner).unwrap();
    let found = no_reset(&facts_of(&root));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].starts_with("VM 100 hostpci0: 0000:09:00.0 (1002:731f, AMD Navi 10)"));
    assert!(found[0].contains("dkms install ."));
}

#[test]
fn navi_10_plans_the_module_and_the_udev_rule() {
    let (dir, root) = navi10(true);
    let facts = facts_of(&root);
    let planned = vm::plan(&facts, &request(100, &["09:00.0"], true))
        .unwrap()
        .unwrap();
    let plan = &planned.plan;
    let paths: Vec<&Path> = plan.files.iter().map(|f| f.path.as_path()).collect();
    assert_eq!(
        paths,
        [
            Path::new("etc/pve/qemu-server/100.conf"),
            Path::new("etc/modules"),
            Path::new("etc/udev/rules.d/99-vfiokit-vendor-reset.rules"),
        ]
    );
    assert!(!plan.files[0].new.contains("hookscript"));
    assert_eq!(
        plan.files[1].new,
        "vfio\nvfio_iommu_type1\nvfio_pci\nvendor-reset\n"
    );
    assert!(plan.files[1].reasons[0].contains("0000:09:00.0 (AMD Navi 10)"));
    let rule = &plan.files[2].new;
    assert!(rule.ends_with(
        "ACTION==\"add\", SUBSYSTEM==\"pci\", ATTR{vendor}==\"0x1002\", ATTR{device}==\"0x731f\", RUN+=\"/bin/sh -c '/sbin/modprobe vendor-reset; echo device_specific > /sys$env{DEVPATH}/reset_method'\"\n"
    ), "{rule}");
    assert_eq!(plan.commands[0].argv[0], "update-initramfs");

    let before = fs::read(dir.path().join("etc/modules")).unwrap();
    apply(&root, plan, "setup-vm", &root, &SystemRunner).unwrap();
    let again = vm::plan(&facts_of(&root), &request(100, &["09:00.0"], true))
        .unwrap()
        .unwrap();
    assert!(again.plan.is_empty(), "{}", again.plan.render());
    undo(&root, &root, &SystemRunner).unwrap();
    assert_eq!(fs::read(dir.path().join("etc/modules")).unwrap(), before);
    assert!(
        !dir.path()
            .join("etc/udev/rules.d/99-vfiokit-vendor-reset.rules")
            .exists()
    );
}

#[test]
fn device_specific_clears_the_warning() {
    let (dir, root) = navi10(true);
    let rm = dir
        .path()
        .join("sys/bus/pci/devices/0000:09:00.0/reset_method");
    let real = fs::canonicalize(&rm).unwrap_or(rm);
    fs::write(&real, "device_specific\n").unwrap();
    let facts = facts_of(&root);
    let planned = vm::plan(&facts, &request(100, &["09:00.0"], false))
        .unwrap()
        .unwrap();
    assert_eq!(reset_notes(&planned.plan), Vec::<&String>::new());
}
