//! The sealed chunks of one payload, wherever they lie, read into this process's own memory
//! once each before anything looks at them.
//!
//! A sealed file belongs to its uploader, who may rewrite it while it is opened. Reading it
//! twice (once to check a tag, once to decrypt; once to hash for a signature, once to
//! decrypt) would let a rewrite between the two release plaintext that was never
//! authenticated, or report a signer for bytes they did not sign. So every run of chunks is
//! copied once, with a positioned read, into a private buffer, and the tag check, the
//! decryption and the signature hash all work on that copy. A file that shrinks meanwhile
//! is a short read, an error of that file alone, never a fault that stops the process.

use std::fs::File;
use std::io::{self, IoSliceMut};
use std::os::unix::fs::FileExt;

use crate::format::stream::{CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE};

/// The sealed chunks of a payload (after its nonce).
#[derive(Clone, Copy)]
pub enum Chunks<'a> {
    /// In memory.
    Memory(&'a [u8]),
    /// `len` bytes of `file` from `start`, as long as the file was when it was opened.
    File {
        /// The sealed file.
        file: &'a File,
        /// Where the chunks begin: after the header and the payload nonce.
        start: u64,
        /// How many bytes of chunks there are.
        len: u64,
    },
}

impl Chunks<'_> {
    /// How many bytes of chunks there are.
    pub fn len(&self) -> u64 {
        match self {
            Chunks::Memory(bytes) => bytes.len() as u64,
            Chunks::File { len, .. } => *len,
        }
    }

    /// Copies the bytes at `at` into `buf`, which must lie within [`Chunks::len`].
    pub fn read(&self, at: u64, buf: &mut [u8]) -> io::Result<()> {
        match self {
            Chunks::Memory(bytes) => {
                buf.copy_from_slice(&bytes[at as usize..at as usize + buf.len()]);
                Ok(())
            }
            Chunks::File { file, start, .. } => read_exact_at(file, buf, start + at),
        }
    }

    /// Copies `len` bytes from `at` into `buf` spread out as sealed chunks lay them out: each
    /// 64 KiB at its chunk's place (`i * ENCRYPTED_CHUNK_SIZE`), with a tag's room after it,
    /// so that they can be sealed in place. One read (`preadv`) for a file.
    pub fn read_spread(&self, at: u64, len: usize, buf: &mut [u8]) -> io::Result<()> {
        let mut pieces: Vec<&mut [u8]> = buf
            .chunks_mut(ENCRYPTED_CHUNK_SIZE)
            .zip((0..len).step_by(CHUNK_SIZE))
            .map(|(slot, start)| &mut slot[..CHUNK_SIZE.min(len - start)])
            .collect();
        match self {
            Chunks::Memory(_) => {
                let mut offset = at;
                for piece in pieces {
                    self.read(offset, piece)?;
                    offset += piece.len() as u64;
                }
                Ok(())
            }
            Chunks::File { file, start, .. } => {
                let mut slices: Vec<IoSliceMut<'_>> =
                    pieces.iter_mut().map(|p| IoSliceMut::new(p)).collect();
                let mut slices = &mut slices[..];
                let mut offset = start + at;
                while !slices.is_empty() {
                    match rustix::io::preadv(file, slices, offset) {
                        Ok(0) => return Err(shrank()),
                        Ok(n) => {
                            IoSliceMut::advance_slices(&mut slices, n);
                            offset += n as u64;
                        }
                        Err(rustix::io::Errno::INTR) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(())
            }
        }
    }
}

/// Fills `buf` from `file` at `at`; a file that ends first has shrunk since it was opened.
pub fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    file.read_exact_at(buf, at).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => shrank(),
        _ => e,
    })
}

/// The error of a file that ended before the size it had when it was opened.
fn shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file shrank while it was being read (truncated by another process)",
    )
}

/// A reader of `file` from a position, by positioned reads: the file's own offset is
/// neither used nor moved.
pub struct ReadAt<'a> {
    file: &'a File,
    at: u64,
}

impl<'a> ReadAt<'a> {
    /// Reads `file` from byte `at`.
    pub fn new(file: &'a File, at: u64) -> Self {
        ReadAt { file, at }
    }
}

impl io::Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}
