//! Kernel, QEMU, qemu-server and libvirt log lines about PCI passthrough, read the way an expert
//! reads them: what kind of line it is, which PCI device it concerns, what it means and what to
//! do — on this host, when the caller knows the host.
//!
//! Passthrough fails in logs: `dmesg` (`vfio-pci 0000:01:00.0: BAR 1: can't reserve …`), the
//! QEMU stderr a Proxmox task log shows (`kvm: -device vfio-pci,host=…: vfio …: group 1 is not
//! viable`), qemu-server's own messages (`error writing '1' to '/sys/bus/pci/devices/…/reset'`),
//! libvirt's. [`KINDS`] is the one table of the 22 kinds of line that matter ([`KindId`], ids
//! stable and part of vfiokit's JSON contract): each kind has a [`Severity`], a [`Matcher`] on
//! the stable words of its messages (as the kernel, QEMU, qemu-server and libvirt sources print
//! them, across versions), an explanation and a fix that names the `vfiokit` command planning
//! it where there is one. Every other line is unrecognized: counted, not reported.
//!
//! The crate is pure: it takes text and, optionally, a [`HostContext`] of facts the caller
//! gathered (boot VGA, ROM BAR, reset methods, IOMMU group members and their host roles, the VM
//! configs naming a device, interrupt remapping). It reads no file and never panics on input.
//! Lines may carry any of the usual prefixes — `dmesg` time stamps, caller ids and `-T` dates,
//! `journalctl`/syslog headers, ISO-8601 times, `kvm: -device …: `, `TASK ERROR: ` — the
//! message is searched for anywhere in the line ([`strip_time`], [`message`]). The PCI device a
//! line concerns is normalized to `0000:01:00.0` ([`device`]). Repeats of a line (same kind,
//! device and message up to its numbers) fold into one entry with a count.
//!
//! ```
//! use vfiokit_explain::{explain, DeviceFacts, HostContext, KindId, Severity, VmUse};
//!
//! let log = "\
//! [  495.151099] vfio-pci 0000:00:02.0: Invalid PCI ROM header signature: expecting 0xaa55, got 0xa1f9
//! [  495.151115] vfio-pci 0000:00:02.0: Invalid PCI ROM header signature: expecting 0xaa55, got 0xa1f9
//! [  508.622909] usb 1-1: reset full-speed USB device number 2 using xhci_hcd
//! [  512.330171] kvm: kvm [4638]: ignored rdmsr: 0x1ad data 0x0
//! ";
//! let mut ctx = HostContext::default();
//! ctx.devices.insert("0000:00:02.0".into(), DeviceFacts {
//!     boot_vga: true,
//!     rom_bar: Some(false),
//!     vms: vec![VmUse { vmid: 100, key: "hostpci0".into(), romfile: Some("igpu-uhd630.rom".into()), romfile_present: Some(true), rombar: None }],
//!     ..DeviceFacts::default()
//! });
//! let report = explain(log, Some(&ctx));
//! assert_eq!(report.unrecognized, 1);
//! let rom = &report.explained[0];
//! assert_eq!((rom.line, rom.kind, rom.count), (1, KindId::RomHeaderInvalid, 2));
//! assert_eq!(rom.device.as_deref(), Some("0000:00:02.0"));
//! assert!(rom.explanation.contains("has no ROM BAR"));
//! assert!(rom.explanation.contains("harmless"));
//! assert_eq!(report.explained[1].kind, KindId::IgnoredMsr);
//! assert_eq!(report.worst(), Some(Severity::Warning));
//! println!("{}", serde_json::to_string_pretty(&report)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod context;
mod kinds;
mod line;

use std::collections::HashMap;

use serde::Serialize;

pub use context::{DeviceFacts, GroupMember, HostContext, VmUse};
pub use kinds::{KINDS, Kind, KindId, Matcher, Severity};
pub use line::{device, message, strip_time};

use kinds::{Hit, IOMMU_SET_AMBIGUOUS, VERIFY_GROUP_HINT};

/// The kind of one line and the device it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineMatch {
    /// The kind.
    pub kind: KindId,
    /// A second candidate when the line alone cannot decide: `failed to set iommu for container:
    /// Operation not permitted` is `no-interrupt-remapping` or `rmrr`. [`explain`] decides from
    /// the rest of the log and the host, else reports both.
    pub alternative: Option<KindId>,
    /// The PCI device the line names, normalized (`0000:01:00.0`).
    pub device: Option<String>,
    /// Whether the line is a hint that follows a message on its own line (QEMU's
    /// `Please ensure all devices within the iommu_group …`); [`explain`] gives it the device of
    /// the message before it.
    pub hint: bool,
}

/// Classifies one line on its own: `None` for an ordinary or unknown line.
///
/// ```
/// use vfiokit_explain::{classify, KindId};
/// let m = classify("Jun 03 20:35:58 pve kernel: DMAR-IR: Enabled IRQ remapping in x2apic mode")
///     .ok_or("not recognized")?;
/// assert_eq!(m.kind, KindId::IrEnabled);
/// assert_eq!(classify("[    0.050582] DMAR: IOMMU enabled"), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn classify(line: &str) -> Option<LineMatch> {
    let lower = line.to_ascii_lowercase();
    let found = KINDS.iter().find_map(|k| k.hit(&lower).map(|h| (k.id, h)));
    let (kind, alternative, hint) = match found {
        Some((kind, hit)) => (kind, None, hit == Hit::Hint),
        None if IOMMU_SET_AMBIGUOUS.iter().all(|w| lower.contains(w)) => {
            (KindId::NoInterruptRemapping, Some(KindId::Rmrr), false)
        }
        None => return None,
    };
    Some(LineMatch {
        kind,
        alternative,
        device: device(line),
        hint,
    })
}

/// One recognized line (with its folded repeats), explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explained {
    /// The 1-based number of its first occurrence.
    pub line: usize,
    /// The line, trimmed.
    pub text: String,
    /// Its kind.
    pub kind: KindId,
    /// The PCI device it concerns (`0000:01:00.0`), when it names one.
    pub device: Option<String>,
    /// The kind's severity.
    pub severity: Severity,
    /// What it means, with the host's facts when there are any.
    pub explanation: String,
    /// What to do: the `vfiokit` command that plans the fix where there is one.
    pub fix: String,
    /// How many times it occurred (repeats differing only in numbers fold).
    pub count: usize,
}

/// What [`explain`] found in a log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The recognized lines, in the order of their first occurrence.
    pub explained: Vec<Explained>,
    /// How many non-blank lines were not recognized.
    pub unrecognized: usize,
}

impl Report {
    /// The worst severity found; `None` when nothing was recognized.
    pub fn worst(&self) -> Option<Severity> {
        self.explained.iter().map(|e| e.severity).max()
    }

    /// Whether an error-severity kind was found (vfiokit exits 3 then).
    pub fn has_errors(&self) -> bool {
        self.worst() == Some(Severity::Error)
    }
}

/// How far back (in lines) a hint line looks for the message it belongs to.
const HINT_REACH: usize = 3;

/// Explains every recognized line of `text`; `ctx` adds the host's facts. A device the context
/// does not have is explained without them.
pub fn explain(text: &str, ctx: Option<&HostContext>) -> Report {
    let lines: Vec<&str> = text.lines().collect();
    let matches: Vec<Option<LineMatch>> = lines.iter().map(|l| classify(l)).collect();
    let seen = |kind: KindId| {
        matches
            .iter()
            .flatten()
            .any(|m| m.kind == kind && m.alternative.is_none())
    };
    let ambiguous_as: Vec<KindId> = match (seen(KindId::NoInterruptRemapping), seen(KindId::Rmrr)) {
        (true, false) => vec![KindId::NoInterruptRemapping],
        (false, true) => vec![KindId::Rmrr],
        _ => match ctx.and_then(|c| c.interrupt_remapping) {
            Some(true) => vec![KindId::Rmrr],
            Some(false) => vec![KindId::NoInterruptRemapping],
            None => vec![KindId::NoInterruptRemapping, KindId::Rmrr],
        },
    };

    let mut report = Report::default();
    let mut folded: HashMap<(KindId, Option<String>, String), usize> = HashMap::new();
    let mut last: Option<(usize, KindId, Option<String>)> = None;
    for (i, (raw, m)) in lines.iter().zip(matches).enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let Some(m) = m else {
            report.unrecognized += 1;
            continue;
        };
        let mut kind = m.kind;
        let mut dev = m.device;
        if m.hint
            && let Some((at, last_kind, last_dev)) = &last
            && i - at <= HINT_REACH
        {
            let lower = raw.to_ascii_lowercase();
            let verify_hint = VERIFY_GROUP_HINT.iter().all(|w| lower.contains(w));
            if verify_hint && *last_kind == KindId::DeviceInUse {
                kind = KindId::DeviceInUse;
            }
            if dev.is_none() && *last_kind == kind {
                dev.clone_from(last_dev);
            }
        }
        let kinds = if m.alternative.is_some() {
            ambiguous_as.clone()
        } else {
            vec![kind]
        };
        let key_text = line::fold_key(raw);
        for k in kinds {
            let key = (k, dev.clone(), key_text.clone());
            if let Some(&at) = folded.get(&key) {
                report.explained[at].count += 1;
                continue;
            }
            let (mut explanation, fix) = k.kind().explain(raw, dev.as_deref(), ctx);
            if m.alternative.is_some() && ambiguous_as.len() == 2 {
                explanation.insert_str(
                    0,
                    "This line is either no-interrupt-remapping or rmrr (kernels before about 6.5 \
                     fail both the same way) and nothing in the log or the host decides which. ",
                );
            }
            folded.insert(key, report.explained.len());
            report.explained.push(Explained {
                line: i + 1,
                text: raw.trim().to_string(),
                kind: k,
                device: dev.clone(),
                severity: k.severity(),
                explanation,
                fix,
                count: 1,
            });
        }
        last = Some((i, kind, dev));
    }
    report
}
