//! `machine` and `vga`.

use crate::Error;
use crate::perl::parse_boolean;
use crate::propstr::{Prop, Ty, parse_schema};

/// The chipset family of a machine type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MachineKind {
    /// `pc`, `pc-X.Y`, `pc-i440fx-X.Y`: the default, and the only one legacy IGD works with.
    I440fx,
    /// `q35`, `pc-q35-X.Y`.
    Q35,
    /// `virt`, `virt-X.Y` (aarch64).
    Virt,
}

/// `(pc|pc(-i440fx)?-\d+(\.\d+)+(\+pve\d+)?(\.pxe)?|q35|pc-q35-\d+(\.\d+)+(\+pve\d+)?(\.pxe)?|virt(?:-\d+(\.\d+)+)?(\+pve\d+)?)`
/// split into its parts: kind, version, pve revision, pxe.
#[allow(clippy::type_complexity)]
fn split_type(t: &str) -> Option<(MachineKind, Option<(u32, u32)>, Option<u32>, bool)> {
    match t {
        "pc" => return Some((MachineKind::I440fx, None, None, false)),
        "q35" => return Some((MachineKind::Q35, None, None, false)),
        "virt" => return Some((MachineKind::Virt, None, None, false)),
        _ => {}
    }
    let (kind, spec, pxe_allowed, version_required) = if let Some(r) = t.strip_prefix("pc-q35-") {
        (MachineKind::Q35, r, true, true)
    } else if let Some(r) = t.strip_prefix("pc-i440fx-") {
        (MachineKind::I440fx, r, true, true)
    } else if let Some(r) = t.strip_prefix("pc-") {
        (MachineKind::I440fx, r, true, true)
    } else if let Some(r) = t.strip_prefix("virt-") {
        (MachineKind::Virt, r, false, true)
    } else if let Some(r) = t.strip_prefix("virt") {
        (MachineKind::Virt, r, false, false)
    } else {
        return None;
    };
    let (spec, pxe) = match spec.strip_suffix(".pxe") {
        Some(s) if pxe_allowed => (s, true),
        _ => (spec, false),
    };
    let (ver, pve) = match spec.split_once("+pve") {
        Some((v, p)) => {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (v, Some(p.parse().ok()?))
        }
        None => (spec, None),
    };
    if ver.is_empty() {
        // Only `virt+pveN`.
        return (!version_required).then_some((kind, None, pve, pxe));
    }
    if !version_required {
        return None;
    }
    let nums: Vec<&str> = ver.split('.').collect();
    if nums.len() < 2
        || nums
            .iter()
            .any(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some((
        kind,
        Some((nums[0].parse().ok()?, nums[1].parse().ok()?)),
        pve,
        pxe,
    ))
}

fn machine_type_pattern(t: &str) -> bool {
    split_type(t).is_some()
}

/// `pve-qemu-machine-fmt` (qemu-server `Machine.pm`).
pub(crate) const MACHINE_FORMAT: &[Prop] = &[
    Prop::default_key(
        "type",
        Ty::Str {
            max_len: Some(40),
            format: None,
            pattern: Some(machine_type_pattern),
            enumeration: None,
        },
    ),
    Prop::opt("viommu", Ty::enumeration(&["intel", "virtio"])),
    Prop::opt(
        "aw-bits",
        Ty::Num {
            min: Some(32.0),
            max: Some(64.0),
        },
    ),
    Prop::opt("enable-s3", Ty::Bool),
    Prop::opt("enable-s4", Ty::Bool),
];

/// A `machine` value (also the format of a snapshot's `runningmachine`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// i440fx, q35 or virt.
    pub kind: MachineKind,
    /// The pinned QEMU machine version (`pc-i440fx-9.2` → `(9, 2)`); `None` for the unversioned
    /// `pc`, `q35`, `virt`, which follow the installed QEMU.
    pub version: Option<(u32, u32)>,
    /// The Proxmox revision (`+pve1` → `1`).
    pub pve: Option<u32>,
    /// Whether the type ends in `.pxe`.
    pub pxe: bool,
    /// The machine type as written (`pc-i440fx-9.2+pve1`); `pc` when the value names no type.
    pub raw_type: String,
    /// `viommu`: `intel` or `virtio`.
    pub viommu: Option<String>,
    /// `aw-bits`, as written.
    pub aw_bits: Option<String>,
    /// `enable-s3`.
    pub enable_s3: Option<bool>,
    /// `enable-s4`.
    pub enable_s4: Option<bool>,
}

impl Machine {
    /// Parses a `machine` value with Proxmox's schema; the error message is Proxmox's
    /// (`format error` / `type: value does not match the regex pattern`).
    pub fn parse(value: &str) -> Result<Machine, Error> {
        let mut m = parse_schema(MACHINE_FORMAT, value)?;
        let raw_type = m.remove("type").unwrap_or_else(|| "pc".to_string());
        let (kind, version, pve, pxe) = split_type(&raw_type).ok_or_else(|| Error::Value {
            message: "format error\ntype: value does not match the regex pattern".to_string(),
        })?;
        Ok(Machine {
            kind,
            version,
            pve,
            pxe,
            raw_type,
            viommu: m.remove("viommu"),
            aw_bits: m.remove("aw-bits"),
            enable_s3: m.remove("enable-s3").as_deref().and_then(parse_boolean),
            enable_s4: m.remove("enable-s4").as_deref().and_then(parse_boolean),
        })
    }

    /// The machine of a config without a `machine` key: `pc`, i440fx, following the installed
    /// QEMU.
    pub fn default_for_missing() -> Machine {
        Machine {
            kind: MachineKind::I440fx,
            version: None,
            pve: None,
            pxe: false,
            raw_type: "pc".to_string(),
            viommu: None,
            aw_bits: None,
            enable_s3: None,
            enable_s4: None,
        }
    }

    /// Whether the type is a q35 one (Proxmox: the type contains `q35`).
    pub fn is_q35(&self) -> bool {
        self.raw_type.contains("q35")
    }

    /// The machine version in effect: the pinned one, else the installed QEMU's (`qemu`), else
    /// `None` (unknown, i.e. the newest).
    pub fn effective_version(&self, qemu: Option<(u32, u32)>) -> Option<(u32, u32)> {
        self.version.or(qemu)
    }

    /// Proxmox's `machine_version(type, major, minor)`: whether the version in effect is at
    /// least `major.minor`. An unversioned type with an unknown QEMU counts as new enough.
    pub fn version_at_least(&self, major: u32, minor: u32, qemu: Option<(u32, u32)>) -> bool {
        self.effective_version(qemu)
            .is_none_or(|v| v >= (major, minor))
    }
}

/// The `vga` types qemu-server knows, in its schema's order.
pub(crate) const VGA_TYPES: &[&str] = &[
    "cirrus",
    "qxl",
    "qxl2",
    "qxl3",
    "qxl4",
    "none",
    "serial0",
    "serial1",
    "serial2",
    "serial3",
    "std",
    "virtio",
    "virtio-gl",
    "vmware",
];

/// `vga` (qemu-server `QemuServer.pm`).
pub(crate) const VGA_FORMAT: &[Prop] = &[
    Prop::default_key("type", Ty::enumeration(VGA_TYPES)),
    Prop::opt(
        "memory",
        Ty::Int {
            min: Some(4),
            max: Some(512),
        },
    ),
    Prop::opt("clipboard", Ty::enumeration(&["vnc"])),
];

/// A `vga` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vga {
    /// The display type; `None` when not written (Proxmox's default is `std`).
    pub kind: Option<String>,
    /// `memory` in MiB, as written.
    pub memory: Option<String>,
    /// `clipboard` (`vnc`).
    pub clipboard: Option<String>,
}

impl Vga {
    /// Parses a `vga` value with Proxmox's schema; the error message is Proxmox's.
    pub fn parse(value: &str) -> Result<Vga, Error> {
        let mut m = parse_schema(VGA_FORMAT, value)?;
        Ok(Vga {
            kind: m.remove("type"),
            memory: m.remove("memory"),
            clipboard: m.remove("clipboard"),
        })
    }
}
