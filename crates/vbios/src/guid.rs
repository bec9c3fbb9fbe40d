//! GUIDs as firmware stores them (mixed-endian: the first three fields little-endian).

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A GUID in its on-disk byte order. `Display` is the registry form UEFITool prints,
/// uppercase (`5BBA83E6-F027-4CA7-BFD0-16358CC9E123`); `FromStr` takes either case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// From the 16 bytes as they sit in the firmware image.
    pub fn from_bytes(bytes: &[u8]) -> Option<Guid> {
        let mut b = [0u8; 16];
        b.copy_from_slice(bytes.get(..16)?);
        Some(Guid(b))
    }

    /// A GUID from a string literal known to be valid (for the constants below).
    pub(crate) const fn from_fields(a: u32, b: u16, c: u16, d: [u8; 8]) -> Guid {
        let a = a.to_le_bytes();
        let b = b.to_le_bytes();
        let c = c.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5],
            d[6], d[7],
        ])
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

impl FromStr for Guid {
    type Err = Error;

    fn from_str(s: &str) -> Result<Guid, Error> {
        let bad = || {
            Error::Input(format!(
                "invalid GUID {s:?}: expected XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX"
            ))
        };
        let parts: Vec<&str> = s.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        if parts.len() != 5
            || parts
                .iter()
                .zip(lens)
                .any(|(p, n)| p.len() != n || !p.bytes().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(bad());
        }
        let a = u32::from_str_radix(parts[0], 16).map_err(|_| bad())?;
        let b = u16::from_str_radix(parts[1], 16).map_err(|_| bad())?;
        let c = u16::from_str_radix(parts[2], 16).map_err(|_| bad())?;
        let tail = format!("{}{}", parts[3], parts[4]);
        let mut d = [0u8; 8];
        for (i, byte) in d.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&tail[i * 2..i * 2 + 2], 16).map_err(|_| bad())?;
        }
        Ok(Guid::from_fields(a, b, c, d))
    }
}

impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Well-known GUIDs (see `shared/reference/uefi-firmware.md`).
pub mod known {
    use super::Guid;

    /// FFS2 file system (`EFI_FIRMWARE_FILE_SYSTEM2_GUID`).
    pub const FFS2: Guid = Guid::from_fields(
        0x8C8CE578,
        0x8A3D,
        0x4F1C,
        [0x99, 0x35, 0x89, 0x61, 0x85, 0xC3, 0x2D, 0xD3],
    );
    /// FFS3 file system (`EFI_FIRMWARE_FILE_SYSTEM3_GUID`), large files allowed.
    pub const FFS3: Guid = Guid::from_fields(
        0x5473C07A,
        0x3DCB,
        0x4DCA,
        [0xBD, 0x6F, 0x1E, 0x96, 0x89, 0xE7, 0x34, 0x9A],
    );
    /// GUID-defined section: LZMA.
    pub const LZMA: Guid = Guid::from_fields(
        0xEE4E5898,
        0x3914,
        0x4259,
        [0x9D, 0x6E, 0xDC, 0x7B, 0xD7, 0x94, 0x03, 0xCF],
    );
    /// GUID-defined section: LZMA followed by the x86 BCJ filter.
    pub const LZMA_X86: Guid = Guid::from_fields(
        0xD42AE6BD,
        0x1352,
        0x4BFB,
        [0x90, 0x9A, 0xCA, 0x72, 0xA6, 0xEA, 0xE8, 0x89],
    );
    /// GUID-defined section: Tiano custom decompress.
    pub const TIANO: Guid = Guid::from_fields(
        0xA31280AD,
        0x481E,
        0x41B6,
        [0x95, 0xE8, 0x12, 0x7F, 0x4C, 0x98, 0x47, 0x79],
    );
    /// GUID-defined section: Brotli (not decoded by this crate).
    pub const BROTLI: Guid = Guid::from_fields(
        0x3D532050,
        0x5CDA,
        0x4FD0,
        [0x87, 0x9E, 0x0F, 0x7F, 0x63, 0x0D, 0x5A, 0xFB],
    );
    /// GUID-defined section: CRC32 (the data is plain sections).
    pub const CRC32: Guid = Guid::from_fields(
        0xFC1BCDB0,
        0x7D31,
        0x49AA,
        [0x93, 0x6A, 0xA4, 0x60, 0x0D, 0x9D, 0xD0, 0x83],
    );
    /// FFS file "IntelGopDriver" (AMI Aptio IntelSaGopDriver).
    pub const GOP_AMI: Guid = Guid::from_fields(
        0x5BBA83E6,
        0xF027,
        0x4CA7,
        [0xBF, 0xD0, 0x16, 0x35, 0x8C, 0xC9, 0xE1, 0x23],
    );
    /// FFS file "IntelGopDriver" (Intel reference code).
    pub const GOP_INTEL: Guid = Guid::from_fields(
        0xFF0C8745,
        0x3270,
        0x4439,
        [0xB7, 0x4F, 0x3E, 0x45, 0xF8, 0xC7, 0x70, 0x64],
    );
    /// Freeform subtype section "IntelGop".
    pub const GOP_SUBTYPE: Guid = Guid::from_fields(
        0x380B6B4F,
        0x1454,
        0x41F2,
        [0xA6, 0xD3, 0x61, 0xD1, 0x33, 0x3E, 0x8C, 0xB4],
    );
    /// AMI legacy VBIOS option ROM body.
    pub const VBIOS_AMI: Guid = Guid::from_fields(
        0xC5A4306E,
        0xE247,
        0x4ECD,
        [0xA9, 0xD8, 0x5B, 0x19, 0x85, 0xD3, 0xDC, 0xDA],
    );
    /// Freeform file "IntelGopVbt".
    pub const VBT_FREEFORM: Guid = Guid::from_fields(
        0x56752DA9,
        0xDE6B,
        0x4895,
        [0x88, 0x19, 0x19, 0x45, 0xB6, 0xB7, 0x6C, 0x22],
    );
    /// RAW file VBT ("BmpDummyName").
    pub const VBT_RAW: Guid = Guid::from_fields(
        0x878AC2CC,
        0x5343,
        0x46F2,
        [0xB5, 0x63, 0x51, 0xF8, 0x9D, 0xAF, 0x56, 0xBA],
    );
}
