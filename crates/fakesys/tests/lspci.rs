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
