//! Values read from sysfs and the command line: hex attributes, PCI addresses, ids and classes.
//! Whatever parses prints back canonically and parses again to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vfiokit_pci::{ClassCode, DeviceId, PciAddress};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Some(v) = vfiokit_sysfs::parse_hex(s) {
        assert_eq!(vfiokit_sysfs::parse_hex(&format!("{v:#x}")), Some(v));
    }
    if let Ok(a) = s.parse::<PciAddress>() {
        assert_eq!(a.to_string().parse::<PciAddress>().ok(), Some(a));
    }
    if let Ok(d) = s.parse::<DeviceId>() {
        assert_eq!(d.to_string().parse::<DeviceId>().ok(), Some(d));
    }
    if let Ok(c) = s.parse::<ClassCode>() {
        assert_eq!(c.to_string().parse::<ClassCode>().ok(), Some(c));
    }
});
