//! Which boot loader holds the kernel command line.

use std::path::PathBuf;

use vfiokit_sysfs::SysRoot;

/// Rebuilds every installed kernel's initramfs, so `/etc/modules` and `/etc/modprobe.d` changes
/// reach early boot: `update-initramfs -u -k all`.
pub const UPDATE_INITRAMFS: &[&str] = &["update-initramfs", "-u", "-k", "all"];

/// Where a host's kernel command line is configured and how a change is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootLoader {
    /// `proxmox-boot-tool` manages the EFI system partitions (`/etc/kernel/proxmox-boot-uuids`
    /// exists): the command line is `/etc/kernel/cmdline`, applied by `proxmox-boot-tool refresh`.
    /// This is systemd-boot on UEFI hosts with a ZFS root.
    SystemdBoot,
    /// GRUB: the command line is in `/etc/default/grub`, applied by `update-grub`.
    Grub,
    /// Neither file exists.
    Unknown {
        /// Why, naming the files looked for.
        reason: String,
    },
}

impl BootLoader {
    /// Looks at the host's files: `/etc/kernel/proxmox-boot-uuids` first, then
    /// `/etc/default/grub`.
    ///
    /// `proxmox-boot-tool` can also manage GRUB on legacy-BIOS hosts with a ZFS root
    /// (`proxmox-boot-tool status` tells which, by looking into the mounted partitions); such a
    /// host is reported as [`BootLoader::SystemdBoot`] too, since the files cannot tell.
    pub fn detect(root: &SysRoot) -> BootLoader {
        let uuids = root.etc("kernel/proxmox-boot-uuids");
        let grub = root.etc("default/grub");
        if root.exists(&uuids).unwrap_or(false) {
            BootLoader::SystemdBoot
        } else if root.exists(&grub).unwrap_or(false) {
            BootLoader::Grub
        } else {
            BootLoader::Unknown {
                reason: format!("neither {} nor {} exists", uuids.display(), grub.display()),
            }
        }
    }

    /// The file holding the kernel command line: `/etc/kernel/cmdline` or `/etc/default/grub`.
    pub fn cmdline_path(&self, root: &SysRoot) -> Option<PathBuf> {
        match self {
            BootLoader::SystemdBoot => Some(root.etc("kernel/cmdline")),
            BootLoader::Grub => Some(root.etc("default/grub")),
            BootLoader::Unknown { .. } => None,
        }
    }

    /// The command that applies a changed command line (empty for [`BootLoader::Unknown`]).
    pub fn apply_command(&self) -> &'static [&'static str] {
        match self {
            BootLoader::SystemdBoot => &["proxmox-boot-tool", "refresh"],
            BootLoader::Grub => &["update-grub"],
            BootLoader::Unknown { .. } => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn proxmox_boot_tool_wins_over_grub() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysRoot::new(dir.path()).unwrap();
        let b = BootLoader::detect(&root);
        assert!(matches!(b, BootLoader::Unknown { .. }));
        assert_eq!(b.cmdline_path(&root), None);
        assert!(b.apply_command().is_empty());

        fs::create_dir_all(dir.path().join("etc/default")).unwrap();
        fs::write(dir.path().join("etc/default/grub"), "").unwrap();
        let b = BootLoader::detect(&root);
        assert_eq!(b, BootLoader::Grub);
        assert_eq!(b.apply_command(), ["update-grub"]);
        assert_eq!(
            b.cmdline_path(&root),
            Some(dir.path().join("etc/default/grub"))
        );

        fs::create_dir_all(dir.path().join("etc/kernel")).unwrap();
        fs::write(
            dir.path().join("etc/kernel/proxmox-boot-uuids"),
            "1234-ABCD\n",
        )
        .unwrap();
        let b = BootLoader::detect(&root);
        assert_eq!(b, BootLoader::SystemdBoot);
        assert_eq!(b.apply_command(), ["proxmox-boot-tool", "refresh"]);
        assert_eq!(
            b.cmdline_path(&root),
            Some(dir.path().join("etc/kernel/cmdline"))
        );
    }
}
