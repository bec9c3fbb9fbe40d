//! Reports as lines of text, for people: what a tool prints for a ROM, a firmware volume, the
//! graphics binaries of a firmware image. Each function returns the lines without newlines.

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
}
