//! `/etc/default/grub`: the shell file `update-grub` sources.

use std::path::{Path, PathBuf};

use vfiokit_sysfs::SysRoot;

use crate::{
    Cmdline, DropIn, Error, Line, Problem, append_line, read_opt, render_lines, split_lines,
};

/// Parameters for normal boot entries (not the recovery ones).
pub const GRUB_CMDLINE_LINUX_DEFAULT: &str = "GRUB_CMDLINE_LINUX_DEFAULT";
/// Parameters for every boot entry, recovery included.
pub const GRUB_CMDLINE_LINUX: &str = "GRUB_CMDLINE_LINUX";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    Double,
    Single,
    Bare,
}

/// What a line does to one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Assign {
    /// `NAME=value` understood: `value` is the byte range of the whole shell word (quotes
    /// included), `content` the range between the quotes.
    Plain {
        word: (usize, usize),
        content: (usize, usize),
        quote: Quote,
    },
    /// The line assigns the variable in a way this crate does not edit.
    Opaque(String),
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_shell_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Whether `line` (not a comment) names `name` right before `=` or `+=`.
fn mentions_assignment(line: &str, name: &str) -> bool {
    line.match_indices(name).any(|(i, _)| {
        let before_ok = line[..i].chars().next_back().is_none_or(|c| !is_ident(c));
        let after = &line[i + name.len()..];
        before_ok && (after.starts_with('=') || after.starts_with("+="))
    })
}

fn analyze(line: &str, name: &str) -> Option<Assign> {
    let trimmed = line.trim_start_matches(is_shell_blank);
    if trimmed.starts_with('#') || !mentions_assignment(line, name) {
        return None;
    }
    let opaque = |why: &str| Some(Assign::Opaque(why.to_string()));
    let mut i = line.len() - trimmed.len();
    if let Some(after) = trimmed.strip_prefix("export")
        && after.starts_with(is_shell_blank)
    {
        let after = after.trim_start_matches(is_shell_blank);
        i = line.len() - after.len();
    }
    let Some(value_part) = line[i..]
        .strip_prefix(name)
        .and_then(|r| r.strip_prefix('='))
    else {
        return opaque("assigned by shell code that is not a plain NAME=value line");
    };
    let start = line.len() - value_part.len();
    let (content, end, quote) = match value_part.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let Some(close) = value_part[1..].find(q) else {
                return opaque("unterminated quote (a value over several lines)");
            };
            let content = (start + 1, start + 1 + close);
            let text = &line[content.0..content.1];
            if q == '"' && (text.contains(['\\', '`']) || text.contains("$(")) {
                return opaque("backslash or command substitution in the value");
            }
            let quote = if q == '"' {
                Quote::Double
            } else {
                Quote::Single
            };
            (content, start + close + 2, quote)
        }
        _ => {
            let len = value_part.find(is_shell_blank).unwrap_or(value_part.len());
            let text = &value_part[..len];
            if text.contains(['"', '\'', '\\', '`', ';', '&', '|', '<', '>', '(', ')']) {
                return opaque("shell quoting or operators in an unquoted value");
            }
            ((start, start + len), start + len, Quote::Bare)
        }
    };
    let rest = &line[end..];
    if !rest.is_empty() {
        let after = rest.trim_start_matches(is_shell_blank);
        if !rest.starts_with(is_shell_blank) || !(after.is_empty() || after.starts_with('#')) {
            return opaque("more shell code after the value");
        }
    }
    Some(Assign::Plain {
        word: (start, end),
        content,
        quote,
    })
}

/// Quotes `text` for the shell, in the line's style when possible.
fn encode(text: &str, prefer: Quote) -> Option<String> {
    if text.contains(['\n', '\r']) {
        return None;
    }
    let double = !text.contains(['"', '\\', '`']) && !text.contains("$(");
    // A `$` written inside double quotes (`$GRUB_CMDLINE_LINUX_DEFAULT`) is an expansion that
    // single quotes would turn into text: only a line that already used single quotes keeps them.
    let single = !text.contains('\'') && (prefer == Quote::Single || !text.contains('$'));
    let bare = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.,:=/@%+-".contains(c));
    let order = match prefer {
        Quote::Bare => [Quote::Bare, Quote::Double, Quote::Single],
        Quote::Double => [Quote::Double, Quote::Single, Quote::Double],
        Quote::Single => [Quote::Single, Quote::Double, Quote::Single],
    };
    order.into_iter().find_map(|q| match q {
        Quote::Bare if bare => Some(text.to_string()),
        Quote::Double if double => Some(format!("\"{text}\"")),
        Quote::Single if single => Some(format!("'{text}'")),
        _ => None,
    })
}

/// `/etc/default/grub` (or one of `/etc/default/grub.d/*.cfg`), a shell file of variable
/// assignments that `update-grub` sources.
///
/// The kernel command line of the normal boot entries is `GRUB_CMDLINE_LINUX` followed by
/// `GRUB_CMDLINE_LINUX_DEFAULT`. Each may be written `NAME="…"`, `NAME='…'` or `NAME=…`,
/// possibly after `export`, possibly more than once: the shell keeps the last assignment, so reads
/// and edits use the last one. A value that refers to the variable itself
/// (`"$GRUB_CMDLINE_LINUX_DEFAULT iommu=pt"`) keeps that text as a word of its [`Cmdline`].
/// An assignment written any other way (a value over several lines, backslashes, command
/// substitution, several commands on the line) is reported by [`GrubDefault::problems`] and makes
/// reads and edits of that variable an [`Error::Unsupported`] rather than a guess.
///
/// Drop-ins in `/etc/default/grub.d/*.cfg` are sourced after this file and can override the
/// variables: see [`GrubDefault::load_dir`] and [`GrubDefault::assigns`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrubDefault {
    lines: Vec<Line>,
    path: PathBuf,
}

impl GrubDefault {
    /// Parses the file's text. Never fails; see [`GrubDefault::problems`].
    pub fn parse(s: &str) -> GrubDefault {
        GrubDefault {
            lines: split_lines(s),
            path: PathBuf::new(),
        }
    }

    /// The text, byte for byte as parsed, with edits applied.
    pub fn render(&self) -> String {
        render_lines(&self.lines)
    }

    /// Reads `/etc/default/grub`; `None` when the file does not exist.
    pub fn load(root: &SysRoot) -> Result<Option<GrubDefault>, Error> {
        let path = root.etc("default/grub");
        Ok(read_opt(root, &path)?.map(|s| GrubDefault::parse(&s).with_path(path)))
    }

    /// Reads every `/etc/default/grub.d/*.cfg`, sorted by name as `update-grub` sources them
    /// (after `/etc/default/grub`). Empty when the directory does not exist.
    pub fn load_dir(root: &SysRoot) -> Result<Vec<DropIn<GrubDefault>>, Error> {
        let dir = root.etc("default/grub.d");
        let mut files = crate::load_dir(root, &dir, ".cfg", GrubDefault::parse)?;
        for f in &mut files {
            f.doc.path = f.path.clone();
        }
        Ok(files)
    }

    /// The same document, naming `path` in its errors.
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> GrubDefault {
        self.path = path.into();
        self
    }

    /// The path given by [`GrubDefault::load`] or [`GrubDefault::with_path`] (empty after `parse`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, line: usize, message: String) -> Error {
        let path = if self.path.as_os_str().is_empty() {
            PathBuf::from("<input>")
        } else {
            self.path.clone()
        };
        Error::Unsupported {
            path,
            line,
            message,
        }
    }

    /// The last line assigning `name` (index, analysis).
    fn last(&self, name: &str) -> Option<(usize, Assign)> {
        self.lines
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, l)| analyze(&l.text, name).map(|a| (i, a)))
    }

    /// The 1-based line of the last assignment of `name` (understood or not), `None` when the file
    /// does not assign it. On a drop-in this tells that it overrides `/etc/default/grub`.
    pub fn assigns(&self, name: &str) -> Option<usize> {
        self.last(name).map(|(i, _)| i + 1)
    }

    /// The value of variable `name` as a command line (its last assignment); `None` when absent.
    pub fn cmdline(&self, name: &str) -> Result<Option<Cmdline>, Error> {
        match self.last(name) {
            None => Ok(None),
            Some((i, Assign::Opaque(why))) => Err(self.err(i + 1, format!("{name}: {why}"))),
            Some((i, Assign::Plain { content, .. })) => Ok(Some(Cmdline::parse(
                &self.lines[i].text[content.0..content.1],
            ))),
        }
    }

    /// `GRUB_CMDLINE_LINUX_DEFAULT`.
    pub fn cmdline_linux_default(&self) -> Result<Option<Cmdline>, Error> {
        self.cmdline(GRUB_CMDLINE_LINUX_DEFAULT)
    }

    /// `GRUB_CMDLINE_LINUX`.
    pub fn cmdline_linux(&self) -> Result<Option<Cmdline>, Error> {
        self.cmdline(GRUB_CMDLINE_LINUX)
    }

    /// Writes `cmdline` as the value of `name`: into its last assignment, keeping the line's
    /// quoting (an unquoted value that now needs quotes gets double quotes) and everything around
    /// the value; when absent, as a new line `NAME="…"` at the end. Returns whether the text
    /// changed. Fails when that assignment is not understood or the value cannot be quoted.
    pub fn set_cmdline(&mut self, name: &str, cmdline: &Cmdline) -> Result<bool, Error> {
        let text = cmdline.render();
        let cannot = |this: &Self, line| this.err(line, format!("{name}: cannot quote {text:?}"));
        match self.last(name) {
            Some((i, Assign::Opaque(why))) => Err(self.err(i + 1, format!("{name}: {why}"))),
            Some((
                i,
                Assign::Plain {
                    word,
                    content,
                    quote,
                },
            )) => {
                let line = &self.lines[i].text;
                if line[content.0..content.1] == text {
                    return Ok(false);
                }
                let Some(value) = encode(&text, quote) else {
                    return Err(cannot(self, i + 1));
                };
                let new = format!("{}{}{}", &line[..word.0], value, &line[word.1..]);
                self.lines[i].text = new;
                Ok(true)
            }
            None => {
                let Some(value) = encode(&text, Quote::Double) else {
                    return Err(cannot(self, self.lines.len() + 1));
                };
                append_line(&mut self.lines, format!("{name}={value}"));
                Ok(true)
            }
        }
    }

    /// [`GrubDefault::set_cmdline`] for `GRUB_CMDLINE_LINUX_DEFAULT`.
    pub fn set_cmdline_linux_default(&mut self, cmdline: &Cmdline) -> Result<bool, Error> {
        self.set_cmdline(GRUB_CMDLINE_LINUX_DEFAULT, cmdline)
    }

    /// [`GrubDefault::set_cmdline`] for `GRUB_CMDLINE_LINUX`.
    pub fn set_cmdline_linux(&mut self, cmdline: &Cmdline) -> Result<bool, Error> {
        self.set_cmdline(GRUB_CMDLINE_LINUX, cmdline)
    }

    /// Edits the value of `name` through `f` (an empty command line when absent) and writes it
    /// back. Returns whether the text changed; an absent variable that `f` leaves empty is not
    /// added.
    pub fn edit_cmdline(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Cmdline),
    ) -> Result<bool, Error> {
        let old = self.cmdline(name)?;
        let absent = old.is_none();
        let mut c = old.unwrap_or_default();
        f(&mut c);
        if absent && c.is_empty() {
            return Ok(false);
        }
        self.set_cmdline(name, &c)
    }

    /// [`GrubDefault::edit_cmdline`] for `GRUB_CMDLINE_LINUX_DEFAULT`.
    pub fn edit_cmdline_linux_default(
        &mut self,
        f: impl FnOnce(&mut Cmdline),
    ) -> Result<bool, Error> {
        self.edit_cmdline(GRUB_CMDLINE_LINUX_DEFAULT, f)
    }

    /// [`GrubDefault::edit_cmdline`] for `GRUB_CMDLINE_LINUX`.
    pub fn edit_cmdline_linux(&mut self, f: impl FnOnce(&mut Cmdline)) -> Result<bool, Error> {
        self.edit_cmdline(GRUB_CMDLINE_LINUX, f)
    }

    /// Assignments of the two command-line variables that this crate does not understand, and
    /// unbalanced quotes inside their values.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for (i, l) in self.lines.iter().enumerate() {
            for name in [GRUB_CMDLINE_LINUX_DEFAULT, GRUB_CMDLINE_LINUX] {
                match analyze(&l.text, name) {
                    Some(Assign::Opaque(why)) => {
                        out.push(Problem::new(i + 1, format!("{name}: {why}")));
                    }
                    Some(Assign::Plain { content, .. }) => {
                        let c = Cmdline::parse(&l.text[content.0..content.1]);
                        out.extend(
                            c.problems()
                                .into_iter()
                                .map(|p| Problem::new(i + 1, format!("{name}: {}", p.message))),
                        );
                    }
                    None => {}
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(input: &str, f: impl Fn(&mut Cmdline) + Copy) -> String {
        let mut g = GrubDefault::parse(input);
        g.edit_cmdline_linux_default(f).unwrap();
        let once = g.render();
        let mut again = GrubDefault::parse(&once);
        assert!(!again.edit_cmdline_linux_default(f).unwrap(), "{input:?}");
        assert_eq!(again.render(), once);
        once
    }

    fn iommu(c: &mut Cmdline) {
        c.set("intel_iommu", Some("on"));
        c.set("iommu", Some("pt"));
    }

    #[test]
    fn every_quoting_style() {
        for (input, want) in [
            (
                "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n",
                "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt\"\n",
            ),
            (
                "GRUB_CMDLINE_LINUX_DEFAULT='quiet splash'\n",
                "GRUB_CMDLINE_LINUX_DEFAULT='quiet splash intel_iommu=on iommu=pt'\n",
            ),
            (
                "GRUB_CMDLINE_LINUX_DEFAULT=quiet\n",
                "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt\"\n",
            ),
            (
                "  export GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"  # why\r\n",
                "  export GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt\"  # why\r\n",
            ),
            (
                "GRUB_CMDLINE_LINUX_DEFAULT=\"\"",
                "GRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on iommu=pt\"",
            ),
            (
                "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT splash\"\n",
                "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT splash intel_iommu=on iommu=pt\"\n",
            ),
            (
                "GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX=\"\"",
                "GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX=\"\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on iommu=pt\"\n",
            ),
            (
                "GRUB_TIMEOUT=5\r\n",
                "GRUB_TIMEOUT=5\r\nGRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on iommu=pt\"\r\n",
            ),
            (
                "#GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n",
                "#GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on iommu=pt\"\n",
            ),
        ] {
            assert_eq!(edit(input, iommu), want, "{input:?}");
        }
    }

    #[test]
    fn the_two_variables_are_told_apart() {
        let g = GrubDefault::parse(
            "GRUB_CMDLINE_LINUX=\"root=ZFS=rpool/ROOT/pve-1 boot=zfs\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n",
        );
        let linux = g.cmdline_linux().unwrap().unwrap();
        assert_eq!(linux.get("root"), Some(Some("ZFS=rpool/ROOT/pve-1")));
        assert_eq!(
            g.cmdline_linux_default().unwrap().unwrap().render(),
            "quiet"
        );
        assert_eq!(g.assigns(GRUB_CMDLINE_LINUX), Some(1));
        assert_eq!(g.assigns(GRUB_CMDLINE_LINUX_DEFAULT), Some(2));
    }

    #[test]
    fn unknown_assignments_are_problems_and_errors() {
        for input in [
            "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\n splash\"\n",
            "GRUB_CMDLINE_LINUX_DEFAULT=\"$(cat /x)\"\n",
            "GRUB_CMDLINE_LINUX_DEFAULT=\"a\"; GRUB_CMDLINE_LINUX_DEFAULT=\"b\"\n",
            "[ -x /x ] && GRUB_CMDLINE_LINUX_DEFAULT=quiet\n",
            "GRUB_CMDLINE_LINUX_DEFAULT+=\" x\"\n",
        ] {
            let mut g = GrubDefault::parse(input).with_path("etc/default/grub");
            assert_eq!(g.problems().len(), 1, "{input:?}");
            let err = g.edit_cmdline_linux_default(iommu).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("etc/default/grub:1: GRUB_CMDLINE_LINUX_DEFAULT"),
                "{err}"
            );
            assert_eq!(g.render(), input);
        }
    }

    #[test]
    fn values_that_cannot_be_quoted_are_errors() {
        let mut g = GrubDefault::parse("GRUB_CMDLINE_LINUX_DEFAULT='a'\n");
        let mut c = Cmdline::parse("it's \"x y\"");
        assert!(g.set_cmdline_linux_default(&c).is_err());
        c = Cmdline::parse("foo=\"x y\"");
        assert!(g.set_cmdline_linux_default(&c).unwrap());
        assert_eq!(g.render(), "GRUB_CMDLINE_LINUX_DEFAULT='foo=\"x y\"'\n");
        let mut g = GrubDefault::parse("GRUB_CMDLINE_LINUX_DEFAULT=\"a\"\n");
        assert!(g.set_cmdline_linux_default(&c).unwrap());
        assert_eq!(g.render(), "GRUB_CMDLINE_LINUX_DEFAULT='foo=\"x y\"'\n");
    }

    #[test]
    fn absent_and_untouched_adds_nothing() {
        let mut g = GrubDefault::parse("GRUB_TIMEOUT=5");
        assert!(!g.edit_cmdline_linux_default(|_| {}).unwrap());
        assert_eq!(g.render(), "GRUB_TIMEOUT=5");
    }
}
