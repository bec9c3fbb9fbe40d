//! Proxmox `usbN:` entries for redirecting one device.

use crate::UsbDevice;

/// The value of a `usbN:` line for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectEntry {
    /// `host=062a:4101`, or `host=1-2` when the id is not unique, plus `,usb3=1` for SuperSpeed.
    pub value: String,
    /// Chosen by bus-port because another device shares the id: it follows the physical port,
    /// so the device must stay plugged into the same one.
    pub by_port: bool,
}

/// The entry that redirects `device`: by vendor:product when no other device in `all` has the
/// same id, else by bus-port (Proxmox cannot tell two identical receivers apart by id).
pub fn redirect_entry(device: &UsbDevice, all: &[UsbDevice]) -> RedirectEntry {
    let shared = all.iter().filter(|d| d.id == device.id).count() > 1;
    let mut value = if shared {
        format!("host={}", device.port)
    } else {
        format!("host={}", device.id)
    };
    if device.is_superspeed() {
        value.push_str(",usb3=1");
    }
    RedirectEntry {
        value,
        by_port: shared,
    }
}

/// The lowest free `usbN` index: 0 to 13, and 5 and up only when the machine version is 7.1 or
/// newer (Proxmox: "using usbN is only possible with machine type >= 7.1 and ostype l26 or
/// windows > 7").
pub fn next_free_usb(used: &[u32], machine_7_1_or_newer: bool) -> Option<u32> {
    let max = if machine_7_1_or_newer { 13 } else { 4 };
    (0..=max).find(|n| !used.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UsbId;

    fn dev(port: &str, id: &str, speed: &str) -> UsbDevice {
        UsbDevice {
            bus: 1,
            port: port.into(),
            devnum: 2,
            id: id.parse::<UsbId>().unwrap(),
            manufacturer: None,
            product: None,
            serial: None,
            class: 0,
            speed: Some(speed.into()),
            interfaces: vec![],
            controller: None,
            sysfs_path: None,
        }
    }

    #[test]
    fn unique_ids_by_id_shared_ids_by_port_superspeed_with_usb3() {
        let a = dev("1-1", "062a:4101", "12");
        let b = dev("1-2", "062a:4101", "12");
        let c = dev("2-3", "0781:5581", "5000");
        let all = [a.clone(), b.clone(), c.clone()];
        assert_eq!(redirect_entry(&a, &all[..1]).value, "host=062a:4101");
        assert_eq!(
            redirect_entry(&b, &all),
            RedirectEntry {
                value: "host=1-2".into(),
                by_port: true
            }
        );
        assert_eq!(redirect_entry(&c, &all).value, "host=0781:5581,usb3=1");
    }

    #[test]
    fn usb5_and_up_need_machine_7_1() {
        assert_eq!(next_free_usb(&[0, 1, 2, 3, 4], false), None);
        assert_eq!(next_free_usb(&[0, 1, 2, 3, 4], true), Some(5));
        assert_eq!(next_free_usb(&[1], false), Some(0));
        assert_eq!(next_free_usb(&(0..=13).collect::<Vec<_>>(), true), None);
    }
}
