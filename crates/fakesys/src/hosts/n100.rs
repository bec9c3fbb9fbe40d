//! The Beelink Mini S12 Pro (Intel N100, Alder Lake-N iGPU `8086:46d1`) of
//! `shared/corpus/field-notes/intel-n100-beelink-s12pro-lspci.txt`, put on Proxmox VE 9.2 with
//! ZFS root and systemd-boot.

use super::{MODULES_HEADER, PVE_BLACKLIST, common_aliases};
use crate::{BarKind, Disk, DmarUnit, Host, Iommu, NetIf, PciFn, PcieType, UsbDev, UsbIf};

/// Which recorded state of the N100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum N100State {
    /// Right after installing Proxmox VE 9.2 on ZFS: i915 on the iGPU (whose SR-IOV capability
    /// offers 7 VFs, none enabled), stock `/etc`, VM 100 without passthrough.
    Fresh,
    /// The iGPU shared by SR-IOV: i915-sriov-dkms installed for the running kernel, its kernel
    /// parameters, 7 VFs (00:02.1–.7) enabled and persisted in `/etc/sysfs.conf`, 00:02.1 on
    /// vfio-pci and given to VM 100.
    Sriov,
}

impl N100State {
    /// The directory name under `testdata/n100/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            N100State::Fresh => "fresh",
            N100State::Sriov => "sriov",
        }
    }
}

const MIB: u64 = 1 << 20;
const RELEASE: &str = "6.17.9-1-pve";
const SUBSYS: (u16, u16) = (0x8086, 0x7270);
/// The NVMe's `/dev/disk/by-id` name (model and serial are filler).
const NVME_ID: &str = "nvme-512GB_SSD_MX2310250123456";
const SRIOV_PARAMS: &str = "intel_iommu=on i915.enable_guc=3 i915.max_vfs=7 module_blacklist=xe";

/// The Beelink N100 in one of its two recorded states.
pub fn n100(state: N100State) -> Host {
    let sriov = state == N100State::Sriov;
    let mut kernel_cmdline = String::from("root=ZFS=rpool/ROOT/pve-1 boot=zfs");
    if sriov {
        kernel_cmdline.push(' ');
        kernel_cmdline.push_str(SRIOV_PARAMS);
    }
    let mut h = Host::new();
    h.kernel_release(RELEASE)
        .cmdline(&format!(
            "initrd=\\EFI\\proxmox\\{RELEASE}\\initrd.img-{RELEASE} {kernel_cmdline}"
        ))
        .iommu(Iommu::Intel(vec![
            DmarUnit {
                name: "dmar0".into(),
                cap: 0x1c0000c40660462,
                ecap: 0x29a00f0505e,
                address: 0xfed90000,
            },
            DmarUnit {
                name: "dmar1".into(),
                cap: 0xd2008c40660462,
                ecap: 0xf050da,
                address: 0xfed91000,
            },
        ]));

    // Groups derived by the kernel's rules: functions of a slot without ACS share a group,
    // the root ports 1c.0/1d.0 (ACS) isolate what is behind them, numbered in probe order.
    let intel = |addr: &str, device: u16, class: u32, group: u32, label: &str| {
        PciFn::new(addr, 0x8086, device, class)
            .subsystem(SUBSYS.0, SUBSYS.1)
            .group(group)
            .label(label)
    };
    let other = "Onboard - Other";
    let igpu = intel("0000:00:02.0", 0x46d1, 0x030000, 1, "Onboard - Video")
        .driver("i915")
        .boot_vga(true)
        .irq(151)
        .bar(0, BarKind::Mem64, 0x60_0000_0000, 16 * MIB)
        .bar(2, BarKind::Mem64Prefetch, 0x40_0000_0000, 256 * MIB)
        .bar(4, BarKind::Io, 0x3000, 0x40)
        .vendor_cap(0x0c)
        .pcie(PcieType::RcIntegratedEndpoint)
        .flr()
        .msi()
        .pm()
        .cap_offsets(&[0x40, 0x70, 0xac, 0xd0])
        // VFs of an Intel iGPU carry the PF's device id.
        .sriov(7, 0x46d1);
    h.pci(intel("0000:00:00.0", 0x461c, 0x060000, 0, other).vendor_cap(0x0c))
        .pci(igpu)
        .pci(
            intel("0000:00:14.0", 0x54ed, 0x0c0330, 2, other)
                .driver("xhci_hcd")
                .irq(125)
                .bar(0, BarKind::Mem64, 0x60_0110_0000, 0x10000)
                .pm()
                .msi()
                .xhci(12, 4),
        )
        .pci(
            intel("0000:00:14.2", 0x54ef, 0x050000, 2, other)
                .bar(0, BarKind::Mem64, 0x60_0111_4000, 0x4000)
                .bar(2, BarKind::Mem64, 0x60_0111_d000, 0x1000)
                .pm(),
        )
        .pci(
            PciFn::new("0000:00:14.3", 0x8086, 0x54f0, 0x028000)
                .subsystem(0x8086, 0x0244)
                .label("Onboard - Ethernet")
                .driver("iwlwifi")
                .group(2)
                .irq(16)
                .bar(0, BarKind::Mem64, 0x60_0111_0000, 0x4000)
                .pm()
                .msi()
                .pcie(PcieType::RcIntegratedEndpoint)
                .flr()
                .msix(16),
        );
    for (addr, device, group, bar) in [
        ("0000:00:15.0", 0x54e8, 3, 0x40_1000_0000u64),
        ("0000:00:15.1", 0x54e9, 3, 0x40_1000_1000),
    ] {
        h.pci(lpss(intel(addr, device, 0x0c8000, group, other), bar));
    }
    h.pci(
        intel("0000:00:16.0", 0x54e0, 0x078000, 4, other)
            .driver("mei_me")
            .irq(158)
            .bar(0, BarKind::Mem64, 0x60_0111_9000, 0x1000)
            .pm()
            .msi(),
    )
    .pci(
        intel("0000:00:17.0", 0x54d3, 0x010601, 5, "Onboard - SATA")
            .driver("ahci")
            .irq(126)
            .bar(0, BarKind::Mem32, 0x8040_0000, 0x2000)
            .bar(1, BarKind::Mem32, 0x8040_3000, 0x100)
            .bar(2, BarKind::Io, 0x3090, 0x8)
            .bar(3, BarKind::Io, 0x3080, 0x4)
            .bar(4, BarKind::Io, 0x3060, 0x20)
            .bar(5, BarKind::Mem32, 0x8040_2000, 0x800)
            .msi()
            .pm(),
    );
    for (addr, device, group, bar) in [
        ("0000:00:19.0", 0x54c5, 6, 0x40_1000_2000u64),
        ("0000:00:19.1", 0x54c6, 6, 0x40_1000_3000),
    ] {
        h.pci(lpss(intel(addr, device, 0x0c8000, group, other), bar));
    }
    let root_port = |addr: &str, device: u16, secondary: u8, group: u32| {
        PciFn::new(addr, 0x8086, device, 0x060400)
            .subsystem(SUBSYS.0, SUBSYS.1)
            .bridge(secondary)
            .driver("pcieport")
            .group(group)
            .irq(122)
            .pcie(PcieType::RootPort)
            .msi()
            .pm()
            .acs(super::ACS_CAP_ALL, super::ACS_CTRL_ISOLATED)
    };
    h.pci(root_port("0000:00:1c.0", 0x54be, 0x01, 7))
        .pci(root_port("0000:00:1d.0", 0x54b2, 0x02, 8))
        .pci(lpss(
            intel("0000:00:1e.0", 0x54a8, 0x078000, 9, other),
            0x40_1000_4000,
        ))
        .pci(lpss(
            intel("0000:00:1e.3", 0x54ab, 0x0c8000, 9, other),
            0x40_1000_5000,
        ))
        .pci(intel("0000:00:1f.0", 0x5481, 0x060100, 10, other))
        .pci(
            intel("0000:00:1f.3", 0x54c8, 0x040300, 10, "Onboard - Sound")
                .driver("snd_hda_intel")
                .irq(159)
                .bar(0, BarKind::Mem64, 0x60_0113_0000, 0x4000)
                .bar(4, BarKind::Mem64, 0x60_0100_0000, MIB)
                .pm()
                .pme_d3cold()
                .msi(),
        )
        .pci(
            intel("0000:00:1f.4", 0x54a3, 0x0c0500, 10, other)
                .driver("i801_smbus")
                .irq(16)
                .bar(0, BarKind::Mem64, 0x60_0111_8000, 0x100)
                .bar(4, BarKind::Io, 0xefa0, 0x20),
        )
        .pci(
            intel("0000:00:1f.5", 0x54a4, 0x0c8000, 10, other)
                .driver("intel-spi")
                .bar(0, BarKind::Mem32, 0xfe01_0000, 0x1000),
        )
        .pci(
            PciFn::new("0000:01:00.0", 0x10ec, 0x8168, 0x020000)
                .subsystem(0x10ec, 0x0123)
                .revision(0x15)
                .parent("0000:00:1c.0")
                .driver("r8169")
                .group(11)
                .irq(16)
                .bar(0, BarKind::Io, 0x2000, 0x100)
                .bar(2, BarKind::Mem64, 0x8020_4000, 0x1000)
                .bar(4, BarKind::Mem64, 0x8020_0000, 0x4000)
                .pm()
                .msi()
                .pcie(PcieType::Endpoint)
                .msix(4)
                .link(1, 1),
        )
        .pci(
            PciFn::new("0000:02:00.0", 0x1e4b, 0x1202, 0x010802)
                .subsystem(0x1e4b, 0x1202)
                .revision(0x01)
                .parent("0000:00:1d.0")
                .driver("nvme")
                .group(12)
                .bar(0, BarKind::Mem64, 0x8010_0000, 0x4000)
                .pm()
                .msi()
                .pcie(PcieType::Endpoint)
                .msix(16)
                .link(3, 2),
        );

    if sriov {
        // VFs appear after boot (sysfsutils writes sriov_numvfs), so their groups come last.
        for n in 1..=7u8 {
            let i = u64::from(n - 1);
            let driver = if n == 1 { "vfio-pci" } else { "i915" };
            h.pci(
                PciFn::new(&format!("0000:00:02.{n}"), 0x8086, 0x46d1, 0x030000)
                    .subsystem(SUBSYS.0, SUBSYS.1)
                    .virtfn_of("0000:00:02.0")
                    .driver(driver)
                    .group(12 + u32::from(n))
                    .boot_vga(false)
                    .bar(0, BarKind::Mem64, 0x60_0200_0000 + i * 16 * MIB, 16 * MIB)
                    .bar(
                        2,
                        BarKind::Mem64Prefetch,
                        0x40_2000_0000 + i * 512 * MIB,
                        512 * MIB,
                    )
                    .pcie(PcieType::RcIntegratedEndpoint)
                    .flr(),
            );
        }
        h.module_param("i915", "enable_guc", "3")
            .module_param("i915", "max_vfs", "7");
    }

    // USB: a keyboard on the only xHCI controller.
    h.usb(
        UsbDev::new("1-3", 0x1c4f, 0x0002)
            .manufacturer("SIGMACHIP")
            .product("USB Keyboard")
            .interface(UsbIf::new(0x03, "usbhid").subclass_protocol(1, 1))
            .interface(UsbIf::new(0x03, "usbhid")),
    );

    h.net(NetIf::pci("enp1s0", "0000:01:00.0", "7c:83:34:b9:21:0a"))
        .net(NetIf::pci("wlp0s20f3", "0000:00:14.3", "dc:97:ba:4e:5f:60").down())
        .net(NetIf::bridge("vmbr0", &["enp1s0"]))
        .route_default("vmbr0", [192, 168, 1, 1])
        .route("vmbr0", [192, 168, 1, 0], 24, None);

    // Storage: the Proxmox installer's ZFS layout on the NVMe (BIOS boot, ESP, ZFS); the SATA
    // controller 00:17.0 has no disk.
    h.disk(
        Disk::nvme("nvme0n1", "0000:02:00.0")
            .model("512GB SSD")
            .size(1_000_215_216)
            .partitions(&[2014, 2_097_152, 998_115_983]),
    )
    .mount("rpool/ROOT/pve-1", "/", "zfs")
    .mount("rpool", "/rpool", "zfs")
    .mount("rpool/var-lib-vz", "/var/lib/vz", "zfs")
    .mount("rpool/ROOT", "/rpool/ROOT", "zfs")
    .mount("rpool/data", "/rpool/data", "zfs")
    .mount("/dev/fuse", "/etc/pve", "fuse");
    h.link(&format!("dev/disk/by-id/{NVME_ID}"), "dev/nvme0n1");
    for p in 1..=3 {
        h.link(
            &format!("dev/disk/by-id/{NVME_ID}-part{p}"),
            &format!("dev/nvme0n1p{p}"),
        );
    }

    common_aliases(&mut h);
    for (pattern, module) in [
        ("pci:v00008086d000046D1sv*sd*bc03sc*i*", "i915"),
        ("pci:v00008086d000046D1sv*sd*bc03sc*i*", "xe"),
        ("pci:v00008086d000054C8sv*sd*bc*sc*i*", "snd_hda_intel"),
        (
            "pci:v00008086d000054C8sv*sd*bc*sc*i*",
            "snd_sof_pci_intel_tgl",
        ),
        ("pci:v00008086d000054F0sv*sd*bc*sc*i*", "iwlwifi"),
        ("pci:v00008086d000054E0sv*sd*bc*sc*i*", "mei_me"),
        ("pci:v00008086d000054A3sv*sd*bc*sc*i*", "i2c_i801"),
        ("pci:v00008086d000054A4sv*sd*bc*sc*i*", "spi_intel_pci"),
        ("pci:v00008086d000054E8sv*sd*bc*sc*i*", "intel_lpss_pci"),
        ("pci:v00008086d000054E9sv*sd*bc*sc*i*", "intel_lpss_pci"),
        ("pci:v00008086d000054C5sv*sd*bc*sc*i*", "intel_lpss_pci"),
        ("pci:v00008086d000054C6sv*sd*bc*sc*i*", "intel_lpss_pci"),
        ("pci:v00008086d000054A8sv*sd*bc*sc*i*", "intel_lpss_pci"),
        ("pci:v00008086d000054ABsv*sd*bc*sc*i*", "intel_lpss_pci"),
        ("pci:v*d*sv*sd*bc01sc06i01*", "ahci"),
        ("pci:v000010ECd00008168sv*sd*bc*sc*i*", "r8169"),
    ] {
        h.alias(pattern, module);
    }
    for line in if sriov {
        MODULES_DEP_SRIOV
    } else {
        MODULES_DEP
    } {
        h.module_dep(line);
    }

    h.file("etc/hostname", "n100\n")
        .file("etc/kernel/cmdline", format!("{kernel_cmdline}\n"))
        .file("etc/kernel/proxmox-boot-uuids", "4A1D-7C3E\n")
        .file("etc/modules", MODULES_HEADER)
        .file("etc/modprobe.d/pve-blacklist.conf", PVE_BLACKLIST)
        .file("etc/network/interfaces", INTERFACES)
        .file(
            "etc/pve/qemu-server/100.conf",
            if sriov {
                VM100.replace("ide2:", "hostpci0: 0000:00:02.1,pcie=1\nide2:")
            } else {
                VM100.to_string()
            },
        )
        .file(
            "var/lib/vfiokit/capture/qemu-version",
            "QEMU emulator version 11.0.0 (pve-qemu-kvm_11.0.0-1)\n\
             Copyright (c) 2003-2026 Fabrice Bellard and the QEMU Project developers\n",
        )
        .file("var/lib/vfiokit/capture/zpool-status", zpool_status());
    if sriov {
        // The i915-sriov-dkms install guide's persistence, written with `echo … >`.
        h.file(
            "etc/sysfs.conf",
            "devices/pci0000:00/0000:00:02.0/sriov_numvfs = 7\n",
        );
    }
    h
}

/// An LPSS serial-bus function (I2C/UART/SPI host) bound to intel-lpss.
fn lpss(f: PciFn, bar: u64) -> PciFn {
    f.driver("intel-lpss")
        .irq(27)
        .bar(0, BarKind::Mem64, bar, 0x1000)
        .pm()
        .vendor_cap(0x14)
}

/// `zpool status -P` for the installer's single-disk `rpool` on the NVMe's third partition,
/// laid out as OpenZFS prints it (name column as wide as the longest name plus its indent).
fn zpool_status() -> String {
    let vdev = format!("/dev/disk/by-id/{NVME_ID}-part3");
    let width = (vdev.len() + 2).max(10);
    let row = |indent: usize, name: &str| {
        format!(
            "\t{:indent$}{:<w$}  {:<8} {:>5} {:>5} {:>5}\n",
            "",
            name,
            "ONLINE",
            0,
            0,
            0,
            w = width - indent
        )
    };
    format!(
        "  pool: rpool\n state: ONLINE\n  scan: scrub repaired 0B in 00:00:41 with 0 errors on Sun Aug  9 00:24:42 2026\nconfig:\n\n\t{:<width$}  {:<8} {:>5} {:>5} {:>5}\n{}{}\nerrors: No known data errors\n",
        "NAME",
        "STATE",
        "READ",
        "WRITE",
        "CKSUM",
        row(0, "rpool"),
        row(2, &vdev),
    )
}

/// The `modules.dep` lines that matter: the in-tree i915 and xe (which do not offer SR-IOV on
/// this iGPU), kvmgt (Proxmox builds it) and vfio-pci.
const MODULES_DEP: &[&str] = &[
    "kernel/drivers/gpu/drm/i915/i915.ko: kernel/drivers/gpu/drm/drm_buddy.ko kernel/drivers/gpu/drm/ttm/ttm.ko kernel/drivers/gpu/drm/display/drm_display_helper.ko kernel/drivers/media/cec/core/cec.ko kernel/drivers/media/rc/rc-core.ko kernel/drivers/i2c/algos/i2c-algo-bit.ko kernel/drivers/gpu/drm/drm_kms_helper.ko kernel/drivers/video/video.ko",
    "kernel/drivers/gpu/drm/i915/kvmgt.ko: kernel/drivers/vfio/mdev/mdev.ko kernel/drivers/vfio/vfio.ko kernel/drivers/iommu/iommufd/iommufd.ko kernel/arch/x86/kvm/kvm.ko kernel/drivers/gpu/drm/i915/i915.ko kernel/drivers/gpu/drm/drm_buddy.ko kernel/drivers/gpu/drm/ttm/ttm.ko kernel/drivers/gpu/drm/display/drm_display_helper.ko kernel/drivers/media/cec/core/cec.ko kernel/drivers/media/rc/rc-core.ko kernel/drivers/i2c/algos/i2c-algo-bit.ko kernel/drivers/gpu/drm/drm_kms_helper.ko kernel/drivers/video/video.ko",
    "kernel/drivers/gpu/drm/xe/xe.ko: kernel/drivers/gpu/drm/drm_gpuvm.ko kernel/drivers/gpu/drm/drm_exec.ko kernel/drivers/gpu/drm/scheduler/gpu-sched.ko kernel/drivers/gpu/drm/drm_suballoc_helper.ko kernel/drivers/gpu/drm/drm_buddy.ko kernel/drivers/gpu/drm/ttm/ttm.ko kernel/drivers/gpu/drm/display/drm_display_helper.ko kernel/drivers/media/cec/core/cec.ko kernel/drivers/media/rc/rc-core.ko kernel/drivers/i2c/algos/i2c-algo-bit.ko kernel/drivers/gpu/drm/drm_kms_helper.ko kernel/drivers/video/video.ko",
    "kernel/drivers/vfio/pci/vfio-pci.ko: kernel/drivers/vfio/pci/vfio-pci-core.ko kernel/drivers/vfio/vfio.ko kernel/drivers/iommu/iommufd/iommufd.ko kernel/drivers/virt/lib/irqbypass.ko",
    "kernel/drivers/vfio/mdev/mdev.ko:",
];

/// With i915-sriov-dkms installed for the running kernel, depmod takes its modules from
/// `updates/dkms/` (searched before `kernel/`), so the in-tree i915, xe and kvmgt drop out.
const MODULES_DEP_SRIOV: &[&str] = &[
    "updates/dkms/intel_sriov_compat.ko:",
    "updates/dkms/i915.ko: updates/dkms/intel_sriov_compat.ko kernel/drivers/gpu/drm/drm_buddy.ko kernel/drivers/gpu/drm/ttm/ttm.ko kernel/drivers/gpu/drm/display/drm_display_helper.ko kernel/drivers/media/cec/core/cec.ko kernel/drivers/media/rc/rc-core.ko kernel/drivers/i2c/algos/i2c-algo-bit.ko kernel/drivers/gpu/drm/drm_kms_helper.ko kernel/drivers/video/video.ko",
    "updates/dkms/kvmgt.ko: kernel/drivers/vfio/mdev/mdev.ko kernel/drivers/vfio/vfio.ko kernel/drivers/iommu/iommufd/iommufd.ko kernel/arch/x86/kvm/kvm.ko updates/dkms/i915.ko updates/dkms/intel_sriov_compat.ko kernel/drivers/gpu/drm/drm_buddy.ko kernel/drivers/gpu/drm/ttm/ttm.ko kernel/drivers/gpu/drm/display/drm_display_helper.ko kernel/drivers/media/cec/core/cec.ko kernel/drivers/media/rc/rc-core.ko kernel/drivers/i2c/algos/i2c-algo-bit.ko kernel/drivers/gpu/drm/drm_kms_helper.ko kernel/drivers/video/video.ko",
    "updates/dkms/xe.ko: updates/dkms/intel_sriov_compat.ko kernel/drivers/gpu/drm/drm_gpuvm.ko kernel/drivers/gpu/drm/drm_exec.ko kernel/drivers/gpu/drm/scheduler/gpu-sched.ko kernel/drivers/gpu/drm/drm_suballoc_helper.ko kernel/drivers/gpu/drm/drm_buddy.ko kernel/drivers/gpu/drm/ttm/ttm.ko kernel/drivers/gpu/drm/display/drm_display_helper.ko kernel/drivers/media/cec/core/cec.ko kernel/drivers/media/rc/rc-core.ko kernel/drivers/i2c/algos/i2c-algo-bit.ko kernel/drivers/gpu/drm/drm_kms_helper.ko kernel/drivers/video/video.ko",
    "kernel/drivers/vfio/pci/vfio-pci.ko: kernel/drivers/vfio/pci/vfio-pci-core.ko kernel/drivers/vfio/vfio.ko kernel/drivers/iommu/iommufd/iommufd.ko kernel/drivers/virt/lib/irqbypass.ko",
    "kernel/drivers/vfio/mdev/mdev.ko:",
];

const VM100: &str = "agent: 1
bios: ovmf
boot: order=scsi0;ide2;net0
cores: 4
cpu: host
efidisk0: local-zfs:vm-100-disk-0,efitype=4m,pre-enrolled-keys=1,size=1M
ide2: local:iso/Win11_25H2_English_x64.iso,media=cdrom,size=7564268K
machine: pc-q35-11.0+pve2
memory: 8192
meta: creation-qemu=11.0.0,ctime=1786003200
name: win11
net0: virtio=BC:24:11:3A:7C:D2,bridge=vmbr0,firewall=1
numa: 0
ostype: win11
scsi0: local-zfs:vm-100-disk-1,cache=writeback,discard=on,iothread=1,size=64G
scsihw: virtio-scsi-single
smbios1: uuid=5f2b8c41-9e3d-4a76-b1c0-7d64e2a9f318
sockets: 1
tpmstate0: local-zfs:vm-100-disk-2,size=4M,version=v2.0
vga: std
vmgenid: a93e17c5-2b48-4d0f-86e1-c54f0b72d9a3
";

const INTERFACES: &str = "auto lo
iface lo inet loopback

iface enp1s0 inet manual

auto vmbr0
iface vmbr0 inet static
        address 192.168.1.30/24
        gateway 192.168.1.1
        bridge-ports enp1s0
        bridge-stp off
        bridge-fd 0

iface wlp0s20f3 inet manual


source /etc/network/interfaces.d/*
";
