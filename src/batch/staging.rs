//! Outputs that appear whole or not at all, and the clean-up after a run that was killed.
//!
//! Each output is written to `.NAME.XXXXXX.seal-partial` beside its target (mode 0600, created
//! exclusively), holding an exclusive advisory lock (`flock`) for as long as it is written.
//! [`Staged::commit`] fsyncs it and renames it into place; dropping a [`Staged`] removes it.
//! A temporary file that is not locked belongs to a run that is gone: [`remove_stale`]
//! deletes those, and leaves locked ones (a live process is writing them) alone. Every
//! temporary file is also registered with [`crate::mmap::remove_on_fault`], so that a mapped
//! input truncated under the batch takes no partial output down with the process.

use std::ffi::OsString;
use std::fs::{self, File, TryLockError};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::Observer;
use crate::mmap::{remove_on_fault, FaultCleanup};

/// Suffix of every temporary output file this tool creates.
pub const PARTIAL_SUFFIX: &str = ".seal-partial";

/// Whether a file name is one of this tool's temporary names: `.NAME.XXXXXX.seal-partial`.
pub fn is_partial_name(name: &std::ffi::OsStr) -> bool {
    let name = name.as_bytes();
    name.len() > 1 + PARTIAL_SUFFIX.len()
        && name.starts_with(b".")
        && name.ends_with(PARTIAL_SUFFIX.as_bytes())
}

/// An output being written under a temporary name.
pub struct Staged<'o> {
    temp: Option<NamedTempFile>,
    // Removes the temporary file if a mapped input is truncated under us (see `mmap`).
    _fault: FaultCleanup,
    target: PathBuf,
    observer: &'o dyn Observer,
}

impl<'o> Staged<'o> {
    /// Creates the temporary file beside `target` and locks it.
    pub fn create(target: &Path, observer: &'o dyn Observer) -> io::Result<Staged<'o>> {
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let name = target.file_name().ok_or(io::ErrorKind::InvalidInput)?;
        let mut prefix = OsString::from(".");
        prefix.push(name);
        prefix.push(".");
        let temp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(PARTIAL_SUFFIX)
            .tempfile_in(dir)?;
        observer.partial_created(temp.path());
        let staged = Staged {
            _fault: remove_on_fault(temp.path()),
            temp: Some(temp),
            target: target.to_path_buf(),
            observer,
        };
        // Nobody else knows the name yet, so the lock cannot be contended; it only tells a
        // later run's clean-up that this file is alive.
        staged.file().try_lock().map_err(|e| match e {
            TryLockError::Error(e) => e,
            TryLockError::WouldBlock => io::ErrorKind::WouldBlock.into(),
        })?;
        Ok(staged)
    }

    /// The temporary file to write to.
    pub fn file(&self) -> &File {
        self.temp.as_ref().expect("present until commit").as_file()
    }

    /// The temporary file's path.
    #[cfg(test)]
    fn path(&self) -> &Path {
        self.temp.as_ref().expect("present until commit").path()
    }

    /// Flushes the data to disk and renames the file to its target, replacing an existing
    /// target only if `force`.
    pub fn commit(mut self, force: bool) -> io::Result<()> {
        let temp = self.temp.take().expect("present until commit");
        let path = temp.path().to_path_buf();
        let mut result = Ok(());
        let mut temp = Some(temp);
        self.observer.partial_finishing(&path, &mut || {
            let Some(temp) = temp.take() else { return };
            result = temp.as_file().sync_all().and_then(|()| {
                let persisted = if force {
                    temp.persist(&self.target)
                } else {
                    temp.persist_noclobber(&self.target)
                };
                // On failure the returned temporary file is dropped, which removes it.
                persisted.map(drop).map_err(|e| e.error)
            });
        });
        // The observer did not call `finish` (a signal is stopping the process): the
        // temporary file is removed when `temp` drops, and nothing was renamed.
        if temp.is_some() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        result
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let path = temp.path().to_path_buf();
            let mut temp = Some(temp);
            self.observer
                .partial_finishing(&path, &mut || drop(temp.take()));
        }
    }
}

/// Removes the temporary files in `dir` that no live process holds; returns their paths.
/// A missing directory has none.
pub fn remove_stale(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry?;
        if !is_partial_name(&entry.file_name()) || !entry.file_type()?.is_file() {
            continue;
        }
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        // Locked: a running process is writing it. Keep the lock while removing, so that
        // no process can start using the name in between.
        if file.try_lock().is_ok() && fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    Ok(removed)
}

/// Makes the output directory `dir` unless it exists. `dir` must not be (or become) a
/// symbolic link: outputs are never written through one. Directories for plaintext are made
/// owner-only (`private`).
pub fn make_dir(dir: &Path, private: bool) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.mode(if private { 0o700 } else { 0o777 });
    match builder.create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if fs::symlink_metadata(dir)?.is_dir() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    "not a directory (symbolic links are not followed in the output tree)",
                ))
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names() {
        assert!(is_partial_name(".a.txt.Ab12Cd.seal-partial".as_ref()));
        assert!(!is_partial_name("a.txt.seal-partial".as_ref()));
        assert!(!is_partial_name(".seal-partial".as_ref()));
        assert!(!is_partial_name(".a.txt".as_ref()));
    }

    #[test]
    fn a_committed_file_has_its_name_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let staged = Staged::create(&target, &()).unwrap();
        std::io::Write::write_all(&mut staged.file(), b"data").unwrap();
        staged.commit(false).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"data");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_existing_target_is_kept_without_force_and_replaced_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        fs::write(&target, b"old").unwrap();
        let staged = Staged::create(&target, &()).unwrap();
        let e = staged.commit(false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&target).unwrap(), b"old");
        Staged::create(&target, &()).unwrap().commit(true).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_files_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".a.ABCDEF.seal-partial");
        fs::write(&stale, b"half").unwrap();
        let live = Staged::create(&dir.path().join("b"), &()).unwrap();
        let removed = remove_stale(dir.path()).unwrap();
        assert_eq!(removed, vec![stale.clone()]);
        assert!(!stale.exists());
        assert!(live.path().exists());
    }

    #[test]
    fn an_output_directory_is_never_a_symbolic_link() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        assert!(make_dir(&link, false).is_err());
        make_dir(&dir.path().join("d"), true).unwrap();
        make_dir(&dir.path().join("d"), true).unwrap();
    }
}
