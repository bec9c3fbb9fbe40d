//! `vfiokit setup-host`: the host side of passthrough, planned from what the host has.
//!
//! Decides, for the requested devices: the IOMMU parameters the boot loader's command line lacks,
//! the VFIO modules to load, how to keep each device's host driver off it (vfio-pci ids and
//! softdeps, a blacklist only when no other host device needs the driver, per-address binding when
//! an identical device stays with the host), and the commands that make it take effect. Refuses,
//! exit 3, when a requested device or anything in its IOMMU group is host-critical.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use vfiokit_iommu::{Assessment, Host, HostRole, IommuKind, assess};
use vfiokit_kcmdline::{
    BootLoader, Cmdline, GrubDefault, KernelCmdlineFile, ModprobeConf, ModprobeDir, ModulesFile,
};
use vfiokit_pci::{ModuleAliases, PciAddress, PciDevice};
use vfiokit_sysfs::SysRoot;

use crate::plan::Plan;

/// What the user asked for.
pub struct Request {
    /// Devices to give to VMs.
    pub devices: Vec<PciAddress>,
    /// Collateral whose loss the user accepts.
    pub force_collateral: Vec<PciAddress>,
}

/// Why the plan is refused: the message for the user (exit 3).
#[derive(Debug)]
pub struct Refusal(pub String);

/// The file the modprobe lines go to when no file already holds vfio-pci's options.
const VFIO_CONF: &str = "modprobe.d/vfio.conf";

/// `(major, minor)` of a release such as `6.8.12-11-pve`.
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
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

/// The module a bound driver belongs to (`xhci_hcd` → `xhci_pci`), from the driver's `module` link.
fn driver_module(root: &SysRoot, driver: &str) -> String {
    root.link_name(&root.sys_bus_drivers("pci").join(driver).join("module"))
        .ok()
        .flatten()
        .unwrap_or_else(|| driver.replace('-', "_"))
}

fn is_vfio(module: &str) -> bool {
    matches!(module.replace('-', "_").as_str(), "vfio_pci" | "pci_stub")
}

/// Modules that claim or would claim `d`: its `modules.alias` matches and its bound driver's module.
fn host_modules(
    root: &SysRoot,
    aliases: Option<&ModuleAliases>,
    d: &PciDevice,
) -> BTreeSet<String> {
    let mut mods: BTreeSet<String> = match (aliases, &d.modalias) {
        (Some(a), Some(m)) => a.modules_for(m).into_iter().map(str::to_string).collect(),
        _ => BTreeSet::new(),
    };
    if let Some(drv) = &d.driver {
        mods.insert(driver_module(root, drv));
    }
    mods.retain(|m| !is_vfio(m));
    mods
}

/// The refusal message: every host-critical function that would leave, what the host loses, and
/// the alternative where there is one.
fn refusal(host: &Host, a: &Assessment) -> String {
    let mut out = String::from("refused: this would take functions the host needs away from it\n");
    let name = |addr: PciAddress| {
        host.device(addr).map_or(String::new(), |d| {
            format!(
                "{} {}",
                d.vendor_name().unwrap_or("unknown vendor"),
                d.device_name().unwrap_or("unknown device")
            )
        })
    };
    for h in &a.harms {
        if h.address == h.requested {
            let _ = writeln!(
                out,
                "\n{} ({}) is itself critical to the host:",
                h.address,
                name(h.address)
            );
        } else {
            let group = host
                .device(h.requested)
                .and_then(|d| d.iommu_group)
                .map_or(String::new(), |g| format!(" {g}"));
            let _ = writeln!(
                out,
                "\n{} ({}) shares IOMMU group{group} with {}, so it would leave the host too:",
                h.address,
                name(h.address),
                h.requested
            );
        }
        for r in &h.roles {
            let _ = writeln!(
                out,
                "  - {}: {}; the host would lose {}",
                r.role,
                r.detail,
                r.role.loss()
            );
        }
        if let Some(d) = host.device(h.address)
            && h.roles.iter().any(|r| {
                matches!(
                    r.role,
                    HostRole::OnlyUsbController | HostRole::UsbControllerWithInput
                )
            })
        {
            for u in host.usb_below(d.address) {
                let _ = writeln!(
                    out,
                    "    below it: {} {} {} at USB {}",
                    u.kind(),
                    u.id,
                    u.name(),
                    u.port
                );
            }
        }
    }
    let _ = writeln!(out, "\nalternatives:");
    let mut any = false;
    for &req in a
        .harms
        .iter()
        .map(|h| &h.requested)
        .collect::<BTreeSet<_>>()
    {
        let Some(d) = host.device(req) else { continue };
        if d.class.base_sub() == 0x0403 {
            let bt: Vec<String> = host
                .usb
                .devices
                .iter()
                .filter(|u| u.is_bluetooth())
                .map(|u| u.id.to_string())
                .collect();
            for id in bt {
                any = true;
                let _ = writeln!(
                    out,
                    "  - for sound in the VM, pass the Bluetooth adapter {id} by id instead of {req} \
                     (setup-vm --usb {id}, as a Proxmox `usbN: host={id}` entry) and use a Bluetooth speaker"
                );
            }
        }
        if d.class.base_sub() == vfiokit_pci::ClassCode::USB {
            let ids: Vec<String> = host
                .usb_below(d.address)
                .map(|u| u.id.to_string())
                .collect();
            any = true;
            let _ = writeln!(
                out,
                "  - keep the controller {req} on the host and redirect the USB devices the VM needs by id \
                 (setup-vm --usb VID:PID; here: {})",
                if ids.is_empty() {
                    "none attached".into()
                } else {
                    ids.join(", ")
                }
            );
        }
        if d.class.base() == 0x02 {
            any = true;
            let _ = writeln!(
                out,
                "  - give the VM a bridged virtual NIC (virtio on vmbr0) instead of {req}"
            );
        }
    }
    if !any {
        let _ = writeln!(
            out,
            "  - none known: the group cannot be split on this host"
        );
    }
    let accept: Vec<String> = a.harms.iter().map(|h| h.address.to_string()).collect();
    let _ = writeln!(
        out,
        "\nto accept these losses anyway, name each one: --force-collateral {}",
        accept.join(" ")
    );
    out
}

/// Builds the plan, or the refusal.
pub fn plan(
    root: &SysRoot,
    host: &Host,
    req: &Request,
) -> anyhow::Result<Result<(Plan, Assessment), Refusal>> {
    if !host.iommu.enabled && host.groups.is_empty() {
        // Without groups the collateral cannot be known; the plan still turns the IOMMU on.
    }
    let assessment = if host.groups.is_empty() {
        for &d in &req.devices {
            if host.device(d).is_none() {
                bail!("no PCI device {d} on this host (see `vfiokit inspect`)");
            }
        }
        bail!(
            "the IOMMU is off on this host, so what leaves with each device cannot be checked: enable VT-d \
             (Intel) or AMD-Vi (AMD) in the firmware setup, boot with intel_iommu=on (Intel), then run setup-host again"
        );
    } else {
        assess(host, &req.devices, &req.force_collateral)?
    };
    if !assessment.harms.is_empty() {
        return Ok(Err(Refusal(refusal(host, &assessment))));
    }
    let mut plan = Plan::default();
    let boot_loader = plan_cmdline(root, host, &mut plan)?;
    let modules_changed = plan_modules(root, &mut plan)?;
    let modprobe_changed = plan_modprobe(root, host, &assessment, &mut plan)?;
    if modules_changed || modprobe_changed {
        plan.command(
            vfiokit_kcmdline::UPDATE_INITRAMFS,
            "rebuild the initramfs so vfio-pci loads before the host drivers at boot",
        );
    }
    // After the initramfs: proxmox-boot-tool copies kernels and initramfs images to the ESPs.
    if let Some((argv, why)) = boot_loader {
        plan.command(argv, why);
    }
    for b in &assessment.bridges {
        plan.notes.push(format!(
            "{b} is a bridge in the same group: it stays with pcieport, as the kernel allows"
        ));
    }
    Ok(Ok((plan, assessment)))
}

/// Lines a parser kept but did not understand: reported with file and line, never dropped.
fn problems_to_notes(plan: &mut Plan, path: &Path, problems: Vec<vfiokit_kcmdline::Problem>) {
    for p in problems {
        plan.notes.push(format!(
            "{}:{}: {} (kept as it is)",
            path.display(),
            p.line,
            p.message
        ));
    }
}

/// Relative path of a file under the root, for the plan.
fn rel(root: &SysRoot, path: &Path) -> PathBuf {
    path.strip_prefix(root.root())
        .map_or_else(|_| path.to_path_buf(), Path::to_path_buf)
}

/// Edits the boot loader's command line; returns the command that applies it, when it changed.
fn plan_cmdline(
    root: &SysRoot,
    host: &Host,
    plan: &mut Plan,
) -> anyhow::Result<Option<(&'static [&'static str], &'static str)>> {
    let vendor = cpu_vendor(root, host);
    let mut reasons = Vec::new();
    let mut edit = |c: &mut Cmdline| {
        if vendor == Some(IommuKind::Intel) && c.get("intel_iommu") != Some(Some("on")) {
            c.set("intel_iommu", Some("on"));
            reasons.push(
                "intel_iommu=on: turns the Intel IOMMU on. Proxmox's 6.8 kernel does so by default, but an older \
                 kernel picked from the boot menu does not; written so that both behave the same"
                    .to_string(),
            );
        }
        if c.get("iommu").is_none() {
            c.set("iommu", Some("pt"));
            reasons.push(
                "iommu=pt: devices the host keeps skip IOMMU translation (passthrough mode), so the host loses no speed"
                    .to_string(),
            );
        }
    };
    let loader = BootLoader::detect(root);
    if let BootLoader::Unknown { reason } = &loader {
        bail!("cannot find the boot loader's command line: {reason}");
    }
    let (Some(path), argv) = (loader.cmdline_path(root), loader.apply_command()) else {
        bail!("cannot find the boot loader's command line");
    };
    let old = root.read_text(&path)?;
    let (new, problems) = if loader == BootLoader::SystemdBoot {
        let mut doc = KernelCmdlineFile::parse(&old);
        doc.edit(&mut edit);
        (doc.render(), doc.problems())
    } else {
        let mut doc = GrubDefault::parse(&old).with_path(&path);
        doc.edit_cmdline_linux_default(&mut edit)?;
        (doc.render(), doc.problems())
    };
    problems_to_notes(plan, &path, problems);
    if new == old {
        return Ok(None);
    }
    plan.edit(rel(root, &path), Some(old), new, reasons);
    let why = if loader == BootLoader::SystemdBoot {
        "copy the new command line, kernels and initramfs to every ESP proxmox-boot-tool manages"
    } else {
        "write the new command line into /boot/grub/grub.cfg"
    };
    Ok(Some((argv, why)))
}

/// `/etc/modules`: the VFIO modules, and `vfio_virqfd` only before 6.2 (merged into vfio since).
fn plan_modules(root: &SysRoot, plan: &mut Plan) -> anyhow::Result<bool> {
    let release = root
        .read_attr(&root.proc_osrelease())
        .context("the running kernel's release")?;
    let version = kernel_version(&release);
    let path = root.etc("modules");
    let old = root.read_text_opt(&path)?;
    let mut doc = ModulesFile::parse(old.as_deref().unwrap_or(""));
    problems_to_notes(plan, &path, doc.problems());
    let mut reasons = Vec::new();
    for (m, why) in [
        ("vfio", "vfio: the VFIO core"),
        (
            "vfio_iommu_type1",
            "vfio_iommu_type1: VFIO's IOMMU backend for x86",
        ),
        (
            "vfio_pci",
            "vfio_pci: the driver that holds devices for VMs, loaded at boot before the host drivers",
        ),
    ] {
        if doc.add(m) {
            reasons.push(why.to_string());
        }
    }
    let old_kernel = version.is_some_and(|v| v < (6, 2));
    if old_kernel && doc.add("vfio_virqfd") {
        reasons.push(format!(
            "vfio_virqfd: a separate module before Linux 6.2 (this kernel is {release})"
        ));
    }
    if !old_kernel && doc.remove("vfio_virqfd") {
        reasons.push(format!(
            "removes vfio_virqfd: merged into vfio since Linux 6.2 ({release} runs here); listing it makes systemd-modules-load fail"
        ));
    }
    let new = doc.render();
    let changed = old.as_deref() != Some(new.as_str());
    plan.edit(rel(root, &path), old, new, reasons);
    Ok(changed)
}

fn plan_modprobe(
    root: &SysRoot,
    host: &Host,
    a: &Assessment,
    plan: &mut Plan,
) -> anyhow::Result<bool> {
    let aliases = vfiokit_pci::load_module_aliases(root)?;
    let dir = ModprobeDir::load(root)?;
    // Write where vfio-pci's `ids=` already is, so that there is one; else vfio.conf.
    let target = dir.options("vfio-pci", "ids").last().map_or_else(
        || root.etc(VFIO_CONF),
        |f| root.etc("modprobe.d").join(&f.file),
    );
    let old = root.read_text_opt(&target)?;
    let mut doc = ModprobeConf::parse(old.as_deref().unwrap_or(""));
    let mut reasons = Vec::new();
    if old.is_none() {
        doc.add_comment_line(
            "Written by `vfiokit setup-host`: keeps host drivers off the devices given to VMs.",
        );
        doc.add_comment_line(
            "`vfiokit undo` restores the previous state; `vfiokit verify` checks it.",
        );
    }

    let members: Vec<&PciDevice> = a.members.iter().filter_map(|&m| host.device(m)).collect();
    let staying: Vec<&PciDevice> = host
        .pci
        .devices
        .iter()
        .filter(|d| !a.members.contains(&d.address))
        .collect();
    let mut ids = Vec::new();
    let mut per_address = Vec::new();
    let mut modules = BTreeSet::new();
    for d in &members {
        let id = format!("{}:{}", d.vendor, d.device);
        if staying
            .iter()
            .any(|s| s.vendor == d.vendor && s.device == d.device)
        {
            per_address.push(*d);
        } else if !ids.contains(&id) {
            ids.push(id);
        }
        modules.extend(host_modules(root, aliases.as_ref(), d));
    }
    if !ids.is_empty()
        && doc.merge_ids(
            "vfio-pci",
            &ids.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    {
        reasons.push(format!(
            "options vfio-pci ids={}: vfio-pci claims these devices at boot",
            ids.join(",")
        ));
    }
    for m in &modules {
        if doc.add_softdep(m, &["vfio-pci"]) {
            reasons.push(format!("softdep {m} pre: vfio-pci: when {m} loads, vfio-pci loads first and takes the device"));
        }
        let needed_by: Vec<String> = staying
            .iter()
            .filter(|s| host_modules(root, aliases.as_ref(), s).contains(m))
            .map(|s| s.address.to_string())
            .collect();
        if needed_by.is_empty() {
            if dir.blacklisted(m).is_empty() && doc.add_blacklist(m) {
                reasons.push(format!("blacklist {m}: no device the host keeps needs it"));
            }
        } else {
            plan.notes.push(format!(
                "{m} is not blacklisted: {} on the host need(s) it",
                needed_by.join(", ")
            ));
        }
    }
    for d in &per_address {
        for m in host_modules(root, aliases.as_ref(), d) {
            let cmd = format!(
                "echo vfio-pci > /sys/bus/pci/devices/{}/driver_override; modprobe --ignore-install {m} $CMDLINE_OPTS",
                d.address
            );
            if doc.set_install(&m, &cmd) {
                reasons.push(format!(
                    "install {m} …: another {}:{} stays with the host, so {} is bound by address (driver_override) before {m} loads, never by id",
                    d.vendor, d.device, d.address
                ));
            }
        }
    }
    if doc.set_option("kvm", "ignore_msrs", Some("1")) {
        reasons.push("options kvm ignore_msrs=1: Windows guests read MSRs KVM does not emulate; without it they crash".into());
    }
    if doc.set_option("kvm", "report_ignored_msrs", Some("0")) {
        reasons.push(
            "options kvm report_ignored_msrs=0: keeps those ignored reads out of the kernel log"
                .into(),
        );
    }
    if host.iommu.interrupt_remapping == Some(false)
        && doc.set_option("vfio_iommu_type1", "allow_unsafe_interrupts", Some("1"))
    {
        reasons.push(
            "options vfio_iommu_type1 allow_unsafe_interrupts=1: this IOMMU cannot remap interrupts, and VFIO refuses devices without it. \
             RISK: a VM can then inject interrupts into the host"
                .into(),
        );
        plan.notes.push("security risk: allow_unsafe_interrupts=1 is needed because the IOMMU has no interrupt remapping".into());
    }
    problems_to_notes(plan, &target, doc.problems());
    let new = doc.render();
    let changed = old.as_deref() != Some(new.as_str());
    plan.edit(rel(root, &target), old, new, reasons);
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("6.8.12-11-pve"), Some((6, 8)));
        assert_eq!(kernel_version("5.15.0-1-pve\n"), Some((5, 15)));
        assert_eq!(kernel_version("garbage"), None);
        assert!(kernel_version("5.19.17").unwrap() < (6, 2));
    }
}
