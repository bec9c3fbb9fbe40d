//! The AM4 (Matisse) host with the EVGA RTX 2060 of
//! `shared/corpus/field-notes/amd-am4-matisse-rtx2060-evga.txt`, before passthrough.

use super::{ACS_CAP_ALL, ACS_CTRL_ISOLATED, MODULES_HEADER, PVE_BLACKLIST, common_aliases, grub};
use crate::{AmdUnit, BarKind, Disk, DmVolume, Host, Iommu, NetIf, PciFn, PcieType, UsbDev, UsbIf};

const MIB: u64 = 1 << 20;
const EVGA: (u16, u16) = (0x3842, 0x2068);

/// The AM4 host with the RTX 2060 in the primary x16 slot (07:00.0–.3, IOMMU group 2 with
/// 00:03.0 and 00:03.1) as the only and boot GPU, on `5.15.64-1-pve` with GRUB: nouveau,
/// snd_hda_intel, xhci_hcd and nvidia-gpu bound, stock `/etc`, VM 100 (Windows 11, q35, OVMF)
/// without passthrough.
pub fn am4_rtx2060() -> Host {
    let mut h = Host::new();
    h.kernel_release("5.15.64-1-pve")
        .cmdline("BOOT_IMAGE=/boot/vmlinuz-5.15.64-1-pve root=/dev/mapper/pve-root ro quiet")
        .iommu(Iommu::Amd(vec![AmdUnit {
            name: "ivhd0".into(),
            pci: "0000:00:00.2".into(),
            cap: 0x40,
            features: 0x58f77ef22294a5a,
        }]));
    let amd = |addr: &str, device: u16, class: u32| PciFn::new(addr, 0x1022, device, class);
    let dummy_host_bridge = |addr: &str, group: u32| amd(addr, 0x1482, 0x060000).group(group);
    // The CPU's GPP bridges lack ACS on this firmware (everything behind 00:01.x shares group
    // 0, the GPU shares group 2 with 00:03.x); the internal bridges 07.1 and 08.1 have it.
    let port = |addr: &str, device: u16, secondary: u8, group: u32| {
        amd(addr, device, 0x060400)
            .bridge(secondary)
            .driver("pcieport")
            .group(group)
            .irq(26)
            .pm()
            .pcie(PcieType::RootPort)
            .msi()
    };
    h.pci(amd("0000:00:00.0", 0x1480, 0x060000).subsystem(0x1022, 0x1480))
        .pci(
            amd("0000:00:00.2", 0x1481, 0x080600)
                .subsystem(0x1022, 0x1481)
                .pcie(PcieType::RcIntegratedEndpoint)
                .msi(),
        )
        .pci(dummy_host_bridge("0000:00:01.0", 0))
        .pci(port("0000:00:01.1", 0x1483, 0x01, 0))
        .pci(port("0000:00:01.2", 0x1483, 0x02, 0))
        .pci(dummy_host_bridge("0000:00:02.0", 1))
        .pci(dummy_host_bridge("0000:00:03.0", 2))
        .pci(port("0000:00:03.1", 0x1483, 0x07, 2).link(3, 16))
        .pci(dummy_host_bridge("0000:00:04.0", 3))
        .pci(dummy_host_bridge("0000:00:05.0", 4))
        .pci(dummy_host_bridge("0000:00:07.0", 5))
        .pci(port("0000:00:07.1", 0x1484, 0x08, 6).acs(ACS_CAP_ALL, ACS_CTRL_ISOLATED))
        .pci(dummy_host_bridge("0000:00:08.0", 7))
        .pci(port("0000:00:08.1", 0x1484, 0x09, 8).acs(ACS_CAP_ALL, ACS_CTRL_ISOLATED))
        .pci(
            amd("0000:00:14.0", 0x790b, 0x0c0500)
                .subsystem(0x1458, 0x5001)
                .revision(0x61)
                .driver("piix4_smbus")
                .group(9),
        )
        .pci(
            amd("0000:00:14.3", 0x790e, 0x060100)
                .subsystem(0x1458, 0x5001)
                .revision(0x51)
                .group(9),
        );
    for f in 0..8u16 {
        let df = amd(&format!("0000:00:18.{f}"), 0x1440 + f, 0x060000).group(10);
        h.pci(if f == 3 { df.driver("k10temp") } else { df });
    }

    // Behind 00:01.1 the NVMe root disk; behind 00:01.2 the B550 chipset: USB, SATA and a
    // switch whose ports lead to the secondary x16 slot (empty now), the NIC and an x1 slot.
    let chipset = |addr: &str, device: u16, class: u32| {
        amd(addr, device, class)
            .subsystem(0x1b21, 0x1142)
            .group(0)
            .pm()
            .msi()
            .pcie(PcieType::Endpoint)
    };
    h.pci(
        PciFn::new("0000:01:00.0", 0x144d, 0xa808, 0x010802)
            .subsystem(0x144d, 0xa801)
            .parent("0000:00:01.1")
            .driver("nvme")
            .group(0)
            .bar(0, BarKind::Mem64, 0xfcf0_0000, 0x4000)
            .pm()
            .msi()
            .pcie(PcieType::Endpoint)
            .flr()
            .msix(33)
            .link(3, 4),
    )
    .pci(
        chipset("0000:02:00.0", 0x43ee, 0x0c0330)
            .parent("0000:00:01.2")
            .driver("xhci_hcd")
            .bar(0, BarKind::Mem64, 0xfce8_0000, 0x8000)
            .msix(8)
            .xhci(10, 4),
    )
    .pci(
        chipset("0000:02:00.1", 0x43eb, 0x010601)
            .parent("0000:00:01.2")
            .driver("ahci")
            .bar(5, BarKind::Mem32, 0xfce0_0000, 0x80000),
    )
    .pci(
        amd("0000:02:00.2", 0x43e9, 0x060400)
            .subsystem(0x1b21, 0x0201)
            .parent("0000:00:01.2")
            .bridge(0x03)
            .driver("pcieport")
            .group(0)
            .pm()
            .msi()
            .pcie(PcieType::SwitchUpstream),
    );
    for (dev, secondary) in [(0x00u8, 0x04u8), (0x08, 0x05), (0x09, 0x06)] {
        h.pci(
            amd(&format!("0000:03:{dev:02x}.0"), 0x43ea, 0x060400)
                .subsystem(0x1b21, 0x3308)
                .parent("0000:02:00.2")
                .bridge(secondary)
                .driver("pcieport")
                .group(0)
                .pm()
                .msi()
                .pcie(PcieType::SwitchDownstream),
        );
    }
    h.pci(
        PciFn::new("0000:05:00.0", 0x10ec, 0x8168, 0x020000)
            .subsystem(0x1458, 0xe000)
            .revision(0x15)
            .parent("0000:03:08.0")
            .driver("r8169")
            .group(0)
            .bar(0, BarKind::Io, 0xe000, 0x100)
            .bar(2, BarKind::Mem64, 0xfcd0_4000, 0x1000)
            .bar(4, BarKind::Mem64, 0xfcd0_0000, 0x4000)
            .pm()
            .msi()
            .pcie(PcieType::Endpoint)
            .msix(4)
            .link(1, 1),
    );

    // The RTX 2060 (published ids, revision, subsystem, classes, BAR 1). Without FLR and with
    // No_Soft_Reset on the GPU and audio functions, only the USB ones have a reset method.
    let gpu = |f: u8, device: u16, class: u32| {
        PciFn::new(&format!("0000:07:00.{f}"), 0x10de, device, class)
            .subsystem(EVGA.0, EVGA.1)
            .revision(0xa1)
            .parent("0000:00:03.1")
            .group(2)
            .pm()
            .msi()
            .pcie(PcieType::Endpoint)
            .link(3, 16)
    };
    h.pci(
        PciFn::new("0000:07:00.0", 0x10de, 0x1e89, 0x030000)
            .subsystem(EVGA.0, EVGA.1)
            .revision(0xa1)
            .parent("0000:00:03.1")
            .driver("nouveau")
            .group(2)
            .boot_vga(true)
            .irq(97)
            .bar(0, BarKind::Mem32, 0xfb00_0000, 16 * MIB)
            .bar(1, BarKind::Mem64Prefetch, 0xd000_0000, 256 * MIB)
            .bar(3, BarKind::Mem64Prefetch, 0xe000_0000, 32 * MIB)
            .bar(5, BarKind::Io, 0xf000, 0x80)
            .pm()
            .no_soft_reset()
            .msi()
            .pcie(PcieType::LegacyEndpoint)
            .link(3, 16)
            .cap_offsets(&[0x60, 0x68, 0x78]),
    )
    .pci(
        gpu(1, 0x10f8, 0x040300)
            .driver("snd_hda_intel")
            .irq(98)
            .bar(0, BarKind::Mem32, 0xfc08_0000, 0x4000)
            .no_soft_reset(),
    )
    .pci(
        gpu(2, 0x1ad8, 0x0c0330)
            .driver("xhci_hcd")
            .irq(99)
            .bar(0, BarKind::Mem64Prefetch, 0xe200_0000, 0x40000)
            .bar(3, BarKind::Mem64Prefetch, 0xe204_0000, 0x10000)
            .xhci(2, 2),
    )
    .pci(gpu(3, 0x1ad9, 0x0c8000).driver("nvidia-gpu").irq(100).bar(
        0,
        BarKind::Mem32,
        0xfc08_4000,
        0x1000,
    ));

    // Behind the internal bridges: the dummy function, PSP, the Matisse USB controller (group
    // 14, published) and the HD audio.
    let internal = |addr: &str, parent: &str, device: u16, class: u32, group: u32| {
        amd(addr, device, class)
            .subsystem(0x1458, 0x1000 | device)
            .parent(parent)
            .group(group)
            .pm()
            .msi()
            .pcie(PcieType::Endpoint)
            .acs(0x0015, 0x0015)
    };
    h.pci(internal(
        "0000:08:00.0",
        "0000:00:07.1",
        0x148a,
        0x130000,
        11,
    ))
    .pci(internal(
        "0000:09:00.0",
        "0000:00:08.1",
        0x1485,
        0x130000,
        12,
    ))
    .pci(
        internal("0000:09:00.1", "0000:00:08.1", 0x1486, 0x108000, 13)
            .driver("ccp")
            .bar(2, BarKind::Mem32, 0xfc90_0000, MIB)
            .bar(5, BarKind::Mem32, 0xfca0_8000, 0x2000),
    )
    .pci(
        internal("0000:09:00.3", "0000:00:08.1", 0x149c, 0x0c0330, 14)
            .driver("xhci_hcd")
            .bar(0, BarKind::Mem64, 0xfc80_0000, MIB)
            .xhci(4, 4),
    )
    .pci(
        internal("0000:09:00.4", "0000:00:08.1", 0x1487, 0x040300, 15)
            .driver("snd_hda_intel")
            .bar(0, BarKind::Mem32, 0xfca0_0000, 0x8000),
    );

    // USB: a keyboard on the chipset controller 02:00.0 (usb1).
    h.usb(
        UsbDev::new("1-4", 0x046d, 0xc31c)
            .manufacturer("Logitech")
            .product("USB Keyboard")
            .interface(UsbIf::new(0x03, "usbhid").subclass_protocol(1, 1))
            .interface(UsbIf::new(0x03, "usbhid")),
    );

    h.net(NetIf::pci("enp5s0", "0000:05:00.0", "18:c0:4d:8a:9b:0c"))
        .net(NetIf::bridge("vmbr0", &["enp5s0"]))
        .route_default("vmbr0", [192, 168, 1, 1])
        .route("vmbr0", [192, 168, 1, 0], 24, None);

    h.disk(
        Disk::nvme("nvme0n1", "0000:01:00.0")
            .model("Samsung SSD 970 EVO Plus 500GB")
            .size(976_773_168)
            .partitions(&[2014, 1_048_576, 975_722_511]),
    )
    .dm(DmVolume::new(
        "pve-swap",
        "LVM-hT3kQ9rVb7Zx2Lm5Np8Wd1Fs4Gj6Hc0Ye3Ru9Io2Pa5Sd8Fg1Hj4Kl7Zx0Cv3Bn",
        &["nvme0n1p3"],
    )
    .size(16_777_216))
    .dm(DmVolume::new(
        "pve-root",
        "LVM-hT3kQ9rVb7Zx2Lm5Np8Wd1Fs4Gj6Hc0Ye3Ru9Io2Pa5Sd8Fg1Hj4Kl7Qw6Er2Ty",
        &["nvme0n1p3"],
    )
    .size(201_326_592))
    .mount("/dev/mapper/pve-root", "/", "ext4")
    .mount("/dev/nvme0n1p2", "/boot/efi", "vfat")
    .mount("/dev/fuse", "/etc/pve", "fuse");

    common_aliases(&mut h);
    for (pattern, module) in [
        // The notes' `lspci -nnk` lists `Kernel modules: nvidiafb, nouveau` for the GPU and
        // `snd_hda_intel` for its audio: the proprietary nvidia module is not installed.
        ("pci:v000010DEd*sv*sd*bc03sc*i*", "nvidiafb"),
        ("pci:v000010DEd*sv*sd*bc0Csc80i00*", "i2c_nvidia_gpu"),
        ("pci:v00001022d00001486sv*sd*bc*sc*i*", "ccp"),
        ("pci:v00001022d00001487sv*sd*bc*sc*i*", "snd_hda_intel"),
        ("pci:v00001022d0000790Bsv*sd*bc*sc*i*", "i2c_piix4"),
        ("pci:v00001022d00001443sv*sd*bc*sc*i*", "k10temp"),
        ("pci:v*d*sv*sd*bc01sc06i01*", "ahci"),
        ("pci:v000010ECd00008168sv*sd*bc*sc*i*", "r8169"),
    ] {
        h.alias(pattern, module);
    }

    h.file("etc/hostname", "pve\n")
        .file("etc/default/grub", grub("quiet"))
        .file("etc/modules", MODULES_HEADER)
        .file("etc/modprobe.d/pve-blacklist.conf", PVE_BLACKLIST)
        .file("etc/network/interfaces", INTERFACES)
        .file("etc/pve/qemu-server/100.conf", VM100)
        .file(
            "var/lib/vfiokit/capture/qemu-version",
            "QEMU emulator version 7.0.0 (pve-qemu-kvm_7.0.0-4)\n\
             Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n",
        )
        // Every kernel log line the notes publish, in their order; they span the author's
        // attempts (the BAR 1 lines came with vfio-pci bound and a VM started).
        .file(
            "var/lib/vfiokit/capture/kernel-log",
            include_str!("data/am4-rtx2060-kernel-log.txt"),
        );
    h
}

const VM100: &str = "bios: ovmf
boot: order=ide0;ide2;net0
cores: 2
efidisk0: local-lvm:vm-100-disk-0,efitype=4m,pre-enrolled-keys=1,size=4M
ide0: local-lvm:vm-100-disk-1,size=52G
ide2: local:iso/Win11_22H2_English_x64v1.iso,media=cdrom,size=5434622K
machine: pc-q35-7.0
memory: 4096
meta: creation-qemu=7.0.0,ctime=1667534921
name: win11
net0: e1000=F2:6C:8A:3B:51:E7,bridge=vmbr0,firewall=1
numa: 0
ostype: win11
scsihw: virtio-scsi-single
smbios1: uuid=8c1f4a27-5d3e-4b9a-a6f2-0e7d13c95b48
sockets: 1
tpmstate0: local-lvm:vm-100-disk-2,size=4M,version=v2.0
vmgenid: 3b7e9d21-64ac-4f0e-8d5b-a2c913f07e66
";

const INTERFACES: &str = "auto lo
iface lo inet loopback

iface enp5s0 inet manual

auto vmbr0
iface vmbr0 inet static
        address 192.168.1.10/24
        gateway 192.168.1.1
        bridge-ports enp5s0
        bridge-stp off
        bridge-fd 0

";
