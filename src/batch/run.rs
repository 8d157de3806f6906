//! Running a plan: every job on the current rayon pool, one report per file.
//!
//! Small files (up to [`IN_MEMORY`]) are read whole, sealed or opened in memory and written
//! with one call: a few system calls and one key wrap or unwrap each. Larger files are mapped
//! and processed a group of chunks at a time on every core of the pool, exactly as a single
//! file is ([`Encryptor::seal_to_file_with_progress`],
//! [`crate::OpenPayload::decrypt_to_file_with_progress`]); without mapping they are streamed.
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
use crate::mmap::MappedFile;
use crate::recipient::{Identity, Recipient};
use crate::{Decryptor, Encryptor, SealedSlice};

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
            seal(job, recipients, options, observer, &tick)
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
    let (bytes, outcome) = match result {
        Ok(bytes) if options.remove_source => match remove_source(&job.source, &job.output) {
            Ok(()) => (bytes, Outcome::Done),
            Err(e) => (bytes, Outcome::Failed(FileError::RemoveSource(e))),
        },
        Ok(bytes) => (bytes, Outcome::Done),
        Err(error) => (job.len, Outcome::Failed(error)),
    };
    Report {
        source: job.source.clone(),
        output: Some(job.output.clone()),
        bytes,
        outcome,
    }
}

/// Removes `source` once `output` (already fsync'ed and renamed) is durable: the directory
/// holding the new name is fsync'ed first, so that after a power loss either the source
/// or the output survives.
pub fn remove_source(source: &Path, output: &Path) -> io::Result<()> {
    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()?;
    fs::remove_file(source)
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
    let encryptor = Encryptor::new(recipients).map_err(|e| match e {
        EncryptError::IncompatibleRecipients => FileError::IncompatibleRecipients(e),
        _ => FileError::NoRecipients,
    })?;
    let staged = Staged::create(&job.output, observer).map_err(write_error(job))?;
    if meta.len() <= IN_MEMORY {
        let plaintext = Zeroizing::new(read_all(file, meta.len())?);
        let sealed = encryptor.seal_slice(&plaintext);
        (&mut staged.file())
            .write_all(&sealed)
            .map_err(write_error(job))?;
        tick(plaintext.len() as u64);
    } else if options.mmap {
        let map = MappedFile::new(file).map_err(FileError::Read)?;
        encryptor
            .seal_to_file_with_progress(&map, staged.file(), tick)
            .map_err(write_error(job))?;
    } else {
        let input = Counting { inner: file, tick };
        let result = encryptor.seal_stream(input, staged.file());
        stream_result(job, result)?;
    }
    staged.commit(options.force).map_err(write_error(job))?;
    Ok(meta.len())
}

/// Opens one sealed file; returns the size of its input.
fn open(
    job: &Job,
    identities: &[&dyn Identity],
    options: &Options,
    observer: &dyn Observer,
    tick: Tick<'_>,
) -> Result<u64, FileError> {
    let (file, meta) = open_input(job)?;
    let read_error = |e| match e {
        DecryptError::Io(e) => FileError::Read(e),
        other => FileError::Decrypt(other),
    };
    // The key is unwrapped before the output is created: a file for another key leaves no
    // trace at all.
    if meta.len() <= IN_MEMORY {
        let mut sealed = read_all(file, meta.len())?;
        if crate::armor::is_armored(&sealed) {
            sealed = crate::armor::decode(&sealed).map_err(read_error)?;
        }
        let payload = SealedSlice::new(&sealed)
            .and_then(|slice| slice.unwrap(identities))
            .map_err(read_error)?;
        let plaintext = Zeroizing::new(payload.decrypt_to_vec().map_err(read_error)?);
        let staged = Staged::create(&job.output, observer).map_err(write_error(job))?;
        (&mut staged.file())
            .write_all(&plaintext)
            .map_err(write_error(job))?;
        tick(meta.len());
        staged.commit(options.force).map_err(write_error(job))?;
    } else if options.mmap {
        let map = MappedFile::new(file).map_err(FileError::Read)?;
        if crate::armor::is_armored(&map) {
            // Large and armored: decoded as it streams, from the map.
            let decryptor = Decryptor::new(&map[..]).map_err(read_error)?;
            let staged = Staged::create(&job.output, observer).map_err(write_error(job))?;
            let result = decryptor.decrypt_stream(identities, staged.file());
            stream_result(job, result)?;
            staged.commit(options.force).map_err(write_error(job))?;
            tick(meta.len());
            return Ok(meta.len());
        }
        let payload = SealedSlice::new(&map)
            .and_then(|slice| slice.unwrap(identities))
            .map_err(read_error)?;
        let staged = Staged::create(&job.output, observer).map_err(write_error(job))?;
        payload
            .decrypt_to_file_with_progress(staged.file(), tick)
            .map_err(|e| match e {
                // The input is mapped, so only writing can fail with an I/O error.
                DecryptError::Io(e) => write_error(job)(e),
                other => FileError::Decrypt(other),
            })?;
        staged.commit(options.force).map_err(write_error(job))?;
    } else {
        let input = BufReader::new(Counting { inner: file, tick });
        let decryptor = Decryptor::new(input).map_err(read_error)?;
        let staged = Staged::create(&job.output, observer).map_err(write_error(job))?;
        let result = decryptor.decrypt_stream(identities, staged.file());
        stream_result(job, result)?;
        staged.commit(options.force).map_err(write_error(job))?;
    }
    Ok(meta.len())
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
