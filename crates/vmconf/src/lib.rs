//! Lossless Proxmox VE VM configs, with Proxmox's own rules and messages.
//!
//! Proxmox VE keeps each VM's configuration in `/etc/pve/qemu-server/<vmid>.conf` (really
//! `/etc/pve/nodes/<node>/qemu-server/<vmid>.conf`), written and read by qemu-server's
//! `write_vm_config` and `parse_vm_config`. The file is a list of `key: value` lines, a leading
//! block of `#` lines that is the VM's description (URI-escaped), and sections: `[PENDING]`,
//! `[special:cloudinit]`/`[special:fleecing]`, and one `[name]` per snapshot.
//!
//! | type | models |
//! |---|---|
//! | [`VmConfig`] | the file: lines, description, sections; `get`/`set`/`remove` that keep every other byte |
//! | [`PropertyString`] | a comma list with a default key (`0000:00:02.0,legacy-igd=1`), edited in place |
//! | [`HostPci`], [`PciHostId`] | `hostpciN` |
//! | [`UsbEntry`], [`UsbHost`] | `usbN` |
//! | [`Machine`], [`Vga`] | `machine`, `vga` |
//! | [`split_args`] | `args`, split as Perl's `shellwords` splits it |
//! | [`igd_generation`] | QEMU's Intel IGD generation table, by QEMU version |
//! | [`lint`], [`legacy_igd_verdict`] | Proxmox's parse-time and start-time checks, with its messages |
//! | [`MappingFile`], [`PciMapItem`], [`UsbMapItem`] | `/etc/pve/mapping/pci.cfg`, `usb.cfg` |
//!
//! Every document keeps its bytes: `render(parse(s)) == s` for any string, including CRLF, a
//! missing final newline, unsorted or repeated keys, unknown keys and lines Proxmox rejects.
//! Proxmox would drop what it cannot read and rewrite the file sorted; this crate reports it
//! ([`lint`]) and changes only the lines it is asked to. A new key goes where Proxmox's sorted
//! writer puts it, so Proxmox's next write moves nothing.
//!
//! Lines are classified with `parse_vm_config`'s rules, in its order: blank lines; `[PENDING]`,
//! `[special:…]`, `[snapshot]` and unknown headers (whose lines Proxmox skips); `#` description
//! lines; `description:`; the unanchored `snapstate:`; `args:`; `delete:` (only in
//! `[PENDING]`); `^([a-z][a-z_\-]*\d*):\s*(.+?)\s*$`; anything else is `unable to parse config`.
//! So `hotplug:0` is a key line, `boot: ` has the value `" "`, and `boot:` (nothing after the
//! colon) is not a key line at all.
//!
//! The crate is pure: it reads and writes no files and knows nothing of sysfs. Checks that need
//! the host take plain data ([`lint_with_host`]).
//!
//! ```
//! use vfiokit_vmconf::{HostPci, LintOptions, PropertyString, Severity, VmConfig, lint};
//!
//! let text = "#win11\nbios: ovmf\nboot:\nmachine: q35\nvga: none\n";
//! let mut config = VmConfig::parse(text);
//! assert_eq!(config.render(), text);
//! assert_eq!(config.description(), "win11");
//!
//! // A new key lands where Proxmox's sorted writer puts it.
//! assert!(config.set("hostpci0", "0000:00:02.0,legacy-igd=1"));
//! assert_eq!(config.render(), "#win11\nbios: ovmf\nboot:\nhostpci0: 0000:00:02.0,legacy-igd=1\nmachine: q35\nvga: none\n");
//!
//! let found = lint(&config, &LintOptions { vmid: Some(100), qemu: Some((9, 2)) });
//! let errors: Vec<&str> = found
//!     .iter()
//!     .filter(|d| d.severity == Severity::Error)
//!     .map(|d| d.message.as_str())
//!     .collect();
//! assert_eq!(errors, ["vm 100 - unable to parse config: boot:", "legacy IGD assignment is not compatible with q35"]);
//!
//! // Edit a property string in place, then the line.
//! let mut value = PropertyString::parse(config.get("hostpci0").unwrap_or_default(), Some("host"));
//! value.set("romfile", "igd.rom");
//! config.set("hostpci0", &value.render());
//! config.set("machine", "pc-i440fx-9.2");
//! config.remove("boot");
//! let igd = HostPci::parse(config.get("hostpci0").unwrap_or_default())?;
//! assert_eq!(igd.romfile.as_deref(), Some("igd.rom"));
//! assert!(vfiokit_vmconf::legacy_igd_verdict(&config).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod canonical;
mod document;
mod hostpci;
mod igd;
mod lint;
mod machine;
mod mapping;
mod perl;
mod propstr;
mod schema;
mod usb;

pub use document::{Entry, Section, VmConfig, is_valid_key};
pub use hostpci::{HostPci, PciHostId};
pub use igd::{
    IgdGeneration, LegacySupport, NEWEST_QEMU, gms_ranges, igd_generation, parse_qemu_uint,
};
pub use lint::{
    Diagnostic, HostFunction, LintOptions, Severity, legacy_igd_verdict, lint, lint_with_host,
};
pub use machine::{Machine, MachineKind, Vga};
pub use mapping::{MappingFile, MappingSection, PciMapItem, UsbMapItem};
pub use perl::split_args;
pub use propstr::PropertyString;
pub use schema::is_known_key;
pub use usb::{UsbEntry, UsbHost};

/// Everything that can go wrong in this crate. Parsers of whole documents never fail; typed
/// values do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A value Proxmox rejects; the message is Proxmox's where it has one (`invalid key in
    /// comma-separated list property: x`, `format error` followed by `key: problem` lines).
    #[error("{message}")]
    Value {
        /// What is wrong.
        message: String,
    },
    /// `args` that Perl's `shellwords` cannot split: Proxmox then passes none of it to QEMU.
    #[error("cannot split {input:?} like Perl's shellwords ({reason}): Proxmox passes none of it")]
    Args {
        /// The `args` value.
        input: String,
        /// What is wrong (`unbalanced ' quote`, `trailing backslash`).
        reason: String,
    },
}
