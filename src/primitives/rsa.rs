//! RSA-OAEP with SHA-256 (and MGF1-SHA-256), the one RSA operation age needs, and the
//! RSASSA-PKCS1-v1_5 signatures (SHA-256, SHA-512) of SSH signatures by `ssh-rsa` client keys.
//!
//! Keys are parsed and checked by the `rsa` crate (0.10: constant-time arithmetic, see
//! `doc/security.md` on RUSTSEC-2023-0071). The private-key operation, the per-file cost of an `ssh-rsa`
//! server, runs on the build's backend: `rsa` by default, AWS-LC with the `aws-lc` feature
//! (about five times faster, and the implementation we recommend for servers that decrypt
//! whatever arrives). Encryption, the cheap public operation, runs there too.

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::BoxedUint;
#[cfg(any(not(feature = "aws-lc"), test))]
use rsa::Oaep;
use zeroize::Zeroizing;

/// Smallest modulus accepted, in bits, as recipient or as key.
pub const MIN_BITS: usize = 2048;
/// Largest modulus accepted, in bits: bounds the work a hostile key can ask for.
pub const MAX_BITS: usize = 8192;

#[cfg(any(not(feature = "aws-lc"), test))]
type Sha256 = rsa::sha2::Sha256;
#[cfg(any(not(feature = "aws-lc"), test))]
type Sha512 = rsa::sha2::Sha512;

/// The hash of an RSASSA-PKCS1-v1_5 signature (`rsa-sha2-256`, `rsa-sha2-512` in SSH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureHash {
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

/// Why an RSA key was refused. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RsaKeyError {
    /// The modulus is smaller than [`MIN_BITS`] (or larger than [`MAX_BITS`]).
    #[error("RSA keys must have {MIN_BITS} to {MAX_BITS} bits; this one has {0}")]
    Size(usize),
    /// The encoding or the numbers are not a valid RSA key.
    #[error("not a valid RSA key")]
    Invalid,
}

/// An RSA public key, at least [`MIN_BITS`] long.
#[derive(Clone)]
pub struct PublicKey {
    key: rsa::PublicKey,
    #[cfg(feature = "aws-lc")]
    fast: std::sync::Arc<aws_lc_rs::rsa::OaepPublicEncryptingKey>,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &PublicKey) -> bool {
        self.key == other.key
    }
}

impl Eq for PublicKey {}

/// An RSA private key, at least [`MIN_BITS`] long. No `Debug`; zeroized on drop by `rsa`.
pub struct PrivateKey {
    key: rsa::PrivateKey,
    #[cfg(feature = "aws-lc")]
    fast: aws_lc_rs::rsa::OaepPrivateDecryptingKey,
}

fn checked_size(bits: usize) -> Result<(), RsaKeyError> {
    if (MIN_BITS..=MAX_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(RsaKeyError::Size(bits))
    }
}

/// The size of a big-endian number in bits, leading zero bytes ignored.
fn bit_len(be: &[u8]) -> usize {
    let be = &be[be.iter().take_while(|&&b| b == 0).count()..];
    match be.first() {
        Some(first) => be.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

impl PublicKey {
    /// From the modulus and public exponent, big-endian.
    pub fn from_components(n: &[u8], e: &[u8]) -> Result<PublicKey, RsaKeyError> {
        checked_size(bit_len(n))?;
        let n = BoxedUint::from_be_slice_vartime(n);
        let e = BoxedUint::from_be_slice_vartime(e);
        rsa::PublicKey::new_with_size_limits(n, e, MIN_BITS..=MAX_BITS)
            .map_err(|_| RsaKeyError::Invalid)
            .and_then(PublicKey::new)
    }

    /// From DER: SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`).
    pub fn from_der(der: &[u8]) -> Result<PublicKey, RsaKeyError> {
        let key = rsa::PublicKey::from_public_key_der(der)
            .or_else(|_| rsa::PublicKey::from_pkcs1_der(der))
            .map_err(|e| size_or_invalid(&e.to_string()))?;
        PublicKey::new(key)
    }

    fn new(key: rsa::PublicKey) -> Result<PublicKey, RsaKeyError> {
        checked_size(key.n().bit_width_vartime() as usize)?;
        Ok(PublicKey {
            #[cfg(feature = "aws-lc")]
            fast: std::sync::Arc::new(awslc::public_key(&key)?),
            key,
        })
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.n().bit_width_vartime() as usize
    }

    /// The modulus, big-endian, without leading zeros.
    pub fn n(&self) -> Vec<u8> {
        self.key.n().to_be_bytes_trimmed_vartime().into_vec()
    }

    /// The public exponent, big-endian, without leading zeros.
    pub fn e(&self) -> Vec<u8> {
        self.key.e().to_be_bytes_trimmed_vartime().into_vec()
    }

    /// The ciphertext size: the modulus size in bytes.
    pub fn size(&self) -> usize {
        self.key.size()
    }

    /// RSAES-OAEP-SHA256 of `message` under `label`, with fresh randomness.
    pub fn encrypt(&self, label: &[u8], message: &[u8]) -> Vec<u8> {
        #[cfg(feature = "aws-lc")]
        {
            awslc::encrypt(&self.fast, label, message)
        }
        #[cfg(not(feature = "aws-lc"))]
        {
            let padding = Oaep::<Sha256>::new_with_label(label);
            self.key
                .encrypt(&mut getrandom::SysRng, padding, message)
                .expect("a short message always fits a key of 2048 bits or more")
        }
    }

    /// Checks an RSASSA-PKCS1-v1_5 signature over `message` (hashed here with `hash`). The
    /// signature must be exactly [`PublicKey::size`] bytes long: one encoding per signature.
    pub fn verify_pkcs1v15(&self, hash: SignatureHash, message: &[u8], signature: &[u8]) -> bool {
        if signature.len() != self.size() {
            return false;
        }
        #[cfg(feature = "aws-lc")]
        {
            awslc::verify(&self.n(), &self.e(), hash, message, signature)
        }
        #[cfg(not(feature = "aws-lc"))]
        {
            match hash {
                SignatureHash::Sha256 => self.key.pkcs1v15_verify::<Sha256>(message, signature),
                SignatureHash::Sha512 => self.key.pkcs1v15_verify::<Sha512>(message, signature),
            }
            .is_ok()
        }
    }
}

/// The `rsa` crate refuses keys under 1024 bits while decoding; say so in our words.
fn size_or_invalid(reason: &str) -> RsaKeyError {
    if reason.to_lowercase().contains("too small") {
        RsaKeyError::Size(0)
    } else {
        RsaKeyError::Invalid
    }
}

impl PrivateKey {
    /// From the modulus, exponents and the two primes, big-endian (as OpenSSH stores them).
    pub fn from_components(
        n: &[u8],
        e: &[u8],
        d: &[u8],
        p: &[u8],
        q: &[u8],
    ) -> Result<PrivateKey, RsaKeyError> {
        checked_size(bit_len(n))?;
        let num = BoxedUint::from_be_slice_vartime;
        let key = rsa::PrivateKey::from_components(num(n), num(e), num(d), vec![num(p), num(q)])
            .map_err(|_| RsaKeyError::Invalid)?;
        PrivateKey::new(key)
    }

    /// From PKCS#1 DER (`BEGIN RSA PRIVATE KEY`).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<PrivateKey, RsaKeyError> {
        let key =
            rsa::PrivateKey::from_pkcs1_der(der).map_err(|e| size_or_invalid(&e.to_string()))?;
        PrivateKey::new(key)
    }

    /// From unencrypted PKCS#8 DER (`BEGIN PRIVATE KEY`) holding an RSA key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, RsaKeyError> {
        let key =
            rsa::PrivateKey::from_pkcs8_der(der).map_err(|e| size_or_invalid(&e.to_string()))?;
        PrivateKey::new(key)
    }

    /// A new random key of `bits` bits, public exponent 65537.
    pub fn generate(bits: usize) -> Result<PrivateKey, RsaKeyError> {
        checked_size(bits)?;
        let key =
            rsa::PrivateKey::new(&mut getrandom::SysRng, bits).map_err(|_| RsaKeyError::Invalid)?;
        PrivateKey::new(key)
    }

    fn new(key: rsa::PrivateKey) -> Result<PrivateKey, RsaKeyError> {
        checked_size(key.n().bit_width_vartime() as usize)?;
        if key.primes().len() != 2 {
            return Err(RsaKeyError::Invalid);
        }
        Ok(PrivateKey {
            #[cfg(feature = "aws-lc")]
            fast: awslc::private_key(&key)?,
            key,
        })
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey::new(self.key.to_public_key()).expect("checked with the private key")
    }

    /// The components OpenSSH stores, big-endian: `(d, iqmp, p, q)`. Handle with care.
    pub fn secret_components(&self) -> [Zeroizing<Vec<u8>>; 4] {
        let bytes = |n: &BoxedUint| Zeroizing::new(n.to_be_bytes().into_vec());
        let primes = self.key.primes();
        let iqmp = self
            .key
            .crt_coefficient()
            .expect("two-prime keys have a CRT coefficient");
        [
            bytes(self.key.d()),
            bytes(&iqmp),
            bytes(primes[0].as_ref()),
            bytes(primes[1].as_ref()),
        ]
    }

    /// Undoes [`PublicKey::encrypt`]; `None` if `ciphertext` does not decrypt under `label`.
    pub fn decrypt(&self, label: &[u8], ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        #[cfg(feature = "aws-lc")]
        {
            awslc::decrypt(&self.fast, label, ciphertext)
        }
        #[cfg(not(feature = "aws-lc"))]
        {
            // Blinded with the OS RNG (the `getrandom` feature of `rsa`).
            let padding = Oaep::<Sha256>::new_with_label(label);
            self.key
                .decrypt(padding, ciphertext)
                .ok()
                .map(Zeroizing::new)
        }
    }

    /// RSASSA-PKCS1-v1_5 with SHA-512 over `message` (hashed here): `rsa-sha2-512`, what
    /// `ssh-keygen` signs with. [`PublicKey::size`] bytes, deterministic.
    pub fn sign_pkcs1v15_sha512(&self, message: &[u8]) -> Vec<u8> {
        #[cfg(feature = "aws-lc")]
        {
            awslc::sign_sha512(&self.key, message)
        }
        #[cfg(not(feature = "aws-lc"))]
        {
            // Blinded with the OS RNG (the `getrandom` feature of `rsa`).
            self.key
                .pkcs1v15_sign::<Sha512>(message)
                .expect("a SHA-512 signature always fits a key of 2048 bits or more")
        }
    }
}

/// The name of this build's RSA private-key backend, for reports.
pub const BACKEND: &str = if cfg!(feature = "aws-lc") {
    "aws-lc-rs"
} else {
    "rsa 0.10"
};

#[cfg(feature = "aws-lc")]
mod awslc {
    use aws_lc_rs::rsa::{
        OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
        PublicEncryptingKey, OAEP_SHA256_MGF1SHA256,
    };
    use aws_lc_rs::signature::{
        RsaKeyPair, RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA512,
        RSA_PKCS1_SHA512,
    };
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
    use zeroize::Zeroizing;

    use super::{RsaKeyError, SignatureHash};

    /// The same key, handed to AWS-LC through PKCS#8 (a zeroized buffer).
    pub fn private_key(key: &rsa::PrivateKey) -> Result<OaepPrivateDecryptingKey, RsaKeyError> {
        let der = key.to_pkcs8_der().map_err(|_| RsaKeyError::Invalid)?;
        let key =
            PrivateDecryptingKey::from_pkcs8(der.as_bytes()).map_err(|_| RsaKeyError::Invalid)?;
        OaepPrivateDecryptingKey::new(key).map_err(|_| RsaKeyError::Invalid)
    }

    /// The same public key, handed to AWS-LC through SubjectPublicKeyInfo.
    pub fn public_key(key: &rsa::PublicKey) -> Result<OaepPublicEncryptingKey, RsaKeyError> {
        let der = key.to_public_key_der().map_err(|_| RsaKeyError::Invalid)?;
        let key =
            PublicEncryptingKey::from_der(der.as_bytes()).map_err(|_| RsaKeyError::Invalid)?;
        OaepPublicEncryptingKey::new(key).map_err(|_| RsaKeyError::Invalid)
    }

    pub fn encrypt(key: &OaepPublicEncryptingKey, label: &[u8], message: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; key.ciphertext_size()];
        let len = key
            .encrypt(&OAEP_SHA256_MGF1SHA256, message, &mut out, Some(label))
            .expect("a short message always fits a key of 2048 bits or more")
            .len();
        out.truncate(len);
        out
    }

    pub fn decrypt(
        key: &OaepPrivateDecryptingKey,
        label: &[u8],
        ciphertext: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
        let len = key
            .decrypt(&OAEP_SHA256_MGF1SHA256, ciphertext, &mut out, Some(label))
            .ok()?
            .len();
        out.truncate(len);
        Some(out)
    }

    /// Signing is rare (once per file a client seals), so the AWS-LC key pair is built for
    /// the call rather than kept beside the decrypting key of every loaded identity.
    pub fn sign_sha512(key: &rsa::PrivateKey, message: &[u8]) -> Vec<u8> {
        let der = key
            .to_pkcs8_der()
            .expect("a valid key always encodes to PKCS#8");
        let pair = RsaKeyPair::from_pkcs8(der.as_bytes())
            .expect("AWS-LC accepted the same key for decryption");
        let mut out = vec![0u8; pair.public_modulus_len()];
        pair.sign(
            &RSA_PKCS1_SHA512,
            &aws_lc_rs::rand::SystemRandom::new(),
            message,
            &mut out,
        )
        .expect("a SHA-512 signature always fits a key of 2048 bits or more");
        out
    }

    pub fn verify(
        n: &[u8],
        e: &[u8],
        hash: SignatureHash,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let params = match hash {
            SignatureHash::Sha256 => &RSA_PKCS1_2048_8192_SHA256,
            SignatureHash::Sha512 => &RSA_PKCS1_2048_8192_SHA512,
        };
        RsaPublicKeyComponents { n, e }
            .verify(params, message, signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_length_ignores_leading_zeros() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 0, 1]), 1);
        assert_eq!(bit_len(&[0, 0x80, 0]), 16);
        assert_eq!(bit_len(&[0xff; 256]), 2048);
    }

    #[test]
    fn oaep_round_trip_with_label_and_components() {
        let key = PrivateKey::generate(2048).unwrap();
        let public = key.public();
        assert_eq!(public.bits(), 2048);
        let ct = public.encrypt(b"label", b"sixteen byte key");
        assert_eq!(ct.len(), 256);
        assert_eq!(
            &key.decrypt(b"label", &ct).unwrap()[..],
            b"sixteen byte key"
        );
        assert!(key.decrypt(b"other", &ct).is_none(), "{BACKEND}");
        let mut bad = ct.clone();
        bad[100] ^= 1;
        assert!(key.decrypt(b"label", &bad).is_none(), "{BACKEND}");
        assert!(key.decrypt(b"label", &ct[1..]).is_none(), "{BACKEND}");

        // The components OpenSSH stores rebuild the same key.
        let [d, _iqmp, p, q] = key.secret_components();
        let again = PrivateKey::from_components(&public.n(), &public.e(), &d, &p, &q).unwrap();
        assert_eq!(
            &again.decrypt(b"label", &ct).unwrap()[..],
            b"sixteen byte key"
        );
        assert!(PublicKey::from_components(&public.n(), &public.e()).unwrap() == public);
    }

    /// Whichever backend this build uses must agree with the `rsa` crate both ways.
    #[test]
    fn backend_agrees_with_the_rsa_crate() {
        let key = PrivateKey::generate(2048).unwrap();
        let public = key.public();
        let by_rsa = public
            .key
            .encrypt(
                &mut getrandom::SysRng,
                Oaep::<Sha256>::new_with_label(&b"age"[..]),
                b"sixteen byte key",
            )
            .unwrap();
        assert_eq!(
            &key.decrypt(b"age", &by_rsa).unwrap()[..],
            b"sixteen byte key"
        );
        let ours = public.encrypt(b"age", b"sixteen byte key");
        let opened = key
            .key
            .decrypt(Oaep::<Sha256>::new_with_label(&b"age"[..]), &ours)
            .unwrap();
        assert_eq!(opened, b"sixteen byte key", "{BACKEND}");
    }

    /// PKCS#1 v1.5 signatures are deterministic: this build's backend must make the very
    /// signature the `rsa` crate makes, and accept the `rsa` crate's, for both hashes.
    #[test]
    fn pkcs1v15_signatures_agree_with_the_rsa_crate() {
        let key = PrivateKey::generate(2048).unwrap();
        let public = key.public();
        let ours = key.sign_pkcs1v15_sha512(b"signed data");
        assert_eq!(ours.len(), 256);
        let by_rsa = key.key.pkcs1v15_sign::<Sha512>(b"signed data").unwrap();
        assert_eq!(ours, by_rsa, "{BACKEND}");
        public
            .key
            .pkcs1v15_verify::<Sha512>(b"signed data", &ours)
            .unwrap();
        assert!(public.verify_pkcs1v15(SignatureHash::Sha512, b"signed data", &by_rsa));

        let by_rsa = key.key.pkcs1v15_sign::<Sha256>(b"signed data").unwrap();
        assert!(public.verify_pkcs1v15(SignatureHash::Sha256, b"signed data", &by_rsa));
        // The hash is part of what is signed: neither passes for the other.
        assert!(!public.verify_pkcs1v15(SignatureHash::Sha512, b"signed data", &by_rsa));
        assert!(!public.verify_pkcs1v15(SignatureHash::Sha256, b"signed data", &ours));

        // Another message, a flipped bit, a short or long signature, another key: refused.
        assert!(!public.verify_pkcs1v15(SignatureHash::Sha512, b"signed datA", &ours));
        let mut bad = ours.clone();
        bad[17] ^= 0x40;
        assert!(!public.verify_pkcs1v15(SignatureHash::Sha512, b"signed data", &bad));
        assert!(!public.verify_pkcs1v15(SignatureHash::Sha512, b"signed data", &ours[1..]));
        let mut long = vec![0u8];
        long.extend_from_slice(&ours);
        assert!(!public.verify_pkcs1v15(SignatureHash::Sha512, b"signed data", &long));
        let other = PrivateKey::generate(2048).unwrap().public();
        assert!(!other.verify_pkcs1v15(SignatureHash::Sha512, b"signed data", &ours));
    }

    #[test]
    fn small_keys_are_refused() {
        assert_eq!(
            PrivateKey::generate(1024).err(),
            Some(RsaKeyError::Size(1024))
        );
        let mut n = vec![0xc5u8; 128];
        n[127] |= 1;
        assert_eq!(
            PublicKey::from_components(&n, &[1, 0, 1]).err(),
            Some(RsaKeyError::Size(1024))
        );
    }
}
