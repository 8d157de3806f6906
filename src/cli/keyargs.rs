//! Turning `--to`, `-r`, `-R` and `--key` arguments into keys, with the file named in errors.

use std::fs;
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::failure::Failure;
use crate::error::KeyError;
use crate::keys;
use crate::keys::plugin::Client;
use crate::keys::recipient::{Identity, Recipient};

/// Where the passphrase of a protected OpenSSH key comes from. Without either flag it is
/// asked on the terminal, when there is one.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct PassphraseFlags {
    /// Passphrase of protected OpenSSH keys, or a plugin PIN: FILE
    ///
    /// Its first line, for unattended servers; keep the file 0600. Without this flag or the
    /// next, the passphrase is asked on the terminal.
    #[arg(long, value_name = "FILE", conflicts_with = "key_passphrase_env")]
    pub key_passphrase_file: Option<PathBuf>,

    /// Passphrase of protected OpenSSH keys, or a plugin PIN: VAR
    #[arg(long, value_name = "VAR")]
    pub key_passphrase_env: Option<String>,
}

impl PassphraseFlags {
    /// The passphrase, for the key at `path` (named in the terminal prompt).
    pub fn get(&self, path: &Path) -> Result<Zeroizing<String>, KeyError> {
        if let Some(configured) = self.configured() {
            return configured;
        }
        if !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal() {
            return Err(KeyError::PassphraseNeeded);
        }
        let prompt = format!("Passphrase for {}: ", crate::shown::path(path));
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|_| KeyError::PassphraseNeeded)
    }

    /// The passphrase from the file or variable a flag names, if one does.
    pub fn configured(&self) -> Option<Result<Zeroizing<String>, KeyError>> {
        if let Some(file) = &self.key_passphrase_file {
            let text = match fs::read_to_string(file) {
                Ok(text) => Zeroizing::new(text),
                Err(e) => {
                    let why = passphrase_file_error("--key-passphrase-file", file, &e);
                    return Some(Err(KeyError::PassphraseUnavailable(why.into())));
                }
            };
            let line = text.lines().next().unwrap_or("");
            return Some(Ok(Zeroizing::new(line.to_string())));
        }
        let var = self.key_passphrase_env.as_ref()?;
        Some(std::env::var(var).map(Zeroizing::new).map_err(|_| {
            KeyError::PassphraseUnavailable(
                format!("environment variable {var} is not set (or not UTF-8)").into(),
            )
        }))
    }

    /// Whether a flag names a passphrase.
    pub fn given(&self) -> bool {
        self.key_passphrase_file.is_some() || self.key_passphrase_env.is_some()
    }
}

/// A `--to` or `-R` value that is a recipient itself rather than a file naming recipients
/// (`AGE1...` too: Bech32 may be all upper case).
fn is_literal(value: &str) -> bool {
    let value = value.trim();
    value
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("age1"))
        || value.starts_with("ssh-rsa ")
        || value.starts_with("ssh-ed25519 ")
}

/// Recipients from `--to` (a recipients file, or a literal `age1...` or `ssh-...` key that
/// names no file), `-r` (literals) and `-R` (files). A literal is read without the spaces and
/// line ends around it, as pasted. A file given to `-r`, or a recipient to `-R`, is refused
/// with a hint naming the flag that takes it (`--to` takes either).
pub fn recipients(
    to: &[String],
    literals: &[String],
    files: &[PathBuf],
    plugins: &Client,
) -> Result<Vec<Box<dyn Recipient>>, Failure> {
    let mut out = Vec::new();
    for value in to {
        not_a_secret("--to", value)?;
        if is_literal(value) && !Path::new(value).exists() {
            out.push(keys::parse_recipient_with(value.trim(), plugins)?);
        } else {
            out.extend(recipients_file(Path::new(value), plugins)?);
        }
    }
    for value in literals {
        not_a_secret("-r", value)?;
        let parsed = keys::parse_recipient_with(value.trim(), plugins);
        if parsed.is_err() && Path::new(value).is_file() {
            let name = crate::shown::path(Path::new(value));
            return Err(
                Failure::usage(format!("-r: {name} is a file, not a recipient")).hint(format!(
                    "use -R {name} (or --to {name}) for the recipients in a file"
                )),
            );
        }
        out.push(parsed?);
    }
    for path in files {
        let value = path.to_string_lossy();
        not_a_secret("-R", &value)?;
        if is_literal(&value) && !path.exists() {
            return Err(Failure::usage("-R: this is a recipient, not a file")
                .hint("use -r RECIPIENT (or --to, which takes a file or a recipient)"));
        }
        out.extend(recipients_file(path, plugins)?);
    }
    if out.is_empty() {
        return Err(Failure::usage("no recipients given").hint("use --to server.pub"));
    }
    // Refused here, before any output exists (the library refuses it too).
    let refs: Vec<&dyn Recipient> = out.iter().map(|r| r.as_ref()).collect();
    crate::keys::recipient::check_compatible(&refs)?;
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

/// Refuses a secret (an age secret key, a private key) given on the command line where a
/// recipient or a recipients file belongs, naming its kind only.
fn not_a_secret(flag: &str, value: &str) -> Result<(), Failure> {
    match crate::shown::secret_kind(value) {
        Some(kind) => Err(
            Failure::usage(format!("{flag}: this is a {kind}, not a recipient"))
                .hint("give its public key instead; seal-keygen -y KEYFILE prints it"),
        ),
        None => Ok(()),
    }
}

fn recipients_file(path: &Path, plugins: &Client) -> Result<Vec<Box<dyn Recipient>>, Failure> {
    let text = read_key_text(path, keys::RECIPIENT_FORMATS)?;
    let recipients = keys::parse_recipients_file_with(&text, plugins).map_err(|e| {
        let secret = matches!(e, KeyError::SecretNotRecipient { .. });
        let failure = Failure::from(e).about(path);
        match secret {
            true => failure.hint(format!(
                "give --to the public key file (.pub); seal-keygen -y {} prints its key",
                crate::shown::path(path)
            )),
            false => failure,
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
    plugins: &Client,
) -> Result<Vec<Box<dyn Identity>>, Failure> {
    let mut out = Vec::new();
    for path in paths {
        out.extend(identity_file(program, path, passphrase, plugins)?);
    }
    Ok(out)
}

/// The identities of one key file, for `--key`.
pub fn identity_file(
    program: &str,
    path: &Path,
    passphrase: &PassphraseFlags,
    plugins: &Client,
) -> Result<Vec<Box<dyn Identity>>, Failure> {
    if let Some(kind) = crate::shown::secret_kind(&path.to_string_lossy()) {
        return Err(Failure::usage(format!(
            "--key: this is a {kind} itself, not the name of its file"
        ))
        .hint("save it in a file only you can read (chmod 600), and give --key FILE"));
    }
    let text = read_key_text(path, keys::IDENTITY_FORMATS)?;
    let mut ask = || passphrase.get(path);
    let parsed = keys::parse_private_keys(&text, &mut ask).map_err(|e| {
        let needed = matches!(e, KeyError::PassphraseNeeded);
        let failure = Failure::from(e).about(path);
        if keys::KeyFileKind::of(&text) == Some(keys::KeyFileKind::Public) {
            failure.hint("this is a public key: --key needs the private key file")
        } else if needed {
            failure.hint("use --key-passphrase-file FILE or --key-passphrase-env VAR")
        } else {
            failure
        }
    })?;
    warn_if_exposed(program, path, "private key");
    Ok(parsed
        .into_iter()
        .map(|key| key.into_identity_with(plugins))
        .collect())
}

/// Whether a file holding a secret lets group or others in: a regular file whose mode
/// gives them any permission.
pub fn exposed(meta: &fs::Metadata) -> bool {
    meta.is_file() && meta.permissions().mode() & 0o077 != 0
}

/// Warns (on stderr) when a secret file (`what`: "private key", "passphrase file") is readable
/// by group or others.
pub fn warn_if_exposed(program: &str, path: &Path, what: &str) {
    if let Ok(meta) = fs::metadata(path) {
        if exposed(&meta) {
            say!(
                "{program}: warning: {}: {what} is readable by group or others; run chmod 600",
                crate::shown::path(path)
            );
        }
    }
}

/// Why a passphrase file given to `flag` cannot be read. A file that does not exist is not
/// named: the name may be the passphrase itself, typed where its file belongs.
pub fn passphrase_file_error(flag: &str, path: &Path, e: &std::io::Error) -> String {
    let why = super::failure::describe_io(e);
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("{flag}: {why} (the name is not repeated: it may be the passphrase itself)")
        }
        _ => format!("{}: {why}", crate::shown::path(path)),
    }
}
