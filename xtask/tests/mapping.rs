//! Cluster resource mappings on a three-node cluster of recorded EliteDesks.

mod common;
use common::vfiokit;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use vfiokit_fakesys::copy_recorded;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Moves every IOMMU group N to N+10, as a BIOS update or another kernel can renumber them.
fn renumber_groups(root: &Path) {
    let groups = root.join("sys/kernel/iommu_groups");
    let mut ids: Vec<u32> = fs::read_dir(&groups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    for id in ids {
        let new = id + 10;
        fs::rename(groups.join(id.to_string()), groups.join(new.to_string())).unwrap();
        for dev in fs::read_dir(groups.join(new.to_string()).join("devices")).unwrap() {
            let name = dev.unwrap().file_name();
            let link = root
                .join("sys/devices/pci0000:00")
                .join(&name)
                .join("iommu_group");
            fs::remove_file(&link).unwrap();
            symlink(format!("../../../kernel/iommu_groups/{new}"), &link).unwrap();
        }
    }
}

/// Removes a PCI function from a recorded host.
fn remove_device(root: &Path, addr: &str) {
    fs::remove_file(root.join("sys/bus/pci/devices").join(addr)).unwrap();
    for e in fs::read_dir(root.join("sys/kernel/iommu_groups")).unwrap() {
        let _ = fs::remove_file(e.unwrap().path().join("devices").join(addr));
    }
    let _ = fs::remove_file(root.join("sys/bus/pci/drivers/i915").join(addr));
    fs::remove_dir_all(root.join("sys/devices/pci0000:00").join(addr)).unwrap();
}

#[test]
fn three_nodes_map_the_igpu_and_a_node_that_cannot_serve_is_named() {
    let (d1, pve1) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let (d2, pve2) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let (d3, pve3) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    fs::write(d1.path().join("etc/hostname"), "pve1\n").unwrap();
    renumber_groups(d2.path());
    remove_device(d3.path(), "0000:00:02.0");
    let (r1, r2, r3) = (s(pve1.root()), s(pve2.root()), s(pve3.root()));
    let (n1, n2, n3) = (
        format!("pve1={r1}"),
        format!("pve2={r2}"),
        format!("pve3={r3}"),
    );

    // pve3 has no iGPU: refused, naming the node and why; nothing written.
    let (code, _, err) = vfiokit(&[
        "mapping",
        "plan",
        "--root",
        r1,
        "--name",
        "igpu",
        "--device",
        "8086:3e92",
        "--node",
        &n1,
        &n2,
        &n3,
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("node pve3: no 8086:3e92"), "{err}");
    assert!(!d1.path().join("etc/pve/mapping").exists());

    // The audio function cannot serve anywhere: its group takes eno1.
    let (code, _, err) = vfiokit(&[
        "mapping",
        "plan",
        "--root",
        r1,
        "--name",
        "audio",
        "--device",
        "8086:a348",
        "--node",
        &n1,
    ]);
    assert_eq!(code, 3);
    assert!(
        err.contains("node pve1") && err.contains("default-route-nic"),
        "{err}"
    );

    // Two nodes that can: one map line each, in Proxmox's key order, with each node's own group.
    let (code, out, err) = vfiokit(&[
        "mapping",
        "plan",
        "--root",
        r1,
        "--name",
        "igpu",
        "--device",
        "8086:3e92",
        "--usb",
        "8087:0aaa",
        "--node",
        &n1,
        &n2,
        "--apply",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("applied"), "{out}");
    let pci = fs::read_to_string(d1.path().join("etc/pve/mapping/pci.cfg")).unwrap();
    assert_eq!(
        pci,
        "igpu\n\
         \tmap id=8086:3e92,node=pve1,path=0000:00:02.0,iommugroup=0,subsystem-id=103c:83e2\n\
         \tmap id=8086:3e92,node=pve2,path=0000:00:02.0,iommugroup=10,subsystem-id=103c:83e2\n\
         \tdescription CoffeeLake-S GT2 [UHD Graphics 630] (written by vfiokit mapping plan)\n\n"
    );
    let usb = fs::read_to_string(d1.path().join("etc/pve/mapping/usb.cfg")).unwrap();
    assert!(
        usb.contains("\tmap id=8087:0aaa,node=pve1\n")
            && usb.contains("\tmap id=8087:0aaa,node=pve2\n"),
        "{usb}"
    );
    let (_, out, _) = vfiokit(&[
        "mapping",
        "plan",
        "--root",
        r1,
        "--name",
        "igpu",
        "--device",
        "8086:3e92",
        "--usb",
        "8087:0aaa",
        "--node",
        &n1,
        &n2,
    ]);
    assert!(out.starts_with("nothing to do"), "{out}");

    // setup-vm with the mapping: legacy IGD through the mapping, USB through it too; lint accepts it.
    let (code, out, err) = vfiokit(&[
        "setup-vm",
        "--root",
        r1,
        "--vmid",
        "100",
        "--mapping",
        "igpu",
        "--apply",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("+hostpci0: mapping=igpu,legacy-igd=1"),
        "{out}"
    );
    assert!(
        out.contains("+usb0: mapping=igpu")
            && out.contains("+vga: none")
            && out.contains("+machine: pc-i440fx-9.2"),
        "{out}"
    );
    let conf = d1.path().join("etc/pve/qemu-server/100.conf");
    let (code, out, _) = vfiokit(&["vm", "lint", s(&conf)]);
    assert_eq!(code, 0, "{out}");

    // verify: both nodes match now; after pve2's groups change again, pve2's entry is caught.
    let (_, out, _) = vfiokit(&["verify", "--root", r1, "--node", &n2]);
    assert!(!out.contains("mapping-invalid"), "{out}");
    renumber_groups(d2.path());
    let (code, out, _) = vfiokit(&["verify", "--root", r1, "--node", &n2]);
    assert_eq!(code, 3);
    assert!(
        out.contains("mapping 'igpu': node pve2: PCI device mapping invalid (hardware probably changed): iommugroup '10' does not match the device's '20'"),
        "{out}"
    );
    drop(d3);
}

#[test]
fn bad_ids_and_missing_mappings_are_errors() {
    let (_d, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let r = s(root.root());
    let (code, _, err) = vfiokit(&[
        "setup-vm",
        "--root",
        r,
        "--vmid",
        "100",
        "--mapping",
        "nope",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("PCI device mapping not found for 'nope'"),
        "{err}"
    );
    let (code, _, err) = vfiokit(&[
        "setup-vm",
        "--root",
        r,
        "--vmid",
        "100",
        "--mapping",
        "../../etc",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid mapping id"), "{err}");
    let node = format!("pve={r}");
    let (code, _, _) = vfiokit(&[
        "mapping",
        "plan",
        "--root",
        r,
        "--name",
        "x/y",
        "--device",
        "8086:3e92",
        "--node",
        &node,
    ]);
    assert_eq!(code, 1);
}

#[test]
fn a_mapped_keyboard_is_described_as_itself_and_warned_about_like_usb() {
    let (dir, _root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let r = s(dir.path());
    let node = format!("pve={r}");
    let (code, _, err) = vfiokit(&[
        "mapping",
        "plan",
        "--root",
        r,
        "--name",
        "kb",
        "--device",
        "8086:3e92",
        "--usb",
        "062a:4101",
        "--node",
        &node,
        "--apply",
    ]);
    assert_eq!(code, 0, "{err}");
    let usb = fs::read_to_string(dir.path().join("etc/pve/mapping/usb.cfg")).unwrap();
    assert!(
        usb.contains("description 2.4G Keyboard Mouse (written by vfiokit mapping plan)"),
        "{usb}"
    );
    // setup-vm through the mapping warns as --usb does: the host's only keyboard leaves it.
    let (code, out, err) = vfiokit(&["setup-vm", "--root", r, "--vmid", "100", "--mapping", "kb"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("2.4G Keyboard Mouse (062a:4101) is the host's only USB input device"),
        "{out}"
    );
}
