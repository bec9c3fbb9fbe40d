//! Intel integrated graphics (IGD) generations as QEMU's `hw/vfio/igd.c` `igd_gen()` sees them,
//! by QEMU version, and what that means for legacy mode and `x-igd-gms`.

use std::ops::RangeInclusive;

/// The generation QEMU assigns to an Intel IGD device id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IgdGeneration {
    /// The generation number (6 = Sandy Bridge … 12 = Tiger Lake and later).
    pub generation: u8,
    /// The platform family the device id belongs to (`Coffee Lake`), or
    /// `unknown (assumed compatible)` for QEMU ≤ 9.1's default.
    pub family: &'static str,
    /// Whether the generation is QEMU's guess for an id it does not know (QEMU ≤ 9.1 returns 8
    /// for every unknown id: "Assume newer is compatible").
    pub assumed: bool,
    /// The QEMU version whose table was used.
    pub qemu: (u32, u32),
}

/// The newest QEMU whose table this crate knows; the tables of later versions are assumed equal.
pub const NEWEST_QEMU: (u32, u32) = (10, 1);

/// How QEMU's legacy mode treats a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacySupport {
    /// Legacy mode is enabled automatically (i440fx, guest 00:02.0, a ROM).
    Auto,
    /// QEMU 10.1+ enables it automatically only for generations 6–9; later ones need
    /// `x-igd-legacy-mode=on` (or at least `x-igd-lpc=on`) set explicitly.
    OptIn,
    /// QEMU refuses: "IGD device … is unsupported in legacy mode, try SandyBridge or newer".
    Unsupported,
}

fn family(masked: u16) -> &'static str {
    match masked {
        0x0100 => "Sandy Bridge/Ivy Bridge",
        0x0400 | 0x0a00 | 0x0c00 | 0x0d00 => "Haswell",
        0x0f00 => "Valleyview/Bay Trail",
        0x1600 => "Broadwell",
        0x2200 => "Cherryview",
        0x1900 => "Skylake",
        0x3100 => "Gemini Lake",
        0x5900 => "Kaby Lake",
        0x3e00 => "Coffee Lake",
        0x9b00 => "Comet Lake",
        0x8a00 => "Ice Lake",
        0x4500 => "Elkhart Lake",
        0x4e00 => "Jasper Lake",
        0x9a00 => "Tiger Lake",
        0x4c00 => "Rocket Lake",
        0x4600 => "Alder Lake",
        0xa700 => "Raptor Lake",
        _ => "unknown",
    }
}

const PRE_GEN6: &[u16] = &[
    0x0000, 0x2500, 0x2700, 0x2900, 0x2a00, 0x2e00, 0x3500, 0xa000,
];

/// The IGD generation QEMU `qemu` (major, minor) assigns to Intel device id `device_id`, from
/// the tables of `igd_gen()`: QEMU 10.0 and later (Tomita Moeko's table, Apollo Lake through
/// Raptor Lake), 9.2 (Corvin Köhne's: unknown ids are -1), and 9.1 and earlier (unknown ids are
/// assumed to be generation 8). `None` where QEMU returns -1 (too old, or unknown to that
/// version).
pub fn igd_generation(device_id: u16, qemu: (u32, u32)) -> Option<IgdGeneration> {
    let masked = device_id & 0xff00;
    let make = |generation: u8, fam: &'static str, assumed: bool| IgdGeneration {
        generation,
        family: fam,
        assumed,
        qemu,
    };
    if qemu >= (10, 0) {
        if device_id & 0xffe == 0xa84 {
            return Some(make(9, "Broxton/Apollo Lake", false));
        }
        let generation = match masked {
            0x0100 => 6,
            0x0400 | 0x0a00 | 0x0c00 | 0x0d00 | 0x0f00 => 7,
            0x1600 | 0x2200 => 8,
            0x1900 | 0x3100 | 0x5900 | 0x3e00 | 0x9b00 => 9,
            0x8a00 | 0x4500 | 0x4e00 => 11,
            0x9a00 | 0x4c00 | 0x4600 | 0xa700 => 12,
            _ => return None,
        };
        return Some(make(generation, family(masked), false));
    }
    if device_id & 0xfff == 0xa84 {
        return Some(make(8, "Broxton", false));
    }
    if PRE_GEN6.contains(&masked) {
        return None;
    }
    let known = match masked {
        0x0100 | 0x0400 | 0x0a00 | 0x0c00 | 0x0d00 | 0x0f00 => Some(6),
        0x1600 | 0x1900 | 0x2200 | 0x5900 => Some(8),
        _ => None,
    };
    if qemu >= (9, 2) {
        let generation = match (known, masked) {
            (Some(g), _) => g,
            (None, 0x3e00) => 9,
            (None, 0x4500) => 11,
            (None, 0x9a00) => 12,
            _ => return None,
        };
        return Some(make(generation, family(masked), false));
    }
    Some(match known {
        Some(g) => make(g, family(masked), false),
        None => make(8, "unknown (assumed compatible)", true),
    })
}

impl IgdGeneration {
    /// Whether QEMU (the version this generation was looked up for) drives it in legacy mode.
    pub fn legacy_support(&self) -> LegacySupport {
        if self.qemu < (9, 2) {
            // igd.c before 9.2: legacy mode only for generation 6 or 8 (every known id maps there).
            if self.generation == 6 || self.generation == 8 {
                LegacySupport::Auto
            } else {
                LegacySupport::Unsupported
            }
        } else if self.qemu >= (10, 1) && self.generation > 9 {
            LegacySupport::OptIn
        } else {
            LegacySupport::Auto
        }
    }

    /// The `x-igd-gms` values QEMU accepts for this generation (0 keeps the host's value), or
    /// `None` where upstream QEMU has no such property (9.2 dropped it; 10.0 brought it back).
    pub fn gms_ranges(&self) -> Option<Vec<RangeInclusive<u32>>> {
        gms_ranges(Some(self.generation), self.qemu)
    }
}

/// The `x-igd-gms` values QEMU `qemu` accepts for generation `generation` (`None`: any known
/// generation, i.e. the union). `None` where upstream QEMU has no `x-igd-gms` (9.2).
///
/// QEMU ≤ 9.1: `0..=0x10`. 10.0: generation < 8 `0..=0x10`, generation ≥ 8 `0..=0x40`. 10.1 adds `0xf0..=0xfe`
/// (4 MiB steps) for generation ≥ 9.
pub fn gms_ranges(generation: Option<u8>, qemu: (u32, u32)) -> Option<Vec<RangeInclusive<u32>>> {
    if qemu < (9, 2) {
        return Some(vec![0..=0x10]);
    }
    if qemu < (10, 0) {
        return None;
    }
    let mut out = vec![match generation {
        Some(g) if g < 8 => 0..=0x10,
        _ => 0..=0x40,
    }];
    if qemu >= (10, 1) && generation.is_none_or(|g| g >= 9) {
        out.push(0xf0..=0xfe);
    }
    Some(out)
}

/// Parses a QEMU integer property value the way QEMU's string visitor does (`parse_uint_full`
/// with base 0): `0x2`, `2`, and a leading `0` for octal.
pub fn parse_qemu_uint(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return u64::from_str_radix(h, 16).ok();
    }
    if s.len() > 1
        && let Some(o) = s.strip_prefix('0')
    {
        if !o.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return None;
        }
        return u64::from_str_radix(o, 8).ok();
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
