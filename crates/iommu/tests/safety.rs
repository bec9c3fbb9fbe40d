//! `assess`: what the safety rule refuses before anything is planned.

use vfiokit_iommu::{Error, Host, assess};
use vfiokit_pci::PciAddress;
use vfiokit_sysfs::SysRoot;

fn addr(s: &str) -> PciAddress {
    s.parse().unwrap()
}

fn recorded(name: &str) -> Host {
    let root = SysRoot::new(vfiokit_fakesys::testdata_dir().join(name)).unwrap();
    Host::scan(&root).unwrap()
}

#[test]
fn a_requested_root_port_is_refused_naming_the_devices_behind_it() {
    let host = recorded("n100/fresh");
    let err = assess(&host, &[addr("00:1c.0")], &[]).unwrap_err();
    let Error::RequestedBridge {
        address, behind, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(
        (*address, behind.as_slice()),
        (addr("00:1c.0"), &[addr("01:00.0")][..])
    );
    assert_eq!(
        err.to_string(),
        "0000:00:1c.0 (Intel Corporation Alder Lake-N PCI Express Root Port #7) is a PCI bridge, \
         which no VM can have: vfio-pci refuses every function whose header type is not normal \
         (type 0), so bridges stay with the host on pcieport; request the devices behind it \
         instead: 0000:01:00.0"
    );
    // Accepting its loss changes nothing: vfio-pci would still refuse it.
    assert!(matches!(
        assess(
            &host,
            &[addr("01:00.0"), addr("00:1c.0")],
            &[addr("00:1c.0")]
        ),
        Err(Error::RequestedBridge { .. })
    ));
}

#[test]
fn the_devices_behind_a_bridge_are_found_through_bridges_below_it() {
    // On the AM4 board the chipset's switch 02:00.2 has downstream ports 03:00.0, 03:08.0 and
    // 03:09.0, and 05:00.0 behind 03:08.0: only the endpoints can be requested.
    let host = recorded("am4-rtx2060/fresh");
    let expected: Vec<PciAddress> = host
        .pci
        .devices
        .iter()
        .filter(|d| d.address.bus >= 3 && d.address.bus <= 6 && !d.is_bridge())
        .map(|d| d.address)
        .collect();
    assert!(expected.contains(&addr("05:00.0")), "{expected:?}");
    match assess(&host, &[addr("02:00.2")], &[]) {
        Err(Error::RequestedBridge { behind, .. }) => assert_eq!(behind, expected),
        other => panic!("{other:?}"),
    }
    assert_eq!(host.behind(addr("07:00.0")), []);
}
