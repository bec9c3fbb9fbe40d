//! PCI class codes and the names of vendors, devices and classes.

use std::fmt;
use std::str::FromStr;

use crate::{DeviceId, Error, VendorId};

/// A 24-bit PCI class code: base class, subclass, programming interface (`030000` VGA, `0c0330` xHCI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClassCode(u32);

impl ClassCode {
    /// Host bridge (`0600`).
    pub const HOST_BRIDGE: u16 = 0x0600;
    /// ISA bridge, which is how LPC/eSPI controllers present themselves (`0601`).
    pub const ISA_BRIDGE: u16 = 0x0601;
    /// PCI-to-PCI bridge: root ports and switch ports (`0604`).
    pub const PCI_BRIDGE: u16 = 0x0604;
    /// VGA-compatible display controller (`0300`).
    pub const VGA: u16 = 0x0300;
    /// USB controller (`0c03`).
    pub const USB: u16 = 0x0c03;
    /// SMBus controller (`0c05`).
    pub const SMBUS: u16 = 0x0c05;

    /// A class code from its 24 bits; `None` when the value does not fit.
    pub fn new(value: u32) -> Option<ClassCode> {
        (value <= 0xff_ffff).then_some(ClassCode(value))
    }

    /// The 24-bit value.
    pub fn value(self) -> u32 {
        self.0
    }

    /// Base class (`03` display).
    pub fn base(self) -> u8 {
        (self.0 >> 16) as u8
    }

    /// Subclass within the base class.
    pub fn sub(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// Programming interface.
    pub fn prog_if(self) -> u8 {
        self.0 as u8
    }

    /// Base class and subclass together (`0x0300`), the part the `ClassCode::*` constants name.
    pub fn base_sub(self) -> u16 {
        (self.0 >> 8) as u16
    }

    /// A bridge to another PCI bus (PCI-to-PCI or semi-transparent): it has devices behind it.
    pub fn is_pci_bridge(self) -> bool {
        matches!(self.base_sub(), 0x0604 | 0x0609)
    }

    /// A display controller (VGA, XGA, 3D or other).
    pub fn is_display(self) -> bool {
        self.base() == 0x03
    }

    /// The class's name as `lspci` prints it: the subclass name (`VGA compatible controller`),
    /// or the base class name when the subclass is unknown.
    pub fn name(self) -> Option<&'static str> {
        if let Some(sub) = pci_ids::Subclass::from_cid_sid(self.base(), self.sub()) {
            return Some(sub.name());
        }
        pci_ids::Classes::iter()
            .find(|c| c.id() == self.base())
            .map(|c| c.name())
    }
}

impl fmt::Display for ClassCode {
    /// Six hex digits, `030000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06x}", self.0)
    }
}

impl FromStr for ClassCode {
    type Err = Error;
    /// Six hex digits (`030000`), with or without `0x`, as sysfs writes it.
    fn from_str(input: &str) -> Result<Self, Error> {
        let digits = input.strip_prefix("0x").unwrap_or(input);
        if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::BadClass {
                input: input.to_string(),
            });
        }
        u32::from_str_radix(digits, 16)
            .ok()
            .and_then(ClassCode::new)
            .ok_or_else(|| Error::BadClass {
                input: input.to_string(),
            })
    }
}

/// The vendor's name from the PCI id database (`Intel Corporation`).
pub fn vendor_name(vendor: VendorId) -> Option<&'static str> {
    use pci_ids::FromId;
    pci_ids::Vendor::from_id(vendor.0).map(|v| v.name())
}

/// The device's name from the PCI id database (`CoffeeLake-S GT2 [UHD Graphics 630]`).
pub fn device_name(vendor: VendorId, device: DeviceId) -> Option<&'static str> {
    pci_ids::Device::from_vid_pid(vendor.0, device.0).map(|d| d.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_codes_split_and_print_like_lspci() {
        let c: ClassCode = "0x0c0330".parse().unwrap();
        assert_eq!((c.base(), c.sub(), c.prog_if()), (0x0c, 0x03, 0x30));
        assert_eq!(c.base_sub(), ClassCode::USB);
        assert_eq!(c.to_string(), "0c0330");
        assert_eq!(c.name(), Some("USB controller"));
        let vga: ClassCode = "030000".parse().unwrap();
        assert!(vga.is_display() && !vga.is_pci_bridge());
        assert_eq!(vga.name(), Some("VGA compatible controller"));
        assert!("060400".parse::<ClassCode>().unwrap().is_pci_bridge());
        for bad in ["0300", "0x03000000", "zz0000", ""] {
            assert!(bad.parse::<ClassCode>().is_err(), "{bad}");
        }
    }

    #[test]
    fn names_come_from_the_id_database() {
        assert_eq!(vendor_name(VendorId(0x8086)), Some("Intel Corporation"));
        assert_eq!(
            device_name(VendorId(0x8086), DeviceId(0x3e92)),
            Some("CoffeeLake-S GT2 [UHD Graphics 630]")
        );
        assert_eq!(device_name(VendorId(0x8086), DeviceId(0xfffe)), None);
    }
}
