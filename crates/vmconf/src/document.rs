//! The lossless VM config document.

use crate::perl::{decode_text, encode_text, is_blank, is_space, trim};

/// Which section a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section<'a> {
    /// The current configuration: every line before the first section header.
    Main,
    /// `[PENDING]`: changes that apply at the next start.
    Pending,
    /// `[special:cloudinit]` or `[special:fleecing]`; the name as written (`cloudinit`).
    Special(&'a str),
    /// A snapshot, `[name]`.
    Snapshot(&'a str),
    /// A header Proxmox does not know (`[a b]`, `[]`): it skips the header and every line up to
    /// the next one. The name as written between the brackets.
    Unknown(&'a str),
}

/// One `key: value` line, as Proxmox reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// 1-based line number.
    pub line: usize,
    /// The section the line is in.
    pub section: Section<'a>,
    /// The key (`hostpci0`, `args`, `description`, `snapstate`, `delete`).
    pub key: &'a str,
    /// The value as Proxmox's line regex captures it: leading and trailing blanks removed
    /// (a value of only blanks is its last character, so `boot:  ` gives `" "`), quotes kept.
    pub value: &'a str,
}

/// Which of Proxmox's line rules matched a key line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// `description: …` (read, never written by Proxmox).
    Description,
    /// The unanchored `snapstate:\s*(prepare|delete)\s*$`.
    Snapstate,
    /// `args: …`, stored without validation.
    Args,
    /// `delete: …`, only allowed in `[PENDING]`.
    Delete,
    /// `^([a-z][a-z_\-]*\d*):\s*(.+?)\s*$`.
    Plain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderKind {
    Pending,
    Special,
    Snapshot,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Blank,
    /// A section header; the name is `line[name.0..name.1]`.
    Header(HeaderKind, (usize, usize)),
    /// A `#` line: a description line of its section.
    Comment,
    Key {
        rule: Rule,
        key: (usize, usize),
        value: (usize, usize),
    },
    /// Matches none of Proxmox's rules: `unable to parse config: LINE`.
    Unparsed,
    /// Inside a section Proxmox skips.
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineInfo {
    pub(crate) kind: Kind,
    /// Index of the header line of the section, `None` for the main section.
    pub(crate) header: Option<usize>,
}

/// A Proxmox VE VM config (`/etc/pve/qemu-server/<vmid>.conf`), kept byte for byte.
///
/// [`VmConfig::parse`] never fails and [`VmConfig::render`] gives back exactly the text it was
/// parsed from, for any string: CRLF, a missing final newline, unsorted or duplicate keys,
/// unknown keys, garbage lines. Lines are split on `\n` as Proxmox splits them, and each line is
/// classified with Proxmox's own rules, in its order (see the crate documentation); what Proxmox
/// would reject is reported by [`crate::lint`], never dropped.
///
/// Reads and edits work on the main section (the current configuration); [`VmConfig::entries`]
/// lists every section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig {
    lines: Vec<String>,
    info: Vec<LineInfo>,
}

/// `^[a-z][a-z_\-]*\d*` followed by `:`: the length of the key, if the line starts with one.
pub(crate) fn key_prefix(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_lowercase) {
        return None;
    }
    let mut i = 1;
    while i < b.len() && (b[i].is_ascii_lowercase() || b[i] == b'_' || b[i] == b'-') {
        i += 1;
    }
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    (b.get(i) == Some(&b':')).then_some(i)
}

/// Whether `key` matches Proxmox's key pattern `^[a-z][a-z_\-]*\d*$`.
pub fn is_valid_key(key: &str) -> bool {
    let with_colon = format!("{key}:");
    key_prefix(&with_colon) == Some(key.len())
}

/// `:\s*(.+?)\s*$` on `line[start..]`: the value range.
fn lazy_value(line: &str, start: usize) -> Option<(usize, usize)> {
    let rest = &line[start..];
    if rest.is_empty() {
        return None;
    }
    let body = rest.trim_start_matches(is_space);
    if body.is_empty() {
        // Only blanks: `\s*` gives back one character so that `.+?` can match.
        let last = rest.char_indices().last().map_or(0, |(i, _)| i);
        return Some((start + last, line.len()));
    }
    let lead = rest.len() - body.len();
    let end = start + rest.trim_end_matches(is_space).len();
    Some((start + lead, end))
}

/// `:\s*(.*\S)\s*$` on `line[start..]`: needs one non-blank character.
fn greedy_value(line: &str, start: usize) -> Option<(usize, usize)> {
    let rest = &line[start..];
    let t = trim(rest);
    if t.is_empty() {
        return None;
    }
    let lead = rest.len() - rest.trim_start_matches(is_space).len();
    Some((start + lead, start + lead + t.len()))
}

/// The unanchored `snapstate:\s*(prepare|delete)\s*$`.
fn snapstate(line: &str) -> Option<((usize, usize), (usize, usize))> {
    let mut from = 0;
    while let Some(pos) = line[from..].find("snapstate:") {
        let at = from + pos;
        let after = at + "snapstate:".len();
        let rest = &line[after..];
        let body = rest.trim_start_matches(is_space);
        let vstart = after + (rest.len() - body.len());
        for word in ["prepare", "delete"] {
            if let Some(tail) = body.strip_prefix(word)
                && is_blank(tail)
            {
                return Some(((at, at + "snapstate".len()), (vstart, vstart + word.len())));
            }
        }
        from = at + 1;
    }
    None
}

fn header(line: &str) -> Option<(HeaderKind, (usize, usize))> {
    let t = line.trim_end_matches(is_space);
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    let name = (1, 1 + inner.len());
    if inner.eq_ignore_ascii_case("pending") {
        return Some((HeaderKind::Pending, name));
    }
    if let Some(n) = inner
        .get(..8)
        .filter(|p| p.eq_ignore_ascii_case("special:"))
        .and_then(|_| inner.get(8..))
        && (n.eq_ignore_ascii_case("cloudinit") || n.eq_ignore_ascii_case("fleecing"))
    {
        return Some((HeaderKind::Special, (9, 1 + inner.len())));
    }
    let b = inner.as_bytes();
    if b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
    {
        return Some((HeaderKind::Snapshot, name));
    }
    if !inner.contains(']') {
        return Some((HeaderKind::Unknown, name));
    }
    None
}

/// Classifies one line with Proxmox's rules, in Proxmox's order.
fn classify(line: &str, skipping: bool) -> Kind {
    if is_blank(line) {
        return Kind::Blank;
    }
    if line.starts_with('[')
        && let Some((h, name)) = header(line)
    {
        return Kind::Header(h, name);
    }
    if skipping {
        return Kind::Skipped;
    }
    if line.starts_with('#') {
        return Kind::Comment;
    }
    let key_at = |n: usize| (0, n);
    if let Some(rest) = line.strip_prefix("description:")
        && !trim(rest).is_empty()
        && let Some(value) = greedy_value(line, "description:".len())
    {
        return Kind::Key {
            rule: Rule::Description,
            key: key_at("description".len()),
            value,
        };
    }
    if let Some((key, value)) = snapstate(line) {
        return Kind::Key {
            rule: Rule::Snapstate,
            key,
            value,
        };
    }
    for (word, rule) in [("args:", Rule::Args), ("delete:", Rule::Delete)] {
        if line.starts_with(word)
            && let Some(value) = greedy_value(line, word.len())
        {
            return Kind::Key {
                rule,
                key: key_at(word.len() - 1),
                value,
            };
        }
    }
    if let Some(n) = key_prefix(line)
        && let Some(value) = lazy_value(line, n + 1)
    {
        return Kind::Key {
            rule: Rule::Plain,
            key: key_at(n),
            value,
        };
    }
    Kind::Unparsed
}

fn classify_all(lines: &[String]) -> Vec<LineInfo> {
    let mut out = Vec::with_capacity(lines.len());
    let mut current: Option<usize> = None;
    let mut skipping = false;
    for (i, line) in lines.iter().enumerate() {
        let kind = classify(line, skipping);
        if let Kind::Header(h, _) = kind {
            current = Some(i);
            skipping = h == HeaderKind::Unknown;
        }
        out.push(LineInfo {
            kind,
            header: current,
        });
    }
    out
}

impl VmConfig {
    /// Reads a config. Never fails: problems are for [`crate::lint`].
    pub fn parse(text: &str) -> VmConfig {
        let lines: Vec<String> = text.split('\n').map(str::to_string).collect();
        let info = classify_all(&lines);
        VmConfig { lines, info }
    }

    /// The text, byte for byte as parsed plus the edits made.
    pub fn render(&self) -> String {
        self.lines.join("\n")
    }

    pub(crate) fn raw_lines(&self) -> &[String] {
        &self.lines
    }

    pub(crate) fn infos(&self) -> &[LineInfo] {
        &self.info
    }

    pub(crate) fn section_of(&self, info: &LineInfo) -> Section<'_> {
        let Some(h) = info.header else {
            return Section::Main;
        };
        let line = &self.lines[h];
        match self.info[h].kind {
            Kind::Header(kind, (a, b)) => match kind {
                HeaderKind::Pending => Section::Pending,
                HeaderKind::Special => Section::Special(&line[a..b]),
                HeaderKind::Snapshot => Section::Snapshot(&line[a..b]),
                HeaderKind::Unknown => Section::Unknown(&line[a..b]),
            },
            _ => Section::Main,
        }
    }

    /// The names of the snapshot sections, in file order.
    pub fn snapshot_names(&self) -> Vec<&str> {
        self.info
            .iter()
            .enumerate()
            .filter_map(|(i, info)| match info.kind {
                Kind::Header(HeaderKind::Snapshot, (a, b)) => Some(&self.lines[i][a..b]),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn entry_at(&self, i: usize) -> Option<(Entry<'_>, Rule)> {
        let info = &self.info[i];
        let Kind::Key { rule, key, value } = info.kind else {
            return None;
        };
        let line = &self.lines[i];
        Some((
            Entry {
                line: i + 1,
                section: self.section_of(info),
                key: &line[key.0..key.1],
                value: &line[value.0..value.1],
            },
            rule,
        ))
    }

    /// Every key line of every section, in file order (lines in a section Proxmox skips are not
    /// key lines).
    pub fn entries(&self) -> Vec<Entry<'_>> {
        (0..self.lines.len())
            .filter_map(|i| self.entry_at(i).map(|(e, _)| e))
            .collect()
    }

    /// Index of the first header line (the end of the main section).
    fn main_end(&self) -> usize {
        self.info
            .iter()
            .position(|i| i.header.is_some())
            .unwrap_or(self.lines.len())
    }

    fn main_key_lines(&self) -> impl DoubleEndedIterator<Item = (usize, &str)> + '_ {
        (0..self.main_end()).filter_map(move |i| match self.info[i].kind {
            Kind::Key { key, .. } => Some((i, &self.lines[i][key.0..key.1])),
            _ => None,
        })
    }

    /// The value of `key` in the main section; the last occurrence wins, as in Proxmox. The
    /// value is trimmed as Proxmox's line regex trims it. Textual: a value Proxmox would reject
    /// is still returned (see [`crate::lint`]).
    pub fn get(&self, key: &str) -> Option<&str> {
        let (i, _) = self.main_key_lines().rev().find(|(_, k)| *k == key)?;
        self.entry_at(i).map(|(e, _)| e.value)
    }

    /// The keys of the main section in file order, duplicates included.
    pub fn keys(&self) -> Vec<&str> {
        self.main_key_lines().map(|(_, k)| k).collect()
    }

    /// Whether `line` reads back as `key: value` under Proxmox's rules.
    fn reads_back(line: &str, key: &str, value: &str) -> bool {
        match classify(line, false) {
            Kind::Key {
                key: k, value: v, ..
            } => &line[k.0..k.1] == key && &line[v.0..v.1] == value,
            _ => false,
        }
    }

    /// Sets `key` in the main section.
    ///
    /// An existing key has the value of its last line rewritten in place (its `key: ` or
    /// `key:` spelling and any trailing blanks kept). A new key is inserted where Proxmox's
    /// sorted writer would put it: right after the line of the greatest existing main-section
    /// key (including a `key:` line Proxmox cannot read) that sorts before it byte-wise (so `hostpci10` < `hostpci2`), or before the first key
    /// line (after the description) when none does; never after a section header. A new line
    /// copies a `\r` line end from its neighbour.
    ///
    /// Refuses (returns `false`, changes nothing) a key that does not match Proxmox's pattern
    /// `[a-z][a-z_\-]*\d*`, the key `delete` (only allowed in `[PENDING]`), a value holding `\n`
    /// or `\r`, and a value that would not read back as itself (empty, leading or trailing
    /// blanks, or text Proxmox would read as another rule, e.g. ending in `snapstate: delete`).
    /// Returns whether the text changed.
    pub fn set(&mut self, key: &str, value: &str) -> bool {
        if !is_valid_key(key) || key == "delete" || value.contains(['\n', '\r']) {
            return false;
        }
        let last = self
            .main_key_lines()
            .rev()
            .find(|(_, k)| *k == key)
            .map(|(i, _)| i);
        if let Some(i) = last {
            let Kind::Key { value: (a, b), .. } = self.info[i].kind else {
                return false;
            };
            let old = &self.lines[i];
            let new = format!("{}{}{}", &old[..a], value, &old[b..]);
            if !Self::reads_back(&new, key, value) {
                return false;
            }
            if new == *old {
                return false;
            }
            self.lines[i] = new;
            self.info = classify_all(&self.lines);
            return true;
        }
        let mut new = format!("{key}: {value}");
        if !Self::reads_back(&new, key, value) {
            return false;
        }
        // Lines Proxmox would drop but that still start with a key (`boot:`) count for the
        // order too, so that the new line sits where a reader expects it.
        let keyed: Vec<(usize, &str)> = (0..self.main_end())
            .filter_map(|i| match self.info[i].kind {
                Kind::Key { key, .. } => Some((i, &self.lines[i][key.0..key.1])),
                Kind::Unparsed => key_prefix(&self.lines[i]).map(|n| (i, &self.lines[i][..n])),
                _ => None,
            })
            .collect();
        let before = keyed
            .iter()
            .filter(|(_, k)| k.as_bytes() < key.as_bytes())
            .max_by(|(i, a), (j, b)| a.as_bytes().cmp(b.as_bytes()).then(i.cmp(j)))
            .map(|(i, _)| *i);
        let first = keyed.first().map(|(i, _)| *i);
        let at = match (before, first) {
            (Some(i), _) => i + 1,
            (None, Some(first)) => first,
            (None, None) => {
                // No key yet: after the main section's last description line, else at the top.
                let end = self.main_end();
                (0..end)
                    .rev()
                    .find(|&i| self.info[i].kind == Kind::Comment)
                    .map_or(0, |i| i + 1)
            }
        };
        let neighbour = if at > 0 { at - 1 } else { at };
        if self.lines.get(neighbour).is_some_and(|l| l.ends_with('\r')) {
            new.push('\r');
            if !Self::reads_back(&new, key, value) {
                return false;
            }
        }
        self.lines.insert(at, new);
        self.info = classify_all(&self.lines);
        true
    }

    /// Removes every main-section line of `key`. Returns whether the text changed.
    pub fn remove(&mut self, key: &str) -> bool {
        let doomed: Vec<usize> = self
            .main_key_lines()
            .filter(|(_, k)| *k == key)
            .map(|(i, _)| i)
            .collect();
        if doomed.is_empty() {
            return false;
        }
        let mut i = 0;
        self.lines.retain(|_| {
            let keep = doomed.binary_search(&i).is_err();
            i += 1;
            keep
        });
        self.info = classify_all(&self.lines);
        true
    }

    /// The VM's description as Proxmox reads it: the main section's `#` lines, each
    /// URI-unescaped (`decode_text`) plus a newline, and `description:` lines appended as they
    /// come; trailing whitespace removed.
    pub fn description(&self) -> String {
        let mut out = String::new();
        for i in 0..self.main_end() {
            let line = &self.lines[i];
            match self.info[i].kind {
                Kind::Comment => {
                    out.push_str(&decode_text(&line[1..]));
                    out.push('\n');
                }
                Kind::Key {
                    rule: Rule::Description,
                    value: (a, b),
                    ..
                } => out.push_str(&decode_text(&line[a..b])),
                _ => {}
            }
        }
        let kept = out.trim_end().len();
        out.truncate(kept);
        out
    }

    /// Replaces the main section's description (its `#` lines and `description:` lines) with
    /// `text`, written as Proxmox writes it: one `#` line per line of `text`, each byte outside
    /// `\x20-\x24\x26-\x39\x3b-\x7e` as `%XX` (so `:` is `%3A`), at the top of the file.
    /// Trailing whitespace of `text` is dropped as Proxmox drops it; an empty text removes the
    /// description. Returns whether the text changed.
    pub fn set_description(&mut self, text: &str) -> bool {
        let end = self.main_end();
        let old: Vec<usize> = (0..end)
            .filter(|&i| {
                matches!(
                    self.info[i].kind,
                    Kind::Comment
                        | Kind::Key {
                            rule: Rule::Description,
                            ..
                        }
                )
            })
            .collect();
        let t = text.trim_end();
        let new: Vec<String> = if t.is_empty() {
            Vec::new()
        } else {
            t.split('\n')
                .map(|l| format!("#{}", encode_text(l)))
                .collect()
        };
        let leading = old.iter().enumerate().all(|(n, &i)| n == i);
        if leading
            && old.len() == new.len()
            && old.iter().zip(&new).all(|(&i, l)| self.lines[i] == *l)
        {
            return false;
        }
        let mut i = 0;
        self.lines.retain(|_| {
            let keep = old.binary_search(&i).is_err();
            i += 1;
            keep
        });
        self.lines.splice(0..0, new);
        self.info = classify_all(&self.lines);
        true
    }

    /// The lowest `N` in `0..=max` such that the main section has no `familyN` key
    /// (`next_free("hostpci", 15)`, `next_free("usb", 13)`).
    pub fn next_free(&self, family: &str, max: u32) -> Option<u32> {
        let used: Vec<u32> = self
            .main_key_lines()
            .filter_map(|(_, k)| k.strip_prefix(family))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .filter(|n| n.len() == 1 || !n.starts_with('0'))
            .filter_map(|n| n.parse().ok())
            .collect();
        (0..=max).find(|n| !used.contains(n))
    }
}
