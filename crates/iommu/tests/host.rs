//! IOMMU state, groups, viability, roles and collateral on recorded hosts and fake topologies.

use std::fs;

use vfiokit_fakesys::{copy_recorded, hosts};
use vfiokit_iommu::{Error, Host, HostRole, IommuKind};
use vfiokit_pci::PciAddress;
use vfiokit_sysfs::SysRoot;

fn addr(s: &str) -> PciAddress {
    s.parse().unwrap()
}

fn recorded(name: &str) -> Host {
    let root = SysRoot::new(vfiokit_fakesys::testdata_dir().join(name)).unwrap();
    Host::scan(&root).unwrap()
}

fn role_names(host: &Host, a: &str) -> Vec<HostRole> {
    host.roles_of(addr(a)).iter().map(|r| r.role).collect()
}

#[test]
fn elitedesk_state_groups_and_roles() {
    let host = recorded("elitedesk-800-g4/configured");
    assert!(host.problems.is_empty(), "{:?}", host.problems);
    assert!(host.iommu.enabled);
    assert_eq!(host.iommu.kind, Some(IommuKind::Intel));
    assert_eq!(host.iommu.units, ["dmar0", "dmar1"]);
    assert_eq!(host.iommu.interrupt_remapping, Some(true));
    let ids: Vec<u32> = host.groups.iter().map(|g| g.id).collect();
    assert_eq!(ids, [0, 1, 2, 3, 4, 5, 6, 7]);

    assert_eq!(role_names(&host, "00:1f.6"), [HostRole::DefaultRouteNic]);
    assert_eq!(role_names(&host, "00:17.0"), [HostRole::RootDiskController]);
    assert_eq!(
        role_names(&host, "00:14.0"),
        [
            HostRole::UsbControllerWithInput,
            HostRole::OnlyUsbController
        ]
    );
    assert_eq!(role_names(&host, "00:02.0"), [HostRole::BootVga]);
    for chipset in [
        "00:00.0", "00:12.0", "00:14.2", "00:1f.0", "00:1f.4", "00:1f.5",
    ] {
        assert_eq!(
            role_names(&host, chipset),
            [HostRole::PlatformDevice],
            "{chipset}"
        );
    }
    for free in ["00:14.3", "00:1f.3", "00:16.0"] {
        assert!(role_names(&host, free).is_empty(), "{free}");
    }
    let nic = &host.roles_of(addr("00:1f.6"))[0];
    assert!(
        nic.detail.contains("eno1") && nic.detail.contains("vmbr0"),
        "{}",
        nic.detail
    );
    let disk = &host.roles_of(addr("00:17.0"))[0];
    assert!(
        disk.detail.contains("sda3") && disk.detail.contains("pve-root"),
        "{}",
        disk.detail
    );
}

#[test]
fn passing_the_audio_function_takes_the_network_with_it() {
    let host = recorded("elitedesk-800-g4/configured");
    let audio = host.device(addr("00:1f.3")).unwrap();
    let lost: Vec<String> = host
        .collateral(audio)
        .unwrap()
        .iter()
        .map(|c| c.address.to_string())
        .collect();
    assert_eq!(
        lost,
        [
            "0000:00:1f.0",
            "0000:00:1f.4",
            "0000:00:1f.5",
            "0000:00:1f.6"
        ]
    );
    let group = host.group(7).unwrap();
    let blockers: Vec<String> = host
        .blockers(group)
        .iter()
        .map(|b| b.address.to_string())
        .collect();
    // 1f.0 has no driver and 1f.3 is on vfio-pci; the other three hold the group.
    assert_eq!(blockers, ["0000:00:1f.4", "0000:00:1f.5", "0000:00:1f.6"]);
    // The WiFi function is alone in its group and on vfio-pci: viable, nothing else lost.
    let wifi = host.device(addr("00:14.3")).unwrap();
    assert!(host.collateral(wifi).unwrap().is_empty());
    assert!(host.blockers(host.group(4).unwrap()).is_empty());
}

#[test]
fn fresh_host_has_no_acs_override_and_host_drivers_block_the_igpu() {
    let host = recorded("elitedesk-800-g4/fresh");
    assert_eq!(host.iommu.acs_override, None);
    let blockers = host.blockers(host.group(0).unwrap());
    assert_eq!(blockers.len(), 1);
    assert_eq!(blockers[0].reason, "bound to i915, a host driver");
}

#[test]
fn acs_override_and_disabled_remapping_come_from_the_command_line() {
    let (_dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    fs::write(
        root.proc_cmdline(),
        "BOOT_IMAGE=/vmlinuz ro quiet pcie_acs_override=downstream intremap=off\n",
    )
    .unwrap();
    let host = Host::scan(&root).unwrap();
    assert_eq!(host.iommu.acs_override.as_deref(), Some("downstream"));
    assert_eq!(host.iommu.interrupt_remapping, Some(false));
    // A unit without the IR bit (ecap bit 3) means no remapping either.
    let (_dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    fs::write(
        root.sys_class("iommu").join("dmar1/intel-iommu/ecap"),
        "f050d2\n",
    )
    .unwrap();
    assert_eq!(
        Host::scan(&root).unwrap().iommu.interrupt_remapping,
        Some(false)
    );
}

#[test]
fn a_dgpu_takes_only_its_own_audio_and_the_port_above() {
    let (_dir, root) = hosts::intel_dgpu().write_temp().unwrap();
    let host = Host::scan(&root).unwrap();
    let gpu = host.device(addr("01:00.0")).unwrap();
    let lost = host.collateral(gpu).unwrap();
    let summary: Vec<(String, bool)> = lost
        .iter()
        .map(|c| (c.address.to_string(), c.bridge))
        .collect();
    assert_eq!(
        summary,
        [
            ("0000:00:01.0".to_string(), true),
            ("0000:01:00.1".to_string(), false)
        ]
    );
    assert!(lost.iter().all(|c| {
        host.roles_of(c.address)
            .iter()
            .all(|r| !r.role.is_critical())
    }));
}

#[test]
fn a_group_with_only_a_bridge_besides_the_device() {
    let (_dir, root) = hosts::bridge_in_group().write_temp().unwrap();
    let host = Host::scan(&root).unwrap();
    let group = host.group(3).unwrap();
    // The bridge on pcieport does not block; the NIC on igb does, until vfio-pci takes it.
    let blockers = host.blockers(group);
    assert_eq!(blockers.len(), 1);
    assert_eq!(blockers[0].address, addr("03:00.0"));
    let nic = host.device(addr("03:00.0")).unwrap();
    let lost = host.collateral(nic).unwrap();
    assert_eq!(lost.len(), 1);
    assert!(lost[0].bridge);
}

#[test]
fn sparse_group_numbers_are_kept() {
    let (_dir, root) = hosts::sparse_groups().write_temp().unwrap();
    let host = Host::scan(&root).unwrap();
    let ids: Vec<u32> = host.groups.iter().map(|g| g.id).collect();
    assert_eq!(ids, [0, 3, 17, 42]);
    assert_eq!(host.device(addr("00:1f.6")).unwrap().iommu_group, Some(42));
}

#[test]
fn amd_host_roles_through_nvme_and_a_bridge() {
    let (_dir, root) = hosts::amd_ryzen().write_temp().unwrap();
    let host = Host::scan(&root).unwrap();
    assert!(host.problems.is_empty(), "{:?}", host.problems);
    assert_eq!(host.iommu.kind, Some(IommuKind::Amd));
    assert_eq!(host.iommu.interrupt_remapping, Some(true));
    assert_eq!(role_names(&host, "02:00.0"), [HostRole::RootDiskController]);
    assert_eq!(role_names(&host, "03:00.0"), [HostRole::DefaultRouteNic]);
    let gpu = host.device(addr("01:00.0")).unwrap();
    assert!(
        host.collateral(gpu)
            .unwrap()
            .iter()
            .any(|c| c.address == addr("01:00.1"))
    );
}

#[test]
fn a_variant_vfio_driver_keeps_the_group_viable() {
    let (_dir, root) = copy_recorded("elitedesk-800-g4/configured").unwrap();
    let wifi = root.path("sys/devices/pci0000:00/0000:00:14.3");
    // A vendor's variant driver announces itself by the vfio-dev directory.
    fs::create_dir_all(wifi.join("vfio-dev/vfio1")).unwrap();
    fs::create_dir_all(root.sys_bus_drivers("pci").join("iwl-vfio-pci")).unwrap();
    fs::remove_file(wifi.join("driver")).unwrap();
    std::os::unix::fs::symlink("../../../bus/pci/drivers/iwl-vfio-pci", wifi.join("driver"))
        .unwrap();
    // The kernel's uevent names the bound driver too, and the scan reads it first.
    let uevent = fs::read_to_string(wifi.join("uevent")).unwrap();
    fs::write(
        wifi.join("uevent"),
        uevent.replace("DRIVER=vfio-pci", "DRIVER=iwl-vfio-pci"),
    )
    .unwrap();
    let host = Host::scan(&root).unwrap();
    assert_eq!(
        host.device(addr("00:14.3")).unwrap().driver.as_deref(),
        Some("iwl-vfio-pci")
    );
    assert!(host.blockers(host.group(4).unwrap()).is_empty());
}

#[test]
fn without_an_iommu_there_are_no_groups_and_no_collateral() {
    let (_dir, root) = hosts::no_iommu().write_temp().unwrap();
    let host = Host::scan(&root).unwrap();
    assert!(!host.iommu.enabled);
    assert_eq!(host.iommu.kind, None);
    assert_eq!(host.iommu.interrupt_remapping, None);
    assert!(host.groups.is_empty());
    let nic = host.device(addr("00:1f.6")).unwrap();
    assert!(matches!(host.collateral(nic), Err(Error::NoGroup { .. })));
    assert_eq!(role_names(&host, "00:1f.6"), [HostRole::DefaultRouteNic]);
}

#[test]
fn an_untraceable_root_filesystem_marks_every_storage_controller() {
    let (_dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    fs::write(
        root.proc_mounts(),
        "rpool/ROOT/pve-1 / zfs rw,relatime,xattr,noacl 0 0\n",
    )
    .unwrap();
    let host = Host::scan(&root).unwrap();
    let disk = &host.roles_of(addr("00:17.0"))[0];
    assert_eq!(disk.role, HostRole::RootDiskController);
    assert!(
        disk.detail.contains("could not be traced"),
        "{}",
        disk.detail
    );
}

#[test]
fn assessing_the_seed_requests() {
    use vfiokit_iommu::assess;
    let host = recorded("elitedesk-800-g4/fresh");
    // The iGPU and the WiFi: alone in their groups, nothing critical leaves.
    let ok = assess(&host, &[addr("00:02.0"), addr("00:14.3")], &[]).unwrap();
    assert!(ok.harms.is_empty(), "{:?}", ok.harms);
    assert_eq!(ok.members, [addr("00:02.0"), addr("00:14.3")]);
    // The audio function drags the network, SMBus, SPI flash and LPC bridge along.
    let audio = assess(&host, &[addr("00:1f.3")], &[]).unwrap();
    let harmed: Vec<String> = audio.harms.iter().map(|h| h.address.to_string()).collect();
    assert_eq!(
        harmed,
        [
            "0000:00:1f.0",
            "0000:00:1f.4",
            "0000:00:1f.5",
            "0000:00:1f.6"
        ]
    );
    assert_eq!(audio.members.len(), 5);
    // Accepting some losses explicitly leaves the others refused.
    let partly = assess(
        &host,
        &[addr("00:1f.3")],
        &[addr("00:1f.0"), addr("00:1f.4"), addr("00:1f.5")],
    )
    .unwrap();
    assert_eq!(partly.harms.len(), 1);
    assert_eq!(partly.harms[0].address, addr("00:1f.6"));
    // The USB controller is itself critical.
    let usb = assess(&host, &[addr("00:14.0")], &[]).unwrap();
    assert_eq!(usb.harms[0].address, addr("00:14.0"));
    // Unknown devices are errors.
    assert!(matches!(
        assess(&host, &[addr("00:03.0")], &[]),
        Err(Error::UnknownDevice { .. })
    ));
    let ids: Vec<(String, &str)> = host
        .usb_below(addr("00:14.0"))
        .map(|u| (u.id.to_string(), u.kind()))
        .collect();
    assert_eq!(
        ids,
        [
            ("062a:4101".to_string(), "input device"),
            ("8087:0aaa".to_string(), "Bluetooth adapter")
        ]
    );
}

#[test]
fn the_rtx_2060_takes_its_own_functions_and_a_placeholder_bridge_harmlessly() {
    use vfiokit_iommu::assess;
    let host = recorded("am4-rtx2060/fresh");
    // The card's USB-C UCSI function (class 0c80) is the card's, not the chipset's SPI flash.
    assert!(role_names(&host, "07:00.3").is_empty());
    // AMD's driverless "Dummy Host Bridge" without BARs is a placeholder; the root complex and
    // the data fabric functions stay chipset functions.
    assert!(role_names(&host, "00:03.0").is_empty());
    assert!(role_names(&host, "00:04.0").is_empty());
    let rc = &host.roles_of(addr("00:00.0"))[0];
    assert_eq!(rc.role, HostRole::PlatformDevice);
    assert_eq!(rc.detail, "chipset host bridge (root complex)");
    for df in ["00:18.0", "00:18.3", "00:18.7"] {
        assert_eq!(role_names(&host, df), [HostRole::PlatformDevice], "{df}");
    }
    let gpu = assess(&host, &[addr("07:00.0")], &[]).unwrap();
    assert!(gpu.harms.is_empty(), "{:?}", gpu.harms);
    assert_eq!(
        gpu.members,
        [
            addr("00:03.0"),
            addr("07:00.0"),
            addr("07:00.1"),
            addr("07:00.2"),
            addr("07:00.3")
        ]
    );
    assert_eq!(gpu.bridges, [addr("00:03.1")]);
}

#[test]
fn a_placeholder_with_a_bar_or_a_driver_is_a_chipset_function() {
    use vfiokit_iommu::assess;
    let (_dir, root) = copy_recorded("am4-rtx2060/fresh").unwrap();
    let dummy = root.path("sys/devices/pci0000:00/0000:00:03.0/resource");
    let text = fs::read_to_string(&dummy).unwrap();
    let with_bar = text.replacen(
        "0x0000000000000000 0x0000000000000000 0x0000000000000000",
        "0x00000000fc000000 0x00000000fc0fffff 0x0000000000040200",
        1,
    );
    fs::write(&dummy, with_bar).unwrap();
    let host = Host::scan(&root).unwrap();
    assert_eq!(role_names(&host, "00:03.0"), [HostRole::PlatformDevice]);
    let gpu = assess(&host, &[addr("07:00.0")], &[]).unwrap();
    let harmed: Vec<PciAddress> = gpu.harms.iter().map(|h| h.address).collect();
    assert_eq!(harmed, [addr("00:03.0")]);
}

#[test]
fn card_functions_are_never_platform_devices_in_an_assessment() {
    use vfiokit_iommu::assess;
    // Asking for another function of the card: its slot's functions off bus 0 are the card's.
    let host = recorded("am4-rtx2060/fresh");
    let gpu = assess(&host, &[addr("07:00.2")], &[]).unwrap();
    assert!(gpu.harms.is_empty(), "{:?}", gpu.harms);
    assert!(gpu.members.contains(&addr("07:00.3")));
}

#[test]
fn the_seed_spi_and_the_n100_serial_io_keep_accurate_names() {
    let seed = recorded("elitedesk-800-g4/fresh");
    assert_eq!(
        seed.roles_of(addr("00:1f.5"))[0].detail,
        "chipset SPI flash controller"
    );
    let n100 = recorded("n100/fresh");
    assert_eq!(
        n100.roles_of(addr("00:1f.5"))[0].detail,
        "chipset SPI flash controller"
    );
    let lpss = &n100.roles_of(addr("00:15.0"))[0];
    assert_eq!(lpss.role, HostRole::PlatformDevice);
    assert_eq!(lpss.detail, "chipset serial bus controller");
}

#[test]
fn the_n100_zfs_root_is_traced_to_its_nvme() {
    use vfiokit_iommu::assess;
    let host = recorded("n100/fresh");
    assert!(host.problems.is_empty(), "{:?}", host.problems);
    assert_eq!(role_names(&host, "02:00.0"), [HostRole::RootDiskController]);
    let disk = &host.roles_of(addr("02:00.0"))[0];
    assert_eq!(
        disk.detail,
        "holds nvme0n1p3 (/dev/disk/by-id/nvme-512GB_SSD_MX2310250123456-part3), \
         a vdev of ZFS pool rpool under / (rpool/ROOT/pve-1)"
    );
    assert!(role_names(&host, "00:17.0").is_empty());
    let sata = assess(&host, &[addr("00:17.0")], &[]).unwrap();
    assert!(sata.harms.is_empty(), "{:?}", sata.harms);
    let nvme = assess(&host, &[addr("02:00.0")], &[]).unwrap();
    let harmed: Vec<PciAddress> = nvme.harms.iter().map(|h| h.address).collect();
    assert_eq!(harmed, [addr("02:00.0")]);
}

#[test]
fn a_zfs_root_without_its_pool_status_marks_every_storage_controller() {
    let (_dir, root) = copy_recorded("n100/fresh").unwrap();
    fs::remove_file(root.zpool_status_record()).unwrap();
    let host = Host::scan(&root).unwrap();
    for ctrl in ["00:17.0", "02:00.0"] {
        let disk = &host.roles_of(addr(ctrl))[0];
        assert_eq!(disk.role, HostRole::RootDiskController, "{ctrl}");
        assert!(
            disk.detail.contains("its disks could not be traced")
                && disk.detail.contains("no recorded `zpool status -P`"),
            "{}",
            disk.detail
        );
    }
}

#[test]
fn a_zfs_pool_traced_only_in_part_marks_every_storage_controller() {
    let (_dir, root) = copy_recorded("n100/fresh").unwrap();
    let record = root.zpool_status_record();
    let status = fs::read_to_string(&record).unwrap().replace(
        "\t  /dev/disk/by-id/nvme-512GB_SSD_MX2310250123456-part3  ONLINE       0     0     0\n",
        "\t  mirror-0 ONLINE 0 0 0\n\
         \t    /dev/disk/by-id/nvme-512GB_SSD_MX2310250123456-part3  ONLINE 0 0 0\n\
         \t    /dev/disk/by-id/ata-NOT_HERE-part3  ONLINE 0 0 0\n",
    );
    fs::write(&record, status).unwrap();
    let host = Host::scan(&root).unwrap();
    let sata = &host.roles_of(addr("00:17.0"))[0];
    assert_eq!(sata.role, HostRole::RootDiskController);
    assert!(
        sata.detail.contains("could not be traced") && sata.detail.contains("ata-NOT_HERE"),
        "{}",
        sata.detail
    );
    // A pool on sd names through /dev/disk/by-id and plain nodes: traced to the SATA controller.
    let (_dir, root) = copy_recorded("n100/fresh").unwrap();
    let sys =
        root.path("sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda");
    fs::create_dir_all(sys.join("sda3")).unwrap();
    std::os::unix::fs::symlink(
        "../devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda",
        root.sys_block().join("sda"),
    )
    .unwrap();
    std::os::unix::fs::symlink("../../sda3", root.path("dev/disk/by-id/ata-SATA_SSD-part3"))
        .unwrap();
    fs::write(
        root.zpool_status_record(),
        "  pool: rpool\nconfig:\n\n\tNAME STATE\n\trpool ONLINE\n\t  mirror-0 ONLINE\n\
         \t    /dev/disk/by-id/nvme-512GB_SSD_MX2310250123456-part3 ONLINE\n\
         \t    /dev/disk/by-id/ata-SATA_SSD-part3 ONLINE\n\tspares\n\t  /dev/sdb3 AVAIL\n",
    )
    .unwrap();
    let host = Host::scan(&root).unwrap();
    assert_eq!(role_names(&host, "00:17.0"), [HostRole::RootDiskController]);
    assert_eq!(role_names(&host, "02:00.0"), [HostRole::RootDiskController]);
    assert!(
        host.roles_of(addr("00:17.0"))[0]
            .detail
            .starts_with("holds sda3 ("),
        "{}",
        host.roles_of(addr("00:17.0"))[0].detail
    );
}

/// `Host::scan` builds the groups from the functions' `iommu_group` links; they must be the
/// groups the `iommu_groups/<n>/devices` directories list, on every recorded, built and
/// generated host, and on one whose links the scan could not all read.
#[test]
fn groups_from_the_links_are_the_listed_groups() {
    type Guard = Option<Box<dyn std::any::Any>>; // keeps a temporary copy alive
    let mut roots: Vec<(String, Guard, SysRoot)> = Vec::new();
    for name in [
        "elitedesk-800-g4/fresh",
        "elitedesk-800-g4/configured",
        "elitedesk-800-g4/gvt",
        "am4-rtx2060/fresh",
        "n100/fresh",
        "n100/sriov",
        "minisforum-um880pro/fresh",
        "minisforum-um880pro/configured",
    ] {
        let root = SysRoot::new(vfiokit_fakesys::testdata_dir().join(name)).unwrap();
        roots.push((name.to_string(), None, root));
    }
    for (name, host) in hosts::all() {
        let (dir, root) = host.write_temp().unwrap();
        roots.push((name.to_string(), Some(Box::new(dir)), root));
    }
    let (dir, root) = vfiokit_fakesys::generate::large_host(1000, 1)
        .unwrap()
        .write_temp()
        .unwrap();
    roots.push(("large_host(1000)".into(), Some(Box::new(dir)), root));
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    // An unreadable function: its group must still list it, from the directory.
    let gone = root.sys_bus_devices("pci").join("0000:00:1f.4");
    let real = fs::canonicalize(&gone).unwrap();
    fs::remove_file(real.join("vendor")).unwrap();
    fs::remove_file(real.join("uevent")).unwrap();
    roots.push((
        "elitedesk with an unreadable 1f.4".into(),
        Some(Box::new(dir)),
        root,
    ));
    for (name, _dir, root) in &roots {
        let host = Host::scan(root).unwrap();
        let mut problems = Vec::new();
        let listed = vfiokit_iommu::read_groups(root, &mut problems);
        assert_eq!(host.groups, listed, "{name}");
        assert!(problems.is_empty(), "{name}: {problems:?}");
    }
    let last = &roots.last().unwrap().2;
    let host = Host::scan(last).unwrap();
    assert!(!host.pci.iommu_links_complete);
    let g = host
        .groups
        .iter()
        .find(|g| g.devices.contains(&addr("00:1f.4")));
    assert!(g.is_some(), "the unreadable function stays in its group");
}
