//! Crash safety with real processes: a child process applies a plan and aborts right after its
//! N-th write (the journal is write 1); every file is then wholly old or wholly new, and
//! `recover` (what the next apply or `undo` runs first) puts every file back.
//!
//! The child is this test binary itself, re-run with `--exact` on [`child_applies_and_aborts`] and
//! told through an environment variable that only this test reads: the shipped code has no
//! crash switch.

use std::cell::Cell;
use std::path::Path;
use std::process::Command;

use vfiokit_plan::{FileOps, JournalState, Plan, SystemRunner, apply, read_journal, recover, undo};
use vfiokit_sysfs::{Error as SysError, SysRoot};

const CHILD: &str = "VFIOKIT_PLAN_CRASH_CHILD";
const FILES: [&str; 3] = [
    "etc/default/grub",
    "etc/modules",
    "etc/modprobe.d/vfio.conf",
];
const OLD: [Option<&str>; 3] = [
    Some("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"),
    Some("loop\n"),
    None,
];
const NEW: [&str; 3] = [
    "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet iommu=pt\"\n",
    "loop\nvfio\n",
    "options vfio-pci ids=8086:3e92\n",
];

fn write_fixture(dir: &Path) {
    std::fs::create_dir_all(dir.join("etc/default")).unwrap();
    for (f, old) in FILES.iter().zip(OLD) {
        if let Some(old) = old {
            std::fs::write(dir.join(f), old).unwrap();
        }
    }
}

fn plan() -> Plan {
    let mut plan = Plan::default();
    for ((f, old), new) in FILES.iter().zip(OLD).zip(NEW) {
        plan.edit(*f, old.map(str::to_string), new.to_string(), vec![]);
    }
    plan
}

fn contents(dir: &Path) -> Vec<Option<String>> {
    FILES
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).ok())
        .collect()
}

/// [`FileOps`] of a root that ends the process right after its `after`-th write.
struct AbortingFs<'a> {
    root: &'a SysRoot,
    after: usize,
    done: Cell<usize>,
}

impl AbortingFs<'_> {
    fn step(&self) {
        self.done.set(self.done.get() + 1);
        if self.done.get() == self.after {
            std::process::abort();
        }
    }
}

impl FileOps for AbortingFs<'_> {
    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, SysError> {
        self.root.read(path)
    }
    fn replace(&self, path: &Path, bytes: &[u8]) -> Result<(), SysError> {
        self.root.replace(path, bytes)?;
        self.step();
        Ok(())
    }
    fn replace_private(&self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), SysError> {
        self.root.replace_private(path, bytes, mode)?;
        self.step();
        Ok(())
    }
    fn remove(&self, path: &Path) -> Result<(), SysError> {
        self.root.remove(path)?;
        self.step();
        Ok(())
    }
}

/// Runs only as the child of the test below; alone it does nothing.
#[test]
fn child_applies_and_aborts() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let (after, dir) = spec.split_once(':').expect("N:DIR");
    let root = SysRoot::new(dir).unwrap();
    let fs = AbortingFs {
        root: &root,
        after: after.parse().unwrap(),
        done: Cell::new(0),
    };
    let _ = apply(
        &root,
        &plan(),
        "setup-host --device 0000:00:02.0",
        &fs,
        &SystemRunner,
    );
}

#[test]
fn a_process_killed_after_every_write_is_rolled_back_by_recover() {
    // Write 1 is the journal; writes 2..=4 the three files, each replaced atomically.
    for after in 1..=FILES.len() + 1 {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(dir.path());
        let old = contents(dir.path());
        let status = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_applies_and_aborts", "--nocapture"])
            .env(CHILD, format!("{after}:{}", dir.path().display()))
            .status()
            .unwrap();
        assert_eq!(
            status.code(),
            None,
            "after write {after}: the child must die by its abort"
        );
        let now = contents(dir.path());
        for (i, f) in FILES.iter().enumerate() {
            assert!(
                now[i] == old[i] || now[i].as_deref() == Some(NEW[i]),
                "after write {after}: {f} is neither its old nor its new content"
            );
            assert_eq!(
                now[i] != old[i],
                i + 1 < after,
                "after write {after}: {f} written iff before the crash"
            );
        }
        let root = SysRoot::new(dir.path()).unwrap();
        let journal = read_journal(&root).unwrap().unwrap();
        assert_eq!(journal.state, JournalState::Applying);
        let recovered = recover(&root, &root).unwrap().unwrap();
        assert_eq!(recovered.restored.len(), after - 1);
        assert_eq!(contents(dir.path()), old, "after write {after}");
        assert_eq!(
            read_journal(&root).unwrap().unwrap().state,
            JournalState::RolledBack
        );
        assert!(
            recover(&root, &root).unwrap().is_none(),
            "a second recovery has nothing to do"
        );
        assert!(
            undo(&root, &root, &SystemRunner).is_err(),
            "a rolled-back apply has nothing to undo"
        );
        // A fresh apply afterwards works from the clean state.
        apply(&root, &plan(), "again", &root, &SystemRunner).unwrap();
        assert_eq!(
            contents(dir.path()),
            NEW.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>()
        );
    }
}

#[test]
fn recovery_stops_on_a_file_changed_after_the_crash() {
    let dir = tempfile::tempdir().unwrap();
    write_fixture(dir.path());
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_applies_and_aborts", "--nocapture"])
        .env(CHILD, format!("3:{}", dir.path().display()))
        .status()
        .unwrap();
    assert_eq!(status.code(), None);
    std::fs::write(dir.path().join("etc/modules"), "edited by hand\n").unwrap();
    let root = SysRoot::new(dir.path()).unwrap();
    let err = recover(&root, &root).unwrap_err().to_string();
    assert!(
        err.contains(
            "etc/modules: an interrupted `setup-host --device 0000:00:02.0` left this file"
        ),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc/modules")).unwrap(),
        "edited by hand\n"
    );
}
