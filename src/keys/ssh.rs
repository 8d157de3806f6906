//! SSH keys as age recipients and identities: the OpenSSH files that carry them.
//!
//! [`PublicKey`] is an `authorized_keys` line, [`PrivateKey`] an OpenSSH private key file
//! (passphrase-protected or not), each of either type: [`crate::keys::ssh_rsa`] or
//! [`crate::keys::ssh_ed25519`], where the stanzas are made and opened.

use std::fmt;

use base64::Engine;
use ssh_key::private::{Ed25519Keypair, Ed25519PrivateKey, KeypairData, RsaKeypair};
use ssh_key::public::{Ed25519PublicKey, KeyData};
use ssh_key::{HashAlg, LineEnding, Mpint};
use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::keys::recipient::{Identity, Recipient};
use crate::keys::ssh_wire::rsa_public;
use crate::primitives::rsa::{self, RsaKeyError};
use crate::shown;
use crate::{ssh_ed25519, ssh_rsa};

/// Asks for the passphrase of a protected key, only when one is met. The library never
/// prompts: the caller decides where a passphrase comes from.
pub type Passphrase<'a> = &'a mut dyn FnMut() -> Result<Zeroizing<String>, KeyError>;

/// An SSH public key of a type files can be sealed to, with its comment.
#[derive(Clone)]
pub struct PublicKey {
    key: Key,
    comment: String,
}

#[derive(Clone)]
enum Key {
    Rsa(ssh_rsa::Recipient),
    Ed25519(ssh_ed25519::Recipient),
}

impl PublicKey {
    /// An Ed25519 key without a comment.
    pub(crate) fn ed25519(key: ssh_ed25519::Recipient) -> PublicKey {
        let (key, comment) = (Key::Ed25519(key), String::new());
        PublicKey { key, comment }
    }

    /// Parses one `authorized_keys`-style line: `ssh-rsa AAAA... comment` or `ssh-ed25519 ...`.
    pub fn from_openssh(line: &str) -> Result<PublicKey, KeyError> {
        if let Some(e) = unsupported_line(line) {
            return Err(e);
        }
        let invalid = || KeyError::InvalidRecipient(shown::value(line));
        let parsed = ssh_key::PublicKey::from_openssh(line).map_err(|_| invalid())?;
        let key = match parsed.key_data() {
            KeyData::Rsa(k) => {
                let (n, e) = (positive(&k.n), positive(&k.e));
                let key =
                    rsa::PublicKey::from_components(n.ok_or_else(invalid)?, e.ok_or_else(invalid)?)
                        .map_err(|e| rsa_error(e, invalid()))?;
                Key::Rsa(ssh_rsa::Recipient::new(key))
            }
            KeyData::Ed25519(k) => {
                Key::Ed25519(ssh_ed25519::Recipient::from_bytes(&k.0).ok_or_else(invalid)?)
            }
            other => return Err(unsupported(other.algorithm().as_str())),
        };
        Ok(PublicKey {
            key,
            comment: parsed.comment().to_string(),
        })
    }

    /// The public half of an OpenSSH private key file, stored there in the clear (even when
    /// the private half is passphrase-protected).
    pub fn of_openssh_private(pem: &str) -> Result<PublicKey, KeyError> {
        let parsed = ssh_key::PrivateKey::from_openssh(pem)
            .map_err(|_| KeyError::Unusable("not a valid OpenSSH private key".into()))?;
        let mut public = parsed.public_key().clone();
        public.set_comment(parsed.comment());
        let line = public
            .to_openssh()
            .map_err(|_| KeyError::Unusable("not a valid OpenSSH private key".into()))?;
        PublicKey::from_openssh(&line)
    }

    pub(crate) fn rsa(key: ssh_rsa::Recipient, comment: &str) -> PublicKey {
        PublicKey {
            key: Key::Rsa(key),
            comment: comment.into(),
        }
    }

    /// The recipient this key seals to.
    pub fn to_recipient(&self) -> Box<dyn Recipient> {
        match &self.key {
            Key::Rsa(r) => Box::new(r.clone()),
            Key::Ed25519(r) => Box::new(r.clone()),
        }
    }

    fn ssh_key(&self) -> ssh_key::PublicKey {
        let data = match &self.key {
            Key::Rsa(r) => KeyData::Rsa(rsa_public(r.key())),
            Key::Ed25519(r) => KeyData::Ed25519(Ed25519PublicKey(*r.ed25519_bytes())),
        };
        ssh_key::PublicKey::new(data, self.comment.clone())
    }

    /// The key size in bits, as `ssh-keygen -l` shows it.
    pub fn bits(&self) -> usize {
        match &self.key {
            Key::Rsa(r) => r.key().bits(),
            Key::Ed25519(_) => 256,
        }
    }

    /// The comment after the key on its line (possibly empty).
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// `SHA256:` and the unpadded base64 of SHA-256 of the wire encoding, as OpenSSH shows it.
    pub fn fingerprint(&self) -> String {
        self.ssh_key().fingerprint(HashAlg::Sha256).to_string()
    }

    /// The line `ssh-keygen -l` prints: bits, fingerprint, comment and type.
    pub fn fingerprint_line(&self) -> String {
        let comment = match self.comment.as_str() {
            "" => "no comment",
            c => c,
        };
        let kind = match self.key {
            Key::Rsa(_) => "RSA",
            Key::Ed25519(_) => "ED25519",
        };
        format!("{} {} {comment} ({kind})", self.bits(), self.fingerprint())
    }
}

/// The `authorized_keys` line: `ssh-ed25519 AAAA... comment`.
impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ssh_key().to_openssh().map_err(|_| fmt::Error)?)
    }
}

/// An SSH private key of a type that can open files, with its comment.
pub struct PrivateKey {
    key: Secret,
    comment: String,
}

enum Secret {
    Rsa(ssh_rsa::Identity),
    Ed25519(ssh_ed25519::Identity),
}

impl PrivateKey {
    /// Parses an OpenSSH private key file (`BEGIN OPENSSH PRIVATE KEY`), asking `passphrase`
    /// if it is protected.
    pub fn from_openssh(pem: &str, passphrase: Passphrase<'_>) -> Result<PrivateKey, KeyError> {
        let invalid = || KeyError::Unusable("not a valid OpenSSH private key".into());
        let mut parsed =
            ssh_key::PrivateKey::from_openssh(pem).map_err(|_| unparsed_private_key(pem))?;
        if parsed.is_encrypted() {
            let algorithm = parsed.algorithm();
            if !matches!(
                algorithm,
                ssh_key::Algorithm::Rsa { .. } | ssh_key::Algorithm::Ed25519
            ) {
                return Err(unsupported(algorithm.as_str()));
            }
            let pass = passphrase()?;
            parsed = parsed
                .decrypt(pass.as_bytes())
                .map_err(|_| KeyError::WrongPassphrase)?;
        }
        let key = match parsed.key_data() {
            KeypairData::Rsa(k) => {
                let (n, e) = (num(&k.public.n)?, num(&k.public.e)?);
                let (d, p, q) = (num(&k.private.d)?, num(&k.private.p)?, num(&k.private.q)?);
                let key = rsa::PrivateKey::from_components(n, e, d, p, q)
                    .map_err(|e| rsa_error(e, invalid()))?;
                Secret::Rsa(ssh_rsa::Identity::new(key))
            }
            KeypairData::Ed25519(k) => {
                let id = ssh_ed25519::Identity::from_seed(Zeroizing::new(k.private.to_bytes()));
                // Without ed25519-dalek, ssh-key does not check that the halves match: we do.
                if id.to_public().ed25519_bytes() != &k.public.0 {
                    return Err(invalid());
                }
                Secret::Ed25519(id)
            }
            other => {
                let name = other.algorithm().map(|a| a.as_str().to_string());
                return Err(unsupported(name.as_deref().unwrap_or("this key type")));
            }
        };
        Ok(PrivateKey {
            key,
            comment: parsed.comment().to_string(),
        })
    }

    /// An RSA key read from PEM (PKCS#1 or PKCS#8), which has no comment.
    pub(crate) fn rsa(key: rsa::PrivateKey) -> PrivateKey {
        PrivateKey {
            key: Secret::Rsa(ssh_rsa::Identity::new(key)),
            comment: String::new(),
        }
    }

    /// A new Ed25519 key.
    pub fn generate_ed25519(comment: &str) -> PrivateKey {
        PrivateKey {
            key: Secret::Ed25519(ssh_ed25519::Identity::generate()),
            comment: comment.into(),
        }
    }

    /// A new RSA key of `bits` bits.
    pub fn generate_rsa(bits: usize, comment: &str) -> Result<PrivateKey, KeyError> {
        let key = rsa::PrivateKey::generate(bits).map_err(|e| rsa_key_error(e, "RSA key"))?;
        Ok(PrivateKey {
            key: Secret::Rsa(ssh_rsa::Identity::new(key)),
            comment: comment.into(),
        })
    }

    /// The public half, with the same comment.
    pub fn to_public(&self) -> PublicKey {
        let key = match &self.key {
            Secret::Rsa(id) => Key::Rsa(id.to_public()),
            Secret::Ed25519(id) => Key::Ed25519(id.to_public()),
        };
        PublicKey {
            key,
            comment: self.comment.clone(),
        }
    }

    /// The identity that opens files sealed to this key.
    pub fn into_identity(self) -> Box<dyn Identity> {
        match self.key {
            Secret::Rsa(id) => Box::new(id),
            Secret::Ed25519(id) => Box::new(id),
        }
    }

    /// The key in the OpenSSH private key format, protected by `passphrase` if given (as
    /// `ssh-keygen` does: bcrypt-pbkdf and AES-256-CTR), else unencrypted. Handle with care.
    pub fn to_openssh(&self, passphrase: Option<&str>) -> Zeroizing<String> {
        let data = match &self.key {
            Secret::Rsa(id) => {
                let [d, iqmp, p, q] = id.key().secret_components();
                let mpint = |b: &[u8]| Mpint::from_positive_bytes(b).expect("a positive number");
                KeypairData::Rsa(RsaKeypair {
                    public: rsa_public(id.to_public().key()),
                    private: ssh_key::private::RsaPrivateKey {
                        d: mpint(&d),
                        iqmp: mpint(&iqmp),
                        p: mpint(&p),
                        q: mpint(&q),
                    },
                })
            }
            Secret::Ed25519(id) => KeypairData::Ed25519(Ed25519Keypair {
                public: Ed25519PublicKey(*id.to_public().ed25519_bytes()),
                private: Ed25519PrivateKey::from_bytes(id.seed()),
            }),
        };
        let key = ssh_key::PrivateKey::new(data, self.comment.clone())
            .expect("a valid key pair always encodes");
        let key = match passphrase {
            Some(pass) => key
                .encrypt(&mut rand_core::OsRng, pass)
                .expect("an unencrypted key always encrypts"),
            None => key,
        };
        key.to_openssh(LineEnding::LF)
            .expect("a valid key pair always encodes")
    }
}

fn positive(m: &Mpint) -> Option<&[u8]> {
    m.as_positive_bytes()
}

fn num(m: &Mpint) -> Result<&[u8], KeyError> {
    positive(m).ok_or_else(|| KeyError::Unusable("not a valid OpenSSH private key".into()))
}

fn rsa_error(e: RsaKeyError, otherwise: KeyError) -> KeyError {
    match e {
        RsaKeyError::Size(0) => KeyError::Unusable(format!(
            "the RSA key is too small: keys under {} bits are refused",
            rsa::MIN_BITS
        )),
        RsaKeyError::Size(bits) if bits < rsa::MIN_BITS => KeyError::Unusable(format!(
            "the RSA key has {bits} bits: keys under {} bits are refused",
            rsa::MIN_BITS
        )),
        RsaKeyError::Size(_) => KeyError::Unusable(e.to_string()),
        RsaKeyError::Invalid => otherwise,
    }
}

pub(crate) fn rsa_key_error(e: RsaKeyError, what: &str) -> KeyError {
    rsa_error(e, KeyError::Unusable(format!("not a valid {what}")))
}

/// SSH key types seal does not use: neither recipients and identities in age, nor client
/// keys that sign.
pub(crate) const OTHER_TYPES: &[&str] = &[
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "ssh-dss",
];

/// The unsupported key type named in a key's bytes, if any.
/// Why an OpenSSH private key file did not parse. This build decodes RSA and Ed25519 keys
/// only: name any other type the file holds.
pub(crate) fn unparsed_private_key(pem: &str) -> KeyError {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let decoded = base64::engine::general_purpose::STANDARD.decode(body.trim());
    match decoded.ok().and_then(|d| other_type(&d)) {
        Some(name) => unsupported(name),
        None => KeyError::Unusable("not a valid OpenSSH private key".into()),
    }
}

fn other_type(bytes: &[u8]) -> Option<&'static str> {
    OTHER_TYPES
        .iter()
        .find(|t| bytes.windows(t.len()).any(|w| w == t.as_bytes()))
        .copied()
}

/// The error for a public key line of a type age cannot seal to; `None` for other lines.
pub(crate) fn unsupported_line(line: &str) -> Option<KeyError> {
    let kind = line.split_whitespace().next()?;
    OTHER_TYPES.contains(&kind).then(|| unsupported(kind))
}

fn unsupported(algorithm: &str) -> KeyError {
    KeyError::Unusable(format!(
        "{algorithm} keys are not supported: use an ssh-rsa or ssh-ed25519 key"
    ))
}
