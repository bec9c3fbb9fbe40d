//! From firmware to files: the flat listing, one file's data, the graphics' file names, and a
//! verified ROM around the GOP.

mod common;
use common::*;
use vfiokit_vbios::{
    Error, GOP_ALONE, Graphics, Input, extract_graphics, file_body, gop_rom, known, listing,
    volumes,
};

#[test]
fn the_listing_is_every_file_flat_with_every_error() {
    let fw = test_firmware();
    let vols = volumes(&fw).unwrap();
    let l = listing(&vols);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    assert_eq!(l.files.len(), vols[0].all_files().len());
    let gop = &l.files[0];
    assert_eq!(gop.guid, known::GOP_AMI);
    assert_eq!(gop.type_name, "DXE driver");
    assert_eq!(gop.name.as_deref(), Some("IntelGopDriver"));
    assert_eq!(gop.pe32_size, Some(gop_pe().len()));
    // A file nested in a volume inside a file is listed too.
    assert!(l.files.iter().any(|f| f.name.as_deref() == Some("Inner")));

    // A file running past its volume: the listing carries the error.
    let file = ffs_file(
        g("55555555-6666-7777-8888-999999999999"),
        0x01,
        &[7; 64],
        false,
    );
    let mut fv = volume(FFS2, &[file], 0);
    let at = 0x48 + 0x14;
    fv[at..at + 3].copy_from_slice(&0x1000u32.to_le_bytes()[..3]);
    let vols = volumes(&fv).unwrap();
    assert_eq!(listing(&vols).errors.len(), 1, "{:?}", listing(&vols));
}

#[test]
fn a_file_body_is_its_pe32_else_raw_data_else_first_section() {
    let fw = test_firmware();
    let vols = volumes(&fw).unwrap();
    let b = file_body(&vols, known::GOP_AMI).unwrap();
    assert_eq!((b.what, b.bytes), ("PE32 body", gop_pe()));
    let b = file_body(&vols, known::VBT_RAW).unwrap();
    assert_eq!(b.what, "raw data");
    assert!(b.bytes.starts_with(b"$VBT SKYLAKE"));
    let inner = g("33333333-4444-5555-6666-777777777777");
    assert_eq!(file_body(&vols, inner).unwrap().what, "first section");
    let none = g("00000000-0000-0000-0000-000000000001");
    assert_eq!(
        file_body(&vols, none),
        Err(Error::Missing(
            "no file 00000000-0000-0000-0000-000000000001 in the firmware".into()
        ))
    );
}

#[test]
fn graphics_files_are_named_by_kind_best_only() {
    let g = extract_graphics(&test_firmware()).unwrap();
    let files: Vec<(&str, usize)> = g.files().iter().map(|(n, p)| (*n, p.size)).collect();
    assert_eq!(
        files,
        [
            ("gop.efi", g.gop[0].size),
            ("vbt.bin", g.vbt[0].size),
            ("vbios.rom", 1024)
        ]
    );
    let only_vbt = Graphics {
        vbt: g.vbt.clone(),
        ..Graphics::default()
    };
    assert_eq!(only_vbt.files().len(), 1);
    assert_eq!(only_vbt.files()[0].0, "vbt.bin");
    assert!(Graphics::default().files().is_empty());
}

#[test]
fn a_gop_rom_is_built_after_the_drivers_and_verified() {
    let g = extract_graphics(&test_firmware()).unwrap();
    let gop = &g.gop[0];
    let r = gop_rom(gop, 0x8086, 0x3e92, Vec::new()).unwrap();
    assert!(r.gop_alone, "{GOP_ALONE}");
    assert_eq!(r.rom.images.len(), 1);
    assert!(r.verdict.ovmf.loads());
    assert_eq!(r.rom.size, r.bytes.len());

    let driver = Input::Efi {
        name: "IgdAssignmentDxe.efi".into(),
        bytes: pe(0x8664, 11, &[0; 100]),
    };
    let r = gop_rom(gop, 0x8086, 0x3e92, vec![driver]).unwrap();
    assert!(!r.gop_alone);
    assert_eq!(r.rom.images.len(), 2);
    assert_eq!(r.rom.images[1].label.as_deref(), gop.label.as_deref());
    // Only Intel's iGPU needs the drivers.
    assert!(!gop_rom(gop, 0x10de, 0x1b80, Vec::new()).unwrap().gop_alone);

    // An IA32 GOP builds, but OVMF (X64) would not load it.
    let mut ia32 = gop.clone();
    ia32.bytes = pe(0x014c, 11, &[0; 100]);
    let e = gop_rom(&ia32, 0x8086, 0x3e92, Vec::new()).unwrap_err();
    assert!(matches!(e, Error::Unloadable(_)), "{e}");
    assert!(
        e.to_string().starts_with("the built ROM would not load: "),
        "{e}"
    );
    // A driver that is no PE is a build error.
    let junk = Input::Efi {
        name: "junk.efi".into(),
        bytes: b"MZ".to_vec(),
    };
    let e = gop_rom(gop, 0x8086, 0x3e92, vec![junk]).unwrap_err();
    assert!(matches!(e, Error::Input(_)), "{e}");
}
