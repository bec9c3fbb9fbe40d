//! Checking a ROM file for a device: does it parse, and would the chosen firmware load it.

use crate::error::Error;
use crate::rom::{Rom, Verdict, explain_rom_signature};

/// The guest firmware whose verdict decides whether a ROM is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Firmware {
    /// OVMF (UEFI guests).
    #[default]
    Ovmf,
    /// SeaBIOS (legacy BIOS guests).
    SeaBios,
}

/// `ovmf` or `seabios`.
impl std::str::FromStr for Firmware {
    type Err = Error;

    fn from_str(s: &str) -> Result<Firmware, Error> {
        match s {
            "ovmf" => Ok(Firmware::Ovmf),
            "seabios" => Ok(Firmware::SeaBios),
            _ => Err(Error::Input(format!(
                "invalid firmware {s:?}: expected ovmf or seabios"
            ))),
        }
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The ROM parses.
    Parsed {
        /// The ROM.
        rom: Rom,
        /// What OVMF and SeaBIOS would load, for the device when one was given.
        verdict: Verdict,
        /// No device given, or the chosen firmware would load something for it.
        ok: bool,
    },
    /// The ROM does not parse.
    Malformed {
        /// Why.
        error: Error,
        /// When the first two bytes are not `55 AA`: what that means for the device
        /// ([`explain_rom_signature`]).
        hint: Option<String>,
    },
}

impl Check {
    /// Whether the ROM parses and (with a device) the chosen firmware would load it.
    pub fn ok(&self) -> bool {
        matches!(self, Check::Parsed { ok: true, .. })
    }

    /// For a ROM that does not parse: the error, then the hint indented on its own line.
    pub fn problem(&self) -> Option<String> {
        match self {
            Check::Parsed { .. } => None,
            Check::Malformed { error, hint: None } => Some(error.to_string()),
            Check::Malformed {
                error,
                hint: Some(hint),
            } => Some(format!("{error}\n  {hint}")),
        }
    }
}

/// Parses `data` as an option ROM and judges it for `device` (`(vendor, device)`): with a device,
/// it is good when `firmware` would load something; without one, when it parses.
pub fn check(data: &[u8], device: Option<(u16, u16)>, firmware: Firmware) -> Check {
    let rom = match Rom::parse(data) {
        Ok(r) => r,
        Err(error) => {
            let hint = data
                .get(..2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .filter(|&sig| sig != 0xAA55)
                .map(|sig| explain_rom_signature(sig, device.is_some_and(|(v, _)| v == 0x8086)));
            return Check::Malformed { error, hint };
        }
    };
    let verdict = rom.verdict(device);
    let decisive = match firmware {
        Firmware::Ovmf => &verdict.ovmf,
        Firmware::SeaBios => &verdict.seabios,
    };
    let ok = device.is_none() || decisive.loads();
    Check::Parsed { rom, verdict, ok }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{BuildOptions, Input, build};

    fn efi_rom() -> Vec<u8> {
        let mut pe = vec![0u8; 0xA0];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3C] = 0x40;
        pe[0x40..0x44].copy_from_slice(b"PE\0\0");
        pe[0x44..0x46].copy_from_slice(&0x8664u16.to_le_bytes());
        pe[0x58..0x5A].copy_from_slice(&0x20Bu16.to_le_bytes());
        pe[0x9C] = 11;
        let input = Input::Efi {
            name: "gop.efi".into(),
            bytes: pe,
        };
        build(&BuildOptions::new(0x8086, 0x3e92), &[input]).unwrap()
    }

    #[test]
    fn firmware_is_named_in_lowercase() {
        assert_eq!("ovmf".parse(), Ok(Firmware::Ovmf));
        assert_eq!("seabios".parse(), Ok(Firmware::SeaBios));
        assert_eq!(
            "OVMF".parse::<Firmware>().unwrap_err().to_string(),
            r#"invalid firmware "OVMF": expected ovmf or seabios"#
        );
    }

    #[test]
    fn the_chosen_firmware_decides_only_with_a_device() {
        let rom = efi_rom();
        let dev = Some((0x8086, 0x3e92));
        assert!(check(&rom, None, Firmware::SeaBios).ok());
        assert!(check(&rom, dev, Firmware::Ovmf).ok());
        let c = check(&rom, dev, Firmware::SeaBios);
        assert!(!c.ok());
        let Check::Parsed { rom, verdict, ok } = c else {
            panic!("{c:?}")
        };
        assert!(!ok && verdict.ovmf.loads() && !verdict.seabios.loads());
        assert_eq!(rom.images.len(), 1);
    }

    #[test]
    fn a_wrong_signature_comes_with_what_it_means() {
        let c = check(&[0xff; 64], Some((0x8086, 0x3e92)), Firmware::Ovmf);
        assert!(!c.ok());
        let Check::Malformed { error, hint } = c else {
            panic!("{c:?}")
        };
        assert!(error.to_string().contains("got 0xffff"), "{error}");
        let problem = check(&[0xff; 64], None, Firmware::Ovmf).problem().unwrap();
        let (first, second) = problem.split_once("\n  ").unwrap();
        assert_eq!(first, error.to_string());
        assert_eq!(second, explain_rom_signature(0xffff, false));
        assert_eq!(hint, Some(explain_rom_signature(0xffff, true)));
        let Check::Malformed { hint, .. } = check(&[0xff; 64], Some((0x10de, 1)), Firmware::Ovmf)
        else {
            panic!()
        };
        assert_eq!(hint, Some(explain_rom_signature(0xffff, false)));
        // Too short to have a signature, or the right signature and broken after it: no hint.
        for data in [&[][..], &[0x55], &[0x55, 0xAA, 0, 0]] {
            let c = check(data, None, Firmware::Ovmf);
            assert!(matches!(c, Check::Malformed { hint: None, .. }), "{c:?}");
            assert!(!c.problem().unwrap().contains('\n'));
        }
        assert_eq!(check(&efi_rom(), None, Firmware::Ovmf).problem(), None);
    }
}
