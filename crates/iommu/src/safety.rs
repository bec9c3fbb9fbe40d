//! The safety rule: a device may leave the host only if nothing the host needs leaves with it.

use vfiokit_pci::PciAddress;

use crate::roles::same_slot;
use crate::{Error, Host, HostRole, Role};

/// A host-critical function that would leave the host, and why it matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Harm {
    /// The requested device that drags it along (itself when the request is critical).
    pub requested: PciAddress,
    /// The function the host would lose.
    pub address: PciAddress,
    /// Its critical roles.
    pub roles: Vec<Role>,
}

/// What assigning a set of devices means for the host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assessment {
    /// Every function that must be bound to vfio-pci: the requested devices and the non-bridge
    /// members of their groups, sorted.
    pub members: Vec<PciAddress>,
    /// Bridges in those groups: they stay on pcieport and are not given to a VM.
    pub bridges: Vec<PciAddress>,
    /// Critical functions that would leave the host and were not accepted: the plan must be refused.
    pub harms: Vec<Harm>,
}

/// Checks assigning `requested` to VMs. `accepted` lists functions whose loss the user accepted
/// explicitly (`--force-collateral`); nothing else silences a harm.
///
/// A requested bridge is [`Error::RequestedBridge`], whatever is accepted: vfio-pci refuses every
/// function whose header type is not normal (`vfio_pci_probe`: `-EINVAL`), a VM cannot use a
/// bridge, and binding its id would only take the port from pcieport. The error names the
/// functions behind it, which are what can be requested instead.
pub fn assess(
    host: &Host,
    requested: &[PciAddress],
    accepted: &[PciAddress],
) -> Result<Assessment, Error> {
    let mut out = Assessment::default();
    for &addr in requested {
        let device = host
            .device(addr)
            .ok_or(Error::UnknownDevice { address: addr })?;
        if device.is_bridge() {
            return Err(Error::RequestedBridge {
                address: addr,
                name: format!(
                    "{} {}",
                    device.vendor_name().unwrap_or("unknown vendor"),
                    device.device_name().unwrap_or("unknown device")
                ),
                behind: host.behind(addr),
            });
        }
        let collateral = host.collateral(device)?;
        let mut check = |address: PciAddress| {
            // The other functions of the requested device's own slot behind a bridge are the
            // card's own: whatever their class, they are not the chipset's.
            let own_card = address != addr && address.bus != 0 && same_slot(address, addr);
            let roles: Vec<Role> = host
                .roles_of(address)
                .iter()
                .filter(|r| r.role.is_critical())
                .filter(|r| !(own_card && r.role == HostRole::PlatformDevice))
                .cloned()
                .collect();
            if !roles.is_empty()
                && !accepted.contains(&address)
                && !out.harms.iter().any(|h| h.address == address)
            {
                out.harms.push(Harm {
                    requested: addr,
                    address,
                    roles,
                });
            }
        };
        check(addr);
        out.members.push(addr);
        for c in collateral {
            if c.bridge {
                out.bridges.push(c.address);
            } else {
                check(c.address);
                out.members.push(c.address);
            }
        }
    }
    for list in [&mut out.members, &mut out.bridges] {
        list.sort();
        list.dedup();
    }
    Ok(out)
}
