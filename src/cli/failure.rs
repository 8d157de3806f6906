//! How a command fails: one message line, maybe a hint, and a documented exit code.

use std::io;
use std::path::Path;

use crate::error::{DecryptError, EncryptError, KeyError};

/// The exit codes of `seal`, `unseal` and `seal-keygen` (documented in `doc/manual.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// 1: reading input or writing output failed, or the output exists already.
    Io = 1,
    /// 2: bad command line, or a key or recipient that does not parse.
    Usage = 2,
    /// 3: none of the keys opens the file, the passphrase is wrong, or a plugin failed.
    NoMatch = 3,
    /// 4: not an age file, bad ASCII armor, or a header that is malformed, of an unsupported
    /// version, or asks for a passphrase work factor above the limit.
    Header = 4,
    /// 5: the header MAC is wrong: the header was modified.
    HeaderMac = 5,
    /// 6: the payload is corrupt, truncated, or has trailing data.
    Payload = 6,
    /// 7: batch mode: some files failed (each named on stderr and in `--json`); the
    /// others were processed.
    Batch = 7,
    /// 8: `--require-signature`: the file is unsigned, its signer is not in the allowed
    /// signers list (or not now, or not for seal), or its signature is bad or re-signed; no
    /// plaintext was left.
    Signature = 8,
    /// 130: interrupted by a signal; nothing partial was left behind.
    Interrupted = 130,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}

/// A failed command: what to print and how to exit.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: ExitCode,
    /// The message, without the `program: error:` prefix.
    pub message: String,
    /// An optional hint line.
    pub hint: Option<String>,
}

impl Failure {
    /// A failure with a message.
    pub fn new(code: ExitCode, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// A usage failure.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(ExitCode::Usage, message)
    }

    /// Adds a hint line.
    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    /// Prefixes the message with the file it is about, its name escaped.
    pub fn about(mut self, path: &Path) -> Failure {
        self.message = format!("{}: {}", crate::shown::path(path), self.message);
        self
    }

    /// An I/O failure on `path`.
    pub fn io(path: &Path, e: &io::Error) -> Failure {
        Failure::new(ExitCode::Io, describe_io(e)).about(path)
    }

    pub(crate) fn print(&self, program: &str) {
        say!("{program}: error: {}", self.message);
        if let Some(hint) = &self.hint {
            say!("{program}: hint: {hint}");
        }
    }
}

/// An I/O error in words, without Rust's "(os error N)" suffix.
pub fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::AlreadyExists => "already exists".into(),
        io::ErrorKind::StorageFull => "no space left on device".into(),
        io::ErrorKind::IsADirectory => "is a directory".into(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_lowercase(),
                None => text,
            }
        }
    }
}

impl From<DecryptError> for Failure {
    fn from(e: DecryptError) -> Failure {
        Failure::from(&e)
    }
}

impl From<&DecryptError> for Failure {
    fn from(e: &DecryptError) -> Failure {
        let code = match e {
            DecryptError::NotAgeFile
            | DecryptError::InvalidArmor(_)
            | DecryptError::UnsupportedVersion(_)
            | DecryptError::InvalidHeader(_) => ExitCode::Header,
            DecryptError::NoMatch { .. } | DecryptError::Plugin(_) => ExitCode::NoMatch,
            DecryptError::HeaderMac => ExitCode::HeaderMac,
            DecryptError::PayloadCorrupt { .. }
            | DecryptError::Truncated
            | DecryptError::TrailingData => ExitCode::Payload,
            DecryptError::Io(e) => return Failure::new(ExitCode::Io, describe_io(e)),
        };
        Failure::new(code, e.to_string())
    }
}

impl From<EncryptError> for Failure {
    fn from(e: EncryptError) -> Failure {
        match e {
            EncryptError::NoRecipients | EncryptError::PassphraseNotAlone => {
                Failure::usage(e.to_string())
            }
            EncryptError::IncompatibleRecipients => Failure::usage(e.to_string())
                .hint("seal to the age1pq1... keys only, or to the classical keys only"),
            EncryptError::Io(e) => Failure::new(ExitCode::Io, describe_io(&e)),
            EncryptError::Plugin(e) => Failure::new(ExitCode::Io, e.to_string()),
        }
    }
}

impl From<KeyError> for Failure {
    fn from(e: KeyError) -> Failure {
        match e {
            KeyError::Io(e) => Failure::new(ExitCode::Io, describe_io(&e)),
            other => Failure::usage(other.to_string()),
        }
    }
}
