//! What the host itself uses each PCI function for.
//!
//! A VM that takes a function takes it from the host. Some functions the host cannot lose without
//! losing itself: the NIC its management network runs over, the controller of its root disk, the
//! USB controller its keyboard hangs off, the chipset functions firmware and kernel rely on.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::Serialize;
use vfiokit_pci::{PciAddress, PciDevice, PciScan};
use vfiokit_sysfs::{Confinement, Error as SysError, SysRoot, join_lexically, parse_hex};
use vfiokit_usbredir::{UsbScan, controllers};

use crate::zpool::zpool_vdevs;

/// A role a PCI function plays for the host. The JSON names are part of the CLI contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostRole {
    /// The NIC behind the default route (directly, or as a port of a bridge or bond such as `vmbr0`).
    DefaultRouteNic,
    /// A NIC behind an interface the host has routes on but no default route (its address on an
    /// isolated LAN, a storage or cluster network), through bridges, bonds and VLANs alike.
    HostNetworkNic,
    /// The controller under the block device of `/`.
    RootDiskController,
    /// A USB controller with a keyboard, mouse or other HID device below it.
    UsbControllerWithInput,
    /// The host's only USB controller.
    OnlyUsbController,
    /// The display the firmware booted on (the host's console).
    BootVga,
    /// A chipset function the host needs, on a root bus: host bridge, LPC/eSPI (ISA) bridge,
    /// SMBus, SPI flash, RAM controller, thermal and other system peripherals.
    PlatformDevice,
}

impl HostRole {
    /// Whether losing a function with this role hurts the host (network, boot disk, input, chipset).
    /// Losing the boot display only costs the host its local console, which is what iGPU
    /// passthrough is for.
    pub fn is_critical(self) -> bool {
        !matches!(self, HostRole::BootVga)
    }

    /// What the host loses with a function of this role.
    pub fn loss(self) -> &'static str {
        match self {
            HostRole::DefaultRouteNic => "its network connection (and any remote session to it)",
            HostRole::HostNetworkNic => {
                "its connection to that network (and any remote session over it)"
            }
            HostRole::RootDiskController => "its root filesystem: the host stops working",
            HostRole::UsbControllerWithInput => "its keyboard and other USB input",
            HostRole::OnlyUsbController => "every USB device",
            HostRole::BootVga => "its local console",
            HostRole::PlatformDevice => "a chipset function its firmware and kernel rely on",
        }
    }

    /// The name used in JSON and messages (`default-route-nic`).
    pub fn name(self) -> &'static str {
        match self {
            HostRole::DefaultRouteNic => "default-route-nic",
            HostRole::HostNetworkNic => "host-network-nic",
            HostRole::RootDiskController => "root-disk-controller",
            HostRole::UsbControllerWithInput => "usb-controller-with-input",
            HostRole::OnlyUsbController => "only-usb-controller",
            HostRole::BootVga => "boot-vga",
            HostRole::PlatformDevice => "platform-device",
        }
    }
}

impl fmt::Display for HostRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A role and what on the host makes it so ("eno1, port of vmbr0, carries the default route").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Role {
    /// The role.
    pub role: HostRole,
    /// What the host would lose, in words.
    pub detail: String,
}

/// Roles of every function that has one.
pub type Roles = BTreeMap<PciAddress, Vec<Role>>;

/// Finds the roles of the scanned functions. Files that cannot be read become problems;
/// a root filesystem whose disks cannot be found makes every storage controller a
/// `root-disk-controller` (refusing too much is safer than losing the boot disk).
pub fn find_roles(
    root: &SysRoot,
    pci: &PciScan,
    usb: &UsbScan,
    problems: &mut Vec<SysError>,
) -> Roles {
    let mut roles = Roles::new();
    let mut add = |addr: PciAddress, role: HostRole, detail: String| {
        let list = roles.entry(addr).or_default();
        let role = Role { role, detail };
        if !list.contains(&role) {
            list.push(role);
        }
    };
    for dev in &pci.devices {
        if dev.boot_vga == Some(true) {
            add(
                dev.address,
                HostRole::BootVga,
                "the host's boot display and console".into(),
            );
        }
        if let Some(what) = platform_function(root, pci, dev) {
            add(
                dev.address,
                HostRole::PlatformDevice,
                format!("chipset {what}"),
            );
        }
    }
    for (addr, role, detail) in route_nics(root, pci, problems) {
        add(addr, role, detail);
    }
    for (addr, detail) in root_disk_controllers(root, pci, problems) {
        add(addr, HostRole::RootDiskController, detail);
    }
    for report in controllers(pci, usb) {
        if report.only {
            add(
                report.controller,
                HostRole::OnlyUsbController,
                "the host's only USB controller".into(),
            );
        }
        for d in report.inputs() {
            add(
                report.controller,
                HostRole::UsbControllerWithInput,
                format!("{} {} {} at USB {}", d.kind(), d.id, d.name(), d.port),
            );
        }
    }
    for list in roles.values_mut() {
        list.sort();
    }
    roles
}

/// Whether the function is a chipset function the host relies on, with a short name.
///
/// By where it sits and what the host does with it, not by class alone: only functions on a
/// root bus (no bridge above them) belong to the chipset — behind a bridge they are a card's
/// own (the USB-C UCSI function of an NVIDIA card is class 0c80 too). A host bridge that is
/// not the root complex (function 0 of device 0), has no driver and no BARs, and shares its
/// slot with no other host bridge is a placeholder (AMD's "Dummy Host Bridge" next to each GPP
/// bridge): Proxmox binds it to vfio-pci with the rest of its group and the host loses nothing.
/// AMD's data fabric (eight host-bridge functions in device 18h, driven by config access
/// from the kernel's `amd_nb` whatever their driver) stays a chipset function.
fn platform_function(root: &SysRoot, pci: &PciScan, dev: &PciDevice) -> Option<&'static str> {
    if dev.parent.is_some() {
        return None;
    }
    let a = dev.address;
    Some(match dev.class.base_sub() {
        0x0600 if a.device == 0 && a.function == 0 => "host bridge (root complex)",
        0x0600 if is_placeholder_host_bridge(root, pci, dev) => return None,
        0x0600 => "host bridge",
        0x0601 => "LPC/eSPI (ISA) bridge",
        0x0c05 => "SMBus controller",
        0x0c80 if is_intel_spi(dev) => "SPI flash controller",
        0x0c80 => "serial bus controller",
        0x0500 | 0x0580 => "memory controller",
        0x1180 => "signal processing controller (thermal)",
        0x0800..=0x0803 => "system peripheral (interrupt, DMA, timer or RTC)",
        0x0806 => "IOMMU",
        0x0880 => "system peripheral",
        _ => return None,
    })
}

/// Device ids of Intel's chipset SPI flash controllers (the kernel's `spi-intel-pci` table).
const INTEL_SPI_IDS: [u16; 29] = [
    0x02a4, 0x06a4, 0x18e0, 0x19e0, 0x1bca, 0x34a4, 0x38a4, 0x43a4, 0x4b24, 0x4d23, 0x4da4, 0x51a4,
    0x54a4, 0x5794, 0x7723, 0x7a24, 0x7aa4, 0x7e23, 0x7f24, 0x9d24, 0x9da4, 0xa0a4, 0xa1a4, 0xa224,
    0xa324, 0xa3a4, 0xa823, 0xe323, 0xe423,
];

/// An Intel chipset SPI flash controller: by its device id, or by `intel-spi` holding it.
fn is_intel_spi(dev: &PciDevice) -> bool {
    dev.vendor.0 == 0x8086
        && (INTEL_SPI_IDS.contains(&dev.device.0) || dev.driver.as_deref() == Some("intel-spi"))
}

/// A driverless host bridge without BARs that is not the root complex and is the only host
/// bridge of its slot (see [`platform_function`]). Unreadable `resource` means "not known to
/// be a placeholder".
fn is_placeholder_host_bridge(root: &SysRoot, pci: &PciScan, dev: &PciDevice) -> bool {
    let driverless = match dev.driver.as_deref() {
        None => true,
        Some(d) => dev.vfio_dev || d == "vfio-pci" || d == "pci-stub",
    };
    let alone = !pci.devices.iter().any(|o| {
        o.address != dev.address
            && same_slot(o.address, dev.address)
            && o.class.base_sub() == 0x0600
    });
    driverless && alone && has_no_bars(root, dev)
}

/// Whether `a` and `b` are functions of one slot (same domain, bus and device).
pub(crate) fn same_slot(a: PciAddress, b: PciAddress) -> bool {
    (a.domain, a.bus, a.device) == (b.domain, b.bus, b.device)
}

/// The function's `resource` file lists no BAR and no ROM (its first seven lines are all zero).
fn has_no_bars(root: &SysRoot, dev: &PciDevice) -> bool {
    let Ok(Some(text)) = root.read_attr_opt(&dev.sysfs_path.join("resource")) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().take(7).collect();
    lines.len() == 7
        && lines.iter().all(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 3 && f[..2].iter().all(|v| parse_hex(v) == Some(0))
        })
}

/// The function a sysfs path (links resolved) lies under: its nearest PCI ancestor directory.
fn owning_function(pci: &PciScan, path: &Path) -> Option<PciAddress> {
    path.ancestors()
        .find_map(|p| pci.devices.iter().find(|d| d.sysfs_path == p))
        .map(|d| d.address)
}

/// What the routing tables say about one interface.
#[derive(Debug, Default)]
struct IfaceRoutes {
    /// It carries a default route (IPv4 or IPv6).
    default: bool,
    /// The destinations of its other routes (`192.168.1.0/24`, `2001:db8::/64`), without repeats.
    networks: Vec<String>,
}

impl IfaceRoutes {
    fn network(&mut self, net: String) {
        if !self.networks.contains(&net) {
            self.networks.push(net);
        }
    }

    /// The networks to name: those that are not single hosts (`/32`, `/128`), or all when
    /// there are only hosts.
    fn shown(&self) -> String {
        let nets: Vec<&str> = self
            .networks
            .iter()
            .map(String::as_str)
            .filter(|n| !n.ends_with("/32") && !n.ends_with("/128"))
            .collect();
        if nets.is_empty() {
            self.networks.join(", ")
        } else {
            nets.join(", ")
        }
    }
}

/// `RTF_REJECT`: an unreachable, prohibit or blackhole route, which carries nothing.
const RTF_REJECT: u32 = 0x0200;

/// Interfaces the host's own traffic goes over, from `/proc/net/route` and `/proc/net/ipv6_route`:
/// every interface with a route (an address gives its connected route), except `lo`, rejecting
/// routes, and link-local (`169.254.0.0/16`, `fe80::/10`) and multicast (`224.0.0.0/4`,
/// `ff00::/8`) destinations, which every interface that is up may have. A VM-only bridge
/// without an address has no route and is not listed.
fn route_interfaces(root: &SysRoot, problems: &mut Vec<SysError>) -> BTreeMap<String, IfaceRoutes> {
    let mut ifaces: BTreeMap<String, IfaceRoutes> = BTreeMap::new();
    let carries =
        |iface: &str, flags: u32| iface != "lo" && iface != "*" && flags & RTF_REJECT == 0;
    let route = root.proc_net_route();
    match root.read_attr_opt(&route) {
        Ok(Some(text)) => {
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...; skip the header.
            // Addresses are in network byte order, printed as a little-endian host's u32.
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 8 {
                    continue;
                }
                let hex = |s: &str| u32::from_str_radix(s, 16).ok();
                let (Some(dest), Some(flags), Some(mask)) = (hex(f[1]), hex(f[3]), hex(f[7]))
                else {
                    continue;
                };
                if !carries(f[0], flags) {
                    continue;
                }
                let entry = ifaces.entry(f[0].to_string());
                if dest == 0 && mask == 0 {
                    entry.or_default().default = true;
                    continue;
                }
                let net = Ipv4Addr::from(dest.to_le_bytes());
                if net.is_link_local() || net.is_multicast() {
                    continue;
                }
                entry
                    .or_default()
                    .network(format!("{net}/{}", mask.count_ones()));
            }
        }
        Ok(None) => {}
        Err(e) => problems.push(e),
    }
    let route6 = root.proc_net_ipv6_route();
    match root.read_attr_opt(&route6) {
        Ok(Some(text)) => {
            // dest dest_len src src_len next_hop metric refcnt use flags iface
            for line in text.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 10 {
                    continue;
                }
                let (Ok(dest), Ok(len), Ok(flags)) = (
                    u128::from_str_radix(f[0], 16),
                    u8::from_str_radix(f[1], 16),
                    u32::from_str_radix(f[8], 16),
                ) else {
                    continue;
                };
                if !carries(f[9], flags) {
                    continue;
                }
                let entry = ifaces.entry(f[9].to_string());
                if dest == 0 && len == 0 {
                    entry.or_default().default = true;
                    continue;
                }
                let net = Ipv6Addr::from(dest);
                // fe80::/10 link-local (unicast), ff00::/8 multicast.
                if dest >> 118 == 0x3fa || net.is_multicast() {
                    continue;
                }
                entry.or_default().network(format!("{net}/{len}"));
            }
        }
        Ok(None) => {}
        Err(e) => problems.push(e),
    }
    ifaces
}

/// NICs the host's own traffic goes over: under an interface with a default route
/// (`default-route-nic`, "eno1, port of vmbr0, carries the default route"), else under one with
/// other routes (`host-network-nic`, "enp2s0 under lanbr (192.168.1.0/24)").
fn route_nics(
    root: &SysRoot,
    pci: &PciScan,
    problems: &mut Vec<SysError>,
) -> Vec<(PciAddress, HostRole, String)> {
    let ifaces = route_interfaces(root, problems);
    let mut found = Vec::new();
    for iface in ifaces.iter().filter(|(_, r)| r.default).map(|(i, _)| i) {
        for (addr, name, via) in nics_under(root, pci, iface, problems) {
            let chain = if via.is_empty() {
                String::new()
            } else {
                format!(", port of {}", via.join(" on "))
            };
            found.push((
                addr,
                HostRole::DefaultRouteNic,
                format!("{name}{chain}, carries the default route"),
            ));
        }
    }
    let mut others: BTreeMap<PciAddress, Vec<String>> = BTreeMap::new();
    for (iface, routes) in ifaces.iter().filter(|(_, r)| !r.default) {
        for (addr, name, via) in nics_under(root, pci, iface, problems) {
            if found.iter().any(|f| f.0 == addr) {
                continue;
            }
            let under = if via.is_empty() {
                String::new()
            } else {
                format!(" under {}", via.join(" on "))
            };
            let detail = format!("{name}{under} ({})", routes.shown());
            let list = others.entry(addr).or_default();
            if !list.contains(&detail) {
                list.push(detail);
            }
        }
    }
    for (addr, details) in others {
        found.push((addr, HostRole::HostNetworkNic, details.join("; ")));
    }
    found
}

/// The NICs under interface `iface`, through bridges (`brif/`), bonds (`bonding/slaves`) and
/// stacked devices such as VLANs (`lower_*`): each function with its interface's name and the
/// interfaces above it, nearest first.
///
/// A bridge's ports are its `lower_*` devices too and a bridge is no bond, so a `brif` that
/// lists ports says all. The route's own interface is most often a bridge (Proxmox's `vmbr0`):
/// where the kernel confines reads (or on the host's own `/`) its `brif` is listed through its
/// `sys/class/net` link first, and one with ports is not resolved at all — a bridge is a
/// software device, never a PCI function's.
fn nics_under(
    root: &SysRoot,
    pci: &PciScan,
    iface: &str,
    problems: &mut Vec<SysError>,
) -> Vec<(PciAddress, String, Vec<String>)> {
    let through_links = confined(root);
    let class = root.sys_class("net");
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    let mut stack = vec![(iface.to_string(), Vec::<String>::new())];
    while let Some((name, via)) = stack.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let link = class.join(&name);
        // The ports of `brif` listed through the link: `Some` when it has none or is not there.
        let mut brif = None;
        if through_links && via.is_empty() {
            match root.list_opt(&link.join("brif")) {
                Ok(ports) if !ports.is_empty() => {
                    for port in ports {
                        stack.push((port, vec![name.clone()]));
                    }
                    continue;
                }
                Ok(none) => brif = Some(none),
                Err(_) => {}
            }
        }
        let dir = match root.resolve_opt(&link) {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        if let Some(addr) = owning_function(pci, &dir) {
            found.push((addr, name, via));
            continue;
        }
        let mut lower: Vec<String> = match brif {
            Some(none) => none,
            None => root.list_opt(&dir.join("brif")).unwrap_or_default(),
        };
        if lower.is_empty() {
            if let Ok(Some(slaves)) = root.read_attr_opt(&dir.join("bonding/slaves")) {
                lower.extend(slaves.split_whitespace().map(str::to_string));
            }
            lower.extend(
                root.list_opt(&dir)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|n| n.strip_prefix("lower_").map(str::to_string)),
            );
        }
        let mut via = via.clone();
        via.insert(0, name.clone());
        for l in lower {
            stack.push((l, via.clone()));
        }
    }
    found
}

/// Whether the kernel confines this root's reads (or it is the host's own `/`, where there is
/// nothing to confine): then a directory can be read through the link that leads to it, which
/// the kernel follows inside the root, without resolving the link first.
fn confined(root: &SysRoot) -> bool {
    root.confinement() == Confinement::Kernel || root.is_host()
}

/// The block device mounted at `/`, as `/proc/mounts` says (the last mount wins).
fn root_mount(root: &SysRoot, problems: &mut Vec<SysError>) -> Option<(String, String)> {
    let text = match root.read_attr_opt(&root.proc_mounts()) {
        Ok(t) => t?,
        Err(e) => {
            problems.push(e);
            return None;
        }
    };
    text.lines().rev().find_map(|l| {
        let mut f = l.split_whitespace();
        let (dev, mnt, fstype) = (f.next()?, f.next()?, f.next()?);
        (mnt == "/").then(|| (dev.to_string(), fstype.to_string()))
    })
}

/// Controllers under the root filesystem: through device-mapper/LVM/md `slaves` from its block
/// device, or, on ZFS, from the root pool's vdevs. When they cannot be traced, every storage
/// controller.
fn root_disk_controllers(
    root: &SysRoot,
    pci: &PciScan,
    problems: &mut Vec<SysError>,
) -> Vec<(PciAddress, String)> {
    let Some((dev, fstype)) = root_mount(root, problems) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut untraced = None;
    if fstype == "zfs" {
        match zfs_root_controllers(root, pci, &dev, problems) {
            Ok(f) => found = f,
            Err(why) => untraced = Some(why),
        }
    } else if let Some(name) = block_name(root, &dev) {
        for (addr, leaf) in trace_block(root, pci, &name, problems) {
            found.push((addr, format!("holds {leaf}, under / ({dev})")));
        }
    }
    if found.is_empty() {
        // Network roots, a pool or device we could not follow: every storage controller
        // might hold the root filesystem.
        let why = untraced.map(|w| format!(" ({w})")).unwrap_or_default();
        for d in pci.devices.iter().filter(|d| d.class.base() == 0x01) {
            found.push((
                d.address,
                format!("may hold / ({dev}, {fstype}): its disks could not be traced{why}"),
            ));
        }
    }
    found
}

/// The controllers of the leaf block devices under the block device `name` (partition, disk,
/// device-mapper or md device), each with the leaf's name.
///
/// Where the kernel confines reads (or on the host's own `/`), `slaves` is listed through the
/// `sys/class/block` link first: a device that has any is not a leaf, and its directory need not
/// be resolved.
fn trace_block(
    root: &SysRoot,
    pci: &PciScan,
    name: &str,
    problems: &mut Vec<SysError>,
) -> Vec<(PciAddress, String)> {
    let through_links = confined(root);
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    let mut stack = vec![name.to_string()];
    while let Some(name) = stack.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        // Whether `slaves` was listed through the class link and found empty or not there.
        let mut none_listed = false;
        if through_links && is_plain_name(&name) {
            match root.list_opt(&root.sys_class("block").join(&name).join("slaves")) {
                Ok(slaves) if !slaves.is_empty() => {
                    stack.extend(slaves);
                    continue;
                }
                Ok(_) => none_listed = true,
                Err(_) => {}
            }
        }
        let (dir, by_class) = match block_dir(root, &name) {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let slaves = if none_listed && by_class {
            Vec::new()
        } else {
            root.list_opt(&dir.join("slaves")).unwrap_or_default()
        };
        if !slaves.is_empty() {
            stack.extend(slaves);
        } else if let Some(addr) = owning_function(pci, &dir) {
            found.push((addr, name));
        }
    }
    found
}

/// Whether `name` can be a block device's name: one path component.
fn is_plain_name(name: &str) -> bool {
    !(name.is_empty() || name.contains('/') || name == ".." || name == ".")
}

/// The sysfs directory of block device `name`: `/sys/class/block/<name>` (and `true`), else a
/// partition's `/sys/block/<disk>/<name>` (and `false`). `Ok(None)` when neither exists.
fn block_dir(root: &SysRoot, name: &str) -> Result<Option<(PathBuf, bool)>, SysError> {
    if !is_plain_name(name) {
        return Ok(None);
    }
    if let Some(dir) = root.resolve_opt(&root.sys_class("block").join(name))? {
        return Ok(Some((dir, true)));
    }
    let block = root.sys_block();
    for disk in root.list_opt(&block).unwrap_or_default() {
        if let Some(dir) = root.resolve_opt(&block.join(&disk).join(name))? {
            return Ok(Some((dir, false)));
        }
    }
    Ok(None)
}

/// The controllers of the ZFS pool holding `/` (`rpool/ROOT/pve-1` → `rpool`): its vdevs from
/// `zpool status -P` (run on `/`, the recorded output elsewhere), each traced to its
/// controller. `Err` says why the pool could not be traced; a pool traced only in part is not
/// traced (the rest could be on any controller).
fn zfs_root_controllers(
    root: &SysRoot,
    pci: &PciScan,
    dataset: &str,
    problems: &mut Vec<SysError>,
) -> Result<Vec<(PciAddress, String)>, String> {
    let pool = dataset.split('/').next().unwrap_or_default();
    if pool.is_empty()
        || pool.starts_with('-')
        || !pool
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
    {
        return Err(format!("{dataset:?} names no pool"));
    }
    let (status, source) = zpool_status(root, pool, problems)?;
    let vdevs =
        zpool_vdevs(&status, pool).ok_or_else(|| format!("{source} does not list pool {pool}"))?;
    if vdevs.paths.is_empty() || vdevs.unnamed > 0 {
        return Err(format!("{source} does not name every vdev of pool {pool}"));
    }
    let mut found = Vec::new();
    for vdev in &vdevs.paths {
        let traced = vdev_block_name(root, vdev)
            .map(|name| trace_block(root, pci, &name, problems))
            .unwrap_or_default();
        if traced.is_empty() {
            return Err(format!("vdev {vdev} of pool {pool} was not found"));
        }
        for (addr, leaf) in traced {
            let via = if vdev.ends_with(&format!("/{leaf}")) {
                String::new()
            } else {
                format!(" ({vdev})")
            };
            found.push((
                addr,
                format!("holds {leaf}{via}, a vdev of ZFS pool {pool} under / ({dataset})"),
            ));
        }
    }
    Ok(found)
}

/// What `zpool status -P <pool>` prints, and where it came from: on `/` from running it
/// (read-only), on any other root from the recorded output. `Err` says why there is none.
fn zpool_status(
    root: &SysRoot,
    pool: &str,
    problems: &mut Vec<SysError>,
) -> Result<(String, String), String> {
    if root.is_host() {
        let out = std::process::Command::new("zpool")
            .args(["status", "-P", pool])
            .env("LC_ALL", "C")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("`zpool status -P {pool}` could not be run: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "`zpool status -P {pool}` failed: {}",
                err.lines().next().unwrap_or("no message")
            ));
        }
        return Ok((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            format!("`zpool status -P {pool}`"),
        ));
    }
    let record = root.zpool_status_record();
    match root.read_text_opt(&record) {
        Ok(Some(text)) => Ok((text, format!("the recorded {}", record.display()))),
        Ok(None) => Err(format!(
            "no recorded `zpool status -P` at {}",
            record.display()
        )),
        Err(e) => {
            let why = format!("{} is unreadable", record.display());
            problems.push(e);
            Err(why)
        }
    }
}

/// The kernel name of the block device a vdev path names: `/dev/disk/by-id/…` links are
/// followed by their target's name (`../../nvme0n1p3` → `nvme0n1p3`) without opening it — a
/// recording holds the links but not the device nodes. `None` for paths outside `/dev`.
fn vdev_block_name(root: &SysRoot, vdev: &str) -> Option<String> {
    let mut path = join_lexically(Path::new("/"), Path::new(vdev))?;
    for _ in 0..8 {
        // The link's directory opened inside the root, the link read relative to it.
        let link = root.path(&path);
        let Some(dir) = link.parent().and_then(|p| root.open_dir(p).ok()) else {
            break;
        };
        let Ok(Some(target)) = dir.read_link(&dir.path().join(link.file_name()?)) else {
            break;
        };
        path = join_lexically(path.parent()?, &target)?;
    }
    let dev = path.to_str()?;
    dev.strip_prefix("/dev/")?;
    block_name(root, dev)
}

/// The kernel name of the block device at `/dev/…`: through the root's own `/dev` links when
/// there are any (`/dev/mapper/pve-root` → `dm-1`), else by device-mapper name, else the name itself.
fn block_name(root: &SysRoot, dev: &str) -> Option<String> {
    let rel = dev.strip_prefix("/dev/")?;
    // A link that is not there and one that dangles or leaves the root alike fall through: where
    // the kernel confines reads, one `openat2` tells when nothing is there.
    let path = root.path(dev);
    let real = if root.confinement() == Confinement::Kernel {
        root.resolve(&path).ok()
    } else {
        root.resolve_opt(&path).ok().flatten()
    };
    if let Some(real) = real
        && let Some(name) = real.file_name().and_then(|n| n.to_str())
        && root
            .is_dir(&root.sys_class("block").join(name))
            .unwrap_or(false)
    {
        return Some(name.to_string());
    }
    if let Some(dm_name) = rel.strip_prefix("mapper/") {
        let block = root.sys_block();
        return root.list_opt(&block).ok()?.into_iter().find(|b| {
            root.read_attr_opt(&block.join(b).join("dm/name"))
                .ok()
                .flatten()
                .is_some_and(|n| n == dm_name)
        });
    }
    Some(rel.to_string())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    use vfiokit_sysfs::{Confinement, SysRoot};

    use super::*;
    use crate::Host;

    const VMBR0: &str = "sys/devices/virtual/net/vmbr0";

    /// The roles and problems of the recorded EliteDesk changed by `change`, read where the
    /// kernel confines reads and by the user-space walk, which resolves every link before
    /// reading below it: the two must agree.
    fn roles_both_ways(change: impl Fn(&Path)) -> (Roles, Vec<String>) {
        recorded_roles_both_ways("elitedesk-800-g4/fresh", change)
    }

    /// [`roles_both_ways`] on the recorded host `name`.
    fn recorded_roles_both_ways(name: &str, change: impl Fn(&Path)) -> (Roles, Vec<String>) {
        let (dir, _) = vfiokit_fakesys::copy_recorded(name).unwrap();
        change(dir.path());
        let scan = |confinement| {
            let root = SysRoot::with_confinement(dir.path(), confinement).unwrap();
            let host = Host::scan(&root).unwrap();
            let problems: Vec<String> = host.problems.iter().map(ToString::to_string).collect();
            (host.roles, problems)
        };
        let (kernel, walk) = (scan(Confinement::Kernel), scan(Confinement::Walk));
        assert_eq!(kernel, walk);
        kernel
    }

    fn detail(roles: &Roles, addr: &str, role: HostRole) -> Option<String> {
        roles
            .get(&addr.parse().unwrap())?
            .iter()
            .find(|r| r.role == role)
            .map(|r| r.detail.clone())
    }

    #[test]
    fn bridges_bonds_and_stacked_devices_lead_to_the_nic_either_way() {
        let bond = |base: &Path| {
            fs::remove_dir_all(base.join(VMBR0).join("brif")).unwrap();
            fs::create_dir(base.join(VMBR0).join("bonding")).unwrap();
            fs::write(base.join(VMBR0).join("bonding/slaves"), "eno1\n").unwrap();
        };
        let stacked = |base: &Path| fs::remove_dir_all(base.join(VMBR0).join("brif")).unwrap();
        let no_ports = |base: &Path| {
            fs::remove_file(base.join(VMBR0).join("brif/eno1")).unwrap();
        };
        let as_recorded = |_: &Path| {};
        let changes: [&dyn Fn(&Path); 4] = [&as_recorded, &bond, &stacked, &no_ports];
        for change in changes {
            let (roles, _) = roles_both_ways(change);
            assert_eq!(
                detail(&roles, "00:1f.6", HostRole::DefaultRouteNic).as_deref(),
                Some("eno1, port of vmbr0, carries the default route")
            );
        }
    }

    #[test]
    fn a_route_interface_that_dangles_or_leaves_the_root_is_a_problem_either_way() {
        for target in [
            "../../devices/virtual/net/gone",
            "/sys/devices/virtual/net/lo",
        ] {
            let (roles, problems) = roles_both_ways(|base| {
                let link = base.join("sys/class/net/vmbr0");
                fs::remove_file(&link).unwrap();
                symlink(target, &link).unwrap();
            });
            assert_eq!(detail(&roles, "00:1f.6", HostRole::DefaultRouteNic), None);
            assert!(
                problems.iter().any(|p| p.contains("sys/class/net/vmbr0")),
                "{target}: {problems:?}"
            );
        }
    }

    #[test]
    fn device_mapper_volumes_and_partitions_trace_to_the_controller_either_way() {
        let no_class_partition = |base: &Path| {
            fs::remove_file(base.join("sys/class/block/sda3")).unwrap();
        };
        // `/dev/mapper/pve-root` as a link to `dm-1`, dangling, or leaving the root: the volume is
        // found through the link, else by its device-mapper name.
        let dev_link = |target: &'static str| {
            move |base: &Path| {
                fs::create_dir_all(base.join("dev/mapper")).unwrap();
                fs::write(base.join("dev/dm-1"), "").unwrap();
                symlink(target, base.join("dev/mapper/pve-root")).unwrap();
            }
        };
        let (to_dm, dangling, escaping) = (
            dev_link("../dm-1"),
            dev_link("../gone"),
            dev_link("/dev/null"),
        );
        let as_recorded = |_: &Path| {};
        let changes: [&dyn Fn(&Path); 5] = [
            &as_recorded,
            &no_class_partition,
            &to_dm,
            &dangling,
            &escaping,
        ];
        for change in changes {
            let (roles, problems) = roles_both_ways(change);
            assert_eq!(
                detail(&roles, "00:17.0", HostRole::RootDiskController).as_deref(),
                Some("holds sda3, under / (/dev/mapper/pve-root)"),
                "{problems:?}"
            );
        }
        // A volume whose link leaves the root: a problem, and every storage controller may hold /.
        let (roles, problems) = roles_both_ways(|base| {
            let link = base.join("sys/class/block/dm-1");
            fs::remove_file(&link).unwrap();
            symlink("/sys/devices/virtual/block/loop0", &link).unwrap();
        });
        assert!(
            problems.iter().any(|p| p.contains("sys/class/block/dm-1")),
            "{problems:?}"
        );
        assert!(
            detail(&roles, "00:17.0", HostRole::RootDiskController)
                .is_some_and(|d| d.starts_with("may hold /")),
            "{roles:?}"
        );
    }

    const UM880: &str = "minisforum-um880pro/configured";
    const ROUTE_HEADER: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";
    const LANBR_NET: &str = "lanbr\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";

    /// The UM880 Pro with `proc/net/route` holding `ipv4` routes and `proc/net/ipv6_route` `ipv6`.
    fn um880_routes(ipv4: &str, ipv6: &str) -> (Roles, Vec<String>) {
        let ipv4 = format!("{ROUTE_HEADER}{ipv4}");
        recorded_roles_both_ways(UM880, |base| {
            fs::write(base.join("proc/net/route"), &ipv4).unwrap();
            fs::write(base.join("proc/net/ipv6_route"), ipv6).unwrap();
        })
    }

    fn nic_roles(roles: &Roles, addr: &str) -> Vec<Role> {
        roles
            .get(&addr.parse().unwrap())
            .into_iter()
            .flatten()
            .filter(|r| matches!(r.role, HostRole::DefaultRouteNic | HostRole::HostNetworkNic))
            .cloned()
            .collect()
    }

    /// One line of `/proc/net/ipv6_route`.
    fn route6(dest: &str, len: u8, flags: u32, iface: &str) -> String {
        format!(
            "{dest} {len:02x} 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 {flags:08x} {iface:>8}\n"
        )
    }

    #[test]
    fn an_address_without_a_default_route_makes_its_nic_a_host_network_nic() {
        // The isolated LAN: the host's only address, 192.168.1.20/24, on lanbr over enp2s0.
        let (roles, problems) = um880_routes(LANBR_NET, "");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            nic_roles(&roles, "02:00.0"),
            [Role {
                role: HostRole::HostNetworkNic,
                detail: "enp2s0 under lanbr (192.168.1.0/24)".into(),
            }]
        );
        assert!(HostRole::HostNetworkNic.is_critical());
        // With the default route back it is the default-route NIC, as recorded, and only that.
        let default = "lanbr\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        let (roles, _) = um880_routes(&format!("{default}{LANBR_NET}"), "");
        assert_eq!(
            nic_roles(&roles, "02:00.0"),
            [Role {
                role: HostRole::DefaultRouteNic,
                detail: "enp2s0, port of lanbr, carries the default route".into(),
            }]
        );
    }

    /// A second bridge, `vmbr1` over enp3s0 (03:00.0), for VMs only unless given routes.
    fn with_vmbr1(base: &Path) {
        let dev = base.join("sys/devices/virtual/net/vmbr1");
        fs::create_dir_all(dev.join("brif")).unwrap();
        fs::write(dev.join("brif/enp3s0"), "").unwrap();
        symlink(
            "../../../pci0000:00/0000:00:02.2/0000:03:00.0/net/enp3s0",
            dev.join("lower_enp3s0"),
        )
        .unwrap();
        symlink(
            "../../devices/virtual/net/vmbr1",
            base.join("sys/class/net/vmbr1"),
        )
        .unwrap();
    }

    #[test]
    fn a_bridge_without_an_address_leaves_its_ports_to_vms() {
        let vm_only = |base: &Path| {
            with_vmbr1(base);
            fs::write(
                base.join("proc/net/route"),
                format!("{ROUTE_HEADER}{LANBR_NET}"),
            )
            .unwrap();
            // Link-local and multicast routes every interface that is up has, IPv4 and IPv6.
            fs::write(
                base.join("proc/net/ipv6_route"),
                route6("fe800000000000000000000000000000", 64, 0x0001, "vmbr1")
                    + &route6("ff000000000000000000000000000000", 8, 0x0001, "vmbr1"),
            )
            .unwrap();
        };
        let (roles, problems) = recorded_roles_both_ways(UM880, vm_only);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(nic_roles(&roles, "03:00.0"), []);
        assert_eq!(nic_roles(&roles, "02:00.0").len(), 1);
        // Given an address, the same bridge carries the host's traffic.
        let (roles, _) = recorded_roles_both_ways(UM880, |base| {
            vm_only(base);
            let vmbr1 = "vmbr1\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
            fs::write(
                base.join("proc/net/route"),
                format!("{ROUTE_HEADER}{LANBR_NET}{vmbr1}"),
            )
            .unwrap();
        });
        assert_eq!(
            nic_roles(&roles, "03:00.0"),
            [Role {
                role: HostRole::HostNetworkNic,
                detail: "enp3s0 under vmbr1 (10.0.0.0/16)".into(),
            }]
        );
    }

    #[test]
    fn a_global_ipv6_route_protects_its_nic_and_link_local_ones_do_not() {
        let link_local = route6("fe800000000000000000000000000000", 64, 0x0001, "lanbr")
            + &route6("fe800000000000000000000000000014", 128, 0x80200001, "lanbr")
            + &route6("ff000000000000000000000000000000", 8, 0x0001, "lanbr")
            + &route6("00000000000000000000000000000001", 128, 0x80200001, "lo")
            + &route6("00000000000000000000000000000000", 0, 0x00200200, "lo");
        let ipv4_link_local = "lanbr\t0000FEA9\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let (roles, problems) = um880_routes(ipv4_link_local, &link_local);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(nic_roles(&roles, "02:00.0"), []);

        let global = link_local.clone()
            + &route6("20010db8000100000000000000000000", 64, 0x0001, "lanbr")
            + &route6("20010db8000100000000000000000014", 128, 0x80200001, "lanbr");
        let (roles, _) = um880_routes("", &global);
        assert_eq!(
            nic_roles(&roles, "02:00.0"),
            [Role {
                role: HostRole::HostNetworkNic,
                detail: "enp2s0 under lanbr (2001:db8:1::/64)".into(),
            }]
        );
        // Only the address's own route, as in the local table: it still counts.
        let (roles, _) = um880_routes(
            "",
            &route6("20010db8000100000000000000000014", 128, 0x80200001, "lanbr"),
        );
        assert_eq!(
            nic_roles(&roles, "02:00.0")[0].detail,
            "enp2s0 under lanbr (2001:db8:1::14/128)"
        );
        // An IPv6 default route makes it the default-route NIC.
        let (roles, _) = um880_routes(
            "",
            &(global + &route6("00000000000000000000000000000000", 0, 0x0003, "lanbr")),
        );
        assert_eq!(
            nic_roles(&roles, "02:00.0")[0].role,
            HostRole::DefaultRouteNic
        );
    }
}
