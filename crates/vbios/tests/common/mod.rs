//! Builders for test inputs: PE files, legacy option ROM images, sections, FFS files, volumes.
#![allow(dead_code)]

use vfiokit_vbios::Guid;

pub fn testdata(name: &str) -> Vec<u8> {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/vbios/");
    std::fs::read(format!("{p}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A PE32+ file: DOS header, `PE\0\0` at 0x40, COFF machine, optional header magic 0x20b,
/// subsystem; then `payload`.
pub fn pe(machine: u16, subsystem: u16, payload: &[u8]) -> Vec<u8> {
    let mut pe = vec![0u8; 0xA0];
    pe[..2].copy_from_slice(b"MZ");
    pe[0x3C] = 0x40;
    pe[0x40..0x44].copy_from_slice(b"PE\0\0");
    pe[0x44..0x46].copy_from_slice(&machine.to_le_bytes());
    pe[0x58..0x5A].copy_from_slice(&0x20Bu16.to_le_bytes());
    pe[0x9C..0x9E].copy_from_slice(&subsystem.to_le_bytes());
    pe.extend_from_slice(payload);
    pe
}

/// An Intel GOP driver look-alike: X64 boot-services driver carrying the UTF-16 name string.
pub fn gop_pe() -> Vec<u8> {
    let mut payload = vec![0xCCu8; 300];
    payload.extend(utf16("Intel(R) GOP Driver [9.0.1075]"));
    payload.extend([0, 0]);
    payload.extend((0..700u32).map(|i| (i * 7 % 251) as u8));
    pe(0x8664, 11, &payload)
}

/// A legacy x86 image of `blocks` × 512 bytes for `vendor:device`, class 030000, `$VBT` inside,
/// checksum in the last byte, last-image bit as given.
pub fn legacy(vendor: u16, device: u16, blocks: u8, last: bool) -> Vec<u8> {
    let mut r = vec![0u8; blocks as usize * 512];
    r[0] = 0x55;
    r[1] = 0xAA;
    r[2] = blocks;
    r[3] = 0xE9;
    r[0x18] = 0x40;
    let p = 0x40;
    r[p..p + 4].copy_from_slice(b"PCIR");
    r[p + 4..p + 6].copy_from_slice(&vendor.to_le_bytes());
    r[p + 6..p + 8].copy_from_slice(&device.to_le_bytes());
    r[p + 0x0A..p + 0x0C].copy_from_slice(&0x18u16.to_le_bytes());
    r[p + 0x0F] = 0x03; // class 030000
    r[p + 0x10..p + 0x12].copy_from_slice(&u16::from(blocks).to_le_bytes());
    r[p + 0x14] = 0;
    r[p + 0x15] = if last { 0x80 } else { 0 };
    r[0x100..0x112].copy_from_slice(b"$VBT SKYLAKE Intel");
    fix_checksum(&mut r);
    r
}

pub fn fix_checksum(r: &mut [u8]) {
    let n = r.len();
    r[n - 1] = 0;
    let s = r.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    r[n - 1] = s.wrapping_neg();
}

/// A section: 3-byte size, type, body.
pub fn section(kind: u8, body: &[u8]) -> Vec<u8> {
    let size = body.len() + 4;
    let mut s = (size as u32).to_le_bytes()[..3].to_vec();
    s.push(kind);
    s.extend_from_slice(body);
    s
}

/// Sections back to back, each 4-byte aligned.
pub fn sections(list: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in list {
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(s);
    }
    out
}

pub fn ui(name: &str) -> Vec<u8> {
    let mut b = utf16(name);
    b.extend([0, 0]);
    section(0x15, &b)
}

pub fn guided(guid: Guid, processing_required: bool, data: &[u8]) -> Vec<u8> {
    let mut body = guid.0.to_vec();
    body.extend_from_slice(&24u16.to_le_bytes());
    body.extend_from_slice(&u16::from(processing_required).to_le_bytes());
    body.extend_from_slice(data);
    section(0x02, &body)
}

pub fn compression(uncompressed: usize, kind: u8, data: &[u8]) -> Vec<u8> {
    let mut body = (uncompressed as u32).to_le_bytes().to_vec();
    body.push(kind);
    body.extend_from_slice(data);
    section(0x01, &body)
}

pub fn freeform_subtype(guid: Guid, data: &[u8]) -> Vec<u8> {
    let mut body = guid.0.to_vec();
    body.extend_from_slice(data);
    section(0x18, &body)
}

/// An FFS file with a valid header checksum, state "data valid" for erase polarity 1.
pub fn ffs_file(name: Guid, file_type: u8, body: &[u8], large: bool) -> Vec<u8> {
    let hlen = if large { 0x20 } else { 0x18 };
    let size = hlen + body.len();
    let mut h = vec![0u8; hlen];
    h[..16].copy_from_slice(&name.0);
    h[0x12] = file_type;
    if large {
        h[0x13] = 0x01;
        h[0x18..0x20].copy_from_slice(&(size as u64).to_le_bytes());
    } else {
        h[0x14..0x17].copy_from_slice(&(size as u32).to_le_bytes()[..3]);
    }
    let sum = h.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    h[0x10] = sum.wrapping_neg();
    h[0x11] = 0xAA;
    h[0x17] = !0x07; // HEADER_CONSTRUCTION | HEADER_VALID | DATA_VALID, inverted
    h.extend_from_slice(body);
    h
}

pub const FFS2: &str = "8C8CE578-8A3D-4F1C-9935-896185C32DD3";
pub const FFS3: &str = "5473C07A-3DCB-4DCA-BD6F-1E9689E7349A";

/// A firmware volume (erase polarity 1) holding `files`, then `free` bytes of free space.
pub fn volume(fs: &str, files: &[Vec<u8>], free: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for f in files {
        while body.len() % 8 != 0 {
            body.push(0xFF);
        }
        body.extend_from_slice(f);
    }
    while body.len() % 8 != 0 {
        body.push(0xFF);
    }
    body.extend(std::iter::repeat_n(0xFF, free));
    let len = 0x48 + body.len();
    let mut h = vec![0u8; 0x48];
    h[0x10..0x20].copy_from_slice(&fs.parse::<Guid>().unwrap().0);
    h[0x20..0x28].copy_from_slice(&(len as u64).to_le_bytes());
    h[0x28..0x2C].copy_from_slice(b"_FVH");
    h[0x2C..0x30].copy_from_slice(&0x0004_FEFFu32.to_le_bytes());
    h[0x30..0x32].copy_from_slice(&0x48u16.to_le_bytes());
    h[0x37] = 2;
    h[0x38..0x3C].copy_from_slice(&1u32.to_le_bytes());
    h[0x3C..0x40].copy_from_slice(&(len as u32).to_le_bytes());
    let sum = h.chunks(2).fold(0u16, |a, w| {
        a.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
    });
    h[0x32..0x34].copy_from_slice(&sum.wrapping_neg().to_le_bytes());
    h.extend(body);
    h
}

pub fn lzma(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let options = lzma_rs::compress::Options {
        unpacked_size: lzma_rs::compress::UnpackedSize::WriteToHeader(Some(data.len() as u64)),
    };
    lzma_rs::lzma_compress_with_options(&mut &data[..], &mut out, &options).unwrap();
    out
}

pub fn g(s: &str) -> Guid {
    s.parse().unwrap()
}

/// The test firmware: one FFS2 volume with an LZMA-compressed GOP driver (AMI GUID, UI name), a RAW
/// VBT file, an EFI-compressed legacy VBIOS (from `testdata/vbios/vbios_sections.efi.cmp`), a
/// Tiano-compressed copy, an LZMA+x86 driver, and a nested volume image holding a freeform file.
pub fn test_firmware() -> Vec<u8> {
    let gop = gop_pe();
    let gop_sections = sections(&[section(0x10, &gop), ui("IntelGopDriver")]);
    let gop_file = ffs_file(
        vfiokit_vbios::known::GOP_AMI,
        0x07,
        &guided(vfiokit_vbios::known::LZMA, true, &lzma(&gop_sections)),
        false,
    );
    let mut vbt = b"$VBT SKYLAKE        ".to_vec();
    vbt.extend((0..200u8).collect::<Vec<_>>());
    let vbt_file = ffs_file(vfiokit_vbios::known::VBT_RAW, 0x01, &vbt, false);
    let plain = testdata("vbios_sections.bin");
    let efi_vbios = ffs_file(
        g("A0327FE0-1FDA-4E5B-905D-B510C45A61D0"),
        0x02,
        &compression(plain.len(), 1, &testdata("vbios_sections.efi.cmp")),
        false,
    );
    let tiano_file = ffs_file(
        g("11111111-2222-3333-4444-555555555555"),
        0x02,
        &guided(
            vfiokit_vbios::known::TIANO,
            true,
            &testdata("vbios_sections.tiano.cmp"),
        ),
        false,
    );
    let mut x86 = sections(&[
        section(
            0x10,
            &pe(0x8664, 11, &[0xE8, 0, 0, 0, 0, 0x90, 0xE8, 0x10, 0, 0, 0]),
        ),
        ui("Bcj"),
    ]);
    let x86_plain = x86.clone();
    vfiokit_vbios::decompress::x86_encode(&mut x86);
    let bcj_file = ffs_file(
        g("22222222-3333-4444-5555-666666666666"),
        0x07,
        &guided(vfiokit_vbios::known::LZMA_X86, true, &lzma(&x86)),
        false,
    );
    let _ = x86_plain;
    let inner_file = ffs_file(
        g("33333333-4444-5555-6666-777777777777"),
        0x02,
        &sections(&[ui("Inner"), section(0x19, b"raw data")]),
        false,
    );
    let inner = volume(FFS2, &[inner_file], 16);
    let fv_image = ffs_file(
        g("44444444-5555-6666-7777-888888888888"),
        0x0B,
        &section(0x17, &inner),
        false,
    );
    volume(
        FFS2,
        &[
            gop_file, vbt_file, efi_vbios, tiano_file, bcj_file, fv_image,
        ],
        64,
    )
}
