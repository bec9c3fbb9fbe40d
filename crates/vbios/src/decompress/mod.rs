//! Decompressors for what firmware volumes and option ROMs hold: EFI and Tiano (EDK2's
//! `UefiDecompressLib`, reimplemented here with bounds checks), LZMA (through `lzma-rs`) and the
//! x86 BCJ filter EDK2's `LzmaF86` sections apply after LZMA. Every function caps its output.

mod bcj;
mod efi;

pub use bcj::{x86_decode, x86_encode};
pub use efi::{Algorithm, decompress as efi};

use crate::error::Error;

/// EFI/Tiano data whose flavour is unknown (a compression section of type 1, a compressed option
/// ROM image). The two formats differ only in one field width, so a stream of one often decodes
/// as the other into garbage: EFI is tried first (what EDK2's `EFI_DECOMPRESS_PROTOCOL` does), and
/// Tiano is used when EFI fails or its output is not `accept`ed (sections that parse, a PE header).
pub fn efi_either(
    data: &[u8],
    limit: usize,
    at: &str,
    accept: impl Fn(&[u8]) -> bool,
) -> Result<Vec<u8>, Error> {
    let first = efi(data, Algorithm::Efi, limit, at);
    if let Ok(v) = &first
        && accept(v)
    {
        return first;
    }
    match efi(data, Algorithm::Tiano, limit, at) {
        Ok(v) if accept(&v) => Ok(v),
        _ => first,
    }
}

/// An LZMA stream with the 13-byte `.lzma` header (properties, dictionary size, unpacked size),
/// as EDK2's `LzmaCompress` writes it. Output beyond `limit` bytes is an error.
pub fn lzma(data: &[u8], limit: usize, at: &str) -> Result<Vec<u8>, Error> {
    let err = |reason: String| Error::Decompress {
        at: at.to_string(),
        algorithm: "LZMA".into(),
        reason,
    };
    if data.len() < 13 {
        return Err(err(format!(
            "{} bytes is shorter than the 13-byte header",
            data.len()
        )));
    }
    let mut size = [0u8; 8];
    size.copy_from_slice(&data[5..13]);
    let unpacked = u64::from_le_bytes(size);
    if unpacked != u64::MAX && unpacked > limit as u64 {
        return Err(Error::Limit {
            at: at.to_string(),
            what: format!("LZMA output ({unpacked} bytes by its header)"),
            limit,
        });
    }
    let mut out = Capped {
        buf: Vec::new(),
        limit,
    };
    let options = lzma_rs::decompress::Options {
        unpacked_size: lzma_rs::decompress::UnpackedSize::ReadFromHeader,
        memlimit: Some(limit),
        allow_incomplete: false,
    };
    let mut input = data;
    match lzma_rs::lzma_decompress_with_options(&mut input, &mut out, &options) {
        Ok(()) => Ok(out.buf),
        Err(_) if out.buf.len() >= limit => Err(Error::Limit {
            at: at.to_string(),
            what: "LZMA output".into(),
            limit,
        }),
        Err(e) => Err(err(e.to_string())),
    }
}

/// A writer that refuses to grow past `limit`.
struct Capped {
    buf: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            let room = self.limit - self.buf.len();
            self.buf.extend_from_slice(&data[..room]);
            return Err(std::io::Error::other("output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
