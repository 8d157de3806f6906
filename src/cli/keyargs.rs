//! Turning `--to`, `-r`, `-R` and `--key` arguments into keys, with the file named in errors.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use zeroize::Zeroizing;

use super::failure::Failure;
use crate::keys;
use crate::recipient::{Identity, Recipient};

/// Recipients from `--to` (a recipients file, or a literal `age1...` that names no file),
/// `-r` (literals) and `-R` (files).
pub fn recipients(
    to: &[String],
    literals: &[String],
    files: &[std::path::PathBuf],
) -> Result<Vec<Box<dyn Recipient>>, Failure> {
    let mut out = Vec::new();
    for value in to {
        if value.starts_with("age1") && !Path::new(value).exists() {
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

fn recipients_file(path: &Path) -> Result<Vec<Box<dyn Recipient>>, Failure> {
    let text = fs::read_to_string(path).map_err(|e| Failure::io(path, &e))?;
    let recipients = keys::parse_recipients_file(&text).map_err(|e| {
        let failure = Failure::from(e).about(path);
        if text.contains("AGE-SECRET-KEY-") {
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
    paths: &[std::path::PathBuf],
) -> Result<Vec<Box<dyn Identity>>, Failure> {
    let mut out = Vec::new();
    for path in paths {
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| Failure::io(path, &e))?);
        let parsed = keys::parse_identity_file(&text).map_err(|e| {
            let failure = Failure::from(e).about(path);
            if text.trim_start().starts_with("age1") {
                failure.hint("this is a public key: --key needs the private key file")
            } else {
                failure
            }
        })?;
        warn_if_exposed(program, path, "private key");
        out.extend(parsed);
    }
    Ok(out)
}

/// Warns (on stderr) when a secret file (`what`: "private key", "passphrase file") is readable
/// by group or others.
pub fn warn_if_exposed(program: &str, path: &Path, what: &str) {
    if let Ok(meta) = fs::metadata(path) {
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "{program}: warning: {}: {what} is readable by group or others; run chmod 600",
                path.display()
            );
        }
    }
}
