//! Tables for the document edits, the typed values, Proxmox's checks and the mapping files.

use std::fmt::Write as _;

use expect_test::{Expect, expect};
use vfiokit_vmconf::{
    HostFunction, HostPci, LegacySupport, LintOptions, Machine, MachineKind, MappingFile,
    PciHostId, PciMapItem, Section, Severity, UsbEntry, UsbHost, UsbMapItem, VmConfig,
    igd_generation, legacy_igd_verdict, lint, lint_with_host, split_args,
};

const SEED_103: &str = include_str!("../../../testdata/vm-configs/seed/103.conf");

/// The lint findings of `text`, one per line: `line severity message`.
fn lints(text: &str, qemu: Option<(u32, u32)>, host: Option<&[HostFunction]>) -> String {
    let config = VmConfig::parse(text);
    let mut out = String::new();
    for d in lint_with_host(&config, &LintOptions { vmid: None, qemu }, host) {
        let sev = if d.severity == Severity::Error {
            "E"
        } else {
            "W"
        };
        let line = d.line.map_or("-".into(), |l| l.to_string());
        let _ = writeln!(out, "{line} {sev} {}", d.message);
    }
    let _ = writeln!(out, "verdict: {:?}", legacy_igd_verdict(&config));
    out
}

fn check(text: &str, expect: Expect) {
    expect.assert_eq(&lints(text, None, None));
}

/// The inserted line's neighbours after `set(key, value)` on the seed's 103 config.
fn neighbours(key: &str) -> (String, String) {
    let mut c = VmConfig::parse(SEED_103);
    assert!(c.set(key, "x"));
    let text = c.render();
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == format!("{key}: x"))
        .expect("inserted");
    let before = if at == 0 { "<top>" } else { lines[at - 1] };
    (
        before.to_string(),
        lines.get(at + 1).copied().unwrap_or("<end>").to_string(),
    )
}

#[test]
fn new_keys_land_where_proxmox_sorts_them() {
    let key_of = |(a, b): (String, String)| {
        (
            a.split(':').next().unwrap_or("").to_string(),
            b.split(':').next().unwrap_or("").to_string(),
        )
    };
    assert_eq!(
        key_of(neighbours("hostpci0")),
        ("efidisk0".into(), "machine".into())
    );
    assert_eq!(
        key_of(neighbours("usb0")),
        ("tpmstate0".into(), "vga".into())
    );
    assert_eq!(key_of(neighbours("args")), ("agent".into(), "bios".into()));
    assert_eq!(
        key_of(neighbours("affinity")),
        ("<top>".into(), "agent".into())
    );
    assert_eq!(
        key_of(neighbours("zzz")),
        ("vmgenid".into(), "<end>".into())
    );

    let mut c = VmConfig::parse("#desc\nbios: ovmf\nhostpci2: 00:1f.3\n");
    assert!(c.set("hostpci10", "01:00.0"));
    assert!(c.set("args", "-a"));
    assert!(c.set("usb1", "host=1-1"));
    assert!(c.set("usb0", "host=1-2"));
    assert_eq!(
        c.render(),
        "#desc\nargs: -a\nbios: ovmf\nhostpci10: 01:00.0\nhostpci2: 00:1f.3\nusb0: host=1-2\nusb1: host=1-1\n"
    );
    // Never after a section header, never inside the leading description.
    let mut c = VmConfig::parse("#a\n#b\n\n[snap]\nbios: ovmf\n");
    assert!(c.set("bios", "seabios"));
    assert_eq!(c.render(), "#a\n#b\nbios: seabios\n\n[snap]\nbios: ovmf\n");
    // CRLF files get a CRLF line; no final newline stays so.
    let mut c = VmConfig::parse("agent: 1\r\nvga: std\r\n");
    assert!(c.set("cores", "4"));
    assert_eq!(c.render(), "agent: 1\r\ncores: 4\r\nvga: std\r\n");
    let mut c = VmConfig::parse("agent: 1");
    assert!(c.set("vga", "none"));
    assert_eq!(c.render(), "agent: 1\nvga: none");
}

#[test]
fn set_rewrites_the_last_occurrence_in_its_spelling() {
    let mut c = VmConfig::parse("hotplug:0\nnet3: a\nnet3:  b  \ntablet:0");
    assert!(c.set("hotplug", "1"));
    assert!(c.set("net3", "c"));
    assert!(!c.set("net3", "c"));
    assert_eq!(c.render(), "hotplug:1\nnet3: a\nnet3:  c  \ntablet:0");
    assert_eq!(c.get("net3"), Some("c"));
    assert!(c.remove("net3"));
    assert_eq!(c.render(), "hotplug:1\ntablet:0");
    // Refused: line breaks, bad keys, `delete`, values that would not read back.
    for (k, v) in [
        ("vga", "a\nb"),
        ("vga", "a\rb"),
        ("Vga", "x"),
        ("lxc.a", "x"),
        ("delete", "vga"),
        ("vga", ""),
        ("vga", " x"),
        ("name", "x snapstate: delete"),
    ] {
        assert!(!c.set(k, v), "{k}: {v:?}");
    }
    assert_eq!(c.render(), "hotplug:1\ntablet:0");
}

#[test]
fn reads_like_proxmox() {
    let text = "#line%3A one\n#%C3%A9\ndescription: more\nboot:  \nboot:\nargs: -x  \n\
                cdrom: none\nhostpci3: 01:00.0\n[PENDING]\ndelete: vga\nvga: std\n\
                [special:cloudinit]\nfoo: bar\n[a b]\nname: skipped\n[snap1]\nsnaptime: 1\n";
    let c = VmConfig::parse(text);
    assert_eq!(c.description(), "line: one\né\nmore");
    assert_eq!(c.get("boot"), Some(" "));
    assert_eq!(c.get("args"), Some("-x"));
    assert_eq!(
        c.keys(),
        ["description", "boot", "args", "cdrom", "hostpci3"]
    );
    assert_eq!(c.next_free("hostpci", 15), Some(0));
    assert_eq!(c.snapshot_names(), ["snap1"]);
    let sections: Vec<(usize, Section<'_>, &str)> = c
        .entries()
        .iter()
        .map(|e| (e.line, e.section, e.key))
        .collect();
    assert_eq!(
        sections,
        [
            (3, Section::Main, "description"),
            (4, Section::Main, "boot"),
            (6, Section::Main, "args"),
            (7, Section::Main, "cdrom"),
            (8, Section::Main, "hostpci3"),
            (10, Section::Pending, "delete"),
            (11, Section::Pending, "vga"),
            (13, Section::Special("cloudinit"), "foo"),
            (17, Section::Snapshot("snap1"), "snaptime"),
        ]
    );
    // Multi-byte text next to the ASCII the classifier looks for.
    for t in [
        "[abcdefgé]",
        "[specialé]",
        "[special:é]",
        "é: x",
        "snapstate:é",
    ] {
        let c = VmConfig::parse(t);
        assert_eq!(c.render(), t);
        let _ = lint(&c, &LintOptions::default());
    }
    let mut d = VmConfig::parse("#old\nagent: 1\n");
    assert!(d.set_description("a: b\nc"));
    assert_eq!(d.render(), "#a%3A b\n#c\nagent: 1\n");
    assert!(!d.set_description("a: b\nc"));
}

#[test]
fn parse_time_errors() {
    check(
        "boot:\nBoot: x\n  cores: 2\nlxc.idmap: u 0\nfoo: 1\nnuma: maybe\ncores: -1\ncpulimit: 1.5\n\
         hostpci0: 0000:00:1F.3\nhostpci1: host=00:02.0,foo=1\nvga: type=fancy\nmachine: pc-q35-9.2+pve1\n\
         machine: pc-i440fx-9\nusb0: host=062a:41011\nusb14: host=1-1\nhostpci16: 00:02.0\ndelete: vga\n\
         [PENDING]\ndelete: vga\n[PENDING]\n[special:cloudinit]\nanything: goes\n[snap]\n[snap]\n[a b]\ngarbage\n",
        expect![[r#"
            1 E unable to parse config: boot:
            2 E unable to parse config: Boot: x
            3 E unable to parse config:   cores: 2
            4 E unable to parse config: lxc.idmap: u 0
            5 E unable to parse value of 'foo' - unknown setting 'foo'
            6 E unable to parse value of 'numa' - type check ('boolean') failed - got 'maybe'
            7 E unable to parse value of 'cores' - type check ('integer') failed - got '-1'
            9 E unable to parse value of 'hostpci0' - format error
            host: value does not match the regex pattern
            10 E unable to parse value of 'hostpci1' - invalid key in comma-separated list property: foo
            11 E unable to parse value of 'vga' - format error
            type: value 'fancy' does not have a value in the enumeration 'cirrus, qxl, qxl2, qxl3, qxl4, none, serial0, serial1, serial2, serial3, std, virtio, virtio-gl, vmware'
            12 W duplicate key 'machine': line 13 sets it again; Proxmox keeps the last value it accepts and drops this one silently
            13 E unable to parse value of 'machine' - format error
            type: value does not match the regex pattern
            14 E unable to parse value of 'usb0' - format error
            host: value does not match the regex pattern
            15 E unable to parse value of 'usb14' - unknown setting 'usb14'
            16 E unable to parse value of 'hostpci16' - unknown setting 'hostpci16'
            17 E property 'delete' is only allowed in [PENDING]
            20 E duplicate section: pending
            24 E duplicate snapshot section: snap
            25 E skipping unknown section: 'a b' (Proxmox ignores every line up to the next section)
            verdict: Ok(())
        "#]],
    );
}

#[test]
fn legacy_igd_rules_in_proxmox_order() {
    let base = "hostpci0: 0000:00:02.0,legacy-igd=1\nmachine: pc-i440fx-9.2\nvga: none\n";
    assert_eq!(legacy_igd_verdict(&VmConfig::parse(base)), Ok(()));
    let verdict = |text: &str| {
        legacy_igd_verdict(&VmConfig::parse(text))
            .err()
            .unwrap_or_default()
    };
    let cases = [
        (
            "machine: q35\nvga: none\nhostpci0: 0000:00:02.0,legacy-igd=1",
            "legacy IGD assignment is not compatible with q35",
        ),
        (
            "machine: pc-q35-9.2+pve1\nvga: none\nhostpci0: 0000:00:02.0,legacy-igd=1,pcie=1",
            "legacy IGD assignment is not compatible with q35",
        ),
        (
            "vga: none\nhostpci0: 0000:00:02.0,legacy-igd=1,pcie=1",
            "q35 machine model is not enabled",
        ),
        (
            "hostpci0: 0000:00:02.0,legacy-igd=1\nmachine: q35",
            "legacy IGD assignment requires VGA mode to be 'none'",
        ),
        (
            "vga: type=none\nhostpci0: 0000:00:02.0,legacy-igd=1",
            "legacy IGD assignment requires VGA mode to be 'none'",
        ),
        (
            "vga: none,memory=16\nhostpci0: 0000:00:02.0,legacy-igd=1",
            "legacy IGD assignment requires VGA mode to be 'none'",
        ),
        (
            "vga: none\nhostpci0: 0000:00:02.0,legacy-igd=1,rombar=0,x-vga=1",
            "legacy IGD assignment requires rombar to be enabled",
        ),
        (
            "vga: none\nhostpci0: 0000:00:02.0,legacy-igd=1,x-vga=on",
            "legacy IGD assignment is not compatible with x-vga",
        ),
        (
            "vga: none\nhostpci0: 0000:00:02.0,legacy-igd=1,mdev=i915-GVTg_V5_4",
            "legacy IGD assignment is not compatible with mdev",
        ),
        (
            "vga: none\nhostpci0: 0000:00:02.0;0000:00:1f.3,legacy-igd=1",
            "legacy IGD assignment is not compatible with multifunction devices",
        ),
        (
            "vga: none\nhostpci0: 0000:01:00.0,legacy-igd=1",
            "legacy IGD assignment only works for devices on host bus 00:02.0",
        ),
        (
            "vga: none\nhostpci0: 0000:00:02.0,legacy-igd=1\nhostpci1: 00:02.1,legacy-igd=yes",
            "only one device can be assigned in legacy-igd mode",
        ),
        (
            "vga: none\nhostpci0: legacy-igd=1",
            "Either 'host' or 'mapping' must be set.",
        ),
        (
            "vga: none\nhostpci0: 00:02.0,mapping=igpu,legacy-igd=1",
            "Cannot set both 'host' and 'mapping'.",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(verdict(text), want, "{text}");
        // lint reports the same message as an error.
        let found = lint(&VmConfig::parse(text), &LintOptions::default());
        assert!(
            found
                .iter()
                .any(|d| d.severity == Severity::Error && d.message == want),
            "{text}: {found:?}"
        );
    }
    // Proxmox's loose 02.0 check: any id ending in 02.0; no function means .0 first.
    assert_eq!(verdict("vga: none\nhostpci0: 01:02,legacy-igd=1"), "");
    // A line Proxmox rejects is not there at start: only the valid earlier vga counts.
    assert_eq!(
        verdict("vga: none\nvga: nonsense\nhostpci0: 00:02.0,legacy-igd=1"),
        ""
    );
}

#[test]
fn lint_reports_every_failing_legacy_rule() {
    check(
        "args: -set device.hostpci0.addr=02.0 -set device.hostpci3.x-igd-gms=0x2\n\
         hostpci0: 0000:00:02,legacy-igd=1,x-vga=1\nhostpci1: 0000:00:1f.3\nhostpci2: 00:1f.3\n\
         machine: pc-q35-9.2+pve1\nusb5: host=1-1\n",
        expect![[r#"
            1 E args: -set device.hostpci3.x-igd-gms: there is no device "hostpci3" defined (QEMU; the config has no single-function hostpci3)
            2 E legacy IGD assignment requires VGA mode to be 'none'
            2 E legacy IGD assignment is not compatible with x-vga
            2 E legacy IGD assignment is not compatible with q35
            2 W '0000:00:02' names every function of the device: Proxmox fails with "legacy IGD assignment is not compatible with multifunction devices" if the host device has more than one (an iGPU normally has one)
            4 E device '0000:00:1f.3' assigned more than once (also by hostpci1)
            5 W machine 'pc-q35-9.2+pve1' with legacy-igd: on the seed host (QEMU 9.2) pc-i440fx-9.2+pve1 did not work while pc-i440fx-9.2 did; the +pve1 revision changes the machine's defaults (9.2+pve1 turns S3/S4 off); use the type without +pve1
            6 E using usb5 is only possible with machine type >= 7.1 and ostype l26 or windows > 7
            verdict: Err("legacy IGD assignment requires VGA mode to be 'none'")
        "#]],
    );
    // usb5+ is fine on a new machine with a modern OS type.
    let ok = lints(
        "machine: pc-i440fx-7.1\nostype: win11\nusb5: host=1-1\n",
        None,
        None,
    );
    assert_eq!(ok, "verdict: Ok(())\n");
    let old = lints(
        "machine: pc-i440fx-7.0\nostype: l26\nusb13: spice\n",
        None,
        None,
    );
    assert!(old.contains("using usb13 is only possible"), "{old}");
}

fn igd_host(device_id: u16) -> Vec<HostFunction> {
    let f = |bus, device, function, vendor, device_id| HostFunction {
        domain: 0,
        bus,
        device,
        function,
        vendor,
        device_id,
    };
    vec![
        f(0, 2, 0, 0x8086, device_id),
        f(0, 0x1f, 0, 0x8086, 0xa306),
        f(0, 0x1f, 3, 0x8086, 0xa348),
        f(1, 0, 0, 0x10de, 0x2484),
        f(1, 0, 1, 0x10de, 0x228b),
    ]
}

#[test]
fn igd_generation_and_gms_by_qemu_version() {
    let igd = "args: -set device.hostpci0.x-igd-gms=GMS\nhostpci0: 0000:00:02.0,legacy-igd=1\nvga: none\n";
    let run = |gms: &str, did: u16, qemu: (u32, u32)| {
        let host = igd_host(did);
        lints(&igd.replace("GMS", gms), Some(qemu), Some(&host))
    };
    expect![[r#"
        verdict: Ok(())
    "#]]
    .assert_eq(&run("0x2", 0x3e92, (10, 1)));
    expect![[r#"
        1 E args: x-igd-gms=0x41 is outside what QEMU 10.1 accepts for generation 9 (0x0..=0x40 or 0xf0..=0xfe): QEMU reports "Unsupported IGD GMS value"
        verdict: Ok(())
    "#]]
    .assert_eq(&run("0x41", 0x3e92, (10, 1)));
    expect![[r#"
        1 E args: x-igd-gms=0xf0 is outside what QEMU 10.0 accepts for generation 9 (0x0..=0x40): QEMU reports "Unsupported IGD GMS value"
        verdict: Ok(())
    "#]]
    .assert_eq(&run("0xf0", 0x3e92, (10, 0)));
    expect![[r#"
        1 W args: x-igd-gms: upstream QEMU 9.2 dropped this property (10.0 brought it back); the seed host's pve-qemu-kvm 9.2.0-5 still accepted it: check `qemu-system-x86_64 -device vfio-pci,help` on QEMU 9.2
        2 E IGD device 0000:00:02.0 is unsupported in legacy mode, try SandyBridge or newer (QEMU 9.2 does not know device id a780 as generation 6 or later)
        verdict: Ok(())
    "#]]
    .assert_eq(&run("2", 0xa780, (9, 2)));
    expect![[r#"
        2 W QEMU 10.1 enables IGD legacy mode by itself only for generations 6 to 9; this is generation 12: add `-set device.hostpci0.x-igd-legacy-mode=on` (or x-igd-lpc=on) to args
        verdict: Ok(())
    "#]]
    .assert_eq(&run("0x2", 0xa780, (10, 1)));
    expect![[r#"
        1 E args: x-igd-gms=0x11 is outside what QEMU 8.1 accepts for generation 8 (0x0..=0x10): QEMU reports "Unsupported IGD GMS value"
        verdict: Ok(())
    "#]]
    .assert_eq(&run("0x11", 0x3e92, (8, 1)));

    let g = |did, q| {
        igd_generation(did, q).map(|g| (g.generation, g.family, g.assumed, g.legacy_support()))
    };
    assert_eq!(
        g(0x3e92, (10, 1)),
        Some((9, "Coffee Lake", false, LegacySupport::Auto))
    );
    assert_eq!(
        g(0x3e92, (9, 2)),
        Some((9, "Coffee Lake", false, LegacySupport::Auto))
    );
    assert_eq!(
        g(0x3e92, (9, 1)),
        Some((8, "unknown (assumed compatible)", true, LegacySupport::Auto))
    );
    assert_eq!(g(0x9bc8, (9, 2)), None);
    assert_eq!(
        g(0x9bc8, (10, 0)),
        Some((9, "Comet Lake", false, LegacySupport::Auto))
    );
    assert_eq!(g(0x5a84, (10, 0)).map(|x| x.0), Some(9));
    assert_eq!(g(0x5a84, (9, 2)).map(|x| x.0), Some(8));
    assert_eq!(g(0x0412, (10, 0)).map(|x| x.0), Some(7));
    assert_eq!(g(0x0412, (9, 2)).map(|x| x.0), Some(6));
    assert_eq!(g(0x2e12, (9, 1)), None);
    assert_eq!(
        g(0x46a6, (10, 1)),
        Some((12, "Alder Lake", false, LegacySupport::OptIn))
    );
}

#[test]
fn host_dependent_checks() {
    let host = igd_host(0x3e92);
    let text = "hostpci0: 0000:00:02,legacy-igd=1\nhostpci1: 01:00,legacy-igd=0\nhostpci2: 0000:05:00.0\nvga: none\n\
                args: -set device.hostpci1.x-vga=on\n";
    expect![[r#"
        3 E no PCI device found for '0000:05:00.0'
        5 E args: -set device.hostpci1.x-vga: there is no device "hostpci1" defined (QEMU; the config has no single-function hostpci1)
        verdict: Ok(())
    "#]]
    .assert_eq(&lints(text, None, Some(&host)));
    let mf = "hostpci0: 0000:00:1f,legacy-igd=1\nvga: none\n";
    let out = lints(mf, None, Some(&host));
    assert!(
        out.contains("not compatible with multifunction devices"),
        "{out}"
    );
}

#[test]
fn args_split_like_perl() {
    assert_eq!(
        split_args("-cpu 'host,+kvm_pv_unhalt,kvm=off'  -set device.hostpci0.x-igd-gms=1").ok(),
        Some(vec![
            "-cpu".into(),
            "host,+kvm_pv_unhalt,kvm=off".into(),
            "-set".into(),
            "device.hostpci0.x-igd-gms=1".into()
        ])
    );
    let e = split_args("-smbios 'type=1").err().map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some(
            "cannot split \"-smbios 'type=1\" like Perl's shellwords (unbalanced ' quote): Proxmox passes none of it"
        )
    );
    check(
        "args: -a 'b\n",
        expect![[r#"
        1 E args: cannot split "-a 'b" like Perl's shellwords (unbalanced ' quote): Proxmox passes none of it
        verdict: Ok(())
    "#]],
    );
}

#[test]
fn host_pci_ids() {
    let mut out = String::new();
    for s in [
        "0000:00:02.0",
        "00:02.0",
        "0000:00:02",
        "00:ff.1",
        "f0:43.0",
        "0f:00",
        "10000:0a:00.f",
        "0000:00:1F.3",
        "00:02.10",
        "0:00:02.0",
        "00:2.0",
        "00:02.",
    ] {
        let r = s
            .parse::<PciHostId>()
            .map(|id| format!("{id} {:?}", (id.domain, id.bus, id.device, id.function)));
        let _ = writeln!(
            out,
            "{s:14} {}",
            r.unwrap_or_else(|e| format!("error: {e}"))
        );
    }
    expect![[r#"
        0000:00:02.0   0000:00:02.0 (Some(0), 0, 2, Some(0))
        00:02.0        0000:00:02.0 (None, 0, 2, Some(0))
        0000:00:02     0000:00:02 (Some(0), 0, 2, None)
        00:ff.1        0000:00:ff.1 (None, 0, 255, Some(1))
        f0:43.0        0000:f0:43.0 (None, 240, 67, Some(0))
        0f:00          0000:0f:00 (None, 15, 0, None)
        10000:0a:00.f  10000:0a:00.f (Some(65536), 10, 0, Some(15))
        0000:00:1F.3   error: invalid host PCI id "0000:00:1F.3": expected [dddd:]bb:dd[.f] in lowercase hex
        00:02.10       error: invalid host PCI id "00:02.10": expected [dddd:]bb:dd[.f] in lowercase hex
        0:00:02.0      error: invalid host PCI id "0:00:02.0": expected [dddd:]bb:dd[.f] in lowercase hex
        00:2.0         error: invalid host PCI id "00:2.0": expected [dddd:]bb:dd[.f] in lowercase hex
        00:02.         error: invalid host PCI id "00:02.": expected [dddd:]bb:dd[.f] in lowercase hex
    "#]]
    .assert_eq(&out);
    let id: PciHostId = "0000:00:02".parse().expect("id");
    assert!(id.matches(0, 0, 2, 0) && id.matches(0, 0, 2, 1) && !id.matches(0, 0, 3, 0));
}

#[test]
fn typed_values() {
    let h =
        HostPci::parse("0000:00:02,legacy-igd=1,romfile=igpu-uhd630.rom").expect("seed hostpci0");
    assert_eq!(h.host, ["0000:00:02".parse::<PciHostId>().expect("id")]);
    assert_eq!(
        (h.legacy_igd, h.rombar, h.romfile.as_deref()),
        (Some(true), None, Some("igpu-uhd630.rom"))
    );
    assert_eq!(
        h.to_string(),
        "0000:00:02,legacy-igd=1,romfile=igpu-uhd630.rom"
    );
    let h = HostPci::parse("host=0000:0a:00,pcie=on,rombar=off,x-vga=yes,device-id=0x3E92")
        .expect("hostpci");
    assert_eq!(
        h.to_string(),
        "0000:0a:00,device-id=0x3E92,pcie=1,rombar=0,x-vga=1"
    );
    let err = |r: Result<HostPci, vfiokit_vmconf::Error>| {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    };
    assert_eq!(
        err(HostPci::parse("00:02.0,00:1f.3")),
        "duplicate key in comma-separated list property: host"
    );
    assert_eq!(
        err(HostPci::parse("00:02.0,pcie=maybe")),
        "format error\npcie: type check ('boolean') failed - got 'maybe'"
    );
    assert_eq!(
        err(HostPci::parse("00:02.0,pcie=")),
        "missing key in comma-separated list property"
    );
    assert_eq!(
        err(HostPci::parse("mapping=1gpu")),
        "format error\nmapping: invalid configuration ID '1gpu'"
    );
    assert_eq!(
        err(HostPci::parse("00:02.0,driver=nvidia")),
        "format error\ndriver: value 'nvidia' does not have a value in the enumeration 'vfio, keep'"
    );

    let u = |s: &str| {
        UsbEntry::parse(s)
            .map(|u| (u.host, u.mapping, u.usb3))
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        u("host=062a:4101"),
        Ok((
            Some(UsbHost::Id {
                vendor: 0x062a,
                product: 0x4101
            }),
            None,
            None
        ))
    );
    assert_eq!(
        u("0x046D:0xC016,usb3=1"),
        Ok((
            Some(UsbHost::Id {
                vendor: 0x046d,
                product: 0xc016
            }),
            None,
            Some(true)
        ))
    );
    assert_eq!(
        u("host=1-1.2.3"),
        Ok((Some(UsbHost::Port("1-1.2.3".into())), None, None))
    );
    assert_eq!(u("SPICE"), Ok((Some(UsbHost::Spice), None, None)));
    assert_eq!(u("mapping=kbd"), Ok((None, Some("kbd".into()), None)));
    assert_eq!(
        u("host=62a:4101"),
        Err("format error\nhost: value does not match the regex pattern".into())
    );
    assert_eq!(
        UsbEntry::parse("host=062a:4101,usb3=1")
            .map(|u| u.to_string())
            .ok()
            .as_deref(),
        Some("host=062a:4101,usb3=1")
    );

    let m = |s: &str| {
        Machine::parse(s)
            .map(|m| (m.kind, m.version, m.pve, m.is_q35()))
            .map_err(|e| e.to_string())
    };
    assert_eq!(m("pc"), Ok((MachineKind::I440fx, None, None, false)));
    assert_eq!(
        m("pc-i440fx-9.2+pve1"),
        Ok((MachineKind::I440fx, Some((9, 2)), Some(1), false))
    );
    assert_eq!(
        m("pc-9.2.1.pxe"),
        Ok((MachineKind::I440fx, Some((9, 2)), None, false))
    );
    assert_eq!(
        m("type=q35,viommu=intel"),
        Ok((MachineKind::Q35, None, None, true))
    );
    assert_eq!(
        m("pc-q35-10.1"),
        Ok((MachineKind::Q35, Some((10, 1)), None, true))
    );
    assert_eq!(
        m("virt-9.0+pve1"),
        Ok((MachineKind::Virt, Some((9, 0)), Some(1), false))
    );
    assert_eq!(
        m("pc-q35"),
        Err("format error\ntype: value does not match the regex pattern".into())
    );
    assert_eq!(
        m("q35,aw-bits=70"),
        Err("format error\naw-bits: value must have a maximum value of 64".into())
    );
    assert_eq!(Machine::default_for_missing().raw_type, "pc");
    assert!(
        Machine::parse("pc-i440fx-7.0").is_ok_and(|m| !m.version_at_least(7, 1, Some((10, 1))))
    );
    assert!(Machine::parse("pc").is_ok_and(|m| m.version_at_least(7, 1, None)));
}

#[test]
fn mapping_files() {
    let text = "# a comment\nigpu\n\tmap id=8086:3e92,node=pve,path=0000:00:02.0\n\tdescription UHD 630\n\n\
                kbd\n\tmap node=pve,id=062a:4101\n";
    let mut f = MappingFile::parse(text);
    assert_eq!(f.render(), text);
    let s = f.sections();
    assert_eq!(s.len(), 2);
    assert_eq!(
        (s[0].id.as_str(), s[0].line, s[0].description.as_deref()),
        ("igpu", 2, Some("UHD 630"))
    );
    assert_eq!(
        s[0].maps,
        [(3, "id=8086:3e92,node=pve,path=0000:00:02.0".to_string())]
    );
    assert_eq!(s[1].maps[0].0, 7);

    // Replace: map first, then optional keys sorted; same again changes nothing.
    let item = PciMapItem::parse(
        "subsystem-id=103c:83e2,path=0000:00:02.0,node=pve1,iommugroup=0,id=8086:3e92",
    )
    .expect("item");
    assert_eq!(
        item.render_canonical(),
        "id=8086:3e92,node=pve1,path=0000:00:02.0,iommugroup=0,subsystem-id=103c:83e2"
    );
    let maps = [item.render_canonical()];
    assert!(f.set_section("igpu", &maps, Some("iGPU")));
    assert!(!f.set_section("igpu", &maps, Some("iGPU")));
    // Append: a blank line first (the last section had none), then Proxmox's layout.
    assert!(f.set_section("bt", &["id=8087:0aaa,node=pve1".to_string()], None));
    expect![[r#"
        # a comment
        igpu
        	map id=8086:3e92,node=pve1,path=0000:00:02.0,iommugroup=0,subsystem-id=103c:83e2
        	description iGPU

        kbd
        	map node=pve,id=062a:4101

        bt
        	map id=8087:0aaa,node=pve1

    "#]]
    .assert_eq(&f.render());
    assert_eq!(MappingFile::parse(&f.render()).sections().len(), 3);
    assert!(!f.set_section("1bad", &["id=8087:0aaa,node=pve1".to_string()], None));

    let mut empty = MappingFile::parse("");
    assert!(empty.set_section("x1", &["id=062a:4101,node=pve".to_string()], Some("mouse")));
    assert_eq!(
        empty.render(),
        "x1\n\tmap id=062a:4101,node=pve\n\tdescription mouse\n\n"
    );

    let u =
        UsbMapItem::parse("path=1-2,node=pve,id=062a:4101,description=mouse").expect("usb item");
    assert_eq!(
        u.render_canonical(),
        "id=062a:4101,node=pve,description=mouse,path=1-2"
    );
    assert_eq!(
        PciMapItem::parse("id=8086:3e92,node=pve,path=00:02.0")
            .err()
            .map(|e| e.to_string())
            .as_deref(),
        Some("format error\npath: value does not match the regex pattern")
    );
    assert_eq!(
        PciMapItem::parse("id=8086:3e92,path=0000:00:02.0")
            .err()
            .map(|e| e.to_string())
            .as_deref(),
        Some("format error\nnode: property is missing and it is not optional")
    );
}
