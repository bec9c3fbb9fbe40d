//! Large generated hosts, for benchmarks and for tests that need scale: servers with several
//! sockets and PCI domains, root ports and PCIe switches, GPUs with their audio functions, NVMe
//! disks, and NICs whose SR-IOV virtual functions make up most of the count.
//!
//! [`large_host`] lays out exactly the number of PCI functions asked for, the same way for the
//! same seed. The layout follows a dual- or quad-socket Xeon server:
//!
//! - one PCI domain per socket (`0000`, `0001`, …), each with up to four root complexes (host
//!   bridges on root buses `00`, `40`, `80`, `c0`, 64 bus numbers each), the functions' `numa_node`
//!   being their socket;
//! - on socket 0 the chipset (LPC, SMBus, SPI flash, xHCI, AHCI) and the BMC's VGA behind its
//!   PCIe-to-PCI bridge (the boot display);
//! - root ports, with ACS or without; some lead to a PCIe switch whose downstream ports have
//!   ACS or not;
//! - behind each port one card: a GPU and its HDMI audio function, a datacenter GPU, an NVMe
//!   disk, a one-port NIC, or a two-port NIC with SR-IOV virtual functions (`physfn`/`virtfnN`
//!   links, `sriov_numvfs`, the SR-IOV capability in config space);
//! - IOMMU groups as the kernel forms them from ACS, simplified: a port without ACS shares its
//!   group with everything below it, a multifunction card without ACS is one group; group numbers
//!   have gaps;
//! - the first NIC carries the default route (through `vmbr0`), the first NVMe disk holds `/`,
//!   the BMC's virtual keyboard hangs off the xHCI controller.

use std::io;
use std::net::Ipv4Addr;

use crate::hosts::{ACS_CAP_ALL, ACS_CTRL_ISOLATED, common_aliases};
use crate::{BarKind, Disk, DmarUnit, Host, Iommu, NetIf, PciFn, PcieType, UsbDev};

/// The most PCI functions [`large_host`] lays out.
pub const MAX_FUNCTIONS: usize = 100_000;

/// A host with exactly `functions` PCI functions (1 to [`MAX_FUNCTIONS`]), laid out from `seed`:
/// the same arguments give the same host.
///
/// ```
/// let host = vfiokit_fakesys::generate::large_host(300, 7)?;
/// let (dir, root) = vfiokit_fakesys::write_scratch(&host)?;
/// let listed = std::fs::read_dir(root.sys_bus_devices("pci"))?.count();
/// assert_eq!(listed, 300);
/// # drop(dir);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn large_host(functions: usize, seed: u64) -> io::Result<Host> {
    if functions == 0 || functions > MAX_FUNCTIONS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot generate {functions} PCI functions: from 1 to {MAX_FUNCTIONS}"),
        ));
    }
    let mut g = Gen::new(functions, seed);
    g.platform();
    g.cards();
    g.fill_root_buses();
    if g.left > 0 {
        return Err(io::Error::other(format!(
            "{functions} PCI functions do not fit the generated topology ({} left over)",
            g.left
        )));
    }
    Ok(g.finish())
}

/// SplitMix64: small, fast, and the same on every platform.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A root complex: a host bridge and the bus numbers below it.
#[derive(Debug, Clone)]
struct Complex {
    socket: u32,
    domain: u32,
    root_bus: u8,
    /// The next free bus number.
    next_bus: u16,
    /// One past the last bus number it owns.
    bus_limit: u16,
    /// Device numbers on the root bus still free for root ports, in the order to use them.
    free_devs: Vec<u8>,
}

impl Complex {
    fn free_buses(&self) -> usize {
        usize::from(self.bus_limit.saturating_sub(self.next_bus))
    }

    /// How many more cards can hang off root ports here.
    fn slots(&self) -> usize {
        self.free_devs.len().min(self.free_buses())
    }

    fn addr(&self, bus: u8, dev: u8, func: u8) -> String {
        format!("{:04x}:{bus:02x}:{dev:02x}.{func:x}", self.domain)
    }

    fn take_bus(&mut self) -> u8 {
        let bus = self.next_bus as u8;
        self.next_bus += 1;
        bus
    }
}

/// Where a card or port sits: its bus, the bridge above, the group it must share (if any).
#[derive(Debug, Clone)]
struct Slot {
    rc: usize,
    bus: u8,
    parent: String,
    shared_group: Option<u32>,
}

struct Gen {
    rng: Rng,
    host: Host,
    left: usize,
    next_group: u32,
    mem: u64,
    complexes: Vec<Complex>,
    first_nic: Option<String>,
    first_nvme: Option<String>,
    has_ahci: bool,
    has_xhci: bool,
}

const MIB: u64 = 1 << 20;
const ROOT_PORT_DEVS: [u8; 24] = [
    0x01, 0x02, 0x03, 0x04, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11,
    0x12, 0x13, 0x15, 0x16, 0x18, 0x19, 0x1a, 0x1b,
];

/// GPUs with an HDMI audio function: vendor, GPU, audio, host driver.
const GPUS: [(u16, u16, u16, &str); 3] = [
    (0x10de, 0x2204, 0x1aef, "nouveau"),
    (0x10de, 0x1e07, 0x10f7, "nouveau"),
    (0x1002, 0x73bf, 0xab28, "amdgpu"),
];
/// NVMe controllers: vendor, device, subsystem vendor, subsystem device.
const NVMES: [(u16, u16, u16, u16); 3] = [
    (0x144d, 0xa80a, 0x144d, 0xa801),
    (0x8086, 0x0b60, 0x8086, 0x8008),
    (0x1c5c, 0x174a, 0x1c5c, 0x174a),
];
/// SR-IOV NICs: vendor, PF device, VF device, PF driver, VF driver, VFs per PF at most.
const SRIOV_NICS: [(u16, u16, u16, &str, &str, u16); 3] = [
    (0x8086, 0x1572, 0x154c, "i40e", "iavf", 64),
    (0x8086, 0x10fb, 0x10ed, "ixgbe", "ixgbevf", 63),
    (0x15b3, 0x1017, 0x1018, "mlx5_core", "mlx5_core", 127),
];

impl Gen {
    fn new(functions: usize, seed: u64) -> Gen {
        let sockets: u32 = match functions {
            0..=100 => 1,
            101..=2_000 => 2,
            2_001..=20_000 => 4,
            _ => 8,
        };
        let root_buses: &[u8] = if functions <= 100 {
            &[0x00]
        } else {
            &[0x00, 0x40, 0x80, 0xc0]
        };
        let mut complexes = Vec::new();
        for socket in 0..sockets {
            for &root_bus in root_buses {
                let span = 0x100 / root_buses.len() as u16;
                complexes.push(Complex {
                    socket,
                    domain: socket,
                    root_bus,
                    next_bus: u16::from(root_bus) + 1,
                    bus_limit: u16::from(root_bus) + span,
                    free_devs: ROOT_PORT_DEVS.to_vec(),
                });
            }
        }
        let mut host = Host::new();
        host.cmdline(
            "BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/nvme0n1p3 ro quiet intel_iommu=on iommu=pt",
        )
        .iommu(Iommu::Intel(
            (0..sockets)
                .map(|s| DmarUnit {
                    name: format!("dmar{s}"),
                    cap: 0x8d2078c106f0466,
                    ecap: 0xf020df,
                    address: 0xc5ffc000 - u64::from(s) * 0x1000_0000,
                })
                .collect(),
        ));
        Gen {
            rng: Rng(seed),
            host,
            left: functions,
            next_group: 0,
            mem: 0x2000_0000_0000,
            complexes,
            first_nic: None,
            first_nvme: None,
            has_ahci: false,
            has_xhci: false,
        }
    }

    /// A new IOMMU group number; one in five leaves a gap.
    fn group(&mut self) -> u32 {
        let id = self.next_group;
        let gap = if self.rng.chance(20) {
            1 + self.rng.below(6) as u32
        } else {
            0
        };
        self.next_group += 1 + gap;
        id
    }

    /// The group of something at `slot`: the shared one, or a new one.
    fn group_at(&mut self, slot: &Slot) -> u32 {
        slot.shared_group.unwrap_or_else(|| self.group())
    }

    /// Memory for a BAR of `size` bytes, aligned to its size.
    fn mem(&mut self, size: u64) -> u64 {
        let start = self.mem.next_multiple_of(size);
        self.mem = start + size;
        start
    }

    fn add(&mut self, rc: usize, f: PciFn) {
        let node = self.complexes[rc].socket as i32;
        self.host.pci(f.numa_node(node));
        self.left -= 1;
    }

    /// Host bridges of every root complex and, on socket 0, the chipset and the BMC's display.
    fn platform(&mut self) {
        for rc in 0..self.complexes.len() {
            if self.left == 0 {
                return;
            }
            let c = &self.complexes[rc];
            let addr = c.addr(c.root_bus, 0, 0);
            let group = self.group();
            self.add(
                rc,
                PciFn::new(&addr, 0x8086, 0x2020, 0x060000)
                    .revision(0x04)
                    .subsystem(0x8086, 0x0000)
                    .group(group),
            );
            if rc == 0 {
                self.chipset();
            }
        }
    }

    fn chipset(&mut self) {
        let sub = (0x15d9, 0x095d); // Supermicro X11DPi-N
        let intel = |addr: &str, device: u16, class: u32| {
            PciFn::new(addr, 0x8086, device, class)
                .subsystem(sub.0, sub.1)
                .revision(0x09)
        };
        if self.left > 0 {
            let group = self.group();
            self.add(
                0,
                intel("0000:00:14.0", 0xa1af, 0x0c0330)
                    .driver("xhci_hcd")
                    .group(group)
                    .irq(16)
                    .bar(0, BarKind::Mem64, 0xaa10_0000, 0x10000)
                    .pm()
                    .msi()
                    .xhci(4, 4),
            );
            self.has_xhci = true;
        }
        if self.left > 0 {
            let group = self.group();
            self.add(
                0,
                intel("0000:00:17.0", 0xa182, 0x010601)
                    .driver("ahci")
                    .group(group)
                    .irq(17)
                    .bar(5, BarKind::Mem32, 0xaa11_0000, 0x800)
                    .msi()
                    .pm(),
            );
            self.has_ahci = true;
        }
        // LPC, SMBus and SPI flash: one multifunction device without ACS, one group.
        let pch_group = self.group();
        for (addr, device, class, driver) in [
            ("0000:00:1f.0", 0xa1c2, 0x060100, None),
            ("0000:00:1f.4", 0xa1a3, 0x0c0500, Some("i801_smbus")),
            ("0000:00:1f.5", 0xa1a4, 0x0c8000, None),
        ] {
            if self.left == 0 {
                return;
            }
            let mut f = intel(addr, device, class).group(pch_group);
            if let Some(d) = driver {
                f = f.driver(d);
            }
            self.add(0, f);
        }
        if self.left < 3 {
            return;
        }
        // The BMC: root port 00:1c.0, the ASPEED PCIe-to-PCI bridge, the ASPEED VGA (boot display).
        let bus = self.complexes[0].take_bus();
        let vga_bus = self.complexes[0].take_bus();
        let group = self.group();
        self.add(
            0,
            intel("0000:00:1c.0", 0xa190, 0x060400)
                .bridge(bus)
                .driver("pcieport")
                .group(group)
                .pm()
                .msi()
                .pcie(PcieType::RootPort)
                .link(1, 1),
        );
        self.add(
            0,
            PciFn::new(&format!("0000:{bus:02x}:00.0"), 0x1a03, 0x1150, 0x060400)
                .revision(0x04)
                .parent("0000:00:1c.0")
                .bridge(vga_bus)
                .group(group)
                .pm()
                .pcie(PcieType::PcieToPciBridge)
                .link(1, 1),
        );
        self.add(
            0,
            PciFn::new(
                &format!("0000:{vga_bus:02x}:00.0"),
                0x1a03,
                0x2000,
                0x030000,
            )
            .subsystem(sub.0, sub.1)
            .revision(0x41)
            .parent(&format!("0000:{bus:02x}:00.0"))
            .driver("ast")
            .group(group)
            .boot_vga(true)
            .irq(16)
            .bar(0, BarKind::Mem32, 0xab00_0000, 16 * MIB)
            .bar(1, BarKind::Mem32, 0xac00_0000, 128 * 1024)
            .bar(2, BarKind::Io, 0x3000, 0x80)
            .pm()
            .msi(),
        );
    }

    /// Root ports with cards (or switches with cards), one complex after the other, until the
    /// functions are placed or the ports run out.
    fn cards(&mut self) {
        let mut rc = 0;
        let mut idle = 0;
        while self.left >= 2 && idle < self.complexes.len() {
            if self.complexes[rc].slots() == 0 {
                idle += 1;
            } else {
                idle = 0;
                self.root_port(rc);
            }
            rc = (rc + 1) % self.complexes.len();
        }
    }

    /// Card slots left on the whole host.
    fn slots(&self) -> usize {
        self.complexes.iter().map(Complex::slots).sum()
    }

    fn root_port(&mut self, rc: usize) {
        let c = &mut self.complexes[rc];
        let dev = c.free_devs.remove(0);
        let bus = c.take_bus();
        let (root_bus, addr) = (c.root_bus, c.addr(c.root_bus, dev, 0));
        let acs = self.rng.chance(75);
        let group = self.group();
        let mut port = PciFn::new(&addr, 0x8086, 0x2030, 0x060400)
            .revision(0x04)
            .bridge(bus)
            .driver("pcieport")
            .group(group)
            .irq(27 + u32::from(root_bus))
            .pm()
            .msi()
            .pcie(PcieType::RootPort)
            .link(3, 16);
        if acs {
            port = port.acs(ACS_CAP_ALL, ACS_CTRL_ISOLATED);
        }
        self.add(rc, port);
        let slot = Slot {
            rc,
            bus,
            parent: addr,
            shared_group: (!acs).then_some(group),
        };
        // A switch needs its upstream port, a downstream port and a card, and bus numbers for
        // its internal bus and each downstream port.
        let pressed = self.left > 16 * self.slots().max(1);
        if !pressed && self.left >= 3 && self.complexes[rc].free_buses() >= 3 && self.rng.chance(20)
        {
            self.switch(slot);
        } else {
            self.card(slot);
        }
    }

    /// A PCIe switch (Broadcom PEX 8747) at `slot` with downstream ports, each with a card.
    fn switch(&mut self, slot: Slot) {
        let rc = slot.rc;
        let internal = self.complexes[rc].take_bus();
        let up_addr = self.complexes[rc].addr(slot.bus, 0, 0);
        let up_group = self.group_at(&slot);
        self.add(
            rc,
            PciFn::new(&up_addr, 0x10b5, 0x8747, 0x060400)
                .revision(0xca)
                .parent(&slot.parent)
                .bridge(internal)
                .driver("pcieport")
                .group(up_group)
                .pm()
                .msi()
                .pcie(PcieType::SwitchUpstream)
                .link(3, 16),
        );
        let acs = self.rng.chance(70);
        let shared = match slot.shared_group {
            Some(g) => Some(g),
            None if !acs => Some(self.group()),
            None => None,
        };
        let ports = 2 + self.rng.below(4) as u8;
        for dev in 0..ports {
            if self.left < 2 || self.complexes[rc].free_buses() == 0 {
                break;
            }
            let bus = self.complexes[rc].take_bus();
            let addr = self.complexes[rc].addr(internal, 0x08 + dev, 0);
            let group = match shared {
                Some(g) => g,
                None => self.group(),
            };
            let mut port = PciFn::new(&addr, 0x10b5, 0x8747, 0x060400)
                .revision(0xca)
                .parent(&up_addr)
                .bridge(bus)
                .driver("pcieport")
                .group(group)
                .pm()
                .msi()
                .pcie(PcieType::SwitchDownstream)
                .link(3, 16);
            if acs {
                port = port.acs(ACS_CAP_ALL, ACS_CTRL_ISOLATED);
            }
            self.add(rc, port);
            self.card(Slot {
                rc,
                bus,
                parent: addr,
                shared_group: shared,
            });
        }
    }

    /// One card at `slot`, sized to the functions left.
    fn card(&mut self, slot: Slot) {
        if self.left == 0 {
            return;
        }
        let pressed = self.left > 16 * self.slots().max(1);
        let kind = if pressed || self.rng.chance(30) && self.left >= 4 {
            Card::SriovNic
        } else {
            match self.rng.below(100) {
                0..=19 if self.left >= 2 => Card::Gpu,
                0..=26 => Card::Gpu3d,
                27..=66 => Card::Nvme,
                _ => Card::Nic,
            }
        };
        match kind {
            Card::Gpu => self.gpu(&slot),
            Card::Gpu3d => self.gpu3d(&slot),
            Card::Nvme => self.nvme(&slot),
            Card::Nic => self.nic(&slot),
            Card::SriovNic => self.sriov_nic(&slot, pressed),
        }
    }

    fn endpoint(&self, slot: &Slot, dev: u8, func: u8, ids: (u16, u16, u32)) -> PciFn {
        let addr = self.complexes[slot.rc].addr(slot.bus, dev, func);
        PciFn::new(&addr, ids.0, ids.1, ids.2).parent(&slot.parent)
    }

    fn gpu(&mut self, slot: &Slot) {
        let (vendor, gpu, audio, driver) = self.rng.pick(&GPUS);
        let vfio = self.rng.chance(50);
        let group = self.group_at(slot);
        let (vram, regs) = (self.mem(256 * MIB), self.mem(16 * MIB));
        let f = self
            .endpoint(slot, 0, 0, (vendor, gpu, 0x030000))
            .subsystem(vendor, 0x1234)
            .revision(0xa1)
            .driver(if vfio { "vfio-pci" } else { driver })
            .group(group)
            .boot_vga(false)
            .bar(0, BarKind::Mem64, regs, 16 * MIB)
            .bar(2, BarKind::Mem64Prefetch, vram, 256 * MIB)
            .pm()
            .msi()
            .pcie(PcieType::LegacyEndpoint)
            .link(4, 16);
        self.add(slot.rc, f);
        let regs = self.mem(0x4000);
        let f = self
            .endpoint(slot, 0, 1, (vendor, audio, 0x040300))
            .subsystem(vendor, 0x1234)
            .revision(0xa1)
            .driver(if vfio { "vfio-pci" } else { "snd_hda_intel" })
            .group(group)
            .bar(0, BarKind::Mem64, regs, 0x4000)
            .pm()
            .msi()
            .pcie(PcieType::Endpoint)
            .link(4, 16);
        self.add(slot.rc, f);
    }

    fn gpu3d(&mut self, slot: &Slot) {
        let group = self.group_at(slot);
        let driver = if self.rng.chance(50) {
            "vfio-pci"
        } else {
            "nvidia"
        };
        let (regs, mem) = (self.mem(16 * MIB), self.mem(1 << 30));
        let f = self
            .endpoint(slot, 0, 0, (0x10de, 0x20b5, 0x030200))
            .subsystem(0x10de, 0x1533)
            .revision(0xa1)
            .driver(driver)
            .group(group)
            .bar(0, BarKind::Mem64, regs, 16 * MIB)
            .bar(2, BarKind::Mem64Prefetch, mem, 1 << 30)
            .pm()
            .msix(6)
            .pcie(PcieType::Endpoint)
            .flr()
            .link(4, 16);
        self.add(slot.rc, f);
    }

    fn nvme(&mut self, slot: &Slot) {
        let (vendor, device, sv, sd) = self.rng.pick(&NVMES);
        let group = self.group_at(slot);
        let regs = self.mem(0x4000);
        let f = self
            .endpoint(slot, 0, 0, (vendor, device, 0x010802))
            .subsystem(sv, sd)
            .driver("nvme")
            .group(group)
            .bar(0, BarKind::Mem64, regs, 0x4000)
            .pm()
            .msi()
            .msix(130)
            .pcie(PcieType::Endpoint)
            .flr()
            .link(4, 4);
        let addr = f.address().to_string();
        self.first_nvme.get_or_insert(addr);
        self.add(slot.rc, f);
    }

    fn nic(&mut self, slot: &Slot) {
        let device = self.rng.pick(&[0x1533u16, 0x1521]);
        let group = self.group_at(slot);
        let regs = self.mem(0x20000);
        let f = self
            .endpoint(slot, 0, 0, (0x8086, device, 0x020000))
            .subsystem(0x15d9, 0x1533)
            .revision(0x03)
            .driver("igb")
            .group(group)
            .bar(0, BarKind::Mem64, regs, 0x20000)
            .pm()
            .msi()
            .msix(5)
            .pcie(PcieType::Endpoint)
            .flr()
            .link(1, 1);
        let addr = f.address().to_string();
        self.first_nic.get_or_insert(addr);
        self.add(slot.rc, f);
    }

    /// A two-port NIC (one port when a single function is left) with SR-IOV virtual functions
    /// on the same bus (ARI numbering: VF routing ids follow the PFs'). When the host is short of
    /// slots (`pressed`) the NIC takes as many VFs as it can.
    fn sriov_nic(&mut self, slot: &Slot, pressed: bool) {
        let (vendor, pf_dev, vf_dev, pf_driver, vf_driver, total) = if pressed {
            SRIOV_NICS[2]
        } else {
            self.rng.pick(&SRIOV_NICS)
        };
        let pfs: usize = if self.left >= 2 { 2 } else { 1 };
        let wanted = if pressed {
            usize::from(total)
        } else {
            self.rng.pick(&[4usize, 8, 8, 16, 16, 32, 32, 63])
        };
        let vfs = wanted
            .min(usize::from(total))
            .min((self.left - pfs) / pfs)
            .min((256 - pfs) / pfs);
        let acs = self.rng.chance(80);
        let shared = match slot.shared_group {
            Some(g) => Some(g),
            None if !acs => Some(self.group()),
            None => None,
        };
        let mut pf_addrs = Vec::new();
        for p in 0..pfs {
            let group = match shared {
                Some(g) => g,
                None => self.group(),
            };
            let regs = self.mem(0x80_0000);
            let mut f = self
                .endpoint(slot, 0, p as u8, (vendor, pf_dev, 0x020000))
                .subsystem(vendor, 0x0002)
                .revision(0x02)
                .driver(pf_driver)
                .group(group)
                .bar(0, BarKind::Mem64Prefetch, regs, 0x80_0000)
                .pm()
                .msi()
                .msix(129)
                .pcie(PcieType::Endpoint)
                .flr()
                .link(3, 8)
                .sriov(total, vf_dev);
            if acs {
                f = f.acs(0x001f, 0x0000);
            }
            pf_addrs.push(f.address().to_string());
            self.add(slot.rc, f);
        }
        self.first_nic.get_or_insert(pf_addrs[0].clone());
        for (p, pf) in pf_addrs.iter().enumerate() {
            for v in 0..vfs {
                let rid = pfs + p * vfs + v;
                let group = match shared {
                    Some(g) => g,
                    None => self.group(),
                };
                let driver = if self.rng.chance(50) {
                    "vfio-pci"
                } else {
                    vf_driver
                };
                let regs = self.mem(0x10000);
                let f = self
                    .endpoint(
                        slot,
                        (rid >> 3) as u8,
                        (rid & 7) as u8,
                        (vendor, vf_dev, 0x020000),
                    )
                    .subsystem(vendor, 0x0000)
                    .revision(0x02)
                    .driver(driver)
                    .group(group)
                    .bar(0, BarKind::Mem64Prefetch, regs, 0x10000)
                    .msix(3)
                    .pcie(PcieType::Endpoint)
                    .flr()
                    .link(3, 8)
                    .virtfn_of(pf);
                self.add(slot.rc, f);
            }
        }
    }

    /// Whatever is left (at most one function per port could not be placed, or the ports ran
    /// out): root-complex integrated system peripherals on the root buses, eight per device.
    fn fill_root_buses(&mut self) {
        for rc in 0..self.complexes.len() {
            while self.left > 0 && !self.complexes[rc].free_devs.is_empty() {
                let dev = self.complexes[rc].free_devs.pop().unwrap_or_default();
                let root_bus = self.complexes[rc].root_bus;
                for func in 0..8 {
                    if self.left == 0 {
                        break;
                    }
                    let addr = self.complexes[rc].addr(root_bus, dev, func);
                    let group = self.group();
                    self.add(
                        rc,
                        PciFn::new(&addr, 0x8086, 0x2034 + u16::from(func), 0x088000)
                            .revision(0x04)
                            .group(group)
                            .pcie(PcieType::RcIntegratedEndpoint),
                    );
                }
            }
        }
    }

    /// Network, disks, USB and aliases around the functions.
    fn finish(mut self) -> Host {
        let mac = |rng: &mut Rng| {
            let b = rng.next().to_be_bytes();
            format!("3c:ec:ef:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
        };
        if let Some(nic) = self.first_nic.clone() {
            let mac = mac(&mut self.rng);
            self.host
                .net(NetIf::pci("eno1", &nic, &mac))
                .net(NetIf::bridge("vmbr0", &["eno1"]))
                .route_default("vmbr0", Ipv4Addr::new(10, 20, 0, 1))
                .route("vmbr0", Ipv4Addr::new(10, 20, 0, 0), 16, None);
        }
        let disk = match (&self.first_nvme, self.has_ahci) {
            (Some(nvme), _) => Some(Disk::nvme("nvme0n1", nvme)),
            (None, true) => Some(Disk::sata("sda", "0000:00:17.0", 0)),
            (None, false) => None,
        };
        if let Some(disk) = disk {
            let disk = disk.partitions(&[2014, 2_097_152, 1_951_426_000]);
            let (p2, p3) = (disk.partition_name(2), disk.partition_name(3));
            self.host
                .disk(disk)
                .mount(&format!("/dev/{p3}"), "/", "ext4")
                .mount(&format!("/dev/{p2}"), "/boot/efi", "vfat");
        }
        if self.has_xhci {
            self.host.usb(
                UsbDev::new("1-1", 0x046b, 0xff10)
                    .manufacturer("American Megatrends Inc.")
                    .product("Virtual Keyboard and Mouse")
                    .interfaces(&[(0x03, "usbhid"), (0x03, "usbhid")]),
            );
        }
        common_aliases(&mut self.host);
        for (pattern, module) in [
            ("pci:v00008086d00001572sv*sd*bc*sc*i*", "i40e"),
            ("pci:v00008086d0000154Csv*sd*bc*sc*i*", "iavf"),
            ("pci:v00008086d000010FBsv*sd*bc*sc*i*", "ixgbe"),
            ("pci:v00008086d000010EDsv*sd*bc*sc*i*", "ixgbevf"),
            ("pci:v000015B3d00001017sv*sd*bc*sc*i*", "mlx5_core"),
            ("pci:v000015B3d00001018sv*sd*bc*sc*i*", "mlx5_core"),
            ("pci:v00008086d00001533sv*sd*bc*sc*i*", "igb"),
            ("pci:v00008086d00001521sv*sd*bc*sc*i*", "igb"),
            ("pci:v00001A03d00002000sv*sd*bc03sc*i*", "ast"),
            ("pci:v00008086d0000A1A3sv*sd*bc*sc*i*", "i2c_i801"),
        ] {
            self.host.alias(pattern, module);
        }
        self.host
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Card {
    Gpu,
    Gpu3d,
    Nvme,
    Nic,
    SriovNic,
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;

    use super::*;
    use crate::pci::Bdf;
    use crate::tree::Node;

    fn bdfs(host: &Host) -> Vec<Bdf> {
        host.pci_functions()
            .iter()
            .map(|f| Bdf::parse(&f.addr).unwrap())
            .collect()
    }

    #[test]
    fn exactly_the_functions_asked_for() {
        for n in [
            1, 2, 3, 5, 6, 9, 10, 14, 15, 64, 100, 101, 999, 1000, 2001, 10_000, 20_001,
        ] {
            let host = large_host(n, 42).unwrap();
            assert_eq!(host.pci_functions().len(), n, "{n}");
        }
        assert_eq!(
            large_host(MAX_FUNCTIONS, 1).unwrap().pci_functions().len(),
            MAX_FUNCTIONS
        );
        for bad in [0, MAX_FUNCTIONS + 1] {
            let err = large_host(bad, 1).unwrap_err().to_string();
            assert!(err.contains(&bad.to_string()), "{err}");
        }
    }

    #[test]
    fn same_seed_same_host_other_seed_other_host() {
        let a = format!("{:?}", large_host(1000, 7).unwrap());
        let b = format!("{:?}", large_host(1000, 7).unwrap());
        let c = format!("{:?}", large_host(1000, 8).unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn several_domains_and_sockets() {
        for (n, domains) in [(14, 1), (1000, 2), (10_000, 4), (30_000, 8)] {
            let host = large_host(n, 3).unwrap();
            let found: BTreeSet<u32> = bdfs(&host).iter().map(|b| b.domain).collect();
            assert_eq!(found.len(), domains, "{n}");
            let nodes: BTreeSet<i32> = host.pci_functions().iter().map(|f| f.numa_node).collect();
            assert_eq!(nodes.len(), domains, "{n}");
        }
        // Four root complexes per socket on a large host, each a host bridge on its own root bus.
        let host = large_host(1000, 3).unwrap();
        let roots: BTreeSet<(u32, u8)> = host
            .pci_functions()
            .iter()
            .zip(bdfs(&host))
            .filter(|(f, _)| f.parent.is_none() && f.class == 0x060000)
            .map(|(_, b)| (b.domain, b.bus))
            .collect();
        assert_eq!(roots.len(), 8, "{roots:?}");
    }

    #[test]
    fn gpus_nvme_nics_switches_and_the_chipset() {
        let host = large_host(1000, 5).unwrap();
        let count =
            |pred: &dyn Fn(&PciFn) -> bool| host.pci_functions().iter().filter(|f| pred(f)).count();
        assert!(
            count(&|f| f.class == 0x030000 && f.vendor != 0x1a03) > 0,
            "GPUs"
        );
        assert!(count(&|f| f.class == 0x040300) > 0, "GPU audio");
        assert!(count(&|f| f.class == 0x010802) > 0, "NVMe");
        assert!(count(&|f| f.pcie_type() == Some(PcieType::SwitchUpstream)) > 0);
        assert!(count(&|f| f.pcie_type() == Some(PcieType::SwitchDownstream)) > 0);
        assert!(count(&|f| f.physfn.is_some()) > 500, "mostly VFs");
        assert_eq!(count(&|f| f.boot_vga == Some(true)), 1, "the BMC's VGA");
        for class in [0x060100, 0x0c0500, 0x0c8000, 0x0c0330, 0x010601] {
            assert_eq!(count(&|f| f.class == class), 1, "{class:06x}");
        }
        // The small host still has the chipset, the BMC and a few cards.
        let small = large_host(14, 5).unwrap();
        assert!(
            small
                .pci_functions()
                .iter()
                .any(|f| f.boot_vga == Some(true))
        );
        assert!(
            small
                .pci_functions()
                .iter()
                .any(|f| f.pcie_type() == Some(PcieType::RootPort))
        );
    }

    fn file(t: &BTreeMap<PathBuf, Node>, path: &PathBuf) -> Vec<u8> {
        match t.get(path) {
            Some(Node::File(b)) => b.clone(),
            other => panic!("{}: {other:?}", path.display()),
        }
    }

    #[test]
    fn virtual_functions_link_to_their_physical_function() {
        let host = large_host(1000, 11).unwrap();
        let tree = host.tree().unwrap();
        let nodes = tree.nodes();
        let dev_dir = |addr: &str| {
            let link = PathBuf::from("sys/bus/pci/devices").join(addr);
            match nodes.get(&link) {
                Some(Node::Link(target)) => {
                    crate::tree::resolve_lexically(&link, target).unwrap_or_default()
                }
                other => panic!("{addr}: {other:?}"),
            }
        };
        let mut vfs_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for f in host.pci_functions() {
            if let Some(pf) = &f.physfn {
                vfs_of.entry(pf).or_default().push(&f.addr);
            }
        }
        assert!(vfs_of.len() >= 4, "{}", vfs_of.len());
        for (pf, vfs) in &vfs_of {
            let pf_dir = dev_dir(pf);
            let numvfs = file(nodes, &pf_dir.join("sriov_numvfs"));
            assert_eq!(numvfs, format!("{}\n", vfs.len()).into_bytes(), "{pf}");
            for (n, vf) in vfs.iter().enumerate() {
                let vf_dir = dev_dir(vf);
                let physfn = vf_dir.join("physfn");
                match nodes.get(&physfn) {
                    Some(Node::Link(t)) => assert_eq!(
                        crate::tree::resolve_lexically(&physfn, t).as_ref(),
                        Some(&pf_dir)
                    ),
                    other => panic!("{vf}: {other:?}"),
                }
                let virtfn = pf_dir.join(format!("virtfn{n}"));
                match nodes.get(&virtfn) {
                    Some(Node::Link(t)) => assert_eq!(
                        crate::tree::resolve_lexically(&virtfn, t).as_ref(),
                        Some(&vf_dir)
                    ),
                    other => panic!("{pf} virtfn{n}: {other:?}"),
                }
            }
            // The SR-IOV capability says the same: NumVFs, and the first VF's routing id.
            let config = file(nodes, &pf_dir.join("config"));
            let at = [0x100usize, 0x110]
                .into_iter()
                .find(|&o| config[o..o + 2] == [0x10, 0x00])
                .unwrap_or_else(|| panic!("{pf}: no SR-IOV capability"));
            let u16_at = |o: usize| u16::from_le_bytes([config[o], config[o + 1]]);
            assert_eq!(usize::from(u16_at(at + 0x10)), vfs.len());
            let rid = |a: &str| {
                let b = Bdf::parse(a).unwrap();
                (u16::from(b.bus) << 8) | (u16::from(b.dev) << 3) | u16::from(b.func)
            };
            assert_eq!(rid(pf) + u16_at(at + 0x14), rid(vfs[0]), "{pf}");
        }
    }

    #[test]
    fn acs_present_and_missing_groups_follow() {
        let host = large_host(1000, 13).unwrap();
        let ports: Vec<&PciFn> = host
            .pci_functions()
            .iter()
            .filter(|f| {
                matches!(
                    f.pcie_type(),
                    Some(PcieType::RootPort | PcieType::SwitchDownstream)
                ) && f.secondary_bus.is_some()
            })
            .collect();
        let has_acs = |f: &PciFn| {
            let c = f.config_with(false, (0, 0, 0), Default::default()).unwrap();
            c.len() == 4096 && c[0x100] == 0x0d
        };
        let (with, without): (Vec<&PciFn>, Vec<&PciFn>) = ports.iter().partition(|f| has_acs(f));
        assert!(!with.is_empty() && !without.is_empty());
        // Below a port without ACS everything shares the port's group.
        for port in &without {
            for f in host
                .pci_functions()
                .iter()
                .filter(|f| f.parent.as_deref() == Some(&port.addr))
            {
                assert_eq!(f.group, port.group, "{} below {}", f.addr, port.addr);
            }
        }
        // Below a root port with ACS, a single-function card has a group of its own.
        for port in with
            .iter()
            .filter(|f| f.pcie_type() == Some(PcieType::RootPort))
        {
            let below: Vec<&PciFn> = host
                .pci_functions()
                .iter()
                .filter(|f| f.parent.as_deref() == Some(&port.addr))
                .collect();
            if let [only] = below.as_slice() {
                assert_ne!(only.group, port.group, "{}", only.addr);
            }
        }
    }

    #[test]
    fn group_numbers_are_sparse() {
        let host = large_host(1000, 17).unwrap();
        let groups: BTreeSet<u32> = host
            .pci_functions()
            .iter()
            .filter_map(|f| f.group)
            .collect();
        let max = *groups.last().unwrap();
        assert!(groups.len() > 100);
        assert!(
            (max as usize) + 1 > groups.len() + 20,
            "{max} {}",
            groups.len()
        );
    }
}
