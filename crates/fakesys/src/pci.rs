//! PCI functions: sysfs attributes, binary config space with capabilities, `resource`.

use std::fmt;
use std::io;

/// A PCI address split into its parts, parsed from `DDDD:BB:DD.F` (the domain may have 5 digits,
/// as Intel VMD domains do: `10000:e0:1d.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Bdf {
    pub(crate) domain: u32,
    pub(crate) bus: u8,
    pub(crate) dev: u8,
    pub(crate) func: u8,
}

impl Bdf {
    /// Parses a full address; anything else is an `InvalidInput` error naming the input.
    pub(crate) fn parse(s: &str) -> io::Result<Bdf> {
        let bad = || invalid(format!("invalid PCI address {s:?}, expected DDDD:BB:DD.F"));
        let (domain, rest) = s.split_once(':').ok_or_else(bad)?;
        let (bus, rest) = rest.split_once(':').ok_or_else(bad)?;
        let (dev, func) = rest.split_once('.').ok_or_else(bad)?;
        let hex = |t: &str, len: std::ops::RangeInclusive<usize>| {
            if len.contains(&t.len()) && t.bytes().all(|b| b.is_ascii_hexdigit()) {
                u32::from_str_radix(t, 16).map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        let (domain, bus, dev, func) = (
            hex(domain, 4..=5)?,
            hex(bus, 2..=2)?,
            hex(dev, 2..=2)?,
            hex(func, 1..=1)?,
        );
        if dev > 0x1f || func > 7 {
            return Err(bad());
        }
        Ok(Bdf {
            domain,
            bus: bus as u8,
            dev: dev as u8,
            func: func as u8,
        })
    }

    /// The host bridge directory name for this address's domain and a bus: `pci0000:00`.
    pub(crate) fn host_bridge(&self) -> String {
        format!("pci{:04x}:{:02x}", self.domain, self.bus)
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.dev, self.func
        )
    }
}

/// An `InvalidInput` error with a message.
pub(crate) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The device/port type field of the PCI Express capability (bits 7:4 of its capability register).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcieType {
    /// PCI Express endpoint (0).
    Endpoint,
    /// Legacy PCI Express endpoint (1).
    LegacyEndpoint,
    /// Root port of a root complex (4).
    RootPort,
    /// Upstream port of a switch (5).
    SwitchUpstream,
    /// Downstream port of a switch (6).
    SwitchDownstream,
    /// PCI Express to PCI bridge (7).
    PcieToPciBridge,
    /// Root complex integrated endpoint (9), e.g. Intel integrated graphics.
    RcIntegratedEndpoint,
    /// Root complex event collector (10).
    RcEventCollector,
}

impl PcieType {
    /// The value of the 4-bit type field.
    pub fn code(self) -> u8 {
        match self {
            PcieType::Endpoint => 0,
            PcieType::LegacyEndpoint => 1,
            PcieType::RootPort => 4,
            PcieType::SwitchUpstream => 5,
            PcieType::SwitchDownstream => 6,
            PcieType::PcieToPciBridge => 7,
            PcieType::RcIntegratedEndpoint => 9,
            PcieType::RcEventCollector => 10,
        }
    }

    fn is_port(self) -> bool {
        matches!(
            self,
            PcieType::RootPort | PcieType::SwitchUpstream | PcieType::SwitchDownstream
        )
    }
}

/// What a base address register decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    /// I/O ports.
    Io,
    /// 32-bit memory, not prefetchable.
    Mem32,
    /// 32-bit prefetchable memory.
    Mem32Prefetch,
    /// 64-bit memory, not prefetchable; takes this BAR and the next.
    Mem64,
    /// 64-bit prefetchable memory; takes this BAR and the next.
    Mem64Prefetch,
}

impl BarKind {
    /// The kernel's `IORESOURCE_*` flags as `resource` shows them.
    fn resource_flags(self) -> u64 {
        match self {
            BarKind::Io => 0x0004_0101,
            BarKind::Mem32 => 0x0004_0200,
            BarKind::Mem32Prefetch => 0x0004_2208,
            BarKind::Mem64 => 0x0014_0204,
            BarKind::Mem64Prefetch => 0x0014_220c,
        }
    }

    /// The low bits of the BAR in config space.
    fn config_bits(self) -> u32 {
        match self {
            BarKind::Io => 0x1,
            BarKind::Mem32 => 0x0,
            BarKind::Mem32Prefetch => 0x8,
            BarKind::Mem64 => 0x4,
            BarKind::Mem64Prefetch => 0xc,
        }
    }

    fn is_64(self) -> bool {
        matches!(self, BarKind::Mem64 | BarKind::Mem64Prefetch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bar {
    index: u8,
    kind: BarKind,
    start: u64,
    size: u64,
}

/// The SR-IOV capability of a physical function: what it could have and what is enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sriov {
    total_vfs: u16,
    vf_device: u16,
}

/// What the host computes for a physical function from its virtual functions: how many there
/// are, and the routing-id offset of the first and the stride between them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct VfLayout {
    pub(crate) num_vfs: u16,
    pub(crate) offset: u16,
    pub(crate) stride: u16,
}

/// A capability in the standard (0x40..0xff) list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cap {
    /// Power management (0x01).
    Pm,
    /// MSI (0x05), 64-bit addresses.
    Msi,
    /// MSI-X (0x11) with this many table entries.
    MsiX(u16),
    /// PCI Express (0x10).
    Pcie(PcieType),
    /// Advanced features (0x13).
    Af,
    /// Vendor specific (0x09) with this length.
    Vendor(u8),
    /// Bridge subsystem vendor id (0x0d).
    Ssvid,
}

impl Cap {
    fn id(self) -> u8 {
        match self {
            Cap::Pm => 0x01,
            Cap::Msi => 0x05,
            Cap::MsiX(_) => 0x11,
            Cap::Pcie(_) => 0x10,
            Cap::Af => 0x13,
            Cap::Vendor(_) => 0x09,
            Cap::Ssvid => 0x0d,
        }
    }

    fn len(self) -> usize {
        match self {
            Cap::Pm => 8,
            Cap::Msi => 0x0e,
            Cap::MsiX(_) => 12,
            Cap::Pcie(_) => 0x3c,
            Cap::Af => 6,
            Cap::Vendor(len) => usize::from(len.max(3)),
            Cap::Ssvid => 8,
        }
    }
}

/// One PCI function to put on the host: ids, class, driver, IOMMU group, capabilities.
///
/// ```
/// use vfiokit_fakesys::{PciFn, PcieType};
/// let igpu = PciFn::new("0000:00:02.0", 0x8086, 0x3e92, 0x030000)
///     .subsystem(0x103c, 0x83e2)
///     .driver("i915")
///     .group(0)
///     .boot_vga(true)
///     .pcie(PcieType::RcIntegratedEndpoint)
///     .flr()
///     .msi()
///     .pm();
/// assert_eq!(igpu.address(), "0000:00:02.0");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciFn {
    pub(crate) addr: String,
    pub(crate) vendor: u16,
    pub(crate) device: u16,
    pub(crate) class: u32,
    pub(crate) subsystem: (u16, u16),
    pub(crate) revision: u8,
    pub(crate) driver: Option<String>,
    pub(crate) group: Option<u32>,
    pub(crate) boot_vga: Option<bool>,
    pub(crate) parent: Option<String>,
    pub(crate) secondary_bus: Option<u8>,
    pub(crate) irq: u32,
    pub(crate) vfio_dev: bool,
    pub(crate) xhci: Option<(u8, u8)>,
    pub(crate) physfn: Option<String>,
    pub(crate) numa_node: i32,
    sriov: Option<Sriov>,
    bars: Vec<Bar>,
    caps: Vec<Cap>,
    offsets: Vec<u8>,
    flr: bool,
    af_flr: bool,
    no_soft_reset: bool,
    pme_d3cold: bool,
    acs: Option<(u16, u16)>,
    link: (u8, u8),
    pub(crate) reset_override: Option<Vec<String>>,
    pub(crate) subordinate: Option<u8>,
    pub(crate) label: Option<String>,
    pub(crate) mdev_types: Vec<crate::MdevType>,
}

impl PciFn {
    /// A function at `addr` (`DDDD:BB:DD.F`) with vendor, device and the 24-bit class code
    /// (`0x030000`). Without more calls it is an unbound conventional PCI endpoint on the root bus.
    pub fn new(addr: &str, vendor: u16, device: u16, class: u32) -> PciFn {
        PciFn {
            addr: addr.to_string(),
            vendor,
            device,
            class,
            subsystem: (0, 0),
            revision: 0,
            driver: None,
            group: None,
            boot_vga: None,
            parent: None,
            secondary_bus: None,
            irq: 0,
            vfio_dev: false,
            xhci: None,
            physfn: None,
            numa_node: -1,
            sriov: None,
            bars: Vec::new(),
            caps: Vec::new(),
            offsets: Vec::new(),
            flr: false,
            af_flr: false,
            no_soft_reset: false,
            pme_d3cold: false,
            acs: None,
            link: (3, 4),
            reset_override: None,
            subordinate: None,
            label: None,
            mdev_types: Vec::new(),
        }
    }

    /// The address as given to [`PciFn::new`].
    pub fn address(&self) -> &str {
        &self.addr
    }

    /// Subsystem vendor and device (`subsystem_vendor`, `subsystem_device`).
    pub fn subsystem(mut self, vendor: u16, device: u16) -> PciFn {
        self.subsystem = (vendor, device);
        self
    }

    /// Revision id (`revision`, config byte 0x08).
    pub fn revision(mut self, rev: u8) -> PciFn {
        self.revision = rev;
        self
    }

    /// The driver bound to the function: a `driver` link and a `sys/bus/pci/drivers/<name>` entry.
    pub fn driver(mut self, name: &str) -> PciFn {
        self.driver = Some(name.to_string());
        self
    }

    /// The IOMMU group number (ignored on a host with [`crate::Iommu::None`]).
    pub fn group(mut self, group: u32) -> PciFn {
        self.group = Some(group);
        self
    }

    /// The `boot_vga` attribute (only written for VGA class `0300xx` functions).
    pub fn boot_vga(mut self, boot: bool) -> PciFn {
        self.boot_vga = Some(boot);
        self
    }

    /// The bridge this function sits behind (its directory nests inside the bridge's). A parent in
    /// another PCI domain is a domain host bridge such as Intel VMD: the child's directory is
    /// `<parent>/pci<domain>:<bus>/<addr>`.
    pub fn parent(mut self, bridge: &str) -> PciFn {
        self.parent = Some(bridge.to_string());
        self
    }

    /// Makes this a PCI-to-PCI bridge (header type 1) whose secondary bus is `secondary`.
    /// The subordinate bus is computed from the functions behind it.
    pub fn bridge(mut self, secondary: u8) -> PciFn {
        self.secondary_bus = Some(secondary);
        self
    }

    /// The legacy interrupt (`irq`, config bytes 0x3c/0x3d with pin INTA).
    pub fn irq(mut self, irq: u32) -> PciFn {
        self.irq = irq;
        self
    }

    /// A base address register: `index` 0..=5, what it decodes, where and how large.
    pub fn bar(mut self, index: u8, kind: BarKind, start: u64, size: u64) -> PciFn {
        self.bars.push(Bar {
            index,
            kind,
            start,
            size,
        });
        self
    }

    /// A power management capability (PMCSR No_Soft_Reset clear; see [`PciFn::no_soft_reset`]).
    pub fn pm(mut self) -> PciFn {
        self.caps.push(Cap::Pm);
        self
    }

    /// Sets PMCSR bit 3 (No_Soft_Reset): a D3hot→D0 transition does not reset the function.
    pub fn no_soft_reset(mut self) -> PciFn {
        self.no_soft_reset = true;
        self
    }

    /// Marks PME# as supported from D3hot and D3cold in the PM capability.
    pub fn pme_d3cold(mut self) -> PciFn {
        self.pme_d3cold = true;
        self
    }

    /// A 64-bit MSI capability.
    pub fn msi(mut self) -> PciFn {
        self.caps.push(Cap::Msi);
        self
    }

    /// An MSI-X capability with `vectors` table entries (table in BAR 0).
    pub fn msix(mut self, vectors: u16) -> PciFn {
        self.caps.push(Cap::MsiX(vectors));
        self
    }

    /// A PCI Express capability (version 2) of this device/port type; the config space becomes
    /// 4096 bytes with an extended capability list.
    pub fn pcie(mut self, kind: PcieType) -> PciFn {
        self.caps.push(Cap::Pcie(kind));
        self
    }

    /// Function level reset in the PCI Express Device Capabilities (bit 28).
    pub fn flr(mut self) -> PciFn {
        self.flr = true;
        self
    }

    /// An Advanced Features capability (conventional PCI FLR); `flr` sets its FLR bit.
    pub fn af(mut self, flr: bool) -> PciFn {
        self.caps.push(Cap::Af);
        self.af_flr = flr;
        self
    }

    /// A vendor-specific capability of `len` bytes.
    pub fn vendor_cap(mut self, len: u8) -> PciFn {
        self.caps.push(Cap::Vendor(len));
        self
    }

    /// An ACS extended capability at 0x100 with the capability and control registers.
    pub fn acs(mut self, cap: u16, ctrl: u16) -> PciFn {
        self.acs = Some((cap, ctrl));
        self
    }

    /// PCI Express link speed code (1 = 2.5GT/s … 4 = 16GT/s) and width in lanes (default 8GT/s x4).
    pub fn link(mut self, speed: u8, width: u8) -> PciFn {
        self.link = (speed, width);
        self
    }

    /// Config-space offsets of the capabilities, in the order they were added (by default they
    /// are packed from 0x40). Offsets must be 4-byte aligned, inside 0x40..0x100, not overlapping.
    pub fn cap_offsets(mut self, offsets: &[u8]) -> PciFn {
        self.offsets = offsets.to_vec();
        self
    }

    /// Adds a `vfio-dev/vfio0` directory, as vfio variant drivers (and vfio-pci with the vfio
    /// device cdev) create.
    pub fn vfio_dev(mut self, present: bool) -> PciFn {
        self.vfio_dev = present;
        self
    }

    /// Makes this function an xHCI controller with two root hubs: a USB 2.0 one with
    /// `usb2_ports` ports (480 Mb/s) and a USB 3 one with `usb3_ports` ports (10000 Mb/s).
    /// Buses are numbered in address order of the controllers, two per controller.
    pub fn xhci(mut self, usb2_ports: u8, usb3_ports: u8) -> PciFn {
        self.xhci = Some((usb2_ports, usb3_ports));
        self
    }

    /// Makes this a physical function with an SR-IOV extended capability: `total_vfs` virtual
    /// functions possible, each with device id `vf_device`. The functions added with
    /// [`PciFn::virtfn_of`] this one are its enabled VFs (`sriov_numvfs`, `virtfnN` links).
    pub fn sriov(mut self, total_vfs: u16, vf_device: u16) -> PciFn {
        self.sriov = Some(Sriov {
            total_vfs,
            vf_device,
        });
        self
    }

    /// Makes this an SR-IOV virtual function of the physical function at `pf` (a `physfn` link
    /// here, a `virtfnN` link there, N in the order the VFs were added).
    pub fn virtfn_of(mut self, pf: &str) -> PciFn {
        self.physfn = Some(pf.to_string());
        self
    }

    /// The NUMA node the function is attached to (`numa_node`; default -1, none).
    pub fn numa_node(mut self, node: i32) -> PciFn {
        self.numa_node = node;
        self
    }

    /// The reset methods exactly as the kernel's `reset_method` lists them (`["flr", "bus"]`),
    /// instead of what config space and topology allow. An empty list means the kernel found no
    /// method: neither `reset` nor `reset_method` is written, as the kernel hides both.
    pub fn reset_method(mut self, methods: &[&str]) -> PciFn {
        self.reset_override = Some(methods.iter().map(|m| m.to_string()).collect());
        self
    }

    /// For a bridge: the subordinate bus number when the firmware reserved more buses than
    /// the functions behind it use (a hotplug or USB4 tunnel port: `-[05-64]--`).
    pub fn subordinate_bus(mut self, subordinate: u8) -> PciFn {
        self.subordinate = Some(subordinate);
        self
    }

    /// The firmware's name for the device (`label`; lspci prints it as `DeviceName:`).
    pub fn label(mut self, label: &str) -> PciFn {
        self.label = Some(label.to_string());
        self
    }

    /// A mediated device type this function offers (`mdev_supported_types/<id>/`), with its
    /// instances.
    pub fn mdev_type(mut self, mdev: crate::MdevType) -> PciFn {
        self.mdev_types.push(mdev);
        self
    }

    pub(crate) fn sriov_total(&self) -> Option<(u16, u16)> {
        self.sriov.map(|s| (s.total_vfs, s.vf_device))
    }

    pub(crate) fn pcie_type(&self) -> Option<PcieType> {
        self.caps.iter().find_map(|c| match c {
            Cap::Pcie(t) => Some(*t),
            _ => None,
        })
    }

    pub(crate) fn is_bridge(&self) -> bool {
        self.secondary_bus.is_some()
    }

    /// The `modalias` attribute: `pci:v00008086d00003E92sv0000103Csd000083E2bc03sc00i00`.
    pub fn modalias(&self) -> String {
        format!(
            "pci:v{:08X}d{:08X}sv{:08X}sd{:08X}bc{:02X}sc{:02X}i{:02X}",
            self.vendor,
            self.device,
            self.subsystem.0,
            self.subsystem.1,
            (self.class >> 16) & 0xff,
            (self.class >> 8) & 0xff,
            self.class & 0xff
        )
    }

    /// The kernel's reset methods for this function, in the kernel's order (`reset_method`).
    pub(crate) fn reset_methods(&self, alone_behind_bridge: bool) -> Vec<&'static str> {
        let mut methods = Vec::new();
        if self.flr && self.pcie_type().is_some() {
            methods.push("flr");
        }
        if self.af_flr && self.caps.contains(&Cap::Af) {
            methods.push("af_flr");
        }
        if self.caps.contains(&Cap::Pm) && !self.no_soft_reset {
            methods.push("pm");
        }
        if alone_behind_bridge {
            methods.push("bus");
        }
        methods
    }

    /// The `resource` attribute: one `start end flags` line per resource, 13 lines for an
    /// endpoint, 17 for a bridge (its four windows last), zeros for unused ones.
    pub(crate) fn resource(&self) -> String {
        let lines = if self.is_bridge() { 17 } else { 13 };
        let mut out = String::new();
        for i in 0..lines {
            let (start, end, flags) = match self.bars.iter().find(|b| usize::from(b.index) == i) {
                Some(b) => (
                    b.start,
                    b.start + b.size.saturating_sub(1),
                    b.kind.resource_flags(),
                ),
                None => (0, 0, 0),
            };
            out.push_str(&format!("0x{start:016x} 0x{end:016x} 0x{flags:016x}\n"));
        }
        out
    }

    /// The binary `config` file. `multifunction` sets bit 7 of the header type and
    /// `bus_numbers` gives (primary, secondary, subordinate) for a bridge.
    #[cfg(test)]
    pub(crate) fn config(
        &self,
        multifunction: bool,
        bus_numbers: (u8, u8, u8),
    ) -> io::Result<Vec<u8>> {
        self.config_with(multifunction, bus_numbers, VfLayout::default())
    }

    /// [`PciFn::config`] for a function whose virtual functions are laid out as `vfs`.
    pub(crate) fn config_with(
        &self,
        multifunction: bool,
        bus_numbers: (u8, u8, u8),
        vfs: VfLayout,
    ) -> io::Result<Vec<u8>> {
        let pcie = self.pcie_type();
        let size = if pcie.is_some() || self.acs.is_some() || self.sriov.is_some() {
            4096
        } else {
            256
        };
        let mut c = vec![0u8; size];
        put16(&mut c, 0x00, self.vendor);
        put16(&mut c, 0x02, self.device);
        let mut command = 0u16;
        if self.bars.iter().any(|b| b.kind == BarKind::Io) {
            command |= 0x1;
        }
        if self.bars.iter().any(|b| b.kind != BarKind::Io) || self.is_bridge() {
            command |= 0x2;
        }
        if self.driver.is_some() || self.is_bridge() {
            command |= 0x4;
        }
        put16(&mut c, 0x04, command);
        let mut caps = self.caps.clone();
        if self.is_bridge() && self.subsystem != (0, 0) {
            caps.push(Cap::Ssvid);
        }
        if !caps.is_empty() {
            put16(&mut c, 0x06, 0x0010);
        }
        c[0x08] = self.revision;
        c[0x09] = (self.class & 0xff) as u8;
        c[0x0a] = ((self.class >> 8) & 0xff) as u8;
        c[0x0b] = ((self.class >> 16) & 0xff) as u8;
        c[0x0e] = u8::from(self.is_bridge()) | if multifunction { 0x80 } else { 0 };
        let max_bar = if self.is_bridge() { 2 } else { 6 };
        for bar in &self.bars {
            let i = usize::from(bar.index);
            if i >= max_bar || (bar.kind.is_64() && i + 1 >= max_bar) {
                return Err(invalid(format!(
                    "{}: BAR {i} does not fit the header",
                    self.addr
                )));
            }
            let reg = 0x10 + 4 * i;
            let low = (bar.start as u32 & !0xf) | bar.kind.config_bits();
            put32(&mut c, reg, low);
            if bar.kind.is_64() {
                put32(&mut c, reg + 4, (bar.start >> 32) as u32);
            }
        }
        if self.is_bridge() {
            c[0x18] = bus_numbers.0;
            c[0x19] = bus_numbers.1;
            c[0x1a] = bus_numbers.2;
            // Empty windows: base above limit, as the kernel leaves unused ones.
            c[0x1c] = 0xf0;
            c[0x1d] = 0x00;
            put16(&mut c, 0x20, 0xfff0);
            put16(&mut c, 0x22, 0x0000);
            put16(&mut c, 0x24, 0xfff1);
            put16(&mut c, 0x26, 0x0001);
        } else {
            put16(&mut c, 0x2c, self.subsystem.0);
            put16(&mut c, 0x2e, self.subsystem.1);
        }
        if self.irq != 0 {
            c[0x3c] = (self.irq & 0xff) as u8;
            c[0x3d] = 1;
        }
        let offsets = self.layout(&caps)?;
        if let Some(first) = offsets.first() {
            c[0x34] = *first;
        }
        for (i, (cap, off)) in caps.iter().zip(&offsets).enumerate() {
            let o = usize::from(*off);
            c[o] = cap.id();
            c[o + 1] = offsets.get(i + 1).copied().unwrap_or(0);
            self.cap_body(*cap, &mut c[o..o + cap.len()]);
        }
        // Extended capabilities from 0x100: ACS (8 bytes, in a 0x10 slot), then SR-IOV (0x40).
        let acs_at = 0x100;
        let sriov_at = if self.acs.is_some() { 0x110 } else { 0x100 };
        if let Some((cap, ctrl)) = self.acs {
            // Extended header: id 0x000d, version 1, next (SR-IOV or none).
            let next = if self.sriov.is_some() { sriov_at } else { 0 };
            put32(&mut c, acs_at, 0x000d | (1 << 16) | ((next as u32) << 20));
            put16(&mut c, acs_at + 4, cap);
            put16(&mut c, acs_at + 6, ctrl);
        }
        if let Some(sriov) = self.sriov {
            let b = &mut c[sriov_at..sriov_at + 0x40];
            put32(b, 0x00, 0x0010 | (1 << 16));
            // Control: VF Enable and VF Memory Space Enable once VFs exist, ARI hierarchy.
            let ctrl = if vfs.num_vfs > 0 { 0x0019 } else { 0x0010 };
            put16(b, 0x08, ctrl);
            put16(b, 0x0c, sriov.total_vfs);
            put16(b, 0x0e, sriov.total_vfs);
            put16(b, 0x10, vfs.num_vfs);
            b[0x12] = self.addr_func();
            put16(b, 0x14, vfs.offset);
            put16(b, 0x16, vfs.stride);
            put16(b, 0x1a, sriov.vf_device);
            put32(b, 0x1c, 0x0000_0553); // 4K, 8K, 64K, 256K, 1M, 4M pages
            put32(b, 0x20, 0x0000_0001); // system page size 4K
        }
        Ok(c)
    }

    /// Offsets of `caps` in the standard capability area, explicit or packed from 0x40.
    fn layout(&self, caps: &[Cap]) -> io::Result<Vec<u8>> {
        let mut offsets = Vec::with_capacity(caps.len());
        let mut next = 0x40usize;
        let mut used = [false; 256];
        for (i, cap) in caps.iter().enumerate() {
            let off = match self.offsets.get(i) {
                Some(o) => usize::from(*o),
                None => next,
            };
            let end = off + cap.len();
            if off < 0x40 || off % 4 != 0 || end > 0x100 || used[off..end].iter().any(|u| *u) {
                return Err(invalid(format!(
                    "{}: capability {:#04x} at {off:#x} overlaps, is misaligned or leaves 0x40..0x100",
                    self.addr,
                    cap.id()
                )));
            }
            used[off..end].iter_mut().for_each(|u| *u = true);
            next = (end + 3) & !3;
            offsets.push(off as u8);
        }
        Ok(offsets)
    }

    /// Fills a capability's bytes after the id and next pointer.
    fn cap_body(&self, cap: Cap, b: &mut [u8]) {
        match cap {
            Cap::Pm => {
                // PMC: version 3 (bits 2:0), PME from D0/D3hot (and D3cold).
                let mut pmc: u16 = 0x0003 | (1 << 11) | (1 << 14);
                if self.pme_d3cold {
                    pmc |= 1 << 15;
                }
                put16(b, 2, pmc);
                put16(b, 4, if self.no_soft_reset { 0x0008 } else { 0 });
            }
            Cap::Msi => put16(b, 2, 0x0080),
            Cap::MsiX(vectors) => {
                put16(b, 2, vectors.saturating_sub(1) & 0x7ff);
                put32(b, 4, 0x2000);
                put32(b, 8, 0x3000);
            }
            Cap::Pcie(kind) => {
                put16(b, 2, 0x0002 | (u16::from(kind.code()) << 4));
                let mut devcap: u32 = 0x0000_8001; // 256-byte payload, role-based errors
                if self.flr {
                    devcap |= 1 << 28;
                }
                put32(b, 4, devcap);
                put16(b, 8, 0x2810); // relaxed ordering off, max payload 128, max read 512
                if kind != PcieType::RcIntegratedEndpoint {
                    let (speed, width) = self.link;
                    let port = if kind.is_port() {
                        u32::from(self.addr_dev())
                    } else {
                        0
                    };
                    put32(
                        b,
                        0x0c,
                        u32::from(speed & 0xf) | (u32::from(width & 0x3f) << 4) | (port << 24),
                    );
                    put16(
                        b,
                        0x12,
                        u16::from(speed & 0xf) | (u16::from(width & 0x3f) << 4),
                    );
                    put32(b, 0x2c, (1u32 << (speed.clamp(1, 6) + 1)) - 2);
                }
            }
            Cap::Af => {
                b[2] = 6;
                b[3] = if self.af_flr { 0x03 } else { 0x01 };
            }
            Cap::Vendor(len) => b[2] = len,
            Cap::Ssvid => {
                put16(b, 4, self.subsystem.0);
                put16(b, 6, self.subsystem.1);
            }
        }
    }

    fn addr_dev(&self) -> u8 {
        Bdf::parse(&self.addr).map(|b| b.dev).unwrap_or(0)
    }

    fn addr_func(&self) -> u8 {
        Bdf::parse(&self.addr).map(|b| b.func).unwrap_or(0)
    }
}

fn put16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(c: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([c[at], c[at + 1]])
    }

    #[test]
    fn addresses_parse_with_four_or_five_digit_domains() {
        let b = Bdf::parse("10000:e0:1d.0").unwrap();
        assert_eq!((b.domain, b.bus, b.dev, b.func), (0x10000, 0xe0, 0x1d, 0));
        assert_eq!(b.to_string(), "10000:e0:1d.0");
        assert_eq!(b.host_bridge(), "pci10000:e0");
        assert_eq!(
            Bdf::parse("0000:00:1f.6").unwrap().to_string(),
            "0000:00:1f.6"
        );
        for bad in [
            "00:02.0",
            "0000:00:20.0",
            "0000:00:02.8",
            "0000:0:02.0",
            "x",
        ] {
            let err = Bdf::parse(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn modalias_is_uppercase_with_eight_digit_ids() {
        let f = PciFn::new("0000:00:02.0", 0x8086, 0x3e92, 0x030000).subsystem(0x103c, 0x83e2);
        assert_eq!(
            f.modalias(),
            "pci:v00008086d00003E92sv0000103Csd000083E2bc03sc00i00"
        );
        let x = PciFn::new("0000:00:14.0", 0x8086, 0xa36d, 0x0c0330);
        assert_eq!(
            x.modalias(),
            "pci:v00008086d0000A36Dsv00000000sd00000000bc0Csc03i30"
        );
    }

    #[test]
    fn capability_chain_follows_the_requested_offsets() {
        let f = PciFn::new("0000:00:02.0", 0x8086, 0x3e92, 0x030000)
            .vendor_cap(0x0c)
            .pcie(PcieType::RcIntegratedEndpoint)
            .flr()
            .msi()
            .pm()
            .cap_offsets(&[0x40, 0x70, 0xac, 0xd0]);
        let c = f.config(false, (0, 0, 0)).unwrap();
        assert_eq!(c.len(), 4096);
        assert_eq!(u16_at(&c, 0x06) & 0x10, 0x10, "capabilities list bit");
        let mut chain = Vec::new();
        let mut at = usize::from(c[0x34]);
        while at != 0 {
            chain.push((at, c[at]));
            at = usize::from(c[at + 1]);
        }
        assert_eq!(
            chain,
            vec![(0x40, 0x09), (0x70, 0x10), (0xac, 0x05), (0xd0, 0x01)]
        );
        assert_eq!(u16_at(&c, 0x72), 0x0092, "version 2, RCiEP");
        assert_ne!(c[0x77] & 0x10, 0, "FLR bit 28 of DevCap");
        assert_eq!(&c[0x100..0x104], &[0, 0, 0, 0], "empty extended list");
    }

    #[test]
    fn packed_layout_and_overlaps() {
        let f = PciFn::new("0000:00:1f.6", 0x8086, 0x15bb, 0x020000)
            .pm()
            .msi()
            .af(true);
        let c = f.config(false, (0, 0, 0)).unwrap();
        assert_eq!(c.len(), 256);
        assert_eq!((c[0x34], c[0x40], c[0x41]), (0x40, 0x01, 0x48));
        assert_eq!((c[0x48], c[0x49]), (0x05, 0x58));
        assert_eq!((c[0x58], c[0x59], c[0x5a], c[0x5b]), (0x13, 0x00, 6, 0x03));
        let bad = f.cap_offsets(&[0x40, 0x44]);
        assert!(bad.config(false, (0, 0, 0)).is_err());
    }

    #[test]
    fn header_type_bars_and_bridge_bus_numbers() {
        let ep = PciFn::new("0000:00:1f.3", 0x8086, 0xa348, 0x040300)
            .bar(0, BarKind::Mem64, 0x40_0010_0000, 0x4000)
            .bar(4, BarKind::Io, 0x3000, 0x40);
        let c = ep.config(true, (0, 0, 0)).unwrap();
        assert_eq!(c[0x0e], 0x80);
        assert_eq!(&c[0x10..0x18], &[0x04, 0x00, 0x10, 0x00, 0x40, 0, 0, 0]);
        assert_eq!(&c[0x20..0x24], &[0x01, 0x30, 0, 0]);
        let res = ep.resource();
        assert_eq!(res.lines().count(), 13);
        assert_eq!(
            res.lines().next(),
            Some("0x0000004000100000 0x0000004000103fff 0x0000000000140204")
        );
        let port = PciFn::new("0000:00:1c.0", 0x8086, 0xa33c, 0x060400)
            .bridge(1)
            .pcie(PcieType::RootPort)
            .acs(0x5f, 0x1d);
        let c = port.config(false, (0, 1, 2)).unwrap();
        assert_eq!((c[0x0e], c[0x18], c[0x19], c[0x1a]), (0x01, 0, 1, 2));
        assert_eq!(&c[0x100..0x108], &[0x0d, 0, 0x01, 0, 0x5f, 0, 0x1d, 0]);
        assert_eq!(port.resource().lines().count(), 17);
    }
}
