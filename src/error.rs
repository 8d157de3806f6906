//! Typed errors, one enum per direction. Each variant is one way a file can fail, so callers
//! (and the CLI's exit codes) can tell the outcomes apart. No variant ever carries key material.
//! The enums are `#[non_exhaustive]`: later versions may tell more ways apart.

use std::io;

use crate::format::armor::ArmorError;

/// Why a sealed file could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The input does not start like an age file at all.
    #[error("not an age file")]
    NotAgeFile,
    /// The input is ASCII-armored, but the armor is malformed (see [`crate::format::armor`]); or it
    /// is armored where only the binary format is read ([`crate::SealedSlice`],
    /// [`crate::SealedFile`]).
    #[error("invalid armor: {0}")]
    InvalidArmor(ArmorError),
    /// An age file of a version this crate does not know.
    #[error("unsupported age format version {0:?}")]
    UnsupportedVersion(String),
    /// The header is malformed, or a stanza addressed to one of our keys is.
    #[error("invalid header: {0}")]
    InvalidHeader(String),
    /// None of the identities could unwrap the file key.
    #[error("no key matches (tried {tried})")]
    NoMatch {
        /// How many identities were tried.
        tried: usize,
    },
    /// A file key was unwrapped, but the header MAC does not verify under it.
    #[error("header MAC is wrong: the header was modified")]
    HeaderMac,
    /// A payload chunk failed to authenticate (0-based chunk index).
    #[error("payload corrupt at chunk {chunk}")]
    PayloadCorrupt {
        /// Index of the first chunk that failed, counting from 0.
        chunk: u64,
    },
    /// The payload ends before its final chunk.
    #[error("truncated: the payload ends before its final chunk")]
    Truncated,
    /// Bytes follow the final chunk of the payload.
    #[error("trailing data after the end of the payload")]
    TrailingData,
    /// A plugin identity's plugin failed ([`crate::keys::plugin`]), and no other key opened
    /// the file.
    #[error(transparent)]
    Plugin(crate::keys::plugin::PluginError),
    /// Reading the input (or writing the output) failed.
    #[error(transparent)]
    Io(io::Error),
}

/// An I/O error, unless it is the armor decoder reporting malformed armor.
impl From<io::Error> for DecryptError {
    fn from(e: io::Error) -> Self {
        match ArmorError::of(&e) {
            Some(armor) => armor.into(),
            None => DecryptError::Io(e),
        }
    }
}

impl From<ArmorError> for DecryptError {
    fn from(e: ArmorError) -> Self {
        DecryptError::InvalidArmor(e)
    }
}

impl DecryptError {
    pub(crate) fn header(reason: impl Into<String>) -> Self {
        DecryptError::InvalidHeader(reason.into())
    }
}

/// Why a file could not be sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// No recipients were given.
    #[error("no recipients given")]
    NoRecipients,
    /// Recipients that may not share a file: a post-quantum key with a classical one (their
    /// [labels](crate::Recipient::labels) differ).
    #[error("incompatible recipients: post-quantum keys cannot be mixed with classical keys")]
    IncompatibleRecipients,
    /// A recipient that must be alone (a passphrase: see
    /// [`must_be_alone`](crate::Recipient::must_be_alone)) was given company: other
    /// recipients, or stanzas beside its own.
    #[error("a passphrase cannot be combined with other recipients")]
    PassphraseNotAlone,
    /// A plugin recipient's plugin failed to wrap the file key ([`crate::keys::plugin`]).
    #[error(transparent)]
    Plugin(crate::keys::plugin::PluginError),
    /// Reading the input or writing the output failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Why a stream could not be sealed or opened on every core: the side that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// Reading the input failed.
    #[error("read error: {0}")]
    Read(io::Error),
    /// Writing the output failed.
    #[error("write error: {0}")]
    Write(io::Error),
    /// The input is not a sealed file that opens with the given keys.
    #[error(transparent)]
    Decrypt(DecryptError),
}

/// Why a key, recipient or key file could not be parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A recipient string that is not a valid recipient. Holds the text as shown in messages
    /// (escaped and shortened): a private key given by mistake is never repeated.
    #[error("invalid recipient \"{0}\"")]
    InvalidRecipient(String),
    /// A line of an identity file that is not a valid identity. The line itself is never
    /// repeated: it may be a secret.
    #[error("line {line}: not a valid identity")]
    InvalidIdentity {
        /// 1-based line number.
        line: usize,
    },
    /// A secret (an age secret key, a plugin identity, a private key) where a recipient
    /// belongs. Names its kind only, and the line of a file if known.
    #[error("{}this is a {kind}, not a recipient", line.map_or(String::new(), |n| format!("line {n}: ")))]
    SecretNotRecipient {
        /// What the secret is, such as "secret key (AGE-SECRET-KEY-1...)".
        kind: &'static str,
        /// The 1-based line of the file it is on, if it came from a file.
        line: Option<usize>,
    },
    /// A line of a recipients file that is not a valid recipient.
    #[error("line {line}: invalid recipient \"{value}\"")]
    InvalidRecipientLine {
        /// 1-based line number.
        line: usize,
        /// The offending text as shown in messages (never a private key).
        value: String,
    },
    /// A file with no keys in it.
    #[error("no keys found")]
    Empty,
    /// A key in a format this crate knows, that cannot be used: too small, of an unsupported
    /// type, damaged. Never repeats key material.
    #[error("{0}")]
    Unusable(String),
    /// A file in none of the key formats this crate reads; names the accepted ones.
    #[error("unknown key format; accepted: {0}")]
    UnknownFormat(&'static str),
    /// A passphrase-protected key that the passphrase does not open.
    #[error("wrong passphrase (or a damaged key file)")]
    WrongPassphrase,
    /// A passphrase-protected key, and no passphrase to open it with.
    #[error("the key is passphrase-protected, and no passphrase was given")]
    PassphraseNeeded,
    /// The passphrase could not be read from where it was to come from: what a
    /// [`Passphrase`](crate::keys::ssh::Passphrase) callback returns with its own cause (a file that
    /// cannot be read, a variable that is not set).
    #[error("cannot read the key passphrase: {0}")]
    PassphraseUnavailable(Box<dyn std::error::Error + Send + Sync>),
    /// Reading the key file failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A stream error where only one kind of I/O is told apart: reading and writing are both
/// [`DecryptError::Io`].
impl From<StreamError> for DecryptError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Decrypt(e) => e,
            StreamError::Read(e) | StreamError::Write(e) => DecryptError::Io(e),
        }
    }
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> Self {
        DecryptError::from(e).into()
    }
}

impl From<DecryptError> for io::Error {
    fn from(e: DecryptError) -> Self {
        match e {
            DecryptError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}
