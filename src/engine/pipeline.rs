//! Streams on every core: a bounded pipeline of windows of chunks.
//!
//! A reader thread fills windows of `PIPELINE_WINDOW_CHUNKS` chunks (plus one byte of
//! look-ahead, which tells whether a window holds the last chunk); the calling thread
//! transforms each window on the current rayon pool; a writer thread writes them out in order.
//! Buffers circulate between the stages, so nothing is allocated per window, and memory stays
//! bounded whatever the stream's size: at most `PIPELINE_BUFFERS` windows of each side are
//! alive at once, 48 MiB and a few bytes in all (`PIPELINE_MEMORY`, checked at compile time
//! against 64 MiB). The three sizes are in `parallel/sizes.rs`.
//!
//! A window is written only after every chunk in it has authenticated, so a stream never
//! releases unauthenticated plaintext; what it releases before an error is a prefix of
//! authenticated chunks.

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread;

use crate::engine::parallel;
use crate::engine::parallel::sizes::{PIPELINE_BUFFERS, PIPELINE_WINDOW_CHUNKS};
use crate::error::{DecryptError, StreamError};
use crate::format::stream::{PayloadCipher, CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE};
use crate::primitives::TAG_SIZE;

/// Decrypts the chunks of `input` (after the payload nonce) into `output`, each window on
/// the current pool of `threads`.
pub fn open<R: Read + Send, W: Write + Send>(
    cipher: &PayloadCipher,
    input: R,
    output: W,
    threads: usize,
) -> Result<(), StreamError> {
    run(
        input,
        output,
        PIPELINE_WINDOW_CHUNKS * ENCRYPTED_CHUNK_SIZE,
        |first, last, window, out| {
            let len = window_plaintext_len(first, last, window.len())?;
            out.resize(len, 0);
            parallel::open_chunks(cipher, first, last, window, out, threads)
        },
    )
}

/// Encrypts `input` into chunks written to `output` (after the payload nonce), each window
/// on the current pool of `threads`.
pub fn seal<R: Read + Send, W: Write + Send>(
    cipher: &PayloadCipher,
    input: R,
    output: W,
    threads: usize,
) -> Result<(), StreamError> {
    run(
        input,
        output,
        PIPELINE_WINDOW_CHUNKS * CHUNK_SIZE,
        |first, last, window, out| {
            out.resize(
                window.len() + window.len().div_ceil(CHUNK_SIZE).max(1) * TAG_SIZE,
                0,
            );
            parallel::seal_chunks(cipher, first, last, window, out, threads);
            Ok(())
        },
    )
}

/// The plaintext size of a window of ciphertext that starts at chunk `first`, or why it is
/// not a valid size: the same rules as [`crate::format::stream::plaintext_len`], per window.
fn window_plaintext_len(first: u64, last: bool, len: usize) -> Result<usize, DecryptError> {
    if !last {
        return Ok(len - PIPELINE_WINDOW_CHUNKS * TAG_SIZE);
    }
    let chunks = len.div_ceil(ENCRYPTED_CHUNK_SIZE).max(1);
    let tail = len - (chunks - 1) * ENCRYPTED_CHUNK_SIZE;
    if tail < TAG_SIZE {
        return Err(DecryptError::Truncated);
    }
    if tail == TAG_SIZE && first + chunks as u64 > 1 {
        return Err(DecryptError::PayloadCorrupt {
            chunk: first + chunks as u64 - 1,
        });
    }
    Ok(len - chunks * TAG_SIZE)
}

struct Window {
    first: u64,
    last: bool,
    bytes: Vec<u8>,
}

fn run<R: Read + Send, W: Write + Send>(
    input: R,
    output: W,
    window_len: usize,
    transform: impl Fn(u64, bool, &[u8], &mut Vec<u8>) -> Result<(), DecryptError>,
) -> Result<(), StreamError> {
    let (filled_tx, filled_rx) = sync_channel::<Window>(PIPELINE_BUFFERS);
    let (empty_in_tx, empty_in_rx) = sync_channel::<Vec<u8>>(PIPELINE_BUFFERS);
    let (done_tx, done_rx) = sync_channel::<Window>(PIPELINE_BUFFERS);
    let (empty_out_tx, empty_out_rx) = sync_channel::<Vec<u8>>(PIPELINE_BUFFERS);
    for _ in 0..PIPELINE_BUFFERS {
        empty_in_tx
            .send(Vec::with_capacity(window_len + 1))
            .expect("room for every buffer");
        empty_out_tx
            .send(Vec::new())
            .expect("room for every buffer");
    }

    thread::scope(|scope| {
        let reader = scope.spawn(move || read_windows(input, window_len, filled_tx, empty_in_rx));
        let writer = scope.spawn(move || write_windows(output, done_rx, empty_out_tx));
        let mut result = Ok(());
        for window in filled_rx.iter() {
            let Ok(mut out) = empty_out_rx.recv() else {
                break;
            }; // the writer failed
            if let Err(e) = transform(window.first, window.last, &window.bytes, &mut out) {
                result = Err(StreamError::Decrypt(e));
                break;
            }
            let done = Window {
                bytes: out,
                ..window
            };
            if done_tx.send(done).is_err() {
                break; // the writer stopped; its result says why
            }
            // A reader that has read its last window takes no more buffers; that is fine.
            let _ = empty_in_tx.send(window.bytes);
        }
        // Closing our ends stops both threads: the reader finds no empty buffer, the writer
        // no more windows.
        drop((filled_rx, empty_in_tx, done_tx, empty_out_rx));
        let read = reader.join().expect("the reader thread does not panic");
        let write = writer.join().expect("the writer thread does not panic");
        result
            .and(read.map_err(StreamError::Read))
            .and(write.map_err(StreamError::Write))
    })
}

/// Fills windows of `window_len` bytes plus one byte of look-ahead; the look-ahead byte
/// starts the next window. The window that reaches the end of input is marked last.
fn read_windows(
    mut input: impl Read,
    window_len: usize,
    filled: SyncSender<Window>,
    empty: Receiver<Vec<u8>>,
) -> io::Result<()> {
    let mut first = 0u64;
    let mut carry = None;
    let chunk_len = window_len / PIPELINE_WINDOW_CHUNKS;
    while let Ok(mut buf) = empty.recv() {
        let last = fill(&mut input, &mut buf, carry.take(), window_len + 1)?;
        if !last {
            carry = buf.pop();
        }
        let chunks = buf.len().div_ceil(chunk_len) as u64;
        if filled
            .send(Window {
                first,
                last,
                bytes: buf,
            })
            .is_err()
            || last
        {
            return Ok(());
        }
        first += chunks;
    }
    Ok(())
}

/// Refills `buf` with `carry` (if any) and then input, until it holds `want` bytes or the
/// input ends; returns whether it ended.
///
/// A recycled buffer is kept at its length rather than cleared: its bytes are overwritten,
/// not zeroed again first (as `read_to_end` into spare capacity would, every window).
fn fill(
    input: &mut impl Read,
    buf: &mut Vec<u8>,
    carry: Option<u8>,
    want: usize,
) -> io::Result<bool> {
    buf.resize(want, 0);
    let mut len = 0;
    if let Some(byte) = carry {
        buf[0] = byte;
        len = 1;
    }
    while len < want {
        match input.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(len < want)
}

fn write_windows(
    mut output: impl Write,
    done: Receiver<Window>,
    empty: SyncSender<Vec<u8>>,
) -> io::Result<()> {
    for window in done.iter() {
        output.write_all(&window.bytes)?;
        let _ = empty.send(window.bytes); // the transformer may have stopped already
    }
    output.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::stream::{StreamReader, NONCE_SIZE};
    use crate::keys::recipient::FileKey;

    /// The thread count of the pool the tests run in, as a public entry point reads it.
    fn threads() -> usize {
        rayon::current_num_threads()
    }

    fn cipher() -> PayloadCipher {
        PayloadCipher::new(&FileKey::from_slice(&[3; 16]).unwrap(), &[5; NONCE_SIZE])
    }

    /// Hands out reads of awkward sizes, to exercise the window filling.
    struct Dribble<'a>(&'a [u8], usize);

    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = self.1 % 7919 + 1;
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn round_trips_at_window_edges_and_matches_the_sequential_reader() {
        let w = PIPELINE_WINDOW_CHUNKS * CHUNK_SIZE;
        for len in [
            0,
            1,
            CHUNK_SIZE,
            w - 1,
            w,
            w + 1,
            2 * w,
            2 * w + CHUNK_SIZE + 9,
        ] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut sealed = Vec::new();
            seal(&cipher(), Dribble(&plaintext, 0), &mut sealed, threads()).unwrap();
            assert_eq!(
                sealed.len() as u64,
                crate::format::stream::encrypted_len(len as u64)
            );

            let mut opened = Vec::new();
            open(&cipher(), Dribble(&sealed, 3), &mut opened, threads()).unwrap();
            assert_eq!(opened, plaintext, "len {len}");
            let mut sequential = Vec::new();
            StreamReader::new(&sealed[..], cipher())
                .read_to_end(&mut sequential)
                .unwrap();
            assert_eq!(sequential, plaintext, "len {len}");
        }
    }

    #[test]
    fn releases_only_whole_authenticated_windows() {
        let w = PIPELINE_WINDOW_CHUNKS * CHUNK_SIZE;
        let plaintext = vec![7u8; 2 * w + 100];
        let mut sealed = Vec::new();
        seal(&cipher(), &plaintext[..], &mut sealed, threads()).unwrap();
        let bad_chunk = PIPELINE_WINDOW_CHUNKS + 5;
        sealed[bad_chunk * ENCRYPTED_CHUNK_SIZE + 10] ^= 1;
        let mut opened = Vec::new();
        let err = open(&cipher(), &sealed[..], &mut opened, threads()).unwrap_err();
        assert!(
            matches!(err, StreamError::Decrypt(DecryptError::PayloadCorrupt { chunk }) if chunk == bad_chunk as u64)
        );
        assert_eq!(
            opened,
            plaintext[..w],
            "only the first window, all authenticated"
        );

        for cut in [0, 15, w + 64 * TAG_SIZE, sealed.len() - 1] {
            let mut out = Vec::new();
            assert!(
                open(&cipher(), &sealed[..cut], &mut out, threads()).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn write_errors_are_told_apart_from_read_errors() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::StorageFull, "full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("unreadable"))
            }
        }
        let big = vec![0u8; 3 * PIPELINE_WINDOW_CHUNKS * CHUNK_SIZE];
        assert!(matches!(
            seal(&cipher(), &big[..], Full, threads()),
            Err(StreamError::Write(_))
        ));
        assert!(matches!(
            seal(&cipher(), Broken, Vec::new(), threads()),
            Err(StreamError::Read(_))
        ));
    }
}
