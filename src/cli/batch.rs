//! Batch mode of `seal` and `unseal`: a directory, or several inputs, in one call.
//!
//! The work is [`crate::batch`]'s; this module turns flags into its options, draws progress,
//! prints one line per failed (or oddly skipped) file and a summary on standard error, writes
//! the `--json` report (JSON Lines: one object per file as it finishes, then a summary) to
//! standard output, registers temporary files for the signal clean-up, and picks the exit
//! code: 7 when any file failed.

use std::fmt::Write as _;
use std::fs::Metadata;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{HumanBytes, HumanDuration, ProgressBar};

use super::failure::{describe_io, ExitCode, Failure};
use super::in_pool;
use super::interrupts::Tracked;
use super::paths::{Destination, Source};
use super::senders;
use crate::batch::{self, Direction, Event, FileError, Keys, Observer, Options, Outcome, Report};
use crate::batch::{Dir, FileId, Skip, Summary, Temporaries};
use crate::json::{json_path, json_string};
use crate::rotate::RotateError;
use crate::signing::sender::Verdict;

/// Where `seal --help` lists the flags of batch mode.
pub(super) const HEADING: &str = "Batch mode (a directory, or several inputs)";

/// The flags of batch mode, shared by `seal` and `unseal`, listed under [`HEADING`].
#[derive(Args, Debug, Default)]
pub struct Flags {
    /// Report each file as a JSON line on standard output
    ///
    /// JSON Lines: one object per file (path, output, bytes, outcome, reason, error, code) as
    /// it finishes, then a summary object.
    #[arg(long)]
    pub json: bool,

    /// Show progress even off a terminal
    ///
    /// When standard error is not a terminal: a line every second.
    #[arg(long, conflicts_with = "quiet")]
    pub progress: bool,

    /// Remove each input once its output is safe
    ///
    /// Once its output is on the disk: written, synced and renamed into place, and its
    /// directory synced; also for a single file.
    #[arg(long)]
    pub remove_source: bool,

    /// Follow symbolic links inside input directories
    ///
    /// Never to outside the directory, nor to a directory that contains the link. Without
    /// it, links are skipped, and the message suggests this flag for those it would follow.
    #[arg(long)]
    pub follow_symlinks: bool,
}

/// The flags of one `seal` or `unseal` command that batch mode uses.
pub struct Command<'a> {
    /// `seal` or `unseal`, for messages.
    pub program: &'static str,
    /// The files and directories named.
    pub inputs: &'a [PathBuf],
    /// `-o` (the output directory), `--force`, `--threads`, `--no-mmap`, `--quiet`.
    pub shared: super::Shared,
    /// The batch flags.
    pub flags: &'a Flags,
    /// `seal --sign-with`: the client key that signs every output.
    pub signer: Option<std::sync::Arc<crate::signing::sshsig::SigningKey>>,
    /// `unseal --allowed-signers`: whose signatures to accept, per file.
    pub senders: Option<&'a crate::signing::sender::Policy>,
}

/// Whether a command line asks for batch mode: several inputs, or a directory.
pub fn wanted(inputs: &[PathBuf]) -> bool {
    inputs.len() > 1 || inputs.iter().any(|input| input.is_dir())
}

/// Refuses the batch-only flags for a single file or standard input.
pub fn check_single(flags: &Flags) -> Result<(), Failure> {
    let only = |flag: &str| {
        Failure::usage(format!("{flag} works in batch mode only"))
            .hint("batch mode is for a directory, or several inputs")
    };
    match () {
        () if flags.json => Err(only("--json")),
        () if flags.progress => Err(only("--progress")),
        _ => Ok(()),
    }
}

/// Refuses `--remove-source` unless a file is read and a file is written.
pub fn check_remove_source(
    flags: &Flags,
    source: &Source,
    destination: &Destination,
) -> Result<(), Failure> {
    let files = matches!(
        (source, destination),
        (Source::File(_), Destination::File(_))
    );
    if flags.remove_source && !files {
        return Err(
            Failure::usage("--remove-source needs an input file and an output file")
                .hint("standard input and standard output cannot be removed or made durable"),
        );
    }
    Ok(())
}

/// `--remove-source` for a single file whose output is committed; `input`: the input as it
/// was opened (its `fstat`), so that only that file goes; with `signature`, its checked
/// signature too.
pub fn remove_single(
    flags: &Flags,
    (source, input): (&Path, &Metadata),
    signature: bool,
) -> Result<(), Failure> {
    if !flags.remove_source {
        return Ok(());
    }
    let remove = || {
        let (dir, name) = Dir::open_parent(source)?;
        let id = FileId::of_metadata(input);
        // The operator named the input: it may be a symbolic link to the file read.
        let opened = crate::file::Source {
            dir,
            name,
            id,
            follow: true,
        };
        crate::file::remove_source(&opened, signature)
    };
    remove().map_err(|e: io::Error| {
        Failure::new(
            ExitCode::Io,
            format!(
                "output written, but the source could not be removed: {}",
                describe_io(&e)
            ),
        )
        .about(source)
    })
}

/// Runs a batch: plan, run on `threads` threads, report.
pub fn run(command: Command<'_>, keys: Keys<'_>) -> Result<(), Failure> {
    let program = command.program;
    if command.inputs.iter().any(|input| input.as_os_str() == "-") {
        return Err(Failure::usage("standard input cannot be part of a batch")
            .hint("name files and directories only"));
    }
    if command
        .shared
        .output
        .as_ref()
        .is_some_and(|o| o.as_os_str() == "-")
    {
        return Err(Failure::usage("a batch cannot write to standard output")
            .hint("use -o DIRECTORY, or leave -o out to write beside the inputs"));
    }
    let direction = keys.direction();
    if let Some(out) = &command.shared.output {
        check_output_dir(out, direction, command.inputs)?;
    }
    let options = Options {
        direction,
        output_dir: command.shared.output,
        force: command.shared.force,
        follow_symlinks: command.flags.follow_symlinks,
        remove_source: command.flags.remove_source,
        mmap: !command.shared.no_mmap,
        signer: command.signer,
        senders: command.senders.cloned(),
        digest: false,
    };
    let started = Instant::now();
    let plan = batch::plan(command.inputs, &options);
    let show = match (
        command.shared.quiet,
        command.flags.progress,
        io::stderr().is_terminal(),
    ) {
        (true, _, _) => Show::Nothing,
        (false, _, true) => Show::Bar,
        (false, true, false) => Show::Lines,
        (false, false, false) => Show::Nothing,
    };
    let signatures = plan.left_out.iter().filter(|r| is_companion(r)).count();
    let files = (plan.jobs.len() + plan.left_out.len() - signatures) as u64;
    let reporter = Reporter {
        program,
        direction,
        quiet: command.shared.quiet,
        json: command.flags.json,
        progress: Progress::new(show, files, plan.total_bytes()),
        tally: Mutex::default(),
    };
    std::thread::scope(|scope| {
        let (stop, stopped) = mpsc::channel::<()>();
        if show == Show::Lines {
            let progress = &reporter.progress;
            scope.spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_secs(1))
                {
                    say!("{}", progress.line(program));
                }
                // A last line, so that even a batch shorter than a second shows one.
                say!("{}", progress.line(program));
            });
        }
        let result = in_pool(command.shared.threads, || {
            batch::run(plan, keys, &options, &reporter);
        });
        drop(stop);
        result
    })?;
    reporter.progress.finish();
    reporter.finish(started.elapsed(), command.shared.force)
}

/// The `-o` of a batch names a directory, existing or new (it is made). An existing file is
/// refused, and so is a new `NAME.age` when sealing: it reads as one sealed file
/// (`seal DIR -o single.age` made a directory of that name without a word).
fn check_output_dir(out: &Path, direction: Direction, inputs: &[PathBuf]) -> Result<(), Failure> {
    let batch = "a batch (a directory, or several inputs) writes into -o DIRECTORY";
    match std::fs::metadata(out) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Failure::usage("not a directory").about(out).hint(batch)),
        Err(_) if direction == Direction::Seal && out.extension().is_some_and(|e| e == "age") => {
            let inputs: Vec<String> = inputs.iter().map(|p| crate::shown::path(p)).collect();
            Err(Failure::usage("a batch writes into a directory, not one sealed file")
                .about(out)
                .hint(format!(
                    "to seal it all into one file: tar c {} | seal --to KEY -o {}; to use the name for a directory, make it first",
                    inputs.join(" "),
                    crate::shown::path(out)
                )))
        }
        Err(_) => Ok(()),
    }
}

/// How progress is shown.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Show {
    Nothing,
    Bar,
    Lines,
}

/// Files at least this large are named on the progress display while they run.
const LARGE: u64 = 64 << 20;

/// Progress counters, drawn as a bar or printed as lines.
struct Progress {
    show: Show,
    bar: Option<ProgressBar>,
    files: u64,
    total: u64,
    files_done: AtomicU64,
    bytes_done: AtomicU64,
    current: Mutex<Option<String>>,
    started: Instant,
}

impl Progress {
    fn new(show: Show, files: u64, total: u64) -> Progress {
        let bar = (show == Show::Bar).then(|| {
            let template =
                "{prefix} [{bar:25}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {wide_msg}";
            let bar = super::progress::bar(Some(total), template);
            bar.set_prefix(format!("0/{files} files"));
            bar
        });
        Progress {
            show,
            bar,
            files,
            total,
            files_done: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            current: Mutex::new(None),
            started: Instant::now(),
        }
    }

    fn bytes(&self, n: u64) {
        self.bytes_done.fetch_add(n, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn started(&self, path: &Path, len: u64) {
        if len >= LARGE && self.show != Show::Nothing {
            let name = crate::shown::path(path);
            if let Some(bar) = &self.bar {
                bar.set_message(name.clone());
            }
            *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(name);
        }
    }

    fn file_done(&self, path: &Path) {
        let done = self.files_done.fetch_add(1, Ordering::Relaxed) + 1;
        if self.show == Show::Nothing {
            return;
        }
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_deref() == Some(&*crate::shown::path(path)) {
            *current = None;
            if let Some(bar) = &self.bar {
                bar.set_message("");
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_prefix(format!("{done}/{} files", self.files));
        }
    }

    /// Prints a message line without tearing the bar.
    fn print(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| say!("{line}")),
            None => say!("{line}"),
        }
    }

    fn line(&self, program: &str) -> String {
        let files = self.files_done.load(Ordering::Relaxed);
        let bytes = self.bytes_done.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = bytes as f64 / elapsed;
        let mut line = format!(
            "{program}: {files}/{} files, {}/{}, {}/s",
            self.files,
            HumanBytes(bytes),
            HumanBytes(self.total),
            HumanBytes(rate as u64)
        );
        if rate > 0.0 && bytes < self.total {
            let eta = Duration::from_secs_f64((self.total - bytes) as f64 / rate);
            let _ = write!(line, ", ETA {}", HumanDuration(eta));
        }
        if let Some(name) = &*self.current.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = write!(line, ", now {name}");
        }
        line
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// What the files came to, so far.
#[derive(Default)]
struct Tally {
    summary: Summary,
    /// Skips too common to list one by one (outputs that exist, names of the other
    /// direction), counted by kind.
    quiet_skips: Vec<(Skip, u64)>,
    removed_partials: u64,
}

/// The batch's [`Observer`]: progress, messages, the JSON report, signal clean-up.
struct Reporter {
    program: &'static str,
    direction: Direction,
    quiet: bool,
    json: bool,
    progress: Progress,
    tally: Mutex<Tally>,
}

impl Observer for Reporter {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Started(job) => self.progress.started(&job.source, job.len),
            Event::Progress(n) => self.progress.bytes(n),
            Event::Finished(report) => self.finished(report),
            Event::RemovedPartial(path) => {
                self.tally().removed_partials += 1;
                if !self.quiet {
                    let path = crate::shown::path(path);
                    let line = format!(
                        "{}: removed {path}, left by an interrupted run",
                        self.program
                    );
                    self.progress.print(&line);
                }
            }
        }
    }
}

impl Temporaries for Reporter {
    fn partial_creating(&self, create: &mut dyn FnMut() -> Option<PathBuf>) {
        Tracked.partial_creating(create);
    }

    fn partial_finishing(&self, path: &Path, finish: &mut dyn FnMut()) {
        Tracked.partial_finishing(path, finish);
    }
}

impl Reporter {
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn finished(&self, report: &Report) {
        if !is_companion(report) {
            self.progress.file_done(&report.source);
        }
        let mut listed = true;
        {
            let mut tally = self.tally();
            tally.summary.add(report);
            if let Outcome::Skipped(skip) = report.outcome {
                if is_common(skip) {
                    listed = false;
                    match tally.quiet_skips.iter_mut().find(|(s, _)| *s == skip) {
                        Some((_, n)) => *n += 1,
                        None => tally.quiet_skips.push((skip, 1)),
                    }
                }
            }
        }
        let path = crate::shown::path(&report.source);
        match &report.outcome {
            Outcome::Done => {
                let line = match (&report.sender, self.direction) {
                    // Rotated with --drop-bad-signatures.
                    (Some(Verdict::Rejected(why)), Direction::Rewrap) => Some(format!(
                        "warning: {path}: its signature did not check and was removed: {why}"
                    )),
                    (sender, _) => sender
                        .as_ref()
                        .and_then(|v| senders::report_line(&report.source, v, self.quiet)),
                };
                if let Some(line) = line {
                    self.progress.print(&format!("{}: {line}", self.program));
                }
            }
            Outcome::Failed(error) => {
                let line = format!("{}: error: {path}: {}", self.program, message(error));
                self.progress.print(&line);
            }
            Outcome::Skipped(skip) if listed && !self.quiet => {
                let hint = match skip {
                    Skip::Symlink => " (use --follow-symlinks)",
                    _ => "",
                };
                let line = format!("{}: skipped {path}: {skip}{hint}", self.program);
                self.progress.print(&line);
            }
            Outcome::Skipped(_) => {}
        }
        if self.json {
            let line = json_record(report, self.done_word(), |_| {});
            let mut out = io::stdout().lock();
            // A reader that went away loses the report, not the batch.
            let _ = out.write_all(line.as_bytes());
        }
    }

    fn done_word(&self) -> &'static str {
        match self.direction {
            Direction::Seal => "sealed",
            Direction::Unseal => "unsealed",
            Direction::Rewrap => "rotated",
        }
    }

    /// Prints the summary and the JSON summary; exit code 7 if any file failed.
    fn finish(&self, elapsed: Duration, force: bool) -> Result<(), Failure> {
        let tally = self.tally();
        let s = tally.summary;
        let rate = s.throughput(elapsed);
        if self.json {
            let line = format!(
                "{{\"type\":\"summary\",\"{}\":{},\"skipped\":{},\"failed\":{},\"bytes\":{},\"elapsed_s\":{:.6},\"bytes_per_s\":{:.0},\"removed_partials\":{}}}\n",
                self.done_word(),
                s.done,
                s.skipped,
                s.failed,
                s.bytes,
                elapsed.as_secs_f64(),
                rate,
                tally.removed_partials,
            );
            let _ = io::stdout().lock().write_all(line.as_bytes());
        }
        if !self.quiet {
            let mut line = format!(
                "{}: {} {}, {} skipped",
                self.program,
                s.done,
                self.done_word(),
                s.skipped
            );
            if !tally.quiet_skips.is_empty() {
                let kinds: Vec<String> = tally
                    .quiet_skips
                    .iter()
                    .map(|(skip, n)| format!("{n} {}", common_words(*skip)))
                    .collect();
                let _ = write!(line, " ({})", kinds.join(", "));
            }
            let _ = write!(
                line,
                ", {} failed; {} in {:.2} s, {}/s",
                s.failed,
                HumanBytes(s.bytes),
                elapsed.as_secs_f64(),
                HumanBytes(rate as u64)
            );
            say!("{line}");
            let exists = tally
                .quiet_skips
                .iter()
                .any(|(skip, _)| *skip == Skip::OutputExists);
            if exists && !force {
                say!(
                    "{}: hint: use --force to redo files whose output exists",
                    self.program
                );
            }
        }
        if s.failed > 0 {
            // The files planned: every report but those of signatures.
            let total = self.progress.files;
            let files = if total == 1 { "file" } else { "files" };
            return Err(Failure::new(
                ExitCode::Batch,
                format!("{} of {total} {files} failed", s.failed),
            ));
        }
        Ok(())
    }
}

/// A detached signature (`NAME.age.sig`) or a rotation record (`NAME.age.rotated`) met
/// beside its sealed file: reported, as skipped, but it goes with its file and is not
/// counted as one of the batch's files.
fn is_companion(report: &Report) -> bool {
    matches!(
        report.outcome,
        Outcome::Skipped(Skip::Signature | Skip::RotationRecord)
    )
}

/// Skips that a re-run, or a tree holding both directions, produces by the thousand: counted,
/// not listed.
fn is_common(skip: Skip) -> bool {
    matches!(
        skip,
        Skip::OutputExists
            | Skip::AgeName
            | Skip::NotAgeName
            | Skip::Signature
            | Skip::RotationRecord
            | Skip::NotOldKey
    )
}

fn common_words(skip: Skip) -> &'static str {
    match skip {
        Skip::OutputExists => "existing outputs",
        Skip::AgeName => "already sealed",
        Skip::Signature => "signatures",
        Skip::RotationRecord => "rotation records",
        Skip::NotOldKey => "not opened by the old key (rotated already?)",
        _ => "not .age",
    }
}

/// A file's failure in words, I/O errors without Rust's "(os error N)".
pub(super) fn message(error: &FileError) -> String {
    match error {
        FileError::Read(e) => format!("cannot read: {}", describe_io(e)),
        FileError::Decrypt(e) => Failure::from(e).message,
        FileError::Write { path, error } => {
            format!(
                "cannot write {}: {}",
                crate::shown::path(path),
                describe_io(error)
            )
        }
        FileError::ReadSignature(e) => format!("cannot read its signature: {}", describe_io(e)),
        FileError::ReadRecord(e) => {
            format!("cannot read its rotation record: {}", describe_io(e))
        }
        FileError::RemoveSource(e) => format!(
            "output written, but the source could not be removed: {}",
            describe_io(e)
        ),
        other => other.to_string(),
    }
}

/// The exit code the single-file command gives for this failure.
fn code(error: &FileError) -> ExitCode {
    match error {
        FileError::Decrypt(e) => Failure::from(e).code,
        FileError::Sender(_) | FileError::Rotate(RotateError::BadSignature(_)) => {
            ExitCode::Signature
        }
        FileError::NoRecipients
        | FileError::IncompatibleRecipients(_)
        | FileError::WrongKeys
        | FileError::OutputIsInput => ExitCode::Usage,
        _ => ExitCode::Io,
    }
}

/// One line of the `--json` report; `more` adds fields at its end.
pub(super) fn json_record(
    report: &Report,
    done_word: &str,
    more: impl FnOnce(&mut String),
) -> String {
    let mut line = String::from("{\"type\":\"file\"");
    json_path(&mut line, "path", Some(&report.source));
    json_path(&mut line, "output", report.output.as_deref());
    let _ = write!(line, ",\"bytes\":{}", report.bytes);
    let (outcome, reason, error) = match &report.outcome {
        Outcome::Done => (done_word, None, None),
        Outcome::Skipped(skip) => ("skipped", Some(skip.code()), None),
        Outcome::Failed(error) => ("failed", None, Some(error)),
    };
    let _ = write!(line, ",\"outcome\":\"{outcome}\",\"reason\":");
    match reason {
        Some(reason) => json_string(&mut line, reason),
        None => line.push_str("null"),
    }
    line.push_str(",\"error\":");
    match error {
        Some(error) => {
            json_string(&mut line, &message(error));
            let _ = write!(line, ",\"code\":{}", code(error) as u8);
        }
        None => line.push_str("null,\"code\":null"),
    }
    if let Some(verdict) = &report.sender {
        json_verdict(&mut line, verdict);
    }
    if let Some(digest) = report.sha256 {
        line.push_str(",\"sha256\":\"");
        for byte in digest {
            let _ = write!(line, "{byte:02x}");
        }
        line.push('"');
    }
    more(&mut line);
    line.push_str("}\n");
    line
}

/// `,"signature":{...}`: `"status"` is `"signed"` (with `"principals"` and the key's
/// `"fingerprint"`), `"unsigned"` or `"rejected"` (with `"error"`).
fn json_verdict(line: &mut String, verdict: &Verdict) {
    line.push_str(",\"signature\":{\"status\":");
    match verdict {
        Verdict::Signed(sender) => {
            line.push_str("\"signed\",\"principals\":[");
            for (i, principal) in sender.principals.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                json_string(line, principal);
            }
            line.push_str("],\"fingerprint\":");
            json_string(line, &sender.key.fingerprint());
        }
        Verdict::Unsigned => line.push_str("\"unsigned\""),
        Verdict::Rejected(why) => {
            line.push_str("\"rejected\",\"error\":");
            json_string(line, &why.to_string());
        }
    }
    line.push('}');
}
