//! UEFI PI firmware volumes, FFS files and sections, found anywhere in a blob.

use serde::Serialize;

use crate::bytes::{Bytes, utf16_at};
use crate::decompress;
use crate::error::{Error, at, malformed};
use crate::guid::{Guid, known};

/// Largest output of one decompressed section.
pub const SECTION_LIMIT: usize = 64 << 20;
/// Largest total output of all decompression in one firmware image.
pub const TOTAL_LIMIT: usize = 256 << 20;
/// Deepest nesting of volumes and encapsulation sections.
pub const MAX_DEPTH: usize = 16;

const FVH_SIGNATURE: &[u8; 4] = b"_FVH";
const FV_HEADER_MIN: usize = 0x48; // 0x38 + one block map entry + terminator

/// A firmware volume (`EFI_FIRMWARE_VOLUME_HEADER` and its files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    /// Where it starts (`offset 0x…`, or a path into decompressed data).
    pub location: String,
    /// `FvLength`.
    pub length: usize,
    /// `FileSystemGuid` (FFS2, FFS3, or something this crate does not walk).
    pub file_system: Guid,
    /// `FvName` from the extended header, when there is one.
    pub name: Option<Guid>,
    /// `Attributes`.
    pub attributes: u32,
    /// Free space and state bits are 1s (`EFI_FVB2_ERASE_POLARITY`).
    pub erase_polarity: bool,
    /// `HeaderLength`.
    pub header_length: u16,
    /// `Revision`.
    pub revision: u8,
    /// The files, in order (none when the file system is not FFS2/FFS3).
    pub files: Vec<File>,
    /// What stopped the walk of the files, if anything did.
    #[serde(serialize_with = "opt_error")]
    pub error: Option<Error>,
}

/// An FFS file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct File {
    /// Where its header starts.
    pub location: String,
    /// The file's name GUID.
    pub name: Guid,
    /// `EFI_FV_FILETYPE_*`.
    pub file_type: u8,
    /// `Attributes`.
    pub attributes: u8,
    /// Size including the header.
    pub size: usize,
    /// State after erase polarity: valid, deleted, …
    pub state: FileState,
    /// Whether `IntegrityCheck.Header` sums the header to 0.
    pub header_checksum_ok: bool,
    /// Sections (files with sections).
    pub sections: Vec<Section>,
    /// The data after the header, for files without sections (RAW and OEM types).
    #[serde(skip)]
    pub raw: Vec<u8>,
    /// What stopped the walk of the sections, if anything did.
    #[serde(serialize_with = "opt_error")]
    pub error: Option<Error>,
}

/// A file's state as `EDK2`'s `GetFileState` reads it (highest set bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// Data valid (or marked for update): firmware uses it.
    Valid,
    /// Deleted.
    Deleted,
    /// Header written, data not (incomplete).
    Incomplete,
    /// Header invalid or under construction.
    Invalid,
}

/// A section of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    /// Where its header starts.
    pub location: String,
    /// `EFI_SECTION_*` type.
    pub kind: u8,
    /// The section GUID (GUID-defined) or subtype GUID (freeform subtype).
    pub guid: Option<Guid>,
    /// The body of a leaf section (PE32, RAW, UI, …); empty for encapsulations.
    #[serde(skip)]
    pub data: Vec<u8>,
    /// Length of the body.
    pub data_len: usize,
    /// Sections inside (compression, GUID-defined).
    pub children: Vec<Section>,
    /// A volume inside (firmware volume image).
    pub volumes: Vec<Volume>,
    /// Something worth saying: `Brotli: not decoded`.
    pub note: Option<String>,
}

fn opt_error<S: serde::Serializer>(e: &Option<Error>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.serialize_some(&e.to_string()),
        None => s.serialize_none(),
    }
}

/// File type names, as UEFITool shows them.
pub fn file_type_name(t: u8) -> String {
    match t {
        0x01 => "Raw".into(),
        0x02 => "Freeform".into(),
        0x03 => "SEC core".into(),
        0x04 => "PEI core".into(),
        0x05 => "DXE core".into(),
        0x06 => "PEI module".into(),
        0x07 => "DXE driver".into(),
        0x08 => "Combined PEI/DXE".into(),
        0x09 => "Application".into(),
        0x0A => "SMM module".into(),
        0x0B => "Volume image".into(),
        0x0C => "Combined SMM/DXE".into(),
        0x0D => "SMM core".into(),
        0xF0 => "Pad".into(),
        other => format!("Type {other:#04x}"),
    }
}

/// Section type names.
pub fn section_type_name(t: u8) -> String {
    match t {
        0x01 => "Compressed".into(),
        0x02 => "GUID defined".into(),
        0x03 => "Disposable".into(),
        0x10 => "PE32 image".into(),
        0x11 => "PIC image".into(),
        0x12 => "TE image".into(),
        0x13 => "DXE dependency".into(),
        0x14 => "Version".into(),
        0x15 => "UI".into(),
        0x16 => "16-bit image".into(),
        0x17 => "Volume image".into(),
        0x18 => "Freeform subtype GUID".into(),
        0x19 => "Raw".into(),
        0x1B => "PEI dependency".into(),
        0x1C => "MM dependency".into(),
        other => format!("Type {other:#04x}"),
    }
}

impl File {
    /// The user-interface name (first UI section, searched depth-first).
    pub fn ui_name(&self) -> Option<String> {
        self.leaves()
            .into_iter()
            .find(|s| s.kind == 0x15)
            .map(|s| utf16_at(&s.data, 0))
    }

    /// The body of the first PE32 section, searched depth-first.
    pub fn pe32(&self) -> Option<&[u8]> {
        self.leaves()
            .into_iter()
            .find(|s| s.kind == 0x10)
            .map(|s| s.data.as_slice())
    }

    /// Every leaf section, depth-first (not descending into nested volumes).
    pub fn leaves(&self) -> Vec<&Section> {
        let mut out = Vec::new();
        fn walk<'a>(s: &'a [Section], out: &mut Vec<&'a Section>) {
            for x in s {
                if x.children.is_empty() && x.volumes.is_empty() {
                    out.push(x);
                }
                walk(&x.children, out);
            }
        }
        walk(&self.sections, &mut out);
        out
    }

    /// Volumes nested in this file's sections.
    pub fn volumes(&self) -> Vec<&Volume> {
        let mut out = Vec::new();
        fn walk<'a>(s: &'a [Section], out: &mut Vec<&'a Volume>) {
            for x in s {
                out.extend(x.volumes.iter());
                walk(&x.children, out);
            }
        }
        walk(&self.sections, &mut out);
        out
    }
}

impl Volume {
    /// The volume's files, then the files of volumes nested in them, depth-first.
    pub fn all_files(&self) -> Vec<&File> {
        let mut out = Vec::new();
        for f in &self.files {
            out.push(f);
            for v in f.volumes() {
                out.extend(v.all_files());
            }
        }
        out
    }

    /// Every error in this volume and below it, with its location.
    pub fn errors(&self) -> Vec<&Error> {
        let mut out: Vec<&Error> = self.error.iter().collect();
        for f in &self.files {
            out.extend(f.error.iter());
            for v in f.volumes() {
                out.extend(v.errors());
            }
        }
        out
    }
}

struct Ctx {
    budget: usize,
}

/// Finds every firmware volume in `data` (a flash image, an HP-wrapped BIOS, one volume) by
/// scanning for `_FVH` with a valid header checksum, and walks each. A volume whose length runs
/// past the end of `data` is an error, and so is finding none. Faults inside a volume are kept in
/// [`Volume::error`] and [`File::error`] so the rest can still be read.
pub fn volumes(data: &[u8]) -> Result<Vec<Volume>, Error> {
    let mut ctx = Ctx {
        budget: TOTAL_LIMIT,
    };
    let mut out = Vec::new();
    let mut pos = 0x28usize;
    while pos + 4 <= data.len() {
        let Some(hit) = crate::bytes::find(&data[pos..], FVH_SIGNATURE) else {
            break;
        };
        let sig = pos + hit;
        let start = sig - 0x28;
        if header_checksum_ok(data, start) {
            let volume = parse_volume(data, start, "", &mut ctx, 0)?;
            pos = start + volume.length.max(FV_HEADER_MIN) + 0x28;
            out.push(volume);
        } else {
            pos = sig + 1;
        }
    }
    if out.is_empty() {
        return Err(malformed(
            at("", 0),
            format!(
                "no firmware volume (an `_FVH` header with a valid checksum) in {:#x} bytes",
                data.len()
            ),
        ));
    }
    Ok(out)
}

/// Whether a complete volume header with a zero 16-bit checksum starts at `start`.
fn header_checksum_ok(data: &[u8], start: usize) -> bool {
    let Some(hl) = crate::bytes::le16(data, start + 0x30) else {
        return false;
    };
    let hl = hl as usize;
    if hl < FV_HEADER_MIN || !hl.is_multiple_of(2) {
        return false;
    }
    let Some(h) = data.get(start..start + hl) else {
        return false;
    };
    h.chunks(2).fold(0u16, |a, w| {
        a.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
    }) == 0
}

fn parse_volume(
    data: &[u8],
    start: usize,
    base: &str,
    ctx: &mut Ctx,
    depth: usize,
) -> Result<Volume, Error> {
    let b = Bytes::new(data, base);
    if depth > MAX_DEPTH {
        return Err(Error::Limit {
            at: b.at(start),
            what: "nesting of volumes and sections".into(),
            limit: MAX_DEPTH,
        });
    }
    let h = b.slice(start, FV_HEADER_MIN, "firmware volume header")?;
    if &h[0x28..0x2C] != FVH_SIGNATURE {
        return Err(malformed(b.at(start + 0x28), "no _FVH signature"));
    }
    if !header_checksum_ok(data, start) {
        return Err(malformed(
            b.at(start),
            "firmware volume header checksum is not 0",
        ));
    }
    let length64 = b.u64(start + 0x20, "FvLength")?;
    let header_length = b.u16(start + 0x30, "HeaderLength")?;
    let have = data.len() - start;
    if length64 > have as u64 {
        return Err(Error::Truncated {
            at: b.at(start),
            what: format!("firmware volume (FvLength {length64:#x})"),
            need: usize::try_from(length64).unwrap_or(usize::MAX),
            have,
        });
    }
    let length = length64 as usize;
    if length < header_length as usize {
        return Err(malformed(
            b.at(start),
            format!("FvLength {length:#x} is shorter than its header ({header_length:#x})"),
        ));
    }
    let file_system = Guid::from_bytes(&h[0x10..0x20]).unwrap_or(Guid([0; 16]));
    let attributes = b.u32(start + 0x2C, "Attributes")?;
    let erase_polarity = attributes & 0x800 != 0;
    let ext = b.u16(start + 0x34, "ExtHeaderOffset")? as usize;
    let revision = h[0x37];
    let mut volume = Volume {
        location: b.at(start),
        length,
        file_system,
        name: None,
        attributes,
        erase_polarity,
        header_length,
        revision,
        files: Vec::new(),
        error: None,
    };
    let vol = &data[start..start + length];
    let vb = Bytes::new(vol, base);
    let mut first = header_length as usize;
    if ext != 0 {
        let r = vb.slice(ext, 20, "extended header").and_then(|e| {
            let size = u32::from_le_bytes([e[16], e[17], e[18], e[19]]) as usize;
            if size < 20 || ext + size > length {
                return Err(malformed(
                    b.at(start + ext),
                    format!("extended header size {size:#x} does not fit the volume"),
                ));
            }
            Ok((Guid::from_bytes(e), ext + size))
        });
        match r {
            Ok((name, end)) => {
                volume.name = name;
                first = first.max(end);
            }
            Err(e) => {
                volume.error = Some(e);
                return Ok(volume);
            }
        }
    }
    if file_system != known::FFS2 && file_system != known::FFS3 {
        return Ok(volume);
    }
    let ffs3 = file_system == known::FFS3;
    let erase = if erase_polarity { 0xFF } else { 0x00 };
    let mut off = first.next_multiple_of(8);
    while off + 0x18 <= length {
        let hdr = &vol[off..off + 0x18];
        if hdr.iter().all(|&x| x == erase) {
            break; // free space
        }
        match parse_file(vol, off, start, base, ffs3, erase_polarity, ctx, depth) {
            Ok(file) => {
                let size = file.size;
                volume.files.push(file);
                off = (off + size).next_multiple_of(8);
            }
            Err(e) => {
                volume.error = Some(e);
                break;
            }
        }
    }
    Ok(volume)
}

#[allow(clippy::too_many_arguments)]
fn parse_file(
    vol: &[u8],
    off: usize,
    vol_start: usize,
    base: &str,
    ffs3: bool,
    polarity: bool,
    ctx: &mut Ctx,
    depth: usize,
) -> Result<File, Error> {
    let loc = at(base, vol_start + off);
    let h = &vol[off..off + 0x18];
    let name = Guid::from_bytes(h).unwrap_or(Guid([0; 16]));
    let file_type = h[0x12];
    let attributes = h[0x13];
    let mut size = u32::from_le_bytes([h[0x14], h[0x15], h[0x16], 0]) as usize;
    let mut header_len = 0x18;
    if ffs3 && attributes & 0x01 != 0 {
        let ext = Bytes::new(vol, base)
            .u64(off + 0x18, "FFS3 large file size")
            .map_err(|_| Error::Truncated {
                at: loc.clone(),
                what: "FFS3 large file header".into(),
                need: 0x20,
                have: vol.len() - off,
            })?;
        size = usize::try_from(ext).unwrap_or(usize::MAX);
        header_len = 0x20;
    }
    if size < header_len {
        return Err(malformed(
            loc,
            format!("file {name} size {size:#x} is smaller than its header ({header_len:#x})"),
        ));
    }
    if size > vol.len() - off {
        return Err(malformed(
            loc,
            format!(
                "file {name} claims {size:#x} bytes but only {:#x} are left in its volume",
                vol.len() - off
            ),
        ));
    }
    let raw_state = h[0x17];
    let state_bits = if polarity { !raw_state } else { raw_state };
    let top = (0..8)
        .rev()
        .find(|i| state_bits & (1 << i) != 0)
        .map(|i| 1u8 << i)
        .unwrap_or(0);
    let state = match top {
        0x04 | 0x08 => FileState::Valid,
        0x10 => FileState::Deleted,
        0x02 => FileState::Incomplete,
        _ => FileState::Invalid,
    };
    let header = &vol[off..off + header_len];
    let sum = header
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 0x11 && *i != 0x17)
        .fold(0u8, |a, (_, &x)| a.wrapping_add(x));
    let body = &vol[off + header_len..off + size];
    let mut file = File {
        location: loc,
        name,
        file_type,
        attributes,
        size,
        state,
        header_checksum_ok: sum == 0,
        sections: Vec::new(),
        raw: Vec::new(),
        error: None,
    };
    match file_type {
        0xF0 => {}
        0x01 | 0xC0..=0xDF => file.raw = body.to_vec(),
        _ => {
            let full = &vol[..off + size];
            match parse_sections(full, off + header_len, base, vol_start, ctx, depth + 1) {
                Ok(s) => file.sections = s,
                Err(e) => file.error = Some(e),
            }
        }
    }
    Ok(file)
}

/// Parses the sections in `buf[from..]`; `shift` is added to offsets for messages (the buffer's
/// position in its own container).
fn parse_sections(
    buf: &[u8],
    from: usize,
    base: &str,
    shift: usize,
    ctx: &mut Ctx,
    depth: usize,
) -> Result<Vec<Section>, Error> {
    let loc = |o: usize| at(base, shift + o);
    if depth > MAX_DEPTH {
        return Err(Error::Limit {
            at: loc(from),
            what: "nesting of volumes and sections".into(),
            limit: MAX_DEPTH,
        });
    }
    let mut out = Vec::new();
    let mut off = from;
    while off + 4 <= buf.len() {
        let s = &buf[off..];
        let mut size = u32::from_le_bytes([s[0], s[1], s[2], 0]) as usize;
        let kind = s[3];
        let mut hdr = 4;
        if size == 0xFF_FFFF {
            if s.len() < 8 {
                return Err(Error::Truncated {
                    at: loc(off),
                    what: "extended section header".into(),
                    need: 8,
                    have: s.len(),
                });
            }
            size = u32::from_le_bytes([s[4], s[5], s[6], s[7]]) as usize;
            hdr = 8;
        }
        if size < hdr {
            return Err(malformed(
                loc(off),
                format!("section size {size:#x} is smaller than its header ({hdr})"),
            ));
        }
        if size > s.len() {
            return Err(malformed(
                loc(off),
                format!(
                    "section claims {size:#x} bytes but only {:#x} are left in its file",
                    s.len()
                ),
            ));
        }
        let body = &s[hdr..size];
        let mut sec = Section {
            location: loc(off),
            kind,
            guid: None,
            data: Vec::new(),
            data_len: body.len(),
            children: Vec::new(),
            volumes: Vec::new(),
            note: None,
        };
        match kind {
            0x01 => {
                let b = Bytes::new(body, "");
                let declared =
                    b.u32(0, "compression section header")
                        .map_err(|_| Error::Truncated {
                            at: loc(off),
                            what: "compression section header".into(),
                            need: hdr + 5,
                            have: size,
                        })? as usize;
                let ctype = b.u8(4, "compression type").map_err(|_| Error::Truncated {
                    at: loc(off),
                    what: "compression section header".into(),
                    need: hdr + 5,
                    have: size,
                })?;
                let data = &body[5..];
                let inner_at = loc(off + hdr + 5);
                let inner = match ctype {
                    0 => data.to_vec(),
                    1 => {
                        let limit = SECTION_LIMIT.min(ctx.budget);
                        let plain = decompress::efi_either(data, limit, &inner_at, |v| {
                            v.len() == declared && looks_like_sections(v)
                        })?;
                        if plain.len() != declared {
                            return Err(malformed(
                                loc(off),
                                format!(
                                    "compression section declares {declared:#x} bytes, data decompress to {:#x}",
                                    plain.len()
                                ),
                            ));
                        }
                        plain
                    }
                    other => {
                        return Err(malformed(
                            loc(off),
                            format!("unknown compression type {other}"),
                        ));
                    }
                };
                ctx.budget = ctx.budget.saturating_sub(inner.len());
                let ib = format!("{inner_at}>{}", if ctype == 0 { "stored" } else { "EFI" });
                sec.children = parse_sections(&inner, 0, &ib, 0, ctx, depth + 1)?;
            }
            0x02 => {
                if body.len() < 20 {
                    return Err(Error::Truncated {
                        at: loc(off),
                        what: "GUID-defined section header".into(),
                        need: hdr + 20,
                        have: size,
                    });
                }
                let guid = Guid::from_bytes(body).unwrap_or(Guid([0; 16]));
                let data_offset = u16::from_le_bytes([body[16], body[17]]) as usize;
                let attrs = u16::from_le_bytes([body[18], body[19]]);
                sec.guid = Some(guid);
                if data_offset < hdr + 20 || data_offset > size {
                    return Err(malformed(
                        loc(off),
                        format!(
                            "GUID-defined section data offset {data_offset:#x} is outside {:#x}..={size:#x}",
                            hdr + 20
                        ),
                    ));
                }
                let data = &s[data_offset..size];
                let inner_at = loc(off + data_offset);
                let limit = SECTION_LIMIT.min(ctx.budget);
                let decoded: Option<(Vec<u8>, &str)> = if guid == known::LZMA {
                    Some((decompress::lzma(data, limit, &inner_at)?, "LZMA"))
                } else if guid == known::LZMA_X86 {
                    let mut v = decompress::lzma(data, limit, &inner_at)?;
                    decompress::x86_decode(&mut v);
                    Some((v, "LZMA+x86"))
                } else if guid == known::TIANO {
                    let v =
                        match decompress::efi(data, decompress::Algorithm::Tiano, limit, &inner_at)
                        {
                            Ok(v) => v,
                            Err(e) => {
                                decompress::efi(data, decompress::Algorithm::Efi, limit, &inner_at)
                                    .map_err(|_| e)?
                            }
                        };
                    Some((v, "Tiano"))
                } else if guid == known::CRC32 || attrs & 0x01 == 0 {
                    Some((data.to_vec(), "data"))
                } else {
                    sec.note = Some(if guid == known::BROTLI {
                        "Brotli: not decoded".into()
                    } else {
                        format!("GUID {guid} needs processing this crate does not know")
                    });
                    sec.data = data.to_vec();
                    None
                };
                if let Some((inner, name)) = decoded {
                    ctx.budget = ctx.budget.saturating_sub(inner.len());
                    let ib = format!("{inner_at}>{name}");
                    sec.children = parse_sections(&inner, 0, &ib, 0, ctx, depth + 1)?;
                }
            }
            0x17 => {
                let vbase = loc(off + hdr);
                let v = parse_volume(body, 0, &format!("{vbase}>volume"), ctx, depth + 1)?;
                sec.volumes.push(v);
            }
            0x18 => {
                sec.guid = Guid::from_bytes(body);
                if sec.guid.is_none() {
                    return Err(Error::Truncated {
                        at: loc(off),
                        what: "freeform subtype GUID section".into(),
                        need: hdr + 16,
                        have: size,
                    });
                }
                sec.data = body[16..].to_vec();
                sec.data_len = sec.data.len();
            }
            _ => sec.data = body.to_vec(),
        }
        out.push(sec);
        off = (off + size).next_multiple_of(4);
    }
    Ok(out)
}

/// Whether `buf` is a chain of section headers of known types that ends at the end of `buf`
/// (used to tell an EFI stream from a Tiano one).
fn looks_like_sections(buf: &[u8]) -> bool {
    let mut off = 0;
    while off + 4 <= buf.len() {
        let s = &buf[off..];
        let mut size = u32::from_le_bytes([s[0], s[1], s[2], 0]) as usize;
        let mut hdr = 4;
        if size == 0xFF_FFFF {
            match crate::bytes::le32(s, 4) {
                Some(x) => size = x as usize,
                None => return false,
            }
            hdr = 8;
        }
        if size < hdr || size > s.len() || !matches!(s[3], 0x01..=0x03 | 0x10..=0x1C) {
            return false;
        }
        off = (off + size).next_multiple_of(4);
    }
    off >= buf.len() && !buf.is_empty()
}
