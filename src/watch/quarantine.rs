//! Bad uploads out of the way: moved, with their signature, into the quarantine directory
//! under the same relative path, with a small JSON file beside each saying why.
//!
//! The move is a rename from the upload's directory handle into a directory of the
//! quarantine tree (made owner-only, never through a symbolic link), so the quarantine must
//! be on the inbox's file system; the watcher checks that when it starts. An upload never
//! replaces one quarantined before it under the same name: the newcomer gets `.1`, `.2`, ...

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::file::{Dir, Dirs, Source};

/// Copies of a name tried in the quarantine before giving up.
const TRIES: u32 = 100;

/// Moves `source` (and `NAME.sig` beside it, if any) into `dirs`' tree at `relative` (the
/// upload's path below the inbox) and writes `why` (a JSON object) beside it; returns where
/// it went.
pub(crate) fn quarantine(
    dirs: &mut Dirs,
    root: &Path,
    relative: &Path,
    source: &Source,
    why: &str,
) -> io::Result<PathBuf> {
    let mut dir_path = root.to_path_buf();
    dirs.add(root, true).map_err(|broken| broken.error())?;
    if let Some(parent) = relative.parent() {
        for part in parent.components() {
            dir_path.push(part);
            dirs.add(&dir_path, false)
                .map_err(|broken| broken.error())?;
        }
    }
    let into = match dirs.get(&dir_path) {
        Some(Ok(dir)) => dir,
        _ => return Err(io::Error::other("quarantine directory not open")),
    };
    let name = place(&source.dir, &source.name, &into)?;
    let mut sig = source.name.clone();
    sig.push(".sig");
    let mut sig_to = name.clone();
    sig_to.push(".sig");
    match source.dir.move_to(&sig, &into, &sig_to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut note = name.clone();
    note.push(".json");
    let mut file: File = into.create_new(&note)?;
    file.write_all(why.as_bytes())?;
    file.sync_data()?;
    into.sync()?;
    source.dir.sync()?;
    Ok(into.join(&name))
}

/// Moves `name` from `from` into `into` under its own name, or the first free `NAME.N`;
/// returns the name it took.
fn place(from: &Dir, name: &OsStr, into: &Dir) -> io::Result<OsString> {
    let mut to = name.to_os_string();
    for n in 1..=TRIES {
        let mut note = to.clone();
        note.push(".json");
        let free = into.id_of(&note, false)?.is_none();
        if free {
            match from.move_to(name, into, &to) {
                Ok(()) => return Ok(to),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        to = name.to_os_string();
        to.push(format!(".{n}"));
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "the quarantine holds too many files of that name",
    ))
}
