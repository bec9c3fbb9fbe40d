//! PCI functions as sysfs shows them, and enumeration of a host's functions.

use std::path::{Path, PathBuf};

use vfiokit_sysfs::{Error as SysError, SysDir, SysRoot};

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
    /// `reset_method`: the reset methods the kernel will try, in its order (`flr`, `af_flr`,
    /// `pm`, `bus`, `device_specific`, `acpi`, `cxl_bus`), as that file lists them; `None` when
    /// the file is missing (the kernel found no method, or it predates 5.15). See
    /// [`PciScan::reset_methods`] for the answer that accounts for older kernels.
    pub reset_method: Option<Vec<String>>,
    /// Whether `reset_method` was looked for: always by [`scan`], only where asked by
    /// [`scan_with`]`(`[`ResetMethods::Later`]`)` and [`PciScan::read_reset_methods`].
    pub reset_method_read: bool,
    /// SR-IOV state of a physical function (one with the SR-IOV capability).
    pub sriov: Option<Sriov>,
    /// Mediated device types the function offers (`mdev_supported_types`; i915 with GVT-g).
    /// Only read below drivers that can have them; empty otherwise.
    pub mdev_types: Vec<MdevType>,
    /// Capabilities from the binary `config` file, when it was readable.
    pub config: Option<ConfigSpace>,
}

/// SR-IOV state of a physical function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sriov {
    /// How many virtual functions it can have: `sriov_totalvfs`, else the capability's TotalVFs.
    pub total_vfs: u16,
    /// How many are enabled: `sriov_numvfs`, else the capability's NumVFs when VF Enable is set.
    pub num_vfs: u16,
    /// The virtual functions found in the scan (their `physfn` links name this function), sorted.
    pub vfs: Vec<PciAddress>,
}

/// A mediated device type: `mdev_supported_types/<id>/` below the parent function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdevType {
    /// The type directory's name, the string Proxmox's `mdev=` takes (`i915-GVTg_V5_4`).
    pub id: String,
    /// Its `name` file (`GVTg_V5_4`); empty when missing.
    pub name: String,
    /// Its `description` file (resolution, memory sizes); empty when missing.
    pub description: String,
    /// `available_instances`: how many more can be created now.
    pub available_instances: u32,
    /// How many exist: the entries of its `devices/` directory.
    pub instances_in_use: u32,
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
    /// Whether any function on this root has a `reset_method` file: the kernel (5.15 and later)
    /// says which reset each function has, and one without the file has none. A scan that left
    /// the files for later settles it when it reads them.
    pub has_reset_method_files: bool,
    /// Whether every function listed in `/sys/bus/pci/devices` was read, its `iommu_group` link
    /// included (absent, or naming a numbered group): the IOMMU groups' PCI members can then be
    /// taken from these links instead of listing every group directory.
    pub iommu_links_complete: bool,
}

impl PciScan {
    /// The function at `address`.
    pub fn get(&self, address: PciAddress) -> Option<&PciDevice> {
        self.devices
            .binary_search_by_key(&address, |d| d.address)
            .ok()
            .map(|i| &self.devices[i])
    }

    /// The reset methods of `device`, names as the kernel's `reset_method` spells them.
    ///
    /// On a root whose functions carry `reset_method` files ([`PciScan::has_reset_method_files`]),
    /// exactly what the function's file lists, and none for a function without one (the kernel
    /// hides the file when it found no method). On a root without any (kernels before 5.15,
    /// generated hosts), what config space and topology allow, in the kernel's order:
    /// - `flr`: Function Level Reset in the PCI Express Device Capabilities;
    /// - `af_flr`: the Advanced Features capability with Transactions Pending and FLR;
    /// - `pm`: a PM capability without No_Soft_Reset (D3hot→D0 resets the function);
    /// - `bus`: the function is not a bridge, its parent is a bridge (not a root bus, nor a VMD
    ///   controller's) and it is the only function on its bus, as `pci_parent_bus_reset`
    ///   requires (a multi-function card gets none).
    ///
    /// Quirks (`device_specific`), ACPI `_RST` and CXL are not guessed.
    ///
    /// `None` when the root has the files but this function's was not read (a scan that left
    /// them for later, see [`PciScan::read_reset_methods`]).
    pub fn reset_methods(&self, device: &PciDevice) -> Option<Vec<String>> {
        if self.has_reset_method_files {
            return device
                .reset_method_read
                .then(|| device.reset_method.clone().unwrap_or_default());
        }
        if self.devices.iter().any(|d| !d.reset_method_read) {
            return None;
        }
        let mut methods: Vec<&str> = Vec::new();
        let Some(cs) = &device.config else {
            return Some(Vec::new());
        };
        if cs.pcie.is_some() && cs.pcie_flr {
            methods.push("flr");
        }
        if cs.af_flr {
            methods.push("af_flr");
        }
        if cs.pm && !cs.pm_no_soft_reset {
            methods.push("pm");
        }
        let bus = |d: &PciDevice| (d.address.domain, d.address.bus);
        let alone = self
            .devices
            .iter()
            .all(|d| d.address == device.address || bus(d) != bus(device));
        let behind_bridge = device
            .parent
            .and_then(|p| self.get(p))
            .is_some_and(PciDevice::is_bridge);
        if behind_bridge && !device.is_bridge() && alone {
            methods.push("bus");
        }
        Some(methods.into_iter().map(str::to_string).collect())
    }

    /// Reads the `reset_method` file of every function `wanted` picks that a scan with
    /// [`ResetMethods::Later`] left unread, and settles [`PciScan::has_reset_method_files`]: when
    /// none of the picked functions has a file, the others are read in address order until one
    /// has (on a kernel with the files, nearly always the first), or all were (an older kernel).
    pub fn read_reset_methods(&mut self, root: &SysRoot, wanted: impl Fn(&PciDevice) -> bool) {
        let read = |d: &mut PciDevice, problems: &mut Vec<SysError>| {
            if !d.reset_method_read {
                d.reset_method = read_reset_method(&root.no_dir(), &d.sysfs_path, problems);
                d.reset_method_read = true;
            }
            d.reset_method.is_some()
        };
        let mut found = false;
        for d in self.devices.iter_mut().filter(|d| wanted(d)) {
            found |= read(d, &mut self.problems);
        }
        for d in &mut self.devices {
            if found {
                break;
            }
            found = read(d, &mut self.problems);
        }
        self.has_reset_method_files = self.devices.iter().any(|d| d.reset_method.is_some());
    }
}

/// Whether a scan reads each function's `reset_method` file (three system calls where it
/// exists) or leaves it to [`PciScan::read_reset_methods`] for the functions a caller needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResetMethods {
    /// Every function's, as [`scan`] does.
    #[default]
    Now,
    /// None yet.
    Later,
}

/// A function's `reset_method` file as a list, `None` when it does not exist.
fn read_reset_method(at: &SysDir, dir: &Path, problems: &mut Vec<SysError>) -> Option<Vec<String>> {
    note(problems, at.read_attr_opt(&dir.join("reset_method")))
        .flatten()
        .map(|m| m.split_whitespace().map(str::to_string).collect())
}

/// Reads every function listed in `/sys/bus/pci/devices`. Only a missing or unreadable
/// `/sys/bus/pci/devices` itself is an error; everything else becomes a problem in the scan.
pub fn scan(root: &SysRoot) -> Result<PciScan, SysError> {
    scan_with(root, ResetMethods::Now)
}

/// [`scan`], reading the `reset_method` files now or leaving them for
/// [`PciScan::read_reset_methods`] (a planner needs them only for the functions a VM holds).
pub fn scan_with(root: &SysRoot, reset: ResetMethods) -> Result<PciScan, SysError> {
    let dir = root.sys_bus_devices("pci");
    let mut scan = PciScan::default();
    let mut resolver = DeviceDirs::new(root, &dir);
    let no_dir = root.no_dir();
    let mut all_read = true;
    let mut groups_read = true;
    let mut sriov_known = true;
    let mut confirmed = Vec::new();
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
        let read = match resolver.resolve(&path) {
            Some(real) => {
                let at = resolver.current.as_ref().map_or(&no_dir, |(_, d)| d);
                read_function(root, at, address, real, reset, &mut scan.problems)
            }
            None => note(&mut scan.problems, root.resolve(&path)).and_then(|real| {
                read_function(root, &no_dir, address, real, reset, &mut scan.problems)
            }),
        };
        let Some((device, how)) = read else {
            all_read = false;
            continue;
        };
        groups_read &= how.group_read;
        sriov_known &= how.sriov_known;
        confirmed.push(how.confirmed);
        scan.devices.push(device);
    }
    // A VF's `physfn` link names its physical function. Where every function's SR-IOV
    // capability is known (its config space read whole, extended capabilities included), the VFs
    // are where the kernel puts them (`pci_iov_virtfn_bus`/`devfn`: the PF's routing id plus
    // First VF Offset plus VF Stride for each) and no link need be read; otherwise (config space
    // cut to 64 bytes for a user without CAP_SYS_ADMIN, an unreadable function) every link is.
    if all_read && sriov_known {
        derive_physfn(&mut scan.devices);
    } else {
        for (d, confirmed) in scan.devices.iter_mut().zip(confirmed) {
            d.physfn = note(
                &mut scan.problems,
                link_in(root, &no_dir, &d.sysfs_path, "physfn", confirmed),
            )
            .flatten()
            .and_then(|n| n.parse().ok());
        }
    }
    scan.devices.sort_by_key(|d| d.address);
    scan.has_reset_method_files = scan.devices.iter().any(|d| d.reset_method.is_some());
    scan.iommu_links_complete = all_read && groups_read;
    // Each physical function's VFs are the functions whose `physfn` names it.
    let vfs: Vec<(PciAddress, PciAddress)> = scan
        .devices
        .iter()
        .filter_map(|d| Some((d.physfn?, d.address)))
        .collect();
    for (pf, vf) in vfs {
        if let Ok(i) = scan.devices.binary_search_by_key(&pf, |d| d.address)
            && let Some(sriov) = &mut scan.devices[i].sriov
        {
            sriov.vfs.push(vf);
        }
    }
    Ok(scan)
}

/// Sets each VF's `physfn` from its physical function's SR-IOV capability, as the kernel numbers
/// VFs: routing id `PF + First VF Offset + i × VF Stride` for `i` below the enabled count, in the
/// PF's domain. Addresses with no scanned function (or past bus 255) are skipped.
fn derive_physfn(devices: &mut [PciDevice]) {
    let index: std::collections::HashMap<PciAddress, usize> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| (d.address, i))
        .collect();
    let mut found = Vec::new();
    for pf in devices.iter() {
        let (Some(sriov), Some(cap)) = (&pf.sriov, pf.config.as_ref().and_then(|c| c.sriov)) else {
            continue;
        };
        let a = pf.address;
        let rid = u32::from(a.bus) << 8 | u32::from(a.device) << 3 | u32::from(a.function);
        for n in 0..u32::from(sriov.num_vfs) {
            let vf = rid + u32::from(cap.first_offset) + n * u32::from(cap.stride);
            let Ok(bus) = u8::try_from(vf >> 8) else {
                break;
            };
            let vf = PciAddress {
                domain: a.domain,
                bus,
                device: ((vf >> 3) & 0x1f) as u8,
                function: (vf & 7) as u8,
            };
            if let Some(&i) = index.get(&vf) {
                found.push((i, a));
            }
        }
    }
    for (i, pf) in found {
        devices[i].physfn = Some(pf);
    }
}

/// Resolves `sys/bus/pci/devices/<addr>` links in one system call instead of a realpath
/// (about fifteen): read the link, join its relative target onto the canonical bus directory,
/// and accept the result when its parent directory is known canonical (resolved once per
/// parent: all functions behind one bridge share it). The function's own directory is then
/// only opened through the root's confined reads, which refuse it if it is a link out of the
/// root. Anything else returns `None`, and the caller takes the full `SysRoot::resolve`, which
/// reports escapes and dangling links.
///
/// The parent directory last resolved stays open ([`SysDir`]): the functions behind one bridge
/// come one after the other in address order, and their files are opened relative to it.
struct DeviceDirs<'a> {
    root: &'a SysRoot,
    bus: Option<SysDir<'a>>,
    parents: std::collections::HashMap<PathBuf, bool>,
    current: Option<(PathBuf, SysDir<'a>)>,
}

impl<'a> DeviceDirs<'a> {
    fn new(root: &'a SysRoot, bus: &Path) -> DeviceDirs<'a> {
        DeviceDirs {
            root,
            bus: root.open_dir(bus).ok(),
            parents: std::collections::HashMap::new(),
            current: None,
        }
    }

    fn resolve(&mut self, link: &Path) -> Option<PathBuf> {
        let bus = self.bus.as_ref()?;
        // Named below the directory's real path, the link is read relative to its handle.
        let target = bus.read_link(&bus.path().join(link.file_name()?)).ok()??;
        if !target.is_relative() {
            return None;
        }
        let real = vfiokit_sysfs::join_lexically(bus.path(), &target)?;
        let parent = real.parent()?;
        if self.current.as_ref().is_some_and(|(p, _)| p == parent) {
            return Some(real);
        }
        if self.parents.get(parent) == Some(&false) {
            return None;
        }
        let opened = self
            .root
            .open_dir(parent)
            .ok()
            .filter(|d| d.path() == parent);
        self.parents.insert(parent.to_path_buf(), opened.is_some());
        self.current = Some((parent.to_path_buf(), opened?));
        Some(real)
    }
}

/// Keeps the value, or records the problem and gives `None`.
fn note<T>(problems: &mut Vec<SysError>, result: Result<T, SysError>) -> Option<T> {
    result.map_err(|e| problems.push(e)).ok()
}

/// An optional hex attribute that must fit in 16 bits (`subsystem_vendor`, `revision`).
fn hex16(at: &SysDir, path: PathBuf, problems: &mut Vec<SysError>) -> Option<u16> {
    let text = note(problems, at.read_attr_opt(&path))??;
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
fn required16(at: &SysDir, path: PathBuf, problems: &mut Vec<SysError>) -> Option<u16> {
    let value = note(problems, at.read_hex(&path))?;
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
    let no_dir = root.no_dir();
    let (mut device, how) =
        read_function(root, &no_dir, address, dir, ResetMethods::Now, problems)?;
    device.physfn = note(
        problems,
        link_in(root, &no_dir, &device.sysfs_path, "physfn", how.confirmed),
    )
    .flatten()
    .and_then(|n| n.parse().ok());
    Some(device)
}

/// How a function was read, for the scan's decisions about the whole host.
struct HowRead {
    /// A confined read in its directory succeeded: the directory lies inside the root.
    confirmed: bool,
    /// Its `iommu_group` link was read (absent, or naming a numbered group).
    group_read: bool,
    /// Its config space was read whole and well formed: any SR-IOV capability is known.
    sriov_known: bool,
}

/// What a function's `uevent` says, as `pci_uevent` in the kernel's `drivers/pci/pci-driver.c`
/// writes it: `DRIVER=` (only when bound), `PCI_CLASS=%04X`, `PCI_ID=%04X:%04X`,
/// `PCI_SUBSYS_ID=%04X:%04X`, `PCI_SLOT_NAME=`, `MODALIAS=`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Uevent {
    driver: Option<String>,
    class: Option<u32>,
    id: Option<(u16, u16)>,
    subsystem: Option<(u16, u16)>,
    modalias: Option<String>,
}

fn hex_pair(value: &str) -> Option<(u16, u16)> {
    let (a, b) = value.split_once(':')?;
    let a = u16::try_from(vfiokit_sysfs::parse_hex(a)?).ok()?;
    let b = u16::try_from(vfiokit_sysfs::parse_hex(b)?).ok()?;
    Some((a, b))
}

impl Uevent {
    /// Parses the `KEY=value` lines; a known key whose value does not parse is an `Err` naming it.
    fn parse(text: &str) -> Result<Uevent, String> {
        let mut u = Uevent::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let bad = || line.to_string();
            match key {
                "DRIVER" => u.driver = Some(value.to_string()),
                "PCI_CLASS" => {
                    let class = vfiokit_sysfs::parse_hex(value)
                        .and_then(|c| u32::try_from(c).ok())
                        .filter(|c| *c <= 0xff_ffff)
                        .ok_or_else(bad)?;
                    u.class = Some(class);
                }
                "PCI_ID" => u.id = Some(hex_pair(value).ok_or_else(bad)?),
                "PCI_SUBSYS_ID" => u.subsystem = Some(hex_pair(value).ok_or_else(bad)?),
                "MODALIAS" => u.modalias = Some(value.to_string()),
                _ => {}
            }
        }
        Ok(u)
    }
}

/// Reads one function from its real directory (links already resolved inside the root).
///
/// On a real kernel two reads carry nearly everything: `uevent` (driver, class, ids, subsystem
/// ids, modalias, all from the kernel's `struct pci_dev`, the same source as the attribute files
/// `lspci` reads) and `config` (revision, capabilities), plus the `iommu_group` link. Where
/// `uevent` is missing (an older recording) or lacks a key, the attribute files (`vendor`,
/// `device`, `class`, `subsystem_*`, `modalias`, the `driver` link) are read instead. Where the
/// two could disagree (a driver bound between the reads), `uevent` wins: it is one consistent
/// snapshot. The revision is config byte 8 (the `revision` file is the same byte, read at
/// enumeration), the file only when the config space is unreadable.
fn read_function(
    root: &SysRoot,
    at: &SysDir,
    address: PciAddress,
    dir: PathBuf,
    reset: ResetMethods,
    problems: &mut Vec<SysError>,
) -> Option<(PciDevice, HowRead)> {
    let uevent_path = dir.join("uevent");
    let uevent = match note(problems, at.read_attr_opt(&uevent_path)).flatten() {
        Some(text) => Uevent::parse(&text)
            .map_err(|line| {
                problems.push(SysError::Parse {
                    path: uevent_path.clone(),
                    expected: "KEY=value lines as pci_uevent writes them",
                    found: line,
                })
            })
            .ok(),
        None => None,
    };
    let has_uevent = uevent.is_some();
    let uevent = uevent.unwrap_or_default();
    let (vendor, device) = match uevent.id {
        Some((v, d)) => (Some(v), Some(d)),
        None => (
            required16(at, dir.join("vendor"), problems),
            required16(at, dir.join("device"), problems),
        ),
    };
    let class = match uevent.class {
        Some(c) => ClassCode::new(c),
        None => {
            let class_path = dir.join("class");
            note(problems, at.read_hex(&class_path)).and_then(|c| {
                let class = u32::try_from(c).ok().and_then(ClassCode::new);
                if class.is_none() {
                    problems.push(SysError::Parse {
                        path: class_path,
                        expected: "a 24-bit class code",
                        found: format!("{c:#x}"),
                    });
                }
                class
            })
        }
    };
    let (Some(vendor), Some(device), Some(class)) = (vendor, device, class) else {
        return None;
    };
    let (subsystem_vendor, subsystem_device) = match uevent.subsystem {
        Some((v, d)) => (Some(VendorId(v)), Some(DeviceId(d))),
        None => (
            hex16(at, dir.join("subsystem_vendor"), problems).map(VendorId),
            hex16(at, dir.join("subsystem_device"), problems).map(DeviceId),
        ),
    };
    let problems_before = problems.len();
    let config = read_config(at, &dir, problems);
    let sriov_known = problems.len() == problems_before
        && config
            .as_ref()
            .is_some_and(|(cs, _)| cs.len >= 256 && !cs.extended_unreadable);
    // The kernel writes DRIVER= only for a bound function; without it, look at the link: one
    // `readlink` finds none (`uevent` was just read in `dir`, which is therefore inside the
    // root), and a link that exists after all is resolved in full.
    let driver_link = dir.join("driver");
    let driver = match uevent.driver {
        Some(d) => Some(d),
        None if has_uevent && matches!(at.read_link(&driver_link), Ok(None)) => None,
        None => note(problems, root.link_name(&driver_link)).flatten(),
    };
    let modalias = match uevent.modalias {
        Some(m) => Some(m),
        None => note(problems, at.read_attr_opt(&dir.join("modalias"))).flatten(),
    };
    let boot_vga = if class.is_display() {
        note(problems, at.read_attr_opt(&dir.join("boot_vga")))
            .flatten()
            .map(|v| v.trim() == "1")
    } else {
        None
    };
    // A confined read in `dir` succeeded, so `dir` lies inside the root: its links may be read
    // with one `readlink` each (see `fast_link_name`).
    let confirmed = has_uevent || config.is_some();
    let group_link = dir.join("iommu_group");
    let mut group_read = true;
    let iommu_group = note(problems, link_in(root, at, &dir, "iommu_group", confirmed))
        .or_else(|| {
            group_read = false;
            None
        })
        .flatten()
        .and_then(|name| match name.parse::<u32>() {
            Ok(g) => Some(g),
            Err(_) => {
                group_read = false;
                problems.push(SysError::Parse {
                    path: group_link,
                    expected: "a link to a numbered IOMMU group",
                    found: name,
                });
                None
            }
        });
    let revision = match &config {
        Some((_, rev)) => Some(*rev),
        None => hex16(at, dir.join("revision"), problems).and_then(|r| u8::try_from(r).ok()),
    };
    let reset_method_read = reset == ResetMethods::Now;
    let reset_method = if reset_method_read {
        read_reset_method(at, &dir, problems)
    } else {
        None
    };
    let config = config.map(|(cs, _)| cs);
    let sriov = config
        .as_ref()
        .and_then(|c| c.sriov)
        .map(|cap| read_sriov(at, &dir, cap, problems));
    // Only vfio-pci and the vfio variant drivers (`mlx5_vfio_pci`, …) make a vfio-dev directory.
    let vfio_dev = driver.as_deref().is_some_and(|d| d.contains("vfio"))
        && note(problems, at.exists(&dir.join("vfio-dev"))).unwrap_or(false);
    // Mediated device types exist only below drivers that register a parent (i915's GVT-g).
    let mdev_types = if driver.as_deref() == Some("i915") {
        read_mdev_types(root, &dir, problems)
    } else {
        Vec::new()
    };
    let device = PciDevice {
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
        physfn: None, // set by the caller, from the link or the PF's SR-IOV capability
        vfio_dev,
        // The ROM BAR matters for display devices (a VM needs their ROM); others are not read.
        rom_bar: if class.is_display() {
            rom_bar(at, &dir, problems)
        } else {
            None
        },
        reset_method,
        reset_method_read,
        sriov,
        mdev_types,
        config,
        sysfs_path: dir,
    };
    let how = HowRead {
        confirmed,
        group_read,
        sriov_known,
    };
    Some((device, how))
}

/// The SR-IOV state of a physical function: totals from `sriov_totalvfs`/`sriov_numvfs` where
/// sysfs has them (what the kernel enabled), else from the capability; the VFs are filled in by
/// the scan from their `physfn` links.
fn read_sriov(
    at: &SysDir,
    dir: &Path,
    cap: config::SriovCap,
    problems: &mut Vec<SysError>,
) -> Sriov {
    let mut number = |name: &str| {
        let path = dir.join(name);
        let text = note(problems, at.read_attr_opt(&path)).flatten()?;
        match text.trim().parse::<u16>() {
            Ok(n) => Some(n),
            Err(_) => {
                problems.push(SysError::Parse {
                    path,
                    expected: "a decimal count of virtual functions",
                    found: text,
                });
                None
            }
        }
    };
    let total_vfs = number("sriov_totalvfs").unwrap_or(cap.total_vfs);
    let num_vfs = number("sriov_numvfs").unwrap_or(if cap.enabled { cap.num_vfs } else { 0 });
    Sriov {
        total_vfs,
        num_vfs,
        vfs: Vec::new(),
    }
}

/// `mdev_supported_types/<id>/{name,description,available_instances,devices/}`.
fn read_mdev_types(root: &SysRoot, dir: &Path, problems: &mut Vec<SysError>) -> Vec<MdevType> {
    let types_dir = dir.join("mdev_supported_types");
    let ids = note(problems, root.list_opt(&types_dir)).unwrap_or_default();
    let mut types = Vec::new();
    for id in ids {
        let t = types_dir.join(&id);
        let text = |name: &str, problems: &mut Vec<SysError>| {
            note(problems, root.read_attr_opt(&t.join(name)))
                .flatten()
                .unwrap_or_default()
        };
        let name = text("name", problems);
        let description = text("description", problems);
        let available = text("available_instances", problems);
        let available_instances = match available.trim().parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                problems.push(SysError::Parse {
                    path: t.join("available_instances"),
                    expected: "a decimal number of instances",
                    found: available,
                });
                0
            }
        };
        let in_use = note(problems, root.list_opt(&t.join("devices"))).unwrap_or_default();
        types.push(MdevType {
            id,
            name,
            description,
            available_instances,
            instances_in_use: u32::try_from(in_use.len()).unwrap_or(u32::MAX),
        });
    }
    types
}

/// The last component of the link `name` in the device directory `dir`, or `None` without one.
///
/// When `dir` is `confirmed` inside the root (a confined read in it succeeded), one `readlink`:
/// a relative target that stays inside the root lexically gives its last component, without
/// checking that the target exists (the kernel makes no dangling `physfn` or `iommu_group`
/// link). Otherwise, or for a target that is absolute or climbs out, `SysRoot::link_name`
/// resolves it fully and reports escapes and dangling links.
fn link_in(
    root: &SysRoot,
    at: &SysDir,
    dir: &Path,
    name: &str,
    confirmed: bool,
) -> Result<Option<String>, SysError> {
    let link = dir.join(name);
    if !confirmed {
        return root.link_name(&link);
    }
    let Some(target) = at.read_link(&link)? else {
        return Ok(None);
    };
    let inside = target.is_relative()
        && vfiokit_sysfs::join_lexically(dir, &target).is_some_and(|t| root.relative(&t).is_some());
    match target.file_name().and_then(|n| n.to_str()) {
        Some(last) if inside => Ok(Some(last.to_string())),
        _ => root.link_name(&link),
    }
}

/// Reads the ROM BAR line of `resource` (the seventh: six BARs, then the ROM).
fn rom_bar(at: &SysDir, dir: &Path, problems: &mut Vec<SysError>) -> Option<bool> {
    let path = dir.join("resource");
    let text = note(problems, at.read_attr_opt(&path)).flatten()?;
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
fn read_config(at: &SysDir, dir: &Path, problems: &mut Vec<SysError>) -> Option<(ConfigSpace, u8)> {
    let path = dir.join("config");
    let bytes = match at.read_bytes(&path) {
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
