//! USB devices and controllers on the recorded EliteDesk and on fake topologies.

use std::fs;

use vfiokit_fakesys::{BarKind, PciFn, PcieType, UsbDev, hosts};
use vfiokit_pci::PciAddress;
use vfiokit_sysfs::SysRoot;
use vfiokit_usbredir::{SysfsBackend, UsbBackend, UsbScan, controllers, redirect_entry};

fn addr(s: &str) -> PciAddress {
    s.parse().unwrap()
}

fn scan(root: &SysRoot) -> UsbScan {
    SysfsBackend::new(root.clone()).devices().unwrap()
}

/// The fresh EliteDesk with a second keyboard receiver like the first, a hub with a stick behind
/// it, and a USB card in a PCIe slot with a device of its own.
fn busy_elitedesk() -> vfiokit_fakesys::Host {
    let mut h = hosts::elitedesk_800_g4(hosts::State::Fresh);
    h.usb(
        UsbDev::new("1-2", 0x062a, 0x4101)
            .product("2.4G Keyboard Mouse")
            .interfaces(&[(0x03, "usbhid"), (0x03, "usbhid")]),
    )
    .usb(UsbDev::hub("1-3", 0x05e3, 0x0610, 4))
    .usb(
        UsbDev::new("1-3.2", 0x0781, 0x5581)
            .speed("480")
            .product("Ultra")
            .interfaces(&[(0x08, "usb-storage")]),
    )
    .pci(
        PciFn::new("0000:00:1c.0", 0x8086, 0xa338, 0x060400)
            .bridge(3)
            .driver("pcieport")
            .group(9)
            .pcie(PcieType::RootPort),
    )
    .pci(
        PciFn::new("0000:03:00.0", 0x1912, 0x0014, 0x0c0330)
            .parent("0000:00:1c.0")
            .driver("xhci_hcd")
            .group(9)
            .bar(0, BarKind::Mem64, 0xf000_0000, 0x2000)
            .pcie(PcieType::Endpoint)
            .xhci(4, 4),
    )
    .usb(
        UsbDev::new("4-1", 0x0bda, 0x8153)
            .speed("5000")
            .product("USB 10/100/1000 LAN")
            .interfaces(&[(0xff, "r8152")]),
    );
    h
}

#[test]
fn the_elitedesk_has_the_seeds_two_devices_on_its_only_controller() {
    let root =
        SysRoot::new(vfiokit_fakesys::testdata_dir().join("elitedesk-800-g4/configured")).unwrap();
    let usb = scan(&root);
    assert!(usb.problems.is_empty(), "{:?}", usb.problems);
    let listed: Vec<(String, String, &str)> = usb
        .devices
        .iter()
        .map(|d| (d.port.clone(), d.id.to_string(), d.kind()))
        .collect();
    assert_eq!(
        listed,
        [
            ("1-1".to_string(), "062a:4101".to_string(), "input device"),
            (
                "1-14".to_string(),
                "8087:0aaa".to_string(),
                "Bluetooth adapter"
            ),
        ]
    );
    let receiver = &usb.devices[0];
    assert_eq!((receiver.bus, receiver.devnum), (1, 2));
    assert_eq!(receiver.interfaces.len(), 2);
    assert_eq!(receiver.interfaces[0].driver.as_deref(), Some("usbhid"));
    assert_eq!(receiver.speed.as_deref(), Some("12"));
    assert!(!receiver.is_superspeed() && !receiver.is_hub());
    let pci = vfiokit_pci::scan(&root).unwrap();
    let ctrls = controllers(&pci, &usb);
    assert_eq!(ctrls.len(), 1);
    assert!(ctrls[0].only);
    assert_eq!(ctrls[0].controller, addr("00:14.0"));
    assert_eq!(ctrls[0].inputs().count(), 1);
    assert_eq!(ctrls[0].bluetooth().count(), 1);
    assert_eq!(ctrls[0].storage().count(), 0);
}

#[test]
fn identical_receivers_hubs_and_a_second_controller() {
    let (_dir, root) = busy_elitedesk().write_temp().unwrap();
    let usb = scan(&root);
    assert!(usb.problems.is_empty(), "{:?}", usb.problems);
    let ports: Vec<&str> = usb.devices.iter().map(|d| d.port.as_str()).collect();
    assert_eq!(ports, ["1-1", "1-14", "1-2", "1-3", "1-3.2", "4-1"]);
    // Two receivers with one id: each is redirected by its port.
    let first = &usb.devices[0];
    assert_eq!(redirect_entry(first, &usb.devices).value, "host=1-1");
    let bt = &usb.devices[1];
    assert_eq!(redirect_entry(bt, &usb.devices).value, "host=8087:0aaa");
    // The stick sits behind the hub, still on the onboard controller.
    let stick = usb.devices.iter().find(|d| d.port == "1-3.2").unwrap();
    assert_eq!(stick.controller, Some(addr("00:14.0")));
    assert!(stick.is_storage());
    assert!(
        usb.devices
            .iter()
            .find(|d| d.port == "1-3")
            .unwrap()
            .is_hub()
    );
    // The NIC on the card: SuperSpeed, so usb3=1.
    let nic = usb.devices.iter().find(|d| d.port == "4-1").unwrap();
    assert_eq!(nic.controller, Some(addr("03:00.0")));
    assert_eq!(
        redirect_entry(nic, &usb.devices).value,
        "host=0bda:8153,usb3=1"
    );
    // With the card, the onboard controller is no longer the only one.
    let pci = vfiokit_pci::scan(&root).unwrap();
    let ctrls = controllers(&pci, &usb);
    assert_eq!(ctrls.len(), 2);
    assert!(ctrls.iter().all(|c| !c.only));
    let onboard = ctrls
        .iter()
        .find(|c| c.controller == addr("00:14.0"))
        .unwrap();
    assert_eq!(onboard.inputs().count(), 2);
    assert_eq!(onboard.storage().count(), 1);
    let card = ctrls
        .iter()
        .find(|c| c.controller == addr("03:00.0"))
        .unwrap();
    assert_eq!(card.devices.len(), 1);
    assert_eq!(card.inputs().count(), 0);
}

#[test]
fn a_host_without_usb_lists_nothing() {
    let (_dir, root) = hosts::no_iommu().write_temp().unwrap();
    let usb = scan(&root);
    assert!(usb.devices.is_empty() && usb.problems.is_empty());
}

#[test]
fn missing_strings_bad_bytes_and_vanished_devices_are_reported_not_fatal() {
    let (dir, root) = vfiokit_fakesys::copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let dev = dir
        .path()
        .join("sys/devices/pci0000:00/0000:00:14.0/usb1/1-1");
    fs::write(dev.join("product"), b"Wireless \xe9 Mouse\n").unwrap();
    fs::remove_file(dev.join("idProduct")).unwrap();
    // `uevent` carries the ids too (and is read first): without it the files are read.
    fs::remove_file(dev.join("uevent")).unwrap();
    let bt = dir
        .path()
        .join("sys/devices/pci0000:00/0000:00:14.0/usb1/1-14");
    fs::write(bt.join("manufacturer"), b"Int\xffel\n").unwrap();
    // A device unplugged between listing and reading: its link dangles.
    std::os::unix::fs::symlink(
        "../../../devices/pci0000:00/0000:00:14.0/usb1/1-9",
        dir.path().join("sys/bus/usb/devices/1-9"),
    )
    .unwrap();
    let usb = scan(&root);
    let ports: Vec<&str> = usb.devices.iter().map(|d| d.port.as_str()).collect();
    assert_eq!(ports, ["1-14"]);
    assert_eq!(
        usb.devices[0].manufacturer.as_deref(),
        Some("Int\u{fffd}el")
    );
    let problems = usb.problems.join("\n");
    for needle in [
        "1-1/idProduct",
        "1-14/manufacturer: not UTF-8",
        "devices/1-9",
    ] {
        assert!(problems.contains(needle), "no {needle} in:\n{problems}");
    }
}

/// Built with `--features rusb` (`.ci/run` runs it so).
#[cfg(feature = "rusb")]
#[test]
fn the_live_backend_reports_no_access_instead_of_panicking() {
    // This machine may or may not give libusb a usbfs; either way the call returns.
    match vfiokit_usbredir::RusbBackend.devices() {
        Ok(scan) => assert!(scan.devices.iter().all(|d| d.port.contains('-'))),
        Err(e) => assert!(e.to_string().starts_with("no USB access"), "{e}"),
    }
}

/// Where the kernel confines reads, devices come from `uevent` and interfaces from `modalias`
/// (one read each instead of five and four attribute files); the user-space walk reads every
/// attribute file. Both must find the same devices, on every recorded and built host.
#[test]
fn uevent_and_modalias_give_what_the_attribute_files_give() {
    use vfiokit_sysfs::Confinement;
    type Guard = Option<Box<dyn std::any::Any>>; // keeps a temporary copy alive
    let mut dirs: Vec<(String, std::path::PathBuf, Guard)> = Vec::new();
    for name in [
        "elitedesk-800-g4/fresh",
        "elitedesk-800-g4/configured",
        "am4-rtx2060/fresh",
        "n100/fresh",
        "minisforum-um880pro/fresh",
    ] {
        dirs.push((
            name.into(),
            vfiokit_fakesys::testdata_dir().join(name),
            None,
        ));
    }
    let mut hosts_list: Vec<(String, vfiokit_fakesys::Host)> = hosts::all()
        .into_iter()
        .map(|(n, h)| (n.to_string(), h))
        .collect();
    hosts_list.push(("busy elitedesk".into(), busy_elitedesk()));
    for (name, host) in hosts_list {
        let (dir, root) = host.write_temp().unwrap();
        dirs.push((name, root.root().to_path_buf(), Some(Box::new(dir))));
    }
    let mut seen = 0;
    for (name, dir, _guard) in &dirs {
        let kernel = SysRoot::new(dir).unwrap();
        let walk = SysRoot::with_confinement(dir, Confinement::Walk).unwrap();
        let (a, b) = (scan(&kernel), scan(&walk));
        assert_eq!(a.devices, b.devices, "{name}");
        assert_eq!(a.problems, b.problems, "{name}");
        seen += a.devices.iter().map(|d| d.interfaces.len()).sum::<usize>();
    }
    assert!(seen > 10, "interfaces were compared: {seen}");
}
