//! Output files that appear whole or not at all.
//!
//! Output is written to a temporary file beside the target (`.NAME.XXXXXX.seal-partial`),
//! fsync'ed, and renamed into place only on success; an existing target is never replaced
//! without `--force`. A failure drops the temporary file; SIGINT, SIGTERM and SIGHUP remove
//! every pending one before the process exits with code 130.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tempfile::NamedTempFile;

use super::failure::{describe_io, ExitCode, Failure};

/// Suffix of every temporary output file this tool creates.
pub const PARTIAL_SUFFIX: &str = crate::batch::PARTIAL_SUFFIX;

/// Temporary files to remove if a signal stops the process.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes pending temporary files and exits with code 130 on SIGINT, SIGTERM or SIGHUP.
pub fn install_interrupt_handler(program: &str) {
    let program = program.to_string();
    // Failing to install the handler (only possible if one exists already) loses nothing
    // but the clean-up on a signal; it is not worth refusing to run for.
    let _ = ctrlc::set_handler(move || {
        // Keep the lock until exit, so no rename can slip in after the clean-up.
        let pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        for path in pending.iter() {
            let _ = std::fs::remove_file(path);
        }
        super::progress::clear_all();
        say!("{program}: error: interrupted; no partial output was left behind");
        std::process::exit(ExitCode::Interrupted as i32);
    });
}

fn pending() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `create`, which makes a temporary file elsewhere (in a batch) and returns its path,
/// with the signal clean-up held off; then registers the path for removal on a signal. A
/// signal between the file's creation and its registration would otherwise leave it behind.
pub fn tracked(create: &mut dyn FnMut() -> Option<PathBuf>) {
    let mut pending = pending();
    if let Some(path) = create() {
        pending.push(path);
    }
}

/// Runs `finish`, which renames the tracked temporary file at `path` into place or removes
/// it, with the signal clean-up held off; then forgets `path`.
pub fn finish_tracked(path: &Path, finish: &mut dyn FnMut()) {
    let mut pending = pending();
    finish();
    if let Some(i) = pending.iter().rposition(|p| p == path) {
        pending.swap_remove(i);
    }
}

/// An output file being written under a temporary name.
pub struct PendingFile {
    temp: Option<NamedTempFile>,
    target: PathBuf,
    force: bool,
}

impl PendingFile {
    /// Refuses an existing `target` unless `force`, then creates the temporary file beside it.
    pub fn create(target: &Path, force: bool) -> Result<PendingFile, Failure> {
        if !force && target.symlink_metadata().is_ok() {
            return Err(already_exists(target));
        }
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let name = target
            .file_name()
            .ok_or_else(|| Failure::usage("not a file name").about(target))?;
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".");
        let mut made = None;
        tracked(&mut || {
            let temp = tempfile::Builder::new()
                .prefix(&prefix)
                .suffix(PARTIAL_SUFFIX)
                .tempfile_in(dir);
            let path = temp.as_ref().ok().map(|t| t.path().to_path_buf());
            made = Some(temp);
            path
        });
        let temp = made
            .expect("tracked calls create")
            .map_err(|e| Failure::io(target, &e))?;
        // Tells a batch's clean-up of stale temporary files that this one is alive.
        let _ = temp.as_file().try_lock();
        Ok(PendingFile {
            temp: Some(temp),
            target: target.to_path_buf(),
            force,
        })
    }

    /// The temporary file to write to.
    pub fn file(&self) -> &File {
        self.temp.as_ref().expect("present until commit").as_file()
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes the data to disk and renames the file into place.
    pub fn commit(mut self) -> Result<(), Failure> {
        let temp = self.temp.take().expect("present until commit");
        temp.as_file()
            .sync_all()
            .map_err(|e| Failure::io(&self.target, &e))?;
        let mut pending = pending();
        let temp_path = temp.path().to_path_buf();
        let result = if self.force {
            temp.persist(&self.target)
        } else {
            temp.persist_noclobber(&self.target)
        };
        pending.retain(|p| *p != temp_path);
        drop(pending);
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(already_exists(&self.target))
            }
            Err(e) => Err(Failure::new(ExitCode::Io, describe_io(&e.error)).about(&self.target)),
        }
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let path = temp.path().to_path_buf();
            let mut pending = pending();
            drop(temp); // removes the file
            pending.retain(|p| *p != path);
        }
    }
}

fn already_exists(target: &Path) -> Failure {
    Failure::new(ExitCode::Io, "output file already exists")
        .about(target)
        .hint("use --force to overwrite it")
}
