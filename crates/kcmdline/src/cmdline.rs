//! The kernel command line.

use std::fmt;

use crate::{Problem, Words};

/// The kernel's `isspace` on ASCII: what separates parameters.
pub(crate) fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// Whether two kernel parameter names are the same parameter: the kernel (`parameq`) treats `-`
/// and `_` as equal, so `intel-iommu` is `intel_iommu` and `vfio-pci.ids` is `vfio_pci.ids`.
pub fn same_param(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).all(|(x, y)| {
            let norm = |c: u8| if c == b'-' { b'_' } else { c };
            norm(x) == norm(y)
        })
}

/// Whether two module names are the same module: kmod turns `-` into `_` (`vfio-pci` is
/// `vfio_pci`).
pub fn same_module(a: &str, b: &str) -> bool {
    same_param(a, b)
}

/// One parameter of a command line, as the kernel reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// The name, as written (`intel_iommu`, `vfio-pci.ids`).
    pub key: &'a str,
    /// The value without its quotes; `None` for a flag such as `quiet`.
    pub value: Option<&'a str>,
    /// The word as written, quotes included.
    pub text: &'a str,
}

/// Splits one word into name and value exactly as the kernel's `next_arg` does: a leading `"`
/// is dropped (and a trailing one), the name ends at the first `=` after its first character,
/// and a value starting with `"` loses that quote and a trailing one.
fn param_of(word: &str) -> Param<'_> {
    let (body, quoted) = match word.strip_prefix('"') {
        Some(b) => (b, true),
        None => (word, false),
    };
    let eq = body
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == '=')
        .map(|(i, _)| i);
    match eq {
        None => {
            let key = if quoted {
                body.strip_suffix('"').unwrap_or(body)
            } else {
                body
            };
            Param {
                key,
                value: None,
                text: word,
            }
        }
        Some(i) => {
            let raw = &body[i + 1..];
            let value = if let Some(v) = raw.strip_prefix('"') {
                v.strip_suffix('"').unwrap_or(v)
            } else if quoted {
                raw.strip_suffix('"').unwrap_or(raw)
            } else {
                raw
            };
            Param {
                key: &body[..i],
                value: Some(value),
                text: word,
            }
        }
    }
}

/// A word whose double quotes are not balanced swallows the rest of the line.
fn unterminated(word: &str) -> bool {
    word.chars().filter(|&c| c == '"').count() % 2 == 1
}

pub(crate) fn valid_key(key: &str) -> bool {
    // A key of only `-` and `_` could be (or, since `-` and `_` are the same to the kernel,
    // turn an existing word into) the `--` that ends the kernel's parameters.
    !key.is_empty()
        && !key.chars().all(|c| c == '-' || c == '_')
        && !key.contains(|c| is_blank(c) || c == '=' || c == '"')
}

/// Values may hold spaces and tabs (they are then quoted) but no line break and no `"`: the
/// kernel has no way to escape a quote.
pub(crate) fn valid_value(value: &str) -> bool {
    !value.contains(|c| c == '"' || (is_blank(c) && c != ' ' && c != '\t'))
}

/// `key`, `key=value`, or `key="value with blanks"`.
pub(crate) fn render_param(key: &str, value: Option<&str>) -> String {
    match value {
        None => key.to_string(),
        Some(v) if v.contains([' ', '\t']) => format!("{key}=\"{v}\""),
        Some(v) => format!("{key}={v}"),
    }
}

/// A kernel command line (`/proc/cmdline`, the value of `GRUB_CMDLINE_LINUX_DEFAULT`, the line
/// of `/etc/kernel/cmdline`, the options of a modprobe `options` line).
///
/// Parameters are separated by blanks; `key`, `key=value`, `key="value with blanks"`. A key may
/// appear more than once: the kernel applies them in order, so the last one wins ([`get`]).
/// Names compare with `-` equal to `_` ([`same_param`]). Everything after a bare `--` is for init,
/// not the kernel: lookups stop there and new parameters go before it.
///
/// Lossless: [`Cmdline::render`] gives back the parsed text byte for byte; edits rewrite only the
/// words they change and keep every other blank.
///
/// ```
/// use vfiokit_kcmdline::Cmdline;
/// let mut c = Cmdline::parse("quiet  intel-iommu=off pcie_acs_override=downstream");
/// assert_eq!(c.get("intel_iommu"), Some(Some("off")));
/// assert!(c.set("intel_iommu", Some("on")));
/// assert!(c.add_list_item("pcie_acs_override", "multifunction"));
/// assert!(c.remove("quiet"));
/// assert_eq!(c.render(), "intel-iommu=on pcie_acs_override=downstream,multifunction");
/// ```
///
/// [`get`]: Cmdline::get
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    pub(crate) words: Words,
}

impl Cmdline {
    /// Parses a command line. Never fails; see [`Cmdline::problems`].
    pub fn parse(s: &str) -> Cmdline {
        Cmdline {
            words: Words::parse(s, true, is_blank),
        }
    }

    /// The text, byte for byte as parsed, with edits applied.
    pub fn render(&self) -> String {
        self.words.render()
    }

    /// Whether the line has no word at all (it may still hold blanks).
    pub fn is_empty(&self) -> bool {
        self.words.items.is_empty()
    }

    /// The index of the first word not read by the kernel (a bare `--`), or the word count.
    fn kernel_end(&self) -> usize {
        self.words
            .items
            .iter()
            .position(|(_, w)| {
                let p = param_of(w);
                p.value.is_none() && p.key == "--"
            })
            .unwrap_or(self.words.items.len())
    }

    /// Every kernel parameter in order (words after `--` excluded).
    pub fn params(&self) -> impl Iterator<Item = Param<'_>> {
        self.words.items[..self.kernel_end()]
            .iter()
            .map(|(_, w)| param_of(w))
    }

    /// The words after `--`: arguments for init.
    pub fn init_args(&self) -> Vec<&str> {
        self.words
            .items
            .iter()
            .skip(self.kernel_end() + 1)
            .map(|(_, w)| w.as_str())
            .collect()
    }

    fn indices(&self, key: &str) -> Vec<usize> {
        (0..self.kernel_end())
            .filter(|&i| same_param(param_of(&self.words.items[i].1).key, key))
            .collect()
    }

    /// The value the kernel sees for `key` (its last occurrence): `None` when absent,
    /// `Some(None)` for a flag without `=`, `Some(Some(v))` otherwise (quotes removed).
    pub fn get(&self, key: &str) -> Option<Option<&str>> {
        self.params()
            .filter(|p| same_param(p.key, key))
            .last()
            .map(|p| p.value)
    }

    /// Whether `key` is present, as a whole parameter name (`intel_iommu` is not found in
    /// `xintel_iommu=on`).
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Every occurrence of `key`, in order.
    pub fn values(&self, key: &str) -> Vec<Option<&str>> {
        self.params()
            .filter(|p| same_param(p.key, key))
            .map(|p| p.value)
            .collect()
    }

    /// Where a new parameter goes: before `--`, and before a last word whose open quote would
    /// swallow anything after it.
    fn insert_at(&self) -> usize {
        let end = self.kernel_end();
        match self.words.items.get(end.wrapping_sub(1)) {
            Some((_, w)) if end == self.words.items.len() && unterminated(w) => end - 1,
            _ => end,
        }
    }

    /// Sets `key` to `value` (`None`: a flag). The last occurrence is rewritten in place (keeping
    /// the name as written there); when absent, ` key=value` is added at the end. A value with
    /// blanks is double-quoted. Returns whether the text changed: `false` when the kernel already
    /// sees that value, and when the key or value cannot be written on a command line (an empty
    /// key, blanks, `=` or `"` in the key, `"` or a line break in the value).
    pub fn set(&mut self, key: &str, value: Option<&str>) -> bool {
        if !valid_key(key) || value.is_some_and(|v| !valid_value(v)) {
            return false;
        }
        match self.indices(key).last() {
            Some(&i) => {
                let word = &self.words.items[i].1;
                let p = param_of(word);
                if p.value == value {
                    return false;
                }
                let new = render_param(p.key, value);
                if new == *word {
                    return false;
                }
                self.words.items[i].1 = new;
                true
            }
            None => {
                let at = self.insert_at();
                self.words.insert(at, render_param(key, value));
                true
            }
        }
    }

    /// Removes every occurrence of `key` with the blank before it. Returns whether any was found.
    pub fn remove(&mut self, key: &str) -> bool {
        let found = self.indices(key);
        for &i in found.iter().rev() {
            self.words.remove(i);
        }
        !found.is_empty()
    }

    /// The comma-separated items of the value of `key` (last occurrence), empty items skipped:
    /// `pcie_acs_override=downstream,multifunction` → `["downstream", "multifunction"]`.
    pub fn list_items(&self, key: &str) -> Vec<&str> {
        match self.get(key) {
            Some(Some(v)) => v.split(',').filter(|s| !s.is_empty()).collect(),
            _ => Vec::new(),
        }
    }

    /// Adds `item` to the comma list of `key` (creating `key=item` when absent or a flag), unless
    /// it is already there (compared exactly). Returns whether the text changed.
    pub fn add_list_item(&mut self, key: &str, item: &str) -> bool {
        if item.is_empty() || item.contains(',') {
            return false;
        }
        match self.get(key) {
            Some(Some(v)) if v.split(',').any(|s| s == item) => false,
            Some(Some(v)) if !v.is_empty() => {
                let sep = if v.ends_with(',') { "" } else { "," };
                let new = format!("{v}{sep}{item}");
                self.set(key, Some(&new))
            }
            _ => self.set(key, Some(item)),
        }
    }

    /// Removes `item` from the comma list of every occurrence of `key`; an occurrence whose list
    /// becomes empty is removed. Returns whether the text changed.
    pub fn remove_list_item(&mut self, key: &str, item: &str) -> bool {
        let mut changed = false;
        for i in self.indices(key).into_iter().rev() {
            let p = param_of(&self.words.items[i].1);
            let Some(v) = p.value else { continue };
            if !v.split(',').any(|s| s == item) {
                continue;
            }
            let rest = v
                .split(',')
                .filter(|s| !s.is_empty() && *s != item)
                .collect::<Vec<_>>()
                .join(",");
            if rest.is_empty() {
                self.words.remove(i);
            } else if valid_value(&rest) {
                self.words.items[i].1 = render_param(p.key, Some(&rest));
            } else {
                // A value with quotes inside cannot be rewritten without changing its meaning.
                continue;
            }
            changed = true;
        }
        changed
    }

    /// What the kernel would read differently from how the line looks (reported on line 1).
    pub fn problems(&self) -> Vec<Problem> {
        self.words
            .items
            .iter()
            .filter(|(_, w)| unterminated(w))
            .map(|(_, w)| {
                Problem::new(
                    1,
                    format!("unterminated quote in {w:?}: the rest of the line is its value"),
                )
            })
            .collect()
    }
}

impl fmt::Display for Cmdline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_split_like_the_kernel() {
        let c = Cmdline::parse(
            "BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet \
             foo=\"a b\" \"bar=c d\" x= =y -- single",
        );
        let got: Vec<(&str, Option<&str>)> = c.params().map(|p| (p.key, p.value)).collect();
        assert_eq!(
            got,
            [
                ("BOOT_IMAGE", Some("/boot/vmlinuz-6.8.12-11-pve")),
                ("root", Some("/dev/mapper/pve-root")),
                ("ro", None),
                ("quiet", None),
                ("foo", Some("a b")),
                ("bar", Some("c d")),
                ("x", Some("")),
                ("=y", None),
            ]
        );
        assert_eq!(c.init_args(), ["single"]);
        assert!(!c.has("single"));
    }

    #[test]
    fn no_edit_can_make_the_parameter_separator() {
        // Found by the set-then-get law: `-_` equals `--` to the kernel's name matching.
        let mut c = Cmdline::parse("--=");
        assert!(!c.set("-_", None));
        assert!(!c.set("--", Some("x")));
        assert_eq!(c.render(), "--=");
        let mut c = Cmdline::parse("quiet");
        assert!(!c.set("__", None));
        assert_eq!(c.render(), "quiet");
    }

    #[test]
    fn keys_match_whole_names_with_dash_and_underscore_equal() {
        let c = Cmdline::parse("xintel_iommu=on intel-iommu=off vfio-pci.ids=8086:3e92");
        assert_eq!(c.get("intel_iommu"), Some(Some("off")));
        assert_eq!(c.get("vfio_pci.ids"), Some(Some("8086:3e92")));
        assert!(!c.has("intel"));
        assert!(!Cmdline::parse("xintel_iommu=on").has("intel_iommu"));
    }

    #[test]
    fn repeated_keys_last_wins_and_set_edits_the_last() {
        let mut c = Cmdline::parse("iommu=soft quiet iommu=off\n");
        assert_eq!(c.values("iommu"), [Some("soft"), Some("off")]);
        assert_eq!(c.get("iommu"), Some(Some("off")));
        assert!(c.set("iommu", Some("pt")));
        assert_eq!(c.render(), "iommu=soft quiet iommu=pt\n");
        assert!(!c.set("iommu", Some("pt")));
        assert!(c.remove("iommu"));
        assert_eq!(c.render(), "quiet\n");
    }

    #[test]
    fn set_appends_keeping_spacing_and_quotes_blanks() {
        for (input, key, value, want) in [
            ("", "iommu", Some("pt"), "iommu=pt"),
            ("quiet", "iommu", Some("pt"), "quiet iommu=pt"),
            ("quiet  ", "iommu", Some("pt"), "quiet iommu=pt  "),
            ("\tquiet\t", "splash", None, "\tquiet splash\t"),
            (
                "quiet -- single",
                "iommu",
                Some("pt"),
                "quiet iommu=pt -- single",
            ),
            ("-- single", "iommu", Some("pt"), "iommu=pt -- single"),
            ("a foo=\"x y", "b", Some("1"), "a b=1 foo=\"x y"),
            ("foo=\"a b\"", "foo", Some("a b"), "foo=\"a b\""),
            ("foo=\"ab\"", "foo", Some("ab"), "foo=\"ab\""),
            ("foo", "foo", Some("a b"), "foo=\"a b\""),
            ("foo=1", "foo", None, "foo"),
        ] {
            let mut c = Cmdline::parse(input);
            c.set(key, value);
            assert_eq!(c.render(), want, "{input:?}");
            assert!(!c.set(key, value), "{input:?}");
        }
        let mut c = Cmdline::parse("quiet");
        assert!(!c.set("", Some("x")));
        assert!(!c.set("a b", Some("x")));
        assert!(!c.set("a", Some("x\"y")));
        assert!(!c.set("a", Some("x\ny")));
        assert_eq!(c.render(), "quiet");
    }

    #[test]
    fn remove_collapses_the_blank() {
        for (input, key, want) in [
            ("a b c", "b", "a c"),
            ("a b c", "a", "b c"),
            ("a b c", "c", "a b"),
            ("  a  b\n", "a", "  b\n"),
            (" b ", "b", "  "),
            ("b=1 a b=2", "b", "a"),
        ] {
            let mut c = Cmdline::parse(input);
            assert!(c.remove(key), "{input:?}");
            assert_eq!(c.render(), want, "{input:?}");
            assert!(!c.remove(key));
        }
    }

    #[test]
    fn comma_lists() {
        let mut c = Cmdline::parse("quiet pcie_acs_override=downstream,multifunction,id:8086:a348");
        assert_eq!(
            c.list_items("pcie_acs_override"),
            ["downstream", "multifunction", "id:8086:a348"]
        );
        assert!(c.add_list_item("pcie_acs_override", "id:8086:a370"));
        assert!(!c.add_list_item("pcie_acs_override", "id:8086:a370"));
        assert_eq!(
            c.render(),
            "quiet pcie_acs_override=downstream,multifunction,id:8086:a348,id:8086:a370"
        );
        assert!(c.remove_list_item("pcie_acs_override", "multifunction"));
        assert!(!c.remove_list_item("pcie_acs_override", "multifunction"));
        assert_eq!(
            c.render(),
            "quiet pcie_acs_override=downstream,id:8086:a348,id:8086:a370"
        );
        for item in ["downstream", "id:8086:a348", "id:8086:a370"] {
            c.remove_list_item("pcie_acs_override", item);
        }
        assert_eq!(c.render(), "quiet");
        assert!(c.add_list_item("pcie_acs_override", "downstream"));
        assert_eq!(c.render(), "quiet pcie_acs_override=downstream");
    }

    #[test]
    fn unterminated_quote_is_a_problem() {
        let c = Cmdline::parse("a foo=\"x y");
        assert_eq!(c.get("foo"), Some(Some("x y")));
        assert_eq!(c.problems().len(), 1);
        assert!(Cmdline::parse("a b=\"c d\"").problems().is_empty());
    }
}
