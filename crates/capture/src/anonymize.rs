//! Consistent replacement of identifying data: the same input maps to the same output within one
//! [`Anonymizer`], so a gateway in `/proc/net/route` and in `/etc/network/interfaces` stay equal.

use std::collections::HashMap;

/// Replaces MAC and IPv4 addresses, UUIDs, serial numbers, disk ids and host names, consistently.
#[derive(Debug, Default)]
pub struct Anonymizer {
    maps: HashMap<(&'static str, String), String>,
    counts: HashMap<&'static str, usize>,
}

/// What every host name becomes (`/etc/hostname`, the host column of a journal line).
pub const HOST_NAME: &str = "host1";

impl Anonymizer {
    /// A new anonymizer with no replacements made yet.
    pub fn new() -> Anonymizer {
        Anonymizer::default()
    }

    fn map(&mut self, kind: &'static str, value: &str, make: impl Fn(usize) -> String) -> String {
        let key = (kind, value.to_ascii_lowercase());
        if let Some(v) = self.maps.get(&key) {
            return v.clone();
        }
        let n = self.counts.entry(kind).or_default();
        *n += 1;
        let v = make(*n);
        self.maps.insert(key, v.clone());
        v
    }

    fn mac(&mut self, mac: &str) -> String {
        self.map("mac", mac, |n| {
            format!("02:00:00:00:{:02x}:{:02x}", n >> 8, n & 0xff)
        })
    }

    fn ipv4(&mut self, ip: [u8; 4]) -> [u8; 4] {
        if ip[0] == 0 || ip[0] == 127 || ip[0] == 255 {
            return ip; // any, loopback and netmasks identify nobody
        }
        let s = self.map(
            "ip",
            &format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]),
            |n| format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff),
        );
        let mut out = [0u8; 4];
        for (o, p) in out.iter_mut().zip(s.split('.')) {
            *o = p.parse().unwrap_or(0);
        }
        out
    }

    fn uuid(&mut self, uuid: &str) -> String {
        self.map("uuid", uuid, |n| {
            format!("00000000-0000-4000-8000-{n:012x}")
        })
    }

    /// A serial number (a USB device's `serial`, the serial part of a disk id): `SERIAL0001`.
    pub fn serial(&mut self, serial: &str) -> String {
        self.map("serial", serial, |n| format!("SERIAL{n:04}"))
    }

    /// A `/dev/disk/by-id` name: the serial after the last `_` is replaced
    /// (`ata-ST1000LM035-1RK172_WDE0XXXX-part3` → `ata-ST1000LM035-1RK172_SERIAL0001-part3`); a
    /// name that is an id as a whole (`wwn-0x5000…`, `nvme-eui.0025…`) keeps only its kind
    /// (`wwn-ID0001`). Partitions of one disk keep their `-partN` and share the disk's replacement;
    /// an NVMe namespace keeps its `_1`.
    pub fn disk_id(&mut self, name: &str) -> String {
        let (base, part) = match name.rfind("-part") {
            Some(i) if name[i + 5..].bytes().all(|b| b.is_ascii_digit()) && i + 5 < name.len() => {
                name.split_at(i)
            }
            _ => (name, ""),
        };
        // NVMe namespaces add `_1` after the serial.
        let (base, ns) = match base.rsplit_once('_') {
            Some((head, n))
                if head.contains('_') && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()) =>
            {
                (head, &base[head.len()..])
            }
            _ => (base, ""),
        };
        let base = match (base.rsplit_once('_'), base.split_once('-')) {
            (Some((model, serial)), _) => format!("{model}_{}{ns}", self.serial(serial)),
            (None, Some((kind, id))) => {
                format!(
                    "{kind}-{}",
                    self.map("disk-id", id, |n| format!("ID{n:04}"))
                )
            }
            (None, None) => self.map("disk-id", base, |n| format!("ID{n:04}")),
        };
        base + part
    }

    /// Replaces MACs, IPv4 addresses and UUIDs in free text. (The host name is replaced only where
    /// its place is known, `/etc/hostname` and the journal's host column: on Proxmox it is often
    /// `pve`, which also stands in kernel releases.)
    pub fn text(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            // Not inside a longer word, dotted version (`v1.2.3.4.5`) or colon list.
            let boundary =
                i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b".:".contains(&b[i - 1]));
            if boundary && let Some((len, rep)) = self.token_at(&text[i..]) {
                out.push_str(&rep);
                i += len;
                continue;
            }
            let ch = text[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
        out
    }

    fn token_at(&mut self, s: &str) -> Option<(usize, String)> {
        let b = s.as_bytes();
        let hex = |r: std::ops::Range<usize>| {
            b.get(r)
                .is_some_and(|x| x.iter().all(u8::is_ascii_hexdigit))
        };
        let end_ok = |len: usize| b.get(len).is_none_or(|c| !c.is_ascii_alphanumeric());
        // UUID 8-4-4-4-12
        if b.len() >= 36
            && hex(0..8)
            && b[8] == b'-'
            && hex(9..13)
            && b[13] == b'-'
            && hex(14..18)
            && b[18] == b'-'
            && hex(19..23)
            && b[23] == b'-'
            && hex(24..36)
            && end_ok(36)
        {
            return Some((36, self.uuid(&s[..36])));
        }
        // MAC xx:xx:xx:xx:xx:xx
        if b.len() >= 17
            && (0..6).all(|k| hex(k * 3..k * 3 + 2) && (k == 5 || b[k * 3 + 2] == b':'))
            && end_ok(17)
        {
            return Some((17, self.mac(&s[..17])));
        }
        // IPv4 a.b.c.d
        let mut parts = [0u8; 4];
        let mut pos = 0;
        for (k, part) in parts.iter_mut().enumerate() {
            let digits = b[pos..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 || digits > 3 {
                return None;
            }
            *part = s[pos..pos + digits].parse().ok()?;
            pos += digits;
            if k < 3 {
                if b.get(pos) != Some(&b'.') {
                    return None;
                }
                pos += 1;
            }
        }
        if !end_ok(pos) || b.get(pos) == Some(&b'.') {
            return None;
        }
        let ip = self.ipv4(parts);
        Some((pos, format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])))
    }

    /// `/proc/net/route`: addresses are little-endian hex in the Destination and Gateway columns.
    pub fn route(&mut self, text: &str) -> String {
        let mut out = String::new();
        for (n, line) in text.split_inclusive('\n').enumerate() {
            if n == 0 {
                out.push_str(line);
                continue;
            }
            let mut fields: Vec<String> = line.split('\t').map(str::to_string).collect();
            for f in fields.iter_mut().skip(1).take(2) {
                if let Ok(v) = u32::from_str_radix(f.trim(), 16) {
                    let ip = self.ipv4(v.to_le_bytes());
                    let trailing = &f[f.trim_end().len()..];
                    *f = format!("{:08X}{trailing}", u32::from_le_bytes(ip));
                }
            }
            out.push_str(&fields.join("\t"));
        }
        out
    }

    /// Kernel log lines: free text, and in the journal's `[  1.234567] HOST kernel: …` form the
    /// host name becomes [`HOST_NAME`].
    pub fn kernel_log(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let line = self.text(line);
            let host = line
                .strip_prefix('[')
                .and_then(|l| l.split_once("] "))
                .and_then(|(_, rest)| rest.split_once(' '))
                .filter(|(_, rest)| rest.starts_with("kernel: "));
            match host {
                Some((name, rest)) => {
                    let stamp = &line[..line.len() - name.len() - rest.len() - 1];
                    out.push_str(stamp);
                    out.push_str(HOST_NAME);
                    out.push(' ');
                    out.push_str(rest);
                }
                None => out.push_str(&line),
            }
        }
        out
    }

    /// `zpool status -P`: free text, and every `/dev/disk/by-id/NAME` as [`Anonymizer::disk_id`]
    /// renames the captured link, so the pool's vdevs can still be traced.
    pub fn zpool_status(&mut self, text: &str) -> String {
        const BY_ID: &str = "/dev/disk/by-id/";
        let text = self.text(text);
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(i) = rest.find(BY_ID) {
            let (head, tail) = rest.split_at(i + BY_ID.len());
            out.push_str(head);
            let end = tail.find(|c: char| c.is_whitespace()).unwrap_or(tail.len());
            out.push_str(&self.disk_id(&tail[..end]));
            rest = &tail[end..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymizing_is_consistent_and_keeps_structure() {
        let mut a = Anonymizer::default();
        let text = "address 192.168.10.104/24\ngateway 192.168.10.1\nnet0: e1000=6E:FA:51:9A:D2:40,bridge=vmbr0\n\
                    smbios1: uuid=194d50cf-8f86-4fa2-b770-28aa88109b43\nkernel 6.8.12-11-pve netmask 255.255.255.0 v1.2.3.4.5\n";
        let out = a.text(text);
        assert_eq!(
            out,
            "address 10.0.0.1/24\ngateway 10.0.0.2\nnet0: e1000=02:00:00:00:00:01,bridge=vmbr0\n\
             smbios1: uuid=00000000-0000-4000-8000-000000000001\nkernel 6.8.12-11-pve netmask 255.255.255.0 v1.2.3.4.5\n"
        );
        // The same inputs map to the same outputs, in routes too (little-endian hex).
        assert_eq!(a.text("via 192.168.10.1"), "via 10.0.0.2");
        let route = "Iface\tDestination\tGateway \n vmbr0\t00000000\t010AA8C0\t0003\n";
        assert_eq!(
            a.route(route),
            "Iface\tDestination\tGateway \n vmbr0\t00000000\t0200000A\t0003\n"
        );
        assert_eq!(a.serial("PGVXV0F8"), "SERIAL0001");
        assert_eq!(a.serial("PGVXV0F8"), "SERIAL0001");
    }

    #[test]
    fn disk_ids_keep_their_kind_model_and_partition() {
        let mut a = Anonymizer::new();
        for (name, want) in [
            (
                "ata-ST1000LM035-1RK172_WDE0ABCD",
                "ata-ST1000LM035-1RK172_SERIAL0001",
            ),
            (
                "ata-ST1000LM035-1RK172_WDE0ABCD-part3",
                "ata-ST1000LM035-1RK172_SERIAL0001-part3",
            ),
            (
                "nvme-Samsung_SSD_970_EVO_Plus_1TB_S4EWNX0R123456_1-part2",
                "nvme-Samsung_SSD_970_EVO_Plus_1TB_SERIAL0002_1-part2",
            ),
            (
                "nvme-Samsung_SSD_970_EVO_Plus_1TB_S4EWNX0R123456",
                "nvme-Samsung_SSD_970_EVO_Plus_1TB_SERIAL0002",
            ),
            ("wwn-0x5000c500a1b2c3d4", "wwn-ID0001"),
            ("wwn-0x5000c500a1b2c3d4-part1", "wwn-ID0001-part1"),
            ("nvme-eui.0025388b91b3a1e2", "nvme-ID0002"),
            ("odd", "ID0003"),
            ("x-partition", "x-ID0004"),
        ] {
            assert_eq!(a.disk_id(name), want, "{name}");
        }
    }

    #[test]
    fn kernel_log_lines_lose_the_host_name_and_addresses() {
        let mut a = Anonymizer::new();
        let log = "[    0.000000] pve kernel: Command line: BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve intel_iommu=on\n\
                   [    1.50] pve kernel: e1000e 0000:00:1f.6 eth0: 6e:fa:51:9a:d2:40\n\
                   [    2.00] DMAR: IOMMU enabled\n";
        assert_eq!(
            a.kernel_log(log),
            "[    0.000000] host1 kernel: Command line: BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve intel_iommu=on\n\
             [    1.50] host1 kernel: e1000e 0000:00:1f.6 eth0: 02:00:00:00:00:01\n\
             [    2.00] DMAR: IOMMU enabled\n"
        );
    }

    #[test]
    fn zpool_vdevs_are_renamed_like_their_links() {
        let mut a = Anonymizer::new();
        let status = "  pool: rpool\n config:\n\trpool  ONLINE\n\t  /dev/disk/by-id/ata-ST1000LM035-1RK172_WDE0ABCD-part3  ONLINE  0 0 0\n";
        assert_eq!(
            a.zpool_status(status),
            "  pool: rpool\n config:\n\trpool  ONLINE\n\t  /dev/disk/by-id/ata-ST1000LM035-1RK172_SERIAL0001-part3  ONLINE  0 0 0\n"
        );
        assert_eq!(
            a.disk_id("ata-ST1000LM035-1RK172_WDE0ABCD"),
            "ata-ST1000LM035-1RK172_SERIAL0001"
        );
    }
}
