//! The rule table: every check `verify` runs, each with a stable id, and for the findings a file
//! edit can fix, the edit. `setup-host` and `verify --fix` apply the same edits.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;
use vfiokit_iommu::{Host, assess};
use vfiokit_kcmdline::{BootLoader, Cmdline, KernelCmdlineFile};
use vfiokit_pci::{PciAddress, PciDevice};
use vfiokit_plan::Plan;
use vfiokit_vmconf::{HostPci, VmConfig};

use crate::Result;
use crate::edit::Docs;
use crate::facts::HostFacts;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Passthrough fails or the host is at risk.
    Error,
    /// Something to look at; may be intended or transient.
    Warning,
    /// For information.
    Info,
}

/// An edit that fixes a finding, in the files `setup-host` owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// Remove a module from `/etc/modules` and `/etc/modules-load.d/*.conf`.
    RemoveModule {
        /// The module.
        module: String,
        /// The reason shown in the plan.
        why: String,
    },
    /// Remove `options MODULE KEY=…` wherever it is in modprobe.d.
    RemoveOption {
        /// The module.
        module: String,
        /// The parameter.
        key: String,
        /// The reason shown in the plan.
        why: String,
    },
    /// Remove an id from `options vfio-pci ids=`, and the `blacklist`/`softdep … pre: vfio-pci`
    /// lines of modules the device needs on the host.
    RemoveVfioId {
        /// The `vendor:device` id.
        id: String,
        /// The device it would take (kept out of the fix when the user forces it).
        device: PciAddress,
        /// Modules whose blacklist and vfio softdep go too.
        modules: Vec<String>,
        /// The reason shown in the plan.
        why: String,
    },
    /// Remove a parameter from the boot loader's command line.
    RemoveCmdlineParam {
        /// The parameter.
        key: String,
        /// The reason shown in the plan.
        why: String,
    },
    /// Add `key=value` to the boot loader's command line (into the comma list of
    /// `initcall_blacklist`; `video=` as a parameter of its own).
    AddCmdlineParam {
        /// The parameter.
        key: String,
        /// Its value.
        value: String,
        /// The reason shown in the plan.
        why: String,
    },
    /// Remove one item from a comma list on the command line (`module_blacklist=xe`).
    RemoveCmdlineListItem {
        /// The parameter.
        key: String,
        /// The item.
        item: String,
        /// The reason shown in the plan.
        why: String,
    },
    /// Remove an attribute's lines from `/etc/sysfs.conf` and `/etc/sysfs.d/*.conf`.
    RemoveSysfsAttr {
        /// The attribute relative to `/sys` (`devices/pci0000:00/0000:00:02.0/sriov_numvfs`).
        attr: String,
        /// The reason shown in the plan.
        why: String,
    },
}

/// One thing wrong with the host.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The rule's stable id (`vfio-virqfd`, `pending-reboot`).
    pub check: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
    /// Whether a file edit fixes it (`verify --fix`, `setup-host`).
    pub fixable: bool,
    /// The file it is in, relative to the root, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The line in that file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The edit that fixes it.
    #[serde(skip)]
    pub edit: Option<Fix>,
}

impl Finding {
    pub(crate) fn new(
        check: &'static str,
        severity: Severity,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            check,
            severity,
            message: message.into(),
            fix: fix.into(),
            fixable: false,
            path: None,
            line: None,
            edit: None,
        }
    }

    pub(crate) fn at(mut self, path: impl Into<PathBuf>, line: Option<usize>) -> Finding {
        self.path = Some(path.into());
        self.line = line;
        self
    }

    pub(crate) fn fixed_by(mut self, edit: Fix) -> Finding {
        self.fixable = true;
        self.edit = Some(edit);
        self
    }
}

/// Another node of the cluster, for the mapping check: its name and its host.
#[derive(Debug)]
pub struct NodeHost {
    /// The Proxmox node name.
    pub name: String,
    /// Its host.
    pub host: Host,
}

/// What the rules look at: this host's facts and the other nodes given.
pub struct Input<'a> {
    /// This host.
    pub facts: &'a HostFacts,
    /// Other nodes (for cluster mappings).
    pub nodes: &'a [NodeHost],
}

/// One rule: a stable id, its severity, and its detector.
pub struct Rule {
    /// The id findings carry as `check`; part of the JSON contract.
    pub id: &'static str,
    /// The severity of its findings.
    pub severity: Severity,
    /// Detects the rule's findings (pure: reads only the facts).
    pub detect: fn(&Input<'_>) -> Vec<Finding>,
}

/// Every rule, in the order `verify` reports them.
pub static RULES: &[Rule] = &[
    Rule {
        id: "unreadable",
        severity: Severity::Error,
        detect: unreadable,
    },
    Rule {
        id: "iommu-off",
        severity: Severity::Error,
        detect: iommu_off,
    },
    Rule {
        id: "allow-unsafe-interrupts",
        severity: Severity::Error,
        detect: allow_unsafe_interrupts,
    },
    Rule {
        id: "no-interrupt-remapping",
        severity: Severity::Error,
        detect: no_interrupt_remapping,
    },
    Rule {
        id: "pending-reboot",
        severity: Severity::Warning,
        detect: pending_reboot,
    },
    Rule {
        id: "acs-override-ineffective",
        severity: Severity::Error,
        detect: acs_override_ineffective,
    },
    Rule {
        id: "vfio-virqfd",
        severity: Severity::Error,
        detect: vfio_virqfd,
    },
    Rule {
        id: "vfio-ids-unpassable",
        severity: Severity::Error,
        detect: vfio_ids_unpassable,
    },
    Rule {
        id: "romfile-unloadable",
        severity: Severity::Error,
        detect: romfile_unloadable,
    },
    Rule {
        id: "romfile-missing",
        severity: Severity::Warning,
        detect: romfile_missing,
    },
    Rule {
        id: "romfile-needed",
        severity: Severity::Warning,
        detect: crate::gpu::romfile_needed,
    },
    Rule {
        id: "vm-config-invalid",
        severity: Severity::Error,
        detect: vm_config_invalid,
    },
    Rule {
        id: "vm-device-missing",
        severity: Severity::Error,
        detect: vm_device_missing,
    },
    Rule {
        id: "vm-device-unsafe",
        severity: Severity::Error,
        detect: vm_device_unsafe,
    },
    Rule {
        id: "vm-group-not-viable",
        severity: Severity::Error,
        detect: vm_group_not_viable,
    },
    Rule {
        id: "vm-device-host-driver",
        severity: Severity::Error,
        detect: vm_device_host_driver,
    },
    Rule {
        id: "vm-device-no-reset",
        severity: Severity::Warning,
        detect: crate::reset::vm_device_no_reset,
    },
    Rule {
        id: "boot-framebuffer",
        severity: Severity::Error,
        detect: crate::gpu::boot_framebuffer,
    },
    Rule {
        id: "mapping-invalid",
        severity: Severity::Error,
        detect: crate::mapping::invalid_entries,
    },
    Rule {
        id: "kernel-log",
        severity: Severity::Error,
        detect: kernel_log,
    },
    Rule {
        id: "gvt-cmdline",
        severity: Severity::Error,
        detect: crate::share::gvt_cmdline,
    },
    Rule {
        id: "gvt-kvmgt",
        severity: Severity::Error,
        detect: crate::share::gvt_kvmgt,
    },
    Rule {
        id: "gvt-no-mdev-types",
        severity: Severity::Error,
        detect: crate::share::gvt_no_mdev_types,
    },
    Rule {
        id: "vm-mdev-unavailable",
        severity: Severity::Error,
        detect: crate::share::vm_mdev_unavailable,
    },
    Rule {
        id: "sriov-numvfs-zero",
        severity: Severity::Error,
        detect: crate::share::sriov_numvfs_zero,
    },
    Rule {
        id: "sriov-not-persistent",
        severity: Severity::Warning,
        detect: crate::share::sriov_not_persistent,
    },
    Rule {
        id: "vm-vf-not-persistent",
        severity: Severity::Warning,
        detect: crate::share::vm_vf_not_persistent,
    },
    Rule {
        id: "vm-mdev-parent-not-gvt",
        severity: Severity::Error,
        detect: crate::share::vm_mdev_parent_not_gvt,
    },
    Rule {
        id: "sriov-dkms-missing",
        severity: Severity::Error,
        detect: crate::share::sriov_dkms_missing,
    },
    Rule {
        id: "sriov-vf-group",
        severity: Severity::Error,
        detect: crate::share::sriov_vf_group,
    },
    Rule {
        id: "igpu-mode-conflict",
        severity: Severity::Warning,
        detect: crate::share::igpu_mode_conflict,
    },
];

/// Runs every rule of [`RULES`].
pub fn audit(facts: &HostFacts, nodes: &[NodeHost]) -> Vec<Finding> {
    let input = Input { facts, nodes };
    RULES.iter().flat_map(|r| (r.detect)(&input)).collect()
}

/// The plan that fixes every fixable finding (`verify --fix`).
pub fn fix_plan(facts: &HostFacts, findings: &[Finding]) -> Result<Plan> {
    let mut docs = Docs::new(facts);
    apply_fixes(&mut docs, findings.iter().filter_map(|f| f.edit.as_ref()))?;
    Ok(docs.into_plan())
}

/// Applies fixes to the documents, each change with its reason.
pub(crate) fn apply_fixes<'f>(
    docs: &mut Docs<'_>,
    fixes: impl Iterator<Item = &'f Fix>,
) -> Result<()> {
    for fix in fixes {
        match fix {
            Fix::RemoveModule { module, why } => docs.remove_module(module, why)?,
            Fix::RemoveOption { module, key, why } => {
                for path in docs.all_modprobe()? {
                    let (doc, reasons) = docs.modprobe(&path)?;
                    if doc.remove_option(module, key) {
                        reasons.push(why.clone());
                    }
                }
            }
            Fix::RemoveVfioId {
                id, modules, why, ..
            } => {
                for path in docs.all_modprobe()? {
                    let (doc, reasons) = docs.modprobe(&path)?;
                    if doc.remove_ids("vfio-pci", &[id.as_str()]) {
                        reasons.push(why.clone());
                    }
                    for m in modules {
                        if doc.remove_blacklist(m) {
                            reasons.push(format!(
                                "removes blacklist {m}: the host keeps a device that needs it"
                            ));
                        }
                        if doc.remove_softdep(m, "vfio-pci") {
                            reasons.push(format!(
                                "removes softdep {m} pre: vfio-pci: no device given to VMs needs it"
                            ));
                        }
                    }
                }
            }
            Fix::RemoveCmdlineParam { key, why } => {
                docs.cmdline_everywhere(|c, reasons| {
                    if c.remove(key) {
                        reasons.push(why.clone());
                    }
                })?;
            }
            Fix::AddCmdlineParam { key, value, why } => {
                docs.cmdline(|c, reasons| {
                    if crate::gpu::add_param(c, key, value) {
                        reasons.push(why.clone());
                    }
                })?;
            }
            Fix::RemoveCmdlineListItem { key, item, why } => {
                docs.cmdline_everywhere(|c, reasons| {
                    if c.remove_list_item(key, item) {
                        reasons.push(why.clone());
                    }
                })?;
            }
            Fix::RemoveSysfsAttr { attr, why } => {
                for path in docs.all_sysfs_conf()? {
                    let (doc, reasons) = docs.sysfs_conf(&path)?;
                    if doc.remove(attr) {
                        reasons.push(why.clone());
                    }
                }
            }
        }
    }
    Ok(())
}

/// Words of a command line that the boot loader or the kernel adds by itself and that say
/// nothing about the configuration.
fn is_boot_noise(word: &str) -> bool {
    let key = word.split('=').next().unwrap_or(word);
    matches!(key, "BOOT_IMAGE" | "root" | "ro" | "rw" | "initrd" | "boot")
}

/// The command line the boot loader will boot next, as written in its configuration (for GRUB,
/// after `etc/default/grub.d/*.cfg`; the path is the file holding its base).
pub(crate) fn configured_cmdline(facts: &HostFacts) -> Option<(PathBuf, Cmdline)> {
    let file = facts.boot_cmdline.as_ref()?;
    let text = file.get().ok()??;
    let cmdline = match facts.boot_loader {
        BootLoader::Grub => return facts.grub_cmdline(),
        BootLoader::SystemdBoot => KernelCmdlineFile::parse(text).cmdline().clone(),
        BootLoader::Unknown { .. } => return None,
    };
    Some((file.path.clone(), cmdline))
}

fn unreadable(i: &Input<'_>) -> Vec<Finding> {
    // What the scan could not read makes every other check less certain: say so first.
    let mut out: Vec<Finding> = i
        .facts
        .host
        .all_problems()
        .into_iter()
        .chain(i.facts.problems.iter().cloned())
        .map(|p| {
            Finding::new(
                "unreadable",
                Severity::Error,
                p,
                "repair or restore the file; a recorded host may be incomplete (see CAPTURE-NOTES.txt)",
            )
        })
        .collect();
    // A GRUB command line vfiokit cannot evaluate silences the checks that compare it with the
    // running one (and stops the planners): said here, with the file and line.
    if let Ok(Some((config, _))) = i.facts.grub_config()
        && let Err(e) = config
            .cmdline_linux()
            .and_then(|_| config.cmdline_linux_default())
    {
        out.push(Finding::new(
            "unreadable",
            Severity::Error,
            e.to_string(),
            "write the command line as a plain NAME=\"…\" assignment outside shell logic; until then no check compares it with the running command line and no plan edits it",
        ));
    }
    out
}

fn iommu_off(i: &Input<'_>) -> Vec<Finding> {
    if i.facts.host.iommu.enabled {
        return Vec::new();
    }
    vec![Finding::new(
        "iommu-off",
        Severity::Error,
        "the IOMMU is off: no device can be given to a VM",
        "enable VT-d (Intel) or AMD-Vi (AMD) in the firmware setup, then `vfiokit setup-host --device ADDR`",
    )]
}

fn allow_unsafe_interrupts(i: &Input<'_>) -> Vec<Finding> {
    let dir = i.facts.modprobe_dir();
    let Some(found) = dir
        .options("vfio_iommu_type1", "allow_unsafe_interrupts")
        .pop()
    else {
        return Vec::new();
    };
    if i.facts.host.iommu.interrupt_remapping != Some(true)
        || !matches!(found.value.as_deref(), Some("1" | "Y" | "y"))
    {
        return Vec::new();
    }
    let file = format!("{}:{}", found.file, found.line);
    vec![Finding::new(
        "allow-unsafe-interrupts",
        Severity::Error,
        format!("{file} sets allow_unsafe_interrupts=1, but this IOMMU remaps interrupts: the option only weakens the host"),
        format!("remove `options vfio_iommu_type1 allow_unsafe_interrupts=1` from {file}, then update-initramfs -u -k all"),
    )
    .at(PathBuf::from("etc/modprobe.d").join(&found.file), Some(found.line))
    .fixed_by(Fix::RemoveOption {
        module: "vfio_iommu_type1".into(),
        key: "allow_unsafe_interrupts".into(),
        why: "removes allow_unsafe_interrupts=1: this IOMMU remaps interrupts, so the option only lets a VM attack the host".into(),
    })]
}

fn no_interrupt_remapping(i: &Input<'_>) -> Vec<Finding> {
    let dir = i.facts.modprobe_dir();
    let set = !dir
        .options("vfio_iommu_type1", "allow_unsafe_interrupts")
        .is_empty();
    if i.facts.host.iommu.interrupt_remapping != Some(false) || set {
        return Vec::new();
    }
    vec![Finding::new(
        "no-interrupt-remapping",
        Severity::Error,
        "the IOMMU does not remap interrupts: VFIO refuses to give devices to VMs",
        "check the firmware for an interrupt remapping option; only if there is none, `options vfio_iommu_type1 allow_unsafe_interrupts=1` (a security risk)",
    )]
}

fn pending_reboot(i: &Input<'_>) -> Vec<Finding> {
    let Some((path, configured)) = configured_cmdline(i.facts) else {
        return Vec::new();
    };
    let mut file = i.facts.abs(&path).display().to_string();
    let more = i.facts.grub_extensions();
    if !more.is_empty() {
        let more: Vec<String> = more
            .iter()
            .map(|p| i.facts.abs(p).display().to_string())
            .collect();
        file = format!("{file} (with {})", more.join(", "));
    }
    let running = Cmdline::parse(&i.facts.host.iommu.cmdline);
    let words = |c: &Cmdline| -> BTreeSet<String> {
        c.render()
            .split_whitespace()
            .filter(|w| !is_boot_noise(w))
            .map(str::to_string)
            .collect()
    };
    let (run, conf) = (words(&running), words(&configured));
    let list = |w: Vec<&String>| -> (String, &'static str) {
        let verb = if w.len() == 1 { "is" } else { "are" };
        (w.into_iter().cloned().collect::<Vec<_>>().join(" "), verb)
    };
    let mut out = Vec::new();
    let added: Vec<&String> = conf.difference(&run).collect();
    if !added.is_empty() {
        let (words, verb) = list(added);
        out.push(
            Finding::new(
                "pending-reboot",
                Severity::Warning,
                format!("{words} {verb} in {file} but not on the running command line"),
                "reboot (after update-grub or proxmox-boot-tool refresh) so that it takes effect",
            )
            .at(&path, None),
        );
    }
    let removed: Vec<&String> = run.difference(&conf).collect();
    if !removed.is_empty() {
        let (words, verb) = list(removed);
        out.push(Finding::new(
            "pending-reboot",
            Severity::Warning,
            format!("{words} {verb} on the running command line but no longer in {file}"),
            "reboot so that the running kernel matches the configuration, or put it back if it is needed",
        ).at(&path, None));
    }
    out
}

fn acs_override_ineffective(i: &Input<'_>) -> Vec<Finding> {
    let host = &i.facts.host;
    let Some(acs) = &host.iommu.acs_override else {
        return Vec::new();
    };
    let in_config = configured_cmdline(i.facts).filter(|(_, c)| c.has("pcie_acs_override"));
    let mut out = Vec::new();
    for id in acs.split(',').filter_map(|item| item.strip_prefix("id:")) {
        for d in host.pci.devices.iter().filter(|d| crate::id_of(d) == id) {
            let others = host
                .collateral(d)
                .map(|c| c.iter().filter(|c| !c.bridge).count())
                .unwrap_or(0);
            if others == 0 {
                continue;
            }
            let mut f = Finding::new(
                "acs-override-ineffective",
                Severity::Error,
                format!(
                    "pcie_acs_override names {id}, yet {} still shares its IOMMU group with {others} other function(s): the override changes nothing here and only weakens isolation",
                    d.address
                ),
                "remove pcie_acs_override from the kernel command line and reboot",
            );
            if let Some((path, _)) = &in_config {
                f = f.at(path, None).fixed_by(Fix::RemoveCmdlineParam {
                    key: "pcie_acs_override".into(),
                    why: format!("removes pcie_acs_override: it does not split {}'s IOMMU group on this host and only weakens isolation", d.address),
                });
            }
            out.push(f);
        }
    }
    out
}

fn vfio_virqfd(i: &Input<'_>) -> Vec<Finding> {
    let (Some(release), Some(kernel)) = (&i.facts.release, i.facts.kernel()) else {
        return Vec::new();
    };
    if kernel < (6, 2) {
        return Vec::new();
    }
    // systemd-modules-load reads /etc/modules and /etc/modules-load.d/*.conf: each listing fails.
    i.facts
        .module_lines("vfio_virqfd")
        .into_iter()
        .map(|(rel, line)| {
            let path = i.facts.abs(&rel);
            Finding::new(
                "vfio-virqfd",
                Severity::Error,
                format!("{} lists vfio_virqfd, which does not exist on {} (merged into vfio since Linux 6.2): systemd-modules-load fails on it", path.display(), release.trim()),
                format!("remove the vfio_virqfd line from {}", path.display()),
            )
            .at(rel, Some(line))
            .fixed_by(Fix::RemoveModule {
                module: "vfio_virqfd".into(),
                why: format!(
                    "removes vfio_virqfd: merged into vfio since Linux 6.2 ({} runs here); listing it makes systemd-modules-load fail",
                    release.trim()
                ),
            })
        })
        .collect()
}

fn vfio_ids_unpassable(i: &Input<'_>) -> Vec<Finding> {
    let host = &i.facts.host;
    let Some(found) = i.facts.modprobe_dir().options("vfio-pci", "ids").pop() else {
        return Vec::new();
    };
    let Some(ids) = &found.value else {
        return Vec::new();
    };
    let file = format!("{}:{}", found.file, found.line);
    let listed = |d: &&PciDevice| {
        ids.split(',')
            .any(|id| id.trim().eq_ignore_ascii_case(&crate::id_of(d)))
    };
    let harmful = |d: &PciDevice| {
        assess(host, &[d.address], &[])
            .ok()
            .filter(|a| !a.harms.is_empty())
    };
    // Modules that devices vfio-pci may keep taking still need their blacklist and softdep.
    let kept: BTreeSet<String> = host
        .pci
        .devices
        .iter()
        .filter(listed)
        .filter(|d| harmful(d).is_none())
        .flat_map(|d| i.facts.host_modules(d))
        .collect();
    let mut out = Vec::new();
    for d in host.pci.devices.iter().filter(listed) {
        let Some(a) = harmful(d) else { continue };
        let id = crate::id_of(d);
        let lost: Vec<String> = a
            .harms
            .iter()
            .map(|h| {
                format!(
                    "{} ({})",
                    h.address,
                    h.roles
                        .iter()
                        .map(|r| r.role.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect();
        let modules: Vec<String> = i
            .facts
            .host_modules(d)
            .into_iter()
            .filter(|m| !kept.contains(m))
            .collect();
        out.push(
            Finding::new(
                "vfio-ids-unpassable",
                Severity::Error,
                format!("{file} binds {id} ({}) to vfio-pci, but its IOMMU group cannot leave the host: {}", d.address, lost.join("; ")),
                format!("remove {id} from `options vfio-pci ids=` in {file} (and its blacklist lines), then update-initramfs -u -k all"),
            )
            .at(PathBuf::from("etc/modprobe.d").join(&found.file), Some(found.line))
            .fixed_by(Fix::RemoveVfioId {
                id: id.clone(),
                device: d.address,
                modules,
                why: format!(
                    "removes {id} from vfio-pci ids: {} stays with the host, its IOMMU group holds {}",
                    d.address,
                    lost.join(", ")
                ),
            }),
        );
    }
    out
}

/// A VM's hostpci entries with the host functions each names (a function-less id names the
/// whole slot, as Proxmox reads it).
struct VmDevice {
    vmid: u32,
    key: String,
    entry: HostPci,
    config: VmConfig,
    path: PathBuf,
    addrs: Vec<PciAddress>,
}

fn vm_devices(facts: &HostFacts) -> Vec<VmDevice> {
    let mut out = Vec::new();
    for vm in facts.vms.iter().filter(|v| v.local) {
        let Some(config) = vm.config() else { continue };
        // A mediated device (`mdev=`) leaves its parent with the host: not passthrough.
        for (key, entry) in crate::vm::hostpcis(&config)
            .into_iter()
            .filter(|(_, e)| e.mdev.is_none())
        {
            let addrs = crate::vm::functions_of(facts, &entry);
            out.push(VmDevice {
                vmid: vm.vmid,
                key,
                entry,
                config: config.clone(),
                path: vm.file.path.clone(),
                addrs,
            });
        }
    }
    out
}

fn romfile_unloadable(i: &Input<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for v in vm_devices(i.facts) {
        let Some(rom) = &v.entry.romfile else {
            continue;
        };
        let ovmf = v.config.get("bios") == Some("ovmf");
        let (Some(bytes), Some(d)) = (
            i.facts.rom(rom),
            v.addrs.first().and_then(|&a| i.facts.host.device(a)),
        ) else {
            continue;
        };
        if let crate::gpu::RomFit::Unloadable(why) = crate::gpu::rom_fit(bytes, d, ovmf) {
            out.push(Finding::new(
                "romfile-unloadable",
                Severity::Error,
                format!(
                    "VM {} {}: {} would not load {} for {}: {why}",
                    v.vmid,
                    v.key,
                    if ovmf { "OVMF" } else { "SeaBIOS" },
                    crate::vm::romfile_path(i.facts, rom).display(),
                    crate::id_of(d)
                ),
                "build a ROM for this device: vfiokit vbios extract FIRMWARE --device VID:DID --rom OUT",
            ).at(&v.path, None));
        }
    }
    out
}

fn romfile_missing(i: &Input<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for v in vm_devices(i.facts) {
        let Some(rom) = &v.entry.romfile else {
            continue;
        };
        if i.facts.rom(rom).is_some() {
            continue;
        }
        out.push(Finding::new(
            "romfile-missing",
            Severity::Warning,
            format!("VM {} {}: romfile {rom} does not exist ({})", v.vmid, v.key, crate::vm::romfile_path(i.facts, rom).display()),
            "put the ROM in /usr/share/kvm (vfiokit vbios extract builds one from the vendor firmware)",
        ).at(&v.path, None));
    }
    out
}

/// Errors Proxmox stops at in a VM config (`vm lint`'s errors), each at its line.
fn vm_config_invalid(i: &Input<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for vm in &i.facts.vms {
        let Some(config) = vm.config() else { continue };
        let options = vfiokit_vmconf::LintOptions {
            vmid: None,
            qemu: i.facts.qemu_version.as_ref().map(|(v, _)| *v),
        };
        let file = i.facts.abs(&vm.file.path);
        for d in vfiokit_vmconf::lint(&config, &options) {
            if d.severity != vfiokit_vmconf::Severity::Error {
                continue;
            }
            out.push(
                Finding::new(
                    "vm-config-invalid",
                    Severity::Error,
                    match d.line {
                        Some(l) => format!("{}:{l}: VM {}: {}", file.display(), vm.vmid, d.message),
                        None => format!("{}: VM {}: {}", file.display(), vm.vmid, d.message),
                    },
                    "correct the line: Proxmox drops a line it cannot parse (with this warning at every start, so the VM runs without it, and the next change made through Proxmox deletes it) or refuses to start the VM (`vfiokit vm lint FILE` checks the whole file)",
                )
                .at(&vm.file.path, d.line),
            );
        }
    }
    out
}

fn vm_device_missing(i: &Input<'_>) -> Vec<Finding> {
    vm_devices(i.facts)
        .into_iter()
        .filter(|v| v.addrs.is_empty() && v.entry.mapping.is_none())
        .map(|v| {
            Finding::new(
                "vm-device-missing",
                Severity::Error,
                format!("VM {} {}: no such PCI device on this host", v.vmid, v.key),
                "fix the address in the VM config",
            )
            .at(&v.path, None)
        })
        .collect()
}

fn vm_device_unsafe(i: &Input<'_>) -> Vec<Finding> {
    let host = &i.facts.host;
    let mut out = Vec::new();
    for v in vm_devices(i.facts) {
        for &a in &v.addrs {
            let f = match assess(host, &[a], &[]) {
                Ok(asm) if !asm.harms.is_empty() => Finding::new(
                    "vm-device-unsafe",
                    Severity::Error,
                    format!(
                        "VM {} {}: giving {a} to the VM takes host-critical functions with it ({})",
                        v.vmid,
                        v.key,
                        asm.harms
                            .iter()
                            .map(|h| h.address.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    "remove it from the VM; `vfiokit setup-host --device` explains the alternatives",
                ),
                Err(e) => Finding::new(
                    "vm-device-unsafe",
                    Severity::Error,
                    format!("VM {} {}: {e}", v.vmid, v.key),
                    "turn the IOMMU on",
                ),
                Ok(_) => continue,
            };
            out.push(f.at(&v.path, None));
        }
    }
    out
}

fn vm_group_not_viable(i: &Input<'_>) -> Vec<Finding> {
    let host = &i.facts.host;
    let mut out = Vec::new();
    for v in vm_devices(i.facts) {
        for &a in &v.addrs {
            let Some(group) = host
                .device(a)
                .and_then(|d| d.iommu_group)
                .and_then(|g| host.group(g))
            else {
                continue;
            };
            let blockers: Vec<String> = host
                .blockers(group)
                .into_iter()
                .filter(|b| b.address != a)
                .map(|b| format!("{} {}", b.address, b.reason))
                .collect();
            if !blockers.is_empty() {
                out.push(
                    Finding::new(
                        "vm-group-not-viable",
                        Severity::Error,
                        format!(
                            "VM {} {}: the IOMMU group of {a} is not viable: {}",
                            v.vmid,
                            v.key,
                            blockers.join("; ")
                        ),
                        hand_over_fix(
                            host,
                            a,
                            &v,
                            format!(
                                "vfiokit setup-host --device {a} (it plans every member of the group)"
                            ),
                        ),
                    )
                    .at(&v.path, None),
                );
            }
        }
    }
    out
}

fn vm_device_host_driver(i: &Input<'_>) -> Vec<Finding> {
    let host = &i.facts.host;
    let mut out = Vec::new();
    for v in vm_devices(i.facts) {
        for &a in &v.addrs {
            let Some(d) = host.device(a) else { continue };
            let Some(driver) = d.driver.as_deref().filter(|_| !d.driver_is_vfio_safe()) else {
                continue;
            };
            let (message, fix) = match modprobe_claims(i.facts, d) {
                Some(at) => (
                    format!(
                        "VM {} {}: {a} is bound to {driver}, not vfio-pci, until a reboot: {at} already hands it to vfio-pci at boot",
                        v.vmid, v.key
                    ),
                    "reboot (the modprobe configuration is in place; run update-initramfs -u -k all first if it was edited by hand)".to_string(),
                ),
                None => (
                    format!(
                        "VM {} {}: {a} is bound to {driver}, not vfio-pci",
                        v.vmid, v.key
                    ),
                    hand_over_fix(host, a, &v, format!("vfiokit setup-host --device {a}")),
                ),
            };
            out.push(
                Finding::new("vm-device-host-driver", Severity::Error, message, fix)
                    .at(&v.path, None),
            );
        }
    }
    out
}

/// The fix for a VM device the host still holds: `setup_host` (the command that hands it over),
/// unless the host cannot give it away — then removing it from the VM, as `setup-host` would
/// refuse (`vm-device-unsafe` says what the host would lose).
fn hand_over_fix(host: &Host, a: PciAddress, v: &VmDevice, setup_host: String) -> String {
    match assess(host, &[a], &[]) {
        Ok(asm) if !asm.harms.is_empty() => format!(
            "remove it from the VM (qm set {} --delete {}): the host cannot give {a} away (see vm-device-unsafe)",
            v.vmid, v.key
        ),
        _ => setup_host,
    }
}

/// Where the modprobe configuration already hands `d` to vfio-pci at boot (`vfio.conf:6`): its
/// id in the last `options vfio-pci ids=`, or an `install` line that writes `vfio-pci` to its
/// `driver_override`. A device bound elsewhere despite it waits for a reboot.
pub(crate) fn modprobe_claims(facts: &HostFacts, d: &PciDevice) -> Option<String> {
    let dir = facts.modprobe_dir();
    let id = crate::id_of(d);
    if let Some(found) = dir.options("vfio-pci", "ids").pop()
        && found
            .value
            .as_deref()
            .is_some_and(|ids| ids.split(',').any(|i| i.trim().eq_ignore_ascii_case(&id)))
    {
        return Some(format!("{}:{}", found.file, found.line));
    }
    let target = format!("/sys/bus/pci/devices/{}/driver_override", d.address);
    dir.files().iter().find_map(|f| {
        f.doc
            .directives()
            .into_iter()
            .find_map(|(line, dv)| match dv {
                vfiokit_kcmdline::Directive::Install { command, .. }
                    if command.contains(&target) && command.contains("vfio-pci") =>
                {
                    Some(format!("{}:{line}", f.name))
                }
                _ => None,
            })
    })
}

/// The rules whose findings already say what a kernel-log kind says, and the word their message
/// must contain besides (`None`: the device the line names, or any finding for a host-wide kind).
fn log_covered_by(
    kind: vfiokit_explain::KindId,
) -> Option<(&'static [&'static str], Option<&'static str>)> {
    use vfiokit_explain::KindId as K;
    Some(match kind {
        K::AcsOverrideActive => (
            &["acs-override-ineffective", "pending-reboot"],
            Some("pcie_acs_override"),
        ),
        K::NoInterruptRemapping => (&["no-interrupt-remapping"], None),
        K::IommuNotPresent => (&["iommu-off"], None),
        K::ResetUnsupported => (&["vm-device-no-reset"], None),
        K::GroupNotViable => (&["vm-group-not-viable"], None),
        K::MappingInvalid => (&["mapping-invalid"], None),
        _ => return None,
    })
}

/// What `vfiokit explain` finds in the kernel log ([`HostFacts::kernel_log`]): one finding per
/// kind and device of error or warning severity (its lines folded, with their total count and
/// the first line); the info kinds (`vga-console-deactivated`, `ir-enabled`) are good news, not
/// findings, and a kind another rule of the table already reports for the same device or thing
/// (the ACS override that `acs-override-ineffective` or `pending-reboot` names, a reset
/// `vm-device-no-reset` reports) is left to that rule. Never fixable: a log is history, and the
/// fix it names is a separate finding or command.
fn kernel_log(i: &Input<'_>) -> Vec<Finding> {
    use vfiokit_explain::Severity as Log;
    let Some((source, text)) = &i.facts.kernel_log else {
        return Vec::new();
    };
    let report = crate::explain::explain_host(i.facts, text);
    // The findings of the rules that may cover a kind, computed once.
    let mut others: Vec<Finding> = Vec::new();
    let mut ran: BTreeSet<&str> = BTreeSet::new();
    let mut folded: Vec<vfiokit_explain::Explained> = Vec::new();
    for e in report.explained {
        if let Some(f) = folded
            .iter_mut()
            .find(|f| f.kind == e.kind && f.device == e.device)
        {
            f.count += e.count;
        } else {
            folded.push(e);
        }
    }
    let mut out = Vec::new();
    for e in folded {
        let severity = match e.severity {
            Log::Error => Severity::Error,
            Log::Warning => Severity::Warning,
            Log::Info => continue,
        };
        if let Some((rules, word)) = log_covered_by(e.kind) {
            for r in RULES.iter().filter(|r| rules.contains(&r.id)) {
                if ran.insert(r.id) {
                    others.extend((r.detect)(i));
                }
            }
            let needle = word.or(e.device.as_deref());
            if others
                .iter()
                .filter(|f| rules.contains(&f.check))
                .any(|f| needle.is_none_or(|n| f.message.contains(n)))
            {
                continue;
            }
        }
        let device = e
            .device
            .as_deref()
            .map_or(String::new(), |d| format!(" on {d}"));
        let times = match e.count {
            1 => String::new(),
            n => format!(", {n} times"),
        };
        let message = format!(
            "{}{device}{times} in the kernel log ({source}, line {}): {}",
            e.kind, e.line, e.explanation
        );
        let finding = Finding::new("kernel-log", severity, message, e.fix);
        out.push(if i.facts.is_host {
            finding
        } else {
            finding.at(source, Some(e.line))
        });
    }
    out
}
