//! Hybrid post-quantum recipients (`age1pq1...`) and identities (`AGE-SECRET-KEY-PQ-1...`):
//! age's `mlkem768x25519` recipient type.
//!
//! A server key that lives for years protects every upload ever sealed to it, and those can be
//! recorded today and attacked by a quantum computer later. This type resists that: the file
//! key is wrapped with HPKE (RFC 9180, base mode) over X-Wing, the ML-KEM-768 + X25519 hybrid
//! KEM (HPKE KEM id `0x647a`), which stays secure while either half does.
//!
//! - Identity: 32 random bytes, expanded by X-Wing into the ML-KEM and X25519 key pairs.
//! - Recipient: the 1216-byte X-Wing encapsulation key (ML-KEM-768 key, then X25519 point).
//! - Stanza: `-> mlkem768x25519 base64(enc)`, `enc` the 1120-byte X-Wing ciphertext; the body
//!   is `HPKE.SealBase(pk, info = "age-encryption.org/mlkem768x25519", aad = "", file key)`.
//!
//! Sealing one file to this type and to a classical one would leave the file only as strong as
//! the classical key, so such a mix is refused (its [label](crate::Recipient::labels)
//! `postquantum`), as age does.
//!
//! ```
//! let server = seal::pq::Identity::generate();
//! let sealed = seal::encrypt(&[&server.to_public()], b"report")?;
//! assert_eq!(seal::decrypt(&[&server], &sealed)?, b"report");
//!
//! let classic = seal::x25519::Identity::generate().to_public();
//! let mixed = seal::encrypt(&[&server.to_public(), &classic], b"report");
//! assert!(matches!(mixed, Err(seal::EncryptError::IncompatibleRecipients)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::error::{DecryptError, EncryptError, KeyError};
use crate::format::{decode_arg, encode_arg, Stanza};
use crate::keys::hpke::Suite;
use crate::keys::keytext;
use crate::keys::recipient::{self, FileKey, FILE_KEY_SIZE};
use crate::keys::xwing::{self, DecapsulationKey, EncapsulationKey};
use crate::shown;

const STANZA_KIND: &str = "mlkem768x25519";
const INFO: &[u8] = b"age-encryption.org/mlkem768x25519";
/// HPKE's KEM id for MLKEM768-X25519, that is X-Wing (draft-ietf-hpke-pq).
const KEM_ID: u16 = 0x647a;
const SUITE: Suite = Suite::new(KEM_ID);
const RECIPIENT_HRP: &str = "age1pq";
const IDENTITY_HRP: &str = "AGE-SECRET-KEY-PQ-";
const ENC_SIZE: usize = xwing::CIPHERTEXT_SIZE;
const PUBLIC_KEY_SIZE: usize = xwing::PUBLIC_KEY_SIZE;

/// The label of post-quantum recipients: a file is sealed to recipients that all carry it or
/// all lack it (see [`recipient::Recipient::labels`]).
pub(crate) const POST_QUANTUM: &str = "postquantum";

/// A post-quantum public key: where files are sealed to.
#[derive(Clone, PartialEq)]
pub struct Recipient(EncapsulationKey);

/// A post-quantum private key: a 32-byte seed, expanded once into the ML-KEM-768 and X25519
/// keys it stands for. It has no `Debug`; its secrets are zeroized on drop.
#[derive(Clone)]
pub struct Identity(DecapsulationKey);

impl Identity {
    /// A new random identity.
    pub fn generate() -> Identity {
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(seed.as_mut());
        Identity::from_seed(&seed)
    }

    fn from_seed(seed: &[u8; 32]) -> Identity {
        Identity(DecapsulationKey::from_seed(seed))
    }

    /// The matching recipient.
    pub fn to_public(&self) -> Recipient {
        Recipient(self.0.public().clone())
    }

    /// The `AGE-SECRET-KEY-PQ-1...` form. Handle with care: it is the secret.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        let encoded = Zeroizing::new(keytext::encode(IDENTITY_HRP, self.0.seed()));
        Zeroizing::new(encoded.to_uppercase())
    }

    fn unwrap(&self, stanza: &Stanza) -> Result<Option<FileKey>, DecryptError> {
        let [enc] = stanza.args.as_slice() else {
            return Err(DecryptError::header(
                "mlkem768x25519 stanza needs exactly one argument",
            ));
        };
        let enc = decode_arg::<ENC_SIZE>(enc).ok_or_else(|| {
            DecryptError::header("mlkem768x25519 share is not 1120 bytes of canonical base64")
        })?;
        // Checked before any decryption: a body of another size is never tried (it would make
        // a partitioning oracle of the AEAD).
        if stanza.body.len() != FILE_KEY_SIZE + 16 {
            return Err(DecryptError::header(
                "mlkem768x25519 stanza body is not a 16-byte wrapped key",
            ));
        }
        // X-Wing's X25519 half must contribute: an all-zero X25519 secret (a low-order share)
        // is refused, as for X25519 stanzas.
        let shared = self.0.decapsulate(&enc).ok_or_else(|| {
            DecryptError::header("mlkem768x25519 share has a low-order X25519 point")
        })?;
        let opened = SUITE
            .key_schedule(shared.as_slice(), INFO)
            .open(&stanza.body);
        Ok(opened.and_then(|k| FileKey::from_slice(&k)))
    }
}

impl recipient::Recipient for Recipient {
    fn wrap(&self, file_key: &FileKey) -> Result<Vec<Stanza>, EncryptError> {
        // X-Wing's EncapsulateDerand with 64 fresh random bytes: the first half feeds ML-KEM's
        // encapsulation, the second is the ephemeral X25519 secret.
        let mut eseed = Zeroizing::new([0u8; 64]);
        OsRng.fill_bytes(eseed.as_mut());
        let (enc, shared) = self.0.encapsulate(&eseed);
        Ok(vec![Stanza {
            kind: STANZA_KIND.into(),
            args: vec![encode_arg(&enc)],
            body: SUITE
                .key_schedule(shared.as_slice(), INFO)
                .seal(file_key.expose_secret()),
        }])
    }

    fn labels(&self) -> BTreeSet<String> {
        BTreeSet::from([POST_QUANTUM.to_string()])
    }
}

impl recipient::Identity for Identity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>> {
        if stanza.kind != STANZA_KIND {
            return None;
        }
        self.unwrap(stanza).transpose()
    }

    fn fingerprint(&self) -> Option<String> {
        Some(crate::keys::PublicKey::Pq(Box::new(self.to_public())).fingerprint())
    }
}

impl FromStr for Recipient {
    type Err = KeyError;

    /// Parses `age1pq1...` (lowercase Bech32, as age writes it).
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let invalid = || KeyError::InvalidRecipient(shown::value(s));
        let bytes = keytext::decode(s, RECIPIENT_HRP).ok_or_else(invalid)?;
        let bytes: &[u8; PUBLIC_KEY_SIZE] = bytes.as_slice().try_into().map_err(|_| invalid())?;
        // The ML-KEM half must pass FIPS 203's encapsulation key check, and the X25519 half
        // must not be a low-order point, which would contribute nothing.
        EncapsulationKey::from_bytes(bytes)
            .map(Recipient)
            .ok_or_else(invalid)
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&keytext::encode(RECIPIENT_HRP, &self.0.to_bytes()))
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pq::Recipient({})", shown::value(&self.to_string()))
    }
}

impl FromStr for Identity {
    type Err = KeyError;

    /// Parses `AGE-SECRET-KEY-PQ-1...` (uppercase Bech32, as age writes it).
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let invalid = || KeyError::InvalidIdentity { line: 1 };
        let bytes = Zeroizing::new(keytext::decode(s, IDENTITY_HRP).ok_or_else(invalid)?);
        let seed: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| invalid())?;
        Ok(Identity::from_seed(seed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::recipient::{Identity as _, Recipient as _};

    const SPEC_EXAMPLE: &str = include_str!("../../testdata/pq/spec-example.key");

    #[test]
    fn the_spec_example_key_gives_the_spec_example_recipient() {
        let mut lines = SPEC_EXAMPLE.lines().filter(|l| !l.starts_with("# The"));
        let public = lines
            .next()
            .unwrap()
            .strip_prefix("# public key: ")
            .unwrap();
        let secret = lines.next().unwrap();
        let identity: Identity = secret.parse().unwrap();
        assert_eq!(identity.to_public().to_string(), public);
        assert_eq!(identity.to_secret_string().as_str(), secret);
        assert_eq!(public.parse::<Recipient>().unwrap(), identity.to_public());
    }

    #[test]
    fn keys_round_trip_through_their_text_forms() {
        let id = Identity::generate();
        let secret = id.to_secret_string();
        assert!(secret.starts_with("AGE-SECRET-KEY-PQ-1"));
        assert_eq!(secret.len(), 77);
        let back: Identity = secret.parse().unwrap();
        assert_eq!(back.to_public(), id.to_public());

        let public = id.to_public().to_string();
        assert!(public.starts_with("age1pq1"));
        assert_eq!(public.len(), 1959);
        assert_eq!(public.parse::<Recipient>().unwrap(), id.to_public());
    }

    #[test]
    fn text_forms_are_strict_about_case_hrp_and_checksum() {
        let id = Identity::generate();
        let public = id.to_public().to_string();
        assert!(public.to_uppercase().parse::<Recipient>().is_err());
        let secret = id.to_secret_string();
        assert!(secret.to_lowercase().parse::<Identity>().is_err());
        assert!(public.parse::<Identity>().is_err());
        assert!(secret.parse::<Recipient>().is_err());
        // Classical keys are not post-quantum keys, and the other way round.
        let classic = crate::keys::x25519::Identity::generate();
        assert!(classic
            .to_public()
            .to_string()
            .parse::<Recipient>()
            .is_err());
        assert!(classic.to_secret_string().parse::<Identity>().is_err());
        assert!(secret.parse::<crate::keys::x25519::Identity>().is_err());
        assert!(public.parse::<crate::keys::x25519::Recipient>().is_err());

        for at in [10, 1000, 1950] {
            let mut typo = public.clone();
            let swap = if &public[at..at + 1] == "q" { "p" } else { "q" };
            typo.replace_range(at..at + 1, swap);
            assert!(typo.parse::<Recipient>().is_err(), "typo at {at}");
        }
        // A valid checksum over the wrong length is still not a key.
        let short = keytext::encode(RECIPIENT_HRP, &[7u8; PUBLIC_KEY_SIZE - 1]);
        assert!(short.parse::<Recipient>().is_err());
        let short = keytext::encode(IDENTITY_HRP, &[7u8; 31]).to_uppercase();
        assert!(short.parse::<Identity>().is_err());
    }

    #[test]
    fn a_low_order_x25519_half_is_not_a_recipient() {
        let mut bytes = Identity::generate().to_public().0.to_bytes();
        bytes[PUBLIC_KEY_SIZE - 32..].fill(0);
        let text = keytext::encode(RECIPIENT_HRP, &bytes);
        assert!(text.parse::<Recipient>().is_err());
    }

    #[test]
    fn an_ml_kem_half_that_fails_the_fips_203_check_is_not_a_recipient() {
        // The first coefficient set to 0xfff (>= q = 3329): not a reduced encoding.
        let mut bytes = Identity::generate().to_public().0.to_bytes();
        bytes[0] = 0xff;
        bytes[1] |= 0x0f;
        let text = keytext::encode(RECIPIENT_HRP, &bytes);
        assert!(text.parse::<Recipient>().is_err());
    }

    #[test]
    fn wrap_then_unwrap_gives_the_file_key_back_only_to_its_owner() {
        let id = Identity::generate();
        let key = FileKey::generate();
        let stanzas = id.to_public().wrap(&key).unwrap();
        let [stanza] = stanzas.as_slice() else {
            panic!("one stanza")
        };
        assert_eq!(stanza.kind, "mlkem768x25519");
        assert_eq!(stanza.args.len(), 1);
        assert_eq!(stanza.args[0].len(), 1494, "1120 bytes of unpadded base64");
        assert_eq!(stanza.body.len(), 32);
        let got = id.unwrap_stanza(stanza).unwrap().unwrap();
        assert_eq!(got.expose_secret(), key.expose_secret());
        assert!(Identity::generate().unwrap_stanza(stanza).is_none());
        let classic = crate::keys::x25519::Identity::generate();
        assert!(classic.unwrap_stanza(stanza).is_none());
        assert!(id
            .unwrap_stanza(&classic.to_public().wrap(&key).unwrap()[0])
            .is_none());
    }

    #[test]
    fn a_tampered_encapsulation_does_not_open() {
        let id = Identity::generate();
        let stanza = id.to_public().wrap(&FileKey::generate()).unwrap().remove(0);
        let enc = decode_arg::<ENC_SIZE>(&stanza.args[0]).unwrap();
        // A byte of the ML-KEM ciphertext, then of the X25519 share.
        for at in [0, 500, 1087, 1088, 1100] {
            let mut bad = enc;
            bad[at] ^= 0x02;
            let mut tampered = stanza.clone();
            tampered.args = vec![encode_arg(&bad)];
            assert!(id.unwrap_stanza(&tampered).is_none(), "byte {at}");
        }
        let mut tampered = stanza.clone();
        tampered.body[31] ^= 1;
        assert!(id.unwrap_stanza(&tampered).is_none());
    }

    #[test]
    fn rejects_malformed_and_low_order_stanzas() {
        let id = Identity::generate();
        let stanza = id.to_public().wrap(&FileKey::generate()).unwrap().remove(0);
        let header_error = |s: &Stanza, what: &str| match id.unwrap_stanza(s) {
            Some(Err(DecryptError::InvalidHeader(m))) => assert!(m.contains(what), "{m}"),
            other => panic!("{what}: {:?}", other.map(|r| r.map(|_| ()))),
        };

        let mut other = stanza.clone();
        other.kind = "MLKEM768X25519".into();
        assert!(
            id.unwrap_stanza(&other).is_none(),
            "types are case-sensitive"
        );

        let mut low = stanza.clone();
        let mut enc = decode_arg::<ENC_SIZE>(&stanza.args[0]).unwrap();
        enc[ENC_SIZE - 32..].fill(0);
        low.args = vec![encode_arg(&enc)];
        header_error(&low, "low-order");

        let mut extra = stanza.clone();
        extra.args.push("extra".into());
        header_error(&extra, "one argument");
        let mut none = stanza.clone();
        none.args.clear();
        header_error(&none, "one argument");

        let mut short = stanza.clone();
        short.args = vec![encode_arg(&enc[..ENC_SIZE - 1])];
        header_error(&short, "1120 bytes");
        let mut long = stanza.clone();
        long.args = vec![encode_arg(&[enc.as_slice(), &[0]].concat())];
        header_error(&long, "1120 bytes");

        for len in [0, 31, 33, 48] {
            let mut body = stanza.clone();
            body.body.resize(len, 0);
            header_error(&body, "16-byte");
        }
    }

    #[test]
    fn post_quantum_recipients_carry_their_label() {
        let pq = Identity::generate().to_public();
        assert_eq!(pq.labels(), BTreeSet::from([POST_QUANTUM.to_string()]));
        let classic = crate::keys::x25519::Identity::generate().to_public();
        assert!(classic.labels().is_empty());
    }
}
