//! Property strings (`0000:00:02.0,legacy-igd=1,romfile=igd.rom`) and the part of Proxmox's
//! JSON schema that validates them.

use std::collections::BTreeMap;

use crate::Error;
use crate::perl::{is_blank, parse_boolean};

/// A comma-separated property string with an optional default key, kept byte for byte.
///
/// As in `PVE::JSONSchema::parse_property_string`: parts are split on `,` (there is no
/// escaping), blank parts are ignored, `k=v` names a key, and a part without `=` is the value of
/// the default key (`host` for `hostpciN`/`usbN`, `type` for `vga`/`machine`, `file` for drives).
/// [`PropertyString::render`] gives back the parsed text; edits touch only the part they change.
///
/// ```
/// use vfiokit_vmconf::PropertyString;
/// let mut p = PropertyString::parse("0000:00:02,legacy-igd=1", Some("host"));
/// assert_eq!(p.get("host"), Some("0000:00:02"));
/// assert!(p.set("romfile", "igd.rom"));
/// assert!(p.remove("legacy-igd"));
/// assert_eq!(p.render(), "0000:00:02,romfile=igd.rom");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyString {
    text: String,
    default_key: Option<String>,
}

impl PropertyString {
    /// Reads a property string. Never fails; [`crate::HostPci::parse`] and friends validate.
    pub fn parse(value: &str, default_key: Option<&str>) -> PropertyString {
        PropertyString {
            text: value.to_string(),
            default_key: default_key.map(str::to_string),
        }
    }

    /// The text.
    pub fn render(&self) -> String {
        self.text.clone()
    }

    /// The non-blank parts in order: `(Some(key), value)` for `key=value` (split at the first
    /// `=`), `(None, value)` for a part without `=` (the default key's value).
    pub fn parts(&self) -> Vec<(Option<&str>, &str)> {
        self.text
            .split(',')
            .filter(|p| !is_blank(p))
            .map(split_part)
            .collect()
    }

    fn matches(&self, part: &str, key: &str) -> bool {
        if is_blank(part) {
            return false;
        }
        match split_part(part) {
            (Some(k), _) => k == key,
            (None, _) => self.default_key.as_deref() == Some(key),
        }
    }

    /// The value of `key`; the default key also answers for a part without `=`. The first
    /// matching part wins (Proxmox rejects a repeated key).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.text
            .split(',')
            .find(|p| self.matches(p, key))
            .map(|p| split_part(p).1)
    }

    /// Sets `key` to `value`: the first matching part is rewritten in place; a missing default
    /// key goes first without `key=` (where Proxmox prints it), any other missing key is
    /// appended as `,key=value`. Refuses (returns `false`) an empty key or value, a key holding
    /// `=` or `,`, and a value holding `,` (Proxmox: "illegal value with commas") or a line break.
    /// Returns whether the text changed.
    pub fn set(&mut self, key: &str, value: &str) -> bool {
        if key.is_empty()
            || key.contains(['=', ',', '\n', '\r'])
            || value.is_empty()
            || value.contains([',', '\n', '\r'])
        {
            return false;
        }
        let is_default = self.default_key.as_deref() == Some(key);
        let mut parts: Vec<String> = self.text.split(',').map(str::to_string).collect();
        if let Some(i) = parts.iter().position(|p| self.matches(p, key)) {
            let bare = !parts[i].contains('=');
            parts[i] = if bare && !value.contains('=') {
                value.to_string()
            } else {
                format!("{key}={value}")
            };
            let new = parts.join(",");
            let changed = new != self.text;
            self.text = new;
            return changed;
        }
        let part = if is_default && !value.contains('=') {
            value.to_string()
        } else {
            format!("{key}={value}")
        };
        self.text = if is_blank(&self.text) {
            part
        } else if is_default && !value.contains('=') {
            format!("{part},{}", self.text)
        } else {
            format!("{},{part}", self.text)
        };
        true
    }

    /// Removes every part of `key`. Returns whether the text changed.
    pub fn remove(&mut self, key: &str) -> bool {
        let parts: Vec<&str> = self.text.split(',').collect();
        let kept: Vec<&str> = parts
            .iter()
            .copied()
            .filter(|p| !self.matches(p, key))
            .collect();
        if kept.len() == parts.len() {
            return false;
        }
        self.text = kept.join(",");
        true
    }
}

fn split_part(part: &str) -> (Option<&str>, &str) {
    match part.split_once('=') {
        Some((k, v)) => (Some(k), v),
        None => (None, part),
    }
}

/// A named format's check: `Err(message)` when the value does not satisfy it.
pub(crate) type FormatCheck = fn(&str) -> Result<(), String>;

/// A value check of Proxmox's JSON schema.
#[derive(Clone, Copy)]
pub(crate) enum Ty {
    Bool,
    Int {
        min: Option<i64>,
        max: Option<i64>,
    },
    Num {
        min: Option<f64>,
        max: Option<f64>,
    },
    Str {
        max_len: Option<usize>,
        /// A named format: `Err(message)` when the value does not satisfy it.
        format: Option<FormatCheck>,
        /// The anchored pattern.
        pattern: Option<fn(&str) -> bool>,
        enumeration: Option<&'static [&'static str]>,
    },
}

impl Ty {
    pub(crate) const STR: Ty = Ty::Str {
        max_len: None,
        format: None,
        pattern: None,
        enumeration: None,
    };
    pub(crate) const fn pattern(p: fn(&str) -> bool) -> Ty {
        Ty::Str {
            max_len: None,
            format: None,
            pattern: Some(p),
            enumeration: None,
        }
    }
    pub(crate) const fn enumeration(e: &'static [&'static str]) -> Ty {
        Ty::Str {
            max_len: None,
            format: None,
            pattern: None,
            enumeration: Some(e),
        }
    }
    pub(crate) const fn format(f: FormatCheck) -> Ty {
        Ty::Str {
            max_len: None,
            format: Some(f),
            pattern: None,
            enumeration: None,
        }
    }
}

/// One property of a property-string format.
#[derive(Clone, Copy)]
pub(crate) struct Prop {
    pub(crate) name: &'static str,
    pub(crate) ty: Ty,
    pub(crate) default_key: bool,
    pub(crate) optional: bool,
}

impl Prop {
    pub(crate) const fn opt(name: &'static str, ty: Ty) -> Prop {
        Prop {
            name,
            ty,
            default_key: false,
            optional: true,
        }
    }
    pub(crate) const fn req(name: &'static str, ty: Ty) -> Prop {
        Prop {
            name,
            ty,
            default_key: false,
            optional: false,
        }
    }
    pub(crate) const fn default_key(name: &'static str, ty: Ty) -> Prop {
        Prop {
            name,
            ty,
            default_key: true,
            optional: true,
        }
    }
}

/// JSONSchema `is_integer`: `^[+-]?\d+$`.
fn is_integer(v: &str) -> bool {
    let d = v.strip_prefix(['+', '-']).unwrap_or(v);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
}

/// JSONSchema `is_number`: `^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$`.
fn is_number(v: &str) -> bool {
    let s = v.strip_prefix(['+', '-']).unwrap_or(v);
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    let mant_ok = match mant.split_once('.') {
        None => digits(mant),
        Some((a, b)) => (digits(a) && (b.is_empty() || digits(b))) || (a.is_empty() && digits(b)),
    };
    let exp_ok = exp.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mant_ok && exp_ok
}

fn fmt_num(x: f64) -> String {
    format!("{x}")
}

/// JSONSchema `check_prop` for one value: the first problem, in Proxmox's order.
pub(crate) fn check_value(ty: &Ty, v: &str) -> Result<(), String> {
    match *ty {
        Ty::Bool => {
            if parse_boolean(v).is_none() {
                return Err(format!("type check ('boolean') failed - got '{v}'"));
            }
        }
        Ty::Int { min, max } => {
            if !is_integer(v) {
                return Err(format!("type check ('integer') failed - got '{v}'"));
            }
            let n: f64 = v.parse().unwrap_or(0.0);
            if let Some(m) = min
                && n < m as f64
            {
                return Err(format!("value must have a minimum value of {m}"));
            }
            if let Some(m) = max
                && n > m as f64
            {
                return Err(format!("value must have a maximum value of {m}"));
            }
        }
        Ty::Num { min, max } => {
            if !is_number(v) {
                return Err(format!("type check ('number') failed - got '{v}'"));
            }
            let n: f64 = v.parse().unwrap_or(0.0);
            if let Some(m) = min
                && n < m
            {
                return Err(format!("value must have a minimum value of {}", fmt_num(m)));
            }
            if let Some(m) = max
                && n > m
            {
                return Err(format!("value must have a maximum value of {}", fmt_num(m)));
            }
        }
        Ty::Str {
            max_len,
            format,
            pattern,
            enumeration,
        } => {
            if let Some(m) = max_len
                && v.chars().count() > m
            {
                return Err(format!("value may only be {m} characters long"));
            }
            if let Some(f) = format {
                f(v)?;
            }
            if let Some(p) = pattern
                && !p(v)
            {
                return Err("value does not match the regex pattern".to_string());
            }
            if let Some(e) = enumeration
                && !e.contains(&v)
            {
                return Err(format!(
                    "value '{v}' does not have a value in the enumeration '{}'",
                    e.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// `parse_property_string` with `check_object`: the keys and their raw values (booleans not
/// normalised), or Proxmox's message.
pub(crate) fn parse_schema(
    props: &[Prop],
    value: &str,
) -> Result<BTreeMap<&'static str, String>, Error> {
    let fail = |m: String| Error::Value { message: m };
    let mut res: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut default_used = false;
    for part in value.split(',') {
        if is_blank(part) {
            continue;
        }
        match part.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                let Some(p) = props.iter().find(|p| p.name == k) else {
                    if res.keys().any(|r| *r == k) {
                        return Err(fail(format!(
                            "duplicate key in comma-separated list property: {k}"
                        )));
                    }
                    return Err(fail(format!(
                        "invalid key in comma-separated list property: {k}"
                    )));
                };
                if res.contains_key(p.name) {
                    return Err(fail(format!(
                        "duplicate key in comma-separated list property: {k}"
                    )));
                }
                res.insert(p.name, v.to_string());
            }
            Some(_) => {
                return Err(fail(
                    "missing key in comma-separated list property".to_string(),
                ));
            }
            None => {
                let Some(p) = props.iter().find(|p| p.default_key) else {
                    return Err(fail(
                        "value without key, but schema does not define a default key".to_string(),
                    ));
                };
                if default_used || res.contains_key(p.name) {
                    return Err(fail(format!(
                        "duplicate key in comma-separated list property: {}",
                        p.name
                    )));
                }
                default_used = true;
                res.insert(p.name, part.to_string());
            }
        }
    }
    let mut errors: BTreeMap<&str, String> = BTreeMap::new();
    for p in props {
        match res.get(p.name) {
            None if !p.optional => {
                errors.insert(p.name, "property is missing and it is not optional".into());
            }
            None => {}
            Some(v) => {
                if let Err(m) = check_value(&p.ty, v) {
                    errors.insert(p.name, m);
                }
            }
        }
    }
    if !errors.is_empty() {
        let mut m = "format error".to_string();
        for (k, e) in errors {
            m.push('\n');
            m.push_str(k);
            m.push_str(": ");
            m.push_str(e.trim_end());
        }
        return Err(fail(m));
    }
    Ok(res)
}

/// `pve-configid`: `^[a-z][a-z0-9_-]+$`i.
pub(crate) fn configid(v: &str) -> Result<(), String> {
    let b = v.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid configuration ID '{v}'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_like_jsonschema() {
        for ok in ["1", "+1", "-1.", "1.5", ".5", "1e3", "2E-1"] {
            assert!(is_number(ok), "{ok}");
        }
        for bad in ["", ".", "e3", "1e", "a", "1.2.3"] {
            assert!(!is_number(bad), "{bad}");
        }
    }
}
