//! Plans of file edits and commands, shown as diffs, applied atomically with a journal, undone.
//!
//! A [`Plan`] is everything a command would change under a host root: whole-file edits that hold
//! the exact bytes they were planned from and the new bytes, the reason for each changed line,
//! commands to run afterwards (with their reason) and notes. Building one has no side effects;
//! [`Plan::render`] shows it as unified diffs.
//!
//! [`apply`] makes it real, in this order: every file is re-read and compared with the bytes the
//! plan was built from (a change underneath aborts, nothing written); the [`Journal`] with the old
//! bytes is written (mode 0600) in state [`JournalState::Applying`]; files are replaced one by one,
//! atomically; a failure restores every file already written; then the commands run — on a root
//! other than `/` they are only recorded. [`undo`] restores the last apply byte for byte, and
//! [`recover`] finishes an apply whose process died between two writes. [`begin`] does what every
//! changing command does first: check euid 0 on `/`, take the per-root [`Lock`], recover.
//!
//! The engine knows nothing of VFIO, PCI or Proxmox: the rules that fill a plan live elsewhere.
//! File operations go through [`FileOps`] and commands through [`Runner`], so tests inject
//! failures and crashes without any switch in the shipped code path.
//!
//! ```
//! use vfiokit_plan::{Plan, apply, undo, SystemRunner};
//! use vfiokit_sysfs::SysRoot;
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir_all(dir.path().join("etc"))?;
//! std::fs::write(dir.path().join("etc/modules"), "loop\n")?;
//! let root = SysRoot::new(dir.path())?;
//!
//! let mut plan = Plan::default();
//! plan.edit("etc/modules", Some("loop\n".into()), "loop\nvfio\n".into(), vec!["vfio: the VFIO core".into()]);
//! assert!(plan.render().contains("+vfio\n"));
//!
//! let journal = apply(&root, &plan, "example", &root, &SystemRunner)?;
//! assert_eq!(std::fs::read_to_string(dir.path().join("etc/modules"))?, "loop\nvfio\n");
//! assert_eq!(journal.files.len(), 1);
//! undo(&root, &root, &SystemRunner)?;
//! assert_eq!(std::fs::read_to_string(dir.path().join("etc/modules"))?, "loop\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod apply;
mod plan;

use std::path::PathBuf;

pub use apply::{
    FileOps, Journal, JournalCommand, JournalFile, JournalState, Lock, Prepared, Recovery, Runner,
    SystemRunner, apply, begin, journal_path, lock, read_journal, recover, require_root, undo,
};
pub use plan::{FileEdit, Plan, PlannedCommand, diff, shell_words};

/// What can go wrong while applying, undoing or recovering.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file under the root failed.
    #[error(transparent)]
    Sys(#[from] vfiokit_sysfs::Error),
    /// A file changed between planning and applying; nothing was written.
    #[error(
        "{}: file changed by other user? Try again. (it changed after the plan was made; nothing was written)",
        path.display()
    )]
    ChangedSincePlan {
        /// The file.
        path: PathBuf,
    },
    /// A write failed part-way; every file written before it was put back.
    #[error("{cause}; every file written before it was restored, nothing changed")]
    RolledBack {
        /// The failed write.
        cause: vfiokit_sysfs::Error,
    },
    /// A write failed part-way and putting back the earlier files failed too.
    #[error("{cause}; restoring the files written before it failed too: {}. The journal {} holds their old content", failed.join("; "), journal.display())]
    RollbackFailed {
        /// The failed write.
        cause: vfiokit_sysfs::Error,
        /// What could not be restored.
        failed: Vec<String>,
        /// The journal with the old bytes.
        journal: PathBuf,
    },
    /// A command could not be started.
    #[error("cannot run {}: {err}", argv.join(" "))]
    CommandStart {
        /// The command.
        argv: Vec<String>,
        /// Why.
        #[source]
        err: std::io::Error,
    },
    /// A command exited non-zero after the files were written.
    #[error("{} failed; the files are written (undo restores them); fix the cause and run it by hand", argv.join(" "))]
    CommandFailed {
        /// The command.
        argv: Vec<String>,
    },
    /// Another process holds the lock.
    #[error(
        "{} is locked: another vfiokit (or Proxmox, for a VM config) is changing this host; try again when it has finished",
        path.display()
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock {}: {err}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        err: std::io::Error,
    },
    /// Changing the real host needs euid 0.
    #[error("changing / writes root-owned files and runs system commands: run as root (euid 0)")]
    NotRoot,
    /// The journal is not valid JSON of a journal.
    #[error("{}: not a vfiokit journal: {err}", path.display())]
    CorruptJournal {
        /// The journal.
        path: PathBuf,
        /// Why.
        #[source]
        err: serde_json::Error,
    },
    /// There is no journal to undo.
    #[error("nothing to undo: no journal at {}", path.display())]
    NothingToUndo {
        /// Where the journal would be.
        path: PathBuf,
    },
    /// The last apply was already undone, or rolled back after an interruption.
    #[error("the last apply ({command}) is already {}: nothing to undo", match state { JournalState::RolledBack => "rolled back", _ => "undone" })]
    AlreadyUndone {
        /// The command that applied.
        command: String,
        /// Its state.
        state: JournalState,
    },
    /// A file changed after the apply wrote it; undo would lose that change.
    #[error("{}: changed since `{command}` wrote it; undo would lose that change, nothing was restored", path.display())]
    ChangedSinceApply {
        /// The file.
        path: PathBuf,
        /// The command that applied.
        command: String,
    },
    /// A write failed during undo; the files it had restored were put back as the apply left them.
    #[error("{cause}; undo stopped and left every file as the apply wrote it")]
    UndoStopped {
        /// The failed write.
        cause: vfiokit_sysfs::Error,
    },
    /// A write failed during undo and putting back failed too.
    #[error("{cause}; undo stopped, and putting back failed for: {}", failed.join("; "))]
    UndoStoppedHalfway {
        /// The failed write.
        cause: vfiokit_sysfs::Error,
        /// What could not be put back.
        failed: Vec<String>,
    },
    /// An interrupted apply left a file that has changed since; recovery stops.
    #[error("{}: an interrupted `{command}` left this file, and it changed since; compare it with the journal {} and fix it by hand", path.display(), journal.display())]
    RecoveryConflict {
        /// The file.
        path: PathBuf,
        /// The interrupted command.
        command: String,
        /// The journal.
        journal: PathBuf,
    },
    /// The journal could not be serialized (cannot happen for valid UTF-8 content).
    #[error("cannot write the journal: {0}")]
    Journal(#[source] serde_json::Error),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
