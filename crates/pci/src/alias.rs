//! Which kernel module would claim a device: `modalias` matched against `modules.alias`.
//!
//! `depmod` writes `lib/modules/<release>/modules.alias` with one `alias <pattern> <module>` line
//! per device id a module declares. `modprobe` matches a device's `modalias` against each pattern
//! with `fnmatch(3)` (`*`, `?`, `[...]`), and every module that matches is a candidate, in file order.

use std::collections::HashMap;

/// The parsed `modules.alias` of one kernel release.
#[derive(Debug, Clone, Default)]
pub struct ModuleAliases {
    /// Patterns indexed by their literal prefix up to the vendor id (`pci:v00008086`), so that a
    /// lookup scans the vendor's patterns and the wildcard ones, not the whole file.
    by_prefix: HashMap<String, Vec<(usize, String, String)>>,
    /// Patterns whose vendor part has a wildcard.
    generic: Vec<(usize, String, String)>,
}

/// Literal prefix length used as index key: `pci:v` plus eight vendor digits.
const KEY_LEN: usize = 13;

fn is_glob(b: u8) -> bool {
    matches!(b, b'*' | b'?' | b'[')
}

impl ModuleAliases {
    /// Reads the text of a `modules.alias` file. Lines that are not `alias PATTERN MODULE`
    /// (comments, blank lines) are skipped, as `modprobe` does.
    pub fn parse(text: &str) -> ModuleAliases {
        let mut aliases = ModuleAliases::default();
        for (n, line) in text.lines().enumerate() {
            let mut words = line.split_whitespace();
            let (Some("alias"), Some(pattern), Some(module)) =
                (words.next(), words.next(), words.next())
            else {
                continue;
            };
            let entry = (n, pattern.to_string(), module.to_string());
            match pattern.get(..KEY_LEN) {
                Some(key) if !key.bytes().any(is_glob) => aliases
                    .by_prefix
                    .entry(key.to_ascii_lowercase())
                    .or_default()
                    .push(entry),
                _ => aliases.generic.push(entry),
            }
        }
        aliases
    }

    /// The modules whose patterns match `modalias`, in file order, each once.
    pub fn modules_for(&self, modalias: &str) -> Vec<&str> {
        let key = modalias.get(..KEY_LEN).map(str::to_ascii_lowercase);
        let indexed = key
            .and_then(|k| self.by_prefix.get(&k))
            .map_or(&[][..], Vec::as_slice);
        let mut hits: Vec<&(usize, String, String)> = indexed
            .iter()
            .chain(&self.generic)
            .filter(|(_, pattern, _)| fnmatch(pattern.as_bytes(), modalias.as_bytes()))
            .collect();
        hits.sort_by_key(|(line, ..)| *line);
        let mut modules: Vec<&str> = Vec::new();
        for (_, _, module) in hits {
            if !modules.contains(&module.as_str()) {
                modules.push(module);
            }
        }
        modules
    }
}

/// `fnmatch(pattern, text, 0)`: `*` any run, `?` any byte, `[...]` a set (with `!`/`^` negation
/// and ranges), `\` escapes. Case-sensitive, as modprobe calls it.
pub fn fnmatch(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, text index it covers up to).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => match_set(pattern, p, text[t]),
            Some(b'\\') if p + 1 < pattern.len() => (pattern[p + 1] == text[t]).then_some(p + 2),
            Some(&c) => (c == text[t]).then_some(p + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                t += 1;
            }
            (None, Some((sp, st))) => {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the set starting at `pattern[start] == b'['`; the index after the set on a match.
/// An unterminated `[` matches a literal `[`.
fn match_set(pattern: &[u8], start: usize, c: u8) -> Option<usize> {
    let mut i = start + 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &lo = pattern.get(i)?;
        if lo == b']' && !first {
            break;
        }
        first = false;
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = pattern[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
        if i >= pattern.len() {
            return (c == b'[').then_some(start + 1);
        }
    }
    (matched != negate).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_like_libc() {
        for (pattern, text, want) in [
            (
                "pci:v00008086d00003E92sv*sd*bc*sc*i*",
                "pci:v00008086d00003E92sv0000103Csd000083E2bc03sc00i00",
                true,
            ),
            (
                "pci:v*d*sv*sd*bc0Csc03i30*",
                "pci:v00008086d0000A36Dsv0000103Csd000083E2bc0Csc03i30",
                true,
            ),
            (
                "pci:v*d*sv*sd*bc0Csc03i30*",
                "pci:v00008086d0000A36Dsv0000103Csd000083E2bc0Csc03i20",
                false,
            ),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*", "", true),
            ("", "x", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("[a-c]x", "bx", true),
            ("[!a-c]x", "bx", false),
            ("[!a-c]x", "dx", true),
            ("[]]", "]", true),
            ("[ab", "[ab", true),
            ("\\*", "*", true),
            ("\\*", "x", false),
        ] {
            assert_eq!(
                fnmatch(pattern.as_bytes(), text.as_bytes()),
                want,
                "{pattern} ~ {text}"
            );
        }
    }

    #[test]
    fn modules_in_file_order_each_once() {
        let aliases = ModuleAliases::parse(
            "# Aliases extracted from modules themselves.\n\
             alias pci:v00008086d0000A348sv*sd*bc*sc*i* snd_hda_intel\n\
             alias pci:v00008086d0000A348sv*sd*bc04sc01i00* snd_sof_pci_intel_cnl\n\
             alias pci:v00008086d0000A348sv*sd*bc*sc*i* snd_hda_intel\n\
             alias pci:v*d*sv*sd*bc04sc03i00* snd_hda_intel\n\
             alias pci:v00008086d0000A348sv*sd*bc04sc03i00* snd_sof_pci_intel_cnl\n\
             alias usb:v8087p0AAAd*dc*dsc*dp*ic*isc*ip*in* btusb\n\
             garbage line\n",
        );
        let modalias = "pci:v00008086d0000A348sv0000103Csd000083E2bc04sc03i00";
        assert_eq!(
            aliases.modules_for(modalias),
            ["snd_hda_intel", "snd_sof_pci_intel_cnl"]
        );
        assert!(
            aliases
                .modules_for("pci:v000010DEd00001234sv0sd0bc02sc00i00")
                .is_empty()
        );
        assert!(aliases.modules_for("short").is_empty());
    }
}
