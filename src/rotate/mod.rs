//! Server key rotation without re-encryption: a sealed file's header re-wrapped to new
//! recipients, its payload untouched.
//!
//! An age file's payload is encrypted under its file key and a nonce; the header only wraps
//! that key to the recipients, under a MAC keyed by it. Whoever unwraps the key with the old
//! server key can write a new header that wraps the same key to new recipients, with a new
//! MAC, and put it in front of the same payload: the old key no longer opens the file, the
//! new one does, and not one payload byte is decrypted or rewritten.
//!
//! - **In place** when the new header is as long as the old (the same recipient types and
//!   count: X25519 to X25519): the new header is written over the old one and synced.
//! - **Otherwise by a copy**: a new file of the new header and the payload, copied by
//!   `copy_file_range` (a reflink where the file system has them), renamed over the old.
//!
//! Either way the rotation record (`NAME.age.rotated`, [`record`]) goes in place first,
//! durable: it keeps the header the file was sealed with (a sender's signature covers it),
//! says when each rotation was made and from which key, and holds the header the file is
//! being given. A file interrupted at any point (a kill, a power loss) is old or new, or
//! its first bytes torn by a power loss; its record then names a header it does not carry,
//! and the next run finishes the job from the record before anything else.
//!
//! The new header keeps the stanza that names the file's signer (`seal-signer`) and drops
//! every other: only the new recipients open a rotated file. A signed file's signature is
//! checked before it is rotated (on its own, [`Keys::drop_bad_signatures`] says what to do
//! with one that does not check); afterwards the sender check finds the record and checks
//! the signature over the original header it keeps (`crate::sender::SealedHash`). Files go through the batch
//! engine (`crate::batch`, [`crate::batch::Keys::Rewrap`]), which commits their records and
//! headers in groups; [`rotate_path`] rotates one.

pub mod record;

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::engine::chunks::read_exact_at;
use crate::engine::decrypt::{short_nonce, unwrap_file_key_by, SealedFile};
use crate::engine::encrypt::header_for;
use crate::error::{DecryptError, EncryptError};
use crate::file::staging::Staged;
use crate::file::{Dir, FileError, FileId, Target, Written};
use crate::format::stream::NONCE_SIZE;
use crate::format::Header;
use crate::keys::recipient::{Identity, Recipient};
use crate::signing::sender::{check_unlisted, read_signature, signature_path, Rejection};
use crate::signing::sshsig::SIGNER_STANZA;
pub use record::{MalformedRecord, Record, Rotation, SUFFIX};

/// Why a file could not be rotated, beyond not opening.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotateError {
    /// Its rotation record (`NAME.age.rotated`) is there but unreadable.
    #[error(transparent)]
    Record(MalformedRecord),
    /// ASCII-armored files are not rotated: their header is inside the armor.
    #[error("ASCII-armored: unseal it and seal it again to rotate it")]
    Armored,
    /// A passphrase among the new recipients.
    #[error("a file is never rotated to a passphrase")]
    Passphrase,
    /// The file at its name is no longer the one that was read.
    #[error("replaced while it was being rotated")]
    Replaced,
    /// A signed file (`NAME.age.sig` beside it) whose signature does not check: rotated,
    /// it would read as signed by its record. Checked on its own (the signer named in the
    /// header it was sealed with, the signature over that header and the payload), with no
    /// allowed-signers list.
    #[error("its signature (NAME.age.sig) does not check, so it is not rotated: {0}")]
    BadSignature(Rejection),
    /// Its record's original header does not wrap the file key of the header it carries.
    #[error("its rotation record's original header is not this file's")]
    ForeignOriginal,
}

/// What to rotate with.
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    /// The keys that open the files now: one of them unwraps each file key.
    pub identities: &'a [&'a dyn Identity],
    /// The recipients to wrap each file key to from now on.
    pub recipients: &'a [&'a dyn Recipient],
    /// A signed file (`NAME.age.sig`) whose signature does not check is rotated too, its
    /// signature removed, rather than refused ([`RotateError::BadSignature`]).
    pub drop_bad_signatures: bool,
}

/// Rotates the sealed file at `path`: its file key unwrapped by one of `keys.identities`,
/// its header re-wrapped to `keys.recipients`. The file and its record are durable on
/// return. A file that none of the identities opens is left as it is: `FileError::Decrypt`
/// with [`DecryptError::NoMatch`] (already rotated, or sealed to another key). Returns why
/// its signature was removed, if it had one that did not check and
/// [`Keys::drop_bad_signatures`] allowed that.
pub fn rotate_path(path: &Path, keys: Keys<'_>) -> Result<Option<Rejection>, FileError> {
    let (dir, name) = Dir::open_parent(path).map_err(FileError::Read)?;
    let input = dir.open_file(&name, false).map_err(FileError::Read)?;
    let meta = input.metadata().map_err(FileError::Read)?;
    if !meta.is_file() {
        return Err(FileError::NotAFile);
    }
    let target = Target {
        dir: &dir,
        name: &name,
        path,
        force: true,
        temporaries: &(),
    };
    let (dropped, written) = rotate(target, &input, &meta, keys)?;
    written.commit()?;
    Ok(dropped)
}

/// Rotates `input` (`meta`: its metadata), the file `target.name` in `target.dir`: returns
/// what to commit, its record first, then its new header (a patch in place, or a new file),
/// and why its signature was removed, if it was.
pub(crate) fn rotate<'o>(
    target: Target<'_, 'o>,
    input: &File,
    meta: &Metadata,
    keys: Keys<'_>,
) -> Result<(Option<Rejection>, Written<'o>), FileError> {
    let Keys {
        identities,
        recipients,
        drop_bad_signatures,
    } = keys;
    if recipients.iter().any(|r| r.must_be_alone()) {
        return Err(FileError::Rotate(RotateError::Passphrase));
    }
    let found = State::read(&target, input)?;
    let (file_key, header_key, by) = match unwrap_file_key_by(&found.header, identities) {
        Ok(unwrapped) => unwrapped,
        // Interrupted after the record, on the way to a header the old key does not open:
        // that header is finished, and the rotation with it.
        Err(DecryptError::NoMatch { .. }) if found.interrupted => {
            let header = found.header.to_bytes().to_vec();
            let written = put_header(target, input, meta, &found, header, Written::nothing());
            return Ok((None, written?));
        }
        Err(e) => return Err(FileError::Decrypt(e)),
    };
    let original = match found.original == found.header.to_bytes() {
        true => found.header.clone(),
        false => {
            let parsed = Header::parse(&found.original).ok().map(|(h, _)| h);
            parsed
                .filter(|h| header_key.authenticates(h))
                .ok_or(FileError::Rotate(RotateError::ForeignOriginal))?
        }
    };
    let signature_path = signature_path(target.path);
    let signature = read_signature(&signature_path).map_err(FileError::ReadSignature)?;
    let checked = match signature {
        Some(signature) => check_unlisted(&signature, &original, input, found.on_disk).err(),
        None => None,
    };
    let dropped = match checked {
        None => None,
        Some(rejection) if !drop_bad_signatures => {
            return Err(FileError::Rotate(RotateError::BadSignature(rejection)))
        }
        // Removed first: a rerun after a crash finds the file unsigned, as asked. The
        // directory is synced with the record's name.
        Some(rejection) => {
            let name = signature_path.file_name().unwrap_or_default();
            target.dir.remove(name).map_err(|error| FileError::Write {
                path: signature_path.clone(),
                error,
            })?;
            Some(rejection)
        }
    };
    let kept = found
        .header
        .stanzas
        .iter()
        .filter(|s| s.kind == SIGNER_STANZA)
        .cloned()
        .collect();
    let header = header_for(&file_key, recipients, kept).map_err(|e| match e {
        EncryptError::IncompatibleRecipients => FileError::IncompatibleRecipients(e),
        _ => FileError::NoRecipients,
    })?;
    let mut rotations = found.rotations.clone();
    rotations.push(Rotation {
        time: crate::json::time(SystemTime::now()),
        from: identities[by].fingerprint(),
    });
    let record = Record {
        nonce: found.nonce,
        rotations,
        original: found.original.clone(),
        current: header.to_bytes().to_vec(),
    };
    let record_name = record_name(target.name);
    let record_path = target.dir.join(&record_name);
    let staged = target.stage(&record_name, &record_path)?;
    let write_error = |error| FileError::Write {
        path: record_path.clone(),
        error,
    };
    staged
        .file()
        .write_all_at(&record.to_bytes(), 0)
        .map_err(write_error)?;
    let written = Written::nothing().then(staged, record_path.clone(), true);
    let written = put_header(target, input, meta, &found, record.current, written)?;
    Ok((dropped, written))
}

/// What a file to rotate holds: the header to rotate from, and where its payload starts.
struct State {
    /// The header to rotate from: the file's, or the one its record says it is being given.
    header: Header,
    /// The file's payload nonce.
    nonce: [u8; NONCE_SIZE],
    /// How long the header on the disk is: where the payload (its nonce first) starts.
    on_disk: u64,
    /// The file is not carrying its record's header: a rotation was interrupted.
    interrupted: bool,
    /// The header it was sealed with, and its rotations so far.
    original: Vec<u8>,
    rotations: Vec<Rotation>,
}

impl State {
    fn read(target: &Target<'_, '_>, input: &File) -> Result<State, FileError> {
        let record = read_record(target)?;
        let parsed = parse_head(input);
        match (record, parsed) {
            (Some(record), Ok((header, nonce))) if nonce == record.nonce => {
                let on_disk = header.to_bytes().len() as u64;
                let interrupted = header.to_bytes() != record.current.as_slice();
                State::from_record(record, on_disk, interrupted)
            }
            // Torn by a power loss while its new header was being written in place: the
            // nonce is where the record's header ends.
            (Some(record), Err(_)) if nonce_at(input, record.current.len() as u64, &record) => {
                let on_disk = record.current.len() as u64;
                State::from_record(record, on_disk, true)
            }
            // No record, or one left by another file of that name: rotate from the file.
            (_, Ok((header, nonce))) => Ok(State {
                on_disk: header.to_bytes().len() as u64,
                original: header.to_bytes().to_vec(),
                header,
                nonce,
                interrupted: false,
                rotations: Vec::new(),
            }),
            // `SealedFile` reads binary files only.
            (_, Err(DecryptError::InvalidArmor(_))) => Err(FileError::Rotate(RotateError::Armored)),
            (_, Err(e)) => Err(FileError::Decrypt(e)),
        }
    }

    fn from_record(record: Record, on_disk: u64, interrupted: bool) -> Result<State, FileError> {
        let malformed = |_| {
            let error = MalformedRecord("its current header does not parse");
            FileError::Rotate(RotateError::Record(error))
        };
        let (header, _) = Header::parse(&record.current).map_err(malformed)?;
        Ok(State {
            header,
            nonce: record.nonce,
            on_disk,
            interrupted,
            original: record.original,
            rotations: record.rotations,
        })
    }
}

/// The record beside the file, if there is one.
fn read_record(target: &Target<'_, '_>) -> Result<Option<Record>, FileError> {
    let file = match target.dir.open_file(&record_name(target.name), false) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FileError::Read(e)),
    };
    let meta = file.metadata().map_err(FileError::Read)?;
    if meta.len() > record::MAX_RECORD_SIZE as u64 || !meta.is_file() {
        let error = MalformedRecord("too large, or not a file");
        return Err(FileError::Rotate(RotateError::Record(error)));
    }
    let mut bytes = vec![0u8; meta.len() as usize];
    read_exact_at(&file, &mut bytes, 0).map_err(FileError::Read)?;
    Record::parse(&bytes)
        .map(Some)
        .map_err(|e| FileError::Rotate(RotateError::Record(e)))
}

/// The header at the start of `input` and the payload nonce after it.
fn parse_head(input: &File) -> Result<(Header, [u8; NONCE_SIZE]), DecryptError> {
    let sealed = SealedFile::new(input)?;
    let header_len = sealed.header().to_bytes().len();
    let nonce = sealed.head()[header_len..]
        .try_into()
        .map_err(|_| short_nonce())?;
    Ok((sealed.header().clone(), nonce))
}

/// Whether `record`'s nonce is in `input` at `at`.
fn nonce_at(input: &File, at: u64, record: &Record) -> bool {
    let mut nonce = [0u8; NONCE_SIZE];
    read_exact_at(input, &mut nonce, at).is_ok() && nonce == record.nonce
}

/// Gives `input` the header `header`, after what `written` holds: in place if it is as long
/// as the one on the disk, else as a new file of it and the payload, renamed over the old.
fn put_header<'o>(
    target: Target<'_, 'o>,
    input: &File,
    meta: &Metadata,
    found: &State,
    header: Vec<u8>,
    written: Written<'o>,
) -> Result<Written<'o>, FileError> {
    let path = target.path.to_path_buf();
    let write_error = |error| FileError::Write {
        path: path.clone(),
        error,
    };
    if header.len() as u64 == found.on_disk {
        let file = target.dir.open_file_rw(target.name).map_err(write_error)?;
        let same = FileId::of(&file).map_err(write_error)? == FileId::of_metadata(meta);
        if !same {
            return Err(FileError::Rotate(RotateError::Replaced));
        }
        return Ok(written.then_patch(file, 0, header, path));
    }
    let staged = target.stage(target.name, target.path)?;
    copy_with_header(input, meta, found.on_disk, &header, &staged).map_err(write_error)?;
    Ok(written.then(staged, path, true))
}

/// Fills `staged` with `header`, then `input`'s bytes from `from` on (its payload), with the
/// input's permissions and, where allowed, its owner.
fn copy_with_header(
    input: &File,
    meta: &Metadata,
    from: u64,
    header: &[u8],
    staged: &Staged<'_>,
) -> io::Result<()> {
    let out = staged.file();
    out.write_all_at(header, 0)?;
    let (mut at_in, mut at_out) = (from, header.len() as u64);
    let end = meta.len();
    while at_in < end {
        let want = (end - at_in).min(1 << 30) as usize;
        let copied =
            rustix::fs::copy_file_range(input, Some(&mut at_in), out, Some(&mut at_out), want)?;
        if copied == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was copied",
            ));
        }
    }
    out.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    // Root rotating others' files keeps them theirs; anyone else cannot, and need not.
    let _ = rustix::fs::fchown(
        out,
        Some(rustix::fs::Uid::from_raw(meta.uid())),
        Some(rustix::fs::Gid::from_raw(meta.gid())),
    );
    Ok(())
}

/// Where the rotation record of the sealed file at `sealed` is: `sealed` + [`SUFFIX`].
pub fn record_path(sealed: &Path) -> PathBuf {
    let mut path = sealed.as_os_str().to_os_string();
    path.push(SUFFIX);
    PathBuf::from(path)
}

/// The name of the record of the file `name`.
fn record_name(name: &OsStr) -> OsString {
    let mut record = name.to_os_string();
    record.push(SUFFIX);
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x25519;

    #[test]
    fn a_file_swapped_for_another_after_it_was_read_is_not_written_over() {
        let tmp = tempfile::tempdir().unwrap();
        let (old, new) = (x25519::Identity::generate(), x25519::Identity::generate());
        let [mine, theirs] = ["mine.age", "theirs.age"].map(|name| {
            let sealed = crate::encrypt(&[&old.to_public()], name.as_bytes()).unwrap();
            std::fs::write(tmp.path().join(name), &sealed).unwrap();
            sealed
        });
        let path = tmp.path().join("mine.age");
        let (dir, name) = Dir::open_parent(&path).unwrap();
        let input = dir.open_file(&name, false).unwrap();
        let meta = input.metadata().unwrap();
        // Read, and then another file takes its name (as an uploader can do in a directory
        // of theirs): the header made for the file read must not go over that one.
        std::fs::rename(tmp.path().join("theirs.age"), &path).unwrap();
        let target = Target {
            dir: &dir,
            name: &name,
            path: &path,
            force: true,
            temporaries: &(),
        };
        let keys = Keys {
            identities: &[&old],
            recipients: &[&new.to_public()],
            drop_bad_signatures: false,
        };
        let error = rotate(target, &input, &meta, keys).map(drop).unwrap_err();
        assert!(
            matches!(error, FileError::Rotate(RotateError::Replaced)),
            "{error}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), theirs);
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no record, no temporary file left");
        drop(mine);
    }
}
