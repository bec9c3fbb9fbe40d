//! Applying a plan atomically, with a journal that `undo` restores from.
//!
//! Order: every file is re-read and compared with what the plan was built from (a change
//! underneath aborts, nothing written); the journal with the old bytes is written (mode 0600);
//! files are replaced one by one, atomically; a failure restores every file already written;
//! then the commands run — on a root other than `/` they are only recorded in the journal.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use vfiokit_sysfs::{Error as SysError, SysRoot};

use crate::plan::{Plan, PlannedCommand};

/// File operations an apply needs; tests inject failures through it.
pub trait FileOps {
    /// The file's bytes, `None` when it does not exist.
    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, SysError>;
    /// Replaces (or creates) a file atomically.
    fn replace(&self, path: &Path, bytes: &[u8]) -> Result<(), SysError>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> Result<(), SysError>;
}

impl FileOps for SysRoot {
    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, SysError> {
        self.read_bytes_opt(path)
    }
    /// Writes where `path` really is, refusing links that lead out of the root.
    fn replace(&self, path: &Path, bytes: &[u8]) -> Result<(), SysError> {
        let target = self.write_target(path)?;
        if let Some(dir) = target.parent() {
            self.create_dir_all(dir)?;
        }
        self.replace_file(&target, bytes)
    }
    fn remove(&self, path: &Path) -> Result<(), SysError> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => self.remove_file(&self.write_target(path)?),
            Err(_) => Ok(()),
        }
    }
}

/// The file operations of a real run. `VFIOKIT_CRASH_AFTER=N` makes the process abort right
/// after its N-th write (the journal counts as write 0): the crash-safety test kills a real
/// process at every step this way, with nothing else changed.
pub fn host_fs(root: &SysRoot) -> CrashingFs<'_> {
    CrashingFs {
        root,
        after: std::env::var("VFIOKIT_CRASH_AFTER")
            .ok()
            .and_then(|v| v.parse().ok()),
        done: std::cell::Cell::new(0),
    }
}

/// [`FileOps`] on a [`SysRoot`] that can abort the process after a given number of writes.
pub struct CrashingFs<'a> {
    root: &'a SysRoot,
    after: Option<usize>,
    done: std::cell::Cell<usize>,
}

impl CrashingFs<'_> {
    fn step(&self) {
        let n = self.done.get() + 1;
        self.done.set(n);
        if self.after == Some(n) {
            std::process::abort();
        }
    }
}

impl FileOps for CrashingFs<'_> {
    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, SysError> {
        self.root.read(path)
    }
    fn replace(&self, path: &Path, bytes: &[u8]) -> Result<(), SysError> {
        self.root.replace(path, bytes)?;
        self.step();
        Ok(())
    }
    fn remove(&self, path: &Path) -> Result<(), SysError> {
        self.root.remove(path)?;
        self.step();
        Ok(())
    }
}

/// An exclusive lock held while files change: `/var/lock/vfiokit.lock` under the root, and for a
/// VM config also Proxmox's `/var/lock/qemu-server/lock-<vmid>.conf`. Released on drop.
pub struct Lock {
    _files: Vec<std::fs::File>,
}

/// Takes the lock of the root (and of VM `vmid`'s config), or says who holds it.
pub fn lock(root: &SysRoot, vmid: Option<u32>) -> anyhow::Result<Lock> {
    let mut paths = vec![root.var_lock("vfiokit.lock")];
    if let Some(id) = vmid {
        paths.push(root.var_lock(format!("qemu-server/lock-{id}.conf")));
    }
    let mut files = Vec::new();
    for path in paths {
        let target = root.write_target(&path)?;
        if let Some(dir) = target.parent() {
            root.create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&target)
            .with_context(|| format!("cannot open the lock {}", target.display()))?;
        match file.try_lock() {
            Ok(()) => files.push(file),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "{} is locked: another vfiokit (or Proxmox, for a VM config) is changing this host; try again when it has finished",
                target.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => bail!("cannot lock {}: {e}", target.display()),
        }
    }
    Ok(Lock { _files: files })
}

/// `--apply` on the real host changes root-owned files: refuse early, and say so, without euid 0.
pub fn require_root(root: &SysRoot) -> anyhow::Result<()> {
    if root.is_host() && vfiokit_sysfs::effective_uid().is_some_and(|uid| uid != 0) {
        bail!(
            "--apply on / changes root-owned files and runs update-initramfs: run it as root (euid 0)"
        );
    }
    Ok(())
}

/// What every changing command does first. With `--apply`: check euid 0 on `/`, take the lock,
/// roll back an interrupted apply (and say so). Without: only warn about an interrupted apply —
/// a dry run writes nothing. The returned lock is held until dropped.
pub fn prepare(root: &SysRoot, vmid: Option<u32>, do_apply: bool) -> anyhow::Result<Option<Lock>> {
    if !do_apply {
        if read_journal(root)?.is_some_and(|j| j.state == "applying") {
            eprintln!(
                "warning: an earlier apply was interrupted ({}); the next --apply or `undo` rolls it back first",
                journal_path(root).display()
            );
        }
        return Ok(None);
    }
    require_root(root)?;
    let lock = lock(root, vmid)?;
    if let Some(done) = recover(root, &host_fs(root))? {
        eprintln!("{done}");
    }
    Ok(Some(lock))
}

/// Finishes what an interrupted apply left: a journal still in state `applying` means the
/// process died between two writes. Every file it names is put back to its old content (files
/// already back, or never written, are left alone); a file changed by someone else since stops
/// the recovery with a message. Returns what was done, or `None` when nothing was interrupted.
pub fn recover(root: &SysRoot, fs: &dyn FileOps) -> anyhow::Result<Option<String>> {
    let Some(mut journal) = read_journal(root)? else {
        return Ok(None);
    };
    if journal.state != "applying" {
        return Ok(None);
    }
    let mut restored = Vec::new();
    for f in &journal.files {
        let path = root.path(&f.path);
        let now = fs.read(&path)?;
        let old = f.old.as_deref().map(str::as_bytes);
        if now.as_deref() == old {
            continue;
        }
        if now.as_deref() != Some(f.new.as_bytes()) {
            bail!(
                "{}: an interrupted `{}` left this file, and it changed since; compare it with the journal {} and fix it by hand",
                path.display(),
                journal.command,
                journal_path(root).display()
            );
        }
        match &f.old {
            Some(old) => fs.replace(&path, old.as_bytes())?,
            None => fs.remove(&path)?,
        }
        restored.push(f.path.display().to_string());
    }
    journal.state = "rolled-back".into();
    write_journal(root, &journal)?;
    Ok(Some(format!(
        "an interrupted `{}` was rolled back{}",
        journal.command,
        if restored.is_empty() {
            String::new()
        } else {
            format!(": restored {}", restored.join(", "))
        }
    )))
}

/// Runs the plan's commands on the real host.
pub trait Runner {
    /// Runs `argv`; `Ok(false)` when it exits non-zero.
    fn run(&self, argv: &[String]) -> std::io::Result<bool>;
}

/// Runs commands with `std::process::Command`.
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn run(&self, argv: &[String]) -> std::io::Result<bool> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| std::io::Error::other("empty command"))?;
        Ok(std::process::Command::new(program)
            .args(args)
            .status()?
            .success())
    }
}

/// One file in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalFile {
    /// Relative to the root.
    pub path: PathBuf,
    /// Content before the apply; `None`: the apply created it.
    pub old: Option<String>,
    /// Content the apply wrote.
    pub new: String,
}

/// One command in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalCommand {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Whether it was run (only on the root `/`) and succeeded.
    pub ran: bool,
}

/// What the last apply changed, written under the root before any file is touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The command line that applied (`setup-host --device 0000:00:02.0`).
    pub command: String,
    /// `applying` while files are being written, `applied` after, `undone` after undo.
    pub state: String,
    /// The files, in the order written.
    pub files: Vec<JournalFile>,
    /// The commands, in the order run (or recorded).
    pub commands: Vec<JournalCommand>,
}

/// `/var/lib/vfiokit/journal.json` under the root.
pub fn journal_path(root: &SysRoot) -> PathBuf {
    root.var_lib("vfiokit/journal.json")
}

fn write_journal(root: &SysRoot, journal: &Journal) -> anyhow::Result<()> {
    let path = root.write_target(&journal_path(root))?;
    if let Some(dir) = path.parent() {
        root.create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(journal)?;
    root.replace_file_private(&path, text.as_bytes(), 0o600)?;
    Ok(())
}

/// Reads the journal of the last apply, if any.
pub fn read_journal(root: &SysRoot) -> anyhow::Result<Option<Journal>> {
    let path = journal_path(root);
    let Some(bytes) = root.read_bytes_opt(&path)? else {
        return Ok(None);
    };
    let journal = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a vfiokit journal", path.display()))?;
    Ok(Some(journal))
}

/// Puts back what `written` replaced, newest first. Returns the files that could not be restored.
fn roll_back(root: &SysRoot, fs: &dyn FileOps, written: &[JournalFile]) -> Vec<String> {
    let mut failed = Vec::new();
    for f in written.iter().rev() {
        let path = root.path(&f.path);
        let result = match &f.old {
            Some(old) => fs.replace(&path, old.as_bytes()),
            None => fs.remove(&path),
        };
        if let Err(e) = result {
            failed.push(e.to_string());
        }
    }
    failed
}

/// Applies `plan` under `root`. `command` is recorded in the journal.
pub fn apply(
    root: &SysRoot,
    plan: &Plan,
    command: &str,
    fs: &dyn FileOps,
    runner: &dyn Runner,
) -> anyhow::Result<Journal> {
    for f in &plan.files {
        let path = root.path(&f.path);
        let now = fs.read(&path)?;
        if now.as_deref() != f.old.as_deref().map(str::as_bytes) {
            bail!(
                "{}: file changed by other user? Try again. (it changed after the plan was made; nothing was written)",
                path.display()
            );
        }
    }
    let mut journal = Journal {
        command: command.to_string(),
        state: "applying".into(),
        files: plan
            .files
            .iter()
            .map(|f| JournalFile {
                path: f.path.clone(),
                old: f.old.clone(),
                new: f.new.clone(),
            })
            .collect(),
        commands: Vec::new(),
    };
    write_journal(root, &journal)?;
    if std::env::var("VFIOKIT_CRASH_AFTER").as_deref() == Ok("0") {
        std::process::abort();
    }
    for (i, f) in journal.files.iter().enumerate() {
        if let Err(e) = fs.replace(&root.path(&f.path), f.new.as_bytes()) {
            let failed = roll_back(root, fs, &journal.files[..i]);
            if failed.is_empty() {
                root.remove_file(&journal_path(root))?;
                bail!("{e}; every file written before it was restored, nothing changed");
            }
            bail!(
                "{e}; restoring the files written before it failed too: {}. The journal {} holds their old content",
                failed.join("; "),
                journal_path(root).display()
            );
        }
    }
    journal.commands = run_commands(root, &plan.commands, runner)?;
    journal.state = "applied".into();
    write_journal(root, &journal)?;
    Ok(journal)
}

/// Runs the commands on the real host; elsewhere records them as not run.
fn run_commands(
    root: &SysRoot,
    commands: &[PlannedCommand],
    runner: &dyn Runner,
) -> anyhow::Result<Vec<JournalCommand>> {
    let mut done = Vec::new();
    for c in commands {
        let ran = if root.is_host() {
            let ok = runner
                .run(&c.argv)
                .with_context(|| format!("cannot run {}", c.argv.join(" ")))?;
            if !ok {
                bail!(
                    "{} failed; the files are written (undo restores them); fix the cause and run it by hand",
                    c.argv.join(" ")
                );
            }
            true
        } else {
            false
        };
        done.push(JournalCommand {
            argv: c.argv.clone(),
            ran,
        });
    }
    Ok(done)
}

/// Restores the files of the last apply, byte for byte, then re-runs its commands (recorded only
/// on a root other than `/`). Refuses when a file changed since the apply.
pub fn undo(root: &SysRoot, fs: &dyn FileOps, runner: &dyn Runner) -> anyhow::Result<Journal> {
    let Some(mut journal) = read_journal(root)? else {
        bail!(
            "nothing to undo: no journal at {}",
            journal_path(root).display()
        );
    };
    if journal.state == "undone" {
        bail!("the last apply ({}) is already undone", journal.command);
    }
    if journal.state == "rolled-back" {
        bail!(
            "the last apply ({}) was interrupted and has been rolled back: nothing to undo",
            journal.command
        );
    }
    for f in &journal.files {
        let path = root.path(&f.path);
        let now = fs.read(&path)?;
        if now.as_deref() != Some(f.new.as_bytes()) {
            bail!(
                "{}: changed since `{}` wrote it; undo would lose that change, nothing was restored",
                path.display(),
                journal.command
            );
        }
    }
    for (i, f) in journal.files.iter().enumerate() {
        let path = root.path(&f.path);
        let result = match &f.old {
            Some(old) => fs.replace(&path, old.as_bytes()),
            None => fs.remove(&path),
        };
        if let Err(e) = result {
            // Put back what this undo already restored: the host stays as the apply left it.
            let back: Vec<JournalFile> = journal.files[..i]
                .iter()
                .map(|f| JournalFile {
                    path: f.path.clone(),
                    old: Some(f.new.clone()),
                    new: String::new(),
                })
                .collect();
            let failed = roll_back(root, fs, &back);
            if failed.is_empty() {
                bail!("{e}; undo stopped and left every file as the apply wrote it");
            }
            bail!(
                "{e}; undo stopped, and putting back failed for: {}",
                failed.join("; ")
            );
        }
    }
    let commands: Vec<PlannedCommand> = journal
        .commands
        .iter()
        .map(|c| PlannedCommand {
            argv: c.argv.clone(),
            why: String::new(),
        })
        .collect();
    journal.commands = run_commands(root, &commands, runner)?;
    journal.state = "undone".into();
    write_journal(root, &journal)?;
    Ok(journal)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::setup_host::{self, Request};

    /// Fails the `fail_at`-th replace or remove (0-based), counting across the whole apply.
    struct FailingFs<'a> {
        real: &'a SysRoot,
        fail_at: usize,
        calls: Cell<usize>,
    }

    impl FailingFs<'_> {
        fn tick(&self, path: &Path) -> Result<(), SysError> {
            let n = self.calls.get();
            self.calls.set(n + 1);
            if n == self.fail_at {
                return Err(SysError::Io {
                    path: path.to_path_buf(),
                    err: std::io::Error::other("injected failure"),
                });
            }
            Ok(())
        }
    }

    impl FileOps for FailingFs<'_> {
        fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, SysError> {
            self.real.read(path)
        }
        fn replace(&self, path: &Path, bytes: &[u8]) -> Result<(), SysError> {
            self.tick(path)?;
            self.real.replace(path, bytes)
        }
        fn remove(&self, path: &Path) -> Result<(), SysError> {
            self.tick(path)?;
            self.real.remove(path)
        }
    }

    /// Records commands instead of running them.
    #[derive(Default)]
    struct Recorder(std::cell::RefCell<Vec<Vec<String>>>);

    impl Runner for Recorder {
        fn run(&self, argv: &[String]) -> std::io::Result<bool> {
            self.0.borrow_mut().push(argv.to_vec());
            Ok(true)
        }
    }

    fn etc_files(root: &SysRoot) -> Vec<(PathBuf, Option<Vec<u8>>)> {
        [
            "etc/default/grub",
            "etc/modules",
            "etc/modprobe.d/vfio.conf",
            "etc/modprobe.d/pve-blacklist.conf",
        ]
        .iter()
        .map(|p| {
            (
                PathBuf::from(p),
                root.read_bytes_opt(&root.path(p)).unwrap(),
            )
        })
        .collect()
    }

    fn seed_plan(root: &SysRoot) -> Plan {
        let host = vfiokit_iommu::Host::scan(root).unwrap();
        let request = Request {
            devices: vec!["00:02.0".parse().unwrap(), "00:14.3".parse().unwrap()],
            force_collateral: vec![],
        };
        setup_host::plan(root, &host, &request).unwrap().unwrap().0
    }

    #[test]
    fn a_failure_at_any_write_leaves_every_file_unchanged() {
        let (_dir, root) = vfiokit_fakesys::copy_recorded("elitedesk-800-g4/fresh").unwrap();
        let plan = seed_plan(&root);
        assert_eq!(plan.files.len(), 3);
        let before = etc_files(&root);
        for fail_at in 0..plan.files.len() {
            let fs = FailingFs {
                real: &root,
                fail_at,
                calls: Cell::new(0),
            };
            let err = apply(&root, &plan, "test", &fs, &Recorder::default())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("injected failure") && err.contains("restored"),
                "{err}"
            );
            assert_eq!(etc_files(&root), before, "failure at write {fail_at}");
            assert!(
                !journal_path(&root).exists(),
                "journal left after a rolled-back apply"
            );
        }
        // Without failures it applies, and a failure during undo puts the applied files back.
        apply(&root, &plan, "test", &root, &Recorder::default()).unwrap();
        let applied = etc_files(&root);
        assert_ne!(applied, before);
        for fail_at in 0..plan.files.len() {
            let fs = FailingFs {
                real: &root,
                fail_at,
                calls: Cell::new(0),
            };
            assert!(undo(&root, &fs, &Recorder::default()).is_err());
            assert_eq!(etc_files(&root), applied, "undo failure at {fail_at}");
        }
        undo(&root, &root, &Recorder::default()).unwrap();
        assert_eq!(etc_files(&root), before);
    }

    #[test]
    fn a_file_changed_after_planning_aborts_the_apply() {
        let (_dir, root) = vfiokit_fakesys::copy_recorded("elitedesk-800-g4/fresh").unwrap();
        let plan = seed_plan(&root);
        let modules = root.etc("modules");
        let mut text = std::fs::read_to_string(&modules).unwrap();
        text.push_str("loop\n");
        std::fs::write(&modules, &text).unwrap();
        let before = etc_files(&root);
        let err = apply(&root, &plan, "test", &root, &Recorder::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("file changed by other user? Try again."),
            "{err}"
        );
        assert_eq!(etc_files(&root), before);
        assert!(!journal_path(&root).exists());
    }

    #[test]
    fn commands_run_only_on_the_real_root_and_undo_refuses_after_a_later_edit() {
        let (_dir, root) = vfiokit_fakesys::copy_recorded("elitedesk-800-g4/fresh").unwrap();
        let plan = seed_plan(&root);
        let runner = Recorder::default();
        let journal = apply(&root, &plan, "test", &root, &runner).unwrap();
        assert!(
            runner.0.borrow().is_empty(),
            "commands ran on a recorded root"
        );
        let argv: Vec<String> = journal.commands.iter().map(|c| c.argv.join(" ")).collect();
        assert_eq!(argv, ["update-initramfs -u -k all", "update-grub"]);
        assert!(journal.commands.iter().all(|c| !c.ran));
        std::fs::write(root.etc("modules"), "edited by hand\n").unwrap();
        let err = undo(&root, &root, &runner).unwrap_err().to_string();
        assert!(err.contains("changed since"), "{err}");
        assert_eq!(
            std::fs::read_to_string(root.etc("modules")).unwrap(),
            "edited by hand\n"
        );
    }
}
