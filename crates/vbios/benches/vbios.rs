//! Option ROM checks and firmware extraction: a multi-image ROM (legacy VBIOS + two EFI drivers,
//! as EfiRom builds one) parsed, judged for OVMF/SeaBIOS and checked as a `romfile`; the GOP,
//! VBT and VBIOS pulled out of a 32 MiB vendor firmware image. See docs/PERFORMANCE.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vfiokit_vbios::{BuildOptions, Input, Rom, build, check_romfile, extract_graphics};

#[path = "../tests/common/mod.rs"]
mod common;

/// A ROM as `vbios build` makes it: a 64 KiB legacy image, then two EFI drivers.
fn multi_image_rom() -> Vec<u8> {
    let mut gop_large = common::gop_pe();
    gop_large.extend((0..60_000u32).map(|i| (i * 13 % 251) as u8));
    build(
        &BuildOptions::new(0x8086, 0x3e92),
        &[
            Input::Legacy {
                name: "vbios.bin".into(),
                bytes: common::legacy(0x8086, 0x3e92, 128, true),
            },
            Input::Efi {
                name: "gop.efi".into(),
                bytes: gop_large,
            },
            Input::Efi {
                name: "other.efi".into(),
                bytes: common::gop_pe(),
            },
        ],
    )
    .expect("build ROM")
}

/// 32 MiB like a vendor BIOS update: an empty descriptor region, four volumes of incompressible
/// raw files (DXE code stand-ins), the volume holding the GOP, VBT and VBIOS, then free space.
fn firmware_32m() -> Vec<u8> {
    let mut image = vec![0xFFu8; 2 << 20];
    let mut seed = 0x1234_5678u32;
    for v in 0..4u32 {
        let files: Vec<Vec<u8>> = (0..90u32)
            .map(|i| {
                let body: Vec<u8> = (0..64 * 1024)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        (seed >> 16) as u8
                    })
                    .collect();
                let name = format!("{v:08X}-0000-4000-8000-{i:012X}");
                common::ffs_file(common::g(&name), 0x01, &body, false)
            })
            .collect();
        image.extend(common::volume(common::FFS2, &files, 4096));
    }
    image.extend(common::test_firmware());
    image.resize(32 << 20, 0xFF);
    image
}

fn rom(c: &mut Criterion) {
    let rom = multi_image_rom();
    let parsed = Rom::parse(&rom).expect("parse");
    assert_eq!(parsed.images.len(), 3);
    let mut group = c.benchmark_group("vbios");
    group.throughput(Throughput::Bytes(rom.len() as u64));
    group.bench_function("check_multi_image_rom", |b| {
        b.iter(|| {
            let parsed = Rom::parse(&rom).expect("parse");
            let verdict = parsed.verdict(Some((0x8086, 0x3e92)));
            (
                verdict.ovmf.loads(),
                check_romfile(&rom, 0x8086, 0x3e92).is_ok(),
            )
        })
    });
    let firmware = firmware_32m();
    let found = extract_graphics(&firmware).expect("extract");
    assert!(!found.gop.is_empty() && !found.vbt.is_empty() && !found.vbios.is_empty());
    group.throughput(Throughput::Bytes(firmware.len() as u64));
    group.sample_size(10);
    group.bench_function("extract_graphics_32mib_firmware", |b| {
        b.iter(|| extract_graphics(&firmware).expect("extract"))
    });
    group.finish();
}

criterion_group!(benches, rom);
criterion_main!(benches);
