//! Whole trees at once: walk the inputs, plan one job per file, run the jobs on one rayon pool.
//!
//! A batch has two steps:
//!
//! 1. [`plan`] walks every input (files and directories, mixed) and decides, per file, where
//!    its output goes and whether to process it at all. Nothing is written. Files that are
//!    not processed get a [`Skip`] reason (output exists, symbolic link, FIFO, not `.age`, ...);
//!    what cannot be read gets a [`FileError`].
//! 2. [`run`] processes the jobs on the current rayon pool: many small files side by side, a
//!    large one split into chunks across the pool like a single file (the per-file parallel
//!    code nests inside the pool's work stealing). The file key is unwrapped
//!    once per file. One failing file never stops the others; each gets a [`Report`].
//!
//! Outputs appear whole or not at all: each is written to a temporary file beside its target
//! (`.NAME.XXXXXX.seal-partial`, mode 0600, exclusively locked while written), and renamed
//! into place without replacing an existing file unless `force`, once its bytes are on the
//! disk. Outputs reach the disk in groups (group commit): the bytes of a group's files, then
//! their renames, then one sync of each directory; only then are they reported done and
//! their sources removed. A run first removes
//! the temporary files that an earlier run left behind (after a SIGKILL or a power loss);
//! one still locked by a live process is left alone. The caller can track temporary files
//! through an [`Observer`], e.g. to remove them when a signal stops the process.
//!
//! Safety rules of the walk: symbolic links are not followed unless
//! [`Options::follow_symlinks`], and then never to a target outside the input root (a link
//! is reported as a [`Skip`] that says whether following links would take it); special
//! files are skipped; an output directory inside an input tree is not walked; file names are
//! kept as bytes ([`std::ffi::OsStr`]), UTF-8 or not. Outputs are only ever written inside
//! the output directory, whose subdirectories are created by this module and never followed
//! through a symbolic link: each output directory is opened once (`Dirs`), below the
//! root from its parent's handle, and every output is created, renamed and removed relative
//! to its directory's handle (`Dir`), so that a directory swapped for a link while the batch
//! runs takes nothing elsewhere. `remove_source` removes an input through a handle of its
//! directory, and only if its name still refers to the file that was processed.
//!
//! This module never prints, exits or looks at a terminal: progress and results reach the
//! caller through [`Observer`] and the returned reports.
//!
//! ```
//! use seal::batch::{self, Direction, Keys, Options};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir(dir.path().join("inbox"))?;
//! std::fs::write(dir.path().join("inbox/report.csv"), b"a,b\n1,2\n")?;
//!
//! let server = seal::x25519::Identity::generate();
//! let recipient = server.to_public();
//! let mut options = Options::new(Direction::Seal);
//! options.output_dir = Some(dir.path().join("sealed"));
//! let plan = batch::plan(&[dir.path().join("inbox")], &options);
//! let reports = batch::run(plan, Keys::Recipients(&[&recipient]), &options, &());
//! assert!(reports.iter().all(|r| r.outcome.is_done()));
//! assert!(dir.path().join("sealed/inbox/report.csv.age").is_file());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::keys::recipient::{Identity, Recipient};
use crate::signing::sender::{Policy, Verdict};
use crate::signing::sshsig::SigningKey;

mod ahead;
pub(crate) mod run;
mod walk;

pub(crate) use crate::file::{is_partial_name, Dir};
pub use crate::file::{FileError, FileId, Temporaries};
pub use run::run;
pub use walk::plan;

/// Which way a batch goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Seal each file to `NAME.age`.
    Seal,
    /// Open each `NAME.age` to `NAME`.
    Unseal,
    /// Rotate each `NAME.age` in place: its header re-wrapped to new recipients
    /// ([`crate::rotate`]).
    Rewrap,
}

/// How a batch is planned and run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which way the batch goes.
    pub direction: Direction,
    /// Mirror every input under this directory (created if missing); `None`: each output goes
    /// beside its input.
    pub output_dir: Option<PathBuf>,
    /// Replace existing outputs instead of skipping their inputs.
    pub force: bool,
    /// Follow symbolic links inside the input trees, never to outside the input root.
    pub follow_symlinks: bool,
    /// Remove each input once its output is on the disk: written, synced, renamed into place
    /// and its directory synced.
    pub remove_source: bool,
    /// Read large inputs with positioned reads on every core (the fastest path); `false`
    /// streams them. (The name is historical: no input is mapped.)
    pub mmap: bool,
    /// Sealing: sign each output with this client key, `NAME.age.sig` beside it, and name the
    /// signer in its header (as `seal --sign-with`).
    pub signer: Option<Arc<SigningKey>>,
    /// Unsealing: check each file's signature (`NAME.age.sig`) against this policy, while
    /// it decrypts; the verdict goes in its [`Report::sender`].
    pub senders: Option<Policy>,
    /// Compute the SHA-256 of each output, read back before it is committed, into its
    /// [`Report::sha256`] (for an audit log).
    pub digest: bool,
}

impl Options {
    /// Outputs beside their inputs; no force, no symbolic links, sources kept, large inputs
    /// read on every core.
    pub fn new(direction: Direction) -> Options {
        Options {
            direction,
            output_dir: None,
            force: false,
            follow_symlinks: false,
            remove_source: false,
            mmap: true,
            signer: None,
            senders: None,
            digest: false,
        }
    }
}

/// The keys a batch runs with: recipients to seal to, or identities to open with.
#[derive(Clone, Copy)]
pub enum Keys<'a> {
    /// Seal every file to all of these.
    Recipients(&'a [&'a dyn Recipient]),
    /// Open every file with whichever of these unwraps its file key.
    Identities(&'a [&'a dyn Identity]),
    /// Rotate every file: its file key unwrapped by one of `identities` (the old server
    /// key), its header re-wrapped to `recipients`.
    Rewrap {
        /// The keys that open the files now.
        identities: &'a [&'a dyn Identity],
        /// The recipients to open them from now on.
        recipients: &'a [&'a dyn Recipient],
        /// Rotate a signed file whose signature does not check too, removing the
        /// signature ([`crate::rotate::rotate_path`]); else it fails.
        drop_bad_signatures: bool,
    },
}

impl<'a> Keys<'a> {
    /// The same keys with `identities` opening the files (recipients are kept as they are).
    pub(crate) fn with_identities<'b>(self, identities: &'b [&'b dyn Identity]) -> Keys<'b>
    where
        'a: 'b,
    {
        match self {
            Keys::Recipients(recipients) => Keys::Recipients(recipients),
            Keys::Identities(_) => Keys::Identities(identities),
            Keys::Rewrap {
                recipients,
                drop_bad_signatures,
                ..
            } => Keys::Rewrap {
                identities,
                recipients,
                drop_bad_signatures,
            },
        }
    }
}

impl Keys<'_> {
    /// The direction these keys go.
    pub fn direction(&self) -> Direction {
        match self {
            Keys::Recipients(_) => Direction::Seal,
            Keys::Identities(_) => Direction::Unseal,
            Keys::Rewrap { .. } => Direction::Rewrap,
        }
    }
}

/// One file to process.
#[derive(Debug, Clone)]
pub struct Job {
    /// The input file.
    pub source: PathBuf,
    /// Where its output goes.
    pub output: PathBuf,
    /// The input's size in bytes, when planned.
    pub len: u64,
    /// Whether opening `source` may follow a symbolic link: for inputs named by the caller,
    /// and with [`Options::follow_symlinks`]; otherwise a link swapped in after planning is
    /// refused.
    pub follow: bool,
}

/// What [`plan`] decided: the jobs to run and the files left out.
#[derive(Debug, Default)]
pub struct Plan {
    /// Files to process, in walk order (each directory's entries sorted by name).
    pub jobs: Vec<Job>,
    /// Files not to process, with the reason; inputs that could not be read.
    pub left_out: Vec<Report>,
    /// Output directories, parents first: created by [`run`] if missing, and scanned for
    /// temporary files left by an earlier run.
    pub output_dirs: Vec<PlannedDir>,
    /// The directories the inputs are in, parents first, each with its identity when the
    /// walk found it: each file is opened from its directory's handle, and that directory
    /// must still be the one the walk found.
    pub input_dirs: Vec<(PlannedDir, FileId)>,
}

/// A directory of a [`Plan`]: where outputs go, or where inputs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDir {
    /// Where it is.
    pub path: PathBuf,
    /// The operator named it (`-o`, an input tree, a directory input written beside, the
    /// directory of a file input), or the walk reached it through a symbolic link it was
    /// asked to follow: it is opened by its path, following symbolic links. Otherwise it is
    /// opened from its parent's handle, never through a link.
    pub named: bool,
}

impl Plan {
    /// Total input bytes of the jobs.
    pub fn total_bytes(&self) -> u64 {
        self.jobs.iter().map(|job| job.len).sum()
    }
}

/// What happened to one file.
#[derive(Debug)]
pub struct Report {
    /// The input file.
    pub source: PathBuf,
    /// Its output path, when it has one.
    pub output: Option<PathBuf>,
    /// The input's size in bytes (0 when unknown).
    pub bytes: u64,
    /// Processed, skipped or failed.
    pub outcome: Outcome,
    /// Who sent it, for a file opened under [`Options::senders`].
    pub sender: Option<Verdict>,
    /// The SHA-256 of its output, for a file done under [`Options::digest`].
    pub sha256: Option<[u8; 32]>,
}

/// Processed, skipped or failed.
#[derive(Debug)]
pub enum Outcome {
    /// The output is on the disk: written, synced, renamed into place and its directory
    /// synced (and the source removed, if asked).
    Done,
    /// Not processed, for a reason that is not an error.
    Skipped(Skip),
    /// Processing failed; no output was left behind (except after [`FileError::RemoveSource`],
    /// where the output is complete and the source is still there).
    Failed(FileError),
}

impl Outcome {
    /// Whether the file was processed.
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done)
    }
}

/// Why a file was not processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Skip {
    /// Its output exists already (and `force` was not given).
    OutputExists,
    /// A symbolic link, not followed, that [`Options::follow_symlinks`] would follow.
    Symlink,
    /// A symbolic link to something outside the input root.
    SymlinkOutside,
    /// A symbolic link to a directory that contains it: following it would loop.
    SymlinkLoop,
    /// A symbolic link, not followed, whose target is missing or cannot be read (followed,
    /// it fails to read).
    SymlinkBroken,
    /// A FIFO, socket or device.
    Special,
    /// Unsealing: the name does not end in `.age` (or is only `.age`).
    NotAgeName,
    /// Sealing beside the inputs: the name ends in `.age` already.
    AgeName,
    /// A temporary file of this tool (`.NAME.XXXXXX.seal-partial`).
    Partial,
    /// Another input has the same output path.
    DuplicateOutput,
    /// The detached signature beside a sealed file (`NAME.age.sig`): not opened when
    /// unsealing, not sealed beside the inputs.
    Signature,
    /// The rotation record beside a rotated file (`NAME.age.rotated`): not opened when
    /// unsealing, not sealed beside the inputs.
    RotationRecord,
    /// Rotating: the old key does not open the file (rotated already, or sealed to another
    /// key), which is left as it is.
    NotOldKey,
}

impl Skip {
    /// A short stable identifier, for machine-readable reports.
    pub fn code(self) -> &'static str {
        match self {
            Skip::OutputExists => "output-exists",
            Skip::Symlink => "symlink",
            Skip::SymlinkOutside => "symlink-outside-root",
            Skip::SymlinkLoop => "symlink-loop",
            Skip::SymlinkBroken => "symlink-broken",
            Skip::Special => "special-file",
            Skip::NotAgeName => "not-age-name",
            Skip::AgeName => "age-name",
            Skip::Partial => "partial-file",
            Skip::DuplicateOutput => "duplicate-output",
            Skip::Signature => "signature",
            Skip::RotationRecord => "rotation-record",
            Skip::NotOldKey => "not-old-key",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Skip::OutputExists => "output exists",
            Skip::Symlink => "symbolic link, not followed",
            Skip::SymlinkOutside => "symbolic link to outside the input directory",
            Skip::SymlinkLoop => "symbolic link to a directory that contains it (a loop)",
            Skip::SymlinkBroken => "symbolic link to nothing (its target is missing or unreadable)",
            Skip::Special => "not a regular file (FIFO, socket or device)",
            Skip::NotAgeName => "name does not end in .age",
            Skip::AgeName => "already sealed (name ends in .age)",
            Skip::Partial => "temporary file of an interrupted run",
            Skip::DuplicateOutput => "another input has the same output path",
            Skip::Signature => "signature of a sealed file",
            Skip::RotationRecord => "rotation record of a sealed file",
            Skip::NotOldKey => {
                "the old key does not open it (rotated already, or sealed to another key)"
            }
        })
    }
}

/// Something that happened during [`run`], passed to [`Observer::event`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A job started.
    Started(&'a Job),
    /// Input bytes finished, from any job; a finished job's events add up to its size.
    Progress(u64),
    /// A file's final report: a job that finished, or a file left out when planned.
    Finished(&'a Report),
    /// A temporary file left by an earlier run was removed.
    RemovedPartial(&'a Path),
}

/// Hears what a batch does; called from the pool's worker threads. Every method has a
/// default that does nothing, and `()` is an observer that hears nothing. As
/// [`Temporaries`], it also hears of each temporary output file.
pub trait Observer: Temporaries {
    /// Something happened.
    fn event(&self, event: Event<'_>) {
        let _ = event;
    }
}

impl Observer for () {}

/// Counts over the reports of a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Files processed.
    pub done: u64,
    /// Files skipped.
    pub skipped: u64,
    /// Files that failed.
    pub failed: u64,
    /// Input bytes of the files processed.
    pub bytes: u64,
}

impl Summary {
    /// Counts `reports`.
    pub fn of<'a>(reports: impl IntoIterator<Item = &'a Report>) -> Summary {
        let mut summary = Summary::default();
        for report in reports {
            summary.add(report);
        }
        summary
    }

    /// Counts one more report.
    pub fn add(&mut self, report: &Report) {
        match report.outcome {
            Outcome::Done => {
                self.done += 1;
                self.bytes += report.bytes;
            }
            Outcome::Skipped(_) => self.skipped += 1,
            Outcome::Failed(_) => self.failed += 1,
        }
    }

    /// Input bytes per second over `elapsed`.
    pub fn throughput(&self, elapsed: Duration) -> f64 {
        self.bytes as f64 / elapsed.as_secs_f64().max(1e-9)
    }
}
