//! age plugins (C2SP `age-plugin.md`): recipients `age1NAME1...` and identities
//! `AGE-PLUGIN-NAME-1...` whose keys live elsewhere (a YubiKey, a TPM, an HSM), wrapped and
//! unwrapped by the program `age-plugin-NAME`, spoken to over its standard input and output.
//!
//! Only file keys cross the pipe: a plugin wraps a file key into stanzas when sealing, and
//! unwraps one from a header's stanzas when opening; the payload never leaves this process,
//! and goes through the parallel engine as with any other key.
//!
//! The plugin is not trusted to behave: its name is checked before any program is looked
//! for (no `/`, no `..`: a name is a word), each line it sends is bounded in size and in the
//! time it takes to arrive ([`Client::timeout`]), a session in the number of its stanzas,
//! and anything out of turn ends it with an error that names the plugin. What it asks of the
//! user (a message, a confirmation, a PIN) goes to a [`Ui`]; with none, every request is
//! refused, as the protocol allows.

mod conversation;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::error::{DecryptError, EncryptError, KeyError};
use crate::format::Stanza;
use crate::keys::keytext;
use crate::keys::recipient::{self, FileKey};

/// The prefix of a plugin identity's human-readable part: `AGE-PLUGIN-NAME-`.
const IDENTITY_PREFIX: &str = "AGE-PLUGIN-";

/// The longest plugin name accepted.
const MAX_NAME: usize = 64;

/// A plugin failed: it could not be started, broke the protocol, or reported an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {name}: {message}")]
pub struct PluginError {
    /// The plugin's name (`age-plugin-NAME`).
    pub name: String,
    /// What went wrong, in words. Text from the plugin is escaped.
    pub message: String,
}

/// What the user is asked on a plugin's behalf. Every method has a default that refuses
/// (as with no terminal): a [`Client`] with [`NoUi`] answers nothing. Texts from the plugin
/// arrive escaped (control characters as `\n`, `\x1b`, ...): each fits on one line.
pub trait Ui: Send + Sync {
    /// Shows `text` from the plugin `plugin`; whether it could be shown.
    fn message(&self, plugin: &str, text: &str) -> bool {
        let _ = (plugin, text);
        false
    }

    /// Asks the user to choose between `yes` and `no` (if given) after `text`: `Some(true)`
    /// for yes, `None` if the question cannot be asked.
    fn confirm(&self, plugin: &str, text: &str, yes: &str, no: Option<&str>) -> Option<bool> {
        let _ = (plugin, text, yes, no);
        None
    }

    /// Asks the user for a public value (shown as typed).
    fn request_public(&self, plugin: &str, text: &str) -> Option<String> {
        let _ = (plugin, text);
        None
    }

    /// Asks the user for a secret, such as a PIN (never shown).
    fn request_secret(&self, plugin: &str, text: &str) -> Option<Zeroizing<String>> {
        let _ = (plugin, text);
        None
    }
}

/// The [`Ui`] that answers nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUi;

impl Ui for NoUi {}

/// How plugins are found and run.
#[derive(Clone)]
pub struct Client {
    /// Plugin programs given by path: when set, these alone run (an allow-list for a
    /// server), each found by its file name `age-plugin-NAME`; `PATH` is not searched.
    pub allowed: Option<Vec<PathBuf>>,
    /// How long to wait for each line a plugin sends before it is stopped.
    pub timeout: Duration,
    /// Who answers the plugin's messages and requests.
    pub ui: Arc<dyn Ui>,
}

impl Default for Client {
    /// Plugins from `PATH`, two minutes a line (a hardware key may wait for a touch), no UI.
    fn default() -> Client {
        Client {
            allowed: None,
            timeout: Duration::from_secs(120),
            ui: Arc::new(NoUi),
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("allowed", &self.allowed)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The program of the plugin `name`: from the allow-list, or the first executable
    /// `age-plugin-NAME` on `PATH`.
    fn program(&self, name: &str) -> Result<PathBuf, PluginError> {
        let file = format!("age-plugin-{name}");
        let error = |message: String| PluginError {
            name: name.to_string(),
            message,
        };
        if let Some(allowed) = &self.allowed {
            return allowed
                .iter()
                .find(|path| path.file_name().is_some_and(|f| f == file.as_str()))
                .cloned()
                .ok_or_else(|| {
                    error(format!(
                        "{file} is not among the plugins allowed (--plugin)"
                    ))
                });
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(&file))
            .find(|candidate| is_executable(candidate))
            .ok_or_else(|| error(format!("{file} not found on PATH (install the plugin)")))
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether `name` may name a plugin: lowercase letters, digits and `-._+`, starting with a
/// letter or digit, at most 64 characters. The spec allows any visible character, but a name
/// becomes part of a program's name: `/` or `..` would run a program anywhere.
pub fn valid_name(name: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._+".contains(&b);
    name.len() <= MAX_NAME
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(allowed)
}

/// A recipient served by a plugin: `age1NAME1...`.
#[derive(Clone, Debug)]
pub struct Recipient {
    name: String,
    encoded: String,
    client: Client,
}

impl Recipient {
    /// Parses `age1NAME1...` (lower case), run with the default [`Client`]; `None` if it is
    /// not a plugin recipient, an error if it is one with a name that is not allowed.
    pub fn parse(s: &str) -> Option<Result<Recipient, KeyError>> {
        let (hrp, _) = s.rsplit_once('1')?;
        let name = hrp.strip_prefix("age1")?;
        if !valid_name(name) {
            return Some(Err(KeyError::Unusable(format!(
                "plugin recipient with an invalid plugin name {}",
                crate::shown::value(name)
            ))));
        }
        keytext::decode(s, hrp)?;
        Some(Ok(Recipient {
            name: name.to_string(),
            encoded: s.to_string(),
            client: Client::default(),
        }))
    }

    /// The same recipient, run by `client`.
    pub fn with_client(mut self, client: &Client) -> Recipient {
        self.client = client.clone();
        self
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encoded)
    }
}

impl recipient::Recipient for Recipient {
    fn wrap(&self, file_key: &FileKey) -> Result<Vec<Stanza>, EncryptError> {
        conversation::wrap(&self.client, &self.name, &self.encoded, file_key)
            .map_err(EncryptError::Plugin)
    }
}

/// An identity served by a plugin: `AGE-PLUGIN-NAME-1...`. It holds whatever the plugin
/// needs to find the key (often no key material at all).
#[derive(Clone)]
pub struct Identity {
    name: String,
    encoded: Zeroizing<String>,
    client: Client,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("plugin", &self.name)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Parses `AGE-PLUGIN-NAME-1...` (upper case), run with the default [`Client`]; `None`
    /// if it is not a plugin identity, an error if it is a malformed one.
    pub fn parse(s: &str) -> Option<Result<Identity, KeyError>> {
        let rest = s.strip_prefix(IDENTITY_PREFIX)?;
        let invalid = || Some(Err(KeyError::Unusable("malformed plugin identity".into())));
        let Some((hrp, _)) = s.rsplit_once('1') else {
            return invalid();
        };
        let Some(name) = hrp
            .strip_prefix(IDENTITY_PREFIX)
            .and_then(|n| n.strip_suffix('-'))
        else {
            return invalid();
        };
        let name = name.to_ascii_lowercase();
        if !valid_name(&name) || rest.bytes().any(|b| b.is_ascii_lowercase()) {
            return Some(Err(KeyError::Unusable(format!(
                "plugin identity with an invalid plugin name {}",
                crate::shown::value(&name)
            ))));
        }
        if keytext::decode(s, hrp).is_none() {
            return invalid();
        }
        Some(Ok(Identity {
            name,
            encoded: Zeroizing::new(s.to_string()),
            client: Client::default(),
        }))
    }

    /// The same identity, run by `client`.
    pub fn with_client(mut self, client: &Client) -> Identity {
        self.client = client.clone();
        self
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        &self.name
    }
}

impl recipient::Identity for Identity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>> {
        self.unwrap_stanzas(std::slice::from_ref(stanza))
    }

    /// All of a header's stanzas go to the plugin in one session: it picks the one it can
    /// open (they all wrap the same key).
    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, DecryptError>> {
        let files = std::slice::from_ref(&stanzas);
        let mut keys = conversation::unwrap(&self.client, &self.name, &self.encoded, files);
        keys.pop().expect("one answer a file").transpose()
    }

    fn unwraps_many(&self) -> bool {
        true
    }

    /// Many files in one session: the plugin's prompts and touches come once.
    fn unwrap_many(&self, headers: &[Vec<Stanza>]) -> Vec<Option<Result<FileKey, DecryptError>>> {
        let files: Vec<&[Stanza]> = headers.iter().map(Vec::as_slice).collect();
        let keys = conversation::unwrap(&self.client, &self.name, &self.encoded, &files);
        keys.into_iter().map(Result::transpose).collect()
    }
}

/// A session that ended badly: the plugin's error, or one about it.
fn failure(name: &str, message: impl Into<String>) -> PluginError {
    PluginError {
        name: name.to_string(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_words_and_never_paths() {
        for good in ["yubikey", "se", "tpm", "fido2-hmac", "a.b_c+d", "x1"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "", "../x", "a/b", "..", ".hidden", "-x", "Upper", "a b", "é",
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(!valid_name(&"a".repeat(65)));
    }

    #[test]
    fn recipients_and_identities_parse_by_their_bech32_and_keep_their_text() {
        let recipient = keytext::encode("age1yubikey", &[7; 33]);
        let parsed = Recipient::parse(&recipient).unwrap().unwrap();
        assert_eq!(
            (parsed.plugin(), parsed.to_string()),
            ("yubikey", recipient.clone())
        );
        // Not a plugin's: a native X25519 recipient has no name in its HRP.
        assert!(Recipient::parse(&keytext::encode("age", &[7; 32])).is_none());
        let mut typo = recipient.clone();
        typo.pop();
        typo.push(if recipient.ends_with('q') { 'p' } else { 'q' });
        assert!(Recipient::parse(&typo).is_none());
        // A name that is a path: refused before anything runs.
        let sneaky = keytext::encode("age1../x", &[1; 4]);
        assert!(
            matches!(Recipient::parse(&sneaky), Some(Err(_))),
            "{sneaky}"
        );

        let identity = keytext::encode("AGE-PLUGIN-YUBIKEY-", &[9; 20]).to_ascii_uppercase();
        let parsed = Identity::parse(&identity).unwrap().unwrap();
        assert_eq!(parsed.plugin(), "yubikey");
        assert!(format!("{parsed:?}").contains("yubikey"));
        assert!(!format!("{parsed:?}").contains(&identity), "never printed");
        assert!(Identity::parse("AGE-SECRET-KEY-1QQQ").is_none());
        assert!(matches!(
            Identity::parse("AGE-PLUGIN-X-1QQQQ"),
            Some(Err(_))
        ));
    }
}
