//! Key files: identity files, recipients files and recipient strings.
//!
//! This is the registration point for key types: each line is handed to the type that
//! recognizes it. Both file formats follow age: one key per line, `#` comments and blank lines
//! ignored.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{shown, KeyError};
use crate::recipient::{Identity, Recipient};
use crate::x25519;

/// Parses one recipient: `age1...`.
pub fn parse_recipient(s: &str) -> Result<Box<dyn Recipient>, KeyError> {
    if s.starts_with("age1") {
        return Ok(Box::new(s.parse::<x25519::Recipient>()?));
    }
    Err(KeyError::InvalidRecipient(shown(s)))
}

/// Parses a recipients file: one recipient per line.
pub fn parse_recipients_file(text: &str) -> Result<Vec<Box<dyn Recipient>>, KeyError> {
    let recipients = key_lines(text)
        .map(|(line, value)| {
            parse_recipient(value).map_err(|_| KeyError::InvalidRecipientLine {
                line,
                value: shown(value),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if recipients.is_empty() {
        return Err(KeyError::Empty);
    }
    Ok(recipients)
}

/// Parses an identity file: one secret key per line.
pub fn parse_identity_file(text: &str) -> Result<Vec<Box<dyn Identity>>, KeyError> {
    Ok(parse_x25519_identities(text)?
        .into_iter()
        .map(|id| Box::new(id) as Box<dyn Identity>)
        .collect())
}

/// Parses an identity file that holds X25519 keys only (what `seal-keygen` writes).
pub fn parse_x25519_identities(text: &str) -> Result<Vec<x25519::Identity>, KeyError> {
    let identities = key_lines(text)
        .map(|(line, value)| {
            value
                .parse::<x25519::Identity>()
                .map_err(|_| KeyError::InvalidIdentity { line })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if identities.is_empty() {
        return Err(KeyError::Empty);
    }
    Ok(identities)
}

/// The lines of a key file that hold keys, with their 1-based numbers.
fn key_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .map(str::trim)
        .enumerate()
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(i, line)| (i + 1, line))
}

/// The text of an identity file for `identity`, in the layout `age-keygen` writes.
pub fn identity_file_text(identity: &x25519::Identity, created: &str) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "# created: {created}\n# public key: {}\n{}\n",
        identity.to_public(),
        identity.to_secret_string().as_str()
    ))
}

/// Writes `text` to a new file at `path`, readable by its owner only; never over an existing file.
pub fn write_new_private_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_files_skip_comments_and_blank_lines_and_name_bad_lines() {
        let a = x25519::Identity::generate();
        let b = x25519::Identity::generate();
        let text = format!(
            "{}\n  \n# another\n{}\n",
            identity_file_text(&a, "2026-01-01T00:00:00Z").as_str(),
            b.to_secret_string().as_str()
        );
        let ids = parse_x25519_identities(&text).unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[1].to_public(), b.to_public());

        let err = parse_identity_file(&format!("# x\n\n{}\nnope\n", a.to_secret_string().as_str()))
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "line 4: not a valid identity");
        assert!(matches!(
            parse_identity_file("# only comments\n"),
            Err(KeyError::Empty)
        ));
    }

    #[test]
    fn recipients_files_name_the_bad_line() {
        let r = x25519::Identity::generate().to_public();
        assert_eq!(
            parse_recipients_file(&format!("# team\n{r}\n\n{r}\n"))
                .unwrap()
                .len(),
            2
        );
        let err = parse_recipients_file(&format!("{r}\nage1bogus\n"))
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "line 2: invalid recipient \"age1bogus\"");
        assert!(parse_recipient("ssh-foo AAAA").is_err());

        let secret = x25519::Identity::generate().to_secret_string();
        let err = parse_recipients_file(&secret).err().unwrap().to_string();
        assert!(
            !err.contains("AGE-SECRET") && err.contains("not shown"),
            "{err}"
        );
        let err = parse_recipient(&secret.to_lowercase())
            .err()
            .unwrap()
            .to_string();
        assert!(!err.to_uppercase().contains("AGE-SECRET"), "{err}");
    }
}
