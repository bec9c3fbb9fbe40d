//! Host facts the caller gathered: they turn a general explanation into one about this host.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::line::normalize_address;

/// What the caller knows about the host the log came from. Every field is optional knowledge:
/// `None` (or a device missing from [`HostContext::devices`]) means "unknown", and the explanation
/// then makes no claim about it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostContext {
    /// `uname -r` (`6.8.12-11-pve`).
    pub kernel_release: Option<String>,
    /// Whether an IOMMU is active (`/sys/class/iommu/` has entries).
    pub iommu_enabled: Option<bool>,
    /// Whether interrupt remapping is on (VT-d `DMAR-IR`/AMD-Vi `IR` enabled).
    pub interrupt_remapping: Option<bool>,
    /// Facts per PCI function, keyed by its full address (`0000:00:02.0`; `00:02.0` is also
    /// found by [`HostContext::device`]).
    pub devices: BTreeMap<String, DeviceFacts>,
}

/// Facts about one PCI function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFacts {
    /// A name for messages (`Intel CoffeeLake-S GT2 [UHD Graphics 630]`), if known.
    pub name: Option<String>,
    /// The display the firmware booted on (`boot_vga` is 1).
    pub boot_vga: bool,
    /// Whether the function has a ROM BAR (expansion ROM base address register); `None`: unknown.
    pub rom_bar: Option<bool>,
    /// The reset methods the kernel lists in `reset_method` (`flr`, `pm`, `bus`, …); `Some(vec![])`
    /// means the function has no reset method, `None` that it is unknown.
    pub reset_methods: Option<Vec<String>>,
    /// The function's own host roles (`boot-vga`, `default-route-nic`, … as `vfiokit inspect` names them).
    pub roles: Vec<String>,
    /// Its IOMMU group number.
    pub iommu_group: Option<u32>,
    /// The other functions of its IOMMU group.
    pub group_members: Vec<GroupMember>,
    /// The VM configs that name it.
    pub vms: Vec<VmUse>,
}

/// Another function of a device's IOMMU group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    /// Its full address (`0000:00:1f.6`).
    pub address: String,
    /// Its host roles (`default-route-nic`, `platform-device`, …).
    pub roles: Vec<String>,
}

/// A VM config entry that passes a device through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmUse {
    /// The VM id.
    pub vmid: u32,
    /// The config key (`hostpci0`).
    pub key: String,
    /// Its `romfile=` value, if any.
    pub romfile: Option<String>,
    /// Whether that file exists under `/usr/share/kvm`; `None`: unknown.
    pub romfile_present: Option<bool>,
    /// Its `rombar=` value, if set (`rombar=0` is `Some(false)`).
    pub rombar: Option<bool>,
}

impl HostContext {
    /// The facts about `addr` (any spelling the log uses: `01:00.0`, `0000:01:00.0`).
    pub fn device(&self, addr: &str) -> Option<&DeviceFacts> {
        let want = normalize_address(addr)?;
        self.devices.get(&want).or_else(|| {
            self.devices
                .iter()
                .find(|(k, _)| normalize_address(k).as_deref() == Some(want.as_str()))
                .map(|(_, v)| v)
        })
    }

    /// The `major.minor` of [`HostContext::kernel_release`].
    pub(crate) fn kernel_version(&self) -> Option<(u32, u32)> {
        let r = self.kernel_release.as_deref()?;
        let mut parts = r.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    }
}
