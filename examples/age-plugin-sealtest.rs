//! `age-plugin-sealtest`: the plugin the tests seal and open with, built on the `age-plugin`
//! crate (an implementation of the plugin protocol independent of seal's) over a software
//! X25519 key from the `age` crate, so that nothing in it is seal's own.
//!
//! - `age-plugin-sealtest --generate`: prints a new identity (`AGE-PLUGIN-SEALTEST-1...`) and,
//!   on a `# recipient:` line, its recipient (`age1sealtest1...`).
//! - `--age-plugin=recipient-v1` / `identity-v1`: the protocol. Stanzas are X25519 stanzas
//!   relabelled `sealtest`, so no native key opens them.
//! - `SEALTEST_PIN=PIN` in the environment: unwrapping asks for a secret (`request-secret`)
//!   once per session and refuses a wrong one; `SEALTEST_LOG=FILE`: each session appends a
//!   line to FILE (`recipient-v1`, or `identity-v1 N` with N the files it was given).

use std::collections::HashMap;
use std::io::{self, Write};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use age_core::format::{FileKey, Stanza};
use age_plugin::identity::{self, IdentityPluginV1};
use age_plugin::recipient::{self, RecipientPluginV1};
use age_plugin::{print_new_identity, run_state_machine, Callbacks, PluginHandler};
use bech32::{Bech32, Hrp};

const NAME: &str = "sealtest";

/// An age X25519 recipient or identity, from the 32 bytes a plugin key carries.
fn x25519_recipient(bytes: &[u8]) -> Option<age::x25519::Recipient> {
    let text = bech32::encode::<Bech32>(Hrp::parse_unchecked("age"), bytes).ok()?;
    age::x25519::Recipient::from_str(&text).ok()
}

fn x25519_identity(bytes: &[u8]) -> Option<age::x25519::Identity> {
    let text = bech32::encode::<Bech32>(Hrp::parse_unchecked("age-secret-key-"), bytes).ok()?;
    age::x25519::Identity::from_str(&text.to_uppercase()).ok()
}

fn log(line: &str) {
    if let Ok(path) = std::env::var("SEALTEST_LOG") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("log file");
        writeln!(file, "{line}").expect("log written");
    }
}

struct Handler;

impl PluginHandler for Handler {
    type RecipientV1 = Wrapper;
    type IdentityV1 = Unwrapper;

    fn recipient_v1(self) -> io::Result<Wrapper> {
        log("recipient-v1");
        Ok(Wrapper(Vec::new()))
    }

    fn identity_v1(self) -> io::Result<Unwrapper> {
        Ok(Unwrapper(Vec::new()))
    }
}

struct Wrapper(Vec<age::x25519::Recipient>);

impl RecipientPluginV1 for Wrapper {
    fn add_recipient(
        &mut self,
        index: usize,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), recipient::Error> {
        match (name == NAME).then(|| x25519_recipient(bytes)).flatten() {
            Some(recipient) => {
                self.0.push(recipient);
                Ok(())
            }
            None => Err(recipient::Error::Recipient {
                index,
                message: "not a sealtest recipient".into(),
            }),
        }
    }

    fn add_identity(&mut self, index: usize, _: &str, _: &[u8]) -> Result<(), recipient::Error> {
        Err(recipient::Error::Identity {
            index,
            message: "wrapping to identities is not supported".into(),
        })
    }

    fn labels(&mut self) -> std::collections::HashSet<String> {
        Default::default()
    }

    fn wrap_file_keys(
        &mut self,
        file_keys: Vec<FileKey>,
        _: impl Callbacks<recipient::Error>,
    ) -> io::Result<Result<Vec<Vec<Stanza>>, Vec<recipient::Error>>> {
        let mut files = Vec::new();
        for file_key in file_keys {
            let mut stanzas = Vec::new();
            for recipient in &self.0 {
                let (wrapped, _) = age::Recipient::wrap_file_key(recipient, &file_key)
                    .map_err(io::Error::other)?;
                stanzas.extend(wrapped.into_iter().map(|mut s| {
                    s.tag = NAME.into();
                    s
                }));
            }
            files.push(stanzas);
        }
        Ok(Ok(files))
    }
}

struct Unwrapper(Vec<age::x25519::Identity>);

impl IdentityPluginV1 for Unwrapper {
    fn add_identity(
        &mut self,
        index: usize,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), identity::Error> {
        match (name == NAME).then(|| x25519_identity(bytes)).flatten() {
            Some(identity) => {
                self.0.push(identity);
                Ok(())
            }
            None => Err(identity::Error::Identity {
                index,
                message: "not a sealtest identity".into(),
            }),
        }
    }

    fn unwrap_file_keys(
        &mut self,
        files: Vec<Vec<Stanza>>,
        mut callbacks: impl Callbacks<identity::Error>,
    ) -> io::Result<HashMap<usize, Result<FileKey, Vec<identity::Error>>>> {
        log(&format!("identity-v1 {}", files.len()));
        let mut keys = HashMap::new();
        if let Ok(pin) = std::env::var("SEALTEST_PIN") {
            let given = callbacks.request_secret("PIN for the sealtest key")?;
            let right = given.as_ref().is_ok_and(|g| g.expose_secret() == pin);
            if !right {
                for (i, _) in files.iter().enumerate() {
                    let error = identity::Error::Identity {
                        index: 0,
                        message: "wrong PIN".into(),
                    };
                    keys.insert(i, Err(vec![error]));
                }
                return Ok(keys);
            }
        }
        for (i, stanzas) in files.into_iter().enumerate() {
            for stanza in stanzas.into_iter().filter(|s| s.tag == NAME) {
                let stanza = Stanza {
                    tag: "X25519".into(),
                    ..stanza
                };
                let found = self
                    .0
                    .iter()
                    .find_map(|id| age::Identity::unwrap_stanza(id, &stanza));
                if let Some(Ok(key)) = found {
                    keys.insert(i, Ok(key));
                    break;
                }
            }
        }
        Ok(keys)
    }
}

fn main() -> io::Result<()> {
    let arg = std::env::args().nth(1).unwrap_or_default();
    if let Some(state_machine) = arg.strip_prefix("--age-plugin=") {
        return run_state_machine(state_machine, Handler);
    }
    if arg == "--generate" {
        let identity = age::x25519::Identity::generate();
        let secret = identity.to_string();
        let (_, secret) = bech32::decode(secret.expose_secret()).expect("an age identity");
        let public = identity.to_public().to_string();
        let (_, public) = bech32::decode(&public).expect("an age recipient");
        print_new_identity(NAME, &secret, &public);
        return Ok(());
    }
    eprintln!("usage: age-plugin-sealtest --generate | --age-plugin=STATE_MACHINE");
    std::process::exit(2)
}
