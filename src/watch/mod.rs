//! The server inbox: uploads opened as they arrive, each exactly once, until told to stop.
//!
//! [`watch`] mirrors the inbox into the output directory (`INBOX/a/b.age` becomes
//! `OUTDIR/a/b`), through the batch engine ([`crate::batch`]): every upload on one pool,
//! outputs committed in groups, the signature beside an upload (`NAME.age.sig`) checked with
//! it under a sender policy. Each settled upload is one [`Record`] to the [`Listener`]: the
//! audit log of the `unseal --watch` command, or an embedding server's own.
//!
//! - **When an upload is taken**: when its writer closes it (`IN_CLOSE_WRITE`) or it is
//!   renamed into the inbox, never while it is being written. Files found by a scan (at
//!   start-up, after the event queue overflowed, or every `poll` interval where the file
//!   system sends no events) are taken once unchanged for [`Options::settle`]. Names that
//!   uploads in progress wear (dot-files, `.part`, `.filepart`, `.tmp`) and names without
//!   `.age` are never taken. Under a sender policy, an upload waits for its signature for as
//!   long as it is settling.
//! - **Exactly once**: an upload is locked (`flock`) while it is processed, so that two
//!   watchers never both take it, and the journal in the state directory
//!   (`journal.rs`) records it before its output goes into place and once it is there, so
//!   that a restart after a crash at any point neither redoes nor loses it. Nothing but
//!   finished outputs, and hidden temporary files while they are written, appear in the
//!   output directory.
//! - **Bad uploads**: a corrupt, truncated, foreign or badly signed upload is moved with its
//!   signature to [`Options::quarantine`], with a JSON note of why beside it; without one,
//!   it is left and recorded once, not retried until it changes. A failure to write the
//!   output (a full disk) is recorded and retried at the next start.
//! - **Bounded**: a fixed number of uploads in flight, and of events waiting to be heard
//!   (`Events`); past that they wait in the kernel's queue, and what overflows either is
//!   found by a scan.
//! - **Stopping**: once told to stop, the uploads being opened are finished and those taken
//!   but not begun are left untouched for the next start.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};
use notify::{EventKind, EventKindMask, RecursiveMode, Watcher};
use rustix::fs::{flock, statat, AtFlags, FileType, FlockOperation};

use crate::batch::run::{committing, Opened, Settle, Task, TaskInput};
use crate::batch::{self, Direction, Event, Job, Keys, Observer, Outcome, Report, Skip};
use crate::file::Temporaries;
use crate::file::{remove_source, staging, Dir, Dirs, FileError, FileId, Source};
use crate::json::{self, json_string};
use crate::keys::recipient::Identity;
use crate::signing::sender::Policy;

mod journal;
mod quarantine;

use journal::{Journal, State, Upload};

/// Uploads handed to the pool and not yet settled, at most: as many as batch mode keeps in
/// flight, waiting for the committer and being committed (`batch::run::in_flight`), so that
/// the committer's groups fill as batch mode's do while the pool writes the next. Each holds
/// its upload open (and locked) and, once written, its temporary output, within the limit
/// on open files that sizes batch mode's. With 64 in flight, a burst of 10,000 uploads into
/// journaled ext4 drained at 0.51 of batch mode's rate, every group half full and so twice
/// as many rounds of `fdatasync`; with 256, at 0.72, then 0.67 once batch mode kept more
/// (`benches/watch.md`).
fn most_in_flight() -> usize {
    let (waiting, group) = crate::batch::run::in_flight();
    waiting + group
}

/// File-system events waiting to be heard, at most: as many as the kernel's own queue holds
/// by default (`fs.inotify.max_queued_events`), a few MiB.
const EVENTS_QUEUED: usize = 16_384;

/// The events of the inbox, as notify's thread hands them over: queued, at most
/// [`EVENTS_QUEUED`], and never waited for. An uploader can make events far faster than
/// uploads are opened (a file closed after writing, again and again, while the pool is busy
/// with large uploads); an event that finds the queue full is dropped, and the inbox is
/// scanned again instead, as after the kernel's queue overflowed. notify's thread never
/// blocks on the queue, so stopping the watcher never waits for it.
struct Events {
    queue: mpsc::SyncSender<notify::Result<notify::Event>>,
    /// An event was dropped since the last scan.
    missed: Arc<AtomicBool>,
}

impl Events {
    /// The handler to give notify, the queue it fills and the flag of what it dropped.
    fn new() -> (Events, Heard) {
        let (queue, events) = mpsc::sync_channel(EVENTS_QUEUED);
        let missed = Arc::new(AtomicBool::new(false));
        let heard = Heard {
            events,
            missed: Arc::clone(&missed),
        };
        (Events { queue, missed }, heard)
    }
}

impl notify::EventHandler for Events {
    fn handle_event(&mut self, event: notify::Result<notify::Event>) {
        if let Err(mpsc::TrySendError::Full(_)) = self.queue.try_send(event) {
            self.missed.store(true, Ordering::Release);
        }
    }
}

/// The hearing side of [`Events`].
struct Heard {
    events: mpsc::Receiver<notify::Result<notify::Event>>,
    missed: Arc<AtomicBool>,
}

impl Heard {
    /// Events were missed here or by the kernel: the inbox is to be scanned again, once.
    fn mark_missed(&self) {
        self.missed.store(true, Ordering::Release);
    }

    /// Whether events were missed since the last call ([`Heard::mark_missed`], or dropped
    /// by [`Events`]): the inbox must be scanned again.
    fn missed(&self) -> bool {
        self.missed.swap(false, Ordering::AcqRel)
    }
}

/// How often the watcher looks at what is settling, and at the stop flag.
const TICK: Duration = Duration::from_millis(100);

/// How [`watch`] runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The inbox to watch.
    pub inbox: PathBuf,
    /// Where the plaintext goes, mirroring the inbox.
    pub output: PathBuf,
    /// Where the watcher keeps its journal: outside the output directory, and shared by
    /// watchers of the same inbox.
    pub state: PathBuf,
    /// Move bad uploads here (on the inbox's file system); `None`: leave them.
    pub quarantine: Option<PathBuf>,
    /// Remove each upload (and its signature) once its output is in place.
    pub remove_source: bool,
    /// Check each upload's signature against this policy.
    pub senders: Option<Policy>,
    /// Scan the inbox at this interval instead of waiting for file-system events (for file
    /// systems without them, such as NFS).
    pub poll: Option<Duration>,
    /// How long a file found by a scan, rather than announced by an event, must be
    /// unchanged before it is taken.
    pub settle: Duration,
    /// Compute the SHA-256 of each output for its [`Record`].
    pub digest: bool,
    /// Threads that open uploads: 0, one per core.
    pub threads: usize,
}

impl Options {
    /// Events, no quarantine, uploads kept, no sender policy, 5 s to settle, digests.
    pub fn new(inbox: PathBuf, output: PathBuf, state: PathBuf) -> Options {
        Options {
            inbox,
            output,
            state,
            quarantine: None,
            remove_source: false,
            senders: None,
            poll: None,
            settle: Duration::from_secs(5),
            digest: true,
            threads: 0,
        }
    }
}

/// One settled upload: the audit log's line.
#[derive(Debug)]
pub struct Record<'a> {
    /// When it was settled.
    pub time: SystemTime,
    /// The upload, its output, size, outcome (done, skipped because its output exists, or
    /// failed), sender verdict under a policy, and the SHA-256 of the plaintext under
    /// [`Options::digest`].
    pub report: &'a Report,
    /// Where a failed upload was moved.
    pub quarantined: Option<&'a Path>,
    /// Opened by an earlier run that stopped before recording it (a crash): done then, found
    /// now.
    pub recovered: bool,
    /// From the moment it was taken to its settling.
    pub duration: Duration,
}

/// Hears what the watcher settles; called from its threads. As [`Temporaries`], it also
/// hears of each temporary output file.
pub trait Listener: Temporaries {
    /// An upload was settled.
    fn record(&self, record: &Record<'_>);

    /// A temporary file of an earlier run was removed from the output directory.
    fn removed_partial(&self, path: &Path) {
        let _ = path;
    }

    /// Something went wrong that is no upload's fault (a file-system event error): the
    /// watcher scans the inbox again and goes on.
    fn trouble(&self, what: &str) {
        let _ = what;
    }

    /// The records heard so far are all there is for now (the uploads that came together
    /// are settled): a listener that buffers them writes them out.
    fn flush(&self) {}
}

/// Tells a running [`watch`] to stop, or to check uploads against a new sender policy: for a
/// signal handler (SIGTERM, SIGHUP), or an embedding server's own controls.
#[derive(Debug, Default)]
pub struct Control {
    stop: AtomicBool,
    /// A policy to take for the next uploads, if one was set since the watcher last looked.
    senders: Mutex<Option<Option<Policy>>>,
}

impl Control {
    /// A watcher not yet told anything.
    pub fn new() -> Control {
        Control::default()
    }

    /// Asks the watcher to take nothing more, settle what it holds, and return.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Whether [`Control::stop`] was called.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Checks the uploads taken from now on against `policy` (`None`: none), as
    /// [`Options::senders`] does from the start; those in flight keep the old one.
    pub fn set_senders(&self, policy: Option<Policy>) {
        *lock(&self.senders) = Some(policy);
    }

    fn take_senders(&self) -> Option<Option<Policy>> {
        lock(&self.senders).take()
    }
}

/// Why the watcher could not start, or stopped.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", path.display())]
pub struct WatchError {
    /// The directory or file at fault.
    pub path: PathBuf,
    /// What failed.
    pub error: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> WatchError + '_ {
    move |error| WatchError {
        path: path.to_path_buf(),
        error,
    }
}

/// Watches `options.inbox` until `control` says stop, opening each upload with `identities`;
/// `listener` hears each settled upload. The uploads are opened on a pool of its own
/// ([`Options::threads`]), a large one on all of its threads; the calling thread takes them
/// from the inbox. Once told to stop it takes nothing more, settles what is in flight, and
/// returns.
pub fn watch(
    options: &Options,
    identities: &[&dyn Identity],
    listener: &dyn Listener,
    control: &Control,
) -> Result<(), WatchError> {
    let root = Dir::open(&options.inbox).map_err(at(&options.inbox))?;
    let inbox_dev = std::fs::metadata(&options.inbox)
        .map_err(at(&options.inbox))?
        .dev();
    let mut outputs = Dirs::new(Some(0o700));
    let out = outputs
        .add(&options.output, true)
        .map_err(|broken| at(&options.output)(broken.error()))?
        .clone();
    for path in staging::remove_stale(&out).map_err(at(&options.output))? {
        listener.removed_partial(&path);
    }
    let quarantine = match &options.quarantine {
        Some(path) => Some(open_quarantine(path, inbox_dev)?),
        None => None,
    };
    let journal = Journal::open(&options.state).map_err(at(&options.state))?;
    let (events, heard) = Events::new();
    let mut watcher = match options.poll {
        Some(_) => None,
        None => {
            // Created (a directory to scan, a file to let settle), closed after writing,
            // renamed in: nothing else, none of the reads of the watcher's own.
            let kinds =
                EventKindMask::CREATE | EventKindMask::ACCESS_CLOSE | EventKindMask::MODIFY_NAME;
            let config = notify::Config::default().with_event_kinds(kinds);
            let watcher = notify::RecommendedWatcher::new(events, config);
            Some(watcher.map_err(|e| at(&options.inbox)(io::Error::other(e)))?)
        }
    };
    if let Some(watcher) = watcher.as_mut() {
        // Before the first scan, so that nothing arriving meanwhile is missed.
        let watched = watcher.watch(&options.inbox, RecursiveMode::Recursive);
        watched.map_err(|e| at(&options.inbox)(io::Error::other(e)))?;
    }
    // The sender policy goes with each upload (`Task::senders`): a new one can come.
    let batch_options = batch::Options {
        remove_source: options.remove_source,
        digest: options.digest,
        ..batch::Options::new(Direction::Unseal)
    };
    let shared = Shared {
        options,
        listener,
        journal: Mutex::new(journal),
        in_flight: Mutex::new(HashMap::new()),
        most_in_flight: most_in_flight(),
        room: Condvar::new(),
        quarantine: Mutex::new(quarantine),
    };
    let hearing = Hearing(listener);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .thread_name(|i| format!("unseal-watch-{i}"))
        .build()
        .map_err(|e| at(&options.inbox)(io::Error::other(e)))?;
    let keys = Keys::Identities(identities);
    let shared = &shared;
    let result = committing(keys, &batch_options, &hearing, shared, |worker| {
        // This thread takes uploads from the inbox; the pool's threads only ever open them,
        // so a large one has every thread of the pool.
        pool.in_place_scope(|scope| {
            let spawn = |task: Task<'static>| {
                let worker = worker.clone();
                scope.spawn(move |_| match control.stopping() {
                    // Not begun when told to stop: left as it is, for the next start.
                    true => shared.abandon(&task.job),
                    false => worker.run(task),
                });
            };
            let mut inbox = Inbox {
                shared,
                root,
                outputs,
                spawn: &spawn,
                control,
                settling: HashMap::new(),
                senders: options.senders.clone().map(Arc::new),
            };
            inbox.run(&heard)
        })
    });
    shared.sync_journal();
    result
}

/// Opens (makes) the quarantine, which must be on the inbox's file system.
fn open_quarantine(path: &Path, inbox_dev: u64) -> Result<Dirs, WatchError> {
    let mut dirs = Dirs::new(Some(0o700));
    dirs.add(path, true)
        .map_err(|broken| at(path)(broken.error()))?;
    let meta = std::fs::metadata(path).map_err(at(path))?;
    if meta.dev() != inbox_dev {
        return Err(at(path)(io::Error::new(
            io::ErrorKind::CrossesDevices,
            "the quarantine must be on the inbox's file system, so that uploads are moved there whole",
        )));
    }
    Ok(dirs)
}

/// The listener as the batch engine's observer.
struct Hearing<'l>(&'l dyn Listener);

impl Observer for Hearing<'_> {
    fn event(&self, event: Event<'_>) {
        if let Event::RemovedPartial(path) = event {
            self.0.removed_partial(path);
        }
    }
}

impl Temporaries for Hearing<'_> {
    fn partial_creating(&self, create: &mut dyn FnMut() -> Option<PathBuf>) {
        self.0.partial_creating(create);
    }

    fn partial_finishing(&self, path: &Path, finish: &mut dyn FnMut()) {
        self.0.partial_finishing(path, finish);
    }
}

/// What the taking side (the inbox) and the settling side (the batch engine's committer)
/// share.
struct Shared<'w> {
    options: &'w Options,
    listener: &'w dyn Listener,
    journal: Mutex<Journal>,
    /// Uploads taken and not yet settled, by path below the inbox: which upload, and when
    /// it was taken.
    in_flight: Mutex<HashMap<PathBuf, (Upload, Instant)>>,
    /// An upload was settled: room for another in flight.
    room: Condvar,
    /// Uploads in flight at most ([`most_in_flight`]).
    most_in_flight: usize,
    quarantine: Mutex<Option<Dirs>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared<'_> {
    /// The path of an upload below the inbox.
    fn relative<'p>(&self, source: &'p Path) -> &'p Path {
        source.strip_prefix(&self.options.inbox).unwrap_or(source)
    }

    /// Journals `state` for each job's upload; returns the journal, locked.
    fn journal(&self, state: State, jobs: &[(&Job, &Source)]) -> MutexGuard<'_, Journal> {
        let in_flight = lock(&self.in_flight);
        let records: Vec<(State, &Path, Upload)> = jobs
            .iter()
            .filter_map(|(job, _)| {
                let relative = self.relative(&job.source);
                let (upload, _) = in_flight.get(relative)?;
                Some((state, relative, *upload))
            })
            .collect();
        drop(in_flight);
        let mut journal = lock(&self.journal);
        self.write_journal(&mut journal, &records);
        journal
    }

    /// Rewrites the journal with the records still needed (those of uploads not forgotten)
    /// once it has grown ([`Journal::grown`]) and no other watcher shares it: the watcher is
    /// idle. Every record written so far is among them, so an output being committed keeps
    /// its `intent`.
    fn compact_journal(&self) {
        let mut journal = lock(&self.journal);
        if !journal.grown() {
            return;
        }
        if let Err(e) = journal.compact(&self.options.state, |_, _| true) {
            let path = self.options.state.display();
            self.listener
                .trouble(&format!("cannot rewrite the journal in {path}: {e}"));
        }
    }

    /// Syncs the records not yet synced: the watcher is idle, or stopping.
    fn sync_journal(&self) {
        if let Err(e) = lock(&self.journal).sync() {
            self.journal_trouble(e);
        }
    }

    /// Appends `records` to `journal`; a journal that cannot be written stops nothing but is
    /// heard.
    fn write_journal(&self, journal: &mut Journal, records: &[(State, &Path, Upload)]) {
        if let Err(e) = journal.write(records) {
            self.journal_trouble(e);
        }
    }

    fn journal_trouble(&self, error: io::Error) {
        let path = self.options.state.display();
        self.listener
            .trouble(&format!("cannot write the journal in {path}: {error}"));
    }

    /// Lets another look at the upload at `relative` take it again, and wakes the taking
    /// side if it waits for room (only when the bound is reached).
    fn release(&self, relative: &Path) {
        let mut in_flight = lock(&self.in_flight);
        let full = in_flight.len() >= self.most_in_flight;
        in_flight.remove(relative);
        drop(in_flight);
        if full {
            self.room.notify_one();
        }
    }

    fn record(&self, report: &Report, quarantined: Option<&Path>, recovered: bool, since: Instant) {
        self.listener.record(&Record {
            time: SystemTime::now(),
            report,
            quarantined,
            recovered,
            duration: since.elapsed(),
        });
    }

    /// Forgets an upload taken but not begun: the watcher is stopping.
    fn abandon(&self, job: &Job) {
        self.release(self.relative(&job.source));
    }

    /// A failed upload out of the way: quarantined, or journaled as left. Returns where it
    /// went, if it moved.
    fn set_aside(
        &self,
        report: &Report,
        upload: Upload,
        opened: Option<&Opened>,
    ) -> Option<PathBuf> {
        let relative = self.relative(&report.source).to_path_buf();
        let error = match &report.outcome {
            Outcome::Failed(error) => error,
            _ => return None,
        };
        // The output side failed, not the upload: it stays, to be retried at the next start.
        if matches!(error, FileError::Write { .. } | FileError::RemoveSource(_)) {
            return None;
        }
        if let (Some(dirs), Some(opened)) = (lock(&self.quarantine).as_mut(), opened) {
            let root = self.options.quarantine.as_deref().expect("a quarantine");
            let why = quarantine_note(report, error);
            match quarantine::quarantine(dirs, root, &relative, &opened.source, &why) {
                Ok(path) => return Some(path),
                Err(e) => self.listener.trouble(&format!(
                    "cannot quarantine {}: {e}",
                    report.source.display()
                )),
            }
        }
        self.write_journal(
            &mut lock(&self.journal),
            &[(State::Left, &relative, upload)],
        );
        None
    }
}

impl Settle for Shared<'_> {
    fn committing(&self, jobs: &[(&Job, &Source)]) -> Option<File> {
        let unsynced = self.journal(State::Intent, jobs).take_unsynced();
        unsynced.unwrap_or_else(|e| {
            self.journal_trouble(e);
            None
        })
    }

    fn not_recorded(&self, error: io::Error) {
        self.journal_trouble(error);
    }

    fn committed(&self, jobs: &[(&Job, &Source)]) {
        // Synced with the next group's intent, or once idle (`journal.rs`).
        drop(self.journal(State::Done, jobs));
    }

    fn settled(&self, report: Report, opened: Option<Opened>) {
        let relative = self.relative(&report.source).to_path_buf();
        let Some((upload, since)) = lock(&self.in_flight).get(&relative).copied() else {
            return;
        };
        let quarantined = self.set_aside(&report, upload, opened.as_ref());
        if report.outcome.is_done() && self.options.remove_source {
            lock(&self.journal).forget(&relative);
        }
        self.record(&report, quarantined.as_deref(), false, since);
        // Only now may another look at this upload take it: its lock goes with it.
        drop(opened);
        self.release(&relative);
    }

    fn group_settled(&self) {
        self.listener.flush();
    }
}

/// The note beside a quarantined upload: a JSON object.
fn quarantine_note(report: &Report, error: &FileError) -> String {
    let mut note = String::from("{\"input\":");
    json_string(&mut note, &report.source.to_string_lossy());
    note.push_str(",\"reason\":");
    json_string(&mut note, &error.to_string());
    note.push_str(",\"time\":");
    json_string(&mut note, &json::time(SystemTime::now()));
    note.push_str("}\n");
    note
}

/// Whether `name` is an upload to take: `NAME.age`, not hidden. Dot-files are what uploads
/// in progress and this tool's own temporary files are called; `.part`, `.filepart` and
/// `.tmp` do not end in `.age`.
fn is_upload(name: &OsStr) -> bool {
    let name = name.as_bytes();
    name.len() > 4 && name.ends_with(b".age") && !name.starts_with(b".")
}

/// The upload a signature (`NAME.age.sig`) goes with.
fn signed_upload(name: &OsStr) -> Option<&OsStr> {
    let stem = name.as_bytes().strip_suffix(b".sig")?;
    let stem = OsStr::from_bytes(stem);
    is_upload(stem).then_some(stem)
}

/// How a file came to be looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// Its writer closed it, or it was renamed in: complete.
    Event,
    /// A scan met it: complete once unchanged for the settle time.
    Scan,
}

/// The taking side: the inbox, walked and heard, each upload handed to the pool once.
struct Inbox<'s, 'w> {
    shared: &'s Shared<'w>,
    root: Dir,
    outputs: Dirs,
    /// Hands a task to the pool.
    spawn: &'s (dyn Fn(Task<'static>) + Sync),
    /// Says when to stop: checked between uploads, so that a scan of a full inbox stops too.
    control: &'s Control,
    /// Uploads found but not yet taken (too recent, or waiting for their signature), and
    /// when they were first seen.
    settling: HashMap<PathBuf, Instant>,
    /// The sender policy for the uploads taken now.
    senders: Option<Arc<Policy>>,
}

impl Inbox<'_, '_> {
    fn run(&mut self, heard: &Heard) -> Result<(), WatchError> {
        let options = self.shared.options;
        let mut present = Vec::new();
        self.scan(Path::new(""), Found::Scan, Some(&mut present));
        // Alone on the journal: keep only the records of uploads still in the inbox.
        let present: HashMap<PathBuf, Upload> = present.into_iter().collect();
        let compacted = lock(&self.shared.journal).compact(&options.state, |path, upload| {
            present.get(path) == Some(&upload)
        });
        if let Err(e) = compacted {
            let path = options.state.display();
            self.shared
                .listener
                .trouble(&format!("cannot rewrite the journal in {path}: {e}"));
        }
        let mut polled = Instant::now();
        while !self.control.stopping() {
            if let Some(senders) = self.control.take_senders() {
                self.senders = senders.map(Arc::new);
            }
            match heard.events.recv_timeout(TICK) {
                Ok(event) => {
                    self.hear(event, heard);
                    while let Ok(event) = heard.events.try_recv() {
                        self.hear(event, heard);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.shared.sync_journal();
                    self.shared.compact_journal();
                }
                // No watcher (polling), or it went away.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.shared.sync_journal();
                    std::thread::sleep(TICK)
                }
            }
            if heard.missed() {
                self.scan(Path::new(""), Found::Scan, None);
            }
            if let Some(every) = options.poll {
                if polled.elapsed() >= every {
                    self.scan(Path::new(""), Found::Scan, None);
                    polled = Instant::now();
                }
            }
            self.look_at_settling();
        }
        Ok(())
    }

    /// Acts on one event; one that says events were lost (an error, the kernel's queue
    /// overflowed) asks `heard` for a scan, which comes once the events at hand are heard.
    fn hear(&mut self, event: notify::Result<notify::Event>, heard: &Heard) {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                self.shared.listener.trouble(&format!(
                    "file-system events: {e}; scanning the inbox again"
                ));
                return heard.mark_missed();
            }
        };
        if event.need_rescan() {
            return heard.mark_missed();
        }
        // A rename names the old path first and the new one last.
        let Some(relative) = event.paths.last().and_then(|path| self.relative(path)) else {
            return;
        };
        match event.kind {
            // Closed by its writer: complete.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                self.consider(&relative, Found::Event)
            }
            // Renamed in: an upload, complete; or a directory, whose files came with it.
            EventKind::Modify(ModifyKind::Name(_)) => match relative.file_name().map(is_upload) {
                Some(true) => self.consider(&relative, Found::Event),
                _ if self.kind(&relative) == Some(FileType::Directory) => {
                    self.scan(&relative, Found::Event, None)
                }
                _ => self.consider(&relative, Found::Event),
            },
            // A new directory, scanned for what arrived before its watch did, which may be
            // still being written. A new file is taken when its writer closes it (one linked
            // in is never closed: the next scan takes it).
            EventKind::Create(CreateKind::Folder) => self.scan(&relative, Found::Scan, None),
            _ => {}
        }
    }

    /// `path`, an event's, below the inbox; `None` outside it or with `..` in it.
    fn relative(&self, path: &Path) -> Option<PathBuf> {
        let relative = path.strip_prefix(&self.shared.options.inbox).ok()?;
        let plain = relative
            .components()
            .all(|part| matches!(part, Component::Normal(_)));
        (plain && !relative.as_os_str().is_empty()).then(|| relative.to_path_buf())
    }

    /// The directory of `relative` (below the inbox, never through a symbolic link) and the
    /// name in it.
    fn locate(&self, relative: &Path) -> Option<(Dir, OsString)> {
        let name = relative.file_name()?.to_os_string();
        let mut dir = self.root.clone();
        if let Some(parent) = relative.parent() {
            for part in parent.components() {
                dir = dir.child(part.as_os_str()).ok()?;
            }
        }
        Some((dir, name))
    }

    /// What `relative` is (a symbolic link is one, not what it points to).
    fn kind(&self, relative: &Path) -> Option<FileType> {
        let (dir, name) = self.locate(relative)?;
        let stat = statat(dir.fd(), &name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        Some(FileType::from_raw_mode(stat.st_mode))
    }

    /// Walks the tree at `under` (below the inbox), considering every upload in it as
    /// `found`; with `present`, also lists each upload met.
    fn scan(
        &mut self,
        under: &Path,
        found: Found,
        mut present: Option<&mut Vec<(PathBuf, Upload)>>,
    ) {
        let mut stack = vec![under.to_path_buf()];
        while let Some(relative) = stack.pop() {
            let dir = match relative.as_os_str().is_empty() {
                true => Some(self.root.clone()),
                false => self
                    .locate(&relative)
                    .and_then(|(dir, name)| dir.child(&name).ok()),
            };
            let Some(dir) = dir else { continue };
            let Ok(mut entries) = dir.entries() else {
                continue;
            };
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, file_type) in entries {
                if self.control.stopping() {
                    return;
                }
                let path = relative.join(&name);
                if file_type.is_dir() {
                    stack.push(path);
                } else if file_type.is_file() && is_upload(&name) {
                    if let Some(present) = present.as_deref_mut() {
                        if let Ok(file) = dir.open_file(&name, false) {
                            if let Ok(meta) = file.metadata() {
                                present.push((path.clone(), Upload::of(&meta)));
                            }
                        }
                    }
                    self.consider(&path, found);
                }
            }
        }
    }

    fn look_at_settling(&mut self) {
        let due: Vec<PathBuf> = self.settling.keys().cloned().collect();
        for relative in due {
            self.settling.remove(&relative);
            self.consider(&relative, Found::Scan);
        }
    }

    /// Takes the upload at `relative` if it is one, complete, and nobody's yet.
    fn consider(&mut self, relative: &Path, found: Found) {
        let Some(name) = relative.file_name() else {
            return;
        };
        if let Some(upload) = signed_upload(name) {
            // A signature arrived: its upload may have waited for it.
            let upload = relative.with_file_name(upload);
            if self.settling.remove(&upload).is_some() {
                self.consider(&upload, Found::Event);
            }
            return;
        }
        if !is_upload(name) || lock(&self.shared.in_flight).contains_key(relative) {
            return;
        }
        let Some((dir, name)) = self.locate(relative) else {
            return;
        };
        let Ok(file) = dir.open_file(&name, false) else {
            return;
        };
        let Ok(meta) = file.metadata() else { return };
        if !meta.is_file() {
            return;
        }
        let options = self.shared.options;
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let young = SystemTime::now()
            .duration_since(modified)
            .map_or(true, |age| age < options.settle);
        let mut sig = name.clone();
        sig.push(".sig");
        let unsigned = self.senders.is_some() && !matches!(dir.id_of(&sig, false), Ok(Some(_)));
        if young && (found == Found::Scan || unsigned) {
            self.settling
                .entry(relative.to_path_buf())
                .or_insert_with(Instant::now);
            return;
        }
        // Another watcher has it.
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            return;
        }
        let upload = Upload::of(&meta);
        let output = options.output.join(relative.with_extension(""));
        let known = {
            let mut journal = lock(&self.shared.journal);
            let _ = journal.refresh();
            journal.state(relative, upload)
        };
        let source = Source {
            dir: dir.clone(),
            name: name.clone(),
            id: FileId::of_metadata(&meta),
            follow: false,
        };
        let job = Job {
            source: options.inbox.join(relative),
            output: output.clone(),
            len: meta.len(),
            follow: false,
        };
        let exists = output.symlink_metadata().is_ok();
        match known {
            Some(State::Left) => return,
            Some(State::Done) if !options.remove_source => return,
            // Its output is in place and durable: a run that stopped before removing the
            // upload (or before recording the output) is finished now.
            Some(State::Done) => return self.recovered(relative, job, upload, &source),
            Some(State::Intent) if exists => return self.recovered(relative, job, upload, &source),
            _ => {}
        }
        if exists {
            let shared = self.shared;
            shared.write_journal(
                &mut lock(&shared.journal),
                &[(State::Left, relative, upload)],
            );
            return self.settle_here(job, Outcome::Skipped(Skip::OutputExists), false);
        }
        let dir_result = self.output_dir(relative);
        let mut in_flight = lock(&self.shared.in_flight);
        while in_flight.len() >= self.shared.most_in_flight {
            if self.control.stopping() {
                return;
            }
            let waited = self.shared.room.wait_timeout(in_flight, TICK);
            in_flight = waited.unwrap_or_else(PoisonError::into_inner).0;
        }
        in_flight.insert(relative.to_path_buf(), (upload, Instant::now()));
        drop(in_flight);
        let task = Task {
            job,
            dir: dir_result,
            input: TaskInput::Opened(Box::new(Opened { file, meta, source })),
            senders: self.senders.clone(),
        };
        (self.spawn)(task);
    }

    /// An upload whose output an earlier run put in place before it could record it, or
    /// (with `remove_source`) before it could remove it: recorded, removed if asked.
    fn recovered(&mut self, relative: &Path, job: Job, upload: Upload, source: &Source) {
        let options = self.shared.options;
        let mut outcome = Outcome::Done;
        if options.remove_source {
            if let Err(e) = remove_source(source, self.senders.is_some()) {
                outcome = Outcome::Failed(FileError::RemoveSource(e));
            }
        }
        let mut journal = lock(&self.shared.journal);
        let shared = self.shared;
        shared.write_journal(&mut journal, &[(State::Done, relative, upload)]);
        if options.remove_source && outcome.is_done() {
            journal.forget(relative);
        }
        drop(journal);
        self.settle_here(job, outcome, true);
    }

    /// Records an upload settled here, without the pool: its output was there already.
    fn settle_here(&self, job: Job, outcome: Outcome, recovered: bool) {
        let report = Report {
            source: job.source,
            output: Some(job.output),
            bytes: job.len,
            outcome,
            sender: None,
            sha256: None,
        };
        self.shared.record(&report, None, recovered, Instant::now());
        self.shared.listener.flush();
    }

    /// The output directory of the upload at `relative`, made (owner-only) and opened
    /// below the output root, never through a symbolic link.
    fn output_dir(&mut self, relative: &Path) -> Result<Dir, (PathBuf, io::Error)> {
        let mut path = self.shared.options.output.clone();
        if let Some(parent) = relative.parent() {
            for part in parent.components() {
                path.push(part);
                let new = !self.outputs.contains(&path);
                let dir = self.outputs.add(&path, false);
                let dir = dir.map_err(|broken| (path.clone(), broken.error()))?;
                if new {
                    for removed in staging::remove_stale(&dir).unwrap_or_default() {
                        self.shared.listener.removed_partial(&removed);
                    }
                }
            }
        }
        match self.outputs.get(&path) {
            Some(Ok(dir)) => Ok(dir),
            Some(Err(broken)) => Err((path, broken.error())),
            None => Err((path, io::Error::other("output directory not open"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::EventHandler;

    /// A flood of events while the watcher is busy costs a bounded queue and one scan, not
    /// memory without end: past [`EVENTS_QUEUED`], events are dropped and a scan is asked for.
    #[test]
    fn events_past_the_bound_are_dropped_for_a_scan_and_notify_never_waits() {
        let (mut events, heard) = Events::new();
        let event = || Ok(notify::Event::new(EventKind::Any).add_path(PathBuf::from("/in/a.age")));
        for _ in 0..EVENTS_QUEUED {
            events.handle_event(event());
        }
        assert!(!heard.missed(), "nothing dropped while there was room");
        // Full: each of these returns at once, dropped.
        for _ in 0..1000 {
            events.handle_event(event());
        }
        assert!(heard.missed(), "a dropped event asks for a scan");
        assert!(!heard.missed(), "once");
        assert_eq!(heard.events.try_iter().count(), EVENTS_QUEUED);
        // Room again: queued, nothing missed.
        events.handle_event(event());
        assert!(!heard.missed());
        assert_eq!(heard.events.try_iter().count(), 1);
    }
}
