//! Applying a plan atomically, with a journal that `undo` restores from.
//!
//! Order: every file is re-read and compared with what the plan was built from (a change
//! underneath aborts, nothing written); the journal with the old bytes is written (mode 0600);
//! files are replaced one by one, atomically; a failure restores every file already written;
//! then the commands run — on a root other than `/` they are only recorded in the journal.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vfiokit_sysfs::{Error as SysError, SysRoot};

use crate::plan::{Plan, PlannedCommand};
use crate::{Error, Result};

/// File operations an apply needs. [`SysRoot`] implements them for real; tests wrap it to
/// inject failures or to end the process at a given write.
pub trait FileOps {
    /// The file's bytes, `None` when it does not exist.
    fn read(&self, path: &Path) -> std::result::Result<Option<Vec<u8>>, SysError>;
    /// Replaces (or creates) a file atomically, keeping its mode and owner.
    fn replace(&self, path: &Path, bytes: &[u8]) -> std::result::Result<(), SysError>;
    /// Replaces (or creates) a file atomically with `mode` (the journal: 0600).
    fn replace_private(
        &self,
        path: &Path,
        bytes: &[u8],
        mode: u32,
    ) -> std::result::Result<(), SysError>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> std::result::Result<(), SysError>;
}

impl FileOps for SysRoot {
    fn read(&self, path: &Path) -> std::result::Result<Option<Vec<u8>>, SysError> {
        self.read_bytes_opt(path)
    }
    /// Writes where `path` really is, refusing links that lead out of the root.
    fn replace(&self, path: &Path, bytes: &[u8]) -> std::result::Result<(), SysError> {
        self.replace_file(&writable(self, path)?, bytes)
    }
    fn replace_private(
        &self,
        path: &Path,
        bytes: &[u8],
        mode: u32,
    ) -> std::result::Result<(), SysError> {
        self.replace_file_private(&writable(self, path)?, bytes, mode)
    }
    fn remove(&self, path: &Path) -> std::result::Result<(), SysError> {
        match self.exists(path)? {
            true => self.remove_file(&self.write_target(path)?),
            false => Ok(()),
        }
    }
}

/// Where a write to `path` lands (links out of the root refused), its directory created.
fn writable(root: &SysRoot, path: &Path) -> std::result::Result<PathBuf, SysError> {
    let target = root.write_target(path)?;
    if let Some(dir) = target.parent() {
        root.create_dir_all(dir)?;
    }
    Ok(target)
}

/// An exclusive lock held while files change: `/var/lock/vfiokit.lock` under the root, plus any
/// lock files the caller names (Proxmox's `/var/lock/qemu-server/lock-<vmid>.conf` for a VM
/// config). Released on drop.
#[derive(Debug)]
pub struct Lock {
    _files: Vec<std::fs::File>,
}

/// Takes the lock of the root and the `extra` lock files (paths under the root), or says who
/// holds it.
pub fn lock(root: &SysRoot, extra: &[PathBuf]) -> Result<Lock> {
    let mut paths = vec![root.var_lock("vfiokit.lock")];
    paths.extend(extra.iter().cloned());
    let mut files = Vec::new();
    for path in paths {
        let target = writable(root, &path)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&target)
            .map_err(|err| Error::Lock {
                path: target.clone(),
                err,
            })?;
        match file.try_lock() {
            Ok(()) => files.push(file),
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked { path: target }),
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(Error::Lock { path: target, err });
            }
        }
    }
    Ok(Lock { _files: files })
}

/// Changing the real host writes root-owned files: refuse early without euid 0.
pub fn require_root(root: &SysRoot) -> Result<()> {
    if root.is_host() && vfiokit_sysfs::effective_uid().is_some_and(|uid| uid != 0) {
        return Err(Error::NotRoot);
    }
    Ok(())
}

/// What [`begin`] found and did.
#[derive(Debug)]
pub struct Prepared {
    /// The lock, held until dropped (`None` for a dry run, which writes nothing).
    pub lock: Option<Lock>,
    /// An interrupted apply that was rolled back first (only when applying).
    pub recovered: Option<Recovery>,
    /// A dry run's warnings: an interrupted apply that the next apply or undo rolls back, or a
    /// journal that cannot be read. A dry run never fails on them.
    pub warnings: Vec<String>,
}

/// What every changing command does first. When applying: check euid 0 on `/`, take the lock
/// (with the `extra` lock files), roll back an interrupted apply. For a dry run: only look, and
/// warn about an interrupted apply or an unreadable journal.
pub fn begin(
    root: &SysRoot,
    extra: &[PathBuf],
    applying: bool,
    fs: &dyn FileOps,
) -> Result<Prepared> {
    if !applying {
        let warnings = match read_journal(root) {
            Ok(Some(j)) if j.state == JournalState::Applying => vec![format!(
                "an earlier apply was interrupted ({}); the next apply or undo rolls it back first",
                journal_path(root).display()
            )],
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("{e}; an apply or undo will stop on it")],
        };
        return Ok(Prepared {
            lock: None,
            recovered: None,
            warnings,
        });
    }
    require_root(root)?;
    let lock = lock(root, extra)?;
    let recovered = recover(root, fs)?;
    Ok(Prepared {
        lock: Some(lock),
        recovered,
        warnings: Vec::new(),
    })
}

/// An interrupted apply, rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The command that was interrupted.
    pub command: String,
    /// The files put back (relative to the root); files never written are not listed.
    pub restored: Vec<PathBuf>,
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an interrupted `{}` was rolled back", self.command)?;
        if !self.restored.is_empty() {
            let names: Vec<String> = self
                .restored
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            write!(f, ": restored {}", names.join(", "))?;
        }
        Ok(())
    }
}

/// Finishes what an interrupted apply left: a journal still in state `applying` means the
/// process died between two writes. Every file it names is put back to its old content (files
/// already back, or never written, are left alone); a file changed by someone else since stops
/// the recovery. Returns what was done, or `None` when nothing was interrupted.
pub fn recover(root: &SysRoot, fs: &dyn FileOps) -> Result<Option<Recovery>> {
    let Some(mut journal) = read_journal(root)? else {
        return Ok(None);
    };
    if journal.state != JournalState::Applying {
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
            return Err(Error::RecoveryConflict {
                path,
                command: journal.command.clone(),
                journal: journal_path(root),
            });
        }
        match &f.old {
            Some(old) => fs.replace(&path, old.as_bytes())?,
            None => fs.remove(&path)?,
        }
        restored.push(f.path.clone());
    }
    journal.state = JournalState::RolledBack;
    write_journal(root, fs, &journal)?;
    Ok(Some(Recovery {
        command: journal.command,
        restored,
    }))
}

/// Runs the plan's commands on the real host.
pub trait Runner {
    /// Runs `argv`; `Ok(false)` when it exits non-zero.
    fn run(&self, argv: &[String]) -> std::io::Result<bool>;
}

/// Runs commands with `std::process::Command`.
#[derive(Debug, Clone, Copy, Default)]
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

/// Where an apply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JournalState {
    /// Files are being written; seen after the fact, the process died part-way.
    Applying,
    /// Every file written and every command run (or recorded).
    Applied,
    /// `undo` restored the files.
    Undone,
    /// An interrupted apply was rolled back.
    RolledBack,
}

/// What the last apply changed, written under the root before any file is touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The command line that applied (`setup-host --device 0000:00:02.0`).
    pub command: String,
    /// Where the apply is.
    pub state: JournalState,
    /// The files, in the order written.
    pub files: Vec<JournalFile>,
    /// The commands, in the order run (or recorded).
    pub commands: Vec<JournalCommand>,
}

/// `/var/lib/vfiokit/journal.json` under the root.
pub fn journal_path(root: &SysRoot) -> PathBuf {
    root.var_lib("vfiokit/journal.json")
}

fn write_journal(root: &SysRoot, fs: &dyn FileOps, journal: &Journal) -> Result<()> {
    let text = serde_json::to_string_pretty(journal).map_err(Error::Journal)?;
    fs.replace_private(&journal_path(root), text.as_bytes(), 0o600)?;
    Ok(())
}

/// Reads the journal of the last apply, if any.
pub fn read_journal(root: &SysRoot) -> Result<Option<Journal>> {
    let path = journal_path(root);
    let Some(bytes) = root.read_bytes_opt(&path)? else {
        return Ok(None);
    };
    let journal =
        serde_json::from_slice(&bytes).map_err(|err| Error::CorruptJournal { path, err })?;
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
) -> Result<Journal> {
    for f in &plan.files {
        let path = root.path(&f.path);
        let now = fs.read(&path)?;
        if now.as_deref() != f.old.as_deref().map(str::as_bytes) {
            return Err(Error::ChangedSincePlan { path });
        }
    }
    let mut journal = Journal {
        command: command.to_string(),
        state: JournalState::Applying,
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
    write_journal(root, fs, &journal)?;
    for (i, f) in journal.files.iter().enumerate() {
        if let Err(cause) = fs.replace(&root.path(&f.path), f.new.as_bytes()) {
            let failed = roll_back(root, fs, &journal.files[..i]);
            if failed.is_empty() {
                root.remove_file(&journal_path(root))?;
                return Err(Error::RolledBack { cause });
            }
            return Err(Error::RollbackFailed {
                cause,
                failed,
                journal: journal_path(root),
            });
        }
    }
    journal.commands = run_commands(root, &plan.commands, runner)?;
    journal.state = JournalState::Applied;
    write_journal(root, fs, &journal)?;
    Ok(journal)
}

/// Runs the commands on the real host; elsewhere records them as not run.
fn run_commands(
    root: &SysRoot,
    commands: &[PlannedCommand],
    runner: &dyn Runner,
) -> Result<Vec<JournalCommand>> {
    let mut done = Vec::new();
    for c in commands {
        let ran = if root.is_host() {
            let ok = runner.run(&c.argv).map_err(|err| Error::CommandStart {
                argv: c.argv.clone(),
                err,
            })?;
            if !ok {
                return Err(Error::CommandFailed {
                    argv: c.argv.clone(),
                });
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
/// on a root other than `/`). Refuses when a file changed since the apply. An interrupted apply
/// is not undone here: [`recover`] rolls it back.
pub fn undo(root: &SysRoot, fs: &dyn FileOps, runner: &dyn Runner) -> Result<Journal> {
    let Some(mut journal) = read_journal(root)? else {
        return Err(Error::NothingToUndo {
            path: journal_path(root),
        });
    };
    if matches!(
        journal.state,
        JournalState::Undone | JournalState::RolledBack
    ) {
        return Err(Error::AlreadyUndone {
            command: journal.command,
            state: journal.state,
        });
    }
    for f in &journal.files {
        let path = root.path(&f.path);
        let now = fs.read(&path)?;
        if now.as_deref() != Some(f.new.as_bytes()) {
            return Err(Error::ChangedSinceApply {
                path,
                command: journal.command,
            });
        }
    }
    for (i, f) in journal.files.iter().enumerate() {
        let path = root.path(&f.path);
        let result = match &f.old {
            Some(old) => fs.replace(&path, old.as_bytes()),
            None => fs.remove(&path),
        };
        if let Err(cause) = result {
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
                return Err(Error::UndoStopped { cause });
            }
            return Err(Error::UndoStoppedHalfway { cause, failed });
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
    journal.state = JournalState::Undone;
    write_journal(root, fs, &journal)?;
    Ok(journal)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// Fails the `fail_at`-th replace or remove (0-based) of a file, counting across the whole
    /// apply; the journal's writes pass.
    struct FailingFs<'a> {
        real: &'a SysRoot,
        fail_at: usize,
        calls: Cell<usize>,
    }

    impl FailingFs<'_> {
        fn tick(&self, path: &Path) -> std::result::Result<(), SysError> {
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
        fn read(&self, path: &Path) -> std::result::Result<Option<Vec<u8>>, SysError> {
            self.real.read(path)
        }
        fn replace(&self, path: &Path, bytes: &[u8]) -> std::result::Result<(), SysError> {
            self.tick(path)?;
            self.real.replace(path, bytes)
        }
        fn replace_private(
            &self,
            path: &Path,
            bytes: &[u8],
            mode: u32,
        ) -> std::result::Result<(), SysError> {
            self.real.replace_private(path, bytes, mode)
        }
        fn remove(&self, path: &Path) -> std::result::Result<(), SysError> {
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

    const FILES: [&str; 3] = [
        "etc/default/grub",
        "etc/modules",
        "etc/modprobe.d/vfio.conf",
    ];

    /// A root with two existing files and a plan that changes both and creates a third.
    fn fixture() -> (tempfile::TempDir, SysRoot, Plan) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/default")).unwrap();
        std::fs::write(
            dir.path().join(FILES[0]),
            "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(FILES[1]), "loop\n").unwrap();
        let root = SysRoot::new(dir.path()).unwrap();
        let mut plan = Plan::default();
        plan.edit(
            FILES[0],
            Some("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n".into()),
            "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet iommu=pt\"\n".into(),
            vec![],
        );
        plan.edit(
            FILES[1],
            Some("loop\n".into()),
            "loop\nvfio\n".into(),
            vec![],
        );
        plan.edit(
            FILES[2],
            None,
            "options vfio-pci ids=8086:3e92\n".into(),
            vec![],
        );
        plan.command(&["update-initramfs", "-u", "-k", "all"], "initramfs");
        plan.command(&["update-grub"], "grub");
        (dir, root, plan)
    }

    fn etc_files(root: &SysRoot) -> Vec<Option<Vec<u8>>> {
        FILES
            .iter()
            .map(|p| root.read_bytes_opt(&root.path(p)).unwrap())
            .collect()
    }

    #[test]
    fn a_failure_at_any_write_leaves_every_file_unchanged() {
        let (_dir, root, plan) = fixture();
        let before = etc_files(&root);
        for fail_at in 0..plan.files.len() {
            let fs = FailingFs {
                real: &root,
                fail_at,
                calls: Cell::new(0),
            };
            let err = apply(&root, &plan, "test", &fs, &Recorder::default()).unwrap_err();
            assert!(matches!(err, Error::RolledBack { .. }), "{err}");
            assert!(err.to_string().contains("injected failure"), "{err}");
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
            let err = undo(&root, &fs, &Recorder::default()).unwrap_err();
            assert!(matches!(err, Error::UndoStopped { .. }), "{err}");
            assert_eq!(etc_files(&root), applied, "undo failure at {fail_at}");
        }
        let journal = undo(&root, &root, &Recorder::default()).unwrap();
        assert_eq!(journal.state, JournalState::Undone);
        assert_eq!(etc_files(&root), before);
        let err = undo(&root, &root, &Recorder::default()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::AlreadyUndone {
                    state: JournalState::Undone,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_file_changed_after_planning_aborts_the_apply() {
        let (_dir, root, plan) = fixture();
        std::fs::write(root.etc("modules"), "loop\nkvm\n").unwrap();
        let before = etc_files(&root);
        let err = apply(&root, &plan, "test", &root, &Recorder::default()).unwrap_err();
        assert!(
            matches!(&err, Error::ChangedSincePlan { path } if path.ends_with("etc/modules")),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("file changed by other user? Try again."),
            "{err}"
        );
        assert_eq!(etc_files(&root), before);
        assert!(!journal_path(&root).exists());
    }

    #[test]
    fn commands_run_only_on_the_real_root_and_undo_refuses_after_a_later_edit() {
        let (_dir, root, plan) = fixture();
        let runner = Recorder::default();
        let journal = apply(&root, &plan, "test", &root, &runner).unwrap();
        assert!(
            runner.0.borrow().is_empty(),
            "commands ran on a recorded root"
        );
        let argv: Vec<String> = journal.commands.iter().map(|c| c.argv.join(" ")).collect();
        assert_eq!(argv, ["update-initramfs -u -k all", "update-grub"]);
        assert!(journal.commands.iter().all(|c| !c.ran));
        let text = std::fs::read_to_string(journal_path(&root)).unwrap();
        assert!(text.contains("\"state\": \"applied\""), "{text}");
        std::fs::write(root.etc("modules"), "edited by hand\n").unwrap();
        let err = undo(&root, &root, &runner).unwrap_err();
        assert!(matches!(err, Error::ChangedSinceApply { .. }), "{err}");
        assert_eq!(
            std::fs::read_to_string(root.etc("modules")).unwrap(),
            "edited by hand\n"
        );
    }

    #[test]
    fn a_dry_run_warns_about_a_corrupt_journal_and_an_apply_stops_on_it() {
        let (_dir, root, _plan) = fixture();
        std::fs::create_dir_all(root.var_lib("vfiokit")).unwrap();
        std::fs::write(journal_path(&root), "{ not json").unwrap();
        let dry = begin(&root, &[], false, &root).unwrap();
        assert!(dry.lock.is_none());
        assert_eq!(dry.warnings.len(), 1);
        assert!(
            dry.warnings[0].contains("not a vfiokit journal"),
            "{:?}",
            dry.warnings
        );
        assert!(
            !root.var_lock("vfiokit.lock").exists(),
            "a dry run wrote a lock"
        );
        let err = begin(&root, &[], true, &root).unwrap_err();
        assert!(matches!(err, Error::CorruptJournal { .. }), "{err}");
    }

    #[test]
    fn a_second_lock_on_the_same_root_is_refused() {
        let (_dir, root, _plan) = fixture();
        let vm = root.var_lock("qemu-server/lock-100.conf");
        let held = lock(&root, std::slice::from_ref(&vm)).unwrap();
        let err = lock(&root, &[]).unwrap_err();
        assert!(
            matches!(&err, Error::Locked { path } if path.ends_with("vfiokit.lock")),
            "{err}"
        );
        drop(held);
        let _first = lock(&root, &[]).unwrap();
        let err = lock(&root, &[]).unwrap_err();
        assert!(err.to_string().contains("vfiokit.lock is locked"), "{err}");
    }
}
