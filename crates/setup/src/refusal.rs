//! Why a plan is refused: typed for tools, with the message people read.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;
use vfiokit_iommu::{Assessment, Host, HostRole};
use vfiokit_pci::{ClassCode, PciAddress};

/// One host-critical function that would leave the host, and one of its roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Harm {
    /// The function (`0000:00:1f.6`).
    pub address: String,
    /// Its IOMMU group.
    pub group: Option<u32>,
    /// The role (`default-route-nic`).
    pub role: &'static str,
    /// What the host would lose.
    pub loss: &'static str,
}

/// A plan refused by a safety rule (exit 3): who would be harmed, what to do instead, and the
/// `--force-collateral` list that would accept the losses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The whole explanation for people (printed as it is).
    #[serde(rename = "refused")]
    pub message: String,
    /// Every harm, one per function and role.
    pub harms: Vec<Harm>,
    /// What to do instead.
    pub alternatives: Vec<String>,
    /// The functions `--force-collateral` would have to name.
    pub force_collateral: Vec<String>,
    /// The VM entries that use the iGPU shared (its vGPUs or VFs) and stop it being given away.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub in_use: Vec<crate::share::VmUse>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Refusal {
    /// The refusal of a requested PCI bridge ([`vfiokit_iommu::Error::RequestedBridge`]), with
    /// the devices behind it the host can give as the alternatives (the others say what the host
    /// needs them for); any other error of `assess` stays an error.
    pub(crate) fn of_bridge(
        host: &Host,
        e: vfiokit_iommu::Error,
    ) -> std::result::Result<Refusal, vfiokit_iommu::Error> {
        let vfiokit_iommu::Error::RequestedBridge { ref behind, .. } = e else {
            return Err(e);
        };
        let alternatives = behind
            .iter()
            .map(|&a| match vfiokit_iommu::assess(host, &[a], &[]) {
                Ok(asm) if !asm.harms.is_empty() => {
                    let roles: Vec<String> = asm
                        .harms
                        .iter()
                        .flat_map(|h| h.roles.iter().map(|r| r.role.name().to_string()))
                        .collect();
                    format!(
                        "{a} is behind the bridge too, but the host needs it ({})",
                        roles.join(", ")
                    )
                }
                _ => format!("request {a}, behind the bridge"),
            })
            .collect();
        Ok(Refusal {
            message: format!("refused: {e}\n"),
            harms: Vec::new(),
            alternatives,
            force_collateral: Vec::new(),
            in_use: Vec::new(),
        })
    }

    /// A refusal with only a message (no device harmed, e.g. a ROM the firmware would not load).
    pub fn plain(message: String) -> Refusal {
        Refusal {
            message,
            harms: Vec::new(),
            alternatives: Vec::new(),
            force_collateral: Vec::new(),
            in_use: Vec::new(),
        }
    }

    /// The typed harms of an assessment.
    pub(crate) fn harms_of(host: &Host, a: &Assessment) -> Vec<Harm> {
        a.harms
            .iter()
            .flat_map(|h| {
                let group = host.device(h.address).and_then(|d| d.iommu_group);
                h.roles.iter().map(move |r| Harm {
                    address: h.address.to_string(),
                    group,
                    role: r.role.name(),
                    loss: r.role.loss(),
                })
            })
            .collect()
    }

    /// The refusal of giving devices away whose assessment found harms: every host-critical
    /// function, what the host loses, and the alternatives where there are some.
    pub(crate) fn of_assessment(host: &Host, a: &Assessment) -> Refusal {
        let mut out =
            String::from("refused: this would take functions the host needs away from it\n");
        let name = |addr: PciAddress| {
            host.device(addr).map_or(String::new(), |d| {
                format!(
                    "{} {}",
                    d.vendor_name().unwrap_or("unknown vendor"),
                    d.device_name().unwrap_or("unknown device")
                )
            })
        };
        for h in &a.harms {
            if h.address == h.requested {
                let _ = writeln!(
                    out,
                    "\n{} ({}) is itself critical to the host:",
                    h.address,
                    name(h.address)
                );
            } else {
                let group = host
                    .device(h.requested)
                    .and_then(|d| d.iommu_group)
                    .map_or(String::new(), |g| format!(" {g}"));
                let _ = writeln!(
                    out,
                    "\n{} ({}) shares IOMMU group{group} with {}, so it would leave the host too:",
                    h.address,
                    name(h.address),
                    h.requested
                );
            }
            for r in &h.roles {
                let _ = writeln!(
                    out,
                    "  - {}: {}; the host would lose {}",
                    r.role,
                    r.detail,
                    r.role.loss()
                );
            }
            if let Some(d) = host.device(h.address)
                && h.roles.iter().any(|r| {
                    matches!(
                        r.role,
                        HostRole::OnlyUsbController | HostRole::UsbControllerWithInput
                    )
                })
            {
                for u in host.usb_below(d.address) {
                    let _ = writeln!(
                        out,
                        "    below it: {} {} {} at USB {}",
                        u.kind(),
                        u.id,
                        u.name(),
                        u.port
                    );
                }
            }
        }
        let alternatives = alternatives(host, a);
        let _ = writeln!(out, "\nalternatives:");
        for alt in &alternatives {
            let _ = writeln!(out, "  - {alt}");
        }
        if alternatives.is_empty() {
            let _ = writeln!(
                out,
                "  - none known: the group cannot be split on this host"
            );
        }
        let force: Vec<String> = a.harms.iter().map(|h| h.address.to_string()).collect();
        let _ = writeln!(
            out,
            "\nto accept these losses anyway, name each one: --force-collateral {}",
            force.join(" ")
        );
        Refusal {
            message: out,
            harms: Refusal::harms_of(host, a),
            alternatives,
            force_collateral: force,
            in_use: Vec::new(),
        }
    }
}

/// What the user can do instead of giving the requested devices away.
fn alternatives(host: &Host, a: &Assessment) -> Vec<String> {
    let mut out = Vec::new();
    for &req in a
        .harms
        .iter()
        .map(|h| &h.requested)
        .collect::<BTreeSet<_>>()
    {
        let Some(d) = host.device(req) else { continue };
        if d.class.base_sub() == 0x0403 {
            for u in host.usb.devices.iter().filter(|u| u.is_bluetooth()) {
                let id = u.id;
                out.push(format!(
                    "for sound in the VM, pass the Bluetooth adapter {id} by id instead of {req} \
                     (setup-vm --usb {id}, as a Proxmox `usbN: host={id}` entry) and use a Bluetooth speaker"
                ));
            }
        }
        if d.class.base_sub() == ClassCode::USB {
            let ids: Vec<String> = host
                .usb_below(d.address)
                .map(|u| u.id.to_string())
                .collect();
            out.push(format!(
                "keep the controller {req} on the host and redirect the USB devices the VM needs by id \
                 (setup-vm --usb VID:PID; here: {})",
                if ids.is_empty() {
                    "none attached".into()
                } else {
                    ids.join(", ")
                }
            ));
        }
        if d.class.base() == 0x02 {
            out.push(format!(
                "give the VM a virtual NIC (virtio) on the host's bridge over this network (Proxmox's vmbr0 by default) instead of {req}"
            ));
        }
    }
    out
}
