//! USB devices through libusb, for live hosts (cross-checks, hosts where sysfs is restricted).

use crate::{Error, UsbBackend, UsbDevice, UsbId, UsbInterface, UsbScan};

/// Reads USB devices with libusb. Always through its own `rusb::Context`: rusb's global-context
/// helpers panic where libusb cannot start (no usbfs, as in containers); this reports
/// [`Error::NoAccess`] instead.
#[derive(Debug, Default)]
pub struct RusbBackend;

impl UsbBackend for RusbBackend {
    fn devices(&self) -> Result<UsbScan, Error> {
        use rusb::UsbContext;
        let context = rusb::Context::new().map_err(|e| Error::NoAccess(e.to_string()))?;
        let list = context
            .devices()
            .map_err(|e| Error::NoAccess(e.to_string()))?;
        let mut scan = UsbScan::default();
        for device in list.iter() {
            let desc = match device.device_descriptor() {
                Ok(d) => d,
                Err(e) => {
                    scan.problems.push(format!(
                        "bus {} device {}: {e}",
                        device.bus_number(),
                        device.address()
                    ));
                    continue;
                }
            };
            let ports = device.port_numbers().unwrap_or_default();
            if ports.is_empty() {
                continue; // a root hub
            }
            let port = format!(
                "{}-{}",
                device.bus_number(),
                ports
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(".")
            );
            let mut interfaces = Vec::new();
            if let Ok(config) = device.active_config_descriptor() {
                for iface in config.interfaces() {
                    if let Some(d) = iface.descriptors().next() {
                        interfaces.push(UsbInterface {
                            number: d.interface_number(),
                            class: d.class_code(),
                            subclass: d.sub_class_code(),
                            protocol: d.protocol_code(),
                            driver: None,
                        });
                    }
                }
            }
            let speed = match device.speed() {
                rusb::Speed::Low => Some("1.5"),
                rusb::Speed::Full => Some("12"),
                rusb::Speed::High => Some("480"),
                rusb::Speed::Super => Some("5000"),
                rusb::Speed::SuperPlus => Some("10000"),
                _ => None,
            };
            scan.devices.push(UsbDevice {
                bus: u16::from(device.bus_number()),
                port,
                devnum: u16::from(device.address()),
                id: UsbId {
                    vendor: desc.vendor_id(),
                    product: desc.product_id(),
                },
                // Strings need the device opened, which needs write access: left out.
                manufacturer: None,
                product: None,
                serial: None,
                class: desc.class_code(),
                speed: speed.map(str::to_string),
                interfaces,
                controller: None,
                sysfs_path: None,
            });
        }
        scan.devices
            .sort_by(|a, b| (a.bus, &a.port).cmp(&(b.bus, &b.port)));
        Ok(scan)
    }
}
