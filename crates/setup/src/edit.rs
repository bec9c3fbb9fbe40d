//! The host's configuration files as editable documents, turned into a plan at the end.

use std::collections::BTreeMap;
use std::path::PathBuf;

use vfiokit_kcmdline::{
    BootLoader, Cmdline, GrubDefault, KernelCmdlineFile, ModprobeConf, ModulesFile,
};
use vfiokit_plan::Plan;

use crate::facts::{HostFacts, TextFile};
use crate::{Error, Result};

/// A document being edited: the text it was read from, the document, and a reason per change.
struct Doc<T> {
    path: PathBuf,
    old: Option<String>,
    doc: T,
    reasons: Vec<String>,
}

enum BootDoc {
    Grub(GrubDefault),
    Kernel(KernelCmdlineFile),
}

/// The files `setup-host` and `verify --fix` own, loaded on first use.
pub(crate) struct Docs<'a> {
    facts: &'a HostFacts,
    boot: Option<Doc<BootDoc>>,
    modules: Option<Doc<ModulesFile>>,
    modprobe: BTreeMap<PathBuf, Doc<ModprobeConf>>,
    sysfs: BTreeMap<PathBuf, Doc<crate::share::SysfsConf>>,
    /// Notes for the plan (parser problems, decisions).
    pub notes: Vec<String>,
}

fn notes_of(
    notes: &mut Vec<String>,
    facts: &HostFacts,
    path: &PathBuf,
    problems: Vec<vfiokit_kcmdline::Problem>,
) {
    for p in problems {
        notes.push(format!(
            "{}:{}: {} (kept as it is)",
            facts.abs(path).display(),
            p.line,
            p.message
        ));
    }
}

impl<'a> Docs<'a> {
    pub fn new(facts: &'a HostFacts) -> Docs<'a> {
        Docs {
            facts,
            boot: None,
            modules: None,
            modprobe: BTreeMap::new(),
            sysfs: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    /// Edits the boot loader's command line; `why` is pushed for each change `f` reports.
    pub fn cmdline(&mut self, f: impl FnOnce(&mut Cmdline, &mut Vec<String>)) -> Result<()> {
        if self.boot.is_none() {
            let file = match (&self.facts.boot_loader, &self.facts.boot_cmdline) {
                (BootLoader::Unknown { reason }, _) => {
                    return Err(Error::NoBootLoader(reason.clone()));
                }
                (_, Some(file)) => file,
                (_, None) => return Err(Error::NoBootLoader("no command line file".into())),
            };
            let old = file.get()?.ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: no such file",
                    self.facts.abs(&file.path).display()
                ))
            })?;
            let (doc, problems) = if self.facts.boot_loader == BootLoader::SystemdBoot {
                let d = KernelCmdlineFile::parse(old);
                let p = d.problems();
                (BootDoc::Kernel(d), p)
            } else {
                let d = GrubDefault::parse(old).with_path(self.facts.abs(&file.path));
                let p = d.problems();
                (BootDoc::Grub(d), p)
            };
            notes_of(&mut self.notes, self.facts, &file.path, problems);
            self.boot = Some(Doc {
                path: file.path.clone(),
                old: Some(old.to_string()),
                doc,
                reasons: Vec::new(),
            });
        }
        let Some(boot) = self.boot.as_mut() else {
            return Ok(());
        };
        let reasons = &mut boot.reasons;
        match &mut boot.doc {
            BootDoc::Kernel(d) => {
                d.edit(|c| f(c, reasons));
            }
            BootDoc::Grub(d) => {
                d.edit_cmdline_linux_default(|c| f(c, reasons))?;
            }
        }
        Ok(())
    }

    /// `etc/modules`.
    pub fn modules(&mut self) -> Result<(&mut ModulesFile, &mut Vec<String>)> {
        if self.modules.is_none() {
            let file = &self.facts.modules;
            let old = file.get()?.map(str::to_string);
            let doc = ModulesFile::parse(old.as_deref().unwrap_or(""));
            notes_of(&mut self.notes, self.facts, &file.path, doc.problems());
            self.modules = Some(Doc {
                path: file.path.clone(),
                old,
                doc,
                reasons: Vec::new(),
            });
        }
        let m = self
            .modules
            .as_mut()
            .ok_or_else(|| Error::Invalid("etc/modules".into()))?;
        Ok((&mut m.doc, &mut m.reasons))
    }

    /// The modprobe.d file `rel` (created when it does not exist).
    pub fn modprobe(&mut self, rel: &PathBuf) -> Result<(&mut ModprobeConf, &mut Vec<String>)> {
        if !self.modprobe.contains_key(rel) {
            let file = self
                .facts
                .modprobe
                .iter()
                .find(|f| &f.path == rel)
                .cloned()
                .unwrap_or(TextFile {
                    path: rel.clone(),
                    text: Ok(None),
                });
            let old = file.get()?.map(str::to_string);
            let doc = ModprobeConf::parse(old.as_deref().unwrap_or(""));
            notes_of(&mut self.notes, self.facts, rel, doc.problems());
            self.modprobe.insert(
                rel.clone(),
                Doc {
                    path: rel.clone(),
                    old,
                    doc,
                    reasons: Vec::new(),
                },
            );
        }
        let d = self
            .modprobe
            .get_mut(rel)
            .ok_or_else(|| Error::Invalid(rel.display().to_string()))?;
        Ok((&mut d.doc, &mut d.reasons))
    }

    /// Every modprobe.d file of the host that exists, for edits that apply wherever a line is.
    pub fn all_modprobe(&mut self) -> Result<Vec<PathBuf>> {
        for f in &self.facts.modprobe {
            f.get()?;
        }
        let paths: Vec<PathBuf> = self
            .facts
            .modprobe
            .iter()
            .filter(|f| matches!(f.text, Ok(Some(_))))
            .map(|f| f.path.clone())
            .collect();
        for p in &paths {
            self.modprobe(p)?;
        }
        Ok(paths)
    }

    /// The sysfsutils file `rel` (`etc/sysfs.conf`, `etc/sysfs.d/*.conf`; created when missing).
    pub fn sysfs_conf(
        &mut self,
        rel: &PathBuf,
    ) -> Result<(&mut crate::share::SysfsConf, &mut Vec<String>)> {
        if !self.sysfs.contains_key(rel) {
            let file = self.facts.share.sysfs_conf.iter().find(|f| &f.path == rel);
            let old = match file {
                Some(f) => f.get()?.map(str::to_string),
                None => None,
            };
            let doc = crate::share::SysfsConf::parse(old.as_deref().unwrap_or(""));
            self.sysfs.insert(
                rel.clone(),
                Doc {
                    path: rel.clone(),
                    old,
                    doc,
                    reasons: Vec::new(),
                },
            );
        }
        let d = self
            .sysfs
            .get_mut(rel)
            .ok_or_else(|| Error::Invalid(rel.display().to_string()))?;
        Ok((&mut d.doc, &mut d.reasons))
    }

    /// Every sysfsutils file of the host that exists (`etc/sysfs.conf`, `etc/sysfs.d/*.conf`).
    pub fn all_sysfs_conf(&mut self) -> Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        for f in &self.facts.share.sysfs_conf {
            if f.get()?.is_some() {
                paths.push(f.path.clone());
            }
        }
        for p in &paths {
            self.sysfs_conf(p)?;
        }
        Ok(paths)
    }

    /// The plan: one edit per changed file (boot, modules, modprobe.d by name), then
    /// `update-initramfs` when modules or modprobe.d changed, then the boot loader's command.
    pub fn into_plan(self) -> Plan {
        let mut plan = Plan::default();
        let mut initramfs = false;
        let mut boot_cmd = None;
        if let Some(b) = self.boot {
            let new = match &b.doc {
                BootDoc::Grub(d) => d.render(),
                BootDoc::Kernel(d) => d.render(),
            };
            if b.old.as_deref() != Some(new.as_str()) {
                boot_cmd = Some(self.facts.boot_loader.clone());
            }
            plan.edit(b.path, b.old, new, b.reasons);
        }
        if let Some(m) = self.modules {
            let new = m.doc.render();
            initramfs |= m.old.as_deref() != Some(new.as_str());
            plan.edit(m.path, m.old, new, m.reasons);
        }
        for (_, d) in self.modprobe {
            let new = d.doc.render();
            initramfs |= d.old.as_deref() != Some(new.as_str());
            plan.edit(d.path, d.old, new, d.reasons);
        }
        for (_, d) in self.sysfs {
            let new = d.doc.render();
            plan.edit(d.path, d.old, new, d.reasons);
        }
        if initramfs {
            plan.command(
                vfiokit_kcmdline::UPDATE_INITRAMFS,
                "rebuild the initramfs so vfio-pci loads before the host drivers at boot",
            );
        }
        // After the initramfs: proxmox-boot-tool copies kernels and initramfs images to the ESPs.
        if let Some(loader) = boot_cmd {
            let why = if loader == BootLoader::SystemdBoot {
                "copy the new command line, kernels and initramfs to every ESP proxmox-boot-tool manages"
            } else {
                "write the new command line into /boot/grub/grub.cfg"
            };
            plan.command(loader.apply_command(), why);
        }
        plan.notes = self.notes;
        plan
    }
}
