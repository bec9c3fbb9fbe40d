//! `vfiokit capture`: record a host into a directory with the layout of `testdata/`, so that every
//! command can be replayed on it (`--root OUT`) and `lspci -A linux-sysfs` reads it.
//!
//! Read-only on the host. It copies the attribute files vfiokit and lspci read, recreates the
//! kernel's relative symlinks (only those that resolve inside the root, and only for the captured
//! set), and never reads `rom` or `resource<N>` (BAR contents). What cannot be read is skipped and
//! listed in `CAPTURE-NOTES.txt`. `--anonymize` replaces MAC and IP addresses, serial numbers,
//! host names and UUIDs consistently: the same input maps to the same output within one capture.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use vfiokit_pci::ModuleAliases;
use vfiokit_sysfs::SysRoot;

use crate::Common;

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
];
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
];
/// Directories under `/etc` whose files are all captured.
const ETC_DIRS: &[&str] = &[
    "etc/default/grub.d",
    "etc/modules-load.d",
    "etc/modprobe.d",
    "etc/pve/qemu-server",
];

/// Consistent replacements for identifying data.
#[derive(Default)]
struct Anonymizer {
    maps: HashMap<(&'static str, String), String>,
    counts: HashMap<&'static str, usize>,
}

impl Anonymizer {
    fn map(&mut self, kind: &'static str, value: &str, make: impl Fn(usize) -> String) -> String {
        let key = (kind, value.to_ascii_lowercase());
        if let Some(v) = self.maps.get(&key) {
            return v.clone();
        }
        let n = self.counts.entry(kind).or_default();
        *n += 1;
        let v = make(*n);
        self.maps.insert(key, v.clone());
        v
    }

    fn mac(&mut self, mac: &str) -> String {
        self.map("mac", mac, |n| {
            format!("02:00:00:00:{:02x}:{:02x}", n >> 8, n & 0xff)
        })
    }

    fn ipv4(&mut self, ip: [u8; 4]) -> [u8; 4] {
        if ip[0] == 0 || ip[0] == 127 || ip[0] == 255 {
            return ip; // any, loopback and netmasks identify nobody
        }
        let s = self.map(
            "ip",
            &format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]),
            |n| format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff),
        );
        let mut out = [0u8; 4];
        for (o, p) in out.iter_mut().zip(s.split('.')) {
            *o = p.parse().unwrap_or(0);
        }
        out
    }

    fn uuid(&mut self, uuid: &str) -> String {
        self.map("uuid", uuid, |n| {
            format!("00000000-0000-4000-8000-{n:012x}")
        })
    }

    fn serial(&mut self, serial: &str) -> String {
        self.map("serial", serial, |n| format!("SERIAL{n:04}"))
    }

    /// Replaces MACs, IPv4 addresses and UUIDs in free text. (The host name is replaced only in
    /// `/etc/hostname`: on Proxmox it is often `pve`, which also stands in kernel releases.)
    fn text(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            // Not inside a longer word, dotted version (`v1.2.3.4.5`) or colon list.
            let boundary =
                i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b".:".contains(&b[i - 1]));
            if boundary && let Some((len, rep)) = self.token_at(&text[i..]) {
                out.push_str(&rep);
                i += len;
                continue;
            }
            let ch = text[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
        out
    }

    fn token_at(&mut self, s: &str) -> Option<(usize, String)> {
        let b = s.as_bytes();
        let hex = |r: std::ops::Range<usize>| {
            b.get(r)
                .is_some_and(|x| x.iter().all(u8::is_ascii_hexdigit))
        };
        let end_ok = |len: usize| b.get(len).is_none_or(|c| !c.is_ascii_alphanumeric());
        // UUID 8-4-4-4-12
        if b.len() >= 36
            && hex(0..8)
            && b[8] == b'-'
            && hex(9..13)
            && b[13] == b'-'
            && hex(14..18)
            && b[18] == b'-'
            && hex(19..23)
            && b[23] == b'-'
            && hex(24..36)
            && end_ok(36)
        {
            return Some((36, self.uuid(&s[..36])));
        }
        // MAC xx:xx:xx:xx:xx:xx
        if b.len() >= 17
            && (0..6).all(|k| hex(k * 3..k * 3 + 2) && (k == 5 || b[k * 3 + 2] == b':'))
            && end_ok(17)
        {
            return Some((17, self.mac(&s[..17])));
        }
        // IPv4 a.b.c.d
        let mut parts = [0u8; 4];
        let mut pos = 0;
        for (k, part) in parts.iter_mut().enumerate() {
            let digits = b[pos..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 || digits > 3 {
                return None;
            }
            *part = s[pos..pos + digits].parse().ok()?;
            pos += digits;
            if k < 3 {
                if b.get(pos) != Some(&b'.') {
                    return None;
                }
                pos += 1;
            }
        }
        if !end_ok(pos) || b.get(pos) == Some(&b'.') {
            return None;
        }
        let ip = self.ipv4(parts);
        Some((pos, format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])))
    }

    /// `/proc/net/route`: addresses are little-endian hex in the Destination and Gateway columns.
    fn route(&mut self, text: &str) -> String {
        let mut out = String::new();
        for (n, line) in text.split_inclusive('\n').enumerate() {
            if n == 0 {
                out.push_str(line);
                continue;
            }
            let mut fields: Vec<String> = line.split('\t').map(str::to_string).collect();
            for f in fields.iter_mut().skip(1).take(2) {
                if let Ok(v) = u32::from_str_radix(f.trim(), 16) {
                    let ip = self.ipv4(v.to_le_bytes());
                    let trailing = &f[f.trim_end().len()..];
                    *f = format!("{:08X}{trailing}", u32::from_le_bytes(ip));
                }
            }
            out.push_str(&fields.join("\t"));
        }
        out
    }
}

/// The copying state: source root, destination, what was skipped and why.
struct Capture<'a> {
    src: &'a SysRoot,
    out: PathBuf,
    anon: Option<Anonymizer>,
    notes: Vec<String>,
    files: usize,
    links: usize,
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

impl Capture<'_> {
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
            return b"host1\n".to_vec();
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

    fn pci(&mut self) {
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
        }
    }

    fn iommu(&mut self) {
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

    fn usb(&mut self) {
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

    fn net(&mut self) {
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

    fn block(&mut self) {
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

    fn host_files(&mut self) {
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

    /// The `modules.alias` lines that match a captured device's modalias.
    fn module_aliases(&mut self) -> anyhow::Result<()> {
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
        if let Some(d) = dest.parent() {
            fs::create_dir_all(d)?;
        }
        fs::write(dest, kept)?;
        self.files += 1;
        Ok(())
    }

    /// `qemu-system-x86_64 --version`: run on `/`, else the root's own record.
    fn qemu_version(&mut self) {
        let record = Path::new("var/lib/vfiokit/capture/qemu-version");
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
    fn romfiles(&mut self) {
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
}

/// `capture -o OUT [--anonymize]`.
pub fn run(common: &Common, out: &Path, anonymize: bool) -> anyhow::Result<ExitCode> {
    let src = common.open_root()?;
    if fs::symlink_metadata(out).is_ok() {
        bail!(
            "{} already exists: capture writes a new directory and never into an existing one",
            out.display()
        );
    }
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let anon = anonymize.then(Anonymizer::default);
    let mut cap = Capture {
        src: &src,
        out: out.to_path_buf(),
        anon,
        notes: Vec::new(),
        files: 0,
        links: 0,
    };
    cap.pci();
    cap.iommu();
    cap.usb();
    cap.net();
    cap.block();
    cap.host_files();
    cap.module_aliases()?;
    cap.qemu_version();
    cap.romfiles();
    let mut report = format!(
        "vfiokit capture of {} ({} files, {} links){}\n",
        src.root().display(),
        cap.files,
        cap.links,
        if anonymize { ", anonymized" } else { "" }
    );
    for n in &cap.notes {
        let _ = writeln!(report, "skipped: {n}");
    }
    fs::write(out.join("CAPTURE-NOTES.txt"), &report)?;
    if common.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "output": out, "files": cap.files, "links": cap.links, "skipped": cap.notes,
            }))?
        );
    } else {
        print!("{report}");
        println!("replay with: vfiokit inspect --root {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
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
    }

    #[test]
    fn anonymizing_is_consistent_and_keeps_structure() {
        let mut a = Anonymizer::default();
        let text = "address 192.168.10.104/24\ngateway 192.168.10.1\nnet0: e1000=6E:FA:51:9A:D2:40,bridge=vmbr0\n\
                    smbios1: uuid=194d50cf-8f86-4fa2-b770-28aa88109b43\nkernel 6.8.12-11-pve netmask 255.255.255.0 v1.2.3.4.5\n";
        let out = a.text(text);
        assert_eq!(
            out,
            "address 10.0.0.1/24\ngateway 10.0.0.2\nnet0: e1000=02:00:00:00:00:01,bridge=vmbr0\n\
             smbios1: uuid=00000000-0000-4000-8000-000000000001\nkernel 6.8.12-11-pve netmask 255.255.255.0 v1.2.3.4.5\n"
        );
        // The same inputs map to the same outputs, in routes too (little-endian hex).
        assert_eq!(a.text("via 192.168.10.1"), "via 10.0.0.2");
        let route = "Iface\tDestination\tGateway \n vmbr0\t00000000\t010AA8C0\t0003\n";
        assert_eq!(
            a.route(route),
            "Iface\tDestination\tGateway \n vmbr0\t00000000\t0200000A\t0003\n"
        );
        assert_eq!(a.serial("PGVXV0F8"), "SERIAL0001");
        assert_eq!(a.serial("PGVXV0F8"), "SERIAL0001");
    }
}
