//! Memory maps of input files (read-only) and of new output files (writable): the one place
//! with `unsafe`.
//!
//! # Safety
//!
//! An input mapping is sound only while nobody changes the file underneath it:
//!
//! - **Rewritten bytes** are harmless here. Every byte read from a map is authenticated before
//!   any plaintext is released, so a changed chunk fails like any corrupt one.
//! - **Truncation** is the hazard: touching a page past the new end of the file raises SIGBUS,
//!   which would kill the process. Two defences:
//!   1. [`MappedFile::new`] takes a shared advisory lock (`flock`) for the life of the map, and
//!      refuses a file whose writer holds an exclusive one. Cooperating writers are excluded.
//!   2. For everyone else, a SIGBUS handler checks that the fault lies in one of our maps. If it
//!      does, it removes every temporary output registered with [`remove_on_fault`] (so no
//!      partial output survives), writes one clear line to standard error and exits with code 1.
//!      A fault anywhere else gets the default action (a crash with a core dump), as a bug
//!      should.
//!
//! An output mapping ([`MappedOutput`]) is of a temporary file this process just created and
//! sized, which nobody else knows about yet. Its one hazard is the file system running out of
//! space when a page is first written (tmpfs, sparse files): that also raises SIGBUS, and the
//! same handler removes the temporary outputs and exits with the same one line.
//!
//! The handler uses only async-signal-safe calls (`write`, `unlink`, `_exit`) and lock-free
//! tables of fixed size, filled before the maps are read. Inputs that may change while read
//! (files still being uploaded) are better read with `--no-mmap`, which cannot fault.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::ops::Deref;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Once;

use memmap2::{Mmap, MmapMut};

/// How many maps, and how many paths to remove, the fault handler can know at once.
const SLOTS: usize = 256;

/// A file's bytes, mapped read-only.
pub struct MappedFile {
    map: Mmap,
    slot: Option<usize>,
    // Held for the advisory lock; the mapping itself does not need the file open.
    _file: File,
}

impl MappedFile {
    /// Maps `file` read-only, taking a shared advisory lock on it first.
    pub fn new(file: File) -> io::Result<MappedFile> {
        if let Err(e) = file.try_lock_shared() {
            return Err(match e {
                std::fs::TryLockError::WouldBlock => {
                    io::Error::new(io::ErrorKind::WouldBlock, "the file is locked by a writer")
                }
                std::fs::TryLockError::Error(e) => e,
            });
        }
        install_handler();
        // SAFETY: the map is read-only and lives no longer than `self`. Changes to the file by
        // other processes are the hazards described in the module docs, and handled there.
        let map = unsafe { Mmap::map(&file)? };
        let slot = (!map.is_empty()).then(|| MAPS.claim(map.as_ptr() as usize, map.len()));
        Ok(MappedFile {
            map,
            slot: slot.flatten(),
            _file: file,
        })
    }
}

impl Deref for MappedFile {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            MAPS.release(slot);
        }
    }
}

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
    pub fn new(file: &File, len: u64) -> io::Result<MappedOutput> {
        assert!(len > 0, "an empty file cannot be mapped");
        reserve(file, len)?;
        file.set_len(len)?;
        install_handler();
        // SAFETY: the file is a new temporary output that only this process writes, sized just
        // above; the map lives no longer than `self`. A page that cannot be allocated faults,
        // and the handler deals with that as the module docs describe.
        let map = unsafe { MmapMut::map_mut(file)? };
        let slot = MAPS.claim(map.as_ptr() as usize, map.len());
        Ok(MappedOutput { map, slot })
    }
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

/// Allocates the blocks of `file`'s first `len` bytes now, so that a full file system (or a
/// quota) is an error of this one file here, rather than a SIGBUS on the first write to a
/// page of its map. A file system that cannot allocate ahead (`EOPNOTSUPP`: some network
/// file systems) is mapped without, and the fault handler remains its only defence.
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

/// While the returned guard lives, a SIGBUS from a truncated map removes the file at `path`.
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

/// The two messages with the program's name in front (`seal: error: ...`), built once by
/// [`set_program_name`] so that the handler writes each in one call, allocating nothing.
static NAMED: [(AtomicPtr<u8>, AtomicUsize); 2] =
    [const { (AtomicPtr::new(ptr::null_mut()), AtomicUsize::new(0)) }; 2];

/// Set by the first thread to take a SIGBUS: it alone reports and exits.
static REPORTING: AtomicBool = AtomicBool::new(false);

/// Names the program in the message a SIGBUS prints, as its other errors do.
pub fn set_program_name(name: &str) {
    for (slot, message) in NAMED.iter().zip([MESSAGE, MESSAGE_STREAM]) {
        let mut text = format!("{name}: ").into_bytes();
        text.extend_from_slice(message);
        let text: &'static [u8] = Box::leak(text.into_boxed_slice());
        slot.1.store(text.len(), Ordering::Release);
        slot.0.store(text.as_ptr().cast_mut(), Ordering::Release);
    }
}

const MESSAGE: &[u8] = b"error: a mapped file failed: the input shrank while being read \
(truncated by another process), or the output's file system is full; no partial output was \
left behind\n";

/// The same, when the output is a stream (standard output): what was written stays written.
const MESSAGE_STREAM: &[u8] = b"error: a mapped file failed: the input shrank while being read \
(truncated by another process); the output written so far is incomplete\n";

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
    let mut removed = false;
    for path in &PATHS {
        let raw = path.load(Ordering::Acquire);
        if !raw.is_null() {
            // SAFETY: non-null entries are NUL-terminated strings owned by the table;
            // unlink is async-signal-safe.
            unsafe { libc::unlink(raw) };
            removed = true;
        }
    }
    // No temporary output registered: the output is a stream, already partly written.
    let which = usize::from(!removed);
    let (named, named_len) = (&NAMED[which].0, &NAMED[which].1);
    let (text, len) = match named.load(Ordering::Acquire) {
        p if p.is_null() => {
            let message = if removed { MESSAGE } else { MESSAGE_STREAM };
            (message.as_ptr(), message.len())
        }
        p => (p.cast_const(), named_len.load(Ordering::Acquire)),
    };
    // SAFETY: write and _exit are async-signal-safe; `text` is `len` valid bytes, a static
    // message or one leaked (never freed) by `set_program_name` before its pointer was stored.
    unsafe {
        libc::write(2, text.cast(), len);
        libc::_exit(1);
    }
}
