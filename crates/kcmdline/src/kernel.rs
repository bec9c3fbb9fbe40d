//! `/etc/kernel/cmdline`: the command line `proxmox-boot-tool` writes into the boot entries.

use vfiokit_sysfs::SysRoot;

use crate::{Cmdline, Error, Problem, read_opt};

/// `/etc/kernel/cmdline`: one line holding the whole kernel command line
/// (`root=ZFS=rpool/ROOT/pve-1 boot=zfs`), used by `proxmox-boot-tool refresh` for
/// systemd-boot (and by `kernel-install`).
///
/// Only the first line is the command line; anything after it is kept verbatim and reported by
/// [`KernelCmdlineFile::problems`]. A CRLF ending stays an ending, not part of the last parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelCmdlineFile {
    cmdline: Cmdline,
    /// The first line's terminator and every following line.
    rest: String,
}

impl KernelCmdlineFile {
    /// Parses the file's text. Never fails; see [`KernelCmdlineFile::problems`].
    pub fn parse(s: &str) -> KernelCmdlineFile {
        let (first, rest) = match s.find('\n') {
            Some(i) => s.split_at(i),
            None => (s, ""),
        };
        let (first, rest) = match first.strip_suffix('\r') {
            Some(f) => (f, &s[f.len()..]),
            None => (first, rest),
        };
        KernelCmdlineFile {
            cmdline: Cmdline::parse(first),
            rest: rest.to_string(),
        }
    }

    /// A new file holding `cmdline` and a final newline.
    pub fn new(cmdline: Cmdline) -> KernelCmdlineFile {
        KernelCmdlineFile {
            cmdline,
            rest: "\n".to_string(),
        }
    }

    /// The text, byte for byte as parsed, with edits applied.
    pub fn render(&self) -> String {
        let mut out = self.cmdline.render();
        out.push_str(&self.rest);
        out
    }

    /// Reads `/etc/kernel/cmdline`; `None` when the file does not exist.
    pub fn load(root: &SysRoot) -> Result<Option<KernelCmdlineFile>, Error> {
        Ok(read_opt(root, &root.etc("kernel/cmdline"))?.map(|s| KernelCmdlineFile::parse(&s)))
    }

    /// The command line (the first line).
    pub fn cmdline(&self) -> &Cmdline {
        &self.cmdline
    }

    /// The command line, to edit in place with [`Cmdline::set`] and friends. Replacing it with
    /// one that holds a line break breaks the one-line format; [`Cmdline`]'s edits never do.
    pub fn cmdline_mut(&mut self) -> &mut Cmdline {
        &mut self.cmdline
    }

    /// Runs `f` on the command line; returns whether the text changed.
    pub fn edit(&mut self, f: impl FnOnce(&mut Cmdline)) -> bool {
        let before = self.cmdline.render();
        f(&mut self.cmdline);
        self.cmdline.render() != before
    }

    /// Unbalanced quotes, and lines after the first that hold anything but blanks.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = self.cmdline.problems();
        for (i, line) in self.rest.split('\n').enumerate().skip(1) {
            if !line.trim().is_empty() {
                out.push(Problem::new(
                    i + 1,
                    "only the first line is the command line; this line is not used",
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_or_without_newline() {
        for (input, want) in [
            (
                "root=ZFS=rpool/ROOT/pve-1 boot=zfs\n",
                "root=ZFS=rpool/ROOT/pve-1 boot=zfs intel_iommu=on\n",
            ),
            (
                "root=ZFS=rpool/ROOT/pve-1 boot=zfs",
                "root=ZFS=rpool/ROOT/pve-1 boot=zfs intel_iommu=on",
            ),
            (
                "root=ZFS=rpool/ROOT/pve-1 boot=zfs\r\n",
                "root=ZFS=rpool/ROOT/pve-1 boot=zfs intel_iommu=on\r\n",
            ),
            ("boot=zfs \n# note\n", "boot=zfs intel_iommu=on \n# note\n"),
            ("", "intel_iommu=on"),
        ] {
            let mut f = KernelCmdlineFile::parse(input);
            assert_eq!(f.render(), input);
            assert!(f.edit(|c| {
                c.set("intel_iommu", Some("on"));
            }));
            assert_eq!(f.render(), want, "{input:?}");
            assert!(!f.cmdline_mut().set("intel-iommu", Some("on")));
        }
        let f = KernelCmdlineFile::parse("boot=zfs\n\n# note\n");
        assert_eq!(
            f.problems(),
            [Problem::new(
                3,
                "only the first line is the command line; this line is not used"
            )]
        );
        assert_eq!(
            KernelCmdlineFile::new(Cmdline::parse("boot=zfs")).render(),
            "boot=zfs\n"
        );
    }
}
