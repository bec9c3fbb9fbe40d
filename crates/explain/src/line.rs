//! Log line prefixes, the PCI device a line names, and the key repeated lines fold on.
//!
//! Everything here works on bytes of ASCII syntax and slices only after ASCII bytes, so any
//! UTF-8 input is safe.

/// Month and weekday names as `dmesg -T`, journalctl and syslog print them.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// The line without the parts that say *when* and *where* it was logged: `dmesg` time stamps
/// (`[   12.345678]`, `[  +0.000012]`, `-T` dates `[Sun Jun  3 20:35:58 2025]`, `-r` priorities
/// `<4>`, `[ T1234]`/`[    C0]` caller ids), syslog and `journalctl` headers
/// (`Jun 03 20:35:58 pve kernel: `, `pve pvedaemon[1234]: `), ISO-8601 time stamps (journalctl
/// `-o short-iso`, QEMU `-msg timestamp=on`) and libvirtd's `PID: error : func:line : `.
/// What remains starts with the kernel's device prefix or the program's name.
///
/// ```
/// use vfiokit_explain::strip_time;
/// assert_eq!(
///     strip_time("Jun 03 20:35:58 pve kernel: [  141.2] vfio-pci 0000:01:00.0: BAR 1"),
///     "vfio-pci 0000:01:00.0: BAR 1"
/// );
/// ```
pub fn strip_time(line: &str) -> &str {
    let mut s = line.trim_start();
    while let Some(rest) = strip_priority(s)
        .or_else(|| strip_bracket_stamp(s))
        .or_else(|| strip_iso(s))
        .or_else(|| strip_syslog(s))
    {
        s = rest.trim_start();
    }
    s
}

/// The message of a log line: [`strip_time`], then the program and location prefixes QEMU,
/// qemu-server and libvirt put in front of it (`kvm: `, `qemu-system-x86_64: `,
/// `-device vfio-pci,host=…: `, `vfio 0000:01:00.0: `, `TASK ERROR: `, `WARN: `, `error: `,
/// `warning: `, `internal error: `, …). The kernel's device prefix (`vfio-pci 0000:01:00.0: `) stays.
///
/// ```
/// use vfiokit_explain::message;
/// assert_eq!(
///     message("kvm: -device vfio-pci,host=0000:01:00.0,id=hostpci0: vfio 0000:01:00.0: group 1 is not viable"),
///     "group 1 is not viable"
/// );
/// ```
pub fn message(line: &str) -> &str {
    const PROGRAM: [&str; 14] = [
        "TASK ERROR: ",
        "WARN: ",
        "kvm: ",
        "qemu-kvm: ",
        "error: ",
        "warning: ",
        "info: ",
        "internal error: ",
        "unsupported configuration: ",
        "Requested operation is not valid: ",
        "operation failed: ",
        "vfio: ",
        "vfio-pci: ",
        "start failed: ",
    ];
    let mut s = strip_time(line);
    loop {
        let before = s.len();
        for p in PROGRAM {
            if let Some(rest) = s.strip_prefix(p) {
                s = rest.trim_start();
            }
        }
        if s.starts_with("qemu-system-")
            && let Some((prog, rest)) = s.split_once(": ")
            && !prog.contains(' ')
        {
            s = rest.trim_start();
        }
        if s.starts_with("-device ")
            && let Some((_, rest)) = s.split_once(": ")
        {
            s = rest.trim_start();
        }
        if let Some(rest) = s.strip_prefix("vfio ")
            && let Some((_, len)) = address_at(rest.as_bytes(), 0)
            && rest[len..].starts_with(": ")
        {
            s = rest[len + 2..].trim_start();
        }
        if s.len() == before {
            return s;
        }
    }
}

fn strip_priority(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('<')?;
    let end = rest.find('>')?;
    (end > 0 && end <= 3 && rest[..end].bytes().all(|b| b.is_ascii_digit()))
        .then(|| &rest[end + 1..])
}

fn is_float(s: &str) -> bool {
    match s.split_once('.') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

fn strip_bracket_stamp(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(']')?;
    let inner = rest[..end].trim();
    let caller = |c: char| {
        inner
            .strip_prefix(c)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let date = inner.len() >= 3
        && inner.is_char_boundary(3)
        && (MONTHS.contains(&&inner[..3]) || WEEKDAYS.contains(&&inner[..3]))
        && inner.contains(':');
    let stamp = is_float(inner)
        || inner.strip_prefix('+').is_some_and(is_float)
        || caller('T')
        || caller('C')
        || date;
    stamp.then(|| &rest[end + 1..])
}

/// Reads `n` ASCII digits at the start of `s`.
fn digits(s: &str, n: usize) -> Option<&str> {
    (s.len() >= n && s.as_bytes()[..n].iter().all(u8::is_ascii_digit)).then(|| &s[n..])
}

/// `HH:MM:SS` with an optional fraction.
fn clock(s: &str) -> Option<&str> {
    let s = digits(s, 2)?.strip_prefix(':')?;
    let s = digits(s, 2)?.strip_prefix(':')?;
    let mut s = digits(s, 2)?;
    if let Some(frac) = s.strip_prefix(['.', ',']) {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        s = &frac[n..];
    }
    Some(s)
}

fn strip_iso(s: &str) -> Option<&str> {
    let r = digits(s, 4)?.strip_prefix('-')?;
    let r = digits(r, 2)?.strip_prefix('-')?;
    let r = digits(r, 2)?.strip_prefix(['T', ' '])?;
    let mut r = clock(r)?;
    if let Some(z) = r.strip_prefix('Z') {
        r = z;
    } else if let Some(tz) = r.strip_prefix(['+', '-']) {
        let t = digits(tz, 2)?;
        let t = t.strip_prefix(':').unwrap_or(t);
        r = digits(t, 2)?;
    }
    let r = r.strip_prefix(':').unwrap_or(r);
    if !(r.is_empty() || r.starts_with(' ')) {
        return None;
    }
    let r = r.trim_start();
    Some(
        strip_libvirtd(r)
            .or_else(|| strip_host_ident(r))
            .unwrap_or(r),
    )
}

/// libvirtd's `PID: error : function:line : `.
fn strip_libvirtd(s: &str) -> Option<&str> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    let r = s[n..].strip_prefix(": ")?;
    let (level, r) = r.split_once(" : ")?;
    if !["error", "warning", "info", "debug"].contains(&level.trim()) {
        return None;
    }
    match r.split_once(" : ") {
        Some((func, rest)) if !func.contains(' ') && func.contains(':') => Some(rest),
        _ => Some(r),
    }
}

/// `host ident: ` or `host ident[pid]: ` after a syslog or ISO time stamp.
fn strip_host_ident(s: &str) -> Option<&str> {
    let (host, r) = s.split_once(' ')?;
    if host.is_empty() || host.ends_with(':') || host.contains('[') {
        return None;
    }
    let (ident, rest) = match r.split_once(' ') {
        Some((ident, rest)) => (ident, rest),
        None => (r, ""),
    };
    let name = ident.strip_suffix(':')?;
    let name = match name.split_once('[') {
        Some((n, pid)) => {
            let pid = pid.strip_suffix(']')?;
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            n
        }
        None => name,
    };
    let ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/' | b'@'));
    ok.then_some(rest)
}

fn strip_syslog(s: &str) -> Option<&str> {
    if s.len() < 4 || !s.is_char_boundary(3) || !MONTHS.contains(&&s[..3]) {
        return None;
    }
    let r = s[3..].strip_prefix(' ')?.trim_start();
    let n = r.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 || n > 2 {
        return None;
    }
    let r = clock(r[n..].strip_prefix(' ')?)?;
    let r = r.strip_prefix(' ')?;
    Some(strip_host_ident(r).unwrap_or(r))
}

/// Reads a PCI address at `i`: `DDDD:BB:DD.F` or `BB:DD.F`, hex, device ≤ 0x1f, function ≤ 7,
/// not followed by another hex digit. Returns the normalized address and its length.
pub(crate) fn address_at(b: &[u8], i: usize) -> Option<(String, usize)> {
    let hex_run = |at: usize, max: usize| -> Option<(u32, usize)> {
        let n = b
            .get(at..)?
            .iter()
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
        if n == 0 || n > max {
            return None;
        }
        let s = std::str::from_utf8(&b[at..at + n]).ok()?;
        Some((u32::from_str_radix(s, 16).ok()?, n))
    };
    let (first, n1) = hex_run(i, 8)?;
    let mut at = i + n1;
    if b.get(at) != Some(&b':') {
        return None;
    }
    at += 1;
    let (second, n2) = hex_run(at, 2)?;
    at += n2;
    let (domain, bus, device) = match b.get(at) {
        Some(b':') => {
            let (third, n3) = hex_run(at + 1, 2)?;
            at += 1 + n3;
            (first, second, third)
        }
        Some(b'.') if n1 <= 2 => (0, first, second),
        _ => return None,
    };
    if b.get(at) != Some(&b'.') {
        return None;
    }
    let f = *b.get(at + 1)?;
    if !(b'0'..=b'7').contains(&f) {
        return None;
    }
    at += 2;
    if b.get(at).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    if device > 0x1f {
        return None;
    }
    let func = f - b'0';
    Some((
        format!("{domain:04x}:{bus:02x}:{device:02x}.{func}"),
        at - i,
    ))
}

/// The first PCI address in `s` that stands on its own (not inside a longer token such as a time
/// `20:35:58.1` or a USB id `0003:062A:4101.0004`).
fn first_address(s: &str) -> Option<String> {
    let b = s.as_bytes();
    // A `:` may stand before an address only after a word (`PCI:0000:01:00.0`), not inside a
    // longer run of hex fields (`0000:c5:00.0` read from its bus, a clock).
    let starts = |i: usize| match i.checked_sub(1).map(|p| b[p]) {
        None => true,
        Some(b':') => i < 2 || !b[i - 2].is_ascii_hexdigit(),
        Some(c) => !(c.is_ascii_alphanumeric() || c == b'.'),
    };
    (0..b.len())
        .filter(|&i| starts(i))
        .find_map(|i| address_at(b, i).map(|(a, _)| a))
}

/// Finds `key` (ASCII, lowercase) in `s` ignoring ASCII case, returning the index after it.
fn find_ci(s: &str, key: &str) -> Option<usize> {
    let hay = s.as_bytes();
    let k = key.as_bytes();
    hay.windows(k.len())
        .position(|w| w.eq_ignore_ascii_case(k))
        .map(|p| p + k.len())
}

/// The PCI device a log line concerns, normalized to `0000:01:00.0`.
///
/// In order: QEMU's `host=` option, AMD-Vi's `device=`, a VT-d fault's `Request device [BB:DD.F]`
/// (also `[0xBB:0xDD.F]`), then the first address in the line (the kernel's `vfio-pci 0000:01:00.0: `
/// prefix, `vfio 0000:…`, quoted addresses, sysfs paths, `[0000:01:00.0]`, bare `01:00.0`).
/// Time stamps and host names are skipped first, so a clock never reads as an address.
///
/// ```
/// use vfiokit_explain::device;
/// assert_eq!(device("DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x0").as_deref(), Some("0000:00:02.0"));
/// assert_eq!(device("AMD-Vi: Event logged [IO_PAGE_FAULT device=c5:00.0 domain=0x0000]").as_deref(), Some("0000:c5:00.0"));
/// assert_eq!(device("2025-09-03T06:19:15.076547Z qemu-system-x86_64: no address here"), None);
/// ```
pub fn device(line: &str) -> Option<String> {
    let s = strip_time(line);
    for key in ["host=", "device="] {
        if let Some(at) = find_ci(s, key)
            && let Some((a, _)) = address_at(s.as_bytes(), at)
        {
            return Some(a);
        }
    }
    if let Some(at) = find_ci(s, "request device [") {
        let inner: String = s[at..]
            .chars()
            .take_while(|&c| c != ']')
            .take(32)
            .collect::<String>()
            .replace("0x", "")
            .replace("0X", "");
        if let Some((a, _)) = address_at(inner.as_bytes(), 0) {
            return Some(a);
        }
    }
    first_address(s)
}

/// The key repeated lines fold on: the [`message`] in lowercase with every token that holds a
/// digit (addresses, numbers, hex values) replaced by `#`.
pub(crate) fn fold_key(line: &str) -> String {
    let msg = message(line);
    let mut out = String::with_capacity(msg.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        if token.bytes().any(|b| b.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in msg.chars() {
        if c.is_alphanumeric() {
            token.extend(c.to_lowercase());
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

/// Normalizes an address in any of the accepted spellings (`01:00.0`, `0000:01:00.0`); `None`
/// when it is not one.
pub(crate) fn normalize_address(addr: &str) -> Option<String> {
    let t = addr.trim();
    address_at(t.as_bytes(), 0).and_then(|(a, len)| (len == t.len()).then_some(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_every_prefix_format() {
        let cases = [
            (
                "[  495.151099] vfio-pci 0000:00:02.0: X",
                "vfio-pci 0000:00:02.0: X",
            ),
            (
                "[  495.151099] [ T1234] vfio-pci 0000:00:02.0: X",
                "vfio-pci 0000:00:02.0: X",
            ),
            ("[    2.1] [    C0] X", "X"),
            ("<4>[    2.1] X", "X"),
            ("[  +0.000012] X", "X"),
            ("[Sun Jun  3 20:35:58 2025] X", "X"),
            ("[Aug 4 09:48] X", "X"),
            ("Jun 03 20:35:58 pve kernel: X", "X"),
            ("Dec  2 09:48:31 pelican systemd-modules-load[824]: X", "X"),
            ("Jun 03 20:35:58 pve kernel: [141156.223634] X", "X"),
            ("2026-09-26T12:33:17-0700 pve kernel: X", "X"),
            (
                "2025-09-03T06:19:15.076547Z qemu-system-x86_64: X",
                "qemu-system-x86_64: X",
            ),
            (
                "2025-09-03 06:19:15.076+0000: 1234: error : qemuProcessReportLogError:123 : X",
                "X",
            ),
            ("[drm] X", "[drm] X"),
            ("[0000:01:00.0] X", "[0000:01:00.0] X"),
        ];
        for (line, want) in cases {
            assert_eq!(strip_time(line), want, "{line}");
        }
    }

    #[test]
    fn finds_addresses() {
        let cases = [
            ("vfio-pci 0000:c5:00.6: x", Some("0000:c5:00.6")),
            (
                "kvm: -device vfio-pci,host=01:00.0,id=hostpci0: x",
                Some("0000:01:00.0"),
            ),
            ("x [0000:01:00.0] y", Some("0000:01:00.0")),
            (
                "DMAR: [DMA Write] Request device [0x01:0x00.0] fault addr",
                Some("0000:01:00.0"),
            ),
            (
                "error writing '1' to '/sys/bus/pci/devices/0000:c5:00.0/reset'",
                Some("0000:c5:00.0"),
            ),
            (
                "PCI device '0000:01:00.0' already in use",
                Some("0000:01:00.0"),
            ),
            ("Jun 03 20:35:58 pve kernel: nothing", None),
            ("at 20:35:58.1 nothing", None),
            ("hid-generic 0003:062A:4101.0004: x", None),
            (
                "vgaarb: device changed decodes: PCI:0000:01:00.0,olddecodes=io",
                Some("0000:01:00.0"),
            ),
            ("bus 01:00.8 is no function", None),
            ("slot 00:20.0 is no device", None),
        ];
        for (line, want) in cases {
            assert_eq!(device(line).as_deref(), want, "{line}");
        }
    }

    #[test]
    fn folds_numbers() {
        assert_eq!(
            fold_key(
                "[ 1.0] vfio-pci 0000:c5:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0000 address=0x1b2801000 flags=0x0050]"
            ),
            fold_key(
                "[ 2.0] vfio-pci 0000:c5:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0022 address=0x191c00000 flags=0x0000]"
            ),
        );
    }
}
