//! `usbN`: USB devices redirected to the VM.

use std::fmt;

use crate::Error;
use crate::perl::parse_boolean;
use crate::propstr::{Prop, Ty, configid, parse_schema};

/// What `usbN: host=` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsbHost {
    /// `vendor:product` (hex, any case, each half with an optional `0x`): `062a:4101`.
    Id {
        /// Vendor id.
        vendor: u16,
        /// Product id.
        product: u16,
    },
    /// A bus-port path, `1-2` or `1-2.3.4`: whatever is plugged into that port.
    Port(String),
    /// `spice`: a SPICE USB redirection channel. The schema accepts any case; the string as
    /// written is kept in [`UsbEntry`]'s raw value, and [`crate::lint`] warns about a spelling
    /// other than `spice`.
    Spice,
}

impl fmt::Display for UsbHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsbHost::Id { vendor, product } => write!(f, "{vendor:04x}:{product:04x}"),
            UsbHost::Port(p) => f.write_str(p),
            UsbHost::Spice => f.write_str("spice"),
        }
    }
}

fn hex4(s: &str) -> Option<u16> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    (s.len() == 4 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u16::from_str_radix(s, 16).ok())
        .flatten()
}

fn is_port(s: &str) -> bool {
    let Some((bus, port)) = s.split_once('-') else {
        return false;
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    digits(bus) && port.split('.').all(digits)
}

impl UsbHost {
    /// Parses the `host` value with Proxmox's pattern.
    pub fn parse(s: &str) -> Option<UsbHost> {
        if let Some((v, p)) = s.split_once(':')
            && let (Some(vendor), Some(product)) = (hex4(v), hex4(p))
        {
            return Some(UsbHost::Id { vendor, product });
        }
        if is_port(s) {
            return Some(UsbHost::Port(s.to_string()));
        }
        s.eq_ignore_ascii_case("spice").then_some(UsbHost::Spice)
    }
}

fn usb_host_pattern(v: &str) -> bool {
    UsbHost::parse(v).is_some()
}

/// `pve-qm-usb` (qemu-server `USB.pm`).
pub(crate) const USB_FORMAT: &[Prop] = &[
    Prop::default_key("host", Ty::pattern(usb_host_pattern)),
    Prop::opt("mapping", Ty::format(configid)),
    Prop::opt("usb3", Ty::Bool),
];

/// A `usbN` value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsbEntry {
    /// `host`.
    pub host: Option<UsbHost>,
    /// `mapping`: a cluster resource mapping id (`/etc/pve/mapping/usb.cfg`).
    pub mapping: Option<String>,
    /// `usb3` (ignored when qemu-xhci is used, i.e. machine ≥ 7.1 with ostype l26 or Windows > 7).
    pub usb3: Option<bool>,
}

impl UsbEntry {
    /// Parses a `usbN` value with Proxmox's schema; the error message is Proxmox's.
    pub fn parse(value: &str) -> Result<UsbEntry, Error> {
        let mut m = parse_schema(USB_FORMAT, value)?;
        Ok(UsbEntry {
            host: m.remove("host").as_deref().and_then(UsbHost::parse),
            mapping: m.remove("mapping"),
            usb3: m.remove("usb3").as_deref().and_then(parse_boolean),
        })
    }
}

/// `host=…[,mapping=…][,usb3=1]`, the way the Proxmox GUI writes it.
impl fmt::Display for UsbEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(h) = &self.host {
            parts.push(format!("host={h}"));
        }
        if let Some(m) = &self.mapping {
            parts.push(format!("mapping={m}"));
        }
        if let Some(u) = self.usb3 {
            parts.push(format!("usb3={}", u8::from(u)));
        }
        f.write_str(&parts.join(","))
    }
}
