//! Captures of recorded hosts through the library: what is written, linked, copied and noted.
//! (Replaying a capture through every command is the CLI's end-to-end test, `xtask/tests/capture.rs`.)

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use vfiokit_capture::{Error, Options, capture};
use vfiokit_fakesys::copy_recorded;
use vfiokit_sysfs::SysRoot;

const ZPOOL: &str = "  pool: rpool
 state: ONLINE
config:

\tNAME                                                  STATE     READ WRITE CKSUM
\trpool                                                 ONLINE       0     0     0
\t  /dev/disk/by-id/ata-ST1000LM035-1RK172_WDE0ABCD-part3  ONLINE       0     0     0

errors: No known data errors
";
const KERNEL_LOG: &str = "[    0.051234] pve kernel: DMAR: IOMMU enabled
[    1.234567] pve kernel: e1000e 0000:00:1f.6 eth0: (PCI Express:2.5GT/s:Width x1) c8:d9:d2:1a:2b:3c
";

/// The fresh EliteDesk with `/dev/disk/by-id` links (to the disk, a partition, a character
/// device, out of the root) and the records of `zpool status -P` and the kernel log.
fn recorded_with_pool() -> (tempfile::TempDir, SysRoot) {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let by_id = dir.path().join("dev/disk/by-id");
    fs::create_dir_all(&by_id).unwrap();
    symlink("../../sda", by_id.join("ata-ST1000LM035-1RK172_WDE0ABCD")).unwrap();
    symlink(
        "../../sda3",
        by_id.join("ata-ST1000LM035-1RK172_WDE0ABCD-part3"),
    )
    .unwrap();
    symlink("../../null", by_id.join("not-a-disk")).unwrap();
    symlink("../../../../sda", by_id.join("escapes")).unwrap();
    let rec = dir.path().join("var/lib/vfiokit/capture");
    fs::write(rec.join("zpool-status"), ZPOOL).unwrap();
    fs::write(rec.join("kernel-log"), KERNEL_LOG).unwrap();
    (dir, root)
}

fn link(path: &Path) -> String {
    fs::read_link(path).unwrap().display().to_string()
}

#[test]
fn disk_ids_and_the_records_of_another_root_are_copied() {
    let (_dir, root) = recorded_with_pool();
    let out = tempfile::tempdir().unwrap();
    let cap = out.path().join("cap");
    let report = capture(&root, &cap, &Options::default()).unwrap();
    assert!(report.skipped.is_empty(), "{report}");
    let by_id = cap.join("dev/disk/by-id");
    let mut names: Vec<String> = fs::read_dir(&by_id)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ata-ST1000LM035-1RK172_WDE0ABCD",
            "ata-ST1000LM035-1RK172_WDE0ABCD-part3"
        ]
    );
    assert_eq!(
        link(&by_id.join("ata-ST1000LM035-1RK172_WDE0ABCD-part3")),
        "../../sda3"
    );
    let rec = cap.join("var/lib/vfiokit/capture");
    assert_eq!(fs::read_to_string(rec.join("zpool-status")).unwrap(), ZPOOL);
    assert_eq!(
        fs::read_to_string(rec.join("kernel-log")).unwrap(),
        KERNEL_LOG
    );
    assert!(rec.join("qemu-version").exists());
    assert!(
        fs::read_to_string(cap.join("CAPTURE-NOTES.txt"))
            .unwrap()
            .starts_with(&format!("vfiokit capture of {} (", root.root().display()))
    );
}

#[test]
fn anonymized_disk_ids_still_trace_a_vdev_to_its_disk() {
    let (_dir, root) = recorded_with_pool();
    let out = tempfile::tempdir().unwrap();
    let cap = out.path().join("cap");
    let report = capture(&root, &cap, &Options { anonymize: true }).unwrap();
    assert!(report.anonymized && report.skipped.is_empty(), "{report}");
    let rec = cap.join("var/lib/vfiokit/capture");
    let zpool = fs::read_to_string(rec.join("zpool-status")).unwrap();
    assert!(!zpool.contains("WDE0ABCD"), "{zpool}");
    let vdev = zpool
        .split_whitespace()
        .find_map(|w| w.strip_prefix("/dev/disk/by-id/"))
        .unwrap();
    // The serial joins the others (USB serials come first): `SERIAL000N`.
    assert!(
        vdev.starts_with("ata-ST1000LM035-1RK172_SERIAL0") && vdev.ends_with("-part3"),
        "{vdev}"
    );
    assert_eq!(link(&cap.join("dev/disk/by-id").join(vdev)), "../../sda3");
    // The NIC's MAC becomes what its sysfs `address` became.
    let mac = fs::read_to_string(cap.join("sys/class/net/eno1/address")).unwrap();
    let log = fs::read_to_string(rec.join("kernel-log")).unwrap();
    assert_eq!(
        log,
        format!(
            "[    0.051234] host1 kernel: DMAR: IOMMU enabled
[    1.234567] host1 kernel: e1000e 0000:00:1f.6 eth0: (PCI Express:2.5GT/s:Width x1) {}
",
            mac.trim()
        )
    );
}

#[test]
fn a_root_without_records_gets_none_and_no_note() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    fs::remove_dir_all(dir.path().join("var/lib/vfiokit/capture")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let cap = out.path().join("cap");
    let report = capture(&root, &cap, &Options::default()).unwrap();
    assert!(report.skipped.is_empty(), "{report}");
    assert!(!cap.join("var/lib/vfiokit/capture").exists());
    assert!(!cap.join("dev").exists());
}

#[test]
fn on_this_machine_each_program_is_recorded_or_noted() {
    let root = SysRoot::new("/").unwrap();
    let out = tempfile::tempdir().unwrap();
    let cap = out.path().join("live");
    let report = capture(&root, &cap, &Options::default()).unwrap();
    let rec = cap.join("var/lib/vfiokit/capture");
    for (file, note) in [
        ("zpool-status", "zpool status -P: "),
        ("kernel-log", "kernel log: "),
    ] {
        let noted = report.skipped.iter().any(|n| n.starts_with(note));
        assert!(rec.join(file).exists() != noted, "{file}: {report}");
    }
}

#[test]
fn an_existing_output_is_refused_untouched() {
    let root =
        SysRoot::new(vfiokit_fakesys::testdata_dir().join("elitedesk-800-g4/fresh")).unwrap();
    let out = tempfile::tempdir().unwrap();
    fs::write(out.path().join("mine"), "keep").unwrap();
    match capture(&root, out.path(), &Options::default()) {
        Err(Error::OutputExists { path }) => assert_eq!(path, out.path()),
        other => panic!("{other:?}"),
    }
    assert_eq!(fs::read_dir(out.path()).unwrap().count(), 1);
}
