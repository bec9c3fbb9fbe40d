//! A plan: every change a command would make, built without side effects, shown as diffs.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One file the plan rewrites (or creates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEdit {
    /// Path relative to the root (`etc/default/grub`).
    pub path: PathBuf,
    /// The bytes the plan was built from; `None` when the file did not exist.
    /// Apply refuses when the file no longer holds exactly these.
    pub old: Option<String>,
    /// The new content.
    pub new: String,
    /// Why, one entry per line added or changed.
    pub reasons: Vec<String>,
}

/// A command to run after the files are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedCommand {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Why it must run.
    pub why: String,
}

/// Everything a command would change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Files to write, in order.
    pub files: Vec<FileEdit>,
    /// Commands to run afterwards, in order.
    pub commands: Vec<PlannedCommand>,
    /// What the user should know: risks, things decided and left alone.
    pub notes: Vec<String>,
}

impl Plan {
    /// Nothing to write and nothing to run.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.commands.is_empty()
    }

    /// Adds a file edit unless the new content equals the old.
    pub fn edit(
        &mut self,
        path: impl Into<PathBuf>,
        old: Option<String>,
        new: String,
        reasons: Vec<String>,
    ) {
        if old.as_deref() != Some(new.as_str()) {
            self.files.push(FileEdit {
                path: path.into(),
                old,
                new,
                reasons,
            });
        }
    }

    /// Adds a command unless the same one is already planned.
    pub fn command(&mut self, argv: &[&str], why: impl Into<String>) {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        if !self.commands.iter().any(|c| c.argv == argv) {
            self.commands.push(PlannedCommand {
                argv,
                why: why.into(),
            });
        }
    }

    /// The plan as unified diffs, reasons and commands, for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.files {
            out.push_str(&diff(f));
            for r in &f.reasons {
                let _ = writeln!(out, "  why: {r}");
            }
            out.push('\n');
        }
        if !self.commands.is_empty() {
            out.push_str("then run:\n");
            for c in &self.commands {
                let _ = writeln!(out, "  {}    # {}", shell_words(&c.argv), c.why);
            }
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }
}

impl Plan {
    /// The plan as JSON: `{files: [{path, created, diff, reasons}], commands: [{argv, why}], notes}`.
    pub fn to_json(&self) -> serde_json::Value {
        let files: Vec<serde_json::Value> = self
            .files
            .iter()
            .map(|f| serde_json::json!({"path": f.path, "created": f.old.is_none(), "diff": diff(f), "reasons": f.reasons}))
            .collect();
        let commands: Vec<serde_json::Value> = self
            .commands
            .iter()
            .map(|c| serde_json::json!({"argv": c.argv, "why": c.why}))
            .collect();
        serde_json::json!({"files": files, "commands": commands, "notes": self.notes})
    }
}

/// The unified diff of one edit, with `a/` and `b/` paths as git writes them.
pub fn diff(f: &FileEdit) -> String {
    let old = f.old.as_deref().unwrap_or("");
    let path = f.path.display();
    let (a, b) = match f.old {
        Some(_) => (format!("a/{path}"), format!("b/{path}")),
        None => ("/dev/null".to_string(), format!("b/{path}")),
    };
    similar::TextDiff::from_lines(old, f.new.as_str())
        .unified_diff()
        .context_radius(3)
        .header(&a, &b)
        .missing_newline_hint(true)
        .to_string()
}

/// `argv` as a shell would need it typed: words with characters a shell treats specially
/// single-quoted (`sh -c 'test ! -e F || chmod +x F'`); plain words as they are.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:=,/+@%".contains(&b));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_that_changes_nothing_is_not_planned() {
        let mut plan = Plan::default();
        plan.edit(
            "etc/modules",
            Some("vfio\n".into()),
            "vfio\n".into(),
            vec![],
        );
        assert!(plan.is_empty());
        plan.command(&["update-grub"], "x");
        plan.command(&["update-grub"], "y");
        assert_eq!(plan.commands.len(), 1);
    }

    #[test]
    fn diffs_name_the_file_and_show_added_lines() {
        let mut plan = Plan::default();
        plan.edit(
            "etc/modules",
            Some("# header\nloop\n".into()),
            "# header\nloop\nvfio\n".into(),
            vec!["vfio: the VFIO core".into()],
        );
        plan.edit(
            "etc/modprobe.d/vfio.conf",
            None,
            "options vfio-pci ids=8086:3e92\n".into(),
            vec![],
        );
        let text = plan.render();
        assert!(
            text.contains("--- a/etc/modules\n+++ b/etc/modules\n"),
            "{text}"
        );
        assert!(
            text.contains("+vfio\n") && text.contains("  why: vfio: the VFIO core"),
            "{text}"
        );
        assert!(
            text.contains("--- /dev/null\n+++ b/etc/modprobe.d/vfio.conf\n"),
            "{text}"
        );
    }

    #[test]
    fn commands_print_as_a_shell_runs_them() {
        let argv = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            shell_words(&argv(&["update-initramfs", "-u", "-k", "all"])),
            "update-initramfs -u -k all"
        );
        assert_eq!(
            shell_words(&argv(&["sh", "-c", "test ! -e /f || chmod +x /f", "it's"])),
            "sh -c 'test ! -e /f || chmod +x /f' 'it'\\''s'"
        );
    }
}
