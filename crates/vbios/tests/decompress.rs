//! EFI/Tiano streams made by EDK2's own compressors (`testdata/vbios/make_vectors.py`), LZMA from
//! liblzma and lzma-rs, the x86 BCJ filter against liblzma's.

mod common;
use common::testdata;
use vfiokit_vbios::Error;
use vfiokit_vbios::decompress::{Algorithm, efi, efi_either, lzma, x86_decode, x86_encode};

const NAMES: [&str; 7] = ["empty", "one", "short", "text", "utf16", "noise", "mixed"];

#[test]
fn edk2_vectors_decompress_to_their_plain_bytes() {
    for name in NAMES {
        let plain = testdata(&format!("{name}.bin"));
        for (ext, alg) in [("efi", Algorithm::Efi), ("tiano", Algorithm::Tiano)] {
            let stream = testdata(&format!("{name}.{ext}.cmp"));
            assert_eq!(
                efi(&stream, alg, 1 << 20, "t").unwrap(),
                plain,
                "{name}.{ext}"
            );
            assert_eq!(
                efi_either(&stream, 1 << 20, "t", |v| v == plain).unwrap(),
                plain,
                "{name}.{ext} either"
            );
        }
    }
}

#[test]
fn a_tiano_stream_with_far_matches_is_not_efi() {
    // `mixed` has matches further back than EFI's 8 KiB window: read as EFI it fails or differs.
    let plain = testdata("mixed.bin");
    let stream = testdata("mixed.tiano.cmp");
    assert_ne!(efi(&stream, Algorithm::Efi, 1 << 20, "t").ok(), Some(plain));
}

#[test]
fn output_over_the_limit_is_refused_before_decoding() {
    let stream = testdata("text.efi.cmp");
    let err = efi(&stream, Algorithm::Efi, 1000, "offset 0x40").unwrap_err();
    assert_eq!(
        err,
        Error::Limit {
            at: "offset 0x40".into(),
            what: "EFI output (34850 bytes by its header)".into(),
            limit: 1000
        }
    );
    assert!(err.to_string().starts_with("offset 0x40: "));
}

#[test]
fn a_compressed_size_past_the_data_is_an_error() {
    let mut stream = testdata("text.efi.cmp");
    stream.truncate(100);
    let err = efi(&stream, Algorithm::Efi, 1 << 20, "offset 0x10").unwrap_err();
    assert!(
        err.to_string()
            .contains("compressed bytes, only 0x5c follow"),
        "{err}"
    );
}

#[test]
fn corrupt_streams_fail_or_decode_within_the_limit_never_panic() {
    let base = testdata("mixed.efi.cmp");
    for i in 8..base.len().min(600) {
        for bit in [0x01u8, 0x10, 0x80] {
            let mut s = base.clone();
            s[i] ^= bit;
            for alg in [Algorithm::Efi, Algorithm::Tiano] {
                if let Ok(v) = efi(&s, alg, 1 << 20, "t") {
                    assert!(v.len() <= 1 << 20);
                }
            }
        }
    }
}

#[test]
fn lzma_from_liblzma_and_lzma_rs() {
    let plain = testdata("text.bin");
    assert_eq!(lzma(&testdata("text.lzma"), 1 << 20, "t").unwrap(), plain);
    assert_eq!(lzma(&common::lzma(&plain), 1 << 20, "t").unwrap(), plain);
}

#[test]
fn lzma_bombs_stop_at_the_limit() {
    let zeros = vec![0u8; 200_000];
    let packed = common::lzma(&zeros);
    assert!(matches!(
        lzma(&packed, 50_000, "offset 0x8").unwrap_err(),
        Error::Limit { .. }
    ));
    // With the size in the header unknown (all ones) the cap still holds.
    let mut unknown = packed.clone();
    unknown[5..13].copy_from_slice(&[0xFF; 8]);
    assert!(lzma(&unknown, 50_000, "t").is_err());
}

#[test]
fn x86_bcj_matches_liblzma() {
    let plain = testdata("bcj.bin");
    let filtered = testdata("bcj.x86");
    let mut v = filtered.clone();
    x86_decode(&mut v);
    assert_eq!(v, plain);
    let mut w = plain.clone();
    x86_encode(&mut w);
    assert_eq!(w, filtered);
}

#[test]
fn truncated_streams_are_errors_or_short_never_panics() {
    for name in ["text", "mixed"] {
        for ext in ["efi", "tiano"] {
            let s = testdata(&format!("{name}.{ext}.cmp"));
            for n in 0..s.len() {
                // The header still claims the full size: every cut is an error.
                assert!(
                    efi_either(&s[..n], 1 << 20, "t", |_| true).is_err(),
                    "{name}.{ext} cut at {n}"
                );
            }
        }
        let l = testdata("text.lzma");
        for n in 0..l.len() {
            assert!(lzma(&l[..n], 1 << 20, "t").is_err(), "lzma cut at {n}");
        }
    }
}
