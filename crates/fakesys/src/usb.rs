//! USB devices below an xHCI controller: sysfs attributes and raw descriptors.

/// One interface of a USB device (`1-14:1.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbIf {
    pub(crate) class: u8,
    pub(crate) subclass: u8,
    pub(crate) protocol: u8,
    pub(crate) endpoints: u8,
    pub(crate) driver: Option<String>,
}

impl UsbIf {
    /// An interface of `class` (`0x03` HID, `0xe0` wireless, `0x09` hub) bound to `driver`
    /// (empty string: unbound), with one endpoint.
    pub fn new(class: u8, driver: &str) -> UsbIf {
        UsbIf {
            class,
            subclass: 0,
            protocol: 0,
            endpoints: 1,
            driver: (!driver.is_empty()).then(|| driver.to_string()),
        }
    }

    /// Interface subclass and protocol (HID boot keyboard is 1/1, mouse 1/2).
    pub fn subclass_protocol(mut self, subclass: u8, protocol: u8) -> UsbIf {
        self.subclass = subclass;
        self.protocol = protocol;
        self
    }

    /// Number of endpoints besides endpoint 0.
    pub fn endpoints(mut self, n: u8) -> UsbIf {
        self.endpoints = n;
        self
    }
}

/// A USB device at a port path such as `1-14` (bus 1, port 14) or `1-2.1` (port 1 of the hub at
/// `1-2`, which must be added too). The bus decides the controller: see [`crate::PciFn::xhci`].
///
/// ```
/// use vfiokit_fakesys::{UsbDev, UsbIf};
/// let bt = UsbDev::new("1-14", 0x8087, 0x0aaa)
///     .class(0xe0, 0x01, 0x01)
///     .interfaces(&[(0xe0, "btusb"), (0xe0, "btusb")]);
/// assert_eq!(bt.port_path(), "1-14");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbDev {
    pub(crate) path: String,
    pub(crate) vendor: u16,
    pub(crate) product: u16,
    pub(crate) bcd_device: u16,
    pub(crate) class: (u8, u8, u8),
    pub(crate) speed: String,
    pub(crate) manufacturer: Option<String>,
    pub(crate) product_name: Option<String>,
    pub(crate) serial: Option<String>,
    pub(crate) interfaces: Vec<UsbIf>,
    pub(crate) hub_ports: u8,
    pub(crate) devnum: Option<u32>,
}

impl UsbDev {
    /// A full-speed (12 Mb/s) device with per-interface class and no interfaces yet.
    pub fn new(path: &str, vendor: u16, product: u16) -> UsbDev {
        UsbDev {
            path: path.to_string(),
            vendor,
            product,
            bcd_device: 0x0001,
            class: (0, 0, 0),
            speed: "12".to_string(),
            manufacturer: None,
            product_name: None,
            serial: None,
            interfaces: Vec::new(),
            hub_ports: 0,
            devnum: None,
        }
    }

    /// A hub with `ports` downstream ports (class 09, one interface bound to `hub`), high speed.
    pub fn hub(path: &str, vendor: u16, product: u16, ports: u8) -> UsbDev {
        let mut hub = UsbDev::new(path, vendor, product)
            .class(0x09, 0, 1)
            .speed("480");
        hub.hub_ports = ports;
        hub.interfaces.push(UsbIf::new(0x09, "hub"));
        hub
    }

    /// The port path as given (`1-14`).
    pub fn port_path(&self) -> &str {
        &self.path
    }

    /// Device class, subclass and protocol (`bDeviceClass`…); 0/0/0 means per interface.
    pub fn class(mut self, class: u8, subclass: u8, protocol: u8) -> UsbDev {
        self.class = (class, subclass, protocol);
        self
    }

    /// `bcdDevice`, the device release number.
    pub fn bcd_device(mut self, bcd: u16) -> UsbDev {
        self.bcd_device = bcd;
        self
    }

    /// The `speed` attribute in Mb/s as the kernel writes it: `1.5`, `12`, `480`, `5000`, `10000`.
    pub fn speed(mut self, speed: &str) -> UsbDev {
        self.speed = speed.to_string();
        self
    }

    /// The `manufacturer` string.
    pub fn manufacturer(mut self, s: &str) -> UsbDev {
        self.manufacturer = Some(s.to_string());
        self
    }

    /// The `product` string.
    pub fn product(mut self, s: &str) -> UsbDev {
        self.product_name = Some(s.to_string());
        self
    }

    /// The `serial` string.
    pub fn serial(mut self, s: &str) -> UsbDev {
        self.serial = Some(s.to_string());
        self
    }

    /// Adds one interface.
    pub fn interface(mut self, iface: UsbIf) -> UsbDev {
        self.interfaces.push(iface);
        self
    }

    /// Adds interfaces given as (class, driver) pairs.
    pub fn interfaces(mut self, ifaces: &[(u8, &str)]) -> UsbDev {
        for (class, driver) in ifaces {
            self.interfaces.push(UsbIf::new(*class, driver));
        }
        self
    }

    /// The device number on its bus (`devnum`); by default numbered from 2 in the order added.
    pub fn devnum(mut self, n: u32) -> UsbDev {
        self.devnum = Some(n);
        self
    }

    /// `bcdUSB` from the speed, as Linux's xHCI root hubs report it: 2.00 up to high speed,
    /// 3.00 for 5000, 3.10 for 10000, 3.20 for 20000.
    pub(crate) fn bcd_usb(&self) -> u16 {
        match self.speed.as_str() {
            "5000" => 0x0300,
            "10000" => 0x0310,
            "20000" => 0x0320,
            _ => 0x0200,
        }
    }

    /// The `descriptors` attribute: the 18-byte device descriptor, then the configuration,
    /// interface and endpoint descriptors of the (only) configuration.
    pub(crate) fn descriptors(&self) -> Vec<u8> {
        let usb3 = self.bcd_usb() >= 0x0300;
        let mut d = vec![18, 1];
        d.extend_from_slice(&self.bcd_usb().to_le_bytes());
        d.extend_from_slice(&[
            self.class.0,
            self.class.1,
            self.class.2,
            if usb3 { 9 } else { 64 },
        ]);
        d.extend_from_slice(&self.vendor.to_le_bytes());
        d.extend_from_slice(&self.product.to_le_bytes());
        d.extend_from_slice(&self.bcd_device.to_le_bytes());
        d.push(u8::from(self.manufacturer.is_some()));
        d.push(if self.product_name.is_some() { 2 } else { 0 });
        d.push(if self.serial.is_some() { 3 } else { 0 });
        d.push(1);
        let total: usize = 9 + self
            .interfaces
            .iter()
            .map(|i| 9 + 7 * usize::from(i.endpoints))
            .sum::<usize>();
        let total = u16::try_from(total).unwrap_or(u16::MAX);
        let attributes = if self.class.0 == 0x09 { 0xe0 } else { 0xa0 };
        d.extend_from_slice(&[9, 2]);
        d.extend_from_slice(&total.to_le_bytes());
        d.extend_from_slice(&[self.interfaces.len() as u8, 1, 0, attributes, 50]);
        let mut ep_addr = 0x81u8;
        for (n, i) in self.interfaces.iter().enumerate() {
            d.extend_from_slice(&[
                9,
                4,
                n as u8,
                0,
                i.endpoints,
                i.class,
                i.subclass,
                i.protocol,
                0,
            ]);
            for _ in 0..i.endpoints {
                d.extend_from_slice(&[7, 5, ep_addr, 3, 64, 0, 10]);
                ep_addr = ep_addr.wrapping_add(1);
            }
        }
        d
    }

    /// The `modalias` of interface `n`.
    pub(crate) fn interface_modalias(&self, n: usize, i: &UsbIf) -> String {
        format!(
            "usb:v{:04X}p{:04X}d{:04X}dc{:02X}dsc{:02X}dp{:02X}ic{:02X}isc{:02X}ip{:02X}in{:02X}",
            self.vendor,
            self.product,
            self.bcd_device,
            self.class.0,
            self.class.1,
            self.class.2,
            i.class,
            i.subclass,
            i.protocol,
            n
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_carry_ids_classes_and_lengths() {
        let bt = UsbDev::new("1-14", 0x8087, 0x0aaa)
            .class(0xe0, 1, 1)
            .bcd_device(0x0002)
            .interface(
                UsbIf::new(0xe0, "btusb")
                    .subclass_protocol(1, 1)
                    .endpoints(3),
            )
            .interface(
                UsbIf::new(0xe0, "btusb")
                    .subclass_protocol(1, 1)
                    .endpoints(2),
            );
        let d = bt.descriptors();
        assert_eq!(
            &d[..18],
            &[
                18, 1, 0x00, 0x02, 0xe0, 1, 1, 64, 0x87, 0x80, 0xaa, 0x0a, 0x02, 0, 0, 0, 0, 1
            ]
        );
        let total = 9 + 9 + 3 * 7 + 9 + 2 * 7;
        assert_eq!(d.len(), 18 + total);
        assert_eq!(&d[18..24], &[9, 2, total as u8, 0, 2, 1]);
        assert_eq!(&d[27..32], &[9, 4, 0, 0, 3]);
        assert_eq!(
            bt.interface_modalias(1, &bt.interfaces[1]),
            "usb:v8087p0AAAd0002dcE0dsc01dp01icE0isc01ip01in01"
        );
    }
}
