//! `/etc/modules` and `/etc/modules-load.d/*.conf`: modules loaded at boot.

use vfiokit_sysfs::SysRoot;

use crate::{
    DropIn, Error, Line, Problem, append_line, read_opt, render_lines, same_module, split_lines,
};

/// `/etc/modules` or a `/etc/modules-load.d/*.conf` file: one module name per line, loaded at
/// boot by `systemd-modules-load` (and put into the initramfs by `update-initramfs`).
///
/// Lines that are blank or start with `#` or `;` (after blanks) are comments. On a Debian
/// `/etc/modules` the words after a module name are its parameters; `systemd-modules-load`,
/// which reads both files on a current host, takes the whole line as the module name, so such
/// parameters are reported by [`ModulesFile::problems`] (put them in a modprobe.d `options` line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModulesFile {
    lines: Vec<Line>,
}

/// `(module, parameters)` of a line, `None` for blanks and comments.
fn entry(text: &str) -> Option<(&str, &str)> {
    let t = text.trim();
    if t.is_empty() || t.starts_with(['#', ';']) {
        return None;
    }
    let end = t.find(char::is_whitespace).unwrap_or(t.len());
    Some((&t[..end], t[end..].trim_start()))
}

fn valid_module(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['#', ';'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl ModulesFile {
    /// Parses the file's text. Never fails; see [`ModulesFile::problems`].
    pub fn parse(s: &str) -> ModulesFile {
        ModulesFile {
            lines: split_lines(s),
        }
    }

    /// The text, byte for byte as parsed, with edits applied.
    pub fn render(&self) -> String {
        render_lines(&self.lines)
    }

    /// Reads `/etc/modules`; `None` when the file does not exist.
    pub fn load(root: &SysRoot) -> Result<Option<ModulesFile>, Error> {
        Ok(read_opt(root, &root.etc("modules"))?.map(|s| ModulesFile::parse(&s)))
    }

    /// Reads every `/etc/modules-load.d/*.conf`, sorted by name. Empty when the directory does
    /// not exist. (On Debian `modules.conf` there is often a link to `/etc/modules`.)
    pub fn load_dir(root: &SysRoot) -> Result<Vec<DropIn<ModulesFile>>, Error> {
        crate::load_dir(
            root,
            &root.etc("modules-load.d"),
            ".conf",
            ModulesFile::parse,
        )
    }

    /// The module names, in order, as written.
    pub fn modules(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| entry(&l.text))
            .map(|(m, _)| m)
            .collect()
    }

    /// Whether `name` is listed (`-` and `_` are equal).
    pub fn contains(&self, name: &str) -> bool {
        self.modules().iter().any(|m| same_module(m, name))
    }

    /// The 1-based number of the first line listing `name` (`-` and `_` are equal).
    pub fn line_of(&self, name: &str) -> Option<usize> {
        self.lines
            .iter()
            .position(|l| entry(&l.text).is_some_and(|(m, _)| same_module(m, name)))
            .map(|i| i + 1)
    }

    /// Appends `name` on a line of its own unless it is listed. Returns whether the text changed
    /// (`false` too for a name that is not a module name: empty, blanks, `#`).
    pub fn add(&mut self, name: &str) -> bool {
        if !valid_module(name) || self.contains(name) {
            return false;
        }
        append_line(&mut self.lines, name.to_string());
        true
    }

    /// Removes every line naming the module `name`. Returns whether any was found.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.lines.len();
        self.lines
            .retain(|l| !entry(&l.text).is_some_and(|(m, _)| same_module(m, name)));
        self.lines.len() != before
    }

    /// Lines whose module name holds characters no module name has, and lines with parameters.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for (i, l) in self.lines.iter().enumerate() {
            let Some((module, params)) = entry(&l.text) else {
                continue;
            };
            if !valid_module(module) {
                out.push(Problem::new(
                    i + 1,
                    format!("{module:?} is not a module name"),
                ));
            } else if !params.is_empty() {
                out.push(Problem::new(
                    i + 1,
                    format!("systemd-modules-load reads {:?} as one module name; set parameters with `options {module} …` in /etc/modprobe.d", l.text.trim()),
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
    fn add_and_remove_are_idempotent() {
        let mut m = ModulesFile::parse("# comment\n; other\n\nvfio\nvfio-pci");
        assert_eq!(m.modules(), ["vfio", "vfio-pci"]);
        assert!(m.contains("vfio_pci"));
        assert_eq!(m.line_of("vfio_pci"), Some(5));
        assert_eq!(m.line_of("vfio_iommu_type1"), None);
        assert!(!m.add("vfio_pci"));
        assert!(m.add("vfio_iommu_type1"));
        assert!(!m.add("vfio_iommu_type1"));
        assert_eq!(
            m.render(),
            "# comment\n; other\n\nvfio\nvfio-pci\nvfio_iommu_type1\n"
        );
        assert!(m.remove("vfio_pci"));
        assert!(!m.remove("vfio_pci"));
        assert!(!m.remove("vfi"));
        assert_eq!(m.render(), "# comment\n; other\n\nvfio\nvfio_iommu_type1\n");
        assert!(!m.add(""));
        assert!(!m.add("a b"));
    }

    #[test]
    fn crlf_and_parameters() {
        let mut m = ModulesFile::parse("vfio\r\nloop max_loop=8\r\n");
        assert!(m.add("kvm"));
        assert_eq!(m.render(), "vfio\r\nloop max_loop=8\r\nkvm\r\n");
        assert_eq!(m.problems().len(), 1);
        assert_eq!(m.problems()[0].line, 2);
    }
}
