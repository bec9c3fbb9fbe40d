//! Finding the Intel GOP driver, the VBT and the legacy VBIOS in vendor firmware.

use serde::Serialize;

use crate::build::{BuildOptions, Input, build};
use crate::bytes::{find, utf16};
use crate::error::Error;
use crate::firmware::{File, FileState, Volume, file_type_name, volumes};
use crate::guid::{Guid, known};
use crate::rom::{CODE_TYPE_X86, Rom, Verdict, check_romfile, label_pe};

/// One graphics binary found in firmware.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Part {
    /// The FFS file it came from.
    pub file: Guid,
    /// The file's user-interface name, when it has one.
    pub file_name: Option<String>,
    /// Where the bytes are (section location).
    pub location: String,
    /// How it was identified: `GUID 5BBA83E6-… (IntelGopDriver, AMI)`, `content: …`.
    pub identified_by: Vec<String>,
    /// A content label (`Intel(R) GOP Driver [9.0.1075]`, the VBT's signature string).
    pub label: Option<String>,
    /// The bytes (PE32 body, VBT, option ROM).
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// Their length.
    pub size: usize,
}

/// The graphics binaries of a firmware image; each list has the best-identified first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Graphics {
    /// Intel GOP drivers (PE32 images).
    pub gop: Vec<Part>,
    /// Video BIOS Tables (`$VBT…`).
    pub vbt: Vec<Part>,
    /// Legacy Intel VBIOS option ROMs (`55 AA`, PCIR 8086, class 030000, x86 code).
    pub vbios: Vec<Part>,
}

impl Graphics {
    /// The best part of each kind with the file name it gets in a directory: `gop.efi`,
    /// `vbt.bin`, `vbios.rom`, in that order, for the kinds that were found.
    pub fn files(&self) -> Vec<(&'static str, &Part)> {
        [
            ("gop.efi", &self.gop),
            ("vbt.bin", &self.vbt),
            ("vbios.rom", &self.vbios),
        ]
        .into_iter()
        .filter_map(|(name, list)| list.first().map(|p| (name, p)))
        .collect()
    }
}

fn guid_reason(g: Guid) -> Option<&'static str> {
    Some(match g {
        x if x == known::GOP_AMI => "IntelGopDriver (AMI)",
        x if x == known::GOP_INTEL => "IntelGopDriver (Intel)",
        x if x == known::GOP_SUBTYPE => "IntelGop subtype",
        x if x == known::VBIOS_AMI => "legacy VBIOS OpROM (AMI)",
        x if x == known::VBT_FREEFORM => "IntelGopVbt",
        x if x == known::VBT_RAW => "VBT (BmpDummyName)",
        _ => return None,
    })
}

/// Reads the VBT signature string (`$VBT SKYLAKE        `).
fn vbt_label(data: &[u8]) -> String {
    let sig = data.get(..20).unwrap_or(data);
    String::from_utf8_lossy(sig)
        .trim_end_matches(['\0', ' '])
        .to_string()
}

/// Whether `data` is a legacy Intel VBIOS: an option ROM whose first image is x86 code for an Intel
/// VGA device.
pub fn is_intel_vbios(data: &[u8]) -> bool {
    Rom::parse(data).is_ok_and(|rom| {
        rom.images.first().is_some_and(|i| {
            i.pcir.code_type == CODE_TYPE_X86
                && i.pcir.vendor == 0x8086
                && i.pcir.class_code >> 8 == 0x0300
        })
    })
}

/// Finds the GOP, VBT and VBIOS in a firmware image, by the known GUIDs and by content. Fails only
/// when the image holds no readable firmware volume.
pub fn extract_graphics(data: &[u8]) -> Result<Graphics, Error> {
    let vols = volumes(data)?;
    Ok(graphics_in(&vols))
}

/// [`extract_graphics`] over volumes already parsed.
pub fn graphics_in(vols: &[Volume]) -> Graphics {
    let mut g = Graphics::default();
    let gop_name = utf16("Intel(R) GOP Driver");
    for v in vols {
        for f in v.all_files() {
            if f.state != FileState::Valid {
                continue;
            }
            let by_file = guid_reason(f.name).map(|r| format!("file GUID {} ({r})", f.name));
            let name = f.ui_name();
            let by_name = name
                .as_deref()
                .filter(|n| *n == "IntelGopDriver")
                .map(|n| format!("UI name {n:?}"));
            let mut blobs: Vec<(&[u8], String, u8, Option<Guid>)> = f
                .leaves()
                .into_iter()
                .map(|s| (s.data.as_slice(), s.location.clone(), s.kind, s.guid))
                .collect();
            if !f.raw.is_empty() {
                blobs.push((f.raw.as_slice(), f.location.clone(), 0x19, None));
            }
            for (bytes, location, kind, sguid) in blobs {
                let by_sub =
                    sguid.and_then(|g| guid_reason(g).map(|r| format!("subtype GUID {g} ({r})")));
                let mut by: Vec<String> = [by_file.clone(), by_name.clone(), by_sub]
                    .into_iter()
                    .flatten()
                    .collect();
                let part = |by: Vec<String>, label: Option<String>| Part {
                    file: f.name,
                    file_name: name.clone(),
                    location: location.clone(),
                    identified_by: by,
                    label,
                    bytes: bytes.to_vec(),
                    size: bytes.len(),
                };
                if bytes.starts_with(b"MZ") && (kind == 0x10 || kind == 0x18 || kind == 0x19) {
                    let content = find(bytes, &gop_name).is_some();
                    let known_gop = f.name == known::GOP_AMI
                        || f.name == known::GOP_INTEL
                        || sguid == Some(known::GOP_SUBTYPE)
                        || by_name.is_some();
                    if content || known_gop {
                        let label = label_pe(bytes);
                        if content {
                            by.push(format!("content: {}", label.clone().unwrap_or_default()));
                        }
                        push(&mut g.gop, part(by, label));
                    }
                } else if bytes.starts_with(b"$VBT") {
                    by.push("content: $VBT signature".into());
                    push(&mut g.vbt, part(by, Some(vbt_label(bytes))));
                } else if bytes.starts_with(&[0x55, 0xAA]) && is_intel_vbios(bytes) {
                    let label = Rom::parse(bytes)
                        .ok()
                        .and_then(|r| r.images.first().and_then(|i| i.label.clone()));
                    by.push("content: 55 AA option ROM, PCIR 8086 class 030000, x86 code".into());
                    push(&mut g.vbios, part(by, label));
                }
            }
        }
    }
    for list in [&mut g.gop, &mut g.vbt, &mut g.vbios] {
        list.sort_by_key(|p| std::cmp::Reverse(p.identified_by.len()));
    }
    g
}

fn push(list: &mut Vec<Part>, part: Part) {
    if let Some(old) = list.iter_mut().find(|p| p.bytes == part.bytes) {
        for b in part.identified_by {
            if !old.identified_by.contains(&b) {
                old.identified_by.push(b);
            }
        }
        return;
    }
    list.push(part);
}

/// The first file named `guid` in the volumes (nested ones included).
pub fn find_file(vols: &[Volume], guid: Guid) -> Option<&File> {
    vols.iter()
        .flat_map(|v| v.all_files())
        .find(|f| f.name == guid)
}

/// A firmware image's files, flat: every FFS file of every volume, nested ones included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing<'a> {
    /// The volumes, as parsed.
    pub volumes: &'a [Volume],
    /// Their files, in order.
    pub files: Vec<FileEntry>,
    /// What stopped the walk of a volume or file, anywhere.
    pub errors: Vec<String>,
}

/// One FFS file of a [`Listing`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// The file's name GUID.
    pub guid: Guid,
    /// `EFI_FV_FILETYPE_*`.
    #[serde(rename = "type")]
    pub file_type: u8,
    /// [`file_type_name`] of it.
    pub type_name: String,
    /// The user-interface name, when there is one.
    pub name: Option<String>,
    /// Size including the header.
    pub size: usize,
    /// Length of the PE32 section, when there is one.
    pub pe32_size: Option<usize>,
    /// Valid, deleted, …
    pub state: FileState,
    /// Where its header starts.
    pub location: String,
}

/// Lists the files of the volumes; the listing's errors are every volume's and file's.
pub fn listing(vols: &[Volume]) -> Listing<'_> {
    let files = vols
        .iter()
        .flat_map(|v| v.all_files())
        .map(|f| FileEntry {
            guid: f.name,
            file_type: f.file_type,
            type_name: file_type_name(f.file_type),
            name: f.ui_name(),
            size: f.size,
            pe32_size: f.pe32().map(<[u8]>::len),
            state: f.state,
            location: f.location.clone(),
        })
        .collect();
    let errors = vols
        .iter()
        .flat_map(|v| v.errors())
        .map(|e| e.to_string())
        .collect();
    Listing {
        volumes: vols,
        files,
        errors,
    }
}

/// The data of one FFS file, and which data it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// `PE32 body`, `raw data` (a file without sections) or `first section`.
    pub what: &'static str,
}

/// The data of the file named `guid`: its PE32 body, else its raw data, else its first leaf
/// section. [`Error::Missing`] when there is no such file or it holds nothing.
pub fn file_body(vols: &[Volume], guid: Guid) -> Result<Body, Error> {
    let Some(file) = find_file(vols, guid) else {
        return Err(Error::Missing(format!("no file {guid} in the firmware")));
    };
    let (bytes, what) = match file.pe32() {
        Some(pe) => (pe.to_vec(), "PE32 body"),
        None if !file.raw.is_empty() => (file.raw.clone(), "raw data"),
        None => match file.leaves().first() {
            Some(s) => (s.data.clone(), "first section"),
            None => {
                return Err(Error::Missing(format!(
                    "file {guid} has no PE32 section or data"
                )));
            }
        },
    };
    Ok(Body { bytes, what })
}

/// What OVMF needs besides the GOP to show a picture on a passed-through Intel iGPU.
pub const GOP_ALONE: &str = "the GOP alone shows no picture in OVMF on a passed-through iGPU: it \
    needs IgdAssignmentDxe and PlatformGopPolicy (VfioIgdPkg) in the same ROM";

/// A ROM built around a GOP driver, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GopRom {
    /// The ROM.
    pub bytes: Vec<u8>,
    /// It, parsed.
    pub rom: Rom,
    /// What OVMF and SeaBIOS would load from it for the device.
    pub verdict: Verdict,
    /// The GOP is the only driver and the device is Intel's: see [`GOP_ALONE`].
    pub gop_alone: bool,
}

/// Builds a ROM for `vendor:device` holding `drivers` (EFI drivers, in order) and then the GOP,
/// and verifies that OVMF would load it: [`Error::Unloadable`] when it would not.
pub fn gop_rom(gop: &Part, vendor: u16, device: u16, drivers: Vec<Input>) -> Result<GopRom, Error> {
    let gop_alone = drivers.is_empty() && vendor == 0x8086;
    let mut inputs = drivers;
    inputs.push(Input::Efi {
        name: format!("GOP from file {}", gop.file),
        bytes: gop.bytes.clone(),
    });
    let bytes = build(&BuildOptions::new(vendor, device), &inputs)?;
    check_romfile(&bytes, vendor, device).map_err(Error::Unloadable)?;
    let rom = Rom::parse(&bytes)?;
    let verdict = rom.verdict(Some((vendor, device)));
    Ok(GopRom {
        bytes,
        rom,
        verdict,
        gop_alone,
    })
}
