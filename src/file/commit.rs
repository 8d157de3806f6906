//! Written outputs made durable and put in place: one at a time for a single file, many
//! together for a batch, by the one mechanism here.
//!
//! An output is written in full under a temporary name (`staging`), then committed in
//! three steps, whose order is the whole promise:
//!
//! 1. its bytes reach the disk (`fdatasync`);
//! 2. it is renamed into place, a signature before the file it signs;
//! 3. its directory reaches the disk (`fsync` of the directory), so that the name does too.
//!
//! Only then is it done, and only then may its input be removed. An output may also carry
//! a patch: bytes to write over a file in place once the rest of it is in place (a new
//! header over a rotated file's old one, once the record that lets a rerun finish it is on
//! the disk); that is step 4, the patch written and synced.
//!
//! [`commit`] takes many outputs and takes each step for all of them before the next (group
//! commit): the writeback of every file is started first ([`crate::engine::writeback`]), so
//! that their bytes go to the disk in one stream of writes; then they are synced from
//! several threads at once ([`SYNC_THREADS`]), so that the file system's journal commits and
//! the disk's cache flushes serve many files each; and each directory is synced once for all
//! the names renamed into it. A batch pipelines its groups ([`place`], [`Placed`]): a group's
//! directories are synced in the same wave as the next group's bytes. Per-file `fdatasync`
//! keeps the work to these files and each file's error its own, where one `syncfs` would
//! write every other process's data on the file system too, at the same speed
//! (`benches/disk.md`).
//!
//! A crash at any point leaves each output whole or absent. Before step 2 it is a temporary
//! file, which the next run removes (`staging::remove_stale`). After step 2 its bytes are on
//! the disk. A power loss may still undo a rename that step 3 had not made durable: the
//! output is then absent, its input is still there, and the next run makes it again.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::error::FileError;
use super::staging::{Dir, FileId, Staged};
use crate::engine::writeback;

/// A file output written in full and waiting to be committed: its temporary files, in the
/// order they go into place. Dropping it removes them.
#[must_use = "an output appears only once committed"]
pub(crate) struct Written<'o> {
    files: Vec<Entry<'o>>,
    patch: Option<Patch>,
}

/// Bytes to write over an existing file in place, after the rest of an output is committed.
struct Patch {
    file: File,
    at: u64,
    bytes: Vec<u8>,
    /// The file's path, for errors.
    path: PathBuf,
}

/// One temporary file of a [`Written`].
struct Entry<'o> {
    staged: Staged<'o>,
    /// Its target's path, for errors.
    path: PathBuf,
    /// Replace an existing file of the target's name.
    force: bool,
}

impl Entry<'_> {
    fn error(&self, error: io::Error) -> FileError {
        FileError::Write {
            path: self.path.clone(),
            error,
        }
    }
}

impl<'o> Written<'o> {
    /// Nothing to commit: the output was a stream.
    pub(crate) fn nothing() -> Written<'o> {
        Written {
            files: Vec::new(),
            patch: None,
        }
    }

    /// Then `bytes` written over `file` (at `path`) at offset `at`, and synced: step 4.
    pub(crate) fn then_patch(
        mut self,
        file: File,
        at: u64,
        bytes: Vec<u8>,
        path: PathBuf,
    ) -> Written<'o> {
        self.patch = Some(Patch {
            file,
            at,
            bytes,
            path,
        });
        self
    }

    /// `staged`, to be renamed to its target (at `path`) after the files before it.
    pub(crate) fn then(mut self, staged: Staged<'o>, path: PathBuf, force: bool) -> Written<'o> {
        self.files.push(Entry {
            staged,
            path,
            force,
        });
        self
    }

    /// The SHA-256 of the output, read back from its temporary file (the last: a signature
    /// goes before the file it signs); of nothing for a stream.
    pub(crate) fn digest(&self) -> io::Result<[u8; 32]> {
        let mut hasher = crate::primitives::LongSha256::new();
        if let Some(entry) = self.files.last() {
            let file = entry.staged.file();
            // As large as the file, up to a quarter of a MiB: a small output costs no large
            // buffer to clear (most of a batch of small files, otherwise).
            let len = file.metadata()?.len().clamp(1, 256 << 10);
            let mut buf = vec![0u8; len as usize];
            let mut at = 0;
            loop {
                match file.read_at(&mut buf, at) {
                    Ok(0) => break,
                    Ok(n) => {
                        hasher.update(&buf[..n]);
                        at += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(hasher.finish())
    }

    /// Commits this one output: [`commit`] of a group of one.
    pub(crate) fn commit(self) -> Result<(), FileError> {
        commit(vec![self], None)
            .0
            .pop()
            .expect("one result for each output")
    }
}

/// Commits `outputs` together, each step for all of them before the next (see the module
/// docs); returns one result for each, in order. An output that fails leaves nothing: its
/// temporary files are removed, and the names it had put in place already are taken back.
///
/// `record`, a file of the caller's that must reach the disk before any output goes into
/// place (a journal's record of the commit), is synced in step 1 with the outputs' bytes,
/// rather than one wait before them; the second result is its sync's. Whether it failed or
/// not, the commit goes on.
pub(crate) fn commit(
    outputs: Vec<Written<'_>>,
    record: Option<&File>,
) -> (Results, Option<io::Result<()>>) {
    let (placed, record, _) = place(outputs, record, None);
    (placed.finish(), record)
}

/// One result for each output of a group, in order.
pub(crate) type Results = Vec<Result<(), FileError>>;

/// A group of outputs whose names are in place (steps 1 and 2) but not yet durable: the
/// syncs of their directories (step 3), then their patches (step 4), are to come, alone
/// ([`Placed::finish`]) or with the next group's bytes ([`place`]).
pub(crate) struct Placed {
    /// The names each output put in place, with their directories.
    names: Vec<Vec<(Dir, OsString)>>,
    results: Results,
    patches: Vec<Option<Patch>>,
}

/// Steps 1 and 2 of [`commit`] for `outputs`: their bytes made durable (with `record`'s),
/// then their names put in place. With `before`, an earlier group placed and not yet
/// finished, its directories are synced in the same wave as these bytes, so that one journal
/// commit of the file system serves both, and it is finished: its results are the third
/// value. Pipelined so, a batch on a journaled disk waits for one commit a group, not two.
pub(crate) fn place(
    mut outputs: Vec<Written<'_>>,
    record: Option<&File>,
    before: Option<Placed>,
) -> (Placed, Option<io::Result<()>>, Option<Results>) {
    let patches: Vec<Option<Patch>> = outputs.iter_mut().map(|o| o.patch.take()).collect();
    // 1. The bytes of every file on their way to the disk, then on it.
    for entry in outputs.iter().flat_map(|output| &output.files) {
        writeback::start(entry.staged.file(), 0, 0);
    }
    // The record first: the wait for its sync shows whether there is a disk to wait for.
    let files = outputs
        .iter()
        .flat_map(|output| &output.files)
        .map(|entry| Durable::Data(entry.staged.file()));
    let dirs = before.as_ref().map(Placed::dirs).unwrap_or_default();
    let items: Vec<Durable<'_>> = (record.map(Durable::Data).into_iter())
        .chain(files)
        .chain(dirs.iter().map(Durable::Dir))
        .collect();
    let mut synced = sync(&items).into_iter();
    let record = record.map(|_| synced.next().expect("one result for each file"));
    let mut results: Results = outputs
        .iter()
        .map(|output| {
            let results: Vec<_> = synced.by_ref().take(output.files.len()).collect();
            let mut results = output.files.iter().zip(results);
            results.try_for_each(|(entry, synced)| synced.map_err(|error| entry.error(error)))
        })
        .collect();
    let dirs_synced = dirs
        .iter()
        .map(Dir::id)
        .zip(synced.map(|r| r.map_err(|e| e.kind())));
    let before = before.map(|before| before.finish_with(dirs_synced.collect()));
    // 2. Into place, in order; what an output put in place before a failure is taken back.
    let mut placed: Vec<Vec<(Dir, OsString)>> = Vec::with_capacity(outputs.len());
    for (output, result) in outputs.into_iter().zip(&mut results) {
        let mut names = Vec::new();
        for entry in output.files {
            if result.is_err() {
                // Dropped: removed.
                continue;
            }
            let (dir, name) = (entry.staged.dir().clone(), entry.staged.target().to_owned());
            let error = |error| FileError::Write {
                path: entry.path.clone(),
                error,
            };
            match entry.staged.rename(entry.force) {
                Ok(()) => names.push((dir, name)),
                Err(e) => *result = Err(error(e)),
            }
        }
        if result.is_err() {
            take_back(&names);
            names.clear();
        }
        placed.push(names);
    }
    let placed = Placed {
        names: placed,
        results,
        patches,
    };
    (placed, record, before)
}

impl Placed {
    /// Steps 3 and 4 alone: each directory that got a name synced once, then the patches;
    /// one result for each output, in order.
    pub(crate) fn finish(self) -> Results {
        let dirs = self.dirs();
        let items: Vec<Durable<'_>> = dirs.iter().map(Durable::Dir).collect();
        let synced = sync(&items).into_iter().map(|r| r.map_err(|e| e.kind()));
        let synced = dirs.iter().map(Dir::id).zip(synced).collect();
        self.finish_with(synced)
    }

    /// The directories that got a name, each once.
    fn dirs(&self) -> Vec<Dir> {
        let mut seen = HashSet::new();
        let names = self.names.iter().flatten();
        let dirs = names.filter(|(dir, _)| seen.insert(dir.id()));
        dirs.map(|(dir, _)| dir.clone()).collect()
    }

    /// Steps 3 and 4, each directory's sync done already: `synced`.
    fn finish_with(self, synced: HashMap<FileId, Result<(), io::ErrorKind>>) -> Results {
        let Placed {
            names: placed,
            mut results,
            patches,
        } = self;
        // 3. Each directory that got a name: its sync's result.
        for (names, result) in placed.iter().zip(&mut results) {
            for (dir, _) in names {
                let outcome = synced.get(&dir.id()).copied().unwrap_or(Ok(()));
                if let Err(kind) = outcome {
                    if result.is_ok() {
                        let error =
                            io::Error::new(kind, "its directory could not be synced to disk");
                        *result = Err(FileError::Write {
                            path: dir.join(&names[names.len() - 1].1),
                            error,
                        });
                        take_back(names);
                    }
                }
            }
        }
        // 4. The patches, written, then synced together.
        let mut patched = Vec::new();
        for (patch, result) in patches.iter().zip(&mut results) {
            let Some(patch) = patch else { continue };
            if result.is_ok() {
                match patch.file.write_all_at(&patch.bytes, patch.at) {
                    Ok(()) => patched.push((patch, result)),
                    Err(error) => *result = Err(patch.error(error)),
                }
            }
        }
        let files: Vec<Durable<'_>> = patched
            .iter()
            .map(|(patch, _)| Durable::Data(&patch.file))
            .collect();
        let synced = sync(&files);
        for ((patch, result), synced) in patched.into_iter().zip(synced) {
            if let Err(error) = synced {
                *result = Err(patch.error(error));
            }
        }
        results
    }
}

/// What one wave of syncs makes durable: a file's bytes (`fdatasync`), or a directory's
/// names (`fsync`).
enum Durable<'a> {
    Data(&'a File),
    Dir(&'a Dir),
}

impl Durable<'_> {
    fn sync(&self) -> io::Result<()> {
        match self {
            Durable::Data(file) => file.sync_data(),
            Durable::Dir(dir) => dir.sync(),
        }
    }
}

impl Patch {
    fn error(&self, error: io::Error) -> FileError {
        FileError::Write {
            path: self.path.clone(),
            error,
        }
    }
}

/// Threads that sync a group's files at most. Concurrent `fdatasync` calls share the file
/// system's journal commits and the disk's cache flushes, where one call after another pays
/// for its own: 2,000 files of 4 KiB, their writeback started, synced in groups of 256 on
/// journaled ext4 took 0.29 to 0.33 s from 16 threads, as one `syncfs` (0.29 to 0.32 s),
/// against 0.42 to 0.54 s one after another (`benches/disk.md`).
const SYNC_THREADS: usize = 16;

/// Files each sync thread gets at least: a group of a few files is synced by the calling
/// thread alone.
const FILES_PER_SYNC_THREAD: usize = 4;

/// A sync that returns within this was no wait for a disk (tmpfs, or a file system that
/// had nothing to write): the rest of the group is synced by the calling thread too, since
/// starting threads would cost more than they save. 10,000 files of 4 KiB opened into
/// tmpfs by the inbox watcher started 1,868 threads for that, before.
const NO_WAIT: Duration = Duration::from_micros(50);

/// Each of `files` made durable, from up to [`SYNC_THREADS`] threads (the calling one
/// among them) once the first shows that syncing waits for a disk ([`NO_WAIT`]); the
/// results in order. A thread that cannot be started leaves its share to the others.
fn sync(files: &[Durable<'_>]) -> Vec<io::Result<()>> {
    let started = Instant::now();
    let first = files.first().map(Durable::sync);
    let waited = started.elapsed() >= NO_WAIT;
    let threads = match waited {
        true => (files.len() / FILES_PER_SYNC_THREAD).clamp(1, SYNC_THREADS),
        false => 1,
    };
    let next = AtomicUsize::new(usize::from(first.is_some()));
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(file) = files.get(i) else {
                return done;
            };
            done.push((i, file.sync()));
        }
    };
    let mut results: Vec<io::Result<()>> = files.iter().map(|_| Ok(())).collect();
    if let Some(first) = first {
        results[0] = first;
    }
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, work).ok())
            .collect();
        let mine = work();
        let theirs = helpers
            .into_iter()
            .flat_map(|helper| helper.join().expect("fdatasync does not panic"));
        for (i, result) in mine.into_iter().chain(theirs) {
            results[i] = result;
        }
    });
    results
}

/// Removes the names an output put in place, last first: it failed.
fn take_back(names: &[(Dir, OsString)]) {
    for (dir, name) in names.iter().rev() {
        let _ = dir.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;

    fn written<'o>(dir: &Dir, names: &[&str], force: bool) -> Written<'o> {
        let mut written = Written::nothing();
        for name in names {
            let mut staged = Staged::create(dir, name.as_ref(), &()).unwrap();
            staged.writer().write_all(name.as_bytes()).unwrap();
            written = written.then(staged, dir.join(name.as_ref()), force);
        }
        written
    }

    fn names(path: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_group_is_put_in_place_whole_and_a_failing_output_takes_back_its_first_names() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        fs::write(tmp.path().join("c"), b"old").unwrap();
        let outputs = vec![
            written(&dir, &["a.sig", "a"], false),
            // Its signature goes in, then the file meets an existing one: both go.
            written(&dir, &["c.sig", "c"], false),
            written(&dir, &["b"], false),
            Written::nothing(),
        ];
        let record = tempfile::tempfile().unwrap();
        let (results, synced) = commit(outputs, Some(&record));
        assert!(matches!(synced, Some(Ok(()))), "{synced:?}");
        assert!(results[0].is_ok() && results[2].is_ok() && results[3].is_ok());
        match &results[1] {
            Err(FileError::Write { path, error }) => {
                assert_eq!(path, &tmp.path().join("c"));
                assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(names(tmp.path()), ["a", "a.sig", "b", "c"]);
        assert_eq!(fs::read(tmp.path().join("a")).unwrap(), b"a");
        assert_eq!(fs::read(tmp.path().join("c")).unwrap(), b"old");
    }

    #[test]
    fn a_group_placed_is_finished_with_the_next_groups_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        fs::create_dir(tmp.path().join("sub")).unwrap();
        let sub = dir.child("sub".as_ref()).unwrap();
        let first = vec![written(&dir, &["a"], false), written(&sub, &["b"], false)];
        let (placed, _, before) = place(first, None, None);
        assert!(before.is_none());
        assert_eq!(
            names(tmp.path()),
            ["a", "sub"],
            "in place before it is finished"
        );
        fs::write(tmp.path().join("d"), b"old").unwrap();
        let second = vec![written(&sub, &["c"], false), written(&dir, &["d"], false)];
        let record = tempfile::tempfile().unwrap();
        let (placed, recorded, before) = place(second, Some(&record), Some(placed));
        assert!(matches!(recorded, Some(Ok(()))));
        let before = before.expect("the first group, finished");
        assert!(before.iter().all(Result::is_ok), "{before:?}");
        assert_eq!(names(&tmp.path().join("sub")), ["b", "c"]);
        let results = placed.finish();
        assert!(results[0].is_ok());
        assert!(matches!(&results[1], Err(FileError::Write { error, .. })
            if error.kind() == io::ErrorKind::AlreadyExists));
        assert_eq!(fs::read(tmp.path().join("d")).unwrap(), b"old");
        assert_eq!(fs::read(tmp.path().join("sub/c")).unwrap(), b"c");
    }

    #[test]
    fn dropping_an_output_before_its_commit_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        drop(written(&dir, &["x.sig", "x"], false));
        assert_eq!(names(tmp.path()), Vec::<String>::new());
        written(&dir, &["y"], true).commit().unwrap();
        assert_eq!(names(tmp.path()), ["y"]);
    }
}
