//! Realistic Linux host trees for tests: `/sys`, `/proc`, `/etc` and `/lib/modules` under a directory.
//!
//! vfiokit reads a host through a [`vfiokit_sysfs::SysRoot`]. This crate writes roots for it:
//! a [`Host`] builder lays PCI functions out as the kernel does (`sys/devices/pci0000:00/…` with
//! `vendor`, `class`, binary `config` with capabilities, `resource`, `modalias`, relative `driver`,
//! `iommu_group` and `subsystem` links, `sys/bus/pci/{devices,drivers}`, `sys/kernel/iommu_groups`),
//! plus IOMMU units, USB devices below xHCI controllers, SR-IOV virtual functions, mediated
//! device types ([`MdevType`]), network interfaces and bridges, disks, device-mapper volumes,
//! `proc/cmdline`, `proc/mounts`, `proc/net/route`, `modules.alias` and `modules.dep`.
//! The trees are real enough for `lspci -A linux-sysfs -O sysfs.path=<root>/sys/bus/pci`.
//!
//! [`hosts`] holds ready-made topologies, including the recorded hosts committed under
//! `testdata/` (the HP EliteDesk 800 G4, the Minisforum UM880 Pro, an AM4 host with an RTX 2060,
//! a Beelink N100; [`hosts::recorded`]); [`copy_recorded`] copies such a recorded host into a
//! temporary directory before a test changes it. [`generate::large_host`] lays out servers with
//! thousands of functions (sockets, PCI domains, switches, SR-IOV virtual functions) for
//! benchmarks; [`write_scratch`] writes one into memory-backed scratch space.
//!
//! ```
//! use vfiokit_fakesys::{Host, Iommu, DmarUnit, PciFn, PcieType};
//! let mut host = Host::new();
//! host.cmdline("BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet intel_iommu=on")
//!     .iommu(Iommu::Intel(vec![DmarUnit {
//!         name: "dmar0".into(),
//!         cap: 0xd2008c40660462,
//!         ecap: 0xf050da,
//!         address: 0xfed91000,
//!     }]))
//!     .pci(
//!         PciFn::new("0000:00:02.0", 0x8086, 0x3e92, 0x030000)
//!             .driver("i915")
//!             .group(0)
//!             .boot_vga(true)
//!             .pcie(PcieType::RcIntegratedEndpoint)
//!             .flr(),
//!     );
//! let (_dir, root) = host.write_temp()?;
//! let dev = root.sys_bus_devices("pci").join("0000:00:02.0");
//! assert_eq!(root.read_hex(&dev.join("vendor"))?, 0x8086);
//! assert_eq!(root.link_name(&dev.join("driver"))?.as_deref(), Some("i915"));
//! assert_eq!(root.link_name(&dev.join("iommu_group"))?.as_deref(), Some("0"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod block;
pub mod generate;
mod host;
pub mod hosts;
mod mdev;
mod net;
mod pci;
mod tree;
mod usb;

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

pub use block::{Disk, DmVolume};
pub use host::{AmdUnit, DmarUnit, Host, Iommu};
pub use mdev::MdevType;
pub use net::NetIf;
pub use pci::{BarKind, PciFn, PcieType};
pub use usb::{UsbDev, UsbIf};

use tree::with_path;

/// The workspace's `testdata/` directory, where recorded hosts live.
pub fn testdata_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Copies the recorded host `testdata/<name>` (e.g. `elitedesk-800-g4/fresh`) into a new
/// temporary directory, links kept as links, and opens it as a root. Tests that change a
/// recorded host work on such a copy.
pub fn copy_recorded(name: &str) -> io::Result<(tempfile::TempDir, vfiokit_sysfs::SysRoot)> {
    let rel = Path::new(name);
    if name.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("recorded host name {name:?} must be a relative path inside testdata/"),
        ));
    }
    let src = testdata_dir().join(rel);
    if !src.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: no such recorded host", src.display()),
        ));
    }
    let dir = tempfile::tempdir()?;
    copy_tree(&src, dir.path())?;
    let root = vfiokit_sysfs::SysRoot::new(dir.path()).map_err(io::Error::other)?;
    Ok((dir, root))
}

/// A new temporary directory in memory when the machine has a writable `/dev/shm` (tmpfs), else in
/// the system's temporary directory. A real `/sys` lives in memory; so should a large generated
/// tree that is timed, and writing one to some disks costs a millisecond per file.
pub fn scratch_dir() -> io::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    match tempfile::Builder::new().prefix("vfiokit-").tempdir_in(shm) {
        Ok(dir) => Ok(dir),
        Err(_) => tempfile::tempdir(),
    }
}

/// Writes `host` into a new [`scratch_dir`] and opens it as a root.
pub fn write_scratch(host: &Host) -> io::Result<(tempfile::TempDir, vfiokit_sysfs::SysRoot)> {
    let dir = scratch_dir()?;
    host.write(dir.path())?;
    let root = vfiokit_sysfs::SysRoot::new(dir.path()).map_err(io::Error::other)?;
    Ok((dir, root))
}

/// Every file, link and directory below `dir`, keyed by its path relative to `dir`: a file's
/// bytes, a link's target, `<dir>` for a directory. Two snapshots are equal when the trees are,
/// byte for byte — what a test of apply-then-undo compares.
pub fn snapshot(dir: &Path) -> io::Result<std::collections::BTreeMap<PathBuf, Vec<u8>>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let p = e?.path();
            let meta = fs::symlink_metadata(&p)?;
            let rel = p.strip_prefix(dir).unwrap_or(&p).to_path_buf();
            if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    fs::read_link(&p)?.into_os_string().into_encoded_bytes(),
                );
            } else if meta.is_dir() {
                out.insert(rel, b"<dir>".to_vec());
                stack.push(p);
            } else {
                out.insert(rel, fs::read(&p)?);
            }
        }
    }
    Ok(out)
}

/// Copies the directory `src` into `dst` (which must exist): directories are recreated,
/// regular files copied, symbolic links recreated with the same (relative) target.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    for entry in fs::read_dir(src).map_err(with_path(src))? {
        let entry = entry.map_err(with_path(src))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let kind = entry.file_type().map_err(with_path(&from))?;
        if kind.is_symlink() {
            let target = fs::read_link(&from).map_err(with_path(&from))?;
            symlink(target, &to).map_err(with_path(&to))?;
        } else if kind.is_dir() {
            fs::create_dir(&to).map_err(with_path(&to))?;
            copy_tree(&from, &to)?;
        } else {
            fs::copy(&from, &to).map_err(with_path(&from))?;
        }
    }
    Ok(())
}
