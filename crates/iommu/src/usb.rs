//! USB devices below a controller, read from `/sys/bus/usb/devices` (provisional: the usbredir
//! crate will own USB).

use vfiokit_pci::PciDevice;
use vfiokit_sysfs::SysRoot;

/// A USB device, as much as a safety message needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbBrief {
    /// Kernel name: bus and port path (`1-14`).
    pub port: String,
    /// `idVendor:idProduct` (`8087:0aaa`).
    pub id: String,
    /// The product string, when the device has one.
    pub product: Option<String>,
    /// Interface classes (`03` HID, `e0` wireless/Bluetooth, `08` storage).
    pub interface_classes: Vec<String>,
}

impl UsbBrief {
    /// What kind of device this is, from its interfaces.
    pub fn kind(&self) -> &'static str {
        let has = |c: &str| self.interface_classes.iter().any(|i| i == c);
        if has("03") {
            "input device"
        } else if has("e0") {
            "Bluetooth adapter"
        } else if has("08") {
            "storage device"
        } else if has("01") {
            "audio device"
        } else {
            "device"
        }
    }
}

/// The USB devices (not hubs' interfaces, not root hubs) whose sysfs path lies below `controller`.
/// Unreadable entries are skipped: this only feeds messages.
pub fn usb_devices_below(root: &SysRoot, controller: &PciDevice) -> Vec<UsbBrief> {
    let dir = root.sys_bus_devices("usb");
    let names = root.list_opt(&dir).unwrap_or_default();
    let mut found = Vec::new();
    for name in &names {
        // Devices are `<bus>-<ports>`; root hubs `usb<N>`; interfaces contain `:`.
        if name.contains(':') || !name.contains('-') {
            continue;
        }
        let Ok(real) = root.resolve(&dir.join(name)) else {
            continue;
        };
        if !real.starts_with(&controller.sysfs_path) {
            continue;
        }
        let attr = |f: &str| root.read_attr_opt(&real.join(f)).ok().flatten();
        let interface_classes = names
            .iter()
            .filter(|n| {
                n.strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with(':'))
            })
            .filter_map(|n| {
                root.read_attr_opt(&dir.join(n).join("bInterfaceClass"))
                    .ok()
                    .flatten()
            })
            .collect();
        found.push(UsbBrief {
            port: name.clone(),
            id: format!(
                "{}:{}",
                attr("idVendor").unwrap_or_default(),
                attr("idProduct").unwrap_or_default()
            ),
            product: attr("product"),
            interface_classes,
        });
    }
    found
}
