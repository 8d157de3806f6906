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
use crate::{pq, x25519};

const PQ_RECIPIENT_PREFIX: &str = "age1pq1";
const PQ_IDENTITY_PREFIX: &str = "AGE-SECRET-KEY-PQ-1";

/// Parses one recipient: `age1...`, or `age1pq1...` (post-quantum).
pub fn parse_recipient(s: &str) -> Result<Box<dyn Recipient>, KeyError> {
    if s.starts_with(PQ_RECIPIENT_PREFIX) {
        return Ok(Box::new(s.parse::<pq::Recipient>()?));
    }
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

/// Parses an identity file: one secret key per line, `AGE-SECRET-KEY-1...` or
/// `AGE-SECRET-KEY-PQ-1...` (post-quantum).
pub fn parse_identity_file(text: &str) -> Result<Vec<Box<dyn Identity>>, KeyError> {
    identity_lines(text, |value| {
        if value.starts_with(PQ_IDENTITY_PREFIX) {
            return Ok(Box::new(value.parse::<pq::Identity>()?) as Box<dyn Identity>);
        }
        Ok(Box::new(value.parse::<x25519::Identity>()?))
    })
}

/// The public key of each secret key in an identity file, as text (what `seal-keygen -y`
/// prints), for every key type `seal-keygen` makes.
pub fn public_keys_of_identity_file(text: &str) -> Result<Vec<String>, KeyError> {
    identity_lines(text, |value| {
        if value.starts_with(PQ_IDENTITY_PREFIX) {
            return Ok(value.parse::<pq::Identity>()?.to_public().to_string());
        }
        Ok(value.parse::<x25519::Identity>()?.to_public().to_string())
    })
}

/// Parses an identity file that holds X25519 keys only (what `seal-keygen` writes).
pub fn parse_x25519_identities(text: &str) -> Result<Vec<x25519::Identity>, KeyError> {
    identity_lines(text, |value| value.parse::<x25519::Identity>())
}

/// Each key line of an identity file through `parse`; a line that fails is named by its
/// number only (it may be a secret), and a file without keys is an error.
fn identity_lines<T>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, KeyError>,
) -> Result<Vec<T>, KeyError> {
    let identities = key_lines(text)
        .map(|(line, value)| parse(value).map_err(|_| KeyError::InvalidIdentity { line }))
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
    key_file_text(
        &identity.to_public().to_string(),
        &identity.to_secret_string(),
        created,
    )
}

/// The text of an identity file holding `secret`, whose public key is `public`, in the layout
/// `age-keygen` writes (any key type).
pub fn key_file_text(public: &str, secret: &str, created: &str) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "# created: {created}\n# public key: {public}\n{secret}\n"
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
    fn identity_files_mix_classical_and_post_quantum_keys() {
        let classic = x25519::Identity::generate();
        let pq = pq::Identity::generate();
        let text = format!(
            "{}{}",
            identity_file_text(&classic, "2026-01-01T00:00:00Z").as_str(),
            key_file_text(
                &pq.to_public().to_string(),
                &pq.to_secret_string(),
                "2026-01-01T00:00:00Z"
            )
            .as_str()
        );
        assert_eq!(parse_identity_file(&text).unwrap().len(), 2);
        assert_eq!(
            public_keys_of_identity_file(&text).unwrap(),
            [classic.to_public().to_string(), pq.to_public().to_string()]
        );
        // A damaged post-quantum key is named by its line, and never shown.
        let bad = format!(
            "{}\n{}X\n",
            classic.to_secret_string().as_str(),
            pq.to_secret_string().as_str()
        );
        let err = parse_identity_file(&bad).err().unwrap().to_string();
        assert_eq!(err, "line 2: not a valid identity");
        assert_eq!(
            public_keys_of_identity_file(&bad)
                .err()
                .unwrap()
                .to_string(),
            err
        );
        assert!(matches!(
            public_keys_of_identity_file("# nothing\n"),
            Err(KeyError::Empty)
        ));
    }

    #[test]
    fn post_quantum_recipients_parse_and_are_never_echoed_whole() {
        let pq = pq::Identity::generate().to_public().to_string();
        assert_eq!(parse_recipients_file(&format!("{pq}\n")).unwrap().len(), 1);
        assert!(parse_recipient(&pq).is_ok());
        let broken = format!("{}x", &pq[..pq.len() - 1]);
        let err = parse_recipient(&broken).err().unwrap().to_string();
        assert!(
            err.starts_with("invalid recipient \"age1pq1") && err.len() < 120,
            "{err}"
        );
        let err = parse_recipient(&pq::Identity::generate().to_secret_string().to_lowercase())
            .err()
            .unwrap()
            .to_string();
        assert!(!err.to_uppercase().contains("SECRET-KEY-PQ"), "{err}");
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
