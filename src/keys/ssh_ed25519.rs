//! `ssh-ed25519` recipients and identities: Ed25519 SSH keys, as age (and `rage`) use them.
//!
//! The Ed25519 public key is mapped to its Montgomery form `M` (the birational map
//! `u = (1 + y) / (1 - y)`), and the private key to the X25519 scalar `SHA-512(seed)[..32]`
//! (the scalar Ed25519 itself uses). The wrap is X25519's, with one more step: the shared
//! secret is multiplied by a tweak bound to the SSH key, for domain separation from any other
//! use of the same key:
//!
//! ```text
//! tweak  = HKDF-SHA256(ikm = "", salt = SSH wire key, info = LABEL)
//! shared = X25519(tweak, X25519(ephemeral, M))
//! key    = HKDF-SHA256(ikm = shared, salt = share || M, info = LABEL)
//! -> ssh-ed25519 TAG base64(share)
//! ```

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha512};
use ssh_key::public::{Ed25519PublicKey, KeyData};
use zeroize::Zeroizing;

use crate::error::{DecryptError, EncryptError};
use crate::format::{decode_arg, encode_arg, Stanza};
use crate::keys::recipient::{self, FileKey, FILE_KEY_SIZE};
use crate::keys::ssh_wire;
use crate::primitives::{hkdf, open_once, seal_once, x25519, X25519Secret};

const STANZA_KIND: &str = "ssh-ed25519";
const LABEL: &[u8] = b"age-encryption.org/v1/ssh-ed25519";

/// An Ed25519 SSH public key: where files are sealed to.
#[derive(Clone)]
pub struct Recipient {
    ed25519: [u8; 32],
    montgomery: [u8; 32],
    tweak: [u8; 32],
    tag: String,
}

/// An Ed25519 private key. It has no `Debug`; its secrets are zeroized on drop.
pub struct Identity {
    seed: Zeroizing<[u8; 32]>,
    scalar: Zeroizing<[u8; 32]>,
    public: Recipient,
}

impl Recipient {
    /// The recipient for a 32-byte Ed25519 public key; `None` if it is not a valid point, or
    /// a point of small order (every shared secret would be zero).
    pub fn from_bytes(ed25519: &[u8; 32]) -> Option<Recipient> {
        let point = CompressedEdwardsY(*ed25519).decompress()?;
        let montgomery = point.to_montgomery().to_bytes();
        x25519(&[0x5a; 32], &montgomery)?;
        let wire = ssh_wire::wire(KeyData::Ed25519(Ed25519PublicKey(*ed25519)));
        Some(Recipient {
            ed25519: *ed25519,
            montgomery,
            tweak: *hkdf(&wire, &[], LABEL),
            tag: encode_arg(&ssh_wire::tag(&wire)),
        })
    }

    /// The Ed25519 public key bytes.
    pub fn ed25519_bytes(&self) -> &[u8; 32] {
        &self.ed25519
    }

    /// The tag its stanzas carry (unpadded base64 of 4 bytes).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    fn wrap_key(&self, shared: &[u8; 32], share: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
        let tweaked = x25519(&self.tweak, shared)?;
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(share);
        salt[32..].copy_from_slice(&self.montgomery);
        Some(hkdf(&salt, tweaked.as_ref(), LABEL))
    }
}

impl Identity {
    /// A new random key.
    pub fn generate() -> Identity {
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(seed.as_mut());
        Identity::from_seed(seed)
    }

    /// The identity for a 32-byte Ed25519 seed (the private key as OpenSSH stores it).
    pub fn from_seed(seed: Zeroizing<[u8; 32]>) -> Identity {
        let hash = Zeroizing::new(<[u8; 64]>::from(Sha512::digest(&seed[..])));
        let mut scalar = Zeroizing::new([0u8; 32]);
        scalar.copy_from_slice(&hash[..32]);
        let public = EdwardsPoint::mul_base_clamped(*scalar)
            .compress()
            .to_bytes();
        let public = Recipient::from_bytes(&public).expect("a public key from a seed is valid");
        Identity {
            seed,
            scalar,
            public,
        }
    }

    /// The matching recipient.
    pub fn to_public(&self) -> Recipient {
        self.public.clone()
    }

    pub(crate) fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    fn unwrap(&self, share: &str, body: &[u8]) -> Result<FileKey, DecryptError> {
        let share = decode_arg::<32>(share).ok_or_else(|| {
            DecryptError::header("ssh-ed25519 share is not 32 bytes of canonical base64")
        })?;
        if body.len() != FILE_KEY_SIZE + 16 {
            return Err(DecryptError::header(
                "ssh-ed25519 stanza body is not a 16-byte wrapped key",
            ));
        }
        let low_order = || DecryptError::header("ssh-ed25519 share is a low-order point");
        let shared = x25519(&self.scalar, &share).ok_or_else(low_order)?;
        let key = self
            .public
            .wrap_key(&shared, &share)
            .ok_or_else(low_order)?;
        open_once(&key, body)
            .and_then(|k| FileKey::from_slice(&k))
            .ok_or_else(|| DecryptError::header("ssh-ed25519 stanza does not decrypt with its key"))
    }
}

impl recipient::Recipient for Recipient {
    fn wrap(&self, file_key: &FileKey) -> Result<Vec<Stanza>, EncryptError> {
        let mut ephemeral = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(ephemeral.as_mut());
        let ephemeral = X25519Secret::new(&ephemeral);
        let share = ephemeral.public();
        let shared = (ephemeral.agree(&self.montgomery)).expect("recipients are not low-order");
        let key = self
            .wrap_key(&shared, &share)
            .expect("a non-zero shared secret times a clamped tweak is not zero");
        Ok(vec![Stanza {
            kind: STANZA_KIND.into(),
            args: vec![self.tag.clone(), encode_arg(&share)],
            body: seal_once(&key, file_key.expose_secret()),
        }])
    }
}

impl recipient::Identity for Identity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>> {
        if stanza.kind != STANZA_KIND {
            return None;
        }
        let [tag, share] = stanza.args.as_slice() else {
            return Some(Err(DecryptError::header(
                "ssh-ed25519 stanza needs exactly two arguments",
            )));
        };
        if tag != &self.public.tag {
            return None;
        }
        Some(self.unwrap(share, &stanza.body))
    }

    fn fingerprint(&self) -> Option<String> {
        Some(crate::keys::ssh::PublicKey::ed25519(self.to_public()).fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::recipient::{Identity as _, Recipient as _};

    #[test]
    fn wrap_then_unwrap_only_for_the_tagged_key() {
        let id = Identity::generate();
        let key = FileKey::generate();
        let stanzas = id.to_public().wrap(&key).unwrap();
        assert_eq!(stanzas[0].kind, "ssh-ed25519");
        assert_eq!(stanzas[0].args.len(), 2);
        let got = id.unwrap_stanza(&stanzas[0]).unwrap().unwrap();
        assert_eq!(got.expose_secret(), key.expose_secret());
        assert!(Identity::generate().unwrap_stanza(&stanzas[0]).is_none());

        let mut bad = stanzas[0].clone();
        bad.body[0] ^= 1;
        assert!(matches!(id.unwrap_stanza(&bad), Some(Err(_))));
        let mut low = stanzas[0].clone();
        low.args[1] = encode_arg(&[0u8; 32]);
        assert!(matches!(
            id.unwrap_stanza(&low),
            Some(Err(DecryptError::InvalidHeader(m))) if m.contains("low-order")
        ));
        low.args.pop();
        assert!(matches!(id.unwrap_stanza(&low), Some(Err(_))));
    }

    #[test]
    fn the_public_key_matches_rfc8032() {
        // RFC 8032 section 7.1, test 1: secret key and public key.
        let hex = |s: &str| -> [u8; 32] { crate::primitives::from_hex(s).try_into().unwrap() };
        let seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let public = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let id = Identity::from_seed(Zeroizing::new(seed));
        assert_eq!(id.to_public().ed25519_bytes(), &public);
    }
}
