//! The Minisforum UM880 Pro (Ryzen 7 8845HS, Radeon 780M) of
//! `shared/corpus/field-notes/amd-8845hs-780m-minisforum-um880pro.txt`.

use super::{MODULES_HEADER, PVE_BLACKLIST, common_aliases, grub_with};
use crate::{AmdUnit, BarKind, Disk, DmVolume, Host, Iommu, NetIf, PciFn, PcieType, UsbDev, UsbIf};

/// Which recorded state of the UM880 Pro.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Um880State {
    /// Proxmox VE 8.4 on Debian 12, amdgpu and the audio drivers bound, stock `/etc`, VM 100 as
    /// published without its hostpci, hookscript and `parent:` lines.
    Fresh,
    /// The author's final state: `iommu=pt`, the vfio modules (with `vfio_virqfd`) in
    /// `/etc/modules`, the published `passthrough.conf`, vfio-pci bound to c5:00.0, .1, .5, .6,
    /// the hookscript, and VM 100 as published minus `parent:`.
    Configured,
}

impl Um880State {
    /// The directory name under `testdata/minisforum-um880pro/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Um880State::Fresh => "fresh",
            Um880State::Configured => "configured",
        }
    }
}

const MIB: u64 = 1 << 20;
/// The subsystem the notes show on the c5:00.x functions; used for every AMD function.
const BOARD: (u16, u16) = (0x1f4c, 0xb016);

/// The Minisforum UM880 Pro in one of its two recorded states.
pub fn minisforum_um880pro(state: Um880State) -> Host {
    let configured = state == Um880State::Configured;
    let pick = |fresh: &'static str, conf: &'static str| if configured { conf } else { fresh };
    let mut h = Host::new();
    h.cmdline(pick(
        "BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet",
        "BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet iommu=pt",
    ))
    .iommu(Iommu::Amd(vec![AmdUnit {
        name: "ivhd0".into(),
        pci: "0000:00:00.2".into(),
        cap: 0x0040_0000,
        features: 0x246577efa2254afa,
    }]));

    let amd = |addr: &str, device: u16, class: u32| {
        PciFn::new(addr, 0x1022, device, class).subsystem(BOARD.0, BOARD.1)
    };
    let dummy_host_bridge = |addr: &str, group: u32| amd(addr, 0x14ea, 0x060000).group(group);
    // Root ports: the GPP bridges have ACS (each lands in its own group); the USB4 tunnel
    // bridges 03.1 and 04.1 have none and share a group with their slot's dummy host bridge.
    let port = |addr: &str, device: u16, secondary: u8, group: u32, acs: bool| {
        let f = amd(addr, device, 0x060400)
            .bridge(secondary)
            .driver("pcieport")
            .group(group)
            .irq(39)
            .pm()
            .pcie(PcieType::RootPort)
            .msi()
            .reset_method(&["pm"]);
        if acs {
            f.acs(super::ACS_CAP_ALL, super::ACS_CTRL_ISOLATED)
        } else {
            f
        }
    };
    let function = |addr: &str, device: u16, class: u32, group: u32| {
        amd(addr, device, class)
            .group(group)
            .pcie(PcieType::Endpoint)
            .pm()
            .msi()
            .acs(0x0015, 0x0015)
    };

    h.pci(amd("0000:00:00.0", 0x14e8, 0x060000))
        .pci(
            amd("0000:00:00.2", 0x14e9, 0x080600)
                .pcie(PcieType::RcIntegratedEndpoint)
                .msi(),
        )
        .pci(dummy_host_bridge("0000:00:01.0", 0))
        .pci(port("0000:00:01.2", 0x14ed, 0x01, 1, true))
        .pci(dummy_host_bridge("0000:00:02.0", 2))
        .pci(port("0000:00:02.1", 0x14ee, 0x02, 3, true))
        .pci(port("0000:00:02.2", 0x14ee, 0x03, 4, true))
        .pci(port("0000:00:02.3", 0x14ee, 0x04, 5, true))
        .pci(dummy_host_bridge("0000:00:03.0", 6))
        .pci(port("0000:00:03.1", 0x14ef, 0x05, 6, false).subordinate_bus(0x64))
        .pci(dummy_host_bridge("0000:00:04.0", 7))
        .pci(port("0000:00:04.1", 0x14ef, 0x65, 7, false).subordinate_bus(0xc4))
        .pci(dummy_host_bridge("0000:00:08.0", 8))
        .pci(port("0000:00:08.1", 0x14eb, 0xc5, 9, true))
        .pci(port("0000:00:08.2", 0x14eb, 0xc6, 10, true))
        .pci(port("0000:00:08.3", 0x14eb, 0xc7, 11, true))
        .pci(
            amd("0000:00:14.0", 0x790b, 0x0c0500)
                .revision(0x71)
                .driver("piix4_smbus")
                .group(12),
        )
        .pci(
            amd("0000:00:14.3", 0x790e, 0x060100)
                .revision(0x51)
                .group(12),
        );
    for f in 0..8u16 {
        let df = amd(&format!("0000:00:18.{f}"), 0x14f0 + f, 0x060000).group(13);
        h.pci(if f == 3 { df.driver("k10temp") } else { df });
    }

    // Behind the GPP bridges: NVMe, two RTL8125, the MT7922 WiFi.
    h.pci(
        PciFn::new("0000:01:00.0", 0xc0a9, 0x5426, 0x010802)
            .subsystem(0xc0a9, 0x5426)
            .revision(0x01)
            .parent("0000:00:01.2")
            .driver("nvme")
            .group(14)
            .bar(0, BarKind::Mem64, 0xdc90_0000, 0x4000)
            .pm()
            .msi()
            .pcie(PcieType::Endpoint)
            .flr()
            .msix(17)
            .link(4, 4)
            .reset_method(&["flr", "bus"]),
    );
    for (bus, group, io, mem) in [
        (2u8, 15u32, 0xf000u64, 0xdcc0_0000u64),
        (3, 16, 0xe000, 0xdcb0_0000),
    ] {
        h.pci(
            PciFn::new(&format!("0000:{bus:02x}:00.0"), 0x10ec, 0x8125, 0x020000)
                .subsystem(0x10ec, 0x0123)
                .revision(0x05)
                .parent(&format!("0000:00:02.{}", bus - 1))
                .driver("r8169")
                .group(group)
                .bar(0, BarKind::Io, io, 0x100)
                .bar(2, BarKind::Mem64, mem, 0x10000)
                .bar(4, BarKind::Mem64, mem + 0x10000, 0x4000)
                .pm()
                .msi()
                .pcie(PcieType::Endpoint)
                .msix(32)
                .link(2, 1)
                .reset_method(&["pm", "bus"]),
        );
    }
    h.pci(
        PciFn::new("0000:04:00.0", 0x14c3, 0x0616, 0x028000)
            .subsystem(0x14c3, 0x0616)
            .parent("0000:00:02.3")
            .driver("mt7921e")
            .group(17)
            .bar(0, BarKind::Mem64Prefetch, 0x7c_1000_0000, MIB)
            .bar(2, BarKind::Mem64Prefetch, 0x7c_1010_0000, 0x8000)
            .pm()
            .msi()
            .pcie(PcieType::Endpoint)
            .link(3, 1)
            .reset_method(&["pm", "bus"]),
    );

    // c5: the iGPU and its companions, each function in its own group. The GPU function has
    // no reset method at all (PM with No_Soft_Reset, no FLR, not alone on its bus).
    let c5 = |f: u8, device: u16, class: u32, group: u32| {
        function(&format!("0000:c5:00.{f}"), device, class, group).parent("0000:00:08.1")
    };
    h.pci(
        PciFn::new("0000:c5:00.0", 0x1002, 0x1900, 0x030000)
            .subsystem(BOARD.0, BOARD.1)
            .revision(0xc5)
            .parent("0000:00:08.1")
            .driver(pick("amdgpu", "vfio-pci"))
            .group(18)
            .boot_vga(true)
            .irq(44)
            .bar(0, BarKind::Mem64Prefetch, 0x7c_0000_0000, 256 * MIB)
            .bar(2, BarKind::Mem64Prefetch, 0xdc00_0000, 2 * MIB)
            .bar(4, BarKind::Io, 0xd000, 0x100)
            .bar(5, BarKind::Mem32, 0xdc50_0000, 512 * 1024)
            .vendor_cap(0x08)
            .pcie(PcieType::LegacyEndpoint)
            .pm()
            .no_soft_reset()
            .pme_d3cold()
            .msi()
            .msix(4)
            .acs(0x0015, 0x0015)
            .link(4, 16)
            .cap_offsets(&[0x48, 0x64, 0x50, 0xa0, 0xc0])
            .reset_method(&[]),
    )
    .pci(
        PciFn::new("0000:c5:00.1", 0x1002, 0x1640, 0x040300)
            .subsystem(BOARD.0, BOARD.1)
            .parent("0000:00:08.1")
            .driver(pick("snd_hda_intel", "vfio-pci"))
            .group(19)
            .irq(114)
            .bar(0, BarKind::Mem32, 0xdc5c_8000, 0x4000)
            .vendor_cap(0x08)
            .pcie(PcieType::LegacyEndpoint)
            .pm()
            .pme_d3cold()
            .msi()
            .acs(0x0015, 0x0015)
            .link(4, 16)
            .cap_offsets(&[0x48, 0x64, 0x50, 0xa0])
            .reset_method(&["pm"]),
    )
    .pci(
        c5(2, 0x15c7, 0x108000, 20)
            .driver("ccp")
            .bar(2, BarKind::Mem32, 0xdc40_0000, MIB)
            .bar(5, BarKind::Mem32, 0xdc5c_c000, 0x2000)
            .no_soft_reset()
            .msix(2)
            .reset_method(&[]),
    )
    .pci(
        c5(3, 0x15b9, 0x0c0330, 21)
            .driver("xhci_hcd")
            .bar(0, BarKind::Mem64, 0xdc20_0000, MIB)
            .msix(8)
            .xhci(2, 1)
            .reset_method(&["pm"]),
    )
    .pci(
        c5(4, 0x15ba, 0x0c0330, 22)
            .driver("xhci_hcd")
            .bar(0, BarKind::Mem64, 0xdc30_0000, MIB)
            .msix(8)
            .xhci(2, 1)
            .reset_method(&["pm"]),
    )
    .pci(
        c5(5, 0x15e2, 0x048000, 23)
            .revision(0x63)
            .driver(pick("snd_pci_ps", "vfio-pci"))
            .bar(0, BarKind::Mem32, 0xdc58_0000, 0x40000)
            .no_soft_reset()
            .reset_method(&[]),
    )
    .pci(
        c5(6, 0x15e3, 0x040300, 24)
            .driver(pick("snd_hda_intel", "vfio-pci"))
            .label("Realtek ALC256")
            .bar(0, BarKind::Mem32, 0xdc5c_0000, 0x8000)
            .no_soft_reset()
            .reset_method(&[]),
    );
    let below = |bus: u8, f: u8, device: u16, class: u32, group: u32| {
        function(&format!("0000:{bus:02x}:00.{f}"), device, class, group)
            .parent(&format!("0000:00:08.{}", bus - 0xc4))
            .reset_method(&["pm"])
    };
    h.pci(below(0xc6, 0, 0x14ec, 0x130000, 25))
        .pci(below(0xc6, 1, 0x1502, 0x118000, 26).bar(0, BarKind::Mem32, 0xdc10_0000, 512 * 1024))
        .pci(below(0xc7, 0, 0x14ec, 0x130000, 27))
        .pci(
            below(0xc7, 3, 0x15c0, 0x0c0330, 28)
                .driver("xhci_hcd")
                .bar(0, BarKind::Mem64, 0xdb00_0000, MIB)
                .xhci(1, 1),
        )
        .pci(
            below(0xc7, 4, 0x15c1, 0x0c0330, 29)
                .driver("xhci_hcd")
                .bar(0, BarKind::Mem64, 0xdb10_0000, MIB)
                .xhci(1, 1),
        )
        .pci(
            below(0xc7, 5, 0x1668, 0x0c0340, 30)
                .driver("thunderbolt")
                .bar(0, BarKind::Mem64, 0xdb20_0000, 512 * 1024),
        )
        .pci(
            below(0xc7, 6, 0x1669, 0x0c0340, 31)
                .driver("thunderbolt")
                .bar(0, BarKind::Mem64, 0xdb28_0000, 512 * 1024),
        );

    // USB: the MOSART receiver on port 1 of a hub on port 2 of c5:00.3 (usb1).
    h.usb(
        UsbDev::hub("1-2", 0x05e3, 0x0608, 4)
            .bcd_device(0x6060)
            .product("USB2.0 Hub"),
    )
    .usb(
        UsbDev::new("1-2.1", 0x062a, 0x4101)
            .bcd_device(0x0110)
            .manufacturer("MOSART Semi.")
            .product("2.4G Keyboard Mouse")
            .interface(UsbIf::new(0x03, "usbhid").subclass_protocol(1, 1))
            .interface(UsbIf::new(0x03, "usbhid").subclass_protocol(1, 2))
            .devnum(5),
    );

    // Network: the first RTL8125 in the bridge `lanbr` (the notes' dmesg names it), the
    // second unused, the WiFi down.
    h.net(NetIf::pci("enp2s0", "0000:02:00.0", "58:47:ca:7a:1b:2c"))
        .net(NetIf::pci("enp3s0", "0000:03:00.0", "58:47:ca:7a:1b:2d").down())
        .net(NetIf::pci("wlp4s0", "0000:04:00.0", "d8:80:83:5c:3d:4e").down())
        .net(NetIf::bridge("lanbr", &["enp2s0"]))
        .route_default("lanbr", [192, 168, 1, 1])
        .route("lanbr", [192, 168, 1, 0], 24, None);

    // Storage: the NVMe with Proxmox's default LVM root on its third partition, the ZFS pool
    // `tank` (VM disks) on the fourth.
    h.disk(
        Disk::nvme("nvme0n1", "0000:01:00.0")
            .model("CT2000P310SSD8")
            .size(3_907_029_168)
            .partitions(&[2014, 2_097_152, 209_715_200, 3_695_214_768]),
    )
    .dm(DmVolume::new(
        "pve-swap",
        "LVM-Xk4v9QeTz2nH7pLw3RbC8sYd1FgJ5mUa6oNq0iKrVtEyWhZx2cBn4Dm7Gf9Hj3Lk",
        &["nvme0n1p3"],
    )
    .size(16_777_216))
    .dm(DmVolume::new(
        "pve-root",
        "LVM-Xk4v9QeTz2nH7pLw3RbC8sYd1FgJ5mUa6oNq0iKrVtEyWhZt8Rs2Pq5Mn1Vb7Xc4",
        &["nvme0n1p3"],
    )
    .size(188_743_680))
    .mount("/dev/mapper/pve-root", "/", "ext4")
    .mount("/dev/nvme0n1p2", "/boot/efi", "vfat")
    .mount("tank", "/tank", "zfs")
    .mount("/dev/fuse", "/etc/pve", "fuse");

    common_aliases(&mut h);
    for (pattern, module) in [
        ("pci:v00001002d00001900sv*sd*bc*sc*i*", "amdgpu"),
        ("pci:v00001002d00001640sv*sd*bc*sc*i*", "snd_hda_intel"),
        ("pci:v00001022d000015E3sv*sd*bc*sc*i*", "snd_hda_intel"),
        ("pci:v00001022d000015E2sv*sd*bc04sc80i00*", "snd_pci_ps"),
        ("pci:v00001022d000015E2sv*sd*bc*sc*i*", "snd_sof_amd_acp63"),
        ("pci:v00001022d000015C7sv*sd*bc*sc*i*", "ccp"),
        ("pci:v00001022d00001668sv*sd*bc*sc*i*", "thunderbolt"),
        ("pci:v00001022d00001669sv*sd*bc*sc*i*", "thunderbolt"),
        ("pci:v00001022d0000790Bsv*sd*bc*sc*i*", "i2c_piix4"),
        ("pci:v00001022d000014F3sv*sd*bc*sc*i*", "k10temp"),
        ("pci:v000010ECd00008125sv*sd*bc*sc*i*", "r8169"),
        ("pci:v000014C3d00000616sv*sd*bc*sc*i*", "mt7921e"),
    ] {
        h.alias(pattern, module);
    }

    h.file("etc/hostname", "d12pve\n")
        .file(
            "etc/default/grub",
            grub_with(
                "`lsb_release -i -s 2> /dev/null || echo Debian`",
                pick("quiet", "quiet iommu=pt"),
            ),
        )
        .file(
            "etc/modules",
            format!(
                "{MODULES_HEADER}{}",
                pick("", "vfio\nvfio_iommu_type1\nvfio_pci\nvfio_virqfd\n")
            ),
        )
        .file("etc/modprobe.d/pve-blacklist.conf", PVE_BLACKLIST)
        .file("etc/network/interfaces", INTERFACES)
        .file("etc/pve/qemu-server/100.conf", vm100(configured))
        // QEMU as the VM's `creation-qemu=9.2.0` shows; the package revision is filler.
        .file(
            "var/lib/vfiokit/capture/qemu-version",
            "QEMU emulator version 9.2.0 (pve-qemu-kvm_9.2.0-5)\n\
             Copyright (c) 2003-2024 Fabrice Bellard and the QEMU Project developers\n",
        );
    if configured {
        h.file("etc/modprobe.d/passthrough.conf", PASSTHROUGH_CONF)
            .file(
                "var/lib/vz/snippets/vm100-hooks.sh",
                include_str!("data/um880pro-vm100-hooks.sh"),
            )
            // Every kernel, QEMU and task log line the notes publish, in their order.
            .file(
                "var/lib/vfiokit/capture/kernel-log",
                include_str!("data/um880pro-kernel-log.txt"),
            );
    }
    h
}

/// VM 100 as `qm config 100` printed it, without `parent:` (the snapshot is not published);
/// in the fresh state also without the hostpci and hookscript lines.
fn vm100(configured: bool) -> String {
    VM100
        .lines()
        .filter(|l| !l.starts_with("parent:"))
        .filter(|l| configured || !(l.starts_with("hostpci") || l.starts_with("hookscript:")))
        .map(|l| format!("{l}\n"))
        .collect()
}

const VM100: &str = "agent: 1
bios: ovmf
boot: order=scsi0;ide1
cores: 4
cpu: host
efidisk0: tank:vm-100-disk-0,efitype=4m,pre-enrolled-keys=1,size=1M
hookscript: local:snippets/vm100-hooks.sh
hostpci0: 0000:c5:00.0,pcie=1,x-vga=1,romfile=vbios_1002_1900.bin
hostpci1: 0000:c5:00.1,pcie=1,romfile=AMDGopDriver_8845hs.rom
ide0: none,media=cdrom
ide1: none,media=cdrom
machine: pc-q35-9.2+pve1
memory: 32768
meta: creation-qemu=9.2.0,ctime=1751205760
name: win11
net0: virtio=BC:24:11:65:28:1F,bridge=lanbr
numa: 0
onboot: 1
ostype: win11
parent: after_add_devcon_scripts
scsi0: tank:vm-100-disk-2,cache=writeback,discard=on,size=128G,ssd=1
scsihw: virtio-scsi-pci
smbios1: uuid=2685ce19-6d14-4bc8-a08a-70699408edfc
sockets: 1
tpmstate0: tank:vm-100-disk-1,size=4M,version=v2.0
usb0: host=062a:4101
vga: none
vmgenid: 4dee25b3-2e2d-4948-8151-8e8b7758a410
";

const PASSTHROUGH_CONF: &str = "# don't load driver for iGPU and sound devices
blacklist amdgpu
blacklist radeon
blacklist snd_sof_amd_acp63
blacklist snd_sof_amd_vangogh
blacklist snd_sof_amd_rembrandt
blacklist snd_sof_amd_renoir
blacklist snd_sof_amd_acp
blacklist snd_sof_pci
blacklist snd_sof_xtensa_dsp
blacklist snd_sof
blacklist snd_sof_utils
blacklist snd_soc_core
blacklist snd_hda_intel
blacklist snd_compress
blacklist snd_intel_dspcfg
blacklist snd_pcm_dmaengine
blacklist snd_intel_sdw_acpi
blacklist snd_pci_ps
blacklist snd_rpl_pci_acp6x
blacklist snd_hda_codec
blacklist snd_acp_pci
blacklist snd_acp_legacy_common
blacklist snd_hda_core
blacklist snd_pci_acp6x
blacklist snd_hwdep
blacklist snd_pci_acp5x
blacklist snd_pcm
blacklist snd_rn_pci_acp3x
blacklist snd_timer
blacklist snd_acp_config
blacklist snd_soc_acpi
blacklist snd_pci_acp3x

# load vfio-pci driver instead
options vfio-pci ids=1002:1900,1002:1640,1022:15e2,1022:15e3
";

const INTERFACES: &str = "auto lo
iface lo inet loopback

iface enp2s0 inet manual

auto lanbr
iface lanbr inet static
        address 192.168.1.20/24
        gateway 192.168.1.1
        bridge-ports enp2s0
        bridge-stp off
        bridge-fd 0

iface enp3s0 inet manual

iface wlp4s0 inet manual

source /etc/network/interfaces.d/*
";
