//! Running a plan: every job on the current rayon pool, one report per file.
//!
//! Small files (up to [`IN_MEMORY`]) are read whole, sealed or opened in memory and written
//! with one call: a few system calls and one key wrap or unwrap each. Larger files are read
//! and processed a run of chunks at a time on every core of the pool, each run read once
//! into private memory, exactly as a single file is ([`Encryptor::seal_file`],
//! [`crate::OpenPayload::decrypt`]); with `--no-mmap` they are streamed.
//! Rayon's work stealing interleaves the two: while one large file's chunk groups are being
//! processed, idle threads take other files.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use zeroize::Zeroizing;

use super::staging::{self, Dir, FileId, OutputDirs, Staged};
use super::walk::parent;
use super::{Direction, Event, FileError, Job, Keys, Observer, Options, Outcome, OutputDir};
use super::{Plan, Report};
use crate::error::{DecryptError, EncryptError, StreamError};
use crate::format::Stanza;
use crate::recipient::{Identity, Recipient};
use crate::sender::Verdict;
use crate::sender::{read_signature, sign_file, signature_path, SIGNATURE_SUFFIX};
use crate::sender::{FileCheck, HashingReader};
use crate::sshsig::{Digest, Hasher, SigningKey};
use crate::{Decryptor, Encryptor, SealedFile, SealedSlice};

/// Files up to this size are read into memory whole rather than a run of chunks at a time.
pub const IN_MEMORY: u64 = 1 << 20;

/// Runs `plan` on the current rayon pool and returns one report per file, the files left
/// out by the plan included, sorted by input path.
///
/// First the output directories are opened, each once (made below [`Options::output_dir`],
/// never through a symbolic link: see `OutputDirs`), and cleared of temporary files that an
/// earlier run left; then every job runs, writing only through those directory handles.
/// Last, the directories this run made for outputs that all failed are removed again, if
/// empty: a batch that writes nothing leaves no empty tree behind (an empty input directory
/// is still mirrored). `observer` hears each event as it happens.
pub fn run(plan: Plan, keys: Keys<'_>, options: &Options, observer: &dyn Observer) -> Vec<Report> {
    let Plan {
        jobs,
        left_out,
        output_dirs,
    } = plan;
    for report in &left_out {
        observer.event(Event::Finished(report));
    }
    let dirs = prepare_dirs(&output_dirs, options, observer);
    let mut reports: Vec<Report> = jobs
        .par_iter()
        .map(|job| {
            observer.event(Event::Started(job));
            let report = match dirs.get(&parent(&job.output)) {
                Some(Ok(dir)) => process(job, dir, keys, options, observer),
                Some(Err(broken)) => failed(job, broken.path(), broken.error()),
                None => {
                    let error = io::Error::other("not among the planned output directories");
                    failed(job, &parent(&job.output), error)
                }
            };
            observer.event(Event::Finished(&report));
            report
        })
        .collect();
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

/// The report of a job that failed to write `path`.
fn failed(job: &Job, path: &Path, error: io::Error) -> Report {
    Report {
        source: job.source.clone(),
        output: Some(job.output.clone()),
        bytes: job.len,
        outcome: Outcome::Failed(FileError::Write {
            path: path.to_path_buf(),
            error,
        }),
        sender: None,
    }
}

/// Opens (and makes) the output directories and removes stale temporary files from them.
/// Directories for plaintext are made owner-only.
fn prepare_dirs(dirs: &[OutputDir], options: &Options, observer: &dyn Observer) -> OutputDirs {
    // Beside the inputs, directories exist: none are made.
    let make = options
        .output_dir
        .as_ref()
        .map(|_| match options.direction {
            Direction::Unseal => 0o700,
            Direction::Seal => 0o777,
        });
    let mut opened = OutputDirs::new(make);
    for OutputDir { path, named } in dirs {
        let Ok(dir) = opened.add(path, *named) else {
            continue;
        };
        match staging::remove_stale(dir) {
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

/// What a job writes: its output's directory, open, and the output's name in it.
struct Output<'a> {
    dir: &'a Dir,
    name: &'a OsStr,
}

/// Processes one job, reporting progress in input bytes that add up to `job.len`.
fn process(
    job: &Job,
    dir: &Dir,
    keys: Keys<'_>,
    options: &Options,
    observer: &dyn Observer,
) -> Report {
    let Some(name) = job.output.file_name() else {
        let error = io::Error::new(io::ErrorKind::InvalidInput, "not a file name");
        return failed(job, &job.output, error);
    };
    let output = Output { dir, name };
    let done = AtomicU64::new(0);
    let tick = |n: u64| {
        done.fetch_add(n, Ordering::Relaxed);
        observer.event(Event::Progress(n));
    };
    let result = match (keys, options.direction) {
        (Keys::Recipients(recipients), Direction::Seal) => {
            seal(job, &output, recipients, options, observer, &tick).map(|(s, b)| (s, b, None))
        }
        (Keys::Identities(identities), Direction::Unseal) => {
            open(job, &output, identities, options, observer, &tick)
        }
        _ => Err(FileError::WrongKeys),
    };
    let rest = job.len.saturating_sub(done.load(Ordering::Relaxed));
    if rest > 0 {
        observer.event(Event::Progress(rest));
    }
    let (bytes, outcome, sender) = match result {
        Ok((source, bytes, sender)) if options.remove_source => {
            let signature = options.senders.is_some();
            match remove_source(&source, dir, signature) {
                Ok(()) => (bytes, Outcome::Done, sender),
                Err(e) => (bytes, Outcome::Failed(FileError::RemoveSource(e)), sender),
            }
        }
        Ok((_, bytes, sender)) => (bytes, Outcome::Done, sender),
        Err(error) => (job.len, Outcome::Failed(error), None),
    };
    Report {
        source: job.source.clone(),
        output: Some(job.output.clone()),
        bytes,
        outcome,
        sender,
    }
}

/// An input as it was opened: its directory (open), its name there, and the identity of the
/// file read (from `fstat` of the open file).
#[derive(Debug, Clone)]
pub struct Source {
    /// The directory the input is in.
    pub dir: Dir,
    /// The input's name in `dir`.
    pub name: OsString,
    /// The file that was opened and processed.
    pub id: FileId,
    /// Whether `name` may be a symbolic link to that file (it was opened through one).
    pub follow: bool,
}

/// Removes the input `source` once its output (already fsync'ed and renamed into
/// `output_dir`) is durable: `output_dir` is fsync'ed first, so that after a power loss
/// either the source or the output survives. The name is removed relative to the input's
/// directory handle, and only if it still refers to the file that was processed: one
/// swapped in since (another file, a link, the output itself) is left, and this fails.
/// With `signature`, the source's checked signature (`NAME.sig`) goes with it.
pub fn remove_source(source: &Source, output_dir: &Dir, signature: bool) -> io::Result<()> {
    output_dir.sync()?;
    source
        .dir
        .remove_if_same(&source.name, source.id, source.follow)?;
    if !signature {
        return Ok(());
    }
    let mut sig = source.name.clone();
    sig.push(SIGNATURE_SUFFIX);
    match source.dir.remove(&sig) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

type Tick<'a> = &'a (dyn Fn(u64) + Sync);

/// Seals one file; returns the input as opened, and its size.
fn seal(
    job: &Job,
    output: &Output<'_>,
    recipients: &[&dyn Recipient],
    options: &Options,
    observer: &dyn Observer,
    tick: Tick<'_>,
) -> Result<(Source, u64), FileError> {
    let (source, file, meta) = open_input(job, output.dir)?;
    let encryptor = match &options.signer {
        None => Encryptor::new(recipients),
        Some(key) => Encryptor::new_signed_by(recipients, &key.public_key()),
    };
    let encryptor = encryptor.map_err(|e| match e {
        EncryptError::IncompatibleRecipients => FileError::IncompatibleRecipients(e),
        _ => FileError::NoRecipients,
    })?;
    let staged = Staged::create(output.dir, output.name, observer).map_err(write_error(job))?;
    let signing = options.signer.is_some();
    // A signature's hash, when it is computed alongside the sealing.
    let mut digest = None;
    if meta.len() <= IN_MEMORY {
        let plaintext = Zeroizing::new(read_all(file, meta.len())?);
        let sealed = encryptor.seal_slice(&plaintext);
        (&mut staged.file())
            .write_all(&sealed)
            .map_err(write_error(job))?;
        digest = signing.then(|| Digest::of(&sealed));
        tick(plaintext.len() as u64);
    } else if options.mmap {
        let mut hasher = signing.then(Hasher::new);
        let mut feed = hasher.as_mut().map(|h| |bytes: &[u8]| h.update(bytes));
        let hash = feed.as_mut().map(|f| f as crate::parallel::Hash<'_>);
        // SAFETY: a staged output is a new file of ours (mode 0600, created exclusively),
        // which nothing else writes, truncates or resizes until it is committed.
        #[allow(unsafe_code)]
        let out = unsafe { crate::MappedFile::new(staged.file()) };
        let sealed = encryptor.seal_file_mapped(&file, out, hash, tick);
        stream_result(job, sealed.map(drop))?;
        digest = hasher.map(Hasher::finish);
    } else {
        let input = Counting { inner: file, tick };
        let result = encryptor.seal_stream(input, staged.file());
        stream_result(job, result)?;
    }
    match &options.signer {
        Some(key) => commit_signed(job, output, staged, (key, digest), options, observer)?,
        None => staged.commit(options.force).map_err(write_error(job))?,
    }
    Ok((source, meta.len()))
}

/// Signs the sealed output in `staged` (over `digest` if it was hashed alongside the sealing,
/// else reading it now) and renames it into place with its signature: the signature first,
/// so that an existing one (without `force`) stops both, and the sealed file never appears
/// without it.
fn commit_signed(
    job: &Job,
    output: &Output<'_>,
    staged: Staged<'_>,
    (key, digest): (&SigningKey, Option<Digest>),
    options: &Options,
    observer: &dyn Observer,
) -> Result<(), FileError> {
    let sig_path = signature_path(&job.output);
    let mut sig_name = output.name.to_os_string();
    sig_name.push(SIGNATURE_SUFFIX);
    let sig_error = |error| FileError::Write {
        path: sig_path.clone(),
        error,
    };
    let signature = match digest {
        Some(digest) => key.sign(&digest).map_err(io::Error::other),
        None => sign_file(key, staged.file()),
    }
    .map_err(write_error(job))?;
    let sig = Staged::create(output.dir, &sig_name, observer).map_err(sig_error)?;
    (&mut sig.file())
        .write_all(signature.to_pem().as_bytes())
        .map_err(sig_error)?;
    sig.commit(options.force).map_err(sig_error)?;
    staged.commit(options.force).map_err(|e| {
        // The sealed file could not follow its signature: take the signature back.
        let _ = output.dir.remove(&sig_name);
        write_error(job)(e)
    })
}

/// Opens one sealed file; returns the input as opened, its size, and who sent it under a
/// sender policy. The output is renamed into place only once the signature (if any) checks
/// out.
fn open(
    job: &Job,
    output: &Output<'_>,
    identities: &[&dyn Identity],
    options: &Options,
    observer: &dyn Observer,
    tick: Tick<'_>,
) -> Result<(Source, u64, Option<Verdict>), FileError> {
    let (mut check, mut hasher) = match &options.senders {
        Some(policy) => {
            let path = signature_path(&job.source);
            let text = read_signature(&path).map_err(FileError::ReadSignature)?;
            let name = path.display().to_string();
            let (check, hasher) = policy
                .check_file(text.as_deref(), &name)
                .map_err(FileError::Sender)?;
            (Some(check), hasher)
        }
        None => (None, None),
    };
    let (source, file, meta) = open_input(job, output.dir)?;
    let read_error = |e| match e {
        DecryptError::Io(e) => FileError::Read(e),
        other => FileError::Decrypt(other),
    };
    // The key is unwrapped before the output is created: a file for another key leaves no
    // trace at all.
    let staged = if meta.len() <= IN_MEMORY {
        let raw = read_all(file, meta.len())?;
        if let Some(hasher) = hasher.as_mut() {
            hasher.update(&raw);
        }
        let decoded;
        let sealed = match crate::armor::is_armored(&raw) {
            true => {
                decoded = crate::armor::decode(&raw).map_err(|e| read_error(e.into()))?;
                &decoded
            }
            false => &raw,
        };
        let slice = SealedSlice::new(sealed).map_err(read_error)?;
        let payload = slice.unwrap(identities).map_err(read_error)?;
        bind(&mut check, &slice.header().stanzas)?;
        let plaintext = Zeroizing::new(payload.decrypt_to_vec().map_err(read_error)?);
        let staged = Staged::create(output.dir, output.name, observer).map_err(write_error(job))?;
        (&mut staged.file())
            .write_all(&plaintext)
            .map_err(write_error(job))?;
        tick(meta.len());
        staged
    } else if options.mmap && !crate::armor::is_armored_file(&file).map_err(FileError::Read)? {
        // Large and binary: every core, each run of chunks read once (see `SealedFile`).
        let sealed = SealedFile::new(&file).map_err(read_error)?;
        let payload = sealed.unwrap(identities).map_err(read_error)?;
        bind(&mut check, &sealed.header().stanzas)?;
        if let Some(hasher) = hasher.as_mut() {
            hasher.update(sealed.head());
        }
        let staged = Staged::create(output.dir, output.name, observer).map_err(write_error(job))?;
        let mut feed = hasher.as_mut().map(|h| |bytes: &[u8]| h.update(bytes));
        let hash = feed.as_mut().map(|f| f as crate::parallel::Hash<'_>);
        // SAFETY: a staged output is a new file of ours (mode 0600, created exclusively),
        // which nothing else writes, truncates or resizes until it is committed.
        #[allow(unsafe_code)]
        let out = unsafe { crate::MappedFile::new(staged.file()) };
        let result = payload.decrypt(crate::Output::Mapped(out), hash, tick);
        stream_result(job, result.map(drop))?;
        staged
    } else {
        let counted = Counting { inner: file, tick };
        let input = BufReader::new(HashingReader::new(counted, hasher.as_mut()));
        let opened = Decryptor::new(input)
            .and_then(|d| d.open(identities))
            .map_err(read_error)?;
        bind(&mut check, &opened.header().stanzas)?;
        let staged = Staged::create(output.dir, output.name, observer).map_err(write_error(job))?;
        stream_result(job, opened.decrypt_to(staged.file()))?;
        staged
    };
    let sender = match check {
        Some(check) => Some(check.finish(hasher).map_err(FileError::Sender)?),
        None => None,
    };
    staged.commit(options.force).map_err(write_error(job))?;
    Ok((source, meta.len(), sender))
}

/// The sender check's step once the header is authenticated, if there is a check.
fn bind(check: &mut Option<FileCheck>, stanzas: &[Stanza]) -> Result<(), FileError> {
    match check {
        Some(check) => check.bind(stanzas).map_err(FileError::Sender),
        None => Ok(()),
    }
}

/// Opens a planned input from a handle of its directory (the output directory `beside`,
/// when the output goes beside it), without blocking (a FIFO swapped in after planning must
/// not hang the batch) and, unless the plan allows it, without following a symbolic link.
fn open_input(job: &Job, beside: &Dir) -> Result<(Source, File, Metadata), FileError> {
    let dir_path = parent(&job.source);
    let dir = match dir_path == beside.path() {
        true => beside.clone(),
        false => Dir::open(&dir_path).map_err(FileError::Read)?,
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
    Ok((source, file, meta))
}

/// Reads a whole (small) file of `len` bytes, as it was when opened. Plain reads into a
/// buffer of that size and one more to see the end: `read_to_end` would ask the file for
/// its size and position again, two system calls per file.
fn read_all(mut file: File, len: u64) -> Result<Vec<u8>, FileError> {
    let mut buf = vec![0u8; len as usize + 1];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FileError::Read(e)),
        }
    }
    buf.truncate(filled);
    if filled > len as usize {
        // It grew since: take the rest too.
        file.read_to_end(&mut buf).map_err(FileError::Read)?;
    }
    Ok(buf)
}

fn write_error(job: &Job) -> impl Fn(io::Error) -> FileError + '_ {
    |error| FileError::Write {
        path: job.output.clone(),
        error,
    }
}

fn stream_result(job: &Job, result: Result<(), StreamError>) -> Result<(), FileError> {
    result.map_err(|e| match e {
        StreamError::Read(e) => FileError::Read(e),
        StreamError::Write(e) => write_error(job)(e),
        StreamError::Decrypt(e) => FileError::Decrypt(e),
    })
}

/// A reader that reports the bytes read through it.
struct Counting<'a> {
    inner: File,
    tick: Tick<'a>,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.tick)(n as u64);
        Ok(n)
    }
}
