//! Ready-made hosts for tests: the recorded hosts of `testdata/` ([`recorded`]: the EliteDesk
//! 800 G4 fresh, configured and with GVT-g, the UM880 Pro, the AM4 host with an RTX 2060, the
//! N100 fresh and with SR-IOV) and small topologies that each
//! exercise one thing (an AMD host, a discrete GPU behind a root port, identical GPUs, a
//! bridge sharing a group, sparse group numbers, Intel VMD, no IOMMU).
//!
//! Each function returns a [`Host`] that the caller can still change before writing it.

use crate::{
    BarKind, Disk, DmVolume, DmarUnit, Host, Iommu, NetIf, PciFn, PcieType, UsbDev, UsbIf,
};
use std::net::Ipv4Addr;

mod am4;
mod n100;
mod um880pro;

pub use am4::am4_rtx2060;
pub use n100::{N100State, n100};
pub use um880pro::{Um880State, minisforum_um880pro};

/// Which recorded state of the EliteDesk 800 G4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Right after installing Proxmox VE 8.4 and cloning the Windows 11 VM: host drivers bound,
    /// stock `/etc`, VM 100 without passthrough.
    Fresh,
    /// After the seed's setup: IOMMU options on the command line, `vfio.conf` with blacklists
    /// and `ids=`, vfio-pci bound to 00:02.0, 00:14.3 and 00:1f.3, VM 100 passing the iGPU,
    /// the WiFi and two USB devices.
    Configured,
    /// The fresh host with GVT-g enabled (`i915.enable_gvt=1`, `kvmgt`): the iGPU stays on
    /// i915 and offers the four `i915-GVTg_V5_*` types; VM 100 uses one `i915-GVTg_V5_8`, VM 101
    /// has no passthrough.
    Gvt,
}

impl State {
    /// The directory name under `testdata/elitedesk-800-g4/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            State::Fresh => "fresh",
            State::Configured => "configured",
            State::Gvt => "gvt",
        }
    }
}

/// `ACS` capability bits: source validation, translation blocking, P2P request redirect,
/// completion redirect, upstream forwarding, egress control, direct translated P2P.
pub const ACS_CAP_ALL: u16 = 0x007f;
/// `ACS` control bits the kernel enables for isolation: SV, RR, CR, UF.
pub const ACS_CTRL_ISOLATED: u16 = 0x001d;

const HP: (u16, u16) = (0x103c, 0x83e2);
const MIB: u64 = 1 << 20;

/// The HP EliteDesk 800 G4 DM of the seed notes (Core i5-8400T, Q370 PCH, Proxmox VE 8.4,
/// kernel 6.8.12-11-pve) in one of its two recorded states.
pub fn elitedesk_800_g4(state: State) -> Host {
    let configured = state == State::Configured;
    let pick = |fresh: &'static str, conf: &'static str| if configured { conf } else { fresh };
    let mut h = Host::new();
    h.cmdline(pick(
        "BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet",
        "BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet intel_iommu=on iommu=pt \
         pcie_acs_override=downstream,multifunction,id:8086:a348,id:8086:a370",
    ))
    .iommu(Iommu::Intel(vec![
        DmarUnit {
            name: "dmar0".into(),
            cap: 0x1c0000c40660462,
            ecap: 0x19e2ff0505e,
            address: 0xfed90000,
        },
        DmarUnit {
            name: "dmar1".into(),
            cap: 0xd2008c40660462,
            ecap: 0xf050da,
            address: 0xfed91000,
        },
    ]));
    let intel = |addr: &str, device: u16, class: u32| {
        PciFn::new(addr, 0x8086, device, class)
            .subsystem(HP.0, HP.1)
            .revision(0x10)
    };
    let with_driver = |f: PciFn, driver: &str| {
        if driver.is_empty() {
            f
        } else {
            f.driver(driver)
        }
    };
    h.pci(
        intel("0000:00:00.0", 0x3ec2, 0x060000)
            .revision(0x07)
            .vendor_cap(0x10)
            .cap_offsets(&[0xe0])
            .group(1),
    )
    .pci(
        intel("0000:00:02.0", 0x3e92, 0x030000)
            .revision(0x00)
            .driver(pick("i915", "vfio-pci"))
            .group(0)
            .boot_vga(true)
            .irq(16)
            .bar(0, BarKind::Mem64, 0xe000_0000, 16 * MIB)
            .bar(2, BarKind::Mem64Prefetch, 0xd000_0000, 256 * MIB)
            .bar(4, BarKind::Io, 0x3000, 0x40)
            .vendor_cap(0x0c)
            .pcie(PcieType::RcIntegratedEndpoint)
            .flr()
            .msi()
            .pm()
            .cap_offsets(&[0x40, 0x70, 0xac, 0xd0]),
    )
    .pci(
        intel("0000:00:12.0", 0xa379, 0x118000)
            .driver("intel_pch_thermal")
            .group(2)
            .irq(16)
            .bar(0, BarKind::Mem64, 0x40_0011_6000, 0x1000)
            .pm()
            .msi()
            .cap_offsets(&[0x50, 0x80]),
    )
    .pci(
        intel("0000:00:14.0", 0xa36d, 0x0c0330)
            .driver("xhci_hcd")
            .group(3)
            .irq(124)
            .bar(0, BarKind::Mem64, 0xe122_0000, 0x10000)
            .pm()
            .msi()
            .vendor_cap(0x14)
            .cap_offsets(&[0x70, 0x80, 0x90])
            .xhci(16, 10),
    )
    .pci(
        intel("0000:00:14.2", 0xa36f, 0x050000)
            .group(3)
            .bar(0, BarKind::Mem64, 0x40_0011_4000, 0x2000)
            .bar(2, BarKind::Mem64, 0x40_0011_7000, 0x1000)
            .pm()
            .cap_offsets(&[0x80]),
    )
    .pci(
        intel("0000:00:14.3", 0xa370, 0x028000)
            .driver(pick("iwlwifi", "vfio-pci"))
            .group(4)
            .irq(16)
            .bar(0, BarKind::Mem64, 0x40_0011_0000, 0x4000)
            .pm()
            .msi()
            .pcie(PcieType::RcIntegratedEndpoint)
            .flr()
            .msix(16)
            .cap_offsets(&[0xc8, 0xd0, 0x40, 0x80]),
    )
    .pci(
        intel("0000:00:16.0", 0xa360, 0x078000)
            .driver("mei_me")
            .group(5)
            .irq(125)
            .bar(0, BarKind::Mem64, 0x40_0011_9000, 0x1000)
            .pm()
            .msi()
            .cap_offsets(&[0x50, 0x8c]),
    )
    .pci(
        intel("0000:00:16.3", 0xa363, 0x070002)
            .driver("serial")
            .group(5)
            .irq(19)
            .bar(0, BarKind::Io, 0x3080, 0x8)
            .bar(1, BarKind::Mem32, 0xe123_8000, 0x1000)
            .pm()
            .msi()
            .cap_offsets(&[0x40, 0x50]),
    )
    .pci(
        intel("0000:00:17.0", 0x2822, 0x010400)
            .driver("ahci")
            .group(6)
            .irq(126)
            .bar(0, BarKind::Mem32, 0xe123_4000, 0x2000)
            .bar(1, BarKind::Mem32, 0xe123_7000, 0x100)
            .bar(2, BarKind::Io, 0x3090, 0x8)
            .bar(3, BarKind::Io, 0x30a0, 0x4)
            .bar(4, BarKind::Io, 0x3060, 0x20)
            .bar(5, BarKind::Mem32, 0xe123_6000, 0x800)
            .msi()
            .pm()
            .cap_offsets(&[0x80, 0x70]),
    )
    .pci(intel("0000:00:1f.0", 0xa306, 0x060100).group(7))
    .pci(with_driver(
        intel("0000:00:1f.3", 0xa348, 0x040300)
            .group(7)
            .irq(16)
            .bar(0, BarKind::Mem64, 0x40_0010_0000, 0x4000)
            .bar(4, BarKind::Mem64, 0x40_0000_0000, MIB)
            .pm()
            .pme_d3cold()
            .msi()
            .cap_offsets(&[0x50, 0x60]),
        pick("snd_hda_intel", "vfio-pci"),
    ))
    .pci(
        intel("0000:00:1f.4", 0xa323, 0x0c0500)
            .driver("i801_smbus")
            .group(7)
            .irq(16)
            .bar(0, BarKind::Mem64, 0x40_0011_8000, 0x100)
            .bar(4, BarKind::Io, 0xefa0, 0x20),
    )
    .pci(
        intel("0000:00:1f.5", 0xa324, 0x0c8000)
            .driver("intel-spi")
            .group(7)
            .bar(0, BarKind::Mem32, 0xfe01_0000, 0x1000),
    )
    .pci(
        intel("0000:00:1f.6", 0x15bb, 0x020000)
            .driver("e1000e")
            .group(7)
            .irq(127)
            .bar(0, BarKind::Mem32, 0xe120_0000, 0x20000)
            .pm()
            .msi()
            .af(true)
            .cap_offsets(&[0xc8, 0xd0, 0xe0]),
    );

    // USB: the 2.4 GHz keyboard/mouse receiver on port 1 and the CNVi Bluetooth on port 14.
    h.usb(
        UsbDev::new("1-1", 0x062a, 0x4101)
            .bcd_device(0x0110)
            .manufacturer("MOSART Semi.")
            .product("2.4G Keyboard Mouse")
            .interface(UsbIf::new(0x03, "usbhid").subclass_protocol(1, 1))
            .interface(UsbIf::new(0x03, "usbhid").subclass_protocol(1, 2)),
    )
    .usb(
        UsbDev::new("1-14", 0x8087, 0x0aaa)
            .class(0xe0, 0x01, 0x01)
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
            ),
    );

    // Network: eno1 in vmbr0 (192.168.10.104/24, default route), netbird's wt0, the WiFi
    // interface only while iwlwifi owns 00:14.3.
    h.net(NetIf::pci("eno1", "0000:00:1f.6", "c8:d9:d2:1a:2b:3c"));
    if !configured {
        h.net(NetIf::pci("wlp0s20f3", "0000:00:14.3", "a0:a4:c5:5e:6f:70").down());
    }
    h.net(NetIf::bridge("vmbr0", &["eno1"]))
        .net(NetIf::virtual_if("wt0"))
        .route_default("vmbr0", [192, 168, 10, 1])
        .route("wt0", [100, 102, 0, 0], 16, None)
        .route("vmbr0", [192, 168, 10, 0], 24, None);

    // Storage: one SATA SSD, Proxmox's default LVM layout on its third partition.
    h.disk(
        Disk::sata("sda", "0000:00:17.0", 0)
            .model("SAMSUNG MZNLN256HAJQ-000H1")
            .size(500_118_192)
            .partitions(&[2014, 2_097_152, 498_016_944]),
    )
    .dm(DmVolume::new(
        "pve-swap",
        "LVM-0bQ5wXv0Q3kTq1a7cJzB8mN2rS4tU6vWy3Yf9GhJkLmNpQrStUvWxYz0123456",
        &["sda3"],
    )
    .size(16_777_216))
    .dm(DmVolume::new(
        "pve-root",
        "LVM-0bQ5wXv0Q3kTq1a7cJzB8mN2rS4tU6vWq8Rs2TuVwXyZaBcDeFgHiJkLmNoPq",
        &["sda3"],
    )
    .size(81_788_928))
    .mount("/dev/mapper/pve-root", "/", "ext4")
    .mount("/dev/sda2", "/boot/efi", "vfat")
    .mount("/dev/fuse", "/etc/pve", "fuse");

    common_aliases(&mut h);
    h.module_param("kvm", "ignore_msrs", pick("N", "Y"));
    if configured {
        h.module_param("vfio_iommu_type1", "allow_unsafe_interrupts", "Y");
    }

    h.file("etc/hostname", "pve\n")
        .file(
            "etc/default/grub",
            grub(pick("quiet", "quiet intel_iommu=on iommu=pt")),
        )
        .file(
            "etc/modules",
            format!(
                "{MODULES_HEADER}{}",
                pick("", "vfio\nvfio_iommu_type1\nvfio_pci\nvfio_virqfd\n")
            ),
        )
        .file("etc/modprobe.d/pve-blacklist.conf", PVE_BLACKLIST)
        .file("etc/network/interfaces", ELITEDESK_INTERFACES)
        .file(
            "etc/pve/qemu-server/100.conf",
            pick(VM100_FRESH, VM100_CONFIGURED),
        )
        // What `qemu-system-x86_64 --version` printed on the seed host (Proxmox 8.4).
        .file(
            "var/lib/vfiokit/capture/qemu-version",
            "QEMU emulator version 9.2.0 (pve-qemu-kvm_9.2.0-5)\n\
             Copyright (c) 2003-2024 Fabrice Bellard and the QEMU Project developers\n",
        );
    // The modules.dep lines the sharing rules ask about: Proxmox's kernel builds kvmgt.
    h    .module_dep("kernel/drivers/gpu/drm/i915/i915.ko: kernel/drivers/gpu/drm/drm_buddy.ko kernel/drivers/gpu/drm/ttm/ttm.ko kernel/drivers/gpu/drm/display/drm_display_helper.ko kernel/drivers/media/cec/core/cec.ko kernel/drivers/media/rc/rc-core.ko kernel/drivers/i2c/algos/i2c-algo-bit.ko kernel/drivers/gpu/drm/drm_kms_helper.ko kernel/drivers/video/video.ko")
        .module_dep("kernel/drivers/gpu/drm/i915/kvmgt.ko: kernel/drivers/vfio/mdev/mdev.ko kernel/drivers/vfio/vfio.ko kernel/drivers/iommu/iommufd/iommufd.ko kernel/arch/x86/kvm/kvm.ko kernel/drivers/gpu/drm/i915/i915.ko kernel/drivers/gpu/drm/drm_buddy.ko kernel/drivers/gpu/drm/ttm/ttm.ko kernel/drivers/gpu/drm/display/drm_display_helper.ko kernel/drivers/media/cec/core/cec.ko kernel/drivers/media/rc/rc-core.ko kernel/drivers/i2c/algos/i2c-algo-bit.ko kernel/drivers/gpu/drm/drm_kms_helper.ko kernel/drivers/video/video.ko")
        .module_dep("kernel/drivers/vfio/mdev/mdev.ko:")
        .module_dep("kernel/drivers/vfio/pci/vfio-pci.ko: kernel/drivers/vfio/pci/vfio-pci-core.ko kernel/drivers/vfio/vfio.ko kernel/drivers/iommu/iommufd/iommufd.ko kernel/drivers/virt/lib/irqbypass.ko");
    if configured {
        h.file("etc/modprobe.d/vfio.conf", ELITEDESK_VFIO_CONF);
        // The kernel and journal lines the seed notes publish, as `capture` records them.
        let log: String = ELITEDESK_KERNEL_LOG
            .lines()
            .map(|l| format!("{}\n", l.trim_start()))
            .collect();
        h.file("var/lib/vfiokit/capture/kernel-log", log);
    }
    if state == State::Gvt {
        enable_gvt(&mut h);
    }
    h
}

/// The seed's published `dmesg` and journal lines (`../shared/seeds/`), also the explain
/// crate's test input.
const ELITEDESK_KERNEL_LOG: &str = include_str!("../../../testdata/logs/elitedesk-800-g4.log");

/// The GVT-g type table of `gvt/vgpu.c` for a gen-9 iGPU: (suffix, low GM MB, high GM MB,
/// resolution, weight); every type has 4 fences.
const GVT_TYPES: [(u32, u32, u32, &str, u32); 4] = [
    (8, 64, 384, "1024x768", 2),
    (4, 128, 512, "1920x1200", 4),
    (2, 256, 1024, "1920x1200", 8),
    (1, 512, 2048, "1920x1200", 16),
];

/// Turns the fresh EliteDesk into its GVT-g state: the command line and `/etc` as Proxmox's
/// documentation has them, the four mdev types of 00:02.0 with what is
/// left of the 256 MB aperture (BAR 2) after the host's 128 MB and VM 100's `GVTg_V5_8`
/// (64 MB): one more `_8`, nothing larger.
fn enable_gvt(h: &mut Host) {
    let vm100_uuid = "00000000-0000-0000-0000-000000000100";
    if let Some(igpu) = h.pci_function_mut("0000:00:02.0") {
        let mut f = igpu.clone();
        for (n, low, high, resolution, weight) in GVT_TYPES {
            let free_low = 256 - 128 - 64;
            let mut t = crate::MdevType::new(
                &format!("i915-GVTg_V5_{n}"),
                &format!("GVTg_V5_{n}"),
                &format!(
                    "low_gm_size: {low}MB\nhigh_gm_size: {high}MB\nfence: 4\nresolution: {resolution}\nweight: {weight}\n"
                ),
                free_low / low,
            );
            if n == 8 {
                t = t.instance(vm100_uuid, "intel_vgpu_mdev");
            }
            f = f.mdev_type(t);
        }
        *igpu = f;
    }
    h.cmdline(
        "BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet i915.enable_gvt=1",
    )
    .module_param("i915", "enable_gvt", "Y")
    .file("etc/default/grub", grub("quiet i915.enable_gvt=1"))
    .file("etc/modules", format!("{MODULES_HEADER}kvmgt\n"))
    .file(
        "etc/pve/qemu-server/100.conf",
        VM100_FRESH.replace(
            "machine:",
            "hostpci0: 0000:00:02.0,mdev=i915-GVTg_V5_8\nmachine:",
        ),
    )
    .file("etc/pve/qemu-server/101.conf", VM101_GVT);
}

/// The `modules.alias` lines of the drivers the test hosts use, plus unrelated ones so that
/// matching has something to skip.
pub fn common_aliases(h: &mut Host) {
    for (pattern, module) in [
        ("pci:v00008086d00003E92sv*sd*bc03sc*i*", "i915"),
        ("pci:v00008086d00003E98sv*sd*bc03sc*i*", "i915"),
        ("pci:v00008086d0000A348sv*sd*bc*sc*i*", "snd_hda_intel"),
        ("pci:v00008086d*sv*sd*bc04sc03i*", "snd_hda_intel"),
        ("pci:v000010DEd*sv*sd*bc04sc03i00*", "snd_hda_intel"),
        ("pci:v00001002d*sv*sd*bc04sc03i00*", "snd_hda_intel"),
        (
            "pci:v00008086d0000A348sv*sd*bc*sc*i*",
            "snd_sof_pci_intel_cnl",
        ),
        ("pci:v00008086d00002526sv*sd00000034bc*sc*i*", "iwlwifi"),
        ("pci:v00008086d0000A370sv*sd00000034bc*sc*i*", "iwlwifi"),
        ("pci:v00008086d0000A370sv*sd*bc*sc*i*", "iwlwifi"),
        ("pci:v00008086d000015BBsv*sd*bc*sc*i*", "e1000e"),
        ("pci:v00008086d00001539sv*sd*bc*sc*i*", "igb"),
        ("pci:v*d*sv*sd*bc0Csc03i30*", "xhci_pci"),
        ("pci:v00008086d00002822sv*sd*bc*sc*i*", "ahci"),
        ("pci:v*d*sv*sd*bc01sc06i01*", "ahci"),
        ("pci:v*d*sv*sd*bc01sc08i02*", "nvme"),
        ("pci:v00008086d0000467Fsv*sd*bc*sc*i*", "vmd"),
        ("pci:v00008086d0000A360sv*sd*bc*sc*i*", "mei_me"),
        ("pci:v00008086d0000A379sv*sd*bc*sc*i*", "intel_pch_thermal"),
        ("pci:v00008086d0000A323sv*sd*bc*sc*i*", "i2c_i801"),
        ("pci:v00008086d0000A324sv*sd*bc*sc*i*", "spi_intel_pci"),
        ("pci:v*d*sv*sd*bc07sc00i*", "8250_pci"),
        ("pci:v*d*sv*sd*bc07sc03i*", "8250_pci"),
        ("pci:v000010DEd*sv*sd*bc03sc*i*", "nouveau"),
        ("pci:v00001002d000073BFsv*sd*bc*sc*i*", "amdgpu"),
        ("pci:v00001022d00001481sv*sd*bc*sc*i*", "amd_iommu_v2"),
        ("usb:v8087p0AAAd*dc*dsc*dp*ic*isc*ip*in*", "btusb"),
        ("usb:v*p*d*dc*dsc*dp*icE0isc01ip01in*", "btusb"),
        ("usb:v*p*d*dc*dsc*dp*ic03isc*ip*in*", "usbhid"),
        ("usb:v*p*d*dc09dsc*dp*ic*isc*ip*in*", "usbcore"),
    ] {
        h.alias(pattern, module);
    }
}

/// An AMD Ryzen host with AMD-Vi: a Radeon GPU and its audio function behind root port
/// 00:01.1, the NVMe root disk behind 00:01.2, an Intel NIC behind 00:02.1, and the xHCI
/// controller behind the internal bridge 00:08.1. Root ports have ACS, so each endpoint
/// device gets its own group.
pub fn amd_ryzen() -> Host {
    let mut h = Host::new();
    h.cmdline("BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet iommu=pt")
        .iommu(Iommu::Amd(vec![crate::AmdUnit {
            name: "ivhd0".into(),
            pci: "0000:00:00.2".into(),
            cap: 0x0040_0000,
            features: 0x246577efa2254afa,
        }]));
    let amd = |addr: &str, device: u16, class: u32| PciFn::new(addr, 0x1022, device, class);
    let port = |addr: &str, device: u16, secondary: u8, group: u32| {
        amd(addr, device, 0x060400)
            .bridge(secondary)
            .driver("pcieport")
            .group(group)
            .irq(28)
            .pm()
            .pcie(PcieType::RootPort)
            .msi()
            .acs(ACS_CAP_ALL, ACS_CTRL_ISOLATED)
    };
    h.pci(amd("0000:00:00.0", 0x1480, 0x060000).group(0))
        .pci(
            amd("0000:00:00.2", 0x1481, 0x080600)
                .pcie(PcieType::RcIntegratedEndpoint)
                .msi(),
        )
        .pci(amd("0000:00:01.0", 0x1482, 0x060000).group(2))
        .pci(port("0000:00:01.1", 0x1483, 1, 3))
        .pci(port("0000:00:01.2", 0x1483, 2, 4))
        .pci(port("0000:00:02.1", 0x1483, 3, 5))
        .pci(port("0000:00:08.1", 0x1484, 4, 6))
        .pci(
            PciFn::new("0000:01:00.0", 0x1002, 0x73bf, 0x030000)
                .subsystem(0x1da2, 0xe438)
                .revision(0xc1)
                .parent("0000:00:01.1")
                .driver("amdgpu")
                .group(7)
                .boot_vga(true)
                .irq(95)
                .bar(0, BarKind::Mem64Prefetch, 0x7c_0000_0000, 16 * 1024 * MIB)
                .bar(2, BarKind::Mem64Prefetch, 0x7c_0400_0000, 256 * MIB)
                .bar(4, BarKind::Io, 0xf000, 0x100)
                .bar(5, BarKind::Mem32, 0xfcc0_0000, MIB)
                .pcie(PcieType::LegacyEndpoint)
                .link(4, 16)
                .pm()
                .msi()
                .msix(4),
        )
        .pci(
            PciFn::new("0000:01:00.1", 0x1002, 0xab28, 0x040300)
                .subsystem(0x1002, 0xab28)
                .parent("0000:00:01.1")
                .driver("snd_hda_intel")
                .group(7)
                .irq(96)
                .bar(0, BarKind::Mem32, 0xfcd2_0000, 0x4000)
                .pcie(PcieType::LegacyEndpoint)
                .pm()
                .msi(),
        )
        .pci(
            PciFn::new("0000:02:00.0", 0x144d, 0xa80a, 0x010802)
                .subsystem(0x144d, 0xa801)
                .parent("0000:00:01.2")
                .driver("nvme")
                .group(8)
                .bar(0, BarKind::Mem64, 0xfce0_0000, 0x4000)
                .pm()
                .msi()
                .pcie(PcieType::Endpoint)
                .flr()
                .msix(130),
        )
        .pci(
            PciFn::new("0000:03:00.0", 0x8086, 0x1539, 0x020000)
                .subsystem(0x1849, 0x1539)
                .revision(0x03)
                .parent("0000:00:02.1")
                .driver("igb")
                .group(9)
                .irq(32)
                .bar(0, BarKind::Mem32, 0xfca0_0000, 0x20000)
                .bar(2, BarKind::Io, 0xe000, 0x20)
                .pm()
                .msi()
                .msix(5)
                .pcie(PcieType::Endpoint)
                .flr()
                .link(1, 1),
        )
        .pci(
            PciFn::new("0000:04:00.3", 0x1022, 0x149c, 0x0c0330)
                .parent("0000:00:08.1")
                .driver("xhci_hcd")
                .group(10)
                .irq(40)
                .bar(0, BarKind::Mem64, 0xfc90_0000, MIB)
                .pcie(PcieType::Endpoint)
                .pm()
                .msi()
                .msix(8)
                .xhci(4, 4),
        );
    h.usb(
        UsbDev::new("1-2", 0x046d, 0xc52b)
            .manufacturer("Logitech")
            .product("USB Receiver")
            .interfaces(&[(0x03, "usbhid"), (0x03, "usbhid"), (0x03, "usbhid")]),
    );
    h.disk(Disk::nvme("nvme0n1", "0000:02:00.0").partitions(&[2014, 2_097_152, 1_951_426_000]))
        .dm(DmVolume::new(
            "pve-root",
            "LVM-amdrootvolume",
            &["nvme0n1p3"],
        ))
        .mount("/dev/mapper/pve-root", "/", "ext4")
        .mount("/dev/nvme0n1p2", "/boot/efi", "vfat")
        .net(NetIf::pci("enp3s0", "0000:03:00.0", "00:e0:4c:68:00:01"))
        .net(NetIf::bridge("vmbr0", &["enp3s0"]))
        .route_default("vmbr0", [192, 168, 1, 1])
        .route("vmbr0", [192, 168, 1, 0], 24, None);
    common_aliases(&mut h);
    h
}

/// An Intel host with a single-DMAR IOMMU.
fn intel_host() -> Host {
    let mut h = Host::new();
    h.cmdline(
        "BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet intel_iommu=on",
    )
    .iommu(Iommu::Intel(vec![DmarUnit {
        name: "dmar0".into(),
        cap: 0xd2008c40660462,
        ecap: 0xf050da,
        address: 0xfed91000,
    }]))
    .pci(
        PciFn::new("0000:00:00.0", 0x8086, 0x3e30, 0x060000)
            .revision(0x0d)
            .group(0),
    );
    common_aliases(&mut h);
    h
}

/// An Intel root port without ACS (as the CPU's PEG ports are).
fn intel_root_port(addr: &str, device: u16, secondary: u8, group: u32) -> PciFn {
    PciFn::new(addr, 0x8086, device, 0x060400)
        .revision(0x0d)
        .bridge(secondary)
        .driver("pcieport")
        .group(group)
        .irq(122)
        .pm()
        .msi()
        .pcie(PcieType::RootPort)
}

/// An NVIDIA GPU (`device`) with its HDMI audio function on `bus`.
fn nvidia_gpu(h: &mut Host, bus: u8, device: u16, audio: u16, parent: &str, group: u32) {
    let gpu = format!("0000:{bus:02x}:00.0");
    let snd = format!("0000:{bus:02x}:00.1");
    h.pci(
        PciFn::new(&gpu, 0x10de, device, 0x030000)
            .subsystem(0x10de, 0x119e)
            .revision(0xa1)
            .parent(parent)
            .group(group)
            .boot_vga(false)
            .irq(16)
            .bar(0, BarKind::Mem32, 0xf600_0000, 16 * MIB)
            .bar(1, BarKind::Mem64Prefetch, 0xe000_0000, 256 * MIB)
            .bar(3, BarKind::Mem64Prefetch, 0xf000_0000, 32 * MIB)
            .bar(5, BarKind::Io, 0xe000, 0x80)
            .pm()
            .msi()
            .pcie(PcieType::LegacyEndpoint)
            .link(3, 16),
    )
    .pci(
        PciFn::new(&snd, 0x10de, audio, 0x040300)
            .subsystem(0x10de, 0x119e)
            .revision(0xa1)
            .parent(parent)
            .driver("snd_hda_intel")
            .group(group)
            .irq(17)
            .bar(0, BarKind::Mem32, 0xf708_0000, 0x4000)
            .pm()
            .msi()
            .pcie(PcieType::Endpoint)
            .link(3, 16),
    );
}

/// An Intel host with a discrete NVIDIA GPU (GTX 1080 and its audio function) behind the CPU
/// root port 00:01.0, which lacks ACS: port, GPU and audio share group 1. The iGPU stays the
/// boot VGA device.
pub fn intel_dgpu() -> Host {
    let mut h = intel_host();
    h.pci(
        PciFn::new("0000:00:02.0", 0x8086, 0x3e98, 0x030000)
            .driver("i915")
            .group(2)
            .boot_vga(true)
            .irq(130)
            .bar(0, BarKind::Mem64, 0xf500_0000, 16 * MIB)
            .pcie(PcieType::RcIntegratedEndpoint)
            .flr()
            .msi()
            .pm(),
    )
    .pci(intel_root_port("0000:00:01.0", 0x1901, 1, 1));
    nvidia_gpu(&mut h, 1, 0x1b80, 0x10f0, "0000:00:01.0", 1);
    h
}

/// Two identical GPUs (NVIDIA RTX 3090, `10de:2204`) behind two root ports with ACS, in
/// different groups: binding by vendor:device would grab both.
pub fn twin_gpus() -> Host {
    let mut h = intel_host();
    h.pci(intel_root_port("0000:00:01.0", 0x1901, 1, 1).acs(ACS_CAP_ALL, ACS_CTRL_ISOLATED))
        .pci(intel_root_port("0000:00:1c.0", 0xa33c, 2, 2).acs(ACS_CAP_ALL, ACS_CTRL_ISOLATED));
    nvidia_gpu(&mut h, 1, 0x2204, 0x1aef, "0000:00:01.0", 11);
    nvidia_gpu(&mut h, 2, 0x2204, 0x1aef, "0000:00:1c.0", 12);
    h
}

/// A group (3) whose only other member is the root port above the device, bound to pcieport:
/// the group is viable once the NIC leaves its host driver.
pub fn bridge_in_group() -> Host {
    let mut h = intel_host();
    h.pci(intel_root_port("0000:00:1c.4", 0xa334, 3, 3)).pci(
        PciFn::new("0000:03:00.0", 0x8086, 0x1539, 0x020000)
            .subsystem(0x8086, 0x0000)
            .revision(0x03)
            .parent("0000:00:1c.4")
            .driver("igb")
            .group(3)
            .irq(17)
            .bar(0, BarKind::Mem32, 0xf710_0000, 0x20000)
            .pm()
            .msi()
            .msix(5)
            .pcie(PcieType::Endpoint)
            .flr()
            .link(1, 1),
    );
    h
}

/// Group numbers are not dense: 0, 3, 17 and 42.
pub fn sparse_groups() -> Host {
    let mut h = intel_host();
    h.pci(
        PciFn::new("0000:00:14.0", 0x8086, 0xa36d, 0x0c0330)
            .driver("xhci_hcd")
            .group(3)
            .pm()
            .msi(),
    )
    .pci(
        PciFn::new("0000:00:17.0", 0x8086, 0x2822, 0x010400)
            .driver("ahci")
            .group(17)
            .msi()
            .pm(),
    )
    .pci(
        PciFn::new("0000:00:1f.6", 0x8086, 0x15bb, 0x020000)
            .driver("e1000e")
            .group(42)
            .pm()
            .msi()
            .af(true),
    );
    h
}

/// An Intel VMD controller (00:0e.0) owning PCI domain `10000`: root port `10000:e0:1d.0` and
/// the NVMe disk `10000:e1:00.0` behind it, all in the VMD's group.
pub fn intel_vmd() -> Host {
    let mut h = intel_host();
    h.pci(
        PciFn::new("0000:00:0e.0", 0x8086, 0x467f, 0x010400)
            .driver("vmd")
            .group(9)
            .bar(0, BarKind::Mem64Prefetch, 0x60_1c00_0000, 32 * MIB)
            .bar(2, BarKind::Mem32, 0x7200_0000, 16 * MIB)
            .bar(4, BarKind::Mem64, 0x60_1d10_0000, MIB)
            .pcie(PcieType::RcIntegratedEndpoint)
            .msix(64)
            .pm(),
    )
    .pci(
        PciFn::new("10000:e0:1d.0", 0x8086, 0x7ab0, 0x060400)
            .revision(0x11)
            .parent("0000:00:0e.0")
            .bridge(0xe1)
            .driver("pcieport")
            .group(9)
            .pcie(PcieType::RootPort)
            .msi()
            .pm()
            .acs(ACS_CAP_ALL, ACS_CTRL_ISOLATED),
    )
    .pci(
        PciFn::new("10000:e1:00.0", 0x144d, 0xa80a, 0x010802)
            .subsystem(0x144d, 0xa801)
            .parent("10000:e0:1d.0")
            .driver("nvme")
            .group(9)
            .bar(0, BarKind::Mem64, 0x7300_0000, 0x4000)
            .pm()
            .msi()
            .pcie(PcieType::Endpoint)
            .flr()
            .msix(130),
    )
    .disk(Disk::nvme("nvme0n1", "10000:e1:00.0").partitions(&[2014, 2_097_152, 1_951_426_000]))
    .mount("/dev/nvme0n1p3", "/", "ext4");
    h
}

/// A host whose IOMMU is off (or absent): devices, drivers, no groups and no `class/iommu`.
pub fn no_iommu() -> Host {
    let mut h = Host::new();
    h.pci(PciFn::new("0000:00:00.0", 0x8086, 0x3e30, 0x060000).revision(0x0d))
        .pci(
            PciFn::new("0000:00:02.0", 0x8086, 0x3e98, 0x030000)
                .driver("i915")
                .boot_vga(true)
                .pcie(PcieType::RcIntegratedEndpoint)
                .flr()
                .pm(),
        )
        .pci(
            PciFn::new("0000:00:1f.6", 0x8086, 0x15bb, 0x020000)
                .driver("e1000e")
                .pm()
                .msi(),
        )
        .net(NetIf::pci("eno1", "0000:00:1f.6", "00:11:22:33:44:55"))
        .route_default("eno1", Ipv4Addr::new(10, 0, 0, 1));
    common_aliases(&mut h);
    h
}

/// Every small topology with its name (not the recorded EliteDesk), for tests that run over all.
pub fn all() -> Vec<(&'static str, Host)> {
    vec![
        ("amd_ryzen", amd_ryzen()),
        ("intel_dgpu", intel_dgpu()),
        ("twin_gpus", twin_gpus()),
        ("bridge_in_group", bridge_in_group()),
        ("sparse_groups", sparse_groups()),
        ("intel_vmd", intel_vmd()),
        ("no_iommu", no_iommu()),
        ("elitedesk_fresh", elitedesk_800_g4(State::Fresh)),
        ("elitedesk_configured", elitedesk_800_g4(State::Configured)),
    ]
}

/// Every recorded host committed under `testdata/`, by its directory there
/// (`minisforum-um880pro/configured`). Tests that should run over real machines iterate this;
/// [`all`] stays the small topologies plus the EliteDesk.
pub fn recorded() -> Vec<(&'static str, Host)> {
    vec![
        ("elitedesk-800-g4/fresh", elitedesk_800_g4(State::Fresh)),
        ("elitedesk-800-g4/gvt", elitedesk_800_g4(State::Gvt)),
        (
            "elitedesk-800-g4/configured",
            elitedesk_800_g4(State::Configured),
        ),
        (
            "minisforum-um880pro/fresh",
            minisforum_um880pro(Um880State::Fresh),
        ),
        (
            "minisforum-um880pro/configured",
            minisforum_um880pro(Um880State::Configured),
        ),
        ("am4-rtx2060/fresh", am4_rtx2060()),
        ("n100/fresh", n100(N100State::Fresh)),
        ("n100/sriov", n100(N100State::Sriov)),
    ]
}

/// Proxmox VE's `/etc/default/grub` with this `GRUB_CMDLINE_LINUX_DEFAULT`.
fn grub(cmdline_default: &str) -> String {
    grub_with(
        "`( . /etc/os-release; echo ${NAME:-Proxmox VE} ) 2>/dev/null || echo Proxmox VE`",
        cmdline_default,
    )
}

/// `/etc/default/grub` with this `GRUB_DISTRIBUTOR` (Debian's is
/// `` `lsb_release -i -s 2> /dev/null || echo Debian` ``) and `GRUB_CMDLINE_LINUX_DEFAULT`.
fn grub_with(distributor: &str, cmdline_default: &str) -> String {
    format!(
        r#"# If you change this file, run 'update-grub' afterwards to update
# /boot/grub/grub.cfg.
# For full documentation of the options in this file, see:
#   info -f grub -n 'Simple configuration'

GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR={distributor}
GRUB_CMDLINE_LINUX_DEFAULT="{cmdline_default}"
GRUB_CMDLINE_LINUX=""

# If your computer has multiple operating systems installed, then you
# probably want to run os-prober. However, if your computer is a host
# for guest OSes installed via LVM or raw disk devices, running
# os-prober can cause damage to those guest OSes as it mounts
# filesystems to look for things.
#GRUB_DISABLE_OS_PROBER=false

# Uncomment to enable BadRAM filtering, modify to suit your needs
# This works with Linux (no patch required) and with any kernel that obtains
# the memory map information from GRUB (GNU Mach, kernel of FreeBSD ...)
#GRUB_BADRAM="0x01234567,0xfefefefe,0x89abcdef,0xefefefef"

# Uncomment to disable graphical terminal
#GRUB_TERMINAL=console

# The resolution used on graphical terminal
# note that you can use only modes which your graphic card supports via VBE
# you can see them in real GRUB with the command `vbeinfo'
#GRUB_GFXMODE=640x480

# Uncomment if you don't want GRUB to pass "root=UUID=xxx" parameter to Linux
#GRUB_DISABLE_LINUX_UUID=true

# Uncomment to disable generation of recovery mode menu entries
#GRUB_DISABLE_RECOVERY="true"

# Uncomment to get a beep at grub start
#GRUB_INIT_TUNE="480 440 1"
"#
    )
}

const MODULES_HEADER: &str = "# /etc/modules: kernel modules to load at boot time.
#
# This file contains the names of kernel modules that should be loaded
# at boot time, one per line. Lines beginning with \"#\" are ignored.
# Parameters can be specified after the module name.

";

const PVE_BLACKLIST: &str =
    "# This file contains a list of modules which are not supported by Proxmox VE 

# nvidiafb see bugreport https://bugzilla.proxmox.com/show_bug.cgi?id=701
blacklist nvidiafb
";

const ELITEDESK_VFIO_CONF: &str = "# don't load driver for iGPU and sound card
blacklist i915
blacklist snd_hda_intel
blacklist snd_sof_pci_intel_cnl

# load vfio-pci driver instead
options vfio-pci ids=8086:3e92,8086:a348

#
options kvm ignore_msrs=1
options vfio_iommu_type1 allow_unsafe_interrupts=1
";

const ELITEDESK_INTERFACES: &str = "auto lo
iface lo inet loopback
iface eno1 inet manual
auto vmbr0
iface vmbr0 inet static
        address 192.168.10.104/24
        gateway 192.168.10.1
        bridge-ports eno1
        bridge-stp off
        bridge-fd 0
iface wlp0s20f3 inet manual
source /etc/network/interfaces.d/*
";

const VM100_FRESH: &str = "agent: 1
bios: ovmf
boot: order=scsi0
cores: 4
cpu: host
efidisk0: local-lvm:vm-100-disk-1,efitype=4m,pre-enrolled-keys=1,size=4M
machine: pc-q35-9.2+pve1
memory: 8192
meta: creation-qemu=9.2.0,ctime=1748871264
name: win11
net0: e1000=6E:FA:51:9A:D2:40,bridge=vmbr0,firewall=1
numa: 0
ostype: win11
scsi0: local-lvm:vm-100-disk-0,cache=writeback,size=64G
scsihw: virtio-scsi-pci
smbios1: uuid=194d50cf-8f86-4fa2-b770-28aa88109b43
sockets: 1
tpmstate0: local-lvm:vm-100-disk-2,size=4M,version=v2.0
vga: virtio,memory=64
vmgenid: 5a10564a-ca41-4136-93a9-f3f999390ac4
";

const VM101_GVT: &str = "agent: 1
bios: ovmf
boot: order=scsi0;net0
cores: 2
cpu: host
efidisk0: local-lvm:vm-101-disk-0,efitype=4m,pre-enrolled-keys=1,size=4M
machine: q35
memory: 4096
meta: creation-qemu=9.2.0,ctime=1749302118
name: jellyfin
net0: virtio=BC:24:11:4E:8A:13,bridge=vmbr0,firewall=1
numa: 0
ostype: l26
scsi0: local-lvm:vm-101-disk-1,iothread=1,size=32G
scsihw: virtio-scsi-single
smbios1: uuid=7d3c2b91-0f6e-4a85-9c17-e2b45a6d8f03
sockets: 1
vmgenid: 0c8e5f27-d4a1-4b3c-b961-3f7a20d5e684
";

const VM100_CONFIGURED: &str = "agent: 1
args: -set device.hostpci0.addr=02.0 -set device.hostpci0.x-igd-gms=0x2 -set device.hostpci0.x-igd-opregion=on
bios: ovmf
boot: 
cores: 4
cpu: host
efidisk0: local-lvm:vm-100-disk-1,efitype=4m,pre-enrolled-keys=1,size=4M
hostpci0: 0000:00:02,legacy-igd=1,romfile=igpu-uhd630.rom
hostpci1: 0000:00:14.3
machine: pc-i440fx-9.2
memory: 8192
meta: creation-qemu=9.2.0,ctime=1748871264
name: win11
net0: e1000=6E:FA:51:9A:D2:40,bridge=vmbr0,firewall=1
numa: 0
ostype: win11
scsi0: local-lvm:vm-100-disk-0,cache=writeback,size=64G
scsihw: virtio-scsi-pci
smbios1: uuid=194d50cf-8f86-4fa2-b770-28aa88109b43
sockets: 1
tpmstate0: local-lvm:vm-100-disk-2,size=4M,version=v2.0
usb0: host=062a:4101
usb1: host=8087:0aaa
vga: none
vmgenid: 5a10564a-ca41-4136-93a9-f3f999390ac4
";
