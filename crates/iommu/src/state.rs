//! Whether the host has an IOMMU, which one, and what the command line did to it.

use serde::Serialize;
use vfiokit_sysfs::{Error as SysError, SysRoot};

/// Who made the IOMMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IommuKind {
    /// Intel VT-d: units named `dmar<N>`.
    Intel,
    /// AMD-Vi: units named `ivhd<N>`.
    Amd,
    /// Anything else (virtio-iommu, an ARM SMMU).
    Other,
}

/// The IOMMU as the running kernel sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IommuState {
    /// Any IOMMU unit in `/sys/class/iommu` (Proxmox's own test) or any IOMMU group.
    pub enabled: bool,
    /// The maker, from the unit names.
    pub kind: Option<IommuKind>,
    /// The units (`dmar0`, `dmar1`).
    pub units: Vec<String>,
    /// Interrupt remapping: without it, VFIO refuses devices unless `allow_unsafe_interrupts=1`.
    /// Intel: bit 3 (IR) of every unit's extended capability register, and not `intremap=off`.
    /// AMD: every AMD-Vi unit remaps interrupts, so `true` unless `intremap=off`.
    /// `None` when unknown (no IOMMU, or another kind).
    pub interrupt_remapping: Option<bool>,
    /// The value of `pcie_acs_override=` on the running command line: a security-weakening
    /// override that makes the kernel pretend devices are isolated.
    pub acs_override: Option<String>,
    /// The running command line (`/proc/cmdline`), trimmed.
    pub cmdline: String,
}

/// Reads `/sys/class/iommu`, each unit's capability registers and `/proc/cmdline`.
/// `has_groups` says whether `/sys/kernel/iommu_groups` has any group.
pub fn read_state(root: &SysRoot, has_groups: bool, problems: &mut Vec<SysError>) -> IommuState {
    let class = root.sys_class("iommu");
    let units = root.list_opt(&class).unwrap_or_else(|e| {
        problems.push(e);
        Vec::new()
    });
    let cmdline = match root.read_attr_opt(&root.proc_cmdline()) {
        Ok(c) => c.unwrap_or_default().trim().to_string(),
        Err(e) => {
            problems.push(e);
            String::new()
        }
    };
    let kind = units.first().map(|u| {
        if u.starts_with("dmar") {
            IommuKind::Intel
        } else if u.starts_with("ivhd") {
            IommuKind::Amd
        } else {
            IommuKind::Other
        }
    });
    let intremap_off = cmdline_value(&cmdline, "intremap").is_some_and(|v| v == "off");
    let interrupt_remapping = match kind {
        Some(IommuKind::Intel) => {
            let mut all = true;
            for unit in &units {
                let ecap = class.join(unit).join("intel-iommu/ecap");
                match root.read_hex(&ecap) {
                    Ok(v) => all &= v & (1 << 3) != 0,
                    Err(e) => {
                        problems.push(e);
                        all = false;
                    }
                }
            }
            Some(all && !intremap_off)
        }
        Some(IommuKind::Amd) => Some(!intremap_off),
        Some(IommuKind::Other) | None => None,
    };
    IommuState {
        enabled: !units.is_empty() || has_groups,
        kind,
        units,
        interrupt_remapping,
        acs_override: cmdline_value(&cmdline, "pcie_acs_override").map(str::to_string),
        cmdline,
    }
}

/// The value of the last `key=value` on a kernel command line (the kernel applies them in order,
/// so the last wins). Double quotes around a value, as the kernel accepts them, are removed.
pub fn cmdline_value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline_words(cmdline)
        .filter_map(|w| w.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v.trim_matches('"'))
        .last()
}

/// Splits a kernel command line into words; double quotes protect blanks (`"a b"`).
fn cmdline_words(cmdline: &str) -> impl Iterator<Item = &str> {
    let mut rest = cmdline.trim_start();
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut quoted = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                c.is_whitespace() && !quoted
            })
            .map_or(rest.len(), |(i, _)| i);
        let word = &rest[..end];
        rest = rest[end..].trim_start();
        Some(word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_value_wins_and_quotes_protect_blanks() {
        let line = "BOOT_IMAGE=/boot/vmlinuz ro quiet intremap=on foo=\"a b\" intremap=off pcie_acs_override=downstream,multifunction";
        assert_eq!(cmdline_value(line, "intremap"), Some("off"));
        assert_eq!(cmdline_value(line, "foo"), Some("a b"));
        assert_eq!(
            cmdline_value(line, "pcie_acs_override"),
            Some("downstream,multifunction")
        );
        assert_eq!(cmdline_value(line, "quiet"), None);
        assert_eq!(cmdline_value(line, "iommu"), None);
        assert_eq!(cmdline_value("", "x"), None);
    }
}
