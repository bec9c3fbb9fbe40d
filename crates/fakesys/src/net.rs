//! Network interfaces: PCI NICs, Linux bridges and virtual interfaces.

/// What backs a network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NetKind {
    /// A NIC of a PCI function (address).
    Pci(String),
    /// A Linux bridge and its ports.
    Bridge(Vec<String>),
    /// A virtual interface under `devices/virtual/net` with this ARP hardware type.
    Virtual(u16),
}

/// A network interface (`sys/class/net/<name>`). The loopback `lo` is always written.
///
/// ```
/// use vfiokit_fakesys::NetIf;
/// let nic = NetIf::pci("eno1", "0000:00:1f.6", "c8:d9:d2:0e:31:6b");
/// let bridge = NetIf::bridge("vmbr0", &["eno1"]);
/// assert_eq!(bridge.name(), "vmbr0");
/// # let _ = nic;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetIf {
    pub(crate) name: String,
    pub(crate) kind: NetKind,
    pub(crate) mac: String,
    pub(crate) up: bool,
    pub(crate) mtu: u32,
}

impl NetIf {
    /// An Ethernet interface of the PCI function `addr`, up.
    pub fn pci(name: &str, addr: &str, mac: &str) -> NetIf {
        NetIf {
            name: name.to_string(),
            kind: NetKind::Pci(addr.to_string()),
            mac: mac.to_string(),
            up: true,
            mtu: 1500,
        }
    }

    /// A Linux bridge over `ports`, up; it takes the MAC of its first port.
    pub fn bridge(name: &str, ports: &[&str]) -> NetIf {
        NetIf {
            name: name.to_string(),
            kind: NetKind::Bridge(ports.iter().map(|p| p.to_string()).collect()),
            mac: String::new(),
            up: true,
            mtu: 1500,
        }
    }

    /// A virtual interface without a hardware address and ARP type 65534 (`none`), as WireGuard
    /// and netbird's `wt0` are; up.
    pub fn virtual_if(name: &str) -> NetIf {
        NetIf {
            name: name.to_string(),
            kind: NetKind::Virtual(65534),
            mac: String::new(),
            up: true,
            mtu: 1280,
        }
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Marks the interface down (`operstate` `down`, no carrier).
    pub fn down(mut self) -> NetIf {
        self.up = false;
        self
    }

    /// The MTU.
    pub fn mtu(mut self, mtu: u32) -> NetIf {
        self.mtu = mtu;
        self
    }
}
