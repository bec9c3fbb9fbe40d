//! `setup-host`, `undo` and `verify` end to end, on copies of the recorded hosts.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use vfiokit_fakesys::{copy_recorded, hosts};

fn vfiokit(root: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vfiokit"))
        .args(args)
        .arg("--root")
        .arg(root)
        .output()
        .expect("run vfiokit");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every regular file and link under `dir`, with its content or target — except the lock files
/// an `--apply` takes (`var/lock`), which stay behind as Proxmox's do.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = vfiokit_fakesys::snapshot(dir).unwrap();
    all.retain(|p, _| !p.starts_with("var/lock"));
    all
}

/// Compares `actual` with the golden file next to this test; `UPDATE_GOLDEN=1` rewrites it
/// (and [`golden_done`] then fails the test, so CI never passes on a rewrite).
fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(
        actual,
        expected,
        "{} differs (UPDATE_GOLDEN=1 rewrites it)",
        path.display()
    );
}

fn golden_done() {
    assert!(
        std::env::var_os("UPDATE_GOLDEN").is_none(),
        "golden files rewritten; run again without UPDATE_GOLDEN"
    );
}

#[test]
fn plan_apply_again_and_undo_on_the_fresh_elitedesk() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let before = snapshot(dir.path());
    let snapshot_all_before = vfiokit_fakesys::snapshot(dir.path()).unwrap();

    // The dry run shows every diff and command and writes nothing at all (no lock either).
    let (code, out, err) = vfiokit(root.root(), &["setup-host", "--device", "00:02.0"]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "--- a/etc/default/grub",
        "+GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt\"",
        "--- a/etc/modules",
        "+vfio_iommu_type1",
        "+++ b/etc/modprobe.d/vfio.conf",
        "options vfio-pci ids=8086:3e92",
        "softdep i915 pre: vfio-pci",
        "blacklist i915",
        "update-initramfs -u -k all",
        "update-grub",
        "why: intel_iommu=on",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(
        !out.contains("vfio_virqfd"),
        "6.8 has no vfio_virqfd:\n{out}"
    );
    assert_eq!(
        vfiokit_fakesys::snapshot(dir.path()).unwrap(),
        snapshot_all_before,
        "a dry run changed the root"
    );

    // Apply, then the same command again plans nothing.
    let (code, out, err) = vfiokit(
        root.root(),
        &[
            "setup-host",
            "--device",
            "00:02.0",
            "--device",
            "00:14.3",
            "--apply",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("not run (root is not /): update-initramfs -u -k all"),
        "{out}"
    );
    let etc = dir.path().join("etc");
    golden(
        "fresh-igpu-wifi/grub",
        &fs::read_to_string(etc.join("default/grub")).unwrap(),
    );
    golden(
        "fresh-igpu-wifi/modules",
        &fs::read_to_string(etc.join("modules")).unwrap(),
    );
    golden(
        "fresh-igpu-wifi/vfio.conf",
        &fs::read_to_string(etc.join("modprobe.d/vfio.conf")).unwrap(),
    );
    golden_done();
    let (code, out, _) = vfiokit(
        root.root(),
        &[
            "setup-host",
            "--device",
            "00:02.0",
            "--device",
            "00:14.3",
            "--apply",
        ],
    );
    assert_eq!(code, 0);
    assert!(out.starts_with("nothing to do"), "{out}");
    let journal = fs::metadata(dir.path().join("var/lib/vfiokit/journal.json")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&journal.permissions()) & 0o777,
        0o600
    );

    // Undo restores every file byte for byte; the new vfio.conf is gone again.
    let (code, out, err) = vfiokit(root.root(), &["undo"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("removed etc/modprobe.d/vfio.conf"), "{out}");
    let mut after = snapshot(dir.path());
    assert!(
        after
            .remove(Path::new("var/lib/vfiokit/journal.json"))
            .is_some()
    );
    assert_eq!(after, before);
    let (code, _, err) = vfiokit(root.root(), &["undo"]);
    assert_eq!(code, 1);
    assert!(err.contains("already undone"), "{err}");
}

#[test]
fn the_audio_function_is_refused_for_the_network_it_takes() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let before = snapshot(dir.path());
    let (code, _, err) = vfiokit(
        root.root(),
        &["setup-host", "--device", "00:1f.3", "--apply"],
    );
    assert_eq!(code, 3, "{err}");
    for needle in [
        "0000:00:1f.6",
        "eno1",
        "vmbr0",
        "default-route-nic",
        "8087:0aaa",
        "--force-collateral",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert_eq!(snapshot(dir.path()), before);
    // Accepting only some of the losses is not enough.
    let (code, _, err) = vfiokit(
        root.root(),
        &[
            "setup-host",
            "--device",
            "00:1f.3",
            "--force-collateral",
            "00:1f.0",
            "--force-collateral",
            "00:1f.4",
        ],
    );
    assert_eq!(code, 3);
    assert!(
        err.contains("0000:00:1f.6") && !err.contains("0000:00:1f.4 ("),
        "{err}"
    );
}

#[test]
fn the_only_usb_controller_is_refused_naming_keyboard_and_bluetooth() {
    let (_dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let (code, _, err) = vfiokit(root.root(), &["setup-host", "--device", "00:14.0"]);
    assert_eq!(code, 3, "{err}");
    for needle in [
        "only-usb-controller",
        "062a:4101",
        "8087:0aaa",
        "Bluetooth adapter",
        "input device",
        "by id",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

#[test]
fn unknown_devices_and_bad_addresses_are_errors() {
    let (_dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let (code, _, err) = vfiokit(root.root(), &["setup-host", "--device", "00:03.0"]);
    assert_eq!(code, 1);
    assert!(err.contains("no PCI device 0000:00:03.0"), "{err}");
    let (code, _, err) = vfiokit(root.root(), &["setup-host", "--device", "00:20.0"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn identical_gpus_are_bound_by_address_not_by_id() {
    let mut host = hosts::twin_gpus();
    host.file(
        "etc/default/grub",
        "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT='quiet'\nGRUB_CMDLINE_LINUX=\"\"\n",
    )
    .file("etc/modules", "");
    let (_dir, root) = host.write_temp().unwrap();
    let (code, out, err) = vfiokit(
        root.root(),
        &["setup-host", "--device", "01:00.0", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let conf = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "etc/modprobe.d/vfio.conf")
        .unwrap();
    let diff = conf["diff"].as_str().unwrap();
    assert!(
        !diff.contains("ids="),
        "an identical GPU stays with the host, so no ids=:\n{diff}"
    );
    assert!(
        diff.contains("/sys/bus/pci/devices/0000:01:00.0/driver_override"),
        "{diff}"
    );
    assert!(!diff.contains("0000:02:00.0"), "{diff}");
    assert!(
        !diff.contains("blacklist snd_hda_intel"),
        "the other GPU's audio needs it:\n{diff}"
    );
    // Single quotes in GRUB are kept.
    let grub = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "etc/default/grub")
        .unwrap();
    assert!(
        grub["diff"]
            .as_str()
            .unwrap()
            .contains("+GRUB_CMDLINE_LINUX_DEFAULT='quiet intel_iommu=on iommu=pt'"),
        "{grub}"
    );
}

#[test]
fn verify_reports_the_seeds_own_flaws() {
    let root = vfiokit_fakesys::testdata_dir().join("elitedesk-800-g4/configured");
    let (code, out, err) = vfiokit(&root, &["verify", "--json"]);
    assert_eq!(code, 3, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let checks: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    for c in [
        "vfio-virqfd",
        "allow-unsafe-interrupts",
        "pending-reboot",
        "acs-override-ineffective",
        "vfio-ids-unpassable",
        "romfile-missing",
    ] {
        assert!(checks.contains(&c), "no {c} in {checks:?}");
    }
    let text = out.to_string();
    assert!(
        text.contains("8086:a348") && text.contains("0000:00:1f.6"),
        "{text}"
    );
    // A freshly set-up host has nothing left to fix but the reboot.
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let (code, _, err) = vfiokit(
        root.root(),
        &["setup-host", "--device", "00:02.0", "--apply"],
    );
    assert_eq!(code, 0, "{err}");
    fs::write(dir.path().join("proc/cmdline"), "BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet intel_iommu=on iommu=pt\n").unwrap();
    let (code, out, _) = vfiokit(root.root(), &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok"), "{out}");
    // Until the reboot, verify says the new parameters are pending.
    fs::write(
        dir.path().join("proc/cmdline"),
        "BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet\n",
    )
    .unwrap();
    let (code, out, _) = vfiokit(root.root(), &["verify"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("pending-reboot: intel_iommu=on iommu=pt are in"),
        "one finding lists every pending parameter: {out}"
    );
    assert_eq!(out.matches("pending-reboot:").count(), 1, "{out}");
}

#[test]
fn systemd_boot_hosts_get_their_command_line_in_etc_kernel_cmdline() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    fs::create_dir_all(dir.path().join("etc/kernel")).unwrap();
    fs::write(
        dir.path().join("etc/kernel/proxmox-boot-uuids"),
        "1234-ABCD\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("etc/kernel/cmdline"),
        "root=ZFS=rpool/ROOT/pve-1 boot=zfs\n",
    )
    .unwrap();
    let (code, out, err) = vfiokit(
        root.root(),
        &["setup-host", "--device", "00:02.0", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let paths: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"etc/kernel/cmdline") && !paths.contains(&"etc/default/grub"),
        "{paths:?}"
    );
    let cmdline = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "etc/kernel/cmdline")
        .unwrap();
    assert!(
        cmdline["diff"]
            .as_str()
            .unwrap()
            .contains("+root=ZFS=rpool/ROOT/pve-1 boot=zfs intel_iommu=on iommu=pt"),
        "{cmdline}"
    );
    let argv: Vec<String> = v["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["argv"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(
        argv,
        ["update-initramfs -u -k all", "proxmox-boot-tool refresh"]
    );
}

#[test]
fn unsafe_interrupts_only_without_remapping_and_reported_as_a_risk() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let (_, out, _) = vfiokit(root.root(), &["setup-host", "--device", "00:02.0"]);
    assert!(!out.contains("allow_unsafe_interrupts"), "{out}");
    fs::write(
        dir.path()
            .join("sys/devices/virtual/iommu/dmar1/intel-iommu/ecap"),
        "f050d2\n",
    )
    .unwrap();
    let (code, out, err) = vfiokit(root.root(), &["setup-host", "--device", "00:02.0"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("+options vfio_iommu_type1 allow_unsafe_interrupts=1"),
        "{out}"
    );
    assert!(
        out.contains("RISK") && out.contains("note: security risk"),
        "{out}"
    );
}

#[test]
fn accepted_collateral_and_harmless_members_are_all_planned() {
    // Accepting every loss of the audio group plans all five functions for vfio-pci.
    let (_dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let (code, out, err) = vfiokit(
        root.root(),
        &[
            "setup-host",
            "--device",
            "00:1f.3",
            "--force-collateral",
            "00:1f.0",
            "00:1f.4",
            "00:1f.5",
            "00:1f.6",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["members"].as_array().unwrap().len(), 5);
    assert!(
        out.contains("8086:15bb") && out.contains("blacklist e1000e"),
        "{out}"
    );

    // A dGPU's group holds its audio function and the root port: both handled, nothing refused.
    let mut host = hosts::intel_dgpu();
    host.file("etc/default/grub", "GRUB_CMDLINE_LINUX_DEFAULT=quiet\n")
        .file("etc/modules", "");
    let (_dir, root) = host.write_temp().unwrap();
    let (code, out, err) = vfiokit(root.root(), &["setup-host", "--device", "01:00.0"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("plan for 0000:01:00.0, 0000:01:00.1"), "{out}");
    assert!(
        out.contains("0000:00:01.0 is a bridge in the same group"),
        "{out}"
    );
    assert!(
        out.contains("+GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt\""),
        "{out}"
    );
}

#[test]
fn unparseable_lines_are_kept_and_reported_and_no_iommu_is_an_error() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let modules = dir.path().join("etc/modules");
    let mut text = fs::read_to_string(&modules).unwrap();
    text.push_str("loop max_loop=8\n");
    fs::write(&modules, &text).unwrap();
    let (code, out, err) = vfiokit(
        root.root(),
        &["setup-host", "--device", "00:02.0", "--apply"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("etc/modules:7: systemd-modules-load reads \"loop max_loop=8\""),
        "{out}"
    );
    assert!(
        fs::read_to_string(&modules)
            .unwrap()
            .contains("loop max_loop=8\nvfio\n")
    );

    let (_dir, root) = hosts::no_iommu().write_temp().unwrap();
    let (code, _, err) = vfiokit(root.root(), &["setup-host", "--device", "00:02.0"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the IOMMU is off") && err.contains("VT-d"),
        "{err}"
    );
}

#[test]
fn refusals_print_typed_json_and_apply_prints_json() {
    let fresh = vfiokit_fakesys::testdata_dir().join("elitedesk-800-g4/fresh");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vfiokit"))
        .args(["setup-host", "--device", "00:1f.3", "--json", "--root"])
        .arg(&fresh)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["refused"].as_str().unwrap().starts_with("refused: "));
    assert!(
        v["harms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["address"] == "0000:00:1f.6" && h["role"] == "default-route-nic"),
        "{v}"
    );
    assert!(!v["alternatives"].as_array().unwrap().is_empty(), "{v}");
    assert!(
        v["force_collateral"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "0000:00:1f.6"),
        "{v}"
    );

    let (dir, root) = vfiokit_fakesys::copy_recorded("elitedesk-800-g4/fresh").unwrap();
    for args in [
        &[
            "setup-vm",
            "--vmid",
            "100",
            "--usb",
            "062a:4101",
            "--apply",
            "--json",
        ][..],
        &["setup-host", "--device", "00:02.0", "--apply", "--json"],
        &["undo", "--json"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vfiokit"))
            .args(args)
            .arg("--root")
            .arg(root.root())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        if args[0] != "undo" {
            assert_eq!(v["applied"], true, "{v}");
        }
    }
    drop(dir);
}

#[test]
fn verify_fix_plans_then_applies_and_undo_restores() {
    let (dir, root) = vfiokit_fakesys::copy_recorded("elitedesk-800-g4/configured").unwrap();
    let vfio = dir.path().join("etc/modprobe.d/vfio.conf");
    let before = std::fs::read(&vfio).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vfiokit"))
            .args(args)
            .arg("--root")
            .arg(root.root())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = run(&["verify", "--fix"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("-options vfio_iommu_type1 allow_unsafe_interrupts=1"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(&vfio).unwrap(),
        before,
        "a dry run writes nothing"
    );
    let (code, text) = run(&["verify", "--fix", "--apply"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run(&["verify", "--json"]);
    assert_eq!(code, Some(3), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["fixable"] == false),
        "{v}"
    );
    assert_eq!(run(&["undo"]).0, Some(0));
    assert_eq!(std::fs::read(&vfio).unwrap(), before);
}
