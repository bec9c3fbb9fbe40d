//! IOMMU groups, whether a VM can have one, and what leaves the host with a device.

use vfiokit_pci::{PciAddress, PciDevice, PciScan};
use vfiokit_sysfs::{Error as SysError, SysRoot};

/// An IOMMU group: the smallest set of functions the IOMMU can isolate from the rest.
/// A VM gets all of a group or none of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IommuGroup {
    /// The group number. Numbers can have gaps; never assume they are dense.
    pub id: u32,
    /// Its functions, sorted.
    pub devices: Vec<PciAddress>,
}

/// Reads `/sys/kernel/iommu_groups/<n>/devices/`. Entries that are not numbers or addresses
/// become problems. Groups are sorted by number.
pub fn read_groups(root: &SysRoot, problems: &mut Vec<SysError>) -> Vec<IommuGroup> {
    read_groups_with(root, None, problems)
}

/// Like [`read_groups`], but a group that some scanned function's `iommu_group` link names
/// takes its members from those links when the scan read every function's link
/// ([`PciScan::iommu_links_complete`]): the kernel lists a PCI function in a group's `devices/`
/// exactly when its link names that group. Only `iommu_groups/` itself and the groups no
/// scanned function names are listed: one directory instead of one per group (5 517 at 10 000
/// functions).
pub fn read_groups_scanned(
    root: &SysRoot,
    pci: &PciScan,
    problems: &mut Vec<SysError>,
) -> Vec<IommuGroup> {
    if !pci.iommu_links_complete {
        return read_groups(root, problems);
    }
    let mut members: std::collections::HashMap<u32, Vec<PciAddress>> =
        std::collections::HashMap::new();
    for d in &pci.devices {
        if let Some(g) = d.iommu_group {
            members.entry(g).or_default().push(d.address);
        }
    }
    read_groups_with(root, Some(members), problems)
}

fn read_groups_with(
    root: &SysRoot,
    mut known: Option<std::collections::HashMap<u32, Vec<PciAddress>>>,
    problems: &mut Vec<SysError>,
) -> Vec<IommuGroup> {
    let dir = root.sys_iommu_groups();
    let names = root.list_opt(&dir).unwrap_or_else(|e| {
        problems.push(e);
        Vec::new()
    });
    let mut groups = Vec::new();
    for name in names {
        let Ok(id) = name.parse::<u32>() else {
            problems.push(SysError::Parse {
                path: dir.join(&name),
                expected: "a numbered IOMMU group",
                found: name,
            });
            continue;
        };
        if let Some(mut devices) = known.as_mut().and_then(|k| k.remove(&id)) {
            devices.sort();
            groups.push(IommuGroup { id, devices });
            continue;
        }
        let devices_dir = dir.join(&name).join("devices");
        let mut devices = Vec::new();
        for entry in root.list_opt(&devices_dir).unwrap_or_else(|e| {
            problems.push(e);
            Vec::new()
        }) {
            match entry.parse::<PciAddress>() {
                Ok(a) => devices.push(a),
                Err(_) => problems.push(SysError::Parse {
                    path: devices_dir.join(&entry),
                    expected: "a PCI address",
                    found: entry,
                }),
            }
        }
        devices.sort();
        groups.push(IommuGroup { id, devices });
    }
    groups.sort_by_key(|g| g.id);
    groups
}

/// Why one member keeps its group from being given to a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    /// The member.
    pub address: PciAddress,
    /// Why, in words ("bound to e1000e, a host driver").
    pub reason: String,
}

/// Whether the kernel (5.19 and later) lets VFIO use a group now: every member has no driver,
/// or a driver that lets VFIO manage DMA — vfio-pci or a vfio variant driver, pci-stub, pcieport.
pub fn viability(group: &IommuGroup, pci: &PciScan) -> Vec<Blocker> {
    group
        .devices
        .iter()
        .filter_map(|&address| {
            let reason = match pci.get(address) {
                None => "listed in the group but not readable in /sys/bus/pci/devices".to_string(),
                Some(d) => member_blocks(d)?,
            };
            Some(Blocker { address, reason })
        })
        .collect()
}

fn member_blocks(d: &PciDevice) -> Option<String> {
    match d.driver.as_deref() {
        None => None,
        Some(_) if d.driver_is_vfio_safe() => None,
        Some(drv) => Some(format!("bound to {drv}, a host driver")),
    }
}

/// Another function that leaves the host when a device is given to a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollateralDevice {
    /// The function.
    pub address: PciAddress,
    /// A bridge (root or switch port): it stays with pcieport and is not given to the VM, but
    /// cannot be used by the host for anything else either.
    pub bridge: bool,
}

/// The other members of `device`'s IOMMU group: what the host loses along with it.
/// `None` when the device has no IOMMU group (no IOMMU, or not a device the IOMMU translates).
pub fn collateral(
    device: &PciDevice,
    groups: &[IommuGroup],
    pci: &PciScan,
) -> Option<Vec<CollateralDevice>> {
    let id = device.iommu_group?;
    let group = find_group(groups, id)?;
    // Members and scanned devices are both sorted by address: walk them together, looking each
    // member up from where the previous one was found (usually the very next device, as the
    // functions of one card are), instead of a fresh binary search per member.
    let devices = &pci.devices;
    let mut next = 0; // where to look for the next member
    let mut out = Vec::with_capacity(group.devices.len().saturating_sub(1));
    for &address in &group.devices {
        if next > 0 && devices.get(next - 1).is_some_and(|d| address < d.address) {
            next = 0; // not sorted after all: search from the start
        }
        if devices.get(next).is_none_or(|d| d.address != address) {
            next += devices[next..].partition_point(|d| d.address < address);
        }
        let found = devices.get(next).filter(|d| d.address == address);
        if found.is_some() {
            next += 1;
        }
        if address != device.address {
            let bridge = found.is_some_and(|d| d.is_bridge());
            out.push(CollateralDevice { address, bridge });
        }
    }
    Some(out)
}

/// The group numbered `id`: by binary search, as groups are kept sorted by number (a slice that
/// is not sorted still finds it, by a linear search). Thousands of groups are common on hosts
/// with SR-IOV; a linear search for each device made the collateral of every device quadratic.
pub(crate) fn find_group(groups: &[IommuGroup], id: u32) -> Option<&IommuGroup> {
    match groups.binary_search_by_key(&id, |g| g.id) {
        Ok(i) => Some(&groups[i]),
        Err(_) => groups.iter().find(|g| g.id == id),
    }
}
