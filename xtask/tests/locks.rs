//! Locking and confinement of `--apply`, with real processes. (Crash safety is tested where it
//! lives: `crates/plan/tests/crash.rs`.)

use std::fs;
use std::path::Path;
use std::process::Command;

use vfiokit_fakesys::copy_recorded;

fn run(root: &Path, args: &[&str], _: Option<usize>) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vfiokit"));
    cmd.args(args).arg("--root").arg(root);
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
