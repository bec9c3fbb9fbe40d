//! The walk over a source root: what is copied, linked, recorded and noted.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use vfiokit_pci::ModuleAliases;
use vfiokit_sysfs::SysRoot;

use crate::{Anonymizer, Error, KERNEL_LOG, QEMU_VERSION, ZPOOL_STATUS, kernel_log_lines};

/// Attribute files of a PCI function (what vfiokit and lspci read). Never `rom` or `resource<N>`.
const PCI_FILES: &[&str] = &[
    "vendor",
    "device",
    "class",
    "subsystem_vendor",
    "subsystem_device",
    "revision",
    "config",
    "resource",
    "irq",
    "boot_vga",
    "modalias",
    "numa_node",
    "enable",
    "local_cpulist",
    "driver_override",
    "reset_method",
    "label",
    "uevent",
    "sriov_totalvfs",
    "sriov_numvfs",
    "sriov_drivers_autoprobe",
];
/// Files of a mediated device type (`mdev_supported_types/<id>/`).
const MDEV_TYPE_FILES: &[&str] = &["name", "description", "available_instances", "device_api"];
/// Attribute files of a USB device or root hub.
const USB_FILES: &[&str] = &[
    "idVendor",
    "idProduct",
    "bcdDevice",
    "bDeviceClass",
    "bDeviceSubClass",
    "bDeviceProtocol",
    "bNumInterfaces",
    "bConfigurationValue",
    "bMaxPacketSize0",
    "bNumConfigurations",
    "bmAttributes",
    "bMaxPower",
    "busnum",
    "devnum",
    "devpath",
    "speed",
    "version",
    "maxchild",
    "removable",
    "manufacturer",
    "product",
    "serial",
    "descriptors",
];
/// Attribute files of a USB interface.
const USB_IF_FILES: &[&str] = &[
    "bInterfaceNumber",
    "bAlternateSetting",
    "bNumEndpoints",
    "bInterfaceClass",
    "bInterfaceSubClass",
    "bInterfaceProtocol",
    "modalias",
];
/// Attribute files of a network interface.
const NET_FILES: &[&str] = &[
    "address",
    "operstate",
    "type",
    "ifindex",
    "mtu",
    "carrier",
    "bonding/slaves",
];
/// Attribute files of a block device.
const BLOCK_FILES: &[&str] = &[
    "dev",
    "size",
    "partition",
    "ro",
    "removable",
    "dm/name",
    "dm/uuid",
];
/// Files under `/proc`.
const PROC_FILES: &[&str] = &[
    "proc/cmdline",
    "proc/mounts",
    "proc/net/route",
    "proc/net/ipv6_route",
    "proc/sys/kernel/osrelease",
    "proc/cpuinfo",
];
/// Files under `/etc` that vfiokit edits or reads.
const ETC_FILES: &[&str] = &[
    "etc/default/grub",
    "etc/kernel/cmdline",
    "etc/kernel/proxmox-boot-uuids",
    "etc/modules",
    "etc/hostname",
    "etc/network/interfaces",
    "etc/pve/mapping/pci.cfg",
    "etc/pve/mapping/usb.cfg",
    // iGPU sharing: the SR-IOV VF count made persistent, and whether sysfsutils is installed.
    "etc/sysfs.conf",
    "var/lib/dpkg/info/sysfsutils.list",
    "etc/init.d/sysfsutils",
    "lib/systemd/system/sysfsutils.service",
    "usr/lib/systemd/system/sysfsutils.service",
];
/// Directories under `/etc` whose files are all captured.
const ETC_DIRS: &[&str] = &[
    "etc/default/grub.d",
    "etc/modules-load.d",
    "etc/modprobe.d",
    "etc/sysfs.d",
    "etc/udev/rules.d",
    "etc/pve/qemu-server",
];

/// The copying state: source root, destination, what was skipped and why.
pub(crate) struct Capture<'a> {
    src: &'a SysRoot,
    out: PathBuf,
    anon: Option<Anonymizer>,
    pub(crate) notes: Vec<String>,
    pub(crate) files: usize,
    pub(crate) links: usize,
}

/// `..` steps from `from_dir` up to the common ancestor, then down to `to`: a relative link target.
fn relative_target(from_dir: &Path, to: &Path) -> PathBuf {
    let a: Vec<Component> = from_dir.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut p = PathBuf::new();
    for _ in common..a.len() {
        p.push("..");
    }
    for c in &b[common..] {
        p.push(c.as_os_str());
    }
    p
}

impl<'a> Capture<'a> {
    pub(crate) fn new(src: &'a SysRoot, out: &Path, anon: Option<Anonymizer>) -> Capture<'a> {
        Capture {
            src,
            out: out.to_path_buf(),
            anon,
            notes: Vec::new(),
            files: 0,
            links: 0,
        }
    }

    fn note(&mut self, what: impl Into<String>) {
        self.notes.push(what.into());
    }

    /// Where `real` (a canonical path under the source root) lies relative to the root.
    fn rel(&self, real: &Path) -> Option<PathBuf> {
        self.src.relative(real).map(Path::to_path_buf)
    }

    fn mkdir(&mut self, rel: &Path) {
        if let Err(e) = fs::create_dir_all(self.out.join(rel)) {
            self.note(format!(
                "{}: cannot create: {e}",
                self.out.join(rel).display()
            ));
        }
    }

    /// Copies one regular file (relative path), transformed by the anonymizer. A missing file is
    /// skipped silently (most attributes are optional); anything else unreadable is noted.
    fn file(&mut self, rel: &Path) {
        let mut path = self.src.path(rel);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => {}
            // `/proc/mounts` is a link to `self/mounts`: read what it points to, inside the root.
            Ok(m) if m.file_type().is_symlink() => match self.src.resolve(&path) {
                Ok(real) if real.is_file() => path = real,
                Ok(_) => return,
                Err(e) => {
                    self.note(format!("{e}: not captured"));
                    return;
                }
            },
            Ok(_) | Err(_) => return, // a directory, or an attribute this host does not have
        }
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                self.note(format!("{}: {e}", path.display()));
                return;
            }
        };
        let bytes = self.anonymize(rel, bytes);
        let dest = self.out.join(rel);
        if let Some(dir) = dest.parent() {
            let _ = fs::create_dir_all(dir);
        }
        match fs::write(&dest, bytes) {
            Ok(()) => self.files += 1,
            Err(e) => self.note(format!("{}: cannot write: {e}", dest.display())),
        }
    }

    fn anonymize(&mut self, rel: &Path, bytes: Vec<u8>) -> Vec<u8> {
        let Some(anon) = self.anon.as_mut() else {
            return bytes;
        };
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let text_rel = rel.starts_with("etc") || rel.starts_with("proc") || name == "address";
        if rel == Path::new("proc/net/route") {
            return anon.route(&String::from_utf8_lossy(&bytes)).into_bytes();
        }
        if rel == Path::new("etc/hostname") {
            return format!("{}\n", crate::HOST_NAME).into_bytes();
        }
        if rel == Path::new(KERNEL_LOG) {
            return anon
                .kernel_log(&String::from_utf8_lossy(&bytes))
                .into_bytes();
        }
        if rel == Path::new(ZPOOL_STATUS) {
            return anon
                .zpool_status(&String::from_utf8_lossy(&bytes))
                .into_bytes();
        }
        if name == "serial" && rel.starts_with("sys") {
            let s = String::from_utf8_lossy(&bytes);
            return format!("{}\n", anon.serial(s.trim())).into_bytes();
        }
        if text_rel && rel != Path::new("proc/cpuinfo") {
            return anon.text(&String::from_utf8_lossy(&bytes)).into_bytes();
        }
        bytes
    }

    /// Recreates the symlink at `rel` (relative path of the link itself, under a real directory)
    /// pointing where it points on the host, as a relative link; creates its target directory.
    /// Returns the target's relative path. Links that leave the root or dangle are noted, not made.
    fn link(&mut self, rel: &Path) -> Option<PathBuf> {
        let path = self.src.path(rel);
        let real = match self.src.resolve_opt(&path) {
            Ok(Some(r)) => r,
            Ok(None) => return None, // an optional link this entry does not have
            Err(e) => {
                self.note(format!("{e}: link not captured"));
                return None;
            }
        };
        let target_rel = self.rel(&real)?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let dest = self.out.join(rel);
        if fs::symlink_metadata(&dest).is_ok() {
            return Some(target_rel);
        }
        self.mkdir(parent);
        if real.is_dir() {
            self.mkdir(&target_rel);
        }
        match symlink(relative_target(parent, &target_rel), &dest) {
            Ok(()) => self.links += 1,
            Err(e) => self.note(format!("{}: cannot link: {e}", dest.display())),
        }
        Some(target_rel)
    }

    /// Every entry of a directory under the source root, sorted; a missing directory is empty.
    fn list(&mut self, rel: &Path) -> Vec<String> {
        match self.src.list_opt(&self.src.path(rel)) {
            Ok(v) => v,
            Err(e) => {
                self.note(format!("{e}: not listed"));
                Vec::new()
            }
        }
    }

    pub(crate) fn pci(&mut self) {
        let bus = Path::new("sys/bus/pci/devices");
        for name in self.list(bus) {
            let Some(dev) = self.link(&bus.join(&name)) else {
                continue;
            };
            self.mkdir(&dev);
            for f in PCI_FILES {
                self.file(&dev.join(f));
            }
            self.link(&dev.join("subsystem"));
            if let Some(group) = self.link(&dev.join("iommu_group")) {
                self.file(&group.join("type"));
                self.link(&group.join("devices").join(&name));
            }
            if let Some(driver) = self.link(&dev.join("driver")) {
                self.link(&driver.join(&name));
                self.link(&driver.join("module"));
            }
            self.link(&dev.join("physfn"));
            for entry in self.list(&dev) {
                if entry.starts_with("virtfn") {
                    self.link(&dev.join(&entry));
                }
            }
            if self.src.path(dev.join("vfio-dev")).is_dir() {
                for v in self.list(&dev.join("vfio-dev")) {
                    self.mkdir(&dev.join("vfio-dev").join(v));
                }
            }
            self.mdev_types(&dev);
        }
    }

    /// The mediated device types of a function (GVT-g vGPUs) and the instances that exist.
    fn mdev_types(&mut self, dev: &Path) {
        let types = dev.join("mdev_supported_types");
        if !self.src.path(&types).is_dir() {
            return;
        }
        for t in self.list(&types) {
            let dir = types.join(&t);
            self.mkdir(&dir.join("devices"));
            for f in MDEV_TYPE_FILES {
                self.file(&dir.join(f));
            }
            for instance in self.list(&dir.join("devices")) {
                if let Some(real) = self.link(&dir.join("devices").join(&instance)) {
                    self.link(&real.join("mdev_type"));
                }
            }
        }
    }

    pub(crate) fn iommu(&mut self) {
        let class = Path::new("sys/class/iommu");
        for unit in self.list(class) {
            let Some(real) = self.link(&class.join(&unit)) else {
                continue;
            };
            for f in [
                "intel-iommu/cap",
                "intel-iommu/ecap",
                "intel-iommu/version",
                "intel-iommu/address",
                "amd-iommu/cap",
                "amd-iommu/features",
            ] {
                self.file(&real.join(f));
            }
        }
        let groups = Path::new("sys/kernel/iommu_groups");
        if self.src.path(groups).is_dir() {
            self.mkdir(groups);
        }
    }

    pub(crate) fn usb(&mut self) {
        let bus = Path::new("sys/bus/usb/devices");
        for name in self.list(bus) {
            let Some(real) = self.link(&bus.join(&name)) else {
                continue;
            };
            let files = if name.contains(':') {
                USB_IF_FILES
            } else {
                USB_FILES
            };
            for f in files {
                self.file(&real.join(f));
            }
            self.link(&real.join("driver"));
        }
    }

    pub(crate) fn net(&mut self) {
        let class = Path::new("sys/class/net");
        for name in self.list(class) {
            let Some(real) = self.link(&class.join(&name)) else {
                continue;
            };
            for f in NET_FILES {
                self.file(&real.join(f));
            }
            self.link(&real.join("device"));
            self.link(&real.join("master"));
            for entry in self.list(&real) {
                if entry.starts_with("lower_") || entry.starts_with("upper_") {
                    self.link(&real.join(&entry));
                }
            }
            for port in self.list(&real.join("brif")) {
                self.link(&real.join("brif").join(port));
            }
            if self.src.path(real.join("bridge")).is_dir() {
                self.mkdir(&real.join("bridge"));
            }
        }
    }

    pub(crate) fn block(&mut self) {
        for class in ["sys/block", "sys/class/block"] {
            let class = Path::new(class);
            for name in self.list(class) {
                let Some(real) = self.link(&class.join(&name)) else {
                    continue;
                };
                for f in BLOCK_FILES {
                    self.file(&real.join(f));
                }
                for dir in ["slaves", "holders"] {
                    for s in self.list(&real.join(dir)) {
                        self.link(&real.join(dir).join(s));
                    }
                }
            }
        }
    }

    pub(crate) fn host_files(&mut self) {
        for f in PROC_FILES.iter().chain(ETC_FILES) {
            self.file(Path::new(f));
        }
        for dir in ETC_DIRS {
            let dir = Path::new(dir);
            // `/etc/pve/qemu-server` is a link to `nodes/<node>/qemu-server` on Proxmox.
            let real_dir = if fs::symlink_metadata(self.src.path(dir))
                .is_ok_and(|m| m.file_type().is_symlink())
            {
                match self.link(dir) {
                    Some(t) => t,
                    None => continue,
                }
            } else {
                dir.to_path_buf()
            };
            for name in self.list(&real_dir) {
                self.file(&real_dir.join(name));
            }
        }
    }

    /// What the sharing and reset rules look at beyond `/etc`: the `modules.dep` lines of the
    /// modules they ask about (kvmgt, i915, xe, vendor-reset, VFIO, anything DKMS built), the
    /// names of the loaded modules (`/sys/module/<name>` as empty directories) and whether
    /// Proxmox's snippets storage exists. Module binaries are never copied.
    pub(crate) fn kernel_modules(&mut self) -> Result<(), Error> {
        const WANTED: &[&str] = &[
            "kvmgt",
            "i915",
            "xe",
            "vendor-reset",
            "vendor_reset",
            "vfio",
            "vfio-pci",
            "vfio_pci",
            "vfio_iommu_type1",
        ];
        if let Some(release) = self.src.read_attr_opt(&self.src.proc_osrelease())? {
            let rel = PathBuf::from("lib/modules")
                .join(release.trim())
                .join("modules.dep");
            if let Some(text) = self.src.read_attr_opt(&self.src.path(&rel))? {
                let kept: String = text
                    .lines()
                    .filter(|l| {
                        let module = l.split(':').next().unwrap_or_default();
                        let stem = Path::new(module)
                            .file_name()
                            .and_then(|n| n.to_str())
                            .unwrap_or_default();
                        let stem = stem.split(".ko").next().unwrap_or_default();
                        module.contains("/dkms/") || WANTED.contains(&stem)
                    })
                    .map(|l| format!("{l}\n"))
                    .collect();
                self.write(&rel, kept.as_bytes())?;
            }
        }
        for name in self.list(Path::new("sys/module")) {
            let dir = self.out.join("sys/module").join(name);
            fs::create_dir_all(&dir).map_err(|source| Error::Write { path: dir, source })?;
        }
        if self.src.path("var/lib/vz/snippets").is_dir() {
            let dir = self.out.join("var/lib/vz/snippets");
            fs::create_dir_all(&dir).map_err(|source| Error::Write { path: dir, source })?;
        }
        Ok(())
    }

    /// Writes `bytes` to `rel` under the output, counting the file.
    fn write(&mut self, rel: &Path, bytes: &[u8]) -> Result<(), Error> {
        let dest = self.out.join(rel);
        let written = match dest.parent() {
            Some(d) => fs::create_dir_all(d),
            None => Ok(()),
        }
        .and_then(|()| fs::write(&dest, bytes));
        written.map_err(|source| Error::Write { path: dest, source })?;
        self.files += 1;
        Ok(())
    }

    /// The `modules.alias` lines that match a captured device's modalias.
    pub(crate) fn module_aliases(&mut self) -> Result<(), Error> {
        let Some(release) = self.src.read_attr_opt(&self.src.proc_osrelease())? else {
            return Ok(());
        };
        let path = self.src.modules_alias(release.trim());
        let Some(text) = self.src.read_attr_opt(&path)? else {
            return Ok(());
        };
        let mut modaliases = BTreeSet::new();
        for bus in ["sys/bus/pci/devices", "sys/bus/usb/devices"] {
            for name in self.list(Path::new(bus)) {
                if let Ok(Some(m)) = self
                    .src
                    .read_attr_opt(&self.src.path(bus).join(&name).join("modalias"))
                {
                    modaliases.insert(m);
                }
            }
        }
        let mut kept = String::new();
        for line in text.lines() {
            let one = ModuleAliases::parse(line);
            if modaliases.iter().any(|m| !one.modules_for(m).is_empty()) {
                kept.push_str(line);
                kept.push('\n');
            }
        }
        let rel = path
            .strip_prefix(self.src.root())
            .unwrap_or(&path)
            .to_path_buf();
        let dest = self.out.join(&rel);
        let written = match dest.parent() {
            Some(d) => fs::create_dir_all(d),
            None => Ok(()),
        }
        .and_then(|()| fs::write(&dest, kept));
        written.map_err(|source| Error::Write { path: dest, source })?;
        self.files += 1;
        Ok(())
    }

    /// `qemu-system-x86_64 --version`: run on `/`, else the root's own record.
    pub(crate) fn qemu_version(&mut self) {
        let record = Path::new(QEMU_VERSION);
        let text = if self.src.is_host() {
            std::process::Command::new("qemu-system-x86_64")
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        } else {
            self.src
                .read_attr_opt(&self.src.path(record))
                .ok()
                .flatten()
                .map(|t| t + "\n")
        };
        if let Some(text) = text {
            let dest = self.out.join(record);
            if let Some(d) = dest.parent() {
                let _ = fs::create_dir_all(d);
            }
            if fs::write(dest, text).is_ok() {
                self.files += 1;
            }
        }
    }

    /// ROM files the VM configs name, from `/usr/share/kvm`.
    pub(crate) fn romfiles(&mut self) {
        let dir = Path::new("etc/pve/qemu-server");
        let mut roms = BTreeSet::new();
        for name in self.list(dir) {
            if let Ok(text) = self.src.read_text(&self.src.path(dir).join(name)) {
                let config = vfiokit_vmconf::VmConfig::parse(&text);
                for key in config
                    .keys()
                    .into_iter()
                    .filter(|k| k.starts_with("hostpci"))
                {
                    if let Some(rom) = config
                        .get(key)
                        .and_then(|v| vfiokit_vmconf::HostPci::parse(v).ok())
                        .and_then(|h| h.romfile)
                        && !rom.contains('/')
                    {
                        roms.insert(rom);
                    }
                }
            }
        }
        for rom in roms {
            self.file(&Path::new("usr/share/kvm").join(rom));
        }
    }

    /// `/dev/disk/by-id/*` links to block devices (those in `/sys/class/block`), as relative links
    /// (dangling in the capture: it holds no device nodes), so a vdev traces to its disk. Under
    /// anonymization each name is renamed as [`Anonymizer::disk_id`] does.
    pub(crate) fn disk_ids(&mut self) {
        let dir = Path::new("dev/disk/by-id");
        let blocks: BTreeSet<String> = self
            .list(Path::new("sys/class/block"))
            .into_iter()
            .collect();
        for name in self.list(dir) {
            let Ok(target) = fs::read_link(self.src.path(dir.join(&name))) else {
                continue; // not a link
            };
            let dev = match target.strip_prefix("/") {
                Ok(abs) => Some(abs.to_path_buf()),
                Err(_) => vfiokit_sysfs::join_lexically(dir, &target),
            };
            let Some(dev) = dev.filter(|d| {
                d.parent() == Some(Path::new("dev"))
                    && d.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| blocks.contains(n))
            }) else {
                continue;
            };
            let out_name = match self.anon.as_mut() {
                Some(anon) => anon.disk_id(&name),
                None => name,
            };
            self.mkdir(dir);
            let dest = self.out.join(dir).join(out_name);
            match symlink(relative_target(dir, &dev), &dest) {
                Ok(()) => self.links += 1,
                Err(e) => self.note(format!("{}: cannot link: {e}", dest.display())),
            }
        }
    }

    /// Writes a record made on this host (the output of a program) under `rel`, anonymized.
    fn record(&mut self, rel: &Path, text: String) {
        let bytes = self.anonymize(rel, text.into_bytes());
        let dest = self.out.join(rel);
        if let Some(d) = dest.parent() {
            let _ = fs::create_dir_all(d);
        }
        match fs::write(&dest, bytes) {
            Ok(()) => self.files += 1,
            Err(e) => self.note(format!("{}: cannot write: {e}", dest.display())),
        }
    }

    /// `zpool status -P` on `/` (a note when it cannot run or fails), else the root's own record.
    pub(crate) fn zpool_status(&mut self) {
        let rel = Path::new(ZPOOL_STATUS);
        if !self.src.is_host() {
            self.file(rel);
            return;
        }
        match run(Command::new("zpool").args(["status", "-P"])) {
            Ok(text) => self.record(rel, text),
            Err(why) => self.note(format!("zpool status -P: {why}")),
        }
    }

    /// On `/`, this boot's kernel lines that matter ([`kernel_log_lines`]) from the journal, else
    /// from `dmesg` (a note when neither can be read); on another root, its own record.
    pub(crate) fn kernel_log(&mut self) {
        let rel = Path::new(KERNEL_LOG);
        if !self.src.is_host() {
            self.file(rel);
            return;
        }
        let journal = run(Command::new("journalctl").args([
            "-k",
            "-b",
            "--no-pager",
            "-o",
            "short-monotonic",
        ]))
        .and_then(|text| {
            // Without a journal, journalctl says so and succeeds: fall back to the ring buffer.
            if text.lines().any(|l| l.starts_with('[')) {
                Ok(text)
            } else {
                Err("no kernel lines in this boot's journal".to_string())
            }
        });
        let text = journal.or_else(|j| {
            run(&mut Command::new("dmesg")).map_err(|d| format!("journalctl: {j}; dmesg: {d}"))
        });
        match text {
            Ok(text) => self.record(rel, kernel_log_lines(&text)),
            Err(why) => self.note(format!("kernel log: {why}")),
        }
    }
}

/// Runs a program that only reads, and returns what it printed; the error says why not.
fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("cannot run: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{}: {}",
            out.status,
            err.lines().next().unwrap_or("").trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_targets_climb_to_the_common_ancestor() {
        assert_eq!(
            relative_target(
                Path::new("sys/bus/pci/devices"),
                Path::new("sys/devices/pci0000:00/0000:00:02.0")
            ),
            PathBuf::from("../../../devices/pci0000:00/0000:00:02.0")
        );
        assert_eq!(
            relative_target(
                Path::new("sys/devices/pci0000:00/0000:00:1f.6/net/eno1"),
                Path::new("sys/devices/pci0000:00/0000:00:1f.6")
            ),
            PathBuf::from("../..")
        );
        assert_eq!(
            relative_target(Path::new("dev/disk/by-id"), Path::new("dev/sda3")),
            PathBuf::from("../../sda3")
        );
    }
}
