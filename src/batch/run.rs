//! Running a plan: every job on the current rayon pool, one report per file.
//!
//! Each file goes through the per-file engine ([`crate::file`]), exactly as a single file
//! does: small files in memory, larger ones a run of chunks at a time on every thread of the
//! pool. Rayon's work stealing interleaves the two: while one large file's runs are being
//! processed, idle threads take other files.
//!
//! Outputs are committed in groups ([`crate::file::commit`]), as a database commits
//! transactions: the pool's threads hand each written output to a thread of its own, which
//! takes every output waiting, makes them durable together, renames them into place, syncs
//! their directories, and only then removes their sources (`remove_source`) and reports
//! them; meanwhile the pool writes on. The slower the disk, the more outputs wait and the
//! larger the next group: on tmpfs a group is a file or two, on a disk it is hundreds, and a
//! file costs a share of one `fdatasync` and one directory sync rather than one of each.

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};

use rayon::prelude::*;

use super::{Direction, Event, FileError, Job, Keys, Observer, Options, Outcome, PlannedDir};
use super::{Plan, Report, Skip};
use crate::engine::parallel::Progress;
use crate::error::DecryptError;
use crate::file::staging::{self, dir::parent};
use crate::file::{self, remove_source, Dir, Dirs, FileId, Source, Written};
use crate::rotate;
use crate::signing::sender::{Policy, Verdict};

/// Written outputs waiting for the committer at most; a thread of the pool with one more
/// waits for room. With a group being committed (at most [`GROUP`]) and one output a thread
/// being written, about 1,500 outputs are in flight. Each holds its temporary file open (and
/// its signature's) and its input: up to 4,700 descriptors, more than the usual soft limit of
/// 1,024, which the command line raises to the hard limit first; where the limit stays lower,
/// fewer ([`in_flight`]). The more outputs wait, the longer the pool writes on while a
/// group's syncs wait for the disk: 2,000 files of 4 KiB unsealed into journaled ext4 took
/// 0.86 of the time with 1,024 waiting in groups of 512 as with 128 in groups of 128, and
/// 0.94 with 512 in groups of 256 (paired, 9 runs each, `benches/disk.md`). Before the
/// signal clean-up let files be created side by side (`cli::interrupts`), four times 128
/// measured no faster.
const WAITING: usize = 1024;

/// Outputs committed together at most.
const GROUP: usize = 512;

/// Descriptors an output in flight holds at most: its temporary file, its signature's, its
/// input.
const FILES_PER_OUTPUT: u64 = 3;

/// Descriptors kept for everything else: the standard streams, the pool, the directory
/// handles of the inputs and of the outputs ([`crate::file::staging::dir::OPEN_HANDLES`]
/// each), an inbox's own.
const FILES_KEPT: u64 = 64 + 2 * crate::file::staging::dir::OPEN_HANDLES as u64;

/// Outputs waiting for the committer, and committed together, at most: [`WAITING`] and
/// [`GROUP`], or fewer where the limit on open files (`ulimit -n`; 256 by default on macOS)
/// would not hold them all.
pub(crate) fn in_flight() -> (usize, usize) {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let outputs = limit.map_or(u64::MAX, |limit| {
        limit.saturating_sub(FILES_KEPT) / FILES_PER_OUTPUT
    });
    let half = usize::try_from(outputs / 2).unwrap_or(usize::MAX).max(1);
    (half.min(WAITING), half.min(GROUP))
}

/// Runs `plan` on the current rayon pool and returns one report per file, the files left
/// out by the plan included, sorted by input path.
///
/// First the output directories are opened, each once (made below [`Options::output_dir`],
/// never through a symbolic link: see `Dirs`), and cleared of temporary files that an
/// earlier run left; then every job runs, writing only through those directory handles, and
/// the outputs are committed in groups while the pool writes on (see the module docs).
/// Last, the directories this run made for outputs that all failed are removed again, if
/// empty: a batch that writes nothing leaves no empty tree behind (an empty input directory
/// is still mirrored). `observer` hears each event as it happens.
pub fn run(plan: Plan, keys: Keys<'_>, options: &Options, observer: &dyn Observer) -> Vec<Report> {
    let Plan {
        jobs,
        left_out,
        output_dirs,
        input_dirs,
    } = plan;
    for report in &left_out {
        observer.event(Event::Finished(report));
    }
    let dirs = prepare_dirs(&output_dirs, options, observer);
    let mut inputs = Dirs::new(None);
    for (PlannedDir { path, named }, id) in &input_dirs {
        inputs.plan(path, *named, *id);
    }
    // Keys that unwrap many files at once (plugins) get every header first.
    let ahead = match keys {
        Keys::Identities(identities) | Keys::Rewrap { identities, .. } => {
            super::ahead::unwrap_ahead(identities, &jobs, &inputs)
        }
        Keys::Recipients(_) => None,
    };
    let ahead: Option<Vec<&dyn crate::Identity>> = ahead
        .as_ref()
        .map(|ahead| ahead.iter().map(|a| a as &dyn crate::Identity).collect());
    let keys = match &ahead {
        Some(ahead) => keys.with_identities(ahead),
        None => keys,
    };
    let senders = options.senders.clone().map(Arc::new);
    let tasks = jobs.par_iter().map(|job| {
        let dir = match dirs.get(&parent(&job.output)) {
            Some(Ok(dir)) => Ok(dir),
            Some(Err(broken)) => Err((broken.path().to_path_buf(), broken.error())),
            None => Err((
                parent(&job.output),
                io::Error::other("not among the planned output directories"),
            )),
        };
        Task {
            job: job.clone(),
            dir,
            input: TaskInput::In(&inputs),
            senders: senders.clone(),
        }
    });
    let reports = Collect::default();
    committing(keys, options, observer, &reports, |worker| {
        tasks.for_each_with(worker, |worker, task| worker.run(task));
    });
    let mut reports = reports
        .0
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let mut worked = HashSet::new();
    for job in &jobs {
        for dir in job.output.ancestors().skip(1) {
            if !worked.insert(dir) {
                break;
            }
        }
    }
    dirs.remove_empty_made(|dir| worked.contains(dir));
    reports.extend(left_out);
    reports.sort_by(|a, b| a.source.cmp(&b.source));
    reports
}

/// A job to run through [`stream`]: where its output goes, and its input.
pub(crate) struct Task<'d> {
    pub job: Job,
    /// The output's directory, open; or the directory that could not be opened, and why.
    pub dir: Result<Dir, (PathBuf, io::Error)>,
    pub input: TaskInput<'d>,
    /// Unsealing: the sender policy to check it against ([`Options::senders`], which the
    /// inbox watcher can replace while it runs).
    pub senders: Option<Arc<Policy>>,
}

/// The input of a [`Task`].
pub(crate) enum TaskInput<'d> {
    /// Opened (and locked, by the inbox watcher) by the caller, which keeps it open until the
    /// job is settled.
    Opened(Box<Opened>),
    /// To be opened here ([`open_input`]) from its directory's handle among these (the
    /// planned input directories), and closed as soon as it is read.
    In(&'d Dirs),
}

/// An input as opened: the file, its metadata from `fstat`, and what removes it.
pub(crate) struct Opened {
    pub file: File,
    pub meta: Metadata,
    pub source: Source,
}

/// What a caller of [`stream`] does with each job once it is done or failed.
pub(crate) trait Settle: Sync {
    /// The outputs of a group of jobs, written, are about to be committed. Returns a file
    /// that must reach the disk before any of them goes into place (a journal's record of
    /// the commit): it is synced with their bytes ([`file::commit`]).
    fn committing(&self, jobs: &[(&Job, &Source)]) -> Option<File> {
        let _ = jobs;
        None
    }

    /// The file [`Settle::committing`] returned could not be synced; the commit went on.
    fn not_recorded(&self, error: io::Error) {
        let _ = error;
    }

    /// The outputs of a group of jobs, with their sources, are committed: called before any
    /// of the sources is removed ([`Options::remove_source`]).
    fn committed(&self, jobs: &[(&Job, &Source)]) {
        let _ = jobs;
    }

    /// A job's final report, made after its source was removed if asked; `source`: its
    /// input as opened, when it was.
    fn settled(&self, report: Report, source: Option<Opened>);

    /// Every job of a group is settled.
    fn group_settled(&self) {}
}

/// Collects the reports, as [`run`] returns them.
#[derive(Default)]
struct Collect(Mutex<Vec<Report>>);

impl Settle for Collect {
    fn settled(&self, report: Report, _: Option<Opened>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(report);
    }
}

/// Runs `body` with a [`Worker`] that processes tasks on whatever thread calls it, while a
/// thread of its own commits their outputs in groups (see the module docs); returns once
/// `body` has returned, every worker it handed out is dropped, and the last group is
/// committed. Each job's report goes to `observer` ([`Event::Finished`]), then to `settle`.
pub(crate) fn committing<'a, R>(
    keys: Keys<'a>,
    options: &'a Options,
    observer: &'a dyn Observer,
    settle: &dyn Settle,
    body: impl FnOnce(Worker<'a>) -> R,
) -> R {
    let (waiting, group_size) = in_flight();
    std::thread::scope(|scope| {
        let (to_commit, written) = mpsc::sync_channel::<Processed<'a>>(waiting);
        let committer = scope.spawn(move || {
            // A group placed, its directories not yet synced: with the next group's bytes
            // if one is waiting, alone otherwise.
            let mut placed: Option<Placing> = None;
            loop {
                let first = match placed {
                    Some(_) => written.try_recv().ok(),
                    None => match written.recv() {
                        Ok(first) => Some(first),
                        Err(_) => break,
                    },
                };
                let Some(first) = first else {
                    if let Some(before) = placed.take() {
                        let results = before.placed.finish();
                        settle_group(before.pending, results, options, observer, settle);
                    }
                    continue;
                };
                let mut group = vec![first];
                group.extend(written.try_iter().take(group_size - 1));
                placed = Some(place(group, placed.take(), options, observer, settle));
            }
        });
        let result = body(Worker {
            to_commit,
            keys,
            options,
            observer,
        });
        if let Err(panic) = committer.join() {
            std::panic::resume_unwind(panic);
        }
        result
    })
}

/// Processes tasks and hands their outputs to the committer of [`committing`]; one for each
/// thread (cloned), dropped when it has no more.
#[derive(Clone)]
pub(crate) struct Worker<'a> {
    to_commit: mpsc::SyncSender<Processed<'a>>,
    keys: Keys<'a>,
    options: &'a Options,
    observer: &'a dyn Observer,
}

impl Worker<'_> {
    /// Seals or opens `task`'s file, and hands it on to be committed (waiting for room, if
    /// [`WAITING`] outputs wait already).
    pub(crate) fn run(&self, task: Task) {
        self.observer.event(Event::Started(&task.job));
        let processed = process(task, self.keys, self.options, self.observer);
        // An error: the committer is gone (it panicked, and `committing` says so), and the
        // output is dropped, removed.
        let _ = self.to_commit.send(processed);
    }
}

/// A job done by the pool: its report, or its output written and waiting to be committed.
enum Processed<'a> {
    Reported(Report, Option<Opened>),
    Written(Pending, Written<'a>),
}

/// A job whose output is written: what its report needs once the output is committed.
struct Pending {
    job: Job,
    /// The input as opened, removed (`remove_source`) only once the output is committed.
    input: Opened,
    bytes: u64,
    sender: Option<Verdict>,
    /// Its signature was checked, and goes with it.
    signature: bool,
    sha256: Option<[u8; 32]>,
}

/// A group whose outputs are in place, their directories not yet synced
/// ([`file::Placed`]).
struct Placing {
    pending: Vec<Pending>,
    placed: file::Placed,
}

/// Commits the outputs of a group (steps 1 and 2 of [`file::commit`]), with the last steps of
/// the group `before` in the same wave of syncs, then settles `before`; returns this group,
/// placed. Each report is heard by `observer`, then settled.
fn place(
    group: Vec<Processed<'_>>,
    before: Option<Placing>,
    options: &Options,
    observer: &dyn Observer,
    settle: &dyn Settle,
) -> Placing {
    let mut pending = Vec::new();
    let mut written = Vec::new();
    for processed in group {
        match processed {
            Processed::Reported(report, input) => {
                observer.event(Event::Finished(&report));
                settle.settled(report, input);
            }
            Processed::Written(job, output) => {
                pending.push(job);
                written.push(output);
            }
        }
    }
    let jobs: Vec<(&Job, &Source)> = pending
        .iter()
        .map(|pending| (&pending.job, &pending.input.source))
        .collect();
    let record = match jobs.is_empty() {
        true => None,
        false => settle.committing(&jobs),
    };
    let (before, before_placed) = before.map(|b| (b.pending, b.placed)).unzip();
    let (placed, recorded, before_results) = file::place(written, record.as_ref(), before_placed);
    if let Some(Err(error)) = recorded {
        settle.not_recorded(error);
    }
    if let (Some(before), Some(results)) = (before, before_results) {
        settle_group(before, results, options, observer, settle);
    }
    Placing { pending, placed }
}

/// A group's outputs committed or failed (`committed`): tells `settle`, removes their sources
/// if asked, and reports each, heard by `observer`, then settled.
fn settle_group(
    pending: Vec<Pending>,
    committed: Vec<Result<(), FileError>>,
    options: &Options,
    observer: &dyn Observer,
    settle: &dyn Settle,
) {
    let done: Vec<(&Job, &Source)> = pending
        .iter()
        .zip(&committed)
        .filter(|(_, result)| result.is_ok())
        .map(|(pending, _)| (&pending.job, &pending.input.source))
        .collect();
    if !done.is_empty() {
        settle.committed(&done);
    }
    for (pending, result) in pending.into_iter().zip(committed) {
        let Pending {
            job,
            input,
            bytes,
            sender,
            signature,
            sha256,
        } = pending;
        let (bytes, outcome, sender, sha256) = match result {
            Ok(()) if options.remove_source => match remove_source(&input.source, signature) {
                Ok(()) => (bytes, Outcome::Done, sender, sha256),
                Err(e) => {
                    let error = FileError::RemoveSource(e);
                    (bytes, Outcome::Failed(error), sender, sha256)
                }
            },
            Ok(()) => (bytes, Outcome::Done, sender, sha256),
            Err(error) => (job.len, Outcome::Failed(error), None, None),
        };
        let report = Report {
            source: job.source,
            output: Some(job.output),
            bytes,
            outcome,
            sender,
            sha256,
        };
        observer.event(Event::Finished(&report));
        settle.settled(report, Some(input));
    }
    settle.group_settled();
}

/// The report of a job that failed with `error`.
fn failed(job: &Job, error: FileError) -> Report {
    reported(job, Outcome::Failed(error))
}

/// The report of a job that ended with `outcome` before its output was written.
fn reported(job: &Job, outcome: Outcome) -> Report {
    Report {
        source: job.source.clone(),
        output: Some(job.output.clone()),
        bytes: job.len,
        outcome,
        sender: None,
        sha256: None,
    }
}

/// Opens (and makes) the output directories and removes stale temporary files from them.
/// Directories for plaintext are made owner-only.
fn prepare_dirs(dirs: &[PlannedDir], options: &Options, observer: &dyn Observer) -> Dirs {
    // Beside the inputs, directories exist: none are made.
    let make = options
        .output_dir
        .as_ref()
        .map(|_| match options.direction {
            Direction::Unseal | Direction::Rewrap => 0o700,
            Direction::Seal => 0o777,
        });
    let mut opened = Dirs::new(make);
    for PlannedDir { path, named } in dirs {
        let Ok(dir) = opened.add(path, *named) else {
            continue;
        };
        match staging::remove_stale(&dir) {
            Ok(removed) => {
                for path in removed {
                    observer.event(Event::RemovedPartial(&path));
                }
            }
            Err(e) => opened.break_dir(path, &e),
        }
    }
    opened
}

/// Processes one job, reporting progress in input bytes that add up to `job.len`.
fn process<'a>(
    task: Task,
    keys: Keys<'_>,
    options: &Options,
    observer: &'a dyn Observer,
) -> Processed<'a> {
    let Task {
        job,
        dir,
        input,
        senders,
    } = task;
    let dir = match dir {
        Ok(dir) => dir,
        Err((path, error)) => {
            let error = FileError::Write { path, error };
            let input = match input {
                TaskInput::Opened(opened) => Some(*opened),
                TaskInput::In(_) => None,
            };
            return Processed::Reported(failed(&job, error), input);
        }
    };
    let done = AtomicU64::new(0);
    let tick = |n: u64| {
        done.fetch_add(n, Ordering::Relaxed);
        observer.event(Event::Progress(n));
    };
    let input = match input {
        TaskInput::Opened(input) => *input,
        TaskInput::In(inputs) => match open_input(&job, &dir, inputs) {
            Ok(input) => input,
            Err(error) => {
                if job.len > 0 {
                    observer.event(Event::Progress(job.len));
                }
                return Processed::Reported(failed(&job, error), None);
            }
        },
    };
    let senders = senders.as_deref();
    let result = one(
        &job,
        &dir,
        &input,
        (keys, senders),
        options,
        observer,
        &tick,
    );
    let rest = job.len.saturating_sub(done.load(Ordering::Relaxed));
    if rest > 0 {
        observer.event(Event::Progress(rest));
    }
    let (sender, written) = match result {
        Ok(done) => done,
        // Not for the old key: left as it is, rotated already or never its.
        Err(FileError::Decrypt(DecryptError::NoMatch { .. }))
            if options.direction == Direction::Rewrap =>
        {
            let report = reported(&job, Outcome::Skipped(Skip::NotOldKey));
            return Processed::Reported(report, Some(input));
        }
        Err(error) => return Processed::Reported(failed(&job, error), Some(input)),
    };
    let sha256 = match options.digest {
        true => match written.digest() {
            Ok(digest) => Some(digest),
            Err(error) => {
                let path = job.output.clone();
                let error = FileError::Write { path, error };
                return Processed::Reported(failed(&job, error), Some(input));
            }
        },
        false => None,
    };
    let pending = Pending {
        bytes: input.meta.len(),
        job,
        input,
        sender,
        signature: senders.is_some(),
        sha256,
    };
    Processed::Written(pending, written)
}

/// Seals or opens one file, `input`, with the per-file engine; returns who sent it under a
/// sender policy, and the output, written, to commit.
fn one<'a>(
    job: &Job,
    dir: &Dir,
    input: &Opened,
    (keys, senders): (Keys<'_>, Option<&Policy>),
    options: &Options,
    observer: &'a dyn Observer,
    tick: Progress<'_>,
) -> Result<(Option<Verdict>, Written<'a>), FileError> {
    let name = job.output.file_name().ok_or_else(|| FileError::Write {
        path: job.output.clone(),
        error: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
    })?;
    let output = file::Output::File(file::Target {
        dir,
        name,
        path: &job.output,
        force: options.force,
        temporaries: observer,
    });
    let from = file::Input::File(&input.file, &input.meta);
    match (keys, options.direction) {
        (Keys::Recipients(recipients), Direction::Seal) => {
            let encryptor = file::encryptor(recipients, options.signer.as_deref())?;
            let sealing = file::Sealing {
                encryptor,
                signer: options.signer.as_deref(),
                armor: false,
            };
            let written = file::seal(from, output, sealing, options.mmap, tick)?;
            Ok((None, written))
        }
        (Keys::Identities(identities), Direction::Unseal) => {
            let sender = file::sender_check(&job.source, senders)?;
            let opening = file::Opening { identities, sender };
            file::open(from, output, opening, options.mmap, tick)
        }
        (
            Keys::Rewrap {
                identities,
                recipients,
                drop_bad_signatures,
            },
            Direction::Rewrap,
        ) => {
            let target = file::Target {
                dir,
                name,
                path: &job.output,
                force: true,
                temporaries: observer,
            };
            let keys = rotate::Keys {
                identities,
                recipients,
                drop_bad_signatures,
            };
            let (dropped, written) = rotate::rotate(target, &input.file, &input.meta, keys)?;
            Ok((dropped.map(Verdict::Rejected), written))
        }
        _ => Err(FileError::WrongKeys),
    }
}

/// Opens a planned input from a handle of its directory (the output directory `beside`,
/// when the output goes beside it; otherwise its directory among `inputs`, which must still
/// be the one planned), without blocking (a FIFO swapped in after planning must not hang the
/// batch) and, unless the plan allows it, without following a symbolic link.
fn open_input(job: &Job, beside: &Dir, inputs: &Dirs) -> Result<Opened, FileError> {
    let dir_path = parent(&job.source);
    let dir = match dir_path == beside.path() {
        true => beside.clone(),
        false => match inputs.get(&dir_path) {
            Some(Ok(dir)) => dir,
            Some(Err(broken)) => return Err(FileError::Read(broken.error())),
            None => {
                let error = io::Error::other("not among the planned input directories");
                return Err(FileError::Read(error));
            }
        },
    };
    let name = job.source.file_name().ok_or(FileError::NotAFile)?;
    let file = dir.open_file(name, job.follow).map_err(FileError::Read)?;
    let meta = file.metadata().map_err(FileError::Read)?;
    if !meta.is_file() {
        return Err(FileError::NotAFile);
    }
    let source = Source {
        dir,
        name: name.to_os_string(),
        id: FileId::of_metadata(&meta),
        follow: job.follow,
    };
    Ok(Opened { file, meta, source })
}
