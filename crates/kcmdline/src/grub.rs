//! `/etc/default/grub`: the shell file `update-grub` sources.

use std::path::{Path, PathBuf};

use vfiokit_sysfs::SysRoot;

use crate::{
    Cmdline, DropIn, Error, Line, Problem, Words, append_line, read_opt, render_lines, split_lines,
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

/// Whether line `i` of `lines` sits inside shell control flow (`if`, `case`, loops, a function
/// or a `{ … }` group), where update-grub may or may not run it: counted from the first word of
/// each command (after `;`) of the lines before it.
fn in_control_flow(lines: &[Line], i: usize) -> bool {
    let mut depth: usize = 0;
    for l in &lines[..i] {
        let text = l.text.trim_start_matches(is_shell_blank);
        if text.starts_with('#') {
            continue;
        }
        for command in text.split(';') {
            let command = command.trim_matches(is_shell_blank);
            let first = command.split(is_shell_blank).next().unwrap_or("");
            match first {
                "if" | "case" | "for" | "while" | "until" | "{" => depth += 1,
                "fi" | "esac" | "done" | "}" => depth = depth.saturating_sub(1),
                _ if command.ends_with('{') => depth += 1,
                _ => {}
            }
        }
    }
    depth > 0
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
            .find_map(|(i, _)| self.assign_at(i, name).map(|a| (i, a)))
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
            )) => self
                .replace_value(i, word, content, quote, &text)
                .ok_or_else(|| cannot(self, i + 1)),
            None => {
                // A new line at the end would land inside an unclosed `if`, loop or group.
                if in_control_flow(&self.lines, self.lines.len()) {
                    return Err(self.err(
                        self.lines.len(),
                        format!("{name}: the file ends inside shell control flow, where a new assignment would not always run"),
                    ));
                }
                let Some(value) = encode(&text, Quote::Double) else {
                    return Err(cannot(self, self.lines.len() + 1));
                };
                append_line(&mut self.lines, format!("{name}={value}"));
                Ok(true)
            }
        }
    }

    /// Writes `text` as the value of the assignment on line index `i` (already analysed), in
    /// the line's quoting when possible. `Some(changed)`, or `None` when it cannot be quoted.
    fn replace_value(
        &mut self,
        i: usize,
        word: (usize, usize),
        content: (usize, usize),
        quote: Quote,
        text: &str,
    ) -> Option<bool> {
        let line = &self.lines[i].text;
        if line[content.0..content.1] == *text {
            return Some(false);
        }
        let value = encode(text, quote)?;
        let new = format!("{}{}{}", &line[..word.0], value, &line[word.1..]);
        self.lines[i].text = new;
        Some(true)
    }

    /// The assignment of `name` on line index `i`: opaque inside shell control flow, whose
    /// branches vfiokit does not evaluate.
    fn assign_at(&self, i: usize, name: &str) -> Option<Assign> {
        let a = analyze(&self.lines[i].text, name)?;
        if in_control_flow(&self.lines, i) {
            return Some(Assign::Opaque(
                "assigned inside shell control flow (if, case, a loop or a function), which update-grub may not run: vfiokit does not evaluate it"
                    .to_string(),
            ));
        }
        Some(a)
    }

    /// Every line assigning `name`, in order (index, analysis).
    fn all(&self, name: &str) -> Vec<(usize, Assign)> {
        self.lines
            .iter()
            .enumerate()
            .filter_map(|(i, _)| self.assign_at(i, name).map(|a| (i, a)))
            .collect()
    }

    /// The value of the assignment of `name` on line index `i`, as the shell reads it: its
    /// words, and the index of the word that expands the variable's previous value (`$NAME`,
    /// `${NAME}`; not inside single quotes). Any other expansion is an error.
    fn segment(&self, i: usize, name: &str) -> Result<Segment, Error> {
        let Some(Assign::Plain { content, quote, .. }) = analyze(&self.lines[i].text, name) else {
            return Err(self.err(i + 1, format!("{name}: not a plain assignment")));
        };
        let words = Words::parse(
            &self.lines[i].text[content.0..content.1],
            true,
            crate::cmdline::is_blank,
        );
        let mut expands = None;
        if quote != Quote::Single {
            let refs = [format!("${name}"), format!("${{{name}}}")];
            for (n, (_, w)) in words.items.iter().enumerate() {
                if refs.contains(w) {
                    if expands.is_some() {
                        return Err(self.err(
                            i + 1,
                            format!("{name}: the value refers to itself more than once"),
                        ));
                    }
                    expands = Some(n);
                } else if w.contains('$') {
                    return Err(self.err(
                        i + 1,
                        format!(
                            "{name}: `{w}` expands a shell variable, which vfiokit does not evaluate"
                        ),
                    ));
                }
            }
        }
        Ok(Segment {
            line: i,
            words,
            expands,
        })
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
                match self.assign_at(i, name) {
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

/// One assignment of a command-line variable that makes part of its value: the line, its words,
/// and which word (if any) expands the value the variable had before (`"$NAME iommu=pt"`).
#[derive(Debug, Clone)]
struct Segment {
    line: usize,
    words: Words,
    expands: Option<usize>,
}

/// A segment with the file it is in.
#[derive(Debug, Clone)]
struct Source {
    file: usize,
    seg: Segment,
}

/// Where a word of the new value goes, relative to the words of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    Before(usize),
    After(usize),
    End,
}

/// What `update-grub` reads: `/etc/default/grub`, then every `/etc/default/grub.d/*.cfg` in name
/// order, all sourced by one shell. The command line of a variable is its value after the last
/// file: a drop-in that assigns it overrides `/etc/default/grub`, and a drop-in that extends it
/// (`GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT splash"`) adds its words to the value
/// of the files before.
///
/// Reads ([`GrubConfig::cmdline`]) evaluate that chain. An edit ([`GrubConfig::edit_cmdline`])
/// sees the whole value and writes each change where it belongs: a word that is removed or
/// rewritten in the assignment that holds it, a new word at the end of the *base* — the last
/// assignment that does not extend the variable (the first extending one when every assignment
/// extends) — so that drop-ins that only add words keep them unchanged. An assignment this crate
/// does not understand in that chain, or a value that expands another variable, is an
/// [`Error::Unsupported`] naming its file and line, never a guess.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrubConfig {
    files: Vec<GrubDefault>,
}

impl GrubConfig {
    /// The files in the order `update-grub` sources them: `/etc/default/grub` first.
    pub fn new(files: Vec<GrubDefault>) -> GrubConfig {
        GrubConfig { files }
    }

    /// Reads `/etc/default/grub` (empty when missing) and its drop-ins.
    pub fn load(root: &SysRoot) -> Result<GrubConfig, Error> {
        let main = GrubDefault::load(root)?
            .unwrap_or_else(|| GrubDefault::default().with_path(root.etc("default/grub")));
        let mut files = vec![main];
        files.extend(GrubDefault::load_dir(root)?.into_iter().map(|d| d.doc));
        Ok(GrubConfig { files })
    }

    /// The files, in sourcing order.
    pub fn files(&self) -> &[GrubDefault] {
        &self.files
    }

    /// The assignments that make the value of `name` (outermost last), or `None` when no file
    /// assigns it.
    fn chain(&self, name: &str) -> Result<Option<Vec<Source>>, Error> {
        let all: Vec<(usize, usize, Assign)> = self
            .files
            .iter()
            .enumerate()
            .flat_map(|(f, d)| d.all(name).into_iter().map(move |(i, a)| (f, i, a)))
            .collect();
        if all.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::new();
        for (file, line, assign) in all.into_iter().rev() {
            if let Assign::Opaque(why) = assign {
                return Err(self.files[file].err(line + 1, format!("{name}: {why}")));
            }
            let seg = self.files[file].segment(line, name)?;
            let base = seg.expands.is_none();
            out.push(Source { file, seg });
            if base {
                break;
            }
        }
        out.reverse();
        Ok(Some(out))
    }

    /// The words of the value in order, each with its source and its index there.
    fn compose(chain: &[Source]) -> Vec<(usize, usize)> {
        let mut flat: Vec<(usize, usize)> = Vec::new();
        for (s, src) in chain.iter().enumerate() {
            let items = src.seg.words.items.len();
            match src.seg.expands {
                None => flat = (0..items).map(|w| (s, w)).collect(),
                Some(at) => {
                    let mut next: Vec<(usize, usize)> = (0..at).map(|w| (s, w)).collect();
                    next.append(&mut flat);
                    next.extend((at + 1..items).map(|w| (s, w)));
                    flat = next;
                }
            }
        }
        flat
    }

    fn word(chain: &[Source], (s, w): (usize, usize)) -> &str {
        &chain[s].seg.words.items[w].1
    }

    /// The value of `name` once every file is sourced; `None` when no file assigns it.
    pub fn cmdline(&self, name: &str) -> Result<Option<Cmdline>, Error> {
        let Some(chain) = self.chain(name)? else {
            return Ok(None);
        };
        if let [one] = chain.as_slice()
            && one.seg.expands.is_none()
        {
            // One plain assignment: its text as written.
            return Ok(Some(Cmdline {
                words: one.seg.words.clone(),
            }));
        }
        let words: Vec<&str> = Self::compose(&chain)
            .into_iter()
            .map(|at| Self::word(&chain, at))
            .collect();
        Ok(Some(Cmdline::parse(&words.join(" "))))
    }

    /// `GRUB_CMDLINE_LINUX_DEFAULT` after every file.
    pub fn cmdline_linux_default(&self) -> Result<Option<Cmdline>, Error> {
        self.cmdline(GRUB_CMDLINE_LINUX_DEFAULT)
    }

    /// `GRUB_CMDLINE_LINUX` after every file.
    pub fn cmdline_linux(&self) -> Result<Option<Cmdline>, Error> {
        self.cmdline(GRUB_CMDLINE_LINUX)
    }

    /// The assignments that make the value of `name`, as `(file index, 1-based line)`: the base
    /// first (the one [`GrubConfig::edit_cmdline`] adds words to), then the ones extending it.
    /// Empty when no file assigns it.
    pub fn sources(&self, name: &str) -> Result<Vec<(usize, usize)>, Error> {
        Ok(self
            .chain(name)?
            .unwrap_or_default()
            .iter()
            .map(|s| (s.file, s.seg.line + 1))
            .collect())
    }

    /// Edits the value of `name` through `f`, which sees the whole value (an empty command line
    /// when no file assigns it), and writes the change into the files as the type's
    /// documentation says; a variable assigned nowhere gets a new line in the first file (when
    /// `f` leaves it non-empty). Returns the indices of the files whose text changed. On error
    /// nothing changes.
    pub fn edit_cmdline(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Cmdline),
    ) -> Result<Vec<usize>, Error> {
        if self.files.is_empty() {
            self.files.push(GrubDefault::default());
        }
        let chain = self.chain(name)?.unwrap_or_default();
        let flat = Self::compose(&chain);
        let old: Vec<&str> = flat.iter().map(|&at| Self::word(&chain, at)).collect();
        let last = chain.last().map_or((0, 0), |s| (s.file, s.seg.line + 1));
        let refuse =
            |this: &Self, why: String| this.files[last.0].err(last.1, format!("{name}: {why}"));
        let mut c = self.cmdline(name)?.unwrap_or_default();
        if c.words
            .items
            .iter()
            .map(|(_, w)| w.as_str())
            .ne(old.iter().copied())
        {
            return Err(refuse(
                self,
                "a quote spans the words of several assignments; edit the files by hand".into(),
            ));
        }
        f(&mut c);
        let new: Vec<&str> = c.words.items.iter().map(|(_, w)| w.as_str()).collect();
        if new == old {
            return Ok(Vec::new());
        }
        if let Some(w) = new.iter().find(|w| w.contains('$') && !old.contains(w)) {
            return Err(refuse(
                self,
                format!("cannot write `{w}`: the shell would expand its `$`"),
            ));
        }
        let whole = match chain.as_slice() {
            // Assigned nowhere: a new line in the first file.
            [] => Some(0),
            // One plain assignment, the last of all: written as a whole, blanks kept.
            [one] if one.seg.expands.is_none() => Some(one.file),
            _ => None,
        };
        if let Some(file) = whole {
            return Ok(match self.files[file].set_cmdline(name, &c)? {
                true => vec![file],
                false => Vec::new(),
            });
        }
        // Where each word of the new value goes.
        let mut deleted = vec![Vec::new(); chain.len()];
        let mut inserts: Vec<Vec<(Anchor, String)>> = vec![Vec::new(); chain.len()];
        let ops = align(&old, &new);
        let mut prev: Option<(usize, usize)> = None;
        let mut after_delete = false;
        for (k, op) in ops.iter().enumerate() {
            match *op {
                Op::Keep(i) => {
                    prev = Some(flat[i]);
                    after_delete = false;
                }
                Op::Delete(i) => {
                    deleted[flat[i].0].push(flat[i].1);
                    prev = Some(flat[i]);
                    after_delete = true;
                }
                Op::Insert(j) => {
                    let word = new[j].to_string();
                    let trailing = !ops[k..].iter().any(|o| !matches!(o, Op::Insert(_)));
                    let (s, anchor) = match prev {
                        // A new word: at the end of the base.
                        _ if trailing && !after_delete => (0, Anchor::End),
                        // In place of, or after, the word before it.
                        Some((s, w)) => (s, Anchor::After(w)),
                        None => {
                            let next = ops[k..].iter().find_map(|o| match *o {
                                Op::Keep(i) | Op::Delete(i) => Some(flat[i]),
                                Op::Insert(_) => None,
                            });
                            match next {
                                Some((s, w)) => (s, Anchor::Before(w)),
                                None => (0, Anchor::End),
                            }
                        }
                    };
                    inserts[s].push((anchor, word));
                }
            }
        }
        let saved = self.files.clone();
        let mut changed = Vec::new();
        for (s, src) in chain.iter().enumerate() {
            if deleted[s].is_empty() && inserts[s].is_empty() {
                continue;
            }
            let words = rebuild(&src.seg.words, &deleted[s], &inserts[s]);
            let doc = &mut self.files[src.file];
            let line = src.seg.line;
            let Some(Assign::Plain {
                word,
                content,
                quote,
            }) = analyze(&doc.lines[line].text, name)
            else {
                continue;
            };
            match doc.replace_value(line, word, content, quote, &words.render()) {
                Some(true) => changed.push(src.file),
                Some(false) => {}
                None => {
                    let e = doc.err(
                        line + 1,
                        format!("{name}: cannot quote {:?}", words.render()),
                    );
                    self.files = saved;
                    return Err(e);
                }
            }
        }
        // The files must now give the value `f` asked for (new words may sit earlier).
        let mut want: Vec<&str> = new.clone();
        want.sort_unstable();
        let got = self.cmdline(name);
        let ok = matches!(&got, Ok(Some(g)) if {
            let mut have: Vec<&str> = g.words.items.iter().map(|(_, w)| w.as_str()).collect();
            have.sort_unstable();
            have == want
        });
        if !ok {
            self.files = saved;
            return Err(refuse(
                self,
                "the change cannot be written into the assignments that make the value; edit the files by hand".into(),
            ));
        }
        changed.sort_unstable();
        changed.dedup();
        Ok(changed)
    }

    /// [`GrubConfig::edit_cmdline`] for `GRUB_CMDLINE_LINUX_DEFAULT`.
    pub fn edit_cmdline_linux_default(
        &mut self,
        f: impl FnOnce(&mut Cmdline),
    ) -> Result<Vec<usize>, Error> {
        self.edit_cmdline(GRUB_CMDLINE_LINUX_DEFAULT, f)
    }
}

/// One step from the old words to the new.
#[derive(Debug, Clone, Copy)]
enum Op {
    Keep(usize),
    Delete(usize),
    Insert(usize),
}

/// The longest common subsequence of two word lists, as steps (deletions before insertions at
/// the same place, so a rewritten word is a deletion followed by its new text).
fn align(old: &[&str], new: &[&str]) -> Vec<Op> {
    let (n, m) = (old.len(), new.len());
    let mut len = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            len[i][j] = if old[i] == new[j] {
                len[i + 1][j + 1] + 1
            } else {
                len[i + 1][j].max(len[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::new();
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            ops.push(Op::Keep(i));
            i += 1;
            j += 1;
        } else if i < n && (j == m || len[i + 1][j] >= len[i][j + 1]) {
            ops.push(Op::Delete(i));
            i += 1;
        } else {
            ops.push(Op::Insert(j));
            j += 1;
        }
    }
    ops
}

/// A segment's words without `deleted` and with `inserts`, blanks kept where words stay.
fn rebuild(words: &Words, deleted: &[usize], inserts: &[(Anchor, String)]) -> Words {
    let at = |a: Anchor| {
        inserts
            .iter()
            .filter(move |(x, _)| *x == a)
            .map(|(_, w)| (" ".to_string(), w.clone()))
    };
    let mut items = Vec::new();
    for (i, item) in words.items.iter().enumerate() {
        items.extend(at(Anchor::Before(i)));
        let mut after: Vec<(String, String)> = at(Anchor::After(i)).collect();
        if !deleted.contains(&i) {
            items.push(item.clone());
        } else if let Some(first) = after.first_mut() {
            // A rewritten word keeps the blanks before it.
            first.0 = item.0.clone();
        }
        items.append(&mut after);
    }
    items.extend(at(Anchor::End));
    let lead = words
        .items
        .first()
        .map(|(s, _)| s.clone())
        .unwrap_or_default();
    for (k, (sep, _)) in items.iter_mut().enumerate() {
        if k == 0 {
            *sep = lead.clone();
        } else if sep.is_empty() {
            *sep = " ".to_string();
        }
    }
    Words {
        items,
        trailing: words.trailing.clone(),
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

    fn config(files: &[(&str, &str)]) -> GrubConfig {
        GrubConfig::new(
            files
                .iter()
                .map(|(p, t)| GrubDefault::parse(t).with_path(p))
                .collect(),
        )
    }

    fn texts(g: &GrubConfig) -> Vec<String> {
        g.files().iter().map(GrubDefault::render).collect()
    }

    fn value(g: &GrubConfig) -> String {
        g.cmdline_linux_default().unwrap().unwrap().render()
    }

    #[test]
    fn a_drop_in_that_assigns_decides_and_is_edited() {
        let mut g = config(&[
            ("grub", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"),
            ("grub.d/a.cfg", "GRUB_TIMEOUT=1\n"),
            (
                "grub.d/zz.cfg",
                "GRUB_CMDLINE_LINUX_DEFAULT='quiet splash'\n",
            ),
        ]);
        assert_eq!(value(&g), "quiet splash");
        assert_eq!(g.sources(GRUB_CMDLINE_LINUX_DEFAULT).unwrap(), [(2, 1)]);
        assert_eq!(g.edit_cmdline_linux_default(iommu).unwrap(), [2]);
        assert_eq!(
            texts(&g),
            [
                "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n",
                "GRUB_TIMEOUT=1\n",
                "GRUB_CMDLINE_LINUX_DEFAULT='quiet splash intel_iommu=on iommu=pt'\n"
            ]
        );
        assert!(g.edit_cmdline_linux_default(iommu).unwrap().is_empty());
    }

    #[test]
    fn a_drop_in_that_extends_keeps_its_words_and_new_ones_go_to_the_base() {
        let main = "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n";
        let ext =
            "GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT init=/lib/sysvinit/init\"\n";
        let mut g = config(&[("grub", main), ("grub.d/init-select.cfg", ext)]);
        assert_eq!(value(&g), "quiet init=/lib/sysvinit/init");
        assert_eq!(
            g.sources(GRUB_CMDLINE_LINUX_DEFAULT).unwrap(),
            [(0, 1), (1, 1)]
        );
        assert_eq!(g.edit_cmdline_linux_default(iommu).unwrap(), [0]);
        assert_eq!(
            texts(&g),
            [
                "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt\"\n",
                ext
            ]
        );
        assert_eq!(
            value(&g),
            "quiet intel_iommu=on iommu=pt init=/lib/sysvinit/init"
        );
        assert!(g.edit_cmdline_linux_default(iommu).unwrap().is_empty());
        // A word the drop-in holds is removed or rewritten there.
        assert_eq!(
            g.edit_cmdline_linux_default(|c| {
                c.set("init", Some("/sbin/init"));
            })
            .unwrap(),
            [1]
        );
        assert!(
            texts(&g)[1].ends_with("_DEFAULT init=/sbin/init\"\n"),
            "{:?}",
            texts(&g)
        );
        assert_eq!(
            g.edit_cmdline_linux_default(|c| {
                c.remove("init");
                c.remove("iommu");
            })
            .unwrap(),
            [0, 1]
        );
        assert_eq!(
            texts(&g),
            [
                "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\"\n",
                "GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT\"\n"
            ]
        );
    }

    #[test]
    fn extensions_in_one_file_and_without_a_base() {
        let mut g = config(&[(
            "grub",
            "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"${GRUB_CMDLINE_LINUX_DEFAULT} splash\"\n",
        )]);
        assert_eq!(value(&g), "quiet splash");
        assert_eq!(g.edit_cmdline_linux_default(iommu).unwrap(), [0]);
        assert_eq!(
            texts(&g),
            [
                "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"${GRUB_CMDLINE_LINUX_DEFAULT} splash\"\n"
            ]
        );
        // Unset before its first assignment: the words go to the first one.
        let mut g = config(&[
            ("grub", "GRUB_TIMEOUT=5\n"),
            (
                "grub.d/x.cfg",
                "GRUB_CMDLINE_LINUX_DEFAULT=$GRUB_CMDLINE_LINUX_DEFAULT\n",
            ),
        ]);
        assert_eq!(value(&g), "");
        assert_eq!(g.edit_cmdline_linux_default(iommu).unwrap(), [1]);
        assert_eq!(
            texts(&g)[1],
            "GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT intel_iommu=on iommu=pt\"\n"
        );
        // Single quotes do not expand.
        let g = config(&[
            ("grub", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"),
            (
                "grub.d/x.cfg",
                "GRUB_CMDLINE_LINUX_DEFAULT='$GRUB_CMDLINE_LINUX_DEFAULT'\n",
            ),
        ]);
        assert_eq!(value(&g), "$GRUB_CMDLINE_LINUX_DEFAULT");
    }

    #[test]
    fn what_cannot_be_evaluated_is_an_error_naming_the_file_and_line() {
        for (ext, want) in [
            (
                "\nGRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX foo\"\n",
                "grub.d/x.cfg:2: GRUB_CMDLINE_LINUX_DEFAULT: `$GRUB_CMDLINE_LINUX` expands a shell variable, which vfiokit does not evaluate",
            ),
            (
                "[ -e /x ] && GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT x\"\n",
                "grub.d/x.cfg:1: GRUB_CMDLINE_LINUX_DEFAULT: assigned by shell code that is not a plain NAME=value line",
            ),
        ] {
            let mut g = config(&[
                ("grub", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"),
                ("grub.d/x.cfg", ext),
            ]);
            assert_eq!(g.cmdline_linux_default().unwrap_err().to_string(), want);
            assert_eq!(
                g.edit_cmdline_linux_default(iommu).unwrap_err().to_string(),
                want
            );
            assert_eq!(texts(&g)[1], ext);
        }
        // What a later plain assignment overrides does not matter.
        let g = config(&[
            ("grub", "GRUB_CMDLINE_LINUX_DEFAULT=\"$(cat /x)\"\n"),
            ("grub.d/x.cfg", "GRUB_CMDLINE_LINUX_DEFAULT=quiet\n"),
        ]);
        assert_eq!(value(&g), "quiet");
    }

    #[test]
    fn absent_and_untouched_adds_nothing() {
        let mut g = GrubDefault::parse("GRUB_TIMEOUT=5");
        assert!(!g.edit_cmdline_linux_default(|_| {}).unwrap());
        assert_eq!(g.render(), "GRUB_TIMEOUT=5");
    }
}
