//! X25519 recipients (`age1...`) and identities (`AGE-SECRET-KEY-1...`), as age v1 defines them.
//!
//! Wrapping: an ephemeral key pair `e, E`; the shared secret `X25519(e, R)` (never all zero);
//! a wrap key `HKDF-SHA256(shared, salt = E || R, info = "age-encryption.org/v1/X25519")`;
//! the stanza `-> X25519 base64(E)` whose body is the file key under ChaCha20-Poly1305.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::error::{DecryptError, EncryptError, KeyError};
use crate::format::{decode_arg, encode_arg, Stanza};
use crate::keys::keytext;
use crate::keys::recipient::{self, FileKey, FILE_KEY_SIZE};
use crate::primitives::{hkdf, open_once, seal_once, x25519, X25519Peer, X25519Secret};
use crate::shown;

const STANZA_KIND: &str = "X25519";
const LABEL: &[u8] = b"age-encryption.org/v1/X25519";
const RECIPIENT_HRP: &str = "age";
const IDENTITY_HRP: &str = "AGE-SECRET-KEY-";

/// An X25519 public key: where files are sealed to. Sealing many files to one recipient
/// gets faster after the first two: a table of the point's multiples takes the place of the
/// ladder (`src/primitives/peer.rs`).
#[derive(Clone)]
pub struct Recipient(X25519Peer);

impl PartialEq for Recipient {
    fn eq(&self, other: &Recipient) -> bool {
        self.0.point() == other.0.point()
    }
}

impl Eq for Recipient {}

/// An X25519 private key. It has no `Debug`; its text form is zeroized after use.
///
/// The public key is computed once, here (every unwrap needs it for the HKDF salt), and the
/// backend's form of the key is made once, for every file it opens.
#[derive(Clone)]
pub struct Identity {
    secret: Zeroizing<[u8; 32]>,
    public: [u8; 32],
    key: Arc<X25519Secret>,
}

impl Identity {
    /// A new random identity.
    pub fn generate() -> Identity {
        Identity::from_secret(random_scalar())
    }

    fn from_secret(secret: Zeroizing<[u8; 32]>) -> Identity {
        let key = X25519Secret::new(&secret);
        let public = key.public();
        Identity {
            secret,
            public,
            key: Arc::new(key),
        }
    }

    /// The matching recipient.
    pub fn to_public(&self) -> Recipient {
        Recipient(X25519Peer::new(self.public))
    }

    /// The `AGE-SECRET-KEY-1...` form. Handle with care: it is the secret.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        let encoded = Zeroizing::new(keytext::encode(IDENTITY_HRP, self.secret.as_ref()));
        Zeroizing::new(encoded.to_uppercase())
    }

    fn unwrap(&self, stanza: &Stanza) -> Result<Option<FileKey>, DecryptError> {
        let [share] = stanza.args.as_slice() else {
            return Err(DecryptError::header(
                "X25519 stanza needs exactly one argument",
            ));
        };
        let share = decode_arg::<32>(share).ok_or_else(|| {
            DecryptError::header("X25519 share is not 32 bytes of canonical base64")
        })?;
        if stanza.body.len() != FILE_KEY_SIZE + 16 {
            return Err(DecryptError::header(
                "X25519 stanza body is not a 16-byte wrapped key",
            ));
        }
        let shared = (self.key.agree(&share))
            .ok_or_else(|| DecryptError::header("X25519 share is a low-order point"))?;
        let key = wrap_key(&shared, &share, &self.public);
        Ok(open_once(&key, &stanza.body).and_then(|k| FileKey::from_slice(&k)))
    }
}

fn random_scalar() -> Zeroizing<[u8; 32]> {
    let mut secret = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(secret.as_mut());
    secret
}

fn wrap_key(shared: &[u8; 32], share: &[u8; 32], recipient: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(share);
    salt[32..].copy_from_slice(recipient);
    hkdf(&salt, shared, LABEL)
}

impl recipient::Recipient for Recipient {
    fn wrap(&self, file_key: &FileKey) -> Result<Vec<Stanza>, EncryptError> {
        // An ephemeral secret from the OS RNG and a valid public key always contribute, so
        // the all-zero shared secret cannot happen here; the identity side checks it anyway.
        let ephemeral = random_scalar();
        let (share, shared) = self.0.exchange(&ephemeral);
        let shared = shared.expect("recipients are checked not low-order");
        let key = wrap_key(&shared, &share, self.0.point());
        Ok(vec![Stanza {
            kind: STANZA_KIND.into(),
            args: vec![encode_arg(&share)],
            body: seal_once(&key, file_key.expose_secret()),
        }])
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
        Some(crate::keys::PublicKey::X25519(self.to_public()).fingerprint())
    }
}

impl FromStr for Recipient {
    type Err = KeyError;

    /// Parses `age1...` (lowercase Bech32, as age writes it).
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let invalid = || KeyError::InvalidRecipient(shown::value(s));
        let bytes = keytext::decode(s, RECIPIENT_HRP).ok_or_else(invalid)?;
        let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| invalid())?;
        // A low-order point would make every shared secret zero: not a usable recipient.
        if x25519(&[0x5a; 32], &bytes).is_none() {
            return Err(invalid());
        }
        Ok(Recipient(X25519Peer::new(bytes)))
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&keytext::encode(RECIPIENT_HRP, self.0.point()))
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "x25519::Recipient({self})")
    }
}

impl FromStr for Identity {
    type Err = KeyError;

    /// Parses `AGE-SECRET-KEY-1...` (uppercase Bech32, as age writes it).
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let invalid = || KeyError::InvalidIdentity { line: 1 };
        let bytes = Zeroizing::new(keytext::decode(s, IDENTITY_HRP).ok_or_else(invalid)?);
        let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| invalid())?;
        Ok(Identity::from_secret(Zeroizing::new(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::recipient::{Identity as _, Recipient as _};
    use bech32::{Bech32, Hrp};

    #[test]
    fn keys_round_trip_through_their_text_forms() {
        let id = Identity::generate();
        let secret = id.to_secret_string();
        assert!(secret.starts_with("AGE-SECRET-KEY-1"));
        assert_eq!(secret.len(), 74);
        let back: Identity = secret.parse().unwrap();
        assert_eq!(back.to_public(), id.to_public());

        let public = id.to_public().to_string();
        assert!(public.starts_with("age1"));
        assert_eq!(public.len(), 62);
        assert_eq!(public.parse::<Recipient>().unwrap(), id.to_public());
    }

    #[test]
    fn text_forms_are_strict_about_case_hrp_and_checksum() {
        let id = Identity::generate();
        let public = id.to_public().to_string();
        assert!(public.to_uppercase().parse::<Recipient>().is_err());
        assert!(id
            .to_secret_string()
            .to_lowercase()
            .parse::<Identity>()
            .is_err());
        assert!(public.parse::<Identity>().is_err());
        assert!(id.to_secret_string().parse::<Recipient>().is_err());
        let mut typo = public.clone();
        typo.replace_range(10..11, if &public[10..11] == "q" { "p" } else { "q" });
        assert!(typo.parse::<Recipient>().is_err());
    }

    #[test]
    fn a_low_order_point_is_not_a_recipient() {
        // The all-zero point, and the point of order 8 used by the C2SP low-order vector.
        let order_8 = "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800";
        let order_8 = crate::primitives::from_hex(order_8);
        for point in [vec![0u8; 32], order_8] {
            let text = bech32::encode::<Bech32>(Hrp::parse_unchecked("age"), &point).unwrap();
            assert!(text.parse::<Recipient>().is_err(), "{text}");
        }
    }

    #[test]
    fn wrap_then_unwrap_gives_the_file_key_back_only_to_its_owner() {
        let id = Identity::generate();
        let key = FileKey::generate();
        let stanzas = id.to_public().wrap(&key).unwrap();
        assert_eq!(stanzas.len(), 1);
        let got = id.unwrap_stanza(&stanzas[0]).unwrap().unwrap();
        assert_eq!(got.expose_secret(), key.expose_secret());
        assert!(Identity::generate().unwrap_stanza(&stanzas[0]).is_none());
    }

    #[test]
    fn rejects_malformed_and_low_order_stanzas() {
        let id = Identity::generate();
        let mut stanza = id.to_public().wrap(&FileKey::generate()).unwrap().remove(0);
        let mut other = stanza.clone();
        other.kind = "x25519".into();
        assert!(
            id.unwrap_stanza(&other).is_none(),
            "types are case-sensitive"
        );

        stanza.args = vec![encode_arg(&[0u8; 32])];
        assert!(matches!(
            id.unwrap_stanza(&stanza),
            Some(Err(DecryptError::InvalidHeader(m))) if m.contains("low-order")
        ));
        stanza.args.push("extra".into());
        assert!(matches!(id.unwrap_stanza(&stanza), Some(Err(_))));
        stanza.args = vec![encode_arg(&[9u8; 32])];
        stanza.body.push(0);
        assert!(matches!(id.unwrap_stanza(&stanza), Some(Err(_))));
    }
}
