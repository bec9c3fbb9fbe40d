//! Validation with Proxmox's own rules and messages, without a host.

use std::collections::{BTreeMap, HashMap};

use crate::document::{Kind, Rule, Section, VmConfig};
use crate::hostpci::{HostPci, PciHostId};
use crate::igd::{LegacySupport, NEWEST_QEMU, gms_ranges, igd_generation, parse_qemu_uint};
use crate::machine::{Machine, Vga};
use crate::perl::{is_uint, parse_boolean, split_args};
use crate::schema::{KeyType, key_type};
use crate::usb::{UsbEntry, UsbHost};

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Proxmox drops or rejects the line, or the VM does not start (or starts without what the
    /// line asks for).
    Error,
    /// Accepted, but not what it looks like (a duplicate key Proxmox drops silently, a setting
    /// that has no effect, a known bad combination).
    Warning,
}

/// One finding of [`lint`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Diagnostic {
    /// 1-based line, `None` for a finding about the file as a whole.
    pub line: Option<usize>,
    /// Error or warning.
    pub severity: Severity,
    /// Proxmox's (or QEMU's) message where it has one, otherwise a plain explanation;
    /// lowercase start unless Proxmox's own text starts uppercase. A `format error` of a
    /// property string spans several lines, as Proxmox prints it.
    pub message: String,
}

/// What [`lint`] assumes about the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LintOptions {
    /// The VM id, for Proxmox's `vm N - ` prefix of parse-time messages; `None` omits it.
    pub vmid: Option<u32>,
    /// The installed QEMU (major, minor), for machine versions and the IGD tables; `None`
    /// assumes the newest this crate knows ([`crate::NEWEST_QEMU`]).
    pub qemu: Option<(u32, u32)>,
}

/// One PCI function present on the host, for the checks that depend on the host
/// ([`lint_with_host`]). Plain data: this crate reads no sysfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostFunction {
    /// Domain.
    pub domain: u32,
    /// Bus.
    pub bus: u8,
    /// Device.
    pub device: u8,
    /// Function.
    pub function: u8,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device_id: u16,
}

/// Proxmox's `check_type`: `Err(message)` when the value is rejected at parse time.
pub(crate) fn check_type(key: &str, value: &str) -> Result<(), String> {
    let Some(ty) = key_type(key) else {
        return Err(format!("unknown setting '{key}'"));
    };
    if value.contains(['\n', '\r']) {
        return Err("property contains a line feed".to_string());
    }
    let msg = |e: crate::Error| e.to_string();
    match ty {
        KeyType::Bool => parse_boolean(value)
            .map(|_| ())
            .ok_or_else(|| format!("type check ('boolean') failed - got '{value}'")),
        KeyType::Int => is_uint(value)
            .then_some(())
            .ok_or_else(|| format!("type check ('integer') failed - got '{value}'")),
        KeyType::Num => {
            let ok = match value.split_once('.') {
                None => is_uint(value),
                Some((a, b)) => is_uint(a) && is_uint(b),
            };
            ok.then_some(())
                .ok_or_else(|| format!("type check ('number') failed - got '{value}'"))
        }
        KeyType::Str => Ok(()),
        KeyType::HostPci => HostPci::parse(value).map(|_| ()).map_err(msg),
        KeyType::Usb => UsbEntry::parse(value).map(|_| ()).map_err(msg),
        KeyType::Machine => Machine::parse(value).map(|_| ()).map_err(msg),
        KeyType::Vga => Vga::parse(value).map(|_| ()).map_err(msg),
    }
}

/// The main section as Proxmox loads it: each key's last value that passed `check_type`
/// (`cdrom` read as `ide2`), with its 0-based line index.
struct Effective<'a> {
    map: HashMap<&'a str, (usize, &'a str)>,
}

impl<'a> Effective<'a> {
    fn new(config: &'a VmConfig) -> Effective<'a> {
        let mut map = HashMap::new();
        for (i, info) in config.infos().iter().enumerate() {
            if info.header.is_some() {
                break;
            }
            let Some((e, rule)) = config.entry_at(i) else {
                continue;
            };
            let ok = match rule {
                Rule::Plain => check_type(e.key, e.value).is_ok(),
                Rule::Args | Rule::Snapstate => true,
                Rule::Description | Rule::Delete => false,
            };
            if ok {
                let key = if e.key == "cdrom" { "ide2" } else { e.key };
                map.insert(key, (i, e.value));
            }
        }
        Effective { map }
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.map.get(key).map(|(_, v)| *v)
    }

    fn line(&self, key: &str) -> Option<usize> {
        self.map.get(key).map(|(i, _)| i + 1)
    }

    fn machine(&self) -> Machine {
        self.get("machine")
            .and_then(|m| Machine::parse(m).ok())
            .unwrap_or_else(Machine::default_for_missing)
    }

    fn hostpcis(&self) -> Vec<(u32, usize, HostPci)> {
        (0..16)
            .filter_map(|n| {
                let key = format!("hostpci{n}");
                let (i, v) = self.map.get(key.as_str())?;
                // `return if !$value`: an empty or "0" value is no device.
                if v.is_empty() || *v == "0" {
                    return None;
                }
                Some((n, i + 1, HostPci::parse(v).ok()?))
            })
            .collect()
    }
}

/// `-set device.<id>.<prop>=<value>` words of `args`.
struct SetArg {
    id: String,
    prop: String,
    value: String,
}

fn set_args(args: &[String]) -> Vec<SetArg> {
    args.windows(2)
        .filter(|w| w[0] == "-set" || w[0] == "--set")
        .filter_map(|w| {
            let (lhs, value) = w[1].split_once('=')?;
            let mut it = lhs.splitn(3, '.');
            let (group, id, prop) = (it.next()?, it.next()?, it.next()?);
            (group == "device").then(|| SetArg {
                id: id.to_string(),
                prop: prop.to_string(),
                value: value.to_string(),
            })
        })
        .collect()
}

fn windows_version(ostype: &str) -> u32 {
    match ostype {
        "wxp" | "w2k3" | "w2k" => 5,
        "w2k8" | "wvista" => 6,
        _ => ostype
            .strip_prefix("win")
            .filter(|d| is_uint(d))
            .and_then(|d| d.parse().ok())
            .unwrap_or(0),
    }
}

/// A finding of the start-time checks, in Proxmox's order.
struct Found {
    line: usize,
    severity: Severity,
    message: String,
}

/// The host functions an id names, sorted.
fn functions_of<'h>(id: &PciHostId, host: &'h [HostFunction]) -> Vec<&'h HostFunction> {
    let mut v: Vec<&HostFunction> = host
        .iter()
        .filter(|f| id.matches(f.domain, f.bus, f.device, f.function))
        .collect();
    v.sort_by_key(|f| (f.domain, f.bus, f.device, f.function));
    v
}

/// `parse_hostpci_devices` (with the host-independent part of `parse_hostpci`): every finding,
/// in the order Proxmox checks; Proxmox itself stops at the first error.
fn hostpci_loop(eff: &Effective<'_>, host: Option<&[HostFunction]>) -> Vec<Found> {
    let q35 = eff.machine().is_q35();
    let mut legacy_seen = false;
    let err = |line: usize, m: &str| Found {
        line,
        severity: Severity::Error,
        message: m.to_string(),
    };
    let mut found = Vec::new();
    for (_, line, d) in eff.hostpcis() {
        if !d.host.is_empty() && d.mapping.is_some() {
            found.push(err(line, "Cannot set both 'host' and 'mapping'."));
            continue;
        }
        if d.host.is_empty() && d.mapping.is_none() {
            found.push(err(line, "Either 'host' or 'mapping' must be set."));
            continue;
        }
        let mut missing = false;
        let mut count = d.host.len();
        if let Some(host) = host {
            count = 0;
            for id in &d.host {
                let n = functions_of(id, host).len();
                if n == 0 {
                    found.push(err(line, &format!("no PCI device found for '{id}'")));
                    missing = true;
                }
                count += n;
            }
        }
        if missing {
            continue;
        }
        let multifunction = count > 1;
        if multifunction && d.mdev.is_some() {
            found.push(err(
                line,
                "cannot use mediated device with multifunction device",
            ));
            continue;
        }
        if !q35 && d.pcie == Some(true) {
            found.push(err(line, "q35 machine model is not enabled"));
        }
        if d.legacy_igd != Some(true) {
            continue;
        }
        if legacy_seen {
            found.push(err(
                line,
                "only one device can be assigned in legacy-igd mode",
            ));
            continue;
        }
        legacy_seen = true;
        if eff.get("vga") != Some("none") {
            found.push(err(
                line,
                "legacy IGD assignment requires VGA mode to be 'none'",
            ));
        }
        if d.rombar == Some(false) {
            found.push(err(
                line,
                "legacy IGD assignment requires rombar to be enabled",
            ));
        }
        if d.x_vga == Some(true) {
            found.push(err(
                line,
                "legacy IGD assignment is not compatible with x-vga",
            ));
        }
        if d.mdev.is_some() {
            found.push(err(
                line,
                "legacy IGD assignment is not compatible with mdev",
            ));
        }
        if q35 {
            found.push(err(
                line,
                "legacy IGD assignment is not compatible with q35",
            ));
        }
        if multifunction {
            found.push(err(
                line,
                "legacy IGD assignment is not compatible with multifunction devices",
            ));
        } else if host.is_none() && d.host.len() == 1 && d.host[0].function.is_none() {
            found.push(Found {
                line,
                severity: Severity::Warning,
                message: format!(
                    "'{}' names every function of the device: Proxmox fails with \"legacy IGD \
                     assignment is not compatible with multifunction devices\" if the host device \
                     has more than one (an iGPU normally has one)",
                    d.host[0]
                ),
            });
        }
        if let Some(first) = d.host.first() {
            let id = match (host, first.function) {
                (Some(h), None) => functions_of(first, h).first().map_or_else(
                    || first.first_function(),
                    |f| {
                        format!(
                            "{:04x}:{:02x}:{:02x}.{:x}",
                            f.domain, f.bus, f.device, f.function
                        )
                    },
                ),
                _ => first.first_function(),
            };
            if !id.ends_with("02.0") {
                found.push(err(
                    line,
                    "legacy IGD assignment only works for devices on host bus 00:02.0",
                ));
            }
        } else {
            found.push(Found {
                line,
                severity: Severity::Warning,
                message: "legacy-igd with a mapping: Proxmox fails with \"legacy IGD assignment \
                          is not compatible with alternate devices\" if the mapping has more than \
                          one entry for this node, and its path must be 00:02.0"
                    .to_string(),
            });
        }
    }
    found
}

/// Proxmox's legacy-IGD verdict on the config: the first message `parse_hostpci_devices` dies
/// with, in its order (`q35 machine model is not enabled`, `Cannot set both 'host' and
/// 'mapping'.`, `only one device can be assigned in legacy-igd mode`, `legacy IGD assignment
/// requires VGA mode to be 'none'`, … `is not compatible with q35`, …), or `Ok(())`.
///
/// The config is taken as Proxmox loads it (lines it rejects at parse time are not there; the
/// last value of a key wins). Without the host, an id without a function (`0000:00:02`) is
/// taken as a single-function device (an iGPU is one) and a `mapping` is not resolved; see
/// [`lint_with_host`] for the checks that need the host.
pub fn legacy_igd_verdict(config: &VmConfig) -> Result<(), String> {
    let eff = Effective::new(config);
    match hostpci_loop(&eff, None)
        .into_iter()
        .find(|f| f.severity == Severity::Error)
    {
        Some(f) => Err(f.message),
        None => Ok(()),
    }
}

/// Validates a config with Proxmox's rules, without the host: see [`lint_with_host`].
pub fn lint(config: &VmConfig, options: &LintOptions) -> Vec<Diagnostic> {
    lint_with_host(config, options, None)
}

/// Validates a config with Proxmox's rules and messages; `host` (the PCI functions present,
/// when known) enables the checks that depend on it: ids that name nothing (`no PCI device
/// found for 'ID'`), multifunction devices, and the IGD generation of a legacy-IGD device.
///
/// Reported, in line order:
/// - parse time (Proxmox warns and drops the line; the `vm N - ` prefix when
///   [`LintOptions::vmid`] is set): `unable to parse config: LINE`, `unable to parse value of
///   'K' - unknown setting 'K'` and every other `check_type` failure of the types this crate
///   models, `property 'delete' is only allowed in [PENDING]`, `duplicate section: pending`,
///   `duplicate special section: X`, `duplicate snapshot section: X`, `skipping unknown section:
///   'X'`;
/// - start time (the VM does not start): `q35 machine model is not enabled`, the legacy-IGD
///   rules in Proxmox's order (every failing one, the first is what Proxmox prints), `Cannot
///   set both 'host' and 'mapping'.`, `Either 'host' or 'mapping' must be set.`, `device 'ID'
///   assigned more than once`, `using usbN is only possible with machine type >= 7.1 and ostype
///   l26 or windows > 7`, and QEMU's `there is no device "hostpciN" defined` for an
///   `args: -set device.hostpciN.…` without that device;
/// - QEMU's IGD support for the installed version ([`LintOptions::qemu`], else the newest
///   table): a generation legacy mode cannot drive, `x-igd-gms` outside its range;
/// - warnings: duplicate keys (the last wins silently), `+pveN` machines with legacy IGD on QEMU
///   ≤ 9.2, `#` lines after settings, `x-vga` under OVMF, and other accepted oddities.
pub fn lint_with_host(
    config: &VmConfig,
    options: &LintOptions,
    host: Option<&[HostFunction]>,
) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = Vec::new();
    let prefix = options
        .vmid
        .map(|n| format!("vm {n} - "))
        .unwrap_or_default();
    parse_time(config, &prefix, &mut out);

    let eff = Effective::new(config);
    for f in hostpci_loop(&eff, host) {
        push(&mut out, Some(f.line), f.severity, f.message);
    }
    start_time(config, &eff, options, host, &mut out);
    out.sort_by_key(|d| d.line.unwrap_or(usize::MAX));
    out
}

fn push(out: &mut Vec<Diagnostic>, line: Option<usize>, severity: Severity, message: String) {
    out.push(Diagnostic {
        line,
        severity,
        message,
    });
}

fn parse_time(config: &VmConfig, prefix: &str, out: &mut Vec<Diagnostic>) {
    let lines = config.raw_lines();
    let mut pending_seen = false;
    let mut specials: Vec<String> = Vec::new();
    let mut snapshots: Vec<String> = Vec::new();
    // Per section: key -> line indexes.
    let mut keys_in: BTreeMap<(Option<usize>, &str), Vec<usize>> = BTreeMap::new();
    let mut key_seen_in_section = false;
    let mut current_header: Option<usize> = None;
    for (i, info) in config.infos().iter().enumerate() {
        let line = &lines[i];
        let n = Some(i + 1);
        if info.header != current_header {
            current_header = info.header;
            key_seen_in_section = false;
        }
        match info.kind {
            Kind::Blank | Kind::Skipped => {}
            Kind::Header(_, _) => match config.section_of(info) {
                Section::Pending => {
                    if pending_seen {
                        push(
                            out,
                            n,
                            Severity::Error,
                            format!("{prefix}duplicate section: pending"),
                        );
                    }
                    pending_seen = true;
                }
                Section::Special(name) => {
                    if specials.iter().any(|s| s == name) {
                        push(
                            out,
                            n,
                            Severity::Error,
                            format!("{prefix}duplicate special section: {name}"),
                        );
                    }
                    specials.push(name.to_string());
                }
                Section::Snapshot(name) => {
                    if snapshots.iter().any(|s| s == name) {
                        push(
                            out,
                            n,
                            Severity::Error,
                            format!("{prefix}duplicate snapshot section: {name}"),
                        );
                    }
                    snapshots.push(name.to_string());
                }
                Section::Unknown(name) => push(
                    out,
                    n,
                    Severity::Error,
                    format!(
                        "{prefix}skipping unknown section: '{name}' (Proxmox ignores every line up \
                         to the next section)"
                    ),
                ),
                Section::Main => {}
            },
            Kind::Comment => {
                if key_seen_in_section {
                    push(
                        out,
                        n,
                        Severity::Warning,
                        "'#' line after settings: Proxmox reads it as part of the description \
                         and writes it back at the top of the section"
                            .to_string(),
                    );
                }
            }
            Kind::Unparsed => push(
                out,
                n,
                Severity::Error,
                format!(
                    "{prefix}unable to parse config: {}",
                    line.trim_end_matches('\r')
                ),
            ),
            Kind::Key { .. } => {
                key_seen_in_section = true;
                let Some((e, rule)) = config.entry_at(i) else {
                    continue;
                };
                let special = matches!(e.section, Section::Special(_));
                match rule {
                    Rule::Delete => {
                        if e.section != Section::Pending {
                            push(
                                out,
                                n,
                                Severity::Error,
                                format!("{prefix}property 'delete' is only allowed in [PENDING]"),
                            );
                        }
                        continue;
                    }
                    Rule::Snapstate if !line.starts_with("snapstate:") => {
                        push(
                            out,
                            n,
                            Severity::Warning,
                            format!(
                                "Proxmox reads this line as 'snapstate: {}' (its snapstate \
                                     match is not anchored)",
                                e.value
                            ),
                        );
                    }
                    Rule::Plain if !special => {
                        if let Err(m) = check_type(e.key, e.value) {
                            push(
                                out,
                                n,
                                Severity::Error,
                                format!("{prefix}unable to parse value of '{}' - {m}", e.key),
                            );
                        }
                    }
                    _ => {}
                }
                if rule != Rule::Description {
                    let key = if e.key == "cdrom" { "ide2" } else { e.key };
                    keys_in.entry((info.header, key)).or_default().push(i);
                }
            }
        }
    }
    for ((_, key), idx) in keys_in {
        if let Some((last, earlier)) = idx.split_last() {
            for i in earlier {
                push(
                    out,
                    Some(i + 1),
                    Severity::Warning,
                    format!(
                        "duplicate key '{key}': line {} sets it again; Proxmox keeps the last \
                         value it accepts and drops this one silently",
                        last + 1
                    ),
                );
            }
        }
    }
}

fn start_time(
    config: &VmConfig,
    eff: &Effective<'_>,
    options: &LintOptions,
    host: Option<&[HostFunction]>,
    out: &mut Vec<Diagnostic>,
) {
    let mut push = |line: Option<usize>, severity: Severity, message: String| {
        push(out, line, severity, message)
    };
    let machine = eff.machine();
    let machine_line = eff.line("machine");
    let qemu = options.qemu;
    let table = qemu.unwrap_or(NEWEST_QEMU);
    let hostpcis = eff.hostpcis();

    // parent: without its snapshot section.
    if let Some(parent) = eff.get("parent")
        && !config.snapshot_names().contains(&parent)
    {
        push(
            eff.line("parent"),
            Severity::Warning,
            format!(
                "parent '{parent}' names no snapshot section in this file (`qm config` \
                     prints the current config only; a real config file has [{parent}])"
            ),
        );
    }

    // The same host device twice.
    let mut used: Vec<(PciHostId, u32)> = Vec::new();
    for (n, line, d) in &hostpcis {
        if d.mdev.is_some() || d.mapping.is_some() {
            continue;
        }
        for id in &d.host {
            let clash = used.iter().find(|(u, _)| {
                u.domain.unwrap_or(0) == id.domain.unwrap_or(0)
                    && u.bus == id.bus
                    && u.device == id.device
                    && (u.function.is_none() || id.function.is_none() || u.function == id.function)
            });
            if let Some((other, m)) = clash {
                let shown = if id.function.is_some() { id } else { other };
                push(
                    Some(*line),
                    Severity::Error,
                    format!(
                        "device '{}' assigned more than once (also by hostpci{m})",
                        shown.first_function()
                    ),
                );
            }
            used.push((*id, *n));
        }
    }

    // x-vga under OVMF.
    if eff.get("bios") == Some("ovmf") {
        for (n, line, d) in &hostpcis {
            if d.x_vga == Some(true) && d.legacy_igd != Some(true) {
                push(
                    Some(*line),
                    Severity::Warning,
                    format!(
                        "hostpci{n}: x-vga=1 with bios: ovmf: Proxmox does not pass x-vga=on to \
                         QEMU under OVMF (it still hides KVM and turns the emulated VGA off)"
                    ),
                );
            }
        }
    }

    // USB.
    let ostype = eff.get("ostype").unwrap_or("");
    let xhci =
        machine.version_at_least(7, 1, qemu) && (ostype == "l26" || windows_version(ostype) > 7);
    for n in 0..14u32 {
        let key = format!("usb{n}");
        let Some(value) = eff.get(&key) else { continue };
        let line = eff.line(&key);
        if n >= 5 && !xhci {
            push(
                line,
                Severity::Error,
                format!(
                    "using usb{n} is only possible with machine type >= 7.1 and ostype l26 or \
                     windows > 7"
                ),
            );
        }
        let Ok(u) = UsbEntry::parse(value) else {
            continue;
        };
        match (&u.host, &u.mapping) {
            (None, None) => push(line, Severity::Error, "no usb id or path given".to_string()),
            (Some(_), Some(_)) => push(
                line,
                Severity::Warning,
                format!("{key}: both host and mapping are set; set only one"),
            ),
            _ => {}
        }
        if u.host == Some(UsbHost::Spice)
            && !value.split(',').any(|p| p == "spice" || p == "host=spice")
        {
            push(
                line,
                Severity::Warning,
                format!(
                    "{key}: qemu-server recognises SPICE redirection only as lowercase 'spice'"
                ),
            );
        }
    }

    // args.
    let words = match eff.get("args") {
        Some(a) => match split_args(a) {
            Ok(w) => w,
            Err(e) => {
                push(eff.line("args"), Severity::Error, format!("args: {e}"));
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let sets = set_args(&words);
    let multifunction = |d: &HostPci| match host {
        Some(h) => {
            d.host
                .iter()
                .map(|id| functions_of(id, h).len())
                .sum::<usize>()
                > 1
        }
        None => d.host.len() > 1,
    };
    let device_named = |id: &str| -> Option<&(u32, usize, HostPci)> {
        let n: u32 = id.strip_prefix("hostpci")?.parse().ok()?;
        hostpcis
            .iter()
            .find(|(m, _, d)| *m == n && (d.mdev.is_some() || !multifunction(d)))
    };
    for s in &sets {
        if !s.id.starts_with("hostpci") {
            continue;
        }
        if device_named(&s.id).is_none() {
            push(
                eff.line("args"),
                Severity::Error,
                format!(
                    "args: -set device.{}.{}: there is no device \"{}\" defined (QEMU; the \
                     config has no single-function {})",
                    s.id, s.prop, s.id, s.id
                ),
            );
        }
    }

    // Legacy IGD: machine revision, IGD generation, x-igd-gms.
    for (n, line, d) in &hostpcis {
        let id = format!("hostpci{n}");
        let device_id = d
            .device_id
            .as_deref()
            .and_then(|v| u16::from_str_radix(v.trim_start_matches("0x"), 16).ok())
            .or_else(|| {
                let h = host?;
                let first = d.host.first()?;
                let f = functions_of(first, h).into_iter().next()?;
                (f.vendor == 0x8086).then_some(f.device_id)
            });
        let generation = device_id.and_then(|did| igd_generation(did, table));
        if d.legacy_igd == Some(true) {
            if let Some(p) = machine.pve {
                let old = match qemu {
                    Some(q) => q <= (9, 2),
                    None => machine.version.is_some_and(|v| v <= (9, 2)),
                };
                if old {
                    push(
                        machine_line,
                        Severity::Warning,
                        format!(
                            "machine '{}' with legacy-igd: on the seed host (QEMU 9.2) \
                             pc-i440fx-9.2+pve1 did not work while pc-i440fx-9.2 did; the +pve{p} \
                             revision changes the machine's defaults (9.2+pve1 turns S3/S4 off); \
                             use the type without +pve{p}",
                            machine.raw_type
                        ),
                    );
                }
            }
            if let Some(did) = device_id {
                let support = generation.map_or(LegacySupport::Unsupported, |g| g.legacy_support());
                let addr = d
                    .host
                    .first()
                    .map_or_else(|| id.clone(), PciHostId::first_function);
                match support {
                    LegacySupport::Unsupported => push(
                        Some(*line),
                        Severity::Error,
                        format!(
                            "IGD device {addr} is unsupported in legacy mode, try SandyBridge or \
                             newer (QEMU {}.{} does not know device id {did:04x} as generation \
                             6 or later)",
                            table.0, table.1
                        ),
                    ),
                    LegacySupport::OptIn => {
                        let opted = sets.iter().any(|s| {
                            s.id == id
                                && s.value == "on"
                                && (s.prop == "x-igd-legacy-mode" || s.prop == "x-igd-lpc")
                        });
                        if !opted {
                            push(
                                Some(*line),
                                Severity::Warning,
                                format!(
                                    "QEMU {}.{} enables IGD legacy mode by itself only for \
                                     generations 6 to 9; this is generation {}: add `-set \
                                     device.{id}.x-igd-legacy-mode=on` (or x-igd-lpc=on) to args",
                                    table.0,
                                    table.1,
                                    generation.map_or(0, |g| g.generation)
                                ),
                            );
                        }
                    }
                    LegacySupport::Auto => {}
                }
            }
        }
        for s in sets.iter().filter(|s| s.id == id && s.prop == "x-igd-gms") {
            let Some(v) = parse_qemu_uint(&s.value) else {
                push(
                    eff.line("args"),
                    Severity::Error,
                    format!(
                        "args: x-igd-gms={}: not a number QEMU reads (decimal, 0x hex or 0 octal)",
                        s.value
                    ),
                );
                continue;
            };
            if device_id.is_some() && generation.is_none() && gms_ranges(None, table).is_some() {
                push(
                    eff.line("args"),
                    Severity::Error,
                    "args: x-igd-gms is not supported on this device (QEMU knows no IGD \
                     generation for it)"
                        .to_string(),
                );
                continue;
            }
            match gms_ranges(generation.map(|g| g.generation), table) {
                None => push(
                    eff.line("args"),
                    Severity::Warning,
                    format!(
                        "args: x-igd-gms: upstream QEMU 9.2 dropped this property (10.0 brought it \
                         back); the seed host's pve-qemu-kvm 9.2.0-5 still accepted it: check \
                         `qemu-system-x86_64 -device vfio-pci,help` on QEMU {}.{}",
                        table.0, table.1
                    ),
                ),
                Some(ranges) => {
                    if !ranges
                        .iter()
                        .any(|r| u64::from(*r.start()) <= v && v <= u64::from(*r.end()))
                    {
                        let shown: Vec<String> = ranges
                            .iter()
                            .map(|r| format!("{:#x}..={:#x}", r.start(), r.end()))
                            .collect();
                        let for_gen = generation.map_or_else(
                            || "any IGD generation".to_string(),
                            |g| format!("generation {}", g.generation),
                        );
                        push(
                            eff.line("args"),
                            Severity::Error,
                            format!(
                                "args: x-igd-gms={} is outside what QEMU {}.{} accepts for {for_gen} \
                                 ({}): QEMU reports \"Unsupported IGD GMS value\"",
                                s.value,
                                table.0,
                                table.1,
                                shown.join(" or ")
                            ),
                        );
                    }
                }
            }
        }
    }
}
