//! `capture` and replay: a recorded host answers every command as the host did, and lspci agrees
//! with vfiokit on every recorded host, every capture and this machine.

mod common;
use common::vfiokit;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use vfiokit_fakesys::{copy_recorded, hosts};

fn json(args: &[&str]) -> Value {
    let (code, out, err) = vfiokit(args);
    assert!(code == 0 || code == 3, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"))
}

fn capture(root: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "capture",
        "--root",
        root.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let (code, _, err) = vfiokit(&args);
    assert_eq!(code, 0, "{err}");
}

/// inspect (iommu, groups, devices, usb), verify and a setup-host plan agree on `a` and `b`.
fn assert_replays(a: &Path, b: &Path, device: Option<&str>) {
    let inspect = |r: &Path| {
        let mut v = json(&["inspect", "--root", r.to_str().unwrap(), "--json"]);
        v.as_object_mut().unwrap().remove("problems");
        v
    };
    assert_eq!(
        inspect(a),
        inspect(b),
        "inspect differs: {} vs {}",
        a.display(),
        b.display()
    );
    let verify = |r: &Path| {
        let text =
            serde_json::to_string(&json(&["verify", "--root", r.to_str().unwrap(), "--json"]))
                .unwrap();
        text.replace(r.to_str().unwrap(), "<root>")
    };
    assert_eq!(verify(a), verify(b), "verify differs");
    if let Some(dev) = device {
        let plan = |r: &Path| {
            json(&[
                "setup-host",
                "--root",
                r.to_str().unwrap(),
                "--device",
                dev,
                "--json",
            ])
        };
        assert_eq!(plan(a), plan(b), "setup-host plan differs");
    }
}

#[test]
fn every_recorded_host_replays_from_its_capture() {
    for (name, _) in hosts::recorded() {
        let root = vfiokit_fakesys::testdata_dir().join(name);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("cap");
        capture(&root, &out, &[]);
        // inspect (with the sharing modes), verify (with the sharing, reset and kernel-log
        // rules) and the iGPU's or GPU's plan read the same from the capture.
        let device = if name.starts_with("minisforum") {
            "c5:00.0"
        } else if name.starts_with("am4") {
            "07:00.0"
        } else {
            "00:02.0"
        };
        assert_replays(&root, &out, Some(device));
        let notes = fs::read_to_string(out.join("CAPTURE-NOTES.txt")).unwrap();
        assert!(!notes.contains("skipped"), "{name}: {notes}");
        if !name.starts_with("elitedesk") {
            continue;
        }
        // Never the BAR contents or the ROM.
        let dev = out.join("sys/devices/pci0000:00/0000:00:02.0");
        assert!(
            dev.join("config").exists()
                && !dev.join("rom").exists()
                && !dev.join("resource0").exists()
        );
    }
}

#[test]
fn every_fake_topology_replays_from_its_capture() {
    for (name, host) in hosts::all() {
        let (_dir, root) = host.write_temp().unwrap();
        let out = tempfile::tempdir().unwrap();
        let cap = out.path().join(name);
        capture(root.root(), &cap, &[]);
        assert_replays(root.root(), &cap, None);
    }
}

#[test]
fn this_machine_replays_from_its_capture() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live");
    capture(Path::new("/"), &out, &[]);
    assert_replays(Path::new("/"), &out, None);
}

#[test]
fn an_anonymized_capture_hides_addresses_names_and_ids_but_replays() {
    let root = vfiokit_fakesys::testdata_dir().join("elitedesk-800-g4/configured");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("anon");
    capture(&root, &out, &["--anonymize"]);
    let mut everything = String::new();
    let mut stack = vec![out.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                everything.push_str(&String::from_utf8_lossy(&fs::read(&p).unwrap()));
            }
        }
    }
    for secret in [
        "192.168.10.104",
        "192.168.10.1",
        "6E:FA:51:9A:D2:40",
        "194d50cf-8f86-4fa2-b770-28aa88109b43",
        "010AA8C0",
    ] {
        assert!(!everything.contains(secret), "{secret} left in the capture");
    }
    assert_eq!(
        fs::read_to_string(out.join("etc/hostname")).unwrap(),
        "host1\n"
    );
    // The same address maps to the same replacement everywhere: the default gateway of the
    // route table is the gateway of /etc/network/interfaces.
    let route = fs::read_to_string(out.join("proc/net/route")).unwrap();
    let gw_hex = route
        .lines()
        .find(|l| l.starts_with("vmbr0\t00000000"))
        .unwrap()
        .split('\t')
        .nth(2)
        .unwrap();
    let gw = u32::from_str_radix(gw_hex, 16).unwrap().to_le_bytes();
    let gateway = format!("{}.{}.{}.{}", gw[0], gw[1], gw[2], gw[3]);
    assert!(gateway.starts_with("10."), "{gateway}");
    let interfaces = fs::read_to_string(out.join("etc/network/interfaces")).unwrap();
    assert!(
        interfaces.contains(&format!("gateway {gateway}\n")),
        "{gateway}\n{interfaces}"
    );
    assert!(interfaces.contains("address 10."), "{interfaces}");
    assert_replays(&root, &out, Some("00:02.0"));
}

#[test]
fn an_existing_output_is_refused_and_broken_files_are_noted() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let existing = tempfile::tempdir().unwrap();
    let (code, _, err) = vfiokit(&[
        "capture",
        "--root",
        root.root().to_str().unwrap(),
        "-o",
        existing.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    // A link loop and a link out of the root are noted and not followed.
    let net = dir.path().join("sys/class/net");
    std::os::unix::fs::symlink("loop2", net.join("loop1")).unwrap();
    std::os::unix::fs::symlink("loop1", net.join("loop2")).unwrap();
    std::os::unix::fs::symlink("/sys/class/net/lo", net.join("escape")).unwrap();
    let out = existing.path().join("cap");
    let (code, _, err) = vfiokit(&[
        "capture",
        "--root",
        root.root().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let notes = fs::read_to_string(out.join("CAPTURE-NOTES.txt")).unwrap();
    assert!(
        notes.contains("net/loop1") && notes.contains("net/escape: link leaves the root"),
        "{notes}"
    );
    assert!(!out.join("sys/class/net/escape").exists());
}

#[test]
fn files_an_unprivileged_user_cannot_read_are_noted() {
    // Tests run as root; drop to nobody to provoke what a normal user meets.
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let config = dir
        .path()
        .join("sys/devices/pci0000:00/0000:00:17.0/config");
    let mut perm = fs::metadata(&config).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o600);
    fs::set_permissions(&config, perm).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let mut p = fs::metadata(out_dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o777);
    fs::set_permissions(out_dir.path(), p).unwrap();
    let out = out_dir.path().join("cap");
    let status = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_vfiokit"),
            "capture",
            "--root",
        ])
        .arg(root.root())
        .arg("-o")
        .arg(&out)
        .output()
        .expect("setpriv (util-linux) is needed");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let notes = fs::read_to_string(out.join("CAPTURE-NOTES.txt")).unwrap();
    assert!(
        notes.contains("0000:00:17.0/config: Permission denied"),
        "{notes}"
    );
    assert!(
        out.join("sys/devices/pci0000:00/0000:00:17.0/vendor")
            .exists()
    );
}

/// `lspci -vmm` records: slot → field → value (the `[xxxx]` ids kept).
fn lspci(root: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let out = Command::new("lspci")
        .args(["-A", "linux-sysfs", "-O"])
        .arg(format!("sysfs.path={}", root.join("sys/bus/pci").display()))
        .args(["-D", "-nn", "-k", "-vmm"])
        .output()
        .expect("lspci is needed: install pciutils (.ci/run does)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut records = BTreeMap::new();
    for block in String::from_utf8_lossy(&out.stdout).split("\n\n") {
        let fields: BTreeMap<String, String> = block
            .lines()
            .filter_map(|l| l.split_once(":\t"))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(slot) = fields.get("Slot") {
            records.insert(slot.clone(), fields);
        }
    }
    records
}

/// The hex id in `Name [abcd]`.
fn bracket(v: &str) -> String {
    v.rsplit_once('[')
        .map_or("", |(_, r)| r.trim_end_matches(']'))
        .to_string()
}

fn assert_lspci_agrees(root: &Path) {
    let report = json(&["inspect", "--root", root.to_str().unwrap(), "--json"]);
    let lspci = lspci(root);
    let devices = report["devices"].as_array().unwrap();
    let ours: Vec<&str> = devices
        .iter()
        .map(|d| d["address"].as_str().unwrap())
        .collect();
    let theirs: Vec<&str> = lspci.keys().map(String::as_str).collect();
    assert_eq!(ours, theirs, "{}", root.display());
    for d in devices {
        let l = &lspci[d["address"].as_str().unwrap()];
        let ctx = format!("{} {}", root.display(), d["address"]);
        assert_eq!(d["vendor"], bracket(&l["Vendor"]), "{ctx}");
        assert_eq!(d["device"], bracket(&l["Device"]), "{ctx}");
        let class = format!(
            "{}{}",
            bracket(&l["Class"]),
            l.get("ProgIf").map_or("00", String::as_str)
        );
        assert_eq!(d["class"], class, "{ctx}");
        assert_eq!(
            d["revision"],
            l.get("Rev").map_or("00", String::as_str),
            "{ctx}"
        );
        if let Some(sv) = l.get("SVendor") {
            assert_eq!(d["subsystem_vendor"], bracket(sv), "{ctx}");
            assert_eq!(d["subsystem_device"], bracket(&l["SDevice"]), "{ctx}");
        }
        assert_eq!(
            d["driver"].as_str(),
            l.get("Driver").map(String::as_str),
            "{ctx}"
        );
        let group = l.get("IOMMUGroup").map(|g| g.parse::<u64>().unwrap());
        assert_eq!(d["iommu_group"].as_u64(), group, "{ctx}");
    }
}

#[test]
fn lspci_agrees_on_every_recorded_host_every_capture_and_this_machine() {
    let mut roots: Vec<PathBuf> = ["fresh", "configured"]
        .iter()
        .map(|s| {
            vfiokit_fakesys::testdata_dir()
                .join("elitedesk-800-g4")
                .join(s)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut keep = Vec::new();
    for (name, host) in hosts::all() {
        let (d, root) = host.write_temp().unwrap();
        let cap = dir.path().join(name);
        capture(root.root(), &cap, &[]);
        roots.push(root.root().to_path_buf());
        roots.push(cap);
        keep.push(d);
    }
    let live = dir.path().join("live");
    capture(Path::new("/"), &live, &[]);
    roots.push(live);
    roots.push(PathBuf::from("/"));
    for root in &roots {
        assert_lspci_agrees(root);
    }
}
