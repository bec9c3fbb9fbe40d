//! `/etc/modprobe.d/*.conf`: what kmod's `modprobe` does when it loads a module.

use std::ops::Range;

use vfiokit_sysfs::SysRoot;

use crate::cmdline::{render_param, valid_key, valid_value};
use crate::{
    Cmdline, DropIn, Error, Line, Problem, Words, append_line, read_opt, render_lines, same_module,
    split_lines,
};

/// kmod splits configuration lines at spaces and tabs only.
fn is_kmod_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The words of a logical line with their byte ranges.
fn words(s: &str) -> Vec<(Range<usize>, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices().chain(std::iter::once((s.len(), ' '))) {
        match (is_kmod_blank(c), start) {
            (true, Some(st)) => {
                out.push((st..i, &s[st..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

fn valid_module(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('#')
        && !name.contains(|c: char| c.is_whitespace() || c == '\\')
}

/// A logical line that ends with a backslash must not be followed by a line break (that would
/// continue it); a trailing space keeps its meaning for kmod.
fn guard(mut text: String) -> String {
    if text.ends_with('\\') {
        text.push(' ');
    }
    text
}

/// A logical line: its physical lines, its text, and its directive with the end of its module
/// word (or why it is not one).
type Analyzed = (
    Range<usize>,
    String,
    Result<Option<(Directive, usize)>, String>,
);

/// A `softdep` line: modules loaded before (`pre:`) and after (`post:`) `module`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Softdep {
    /// The module the line is about, as written.
    pub module: String,
    /// Loaded before it.
    pub pre: Vec<String>,
    /// Loaded after it.
    pub post: Vec<String>,
}

/// One understood line of a modprobe configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// `blacklist M`: M's aliases are ignored (it is not loaded for a device; an explicit
    /// `modprobe M` or a dependency still loads it).
    Blacklist {
        /// The module, as written.
        module: String,
    },
    /// `options M k=v …`: parameters passed to M when it loads.
    Options {
        /// The module, as written.
        module: String,
        /// The parameters, parsed as the kernel parses them.
        options: Cmdline,
    },
    /// `softdep M pre: A post: B`.
    Softdep(Softdep),
    /// `weakdep M A B`: modules put into the initramfs with M but not loaded with it.
    Weakdep {
        /// The module, as written.
        module: String,
        /// The weak dependencies.
        deps: Vec<String>,
    },
    /// `install M command…`: run the command instead of loading M.
    Install {
        /// The module, as written.
        module: String,
        /// The shell command.
        command: String,
    },
    /// `remove M command…`: run the command instead of unloading M.
    Remove {
        /// The module, as written.
        module: String,
        /// The shell command.
        command: String,
    },
    /// `alias WILDCARD M`.
    Alias {
        /// The alias pattern.
        wildcard: String,
        /// The module it names.
        module: String,
    },
}

/// The directive of a logical line: `Ok(None)` for blanks and comments, `Err` for a line kmod
/// would reject or ignore. The usize is where the module word ends.
fn directive(line: &str) -> Result<Option<(Directive, usize)>, String> {
    let w = words(line);
    let Some((_, cmd)) = w.first() else {
        return Ok(None);
    };
    if cmd.starts_with('#') {
        return Ok(None);
    }
    let known = [
        "blacklist",
        "options",
        "softdep",
        "weakdep",
        "install",
        "remove",
        "alias",
    ];
    if !known.contains(cmd) {
        return Err(format!("unknown command {cmd:?}"));
    }
    let Some((range, module)) = w.get(1).cloned() else {
        return Err(format!("{cmd} without a module name"));
    };
    let end = range.end;
    let module = module.to_string();
    let rest_words = || w[2..].iter().map(|(_, s)| s.to_string());
    let command = || line[end..].trim_start_matches(is_kmod_blank).to_string();
    let d = match *cmd {
        "blacklist" => Directive::Blacklist { module },
        "options" => Directive::Options {
            module,
            options: Cmdline::parse(&line[end..]),
        },
        "softdep" => {
            let (mut pre, mut post) = (Vec::new(), Vec::new());
            let mut mode = None;
            for word in rest_words() {
                match word.as_str() {
                    "pre:" => mode = Some(true),
                    "post:" => mode = Some(false),
                    _ => match mode {
                        Some(true) => pre.push(word),
                        Some(false) => post.push(word),
                        None => return Err(format!("softdep: {word:?} before pre: or post:")),
                    },
                }
            }
            Directive::Softdep(Softdep { module, pre, post })
        }
        "weakdep" => Directive::Weakdep {
            module,
            deps: rest_words().collect(),
        },
        "install" => Directive::Install {
            module,
            command: command(),
        },
        "remove" => Directive::Remove {
            module,
            command: command(),
        },
        _ => {
            let Some((_, target)) = w.get(2) else {
                return Err(format!("alias {module:?} without a module name"));
            };
            Directive::Alias {
                wildcard: module,
                module: target.to_string(),
            }
        }
    };
    Ok(Some((d, end)))
}

/// A modprobe configuration file (`/etc/modprobe.d/vfio.conf`).
///
/// Lines: `blacklist M`, `options M k=v …`, `softdep M pre: A B post: C`, `weakdep M A`,
/// `install M command`, `remove M command`, `alias WILDCARD M`, comments (the first word starts
/// with `#`) and blank lines. A backslash at the end of a line continues it on the next one, as in
/// kmod (the backslash and the line break are dropped); such a logical line keeps its physical
/// lines until an edit rewrites it as one line. Anything else is kept and reported by
/// [`ModprobeConf::problems`]. Module names compare with `-` equal to `_`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModprobeConf {
    lines: Vec<Line>,
}

impl ModprobeConf {
    /// Parses the file's text. Never fails; see [`ModprobeConf::problems`].
    pub fn parse(s: &str) -> ModprobeConf {
        ModprobeConf {
            lines: split_lines(s),
        }
    }

    /// The text, byte for byte as parsed, with edits applied.
    pub fn render(&self) -> String {
        render_lines(&self.lines)
    }

    /// Reads `/etc/modprobe.d/<name>`; `None` when the file does not exist.
    pub fn load(root: &SysRoot, name: &str) -> Result<Option<ModprobeConf>, Error> {
        let path = root.etc("modprobe.d").join(name);
        Ok(read_opt(root, &path)?.map(|s| ModprobeConf::parse(&s)))
    }

    /// The logical lines: physical line ranges.
    fn entries(&self) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let mut start = 0;
        for (i, l) in self.lines.iter().enumerate() {
            if !l.text.ends_with('\\') || l.eol.is_empty() {
                out.push(start..i + 1);
                start = i + 1;
            }
        }
        if start < self.lines.len() {
            out.push(start..self.lines.len());
        }
        out
    }

    fn logical(&self, r: &Range<usize>) -> String {
        let mut out = String::new();
        for i in r.clone() {
            let t = &self.lines[i].text;
            if i + 1 < r.end {
                out.push_str(t.strip_suffix('\\').unwrap_or(t));
            } else {
                out.push_str(t);
            }
        }
        out
    }

    /// Every logical line with its directive (or the reason it is not one).
    fn analyzed(&self) -> Vec<Analyzed> {
        self.entries()
            .into_iter()
            .map(|r| {
                let text = self.logical(&r);
                let d = directive(&text);
                (r, text, d)
            })
            .collect()
    }

    /// The understood lines, each with its (first) 1-based line number.
    pub fn directives(&self) -> Vec<(usize, Directive)> {
        self.analyzed()
            .into_iter()
            .filter_map(|(r, _, d)| Some((r.start + 1, d.ok()??.0)))
            .collect()
    }

    /// Lines kmod rejects or ignores, and CRLF line ends (kmod reads the `\r` as part of the
    /// last word: `blacklist i915\r` does not blacklist `i915`).
    pub fn problems(&self) -> Vec<Problem> {
        let mut out: Vec<Problem> = self
            .analyzed()
            .into_iter()
            .filter_map(|(r, _, d)| d.err().map(|m| Problem::new(r.start + 1, m)))
            .collect();
        if let Some(i) = self.lines.iter().position(|l| l.eol == "\r\n") {
            out.push(Problem::new(
                i + 1,
                "CRLF line end: modprobe reads the carriage return as part of the line",
            ));
            out.sort_by_key(|p| p.line);
        }
        out
    }

    /// The blacklisted modules, as written.
    pub fn blacklists(&self) -> Vec<String> {
        self.directives()
            .into_iter()
            .filter_map(|(_, d)| match d {
                Directive::Blacklist { module } => Some(module),
                _ => None,
            })
            .collect()
    }

    /// Whether `module` is blacklisted here.
    pub fn is_blacklisted(&self, module: &str) -> bool {
        self.blacklists().iter().any(|m| same_module(m, module))
    }

    /// Every parameter of every `options` line for `module`, in order: `(key, value)`, value
    /// `None` for a flag.
    pub fn options(&self, module: &str) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        for (_, d) in self.directives() {
            if let Directive::Options { module: m, options } = d
                && same_module(&m, module)
            {
                out.extend(
                    options
                        .params()
                        .map(|p| (p.key.to_string(), p.value.map(str::to_string))),
                );
            }
        }
        out
    }

    /// The value the module gets for `key` (the last one wins): `None` when not set,
    /// `Some(None)` for a flag.
    pub fn option(&self, module: &str, key: &str) -> Option<Option<String>> {
        self.options(module)
            .into_iter()
            .rfind(|(k, _)| crate::same_param(k, key))
            .map(|(_, v)| v)
    }

    /// The `softdep` lines for `module`.
    pub fn softdeps(&self, module: &str) -> Vec<Softdep> {
        self.directives()
            .into_iter()
            .filter_map(|(_, d)| match d {
                Directive::Softdep(s) if same_module(&s.module, module) => Some(s),
                _ => None,
            })
            .collect()
    }

    fn append(&mut self, text: String) {
        append_line(&mut self.lines, guard(text));
    }

    fn replace(&mut self, r: Range<usize>, text: String) {
        let eol = self.lines[r.end - 1].eol;
        let text = if eol.is_empty() { text } else { guard(text) };
        self.lines.splice(r, [Line::new(text, eol)]);
    }

    /// Appends `blacklist M` unless `module` is blacklisted here. Returns whether the text changed.
    pub fn add_blacklist(&mut self, module: &str) -> bool {
        if !valid_module(module) || self.is_blacklisted(module) {
            return false;
        }
        self.append(format!("blacklist {module}"));
        true
    }

    /// Makes `install M command` the install command of `module`: replaces an existing `install M`
    /// line that differs, else appends one. Returns whether the text changed. A command with a
    /// line break, or an invalid module name, changes nothing.
    pub fn set_install(&mut self, module: &str, command: &str) -> bool {
        if !valid_module(module) || command.contains(['\n', '\r']) || command.trim().is_empty() {
            return false;
        }
        let line = format!("install {module} {}", command.trim());
        let existing = self.analyzed().into_iter().find_map(|(r, _, d)| match d {
            Ok(Some((
                Directive::Install {
                    module: m,
                    command: c,
                },
                _,
            ))) if same_module(&m, module) => Some((r, c)),
            _ => None,
        });
        match existing {
            Some((_, c)) if c.trim() == command.trim() => false,
            Some((r, _)) => {
                self.replace(r, line);
                true
            }
            None => {
                self.append(line);
                true
            }
        }
    }

    /// Removes every `blacklist` line for `module`. Returns whether any was found.
    pub fn remove_blacklist(&mut self, module: &str) -> bool {
        self.remove_where(
            |d| matches!(d, Directive::Blacklist { module: m } if same_module(m, module)),
        )
    }

    /// Removes every understood line `keep_out` selects. Returns whether any was found.
    fn remove_where(&mut self, keep_out: impl Fn(&Directive) -> bool) -> bool {
        let found: Vec<Range<usize>> = self
            .analyzed()
            .into_iter()
            .filter_map(|(r, _, d)| match d {
                Ok(Some((d, _))) if keep_out(&d) => Some(r),
                _ => None,
            })
            .collect();
        for r in found.iter().rev() {
            self.lines.drain(r.clone());
        }
        !found.is_empty()
    }

    /// The `options` lines for `module`: range, logical text, where the options start, options.
    fn option_lines(&self, module: &str) -> Vec<(Range<usize>, String, usize, Cmdline)> {
        self.analyzed()
            .into_iter()
            .filter_map(|(r, text, d)| match d {
                Ok(Some((Directive::Options { module: m, options }, end)))
                    if same_module(&m, module) =>
                {
                    Some((r, text, end, options))
                }
                _ => None,
            })
            .collect()
    }

    /// Sets parameter `key` of `module` to `value` (`None`: a flag): in the last `options` line
    /// for the module that holds `key` (only that parameter is rewritten), else in a new line
    /// `options M key=value` at the end. Returns whether the text changed (`false` too for a name
    /// or value that cannot be written).
    pub fn set_option(&mut self, module: &str, key: &str, value: Option<&str>) -> bool {
        if !valid_module(module) || !valid_key(key) || value.is_some_and(|v| !valid_value(v)) {
            return false;
        }
        let holding = self
            .option_lines(module)
            .into_iter()
            .rfind(|(_, _, _, o)| o.has(key));
        match holding {
            Some((r, text, end, mut options)) => {
                if !options.set(key, value) {
                    return false;
                }
                let new = format!("{}{}", &text[..end], options.render());
                self.replace(r, new);
                true
            }
            None => {
                self.append(format!("options {module} {}", render_param(key, value)));
                true
            }
        }
    }

    /// Adds the PCI ids (`8086:3e92`) missing from `options M ids=…` (the list `vfio-pci`
    /// claims devices by), keeping the order of those present; creates the parameter when
    /// absent. Ids compare without regard to case. Returns whether the text changed.
    pub fn merge_ids(&mut self, module: &str, ids: &[&str]) -> bool {
        let mut want: Vec<&str> = Vec::new();
        for id in ids {
            let ok = !id.is_empty() && !id.contains(',') && !id.contains(char::is_whitespace);
            if ok && !want.iter().any(|w| w.eq_ignore_ascii_case(id)) {
                want.push(id);
            }
        }
        if want.is_empty() {
            return false;
        }
        let have_value = self.option(module, "ids").flatten().unwrap_or_default();
        let mut list: Vec<&str> = have_value.split(',').filter(|s| !s.is_empty()).collect();
        let before = list.len();
        for id in want {
            if !list.iter().any(|h| h.eq_ignore_ascii_case(id)) {
                list.push(id);
            }
        }
        if list.len() == before {
            return false;
        }
        self.set_option(module, "ids", Some(&list.join(",")))
    }

    /// Removes the PCI ids from every `options M ids=…` line; a line left without parameters is
    /// removed. Returns whether the text changed.
    pub fn remove_ids(&mut self, module: &str, ids: &[&str]) -> bool {
        let mut changed = false;
        for (r, text, end, mut options) in self.option_lines(module).into_iter().rev() {
            let Some(Some(value)) = options.get("ids") else {
                continue;
            };
            let keep: Vec<&str> = value
                .split(',')
                .filter(|s| !s.is_empty() && !ids.iter().any(|id| id.eq_ignore_ascii_case(s)))
                .collect();
            let present = value.split(',').filter(|s| !s.is_empty()).count();
            if keep.len() == present {
                continue;
            }
            let keep = keep.join(",");
            if keep.is_empty() {
                options.remove("ids");
            } else {
                options.set("ids", Some(&keep));
            }
            changed = true;
            if options.is_empty() {
                self.lines.drain(r);
            } else {
                self.replace(r, format!("{}{}", &text[..end], options.render()));
            }
        }
        changed
    }

    /// Removes parameter `key` from every `options M …` line; a line left without parameters is
    /// removed. Returns whether the text changed.
    pub fn remove_option(&mut self, module: &str, key: &str) -> bool {
        let mut changed = false;
        for (r, text, end, mut options) in self.option_lines(module).into_iter().rev() {
            if !options.remove(key) {
                continue;
            }
            changed = true;
            if options.is_empty() {
                self.lines.drain(r);
            } else {
                self.replace(r, format!("{}{}", &text[..end], options.render()));
            }
        }
        changed
    }

    /// Removes every `softdep M …` line for `module` whose only soft dependency is `pre:` on
    /// `dep` (the line vfio setups add); lines with other dependencies stay. Returns whether the
    /// text changed.
    pub fn remove_softdep(&mut self, module: &str, dep: &str) -> bool {
        self.remove_where(|d| match d {
            Directive::Softdep(s) => {
                same_module(&s.module, module)
                    && s.post.is_empty()
                    && !s.pre.is_empty()
                    && s.pre.iter().all(|p| same_module(p, dep))
            }
            _ => false,
        })
    }

    /// Makes `module` load after the `pre` modules (`softdep i915 pre: vfio-pci`, so vfio-pci
    /// claims the device first): adds the missing ones to the `pre:` list of the last `softdep`
    /// line for `module`, or appends such a line. Returns whether the text changed.
    pub fn add_softdep(&mut self, module: &str, pre: &[&str]) -> bool {
        if !valid_module(module) {
            return false;
        }
        let last = self
            .analyzed()
            .into_iter()
            .filter_map(|(r, text, d)| match d {
                Ok(Some((Directive::Softdep(s), end))) if same_module(&s.module, module) => {
                    Some((r, text, end, s))
                }
                _ => None,
            })
            .next_back();
        let have: &[String] = last.as_ref().map_or(&[], |(_, _, _, s)| &s.pre);
        let mut missing: Vec<&str> = Vec::new();
        for p in pre {
            let known =
                have.iter().any(|h| same_module(h, p)) || missing.iter().any(|m| same_module(m, p));
            if valid_module(p) && !known && *p != "pre:" && *p != "post:" {
                missing.push(p);
            }
        }
        if missing.is_empty() {
            return false;
        }
        let Some((r, text, end, _)) = last else {
            self.append(format!("softdep {module} pre: {}", missing.join(" ")));
            return true;
        };
        let mut w = Words::parse(&text[end..], false, is_kmod_blank);
        let new_tail = if w.items.is_empty() {
            format!(" pre: {}{}", missing.join(" "), w.trailing)
        } else {
            let marker = |s: &str| s == "pre:" || s == "post:";
            let at = match w.items.iter().rposition(|(_, s)| s == "pre:") {
                Some(p) => (p + 1..w.items.len())
                    .find(|&i| marker(&w.items[i].1))
                    .unwrap_or(w.items.len()),
                None => {
                    w.insert(w.items.len(), "pre:".to_string());
                    w.items.len()
                }
            };
            for (i, m) in missing.iter().enumerate() {
                w.insert(at + i, m.to_string());
            }
            w.render()
        };
        self.replace(r, format!("{}{}", &text[..end], new_tail));
        true
    }

    /// Appends the comment line `# text` unless the file already has that exact comment line
    /// (so a comment written before an appended line is not repeated on a second run). Returns
    /// whether the text changed (`false` too for text with a line break).
    pub fn add_comment_line(&mut self, text: &str) -> bool {
        if text.contains(['\n', '\r']) {
            return false;
        }
        let line = if text.is_empty() {
            "#".to_string()
        } else {
            format!("# {text}")
        };
        let exists = self
            .entries()
            .iter()
            .any(|r| self.logical(r).trim_end() == line.trim_end());
        if exists {
            return false;
        }
        self.append(line);
        true
    }
}

/// Where something was found across the files of `/etc/modprobe.d`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The file name, e.g. `vfio.conf`.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// The value of an option (`None` for a blacklist or a flag).
    pub value: Option<String>,
}

/// Every `*.conf` file of `/etc/modprobe.d`, in the order kmod reads them (sorted by name), to
/// answer "is this module blacklisted anywhere, and where" across files.
///
/// Only `/etc/modprobe.d` is read: kmod also reads `/run/modprobe.d`, `/usr/local/lib/modprobe.d`
/// and `/lib/modprobe.d` (a file there is overridden by one of the same name in `/etc`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModprobeDir {
    files: Vec<DropIn<ModprobeConf>>,
}

impl ModprobeDir {
    /// Reads every `/etc/modprobe.d/*.conf`; empty when the directory does not exist.
    pub fn load(root: &SysRoot) -> Result<ModprobeDir, Error> {
        let files = crate::load_dir(root, &root.etc("modprobe.d"), ".conf", ModprobeConf::parse)?;
        Ok(ModprobeDir { files })
    }

    /// A directory made of already parsed (possibly edited) files, sorted by name.
    pub fn from_files(mut files: Vec<DropIn<ModprobeConf>>) -> ModprobeDir {
        files.sort_by(|a, b| a.name.cmp(&b.name));
        ModprobeDir { files }
    }

    /// The files, in reading order.
    pub fn files(&self) -> &[DropIn<ModprobeConf>] {
        &self.files
    }

    /// The file called `name` (`vfio.conf`).
    pub fn file(&self, name: &str) -> Option<&ModprobeConf> {
        self.files.iter().find(|f| f.name == name).map(|f| &f.doc)
    }

    /// Every `blacklist` line for `module`, in reading order.
    pub fn blacklisted(&self, module: &str) -> Vec<Found> {
        let mut out = Vec::new();
        for f in &self.files {
            for (line, d) in f.doc.directives() {
                if let Directive::Blacklist { module: m } = d
                    && same_module(&m, module)
                {
                    out.push(Found {
                        file: f.name.clone(),
                        line,
                        value: None,
                    });
                }
            }
        }
        out
    }

    /// Every setting of parameter `key` of `module`, in reading order: the last one is what the
    /// module gets.
    pub fn options(&self, module: &str, key: &str) -> Vec<Found> {
        let mut out = Vec::new();
        for f in &self.files {
            for (line, d) in f.doc.directives() {
                if let Directive::Options { module: m, options } = d
                    && same_module(&m, module)
                {
                    for p in options.params().filter(|p| crate::same_param(p.key, key)) {
                        out.push(Found {
                            file: f.name.clone(),
                            line,
                            value: p.value.map(str::to_string),
                        });
                    }
                }
            }
        }
        out
    }

    /// Every `softdep` line for `module` with its file and line.
    pub fn softdeps(&self, module: &str) -> Vec<(Found, Softdep)> {
        let mut out = Vec::new();
        for f in &self.files {
            for (line, d) in f.doc.directives() {
                if let Directive::Softdep(s) = d
                    && same_module(&s.module, module)
                {
                    let found = Found {
                        file: f.name.clone(),
                        line,
                        value: None,
                    };
                    out.push((found, s));
                }
            }
        }
        out
    }

    /// The problems of every file, with its name.
    pub fn problems(&self) -> Vec<(String, Problem)> {
        self.files
            .iter()
            .flat_map(|f| f.doc.problems().into_iter().map(|p| (f.name.clone(), p)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "\
# don't load driver for iGPU and sound card
blacklist i915
blacklist snd_hda_intel
blacklist snd_sof_pci_intel_cnl

# load vfio-pci driver instead
options vfio-pci ids=8086:3e92,8086:a348

#
options kvm ignore_msrs=1
options vfio_iommu_type1 allow_unsafe_interrupts=1
";

    #[test]
    fn the_seed_vfio_conf() {
        let c = ModprobeConf::parse(SEED);
        assert_eq!(c.render(), SEED);
        assert!(c.problems().is_empty());
        assert_eq!(
            c.blacklists(),
            ["i915", "snd_hda_intel", "snd_sof_pci_intel_cnl"]
        );
        assert!(c.is_blacklisted("snd-hda-intel"));
        assert_eq!(
            c.option("vfio_pci", "ids"),
            Some(Some("8086:3e92,8086:a348".to_string()))
        );
        assert_eq!(c.option("kvm", "ignore-msrs"), Some(Some("1".to_string())));
        assert_eq!(c.option("kvm", "report_ignored_msrs"), None);
    }

    #[test]
    fn continuations_round_trip_and_are_one_line() {
        let text = "options vfio-pci \\\n  ids=8086:3e92 \\\n\tdisable_vga=1\nblacklist \\\ni915\n# a \\\nblacklist nouveau\n";
        let mut c = ModprobeConf::parse(text);
        assert_eq!(c.render(), text);
        assert_eq!(c.blacklists(), ["i915"]);
        assert_eq!(
            c.options("vfio_pci"),
            [
                ("ids".to_string(), Some("8086:3e92".to_string())),
                ("disable_vga".to_string(), Some("1".to_string()))
            ]
        );
        let lines: Vec<usize> = c.directives().iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [1, 4]);
        assert!(c.merge_ids("vfio-pci", &["8086:A348"]));
        assert_eq!(
            c.render(),
            "options vfio-pci   ids=8086:3e92,8086:A348 \tdisable_vga=1\nblacklist \\\ni915\n# a \\\nblacklist nouveau\n"
        );
        assert!(!c.merge_ids("vfio-pci", &["8086:a348", "8086:3E92"]));
    }

    #[test]
    fn edits_append_once() {
        let mut c = ModprobeConf::parse("blacklist nvidiafb");
        assert!(c.add_comment_line("vfiokit: the host keeps off the iGPU"));
        assert!(c.add_blacklist("i915"));
        assert!(c.set_option("vfio-pci", "ids", Some("8086:3e92")));
        assert!(c.add_softdep("i915", &["vfio-pci"]));
        let once = c.render();
        assert_eq!(
            once,
            "blacklist nvidiafb\n# vfiokit: the host keeps off the iGPU\nblacklist i915\noptions vfio-pci ids=8086:3e92\nsoftdep i915 pre: vfio-pci\n"
        );
        assert!(!c.add_comment_line("vfiokit: the host keeps off the iGPU"));
        assert!(!c.add_blacklist("i915"));
        assert!(!c.set_option("vfio_pci", "ids", Some("8086:3e92")));
        assert!(!c.add_softdep("i915", &["vfio_pci"]));
        assert_eq!(c.render(), once);
        assert!(c.add_softdep("i915", &["vfio-pci", "vfio_iommu_type1"]));
        assert!(c.add_softdep("snd_hda_intel", &["vfio-pci"]));
        let mut d =
            ModprobeConf::parse("softdep i915 pre: a post: b\nsoftdep x post: y\nsoftdep z\n");
        assert!(d.add_softdep("i915", &["vfio-pci"]));
        assert!(d.add_softdep("x", &["vfio-pci"]));
        assert!(d.add_softdep("z", &["vfio-pci"]));
        assert_eq!(
            d.render(),
            "softdep i915 pre: a vfio-pci post: b\nsoftdep x post: y pre: vfio-pci\nsoftdep z pre: vfio-pci\n"
        );
    }

    #[test]
    fn set_option_edits_the_line_holding_the_key() {
        let mut c = ModprobeConf::parse(
            "options kvm ignore_msrs=0 report_ignored_msrs=0\noptions kvm ignore_msrs=0 # x\n",
        );
        assert!(c.set_option("kvm", "ignore_msrs", Some("1")));
        assert!(!c.set_option("kvm", "report-ignored-msrs", Some("0")));
        assert!(c.set_option("kvm", "nx_huge_pages", Some("off")));
        assert_eq!(
            c.render(),
            "options kvm ignore_msrs=0 report_ignored_msrs=0\noptions kvm ignore_msrs=1 # x\noptions kvm nx_huge_pages=off\n"
        );
    }

    #[test]
    fn remove_ids_and_blacklists() {
        let mut c = ModprobeConf::parse(SEED);
        assert!(c.remove_ids("vfio_pci", &["8086:A348"]));
        assert!(!c.remove_ids("vfio_pci", &["8086:a348"]));
        assert_eq!(
            c.option("vfio-pci", "ids"),
            Some(Some("8086:3e92".to_string()))
        );
        assert!(c.remove_ids("vfio_pci", &["8086:3e92"]));
        assert!(!c.render().contains("options vfio-pci"));
        assert!(c.remove_blacklist("snd-hda-intel"));
        assert!(!c.remove_blacklist("snd-hda-intel"));
        assert_eq!(c.blacklists(), ["i915", "snd_sof_pci_intel_cnl"]);
    }

    #[test]
    fn garbage_is_kept_and_reported() {
        let text =
            "blacklist\nfrobnicate x\r\nsoftdep a b pre: c\noptions\nalias pci:v00008086d*\n";
        let c = ModprobeConf::parse(text);
        assert_eq!(c.render(), text);
        let lines: Vec<usize> = c.problems().iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 2, 2, 3, 4, 5]);
    }

    #[test]
    fn install_commands_are_set_once_and_replaced_when_different() {
        let mut c = ModprobeConf::parse("# keep\ninstall i915 /bin/true\n");
        assert!(c.set_install("i915", "echo vfio-pci > x; modprobe --ignore-install i915"));
        assert!(!c.set_install("i915", "echo vfio-pci > x; modprobe --ignore-install i915"));
        assert_eq!(
            c.render(),
            "# keep\ninstall i915 echo vfio-pci > x; modprobe --ignore-install i915\n"
        );
        assert!(c.set_install("nouveau", "/bin/false"));
        assert!(c.render().ends_with("install nouveau /bin/false\n"));
        assert!(!c.set_install("bad name", "x") && !c.set_install("m", "a\nb"));
    }

    #[test]
    fn appends_never_join_a_continued_last_line() {
        for text in ["blacklist a \\", "blacklist a \\\n", "# x \\"] {
            let mut c = ModprobeConf::parse(text);
            assert!(c.add_blacklist("b"), "{text:?}");
            let again = ModprobeConf::parse(&c.render());
            assert!(again.is_blacklisted("b"), "{text:?}");
            assert!(c.add_comment_line("why \\"));
            assert!(c.add_blacklist("c"));
            assert!(ModprobeConf::parse(&c.render()).is_blacklisted("c"));
        }
    }

    #[test]
    fn options_and_softdeps_are_removed_line_by_line() {
        let mut c = ModprobeConf::parse(
            "options kvm ignore_msrs=1\noptions vfio_iommu_type1 allow_unsafe_interrupts=1\noptions kvm-intel nested=1 x=2\nsoftdep i915 pre: vfio-pci\nsoftdep snd pre: vfio-pci other\n",
        );
        assert!(c.remove_option("vfio-iommu-type1", "allow_unsafe_interrupts"));
        assert!(c.remove_option("kvm_intel", "x"));
        assert!(!c.remove_option("kvm", "absent"));
        assert!(c.remove_softdep("i915", "vfio_pci"));
        assert!(
            !c.remove_softdep("snd", "vfio-pci"),
            "a line with other dependencies stays"
        );
        assert_eq!(
            c.render(),
            "options kvm ignore_msrs=1\noptions kvm-intel nested=1\nsoftdep snd pre: vfio-pci other\n"
        );
    }
}
