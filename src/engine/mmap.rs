//! Memory maps of new output files (writable): the one place with `unsafe`.
//!
//! Inputs are never mapped. A sealed file belongs to its uploader, who may rewrite or
//! truncate it while it is read: through a map, a rewrite between two reads would be
//! invisible and a truncation would raise SIGBUS and stop the process. Inputs are read with
//! positioned reads instead (`src/engine/chunks.rs`), once each, into private memory.
//!
//! An output is mapped only where that is sound and can fail cleanly:
//!
//! 1. The file is a new one that nobody else writes, truncates or resizes while the map
//!    lives: the caller promises this ([`crate::MappedFile::new`], [`MappedOutput::new`],
//!    both `unsafe`), as a file cut short under a map would fault.
//! 2. Its pages can be allocated before they are written, so that a full file system (tmpfs,
//!    sparse files, a quota) is an error of that file rather than a SIGBUS on the first write
//!    to a page: each thread populates the run it is about to write (`MADV_POPULATE_WRITE`,
//!    [`populate`]), which fails where a write would fault; on kernels without it (before
//!    Linux 5.14) [`MappedOutput::new`] allocates the whole file (`fallocate`). Where neither
//!    can allocate ahead (some network file systems), [`MappedOutput::new`] refuses with
//!    [`io::ErrorKind::Unsupported`] and the caller writes the file with positioned writes.
//!
//! So the library installs no signal handler: a fault of a mapped output would be a bug (or
//! a broken promise), and gets the default action, as any other fault.

use std::fs::File;
use std::io;
use std::ops::Deref;

use memmap2::MmapMut;

/// A new output file's bytes, mapped writable, so that many threads fill it without taking
/// the file's lock (positioned writes to one file serialize on it in the kernel).
pub(crate) struct MappedOutput {
    map: MmapMut,
}

impl MappedOutput {
    /// Sets `file`'s length to `len` (not zero) and maps it writable.
    ///
    /// Its pages are then allocated ahead of each write by whoever writes them
    /// ([`populate`]), so that a full file system is an error of this file. Where the kernel
    /// cannot (before Linux 5.14), the whole file is allocated here instead (`fallocate`),
    /// which costs one thread's time. Where the file system cannot allocate ahead either,
    /// this is an error of kind [`io::ErrorKind::Unsupported`] (the file keeps its new
    /// length): write the file with positioned writes instead.
    ///
    /// # Safety
    ///
    /// As for [`crate::MappedFile::new`]: `file` is a new file, open for reading and writing, that
    /// nobody else writes, truncates or resizes while the returned map lives.
    pub(crate) unsafe fn new(file: &File, len: u64) -> io::Result<MappedOutput> {
        assert!(len > 0, "an empty file cannot be mapped");
        file.set_len(len)?;
        // SAFETY: the caller promises that nobody else writes, truncates or resizes the file
        // while the map lives; the map lives no longer than `self`. Pages are allocated
        // before they are written (below, and by `populate`), so a full file system is an
        // error rather than a fault.
        let map = unsafe { MmapMut::map_mut(file)? };
        let mut out = MappedOutput { map };
        // The first page tells whether the kernel populates ahead.
        match populate_pages(&mut out.map[..1]) {
            Err(e) if e.kind() == io::ErrorKind::Unsupported => reserve(file, len)?,
            other => other?,
        }
        Ok(out)
    }
}

/// Allocates, for writing, the pages of a mapped output that hold `bytes` (part of a
/// [`MappedOutput`]), so that a full file system is this error (`StorageFull`) rather than a
/// SIGBUS when they are written. Called by each thread for the run it is about to write, so
/// the pages are allocated in parallel, as the page faults of the writes would have been.
/// A no-op where the kernel cannot populate ahead ([`MappedOutput::new`] has then
/// allocated the whole file).
pub(crate) fn populate(bytes: &mut [u8]) -> io::Result<()> {
    match populate_pages(bytes) {
        Err(e) if e.kind() == io::ErrorKind::Unsupported => Ok(()),
        other => other,
    }
}

fn populate_pages(bytes: &mut [u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    let rc = {
        let page = page_size();
        let start = bytes.as_ptr() as usize / page * page;
        let end = (bytes.as_ptr() as usize + bytes.len()).div_ceil(page) * page;
        // SAFETY: `bytes` lies in a live mapping of ours, whose pages it covers; a mapping
        // spans whole pages, so the rounded range does too. MADV_POPULATE_WRITE only
        // allocates and maps those pages, as writing them would, and changes no byte.
        unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                end - start,
                libc::MADV_POPULATE_WRITE,
            )
        }
    };
    #[cfg(not(target_os = "linux"))]
    let rc: libc::c_int = {
        // No way to populate ahead here: as before Linux 5.14.
        return Err(io::ErrorKind::Unsupported.into());
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    Err(match e.raw_os_error() {
        // Before Linux 5.14.
        Some(libc::EINVAL) => io::ErrorKind::Unsupported.into(),
        // A write there would have raised SIGBUS: no space for the page.
        Some(libc::EFAULT) => io::Error::new(
            io::ErrorKind::StorageFull,
            "no space left on device (the output's file system is full)",
        ),
        _ => e,
    })
}

#[cfg(target_os = "linux")]
fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // SAFETY: sysconf reads a constant of the system.
    *PAGE.get_or_init(|| unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize)
}

impl std::ops::DerefMut for MappedOutput {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }
}

impl Deref for MappedOutput {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}

/// Allocates the blocks of `file`'s first `len` bytes now, where the kernel cannot populate a
/// mapping ahead: a full file system (or a quota) is then an error of this one file here,
/// rather than a SIGBUS on the first write to a page of its map. A file system that cannot
/// allocate ahead either (`EOPNOTSUPP`: some network file systems), or a system without
/// `fallocate`, is [`io::ErrorKind::Unsupported`]: the file is not to be mapped.
fn reserve(file: &File, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let len = libc::off_t::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: fallocate reads only its integer arguments; the descriptor is open for
        // writing for as long as `file` is borrowed.
        if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } != 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EOPNOTSUPP) => io::ErrorKind::Unsupported.into(),
                _ => e,
            });
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, len);
        Err(io::ErrorKind::Unsupported.into())
    }
}
