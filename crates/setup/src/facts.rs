//! Every read a planner or a check needs, done once, up front.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vfiokit_iommu::{Host, IommuKind};
use vfiokit_kcmdline::{
    BootLoader, Cmdline, DropIn, GRUB_CMDLINE_LINUX_DEFAULT, GrubConfig, GrubDefault, ModprobeConf,
    ModprobeDir, ModulesFile,
};
use vfiokit_pci::{ModuleAliases, PciAddress, ResetMethods};
use vfiokit_sysfs::SysRoot;
use vfiokit_vmconf::{Machine, VmConfig};

use crate::{Error, Result};

/// A text file of the host: where it is and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextFile {
    /// Relative to the root (`etc/modules`).
    pub path: PathBuf,
    /// Its text, `None` when it does not exist; `Err` says why it could not be read.
    pub text: std::result::Result<Option<String>, String>,
}

impl TextFile {
    pub(crate) fn read(root: &SysRoot, rel: PathBuf, problems: &mut Vec<String>) -> TextFile {
        let text = root.read_text_opt(&root.path(&rel)).map_err(|e| {
            problems.push(e.to_string());
            e.to_string()
        });
        TextFile { path: rel, text }
    }

    /// The text (`None`: the file does not exist), or the error that kept it unread.
    pub fn get(&self) -> Result<Option<&str>> {
        match &self.text {
            Ok(t) => Ok(t.as_deref()),
            Err(e) => Err(Error::Invalid(e.clone())),
        }
    }
}

/// A VM config under `/etc/pve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmFile {
    /// The VM id.
    pub vmid: u32,
    /// Whether it is this node's (`/etc/pve/qemu-server`) rather than another node's.
    pub local: bool,
    /// Its text, or why it could not be read (not UTF-8, unreadable).
    pub file: TextFile,
}

impl VmFile {
    /// The parsed config, when it could be read.
    pub fn config(&self) -> Option<VmConfig> {
        match &self.file.text {
            Ok(Some(t)) => Some(VmConfig::parse(t)),
            _ => None,
        }
    }
}

/// Everything vfiokit's rules look at, read once from a host root.
#[derive(Debug)]
pub struct HostFacts {
    /// The root directory the facts were read from (for messages that name files).
    pub root: PathBuf,
    /// Whether the root is the running host `/` (commands run only there).
    pub is_host: bool,
    /// PCI functions, IOMMU state and groups, USB devices, roles.
    pub host: Host,
    /// The running kernel's `modules.alias`, when the root has one.
    pub aliases: Option<ModuleAliases>,
    /// For each bound PCI driver, the module it belongs to (`xhci_hcd` → `xhci_pci`).
    pub driver_modules: BTreeMap<String, String>,
    /// The running kernel's release (`6.8.12-11-pve`).
    pub release: Option<String>,
    /// Intel or AMD, from the IOMMU units or `/proc/cpuinfo`.
    pub cpu_vendor: Option<IommuKind>,
    /// Which boot loader holds the command line.
    pub boot_loader: BootLoader,
    /// Its command line file (`etc/default/grub` or `etc/kernel/cmdline`).
    pub boot_cmdline: Option<TextFile>,
    /// `etc/default/grub.d/*.cfg` on a GRUB host, sorted by name as `update-grub` sources them
    /// after `etc/default/grub` (empty on other hosts).
    pub grub_dropins: Vec<TextFile>,
    /// `etc/modules`.
    pub modules: TextFile,
    /// `etc/modules-load.d/*.conf`, sorted by name, that systemd-modules-load reads besides
    /// `etc/modules` (a file that is a link to `etc/modules`, as Debian ships `modules.conf`, is
    /// left out: it is `modules`).
    pub modules_load: Vec<TextFile>,
    /// `etc/modprobe.d/*.conf`, sorted by name as kmod reads them.
    pub modprobe: Vec<TextFile>,
    /// VM configs: this node's, then other nodes' under `etc/pve/nodes`.
    pub vms: Vec<VmFile>,
    /// `etc/pve/mapping/pci.cfg`.
    pub pci_mappings: TextFile,
    /// `etc/pve/mapping/usb.cfg`.
    pub usb_mappings: TextFile,
    /// The QEMU version and where it was read.
    pub qemu_version: Option<((u32, u32), String)>,
    /// The node's name (`etc/hostname`).
    pub hostname: Option<String>,
    /// Files under `usr/share/kvm` (ROMs), by name.
    pub roms: BTreeMap<String, Vec<u8>>,
    /// The kernel log and where it came from: on `/` the current boot's (`journalctl -k -b`,
    /// else `dmesg`, read-only), on another root the one a capture recorded
    /// (`var/lib/vfiokit/capture/kernel-log`). `None` when there is none or it cannot be read
    /// (not a problem: a host without a readable log is still a host).
    pub kernel_log: Option<(String, String)>,
    /// What could not be read besides the host scan's own problems, each naming its file.
    pub problems: Vec<String>,
    /// Booted by UEFI (`/sys/firmware/efi` exists); `None` when the root has no `/sys/firmware`.
    pub uefi: Option<bool>,
    /// iGPU sharing (GVT-g, SR-IOV): the running kernel's modules, sysfsutils, mdev instances.
    pub share: crate::share::ShareFacts,
    /// vendor-reset's module, the snippets storage and the files the reset remedies write;
    /// `None` on a host without an AMD function (the remedies are for AMD GPUs alone).
    pub reset: Option<crate::reset::ResetFacts>,
}

/// What a command looks at beyond what the host's own files name, so that facts only some
/// functions need are read for those alone: a function's `reset_method` (three system calls) and
/// the ROM files under `/usr/share/kvm` (a real host keeps dozens there).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scope {
    /// Every function's reset methods and every file in `/usr/share/kvm` (`inspect`, and
    /// [`HostFacts::gather`] for embedders).
    #[default]
    Everything,
    /// The functions and ROM files the VM configs name (and the functions the kernel log's
    /// recognized lines name), plus these.
    Request {
        /// Functions the command gives to a VM or otherwise looks at.
        functions: Vec<PciAddress>,
        /// ROM file names (relative to `/usr/share/kvm`) the command names.
        roms: Vec<String>,
    },
}

impl Scope {
    /// What the VM configs name and nothing more (`verify`, mapping plans).
    pub fn vms() -> Scope {
        Scope::Request {
            functions: Vec::new(),
            roms: Vec::new(),
        }
    }
}

/// `(major, minor)` of a release such as `6.8.12-11-pve`.
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// `(major, minor)` from `qemu-system-x86_64 --version` output.
pub(crate) fn parse_qemu_version(text: &str) -> Option<(u32, u32)> {
    let rest = text.split("version").nth(1)?.split_whitespace().next()?;
    let mut p = rest.split('.');
    Some((p.next()?.parse().ok()?, p.next()?.parse().ok()?))
}

/// ROM files larger than this are not read (option ROMs are at most a few MiB).
const ROM_LIMIT: u64 = 64 << 20;

impl HostFacts {
    /// Reads the host at `root`, everything included ([`Scope::Everything`]). Only a root without
    /// `/sys/bus/pci/devices` is an error; a file that cannot be read is recorded (in
    /// [`HostFacts::problems`] and in the file's own entry) and the planner that needs it stops
    /// there with the reason.
    pub fn gather(root: &SysRoot) -> Result<HostFacts> {
        HostFacts::gather_for(root, &Scope::Everything)
    }

    /// [`HostFacts::gather`] for what `scope` looks at: the reset methods and ROM files of other
    /// functions are left unread ([`vfiokit_pci::PciScan::reset_methods`] says `None` for them).
    pub fn gather_for(root: &SysRoot, scope: &Scope) -> Result<HostFacts> {
        // Everything: every function's reset methods, read in the scan relative to each parent
        // directory (the scan's fast path); a request: only those it and the VMs need, later.
        let reset = match scope {
            Scope::Everything => ResetMethods::Now,
            Scope::Request { .. } => ResetMethods::Later,
        };
        let mut host = Host::scan_with(root, reset)?;
        let mut problems = Vec::new();
        // `/proc/sys/kernel/osrelease` once, for the release and for `modules.alias`.
        let release = root.read_attr_opt(&root.proc_osrelease());
        let aliases = match &release {
            Ok(Some(r)) => root
                .read_attr_opt(&root.modules_alias(r.trim()))
                .map(|text| text.map(|t| vfiokit_pci::ModuleAliases::parse(&t)))
                .map_err(|e| e.to_string()),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
        .unwrap_or_else(|e| {
            problems.push(e);
            None
        });
        let driver_modules = driver_modules(root, &host);
        let release = release.unwrap_or_else(|e| {
            problems.push(e.to_string());
            None
        });
        let cpu_vendor = cpu_vendor(root, &host);
        let boot_loader = BootLoader::detect(root);
        let rel = |p: PathBuf| {
            p.strip_prefix(root.root())
                .map_or(p.clone(), Path::to_path_buf)
        };
        let boot_cmdline = boot_loader
            .cmdline_path(root)
            .map(|p| TextFile::read(root, rel(p), &mut problems));
        let grub_dropins = match boot_loader {
            BootLoader::Grub => read_dir(root, &root.etc("default/grub.d"), ".cfg", &mut problems),
            _ => Vec::new(),
        };
        let modules = TextFile::read(root, rel(root.etc("modules")), &mut problems);
        let modules_load = {
            let real = |p: &Path| root.resolve_opt(p).ok().flatten();
            let etc_modules = real(&root.etc("modules"));
            read_dir(root, &root.etc("modules-load.d"), ".conf", &mut problems)
                .into_iter()
                .filter(|f| etc_modules.is_none() || real(&root.path(&f.path)) != etc_modules)
                .collect()
        };
        let modprobe_dir = root.etc("modprobe.d");
        let mut modprobe = Vec::new();
        match root.list_opt(&modprobe_dir) {
            Ok(mut names) => {
                names.sort();
                for n in names.into_iter().filter(|n| n.ends_with(".conf")) {
                    modprobe.push(TextFile::read(
                        root,
                        rel(modprobe_dir.join(n)),
                        &mut problems,
                    ));
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
        let vms = read_vms(root, &mut problems);
        let pci_mappings =
            TextFile::read(root, rel(root.etc("pve/mapping/pci.cfg")), &mut problems);
        let usb_mappings =
            TextFile::read(root, rel(root.etc("pve/mapping/usb.cfg")), &mut problems);
        let qemu_version = qemu_version(root);
        let hostname = root
            .read_attr_opt(&root.etc("hostname"))
            .ok()
            .flatten()
            .map(|h| h.trim().to_string());
        let named = named_functions(&host, &vms);
        let kvm = root.usr_share("kvm");
        let rom_names = match scope {
            Scope::Everything => root.list_opt(&kvm).unwrap_or_default(),
            Scope::Request { roms, .. } => roms.iter().cloned().chain(named.roms).collect(),
        };
        let mut roms = BTreeMap::new();
        for name in rom_names {
            // A directory, a name leaving the directory or a file too large for a ROM is none.
            if crate::gpu::in_kvm_dir(&name)
                && let Ok(Some(bytes)) = root.read_bytes_opt(&kvm.join(&name))
                && bytes.len() as u64 <= ROM_LIMIT
            {
                roms.insert(name, bytes);
            }
        }
        let kernel_log = kernel_log(root);
        match (scope, named.functions) {
            (Scope::Request { functions, .. }, Some(mut held)) => {
                // And the functions the log's recognized lines name: their explanations say
                // whether the function can be reset.
                if let Some((_, log)) = &kernel_log {
                    held.extend(
                        log.lines()
                            .filter_map(|l| vfiokit_explain::classify(l)?.device)
                            .filter_map(|a| a.parse::<PciAddress>().ok()),
                    );
                }
                host.pci.read_reset_methods(root, |d| {
                    functions.contains(&d.address) || held.contains(&d.address)
                })
            }
            _ => host.pci.read_reset_methods(root, |_| true),
        }
        host.problems.append(&mut host.pci.problems);
        let share = crate::share::ShareFacts::gather(root, release.as_deref(), &mut problems);
        // `modules.dep` once: the sharing facts keep its module paths, vendor-reset is looked up there.
        let dep = share
            .modules_dep
            .as_ref()
            .map(|(_, paths)| paths.as_slice());
        let amd = host.pci.devices.iter().any(|d| d.vendor.0 == 0x1002);
        let reset = amd.then(|| {
            crate::reset::ResetFacts::gather(root, release.as_deref(), dep, &mut problems)
        });
        Ok(HostFacts {
            root: root.root().to_path_buf(),
            is_host: root.is_host(),
            host,
            aliases,
            driver_modules,
            release,
            cpu_vendor,
            boot_loader,
            boot_cmdline,
            grub_dropins,
            modules,
            modules_load,
            modprobe,
            vms,
            pci_mappings,
            usb_mappings,
            qemu_version,
            hostname,
            roms,
            kernel_log,
            problems,
            uefi: root
                .exists(&root.path("sys/firmware"))
                .unwrap_or(false)
                .then(|| root.exists(&root.path("sys/firmware/efi")).unwrap_or(false)),
            share,
            reset,
        })
    }

    /// `rel` under the root, as messages name files.
    pub fn abs(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// `(major, minor)` of the running kernel.
    pub fn kernel(&self) -> Option<(u32, u32)> {
        self.release.as_deref().and_then(kernel_version)
    }

    /// `/etc/modprobe.d` as kmod reads it (files that could not be read are left out).
    pub fn modprobe_dir(&self) -> ModprobeDir {
        ModprobeDir::from_files(
            self.modprobe
                .iter()
                .filter_map(|f| {
                    let text = f.text.as_ref().ok()?.as_deref()?;
                    Some(DropIn {
                        name: f.path.file_name()?.to_string_lossy().into_owned(),
                        path: self.abs(&f.path),
                        doc: ModprobeConf::parse(text),
                    })
                })
                .collect(),
        )
    }

    /// What `update-grub` sources on a GRUB host, `etc/default/grub` first and then its
    /// drop-ins, each document named by its path under the root, with the files' paths relative
    /// to the root in the same order. `Ok(None)` on a host without GRUB or without
    /// `etc/default/grub`; an error when one of the files could not be read.
    pub fn grub_config(&self) -> Result<Option<(GrubConfig, Vec<PathBuf>)>> {
        let (BootLoader::Grub, Some(main)) = (&self.boot_loader, &self.boot_cmdline) else {
            return Ok(None);
        };
        let Some(text) = main.get()? else {
            return Ok(None);
        };
        let mut docs = vec![GrubDefault::parse(text).with_path(self.abs(&main.path))];
        let mut paths = vec![main.path.clone()];
        for f in &self.grub_dropins {
            if let Some(text) = f.get()? {
                docs.push(GrubDefault::parse(text).with_path(self.abs(&f.path)));
                paths.push(f.path.clone());
            }
        }
        Ok(Some((GrubConfig::new(docs), paths)))
    }

    /// The kernel command line GRUB's normal entries get after `update-grub`:
    /// `GRUB_CMDLINE_LINUX` then `GRUB_CMDLINE_LINUX_DEFAULT`, each as it stands after every file
    /// is sourced, with the file that holds the base of `GRUB_CMDLINE_LINUX_DEFAULT` (where
    /// `setup-host` adds parameters; `etc/default/grub` unless a drop-in overrides it). `None`
    /// when a file cannot be read or an assignment cannot be evaluated.
    pub(crate) fn grub_cmdline(&self) -> Option<(PathBuf, Cmdline)> {
        let (config, paths) = self.grub_config().ok()??;
        let mut all = String::new();
        for c in [
            config.cmdline_linux().ok()?,
            config.cmdline_linux_default().ok()?,
        ]
        .into_iter()
        .flatten()
        {
            all.push(' ');
            all.push_str(&c.render());
        }
        let base = config
            .sources(GRUB_CMDLINE_LINUX_DEFAULT)
            .ok()?
            .first()
            .map_or(0, |&(file, _)| file);
        Some((paths[base].clone(), Cmdline::parse(all.trim())))
    }

    /// The files besides [`HostFacts::grub_cmdline`]'s that add words to GRUB's command line
    /// (drop-ins extending `GRUB_CMDLINE_LINUX_DEFAULT`, the files of `GRUB_CMDLINE_LINUX`), in
    /// sourcing order; empty on a host without GRUB.
    pub(crate) fn grub_extensions(&self) -> Vec<PathBuf> {
        let (Some((base, _)), Ok(Some((config, paths)))) =
            (self.grub_cmdline(), self.grub_config())
        else {
            return Vec::new();
        };
        let linux = vfiokit_kcmdline::GRUB_CMDLINE_LINUX;
        let words = |name| {
            config
                .cmdline(name)
                .ok()
                .flatten()
                .is_some_and(|c| !c.is_empty())
        };
        let mut files: Vec<usize> = [GRUB_CMDLINE_LINUX_DEFAULT, linux]
            .into_iter()
            .filter(|&name| words(name))
            .flat_map(|name| config.sources(name).unwrap_or_default())
            .map(|(f, _)| f)
            .filter(|&f| paths[f] != base)
            .collect();
        files.sort_unstable();
        files.dedup();
        files.into_iter().map(|f| paths[f].clone()).collect()
    }

    /// Every line listing the module `name` (`-` and `_` equal) in the files loaded at boot:
    /// `etc/modules`, then `etc/modules-load.d/*.conf`; as `(path under the root, 1-based line)`.
    /// Files that could not be read are left out.
    pub fn module_lines(&self, name: &str) -> Vec<(PathBuf, usize)> {
        std::iter::once(&self.modules)
            .chain(&self.modules_load)
            .filter_map(|f| {
                let text = f.text.as_ref().ok()?.as_deref()?;
                let line = ModulesFile::parse(text).line_of(name)?;
                Some((f.path.clone(), line))
            })
            .collect()
    }

    /// Whether a `modules-load.d` file (not `/etc/modules`) already loads the module `name`:
    /// planners then do not list it in `/etc/modules` too.
    pub fn loaded_by_drop_in(&self, name: &str) -> bool {
        self.module_lines(name)
            .iter()
            .any(|(p, _)| *p != self.modules.path)
    }

    /// A VM's config file: this node's first, then another node's.
    pub fn vm(&self, vmid: u32) -> Option<&VmFile> {
        self.vms
            .iter()
            .find(|v| v.vmid == vmid && v.local)
            .or_else(|| self.vms.iter().find(|v| v.vmid == vmid))
    }

    /// The bytes of a ROM file named by `romfile=` (relative to `/usr/share/kvm`).
    pub fn rom(&self, name: &str) -> Option<&[u8]> {
        self.roms.get(name).map(Vec::as_slice)
    }

    /// The modules that claim or would claim `d`: its `modules.alias` matches and its bound
    /// driver's module, VFIO's own left out.
    pub fn host_modules(&self, d: &vfiokit_pci::PciDevice) -> std::collections::BTreeSet<String> {
        let mut mods: std::collections::BTreeSet<String> = match (&self.aliases, &d.modalias) {
            (Some(a), Some(m)) => a.modules_for(m).into_iter().map(str::to_string).collect(),
            _ => Default::default(),
        };
        if let Some(drv) = &d.driver {
            mods.insert(
                self.driver_modules
                    .get(drv)
                    .cloned()
                    .unwrap_or_else(|| drv.replace('-', "_")),
            );
        }
        mods.retain(|m| !matches!(m.replace('-', "_").as_str(), "vfio_pci" | "pci_stub"));
        mods
    }
}

/// The regular files `*<suffix>` of `dir` (dot files left out), sorted by name, as text files
/// relative to the root. A missing directory has none.
fn read_dir(root: &SysRoot, dir: &Path, suffix: &str, problems: &mut Vec<String>) -> Vec<TextFile> {
    let mut names = match root.list_opt(dir) {
        Ok(names) => names,
        Err(e) => {
            problems.push(e.to_string());
            return Vec::new();
        }
    };
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let path = dir.join(&n);
        if !n.ends_with(suffix) || n.starts_with('.') || !root.is_file(&path).unwrap_or(true) {
            continue;
        }
        let rel = path
            .strip_prefix(root.root())
            .map_or(path.clone(), Path::to_path_buf);
        out.push(TextFile::read(root, rel, problems));
    }
    out
}

/// For each bound PCI driver, the module its `module` link names (`xhci_hcd` → `xhci_pci`); a
/// driver built into the kernel has none and keeps its own name (`-` read as `_`, as kmod does).
/// One `readlink` a driver, relative to `sys/bus/pci/drivers` opened once; the link's text must
/// lead to `sys/module/<name>` (the kernel writes `../../../../module/<name>`).
fn driver_modules(root: &SysRoot, host: &Host) -> BTreeMap<String, String> {
    let drivers = root.sys_bus_drivers("pci");
    let dir = root.open_dir(&drivers).ok();
    let mut out = BTreeMap::new();
    for d in host.pci.devices.iter().filter_map(|d| d.driver.as_deref()) {
        if out.contains_key(d) {
            continue;
        }
        let module = match &dir {
            // Below the directory's real path, so the read is relative to it.
            Some(dir) => dir
                .read_link(&dir.path().join(d).join("module"))
                .ok()
                .flatten()
                .and_then(|target| {
                    let real = vfiokit_sysfs::join_lexically(&dir.path().join(d), &target)?;
                    let rel = root.relative(&real)?;
                    (rel.parent() == Some(Path::new("sys/module")))
                        .then(|| rel.file_name()?.to_str().map(str::to_string))?
                }),
            None => root
                .link_name(&drivers.join(d).join("module"))
                .ok()
                .flatten(),
        };
        out.insert(d.to_string(), module.unwrap_or_else(|| d.replace('-', "_")));
    }
    out
}

/// What the VM configs name: the host functions of their `hostpci` entries (`None` when an
/// entry goes through a cluster mapping, whose functions are another file's to say) and their
/// `romfile`s. The functions the kernel log names are added where the reset methods are read.
struct Named {
    functions: Option<Vec<PciAddress>>,
    roms: Vec<String>,
}

fn named_functions(host: &Host, vms: &[VmFile]) -> Named {
    let mut named = Named {
        functions: Some(Vec::new()),
        roms: Vec::new(),
    };
    for config in vms.iter().filter_map(VmFile::config) {
        for (_, entry) in crate::vm::hostpcis(&config) {
            if entry.mapping.is_some() {
                named.functions = None;
            }
            if let Some(list) = &mut named.functions {
                list.extend(
                    host.pci
                        .devices
                        .iter()
                        .map(|d| d.address)
                        .filter(|&a| crate::vm::names(&entry, a)),
                );
            }
            named.roms.extend(entry.romfile.clone());
        }
    }
    named
}

/// Intel or AMD, from the IOMMU units or, with the IOMMU off, from `/proc/cpuinfo`.
fn cpu_vendor(root: &SysRoot, host: &Host) -> Option<IommuKind> {
    if let Some(k @ (IommuKind::Intel | IommuKind::Amd)) = host.iommu.kind {
        return Some(k);
    }
    let text = root.read_attr_opt(&root.proc_cpuinfo()).ok()??;
    let vendor = text
        .lines()
        .find_map(|l| l.strip_prefix("vendor_id")?.split(':').nth(1))?;
    match vendor.trim() {
        "GenuineIntel" => Some(IommuKind::Intel),
        "AuthenticAMD" | "HygonGenuine" => Some(IommuKind::Amd),
        _ => None,
    }
}

/// VM configs: `etc/pve/qemu-server/*.conf` (this node), then `etc/pve/nodes/*/qemu-server/*.conf`.
fn read_vms(root: &SysRoot, problems: &mut Vec<String>) -> Vec<VmFile> {
    let mut out = Vec::new();
    let rel = |p: &Path| {
        p.strip_prefix(root.root())
            .map_or(p.to_path_buf(), Path::to_path_buf)
    };
    let mut dirs = vec![(root.etc("pve/qemu-server"), true)];
    let nodes = root.etc("pve/nodes");
    for node in root.list_opt(&nodes).unwrap_or_default() {
        dirs.push((nodes.join(node).join("qemu-server"), false));
    }
    for (dir, local) in dirs {
        let mut names = root.list_opt(&dir).unwrap_or_default();
        names.sort_by_key(|n| (n.len(), n.clone()));
        for name in names {
            let Some(vmid) = name.strip_suffix(".conf").and_then(|v| v.parse().ok()) else {
                continue;
            };
            let path = dir.join(&name);
            // /etc/pve/qemu-server is a link to this node's directory: keep one copy.
            if !local && out.iter().any(|v: &VmFile| v.local && v.vmid == vmid) {
                continue;
            }
            out.push(VmFile {
                vmid,
                local,
                file: TextFile::read(root, rel(&path), problems),
            });
        }
    }
    out
}

/// The QEMU version: on `/` from `qemu-system-x86_64 --version` (read-only), else the root's
/// recorded output.
fn qemu_version(root: &SysRoot) -> Option<((u32, u32), String)> {
    if root.is_host()
        && let Ok(out) = std::process::Command::new("qemu-system-x86_64")
            .arg("--version")
            .output()
        && let Some(v) = parse_qemu_version(&String::from_utf8_lossy(&out.stdout))
    {
        return Some((v, "qemu-system-x86_64 --version on this host".into()));
    }
    let record = root.qemu_version_record();
    let text = root.read_attr_opt(&record).ok()??;
    parse_qemu_version(&text).map(|v| (v, format!("the recorded {}", record.display())))
}

/// Where a capture records the kernel log, relative to the root.
pub(crate) const KERNEL_LOG_RECORD: &str = "var/lib/vfiokit/capture/kernel-log";

/// The kernel log and its source: on `/` the current boot's, asked read-only from
/// `journalctl -k -b`, else `dmesg`; on another root the recorded file. Bytes that are not
/// UTF-8 are replaced, not refused: a log is read for what it says.
fn kernel_log(root: &SysRoot) -> Option<(String, String)> {
    if root.is_host() {
        let run = |argv: &[&str]| {
            let out = std::process::Command::new(argv[0])
                .args(&argv[1..])
                .stdin(std::process::Stdio::null())
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        };
        return run(&["journalctl", "-k", "-b", "--no-pager"])
            .map(|t| ("journalctl -k -b".to_string(), t))
            .or_else(|| run(&["dmesg"]).map(|t| ("dmesg".to_string(), t)));
    }
    let bytes = root
        .read_bytes_opt(&root.var_lib("vfiokit/capture/kernel-log"))
        .ok()??;
    Some((
        KERNEL_LOG_RECORD.to_string(),
        String::from_utf8_lossy(&bytes).into_owned(),
    ))
}

/// The QEMU version for a VM: the host's, else the config's machine line.
pub(crate) fn qemu_for(facts: &HostFacts, config: &VmConfig) -> Option<((u32, u32), String)> {
    if let Some(v) = &facts.qemu_version {
        return Some(v.clone());
    }
    let machine = Machine::parse(config.get("machine")?).ok()?;
    machine
        .version
        .map(|v| (v, format!("the VM's machine line ({})", machine.raw_type)))
}
