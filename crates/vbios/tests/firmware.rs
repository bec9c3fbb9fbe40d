//! Firmware volumes assembled here: files, sections, compression, nesting, extraction.

mod common;
use common::*;
use vfiokit_vbios::{
    BuildOptions, Error, FileState, Input, Rom, build, check_romfile, extract_graphics,
    file_type_name, find_file, known, volumes,
};

#[test]
fn lists_files_with_guids_types_names_and_pe_sizes() {
    let fw = test_firmware();
    let vols = volumes(&fw).unwrap();
    assert_eq!(vols.len(), 1);
    let v = &vols[0];
    assert!(v.errors().is_empty(), "{:?}", v.errors());
    assert!(v.erase_polarity);
    let rows: Vec<String> = v
        .all_files()
        .iter()
        .map(|f| {
            format!(
                "{} {} {:?} {:?}",
                f.name,
                file_type_name(f.file_type),
                f.ui_name(),
                f.pe32().map(<[u8]>::len)
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "5BBA83E6-F027-4CA7-BFD0-16358CC9E123 DXE driver Some(\"IntelGopDriver\") Some(1222)",
            "878AC2CC-5343-46F2-B563-51F89DAF56BA Raw None None",
            "A0327FE0-1FDA-4E5B-905D-B510C45A61D0 Freeform Some(\"IntelVbios\") None",
            "11111111-2222-3333-4444-555555555555 Freeform Some(\"IntelVbios\") None",
            "22222222-3333-4444-5555-666666666666 DXE driver Some(\"Bcj\") Some(171)",
            "44444444-5555-6666-7777-888888888888 Volume image None None",
            "33333333-4444-5555-6666-777777777777 Freeform Some(\"Inner\") None",
        ]
    );
    assert!(
        v.files
            .iter()
            .all(|f| f.header_checksum_ok && f.state == FileState::Valid)
    );
    // The LZMA+x86 driver came back with its call targets restored.
    let bcj = find_file(&vols, g("22222222-3333-4444-5555-666666666666"))
        .unwrap()
        .pe32()
        .unwrap();
    assert_eq!(&bcj[0xA0..], &[0xE8, 0, 0, 0, 0, 0x90, 0xE8, 0x10, 0, 0, 0]);
}

#[test]
fn extracts_gop_vbt_and_vbios_by_guid_and_content() {
    let g = extract_graphics(&test_firmware()).unwrap();
    assert_eq!(g.gop.len(), 1);
    assert_eq!(g.gop[0].bytes, gop_pe());
    assert_eq!(
        g.gop[0].label.as_deref(),
        Some("Intel(R) GOP Driver [9.0.1075]")
    );
    assert_eq!(
        g.gop[0].identified_by,
        [
            "file GUID 5BBA83E6-F027-4CA7-BFD0-16358CC9E123 (IntelGopDriver (AMI))",
            "UI name \"IntelGopDriver\"",
            "content: Intel(R) GOP Driver [9.0.1075]"
        ]
    );
    assert_eq!(g.vbt.len(), 1);
    assert_eq!(g.vbt[0].label.as_deref(), Some("$VBT SKYLAKE"));
    // The EFI- and Tiano-compressed copies are the same bytes: one part, found twice.
    assert_eq!(g.vbios.len(), 1);
    assert_eq!(g.vbios[0].size, 1024);
    assert!(
        Rom::parse(&g.vbios[0].bytes)
            .unwrap()
            .verdict(Some((0x8086, 0x3e92)))
            .seabios
            .loads()
    );

    // Firmware to a verified ROM in one step.
    let rom = build(
        &BuildOptions::new(0x8086, 0x3e92),
        &[Input::Efi {
            name: "gop".into(),
            bytes: g.gop[0].bytes.clone(),
        }],
    )
    .unwrap();
    assert!(check_romfile(&rom, 0x8086, 0x3e92).is_ok());
}

#[test]
fn volumes_are_found_inside_a_wrapped_blob() {
    let mut blob = b"HPWRAP\x01\x02".repeat(0x123);
    blob.extend(test_firmware());
    blob.extend(volume(
        FFS3,
        &[ffs_file(
            known::VBT_FREEFORM,
            0x02,
            &section(0x19, b"$VBT KABYLAKE"),
            true,
        )],
        0,
    ));
    blob.extend([0x5Au8; 999]);
    let vols = volumes(&blob).unwrap();
    assert_eq!(vols.len(), 2);
    assert_eq!(vols[0].location, "offset 0x918");
    let large = &vols[1].files[0];
    assert_eq!(large.size, 0x20 + 4 + 13);
    let g = extract_graphics(&blob).unwrap();
    assert_eq!(g.vbt.len(), 2);
}

#[test]
fn no_volume_is_an_error() {
    assert_eq!(
        volumes(&[0u8; 100]).unwrap_err().to_string(),
        "offset 0x0: no firmware volume (an `_FVH` header with a valid checksum) in 0x64 bytes"
    );
    // `_FVH` with a bad checksum is not a volume: the scan goes on and finds the nested one.
    let mut fw = test_firmware();
    fw[0x32] ^= 1;
    let vols = volumes(&fw).unwrap();
    assert_eq!(vols.len(), 1);
    assert_ne!(vols[0].location, "offset 0x0");
    assert_eq!(vols[0].files[0].ui_name().as_deref(), Some("Inner"));
}

#[test]
fn a_volume_running_past_the_blob_is_an_error() {
    let mut fw = test_firmware();
    fw.truncate(fw.len() - 1);
    let err = volumes(&fw).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("offset 0x0: firmware volume (FvLength "),
        "{err}"
    );
}

#[test]
fn a_section_claiming_4_gib_is_an_error_naming_its_offset() {
    let mut body = vec![0xFF, 0xFF, 0xFF, 0x19];
    body.extend(0xFFFF_FFF0u32.to_le_bytes());
    body.extend([0; 8]);
    let fw = volume(
        FFS2,
        &[ffs_file(
            g("55555555-5555-5555-5555-555555555555"),
            0x02,
            &body,
            false,
        )],
        0,
    );
    let vols = volumes(&fw).unwrap();
    let err = vols[0].files[0].error.clone().unwrap();
    assert_eq!(
        err.to_string(),
        "offset 0x60: section claims 0xfffffff0 bytes but only 0x10 are left in its file"
    );
}

#[test]
fn a_file_running_past_its_volume_is_an_error() {
    let mut f = ffs_file(
        g("55555555-5555-5555-5555-555555555555"),
        0x01,
        b"abcd",
        false,
    );
    f[0x14] = 0xF0; // size 0xf0 > what the volume has
    let fw = volume(FFS2, &[f], 0);
    let vols = volumes(&fw).unwrap();
    let err = vols[0].error.clone().unwrap().to_string();
    assert!(
        err.starts_with("offset 0x48: file 55555555-5555-5555-5555-555555555555 claims 0xf0 bytes"),
        "{err}"
    );
}

#[test]
fn decompression_bombs_are_capped() {
    // An LZMA section that claims 1 GiB of output.
    let zeros = vec![0u8; 4096];
    let mut packed = lzma(&zeros);
    packed[5..13].copy_from_slice(&(1u64 << 30).to_le_bytes());
    let fw = volume(
        FFS2,
        &[ffs_file(
            g("66666666-5555-5555-5555-555555555555"),
            0x07,
            &guided(known::LZMA, true, &packed),
            false,
        )],
        0,
    );
    let vols = volumes(&fw).unwrap();
    let err = vols[0].files[0].error.clone().unwrap();
    assert!(matches!(err, Error::Limit { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("exceeds the limit of 67108864 bytes"),
        "{err}"
    );
}

#[test]
fn nesting_is_limited() {
    // A file whose section is an uncompressed compression section, nested 40 deep.
    let mut s = section(0x19, b"x");
    for _ in 0..40 {
        s = compression(s.len(), 0, &s);
    }
    let fw = volume(
        FFS2,
        &[ffs_file(
            g("77777777-5555-5555-5555-555555555555"),
            0x02,
            &s,
            false,
        )],
        0,
    );
    let vols = volumes(&fw).unwrap();
    assert!(matches!(vols[0].files[0].error, Some(Error::Limit { .. })));
}

#[test]
fn unknown_processing_and_brotli_are_kept_opaque() {
    let fw = volume(
        FFS2,
        &[ffs_file(
            g("88888888-5555-5555-5555-555555555555"),
            0x02,
            &guided(known::BROTLI, true, b"not brotli"),
            false,
        )],
        0,
    );
    let vols = volumes(&fw).unwrap();
    let s = &vols[0].files[0].sections[0];
    assert_eq!(s.note.as_deref(), Some("Brotli: not decoded"));
    assert!(vols[0].errors().is_empty());
}
