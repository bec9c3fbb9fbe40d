//! `setup-host`: the host side of passthrough, planned from the host's facts.
//!
//! For the requested devices: the IOMMU parameters the boot loader's command line lacks, the VFIO
//! modules to load, how to keep each device's host driver off it (vfio-pci ids and softdeps, a
//! blacklist only when no other host device needs the driver, per-address binding when an
//! identical device stays with the host), and the commands that make it take effect — plus the
//! fix of every fixable finding of the rule table (stale or harmful lines a manual setup left).
//! Refused when a requested device or anything in its IOMMU group is host-critical.

use std::collections::BTreeSet;
use std::path::PathBuf;

use vfiokit_iommu::{Assessment, IommuKind, assess};
use vfiokit_kcmdline::Cmdline;
use vfiokit_pci::{PciAddress, PciDevice};
use vfiokit_plan::Plan;

use crate::edit::Docs;
use crate::facts::HostFacts;
use crate::refusal::Refusal;
use crate::rules::{Fix, apply_fixes, audit};
use crate::{Error, Result};

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Devices to give to VMs.
    pub devices: Vec<PciAddress>,
    /// Collateral whose loss the user accepts.
    pub force_collateral: Vec<PciAddress>,
}

impl Request {
    /// What the plan looks at ([`crate::HostFacts::gather_for`]): the devices it gives.
    pub fn scope(&self) -> crate::Scope {
        crate::Scope::Request {
            functions: self.devices.clone(),
            roms: Vec::new(),
        }
    }
}

/// A plan for the host, with the functions it gives away.
#[derive(Debug)]
pub struct HostPlan {
    /// The edits and commands.
    pub plan: Plan,
    /// The requested devices with their collateral, and the bridges left alone.
    pub assessment: Assessment,
}

/// The file the modprobe lines go to when no file already holds vfio-pci's options.
const VFIO_CONF: &str = "etc/modprobe.d/vfio.conf";

/// Builds the plan, or the refusal.
pub fn plan(facts: &HostFacts, req: &Request) -> Result<std::result::Result<HostPlan, Refusal>> {
    let host = &facts.host;
    for &d in &req.devices {
        if host.device(d).is_none() {
            return Err(Error::NoDevice(d));
        }
    }
    if host.groups.is_empty() {
        return Err(Error::IommuOff);
    }
    let assessment = match assess(host, &req.devices, &req.force_collateral) {
        Ok(a) => a,
        Err(e) => return Ok(Err(Refusal::of_bridge(host, e)?)),
    };
    if !assessment.harms.is_empty() {
        return Ok(Err(Refusal::of_assessment(host, &assessment)));
    }
    if let Some(r) = crate::share::check_host_devices(facts, &assessment.members) {
        return Ok(Err(r));
    }
    let mut docs = Docs::new(facts);
    plan_cmdline(facts, &mut docs)?;
    crate::gpu::plan_framebuffer(facts, &assessment, &mut docs)?;
    plan_modules(facts, &mut docs)?;
    plan_modprobe(facts, &assessment, &mut docs)?;
    // The fixes of every stale or harmful line, except for devices the user gives away now.
    let findings = audit(facts, &[]);
    let keep = |f: &&Fix| match f {
        Fix::RemoveVfioId { device, .. } => {
            !assessment.members.contains(device) && !req.force_collateral.contains(device)
        }
        _ => true,
    };
    apply_fixes(
        &mut docs,
        findings.iter().filter_map(|f| f.edit.as_ref()).filter(keep),
    )?;
    crate::share::clean_for_whole(facts, &assessment.members, &mut docs)?;
    let mut plan = docs.into_plan();
    for b in &assessment.bridges {
        plan.notes.push(format!(
            "{b} is a bridge in the same group: it stays with pcieport, as the kernel allows"
        ));
    }
    Ok(Ok(HostPlan { plan, assessment }))
}

/// The IOMMU parameters the command line lacks.
fn plan_cmdline(facts: &HostFacts, docs: &mut Docs<'_>) -> Result<()> {
    docs.cmdline(|c, reasons| {
        intel_iommu_on(facts, c, reasons);
        match c.get("iommu") {
            None => {
                c.set("iommu", Some("pt"));
                reasons.push(
                    "iommu=pt: devices the host keeps skip IOMMU translation (passthrough mode), so the host loses no speed"
                        .to_string(),
                );
            }
            // `iommu=off` turns the IOMMU off whatever `intel_iommu=`/`amd_iommu=` say.
            Some(Some("off")) => {
                c.set("iommu", Some("pt"));
                reasons.push(
                    "iommu=pt instead of iommu=off: iommu=off disables the IOMMU altogether (VFIO then has no groups); pt keeps it on, with the host's own devices untranslated"
                        .to_string(),
                );
            }
            Some(_) => {}
        }
    })
}

/// `intel_iommu=on` on an Intel host whose command line lacks it (`setup-host --device` and the
/// sharing plans of `setup-host --share`).
pub(crate) fn intel_iommu_on(facts: &HostFacts, c: &mut Cmdline, reasons: &mut Vec<String>) {
    if facts.cpu_vendor == Some(IommuKind::Intel) && c.get("intel_iommu") != Some(Some("on")) {
        c.set("intel_iommu", Some("on"));
        reasons.push(
            "intel_iommu=on: turns the Intel IOMMU on. Proxmox's 6.8 kernel does so by default, but an older \
             kernel picked from the boot menu does not; written so that both behave the same"
                .to_string(),
        );
    }
}

/// `/etc/modules`: the VFIO modules, and `vfio_virqfd` only before 6.2 (merged into vfio since;
/// the rule `vfio-virqfd` removes it on newer kernels).
fn plan_modules(facts: &HostFacts, docs: &mut Docs<'_>) -> Result<()> {
    let release = facts
        .release
        .clone()
        .ok_or_else(|| Error::NoRelease(facts.abs("proc/sys/kernel/osrelease")))?;
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
        docs.load_module(m, || why.to_string())?;
    }
    if crate::kernel_version(&release).is_some_and(|v| v < (6, 2)) {
        docs.load_module("vfio_virqfd", || {
            format!("vfio_virqfd: a separate module before Linux 6.2 (this kernel is {release})")
        })?;
    }
    Ok(())
}

fn plan_modprobe(facts: &HostFacts, a: &Assessment, docs: &mut Docs<'_>) -> Result<()> {
    let host = &facts.host;
    // Every file counts (an unread one may hold vfio-pci's ids): stop on the first unreadable.
    for f in &facts.modprobe {
        f.get()?;
    }
    let dir = facts.modprobe_dir();
    // Write where vfio-pci's `ids=` already is, so that there is one; else vfio.conf.
    let target = dir.options("vfio-pci", "ids").last().map_or_else(
        || PathBuf::from(VFIO_CONF),
        |f| PathBuf::from("etc/modprobe.d").join(&f.file),
    );
    let exists = facts
        .modprobe
        .iter()
        .any(|f| f.path == target && matches!(f.text, Ok(Some(_))));
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
        let id = crate::id_of(d);
        if staying
            .iter()
            .any(|s| s.vendor == d.vendor && s.device == d.device)
        {
            per_address.push(*d);
        } else if !ids.contains(&id) {
            ids.push(id);
        }
        modules.extend(facts.host_modules(d));
    }
    let mut notes = Vec::new();
    let (doc, reasons) = docs.modprobe(&target)?;
    if !exists {
        doc.add_comment_line(
            "Written by `vfiokit setup-host`: keeps host drivers off the devices given to VMs.",
        );
        doc.add_comment_line(
            "`vfiokit undo` restores the previous state; `vfiokit verify` checks it.",
        );
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
            reasons.push(format!(
                "softdep {m} pre: vfio-pci: when {m} loads, vfio-pci loads first and takes the device"
            ));
        }
        let needed_by: Vec<String> = staying
            .iter()
            .filter(|s| facts.host_modules(s).contains(m))
            .map(|s| s.address.to_string())
            .collect();
        if needed_by.is_empty() {
            if dir.blacklisted(m).is_empty() && doc.add_blacklist(m) {
                reasons.push(format!("blacklist {m}: no device the host keeps needs it"));
            }
        } else {
            notes.push(format!(
                "{m} is not blacklisted: {} on the host need(s) it",
                needed_by.join(", ")
            ));
        }
    }
    for d in &per_address {
        for m in facts.host_modules(d) {
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
        notes.push("security risk: allow_unsafe_interrupts=1 is needed because the IOMMU has no interrupt remapping".into());
    }
    docs.notes.extend(notes);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernel_versions() {
        assert_eq!(crate::kernel_version("6.8.12-11-pve"), Some((6, 8)));
        assert_eq!(crate::kernel_version("5.15.0-1-pve\n"), Some((5, 15)));
        assert_eq!(crate::kernel_version("garbage"), None);
        assert!(crate::kernel_version("5.19.17").is_some_and(|v| v < (6, 2)));
    }
}
