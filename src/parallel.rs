//! Every chunk on every core: rayon schedules [`PayloadCipher`] calls over groups of chunks.
//!
//! The chunk arithmetic, nonces and AEAD calls are those of the sequential path in
//! [`crate::stream`]; only the scheduling differs. The payload size is validated before any
//! chunk is touched, and the last chunk is authenticated first, so a truncated file fails
//! before any work is spent on the rest. The pool is whatever rayon pool the caller runs in
//! (`ThreadPool::install` picks the thread count).
//!
//! The file paths report progress through a [`Progress`] callback, called from any worker
//! thread with the number of plaintext bytes each finished group held.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use rayon::prelude::*;
use zeroize::Zeroizing;

use crate::error::{DecryptError, StreamError};
use crate::primitives::TAG_SIZE;
use crate::stream::{self, PayloadCipher, CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE};

/// A progress callback: plaintext bytes just finished, from any thread.
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// Chunks per task: 1 MiB of plaintext, enough to amortise scheduling, small enough to balance.
const GROUP: usize = 16;
const PLAIN_GROUP: usize = GROUP * CHUNK_SIZE;
const SEALED_GROUP: usize = GROUP * ENCRYPTED_CHUNK_SIZE;
/// Chunks per positioned write, and per task of the file paths: 256 KiB, so that the buffer a
/// thread fills, and the kernel then copies from, stays in the core's L2 cache.
const WRITE_RUN: usize = 4;

/// Chunks per task for a run of `chunks`: [`GROUP`], or fewer where the run is too short to
/// give every thread of the pool [`TASKS_PER_THREAD`] tasks (a 4 MiB window on 16 threads
/// would otherwise keep only 4 of them busy).
fn group_for(chunks: usize) -> usize {
    chunks
        .div_ceil(TASKS_PER_THREAD * rayon::current_num_threads())
        .clamp(1, GROUP)
}

/// Tasks each thread should get from a short run of chunks, so that a thread slowed down
/// by other work leaves little for the rest to wait on.
const TASKS_PER_THREAD: usize = 2;

/// Checks the size of `encrypted` (the chunks, without the payload nonce) and authenticates
/// its last chunk; returns the plaintext size.
pub fn check_payload(cipher: &PayloadCipher, encrypted: &[u8]) -> Result<u64, DecryptError> {
    let result = stream::plaintext_len(encrypted.len() as u64).and_then(|len| {
        let start = (encrypted.len() - 1) / ENCRYPTED_CHUNK_SIZE * ENCRYPTED_CHUNK_SIZE;
        open_last(cipher, start, &encrypted[start..]).map(|()| len)
    });
    match result {
        Err(DecryptError::Truncated | DecryptError::PayloadCorrupt { .. })
            if ends_before_the_end(cipher, encrypted) =>
        {
            Err(DecryptError::TrailingData)
        }
        other => other,
    }
}

/// Authenticates the chunk at byte `start` as the last chunk, releasing nothing.
fn open_last(cipher: &PayloadCipher, start: usize, chunk: &[u8]) -> Result<(), DecryptError> {
    let mut scratch = vec![0; chunk.len().saturating_sub(TAG_SIZE)];
    let index = (start / ENCRYPTED_CHUNK_SIZE) as u64;
    let result = cipher.open_chunks(index, true, chunk, &mut scratch);
    scratch.fill(0);
    result
}

/// Whether the payload really ends at an earlier (full) chunk and has bytes after it.
fn ends_before_the_end(cipher: &PayloadCipher, encrypted: &[u8]) -> bool {
    let full_chunks = encrypted.len() / ENCRYPTED_CHUNK_SIZE;
    // The candidate final chunk is the last full one that is followed by more bytes.
    let candidate = match encrypted.len() % ENCRYPTED_CHUNK_SIZE {
        0 => full_chunks.checked_sub(2),
        _ => full_chunks.checked_sub(1),
    };
    candidate.is_some_and(|i| {
        let start = i * ENCRYPTED_CHUNK_SIZE;
        let chunk = &encrypted[start..start + ENCRYPTED_CHUNK_SIZE];
        open_last(cipher, start, chunk).is_ok()
    })
}

/// Decrypts `encrypted` into `out`, which must be exactly the plaintext size.
pub fn open_to_slice(
    cipher: &PayloadCipher,
    encrypted: &[u8],
    out: &mut [u8],
) -> Result<(), DecryptError> {
    open_to_map(cipher, encrypted, out, &|_| {}).map(drop)
}

/// Opens a run of consecutive chunks on every core: the parallel twin of
/// [`PayloadCipher::open_chunks`], with the same arguments. Of several failing chunks the
/// first is reported, and on failure `out` is wiped.
pub fn open_chunks(
    cipher: &PayloadCipher,
    first: u64,
    ends: bool,
    encrypted: &[u8],
    out: &mut [u8],
) -> Result<(), DecryptError> {
    open_chunks_reporting(cipher, first, ends, encrypted, out, &|_| {})
}

/// [`open_chunks`], calling `progress` with the plaintext size of each finished group.
fn open_chunks_reporting(
    cipher: &PayloadCipher,
    first: u64,
    ends: bool,
    encrypted: &[u8],
    out: &mut [u8],
    progress: Progress<'_>,
) -> Result<(), DecryptError> {
    let result = if encrypted.len() <= SEALED_GROUP {
        // One group (an empty payload included): nothing to share out, so no trip through
        // the pool. Small files in a batch are all like this.
        let result = cipher.open_chunks(first, ends, encrypted, out);
        progress(out.len() as u64);
        result
    } else {
        let group = group_for(encrypted.len().div_ceil(ENCRYPTED_CHUNK_SIZE));
        let groups = encrypted.len().div_ceil(group * ENCRYPTED_CHUNK_SIZE);
        let results: Vec<_> = encrypted
            .par_chunks(group * ENCRYPTED_CHUNK_SIZE)
            .zip(out.par_chunks_mut(group * CHUNK_SIZE))
            .enumerate()
            .map(|(g, (sealed, plain))| {
                let index = first + (g * group) as u64;
                let result = cipher.open_chunks(index, ends && g + 1 == groups, sealed, plain);
                progress(plain.len() as u64);
                result
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

/// Whether the file paths fill their output through a writable mapping
/// ([`crate::mmap::MappedOutput`]) rather than positioned writes, on a pool of `threads`.
///
/// Positioned writes to one file serialize on its lock in the kernel, so they stop scaling
/// after a few threads; page faults on a shared mapping do not. Measured on 1 GiB into tmpfs
/// (`benches/scaling.sh`): on 16 cores, unseal at 8 threads took 0.385 s with writes and
/// 0.284 s mapped, at 16 threads 0.458 s and 0.286 s; at 4 threads they were even, and at 2
/// the writes were faster (0.558 s against 0.753 s), as on the 2-core machine.
pub fn maps_output(threads: usize) -> bool {
    threads >= MAP_FROM_THREADS
}

const MAP_FROM_THREADS: usize = 8;

/// Decrypts `encrypted` into `out`, exactly the plaintext size (a mapped output file), on
/// every core; returns the plaintext size. The caller must discard `out` on error.
pub fn open_to_map(
    cipher: &PayloadCipher,
    encrypted: &[u8],
    out: &mut [u8],
    progress: Progress<'_>,
) -> Result<u64, DecryptError> {
    let len = check_payload(cipher, encrypted)?;
    assert_eq!(
        out.len() as u64,
        len,
        "output must be exactly the plaintext size"
    );
    open_chunks_reporting(cipher, 0, true, encrypted, out, progress)?;
    Ok(len)
}

/// Chunks per window of [`open_to_writer`]: 4 MiB of plaintext.
const WINDOW: usize = 64;

/// Decrypts `encrypted` to `out` in file order, a window of chunks at a time: each window on
/// every core, written while the next one decrypts. Memory: two windows (8 MiB). The payload
/// is checked first (size, last chunk), and only authenticated windows are written: on a
/// corrupt chunk, `out` has received the plaintext of the windows before it.
pub fn open_to_writer<W: Write + Send>(
    cipher: &PayloadCipher,
    encrypted: &[u8],
    mut out: W,
    progress: Progress<'_>,
) -> Result<u64, StreamError> {
    let len = check_payload(cipher, encrypted).map_err(StreamError::Decrypt)?;
    let windows = encrypted.len().div_ceil(WINDOW * ENCRYPTED_CHUNK_SIZE);
    let mut buffers = [
        vec![0u8; WINDOW * CHUNK_SIZE],
        vec![0u8; WINDOW * CHUNK_SIZE],
    ];
    let mut ready_len = 0;
    let mut result = Ok(());
    for (w, sealed) in encrypted.chunks(WINDOW * ENCRYPTED_CHUNK_SIZE).enumerate() {
        let plain_len = sealed.len() - sealed.len().div_ceil(ENCRYPTED_CHUNK_SIZE) * TAG_SIZE;
        let [ready, next] = &mut buffers;
        let first = (w * WINDOW) as u64;
        let (written, opened) = rayon::join(
            || out.write_all(&ready[..ready_len]),
            || {
                open_chunks(
                    cipher,
                    first,
                    w + 1 == windows,
                    sealed,
                    &mut next[..plain_len],
                )
            },
        );
        result = written
            .map_err(StreamError::Write)
            .and_then(|()| opened.map_err(StreamError::Decrypt));
        if result.is_err() {
            break;
        }
        progress(ready_len as u64);
        buffers.swap(0, 1);
        ready_len = plain_len;
    }
    let result = result.and_then(|()| {
        out.write_all(&buffers[0][..ready_len])
            .and_then(|()| out.flush())
            .map_err(StreamError::Write)
    });
    progress(ready_len as u64);
    buffers.iter_mut().for_each(|b| b.fill(0));
    result.map(|()| len)
}

/// Decrypts `encrypted` into `file` at `offset`, with positioned writes from every thread.
///
/// The caller must discard the file on error: chunks before and after the failing one may
/// have been written.
pub fn open_to_file(
    cipher: &PayloadCipher,
    encrypted: &[u8],
    file: &File,
    offset: u64,
    progress: Progress<'_>,
) -> Result<u64, DecryptError> {
    let len = check_payload(cipher, encrypted)?;
    let runs = encrypted.len().div_ceil(WRITE_RUN * ENCRYPTED_CHUNK_SIZE);
    let results: Vec<_> = encrypted
        .par_chunks(WRITE_RUN * ENCRYPTED_CHUNK_SIZE)
        .enumerate()
        .map_init(
            || Zeroizing::new(vec![0u8; WRITE_RUN * CHUNK_SIZE]),
            |buf, (r, sealed)| {
                let plain_len =
                    sealed.len() - sealed.len().div_ceil(ENCRYPTED_CHUNK_SIZE) * TAG_SIZE;
                let plain = &mut buf[..plain_len];
                let first = (r * WRITE_RUN) as u64;
                cipher.open_chunks(first, r + 1 == runs, sealed, plain)?;
                let at = offset + (r * WRITE_RUN * CHUNK_SIZE) as u64;
                file.write_all_at(plain, at).map_err(DecryptError::Io)?;
                progress(plain_len as u64);
                Ok::<(), DecryptError>(())
            },
        )
        .collect();
    // The first failing run in file order, whatever order the threads met them in.
    results.into_iter().collect::<Result<(), _>>()?;
    Ok(len)
}

/// Encrypts `plaintext` into `out`, which must be exactly [`stream::encrypted_len`] long.
pub fn seal_to_slice(cipher: &PayloadCipher, plaintext: &[u8], out: &mut [u8]) {
    assert_eq!(
        out.len() as u64,
        stream::encrypted_len(plaintext.len() as u64)
    );
    seal_chunks(cipher, 0, true, plaintext, out);
}

/// Seals a run of consecutive chunks on every core: the parallel twin of
/// [`PayloadCipher::seal_chunks`], with the same arguments.
pub fn seal_chunks(
    cipher: &PayloadCipher,
    first: u64,
    ends: bool,
    plaintext: &[u8],
    out: &mut [u8],
) {
    seal_chunks_reporting(cipher, first, ends, plaintext, out, &|_| {})
}

/// [`seal_chunks`], calling `progress` with the plaintext size of each finished group.
fn seal_chunks_reporting(
    cipher: &PayloadCipher,
    first: u64,
    ends: bool,
    plaintext: &[u8],
    out: &mut [u8],
    progress: Progress<'_>,
) {
    if plaintext.len() <= PLAIN_GROUP {
        // One group (or an empty plaintext): no trip through the pool.
        cipher.seal_chunks(first, ends, plaintext, out);
        return progress(plaintext.len() as u64);
    }
    let group = group_for(plaintext.len().div_ceil(CHUNK_SIZE));
    let groups = plaintext.len().div_ceil(group * CHUNK_SIZE);
    plaintext
        .par_chunks(group * CHUNK_SIZE)
        .zip(out.par_chunks_mut(group * ENCRYPTED_CHUNK_SIZE))
        .enumerate()
        .for_each(|(g, (plain, sealed))| {
            let index = first + (g * group) as u64;
            cipher.seal_chunks(index, ends && g + 1 == groups, plain, sealed);
            progress(plain.len() as u64);
        });
}

/// Encrypts `plaintext` into `out` (a mapped output file, exactly [`stream::encrypted_len`]
/// long) on every core, reporting progress.
pub fn seal_to_map(
    cipher: &PayloadCipher,
    plaintext: &[u8],
    out: &mut [u8],
    progress: Progress<'_>,
) {
    assert_eq!(
        out.len() as u64,
        stream::encrypted_len(plaintext.len() as u64)
    );
    seal_chunks_reporting(cipher, 0, true, plaintext, out, progress);
}

/// Groups per window of [`seal_to_map_hashing`]: 32 MiB of plaintext, enough to keep 16
/// threads busy, small enough that hashing the last window alone takes a few milliseconds.
const HASH_WINDOW: usize = 32;

/// [`seal_to_map`], feeding `hash` the sealed bytes in order, one window behind the
/// encryption: while the pool seals a window, one of its threads hashes the window before,
/// so a signature costs one thread's hashing beside the sealing rather than a second pass
/// after it.
pub fn seal_to_map_hashing(
    cipher: &PayloadCipher,
    plaintext: &[u8],
    out: &mut [u8],
    hash: &mut (dyn FnMut(&[u8]) + Send),
    progress: Progress<'_>,
) {
    assert_eq!(
        out.len() as u64,
        stream::encrypted_len(plaintext.len() as u64)
    );
    let (mut plain, mut rest) = (plaintext, out);
    let mut sealed_before: &[u8] = &[];
    let mut first = 0u64;
    loop {
        let n = plain.len().min(HASH_WINDOW * PLAIN_GROUP);
        let last = n == plain.len();
        let sealed_len = match last {
            true => stream::encrypted_len(n as u64) as usize,
            false => n / CHUNK_SIZE * ENCRYPTED_CHUNK_SIZE,
        };
        let (window, after) = std::mem::take(&mut rest).split_at_mut(sealed_len);
        let (p, later) = plain.split_at(n);
        rayon::join(
            || hash(sealed_before),
            || seal_chunks_reporting(cipher, first, last, p, window, progress),
        );
        sealed_before = window;
        if last {
            return hash(sealed_before);
        }
        (plain, rest, first) = (later, after, first + (n / CHUNK_SIZE) as u64);
    }
}

/// Encrypts `plaintext` into `file` at `offset`, with positioned writes from every thread.
pub fn seal_to_file(
    cipher: &PayloadCipher,
    plaintext: &[u8],
    file: &File,
    offset: u64,
    progress: Progress<'_>,
) -> io::Result<()> {
    if plaintext.is_empty() {
        let mut out = [0u8; TAG_SIZE];
        cipher.seal_chunks(0, true, plaintext, &mut out);
        return file.write_all_at(&out, offset);
    }
    let runs = plaintext.len().div_ceil(WRITE_RUN * CHUNK_SIZE);
    plaintext
        .par_chunks(WRITE_RUN * CHUNK_SIZE)
        .enumerate()
        .try_for_each_init(
            || vec![0u8; WRITE_RUN * ENCRYPTED_CHUNK_SIZE],
            |buf, (r, plain)| {
                let sealed = &mut buf[..stream::encrypted_len(plain.len() as u64) as usize];
                cipher.seal_chunks((r * WRITE_RUN) as u64, r + 1 == runs, plain, sealed);
                let at = offset + (r * WRITE_RUN * ENCRYPTED_CHUNK_SIZE) as u64;
                file.write_all_at(sealed, at)?;
                progress(plain.len() as u64);
                Ok(())
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_of_chunks_is_shared_out_among_all_threads() {
        let in_pool = |threads: usize, chunks: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
            pool.unwrap().install(|| chunks.div_ceil(group_for(chunks)))
        };
        // A 64-chunk window of the stream paths: 4 tasks of 16 chunks on 2 threads, and
        // one for each of 2 * 16 tasks on 16 threads, not 4 tasks that leave 12 threads idle.
        assert_eq!(in_pool(2, WINDOW), 4);
        assert_eq!(in_pool(16, WINDOW), 32);
        // A whole file keeps tasks of a full group.
        assert_eq!(in_pool(16, 16_384), 16_384 / GROUP);
        assert_eq!(in_pool(16, 1), 1);
    }

    #[test]
    fn hashing_while_sealing_sees_every_sealed_byte_in_order() {
        let key = crate::recipient::FileKey::from_slice(&[7; 16]).unwrap();
        let cipher = PayloadCipher::new(&key, &[9; stream::NONCE_SIZE]);
        let window = HASH_WINDOW * PLAIN_GROUP;
        for len in [
            0,
            1,
            3 * CHUNK_SIZE + 5,
            window,
            window + 1,
            2 * window + CHUNK_SIZE,
        ] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed_len = stream::encrypted_len(len as u64) as usize;
            let mut expected = vec![0u8; sealed_len];
            seal_to_map(&cipher, &plaintext, &mut expected, &|_| {});
            let mut out = vec![0u8; sealed_len];
            let mut hashed = Vec::new();
            let hash = &mut |bytes: &[u8]| hashed.extend_from_slice(bytes);
            seal_to_map_hashing(&cipher, &plaintext, &mut out, hash, &|_| {});
            assert!(out == expected, "{len}: sealed bytes differ");
            assert!(
                hashed == expected,
                "{len}: hashed bytes differ from the sealed ones"
            );
        }
    }
}
