//! Read-only memory maps of input files: the one place with `unsafe`.
//!
//! # Safety
//!
//! A mapping is only sound while nobody changes the file underneath it. If another process
//! truncates a mapped file, touching the lost pages raises SIGBUS; if it rewrites it, we may
//! read a mix of old and new bytes. The second is harmless here: every byte we read is
//! authenticated before any plaintext is released, and a changed chunk fails like any
//! corrupted one. For the first we take a shared advisory lock (`flock`) for the life of the
//! map, which cooperating writers respect, and the CLI offers `--no-mmap` for inputs that may
//! change under us (such as files still being uploaded).

use std::fs::File;
use std::io;
use std::ops::Deref;

use memmap2::Mmap;

/// A file's bytes, mapped read-only.
pub struct MappedFile {
    map: Mmap,
    // Held for the lock; the mapping itself does not need the file to stay open.
    _file: File,
}

impl MappedFile {
    /// Maps `file` read-only, taking a shared advisory lock on it first.
    pub fn new(file: File) -> io::Result<MappedFile> {
        // A writer that holds an exclusive lock is mid-write: refuse rather than race it.
        if let Err(e) = file.try_lock_shared() {
            return Err(match e {
                std::fs::TryLockError::WouldBlock => {
                    io::Error::new(io::ErrorKind::WouldBlock, "the file is locked by a writer")
                }
                std::fs::TryLockError::Error(e) => e,
            });
        }
        // SAFETY: the map is read-only and lives no longer than `self`. Changes to the file by
        // other processes are the hazard described in the module docs: writers that take the
        // advisory lock are excluded while we hold it, and bytes changed by others are caught
        // by authentication before any plaintext is released.
        let map = unsafe { Mmap::map(&file)? };
        Ok(MappedFile { map, _file: file })
    }
}

impl Deref for MappedFile {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}
