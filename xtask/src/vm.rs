//! `setup-vm` and `vm lint|fmt|show`: Proxmox VM configs, planned and checked.
//!
//! `setup-vm` edits `/etc/pve/qemu-server/<vmid>.conf` through the same plan, journal and undo
//! as `setup-host`: every other byte of the config stays as it was.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::json;
use vfiokit_iommu::{Host, assess};
use vfiokit_pci::{ClassCode, PciAddress};
use vfiokit_sysfs::SysRoot;
use vfiokit_usbredir::{UsbDevice, UsbId, next_free_usb, redirect_entry};
use vfiokit_vmconf::{
    Diagnostic, HostFunction, HostPci, LintOptions, Machine, MachineKind, PropertyString, Severity,
    UsbEntry, UsbHost, VmConfig, legacy_igd_verdict, lint, lint_with_host, split_args,
};

use crate::Common;
use crate::apply;
use crate::plan::Plan;
use crate::setup_host::Refusal;

/// What `setup-vm` was asked for.
pub struct VmRequest {
    /// The VM.
    pub vmid: u32,
    /// The integrated GPU to give in legacy mode.
    pub igd: Option<PciAddress>,
    /// Further PCI devices.
    pub devices: Vec<PciAddress>,
    /// USB devices to redirect by id (`062a:4101`).
    pub usb: Vec<UsbId>,
    /// The ROM file (under /usr/share/kvm) for the iGPU.
    pub romfile: Option<String>,
    /// A config to copy `smbios1` and `vmgenid` from.
    pub clone_from: Option<PathBuf>,
    /// A cluster resource mapping to use instead of host addresses.
    pub mapping: Option<String>,
}

/// A mapping from `/etc/pve/mapping/{pci,usb}.cfg`, as setup-vm uses it.
struct ResolvedMapping {
    id: String,
    /// A PCI mapping exists under this id.
    pci: bool,
    /// Its entries are all one Intel function at 00:02.0, one per node: a legacy-mode iGPU.
    igd: bool,
    /// The mapped `vendor:device`.
    ids: (u16, u16),
    /// A USB mapping exists under this id.
    usb: bool,
}

/// Reads the mapping `id` and checks Proxmox's legacy-IGD rules against every node's entry.
fn resolve_mapping(root: &SysRoot, id: &str) -> anyhow::Result<Result<ResolvedMapping, Refusal>> {
    if !crate::mapping::valid_config_id(id) {
        bail!("invalid mapping id {id:?}: Proxmox ids are [a-z][a-z0-9_-]+");
    }
    let read = |kind: &str| -> anyhow::Result<Option<vfiokit_vmconf::MappingSection>> {
        let path = crate::mapping::mapping_path(root, kind);
        let Some(text) = root.read_attr_opt(&path)? else {
            return Ok(None);
        };
        Ok(vfiokit_vmconf::MappingFile::parse(&text)
            .sections()
            .into_iter()
            .find(|s| s.id == id))
    };
    let (pci, usb) = (read("pci")?, read("usb")?);
    if pci.is_none() && usb.is_none() {
        bail!(
            "PCI device mapping not found for '{id}' (looked in {} and {})",
            crate::mapping::mapping_path(root, "pci").display(),
            crate::mapping::mapping_path(root, "usb").display()
        );
    }
    let items: Vec<vfiokit_vmconf::PciMapItem> = pci
        .iter()
        .flat_map(|s| s.maps.iter())
        .filter_map(|(_, v)| vfiokit_vmconf::PciMapItem::parse(v).ok())
        .collect();
    let at_02 = |i: &vfiokit_vmconf::PciMapItem| {
        i.path.len() == 1
            && i.path[0].matches(0, 0, 2, 0)
            && i.path[0].function.is_some()
            && i.id.starts_with("8086:")
    };
    let igd = !items.is_empty() && items.iter().all(at_02);
    if igd {
        let mut nodes: Vec<&str> = items.iter().map(|i| i.node.as_str()).collect();
        nodes.sort();
        if let Some(w) = nodes.windows(2).find(|w| w[0] == w[1]) {
            return Ok(Err(Refusal(format!(
                "refused: mapping '{id}' has two entries for node {}: legacy IGD assignment is not compatible with alternate devices\n",
                w[0]
            ))));
        }
    }
    let ids = items
        .first()
        .and_then(|i| i.id.split_once(':'))
        .and_then(|(v, d)| {
            Some((
                u16::from_str_radix(v, 16).ok()?,
                u16::from_str_radix(d, 16).ok()?,
            ))
        })
        .unwrap_or((0, 0));
    Ok(Ok(ResolvedMapping {
        id: id.to_string(),
        pci: pci.is_some(),
        igd,
        ids,
        usb: usb.is_some(),
    }))
}

/// The hostpci key that already uses mapping `id`.
fn hostpci_with_mapping(config: &VmConfig, id: &str) -> Option<String> {
    hostpcis(config)
        .into_iter()
        .find_map(|(k, h)| (h.mapping.as_deref() == Some(id)).then_some(k))
}

/// Where the VM's config is: `/etc/pve/qemu-server/<vmid>.conf`, else the first
/// `/etc/pve/nodes/<node>/qemu-server/<vmid>.conf`.
fn config_path(root: &SysRoot, vmid: u32) -> anyhow::Result<PathBuf> {
    let name = format!("{vmid}.conf");
    let local = root.etc("pve/qemu-server").join(&name);
    if local.exists() {
        return Ok(local);
    }
    let nodes = root.etc("pve/nodes");
    for node in root.list_opt(&nodes)? {
        let p = nodes.join(node).join("qemu-server").join(&name);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!(
        "VM {vmid} has no config: looked for {} and {}/*/qemu-server/{name}",
        local.display(),
        nodes.display()
    )
}

fn read_utf8(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// The QEMU version: from the host (a live `qemu-system-x86_64 --version` on `/`, or the recorded
/// output), else from the config's machine line. Returns the version and where it came from.
fn qemu_version(root: &SysRoot, config: &VmConfig) -> Option<((u32, u32), String)> {
    let parse = |text: &str| -> Option<(u32, u32)> {
        let rest = text.split("version").nth(1)?.split_whitespace().next()?;
        let mut p = rest.split('.');
        Some((p.next()?.parse().ok()?, p.next()?.parse().ok()?))
    };
    if root.is_host()
        && let Ok(out) = std::process::Command::new("qemu-system-x86_64")
            .arg("--version")
            .output()
        && let Some(v) = parse(&String::from_utf8_lossy(&out.stdout))
    {
        return Some((v, "qemu-system-x86_64 --version on this host".into()));
    }
    let record = root.qemu_version_record();
    if let Ok(Some(text)) = root.read_attr_opt(&record)
        && let Some(v) = parse(&text)
    {
        return Some((v, format!("the recorded {}", record.display())));
    }
    let machine = Machine::parse(config.get("machine")?).ok()?;
    machine
        .version
        .map(|v| (v, format!("the VM's machine line ({})", machine.raw_type)))
}

/// The `hostpciN` keys and their parsed values.
fn hostpcis(config: &VmConfig) -> Vec<(String, HostPci)> {
    config
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("hostpci"))
        .filter_map(|k| Some((k.to_string(), HostPci::parse(config.get(k)?).ok()?)))
        .collect()
}

/// The hostpci key that already gives `addr` (exactly, or as a function-less whole slot).
fn hostpci_for(config: &VmConfig, addr: PciAddress) -> Option<String> {
    hostpcis(config).into_iter().find_map(|(k, h)| {
        h.host
            .iter()
            .any(|id| id.matches(addr.domain, addr.bus, addr.device, addr.function))
            .then_some(k)
    })
}

fn free_key(config: &VmConfig, family: &str, max: u32) -> anyhow::Result<String> {
    config
        .next_free(family, max)
        .map(|n| format!("{family}{n}"))
        .ok_or_else(|| anyhow::anyhow!("no free {family}N left (0..={max} are all used)"))
}

/// Merges `-set device.<key>.<prop>=<value>` pairs into an `args` line, keeping what is there.
fn merge_args(args: Option<&str>, sets: &[(String, String)]) -> anyhow::Result<String> {
    let existing = match args {
        Some(a) => split_args(a).map_err(|e| anyhow::anyhow!("args: {e}"))?,
        None => Vec::new(),
    };
    let mut out = args.map(str::trim).unwrap_or("").to_string();
    for (prop, value) in sets {
        let prefix = format!("{prop}=");
        let present = existing
            .windows(2)
            .any(|w| w[0] == "-set" && w[1].starts_with(&prefix));
        if !present {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&format!("-set {prop}={value}"));
        }
    }
    Ok(out)
}

/// The plan for a VM config, and the same change as `qm set` arguments.
pub struct VmPlan {
    /// The config edit.
    pub plan: Plan,
    /// `(key, value)` pairs for `qm set`, in order.
    pub qm: Vec<(String, String)>,
}

/// Builds the new config text and the plan, or a refusal message (exit 3).
pub fn plan_vm(
    root: &SysRoot,
    host: &Host,
    req: &VmRequest,
) -> anyhow::Result<Result<VmPlan, Refusal>> {
    let path = config_path(root, req.vmid)?;
    let old = read_utf8(&path)?;
    let mut config = VmConfig::parse(&old);
    let mut reasons = Vec::new();
    let mut notes = Vec::new();
    // (key, value) pairs for `qm set`, in order.
    let mut qm: Vec<(String, String)> = Vec::new();
    let mut set =
        |config: &mut VmConfig, key: &str, value: &str, why: String, reasons: &mut Vec<String>| {
            if config.set(key, value) {
                reasons.push(format!("{key}: {why}"));
                qm.push((key.to_string(), value.to_string()));
            }
        };

    if let Some(igd) = req.igd {
        let d = host
            .device(igd)
            .ok_or_else(|| anyhow::anyhow!("no PCI device {igd} on this host"))?;
        if d.vendor.0 != 0x8086 || d.class.base_sub() != ClassCode::VGA {
            bail!(
                "{igd} is not an Intel VGA device ({}:{}, class {}): --igd is for Intel integrated graphics",
                d.vendor,
                d.device,
                d.class
            );
        }
        if (igd.bus, igd.device, igd.function) != (0, 2, 0) {
            bail!("legacy IGD assignment only works for devices on host bus 00:02.0 (got {igd})");
        }
    }
    for &addr in &req.devices {
        if host.device(addr).is_none() {
            bail!("no PCI device {addr} on this host (see `vfiokit inspect`)");
        }
    }

    // Safety first: the same assessment as setup-host.
    let mut pci: Vec<PciAddress> = req.igd.iter().copied().collect();
    pci.extend(&req.devices);
    if !pci.is_empty() {
        if host.groups.is_empty() {
            bail!(
                "the IOMMU is off on this host: no device can be given to a VM (see `vfiokit setup-host`)"
            );
        }
        let a = assess(host, &pci, &[])?;
        if !a.harms.is_empty() {
            let mut msg = String::from(
                "refused: giving these devices to the VM takes functions the host needs:\n",
            );
            for h in &a.harms {
                for r in &h.roles {
                    msg.push_str(&format!(
                        "  {} ({}): {}; the host would lose {}\n",
                        h.address,
                        r.role,
                        r.detail,
                        r.role.loss()
                    ));
                }
            }
            msg.push_str(
                "run `vfiokit setup-host --device ADDR` for the details and the alternatives\n",
            );
            return Ok(Err(Refusal(msg)));
        }
        for &addr in &pci {
            if let Some(d) = host.device(addr)
                && !d.driver_is_vfio_safe()
                && let Some(drv) = &d.driver
            {
                notes.push(format!(
                    "warning: {addr} is still bound to {drv}; `vfiokit setup-host --device {addr}` and a reboot hand it to vfio-pci"
                ));
            }
        }
    }

    let mapping = match &req.mapping {
        Some(id) => match resolve_mapping(root, id)? {
            Ok(m) => Some(m),
            Err(r) => return Ok(Err(r)),
        },
        None => None,
    };
    if let Some(m) = &mapping {
        if m.pci && !m.igd && hostpci_with_mapping(&config, &m.id).is_none() {
            let key = free_key(&config, "hostpci", 15)?;
            set(
                &mut config,
                &key,
                &format!("mapping={}", m.id),
                format!(
                    "the PCI device of cluster mapping '{}', resolved on each node at start",
                    m.id
                ),
                &mut reasons,
            );
        }
        let has_usb = config
            .keys()
            .into_iter()
            .filter(|k| usb_index(k).is_some())
            .any(|k| {
                config
                    .get(k)
                    .and_then(|v| UsbEntry::parse(v).ok())
                    .is_some_and(|u| u.mapping.as_deref() == Some(m.id.as_str()))
            });
        if m.usb && !has_usb {
            let used: Vec<u32> = config.keys().into_iter().filter_map(usb_index).collect();
            let n =
                next_free_usb(&used, true).ok_or_else(|| anyhow::anyhow!("no free usbN left"))?;
            set(
                &mut config,
                &format!("usb{n}"),
                &format!("mapping={}", m.id),
                format!("the USB device of cluster mapping '{}'", m.id),
                &mut reasons,
            );
        }
    }
    // The legacy-mode iGPU: a host address (--igd), or a cluster mapping whose every entry is
    // an Intel device at 00:02.0 (--mapping).
    let igd_source = match (req.igd, &mapping) {
        (Some(igd), _) => {
            let Some(d) = host.device(igd) else {
                bail!("no PCI device {igd} on this host");
            };
            Some((
                igd.to_string(),
                hostpci_for(&config, igd),
                (d.vendor.0, d.device.0),
                format!("the iGPU {igd}"),
            ))
        }
        (None, Some(m)) if m.igd => Some((
            format!("mapping={}", m.id),
            hostpci_with_mapping(&config, &m.id),
            m.ids,
            format!("the iGPU of mapping '{}' (00:02.0 on every node)", m.id),
        )),
        _ => None,
    };
    if let Some((host_value, existing, (vendor, device), label)) = igd_source {
        let key = match existing {
            Some(k) => k,
            None if config.get("hostpci0").is_none() => "hostpci0".to_string(),
            None => free_key(&config, "hostpci", 15)?,
        };
        let mut value =
            PropertyString::parse(config.get(&key).unwrap_or(&host_value), Some("host"));
        value.set("legacy-igd", "1");
        if let Some(rom) = &req.romfile {
            value.set("romfile", rom);
            let rom_path = romfile_path(root, rom);
            if let Some(bytes) = root.read_bytes_opt(&rom_path)? {
                let ovmf = config.get("bios") == Some("ovmf");
                if let Err(why) = rom_loads(&bytes, vendor, device, ovmf) {
                    return Ok(Err(Refusal(format!(
                        "refused: {} would not load from {} for {label} ({vendor:04x}:{device:04x}): {why}\n",
                        if ovmf { "OVMF" } else { "SeaBIOS" },
                        rom_path.display(),
                    ))));
                }
            } else {
                notes.push(format!(
                    "warning: {} does not exist yet: put the VBIOS there before starting the VM (`vfiokit vbios` builds and checks one)",
                    rom_path.display()
                ));
            }
        }
        set(
            &mut config,
            &key,
            &value.render(),
            format!("{label} in legacy mode: the VM's only display, at guest 00:02.0"),
            &mut reasons,
        );

        let (version, source) = qemu_version(root, &config).ok_or_else(|| {
            anyhow::anyhow!(
                "cannot tell the QEMU version: no qemu-system-x86_64 record and no machine line"
            )
        })?;
        let machine = format!("pc-i440fx-{}.{}", version.0, version.1);
        let current = config.get("machine").and_then(|m| Machine::parse(m).ok());
        let keep = current
            .as_ref()
            .is_some_and(|m| m.kind == MachineKind::I440fx && m.pve.is_none());
        if !keep {
            set(
                &mut config,
                "machine",
                &machine,
                format!(
                    "legacy IGD needs the i440fx machine, and the plain version: pc-i440fx-{0}.{1}+pve1 does not start with the iGPU (the seed found this on QEMU 9.2); version {0}.{1} from {source}",
                    version.0, version.1
                ),
                &mut reasons,
            );
        }
        set(
            &mut config,
            "vga",
            "none",
            "legacy IGD requires VGA mode to be 'none': the iGPU is the only display".into(),
            &mut reasons,
        );
        let sets = [
            (format!("device.{key}.addr"), "02.0".to_string()),
            (format!("device.{key}.x-igd-gms"), "0x2".to_string()),
            (format!("device.{key}.x-igd-opregion"), "on".to_string()),
        ];
        let args = merge_args(config.get("args"), &sets)?;
        set(
            &mut config,
            "args",
            &args,
            format!(
                "QEMU options for {key}: guest address 02.0, 64 MB stolen memory (x-igd-gms=0x2), the host's OpRegion (display output); \
                 assumes this QEMU accepts x-igd-gms, as the seed's 9.2.0 did"
            ),
            &mut reasons,
        );
        if config.get("bios").is_none() {
            notes.push("bios is not set (SeaBIOS): the VBIOS in romfile drives the display; with `bios: ovmf` a ROM with a GOP driver is needed".into());
        }
    }

    for &addr in &req.devices {
        if hostpci_for(&config, addr).is_none() {
            let key = free_key(&config, "hostpci", 15)?;
            set(
                &mut config,
                &key,
                &addr.to_string(),
                format!("passes {addr} to the VM"),
                &mut reasons,
            );
        }
    }

    if !req.usb.is_empty() {
        // usb5 and up need machine 7.1 or newer; a machine without a version is the newest.
        let machine_7_1 = config
            .get("machine")
            .and_then(|m| Machine::parse(m).ok())
            .and_then(|m| m.version)
            .is_none_or(|v| v >= (7, 1));
        for id in &req.usb {
            let matching: Vec<&UsbDevice> =
                host.usb.devices.iter().filter(|d| d.id == *id).collect();
            if matching.is_empty() {
                let present: Vec<String> = host
                    .usb
                    .devices
                    .iter()
                    .filter(|d| !d.is_hub())
                    .map(|d| format!("{} {} ({})", d.id, d.name(), d.port))
                    .collect();
                bail!(
                    "no USB device {id} on this host; present: {}",
                    if present.is_empty() {
                        "none".to_string()
                    } else {
                        present.join(", ")
                    }
                );
            }
            for d in matching {
                let entry = redirect_entry(d, &host.usb.devices);
                let exists = config
                    .keys()
                    .into_iter()
                    .filter(|k| usb_index(k).is_some())
                    .any(|k| {
                        config
                            .get(k)
                            .and_then(|val| UsbEntry::parse(val).ok())
                            .is_some_and(|u| match u.host {
                                Some(UsbHost::Id { vendor, product }) => {
                                    !entry.by_port && UsbId { vendor, product } == *id
                                }
                                Some(UsbHost::Port(p)) => p == d.port,
                                _ => false,
                            })
                    });
                if exists {
                    continue;
                }
                let used: Vec<u32> = config.keys().into_iter().filter_map(usb_index).collect();
                let n = next_free_usb(&used, machine_7_1).ok_or_else(|| {
                    anyhow::anyhow!(
                        "no free usbN left for {id}: usb0..usb4{} are used",
                        if machine_7_1 {
                            "..usb13"
                        } else {
                            " (usb5 and up need machine 7.1 or newer)"
                        }
                    )
                })?;
                let why = if entry.by_port {
                    format!(
                        "redirects {} at USB port {} — another device shares the id {id}, so it goes by port: keep it plugged into that port",
                        d.name(),
                        d.port
                    )
                } else {
                    format!("redirects {} ({id}) by id", d.name())
                };
                set(
                    &mut config,
                    &format!("usb{n}"),
                    &entry.value,
                    why,
                    &mut reasons,
                );
            }
        }
    }

    if let Some(from) = &req.clone_from {
        let other = VmConfig::parse(&read_utf8(from)?);
        for key in ["smbios1", "vmgenid"] {
            if let Some(v) = other.get(key) {
                set(
                    &mut config,
                    key,
                    v,
                    format!(
                        "copied from {} (keeps the guest's identity, e.g. the Windows licence)",
                        from.display()
                    ),
                    &mut reasons,
                );
            }
        }
    }

    let new = config.render();
    for d in lint(
        &config,
        &LintOptions {
            vmid: Some(req.vmid),
            qemu: None,
        },
    ) {
        if d.severity == Severity::Error
            && !lint(
                &VmConfig::parse(&old),
                &LintOptions {
                    vmid: Some(req.vmid),
                    qemu: None,
                },
            )
            .contains(&d)
        {
            notes.push(format!("error in the result: {}", diag_text(&path, &d)));
        }
    }
    let mut plan = Plan::default();
    let rel = path
        .strip_prefix(root.root())
        .map_or_else(|_| path.clone(), Path::to_path_buf);
    plan.edit(rel, Some(old), new, reasons);
    plan.notes = notes;
    Ok(Ok(VmPlan { plan, qm }))
}

/// `N` of a `usbN` key.
fn usb_index(key: &str) -> Option<u32> {
    key.strip_prefix("usb")?.parse().ok()
}

fn diag_text(path: &Path, d: &Diagnostic) -> String {
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    match d.line {
        Some(l) => format!("{}:{l}: {sev}: {}", path.display(), d.message),
        None => format!("{}: {sev}: {}", path.display(), d.message),
    }
}

/// Single-quotes a value for a shell, as `qm set` wants it.
fn shell_quote(v: &str) -> String {
    if v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:=,/".contains(&b))
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}

/// `setup-vm`.
pub fn setup_vm(
    common: &Common,
    req: &VmRequest,
    do_apply: bool,
    print_qm: bool,
) -> anyhow::Result<ExitCode> {
    let root = common.open_root()?;
    let _lock = apply::prepare(&root, Some(req.vmid), do_apply && !print_qm)?;
    let host = Host::scan(&root)?;
    let VmPlan { plan, qm } = match plan_vm(&root, &host, req)? {
        Ok(p) => p,
        Err(Refusal(refusal)) => {
            if common.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "refused": refusal }))?
                );
            } else {
                eprint!("{refusal}");
            }
            return Ok(ExitCode::from(3));
        }
    };
    if print_qm {
        if qm.is_empty() {
            println!("# nothing to do: VM {} is already set up", req.vmid);
        } else {
            let args: Vec<String> = qm
                .iter()
                .map(|(k, v)| format!("--{k} {}", shell_quote(v)))
                .collect();
            println!("qm set {} {}", req.vmid, args.join(" "));
        }
        for n in &plan.notes {
            println!("# {n}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    crate::setup_cmd::show_or_apply(
        common,
        &root,
        &plan,
        do_apply,
        &format!("setup-vm --vmid {}", req.vmid),
        &format!("VM {} is already set up", req.vmid),
    )
}

/// `vm lint FILE…`: exit 3 when any file has an error.
pub fn lint_files(common: &Common, files: &[PathBuf], with_host: bool) -> anyhow::Result<ExitCode> {
    let root = if with_host {
        Some(common.open_root()?)
    } else {
        None
    };
    let host = root.as_ref().map(Host::scan).transpose()?;
    let mut errors = 0;
    let mut report = Vec::new();
    let configs: Vec<(&PathBuf, VmConfig)> = files
        .iter()
        .map(|f| Ok((f, VmConfig::parse(&read_utf8(f)?))))
        .collect::<anyhow::Result<_>>()?;
    for (file, config) in &configs {
        let vmid = file
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".conf"))
            .and_then(|n| n.parse().ok());
        let qemu = root
            .as_ref()
            .and_then(|r| qemu_version(r, config))
            .map(|(v, _)| v);
        let options = LintOptions { vmid, qemu };
        let mut diags = match (&root, &host) {
            (Some(root), Some(host)) => {
                let mut d = lint_with_host(config, &options, Some(&host_functions(host)));
                d.extend(romfile_checks(root, host, config));
                d
            }
            _ => lint(config, &options),
        };
        diags.extend(shared_devices(file, config, &configs));
        diags.sort_by_key(|d| d.line);
        for d in &diags {
            if d.severity == Severity::Error {
                errors += 1;
            }
            if !common.json {
                println!("{}", diag_text(file, d));
            }
        }
        report.push(json!({
            "file": file,
            "diagnostics": diags.iter().map(|d| json!({
                "line": d.line,
                "severity": if d.severity == Severity::Error { "error" } else { "warning" },
                "message": d.message,
            })).collect::<Vec<_>>(),
        }));
    }
    if common.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "ok": errors == 0, "files": report }))?
        );
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// A host device that another of the linted VMs gives too: both cannot run at once.
fn shared_devices(file: &Path, config: &VmConfig, all: &[(&PathBuf, VmConfig)]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for e in config.entries() {
        if !matches!(e.section, vfiokit_vmconf::Section::Main) || !e.key.starts_with("hostpci") {
            continue;
        }
        let Ok(mine) = HostPci::parse(e.value) else {
            continue;
        };
        for (other_file, other) in all.iter().filter(|(f, _)| f.as_path() != file) {
            for (key, theirs) in hostpcis(other) {
                if let Some(id) = mine
                    .host
                    .iter()
                    .find(|m| theirs.host.iter().any(|t| t.to_string() == m.to_string()))
                {
                    out.push(Diagnostic {
                        line: Some(e.line),
                        severity: Severity::Warning,
                        message: format!(
                            "{}: {id} is also given by {} {key}: the two VMs cannot run at the same time",
                            e.key,
                            other_file.display()
                        ),
                    });
                }
            }
        }
    }
    out
}

/// Whether the VM's firmware would load the ROM for `vendor:device`: OVMF needs an X64 EFI
/// driver image, SeaBIOS a legacy image whose ids match and whose checksum is zero.
pub fn rom_loads(bytes: &[u8], vendor: u16, device: u16, ovmf: bool) -> Result<(), String> {
    if ovmf {
        return vfiokit_vbios::check_romfile(bytes, vendor, device);
    }
    let rom = vfiokit_vbios::Rom::parse(bytes).map_err(|e| e.to_string())?;
    match rom.verdict(Some((vendor, device))).seabios {
        vfiokit_vbios::Load::Loads { .. } => Ok(()),
        vfiokit_vbios::Load::Not { reason } => Err(reason),
    }
}

/// Where a `romfile=` value points: under `/usr/share/kvm` unless absolute.
pub fn romfile_path(root: &SysRoot, rom: &str) -> PathBuf {
    if rom.starts_with('/') {
        root.path(rom)
    } else {
        root.usr_share("kvm").join(rom)
    }
}

/// Checks that need files of the host: the ROM files named by `romfile=`.
fn romfile_checks(root: &SysRoot, host: &Host, config: &VmConfig) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let ovmf = config.get("bios") == Some("ovmf");
    for e in config.entries() {
        if !matches!(e.section, vfiokit_vmconf::Section::Main) || !e.key.starts_with("hostpci") {
            continue;
        }
        let Ok(h) = HostPci::parse(e.value) else {
            continue;
        };
        let Some(rom) = &h.romfile else { continue };
        let path = romfile_path(root, rom);
        let diag = |severity, message| Diagnostic {
            line: Some(e.line),
            severity,
            message,
        };
        let bytes = match root.read_bytes_opt(&path) {
            Ok(Some(b)) => b,
            Ok(None) => {
                out.push(diag(
                    Severity::Warning,
                    format!(
                        "{}: romfile {rom} does not exist ({})",
                        e.key,
                        path.display()
                    ),
                ));
                continue;
            }
            Err(err) => {
                out.push(diag(Severity::Error, format!("{}: {err}", e.key)));
                continue;
            }
        };
        let device = host.pci.devices.iter().find(|d| {
            let a = d.address;
            h.host
                .iter()
                .any(|id| id.matches(a.domain, a.bus, a.device, a.function))
        });
        if let Some(d) = device
            && let Err(why) = rom_loads(&bytes, d.vendor.0, d.device.0, ovmf)
        {
            out.push(diag(
                Severity::Error,
                format!(
                    "{}: {} would not load romfile {rom} for {}:{}: {why}",
                    e.key,
                    if ovmf { "OVMF" } else { "SeaBIOS" },
                    d.vendor,
                    d.device
                ),
            ));
        }
    }
    out
}

/// The host's PCI functions as the lint crate wants them.
fn host_functions(host: &Host) -> Vec<HostFunction> {
    host.pci
        .devices
        .iter()
        .map(|d| HostFunction {
            domain: d.address.domain,
            bus: d.address.bus,
            device: d.address.device,
            function: d.address.function,
            vendor: d.vendor.0,
            device_id: d.device.0,
        })
        .collect()
}

/// `vm fmt FILE [--canonical]`: the config re-rendered (byte-identical for what Proxmox
/// accepts), or in Proxmox's canonical form.
pub fn fmt_file(file: &Path, canonical: bool) -> anyhow::Result<ExitCode> {
    let config = VmConfig::parse(&read_utf8(file)?);
    if canonical {
        print!("{}", config.render_canonical());
    } else {
        print!("{}", config.render());
    }
    Ok(report_errors(file, &config))
}

/// For `fmt` and `show`: the output is printed either way, but a config Proxmox would reject or
/// drop lines of says so on stderr, with file and line, and exits 3.
fn report_errors(file: &Path, config: &VmConfig) -> ExitCode {
    let errors: Vec<Diagnostic> = lint(
        config,
        &LintOptions {
            vmid: None,
            qemu: None,
        },
    )
    .into_iter()
    .filter(|d| d.severity == Severity::Error)
    .collect();
    for d in &errors {
        eprintln!("{}", diag_text(file, d));
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}

/// `vm show FILE`: a typed view.
pub fn show_file(common: &Common, file: &Path) -> anyhow::Result<ExitCode> {
    let config = VmConfig::parse(&read_utf8(file)?);
    let machine = config
        .get("machine")
        .map_or_else(|| Ok(Machine::default_for_missing()), Machine::parse);
    let devices: Vec<serde_json::Value> = hostpcis(&config)
        .into_iter()
        .map(|(k, h)| {
            json!({
                "key": k,
                "host": h.host.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "mapping": h.mapping,
                "legacy_igd": h.legacy_igd.unwrap_or(false),
                "romfile": h.romfile,
                "pcie": h.pcie.unwrap_or(false),
                "x_vga": h.x_vga.unwrap_or(false),
            })
        })
        .collect();
    let usb: Vec<serde_json::Value> = config
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("usb"))
        .filter_map(|k| {
            let raw = config.get(k)?;
            let u = UsbEntry::parse(raw).ok()?;
            Some(json!({ "key": k, "value": raw, "usb3": u.usb3.unwrap_or(false), "mapping": u.mapping }))
        })
        .collect();
    let legacy = hostpcis(&config)
        .iter()
        .any(|(_, h)| h.legacy_igd == Some(true));
    let verdict = if legacy {
        match legacy_igd_verdict(&config) {
            Ok(()) => json!({ "ok": true }),
            Err(m) => json!({ "ok": false, "message": m }),
        }
    } else {
        serde_json::Value::Null
    };
    let view = json!({
        "name": config.get("name"),
        "machine": match &machine {
            Ok(m) => json!({ "type": m.raw_type, "kind": format!("{:?}", m.kind).to_lowercase(), "version": m.version.map(|v| format!("{}.{}", v.0, v.1)) }),
            Err(e) => json!({ "error": e.to_string() }),
        },
        "bios": config.get("bios").unwrap_or("seabios"),
        "vga": config.get("vga"),
        "args": config.get("args").map(|a| split_args(a).unwrap_or_default()),
        "devices": devices,
        "usb": usb,
        "legacy_igd": verdict,
    });
    if common.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        println!("name: {}", config.get("name").unwrap_or("-"));
        println!(
            "machine: {}",
            view["machine"]["type"].as_str().unwrap_or("?")
        );
        println!("firmware: {}", view["bios"].as_str().unwrap_or("seabios"));
        println!("vga: {}", config.get("vga").unwrap_or("(default)"));
        for d in view["devices"].as_array().into_iter().flatten() {
            println!("{}: {}", d["key"].as_str().unwrap_or(""), d);
        }
        for u in view["usb"].as_array().into_iter().flatten() {
            println!(
                "{}: {}",
                u["key"].as_str().unwrap_or(""),
                u["value"].as_str().unwrap_or("")
            );
        }
        if legacy {
            match legacy_igd_verdict(&config) {
                Ok(()) => println!("legacy IGD: ok"),
                Err(m) => println!("legacy IGD: {m}"),
            }
        }
    }
    Ok(report_errors(file, &config))
}
