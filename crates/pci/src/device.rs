//! PCI functions as sysfs shows them, and enumeration of a host's functions.

use std::path::{Path, PathBuf};

use vfiokit_sysfs::{Error as SysError, SysRoot};

use crate::config::{self, ConfigSpace};
use crate::{ClassCode, DeviceId, PciAddress, PciId, VendorId};

/// One PCI function read from `/sys/bus/pci/devices/<address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciDevice {
    /// Its address.
    pub address: PciAddress,
    /// Where its directory really is (`…/sys/devices/pci0000:00/0000:00:02.0`), links resolved.
    pub sysfs_path: PathBuf,
    /// `vendor`.
    pub vendor: VendorId,
    /// `device`.
    pub device: DeviceId,
    /// `subsystem_vendor`: the board maker (`103c` HP), when the file exists.
    pub subsystem_vendor: Option<VendorId>,
    /// `subsystem_device`.
    pub subsystem_device: Option<DeviceId>,
    /// `class`.
    pub class: ClassCode,
    /// `revision`, or byte 8 of the config space when the file is missing.
    pub revision: Option<u8>,
    /// The bound driver: the name the `driver` link points to (`vfio-pci`, `i915`).
    pub driver: Option<String>,
    /// `modalias`, the string `modules.alias` patterns are matched against.
    pub modalias: Option<String>,
    /// `boot_vga`: the firmware used this display device for the boot console (display devices only).
    pub boot_vga: Option<bool>,
    /// The IOMMU group number the `iommu_group` link points to; `None` without an IOMMU.
    pub iommu_group: Option<u32>,
    /// The nearest PCI function above it (a root port, a switch port, or the VMD controller).
    pub parent: Option<PciAddress>,
    /// For an SR-IOV virtual function, its physical function (`physfn` link).
    pub physfn: Option<PciAddress>,
    /// A `vfio-dev` directory exists: bound to vfio-pci or to a vfio variant driver.
    pub vfio_dev: bool,
    /// For display devices, whether the function has an expansion ROM BAR (line 7 of `resource`):
    /// without one the host cannot hand the VM a ROM and `romfile=` must supply it (an Intel iGPU
    /// has none, which is what "Invalid PCI ROM header signature" means). `None` when unknown or
    /// not a display device.
    pub rom_bar: Option<bool>,
    /// Capabilities from the binary `config` file, when it was readable.
    pub config: Option<ConfigSpace>,
}

impl PciDevice {
    /// Its `vendor:device` pair (`8086:3e92`), as `lspci -n` and `vfio-pci ids=` write it.
    pub fn id(&self) -> PciId {
        PciId::new(self.vendor, self.device)
    }

    /// The vendor's name from the PCI id database.
    pub fn vendor_name(&self) -> Option<&'static str> {
        crate::vendor_name(self.vendor)
    }

    /// The device's name from the PCI id database.
    pub fn device_name(&self) -> Option<&'static str> {
        crate::device_name(self.vendor, self.device)
    }

    /// Whether a driver that manages DMA for VFIO holds it: `vfio-pci`, a vfio variant driver
    /// (it has a `vfio-dev` directory), `pci-stub` or `pcieport`.
    pub fn driver_is_vfio_safe(&self) -> bool {
        self.vfio_dev
            || matches!(
                self.driver.as_deref(),
                Some("vfio-pci" | "pci-stub" | "pcieport")
            )
    }

    /// A bridge to another bus (root port, switch port): it forwards traffic rather than doing work.
    pub fn is_bridge(&self) -> bool {
        self.class.is_pci_bridge() || self.config.as_ref().is_some_and(|c| c.header_type == 1)
    }
}

/// What a scan of the host's PCI functions found: the functions that could be read, sorted by
/// address, and a problem for each file or entry that could not (each names its path).
#[derive(Debug, Default)]
pub struct PciScan {
    /// Every function whose ids and class could be read.
    pub devices: Vec<PciDevice>,
    /// What went wrong, each naming the path. A device missing from `devices` has an entry here.
    pub problems: Vec<SysError>,
}

impl PciScan {
    /// The function at `address`.
    pub fn get(&self, address: PciAddress) -> Option<&PciDevice> {
        self.devices
            .binary_search_by_key(&address, |d| d.address)
            .ok()
            .map(|i| &self.devices[i])
    }
}

/// Reads every function listed in `/sys/bus/pci/devices`. Only a missing or unreadable
/// `/sys/bus/pci/devices` itself is an error; everything else becomes a problem in the scan.
pub fn scan(root: &SysRoot) -> Result<PciScan, SysError> {
    let dir = root.sys_bus_devices("pci");
    let mut scan = PciScan::default();
    let mut resolver = DeviceDirs::new(root, &dir);
    for name in root.list(&dir)? {
        let path = dir.join(&name);
        let Ok(address) = name.parse::<PciAddress>() else {
            scan.problems.push(SysError::Parse {
                path,
                expected: "a PCI address",
                found: name,
            });
            continue;
        };
        let device = match resolver.resolve(&path) {
            Some(real) => read_device_at(root, address, real, &mut scan.problems),
            None => read_device(root, address, &path, &mut scan.problems),
        };
        if let Some(device) = device {
            scan.devices.push(device);
        }
    }
    scan.devices.sort_by_key(|d| d.address);
    Ok(scan)
}

/// Resolves `sys/bus/pci/devices/<addr>` links in two system calls instead of a realpath
/// (about fifteen): read the link, join its relative target onto the canonical bus directory,
/// and accept the result when its parent directory is known canonical (resolved once per
/// parent: all functions behind one bridge share it) and the function's own directory is a real
/// directory, not a link. Anything else returns `None`, and the caller takes the full
/// `SysRoot::resolve`, which reports escapes and dangling links.
struct DeviceDirs<'a> {
    root: &'a SysRoot,
    bus: Option<PathBuf>,
    parents: std::collections::HashMap<PathBuf, bool>,
}

impl<'a> DeviceDirs<'a> {
    fn new(root: &'a SysRoot, bus: &Path) -> DeviceDirs<'a> {
        DeviceDirs {
            root,
            bus: root.resolve(bus).ok(),
            parents: std::collections::HashMap::new(),
        }
    }

    fn resolve(&mut self, link: &Path) -> Option<PathBuf> {
        let bus = self.bus.as_ref()?;
        let target = std::fs::read_link(link).ok()?;
        if !target.is_relative() {
            return None;
        }
        let real = vfiokit_sysfs::join_lexically(bus, &target)?;
        let parent = real.parent()?.to_path_buf();
        let root = self.root;
        let canonical = *self
            .parents
            .entry(parent)
            .or_insert_with_key(|p| root.resolve(p).is_ok_and(|r| &r == p));
        let own = std::fs::symlink_metadata(&real).ok()?;
        (canonical && own.is_dir()).then_some(real)
    }
}

/// Keeps the value, or records the problem and gives `None`.
fn note<T>(problems: &mut Vec<SysError>, result: Result<T, SysError>) -> Option<T> {
    result.map_err(|e| problems.push(e)).ok()
}

/// An optional hex attribute that must fit in 16 bits (`subsystem_vendor`, `revision`).
fn hex16(root: &SysRoot, path: PathBuf, problems: &mut Vec<SysError>) -> Option<u16> {
    let text = note(problems, root.read_attr_opt(&path))??;
    let value = vfiokit_sysfs::parse_hex(&text).and_then(|v| u16::try_from(v).ok());
    if value.is_none() {
        problems.push(SysError::Parse {
            path,
            expected: "a 16-bit hex value",
            found: text,
        });
    }
    value
}

/// A hex attribute that must exist and fit in 16 bits (`vendor`, `device`).
fn required16(root: &SysRoot, path: PathBuf, problems: &mut Vec<SysError>) -> Option<u16> {
    let value = note(problems, root.read_hex(&path))?;
    let fits = u16::try_from(value).ok();
    if fits.is_none() {
        problems.push(SysError::Parse {
            path,
            expected: "a 16-bit hex id",
            found: format!("{value:#x}"),
        });
    }
    fits
}

/// Reads one function from its `/sys/bus/pci/devices/<address>` entry. `None` when its ids or class
/// cannot be read; every problem goes to `problems`.
pub fn read_device(
    root: &SysRoot,
    address: PciAddress,
    link: &Path,
    problems: &mut Vec<SysError>,
) -> Option<PciDevice> {
    let dir = note(problems, root.resolve(link))?;
    read_device_at(root, address, dir, problems)
}

/// Reads one function from its real directory (links already resolved inside the root).
fn read_device_at(
    root: &SysRoot,
    address: PciAddress,
    dir: PathBuf,
    problems: &mut Vec<SysError>,
) -> Option<PciDevice> {
    let vendor = required16(root, dir.join("vendor"), problems);
    let device = required16(root, dir.join("device"), problems);
    let class_path = dir.join("class");
    let class = note(problems, root.read_hex(&class_path)).and_then(|c| {
        let class = u32::try_from(c).ok().and_then(ClassCode::new);
        if class.is_none() {
            problems.push(SysError::Parse {
                path: class_path,
                expected: "a 24-bit class code",
                found: format!("{c:#x}"),
            });
        }
        class
    });
    let (Some(vendor), Some(device), Some(class)) = (vendor, device, class) else {
        return None;
    };
    let subsystem_vendor = hex16(root, dir.join("subsystem_vendor"), problems).map(VendorId);
    let subsystem_device = hex16(root, dir.join("subsystem_device"), problems).map(DeviceId);
    let revision_file = hex16(root, dir.join("revision"), problems);
    let config = read_config(root, &dir, problems);
    let driver = note(problems, link_name(root, &dir, "driver")).flatten();
    let bound = driver.is_some();
    let modalias = note(problems, root.read_attr_opt(&dir.join("modalias"))).flatten();
    let boot_vga = if class.is_display() {
        note(problems, root.read_attr_opt(&dir.join("boot_vga")))
            .flatten()
            .map(|v| v.trim() == "1")
    } else {
        None
    };
    let physfn = note(problems, link_name(root, &dir, "physfn"))
        .flatten()
        .and_then(|n| n.parse().ok());
    let group_link = dir.join("iommu_group");
    let iommu_group = note(problems, link_name(root, &dir, "iommu_group"))
        .flatten()
        .and_then(|name| match name.parse::<u32>() {
            Ok(g) => Some(g),
            Err(_) => {
                problems.push(SysError::Parse {
                    path: group_link,
                    expected: "a link to a numbered IOMMU group",
                    found: name,
                });
                None
            }
        });
    let revision = revision_file
        .and_then(|r| u8::try_from(r).ok())
        .or(config.as_ref().map(|(_, rev)| *rev));
    Some(PciDevice {
        address,
        vendor: VendorId(vendor),
        device: DeviceId(device),
        subsystem_vendor,
        subsystem_device,
        class,
        revision,
        driver,
        modalias,
        boot_vga,
        iommu_group,
        parent: parent_function(&dir),
        physfn,
        // Only a bound function can have a vfio-dev directory; skip the lookup for the rest.
        vfio_dev: bound && dir.join("vfio-dev").is_dir(),
        // The ROM BAR matters for display devices (a VM needs their ROM); others are not read.
        rom_bar: if class.is_display() {
            rom_bar(root, &dir, problems)
        } else {
            None
        },
        config: config.map(|(cs, _)| cs),
        sysfs_path: dir,
    })
}

/// [`SysRoot::link_name`] of the link `name` in the (resolved) device directory `dir`, in two
/// system calls (`readlink`, then `stat` to see that the target exists) instead of one per path
/// component: the scan reads three links per function, and resolving them was half of its
/// system calls. A target that is absolute, climbs out of the root or does not exist takes
/// `SysRoot::link_name`, which reports it as before.
fn link_name(root: &SysRoot, dir: &Path, name: &str) -> Result<Option<String>, SysError> {
    let link = dir.join(name);
    let target = match std::fs::read_link(&link) {
        Ok(target) => target,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return root.link_name(&link),
    };
    let inside = target.is_relative()
        && vfiokit_sysfs::join_lexically(dir, &target).is_some_and(|t| root.relative(&t).is_some());
    match target.file_name().and_then(|n| n.to_str()) {
        Some(last) if inside && std::fs::metadata(&link).is_ok() => Ok(Some(last.to_string())),
        _ => root.link_name(&link),
    }
}

/// Reads the ROM BAR line of `resource` (the seventh: six BARs, then the ROM).
fn rom_bar(root: &SysRoot, dir: &Path, problems: &mut Vec<SysError>) -> Option<bool> {
    let path = dir.join("resource");
    let text = note(problems, root.read_attr_opt(&path)).flatten()?;
    let line = text.lines().nth(6)?;
    let mut fields = line.split_whitespace().map(vfiokit_sysfs::parse_hex);
    match (fields.next().flatten(), fields.next().flatten()) {
        (Some(start), Some(end)) => Some(end > start),
        _ => {
            problems.push(SysError::Parse {
                path,
                expected: "start end flags on the ROM line",
                found: line.to_string(),
            });
            None
        }
    }
}

/// The config space's capabilities and its revision byte.
fn read_config(
    root: &SysRoot,
    dir: &Path,
    problems: &mut Vec<SysError>,
) -> Option<(ConfigSpace, u8)> {
    let path = dir.join("config");
    let bytes = match root.read_bytes(&path) {
        Ok(b) => b,
        Err(e) => {
            problems.push(e);
            return None;
        }
    };
    match config::parse(&bytes) {
        Ok((cs, found)) => {
            problems.extend(found.into_iter().map(|e| SysError::Parse {
                path: path.clone(),
                expected: "a well-formed capability list",
                found: e.to_string(),
            }));
            Some((cs, bytes[0x08]))
        }
        Err(e) => {
            problems.push(SysError::Parse {
                path,
                expected: "at least the 64-byte config header",
                found: e.to_string(),
            });
            None
        }
    }
}

/// The nearest ancestor directory named like a PCI function: the bridge (or VMD controller) above.
fn parent_function(dir: &Path) -> Option<PciAddress> {
    dir.ancestors()
        .skip(1)
        .map_while(|p| p.file_name()?.to_str())
        .take_while(|name| *name != "devices")
        .find_map(|name| name.parse().ok())
}
