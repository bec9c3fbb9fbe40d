//! Building option ROMs from EFI drivers and legacy images, byte for byte as EDK2's `EfiRom`.

use crate::error::Error;
use crate::ids::{parse_class_code, parse_hex16};
use crate::pe::pe_info;
use crate::rom::{CODE_TYPE_EFI, UNIT};

/// EfiRom's `MAX_OPTION_ROM_SIZE`.
pub const MAX_ROM_SIZE: usize = 16 << 20;

/// What `EfiRom -f … -i … [-l …] [-r …] [-n] [-p]` is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// PCIR vendor id (`-f`).
    pub vendor: u16,
    /// PCIR device ids (`-i`): the first goes in the PCIR, more than one makes a PCI 3.0 device
    /// list. 0 is refused (it terminates the list).
    pub devices: Vec<u16>,
    /// PCIR class code (`-l`), EfiRom's default 0x000000.
    pub class_code: u32,
    /// PCIR code revision (`-r`), default 0.
    pub code_revision: u16,
    /// Leave the last-image bit off the final image (`-n`).
    pub no_last: bool,
    /// Write PCI 2.3 data structures (`-p`) instead of PCI 3.0.
    pub pci23: bool,
}

impl BuildOptions {
    /// Options for one vendor and device, everything else EfiRom's default.
    pub fn new(vendor: u16, device: u16) -> BuildOptions {
        BuildOptions {
            vendor,
            devices: vec![device],
            class_code: 0,
            code_revision: 0,
            no_last: false,
            pci23: false,
        }
    }

    /// Options from ids as typed, in hex (`8086`, `0x3e92`; see [`crate::parse_hex16`]): the
    /// vendor, the device ids, the class code (default 000000) and code revision (default 0).
    /// `no_last` and `pci23` are off. The first id that does not parse is the error.
    pub fn parse<S: AsRef<str>>(
        vendor: &str,
        devices: &[S],
        class_code: Option<&str>,
        code_revision: Option<&str>,
    ) -> Result<BuildOptions, Error> {
        Ok(BuildOptions {
            vendor: parse_hex16(vendor, "vendor id")?,
            devices: devices
                .iter()
                .map(|d| parse_hex16(d.as_ref(), "device id"))
                .collect::<Result<_, _>>()?,
            class_code: class_code.map(parse_class_code).transpose()?.unwrap_or(0),
            code_revision: code_revision
                .map(|r| parse_hex16(r, "code revision"))
                .transpose()?
                .unwrap_or(0),
            no_last: false,
            pci23: false,
        })
    }
}

/// One input file of a build, in ROM order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An EFI driver (`-e FILE`): a PE32/PE32+ image, stored uncompressed.
    Efi {
        /// Name for messages (the file name).
        name: String,
        /// The `.efi` file.
        bytes: Vec<u8>,
    },
    /// A legacy option ROM image (`-b FILE`): `55 AA`, PCIR; its image length, last-image bit
    /// and (for non-EFI code) checksum are rewritten.
    Legacy {
        /// Name for messages.
        name: String,
        /// The image.
        bytes: Vec<u8>,
    },
}

impl Input {
    /// An input told apart by content, as EfiRom's `-e`/`-b` would be chosen: `MZ` is an EFI
    /// driver, `55 AA` a legacy image; anything else is an error naming `name`.
    pub fn from_bytes(name: String, bytes: Vec<u8>) -> Result<Input, Error> {
        match bytes.get(..2) {
            Some(b"MZ") => Ok(Input::Efi { name, bytes }),
            Some([0x55, 0xAA]) => Ok(Input::Legacy { name, bytes }),
            _ => Err(Error::Input(format!(
                "{name}: neither an EFI driver (MZ) nor a legacy option ROM (55 AA)"
            ))),
        }
    }

    fn name(&self) -> &str {
        match self {
            Input::Efi { name, .. } | Input::Legacy { name, .. } => name,
        }
    }
}

fn round_up(n: usize) -> usize {
    n.div_ceil(UNIT) * UNIT
}

/// Builds a ROM from the inputs, in order, the way EfiRom does (uncompressed: `-e`, never `-ec`).
/// For an EFI driver: a 0x1A-byte EFI ROM header, 2 zero bytes, the PCIR at 0x1C (0x1C bytes in
/// PCI 3.0, 0x18 in 2.3), the device list when there is more than one id, 0xFF padding so that the
/// PE ends exactly at the 512-byte-rounded image end, then the PE. For a legacy image: the file,
/// its PCIR image length and indicator patched, its last byte set so that the file sums to 0 (EfiRom
/// does exactly this; the header's size byte is left as it is), then 0xFF padding.
pub fn build(options: &BuildOptions, inputs: &[Input]) -> Result<Vec<u8>, Error> {
    if inputs.is_empty() {
        return Err(Error::Input("no input files".into()));
    }
    let has_efi = inputs.iter().any(|i| matches!(i, Input::Efi { .. }));
    if has_efi && options.devices.is_empty() {
        return Err(Error::Input(
            "a device id is required for EFI drivers (EfiRom -i)".into(),
        ));
    }
    if options.devices.contains(&0) {
        return Err(Error::Input(
            "device id 0 is not allowed: it terminates the device list".into(),
        ));
    }
    if options.devices.len() > 1 && options.pci23 {
        return Err(Error::Input(
            "more than one device id needs PCI 3.0 data structures (not --pci23)".into(),
        ));
    }
    if options.class_code > 0xFF_FFFF {
        return Err(Error::Input(format!(
            "class code {:#x} is wider than 24 bits",
            options.class_code
        )));
    }
    let mut rom = Vec::new();
    for (n, input) in inputs.iter().enumerate() {
        let last = n + 1 == inputs.len() && !options.no_last;
        let image = match input {
            Input::Efi { bytes, .. } => efi_image(options, bytes, last),
            Input::Legacy { bytes, .. } => legacy_image(bytes, last),
        }
        .map_err(|e| Error::Input(format!("input {n} ({}): {e}", input.name())))?;
        if rom.len() + image.len() > MAX_ROM_SIZE {
            return Err(Error::Limit {
                at: format!("input {n} ({})", input.name()),
                what: "option ROM".into(),
                limit: MAX_ROM_SIZE,
            });
        }
        rom.extend_from_slice(&image);
    }
    Ok(rom)
}

fn efi_image(o: &BuildOptions, pe: &[u8], last: bool) -> Result<Vec<u8>, String> {
    let info = pe_info(pe)?;
    let pcir_len = if o.pci23 { 0x18 } else { 0x1C };
    let list_len = if o.devices.len() > 1 {
        (o.devices.len() + 1) * 2
    } else {
        0
    };
    let header_size = 0x1A + 2 + pcir_len + list_len;
    let total = round_up(header_size + pe.len());
    let blocks = total / UNIT;
    if blocks > u16::MAX as usize {
        return Err(format!(
            "{} bytes do not fit one option ROM image",
            pe.len()
        ));
    }
    let pad = total - header_size - pe.len();
    let pe_offset = header_size + pad;
    if pe_offset > u16::MAX as usize {
        return Err("the PE image would start past offset 0xffff".into());
    }
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&0xAA55u16.to_le_bytes());
    out.extend_from_slice(&(blocks as u16).to_le_bytes());
    out.extend_from_slice(&crate::rom::EFI_SIGNATURE.to_le_bytes());
    out.extend_from_slice(&info.subsystem.to_le_bytes());
    out.extend_from_slice(&info.machine.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // CompressionType
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&(pe_offset as u16).to_le_bytes());
    out.extend_from_slice(&0x1Cu16.to_le_bytes()); // PcirOffset
    out.extend_from_slice(&[0, 0]);
    pcir(&mut out, o, blocks as u16, CODE_TYPE_EFI, last);
    if o.devices.len() > 1 {
        for d in &o.devices {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&[0, 0]);
    }
    out.resize(out.len() + pad, 0xFF);
    out.extend_from_slice(pe);
    Ok(out)
}

fn pcir(out: &mut Vec<u8>, o: &BuildOptions, blocks: u16, code_type: u8, last: bool) {
    out.extend_from_slice(b"PCIR");
    out.extend_from_slice(&o.vendor.to_le_bytes());
    out.extend_from_slice(&o.devices[0].to_le_bytes());
    let list = if o.devices.len() > 1 { 0x1Cu16 } else { 0 };
    out.extend_from_slice(&if o.pci23 { 0u16 } else { list }.to_le_bytes());
    out.extend_from_slice(&(if o.pci23 { 0x18u16 } else { 0x1C }).to_le_bytes());
    out.push(if o.pci23 { 0 } else { 3 });
    out.extend_from_slice(&o.class_code.to_le_bytes()[..3]);
    out.extend_from_slice(&blocks.to_le_bytes());
    out.extend_from_slice(&o.code_revision.to_le_bytes());
    out.push(code_type);
    out.push(if last { 0x80 } else { 0 });
    out.extend_from_slice(&[0, 0]); // Reserved1 / MaxRuntimeImageLength
    if !o.pci23 {
        out.extend_from_slice(&[0, 0, 0, 0]); // ConfigUtilityCodeHeaderOffset, DMTFCLPEntryPointOffset
    }
}

fn legacy_image(file: &[u8], last: bool) -> Result<Vec<u8>, String> {
    if file.get(..2) != Some(&[0x55, 0xAA][..]) {
        return Err("no 55 AA option ROM signature at offset 0".into());
    }
    let p =
        crate::bytes::le16(file, 0x18).ok_or("file ends before the PCIR offset (0x18)")? as usize;
    if p == 0 || p > file.len() || file.get(p..p + 4) != Some(b"PCIR") || p + 0x18 > file.len() {
        return Err(format!("no PCIR data structure at {p:#x}"));
    }
    let total = round_up(file.len());
    let blocks = total / UNIT;
    if blocks > u16::MAX as usize {
        return Err(format!(
            "{} bytes do not fit one option ROM image",
            file.len()
        ));
    }
    let mut out = file.to_vec();
    out[p + 0x10..p + 0x12].copy_from_slice(&(blocks as u16).to_le_bytes());
    out[p + 0x15] = if last { 0x80 } else { 0 };
    if out[p + 0x14] != CODE_TYPE_EFI {
        let n = out.len();
        let sum = out[..n - 1].iter().fold(0u8, |a, &b| a.wrapping_add(b));
        out[n - 1] = sum.wrapping_neg();
    }
    out.resize(total, 0xFF);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_ids_in_order_with_efirom_defaults() {
        let o = BuildOptions::parse("8086", &["0x3e92", "3E91"], None, None).unwrap();
        assert_eq!(
            o,
            BuildOptions {
                devices: vec![0x3e92, 0x3e91],
                ..BuildOptions::new(0x8086, 0x3e92)
            }
        );
        let o = BuildOptions::parse("8086", &["3e92"], Some("030000"), Some("0x12")).unwrap();
        assert_eq!((o.class_code, o.code_revision), (0x030000, 0x12));
        // The vendor is read first, the revision last.
        let e = BuildOptions::parse("xyz", &["zz"], Some("zz"), Some("zz")).unwrap_err();
        assert_eq!(e.to_string(), r#"invalid vendor id "xyz": expected hex"#);
        let e = BuildOptions::parse("8086", &["3e92", "zz"], Some("zz"), None).unwrap_err();
        assert_eq!(e.to_string(), r#"invalid device id "zz": expected hex"#);
        let e = BuildOptions::parse("8086", &["3e92"], Some("zz"), Some("zz")).unwrap_err();
        assert_eq!(e.to_string(), r#"invalid class code "zz": expected hex"#);
        let e = BuildOptions::parse::<&str>("8086", &[], None, Some("1g")).unwrap_err();
        assert_eq!(e.to_string(), r#"invalid code revision "1g": expected hex"#);
    }

    #[test]
    fn inputs_are_told_apart_by_their_first_two_bytes() {
        let efi = Input::from_bytes("a.efi".into(), b"MZ..".to_vec()).unwrap();
        assert!(matches!(efi, Input::Efi { ref name, .. } if name == "a.efi"));
        let legacy = Input::from_bytes("b.rom".into(), vec![0x55, 0xAA, 1]).unwrap();
        assert!(matches!(legacy, Input::Legacy { .. }));
        for bad in [&b""[..], b"M", b"\x55\xab", b"hello"] {
            let e = Input::from_bytes("x".into(), bad.to_vec()).unwrap_err();
            assert_eq!(
                e.to_string(),
                "x: neither an EFI driver (MZ) nor a legacy option ROM (55 AA)"
            );
        }
    }
}
