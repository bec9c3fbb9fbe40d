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
    by_prefix: HashMap<String, Vec<Alias>>,
    /// Patterns whose vendor part has a wildcard.
    generic: Vec<Alias>,
}

/// One `alias PATTERN MODULE` line.
#[derive(Debug, Clone)]
struct Alias {
    /// Its line number: matches are reported in file order.
    line: usize,
    pattern: String,
    module: String,
    /// The longest run of the pattern that must appear literally in a matching text (outside
    /// `*`, `?`, sets and escapes): a quick test before `fnmatch`, which most texts fail.
    literal: String,
}

impl Alias {
    fn new(line: usize, pattern: &str, module: &str) -> Alias {
        Alias {
            line,
            literal: longest_literal(pattern.as_bytes()),
            pattern: pattern.to_string(),
            module: module.to_string(),
        }
    }
}

/// The longest run of ordinary bytes in an `fnmatch` pattern; runs end at `*`, `?`, `[…]`
/// sets and `\` escapes.
fn longest_literal(pattern: &[u8]) -> String {
    let (mut best, mut start, mut i) = ((0, 0), 0, 0);
    while i <= pattern.len() {
        let special = pattern
            .get(i)
            .is_none_or(|&b| matches!(b, b'*' | b'?' | b'[' | b'\\'));
        if !special {
            i += 1;
            continue;
        }
        if i - start > best.1 - best.0 {
            best = (start, i);
        }
        i += match pattern.get(i) {
            None => break,
            // A set: skip to its closing `]` (the first one after the opening, a `]` right
            // after `[` or `[!` belonging to the set); unterminated, nothing after is literal.
            Some(b'[') => {
                let mut j = i + 1;
                if matches!(pattern.get(j), Some(b'!' | b'^')) {
                    j += 1;
                }
                if pattern.get(j) == Some(&b']') {
                    j += 1;
                }
                match pattern[j.min(pattern.len())..]
                    .iter()
                    .position(|&b| b == b']')
                {
                    Some(k) => j + k + 1 - i,
                    None => break,
                }
            }
            Some(b'\\') => 2,
            Some(_) => 1,
        };
        start = i;
    }
    String::from_utf8_lossy(&pattern[best.0..best.1]).into_owned()
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
            let entry = Alias::new(n, pattern, module);
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
        let mut hits: Vec<&Alias> = indexed
            .iter()
            .chain(&self.generic)
            .filter(|a| modalias.contains(a.literal.as_str()))
            .filter(|a| fnmatch(a.pattern.as_bytes(), modalias.as_bytes()))
            .collect();
        hits.sort_by_key(|a| a.line);
        let mut modules: Vec<&str> = Vec::new();
        for a in hits {
            if !modules.contains(&a.module.as_str()) {
                modules.push(&a.module);
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
    fn the_literal_run_is_in_every_text_a_pattern_matches() {
        let patterns = [
            "pci:v00008086d00003E92sv*sd*bc*sc*i*",
            "pci:v*d*sv*sd*bc03sc00i00*",
            "pci:v000010DEd*sv*sd*bc03sc*i*",
            "usb:v*p*d*dc*dsc*dp*ic03isc01ip01in*",
            "a[]b]cdef*",
            "x[!]]yz??longer",
            "ab\\*cdefg",
            "ab[cd",
            "",
            "*",
        ];
        assert_eq!(
            longest_literal(b"pci:v*d*sv*sd*bc03sc00i00*"),
            "bc03sc00i00"
        );
        assert_eq!(longest_literal(b"a[]b]cdef*"), "cdef");
        assert_eq!(longest_literal(b"ab\\*cdefg"), "cdefg");
        let texts = [
            "pci:v00008086d00003E92sv0000103Csd0000859Fbc03sc00i00",
            "pci:v000010DEd00001F08sv00001462sd00003756bc03sc00i00",
            "usb:v062Ap4101d0110dc00dsc00dp00ic03isc01ip01in00",
            "abcdef",
            "a]cdefx",
            "xayzablonger",
            "ab*cdefg",
            "ab[cd",
            "",
        ];
        for p in patterns {
            let lit = longest_literal(p.as_bytes());
            for t in texts {
                if fnmatch(p.as_bytes(), t.as_bytes()) {
                    assert!(t.contains(&lit), "{p:?} matches {t:?} without {lit:?}");
                }
            }
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
