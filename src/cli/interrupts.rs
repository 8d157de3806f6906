//! What a signal leaves behind: nothing partial on disk, and a true word about standard
//! output.
//!
//! Outputs are written to temporary files ([`crate::file::staging`]) and renamed into place
//! on success. SIGINT, SIGTERM and SIGHUP remove every temporary file the process holds, then
//! exit with code 130 after one line on standard error: that no partial output was left, or,
//! when output was streaming to standard output, how much went out there, and that it is
//! incomplete. (A SIGKILL cannot be caught: the next run into the same place removes what
//! it left, see [`crate::file::staging::remove_stale_of`].)
//!
//! A service ([`graceful`]: `unseal --watch`) is asked rather than ended: the first SIGINT or
//! SIGTERM sets its stop flag, and SIGHUP its reload flag; a second SIGINT or SIGTERM ends it
//! as above.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::failure::ExitCode;
use crate::file::Temporaries;

/// Temporary files to remove if a signal stops the process: hundreds at once in batch mode,
/// so a set, ordered by their bytes (a search of a list, comparing paths component by
/// component, took a tenth of the group committer's time in a burst of 10,000 uploads).
/// Held only to add or take out a name.
static PENDING: Mutex<BTreeSet<OsString>> = Mutex::new(BTreeSet::new());

/// Held shared by every thread creating a temporary file or putting one in place, and
/// exclusively by the clean-up, which so waits for those in progress and lets no other start.
/// Shared, the threads of a batch create and rename side by side: when one lock was held
/// across those calls, they queued on it (a tenth of `unseal DIR`'s samples, in `perf`, were
/// threads waiting for it or waking each other).
static GATE: RwLock<()> = RwLock::new(());

/// Whether a signal asks the program to stop ([`graceful`]) rather than ending it, whether
/// one did, and whether SIGHUP asked it to read its configuration again.
static GRACEFUL: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

/// Whether output is streaming to standard output, and how many bytes went there.
static STREAMING: AtomicBool = AtomicBool::new(false);
static STREAMED: AtomicU64 = AtomicU64::new(0);

/// Removes pending temporary files and exits with code 130 on SIGINT, SIGTERM or SIGHUP.
/// `what` names what `program` streams to standard output ("plaintext", "sealed data").
pub fn install_handler(program: &str, what: &'static str) {
    let program = program.to_string();
    // Failing to install the handler loses nothing but the clean-up on a signal; it is not
    // worth refusing to run for.
    let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if GRACEFUL.load(Ordering::Acquire) {
                if signal == SIGHUP {
                    RELOAD.store(true, Ordering::Release);
                    continue;
                }
                if !STOP.swap(true, Ordering::AcqRel) {
                    continue;
                }
            }
            clean_up_and_exit(&program, what);
        }
    });
}

fn clean_up_and_exit(program: &str, what: &str) -> ! {
    // Keep the gate closed until exit, so no file can be created or renamed after the
    // clean-up.
    let _closed = GATE.write().unwrap_or_else(PoisonError::into_inner);
    for path in pending().iter() {
        let _ = std::fs::remove_file(path);
    }
    super::progress::clear_all();
    match STREAMING.load(Ordering::Acquire) {
        true => say!(
            "{program}: error: interrupted; standard output is incomplete: at least {} bytes of {what} were written to it",
            STREAMED.load(Ordering::Acquire)
        ),
        false => say!("{program}: error: interrupted; no partial output was left behind"),
    }
    std::process::exit(ExitCode::Interrupted as i32);
}

/// From now on the first SIGINT or SIGTERM sets the first flag returned, for the program to
/// finish what it holds and stop (a second one ends it at once, as before), and SIGHUP sets
/// the second, for it to read its configuration again (it clears it).
pub fn graceful() -> (&'static AtomicBool, &'static AtomicBool) {
    GRACEFUL.store(true, Ordering::Release);
    (&STOP, &RELOAD)
}

fn pending() -> std::sync::MutexGuard<'static, BTreeSet<OsString>> {
    PENDING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The gate held open for one creation or rename ([`GATE`]).
fn open_gate() -> std::sync::RwLockReadGuard<'static, ()> {
    GATE.read().unwrap_or_else(PoisonError::into_inner)
}

/// The signal clean-up, as the per-file engine and batch mode hear of temporary files.
pub struct Tracked;

impl Temporaries for Tracked {
    /// Runs `create` with the signal clean-up held off; then registers the path for removal
    /// on a signal. A signal between the file's creation and its registration would
    /// otherwise leave it behind.
    fn partial_creating(&self, create: &mut dyn FnMut() -> Option<PathBuf>) {
        let _open = open_gate();
        if let Some(path) = create() {
            pending().insert(path.into_os_string());
        }
    }

    /// Runs `finish`, which renames the temporary file at `path` into place or removes it,
    /// with the signal clean-up held off; then forgets `path`.
    fn partial_finishing(&self, path: &Path, finish: &mut dyn FnMut()) {
        let _open = open_gate();
        finish();
        pending().remove(path.as_os_str());
    }
}

/// Standard output as a stream of the engine: counts what it passes on, for the message of a
/// signal. A write to a pipe returns only once all of it is in the pipe, so each goes in
/// pieces of at most [`PIECE`] bytes: what is counted went out, and less than a piece more
/// may have.
pub struct Streamed<W>(W);

/// The most one write to standard output passes on.
const PIECE: usize = 64 << 10;

impl<W> Streamed<W> {
    /// Starts counting: from now on a signal says standard output is incomplete.
    pub fn new(inner: W) -> Streamed<W> {
        STREAMING.store(true, Ordering::Release);
        Streamed(inner)
    }
}

impl<W: Write> Write for Streamed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.write(&buf[..buf.len().min(PIECE)])?;
        STREAMED.fetch_add(n as u64, Ordering::AcqRel);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Two threads of a batch create their temporary files at the same time: neither waits
    /// for the other's `create` to return (with one lock held across it, each waited).
    #[test]
    fn temporary_files_are_created_and_put_in_place_side_by_side() {
        let (to_b, at_b) = mpsc::channel();
        let (to_a, at_a) = mpsc::channel();
        let in_step = |path: &'static str, tell: mpsc::Sender<()>, hear: mpsc::Receiver<()>| {
            move || {
                let mut met = false;
                Tracked.partial_creating(&mut || {
                    let _ = tell.send(());
                    met = hear.recv_timeout(Duration::from_secs(10)).is_ok();
                    Some(PathBuf::from(path))
                });
                assert!(pending().contains(OsStr::new(path)), "{path} is registered");
                let mut renamed = false;
                Tracked.partial_finishing(Path::new(path), &mut || renamed = true);
                assert!(renamed && !pending().contains(OsStr::new(path)));
                met
            }
        };
        let a = std::thread::spawn(in_step("/side-by-side/a", to_b, at_a));
        let b = std::thread::spawn(in_step("/side-by-side/b", to_a, at_b));
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert!(
            a && b,
            "each creation saw the other's start before it returned"
        );
    }
}
