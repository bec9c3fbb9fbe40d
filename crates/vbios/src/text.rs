//! Reports as lines of text, for people: what a tool prints for a ROM, a firmware volume, the
//! graphics binaries of a firmware image. Each function returns the lines without newlines.

use crate::extract::{Graphics, Listing, Part};
use crate::firmware::{Volume, file_type_name};
use crate::rom::{Header, Rom, Verdict, code_type_name};

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A ROM and its verdict: a summary line naming `name` (the file), a line per image with its
/// header and content, its problems, then what OVMF and SeaBIOS load (for `device` when given)
/// and the verdict's notes.
pub fn rom(name: &str, rom: &Rom, verdict: &Verdict, device: Option<(u16, u16)>) -> Vec<String> {
    let n = rom.images.len();
    let mut out = vec![format!(
        "{name}: {} bytes, {n} image{}",
        rom.size,
        plural(n)
    )];
    for i in &rom.images {
        let p = &i.pcir;
        let list = if p.device_list.is_empty() {
            String::new()
        } else {
            let ids: Vec<String> = p.device_list.iter().map(|d| format!("{d:04x}")).collect();
            format!(" (list {})", ids.join(" "))
        };
        out.push(format!(
            "image {} @{:#x}: {} bytes, {} ({}), PCIR {:04x}:{:04x}{list} class {:06x} rev {}{}",
            i.index,
            i.offset,
            i.length,
            code_type_name(p.code_type),
            p.code_type,
            p.vendor,
            p.device,
            p.class_code,
            p.revision,
            if p.is_last() { ", last" } else { "" }
        ));
        match &i.header {
            Header::Legacy {
                init_size,
                checksum,
            } => out.push(format!(
                "  legacy: init size {init_size:#x}, checksum {checksum:#04x}"
            )),
            Header::Efi {
                machine,
                subsystem,
                compression,
                pe_offset,
                ..
            } => out.push(format!(
                "  EFI: {} {} driver, compression {compression}, PE at {pe_offset:#x}",
                crate::pe::machine_name(*machine),
                crate::pe::subsystem_name(*subsystem)
            )),
            Header::Other => {}
        }
        if let Some(l) = &i.label {
            out.push(format!("  content: {l}"));
        }
        for pr in i.ovmf_problems.iter().chain(&i.seabios_problems) {
            out.push(format!("  problem: {pr}"));
        }
    }
    let target = device
        .map(|(v, d)| format!(" for {v:04x}:{d:04x}"))
        .unwrap_or_default();
    out.push(format!("OVMF{target}: {}", verdict.ovmf));
    out.push(format!("SeaBIOS{target}: {}", verdict.seabios));
    out.extend(verdict.notes.iter().map(|n| format!("note: {n}")));
    out
}

/// A firmware volume at nesting `depth` (two spaces each): its location, length and file
/// system, then a line per file (GUID, type, UI name, size, PE32 size), each followed by the
/// volumes nested in the file, two levels deeper.
pub fn volume(v: &Volume, depth: usize) -> Vec<String> {
    let pad = "  ".repeat(depth);
    let name = v.name.map(|n| format!(", name {n}")).unwrap_or_default();
    let mut out = vec![format!(
        "{pad}volume {}: {:#x} bytes, file system {}{name}",
        v.location, v.length, v.file_system
    )];
    for f in &v.files {
        let pe32 = f.pe32().map(|p| format!("  PE32 {} bytes", p.len()));
        out.push(format!(
            "{pad}  {} {:<16} {:<24} {:>8}{}",
            f.name,
            file_type_name(f.file_type),
            f.ui_name().unwrap_or_default(),
            f.size,
            pe32.unwrap_or_default()
        ));
        for nested in f.volumes() {
            out.extend(volume(nested, depth + 2));
        }
    }
    out
}

/// A firmware listing: every volume as [`volume`] shows it, then `error: …` for each error.
pub fn listing(l: &Listing) -> Vec<String> {
    let mut out: Vec<String> = l.volumes.iter().flat_map(|v| volume(v, 0)).collect();
    out.extend(l.errors.iter().map(|e| format!("error: {e}")));
    out
}

fn label(p: &Part) -> String {
    p.label
        .as_deref()
        .map(|l| format!(" [{l}]"))
        .unwrap_or_default()
}

/// The GOP a ROM is built from: `GOP: <size> bytes from file <GUID> [<label>]`.
pub fn gop(p: &Part) -> String {
    format!("GOP: {} bytes from file {}{}", p.size, p.file, label(p))
}

/// Every GOP, VBT and VBIOS found, best first (the others marked `(also)`), with where it is and
/// how it was identified; `<kind>: not found` for a kind with none.
pub fn graphics(g: &Graphics) -> Vec<String> {
    let mut out = Vec::new();
    for (list, what) in [(&g.gop, "GOP"), (&g.vbt, "VBT"), (&g.vbios, "VBIOS")] {
        if list.is_empty() {
            out.push(format!("{what}: not found"));
        }
        for (n, p) in list.iter().enumerate() {
            out.push(format!(
                "{what}{}: {} bytes from file {} at {}{}; by {}",
                if n == 0 { "" } else { " (also)" },
                p.size,
                p.file,
                p.location,
                label(p),
                p.identified_by.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rom::Load;

    #[test]
    fn a_rom_reads_as_a_summary_images_and_verdicts() {
        // A legacy image for 8086:3e92, class 030000, last, checksum 0.
        let mut r = vec![0u8; 1024];
        r[..3].copy_from_slice(&[0x55, 0xAA, 2]);
        r[0x18] = 0x40;
        r[0x40..0x44].copy_from_slice(b"PCIR");
        r[0x44..0x48].copy_from_slice(&[0x86, 0x80, 0x92, 0x3e]);
        r[0x4A] = 0x18;
        r[0x4F] = 0x03;
        r[0x50] = 2;
        r[0x55] = 0x80;
        let sum = r.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        r[1023] = sum.wrapping_neg();
        let parsed = Rom::parse(&r).unwrap();
        let verdict = parsed.verdict(Some((0x8086, 0x3e92)));
        let lines = rom("vga.rom", &parsed, &verdict, Some((0x8086, 0x3e92)));
        assert_eq!(lines[0], "vga.rom: 1024 bytes, 1 image");
        assert_eq!(
            lines[1],
            "image 0 @0x0: 1024 bytes, x86 PC-AT (0), PCIR 8086:3e92 class 030000 rev 0, last"
        );
        assert_eq!(lines[2], "  legacy: init size 0x400, checksum 0x00");
        assert!(
            lines[3].starts_with("OVMF for 8086:3e92: loads nothing: "),
            "{lines:?}"
        );
        assert_eq!(lines[4], "SeaBIOS for 8086:3e92: loads image 0");
        assert_eq!(lines.len(), 5 + verdict.notes.len());
        // Without a device, the verdict lines name none.
        let verdict = parsed.verdict(None);
        let lines = rom("vga.rom", &parsed, &verdict, None);
        assert!(
            lines.iter().any(|l| l.starts_with("SeaBIOS: ")),
            "{lines:?}"
        );
    }

    #[test]
    fn loads_read_as_the_images_or_the_reason() {
        let images = |v: &[usize]| Load::Loads { images: v.to_vec() };
        assert_eq!(images(&[0]).to_string(), "loads image 0");
        assert_eq!(images(&[0, 2]).to_string(), "loads images 0, 2");
        let not = Load::Not {
            reason: "no EFI image".into(),
        };
        assert_eq!(not.to_string(), "loads nothing: no EFI image");
    }

    fn part(label: Option<&str>, by: &[&str]) -> Part {
        Part {
            file: "5BBA83E6-F027-4CA7-BFD0-16358CC9E123".parse().unwrap(),
            file_name: None,
            location: "offset 0xec".into(),
            identified_by: by.iter().map(|s| s.to_string()).collect(),
            label: label.map(str::to_string),
            bytes: vec![1; 3],
            size: 3,
        }
    }

    #[test]
    fn graphics_read_best_first_and_say_what_is_missing() {
        let g = Graphics {
            gop: vec![
                part(Some("Intel(R) GOP Driver [9.0.1075]"), &["a", "b"]),
                part(None, &["c"]),
            ],
            ..Graphics::default()
        };
        assert_eq!(
            graphics(&g),
            [
                "GOP: 3 bytes from file 5BBA83E6-F027-4CA7-BFD0-16358CC9E123 at offset 0xec [Intel(R) GOP Driver [9.0.1075]]; by a, b",
                "GOP (also): 3 bytes from file 5BBA83E6-F027-4CA7-BFD0-16358CC9E123 at offset 0xec; by c",
                "VBT: not found",
                "VBIOS: not found",
            ]
        );
        assert_eq!(
            gop(&g.gop[0]),
            "GOP: 3 bytes from file 5BBA83E6-F027-4CA7-BFD0-16358CC9E123 [Intel(R) GOP Driver [9.0.1075]]"
        );
        assert_eq!(
            gop(&g.gop[1]),
            "GOP: 3 bytes from file 5BBA83E6-F027-4CA7-BFD0-16358CC9E123"
        );
    }

    #[test]
    fn a_listing_is_its_volumes_then_its_errors() {
        let l = Listing {
            volumes: &[],
            files: Vec::new(),
            errors: vec!["offset 0x8c: bad".into()],
        };
        assert_eq!(listing(&l), ["error: offset 0x8c: bad"]);
    }

    #[test]
    fn an_empty_volume_is_one_line() {
        let v = Volume {
            location: "offset 0x8c".into(),
            length: 0x48,
            file_system: "8C8CE578-8A3D-4F1C-9935-896185C32DD3".parse().unwrap(),
            name: None,
            attributes: 0,
            erase_polarity: true,
            header_length: 0x48,
            revision: 2,
            files: Vec::new(),
            error: None,
        };
        assert_eq!(
            volume(&v, 1),
            ["  volume offset 0x8c: 0x48 bytes, file system 8C8CE578-8A3D-4F1C-9935-896185C32DD3"]
        );
    }
}
