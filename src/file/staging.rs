//! Outputs that appear whole or not at all, written only where the caller meant, and the
//! clean-up after a run that was killed.
//!
//! Each output is written to `.NAME.XXXXXX.seal-partial` in its directory, which is held
//! open as a [`Dir`] (see [`dir`]): the file is created there exclusively (mode 0600, never
//! through a symbolic link), holds an exclusive advisory lock (`flock`) for as long as it is
//! written, and is renamed into place in that same directory ([`Staged::rename`], once
//! [`super::commit`] has made it durable); dropping a [`Staged`] removes it. A temporary file that is not locked belongs
//! to a run that is gone: [`remove_stale`] deletes those, and leaves locked ones (a live
//! process is writing them) alone. A temporary file is new, private and written by this
//! process only, so it may be filled through a map ([`crate::MappedFile`]).

use std::ffi::{OsStr, OsString};
use std::fs::{File, TryLockError};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};

pub mod dir;

pub use dir::{Dir, Dirs, FileId};

/// Suffix of every temporary output file this tool creates.
pub const PARTIAL_SUFFIX: &str = ".seal-partial";

/// Whether a file name is one of this tool's temporary names: `.NAME.XXXXXX.seal-partial`.
pub fn is_partial_name(name: &std::ffi::OsStr) -> bool {
    let name = name.as_bytes();
    name.len() > 1 + PARTIAL_SUFFIX.len()
        && name.starts_with(b".")
        && name.ends_with(PARTIAL_SUFFIX.as_bytes())
}

/// Hears when a temporary output file appears and goes; called from any thread. The
/// defaults just call their argument, and `()` is a listener that hears nothing.
///
/// A program that removes temporary files when a signal stops it holds that clean-up off
/// inside both calls: so that no file can appear unknown to it, and no rename can slip in
/// after it.
pub trait Temporaries: Sync {
    /// Calls `create`, which makes a temporary output file and returns its path (`None` if
    /// it failed).
    fn partial_creating(&self, create: &mut dyn FnMut() -> Option<PathBuf>) {
        create();
    }

    /// Calls `finish`, which either renames the temporary file at `path` into place or
    /// removes it; afterwards `path` no longer exists.
    fn partial_finishing(&self, path: &Path, finish: &mut dyn FnMut()) {
        let _ = path;
        finish()
    }
}

impl Temporaries for () {}

/// Whether `name` is one of this tool's temporary names for the output `target`:
/// `.TARGET.XXXXXX.seal-partial`.
fn is_partial_of(name: &OsStr, target: &OsStr) -> bool {
    let (name, target) = (name.as_bytes(), target.as_bytes());
    let random = 1 + target.len() + 1;
    name.len() == random + 6 + PARTIAL_SUFFIX.len()
        && name.starts_with(b".")
        && name[1..].starts_with(target)
        && name[random - 1] == b'.'
        && name.ends_with(PARTIAL_SUFFIX.as_bytes())
}

/// An output being written under a temporary name.
pub(crate) struct Staged<'o> {
    /// The temporary file, locked; `None` once committed or removed.
    file: Option<File>,
    dir: Dir,
    temp: OsString,
    target: OsString,
    observer: &'o dyn Temporaries,
}

impl<'o> Staged<'o> {
    /// Creates a temporary file for `target` in `dir`, and locks it.
    pub fn create(
        dir: &Dir,
        target: &OsStr,
        observer: &'o dyn Temporaries,
    ) -> io::Result<Staged<'o>> {
        let mut made = None;
        observer.partial_creating(&mut || {
            made = Some(new_temp(dir, target, &mut |_| {}));
            let (_, temp) = made.as_ref()?.as_ref().ok()?;
            Some(dir.join(temp))
        });
        let (file, temp) = made.expect("the observer calls create")?;
        Ok(Staged {
            file: Some(file),
            dir: dir.clone(),
            temp,
            target: target.to_os_string(),
            observer,
        })
    }

    /// The temporary file to write to.
    pub fn file(&self) -> &File {
        self.file.as_ref().expect("present until commit")
    }

    /// The temporary file, to write to as a stream.
    pub fn writer(&mut self) -> &mut File {
        self.file.as_mut().expect("present until commit")
    }

    /// The temporary file's path.
    fn path(&self) -> PathBuf {
        self.dir.join(&self.temp)
    }

    /// The directory the file is in.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// The name the file is renamed to.
    pub fn target(&self) -> &OsStr {
        &self.target
    }

    /// Renames the file to its target, replacing an existing target only if `force`. It
    /// does not make the file durable first: [`super::commit`] does, and calls this.
    pub fn rename(mut self, force: bool) -> io::Result<()> {
        let mut result = Ok(());
        let mut file = self.file.take();
        let (dir, temp, target) = (&self.dir, &self.temp, &self.target);
        self.observer.partial_finishing(&self.path(), &mut || {
            let Some(file) = file.take() else { return };
            result = dir.rename(temp, target, force);
            if result.is_err() {
                let _ = dir.remove(temp);
            }
            // Closing the file drops its lock, once its name is gone.
            drop(file);
        });
        // The observer did not call `finish` (a signal is stopping the process): nothing
        // was renamed, and the temporary file goes.
        if file.take().is_some() {
            let _ = self.dir.remove(&self.temp);
            return Err(io::ErrorKind::Interrupted.into());
        }
        result
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            let mut file = Some(file);
            let (dir, temp) = (&self.dir, &self.temp);
            self.observer.partial_finishing(&self.path(), &mut || {
                if let Some(file) = file.take() {
                    let _ = dir.remove(temp);
                    drop(file);
                }
            });
        }
    }
}

/// How many names [`new_temp`] tries before it gives up.
const ATTEMPTS: usize = 16;

/// Creates and locks a new temporary file for `target` in `dir`; returns it and its name.
/// `between` runs between the two steps (tests put a concurrent clean-up there).
///
/// The file cannot be created locked: between `open(O_CREAT|O_EXCL)` and `flock`, another
/// run's [`remove_stale`] may open it, find it unlocked, take the lock and remove the name.
/// So, once the lock is ours, the name must still be our file (`fstatat` against `fstat`); if
/// it is not, or if the clean-up holds the lock (it is about to remove the name), that file
/// is lost to us and we start again under a new name. A file whose lock we hold and whose
/// name we checked after taking it is ours: the clean-up only removes a name after it has
/// taken the lock itself and checked that the name is still the file it locked.
fn new_temp(
    dir: &Dir,
    target: &OsStr,
    between: &mut dyn FnMut(&OsStr),
) -> io::Result<(File, OsString)> {
    for _ in 0..ATTEMPTS {
        let name = temp_name(target);
        let file = match dir.create_new(&name) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            result => result?,
        };
        between(&name);
        match file.try_lock() {
            Ok(()) => {}
            // A clean-up holds it, and removes it.
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(e)) => return Err(e),
        }
        if dir.id_of(&name, false)? == Some(FileId::of(&file)?) {
            return Ok((file, name));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no temporary file could be made (each was taken or removed at once)",
    ))
}

/// `.TARGET.XXXXXX.seal-partial`, with six random letters and digits.
fn temp_name(target: &OsStr) -> OsString {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut random = [0u8; 6];
    OsRng.fill_bytes(&mut random);
    let mut name = OsString::from(".");
    name.push(target);
    name.push(".");
    let letters: Vec<u8> = random
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()])
        .collect();
    name.push(OsStr::from_bytes(&letters));
    name.push(PARTIAL_SUFFIX);
    name
}

/// Removes the temporary files in `dir` that no live process holds; returns their paths.
///
/// A file is removed only while this process holds its lock, and only if its name still
/// refers to the file locked: a writer that renamed it into place (and let go of the lock)
/// since it was listed keeps its output, and one that is still creating it sees the name
/// gone and starts again (see [`new_temp`]).
pub fn remove_stale(dir: &Dir) -> io::Result<Vec<PathBuf>> {
    remove_stale_where(dir, &|_| true)
}

/// Removes the temporary files of the output `target` in `dir` that no live process holds
/// (see [`remove_stale`]); returns their paths. Those of other outputs stay: a run of one
/// file clears up after an earlier run of that file only.
pub fn remove_stale_of(dir: &Dir, target: &OsStr) -> io::Result<Vec<PathBuf>> {
    remove_stale_where(dir, &|name| is_partial_of(name, target))
}

fn remove_stale_where(dir: &Dir, wanted: &dyn Fn(&OsStr) -> bool) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for name in dir.files()? {
        if !is_partial_name(&name) || !wanted(&name) {
            continue;
        }
        let Ok(file) = dir.open_file(&name, false) else {
            continue;
        };
        // Locked: a running process is writing it. Keep the lock while removing, so that
        // no process can start using the name in between.
        if file.try_lock().is_err() {
            continue;
        }
        let removed_it = FileId::of(&file).and_then(|id| dir.remove_if_same(&name, id, false));
        if removed_it.is_ok() {
            removed.push(dir.join(&name));
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    fn open(path: &Path) -> Dir {
        Dir::open(path).unwrap()
    }

    #[test]
    fn partial_names_of_one_target() {
        assert!(is_partial_of(
            ".a.txt.Ab12Cd.seal-partial".as_ref(),
            "a.txt".as_ref()
        ));
        assert!(is_partial_of(
            &temp_name("a.txt".as_ref()),
            "a.txt".as_ref()
        ));
        assert!(!is_partial_of(
            ".a.txt.Ab12Cd.seal-partial".as_ref(),
            "a".as_ref()
        ));
        assert!(!is_partial_of(
            ".a.txt.Ab12Cd.seal-partial".as_ref(),
            "a.tx".as_ref()
        ));
        assert!(!is_partial_of(
            ".b.txt.Ab12Cd.seal-partial".as_ref(),
            "a.txt".as_ref()
        ));
        assert!(!is_partial_of(
            ".a.txt.x.Ab12Cd.seal-partial".as_ref(),
            "a.txt".as_ref()
        ));
    }

    #[test]
    fn partial_names() {
        assert!(is_partial_name(".a.txt.Ab12Cd.seal-partial".as_ref()));
        assert!(!is_partial_name("a.txt.seal-partial".as_ref()));
        assert!(!is_partial_name(".seal-partial".as_ref()));
        assert!(!is_partial_name(".a.txt".as_ref()));
        assert!(is_partial_name(&temp_name("a.txt".as_ref())));
    }

    #[test]
    fn a_committed_file_has_its_name_and_no_temporary_file_is_left() {
        let tmp = tempfile::tempdir().unwrap();
        let staged = Staged::create(&open(tmp.path()), "out".as_ref(), &()).unwrap();
        std::io::Write::write_all(&mut staged.file(), b"data").unwrap();
        staged.rename(false).unwrap();
        assert_eq!(fs::read(tmp.path().join("out")).unwrap(), b"data");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_existing_target_is_kept_without_force_and_replaced_with_it() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, target) = (open(tmp.path()), tmp.path().join("out"));
        fs::write(&target, b"old").unwrap();
        let staged = Staged::create(&dir, "out".as_ref(), &()).unwrap();
        let e = staged.rename(false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&target).unwrap(), b"old");
        let staged = Staged::create(&dir, "out".as_ref(), &()).unwrap();
        staged.rename(true).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
        drop(Staged::create(&dir, "dropped".as_ref(), &()).unwrap());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    /// Sees the directory before and after `create`, as a signal handler holding off its
    /// clean-up would.
    struct Watching<'p>(&'p Path, std::sync::Mutex<Vec<(usize, Option<PathBuf>)>>);

    impl Temporaries for Watching<'_> {
        fn partial_creating(&self, create: &mut dyn FnMut() -> Option<PathBuf>) {
            let before = fs::read_dir(self.0).unwrap().count();
            let made = create();
            self.1.lock().unwrap().push((before, made));
        }
    }

    #[test]
    fn a_temporary_file_appears_only_inside_the_observers_create_with_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        let watching = Watching(tmp.path(), Default::default());
        let staged = Staged::create(&open(tmp.path()), "out".as_ref(), &watching).unwrap();
        let seen = watching.1.lock().unwrap().clone();
        assert_eq!(seen, vec![(0, Some(staged.path()))]);
        assert!(staged.path().exists());
    }

    #[test]
    fn stale_files_are_removed_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open(tmp.path());
        let stale = tmp.path().join(".a.ABCDEF.seal-partial");
        fs::write(&stale, b"half").unwrap();
        let live = Staged::create(&dir, "b".as_ref(), &()).unwrap();
        let removed = remove_stale(&dir).unwrap();
        assert_eq!(removed, vec![stale.clone()]);
        assert!(!stale.exists());
        assert!(live.path().exists());
    }

    #[test]
    fn a_clean_up_between_creating_and_locking_a_temporary_file_never_takes_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open(tmp.path());
        // Another run's clean-up comes in after the file is made and before it is locked:
        // it finds the file unlocked, and removes it.
        let mut cleaned = Vec::new();
        let mut clean_up = |_: &OsStr| {
            if cleaned.is_empty() {
                cleaned = remove_stale(&dir).unwrap();
            }
        };
        let (file, name) = new_temp(&dir, "out".as_ref(), &mut clean_up).unwrap();
        assert_eq!(cleaned.len(), 1, "the clean-up ran");
        assert_ne!(cleaned[0], dir.join(&name), "a new name was taken");
        assert_eq!(
            dir.id_of(&name, false).unwrap(),
            Some(FileId::of(&file).unwrap())
        );
        // The one kept is locked, so a later clean-up leaves it.
        assert_eq!(remove_stale(&dir).unwrap(), Vec::<PathBuf>::new());
        std::io::Write::write_all(&mut &file, b"whole").unwrap();
        dir.rename(&name, "out".as_ref(), false).unwrap();
        assert_eq!(fs::read(tmp.path().join("out")).unwrap(), b"whole");
    }
}
