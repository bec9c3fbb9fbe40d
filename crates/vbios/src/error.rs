//! The crate's error type.

/// Everything that can go wrong reading or building ROMs and firmware. Every variant names the
/// offset (in the input, or `outer/inner` inside decompressed data) where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A structure runs past the end of the bytes that hold it.
    #[error("{at}: {what} needs {need:#x} bytes but only {have:#x} are left")]
    Truncated {
        /// Where the structure starts.
        at: String,
        /// What was being read (`PCIR`, `firmware volume header`).
        what: String,
        /// Bytes it needs.
        need: usize,
        /// Bytes available from `at`.
        have: usize,
    },
    /// Bytes that are there but wrong: bad signature, loop, overlap, impossible length.
    #[error("{at}: {message}")]
    Malformed {
        /// Where.
        at: String,
        /// What is wrong.
        message: String,
    },
    /// Output would exceed a limit (decompression bomb, ROM over 16 MiB, nesting too deep).
    #[error("{at}: {what} exceeds the limit of {limit} bytes")]
    Limit {
        /// Where.
        at: String,
        /// What would be too large.
        what: String,
        /// The limit.
        limit: usize,
    },
    /// A compressed stream that does not decode.
    #[error("{at}: {algorithm} data does not decompress: {reason}")]
    Decompress {
        /// Where the compressed data starts.
        at: String,
        /// `EFI`, `Tiano`, `LZMA`.
        algorithm: String,
        /// Why.
        reason: String,
    },
    /// Bad input to [`crate::build`] or an id that does not parse.
    #[error("{0}")]
    Input(String),
    /// Something asked for is not in the firmware (a file GUID, a file's data).
    #[error("{0}")]
    Missing(String),
    /// A ROM was built but OVMF would not load it, and why ([`crate::gop_rom`]).
    #[error("the built ROM would not load: {0}")]
    Unloadable(String),
}

/// Formats an offset the way every error names it.
pub(crate) fn at(base: &str, offset: usize) -> String {
    if base.is_empty() {
        format!("offset {offset:#x}")
    } else {
        format!("{base}/{offset:#x}")
    }
}

pub(crate) fn malformed(at: String, message: impl Into<String>) -> Error {
    Error::Malformed {
        at,
        message: message.into(),
    }
}
