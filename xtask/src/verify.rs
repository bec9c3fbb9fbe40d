//! `vfiokit verify`: audit a host's passthrough setup against every rule, each finding with its fix.

use std::collections::BTreeSet;
use std::process::ExitCode;

use serde::Serialize;
use vfiokit_iommu::{Host, assess};
use vfiokit_kcmdline::{
    BootLoader, Cmdline, GrubDefault, KernelCmdlineFile, ModprobeDir, ModulesFile,
};
use vfiokit_pci::{PciAddress, PciDevice};
use vfiokit_sysfs::SysRoot;
use vfiokit_vmconf::{HostPci, VmConfig};

use crate::Common;

/// One thing wrong with the host.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// A stable name for the check (`vfio-virqfd`, `pending-reboot`).
    pub check: &'static str,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

fn finding(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        check,
        message: message.into(),
        fix: fix.into(),
    }
}

/// Words of a command line that the boot loader or the kernel adds by itself and that say
/// nothing about the configuration.
fn is_boot_noise(word: &str) -> bool {
    let key = word.split('=').next().unwrap_or(word);
    matches!(key, "BOOT_IMAGE" | "root" | "ro" | "rw" | "initrd" | "boot")
}

/// The command line the boot loader will boot next, as written in its configuration.
fn configured_cmdline(root: &SysRoot) -> anyhow::Result<Option<(String, Cmdline)>> {
    Ok(match BootLoader::detect(root) {
        BootLoader::Grub => {
            let path = root.etc("default/grub");
            let doc = GrubDefault::parse(&root.read_text(&path)?).with_path(&path);
            let mut text = String::new();
            for c in [doc.cmdline_linux()?, doc.cmdline_linux_default()?]
                .into_iter()
                .flatten()
            {
                text.push(' ');
                text.push_str(&c.render());
            }
            Some((path.display().to_string(), Cmdline::parse(text.trim())))
        }
        BootLoader::SystemdBoot => {
            let path = root.etc("kernel/cmdline");
            let doc = KernelCmdlineFile::parse(&root.read_text(&path)?);
            Some((path.display().to_string(), doc.cmdline().clone()))
        }
        BootLoader::Unknown { .. } => None,
    })
}

/// Every VM config under `/etc/pve/qemu-server`, with its id.
fn vm_configs(root: &SysRoot) -> Vec<(String, VmConfig)> {
    let dir = root.etc("pve/qemu-server");
    root.list_opt(&dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|name| {
            let vmid = name.strip_suffix(".conf")?.to_string();
            let text = root.read_text(&dir.join(&name)).ok()?;
            Some((vmid, VmConfig::parse(&text)))
        })
        .collect()
}

/// The `hostpciN` keys of a config with their parsed values.
fn hostpcis(config: &VmConfig) -> Vec<(String, HostPci)> {
    config
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("hostpci"))
        .filter_map(|k| Some((k.to_string(), HostPci::parse(config.get(k)?).ok()?)))
        .collect()
}

/// Runs every check.
pub fn findings(root: &SysRoot, host: &Host) -> anyhow::Result<Vec<Finding>> {
    let mut out = Vec::new();
    // What the scan could not read makes every other check less certain: say so first.
    for p in &host.problems {
        out.push(finding(
            "unreadable",
            p.to_string(),
            "repair or restore the file; a recorded host may be incomplete (see CAPTURE-NOTES.txt)",
        ));
    }
    if !host.iommu.enabled {
        out.push(finding(
            "iommu-off",
            "the IOMMU is off: no device can be given to a VM",
            "enable VT-d (Intel) or AMD-Vi (AMD) in the firmware setup, then `vfiokit setup-host --device ADDR`",
        ));
    }
    let dir = ModprobeDir::load(root)?;
    let unsafe_irq = dir
        .options("vfio_iommu_type1", "allow_unsafe_interrupts")
        .pop();
    match (host.iommu.interrupt_remapping, unsafe_irq.as_ref().and_then(|f| f.value.as_deref())) {
        (Some(true), Some("1" | "Y" | "y")) => {
            let file = unsafe_irq.as_ref().map(|f| format!("{}:{}", f.file, f.line)).unwrap_or_default();
            out.push(finding(
                "allow-unsafe-interrupts",
                format!("{file} sets allow_unsafe_interrupts=1, but this IOMMU remaps interrupts: the option only weakens the host"),
                format!("remove `options vfio_iommu_type1 allow_unsafe_interrupts=1` from {file}, then update-initramfs -u -k all"),
            ));
        }
        (Some(false), None) => out.push(finding(
            "no-interrupt-remapping",
            "the IOMMU does not remap interrupts: VFIO refuses to give devices to VMs",
            "check the firmware for an interrupt remapping option; only if there is none, `options vfio_iommu_type1 allow_unsafe_interrupts=1` (a security risk)",
        )),
        _ => {}
    }

    let running = Cmdline::parse(&host.iommu.cmdline);
    if let Some((file, configured)) = configured_cmdline(root)? {
        let words = |c: &Cmdline| -> BTreeSet<String> {
            c.render()
                .split_whitespace()
                .filter(|w| !is_boot_noise(w))
                .map(str::to_string)
                .collect()
        };
        let (run, conf) = (words(&running), words(&configured));
        for w in conf.difference(&run) {
            out.push(finding(
                "pending-reboot",
                format!("{w} is in {file} but not on the running command line"),
                "reboot (after update-grub or proxmox-boot-tool refresh) so that it takes effect",
            ));
        }
        for w in run.difference(&conf) {
            out.push(finding(
                "pending-reboot",
                format!("{w} is on the running command line but no longer in {file}"),
                "reboot so that the running kernel matches the configuration, or put it back if it is needed",
            ));
        }
    }

    if let Some(acs) = &host.iommu.acs_override {
        for item in acs.split(',') {
            let Some(id) = item.strip_prefix("id:") else {
                continue;
            };
            for d in host
                .pci
                .devices
                .iter()
                .filter(|d| format!("{}:{}", d.vendor, d.device) == id)
            {
                let others = host
                    .collateral(d)
                    .map(|c| c.iter().filter(|c| !c.bridge).count())
                    .unwrap_or(0);
                if others > 0 {
                    out.push(finding(
                        "acs-override-ineffective",
                        format!(
                            "pcie_acs_override names {id}, yet {} still shares its IOMMU group with {others} other function(s): the override changes nothing here and only weakens isolation",
                            d.address
                        ),
                        "remove pcie_acs_override from the kernel command line and reboot",
                    ));
                }
            }
        }
    }

    if let Ok(release) = root.read_attr(&root.proc_osrelease()) {
        let new_kernel = crate::setup_host::kernel_version(&release).is_some_and(|v| v >= (6, 2));
        let path = root.etc("modules");
        if let Some(text) = root.read_attr_opt(&path)?
            && new_kernel
            && ModulesFile::parse(&text).contains("vfio_virqfd")
        {
            out.push(finding(
                "vfio-virqfd",
                format!("{} lists vfio_virqfd, which does not exist on {} (merged into vfio since Linux 6.2): systemd-modules-load fails on it", path.display(), release.trim()),
                format!("remove the vfio_virqfd line from {}", path.display()),
            ));
        }
    }

    if let Some(found) = dir.options("vfio-pci", "ids").pop()
        && let Some(ids) = &found.value
    {
        let file = format!("{}:{}", found.file, found.line);
        for id in ids.split(',') {
            let targets: Vec<&PciDevice> = host
                .pci
                .devices
                .iter()
                .filter(|d| format!("{}:{}", d.vendor, d.device) == id.trim())
                .collect();
            for d in targets {
                if let Ok(a) = assess(host, &[d.address], &[])
                    && !a.harms.is_empty()
                {
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
                    out.push(finding(
                        "vfio-ids-unpassable",
                        format!(
                            "{file} binds {id} ({}) to vfio-pci, but its IOMMU group cannot leave the host: {}",
                            d.address,
                            lost.join("; ")
                        ),
                        format!("remove {id} from `options vfio-pci ids=` in {file} (and its blacklist lines), then update-initramfs -u -k all"),
                    ));
                }
            }
        }
    }

    for (vmid, config) in vm_configs(root) {
        for (key, h) in hostpcis(&config) {
            if let Some(rom) = &h.romfile {
                let path = crate::vm::romfile_path(root, rom);
                let ovmf = config.get("bios") == Some("ovmf");
                let ids = host.pci.devices.iter().find(|d| {
                    let a = d.address;
                    h.host
                        .iter()
                        .any(|id| id.matches(a.domain, a.bus, a.device, a.function))
                });
                if let (Ok(Some(bytes)), Some(d)) = (root.read_bytes_opt(&path), ids)
                    && let Err(why) = crate::vm::rom_loads(&bytes, d.vendor.0, d.device.0, ovmf)
                {
                    out.push(finding(
                        "romfile-unloadable",
                        format!(
                            "VM {vmid} {key}: {} would not load {} for {}:{}: {why}",
                            if ovmf { "OVMF" } else { "SeaBIOS" },
                            path.display(),
                            d.vendor,
                            d.device
                        ),
                        "build a ROM for this device: vfiokit vbios extract FIRMWARE --device VID:DID --rom OUT",
                    ));
                }
                if !path.exists() {
                    out.push(finding(
                        "romfile-missing",
                        format!("VM {vmid} {key}: romfile {rom} does not exist ({})", path.display()),
                        "put the ROM in /usr/share/kvm (vfiokit vbios extract builds one from the vendor firmware)",
                    ));
                }
            }
            // A host id without a function names every function of the slot, as Proxmox reads it.
            let addrs: Vec<PciAddress> = host
                .pci
                .devices
                .iter()
                .map(|d| d.address)
                .filter(|a| {
                    h.host
                        .iter()
                        .any(|id| id.matches(a.domain, a.bus, a.device, a.function))
                })
                .collect();
            check_vm_device(host, &vmid, &key, &addrs, &mut out);
        }
    }
    Ok(out)
}

/// A VM's hostpci devices: present, safe to give, their group viable, bound to vfio-pci.
fn check_vm_device(
    host: &Host,
    vmid: &str,
    key: &str,
    addrs: &[PciAddress],
    out: &mut Vec<Finding>,
) {
    if addrs.is_empty() {
        out.push(finding(
            "vm-device-missing",
            format!("VM {vmid} {key}: no such PCI device on this host"),
            "fix the address in the VM config",
        ));
    }
    for &a in addrs {
        let Some(d) = host.device(a) else { continue };
        match assess(host, &[a], &[]) {
                Ok(asm) if !asm.harms.is_empty() => out.push(finding(
                    "vm-device-unsafe",
                    format!("VM {vmid} {key}: giving {a} to the VM takes host-critical functions with it ({})", asm.harms.iter().map(|h| h.address.to_string()).collect::<Vec<_>>().join(", ")),
                    "remove it from the VM; `vfiokit setup-host --device` explains the alternatives",
                )),
                Err(e) => out.push(finding("vm-device-unsafe", format!("VM {vmid} {key}: {e}"), "turn the IOMMU on")),
                Ok(_) => {}
            }
        if let Some(group) = d.iommu_group.and_then(|g| host.group(g)) {
            let blockers: Vec<String> = host
                .blockers(group)
                .into_iter()
                .filter(|b| b.address != a)
                .map(|b| format!("{} {}", b.address, b.reason))
                .collect();
            if !blockers.is_empty() {
                out.push(finding(
                    "vm-group-not-viable",
                    format!(
                        "VM {vmid} {key}: the IOMMU group of {a} is not viable: {}",
                        blockers.join("; ")
                    ),
                    format!("vfiokit setup-host --device {a} (it plans every member of the group)"),
                ));
            }
        }
        if !d.driver_is_vfio_safe() && d.driver.is_some() {
            out.push(finding(
                "vm-device-host-driver",
                format!(
                    "VM {vmid} {key}: {a} is bound to {}, not vfio-pci",
                    d.driver.as_deref().unwrap_or_default()
                ),
                format!("vfiokit setup-host --device {a}"),
            ));
        }
    }
}

/// `verify [--json]`: exit 0 when nothing is wrong, 3 otherwise.
pub fn run(common: &Common, nodes: &[crate::mapping::Node]) -> anyhow::Result<ExitCode> {
    let root = common.open_root()?;
    let host = Host::scan(&root)?;
    let mut found = findings(&root, &host)?;
    // Cluster mappings: this node's entries against this host, and any other recorded node's.
    let local = root
        .read_attr_opt(&root.etc("hostname"))?
        .map(|h| h.trim().to_string());
    let mut checks: Vec<(String, Host)> = Vec::new();
    for n in nodes {
        let node_root = vfiokit_sysfs::SysRoot::new(&n.root)?;
        checks.push((n.name.clone(), Host::scan(&node_root)?));
    }
    if let Some(local) = local.filter(|l| !nodes.iter().any(|n| &n.name == l)) {
        checks.push((local, host));
    }
    for (node, node_host) in &checks {
        for (id, message) in crate::mapping::check_node(&root, node, node_host) {
            found.push(finding(
                "mapping-invalid",
                format!("mapping '{id}': {message}"),
                format!("re-plan it: vfiokit mapping plan --name {id} …"),
            ));
        }
    }
    if common.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "ok": found.is_empty(), "findings": found })
            )?
        );
    } else if found.is_empty() {
        println!("ok: nothing wrong found");
    } else {
        for f in &found {
            println!("{}: {}\n  fix: {}", f.check, f.message, f.fix);
        }
        println!("\n{} problem(s) found", found.len());
    }
    Ok(if found.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
