//! Proxmox's canonical form of a VM config: what `write_vm_config` writes after a load.
//!
//! Proxmox drops what it cannot parse and writes, per section: the description as `#` lines
//! (`encode_text`), then `key: value` lines sorted byte-wise, with the last valid value of each
//! key (`cdrom` read as `ide2`) and drive values re-printed as `print_drive` does (the file first,
//! the other keys sorted, booleans as `0`/`1`). Then `[PENDING]` (with `delete:` sorted and joined
//! by commas), `[special:…]` sections sorted, and snapshots sorted by name, each after a blank line.
//!
//! Limits: values are not re-printed beyond drives (Proxmox keeps other property strings as
//! written), and a `cloudinit` special section is written whether or not a cloud-init drive exists.

use std::collections::BTreeMap;

use crate::document::{HeaderKind, Kind, Rule};
use crate::lint::check_type;
use crate::perl::{decode_text, encode_text, parse_boolean};
use crate::{PropertyString, VmConfig};

/// One section as Proxmox holds it after loading.
#[derive(Default)]
struct Loaded {
    description: String,
    keys: BTreeMap<String, String>,
    delete: Vec<String>,
}

/// Drive keys (`ide0`, `scsi3`, `virtio1`, `sata0`, `efidisk0`, `tpmstate0`).
fn is_drive(key: &str) -> bool {
    let family = key.trim_end_matches(|c: char| c.is_ascii_digit());
    family.len() < key.len()
        && matches!(
            family,
            "ide" | "sata" | "scsi" | "virtio" | "efidisk" | "tpmstate"
        )
}

/// Boolean options of Proxmox's drive format, printed as `0`/`1`.
const DRIVE_BOOLEANS: &[&str] = &[
    "backup",
    "iothread",
    "replicate",
    "ro",
    "shared",
    "snapshot",
    "ssd",
    "pre-enrolled-keys",
];

/// `print_drive`: the file first (without `file=`), then the other keys sorted.
fn print_drive(value: &str) -> String {
    let ps = PropertyString::parse(value, Some("file"));
    let mut file = None;
    let mut rest: Vec<(String, String)> = Vec::new();
    for (k, v) in ps.parts() {
        match k {
            None | Some("file") | Some("volume") => file = Some(v.to_string()),
            Some(k) => {
                let v = if DRIVE_BOOLEANS.contains(&k) {
                    parse_boolean(v)
                        .map_or(v.to_string(), |b| if b { "1".into() } else { "0".into() })
                } else {
                    v.to_string()
                };
                rest.push((k.to_string(), v));
            }
        }
    }
    rest.sort();
    let mut parts: Vec<String> = file.into_iter().collect();
    parts.extend(rest.into_iter().map(|(k, v)| format!("{k}={v}")));
    parts.join(",")
}

impl VmConfig {
    /// The config as Proxmox would write it after reading it (see the module documentation).
    pub fn render_canonical(&self) -> String {
        let lines = self.raw_lines();
        let infos = self.infos();
        // Sections by header line index; `None` is the main section.
        let mut sections: BTreeMap<Option<usize>, Loaded> = BTreeMap::new();
        sections.entry(None).or_default();
        for (i, info) in infos.iter().enumerate() {
            let line = &lines[i];
            let skip = matches!(
                info.header.map(|h| infos[h].kind),
                Some(Kind::Header(HeaderKind::Unknown, _))
            );
            if skip {
                continue;
            }
            if let Kind::Header(kind, _) = info.kind {
                if kind != HeaderKind::Unknown {
                    sections.entry(Some(i)).or_default();
                }
                continue;
            }
            let section = sections.entry(info.header).or_default();
            match info.kind {
                Kind::Comment => {
                    section.description.push_str(&decode_text(&line[1..]));
                    section.description.push('\n');
                }
                Kind::Key { rule, key, value } => {
                    let (key, value) = (&line[key.0..key.1], &line[value.0..value.1]);
                    match rule {
                        Rule::Description => section.description.push_str(&decode_text(value)),
                        Rule::Delete => {
                            if info.header.is_some_and(|h| {
                                matches!(infos[h].kind, Kind::Header(HeaderKind::Pending, _))
                            }) {
                                section.delete.extend(
                                    value
                                        .split([',', ';', ' '])
                                        .filter(|s| !s.is_empty())
                                        .map(str::to_string),
                                );
                            }
                        }
                        Rule::Args | Rule::Snapstate => {
                            section.keys.insert(key.to_string(), value.to_string());
                        }
                        Rule::Plain => {
                            if check_type(key, value).is_ok() {
                                let key = if key == "cdrom" { "ide2" } else { key };
                                let value = if is_drive(key) {
                                    print_drive(value)
                                } else {
                                    value.trim_matches('"').to_string()
                                };
                                section.keys.insert(key.to_string(), value);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let header_name = |h: usize| match infos[h].kind {
            Kind::Header(kind, (a, b)) => Some((kind, lines[h][a..b].to_string())),
            _ => None,
        };
        let mut out = String::new();
        let write = |out: &mut String, s: &Loaded| {
            let description = s.description.trim_end();
            if !description.is_empty() {
                for l in description.split('\n') {
                    out.push('#');
                    out.push_str(&encode_text(l));
                    out.push('\n');
                }
            }
            for (k, v) in &s.keys {
                out.push_str(&format!("{k}: {v}\n"));
            }
            if !s.delete.is_empty() {
                let mut d = s.delete.clone();
                d.sort();
                d.dedup();
                out.push_str(&format!("delete: {}\n", d.join(",")));
            }
        };
        if let Some(main) = sections.get(&None) {
            write(&mut out, main);
        }
        let mut rest: Vec<(u8, String, &Loaded)> = sections
            .iter()
            .filter_map(|(h, s)| {
                let (kind, name) = header_name((*h)?)?;
                let order = match kind {
                    HeaderKind::Pending => 0,
                    HeaderKind::Special => 1,
                    _ => 2,
                };
                Some((order, name, s))
            })
            .collect();
        rest.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        for (order, name, s) in rest {
            let header = match order {
                0 => "[PENDING]".to_string(),
                1 => format!("[special:{name}]"),
                _ => format!("[{name}]"),
            };
            out.push_str(&format!("\n{header}\n"));
            write(&mut out, s);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_keys_drops_what_proxmox_drops_and_reprints_drives() {
        let text = "# my VM: test\n\
                    vga: none\n\
                    boot:\n\
                    cores: 2\n\
                    bogus: 1\n\
                    cores: 4\n\
                    scsi0: cache=writeback,file=local-lvm:vm-100-disk-0,size=64G,ssd=on\n\
                    cdrom: none,media=cdrom\n\
                    hostpci10: 0000:01:00.0\n\
                    hostpci2: 0000:02:00.0\n\
                    \n\
                    [snap2]\n\
                    cores: 1\n\
                    [PENDING]\n\
                    delete: vga;cores\n\
                    [snap1]\n\
                    memory: 1024\n";
        let got = VmConfig::parse(text).render_canonical();
        assert_eq!(
            got,
            "# my VM%3A test\n\
             cores: 4\n\
             hostpci10: 0000:01:00.0\n\
             hostpci2: 0000:02:00.0\n\
             ide2: none,media=cdrom\n\
             scsi0: local-lvm:vm-100-disk-0,cache=writeback,size=64G,ssd=1\n\
             vga: none\n\
             \n[PENDING]\n\
             delete: cores,vga\n\
             \n[snap1]\n\
             memory: 1024\n\
             \n[snap2]\n\
             cores: 1\n"
        );
    }

    #[test]
    fn a_config_proxmox_wrote_is_already_canonical() {
        let text = "agent: 1\nbios: ovmf\nboot: order=scsi0\ncores: 4\n\
                    efidisk0: local-lvm:vm-100-disk-1,efitype=4m,pre-enrolled-keys=1,size=4M\n\
                    machine: pc-i440fx-9.2\nvga: none\n";
        assert_eq!(VmConfig::parse(text).render_canonical(), text);
    }
}
