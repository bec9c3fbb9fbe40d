//! The kind table: one entry per kind of log line, with its stable id, severity, matcher,
//! explanation and fix, and the host facts that sharpen them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::context::{DeviceFacts, HostContext};

/// How bad a kind of line is. Ordered `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Good news or context; nothing to do.
    Info,
    /// Something may go wrong or is degraded.
    Warning,
    /// Passthrough failed or the device misbehaved.
    Error,
}

impl Severity {
    /// `info`, `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! kind_ids {
    ($($(#[$doc:meta])* $variant:ident = $id:literal,)*) => {
        /// The stable id of a kind. The ids are part of the JSON contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum KindId {
            $($(#[$doc])* $variant,)*
        }

        impl KindId {
            /// Every kind, errors first, in the order of the issue that defined them.
            pub const ALL: &'static [KindId] = &[$(KindId::$variant,)*];

            /// The id as JSON spells it (`rom-header-invalid`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(KindId::$variant => $id,)*
                }
            }

            /// The kind with this id; `None` for any other string.
            pub fn from_id(id: &str) -> Option<KindId> {
                match id {
                    $($id => Some(KindId::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

kind_ids! {
    /// A BAR's address range is held by someone else or never got an address.
    BarCantReserve = "bar-cant-reserve",
    /// The IOMMU group holds a device still bound to a host driver.
    GroupNotViable = "group-not-viable",
    /// The device did not come back after a reset or power-state change.
    ResetTimeout = "reset-timeout",
    /// An Intel VT-d fault report.
    DmarFault = "dmar-fault",
    /// An AMD-Vi `IO_PAGE_FAULT` event.
    AmdViPageFault = "amd-vi-page-fault",
    /// VFIO refuses the device because MSIs cannot be isolated.
    NoInterruptRemapping = "no-interrupt-remapping",
    /// No IOMMU (or no VFIO IOMMU backend).
    IommuNotPresent = "iommu-not-present",
    /// The firmware demands an identity mapping for the device (RMRR/IVMD).
    Rmrr = "rmrr",
    /// QEMU refused or dropped IGD legacy mode.
    IgdLegacyUnsupported = "igd-legacy-unsupported",
    /// A `-device` property is unknown or its value does not parse.
    QemuPropertyNotFound = "qemu-property-not-found",
    /// The device or its group is held by another VM or process.
    DeviceInUse = "device-in-use",
    /// A Proxmox resource mapping no longer matches the hardware.
    MappingInvalid = "mapping-invalid",
    /// The device's option ROM failed validation or could not be read.
    RomHeaderInvalid = "rom-header-invalid",
    /// An option ROM's image chain ends early.
    RomNoImage = "rom-no-image",
    /// QEMU could not mmap a BAR and traps every access.
    BarMmapFailed = "bar-mmap-failed",
    /// No usable reset for the device.
    ResetUnsupported = "reset-unsupported",
    /// A bus/slot reset would hit devices the VM does not own.
    ResetDependsOnGroup = "reset-depends-on-group",
    /// The guest touched an MSR KVM does not emulate.
    IgnoredMsr = "ignored-msr",
    /// The out-of-tree ACS override splits IOMMU groups.
    AcsOverrideActive = "acs-override-active",
    /// The VGA arbiter moved legacy VGA to a driver.
    VgaConsoleDeactivated = "vga-console-deactivated",
    /// Interrupt remapping is on.
    IrEnabled = "ir-enabled",
    /// `kvmgt` (GVT-g) would not load: i915 set up no GVT-g device.
    GvtUnavailable = "gvt-unavailable",
}

impl fmt::Display for KindId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl KindId {
    /// The entry of [`KINDS`] for this id.
    pub fn kind(self) -> &'static Kind {
        // Every id has exactly one entry (checked by a test), so the fallback is never taken.
        KINDS.iter().find(|k| k.id == self).unwrap_or(&KINDS[0])
    }

    /// The kind's severity.
    pub fn severity(self) -> Severity {
        self.kind().severity
    }
}

/// How a line is recognized: alternatives of words that must all appear, in order, anywhere in
/// the line, ignoring ASCII case. The words are the stable part of the message as the source
/// prints it; the numbers, addresses and names between them are not matched.
#[derive(Debug)]
pub struct Matcher {
    /// Alternatives for the message itself.
    pub any: &'static [&'static [&'static str]],
    /// Alternatives for hint lines that follow the message on their own line (QEMU's
    /// `error_append_hint`); they take the device of the message before them.
    pub hints: &'static [&'static [&'static str]],
    /// A line holding any of these is never this kind.
    pub unless: &'static [&'static str],
}

/// What matched: the message or a hint line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hit {
    Message,
    Hint,
}

fn words_in_order(lower: &str, words: &[&str]) -> bool {
    let mut at = 0;
    for w in words {
        match lower[at..].find(w) {
            Some(p) => at += p + w.len(),
            None => return false,
        }
    }
    true
}

impl Matcher {
    /// Whether `line` is this kind (a message or one of its hint lines).
    pub fn matches(&self, line: &str) -> bool {
        self.hit(&line.to_ascii_lowercase()).is_some()
    }

    pub(crate) fn hit(&self, lower: &str) -> Option<Hit> {
        if self.unless.iter().any(|u| lower.contains(u)) {
            return None;
        }
        if self.any.iter().any(|w| words_in_order(lower, w)) {
            Some(Hit::Message)
        } else if self.hints.iter().any(|w| words_in_order(lower, w)) {
            Some(Hit::Hint)
        } else {
            None
        }
    }
}

/// One kind of log line.
#[derive(Debug)]
pub struct Kind {
    /// The stable id.
    pub id: KindId,
    /// How bad it is.
    pub severity: Severity,
    /// One line: what the kind is about.
    pub summary: &'static str,
    /// How lines of this kind are recognized.
    pub matcher: Matcher,
    /// What such a line means, in general.
    pub explanation: &'static str,
    /// What to do, in general; `{dev}` stands for the device's address (or `ADDR`).
    pub fix: &'static str,
    notes: fn(&Facts<'_>, &mut Notes),
}

/// What the notes function of a kind sees.
pub(crate) struct Facts<'a> {
    /// The device address, if the line names one.
    pub device: Option<&'a str>,
    /// The line, lowercased.
    pub lower: &'a str,
    /// Host-wide facts.
    pub host: Option<&'a HostContext>,
    /// Facts about the device, when the host has it.
    pub dev: Option<&'a DeviceFacts>,
}

impl Facts<'_> {
    fn addr(&self) -> &str {
        self.device.unwrap_or("ADDR")
    }
}

/// Sentences a kind adds for this line and host.
#[derive(Default)]
pub(crate) struct Notes {
    pub explain: Vec<String>,
    pub fix: Vec<String>,
    /// Replaces the general fix when the host facts make it wrong.
    pub fix_instead: Option<String>,
}

impl Kind {
    /// The explanation and fix of a line of this kind about `device`, with what `ctx` knows
    /// about the host and the device. A device the context does not have gets no host claims.
    pub fn explain(
        &self,
        line: &str,
        device: Option<&str>,
        ctx: Option<&HostContext>,
    ) -> (String, String) {
        let lower = line.to_ascii_lowercase();
        let facts = Facts {
            device,
            lower: &lower,
            host: ctx,
            dev: ctx.zip(device).and_then(|(c, d)| c.device(d)),
        };
        let mut notes = Notes::default();
        (self.notes)(&facts, &mut notes);
        let mut explanation = self.explanation.to_string();
        for n in &notes.explain {
            explanation.push(' ');
            explanation.push_str(n);
        }
        let mut fix = notes
            .fix_instead
            .unwrap_or_else(|| self.fix.replace("{dev}", facts.addr()));
        for n in &notes.fix {
            fix.push(' ');
            fix.push_str(n);
        }
        (explanation, fix)
    }

    pub(crate) fn hit(&self, lower: &str) -> Option<Hit> {
        self.matcher.hit(lower)
    }
}

/// Lines that are either `no-interrupt-remapping` or `rmrr` (kernels up to about 6.5 fail both
/// the same way); the log or the host decides.
pub(crate) const IOMMU_SET_AMBIGUOUS: &[&str] = &[
    "failed to set iommu for container",
    "operation not permitted",
];

/// The hint `Verify all devices in group N are bound to vfio-<bus> or pci-stub and not already
/// in use` follows both `device-in-use` and `group-not-viable` errors; it takes the kind of the
/// error before it.
pub(crate) const VERIFY_GROUP_HINT: &[&str] = &["verify all devices in group", "are bound to"];

fn no_notes(_: &Facts<'_>, _: &mut Notes) {}

fn vm_list(dev: &DeviceFacts) -> String {
    dev.vms
        .iter()
        .map(|v| format!("VM {} ({})", v.vmid, v.key))
        .collect::<Vec<_>>()
        .join(", ")
}

fn role_words(role: &str) -> &str {
    match role {
        "default-route-nic" => "the NIC behind the host's default route",
        "host-network-nic" => "a NIC the host's own network runs over",
        "root-disk-controller" => "the controller of the host's root disk",
        "usb-controller-with-input" => "a USB controller with the host's keyboard or mouse",
        "only-usb-controller" => "the host's only USB controller",
        "boot-vga" => "the host's boot display",
        "platform-device" => "a chipset function the host relies on",
        other => other,
    }
}

fn group_sentence(f: &Facts<'_>, dev: &DeviceFacts) -> Option<String> {
    let group = dev.iommu_group?;
    if dev.group_members.is_empty() {
        return Some(format!(
            "On this host {} is alone in IOMMU group {group}.",
            f.addr()
        ));
    }
    let members: Vec<String> = dev
        .group_members
        .iter()
        .map(|m| {
            if m.roles.is_empty() {
                m.address.clone()
            } else {
                let roles: Vec<&str> = m.roles.iter().map(|r| role_words(r)).collect();
                format!("{} ({})", m.address, roles.join(", "))
            }
        })
        .collect();
    Some(format!(
        "On this host its IOMMU group {group} also holds {}.",
        members.join(", ")
    ))
}

fn reset_sentence(f: &Facts<'_>, dev: &DeviceFacts) -> Option<String> {
    match dev.reset_methods.as_deref()? {
        [] => Some(format!(
            "On this host {} has no reset method (its reset_method lists none).",
            f.addr()
        )),
        methods => Some(format!(
            "On this host the kernel lists the reset methods {} for {}.",
            methods.join(", "),
            f.addr()
        )),
    }
}

fn notes_device_in_use(f: &Facts<'_>, n: &mut Notes) {
    if let Some(dev) = f.dev
        && !dev.vms.is_empty()
    {
        n.explain.push(format!(
            "On this host {} is named by {}.",
            f.addr(),
            vm_list(dev)
        ));
    }
}

fn notes_mapping(f: &Facts<'_>, n: &mut Notes) {
    if let Some(dev) = f.dev
        && let Some(g) = dev.iommu_group
    {
        n.explain
            .push(format!("On this host {} is in IOMMU group {g}.", f.addr()));
    }
}

fn notes_group(f: &Facts<'_>, n: &mut Notes) {
    let Some(dev) = f.dev else { return };
    if let Some(s) = group_sentence(f, dev) {
        n.explain.push(s);
    }
    let critical: Vec<&str> = dev
        .group_members
        .iter()
        .filter(|m| m.roles.iter().any(|r| r != "boot-vga"))
        .map(|m| m.address.as_str())
        .collect();
    if dev.group_members.iter().any(|m| {
        m.roles
            .iter()
            .any(|r| r == "default-route-nic" || r == "host-network-nic")
    }) {
        n.explain.push(
            "Binding that group to vfio-pci takes the host's network away with it.".to_string(),
        );
    }
    if !critical.is_empty() {
        n.fix.push(format!(
            "Here the group holds host-critical functions ({}), so setup-host will refuse: pass a \
             different device (for audio, a USB device instead of the controller) or move the card.",
            critical.join(", ")
        ));
    }
}

fn notes_reset_depends(f: &Facts<'_>, n: &mut Notes) {
    if let Some(dev) = f.dev {
        n.explain.extend(reset_sentence(f, dev));
        n.explain.extend(group_sentence(f, dev));
    }
}

fn notes_reset_unsupported(f: &Facts<'_>, n: &mut Notes) {
    if let Some(dev) = f.dev {
        n.explain.extend(reset_sentence(f, dev));
    }
}

fn notes_reset_timeout(f: &Facts<'_>, n: &mut Notes) {
    if f.lower.contains("vfio_bar_restore") {
        n.explain.push(
            "This line is the symptom: vfio-pci found the BARs cleared after a reset and restored them."
                .to_string(),
        );
    }
    if let Some(dev) = f.dev {
        n.explain.extend(reset_sentence(f, dev));
    }
    if let Some((major, minor)) = f.host.and_then(HostContext::kernel_version)
        && (major, minor) < (5, 15)
    {
        n.fix.push(format!(
            "This host's kernel ({major}.{minor}) has no reset_method file; it arrived in 5.15."
        ));
    }
}

fn notes_rmrr(f: &Facts<'_>, n: &mut Notes) {
    if f.lower.contains("relaxable") {
        n.explain.push(
            "This line says `intel_iommu=relax_rmrr` is in effect: the kernel ignores the RMRRs, \
             with the risk it names."
                .to_string(),
        );
    }
}

fn notes_no_ir(f: &Facts<'_>, n: &mut Notes) {
    match f.host.and_then(|h| h.interrupt_remapping) {
        Some(true) => {
            n.explain.push(
                "Interrupt remapping is on on this host, so allow_unsafe_interrupts is not the answer: \
                 the line is from another boot or configuration, or the refusal comes from an RMRR."
                    .to_string(),
            );
            n.fix_instead = Some(
                "Do not set allow_unsafe_interrupts. Look for an rmrr line in the same log, and run \
                 `vfiokit verify` to check the current configuration."
                    .to_string(),
            );
        }
        Some(false) => n
            .explain
            .push("This host has no interrupt remapping.".to_string()),
        None => {}
    }
}

fn notes_iommu(f: &Facts<'_>, n: &mut Notes) {
    if f.lower.contains("probe of") || f.lower.contains("probe with driver") {
        n.explain.push(
            "vfio-pci failing to probe with -22 (EINVAL) is the usual sign that the device has no IOMMU group."
                .to_string(),
        );
    }
    match f.host.and_then(|h| h.iommu_enabled) {
        Some(true) => n.explain.push(
            "The IOMMU is active on this host now: the line is from an earlier boot, or the vfio modules were not loaded."
                .to_string(),
        ),
        Some(false) => n
            .explain
            .push("This host has no active IOMMU.".to_string()),
        None => {}
    }
}

fn notes_igd(f: &Facts<'_>, n: &mut Notes) {
    if f.lower.contains("no rom") {
        n.explain.push(
            "Here the device has no ROM: legacy mode needs the VBIOS from a romfile.".to_string(),
        );
    }
    let Some(dev) = f.dev else { return };
    if let [vm] = dev.vms.as_slice() {
        n.fix_instead = Some(
            KindId::IgdLegacyUnsupported
                .kind()
                .fix
                .replace("{dev}", f.addr())
                .replace("VMID", &vm.vmid.to_string()),
        );
        if let Some(rom) = &vm.romfile {
            n.explain.push(format!(
                "VM {} ({}) gives it romfile={rom}.",
                vm.vmid, vm.key
            ));
        }
    }
}

fn notes_bar(f: &Facts<'_>, n: &mut Notes) {
    // Only `can't reserve` is about someone else holding the range (the boot framebuffer, a
    // host driver); the allocation failures are about the range itself.
    let allocation = [
        "no space",
        "not assigned",
        "can't assign",
        "can't claim",
        "failed to assign",
        "bogus alignment",
    ]
    .iter()
    .any(|w| f.lower.contains(w));
    let rom = f.lower.contains(": rom [") || f.lower.contains(" rom [");
    if allocation {
        n.explain.push(
            "Here the kernel found no valid place for the resource (an allocation failure): no \
             framebuffer or host driver is involved."
                .to_string(),
        );
    }
    if rom {
        n.explain.push(
            "The resource is the device's expansion ROM: only its ROM cannot be read, so a VM \
             needing it must get a romfile=."
                .to_string(),
        );
    }
    if allocation {
        n.fix_instead = Some(if rom {
            format!(
                "Give the VM the ROM from a file: romfile= on {}'s hostpci entry (`vfiokit vbios` \
                 builds and checks one). If the device needs its ROM BAR on the host, try \
                 `pci=realloc` or enable Above 4G decoding in the firmware.",
                f.addr()
            )
        } else {
            "Enable Above 4G decoding in the firmware, keep Resizable BAR settings consistent, \
             or try `pci=realloc` on the kernel command line."
                .to_string()
        });
        return;
    }
    if let Some(dev) = f.dev
        && dev.boot_vga
        && f.lower.contains("can't reserve")
    {
        n.explain.push(format!(
            "{} is this host's boot VGA device, so the firmware framebuffer sits in its BAR: that is the usual cause.",
            f.addr()
        ));
        // What releases the framebuffer depends on the kernel (gpu-passthrough.md §2).
        let release = match f.host.and_then(HostContext::kernel_version) {
            Some((maj, min)) if (maj, min) >= (6, 0) => Some(format!(
                "on this host's Linux {maj}.{min} vfio-pci removes the firmware framebuffer itself \
                 when it binds the device, so no kernel parameter is needed: the line comes from \
                 a boot where {0} was bound late (by Proxmox at VM start) or not to vfio-pci",
                f.addr()
            )),
            Some((maj, min)) if (maj, min) >= (5, 15) => Some(format!(
                "on this host's Linux {maj}.{min} that is `initcall_blacklist=sysfb_init` on the \
                 kernel command line (`video=efifb:off` no longer helps since 5.15); the host \
                 then has no console on that screen"
            )),
            Some((maj, min)) => Some(format!(
                "on this host's Linux {maj}.{min} that is `video=efifb:off` on the kernel command \
                 line (`video=vesafb:off` after a legacy BIOS boot); the host then has no console \
                 on that screen"
            )),
            None => None,
        };
        if let Some(release) = release {
            n.fix_instead = Some(format!(
                "`vfiokit setup-host --device {0}` binds it to vfio-pci at boot and plans what \
                 releases the framebuffer: {release}.",
                f.addr()
            ));
        }
    }
}

fn notes_fault(f: &Facts<'_>, n: &mut Notes) {
    if f.lower.contains("callbacks suppressed") {
        n.explain
            .push("This line counts further faults the kernel did not print.".to_string());
    }
    let Some(dev) = f.dev else { return };
    if dev.vms.is_empty() {
        n.explain.push(format!(
            "No VM config on this host names {}: the fault comes from the host's own use of it.",
            f.addr()
        ));
    } else {
        n.explain.push(format!(
            "{} is passed through ({}): the fault comes from the guest's use of it or a reset that did not take.",
            f.addr(),
            vm_list(dev)
        ));
    }
    n.explain.extend(reset_sentence(f, dev));
    if dev.boot_vga {
        n.explain
            .push(format!("{} is this host's boot VGA device.", f.addr()));
    }
}

fn notes_rom(f: &Facts<'_>, n: &mut Notes) {
    if f.lower.contains("got 0xffff") {
        n.explain
            .push("0xffff: the ROM could not be read at all.".to_string());
    } else if f.lower.contains("got 0x0000") {
        n.explain.push("0x0000: the ROM is empty.".to_string());
    }
    let Some(dev) = f.dev else { return };
    if dev.rom_bar == Some(false) {
        n.explain.push(format!(
            "{} has no ROM BAR: there is no option ROM on the device to read, and what the kernel read{} is not one.",
            f.addr(),
            if dev.boot_vga {
                " (the legacy shadow copy at 0xC0000 of the boot VGA device)"
            } else {
                ""
            }
        ));
    } else if dev.boot_vga {
        n.explain.push(format!(
            "{} is this host's boot VGA device: the kernel reads its shadowed copy, which is not a clean ROM.",
            f.addr()
        ));
    }
    let romfile = dev
        .vms
        .iter()
        .find_map(|v| v.romfile.as_ref().map(|r| (v, r)));
    if let Some((vm, rom)) = romfile.filter(|(v, _)| v.romfile_present == Some(false)) {
        n.explain.push(format!(
            "VM {} gives it romfile={rom} ({}), but that file does not exist: QEMU will not start the VM until it does.",
            vm.vmid, vm.key
        ));
        n.fix_instead = Some(format!(
            "Put the ROM at /usr/share/kvm/{rom} (extracted from the vendor's firmware and checked with `vfiokit vbios check`), or remove romfile= from VM {} {}.",
            vm.vmid, vm.key
        ));
    } else if let Some((vm, rom)) = romfile {
        n.explain.push(format!(
            "VM {} gives it romfile={rom} ({}), so this message is harmless: QEMU loads the ROM from that file, not from the device.",
            vm.vmid, vm.key
        ));
        n.fix_instead = Some(format!(
            "Nothing to do for VM {}; to check the file itself: `vfiokit vbios check /usr/share/kvm/{rom}`.",
            vm.vmid
        ));
    } else if let Some(vm) = dev.vms.iter().find(|v| v.rombar == Some(false)) {
        n.explain.push(format!(
            "VM {} sets rombar=0 ({}), so the guest does not see the device ROM: harmless for that VM.",
            vm.vmid, vm.key
        ));
        n.fix_instead = Some(format!("Nothing to do for VM {}.", vm.vmid));
    }
}

fn notes_msr(f: &Facts<'_>, n: &mut Notes) {
    if f.lower.contains("ignored") {
        n.explain.push(
            "This line says `ignored`: kvm.ignore_msrs=1 is set and the access was dropped."
                .to_string(),
        );
    } else if f.lower.contains("unhandled") {
        n.explain.push(
            "This line says `unhandled`: unless kvm.ignore_msrs=1 is set, the guest got a #GP fault."
                .to_string(),
        );
    }
}

fn notes_vga(f: &Facts<'_>, n: &mut Notes) {
    if let Some(dev) = f.dev
        && dev.boot_vga
    {
        n.explain.push(format!(
            "{} is this host's boot VGA device: the host's local console is gone from it.",
            f.addr()
        ));
    }
}

/// The kind table. It is also the match order: the first kind whose matcher takes a line wins,
/// so the more specific kinds come first (`device-in-use` before `group-not-viable`,
/// `reset-depends-on-group` before `reset-unsupported`).
pub static KINDS: &[Kind] = &[
    Kind {
        id: KindId::DeviceInUse,
        severity: Severity::Error,
        summary: "the device or its IOMMU group is already held by another VM or process",
        matcher: Matcher {
            any: &[
                &["pci device '", "already in use by"],
                &["pci device '", "is currently reserved for use by vmid"],
                &["could not find a free device for 'hostpci"],
                &["/dev/vfio/", "device or resource busy"],
                &["error getting device from group", "device or resource busy"],
                &["pci device ", " is in use"],
                &["mediated device ", " is in use by driver"],
            ],
            hints: &[],
            unless: &[],
        },
        explanation: "Another running VM or a leftover QEMU process holds this PCI device or its \
            /dev/vfio group, or qemu-server has it reserved for another VM: a group can be open in \
            one process only.",
        fix: "Stop the other VM (or the stale kvm process: `qm list`, `ps -ef | grep kvm`), or \
            remove the device from one of the two VM configs; for a resource mapping, add another \
            device to the mapping so qemu-server can pick a free one.",
        notes: notes_device_in_use,
    },
    Kind {
        id: KindId::MappingInvalid,
        severity: Severity::Error,
        summary: "a Proxmox resource mapping no longer matches the hardware",
        matcher: Matcher {
            any: &[
                &["pci device mapping invalid"],
                &["pci device mapping not found for"],
            ],
            hints: &[],
            unless: &[],
        },
        explanation: "The VM uses a Proxmox resource mapping that does not match this node's \
            hardware any more (vendor/device or subsystem id, IOMMU group, or the device is gone): \
            the card was moved or replaced, or a BIOS/kernel update or an ACS change renumbered the \
            groups; or the mapping has no entry for this node.",
        fix: "Update the mapping in Datacenter → Resource Mappings (/etc/pve/mapping/pci.cfg); \
            `vfiokit mapping plan --name ID --device VID:DID --node NAME=ROOT…` plans one from the \
            nodes' current hardware.",
        notes: notes_mapping,
    },
    Kind {
        id: KindId::GroupNotViable,
        severity: Severity::Error,
        summary: "the IOMMU group still holds a device bound to a host driver",
        matcher: Matcher {
            any: &[
                &["group ", " is not viable"],
                &["added to live group"],
                &["can't unbind/bind pci group to vfio"],
                &["cannot bind ", " to vfio"],
                &["error getting device from group"],
            ],
            hints: &[
                &["please ensure all devices within the iommu_group are bound"],
                VERIFY_GROUP_HINT,
            ],
            unless: &[],
        },
        explanation: "VFIO gives a VM whole IOMMU groups only: another device in this device's \
            group is still bound to a host driver (not vfio-pci), so QEMU cannot open the group.",
        fix: "`vfiokit setup-host --device {dev}` plans binding every endpoint of its group to \
            vfio-pci, and refuses when the group holds something the host needs; otherwise move \
            the card to a slot with its own group (the ACS override only as a last resort: it \
            weakens isolation).",
        notes: notes_group,
    },
    Kind {
        id: KindId::ResetDependsOnGroup,
        severity: Severity::Warning,
        summary: "a bus or slot reset would also hit devices the VM does not own",
        matcher: Matcher {
            any: &[
                &["cannot reset device", "depends on group", "not owned"],
                &["hot reset info failed"],
            ],
            hints: &[],
            unless: &[],
        },
        explanation: "QEMU could reset this function only with a bus or slot reset, and that \
            reset would also hit a device in another IOMMU group the VM does not own, so it \
            skipped the reset: the function keeps the state its last user left.",
        fix: "Give every function behind that bus (the GPU with its HDMI audio, all functions of \
            an APU) to the same VM, or drop this function from the VM if the guest does not need \
            it; many devices work without a reset.",
        notes: notes_reset_depends,
    },
    Kind {
        id: KindId::ResetUnsupported,
        severity: Severity::Warning,
        summary: "no usable reset for the device",
        matcher: Matcher {
            any: &[
                &["error writing '", "/reset'"],
                &["failed to reset pci device"],
                &["can't reset pci device"],
                &["cannot reset device", "no available reset mechanism"],
                &["unable to reset pci device"],
                &["no flr, pm reset or bus reset available"],
                &["active ", " devices on bus with ", "not doing bus reset"],
            ],
            hints: &[],
            unless: &[],
        },
        explanation: "No reset worked for the device: writing its sysfs `reset` file failed \
            (`Inappropriate ioctl for device`: every kernel reset method failed or there is \
            none), or QEMU/libvirt found no FLR, PM or bus reset. Its state can carry over from \
            one VM start to the next (the AMD GPU reset bug).",
        fix: "Often harmless: many devices work without a reset, and qemu-server 8.2.6 and later \
            carry on. For AMD GPUs use vendor-reset (reset_method `device_specific`); give the \
            device its own bus so a bus reset is possible; if it wedges, restart the host between \
            VM starts.",
        notes: notes_reset_unsupported,
    },
    Kind {
        id: KindId::ResetTimeout,
        severity: Severity::Error,
        summary: "the device did not come back after a reset or power-state change",
        matcher: Matcher {
            any: &[
                &["not ready ", "ms after "],
                &["failed to return from flr"],
                &["timed out waiting for pending transaction"],
                &["unable to change power state from", "device inaccessible"],
                &["can't change power state from", "config space inaccessible"],
                &["vfio", "refused to change power state"],
                &["unable to power on device, stuck in d"],
                &["vfio_bar_restore", "reset recovery - restoring bars"],
            ],
            hints: &[],
            unless: &[],
        },
        explanation: "The device did not answer after a reset or a power-state change (FLR, bus \
            reset, D3→D0): its config space reads fail, the device is wedged — the typical AMD \
            reset bug, or a D3cold problem.",
        fix: "Usually only a host reboot brings it back. To avoid it: choose a working reset in \
            /sys/bus/pci/devices/{dev}/reset_method, use vendor-reset for AMD GPUs, set `options \
            vfio-pci disable_idle_d3=1`, and keep host drivers off the device.",
        notes: notes_reset_timeout,
    },
    Kind {
        id: KindId::Rmrr,
        severity: Severity::Error,
        summary: "the firmware demands an identity mapping, so the device cannot join a VM's IOMMU domain",
        matcher: Matcher {
            any: &[
                &["ineligible for iommu domain attach due to platform rmrr requirement"],
                &["firmware has requested this device have a 1:1 iommu mapping"],
                &["failed to set group container", "invalid argument"],
                &["assuming all rmrrs are relaxable"],
            ],
            hints: &[],
            unless: &[],
        },
        explanation: "The firmware (an Intel RMRR or AMD IVMD entry) requires this device to keep \
            a 1:1 DMA mapping of some host memory, so the kernel refuses to attach it to a VM's \
            IOMMU domain.",
        fix: "Update the firmware or change its setting for that slot (HPE ProLiant: exclude the \
            slot from shared memory), move the card to another slot, or on a Proxmox kernel boot \
            with `intel_iommu=relax_rmrr` and accept its risk.",
        notes: notes_rmrr,
    },
    Kind {
        id: KindId::NoInterruptRemapping,
        severity: Severity::Error,
        summary: "VFIO refuses the device because MSIs cannot be isolated",
        matcher: Matcher {
            any: &[
                &["no interrupt remapping support"],
                &["msi interrupts are not secure"],
                &["this system bios has enabled interrupt remapping"],
                &["failed to enable irq remapping"],
                &["not enabling interrupt remapping"],
            ],
            hints: &[],
            unless: &[],
        },
        explanation: "VFIO will not give the device to a VM because the platform cannot isolate \
            its MSI interrupts: interrupt remapping is off (disabled in the firmware, or by the \
            kernel for a broken BIOS).",
        fix: "Enable VT-d / AMD-Vi interrupt remapping (and x2APIC) in the firmware. Only on \
            hardware without it, `vfio_iommu_type1.allow_unsafe_interrupts=1` — `vfiokit \
            setup-host --device {dev}` proposes it only on such hosts, as a risk.",
        notes: notes_no_ir,
    },
    Kind {
        id: KindId::IommuNotPresent,
        severity: Severity::Error,
        summary: "no IOMMU (or no VFIO IOMMU backend) on the host",
        matcher: Matcher {
            any: &[
                &["iommu not present"],
                &["cannot open iommu_group"],
                &["no iommu_group found"],
                &["no available iommu models"],
                &["host doesn't support vfio pci passthrough"],
                &["host doesn't support passthrough of host pci devices"],
                &["vfio device assignment is currently not supported"],
                &["dmar: iommu disabled"],
                &["vfio-pci", "probe of ", "failed with error -22"],
                &["probe with driver vfio-pci failed with error -22"],
            ],
            hints: &[],
            unless: &[],
        },
        explanation: "There is no active IOMMU, or no VFIO IOMMU driver: VT-d/AMD-Vi is off in \
            the firmware, the kernel did not turn it on (`intel_iommu=on` missing on kernels \
            before 6.8, or `intel_iommu=off`), or the vfio modules are not loaded.",
        fix: "Enable VT-d (Intel) or SVM + IOMMU (AMD) in the firmware; `vfiokit setup-host \
            --device {dev}` plans the kernel command line and the vfio modules.",
        notes: notes_iommu,
    },
    Kind {
        id: KindId::IgdLegacyUnsupported,
        severity: Severity::Error,
        summary: "IGD legacy mode (VBIOS, LPC bridge, OpRegion) was refused or dropped",
        matcher: Matcher {
            any: &[
                &["igd device ", "cannot support legacy mode"],
                &["igd device ", "is unsupported in legacy mode"],
                &["igd device ", "legacy mode disabled"],
                &["unsupported igd gms value"],
                &["cannot support igd opregion feature"],
                &["does not support requested igd opregion feature"],
                &["device has no rom"],
                &["unable to enable vga access"],
                &["machine is not i440fx"],
                &["cannot create lpc bridge due to existing device"],
                &["igd lpc is not supported on hotplugged device"],
                &["igd lpc bridge access is not supported by kernel"],
                &["igd host bridge access is not supported by kernel"],
                &["failed to create/modify lpc bridge for igd"],
                &["failed to modify host bridge for igd"],
                &["failed to read igd opregion"],
                &["x-igd-gms is not supported on this device"],
                &["opregion is not supported on hotplugged device"],
                &["does not supports igd opregion feature"],
                &["does not support igd opregion feature"],
                &["legacy igd assignment"],
                &["only one device can be assigned in legacy-igd mode"],
            ],
            hints: &[&["igd legacy mode disabled"]],
            unless: &[],
        },
        explanation: "QEMU refused or dropped IGD legacy mode, the mode that makes the iGPU the \
            VM's primary VGA with its VBIOS. It needs an i440fx machine, the iGPU at guest address \
            00:02.0, a VBIOS (ROM BAR or romfile), VGA access, nothing at 00:1f.0, and a \
            generation this QEMU supports.",
        fix: "`vfiokit setup-vm --vmid VMID --igd {dev}` plans a VM config that meets these \
            (i440fx, vga none, legacy-igd=1, romfile); `vfiokit vbios extract FIRMWARE --device \
            VID:DID --rom OUT` makes the ROM. Newer iGPUs need UPT mode (x-igd-opregion=on with a \
            UEFI GOP ROM) or a newer QEMU.",
        notes: notes_igd,
    },
    Kind {
        id: KindId::QemuPropertyNotFound,
        severity: Severity::Error,
        summary: "a -device option is unknown or its value does not parse",
        matcher: Matcher {
            any: &[
                &["property '", "' not found"],
                &["property ", "doesn't take value"],
                &["property '", "can't find value"],
                &["property '", "can't take value"],
                &["parameter '", "' expects "],
                &["invalid parameter type for '", "expected"],
            ],
            hints: &[],
            unless: &[],
        },
        explanation: "QEMU rejected a -device option: the property does not exist in this QEMU \
            version (x-igd-legacy-mode before 10.0, for one) or its value does not parse.",
        fix: "Check the spelling and the value against `kvm -device vfio-pci,help`; options \
            passed with `args:` in the VM config are not checked by Proxmox — `vfiokit vm lint` \
            the config, and fix or drop the option.",
        notes: no_notes,
    },
    Kind {
        id: KindId::BarMmapFailed,
        severity: Severity::Warning,
        summary: "QEMU could not map a BAR into the guest and traps every access instead",
        matcher: Matcher {
            any: &[&["bar", "performance may be slow"]],
            hints: &[],
            unless: &[],
        },
        explanation: "QEMU could not mmap one of the device's BARs and traps every guest access \
            to it instead: the guest driver gets very slow or fails. It almost always follows a \
            `can't reserve` line for the same device.",
        fix: "Fix the BAR reservation (the bar-cant-reserve line for {dev}): keep the host's \
            framebuffer and drivers off the device.",
        notes: no_notes,
    },
    Kind {
        id: KindId::BarCantReserve,
        severity: Severity::Error,
        summary: "a BAR's address range is held by someone else or never got an address",
        matcher: Matcher {
            any: &[
                &["bar ", "can't reserve"],
                &["device not available (can't reserve"],
                &["not claimed; can't enable device"],
                &["not assigned; can't enable device"],
                &["bar ", "no space for"],
                &["bar ", "failed to assign"],
                &["rom ", ": failed to assign"],
                &["can't assign; no space"],
                &["can't assign; bogus alignment"],
                &["bar ", "(bogus alignment)"],
                &["can't claim; "],
                &["resource sanity check: requesting", "spans more than"],
                &["mapping multiple bars"],
            ],
            hints: &[],
            // Bridge windows (resources 13 to 16; named `bridge window` since 6.8) are not
            // device BARs: failing to size one at boot is common and harmless here.
            unless: &[
                "bridge window [",
                "bar 13:",
                "bar 14:",
                "bar 15:",
                "bar 16:",
            ],
        },
        explanation: "The kernel could not reserve one of the device's BAR address ranges, or \
            never assigned it: usually the host's boot framebuffer (efifb/simplefb/vesafb, \
            `BOOTFB` in /proc/iomem) or a host driver still owns the GPU's memory, so QEMU cannot \
            map it. `no space`, `not assigned` or `can't claim` mean the firmware or the kernel \
            found no room for the BAR.",
        fix: "`vfiokit setup-host --device {dev}` plans binding it to vfio-pci at boot; keep the \
            host's framebuffer off the card too: boot the host on another GPU, or add \
            `initcall_blacklist=sysfb_init` (kernels 5.15 and later, where `video=efifb:off` no \
            longer helps). For no space / not assigned: enable Above 4G decoding, keep Resizable \
            BAR settings consistent, or try `pci=realloc`.",
        notes: notes_bar,
    },
    Kind {
        id: KindId::DmarFault,
        severity: Severity::Error,
        summary: "an Intel VT-d fault report (DMA or interrupt remapping)",
        matcher: Matcher {
            any: &[
                &["drhd: handling fault status reg"],
                &["request device [", "fault addr"],
                &["request device [", "fault index"],
                &["intr-remap", "request device ["],
                &["[fault reason"],
                &["dump ", " table entries for iova"],
                &["dmar_fault", "callbacks suppressed"],
            ],
            hints: &[],
            unless: &[],
        },
        explanation: "The Intel IOMMU (VT-d) blocked a DMA or an interrupt from the device named \
            in brackets: it used an address its IOMMU domain does not map. For a passed-through \
            device that points at the guest driver, a reset that did not take, or a missing RMRR \
            mapping (iGPU, USB); for a host device, at a driver or firmware bug.",
        fix: "Find out which device it is. Passed through: make sure it resets cleanly (look for \
            reset lines) and the guest driver matches; a host device: update firmware and \
            driver, `iommu=pt` reduces host-side faults, `intel_iommu=igfx_off` for an iGPU the \
            host keeps.",
        notes: notes_fault,
    },
    Kind {
        id: KindId::AmdViPageFault,
        severity: Severity::Error,
        summary: "an AMD IOMMU IO_PAGE_FAULT event",
        matcher: Matcher {
            any: &[
                &["event logged [io_page_fault"],
                &["amd_iommu_report_page_fault", "callbacks suppressed"],
            ],
            hints: &[],
            unless: &[],
        },
        explanation: "The AMD IOMMU blocked a DMA from the device: it used an address its IOMMU \
            domain does not map. For a passed-through device that points at the guest driver or \
            a reset that did not take (domain 0x0000: the device did DMA while in no domain, for \
            one after its VM released it, as with the AMD GPU reset bug); for a host device, at a driver or firmware bug.",
        fix: "Find out which device it is. Passed through: make sure it resets cleanly between \
            VM starts (vendor-reset, removing and rescanning the device, or a host reboot); a host \
            device: update firmware and driver, `iommu=pt` reduces host-side faults.",
        notes: notes_fault,
    },
    Kind {
        id: KindId::RomHeaderInvalid,
        severity: Severity::Warning,
        summary: "the device's option ROM (VBIOS) fails validation or cannot be read",
        matcher: Matcher {
            any: &[
                &["invalid pci rom header signature"],
                &["invalid pci rom data signature"],
                &["cannot read device rom"],
                &["error getting rom info"],
                &["error reading device rom"],
            ],
            hints: &[
                &["device option rom contents are probably invalid"],
                &["skip option rom probe with rombar=0"],
            ],
            unless: &[],
        },
        explanation: "The device's option ROM (VBIOS) failed validation: the kernel found no \
            0xaa55 signature (0xffff: unreadable, 0x0000: empty, anything else: not a ROM) or no \
            PCIR structure, or QEMU could not read the ROM. A guest that needs this ROM gets no \
            usable VBIOS (black screen, no POST).",
        fix: "Give the VM a clean ROM with `romfile=` (dumped while the card is not the host's \
            boot GPU, or made with `vfiokit vbios extract FIRMWARE --device VID:DID --rom OUT` \
            and checked with `vfiokit vbios check FILE`), or set `rombar=0` when the guest does \
            not need it.",
        notes: notes_rom,
    },
    Kind {
        id: KindId::RomNoImage,
        severity: Severity::Warning,
        summary: "a ROM image chain ends early",
        matcher: Matcher {
            any: &[&["no more image in the pci rom"]],
            hints: &[],
            unless: &[],
        },
        explanation: "An image of the device's option ROM says another image follows, but the \
            next one has no 0xaa55 signature: the ROM is truncated or shadowed. Harmless on a \
            host-driver boot; a guest may get an incomplete VBIOS.",
        fix: "Give the VM a complete ROM with `romfile=` and check it with `vfiokit vbios check \
            FILE`.",
        notes: notes_rom,
    },
    Kind {
        id: KindId::IgnoredMsr,
        severity: Severity::Warning,
        summary: "the guest touched a model-specific register KVM does not emulate",
        matcher: Matcher {
            any: &[
                &["ignored rdmsr"],
                &["ignored wrmsr"],
                &["unhandled rdmsr"],
                &["unhandled wrmsr"],
            ],
            hints: &[],
            unless: &[],
        },
        explanation: "The guest read or wrote a model-specific register KVM does not emulate. \
            With `kvm.ignore_msrs=1` the access is dropped and the line is noise; without it the \
            guest gets a #GP fault (a Windows BSOD, a crashing driver).",
        fix: "If the guest works, nothing; `options kvm ignore_msrs=1 report_ignored_msrs=0` in \
            /etc/modprobe.d/kvm.conf hides the noise. If the guest crashes, set \
            `ignore_msrs=1`.",
        notes: notes_msr,
    },
    Kind {
        id: KindId::AcsOverrideActive,
        severity: Severity::Warning,
        summary: "IOMMU groups are being split by the out-of-tree ACS override patch",
        matcher: Matcher {
            any: &[
                &["pcie acs overrides enabled"],
                &["out of pcie acs override slots"],
                &["pcie acs id parse error"],
                &["pcie acs invalid id"],
                &["kernel command line:", "pcie_acs_override="],
            ],
            hints: &[],
            unless: &[],
        },
        explanation: "The ACS override (`pcie_acs_override=`) is active: IOMMU groups are split \
            as if the PCIe ports isolated their devices, which the hardware does not promise, so \
            devices may DMA to each other around the IOMMU.",
        fix: "Keep it only if a split you need depends on it; when the groups are the same \
            without it, `vfiokit verify --fix` plans removing it from the kernel command line.",
        notes: no_notes,
    },
    Kind {
        id: KindId::VgaConsoleDeactivated,
        severity: Severity::Info,
        summary: "the VGA arbiter moved legacy VGA to a driver",
        matcher: Matcher {
            any: &[
                &["vgaarb: deactivate vga console"],
                &["vgaarb: vga decodes changed"],
                &["vgaarb: changed vga decodes"],
                &["vgaarb: device changed decodes"],
            ],
            hints: &[],
            unless: &[],
        },
        explanation: "The VGA arbiter moved legacy VGA decoding: a driver (for passthrough, \
            vfio-pci) claimed the device, and the kernel console left it. It tells which GPU the \
            driver took.",
        fix: "Nothing to do.",
        notes: notes_vga,
    },
    Kind {
        id: KindId::IrEnabled,
        severity: Severity::Info,
        summary: "interrupt remapping is on",
        matcher: Matcher {
            any: &[
                &["enabled irq remapping in ", " mode"],
                &["amd-vi: interrupt remapping enabled"],
            ],
            hints: &[],
            unless: &[],
        },
        explanation: "Interrupt remapping is on, so VFIO can isolate device interrupts: \
            `allow_unsafe_interrupts` is not needed.",
        fix: "Nothing to do; if the modprobe configuration still sets \
            `allow_unsafe_interrupts=1`, `vfiokit verify --fix` plans removing it.",
        notes: no_notes,
    },
    Kind {
        id: KindId::GvtUnavailable,
        severity: Severity::Error,
        summary: "kvmgt (GVT-g) would not load: i915 set up no GVT-g device",
        matcher: Matcher {
            any: &[
                &["insert module 'kvmgt'", "no such device"],
                &["could not insert 'kvmgt'", "no such device"],
            ],
            hints: &[],
            unless: &[],
        },
        explanation: "kvmgt, the module that offers GVT-g vGPUs, registers with i915's GVT-g \
            support; on kernels from before the 2022 GVT refactor (Proxmox VE 7's 5.15 among \
            them) it refuses to load with \"No such device\" when i915 set up no GVT-g device: \
            `i915.enable_gvt=1` is missing from the kernel command line, the iGPU is not one \
            GVT-g supports (Broadwell to Comet Lake, 5th to 10th gen Core), or i915 does not \
            drive it (blacklisted, or bound to vfio-pci). Without kvmgt the iGPU offers no \
            `mdev_supported_types`, so no VM can get a vGPU.",
        fix: "Put `i915.enable_gvt=1` on the kernel command line and reboot (`vfiokit \
            setup-host --share 00:02.0` plans it together with kvmgt); check that i915 drives \
            the iGPU (`lspci -k -s 00:02.0`). iGPUs from 11th gen on have no GVT-g: they are \
            shared by SR-IOV (`vfiokit setup-host --share 00:02.0 --vfs N`).",
        notes: no_notes,
    },
];
