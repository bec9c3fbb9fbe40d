//! pciutils reads the trees the builder writes, as it reads a real `/sys/bus/pci`.
//!
//! These tests need `lspci` (package pciutils); without it they fail, they never skip.

use std::path::Path;
use std::process::Command;

use vfiokit_fakesys::hosts;
use vfiokit_fakesys::testdata_dir;

/// `lspci -A linux-sysfs -O sysfs.path=<root>/sys/bus/pci <args>`: stdout, and stderr without
/// the libkmod notice (lspci looks modules up for the *running* kernel, which a test machine
/// may not have installed; that says nothing about the tree).
fn lspci(root: &Path, args: &[&str]) -> (String, String) {
    let sysfs = format!("sysfs.path={}", root.join("sys/bus/pci").display());
    let out = Command::new("lspci")
        .args(["-A", "linux-sysfs", "-O", &sysfs])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run lspci ({e}); install pciutils (apt-get install pciutils)")
        });
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr: String = String::from_utf8(out.stderr)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("libkmod"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        out.status.success(),
        "lspci {args:?} on {} failed: {stderr}",
        root.display()
    );
    (stdout, stderr)
}

fn recorded(state: &str) -> std::path::PathBuf {
    testdata_dir().join("elitedesk-800-g4").join(state)
}

/// The lines of `lspci -vvv` output that describe `addr`.
fn section<'a>(out: &'a str, addr: &str) -> &'a str {
    let start = out
        .find(&format!("{addr} "))
        .unwrap_or_else(|| panic!("{addr} not in output:\n{out}"));
    let rest = &out[start..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

#[test]
fn tree_of_both_states_is_the_seed_tree() {
    let want =
        std::fs::read_to_string(testdata_dir().join("elitedesk-800-g4/lspci-tvnn.txt")).unwrap();
    for state in ["fresh", "configured"] {
        let (out, err) = lspci(&recorded(state), &["-tvnn"]);
        assert_eq!(out, want, "{state}");
        assert_eq!(err, "", "{state}");
    }
}

#[test]
fn drivers_in_use_per_state() {
    for (state, addr, driver) in [
        ("fresh", "00:02.0", "i915"),
        ("fresh", "00:1f.3", "snd_hda_intel"),
        ("fresh", "00:14.3", "iwlwifi"),
        ("configured", "00:02.0", "vfio-pci"),
        ("configured", "00:1f.3", "vfio-pci"),
        ("configured", "00:14.3", "vfio-pci"),
        ("configured", "00:1f.6", "e1000e"),
    ] {
        let (out, _) = lspci(&recorded(state), &["-nnk", "-s", addr]);
        assert!(
            out.contains(&format!("Kernel driver in use: {driver}\n")),
            "{state} {addr}: {out}"
        );
    }
    let (out, _) = lspci(&recorded("fresh"), &["-nnk", "-s", "00:00.0"]);
    assert!(
        !out.contains("Kernel driver in use"),
        "host bridge is unbound: {out}"
    );
}

#[test]
fn every_topology_decodes_without_warnings() {
    for (name, host) in hosts::all() {
        let (dir, _root) = host.write_temp().unwrap();
        let (out, err) = lspci(dir.path(), &["-vvv", "-D"]);
        assert_eq!(err, "", "{name}: warnings from lspci");
        assert!(
            !out.contains("<chain broken>") && !out.contains("<access denied>"),
            "{name}:\n{out}"
        );
        let want: &[(&str, &str)] = match name {
            "amd_ryzen" => &[
                ("0000:00:01.1", "Root Port"),
                ("0000:00:01.1", "Access Control Services"),
                ("0000:01:00.0", "Legacy Endpoint"),
                ("0000:02:00.0", "FLReset+"),
                ("0000:02:00.0", "MSI-X: Enable- Count=130"),
                ("0000:00:00.2", "Root Complex Integrated Endpoint"),
            ],
            "intel_dgpu" => &[
                ("0000:00:01.0", "Root Port"),
                (
                    "0000:00:01.0",
                    "Bus: primary=00, secondary=01, subordinate=01",
                ),
                ("0000:01:00.0", "IOMMU group: 1"),
                ("0000:01:00.1", "Kernel driver in use: snd_hda_intel"),
            ],
            "twin_gpus" => &[
                ("0000:00:1c.0", "Access Control Services"),
                ("0000:00:1c.0", "ACSCtl:\tSrcValid+"),
                ("0000:01:00.0", "IOMMU group: 11"),
                ("0000:02:00.0", "IOMMU group: 12"),
            ],
            "bridge_in_group" => &[
                ("0000:00:1c.4", "Kernel driver in use: pcieport"),
                ("0000:03:00.0", "IOMMU group: 3"),
                ("0000:03:00.0", "FLReset+"),
            ],
            "sparse_groups" => &[
                ("0000:00:1f.6", "IOMMU group: 42"),
                ("0000:00:1f.6", "AFCap: TP+ FLR+"),
            ],
            "intel_vmd" => &[
                ("10000:e0:1d.0", "Root Port"),
                ("10000:e1:00.0", "Non-Volatile memory controller"),
                ("10000:e1:00.0", "FLReset+"),
            ],
            "no_iommu" => &[("0000:00:02.0", "Root Complex Integrated Endpoint")],
            _ => &[
                ("0000:00:02.0", "Root Complex Integrated Endpoint"),
                ("0000:00:02.0", "FLReset+"),
                ("0000:00:02.0", "Capabilities: [70] Express (v2)"),
                (
                    "0000:00:02.0",
                    "Region 2: Memory at d0000000 (64-bit, prefetchable) [size=256M]",
                ),
                ("0000:00:14.3", "MSI-X: Enable- Count=16"),
                ("0000:00:1f.3", "PME(D0+,D1-,D2-,D3hot+,D3cold+)"),
                (
                    "0000:00:1f.3",
                    "Region 4: Memory at 4000000000 (64-bit, non-prefetchable) [size=1M]",
                ),
                ("0000:00:1f.6", "PCI Advanced Features"),
                ("0000:00:1f.6", "AFCap: TP+ FLR+"),
            ],
        };
        for (addr, text) in want {
            assert!(
                section(&out, addr).contains(text),
                "{name} {addr}: no {text:?} in\n{}",
                section(&out, addr)
            );
        }
        if name == "no_iommu" {
            assert!(!out.contains("IOMMU group"), "{name}:\n{out}");
        }
    }
}

/// A published `lspci -tvnn` tree as `lspci -tvn` prints it: each device's name dropped, its
/// `[vendor:device]` kept without brackets. lspci takes names from the checking machine's
/// `pci.ids`, which may predate names the author saw; the ids and the tree are what must match.
fn ids_only(tree: &str) -> String {
    let is_addr = |s: &str| {
        let b = s.as_bytes();
        b.len() == 4
            && b[0].is_ascii_hexdigit()
            && b[1].is_ascii_hexdigit()
            && b[2] == b'.'
            && (b'0'..=b'7').contains(&b[3])
    };
    let mut out = String::new();
    for line in tree.lines() {
        let cut = (4..line.len())
            .find(|&i| line[i..].starts_with("  ") && is_addr(&line[i - 4..i]))
            .map(|i| i + 2);
        match (cut, line.rfind(" [")) {
            (Some(cut), Some(open)) if line.ends_with(']') && open >= cut => {
                out.push_str(&line[..cut]);
                out.push_str(&line[open + 2..line.len() - 1]);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[test]
fn ids_only_drops_names() {
    assert_eq!(
        ids_only(
            "-[0000:00]-+-00.0  Advanced Micro Devices, Inc. [AMD] Phoenix Root Complex [1022:14e8]\n\
             \x20          +-01.2-[01]----00.0  Micron/Crucial Technology P310 NVMe [c0a9:5426]\n\
             \x20          +-03.1-[05-64]--\n"
        ),
        "-[0000:00]-+-00.0  1022:14e8\n           +-01.2-[01]----00.0  c0a9:5426\n           +-03.1-[05-64]--\n"
    );
}

#[test]
fn um880pro_tree_of_both_states_is_the_published_tree() {
    let dir = testdata_dir().join("minisforum-um880pro");
    let published = std::fs::read_to_string(dir.join("lspci-tvnn.txt")).unwrap();
    for state in ["fresh", "configured"] {
        let (out, err) = lspci(&dir.join(state), &["-tvn"]);
        assert_eq!(out, ids_only(&published), "{state}");
        assert_eq!(err, "", "{state}");
    }
}

/// The author's listing of every IOMMU group with `[RESET]` before each function that has a
/// `reset` file: the recording has the same groups, the same `reset` files, and the same
/// class, ids and revision per function (`lspci -n`).
#[test]
fn um880pro_groups_and_reset_files_are_the_published_ones() {
    let dir = testdata_dir().join("minisforum-um880pro");
    let listing = std::fs::read_to_string(dir.join("iommu-groups-reset.txt")).unwrap();
    for state in ["fresh", "configured"] {
        let root = dir.join(state);
        let mut seen = Vec::new();
        let mut group = String::new();
        for line in listing.lines() {
            if let Some(g) = line.strip_prefix("IOMMU group ") {
                group = g.to_string();
                continue;
            }
            let reset = line.starts_with("[RESET]");
            let rest = line.trim_start_matches("[RESET]").trim_start();
            let addr = &rest[..7];
            let dev = root
                .join("sys/bus/pci/devices")
                .join(format!("0000:{addr}"));
            let linked = std::fs::read_link(dev.join("iommu_group")).unwrap();
            assert_eq!(
                linked.file_name().unwrap().to_str().unwrap(),
                group,
                "{state} {addr}"
            );
            assert_eq!(dev.join("reset").exists(), reset, "{state} {addr} reset");
            assert_eq!(dev.join("reset_method").exists(), reset, "{state} {addr}");
            let (out, _) = lspci(&root, &["-n", "-s", addr]);
            assert_eq!(out, numeric(rest), "{state}");
            seen.push(format!("0000:{addr}"));
        }
        seen.sort();
        let mut grouped: Vec<String> = std::fs::read_dir(root.join("sys/bus/pci/devices"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("iommu_group").exists())
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        grouped.sort();
        assert_eq!(grouped, seen, "{state}: functions with a group");
    }
}

#[test]
fn um880pro_drivers_per_state() {
    let dir = testdata_dir().join("minisforum-um880pro");
    for (state, addr, driver) in [
        ("fresh", "c5:00.0", "amdgpu"),
        ("fresh", "c5:00.1", "snd_hda_intel"),
        ("fresh", "c5:00.5", "snd_pci_ps"),
        ("fresh", "c5:00.6", "snd_hda_intel"),
        ("configured", "c5:00.0", "vfio-pci"),
        ("configured", "c5:00.1", "vfio-pci"),
        ("configured", "c5:00.5", "vfio-pci"),
        ("configured", "c5:00.6", "vfio-pci"),
        ("configured", "c5:00.3", "xhci_hcd"),
        ("configured", "02:00.0", "r8169"),
    ] {
        let (out, _) = lspci(&dir.join(state), &["-nnk", "-s", addr]);
        assert!(
            out.contains(&format!("Kernel driver in use: {driver}\n")),
            "{state} {addr}: {out}"
        );
    }
    let (out, _) = lspci(&dir.join("configured"), &["-k", "-s", "c5:00.6"]);
    assert!(out.contains("\tDeviceName: Realtek ALC256\n"), "{out}");
    let (out, _) = lspci(&dir.join("configured"), &["-vv", "-s", "c5:00.0"]);
    assert!(out.contains("Legacy Endpoint"), "{out}");
    assert!(
        out.contains("Region 0: Memory at 7c00000000 (64-bit, prefetchable) [size=256M]"),
        "{out}"
    );
}

/// `BB:DD.F CCCC: VVVV:DDDD (rev RR)` from a published `lspci -nn` line
/// (`07:00.0 VGA compatible controller [0300]: … [10de:1e89] (rev a1)`), as `lspci -n` prints it.
fn numeric(published: &str) -> String {
    let addr = &published[..7];
    let class = &published[published.find(" [").unwrap() + 2..][..4];
    let ids_at = published.rfind(" [").unwrap();
    let ids = &published[ids_at + 2..ids_at + 11];
    let rev = published.find(" (rev ").map_or("", |i| &published[i..]);
    format!("{addr} {class}: {ids}{rev}\n")
}

/// The author's group listing (groups 2 and 14, the rest elided with `<...>`): same members,
/// classes, ids and revisions; group 2 holds nothing else.
#[test]
fn am4_rtx2060_groups_are_the_published_ones() {
    let dir = testdata_dir().join("am4-rtx2060");
    let root = dir.join("fresh");
    let listing = std::fs::read_to_string(dir.join("iommu-groups-published.txt")).unwrap();
    let mut group2 = Vec::new();
    for line in listing.lines().filter(|l| l.starts_with("IOMMU Group ")) {
        let rest = &line["IOMMU Group ".len()..];
        let (group, published) = rest.split_once(' ').unwrap();
        let addr = &published[..7];
        let dev = root
            .join("sys/bus/pci/devices")
            .join(format!("0000:{addr}"));
        let linked = std::fs::read_link(dev.join("iommu_group")).unwrap();
        assert_eq!(
            linked.file_name().unwrap().to_str().unwrap(),
            group,
            "{addr}"
        );
        let (out, _) = lspci(&root, &["-n", "-s", addr]);
        assert_eq!(out, numeric(published));
        if group == "2" {
            group2.push(format!("0000:{addr}"));
        }
    }
    let members: Vec<String> = std::fs::read_dir(root.join("sys/kernel/iommu_groups/2/devices"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(members, group2);
    let (out, _) = lspci(&root, &["-vv", "-s", "00:03.0"]);
    assert!(
        !out.contains("Region") && !out.contains("Kernel driver"),
        "{out}"
    );
    let (out, _) = lspci(&root, &["-vv", "-s", "07:00.0"]);
    assert!(
        out.contains("Region 1: Memory at d0000000 (64-bit, prefetchable) [size=256M]"),
        "{out}"
    );
    for (addr, driver) in [
        ("07:00.0", "nouveau"),
        ("07:00.1", "snd_hda_intel"),
        ("07:00.2", "xhci_hcd"),
        ("07:00.3", "nvidia-gpu"),
    ] {
        let (out, _) = lspci(&root, &["-k", "-s", addr]);
        assert!(
            out.contains(&format!("Kernel driver in use: {driver}\n")),
            "{out}"
        );
    }
    let boot_vga = root.join("sys/bus/pci/devices/0000:07:00.0/boot_vga");
    assert_eq!(std::fs::read_to_string(boot_vga).unwrap(), "1\n");
}

#[test]
fn every_recorded_host_decodes_without_warnings() {
    for (name, _) in hosts::recorded() {
        let (out, err) = lspci(&testdata_dir().join(name), &["-vvv", "-D"]);
        assert_eq!(err, "", "{name}: warnings from lspci");
        assert!(
            !out.contains("<chain broken>") && !out.contains("<access denied>"),
            "{name}:\n{out}"
        );
    }
}

/// A published `lspci -nnk` as `lspci -nk` prints it from a recorded tree: names dropped (ids
/// kept), tab indentation, and no `Kernel modules:` lines (lspci looks those up with libkmod
/// for the running kernel, which a recorded tree cannot supply).
fn nk_from_published(published: &str) -> String {
    let mut out = String::new();
    for line in published.lines() {
        let body = line.trim_start();
        if line.starts_with(' ') {
            if body.starts_with("Kernel modules:") {
                continue;
            }
            let body = match body.strip_prefix("Subsystem: ") {
                Some(rest) => {
                    let at = rest.rfind(" [").unwrap();
                    format!("Subsystem: {}", &rest[at + 2..rest.len() - 1])
                }
                None => body.to_string(),
            };
            out.push('\t');
            out.push_str(&body);
            out.push('\n');
        } else {
            out.push_str(&numeric(body));
        }
    }
    out
}

#[test]
fn n100_inventory_is_the_published_one() {
    let dir = testdata_dir().join("n100");
    let published = std::fs::read_to_string(dir.join("lspci-nnk.txt")).unwrap();
    let want = nk_from_published(&published);
    let (out, err) = lspci(&dir.join("fresh"), &["-nk"]);
    assert_eq!(out, want);
    assert_eq!(err, "");
    // With SR-IOV on, the same functions plus the seven VFs of 00:02.0.
    let (out, _) = lspci(&dir.join("sriov"), &["-nk"]);
    let mut rest = String::new();
    let mut vfs = 0;
    let mut in_vf = false;
    for line in out.lines() {
        if !line.starts_with('\t') {
            in_vf = line.starts_with("00:02.") && !line.starts_with("00:02.0");
            vfs += usize::from(in_vf);
            assert!(!in_vf || line.ends_with(" 0300: 8086:46d1"), "{line}");
        }
        if !in_vf {
            rest.push_str(line);
            rest.push('\n');
        }
    }
    assert_eq!((vfs, rest), (7, want));
    for (addr, driver) in [("00:02.1", "vfio-pci"), ("00:02.7", "i915")] {
        let (out, _) = lspci(&dir.join("sriov"), &["-k", "-s", addr]);
        assert!(
            out.contains(&format!("Kernel driver in use: {driver}\n")),
            "{out}"
        );
    }
}

#[test]
fn gvt_keeps_the_seed_tree_and_offers_the_gvt_types() {
    let root = testdata_dir().join("elitedesk-800-g4/gvt");
    let want =
        std::fs::read_to_string(testdata_dir().join("elitedesk-800-g4/lspci-tvnn.txt")).unwrap();
    let (out, err) = lspci(&root, &["-tvnn"]);
    assert_eq!((out, err), (want, String::new()));
    let (out, _) = lspci(&root, &["-k", "-s", "00:02.0"]);
    assert!(out.contains("Kernel driver in use: i915\n"), "{out}");
    let types = root.join("sys/bus/pci/devices/0000:00:02.0/mdev_supported_types");
    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap();
    for (id, available, low) in [
        ("i915-GVTg_V5_1", "0\n", 512),
        ("i915-GVTg_V5_2", "0\n", 256),
        ("i915-GVTg_V5_4", "0\n", 128),
        ("i915-GVTg_V5_8", "1\n", 64),
    ] {
        let t = types.join(id);
        assert_eq!(read(t.join("name")), format!("{}\n", &id[5..]));
        assert_eq!(read(t.join("available_instances")), available, "{id}");
        assert_eq!(read(t.join("device_api")), "vfio-pci\n");
        assert!(read(t.join("description")).starts_with(&format!("low_gm_size: {low}MB\n")));
    }
    let uuid = "00000000-0000-0000-0000-000000000100";
    let instance = types.join("i915-GVTg_V5_8/devices").join(uuid);
    assert_eq!(
        std::fs::canonicalize(instance.join("mdev_type")).unwrap(),
        std::fs::canonicalize(types.join("i915-GVTg_V5_8")).unwrap()
    );
    assert!(
        root.join("sys/bus/mdev/devices")
            .join(uuid)
            .join("remove")
            .exists()
    );
}
