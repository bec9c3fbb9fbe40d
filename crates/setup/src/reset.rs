//! Resets: which functions a VM is given that the host cannot reset between VM runs, and the
//! known remedy for each (`../shared/reference/gpu-passthrough.md` §4, the field notes).
//!
//! A function can be reset when the kernel lists a method for it (`PciScan::reset_methods`), or
//! when VFIO can reset its whole bus instead: the function sits behind a bridge and the VM holds
//! every function on that bus (a GPU with its HDMI audio lists no `bus` method, and QEMU then
//! hot-resets the bus it owns — the RTX 2060). What remains:
//!
//! - the AMD families with the reset bug (Polaris, Vega, Arcturus, Navi 10/12/14, by device id
//!   from vendor-reset's `device-db.h`) need gnif/vendor-reset and `device_specific` in their
//!   `reset_method`, whatever else they list;
//! - an AMD APU's integrated GPU (a 1002 display function on a bus with the CPU's own 1022
//!   functions, the Radeon 780M) has no fix; the workaround its owner converged on is a
//!   remove-and-rescan hookscript;
//! - anything else is a warning without a remedy.
//!
//! The rule `vm-device-no-reset` reports them for the VM configs; it is not fixable by
//! `verify --fix`: both remedies are opt-in (`setup-vm --reset-remedy`), one needs a module
//! built outside vfiokit and the other changes how the VM stops.

use std::collections::BTreeSet;
use std::path::PathBuf;

use vfiokit_pci::{PciAddress, PciDevice};
use vfiokit_plan::Plan;
use vfiokit_sysfs::SysRoot;
use vfiokit_vmconf::{HostPci, VmConfig};

use crate::Result;
use crate::edit::Docs;
use crate::facts::{HostFacts, TextFile};
use crate::refusal::Refusal;
use crate::rules::{Finding, Input, Severity};

/// Where Proxmox's `local` storage keeps snippets, relative to the root.
pub const SNIPPETS_DIR: &str = "var/lib/vz/snippets";
/// The udev rule that sets `device_specific` for the vendor-reset families.
pub const UDEV_RULE: &str = "etc/udev/rules.d/99-vfiokit-vendor-reset.rules";

/// The files the reset remedies read and write.
#[derive(Debug, Clone)]
pub struct ResetFacts {
    /// `vendor-reset.ko` of the running kernel, relative to the root, when it is built:
    /// listed in `lib/modules/<release>/modules.dep` or present in `updates/dkms/`.
    pub vendor_reset_module: Option<PathBuf>,
    /// Whether [`SNIPPETS_DIR`] exists (Proxmox creates it when `local` holds snippets).
    pub snippets_dir: bool,
    /// vfiokit's hookscripts there (`vfiokit-reset-<vmid>.sh`).
    pub hooks: Vec<TextFile>,
    /// Whether `etc/udev/rules.d` exists.
    pub udev_dir: bool,
    /// [`UDEV_RULE`].
    pub udev_rule: TextFile,
}

fn read(root: &SysRoot, rel: PathBuf, problems: &mut Vec<String>) -> TextFile {
    let text = root.read_text_opt(&root.path(&rel)).map_err(|e| {
        problems.push(e.to_string());
        e.to_string()
    });
    TextFile { path: rel, text }
}

impl ResetFacts {
    /// Reads them under `root` for the running kernel `release`, whose `modules.dep` module paths
    /// (read once, by the sharing facts) are `modules_dep`.
    pub(crate) fn gather(
        root: &SysRoot,
        release: Option<&str>,
        modules_dep: Option<&[String]>,
        problems: &mut Vec<String>,
    ) -> ResetFacts {
        let vendor_reset_module = release.and_then(|r| {
            let dir = PathBuf::from("lib/modules").join(r.trim());
            let listed = modules_dep.unwrap_or_default().iter().find_map(|module| {
                let name = module.rsplit('/').next()?;
                let stem = name.split(".ko").next()?;
                (stem.replace('_', "-") == "vendor-reset").then(|| dir.join(module))
            });
            listed.or_else(|| {
                [
                    "vendor-reset.ko",
                    "vendor-reset.ko.xz",
                    "vendor-reset.ko.zst",
                ]
                .iter()
                .map(|n| dir.join("updates/dkms").join(n))
                .find(|p| root.is_file(&root.path(p)).unwrap_or(false))
            })
        });
        let snippets = root.path(SNIPPETS_DIR);
        let mut names: Vec<String> = root
            .list_opt(&snippets)
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.starts_with("vfiokit-reset-") && n.ends_with(".sh"))
            .collect();
        names.sort();
        ResetFacts {
            vendor_reset_module,
            snippets_dir: root.is_dir(&snippets).unwrap_or(false),
            hooks: names
                .into_iter()
                .map(|n| read(root, PathBuf::from(SNIPPETS_DIR).join(n), problems))
                .collect(),
            udev_dir: root.is_dir(&root.path("etc/udev/rules.d")).unwrap_or(false),
            udev_rule: read(root, PathBuf::from(UDEV_RULE), problems),
        }
    }
}

/// AMD GPUs with the reset bug that vendor-reset handles, by family (gnif/vendor-reset
/// `src/device-db.h`, as the reference lists them).
const VENDOR_RESET: &[(&str, &[u16])] = &[
    (
        "Polaris 10",
        &[
            0x67c0, 0x67c1, 0x67c2, 0x67c4, 0x67c7, 0x67c8, 0x67c9, 0x67ca, 0x67cc, 0x67cf, 0x67d0,
            0x67df, 0x6fdf,
        ],
    ),
    (
        "Polaris 11",
        &[
            0x67e0, 0x67e1, 0x67e3, 0x67e7, 0x67e8, 0x67e9, 0x67eb, 0x67ef, 0x67ff,
        ],
    ),
    (
        "Polaris 12",
        &[
            0x6980, 0x6981, 0x6985, 0x6986, 0x6987, 0x6995, 0x6997, 0x699f,
        ],
    ),
    (
        "Vega 10",
        &[
            0x6860, 0x6861, 0x6862, 0x6863, 0x6864, 0x6867, 0x6868, 0x6869, 0x686a, 0x686b, 0x686c,
            0x686d, 0x686e, 0x686f, 0x687f,
        ],
    ),
    (
        "Vega 20",
        &[0x66a0, 0x66a1, 0x66a2, 0x66a3, 0x66a4, 0x66a7, 0x66af],
    ),
    ("Arcturus", &[0x738c]),
    (
        "Navi 10",
        &[
            0x7310, 0x7312, 0x7318, 0x7319, 0x731a, 0x731b, 0x731e, 0x731f,
        ],
    ),
    ("Navi 12", &[0x7360, 0x7362]),
    ("Navi 14", &[0x7340, 0x7341, 0x7347, 0x734f]),
];

/// The vendor-reset family of an AMD GPU, when it has one.
pub fn vendor_reset_family(vendor: u16, device: u16) -> Option<&'static str> {
    (vendor == 0x1002)
        .then(|| VENDOR_RESET.iter().find(|(_, ids)| ids.contains(&device)))?
        .map(|(family, _)| *family)
}

/// What kind of function cannot be reset, which decides the remedy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An AMD GPU of a family vendor-reset handles.
    VendorReset(&'static str),
    /// An AMD APU's integrated GPU: no fix, the remove-and-rescan hookscript as a workaround.
    AmdApu,
    /// Anything else: no known remedy.
    Other,
}

/// A function given to a VM that the host cannot (properly) reset between VM runs.
#[derive(Debug, Clone)]
pub struct NoReset {
    /// The function.
    pub address: PciAddress,
    /// Its `vendor:device`.
    pub id: String,
    /// Its reset methods, as the kernel lists them.
    pub methods: Vec<String>,
    /// Why VFIO cannot reset its bus instead.
    pub no_bus: String,
    /// Which remedy applies.
    pub kind: Kind,
}

/// Whether `d` is an AMD APU's integrated GPU: an AMD display function that shares its bus with
/// the processor's own functions (vendor 1022: PSP, USB, audio coprocessor), as the 780M does.
fn is_amd_apu_gpu(facts: &HostFacts, d: &PciDevice) -> bool {
    d.vendor.0 == 0x1002
        && d.class.base() == 0x03
        && facts.host.pci.devices.iter().any(|o| {
            (o.address.domain, o.address.bus) == (d.address.domain, d.address.bus)
                && o.vendor.0 == 0x1022
        })
}

/// Why VFIO cannot reset `d`'s bus for it, or `None` when it can: `d` sits behind a bridge and
/// every function on its bus is one the VM holds or in an IOMMU group the VM holds.
fn no_bus_reset(facts: &HostFacts, d: &PciDevice, held: &[PciAddress]) -> Option<String> {
    let host = &facts.host;
    let behind_bridge = d
        .parent
        .and_then(|p| host.device(p))
        .is_some_and(PciDevice::is_bridge);
    if !behind_bridge {
        return Some("it sits on a root bus, which has no bus reset".into());
    }
    let groups: BTreeSet<u32> = held
        .iter()
        .filter_map(|&a| host.device(a)?.iommu_group)
        .collect();
    let others: Vec<String> = host
        .pci
        .devices
        .iter()
        .filter(|o| (o.address.domain, o.address.bus) == (d.address.domain, d.address.bus))
        .filter(|o| {
            !held.contains(&o.address) && !o.iommu_group.is_some_and(|g| groups.contains(&g))
        })
        .map(|o| o.address.to_string())
        .collect();
    (!others.is_empty()).then(|| {
        format!(
            "VFIO cannot reset bus {:02x} instead, since the VM does not hold {}",
            d.address.bus,
            others.join(", ")
        )
    })
}

/// Checks the function `addr` that a VM holding `held` is given.
pub(crate) fn check(facts: &HostFacts, addr: PciAddress, held: &[PciAddress]) -> Option<NoReset> {
    let d = facts.host.device(addr)?;
    // Unread only outside the gathered scope, which holds every function a VM holds or is given.
    let methods = facts.host.pci.reset_methods(d)?;
    let family = vendor_reset_family(d.vendor.0, d.device.0);
    let kind = match family {
        Some(_) if methods.iter().any(|m| m == "device_specific") => return None,
        Some(f) => Kind::VendorReset(f),
        None if !methods.is_empty() => return None,
        None if is_amd_apu_gpu(facts, d) => Kind::AmdApu,
        None => Kind::Other,
    };
    let no_bus = match no_bus_reset(facts, d, held) {
        Some(why) => why,
        None if family.is_some() => String::new(),
        None => return None,
    };
    Some(NoReset {
        address: addr,
        id: crate::id_of(d),
        methods,
        no_bus,
        kind,
    })
}

/// What the remove-and-rescan hookscript does.
const HOOK_DOES: &str = "the remove-and-rescan hookscript the Radeon 780M's owner converged on \
    removes the GPU's passed functions from the host before the VM stops (pre-stop) and rescans \
    the PCI bus after it stopped and before it starts, so that each start finds a freshly \
    enumerated GPU";

/// What it does not fix, said plainly.
const HOOK_LIMITS: &str = "It is a workaround, not a fix: the GPU still has no reset method \
    (Proxmox still reports the failed reset at every start, and `qm stop` prints `no PCI device \
    found` because the hook removed it); Proxmox runs pre-stop only for stops through its API, so \
    a shutdown or reboot from inside the guest is not covered (the owner also had Windows disable \
    the GPU and its audio at shutdown and enable them at startup, with devcon scripts); a GPU that \
    hangs anyway needs a host reboot; and vendor-reset does not help (it does not cover APUs; the \
    owner tried it: `Unable to locate a BIOS ROM`).";

impl NoReset {
    /// What is wrong, in one sentence.
    pub fn problem(&self) -> String {
        let methods = if self.methods.is_empty() {
            "no reset method".to_string()
        } else {
            format!("reset methods {}", self.methods.join(" "))
        };
        match &self.kind {
            Kind::VendorReset(family) => format!(
                "{} ({}, AMD {family}) has the AMD reset bug and {methods}, without vendor-reset's \
                 device_specific: after the VM stops, the GPU may not come back until the host reboots",
                self.address, self.id
            ),
            Kind::AmdApu => format!(
                "{} ({}, an AMD APU's integrated GPU) has no reset method and {}: after the VM \
                 stops, the GPU can hang (IO_PAGE_FAULT) so that the next start fails until the host reboots",
                self.address, self.id, self.no_bus
            ),
            Kind::Other => format!(
                "{} ({}) has no reset method and {}: it keeps the state the last guest left it in; \
                 if it fails on the next start, the host must reboot",
                self.address, self.id, self.no_bus
            ),
        }
    }

    /// The known remedy, and the command that plans it.
    pub fn remedy(&self, vmid: u32) -> String {
        let plan = format!(
            "`vfiokit setup-vm --vmid {vmid} --device {} --reset-remedy` plans it",
            self.address
        );
        match &self.kind {
            Kind::VendorReset(_) => format!(
                "vendor-reset: build it for this kernel ({VENDOR_RESET_INSTALL}), load it at boot \
                 (`vendor-reset` in /etc/modules) and set `device_specific` in the function's \
                 reset_method with a udev rule; {plan} once the module is built"
            ),
            Kind::AmdApu => {
                format!("no fix is known. Workaround: {HOOK_DOES}; {plan}. {HOOK_LIMITS}")
            }
            Kind::Other => "no remedy is known for this device; if it fails after the VM \
                            stopped, reboot the host before the next start"
                .into(),
        }
    }
}

/// How to build vendor-reset: vfiokit never downloads.
const VENDOR_RESET_INSTALL: &str = "apt install dkms build-essential proxmox-headers-$(uname -r) \
    (pve-headers-$(uname -r) before Proxmox VE 8); git clone https://github.com/gnif/vendor-reset; \
    cd vendor-reset; dkms install .";

/// Whether Proxmox resets the functions of this entry: not for a mediated device (the VM gets
/// an mdev, not the function) nor with `driver=keep`.
fn reset_applies(entry: &HostPci) -> bool {
    entry.mdev.is_none() && entry.driver.as_deref() != Some("keep")
}

/// Every host function a VM config holds (for the bus reset VFIO can do).
fn held_by(facts: &HostFacts, config: &VmConfig) -> Vec<PciAddress> {
    crate::vm::hostpcis(config)
        .into_iter()
        .filter(|(_, e)| e.mdev.is_none())
        .flat_map(|(_, e)| crate::vm::functions_of(facts, &e))
        .collect()
}

/// The rule `vm-device-no-reset`: every function a local VM config passes that the host cannot
/// reset between VM runs, with its known remedy.
pub(crate) fn vm_device_no_reset(i: &Input<'_>) -> Vec<Finding> {
    let facts = i.facts;
    let mut out = Vec::new();
    for vm in facts.vms.iter().filter(|v| v.local) {
        let Some(config) = vm.config() else { continue };
        let held = held_by(facts, &config);
        for (key, entry) in crate::vm::hostpcis(&config) {
            if !reset_applies(&entry) {
                continue;
            }
            for addr in crate::vm::functions_of(facts, &entry) {
                let Some(n) = check(facts, addr, &held) else {
                    continue;
                };
                let mut fix = n.remedy(vm.vmid);
                if let (Kind::AmdApu, Some(hook)) = (&n.kind, config.get("hookscript")) {
                    fix.push_str(&format!(
                        " (VM {} has hookscript {hook}: if that is this workaround, the warning stays, as the workaround adds no reset method)",
                        vm.vmid
                    ));
                }
                out.push(
                    Finding::new(
                        "vm-device-no-reset",
                        Severity::Warning,
                        format!("VM {} {key}: {}", vm.vmid, n.problem()),
                        fix,
                    )
                    .at(&vm.file.path, None),
                );
            }
        }
    }
    out
}

/// What `setup-vm` adds for the functions it passes that cannot be reset: warnings, and with
/// `--reset-remedy` the hookscript line and the files of the remedy.
#[derive(Debug, Default)]
pub(crate) struct VmReset {
    /// Notes for the plan.
    pub notes: Vec<String>,
    /// `hookscript:` value and why.
    pub hookscript: Option<(String, String)>,
    /// Further files and commands.
    pub plan: Plan,
}

/// The hookscript's name in the snippets storage.
fn hook_name(vmid: u32) -> String {
    format!("vfiokit-reset-{vmid}.sh")
}

/// The remove-and-rescan hookscript: pre-stop removes `remove` (the GPU first), post-stop and
/// pre-start rescan, every phase exits 0 (the 780M owner's converged script, by address).
fn hook_script(vmid: u32, remove: &[PciAddress]) -> String {
    let mut s = format!(
        "#!/bin/sh\n\
         # Written by vfiokit for VM {vmid}: the remove-and-rescan workaround for an AMD APU GPU\n\
         # without a reset method. It is a workaround, not a fix: the GPU still cannot be reset,\n\
         # a shutdown from inside the guest does not run pre-stop, and a hung GPU still needs a\n\
         # host reboot. Proxmox calls it as: {} <vmid> <phase>\n\
         phase=\"$2\"\n\
         echo \"vfiokit-reset: VM $1 $phase\" > /dev/kmsg\n\
         case \"$phase\" in\n\
         pre-start|post-stop)\n\
         \x20   # bring back the functions pre-stop removed, freshly enumerated\n\
         \x20   echo 1 > /sys/bus/pci/rescan\n\
         \x20   sleep 2\n\
         \x20   ;;\n\
         pre-stop)\n",
        hook_name(vmid)
    );
    for a in remove {
        s.push_str(&format!(
            "    if [ -e /sys/bus/pci/devices/{a} ]; then\n        echo 1 > /sys/bus/pci/devices/{a}/remove\n        sleep 1\n    fi\n"
        ));
    }
    s.push_str("    ;;\nesac\nexit 0\n");
    s
}

/// The udev rule line for one device id (the form of vendor-reset's own
/// `udev/99-vendor-reset.rules`: load the module, then select its reset).
fn udev_line(device: u16) -> String {
    format!(
        "ACTION==\"add\", SUBSYSTEM==\"pci\", ATTR{{vendor}}==\"0x1002\", ATTR{{device}}==\"0x{device:04x}\", RUN+=\"/bin/sh -c '/sbin/modprobe vendor-reset; echo device_specific > /sys$env{{DEVPATH}}/reset_method'\""
    )
}

/// Warnings for the `requested` functions of a VM whose config (after the edit) is `config`,
/// and with `remedy` the planned remedy, or a refusal.
pub(crate) fn plan_vm(
    facts: &HostFacts,
    vmid: u32,
    remedy: bool,
    config: &VmConfig,
    requested: &[PciAddress],
) -> Result<std::result::Result<VmReset, Refusal>> {
    let mut held = held_by(facts, config);
    held.extend(requested);
    let mut seen = BTreeSet::new();
    let found: Vec<NoReset> = requested
        .iter()
        .filter(|a| seen.insert(**a))
        .filter_map(|&a| check(facts, a, &held))
        .collect();
    let mut out = VmReset::default();
    for n in &found {
        let what = match (&n.kind, remedy) {
            (Kind::Other, _) | (_, false) => n.remedy(vmid),
            (Kind::VendorReset(_), true) => "vendor-reset, in this plan".into(),
            (Kind::AmdApu, true) => {
                format!(
                    "no fix is known; the workaround is in this plan: {HOOK_DOES}. {HOOK_LIMITS}"
                )
            }
        };
        out.notes
            .push(format!("warning: {}. Remedy: {what}", n.problem()));
    }
    if !remedy {
        return Ok(Ok(out));
    }
    let vendor: Vec<&NoReset> = found
        .iter()
        .filter(|n| matches!(n.kind, Kind::VendorReset(_)))
        .collect();
    let apu: Vec<&NoReset> = found.iter().filter(|n| n.kind == Kind::AmdApu).collect();
    if vendor.is_empty() && apu.is_empty() {
        out.notes.push(
            "--reset-remedy: no passed function needs vendor-reset or the APU hookscript; nothing planned for it"
                .into(),
        );
        return Ok(Ok(out));
    }
    // Both remedies are for AMD functions, and the facts are read on every host that has one.
    let Some(reset) = &facts.reset else {
        return Err(crate::Error::Invalid(
            "the reset remedies' files were not read: this host has no AMD function".into(),
        ));
    };
    if !vendor.is_empty() {
        let release = facts.release.as_deref().map_or("?", str::trim);
        if reset.vendor_reset_module.is_none() {
            return Ok(Err(Refusal::plain(format!(
                "refused: {} needs vendor-reset, which is not built for the running kernel {release}: \
                 {} lists no vendor-reset.ko and {} does not exist.\n\
                 Build it first (vfiokit never downloads): {VENDOR_RESET_INSTALL}; then plan again.\n",
                vendor
                    .iter()
                    .map(|n| format!("{} ({})", n.address, n.id))
                    .collect::<Vec<_>>()
                    .join(", "),
                facts
                    .abs(format!("lib/modules/{release}/modules.dep"))
                    .display(),
                facts
                    .abs(format!(
                        "lib/modules/{release}/updates/dkms/vendor-reset.ko"
                    ))
                    .display(),
            ))));
        }
        if !reset.udev_dir {
            return Err(crate::Error::Invalid(format!(
                "{}: no such directory, so the udev rule cannot be written",
                facts.abs("etc/udev/rules.d").display()
            )));
        }
        let mut docs = Docs::new(facts);
        let families: Vec<String> = vendor
            .iter()
            .map(|n| match n.kind {
                Kind::VendorReset(f) => format!("{} (AMD {f})", n.address),
                _ => String::new(),
            })
            .collect();
        docs.load_module("vendor-reset", || {
            format!(
                "loads vendor-reset at boot, before a VM starts: it adds the device-specific reset for {}",
                families.join(", ")
            )
        })?;
        let extra = docs.into_plan();
        let file = &reset.udev_rule;
        let old = file.get()?.map(str::to_string);
        let mut new = old.clone().unwrap_or_else(|| {
            "# Written by vfiokit: select vendor-reset's device-specific reset for these AMD GPUs\n\
             # (the kernel lists reset methods before the module loads, so it is set here).\n"
                .to_string()
        });
        let mut reasons = Vec::new();
        let mut ids: Vec<u16> = vendor
            .iter()
            .filter_map(|n| facts.host.device(n.address).map(|d| d.device.0))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let line = udev_line(id);
            if !new.lines().any(|l| l.trim() == line) {
                if !new.is_empty() && !new.ends_with('\n') {
                    new.push('\n');
                }
                new.push_str(&line);
                new.push('\n');
                reasons.push(format!(
                    "1002:{id:04x}: loads vendor-reset and writes device_specific to the device's reset_method when it appears"
                ));
            }
        }
        out.plan.files.extend(extra.files);
        out.plan.edit(file.path.clone(), old, new, reasons);
        out.plan.commands.extend(extra.commands);
        out.notes.extend(extra.notes);
        out.notes.push(
            "vendor-reset and the udev rule take effect at the next boot: until then the function's reset_method has no device_specific"
                .into(),
        );
    }
    if !apu.is_empty() {
        let name = hook_name(vmid);
        let value = format!("local:snippets/{name}");
        if let Some(h) = config.get("hookscript").filter(|h| *h != value) {
            return Ok(Err(Refusal::plain(format!(
                "refused: VM {vmid} already has hookscript {h}, and Proxmox runs one hookscript per VM: \
                 vfiokit does not replace it. Put the remove-and-rescan lines into it yourself \
                 (pre-stop: `echo 1 > /sys/bus/pci/devices/ADDR/remove` for each GPU function; \
                 post-stop and pre-start: `echo 1 > /sys/bus/pci/rescan`), or remove the hookscript \
                 line and plan again.\n"
            ))));
        }
        if !reset.snippets_dir {
            // The apply creates the directory; Proxmox still refuses `local:snippets/…` until
            // the storage holds snippets.
            out.notes.push(format!(
                "warning: {} does not exist: the apply creates it, but Proxmox starts the VM with the hookscript only when the storage local has the content type snippets: \
                 Datacenter → Storage → local → Content, or `pvesm set local --content <its current list>,snippets` \
                 (`pvesm status --storage local` and /etc/pve/storage.cfg show the list)",
                facts.abs(SNIPPETS_DIR).display()
            ));
        }
        // The GPU first, then the other functions of its slot the VM holds (its HDMI audio).
        let mut remove: Vec<PciAddress> = Vec::new();
        for n in &apu {
            remove.push(n.address);
            let slot = (n.address.domain, n.address.bus, n.address.device);
            let mut rest: Vec<PciAddress> = held
                .iter()
                .copied()
                .filter(|a| (a.domain, a.bus, a.device) == slot && *a != n.address)
                .collect();
            rest.sort();
            remove.extend(rest);
        }
        let mut unique = BTreeSet::new();
        remove.retain(|a| unique.insert(*a));
        let rel = PathBuf::from(SNIPPETS_DIR).join(&name);
        let old = match reset.hooks.iter().find(|f| f.path == rel) {
            Some(f) => f.get()?.map(str::to_string),
            None => None,
        };
        let new = hook_script(vmid, &remove);
        let list = remove
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        if old.as_deref() != Some(new.as_str()) {
            let path = format!("/{}", rel.display());
            out.plan.edit(
                rel.clone(),
                old,
                new,
                vec![format!(
                    "workaround, not a fix: pre-stop removes {list} from the host, post-stop and pre-start rescan the PCI bus"
                )],
            );
            out.plan.command(
                &["sh", "-c", &format!("test ! -e {path} || chmod +x {path}")],
                "Proxmox runs only an executable hookscript, and a new file gets the default mode (0644): chmod +x it (skipped when an undo removed the file)",
            );
        }
        out.hookscript = Some((
            value,
            format!(
                "workaround, not a fix: runs {name} at each start and stop, which removes {list} before the VM stops and rescans the PCI bus (the storage local must allow snippets)"
            ),
        ));
    }
    Ok(Ok(out))
}
