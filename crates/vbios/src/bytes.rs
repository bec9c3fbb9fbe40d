//! Bounds-checked little-endian reads. Every read names what it reads and where.

use crate::error::{Error, at};

/// A byte slice plus the location label (`""` for the input itself) used in errors.
#[derive(Clone, Copy)]
pub(crate) struct Bytes<'a> {
    pub data: &'a [u8],
    pub base: &'a str,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8], base: &'a str) -> Self {
        Bytes { data, base }
    }

    pub fn at(&self, offset: usize) -> String {
        at(self.base, offset)
    }

    /// `len` bytes at `offset`, or a `Truncated` error naming `what`.
    pub fn slice(&self, offset: usize, len: usize, what: &str) -> Result<&'a [u8], Error> {
        let have = self.data.len().saturating_sub(offset);
        match offset.checked_add(len) {
            Some(end) if end <= self.data.len() => Ok(&self.data[offset..end]),
            _ => Err(Error::Truncated {
                at: self.at(offset),
                what: what.to_string(),
                need: len,
                have,
            }),
        }
    }

    pub fn u8(&self, offset: usize, what: &str) -> Result<u8, Error> {
        Ok(self.slice(offset, 1, what)?[0])
    }

    pub fn u16(&self, offset: usize, what: &str) -> Result<u16, Error> {
        let b = self.slice(offset, 2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&self, offset: usize, what: &str) -> Result<u32, Error> {
        let b = self.slice(offset, 4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&self, offset: usize, what: &str) -> Result<u64, Error> {
        let b = self.slice(offset, 8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Little-endian reads that return `None` past the end (for content probes, not structure).
pub(crate) fn le16(data: &[u8], offset: usize) -> Option<u16> {
    let b = data.get(offset..offset.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

pub(crate) fn le32(data: &[u8], offset: usize) -> Option<u32> {
    let b = data.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Whether `needle` occurs in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `s` as UTF-16LE bytes.
pub(crate) fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// The UTF-16LE string starting at `offset`, up to a NUL or 256 characters.
pub(crate) fn utf16_at(data: &[u8], offset: usize) -> String {
    let mut units = Vec::new();
    let mut i = offset;
    while let Some(u) = le16(data, i) {
        if u == 0 || units.len() >= 256 {
            break;
        }
        units.push(u);
        i += 2;
    }
    String::from_utf16_lossy(&units)
}
