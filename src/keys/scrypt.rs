//! Passphrase recipients and identities: the `scrypt` stanza of age v1.
//!
//! Wrapping: a random 16-byte salt; a wrap key
//! `scrypt(passphrase, salt = "age-encryption.org/v1/scrypt" || salt, N = 2^log2N, r = 8, p = 1)`
//! of 32 bytes; the stanza `-> scrypt base64(salt) log2N` whose body is the file key under
//! ChaCha20-Poly1305 with a zero nonce (safe: the key is used once, the salt is fresh).
//!
//! A passphrase stanza must be the only stanza of a header: anyone who knows the passphrase
//! could otherwise strip the other recipients unnoticed. Its [`Recipient`] says so
//! ([`recipient::Recipient::must_be_alone`]), so sealing refuses it company, and every reader
//! refuses a header where such a stanza has some, whatever key it holds.
//!
//! The work factor is chosen by whoever seals, so an opening [`Identity`] refuses factors above
//! a limit ([`MAX_WORK_FACTOR`] unless set): a hostile file cannot make it spend minutes and
//! gigabytes. Below the limit, every derivation of the process (sealing or opening, on any
//! thread) draws on one memory budget of 256 MiB, and one larger than that runs alone: the
//! peak is max(256 MiB, the largest single derivation), 4 GiB at most when opening,
//! however many files and threads a batch has (see `budget.rs`).

use std::fmt;

use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::error::{DecryptError, EncryptError};
use crate::format::{decode_arg, encode_arg, Stanza};
use crate::keys::recipient::{self, FileKey, FILE_KEY_SIZE};
use crate::primitives::{open_once, seal_once};

mod budget;

/// The stanza type.
pub(crate) const STANZA_KIND: &str = "scrypt";
const LABEL: &[u8] = b"age-encryption.org/v1/scrypt";
const SALT_SIZE: usize = 16;

/// log2 of scrypt's N when sealing, as age chooses it: 2^18 (256 MiB, about a second).
pub const DEFAULT_WORK_FACTOR: u8 = 18;
/// The largest log2 N an [`Identity`] accepts by default: 22, age's limit (4 GiB of memory and
/// about 16 times the default's time). Larger factors are refused before any work is done.
pub const MAX_WORK_FACTOR: u8 = 22;

/// A passphrase to seal a file with.
pub struct Recipient {
    passphrase: Zeroizing<String>,
    work_factor: u8,
}

impl Recipient {
    /// Seals with `passphrase` at the default work factor.
    pub fn new(passphrase: Zeroizing<String>) -> Recipient {
        Recipient {
            passphrase,
            work_factor: DEFAULT_WORK_FACTOR,
        }
    }

    /// Sets log2 of scrypt's N (1 to 30); tests use small ones to run fast.
    pub fn with_work_factor(mut self, log2_n: u8) -> Recipient {
        assert!(
            (1..=30).contains(&log2_n),
            "scrypt work factor out of range"
        );
        self.work_factor = log2_n;
        self
    }
}

/// A passphrase to open a file with.
pub struct Identity {
    passphrase: Zeroizing<String>,
    max_work_factor: u8,
}

impl Identity {
    /// Opens with `passphrase`, refusing work factors above [`MAX_WORK_FACTOR`].
    pub fn new(passphrase: Zeroizing<String>) -> Identity {
        Identity {
            passphrase,
            max_work_factor: MAX_WORK_FACTOR,
        }
    }

    /// Sets the largest log2 N accepted.
    pub fn with_max_work_factor(mut self, log2_n: u8) -> Identity {
        self.max_work_factor = log2_n;
        self
    }

    fn unwrap(&self, stanza: &Stanza) -> Result<Option<FileKey>, DecryptError> {
        let [salt, work_factor] = stanza.args.as_slice() else {
            return Err(DecryptError::header(
                "scrypt stanza needs exactly two arguments",
            ));
        };
        let salt = decode_arg::<SALT_SIZE>(salt).ok_or_else(|| {
            DecryptError::header("scrypt salt is not 16 bytes of canonical base64")
        })?;
        let log2_n = parse_work_factor(work_factor)?;
        if log2_n > self.max_work_factor {
            return Err(DecryptError::header(format!(
                "scrypt work factor 2^{log2_n} is above the limit of 2^{}, refused",
                self.max_work_factor
            )));
        }
        if stanza.body.len() != FILE_KEY_SIZE + 16 {
            return Err(DecryptError::header(
                "scrypt stanza body is not a 16-byte wrapped key",
            ));
        }
        let key = wrap_key(&self.passphrase, &salt, log2_n);
        Ok(open_once(&key, &stanza.body).and_then(|k| FileKey::from_slice(&k)))
    }
}

/// A decimal number without sign or leading zero, as the spec requires, that fits scrypt.
fn parse_work_factor(arg: &str) -> Result<u8, DecryptError> {
    let bad = || DecryptError::header("scrypt work factor is not a decimal number from 1 to 63");
    if arg.is_empty() || arg.len() > 2 || arg.starts_with('0') {
        return Err(bad());
    }
    if !arg.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match arg.parse::<u8>() {
        Ok(n) if n < 64 => Ok(n),
        _ => Err(bad()),
    }
}

fn wrap_key(passphrase: &str, salt: &[u8; SALT_SIZE], log2_n: u8) -> Zeroizing<[u8; 32]> {
    let mut full_salt = [0u8; LABEL.len() + SALT_SIZE];
    full_salt[..LABEL.len()].copy_from_slice(LABEL);
    full_salt[LABEL.len()..].copy_from_slice(salt);
    // r = 8 and p = 1 are fixed by the format; log2 N is checked by the callers (at most 30
    // when sealing, at most the identity's limit when opening), well inside scrypt's range.
    let params = ::scrypt::Params::new(log2_n, 8, 1, 32).expect("valid scrypt parameters");
    // Its memory, from the budget shared by every thread, until the key is derived.
    let _memory = budget::reserve(log2_n);
    let mut key = Zeroizing::new([0u8; 32]);
    ::scrypt::scrypt(passphrase.as_bytes(), &full_salt, &params, key.as_mut())
        .expect("32 is a valid scrypt output length");
    key
}

impl recipient::Recipient for Recipient {
    fn wrap(&self, file_key: &FileKey) -> Result<Vec<Stanza>, EncryptError> {
        let mut salt = [0u8; SALT_SIZE];
        OsRng.fill_bytes(&mut salt);
        let key = wrap_key(&self.passphrase, &salt, self.work_factor);
        Ok(vec![Stanza {
            kind: STANZA_KIND.into(),
            args: vec![encode_arg(&salt), self.work_factor.to_string()],
            body: seal_once(&key, file_key.expose_secret()),
        }])
    }

    fn must_be_alone(&self) -> bool {
        true
    }
}

impl recipient::Identity for Identity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>> {
        if stanza.kind != STANZA_KIND {
            return None;
        }
        self.unwrap(stanza).transpose()
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("scrypt::Recipient")
            .field("work_factor", &self.work_factor)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("scrypt::Identity")
            .field("max_work_factor", &self.max_work_factor)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::recipient::{Identity as _, Recipient as _};

    fn pass(s: &str) -> Zeroizing<String> {
        Zeroizing::new(s.to_string())
    }

    #[test]
    fn wraps_and_unwraps_and_a_wrong_passphrase_is_not_a_match() {
        let file_key = FileKey::generate();
        let stanzas = Recipient::new(pass("correct horse"))
            .with_work_factor(4)
            .wrap(&file_key)
            .unwrap();
        assert_eq!(stanzas.len(), 1);
        assert_eq!(stanzas[0].args[1], "4");
        let opened = Identity::new(pass("correct horse"))
            .unwrap_stanza(&stanzas[0])
            .unwrap()
            .unwrap();
        assert_eq!(opened.expose_secret(), file_key.expose_secret());
        assert!(Identity::new(pass("wrong"))
            .unwrap_stanza(&stanzas[0])
            .is_none());
    }

    #[test]
    fn a_passphrase_is_alone_when_sealed_and_when_read() {
        let recipient = Recipient::new(pass("p")).with_work_factor(2);
        assert!(recipient.must_be_alone());
        let ours = recipient.wrap(&FileKey::generate()).unwrap().remove(0);
        let other = Stanza {
            kind: "X25519".into(),
            args: vec!["a".into()],
            body: vec![0; 32],
        };
        let header = |stanzas| crate::format::Header::new(stanzas, |_| [0; 32]);
        assert!(header(vec![ours.clone()]).check_alone().is_ok());
        assert!(header(vec![other, ours]).check_alone().is_err());
    }

    #[test]
    fn refuses_large_work_factors_before_working() {
        let mut stanza = Recipient::new(pass("p"))
            .with_work_factor(2)
            .wrap(&FileKey::generate())
            .unwrap()
            .remove(0);
        // 2^40 would need a terabyte: the refusal must come before scrypt runs.
        stanza.args[1] = "40".into();
        let err = Identity::new(pass("p"))
            .unwrap_stanza(&stanza)
            .unwrap()
            .err()
            .unwrap();
        assert!(err.to_string().contains("above the limit of 2^22"), "{err}");
        stanza.args[1] = "3".into();
        let err = Identity::new(pass("p"))
            .with_max_work_factor(2)
            .unwrap_stanza(&stanza)
            .unwrap()
            .err()
            .unwrap();
        assert!(err.to_string().contains("limit of 2^2,"), "{err}");
    }

    #[test]
    fn work_factor_syntax_is_strict() {
        for good in ["1", "9", "10", "22", "63"] {
            assert!(parse_work_factor(good).is_ok(), "{good}");
        }
        for bad in ["", "0", "010", "+10", "-10", "0xa", "64", "1a", " 1", "100"] {
            assert!(parse_work_factor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_passphrase() {
        let r = Recipient::new(pass("hunter2-secret"));
        let i = Identity::new(pass("hunter2-secret"));
        let shown = format!("{r:?} {i:?} {r:#?} {i:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
