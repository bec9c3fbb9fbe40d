//! The rule table on recorded hosts: what `verify` flags is what `setup-host` and
//! `verify --fix` fix, applied and undone through the engine.

use std::path::Path;

use vfiokit_fakesys::copy_recorded;
use vfiokit_plan::{SystemRunner, apply, undo};
use vfiokit_setup::{Finding, HostFacts, Scope, audit, fix_plan, host};
use vfiokit_sysfs::SysRoot;

fn fixable_outside_pve(found: &[Finding]) -> Vec<String> {
    found
        .iter()
        .filter(|f| f.fixable && !f.path.as_ref().is_some_and(|p| p.starts_with("etc/pve")))
        .map(|f| format!("{}: {}", f.check, f.message))
        .collect()
}

fn seed_request() -> host::Request {
    host::Request {
        devices: vec!["00:02.0".parse().unwrap(), "00:14.3".parse().unwrap()],
        force_collateral: vec![],
    }
}

#[test]
fn the_configured_seed_host_has_fixable_findings_that_setup_host_fixes() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/configured").unwrap();
    let before = vfiokit_fakesys::snapshot(&dir.path().join("etc")).unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let found = audit(&facts, &[]);
    let checks: Vec<&str> = found
        .iter()
        .filter(|f| f.fixable)
        .map(|f| f.check)
        .collect();
    assert_eq!(
        checks,
        [
            "allow-unsafe-interrupts",
            "vfio-virqfd",
            "vfio-ids-unpassable"
        ],
        "{found:#?}"
    );
    assert!(found.iter().all(|f| f.fixable == f.edit.is_some()));

    let planned = host::plan(&facts, &seed_request()).unwrap().unwrap();
    apply(&root, &planned.plan, "setup-host", &root, &SystemRunner).unwrap();
    let modprobe = std::fs::read_to_string(dir.path().join("etc/modprobe.d/vfio.conf")).unwrap();
    let modules = std::fs::read_to_string(dir.path().join("etc/modules")).unwrap();
    assert!(!modprobe.contains("8086:a348"), "{modprobe}");
    assert!(!modprobe.contains("allow_unsafe_interrupts"), "{modprobe}");
    assert!(!modprobe.contains("blacklist snd_hda_intel"), "{modprobe}");
    assert!(modprobe.contains("ids=8086:3e92,8086:a370"), "{modprobe}");
    assert!(!modules.contains("vfio_virqfd"), "{modules}");
    let after = audit(&HostFacts::gather(&root).unwrap(), &[]);
    assert_eq!(fixable_outside_pve(&after), Vec::<String>::new());

    undo(&root, &root, &SystemRunner).unwrap();
    assert_eq!(
        vfiokit_fakesys::snapshot(&dir.path().join("etc")).unwrap(),
        before,
        "undo restores every file byte for byte"
    );
}

#[test]
fn verify_fix_leaves_no_fixable_finding_and_undoes() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/configured").unwrap();
    let before = vfiokit_fakesys::snapshot(&dir.path().join("etc")).unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let plan = fix_plan(&facts, &audit(&facts, &[])).unwrap();
    assert_eq!(plan.files.len(), 2, "{}", plan.render());
    assert_eq!(
        plan.commands.len(),
        1,
        "only the initramfs: the boot line is unchanged"
    );
    apply(&root, &plan, "verify --fix", &root, &SystemRunner).unwrap();
    let after = audit(&HostFacts::gather(&root).unwrap(), &[]);
    assert!(after.iter().all(|f| !f.fixable), "{after:#?}");
    // What is left no file edit can fix: a pending reboot, a ROM that is not there yet.
    assert!(after.iter().any(|f| f.check == "romfile-missing"));
    undo(&root, &root, &SystemRunner).unwrap();
    assert_eq!(
        vfiokit_fakesys::snapshot(&dir.path().join("etc")).unwrap(),
        before
    );
    // A second fix plan of a fixed host is empty.
    apply(&root, &plan, "verify --fix", &root, &SystemRunner).unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    assert!(fix_plan(&facts, &audit(&facts, &[])).unwrap().is_empty());
}

#[test]
fn a_forced_device_keeps_its_vfio_lines() {
    let (_dir, root) = copy_recorded("elitedesk-800-g4/configured").unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let audio = "00:1f.3".parse().unwrap();
    let refusal = host::plan(
        &facts,
        &host::Request {
            devices: vec![audio],
            force_collateral: vec![],
        },
    )
    .unwrap()
    .unwrap_err();
    let force = refusal
        .force_collateral
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let planned = host::plan(
        &facts,
        &host::Request {
            devices: vec![audio],
            force_collateral: force,
        },
    )
    .unwrap()
    .unwrap();
    let vfio = planned
        .plan
        .files
        .iter()
        .find(|f| f.path.ends_with("vfio.conf"))
        .unwrap();
    assert!(vfio.new.contains("8086:a348"), "{}", vfio.new);
    assert!(vfio.new.contains("blacklist snd_hda_intel"), "{}", vfio.new);
}

#[test]
fn refusals_are_typed() {
    let root = SysRoot::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/elitedesk-800-g4/fresh"
    ))
    .unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let refusal = host::plan(
        &facts,
        &host::Request {
            devices: vec!["00:1f.3".parse().unwrap()],
            force_collateral: vec![],
        },
    )
    .unwrap()
    .unwrap_err();
    assert!(
        refusal
            .harms
            .iter()
            .any(|h| h.address == "0000:00:1f.6" && h.role == "default-route-nic"),
        "{:#?}",
        refusal.harms
    );
    assert!(
        refusal.alternatives.iter().any(|a| a.contains("8087:0aaa")),
        "{:#?}",
        refusal.alternatives
    );
    assert!(
        refusal
            .force_collateral
            .contains(&"0000:00:1f.6".to_string())
    );
    assert!(refusal.to_string().starts_with("refused: "));
}

/// A modules file with `vfio_virqfd` on a kernel and the finding the rule gives.
fn virqfd_on(release: &str) -> Option<Finding> {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    std::fs::write(dir.path().join("etc/modules"), "vfio\nvfio_virqfd\n").unwrap();
    std::fs::write(
        dir.path().join("proc/sys/kernel/osrelease"),
        format!("{release}\n"),
    )
    .unwrap();
    audit(&HostFacts::gather(&root).unwrap(), &[])
        .into_iter()
        .find(|f| f.check == "vfio-virqfd")
}

#[test]
fn vfio_virqfd_is_a_finding_only_from_6_2_with_its_line() {
    assert!(virqfd_on("5.15.64-1-pve").is_none());
    assert!(virqfd_on("6.1.10-1-pve").is_none());
    let f = virqfd_on("6.8.12-11-pve").unwrap();
    assert!(f.fixable);
    assert_eq!(
        (f.path.as_deref(), f.line),
        (Some(Path::new("etc/modules")), Some(2))
    );
}

#[test]
fn every_rule_id_is_unique_and_kebab_case() {
    let ids: Vec<&str> = vfiokit_setup::rules::RULES.iter().map(|r| r.id).collect();
    let unique: std::collections::BTreeSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    assert!(
        ids.iter()
            .all(|id| id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
    );
}

/// Appends a line to VM 100's config of a copied host.
fn add_to_vm100(dir: &Path, line: &str) {
    let path = dir.join("etc/pve/qemu-server/100.conf");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(line);
    std::fs::write(&path, text).unwrap();
}

#[test]
fn a_device_the_modprobe_configuration_claims_waits_for_a_reboot_not_for_setup_host() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    add_to_vm100(
        dir.path(),
        "hostpci0: 0000:00:02.0,legacy-igd=1,romfile=x.rom\n",
    );
    let facts = HostFacts::gather(&root).unwrap();
    let before: Vec<Finding> = audit(&facts, &[])
        .into_iter()
        .filter(|f| f.check == "vm-device-host-driver")
        .collect();
    assert_eq!(before.len(), 1, "{before:#?}");
    assert_eq!(before[0].fix, "vfiokit setup-host --device 0000:00:02.0");
    let req = host::Request {
        devices: vec!["00:02.0".parse().unwrap()],
        force_collateral: vec![],
    };
    let planned = host::plan(&facts, &req).unwrap().unwrap();
    apply(&root, &planned.plan, "setup-host", &root, &SystemRunner).unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let after: Vec<Finding> = audit(&facts, &[])
        .into_iter()
        .filter(|f| f.check == "vm-device-host-driver")
        .collect();
    assert_eq!(after.len(), 1, "{after:#?}");
    assert!(after[0].fix.starts_with("reboot"), "{after:#?}");
    assert!(
        after[0].message.contains("until a reboot: vfio.conf:"),
        "{after:#?}"
    );
    // setup-vm says the same.
    let req = vfiokit_setup::vm::Request {
        vmid: 100,
        igd: Some("00:02.0".parse().unwrap()),
        romfile: Some("x.rom".into()),
        ..Default::default()
    };
    let plan = vfiokit_setup::vm::plan(&facts, &req).unwrap().unwrap();
    let notes = plan.plan.notes.join("\n");
    assert!(notes.contains("bound to i915 until a reboot"), "{notes}");
    assert!(!notes.contains("vfiokit setup-host"), "{notes}");
}

#[test]
fn a_display_without_rom_bar_and_romfile_is_romfile_needed() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    add_to_vm100(dir.path(), "hostpci0: 0000:00:02.0,legacy-igd=1\n");
    let facts = HostFacts::gather(&root).unwrap();
    let found: Vec<Finding> = audit(&facts, &[])
        .into_iter()
        .filter(|f| f.check == "romfile-needed")
        .collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].severity, vfiokit_setup::Severity::Warning);
    assert!(!found[0].fixable);
    assert!(
        found[0]
            .message
            .contains("hostpci0: legacy-igd=1 on 0000:00:02.0")
    );
    // setup-vm warns when it plans legacy mode without a ROM, and not with one.
    let mut req = vfiokit_setup::vm::Request {
        vmid: 100,
        igd: Some("00:02.0".parse().unwrap()),
        ..Default::default()
    };
    let (dir2, root2) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let facts2 = HostFacts::gather(&root2).unwrap();
    let notes = vfiokit_setup::vm::plan(&facts2, &req)
        .unwrap()
        .unwrap()
        .plan
        .notes;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("has no ROM BAR and gets no romfile")),
        "{notes:#?}"
    );
    req.romfile = Some("x.rom".into());
    let notes = vfiokit_setup::vm::plan(&facts2, &req)
        .unwrap()
        .unwrap()
        .plan
        .notes;
    assert!(
        !notes.iter().any(|n| n.contains("no ROM BAR")),
        "{notes:#?}"
    );
    drop(dir2);
    // With a romfile the rule is quiet.
    let (dir, root) = (dir, root);
    let path = dir.path().join("etc/pve/qemu-server/100.conf");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("legacy-igd=1\n", "legacy-igd=1,romfile=x.rom\n"),
    )
    .unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    assert!(
        audit(&facts, &[])
            .iter()
            .all(|f| f.check != "romfile-needed")
    );
}

#[test]
fn kernel_log_findings_fold_by_kind_and_device_and_leave_covered_ones_to_their_rule() {
    // The 780M host: reset-unsupported on c5:00.0 is two lines, 3 times each.
    let (dir, root) = copy_recorded("minisforum-um880pro/configured").unwrap();
    let path = dir.path().join("etc/pve/qemu-server/100.conf");
    let text = std::fs::read_to_string(&path).unwrap();
    // Without the VM passing c5:00.0, vm-device-no-reset does not report it: the log does.
    std::fs::write(
        &path,
        text.replace(
            "hostpci0: 0000:c5:00.0,pcie=1,x-vga=1,romfile=vbios_1002_1900.bin\n",
            "",
        ),
    )
    .unwrap();
    let found = audit(&HostFacts::gather(&root).unwrap(), &[]);
    let resets: Vec<&Finding> = found
        .iter()
        .filter(|f| {
            f.check == "kernel-log" && f.message.starts_with("reset-unsupported on 0000:c5:00.0")
        })
        .collect();
    assert_eq!(resets.len(), 1, "{found:#?}");
    assert!(
        resets[0].message.contains(", 6 times in the kernel log"),
        "{}",
        resets[0].message
    );
    assert_eq!(resets[0].line, Some(2));
    // With it, vm-device-no-reset says it: the log finding goes.
    std::fs::write(&path, text).unwrap();
    let found = audit(&HostFacts::gather(&root).unwrap(), &[]);
    assert!(found.iter().any(|f| f.check == "vm-device-no-reset"));
    assert!(
        !found
            .iter()
            .any(|f| f.message.starts_with("reset-unsupported")),
        "{found:#?}"
    );
    // The seed: pending-reboot names pcie_acs_override, so the log's ACS line is not repeated.
    let (_dir, root) = copy_recorded("elitedesk-800-g4/configured").unwrap();
    let found = audit(&HostFacts::gather(&root).unwrap(), &[]);
    assert!(
        found
            .iter()
            .any(|f| f.check == "pending-reboot" && f.message.contains("pcie_acs_override"))
    );
    assert!(
        !found
            .iter()
            .any(|f| f.message.starts_with("acs-override-active")),
        "{found:#?}"
    );
}

#[test]
fn pending_reboot_is_one_finding_per_direction() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let req = host::Request {
        devices: vec!["00:02.0".parse().unwrap()],
        force_collateral: vec![],
    };
    let planned = host::plan(&facts, &req).unwrap().unwrap();
    apply(&root, &planned.plan, "setup-host", &root, &SystemRunner).unwrap();
    std::fs::write(
        dir.path().join("proc/cmdline"),
        "BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet nomodeset\n",
    )
    .unwrap();
    let found: Vec<Finding> = audit(&HostFacts::gather(&root).unwrap(), &[])
        .into_iter()
        .filter(|f| f.check == "pending-reboot")
        .collect();
    let messages: Vec<&str> = found.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(
        messages[0].starts_with("intel_iommu=on iommu=pt are in "),
        "{messages:#?}"
    );
    assert!(
        messages[1].starts_with("nomodeset is on the running command line"),
        "{messages:#?}"
    );
}

/// The findings and the seed's plan as text, for comparing two gathers.
fn findings(facts: &HostFacts) -> Vec<String> {
    audit(facts, &[])
        .iter()
        .map(|f| format!("{} {:?} {}", f.check, f.path, f.message))
        .collect()
}

#[test]
fn scoped_facts_find_what_the_full_gather_finds_on_every_recorded_host() {
    let mut compared = 0;
    for (name, _) in vfiokit_fakesys::hosts::recorded() {
        let (_dir, root) = copy_recorded(name).unwrap();
        let full = HostFacts::gather(&root).unwrap();
        let scoped = HostFacts::gather_for(&root, &Scope::vms()).unwrap();
        assert_eq!(findings(&scoped), findings(&full), "{name}");
        compared += findings(&full).len();
        // Every function a VM holds has its reset methods; the others may be left unread.
        for vm in scoped.vms.iter().filter_map(|v| v.config()) {
            let entries = vm.keys().into_iter().filter(|k| k.starts_with("hostpci"));
            for key in entries {
                let Ok(entry) = vfiokit_vmconf::HostPci::parse(vm.get(key).unwrap()) else {
                    continue;
                };
                for d in scoped.host.pci.devices.iter() {
                    if entry.host.iter().any(|id| {
                        id.matches(
                            d.address.domain,
                            d.address.bus,
                            d.address.device,
                            d.address.function,
                        )
                    }) {
                        assert!(
                            scoped.host.pci.reset_methods(d).is_some(),
                            "{name} {key} {}",
                            d.address
                        );
                    }
                }
            }
        }
        // The reset remedies' files are read where an AMD function is.
        let amd = full.host.pci.devices.iter().any(|d| d.vendor.0 == 0x1002);
        assert_eq!(scoped.reset.is_some(), amd, "{name}");
        let request = seed_request();
        if name.starts_with("elitedesk") {
            let scoped = HostFacts::gather_for(&root, &request.scope()).unwrap();
            let plan = |facts: &HostFacts| {
                format!(
                    "{:?}",
                    host::plan(facts, &request).map(|r| r.map(|p| p.plan.to_json()))
                )
            };
            let (a, b) = (plan(&scoped), plan(&full));
            assert_eq!(a, b, "{name}");
        }
    }
    assert!(
        compared > 10,
        "the recorded hosts have findings to compare: {compared}"
    );
}

#[test]
fn only_the_rom_files_a_vm_or_the_request_names_are_read() {
    let (dir, root) = copy_recorded("minisforum-um880pro/configured").unwrap();
    let kvm = dir.path().join("usr/share/kvm");
    std::fs::create_dir_all(kvm.join("sub")).unwrap();
    for f in ["vbios_1002_1900.bin", "pxe-e1000.rom", "asked.rom"] {
        std::fs::write(kvm.join(f), b"\x55\xaa rom").unwrap();
    }
    let roms = |facts: &HostFacts| facts.roms.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        roms(&HostFacts::gather_for(&root, &Scope::vms()).unwrap()),
        ["vbios_1002_1900.bin"]
    );
    let asked = Scope::Request {
        functions: vec![],
        roms: vec!["asked.rom".into(), "../../etc/hostname".into()],
    };
    assert_eq!(
        roms(&HostFacts::gather_for(&root, &asked).unwrap()),
        ["asked.rom", "vbios_1002_1900.bin"]
    );
    // Everything: the whole directory, its files only.
    assert_eq!(
        roms(&HostFacts::gather(&root).unwrap()),
        ["asked.rom", "pxe-e1000.rom", "vbios_1002_1900.bin"]
    );
}

#[test]
fn verify_reports_vm_config_errors_at_their_lines() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    add_to_vm100(
        dir.path(),
        "garbage line here\nhostpci0: 0000:00:02.0,,,=\n",
    );
    let facts = HostFacts::gather(&root).unwrap();
    let found: Vec<(Option<usize>, String)> = audit(&facts, &[])
        .into_iter()
        .filter(|f| f.check == "vm-config-invalid")
        .map(|f| (f.line, f.message))
        .collect();
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[0].0, Some(21));
    assert!(
        found[0]
            .1
            .ends_with("100.conf:21: VM 100: unable to parse config: garbage line here"),
        "{found:#?}"
    );
    assert_eq!(found[1].0, Some(22));
    // setup-vm leaves those errors alone and says so, by the lines on disk; it does not call
    // them its own.
    let req = vfiokit_setup::vm::Request {
        vmid: 100,
        devices: vec!["00:14.3".parse().unwrap()],
        ..Default::default()
    };
    let notes = vfiokit_setup::vm::plan(&facts, &req)
        .unwrap()
        .unwrap()
        .plan
        .notes
        .join("\n");
    assert!(
        notes.contains("already has 2 error(s) this plan leaves as they are"),
        "{notes}"
    );
    assert!(
        notes.contains("100.conf:21: error:") && notes.contains("100.conf:22: error:"),
        "{notes}"
    );
    assert!(!notes.contains("error in the result"), "{notes}");
}

#[test]
fn legacy_igd_takes_pcie_off_the_vms_other_entries() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    add_to_vm100(dir.path(), "hostpci1: 0000:00:14.3,pcie=1\n");
    let facts = HostFacts::gather(&root).unwrap();
    let req = vfiokit_setup::vm::Request {
        vmid: 100,
        igd: Some("00:02.0".parse().unwrap()),
        romfile: Some("x.rom".into()),
        ..Default::default()
    };
    let planned = vfiokit_setup::vm::plan(&facts, &req).unwrap().unwrap();
    let new = vfiokit_vmconf::VmConfig::parse(&planned.plan.files[0].new);
    assert_eq!(new.get("hostpci1"), Some("0000:00:14.3"));
    assert!(
        new.get("machine")
            .is_some_and(|m| m.starts_with("pc-i440fx"))
    );
    // What the plan writes, Proxmox starts: no error in it.
    let errors: Vec<_> = vfiokit_vmconf::lint(&new, &Default::default())
        .into_iter()
        .filter(|d| d.severity == vfiokit_vmconf::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(
        planned
            .qm
            .iter()
            .any(|(k, v)| k == "hostpci1" && v == "0000:00:14.3")
    );
}

#[test]
fn a_vm_device_the_host_cannot_give_is_not_sent_to_setup_host() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    // 00:17.0 is the root disk's SATA controller.
    add_to_vm100(dir.path(), "hostpci2: 0000:00:17.0\n");
    let facts = HostFacts::gather(&root).unwrap();
    let found = audit(&facts, &[]);
    let driver = found
        .iter()
        .find(|f| f.check == "vm-device-host-driver")
        .unwrap();
    assert!(
        driver
            .fix
            .starts_with("remove it from the VM (qm set 100 --delete hostpci2)"),
        "{}",
        driver.fix
    );
    assert!(found.iter().any(|f| f.check == "vm-device-unsafe"));
}

#[test]
fn qm_set_is_refused_for_a_plan_that_writes_more_than_the_config() {
    let (_dir, root) = copy_recorded("minisforum-um880pro/fresh").unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let mut req = vfiokit_setup::vm::Request {
        vmid: 100,
        devices: vec!["c5:00.0".parse().unwrap()],
        ..Default::default()
    };
    let plain = vfiokit_setup::vm::plan(&facts, &req).unwrap().unwrap();
    assert!(
        plain
            .qm_command(100)
            .unwrap()
            .starts_with("qm set 100 --hostpci0 0000:c5:00.0")
    );
    req.reset_remedy = true;
    let remedy = vfiokit_setup::vm::plan(&facts, &req).unwrap().unwrap();
    let err = remedy.qm_command(100).unwrap_err();
    assert!(
        err.contains("/var/lib/vz/snippets/vfiokit-reset-100.sh"),
        "{err}"
    );
}

#[test]
fn setup_vm_names_what_leaves_with_the_group() {
    let (_dir, root) = copy_recorded("am4-rtx2060/fresh").unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let req = vfiokit_setup::vm::Request {
        vmid: 100,
        devices: vec!["07:00.1".parse().unwrap()],
        ..Default::default()
    };
    let notes = vfiokit_setup::vm::plan(&facts, &req)
        .unwrap()
        .unwrap()
        .plan
        .notes;
    let group: Vec<&String> = notes
        .iter()
        .filter(|n| n.contains("same IOMMU group"))
        .collect();
    // The GPU (the host's boot display), its USB and UCSI functions; not the bridges.
    assert_eq!(group.len(), 3, "{notes:#?}");
    assert!(group[0].starts_with("0000:07:00.0 (10de:1e89, the host's boot display and console)"));
    assert!(
        !notes.iter().any(|n| n.starts_with("0000:00:03.")),
        "{notes:#?}"
    );
}

#[test]
fn a_requested_bridge_is_refused_and_its_alternatives_say_what_the_host_needs() {
    let (_dir, root) = copy_recorded("n100/fresh").unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let req = host::Request {
        devices: vec!["00:1c.0".parse().unwrap()],
        force_collateral: vec![],
    };
    let refusal = host::plan(&facts, &req).unwrap().unwrap_err();
    assert!(
        refusal.message.contains("is a PCI bridge"),
        "{}",
        refusal.message
    );
    assert_eq!(
        refusal.alternatives,
        ["0000:01:00.0 is behind the bridge too, but the host needs it (default-route-nic)"]
    );
}

#[test]
fn iommu_off_on_the_command_line_becomes_pt() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let grub = dir.path().join("etc/default/grub");
    let text = std::fs::read_to_string(&grub).unwrap().replace(
        "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"",
        "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet iommu=off\"",
    );
    std::fs::write(&grub, text).unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let plan = host::plan(&facts, &seed_request()).unwrap().unwrap().plan;
    let new = &plan
        .files
        .iter()
        .find(|f| f.path == Path::new("etc/default/grub"))
        .unwrap()
        .new;
    assert!(
        new.contains("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet iommu=pt intel_iommu=on\""),
        "{new}"
    );
}

#[test]
fn legacy_igd_says_which_machine_options_it_drops() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let conf = dir.path().join("etc/pve/qemu-server/100.conf");
    let text = std::fs::read_to_string(&conf).unwrap().replace(
        "machine: pc-q35-9.2+pve1\n",
        "machine: pc-q35-9.2+pve1,viommu=intel\n",
    );
    std::fs::write(&conf, text).unwrap();
    let facts = HostFacts::gather(&root).unwrap();
    let req = vfiokit_setup::vm::Request {
        vmid: 100,
        igd: Some("00:02.0".parse().unwrap()),
        romfile: Some("x.rom".into()),
        ..Default::default()
    };
    let planned = vfiokit_setup::vm::plan(&facts, &req).unwrap().unwrap();
    let why = planned.plan.files[0].reasons.join("\n");
    assert!(
        why.contains("the old machine line's options (viommu=intel) are dropped"),
        "{why}"
    );
}
