//! PCI configuration space: the header and the capability lists.
//!
//! Linux exposes a function's configuration space as the binary `config` file: 256 bytes for
//! conventional PCI, 4096 for PCI Express, only the first 64 for a user without `CAP_SYS_ADMIN`.
//! The standard capability list starts at the pointer at 0x34 (when status bit 4 says there is one);
//! the extended list starts at 0x100. Both are walked with loop and bounds checks: a corrupt list
//! is reported, never followed forever.

/// PCI Express device/port type, bits 7:4 of the PCI Express Capabilities register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcieType {
    /// PCI Express endpoint (0).
    Endpoint,
    /// Legacy PCI Express endpoint (1).
    LegacyEndpoint,
    /// Root port of a root complex (4).
    RootPort,
    /// Upstream port of a switch (5).
    UpstreamPort,
    /// Downstream port of a switch (6).
    DownstreamPort,
    /// PCI Express to PCI/PCI-X bridge (7).
    PcieToPciBridge,
    /// PCI/PCI-X to PCI Express bridge (8).
    PciToPcieBridge,
    /// Root complex integrated endpoint (9): on the root bus, e.g. an Intel iGPU.
    RcIntegratedEndpoint,
    /// Root complex event collector (10).
    RcEventCollector,
    /// A reserved value.
    Other(u8),
}

impl PcieType {
    fn from_bits(bits: u8) -> PcieType {
        match bits {
            0 => PcieType::Endpoint,
            1 => PcieType::LegacyEndpoint,
            4 => PcieType::RootPort,
            5 => PcieType::UpstreamPort,
            6 => PcieType::DownstreamPort,
            7 => PcieType::PcieToPciBridge,
            8 => PcieType::PciToPcieBridge,
            9 => PcieType::RcIntegratedEndpoint,
            10 => PcieType::RcEventCollector,
            other => PcieType::Other(other),
        }
    }

    /// Whether this is an endpoint (something a VM can be given), as opposed to a port or bridge.
    pub fn is_endpoint(self) -> bool {
        matches!(
            self,
            PcieType::Endpoint | PcieType::LegacyEndpoint | PcieType::RcIntegratedEndpoint
        )
    }

    /// The name in `inspect --json`'s `pcie_type`: `"endpoint"`, `"legacy-endpoint"`,
    /// `"root-port"`, `"upstream-port"`, `"downstream-port"`, `"pcie-to-pci-bridge"`,
    /// `"pci-to-pcie-bridge"`, `"rc-integrated-endpoint"`, `"rc-event-collector"`; `None` for a
    /// reserved value (shown as conventional PCI would be, `null`).
    pub fn json_name(self) -> Option<&'static str> {
        Some(match self {
            PcieType::Endpoint => "endpoint",
            PcieType::LegacyEndpoint => "legacy-endpoint",
            PcieType::RootPort => "root-port",
            PcieType::UpstreamPort => "upstream-port",
            PcieType::DownstreamPort => "downstream-port",
            PcieType::PcieToPciBridge => "pcie-to-pci-bridge",
            PcieType::PciToPcieBridge => "pci-to-pcie-bridge",
            PcieType::RcIntegratedEndpoint => "rc-integrated-endpoint",
            PcieType::RcEventCollector => "rc-event-collector",
            PcieType::Other(_) => return None,
        })
    }

    /// How the kernel's boot log names it ("PCIe Root Complex Integrated Endpoint").
    pub fn description(self) -> &'static str {
        match self {
            PcieType::Endpoint => "PCIe Endpoint",
            PcieType::LegacyEndpoint => "PCIe Legacy Endpoint",
            PcieType::RootPort => "PCIe Root Port",
            PcieType::UpstreamPort => "PCIe Switch Upstream Port",
            PcieType::DownstreamPort => "PCIe Switch Downstream Port",
            PcieType::PcieToPciBridge => "PCIe to PCI/PCI-X bridge",
            PcieType::PciToPcieBridge => "PCI/PCI-X to PCIe bridge",
            PcieType::RcIntegratedEndpoint => "PCIe Root Complex Integrated Endpoint",
            PcieType::RcEventCollector => "PCIe Root Complex Event Collector",
            PcieType::Other(_) => "PCIe (reserved type)",
        }
    }
}

/// Access Control Services: which isolation the port can do and which it has enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acs {
    /// ACS Capability register.
    pub capability: u16,
    /// ACS Control register.
    pub control: u16,
}

impl Acs {
    /// Source Validation, P2P Request Redirect, P2P Completion Redirect, Upstream Forwarding:
    /// the bits the kernel needs for isolation (`PCI_ACS_SV | RR | CR | UF`).
    pub const ISOLATION: u16 = 0x0001 | 0x0004 | 0x0008 | 0x0010;

    /// The ACS Capability register decoded as `lspci -vv` decodes `ACSCap:` (bits 0 to 6).
    pub fn capabilities(self) -> AcsFlags {
        AcsFlags::from_bits(self.capability)
    }

    /// The ACS Control register decoded as `lspci -vv` decodes `ACSCtl:` (bits 0 to 6).
    pub fn controls(self) -> AcsFlags {
        AcsFlags::from_bits(self.control)
    }

    /// Whether the isolation bits the port supports are all enabled.
    pub fn isolates(self) -> bool {
        let wanted = self.capability & Acs::ISOLATION;
        wanted != 0 && self.control & wanted == wanted
    }
}

/// The seven ACS bits, as lspci names them (`SrcValid TransBlk ReqRedir CmpltRedir UpstreamFwd
/// EgressCtrl DirectTrans`), in the Capability or the Control register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AcsFlags {
    /// Source Validation (bit 0, `SrcValid`).
    pub sv: bool,
    /// Translation Blocking (bit 1, `TransBlk`).
    pub tb: bool,
    /// P2P Request Redirect (bit 2, `ReqRedir`).
    pub rr: bool,
    /// P2P Completion Redirect (bit 3, `CmpltRedir`).
    pub cr: bool,
    /// Upstream Forwarding (bit 4, `UpstreamFwd`).
    pub uf: bool,
    /// P2P Egress Control (bit 5, `EgressCtrl`).
    pub ec: bool,
    /// Direct Translated P2P (bit 6, `DirectTrans`).
    pub dt: bool,
}

impl AcsFlags {
    fn from_bits(bits: u16) -> AcsFlags {
        let bit = |n: u16| bits & (1 << n) != 0;
        AcsFlags {
            sv: bit(0),
            tb: bit(1),
            rr: bit(2),
            cr: bit(3),
            uf: bit(4),
            ec: bit(5),
            dt: bit(6),
        }
    }
}

/// The SR-IOV extended capability of a physical function (PCIe base spec 9.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SriovCap {
    /// TotalVFs: how many virtual functions the device can have.
    pub total_vfs: u16,
    /// NumVFs: how many are configured (enabled when [`SriovCap::enabled`]).
    pub num_vfs: u16,
    /// VF Enable, bit 0 of the SR-IOV Control register.
    pub enabled: bool,
    /// First VF Offset: the first VF's routing id minus the PF's.
    pub first_offset: u16,
    /// VF Stride: between the routing ids of consecutive VFs.
    pub stride: u16,
    /// The VFs' device id.
    pub vf_device: u16,
}

/// What the configuration space says about a function.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigSpace {
    /// How many bytes were readable (64, 256 or 4096).
    pub len: usize,
    /// Header layout, bits 6:0 of the header type: 0 endpoint, 1 PCI bridge, 2 CardBus bridge.
    pub header_type: u8,
    /// Bit 7 of the header type: the slot has more functions.
    pub multifunction: bool,
    /// PCI Express type, when there is a PCI Express capability.
    pub pcie: Option<PcieType>,
    /// Function Level Reset advertised in the PCI Express Device Capabilities (bit 28).
    pub pcie_flr: bool,
    /// Function Level Reset advertised in the Advanced Features capability.
    pub af_flr: bool,
    /// Power management capability present.
    pub pm: bool,
    /// PM's `No_Soft_Reset` bit: a D3hot→D0 transition keeps the function's state (no PM reset).
    pub pm_no_soft_reset: bool,
    /// MSI capability present.
    pub msi: bool,
    /// MSI-X capability present.
    pub msix: bool,
    /// Access Control Services, from the extended capability list.
    pub acs: Option<Acs>,
    /// SR-IOV, from the extended capability list (physical functions only).
    pub sriov: Option<SriovCap>,
    /// The extended list could not be read (config shorter than 4096 bytes, e.g. read as a user).
    pub extended_unreadable: bool,
}

impl ConfigSpace {
    /// Whether the function can be reset on its own, without touching its neighbours.
    pub fn flr(&self) -> bool {
        self.pcie_flr || self.af_flr
    }
}

/// A problem in the bytes: what and at which offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("offset {offset:#x}: {what}")]
pub struct ConfigError {
    /// Where in the configuration space.
    pub offset: usize,
    /// What is wrong there.
    pub what: &'static str,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

const CAP_PM: u8 = 0x01;
const CAP_MSI: u8 = 0x05;
const CAP_PCIE: u8 = 0x10;
const CAP_MSIX: u8 = 0x11;
const CAP_AF: u8 = 0x13;
const EXT_CAP_ACS: u16 = 0x000d;
const EXT_CAP_SRIOV: u16 = 0x0010;

/// Parses a configuration space dump. What could be read is returned with every problem found;
/// fewer than 64 bytes is an error (the header is incomplete).
pub fn parse(bytes: &[u8]) -> Result<(ConfigSpace, Vec<ConfigError>), ConfigError> {
    if bytes.len() < 64 {
        return Err(ConfigError {
            offset: bytes.len(),
            what: "config space shorter than the 64-byte header",
        });
    }
    let mut cs = ConfigSpace {
        len: bytes.len(),
        header_type: bytes[0x0e] & 0x7f,
        multifunction: bytes[0x0e] & 0x80 != 0,
        ..ConfigSpace::default()
    };
    let mut problems = Vec::new();
    // 64 bytes is what a user without CAP_SYS_ADMIN may read, 256 a conventional function,
    // 4096 a PCI Express one; any other length was cut short.
    if ![64, 256, 4096].contains(&bytes.len()) {
        problems.push(ConfigError {
            offset: bytes.len(),
            what: "config space cut short (not 64, 256 or 4096 bytes)",
        });
    }
    let status = u16_at(bytes, 0x06).unwrap_or(0);
    if status & 0x10 != 0 {
        let start = if cs.header_type == 2 { 0x14 } else { 0x34 };
        walk_standard(bytes, bytes[start], &mut cs, &mut problems);
    }
    if bytes.len() >= 0x104 {
        walk_extended(bytes, &mut cs, &mut problems);
    } else if cs.pcie.is_some() {
        cs.extended_unreadable = true;
    }
    Ok((cs, problems))
}

fn walk_standard(b: &[u8], first: u8, cs: &mut ConfigSpace, problems: &mut Vec<ConfigError>) {
    let mut ptr = usize::from(first & 0xfc);
    let mut seen = [false; 256];
    while ptr != 0 {
        if ptr < 0x40 {
            problems.push(ConfigError {
                offset: ptr,
                what: "capability pointer into the header",
            });
            return;
        }
        if seen[ptr] {
            problems.push(ConfigError {
                offset: ptr,
                what: "capability list loops",
            });
            return;
        }
        seen[ptr] = true;
        let (Some(&id), Some(&next)) = (b.get(ptr), b.get(ptr + 1)) else {
            // The list runs past what we could read: expected of a user-readable 64-byte dump.
            if b.len() > 64 {
                problems.push(ConfigError {
                    offset: ptr,
                    what: "capability past the end of config space",
                });
            }
            return;
        };
        let body = match id {
            CAP_PM => 6,
            CAP_PCIE => 8,
            CAP_AF => 4,
            _ => 2,
        };
        if ptr + body > b.len() {
            problems.push(ConfigError {
                offset: ptr,
                what: "capability cut short by the end of config space",
            });
        }
        match id {
            CAP_PM => {
                cs.pm = true;
                cs.pm_no_soft_reset = u16_at(b, ptr + 4).is_some_and(|pmcsr| pmcsr & 0x0008 != 0);
            }
            CAP_MSI => cs.msi = true,
            CAP_MSIX => cs.msix = true,
            CAP_PCIE => {
                if let Some(flags) = u16_at(b, ptr + 2) {
                    cs.pcie = Some(PcieType::from_bits(((flags >> 4) & 0xf) as u8));
                }
                cs.pcie_flr = u32_at(b, ptr + 4).is_some_and(|devcap| devcap & (1 << 28) != 0);
            }
            // The kernel's af_flr needs both Transactions Pending (bit 0) and FLR (bit 1).
            CAP_AF => cs.af_flr = b.get(ptr + 3).is_some_and(|af| af & 0x03 == 0x03),
            _ => {}
        }
        ptr = usize::from(next & 0xfc);
    }
}

fn walk_extended(b: &[u8], cs: &mut ConfigSpace, problems: &mut Vec<ConfigError>) {
    let mut ptr = 0x100;
    // At most (4096 - 256) / 4 headers fit; more means a loop.
    for _ in 0..960 {
        let Some(header) = u32_at(b, ptr) else {
            problems.push(ConfigError {
                offset: ptr,
                what: "extended capability past the end",
            });
            return;
        };
        if header == 0 || header == 0xffff_ffff {
            return;
        }
        let id = header as u16;
        let body = match id {
            EXT_CAP_ACS => 8,
            EXT_CAP_SRIOV => 0x1c,
            _ => 4,
        };
        if ptr + body > b.len() {
            problems.push(ConfigError {
                offset: ptr,
                what: "extended capability cut short by the end of config space",
            });
        }
        if id == EXT_CAP_ACS
            && let (Some(capability), Some(control)) = (u16_at(b, ptr + 4), u16_at(b, ptr + 6))
        {
            cs.acs = Some(Acs {
                capability,
                control,
            });
        }
        if id == EXT_CAP_SRIOV
            && let (
                Some(ctrl),
                Some(total_vfs),
                Some(num_vfs),
                Some(first_offset),
                Some(stride),
                Some(vf_device),
            ) = (
                u16_at(b, ptr + 0x08),
                u16_at(b, ptr + 0x0e),
                u16_at(b, ptr + 0x10),
                u16_at(b, ptr + 0x14),
                u16_at(b, ptr + 0x16),
                u16_at(b, ptr + 0x1a),
            )
        {
            cs.sriov = Some(SriovCap {
                total_vfs,
                num_vfs,
                enabled: ctrl & 1 != 0,
                first_offset,
                stride,
                vf_device,
            });
        }
        let next = (header >> 20) as usize & 0xffc;
        if next == 0 {
            return;
        }
        if next < 0x100 {
            problems.push(ConfigError {
                offset: ptr,
                what: "extended capability pointer below 0x100",
            });
            return;
        }
        ptr = next;
    }
    problems.push(ConfigError {
        offset: ptr,
        what: "extended capability list loops",
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4096-byte type-0 header with capabilities chained at the given offsets.
    fn config(caps: &[(usize, u8, &[u8])], ext: &[(usize, u16, &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[0..4].copy_from_slice(&[0x86, 0x80, 0x92, 0x3e]);
        if let Some((first, ..)) = caps.first() {
            b[0x06] = 0x10;
            b[0x34] = *first as u8;
        }
        for (i, (at, id, body)) in caps.iter().enumerate() {
            b[*at] = *id;
            b[at + 1] = caps.get(i + 1).map_or(0, |c| c.0 as u8);
            b[at + 2..at + 2 + body.len()].copy_from_slice(body);
        }
        for (i, (at, id, body)) in ext.iter().enumerate() {
            let next = ext.get(i + 1).map_or(0, |c| c.0 as u32);
            let header = u32::from(*id) | (1 << 16) | (next << 20);
            b[*at..at + 4].copy_from_slice(&header.to_le_bytes());
            b[at + 4..at + 4 + body.len()].copy_from_slice(body);
        }
        b
    }

    #[test]
    fn integrated_gpu_capabilities() {
        // PCIe v2 RCiEP (type 9) with FLR in DevCap; MSI; PM.
        let b = config(
            &[
                (0x40, 0x09, &[0x0c]),
                (0x70, CAP_PCIE, &[0x92, 0x00, 0x00, 0x80, 0x00, 0x10]),
                (0xac, CAP_MSI, &[]),
                (0xd0, CAP_PM, &[0x22, 0x00, 0x00, 0x00]),
            ],
            &[],
        );
        let (cs, problems) = parse(&b).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(cs.pcie, Some(PcieType::RcIntegratedEndpoint));
        assert!(cs.pcie_flr && cs.flr() && cs.msi && cs.pm && !cs.msix);
        assert!(!cs.pm_no_soft_reset);
        assert_eq!(cs.acs, None);
    }

    #[test]
    fn advanced_features_flr_and_root_port_acs() {
        let b = config(
            &[
                (0x40, CAP_PCIE, &[0x42, 0x00, 0, 0, 0, 0]),
                (0x80, CAP_AF, &[0x06, 0x03]),
            ],
            &[
                (0x100, 0x0001, &[]),
                (0x140, EXT_CAP_ACS, &[0x1f, 0x00, 0x1d, 0x00]),
            ],
        );
        let (cs, problems) = parse(&b).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(cs.pcie, Some(PcieType::RootPort));
        assert!(!cs.pcie_flr && cs.af_flr && cs.flr());
        let acs = cs.acs.unwrap();
        assert_eq!(acs.capability, 0x1f);
        assert!(acs.isolates());
        assert!(
            !Acs {
                capability: 0x1f,
                control: 0x01
            }
            .isolates()
        );
    }

    #[test]
    fn corrupt_lists_are_reported_not_followed() {
        let mut b = config(&[(0x40, CAP_PM, &[]), (0x50, CAP_MSI, &[])], &[]);
        b[0x51] = 0x40; // MSI points back to PM
        let (cs, problems) = parse(&b).unwrap();
        assert!(cs.pm && cs.msi);
        assert_eq!(
            problems,
            vec![ConfigError {
                offset: 0x40,
                what: "capability list loops"
            }]
        );

        let mut b = config(&[(0x40, CAP_PM, &[])], &[(0x100, 0x0001, &[])]);
        b[0x103] = 0x10; // next = 0x100: itself
        let (_, problems) = parse(&b).unwrap();
        assert_eq!(problems[0].what, "extended capability list loops");

        assert!(parse(&[0u8; 10]).is_err());
    }

    #[test]
    fn pcie_types_have_their_json_names() {
        let names: Vec<Option<&str>> = (0..=11)
            .map(|b| PcieType::from_bits(b).json_name())
            .collect();
        assert_eq!(
            names,
            [
                Some("endpoint"),
                Some("legacy-endpoint"),
                None,
                None,
                Some("root-port"),
                Some("upstream-port"),
                Some("downstream-port"),
                Some("pcie-to-pci-bridge"),
                Some("pci-to-pcie-bridge"),
                Some("rc-integrated-endpoint"),
                Some("rc-event-collector"),
                None,
            ]
        );
    }

    #[test]
    fn acs_bits_decode_as_lspci_names_them() {
        // lspci: ACSCap: SrcValid+ TransBlk+ ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans+
        let acs = Acs {
            capability: 0x005f,
            control: 0x001d,
        };
        assert_eq!(
            acs.capabilities(),
            AcsFlags {
                sv: true,
                tb: true,
                rr: true,
                cr: true,
                uf: true,
                ec: false,
                dt: true
            }
        );
        // ACSCtl: SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-
        assert_eq!(
            acs.controls(),
            AcsFlags {
                sv: true,
                tb: false,
                rr: true,
                cr: true,
                uf: true,
                ec: false,
                dt: false
            }
        );
        // Bits above 6 (the egress control vector size) are not flags.
        let high = Acs {
            capability: 0xff20,
            control: 0,
        };
        assert_eq!(
            high.capabilities(),
            AcsFlags {
                ec: true,
                ..AcsFlags::default()
            }
        );
    }

    #[test]
    fn sriov_capability_fields() {
        let mut body = [0u8; 0x3c];
        body[0x04] = 0x19; // control at cap+0x08: VF Enable
        body[0x0a..0x0c].copy_from_slice(&64u16.to_le_bytes()); // TotalVFs at cap+0x0e
        body[0x0c..0x0e].copy_from_slice(&7u16.to_le_bytes()); // NumVFs at cap+0x10
        body[0x10..0x12].copy_from_slice(&0x80u16.to_le_bytes()); // First VF Offset
        body[0x12..0x14].copy_from_slice(&2u16.to_le_bytes()); // VF Stride
        body[0x16..0x18].copy_from_slice(&0x154cu16.to_le_bytes()); // VF Device ID
        let b = config(
            &[(0x40, CAP_PCIE, &[0x02, 0x00])],
            &[(0x100, EXT_CAP_SRIOV, &body)],
        );
        let (cs, problems) = parse(&b).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            cs.sriov,
            Some(SriovCap {
                total_vfs: 64,
                num_vfs: 7,
                enabled: true,
                first_offset: 0x80,
                stride: 2,
                vf_device: 0x154c
            })
        );
    }

    #[test]
    fn a_user_readable_dump_stops_at_64_bytes() {
        let b = config(&[(0x40, CAP_PCIE, &[0x02, 0x00])], &[]);
        let (cs, problems) = parse(&b[..64]).unwrap();
        assert!(problems.is_empty());
        assert_eq!(cs.len, 64);
        assert_eq!(cs.pcie, None);
    }
}
