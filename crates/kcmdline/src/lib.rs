//! Lossless documents for the host configuration that PCI passthrough touches.
//!
//! A Proxmox VE host hands a device to a VM only after its boot configuration says so:
//!
//! | document | file | type | applied by |
//! |---|---|---|---|
//! | kernel command line | `/proc/cmdline`, and the value of the two files below | [`Cmdline`] | – |
//! | GRUB defaults | `/etc/default/grub` (`GRUB_CMDLINE_LINUX_DEFAULT`, `GRUB_CMDLINE_LINUX`), drop-ins in `/etc/default/grub.d/*.cfg` | [`GrubDefault`] | `update-grub` |
//! | systemd-boot command line | `/etc/kernel/cmdline` (one line, `proxmox-boot-tool`) | [`KernelCmdlineFile`] | `proxmox-boot-tool refresh` |
//! | modules loaded at boot | `/etc/modules`, `/etc/modules-load.d/*.conf` | [`ModulesFile`] | `update-initramfs -u -k all` |
//! | module configuration | `/etc/modprobe.d/*.conf` (`blacklist`, `options`, `softdep`, …) | [`ModprobeConf`], [`ModprobeDir`] | `update-initramfs -u -k all` |
//!
//! [`BootLoader::detect`] tells which of the two command-line files is in force on a host.
//!
//! Every document keeps the bytes it was parsed from: `render(parse(s)) == s` for any text,
//! including odd spacing, tabs, CRLF line ends, a missing final newline, comments and lines the
//! parser does not understand (those are listed by `problems()`, never dropped). An edit rebuilds
//! only the line (or word) it changes, returns whether it changed anything, and is idempotent:
//! running it a second time returns `false` and leaves the text as it is.
//!
//! Names are compared the way the kernel and kmod compare them: `-` and `_` are the same
//! character in kernel parameter names (`intel-iommu=on` sets `intel_iommu`) and in module names
//! (`vfio-pci` is `vfio_pci`). Parameter *values* are compared exactly.
//!
//! The crate reads files through [`SysRoot`] (`load`) and never writes: a caller renders the
//! edited document and replaces the file itself (vfiokit does it through a plan).
//!
//! ```
//! use vfiokit_kcmdline::{GrubDefault, ModprobeConf};
//!
//! let mut grub = GrubDefault::parse("GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT='quiet'\n");
//! let changed = grub.edit_cmdline_linux_default(|c| {
//!     c.set("intel_iommu", Some("on"));
//!     c.set("iommu", Some("pt"));
//! })?;
//! assert!(changed);
//! assert_eq!(grub.render(), "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT='quiet intel_iommu=on iommu=pt'\n");
//! // A second run is recognisably empty.
//! assert!(!grub.edit_cmdline_linux_default(|c| { c.set("intel-iommu", Some("on")); })?);
//!
//! let mut conf = ModprobeConf::parse("# load vfio-pci driver instead\noptions vfio-pci ids=8086:3e92\n");
//! assert!(conf.merge_ids("vfio_pci", &["8086:3e92", "8086:a348"]));
//! assert_eq!(conf.option("vfio-pci", "ids"), Some(Some("8086:3e92,8086:a348".to_string())));
//! assert!(!conf.merge_ids("vfio-pci", &["8086:a348"]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use vfiokit_sysfs::SysRoot;

mod boot;
mod cmdline;
mod grub;
mod kernel;
mod modprobe;
mod modules;

pub use boot::{BootLoader, UPDATE_INITRAMFS};
pub use cmdline::{Cmdline, Param, same_module, same_param};
pub use grub::{GRUB_CMDLINE_LINUX, GRUB_CMDLINE_LINUX_DEFAULT, GrubConfig, GrubDefault};
pub use kernel::KernelCmdlineFile;
pub use modprobe::{Directive, Found, ModprobeConf, ModprobeDir, Softdep};
pub use modules::ModulesFile;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a file under the root failed; the error names the path.
    #[error(transparent)]
    Read(#[from] vfiokit_sysfs::Error),
    /// The document holds something this crate cannot edit safely (for example a GRUB variable
    /// assigned by shell code it does not understand), or the new value cannot be written there.
    #[error("{path}:{line}: {message}")]
    Unsupported {
        /// The file, or `<input>` for a document parsed from a string.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Something in a document that the parser kept verbatim but did not understand, or that the
/// program reading the file will not take the way it looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number (of the first physical line of a continued line).
    pub line: usize,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Problem {
        Problem {
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// One file of a configuration directory (`/etc/modprobe.d/vfio.conf`,
/// `/etc/default/grub.d/init-select.cfg`, `/etc/modules-load.d/vfio.conf`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropIn<T> {
    /// The file name, e.g. `vfio.conf`.
    pub name: String,
    /// The full path under the root.
    pub path: PathBuf,
    /// The parsed document.
    pub doc: T,
}

/// A file's text, or `None` when it does not exist.
pub(crate) fn read_opt(root: &SysRoot, path: &Path) -> Result<Option<String>, Error> {
    match root.read_text(path) {
        Ok(text) => Ok(Some(text)),
        Err(vfiokit_sysfs::Error::Io { err, .. }) if err.kind() == io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Every `*<suffix>` file of `dir`, sorted by name, parsed. A missing directory is empty.
pub(crate) fn load_dir<T>(
    root: &SysRoot,
    dir: &Path,
    suffix: &str,
    parse: impl Fn(&str) -> T,
) -> Result<Vec<DropIn<T>>, Error> {
    let mut out = Vec::new();
    for name in root.list_opt(dir)? {
        if !name.ends_with(suffix) || name.starts_with('.') {
            continue;
        }
        let path = dir.join(&name);
        // A name that vanished between listing and reading, or a directory named `x.conf`,
        // is not a configuration file.
        if !root.is_file(&path)? {
            continue;
        }
        if let Some(text) = read_opt(root, &path)? {
            out.push(DropIn {
                name,
                path,
                doc: parse(&text),
            });
        }
    }
    Ok(out)
}

/// One physical line: its text and its terminator (`"\n"`, `"\r\n"`, or `""` for a last line
/// without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub text: String,
    pub eol: &'static str,
}

impl Line {
    pub(crate) fn new(text: impl Into<String>, eol: &'static str) -> Line {
        Line {
            text: text.into(),
            eol,
        }
    }
}

/// Splits text into physical lines, terminators kept apart. `""` is no line at all.
pub(crate) fn split_lines(s: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        match rest.find('\n') {
            Some(i) => {
                let (text, eol) = match rest[..i].strip_suffix('\r') {
                    Some(t) => (t, "\r\n"),
                    None => (&rest[..i], "\n"),
                };
                out.push(Line::new(text, eol));
                rest = &rest[i + 1..];
            }
            None => {
                out.push(Line::new(rest, ""));
                rest = "";
            }
        }
    }
    out
}

pub(crate) fn render_lines<'a>(lines: impl IntoIterator<Item = &'a Line>) -> String {
    let mut out = String::new();
    for l in lines {
        out.push_str(&l.text);
        out.push_str(l.eol);
    }
    out
}

/// The terminator new lines get: the file's own (CRLF when its first line has one).
pub(crate) fn doc_eol<'a>(mut lines: impl Iterator<Item = &'a Line>) -> &'static str {
    match lines.next() {
        Some(l) if l.eol == "\r\n" => "\r\n",
        _ => "\n",
    }
}

/// Appends a line at the end. A last line without terminator gets one first; if the last line
/// ends with a backslash (a continuation in shell and modprobe syntax) an empty line is put
/// between, so the new line stays a line of its own.
pub(crate) fn append_line(lines: &mut Vec<Line>, text: String) {
    let eol = doc_eol(lines.iter());
    if let Some(last) = lines.last_mut() {
        if last.eol.is_empty() {
            // A lone `\r` at the end and the new `\n` read back as one CRLF terminator.
            match last.text.strip_suffix('\r') {
                Some(t) if eol == "\n" => {
                    last.text = t.to_string();
                    last.eol = "\r\n";
                }
                _ => last.eol = eol,
            }
        }
        if last.text.ends_with('\\') {
            lines.push(Line::new("", eol));
        }
    }
    lines.push(Line::new(text, eol));
}

/// A run of words separated by blanks, with every blank kept: the storage under [`Cmdline`],
/// modprobe `options` and `softdep` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Words {
    /// `(blanks before, word)`.
    pub items: Vec<(String, String)>,
    /// Blanks after the last word (all of the text when there is no word).
    pub trailing: String,
}

impl Words {
    /// Splits `s` at runs of `is_blank`. With `quotes`, a blank between double quotes does not
    /// split (the kernel's `next_arg`).
    pub(crate) fn parse(s: &str, quotes: bool, is_blank: fn(char) -> bool) -> Words {
        let mut items = Vec::new();
        let mut rest = s;
        loop {
            let start = rest.find(|c| !is_blank(c)).unwrap_or(rest.len());
            if start == rest.len() {
                return Words {
                    items,
                    trailing: rest.to_string(),
                };
            }
            let sep = &rest[..start];
            let body = &rest[start..];
            let mut in_quote = false;
            let mut end = body.len();
            for (i, c) in body.char_indices() {
                if is_blank(c) && !in_quote {
                    end = i;
                    break;
                }
                if quotes && c == '"' {
                    in_quote = !in_quote;
                }
            }
            items.push((sep.to_string(), body[..end].to_string()));
            rest = &body[end..];
        }
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for (sep, word) in &self.items {
            out.push_str(sep);
            out.push_str(word);
        }
        out.push_str(&self.trailing);
        out
    }

    /// Inserts a word before index `at` (or at the end), separated by one space. At the front it
    /// takes over the leading blanks.
    pub(crate) fn insert(&mut self, at: usize, word: String) {
        let at = at.min(self.items.len());
        if self.items.is_empty() {
            self.items.push((String::new(), word));
        } else if at == 0 {
            let lead = std::mem::replace(&mut self.items[0].0, " ".to_string());
            self.items.insert(0, (lead, word));
        } else {
            self.items.insert(at, (" ".to_string(), word));
        }
    }

    /// Removes the word at `at` with the blanks before it (after it, for the first word), so
    /// `a b c` without `b` is `a c`.
    pub(crate) fn remove(&mut self, at: usize) {
        if at >= self.items.len() {
            return;
        }
        let (sep, _) = self.items.remove(at);
        if at == 0 {
            match self.items.first_mut() {
                Some(next) => next.0 = sep,
                None => self.trailing.insert_str(0, &sep),
            }
        }
    }
}
