//! `setup-vm` and `vm lint|fmt|show` end to end.

mod common;
use common::vfiokit;

use std::fs;
use std::path::{Path, PathBuf};

use vfiokit_fakesys::{copy_recorded, hosts};
use vfiokit_vmconf::{HostPci, VmConfig};

fn testdata(rel: &str) -> PathBuf {
    vfiokit_fakesys::testdata_dir().join(rel)
}

const SEED_ARGS: [&str; 13] = [
    "setup-vm",
    "--vmid",
    "100",
    "--igd",
    "00:02.0",
    "--romfile",
    "igpu-uhd630.rom",
    "--device",
    "00:14.3",
    "--usb",
    "062a:4101",
    "--usb",
    "8087:0aaa",
];

/// The passthrough keys whose values setup-vm decides.
fn decided(key: &str) -> bool {
    key.starts_with("hostpci")
        || key.starts_with("usb")
        || matches!(key, "machine" | "vga" | "args")
}

#[test]
fn the_seeds_working_config_from_the_fresh_vm() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let conf = dir.path().join("etc/pve/qemu-server/100.conf");
    let fresh = fs::read_to_string(&conf).unwrap();
    let root_arg = root.root().to_str().unwrap();
    let mut args: Vec<&str> = SEED_ARGS.to_vec();
    args.extend(["--root", root_arg, "--apply"]);
    let (code, out, err) = vfiokit(&args);
    assert_eq!(code, 0, "{err}\n{out}");
    let made = VmConfig::parse(&fs::read_to_string(&conf).unwrap());
    let seed =
        VmConfig::parse(&fs::read_to_string(testdata("vm-configs/seed/100-working.conf")).unwrap());
    for key in ["machine", "vga", "args", "usb0", "usb1", "hostpci1"] {
        assert_eq!(made.get(key), seed.get(key), "{key}");
    }
    // hostpci0: the seed's function-less `0000:00:02` and our `0000:00:02.0` name the same function.
    let (ours, theirs) = (
        HostPci::parse(made.get("hostpci0").unwrap()).unwrap(),
        HostPci::parse(seed.get("hostpci0").unwrap()).unwrap(),
    );
    assert!(theirs.host[0].matches(0, 0, 2, 0) && ours.host[0].matches(0, 0, 2, 0));
    assert_eq!(
        (ours.legacy_igd, &ours.romfile),
        (theirs.legacy_igd, &theirs.romfile)
    );
    // Every other line is untouched, in order.
    let others = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !decided(l.split(':').next().unwrap_or("")))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(others(&made.render()), others(&fresh));
    golden_config(&made.render());

    // Again: nothing to do. Then undo restores the fresh file byte for byte.
    let (code, out, _) = vfiokit(&args);
    assert_eq!(code, 0);
    assert!(out.starts_with("nothing to do"), "{out}");
    let (code, _, err) = vfiokit(&["undo", "--root", root_arg]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(fs::read_to_string(&conf).unwrap(), fresh);
}

fn golden_config(actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/fresh-vm100-seed.conf");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(&path, actual).unwrap();
        panic!(
            "{} rewritten; run again without UPDATE_GOLDEN",
            path.display()
        );
    }
    assert_eq!(
        actual,
        fs::read_to_string(&path).unwrap(),
        "{} differs (UPDATE_GOLDEN=1 rewrites it)",
        path.display()
    );
}

#[test]
fn the_plan_says_where_the_qemu_version_came_from_and_prints_qm() {
    let (_dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let root_arg = root.root().to_str().unwrap();
    let mut args: Vec<&str> = SEED_ARGS.to_vec();
    args.extend(["--root", root_arg]);
    let (code, out, err) = vfiokit(&args);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("+machine: pc-i440fx-9.2\n") && out.contains("-machine: pc-q35-9.2+pve1\n"),
        "{out}"
    );
    assert!(
        out.contains("qemu-version"),
        "the plan names its QEMU version source:\n{out}"
    );
    assert!(out.contains("igpu-uhd630.rom does not exist"), "{out}");
    args.extend(["--print", "qm"]);
    let (code, out, _) = vfiokit(&args);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("qm set 100 --hostpci0 0000:00:02.0,legacy-igd=1,romfile=igpu-uhd630.rom"),
        "{out}"
    );
    assert!(out.contains("--args '-set device.hostpci0.addr=02.0 -set device.hostpci0.x-igd-gms=0x2 -set device.hostpci0.x-igd-opregion=on'"), "{out}");
}

#[test]
fn refusals_and_bad_input() {
    let (_dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let r = root.root().to_str().unwrap();
    let (code, _, err) = vfiokit(&[
        "setup-vm", "--root", r, "--vmid", "100", "--device", "00:1f.3",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("0000:00:1f.6") && err.contains("default-route-nic"),
        "{err}"
    );
    let (code, _, err) = vfiokit(&[
        "setup-vm",
        "--root",
        r,
        "--vmid",
        "101",
        "--usb",
        "062a:4101",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("VM 101 has no config") && err.contains("qemu-server/101.conf"),
        "{err}"
    );
    let (code, _, err) = vfiokit(&[
        "setup-vm",
        "--root",
        r,
        "--vmid",
        "100",
        "--usb",
        "1234:5678",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no USB device 1234:5678")
            && err.contains("062a:4101")
            && err.contains("8087:0aaa"),
        "{err}"
    );
    let (code, _, err) = vfiokit(&["setup-vm", "--root", r, "--vmid", "100", "--igd", "00:1f.6"]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn clone_from_copies_the_guest_identity() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let conf = dir.path().join("etc/pve/qemu-server/100.conf");
    let text: String = fs::read_to_string(&conf)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("smbios1") && !l.starts_with("vmgenid"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&conf, &text).unwrap();
    let from = testdata("vm-configs/seed/103.conf");
    let (code, out, err) = vfiokit(&[
        "setup-vm",
        "--root",
        root.root().to_str().unwrap(),
        "--vmid",
        "100",
        "--clone-from",
        from.to_str().unwrap(),
        "--apply",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("+smbios1: uuid=194d50cf-8f86-4fa2-b770-28aa88109b43"),
        "{out}"
    );
    let made = fs::read_to_string(&conf).unwrap();
    assert!(
        made.contains("sockets: 1\nsmbios1:") || made.contains("smbios1: uuid=194d50cf"),
        "{made}"
    );
    assert!(
        made.ends_with("vga: virtio,memory=64\nvmgenid: 5a10564a-ca41-4136-93a9-f3f999390ac4\n"),
        "{made}"
    );
}

#[test]
fn a_device_gets_the_next_free_hostpci_in_sorted_place() {
    let mut host = hosts::intel_dgpu();
    host.file(
        "etc/pve/qemu-server/200.conf",
        "hostpci0: 0000:00:1f.6\nmemory: 2048\nname: t\n",
    );
    let (dir, root) = host.write_temp().unwrap();
    let (code, _, err) = vfiokit(&[
        "setup-vm",
        "--root",
        root.root().to_str().unwrap(),
        "--vmid",
        "200",
        "--device",
        "01:00.0",
        "--apply",
    ]);
    assert_eq!(code, 0, "{err}");
    let made = fs::read_to_string(dir.path().join("etc/pve/qemu-server/200.conf")).unwrap();
    assert_eq!(
        made,
        // The dGPU and its HDMI audio share a group: the whole slot, function-less (i440fx: no pcie).
        "hostpci0: 0000:00:1f.6\nhostpci1: 0000:01:00\nmemory: 2048\nname: t\n"
    );
}

#[test]
fn vm_fmt_is_byte_identical_on_every_wild_config_and_lint_flags_the_known_problems() {
    let wild = testdata("vm-configs/wild");
    let mut files = Vec::new();
    for sub in fs::read_dir(&wild).unwrap() {
        let sub = sub.unwrap().path();
        if sub.is_dir() {
            for f in fs::read_dir(&sub).unwrap() {
                files.push(f.unwrap().path());
            }
        }
    }
    assert!(files.len() >= 19, "{files:?}");
    for f in &files {
        // Byte-identical either way; a file Proxmox would reject also exits 3 with its errors.
        let (code, out, err) = vfiokit(&["vm", "fmt", f.to_str().unwrap()]);
        let (lint_code, _, _) = vfiokit(&["vm", "lint", f.to_str().unwrap()]);
        assert_eq!(code, lint_code, "{}: {err}", f.display());
        assert!(
            code == 0 || err.contains(": error: "),
            "{}: {err}",
            f.display()
        );
        assert_eq!(out.as_bytes(), fs::read(f).unwrap(), "{}", f.display());
    }
    let lxc = files
        .iter()
        .find(|f| f.to_string_lossy().ends_with(".LXC"))
        .unwrap();
    let (code, out, _) = vfiokit(&["vm", "lint", lxc.to_str().unwrap()]);
    assert_eq!(code, 3, "{out}");
    let seed = testdata("vm-configs/seed/100-working.conf");
    let (code, out, _) = vfiokit(&["vm", "lint", seed.to_str().unwrap()]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("boot:"), "{out}");
}

#[test]
fn legacy_igd_on_q35_is_an_error_with_proxmoxs_message() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("100.conf");
    fs::write(
        &f,
        "bios: ovmf\nhostpci0: 0000:00:02.0,legacy-igd=1\nmachine: q35\nvga: none\n",
    )
    .unwrap();
    let (code, out, _) = vfiokit(&["vm", "lint", f.to_str().unwrap()]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("legacy IGD assignment is not compatible with q35"),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}:2:", f.display())),
        "diagnostics carry file and line:\n{out}"
    );
    let (code, out, _) = vfiokit(&["vm", "show", f.to_str().unwrap(), "--json"]);
    assert_eq!(code, 3, "the view is printed, and the error exits 3");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["legacy_igd"]["ok"], false);
    assert_eq!(v["machine"]["kind"], "q35");
    // With --root, lint also checks the host: the romfile of the working config is missing there.
    let seed = testdata("vm-configs/seed/100-working.conf");
    let root = testdata("elitedesk-800-g4/configured");
    let (_, out, _) = vfiokit(&[
        "vm",
        "lint",
        "--root",
        root.to_str().unwrap(),
        seed.to_str().unwrap(),
    ]);
    assert!(
        out.contains("romfile igpu-uhd630.rom does not exist"),
        "{out}"
    );
}

#[test]
fn canonical_form_and_devices_shared_between_vms() {
    let wild = testdata("vm-configs/wild/usb-misc/Specimen67_proxmox-init_100.conf");
    let (code, out, _) = vfiokit(&["vm", "fmt", "--canonical", wild.to_str().unwrap()]);
    assert_eq!(code, 0);
    let keys: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(k, _)| k))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "canonical keys are sorted and unique:\n{out}");
    assert_ne!(
        out.as_bytes(),
        fs::read(&wild).unwrap(),
        "this file is not in canonical form"
    );

    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("100.conf"), dir.path().join("101.conf"));
    fs::write(&a, "hostpci0: 0000:01:00.0\nmemory: 1024\n").unwrap();
    fs::write(&b, "hostpci1: 0000:01:00.0,pcie=0\nmemory: 1024\n").unwrap();
    let (code, out, _) = vfiokit(&["vm", "lint", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, 0, "a warning, not an error:\n{out}");
    assert!(
        out.contains("0000:01:00.0 is also given by") && out.contains("101.conf hostpci1"),
        "{out}"
    );
}

#[test]
fn a_config_that_is_not_utf8_is_an_error_naming_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("100.conf");
    fs::write(&f, b"name: ok\nmemory: \xff\n").unwrap();
    let (code, _, err) = vfiokit(&["vm", "lint", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("100.conf") && err.contains("offset 17"),
        "{err}"
    );
}

#[test]
fn two_identical_receivers_are_redirected_by_port() {
    let mut host = hosts::elitedesk_800_g4(hosts::State::Fresh);
    host.usb(
        vfiokit_fakesys::UsbDev::new("1-2", 0x062a, 0x4101)
            .product("2.4G Keyboard Mouse")
            .interfaces(&[(0x03, "usbhid"), (0x03, "usbhid")]),
    );
    let (dir, root) = host.write_temp().unwrap();
    let r = root.root().to_str().unwrap();
    let (code, out, err) = vfiokit(&[
        "setup-vm",
        "--root",
        r,
        "--vmid",
        "100",
        "--usb",
        "062a:4101",
        "8087:0aaa",
        "--apply",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("keep it plugged into that port"), "{out}");
    let made = VmConfig::parse(
        &fs::read_to_string(dir.path().join("etc/pve/qemu-server/100.conf")).unwrap(),
    );
    assert_eq!(made.get("usb0"), Some("host=1-1"));
    assert_eq!(made.get("usb1"), Some("host=1-2"));
    assert_eq!(made.get("usb2"), Some("host=8087:0aaa"));
    let (_, out, _) = vfiokit(&[
        "setup-vm",
        "--root",
        r,
        "--vmid",
        "100",
        "--usb",
        "062a:4101",
        "8087:0aaa",
    ]);
    assert!(out.starts_with("nothing to do"), "{out}");
}

#[test]
fn gpu_flags_reproduce_the_780m_authors_entries() {
    let (dir, root) = copy_recorded("minisforum-um880pro/fresh").unwrap();
    let conf = dir.path().join("etc/pve/qemu-server/100.conf");
    let root_arg = root.root().to_str().unwrap();
    let args = [
        "setup-vm",
        "--root",
        root_arg,
        "--vmid",
        "100",
        "--device",
        "c5:00.0",
        "c5:00.1",
        "--primary",
        "c5:00.0",
        "--rom",
        "c5:00.0=vbios_1002_1900.bin",
        "--rom",
        "c5:00.1=AMDGopDriver_8845hs.rom",
    ];
    let (code, out, err) = vfiokit(&[&args[..], &["--apply"]].concat());
    assert_eq!(code, 0, "{err}\n{out}");
    let made = VmConfig::parse(&fs::read_to_string(&conf).unwrap());
    assert_eq!(
        made.get("hostpci0"),
        Some("0000:c5:00.0,pcie=1,x-vga=1,romfile=vbios_1002_1900.bin")
    );
    assert_eq!(
        made.get("hostpci1"),
        Some("0000:c5:00.1,pcie=1,romfile=AMDGopDriver_8845hs.rom")
    );
    // Idempotent; an absolute ROM path is refused (exit 3); a bad --rom is a usage error.
    let (code, out, _) = vfiokit(&args);
    assert_eq!(code, 0);
    assert!(out.contains("already set up"), "{out}");
    let mut bad = args.to_vec();
    bad[11] = "c5:00.0=/root/vbios.bin";
    let (code, _, err) = vfiokit(&bad);
    assert_eq!(code, 3, "{err}");
    bad[11] = "c5:00.0";
    assert_eq!(vfiokit(&bad).0, 2);
}
