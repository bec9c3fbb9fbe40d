//! Building ROMs as EfiRom does, parsing and judging them.

mod common;
use common::{gop_pe, legacy, pe};
use vfiokit_vbios::{
    BuildOptions, Error, Header, Input, Load, Rom, build, check_romfile, rom_parser_lines,
};

fn efi(bytes: Vec<u8>) -> Input {
    Input::Efi {
        name: "drv.efi".into(),
        bytes,
    }
}

fn hex(b: &[u8]) -> String {
    b.chunks(2)
        .map(|c| c.iter().map(|x| format!("{x:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn efi_image_layout_is_efiroms() {
    // gangqizai's gen12_igd.rom: a 17792-byte X64 boot-services PE, EfiRom -f 0x8086 -i 0xa780.
    let pe = pe(0x8664, 11, &vec![0x11; 17792 - 0xA0]);
    let rom = build(&BuildOptions::new(0x8086, 0xa780), &[efi(pe.clone())]).unwrap();
    assert_eq!(rom.len(), 17920);
    assert_eq!(
        hex(&rom[..0x3A]),
        "55aa 2300 f10e 0000 0b00 6486 0000 0000 0000 0000 0000 8000 1c00 0000 5043 4952 \
         8680 80a7 0000 1c00 0300 0000 2300 0000 0380 0000 0000 0000 ffff"
    );
    assert!(rom[0x38..0x80].iter().all(|&b| b == 0xFF)); // 72 bytes of padding before the PE
    assert_eq!(&rom[0x80..], &pe[..]);
}

#[test]
fn device_list_class_revision_and_pci23() {
    let pe = pe(0x8664, 11, &[0; 100]);
    let mut o = BuildOptions::new(0x8086, 0x3e92);
    o.devices.push(0x3e91);
    o.class_code = 0x030000;
    o.code_revision = 0x0102;
    let rom = build(&o, &[efi(pe.clone())]).unwrap();
    // Header 0x1C + PCIR 0x1C + 3 ids (with the 0) = 0x3E.
    assert_eq!(hex(&rom[0x20..0x28]), "8680 923e 1c00 1c00");
    assert_eq!(hex(&rom[0x38..0x3E]), "923e 913e 0000");
    assert_eq!(&rom[0x29..0x2C], &[0, 0, 3]);
    assert_eq!(hex(&rom[0x2E..0x30]), "0201");
    let parsed = Rom::parse(&rom).unwrap();
    assert_eq!(parsed.images[0].pcir.device_list, [0x3e92, 0x3e91]);
    assert!(parsed.images[0].matches(0x8086, 0x3e91));

    let mut o23 = BuildOptions::new(0x8086, 0x3e92);
    o23.pci23 = true;
    let rom = build(&o23, &[efi(pe.clone())]).unwrap();
    assert_eq!(
        u16::from_le_bytes([rom[0x16], rom[0x17]]) as usize,
        512 - pe.len()
    );
    assert_eq!(hex(&rom[0x24..0x28]), "0000 1800"); // no list, length 0x18
    assert_eq!(rom[0x28], 0); // revision 0
    assert!(Rom::parse(&rom).unwrap().verdict(None).ovmf.loads());

    o23.devices.push(1);
    assert_eq!(
        build(&o23, &[efi(pe.clone())]).unwrap_err(),
        Error::Input("more than one device id needs PCI 3.0 data structures (not --pci23)".into())
    );
    assert!(build(&BuildOptions::new(0x8086, 0), &[efi(pe)]).is_err());
}

#[test]
fn built_gop_rom_loads_in_ovmf_and_is_labelled() {
    let rom = build(&BuildOptions::new(0x8086, 0x3e92), &[efi(gop_pe())]).unwrap();
    let parsed = Rom::parse(&rom).unwrap();
    let img = &parsed.images[0];
    assert_eq!(img.label.as_deref(), Some("Intel(R) GOP Driver [9.0.1075]"));
    assert!(matches!(
        img.header,
        Header::Efi {
            machine: 0x8664,
            subsystem: 11,
            compression: 0,
            ..
        }
    ));
    let v = parsed.verdict(Some((0x8086, 0x3e92)));
    assert_eq!(v.ovmf, Load::Loads { images: vec![0] });
    assert!(v.notes.iter().any(|n| n.contains("class code 000000")));
    assert!(check_romfile(&rom, 0x8086, 0x3e92).is_ok());
    // OVMF ignores the ids: another device loads the same ROM, with a note.
    let other = parsed.verdict(Some((0x8086, 0xa780)));
    assert!(other.ovmf.loads());
    assert!(
        other
            .notes
            .iter()
            .any(|n| n.contains("differ from 8086:a780"))
    );
}

#[test]
fn legacy_plus_efi_rom_for_both_firmwares() {
    let mut vb = legacy(0x8086, 0x3e92, 2, true);
    vb[0x200] = 0x77; // spoil the checksum: build fixes it into the last byte
    let rom = build(
        &BuildOptions::new(0x8086, 0x3e92),
        &[
            Input::Legacy {
                name: "vbios.rom".into(),
                bytes: vb,
            },
            efi(gop_pe()),
        ],
    )
    .unwrap();
    let parsed = Rom::parse(&rom).unwrap();
    assert_eq!(parsed.images.len(), 2);
    assert_eq!(parsed.images[0].pcir.indicator, 0);
    assert!(parsed.images[1].pcir.is_last());
    assert!(matches!(
        parsed.images[0].header,
        Header::Legacy {
            checksum: 0,
            init_size: 1024
        }
    ));
    assert_eq!(
        parsed.images[0].label.as_deref(),
        Some("Intel legacy VBIOS (with VBT)")
    );
    let v = parsed.verdict(Some((0x8086, 0x3e92)));
    assert_eq!(v.ovmf, Load::Loads { images: vec![1] });
    assert_eq!(v.seabios, Load::Loads { images: vec![0] });
    let w = parsed.verdict(Some((0x8086, 0x3e91)));
    assert!(matches!(w.seabios, Load::Not { ref reason } if reason.contains("8086:3e91")));

    let (lines, code) = rom_parser_lines(&rom);
    assert_eq!(code, 0);
    assert_eq!(
        lines.join("\n"),
        "Valid ROM signature found @0h, PCIR offset 40h\n\
         \tPCIR: type 0 (x86 PC-AT), vendor: 8086, device: 3e92, class: 030000\n\
         \tPCIR: revision 0, vendor revision: 0\n\
         Valid ROM signature found @400h, PCIR offset 1ch\n\
         \tPCIR: type 3 (EFI), vendor: 8086, device: 3e92, class: 000000\n\
         \tPCIR: revision 3, vendor revision: 0\n\
         \t\tEFI: Signature Valid, Subsystem: Boot, Machine: X64\n\
         \tLast image"
    );
}

#[test]
fn bad_checksum_fails_seabios_only() {
    let mut vb = legacy(0x8086, 0x3e92, 2, true);
    vb[0x300] ^= 1;
    let v = Rom::parse(&vb).unwrap().verdict(Some((0x8086, 0x3e92)));
    match v.seabios {
        Load::Not { reason } => assert!(
            reason.contains("checksum of the first 0x400 bytes is 0x01"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(!v.ovmf.loads());
    assert!(
        check_romfile(&vb, 0x8086, 0x3e92)
            .unwrap_err()
            .contains("OVMF loads only EFI images")
    );
}

#[test]
fn efi_problems_are_named() {
    let cases: [(Vec<u8>, &str); 4] = [
        (pe(0x014C, 11, &[0; 64]), "machine IA-32 (0x014c)"),
        (pe(0x8664, 10, &[0; 64]), "subsystem Application (0xa)"),
        (pe(0xAA64, 11, &[0; 64]), "machine ARM 64-bit"),
        (pe(0x8664, 12, &[0; 64]), ""),
    ];
    for (pe, want) in cases {
        let rom = build(&BuildOptions::new(0x8086, 0x3e92), &[efi(pe)]).unwrap();
        let r = check_romfile(&rom, 0x8086, 0x3e92);
        if want.is_empty() {
            assert!(r.is_ok(), "{r:?}");
        } else {
            assert!(r.unwrap_err().contains(want), "{want}");
        }
    }
    // Header and PE disagree.
    let mut rom = build(&BuildOptions::new(0x8086, 0x3e92), &[efi(gop_pe())]).unwrap();
    rom[0x0A..0x0C].copy_from_slice(&0x014Cu16.to_le_bytes());
    let err = check_romfile(&rom, 0x8086, 0x3e92).unwrap_err();
    assert!(
        err.contains("PE machine 0x8664 disagrees with the ROM header's 0x014c"),
        "{err}"
    );
    // No PE at the PE offset.
    let mut rom = build(&BuildOptions::new(0x8086, 0x3e92), &[efi(gop_pe())]).unwrap();
    let off = u16::from_le_bytes([rom[0x16], rom[0x17]]) as usize;
    rom[off] = b'X';
    assert!(
        check_romfile(&rom, 0x8086, 0x3e92)
            .unwrap_err()
            .contains("no MZ")
    );
    // Reserved compression type, bad EFI signature.
    let mut rom = build(&BuildOptions::new(0x8086, 0x3e92), &[efi(gop_pe())]).unwrap();
    rom[0x0C] = 2;
    rom[0x04] = 0;
    let err = check_romfile(&rom, 0x8086, 0x3e92).unwrap_err();
    assert!(
        err.contains("EFI signature 0xe00") && err.contains("compression type 2"),
        "{err}"
    );
}

#[test]
fn compressed_efi_images_are_checked_after_decompression() {
    // A compressed image whose payload is an EFI stream of a non-PE: the PE check says so.
    let mut rom = build(&BuildOptions::new(0x8086, 0x3e92), &[efi(gop_pe())]).unwrap();
    let stream = common::testdata("text.efi.cmp");
    let off = 0x38;
    rom.truncate(off);
    rom.extend_from_slice(&stream);
    rom.resize(rom.len().div_ceil(512) * 512, 0xFF);
    let blocks = (rom.len() / 512) as u16;
    rom[2..4].copy_from_slice(&blocks.to_le_bytes());
    rom[0x2C..0x2E].copy_from_slice(&blocks.to_le_bytes());
    rom[0x0C] = 1;
    rom[0x16..0x18].copy_from_slice(&(off as u16).to_le_bytes());
    let err = check_romfile(&rom, 0x8086, 0x3e92).unwrap_err();
    assert!(err.contains("after EFI decompression: no MZ"), "{err}");
}

#[test]
fn structural_faults_are_errors_naming_the_offset() {
    let one = build(&BuildOptions::new(0x8086, 0x3e92), &[efi(gop_pe())]).unwrap();
    let err = |r: &[u8]| Rom::parse(r).unwrap_err().to_string();

    assert_eq!(
        err(&[0xFF, 0xFF, 0, 0]),
        "offset 0x0: invalid PCI ROM header signature: expecting 0xaa55, got 0xffff"
    );
    let mut r = one.clone();
    r[0x2C] = 0;
    r[0x2D] = 0;
    assert_eq!(
        err(&r),
        "offset 0x2c: image 0: image length 0; walking by it would loop on this image"
    );
    let mut r = one.clone();
    r[0x2C] = 9;
    assert!(
        err(&r).starts_with("offset 0x0: image 0 (9 × 512 bytes by its PCIR) needs 0x1200 bytes"),
        "{}",
        err(&r)
    );
    let mut r = one.clone();
    r[0x1C] = b'X';
    assert_eq!(
        err(&r),
        "offset 0x1c: image 0: invalid PCIR signature \"XCIR\""
    );
    let mut r = one.clone();
    r[0x18..0x1A].copy_from_slice(&0x1F0u16.to_le_bytes());
    r[0x1F0..0x1F4].copy_from_slice(b"PCIR");
    r[0x1F0 + 0x10] = 1;
    r[0x1F0 + 0x11] = 0;
    assert!(
        err(&r).contains("runs past the image end (0x200); it would overlap the next image"),
        "{}",
        err(&r)
    );
    let mut r = one.clone();
    r[0x18] = 0;
    r[0x19] = 0x10;
    assert!(err(&r).contains("PCIR needs 0x4 bytes"), "{}", err(&r));
    // A device list without a terminator inside the image.
    let mut r = one.clone();
    let n = r.len();
    r[0x24..0x26].copy_from_slice(&((n - 4 - 0x1C) as u16).to_le_bytes());
    r[n - 4..].copy_from_slice(&[1, 2, 3, 4]);
    assert!(
        err(&r).contains("device list has no 0 terminator"),
        "{}",
        err(&r)
    );
}

#[test]
fn walk_stops_without_last_bit_and_notes_it() {
    let mut o = BuildOptions::new(0x8086, 0x3e92);
    o.no_last = true;
    let mut rom = build(&o, &[efi(gop_pe())]).unwrap();
    let n = rom.len();
    // Alone, such a ROM is cut short (EfiRom -n makes images to concatenate).
    assert_eq!(
        Rom::parse(&rom).unwrap_err().to_string(),
        format!(
            "offset {n:#x}: image 1 (image 0 has no last-image bit) needs 0x200 bytes but only 0x0 are left"
        )
    );
    rom.resize(n + 4096, 0xFF);
    let p = Rom::parse(&rom).unwrap();
    assert!(
        p.notes[0].contains("holds no 55 AA signature"),
        "{:?}",
        p.notes
    );
    assert!(p.verdict(None).ovmf.loads());
}

#[test]
fn legacy_build_matches_efirom() {
    // EfiRom -b: image length patched, indicator set, last byte = checksum, 0xFF padding.
    let mut vb = legacy(0x8086, 0x3e92, 2, false);
    vb.truncate(1000);
    vb[2] = 2;
    let rom = build(
        &BuildOptions::new(0x8086, 0x3e92),
        &[Input::Legacy {
            name: "v".into(),
            bytes: vb.clone(),
        }],
    )
    .unwrap();
    assert_eq!(rom.len(), 1024);
    assert_eq!(
        &rom[..999],
        &{
            let mut x = vb.clone();
            x[0x40 + 0x15] = 0x80;
            x
        }[..999]
    );
    assert_eq!(rom[..1000].iter().fold(0u8, |a, &b| a.wrapping_add(b)), 0);
    assert!(rom[1000..].iter().all(|&b| b == 0xFF));
    assert!(
        build(
            &BuildOptions::new(0x8086, 1),
            &[Input::Legacy {
                name: "x".into(),
                bytes: vec![0; 600]
            }]
        )
        .unwrap_err()
        .to_string()
        .contains("input 0 (x): no 55 AA")
    );
}

#[test]
fn explain_linux_message() {
    let s = vfiokit_vbios::explain_rom_signature(0xffff, true);
    assert!(s.contains("0xffff") && s.contains("0xC0000") && s.contains("romfile="));
}
