//! Key files: identity files, recipients files and recipient strings.
//!
//! This is the registration point for key types: each file or line is handed to the type
//! that recognizes it, by content, never by file name. Line-based files follow age: one key
//! per line, `#` comments and blank lines ignored. PEM files hold one key each:
//!
//! | first line                            | what                                  |
//! |---------------------------------------|---------------------------------------|
//! | `AGE-SECRET-KEY-1...` lines           | age identities (X25519, `-PQ-1` too), |
//! |                                       | and plugins' (`AGE-PLUGIN-NAME-1...`) |
//! | `age1...`, `ssh-rsa`, `ssh-ed25519`   | recipients, one per line (`age1pq1`,  |
//! |                                       | `age1tag1`, `age1tagpq1`, a plugin's  |
//! |                                       | `age1NAME1`)                          |
//! | `-----BEGIN OPENSSH PRIVATE KEY-----` | OpenSSH RSA or Ed25519 key            |
//! | `-----BEGIN RSA PRIVATE KEY-----`     | PKCS#1 RSA key                        |
//! | `-----BEGIN PRIVATE KEY-----`         | PKCS#8 RSA key                        |
//! | `-----BEGIN PUBLIC KEY-----`          | SPKI RSA public key (also PKCS#1's)   |

// The two traits every key type implements, and the types: X25519, post-quantum (`pq`, over
// `xwing` and `hpke`), passphrases (`scrypt`), and SSH keys (`ssh` reads and writes their
// OpenSSH files; `ssh_wire` is their shared wire format). `keytext` is the Bech32 of age keys.
pub(crate) mod hpke;
pub(crate) mod keytext;
pub mod plugin;
pub mod pq;
pub mod recipient;
pub mod scrypt;
pub mod ssh;
pub mod ssh_ed25519;
pub mod ssh_rsa;
pub(crate) mod ssh_wire;
pub mod tag;
pub mod x25519;
pub(crate) mod xwing;

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::keys::recipient::{Identity, Recipient};
pub use crate::keys::ssh::Passphrase;
use crate::primitives::rsa;
use crate::shown;

const PQ_RECIPIENT_PREFIX: &str = "age1pq1";
const PQ_IDENTITY_PREFIX: &str = "AGE-SECRET-KEY-PQ-1";
const TAG_RECIPIENT_PREFIX: &str = "age1tag1";
const TAG_PQ_RECIPIENT_PREFIX: &str = "age1tagpq1";

/// The key formats `--key` reads, for the error about a file in none of them.
pub(crate) const IDENTITY_FORMATS: &str =
    "age identity files (AGE-SECRET-KEY-1...), OpenSSH private \
keys (RSA, Ed25519), PKCS#1 or PKCS#8 PEM RSA private keys";
/// The key formats `--to` reads, for the error about a file in none of them.
pub(crate) const RECIPIENT_FORMATS: &str =
    "age recipients (age1...), ssh-rsa and ssh-ed25519 public \
key lines, SPKI PEM RSA public keys";

/// A public key of any supported type.
#[derive(Clone)]
pub enum PublicKey {
    /// An age X25519 recipient, `age1...`.
    X25519(x25519::Recipient),
    /// A post-quantum recipient, `age1pq1...` (boxed: it is large).
    Pq(Box<pq::Recipient>),
    /// An `ssh-rsa` or `ssh-ed25519` key (from a line, a PEM file or a private key).
    Ssh(ssh::PublicKey),
    /// A P-256 key in hardware, `age1tag1...`, sealed to without a plugin.
    Tag(tag::Recipient),
    /// A hybrid post-quantum key in hardware, `age1tagpq1...` (boxed: it is large).
    TagPq(Box<tag::HybridRecipient>),
    /// A recipient served by a plugin, `age1NAME1...`.
    Plugin(plugin::Recipient),
}

impl PublicKey {
    /// The recipient this key seals to (a plugin's, run by the default [`plugin::Client`]).
    pub fn to_recipient(&self) -> Box<dyn Recipient> {
        self.to_recipient_with(&plugin::Client::default())
    }

    /// The recipient this key seals to, a plugin's run by `plugins`.
    pub fn to_recipient_with(&self, plugins: &plugin::Client) -> Box<dyn Recipient> {
        match self {
            PublicKey::X25519(r) => Box::new(r.clone()),
            PublicKey::Pq(r) => Box::new(pq::Recipient::clone(r)),
            PublicKey::Ssh(k) => k.to_recipient(),
            PublicKey::Tag(r) => Box::new(r.clone()),
            PublicKey::TagPq(r) => Box::new(tag::HybridRecipient::clone(r)),
            PublicKey::Plugin(r) => Box::new(r.clone().with_client(plugins)),
        }
    }

    /// The fingerprint line. For SSH keys, exactly what `ssh-keygen -l` prints:
    /// `256 SHA256:... comment (ED25519)`. For age keys, in the same shape:
    /// `SHA256:` and the unpadded base64 of SHA-256 of the recipient string (`age1...`, as
    /// ASCII, no newline), then the recipient and the type: `SHA256:... age1... (X25519)`;
    /// post-quantum keys the same, with the type `(MLKEM768-X25519)` and the recipient cut
    /// to its first 20 characters and `...` (it is some 2,000 characters long).
    pub fn fingerprint_line(&self) -> String {
        let age = |kind: &str| {
            let text = self.to_string();
            let shown = match text.get(..20) {
                Some(start) if text.len() > 80 => format!("{start}..."),
                _ => text.clone(),
            };
            format!("{} {shown} ({kind})", age_fingerprint(&text))
        };
        match self {
            PublicKey::X25519(_) => age("X25519"),
            PublicKey::Pq(_) => age("MLKEM768-X25519"),
            PublicKey::Tag(_) => age("P-256 TAG"),
            PublicKey::TagPq(_) => age("MLKEM768-P256 TAG"),
            PublicKey::Plugin(r) => age(&format!("plugin {}", r.plugin())),
            PublicKey::Ssh(k) => k.fingerprint_line(),
        }
    }

    /// The fingerprint alone, `SHA256:` and unpadded base64: of the key for SSH keys (as
    /// `ssh-keygen -l`), of the recipient string for age keys ([`Self::fingerprint_line`]).
    pub fn fingerprint(&self) -> String {
        match self {
            PublicKey::Ssh(k) => k.fingerprint(),
            _ => age_fingerprint(&self.to_string()),
        }
    }
}

/// `SHA256:` and the unpadded base64 of SHA-256 of an age recipient string.
fn age_fingerprint(recipient: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let hash = sha2::Sha256::digest(recipient.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash);
    format!("SHA256:{b64}")
}

/// `age1...`, or the OpenSSH line `ssh-ed25519 AAAA... comment`.
impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublicKey::X25519(r) => r.fmt(f),
            PublicKey::Pq(r) => r.fmt(f),
            PublicKey::Tag(r) => r.fmt(f),
            PublicKey::TagPq(r) => r.fmt(f),
            PublicKey::Plugin(r) => r.fmt(f),
            PublicKey::Ssh(k) => k.fmt(f),
        }
    }
}

/// A private key of any supported type.
pub enum PrivateKey {
    /// An age X25519 identity, `AGE-SECRET-KEY-1...`.
    X25519(x25519::Identity),
    /// A post-quantum identity, `AGE-SECRET-KEY-PQ-1...` (boxed: it is large).
    Pq(Box<pq::Identity>),
    /// An RSA or Ed25519 key from an OpenSSH or PEM file (boxed: an RSA key is large).
    Ssh(Box<ssh::PrivateKey>),
    /// An identity served by a plugin, `AGE-PLUGIN-NAME-1...`: the key is the plugin's.
    Plugin(plugin::Identity),
}

impl PrivateKey {
    /// The public half; an error for a plugin identity, whose public half only its plugin
    /// knows.
    pub fn to_public(&self) -> Result<PublicKey, KeyError> {
        Ok(match self {
            PrivateKey::X25519(id) => PublicKey::X25519(id.to_public()),
            PrivateKey::Pq(id) => PublicKey::Pq(Box::new(id.to_public())),
            PrivateKey::Ssh(k) => PublicKey::Ssh(k.to_public()),
            PrivateKey::Plugin(id) => {
                return Err(KeyError::Unusable(format!(
                    "a plugin identity: its recipient is known to its plugin only (see age-plugin-{} --help)",
                    id.plugin()
                )))
            }
        })
    }

    /// The identity that opens files sealed to this key (a plugin's, run by the default
    /// [`plugin::Client`]).
    pub fn into_identity(self) -> Box<dyn Identity> {
        self.into_identity_with(&plugin::Client::default())
    }

    /// The identity that opens files sealed to this key, a plugin's run by `plugins`.
    pub fn into_identity_with(self, plugins: &plugin::Client) -> Box<dyn Identity> {
        match self {
            PrivateKey::X25519(id) => Box::new(id),
            PrivateKey::Pq(id) => id,
            PrivateKey::Ssh(k) => k.into_identity(),
            PrivateKey::Plugin(id) => Box::new(id.with_client(plugins)),
        }
    }
}

/// What a key file holds.
pub enum KeyFile {
    /// Private keys (one, for a PEM or OpenSSH file).
    Private(Vec<PrivateKey>),
    /// Public keys.
    Public(Vec<PublicKey>),
}

/// Reads any supported key file, telling the format from its content. `passphrase` is asked
/// only for a passphrase-protected OpenSSH key.
pub fn parse_key_file(text: &str, passphrase: Passphrase<'_>) -> Result<KeyFile, KeyError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with("-----BEGIN ") {
        return parse_pem(trimmed, passphrase);
    }
    match key_lines(text).next() {
        None => Err(KeyError::Empty),
        Some((_, first))
            if first.starts_with("AGE-SECRET-KEY-") || first.starts_with("AGE-PLUGIN-") =>
        {
            let keys = identity_lines(text, |value| {
                if let Some(plugin) = plugin::Identity::parse(value) {
                    return Ok(PrivateKey::Plugin(plugin?));
                }
                if value.starts_with(PQ_IDENTITY_PREFIX) {
                    return Ok(PrivateKey::Pq(Box::new(value.parse()?)));
                }
                Ok(PrivateKey::X25519(value.parse()?))
            })?;
            Ok(KeyFile::Private(keys))
        }
        Some((_, first)) if looks_public(first) => {
            let keys = key_lines(text)
                .map(|(line, value)| {
                    parse_public(value).map_err(|e| match e {
                        KeyError::Unusable(m) => KeyError::Unusable(format!("line {line}: {m}")),
                        KeyError::SecretNotRecipient { kind, .. } => KeyError::SecretNotRecipient {
                            kind,
                            line: Some(line),
                        },
                        _ => KeyError::InvalidRecipientLine {
                            line,
                            value: shown::value(value),
                        },
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(KeyFile::Public(keys))
        }
        Some(_) => Err(KeyError::UnknownFormat(
            "age keys (AGE-SECRET-KEY-1..., age1...), OpenSSH keys (RSA, Ed25519), PEM RSA keys \
(PKCS#1, PKCS#8, SPKI)",
        )),
    }
}

/// What a key file holds, told from its PEM label or first key line without parsing it: for
/// a message about a key file given where another kind belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFileKind {
    /// Public keys: `age1...`, `ssh-...` lines, or a PEM public key.
    Public,
    /// age identities, `AGE-SECRET-KEY-1...`.
    AgeIdentity,
    /// An OpenSSH private key.
    OpenSsh,
    /// A PEM private key (PKCS#1, PKCS#8, encrypted or not).
    Pem,
}

impl fmt::Display for KeyFileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyFileKind::Public => "a public key",
            KeyFileKind::AgeIdentity => "an age identity",
            KeyFileKind::OpenSsh => "an OpenSSH private key",
            KeyFileKind::Pem => "a PEM private key",
        })
    }
}

impl KeyFileKind {
    /// The kind of the key file `text`; `None` for none of the formats here.
    pub fn of(text: &str) -> Option<KeyFileKind> {
        if let Some(rest) = text.trim_start().strip_prefix("-----BEGIN ") {
            let label = rest.lines().next()?.trim_end().strip_suffix("-----")?;
            return match label {
                "OPENSSH PRIVATE KEY" => Some(KeyFileKind::OpenSsh),
                _ if label.ends_with("PUBLIC KEY") => Some(KeyFileKind::Public),
                _ if label.ends_with("PRIVATE KEY") => Some(KeyFileKind::Pem),
                _ => None,
            };
        }
        match key_lines(text).next() {
            Some((_, first))
                if first.starts_with("AGE-SECRET-KEY-") || first.starts_with("AGE-PLUGIN-") =>
            {
                Some(KeyFileKind::AgeIdentity)
            }
            Some((_, first)) if looks_public(first) => Some(KeyFileKind::Public),
            _ => None,
        }
    }
}

fn looks_public(line: &str) -> bool {
    line.starts_with("age1") || line.starts_with("ssh-") || ssh::unsupported_line(line).is_some()
}

fn parse_pem(text: &str, passphrase: Passphrase<'_>) -> Result<KeyFile, KeyError> {
    let label = text
        .lines()
        .next()
        .and_then(|l| l.trim_end().strip_prefix("-----BEGIN "))
        .and_then(|l| l.strip_suffix("-----"))
        .unwrap_or("");
    if label == "OPENSSH PRIVATE KEY" {
        let key = ssh::PrivateKey::from_openssh(text, passphrase)?;
        return Ok(KeyFile::Private(vec![PrivateKey::Ssh(Box::new(key))]));
    }
    let unusable = |m: &str| KeyError::Unusable(m.to_string());
    if text.contains("Proc-Type: 4,ENCRYPTED") || label == "ENCRYPTED PRIVATE KEY" {
        return Err(unusable(
            "encrypted PEM keys are not supported: use an OpenSSH key with a passphrase \
(ssh-keygen -p -f KEY converts one), or an unencrypted PEM key",
        ));
    }
    let known = [
        "RSA PRIVATE KEY",
        "PRIVATE KEY",
        "PUBLIC KEY",
        "RSA PUBLIC KEY",
    ];
    if !known.contains(&label) {
        return Err(KeyError::UnknownFormat(
            "PEM files holding an OpenSSH private key, a PKCS#1 or PKCS#8 RSA private key, \
or an SPKI RSA public key",
        ));
    }
    let (_, der) = pem_rfc7468::decode_vec(text.trim_end().as_bytes())
        .map_err(|_| unusable(&format!("damaged PEM file ({label})")))?;
    let der = Zeroizing::new(der);
    let what = match label {
        "RSA PRIVATE KEY" => "PKCS#1 RSA private key",
        "PRIVATE KEY" => "PKCS#8 RSA private key",
        _ => "RSA public key",
    };
    let error = |e| ssh::rsa_key_error(e, what);
    match label {
        "RSA PRIVATE KEY" | "PRIVATE KEY" => {
            let key = if label == "PRIVATE KEY" {
                rsa::PrivateKey::from_pkcs8_der(&der)
            } else {
                rsa::PrivateKey::from_pkcs1_der(&der)
            }
            .map_err(error)?;
            Ok(KeyFile::Private(vec![PrivateKey::Ssh(Box::new(
                ssh::PrivateKey::rsa(key),
            ))]))
        }
        _ => {
            let key = rsa::PublicKey::from_der(&der).map_err(error)?;
            let key = ssh::PublicKey::rsa(ssh_rsa::Recipient::new(key), "");
            Ok(KeyFile::Public(vec![PublicKey::Ssh(key)]))
        }
    }
}

fn parse_public(s: &str) -> Result<PublicKey, KeyError> {
    if let Some(kind) = shown::secret_kind(s) {
        return Err(KeyError::SecretNotRecipient { kind, line: None });
    }
    // Bech32 may be written all in upper case (BIP 173), as a QR code or a shouting paste
    // does; mixed case is invalid, and stays so.
    let lower;
    let s = match s.starts_with("AGE1") && !s.bytes().any(|b| b.is_ascii_lowercase()) {
        true => {
            lower = s.to_ascii_lowercase();
            lower.as_str()
        }
        false => s,
    };
    if s.starts_with(PQ_RECIPIENT_PREFIX) {
        return Ok(PublicKey::Pq(Box::new(s.parse()?)));
    }
    if s.starts_with(TAG_RECIPIENT_PREFIX) {
        return Ok(PublicKey::Tag(s.parse()?));
    }
    if s.starts_with(TAG_PQ_RECIPIENT_PREFIX) {
        return Ok(PublicKey::TagPq(Box::new(s.parse()?)));
    }
    if let Some(plugin) = plugin::Recipient::parse(s) {
        return Ok(PublicKey::Plugin(plugin?));
    }
    if s.starts_with("age1") {
        return Ok(PublicKey::X25519(s.parse()?));
    }
    if s.starts_with("ssh-") || ssh::unsupported_line(s).is_some() {
        return Ok(PublicKey::Ssh(ssh::PublicKey::from_openssh(s)?));
    }
    Err(KeyError::InvalidRecipient(shown::value(s)))
}

/// Parses one recipient: `age1...` (or `AGE1...`, all upper case, as Bech32 allows), or an
/// OpenSSH `ssh-rsa`/`ssh-ed25519` public key line.
pub fn parse_recipient(s: &str) -> Result<Box<dyn Recipient>, KeyError> {
    parse_recipient_with(s, &plugin::Client::default())
}

/// [`parse_recipient`], a plugin's recipient run by `plugins`.
pub fn parse_recipient_with(
    s: &str,
    plugins: &plugin::Client,
) -> Result<Box<dyn Recipient>, KeyError> {
    parse_public(s).map(|k| k.to_recipient_with(plugins))
}

/// Parses a recipients file: one recipient per line, or one PEM RSA public key.
pub fn parse_recipients_file(text: &str) -> Result<Vec<Box<dyn Recipient>>, KeyError> {
    parse_recipients_file_with(text, &plugin::Client::default())
}

/// [`parse_recipients_file`], plugins' recipients run by `plugins`.
pub fn parse_recipients_file_with(
    text: &str,
    plugins: &plugin::Client,
) -> Result<Vec<Box<dyn Recipient>>, KeyError> {
    if let Some((line, first)) = key_lines(text).next() {
        // A secret on the first key line (an identity file) or a private key block: named
        // by its kind and line, never parsed further, never shown.
        let pem = first.starts_with("-----BEGIN ").then(|| text.trim_start());
        if let Some(kind) = shown::secret_kind(pem.unwrap_or(first)) {
            return Err(KeyError::SecretNotRecipient {
                kind,
                line: Some(line),
            });
        }
    }
    let mut no_passphrase = || Err(KeyError::PassphraseNeeded);
    match parse_key_file(text, &mut no_passphrase) {
        Ok(KeyFile::Public(keys)) => {
            Ok(keys.iter().map(|k| k.to_recipient_with(plugins)).collect())
        }
        Ok(KeyFile::Private(_)) | Err(KeyError::PassphraseNeeded) => {
            Err(KeyError::SecretNotRecipient {
                kind: "private key",
                line: None,
            })
        }
        Err(KeyError::UnknownFormat(_)) => Err(KeyError::UnknownFormat(RECIPIENT_FORMATS)),
        Err(e) => Err(e),
    }
}

/// Parses an identity file without passphrases: see [`parse_identity_file_with`].
pub fn parse_identity_file(text: &str) -> Result<Vec<Box<dyn Identity>>, KeyError> {
    parse_identity_file_with(text, &mut || Err(KeyError::PassphraseNeeded))
}

/// Parses an identity file: age identities, one per line, or one OpenSSH or PEM private key.
pub fn parse_identity_file_with(
    text: &str,
    passphrase: Passphrase<'_>,
) -> Result<Vec<Box<dyn Identity>>, KeyError> {
    let keys = parse_private_keys(text, passphrase)?;
    Ok(keys.into_iter().map(PrivateKey::into_identity).collect())
}

/// The private keys of a key file in any supported format; an error for a public key file.
pub fn parse_private_keys(
    text: &str,
    passphrase: Passphrase<'_>,
) -> Result<Vec<PrivateKey>, KeyError> {
    if let Some((line, first)) = key_lines(text).next() {
        // An age public key where a private one belongs: the line-based error, as before.
        if first.starts_with("age1") {
            return Err(KeyError::InvalidIdentity { line });
        }
    }
    match parse_key_file(text, passphrase) {
        Ok(KeyFile::Private(keys)) => Ok(keys),
        Ok(KeyFile::Public(_)) => Err(KeyError::Unusable("a public key, not a private key".into())),
        Err(KeyError::UnknownFormat(_)) => Err(KeyError::UnknownFormat(IDENTITY_FORMATS)),
        Err(e) => Err(e),
    }
}

/// The public keys of any supported key file: the public halves of a private key file, or
/// the keys of a public one. An OpenSSH private key is not decrypted for this: its public
/// half is stored in the clear.
pub fn parse_public_keys(text: &str) -> Result<Vec<PublicKey>, KeyError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
        return Ok(vec![PublicKey::Ssh(ssh::PublicKey::of_openssh_private(
            trimmed,
        )?)]);
    }
    match parse_key_file(text, &mut || Err(KeyError::PassphraseNeeded))? {
        KeyFile::Private(keys) => keys.iter().map(PrivateKey::to_public).collect(),
        KeyFile::Public(keys) => Ok(keys),
    }
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
pub(crate) fn key_file_text(public: &str, secret: &str, created: &str) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "# created: {created}\n# public key: {public}\n{secret}\n"
    ))
}

/// Writes `text` to a new file at `path`, readable by its owner only; never over an existing file.
pub(crate) fn write_new_private_file(path: &Path, text: &str) -> std::io::Result<()> {
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

    /// The public key of each secret key in an identity file, as text (what `seal-keygen -y`
    /// prints).
    fn public_keys_of_identity_file(text: &str) -> Result<Vec<String>, KeyError> {
        parse_public_keys(text).map(|keys| keys.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn recipients_in_upper_case_are_read_and_mixed_case_is_not() {
        let classic = x25519::Identity::generate().to_public().to_string();
        let pq = pq::Identity::generate().to_public().to_string();
        for recipient in [classic, pq] {
            let upper = recipient.to_uppercase();
            assert_eq!(parse_public(&upper).unwrap().to_string(), recipient);
            let mixed = format!("{}{}", &upper[..8], &recipient[8..]);
            assert!(parse_public(&mixed).is_err());
        }
    }

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
        // Another last character (the same one, 1 time in 32, left the key valid).
        let other = if pq.ends_with('x') { "y" } else { "x" };
        let broken = format!("{}{other}", &pq[..pq.len() - 1]);
        let err = parse_recipient(&broken).err().unwrap().to_string();
        assert!(
            err.starts_with("invalid recipient \"age1pq1") && err.len() < 120,
            "{err}"
        );
        let secret = pq::Identity::generate().to_secret_string().to_lowercase();
        let err = parse_recipient(&secret).err().unwrap().to_string();
        assert_eq!(
            err,
            "this is a post-quantum secret key (AGE-SECRET-KEY-PQ-1...), not a recipient"
        );
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
        assert_eq!(
            err,
            "line 1: this is a secret key (AGE-SECRET-KEY-1...), not a recipient"
        );
        let err = parse_recipients_file(&format!("{r}\n{}\n", secret.as_str()))
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "line 2: this is a secret key (AGE-SECRET-KEY-1...), not a recipient"
        );
        let err = parse_recipient(&secret.to_lowercase())
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "this is a secret key (AGE-SECRET-KEY-1...), not a recipient"
        );
    }
}
