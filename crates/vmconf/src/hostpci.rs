//! `hostpciN`: PCI devices passed through to the VM.

use std::fmt;
use std::str::FromStr;

use crate::Error;
use crate::perl::parse_boolean;
use crate::propstr::{Prop, Ty, configid, parse_schema};

/// A host PCI id as `hostpciN: host=` accepts it.
///
/// This mirrors Proxmox's schema pattern `(?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\.[a-f0-9])?`,
/// not the kernel's address rules: lowercase hex only, the domain optional (`0000` then), two
/// hex digits of device (so Proxmox's own test ids `00:ff.1` and `f0:43.0` parse), one hex digit
/// of function, and the function optional (then every function of the device is passed, as one
/// multifunction device). `Display` writes it canonically: `0000:00:02.0`, or `0000:00:02`
/// without a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciHostId {
    /// The PCI domain, `None` when not written (Proxmox then uses `0000`).
    pub domain: Option<u32>,
    /// Bus.
    pub bus: u8,
    /// Device (slot); Proxmox's pattern allows up to `ff`.
    pub device: u8,
    /// Function (one hex digit); `None` means every function of the device.
    pub function: Option<u8>,
}

fn hex_lower(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl FromStr for PciHostId {
    type Err = Error;

    fn from_str(s: &str) -> Result<PciHostId, Error> {
        let bad = || Error::Value {
            message: format!(
                "invalid host PCI id {s:?}: expected [dddd:]bb:dd[.f] in lowercase hex"
            ),
        };
        let (rest, function) = match s.rsplit_once('.') {
            Some((r, f)) if f.len() == 1 && hex_lower(f) => {
                (r, Some(u8::from_str_radix(f, 16).map_err(|_| bad())?))
            }
            Some(_) => return Err(bad()),
            None => (s, None),
        };
        let fields: Vec<&str> = rest.split(':').collect();
        let (domain, bus, device) = match fields.as_slice() {
            [b, d] => (None, *b, *d),
            [dom, b, d] if dom.len() >= 4 && hex_lower(dom) => {
                let digits = dom.trim_start_matches('0');
                let value = if digits.is_empty() {
                    0
                } else {
                    u32::from_str_radix(digits, 16).map_err(|_| Error::Value {
                        message: format!("invalid host PCI id {s:?}: domain out of range"),
                    })?
                };
                (Some(value), *b, *d)
            }
            _ => return Err(bad()),
        };
        if bus.len() != 2 || device.len() != 2 || !hex_lower(bus) || !hex_lower(device) {
            return Err(bad());
        }
        Ok(PciHostId {
            domain,
            bus: u8::from_str_radix(bus, 16).map_err(|_| bad())?,
            device: u8::from_str_radix(device, 16).map_err(|_| bad())?,
            function,
        })
    }
}

impl fmt::Display for PciHostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}",
            self.domain.unwrap_or(0),
            self.bus,
            self.device
        )?;
        if let Some(func) = self.function {
            write!(f, ".{func:x}")?;
        }
        Ok(())
    }
}

impl PciHostId {
    /// Whether the host function `domain:bus:device.function` is (one of) the device(s) this id
    /// names: an id without a function names every function of its device.
    pub fn matches(&self, domain: u32, bus: u8, device: u8, function: u8) -> bool {
        self.domain.unwrap_or(0) == domain
            && self.bus == bus
            && self.device == device
            && self.function.is_none_or(|f| f == function)
    }

    /// The id as `PVE::SysFSTools::lspci` reports the first function it finds for it
    /// (`0000:00:02` → `0000:00:02.0`): what Proxmox's legacy-IGD `02.0` check looks at.
    pub fn first_function(&self) -> String {
        format!(
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain.unwrap_or(0),
            self.bus,
            self.device,
            self.function.unwrap_or(0)
        )
    }
}

fn host_pattern(v: &str) -> bool {
    !v.is_empty() && v.split(';').all(|id| id.parse::<PciHostId>().is_ok())
}

fn romfile_pattern(v: &str) -> bool {
    !v.is_empty() && !v.contains([',', ';'])
}

fn mdev_pattern(v: &str) -> bool {
    !v.is_empty() && !v.contains(['/', '.', ':'])
}

fn id_override(v: &str) -> bool {
    v.len() == 6 && v.starts_with("0x") && v[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// `pve-qm-hostpci` (qemu-server `PCI.pm`).
pub(crate) const HOSTPCI_FORMAT: &[Prop] = &[
    Prop::default_key("host", Ty::pattern(host_pattern)),
    Prop::opt("mapping", Ty::format(configid)),
    Prop::opt("rombar", Ty::Bool),
    Prop::opt("romfile", Ty::pattern(romfile_pattern)),
    Prop::opt("pcie", Ty::Bool),
    Prop::opt("x-vga", Ty::Bool),
    Prop::opt("legacy-igd", Ty::Bool),
    Prop::opt("mdev", Ty::pattern(mdev_pattern)),
    Prop::opt("vendor-id", Ty::pattern(id_override)),
    Prop::opt("device-id", Ty::pattern(id_override)),
    Prop::opt("sub-vendor-id", Ty::pattern(id_override)),
    Prop::opt("sub-device-id", Ty::pattern(id_override)),
    Prop::opt("driver", Ty::enumeration(&["vfio", "keep"])),
];

/// A `hostpciN` value.
///
/// [`HostPci::parse`] applies Proxmox's schema (the check made when the config is read);
/// whether `host` and `mapping` are both set or both missing is a start-time rule and is left to
/// [`crate::lint`] / [`crate::legacy_igd_verdict`]. Booleans are `Some` only when written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPci {
    /// `host`: the ids of the `;` list (empty when not given). A list with more than one id is
    /// passed as one multifunction device (`hostpciN.0`, `hostpciN.1`, …).
    pub host: Vec<PciHostId>,
    /// `mapping`: a cluster resource mapping id (`/etc/pve/mapping/pci.cfg`).
    pub mapping: Option<String>,
    /// `rombar` (default on).
    pub rombar: Option<bool>,
    /// `romfile`: a file under `/usr/share/kvm/`.
    pub romfile: Option<String>,
    /// `pcie` (needs q35).
    pub pcie: Option<bool>,
    /// `x-vga`.
    pub x_vga: Option<bool>,
    /// `legacy-igd`.
    pub legacy_igd: Option<bool>,
    /// `mdev`: a mediated device type.
    pub mdev: Option<String>,
    /// `vendor-id` override (`0x8086`).
    pub vendor_id: Option<String>,
    /// `device-id` override.
    pub device_id: Option<String>,
    /// `sub-vendor-id` override.
    pub sub_vendor_id: Option<String>,
    /// `sub-device-id` override.
    pub sub_device_id: Option<String>,
    /// `driver`: `vfio` or `keep`.
    pub driver: Option<String>,
}

impl HostPci {
    /// Parses a `hostpciN` value with Proxmox's schema; the error message is Proxmox's
    /// (`invalid key in comma-separated list property: x`, or `format error` followed by one
    /// `key: problem` line per key, e.g. `host: value does not match the regex pattern`).
    pub fn parse(value: &str) -> Result<HostPci, Error> {
        let mut m = parse_schema(HOSTPCI_FORMAT, value)?;
        let mut take = |k: &str| m.remove(k);
        let boolean = |v: Option<String>| v.as_deref().and_then(parse_boolean);
        let host = match take("host") {
            Some(h) => h
                .split(';')
                .map(str::parse)
                .collect::<Result<Vec<PciHostId>, Error>>()?,
            None => Vec::new(),
        };
        Ok(HostPci {
            host,
            mapping: take("mapping"),
            rombar: boolean(take("rombar")),
            romfile: take("romfile"),
            pcie: boolean(take("pcie")),
            x_vga: boolean(take("x-vga")),
            legacy_igd: boolean(take("legacy-igd")),
            mdev: take("mdev"),
            vendor_id: take("vendor-id"),
            device_id: take("device-id"),
            sub_vendor_id: take("sub-vendor-id"),
            sub_device_id: take("sub-device-id"),
            driver: take("driver"),
        })
    }

    /// Whether the value makes QEMU see several functions for sure (a `;` list of more than one
    /// id). An id without a function is multifunction only if the host device has more than one
    /// function, which only the host can tell.
    pub fn is_listed_multifunction(&self) -> bool {
        self.host.len() > 1
    }
}

/// Proxmox's print order: the default key first without `host=`, then the other keys sorted,
/// booleans as `0`/`1`: `0000:00:02.0,legacy-igd=1,romfile=igd.rom`.
impl fmt::Display for HostPci {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if !self.host.is_empty() {
            let ids: Vec<String> = self.host.iter().map(ToString::to_string).collect();
            parts.push(ids.join(";"));
        }
        let b = |v: bool| if v { "1" } else { "0" }.to_string();
        let mut kv: Vec<(&str, String)> = Vec::new();
        let mut opt = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                kv.push((k, v));
            }
        };
        opt("device-id", self.device_id.clone());
        opt("driver", self.driver.clone());
        opt("legacy-igd", self.legacy_igd.map(b));
        opt("mapping", self.mapping.clone());
        opt("mdev", self.mdev.clone());
        opt("pcie", self.pcie.map(b));
        opt("rombar", self.rombar.map(b));
        opt("romfile", self.romfile.clone());
        opt("sub-device-id", self.sub_device_id.clone());
        opt("sub-vendor-id", self.sub_vendor_id.clone());
        opt("vendor-id", self.vendor_id.clone());
        opt("x-vga", self.x_vga.map(b));
        parts.extend(kv.into_iter().map(|(k, v)| format!("{k}={v}")));
        f.write_str(&parts.join(","))
    }
}
