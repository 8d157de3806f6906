//! Who sent a file: its detached signature, checked against an allowed-signers list while
//! the file decrypts.
//!
//! A check has three steps, so that hashing the sealed bytes (the one part that needs all of
//! them) overlaps decryption instead of preceding it:
//!
//! 1. [`Policy::begin`], before the file is read: parses the signature, checks that it is a
//!    seal signature and that the allowed-signers list accepts its key now, and picks the
//!    hash (SHA-256 or SHA-512) to feed the file to ([`Check::hasher`]).
//! 2. [`Check::bind`], once the file key is unwrapped and so the header MAC checked: the
//!    header must name the signature's key as the signer (see [`crate::signing::sshsig`] for why).
//!    A file that fails here, or in step 1, is refused before any plaintext exists.
//! 3. [`Check::finish`], with the digest of every byte of the sealed file, hashed alongside
//!    decryption from the very copies that are decrypted ([`crate::OpenPayload::decrypt`],
//!    [`HashingReader`]), so a file rewritten meanwhile cannot pass the bytes the sender
//!    signed to the hash and others to the decryption: the signature itself. The caller
//!    keeps the plaintext back (a temporary file, not renamed into place) until it passes.
//!
//! A file whose server key was rotated ([`crate::rotate`]) no longer carries the header its
//! sender signed; its record (`NAME.age.rotated`) keeps it. Given the record, step 2 binds
//! the signer named in that original header, once its MAC checks under the file key the
//! current header wraps (so both wrap the same key), and step 3 hashes it in place of the
//! current header ([`SealedHash`]).
//!
//! With [`Policy::require`], an unsigned file and any failed check are refusals. Without it
//! the verdict is only reported: unseal opens the file either way.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::format::{Header, Stanza};
use crate::rotate::{MalformedRecord, Record};
use crate::signing::allowed_signers::{AllowedSigners, Refusal};
use crate::signing::sshsig::SigningKey;
use crate::signing::sshsig::{bound_signer, Digest, Hasher, Signature, SignatureError, SignerKey};

/// The extension of a detached signature beside its sealed file: `FILE.age.sig`.
pub const SIGNATURE_SUFFIX: &str = ".sig";

/// Whom to accept as a sender, and whether a sender is required.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The allowed signers.
    pub allowed: AllowedSigners,
    /// Refuse files that are unsigned, or whose signature is bad or by a signer the list
    /// does not accept.
    pub require: bool,
    /// The time the list's validity windows are checked at.
    pub now: SystemTime,
}

/// A sender that checked out: the signature is good, and the list accepts its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// The principals of the list's line that accepts the key, as written there.
    pub principals: Vec<String>,
    /// The key that signed.
    pub key: SignerKey,
}

/// Why a file's sender is not accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// There is no signature (and one is required).
    #[error("not signed (no {0} beside it)")]
    Unsigned(String),
    /// The signature does not parse, is not a seal signature, is not bound to this file's
    /// header, or does not match the file.
    #[error("{0}")]
    Signature(SignatureError),
    /// The signature is bound and well-formed, but the list does not accept its key.
    #[error("{0}")]
    NotAllowed(Refusal),
    /// The file's rotation record (`NAME.age.rotated`) is unreadable.
    #[error("{0}")]
    Record(MalformedRecord),
    /// The file carries the header its rotation record names, but the record's original
    /// header (the one the sender signed) does not wrap the same file key.
    #[error("its rotation record's original header is not this file's: the record was altered or belongs to another file")]
    ForeignOriginal,
}

/// What the check found about a file's sender, when it did not stop the file.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by an allowed signer.
    Signed(Sender),
    /// No signature (none was required).
    Unsigned,
    /// A signature that was not accepted (none was required, so the file was opened).
    Rejected(Rejection),
}

/// What is known about a file's sender before the sealed bytes are hashed.
#[derive(Debug)]
pub enum Pending {
    /// The file has no signature, and none is required.
    Unsigned,
    /// The signature passed every check but the one over the file's bytes.
    Check(Box<Check>),
}

/// A signature that passed the checks of [`Policy::begin`].
pub struct Check {
    signature: Signature,
    principals: Vec<String>,
    /// An empty hasher of the signature's hash, copied for each use.
    hasher: Hasher,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("signer", &self.signature.signer())
            .field("principals", &self.principals)
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// Checks what can be checked before the file is read: `signature` is the text of the
    /// detached signature (`None`: there is none; `signature_name` says where it was looked
    /// for, for the message).
    pub fn begin(
        &self,
        signature: Option<&[u8]>,
        signature_name: &str,
    ) -> Result<Pending, Rejection> {
        let Some(text) = signature else {
            return match self.require {
                true => Err(Rejection::Unsigned(signature_name.to_string())),
                false => Ok(Pending::Unsigned),
            };
        };
        let signature = Signature::from_pem(text).map_err(Rejection::Signature)?;
        let hasher = signature.hasher().map_err(Rejection::Signature)?;
        let allowed = self
            .allowed
            .check(&signature.signer(), self.now)
            .map_err(Rejection::NotAllowed)?;
        Ok(Pending::Check(Box::new(Check {
            signature,
            principals: allowed.principals,
            hasher,
        })))
    }
}

impl Check {
    /// A hasher to feed every byte of the sealed file to, in order (as stored: armored if it
    /// is armored), of the hash the signature was made over.
    pub fn hasher(&self) -> Hasher {
        self.hasher.clone()
    }

    /// Checks that the file's header names the signature's key as the signer. `stanzas`
    /// must come from a header whose MAC has been checked (a file whose key was unwrapped).
    pub fn bind(&self, stanzas: &[Stanza]) -> Result<(), Rejection> {
        let signed = self.signature.signer().fingerprint();
        match bound_signer(stanzas).map_err(Rejection::Signature)? {
            None => Err(Rejection::Signature(SignatureError::Unbound)),
            Some(named) if named != signed => {
                Err(Rejection::Signature(SignatureError::WrongSigner {
                    signed,
                    named: named.to_string(),
                }))
            }
            Some(_) => Ok(()),
        }
    }

    /// Checks the signature over `digest`, the hash of every byte of the sealed file, fed to
    /// [`Check::hasher`].
    pub fn finish(self, digest: &Digest) -> Result<Sender, Rejection> {
        self.signature
            .verify(digest)
            .map_err(Rejection::Signature)?;
        Ok(Sender {
            principals: self.principals,
            key: self.signature.signer(),
        })
    }
}

/// The check of one file under a policy, from its signature to its last byte: each step
/// fails only with a refusal, when a signature is required; otherwise whatever is found
/// ends up in the [`Verdict`] of [`FileCheck::finish`].
#[derive(Debug)]
pub struct FileCheck {
    state: State,
    require: bool,
    /// The file's rotation record, if it has one: the header it was sealed with, and the
    /// one it carries.
    rotation: Option<Rotation>,
    /// [`FileCheck::bind`] found the file rotated, and bound its original header.
    bound_rotated: bool,
}

/// What a signature check takes from a rotated file's record.
#[derive(Debug, Clone)]
struct Rotation {
    original: Header,
    current: Vec<u8>,
}

impl Rotation {
    fn parse(record: &[u8]) -> Result<Rotation, MalformedRecord> {
        let record = Record::parse(record)?;
        let (original, _) = Header::parse(&record.original)
            .map_err(|_| MalformedRecord("its original header does not parse"))?;
        let current = record.current;
        Ok(Rotation { original, current })
    }
}

/// Where a [`FileCheck`] stands: a signature still to check over the bytes, or decided.
#[derive(Debug)]
enum State {
    Checking(Box<Check>),
    Decided(Verdict),
}

impl Policy {
    /// [`Policy::begin`] for one file, and the hash to feed its bytes to if it is signed.
    /// `record`: the text of its rotation record (`NAME.age.rotated`, [`crate::rotate`]) if
    /// it has one ([`read_record`]), so that a rotated file is checked against the header
    /// its sender signed.
    pub fn check_file(
        &self,
        signature: Option<&[u8]>,
        signature_name: &str,
        record: Option<&[u8]>,
    ) -> Result<(FileCheck, Option<SealedHash>), Rejection> {
        let mut state = match self.begin(signature, signature_name) {
            Ok(Pending::Check(check)) => State::Checking(check),
            Ok(Pending::Unsigned) => State::Decided(Verdict::Unsigned),
            Err(rejection) => State::Decided(decide(self.require, rejection)?),
        };
        let mut rotation = None;
        if let (State::Checking(_), Some(record)) = (&state, record) {
            match Rotation::parse(record) {
                Ok(parsed) => rotation = Some(parsed),
                Err(malformed) => {
                    state = State::Decided(decide(self.require, Rejection::Record(malformed))?);
                }
            }
        }
        let hasher = match &state {
            State::Checking(check) => Some(SealedHash {
                hasher: check.hasher(),
                pending: rotation.clone(),
                head: Vec::new(),
                rotated: false,
            }),
            State::Decided(_) => None,
        };
        let check = FileCheck {
            state,
            require: self.require,
            rotation,
            bound_rotated: false,
        };
        Ok((check, hasher))
    }
}

/// The hash a signature is checked over, fed a sealed file's bytes in order as they are
/// read. A rotated file's sender signed the header the file was sealed with, which its
/// record keeps: when the file begins with the header the record says it carries, those
/// bytes are hashed as the original header instead. The rest (the payload) is the file's.
#[derive(Clone)]
pub struct SealedHash {
    hasher: Hasher,
    /// The rotation, until the file's first bytes show whether it applies.
    pending: Option<Rotation>,
    /// The file's first bytes, held until then.
    head: Vec<u8>,
    /// The file's first bytes were its record's current header.
    rotated: bool,
}

impl SealedHash {
    /// Feeds the next bytes of the sealed file.
    pub fn update(&mut self, mut bytes: &[u8]) {
        if let Some(rotation) = &self.pending {
            let take = (rotation.current.len() - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.head.len() < rotation.current.len() {
                return;
            }
            self.settle();
        }
        self.hasher.update(bytes);
    }

    /// Decides on the bytes held: the current header, hashed as the original, or not.
    fn settle(&mut self) {
        if let Some(rotation) = self.pending.take() {
            self.rotated = self.head == rotation.current;
            let head = match self.rotated {
                true => rotation.original.to_bytes(),
                false => &self.head,
            };
            self.hasher.update(head);
            self.head = Vec::new();
        }
    }

    /// The digest, and whether the file's header was taken for its original.
    fn finish(mut self) -> (Digest, bool) {
        self.settle();
        (self.hasher.finish(), self.rotated)
    }
}

impl FileCheck {
    /// Whether plaintext must be held back until [`FileCheck::finish`] passes.
    pub fn required(&self) -> bool {
        self.require
    }

    /// [`Check::bind`], once the file key is unwrapped: `header` is the file's, its MAC
    /// checked, and `same_key` says whether another header wraps the same file key
    /// ([`crate::OpenPayload::authenticates`]). A rotated file (one that carries the header
    /// its record names) is bound by its original header, which must wrap that key.
    pub fn bind(
        &mut self,
        header: &Header,
        same_key: &dyn Fn(&Header) -> bool,
    ) -> Result<(), Rejection> {
        let State::Checking(check) = &self.state else {
            return Ok(());
        };
        let bound = match &self.rotation {
            Some(rotation) if header.to_bytes() == rotation.current => {
                self.bound_rotated = true;
                match same_key(&rotation.original) {
                    true => check.bind(&rotation.original.stanzas),
                    false => Err(Rejection::ForeignOriginal),
                }
            }
            _ => check.bind(&header.stanzas),
        };
        if let Err(rejection) = bound {
            self.state = State::Decided(decide(self.require, rejection)?);
        }
        Ok(())
    }

    /// [`Check::finish`], once every byte of the file went through `hasher`.
    pub fn finish(self, hasher: Option<SealedHash>) -> Result<Verdict, Rejection> {
        let require = self.require;
        let check = match self.state {
            State::Decided(verdict) => return Ok(verdict),
            State::Checking(check) => check,
        };
        // A signed file whose bytes were not hashed has not been checked, and neither has
        // one hashed as rotated that was not bound as rotated, or the reverse.
        let checked = match hasher.map(SealedHash::finish) {
            Some((digest, rotated)) if rotated == self.bound_rotated => check.finish(&digest),
            _ => Err(Rejection::Signature(SignatureError::Invalid)),
        };
        match checked {
            Ok(sender) => Ok(Verdict::Signed(sender)),
            Err(rejection) => decide(require, rejection),
        }
    }
}

/// A rejection: the refusal when a signature is required, else only the verdict.
fn decide(require: bool, rejection: Rejection) -> Result<Verdict, Rejection> {
    match require {
        true => Err(rejection),
        false => Ok(Verdict::Rejected(rejection)),
    }
}

/// Signs the sealed file open as `file` (all of it, as it is now, read through a map) with
/// `key`: what `seal --sign-with` writes to `FILE.age.sig`. The file must be opened for
/// reading.
pub fn sign_file(key: &SigningKey, file: &File) -> io::Result<Signature> {
    let mut hasher = Hasher::new();
    hash_from(file, 0, &mut hasher)?;
    key.sign(&hasher.finish()).map_err(io::Error::other)
}

/// Checks `signature` (the text of a detached signature) for a sealed file on its own, with
/// no allowed-signers list (whom to accept is the opener's question): it is well formed, the
/// header the file was sealed with (`original`, its MAC checked) names its key as the
/// signer, and it verifies over that header followed by `file`'s bytes from `payload_at` on.
/// What a rotation checks before it replaces the header a signature covers.
pub(crate) fn check_unlisted(
    signature: &[u8],
    original: &Header,
    file: &File,
    payload_at: u64,
) -> Result<(), Rejection> {
    let signature = Signature::from_pem(signature).map_err(Rejection::Signature)?;
    let mut hasher = signature.hasher().map_err(Rejection::Signature)?;
    hasher.update(original.to_bytes());
    let read = hash_from(file, payload_at, &mut hasher);
    read.map_err(|_| Rejection::Signature(SignatureError::Invalid))?;
    let digest = hasher.finish();
    let verified = signature.verify_bound(&digest, &original.stanzas);
    verified.map_err(Rejection::Signature)
}

/// Feeds `hasher` the bytes of `file` from `at` to its end.
fn hash_from(file: &File, at: u64, hasher: &mut Hasher) -> io::Result<()> {
    let mut reader = crate::engine::chunks::ReadAt::new(file, at);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Where the detached signature of the sealed file at `sealed` is: `sealed` + `.sig`.
pub fn signature_path(sealed: &Path) -> PathBuf {
    let mut name = OsString::from(sealed.as_os_str());
    name.push(SIGNATURE_SUFFIX);
    PathBuf::from(name)
}

/// The largest signature file read: an SSHSIG by an 8192-bit RSA key is under 3 KiB.
const MAX_SIGNATURE_LEN: u64 = 64 << 10;

/// Reads the signature file at `path`; `None` if there is none. A FIFO or device there does
/// not hang the caller, and neither does a huge file: both are errors.
pub fn read_signature(path: &Path) -> io::Result<Option<Vec<u8>>> {
    read_companion(path, MAX_SIGNATURE_LEN)
}

/// Reads the rotation record at `path` ([`crate::rotate::record_path`]), as
/// [`read_signature`] reads a signature; `None` if there is none.
pub fn read_record(path: &Path) -> io::Result<Option<Vec<u8>>> {
    read_companion(path, crate::rotate::record::MAX_RECORD_SIZE as u64)
}

/// Reads the small file at `path`, at most `max` bytes of a regular file.
fn read_companion(path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut text = Vec::new();
    file.take(max + 1).read_to_end(&mut text)?;
    if text.len() as u64 > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "too large"));
    }
    Ok(Some(text))
}

/// A reader that hashes every byte read through it: for sealed bytes that arrive as a
/// stream.
pub struct HashingReader<'a, R> {
    inner: R,
    hasher: Option<&'a mut SealedHash>,
}

impl<'a, R: Read> HashingReader<'a, R> {
    /// Reads from `inner`, feeding `hasher` if there is one.
    pub fn new(inner: R, hasher: Option<&'a mut SealedHash>) -> Self {
        HashingReader { inner, hasher }
    }
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::sshsig::{binding_stanza, SigningKey};

    fn policy(list: &str, require: bool) -> Policy {
        Policy {
            allowed: AllowedSigners::parse(list).unwrap(),
            require,
            now: SystemTime::now(),
        }
    }

    fn begin(policy: &Policy, signature: &str) -> Result<Check, Rejection> {
        match policy.begin(Some(signature.as_bytes()), "x.sig")? {
            Pending::Check(check) => Ok(*check),
            Pending::Unsigned => panic!("signed file taken for unsigned"),
        }
    }

    #[test]
    fn a_bound_allowed_signature_checks_out_over_the_hashed_bytes_only() {
        let alice = SigningKey::generate_ed25519("alice");
        let list = format!("alice,a@example {}\n", alice.public_key());
        let stanzas = [binding_stanza(&alice.public_key())];
        let sealed = b"sealed bytes".as_slice();
        let pem = alice.sign(&Digest::of(sealed)).unwrap().to_pem();

        let check = begin(&policy(&list, true), &pem).unwrap();
        check.bind(&stanzas).unwrap();
        let mut hasher = check.hasher();
        hasher.update(sealed);
        let sender = check.finish(&hasher.finish()).unwrap();
        assert_eq!(sender.principals, ["alice", "a@example"]);
        assert_eq!(sender.key, alice.public_key());

        // The same signature over bytes that differ by one: refused.
        let check = begin(&policy(&list, true), &pem).unwrap();
        let mut hasher = check.hasher();
        hasher.update(b"sealed byteS");
        assert_eq!(
            check.finish(&hasher.finish()),
            Err(Rejection::Signature(SignatureError::Invalid))
        );
    }

    #[test]
    fn unsigned_is_refused_only_when_required() {
        let list = "";
        assert!(matches!(
            policy(list, false).begin(None, "f.age.sig"),
            Ok(Pending::Unsigned)
        ));
        assert_eq!(
            policy(list, true).begin(None, "f.age.sig").unwrap_err(),
            Rejection::Unsigned("f.age.sig".into())
        );
    }

    #[test]
    fn unknown_unbound_and_re_signed_are_refused_before_hashing() {
        let (alice, mallory) = (
            SigningKey::generate_ed25519("alice"),
            SigningKey::generate_ed25519("mallory"),
        );
        let list = format!(
            "alice {}\nmallory {}\n",
            alice.public_key(),
            mallory.public_key()
        );
        let by_mallory = mallory.sign(&Digest::of(b"sealed")).unwrap().to_pem();
        let check = begin(&policy(&list, false), &by_mallory).unwrap();

        // Re-signed: Mallory is allowed, but the header names Alice.
        let alices_header = [binding_stanza(&alice.public_key())];
        assert!(matches!(
            check.bind(&alices_header),
            Err(Rejection::Signature(SignatureError::WrongSigner { .. }))
        ));
        // A header that names nobody.
        assert_eq!(
            check.bind(&[]),
            Err(Rejection::Signature(SignatureError::Unbound))
        );
        // Not in the list.
        let only_alice = format!("alice {}\n", alice.public_key());
        assert!(matches!(
            begin(&policy(&only_alice, true), &by_mallory),
            Err(Rejection::NotAllowed(Refusal::UnknownSigner(_)))
        ));
        // Not a signature at all.
        assert_eq!(
            begin(&policy(&list, true), "junk").unwrap_err(),
            Rejection::Signature(SignatureError::Malformed)
        );
    }

    #[test]
    fn a_rotated_files_current_header_is_hashed_as_its_original_in_pieces_of_any_size() {
        let rotation = Rotation {
            original: Header::new(Vec::new(), |_| [1; 32]),
            current: Header::new(Vec::new(), |_| [2; 32]).to_bytes().to_vec(),
        };
        let hash = |rotation: Option<&Rotation>, file: &[u8], piece: usize| {
            let mut hash = SealedHash {
                hasher: Hasher::new(),
                pending: rotation.cloned(),
                head: Vec::new(),
                rotated: false,
            };
            file.chunks(piece).for_each(|bytes| hash.update(bytes));
            hash.finish()
        };
        let payload = b"nonce and chunks".as_slice();
        let rotated = [rotation.current.as_slice(), payload].concat();
        let signed = [rotation.original.to_bytes(), payload].concat();
        for piece in [1, 7, rotated.len()] {
            assert_eq!(
                hash(Some(&rotation), &rotated, piece),
                (Digest::of(&signed), true)
            );
            // A file that does not carry the record's header is hashed as it is, whether it
            // is longer or shorter than that header.
            for file in [&signed, &payload.to_vec()] {
                assert_eq!(
                    hash(Some(&rotation), file, piece),
                    (Digest::of(file), false)
                );
            }
        }
    }
}
