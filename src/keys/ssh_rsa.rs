//! `ssh-rsa` recipients and identities: RSA SSH keys, as age (and `rage`) use them.
//!
//! Wrapping: RSAES-OAEP with SHA-256 and the label `age-encryption.org/v1/ssh-rsa` encrypts
//! the file key to the public key; the stanza is `-> ssh-rsa TAG` where TAG names the key: the
//! first four bytes of SHA-256 of its SSH wire encoding. Keys under 2048 bits are refused when
//! parsed, on both sides.

use crate::error::{DecryptError, EncryptError};
use crate::format::{encode_arg, Stanza};
use crate::keys::recipient::{self, FileKey, FILE_KEY_SIZE};
use crate::keys::ssh_wire;
use crate::primitives::rsa::{PrivateKey, PublicKey};

const STANZA_KIND: &str = "ssh-rsa";
const LABEL: &[u8] = b"age-encryption.org/v1/ssh-rsa";

/// An RSA SSH public key: where files are sealed to.
#[derive(Clone)]
pub struct Recipient {
    key: PublicKey,
    tag: String,
}

/// An RSA private key. It has no `Debug`.
pub struct Identity {
    key: PrivateKey,
    public: Recipient,
}

impl Recipient {
    /// The recipient for an RSA public key.
    pub(crate) fn new(key: PublicKey) -> Recipient {
        let wire = ssh_wire::wire(ssh_key::public::KeyData::Rsa(ssh_wire::rsa_public(&key)));
        let tag = encode_arg(&ssh_wire::tag(&wire));
        Recipient { key, tag }
    }

    /// The RSA public key.
    pub(crate) fn key(&self) -> &PublicKey {
        &self.key
    }

    /// The tag its stanzas carry (unpadded base64 of 4 bytes).
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

impl Identity {
    /// The identity for an RSA private key.
    pub(crate) fn new(key: PrivateKey) -> Identity {
        let public = Recipient::new(key.public());
        Identity { key, public }
    }

    /// The matching recipient.
    pub fn to_public(&self) -> Recipient {
        self.public.clone()
    }

    pub(crate) fn key(&self) -> &PrivateKey {
        &self.key
    }

    fn unwrap(&self, stanza: &Stanza) -> Result<FileKey, DecryptError> {
        // Checked before the private-key operation: a body of any other size cannot be ours.
        if stanza.body.len() != self.public.key.size() {
            return Err(DecryptError::header(
                "ssh-rsa stanza body is not one block of its RSA key",
            ));
        }
        let file_key = self
            .key
            .decrypt(LABEL, &stanza.body)
            .ok_or_else(|| DecryptError::header("ssh-rsa stanza does not decrypt with its key"))?;
        if file_key.len() != FILE_KEY_SIZE {
            return Err(DecryptError::header(
                "ssh-rsa stanza holds no 16-byte file key",
            ));
        }
        Ok(FileKey::from_slice(&file_key).expect("checked to be 16 bytes"))
    }
}

impl recipient::Recipient for Recipient {
    fn wrap(&self, file_key: &FileKey) -> Result<Vec<Stanza>, EncryptError> {
        Ok(vec![Stanza {
            kind: STANZA_KIND.into(),
            args: vec![self.tag.clone()],
            body: self.key.encrypt(LABEL, file_key.expose_secret()),
        }])
    }
}

impl recipient::Identity for Identity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>> {
        if stanza.kind != STANZA_KIND {
            return None;
        }
        let [tag] = stanza.args.as_slice() else {
            return Some(Err(DecryptError::header(
                "ssh-rsa stanza needs exactly one argument",
            )));
        };
        // Another key's stanza (or a tag that is not canonical base64, which is no key's).
        if tag != &self.public.tag {
            return None;
        }
        Some(self.unwrap(stanza))
    }

    fn fingerprint(&self) -> Option<String> {
        Some(crate::keys::ssh::PublicKey::rsa(self.to_public(), "").fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::recipient::{Identity as _, Recipient as _};

    #[test]
    fn wrap_then_unwrap_only_for_the_tagged_key() {
        let id = Identity::new(PrivateKey::generate(2048).unwrap());
        let key = FileKey::generate();
        let stanzas = id.to_public().wrap(&key).unwrap();
        assert_eq!(stanzas.len(), 1);
        assert_eq!(stanzas[0].kind, "ssh-rsa");
        assert_eq!(stanzas[0].args, vec![id.to_public().tag().to_string()]);
        assert_eq!(stanzas[0].args[0].len(), 6);
        assert_eq!(stanzas[0].body.len(), 256);
        let got = id.unwrap_stanza(&stanzas[0]).unwrap().unwrap();
        assert_eq!(got.expose_secret(), key.expose_secret());

        let other = Identity::new(PrivateKey::generate(2048).unwrap());
        assert!(other.unwrap_stanza(&stanzas[0]).is_none(), "tag mismatch");

        let mut bad = stanzas[0].clone();
        bad.body[7] ^= 1;
        assert!(matches!(id.unwrap_stanza(&bad), Some(Err(_))));
        bad.body.pop();
        assert!(matches!(id.unwrap_stanza(&bad), Some(Err(_))));
        let mut extra = stanzas[0].clone();
        extra.args.push("x".into());
        assert!(matches!(id.unwrap_stanza(&extra), Some(Err(_))));
        extra.kind = "X25519".into();
        assert!(id.unwrap_stanza(&extra).is_none());
    }
}
