//! Turning `--to`, `-r`, `-R` and `--key` arguments into keys, with the file named in errors.

use std::fs;
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::failure::Failure;
use crate::error::KeyError;
use crate::keys;
use crate::recipient::{Identity, Recipient};

/// Where the passphrase of a protected OpenSSH key comes from. Without either flag it is
/// asked on the terminal, when there is one.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct PassphraseFlags {
    /// Read the passphrase of protected OpenSSH keys from the first line of this file
    /// (for unattended servers; keep it 0600).
    #[arg(long, value_name = "FILE", conflicts_with = "key_passphrase_env")]
    pub key_passphrase_file: Option<PathBuf>,

    /// Read the passphrase of protected OpenSSH keys from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub key_passphrase_env: Option<String>,
}

impl PassphraseFlags {
    /// The passphrase, for the key at `path` (named in the terminal prompt).
    pub fn get(&self, path: &Path) -> Result<Zeroizing<String>, KeyError> {
        if let Some(file) = &self.key_passphrase_file {
            let text = Zeroizing::new(fs::read_to_string(file).map_err(|e| {
                let why = super::failure::describe_io(&e);
                KeyError::PassphraseUnavailable(format!("{}: {why}", file.display()))
            })?);
            let line = text.lines().next().unwrap_or("");
            return Ok(Zeroizing::new(line.to_string()));
        }
        if let Some(var) = &self.key_passphrase_env {
            return std::env::var(var).map(Zeroizing::new).map_err(|_| {
                KeyError::PassphraseUnavailable(format!(
                    "environment variable {var} is not set (or not UTF-8)"
                ))
            });
        }
        if !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal() {
            return Err(KeyError::PassphraseNeeded);
        }
        let prompt = format!("Passphrase for {}: ", path.display());
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|_| KeyError::PassphraseNeeded)
    }

    /// Whether a flag names a passphrase.
    pub fn given(&self) -> bool {
        self.key_passphrase_file.is_some() || self.key_passphrase_env.is_some()
    }
}

/// A `--to` value that is a recipient itself rather than a file naming recipients.
fn is_literal(value: &str) -> bool {
    value.starts_with("age1") || value.starts_with("ssh-rsa ") || value.starts_with("ssh-ed25519 ")
}

/// Recipients from `--to` (a recipients file, or a literal `age1...` or `ssh-...` key that
/// names no file), `-r` (literals) and `-R` (files).
pub fn recipients(
    to: &[String],
    literals: &[String],
    files: &[PathBuf],
) -> Result<Vec<Box<dyn Recipient>>, Failure> {
    let mut out = Vec::new();
    for value in to {
        if is_literal(value) && !Path::new(value).exists() {
            out.push(keys::parse_recipient(value)?);
        } else {
            out.extend(recipients_file(Path::new(value))?);
        }
    }
    for value in literals {
        out.push(keys::parse_recipient(value)?);
    }
    for path in files {
        out.extend(recipients_file(path)?);
    }
    if out.is_empty() {
        return Err(Failure::usage("no recipients given").hint("use --to server.pub"));
    }
    // Refused here, before any output exists (the library refuses it too).
    let refs: Vec<&dyn Recipient> = out.iter().map(|r| r.as_ref()).collect();
    crate::recipient::check_compatible(&refs)?;
    Ok(out)
}

/// A key file's text. Binary files are in no supported format.
fn read_key_text(path: &Path, formats: &'static str) -> Result<Zeroizing<String>, Failure> {
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| Failure::io(path, &e))?);
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_string())),
        Err(_) => Err(Failure::from(KeyError::UnknownFormat(formats)).about(path)),
    }
}

fn recipients_file(path: &Path) -> Result<Vec<Box<dyn Recipient>>, Failure> {
    let text = read_key_text(path, keys::RECIPIENT_FORMATS)?;
    let recipients = keys::parse_recipients_file(&text).map_err(|e| {
        let private = text.contains("AGE-SECRET-KEY-") || text.contains("PRIVATE KEY-----");
        let failure = Failure::from(e).about(path);
        if private {
            failure.hint("this is a private key: give --to the public key file (.pub)")
        } else {
            failure
        }
    })?;
    Ok(recipients)
}

/// Identities from every `--key` file (none is fine: a passphrase may open the file). Warns
/// (on stderr) about key files others can read.
pub fn identities(
    program: &str,
    paths: &[PathBuf],
    passphrase: &PassphraseFlags,
) -> Result<Vec<Box<dyn Identity>>, Failure> {
    let mut out = Vec::new();
    for path in paths {
        out.extend(identity_file(program, path, passphrase)?);
    }
    Ok(out)
}

/// The identities of one key file, for `--key`.
pub fn identity_file(
    program: &str,
    path: &Path,
    passphrase: &PassphraseFlags,
) -> Result<Vec<Box<dyn Identity>>, Failure> {
    let text = read_key_text(path, keys::IDENTITY_FORMATS)?;
    let mut ask = || passphrase.get(path);
    let parsed = keys::parse_identity_file_with(&text, &mut ask).map_err(|e| {
        let needed = matches!(e, KeyError::PassphraseNeeded);
        let failure = Failure::from(e).about(path);
        let public = text.trim_start().starts_with("age1")
            || text.trim_start().starts_with("ssh-")
            || text.contains("PUBLIC KEY-----");
        if public {
            failure.hint("this is a public key: --key needs the private key file")
        } else if needed {
            failure.hint("use --key-passphrase-file FILE or --key-passphrase-env VAR")
        } else {
            failure
        }
    })?;
    warn_if_exposed(program, path, "private key");
    Ok(parsed)
}

/// Warns (on stderr) when a secret file (`what`: "private key", "passphrase file") is readable
/// by group or others.
pub fn warn_if_exposed(program: &str, path: &Path, what: &str) {
    if let Ok(meta) = fs::metadata(path) {
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            say!(
                "{program}: warning: {}: {what} is readable by group or others; run chmod 600",
                path.display()
            );
        }
    }
}
