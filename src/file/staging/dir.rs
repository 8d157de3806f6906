//! Directories held open, so that outputs are written only where the batch meant.
//!
//! An uploader who can write into the output directory can swap a directory the batch made
//! for a symbolic link to one of its own while the batch runs. Paths would follow that link;
//! a [`Dir`] does not: it is a handle to the directory as it was when opened, and every file
//! is created, renamed and removed relative to it (`openat`, `renameat2`, `unlinkat`). Below
//! a directory the operator named, each directory is opened from its parent's handle with
//! `O_NOFOLLOW`, so that no symbolic link is ever followed beneath the root.
//! [`Dirs`] opens the directories of a batch that way, each once.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rustix::fs::{self as sys, AtFlags, FileType, Mode, OFlags, RenameFlags, CWD};
use rustix::io::Errno;

/// A file's identity: its device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity of an open file (`fstat`).
    pub fn of(file: impl AsFd) -> io::Result<FileId> {
        Ok(FileId::from_stat(&sys::fstat(file)?))
    }

    /// The identity in `meta`.
    pub fn of_metadata(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    fn from_stat(stat: &sys::Stat) -> FileId {
        #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
        FileId {
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
        }
    }
}

/// An open directory, and the path it was reached by (for messages only: nothing is done
/// through it).
#[derive(Debug, Clone)]
pub struct Dir {
    fd: Arc<OwnedFd>,
    path: PathBuf,
    /// What the handle is: a directory opened again must be this one ([`Dirs`]).
    id: FileId,
}

/// Open flags of a directory handle.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

impl Dir {
    /// Opens the directory at `path`, following symbolic links: for directories the
    /// operator named, which may be or lie under one.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let fd = sys::openat(CWD, path, dir_flags(), Mode::empty())?;
        Ok(Dir {
            id: FileId::of(&fd)?,
            fd: Arc::new(fd),
            path: path.to_path_buf(),
        })
    }

    /// Opens the directory that `path` is in (`.` for a bare name), following symbolic
    /// links as [`Dir::open`]; returns it and the name of `path` in it.
    pub fn open_parent(path: &Path) -> io::Result<(Dir, OsString)> {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
        let dir = parent(path);
        Ok((Dir::open(&dir)?, name.to_os_string()))
    }

    /// Makes the directory at `path` and its parents unless they exist, then opens it
    /// (following symbolic links, as [`Dir::open`]).
    pub fn create(path: &Path) -> io::Result<Dir> {
        std::fs::create_dir_all(path)?;
        Dir::open(path)
    }

    /// Makes the subdirectory `name` with `mode` unless something has that name; returns
    /// whether it was made.
    pub fn make_dir(&self, name: &OsStr, mode: u32) -> io::Result<bool> {
        match sys::mkdirat(&*self.fd, plain_name(name)?, Mode::from_raw_mode(mode)) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the subdirectory `name` if it is empty (never through a symbolic link).
    pub fn remove_dir(&self, name: &OsStr) -> io::Result<()> {
        Ok(sys::unlinkat(
            &*self.fd,
            plain_name(name)?,
            AtFlags::REMOVEDIR,
        )?)
    }

    /// Opens the subdirectory `name`, never through a symbolic link.
    pub fn child(&self, name: &OsStr) -> io::Result<Dir> {
        let name = plain_name(name)?;
        let fd = sys::openat(
            &*self.fd,
            name,
            dir_flags() | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| match e {
            // A symbolic link (`ELOOP`), or something else that is not a directory.
            Errno::LOOP | Errno::NOTDIR => io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory (symbolic links are not followed in the output tree)",
            ),
            e => e.into(),
        })?;
        Ok(Dir {
            id: FileId::of(&fd)?,
            fd: Arc::new(fd),
            path: self.path.join(name),
        })
    }

    /// The path this directory was reached by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in this directory, for messages.
    pub fn join(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    /// Opens the file `name` to read, without blocking (a FIFO must not hang the batch) and
    /// without following a symbolic link unless `follow`.
    pub fn open_file(&self, name: &OsStr, follow: bool) -> io::Result<File> {
        let mut flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        let fd = sys::openat(&*self.fd, plain_name(name)?, flags, Mode::empty())?;
        Ok(File::from(fd))
    }

    /// Opens the file `name` to read and write in place, never through a symbolic link.
    pub fn open_file_rw(&self, name: &OsStr) -> io::Result<File> {
        let flags = OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let fd = sys::openat(&*self.fd, plain_name(name)?, flags, Mode::empty())?;
        Ok(File::from(fd))
    }

    /// Creates the file `name`, which must not exist (not even as a symbolic link), owner
    /// read-write only, open to read and write.
    pub fn create_new(&self, name: &OsStr) -> io::Result<File> {
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        let mode = Mode::RUSR | Mode::WUSR;
        let fd = sys::openat(&*self.fd, plain_name(name)?, flags | OFlags::CLOEXEC, mode)?;
        Ok(File::from(fd))
    }

    /// The identity of what `name` refers to (following a symbolic link if `follow`), or
    /// `None` if there is nothing by that name.
    pub fn id_of(&self, name: &OsStr, follow: bool) -> io::Result<Option<FileId>> {
        let flags = match follow {
            true => AtFlags::empty(),
            false => AtFlags::SYMLINK_NOFOLLOW,
        };
        match sys::statat(&*self.fd, plain_name(name)?, flags) {
            Ok(stat) => Ok(Some(FileId::from_stat(&stat))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Renames `from` to `to`, both in this directory. An existing `to` is replaced only if
    /// `replace`; otherwise the rename fails with [`io::ErrorKind::AlreadyExists`].
    pub fn rename(&self, from: &OsStr, to: &OsStr, replace: bool) -> io::Result<()> {
        let (from, to) = (plain_name(from)?, plain_name(to)?);
        let fd = &*self.fd;
        if replace {
            return Ok(sys::renameat(fd, from, fd, to)?);
        }
        match sys::renameat_with(fd, from, fd, to, RenameFlags::NOREPLACE) {
            // A file system (or kernel) without RENAME_NOREPLACE: a hard link fails just
            // the same on an existing name, then the old name goes.
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                sys::linkat(fd, from, fd, to, AtFlags::empty())?;
                Ok(sys::unlinkat(fd, from, AtFlags::empty())?)
            }
            result => Ok(result?),
        }
    }

    /// Removes the file `name`.
    pub fn remove(&self, name: &OsStr) -> io::Result<()> {
        Ok(sys::unlinkat(
            &*self.fd,
            plain_name(name)?,
            AtFlags::empty(),
        )?)
    }

    /// Removes the file `name` only if it is still the file `id`, checked just before; with
    /// `follow`, `name` may also be a symbolic link to that file (the link goes). Otherwise
    /// fails and leaves it.
    ///
    /// The check and the removal are two system calls: a name swapped in the instant between
    /// them is removed. That takes a process racing this one, and leaves the file it swapped
    /// in, not ours, at stake.
    pub fn remove_if_same(&self, name: &OsStr, id: FileId, follow: bool) -> io::Result<()> {
        let same = match self.id_of(name, false)? {
            None => return Err(io::ErrorKind::NotFound.into()),
            Some(now) if now == id => true,
            Some(_) => follow && self.id_of(name, true)? == Some(id),
        };
        match same {
            true => self.remove(name),
            false => Err(io::Error::other(
                "it was replaced by another file while it was processed",
            )),
        }
    }

    /// The identity of the directory itself, as opened.
    pub fn id(&self) -> FileId {
        self.id
    }

    /// Flushes the directory's entries to disk: the names renamed into it survive a power
    /// loss.
    pub fn sync(&self) -> io::Result<()> {
        Ok(sys::fsync(&*self.fd)?)
    }

    /// The names of the regular files in the directory (symbolic links not followed).
    pub fn files(&self) -> io::Result<Vec<OsString>> {
        let entries = self.entries()?.into_iter();
        let files = entries.filter(|(_, file_type)| *file_type == FileType::RegularFile);
        Ok(files.map(|(name, _)| name).collect())
    }

    /// The entries of the directory but `.` and `..`, each with its type (a symbolic link is
    /// one, not what it points to); an entry gone before its type could be read is left out.
    pub fn entries(&self) -> io::Result<Vec<(OsString, FileType)>> {
        let mut names = Vec::new();
        let mut entries = sys::Dir::read_from(&*self.fd)?;
        while let Some(entry) = entries.read() {
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let file_type = match entry.file_type() {
                // A file system that does not say in the listing.
                FileType::Unknown => {
                    match sys::statat(&*self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(stat) => FileType::from_raw_mode(stat.st_mode),
                        Err(_) => continue,
                    }
                }
                known => known,
            };
            names.push((name.to_os_string(), file_type));
        }
        Ok(names)
    }

    /// Moves the file `from` here to `to` in the directory `into` (on the same file system),
    /// never replacing a file of that name there ([`io::ErrorKind::AlreadyExists`]).
    pub fn move_to(&self, from: &OsStr, into: &Dir, to: &OsStr) -> io::Result<()> {
        let (from, to) = (plain_name(from)?, plain_name(to)?);
        Ok(sys::renameat_with(
            &*self.fd,
            from,
            &*into.fd,
            to,
            RenameFlags::NOREPLACE,
        )?)
    }

    /// The handle, for calls on the directory itself.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `name` if it is one plain name (no `/`, not `.` or `..`): every step below a directory
/// handle goes through exactly one entry.
fn plain_name(name: &OsStr) -> io::Result<&OsStr> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a plain file name",
        ));
    }
    Ok(name)
}

/// An output directory that cannot take outputs: the directory that failed, and why.
#[derive(Debug, Clone)]
pub struct Broken {
    path: PathBuf,
    kind: io::ErrorKind,
    message: String,
}

impl Broken {
    fn new(path: &Path, error: &io::Error) -> Broken {
        Broken {
            path: path.to_path_buf(),
            kind: error.kind(),
            message: error.to_string(),
        }
    }

    /// The directory that failed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why it failed.
    pub fn error(&self) -> io::Error {
        io::Error::new(self.kind, self.message.clone())
    }
}

/// The directories of a batch (its outputs, or its inputs) or of an inbox, each opened from
/// its parent's handle, parents before their children, and each held to the directory it was
/// when first opened (or planned).
///
/// A directory the operator named (an output root such as `-o`, an input tree, the directory
/// of an input file) is opened as named, following symbolic links: it may be or lie under
/// one. Every directory below one is opened from its parent's handle, never through a link.
/// Missing directories are made, if asked, with the mode given; those made and left empty by
/// a batch whose files failed can be removed again ([`Dirs::remove_empty_made`]).
///
/// At most [`OPEN_HANDLES`] handles are kept open, the least recently used closed first, so
/// that a tree of more directories than the process may open files goes through. A directory
/// opened again must be the same one (device and inode): one swapped since, for another
/// directory or for a symbolic link, is refused for the files that are still to come.
#[derive(Debug)]
pub struct Dirs {
    /// The mode new directories are made with; `None`: none are made.
    make: Option<u32>,
    dirs: HashMap<PathBuf, Result<Known, Broken>>,
    /// The directories made here, parents first.
    made: Vec<PathBuf>,
    open: Mutex<Handles>,
}

/// Directory handles a [`Dirs`] keeps open at most. A batch holds two (inputs and outputs)
/// beside its outputs in flight (`batch::run`), well within the usual limit of 1,024 files.
pub const OPEN_HANDLES: usize = 32;

/// A directory of a [`Dirs`], as first opened or planned.
#[derive(Debug, Clone, Copy)]
struct Known {
    named: bool,
    id: FileId,
}

/// The handles a [`Dirs`] holds, each with when it was last used.
#[derive(Debug, Default)]
struct Handles {
    dirs: HashMap<PathBuf, (Dir, u64)>,
    clock: u64,
}

impl Handles {
    fn get(&mut self, path: &Path) -> Option<Dir> {
        self.clock += 1;
        let (dir, used) = self.dirs.get_mut(path)?;
        *used = self.clock;
        Some(dir.clone())
    }

    fn keep(&mut self, dir: &Dir) {
        if self.dirs.len() >= OPEN_HANDLES {
            let oldest = self.dirs.iter().min_by_key(|(_, (_, used))| *used);
            if let Some(oldest) = oldest.map(|(path, _)| path.clone()) {
                self.dirs.remove(&oldest);
            }
        }
        self.clock += 1;
        let entry = (dir.clone(), self.clock);
        self.dirs.insert(dir.path.clone(), entry);
    }
}

impl Dirs {
    /// No directory opened yet. With `make`, missing directories are made with that mode
    /// (before the umask).
    pub fn new(make: Option<u32>) -> Dirs {
        Dirs {
            make,
            dirs: HashMap::new(),
            made: Vec::new(),
            open: Mutex::default(),
        }
    }

    /// Opens the directory `path` unless it is known already (making it first if missing,
    /// when asked to). `named`: the operator named it. Otherwise its parent must have been
    /// added first; a directory whose parent is broken is broken.
    pub fn add(&mut self, path: &Path, named: bool) -> Result<Dir, Broken> {
        if self.dirs.contains_key(path) {
            return self.get(path).expect("known");
        }
        let opened = self.first_open(path, named);
        let known = match &opened {
            Ok(dir) => {
                self.lock().keep(dir);
                Ok(Known { named, id: dir.id })
            }
            Err(broken) => Err(broken.clone()),
        };
        self.dirs.insert(path.to_path_buf(), known);
        opened
    }

    /// Takes the directory `path` as planned, the directory `id` (see [`Dirs::add`] for
    /// `named`), to be opened when first asked for: it must then still be that directory.
    pub fn plan(&mut self, path: &Path, named: bool, id: FileId) {
        let known = Known { named, id };
        self.dirs.entry(path.to_path_buf()).or_insert(Ok(known));
    }

    /// Marks the directory `path` as unable to take outputs (add it first): its children
    /// added later are too.
    pub fn break_dir(&mut self, path: &Path, error: &io::Error) {
        self.lock().dirs.remove(path);
        self.dirs
            .insert(path.to_path_buf(), Err(Broken::new(path, error)));
    }

    /// Whether the directory `path` was added or planned.
    pub fn contains(&self, path: &Path) -> bool {
        self.dirs.contains_key(path)
    }

    /// The directory `path`, if it was added or planned: open (opened again from its
    /// parent's handle if it was closed), or why it cannot be used.
    pub fn get(&self, path: &Path) -> Option<Result<Dir, Broken>> {
        let known = match self.dirs.get(path)? {
            Ok(known) => *known,
            Err(broken) => return Some(Err(broken.clone())),
        };
        if let Some(dir) = self.lock().get(path) {
            return Some(Ok(dir));
        }
        let broken = |e: io::Error| Broken::new(path, &e);
        let opened = match known.named {
            true => Dir::open(path).map_err(broken),
            false => self
                .child(path)
                .and_then(|(parent, name)| parent.child(name).map_err(broken)),
        };
        Some(opened.and_then(|dir| match dir.id == known.id {
            true => {
                self.lock().keep(&dir);
                Ok(dir)
            }
            false => Err(broken(io::Error::other(
                "it was replaced by another directory while it was in use",
            ))),
        }))
    }

    /// Removes, deepest first, the directories made here that `worked` says had outputs
    /// planned beneath them and that are still empty: their files all failed. Directories
    /// that existed before, and those made for no output (an empty input directory, mirrored)
    /// stay; so does any directory with something in it.
    pub fn remove_empty_made(&self, worked: impl Fn(&Path) -> bool) {
        for path in self.made.iter().rev().filter(|path| worked(path)) {
            let parent = path.parent().and_then(|parent| self.get(parent));
            let _ = match (parent, path.file_name()) {
                (Some(Ok(parent)), Some(name)) => parent.remove_dir(name),
                // A directory the operator named (`-o`): it has no handle above it.
                _ => std::fs::remove_dir(path),
            };
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Handles> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The parent of `path`, open, and `path`'s name in it; or why not.
    fn child<'p>(&self, path: &'p Path) -> Result<(Dir, &'p OsStr), Broken> {
        let parent = path.parent().and_then(|parent| self.get(parent));
        match (parent, path.file_name()) {
            (Some(Ok(parent)), Some(name)) => Ok((parent, name)),
            (Some(Err(cause)), _) => Err(cause),
            _ => Err(Broken::new(
                path,
                &io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not beneath a directory that was opened",
                ),
            )),
        }
    }

    fn first_open(&mut self, path: &Path, named: bool) -> Result<Dir, Broken> {
        let broken = |e: io::Error| Broken::new(path, &e);
        if named {
            let missing = path.symlink_metadata().is_err();
            let opened = match self.make {
                Some(_) => Dir::create(path),
                None => Dir::open(path),
            };
            if missing && opened.is_ok() {
                self.made.push(path.to_path_buf());
            }
            return opened.map_err(broken);
        }
        let (parent, name) = self.child(path)?;
        if let Some(mode) = self.make {
            if parent.make_dir(name, mode).map_err(broken)? {
                self.made.push(path.to_path_buf());
            }
        }
        parent.child(name).map_err(broken)
    }
}

/// The directory a path is in (`.` for a bare name).
pub(crate) fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_child_is_never_a_symbolic_link_and_is_made_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        std::os::unix::fs::symlink(tmp.path(), tmp.path().join("link")).unwrap();
        assert!(!dir.make_dir("link".as_ref(), 0o700).unwrap());
        let e = dir.child("link".as_ref()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotADirectory);
        assert!(dir.make_dir("d".as_ref(), 0o700).unwrap());
        assert!(!dir.make_dir("d".as_ref(), 0o700).unwrap());
        dir.child("d".as_ref()).unwrap();
        assert!(dir.child("missing".as_ref()).is_err());
        assert!(dir.child("..".as_ref()).is_err());
        assert!(dir.child("d/..".as_ref()).is_err());
    }

    #[test]
    fn a_handle_keeps_its_directory_when_the_path_is_swapped_for_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open(tmp.path()).unwrap();
        root.make_dir("out".as_ref(), 0o700).unwrap();
        let out = root.child("out".as_ref()).unwrap();
        fs::create_dir(tmp.path().join("attacker")).unwrap();
        fs::rename(tmp.path().join("out"), tmp.path().join("moved")).unwrap();
        std::os::unix::fs::symlink("attacker", tmp.path().join("out")).unwrap();
        out.create_new("f".as_ref()).unwrap();
        assert!(tmp.path().join("moved/f").is_file());
        assert_eq!(
            fs::read_dir(tmp.path().join("attacker")).unwrap().count(),
            0
        );
    }

    #[test]
    fn a_rename_without_replace_keeps_an_existing_target() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        fs::write(tmp.path().join("a"), b"a").unwrap();
        fs::write(tmp.path().join("b"), b"b").unwrap();
        let e = dir.rename("a".as_ref(), "b".as_ref(), false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(tmp.path().join("b")).unwrap(), b"b");
        dir.rename("a".as_ref(), "b".as_ref(), true).unwrap();
        assert_eq!(fs::read(tmp.path().join("b")).unwrap(), b"a");
        dir.rename("b".as_ref(), "c".as_ref(), false).unwrap();
        assert_eq!(fs::read(tmp.path().join("c")).unwrap(), b"a");
    }

    #[test]
    fn a_name_whose_file_changed_is_not_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        fs::write(tmp.path().join("input"), b"processed").unwrap();
        let opened = dir.open_file("input".as_ref(), false).unwrap();
        let id = FileId::of(&opened).unwrap();
        // Swapped for another file between processing and removal.
        fs::write(tmp.path().join("other"), b"not processed").unwrap();
        fs::rename(tmp.path().join("other"), tmp.path().join("input")).unwrap();
        assert!(dir.remove_if_same("input".as_ref(), id, false).is_err());
        assert_eq!(
            fs::read(tmp.path().join("input")).unwrap(),
            b"not processed"
        );
        // Or for a symbolic link to the file processed.
        fs::remove_file(tmp.path().join("input")).unwrap();
        let id = FileId::of(dir.create_new("kept".as_ref()).unwrap()).unwrap();
        std::os::unix::fs::symlink("kept", tmp.path().join("input")).unwrap();
        assert!(dir.remove_if_same("input".as_ref(), id, false).is_err());
        assert!(tmp.path().join("input").symlink_metadata().is_ok());
        // Unless links are followed: then the link goes, and the file stays.
        dir.remove_if_same("input".as_ref(), id, true).unwrap();
        assert!(tmp.path().join("input").symlink_metadata().is_err());
        // The same file: removed.
        dir.remove_if_same("kept".as_ref(), id, false).unwrap();
        assert!(!tmp.path().join("kept").exists());
    }

    #[test]
    fn directories_below_the_root_are_made_from_their_parents_and_a_broken_parent_breaks_its_children(
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("out");
        let mut dirs = Dirs::new(Some(0o700));
        dirs.add(&root, true).unwrap();
        dirs.add(&root.join("a"), false).unwrap();
        dirs.add(&root.join("a/b"), false).unwrap();
        assert!(root.join("a/b").is_dir());
        std::os::unix::fs::symlink(tmp.path(), root.join("link")).unwrap();
        let broken = dirs.add(&root.join("link"), false).unwrap_err().clone();
        assert_eq!(broken.path(), root.join("link"));
        let child = dirs.add(&root.join("link/c"), false).unwrap_err();
        assert_eq!(child.path(), root.join("link"));
        assert!(dirs.add(&tmp.path().join("elsewhere"), false).is_err());
        assert!(!tmp.path().join("c").exists());
        // A directory the operator named may be a link; below it, none is followed.
        let mut beside = Dirs::new(None);
        beside.add(&root.join("link"), true).unwrap();
        assert!(beside.add(&root.join("link/new"), false).is_err());
        assert!(!tmp.path().join("new").exists());
    }

    #[test]
    fn handles_closed_are_opened_again_only_as_the_same_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("in");
        let count = OPEN_HANDLES + 8;
        let mut dirs = Dirs::new(Some(0o700));
        dirs.add(&root, true).unwrap();
        for i in 0..count {
            dirs.add(&root.join(format!("d{i}")), false).unwrap();
        }
        assert!(dirs.lock().dirs.len() <= OPEN_HANDLES);
        // The first ones were closed: each is opened again, from its parent's handle.
        for i in 0..count {
            let dir = dirs.get(&root.join(format!("d{i}"))).unwrap().unwrap();
            assert_eq!(dir.path(), root.join(format!("d{i}")));
        }
        assert!(dirs.lock().dirs.len() <= OPEN_HANDLES);
        // Swapped, while closed, for another directory or a symbolic link: refused.
        fs::rename(root.join("d0"), tmp.path().join("away")).unwrap();
        fs::create_dir(root.join("d0")).unwrap();
        fs::rename(root.join("d1"), tmp.path().join("away1")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("away1"), root.join("d1")).unwrap();
        for i in 2..count {
            dirs.get(&root.join(format!("d{i}"))).unwrap().unwrap();
        }
        let e = dirs.get(&root.join("d0")).unwrap().unwrap_err().error();
        assert!(
            e.to_string().contains("replaced by another directory"),
            "{e}"
        );
        let e = dirs.get(&root.join("d1")).unwrap().unwrap_err().error();
        assert_eq!(e.kind(), io::ErrorKind::NotADirectory, "{e}");
        // Planned (an input directory as a walk found it), then swapped before it was opened.
        let mut inputs = Dirs::new(None);
        let id = FileId::of(File::open(&root).unwrap()).unwrap();
        inputs.plan(&root, true, id);
        let d2 = FileId::of(File::open(root.join("d2")).unwrap()).unwrap();
        inputs.plan(&root.join("d2"), false, d2);
        inputs.plan(&root.join("d3"), false, d2);
        assert!(inputs.get(&root.join("d2")).unwrap().is_ok());
        assert!(inputs.get(&root.join("d3")).unwrap().is_err());
        assert!(inputs.get(&root.join("d4")).is_none());
    }

    #[test]
    fn only_directories_made_here_for_outputs_and_left_empty_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("out");
        fs::create_dir_all(root.join("there")).unwrap();
        let mut dirs = Dirs::new(Some(0o700));
        for (path, named) in [("", true), ("there", false), ("a", false), ("a/b", false)] {
            dirs.add(&root.join(path), named).unwrap();
        }
        dirs.add(&root.join("full"), false).unwrap();
        dirs.add(&root.join("mirror"), false).unwrap();
        fs::write(root.join("full/f"), b"kept").unwrap();
        dirs.remove_empty_made(|path| !path.ends_with("mirror"));
        assert!(
            !root.join("a").exists(),
            "made and left empty: removed, children first"
        );
        assert!(root.join("there").is_dir(), "it was there before");
        assert!(root.join("full/f").is_file() && root.join("mirror").is_dir());
        // The root the operator named goes too, once empty, if it was made here.
        fs::remove_dir_all(&root).unwrap();
        let mut dirs = Dirs::new(Some(0o700));
        dirs.add(&root, true).unwrap();
        dirs.add(&root.join("a"), false).unwrap();
        dirs.remove_empty_made(|_| true);
        assert!(!root.exists());
    }
}
