//! The devices a ZFS pool lives on, from what `zpool status -P` prints.

/// Sections of a pool's `config:` table whose devices the pool cannot run without: its data
/// vdevs (the row named after the pool), `special` and `dedup`. `logs`, `cache` and `spares`
/// are not needed to keep the pool (and `/` on it) working.
const NEEDED_SECTIONS: [&str; 2] = ["special", "dedup"];

/// The device paths of the vdevs pool `pool` needs, in `zpool status -P` output: every leaf
/// of its `config:` table that is a path (`/dev/disk/by-id/nvme-…-part3`, `/dev/sda3`), below
/// mirrors, raidz and replacing groups alike, in the order printed; the `logs`, `cache` and
/// `spares` sections are left out. `None` when the output has no `pool: <pool>` block or
/// that block has no `config:` table with the pool's row. Leaves printed without a path (a
/// missing device shows as its GUID) are not listed; callers that need every device must
/// not take the list as complete then — see [`PoolVdevs::unnamed`].
///
/// Output of several pools (`zpool status -P` without a pool name) is fine; text that is not
/// `zpool status` output gives `None`, never a panic.
pub fn zpool_vdevs(status: &str, pool: &str) -> Option<PoolVdevs> {
    let mut in_pool = false;
    let mut in_config = false;
    // Indentation of the pool's row: section rows (`logs`, `spares`, …) share it.
    let mut top: Option<usize> = None;
    let mut needed = true;
    let mut out: Option<PoolVdevs> = None;
    for line in status.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let mut words = trimmed.split_whitespace();
        let Some(first) = words.next() else {
            continue;
        };
        if first == "pool:" {
            in_pool = words.next() == Some(pool) && words.next().is_none();
            in_config = false;
            top = None;
            continue;
        }
        if !in_pool {
            continue;
        }
        if first == "config:" {
            in_config = true;
            continue;
        }
        if !in_config {
            continue;
        }
        if first == "errors:" {
            in_config = false;
            continue;
        }
        let Some(level) = top else {
            if first == pool {
                top = Some(indent);
                needed = true;
                out.get_or_insert_with(PoolVdevs::default);
            }
            continue;
        };
        if indent <= level {
            needed = first == pool || NEEDED_SECTIONS.contains(&first);
            continue;
        }
        if !needed {
            continue;
        }
        let vdevs = out.get_or_insert_with(PoolVdevs::default);
        if first.starts_with('/') {
            vdevs.paths.push(first.to_string());
        } else if is_leaf_guid(first) {
            vdevs.unnamed += 1;
        }
    }
    out
}

/// The vdevs of a pool as `zpool status -P` lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolVdevs {
    /// Device paths of the vdevs the pool needs, in the order printed.
    pub paths: Vec<String>,
    /// Needed leaves printed as a bare GUID (a device ZFS cannot find): they are somewhere the
    /// output does not say.
    pub unnamed: usize,
}

/// A leaf printed as its GUID: decimal digits only (group rows are `mirror-0`, `raidz2-1`, …).
fn is_leaf_guid(word: &str) -> bool {
    !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(status: &str, pool: &str) -> Vec<String> {
        zpool_vdevs(status, pool).expect("pool").paths
    }

    const SINGLE: &str = "  pool: rpool
 state: ONLINE
  scan: scrub repaired 0B in 00:00:41 with 0 errors on Sun Aug  9 00:24:42 2026
config:

\tNAME                                                    STATE     READ WRITE CKSUM
\trpool                                                   ONLINE       0     0     0
\t  /dev/disk/by-id/nvme-512GB_SSD_MX2310250123456-part3  ONLINE       0     0     0

errors: No known data errors
";

    #[test]
    fn a_single_disk_pool() {
        assert_eq!(
            paths(SINGLE, "rpool"),
            ["/dev/disk/by-id/nvme-512GB_SSD_MX2310250123456-part3"]
        );
        assert_eq!(zpool_vdevs(SINGLE, "tank"), None);
        assert_eq!(zpool_vdevs(SINGLE, "rpoo"), None);
    }

    const MIRROR_AND_EXTRAS: &str = "  pool: rpool
 state: ONLINE
config:

\tNAME                                  STATE     READ WRITE CKSUM
\trpool                                 ONLINE       0     0     0
\t  mirror-0                            ONLINE       0     0     0
\t    /dev/disk/by-id/ata-SSD_A-part3   ONLINE       0     0     0
\t    /dev/sdb3                         ONLINE       0     0     0
\tspecial
\t  mirror-1                            ONLINE       0     0     0
\t    /dev/nvme0n1p1                    ONLINE       0     0     0
\t    /dev/nvme1n1p1                    ONLINE       0     0     0
\tlogs
\t  /dev/nvme2n1p1                      ONLINE       0     0     0
\tcache
\t  /dev/sdc                            ONLINE       0     0     0
\tspares
\t  /dev/sdd3                           AVAIL

errors: No known data errors

  pool: tank
 state: DEGRADED
status: One or more devices could not be used because the label is missing or
\tinvalid.  Sufficient replicas exist for the pool to continue
\tfunctioning in a degraded state.
config:

\tNAME                        STATE     READ WRITE CKSUM
\ttank                        DEGRADED     0     0     0
\t  raidz2-0                  DEGRADED     0     0     0
\t    /dev/sde1               ONLINE       0     0     0
\t    /dev/sdf1               ONLINE       0     0     0
\t    9348574837483748374     UNAVAIL      0     0     0  was /dev/sdg1
\t    /dev/disk/by-id/wwn-0x5000c500a-part1  ONLINE  0  0  0
\t  raidz2-1                  ONLINE       0     0     0
\t    /dev/sdh1               ONLINE       0     0     0
\tdedup
\t  /dev/nvme3n1p2            ONLINE       0     0     0

errors: No known data errors
";

    #[test]
    fn mirrors_raidz_and_sections_of_several_pools() {
        assert_eq!(
            paths(MIRROR_AND_EXTRAS, "rpool"),
            [
                "/dev/disk/by-id/ata-SSD_A-part3",
                "/dev/sdb3",
                "/dev/nvme0n1p1",
                "/dev/nvme1n1p1"
            ]
        );
        assert_eq!(zpool_vdevs(MIRROR_AND_EXTRAS, "rpool").unwrap().unnamed, 0);
        let tank = zpool_vdevs(MIRROR_AND_EXTRAS, "tank").unwrap();
        assert_eq!(
            tank.paths,
            [
                "/dev/sde1",
                "/dev/sdf1",
                "/dev/disk/by-id/wwn-0x5000c500a-part1",
                "/dev/sdh1",
                "/dev/nvme3n1p2"
            ]
        );
        assert_eq!(tank.unnamed, 1);
    }

    #[test]
    fn spaces_instead_of_tabs_and_a_replacing_group() {
        let text = "pool: rpool\nconfig:\n  NAME STATE\n  rpool ONLINE\n    replacing-0 DEGRADED\n      /dev/sda3 OFFLINE\n      /dev/sdb3 ONLINE\n    /dev/sdc3 ONLINE\n";
        assert_eq!(
            paths(text, "rpool"),
            ["/dev/sda3", "/dev/sdb3", "/dev/sdc3"]
        );
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            "\n\n\t\t\n",
            "pool:",
            "pool: rpool",
            "pool: rpool\nconfig:",
            "pool: rpool\nconfig:\n\trpool",
            "pool: rpool extra\nconfig:\n\trpool\n\t  /dev/sda1\n",
            "config:\n\trpool\n\t  /dev/sda1\n",
            "\u{feff}pool: rpool\nconfig:\n\t\u{a0}rpool\n\t  /dev/ä\n",
            "cannot open 'rpool': no such pool\n",
        ] {
            let got = zpool_vdevs(text, "rpool");
            assert!(got.is_none_or(|v| v.paths.len() <= 1), "{text:?}");
        }
        assert_eq!(zpool_vdevs("pool: rpool\nconfig:\n", "rpool"), None);
        // The pool row without devices: known, but nothing to trace.
        assert_eq!(
            zpool_vdevs("pool: rpool\nconfig:\n\trpool ONLINE\n", "rpool"),
            Some(PoolVdevs::default())
        );
    }
}
