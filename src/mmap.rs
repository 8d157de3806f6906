//! Memory maps of new output files (writable): the one place with `unsafe`.
//!
//! Inputs are never mapped. A sealed file belongs to its uploader, who may rewrite or
//! truncate it while it is read: through a map, a rewrite between two reads would be
//! invisible and a truncation would raise SIGBUS and stop the process. Inputs are read with
//! positioned reads instead (`src/chunks.rs`), once each, into private memory.
//!
//! # Safety
//!
//! A [`MappedOutput`] is of a temporary file this process just created and sized, mode
//! 0600, which nobody else can write. Its one hazard is the file system running out of space
//! when a page is first written (tmpfs, sparse files), which raises SIGBUS. Two defences:
//!
//! 1. Pages are allocated before they are written: each thread populates the run it is
//!    about to write (`MADV_POPULATE_WRITE`, [`populate`]), which fails with an error where a
//!    write would fault; on kernels without it, [`MappedOutput::new`] allocates the whole file
//!    (`fallocate`). Either way a full file system is an error of that one file.
//! 2. Where a file system cannot allocate ahead, a SIGBUS handler checks that the fault lies
//!    in one of our maps. If it does, it removes every temporary output registered with
//!    [`remove_on_fault`] (so no partial output survives), writes one clear line to
//!    standard error and exits with code 1. A fault anywhere else gets the default action (a
//!    crash with a core dump), as a bug should.
//!
//! The handler uses only async-signal-safe calls (`write`, `unlink`, `_exit`) and lock-free
//! tables of fixed size, filled before the maps are written.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::ops::Deref;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Once;

use memmap2::MmapMut;

/// How many maps, and how many paths to remove, the fault handler can know at once.
const SLOTS: usize = 256;

/// A new output file's bytes, mapped writable, so that many threads fill it without taking
/// the file's lock (positioned writes to one file serialize on it in the kernel).
pub struct MappedOutput {
    map: MmapMut,
    slot: Option<usize>,
}

impl MappedOutput {
    /// Sets `file`'s length to `len` (not zero) and maps it writable.
    ///
    /// `file` must be a temporary output of this process, registered with [`remove_on_fault`]
    /// by the caller so that a fault (no space left) leaves nothing behind.
    ///
    /// Its pages are then allocated ahead of each write by whoever writes them
    /// ([`populate`]), so that a full file system is an error of this file. Where the kernel
    /// cannot (before Linux 5.14), the whole file is allocated here instead (`fallocate`),
    /// which costs one thread's time.
    pub fn new(file: &File, len: u64) -> io::Result<MappedOutput> {
        assert!(len > 0, "an empty file cannot be mapped");
        file.set_len(len)?;
        install_handler();
        // SAFETY: the file is a new temporary output that only this process writes, sized just
        // above; the map lives no longer than `self`. A page that cannot be allocated faults,
        // and the handler deals with that as the module docs describe.
        let map = unsafe { MmapMut::map_mut(file)? };
        let slot = MAPS.claim(map.as_ptr() as usize, map.len());
        let mut out = MappedOutput { map, slot };
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
pub fn populate(bytes: &mut [u8]) -> io::Result<()> {
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

impl Drop for MappedOutput {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            MAPS.release(slot);
        }
    }
}

/// Allocates the blocks of `file`'s first `len` bytes now, where the kernel cannot populate a
/// mapping ahead: a full file system (or a quota) is then an error of this one file here,
/// rather than a SIGBUS on the first write to a page of its map. A file system that cannot
/// allocate ahead either (`EOPNOTSUPP`: some network file systems) is mapped without, and the
/// fault handler remains its only defence.
fn reserve(file: &File, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let len = libc::off_t::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: fallocate reads only its integer arguments; the descriptor is open for
        // writing for as long as `file` is borrowed.
        if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
                return Err(e);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, len);
    Ok(())
}

/// While the returned guard lives, a SIGBUS from a mapped output removes the file at `path`.
pub fn remove_on_fault(path: &Path) -> FaultCleanup {
    let slot = CString::new(path.as_os_str().as_bytes())
        .ok()
        .and_then(|path| {
            let raw = path.into_raw();
            let slot = PATHS.iter().position(|p| {
                p.compare_exchange(ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            });
            if slot.is_none() {
                // SAFETY: `raw` came from `CString::into_raw` just above and was not stored.
                drop(unsafe { CString::from_raw(raw) });
            }
            slot
        });
    FaultCleanup { slot }
}

/// Unregisters a path given to [`remove_on_fault`] when dropped.
pub struct FaultCleanup {
    slot: Option<usize>,
}

impl Drop for FaultCleanup {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            let raw = PATHS[slot].swap(ptr::null_mut(), Ordering::AcqRel);
            if !raw.is_null() {
                // SAFETY: every non-null pointer in PATHS came from `CString::into_raw`, and
                // the swap above made this the only owner.
                drop(unsafe { CString::from_raw(raw) });
            }
        }
    }
}

/// Address ranges of live maps: (start, length) pairs, length 0 for a free slot.
struct Ranges([(AtomicUsize, AtomicUsize); SLOTS]);

impl Ranges {
    fn claim(&self, start: usize, len: usize) -> Option<usize> {
        let slot = self.0.iter().position(|(_, l)| {
            l.compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })?;
        self.0[slot].0.store(start, Ordering::Release);
        self.0[slot].1.store(len, Ordering::Release);
        Some(slot)
    }

    fn release(&self, slot: usize) {
        self.0[slot].1.store(0, Ordering::Release);
    }

    fn contains(&self, addr: usize) -> bool {
        self.0.iter().any(|(start, len)| {
            let (start, len) = (start.load(Ordering::Acquire), len.load(Ordering::Acquire));
            len != 0 && len != usize::MAX && addr >= start && addr - start < len
        })
    }
}

static MAPS: Ranges = Ranges([const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; SLOTS]);
static PATHS: [AtomicPtr<libc::c_char>; SLOTS] = [const { AtomicPtr::new(ptr::null_mut()) }; SLOTS];

/// The message with the program's name in front (`seal: error: ...`), built once by
/// [`set_program_name`] so that the handler writes it in one call, allocating nothing.
static NAMED: (AtomicPtr<u8>, AtomicUsize) = (AtomicPtr::new(ptr::null_mut()), AtomicUsize::new(0));

/// Set by the first thread to take a SIGBUS: it alone reports and exits.
static REPORTING: AtomicBool = AtomicBool::new(false);

/// Names the program in the message a SIGBUS prints, as its other errors do.
pub fn set_program_name(name: &str) {
    let mut text = format!("{name}: ").into_bytes();
    text.extend_from_slice(MESSAGE);
    let text: &'static [u8] = Box::leak(text.into_boxed_slice());
    NAMED.1.store(text.len(), Ordering::Release);
    NAMED.0.store(text.as_ptr().cast_mut(), Ordering::Release);
}

const MESSAGE: &[u8] = b"error: a mapped output failed: its file system is full (and could \
not allocate ahead); no partial output was left behind\n";

fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `sigaction` is given a zeroed struct with a valid handler of the SA_SIGINFO
        // signature and an empty mask; the previous action is not needed.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, ptr::null_mut());
        }
    });
}

extern "C" fn on_sigbus(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if !MAPS.contains(addr) {
        // Not ours: restore the default action; returning re-runs the faulting access,
        // which now kills the process as it would have without us.
        // SAFETY: resetting a signal to SIG_DFL is always valid and async-signal-safe.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
        return;
    }
    if REPORTING.swap(true, Ordering::AcqRel) {
        // Another thread faulted first and is reporting: wait for it to end the process.
        loop {
            // SAFETY: pause is async-signal-safe.
            unsafe { libc::pause() };
        }
    }
    for path in &PATHS {
        let raw = path.load(Ordering::Acquire);
        if !raw.is_null() {
            // SAFETY: non-null entries are NUL-terminated strings owned by the table;
            // unlink is async-signal-safe.
            unsafe { libc::unlink(raw) };
        }
    }
    let (text, len) = match NAMED.0.load(Ordering::Acquire) {
        p if p.is_null() => (MESSAGE.as_ptr(), MESSAGE.len()),
        p => (p.cast_const(), NAMED.1.load(Ordering::Acquire)),
    };
    // SAFETY: write and _exit are async-signal-safe; `text` is `len` valid bytes, a static
    // message or one leaked (never freed) by `set_program_name` before its pointer was stored.
    unsafe {
        libc::write(2, text.cast(), len);
        libc::_exit(1);
    }
}
