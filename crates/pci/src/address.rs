//! PCI addresses and ids: strict parsing, canonical display.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A PCI function's address: `domain:bus:device.function`, displayed as `0000:00:02.0`.
///
/// The domain is 32 bits wide: Intel VMD puts its devices in domains from `10000:` up.
/// `00:02.0` (domain omitted) parses as domain 0. Ordering is by domain, bus, device, function,
/// which is the order `lspci` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    /// PCI segment (domain).
    pub domain: u32,
    /// Bus number.
    pub bus: u8,
    /// Device (slot) number, 0..=0x1f.
    pub device: u8,
    /// Function number, 0..=7.
    pub function: u8,
}

impl PciAddress {
    /// An address from its parts; `None` when device > 0x1f or function > 7.
    pub fn new(domain: u32, bus: u8, device: u8, function: u8) -> Option<PciAddress> {
        (device <= 0x1f && function <= 7).then_some(PciAddress {
            domain,
            bus,
            device,
            function,
        })
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

fn hex_field(s: &str, max_digits: usize) -> Option<u32> {
    if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

impl FromStr for PciAddress {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let bad = |reason: &'static str| Error::BadAddress {
            input: input.to_string(),
            reason,
        };
        let (rest, function) = input
            .rsplit_once('.')
            .ok_or_else(|| bad("expected [domain:]bus:device.function"))?;
        let mut parts: Vec<&str> = rest.split(':').collect();
        if parts.len() == 2 {
            parts.insert(0, "0");
        }
        let [domain, bus, device] = parts[..] else {
            return Err(bad("expected [domain:]bus:device.function"));
        };
        let domain = hex_field(domain, 8).ok_or_else(|| bad("domain is 1 to 8 hex digits"))?;
        let bus = hex_field(bus, 2).ok_or_else(|| bad("bus is 1 or 2 hex digits"))?;
        let device = hex_field(device, 2).ok_or_else(|| bad("device is 1 or 2 hex digits"))?;
        let function = hex_field(function, 1).ok_or_else(|| bad("function is one digit"))?;
        if device > 0x1f {
            return Err(bad("device is at most 1f"));
        }
        if function > 7 {
            return Err(bad("function is at most 7"));
        }
        Ok(PciAddress {
            domain,
            bus: bus as u8,
            device: device as u8,
            function: function as u8,
        })
    }
}

macro_rules! id16 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u16);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:04x}", self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            /// Exactly four hex digits, as `lspci -n` prints them (`8086`).
            fn from_str(input: &str) -> Result<Self, Error> {
                match hex_field(input, 4) {
                    Some(v) if input.len() == 4 => Ok($name(v as u16)),
                    _ => Err(Error::BadId { input: input.to_string() }),
                }
            }
        }
    };
}

id16!(
    /// A PCI vendor id (`8086` Intel, `1002` AMD, `10de` NVIDIA), also used for subsystem vendors.
    VendorId
);
id16!(
    /// A PCI device id within a vendor (`3e92`), also used for subsystem devices.
    DeviceId
);

/// A function's `vendor:device` pair, displayed as `lspci -n` prints it: `8086:3e92`.
///
/// Parsing is strict: exactly four hex digits on each side of one colon (`8086:3E92` parses and
/// displays as `8086:3e92`); anything else is [`Error::BadPciId`] carrying the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciId {
    /// The vendor (`8086`).
    pub vendor: VendorId,
    /// The device within the vendor (`3e92`).
    pub device: DeviceId,
}

impl PciId {
    /// The pair of a vendor and a device id.
    pub fn new(vendor: VendorId, device: DeviceId) -> PciId {
        PciId { vendor, device }
    }
}

impl fmt::Display for PciId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.vendor, self.device)
    }
}

impl FromStr for PciId {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let bad = || Error::BadPciId {
            input: input.to_string(),
        };
        let (vendor, device) = input.split_once(':').ok_or_else(bad)?;
        Ok(PciId {
            vendor: vendor.parse().map_err(|_| bad())?,
            device: device.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_to_the_canonical_form() {
        for (input, canonical) in [
            ("0000:00:02.0", "0000:00:02.0"),
            ("00:02.0", "0000:00:02.0"),
            ("0:2.0", "0000:00:02.0"),
            ("0000:00:1F.6", "0000:00:1f.6"),
            ("10000:e0:1d.0", "10000:e0:1d.0"),
            ("100:00:02.0", "0100:00:02.0"),
            ("ffffffff:ff:1f.7", "ffffffff:ff:1f.7"),
        ] {
            let a: PciAddress = input.parse().unwrap();
            assert_eq!(a.to_string(), canonical, "{input}");
            assert_eq!(canonical.parse::<PciAddress>().unwrap(), a);
        }
    }

    #[test]
    fn bad_addresses_are_errors_that_carry_the_input() {
        for input in [
            "",
            "00:02",
            "00:20.0",
            "00:02.8",
            "1:2:3:4.0",
            "0000:00:02.0 ",
            "g0:00.0",
            "123456789:00:00.0",
            "00:02.",
        ] {
            let err = input.parse::<PciAddress>().unwrap_err();
            assert!(
                matches!(&err, Error::BadAddress { input: i, .. } if i == input),
                "{input:?}: {err}"
            );
        }
    }

    #[test]
    fn addresses_sort_like_lspci() {
        let mut v: Vec<PciAddress> = [
            "10000:e0:1d.0",
            "0000:01:00.0",
            "0000:00:1f.6",
            "0000:00:02.0",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        v.sort();
        let s: Vec<String> = v.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            s,
            [
                "0000:00:02.0",
                "0000:00:1f.6",
                "0000:01:00.0",
                "10000:e0:1d.0"
            ]
        );
    }

    #[test]
    fn pci_ids_round_trip_to_lowercase() {
        for (input, canonical) in [
            ("8086:3e92", "8086:3e92"),
            ("8086:3E92", "8086:3e92"),
            ("10DE:1f08", "10de:1f08"),
            ("0000:0000", "0000:0000"),
            ("ffff:FFFF", "ffff:ffff"),
        ] {
            let id: PciId = input.parse().unwrap();
            assert_eq!(id.to_string(), canonical, "{input}");
            assert_eq!(canonical.parse::<PciId>().unwrap(), id);
        }
        let id: PciId = "1002:1900".parse().unwrap();
        assert_eq!(id, PciId::new(VendorId(0x1002), DeviceId(0x1900)));
    }

    #[test]
    fn bad_pci_ids_are_errors_that_carry_the_input() {
        for input in [
            "",
            ":",
            "8086",
            "8086:",
            ":3e92",
            "808:3e92",
            "8086:3e9",
            "80866:3e92",
            "8086:3e922",
            "0x8086:3e92",
            "8086:3e92:00",
            "8086-3e92",
            " 8086:3e92",
            "8086:3e92\n",
            "zzzz:3e92",
            "+086:3e92",
        ] {
            let err = input.parse::<PciId>().unwrap_err();
            assert_eq!(
                err,
                Error::BadPciId {
                    input: input.to_string()
                },
                "{input:?}"
            );
        }
    }

    #[test]
    fn ids_are_four_hex_digits() {
        assert_eq!("8086".parse::<VendorId>().unwrap(), VendorId(0x8086));
        assert_eq!(VendorId(0x10de).to_string(), "10de");
        assert_eq!("3E92".parse::<DeviceId>().unwrap().to_string(), "3e92");
        for bad in ["", "808", "80866", "0x86", "zzzz"] {
            assert!(bad.parse::<VendorId>().is_err(), "{bad}");
        }
    }
}
