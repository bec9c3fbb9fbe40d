//! Recording a host into a fixture root.
//!
//! vfiokit reads a host through a [`SysRoot`]: `/` on the host itself, or a directory with the same
//! layout. [`capture`] writes such a directory from a live host (or from another root): the sysfs
//! attributes vfiokit and `lspci -A linux-sysfs` read for PCI functions, IOMMU units and groups,
//! USB devices, network interfaces and block devices; the kernel's relative symlinks between them;
//! `/proc/cmdline`, `/proc/mounts`, routes and the kernel release; the files under `/etc` vfiokit
//! reads or edits (boot loader, modules, modprobe.d, Proxmox VM configs and mappings); the
//! `modules.alias` lines that match a captured device; the ROM files the VM configs name; and
//! `/dev/disk/by-id` links to block devices. What only a program can tell is recorded under
//! `var/lib/vfiokit/capture/`: `qemu-version` (`qemu-system-x86_64 --version`), `zpool-status`
//! (`zpool status -P`) and `kernel-log` (this boot's kernel lines about the IOMMU, VFIO, PCI, KVM,
//! interrupt remapping, BARs and ROMs, from `journalctl -k -b` or `dmesg`). Those programs run
//! only when the source is `/`; from another root, its own records are copied.
//!
//! Read-only on the source: no `rom` or `resource<N>` (BAR contents) is ever read, no link is
//! followed out of the root, and nothing is written outside the output directory, which must not
//! exist yet. What cannot be read is skipped and listed in the [`Report`] (and in
//! `CAPTURE-NOTES.txt` in the output); only a failure to write the output is an error. With
//! [`Options::anonymize`], MAC and IP addresses, serial numbers, disk ids, host names and UUIDs
//! are replaced consistently by an [`Anonymizer`].
//!
//! ```
//! use vfiokit_capture::{Options, capture};
//! use vfiokit_sysfs::SysRoot;
//!
//! let fresh = SysRoot::new(vfiokit_fakesys::testdata_dir().join("elitedesk-800-g4/fresh"))?;
//! let dir = tempfile::tempdir()?;
//! let out = dir.path().join("elitedesk");
//! let report = capture(&fresh, &out, &Options { anonymize: true })?;
//! assert!(report.skipped.is_empty(), "{report}");
//! assert!(out.join("sys/bus/pci/devices/0000:00:02.0/config").exists());
//! assert_eq!(std::fs::read_to_string(out.join("etc/hostname"))?, "host1\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod anonymize;
mod walk;

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use anonymize::{Anonymizer, HOST_NAME};
use vfiokit_sysfs::SysRoot;

/// What [`capture`] does besides copying.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Replace MAC and IP addresses, serial numbers, disk ids, host names and UUIDs, consistently.
    pub anonymize: bool,
}

/// What a capture wrote and what it could not record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The captured root.
    pub root: PathBuf,
    /// The directory written.
    pub output: PathBuf,
    /// Regular files written.
    pub files: usize,
    /// Symbolic links made.
    pub links: usize,
    /// Whether identifying data was replaced.
    pub anonymized: bool,
    /// What was not recorded, and why: one line each, naming the path or the program.
    pub skipped: Vec<String>,
}

/// `CAPTURE-NOTES.txt`: a summary line, then one `skipped:` line per note.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "vfiokit capture of {} ({} files, {} links){}",
            self.root.display(),
            self.files,
            self.links,
            if self.anonymized { ", anonymized" } else { "" }
        )?;
        for n in &self.skipped {
            writeln!(f, "skipped: {n}")?;
        }
        Ok(())
    }
}

/// Why a capture stopped. Unreadable parts of the source are not errors (see [`Report::skipped`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The output directory exists: a capture never writes into an existing directory.
    #[error("{path} already exists: capture writes a new directory and never into an existing one")]
    OutputExists {
        /// The output directory.
        path: PathBuf,
    },
    /// The output directory could not be created.
    #[error("cannot create {path}")]
    CreateOutput {
        /// The output directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file of the output could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file the capture depends on (the kernel release, `modules.alias`) could not be read.
    #[error(transparent)]
    Read(#[from] vfiokit_sysfs::Error),
}

/// `/var/lib/vfiokit/capture/qemu-version`, relative to a root.
const QEMU_VERSION: &str = "var/lib/vfiokit/capture/qemu-version";
/// `/var/lib/vfiokit/capture/zpool-status`, relative to a root.
const ZPOOL_STATUS: &str = "var/lib/vfiokit/capture/zpool-status";
/// `/var/lib/vfiokit/capture/kernel-log`, relative to a root.
const KERNEL_LOG: &str = "var/lib/vfiokit/capture/kernel-log";

/// Records the host at `src` into the new directory `out` (see the crate documentation), and
/// writes the report to `out/CAPTURE-NOTES.txt`.
pub fn capture(src: &SysRoot, out: &Path, opts: &Options) -> Result<Report, Error> {
    if fs::symlink_metadata(out).is_ok() {
        return Err(Error::OutputExists {
            path: out.to_path_buf(),
        });
    }
    fs::create_dir_all(out).map_err(|source| Error::CreateOutput {
        path: out.to_path_buf(),
        source,
    })?;
    let mut cap = walk::Capture::new(src, out, opts.anonymize.then(Anonymizer::new));
    cap.pci();
    cap.iommu();
    cap.usb();
    cap.net();
    cap.block();
    cap.disk_ids();
    cap.host_files();
    cap.module_aliases()?;
    cap.kernel_modules()?;
    cap.qemu_version();
    cap.zpool_status();
    cap.kernel_log();
    cap.romfiles();
    let report = Report {
        root: src.root().to_path_buf(),
        output: out.to_path_buf(),
        files: cap.files,
        links: cap.links,
        anonymized: opts.anonymize,
        skipped: cap.notes,
    };
    let notes = out.join("CAPTURE-NOTES.txt");
    fs::write(&notes, report.to_string()).map_err(|source| Error::Write {
        path: notes,
        source,
    })?;
    Ok(report)
}

/// The kernel log lines worth keeping: those naming DMAR, AMD-Vi, IOMMU, VFIO, PCI, KVM or
/// interrupt remapping anywhere (case-insensitive), or `BAR`/`ROM` as a word (`BAR 0`, `BAR0`,
/// `ROM:`, not `from`).
fn kernel_log_lines(text: &str) -> String {
    const ANYWHERE: &[&str] = &[
        "dmar",
        "amd-vi",
        "iommu",
        "vfio",
        "pci",
        "kvm",
        "irq remapping",
    ];
    let word = |line: &str, w: &str| {
        let b = line.as_bytes();
        line.match_indices(w).any(|(i, _)| {
            let before = i.checked_sub(1).map(|j| b[j]);
            let after = b.get(i + w.len()).copied();
            !before.is_some_and(|c| c.is_ascii_alphabetic())
                && !after.is_some_and(|c| c.is_ascii_alphabetic())
        })
    };
    let mut out = String::new();
    for line in text.lines() {
        let lower = line.to_ascii_lowercase();
        if ANYWHERE.iter().any(|k| lower.contains(k)) || word(&lower, "bar") || word(&lower, "rom")
        {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_log_keeps_the_lines_about_passthrough() {
        let log = "\
[    0.000000] Linux version 6.8.12-11-pve
[    0.010000] DMAR: IOMMU enabled
[    0.020000] DMAR-IR: Enabled IRQ remapping in x2apic mode
[    0.030000] AMD-Vi: Interrupt remapping enabled
[    0.100000] pci 0000:00:02.0: BAR 2: assigned [mem 0x4000000000-0x400fffffff 64bit pref]
[    0.110000] pci 0000:00:02.0: Video device with shadowed ROM at [mem 0x000c0000-0x000dffff]
[    0.120000] Loading firmware from /lib/firmware
[    0.130000] barrier: enabled
[    1.000000] vfio-pci 0000:00:14.3: enabling device (0000 -> 0002)
[    1.100000] kvm: already loaded vendor module
[    1.200000] thermal: BAR0 is not mapped
[    1.300000] usb 1-1: new high-speed USB device number 2
";
        assert_eq!(
            kernel_log_lines(log),
            "\
[    0.010000] DMAR: IOMMU enabled
[    0.020000] DMAR-IR: Enabled IRQ remapping in x2apic mode
[    0.030000] AMD-Vi: Interrupt remapping enabled
[    0.100000] pci 0000:00:02.0: BAR 2: assigned [mem 0x4000000000-0x400fffffff 64bit pref]
[    0.110000] pci 0000:00:02.0: Video device with shadowed ROM at [mem 0x000c0000-0x000dffff]
[    1.000000] vfio-pci 0000:00:14.3: enabling device (0000 -> 0002)
[    1.100000] kvm: already loaded vendor module
[    1.200000] thermal: BAR0 is not mapped
"
        );
    }
}
