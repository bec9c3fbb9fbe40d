//! The host's filesystem seen from a root.
//!
//! Linux describes its hardware in `/sys` (sysfs) and `/proc`, and vfiokit edits files under `/etc`.
//! Every reader and writer in the workspace takes a [`SysRoot`]: `/` on a real host, a recorded
//! host such as `testdata/elitedesk-800-g4/fresh` in tests. Nothing reads an absolute path literal;
//! each location is built by a `SysRoot` method whose doc names the real path.
//!
//! What this crate adds over `std::fs`:
//! - typed reads of sysfs attributes as the kernel writes them (`0x8086\n`, `0x030000\n`, `1\n`),
//!   with errors that carry the path and the bytes that did not parse;
//! - symbolic links resolved **inside the root**: a link in a recorded host that points out of it
//!   (an absolute `/sys/...` target, or too many `..`) is an error, never a read of the real host.
//!   The kernel does the confining: every open goes through `openat2(2)` with
//!   `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` relative to the root directory (Linux 5.6 and
//!   later; on older kernels the root falls back to resolving links itself, see [`Confinement`]);
//! - writes to sysfs attributes, and atomic replacement of regular files (temporary file, `fsync`,
//!   `rename`, mode and owner kept).
//!
//! It knows nothing about PCI, USB or Proxmox.
//!
//! ```
//! use vfiokit_sysfs::SysRoot;
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir_all(dir.path().join("sys/bus/pci/devices/x"))?;
//! std::fs::write(dir.path().join("sys/bus/pci/devices/x/vendor"), "0x8086\n")?;
//! let root = SysRoot::new(dir.path())?;
//! let vendor = root.read_hex(&root.sys_bus_devices("pci").join("x/vendor"))?;
//! assert_eq!(vendor, 0x8086);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};

/// Everything that can go wrong reading or writing under a root. Every variant names the path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused (missing file, permissions, I/O error).
    #[error("{path}: {err}")]
    Io {
        /// The full path, root included.
        path: PathBuf,
        /// What the operating system said.
        err: io::Error,
    },
    /// The file was read but its content is not what the kernel writes there.
    #[error("{path}: expected {expected}, found {found:?}")]
    Parse {
        /// The full path, root included.
        path: PathBuf,
        /// What the attribute should hold, e.g. "a hex number".
        expected: &'static str,
        /// What it holds (trimmed, cut to 64 characters).
        found: String,
    },
    /// A symbolic link whose target lies outside the root.
    #[error("{path}: link leaves the root {root} (points to {target})")]
    LinkEscapes {
        /// The link.
        path: PathBuf,
        /// The root it must stay in.
        root: PathBuf,
        /// Where it resolves to.
        target: PathBuf,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |err| Error::Io {
        path: path.to_path_buf(),
        err,
    }
}

fn parse_err(path: &Path, expected: &'static str, found: &str) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        expected,
        found: found.trim().chars().take(64).collect(),
    }
}

/// How a [`SysRoot`] keeps the paths it opens inside the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Confinement {
    /// The kernel resolves every path below the root directory: `openat2(2)` with
    /// `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, one system call however deep the path, and a
    /// link that leaves the root (absolute, or `..` above it, even through a directory linked
    /// away) fails with `EXDEV`, reported as [`Error::LinkEscapes`]. `RESOLVE_BENEATH` rather than
    /// `RESOLVE_IN_ROOT`: an absolute link in a recording is refused, not re-rooted, because
    /// refusing is this crate's contract. On a kernel without `openat2` (before 5.6, or a seccomp
    /// filter answering `ENOSYS`) the root uses [`Confinement::Walk`] instead.
    #[default]
    Kernel,
    /// Links are resolved in user space (`realpath`, one `readlink` per path component) and the
    /// result checked to lie under the root. Reads below `/sys` are not checked (their links are
    /// resolved by the readers); writes and other reads are.
    Walk,
}

/// A host filesystem seen from a root directory.
///
/// Cheap to clone. `SysRoot::new("/")` is the running host, where nothing needs confining and
/// paths are opened as given.
#[derive(Debug, Clone)]
pub struct SysRoot {
    /// The root as given, used to build paths (so messages show what the user typed).
    root: PathBuf,
    /// The root with every link resolved, used to check that links stay inside.
    canonical: PathBuf,
    /// The root directory, opened once, when the kernel confines paths to it.
    dir: Option<Arc<OwnedFd>>,
}

impl PartialEq for SysRoot {
    fn eq(&self, other: &SysRoot) -> bool {
        self.root == other.root && self.canonical == other.canonical
    }
}

impl Eq for SysRoot {}

/// `EXDEV`: what `openat2` answers when resolution would leave the directory.
const EXDEV: i32 = 18;
/// `ENOSYS`: no such system call (a kernel before 5.6, or a seccomp filter).
const ENOSYS: i32 = 38;
/// `EPERM`: what some container runtimes' seccomp filters answered for `openat2`.
const EPERM: i32 = 1;
/// `EAGAIN`: `openat2` saw a concurrent rename or mount and asks to retry.
const EAGAIN: i32 = 11;

/// Opens `rel` below `dir`, never leaving it. `EAGAIN` (a concurrent rename) is retried.
fn open_beneath(dir: &OwnedFd, rel: &Path, flags: OFlags, mode: u32) -> io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            dir,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(e) if e.raw_os_error() == EAGAIN && tries < 8 => tries += 1,
            other => return other.map_err(io::Error::from),
        }
    }
}

impl SysRoot {
    /// A root at `dir`, which must be an existing directory, confined by the kernel where it can
    /// be ([`Confinement::Kernel`]).
    pub fn new(dir: impl Into<PathBuf>) -> Result<SysRoot> {
        SysRoot::with_confinement(dir, Confinement::Kernel)
    }

    /// A root at `dir` with the given confinement: [`Confinement::Walk`] forces the user-space
    /// walk (tests of the fallback use it); [`Confinement::Kernel`] falls back to it by itself on
    /// a kernel without `openat2`.
    pub fn with_confinement(dir: impl Into<PathBuf>, confinement: Confinement) -> Result<SysRoot> {
        let root: PathBuf = dir.into();
        // The directory opened for the kernel to confine paths to (`None` on a kernel without
        // `openat2`), and where it is: asked of the kernel (two system calls in all), else
        // `realpath` (without `/proc`, or for the walk).
        let fd = match confinement {
            Confinement::Kernel => match rustix::fs::openat2(
                rustix::fs::CWD,
                &root,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::NO_MAGICLINKS,
            ) {
                Ok(fd) => Some(fd),
                Err(e) if [ENOSYS, EPERM].contains(&e.raw_os_error()) => None,
                Err(e) => {
                    return Err(Error::Io {
                        path: root,
                        err: e.into(),
                    });
                }
            },
            Confinement::Walk => None,
        };
        let asked = fd.as_ref().and_then(|fd| {
            fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .ok()
                .filter(|p| p.is_absolute())
        });
        let canonical = match asked {
            Some(canonical) => canonical,
            None => {
                let canonical = fs::canonicalize(&root).map_err(io_err(&root))?;
                if !canonical.is_dir() {
                    return Err(Error::Io {
                        path: root,
                        err: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
                    });
                }
                canonical
            }
        };
        // The host's own `/` has nothing to confine.
        let dir = fd.filter(|_| canonical != Path::new("/")).map(Arc::new);
        Ok(SysRoot {
            root,
            canonical,
            dir,
        })
    }

    /// Which confinement this root uses: [`Confinement::Kernel`] when `openat2` confines it,
    /// [`Confinement::Walk`] otherwise (asked for, an older kernel, or the host's own `/`, where
    /// there is nothing to confine).
    pub fn confinement(&self) -> Confinement {
        if self.dir.is_some() {
            Confinement::Kernel
        } else {
            Confinement::Walk
        }
    }

    /// The root directory and `path` relative to it, when the kernel confines this root and
    /// `path` was built under it (from the root as given or its canonical form). A path outside
    /// the root is `None` and gets [`Confinement::Walk`]'s treatment.
    fn beneath<'a>(&self, path: &'a Path) -> Option<(&OwnedFd, &'a Path)> {
        let dir = self.dir.as_deref()?;
        Some((dir, self.under_root(path)?))
    }

    /// `path` relative to the root (as given, or canonical), or `None` when it is not under it.
    fn under_root<'a>(&self, path: &'a Path) -> Option<&'a Path> {
        fast_strip_prefix(path, &self.root)
            .or_else(|| fast_strip_prefix(path, &self.canonical))
            .or_else(|| path.strip_prefix(&self.root).ok())
            .or_else(|| path.strip_prefix(&self.canonical).ok())
    }

    /// Whether `path` lies below the root's `sys` directory (sysfs attributes are read in one go).
    fn is_sysfs(&self, path: &Path) -> bool {
        self.under_root(path).is_some_and(is_sys)
    }

    /// The error for a failed confined open of `path`: `EXDEV` is a link out of the root.
    fn open_err(&self, path: &Path, err: io::Error) -> Error {
        if err.raw_os_error() != Some(EXDEV) {
            return Error::Io {
                path: path.to_path_buf(),
                err,
            };
        }
        // Where it leads, for the message: the resolved path if it exists, else the link's text.
        let target = fs::canonicalize(path)
            .or_else(|_| fs::read_link(path))
            .unwrap_or_else(|_| path.to_path_buf());
        Error::LinkEscapes {
            path: path.to_path_buf(),
            root: self.root.clone(),
            target,
        }
    }

    /// Opens `path` confined to the root (or as given when the kernel does not confine it).
    fn open(&self, path: &Path, flags: OFlags) -> Result<fs::File> {
        self.open_in(path, self.beneath(path), flags)
    }

    /// [`SysRoot::open`] with `path`'s place below the root already worked out.
    fn open_in(
        &self,
        path: &Path,
        beneath: Option<(&OwnedFd, &Path)>,
        flags: OFlags,
    ) -> Result<fs::File> {
        match beneath {
            Some((dir, rel)) => open_beneath(dir, rel, flags | OFlags::NOCTTY, 0)
                .map(fs::File::from)
                .map_err(|e| self.open_err(path, e)),
            None => if flags.contains(OFlags::WRONLY) {
                fs::OpenOptions::new()
                    .write(true)
                    .truncate(flags.contains(OFlags::TRUNC))
                    .open(path)
            } else {
                fs::File::open(path)
            }
            .map_err(io_err(path)),
        }
    }

    /// Whether something (a file, a directory, a link even dangling) is at `path`, confined.
    fn entry_exists(&self, path: &Path) -> Result<bool> {
        let Some((dir, rel)) = self.beneath(path) else {
            return Ok(fs::symlink_metadata(path).is_ok());
        };
        match open_beneath(dir, rel, OFlags::PATH | OFlags::NOFOLLOW, 0) {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.open_err(path, e)),
        }
    }

    /// The directory holding `path`, opened confined (`O_PATH` unless `flags` says otherwise),
    /// and the last component's name.
    fn parent_dir<'a>(
        &self,
        path: &'a Path,
        flags: OFlags,
    ) -> Result<Option<(OwnedFd, &'a std::ffi::OsStr)>> {
        let Some((dir, rel)) = self.beneath(path) else {
            return Ok(None);
        };
        let name = rel
            .file_name()
            .ok_or_else(|| parse_err(path, "a file path", &path.to_string_lossy()))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let fd = open_beneath(dir, parent, flags | OFlags::DIRECTORY, 0)
            .map_err(|e| self.open_err(path.parent().unwrap_or(path), e))?;
        Ok(Some((fd, name)))
    }

    /// The root directory as given.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this is the running host's own `/`.
    pub fn is_host(&self) -> bool {
        self.canonical == Path::new("/")
    }

    /// `/<rel>`: any path under the root. A leading `/` in `rel` is ignored, so
    /// `root.path("/etc/modules")` and `root.path("etc/modules")` are the same file.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        let rel = rel.as_ref();
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        self.root.join(rel)
    }

    /// `/sys/bus/<bus>/devices`: one link per device on that bus (`pci`, `usb`).
    pub fn sys_bus_devices(&self, bus: &str) -> PathBuf {
        self.path("sys/bus").join(bus).join("devices")
    }

    /// `/sys/bus/<bus>/drivers`: one directory per driver registered on that bus.
    pub fn sys_bus_drivers(&self, bus: &str) -> PathBuf {
        self.path("sys/bus").join(bus).join("drivers")
    }

    /// `/sys/kernel/iommu_groups`: one directory per IOMMU group, `<n>/devices/<addr>` links.
    pub fn sys_iommu_groups(&self) -> PathBuf {
        self.path("sys/kernel/iommu_groups")
    }

    /// `/sys/class/<class>`: links to every device of a class (`net`, `block`, `iommu`).
    pub fn sys_class(&self, class: &str) -> PathBuf {
        self.path("sys/class").join(class)
    }

    /// `/sys/block`: links to whole block devices (disks, device-mapper, md).
    pub fn sys_block(&self) -> PathBuf {
        self.path("sys/block")
    }

    /// `/proc/cmdline`: the command line the running kernel was booted with.
    pub fn proc_cmdline(&self) -> PathBuf {
        self.path("proc/cmdline")
    }

    /// `/proc/mounts`: mounted filesystems, one per line (`device mountpoint type options 0 0`).
    pub fn proc_mounts(&self) -> PathBuf {
        self.path("proc/mounts")
    }

    /// `/proc/net/route`: the IPv4 routing table.
    pub fn proc_net_route(&self) -> PathBuf {
        self.path("proc/net/route")
    }

    /// `/proc/net/ipv6_route`: the IPv6 routing table.
    pub fn proc_net_ipv6_route(&self) -> PathBuf {
        self.path("proc/net/ipv6_route")
    }

    /// `/proc/cpuinfo`: the processors, with their `vendor_id` (`GenuineIntel`, `AuthenticAMD`).
    pub fn proc_cpuinfo(&self) -> PathBuf {
        self.path("proc/cpuinfo")
    }

    /// `/proc/sys/kernel/osrelease`: the running kernel's release, e.g. `6.8.12-11-pve`.
    pub fn proc_osrelease(&self) -> PathBuf {
        self.path("proc/sys/kernel/osrelease")
    }

    /// `/lib/modules/<release>/modules.alias`: which module claims which modalias.
    pub fn modules_alias(&self, release: &str) -> PathBuf {
        self.path("lib/modules").join(release).join("modules.alias")
    }

    /// `/etc/<rel>`: configuration files (`default/grub`, `modules`, `modprobe.d/…`).
    pub fn etc(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path("etc").join(rel)
    }

    /// `/usr/share/<rel>`: shared data (`kvm/` holds ROM files for Proxmox).
    pub fn usr_share(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path("usr/share").join(rel)
    }

    /// `/var/lock/<rel>`: lock files (`vfiokit.lock`; Proxmox's `qemu-server/lock-<vmid>.conf`).
    pub fn var_lock(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path("var/lock").join(rel)
    }

    /// `/var/lib/<rel>`: state kept by programs (vfiokit's journal lives in `var/lib/vfiokit`).
    pub fn var_lib(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path("var/lib").join(rel)
    }

    /// `/var/lib/vfiokit/capture/qemu-version`: what `qemu-system-x86_64 --version` printed on a
    /// recorded host (written by `vfiokit capture`; a live host is asked directly).
    pub fn qemu_version_record(&self) -> PathBuf {
        self.var_lib("vfiokit/capture/qemu-version")
    }

    /// `/var/lib/vfiokit/capture/zpool-status`: what `zpool status -P` printed on a recorded host
    /// (written by `vfiokit capture`; a live host is asked directly).
    pub fn zpool_status_record(&self) -> PathBuf {
        self.var_lib("vfiokit/capture/zpool-status")
    }

    /// [`Confinement::Walk`]: checks that reading `path` stays inside the root: outside `/sys` (whose links the readers
    /// resolve themselves, and where the cost of a realpath per attribute would add up), a path
    /// that resolves out of the root — a planted `etc/default/grub` link to the real host — is
    /// [`Error::LinkEscapes`]. A path that does not exist passes (the read reports it).
    fn confine_read(&self, path: &Path) -> Result<()> {
        if path.starts_with(self.root.join("sys")) || self.is_host() {
            return Ok(());
        }
        match fs::canonicalize(path) {
            Ok(real) if !real.starts_with(&self.canonical) => Err(Error::LinkEscapes {
                path: path.to_path_buf(),
                root: self.root.clone(),
                target: real,
            }),
            _ => Ok(()),
        }
    }

    /// Where a write to `path` lands, checked to stay inside the root: the resolved target of an
    /// existing file or link, or the resolved parent plus the name for a new file. The deepest
    /// existing ancestor is resolved before anything is created, so a planted link to a directory
    /// outside (`etc/modprobe.d` → `/etc/modprobe.d` of the real host) is refused, not followed.
    pub fn write_target(&self, path: &Path) -> Result<PathBuf> {
        if self.entry_exists(path)? {
            return self.resolve(path);
        }
        let name = path
            .file_name()
            .ok_or_else(|| parse_err(path, "a file path", &path.to_string_lossy()))?;
        let parent = path.parent().unwrap_or(Path::new("/"));
        let mut existing = parent;
        let mut missing = Vec::new();
        while !self.entry_exists(existing)? {
            missing.push(existing.file_name().unwrap_or_default().to_os_string());
            existing = existing.parent().unwrap_or(Path::new("/"));
        }
        let mut real = self.resolve(existing)?;
        for m in missing.iter().rev() {
            real.push(m);
        }
        real.push(name);
        Ok(real)
    }

    /// The whole content of a file, or `None` when it does not exist.
    pub fn read_bytes_opt(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        match self.read_bytes(path) {
            Ok(b) => Ok(Some(b)),
            Err(Error::Io { err, .. }) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes a regular file; a file that is already gone is fine.
    pub fn remove_file(&self, path: &Path) -> Result<()> {
        let removed = match self.parent_dir(path, OFlags::PATH) {
            Ok(Some((dir, name))) => {
                rustix::fs::unlinkat(&dir, name, AtFlags::empty()).map_err(io::Error::from)
            }
            Ok(None) => fs::remove_file(path),
            Err(Error::Io { err, .. }) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => return Err(e),
        };
        match removed {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(Error::Io {
                path: path.to_path_buf(),
                err,
            }),
            _ => Ok(()),
        }
    }

    /// Creates a directory and its parents (`mkdir -p`), each one inside the root.
    pub fn create_dir_all(&self, dir: &Path) -> Result<()> {
        let Some((root_fd, rel)) = self.beneath(dir) else {
            return fs::create_dir_all(dir).map_err(io_err(dir));
        };
        let mut prefix = PathBuf::new();
        for comp in rel.components() {
            let parent = prefix.clone();
            prefix.push(comp);
            match open_beneath(root_fd, &prefix, OFlags::PATH | OFlags::DIRECTORY, 0) {
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.open_err(&self.root.join(&prefix), e)),
            }
            let here = self.root.join(&prefix);
            let parent_fd = open_beneath(root_fd, &parent, OFlags::PATH | OFlags::DIRECTORY, 0)
                .map_err(|e| self.open_err(&here, e))?;
            match rustix::fs::mkdirat(&parent_fd, comp.as_os_str(), Mode::from_raw_mode(0o755)) {
                Err(e) if e != rustix::io::Errno::EXIST => {
                    return Err(Error::Io {
                        path: here,
                        err: e.into(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The whole content of a file.
    pub fn read_bytes(&self, path: &Path) -> Result<Vec<u8>> {
        let beneath = self.beneath(path);
        let sysfs = match beneath {
            Some((_, rel)) => is_sys(rel),
            None => {
                self.confine_read(path)?;
                self.is_sysfs(path)
            }
        };
        let file = self.open_in(path, beneath, OFlags::RDONLY)?;
        if sysfs {
            read_sysfs(file).map_err(io_err(path))
        } else {
            read_all(file).map_err(io_err(path))
        }
    }

    /// A text file, whole. Invalid UTF-8 is an error naming the path.
    pub fn read_text(&self, path: &Path) -> Result<String> {
        utf8(path, self.read_bytes(path)?)
    }

    /// A text file, whole, or `None` when it does not exist.
    pub fn read_text_opt(&self, path: &Path) -> Result<Option<String>> {
        match self.read_text(path) {
            Ok(s) => Ok(Some(s)),
            Err(Error::Io { err, .. }) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A one-value sysfs attribute: the file's text without its trailing newline.
    pub fn read_attr(&self, path: &Path) -> Result<String> {
        let text = self.read_text(path)?;
        Ok(text.trim_end_matches(['\n', '\r']).to_string())
    }

    /// Like [`SysRoot::read_attr`], but `Ok(None)` when the file does not exist.
    pub fn read_attr_opt(&self, path: &Path) -> Result<Option<String>> {
        match self.read_attr(path) {
            Ok(s) => Ok(Some(s)),
            Err(Error::Io { err, .. }) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A hex attribute as sysfs writes it (`0x8086`, `0x030000`, or 64-bit registers such as an
    /// IOMMU's `ecap`, `f050da`); the `0x` is optional.
    pub fn read_hex(&self, path: &Path) -> Result<u64> {
        let text = self.read_attr(path)?;
        parse_hex(&text).ok_or_else(|| parse_err(path, "a hex number", &text))
    }

    /// A decimal attribute (`irq`, `boot_vga`, `busnum`).
    pub fn read_dec<T: FromStr>(&self, path: &Path) -> Result<T> {
        let text = self.read_attr(path)?;
        text.trim()
            .parse()
            .map_err(|_| parse_err(path, "a decimal number", &text))
    }

    /// The names in a directory, sorted. Names that are not UTF-8 are skipped: sysfs never makes them.
    pub fn list(&self, dir: &Path) -> Result<Vec<String>> {
        let mut names: Vec<String> = match self.beneath(dir) {
            Some((root, rel)) => {
                let fd = open_beneath(root, rel, OFlags::RDONLY | OFlags::DIRECTORY, 0)
                    .map_err(|e| self.open_err(dir, e))?;
                let mut entries = rustix::fs::Dir::new(fd).map_err(|e| io_err(dir)(e.into()))?;
                let mut names = Vec::new();
                while let Some(entry) = entries.read() {
                    let entry = entry.map_err(|e| io_err(dir)(e.into()))?;
                    match entry.file_name().to_str() {
                        Ok("." | "..") | Err(_) => {}
                        Ok(name) => names.push(name.to_string()),
                    }
                }
                names
            }
            None => fs::read_dir(dir)
                .map_err(io_err(dir))?
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .collect(),
        };
        names.sort();
        Ok(names)
    }

    /// Like [`SysRoot::list`], but an empty list when the directory does not exist.
    pub fn list_opt(&self, dir: &Path) -> Result<Vec<String>> {
        match self.list(dir) {
            Err(Error::Io { err, .. }) if err.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            other => other,
        }
    }

    /// Where `path` really is, every link followed, checked to lie inside the root.
    ///
    /// A dangling link is an `Io` error (not found) naming `path`; a link out of the root is
    /// [`Error::LinkEscapes`]. The result is under the canonical root, not the root as given.
    pub fn resolve(&self, path: &Path) -> Result<PathBuf> {
        if let Some((dir, rel)) = self.beneath(path) {
            let fd = open_beneath(dir, rel, OFlags::PATH, 0).map_err(|e| self.open_err(path, e))?;
            // The kernel's name for what it opened; without /proc, the walk below says it.
            if let Ok(real) = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                && real.starts_with(&self.canonical)
            {
                return Ok(real);
            }
        }
        self.walk_resolve(path)
    }

    /// [`Confinement::Walk`]'s [`SysRoot::resolve`]: `realpath`, then the prefix check.
    fn walk_resolve(&self, path: &Path) -> Result<PathBuf> {
        let escapes = |target: PathBuf| Error::LinkEscapes {
            path: path.to_path_buf(),
            root: self.root.clone(),
            target,
        };
        match fs::canonicalize(path) {
            Ok(real) if real.starts_with(&self.canonical) => Ok(real),
            Ok(real) => Err(escapes(real)),
            Err(err) => {
                // A dangling link that points out of the root says so, rather than "not found":
                // the target was looked for on the real host.
                if let (Ok(target), Some(parent)) = (fs::read_link(path), path.parent())
                    && let Ok(parent) = fs::canonicalize(parent)
                    && join_lexically(&parent, &target)
                        .is_none_or(|t| !t.starts_with(&self.canonical))
                {
                    return Err(escapes(target));
                }
                Err(Error::Io {
                    path: path.to_path_buf(),
                    err,
                })
            }
        }
    }

    /// Like [`SysRoot::resolve`], but `Ok(None)` when nothing is at `path` (no link at all).
    /// A link that exists but dangles is still an error: the host is inconsistent.
    pub fn resolve_opt(&self, path: &Path) -> Result<Option<PathBuf>> {
        if self.beneath(path).is_some() {
            return match self.resolve(path) {
                Ok(real) => Ok(Some(real)),
                Err(Error::Io { err, .. })
                    if err.kind() == io::ErrorKind::NotFound && !self.entry_exists(path)? =>
                {
                    Ok(None)
                }
                Err(e) => Err(e),
            };
        }
        match fs::symlink_metadata(path) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(Error::Io {
                path: path.to_path_buf(),
                err,
            }),
            Ok(_) => self.resolve(path).map(Some),
        }
    }

    /// Whether anything (a file, a directory, a link even dangling) is at `path`, looked for
    /// inside the root: one system call when nothing is there. A path through a link out of the
    /// root is [`Error::LinkEscapes`].
    pub fn exists(&self, path: &Path) -> Result<bool> {
        if self.beneath(path).is_none() {
            self.confine_read(path)?;
        }
        self.entry_exists(path)
    }

    /// Whether `path` is a regular file, links followed inside the root (one system call when
    /// nothing is there, three when something is). A path through a link out of the root is
    /// [`Error::LinkEscapes`].
    pub fn is_file(&self, path: &Path) -> Result<bool> {
        Ok(self.file_type(path)?.is_some_and(|t| t.is_file()))
    }

    /// Whether `path` is a directory, as [`SysRoot::is_file`] looks.
    pub fn is_dir(&self, path: &Path) -> Result<bool> {
        Ok(self.file_type(path)?.is_some_and(|t| t.is_dir()))
    }

    /// What is at `path` (links followed inside the root), `None` when nothing is.
    fn file_type(&self, path: &Path) -> Result<Option<fs::FileType>> {
        let gone = |e: &io::Error| {
            matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            )
        };
        let meta = match self.beneath(path) {
            Some((dir, rel)) => match open_beneath(dir, rel, OFlags::PATH, 0) {
                Ok(fd) => fs::File::from(fd).metadata(),
                Err(e) if gone(&e) => return Ok(None),
                Err(e) => return Err(self.open_err(path, e)),
            },
            None => {
                self.confine_read(path)?;
                fs::metadata(path)
            }
        };
        match meta {
            Ok(m) => Ok(Some(m.file_type())),
            Err(e) if gone(&e) => Ok(None),
            Err(err) => Err(Error::Io {
                path: path.to_path_buf(),
                err,
            }),
        }
    }

    /// A link's own text (`readlink`), not resolved; `Ok(None)` when nothing is at `path`.
    ///
    /// One system call, so it is for hot loops over directories the caller already knows to lie
    /// inside the root — a directory returned by [`SysRoot::resolve`], or one a confined read just
    /// went through: the kernel does not confine the components before the link's name here. The
    /// text is the caller's to check, with [`join_lexically`] and [`SysRoot::relative`].
    pub fn read_link(&self, path: &Path) -> Result<Option<PathBuf>> {
        match fs::read_link(path) {
            Ok(target) => Ok(Some(target)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(Error::Io {
                path: path.to_path_buf(),
                err,
            }),
        }
    }

    /// The last component of a link's target, after checking it resolves inside the root:
    /// `driver` → `e1000e`, `iommu_group` → `7`. `Ok(None)` when there is no link.
    pub fn link_name(&self, path: &Path) -> Result<Option<String>> {
        let Some(real) = self.resolve_opt(path)? else {
            return Ok(None);
        };
        match real.file_name().and_then(|n| n.to_str()) {
            Some(name) => Ok(Some(name.to_string())),
            None => Err(parse_err(
                path,
                "a link to a named entry",
                &real.to_string_lossy(),
            )),
        }
    }

    /// The path of `real` (as returned by [`SysRoot::resolve`]) relative to the root:
    /// `sys/devices/pci0000:00/0000:00:02.0`.
    pub fn relative<'a>(&self, real: &'a Path) -> Option<&'a Path> {
        real.strip_prefix(&self.canonical).ok()
    }

    /// Writes a sysfs attribute (`driver_override`, `unbind`, `drivers_probe`): the file must exist,
    /// as every sysfs attribute does; nothing is created.
    pub fn write_attr(&self, path: &Path, value: &str) -> Result<()> {
        let mut file = self.open(path, OFlags::WRONLY | OFlags::TRUNC)?;
        file.write_all(value.as_bytes()).map_err(io_err(path))
    }

    /// Replaces a regular file atomically: the new bytes go to a temporary file in the same
    /// directory, which is synced and renamed over `path`, then the directory is synced.
    /// An existing file's mode and owner are kept; a new file gets mode 0644.
    /// Readers see the old content or the new, never a mix; a crash leaves at most a stray
    /// `.<name>.vfiokit-tmp` file beside it.
    pub fn replace_file(&self, path: &Path, contents: &[u8]) -> Result<()> {
        self.replace_file_inner(path, contents, None)
    }

    /// Like [`SysRoot::replace_file`], but the file gets `mode` whether it existed or not, from
    /// the moment it is created (for files only root may read, such as a journal of old contents).
    pub fn replace_file_private(&self, path: &Path, contents: &[u8], mode: u32) -> Result<()> {
        self.replace_file_inner(path, contents, Some(mode))
    }

    fn replace_file_inner(&self, path: &Path, contents: &[u8], mode: Option<u32>) -> Result<()> {
        if let Some((dir, name)) = self.parent_dir(path, OFlags::RDONLY)? {
            return self.replace_in(dir, name, path, contents, mode);
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| parse_err(path, "a file path", &path.to_string_lossy()))?;
        let old = match fs::metadata(path) {
            Ok(m) => Some(m),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => {
                return Err(Error::Io {
                    path: path.to_path_buf(),
                    err,
                });
            }
        };
        let tmp = dir.join(format!(".{}.vfiokit-tmp", name.to_string_lossy()));
        let result = (|| {
            let mode = mode.unwrap_or_else(|| old.as_ref().map_or(0o644, |m| m.mode() & 0o7777));
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(mode & 0o600)
                .open(&tmp)
                .map_err(io_err(&tmp))?;
            file.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(io_err(&tmp))?;
            if let Some(m) = &old {
                std::os::unix::fs::fchown(&file, Some(m.uid()), Some(m.gid()))
                    .map_err(io_err(&tmp))?;
            }
            file.write_all(contents).map_err(io_err(&tmp))?;
            file.sync_all().map_err(io_err(&tmp))?;
            fs::rename(&tmp, path).map_err(io_err(path))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
            return result;
        }
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))
    }

    /// [`SysRoot::replace_file`] inside the confined directory `dir`: the old file is looked at,
    /// the temporary created (never through a link) and renamed all relative to `dir`, so nothing
    /// lands outside the root even if a link is planted meanwhile.
    fn replace_in(
        &self,
        dir: OwnedFd,
        name: &std::ffi::OsStr,
        path: &Path,
        contents: &[u8],
        mode: Option<u32>,
    ) -> Result<()> {
        let old = match open_beneath(&dir, Path::new(name), OFlags::PATH, 0) {
            Ok(fd) => Some(rustix::fs::fstat(&fd).map_err(|e| io_err(path)(e.into()))?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(self.open_err(path, e)),
        };
        let tmp_name = format!(".{}.vfiokit-tmp", name.to_string_lossy());
        let tmp = path.with_file_name(&tmp_name);
        let result = (|| {
            let mode = mode.unwrap_or_else(|| old.as_ref().map_or(0o644, |m| m.st_mode & 0o7777));
            let file = open_beneath(
                &dir,
                Path::new(&tmp_name),
                OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW,
                mode & 0o600,
            )
            .map_err(|e| self.open_err(&tmp, e))?;
            let mut file = fs::File::from(file);
            file.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(io_err(&tmp))?;
            if let Some(m) = &old {
                std::os::unix::fs::fchown(&file, Some(m.st_uid), Some(m.st_gid))
                    .map_err(io_err(&tmp))?;
            }
            file.write_all(contents).map_err(io_err(&tmp))?;
            file.sync_all().map_err(io_err(&tmp))?;
            rustix::fs::renameat(&dir, tmp_name.as_str(), &dir, name)
                .map_err(|e| io_err(path)(e.into()))
        })();
        if result.is_err() {
            let _ = rustix::fs::unlinkat(&dir, tmp_name.as_str(), AtFlags::empty());
            return result;
        }
        fs::File::from(dir)
            .sync_all()
            .map_err(io_err(path.parent().unwrap_or(path)))
    }
}

/// A directory below a [`SysRoot`], opened once (confined, `O_PATH`), so that many reads below
/// it make the kernel walk a few components instead of the whole path from the root.
///
/// Its methods take full paths, like the root's, and give the same results and errors: a path
/// below the directory is opened relative to it with `RESOLVE_BENEATH`, so it cannot leave the
/// directory (which itself was opened confined to the root); one whose resolution would leave the
/// directory (a link to a sibling, say) is handed to the root, which decides as it always does, as
/// is every path not below the directory and every path on a root the kernel does not confine.
#[derive(Debug)]
pub struct SysDir<'a> {
    root: &'a SysRoot,
    /// Where the directory really is (canonical), or empty for a handle that only delegates.
    path: PathBuf,
    fd: Option<OwnedFd>,
    /// Whether the directory lies in the root's `sys` (attributes are read in one go).
    sysfs: bool,
}

impl SysRoot {
    /// Opens the directory at `path` for reads below it ([`SysDir`]), resolved inside the root as
    /// [`SysRoot::resolve`] does; [`SysDir::path`] is where it really is. A link out of the root
    /// is [`Error::LinkEscapes`].
    pub fn open_dir(&self, path: &Path) -> Result<SysDir<'_>> {
        if let Some((dir, rel)) = self.beneath(path) {
            let fd = open_beneath(dir, rel, OFlags::PATH | OFlags::DIRECTORY, 0)
                .map_err(|e| self.open_err(path, e))?;
            if let Ok(real) = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                && real.starts_with(&self.canonical)
            {
                let sysfs = self.relative(&real).is_some_and(is_sys);
                return Ok(SysDir {
                    root: self,
                    path: real,
                    fd: Some(fd),
                    sysfs,
                });
            }
        }
        let real = self.walk_resolve(path)?;
        Ok(SysDir {
            root: self,
            path: real,
            fd: None,
            sysfs: false,
        })
    }

    /// A [`SysDir`] that opens nothing and hands every read to the root.
    pub fn no_dir(&self) -> SysDir<'_> {
        SysDir {
            root: self,
            path: PathBuf::new(),
            fd: None,
            sysfs: false,
        }
    }
}

impl SysDir<'_> {
    /// Where the directory really is (empty for [`SysRoot::no_dir`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's fd and `path` relative to it, when `path` lies below it.
    fn below<'p>(&self, path: &'p Path) -> Option<(&OwnedFd, &'p Path)> {
        let fd = self.fd.as_ref()?;
        let rel = fast_strip_prefix(path, &self.path)?;
        (!rel.as_os_str().is_empty()).then_some((fd, rel))
    }

    /// [`SysRoot::read_bytes`].
    pub fn read_bytes(&self, path: &Path) -> Result<Vec<u8>> {
        if let Some((fd, rel)) = self.below(path) {
            match open_beneath(fd, rel, OFlags::RDONLY | OFlags::NOCTTY, 0) {
                Ok(file) => {
                    let file = fs::File::from(file);
                    let read = if self.sysfs {
                        read_sysfs(file)
                    } else {
                        read_all(file)
                    };
                    return read.map_err(io_err(path));
                }
                Err(e) if e.raw_os_error() != Some(EXDEV) => {
                    return Err(Error::Io {
                        path: path.to_path_buf(),
                        err: e,
                    });
                }
                Err(_) => {} // leaves the directory: the root decides
            }
        }
        self.root.read_bytes(path)
    }

    /// [`SysRoot::read_attr_opt`].
    pub fn read_attr_opt(&self, path: &Path) -> Result<Option<String>> {
        match self.read_attr(path) {
            Ok(s) => Ok(Some(s)),
            Err(Error::Io { err, .. }) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`SysRoot::read_attr`].
    pub fn read_attr(&self, path: &Path) -> Result<String> {
        let text = utf8(path, self.read_bytes(path)?)?;
        Ok(text.trim_end_matches(['\n', '\r']).to_string())
    }

    /// [`SysRoot::read_hex`].
    pub fn read_hex(&self, path: &Path) -> Result<u64> {
        let text = self.read_attr(path)?;
        parse_hex(&text).ok_or_else(|| parse_err(path, "a hex number", &text))
    }

    /// [`SysRoot::exists`].
    pub fn exists(&self, path: &Path) -> Result<bool> {
        if let Some((fd, rel)) = self.below(path) {
            match open_beneath(fd, rel, OFlags::PATH | OFlags::NOFOLLOW, 0) {
                Ok(_) => return Ok(true),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    return Ok(false);
                }
                Err(_) => {}
            }
        }
        self.root.exists(path)
    }

    /// [`SysRoot::read_link`]: one `readlinkat` relative to the directory, whose components the
    /// kernel does not confine (the caller's to know, as for the root's).
    pub fn read_link(&self, path: &Path) -> Result<Option<PathBuf>> {
        let Some((fd, rel)) = self.below(path) else {
            return self.root.read_link(path);
        };
        match rustix::fs::readlinkat(fd, rel, Vec::new()) {
            Ok(target) => {
                use std::os::unix::ffi::OsStringExt;
                Ok(Some(PathBuf::from(std::ffi::OsString::from_vec(
                    target.into_bytes(),
                ))))
            }
            Err(e) if e == rustix::io::Errno::NOENT => Ok(None),
            Err(e) => Err(Error::Io {
                path: path.to_path_buf(),
                err: e.into(),
            }),
        }
    }
}

/// The bytes of `path` as text; invalid UTF-8 is an error naming the path and the offset.
fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        expected: "UTF-8 text",
        found: format!(
            "a byte that is not UTF-8 at offset {}",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Whether a path relative to the root lies in its `sys` directory.
fn is_sys(rel: &Path) -> bool {
    rel.starts_with("sys")
}

/// `path` without the leading `prefix`, compared as bytes: what [`Path::strip_prefix`] gives
/// for the paths this crate builds (`root.join(…)`), without walking components on every read
/// (a tenth of `inspect`'s time at 10 000 functions). `None` where the bytes do not settle it
/// (the caller then asks `strip_prefix`).
fn fast_strip_prefix<'a>(path: &'a Path, prefix: &Path) -> Option<&'a Path> {
    use std::os::unix::ffi::OsStrExt;
    let (p, pre) = (path.as_os_str().as_bytes(), prefix.as_os_str().as_bytes());
    let rest = p.strip_prefix(pre)?;
    let rest = if pre.ends_with(b"/") || rest.is_empty() {
        rest
    } else {
        rest.strip_prefix(b"/")?
    };
    // Anything `strip_prefix` would normalize (`//`, `.` components) takes the slow way.
    if rest.starts_with(b"/")
        || rest.ends_with(b"/")
        || rest.windows(2).any(|w| w == b"//")
        || rest.split(|&b| b == b'/').any(|c| c == b".")
    {
        return None;
    }
    Some(Path::new(std::ffi::OsStr::from_bytes(rest)))
}

/// Reads a sysfs attribute in as few system calls as possible: one read, then the caller's
/// close. The kernel hands a text attribute (at most a page) over whole in the first read, and a
/// binary one up to its size (`config`, 4096 bytes), so a read shorter than the buffer — one
/// byte more than a page — is the end (no `statx` to size a buffer, no read that returns 0).
/// Longer files are read on to the end. Not for `/proc`, whose files may come in pieces.
fn read_sysfs(mut file: fs::File) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4097];
    let mut len = 0;
    loop {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len < buf.len() {
                    break;
                }
                buf.resize(buf.len() * 2, 0);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// Reads a file to its end (a read that returns 0): `open`, `read`, `read`, `close` for anything
/// up to 16 KiB, without the `statx` and `lseek` that `read_to_end` spends on a size hint.
/// `/proc` files may come in pieces, so only a read returning 0 ends it.
fn read_all(mut file: fs::File) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// The effective user id of this process (from its own `/proc/self/status`, not the root's):
/// `--apply` on the real host needs 0. `None` where it cannot be read.
pub fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string(Path::new("/proc/self/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Parses a hex number as sysfs writes it: `0x8086`, `0X8086` or `8086`, surrounding blanks ignored,
/// at most 64 bits.
pub fn parse_hex(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// Joins `target` (a link's content) onto `dir` without touching the filesystem, folding `.` and `..`.
/// Returns `None` when `..` would climb above the start of `dir`.
pub fn join_lexically(dir: &Path, target: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for comp in dir.join(target).components() {
        match comp {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fresh temporary root for each confinement: every test runs on the kernel's and the walk's.
    fn roots() -> Vec<(tempfile::TempDir, SysRoot)> {
        [Confinement::Kernel, Confinement::Walk]
            .into_iter()
            .map(|c| {
                let dir = tempfile::tempdir().unwrap();
                let root = SysRoot::with_confinement(dir.path(), c).unwrap();
                (dir, root)
            })
            .collect()
    }

    #[test]
    fn hex_values_as_sysfs_writes_them() {
        for (text, want) in [
            ("0x8086\n", Some(0x8086)),
            ("0x030000", Some(0x030000)),
            ("8086", Some(0x8086)),
            ("0X10", Some(0x10)),
            ("0x", None),
            ("", None),
            ("0x12345678", Some(0x1234_5678)),
            ("19e2ff0505e", Some(0x19e_2ff0_505e)),
            ("0x1234567890abcdef", Some(0x1234_5678_90ab_cdef)),
            ("0x1234567890abcdef0", None),
            ("0xzz", None),
            ("-0x1", None),
        ] {
            assert_eq!(parse_hex(text), want, "{text:?}");
        }
    }

    #[test]
    fn errors_name_the_path_and_the_bad_value() {
        for (dir, root) in roots() {
            let p = dir.path().join("vendor");
            fs::write(&p, "garbage\n").unwrap();
            let err = root.read_hex(&p).unwrap_err().to_string();
            assert!(err.contains(&p.display().to_string()), "{err}");
            assert!(err.contains("\"garbage\""), "{err}");
            let missing = root.read_attr(&dir.path().join("nope")).unwrap_err();
            assert!(missing.to_string().contains("nope"), "{missing}");
            assert_eq!(root.read_attr_opt(&dir.path().join("nope")).unwrap(), None);
        }
    }

    #[test]
    fn links_resolve_inside_the_root_and_escapes_are_errors() {
        for (dir, root) in roots() {
            let d = dir.path();
            fs::create_dir_all(d.join("sys/bus/pci/drivers/e1000e")).unwrap();
            fs::create_dir_all(d.join("sys/devices/pci0000:00/0000:00:1f.6")).unwrap();
            symlink(
                "../../../bus/pci/drivers/e1000e",
                d.join("sys/devices/pci0000:00/0000:00:1f.6/driver"),
            )
            .unwrap();
            let link = d.join("sys/devices/pci0000:00/0000:00:1f.6/driver");
            assert_eq!(root.link_name(&link).unwrap().as_deref(), Some("e1000e"));

            // An absolute link points at the real host: refused, not followed.
            symlink("/etc", d.join("escape")).unwrap();
            assert!(matches!(
                root.resolve(&d.join("escape")),
                Err(Error::LinkEscapes { .. })
            ));
            // Climbing out with `..` is refused too.
            symlink("../../../../../../../../etc", d.join("climb")).unwrap();
            assert!(matches!(
                root.link_name(&d.join("climb")),
                Err(Error::LinkEscapes { .. })
            ));
            // Out of the root and dangling there: still an escape, not "not found".
            symlink("/nonexistent/vfiokit", d.join("far")).unwrap();
            assert!(matches!(
                root.resolve(&d.join("far")),
                Err(Error::LinkEscapes { .. })
            ));
            // A dangling link is an error naming the link; no link at all is None.
            symlink("missing", d.join("dangling")).unwrap();
            let err = root.resolve_opt(&d.join("dangling")).unwrap_err();
            assert!(err.to_string().contains("dangling"), "{err}");
            assert_eq!(root.resolve_opt(&d.join("absent")).unwrap(), None);
        }
    }

    #[test]
    fn file_kinds_are_looked_up_inside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("vendor-reset.ko"), "real host").unwrap();
        for (dir, root) in roots() {
            let d = dir.path();
            fs::create_dir_all(d.join("etc/udev/rules.d")).unwrap();
            fs::write(d.join("etc/hostname"), "pve\n").unwrap();
            symlink("hostname", d.join("etc/name")).unwrap();
            assert!(root.is_file(&d.join("etc/hostname")).unwrap());
            assert!(
                root.is_file(&d.join("etc/name")).unwrap(),
                "a link inside is followed"
            );
            assert!(!root.is_dir(&d.join("etc/hostname")).unwrap());
            assert!(root.is_dir(&d.join("etc/udev/rules.d")).unwrap());
            assert!(!root.is_file(&d.join("etc/udev/rules.d")).unwrap());
            assert!(!root.is_file(&d.join("etc/missing")).unwrap());
            assert!(!root.is_dir(&d.join("etc/hostname/below")).unwrap());
            // A link to a file of the real host is refused, not looked at.
            symlink(outside.path().join("vendor-reset.ko"), d.join("planted.ko")).unwrap();
            assert!(matches!(
                root.is_file(&d.join("planted.ko")),
                Err(Error::LinkEscapes { .. })
            ));
            symlink(outside.path(), d.join("away")).unwrap();
            assert!(matches!(
                root.is_dir(&d.join("away")),
                Err(Error::LinkEscapes { .. })
            ));
        }
    }

    #[test]
    fn paths_are_built_under_the_root() {
        for (dir, root) in roots() {
            assert_eq!(root.path("/etc/modules"), dir.path().join("etc/modules"));
            assert_eq!(root.etc("modules"), dir.path().join("etc/modules"));
            assert_eq!(
                root.sys_bus_devices("pci"),
                dir.path().join("sys/bus/pci/devices")
            );
            assert_eq!(
                root.modules_alias("6.8.12-11-pve"),
                dir.path().join("lib/modules/6.8.12-11-pve/modules.alias")
            );
            assert!(!root.is_host());
            assert!(SysRoot::new("/").unwrap().is_host());
            assert!(SysRoot::new(dir.path().join("missing")).is_err());
        }
    }

    #[test]
    fn replace_file_keeps_mode_and_leaves_no_temporary() {
        for (dir, root) in roots() {
            let p = dir.path().join("grub");
            fs::write(&p, "old\n").unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
            root.replace_file(&p, b"new\n").unwrap();
            assert_eq!(fs::read_to_string(&p).unwrap(), "new\n");
            assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
            assert_eq!(root.list(dir.path()).unwrap(), vec!["grub".to_string()]);

            let journal = dir.path().join("journal.json");
            root.replace_file_private(&journal, b"{}", 0o600).unwrap();
            assert_eq!(fs::metadata(&journal).unwrap().mode() & 0o7777, 0o600);

            let fresh = dir.path().join("new.conf");
            root.replace_file(&fresh, b"x").unwrap();
            assert_eq!(fs::metadata(&fresh).unwrap().mode() & 0o7777, 0o644);

            // A missing directory fails, naming the temporary path, and creates nothing.
            let err = root
                .replace_file(&dir.path().join("no/such/file"), b"x")
                .unwrap_err();
            assert!(err.to_string().contains("no/such"), "{err}");
        }
    }

    #[test]
    fn reads_and_writes_through_links_out_of_the_root_are_refused() {
        for (dir, root) in roots() {
            let d = dir.path();
            let outside = tempfile::tempdir().unwrap();
            fs::write(outside.path().join("grub"), "secret").unwrap();
            fs::create_dir_all(d.join("etc/default")).unwrap();
            symlink(outside.path().join("grub"), d.join("etc/default/grub")).unwrap();
            symlink(outside.path(), d.join("etc/modprobe.d")).unwrap();
            let grub = root.etc("default/grub");
            assert!(matches!(
                root.read_text(&grub),
                Err(Error::LinkEscapes { .. })
            ));
            assert!(matches!(
                root.write_target(&grub),
                Err(Error::LinkEscapes { .. })
            ));
            let conf = root.etc("modprobe.d/vfio.conf");
            assert!(matches!(
                root.write_target(&conf),
                Err(Error::LinkEscapes { .. })
            ));
            assert!(matches!(
                root.write_target(&root.etc("modprobe.d/new/deeper.conf")),
                Err(Error::LinkEscapes { .. })
            ));
            // Inside the root, a link is followed to its target; a new path lands where it says.
            fs::write(d.join("etc/real.conf"), "x").unwrap();
            symlink("../real.conf", d.join("etc/default/alias.conf")).unwrap();
            let t = root.write_target(&root.etc("default/alias.conf")).unwrap();
            assert!(t.ends_with("etc/real.conf"), "{}", t.display());
            let n = root
                .write_target(&root.path("var/lib/vfiokit/journal.json"))
                .unwrap();
            assert!(n.ends_with("var/lib/vfiokit/journal.json"));
            // Bytes that are not UTF-8 are reported with their offset.
            fs::write(d.join("etc/bad"), b"ok\n\xff").unwrap();
            let err = root.read_text(&root.etc("bad")).unwrap_err().to_string();
            assert!(err.contains("offset 3"), "{err}");
            assert!(effective_uid().is_some());
        }
    }

    #[test]
    fn write_attr_needs_an_existing_attribute() {
        for (dir, root) in roots() {
            let p = dir.path().join("driver_override");
            fs::write(&p, "(null)\n").unwrap();
            root.write_attr(&p, "vfio-pci").unwrap();
            assert_eq!(fs::read_to_string(&p).unwrap(), "vfio-pci");
            assert!(root.write_attr(&dir.path().join("absent"), "x").is_err());
            assert!(!dir.path().join("absent").exists());
        }
    }

    /// Whether the running kernel has `openat2` (5.6 and later).
    fn kernel_has_openat2() -> bool {
        let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        (major, minor) >= (5, 6)
    }

    #[test]
    fn the_kernel_confines_where_it_can_and_the_walk_is_there_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let kernel = SysRoot::new(dir.path()).unwrap();
        let want = if kernel_has_openat2() {
            Confinement::Kernel
        } else {
            Confinement::Walk
        };
        assert_eq!(kernel.confinement(), want);
        let walk = SysRoot::with_confinement(dir.path(), Confinement::Walk).unwrap();
        assert_eq!(walk.confinement(), Confinement::Walk);
        assert_eq!(kernel, walk, "the same root whichever way it is confined");
        assert_eq!(
            SysRoot::new("/").unwrap().confinement(),
            Confinement::Walk,
            "nothing to confine on /"
        );
    }

    #[test]
    fn with_the_kernel_even_sysfs_reads_and_listings_stay_inside() {
        let (dir, root) = roots().remove(0);
        if root.confinement() != Confinement::Kernel {
            return; // a kernel before 5.6: the walk's tests above cover this host
        }
        let d = dir.path();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("vendor"), "0x8086\n").unwrap();
        fs::create_dir_all(d.join("sys/bus/pci/devices")).unwrap();
        symlink(outside.path(), d.join("sys/bus/pci/devices/0000:00:02.0")).unwrap();
        let link = root.sys_bus_devices("pci").join("0000:00:02.0");
        for err in [
            root.read_hex(&link.join("vendor")).unwrap_err(),
            root.list(&link).unwrap_err(),
            root.create_dir_all(&link.join("new")).unwrap_err(),
            root.remove_file(&link.join("vendor")).unwrap_err(),
            root.write_attr(&link.join("vendor"), "x").unwrap_err(),
            root.replace_file(&link.join("vendor"), b"x").unwrap_err(),
        ] {
            assert!(matches!(err, Error::LinkEscapes { .. }), "{err}");
        }
        assert_eq!(
            fs::read_to_string(outside.path().join("vendor")).unwrap(),
            "0x8086\n"
        );
        assert!(!outside.path().join("new").exists());
        // `..` that stays inside is fine; a link inside the root is followed.
        fs::create_dir_all(d.join("sys/devices/x")).unwrap();
        fs::write(d.join("sys/devices/x/vendor"), "0x10de\n").unwrap();
        symlink(
            "../../../devices/x",
            d.join("sys/bus/pci/devices/0000:01:00.0"),
        )
        .unwrap();
        let inside = root.sys_bus_devices("pci").join("0000:01:00.0");
        assert_eq!(root.read_hex(&inside.join("vendor")).unwrap(), 0x10de);
        assert_eq!(root.list(&inside).unwrap(), ["vendor"]);
        let real = root.resolve(&inside).unwrap();
        assert_eq!(root.relative(&real), Some(Path::new("sys/devices/x")));
        root.create_dir_all(&inside.join("a/b")).unwrap();
        assert!(d.join("sys/devices/x/a/b").is_dir());
        root.remove_file(&inside.join("vendor")).unwrap();
        assert!(!d.join("sys/devices/x/vendor").exists());
        assert!(root.exists(&inside).unwrap());
        assert!(!root.exists(&inside.join("vendor")).unwrap());
        assert!(matches!(
            root.exists(&link.join("vendor")),
            Err(Error::LinkEscapes { .. })
        ));
        // A path outside the root altogether is refused as the walk refuses it.
        assert!(matches!(
            root.read_hex(&outside.path().join("vendor")),
            Err(Error::LinkEscapes { .. })
        ));
    }

    #[test]
    fn reads_below_an_open_directory_answer_as_the_root_does() {
        for (dir, root) in roots() {
            let d = dir.path();
            let outside = tempfile::tempdir().unwrap();
            fs::write(outside.path().join("vendor"), "0x8086\n").unwrap();
            fs::create_dir_all(d.join("sys/devices/p/a")).unwrap();
            fs::create_dir_all(d.join("sys/devices/q")).unwrap();
            fs::write(d.join("sys/devices/p/a/vendor"), "0x10de\n").unwrap();
            fs::write(d.join("sys/devices/q/vendor"), "0x1002\n").unwrap();
            symlink("../../q", d.join("sys/devices/p/a/sibling")).unwrap();
            symlink(outside.path(), d.join("sys/devices/p/a/away")).unwrap();
            symlink("../../../../../../../../..", d.join("sys/devices/p/a/up")).unwrap();
            symlink("../q", d.join("sys/devices/p/b")).unwrap();
            let p = root.open_dir(&root.path("sys/devices/p")).unwrap();
            assert_eq!(root.relative(p.path()), Some(Path::new("sys/devices/p")));
            let a = p.path().join("a");
            assert_eq!(p.read_hex(&a.join("vendor")).unwrap(), 0x10de);
            // Leaving the directory but not the root: the root's answer.
            assert_eq!(p.read_hex(&a.join("sibling/vendor")).unwrap(), 0x1002);
            assert_eq!(p.read_hex(&p.path().join("b/vendor")).unwrap(), 0x1002);
            // Leaving the root: what the root says (refused, where the kernel confines).
            for path in [
                a.join("away/vendor"),
                a.join(format!("up{}/vendor", outside.path().display())),
            ] {
                let got = p.read_hex(&path);
                assert_eq!(format!("{got:?}"), format!("{:?}", root.read_hex(&path)));
                if root.confinement() == Confinement::Kernel {
                    assert!(matches!(got, Err(Error::LinkEscapes { .. })), "{got:?}");
                }
            }
            assert_eq!(p.read_attr_opt(&a.join("absent")).unwrap(), None);
            assert!(p.exists(&a.join("vendor")).unwrap());
            assert!(!p.exists(&a.join("absent")).unwrap());
            assert_eq!(
                p.read_link(&a.join("sibling")).unwrap(),
                Some(PathBuf::from("../../q"))
            );
            assert_eq!(p.read_link(&a.join("absent")).unwrap(), None);
            // Paths not below it go to the root.
            let q = root.path("sys/devices/q/vendor");
            assert_eq!(p.read_hex(&q).unwrap(), 0x1002);
            assert_eq!(root.no_dir().read_hex(&q).unwrap(), 0x1002);
            // A directory linked out of the root is not opened.
            symlink(outside.path(), d.join("sys/devices/out")).unwrap();
            assert!(matches!(
                root.open_dir(&root.path("sys/devices/out")),
                Err(Error::LinkEscapes { .. })
            ));
        }
    }

    #[test]
    fn the_byte_prefix_agrees_with_strip_prefix() {
        let cases = [
            ("/tmp/r/sys/bus/pci", "/tmp/r"),
            ("/tmp/r/sys/bus/pci", "/tmp/r/"),
            ("/tmp/r", "/tmp/r"),
            ("/tmp/r/", "/tmp/r"),
            ("/tmp/rx/sys", "/tmp/r"),
            ("/tmp/r//sys", "/tmp/r"),
            ("/tmp/r/./sys", "/tmp/r"),
            ("/tmp/r/sys/", "/tmp/r"),
            ("/tmp/r/../etc", "/tmp/r"),
            ("/sys/bus", "/"),
            ("/other", "/tmp/r"),
            ("relative/sys", "relative"),
        ];
        for (path, prefix) in cases {
            let (path, prefix) = (Path::new(path), Path::new(prefix));
            if let Some(fast) = fast_strip_prefix(path, prefix) {
                assert_eq!(
                    Some(fast),
                    path.strip_prefix(prefix).ok(),
                    "{path:?} {prefix:?}"
                );
                assert_eq!(
                    fast.as_os_str(),
                    path.strip_prefix(prefix).unwrap().as_os_str()
                );
            }
        }
        let fast = |p: &str, q: &str| fast_strip_prefix(Path::new(p), Path::new(q)).is_some();
        assert!(fast("/tmp/r/sys/bus/pci", "/tmp/r") && fast("/tmp/r/sys", "/tmp/r/"));
        assert!(!fast("/tmp/rx/sys", "/tmp/r") && !fast("/tmp/r//sys", "/tmp/r"));
    }

    #[test]
    fn lexical_join_folds_dots_and_refuses_to_climb_out() {
        assert_eq!(
            join_lexically(
                Path::new("sys/devices/pci0000:00/x"),
                Path::new("../../../bus/pci")
            ),
            Some(PathBuf::from("sys/bus/pci"))
        );
        assert_eq!(join_lexically(Path::new("a"), Path::new("../..")), None);
    }
}
