//! Every chunk on every core: rayon schedules [`PayloadCipher`] calls over groups of chunks.
//!
//! The chunk arithmetic, nonces and AEAD calls are those of the sequential path in
//! [`crate::format::stream`]; only the scheduling differs. The payload size is validated before any
//! chunk is touched, and the last chunk is authenticated first, so a truncated file fails
//! before any work is spent on the rest. The pool is whatever rayon pool the caller runs in
//! (`ThreadPool::install` picks the thread count); the caller reads that count once and
//! passes it in as `threads`. Every size these paths cut work by is in `parallel/sizes.rs`.
//!
//! The file paths report progress through a [`Progress`] callback, called from any worker
//! thread with the number of plaintext bytes each finished group held.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;
use zeroize::Zeroizing;

use crate::engine::chunks::Chunks;
use crate::engine::writeback;
pub(crate) use crate::engine::{Hash, Progress};
use crate::error::{DecryptError, StreamError};
use crate::format::stream::{self, PayloadCipher, CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE};
use crate::primitives::TAG_SIZE;

mod in_order;
pub(crate) mod sizes;
use in_order::InOrder;
use sizes::{
    GROUP, HASH_WINDOW_RUNS, MAP_FROM_THREADS, PLAIN_GROUP, RUN_PLAIN, RUN_SEALED, SEALED_GROUP,
    SPARE_RUNS, TASKS_PER_THREAD, WRITER_WINDOW_RUNS, WRITE_PAIR, WRITE_RUN,
};

/// Chunks per task for a run of `chunks` on a pool of `threads`: [`GROUP`], or fewer where
/// the run is too short to give every thread [`TASKS_PER_THREAD`] tasks (a 4 MiB window on
/// 16 threads would otherwise keep only 4 of them busy).
fn group_for(chunks: usize, threads: usize) -> usize {
    chunks.div_ceil(TASKS_PER_THREAD * threads).clamp(1, GROUP)
}

/// Checks the size of the payload's chunks and authenticates the last one, from a copy of
/// it; returns the plaintext size.
pub(crate) fn check_payload(
    cipher: &PayloadCipher,
    chunks: &Chunks<'_>,
) -> Result<u64, StreamError> {
    let len = chunks.len();
    let result = stream::plaintext_len(len)
        .map_err(StreamError::Decrypt)
        .and_then(|plain| {
            let start = (len - 1) / SEALED_CHUNK * SEALED_CHUNK;
            open_last(cipher, chunks, start, len - start).map(|()| plain)
        });
    match result {
        Err(StreamError::Decrypt(
            DecryptError::Truncated | DecryptError::PayloadCorrupt { .. },
        )) if ends_before_the_end(cipher, chunks) => {
            Err(StreamError::Decrypt(DecryptError::TrailingData))
        }
        other => other,
    }
}

const SEALED_CHUNK: u64 = ENCRYPTED_CHUNK_SIZE as u64;

/// Authenticates the `len` bytes at `start` as the last chunk, releasing nothing.
fn open_last(
    cipher: &PayloadCipher,
    chunks: &Chunks<'_>,
    start: u64,
    len: u64,
) -> Result<(), StreamError> {
    let mut sealed = vec![0; len as usize];
    chunks.read(start, &mut sealed).map_err(StreamError::Read)?;
    let mut scratch = Zeroizing::new(vec![0; sealed.len().saturating_sub(TAG_SIZE)]);
    let index = start / SEALED_CHUNK;
    cipher
        .open_chunks(index, true, &sealed, &mut scratch)
        .map_err(StreamError::Decrypt)
}

/// Whether the payload really ends at an earlier (full) chunk and has bytes after it.
fn ends_before_the_end(cipher: &PayloadCipher, chunks: &Chunks<'_>) -> bool {
    let full_chunks = chunks.len() / SEALED_CHUNK;
    // The candidate final chunk is the last full one that is followed by more bytes.
    let candidate = match chunks.len() % SEALED_CHUNK {
        0 => full_chunks.checked_sub(2),
        _ => full_chunks.checked_sub(1),
    };
    candidate.is_some_and(|i| open_last(cipher, chunks, i * SEALED_CHUNK, SEALED_CHUNK).is_ok())
}

/// Opens a run of consecutive chunks (in private memory) on every core of the current pool
/// of `threads`: the parallel twin of [`PayloadCipher::open_chunks`], with the same
/// arguments and the pool's thread count. Of several failing chunks the first is reported,
/// and on failure `out` is wiped.
pub fn open_chunks(
    cipher: &PayloadCipher,
    first: u64,
    ends: bool,
    encrypted: &[u8],
    out: &mut [u8],
    threads: usize,
) -> Result<(), DecryptError> {
    let result = if encrypted.len() <= SEALED_GROUP {
        // One group (an empty payload included): nothing to share out, so no trip through
        // the pool.
        cipher.open_chunks(first, ends, encrypted, out)
    } else {
        let group = group_for(encrypted.len().div_ceil(ENCRYPTED_CHUNK_SIZE), threads);
        let groups = encrypted.len().div_ceil(group * ENCRYPTED_CHUNK_SIZE);
        let results: Vec<_> = encrypted
            .par_chunks(group * ENCRYPTED_CHUNK_SIZE)
            .zip(out.par_chunks_mut(group * CHUNK_SIZE))
            .enumerate()
            .map(|(g, (sealed, plain))| {
                let index = first + (g * group) as u64;
                cipher.open_chunks(index, ends && g + 1 == groups, sealed, plain)
            })
            .collect();
        // The first failing group in file order, whatever order the threads met them in.
        results.into_iter().collect()
    };
    if result.is_err() {
        out.fill(0);
    }
    result
}

/// Whether the file paths fill an output promised new ([`crate::MappedFile`]) through a
/// writable mapping
/// ([`crate::engine::mmap::MappedOutput`]) rather than positioned writes, on a pool of `threads`:
/// from 8 threads up. Positioned writes to one file serialize on its lock in the kernel, so
/// they stop scaling after a few threads; page faults on a shared mapping do not (measured
/// in `benches/scaling.sh`; the numbers are with the threshold, in `parallel/sizes.rs`).
pub fn maps_output(threads: usize) -> bool {
    threads >= MAP_FROM_THREADS
}

/// Where [`open`] puts the plaintext.
pub(crate) enum Sink<'a> {
    /// Memory exactly the plaintext size. The caller must discard it on error.
    Slice(&'a mut [u8]),
    /// A mapped output file exactly the plaintext size ([`crate::engine::mmap::MappedOutput`]):
    /// each run's pages are allocated before it is written ([`crate::engine::mmap::populate`]), so
    /// a full file system is a write error. The caller must discard it on error.
    Map(&'a mut [u8]),
    /// A file, from `offset`, with positioned writes from every thread, each run's writeback
    /// started as soon as it is written ([`writeback`]). The caller must
    /// discard the file on error: runs before and after the failing one may be written.
    File(&'a File, u64),
    /// A stream, in order, a window at a time: only authenticated windows are written, so
    /// on a corrupt chunk the stream has received the windows before it.
    Writer(&'a mut (dyn Write + Send)),
}

/// Opens `chunks` into `sink` on every core of the current rayon pool, of `threads`; returns
/// the plaintext size.
///
/// The payload's size is checked and its last chunk authenticated first. Then each task
/// copies one run of [`WRITE_RUN`] chunks into private memory ([`Chunks::read`]) and
/// authenticates and decrypts that copy, so a file rewritten meanwhile can fail but never
/// release plaintext that was not authenticated. With `hash`, each copy is hashed too, in
/// file order, so that a signature is checked over exactly the bytes that were decrypted:
/// by the thread that decrypted it, in its turn ([`open_hashing`]), or, for a stream sink,
/// a window at a time ([`WRITER_WINDOW_RUNS`]), one window behind the decryption.
pub(crate) fn open(
    cipher: &PayloadCipher,
    chunks: Chunks<'_>,
    sink: Sink<'_>,
    mut hash: Option<Hash<'_>>,
    progress: Progress<'_>,
    threads: usize,
) -> Result<u64, StreamError> {
    let plain_len = check_payload(cipher, &chunks)?;
    let len = chunks.len() as usize;
    let runs = len.div_ceil(RUN_SEALED);
    let populate = matches!(sink, Sink::Map(_));
    let (mut slice, mut writer, file) = match sink {
        Sink::Slice(out) | Sink::Map(out) => (Some(out), None, None),
        Sink::Writer(out) => (None, Some(out), None),
        Sink::File(file, offset) => (None, None, Some((file, offset))),
    };
    if let (Some(hash), None) = (hash.as_mut(), &writer) {
        let in_order = InOrder::new(&mut **hash, SPARE_RUNS * threads);
        open_hashing(cipher, &chunks, slice, file, populate, in_order, progress)?;
        return Ok(plain_len);
    }
    let window_runs = if writer.is_some() {
        WRITER_WINDOW_RUNS
    } else {
        runs
    };
    let window = |n: usize| match hash.is_some() {
        true => vec![0u8; n * RUN_SEALED],
        false => Vec::new(),
    };
    let mut sealed = [window(window_runs), window(window_runs)];
    let plain = |n: usize| match writer.is_some() {
        true => Zeroizing::new(vec![0u8; n * RUN_PLAIN]),
        false => Zeroizing::new(Vec::new()),
    };
    let mut plain = [plain(window_runs), plain(window_runs)];
    // What the previous window left to hash and to write.
    let (mut sealed_before, mut plain_before) = (0, 0);
    let (mut first_run, mut now) = (0, 0);
    let mut result = Ok(());
    while first_run < runs {
        let n = window_runs.min(runs - first_run);
        let sealed_len = (n * RUN_SEALED).min(len - first_run * RUN_SEALED);
        let window_plain = sealed_len - sealed_len.div_ceil(ENCRYPTED_CHUNK_SIZE) * TAG_SIZE;
        let (sealed_now, sealed_then) = pair(&mut sealed, now);
        let (plain_now, plain_then) = pair(&mut plain, now);
        let sealed_slots: Vec<Option<&mut [u8]>> = match hash.is_some() {
            true => sealed_now[..sealed_len]
                .chunks_mut(RUN_SEALED)
                .map(Some)
                .collect(),
            false => (0..n).map(|_| None).collect(),
        };
        let at = first_run * RUN_PLAIN;
        let out = match (&mut slice, writer.is_some()) {
            (Some(out), _) => Some(&mut out[at..at + window_plain]),
            (None, true) => Some(&mut plain_now[..window_plain]),
            (None, false) => None,
        };
        let mut plain_slots: Vec<Option<&mut [u8]>> = match out {
            Some(out) => out.chunks_mut(RUN_PLAIN).map(Some).collect(),
            None => (0..n).map(|_| None).collect(),
        };
        // An empty payload's one chunk is all tag: no plaintext slot for it.
        if plain_slots.is_empty() {
            plain_slots.push(None);
        }
        let before = (&sealed_then[..sealed_before], &plain_then[..plain_before]);
        let (written, opened) = rayon::join(
            || {
                if let Some(hash) = hash.as_mut() {
                    hash(before.0);
                }
                match &mut writer {
                    Some(out) => out.write_all(before.1),
                    None => Ok(()),
                }
            },
            || {
                let first = first_run;
                let results: Vec<_> = sealed_slots
                    .into_par_iter()
                    .zip(plain_slots)
                    .enumerate()
                    .map_init(RunBuffers::default, |buffers, (i, (sealed, plain))| {
                        let run = Run {
                            index: first + i,
                            last: first + i + 1 == runs,
                            len,
                            populate,
                        };
                        let done = run.open(cipher, &chunks, buffers, sealed, plain, file)?;
                        progress(done as u64);
                        Ok(())
                    })
                    .collect();
                // The first failing run in file order, whatever order the threads met them in.
                results.into_iter().collect::<Result<(), StreamError>>()
            },
        );
        result = written.map_err(StreamError::Write).and(opened);
        if result.is_err() {
            break;
        }
        sealed_before = if hash.is_some() { sealed_len } else { 0 };
        plain_before = if writer.is_some() { window_plain } else { 0 };
        first_run += n;
        now = 1 - now;
    }
    if result.is_ok() {
        let last = 1 - now;
        if let Some(hash) = hash.as_mut() {
            hash(&sealed[last][..sealed_before]);
        }
        if let Some(out) = &mut writer {
            result = out
                .write_all(&plain[last][..plain_before])
                .and_then(|()| out.flush())
                .map_err(StreamError::Write);
        }
    }
    result.map(|()| plain_len)
}

/// [`open`] with a hash, into a sink that takes runs in any order (memory, a mapped or a
/// written file).
///
/// Each thread takes the next run in file order, copies it into a buffer of its own,
/// authenticates and decrypts the copy, and hands it to `in_order`, which hashes the runs
/// in file order on whichever thread completes the next one, while it is most likely still
/// in a core's cache. A thread waits for a slower one only once the copies `in_order` allows
/// ([`SPARE_RUNS`] a thread) are taken. A failing run stops the others from taking more,
/// and the error is the first failing run's in file order; nothing after it is hashed.
fn open_hashing(
    cipher: &PayloadCipher,
    chunks: &Chunks<'_>,
    slice: Option<&mut [u8]>,
    file: Option<(&File, u64)>,
    populate: bool,
    in_order: InOrder<'_>,
    progress: Progress<'_>,
) -> Result<(), StreamError> {
    let len = chunks.len() as usize;
    let runs = len.div_ceil(RUN_SEALED);
    // Each run with its plaintext slot (none for a file, and for an empty payload's chunk).
    let slots = slice.into_iter().flat_map(|out| out.chunks_mut(RUN_PLAIN));
    let next = slots.map(Some).chain(std::iter::repeat_with(|| None));
    let next = Mutex::new(next.take(runs).enumerate());
    rayon::broadcast(|_| {
        let mut buffers = RunBuffers::default();
        while let Some(mut sealed) = in_order.buffer() {
            let taken = next.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some((index, plain)) = taken else { break };
            let run = Run {
                index,
                last: index + 1 == runs,
                len,
                populate,
            };
            sealed.resize(run.sealed_len(), 0);
            match run.open(cipher, chunks, &mut buffers, Some(&mut sealed), plain, file) {
                Ok(done) => {
                    progress(done as u64);
                    in_order.hash(index, sealed);
                }
                Err(e) => in_order.fail(index, e),
            }
        }
    });
    in_order.finish()
}

/// The buffer `now` of two to fill, and the other one to read.
fn pair<T>(buffers: &mut [T; 2], now: usize) -> (&mut T, &T) {
    let [a, b] = buffers;
    match now {
        0 => (a, b),
        _ => (b, a),
    }
}

/// A thread's own buffers for the runs it opens, made on first use: the sealed copy (when
/// it is not kept for a hash) and the plaintext (when it goes out by positioned writes).
#[derive(Default)]
struct RunBuffers {
    sealed: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
}

/// One run of chunks of a payload of `len` sealed bytes; `populate`: its plaintext goes to
/// a mapped output, whose pages are allocated first.
struct Run {
    index: usize,
    last: bool,
    len: usize,
    populate: bool,
}

impl Run {
    /// The run's sealed bytes: [`RUN_SEALED`], or fewer for the last.
    fn sealed_len(&self) -> usize {
        RUN_SEALED.min(self.len - self.index * RUN_SEALED)
    }

    /// Copies the run into `sealed` (or the thread's buffer), authenticates and decrypts the
    /// copy into `plain` (or the thread's buffer, then written to `file`); returns the
    /// plaintext size.
    fn open(
        &self,
        cipher: &PayloadCipher,
        chunks: &Chunks<'_>,
        buffers: &mut RunBuffers,
        sealed: Option<&mut [u8]>,
        plain: Option<&mut [u8]>,
        file: Option<(&File, u64)>,
    ) -> Result<usize, StreamError> {
        let at = self.index * RUN_SEALED;
        let n = self.sealed_len();
        let plain_n = n - n.div_ceil(ENCRYPTED_CHUNK_SIZE) * TAG_SIZE;
        let sealed = match sealed {
            Some(sealed) => sealed,
            None => grown(&mut buffers.sealed, n),
        };
        chunks.read(at as u64, sealed).map_err(StreamError::Read)?;
        let first = (self.index * WRITE_RUN) as u64;
        let decrypt = |out: &mut [u8]| {
            cipher
                .open_chunks(first, self.last, sealed, out)
                .map_err(StreamError::Decrypt)
        };
        match (plain, file) {
            (Some(out), _) => {
                if self.populate {
                    crate::engine::mmap::populate(out).map_err(StreamError::Write)?;
                }
                decrypt(out)?
            }
            (None, Some((file, offset))) => {
                // A pair of chunks at a time, so that the plaintext buffer and the sealed
                // copy fit a core's L2 cache together (see WRITE_PAIR).
                let start = offset + (self.index * RUN_PLAIN) as u64;
                let mut at = start;
                let pair = WRITE_PAIR * ENCRYPTED_CHUNK_SIZE;
                for (i, part) in sealed.chunks(pair).enumerate() {
                    let n = part.len() - part.len().div_ceil(ENCRYPTED_CHUNK_SIZE) * TAG_SIZE;
                    let out = grown(&mut buffers.plain, n);
                    let last = self.last && (i + 1) * pair >= sealed.len();
                    cipher
                        .open_chunks(first + (i * WRITE_PAIR) as u64, last, part, out)
                        .map_err(StreamError::Decrypt)?;
                    file.write_all_at(out, at).map_err(StreamError::Write)?;
                    at += n as u64;
                }
                writeback::start(file, start, at - start);
            }
            // The empty final chunk of an empty payload: authenticated, nothing to write.
            (None, None) => decrypt(&mut [])?,
        }
        Ok(plain_n)
    }
}

/// The first `n` bytes of `buf`, grown to hold them.
fn grown(buf: &mut Vec<u8>, n: usize) -> &mut [u8] {
    if buf.len() < n {
        buf.resize(n, 0);
    }
    &mut buf[..n]
}

/// Encrypts `plaintext` into `out`, which must be exactly [`stream::encrypted_len`] long, on
/// the current pool of `threads`.
pub fn seal_to_slice(cipher: &PayloadCipher, plaintext: &[u8], out: &mut [u8], threads: usize) {
    assert_eq!(
        out.len() as u64,
        stream::encrypted_len(plaintext.len() as u64)
    );
    seal_chunks(cipher, 0, true, plaintext, out, threads);
}

/// Seals a run of consecutive chunks on every core of the current pool of `threads`: the
/// parallel twin of [`PayloadCipher::seal_chunks`], with the same arguments and the pool's
/// thread count.
pub fn seal_chunks(
    cipher: &PayloadCipher,
    first: u64,
    ends: bool,
    plaintext: &[u8],
    out: &mut [u8],
    threads: usize,
) {
    if plaintext.len() <= PLAIN_GROUP {
        // One group (or an empty plaintext): no trip through the pool.
        return cipher.seal_chunks(first, ends, plaintext, out);
    }
    let group = group_for(plaintext.len().div_ceil(CHUNK_SIZE), threads);
    let groups = plaintext.len().div_ceil(group * CHUNK_SIZE);
    plaintext
        .par_chunks(group * CHUNK_SIZE)
        .zip(out.par_chunks_mut(group * ENCRYPTED_CHUNK_SIZE))
        .enumerate()
        .for_each(|(g, (plain, sealed))| {
            let index = first + (g * group) as u64;
            cipher.seal_chunks(index, ends && g + 1 == groups, plain, sealed);
        });
}

/// Encrypts `plaintext` into `out` (a mapped output file, exactly [`stream::encrypted_len`]
/// long) on every core, reporting progress. Each run of plaintext is read once, into
/// private memory ([`Chunks::read`]), so a file that shrinks meanwhile is this error.
pub(crate) fn seal_to_map(
    cipher: &PayloadCipher,
    plaintext: Chunks<'_>,
    out: &mut [u8],
    progress: Progress<'_>,
) -> Result<(), StreamError> {
    assert_eq!(out.len() as u64, stream::encrypted_len(plaintext.len()));
    seal_runs(cipher, &plaintext, 0, out, true, progress)
}

/// Seals the runs of `plaintext` from run `first` into `out`, exactly their sealed size;
/// `populate`: `out` is part of a mapped output, whose pages each run allocates before
/// writing them ([`crate::engine::mmap::populate`]).
fn seal_runs(
    cipher: &PayloadCipher,
    plaintext: &Chunks<'_>,
    first: usize,
    out: &mut [u8],
    populate: bool,
    progress: Progress<'_>,
) -> Result<(), StreamError> {
    let len = plaintext.len() as usize;
    if len == 0 {
        // The one empty final chunk of an empty plaintext.
        if populate {
            crate::engine::mmap::populate(out).map_err(StreamError::Write)?;
        }
        cipher.seal_chunks(0, true, &[], out);
        return Ok(());
    }
    let runs = len.div_ceil(RUN_PLAIN);
    out.par_chunks_mut(RUN_SEALED)
        .enumerate()
        .try_for_each_init(
            || Zeroizing::new(Vec::new()),
            |buf, (i, sealed)| {
                let run = first + i;
                let at = run * RUN_PLAIN;
                let plain = grown(buf, RUN_PLAIN.min(len - at));
                plaintext
                    .read(at as u64, plain)
                    .map_err(StreamError::Read)?;
                if populate {
                    crate::engine::mmap::populate(sealed).map_err(StreamError::Write)?;
                }
                cipher.seal_chunks((run * WRITE_RUN) as u64, run + 1 == runs, plain, sealed);
                progress(plain.len() as u64);
                Ok(())
            },
        )
}

/// [`seal_to_map`], feeding `hash` the sealed bytes in order, one window
/// ([`HASH_WINDOW_RUNS`]) behind the encryption: while the pool seals a window, one of its
/// threads hashes the window before,
/// so a signature costs one thread's hashing beside the sealing rather than a second pass
/// after it.
pub(crate) fn seal_to_map_hashing(
    cipher: &PayloadCipher,
    plaintext: Chunks<'_>,
    out: &mut [u8],
    hash: Hash<'_>,
    progress: Progress<'_>,
) -> Result<(), StreamError> {
    assert_eq!(out.len() as u64, stream::encrypted_len(plaintext.len()));
    let mut rest = out;
    let mut sealed_before: &[u8] = &[];
    let mut first = 0;
    loop {
        let window = (HASH_WINDOW_RUNS * RUN_SEALED).min(rest.len());
        let (now, after) = std::mem::take(&mut rest).split_at_mut(window);
        let ((), sealed) = rayon::join(
            || hash(sealed_before),
            || seal_runs(cipher, &plaintext, first, now, true, progress),
        );
        sealed?;
        sealed_before = now;
        if after.is_empty() {
            hash(sealed_before);
            return Ok(());
        }
        (rest, first) = (after, first + HASH_WINDOW_RUNS);
    }
}

/// [`seal_to_file`], feeding `hash` the sealed bytes in order: each window of
/// [`HASH_WINDOW_RUNS`] runs is sealed into memory by the pool while one of its threads
/// hashes and writes the window before, so memory stays at two windows whatever the size.
pub(crate) fn seal_to_file_hashing(
    cipher: &PayloadCipher,
    plaintext: Chunks<'_>,
    file: &File,
    offset: u64,
    hash: Hash<'_>,
    progress: Progress<'_>,
) -> Result<(), StreamError> {
    let total = stream::encrypted_len(plaintext.len()) as usize;
    let mut windows = [Vec::new(), Vec::new()];
    // Where the window before starts in the payload, and its length.
    let (mut at, mut before) = (0, 0);
    let (mut first, mut now) = (0, 0);
    let mut write_out = |window: &[u8], at: usize| {
        hash(window);
        let at = offset + at as u64;
        file.write_all_at(window, at).map_err(StreamError::Write)?;
        writeback::start(file, at, window.len() as u64);
        Ok(())
    };
    while at + before < total {
        let start = at + before;
        let n = (HASH_WINDOW_RUNS * RUN_SEALED).min(total - start);
        let (sealing, sealed) = pair(&mut windows, now);
        sealing.resize(n, 0);
        let (written, done) = rayon::join(
            || write_out(&sealed[..before], at),
            || seal_runs(cipher, &plaintext, first, sealing, false, progress),
        );
        written.and(done)?;
        (at, before) = (start, n);
        (first, now) = (first + HASH_WINDOW_RUNS, 1 - now);
    }
    write_out(&windows[1 - now][..before], at)
}

/// Encrypts `plaintext` into `file` at `offset`, with positioned writes from every thread,
/// each run's writeback started as soon as it is written ([`writeback`]).
pub(crate) fn seal_to_file(
    cipher: &PayloadCipher,
    plaintext: Chunks<'_>,
    file: &File,
    offset: u64,
    progress: Progress<'_>,
) -> Result<(), StreamError> {
    let len = plaintext.len() as usize;
    if len == 0 {
        let mut out = [0u8; TAG_SIZE];
        cipher.seal_chunks(0, true, &[], &mut out);
        return file.write_all_at(&out, offset).map_err(StreamError::Write);
    }
    let runs = len.div_ceil(RUN_PLAIN);
    // One buffer a thread, a run's plaintext read into it where its chunks go and sealed in
    // place: a quarter of a MiB that stays in the core's L2 cache.
    (0..runs).into_par_iter().try_for_each_init(
        || Zeroizing::new(Vec::new()),
        |buf, run| {
            let at = run * RUN_PLAIN;
            let plain_len = RUN_PLAIN.min(len - at);
            let sealed = grown(buf, stream::encrypted_len(plain_len as u64) as usize);
            plaintext
                .read_spread(at as u64, plain_len, sealed)
                .map_err(StreamError::Read)?;
            let first = (run * WRITE_RUN) as u64;
            cipher.seal_chunks_in_place(first, run + 1 == runs, plain_len, sealed);
            let at = offset + (run * RUN_SEALED) as u64;
            file.write_all_at(sealed, at).map_err(StreamError::Write)?;
            writeback::start(file, at, sealed.len() as u64);
            progress(plain_len as u64);
            Ok(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_mapped_from_eight_threads() {
        for threads in 1..=16 {
            assert_eq!(maps_output(threads), threads >= 8, "{threads} threads");
        }
    }

    #[test]
    fn a_window_of_chunks_is_shared_out_among_all_threads() {
        let in_pool = |threads: usize, chunks: usize| chunks.div_ceil(group_for(chunks, threads));
        // A 64-chunk window: 4 tasks of 16 chunks on 2 threads, and one for each of 2 * 16
        // tasks on 16 threads, not 4 tasks that leave 12 threads idle.
        assert_eq!(in_pool(2, 64), 4);
        assert_eq!(in_pool(16, 64), 32);
        // A whole file keeps tasks of a full group.
        assert_eq!(in_pool(16, 16_384), 16_384 / GROUP);
        assert_eq!(in_pool(16, 1), 1);
    }

    /// Lengths around every edge the parallel paths have: chunks, runs, windows.
    fn lengths() -> [usize; 8] {
        let window = HASH_WINDOW_RUNS * RUN_PLAIN;
        [
            0,
            1,
            3 * CHUNK_SIZE + 5,
            RUN_PLAIN,
            WRITER_WINDOW_RUNS * RUN_PLAIN + 1,
            window,
            window + 1,
            2 * window + CHUNK_SIZE,
        ]
    }

    /// The thread count of the pool the tests run in, as a public entry point reads it.
    fn threads() -> usize {
        rayon::current_num_threads()
    }

    fn cipher() -> PayloadCipher {
        let key = crate::keys::recipient::FileKey::from_slice(&[7; 16]).unwrap();
        PayloadCipher::new(&key, &[9; stream::NONCE_SIZE])
    }

    #[test]
    fn hashing_while_sealing_sees_every_sealed_byte_in_order() {
        let cipher = cipher();
        for len in lengths() {
            let plaintext: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed_len = stream::encrypted_len(len as u64) as usize;
            let mut expected = vec![0u8; sealed_len];
            seal_to_slice(&cipher, &plaintext, &mut expected, threads());
            let mut out = vec![0u8; sealed_len];
            let mut hashed = Vec::new();
            let hash = &mut |bytes: &[u8]| hashed.extend_from_slice(bytes);
            let chunks = Chunks::Memory(&plaintext);
            seal_to_map_hashing(&cipher, chunks, &mut out, hash, &|_| {}).unwrap();
            assert!(out == expected, "{len}: sealed bytes differ");
            assert!(
                hashed == expected,
                "{len}: hashed bytes differ from the sealed ones"
            );
            let mut mapped = vec![0u8; sealed_len];
            seal_to_map(&cipher, chunks, &mut mapped, &|_| {}).unwrap();
            assert!(mapped == expected, "{len}: seal_to_map differs");
            let file = tempfile::tempfile().unwrap();
            let mut hashed = Vec::new();
            let hash = &mut |bytes: &[u8]| hashed.extend_from_slice(bytes);
            seal_to_file_hashing(&cipher, chunks, &file, 3, hash, &|_| {}).unwrap();
            let mut written = vec![0u8; sealed_len];
            file.read_exact_at(&mut written, 3).unwrap();
            assert!(written == expected, "{len}: seal_to_file_hashing differs");
            assert!(
                hashed == expected,
                "{len}: seal_to_file_hashing hashed otherwise"
            );
        }
    }

    #[test]
    fn every_sink_gets_the_plaintext_and_a_hash_every_sealed_byte_in_order() {
        let cipher = cipher();
        for len in lengths() {
            let plaintext: Vec<u8> = (0..len).map(|i| (i % 241) as u8).collect();
            let mut sealed = vec![0u8; stream::encrypted_len(len as u64) as usize];
            seal_to_slice(&cipher, &plaintext, &mut sealed, threads());
            let chunks = Chunks::Memory(&sealed);
            for hashing in [false, true] {
                // Opens into `sink`, returns what was hashed.
                let run = |sink: Sink<'_>| {
                    let mut hashed = Vec::new();
                    let mut feed = |bytes: &[u8]| hashed.extend_from_slice(bytes);
                    let hash = hashing.then_some(&mut feed as Hash<'_>);
                    let n = open(&cipher, chunks, sink, hash, &|_| {}, threads()).unwrap();
                    assert_eq!(n, len as u64);
                    hashed
                };
                let expected: &[u8] = if hashing { &sealed } else { &[] };

                let mut out = vec![0u8; len];
                assert!(run(Sink::Slice(&mut out)) == expected, "{len}: slice hash");
                assert!(out == plaintext, "{len}: slice");

                let mut written = Vec::new();
                assert!(
                    run(Sink::Writer(&mut written)) == expected,
                    "{len}: writer hash"
                );
                assert!(written == plaintext, "{len}: writer");

                let file = tempfile::tempfile().unwrap();
                file.set_len(len as u64).unwrap();
                assert!(run(Sink::File(&file, 0)) == expected, "{len}: file hash");
                let mut read = vec![0u8; len];
                file.read_exact_at(&mut read, 0).unwrap();
                assert!(read == plaintext, "{len}: file");
            }
        }
    }

    #[test]
    fn a_hash_sees_runs_in_order_from_many_threads_and_stops_before_the_first_corrupt_one() {
        let cipher = cipher();
        let plaintext = vec![9u8; 40 * RUN_PLAIN];
        let mut sealed = vec![0u8; stream::encrypted_len(plaintext.len() as u64) as usize];
        seal_to_slice(&cipher, &plaintext, &mut sealed, threads());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(8)
            .build()
            .unwrap();
        for _ in 0..20 {
            let mut hashed = Vec::new();
            let mut feed = |bytes: &[u8]| hashed.extend_from_slice(bytes);
            let file = tempfile::tempfile().unwrap();
            let (sink, chunks) = (Sink::File(&file, 0), Chunks::Memory(&sealed));
            pool.install(|| open(&cipher, chunks, sink, Some(&mut feed), &|_| {}, 8))
                .unwrap();
            assert!(
                hashed == sealed,
                "8 threads: hashed bytes differ from the sealed ones"
            );
        }
        // Runs 7 and 30 corrupt: 30 may well be met first, 7 is the one to report.
        for run in [7, 30] {
            sealed[run * RUN_SEALED + 100] ^= 1;
        }
        for _ in 0..20 {
            let mut hashed = Vec::new();
            let mut feed = |bytes: &[u8]| hashed.extend_from_slice(bytes);
            let mut out = vec![0u8; plaintext.len()];
            let sink = Sink::Slice(&mut out);
            let chunks = Chunks::Memory(&sealed);
            let e = pool
                .install(|| open(&cipher, chunks, sink, Some(&mut feed), &|_| {}, 8))
                .unwrap_err();
            let chunk = (7 * WRITE_RUN) as u64;
            assert!(
                matches!(e, StreamError::Decrypt(DecryptError::PayloadCorrupt { chunk: c }) if c == chunk),
                "{e:?}"
            );
            assert!(
                hashed.len() <= 7 * RUN_SEALED,
                "hashed past the corrupt run"
            );
            assert!(sealed.starts_with(&hashed), "hashed bytes out of order");
        }
    }

    #[test]
    fn a_payload_in_a_file_that_shrinks_is_a_read_error_and_releases_nothing() {
        let cipher = cipher();
        let plaintext = vec![5u8; 3 * RUN_PLAIN];
        let mut sealed = vec![0u8; stream::encrypted_len(plaintext.len() as u64) as usize];
        seal_to_slice(&cipher, &plaintext, &mut sealed, threads());
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(&sealed, 0).unwrap();
        let len = sealed.len() as u64;
        let chunks = Chunks::File {
            file: &file,
            start: 0,
            len,
        };
        // Checked whole, then cut short before the runs are read.
        check_payload(&cipher, &chunks).unwrap();
        file.set_len(len - 1000).unwrap();
        let mut written = Vec::new();
        let sink = Sink::Writer(&mut written);
        let e = open(&cipher, chunks, sink, None, &|_| {}, threads()).unwrap_err();
        assert!(matches!(e, StreamError::Read(_)), "{e:?}");
        assert!(plaintext.starts_with(&written));
        assert!(written.len() < plaintext.len());
    }
}
