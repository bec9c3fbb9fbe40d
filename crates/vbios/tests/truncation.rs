//! Every test ROM and firmware, cut at every offset: an error each time, never a panic. Random
//! bytes and flipped bits: never a panic.

mod common;
use common::*;
use proptest::prelude::*;
use vfiokit_vbios::{BuildOptions, Input, Rom, build, extract_graphics, rom_parser_lines, volumes};

fn test_roms() -> Vec<Vec<u8>> {
    let mut two = BuildOptions::new(0x8086, 0x3e92);
    two.devices.extend([0x3e91, 0x3e98]);
    vec![
        build(
            &BuildOptions::new(0x8086, 0x3e92),
            &[Input::Efi {
                name: "gop".into(),
                bytes: gop_pe(),
            }],
        )
        .unwrap(),
        build(
            &two,
            &[
                Input::Legacy {
                    name: "vbios".into(),
                    bytes: legacy(0x8086, 0x3e92, 2, true),
                },
                Input::Efi {
                    name: "a".into(),
                    bytes: pe(0x8664, 11, &[1; 40]),
                },
                Input::Efi {
                    name: "gop".into(),
                    bytes: gop_pe(),
                },
            ],
        )
        .unwrap(),
        legacy(0x8086, 0x3e92, 3, true),
    ]
}

#[test]
fn every_truncated_rom_is_an_error() {
    for (i, rom) in test_roms().iter().enumerate() {
        assert!(Rom::parse(rom).is_ok());
        for n in 0..rom.len() {
            assert!(
                Rom::parse(&rom[..n]).is_err(),
                "rom {i} cut at {n:#x} parsed"
            );
            let _ = rom_parser_lines(&rom[..n]);
        }
    }
}

#[test]
fn every_truncated_firmware_is_an_error() {
    let fw = test_firmware();
    assert!(volumes(&fw).is_ok());
    for n in 0..fw.len() {
        assert!(volumes(&fw[..n]).is_err(), "firmware cut at {n:#x} parsed");
        assert!(extract_graphics(&fw[..n]).is_err());
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let fw = test_firmware();
    for i in 0..fw.len() {
        let mut f = fw.clone();
        f[i] ^= 0x5A;
        if let Ok(vols) = volumes(&f) {
            let _ = vfiokit_vbios::graphics_in(&vols);
        }
    }
    for rom in test_roms() {
        for i in 0..rom.len().min(0x400) {
            let mut r = rom.clone();
            r[i] = r[i].wrapping_add(0x81);
            if let Ok(p) = Rom::parse(&r) {
                let _ = p.verdict(Some((0x8086, 0x3e92)));
            }
            let _ = rom_parser_lines(&r);
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..4096), fvh in 0usize..4000) {
        let _ = Rom::parse(&data);
        let _ = rom_parser_lines(&data);
        if fvh + 0x2C <= data.len() {
            data[fvh + 0x28..fvh + 0x2C].copy_from_slice(b"_FVH");
        }
        let _ = volumes(&data);
        let _ = vfiokit_vbios::decompress::efi(&data, vfiokit_vbios::decompress::Algorithm::Tiano, 1 << 16, "t");
        let _ = vfiokit_vbios::decompress::lzma(&data, 1 << 16, "t");
    }

    #[test]
    fn arbitrary_roms_with_signature_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0x20..2048), p in 0u16..0x100) {
        data[0] = 0x55;
        data[1] = 0xAA;
        data[0x18..0x1A].copy_from_slice(&p.to_le_bytes());
        let pp = p as usize;
        if pp + 4 <= data.len() {
            data[pp..pp + 4].copy_from_slice(b"PCIR");
        }
        if let Ok(rom) = Rom::parse(&data) {
            let _ = rom.verdict(Some((0x8086, 0x3e92)));
        }
    }
}
