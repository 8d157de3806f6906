//! One file, sealed or opened whole or not at all: the engine under the single-file commands,
//! batch mode and what comes next.
//!
//! `seal` and `open` take an `Input` (an open file, or a stream), an `Output` (a file
//! staged in its directory, or a stream) and the keys, and choose the way through by
//! themselves:
//!
//! - a regular file up to `IN_MEMORY` (1 MiB) is read whole, processed in memory and written
//!   with one call: a few system calls and one key wrap or unwrap;
//! - a larger regular binary file is processed a run of chunks at a time on every thread of
//!   the current rayon pool, each run read once into private memory
//!   ([`crate::SealedFile`], [`Encryptor::seal_file`]);
//! - anything else (a stream, a FIFO, ASCII armor, or `positioned: false`) is streamed.
//!
//! A file output appears whole or not at all (`staging`): written to a temporary file in
//! its directory, and committed (`commit`: synced, renamed into place, its directory
//! synced) only once it is complete and, when opening under a sender policy, once its
//! signature checks out; the engine returns it written (`Written`), and the caller commits
//! it alone or with others. A file signed by a client key gets
//! its `.sig` renamed into place first, so the sealed file never appears without it. The
//! key is unwrapped before the output is created: a file for another key leaves no trace.
//!
//! [`seal_path`] and [`open_path`] are the library's way in for one file named by path, as
//! `seal FILE` and `unseal FILE.age` do it:
//!
//! ```
//! use seal::file::{open_path, seal_path, Options};
//!
//! let dir = tempfile::tempdir()?;
//! let (plain, sealed, opened) =
//!     (dir.path().join("report.csv"), dir.path().join("report.csv.age"), dir.path().join("out.csv"));
//! std::fs::write(&plain, b"a,b\n1,2\n")?;
//! let server = seal::x25519::Identity::generate();
//! seal_path(&plain, &sealed, &[&server.to_public()], &Options::new())?;
//! open_path(&sealed, &opened, &[&server], &Options::new())?;
//! assert_eq!(std::fs::read(&opened)?, b"a,b\n1,2\n");
//! // An existing output is kept unless `force`.
//! assert!(open_path(&sealed, &opened, &[&server], &Options::new()).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::engine::{Hash, Progress};
use crate::error::{DecryptError, EncryptError, StreamError};
use crate::format::armor::{self, ArmoredWriter};
use crate::format::Header;
use crate::keys::recipient::{Identity, Recipient};
use crate::rotate::record_path;
use crate::signing::sender::{read_record, read_signature, sign_file, signature_path, Policy};
use crate::signing::sender::{FileCheck, HashingReader, SealedHash, Verdict, SIGNATURE_SUFFIX};
use crate::signing::sshsig::{Digest, Hasher, SigningKey};
use crate::{Decryptor, Encryptor, MappedFile, SealedFile, SealedSlice};

mod commit;
mod error;
pub(crate) mod staging;

pub(crate) use commit::{place, Placed, Written};

pub use error::FileError;
use staging::Staged;
pub(crate) use staging::{is_partial_name, Dir, Dirs};
pub use staging::{FileId, Temporaries};

/// Files up to this size are read into memory whole rather than a run of chunks at a time.
pub(crate) const IN_MEMORY: u64 = 1 << 20;

/// How [`seal_path`] and [`open_path`] go about one file.
#[non_exhaustive]
pub struct Options<'a> {
    /// Replace an existing output.
    pub force: bool,
    /// Read a large regular input with positioned reads on every thread of the current rayon
    /// pool (the fastest way); `false` streams it.
    pub positioned: bool,
    /// Sealing: sign the sealed file with this client key (`OUTPUT.sig` beside it, put in
    /// place first) and name it in the header, as `seal --sign-with` does.
    pub signer: Option<&'a SigningKey>,
    /// Opening: check the input's signature (`INPUT.sig`) against this policy while it
    /// decrypts; the output appears only if the check passes.
    pub senders: Option<&'a Policy>,
    /// Hears of each temporary file as it appears and goes (e.g. to remove it on a signal).
    pub temporaries: &'a dyn Temporaries,
    /// Hears the input bytes done, from any thread.
    pub progress: Progress<'a>,
}

impl Options<'_> {
    /// No force, positioned reads, no signature either way, nobody listening.
    pub fn new() -> Options<'static> {
        Options {
            force: false,
            positioned: true,
            signer: None,
            senders: None,
            temporaries: &(),
            progress: &|_| {},
        }
    }
}

/// Seals the file `input` to `recipients` into the new file `output` (replaced only with
/// [`Options::force`]), which appears whole or not at all; a temporary file that an earlier
/// run into `output` left behind (killed, or a power loss) is removed first.
pub fn seal_path(
    input: &Path,
    output: &Path,
    recipients: &[&dyn Recipient],
    options: &Options<'_>,
) -> Result<(), FileError> {
    let encryptor = encryptor(recipients, options.signer)?;
    let (file, meta) = open_input(input)?;
    let dir = output_dir(&meta, output, options.force)?;
    let sealing = Sealing {
        encryptor,
        signer: options.signer,
        armor: false,
    };
    let out = file_output(&dir, output, options);
    let input = Input::File(&file, &meta);
    let written = seal(input, out, sealing, options.positioned, options.progress)?;
    written.commit()
}

/// Opens the sealed file `input` (binary or armored) with whichever of `identities` unwraps
/// its key, into the new file `output` (replaced only with [`Options::force`]), which appears
/// whole or not at all; a temporary file that an earlier run into `output` left behind is
/// removed first. Under [`Options::senders`], returns who sent it.
pub fn open_path(
    input: &Path,
    output: &Path,
    identities: &[&dyn Identity],
    options: &Options<'_>,
) -> Result<Option<Verdict>, FileError> {
    let sender = sender_check(input, options.senders)?;
    let (file, meta) = open_input(input)?;
    let dir = output_dir(&meta, output, options.force)?;
    let opening = Opening { identities, sender };
    let out = file_output(&dir, output, options);
    let input = Input::File(&file, &meta);
    let (verdict, written) = open(input, out, opening, options.positioned, options.progress)?;
    written.commit()?;
    Ok(verdict)
}

/// The encryptor of one file: to `recipients`, naming `signer` in the header if there is one.
pub(crate) fn encryptor(
    recipients: &[&dyn Recipient],
    signer: Option<&SigningKey>,
) -> Result<Encryptor, FileError> {
    let encryptor = match signer {
        None => Encryptor::new(recipients),
        Some(key) => Encryptor::new_signed_by(recipients, &key.public_key()),
    };
    encryptor.map_err(|e| match e {
        EncryptError::IncompatibleRecipients => FileError::IncompatibleRecipients(e),
        _ => FileError::NoRecipients,
    })
}

/// The sender check of the sealed file at `input` under `policy`, begun: its signature
/// (`INPUT.sig`) is found and looked up before the input is read, so that an unsigned or
/// unknown sender is refused before any decryption.
pub(crate) fn sender_check(
    input: &Path,
    policy: Option<&Policy>,
) -> Result<Option<(FileCheck, Option<SealedHash>)>, FileError> {
    let Some(policy) = policy else {
        return Ok(None);
    };
    let path = signature_path(input);
    let text = read_signature(&path).map_err(FileError::ReadSignature)?;
    let record = match text {
        Some(_) => read_record(&record_path(input)).map_err(FileError::ReadRecord)?,
        None => None,
    };
    let name = path.display().to_string();
    let check = policy.check_file(text.as_deref(), &name, record.as_deref());
    Ok(Some(check.map_err(FileError::Sender)?))
}

/// Opens an input named by path, which must not be a directory (`NotAFile`).
pub(crate) fn open_input(input: &Path) -> Result<(File, Metadata), FileError> {
    let file = File::open(input).map_err(FileError::Read)?;
    let meta = file.metadata().map_err(FileError::Read)?;
    if meta.is_dir() {
        return Err(FileError::NotAFile);
    }
    Ok((file, meta))
}

/// The directory of `output`, ready ([`prepare_output`]), once `output` is known not to be the
/// input (`input`: its metadata, from `fstat` of the file opened) itself.
fn output_dir(input: &Metadata, output: &Path, force: bool) -> Result<Dir, FileError> {
    let names_input = std::fs::metadata(output)
        .is_ok_and(|meta| FileId::of_metadata(&meta) == FileId::of_metadata(input));
    if names_input {
        return Err(FileError::OutputIsInput);
    }
    let (dir, _, _) = prepare_output(output, force).map_err(|error| FileError::Write {
        path: output.to_path_buf(),
        error,
    })?;
    Ok(dir)
}

/// Makes ready to write the file `output`: refuses an existing one unless `force`
/// (`AlreadyExists`; a race is caught again at the rename), opens its directory
/// (`InvalidInput` for a path without a file name), and removes the temporary files that an
/// earlier run into `output` left behind (killed, or a power loss). That clean-up is best
/// effort: a directory that cannot be listed may still be written. Returns the directory,
/// the output's name in it, and the temporary files removed.
pub(crate) fn prepare_output(
    output: &Path,
    force: bool,
) -> io::Result<(Dir, OsString, Vec<PathBuf>)> {
    if !force && output.symlink_metadata().is_ok() {
        return Err(io::ErrorKind::AlreadyExists.into());
    }
    let (dir, name) = Dir::open_parent(output)?;
    let removed = staging::remove_stale_of(&dir, &name).unwrap_or_default();
    Ok((dir, name, removed))
}

fn file_output<'a>(dir: &'a Dir, output: &'a Path, options: &Options<'a>) -> Output<'a, 'a> {
    Output::File(Target {
        dir,
        name: output.file_name().unwrap_or_default(),
        path: output,
        force: options.force,
        temporaries: options.temporaries,
    })
}

/// What to seal or open.
pub(crate) enum Input<'a> {
    /// An open file and its metadata (from `fstat` of that file): a regular file takes the
    /// fastest way; anything else (a FIFO, a device) is streamed.
    File(&'a File, &'a Metadata),
    /// A stream, such as standard input.
    Stream(&'a mut (dyn Read + Send)),
}

/// A file output: the file `name` in the directory `dir`, written under a temporary name
/// there and renamed into place once whole; an existing file is replaced only with `force`.
/// `temporaries` hears of each temporary file (e.g. to remove it on a signal).
#[derive(Clone, Copy)]
pub(crate) struct Target<'a, 'o> {
    /// The output's directory, open.
    pub dir: &'a Dir,
    /// The output's name in `dir`.
    pub name: &'a OsStr,
    /// The output's path, for errors.
    pub path: &'a Path,
    /// Replace an existing file of that name.
    pub force: bool,
    /// Hears when a temporary file appears and goes.
    pub temporaries: &'o dyn Temporaries,
}

impl<'o> Target<'_, 'o> {
    /// A temporary file in the output's directory for the file `name` there (the output,
    /// or its signature, whose path is `path`).
    pub(crate) fn stage(&self, name: &OsStr, path: &Path) -> Result<Staged<'o>, FileError> {
        Staged::create(self.dir, name, self.temporaries).map_err(|error| FileError::Write {
            path: path.to_path_buf(),
            error,
        })
    }
}

/// Where the output goes.
pub(crate) enum Output<'a, 'o> {
    /// A file, staged.
    File(Target<'a, 'o>),
    /// A stream, written as the output is made: when opening, only authenticated plaintext
    /// reaches it, but a file that turns out corrupt has sent it the part before the fault.
    /// `name` names it in errors.
    Stream {
        /// Where the bytes go.
        writer: &'a mut (dyn Write + Send),
        /// What to call it in errors.
        name: &'a Path,
    },
}

/// What to seal with.
pub(crate) struct Sealing<'a> {
    /// The header and file key of this one file (an encryptor seals one file).
    pub encryptor: Encryptor,
    /// Sign the sealed file with this client key (`NAME.sig` beside it). Its public key must
    /// be the one `encryptor` names as the signer ([`Encryptor::new_signed_by`]). Needs an
    /// [`Output::File`].
    pub signer: Option<&'a SigningKey>,
    /// Write the ASCII armor (always streamed).
    pub armor: bool,
}

/// What to open with.
pub(crate) struct Opening<'a> {
    /// Whichever of these unwraps the file key.
    pub identities: &'a [&'a dyn Identity],
    /// The sender check, begun ([`crate::signing::sender::Policy::check_file`]) before the input is
    /// read, and the hasher of its signature if it needs one: the output is renamed into
    /// place only if the check passes.
    pub sender: Option<(FileCheck, Option<SealedHash>)>,
}

/// Seals `input` to `output`; `tick` hears the input bytes done. `positioned: false` streams
/// a regular file too. A file output is returned written, to be committed ([`Written`]).
pub(crate) fn seal<'o>(
    input: Input<'_>,
    output: Output<'_, 'o>,
    sealing: Sealing<'_>,
    positioned: bool,
    tick: Progress<'_>,
) -> Result<Written<'o>, FileError> {
    let Sealing {
        encryptor,
        signer,
        armor,
    } = sealing;
    let mut out = Sink::new(output);
    if signer.is_some() && !out.is_file() {
        let error = io::Error::new(io::ErrorKind::InvalidInput, "a signature needs a file");
        return Err(out.write_error(error));
    }
    // A signature's hash, when it is computed alongside the sealing.
    let mut digest = None;
    match input {
        Input::File(file, meta) if meta.is_file() && !armor && meta.len() <= IN_MEMORY => {
            let plaintext = Zeroizing::new(read_all(file, meta.len())?);
            let sealed = encryptor.seal_slice(&plaintext);
            out.write_all(&sealed)?;
            digest = signer.map(|_| Digest::of(&sealed));
            tick(plaintext.len() as u64);
        }
        Input::File(file, meta) if meta.is_file() && !armor && positioned && out.is_file() => {
            let mut hasher = signer.map(|_| Hasher::new());
            let mut feed = hasher.as_mut().map(|h| |bytes: &[u8]| h.update(bytes));
            let hash = feed.as_mut().map(|f| f as Hash<'_>);
            let staged = out.stage()?;
            // SAFETY: a temporary file this process just created (mode 0600, exclusively,
            // locked), which nothing else writes, truncates or resizes while it is filled.
            #[allow(unsafe_code)]
            let mapped = unsafe { MappedFile::new(staged) };
            let result = encryptor.seal_file_mapped(file, mapped, hash, tick);
            out.outcome(result.map(drop))?;
            digest = hasher.map(Hasher::finish);
        }
        Input::File(file, _) => {
            seal_stream(encryptor, Counting { inner: file, tick }, &mut out, armor)?
        }
        Input::Stream(reader) => seal_stream(
            encryptor,
            Counting {
                inner: reader,
                tick,
            },
            &mut out,
            armor,
        )?,
    }
    match signer {
        Some(key) => out.finish_signed(key, digest),
        None => out.finish(),
    }
}

/// Seals a stream, armored if asked.
fn seal_stream(
    encryptor: Encryptor,
    input: impl Read + Send,
    out: &mut Sink<'_, '_>,
    armor: bool,
) -> Result<(), FileError> {
    let writer = out.writer()?;
    if !armor {
        let result = encryptor.seal_stream(input, writer);
        return out.outcome(result);
    }
    let mut armored = ArmoredWriter::new(writer);
    let result = encryptor.seal_stream(input, &mut armored);
    let finished = result.and_then(|()| armored.finish().map(drop).map_err(StreamError::Write));
    out.outcome(finished)
}

/// Opens `input` to `output`; `tick` hears the input bytes done. Under a sender check, the
/// output is returned only once the signature checks out, with its verdict. `positioned:
/// false` streams a regular file too. A file output is returned written, to be committed
/// ([`Written`]).
pub(crate) fn open<'o>(
    input: Input<'_>,
    output: Output<'_, 'o>,
    opening: Opening<'_>,
    positioned: bool,
    tick: Progress<'_>,
) -> Result<(Option<Verdict>, Written<'o>), FileError> {
    let Opening { identities, sender } = opening;
    let (mut check, mut hasher) = match sender {
        Some((check, hasher)) => (Some(check), hasher),
        None => (None, None),
    };
    let mut out = Sink::new(output);
    match input {
        Input::File(file, meta) if meta.is_file() && meta.len() <= IN_MEMORY => {
            let raw = read_all(file, meta.len())?;
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(&raw);
            }
            let decoded;
            let sealed = match armor::is_armored(&raw) {
                true => {
                    decoded = armor::decode(&raw).map_err(|e| read_error(e.into()))?;
                    &decoded
                }
                false => &raw,
            };
            let slice = SealedSlice::new(sealed).map_err(read_error)?;
            let payload = slice.unwrap(identities).map_err(read_error)?;
            bind(&mut check, slice.header(), &|h| payload.authenticates(h))?;
            let plaintext = Zeroizing::new(payload.decrypt_to_vec().map_err(read_error)?);
            out.write_all(&plaintext)?;
            tick(meta.len());
        }
        Input::File(file, meta)
            if meta.is_file()
                && positioned
                && !armor::is_armored_file(file).map_err(FileError::Read)? =>
        {
            let sealed = SealedFile::new(file).map_err(read_error)?;
            let payload = sealed.unwrap(identities).map_err(read_error)?;
            bind(&mut check, sealed.header(), &|h| payload.authenticates(h))?;
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(sealed.head());
            }
            let mut feed = hasher.as_mut().map(|h| |bytes: &[u8]| h.update(bytes));
            let hash = feed.as_mut().map(|f| f as Hash<'_>);
            let result = match &mut out {
                Sink::File(..) => {
                    let staged = out.stage()?;
                    // SAFETY: a temporary file this process just created (mode 0600,
                    // exclusively, locked), which nothing else writes, truncates or resizes
                    // while it is filled.
                    #[allow(unsafe_code)]
                    let mapped = unsafe { MappedFile::new(staged) };
                    payload.decrypt(crate::Output::Mapped(mapped), hash, tick)
                }
                Sink::Stream { writer, .. } => {
                    payload.decrypt(crate::Output::Writer(*writer), hash, tick)
                }
            };
            out.outcome(result.map(drop))?;
        }
        Input::File(file, _) => {
            let input = Counting { inner: file, tick };
            open_stream(input, &mut out, identities, &mut check, hasher.as_mut())?
        }
        Input::Stream(reader) => {
            let input = Counting {
                inner: reader,
                tick,
            };
            open_stream(input, &mut out, identities, &mut check, hasher.as_mut())?
        }
    }
    let verdict = match check {
        Some(check) => Some(check.finish(hasher).map_err(FileError::Sender)?),
        None => None,
    };
    Ok((verdict, out.finish()?))
}

/// Opens a stream, hashed as it is read.
fn open_stream(
    input: impl Read + Send,
    out: &mut Sink<'_, '_>,
    identities: &[&dyn Identity],
    check: &mut Option<FileCheck>,
    hasher: Option<&mut SealedHash>,
) -> Result<(), FileError> {
    let input = BufReader::new(HashingReader::new(input, hasher));
    let opened = Decryptor::new(input)
        .and_then(|d| d.open(identities))
        .map_err(read_error)?;
    bind(check, opened.header(), &|h| opened.authenticates(h))?;
    let result = opened.decrypt_to(out.writer()?);
    out.outcome(result)
}

/// The sender check's step once the header is authenticated, if there is a check.
fn bind(
    check: &mut Option<FileCheck>,
    header: &Header,
    same_key: &dyn Fn(&Header) -> bool,
) -> Result<(), FileError> {
    match check {
        Some(check) => check.bind(header, same_key).map_err(FileError::Sender),
        None => Ok(()),
    }
}

fn read_error(e: DecryptError) -> FileError {
    match e {
        DecryptError::Io(e) => FileError::Read(e),
        other => FileError::Decrypt(other),
    }
}

/// An [`Output`] as it is written: a file output's temporary file is made when the first
/// byte is ready to go in.
enum Sink<'a, 'o> {
    File(Target<'a, 'o>, Option<Staged<'o>>),
    Stream {
        writer: &'a mut (dyn Write + Send),
        name: &'a Path,
    },
}

impl<'a, 'o> Sink<'a, 'o> {
    fn new(output: Output<'a, 'o>) -> Sink<'a, 'o> {
        match output {
            Output::File(target) => Sink::File(target, None),
            Output::Stream { writer, name } => Sink::Stream { writer, name },
        }
    }

    fn is_file(&self) -> bool {
        matches!(self, Sink::File(..))
    }

    /// The output's path, for errors.
    fn path(&self) -> PathBuf {
        match self {
            Sink::File(target, _) => target.path.to_path_buf(),
            Sink::Stream { name, .. } => name.to_path_buf(),
        }
    }

    fn write_error(&self, error: io::Error) -> FileError {
        FileError::Write {
            path: self.path(),
            error,
        }
    }

    /// The temporary file of a file output, made now if it is not yet.
    fn stage(&mut self) -> Result<&File, FileError> {
        let Sink::File(target, staged) = self else {
            unreachable!("only file outputs are staged");
        };
        if staged.is_none() {
            *staged = Some(target.stage(target.name, target.path)?);
        }
        Ok(staged.as_ref().expect("made above").file())
    }

    /// Where to write: the temporary file, or the stream.
    fn writer(&mut self) -> Result<&mut (dyn Write + Send), FileError> {
        match self {
            Sink::File(_, Some(_)) => {}
            Sink::File(_, None) => {
                self.stage()?;
            }
            Sink::Stream { writer, .. } => return Ok(*writer),
        }
        match self {
            Sink::File(_, Some(staged)) => Ok(staged.writer()),
            _ => unreachable!("staged above"),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), FileError> {
        let result = self.writer()?.write_all(bytes);
        result.map_err(|e| self.write_error(e))
    }

    /// A stream's outcome, failures blamed on the side that failed.
    fn outcome(&self, result: Result<(), StreamError>) -> Result<(), FileError> {
        result.map_err(|e| match e {
            StreamError::Read(e) => FileError::Read(e),
            StreamError::Write(e) => self.write_error(e),
            StreamError::Decrypt(e) => read_error(e),
        })
    }

    /// A file output, written, to commit; a stream is flushed.
    fn finish(self) -> Result<Written<'o>, FileError> {
        match self {
            Sink::File(target, staged) => {
                let staged = match staged {
                    Some(staged) => staged,
                    // Nothing was written (an empty stream can still make an empty file).
                    None => target.stage(target.name, target.path)?,
                };
                let path = target.path.to_path_buf();
                Ok(Written::nothing().then(staged, path, target.force))
            }
            Sink::Stream { writer, name } => match writer.flush() {
                Ok(()) => Ok(Written::nothing()),
                Err(error) => Err(FileError::Write {
                    path: name.to_path_buf(),
                    error,
                }),
            },
        }
    }

    /// Signs the sealed file (over `digest` if it was hashed alongside the sealing, else
    /// reading it now): the file and its signature, written, to commit. The signature goes
    /// into place first, so that an existing one (without `force`) stops both, and the
    /// sealed file never appears without it.
    fn finish_signed(
        mut self,
        key: &SigningKey,
        digest: Option<Digest>,
    ) -> Result<Written<'o>, FileError> {
        let sealed_path = self.path();
        self.stage()?;
        let Sink::File(target, Some(staged)) = self else {
            unreachable!("staged above");
        };
        let signature = match digest {
            Some(digest) => key.sign(&digest).map_err(io::Error::other),
            None => sign_file(key, staged.file()),
        };
        let signature = signature.map_err(|error| FileError::Write {
            path: sealed_path.clone(),
            error,
        })?;
        let mut sig_name = target.name.to_os_string();
        sig_name.push(SIGNATURE_SUFFIX);
        let sig_path = signature_path(target.path);
        let mut sig = target.stage(&sig_name, &sig_path)?;
        let wrote = sig.writer().write_all(signature.to_pem().as_bytes());
        wrote.map_err(|error| FileError::Write {
            path: sig_path.clone(),
            error,
        })?;
        Ok(Written::nothing().then(sig, sig_path, target.force).then(
            staged,
            sealed_path,
            target.force,
        ))
    }
}

/// The input as it was opened, to remove once its output is safe: its directory (open), its
/// name there, and the identity of the file read (from `fstat` of the open file).
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// The directory the input is in.
    pub dir: Dir,
    /// The input's name in `dir`.
    pub name: OsString,
    /// The file that was opened and processed.
    pub id: FileId,
    /// Whether `name` may be a symbolic link to that file (it was opened through one).
    pub follow: bool,
}

/// Removes the input `source` once its output is committed (durable: see [`commit`]), so
/// that after a power loss either the source or the output survives. The name is removed
/// relative to the input's directory handle, and only if it still refers to the file that
/// was processed: one swapped in since (another file, a link, the output itself) is left,
/// and this fails. With `signature`, the source's checked signature (`NAME.sig`) goes with
/// it.
pub(crate) fn remove_source(source: &Source, signature: bool) -> io::Result<()> {
    source
        .dir
        .remove_if_same(&source.name, source.id, source.follow)?;
    if !signature {
        return Ok(());
    }
    let mut sig = source.name.clone();
    sig.push(SIGNATURE_SUFFIX);
    match source.dir.remove(&sig) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Reads a whole (small) file of `len` bytes, as it was when opened. Plain reads into a
/// buffer of that size and one more to see the end: `read_to_end` would ask the file for
/// its size and position again, two system calls per file.
fn read_all(mut file: &File, len: u64) -> Result<Vec<u8>, FileError> {
    let mut buf = vec![0u8; len as usize + 1];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FileError::Read(e)),
        }
    }
    buf.truncate(filled);
    if filled > len as usize {
        // It grew since: take the rest too.
        file.read_to_end(&mut buf).map_err(FileError::Read)?;
    }
    Ok(buf)
}

/// A reader that reports the bytes read through it.
struct Counting<'a, R> {
    inner: R,
    tick: Progress<'a>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.tick)(n as u64);
        Ok(n)
    }
}
