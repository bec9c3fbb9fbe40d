//! Block devices: disks behind a PCI controller, their partitions, device-mapper volumes.

/// Where a disk hangs below its controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DiskBus {
    /// SATA/SCSI port number (0 → `ata1/host0/target0:0:0/0:0:0:0/block/sda`).
    Sata(u32),
    /// NVMe (`nvme/nvme0/nvme0n1`).
    Nvme,
}

/// A whole disk with partitions, below the PCI function of its controller.
///
/// ```
/// use vfiokit_fakesys::Disk;
/// let sda = Disk::sata("sda", "0000:00:17.0", 0).size(500_118_192).partitions(&[2014, 2_097_152, 498_018_959]);
/// assert_eq!(sda.partition_name(3), "sda3");
/// let nvme = Disk::nvme("nvme0n1", "0000:01:00.0");
/// assert_eq!(nvme.partition_name(1), "nvme0n1p1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub(crate) name: String,
    pub(crate) controller: String,
    pub(crate) bus: DiskBus,
    pub(crate) size: u64,
    pub(crate) partitions: Vec<u64>,
    pub(crate) model: String,
    pub(crate) rotational: bool,
}

impl Disk {
    /// A SATA disk `name` (`sda`) on `port` of the AHCI controller at PCI address `controller`.
    pub fn sata(name: &str, controller: &str, port: u32) -> Disk {
        Disk {
            name: name.to_string(),
            controller: controller.to_string(),
            bus: DiskBus::Sata(port),
            size: 500_118_192,
            partitions: Vec::new(),
            model: "Samsung SSD 860".to_string(),
            rotational: false,
        }
    }

    /// An NVMe namespace `name` (`nvme0n1`) of the controller at PCI address `controller`.
    pub fn nvme(name: &str, controller: &str) -> Disk {
        Disk {
            bus: DiskBus::Nvme,
            model: "Samsung SSD 970 EVO Plus 1TB".to_string(),
            size: 1_953_525_168,
            ..Disk::sata(name, controller, 0)
        }
    }

    /// Size in 512-byte sectors.
    pub fn size(mut self, sectors: u64) -> Disk {
        self.size = sectors;
        self
    }

    /// Partitions, numbered from 1, by size in sectors (laid out one after another from 2048).
    pub fn partitions(mut self, sizes: &[u64]) -> Disk {
        self.partitions = sizes.to_vec();
        self
    }

    /// The model string (`device/model`).
    pub fn model(mut self, model: &str) -> Disk {
        self.model = model.to_string();
        self
    }

    /// A spinning disk (`queue/rotational` 1).
    pub fn rotational(mut self) -> Disk {
        self.rotational = true;
        self
    }

    /// The name of partition `n`: `sda3`, or `nvme0n1p3` when the disk name ends in a digit.
    pub fn partition_name(&self, n: usize) -> String {
        if self.name.ends_with(|c: char| c.is_ascii_digit()) {
            format!("{}p{n}", self.name)
        } else {
            format!("{}{n}", self.name)
        }
    }

    /// The disk's directory below the controller's, e.g. `ata1/host0/target0:0:0/0:0:0:0/block/sda`.
    pub(crate) fn sub_path(&self) -> String {
        match self.bus {
            DiskBus::Sata(p) => format!(
                "ata{}/host{p}/target{p}:0:0/{p}:0:0:0/block/{}",
                p + 1,
                self.name
            ),
            DiskBus::Nvme => {
                let ctrl = self
                    .name
                    .rsplit_once('n')
                    .map_or(self.name.as_str(), |(c, _)| c);
                format!("nvme/{ctrl}/{}", self.name)
            }
        }
    }
}

/// A device-mapper volume (`dm-N`, numbered in the order added), such as an LVM logical volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmVolume {
    pub(crate) name: String,
    pub(crate) uuid: String,
    pub(crate) slaves: Vec<String>,
    pub(crate) size: u64,
}

impl DmVolume {
    /// A volume named `name` (`pve-root`, as in `/dev/mapper/pve-root`) on the block devices
    /// `slaves` (partition or disk names such as `sda3`).
    pub fn new(name: &str, uuid: &str, slaves: &[&str]) -> DmVolume {
        DmVolume {
            name: name.to_string(),
            uuid: uuid.to_string(),
            slaves: slaves.iter().map(|s| s.to_string()).collect(),
            size: 16_777_216,
        }
    }

    /// Size in 512-byte sectors.
    pub fn size(mut self, sectors: u64) -> DmVolume {
        self.size = sectors;
        self
    }
}
