//! Passphrases: from a file (`--passphrase-file`, for scripts) or asked on the terminal, never
//! echoed, never printed, zeroized when dropped.
//!
//! `unseal` asks only when it meets a passphrase (`scrypt`) stanza: [`Passphrase`] is an
//! identity that prompts the first time it is handed one, so a file sealed to a key never
//! prompts, and nothing is written before the passphrase has opened the file key.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use zeroize::Zeroizing;

use super::failure::{ExitCode, Failure};
use super::keyargs::warn_if_exposed;
use crate::error::DecryptError;
use crate::format::Stanza;
use crate::keys::recipient::{FileKey, Identity};
use crate::keys::scrypt;

/// Reads a passphrase file: its contents without one final line end. Warns (on stderr) if
/// others can read it.
pub fn from_file(program: &str, path: &Path) -> Result<Zeroizing<String>, Failure> {
    let text = fs::read(path).map_err(|e| {
        let why = super::keyargs::passphrase_file_error("--passphrase-file", path, &e);
        Failure::new(ExitCode::Io, why)
    })?;
    let text = Zeroizing::new(text);
    let text = text
        .strip_suffix(b"\n")
        .map(|t| t.strip_suffix(b"\r").unwrap_or(t))
        .unwrap_or(&text);
    let passphrase = std::str::from_utf8(text)
        .map_err(|_| Failure::usage("the passphrase file is not UTF-8 text").about(path))?;
    if passphrase.is_empty() {
        return Err(Failure::usage("the passphrase file is empty").about(path));
    }
    warn_if_exposed(program, path, "passphrase file");
    Ok(Zeroizing::new(passphrase.to_string()))
}

/// Asks for a new passphrase on the terminal, twice.
pub fn ask_new() -> Result<Zeroizing<String>, Failure> {
    let first = ask("Enter passphrase: ")?;
    if first.is_empty() {
        return Err(Failure::usage("empty passphrase"));
    }
    let second = ask("Confirm passphrase: ")?;
    if first != second {
        return Err(Failure::usage("the passphrases do not match"));
    }
    Ok(first)
}

/// Asks once, on the controlling terminal (not standard input, which may be the data).
fn ask(prompt: &str) -> Result<Zeroizing<String>, Failure> {
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| {
            let why = match e.raw_os_error() {
                Some(libc::ENXIO) | Some(libc::ENOTTY) => "no terminal".to_string(),
                _ => super::failure::describe_io(&e),
            };
            Failure::usage(format!("cannot ask for a passphrase: {why}"))
                .hint("use --passphrase-file FILE")
        })
}

/// A passphrase identity for `unseal`: from a file, or asked for when first needed.
pub struct Passphrase {
    source: Source,
    /// Whether a passphrase stanza was met (so "no match" means a wrong passphrase).
    met: AtomicBool,
}

enum Source {
    Given(scrypt::Identity),
    /// Asked on first use; `Err` holds why asking failed.
    Prompt(OnceLock<Result<scrypt::Identity, String>>),
}

impl Passphrase {
    /// A passphrase read from a file.
    pub fn given(passphrase: Zeroizing<String>) -> Passphrase {
        Passphrase {
            source: Source::Given(scrypt::Identity::new(passphrase)),
            met: AtomicBool::new(false),
        }
    }

    /// A passphrase asked on the terminal if a passphrase stanza turns up.
    pub fn prompt() -> Passphrase {
        Passphrase {
            source: Source::Prompt(OnceLock::new()),
            met: AtomicBool::new(false),
        }
    }

    /// What a "no key matches" failure really meant, if this identity was involved: a wrong
    /// passphrase, a terminal that could not be asked, or (for a prompt that was never needed)
    /// a file that wants a key.
    pub fn explain(&self, failure: Failure, input: &Path) -> Failure {
        if failure.code != super::ExitCode::NoMatch {
            return failure;
        }
        if let Source::Prompt(asked) = &self.source {
            match asked.get() {
                Some(Err(why)) => {
                    return Failure::usage(why.clone())
                        .about(input)
                        .hint("use --passphrase-file FILE")
                }
                None => {
                    return Failure::usage(
                        "no key given, and the file is not sealed with a passphrase",
                    )
                    .about(input)
                    .hint("use --key server.key")
                }
                Some(Ok(_)) => {}
            }
        }
        if self.met.load(Ordering::Relaxed) {
            Failure::new(super::ExitCode::NoMatch, "wrong passphrase").about(input)
        } else {
            failure
        }
    }
}

impl Identity for Passphrase {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>> {
        if stanza.kind != scrypt::STANZA_KIND {
            return None;
        }
        self.met.store(true, Ordering::Relaxed);
        let identity = match &self.source {
            Source::Given(identity) => identity,
            Source::Prompt(asked) => {
                let asked = asked.get_or_init(|| {
                    ask("Enter passphrase: ")
                        .map(scrypt::Identity::new)
                        .map_err(|f| f.message)
                });
                asked.as_ref().ok()?
            }
        };
        identity.unwrap_stanza(stanza)
    }
}
