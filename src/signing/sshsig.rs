//! Who sent a file: detached signatures over sealed files, in OpenSSH's SSHSIG format.
//!
//! A client signs the sealed bytes (the whole `.age` file, header and payload) with its SSH
//! key; the signature travels beside the file as `FILE.age.sig`, the PEM armor that
//! `ssh-keygen -Y sign` writes, so that `ssh-keygen -Y verify -n seal` checks it too. The
//! format is PROTOCOL.sshsig from OpenSSH:
//!
//! ```text
//! signed data = "SSHSIG" || string namespace || string reserved || string hash_algorithm
//!               || string H(message)
//! blob        = "SSHSIG" || uint32 1 || string publickey || string namespace
//!               || string reserved || string hash_algorithm || string signature
//! ```
//!
//! The namespace is always [`NAMESPACE`], so a signature made for another purpose with the
//! same key (a git commit, a file signed with `-n file`) can never pass for one of ours, and
//! ours never for theirs.
//!
//! A client key is Ed25519, or RSA of [`MIN_BITS`] bits or more: an RSA key signs with
//! `rsa-sha2-512` (PKCS#1 v1.5 over SHA-512), as `ssh-keygen` does; `rsa-sha2-256` is
//! checked too, and `ssh-rsa` (over SHA-1) refused, as OpenSSH refuses it.
//!
//! Signing and checking take a [`Digest`] of the sealed bytes rather than the bytes
//! themselves, so the caller can hash while it does something else with them (decrypt).
//! We sign with SHA-256, which PROTOCOL.sshsig allows beside SHA-512: x86-64 CPUs hash it
//! in hardware (SHA-NI), four times faster than SHA-512 on the machines we measured, and the
//! hash of a large upload is the one step of checking it that cannot be spread over cores.
//! Signatures over SHA-512 (`ssh-keygen -Y sign`'s default) are checked too.
//!
//! # Binding the signer to the file
//!
//! A signature alone proves who signed the bytes, not who sealed them: Mallory, another
//! allowed client, could take Alice's sealed upload, drop her signature and sign it himself.
//! So a signed file names its signer inside the header, in one extra stanza
//!
//! ```text
//! -> seal-signer SHA256:<fingerprint of the signer's key>
//! ```
//!
//! with an empty body, covered by the header MAC. Only someone who knows the file key can
//! write a valid header, and Mallory cannot unwrap it (the file is sealed to the server), so
//! he can neither remove Alice's name nor put in his own. [`Signature::verify_bound`] accepts
//! a signature only when its key is the one the (MAC-checked) header names. age identities
//! skip stanza types they do not know, so age and rage still open signed files.
//!
//! The server key does not help a forger either: it can open the file and write a new header
//! naming anyone, but a signature still needs the client's private key.
//!
//! Which signer is *allowed* is not this module's business: see
//! [`crate::signing::allowed_signers`]. This module only answers "did the holder of this key sign
//! exactly these bytes, for seal?".

use std::fmt;

use sha2::{Digest as _, Sha256, Sha512};
use ssh_key::public::KeyData;
use ssh_key::{HashAlg, LineEnding, SshSig};
use zeroize::Zeroizing;

use crate::engine::encrypt::Encryptor;
use crate::error::{EncryptError, KeyError};
use crate::format::Stanza;
use crate::keys::recipient::Recipient;
use crate::keys::ssh::Passphrase;
use crate::primitives::rsa::{self, RsaKeyError, SignatureHash, MAX_BITS, MIN_BITS};

/// The SSHSIG namespace of every seal signature: `ssh-keygen -Y verify -n seal`.
pub const NAMESPACE: &str = "seal";

/// The type of the header stanza that names a file's signer.
pub(crate) const SIGNER_STANZA: &str = "seal-signer";

/// The SSHSIG magic preamble, which keeps these signatures apart from SSH authentication.
const MAGIC: &[u8] = b"SSHSIG";

/// The hash of the sealed bytes that a signature covers, SHA-256 or SHA-512.
#[derive(Clone, PartialEq, Eq)]
pub struct Digest {
    alg: HashAlg,
    bytes: Vec<u8>,
}

impl Digest {
    /// The SHA-256 digest of `sealed`, in one go: what [`SigningKey::sign`] signs.
    pub fn of(sealed: &[u8]) -> Digest {
        let mut hasher = Hasher::new();
        hasher.update(sealed);
        hasher.finish()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({}:", self.alg.as_str())?;
        for b in &self.bytes[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "...)")
    }
}

/// The digest of sealed bytes that arrive in pieces (a stream, chunks of a map).
#[derive(Clone)]
pub struct Hasher(State);

#[derive(Clone)]
enum State {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Default for Hasher {
    fn default() -> Hasher {
        Hasher::new()
    }
}

impl Hasher {
    /// An empty SHA-256 hasher, the hash seal signs with.
    pub fn new() -> Hasher {
        Hasher(State::Sha256(Sha256::new()))
    }

    /// An empty hasher for `alg`; `None` for a hash SSHSIG does not allow.
    fn with(alg: HashAlg) -> Option<Hasher> {
        match alg {
            HashAlg::Sha256 => Some(Hasher(State::Sha256(Sha256::new()))),
            HashAlg::Sha512 => Some(Hasher(State::Sha512(Sha512::new()))),
            _ => None,
        }
    }

    /// Feeds the next bytes of the sealed file, in order.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.0 {
            State::Sha256(h) => h.update(bytes),
            State::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        match self.0 {
            State::Sha256(h) => Digest {
                alg: HashAlg::Sha256,
                bytes: h.finalize().to_vec(),
            },
            State::Sha512(h) => Digest {
                alg: HashAlg::Sha512,
                bytes: h.finalize().to_vec(),
            },
        }
    }
}

/// Why a signature does not vouch for a file, or could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// Not an SSHSIG PEM block, or a damaged one.
    #[error("not a valid SSH signature (expected -----BEGIN SSH SIGNATURE-----)")]
    Malformed,
    /// A well-formed signature made for another purpose than seal.
    #[error("signature made for namespace {0:?}, not {NAMESPACE:?}")]
    Namespace(String),
    /// A well-formed signature over a hash that SSHSIG does not allow.
    #[error("signature uses hash {0:?}; SSH signatures use sha256 or sha512")]
    HashAlgorithm(String),
    /// A signature by (or a signing key of) a type this crate does not sign or check with.
    #[error("{0} keys are not supported for signatures (use ssh-ed25519 or ssh-rsa)")]
    UnsupportedKey(String),
    /// An `ssh-rsa` signer key outside the sizes signatures are made and checked with.
    #[error(
        "RSA key of {0} bits is too {which} for a signature ({limit})",
        which = if *.0 < MIN_BITS { "small" } else { "large" },
        limit = if *.0 < MIN_BITS { format!("at least {MIN_BITS}") } else { format!("at most {MAX_BITS}") },
    )]
    RsaKeySize(usize),
    /// An RSA signature of algorithm `ssh-rsa`: PKCS#1 v1.5 over SHA-1, which OpenSSH no
    /// longer accepts either.
    #[error("signature uses ssh-rsa (RSA with SHA-1), which is refused: sign with rsa-sha2-512 or rsa-sha2-256")]
    RsaSha1,
    /// The signature is good, but the file names no signer in its header: anyone could have
    /// signed it after the fact.
    #[error("the file does not name a signer in its header, so its signature proves nothing")]
    Unbound,
    /// The signature is good, but by another key than the one the header names: re-signed.
    #[error("signed by {signed}, but the file names {named} as its signer (re-signed)")]
    WrongSigner {
        /// Fingerprint of the key that signed.
        signed: String,
        /// Fingerprint the header names.
        named: String,
    },
    /// More than one signer stanza, or one not of the form `seal-signer FINGERPRINT`.
    #[error("malformed {SIGNER_STANZA} stanza in the header")]
    MalformedBinding,
    /// The signature does not match the file: the file or the signature was changed, or the
    /// signature belongs to another file.
    #[error(
        "bad signature: the file or its signature was altered, or they do not belong together"
    )]
    Invalid,
}

/// The public key of a signer, as it appears in a signature and in an allowed-signers list.
#[derive(Clone, PartialEq, Eq)]
pub struct SignerKey(KeyData);

impl SignerKey {
    /// Parses a public key as OpenSSH writes it: `ssh-ed25519 AAAA...`, with or without a
    /// comment.
    pub fn from_openssh(text: &str) -> Result<SignerKey, KeyError> {
        ssh_key::PublicKey::from_openssh(text.trim())
            .map(|k| SignerKey(k.key_data().clone()))
            .map_err(|_| KeyError::InvalidRecipient(crate::shown::value(text)))
    }

    /// `SHA256:` and the unpadded base64 of SHA-256 of the key's wire encoding, as
    /// `ssh-keygen -l` shows it.
    pub fn fingerprint(&self) -> String {
        self.0.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The key type, as OpenSSH names it: `ssh-ed25519`, `ssh-rsa`.
    pub fn algorithm(&self) -> String {
        self.0.algorithm().as_str().to_string()
    }

    /// The key as one OpenSSH line without a comment: `ssh-ed25519 AAAA...`.
    pub fn to_openssh(&self) -> String {
        ssh_key::PublicKey::new(self.0.clone(), "")
            .to_openssh()
            .unwrap_or_default()
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignerKey({} {})", self.algorithm(), self.fingerprint())
    }
}

impl fmt::Display for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_openssh())
    }
}

/// A client's private key, which signs sealed files. Its `Debug` shows the public half only.
pub struct SigningKey {
    key: ssh_key::PrivateKey,
    /// The RSA arithmetic of an `ssh-rsa` key (checked, on this build's backend); `None` for
    /// Ed25519.
    rsa: Option<rsa::PrivateKey>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({:?})", self.public_key())
    }
}

impl SigningKey {
    /// Reads an OpenSSH private key file (`BEGIN OPENSSH PRIVATE KEY`), asking `passphrase`
    /// if it is protected. Ed25519 keys, and RSA keys of at least [`MIN_BITS`] bits (which
    /// sign with `rsa-sha2-512`, as `ssh-keygen -Y sign` does).
    pub fn from_openssh(pem: &str, passphrase: Passphrase<'_>) -> Result<SigningKey, KeyError> {
        let mut key = ssh_key::PrivateKey::from_openssh(pem)
            .map_err(|_| crate::keys::ssh::unparsed_private_key(pem))?;
        if !matches!(
            key.algorithm(),
            ssh_key::Algorithm::Ed25519 | ssh_key::Algorithm::Rsa { .. }
        ) {
            return Err(KeyError::Unusable(format!(
                "{} keys cannot sign; use an ssh-ed25519 or ssh-rsa key",
                key.algorithm().as_str()
            )));
        }
        if key.is_encrypted() {
            let pass = passphrase()?;
            key = key
                .decrypt(pass.as_bytes())
                .map_err(|_| KeyError::WrongPassphrase)?;
        }
        // ssh-key keeps both halves as the file gives them: refuse a file whose halves differ,
        // which would sign with one key and name another.
        let invalid = || KeyError::Unusable("not a valid OpenSSH private key".into());
        let rsa = match key.key_data() {
            ssh_key::private::KeypairData::Ed25519(k) => {
                let derived = ed25519_dalek::SigningKey::from_bytes(&k.private.to_bytes());
                if derived.verifying_key().as_bytes() != &k.public.0 {
                    return Err(invalid());
                }
                None
            }
            ssh_key::private::KeypairData::Rsa(k) => Some(rsa_signing_key(k)?),
            _ => return Err(invalid()),
        };
        Ok(SigningKey { key, rsa })
    }

    /// A new Ed25519 signing key with `comment`.
    pub fn generate_ed25519(comment: &str) -> SigningKey {
        let keypair = ssh_key::private::Ed25519Keypair::random(&mut rand_core::OsRng);
        let mut key = ssh_key::PrivateKey::from(keypair);
        key.set_comment(comment);
        SigningKey { key, rsa: None }
    }

    /// The key as an OpenSSH private key file, unprotected.
    pub fn to_openssh(&self) -> Result<Zeroizing<String>, KeyError> {
        self.key
            .to_openssh(LineEnding::LF)
            .map(|s| Zeroizing::new(s.to_string()))
            .map_err(|e| KeyError::Unusable(format!("cannot encode the key: {e}")))
    }

    /// The comment stored with the key (possibly empty).
    pub fn comment(&self) -> &str {
        self.key.comment()
    }

    /// The public half.
    pub fn public_key(&self) -> SignerKey {
        SignerKey(self.key.public_key().key_data().clone())
    }

    /// Signs the sealed file whose digest is `digest`: Ed25519, or `rsa-sha2-512` for an RSA
    /// key.
    pub fn sign(&self, digest: &Digest) -> Result<Signature, SignatureError> {
        let data = signed_data(&[], digest);
        let (algorithm, bytes) = match (&self.rsa, self.key.key_data()) {
            (Some(secret), ssh_key::private::KeypairData::Rsa(_)) => (
                ssh_key::Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512),
                },
                secret.sign_pkcs1v15_sha512(&data),
            ),
            (None, ssh_key::private::KeypairData::Ed25519(pair)) => {
                let secret = ed25519_dalek::SigningKey::from_bytes(&pair.private.to_bytes());
                let bytes = ed25519_dalek::Signer::sign(&secret, &data).to_bytes();
                (ssh_key::Algorithm::Ed25519, bytes.to_vec())
            }
            _ => {
                return Err(SignatureError::UnsupportedKey(
                    self.key.algorithm().to_string(),
                ))
            }
        };
        let raw =
            ssh_key::Signature::new(algorithm, bytes).map_err(|_| SignatureError::Malformed)?;
        let sig = SshSig::new(
            self.key.public_key().key_data().clone(),
            NAMESPACE,
            digest.alg,
            raw,
        )
        .map_err(|_| SignatureError::Malformed)?;
        Ok(Signature(sig))
    }
}

/// A signer's key as [`Signature::verify`] checks with it.
enum Key {
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(rsa::PublicKey, SignatureHash),
}

/// A detached signature over a sealed file.
///
/// ```
/// use seal::sshsig::{Digest, SigningKey};
/// let server = seal::x25519::Identity::generate();
/// let alice = SigningKey::generate_ed25519("alice");
/// let sealed = seal::Encryptor::new_signed_by(&[&server.to_public()], &alice.public_key())?
///     .seal_slice(b"upload");
/// let signature = alice.sign(&Digest::of(&sealed))?;
///
/// // On the server: open the file (which checks the header MAC), then the signature.
/// let slice = seal::SealedSlice::new(&sealed)?;
/// let payload = slice.unwrap(&[&server])?;
/// signature.verify_bound(&Digest::of(&sealed), &slice.header().stanzas)?;
/// assert_eq!(payload.decrypt_to_vec()?, b"upload");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature(SshSig);

impl Signature {
    /// Parses the PEM armor `-----BEGIN SSH SIGNATURE-----` that `ssh-keygen -Y sign` writes.
    /// Checks the form only: see [`Signature::verify`].
    pub fn from_pem(text: &[u8]) -> Result<Signature, SignatureError> {
        // ssh-key's PEM reader is strict about the trailing newline; OpenSSH is not.
        let text = std::str::from_utf8(text).map_err(|_| SignatureError::Malformed)?;
        let sig = SshSig::from_pem(text.trim_end().to_string() + "\n").map_err(|_| {
            // ssh-key does not parse `ssh-rsa` (SHA-1) signatures at all: say why.
            match pem_body(text).as_deref().and_then(signature_algorithm) {
                Some(b"ssh-rsa") => SignatureError::RsaSha1,
                _ => SignatureError::Malformed,
            }
        })?;
        // ssh-key accepts any version up to 1, 0 included: only 1 exists, so only 1 parses
        // (otherwise one signature would have two valid encodings).
        if sig.version() != SshSig::VERSION {
            return Err(SignatureError::Malformed);
        }
        // And the blob must be exactly what the parsed fields encode to: no length field
        // the decoder was lenient about, nothing left over.
        let sig = Signature(sig);
        if pem_body(text) != pem_body(&sig.to_pem()) {
            return Err(SignatureError::Malformed);
        }
        Ok(sig)
    }

    /// The PEM armor, as `ssh-keygen -Y sign` writes it, with a final newline.
    pub fn to_pem(&self) -> String {
        let mut pem = self.0.to_pem(LineEnding::LF).unwrap_or_default();
        if !pem.ends_with('\n') {
            pem.push('\n');
        }
        pem
    }

    /// The key the signature claims to be made with. Means nothing until
    /// [`Signature::verify`] succeeds.
    pub fn signer(&self) -> SignerKey {
        SignerKey(self.0.public_key().clone())
    }

    /// A hasher for the sealed bytes, of the hash this signature was made over; fails for a
    /// signature that is not for seal, or by a key or algorithm that is refused whatever it
    /// signs (an RSA key under 2048 bits, SHA-1), so nothing is hashed for nothing.
    pub fn hasher(&self) -> Result<Hasher, SignatureError> {
        let hasher = self.seal_hasher()?;
        self.key()?;
        Ok(hasher)
    }

    /// The digest of `sealed` that this signature would cover, in one go.
    pub fn digest_of(&self, sealed: &[u8]) -> Result<Digest, SignatureError> {
        let mut hasher = self.hasher()?;
        hasher.update(sealed);
        Ok(hasher.finish())
    }

    /// Checks that this is a seal signature (namespace, hash) by [`Signature::signer`] over
    /// the sealed file whose digest is `digest` (from [`Signature::hasher`]).
    pub fn verify(&self, digest: &Digest) -> Result<(), SignatureError> {
        self.seal_hasher()?;
        if digest.alg != self.0.hash_alg() {
            return Err(SignatureError::Invalid);
        }
        let data = signed_data(self.0.reserved(), digest);
        let good = match self.key()? {
            // Strict: no small-order keys, no non-canonical encodings, so one signature has
            // exactly one valid form.
            Key::Ed25519(key) => ed25519_dalek::Signature::from_slice(self.0.signature_bytes())
                .is_ok_and(|sig| key.verify_strict(&data, &sig).is_ok()),
            Key::Rsa(key, hash) => key.verify_pkcs1v15(hash, &data, self.0.signature_bytes()),
        };
        good.then_some(()).ok_or(SignatureError::Invalid)
    }

    /// A hasher for a seal signature's hash: the namespace must be seal's, the hash one that
    /// SSHSIG allows.
    fn seal_hasher(&self) -> Result<Hasher, SignatureError> {
        if self.0.namespace() != NAMESPACE {
            return Err(SignatureError::Namespace(self.0.namespace().to_string()));
        }
        let alg = self.0.hash_alg();
        Hasher::with(alg).ok_or_else(|| SignatureError::HashAlgorithm(alg.as_str().to_string()))
    }

    /// The signer's key, ready to check with, and the checks that refuse a key or signature
    /// algorithm whatever it signs: a key type seal does not check, an RSA key outside
    /// [`MIN_BITS`]..=[`MAX_BITS`], SHA-1, a signature algorithm that is not the key's.
    fn key(&self) -> Result<Key, SignatureError> {
        let algorithm = self.0.signature().algorithm();
        match self.0.public_key() {
            KeyData::Ed25519(key) => {
                if algorithm != ssh_key::Algorithm::Ed25519 {
                    return Err(SignatureError::Invalid);
                }
                ed25519_dalek::VerifyingKey::from_bytes(&key.0)
                    .map(Key::Ed25519)
                    .map_err(|_| SignatureError::Invalid)
            }
            KeyData::Rsa(key) => {
                // The signature's own hash (rsa-sha2-*), independent of the digest's.
                let hash = match algorithm {
                    ssh_key::Algorithm::Rsa {
                        hash: Some(HashAlg::Sha512),
                    } => SignatureHash::Sha512,
                    ssh_key::Algorithm::Rsa {
                        hash: Some(HashAlg::Sha256),
                    } => SignatureHash::Sha256,
                    ssh_key::Algorithm::Rsa { hash: None } => return Err(SignatureError::RsaSha1),
                    _ => return Err(SignatureError::Invalid),
                };
                Ok(Key::Rsa(rsa_public_key(key)?, hash))
            }
            other => Err(SignatureError::UnsupportedKey(
                other.algorithm().as_str().to_string(),
            )),
        }
    }

    /// [`Signature::verify`], and the signer is the one the file's header names.
    /// `stanzas` must come from a header whose MAC has been checked: that is, of a file
    /// whose key has been unwrapped ([`crate::SealedSlice::unwrap`],
    /// [`crate::Decryptor::unwrap`]), or the name in it proves nothing.
    pub fn verify_bound(&self, digest: &Digest, stanzas: &[Stanza]) -> Result<(), SignatureError> {
        self.verify(digest)?;
        let signed = self.signer().fingerprint();
        match bound_signer(stanzas)? {
            None => Err(SignatureError::Unbound),
            Some(named) if named == signed => Ok(()),
            Some(named) => Err(SignatureError::WrongSigner {
                signed,
                named: named.to_string(),
            }),
        }
    }
}

impl Encryptor {
    /// As [`Encryptor::new`], and names `signer` in the header (a `seal-signer` stanza,
    /// under the header MAC), so that a signature by any other key is refused: see
    /// [`Signature::verify_bound`]. Not with a passphrase, which must be alone in its header.
    pub fn new_signed_by(
        recipients: &[&dyn Recipient],
        signer: &SignerKey,
    ) -> Result<Encryptor, EncryptError> {
        Encryptor::with_stanzas(recipients, vec![binding_stanza(signer)])
    }
}

/// The header stanza that names `signer` as the signer of the file.
pub(crate) fn binding_stanza(signer: &SignerKey) -> Stanza {
    Stanza {
        kind: SIGNER_STANZA.to_string(),
        args: vec![signer.fingerprint()],
        body: Vec::new(),
    }
}

/// The fingerprint a header names as its signer, `None` if it names none. Means something
/// only once the header MAC has been checked (the file key unwrapped).
pub(crate) fn bound_signer(stanzas: &[Stanza]) -> Result<Option<&str>, SignatureError> {
    let mut found = stanzas.iter().filter(|s| s.kind == SIGNER_STANZA);
    let first = found.next();
    if found.next().is_some() {
        return Err(SignatureError::MalformedBinding);
    }
    match first {
        None => Ok(None),
        Some(s) if s.args.len() == 1 && s.body.is_empty() && s.args[0].starts_with("SHA256:") => {
            Ok(Some(&s.args[0]))
        }
        Some(_) => Err(SignatureError::MalformedBinding),
    }
}

/// The RSA arithmetic of an OpenSSH RSA private key: refused under [`MIN_BITS`], and unless
/// its numbers make one key (the `rsa` crate checks `n = pq` and `d` against `e`).
fn rsa_signing_key(k: &ssh_key::private::RsaKeypair) -> Result<rsa::PrivateKey, KeyError> {
    fn num(m: &ssh_key::Mpint) -> Result<&[u8], KeyError> {
        m.as_positive_bytes()
            .ok_or_else(|| KeyError::Unusable("not a valid OpenSSH private key".into()))
    }
    // Borrowed, not copied: ssh-key wipes its secret numbers when the key is dropped, and
    // the `rsa` crate its own.
    let (n, e) = (num(&k.public.n)?, num(&k.public.e)?);
    let (d, p, q) = (num(&k.private.d)?, num(&k.private.p)?, num(&k.private.q)?);
    rsa::PrivateKey::from_components(n, e, d, p, q)
        .map_err(|e| crate::keys::ssh::rsa_key_error(e, "OpenSSH private key"))
}

/// The public key of an `ssh-rsa` signer, refused outside [`MIN_BITS`]..=[`MAX_BITS`].
fn rsa_public_key(k: &ssh_key::public::RsaPublicKey) -> Result<rsa::PublicKey, SignatureError> {
    let n = k.n.as_positive_bytes().ok_or(SignatureError::Invalid)?;
    let e = k.e.as_positive_bytes().ok_or(SignatureError::Invalid)?;
    rsa::PublicKey::from_components(n, e).map_err(|e| match e {
        RsaKeyError::Size(bits) => SignatureError::RsaKeySize(bits),
        RsaKeyError::Invalid => SignatureError::Invalid,
    })
}

/// The algorithm name inside the signature field of an SSHSIG blob, if it gets that far.
fn signature_algorithm(blob: &[u8]) -> Option<&[u8]> {
    fn string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let s = rest.get(4..4usize.checked_add(len)?)?;
        *rest = &rest[4 + len..];
        Some(s)
    }
    let mut rest = blob.strip_prefix(MAGIC)?.get(4..)?;
    // The public key, namespace, reserved field and hash name, then the signature.
    for _ in 0..4 {
        string(&mut rest)?;
    }
    let mut signature = string(&mut rest)?;
    string(&mut signature)
}

/// The bytes inside PEM armor, `None` if they are not base64.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// The bytes a signer signs (PROTOCOL.sshsig): the preamble, then namespace, reserved field,
/// hash name and hash, each as an SSH `string` (a 32-bit big-endian length, then the bytes).
fn signed_data(reserved: &[u8], digest: &Digest) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &[u8]) {
        let len = u32::try_from(s.len()).expect("SSHSIG fields are short");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(s);
    }
    let mut out = Vec::with_capacity(MAGIC.len() + 4 * 4 + NAMESPACE.len() + 6 + 64 + 4);
    out.extend_from_slice(MAGIC);
    string(&mut out, NAMESPACE.as_bytes());
    string(&mut out, reserved);
    string(&mut out, digest.alg.as_str().as_bytes());
    string(&mut out, &digest.bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_passphrase() -> Result<Zeroizing<String>, KeyError> {
        Err(KeyError::PassphraseNeeded)
    }

    #[test]
    fn signs_and_verifies() {
        let key = SigningKey::generate_ed25519("alice");
        let digest = Digest::of(b"sealed bytes");
        let sig = key.sign(&digest).unwrap();
        assert_eq!(sig.signer(), key.public_key());
        sig.verify(&digest).unwrap();
        let again = Signature::from_pem(sig.to_pem().as_bytes()).unwrap();
        assert_eq!(again, sig);
        again.verify(&digest).unwrap();
    }

    #[test]
    fn signed_data_agrees_with_ssh_key() {
        let digest = Digest::of(b"message");
        let theirs = SshSig::signed_data(NAMESPACE, HashAlg::Sha256, b"message").unwrap();
        assert_eq!(signed_data(&[], &digest), theirs);
        let sha512 = Hasher::with(HashAlg::Sha512).map(|mut h| {
            h.update(b"message");
            h.finish()
        });
        let theirs = SshSig::signed_data(NAMESPACE, HashAlg::Sha512, b"message").unwrap();
        assert_eq!(signed_data(&[], &sha512.unwrap()), theirs);
    }

    #[test]
    fn another_file_fails() {
        let key = SigningKey::generate_ed25519("alice");
        let sig = key.sign(&Digest::of(b"one")).unwrap();
        assert_eq!(
            sig.verify(&Digest::of(b"two")),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn every_flipped_byte_of_the_blob_fails() {
        for key in [SigningKey::generate_ed25519("alice"), rsa_key(RSA2048)] {
            let digest = Digest::of(b"sealed");
            let sig = key.sign(&digest).unwrap();
            sig.verify(&digest).unwrap();
            every_flipped_byte_fails(&sig, &digest);
        }
    }

    /// PEM armor around an SSHSIG blob.
    fn armored(blob: &[u8]) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(blob);
        format!(
            "-----BEGIN SSH SIGNATURE-----\n{}\n-----END SSH SIGNATURE-----\n",
            b64.as_bytes()
                .chunks(70)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    fn every_flipped_byte_fails(sig: &Signature, digest: &Digest) {
        let blob = pem_body(&sig.to_pem()).unwrap();
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            let pem = armored(&bad);
            let verdict = Signature::from_pem(pem.as_bytes()).and_then(|s| {
                // A flipped key byte makes another (claimed) signer: still no valid signature.
                s.verify(digest)
            });
            assert!(
                verdict.is_err(),
                "byte {i} flipped and still accepted: {:02x?}",
                &bad[..20]
            );
        }
    }

    const RSA2048: &str = include_str!("../../testdata/keys/rsa2048");

    fn rsa_key(pem: &str) -> SigningKey {
        SigningKey::from_openssh(pem, &mut no_passphrase).unwrap()
    }

    #[test]
    fn rsa_keys_sign_with_rsa_sha2_512_and_verify() {
        let key = rsa_key(RSA2048);
        assert_eq!(key.public_key().algorithm(), "ssh-rsa");
        for digest in [Digest::of(b"sealed bytes"), sha512_of(b"sealed bytes")] {
            let sig = key.sign(&digest).unwrap();
            assert_eq!(
                sig.0.signature().algorithm(),
                ssh_key::Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512)
                }
            );
            assert_eq!(sig.0.signature_bytes().len(), 256);
            assert_eq!(sig.signer(), key.public_key());
            sig.verify(&digest).unwrap();
            let again = Signature::from_pem(sig.to_pem().as_bytes()).unwrap();
            assert_eq!(again, sig);
            again.verify(&digest).unwrap();
            assert_eq!(
                sig.verify(&sig.digest_of(b"other bytes").unwrap()),
                Err(SignatureError::Invalid)
            );
        }
    }

    fn sha512_of(bytes: &[u8]) -> Digest {
        let mut h = Hasher::with(HashAlg::Sha512).unwrap();
        h.update(bytes);
        h.finish()
    }

    /// An SSHSIG over `digest` by the fixture `rsa2048`, made with the `rsa` crate and put
    /// together by hand (ssh-key cannot even hold an `ssh-rsa` signature): signature
    /// algorithm `algorithm`, PKCS#1 v1.5 over `sig_hash`.
    fn rsa_signature(
        digest: &Digest,
        algorithm: &str,
        sig_hash: HashAlg,
    ) -> Result<Signature, SignatureError> {
        use ::rsa::sha2::{Sha256, Sha512};
        let signer = rsa_key(RSA2048);
        let ssh_key::private::KeypairData::Rsa(pair) = signer.key.key_data() else {
            unreachable!()
        };
        let num = |m: &ssh_key::Mpint| {
            ::rsa::BoxedUint::from_be_slice_vartime(m.as_positive_bytes().unwrap())
        };
        let secret = ::rsa::PrivateKey::from_components(
            num(&pair.public.n),
            num(&pair.public.e),
            num(&pair.private.d),
            vec![num(&pair.private.p), num(&pair.private.q)],
        )
        .unwrap();
        let data = signed_data(&[], digest);
        let bytes = match sig_hash {
            HashAlg::Sha256 => secret.pkcs1v15_sign::<Sha256>(&data).unwrap(),
            _ => secret.pkcs1v15_sign::<Sha512>(&data).unwrap(),
        };
        fn string(out: &mut Vec<u8>, s: &[u8]) {
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s);
        }
        let public = ssh_key::PublicKey::new(KeyData::Rsa(pair.public.clone()), "")
            .to_bytes()
            .unwrap();
        let mut signature = Vec::new();
        string(&mut signature, algorithm.as_bytes());
        string(&mut signature, &bytes);
        let mut blob = MAGIC.to_vec();
        blob.extend_from_slice(&1u32.to_be_bytes());
        string(&mut blob, &public);
        string(&mut blob, NAMESPACE.as_bytes());
        string(&mut blob, b"");
        string(&mut blob, digest.alg.as_str().as_bytes());
        string(&mut blob, &signature);
        Signature::from_pem(armored(&blob).as_bytes())
    }

    #[test]
    fn rsa_sha2_256_and_512_signatures_verify_whatever_the_file_hash_and_sha1_is_refused() {
        for digest in [Digest::of(b"sealed"), sha512_of(b"sealed")] {
            for (name, hash) in [
                ("rsa-sha2-512", HashAlg::Sha512),
                ("rsa-sha2-256", HashAlg::Sha256),
            ] {
                let sig = rsa_signature(&digest, name, hash).unwrap();
                sig.verify(&digest).unwrap();
                assert_eq!(
                    sig.verify(&sig.digest_of(b"Sealed").unwrap()),
                    Err(SignatureError::Invalid)
                );
                every_flipped_byte_fails(&sig, &digest);
            }
            // The name must match the hash actually signed.
            let sig = rsa_signature(&digest, "rsa-sha2-256", HashAlg::Sha512).unwrap();
            assert_eq!(sig.verify(&digest), Err(SignatureError::Invalid));
            let sig = rsa_signature(&digest, "rsa-sha2-512", HashAlg::Sha256).unwrap();
            assert_eq!(sig.verify(&digest), Err(SignatureError::Invalid));
            // SHA-1: refused by name, whatever the bytes.
            assert_eq!(
                rsa_signature(&digest, "ssh-rsa", HashAlg::Sha512),
                Err(SignatureError::RsaSha1)
            );
        }
        assert!(SignatureError::RsaSha1.to_string().contains("SHA-1"));
    }

    #[test]
    fn small_rsa_keys_are_refused_by_size() {
        let public = ssh_key::PublicKey::from_openssh(
            include_str!("../../testdata/keys/rsa1024.pub").trim(),
        )
        .unwrap();
        let raw = ssh_key::Signature::new(
            ssh_key::Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            vec![1u8; 128],
        )
        .unwrap();
        let sig = SshSig::new(public.key_data().clone(), NAMESPACE, HashAlg::Sha256, raw).unwrap();
        let sig = Signature(sig);
        let err = sig.verify(&Digest::of(b"sealed")).unwrap_err();
        assert_eq!(err, SignatureError::RsaKeySize(1024));
        assert_eq!(
            err.to_string(),
            "RSA key of 1024 bits is too small for a signature (at least 2048)"
        );
        let err = SigningKey::from_openssh(
            include_str!("../../testdata/keys/rsa1024"),
            &mut no_passphrase,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("1024 bits"), "{err}");
    }

    #[test]
    fn foreign_namespace_is_refused() {
        let key = SigningKey::generate_ed25519("alice");
        let digest = Digest::of(b"sealed");
        let sig = key.key.sign("file", HashAlg::Sha512, b"sealed").unwrap();
        assert_eq!(
            Signature(sig).verify(&digest),
            Err(SignatureError::Namespace("file".into()))
        );
        // ssh-key's own SHA-512 signature (ssh-keygen's default) is good; checked against a
        // SHA-256 digest, it is not.
        let sig = Signature(key.key.sign(NAMESPACE, HashAlg::Sha512, b"sealed").unwrap());
        sig.verify(&sig.digest_of(b"sealed").unwrap()).unwrap();
        assert_eq!(sig.verify(&digest), Err(SignatureError::Invalid));
    }

    #[test]
    fn key_file_round_trip() {
        let key = SigningKey::generate_ed25519("alice@example");
        let text = key.to_openssh().unwrap();
        let again = SigningKey::from_openssh(&text, &mut no_passphrase).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(again.comment(), "alice@example");
        assert!(key.public_key().fingerprint().starts_with("SHA256:"));
    }

    #[test]
    fn the_signer_stanza_must_be_single_and_well_formed() {
        let key = SigningKey::generate_ed25519("alice").public_key();
        let good = binding_stanza(&key);
        let fp = key.fingerprint();
        assert_eq!(
            bound_signer(std::slice::from_ref(&good)),
            Ok(Some(fp.as_str()))
        );
        assert_eq!(bound_signer(&[]), Ok(None));
        let twice = [good.clone(), good.clone()];
        assert_eq!(bound_signer(&twice), Err(SignatureError::MalformedBinding));
        let mut with_body = good.clone();
        with_body.body = vec![0];
        let mut two_args = good.clone();
        two_args.args.push("x".into());
        let mut not_sha256 = good.clone();
        not_sha256.args = vec!["MD5:xx".into()];
        for bad in [with_body, two_args, not_sha256] {
            assert_eq!(bound_signer(&[bad]), Err(SignatureError::MalformedBinding));
        }
    }

    #[test]
    fn garbage_is_malformed() {
        assert_eq!(
            Signature::from_pem(b"hello"),
            Err(SignatureError::Malformed)
        );
    }
}
