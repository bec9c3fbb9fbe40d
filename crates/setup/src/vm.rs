//! `setup-vm` and the checks of VM configs: Proxmox VM configs, planned and checked.
//!
//! [`plan`] edits `/etc/pve/qemu-server/<vmid>.conf` as a [`Plan`]: every other byte of the
//! config stays as it was. [`lint`] checks configs with Proxmox's rules and, given a host, against
//! its devices and ROM files; [`view`] is the typed summary `vm show` prints.

use std::path::{Path, PathBuf};

use serde::Serialize;
use vfiokit_iommu::assess;
use vfiokit_pci::{ClassCode, PciAddress};
use vfiokit_plan::Plan;
use vfiokit_usbredir::{UsbDevice, UsbId, next_free_usb, redirect_entry};
use vfiokit_vmconf::{
    Diagnostic, HostFunction, HostPci, LintOptions, Machine, MachineKind, PropertyString, Severity,
    UsbEntry, UsbHost, VmConfig, legacy_igd_verdict, split_args,
};

use crate::facts::{HostFacts, qemu_for};
use crate::refusal::Refusal;
use crate::{Error, Result};

/// What `setup-vm` was asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
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
    /// A config to copy `smbios1` and `vmgenid` from: its name (for the reason) and its text.
    pub clone_from: Option<(PathBuf, String)>,
    /// A cluster resource mapping to use instead of host addresses.
    pub mapping: Option<String>,
    /// The passed display controller that becomes the VM's display (`x-vga=1`, `vga: none`).
    pub primary: Option<PciAddress>,
    /// ROM files (under /usr/share/kvm) for passed devices: `romfile=` on their entries.
    pub roms: Vec<crate::gpu::RomArg>,
    /// Mediated devices (GVT-g vGPUs) to give: the parent and the type (`i915-GVTg_V5_4`).
    pub mdev: Vec<(PciAddress, String)>,
    /// Plan the known remedy for passed functions without a reset method (vendor-reset for the
    /// AMD reset-bug families, the remove-and-rescan hookscript for an AMD APU's GPU).
    pub reset_remedy: bool,
}

impl Request {
    /// What the plan looks at ([`crate::HostFacts::gather_for`]): every function of the slots
    /// it gives (a display controller goes with its whole slot) and the ROM files it names;
    /// everything when the devices come from a cluster mapping.
    pub fn scope(&self) -> crate::Scope {
        if self.mapping.is_some() {
            return crate::Scope::Everything;
        }
        let given = self
            .igd
            .iter()
            .chain(&self.devices)
            .chain(&self.primary)
            .chain(self.mdev.iter().map(|(a, _)| a));
        let functions = given
            .flat_map(|a| (0..8).map(move |function| PciAddress { function, ..*a }))
            .collect();
        let roms = self
            .roms
            .iter()
            .map(|r| r.file.clone())
            .chain(self.romfile.clone())
            .collect();
        crate::Scope::Request { functions, roms }
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
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
    /// The USB ids its entries for this node name (`etc/hostname`).
    usb_ids: Vec<UsbId>,
}

/// Reads the mapping `id` and checks Proxmox's legacy-IGD rules against every node's entry.
fn resolve_mapping(
    facts: &HostFacts,
    id: &str,
) -> Result<std::result::Result<ResolvedMapping, Refusal>> {
    if !crate::mapping::valid_config_id(id) {
        return Err(invalid(format!(
            "invalid mapping id {id:?}: Proxmox ids are [a-z][a-z0-9_-]+"
        )));
    }
    let read = |file: &crate::TextFile| -> Result<Option<vfiokit_vmconf::MappingSection>> {
        let Some(text) = file.get()? else {
            return Ok(None);
        };
        Ok(vfiokit_vmconf::MappingFile::parse(text)
            .sections()
            .into_iter()
            .find(|s| s.id == id))
    };
    let (pci, usb) = (read(&facts.pci_mappings)?, read(&facts.usb_mappings)?);
    if pci.is_none() && usb.is_none() {
        return Err(invalid(format!(
            "PCI device mapping not found for '{id}' (looked in {} and {})",
            facts.abs(&facts.pci_mappings.path).display(),
            facts.abs(&facts.usb_mappings.path).display()
        )));
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
            return Ok(Err(Refusal::plain(format!(
                "refused: mapping '{id}' has two entries for node {}: legacy IGD assignment is not compatible with alternate devices\n",
                w[0]
            ))));
        }
    }
    let ids = items
        .first()
        .and_then(|i| i.id.parse::<vfiokit_pci::PciId>().ok())
        .map_or((0, 0), |id| (id.vendor.0, id.device.0));
    let usb_ids = usb
        .iter()
        .flat_map(|s| s.maps.iter())
        .filter_map(|(_, v)| vfiokit_vmconf::UsbMapItem::parse(v).ok())
        .filter(|i| Some(i.node.as_str()) == facts.hostname.as_deref())
        .filter_map(|i| i.id.parse::<UsbId>().ok())
        .collect();
    Ok(Ok(ResolvedMapping {
        id: id.to_string(),
        pci: pci.is_some(),
        igd,
        ids,
        usb: usb.is_some(),
        usb_ids,
    }))
}

/// The hostpci key that already uses mapping `id`.
fn hostpci_with_mapping(config: &VmConfig, id: &str) -> Option<String> {
    hostpcis(config)
        .into_iter()
        .find_map(|(k, h)| (h.mapping.as_deref() == Some(id)).then_some(k))
}

/// The `hostpciN` keys and their parsed values.
pub(crate) fn hostpcis(config: &VmConfig) -> Vec<(String, HostPci)> {
    config
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("hostpci"))
        .filter_map(|k| Some((k.to_string(), HostPci::parse(config.get(k)?).ok()?)))
        .collect()
}

/// Whether a hostpci entry names the host function `a` (exactly, or as a function-less id that
/// names its whole slot, as Proxmox reads it).
pub(crate) fn names(entry: &HostPci, a: PciAddress) -> bool {
    entry
        .host
        .iter()
        .any(|id| id.matches(a.domain, a.bus, a.device, a.function))
}

/// The host functions a hostpci entry names.
pub(crate) fn functions_of(facts: &HostFacts, entry: &HostPci) -> Vec<PciAddress> {
    facts
        .host
        .pci
        .devices
        .iter()
        .map(|d| d.address)
        .filter(|&a| names(entry, a))
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

fn free_key(config: &VmConfig, family: &str, max: u32) -> Result<String> {
    config
        .next_free(family, max)
        .map(|n| format!("{family}{n}"))
        .ok_or_else(|| invalid(format!("no free {family}N left (0..={max} are all used)")))
}

/// Merges `-set device.<key>.<prop>=<value>` pairs into an `args` line, keeping what is there.
fn merge_args(args: Option<&str>, sets: &[(String, String)]) -> Result<String> {
    let existing = match args {
        Some(a) => split_args(a).map_err(|e| invalid(format!("args: {e}")))?,
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
#[derive(Debug)]
pub struct VmPlan {
    /// The config edit (and the reset remedies' files and commands, when asked for).
    pub plan: Plan,
    /// The VM config's path, relative to the root.
    pub config: PathBuf,
    /// `(key, value)` pairs for `qm set`, in order.
    pub qm: Vec<(String, String)>,
}

impl VmPlan {
    /// The same change as a `qm set` command, with the plan's notes as `#` comments after it;
    /// `Err` naming what else the plan writes or runs when one `qm set` cannot carry it (the reset
    /// remedies' hookscript, udev rule and modules).
    pub fn qm_command(&self, vmid: u32) -> std::result::Result<String, String> {
        let files: Vec<String> = self
            .plan
            .files
            .iter()
            .filter(|f| f.path != self.config)
            .map(|f| format!("/{}", f.path.display()))
            .collect();
        if !files.is_empty() || !self.plan.commands.is_empty() {
            return Err(format!(
                "this plan also writes {} and runs {} command(s), which `qm set` cannot do: plan without --print qm and apply it with --apply",
                if files.is_empty() {
                    "nothing else".to_string()
                } else {
                    files.join(", ")
                },
                self.plan.commands.len()
            ));
        }
        let mut out = if self.qm.is_empty() {
            format!("# nothing to do: VM {vmid} is already set up")
        } else {
            let args: Vec<String> = self
                .qm
                .iter()
                .map(|(k, v)| format!("--{k} {}", shell_quote(v)))
                .collect();
            format!("qm set {vmid} {}", args.join(" "))
        };
        for n in &self.plan.notes {
            out.push_str(&format!("\n# {n}"));
        }
        Ok(out)
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

/// Builds the new config text and the plan, or a refusal message (exit 3).
pub fn plan(facts: &HostFacts, req: &Request) -> Result<std::result::Result<VmPlan, Refusal>> {
    let host = &facts.host;
    let file = facts.vm(req.vmid).ok_or_else(|| Error::NoVmConfig {
        vmid: req.vmid,
        local: facts
            .abs("etc/pve/qemu-server")
            .join(format!("{}.conf", req.vmid))
            .display()
            .to_string(),
        nodes: facts.abs("etc/pve/nodes").display().to_string(),
    })?;
    let path = facts.abs(&file.file.path);
    let old = file
        .file
        .get()?
        .ok_or_else(|| invalid(format!("{}: no such file", path.display())))?
        .to_string();
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
        let d = host.device(igd).ok_or(Error::NoDevice(igd))?;
        if d.vendor.0 != 0x8086 || d.class.base_sub() != ClassCode::VGA {
            return Err(invalid(format!(
                "{igd} is not an Intel VGA device ({}:{}, class {}): legacy IGD assignment is for Intel integrated graphics",
                d.vendor, d.device, d.class
            )));
        }
        if (igd.bus, igd.device, igd.function) != (0, 2, 0) {
            return Err(invalid(format!(
                "legacy IGD assignment only works for devices on host bus 00:02.0 (got {igd})"
            )));
        }
    }
    for &addr in &req.devices {
        if host.device(addr).is_none() {
            return Err(Error::NoDevice(addr));
        }
    }
    let entries = crate::gpu::entries(host, &req.devices);
    if let Some(r) = crate::gpu::check_request(host, req, &entries)? {
        return Ok(Err(r));
    }

    if let Some(r) =
        crate::share::check_vm_devices(facts, &[req.igd.as_slice(), &req.devices].concat())
    {
        return Ok(Err(r));
    }
    // Safety first: the same assessment as setup-host.
    let mut pci: Vec<PciAddress> = req.igd.iter().copied().collect();
    pci.extend(&req.devices);
    if !pci.is_empty() {
        if host.groups.is_empty() {
            return Err(Error::IommuOff);
        }
        let a = match assess(host, &pci, &[]) {
            Ok(a) => a,
            Err(e) => return Ok(Err(Refusal::of_bridge(host, e)?)),
        };
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
                "planning the host side for these devices gives the details and the alternatives\n",
            );
            let mut refusal = Refusal::of_assessment(host, &a);
            refusal.message = msg;
            return Ok(Err(refusal));
        }
        // What leaves the host with them: the rest of their IOMMU groups (bridges aside).
        for &m in a.members.iter().filter(|m| !pci.contains(m)) {
            let Some(d) = host.device(m).filter(|d| d.class.base() != 0x06) else {
                continue;
            };
            let role = host
                .roles_of(m)
                .iter()
                .map(|r| format!(", {}", r.detail))
                .collect::<String>();
            notes.push(format!(
                "{m} ({}{role}) is in the same IOMMU group, so it leaves the host too (setup-host hands the whole group to vfio-pci) and only this VM can use it: pass it as well (--device {m}) if the guest should",
                crate::id_of(d)
            ));
        }
        for &addr in &pci {
            if let Some(d) = host.device(addr)
                && !d.driver_is_vfio_safe()
                && d.physfn.is_none()
                && let Some(drv) = &d.driver
            {
                notes.push(match crate::rules::modprobe_claims(facts, d) {
                    Some(at) => format!(
                        "warning: {addr} is still bound to {drv} until a reboot: {at} already hands it to vfio-pci at boot"
                    ),
                    None => format!(
                        "warning: {addr} is still bound to {drv}; `vfiokit setup-host --device {addr}` and a reboot hand it to vfio-pci"
                    ),
                });
            }
        }
    }

    let mapping = match &req.mapping {
        Some(id) => match resolve_mapping(facts, id)? {
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
        let has_usb = usb_entries(&config)
            .iter()
            .any(|u| u.mapping.as_deref() == Some(m.id.as_str()));
        if m.usb && !has_usb {
            let used: Vec<u32> = config.keys().into_iter().filter_map(usb_index).collect();
            let n = next_free_usb(&used, true).ok_or_else(|| invalid("no free usbN left"))?;
            set(
                &mut config,
                &format!("usb{n}"),
                &format!("mapping={}", m.id),
                format!("the USB device of cluster mapping '{}'", m.id),
                &mut reasons,
            );
            for id in &m.usb_ids {
                for d in host.usb.devices.iter().filter(|d| d.id == *id) {
                    notes.extend(input_note(host, d, &m.usb_ids, req.vmid));
                }
            }
        }
    }
    // The legacy-mode iGPU: a host address (--igd), or a cluster mapping whose every entry is
    // an Intel device at 00:02.0 (--mapping).
    let igd_source = match (req.igd, &mapping) {
        (Some(igd), _) => {
            let Some(d) = host.device(igd) else {
                return Err(Error::NoDevice(igd));
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
        let igd_rom = req.romfile.clone().or_else(|| {
            let igd = req.igd?;
            req.roms
                .iter()
                .find(|r| r.device == igd)
                .map(|r| r.file.clone())
        });
        if let Some(rom) = &igd_rom {
            value.set("romfile", rom);
            let rom_path = romfile_path(facts, rom);
            if let Some(bytes) = facts.rom(rom) {
                let ovmf = config.get("bios") == Some("ovmf");
                if let Err(why) = rom_loads(bytes, vendor, device, ovmf) {
                    return Ok(Err(Refusal::plain(format!(
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
        if igd_rom.is_none()
            && value.get("romfile").is_none()
            && let Some(d) = req
                .igd
                .and_then(|a| host.device(a))
                .filter(|d| d.rom_bar == Some(false))
        {
            notes.push(crate::gpu::romless_note(
                d,
                "legacy IGD mode",
                "--romfile FILE",
            ));
        }
        set(
            &mut config,
            &key,
            &value.render(),
            format!("{label} in legacy mode: the VM's only display, at guest 00:02.0"),
            &mut reasons,
        );

        let (version, source) = qemu_for(facts, &config).ok_or_else(|| {
            invalid(
                "cannot tell the QEMU version: no qemu-system-x86_64 record and no machine line",
            )
        })?;
        let machine = format!("pc-i440fx-{}.{}", version.0, version.1);
        let current = config.get("machine").and_then(|m| Machine::parse(m).ok());
        let keep = current
            .as_ref()
            .is_some_and(|m| m.kind == MachineKind::I440fx && m.pve.is_none());
        if !keep {
            // The old line's options (`viommu=intel`, `enable-s3=…`) do not carry over: say so.
            let dropped = config
                .get("machine")
                .and_then(|m| m.split_once(','))
                .map(|(_, opts)| {
                    format!("; the old machine line's options ({opts}) are dropped with it: set those that apply to i440fx again by hand (viommu needs q35)")
                })
                .unwrap_or_default();
            set(
                &mut config,
                "machine",
                &machine,
                if version == (9, 2) {
                    format!(
                        "legacy IGD needs the i440fx machine, and the plain version: pc-i440fx-{0}.{1}+pve1 does not start with the iGPU (the seed found this on QEMU 9.2); version {0}.{1} from {source}{dropped}",
                        version.0, version.1
                    )
                } else {
                    format!(
                        "legacy IGD needs the i440fx machine; the plain version, as in the seed's working config (its pc-i440fx-9.2+pve1 did not start with the iGPU on QEMU 9.2; {0}.{1}+pve1 is untested); version {0}.{1} from {source}{dropped}",
                        version.0, version.1
                    )
                },
                &mut reasons,
            );
            // `pcie=1` is a q35 property: on i440fx Proxmox refuses to start the VM ("q35
            // machine model is not enabled").
            let others: Vec<String> = config
                .keys()
                .into_iter()
                .filter(|k| k.starts_with("hostpci") && *k != key)
                .map(str::to_string)
                .collect();
            for k in others {
                let Some(v) = config.get(&k) else { continue };
                let mut entry = PropertyString::parse(v, Some("host"));
                if entry.remove("pcie") {
                    set(
                        &mut config,
                        &k,
                        &entry.render(),
                        "pcie=1 removed: it needs the q35 machine, which legacy IGD replaces with i440fx (Proxmox would refuse to start the VM)".into(),
                        &mut reasons,
                    );
                }
            }
        }
        set(
            &mut config,
            "vga",
            "none",
            "legacy IGD requires VGA mode to be 'none': the iGPU is the only display".into(),
            &mut reasons,
        );
        let needs = match crate::gpu::igd_needs(device, version, config.get("bios") == Some("ovmf"))
        {
            Ok(n) => n,
            Err(why) => {
                return Ok(Err(Refusal::plain(format!(
                    "refused: {label} in legacy mode would not start (QEMU {}.{} from {source}): {why}\n",
                    version.0, version.1
                ))));
            }
        };
        let mut sets = vec![
            (format!("device.{key}.addr"), "02.0".to_string()),
            (format!("device.{key}.x-igd-gms"), "0x2".to_string()),
            (format!("device.{key}.x-igd-opregion"), "on".to_string()),
        ];
        for (p, v) in &needs.props {
            sets.push((format!("device.{key}.{p}"), v.to_string()));
        }
        notes.extend(needs.notes);
        let args = merge_args(config.get("args"), &sets)?;
        set(
            &mut config,
            "args",
            &args,
            format!(
                "QEMU options for {key}: guest address 02.0, 64 MB stolen memory (x-igd-gms=0x2), the host's OpRegion (display output); {}",
                match version {
                    (9, 2) =>
                        "assumes this QEMU accepts x-igd-gms, as the seed's 9.2.0 did".to_string(),
                    v if v >= (10, 0) => format!(
                        "QEMU {}.{} supports x-igd-gms (QEMU 10.0 brought it back)",
                        v.0, v.1
                    ),
                    v => format!(
                        "QEMU {}.{} has x-igd-gms (upstream dropped it only in 9.2)",
                        v.0, v.1
                    ),
                }
            ),
            &mut reasons,
        );
        if config.get("bios").is_none() {
            notes.push("bios is not set (SeaBIOS): the VBIOS in romfile drives the display; with `bios: ovmf` a ROM with a GOP driver is needed".into());
        }
    }

    let q35 = config
        .get("machine")
        .map_or_else(|| Ok(Machine::default_for_missing()), Machine::parse)
        .is_ok_and(|m| m.is_q35());
    let ovmf = config.get("bios") == Some("ovmf");
    for entry in &entries {
        let existing = entry
            .functions
            .iter()
            .find_map(|&f| hostpci_for(&config, f));
        let key = match &existing {
            Some(k) => k.clone(),
            None => free_key(&config, "hostpci", 15)?,
        };
        let (value, why, more) =
            match crate::gpu::entry_value(facts, req, entry, config.get(&key), q35, ovmf)? {
                Ok(v) => v,
                Err(r) => return Ok(Err(r)),
            };
        notes.extend(more);
        set(&mut config, &key, &value, why, &mut reasons);
    }
    if let Some(p) = req.primary {
        set(
            &mut config,
            "vga",
            "none",
            format!(
                "{p} is the VM's display: no emulated VGA next to it (with `vga: std` Proxmox would keep the emulated one and the guest would boot on it)"
            ),
            &mut reasons,
        );
    }

    if let Some(r) = crate::share::plan_vm(
        facts,
        req.vmid,
        &req.devices,
        &req.mdev,
        &mut config,
        &mut set,
        &mut reasons,
        &mut notes,
    )? {
        return Ok(Err(r));
    }

    // Functions the host cannot reset between VM runs: warnings, and the remedy on request.
    let requested: Vec<PciAddress> = req
        .igd
        .into_iter()
        .chain(entries.iter().flat_map(|e| e.functions.iter().copied()))
        .collect();
    let reset = match crate::reset::plan_vm(facts, req.vmid, req.reset_remedy, &config, &requested)?
    {
        Ok(r) => r,
        Err(r) => return Ok(Err(r)),
    };
    notes.extend(reset.notes);
    if let Some((value, why)) = &reset.hookscript {
        set(&mut config, "hookscript", value, why.clone(), &mut reasons);
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
                return Err(invalid(format!(
                    "no USB device {id} on this host; present: {}",
                    if present.is_empty() {
                        "none".to_string()
                    } else {
                        present.join(", ")
                    }
                )));
            }
            for d in matching {
                let entry = redirect_entry(d, &host.usb.devices);
                let exists = usb_entries(&config).iter().any(|u| match &u.host {
                    Some(UsbHost::Id { vendor, product }) => {
                        !entry.by_port
                            && UsbId {
                                vendor: *vendor,
                                product: *product,
                            } == *id
                    }
                    Some(UsbHost::Port(p)) => *p == d.port,
                    _ => false,
                });
                if exists {
                    continue;
                }
                let used: Vec<u32> = config.keys().into_iter().filter_map(usb_index).collect();
                let n = next_free_usb(&used, machine_7_1).ok_or_else(|| {
                    invalid(format!(
                        "no free usbN left for {id}: usb0..usb4{} are used",
                        if machine_7_1 {
                            "..usb13"
                        } else {
                            " (usb5 and up need machine 7.1 or newer)"
                        }
                    ))
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
                notes.extend(input_note(host, d, &req.usb, req.vmid));
            }
        }
    }

    if let Some((from, text)) = &req.clone_from {
        let other = VmConfig::parse(text);
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
    // The plan must not add an error Proxmox would stop at; errors the config already had are
    // not this plan's (compared by message: the plan moves lines).
    let errors = |c: &VmConfig| -> Vec<vfiokit_vmconf::Diagnostic> {
        let options = LintOptions {
            vmid: Some(req.vmid),
            qemu: None,
        };
        vfiokit_vmconf::lint(c, &options)
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect()
    };
    let before = errors(&VmConfig::parse(&old));
    let mut known: Vec<&str> = before.iter().map(|d| d.message.as_str()).collect();
    let mut introduced = Vec::new();
    for d in errors(&config) {
        match known.iter().position(|m| *m == d.message) {
            Some(i) => {
                known.remove(i);
            }
            None => introduced.push(diag_text(&path, &d)),
        }
    }
    if !introduced.is_empty() {
        return Ok(Err(Refusal::plain(format!(
            "refused: the planned config of VM {} has errors Proxmox would refuse or drop the line for (lines of the planned file):\n{}\n",
            req.vmid,
            introduced
                .iter()
                .map(|t| format!("  {t}"))
                .collect::<Vec<_>>()
                .join("\n")
        ))));
    }
    if !before.is_empty() {
        notes.push(format!(
            "warning: {} already has {} error(s) this plan leaves as they are:\n{}",
            path.display(),
            before.len(),
            before
                .iter()
                .map(|d| format!("  {}", diag_text(&path, d)))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    let mut plan = Plan::default();
    plan.edit(file.file.path.clone(), Some(old), new, reasons);
    plan.notes = notes;
    plan.files.extend(reset.plan.files);
    plan.commands.extend(reset.plan.commands);
    Ok(Ok(VmPlan {
        plan,
        config: file.file.path.clone(),
        qm,
    }))
}

/// What the host loses when VM `vmid` takes the USB device `d` (with the devices of ids
/// `passed`): `None` unless `d` is a keyboard or mouse.
fn input_note(
    host: &vfiokit_iommu::Host,
    d: &vfiokit_usbredir::UsbDevice,
    passed: &[UsbId],
    vmid: u32,
) -> Option<String> {
    if !d.is_input() {
        return None;
    }
    let id = d.id;
    let others = host
        .usb
        .devices
        .iter()
        .filter(|o| o.is_input() && o.port != d.port && !passed.contains(&o.id))
        .count();
    Some(if others == 0 {
        format!(
            "warning: {} ({id}) is the host's only USB input device: while VM {vmid} runs, the host has no keyboard or mouse of its own (use SSH or the web UI; the device comes back when the VM stops)",
            d.name()
        )
    } else {
        format!(
            "{} ({id}) is an input device: the host loses it while VM {vmid} runs",
            d.name()
        )
    })
}

/// The `usbN` entries of a config that parse.
fn usb_entries(config: &VmConfig) -> Vec<UsbEntry> {
    config
        .keys()
        .into_iter()
        .filter(|k| usb_index(k).is_some())
        .filter_map(|k| UsbEntry::parse(config.get(k)?).ok())
        .collect()
}

/// `N` of a `usbN` key.
fn usb_index(key: &str) -> Option<u32> {
    key.strip_prefix("usb")?.parse().ok()
}

/// A diagnostic as `vm lint` prints it: `FILE:LINE: SEVERITY: MESSAGE`.
pub fn diag_text(path: &Path, d: &Diagnostic) -> String {
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    match d.line {
        Some(l) => format!("{}:{l}: {sev}: {}", path.display(), d.message),
        None => format!("{}: {sev}: {}", path.display(), d.message),
    }
}

/// One config to lint: its file name and text.
#[derive(Debug, Clone)]
pub struct LintInput {
    /// The file (its name gives the VM id).
    pub file: PathBuf,
    /// The config.
    pub config: VmConfig,
}

/// Lints configs with Proxmox's rules; with a host, also against its devices and ROM files;
/// across several files, a device given by two VMs. One list of diagnostics per file, sorted by line.
pub fn lint(inputs: &[LintInput], facts: Option<&HostFacts>) -> Vec<Vec<Diagnostic>> {
    inputs
        .iter()
        .map(|input| {
            let vmid = input
                .file
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".conf"))
                .and_then(|n| n.parse().ok());
            let qemu = facts
                .and_then(|f| qemu_for(f, &input.config))
                .map(|(v, _)| v);
            let options = LintOptions { vmid, qemu };
            let mut diags = match facts {
                Some(facts) => {
                    let mut d = vfiokit_vmconf::lint_with_host(
                        &input.config,
                        &options,
                        Some(&host_functions(facts)),
                    );
                    d.extend(romfile_checks(facts, &input.config));
                    d
                }
                None => vfiokit_vmconf::lint(&input.config, &options),
            };
            diags.extend(shared_devices(&input.file, &input.config, inputs));
            diags.sort_by_key(|d| d.line);
            diags
        })
        .collect()
}

/// A host device that another of the linted VMs gives too: both cannot run at once.
fn shared_devices(file: &Path, config: &VmConfig, all: &[LintInput]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for e in config.entries() {
        if !matches!(e.section, vfiokit_vmconf::Section::Main) || !e.key.starts_with("hostpci") {
            continue;
        }
        let Ok(mine) = HostPci::parse(e.value) else {
            continue;
        };
        for LintInput {
            file: other_file,
            config: other,
        } in all.iter().filter(|i| i.file.as_path() != file)
        {
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
pub fn rom_loads(
    bytes: &[u8],
    vendor: u16,
    device: u16,
    ovmf: bool,
) -> std::result::Result<(), String> {
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
pub fn romfile_path(facts: &HostFacts, rom: &str) -> PathBuf {
    if let Some(abs) = rom.strip_prefix('/') {
        facts.abs(abs)
    } else {
        facts.abs("usr/share/kvm").join(rom)
    }
}

/// Checks that need files of the host: the ROM files named by `romfile=`.
fn romfile_checks(facts: &HostFacts, config: &VmConfig) -> Vec<Diagnostic> {
    let host = &facts.host;
    let mut out = Vec::new();
    let ovmf = config.get("bios") == Some("ovmf");
    for e in config.entries() {
        if !matches!(e.section, vfiokit_vmconf::Section::Main) || !e.key.starts_with("hostpci") {
            continue;
        }
        let Ok(h) = HostPci::parse(e.value) else {
            continue;
        };
        if let Some(d) = crate::gpu::romless_display(facts, &h) {
            out.push(Diagnostic {
                line: Some(e.line),
                severity: Severity::Warning,
                message: format!(
                    "{}: {} ({}:{}) has no ROM BAR and the entry no romfile: {} finds no VBIOS and the screen stays black",
                    e.key,
                    d.address,
                    d.vendor,
                    d.device,
                    if ovmf { "OVMF" } else { "SeaBIOS" }
                ),
            });
        }
        let Some(rom) = &h.romfile else { continue };
        let path = romfile_path(facts, rom);
        let diag = |severity, message| Diagnostic {
            line: Some(e.line),
            severity,
            message,
        };
        let bytes = match facts.rom(rom) {
            Some(b) => b,
            None => {
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
        };
        let device = host.pci.devices.iter().find(|d| {
            let a = d.address;
            crate::vm::names(&h, a)
        });
        if let Some(d) = device
            && let Err(why) = rom_loads(bytes, d.vendor.0, d.device.0, ovmf)
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
fn host_functions(facts: &HostFacts) -> Vec<HostFunction> {
    facts
        .host
        .pci
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

/// A hostpci entry as `vm show` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceView {
    /// `hostpciN`.
    pub key: String,
    /// The host functions it names.
    pub host: Vec<String>,
    /// A cluster mapping instead of addresses.
    pub mapping: Option<String>,
    /// `legacy-igd=1`.
    pub legacy_igd: bool,
    /// `romfile=`.
    pub romfile: Option<String>,
    /// `pcie=1`.
    pub pcie: bool,
    /// `x-vga=1`.
    pub x_vga: bool,
}

/// A usbN entry as `vm show` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct UsbView {
    /// `usbN`.
    pub key: String,
    /// The raw value.
    pub value: String,
    /// `usb3=1`.
    pub usb3: bool,
    /// A cluster mapping.
    pub mapping: Option<String>,
}

/// The machine line, understood.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum MachineView {
    /// A machine type Proxmox accepts.
    Ok {
        /// As written (`pc-i440fx-9.2`).
        #[serde(rename = "type")]
        raw_type: String,
        /// `i440fx` or `q35`.
        kind: String,
        /// `9.2`, when pinned.
        version: Option<String>,
    },
    /// One it does not.
    Error {
        /// Why.
        error: String,
    },
}

/// The legacy-IGD verdict of a config that asks for legacy mode.
#[derive(Debug, Clone, Serialize)]
pub struct IgdVerdict {
    /// Whether QEMU would accept it.
    pub ok: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `vm show`: a typed view of a config.
#[derive(Debug, Clone, Serialize)]
pub struct VmView {
    /// `name`.
    pub name: Option<String>,
    /// The machine.
    pub machine: MachineView,
    /// `seabios` or `ovmf`.
    pub bios: String,
    /// `vga`.
    pub vga: Option<String>,
    /// `args`, split as Proxmox splits them.
    pub args: Option<Vec<String>>,
    /// hostpci entries.
    pub devices: Vec<DeviceView>,
    /// usb entries.
    pub usb: Vec<UsbView>,
    /// The legacy-IGD verdict when a device asks for legacy mode.
    pub legacy_igd: Option<IgdVerdict>,
}

/// The typed view of a config.
pub fn view(config: &VmConfig) -> VmView {
    let machine = match config
        .get("machine")
        .map_or_else(|| Ok(Machine::default_for_missing()), Machine::parse)
    {
        Ok(m) => MachineView::Ok {
            raw_type: m.raw_type.clone(),
            kind: format!("{:?}", m.kind).to_lowercase(),
            version: m.version.map(|v| format!("{}.{}", v.0, v.1)),
        },
        Err(e) => MachineView::Error {
            error: e.to_string(),
        },
    };
    let devices: Vec<DeviceView> = hostpcis(config)
        .into_iter()
        .map(|(k, h)| DeviceView {
            key: k,
            host: h.host.iter().map(ToString::to_string).collect(),
            mapping: h.mapping,
            legacy_igd: h.legacy_igd.unwrap_or(false),
            romfile: h.romfile,
            pcie: h.pcie.unwrap_or(false),
            x_vga: h.x_vga.unwrap_or(false),
        })
        .collect();
    let usb = config
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("usb"))
        .filter_map(|k| {
            let raw = config.get(k)?;
            let u = UsbEntry::parse(raw).ok()?;
            Some(UsbView {
                key: k.to_string(),
                value: raw.to_string(),
                usb3: u.usb3.unwrap_or(false),
                mapping: u.mapping,
            })
        })
        .collect();
    let legacy = devices
        .iter()
        .any(|d| d.legacy_igd)
        .then(|| match legacy_igd_verdict(config) {
            Ok(()) => IgdVerdict {
                ok: true,
                message: None,
            },
            Err(m) => IgdVerdict {
                ok: false,
                message: Some(m.to_string()),
            },
        });
    VmView {
        name: config.get("name").map(str::to_string),
        machine,
        bios: config.get("bios").unwrap_or("seabios").to_string(),
        vga: config.get("vga").map(str::to_string),
        args: config
            .get("args")
            .map(|a| split_args(a).unwrap_or_default()),
        devices,
        usb,
        legacy_igd: legacy,
    }
}
