//! `setup-host --share`, `setup-vm --mdev` and `inspect` on the iGPU, end to end.

mod common;
use common::vfiokit;

use vfiokit_fakesys::copy_recorded;

#[test]
fn share_the_elitedesk_igpu_by_gvt_and_give_a_vgpu() {
    let (dir, _root) = copy_recorded("elitedesk-800-g4/gvt").unwrap();
    let root = dir.path().to_str().unwrap();
    let (code, out, err) = vfiokit(&["--root", root, "--json", "inspect"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let igpu = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == "0000:00:02.0")
        .unwrap();
    assert_eq!(igpu["mdev_types"].as_array().unwrap().len(), 4);
    assert!(igpu["igpu_modes"].as_array().is_some_and(|m| m.len() == 3));

    let (code, out, err) = vfiokit(&[
        "--root",
        root,
        "setup-vm",
        "--vmid",
        "101",
        "--mdev",
        "00:02.0=i915-GVTg_V5_8",
        "--apply",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let conf = std::fs::read_to_string(dir.path().join("etc/pve/qemu-server/101.conf")).unwrap();
    assert!(
        conf.contains("hostpci0: 0000:00:02.0,mdev=i915-GVTg_V5_8\n"),
        "{conf}"
    );
    let (code, _, err) = vfiokit(&[
        "--root",
        root,
        "setup-vm",
        "--vmid",
        "101",
        "--mdev",
        "00:02.0=i915-GVTg_V5_4",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no available instances"), "{err}");

    let (dir, _root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let root = dir.path().to_str().unwrap();
    let (code, out, err) = vfiokit(&["--root", root, "--json", "setup-host", "--share", "00:02.0"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("i915.enable_gvt=1") && out.contains("+kvmgt"),
        "{out}"
    );
    let (code, _, err) = vfiokit(&[
        "--root",
        root,
        "setup-host",
        "--share",
        "00:02.0",
        "--vfs",
        "2",
    ]);
    assert_eq!(code, 3, "{err}");
    let (code, _, _) = vfiokit(&[
        "--root",
        root,
        "setup-host",
        "--share",
        "00:02.0",
        "--device",
        "00:14.3",
    ]);
    assert_eq!(code, 2);
}

#[test]
fn setup_host_refuses_to_end_sharing_a_vm_uses_and_a_vf() {
    let gvt = vfiokit_fakesys::testdata_dir().join("elitedesk-800-g4/gvt");
    let sriov = vfiokit_fakesys::testdata_dir().join("n100/sriov");
    let (gvt, sriov) = (gvt.to_str().unwrap(), sriov.to_str().unwrap());
    for root in [gvt, sriov] {
        let (code, out, err) = vfiokit(&["--root", root, "setup-host", "--device", "00:02.0"]);
        assert_eq!(code, 3, "{out}{err}");
        assert!(err.contains("VM 100") && err.contains("hostpci0"), "{err}");
        let (code, out, _) = vfiokit(&[
            "--root",
            root,
            "--json",
            "setup-host",
            "--device",
            "00:02.0",
        ]);
        assert_eq!(code, 3);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["in_use"][0]["vmid"], 100, "{v}");
        assert_eq!(v["in_use"][0]["key"], "hostpci0", "{v}");
    }
    for args in [
        ["setup-vm", "--vmid", "101", "--igd", "00:02.0"],
        ["setup-vm", "--vmid", "101", "--device", "00:02.0"],
    ] {
        let mut all = vec!["--root", gvt];
        all.extend(args);
        let (code, out, err) = vfiokit(&all);
        assert_eq!(code, 3, "{args:?}: {out}{err}");
        assert!(err.contains("VM 100"), "{err}");
    }
    let (code, out, err) = vfiokit(&["--root", sriov, "setup-host", "--device", "00:02.2"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains("setup-vm") && err.contains("vfio-pci"),
        "{err}"
    );
    assert!(!out.contains("driver_override"), "{out}");
}

#[test]
fn vfs_out_of_range_or_without_share_is_a_usage_error() {
    let sriov = vfiokit_fakesys::testdata_dir().join("n100/sriov");
    let root = sriov.to_str().unwrap();
    for n in ["0", "8"] {
        let (code, _, err) = vfiokit(&[
            "--root",
            root,
            "setup-host",
            "--share",
            "00:02.0",
            "--vfs",
            n,
        ]);
        assert_eq!(code, 2, "--vfs {n}: {err}");
        assert!(err.contains("1..=7") || err.contains("1..8"), "{err}");
    }
    let (code, _, err) = vfiokit(&["--root", root, "setup-host", "--vfs", "3"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--share"), "{err}");
    assert!(!err.contains("--device"), "{err}");
}

#[test]
fn sriov_without_sysfsutils_is_reported_by_verify_and_share() {
    let sriov = vfiokit_fakesys::testdata_dir().join("n100/sriov");
    let root = sriov.to_str().unwrap();
    let (code, out, err) = vfiokit(&["--root", root, "verify"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("sriov-not-persistent"), "{out}");
    let (code, out, err) = vfiokit(&[
        "--root",
        root,
        "setup-host",
        "--share",
        "00:02.0",
        "--vfs",
        "7",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("nothing to do"), "{out}");
    assert!(out.contains("apt install sysfsutils"), "{out}");
}
