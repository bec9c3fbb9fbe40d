//! Ids as people type them: `8086`, `0x3e92`, `8086:3e92`, class `030000`.

use crate::error::Error;

/// A 16-bit hex id as EfiRom's `-f`/`-i` take it: `8086`, `0x8086`, `0X8086`; `what` names it in
/// the error (`vendor id`).
pub fn parse_hex16(s: &str, what: &str) -> Result<u16, Error> {
    let t = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if t.is_empty() || t.len() > 4 {
        return Err(Error::Input(format!(
            "invalid {what} {s:?}: expected up to 4 hex digits"
        )));
    }
    u16::from_str_radix(t, 16)
        .map_err(|_| Error::Input(format!("invalid {what} {s:?}: expected hex")))
}

/// A 24-bit class code, up to six hex digits, `0x` allowed: `030000`.
pub fn parse_class_code(s: &str) -> Result<u32, Error> {
    let t = s.strip_prefix("0x").unwrap_or(s);
    if t.is_empty() || t.len() > 6 {
        return Err(Error::Input(format!(
            "invalid class code {s:?}: expected six hex digits (030000)"
        )));
    }
    u32::from_str_radix(t, 16)
        .map_err(|_| Error::Input(format!("invalid class code {s:?}: expected hex")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn hex16_takes_bare_and_prefixed_hex() {
        assert_eq!(parse_hex16("8086", "vendor id"), Ok(0x8086));
        assert_eq!(parse_hex16("0x3E92", "device id"), Ok(0x3e92));
        assert_eq!(parse_hex16("0X1", "device id"), Ok(1));
        assert_eq!(
            msg(parse_hex16("12345", "vendor id")),
            r#"invalid vendor id "12345": expected up to 4 hex digits"#
        );
        assert_eq!(
            msg(parse_hex16("0x", "vendor id")),
            r#"invalid vendor id "0x": expected up to 4 hex digits"#
        );
        assert_eq!(
            msg(parse_hex16("", "code revision")),
            r#"invalid code revision "": expected up to 4 hex digits"#
        );
        assert_eq!(
            msg(parse_hex16("1g", "code revision")),
            r#"invalid code revision "1g": expected hex"#
        );
        // `from_str_radix` takes a leading `+`, and so does this.
        assert_eq!(parse_hex16("+1", "device id"), Ok(1));
        assert_eq!(
            msg(parse_hex16("-1", "device id")),
            r#"invalid device id "-1": expected hex"#
        );
    }

    #[test]
    fn class_code_is_up_to_six_digits_lowercase_prefix_only() {
        assert_eq!(parse_class_code("030000"), Ok(0x030000));
        assert_eq!(parse_class_code("0x0300"), Ok(0x0300));
        assert_eq!(
            msg(parse_class_code("0x1234567")),
            r#"invalid class code "0x1234567": expected six hex digits (030000)"#
        );
        assert_eq!(
            msg(parse_class_code("")),
            r#"invalid class code "": expected six hex digits (030000)"#
        );
        // Only `0x`, as before: `0X…` is not hex.
        assert_eq!(
            msg(parse_class_code("0X0300")),
            r#"invalid class code "0X0300": expected hex"#
        );
    }
}
