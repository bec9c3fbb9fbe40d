//! The recorded configs of `testdata/vm-configs/`: each round-trips byte for byte, and what
//! [`lint`] finds in each is a snapshot that documents the file's quirks.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use expect_test::{Expect, expect};
use vfiokit_vmconf::{LintOptions, Severity, VmConfig, legacy_igd_verdict, lint};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vm-configs")
}

/// Every config file below `sub`, sorted (INDEX.tsv and README.md are not configs).
fn files(sub: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir().join(sub)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if !matches!(
                p.file_name().and_then(|n| n.to_str()),
                Some("INDEX.tsv" | "README.md")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One block per file: the lint findings with line and severity, and the legacy-IGD verdict.
fn report(sub: &str, qemu: Option<(u32, u32)>) -> String {
    let mut out = String::new();
    for p in files(sub) {
        let text = read(&p);
        let config = VmConfig::parse(&text);
        let name = p.strip_prefix(dir()).unwrap_or(&p).display().to_string();
        let found = lint(
            &config,
            &LintOptions {
                vmid: Some(100),
                qemu,
            },
        );
        let errors = found
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let _ = writeln!(
            out,
            "{name}: {errors} error(s), {} warning(s)",
            found.len() - errors
        );
        for d in &found {
            let sev = match d.severity {
                Severity::Error => "E",
                Severity::Warning => "W",
            };
            let line = d.line.map_or("-".to_string(), |l| l.to_string());
            let _ = writeln!(
                out,
                "  {line:>3} {sev} {}",
                d.message.replace('\n', "\n        ")
            );
        }
        if config.keys().iter().any(|k| k.starts_with("hostpci")) {
            let v = legacy_igd_verdict(&config)
                .err()
                .unwrap_or_else(|| "ok".to_string());
            let _ = writeln!(out, "  legacy-igd verdict: {v}");
        }
    }
    out
}

fn check(sub: &str, qemu: Option<(u32, u32)>, expect: Expect) {
    expect.assert_eq(&report(sub, qemu));
}

#[test]
fn every_recorded_config_round_trips() {
    let all: Vec<PathBuf> = files("wild").into_iter().chain(files("seed")).collect();
    assert!(all.len() >= 20, "{} files", all.len());
    for p in all {
        let text = read(&p);
        assert_eq!(VmConfig::parse(&text).render(), text, "{}", p.display());
    }
}

#[test]
fn wild() {
    check(
        "wild",
        None,
        expect![[r#"
        wild/hostpci/Andrei-Paul_proxmox_etc_pve_qemu-server_100.conf: 0 error(s), 0 warning(s)
          legacy-igd verdict: ok
        wild/hostpci/Chillidaddy_qemu-server_100.conf: 0 error(s), 0 warning(s)
          legacy-igd verdict: ok
        wild/hostpci/Pavo-IM_Proxintosh_etc_pve_qemu-server_100.conf: 0 error(s), 1 warning(s)
            8 W hostpci0: x-vga=1 with bios: ovmf: Proxmox does not pass x-vga=on to QEMU under OVMF (it still hides KVM and turns the emulated VGA off)
          legacy-igd verdict: ok
        wild/hostpci/ex3c-dev_RTX3070-Passthrough_100.conf: 0 error(s), 1 warning(s)
            6 W hostpci1: x-vga=1 with bios: ovmf: Proxmox does not pass x-vga=on to QEMU under OVMF (it still hides KVM and turns the emulated VGA off)
          legacy-igd verdict: ok
        wild/hostpci/halimbo_proxmox_etc_pve_qemu-server_100.conf: 0 error(s), 0 warning(s)
          legacy-igd verdict: ok
        wild/hostpci/iroger_ASRock-TRX40-proxmox_etc_pve_qemu-server_100.conf: 0 error(s), 1 warning(s)
            9 W hostpci2: x-vga=1 with bios: ovmf: Proxmox does not pass x-vga=on to QEMU under OVMF (it still hides KVM and turns the emulated VGA off)
          legacy-igd verdict: ok
        wild/hostpci/patmagauran_i915ovmfPkg_issue33_qm-config.txt: 0 error(s), 0 warning(s)
        wild/legacy-igd/FlynnYork_PVE_res_100.conf: 0 error(s), 0 warning(s)
          legacy-igd verdict: ok
        wild/legacy-igd/LongQT-sea_intel-igpu-passthru_README_fragment.conf: 0 error(s), 0 warning(s)
          legacy-igd verdict: ok
        wild/legacy-igd/gangqizai_igd_100.conf: 0 error(s), 0 warning(s)
          legacy-igd verdict: ok
        wild/legacy-igd/my33love_gk41-pve-ovmf_100.conf: 0 error(s), 0 warning(s)
          legacy-igd verdict: ok
        wild/legacy-igd/syscca_pven355gpurom_100.conf: 0 error(s), 0 warning(s)
          legacy-igd verdict: ok
        wild/legacy-igd/xiongyw_docs_hp-elitedesk-800-g4_qm-config.txt: 1 error(s), 2 warning(s)
            4 E vm 100 - unable to parse config: boot:
            8 W '0000:00:02' names every function of the device: Proxmox fails with "legacy IGD assignment is not compatible with multifunction devices" if the host device has more than one (an iGPU normally has one)
           17 W parent 'apps' names no snapshot section in this file (`qm config` prints the current config only; a real config file has [apps])
          legacy-igd verdict: ok
        wild/negative/jfrostbite_pve_tf_100.conf.LXC: 6 error(s), 0 warning(s)
            3 E vm 100 - unable to parse value of 'features' - unknown setting 'features'
            4 E vm 100 - unable to parse value of 'hostname' - unknown setting 'hostname'
            9 E vm 100 - unable to parse value of 'rootfs' - unknown setting 'rootfs'
           10 E vm 100 - unable to parse value of 'swap' - unknown setting 'swap'
           11 E vm 100 - unable to parse config: lxc.cgroup2.devices.allow: c 116:* rwm
           12 E vm 100 - unable to parse config: lxc.mount.entry: /dev/snd dev/snd none bind,optional,create=dir
        wild/usb-misc/Specimen67_proxmox-init_100.conf: 0 error(s), 1 warning(s)
           13 W duplicate key 'net3': line 14 sets it again; Proxmox keeps the last value it accepts and drops this one silently
        wild/usb-misc/alexjbarnes_HomeLab_qemu-server_100.conf: 0 error(s), 0 warning(s)
        wild/usb-misc/behappiness_pve-no-detection_100.conf: 0 error(s), 0 warning(s)
        wild/usb-misc/d-duese_proxmox-home-OMV-_100.conf: 0 error(s), 0 warning(s)
        wild/usb-misc/technomagniaque_pve_qemu-server_100.conf: 0 error(s), 0 warning(s)
    "#]],
    );
}

#[test]
fn seed() {
    check(
        "seed",
        Some((9, 2)),
        expect![[r#"
        seed/100-working.conf: 1 error(s), 2 warning(s)
            2 W args: x-igd-gms: upstream QEMU 9.2 dropped this property (10.0 brought it back); the seed host's pve-qemu-kvm 9.2.0-5 still accepted it: check `qemu-system-x86_64 -device vfio-pci,help` on QEMU 9.2
            4 E vm 100 - unable to parse config: boot:
            8 W '0000:00:02' names every function of the device: Proxmox fails with "legacy IGD assignment is not compatible with multifunction devices" if the host device has more than one (an iGPU normally has one)
          legacy-igd verdict: ok
        seed/103.conf: 0 error(s), 1 warning(s)
           14 W parent 'apps' names no snapshot section in this file (`qm config` prints the current config only; a real config file has [apps])
    "#]],
    );
}
