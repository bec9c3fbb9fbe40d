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
