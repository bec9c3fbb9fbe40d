//! The host's configuration files as editable documents, turned into a plan at the end.

use std::collections::BTreeMap;
use std::path::PathBuf;

use vfiokit_kcmdline::{
    BootLoader, Cmdline, GRUB_CMDLINE_LINUX, GRUB_CMDLINE_LINUX_DEFAULT, GrubConfig,
    KernelCmdlineFile, ModprobeConf, ModulesFile,
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
    /// `etc/default/grub` and its drop-ins, in the order of [`Boot::files`].
    Grub(GrubConfig),
    Kernel(KernelCmdlineFile),
}

/// The boot loader's command line: its files (path, old text, reasons; one for
/// `etc/kernel/cmdline`, `etc/default/grub` and then its drop-ins for GRUB) and the document.
struct Boot {
    files: Vec<(PathBuf, String, Vec<String>)>,
    doc: BootDoc,
}

/// The files `setup-host` and `verify --fix` own, loaded on first use.
pub(crate) struct Docs<'a> {
    facts: &'a HostFacts,
    boot: Option<Boot>,
    modules: Option<Doc<ModulesFile>>,
    modules_load: BTreeMap<PathBuf, Doc<ModulesFile>>,
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

/// The document at `rel` in `map`, loaded on first use from the facts' copy in `files` (a file
/// that does not exist starts empty) with `parse`.
fn doc_in<'m, T>(
    map: &'m mut BTreeMap<PathBuf, Doc<T>>,
    files: &[TextFile],
    rel: &PathBuf,
    parse: impl FnOnce(&str) -> T,
) -> Result<(&'m mut T, &'m mut Vec<String>)> {
    if !map.contains_key(rel) {
        let old = match files.iter().find(|f| &f.path == rel) {
            Some(f) => f.get()?.map(str::to_string),
            None => None,
        };
        let doc = parse(old.as_deref().unwrap_or(""));
        map.insert(
            rel.clone(),
            Doc {
                path: rel.clone(),
                old,
                doc,
                reasons: Vec::new(),
            },
        );
    }
    let d = map
        .get_mut(rel)
        .ok_or_else(|| Error::Invalid(rel.display().to_string()))?;
    Ok((&mut d.doc, &mut d.reasons))
}

impl<'a> Docs<'a> {
    pub fn new(facts: &'a HostFacts) -> Docs<'a> {
        Docs {
            facts,
            boot: None,
            modules: None,
            modules_load: BTreeMap::new(),
            modprobe: BTreeMap::new(),
            sysfs: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    /// Edits the boot loader's command line; `why` is pushed for each change `f` reports. On a
    /// GRUB host `f` sees `GRUB_CMDLINE_LINUX_DEFAULT` as `update-grub` does, after
    /// `etc/default/grub.d/*.cfg`, and each change goes to the file whose assignment decides it
    /// ([`GrubConfig::edit_cmdline`]), with the reasons of the changes made there.
    pub fn cmdline(&mut self, f: impl FnOnce(&mut Cmdline, &mut Vec<String>)) -> Result<()> {
        if self.boot.is_none() {
            self.boot = Some(self.load_boot()?);
        }
        let Some(boot) = self.boot.as_mut() else {
            return Ok(());
        };
        match &mut boot.doc {
            BootDoc::Kernel(d) => {
                let reasons = &mut boot.files[0].2;
                d.edit(|c| f(c, reasons));
            }
            BootDoc::Grub(d) => {
                let mut reasons = Vec::new();
                for i in d.edit_cmdline_linux_default(|c| f(c, &mut reasons))? {
                    boot.files[i].2.extend(reasons.iter().cloned());
                }
            }
        }
        Ok(())
    }

    /// [`Docs::cmdline`] for edits that must reach every word the kernel gets (removals): on a
    /// GRUB host `f` also edits `GRUB_CMDLINE_LINUX`, which update-grub puts on the command line
    /// of every entry, recovery ones included.
    pub fn cmdline_everywhere(&mut self, f: impl Fn(&mut Cmdline, &mut Vec<String>)) -> Result<()> {
        self.cmdline(&f)?;
        let Some(Boot {
            doc: BootDoc::Grub(d),
            files,
        }) = self.boot.as_mut()
        else {
            return Ok(());
        };
        let mut reasons = Vec::new();
        for i in d.edit_cmdline(GRUB_CMDLINE_LINUX, |c| f(c, &mut reasons))? {
            files[i].2.extend(reasons.iter().cloned());
        }
        Ok(())
    }

    fn load_boot(&mut self) -> Result<Boot> {
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
        if self.facts.boot_loader == BootLoader::SystemdBoot {
            let d = KernelCmdlineFile::parse(old);
            notes_of(&mut self.notes, self.facts, &file.path, d.problems());
            return Ok(Boot {
                files: vec![(file.path.clone(), old.to_string(), Vec::new())],
                doc: BootDoc::Kernel(d),
            });
        }
        let Some((config, paths)) = self.facts.grub_config()? else {
            return Err(Error::NoBootLoader("no command line file".into()));
        };
        let mut files = Vec::new();
        for (path, d) in paths.iter().zip(config.files()) {
            notes_of(&mut self.notes, self.facts, path, d.problems());
            files.push((path.clone(), d.render(), Vec::new()));
        }
        // Say so when a drop-in decides: `update-grub` sources it after etc/default/grub.
        if let Ok(sources) = config.sources(GRUB_CMDLINE_LINUX_DEFAULT)
            && sources.iter().any(|&(f, _)| f > 0)
        {
            let at = |(f, line): (usize, usize)| {
                format!("{}:{line}", self.facts.abs(&paths[f]).display())
            };
            let why = "update-grub sources /etc/default/grub.d/*.cfg after /etc/default/grub";
            let note = match sources.as_slice() {
                [base] => format!(
                    "GRUB_CMDLINE_LINUX_DEFAULT is assigned last in {} ({why}): the command line is edited there",
                    at(*base)
                ),
                [base, more @ ..] => format!(
                    "GRUB_CMDLINE_LINUX_DEFAULT is set in {}, extended by {} ({why}): new parameters go to {}; the words the extensions add are kept, and edited there only when a change concerns them",
                    at(*base),
                    more.iter().map(|&s| at(s)).collect::<Vec<_>>().join(", "),
                    self.facts.abs(&paths[base.0]).display(),
                ),
                [] => String::new(),
            };
            self.notes.push(note);
        }
        Ok(Boot {
            files,
            doc: BootDoc::Grub(config),
        })
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

    /// Loads `module` at boot: a line in `etc/modules` with the reason `why`, unless a file
    /// already lists it (`etc/modules` itself, or a `modules-load.d` file: not listed twice).
    pub fn load_module(&mut self, module: &str, why: impl FnOnce() -> String) -> Result<()> {
        if self.facts.loaded_by_drop_in(module) {
            return Ok(());
        }
        let (doc, reasons) = self.modules()?;
        if doc.add(module) {
            reasons.push(why());
        }
        Ok(())
    }

    /// The `etc/modules-load.d` file `rel`, which exists.
    fn modules_load(&mut self, rel: &PathBuf) -> Result<(&mut ModulesFile, &mut Vec<String>)> {
        let (notes, facts) = (&mut self.notes, self.facts);
        doc_in(&mut self.modules_load, &facts.modules_load, rel, |text| {
            let doc = ModulesFile::parse(text);
            notes_of(notes, facts, rel, doc.problems());
            doc
        })
    }

    /// Removes the module from every file loaded at boot that lists it (`etc/modules`,
    /// `etc/modules-load.d/*.conf`), with `why` for each. Stops on a file that could not be read.
    pub fn remove_module(&mut self, module: &str, why: &str) -> Result<()> {
        if self.facts.modules.get()?.is_some() {
            let (doc, reasons) = self.modules()?;
            if doc.remove(module) {
                reasons.push(why.to_string());
            }
        }
        for f in &self.facts.modules_load {
            if f.get()?.is_some() {
                let (doc, reasons) = self.modules_load(&f.path)?;
                if doc.remove(module) {
                    reasons.push(why.to_string());
                }
            }
        }
        Ok(())
    }

    /// The modprobe.d file `rel` (created when it does not exist).
    pub fn modprobe(&mut self, rel: &PathBuf) -> Result<(&mut ModprobeConf, &mut Vec<String>)> {
        let (notes, facts) = (&mut self.notes, self.facts);
        doc_in(&mut self.modprobe, &facts.modprobe, rel, |text| {
            let doc = ModprobeConf::parse(text);
            notes_of(notes, facts, rel, doc.problems());
            doc
        })
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
        let files = &self.facts.share.sysfs_conf;
        doc_in(&mut self.sysfs, files, rel, crate::share::SysfsConf::parse)
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
            let news = match &b.doc {
                BootDoc::Grub(d) => d.files().iter().map(|f| f.render()).collect(),
                BootDoc::Kernel(d) => vec![d.render()],
            };
            for ((path, old, reasons), new) in b.files.into_iter().zip(news) {
                if old != new {
                    boot_cmd = Some(self.facts.boot_loader.clone());
                }
                plan.edit(path, Some(old), new, reasons);
            }
        }
        if let Some(m) = self.modules {
            let new = m.doc.render();
            initramfs |= m.old.as_deref() != Some(new.as_str());
            plan.edit(m.path, m.old, new, m.reasons);
        }
        for (_, m) in self.modules_load {
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
