//! Scanning recorded hosts and fake topologies, and hosts whose files are broken.

use std::fs;
use std::os::unix::fs::symlink;

use vfiokit_fakesys::{copy_recorded, hosts};
use vfiokit_pci::{PciAddress, PciScan, PcieType, scan};
use vfiokit_sysfs::SysRoot;

fn addr(s: &str) -> PciAddress {
    s.parse().unwrap()
}

fn recorded(name: &str) -> PciScan {
    let root = SysRoot::new(vfiokit_fakesys::testdata_dir().join(name)).unwrap();
    scan(&root).unwrap()
}

#[test]
fn the_elitedesk_has_the_fourteen_functions_of_the_seed() {
    let host = recorded("elitedesk-800-g4/configured");
    assert!(host.problems.is_empty(), "{:?}", host.problems);
    let listed: Vec<String> = host.devices.iter().map(|d| d.address.to_string()).collect();
    assert_eq!(
        listed,
        [
            "0000:00:00.0",
            "0000:00:02.0",
            "0000:00:12.0",
            "0000:00:14.0",
            "0000:00:14.2",
            "0000:00:14.3",
            "0000:00:16.0",
            "0000:00:16.3",
            "0000:00:17.0",
            "0000:00:1f.0",
            "0000:00:1f.3",
            "0000:00:1f.4",
            "0000:00:1f.5",
            "0000:00:1f.6",
        ]
    );
    for d in &host.devices {
        assert_eq!(
            d.subsystem_vendor.map(|v| v.to_string()).as_deref(),
            Some("103c"),
            "{}",
            d.address
        );
        assert_eq!(
            d.subsystem_device.map(|v| v.to_string()).as_deref(),
            Some("83e2"),
            "{}",
            d.address
        );
        assert_eq!(d.parent, None, "{} sits on the root bus", d.address);
    }
    let igpu = host.get(addr("00:02.0")).unwrap();
    let cs = igpu.config.as_ref().unwrap();
    assert_eq!(cs.pcie, Some(PcieType::RcIntegratedEndpoint));
    assert!(cs.flr());
    assert_eq!(igpu.boot_vga, Some(true));
    assert_eq!(igpu.iommu_group, Some(0));
    assert_eq!(igpu.revision, Some(0));
    assert_eq!(igpu.id().to_string(), "8086:3e92");
    // The audio function is conventional PCI: no PCI Express capability, as dmesg says.
    let audio = host.get(addr("00:1f.3")).unwrap();
    assert_eq!(audio.config.as_ref().unwrap().pcie, None);
    assert_eq!(audio.revision, Some(0x10));
    assert_eq!(audio.boot_vga, None);
    // The I219-LM resets through the Advanced Features capability.
    let nic = host.get(addr("00:1f.6")).unwrap().config.clone().unwrap();
    assert!(nic.af_flr && !nic.pcie_flr && nic.flr());
    // Function 0 of a multi-function slot carries the bit.
    assert!(
        host.get(addr("00:1f.0"))
            .unwrap()
            .config
            .as_ref()
            .unwrap()
            .multifunction
    );
    assert!(!igpu.config.as_ref().unwrap().multifunction);
}

#[test]
fn modules_alias_names_the_drivers_lspci_names() {
    let root =
        SysRoot::new(vfiokit_fakesys::testdata_dir().join("elitedesk-800-g4/configured")).unwrap();
    let aliases = vfiokit_pci::load_module_aliases(&root).unwrap().unwrap();
    let host = scan(&root).unwrap();
    let modules =
        |a: &str| aliases.modules_for(host.get(addr(a)).unwrap().modalias.as_deref().unwrap());
    assert_eq!(
        modules("00:1f.3"),
        ["snd_hda_intel", "snd_sof_pci_intel_cnl"]
    );
    assert_eq!(modules("00:02.0"), ["i915"]);
    assert_eq!(modules("00:14.0"), ["xhci_pci"]);
    assert!(modules("00:1f.0").is_empty());
}

#[test]
fn parents_domains_and_acs_on_other_topologies() {
    let (_dir, root) = hosts::intel_vmd().write_temp().unwrap();
    let host = scan(&root).unwrap();
    assert!(host.problems.is_empty(), "{:?}", host.problems);
    let nvme = host.get(addr("10000:e1:00.0")).unwrap();
    assert_eq!(nvme.parent, Some(addr("10000:e0:1d.0")));
    let port = host.get(addr("10000:e0:1d.0")).unwrap();
    // The VMD root port's parent is the VMD controller in domain 0, through `pci10000:e0`.
    assert_eq!(port.parent, Some(addr("0000:00:0e.0")));
    assert!(port.is_bridge());
    let cs = port.config.as_ref().unwrap();
    assert_eq!(cs.pcie, Some(PcieType::RootPort));
    assert!(cs.acs.is_some_and(|a| a.isolates()));

    let (_dir, root) = hosts::no_iommu().write_temp().unwrap();
    let host = scan(&root).unwrap();
    assert!(host.devices.iter().all(|d| d.iommu_group.is_none()));

    let (_dir, root) = hosts::twin_gpus().write_temp().unwrap();
    let host = scan(&root).unwrap();
    let gpus: Vec<_> = host
        .devices
        .iter()
        .filter(|d| d.class.is_display() && d.vendor.0 == 0x10de)
        .collect();
    assert_eq!(gpus.len(), 2);
    assert_eq!(gpus[0].device, gpus[1].device);
    assert_ne!(gpus[0].iommu_group, gpus[1].iommu_group);
}

#[test]
fn every_topology_scans_without_problems() {
    for (name, host) in hosts::all() {
        let (_dir, root) = host.write_temp().unwrap();
        let scan = scan(&root).unwrap();
        assert!(scan.problems.is_empty(), "{name}: {:?}", scan.problems);
        assert!(!scan.devices.is_empty(), "{name}");
    }
}

#[test]
fn broken_files_are_reported_by_path_and_the_rest_is_still_read() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let dev = |a: &str| {
        root.path("sys/devices/pci0000:00")
            .join(format!("0000:00:{a}"))
    };
    // Without `uevent` (as an older recording has it) the attribute files are read.
    remove_uevents(&root);
    fs::remove_file(dev("12.0").join("vendor")).unwrap();
    fs::write(dev("14.2").join("class"), "0xnot-hex\n").unwrap();
    fs::remove_file(dev("16.0").join("driver")).unwrap();
    symlink("../../../bus/pci/drivers/gone", dev("16.0").join("driver")).unwrap();
    fs::remove_file(dev("16.3").join("iommu_group")).unwrap();
    symlink(
        "/sys/kernel/iommu_groups/5",
        dev("16.3").join("iommu_group"),
    )
    .unwrap();
    fs::write(dev("17.0").join("config"), [0x86, 0x80, 0x22]).unwrap();
    fs::create_dir(root.sys_bus_devices("pci").join("stray")).unwrap();

    let host = scan(&root).unwrap();
    let listed: Vec<String> = host.devices.iter().map(|d| d.address.to_string()).collect();
    assert_eq!(listed.len(), 12, "{listed:?}");
    assert!(!listed.contains(&"0000:00:12.0".into()) && !listed.contains(&"0000:00:14.2".into()));
    assert_eq!(host.get(addr("00:16.0")).unwrap().driver, None);
    assert_eq!(host.get(addr("00:16.3")).unwrap().iommu_group, None);
    assert_eq!(host.get(addr("00:17.0")).unwrap().config, None);
    assert_eq!(
        host.get(addr("00:17.0")).unwrap().driver.as_deref(),
        Some("ahci")
    );

    let problems: Vec<String> = host.problems.iter().map(ToString::to_string).collect();
    let base = dir.path().display().to_string();
    for needle in [
        "0000:00:12.0/vendor",
        "0000:00:14.2/class",
        "0000:00:16.0/driver",
        "0000:00:16.3/iommu_group: link leaves the root",
        "0000:00:17.0/config",
        "devices/stray",
    ] {
        assert!(
            problems
                .iter()
                .any(|p| p.contains(needle) && p.starts_with(&base)),
            "no problem naming {needle}: {problems:#?}"
        );
    }
    assert_eq!(problems.len(), 6, "{problems:#?}");
}

/// Removes every function's `uevent`, leaving the attribute files.
fn remove_uevents(root: &SysRoot) {
    for name in root.list(&root.sys_bus_devices("pci")).unwrap() {
        let real = root
            .resolve(&root.sys_bus_devices("pci").join(name))
            .unwrap();
        fs::remove_file(real.join("uevent")).unwrap();
    }
}

/// Everything a scan says, in one comparable string.
fn summary(scan: &PciScan) -> String {
    format!(
        "{:#?}\n{:?}\n{}",
        scan.devices, scan.problems, scan.has_reset_method_files
    )
}

#[test]
fn uevent_and_the_attribute_files_give_the_same_scan() {
    let mut hosts: Vec<(String, tempfile::TempDir, SysRoot)> = hosts::all()
        .into_iter()
        .map(|(name, host)| {
            let (dir, root) = host.write_temp().unwrap();
            (name.to_string(), dir, root)
        })
        .collect();
    for name in ["elitedesk-800-g4/fresh", "elitedesk-800-g4/configured"] {
        let (dir, root) = copy_recorded(name).unwrap();
        hosts.push((name.to_string(), dir, root));
    }
    for (name, _dir, root) in hosts {
        let fast = scan(&root).unwrap();
        assert!(fast.problems.is_empty(), "{name}: {:?}", fast.problems);
        remove_uevents(&root);
        let slow = scan(&root).unwrap();
        assert_eq!(summary(&fast), summary(&slow), "{name}");
    }
}

#[test]
fn a_broken_uevent_is_a_problem_and_the_files_stand_in() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let igpu = dir.path().join("sys/devices/pci0000:00/0000:00:02.0");
    fs::write(igpu.join("uevent"), "DRIVER=i915\nPCI_ID=8086:zz\n").unwrap();
    let nic = dir.path().join("sys/devices/pci0000:00/0000:00:1f.6");
    // A uevent without DRIVER= sends the reader to the link; one without ids, to the files.
    fs::write(nic.join("uevent"), "PCI_SLOT_NAME=0000:00:1f.6\n").unwrap();
    let host = scan(&root).unwrap();
    let problems: Vec<String> = host.problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("0000:00:02.0/uevent") && problems[0].contains("PCI_ID=8086:zz"),
        "{problems:#?}"
    );
    let igpu = host.get(addr("00:02.0")).unwrap();
    assert_eq!(igpu.id().to_string(), "8086:3e92");
    assert_eq!(igpu.driver.as_deref(), Some("i915"));
    let nic = host.get(addr("00:1f.6")).unwrap();
    assert_eq!(nic.id().to_string(), "8086:15bb");
    assert_eq!(nic.driver.as_deref(), Some("e1000e"));
    assert!(
        nic.modalias
            .as_deref()
            .is_some_and(|m| m.starts_with("pci:v00008086"))
    );
}

#[test]
fn a_root_without_pci_devices_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = SysRoot::new(dir.path()).unwrap();
    let err = scan(&root).unwrap_err().to_string();
    assert!(err.contains("sys/bus/pci/devices"), "{err}");
}

/// The last component of the link `name` in the function's directory, read with std.
fn link_last(dir: &std::path::Path, name: &str) -> Option<String> {
    let target = fs::read_link(dir.join(name)).ok()?;
    Some(target.file_name()?.to_str()?.to_string())
}

/// The scan takes each VF's `physfn` from its PF's SR-IOV capability when every config space is
/// whole, and tells the IOMMU crate it may build groups from the `iommu_group` links: both must
/// say what the links say, on every recorded, built and generated host.
#[test]
fn derived_physfn_and_groups_agree_with_the_links() {
    let mut roots: Vec<(String, Option<tempfile::TempDir>, SysRoot)> = Vec::new();
    for name in [
        "elitedesk-800-g4/fresh",
        "elitedesk-800-g4/configured",
        "elitedesk-800-g4/gvt",
        "am4-rtx2060/fresh",
        "n100/fresh",
        "n100/sriov",
        "minisforum-um880pro/fresh",
        "minisforum-um880pro/configured",
    ] {
        let root = SysRoot::new(vfiokit_fakesys::testdata_dir().join(name)).unwrap();
        roots.push((name.to_string(), None, root));
    }
    for (name, host) in hosts::all() {
        let (dir, root) = host.write_temp().unwrap();
        roots.push((name.to_string(), Some(dir), root));
    }
    for (n, seed) in [(400, 3), (1000, 1)] {
        let (dir, root) = vfiokit_fakesys::generate::large_host(n, seed)
            .unwrap()
            .write_temp()
            .unwrap();
        roots.push((format!("large_host({n}, {seed})"), Some(dir), root));
    }
    let mut vfs = 0;
    for (name, _dir, root) in &roots {
        let scan = scan(root).unwrap();
        assert!(scan.iommu_links_complete, "{name}");
        for d in &scan.devices {
            let physfn = link_last(&d.sysfs_path, "physfn").map(|n| addr(&n));
            assert_eq!(d.physfn, physfn, "{name} {}", d.address);
            vfs += usize::from(physfn.is_some());
            let group = link_last(&d.sysfs_path, "iommu_group").map(|g| g.parse().unwrap());
            assert_eq!(d.iommu_group, group, "{name} {}", d.address);
        }
    }
    assert!(vfs > 100, "VFs were compared: {vfs}");
}

#[test]
fn a_short_config_space_reads_every_physfn_link() {
    let (_dir, root) = vfiokit_fakesys::generate::large_host(400, 3)
        .unwrap()
        .write_temp()
        .unwrap();
    let whole = scan(&root).unwrap();
    // A user without CAP_SYS_ADMIN reads 64 bytes of config space: no SR-IOV capability is seen.
    for d in &whole.devices {
        let path = d.sysfs_path.join("config");
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..64]).unwrap();
    }
    let short = scan(&root).unwrap();
    let vfs = |s: &PciScan| -> Vec<_> { s.devices.iter().map(|d| (d.address, d.physfn)).collect() };
    assert_eq!(vfs(&whole), vfs(&short));
    assert!(short.devices.iter().any(|d| d.physfn.is_some()));
}
