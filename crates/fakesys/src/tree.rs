//! An in-memory picture of the files and links to write under a root.
//!
//! There are no empty directories: every directory holds a file or a link, so a tree survives
//! being committed to git (which drops empty directories).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

/// One entry of a [`Tree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// A regular file and its bytes.
    File(Vec<u8>),
    /// A symbolic link and its (relative) target.
    Link(PathBuf),
}

/// Paths relative to the root, mapped to what goes there. Later writes replace earlier ones.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    nodes: BTreeMap<PathBuf, Node>,
}

impl Tree {
    /// A text attribute: `value` plus the newline the kernel ends every attribute with.
    pub(crate) fn attr(&mut self, path: impl AsRef<Path>, value: impl std::fmt::Display) {
        self.file(path, format!("{value}\n"));
    }

    /// A file with exactly these bytes.
    pub(crate) fn file(&mut self, path: impl AsRef<Path>, bytes: impl Into<Vec<u8>>) {
        self.nodes
            .insert(path.as_ref().to_path_buf(), Node::File(bytes.into()));
    }

    /// A link at `link` pointing at `target` (both relative to the root), written as the kernel
    /// writes sysfs links: relative, climbing only to the nearest common directory.
    pub(crate) fn link(&mut self, link: impl AsRef<Path>, target: impl AsRef<Path>) {
        let link = link.as_ref();
        let rel = relative_target(link, target.as_ref());
        self.nodes.insert(link.to_path_buf(), Node::Link(rel));
    }

    /// What is at `path`, if anything was put there.
    #[cfg(test)]
    pub(crate) fn get(&self, path: impl AsRef<Path>) -> Option<&Node> {
        self.nodes.get(path.as_ref())
    }

    /// Every entry, sorted by path.
    #[cfg(test)]
    pub(crate) fn nodes(&self) -> &BTreeMap<PathBuf, Node> {
        &self.nodes
    }

    /// Writes everything under `dir`, creating parent directories. Files and links already
    /// there are replaced.
    pub(crate) fn write(&self, dir: &Path) -> io::Result<()> {
        // Directories made or found so far, and whether this call made them: nothing can be in a
        // directory it made but what it wrote, so nothing there needs replacing. Knowing them
        // saves two system calls per entry (a mkdir and a stat), a third of a large tree's.
        let mut dirs: HashMap<PathBuf, bool> = HashMap::new();
        for (rel, node) in &self.nodes {
            let path = dir.join(rel);
            let fresh = match path.parent() {
                Some(parent) => ensure_dir(parent, &mut dirs)?,
                None => false,
            };
            if !fresh {
                remove_link(&path)?;
            }
            match node {
                Node::File(bytes) => fs::write(&path, bytes).map_err(with_path(&path))?,
                Node::Link(target) => symlink(target, &path).map_err(with_path(&path))?,
            }
        }
        Ok(())
    }
}

/// Makes `dir` and its parents like `mkdir -p`, remembering each in `dirs`; true when this call
/// made `dir` (so it was empty).
fn ensure_dir(dir: &Path, dirs: &mut HashMap<PathBuf, bool>) -> io::Result<bool> {
    if let Some(&fresh) = dirs.get(dir) {
        return Ok(fresh);
    }
    let fresh = match fs::create_dir(dir) {
        Ok(()) => true,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            match dir.parent() {
                Some(parent) if parent != dir => ensure_dir(parent, dirs)?,
                _ => return Err(with_path(dir)(err)),
            };
            fs::create_dir(dir).map_err(with_path(dir))?;
            true
        }
        Err(_) if dir.is_dir() => false,
        Err(err) => return Err(with_path(dir)(err)),
    };
    dirs.insert(dir.to_path_buf(), fresh);
    Ok(fresh)
}

/// The target to store in a link at `link` so that it reaches `target`; both relative to the
/// same root. `sys/devices/pci0000:00/0000:00:02.0/driver` → `sys/bus/pci/drivers/i915` gives
/// `../../../bus/pci/drivers/i915`.
pub(crate) fn relative_target(link: &Path, target: &Path) -> PathBuf {
    let from: Vec<Component> = link
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    let to: Vec<Component> = target.components().collect();
    // Like the kernel's kernfs_get_target_path: climb to a directory that is a strict ancestor
    // of the target, so a link to an ancestor still names it (`../../../0000:00:1f.6`).
    let common = from
        .iter()
        .zip(&to)
        .take_while(|(a, b)| a == b)
        .count()
        .min(to.len().saturating_sub(1));
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for comp in &to[common..] {
        out.push(comp.as_os_str());
    }
    out
}

/// Where the link at `link` with the relative `target` points, both relative to the root.
#[cfg(test)]
pub(crate) fn resolve_lexically(link: &Path, target: &Path) -> Option<PathBuf> {
    let mut out = link.parent()?.to_path_buf();
    for comp in target.components() {
        match comp {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(c) => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

/// Wraps an I/O error so that its message names the path.
pub(crate) fn with_path(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |err| io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

fn remove_link(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::remove_file(path).map_err(with_path(path)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_climb_to_the_common_directory_only() {
        for (link, target, want) in [
            (
                "sys/devices/pci0000:00/0000:00:02.0/driver",
                "sys/bus/pci/drivers/i915",
                "../../../bus/pci/drivers/i915",
            ),
            (
                "sys/bus/pci/drivers/i915/0000:00:02.0",
                "sys/devices/pci0000:00/0000:00:02.0",
                "../../../../devices/pci0000:00/0000:00:02.0",
            ),
            (
                "sys/devices/pci0000:00/0000:00:1c.0/0000:01:00.0/iommu_group",
                "sys/kernel/iommu_groups/3",
                "../../../../kernel/iommu_groups/3",
            ),
            (
                "sys/class/net/eno1",
                "sys/devices/pci0000:00/0000:00:1f.6/net/eno1",
                "../../devices/pci0000:00/0000:00:1f.6/net/eno1",
            ),
            (
                "sys/devices/virtual/net/vmbr0/brif/eno1",
                "sys/devices/pci0000:00/0000:00:1f.6/net/eno1/brport",
                "../../../../pci0000:00/0000:00:1f.6/net/eno1/brport",
            ),
            (
                "sys/devices/pci0000:00/0000:00:1f.6/net/eno1/device",
                "sys/devices/pci0000:00/0000:00:1f.6",
                "../../../0000:00:1f.6",
            ),
            (
                "sys/block/sda",
                "sys/devices/x/block/sda",
                "../devices/x/block/sda",
            ),
        ] {
            assert_eq!(
                relative_target(Path::new(link), Path::new(target)),
                PathBuf::from(want),
                "{link}"
            );
        }
    }
}
