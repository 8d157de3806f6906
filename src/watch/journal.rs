//! What the watcher remembers across restarts: each upload it has settled, so that it is
//! taken once, however often it restarts and however many watchers share the inbox.
//!
//! The journal is one append-only text file in the state directory, a record a line:
//! `STATE DEV:INO:SIZE:MTIME_NS HEXPATH`, the path relative to the inbox, its bytes in hex so
//! that no name can break a line. The last record of a path wins, for the same upload (the
//! same file, size and modification time); a new upload of the same name starts afresh.
//!
//! - `intent`: its output was about to be put in place (written before the group's commit).
//!   Found without `done` after a crash, the output is there or not: done, or to redo.
//! - `done`: its output is in place.
//! - `left`: it failed and stays in the inbox (no quarantine): not retried until it changes.
//!
//! A record is in the kernel once written, so that a kill loses none. `intent` records reach
//! the disk with the outputs' bytes, before any output goes into place (`file::commit`);
//! `done` and `left` records are not waited for, but reach the disk with the next group's
//! `intent` or once the watcher is idle for a moment. A power loss can thus lose the last
//! `done` records (the next start finds `intent` and the output, and records them done) or
//! `left` ones (the upload is tried once more). Each record is one `write` to a file opened
//! `O_APPEND`, so that two watchers' records never interleave; each watcher reads the
//! other's before it takes a file.
//! At start-up, a watcher alone rewrites the journal with only the records of uploads still
//! in the inbox, so that it does not grow without end; while it runs, it rewrites it with the
//! records it still needs whenever the journal has grown past four times its size after the
//! last rewrite (and past [`GROWN_FLOOR`]), once idle for a moment ([`Journal::grown`]).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

const JOURNAL: &str = "journal";
const LOCK: &str = "lock";

/// A journal smaller than this is never rewritten while the watcher runs: 4 MiB, some 20,000
/// records.
const GROWN_FLOOR: u64 = 4 << 20;

/// One upload: the file, its size and modification time. A new upload under the same name
/// is another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Upload {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
}

impl Upload {
    pub(crate) fn of(meta: &fs::Metadata) -> Upload {
        Upload {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        }
    }
}

/// What the journal says of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Intent,
    Done,
    Left,
}

impl State {
    fn word(self) -> &'static str {
        match self {
            State::Intent => "intent",
            State::Done => "done",
            State::Left => "left",
        }
    }

    fn parse(word: &str) -> Option<State> {
        match word {
            "intent" => Some(State::Intent),
            "done" => Some(State::Done),
            "left" => Some(State::Left),
            _ => None,
        }
    }
}

/// The journal of one state directory, open to append, and what it says.
pub(crate) struct Journal {
    file: File,
    /// Held shared while this watcher runs; exclusive only to rewrite the journal.
    lock: File,
    /// How far this watcher has read.
    read: u64,
    /// A partial last line, waiting for the rest of it.
    tail: Vec<u8>,
    entries: HashMap<PathBuf, (State, Upload)>,
    /// Records written since the last sync.
    unsynced: bool,
    /// The journal's size when it was opened or last rewritten.
    rewritten: u64,
}

impl Journal {
    /// Opens the journal in `dir` (made, owner-only, if missing) and reads it.
    pub(crate) fn open(dir: &Path) -> io::Result<Journal> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(dir.join(LOCK))?;
        flock(&lock, FlockOperation::LockShared)?;
        let file = open_journal(dir)?;
        let mut journal = Journal {
            file,
            lock,
            read: 0,
            tail: Vec::new(),
            entries: HashMap::new(),
            unsynced: false,
            rewritten: 0,
        };
        journal.refresh()?;
        journal.rewritten = journal.read;
        Ok(journal)
    }

    /// Reads the records appended since the last read (by this watcher or another).
    pub(crate) fn refresh(&mut self) -> io::Result<()> {
        // Read from where this watcher stopped, whatever the file's offset: an append moves
        // it past records another watcher wrote meanwhile. Most often there is nothing new,
        // and one `fstat` says so.
        let len = self.file.metadata()?.len();
        if len <= self.read {
            return Ok(());
        }
        let mut new = vec![0u8; (len - self.read) as usize];
        let mut filled = 0;
        while filled < new.len() {
            match self
                .file
                .read_at(&mut new[filled..], self.read + filled as u64)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        new.truncate(filled);
        self.read += filled as u64;
        self.tail.extend_from_slice(&new);
        let Some(end) = self.tail.iter().rposition(|&b| b == b'\n') else {
            return Ok(());
        };
        let lines: Vec<u8> = self.tail.drain(..=end).collect();
        for line in lines.split(|&b| b == b'\n') {
            if let Some((path, state, upload)) = parse(line) {
                self.entries.insert(path, (state, upload));
            }
        }
        Ok(())
    }

    /// What the journal says of `upload` at `path` (relative to the inbox): nothing for a
    /// new upload under a name it knew.
    pub(crate) fn state(&self, path: &Path, upload: Upload) -> Option<State> {
        match self.entries.get(path) {
            Some((state, known)) if *known == upload => Some(*state),
            _ => None,
        }
    }

    /// Appends `records` in one write, not yet synced.
    pub(crate) fn write(&mut self, records: &[(State, &Path, Upload)]) -> io::Result<()> {
        let mut text = Vec::new();
        for (state, path, upload) in records {
            line(&mut text, *state, path, *upload);
        }
        self.file.write_all(&text)?;
        self.unsynced = true;
        self.refresh()
    }

    /// The journal's file, to sync the records written so far: taken as synced.
    pub(crate) fn take_unsynced(&mut self) -> io::Result<Option<File>> {
        match std::mem::take(&mut self.unsynced) {
            true => self.file.try_clone().map(Some),
            false => Ok(None),
        }
    }

    /// Syncs the records written so far, if any.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        match self.take_unsynced()? {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }

    /// Whether the journal has grown enough since it was opened or last rewritten to be
    /// rewritten ([`Journal::compact`]): past four times its size then, and past
    /// [`GROWN_FLOOR`].
    pub(crate) fn grown(&self) -> bool {
        self.read > GROWN_FLOOR.max(self.rewritten.saturating_mul(4))
    }

    /// Forgets `path`: its upload is gone from the inbox.
    pub(crate) fn forget(&mut self, path: &Path) {
        self.entries.remove(path);
    }

    /// Rewrites the journal in `dir` with only the records `keep` keeps, if no other
    /// watcher has it open; returns whether it did.
    pub(crate) fn compact(
        &mut self,
        dir: &Path,
        keep: impl Fn(&Path, Upload) -> bool,
    ) -> io::Result<bool> {
        if flock(&self.lock, FlockOperation::NonBlockingLockExclusive).is_err() {
            return Ok(false);
        }
        let result = self.rewrite(dir, keep);
        flock(&self.lock, FlockOperation::LockShared)?;
        result.map(|()| true)
    }

    fn rewrite(&mut self, dir: &Path, keep: impl Fn(&Path, Upload) -> bool) -> io::Result<()> {
        self.refresh()?;
        self.entries.retain(|path, (_, upload)| keep(path, *upload));
        let mut text = Vec::new();
        for (path, (state, upload)) in &self.entries {
            line(&mut text, *state, path, *upload);
        }
        let new = dir.join(format!("{JOURNAL}.new"));
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&new)?;
        file.write_all(&text)?;
        file.sync_data()?;
        fs::rename(&new, dir.join(JOURNAL))?;
        File::open(dir)?.sync_all()?;
        self.file = open_journal(dir)?;
        self.unsynced = false;
        self.read = self.file.metadata()?.len();
        self.rewritten = self.read;
        self.tail.clear();
        Ok(())
    }
}

fn open_journal(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(0o600)
        .open(dir.join(JOURNAL))
}

fn line(text: &mut Vec<u8>, state: State, path: &Path, upload: Upload) {
    let Upload {
        dev,
        ino,
        size,
        mtime_ns,
    } = upload;
    let _ = write!(text, "{} {dev}:{ino}:{size}:{mtime_ns} ", state.word());
    for byte in path.as_os_str().as_bytes() {
        let _ = write!(text, "{byte:02x}");
    }
    text.push(b'\n');
}

fn parse(line: &[u8]) -> Option<(PathBuf, State, Upload)> {
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split(' ');
    let state = State::parse(words.next()?)?;
    let mut numbers = words.next()?.split(':');
    let mut number = || numbers.next()?.parse::<u64>().ok();
    let (dev, ino, size) = (number()?, number()?, number()?);
    let mtime_ns = numbers.next()?.parse::<i128>().ok()?;
    let hex = words.next()?;
    if words.next().is_some() || hex.is_empty() || hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect();
    let path = PathBuf::from(OsStr::from_bytes(&bytes?));
    let upload = Upload {
        dev,
        ino,
        size,
        mtime_ns,
    };
    Some((path, state, upload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(ino: u64) -> Upload {
        Upload {
            dev: 1,
            ino,
            size: 4096,
            mtime_ns: -5,
        }
    }

    #[test]
    fn records_survive_a_reopen_the_last_one_wins_and_a_new_upload_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let odd = PathBuf::from(OsStr::from_bytes(b"a b/\n\xff.age"));
        {
            let mut journal = Journal::open(&state).unwrap();
            let records = [
                (State::Intent, odd.as_path(), upload(1)),
                (State::Left, Path::new("x.age"), upload(2)),
            ];
            journal.write(&records).unwrap();
            journal
                .write(&[(State::Done, odd.as_path(), upload(1))])
                .unwrap();
        }
        let journal = Journal::open(&state).unwrap();
        assert_eq!(journal.state(&odd, upload(1)), Some(State::Done));
        assert_eq!(
            journal.state(Path::new("x.age"), upload(2)),
            Some(State::Left)
        );
        assert_eq!(journal.state(Path::new("x.age"), upload(3)), None);
        assert_eq!(journal.state(Path::new("y.age"), upload(2)), None);
    }

    #[test]
    fn records_are_unsynced_once_written_and_not_again_once_taken() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path()).unwrap();
        assert!(journal.take_unsynced().unwrap().is_none());
        journal
            .write(&[(State::Intent, Path::new("a.age"), upload(1))])
            .unwrap();
        journal
            .write(&[(State::Done, Path::new("a.age"), upload(1))])
            .unwrap();
        // One sync covers both records, and is the journal's own file.
        let file = journal.take_unsynced().unwrap().expect("records to sync");
        assert_eq!(
            file.metadata().unwrap().ino(),
            fs::metadata(dir.path().join(JOURNAL)).unwrap().ino()
        );
        file.sync_data().unwrap();
        assert!(journal.take_unsynced().unwrap().is_none());
        journal
            .write(&[(State::Left, Path::new("b.age"), upload(2))])
            .unwrap();
        journal.sync().unwrap();
        assert!(journal.take_unsynced().unwrap().is_none());
    }

    #[test]
    fn a_second_watcher_reads_the_first_ones_records_and_a_torn_line_waits_for_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut one = Journal::open(dir.path()).unwrap();
        let mut two = Journal::open(dir.path()).unwrap();
        one.write(&[(State::Done, Path::new("a.age"), upload(1))])
            .unwrap();
        assert_eq!(two.state(Path::new("a.age"), upload(1)), None);
        two.refresh().unwrap();
        assert_eq!(two.state(Path::new("a.age"), upload(1)), Some(State::Done));
        // A line cut short (a crash in the middle of a write) is read once it ends.
        let mut raw = OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL))
            .unwrap();
        raw.write_all(b"done 1:2:4096:-5 62").unwrap();
        two.refresh().unwrap();
        assert_eq!(two.state(Path::new("b"), upload(2)), None);
        raw.write_all(b"\nnonsense line\n").unwrap();
        two.refresh().unwrap();
        assert_eq!(two.state(Path::new("b"), upload(2)), Some(State::Done));
        // The other watcher holds the journal: no rewrite.
        assert!(!two.compact(dir.path(), |_, _| false).unwrap());
    }

    #[test]
    fn a_journal_that_has_grown_is_rewritten_with_what_is_still_needed() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path()).unwrap();
        let mut ino = 0;
        while !journal.grown() {
            let path = PathBuf::from(format!("upload-{ino:08}.age"));
            journal
                .write(&[(State::Intent, &path, upload(ino))])
                .unwrap();
            journal.write(&[(State::Done, &path, upload(ino))]).unwrap();
            // Removed from the inbox (`remove_source`), but every tenth.
            if ino % 10 != 0 {
                journal.forget(&path);
            }
            ino += 1;
        }
        assert!(journal.read > GROWN_FLOOR, "{}", journal.read);
        assert!(journal.compact(dir.path(), |_, _| true).unwrap());
        assert!(!journal.grown());
        let len = fs::metadata(dir.path().join(JOURNAL)).unwrap().len();
        assert!(len < GROWN_FLOOR / 15, "{len}");
        let reopened = Journal::open(dir.path()).unwrap();
        assert_eq!(reopened.entries.len(), (ino as usize).div_ceil(10));
        let kept = Path::new("upload-00000010.age");
        assert_eq!(reopened.state(kept, upload(10)), Some(State::Done));
        let gone = Path::new("upload-00000011.age");
        assert_eq!(reopened.state(gone, upload(11)), None);
        // The next rewrite waits for the floor again, whatever the size now.
        assert!(len * 4 < GROWN_FLOOR && !reopened.grown());
    }

    #[test]
    fn compacting_keeps_only_what_is_kept_and_the_journal_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path()).unwrap();
        for ino in 0..10 {
            let path = PathBuf::from(format!("{ino}.age"));
            journal.write(&[(State::Done, &path, upload(ino))]).unwrap();
        }
        assert!(journal
            .compact(dir.path(), |path, _| path == Path::new("3.age"))
            .unwrap());
        journal
            .write(&[(State::Left, Path::new("z.age"), upload(99))])
            .unwrap();
        let text = fs::read_to_string(dir.path().join(JOURNAL)).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        let journal = Journal::open(dir.path()).unwrap();
        assert_eq!(
            journal.state(Path::new("3.age"), upload(3)),
            Some(State::Done)
        );
        assert_eq!(journal.state(Path::new("4.age"), upload(4)), None);
        assert_eq!(
            journal.state(Path::new("z.age"), upload(99)),
            Some(State::Left)
        );
    }
}
