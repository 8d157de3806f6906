//! Keys and passphrases as the `age` crate (the reference Rust implementation) takes them,
//! to check in process that it reads what seal writes, and the reverse.

use std::str::FromStr;

use super::*;

/// The X25519 identity in an age key file, as the `age` crate reads it.
pub fn age_identity(dir: &Dir, key_file: &str) -> age::x25519::Identity {
    let text = dir.read_string(key_file);
    let secret = text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-1"));
    age::x25519::Identity::from_str(secret.expect("a secret key line")).unwrap()
}

/// A passphrase for the `age` crate's scrypt recipients and identities.
pub fn age_passphrase(text: &str) -> age::secrecy::SecretString {
    age::secrecy::SecretString::from(text.to_string())
}
