//! Mediated devices (VFIO mdev): the types a parent PCI function offers and their instances.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::tree::Tree;

/// One mediated device type of a parent function, as the kernel lists it under
/// `sys/bus/pci/devices/<addr>/mdev_supported_types/<id>/`, with the instances created from it.
///
/// ```
/// use vfiokit_fakesys::MdevType;
/// let t = MdevType::new("i915-GVTg_V5_8", "GVTg_V5_8", "low_gm_size: 64MB\n", 1)
///     .instance("00000000-0000-0000-0000-000000000100", "intel_vgpu_mdev");
/// assert_eq!(t.id(), "i915-GVTg_V5_8");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdevType {
    id: String,
    name: String,
    description: String,
    available_instances: u32,
    device_api: String,
    instances: Vec<(String, String)>,
}

impl MdevType {
    /// The type directory `id` (the string `mdev=` takes: parent driver, `-`, type name), its
    /// `name` file, its `description` file (written as given; the kernel's ends in a newline)
    /// and `available_instances`. `device_api` is `vfio-pci`.
    pub fn new(id: &str, name: &str, description: &str, available_instances: u32) -> MdevType {
        MdevType {
            id: id.to_string(),
            name: name.to_string(),
            description: description.to_string(),
            available_instances,
            device_api: "vfio-pci".to_string(),
            instances: Vec::new(),
        }
    }

    /// The type directory's name.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// An instance of this type: a `<uuid>/` directory below the parent function with an
    /// `mdev_type` link, bound to the mdev driver `driver` (`intel_vgpu_mdev` for GVT-g), and a
    /// link to it in the type's `devices/` and in `sys/bus/mdev/devices/`.
    pub fn instance(mut self, uuid: &str, driver: &str) -> MdevType {
        self.instances.push((uuid.to_string(), driver.to_string()));
        self
    }
}

/// Writes the types of the parent function in `dir` (address `addr`) and their instances;
/// instances are added to `drivers` (mdev driver name → instances) for `sys/bus/mdev/drivers/`.
pub(crate) fn write(
    t: &mut Tree,
    dir: &Path,
    addr: &str,
    types: &[MdevType],
    drivers: &mut BTreeMap<String, Vec<(String, PathBuf)>>,
) {
    if types.is_empty() {
        return;
    }
    t.link(format!("sys/class/mdev_bus/{addr}"), dir);
    for ty in types {
        let tdir = dir.join("mdev_supported_types").join(&ty.id);
        t.attr(tdir.join("name"), &ty.name);
        t.file(tdir.join("description"), ty.description.as_bytes());
        t.attr(tdir.join("available_instances"), ty.available_instances);
        t.attr(tdir.join("device_api"), &ty.device_api);
        t.file(tdir.join("create"), "");
        for (uuid, driver) in &ty.instances {
            let idir = dir.join(uuid);
            t.link(idir.join("mdev_type"), &tdir);
            t.link(idir.join("subsystem"), "sys/bus/mdev");
            t.link(
                idir.join("driver"),
                format!("sys/bus/mdev/drivers/{driver}"),
            );
            t.file(idir.join("remove"), "");
            t.file(
                idir.join("uevent"),
                format!("DRIVER={driver}\nMDEV_TYPE={}\n", ty.id),
            );
            t.link(tdir.join("devices").join(uuid), &idir);
            t.link(format!("sys/bus/mdev/devices/{uuid}"), &idir);
            drivers
                .entry(driver.clone())
                .or_default()
                .push((uuid.clone(), idir));
        }
    }
}
