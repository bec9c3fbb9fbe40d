//! USB devices from `/sys/bus/usb/devices` under a [`SysRoot`].

use std::path::Path;

use vfiokit_pci::PciAddress;
use vfiokit_sysfs::SysRoot;

use crate::{Error, UsbBackend, UsbDevice, UsbId, UsbInterface, UsbScan};

/// Reads USB devices from sysfs; works on recorded hosts. This is what `inspect` uses.
#[derive(Debug, Clone)]
pub struct SysfsBackend {
    root: SysRoot,
}

impl SysfsBackend {
    /// A backend reading under `root`.
    pub fn new(root: SysRoot) -> SysfsBackend {
        SysfsBackend { root }
    }
}

/// Reads an attribute as text; bytes that are not UTF-8 (cheap devices write Latin-1 strings)
/// are replaced and reported. `None` when the file does not exist.
fn text_attr(root: &SysRoot, path: &Path, problems: &mut Vec<String>) -> Option<String> {
    match root.read_bytes_opt(path) {
        Ok(Some(bytes)) => {
            let text = String::from_utf8_lossy(&bytes);
            if let std::borrow::Cow::Owned(_) = text {
                problems.push(format!(
                    "{}: not UTF-8, shown with replacement characters",
                    path.display()
                ));
            }
            Some(text.trim_end_matches(['\n', '\r']).to_string())
        }
        Ok(None) => None,
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    }
}

/// A hex attribute written without `0x` (`idVendor` `8087`, `bDeviceClass` `e0`).
fn hex_attr(root: &SysRoot, path: &Path, problems: &mut Vec<String>) -> Option<u16> {
    let text = text_attr(root, path, problems)?;
    match u16::from_str_radix(text.trim(), 16) {
        Ok(v) => Some(v),
        Err(_) => {
            problems.push(format!(
                "{}: expected a hex number, found {:?}",
                path.display(),
                text.trim()
            ));
            None
        }
    }
}

fn dec_attr(root: &SysRoot, path: &Path, problems: &mut Vec<String>) -> Option<u16> {
    let text = text_attr(root, path, problems)?;
    match text.trim().parse() {
        Ok(v) => Some(v),
        Err(_) => {
            problems.push(format!(
                "{}: expected a decimal number, found {:?}",
                path.display(),
                text.trim()
            ));
            None
        }
    }
}

/// The PCI function a USB device's real path lies under: its host controller.
fn controller_of(path: &Path) -> Option<PciAddress> {
    path.ancestors()
        .find_map(|p| p.file_name()?.to_str()?.parse().ok())
}

impl UsbBackend for SysfsBackend {
    fn devices(&self) -> Result<UsbScan, Error> {
        let root = &self.root;
        let dir = root.sys_bus_devices("usb");
        let mut scan = UsbScan::default();
        // A host without USB has no `/sys/bus/usb` at all: no devices, not an error.
        let names = root.list_opt(&dir)?;
        for name in names
            .iter()
            .filter(|n| !n.contains(':') && !n.starts_with("usb"))
        {
            let problems = &mut scan.problems;
            let real = match root.resolve(&dir.join(name)) {
                Ok(r) => r,
                Err(e) => {
                    // A device unplugged while we read leaves a dangling link.
                    problems.push(e.to_string());
                    continue;
                }
            };
            let vendor = hex_attr(root, &real.join("idVendor"), problems);
            let product = hex_attr(root, &real.join("idProduct"), problems);
            let (Some(vendor), Some(product)) = (vendor, product) else {
                let missing = if vendor.is_none() {
                    "idVendor"
                } else {
                    "idProduct"
                };
                problems.push(format!(
                    "{}: unreadable, device {name} skipped",
                    real.join(missing).display()
                ));
                continue;
            };
            let mut interfaces = Vec::new();
            let prefix = format!("{name}:");
            for iface in names.iter().filter(|n| n.starts_with(&prefix)) {
                let Ok(ireal) = root.resolve(&dir.join(iface)) else {
                    continue;
                };
                let byte = |f: &str, problems: &mut Vec<String>| {
                    hex_attr(root, &ireal.join(f), problems).and_then(|v| u8::try_from(v).ok())
                };
                let Some(class) = byte("bInterfaceClass", problems) else {
                    continue;
                };
                interfaces.push(UsbInterface {
                    number: byte("bInterfaceNumber", problems).unwrap_or(0),
                    class,
                    subclass: byte("bInterfaceSubClass", problems).unwrap_or(0),
                    protocol: byte("bInterfaceProtocol", problems).unwrap_or(0),
                    driver: root.link_name(&ireal.join("driver")).ok().flatten(),
                });
            }
            scan.devices.push(UsbDevice {
                bus: dec_attr(root, &real.join("busnum"), problems)
                    .or_else(|| name.split('-').next()?.parse().ok())
                    .unwrap_or(0),
                port: name.clone(),
                devnum: dec_attr(root, &real.join("devnum"), problems).unwrap_or(0),
                id: UsbId { vendor, product },
                manufacturer: text_attr(root, &real.join("manufacturer"), problems),
                product: text_attr(root, &real.join("product"), problems),
                serial: text_attr(root, &real.join("serial"), problems),
                class: hex_attr(root, &real.join("bDeviceClass"), problems)
                    .and_then(|v| u8::try_from(v).ok())
                    .unwrap_or(0),
                speed: text_attr(root, &real.join("speed"), problems),
                interfaces,
                controller: controller_of(&real),
                sysfs_path: Some(real),
            });
        }
        scan.devices
            .sort_by(|a, b| (a.bus, &a.port).cmp(&(b.bus, &b.port)));
        Ok(scan)
    }
}
