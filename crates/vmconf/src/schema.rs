//! The keys qemu-server knows and the parse-time type of each.

/// How Proxmox checks a value when it reads the config (`check_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    /// `1|0|on|off|yes|no|true|false`, any case.
    Bool,
    /// `^\d+$`.
    Int,
    /// `^\d+(\.\d+)?$`.
    Num,
    /// A string whose format this crate does not model: accepted.
    Str,
    HostPci,
    Usb,
    Machine,
    Vga,
}

const BOOL_KEYS: &[&str] = &[
    "onboot",
    "autostart",
    "reboot",
    "numa",
    "keephugepages",
    "acpi",
    "kvm",
    "tdf",
    "localtime",
    "freeze",
    "template",
    "tablet",
    "protection",
    "allow-ksm",
    "ciupgrade",
];

const INT_KEYS: &[&str] = &[
    "cpuunits",
    "balloon",
    "shares",
    "smp",
    "sockets",
    "cores",
    "vcpus",
    "migrate_speed",
    "snaptime",
];

const NUM_KEYS: &[&str] = &["cpulimit", "migrate_downtime"];

/// Plain string keys (PVE 8.x and 9.x). `startup` is missing from the reference list but is a
/// qemu-server key (`pve-startup-order`) that real configs use.
const STR_KEYS: &[&str] = &[
    "hotplug",
    "lock",
    "memory",
    "amd-sev",
    "intel-tdx",
    "keyboard",
    "name",
    "scsihw",
    "description",
    "ostype",
    "boot",
    "bootdisk",
    "hugepages",
    "agent",
    "watchdog",
    "startdate",
    "args",
    "cdrom",
    "cpu",
    "parent",
    "vmstate",
    "vmstatestorage",
    "runningcpu",
    "running-nets-host-mtu",
    "arch",
    "smbios1",
    "bios",
    "vmgenid",
    "hookscript",
    "ivshmem",
    "audio0",
    "spice_enhancements",
    "tags",
    "rng0",
    "meta",
    "affinity",
    "efidisk0",
    "tpmstate0",
    "startup",
    "snapstate",
    "citype",
    "ciuser",
    "cipassword",
    "cicustom",
    "searchdomain",
    "nameserver",
    "sshkeys",
];

/// Indexed families and their highest index.
pub(crate) const FAMILIES: &[(&str, u32)] = &[
    ("ide", 3),
    ("sata", 5),
    ("scsi", 30),
    ("virtio", 15),
    ("unused", 255),
    ("net", 31),
    ("numa", 7),
    ("serial", 3),
    ("parallel", 2),
    ("hostpci", 15),
    ("usb", 13),
    ("virtiofs", 9),
    ("ipconfig", 31),
];

/// `key` as `(family, N)` when it is `familyN` written canonically (`hostpci3`, not
/// `hostpci03`), whatever the range.
pub(crate) fn split_indexed(key: &str) -> Option<(&str, u32)> {
    let digits_at = key.find(|c: char| c.is_ascii_digit())?;
    let (family, digits) = key.split_at(digits_at);
    if family.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    Some((family, digits.parse().ok()?))
}

/// The parse-time type of `key`, `None` for a key qemu-server does not know.
pub(crate) fn key_type(key: &str) -> Option<KeyType> {
    if BOOL_KEYS.contains(&key) {
        return Some(KeyType::Bool);
    }
    if INT_KEYS.contains(&key) {
        return Some(KeyType::Int);
    }
    if NUM_KEYS.contains(&key) {
        return Some(KeyType::Num);
    }
    match key {
        "machine" | "runningmachine" => return Some(KeyType::Machine),
        "vga" => return Some(KeyType::Vga),
        _ => {}
    }
    if STR_KEYS.contains(&key) {
        return Some(KeyType::Str);
    }
    let (family, n) = split_indexed(key)?;
    let (_, max) = FAMILIES.iter().find(|(f, _)| *f == family)?;
    if n > *max {
        return None;
    }
    Some(match family {
        "hostpci" => KeyType::HostPci,
        "usb" => KeyType::Usb,
        _ => KeyType::Str,
    })
}

/// Whether qemu-server (PVE 8.x or 9.x) knows `key`.
pub fn is_known_key(key: &str) -> bool {
    key_type(key).is_some()
}
