//! USB devices, the controller they hang off, and Proxmox's `usbN:` redirection entries.
//!
//! Linux lists USB devices under `/sys/bus/usb/devices`: root hubs as `usb<bus>`, devices by bus and
//! port path (`1-14`, `1-2.1` behind a hub), interfaces as `<device>:<config>.<interface>`. A device's
//! real directory lies below the PCI function of its host controller
//! (`…/0000:00:14.0/usb1/1-14`), which is how this crate finds the controller — and from there
//! the pci crate knows its IOMMU group.
//!
//! Passing a whole USB controller to a VM takes every device behind it from the host; when it is
//! the only controller, or the keyboard hangs off it, the host is left without input. Redirecting
//! single devices by id (`usb0: host=062a:4101`) is the alternative; this crate chooses that entry:
//! by vendor:product when the id is unique on the host, by bus-port when two devices share it,
//! `usb3=1` for SuperSpeed devices.
//!
//! Two backends read the devices: [`SysfsBackend`] (any [`SysRoot`](vfiokit_sysfs::SysRoot), so recorded hosts too) and
//! `RusbBackend` (feature `rusb`: libusb, live hosts only; reports "no USB access" where libusb cannot start).
//!
//! ```
//! use vfiokit_usbredir::{SysfsBackend, UsbBackend, UsbId};
//! use vfiokit_sysfs::SysRoot;
//!
//! let root = SysRoot::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/elitedesk-800-g4/fresh"))?;
//! let scan = SysfsBackend::new(root).devices()?;
//! let id: UsbId = "8087:0aaa".parse()?;
//! let bt = scan.devices.iter().find(|d| d.id == id).ok_or("no bluetooth")?;
//! assert_eq!(bt.port, "1-14");
//! assert_eq!(bt.controller.map(|c| c.to_string()).as_deref(), Some("0000:00:14.0"));
//! assert!(bt.is_bluetooth());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod controller;
mod redirect;
#[cfg(feature = "rusb")]
mod rusb_backend;
mod sysfs_backend;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use controller::{ControllerReport, controllers};
pub use redirect::{RedirectEntry, next_free_usb, redirect_entry};
#[cfg(feature = "rusb")]
pub use rusb_backend::RusbBackend;
pub use sysfs_backend::SysfsBackend;

use vfiokit_pci::PciAddress;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not `VID:PID` with four hex digits each.
    #[error("invalid USB id {input:?}: expected VID:PID, four hex digits each (062a:4101)")]
    BadId {
        /// What was given.
        input: String,
    },
    /// The USB device list itself could not be read.
    #[error(transparent)]
    Sys(#[from] vfiokit_sysfs::Error),
    /// libusb could not start (no usbfs, as in containers): live enumeration is impossible.
    #[error("no USB access: libusb cannot start ({0})")]
    NoAccess(String),
}

/// A USB vendor:product id, displayed as `062a:4101`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UsbId {
    /// `idVendor`.
    pub vendor: u16,
    /// `idProduct`.
    pub product: u16,
}

impl fmt::Display for UsbId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vendor, self.product)
    }
}

impl FromStr for UsbId {
    type Err = Error;
    /// Exactly `VVVV:PPPP`, hex, either case.
    fn from_str(input: &str) -> Result<Self, Error> {
        let bad = || Error::BadId {
            input: input.to_string(),
        };
        let (v, p) = input.split_once(':').ok_or_else(bad)?;
        let hex = |s: &str| {
            (s.len() == 4 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u16::from_str_radix(s, 16).ok())
                .flatten()
        };
        Ok(UsbId {
            vendor: hex(v).ok_or_else(bad)?,
            product: hex(p).ok_or_else(bad)?,
        })
    }
}

impl UsbId {
    /// The vendor's name from the USB id database.
    pub fn vendor_name(self) -> Option<&'static str> {
        use usb_ids::FromId;
        usb_ids::Vendor::from_id(self.vendor).map(|v| v.name())
    }

    /// The product's name from the USB id database.
    pub fn product_name(self) -> Option<&'static str> {
        usb_ids::Device::from_vid_pid(self.vendor, self.product).map(|d| d.name())
    }
}

/// One interface of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbInterface {
    /// `bInterfaceNumber`.
    pub number: u8,
    /// `bInterfaceClass` (`03` HID, `08` mass storage, `e0` wireless/Bluetooth, `09` hub).
    pub class: u8,
    /// `bInterfaceSubClass`.
    pub subclass: u8,
    /// `bInterfaceProtocol` (HID: 1 keyboard, 2 mouse).
    pub protocol: u8,
    /// The bound driver (`usbhid`, `btusb`).
    pub driver: Option<String>,
}

/// HID interface class.
pub const CLASS_HID: u8 = 0x03;
/// Mass storage interface class.
pub const CLASS_STORAGE: u8 = 0x08;
/// Hub device class.
pub const CLASS_HUB: u8 = 0x09;
/// Wireless controller class (Bluetooth adapters).
pub const CLASS_WIRELESS: u8 = 0xe0;

/// A USB device (not an interface, not a root hub).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbDevice {
    /// Bus number (`busnum`).
    pub bus: u16,
    /// Kernel name: bus and port path (`1-14`, `1-2.1`), which is also Proxmox's `host=BUS-PORT`.
    pub port: String,
    /// Device number on the bus (`devnum`).
    pub devnum: u16,
    /// Vendor and product.
    pub id: UsbId,
    /// `manufacturer` string, when the device has one.
    pub manufacturer: Option<String>,
    /// `product` string, when the device has one.
    pub product: Option<String>,
    /// `serial` string, when the device has one.
    pub serial: Option<String>,
    /// `bDeviceClass` (`00`: per interface; `09` hub; `e0` wireless).
    pub class: u8,
    /// Negotiated speed in Mbit/s as the kernel writes it (`12`, `480`, `5000`).
    pub speed: Option<String>,
    /// Interfaces of the active configuration.
    pub interfaces: Vec<UsbInterface>,
    /// The PCI function of the host controller it hangs off.
    pub controller: Option<PciAddress>,
    /// Where its directory really is, when read from sysfs.
    pub sysfs_path: Option<PathBuf>,
}

impl UsbDevice {
    /// A hub (device class 09).
    pub fn is_hub(&self) -> bool {
        self.class == CLASS_HUB
    }

    fn has_interface(&self, class: u8) -> bool {
        self.class == class || self.interfaces.iter().any(|i| i.class == class)
    }

    /// A keyboard, mouse or other HID device.
    pub fn is_input(&self) -> bool {
        self.has_interface(CLASS_HID)
    }

    /// A disk, stick or card reader.
    pub fn is_storage(&self) -> bool {
        self.has_interface(CLASS_STORAGE)
    }

    /// A Bluetooth adapter (wireless controller class, RF subclass 01, Bluetooth protocol 01).
    pub fn is_bluetooth(&self) -> bool {
        self.class == CLASS_WIRELESS
            || self
                .interfaces
                .iter()
                .any(|i| i.class == CLASS_WIRELESS && i.subclass == 0x01 && i.protocol == 0x01)
    }

    /// SuperSpeed (5000 Mbit/s or more): Proxmox needs `usb3=1` to attach it at full speed.
    pub fn is_superspeed(&self) -> bool {
        self.speed
            .as_deref()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .is_some_and(|s| s >= 5000.0)
    }

    /// What kind of device this is, in words, for messages.
    pub fn kind(&self) -> &'static str {
        if self.is_hub() {
            "hub"
        } else if self.is_input() {
            "input device"
        } else if self.is_bluetooth() {
            "Bluetooth adapter"
        } else if self.is_storage() {
            "storage device"
        } else {
            "device"
        }
    }

    /// The best name: the product string, else the id database's name, else the id.
    pub fn name(&self) -> String {
        self.product
            .clone()
            .or_else(|| self.id.product_name().map(str::to_string))
            .unwrap_or_else(|| self.id.to_string())
    }
}

/// What a backend found: the devices, and what could not be read (each naming its path).
#[derive(Debug, Default)]
pub struct UsbScan {
    /// Devices, sorted by bus and port.
    pub devices: Vec<UsbDevice>,
    /// Problems, each naming the path or device.
    pub problems: Vec<String>,
}

/// A way to list the host's USB devices.
pub trait UsbBackend {
    /// Lists the devices. Only a listing that cannot start at all is an error.
    fn devices(&self) -> Result<UsbScan, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_anything_else() {
        for (input, canonical) in [("062a:4101", "062a:4101"), ("8087:0AAA", "8087:0aaa")] {
            let id: UsbId = input.parse().unwrap();
            assert_eq!(id.to_string(), canonical);
            assert_eq!(canonical.parse::<UsbId>().unwrap(), id);
        }
        for bad in [
            "",
            "062a",
            "62a:4101",
            "062a:41011",
            "0x62a:4101",
            "062a-4101",
            "zzzz:0000",
        ] {
            assert!(bad.parse::<UsbId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn names_come_from_the_usb_id_database() {
        let bt: UsbId = "8087:0aaa".parse().unwrap();
        assert_eq!(bt.vendor_name(), Some("Intel Corp."));
        assert_eq!(
            bt.product_name(),
            Some("Bluetooth 9460/9560 Jefferson Peak (JfP)")
        );
    }
}
