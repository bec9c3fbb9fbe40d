//! Proxmox cluster resource mappings (`/etc/pve/mapping/pci.cfg`, `usb.cfg`) planned from each
//! node's host, and their check against a node's hardware.
//!
//! A mapping lets `hostpci0: mapping=igpu` resolve to each node's own device, so a VM can start
//! on any node that has one. Proxmox checks at start that the node's entry still matches the
//! hardware (`assert_valid`: id, subsystem id, IOMMU group); [`check_node`] (the rule `mapping-invalid`) checks the same
//! earlier, and [`plan`] refuses an entry whose device would take host-critical functions with it.

use vfiokit_iommu::{Host, assess};
use vfiokit_pci::{PciAddress, PciDevice, PciId};
use vfiokit_plan::Plan;
use vfiokit_usbredir::UsbId;
use vfiokit_vmconf::{MappingFile, PciHostId, PciMapItem, UsbMapItem};

use crate::facts::{HostFacts, TextFile};
use crate::refusal::Refusal;
use crate::rules::{Finding, Input, NodeHost, Severity};
use crate::{Error, Result};

/// A cluster node named on the command line: `NAME=ROOT` (its recorded host, or `/`).
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// The Proxmox node name.
    pub name: String,
    /// Where its host is readable.
    pub root: std::path::PathBuf,
}

impl std::str::FromStr for NodeSpec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<NodeSpec, String> {
        let (name, root) = s
            .split_once('=')
            .ok_or_else(|| format!("expected NAME=ROOT, got {s:?}"))?;
        if !valid_node_name(name) {
            return Err(format!(
                "invalid node name {name:?}: a Proxmox node name is a host name (letters, digits and inner hyphens)"
            ));
        }
        Ok(NodeSpec {
            name: name.to_string(),
            root: root.into(),
        })
    }
}

/// Reads each node's host (the only reads of this module).
pub fn read_nodes(nodes: &[NodeSpec]) -> Result<Vec<NodeHost>> {
    nodes
        .iter()
        .map(|n| {
            let root = vfiokit_sysfs::SysRoot::new(&n.root).map_err(|e| {
                Error::Invalid(format!(
                    "node {}: cannot read {}: {e}",
                    n.name,
                    n.root.display()
                ))
            })?;
            let host =
                Host::scan(&root).map_err(|e| Error::Invalid(format!("node {}: {e}", n.name)))?;
            Ok(NodeHost {
                name: n.name.clone(),
                host,
            })
        })
        .collect()
}

/// What `mapping plan` was asked for.
#[derive(Debug)]
pub struct Request<'a> {
    /// The mapping id.
    pub name: String,
    /// `VID:DID` of the PCI device.
    pub device: PciId,
    /// A USB device to map under the same id.
    pub usb: Option<UsbId>,
    /// The nodes and their hosts.
    pub nodes: &'a [NodeHost],
    /// Explicit device choices per node: `(node, address)`.
    pub paths: Vec<(String, PciAddress)>,
}

/// Proxmox's `pve-configid`: `[a-z][a-z0-9_-]+`, case-insensitive. Also keeps ids from being paths.
pub fn valid_config_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && id.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A Proxmox node name (`pve-node`: a host name, `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?`, as
/// `PVE::JSONSchema::pve_verify_node_name` checks it). Never a path.
pub fn valid_node_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The device (and the other functions of its slot in its IOMMU group, e.g. a GPU's audio) on
/// one node, checked like `setup-host` checks it.
fn node_entry(
    node: &NodeHost,
    id: PciId,
    chosen: Option<PciAddress>,
) -> std::result::Result<PciMapItem, String> {
    let host = &node.host;
    let matches: Vec<&PciDevice> = host.pci.devices.iter().filter(|d| d.id() == id).collect();
    let d = match (chosen, matches.as_slice()) {
        (Some(a), _) => *matches
            .iter()
            .find(|d| d.address == a)
            .ok_or_else(|| format!("node {}: {a} is not a {id}", node.name))?,
        (None, []) => {
            return Err(format!("node {}: no {id} on this host", node.name));
        }
        (None, [one]) => *one,
        (None, many) => {
            let list: Vec<String> = many.iter().map(|d| d.address.to_string()).collect();
            return Err(format!(
                "node {}: {} devices {id} ({}); choose one with --path {}=ADDR",
                node.name,
                many.len(),
                list.join(", "),
                node.name
            ));
        }
    };
    let group = d.iommu_group.ok_or_else(|| {
        format!(
            "node {}: {} has no IOMMU group (IOMMU off?)",
            node.name, d.address
        )
    })?;
    let a = assess(host, &[d.address], &[]).map_err(|e| format!("node {}: {e}", node.name))?;
    if !a.harms.is_empty() {
        let lost: Vec<String> = a
            .harms
            .iter()
            .flat_map(|h| {
                h.roles
                    .iter()
                    .map(move |r| format!("{} ({}: {})", h.address, r.role, r.detail))
            })
            .collect();
        return Err(format!(
            "node {}: giving {} to a VM takes host-critical functions with it: {}",
            node.name,
            d.address,
            lost.join("; ")
        ));
    }
    let same_slot: Vec<PciHostId> = a
        .members
        .iter()
        .filter(|m| {
            (m.domain, m.bus, m.device) == (d.address.domain, d.address.bus, d.address.device)
        })
        .filter_map(|m| m.to_string().parse().ok())
        .collect();
    Ok(PciMapItem {
        node: node.name.clone(),
        path: same_slot,
        id: d.id().to_string(),
        subsystem_id: match (d.subsystem_vendor, d.subsystem_device) {
            (Some(v), Some(s)) => Some(format!("{v}:{s}")),
            _ => None,
        },
        iommugroup: Some(group),
        description: None,
    })
}

/// Plans the mapping files, or explains which node cannot serve.
pub fn plan(cluster: &HostFacts, req: &Request<'_>) -> Result<std::result::Result<Plan, Refusal>> {
    if !valid_config_id(&req.name) {
        return Err(Error::Invalid(format!(
            "invalid mapping id {:?}: Proxmox ids are [a-z][a-z0-9_-]+",
            req.name
        )));
    }
    let mut maps = Vec::new();
    let mut usb_maps = Vec::new();
    let mut refusals = Vec::new();
    let mut description = None;
    let mut usb_description = None;
    for node in req.nodes {
        let host = &node.host;
        let chosen = req.paths.iter().find(|p| p.0 == node.name).map(|p| p.1);
        match node_entry(node, req.device, chosen) {
            Ok(item) => {
                if description.is_none()
                    && let Some(d) = host.pci.devices.iter().find(|d| d.id() == req.device)
                {
                    description = d.device_name().map(str::to_string);
                }
                maps.push(item.render_canonical());
            }
            Err(why) => refusals.push(why),
        }
        if let Some(id) = req.usb {
            let devices: Vec<_> = host.usb.devices.iter().filter(|d| d.id == id).collect();
            if usb_description.is_none()
                && let Some(d) = devices.first()
            {
                usb_description = Some(d.name());
            }
            match devices.as_slice() {
                [] => refusals.push(format!("node {}: no USB device {id}", node.name)),
                [_] => usb_maps.push(
                    UsbMapItem {
                        node: node.name.clone(),
                        id: id.to_string(),
                        path: None,
                        description: None,
                    }
                    .render_canonical(),
                ),
                many => usb_maps.push(
                    UsbMapItem {
                        node: node.name.clone(),
                        id: id.to_string(),
                        // Several devices share the id there: pin the first by its port.
                        path: Some(many[0].port.clone()),
                        description: None,
                    }
                    .render_canonical(),
                ),
            }
        }
    }
    if !refusals.is_empty() {
        return Ok(Err(Refusal {
            message: format!(
                "refused: not every node can serve mapping '{}':\n  {}\n",
                req.name,
                refusals.join("\n  ")
            ),
            harms: Vec::new(),
            alternatives: Vec::new(),
            force_collateral: Vec::new(),
            in_use: Vec::new(),
        }));
    }
    let mut plan = Plan::default();
    let written = |d: String| format!("{d} (written by vfiokit mapping plan)");
    // Each file describes its own device: the PCI device's name, the USB device's.
    for (file, items, description) in [
        (&cluster.pci_mappings, &maps, description.map(written)),
        (
            &cluster.usb_mappings,
            &usb_maps,
            usb_description.map(written),
        ),
    ] {
        if items.is_empty() {
            continue;
        }
        let old = file.get()?.map(str::to_string);
        let mut doc = MappingFile::parse(old.as_deref().unwrap_or(""));
        doc.set_section(&req.name, items, description.as_deref());
        let new = doc.render();
        let reasons = items.iter().map(|m| format!("map {m}")).collect();
        plan.edit(file.path.clone(), old, new, reasons);
    }
    Ok(Ok(plan))
}

/// Proxmox's `assert_valid` for one node: each PCI map entry of that node against its host.
/// Returns (mapping id, message) for every entry that no longer matches.
pub fn check_node(mappings: &TextFile, node: &str, host: &Host) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(Some(text)) = mappings.get() else {
        return out;
    };
    for section in MappingFile::parse(text).sections() {
        for (line, value) in &section.maps {
            let Ok(item) = PciMapItem::parse(value) else {
                out.push((
                    section.id.clone(),
                    format!("line {line}: cannot parse map entry {value:?}"),
                ));
                continue;
            };
            if item.node != node {
                continue;
            }
            let Some(first) = item.path.first() else {
                continue;
            };
            let device = host.pci.devices.iter().find(|d| {
                let a = d.address;
                first.matches(a.domain, a.bus, a.device, a.function)
            });
            let problem = match device {
                None => Some(format!("no PCI device found for '{first}'")),
                Some(d) => {
                    let id = d.id().to_string();
                    let sub = match (d.subsystem_vendor, d.subsystem_device) {
                        (Some(v), Some(s)) => Some(format!("{v}:{s}")),
                        _ => None,
                    };
                    if !item.id.eq_ignore_ascii_case(&id) {
                        Some(format!(
                            "id '{}' does not match the device's '{id}'",
                            item.id
                        ))
                    } else if item
                        .subsystem_id
                        .as_deref()
                        .is_some_and(|s| Some(s.to_ascii_lowercase()) != sub)
                    {
                        Some(format!(
                            "subsystem-id '{}' does not match the device's '{}'",
                            item.subsystem_id.as_deref().unwrap_or_default(),
                            sub.unwrap_or_default()
                        ))
                    } else if item.iommugroup.is_some() && item.iommugroup != d.iommu_group {
                        Some(format!(
                            "iommugroup '{}' does not match the device's '{}'",
                            item.iommugroup.map(|g| g.to_string()).unwrap_or_default(),
                            d.iommu_group
                                .map(|g| g.to_string())
                                .unwrap_or_else(|| "none".into())
                        ))
                    } else {
                        None
                    }
                }
            };
            if let Some(p) = problem {
                out.push((
                    section.id.clone(),
                    format!(
                        "node {node}: PCI device mapping invalid (hardware probably changed): {p}"
                    ),
                ));
            }
        }
    }
    out
}

/// The rule `mapping-invalid`: this node's entries against this host (named by
/// `/etc/hostname`), and every other node given against its own host.
pub(crate) fn invalid_entries(i: &Input<'_>) -> Vec<Finding> {
    let mut checks: Vec<(&str, &Host)> =
        i.nodes.iter().map(|n| (n.name.as_str(), &n.host)).collect();
    if let Some(local) = i
        .facts
        .hostname
        .as_deref()
        .filter(|l| !i.nodes.iter().any(|n| n.name == *l))
    {
        checks.push((local, &i.facts.host));
    }
    let mut out = Vec::new();
    for (node, host) in checks {
        for (id, message) in check_node(&i.facts.pci_mappings, node, host) {
            out.push(Finding {
                check: "mapping-invalid",
                severity: Severity::Error,
                message: format!("mapping '{id}': {message}"),
                fix: format!("re-plan it: vfiokit mapping plan --name {id} …"),
                fixable: false,
                path: Some(i.facts.pci_mappings.path.clone()),
                line: None,
                edit: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_ids_are_proxmox_ids_and_never_paths() {
        for ok in ["igpu", "pve1", "gpu-a_1", "Ab"] {
            assert!(valid_config_id(ok), "{ok}");
        }
        for bad in ["", "a", "1gpu", "../x", "a/b", "a.b", "a b"] {
            assert!(!valid_config_id(bad), "{bad}");
        }
        assert!("pve1=/".parse::<NodeSpec>().is_ok());
        assert!(
            "a=/".parse::<NodeSpec>().is_ok(),
            "a one-letter host name is a node name"
        );
        assert!("pve-2=/".parse::<NodeSpec>().is_ok());
        for bad in ["-a=/", "a-=/", "a_b=/", "a.b=/", "=/"] {
            assert!(bad.parse::<NodeSpec>().is_err(), "{bad}");
        }
        assert!("../x=/".parse::<NodeSpec>().is_err());
        assert!("pve1".parse::<NodeSpec>().is_err());
    }
}
