//! Device facts for inspect: reset methods, ACS, SR-IOV, mediated types, broken config spaces.

use std::fs;

use vfiokit_fakesys::{PciFn, PcieType, copy_recorded, generate, hosts};
use vfiokit_pci::{PciAddress, ResetMethods, read_device, scan, scan_with};
use vfiokit_sysfs::SysRoot;

fn addr(s: &str) -> PciAddress {
    s.parse().unwrap()
}

/// Removes every `reset_method` file below the root's PCI functions.
fn remove_reset_methods(root: &SysRoot) {
    for d in scan(root).unwrap().devices {
        let _ = fs::remove_file(d.sysfs_path.join("reset_method"));
    }
}

#[test]
fn reset_methods_left_for_later_are_read_for_the_functions_asked_for() {
    let (_dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let mut host = scan_with(&root, ResetMethods::Later).unwrap();
    let igpu = addr("00:02.0");
    let nic = addr("00:1f.6");
    // Nothing read yet: no answer rather than a wrong one.
    assert!(!host.has_reset_method_files);
    assert_eq!(host.reset_methods(host.get(igpu).unwrap()), None);
    host.read_reset_methods(&root, |d| d.address == igpu);
    assert!(host.has_reset_method_files);
    assert_eq!(
        host.reset_methods(host.get(igpu).unwrap()),
        Some(vec!["flr".to_string(), "pm".to_string()])
    );
    assert_eq!(host.reset_methods(host.get(nic).unwrap()), None);
    // The full scan agrees on what was read.
    let full = scan(&root).unwrap();
    assert_eq!(
        full.get(igpu).unwrap().reset_method,
        host.get(igpu).unwrap().reset_method
    );

    // A function without a file, asked alone: the others are read until one has a file, so a
    // function without one still means "no method" rather than a guess from config space.
    let root_complex = addr("00:00.0");
    let mut host = scan_with(&root, ResetMethods::Later).unwrap();
    host.read_reset_methods(&root, |d| d.address == root_complex);
    assert!(host.has_reset_method_files);
    assert_eq!(
        host.reset_methods(host.get(root_complex).unwrap()),
        Some(Vec::new())
    );

    // Without any file (a kernel before 5.15), every function is read and guessed from config.
    remove_reset_methods(&root);
    let mut host = scan_with(&root, ResetMethods::Later).unwrap();
    host.read_reset_methods(&root, |d| d.address == igpu);
    assert!(!host.has_reset_method_files);
    assert!(host.devices.iter().all(|d| d.reset_method_read));
    let whole = scan(&root).unwrap();
    let guessed = host.reset_methods(host.get(igpu).unwrap());
    assert_eq!(guessed, whole.reset_methods(whole.get(igpu).unwrap()));
    assert_eq!(guessed, Some(vec!["flr".to_string(), "pm".to_string()]));
}

#[test]
fn reset_methods_come_from_the_files_and_else_from_config_and_topology() {
    let (_dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let host = scan(&root).unwrap();
    assert!(host.has_reset_method_files);
    let methods = |a: &str| host.reset_methods(host.get(addr(a)).unwrap()).unwrap();
    assert_eq!(methods("00:02.0"), ["flr", "pm"]);
    assert_eq!(methods("00:1f.6"), ["af_flr", "pm"]);
    // A function without the file has no method, whatever its config says.
    let igpu = host.get(addr("00:02.0")).unwrap();
    fs::remove_file(igpu.sysfs_path.join("reset_method")).unwrap();
    let host = scan(&root).unwrap();
    assert!(host.has_reset_method_files);
    assert_eq!(
        host.reset_methods(host.get(addr("00:02.0")).unwrap()),
        Some(Vec::<String>::new())
    );

    // The fake hosts write reset_method as the kernel derives it: without the files, the
    // derivation from config space and topology must say the same on every topology.
    let mut roots: Vec<(String, tempfile::TempDir, SysRoot)> = hosts::all()
        .into_iter()
        .map(|(name, h)| {
            let (dir, root) = h.write_temp().unwrap();
            (name.to_string(), dir, root)
        })
        .collect();
    let (dir, root) = generate::large_host(300, 7).unwrap().write_temp().unwrap();
    roots.push(("large_host(300)".to_string(), dir, root));
    let mut saw = std::collections::BTreeSet::new();
    for (name, _dir, root) in roots {
        let with = scan(&root).unwrap();
        remove_reset_methods(&root);
        let without = scan(&root).unwrap();
        assert!(!without.has_reset_method_files, "{name}");
        for (a, b) in with.devices.iter().zip(&without.devices) {
            let mut listed = with.reset_methods(a).unwrap();
            // The builder also lists `bus` for a bridge alone on its bus, or a function on a VMD
            // root bus; the kernel does not (`dev->subordinate`, `pci_is_root_bus`).
            let parent_is_bridge = a
                .parent
                .and_then(|p| with.get(p))
                .is_some_and(|p| p.is_bridge());
            if a.is_bridge() || !parent_is_bridge {
                listed.retain(|m| m != "bus");
            }
            assert_eq!(
                Some(listed.clone()),
                without.reset_methods(b),
                "{name} {}",
                a.address
            );
            saw.extend(listed);
        }
    }
    assert_eq!(
        saw.into_iter().collect::<Vec<_>>(),
        ["af_flr", "bus", "flr", "pm"],
        "every derived method is exercised"
    );
}

#[test]
fn sriov_physical_functions_list_their_virtual_functions() {
    let (_dir, root) = generate::large_host(400, 3).unwrap().write_temp().unwrap();
    let host = scan(&root).unwrap();
    assert!(host.problems.is_empty(), "{:?}", host.problems);
    let pfs: Vec<_> = host.devices.iter().filter(|d| d.sriov.is_some()).collect();
    assert!(!pfs.is_empty());
    let mut vfs_seen = 0;
    for pf in pfs {
        let sriov = pf.sriov.as_ref().unwrap();
        let want: Vec<PciAddress> = host
            .devices
            .iter()
            .filter(|d| d.physfn == Some(pf.address))
            .map(|d| d.address)
            .collect();
        assert_eq!(sriov.vfs, want, "{}", pf.address);
        let numvfs = fs::read_to_string(pf.sysfs_path.join("sriov_numvfs")).unwrap();
        let total = fs::read_to_string(pf.sysfs_path.join("sriov_totalvfs")).unwrap();
        assert_eq!(sriov.num_vfs.to_string(), numvfs.trim());
        assert_eq!(sriov.total_vfs.to_string(), total.trim());
        assert_eq!(usize::from(sriov.num_vfs), sriov.vfs.len());
        let cap = pf.config.as_ref().unwrap().sriov.unwrap();
        assert_eq!(
            (cap.total_vfs, cap.num_vfs),
            (sriov.total_vfs, sriov.num_vfs)
        );
        vfs_seen += sriov.vfs.len();
    }
    assert!(vfs_seen > 0);
    // Without the sysfs counts, the capability's stand in.
    let pf = host.devices.iter().find(|d| d.sriov.is_some()).unwrap();
    fs::remove_file(pf.sysfs_path.join("sriov_numvfs")).unwrap();
    fs::remove_file(pf.sysfs_path.join("sriov_totalvfs")).unwrap();
    let again = scan(&root).unwrap();
    assert_eq!(again.get(pf.address).unwrap().sriov, pf.sriov);
}

#[test]
fn mediated_types_are_read_below_i915_only() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let sys = dir.path().join("sys/devices/pci0000:00");
    let types = [
        (
            "i915-GVTg_V5_4",
            "GVTg_V5_4",
            "low_gm_size: 128MB\n",
            "0",
            0,
        ),
        ("i915-GVTg_V5_8", "GVTg_V5_8", "low_gm_size: 64MB\n", "1", 1),
    ];
    for (id, name, description, available, in_use) in types {
        let t = sys.join("0000:00:02.0/mdev_supported_types").join(id);
        fs::create_dir_all(t.join("devices")).unwrap();
        fs::write(t.join("name"), format!("{name}\n")).unwrap();
        fs::write(t.join("description"), description).unwrap();
        fs::write(t.join("available_instances"), format!("{available}\n")).unwrap();
        fs::write(t.join("device_api"), "vfio-pci\n").unwrap();
        for n in 0..in_use {
            fs::create_dir(t.join(format!("devices/uuid-{n}"))).unwrap();
        }
    }
    // The same directory below a driver that cannot have it is not read.
    fs::create_dir_all(sys.join("0000:00:1f.6/mdev_supported_types/x/devices")).unwrap();
    let host = scan(&root).unwrap();
    assert!(host.problems.is_empty(), "{:?}", host.problems);
    let got: Vec<(String, String, String, u32, u32)> = host
        .get(addr("00:02.0"))
        .unwrap()
        .mdev_types
        .iter()
        .map(|t| {
            (
                t.id.clone(),
                t.name.clone(),
                t.description.clone(),
                t.available_instances,
                t.instances_in_use,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "i915-GVTg_V5_4".into(),
                "GVTg_V5_4".into(),
                "low_gm_size: 128MB".into(),
                0,
                0
            ),
            (
                "i915-GVTg_V5_8".into(),
                "GVTg_V5_8".into(),
                "low_gm_size: 64MB".into(),
                1,
                1
            ),
        ]
    );
    assert!(host.get(addr("00:1f.6")).unwrap().mdev_types.is_empty());
    // A count that is not a number is a problem naming the file.
    let bad = sys.join("0000:00:02.0/mdev_supported_types/i915-GVTg_V5_4/available_instances");
    fs::write(&bad, "many\n").unwrap();
    let host = scan(&root).unwrap();
    assert_eq!(host.problems.len(), 1);
    assert!(host.problems[0].to_string().contains("available_instances"));
}

#[test]
fn a_config_space_cut_at_any_length_is_a_problem_never_a_panic() {
    let mut h = vfiokit_fakesys::Host::new();
    h.pci(
        PciFn::new("0000:00:1c.0", 0x8086, 0xa33c, 0x060400)
            .bridge(1)
            .pcie(PcieType::RootPort)
            .group(1),
    )
    .pci(
        PciFn::new("0000:01:00.0", 0x8086, 0x1572, 0x020000)
            .parent("0000:00:1c.0")
            .pm()
            .msix(8)
            .pcie(PcieType::Endpoint)
            .flr()
            .acs(0x5f, 0x1d)
            .sriov(8, 0x154c)
            .driver("i40e")
            .group(2),
    );
    let (_dir, root) = h.write_temp().unwrap();
    let link = root.sys_bus_devices("pci").join("0000:01:00.0");
    let config_path = root.resolve(&link).unwrap().join("config");
    let full = fs::read(&config_path).unwrap();
    assert_eq!(full.len(), 4096);
    let mut problems = Vec::new();
    let whole = read_device(&root, addr("01:00.0"), &link, &mut problems).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let cs = whole.config.as_ref().unwrap();
    assert!(cs.acs.is_some() && cs.sriov.is_some() && cs.pcie_flr && cs.pm);
    for len in 0..full.len() {
        fs::write(&config_path, &full[..len]).unwrap();
        let mut problems = Vec::new();
        let d = read_device(&root, addr("01:00.0"), &link, &mut problems)
            .unwrap_or_else(|| panic!("length {len}: the function is still listed"));
        assert_eq!(d.id(), whole.id(), "length {len}");
        let named = problems
            .iter()
            .any(|p| p.to_string().contains("0000:01:00.0/config"));
        // 64 bytes is a user's view, 256 a conventional function's: short but not broken.
        if len == 64 || len == 256 {
            assert!(problems.is_empty(), "length {len}: {problems:?}");
        } else {
            assert!(named, "length {len}: {problems:?}");
        }
        if len < 64 {
            assert_eq!(d.config, None, "length {len}");
        }
    }
}
