//! PCI option ROMs: images, headers, PCI data structures, and what OVMF and SeaBIOS make of them.

use serde::Serialize;

use crate::bytes::{Bytes, find, utf16, utf16_at};
use crate::error::{Error, malformed};
use crate::pe::{PeInfo, machine, machine_name, pe_info, subsystem, subsystem_name};

/// Option ROM images are measured in 512-byte units.
pub const UNIT: usize = 512;
/// `EfiSignature` of EFI images.
pub const EFI_SIGNATURE: u32 = 0x0EF1;
/// PCIR code type of legacy x86 (PC-AT) images.
pub const CODE_TYPE_X86: u8 = 0;
/// PCIR code type of EFI images.
pub const CODE_TYPE_EFI: u8 = 3;
/// Largest output accepted when an image is EFI-compressed (checked, not loaded).
pub const DECOMPRESS_LIMIT: usize = 16 << 20;

/// A parsed option ROM: its images in order, walked by their PCIR image length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rom {
    /// The images, first at offset 0.
    pub images: Vec<Image>,
    /// Size of the input in bytes.
    pub size: usize,
    /// Facts about the whole ROM that do not stop firmware from reading it (padding after the
    /// last image, a missing last-image bit).
    pub notes: Vec<String>,
}

/// One image of a ROM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    /// Position in the ROM, from 0.
    pub index: usize,
    /// Offset of the image's `55 AA` in the ROM.
    pub offset: usize,
    /// `PCIR.ImageLength × 512`.
    pub length: usize,
    /// Offset of the PCIR structure from the image start (header field 0x18).
    pub pcir_offset: u16,
    /// The PCI data structure.
    pub pcir: Pcir,
    /// The code-type-specific header.
    pub header: Header,
    /// What the image is, judged by content (`Intel(R) GOP Driver [9.0.1075]`, `Intel legacy VBIOS`).
    pub label: Option<String>,
    /// Why OVMF would not load this image (empty when it would, or when it is not EFI).
    pub ovmf_problems: Vec<String>,
    /// Why SeaBIOS would not run this image whatever the device (empty for a good legacy image).
    pub seabios_problems: Vec<String>,
}

/// The PCI data structure (`PCIR`), PCI 2.2/2.3 or 3.0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pcir {
    /// Vendor id.
    #[serde(serialize_with = "hex4")]
    pub vendor: u16,
    /// Device id.
    #[serde(serialize_with = "hex4")]
    pub device: u16,
    /// Further device ids (PCI 3.0 device list), without the terminating 0.
    #[serde(serialize_with = "hex4_list")]
    pub device_list: Vec<u16>,
    /// Structure length.
    pub length: u16,
    /// Structure revision (0 for PCI 2.x, 3 for PCI 3.0).
    pub revision: u8,
    /// Class code as six hex digits' value (`0x030000` is VGA).
    #[serde(serialize_with = "hex6")]
    pub class_code: u32,
    /// Image length in 512-byte units.
    pub image_length: u16,
    /// Vendor's code revision.
    pub code_revision: u16,
    /// Code type: 0 x86, 1 Open Firmware, 2 PA-RISC, 3 EFI.
    pub code_type: u8,
    /// Indicator byte (bit 7: last image).
    pub indicator: u8,
}

impl Pcir {
    /// Whether bit 7 of the indicator (last image) is set.
    pub fn is_last(&self) -> bool {
        self.indicator & 0x80 != 0
    }
}

/// The header at the start of an image, by code type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Header {
    /// A legacy x86 image (code type 0).
    Legacy {
        /// Initialization size in bytes (header byte 2 × 512).
        init_size: usize,
        /// Sum of the initialization-size bytes mod 256 (0 is a good checksum).
        checksum: u8,
    },
    /// An EFI image (code type 3).
    Efi {
        /// Initialization size in bytes.
        init_size: usize,
        /// `EfiSignature` (0x0EF1 when valid).
        signature: u32,
        /// PE subsystem in the ROM header.
        subsystem: u16,
        /// PE machine in the ROM header.
        machine: u16,
        /// 0 none, 1 EFI compression.
        compression: u16,
        /// Offset of the PE image (`MZ`) from the image start.
        pe_offset: u16,
        /// The PE header, or why it cannot be read.
        pe: Result<PeInfo, String>,
    },
    /// Any other code type (Open Firmware, PA-RISC, …): structure only.
    Other,
}

fn hex4<S: serde::Serializer>(v: &u16, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:04x}"))
}

fn hex6<S: serde::Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:06x}"))
}

fn hex4_list<S: serde::Serializer>(v: &[u16], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|d| format!("{d:04x}")))
}

/// Code type as rom-parser names it.
pub fn code_type_name(t: u8) -> &'static str {
    match t {
        0 => "x86 PC-AT",
        1 => "Open Firmware",
        2 => "PA-RISC",
        3 => "EFI",
        _ => "unknown",
    }
}

/// What Linux's `Invalid PCI ROM header signature: expecting 0xaa55, got 0x…` means, for the
/// signature it printed. `igd` says whether the device is an Intel integrated GPU.
pub fn explain_rom_signature(got: u16, igd: bool) -> String {
    let mut s = format!(
        "the first two bytes of the ROM read as 0x{got:04x}, not 0xaa55: drivers/pci/rom.c found no option ROM there"
    );
    if igd {
        s.push_str(
            ". An Intel iGPU has no ROM BAR: the kernel shows the legacy shadow at 0xC0000 instead (pci_fixup_video), \
             and on a UEFI host with CSM off no VBIOS was ever copied there, so the bytes are garbage. The host's \
             `rom` file and QEMU's ROM BAR are useless for this device: give the VM a ROM file (romfile=) extracted \
             from the vendor's firmware and built for this device's ids",
        );
    } else {
        s.push_str(". The device has no readable ROM BAR: use rombar=0, or a ROM file (romfile=)");
    }
    s
}

/// Most images a ROM may hold (a ROM BAR is at most 16 MiB, images at least 512 bytes).
const MAX_IMAGES: usize = 1 << 15;

impl Rom {
    /// Parses every image of an option ROM. Structural faults (no `55 AA` at 0, a PCIR outside its
    /// image, an image running past the end, an image length of 0 that would loop) are errors
    /// naming the offset; faults that only stop one firmware from using an image are in
    /// [`Image::ovmf_problems`] and [`Image::seabios_problems`].
    pub fn parse(data: &[u8]) -> Result<Rom, Error> {
        let b = Bytes::new(data, "");
        let sig = b.u16(0, "option ROM signature")?;
        if sig != 0xAA55 {
            return Err(malformed(
                b.at(0),
                format!("invalid PCI ROM header signature: expecting 0xaa55, got 0x{sig:04x}"),
            ));
        }
        let mut images = Vec::new();
        let mut notes = Vec::new();
        let mut offset = 0usize;
        loop {
            let image = parse_image(data, images.len(), offset)?;
            let next = offset + image.length;
            let last = image.pcir.is_last();
            let index = image.index;
            images.push(image);
            if last {
                if next < data.len() {
                    notes.push(format!(
                        "{:#x} bytes follow the last image (from offset {next:#x}); firmware ignores them",
                        data.len() - next
                    ));
                }
                break;
            }
            if data.len() - next.min(data.len()) < UNIT {
                return Err(Error::Truncated {
                    at: b.at(next),
                    what: format!("image {} (image {index} has no last-image bit)", index + 1),
                    need: UNIT,
                    have: data.len().saturating_sub(next),
                });
            }
            if data.get(next..next + 2) != Some(&[0x55, 0xAA][..]) {
                notes.push(format!(
                    "image {index} has no last-image bit but offset {next:#x} holds no 55 AA signature; \
                     {:#x} bytes from there are not an image",
                    data.len() - next
                ));
                break;
            }
            if images.len() >= MAX_IMAGES {
                return Err(Error::Limit {
                    at: b.at(next),
                    what: "number of images".into(),
                    limit: MAX_IMAGES,
                });
            }
            offset = next;
        }
        Ok(Rom {
            images,
            size: data.len(),
            notes,
        })
    }

    /// What OVMF and SeaBIOS do with this ROM, for a device (`(vendor, device)`) or in general.
    pub fn verdict(&self, device: Option<(u16, u16)>) -> Verdict {
        let mut notes = Vec::new();
        let efi: Vec<usize> = self
            .images
            .iter()
            .filter(|i| i.is_efi() && i.ovmf_problems.is_empty())
            .map(|i| i.index)
            .collect();
        let ovmf = if efi.is_empty() {
            let reasons: Vec<String> = self
                .images
                .iter()
                .map(|i| {
                    if i.is_efi() {
                        format!("image {}: {}", i.index, i.ovmf_problems.join("; "))
                    } else {
                        format!(
                            "image {}: {} code, OVMF loads only EFI images",
                            i.index,
                            code_type_name(i.pcir.code_type)
                        )
                    }
                })
                .collect();
            Load::Not {
                reason: format!("no image OVMF would load ({})", reasons.join("; ")),
            }
        } else {
            Load::Loads {
                images: efi.clone(),
            }
        };
        for i in self.images.iter().filter(|i| i.is_efi()) {
            if let Some((v, d)) = device
                && !i.matches(v, d)
            {
                notes.push(format!(
                    "image {}: PCIR ids {:04x}:{:04x} differ from {v:04x}:{d:04x}; OVMF does not compare them \
                     (EfiRom writes the ids it is given)",
                    i.index, i.pcir.vendor, i.pcir.device
                ));
            }
            if i.pcir.class_code == 0 {
                notes.push(format!(
                    "image {}: class code 000000 (EfiRom's default); firmware ignores it",
                    i.index
                ));
            }
        }
        let seabios = match device {
            Some((v, d)) => {
                match self.images.iter().find(|i| {
                    i.pcir.code_type == CODE_TYPE_X86 && i.pcir.vendor == v && i.pcir.device == d
                }) {
                    None => Load::Not {
                        reason: format!(
                            "no legacy x86 image with PCIR ids {v:04x}:{d:04x} (SeaBIOS compares vendor and device id)"
                        ),
                    },
                    Some(i) if !i.seabios_problems.is_empty() => Load::Not {
                        reason: format!("image {}: {}", i.index, i.seabios_problems.join("; ")),
                    },
                    Some(i) => Load::Loads {
                        images: vec![i.index],
                    },
                }
            }
            None => {
                let good: Vec<usize> = self
                    .images
                    .iter()
                    .filter(|i| i.pcir.code_type == CODE_TYPE_X86 && i.seabios_problems.is_empty())
                    .map(|i| i.index)
                    .collect();
                if good.is_empty() {
                    Load::Not {
                        reason: "no legacy x86 image with a good checksum".into(),
                    }
                } else {
                    notes.push(
                        "SeaBIOS runs a legacy image only when its PCIR vendor and device id match the device: \
                         pass a device to check that"
                            .into(),
                    );
                    Load::Loads { images: good }
                }
            }
        };
        notes.extend(self.notes.iter().cloned());
        Verdict {
            ovmf,
            seabios,
            notes,
        }
    }
}

impl Image {
    /// Whether this is an EFI image (code type 3).
    pub fn is_efi(&self) -> bool {
        self.pcir.code_type == CODE_TYPE_EFI
    }

    /// Whether the PCIR names this vendor and device (device id or PCI 3.0 device list).
    pub fn matches(&self, vendor: u16, device: u16) -> bool {
        self.pcir.vendor == vendor
            && (self.pcir.device == device || self.pcir.device_list.contains(&device))
    }
}

/// Whether a firmware would load something from the ROM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Load {
    /// It would load these images (indexes).
    Loads {
        /// Image indexes.
        images: Vec<usize>,
    },
    /// It would load nothing, and why.
    Not {
        /// Why.
        reason: String,
    },
}

impl Load {
    /// Whether something would load.
    pub fn loads(&self) -> bool {
        matches!(self, Load::Loads { .. })
    }
}

/// `loads image 0`, `loads images 0, 2`, `loads nothing: <reason>`.
impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Load::Loads { images } => {
                let s = if images.len() == 1 { "" } else { "s" };
                let list: Vec<String> = images.iter().map(usize::to_string).collect();
                write!(f, "loads image{s} {}", list.join(", "))
            }
            Load::Not { reason } => write!(f, "loads nothing: {reason}"),
        }
    }
}

/// The verdict on a ROM: OVMF, SeaBIOS, and informational notes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// OVMF (EDK2 PciBusDxe): every EFI image with signature 0x0EF1, a boot-services or runtime
    /// driver for X64, sizes in range, compression 0 or 1, and a PE header that agrees.
    pub ovmf: Load,
    /// SeaBIOS: the first legacy x86 image whose PCIR vendor and device match, with checksum 0.
    pub seabios: Load,
    /// Facts that change nothing for firmware (ids OVMF ignores, class 000000, padding).
    pub notes: Vec<String>,
}

/// Whether OVMF would load an image of `bytes` for the device `vendor:device`: `Ok` when it would,
/// `Err` with the reason (a parse error or the OVMF verdict) otherwise.
pub fn check_romfile(bytes: &[u8], vendor: u16, device: u16) -> Result<(), String> {
    let rom = Rom::parse(bytes).map_err(|e| e.to_string())?;
    match rom.verdict(Some((vendor, device))).ovmf {
        Load::Loads { .. } => Ok(()),
        Load::Not { reason } => Err(reason),
    }
}

fn parse_image(data: &[u8], index: usize, offset: usize) -> Result<Image, Error> {
    let b = Bytes::new(data, "");
    let head = b.slice(offset, 0x1A, &format!("image {index} header"))?;
    let pcir_offset = u16::from_le_bytes([head[0x18], head[0x19]]);
    let mut ovmf_problems = Vec::new();
    let mut seabios_problems = Vec::new();
    if pcir_offset == 0 {
        return Err(malformed(
            b.at(offset + 0x18),
            format!("image {index}: PCIR offset is 0"),
        ));
    }
    if !pcir_offset.is_multiple_of(4) {
        ovmf_problems.push(format!(
            "PCIR offset {pcir_offset:#x} is not DWORD-aligned: EDK2 stops reading the ROM here"
        ));
    }
    let p = offset + pcir_offset as usize;
    let sig = b.slice(p, 4, &format!("image {index} PCIR"))?;
    if sig != b"PCIR" {
        return Err(malformed(
            b.at(p),
            format!(
                "image {index}: invalid PCIR signature {:?}",
                String::from_utf8_lossy(sig)
            ),
        ));
    }
    let pcir_bytes = b.slice(p, 0x18, &format!("image {index} PCIR"))?;
    let r16 = |o: usize| u16::from_le_bytes([pcir_bytes[o], pcir_bytes[o + 1]]);
    let length = r16(0x0A);
    let revision = pcir_bytes[0x0C];
    let class_code = u32::from(pcir_bytes[0x0D])
        | u32::from(pcir_bytes[0x0E]) << 8
        | u32::from(pcir_bytes[0x0F]) << 16;
    let image_length = r16(0x10);
    let mut pcir = Pcir {
        vendor: r16(0x04),
        device: r16(0x06),
        device_list: Vec::new(),
        length,
        revision,
        class_code,
        image_length,
        code_revision: r16(0x12),
        code_type: pcir_bytes[0x14],
        indicator: pcir_bytes[0x15],
    };
    if image_length == 0 {
        return Err(malformed(
            b.at(p + 0x10),
            format!("image {index}: image length 0; walking by it would loop on this image"),
        ));
    }
    let len = image_length as usize * UNIT;
    if offset + len > data.len() {
        return Err(Error::Truncated {
            at: b.at(offset),
            what: format!("image {index} ({image_length} × 512 bytes by its PCIR)"),
            need: len,
            have: data.len() - offset,
        });
    }
    let pcir_len = (length as usize).max(0x18);
    if pcir_offset as usize + pcir_len > len {
        return Err(malformed(
            b.at(p),
            format!(
                "image {index}: PCIR ({pcir_len:#x} bytes at {pcir_offset:#x}) runs past the image end ({len:#x}); \
                 it would overlap the next image"
            ),
        ));
    }
    let image = &data[offset..offset + len];
    let ib = Bytes::new(image, "");
    // PCI 3.0 device list.
    if revision >= 3 && length >= 0x1C {
        let list = r16(0x08) as usize;
        if list != 0 {
            let mut at = pcir_offset as usize + list;
            loop {
                let id = ib.u16(at, &format!("image {index} device list")).map_err(|_| {
                    malformed(
                        b.at(offset + pcir_offset as usize + list),
                        format!("image {index}: PCI 3.0 device list has no 0 terminator inside the image"),
                    )
                })?;
                if id == 0 {
                    break;
                }
                pcir.device_list.push(id);
                at += 2;
            }
        }
    }
    let header = match pcir.code_type {
        CODE_TYPE_X86 => {
            let init_size = image[2] as usize * UNIT;
            let range = init_size.min(len);
            let checksum = image[..range].iter().fold(0u8, |a, &x| a.wrapping_add(x));
            if init_size == 0 {
                seabios_problems.push("initialization size (header byte 2) is 0".into());
            } else if init_size > len {
                seabios_problems.push(format!(
                    "initialization size {init_size:#x} is larger than the image ({len:#x})"
                ));
            } else if checksum != 0 {
                seabios_problems.push(format!(
                    "checksum of the first {init_size:#x} bytes is {checksum:#04x}, not 0 (SeaBIOS enforces it)"
                ));
            }
            Header::Legacy {
                init_size,
                checksum,
            }
        }
        CODE_TYPE_EFI => efi_header(image, &mut ovmf_problems),
        _ => Header::Other,
    };
    let label = label(image, &header);
    Ok(Image {
        index,
        offset,
        length: len,
        pcir_offset,
        pcir,
        header,
        label,
        ovmf_problems,
        seabios_problems,
    })
}

fn efi_header(image: &[u8], problems: &mut Vec<String>) -> Header {
    let r16 = |o: usize| u16::from_le_bytes([image[o], image[o + 1]]);
    let init_size = r16(0x02) as usize * UNIT;
    let signature = u32::from_le_bytes([image[4], image[5], image[6], image[7]]);
    let sub = r16(0x08);
    let mach = r16(0x0A);
    let compression = r16(0x0C);
    let pe_offset = r16(0x16);
    if signature != EFI_SIGNATURE {
        problems.push(format!("EFI signature {signature:#x}, not 0xef1"));
    }
    if sub != subsystem::BOOT_SERVICE_DRIVER && sub != subsystem::RUNTIME_DRIVER {
        problems.push(format!(
            "subsystem {} ({sub:#x}); OVMF loads boot-services (0xb) and runtime (0xc) drivers",
            subsystem_name(sub)
        ));
    }
    if mach != machine::X64 {
        problems.push(format!(
            "machine {} ({mach:#06x}); OVMF x64 loads X64 (0x8664) images",
            machine_name(mach)
        ));
    }
    if compression > 1 {
        problems.push(format!(
            "compression type {compression} is reserved; EDK2 skips the image"
        ));
    }
    if init_size == 0 || init_size > image.len() {
        problems.push(format!(
            "initialization size {init_size:#x} is 0 or larger than the image ({:#x})",
            image.len()
        ));
    }
    let init = init_size.min(image.len());
    if pe_offset as usize >= init {
        problems.push(format!(
            "PE offset {pe_offset:#x} is not inside the initialization size ({init:#x})"
        ));
    }
    let body = image.get(pe_offset as usize..init).unwrap_or(&[]);
    let pe = match compression {
        0 => pe_info(body),
        1 => crate::decompress::efi_either(
            body,
            DECOMPRESS_LIMIT,
            &format!("PE offset {pe_offset:#x}"),
            |v| pe_info(v).is_ok(),
        )
        .map_err(|e| e.to_string())
        .and_then(|plain| pe_info(&plain).map_err(|e| format!("after EFI decompression: {e}"))),
        _ => Err("compressed with a reserved type".into()),
    };
    match &pe {
        Err(e) => problems.push(format!("PE image at {pe_offset:#x}: {e}")),
        Ok(info) => {
            if info.machine != mach {
                problems.push(format!(
                    "PE machine {:#06x} disagrees with the ROM header's {mach:#06x}",
                    info.machine
                ));
            }
            if info.subsystem != sub {
                problems.push(format!(
                    "PE subsystem {:#x} disagrees with the ROM header's {sub:#x}",
                    info.subsystem
                ));
            }
        }
    }
    Header::Efi {
        init_size,
        signature,
        subsystem: sub,
        machine: mach,
        compression,
        pe_offset,
        pe,
    }
}

/// Labels an image by content: the Intel GOP by its UTF-16 name, a legacy Intel VBIOS by `$VBT`,
/// VfioIgdPkg's drivers by their names.
pub(crate) fn label(image: &[u8], header: &Header) -> Option<String> {
    match header {
        Header::Efi { compression: 0, .. } => label_pe(image),
        Header::Legacy { .. } => {
            if find(image, b"$VBT").is_some() {
                let intel = find(image, b"Intel").is_some();
                Some(
                    if intel {
                        "Intel legacy VBIOS (with VBT)"
                    } else {
                        "legacy VBIOS (with VBT)"
                    }
                    .into(),
                )
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Labels an EFI driver by the strings it carries.
pub(crate) fn label_pe(pe: &[u8]) -> Option<String> {
    if let Some(at) = find(pe, &utf16("Intel(R) GOP Driver")) {
        return Some(utf16_at(pe, at));
    }
    for name in ["IgdAssignmentDxe", "PlatformGopPolicy"] {
        if find(pe, name.as_bytes()).is_some() || find(pe, &utf16(name)).is_some() {
            return Some(name.into());
        }
    }
    None
}

/// The lines awilliam's `rom-parser` prints for the same file, and its exit status (0, or 1 where
/// it returns -1). It scans for `55 AA` in 512-byte steps and does no bounds checks; here reads
/// past the end print `Error, ran off the end` instead of reading garbage.
pub fn rom_parser_lines(data: &[u8]) -> (Vec<String>, i32) {
    let mut out = Vec::new();
    let mut offset = 0usize;
    loop {
        if offset >= data.len() {
            out.push("Error, ran off the end".into());
            return (out, 1);
        }
        if data.get(offset..offset + 2) != Some(&[0x55, 0xAA][..]) {
            offset += UNIT;
            continue;
        }
        let Some(pcir_offset) = crate::bytes::le16(data, offset + 0x18) else {
            out.push("Error, ran off the end".into());
            return (out, 1);
        };
        out.push(format!(
            "Valid ROM signature found @{offset:x}h, PCIR offset {pcir_offset:x}h"
        ));
        let p = offset + pcir_offset as usize;
        let Some(pcir) = data.get(p..p + 0x18) else {
            out.push("Error, ran off the end".into());
            return (out, 1);
        };
        if &pcir[..4] != b"PCIR" {
            let c: String = pcir[..4].iter().map(|&b| b as char).collect();
            out.push(format!("Invalid PCIR signature: {c}"));
            return (out, 1);
        }
        let r16 = |o: usize| u16::from_le_bytes([pcir[o], pcir[o + 1]]);
        let code_type = pcir[0x14];
        let type_name = match code_type {
            0 => " (x86 PC-AT)",
            3 => " (EFI)",
            _ => "",
        };
        out.push(format!(
            "\tPCIR: type {code_type:x}{type_name}, vendor: {:04x}, device: {:04x}, class: {:02x}{:02x}{:02x}",
            r16(4),
            r16(6),
            pcir[0x0F],
            pcir[0x0E],
            pcir[0x0D]
        ));
        out.push(format!(
            "\tPCIR: revision {:x}, vendor revision: {:x}",
            pcir[0x0C],
            r16(0x12)
        ));
        if code_type == 3 {
            match data.get(offset..offset + 0x0C) {
                Some(h) => {
                    let sig = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
                    if sig != EFI_SIGNATURE {
                        out.push("\t\tEFI: Signature NOT Valid".into());
                    } else {
                        let sub = u16::from_le_bytes([h[8], h[9]]);
                        let mach = u16::from_le_bytes([h[10], h[11]]);
                        let sub = match sub {
                            0xB => "Boot".to_string(),
                            0xC => "Runtime".to_string(),
                            other => format!("Unknown ({other:x})"),
                        };
                        out.push(format!(
                            "\t\tEFI: Signature Valid, Subsystem: {sub}, Machine: {}",
                            machine_name(mach)
                        ));
                    }
                }
                None => {
                    out.push("Error, ran off the end".into());
                    return (out, 1);
                }
            }
        }
        if pcir[0x15] == 0 {
            offset += UNIT;
            continue;
        }
        out.push("\tLast image".into());
        return (out, 0);
    }
}
