//! The few pieces of Perl semantics that Proxmox's parsers rely on: `\s`, `decode_text`,
//! `parse_boolean` and `Text::ParseWords::shellwords`.

use crate::Error;

/// Perl's `\s` on the byte strings qemu-server parses: space, `\t`, `\n`, `\x0b`, `\x0c`, `\r`.
/// (Rust's `is_ascii_whitespace` leaves out `\x0b`.)
pub(crate) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

pub(crate) fn trim(s: &str) -> &str {
    s.trim_matches(is_space)
}

pub(crate) fn is_blank(s: &str) -> bool {
    s.chars().all(is_space)
}

/// `PVE::Tools::decode_text`: `%XX` becomes the byte, then the bytes are read as UTF-8
/// (malformed sequences become U+FFFD, as `Encode::decode` does by default).
pub(crate) fn decode_text(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
        {
            let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(b[i + 1]) * 16 + hex(b[i + 2]));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `PVE::Tools::encode_text`: every byte outside `\x20-\x24\x26-\x39\x3b-\x7e` as `%XX`.
pub(crate) fn encode_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &byte in s.as_bytes() {
        if matches!(byte, 0x20..=0x24 | 0x26..=0x39 | 0x3b..=0x7e) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `PVE::JSONSchema::parse_boolean`: `1|on|yes|true` and `0|off|no|false`, any case.
pub(crate) fn parse_boolean(v: &str) -> Option<bool> {
    let l = v.to_ascii_lowercase();
    match l.as_str() {
        "1" | "on" | "yes" | "true" => Some(true),
        "0" | "off" | "no" | "false" => Some(false),
        _ => None,
    }
}

/// `^\d+$` (ASCII digits, no sign).
pub(crate) fn is_uint(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
}

/// `Text::ParseWords::shellwords` as `PVE::Tools::split_args` uses it on `args:`.
///
/// Leading blanks are dropped; words are separated by runs of `\s`; `"…"` and `'…'` group;
/// pieces next to each other join into one word (`a"b c"d` is `ab cd`); outside quotes and inside
/// double quotes a backslash takes the next character literally; inside single quotes a
/// backslash and the character after it are both kept. Where Perl gives up (an unbalanced quote,
/// a trailing lone backslash) it returns no words at all: that is an [`Error::Args`] here.
pub fn split_args(args: &str) -> Result<Vec<String>, Error> {
    let fail = |reason: &str| Error::Args {
        input: args.to_string(),
        reason: reason.to_string(),
    };
    let chars: Vec<char> = args.trim_start_matches(is_space).chars().collect();
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' {
            let quote = c;
            let mut piece = String::new();
            let mut j = i + 1;
            let mut closed = false;
            while j < chars.len() {
                let d = chars[j];
                if d == '\\' {
                    let Some(&next) = chars.get(j + 1) else {
                        break;
                    };
                    if quote == '"' {
                        piece.push(next);
                    } else {
                        piece.push('\\');
                        piece.push(next);
                    }
                    j += 2;
                } else if d == quote {
                    closed = true;
                    break;
                } else {
                    piece.push(d);
                    j += 1;
                }
            }
            if !closed {
                return Err(fail(&format!("unbalanced {quote} quote")));
            }
            word.get_or_insert_with(String::new).push_str(&piece);
            i = j + 1;
            continue;
        }
        if is_space(c) {
            words.push(word.take().unwrap_or_default());
            while i < chars.len() && is_space(chars[i]) {
                i += 1;
            }
            continue;
        }
        if c == '\\' {
            let Some(&next) = chars.get(i + 1) else {
                return Err(fail("trailing backslash"));
            };
            word.get_or_insert_with(String::new).push(next);
            i += 2;
            continue;
        }
        word.get_or_insert_with(String::new).push(c);
        i += 1;
    }
    if let Some(w) = word {
        words.push(w);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shellwords_like_perl() {
        let ok = |s: &str| split_args(s).unwrap_or_else(|e| vec![format!("ERR {e}")]);
        assert_eq!(ok("  -a  b "), ["-a", "b"]);
        assert_eq!(ok("a\"b c\"d"), ["ab cd"]);
        assert_eq!(ok(r#"-cpu 'host,+x' "q\"x""#), ["-cpu", "host,+x", "q\"x"]);
        assert_eq!(ok(r"'a\'b'"), [r"a\'b"]);
        assert_eq!(ok(r"a\ b"), ["a b"]);
        assert_eq!(ok("\"\""), [""]);
        assert_eq!(ok(""), Vec::<String>::new());
        assert!(split_args("a 'b").is_err());
        assert!(split_args("a b\\").is_err());
    }

    #[test]
    fn text_codec() {
        assert_eq!(decode_text("a%3Ab%25%zz%C3%A9"), "a:b%%zzé");
        assert_eq!(encode_text("a:b%é"), "a%3Ab%25%C3%A9");
    }
}
