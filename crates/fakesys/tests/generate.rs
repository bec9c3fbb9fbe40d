//! Generated large hosts are read by pciutils and by vfiokit's own scan as a real host is.
//!
//! These tests need `lspci` (package pciutils); without it they fail, they never skip.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use vfiokit_fakesys::{generate, write_scratch};

/// `lspci -A linux-sysfs -O sysfs.path=<root>/sys/bus/pci <args>`: stdout, and stderr without the
/// libkmod notice (module lookup is for the running kernel, which says nothing about the tree).
fn lspci(root: &Path, args: &[&str]) -> (String, String) {
    let sysfs = format!("sysfs.path={}", root.join("sys/bus/pci").display());
    let out = Command::new("lspci")
        .args(["-A", "linux-sysfs", "-O", &sysfs])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run lspci ({e}); install pciutils (apt-get install pciutils)")
        });
    let stderr: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.contains("libkmod"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(out.status.success(), "lspci {args:?} failed: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

#[test]
fn lspci_reads_every_generated_function_without_warnings() {
    for (n, seed) in [(14, 1), (1_000, 2)] {
        let host = generate::large_host(n, seed).unwrap();
        let (dir, _root) = write_scratch(&host).unwrap();
        let (out, err) = lspci(dir.path(), &["-D", "-vvv"]);
        assert_eq!(err, "", "{n}: warnings from lspci");
        assert!(
            !out.contains("<chain broken>") && !out.contains("<access denied>"),
            "{n}"
        );
        let (vmm, _) = lspci(dir.path(), &["-D", "-nn", "-k", "-vmm"]);
        assert_eq!(vmm.lines().filter(|l| l.starts_with("Slot:")).count(), n);
        let domains: BTreeSet<&str> = vmm
            .lines()
            .filter_map(|l| l.strip_prefix("Slot:\t"))
            .map(|s| &s[..4])
            .collect();
        assert_eq!(domains.len(), if n == 14 { 1 } else { 2 }, "{domains:?}");
        if n == 1_000 {
            for want in [
                "Single Root I/O Virtualization (SR-IOV)",
                "Access Control Services",
                "Upstream Port",
                "Downstream Port",
                "Virtual Function",
                "Non-Volatile memory controller",
                "Audio device",
                "VGA compatible controller",
            ] {
                assert!(out.contains(want), "no {want:?} in lspci -vvv");
            }
        }
    }
}

#[test]
fn the_scan_finds_exactly_the_functions_generated() {
    let host = generate::large_host(1_000, 9).unwrap();
    let (_dir, root) = write_scratch(&host).unwrap();
    let scan = vfiokit_pci::scan(&root).unwrap();
    assert_eq!(scan.devices.len(), 1_000);
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    let vfs: Vec<_> = scan.devices.iter().filter(|d| d.physfn.is_some()).collect();
    assert!(vfs.len() > 100, "{}", vfs.len());
    for vf in vfs {
        let pf = scan.get(vf.physfn.unwrap()).expect("the PF is scanned too");
        assert_eq!(
            pf.parent, vf.parent,
            "{} and its PF share a bus",
            vf.address
        );
    }
    let groups: BTreeSet<u32> = scan.devices.iter().filter_map(|d| d.iommu_group).collect();
    assert_eq!(
        scan.devices
            .iter()
            .filter(|d| d.iommu_group.is_some())
            .count(),
        1_000
    );
    assert!(
        *groups.last().unwrap() as usize >= groups.len() + 20,
        "sparse"
    );
    let boot: Vec<_> = scan
        .devices
        .iter()
        .filter(|d| d.boot_vga == Some(true))
        .collect();
    assert_eq!(boot.len(), 1);
}
