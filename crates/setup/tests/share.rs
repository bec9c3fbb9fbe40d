//! Sharing the iGPU (issue 15): GVT-g and SR-IOV on copies of the recorded hosts.

use std::path::Path;

use vfiokit_fakesys::copy_recorded;
use vfiokit_plan::{Plan, SystemRunner, apply, undo};
use vfiokit_setup::{HostFacts, audit, host, share, vm};
use vfiokit_sysfs::SysRoot;

fn facts(root: &SysRoot) -> HostFacts {
    HostFacts::gather(root).unwrap()
}

fn igpu() -> vfiokit_pci::PciAddress {
    "00:02.0".parse().unwrap()
}

fn share_plan(root: &SysRoot, vfs: Option<u16>) -> Result<Plan, vfiokit_setup::Refusal> {
    share::plan(
        &facts(root),
        &share::Request {
            device: igpu(),
            vfs,
        },
    )
    .unwrap()
}

/// The new text of `rel` in the plan.
fn new_text(plan: &Plan, rel: &str) -> Option<String> {
    plan.files
        .iter()
        .find(|f| f.path == Path::new(rel))
        .map(|f| f.new.clone())
}

#[test]
fn gvt_on_the_fresh_elitedesk_keeps_i915_and_undo_restores_every_file() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let before = vfiokit_fakesys::snapshot(&dir.path().join("etc")).unwrap();
    let plan = share_plan(&root, None).unwrap();
    let grub = new_text(&plan, "etc/default/grub").unwrap();
    assert!(
        grub.contains("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet i915.enable_gvt=1 intel_iommu=on\""),
        "{grub}"
    );
    let modules = new_text(&plan, "etc/modules").unwrap();
    assert!(modules.lines().any(|l| l == "kvmgt"), "{modules}");
    let all = plan.render();
    assert!(!all.contains("+options vfio-pci"), "{all}");
    assert!(!all.contains("+blacklist i915"), "{all}");
    assert!(!modules.contains("vfio"), "{modules}");
    let argv: Vec<String> = plan.commands.iter().map(|c| c.argv.join(" ")).collect();
    assert_eq!(argv, ["update-initramfs -u -k all", "update-grub"]);
    assert!(plan.files.iter().all(|f| !f.reasons.is_empty()));

    apply(
        &root,
        &plan,
        "setup-host --share 00:02.0",
        &root,
        &SystemRunner,
    )
    .unwrap();
    // Planned again: nothing left to do.
    assert!(share_plan(&root, None).unwrap().is_empty());
    undo(&root, &root, &SystemRunner).unwrap();
    assert_eq!(
        vfiokit_fakesys::snapshot(&dir.path().join("etc")).unwrap(),
        before
    );
}

#[test]
fn gvt_is_refused_on_a_kernel_without_kvmgt_and_sriov_on_a_gvt_generation() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/gvt").unwrap();
    let dep = dir.path().join("lib/modules/6.8.12-11-pve/modules.dep");
    let text = std::fs::read_to_string(&dep).unwrap();
    let without: String = text
        .lines()
        .filter(|l| !l.contains("kvmgt.ko:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&dep, without).unwrap();
    let refused = share_plan(&root, None).unwrap_err();
    assert!(refused.message.contains("kvmgt.ko"), "{refused}");
    let refused = share_plan(&root, Some(2)).unwrap_err();
    assert!(refused.message.contains("no SR-IOV"), "{refused}");
}

#[test]
fn sriov_on_the_n100_refuses_without_the_dkms_module_and_plans_with_it() {
    let (dir, root) = copy_recorded("n100/fresh").unwrap();
    let refused = share_plan(&root, Some(7)).unwrap_err();
    assert!(refused.message.contains("i915-sriov-dkms"), "{refused}");
    assert!(refused.message.contains("6.17.9-1-pve"), "{refused}");
    assert!(refused.message.contains("2026.05.06"), "{refused}");
    // GVT-g does not exist on Alder Lake: --vfs is required.
    assert!(
        share::plan(
            &facts(&root),
            &share::Request {
                device: igpu(),
                vfs: None
            }
        )
        .is_err()
    );

    // The dkms module installed for the running kernel (n100/sriov's modules.dep).
    let sriov =
        vfiokit_fakesys::testdata_dir().join("n100/sriov/lib/modules/6.17.9-1-pve/modules.dep");
    std::fs::copy(
        sriov,
        dir.path().join("lib/modules/6.17.9-1-pve/modules.dep"),
    )
    .unwrap();
    let before = vfiokit_fakesys::snapshot(&dir.path().join("etc")).unwrap();
    let plan = share_plan(&root, Some(7)).unwrap();
    let cmdline = new_text(&plan, "etc/kernel/cmdline").unwrap();
    for p in [
        "intel_iommu=on",
        "i915.enable_guc=3",
        "i915.max_vfs=7",
        "module_blacklist=xe",
    ] {
        assert!(cmdline.split_whitespace().any(|w| w == p), "{p}: {cmdline}");
    }
    let sysfs = new_text(&plan, "etc/sysfs.conf").unwrap();
    assert_eq!(sysfs, "devices/pci0000:00/0000:00:02.0/sriov_numvfs = 7\n");
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("apt install sysfsutils")),
        "{:?}",
        plan.notes
    );
    let argv: Vec<String> = plan.commands.iter().map(|c| c.argv.join(" ")).collect();
    assert_eq!(argv, ["proxmox-boot-tool refresh"]);
    apply(
        &root,
        &plan,
        "setup-host --share 00:02.0 --vfs 7",
        &root,
        &SystemRunner,
    )
    .unwrap();
    undo(&root, &root, &SystemRunner).unwrap();
    assert_eq!(
        vfiokit_fakesys::snapshot(&dir.path().join("etc")).unwrap(),
        before
    );
}

#[test]
fn the_recorded_sriov_host_is_set_up_and_its_pf_cannot_be_given_away() {
    let (_dir, root) = copy_recorded("n100/sriov").unwrap();
    assert!(share_plan(&root, Some(7)).unwrap().is_empty());
    let f = facts(&root);
    // Set up but for sysfsutils, which the recording lacks.
    let checks: Vec<&str> = audit(&f, &[]).iter().map(|f| f.check).collect();
    assert_eq!(checks, ["sriov-not-persistent", "vm-vf-not-persistent"]);
    let req = vm::Request {
        vmid: 100,
        devices: vec![igpu()],
        ..Default::default()
    };
    let refused = vm::plan(&f, &req).unwrap().unwrap_err();
    assert!(refused.message.contains("destroys every VF"), "{refused}");
    let req = vm::Request {
        vmid: 100,
        devices: vec!["00:02.2".parse().unwrap()],
        ..Default::default()
    };
    let planned = vm::plan(&f, &req).unwrap().unwrap();
    let text = planned.plan.files[0].new.clone();
    assert!(text.contains("hostpci1: 0000:00:02.2,pcie=1\n"), "{text}");
}

#[test]
fn verify_finds_sriov_not_persisted_and_the_dkms_module_missing() {
    let (dir, root) = copy_recorded("n100/sriov").unwrap();
    std::fs::remove_file(dir.path().join("etc/sysfs.conf")).unwrap();
    std::fs::write(
        dir.path()
            .join("sys/bus/pci/devices/0000:00:02.0/sriov_numvfs"),
        "0\n",
    )
    .unwrap();
    let fresh =
        vfiokit_fakesys::testdata_dir().join("n100/fresh/lib/modules/6.17.9-1-pve/modules.dep");
    std::fs::copy(
        fresh,
        dir.path().join("lib/modules/6.17.9-1-pve/modules.dep"),
    )
    .unwrap();
    let checks: Vec<&str> = audit(&facts(&root), &[]).iter().map(|f| f.check).collect();
    assert!(checks.contains(&"sriov-numvfs-zero"), "{checks:?}");
    assert!(checks.contains(&"sriov-dkms-missing"), "{checks:?}");
}

#[test]
fn inspect_lists_the_four_gvt_types_by_id_and_the_modes() {
    let (_dir, root) = copy_recorded("elitedesk-800-g4/gvt").unwrap();
    let f = facts(&root);
    let report = vfiokit_setup::inspect::report_with_facts(&f, f.aliases.as_ref());
    let v = serde_json::to_value(&report).unwrap();
    let dev = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == "0000:00:02.0")
        .unwrap();
    let mut ids: Vec<&str> = dev["mdev_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            "i915-GVTg_V5_1",
            "i915-GVTg_V5_2",
            "i915-GVTg_V5_4",
            "i915-GVTg_V5_8"
        ]
    );
    let modes = dev["igpu_modes"].as_array().unwrap();
    let gvt = modes.iter().find(|m| m["mode"] == "gvt-g").unwrap();
    assert_eq!(gvt["supported"], true);
    assert_eq!(gvt["missing"].as_array().unwrap().len(), 0, "{gvt}");
    let sriov = modes.iter().find(|m| m["mode"] == "sr-iov").unwrap();
    assert_eq!(sriov["supported"], false);
}

#[test]
fn setup_vm_gives_a_vgpu_with_an_instance_left_and_refuses_one_without() {
    let (_dir, root) = copy_recorded("elitedesk-800-g4/gvt").unwrap();
    let f = facts(&root);
    let mdev = |ty: &str| vm::Request {
        vmid: 101,
        mdev: vec![(igpu(), ty.to_string())],
        ..Default::default()
    };
    let planned = vm::plan(&f, &mdev("i915-GVTg_V5_8")).unwrap().unwrap();
    let text = planned.plan.files[0].new.clone();
    assert!(
        text.contains("hostpci0: 0000:00:02.0,mdev=i915-GVTg_V5_8\n"),
        "{text}"
    );
    let refused = vm::plan(&f, &mdev("i915-GVTg_V5_4")).unwrap().unwrap_err();
    assert!(
        refused
            .message
            .contains("has no available instances of 'i915-GVTg_V5_4'"),
        "{refused}"
    );
    let refused = vm::plan(&f, &mdev("i915-GVTg_V9_9")).unwrap().unwrap_err();
    assert!(
        refused.message.contains("has no type 'i915-GVTg_V9_9'"),
        "{refused}"
    );
    // VM 100 holds its instance: verify has nothing to say about it.
    assert!(audit(&f, &[]).is_empty(), "{:?}", audit(&f, &[]));
}

#[test]
fn verify_finds_gvt_without_enable_gvt_kvmgt_or_types() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/gvt").unwrap();
    let cmdline = dir.path().join("proc/cmdline");
    let text = std::fs::read_to_string(&cmdline)
        .unwrap()
        .replace(" i915.enable_gvt=1", "");
    std::fs::write(&cmdline, text).unwrap();
    let checks: Vec<&str> = audit(&facts(&root), &[]).iter().map(|f| f.check).collect();
    assert!(checks.contains(&"gvt-cmdline"), "{checks:?}");
    std::fs::remove_dir_all(dir.path().join("sys/module/kvmgt")).unwrap();
    std::fs::remove_dir_all(
        dir.path()
            .join("sys/bus/pci/devices/0000:00:02.0/mdev_supported_types"),
    )
    .unwrap();
    let found = audit(&facts(&root), &[]);
    let checks: Vec<&str> = found.iter().map(|f| f.check).collect();
    assert!(checks.contains(&"gvt-kvmgt"), "{checks:?}");
    assert!(checks.contains(&"gvt-no-mdev-types"), "{checks:?}");
}

#[test]
fn switching_modes_removes_the_other_modes_lines() {
    // Legacy → GVT-g: the iGPU's vfio-pci id and the i915 blacklist go.
    let (_dir, root) = copy_recorded("elitedesk-800-g4/configured").unwrap();
    let plan = share_plan(&root, None).unwrap();
    let all = plan.render();
    assert!(
        all.contains("-options vfio-pci ids=8086:3e92,8086:a348"),
        "{all}"
    );
    assert!(!all.contains("+options vfio-pci ids=8086:3e92"), "{all}");
    assert!(all.contains("-blacklist i915"), "{all}");
    // GVT-g → whole device, once no VM uses a vGPU: enable_gvt and kvmgt go.
    let (dir, root) = copy_recorded("elitedesk-800-g4/gvt").unwrap();
    drop_vm_key(dir.path(), 100, "hostpci0");
    let f = facts(&root);
    let req = host::Request {
        devices: vec![igpu()],
        ..Default::default()
    };
    let planned = host::plan(&f, &req).unwrap().unwrap();
    let grub = new_text(&planned.plan, "etc/default/grub").unwrap();
    assert!(!grub.contains("enable_gvt"), "{grub}");
    let modules = new_text(&planned.plan, "etc/modules").unwrap();
    assert!(!modules.lines().any(|l| l == "kvmgt"), "{modules}");
    // SR-IOV → whole device: refused while VFs are enabled, even with no VM using one.
    let (dir, root) = copy_recorded("n100/sriov").unwrap();
    drop_vm_key(dir.path(), 100, "hostpci0");
    let refused = host::plan(&facts(&root), &req).unwrap().unwrap_err();
    assert!(
        refused.message.contains("turn SR-IOV off first"),
        "{refused}"
    );
    assert!(refused.in_use.is_empty(), "{refused:?}");
}

/// Removes `key:` lines from VM `vmid`'s config under the copied root.
fn drop_vm_key(dir: &Path, vmid: u32, key: &str) {
    let conf = dir.join(format!("etc/pve/qemu-server/{vmid}.conf"));
    let text: String = std::fs::read_to_string(&conf)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(&format!("{key}:")))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(conf, text).unwrap();
}

fn host_req(device: &str) -> host::Request {
    host::Request {
        devices: vec![device.parse().unwrap()],
        ..Default::default()
    }
}

#[test]
fn giving_the_igpu_away_whole_is_refused_while_a_vm_uses_its_vgpu() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/gvt").unwrap();
    let f = facts(&root);
    let refused = host::plan(&f, &host_req("00:02.0")).unwrap().unwrap_err();
    assert!(refused.message.contains("VM 100"), "{refused}");
    assert!(refused.message.contains("hostpci0"), "{refused}");
    assert_eq!(refused.in_use.len(), 1, "{refused:?}");
    assert_eq!(
        (refused.in_use[0].vmid, refused.in_use[0].key.as_str()),
        (100, "hostpci0")
    );
    // setup-vm: neither legacy IGD nor whole passthrough of the shared iGPU, for another VM.
    for req in [
        vm::Request {
            vmid: 101,
            igd: Some(igpu()),
            ..Default::default()
        },
        vm::Request {
            vmid: 101,
            devices: vec![igpu()],
            ..Default::default()
        },
    ] {
        let refused = vm::plan(&f, &req).unwrap().unwrap_err();
        assert!(
            refused.message.contains("VM 100") && refused.message.contains("hostpci0"),
            "{refused}"
        );
    }
    // With the vGPU entry gone, the whole-device plan removes GVT-g's lines.
    drop_vm_key(dir.path(), 100, "hostpci0");
    let f = facts(&root);
    let planned = host::plan(&f, &host_req("00:02.0")).unwrap().unwrap();
    let grub = new_text(&planned.plan, "etc/default/grub").unwrap();
    assert!(!grub.contains("enable_gvt"), "{grub}");
}

#[test]
fn setup_host_refuses_the_sriov_pf_and_its_vfs() {
    let (_dir, root) = copy_recorded("n100/sriov").unwrap();
    let f = facts(&root);
    let refused = host::plan(&f, &host_req("00:02.0")).unwrap().unwrap_err();
    assert!(refused.message.contains("destroys every VF"), "{refused}");
    assert!(
        refused.message.contains("VM 100") && refused.message.contains("hostpci0"),
        "{refused}"
    );
    assert_eq!(refused.in_use.len(), 1, "{refused:?}");
    let refused = host::plan(&f, &host_req("00:02.2")).unwrap().unwrap_err();
    assert!(refused.message.contains("setup-vm"), "{refused}");
    assert!(refused.message.contains("vfio-pci"), "{refused}");
    // setup-vm names the VM that uses a VF as well.
    let req = vm::Request {
        vmid: 100,
        devices: vec![igpu()],
        ..Default::default()
    };
    let refused = vm::plan(&f, &req).unwrap().unwrap_err();
    assert!(refused.message.contains("VM 100"), "{refused}");
}

#[test]
fn inspect_does_not_suggest_giving_away_an_igpu_whose_vgpu_a_vm_uses() {
    let (_dir, root) = copy_recorded("elitedesk-800-g4/gvt").unwrap();
    let f = facts(&root);
    let d = f.host.device(igpu()).unwrap();
    let modes = share::igpu_modes(&f, d);
    let whole = modes.iter().find(|m| m.mode == "whole-device").unwrap();
    let all = whole.missing.join("\n");
    assert!(!all.contains("setup-host --device"), "{all}");
    assert!(all.contains("VM 100") && all.contains("hostpci0"), "{all}");
}

#[test]
fn verify_finds_a_vgpu_whose_parent_loses_gvt_at_the_next_boot() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/gvt").unwrap();
    let grub = dir.path().join("etc/default/grub");
    let text = std::fs::read_to_string(&grub)
        .unwrap()
        .replace(" i915.enable_gvt=1", "")
        .replace("i915.enable_gvt=1", "");
    std::fs::write(&grub, text).unwrap();
    let found = audit(&facts(&root), &[]);
    let f = found
        .iter()
        .find(|f| f.check == "vm-mdev-parent-not-gvt")
        .unwrap_or_else(|| panic!("{found:?}"));
    assert!(f.message.contains("VM 100 hostpci0"), "{}", f.message);
}

#[test]
fn verify_warns_when_the_vf_count_is_not_persistent() {
    // The recording: sriov_numvfs = 7 in /etc/sysfs.conf, but sysfsutils is not installed.
    let (dir, root) = copy_recorded("n100/sriov").unwrap();
    let found = audit(&facts(&root), &[]);
    let checks: Vec<&str> = found.iter().map(|f| f.check).collect();
    assert!(checks.contains(&"sriov-not-persistent"), "{found:?}");
    assert!(checks.contains(&"vm-vf-not-persistent"), "{found:?}");
    let f = found
        .iter()
        .find(|f| f.check == "sriov-not-persistent")
        .unwrap();
    assert_eq!(f.severity, vfiokit_setup::rules::Severity::Warning);
    assert!(f.fix.contains("apt install sysfsutils"), "{}", f.fix);
    // sysfsutils installed: nothing to say.
    let marker = dir.path().join("var/lib/dpkg/info/sysfsutils.list");
    std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
    std::fs::write(&marker, "/etc/sysfs.conf\n").unwrap();
    let found = audit(&facts(&root), &[]);
    assert!(found.is_empty(), "{found:?}");
    // No sriov_numvfs line at all: both again.
    std::fs::remove_file(dir.path().join("etc/sysfs.conf")).unwrap();
    let checks: Vec<&str> = audit(&facts(&root), &[]).iter().map(|f| f.check).collect();
    assert!(checks.contains(&"sriov-not-persistent"), "{checks:?}");
    assert!(checks.contains(&"vm-vf-not-persistent"), "{checks:?}");
}

#[test]
fn sharing_plans_add_intel_iommu_on_with_the_setup_host_reason() {
    let (_dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let plan = share_plan(&root, None).unwrap();
    let grub = new_text(&plan, "etc/default/grub").unwrap();
    assert!(grub.contains("intel_iommu=on"), "{grub}");
    let all = plan.render();
    assert!(
        all.contains("an older kernel picked from the boot menu"),
        "{all}"
    );
    assert!(!all.contains("iommu=pt"), "{all}");
}
