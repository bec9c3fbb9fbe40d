//! GPUs: which functions of a display controller go to a VM together and how Proxmox names them,
//! ROM files per passed device, the legacy-mode iGPU rules of each QEMU version, and the host's
//! boot framebuffer by kernel version.
//!
//! Proxmox (qemu-server 9.2, `PCI.pm`) reads a function-less `host=0000:07:00` as every function
//! of the slot and `host=a;b` as one set of functions passed together as one multifunction guest
//! device (not as alternatives). [`entries`] therefore writes the function-less form when every
//! function of the slot goes, a `;` list when only some of them share the display controller's
//! IOMMU group, and one entry per function for functions in separate groups (the Radeon 780M's
//! `c5:00.0` and `c5:00.1`: each passed only when asked for).

use std::path::PathBuf;
use std::str::FromStr;

use vfiokit_iommu::{Assessment, Host};
use vfiokit_pci::{PciAddress, PciDevice};
use vfiokit_vmconf::HostPci;

use crate::edit::Docs;
use crate::facts::HostFacts;
use crate::refusal::Refusal;
use crate::rules::{Finding, Fix, Input, Severity, configured_cmdline};
use crate::{Error, Result};

/// `--rom ADDR=FILE`: a ROM file (relative to `/usr/share/kvm`) for one passed device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RomArg {
    /// The device whose hostpci entry gets `romfile=`.
    pub device: PciAddress,
    /// The file name under `/usr/share/kvm`.
    pub file: String,
}

impl FromStr for RomArg {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<RomArg, String> {
        let (addr, file) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected ADDR=FILE (c5:00.0=vbios_1002_1900.bin)"))?;
        let device = addr
            .parse()
            .map_err(|e: vfiokit_pci::Error| e.to_string())?;
        if file.is_empty() {
            return Err(format!("{s:?}: no file name after '='"));
        }
        Ok(RomArg {
            device,
            file: file.to_string(),
        })
    }
}

/// Whether `d` is a display controller (class 03xx).
pub fn is_display(d: &PciDevice) -> bool {
    d.class.base() == 0x03
}

/// One hostpci entry to write: the host functions it passes, Proxmox's `host` value, and why
/// these functions go together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The functions, the guest's function 0 first.
    pub functions: Vec<PciAddress>,
    /// The `host=` value: `0000:07:00`, `0000:c5:00.0;0000:c5:00.1` or `0000:c5:00.1`.
    pub host: String,
    /// Why this set (for the plan's reason).
    pub why: String,
}

/// The functions of `addr`'s slot (same domain, bus, device) on the host, sorted.
fn slot_of(host: &Host, addr: PciAddress) -> Vec<&PciDevice> {
    let mut out: Vec<&PciDevice> = host
        .pci
        .devices
        .iter()
        .filter(|d| {
            let a = d.address;
            (a.domain, a.bus, a.device) == (addr.domain, addr.bus, addr.device)
        })
        .collect();
    out.sort_by_key(|d| d.address);
    out
}

/// The functions that go with a display controller: every function of its slot in its IOMMU group.
fn display_set(host: &Host, d: &PciDevice) -> Vec<PciAddress> {
    slot_of(host, d.address)
        .into_iter()
        .filter(|f| {
            f.address == d.address || (f.iommu_group.is_some() && f.iommu_group == d.iommu_group)
        })
        .map(|f| f.address)
        .collect()
}

fn slot_name(a: PciAddress) -> String {
    format!("{:04x}:{:02x}:{:02x}", a.domain, a.bus, a.device)
}

/// Groups the requested devices into hostpci entries, in request order: a display controller
/// takes every function of its slot that shares its IOMMU group (one multifunction entry);
/// anything else, and functions in groups of their own, get an entry each.
pub fn entries(host: &Host, devices: &[PciAddress]) -> Vec<Entry> {
    let sets: Vec<Vec<PciAddress>> = devices
        .iter()
        .filter_map(|&a| host.device(a))
        .filter(|d| is_display(d))
        .map(|d| display_set(host, d))
        .collect();
    let mut out: Vec<Entry> = Vec::new();
    let covered = |out: &[Entry], a: PciAddress| out.iter().any(|e| e.functions.contains(&a));
    for &addr in devices {
        if covered(&out, addr) {
            continue;
        }
        let set = sets
            .iter()
            .find(|s| s.contains(&addr))
            .filter(|s| s.len() > 1);
        let Some(set) = set else {
            let why = match host.device(addr) {
                Some(d) if is_display(d) => {
                    let others: Vec<String> = slot_of(host, addr)
                        .into_iter()
                        .filter(|f| f.address != addr)
                        .map(|f| f.address.to_string())
                        .collect();
                    if others.is_empty() {
                        format!("passes {addr} to the VM")
                    } else {
                        format!(
                            "passes {addr} to the VM; the other functions of its slot ({}) are in IOMMU groups of their own, so each is a separate entry, passed only when asked for",
                            others.join(", ")
                        )
                    }
                }
                _ => format!("passes {addr} to the VM"),
            };
            out.push(Entry {
                functions: vec![addr],
                host: addr.to_string(),
                why,
            });
            continue;
        };
        let gpu = set
            .iter()
            .copied()
            .find(|&f| host.device(f).is_some_and(is_display))
            .unwrap_or(addr);
        let whole = slot_of(host, addr).len() == set.len();
        let names: Vec<String> = set.iter().map(ToString::to_string).collect();
        let host_value = if whole {
            slot_name(set[0])
        } else {
            names.join(";")
        };
        let why = if whole {
            format!(
                "passes every function of the GPU's slot ({}) as one multifunction device: they share {gpu}'s IOMMU group, so they leave the host together, and the guest sees the card as it is (HDMI audio and USB-C included); Proxmox expands the function-less address to all functions",
                names.join(", ")
            )
        } else {
            format!(
                "passes {} as one multifunction device: the functions of the GPU's slot in {gpu}'s IOMMU group (Proxmox passes a `;` list together, not as alternatives)",
                names.join(", ")
            )
        };
        out.push(Entry {
            functions: set.clone(),
            host: host_value,
            why,
        });
    }
    out
}

/// Checks `--primary` and `--rom` against the request and its entries: usage errors are `Err`,
/// a ROM name that breaks Proxmox is a refusal.
pub(crate) fn check_request(
    host: &Host,
    req: &crate::vm::Request,
    entries: &[Entry],
) -> Result<Option<Refusal>> {
    let passed = |a: PciAddress| entries.iter().any(|e| e.functions.contains(&a));
    if let Some(p) = req.primary {
        let d = host.device(p).ok_or(Error::NoDevice(p))?;
        if req.igd.is_some() {
            return Err(Error::Invalid(format!(
                "--primary {p} with --igd: a legacy-mode iGPU is already the VM's only display"
            )));
        }
        if !is_display(d) {
            return Err(Error::Invalid(format!(
                "--primary {p}: {p} is not a display controller (class {}), so it cannot be the VM's display",
                d.class
            )));
        }
        if !passed(p) {
            return Err(Error::Invalid(format!(
                "--primary {p}: pass it with --device {p} as well"
            )));
        }
    }
    for r in &req.roms {
        if Some(r.device) != req.igd && !passed(r.device) {
            return Err(Error::Invalid(format!(
                "--rom {}={}: {} is not passed to the VM (add --device {})",
                r.device, r.file, r.device, r.device
            )));
        }
        if req.roms.iter().filter(|o| o.device == r.device).count() > 1 {
            return Err(Error::Invalid(format!(
                "--rom names {} twice: an entry has one romfile",
                r.device
            )));
        }
        if let Some(e) = entries
            .iter()
            .find(|e| e.functions.contains(&r.device) && e.functions[0] != r.device)
        {
            return Err(Error::Invalid(format!(
                "--rom {}={}: {} is passed within the multifunction entry {}, and Proxmox gives romfile to its first function ({}) only; name that one",
                r.device, r.file, r.device, e.host, e.functions[0]
            )));
        }
    }
    for name in req
        .roms
        .iter()
        .map(|r| r.file.as_str())
        .chain(req.romfile.as_deref())
    {
        if let Some(why) = romfile_name_problem(name) {
            return Ok(Some(Refusal::plain(format!("refused: {why}\n"))));
        }
    }
    Ok(None)
}

/// How the VM's firmware takes a ROM file for `d`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RomFit {
    /// It runs it (an EFI image under OVMF, a legacy one under SeaBIOS).
    Loads,
    /// A legacy VBIOS for this very device under OVMF: OVMF runs no legacy code, but the ROM
    /// BAR still shows it to the guest's driver (what an AMD iGPU, which has no ROM BAR of its
    /// own, needs). Not an error: a pre-boot display needs a GOP driver ROM besides.
    LegacyUnderOvmf,
    /// Why the firmware would not load it.
    Unloadable(String),
}

/// Judges a ROM file for `d` under OVMF (`ovmf`) or SeaBIOS: what `setup-vm` refuses and the
/// rule `romfile-unloadable` flags are the same files.
pub(crate) fn rom_fit(bytes: &[u8], d: &PciDevice, ovmf: bool) -> RomFit {
    let (vendor, device) = (d.vendor.0, d.device.0);
    match crate::vm::rom_loads(bytes, vendor, device, ovmf) {
        Ok(()) => RomFit::Loads,
        Err(_) if ovmf && crate::vm::rom_loads(bytes, vendor, device, false).is_ok() => {
            RomFit::LegacyUnderOvmf
        }
        Err(why) => RomFit::Unloadable(why),
    }
}

/// Checks a ROM file for the device `d` under the VM's firmware: `Err` (a refusal message) when
/// the firmware would not load it, else the notes (missing file, EFI ids naming a sibling).
pub(crate) fn check_rom(
    facts: &HostFacts,
    file: &str,
    d: &PciDevice,
    ovmf: bool,
) -> std::result::Result<Vec<String>, String> {
    let path = crate::vm::romfile_path(facts, file);
    let Some(bytes) = facts.rom(file) else {
        return Ok(vec![format!(
            "warning: {} does not exist yet: put the ROM there before starting the VM (`vfiokit vbios` builds and checks one)",
            path.display()
        )]);
    };
    let firmware = if ovmf { "OVMF" } else { "SeaBIOS" };
    let why = match rom_fit(bytes, d, ovmf) {
        RomFit::Loads => None,
        RomFit::LegacyUnderOvmf => {
            return Ok(vec![format!(
                "warning: {} is a legacy VBIOS for {} ({}:{}): OVMF runs no legacy code, so it gives no pre-boot display; the guest's driver still reads it through the ROM BAR (what an AMD iGPU needs); a display before the OS needs a GOP driver ROM (the 780M's author puts it on the audio function)",
                path.display(),
                d.address,
                d.vendor,
                d.device
            )]);
        }
        RomFit::Unloadable(why) => Some(why),
    };
    if let Some(why) = why {
        return Err(format!(
            "refused: {firmware} would not load {} for {} ({}:{}): {why}\n",
            path.display(),
            d.address,
            d.vendor,
            d.device
        ));
    }
    let mut notes = Vec::new();
    if ovmf && let Some(s) = efi_rom_names_sibling(&facts.host, bytes, d) {
        notes.push(format!(
            "warning: {}'s EFI driver names {} ({}:{}), not {} ({}:{}): OVMF does not compare the ids and loads it from {} all the same; the driver then runs for the device it supports (the 780M's published setup puts its GOP on the audio function this way)",
            path.display(),
            s.address,
            s.vendor,
            s.device,
            d.address,
            d.vendor,
            d.device,
            d.address
        ));
    }
    Ok(notes)
}

/// A hostpci value, its reason, and notes for the plan.
pub(crate) type EntryValue = (String, String, Vec<String>);

/// The new value of one hostpci entry (the existing `current` one kept, with `pcie=1` on q35,
/// `x-vga=1` for the primary display, `romfile=`), its reason, and the notes — or a refusal.
pub(crate) fn entry_value(
    facts: &HostFacts,
    req: &crate::vm::Request,
    entry: &Entry,
    current: Option<&str>,
    q35: bool,
    ovmf: bool,
) -> Result<std::result::Result<EntryValue, Refusal>> {
    use vfiokit_vmconf::PropertyString;
    let mut value = PropertyString::parse(current.unwrap_or(&entry.host), Some("host"));
    let mut why = vec![if current.is_some() {
        format!("{} already passes {}", entry.host, entry.functions[0])
    } else {
        entry.why.clone()
    }];
    let mut notes = Vec::new();
    if q35 && value.get("pcie").is_none() && value.set("pcie", "1") {
        let integrated = facts
            .host
            .device(entry.functions[0])
            .and_then(|d| d.config.as_ref())
            .and_then(|c| c.pcie)
            == Some(vfiokit_pci::PcieType::RcIntegratedEndpoint);
        why.push(if integrated {
            "pcie=1: the machine is q35, so the guest sees the device as PCIe, on a PCIe root port; on the host it is integrated into the root complex (no link of its own), but its driver still reads its PCIe capabilities".into()
        } else {
            "pcie=1: the machine is q35, so the device sits on a PCIe root port as on the host (drivers of PCIe devices expect a PCIe link)".into()
        });
    }
    if req.primary.is_some_and(|p| entry.functions.contains(&p)) && value.set("x-vga", "1") {
        why.push(if ovmf {
            "x-vga=1: this is the VM's display; with OVMF Proxmox passes no legacy VGA (x-vga=on is for SeaBIOS) but still hides KVM (kvm=off) and sets hv_vendor_id, as GPU drivers want".to_string()
        } else {
            "x-vga=1: this is the VM's display: QEMU routes the legacy VGA ranges to it (x-vga=on) and Proxmox hides KVM (kvm=off)".to_string()
        });
    }
    if let Some(r) = req.roms.iter().find(|r| r.device == entry.functions[0]) {
        let d = facts
            .host
            .device(r.device)
            .ok_or(Error::NoDevice(r.device))?;
        match check_rom(facts, &r.file, d, ovmf) {
            Ok(n) => notes.extend(n),
            Err(msg) => return Ok(Err(Refusal::plain(msg))),
        }
        if value.set("romfile", &r.file) {
            why.push(format!(
                "romfile={}: {} loads this ROM from /usr/share/kvm/{} instead of the device's own",
                r.file,
                if ovmf { "OVMF" } else { "SeaBIOS" },
                r.file
            ));
        }
    }
    if let Some(p) = req.primary.filter(|p| entry.functions.contains(p))
        && value.get("romfile").is_none()
        && let Some(d) = facts.host.device(p).filter(|d| d.rom_bar == Some(false))
    {
        notes.push(romless_note(
            d,
            "the primary display (x-vga=1)",
            &format!("--rom {p}=FILE"),
        ));
    }
    Ok(Ok((value.render(), why.join("; "), notes)))
}

/// The display function of a hostpci entry that asks for a VBIOS (`legacy-igd=1` or `x-vga=1`)
/// but gets none: no `romfile=`, and the host function has no ROM BAR. QEMU then finds no ROM
/// (legacy IGD mode is dropped: `Device has no ROM`) and the screen stays black.
pub(crate) fn romless_display<'f>(facts: &'f HostFacts, entry: &HostPci) -> Option<&'f PciDevice> {
    let wants_vbios = entry.legacy_igd == Some(true) || entry.x_vga == Some(true);
    if !wants_vbios || entry.romfile.is_some() {
        return None;
    }
    crate::vm::functions_of(facts, entry)
        .into_iter()
        .filter_map(|a| facts.host.device(a))
        .find(|d| is_display(d) && d.rom_bar == Some(false))
}

/// The plan's warning for a display function given without a ROM it needs; `how` says how to
/// give one (`--romfile FILE`).
pub(crate) fn romless_note(d: &PciDevice, mode: &str, how: &str) -> String {
    format!(
        "warning: {} ({}:{}) has no ROM BAR and gets no romfile: {mode} needs a VBIOS (or a GOP ROM for OVMF) from the ROM BAR or romfile=, so the VM's screen stays black; give it one with {how} (`vfiokit vbios extract` builds one)",
        d.address, d.vendor, d.device
    )
}

/// The rule `romfile-needed`: a VM entry with `legacy-igd=1` or `x-vga=1` has no `romfile=`,
/// and its host function has no ROM BAR.
pub(crate) fn romfile_needed(i: &Input<'_>) -> Vec<Finding> {
    let facts = i.facts;
    let mut out = Vec::new();
    for vm in facts.vms.iter().filter(|v| v.local) {
        let Some(config) = vm.config() else { continue };
        for (key, entry) in crate::vm::hostpcis(&config) {
            let Some(d) = romless_display(facts, &entry) else {
                continue;
            };
            let mode = if entry.legacy_igd == Some(true) {
                "legacy-igd=1"
            } else {
                "x-vga=1"
            };
            out.push(
                Finding::new(
                    "romfile-needed",
                    Severity::Warning,
                    format!(
                        "VM {} {key}: {mode} on {} ({}:{}), which has no ROM BAR, and no romfile: the guest firmware finds no VBIOS and the screen stays black",
                        vm.vmid, d.address, d.vendor, d.device
                    ),
                    format!(
                        "put a ROM for {}:{} in /usr/share/kvm (`vfiokit vbios extract FIRMWARE --device {}:{} --rom OUT`) and add romfile=OUT to {key}",
                        d.vendor, d.device, d.vendor, d.device
                    ),
                )
                .at(&vm.file.path, None),
            );
        }
    }
    out
}

/// Whether a `romfile=` name names a file inside `/usr/share/kvm` (relative, no `..`), the
/// files the facts read and can say exist.
pub(crate) fn in_kvm_dir(name: &str) -> bool {
    !name.is_empty()
        && std::path::Path::new(name).components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
}

/// Checks a `romfile=` name: Proxmox prefixes `/usr/share/kvm/`, so an absolute path breaks,
/// and a `..` component would name a file outside it.
pub fn romfile_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("romfile is empty: name a file under /usr/share/kvm".into());
    }
    if name.starts_with('/') {
        return Some(format!(
            "romfile {name} is an absolute path: Proxmox always prefixes /usr/share/kvm/, so QEMU would look for /usr/share/kvm/{name} and the VM would not start; copy the file to /usr/share/kvm and name it relative to it ({})",
            name.rsplit('/').next().unwrap_or(name)
        ));
    }
    if !in_kvm_dir(name) {
        return Some(format!(
            "romfile {name} leaves /usr/share/kvm (a `..` component): put the ROM file in /usr/share/kvm and name it relative to it"
        ));
    }
    if name.contains([',', ';']) || name.chars().any(char::is_whitespace) {
        return Some(format!(
            "romfile {name:?}: Proxmox's romfile pattern is [^,;]+ and QEMU's option syntax has no blanks; rename the file"
        ));
    }
    None
}

/// For an EFI ROM checked against `d`: the other function of `d`'s slot its PCIR ids name, when
/// none of its EFI images names `d` itself.
pub fn efi_rom_names_sibling<'h>(
    host: &'h Host,
    bytes: &[u8],
    d: &PciDevice,
) -> Option<&'h PciDevice> {
    let rom = vfiokit_vbios::Rom::parse(bytes).ok()?;
    let efi: Vec<_> = rom.images.iter().filter(|i| i.is_efi()).collect();
    if efi.is_empty() || efi.iter().any(|i| i.matches(d.vendor.0, d.device.0)) {
        return None;
    }
    slot_of(host, d.address)
        .into_iter()
        .find(|s| s.address != d.address && efi.iter().any(|i| i.matches(s.vendor.0, s.device.0)))
}

/// The Intel iGPU generation QEMU assigns to a device id (`igd_gen()` of `hw/vfio/igd.c`), by
/// QEMU version; `None` where QEMU returns -1 (no legacy mode).
pub fn igd_gen(device_id: u16, qemu: (u32, u32)) -> Option<u8> {
    let hi = device_id & 0xff00;
    if qemu >= (10, 0) {
        if device_id & 0xffe == 0xa84 {
            return Some(9);
        }
        return match hi {
            0x0100 => Some(6),
            0x0400 | 0x0a00 | 0x0c00 | 0x0d00 | 0x0f00 => Some(7),
            0x1600 | 0x2200 => Some(8),
            0x1900 | 0x3100 | 0x5900 | 0x3e00 | 0x9b00 => Some(9),
            0x8a00 | 0x4500 | 0x4e00 => Some(11),
            0x9a00 | 0x4c00 | 0x4600 | 0xa700 => Some(12),
            _ => None,
        };
    }
    if device_id & 0xfff == 0xa84 {
        return Some(8);
    }
    match hi {
        0x0000 | 0x2500 | 0x2700 | 0x2900 | 0x2a00 | 0x2e00 | 0x3500 | 0xa000 => None,
        0x0100 | 0x0400 | 0x0a00 | 0x0c00 | 0x0d00 | 0x0f00 => Some(6),
        0x1600 | 0x1900 | 0x2200 | 0x5900 => Some(8),
        _ if qemu < (9, 2) => Some(8),
        0x3e00 => Some(9),
        0x4500 => Some(11),
        0x9a00 => Some(12),
        _ => None,
    }
}

/// What a QEMU version needs for a legacy-mode iGPU: extra `-set device.<key>.PROP=VALUE`
/// properties with their reason, or why the VM would not start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IgdNeeds {
    /// `(property, value)` pairs beyond addr/x-igd-gms/x-igd-opregion.
    pub props: Vec<(&'static str, &'static str)>,
    /// Reasons and warnings for the plan.
    pub notes: Vec<String>,
}

/// The legacy-mode rules of `qemu` for the iGPU `8086:device_id` (`igd-qemu.md`): `Err` when
/// QEMU would refuse to start the VM.
pub fn igd_needs(
    device_id: u16,
    qemu: (u32, u32),
    ovmf: bool,
) -> std::result::Result<IgdNeeds, String> {
    let (maj, min) = qemu;
    let Some(gen_) = igd_gen(device_id, qemu) else {
        let fix = if qemu < (10, 0) {
            "QEMU 10.0 (Proxmox VE 9) knows Comet Lake, Ice Lake, Jasper/Elkhart Lake, Tiger/Rocket/Alder/Raptor Lake: upgrade, then plan again"
        } else {
            "no QEMU release knows it; UPT mode (a secondary display, no legacy-igd) is the alternative"
        };
        return Err(format!(
            "QEMU {maj}.{min} has no generation for 8086:{device_id:04x}: the VM fails with \"IGD device … is unsupported in legacy mode, try SandyBridge or newer\" (and rejects x-igd-gms); {fix}"
        ));
    };
    let mut needs = IgdNeeds::default();
    if qemu >= (10, 1) && !(6..=9).contains(&gen_) {
        needs.props.push(("x-igd-lpc", "on"));
        needs.notes.push(format!(
            "QEMU {maj}.{min} turns legacy mode on by itself only for generations 6–9; this gen-{gen_} iGPU gets its parts explicitly: x-igd-lpc=on (the host's LPC and host bridge ids, which the GOP driver checks), x-igd-opregion=on (default since 10.1); x-igd-legacy-mode is left alone, since forcing it fails on gen {gen_}"
        ));
        if !ovmf {
            needs.notes.push(format!(
                "warning: a gen-{gen_} iGPU has no legacy VBIOS and QEMU {maj}.{min} does not route VGA to it outside legacy mode: with SeaBIOS the screen stays dark until the guest's driver loads; use `bios: ovmf` with a GOP ROM"
            ));
        }
    }
    Ok(needs)
}

/// How the host releases the firmware framebuffer on a boot GPU, by kernel version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framebuffer {
    /// Add this command-line parameter.
    Param {
        /// `video` or `initcall_blacklist`.
        key: &'static str,
        /// `efifb:off`, `vesafb:off` or `sysfb_init`.
        value: &'static str,
        /// The reason.
        why: String,
    },
    /// Nothing to add: vfio-pci evicts the framebuffer when it binds.
    Evicts {
        /// What happens, for the plan's notes.
        note: String,
    },
}

/// The framebuffer rule for kernel `(major, minor)`; `uefi` says whether the host booted by UEFI
/// (`None`: the root does not say).
pub fn framebuffer(gpu: PciAddress, kernel: (u32, u32), uefi: Option<bool>) -> Framebuffer {
    let (maj, min) = kernel;
    if kernel >= (6, 0) {
        return Framebuffer::Evicts {
            note: format!(
                "{gpu} is the host's boot GPU: on Linux {maj}.{min} vfio-pci removes the firmware framebuffer (efifb/simpledrm) itself when it binds, so no command-line parameter is added; the host's console goes dark at that point of the boot (use SSH or the web UI from there)"
            ),
        };
    }
    if kernel >= (5, 15) {
        return Framebuffer::Param {
            key: "initcall_blacklist",
            value: "sysfb_init",
            why: format!(
                "initcall_blacklist=sysfb_init: {gpu} is the host's boot GPU, and Proxmox's {maj}.{min} kernel turns the firmware framebuffer into a simple-framebuffer that holds the card's BAR (`vfio-pci {gpu}: BAR 1: can't reserve`), where video=efifb:off no longer helps; the host has no console on that screen from then on"
            ),
        };
    }
    let (value, what) = match uefi {
        Some(false) => ("vesafb:off", "vesafb (the host booted in legacy BIOS mode)"),
        Some(true) => ("efifb:off", "efifb (the host booted by UEFI)"),
        None => (
            "efifb:off",
            "efifb (assumed: the root does not record /sys/firmware/efi; on a legacy BIOS boot use video=vesafb:off instead)",
        ),
    };
    Framebuffer::Param {
        key: "video",
        value,
        why: format!(
            "video={value}: {gpu} is the host's boot GPU and Linux {maj}.{min}'s {what} holds its BAR (`BAR 1: can't reserve`); the host has no console on that screen from then on"
        ),
    }
}

/// Whether the configured command line already releases the framebuffer as `key=value` asks.
fn has_param(c: &vfiokit_kcmdline::Cmdline, key: &str, value: &str) -> bool {
    if key == "initcall_blacklist" {
        c.list_items(key).contains(&value)
    } else {
        c.values(key).contains(&Some(value))
    }
}

/// Adds `key=value` to a command line: into the comma list of `initcall_blacklist`, as a
/// parameter of its own otherwise (`video=` may repeat). Returns whether it changed.
pub(crate) fn add_param(c: &mut vfiokit_kcmdline::Cmdline, key: &str, value: &str) -> bool {
    if has_param(c, key, value) {
        return false;
    }
    if key == "initcall_blacklist" {
        c.add_list_item(key, value)
    } else if c.has(key) {
        let mut text = c.render();
        text.push_str(&format!(" {key}={value}"));
        *c = vfiokit_kcmdline::Cmdline::parse(&text);
        true
    } else {
        c.set(key, Some(value))
    }
}

/// `setup-host`: releases the boot framebuffer when a function given away is the boot GPU.
pub(crate) fn plan_framebuffer(
    facts: &HostFacts,
    a: &Assessment,
    docs: &mut Docs<'_>,
) -> Result<()> {
    let Some(boot) = a
        .members
        .iter()
        .filter_map(|&m| facts.host.device(m))
        .find(|d| d.boot_vga == Some(true))
    else {
        return Ok(());
    };
    let kernel = facts
        .kernel()
        .ok_or_else(|| Error::NoRelease(facts.abs("proc/sys/kernel/osrelease")))?;
    match framebuffer(boot.address, kernel, facts.uefi) {
        Framebuffer::Evicts { note } => docs.notes.push(note),
        Framebuffer::Param { key, value, why } => docs.cmdline(|c, reasons| {
            if add_param(c, key, value) {
                reasons.push(why);
            }
        })?,
    }
    Ok(())
}

/// The rule `boot-framebuffer`: a VM passes the boot GPU, and the configured command line lacks
/// the parameter this kernel needs to release its framebuffer.
pub(crate) fn boot_framebuffer(i: &Input<'_>) -> Vec<Finding> {
    let facts = i.facts;
    let Some(kernel) = facts.kernel() else {
        return Vec::new();
    };
    let Some(boot) = facts
        .host
        .pci
        .devices
        .iter()
        .find(|d| d.boot_vga == Some(true))
    else {
        return Vec::new();
    };
    let Framebuffer::Param { key, value, why } = framebuffer(boot.address, kernel, facts.uefi)
    else {
        return Vec::new();
    };
    let Some((path, cmdline)) = configured_cmdline(facts) else {
        return Vec::new();
    };
    if has_param(&cmdline, key, value) {
        return Vec::new();
    }
    let a = boot.address;
    let mut out = Vec::new();
    for vm in facts.vms.iter().filter(|v| v.local) {
        let Some(config) = vm.config() else { continue };
        let Some((k, _)) = crate::vm::hostpcis(&config)
            .into_iter()
            .find(|(_, h)| crate::vm::names(h, a))
        else {
            continue;
        };
        let file: PathBuf = facts.abs(&path);
        out.push(
            Finding::new(
                "boot-framebuffer",
                Severity::Error,
                format!(
                    "VM {} {k} passes {a}, the host's boot GPU, but {} lacks {key}={value}: the firmware framebuffer keeps the card's BAR and the VM fails with `BAR 1: can't reserve`",
                    vm.vmid,
                    file.display()
                ),
                format!("add {key}={value} to the kernel command line, update the boot loader and reboot"),
            )
            .at(&path, None)
            .fixed_by(Fix::AddCmdlineParam {
                key: key.to_string(),
                value: value.to_string(),
                why: why.clone(),
            }),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu() -> PciAddress {
        "07:00.0".parse().unwrap()
    }

    #[test]
    fn framebuffer_by_kernel() {
        for (k, want) in [
            ((5, 4), Some(("video", "efifb:off"))),
            ((5, 14), Some(("video", "efifb:off"))),
            ((5, 15), Some(("initcall_blacklist", "sysfb_init"))),
            ((5, 19), Some(("initcall_blacklist", "sysfb_init"))),
            ((6, 0), None),
            ((6, 8), None),
            ((6, 17), None),
        ] {
            let got = match framebuffer(gpu(), k, Some(true)) {
                Framebuffer::Param { key, value, why } => {
                    assert!(why.starts_with(&format!("{key}={value}: ")), "{why}");
                    Some((key, value))
                }
                Framebuffer::Evicts { note } => {
                    assert!(note.contains("console goes dark"), "{note}");
                    None
                }
            };
            assert_eq!(got, want, "kernel {k:?}");
        }
        assert!(matches!(
            framebuffer(gpu(), (5, 10), Some(false)),
            Framebuffer::Param {
                value: "vesafb:off",
                ..
            }
        ));
        let Framebuffer::Param { value, why, .. } = framebuffer(gpu(), (5, 10), None) else {
            panic!()
        };
        assert_eq!(value, "efifb:off");
        assert!(why.contains("assumed"), "{why}");
    }

    #[test]
    fn params_are_added_once() {
        let mut c = vfiokit_kcmdline::Cmdline::parse("quiet initcall_blacklist=foo");
        assert!(add_param(&mut c, "initcall_blacklist", "sysfb_init"));
        assert_eq!(c.render(), "quiet initcall_blacklist=foo,sysfb_init");
        assert!(!add_param(&mut c, "initcall_blacklist", "sysfb_init"));
        let mut c = vfiokit_kcmdline::Cmdline::parse("quiet video=vesafb:off");
        assert!(add_param(&mut c, "video", "efifb:off"));
        assert_eq!(c.render(), "quiet video=vesafb:off video=efifb:off");
        assert!(!add_param(&mut c, "video", "efifb:off"));
    }

    #[test]
    fn rom_args() {
        let r: RomArg = "c5:00.1=AMDGopDriver_8845hs.rom".parse().unwrap();
        assert_eq!(r.device.to_string(), "0000:c5:00.1");
        assert_eq!(r.file, "AMDGopDriver_8845hs.rom");
        assert!("c5:00.1".parse::<RomArg>().is_err());
        assert!("c5:00.1=".parse::<RomArg>().is_err());
        assert!(romfile_name_problem("/root/x.rom").is_some());
        assert!(romfile_name_problem("a,b").is_some());
        assert!(romfile_name_problem("sub/x.rom").is_none());
        assert!(romfile_name_problem("../../../etc/passwd").is_some());
        assert!(romfile_name_problem("sub/../x.rom").is_some());
        assert!(romfile_name_problem("x..rom").is_none());
        assert!(romfile_name_problem("./x.rom").is_none());
        assert!(romfile_name_problem("").is_some());
        // What the facts read is what these names allow.
        assert!(in_kvm_dir("sub/x.rom") && in_kvm_dir("./x.rom"));
        assert!(!in_kvm_dir("../x.rom") && !in_kvm_dir("/x.rom") && !in_kvm_dir(""));
    }

    #[test]
    fn igd_generations() {
        // N100 (Alder Lake-N 46d1): unknown to 9.2, gen 12 from 10.0.
        assert_eq!(igd_gen(0x46d1, (9, 2)), None);
        assert_eq!(igd_gen(0x46d1, (10, 0)), Some(12));
        assert_eq!(igd_gen(0x3e92, (9, 2)), Some(9));
        assert_eq!(igd_gen(0x3e92, (11, 0)), Some(9));
        assert_eq!(igd_gen(0x9bca, (9, 2)), None);
        assert_eq!(igd_gen(0x9bca, (9, 1)), Some(8));
        assert!(igd_needs(0x46d1, (9, 2), true).is_err());
        assert_eq!(igd_needs(0x46d1, (10, 0), true).unwrap().props, vec![]);
        let n = igd_needs(0x46d1, (11, 0), true).unwrap();
        assert_eq!(n.props, vec![("x-igd-lpc", "on")]);
        assert_eq!(n.notes.len(), 1);
        assert_eq!(igd_needs(0x46d1, (11, 0), false).unwrap().notes.len(), 2);
        assert_eq!(
            igd_needs(0x3e92, (11, 0), true).unwrap(),
            IgdNeeds::default()
        );
    }
}
