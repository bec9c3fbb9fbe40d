//! Cluster resource mappings: `/etc/pve/mapping/pci.cfg` and `usb.cfg`.

use std::collections::BTreeMap;

use crate::Error;
use crate::hostpci::PciHostId;
use crate::perl::{is_space, trim};
use crate::propstr::{Prop, Ty, configid, parse_schema};

/// One section of a mapping file: a header line holding just the id, then indented
/// `\t<key> <value>` property lines, ended by an empty line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingSection {
    /// The mapping id (`igpu`).
    pub id: String,
    /// 1-based line of the header.
    pub line: usize,
    /// Every `map` line: its 1-based line and the value (a property string, see
    /// [`PciMapItem`], [`UsbMapItem`]).
    pub maps: Vec<(usize, String)>,
    /// The `description`, if any (the last one).
    pub description: Option<String>,
    /// Every property line in order: 1-based line, key, value (`None` for a bare key).
    pub properties: Vec<(usize, String, Option<String>)>,
    /// Why Proxmox skips the whole section (the id is not a `pve-configid`), if it does.
    pub error: Option<String>,
    /// 1-based lines inside the section that Proxmox ignores (`ignore config line`).
    pub ignored: Vec<usize>,
}

/// A mapping file (`pci.cfg` or `usb.cfg`), kept byte for byte.
///
/// Read as Proxmox's `SectionConfig` reads it: lines starting with optional blanks and `#` are
/// skipped everywhere; a header is a line `^(\S+)\s*$`; properties match
/// `^\s+(\S+)(\s+(.*\S))?\s*$`; an empty line (or `0`, Perl's other false string) ends a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingFile {
    lines: Vec<String>,
}

struct Span {
    section: MappingSection,
    /// 0-based index of the header line.
    start: usize,
    /// 0-based index one past the section's last line (the terminating empty line is not part
    /// of it).
    end: usize,
}

fn is_comment(line: &str) -> bool {
    line.trim_start_matches(is_space).starts_with('#')
}

fn falsy(line: &str) -> bool {
    line.is_empty() || line == "0"
}

fn property(line: &str) -> Option<(String, Option<String>)> {
    let body = line.trim_start_matches(is_space);
    if body.len() == line.len() || trim(body).is_empty() {
        return None;
    }
    let body = trim(body);
    match body.find(is_space) {
        None => Some((body.to_string(), None)),
        Some(i) => Some((
            body[..i].to_string(),
            Some(body[i..].trim_start_matches(is_space).to_string()),
        )),
    }
}

impl MappingFile {
    /// Reads a mapping file. Never fails.
    pub fn parse(text: &str) -> MappingFile {
        MappingFile {
            lines: text.split('\n').map(str::to_string).collect(),
        }
    }

    /// The text.
    pub fn render(&self) -> String {
        self.lines.join("\n")
    }

    fn spans(&self) -> Vec<Span> {
        let mut out = Vec::new();
        let mut i = 0;
        let n = self.lines.len();
        while i < n {
            let line = &self.lines[i];
            if is_comment(line) || falsy(line) {
                i += 1;
                continue;
            }
            let t = line.trim_end_matches(is_space);
            if t.is_empty() || t.contains(is_space) {
                // Not a header: "ignore config line".
                i += 1;
                continue;
            }
            let mut section = MappingSection {
                id: t.to_string(),
                line: i + 1,
                maps: Vec::new(),
                description: None,
                properties: Vec::new(),
                error: configid(t).err(),
                ignored: Vec::new(),
            };
            let start = i;
            i += 1;
            while i < n && !falsy(&self.lines[i]) {
                let l = &self.lines[i];
                if !is_comment(l) {
                    match property(l) {
                        Some((k, v)) => {
                            if k == "map"
                                && let Some(v) = &v
                            {
                                section.maps.push((i + 1, v.clone()));
                            }
                            if k == "description" {
                                section.description = v.clone();
                            }
                            section.properties.push((i + 1, k, v));
                        }
                        None => section.ignored.push(i + 1),
                    }
                }
                i += 1;
            }
            out.push(Span {
                section,
                start,
                end: i,
            });
        }
        out
    }

    /// The sections in file order.
    pub fn sections(&self) -> Vec<MappingSection> {
        self.spans().into_iter().map(|s| s.section).collect()
    }

    /// Writes the section `id` with these `map` items and description.
    ///
    /// An existing section keeps its header and its other properties; its `map` and
    /// `description` lines are replaced, written in Proxmox's order (`map` lines first, then the
    /// optional properties sorted by key). A new section is appended at the end as Proxmox writes
    /// one: `id\n\tmap …\n\tdescription …\n` and an empty line. Refuses (returns `false`) an id
    /// that is not a `pve-configid`, no `map` items, and line breaks or empty values. Returns
    /// whether the text changed.
    pub fn set_section(&mut self, id: &str, maps: &[String], description: Option<&str>) -> bool {
        let bad = |s: &str| s.is_empty() || s.contains(['\n', '\r']) || trim(s) != s;
        if configid(id).is_err() || maps.is_empty() || maps.iter().any(|m| bad(m)) {
            return false;
        }
        if description.is_some_and(bad) {
            return false;
        }
        let mut body: Vec<String> = maps.iter().map(|m| format!("\tmap {m}")).collect();
        let spans = self.spans();
        let Some(span) = spans.iter().find(|s| s.section.id == id) else {
            let mut block = vec![id.to_string()];
            block.extend(body);
            if let Some(d) = description {
                block.push(format!("\tdescription {d}"));
            }
            let mut text = self.render();
            let sep = if text.is_empty() || text.ends_with("\n\n") {
                ""
            } else if text.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            text.push_str(sep);
            for l in block {
                text.push_str(&l);
                text.push('\n');
            }
            text.push('\n');
            self.lines = text.split('\n').map(str::to_string).collect();
            return true;
        };
        // Other properties and comments keep their lines; sort the optional ones with the new
        // description.
        let mut optional: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut comments: Vec<String> = Vec::new();
        for i in span.start + 1..span.end {
            let l = &self.lines[i];
            if is_comment(l) {
                comments.push(l.clone());
                continue;
            }
            match property(l) {
                Some((k, _)) if k == "map" || k == "description" => {}
                Some((k, _)) => optional.entry(k).or_default().push(l.clone()),
                None => comments.push(l.clone()),
            }
        }
        if let Some(d) = description {
            optional
                .entry("description".to_string())
                .or_default()
                .push(format!("\tdescription {d}"));
        }
        body.extend(optional.into_values().flatten());
        body.extend(comments);
        let old = &self.lines[span.start + 1..span.end];
        if old == body.as_slice() {
            return false;
        }
        self.lines.splice(span.start + 1..span.end, body);
        true
    }
}

fn vid_did(v: &str) -> bool {
    v.len() == 9
        && v.as_bytes()[4] == b':'
        && v[..4].bytes().all(|b| b.is_ascii_hexdigit())
        && v[5..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn pci_paths(v: &str) -> bool {
    !v.is_empty()
        && v.split(';')
            .all(|p| p.parse::<PciHostId>().is_ok_and(|id| id.domain.is_some()))
}

fn usb_path(v: &str) -> bool {
    crate::usb::UsbHost::parse(v).is_some_and(|h| matches!(h, crate::usb::UsbHost::Port(_)))
}

const PCI_MAP_FORMAT: &[Prop] = &[
    Prop::req("node", Ty::STR),
    Prop::req("path", Ty::pattern(pci_paths)),
    Prop::req("id", Ty::pattern(vid_did)),
    Prop::opt("subsystem-id", Ty::pattern(vid_did)),
    Prop::opt(
        "iommugroup",
        Ty::Int {
            min: None,
            max: None,
        },
    ),
    Prop::opt(
        "description",
        Ty::Str {
            max_len: Some(4096),
            format: None,
            pattern: None,
            enumeration: None,
        },
    ),
];

const USB_MAP_FORMAT: &[Prop] = &[
    Prop::req("node", Ty::STR),
    Prop::req("id", Ty::pattern(vid_did)),
    Prop::opt("path", Ty::pattern(usb_path)),
    Prop::opt(
        "description",
        Ty::Str {
            max_len: Some(4096),
            format: None,
            pattern: None,
            enumeration: None,
        },
    ),
];

/// One `map` item of `pci.cfg`: which device(s) the mapping means on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciMapItem {
    /// The node name.
    pub node: String,
    /// The device path(s), `;`-separated in the file; the domain is required.
    pub path: Vec<PciHostId>,
    /// `vendor:device` expected there (`8086:3e92`).
    pub id: String,
    /// `subvendor:subdevice`, if recorded.
    pub subsystem_id: Option<String>,
    /// The IOMMU group, if recorded.
    pub iommugroup: Option<u32>,
    /// A description.
    pub description: Option<String>,
}

impl PciMapItem {
    /// Parses a `map` value with Proxmox's schema (in any key order).
    pub fn parse(value: &str) -> Result<PciMapItem, Error> {
        let mut m = parse_schema(PCI_MAP_FORMAT, value)?;
        let path = m
            .remove("path")
            .unwrap_or_default()
            .split(';')
            .map(str::parse)
            .collect::<Result<Vec<PciHostId>, Error>>()?;
        let iommugroup = match m.remove("iommugroup") {
            Some(g) => Some(g.parse().map_err(|_| Error::Value {
                message: format!("format error\niommugroup: value '{g}' is out of range"),
            })?),
            None => None,
        };
        Ok(PciMapItem {
            node: m.remove("node").unwrap_or_default(),
            path,
            id: m.remove("id").unwrap_or_default(),
            subsystem_id: m.remove("subsystem-id"),
            iommugroup,
            description: m.remove("description"),
        })
    }

    /// The item as Proxmox prints it: required keys sorted, then optional keys sorted:
    /// `id=8086:3e92,node=pve,path=0000:00:02.0,iommugroup=0,subsystem-id=103c:83e2`.
    pub fn render_canonical(&self) -> String {
        let paths: Vec<String> = self.path.iter().map(ToString::to_string).collect();
        let mut out = format!("id={},node={},path={}", self.id, self.node, paths.join(";"));
        if let Some(d) = &self.description {
            out.push_str(&format!(",description={d}"));
        }
        if let Some(g) = self.iommugroup {
            out.push_str(&format!(",iommugroup={g}"));
        }
        if let Some(s) = &self.subsystem_id {
            out.push_str(&format!(",subsystem-id={s}"));
        }
        out
    }
}

/// One `map` item of `usb.cfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbMapItem {
    /// The node name.
    pub node: String,
    /// `vendor:product` (`062a:4101`).
    pub id: String,
    /// A bus-port path (`1-2.3`), preferred over `id` when present.
    pub path: Option<String>,
    /// A description.
    pub description: Option<String>,
}

impl UsbMapItem {
    /// Parses a `map` value with Proxmox's schema (in any key order).
    pub fn parse(value: &str) -> Result<UsbMapItem, Error> {
        let mut m = parse_schema(USB_MAP_FORMAT, value)?;
        Ok(UsbMapItem {
            node: m.remove("node").unwrap_or_default(),
            id: m.remove("id").unwrap_or_default(),
            path: m.remove("path"),
            description: m.remove("description"),
        })
    }

    /// The item as Proxmox prints it: `id=062a:4101,node=pve[,description=…][,path=…]`.
    pub fn render_canonical(&self) -> String {
        let mut out = format!("id={},node={}", self.id, self.node);
        if let Some(d) = &self.description {
            out.push_str(&format!(",description={d}"));
        }
        if let Some(p) = &self.path {
            out.push_str(&format!(",path={p}"));
        }
        out
    }
}
