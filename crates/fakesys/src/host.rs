//! The [`Host`] builder and how it lays everything out under a root.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::block::{Disk, DiskBus, DmVolume};
use crate::net::{NetIf, NetKind};
use crate::pci::{Bdf, PciFn, VfLayout, invalid};
use crate::tree::Tree;
use crate::usb::{UsbDev, UsbIf};

/// Per physical function (by index) its VFs' layout; per virtual function its PF and its number.
type SriovLayout = (HashMap<usize, VfLayout>, HashMap<usize, (usize, usize)>);

/// An Intel VT-d remapping unit (`sys/class/iommu/dmarN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarUnit {
    /// `dmar0`, `dmar1`…
    pub name: String,
    /// The capability register (`intel-iommu/cap`).
    pub cap: u64,
    /// The extended capability register (`intel-iommu/ecap`); bit 3 is interrupt remapping.
    pub ecap: u64,
    /// The register base address (`intel-iommu/address`).
    pub address: u64,
}

/// An AMD-Vi unit (`sys/class/iommu/ivhdN`), which is itself a PCI function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmdUnit {
    /// `ivhd0`…
    pub name: String,
    /// The PCI function of the IOMMU (`0000:00:00.2`); it must be added with [`Host::pci`].
    pub pci: String,
    /// The capability header (`amd-iommu/cap`).
    pub cap: u32,
    /// The extended feature register (`amd-iommu/features`).
    pub features: u64,
}

/// Which IOMMU the host has and whether it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Iommu {
    /// No IOMMU (or disabled): no `class/iommu` entries, no groups, no `iommu_group` links.
    None,
    /// Intel VT-d with these DMAR units. With two or more, the first serves graphics on bus 0
    /// (as on Intel client platforms) and the last serves everything else.
    Intel(Vec<DmarUnit>),
    /// AMD-Vi with these units; every device is served by the first.
    Amd(Vec<AmdUnit>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    iface: String,
    dest: Ipv4Addr,
    prefix: u8,
    gateway: Option<Ipv4Addr>,
    metric: u32,
}

/// A Linux host to write under a directory: kernel, command line, PCI functions, IOMMU, USB,
/// network, block devices, `/proc` files and any extra file.
///
/// Setters take `&mut self` and return it, so calls chain or stand alone. Nothing is checked
/// until [`Host::write`], which fails (naming the culprit) on an invalid PCI address, a parent
/// or USB hub that was not added, and similar inconsistencies.
#[derive(Debug, Clone)]
pub struct Host {
    release: String,
    cmdline: String,
    iommu: Iommu,
    pci: Vec<PciFn>,
    pci_drivers: Vec<String>,
    usb: Vec<UsbDev>,
    net: Vec<NetIf>,
    disks: Vec<Disk>,
    dms: Vec<DmVolume>,
    routes: Vec<Route>,
    mounts: Vec<String>,
    aliases: Vec<String>,
    params: Vec<(String, String, String)>,
    files: Vec<(PathBuf, Vec<u8>)>,
    links: Vec<(PathBuf, PathBuf)>,
    module_deps: Vec<String>,
}

impl Default for Host {
    fn default() -> Host {
        Host::new()
    }
}

impl Host {
    /// A Proxmox VE 8 host running `6.8.12-11-pve`, booted with
    /// `BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet`, without IOMMU
    /// and without devices.
    pub fn new() -> Host {
        Host {
            release: "6.8.12-11-pve".to_string(),
            cmdline: "BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet"
                .to_string(),
            iommu: Iommu::None,
            pci: Vec::new(),
            pci_drivers: Vec::new(),
            usb: Vec::new(),
            net: Vec::new(),
            disks: Vec::new(),
            dms: Vec::new(),
            routes: Vec::new(),
            mounts: Vec::new(),
            aliases: Vec::new(),
            params: Vec::new(),
            files: Vec::new(),
            links: Vec::new(),
            module_deps: Vec::new(),
        }
    }

    /// The kernel release (`proc/sys/kernel/osrelease`, `lib/modules/<release>/`).
    pub fn kernel_release(&mut self, release: &str) -> &mut Host {
        self.release = release.to_string();
        self
    }

    /// The kernel command line (`proc/cmdline`). `iommu=pt` in it makes the groups' default
    /// domain `identity` instead of `DMA-FQ`.
    pub fn cmdline(&mut self, cmdline: &str) -> &mut Host {
        self.cmdline = cmdline.to_string();
        self
    }

    /// The IOMMU.
    pub fn iommu(&mut self, iommu: Iommu) -> &mut Host {
        self.iommu = iommu;
        self
    }

    /// Adds a PCI function.
    pub fn pci(&mut self, function: PciFn) -> &mut Host {
        self.pci.push(function);
        self
    }

    /// The PCI functions added so far, in the order they were added.
    pub fn pci_functions(&self) -> &[PciFn] {
        &self.pci
    }

    /// The PCI function added at `addr`, to change it after the fact (a recorded state derived
    /// from another).
    pub fn pci_function_mut(&mut self, addr: &str) -> Option<&mut PciFn> {
        self.pci.iter_mut().find(|f| f.addr == addr)
    }

    /// Registers a PCI driver that is loaded even if no function is bound to it
    /// (`sys/bus/pci/drivers/<name>/` exists).
    pub fn pci_driver(&mut self, name: &str) -> &mut Host {
        self.pci_drivers.push(name.to_string());
        self
    }

    /// Adds a USB device (its bus must belong to a controller marked with [`PciFn::xhci`]).
    pub fn usb(&mut self, device: UsbDev) -> &mut Host {
        self.usb.push(device);
        self
    }

    /// Adds a network interface; `ifindex` follows the order of calls, after `lo` (1).
    pub fn net(&mut self, iface: NetIf) -> &mut Host {
        self.net.push(iface);
        self
    }

    /// Adds a disk.
    pub fn disk(&mut self, disk: Disk) -> &mut Host {
        self.disks.push(disk);
        self
    }

    /// Adds a device-mapper volume; the first is `dm-0`.
    pub fn dm(&mut self, volume: DmVolume) -> &mut Host {
        self.dms.push(volume);
        self
    }

    /// The default route through `iface` via `gateway` (a row of `proc/net/route`).
    pub fn route_default(&mut self, iface: &str, gateway: impl Into<Ipv4Addr>) -> &mut Host {
        self.route(iface, Ipv4Addr::UNSPECIFIED, 0, Some(gateway.into()))
    }

    /// A route to `dest/prefix` through `iface`, via `gateway` or directly connected.
    pub fn route(
        &mut self,
        iface: &str,
        dest: impl Into<Ipv4Addr>,
        prefix: u8,
        gateway: Option<Ipv4Addr>,
    ) -> &mut Host {
        self.routes.push(Route {
            iface: iface.to_string(),
            dest: dest.into(),
            prefix: prefix.min(32),
            gateway,
            metric: 0,
        });
        self
    }

    /// A mount (`proc/mounts`) with the options Proxmox uses for that filesystem type.
    pub fn mount(&mut self, device: &str, dir: &str, fstype: &str) -> &mut Host {
        let options = match fstype {
            "ext4" => "rw,relatime,errors=remount-ro",
            "vfat" => {
                "rw,relatime,fmask=0022,dmask=0022,codepage=437,iocharset=iso8859-1,shortname=mixed,errors=remount-ro"
            }
            "fuse" => {
                "rw,nosuid,nodev,relatime,user_id=0,group_id=0,default_permissions,allow_other"
            }
            "zfs" => "rw,relatime,xattr,noacl,casesensitive",
            _ => "rw,relatime",
        };
        self.mount_with(device, dir, fstype, options)
    }

    /// A mount with explicit options.
    pub fn mount_with(
        &mut self,
        device: &str,
        dir: &str,
        fstype: &str,
        options: &str,
    ) -> &mut Host {
        self.mounts
            .push(format!("{device} {dir} {fstype} {options} 0 0"));
        self
    }

    /// A line `alias <pattern> <module>` of `modules.alias`, e.g.
    /// `alias("pci:v00008086d00003E92sv*sd*bc*sc*i*", "i915")`.
    pub fn alias(&mut self, pattern: &str, module: &str) -> &mut Host {
        self.aliases.push(format!("alias {pattern} {module}"));
        self
    }

    /// A loaded module's parameter (`sys/module/<module>/parameters/<param>`), e.g.
    /// `vfio_iommu_type1`, `allow_unsafe_interrupts`, `Y`.
    pub fn module_param(&mut self, module: &str, param: &str, value: &str) -> &mut Host {
        self.params
            .push((module.to_string(), param.to_string(), value.to_string()));
        self
    }

    /// Any other file under the root (`etc/default/grub`), written as given.
    pub fn file(&mut self, path: &str, contents: impl Into<Vec<u8>>) -> &mut Host {
        self.files
            .push((PathBuf::from(path.trim_start_matches('/')), contents.into()));
        self
    }

    /// Any other symbolic link under the root, e.g. `dev/disk/by-id/nvme-…-part3` to
    /// `dev/nvme0n1p3`: both paths are relative to the root, and the link is written relative
    /// (`../../nvme0n1p3`). The target need not exist (device nodes are not recorded).
    pub fn link(&mut self, path: &str, target: &str) -> &mut Host {
        self.links.push((
            PathBuf::from(path.trim_start_matches('/')),
            PathBuf::from(target.trim_start_matches('/')),
        ));
        self
    }

    /// A line of `lib/modules/<release>/modules.dep`, as depmod writes it:
    /// `kernel/drivers/gpu/drm/i915/kvmgt.ko: kernel/drivers/vfio/mdev/mdev.ko …`. The file is
    /// only written when a line was added.
    pub fn module_dep(&mut self, line: &str) -> &mut Host {
        self.module_deps.push(line.to_string());
        self
    }

    /// Writes the host under `dir` (which is created if needed).
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        self.tree()?.write(dir)
    }

    /// Writes the host into a new temporary directory and opens it as a root.
    pub fn write_temp(&self) -> io::Result<(tempfile::TempDir, vfiokit_sysfs::SysRoot)> {
        let dir = tempfile::tempdir()?;
        self.write(dir.path())?;
        let root = vfiokit_sysfs::SysRoot::new(dir.path()).map_err(io::Error::other)?;
        Ok((dir, root))
    }

    /// Everything the host consists of, as paths relative to the root.
    pub(crate) fn tree(&self) -> io::Result<Tree> {
        let mut t = Tree::default();
        let pci_dirs = self.write_pci(&mut t)?;
        self.write_iommu(&mut t, &pci_dirs)?;
        self.write_usb(&mut t, &pci_dirs)?;
        self.write_net(&mut t, &pci_dirs)?;
        self.write_block(&mut t, &pci_dirs)?;
        self.write_proc(&mut t);
        for (module, param, value) in &self.params {
            t.attr(format!("sys/module/{module}/parameters/{param}"), value);
        }
        for (path, bytes) in &self.files {
            t.file(path, bytes.clone());
        }
        for (path, target) in &self.links {
            t.link(path, target);
        }
        Ok(t)
    }

    /// Whether `token` is one of the command line's words.
    fn cmdline_has(&self, token: &str) -> bool {
        self.cmdline.split_whitespace().any(|w| w == token)
    }

    /// The index of every PCI function by address; an address added twice is an error.
    fn pci_index(&self) -> io::Result<HashMap<&str, usize>> {
        let mut index = HashMap::with_capacity(self.pci.len());
        for (i, f) in self.pci.iter().enumerate() {
            if index.insert(f.addr.as_str(), i).is_some() {
                return Err(invalid(format!("PCI function {} added twice", f.addr)));
            }
        }
        Ok(index)
    }

    /// The directory of every PCI function relative to the root, in the order they were added.
    fn pci_dirs(&self, index: &HashMap<&str, usize>, bdfs: &[Bdf]) -> io::Result<Vec<PathBuf>> {
        let mut dirs: Vec<Option<PathBuf>> = vec![None; self.pci.len()];
        for i in 0..self.pci.len() {
            // The chain of functions up to one whose directory is known or that has no parent.
            let mut chain = vec![i];
            while let Some(&cur) = chain.last() {
                if dirs[cur].is_some() {
                    chain.pop();
                    break;
                }
                let Some(parent) = &self.pci[cur].parent else {
                    break;
                };
                if chain.len() > 33 {
                    return Err(invalid(format!(
                        "{}: parent bridges form a loop",
                        self.pci[i].addr
                    )));
                }
                let p = *index.get(parent.as_str()).ok_or_else(|| {
                    invalid(format!("PCI function {parent} was not added to the host"))
                })?;
                chain.push(p);
            }
            for &cur in chain.iter().rev() {
                let (f, bdf) = (&self.pci[cur], &bdfs[cur]);
                let dir = match &f.parent {
                    None => PathBuf::from("sys/devices")
                        .join(bdf.host_bridge())
                        .join(&f.addr),
                    Some(parent) => {
                        let p = index[parent.as_str()];
                        // `chain` lists ancestors before descendants, so the parent's directory
                        // is known; a cycle in `.parent()` links would break that: an error.
                        let Some(pdir) = dirs[p].as_ref() else {
                            return Err(invalid(format!(
                                "{}: parent {parent} is its own ancestor",
                                f.addr
                            )));
                        };
                        if bdfs[p].domain != bdf.domain {
                            pdir.join(bdf.host_bridge()).join(&f.addr)
                        } else if !self.pci[p].is_bridge() {
                            return Err(invalid(format!(
                                "{}: parent {} is not a bridge",
                                f.addr, self.pci[p].addr
                            )));
                        } else {
                            pdir.join(&f.addr)
                        }
                    }
                };
                dirs[cur] = Some(dir);
            }
        }
        Ok(dirs.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// The subordinate bus number of every function: the highest bus behind it in its domain
    /// (its own secondary bus at least; 0 for an endpoint).
    fn subordinates(&self, index: &HashMap<&str, usize>, bdfs: &[Bdf]) -> Vec<u8> {
        let mut sub: Vec<u8> = self
            .pci
            .iter()
            .map(|f| f.secondary_bus.unwrap_or(0).max(f.subordinate.unwrap_or(0)))
            .collect();
        for (g, gb) in self.pci.iter().zip(bdfs) {
            let highest = gb.bus.max(g.secondary_bus.unwrap_or(0));
            let mut cur = g.parent.as_deref();
            for _ in 0..32 {
                let Some(&p) = cur.and_then(|a| index.get(a)) else {
                    break;
                };
                if bdfs[p].domain == gb.domain {
                    sub[p] = sub[p].max(highest);
                }
                cur = self.pci[p].parent.as_deref();
            }
        }
        sub
    }

    /// For each physical function, how its virtual functions are laid out; and for each
    /// virtual function, its index among its PF's.
    fn sriov_layout(&self, index: &HashMap<&str, usize>, bdfs: &[Bdf]) -> io::Result<SriovLayout> {
        let rid = |b: &Bdf| (u32::from(b.bus) << 8) | (u32::from(b.dev) << 3) | u32::from(b.func);
        let mut vfs_of: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut vf_index = HashMap::new();
        for (i, f) in self.pci.iter().enumerate() {
            let Some(pf) = &f.physfn else { continue };
            let p = *index.get(pf.as_str()).ok_or_else(|| {
                invalid(format!("{}: physical function {pf} was not added", f.addr))
            })?;
            if self.pci[p].sriov_total().is_none() {
                return Err(invalid(format!(
                    "{}: physical function {pf} has no SR-IOV capability",
                    f.addr
                )));
            }
            let list = vfs_of.entry(p).or_default();
            vf_index.insert(i, (p, list.len()));
            list.push(i);
        }
        let mut layouts = HashMap::new();
        for (p, vfs) in &vfs_of {
            let pf_rid = rid(&bdfs[*p]);
            let first = rid(&bdfs[vfs[0]]);
            let stride = vfs
                .get(1)
                .map_or(1, |v| rid(&bdfs[*v]).saturating_sub(first));
            layouts.insert(
                *p,
                VfLayout {
                    num_vfs: u16::try_from(vfs.len()).unwrap_or(u16::MAX),
                    offset: u16::try_from(first.saturating_sub(pf_rid)).unwrap_or(0),
                    stride: u16::try_from(stride).unwrap_or(0),
                },
            );
        }
        Ok((layouts, vf_index))
    }

    fn write_pci(&self, t: &mut Tree) -> io::Result<BTreeMap<String, PathBuf>> {
        let mut dirs = BTreeMap::new();
        let mut drivers: BTreeMap<String, Vec<(String, PathBuf)>> = BTreeMap::new();
        for d in &self.pci_drivers {
            drivers.entry(d.clone()).or_default();
        }
        let bdfs: Vec<Bdf> = self
            .pci
            .iter()
            .map(|f| Bdf::parse(&f.addr))
            .collect::<io::Result<_>>()?;
        let index = self.pci_index()?;
        let fn_dirs = self.pci_dirs(&index, &bdfs)?;
        let subordinates = self.subordinates(&index, &bdfs);
        let (vf_layouts, vf_index) = self.sriov_layout(&index, &bdfs)?;
        let mut per_slot: HashMap<(u32, u8, u8), usize> = HashMap::new();
        let mut per_bus: HashMap<(u32, u8), usize> = HashMap::new();
        let mut mdev_drivers: BTreeMap<String, Vec<(String, PathBuf)>> = BTreeMap::new();
        for (f, b) in self.pci.iter().zip(&bdfs) {
            // A virtual function is not a function of its slot: the PF stays single-function.
            if f.physfn.is_none() {
                *per_slot.entry((b.domain, b.bus, b.dev)).or_default() += 1;
            }
            *per_bus.entry((b.domain, b.bus)).or_default() += 1;
        }
        for (i, (f, bdf)) in self.pci.iter().zip(&bdfs).enumerate() {
            let dir = fn_dirs[i].clone();
            let multifunction = per_slot
                .get(&(bdf.domain, bdf.bus, bdf.dev))
                .is_some_and(|n| *n > 1);
            let subordinate = subordinates[i];
            let vfs = vf_layouts.get(&i).copied().unwrap_or_default();
            let config = f.config_with(
                multifunction,
                (bdf.bus, f.secondary_bus.unwrap_or(0), subordinate),
                vfs,
            )?;
            let alone_on_bus = f.parent.is_some() && per_bus[&(bdf.domain, bdf.bus)] == 1;
            let class = f.class;
            t.attr(dir.join("vendor"), format!("{:#06x}", f.vendor));
            t.attr(dir.join("device"), format!("{:#06x}", f.device));
            t.attr(dir.join("class"), format!("{class:#08x}"));
            t.attr(
                dir.join("subsystem_vendor"),
                format!("{:#06x}", f.subsystem.0),
            );
            t.attr(
                dir.join("subsystem_device"),
                format!("{:#06x}", f.subsystem.1),
            );
            t.attr(dir.join("revision"), format!("{:#04x}", f.revision));
            t.attr(dir.join("irq"), f.irq);
            t.attr(dir.join("numa_node"), f.numa_node);
            t.attr(
                dir.join("enable"),
                u8::from(f.driver.is_some() || f.is_bridge()),
            );
            t.attr(dir.join("modalias"), f.modalias());
            t.attr(dir.join("driver_override"), "(null)");
            t.attr(dir.join("local_cpulist"), "0-5");
            t.attr(dir.join("local_cpus"), "3f");
            t.attr(dir.join("d3cold_allowed"), 1);
            t.attr(dir.join("msi_bus"), 1);
            t.attr(dir.join("power_state"), "D0");
            t.attr(dir.join("broken_parity_status"), 0);
            t.file(dir.join("resource"), f.resource());
            t.file(dir.join("config"), config);
            t.file(dir.join("remove"), "");
            t.file(dir.join("rescan"), "");
            if class >> 8 == 0x0300 {
                t.attr(dir.join("boot_vga"), u8::from(f.boot_vga.unwrap_or(false)));
            }
            let methods = match &f.reset_override {
                Some(list) => list.iter().map(String::as_str).collect(),
                None => f.reset_methods(alone_on_bus),
            };
            if !methods.is_empty() {
                t.file(dir.join("reset"), "");
                t.attr(dir.join("reset_method"), methods.join(" "));
            }
            if let Some(label) = &f.label {
                t.attr(dir.join("label"), label);
            }
            crate::mdev::write(t, &dir, &f.addr, &f.mdev_types, &mut mdev_drivers);
            if let Some(sec) = f.secondary_bus {
                t.attr(dir.join("secondary_bus_number"), sec);
                t.attr(dir.join("subordinate_bus_number"), subordinate);
            }
            let mut uevent = String::new();
            if let Some(d) = &f.driver {
                uevent.push_str(&format!("DRIVER={d}\n"));
            }
            uevent.push_str(&format!(
                "PCI_CLASS={class:X}\nPCI_ID={:04X}:{:04X}\nPCI_SUBSYS_ID={:04X}:{:04X}\nPCI_SLOT_NAME={}\nMODALIAS={}\n",
                f.vendor,
                f.device,
                f.subsystem.0,
                f.subsystem.1,
                f.addr,
                f.modalias()
            ));
            t.file(dir.join("uevent"), uevent);
            t.link(dir.join("subsystem"), "sys/bus/pci");
            t.link(format!("sys/bus/pci/devices/{}", f.addr), &dir);
            if let Some(d) = &f.driver {
                t.link(dir.join("driver"), format!("sys/bus/pci/drivers/{d}"));
                drivers
                    .entry(d.clone())
                    .or_default()
                    .push((f.addr.clone(), dir.clone()));
            }
            if f.vfio_dev {
                t.attr(dir.join("vfio-dev/vfio0/dev"), "511:0");
            }
            if let Some((total, vf_device)) = f.sriov_total() {
                t.attr(dir.join("sriov_totalvfs"), total);
                t.attr(dir.join("sriov_numvfs"), vfs.num_vfs);
                t.attr(dir.join("sriov_offset"), vfs.offset);
                t.attr(dir.join("sriov_stride"), vfs.stride);
                t.attr(dir.join("sriov_vf_device"), format!("{vf_device:x}"));
                t.attr(dir.join("sriov_drivers_autoprobe"), 1);
                t.attr(dir.join("sriov_vf_total_msix"), 0);
            }
            if let Some(&(pf, n)) = vf_index.get(&i) {
                t.link(dir.join("physfn"), &fn_dirs[pf]);
                t.link(fn_dirs[pf].join(format!("virtfn{n}")), &dir);
            }
            dirs.insert(f.addr.clone(), dir);
        }
        for name in ["drivers_probe", "rescan", "resource_alignment"] {
            t.file(format!("sys/bus/pci/{name}"), "");
        }
        t.attr("sys/bus/pci/drivers_autoprobe", 1);
        for (driver, devices) in drivers {
            write_driver(t, "pci", &driver, &devices);
        }
        for (driver, devices) in mdev_drivers {
            write_driver(t, "mdev", &driver, &devices);
        }
        Ok(dirs)
    }

    fn write_iommu(&self, t: &mut Tree, dirs: &BTreeMap<String, PathBuf>) -> io::Result<()> {
        let unit_dirs: Vec<PathBuf> = match &self.iommu {
            Iommu::None => return Ok(()),
            Iommu::Intel(units) => units
                .iter()
                .map(|u| {
                    let dir = PathBuf::from("sys/devices/virtual/iommu").join(&u.name);
                    t.attr(dir.join("intel-iommu/cap"), format!("{:x}", u.cap));
                    t.attr(dir.join("intel-iommu/ecap"), format!("{:x}", u.ecap));
                    t.attr(dir.join("intel-iommu/version"), "1:0");
                    t.attr(dir.join("intel-iommu/address"), format!("{:x}", u.address));
                    t.link(format!("sys/class/iommu/{}", u.name), &dir);
                    dir
                })
                .collect(),
            Iommu::Amd(units) => {
                let mut out = Vec::new();
                for u in units {
                    let pci = dirs.get(&u.pci).ok_or_else(|| {
                        invalid(format!(
                            "{}: IOMMU PCI function {} was not added",
                            u.name, u.pci
                        ))
                    })?;
                    let dir = pci.join("iommu").join(&u.name);
                    t.attr(dir.join("amd-iommu/cap"), format!("{:x}", u.cap));
                    t.attr(
                        dir.join("amd-iommu/features"),
                        format!("{:x}:0", u.features),
                    );
                    t.link(format!("sys/class/iommu/{}", u.name), &dir);
                    out.push(dir);
                }
                out
            }
        };
        let domain = if self.cmdline_has("iommu=pt") {
            "identity"
        } else {
            "DMA-FQ"
        };
        let regions = match self.iommu {
            Iommu::Amd(_) => {
                "0x00000000fee00000 0x00000000feefffff msi\n0x000000fd00000000 0x000000ffffffffff reserved\n"
            }
            _ => "0x00000000fee00000 0x00000000feefffff msi\n",
        };
        for f in &self.pci {
            let (Some(group), Some(dir)) = (f.group, dirs.get(&f.addr)) else {
                continue;
            };
            let gdir = PathBuf::from(format!("sys/kernel/iommu_groups/{group}"));
            t.attr(gdir.join("type"), domain);
            t.file(gdir.join("reserved_regions"), regions);
            t.link(gdir.join("devices").join(&f.addr), dir);
            t.link(dir.join("iommu_group"), &gdir);
            let bdf = Bdf::parse(&f.addr)?;
            let gfx =
                f.class >> 16 == 0x03 && bdf.domain == 0 && bdf.bus == 0 && unit_dirs.len() > 1;
            let unit = match (&self.iommu, gfx) {
                (Iommu::Intel(_), false) => unit_dirs.last(),
                _ => unit_dirs.first(),
            };
            // The AMD IOMMU's own function holds `iommu/ivhdN`; the kernel gives it no group.
            let is_unit =
                matches!(&self.iommu, Iommu::Amd(units) if units.iter().any(|u| u.pci == f.addr));
            if is_unit {
                return Err(invalid(format!(
                    "{}: the AMD IOMMU function cannot be in a group",
                    f.addr
                )));
            }
            if let Some(unit) = unit {
                t.link(dir.join("iommu"), unit);
                t.link(unit.join("devices").join(&f.addr), dir);
            }
        }
        Ok(())
    }

    fn write_usb(&self, t: &mut Tree, dirs: &BTreeMap<String, PathBuf>) -> io::Result<()> {
        let mut controllers: Vec<(Bdf, &PciFn)> = Vec::new();
        for f in self.pci.iter().filter(|f| f.xhci.is_some()) {
            controllers.push((Bdf::parse(&f.addr)?, f));
        }
        controllers.sort_by_key(|(b, _)| *b);
        let mut drivers: BTreeMap<String, Vec<(String, PathBuf)>> = BTreeMap::new();
        let mut dev_dirs: BTreeMap<String, PathBuf> = BTreeMap::new();
        let (major, minor) = kernel_version(&self.release);
        for (i, (_, ctrl)) in controllers.iter().enumerate() {
            let Some((usb2_ports, usb3_ports)) = ctrl.xhci else {
                continue;
            };
            let Some(cdir) = dirs.get(&ctrl.addr) else {
                continue;
            };
            for (k, (ports, speed, product)) in [
                (usb2_ports, "480", 0x0002u16),
                (usb3_ports, "10000", 0x0003),
            ]
            .into_iter()
            .enumerate()
            {
                let bus = 2 * i + k + 1;
                let name = format!("usb{bus}");
                let mut hub = UsbDev::hub(&name, 0x1d6b, product, ports)
                    .class(0x09, 0, if k == 0 { 1 } else { 3 })
                    .speed(speed)
                    .bcd_device(((major as u16) << 8) | minor as u16)
                    .manufacturer(&format!("Linux {} xhci-hcd", self.release))
                    .product("xHCI Host Controller")
                    .serial(&ctrl.addr)
                    .devnum(1);
                hub.interfaces = vec![UsbIf::new(0x09, "hub")];
                let dir = cdir.join(&name);
                write_usb_device(
                    t,
                    &hub,
                    &dir,
                    bus as u32,
                    1,
                    "0",
                    &format!("{bus}-0"),
                    &mut drivers,
                );
                dev_dirs.insert(format!("{bus}-root"), dir);
            }
        }
        let mut next_devnum: BTreeMap<u32, u32> = BTreeMap::new();
        for dev in &self.usb {
            let bad = || {
                invalid(format!(
                    "invalid USB port path {:?}, expected BUS-PORT[.PORT…]",
                    dev.path
                ))
            };
            let (bus, ports) = dev.path.split_once('-').ok_or_else(bad)?;
            let bus: u32 = bus.parse().map_err(|_| bad())?;
            if ports.is_empty() || !ports.split('.').all(|p| p.parse::<u8>().is_ok()) {
                return Err(bad());
            }
            let parent_key = match ports.rsplit_once('.') {
                Some((up, _)) => format!("{bus}-{up}"),
                None => format!("{bus}-root"),
            };
            let parent = dev_dirs.get(&parent_key).ok_or_else(|| {
                invalid(format!(
                    "USB device {}: no parent {} (add the hub, or a controller with PciFn::xhci)",
                    dev.path, parent_key
                ))
            })?;
            let dir = parent.join(&dev.path);
            let counter = next_devnum.entry(bus).or_insert(2);
            let devnum = dev.devnum.unwrap_or(*counter);
            *counter = devnum.max(*counter) + 1;
            write_usb_device(t, dev, &dir, bus, devnum, ports, &dev.path, &mut drivers);
            dev_dirs.insert(dev.path.clone(), dir);
        }
        for (driver, devices) in drivers {
            write_driver(t, "usb", &driver, &devices);
        }
        Ok(())
    }

    fn write_net(&self, t: &mut Tree, dirs: &BTreeMap<String, PathBuf>) -> io::Result<()> {
        let lo = NetIf {
            name: "lo".to_string(),
            kind: NetKind::Virtual(772),
            mac: "00:00:00:00:00:00".to_string(),
            up: true,
            mtu: 65536,
        };
        let all: Vec<&NetIf> = std::iter::once(&lo).chain(self.net.iter()).collect();
        let mut net_dirs: BTreeMap<&str, PathBuf> = BTreeMap::new();
        for iface in &all {
            let dir = match &iface.kind {
                NetKind::Pci(addr) => dirs
                    .get(addr)
                    .ok_or_else(|| {
                        invalid(format!("{}: PCI function {addr} was not added", iface.name))
                    })?
                    .join("net")
                    .join(&iface.name),
                _ => PathBuf::from("sys/devices/virtual/net").join(&iface.name),
            };
            net_dirs.insert(&iface.name, dir);
        }
        for (index, iface) in all.iter().enumerate() {
            let dir = &net_dirs[iface.name.as_str()];
            let ifindex = index + 1;
            let (arp_type, mac) = match &iface.kind {
                NetKind::Virtual(ty) => (*ty, iface.mac.clone()),
                NetKind::Pci(_) => (1, iface.mac.clone()),
                NetKind::Bridge(ports) => {
                    let first = ports
                        .first()
                        .and_then(|p| all.iter().find(|i| &i.name == p));
                    (1, first.map(|i| i.mac.clone()).unwrap_or_default())
                }
            };
            let is_lo = iface.name == "lo";
            let operstate = if !iface.up {
                "down"
            } else if is_lo || arp_type == 65534 {
                "unknown"
            } else {
                "up"
            };
            let broadcast = match arp_type {
                65534 => String::new(),
                772 => mac.clone(),
                _ => "ff:ff:ff:ff:ff:ff".to_string(),
            };
            let flags = match (is_lo, iface.up, arp_type) {
                (true, _, _) => 0x9,
                (_, true, 65534) => 0x1091,
                (_, true, _) => 0x1003,
                (_, false, _) => 0x1002,
            };
            t.attr(dir.join("address"), &mac);
            t.attr(dir.join("addr_len"), if arp_type == 65534 { 0 } else { 6 });
            t.attr(dir.join("broadcast"), broadcast);
            t.attr(dir.join("carrier"), u8::from(iface.up));
            t.attr(dir.join("dormant"), 0);
            t.attr(dir.join("flags"), format!("{flags:#x}"));
            t.attr(dir.join("ifindex"), ifindex);
            t.attr(dir.join("iflink"), ifindex);
            t.attr(dir.join("mtu"), iface.mtu);
            t.attr(dir.join("operstate"), operstate);
            t.attr(dir.join("type"), arp_type);
            t.attr(dir.join("tx_queue_len"), 1000);
            let devtype = if matches!(iface.kind, NetKind::Bridge(_)) {
                "DEVTYPE=bridge\n"
            } else {
                ""
            };
            t.file(
                dir.join("uevent"),
                format!("{devtype}INTERFACE={}\nIFINDEX={ifindex}\n", iface.name),
            );
            t.link(dir.join("subsystem"), "sys/class/net");
            t.link(format!("sys/class/net/{}", iface.name), dir);
            if let NetKind::Pci(addr) = &iface.kind
                && let Some(pci) = dirs.get(addr)
            {
                t.link(dir.join("device"), pci);
            }
            if let NetKind::Bridge(ports) = &iface.kind {
                t.attr(
                    dir.join("bridge/bridge_id"),
                    format!("8000.{}", mac.replace(':', "")),
                );
                t.attr(dir.join("bridge/forward_delay"), 0);
                t.attr(dir.join("bridge/stp_state"), 0);
                t.attr(dir.join("bridge/root_port"), 0);
                for (n, port) in ports.iter().enumerate() {
                    let pdir = net_dirs.get(port.as_str()).ok_or_else(|| {
                        invalid(format!("bridge {}: port {port} was not added", iface.name))
                    })?;
                    t.attr(pdir.join("brport/state"), 3);
                    t.attr(pdir.join("brport/port_no"), format!("{:#x}", n + 1));
                    t.link(pdir.join("brport/bridge"), dir);
                    t.link(pdir.join("master"), dir);
                    t.link(pdir.join(format!("upper_{}", iface.name)), dir);
                    t.link(dir.join("brif").join(port), pdir.join("brport"));
                    t.link(dir.join(format!("lower_{port}")), pdir);
                }
            }
        }
        Ok(())
    }

    fn write_block(&self, t: &mut Tree, dirs: &BTreeMap<String, PathBuf>) -> io::Result<()> {
        let mut block_dirs: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut sd_index = 0u32;
        let mut nvme_minor = 0u32;
        for disk in &self.disks {
            let ctrl = dirs.get(&disk.controller).ok_or_else(|| {
                invalid(format!(
                    "disk {}: controller {} was not added",
                    disk.name, disk.controller
                ))
            })?;
            let dir = ctrl.join(disk.sub_path());
            let (major, first_minor) = match disk.bus {
                DiskBus::Sata(_) => {
                    sd_index += 1;
                    (8, 16 * (sd_index - 1))
                }
                DiskBus::Nvme => {
                    nvme_minor += 1 + disk.partitions.len() as u32;
                    (259, nvme_minor - 1 - disk.partitions.len() as u32)
                }
            };
            write_block_dev(t, &dir, &disk.name, major, first_minor, disk.size, "disk");
            t.attr(dir.join("removable"), 0);
            t.attr(dir.join("range"), if major == 8 { 16 } else { 0 });
            t.attr(dir.join("queue/rotational"), u8::from(disk.rotational));
            t.link(format!("sys/block/{}", disk.name), &dir);
            if let Some(device) = dir.parent().and_then(Path::parent) {
                t.link(dir.join("device"), device);
                t.attr(device.join("model"), &disk.model);
                if let DiskBus::Sata(_) = disk.bus {
                    t.attr(device.join("vendor"), "ATA     ");
                } else {
                    t.link(device.join("device"), ctrl);
                    t.attr(device.join("address"), &disk.controller);
                }
            }
            block_dirs.insert(disk.name.clone(), dir.clone());
            let mut start = 2048u64;
            for (i, size) in disk.partitions.iter().enumerate() {
                let n = i + 1;
                let name = disk.partition_name(n);
                let pdir = dir.join(&name);
                write_block_dev(
                    t,
                    &pdir,
                    &name,
                    major,
                    first_minor + n as u32,
                    *size,
                    "partition",
                );
                t.attr(pdir.join("partition"), n);
                t.attr(pdir.join("start"), start);
                start += size;
                block_dirs.insert(name, pdir);
            }
        }
        for (i, dm) in self.dms.iter().enumerate() {
            let name = format!("dm-{i}");
            let dir = PathBuf::from("sys/devices/virtual/block").join(&name);
            write_block_dev(t, &dir, &name, 252, i as u32, dm.size, "disk");
            t.attr(dir.join("dm/name"), &dm.name);
            t.attr(dir.join("dm/uuid"), &dm.uuid);
            t.attr(dir.join("dm/suspended"), 0);
            t.attr(dir.join("removable"), 0);
            t.link(format!("sys/block/{name}"), &dir);
            for slave in &dm.slaves {
                let sdir = block_dirs
                    .get(slave)
                    .ok_or_else(|| invalid(format!("{}: slave {slave} was not added", dm.name)))?;
                t.link(dir.join("slaves").join(slave), sdir);
                t.link(sdir.join("holders").join(&name), &dir);
            }
            block_dirs.insert(name, dir);
        }
        Ok(())
    }

    fn write_proc(&self, t: &mut Tree) {
        t.attr("proc/cmdline", &self.cmdline);
        t.attr("proc/sys/kernel/osrelease", &self.release);
        let mut route = format!(
            "{:<127}\n",
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
        );
        for r in &self.routes {
            let mask = if r.prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(r.prefix))
            };
            let flags = if r.gateway.is_some() { 0x3 } else { 0x1 };
            let row = format!(
                "{}\t{:08X}\t{:08X}\t{flags:04X}\t0\t0\t{}\t{:08X}\t0\t0\t0",
                r.iface,
                proc_hex(u32::from(r.dest) & mask),
                proc_hex(r.gateway.map_or(0, u32::from)),
                r.metric,
                proc_hex(mask),
            );
            route.push_str(&format!("{row:<127}\n"));
        }
        t.file("proc/net/route", route);
        t.file("proc/mounts", self.mounts_file());
        let mut alias = String::from("# Aliases extracted from modules themselves.\n");
        for line in &self.aliases {
            alias.push_str(line);
            alias.push('\n');
        }
        t.file(format!("lib/modules/{}/modules.alias", self.release), alias);
        if !self.module_deps.is_empty() {
            let mut dep = String::new();
            for line in &self.module_deps {
                dep.push_str(line);
                dep.push('\n');
            }
            t.file(format!("lib/modules/{}/modules.dep", self.release), dep);
        }
    }

    /// `proc/mounts`: the system mounts of a Proxmox host around the ones added. The root
    /// filesystem comes right after `/run`, as systemd mounts it early; the others follow the
    /// system mounts in the order added.
    fn mounts_file(&self) -> String {
        const EARLY: &str = "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,relatime 0 0
udev /dev devtmpfs rw,nosuid,relatime,size=8038876k,nr_inodes=2009719,mode=755,inode64 0 0
devpts /dev/pts devpts rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=000 0 0
tmpfs /run tmpfs rw,nosuid,nodev,noexec,relatime,size=1614456k,mode=755,inode64 0 0
";
        const SYSTEM: &str = "securityfs /sys/kernel/security securityfs rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /dev/shm tmpfs rw,nosuid,nodev,inode64 0 0
tmpfs /run/lock tmpfs rw,nosuid,nodev,noexec,relatime,size=5120k,inode64 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
pstore /sys/fs/pstore pstore rw,nosuid,nodev,noexec,relatime 0 0
efivarfs /sys/firmware/efi/efivars efivarfs rw,nosuid,nodev,noexec,relatime 0 0
bpf /sys/fs/bpf bpf rw,nosuid,nodev,noexec,relatime,mode=700 0 0
systemd-1 /proc/sys/fs/binfmt_misc autofs rw,relatime,fd=30,pgrp=1,timeout=0,minproto=5,maxproto=5,direct,pipe_ino=1521 0 0
hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0
mqueue /dev/mqueue mqueue rw,nosuid,nodev,noexec,relatime 0 0
debugfs /sys/kernel/debug debugfs rw,nosuid,nodev,noexec,relatime 0 0
tracefs /sys/kernel/tracing tracefs rw,nosuid,nodev,noexec,relatime 0 0
fusectl /sys/fs/fuse/connections fusectl rw,nosuid,nodev,noexec,relatime 0 0
configfs /sys/kernel/config configfs rw,nosuid,nodev,noexec,relatime 0 0
ramfs /run/credentials/systemd-sysusers.service ramfs ro,nosuid,nodev,noexec,relatime,mode=700 0 0
ramfs /run/credentials/systemd-tmpfiles-setup-dev.service ramfs ro,nosuid,nodev,noexec,relatime,mode=700 0 0
ramfs /run/credentials/systemd-sysctl.service ramfs ro,nosuid,nodev,noexec,relatime,mode=700 0 0
ramfs /run/credentials/systemd-tmpfiles-setup.service ramfs ro,nosuid,nodev,noexec,relatime,mode=700 0 0
binfmt_misc /proc/sys/fs/binfmt_misc binfmt_misc rw,nosuid,nodev,noexec,relatime 0 0
sunrpc /run/rpc_pipefs rpc_pipefs rw,relatime 0 0
";
        const LATE: &str = "lxcfs /var/lib/lxcfs fuse.lxcfs rw,nosuid,nodev,relatime,user_id=0,group_id=0,allow_other 0 0
tmpfs /run/user/0 tmpfs rw,nosuid,nodev,relatime,size=1614452k,nr_inodes=403613,mode=700,inode64 0 0
";
        let is_root = |line: &&String| line.split(' ').nth(1) == Some("/");
        let mut out = String::from(EARLY);
        for line in self.mounts.iter().filter(is_root) {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(SYSTEM);
        for line in self.mounts.iter().filter(|l| !is_root(l)) {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(LATE);
        out
    }
}

/// An IPv4 number as `proc/net/route` prints it: the network-order bytes read as a
/// little-endian integer (192.168.10.1 → `010AA8C0`).
fn proc_hex(addr: u32) -> u32 {
    u32::from_le_bytes(addr.to_be_bytes())
}

/// `6.8.12-11-pve` → (6, 8).
fn kernel_version(release: &str) -> (u8, u8) {
    let mut parts = release
        .split(['.', '-'])
        .map(|p| p.parse::<u8>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The module that provides a driver, or `None` when it is built into Proxmox's kernel.
fn module_of(driver: &str) -> Option<String> {
    match driver {
        "pcieport" | "serial" | "usb" | "hub" | "usbfs" | "shpchp" => None,
        "xhci_hcd" => Some("xhci_pci".to_string()),
        "i801_smbus" => Some("i2c_i801".to_string()),
        "intel-spi" => Some("spi_intel_pci".to_string()),
        "intel_pch_thermal" => Some("intel_pch_thermal".to_string()),
        "intel-lpss" => Some("intel_lpss_pci".to_string()),
        "piix4_smbus" => Some("i2c_piix4".to_string()),
        "nvidia-gpu" => Some("i2c_nvidia_gpu".to_string()),
        "intel_vgpu_mdev" => Some("kvmgt".to_string()),
        other => Some(other.replace('-', "_")),
    }
}

/// `sys/bus/<bus>/drivers/<driver>/`: bind/unbind files, device links, the module link.
fn write_driver(t: &mut Tree, bus: &str, driver: &str, devices: &[(String, PathBuf)]) {
    let dir = PathBuf::from(format!("sys/bus/{bus}/drivers/{driver}"));
    for name in ["bind", "unbind", "uevent"] {
        t.file(dir.join(name), "");
    }
    if bus == "pci" {
        t.file(dir.join("new_id"), "");
        t.file(dir.join("remove_id"), "");
    }
    for (name, target) in devices {
        t.link(dir.join(name), target);
    }
    if let Some(module) = module_of(driver) {
        let mdir = PathBuf::from("sys/module").join(&module);
        t.link(dir.join("module"), &mdir);
        t.link(mdir.join("drivers").join(format!("{bus}:{driver}")), &dir);
    }
}

/// A USB device directory with its attributes, interfaces and links.
#[allow(clippy::too_many_arguments)]
fn write_usb_device(
    t: &mut Tree,
    dev: &UsbDev,
    dir: &Path,
    bus: u32,
    devnum: u32,
    devpath: &str,
    if_prefix: &str,
    drivers: &mut BTreeMap<String, Vec<(String, PathBuf)>>,
) {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bcd = dev.bcd_usb();
    t.attr(dir.join("idVendor"), format!("{:04x}", dev.vendor));
    t.attr(dir.join("idProduct"), format!("{:04x}", dev.product));
    t.attr(dir.join("bcdDevice"), format!("{:04x}", dev.bcd_device));
    t.attr(dir.join("bDeviceClass"), format!("{:02x}", dev.class.0));
    t.attr(dir.join("bDeviceSubClass"), format!("{:02x}", dev.class.1));
    t.attr(dir.join("bDeviceProtocol"), format!("{:02x}", dev.class.2));
    t.attr(
        dir.join("bNumInterfaces"),
        format!("{:2}", dev.interfaces.len()),
    );
    t.attr(dir.join("bConfigurationValue"), 1);
    t.attr(dir.join("bNumConfigurations"), 1);
    t.attr(
        dir.join("bmAttributes"),
        format!("{:2x}", if dev.class.0 == 0x09 { 0xe0 } else { 0xa0 }),
    );
    t.attr(dir.join("bMaxPower"), "100mA");
    t.attr(
        dir.join("bMaxPacketSize0"),
        if bcd >= 0x0300 { 9 } else { 64 },
    );
    t.attr(
        dir.join("version"),
        format!("{:2x}.{:02x}", bcd >> 8, bcd & 0xff),
    );
    t.attr(dir.join("busnum"), bus);
    t.attr(dir.join("devnum"), devnum);
    t.attr(dir.join("devpath"), devpath);
    t.attr(dir.join("speed"), &dev.speed);
    t.attr(dir.join("maxchild"), dev.hub_ports);
    t.attr(dir.join("authorized"), 1);
    t.attr(
        dir.join("removable"),
        if devpath == "0" {
            "unknown"
        } else {
            "removable"
        },
    );
    t.attr(
        dir.join("dev"),
        format!("189:{}", (bus - 1) * 128 + devnum - 1),
    );
    if let Some(s) = &dev.manufacturer {
        t.attr(dir.join("manufacturer"), s);
    }
    if let Some(s) = &dev.product_name {
        t.attr(dir.join("product"), s);
    }
    if let Some(s) = &dev.serial {
        t.attr(dir.join("serial"), s);
    }
    t.file(dir.join("descriptors"), dev.descriptors());
    t.file(
        dir.join("uevent"),
        format!(
            "MAJOR=189\nMINOR={}\nDEVNAME=bus/usb/{bus:03}/{devnum:03}\nDEVTYPE=usb_device\nDRIVER=usb\nPRODUCT={:x}/{:x}/{:x}\nTYPE={}/{}/{}\nBUSNUM={bus:03}\nDEVNUM={devnum:03}\n",
            (bus - 1) * 128 + devnum - 1,
            dev.vendor,
            dev.product,
            dev.bcd_device,
            dev.class.0,
            dev.class.1,
            dev.class.2
        ),
    );
    t.link(dir.join("subsystem"), "sys/bus/usb");
    t.link(dir.join("driver"), "sys/bus/usb/drivers/usb");
    t.link(format!("sys/bus/usb/devices/{name}"), dir);
    drivers
        .entry("usb".to_string())
        .or_default()
        .push((name, dir.to_path_buf()));
    for (n, iface) in dev.interfaces.iter().enumerate() {
        let if_name = format!("{if_prefix}:1.{n}");
        let idir = dir.join(&if_name);
        t.attr(idir.join("bInterfaceNumber"), format!("{n:02x}"));
        t.attr(idir.join("bAlternateSetting"), format!("{:2}", 0));
        t.attr(
            idir.join("bNumEndpoints"),
            format!("{:02x}", iface.endpoints),
        );
        t.attr(idir.join("bInterfaceClass"), format!("{:02x}", iface.class));
        t.attr(
            idir.join("bInterfaceSubClass"),
            format!("{:02x}", iface.subclass),
        );
        t.attr(
            idir.join("bInterfaceProtocol"),
            format!("{:02x}", iface.protocol),
        );
        t.attr(idir.join("authorized"), 1);
        t.attr(idir.join("modalias"), dev.interface_modalias(n, iface));
        t.link(idir.join("subsystem"), "sys/bus/usb");
        t.link(format!("sys/bus/usb/devices/{if_name}"), &idir);
        if let Some(d) = &iface.driver {
            t.link(idir.join("driver"), format!("sys/bus/usb/drivers/{d}"));
            drivers.entry(d.clone()).or_default().push((if_name, idir));
        }
    }
}

/// The attributes every block device has.
fn write_block_dev(
    t: &mut Tree,
    dir: &Path,
    name: &str,
    major: u32,
    minor: u32,
    size: u64,
    devtype: &str,
) {
    t.attr(dir.join("dev"), format!("{major}:{minor}"));
    t.attr(dir.join("size"), size);
    t.attr(dir.join("ro"), 0);
    t.file(
        dir.join("uevent"),
        format!("MAJOR={major}\nMINOR={minor}\nDEVNAME={name}\nDEVTYPE={devtype}\n"),
    );
    t.link(dir.join("subsystem"), "sys/class/block");
    t.link(format!("sys/class/block/{name}"), dir);
    t.link(format!("sys/dev/block/{major}:{minor}"), dir);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts;
    use crate::tree::Node;

    fn link(t: &Tree, path: &str) -> String {
        match t.get(path) {
            Some(Node::Link(target)) => target.display().to_string(),
            other => panic!("{path}: expected a link, found {other:?}"),
        }
    }

    fn text(t: &Tree, path: &str) -> String {
        match t.get(path) {
            Some(Node::File(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
            other => panic!("{path}: expected a file, found {other:?}"),
        }
    }

    #[test]
    fn nested_functions_get_depth_correct_links() {
        let t = hosts::intel_dgpu().tree().unwrap();
        let gpu = "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.1";
        assert_eq!(
            link(&t, &format!("{gpu}/driver")),
            "../../../../bus/pci/drivers/snd_hda_intel"
        );
        assert_eq!(
            link(&t, &format!("{gpu}/iommu_group")),
            "../../../../kernel/iommu_groups/1"
        );
        assert_eq!(link(&t, &format!("{gpu}/subsystem")), "../../../../bus/pci");
        assert_eq!(
            link(&t, "sys/bus/pci/devices/0000:01:00.1"),
            "../../../devices/pci0000:00/0000:00:01.0/0000:01:00.1"
        );
        assert_eq!(
            link(&t, "sys/bus/pci/drivers/snd_hda_intel/0000:01:00.1"),
            "../../../../devices/pci0000:00/0000:00:01.0/0000:01:00.1"
        );
        assert_eq!(
            link(&t, "sys/bus/pci/drivers/snd_hda_intel/module"),
            "../../../../module/snd_hda_intel"
        );
        assert_eq!(
            text(
                &t,
                "sys/devices/pci0000:00/0000:00:01.0/subordinate_bus_number"
            ),
            "1\n"
        );
        // Without a driver there is no link; a multi-function endpoint has no bus reset.
        assert_eq!(
            t.get("sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/driver"),
            None
        );
        assert_eq!(
            text(
                &t,
                "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/reset_method"
            ),
            "pm\n"
        );
    }

    #[test]
    fn vmd_domain_nests_below_the_vmd_function() {
        let t = hosts::intel_vmd().tree().unwrap();
        let nvme = "sys/devices/pci0000:00/0000:00:0e.0/pci10000:e0/10000:e0:1d.0/10000:e1:00.0";
        assert_eq!(
            link(&t, "sys/bus/pci/devices/10000:e1:00.0"),
            format!("../../../{}", &nvme[4..])
        );
        assert_eq!(
            link(&t, &format!("{nvme}/driver")),
            "../../../../../../bus/pci/drivers/nvme"
        );
        assert_eq!(
            link(&t, "sys/block/nvme0n1"),
            format!("../{}/nvme/nvme0/nvme0n1", &nvme[4..])
        );
    }

    #[test]
    fn groups_take_their_default_domain_from_the_cmdline() {
        let fresh = hosts::elitedesk_800_g4(hosts::State::Fresh).tree().unwrap();
        let conf = hosts::elitedesk_800_g4(hosts::State::Configured)
            .tree()
            .unwrap();
        assert_eq!(text(&fresh, "sys/kernel/iommu_groups/7/type"), "DMA-FQ\n");
        assert_eq!(text(&conf, "sys/kernel/iommu_groups/7/type"), "identity\n");
        assert_eq!(
            text(&conf, "sys/devices/virtual/iommu/dmar1/intel-iommu/ecap"),
            "f050da\n"
        );
        assert_eq!(
            link(&conf, "sys/class/iommu/dmar0"),
            "../../devices/virtual/iommu/dmar0"
        );
        assert_eq!(
            link(&conf, "sys/devices/pci0000:00/0000:00:02.0/iommu"),
            "../../virtual/iommu/dmar0"
        );
        assert_eq!(
            link(&conf, "sys/devices/pci0000:00/0000:00:1f.3/iommu"),
            "../../virtual/iommu/dmar1"
        );
        assert!(fresh.get("sys/class/net/wlp0s20f3").is_some());
        assert_eq!(conf.get("sys/class/net/wlp0s20f3"), None);
    }

    #[test]
    fn no_iommu_means_no_groups_and_no_units() {
        let t = hosts::no_iommu().tree().unwrap();
        for path in t.nodes().keys() {
            let p = path.display().to_string();
            assert!(
                !p.contains("iommu_group") && !p.starts_with("sys/class/iommu"),
                "{p}"
            );
        }
    }

    #[test]
    fn multifunction_bit_and_boot_vga() {
        let t = hosts::elitedesk_800_g4(hosts::State::Fresh).tree().unwrap();
        let config = |addr: &str| match t.get(format!("sys/devices/pci0000:00/{addr}/config")) {
            Some(Node::File(bytes)) => bytes.clone(),
            other => panic!("{addr}: {other:?}"),
        };
        assert_eq!(config("0000:00:14.0")[0x0e], 0x80);
        assert_eq!(config("0000:00:1f.0")[0x0e], 0x80);
        assert_eq!(config("0000:00:02.0")[0x0e], 0x00);
        assert_eq!(config("0000:00:02.0").len(), 4096);
        assert_eq!(config("0000:00:1f.3").len(), 256);
        assert_eq!(
            text(&t, "sys/devices/pci0000:00/0000:00:02.0/boot_vga"),
            "1\n"
        );
        assert_eq!(t.get("sys/devices/pci0000:00/0000:00:1f.3/boot_vga"), None);
        assert_eq!(
            text(&t, "sys/devices/pci0000:00/0000:00:02.0/class"),
            "0x030000\n"
        );
        assert_eq!(
            text(&t, "sys/devices/pci0000:00/0000:00:00.0/revision"),
            "0x07\n"
        );
    }

    #[test]
    fn usb_devices_behind_hubs() {
        let mut h = Host::new();
        h.pci(
            PciFn::new("0000:00:14.0", 0x8086, 0xa36d, 0x0c0330)
                .driver("xhci_hcd")
                .xhci(4, 4),
        )
        .usb(UsbDev::hub("1-2", 0x05e3, 0x0610, 4))
        .usb(UsbDev::new("1-2.1", 0x062a, 0x4101).interfaces(&[(0x03, "usbhid")]));
        let t = h.tree().unwrap();
        let dev = "sys/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2.1";
        assert_eq!(text(&t, &format!("{dev}/devpath")), "2.1\n");
        assert_eq!(text(&t, &format!("{dev}/devnum")), "3\n");
        assert_eq!(text(&t, &format!("{dev}/idVendor")), "062a\n");
        assert_eq!(text(&t, &format!("{dev}/bNumInterfaces")), " 1\n");
        assert_eq!(
            link(&t, &format!("{dev}/1-2.1:1.0/driver")),
            "../../../../../../../bus/usb/drivers/usbhid"
        );
        assert_eq!(
            link(&t, "sys/bus/usb/devices/1-2.1"),
            format!("../../../{}", &dev[4..])
        );
        assert_eq!(
            text(&t, "sys/devices/pci0000:00/0000:00:14.0/usb2/speed"),
            "10000\n"
        );
        assert_eq!(
            text(&t, "sys/devices/pci0000:00/0000:00:14.0/usb2/version"),
            " 3.10\n"
        );

        let mut orphan = h.clone();
        orphan.usb(UsbDev::new("1-3.1", 1, 2));
        let err = orphan.tree().unwrap_err().to_string();
        assert!(err.contains("1-3.1") && err.contains("1-3"), "{err}");
        let mut bad = Host::new();
        bad.usb(UsbDev::new("x-1", 1, 2));
        assert!(bad.tree().unwrap_err().to_string().contains("\"x-1\""));
    }

    #[test]
    fn network_bridge_and_routes() {
        let t = hosts::elitedesk_800_g4(hosts::State::Configured)
            .tree()
            .unwrap();
        let eno1 = "sys/devices/pci0000:00/0000:00:1f.6/net/eno1";
        assert_eq!(link(&t, &format!("{eno1}/device")), "../../../0000:00:1f.6");
        assert_eq!(
            link(&t, &format!("{eno1}/master")),
            "../../../../virtual/net/vmbr0"
        );
        assert_eq!(
            link(&t, "sys/devices/virtual/net/vmbr0/brif/eno1"),
            "../../../../pci0000:00/0000:00:1f.6/net/eno1/brport"
        );
        assert_eq!(
            link(&t, "sys/devices/virtual/net/vmbr0/lower_eno1"),
            "../../../pci0000:00/0000:00:1f.6/net/eno1"
        );
        assert_eq!(
            text(&t, "sys/devices/virtual/net/vmbr0/address"),
            "c8:d9:d2:1a:2b:3c\n"
        );
        let route = text(&t, "proc/net/route");
        let lines: Vec<&str> = route.lines().collect();
        assert!(lines.iter().all(|l| l.len() == 127), "{route:?}");
        assert_eq!(
            lines[1].trim_end(),
            "vmbr0\t00000000\t010AA8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0"
        );
        assert_eq!(
            lines[3].trim_end(),
            "vmbr0\t000AA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0"
        );
    }

    #[test]
    fn block_devices_and_device_mapper() {
        let t = hosts::elitedesk_800_g4(hosts::State::Fresh).tree().unwrap();
        let sda = "sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda";
        assert_eq!(link(&t, "sys/block/sda"), format!("../{}", &sda[4..]));
        assert_eq!(
            link(&t, "sys/class/block/sda3"),
            format!("../../{}/sda3", &sda[4..])
        );
        assert_eq!(text(&t, &format!("{sda}/sda3/dev")), "8:3\n");
        assert_eq!(text(&t, &format!("{sda}/sda3/partition")), "3\n");
        assert_eq!(
            text(&t, "sys/devices/virtual/block/dm-1/dm/name"),
            "pve-root\n"
        );
        assert_eq!(
            link(&t, "sys/devices/virtual/block/dm-1/slaves/sda3"),
            format!("../../../../{}/sda3", &sda[12..])
        );
        assert_eq!(
            link(&t, &format!("{sda}/sda3/holders/dm-1")),
            "../../../../../../../../../../virtual/block/dm-1"
        );
        let mounts = text(&t, "proc/mounts");
        assert!(
            mounts.contains("\n/dev/mapper/pve-root / ext4 rw,relatime,errors=remount-ro 0 0\n")
        );
        assert!(mounts.contains("\n/dev/fuse /etc/pve fuse "));
    }

    #[test]
    fn inconsistent_hosts_are_errors_naming_the_culprit() {
        let mut h = Host::new();
        h.pci(PciFn::new("0000:01:00.0", 1, 2, 0x030000).parent("0000:00:1c.0"));
        assert!(h.tree().unwrap_err().to_string().contains("0000:00:1c.0"));
        let mut h = Host::new();
        h.pci(PciFn::new("0000:00:1c.0", 1, 2, 0x060400))
            .pci(PciFn::new("0000:01:00.0", 1, 2, 0x030000).parent("0000:00:1c.0"));
        assert!(h.tree().unwrap_err().to_string().contains("not a bridge"));
        let mut h = Host::new();
        h.pci(PciFn::new("00:02.0", 1, 2, 0x030000));
        assert!(h.tree().unwrap_err().to_string().contains("\"00:02.0\""));
        let mut h = Host::new();
        h.net(NetIf::bridge("vmbr0", &["eth9"]));
        assert!(h.tree().unwrap_err().to_string().contains("eth9"));
        let mut h = Host::new();
        h.dm(DmVolume::new("pve-root", "LVM-x", &["sdz1"]));
        assert!(h.tree().unwrap_err().to_string().contains("sdz1"));
    }
}
