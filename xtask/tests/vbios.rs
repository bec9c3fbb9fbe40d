//! `vbios check|build|extract` end to end, on inputs built here.

mod common;
use common::vfiokit;

use std::fs;
use std::path::Path;

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A PE32+ X64 boot-services driver carrying the Intel GOP name string.
fn gop_pe() -> Vec<u8> {
    let mut pe = vec![0u8; 0xA0];
    pe[..2].copy_from_slice(b"MZ");
    pe[0x3C] = 0x40;
    pe[0x40..0x44].copy_from_slice(b"PE\0\0");
    pe[0x44..0x46].copy_from_slice(&0x8664u16.to_le_bytes());
    pe[0x58..0x5A].copy_from_slice(&0x20Bu16.to_le_bytes());
    pe[0x9C] = 11;
    pe.extend(utf16("Intel(R) GOP Driver [9.0.1075]"));
    pe.extend([0u8; 600]);
    pe
}

fn section(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut s = ((body.len() + 4) as u32).to_le_bytes()[..3].to_vec();
    s.push(kind);
    s.extend_from_slice(body);
    while !s.len().is_multiple_of(4) {
        s.push(0);
    }
    s
}

/// One FFS2 volume with the GOP driver file (PE32 + UI sections).
fn firmware() -> Vec<u8> {
    let mut name = utf16("IntelGopDriver");
    name.extend([0, 0]);
    let body = [section(0x10, &gop_pe()), section(0x15, &name)].concat();
    // 5BBA83E6-F027-4CA7-BFD0-16358CC9E123 (IntelGopDriver, AMI), as stored.
    let guid = [
        0xE6, 0x83, 0xBA, 0x5B, 0x27, 0xF0, 0xA7, 0x4C, 0xBF, 0xD0, 0x16, 0x35, 0x8C, 0xC9, 0xE1,
        0x23,
    ];
    let mut f = vec![0u8; 0x18];
    f[..16].copy_from_slice(&guid);
    f[0x12] = 0x07;
    f[0x14..0x17].copy_from_slice(&((0x18 + body.len()) as u32).to_le_bytes()[..3]);
    let sum = f.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    f[0x10] = sum.wrapping_neg();
    f[0x11] = 0xAA;
    f[0x17] = 0xF8;
    f.extend(body);
    let len = 0x48 + f.len().next_multiple_of(8);
    let mut h = vec![0u8; 0x48];
    // FFS2 8C8CE578-8A3D-4F1C-9935-896185C32DD3, as stored.
    h[0x10..0x20].copy_from_slice(&[
        0x78, 0xE5, 0x8C, 0x8C, 0x3D, 0x8A, 0x1C, 0x4F, 0x99, 0x35, 0x89, 0x61, 0x85, 0xC3, 0x2D,
        0xD3,
    ]);
    h[0x20..0x28].copy_from_slice(&(len as u64).to_le_bytes());
    h[0x28..0x2C].copy_from_slice(b"_FVH");
    h[0x2C..0x30].copy_from_slice(&0x800u32.to_le_bytes());
    h[0x30] = 0x48;
    h[0x37] = 2;
    let sum = h.chunks(2).fold(0u16, |a, w| {
        a.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
    });
    h[0x32..0x34].copy_from_slice(&sum.wrapping_neg().to_le_bytes());
    h.extend(f);
    h.resize(len, 0xFF);
    let mut wrapped = b"vendor wrapper".repeat(10);
    wrapped.extend(h);
    wrapped
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn build_then_check_reports_one_loadable_efi_image() {
    let dir = tempfile::tempdir().unwrap();
    let efi = dir.path().join("gop.efi");
    let rom = dir.path().join("out.rom");
    std::fs::write(&efi, gop_pe()).unwrap();
    let (code, out, err) = vfiokit(&[
        "vbios",
        "build",
        "--vendor",
        "8086",
        "--device",
        "0x3e92",
        "-o",
        s(&rom),
        s(&efi),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = vfiokit(&["vbios", "check", s(&rom), "--device", "8086:3e92"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(", 1 image\n"), "{out}");
    assert!(out.contains("EFI: X64 Boot driver, compression 0"), "{out}");
    assert!(
        out.contains("content: Intel(R) GOP Driver [9.0.1075]"),
        "{out}"
    );
    assert!(out.contains("OVMF for 8086:3e92: loads image 0"), "{out}");
    // SeaBIOS decides only when asked.
    let (code, _, _) = vfiokit(&[
        "vbios",
        "check",
        s(&rom),
        "--device",
        "8086:3e92",
        "--firmware",
        "seabios",
    ]);
    assert_eq!(code, 3);
    // JSON and rom-parser's lines.
    let (code, out, _) = vfiokit(&["vbios", "check", s(&rom), "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rom"]["images"][0]["pcir"]["device"], "3e92");
    assert_eq!(v["verdict"]["ovmf"]["verdict"], "loads");
    let (_, out, _) = vfiokit(&["vbios", "check", s(&rom), "--rom-parser"]);
    assert!(out.starts_with(
        "Valid ROM signature found @0h, PCIR offset 1ch\n\tPCIR: type 3 (EFI), vendor: 8086, device: 3e92, class: 000000\n"
    ), "{out}");
}

#[test]
fn check_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.rom");
    std::fs::write(&bad, [0xFFu8; 64]).unwrap();
    let (code, out, _) = vfiokit(&["vbios", "check", s(&bad), "--device", "8086:3e92"]);
    assert_eq!(code, 3);
    assert!(
        out.contains("expecting 0xaa55, got 0xffff") && out.contains("no ROM BAR"),
        "{out}"
    );
    let (code, _, err) = vfiokit(&["vbios", "check", s(&dir.path().join("missing.rom"))]);
    assert_eq!(code, 1, "{err}");
    // A malformed VID:DID is a usage error, as every flag value clap rejects.
    let (code, _, err) = vfiokit(&["vbios", "check", s(&bad), "--device", "8086"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("invalid PCI id") || err.contains("8086"),
        "{err}"
    );
    let (code, _, _) = vfiokit(&["vbios", "check"]);
    assert_eq!(code, 2);
}

#[test]
fn extract_lists_writes_and_goes_straight_to_a_rom() {
    let dir = tempfile::tempdir().unwrap();
    let fw = dir.path().join("Q21_023000.bin");
    std::fs::write(&fw, firmware()).unwrap();
    let (code, out, err) = vfiokit(&["vbios", "extract", s(&fw), "--list"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("volume offset 0x8c: 0x"), "{out}");
    assert!(
        out.contains("5BBA83E6-F027-4CA7-BFD0-16358CC9E123 DXE driver       IntelGopDriver"),
        "{out}"
    );
    assert!(out.contains("PE32 820 bytes"), "{out}");

    let one = dir.path().join("one.efi");
    let (code, out, err) = vfiokit(&[
        "vbios",
        "extract",
        s(&fw),
        "--guid",
        "5bba83e6-f027-4ca7-bfd0-16358cc9e123",
        "-o",
        s(&one),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read(&one).unwrap(), gop_pe());

    let parts = dir.path().join("parts");
    let (code, out, err) = vfiokit(&["vbios", "extract", s(&fw), "-o", s(&parts)]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read(parts.join("gop.efi")).unwrap(), gop_pe());
    assert!(parts.join("report.json").exists());
    assert!(out.contains("VBT: not found"), "{out}");

    let rom = dir.path().join("igd.rom");
    let (code, out, err) = vfiokit(&[
        "vbios",
        "extract",
        s(&fw),
        "--device",
        "8086:3e92",
        "--rom",
        s(&rom),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("needs IgdAssignmentDxe"), "{out}");
    let (code, out, err) = vfiokit(&["vbios", "check", s(&rom), "--device", "8086:3e92"]);
    assert_eq!(code, 0, "{out}{err}");

    // Truncated firmware: exit 3 with the offset.
    let cut = dir.path().join("cut.bin");
    let bytes = firmware();
    std::fs::write(&cut, &bytes[..bytes.len() - 8]).unwrap();
    let (code, out, _) = vfiokit(&["vbios", "extract", s(&cut), "--list"]);
    assert_eq!(code, 3);
    assert!(
        out.contains("offset 0x8c: firmware volume (FvLength"),
        "{out}"
    );
}

/// setup-vm, verify and vm lint check a VM's romfile with the vbios crate.
#[test]
fn romfiles_are_checked_where_vms_use_them() {
    let (dir, root) = vfiokit_fakesys::copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let kvm = dir.path().join("usr/share/kvm");
    fs::create_dir_all(&kvm).unwrap();
    // A ROM with the GOP for 8086:3e92, built by vbios build: accepted for VM 100 (OVMF).
    let pe = dir.path().join("gop.efi");
    fs::write(&pe, gop_pe()).unwrap();
    let good = kvm.join("igd.rom");
    let (code, _, err) = vfiokit(&[
        "vbios",
        "build",
        "--vendor",
        "8086",
        "--device",
        "3e92",
        "-o",
        s(&good),
        s(&pe),
    ]);
    assert_eq!(code, 0, "{err}");
    let r = s(root.root());
    let (code, out, err) = vfiokit(&[
        "setup-vm",
        "--root",
        r,
        "--vmid",
        "100",
        "--igd",
        "00:02.0",
        "--romfile",
        "igd.rom",
    ]);
    assert_eq!(code, 0, "{err}{out}");
    // A ROM OVMF cannot load (here: no image at all) is refused before the VM ever starts.
    // (A ROM built for another device id still loads: OVMF ignores the PCIR ids.)
    fs::write(kvm.join("junk.rom"), [0xffu8; 1024]).unwrap();
    let (code, _, err) = vfiokit(&[
        "setup-vm",
        "--root",
        r,
        "--vmid",
        "100",
        "--igd",
        "00:02.0",
        "--romfile",
        "junk.rom",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("OVMF would not load") && err.contains("junk.rom"),
        "{err}"
    );
    // verify and vm lint --root flag a VM config naming the junk ROM.
    let conf = dir.path().join("etc/pve/qemu-server/100.conf");
    let text = fs::read_to_string(&conf).unwrap().replace(
        "machine:",
        "hostpci0: 0000:00:02.0,legacy-igd=1,romfile=junk.rom\nmachine:",
    );
    fs::write(&conf, text).unwrap();
    let (code, out, _) = vfiokit(&["verify", "--root", r]);
    assert_eq!(code, 3);
    assert!(
        out.contains("romfile-unloadable") && out.contains("junk.rom"),
        "{out}"
    );
    let (code, out, _) = vfiokit(&["vm", "lint", "--root", r, s(&conf)]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("OVMF would not load romfile junk.rom"),
        "{out}"
    );
    // inspect says the iGPU has no ROM BAR of its own.
    let (_, out, _) = vfiokit(&["inspect", "--root", r, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let igpu = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == "0000:00:02.0")
        .unwrap();
    assert_eq!(igpu["rom_bar"], false);
}
