//! Crash safety, locking and confinement of `--apply`, with real processes.

use std::fs;
use std::path::Path;
use std::process::Command;

use vfiokit_fakesys::copy_recorded;

fn run(root: &Path, args: &[&str], crash_after: Option<usize>) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vfiokit"));
    cmd.args(args).arg("--root").arg(root);
    if let Some(n) = crash_after {
        cmd.env("VFIOKIT_CRASH_AFTER", n.to_string());
    }
    let out = cmd.output().expect("run vfiokit");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const FILES: [&str; 3] = [
    "etc/default/grub",
    "etc/modules",
    "etc/modprobe.d/vfio.conf",
];
const SETUP: [&str; 5] = ["setup-host", "--device", "00:02.0", "00:14.3", "--apply"];

fn contents(root: &Path) -> Vec<Option<String>> {
    FILES
        .iter()
        .map(|f| fs::read_to_string(root.join(f)).ok())
        .collect()
}

fn golden() -> Vec<Option<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/fresh-igpu-wifi");
    ["grub", "modules", "vfio.conf"]
        .iter()
        .map(|f| Some(fs::read_to_string(dir.join(f)).unwrap()))
        .collect()
}

#[test]
fn a_process_killed_at_every_step_is_rolled_back_by_the_next_run() {
    let new = golden();
    // Step 0 is the journal; steps 1..=3 the three files, each replaced atomically.
    for step in 0..=3 {
        let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
        let old = contents(dir.path());
        let (code, _, _) = run(root.root(), &SETUP, Some(step));
        assert_eq!(
            code, None,
            "step {step}: the process must die by its abort, not exit"
        );
        let after = contents(dir.path());
        for (i, f) in FILES.iter().enumerate() {
            assert!(
                after[i] == old[i] || after[i] == new[i],
                "step {step}: {f} is neither its old nor its new content"
            );
            assert_eq!(
                after[i] != old[i],
                i < step,
                "step {step}: {f} written iff before the crash"
            );
        }
        let journal = fs::read_to_string(dir.path().join("var/lib/vfiokit/journal.json")).unwrap();
        assert!(
            journal.contains("\"state\": \"applying\""),
            "step {step}: {journal}"
        );
        // A dry run only warns; it writes nothing.
        let (code, _, err) = run(root.root(), &SETUP[..4], None);
        assert_eq!(code, Some(0));
        assert!(err.contains("interrupted"), "{err}");
        assert_eq!(contents(dir.path()), after);
        if step % 2 == 0 {
            // `undo` rolls the interrupted apply back, byte for byte.
            let (code, out, err) = run(root.root(), &["undo"], None);
            assert_eq!(code, Some(0), "{err}");
            assert!(out.contains("was rolled back"), "{out}");
            assert_eq!(contents(dir.path()), old, "step {step}");
        } else {
            // The next apply rolls back first, then applies from a clean state.
            let (code, _, err) = run(root.root(), &SETUP, None);
            assert_eq!(code, Some(0), "{err}");
            assert!(err.contains("was rolled back"), "{err}");
            assert_eq!(contents(dir.path()), new, "step {step}");
        }
    }
}

#[test]
fn a_second_vfiokit_on_the_same_root_is_refused_while_the_first_holds_the_lock() {
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let lock_path = dir.path().join("var/lock/vfiokit.lock");
    fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let held = fs::File::create(&lock_path).unwrap();
    held.lock().unwrap();
    let before = contents(dir.path());
    let (code, _, err) = run(root.root(), &SETUP, None);
    assert_eq!(code, Some(1));
    assert!(err.contains("vfiokit.lock is locked"), "{err}");
    assert_eq!(contents(dir.path()), before);
    // Proxmox's per-VM lock is honoured by setup-vm.
    let vm_lock = dir.path().join("var/lock/qemu-server/lock-100.conf");
    fs::create_dir_all(vm_lock.parent().unwrap()).unwrap();
    drop(held);
    let vm = fs::File::create(&vm_lock).unwrap();
    vm.lock().unwrap();
    let (code, _, err) = run(
        root.root(),
        &["setup-vm", "--vmid", "100", "--usb", "062a:4101", "--apply"],
        None,
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("lock-100.conf is locked"), "{err}");
    // A dry run takes no lock and writes none.
    let (code, _, _) = run(root.root(), &SETUP[..4], None);
    assert_eq!(code, Some(0));
}

#[test]
fn links_out_of_the_root_are_refused_for_reads_and_writes() {
    // A planted etc/modprobe.d/vfio.conf pointing at the real host's file.
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("vfio.conf");
    fs::write(&target, "# the real host's file\n").unwrap();
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("etc/modprobe.d/vfio.conf")).unwrap();
    let before = contents(dir.path());
    let (code, _, err) = run(root.root(), &SETUP, None);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("vfio.conf: link leaves the root"), "{err}");
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "# the real host's file\n"
    );
    assert_eq!(contents(dir.path()), before);
    // A whole directory linked out is refused too, and nothing is created through it.
    let (dir, root) = copy_recorded("elitedesk-800-g4/fresh").unwrap();
    let modprobe = dir.path().join("etc/modprobe.d");
    fs::remove_dir_all(&modprobe).unwrap();
    std::os::unix::fs::symlink(outside.path(), &modprobe).unwrap();
    let (code, _, err) = run(root.root(), &SETUP, None);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("link leaves the root"), "{err}");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 1);
}
