//! Sharing the Intel iGPU instead of giving it away: GVT-g mediated devices (Broadwell to Comet
//! Lake) and SR-IOV virtual functions (Tiger Lake and later, with the out-of-tree
//! i915-sriov-dkms). Facts in `../shared/reference/igd-sharing.md`.
//!
//! - [`ShareFacts`]: what the running kernel builds (`modules.dep`), which modules are loaded,
//!   `/etc/sysfs.conf` and `/etc/sysfs.d`, whether sysfsutils is installed, the mdev instances.
//! - [`sharing`]: which mode an iGPU's generation supports, by device id; [`igpu_modes`]: for
//!   each of the three modes, whether it is supported and what the host still lacks.
//! - [`plan`]: `setup-host --share ADDR [--vfs N]`, the host side of GVT-g or SR-IOV, or a
//!   typed [`Refusal`]; lines of the other modes go through the rule table's fixes.
//! - The VM side (`setup-vm --mdev ADDR=TYPE`, a VF through `--device`) is called from
//!   [`crate::vm::plan`]; the checks `verify` runs are rows of [`crate::rules::RULES`].

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;
use vfiokit_kcmdline::{Cmdline, ModulesFile};
use vfiokit_pci::{PciAddress, PciDevice};
use vfiokit_plan::Plan;
use vfiokit_sysfs::SysRoot;
use vfiokit_vmconf::{Machine, MachineKind, PropertyString, VmConfig};

use crate::edit::Docs;
use crate::facts::{HostFacts, TextFile};
use crate::refusal::Refusal;
use crate::rules::{Finding, Fix, Input, Severity, apply_fixes, audit, configured_cmdline};
use crate::{Error, Result};

/// Files whose presence shows that Debian's `sysfsutils` is installed, in the order looked at:
/// dpkg's file list, then what the package ships (the LSB init script that applies
/// `/etc/sysfs.conf` at boot, and `systool`).
const SYSFSUTILS_MARKERS: &[&str] = &[
    "var/lib/dpkg/info/sysfsutils.list",
    "etc/init.d/sysfsutils",
    "lib/systemd/system/sysfsutils.service",
    "usr/lib/systemd/system/sysfsutils.service",
    "usr/bin/systool",
];

/// The facts of iGPU sharing, read once by [`HostFacts::gather`].
#[derive(Debug, Clone, Default)]
pub struct ShareFacts {
    /// `lib/modules/<release>/modules.dep` (relative to the root) and the module paths it lists
    /// (`kernel/drivers/gpu/drm/i915/kvmgt.ko`, `updates/dkms/i915.ko`); `None` when the root
    /// has none (a recording may not carry it).
    pub modules_dep: Option<(PathBuf, Vec<String>)>,
    /// Loaded modules: the entries of `sys/module` (`kvmgt`, `i915`).
    pub loaded: BTreeSet<String>,
    /// `etc/sysfs.conf`, then `etc/sysfs.d/*.conf` by name, as sysfsutils reads them.
    pub sysfs_conf: Vec<TextFile>,
    /// The file that shows sysfsutils is installed (one of the sysfsutils marker files), `None`
    /// when it is not.
    pub sysfsutils: Option<String>,
    /// Mediated device instances: the UUIDs under `sys/bus/mdev/devices`.
    pub mdev_instances: BTreeSet<String>,
}

impl ShareFacts {
    /// Reads them; what cannot be read is pushed to `problems`.
    pub(crate) fn gather(
        root: &SysRoot,
        release: Option<&str>,
        problems: &mut Vec<String>,
    ) -> ShareFacts {
        let modules_dep = release.and_then(|r| {
            let rel = PathBuf::from(format!("lib/modules/{}/modules.dep", r.trim()));
            match root.read_text_opt(&root.path(&rel)) {
                Ok(Some(text)) => Some((
                    rel,
                    text.lines()
                        .filter_map(|l| l.split(':').next())
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect(),
                )),
                Ok(None) => None,
                Err(e) => {
                    problems.push(e.to_string());
                    None
                }
            }
        });
        let loaded = root
            .list_opt(&root.path("sys/module"))
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut sysfs_conf = vec![TextFile::read(root, "etc/sysfs.conf".into(), problems)];
        let dir = PathBuf::from("etc/sysfs.d");
        let mut names = root.list_opt(&root.path(&dir)).unwrap_or_default();
        names.sort();
        for n in names.into_iter().filter(|n| n.ends_with(".conf")) {
            sysfs_conf.push(TextFile::read(root, dir.join(n), problems));
        }
        let sysfsutils = SYSFSUTILS_MARKERS
            .iter()
            .find(|m| root.exists(&root.path(m)).unwrap_or(false))
            .map(|m| (*m).to_string());
        let mdev_instances = root
            .list_opt(&root.sys_bus_devices("mdev"))
            .unwrap_or_default()
            .into_iter()
            .collect();
        ShareFacts {
            modules_dep,
            loaded,
            sysfs_conf,
            sysfsutils,
            mdev_instances,
        }
    }

    /// Whether `modules.dep` lists a module file at `path` (without `.ko…`), `None` without
    /// a `modules.dep`.
    fn has_module(&self, path: &str) -> Option<bool> {
        let (_, paths) = self.modules_dep.as_ref()?;
        Some(paths.iter().any(|p| {
            let stem = p
                .strip_suffix(".xz")
                .or_else(|| p.strip_suffix(".zst"))
                .or_else(|| p.strip_suffix(".gz"))
                .unwrap_or(p);
            stem.strip_suffix(".ko") == Some(path)
                || (path.starts_with('*')
                    && stem
                        .strip_suffix(".ko")
                        .is_some_and(|s| s.ends_with(&path[1..])))
        }))
    }

    /// Whether the running kernel builds kvmgt (`…/kvmgt.ko` in `modules.dep`).
    pub fn has_kvmgt(&self) -> Option<bool> {
        self.has_module("*/kvmgt")
    }

    /// Whether i915-sriov-dkms is installed for the running kernel (`updates/dkms/i915.ko`).
    pub fn has_sriov_dkms(&self) -> Option<bool> {
        self.has_module("updates/dkms/i915")
    }
}

/// Which sharing mode an iGPU generation supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sharing {
    /// GVT-g mediated devices (in-tree i915 + kvmgt).
    GvtG,
    /// SR-IOV virtual functions (i915-sriov-dkms).
    Sriov,
    /// Neither (Gemini Lake, gen 11, Rocket Lake, unknown ids).
    None,
}

/// The family of an Intel iGPU device id and the sharing mode it supports
/// (igd-sharing.md §1: GVT's `is_supported_device`, the dkms `has_sriov` platforms).
pub fn sharing(device_id: u16) -> (&'static str, Sharing) {
    if device_id & 0xffe == 0xa84 {
        return ("Broxton/Apollo Lake", Sharing::GvtG);
    }
    match device_id & 0xff00 {
        0x1600 => ("Broadwell", Sharing::GvtG),
        0x1900 => ("Skylake", Sharing::GvtG),
        0x5900 => ("Kaby Lake", Sharing::GvtG),
        0x3e00 => ("Coffee Lake", Sharing::GvtG),
        0x9b00 => ("Comet Lake", Sharing::GvtG),
        0x9a00 => ("Tiger Lake", Sharing::Sriov),
        0x4600 => ("Alder Lake", Sharing::Sriov),
        0xa700 => ("Raptor Lake", Sharing::Sriov),
        0x7d00 => ("Meteor Lake/Arrow Lake", Sharing::Sriov),
        0x3100 => ("Gemini Lake", Sharing::None),
        0x8a00 => ("Ice Lake", Sharing::None),
        0x4500 => ("Elkhart Lake", Sharing::None),
        0x4e00 => ("Jasper Lake", Sharing::None),
        0x4c00 => ("Rocket Lake", Sharing::None),
        _ => ("unknown", Sharing::None),
    }
}

/// The Intel iGPU: an Intel display function at 00:02.0.
pub fn igpu(facts: &HostFacts) -> Option<&PciDevice> {
    facts.host.pci.devices.iter().find(|d| is_igpu(d))
}

fn is_igpu(d: &PciDevice) -> bool {
    d.vendor.0 == 0x8086
        && d.class.is_display()
        && (d.address.bus, d.address.device, d.address.function) == (0, 2, 0)
}

/// The attribute sysfsutils writes for `d`'s VF count, relative to `/sys`
/// (`devices/pci0000:00/0000:00:02.0/sriov_numvfs`).
pub fn numvfs_attr(d: &PciDevice) -> String {
    let a = d.address;
    format!("devices/pci{:04x}:{:02x}/{a}/sriov_numvfs", a.domain, a.bus)
}

/// A sysfsutils file (`/etc/sysfs.conf`): `attribute = value` lines relative to `/sys`, kept
/// byte for byte except the lines edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysfsConf {
    lines: Vec<String>,
    trailing_newline: bool,
}

impl SysfsConf {
    /// Reads the text (never fails: lines it does not understand are kept).
    pub fn parse(text: &str) -> SysfsConf {
        SysfsConf {
            lines: text.lines().map(str::to_string).collect(),
            trailing_newline: text.is_empty() || text.ends_with('\n'),
        }
    }

    /// The text.
    pub fn render(&self) -> String {
        let mut s = self.lines.join("\n");
        if self.trailing_newline && !self.lines.is_empty() {
            s.push('\n');
        }
        s
    }

    fn attr_of(line: &str) -> Option<(&str, &str)> {
        let t = line.trim();
        if t.starts_with('#') || t.starts_with("mode ") || t.starts_with("owner ") {
            return None;
        }
        let (k, v) = t.split_once('=')?;
        Some((k.trim(), v.trim()))
    }

    /// The value the last line for `attr` sets.
    pub fn get(&self, attr: &str) -> Option<&str> {
        self.lines
            .iter()
            .filter_map(|l| Self::attr_of(l))
            .filter(|(k, _)| *k == attr)
            .map(|(_, v)| v)
            .next_back()
    }

    /// Sets `attr = value` (the last line for it rewritten, else appended); whether it changed.
    pub fn set(&mut self, attr: &str, value: &str) -> bool {
        let line = format!("{attr} = {value}");
        let last = self
            .lines
            .iter()
            .rposition(|l| Self::attr_of(l).is_some_and(|(k, _)| k == attr));
        match last {
            Some(i) if Self::attr_of(&self.lines[i]).map(|(_, v)| v) == Some(value) => false,
            Some(i) => {
                self.lines[i] = line;
                true
            }
            None => {
                self.lines.push(line);
                true
            }
        }
    }

    /// Removes every line for `attr`; whether there was one.
    pub fn remove(&mut self, attr: &str) -> bool {
        let before = self.lines.len();
        self.lines
            .retain(|l| Self::attr_of(l).is_none_or(|(k, _)| k != attr));
        before != self.lines.len()
    }
}

/// The sysfsutils file that sets `attr` (the last one read wins) and its value.
fn sysfs_setting(facts: &HostFacts, attr: &str) -> Option<(PathBuf, String)> {
    facts
        .share
        .sysfs_conf
        .iter()
        .filter_map(|f| {
            let text = f.get().ok()??;
            let v = SysfsConf::parse(text).get(attr)?.to_string();
            Some((f.path.clone(), v))
        })
        .next_back()
}

/// One mode of an iGPU as `inspect` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ModeStatus {
    /// `whole-device`, `gvt-g` or `sr-iov`.
    pub mode: &'static str,
    /// Whether the iGPU's generation supports it.
    pub supported: bool,
    /// What the running host lacks for it (empty: ready); why not, when unsupported.
    pub missing: Vec<String>,
}

/// For the Intel iGPU `d`, the three modes: supported or not, and what the host lacks for each.
/// Empty for any other device.
pub fn igpu_modes(facts: &HostFacts, d: &PciDevice) -> Vec<ModeStatus> {
    if !is_igpu(d) {
        return Vec::new();
    }
    let (family, kind) = sharing(d.device.0);
    let running = Cmdline::parse(&facts.host.iommu.cmdline);
    let release = facts.release.as_deref().unwrap_or("?").trim().to_string();
    let mut whole = Vec::new();
    let uses = vm_uses(facts, d);
    if !uses.is_empty() {
        let list: Vec<String> = uses.iter().map(ToString::to_string).collect();
        whole.push(format!(
            "VMs use it shared ({}): giving it whole would stop them; remove those entries first",
            list.join("; ")
        ));
    } else if !d.driver_is_vfio_safe() {
        whole.push(format!(
            "bound to {}, not vfio-pci (vfiokit setup-host --device {})",
            d.driver.as_deref().unwrap_or("no driver"),
            d.address
        ));
    }
    let mut gvt = Vec::new();
    let mut sriov = Vec::new();
    match kind {
        Sharing::GvtG => {
            sriov.push(format!("{family} has no SR-IOV (Tiger Lake and later)"));
            if running.get("i915.enable_gvt").is_none() {
                gvt.push("i915.enable_gvt=1 is not on the running command line".to_string());
            }
            match facts.share.has_kvmgt() {
                Some(false) => gvt.push(format!("kernel {release} does not build kvmgt.ko")),
                _ if !facts.share.loaded.contains("kvmgt") => {
                    gvt.push("kvmgt is not loaded".to_string());
                }
                _ => {}
            }
            if d.mdev_types.is_empty() {
                gvt.push("no mdev_supported_types under the iGPU".to_string());
            }
        }
        Sharing::Sriov => {
            gvt.push(format!(
                "{family} has no GVT-g (Broadwell to Comet Lake only)"
            ));
            if facts.share.has_sriov_dkms() != Some(true) {
                sriov.push(format!(
                    "the i915-sriov-dkms module for kernel {release} is not installed (no updates/dkms/i915.ko in modules.dep)"
                ));
            }
            if running.get("i915.max_vfs").is_none() && running.get("xe.max_vfs").is_none() {
                sriov.push("i915.max_vfs is not on the running command line".to_string());
            }
            if d.sriov.as_ref().is_none_or(|s| s.num_vfs == 0) {
                sriov.push("no VFs enabled (sriov_numvfs is 0)".to_string());
            }
            if sysfs_setting(facts, &numvfs_attr(d)).is_none() {
                sriov.push("the VF count is not persistent (no sriov_numvfs line in /etc/sysfs.conf or /etc/sysfs.d)".to_string());
            }
            if facts.share.sysfsutils.is_none() {
                sriov.push("sysfsutils is not installed".to_string());
            }
        }
        Sharing::None => {
            gvt.push(format!(
                "{family} ({}) has no GVT-g (Broadwell to Comet Lake only)",
                d.device
            ));
            sriov.push(format!(
                "{family} ({}) has no SR-IOV (Tiger Lake and later)",
                d.device
            ));
        }
    }
    vec![
        ModeStatus {
            mode: "whole-device",
            supported: true,
            missing: whole,
        },
        ModeStatus {
            mode: "gvt-g",
            supported: kind == Sharing::GvtG,
            missing: gvt,
        },
        ModeStatus {
            mode: "sr-iov",
            supported: kind == Sharing::Sriov,
            missing: sriov,
        },
    ]
}

/// What `setup-host --share` was asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// The iGPU to share (`00:02.0`).
    pub device: PciAddress,
    /// SR-IOV: how many VFs; `None` for GVT-g.
    pub vfs: Option<u16>,
}

impl Request {
    /// What the plan looks at ([`crate::HostFacts::gather_for`]): the iGPU.
    pub fn scope(&self) -> crate::Scope {
        crate::Scope::Request {
            functions: vec![self.device],
            roms: Vec::new(),
        }
    }
}

/// The three ways of using the iGPU, for cleaning up the others' lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The whole device to one VM (vfio-pci ids, i915 blacklist).
    Whole,
    /// GVT-g (`i915.enable_gvt`, kvmgt).
    GvtG,
    /// SR-IOV (`i915.max_vfs`, `i915.enable_guc=3`, `module_blacklist=xe`, `sriov_numvfs`).
    Sriov,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Whole => "whole-device passthrough",
            Mode::GvtG => "GVT-g",
            Mode::Sriov => "SR-IOV",
        }
    }
}

/// The lines of `mode` for the iGPU `d` in the files setup-host owns, each as a finding of
/// `igpu-mode-conflict` whose fix removes it.
fn mode_lines(facts: &HostFacts, d: &PciDevice, mode: Mode, why: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let finding = |what: String, path: Option<PathBuf>, fix: Fix| {
        let mut f = Finding::new(
            "igpu-mode-conflict",
            Severity::Warning,
            format!(
                "{what} configures the iGPU {} for {}, {why}",
                d.address,
                mode.name()
            ),
            format!(
                "vfiokit setup-host --share {} (or --device {} for whole-device passthrough) removes the other modes' lines",
                d.address, d.address
            ),
        );
        if let Some(p) = path {
            f = f.at(p, None);
        }
        f.fixed_by(fix)
    };
    let conf = configured_cmdline(facts);
    let conf_has = |k: &str| conf.as_ref().is_some_and(|(_, c)| c.has(k));
    let conf_path = conf.as_ref().map(|(p, _)| p.clone());
    match mode {
        Mode::Whole => {
            let id = crate::id_of(d);
            let dir = facts.modprobe_dir();
            let listed = dir.options("vfio-pci", "ids").into_iter().any(|o| {
                o.value
                    .as_deref()
                    .is_some_and(|v| v.split(',').any(|i| i.trim().eq_ignore_ascii_case(&id)))
            });
            let blacklisted: Vec<&str> = ["i915", "xe"]
                .into_iter()
                .filter(|m| !dir.blacklisted(m).is_empty())
                .collect();
            if listed || !blacklisted.is_empty() {
                let what = if listed {
                    format!("options vfio-pci ids={id}")
                } else {
                    format!("blacklist {}", blacklisted.join(", "))
                };
                out.push(finding(
                    what,
                    None,
                    Fix::RemoveVfioId {
                        id: id.clone(),
                        device: d.address,
                        modules: vec!["i915".into(), "xe".into()],
                        why: format!(
                            "removes {id} from vfio-pci ids (and the i915/xe blacklist and softdep): the host keeps the iGPU {} ({why})",
                            d.address
                        ),
                    },
                ));
            }
        }
        Mode::GvtG => {
            if conf_has("i915.enable_gvt") {
                out.push(finding(
                    "i915.enable_gvt on the command line".into(),
                    conf_path.clone(),
                    Fix::RemoveCmdlineParam {
                        key: "i915.enable_gvt".into(),
                        why: format!("removes i915.enable_gvt: GVT-g is not used ({why})"),
                    },
                ));
            }
            if let Ok(Some(text)) = facts.modules.get()
                && ModulesFile::parse(text).contains("kvmgt")
            {
                out.push(finding(
                    "kvmgt in /etc/modules".into(),
                    Some(facts.modules.path.clone()),
                    Fix::RemoveModule {
                        module: "kvmgt".into(),
                        why: format!("removes kvmgt: GVT-g is not used ({why})"),
                    },
                ));
            }
        }
        Mode::Sriov => {
            for key in ["i915.max_vfs", "xe.max_vfs", "xe.force_probe"] {
                if conf_has(key) {
                    out.push(finding(
                        format!("{key} on the command line"),
                        conf_path.clone(),
                        Fix::RemoveCmdlineParam {
                            key: key.into(),
                            why: format!("removes {key}: SR-IOV is not used ({why})"),
                        },
                    ));
                }
            }
            if conf
                .as_ref()
                .is_some_and(|(_, c)| c.get("i915.enable_guc") == Some(Some("3")))
            {
                out.push(finding(
                    "i915.enable_guc=3 on the command line".into(),
                    conf_path.clone(),
                    Fix::RemoveCmdlineParam {
                        key: "i915.enable_guc".into(),
                        why: format!("removes i915.enable_guc=3 (SR-IOV's GuC submission): SR-IOV is not used ({why})"),
                    },
                ));
            }
            if conf
                .as_ref()
                .is_some_and(|(_, c)| c.list_items("module_blacklist").contains(&"xe"))
            {
                out.push(finding(
                    "module_blacklist=xe on the command line".into(),
                    conf_path.clone(),
                    Fix::RemoveCmdlineListItem {
                        key: "module_blacklist".into(),
                        item: "xe".into(),
                        why: format!("removes xe from module_blacklist: only SR-IOV's i915 flavour needs it ({why})"),
                    },
                ));
            }
            let attr = numvfs_attr(d);
            if let Some((path, _)) = sysfs_setting(facts, &attr) {
                out.push(finding(
                    format!("{attr} in {}", path.display()),
                    Some(path),
                    Fix::RemoveSysfsAttr {
                        attr: attr.clone(),
                        why: format!("removes {attr}: SR-IOV is not used ({why})"),
                    },
                ));
            }
        }
    }
    out
}

/// The mode the iGPU runs in now: on vfio-pci, offering mdev types, or with VFs enabled.
fn running_mode(d: &PciDevice) -> Option<Mode> {
    if d.driver.as_deref() == Some("vfio-pci") {
        Some(Mode::Whole)
    } else if !d.mdev_types.is_empty() {
        Some(Mode::GvtG)
    } else if d.sriov.as_ref().is_some_and(|s| s.num_vfs > 0) {
        Some(Mode::Sriov)
    } else {
        None
    }
}

const MODES: [Mode; 3] = [Mode::Whole, Mode::GvtG, Mode::Sriov];

/// Rule `igpu-mode-conflict`: lines of several modes for the iGPU. When the iGPU runs in one of
/// them, the others' lines are stale (fixable); otherwise which to keep is the user's choice.
pub(crate) fn igpu_mode_conflict(i: &Input<'_>) -> Vec<Finding> {
    let Some(d) = igpu(i.facts) else {
        return Vec::new();
    };
    let configured: Vec<(Mode, Vec<Finding>)> = MODES
        .iter()
        .map(|&m| (m, mode_lines(i.facts, d, m, "")))
        .filter(|(_, f)| !f.is_empty())
        .collect();
    if configured.len() < 2 {
        return Vec::new();
    }
    let keep = running_mode(d).filter(|m| configured.iter().any(|(c, _)| c == m));
    let mut out = Vec::new();
    for (m, _) in &configured {
        if Some(*m) == keep {
            continue;
        }
        let why = match keep {
            Some(k) => format!("but the iGPU runs in {} mode", k.name()),
            None => "alongside another mode's lines".to_string(),
        };
        for mut f in mode_lines(i.facts, d, *m, &why) {
            if keep.is_none() {
                f.fixable = false;
                f.edit = None;
            }
            out.push(f);
        }
    }
    out
}

/// The fixes that remove every mode's lines except `keep`'s (for `setup-host`).
fn cleanup(facts: &HostFacts, d: &PciDevice, keep: Mode) -> Vec<Fix> {
    let why = format!("the iGPU now uses {}", keep.name());
    MODES
        .iter()
        .filter(|&&m| m != keep)
        .flat_map(|&m| mode_lines(facts, d, m, &why))
        .filter_map(|f| f.edit)
        .collect()
}

/// For `setup-host --device`: when the iGPU is given away whole, the GVT-g and SR-IOV lines go.
pub(crate) fn clean_for_whole(
    facts: &HostFacts,
    members: &[PciAddress],
    docs: &mut Docs<'_>,
) -> Result<()> {
    if let Some(d) = igpu(facts).filter(|d| members.contains(&d.address)) {
        apply_fixes(docs, cleanup(facts, d, Mode::Whole).iter())?;
    }
    Ok(())
}

/// The i915-sriov-dkms release the reference gives for a kernel.
fn dkms_release(kernel: (u32, u32)) -> Option<&'static str> {
    match kernel {
        (6, 17..=19) | (7, 0) => Some("2026.05.06 (kernels 6.17 to 7.0)"),
        (6, 12..=16) => Some("2026.03.05.1 (kernels 6.12 to 6.19)"),
        (6, 8..=11) => Some("2025.07.22 (kernels 6.8 to 6.12)"),
        (6, 1..=7) => Some("the intel-lts-v6.1 branch (kernels 6.1 to 6.7)"),
        _ => None,
    }
}

/// `setup-host --share ADDR [--vfs N]`: the host side of GVT-g or SR-IOV, or why not.
pub fn plan(facts: &HostFacts, req: &Request) -> Result<std::result::Result<Plan, Refusal>> {
    let d = facts
        .host
        .device(req.device)
        .ok_or(Error::NoDevice(req.device))?;
    if !is_igpu(d) {
        return Err(Error::Invalid(format!(
            "{} ({}:{}, class {}) is not an Intel iGPU at 00:02.0: --share shares Intel integrated graphics (GVT-g or SR-IOV)",
            d.address, d.vendor, d.device, d.class
        )));
    }
    let release = facts
        .release
        .as_deref()
        .map(str::trim)
        .ok_or_else(|| Error::NoRelease(facts.abs("proc/sys/kernel/osrelease")))?;
    let (family, kind) = sharing(d.device.0);
    let label = format!("{} ({family}, {})", d.address, crate::id_of(d));
    let mut docs = Docs::new(facts);
    let mode = match (kind, req.vfs) {
        (Sharing::None, _) => {
            return Ok(Err(Refusal::plain(format!(
                "refused: {label} can be shared neither by GVT-g (Broadwell to Comet Lake only: the kernel's GVT says \"Unsupported device. GVT-g is disabled\") \
                 nor by SR-IOV (Tiger Lake and later, i915-sriov-dkms)\n\
                 it can only be given whole to one VM: vfiokit setup-host --device {}\n",
                d.address
            ))));
        }
        (Sharing::GvtG, Some(_)) => {
            return Ok(Err(Refusal::plain(format!(
                "refused: {label} has no SR-IOV virtual functions (Tiger Lake and later only); it supports GVT-g: \
                 vfiokit setup-host --share {} (without --vfs)\n",
                d.address
            ))));
        }
        (Sharing::Sriov, None) => {
            return Err(Error::Invalid(format!(
                "{label} is shared by SR-IOV (it has no GVT-g): say how many virtual functions with --vfs N (1 to 7)"
            )));
        }
        (Sharing::GvtG, None) => {
            if let Some(r) = plan_gvt(facts, d, release, &label, &mut docs)? {
                return Ok(Err(r));
            }
            Mode::GvtG
        }
        (Sharing::Sriov, Some(n)) => {
            if let Some(r) = plan_sriov(facts, d, n, release, &label, &mut docs)? {
                return Ok(Err(r));
            }
            Mode::Sriov
        }
    };
    apply_fixes(&mut docs, cleanup(facts, d, mode).iter())?;
    // The rest of the rule table's fixes, as setup-host applies them (the mode conflict is
    // decided above by the request).
    let findings = audit(facts, &[]);
    apply_fixes(
        &mut docs,
        findings
            .iter()
            .filter(|f| f.check != "igpu-mode-conflict")
            .filter_map(|f| f.edit.as_ref()),
    )?;
    let mut plan = docs.into_plan();
    for c in &mut plan.commands {
        if c.argv.first().is_some_and(|a| a == "update-initramfs") {
            c.why =
                "rebuild the initramfs so the module list and options take effect at boot".into();
        }
    }
    Ok(Ok(plan))
}

fn plan_gvt(
    facts: &HostFacts,
    d: &PciDevice,
    release: &str,
    label: &str,
    docs: &mut Docs<'_>,
) -> Result<Option<Refusal>> {
    match facts.share.has_kvmgt() {
        Some(false) => {
            let dep = facts.share.modules_dep.as_ref().map(|(p, _)| facts.abs(p));
            return Ok(Some(Refusal::plain(format!(
                "refused: GVT-g on {label} needs kvmgt.ko, and the running kernel {release} does not build it \
                 ({} lists no kvmgt.ko; some distributions leave DRM_I915_GVT_KVMGT out)\n\
                 boot a kernel that builds it (Proxmox's kernels do: apt install proxmox-default-kernel), then plan again\n",
                dep.map_or_else(|| "modules.dep".into(), |p| p.display().to_string())
            ))));
        }
        Some(true) => {}
        None => docs.notes.push(format!(
            "lib/modules/{release}/modules.dep is not there, so whether this kernel builds kvmgt.ko is not checked (Proxmox's kernels do)"
        )),
    }
    docs.cmdline(|c, reasons| {
        if c.get("i915.enable_gvt") != Some(Some("1")) {
            c.set("i915.enable_gvt", Some("1"));
            reasons.push(format!(
                "i915.enable_gvt=1: i915 turns GVT-g on for {}, which then offers mediated vGPU types (mdev_supported_types); the host keeps the iGPU",
                d.address
            ));
        }
        crate::host::intel_iommu_on(facts, c, reasons);
    })?;
    docs.load_module("kvmgt", || {
        "kvmgt: the GVT-g module (KVM + VFIO mdev glue); without it there are no mediated vGPU types"
            .to_string()
    })?;
    docs.notes.push(format!(
        "GVT-g: {} stays on i915 (no vfio-pci ids, no blacklist); after the reboot `vfiokit inspect` lists its mdev types and \
         `vfiokit setup-vm --vmid N --mdev {}=TYPE` gives one to a VM",
        d.address, d.address
    ));
    Ok(None)
}

fn plan_sriov(
    facts: &HostFacts,
    d: &PciDevice,
    n: u16,
    release: &str,
    label: &str,
    docs: &mut Docs<'_>,
) -> Result<Option<Refusal>> {
    let total = d.sriov.as_ref().map_or(7, |s| s.total_vfs.max(1)).min(7);
    if n == 0 || n > total {
        return Err(Error::Invalid(format!(
            "--vfs {n}: {label} offers 1 to {total} virtual functions"
        )));
    }
    if facts.share.has_sriov_dkms() != Some(true) {
        let dep = facts
            .share
            .modules_dep
            .as_ref()
            .map(|(p, _)| facts.abs(p).display().to_string())
            .unwrap_or_else(|| format!("lib/modules/{release}/modules.dep (not there)"));
        let rel = facts.kernel().and_then(dkms_release).map_or_else(
            || format!("no i915-sriov-dkms release known to vfiokit builds for kernel {release}: check the project's README for one that does"),
            |r| format!("download i915-sriov-dkms release {r} from https://github.com/strongtz/i915-sriov-dkms/releases and install it: dpkg -i i915-sriov-dkms_<release>_amd64.deb (its postinst runs depmod -a and update-initramfs)"),
        );
        return Ok(Some(Refusal::plain(format!(
            "refused: SR-IOV on {label} needs the out-of-tree i915-sriov-dkms module for the running kernel {release}, \
             and {dep} has no updates/dkms/i915.ko (mainline i915 cannot enable VFs on an iGPU; vfiokit never downloads anything)\n\
             install it, then plan again:\n\
             \x20 apt install build-essential dkms proxmox-headers-{release}\n\
             \x20 {rel}\n"
        ))));
    }
    docs.cmdline(|c, reasons| {
        crate::host::intel_iommu_on(facts, c, reasons);
        if c.get("i915.enable_guc") != Some(Some("3")) {
            c.set("i915.enable_guc", Some("3"));
            reasons.push(
                "i915.enable_guc=3: GuC submission and HuC loading, which the dkms i915 needs to run as SR-IOV PF"
                    .into(),
            );
        }
        if c.get("i915.max_vfs") != Some(Some("7")) {
            c.set("i915.max_vfs", Some("7"));
            reasons.push(
                "i915.max_vfs=7: the dkms i915 offers up to 7 VFs (the hardware's limit); sriov_numvfs picks how many"
                    .into(),
            );
        }
        if c.add_list_item("module_blacklist", "xe") {
            reasons.push(
                "module_blacklist=xe: keeps the xe driver off the iGPU so the dkms i915 drives the PF".into(),
            );
        }
    })?;
    let attr = numvfs_attr(d);
    let target = sysfs_setting(facts, &attr)
        .map(|(p, _)| p)
        .unwrap_or_else(|| PathBuf::from("etc/sysfs.conf"));
    let (doc, reasons) = docs.sysfs_conf(&target)?;
    if doc.set(&attr, &n.to_string()) {
        reasons.push(format!(
            "{attr} = {n}: sysfsutils writes {n} to sriov_numvfs at every boot, so the {n} VF(s) come back after a reboot{}",
            if facts.share.sysfsutils.is_none() {
                " — sysfsutils is not installed: apt install sysfsutils"
            } else {
                ""
            }
        ));
    }
    if facts.share.sysfsutils.is_none() {
        docs.notes.push(
            "sysfsutils is not installed: `apt install sysfsutils` (Debian's package applies /etc/sysfs.conf at boot); \
             without it sriov_numvfs is 0 after every reboot"
                .into(),
        );
    }
    docs.notes.push(format!(
        "SR-IOV: {} stays on the dkms i915 as the PF; never give it to a VM (that destroys every VF). \
         After the reboot its VFs appear as {:02x}:{:02x}.1 onwards: vfiokit setup-vm --vmid N --device <VF>",
        d.address, d.address.bus, d.address.device
    ));
    Ok(None)
}

/// A VM entry that uses an iGPU shared: one of its vGPUs (`mdev=`) or one of its VFs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmUse {
    /// The VM.
    pub vmid: u32,
    /// Its `hostpciN` key.
    pub key: String,
    /// The function the entry passes: the vGPU's parent, or the VF (`0000:00:02.1`).
    pub address: String,
    /// The vGPU type (`i915-GVTg_V5_8`); `None` for a VF.
    pub mdev: Option<String>,
}

impl std::fmt::Display for VmUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.mdev {
            Some(ty) => write!(
                f,
                "VM {} {}: vGPU {ty} of {}",
                self.vmid, self.key, self.address
            ),
            None => write!(f, "VM {} {}: the VF {}", self.vmid, self.key, self.address),
        }
    }
}

/// The entries of this node's VMs that use `pf` shared: `mdev=` on it, or one of its VFs (for
/// an SR-IOV iGPU also functions 1 to 7 of its slot, the VFs i915-sriov-dkms creates, when they
/// do not exist now). An entry that names `pf` itself without `mdev=` takes it whole: not counted.
pub(crate) fn vm_uses(facts: &HostFacts, pf: &PciDevice) -> Vec<VmUse> {
    let a = pf.address;
    let mut vfs: Vec<PciAddress> = pf.sriov.as_ref().map(|s| s.vfs.clone()).unwrap_or_default();
    vfs.extend(
        facts
            .host
            .pci
            .devices
            .iter()
            .filter(|d| d.physfn == Some(a))
            .map(|d| d.address),
    );
    if is_igpu(pf) && sharing(pf.device.0).1 == Sharing::Sriov {
        vfs.extend((1..=7).map(|function| PciAddress { function, ..a }));
    }
    let mut out = Vec::new();
    for vm in facts.vms.iter().filter(|v| v.local) {
        let Some(config) = vm.config() else { continue };
        for (key, h) in crate::vm::hostpcis(&config) {
            let on_pf = crate::vm::names(&h, a);
            let address = match &h.mdev {
                Some(_) if on_pf => a,
                None if !on_pf => match vfs.iter().find(|v| crate::vm::names(&h, **v)) {
                    Some(v) => *v,
                    None => continue,
                },
                _ => continue,
            };
            out.push(VmUse {
                vmid: vm.vmid,
                key,
                address: address.to_string(),
                mdev: h.mdev.clone(),
            });
        }
    }
    out
}

/// Why `a` must not be given away: it is a VF (`setup-host` only: Proxmox binds a VF itself),
/// the PF of enabled VFs, or a function whose vGPUs or VFs VMs use.
fn give_away(facts: &HostFacts, a: PciAddress, setup_host: bool) -> Option<Refusal> {
    let d = facts.host.device(a)?;
    if let Some(pf) = d.physfn.filter(|_| setup_host) {
        return Some(Refusal::plain(format!(
            "refused: {a} is an SR-IOV virtual function of {pf}: setup-host keeps host drivers off devices when they load at boot, \
             and a VF does not exist then (it is created after boot, when sriov_numvfs is written)\n\
             Proxmox binds a VF to vfio-pci itself when the VM starts (its PF stays on the host driver): \
             give it with vfiokit setup-vm --vmid N --device {a}\n"
        )));
    }
    let uses = vm_uses(facts, d);
    let vfs = d
        .sriov
        .as_ref()
        .filter(|s| s.num_vfs > 0 || !s.vfs.is_empty());
    if uses.is_empty() && vfs.is_none() {
        return None;
    }
    let mut msg = String::from("refused: ");
    let mut first_vf = None;
    if let Some(s) = vfs {
        let list: Vec<String> = s.vfs.iter().map(ToString::to_string).collect();
        let first = list.first().cloned().unwrap_or_else(|| "a VF".into());
        msg.push_str(&format!(
            "{a} is the physical function of {} enabled SR-IOV virtual function(s) ({}): giving it away unbinds it \
             from its host driver and destroys every VF, and the next start of a VM with a VF fails with \
             \"no pci device info for device '{first}'\"\n",
            s.num_vfs.max(u16::try_from(list.len()).unwrap_or(u16::MAX)),
            list.join(", ")
        ));
        first_vf = Some(first);
    } else {
        msg.push_str(&format!(
            "giving {a} away whole takes it from its host driver{}, which ends every vGPU and VF of it: \
             the VMs that use one would not start\n",
            if setup_host {
                " and removes the lines that share it (GVT-g, SR-IOV)"
            } else {
                ""
            }
        ));
    }
    if !uses.is_empty() {
        msg.push_str(&format!("{a} is shared with these VMs:\n"));
        for u in &uses {
            msg.push_str(&format!("  - {u}\n"));
        }
        let cmds: Vec<String> = uses
            .iter()
            .map(|u| format!("qm set {} --delete {}", u.vmid, u.key))
            .collect();
        msg.push_str(&format!(
            "remove those entries first ({}), then plan again to give {a} away whole\n",
            cmds.join("; ")
        ));
    } else if let Some(first) = first_vf {
        if setup_host {
            msg.push_str(&format!(
                "to give a VM a VF: vfiokit setup-vm --vmid N --device {first}; to give {a} away whole, turn SR-IOV off first \
                 (remove its sriov_numvfs line from /etc/sysfs.conf and reboot), then plan again\n"
            ));
        } else {
            msg.push_str(&format!("pass a VF instead: --device {first}\n"));
        }
    }
    let mut r = Refusal::plain(msg);
    r.alternatives = uses
        .iter()
        .map(|u| {
            format!(
                "remove {} from VM {} (qm set {} --delete {}), then give {a} away",
                u.key, u.vmid, u.vmid, u.key
            )
        })
        .collect();
    r.in_use = uses;
    Some(r)
}

/// `setup-vm`: refuses giving away (whole or by legacy IGD) the PF of enabled VFs (it destroys
/// every VF) or a function whose vGPUs or VFs VMs use.
pub(crate) fn check_vm_devices(facts: &HostFacts, devices: &[PciAddress]) -> Option<Refusal> {
    devices.iter().find_map(|&a| give_away(facts, a, false))
}

/// `setup-host --device`: refuses a VF (Proxmox binds it when the VM starts), the PF of enabled
/// VFs, and a function whose vGPUs or VFs VMs use.
pub(crate) fn check_host_devices(facts: &HostFacts, devices: &[PciAddress]) -> Option<Refusal> {
    devices.iter().find_map(|&a| give_away(facts, a, true))
}

/// The setter `vm::plan` passes in: `(config, key, value, why, reasons)`.
pub(crate) type SetFn<'s> = dyn FnMut(&mut VmConfig, &str, &str, String, &mut Vec<String>) + 's;

/// `setup-vm`: `--mdev ADDR=TYPE` entries, and `pcie=1` for VFs given with `--device` on q35.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_vm(
    facts: &HostFacts,
    vmid: u32,
    devices: &[PciAddress],
    mdev: &[(PciAddress, String)],
    config: &mut VmConfig,
    set: &mut SetFn<'_>,
    reasons: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Result<Option<Refusal>> {
    let q35 = config
        .get("machine")
        .and_then(|m| Machine::parse(m).ok())
        .is_some_and(|m| m.kind == MachineKind::Q35);
    for &a in devices {
        let Some(d) = facts.host.device(a).filter(|d| d.physfn.is_some()) else {
            continue;
        };
        let Some((key, value)) = crate::vm::hostpcis(config)
            .into_iter()
            .find(|(_, h)| crate::vm::names(h, a))
            .and_then(|(k, _)| Some((k.clone(), config.get(&k)?.to_string())))
        else {
            continue;
        };
        if d.driver.as_deref() != Some("vfio-pci") {
            notes.push(format!(
                "{a} is a VF on {}: Proxmox binds it to vfio-pci when the VM starts (the PF stays on its driver); do not use setup-host --device for a VF",
                d.driver.as_deref().unwrap_or("no driver")
            ));
        }
        if q35 {
            let mut p = PropertyString::parse(&value, Some("host"));
            if p.get("pcie").is_none() && p.set("pcie", "1") {
                set(
                    config,
                    &key,
                    &p.render(),
                    format!(
                        "{a} is an SR-IOV virtual function of {}: passed as a PCIe device (pcie=1) on q35",
                        d.physfn.map_or_else(String::new, |p| p.to_string())
                    ),
                    reasons,
                );
            }
        }
    }
    for (a, ty) in mdev {
        let d = facts.host.device(*a).ok_or(Error::NoDevice(*a))?;
        let full = a.to_string();
        let existing = crate::vm::hostpcis(config)
            .into_iter()
            .find(|(_, h)| h.mdev.is_some() && crate::vm::names(h, *a));
        if let Some((k, h)) = &existing
            && h.mdev.as_deref() == Some(ty.as_str())
        {
            let _ = k;
            continue;
        }
        if ty.is_empty() || ty.contains(['/', '.', ':']) {
            return Err(Error::Invalid(format!(
                "mdev: value does not match the regex pattern ([^/.:]+): {ty:?}"
            )));
        }
        if d.mdev_types.is_empty() {
            return Ok(Some(Refusal::plain(format!(
                "refused: pci device '{full}' does not support mediated devices \n\
                 (Proxmox's start-time message: {full} has no mdev_supported_types; for an Intel iGPU, \
                 vfiokit setup-host --share {a} turns GVT-g on)\n"
            ))));
        }
        let Some(t) = d.mdev_types.iter().find(|t| &t.id == ty) else {
            let types: Vec<&str> = d.mdev_types.iter().map(|t| t.id.as_str()).collect();
            return Ok(Some(Refusal::plain(format!(
                "refused: pci device '{full}' has no type '{ty}' (Proxmox's start-time message); its types: {}\n",
                types.join(", ")
            ))));
        };
        if t.available_instances == 0 {
            let free: Vec<String> = d
                .mdev_types
                .iter()
                .filter(|t| t.available_instances > 0)
                .map(|t| format!("{} ({} left)", t.id, t.available_instances))
                .collect();
            return Ok(Some(Refusal::plain(format!(
                "refused: pci device '{full}' has no available instances of '{ty}' (Proxmox's start-time message): \
                 the iGPU's graphics memory is taken by the vGPUs in use ({})\n\
                 types with an instance left: {}\n",
                d.mdev_types
                    .iter()
                    .filter(|t| t.instances_in_use > 0)
                    .map(|t| format!("{} × {}", t.instances_in_use, t.id))
                    .collect::<Vec<_>>()
                    .join(", "),
                if free.is_empty() {
                    "none".to_string()
                } else {
                    free.join(", ")
                }
            ))));
        }
        let key = match existing {
            Some((k, _)) => k,
            None => config
                .next_free("hostpci", 15)
                .map(|n| format!("hostpci{n}"))
                .ok_or_else(|| {
                    Error::Invalid("no free hostpciN left (0..=15 are all used)".into())
                })?,
        };
        let uuid = mdev_uuid(&key, vmid).unwrap_or_default();
        set(
            config,
            &key,
            &format!("{full},mdev={ty}"),
            format!(
                "a {ty} vGPU of {a} ({}; {} of them left): Proxmox creates it as {uuid} at start; the host keeps the iGPU",
                t.description
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                t.available_instances
            ),
            reasons,
        );
    }
    Ok(None)
}

/// The UUID Proxmox gives the mdev of `hostpciN` of VM `vmid`.
fn mdev_uuid(key: &str, vmid: u32) -> Option<String> {
    let n: u32 = key.strip_prefix("hostpci")?.parse().ok()?;
    Some(format!("{n:08}-0000-0000-0000-{vmid:012}"))
}

/// Whether GVT-g is configured for the iGPU: `i915.enable_gvt` in the boot configuration,
/// kvmgt in `/etc/modules`, or a VM with `mdev=` on it.
fn gvt_configured(facts: &HostFacts) -> Option<&PciDevice> {
    let d = igpu(facts)?;
    let conf = configured_cmdline(facts).is_some_and(|(_, c)| c.has("i915.enable_gvt"));
    let module = facts
        .modules
        .get()
        .ok()
        .flatten()
        .is_some_and(|t| ModulesFile::parse(t).contains("kvmgt"));
    let vm = facts.vms.iter().filter(|v| v.local).any(|v| {
        v.config().is_some_and(|c| {
            crate::vm::hostpcis(&c).iter().any(|(_, h)| {
                h.mdev.is_some()
                    && h.host.iter().any(|id| {
                        id.matches(
                            d.address.domain,
                            d.address.bus,
                            d.address.device,
                            d.address.function,
                        )
                    })
            })
        })
    });
    (conf || module || vm).then_some(d)
}

/// Rule `gvt-cmdline`: GVT-g configured, but the running kernel was booted without `enable_gvt`.
pub(crate) fn gvt_cmdline(i: &Input<'_>) -> Vec<Finding> {
    let Some(d) = gvt_configured(i.facts) else {
        return Vec::new();
    };
    let running = Cmdline::parse(&i.facts.host.iommu.cmdline);
    if matches!(running.get("i915.enable_gvt"), Some(Some("1" | "Y" | "y"))) {
        return Vec::new();
    }
    let in_conf = configured_cmdline(i.facts).is_some_and(|(_, c)| c.has("i915.enable_gvt"));
    vec![Finding::new(
        "gvt-cmdline",
        Severity::Error,
        format!(
            "GVT-g is configured for {}, but i915.enable_gvt=1 is not on the running command line: i915 runs without GVT-g and offers no vGPU types",
            d.address
        ),
        if in_conf {
            "reboot (after update-grub or proxmox-boot-tool refresh) so that the configured i915.enable_gvt=1 takes effect".to_string()
        } else {
            format!(
                "vfiokit setup-host --share {} --apply, then reboot",
                d.address
            )
        },
    )]
}

/// Rule `gvt-kvmgt`: GVT-g configured, but kvmgt is not loaded (or not built by this kernel).
pub(crate) fn gvt_kvmgt(i: &Input<'_>) -> Vec<Finding> {
    let Some(d) = gvt_configured(i.facts) else {
        return Vec::new();
    };
    if i.facts.share.loaded.contains("kvmgt") {
        return Vec::new();
    }
    let release = i.facts.release.as_deref().unwrap_or("?").trim();
    let (message, fix) = if i.facts.share.has_kvmgt() == Some(false) {
        (
            format!(
                "GVT-g is configured for {}, but the running kernel {release} does not build kvmgt.ko (not in modules.dep)",
                d.address
            ),
            "boot a kernel that builds kvmgt (Proxmox's kernels do)".to_string(),
        )
    } else {
        (
            format!(
                "GVT-g is configured for {}, but kvmgt is not loaded (no /sys/module/kvmgt): no vGPU types exist; \
                 with i915.enable_gvt missing or an unsupported iGPU, loading it fails \"No such device\"",
                d.address
            ),
            format!(
                "vfiokit setup-host --share {} (kvmgt in /etc/modules, i915.enable_gvt=1), then reboot",
                d.address
            ),
        )
    };
    vec![Finding::new("gvt-kvmgt", Severity::Error, message, fix)]
}

/// Rule `gvt-no-mdev-types`: GVT-g configured, but the iGPU offers no mediated device types.
pub(crate) fn gvt_no_mdev_types(i: &Input<'_>) -> Vec<Finding> {
    let Some(d) = gvt_configured(i.facts).filter(|d| d.mdev_types.is_empty()) else {
        return Vec::new();
    };
    let (family, kind) = sharing(d.device.0);
    let fix = if kind == Sharing::GvtG {
        "check `i915.enable_gvt=1` on the running command line and that kvmgt loaded (dmesg | grep -i gvt)".to_string()
    } else {
        format!(
            "{family} has no GVT-g: remove i915.enable_gvt and kvmgt, and share it by SR-IOV (Tiger Lake and later) or give it whole"
        )
    };
    vec![Finding::new(
        "gvt-no-mdev-types",
        Severity::Error,
        format!(
            "GVT-g is configured for {}, but it has no mdev_supported_types: no VM can get a vGPU",
            d.address
        ),
        fix,
    )]
}

/// Rule `vm-mdev-unavailable`: a VM's `mdev=` type that does not exist or has no instance left
/// (a VM whose instance already exists is fine: Proxmox reuses it).
pub(crate) fn vm_mdev_unavailable(i: &Input<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for vm in i.facts.vms.iter().filter(|v| v.local) {
        let Some(config) = vm.config() else { continue };
        for (key, h) in crate::vm::hostpcis(&config) {
            let Some(ty) = &h.mdev else { continue };
            let Some(d) = i.facts.host.pci.devices.iter().find(|d| {
                let a = d.address;
                crate::vm::names(&h, a)
            }) else {
                continue;
            };
            if mdev_uuid(&key, vm.vmid).is_some_and(|u| i.facts.share.mdev_instances.contains(&u)) {
                continue;
            }
            let full = d.address.to_string();
            let problem = match d.mdev_types.iter().find(|t| &t.id == ty) {
                _ if d.mdev_types.is_empty() => {
                    format!("pci device '{full}' does not support mediated devices")
                }
                None => format!("pci device '{full}' has no type '{ty}'"),
                Some(t) if t.available_instances == 0 => {
                    format!("pci device '{full}' has no available instances of '{ty}'")
                }
                Some(_) => continue,
            };
            out.push(
                Finding::new(
                    "vm-mdev-unavailable",
                    Severity::Error,
                    format!("VM {} {key}: the VM will not start: {problem}", vm.vmid),
                    format!(
                        "pick a type with an instance left (vfiokit inspect lists them; vfiokit setup-vm --vmid {} --mdev {}=TYPE), or stop a VM that holds one",
                        vm.vmid, d.address
                    ),
                )
                .at(&vm.file.path, None),
            );
        }
    }
    out
}

/// Whether SR-IOV is configured for the iGPU: `max_vfs` in the boot configuration or on the
/// running command line, or a `sriov_numvfs` line for it.
fn sriov_configured(facts: &HostFacts) -> Option<&PciDevice> {
    let d = igpu(facts)?;
    let keys = ["i915.max_vfs", "xe.max_vfs"];
    let running = Cmdline::parse(&facts.host.iommu.cmdline);
    let conf = configured_cmdline(facts).is_some_and(|(_, c)| keys.iter().any(|k| c.has(k)));
    let run = keys.iter().any(|k| running.has(k));
    (conf || run || sysfs_setting(facts, &numvfs_attr(d)).is_some()).then_some(d)
}

/// Why the VF count of `d` does not come back after a reboot, and the fix: no `sriov_numvfs`
/// line, or sysfsutils (which applies it) missing. `None` with both there, and the value set.
fn not_persistent(facts: &HostFacts, d: &PciDevice) -> Option<(String, String)> {
    match (
        sysfs_setting(facts, &numvfs_attr(d)),
        &facts.share.sysfsutils,
    ) {
        (None, _) => Some((
            "the VF count is not persistent (no sriov_numvfs line in /etc/sysfs.conf or /etc/sysfs.d)".to_string(),
            format!("vfiokit setup-host --share {} --vfs N --apply", d.address),
        )),
        (Some((p, v)), None) => Some((
            format!(
                "{} sets {v}, but sysfsutils, which applies it at boot, is not installed",
                p.display()
            ),
            "apt install sysfsutils".to_string(),
        )),
        (Some(_), Some(_)) => None,
    }
}

/// Rule `sriov-numvfs-zero`: SR-IOV configured and booted, but no VF enabled.
pub(crate) fn sriov_numvfs_zero(i: &Input<'_>) -> Vec<Finding> {
    let Some(d) = sriov_configured(i.facts) else {
        return Vec::new();
    };
    let running = Cmdline::parse(&i.facts.host.iommu.cmdline);
    if !(running.has("i915.max_vfs") || running.has("xe.max_vfs"))
        || d.sriov.as_ref().is_some_and(|s| s.num_vfs > 0)
    {
        return Vec::new();
    }
    let (why, fix) = match not_persistent(i.facts, d) {
        Some(found) => found,
        None => {
            let (p, v) = sysfs_setting(i.facts, &numvfs_attr(d)).unwrap_or_default();
            (
                format!(
                    "{} sets {v}, but it did not take (sysfsutils stops at a malformed line; the PF driver may not support SR-IOV)",
                    p.display()
                ),
                "systemctl status sysfsutils; dmesg | grep -i sriov".to_string(),
            )
        }
    };
    vec![Finding::new(
        "sriov-numvfs-zero",
        Severity::Error,
        format!(
            "SR-IOV is configured for {}, but sriov_numvfs is 0 after boot: {why}",
            d.address
        ),
        fix,
    )]
}

/// Rule `sriov-not-persistent`: VFs enabled now, but their count does not come back after a
/// reboot (`sriov-numvfs-zero` after it).
pub(crate) fn sriov_not_persistent(i: &Input<'_>) -> Vec<Finding> {
    let Some(d) = sriov_configured(i.facts) else {
        return Vec::new();
    };
    let Some(n) = d.sriov.as_ref().map(|s| s.num_vfs).filter(|&n| n > 0) else {
        return Vec::new();
    };
    let Some((why, fix)) = not_persistent(i.facts, d) else {
        return Vec::new();
    };
    vec![Finding::new(
        "sriov-not-persistent",
        Severity::Warning,
        format!(
            "{} has {n} VF(s) enabled now, but after a reboot sriov_numvfs is 0: {why}",
            d.address
        ),
        fix,
    )]
}

/// Rule `vm-vf-not-persistent`: a VM passes a VF of the iGPU that does not come back after a
/// reboot (no persisted count, sysfsutils missing, or a count below the VF's number).
pub(crate) fn vm_vf_not_persistent(i: &Input<'_>) -> Vec<Finding> {
    let Some(d) = igpu(i.facts) else {
        return Vec::new();
    };
    let missing = not_persistent(i.facts, d);
    let set = sysfs_setting(i.facts, &numvfs_attr(d));
    let mut out = Vec::new();
    for u in vm_uses(i.facts, d).into_iter().filter(|u| u.mdev.is_none()) {
        // The iGPU's VFs are functions 1 to 7 of its slot: 00:02.k is VF k.
        let k = u.address.parse::<PciAddress>().map_or(0, |a| a.function);
        let (why, fix) = match (&missing, &set) {
            (Some((why, fix)), _) => (why.clone(), fix.clone()),
            (None, Some((p, v))) if v.parse::<u8>().is_ok_and(|n| n < k) => (
                format!("{} sets only {v} VF(s)", p.display()),
                format!("vfiokit setup-host --share {} --vfs {k} --apply", d.address),
            ),
            _ => continue,
        };
        let file = i.facts.vms.iter().find(|v| v.local && v.vmid == u.vmid);
        let mut f = Finding::new(
            "vm-vf-not-persistent",
            Severity::Warning,
            format!(
                "VM {} {} passes the VF {} of {}, which is not there after a reboot ({why}): the VM will not start then",
                u.vmid, u.key, u.address, d.address
            ),
            fix,
        );
        if let Some(v) = file {
            f = f.at(&v.file.path, None);
        }
        out.push(f);
    }
    out
}

/// Rule `vm-mdev-parent-not-gvt`: a VM has a vGPU of the iGPU, but the configured boot command
/// line (the file, not the running kernel's) has no `i915.enable_gvt=1`: after the next boot
/// the iGPU offers no vGPU types and the VM does not start.
pub(crate) fn vm_mdev_parent_not_gvt(i: &Input<'_>) -> Vec<Finding> {
    let Some(d) = igpu(i.facts) else {
        return Vec::new();
    };
    let Some((path, conf)) = configured_cmdline(i.facts) else {
        return Vec::new();
    };
    if matches!(conf.get("i915.enable_gvt"), Some(Some("1" | "Y" | "y"))) {
        return Vec::new();
    }
    vm_uses(i.facts, d)
        .into_iter()
        .filter(|u| u.mdev.is_some())
        .map(|u| {
            let mut f = Finding::new(
                "vm-mdev-parent-not-gvt",
                Severity::Error,
                format!(
                    "VM {} {} uses a {} vGPU of {}, but {} has no i915.enable_gvt=1: after the next boot i915 runs without GVT-g, \
                     the iGPU offers no vGPU types and the VM will not start",
                    u.vmid,
                    u.key,
                    u.mdev.as_deref().unwrap_or_default(),
                    d.address,
                    path.display()
                ),
                format!(
                    "vfiokit setup-host --share {} --apply (i915.enable_gvt=1, kvmgt), or remove {} from VM {}",
                    d.address, u.key, u.vmid
                ),
            );
            if let Some(v) = i.facts.vms.iter().find(|v| v.local && v.vmid == u.vmid) {
                f = f.at(&v.file.path, None);
            }
            f
        })
        .collect()
}

/// Rule `sriov-dkms-missing`: SR-IOV configured, but the running kernel has no dkms i915.
pub(crate) fn sriov_dkms_missing(i: &Input<'_>) -> Vec<Finding> {
    let Some(d) = sriov_configured(i.facts) else {
        return Vec::new();
    };
    if i.facts.share.has_sriov_dkms() != Some(false) {
        return Vec::new();
    }
    let release = i.facts.release.as_deref().unwrap_or("?").trim();
    vec![Finding::new(
        "sriov-dkms-missing",
        Severity::Error,
        format!(
            "SR-IOV is configured for {}, but the running kernel {release} has no i915-sriov-dkms module (no updates/dkms/i915.ko in modules.dep): \
             mainline i915 cannot enable VFs. A kernel update without the module rebuilt is the usual cause",
            d.address
        ),
        format!(
            "apt install proxmox-headers-{release}; dkms autoinstall (or reinstall an i915-sriov-dkms release that builds for {release}), then reboot"
        ),
    )]
}

/// Rule `sriov-vf-group`: a VF in the same IOMMU group as its PF (Proxmox would take the PF
/// with it, destroying every VF).
pub(crate) fn sriov_vf_group(i: &Input<'_>) -> Vec<Finding> {
    let host = &i.facts.host;
    host.pci
        .devices
        .iter()
        .filter_map(|vf| {
            let pf = host.device(vf.physfn?)?;
            (vf.iommu_group.is_some() && vf.iommu_group == pf.iommu_group).then(|| {
                Finding::new(
                    "sriov-vf-group",
                    Severity::Error,
                    format!(
                        "the VF {} is in IOMMU group {} with its PF {}: giving it to a VM takes the PF too and destroys every VF",
                        vf.address,
                        vf.iommu_group.unwrap_or_default(),
                        pf.address
                    ),
                    "do not pass this VF; check that the IOMMU is on for the iGPU (intel_iommu=on) and the firmware's VT-d settings",
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_vm_devices_looks_past_an_unknown_address() {
        let (_dir, root) = vfiokit_fakesys::copy_recorded("n100/sriov").unwrap();
        let facts = crate::HostFacts::gather(&root).unwrap();
        let missing: vfiokit_pci::PciAddress = "00:1f.7".parse().unwrap();
        assert!(facts.host.device(missing).is_none());
        let refused = super::check_vm_devices(&facts, &[missing, "00:02.0".parse().unwrap()]);
        assert!(
            refused.is_some_and(|r| r.message.contains("destroys every VF")),
            "the PF after an unknown address is not checked"
        );
    }
}
