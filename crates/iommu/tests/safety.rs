//! `assess`: what the safety rule refuses before anything is planned.

use std::fs;

use vfiokit_fakesys::copy_recorded;
use vfiokit_iommu::{Error, Host, HostRole, assess};
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
         (type 0), so bridges stay with the host on pcieport; the functions behind it: \
         0000:01:00.0"
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

#[test]
fn the_only_nic_of_an_isolated_lan_is_refused() {
    // The UM880 Pro without its default route: its only address, 192.168.1.20/24, is on lanbr,
    // whose only port is enp2s0 (02:00.0).
    let (dir, root) = copy_recorded("minisforum-um880pro/configured").unwrap();
    let route = dir.path().join("proc/net/route");
    let text = fs::read_to_string(&route).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| l.split_whitespace().nth(1) != Some("00000000"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(kept.lines().count(), 2, "{kept}");
    fs::write(&route, kept).unwrap();
    let host = Host::scan(&root).unwrap();
    let a = assess(&host, &[addr("02:00.0")], &[]).unwrap();
    assert_eq!(a.harms.len(), 1, "{a:?}");
    let harm = &a.harms[0];
    assert_eq!(harm.address, addr("02:00.0"));
    assert_eq!(harm.roles.len(), 1);
    assert_eq!(harm.roles[0].role, HostRole::HostNetworkNic);
    assert_eq!(harm.roles[0].detail, "enp2s0 under lanbr (192.168.1.0/24)");
    // Only --force-collateral silences it.
    let forced = assess(&host, &[addr("02:00.0")], &[addr("02:00.0")]).unwrap();
    assert!(forced.harms.is_empty());
    // The other NIC carries nothing of the host's and can go.
    assert!(
        assess(&host, &[addr("03:00.0")], &[])
            .unwrap()
            .harms
            .is_empty()
    );
}
