//! The committed trees under `testdata/` (the EliteDesk, the UM880 Pro, the AM4 host with the
//! RTX 2060, the N100) are exactly what the builder writes.
//!
//! `UPDATE_GOLDEN=1 cargo test -p vfiokit-fakesys --test recorded` rewrites them and still
//! fails, so that a rewrite is always a deliberate, reviewed change.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use vfiokit_fakesys::Host;
use vfiokit_fakesys::hosts::{
    N100State, State, Um880State, am4_rtx2060, elitedesk_800_g4, minisforum_um880pro, n100,
};
use vfiokit_fakesys::testdata_dir;

#[derive(Debug, PartialEq, Eq)]
enum Entry {
    File(Vec<u8>),
    Link(PathBuf),
}

/// Every file and link under `dir`, by path relative to it. Directories are implied: the
/// builder never writes an empty one (git would not keep it).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(base).unwrap().to_path_buf();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(rel, Entry::Link(fs::read_link(&path).unwrap()));
            } else if meta.is_dir() {
                walk(base, &path, out);
            } else {
                out.insert(rel, Entry::File(fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Compares `testdata/<name>` with what `host` writes (or rewrites it with `UPDATE_GOLDEN`).
fn check(name: &str, host: Host) {
    let golden = testdata_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        if golden.exists() {
            fs::remove_dir_all(&golden).unwrap();
        }
        host.write(&golden).unwrap();
        panic!(
            "rewrote {}; review and commit it, then run again without UPDATE_GOLDEN",
            golden.display()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    host.write(dir.path()).unwrap();
    let want = snapshot(dir.path());
    assert!(
        golden.is_dir(),
        "{} is missing; create it with UPDATE_GOLDEN=1",
        golden.display()
    );
    let have = snapshot(&golden);
    let mut problems = Vec::new();
    for (path, entry) in &want {
        match have.get(path) {
            None => problems.push(format!("missing in testdata: {}", path.display())),
            Some(e) if e != entry => problems.push(format!(
                "differs: {} (testdata {e:?}, builder {entry:?})",
                path.display()
            )),
            Some(_) => {}
        }
    }
    for path in have.keys().filter(|p| !want.contains_key(*p)) {
        problems.push(format!("only in testdata: {}", path.display()));
    }
    assert!(
        problems.is_empty(),
        "{} does not match the builder (UPDATE_GOLDEN=1 rewrites it):\n{}",
        golden.display(),
        problems.join("\n")
    );
}

#[test]
fn fresh_matches_the_builder() {
    check("elitedesk-800-g4/fresh", elitedesk_800_g4(State::Fresh));
}

#[test]
fn configured_matches_the_builder() {
    check(
        "elitedesk-800-g4/configured",
        elitedesk_800_g4(State::Configured),
    );
}

#[test]
fn gvt_matches_the_builder() {
    check("elitedesk-800-g4/gvt", elitedesk_800_g4(State::Gvt));
}

#[test]
fn um880pro_fresh_matches_the_builder() {
    check(
        "minisforum-um880pro/fresh",
        minisforum_um880pro(Um880State::Fresh),
    );
}

#[test]
fn um880pro_configured_matches_the_builder() {
    check(
        "minisforum-um880pro/configured",
        minisforum_um880pro(Um880State::Configured),
    );
}

#[test]
fn am4_rtx2060_fresh_matches_the_builder() {
    check("am4-rtx2060/fresh", am4_rtx2060());
}

#[test]
fn n100_fresh_matches_the_builder() {
    check("n100/fresh", n100(N100State::Fresh));
}

#[test]
fn n100_sriov_matches_the_builder() {
    check("n100/sriov", n100(N100State::Sriov));
}

#[test]
fn copy_recorded_keeps_links_working() {
    let (_dir, root) = vfiokit_fakesys::copy_recorded("elitedesk-800-g4/configured").unwrap();
    let dev = root.sys_bus_devices("pci").join("0000:00:1f.3");
    assert_eq!(
        root.link_name(&dev.join("driver")).unwrap().as_deref(),
        Some("vfio-pci")
    );
    assert_eq!(
        root.link_name(&dev.join("iommu_group")).unwrap().as_deref(),
        Some("7")
    );
    let members = root
        .list(&root.sys_iommu_groups().join("7/devices"))
        .unwrap();
    assert_eq!(
        members,
        [
            "0000:00:1f.0",
            "0000:00:1f.3",
            "0000:00:1f.4",
            "0000:00:1f.5",
            "0000:00:1f.6"
        ]
    );
    assert!(vfiokit_fakesys::copy_recorded("../Cargo.toml").is_err());
    assert!(vfiokit_fakesys::copy_recorded("no-such-host").is_err());
}
