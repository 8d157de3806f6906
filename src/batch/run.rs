//! Running a plan: every job on the current rayon pool, one report per file.
//!
//! Small files (up to [`IN_MEMORY`]) are read whole, sealed or opened in memory and written
//! with one call: a few system calls and one key wrap or unwrap each. Larger files are mapped
//! and processed a group of chunks at a time on every core of the pool, exactly as a single
//! file is ([`Encryptor::seal_file`], [`crate::OpenPayload::decrypt`]); with `--no-mmap`
//! they are streamed.
//! Rayon's work stealing interleaves the two: while one large file's chunk groups are being
//! processed, idle threads take other files.

use std::collections::HashMap;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use zeroize::Zeroizing;

use super::staging::{self, Staged};
use super::{Direction, Event, FileError, Job, Keys, Observer, Options, Outcome, Plan, Report};
use crate::error::{DecryptError, EncryptError, StreamError};
use crate::format::Stanza;
use crate::recipient::{Identity, Recipient};
use crate::sender::Verdict;
use crate::sender::{read_signature, remove_signature, sign_file, signature_path};
use crate::sender::{FileCheck, HashingReader};
use crate::sshsig::{Digest, Hasher, SigningKey};
use crate::{Decryptor, Encryptor, Output, SealedFile, SealedSlice};

/// Files up to this size are read into memory rather than mapped.
pub const IN_MEMORY: u64 = 1 << 20;

/// Runs `plan` on the current rayon pool and returns one report per file, the files left
/// out by the plan included, sorted by input path.
///
/// First the output directories are made (below [`Options::output_dir`] never through a
/// symbolic link) and cleared of temporary files that an earlier run left; then every job
/// runs. `observer` hears each event as it happens.
pub fn run(plan: Plan, keys: Keys<'_>, options: &Options, observer: &dyn Observer) -> Vec<Report> {
    let Plan {
        jobs,
        left_out,
        output_dirs,
    } = plan;
    for report in &left_out {
        observer.event(Event::Finished(report));
    }
    let broken_dirs = prepare_dirs(&output_dirs, options, observer);
    let mut reports: Vec<Report> = jobs
        .par_iter()
        .map(|job| {
            observer.event(Event::Started(job));
            let report = match broken_dirs.get(job.output.parent().unwrap_or(Path::new(""))) {
                Some(error) => Report {
                    source: job.source.clone(),
                    output: Some(job.output.clone()),
                    bytes: job.len,
                    outcome: Outcome::Failed(FileError::Write {
                        path: error.0.clone(),
                        error: io::Error::new(error.1, error.2.clone()),
                    }),
                    sender: None,
                },
                None => process(job, keys, options, observer),
            };
            observer.event(Event::Finished(&report));
            report
        })
        .collect();
    reports.extend(left_out);
    reports.sort_by(|a, b| a.source.cmp(&b.source));
    reports
}

/// An output directory that could not be made: the directory that failed, and why.
type Broken = (PathBuf, io::ErrorKind, String);

/// Makes the output directories and removes stale temporary files from them; returns the
/// directories that cannot take outputs.
fn prepare_dirs(
    dirs: &[PathBuf],
    options: &Options,
    observer: &dyn Observer,
) -> HashMap<PathBuf, Broken> {
    let mut broken: HashMap<PathBuf, Broken> = HashMap::new();
    let private = options.direction == Direction::Unseal;
    for dir in dirs {
        let made = match &options.output_dir {
            // Outputs beside their inputs go into directories that exist.
            None => Ok(()),
            // The operator named this one; it may be (or lie under) a symbolic link.
            Some(root) if root == dir => fs::create_dir_all(dir),
            Some(_) => match dir.parent().and_then(|parent| broken.get(parent)) {
                Some(cause) => Err(io::Error::new(cause.1, cause.2.clone())),
                None => staging::make_dir(dir, private),
            },
        };
        let result = made.and_then(|()| staging::remove_stale(dir));
        match result {
            Ok(removed) => {
                for path in removed {
                    observer.event(Event::RemovedPartial(&path));
                }
            }
            Err(e) => {
                let cause = match dir.parent().and_then(|parent| broken.get(parent)) {
                    Some(cause) => cause.clone(),
                    None => (dir.clone(), e.kind(), e.to_string()),
                };
                broken.insert(dir.clone(), cause);
            }
        }
    }
    broken
}

/// Processes one job, reporting progress in input bytes that add up to `job.len`.
fn process(job: &Job, keys: Keys<'_>, options: &Options, observer: &dyn Observer) -> Report {
    let done = AtomicU64::new(0);
    let tick = |n: u64| {
        done.fetch_add(n, Ordering::Relaxed);
        observer.event(Event::Progress(n));
    };
    let result = match (keys, options.direction) {
        (Keys::Recipients(recipients), Direction::Seal) => {
            seal(job, recipients, options, observer, &tick).map(|bytes| (bytes, None))
        }
        (Keys::Identities(identities), Direction::Unseal) => {
            open(job, identities, options, observer, &tick)
        }
        _ => Err(FileError::WrongKeys),
    };
    let rest = job.len.saturating_sub(done.load(Ordering::Relaxed));
    if rest > 0 {
        observer.event(Event::Progress(rest));
    }
    let (bytes, outcome, sender) = match result {
        Ok((bytes, sender)) if options.remove_source => {
            match remove_source(&job.source, &job.output, options.senders.is_some()) {
                Ok(()) => (bytes, Outcome::Done, sender),
                Err(e) => (bytes, Outcome::Failed(FileError::RemoveSource(e)), sender),
            }
        }
        Ok((bytes, sender)) => (bytes, Outcome::Done, sender),
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

/// Removes `source` once `output` (already fsync'ed and renamed) is durable: the directory
/// holding the new name is fsync'ed first, so that after a power loss either the source
/// or the output survives. With `signature`, the source's checked signature
/// (`SOURCE.sig`) goes with it.
pub fn remove_source(source: &Path, output: &Path, signature: bool) -> io::Result<()> {
    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()?;
    fs::remove_file(source)?;
    match signature {
        true => remove_signature(source),
        false => Ok(()),
    }
}

type Tick<'a> = &'a (dyn Fn(u64) + Sync);

/// Seals one file; returns the size of its input.
fn seal(
    job: &Job,
    recipients: &[&dyn Recipient],
    options: &Options,
    observer: &dyn Observer,
    tick: Tick<'_>,
) -> Result<u64, FileError> {
    let (file, meta) = open_input(job)?;
    let encryptor = match &options.signer {
        None => Encryptor::new(recipients),
        Some(key) => Encryptor::new_signed_by(recipients, &key.public_key()),
    };
    let encryptor = encryptor.map_err(|e| match e {
        EncryptError::IncompatibleRecipients => FileError::IncompatibleRecipients(e),
        _ => FileError::NoRecipients,
    })?;
    let staged = Staged::create(&job.output, observer).map_err(write_error(job))?;
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
        let sealed = encryptor.seal_file(&file, staged.file(), hash, tick);
        stream_result(job, sealed.map(drop))?;
        digest = hasher.map(Hasher::finish);
    } else {
        let input = Counting { inner: file, tick };
        let result = encryptor.seal_stream(input, staged.file());
        stream_result(job, result)?;
    }
    match &options.signer {
        Some(key) => commit_signed(job, staged, (key, digest), options, observer)?,
        None => staged.commit(options.force).map_err(write_error(job))?,
    }
    Ok(meta.len())
}

/// Signs the sealed output in `staged` (over `digest` if it was hashed alongside the sealing,
/// else reading it now) and renames it into place with its signature: the signature first,
/// so that an existing one (without `force`) stops both, and the sealed file never appears
/// without it.
fn commit_signed(
    job: &Job,
    staged: Staged<'_>,
    (key, digest): (&SigningKey, Option<Digest>),
    options: &Options,
    observer: &dyn Observer,
) -> Result<(), FileError> {
    let sig_path = signature_path(&job.output);
    let sig_error = |error| FileError::Write {
        path: sig_path.clone(),
        error,
    };
    let signature = match digest {
        Some(digest) => key.sign(&digest).map_err(io::Error::other),
        None => sign_file(key, staged.file()),
    }
    .map_err(write_error(job))?;
    let sig = Staged::create(&sig_path, observer).map_err(sig_error)?;
    (&mut sig.file())
        .write_all(signature.to_pem().as_bytes())
        .map_err(sig_error)?;
    sig.commit(options.force).map_err(sig_error)?;
    staged.commit(options.force).map_err(|e| {
        // The sealed file could not follow its signature: take the signature back.
        let _ = fs::remove_file(&sig_path);
        write_error(job)(e)
    })
}

/// Opens one sealed file; returns the size of its input, and who sent it under a sender
/// policy. The output is renamed into place only once the signature (if any) checks out.
fn open(
    job: &Job,
    identities: &[&dyn Identity],
    options: &Options,
    observer: &dyn Observer,
    tick: Tick<'_>,
) -> Result<(u64, Option<Verdict>), FileError> {
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
    let (file, meta) = open_input(job)?;
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
                decoded = crate::armor::decode(&raw).map_err(read_error)?;
                &decoded
            }
            false => &raw,
        };
        let slice = SealedSlice::new(sealed).map_err(read_error)?;
        let payload = slice.unwrap(identities).map_err(read_error)?;
        bind(&mut check, &slice.header().stanzas)?;
        let plaintext = Zeroizing::new(payload.decrypt_to_vec().map_err(read_error)?);
        let staged = Staged::create(&job.output, observer).map_err(write_error(job))?;
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
        let staged = Staged::create(&job.output, observer).map_err(write_error(job))?;
        let mut feed = hasher.as_mut().map(|h| |bytes: &[u8]| h.update(bytes));
        let hash = feed.as_mut().map(|f| f as crate::parallel::Hash<'_>);
        let result = payload.decrypt(Output::File(staged.file()), hash, tick);
        stream_result(job, result.map(drop))?;
        staged
    } else {
        let counted = Counting { inner: file, tick };
        let input = BufReader::new(HashingReader::new(counted, hasher.as_mut()));
        let opened = Decryptor::new(input)
            .and_then(|d| d.open(identities))
            .map_err(read_error)?;
        bind(&mut check, &opened.header().stanzas)?;
        let staged = Staged::create(&job.output, observer).map_err(write_error(job))?;
        stream_result(job, opened.decrypt_to(staged.file()))?;
        staged
    };
    let sender = match check {
        Some(check) => Some(check.finish(hasher).map_err(FileError::Sender)?),
        None => None,
    };
    staged.commit(options.force).map_err(write_error(job))?;
    Ok((meta.len(), sender))
}

/// The sender check's step once the header is authenticated, if there is a check.
fn bind(check: &mut Option<FileCheck>, stanzas: &[Stanza]) -> Result<(), FileError> {
    match check {
        Some(check) => check.bind(stanzas).map_err(FileError::Sender),
        None => Ok(()),
    }
}

/// Opens a planned input, without blocking (a FIFO swapped in after planning must not hang
/// the batch) and, unless the plan allows it, without following a symbolic link.
fn open_input(job: &Job) -> Result<(File, Metadata), FileError> {
    let mut flags = libc::O_NONBLOCK;
    if !job.follow {
        flags |= libc::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(&job.source)
        .map_err(FileError::Read)?;
    let meta = file.metadata().map_err(FileError::Read)?;
    if !meta.is_file() {
        return Err(FileError::NotAFile);
    }
    Ok((file, meta))
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
