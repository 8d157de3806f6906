//! The cryptographic primitives of age v1, behind one narrow interface.
//!
//! Everything the format needs from HKDF, HMAC and ChaCha20-Poly1305 goes through this module,
//! so a second backend is one file, not a rewrite.

mod peer;
pub mod rsa;

pub use peer::X25519Peer;

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Size of a ChaCha20-Poly1305 tag.
pub const TAG_SIZE: usize = 16;

/// HKDF-SHA256 with a 32-byte output, as every key derivation in age uses it.
pub fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut okm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, okm.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    okm
}

/// HKDF-SHA256's extract step alone (RFC 5869, section 2.2): the pseudorandom key.
pub fn hkdf_extract(salt: &[u8], ikm: &[u8]) -> Zeroizing<[u8; 32]> {
    let (prk, _) = Hkdf::<Sha256>::extract(Some(salt), ikm);
    Zeroizing::new(prk.into())
}

/// HKDF-SHA256's expand step alone (RFC 5869, section 2.3), filling `out` (at most 8160 bytes).
pub fn hkdf_expand(prk: &[u8; 32], info: &[u8], out: &mut [u8]) {
    Hkdf::<Sha256>::from_prk(prk)
        .expect("a 32-byte PRK is long enough")
        .expand(info, out)
        .expect("callers ask for short outputs");
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Checks an HMAC-SHA256 tag in constant time.
pub fn hmac_verify(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.verify_slice(tag).is_ok()
}

/// The AEAD every chunk and every wrapped key goes through: ChaCha20-Poly1305 with a 32-byte
/// key, a 12-byte nonce, no associated data and a detached 16-byte tag.
///
/// Two backends implement it, chosen at build time: AWS-LC (the `aws-lc` feature, on by
/// default) and RustCrypto (`chacha20poly1305`, pure Rust, without it). The key is set up once per file and
/// shared by every chunk and thread.
pub trait ChunkAead: Clone + Send + Sync + Sized {
    /// Sets up the cipher for a 32-byte key.
    fn new(key: &[u8; 32]) -> Self;

    /// Encrypts `plaintext` into `out` (the same length) under `nonce` and returns the tag,
    /// which goes right after the ciphertext.
    fn seal(&self, nonce: &[u8; 12], plaintext: &[u8], out: &mut [u8]) -> [u8; TAG_SIZE];

    /// Encrypts `buf` in place under `nonce` and returns the tag.
    fn seal_in_place(&self, nonce: &[u8; 12], buf: &mut [u8]) -> [u8; TAG_SIZE];

    /// Decrypts `ciphertext` into `out` (the same length) if `tag` authenticates it. On
    /// failure `out` holds no plaintext.
    fn open(&self, nonce: &[u8; 12], ciphertext: &[u8], tag: &[u8], out: &mut [u8]) -> bool;
}

/// The AEAD of this build.
#[cfg(not(feature = "aws-lc"))]
pub type Aead = rustcrypto::Aead;
/// The AEAD of this build.
#[cfg(feature = "aws-lc")]
pub type Aead = awslc::Aead;

/// The name of this build's AEAD backend, for reports.
pub const BACKEND: &str = if cfg!(feature = "aws-lc") {
    "aws-lc-rs"
} else {
    "RustCrypto chacha20poly1305"
};

#[cfg(not(feature = "aws-lc"))]
mod rustcrypto {
    use chacha20poly1305::aead::inout::InOutBuf;
    use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, Key, KeyInit, Nonce, Tag};

    use super::{ChunkAead, TAG_SIZE};

    /// The key is wiped when the last copy is dropped: `ChaCha20Poly1305` zeroizes itself
    /// (the crate's `zeroize` feature).
    #[derive(Clone)]
    pub struct Aead(ChaCha20Poly1305);

    impl zeroize::ZeroizeOnDrop for Aead {}

    /// The marker above holds because the field wipes itself, checked at compile time: the
    /// build fails if `chacha20poly1305` loses its `zeroize` feature.
    const _: () = {
        fn wipes<T: zeroize::ZeroizeOnDrop>() {}
        let _ = wipes::<ChaCha20Poly1305>;
    };

    impl ChunkAead for Aead {
        fn new(key: &[u8; 32]) -> Self {
            use zeroize::Zeroize;
            let mut key = Key::from(*key);
            let aead = Aead(ChaCha20Poly1305::new(&key));
            key.as_mut_slice().zeroize();
            aead
        }

        fn seal(&self, nonce: &[u8; 12], plaintext: &[u8], out: &mut [u8]) -> [u8; TAG_SIZE] {
            // Out of place, like `open`: the plaintext is read once, the ciphertext written once.
            let buf = InOutBuf::new(plaintext, out).expect("plaintext and output of one length");
            self.0
                .encrypt_inout_detached(&Nonce::from(*nonce), &[], buf)
                .expect("chunks are far below the ChaCha20 length limit")
                .into()
        }

        fn seal_in_place(&self, nonce: &[u8; 12], buf: &mut [u8]) -> [u8; TAG_SIZE] {
            self.0
                .encrypt_inout_detached(&Nonce::from(*nonce), &[], InOutBuf::from(buf))
                .expect("chunks are far below the ChaCha20 length limit")
                .into()
        }

        fn open(&self, nonce: &[u8; 12], ciphertext: &[u8], tag: &[u8], out: &mut [u8]) -> bool {
            let Ok(tag) = <&Tag>::try_from(tag) else {
                return false;
            };
            // Out of place: the (often mapped) ciphertext is read once and the plaintext
            // written once, with no copy in between.
            let buf = InOutBuf::new(ciphertext, out).expect("ciphertext and output of one length");
            let ok = self
                .0
                .decrypt_inout_detached(&Nonce::from(*nonce), &[], buf, tag)
                .is_ok();
            if !ok {
                out.fill(0);
            }
            ok
        }
    }
}

/// SHA-256 of a long input (a plaintext, for the audit log): AWS-LC's where it is built in,
/// whose SHA-NI code hashes faster than the `sha2` crate's.
pub(crate) struct LongSha256(
    #[cfg(feature = "aws-lc")] aws_lc_rs::digest::Context,
    #[cfg(not(feature = "aws-lc"))] Sha256,
);

impl LongSha256 {
    pub(crate) fn new() -> LongSha256 {
        #[cfg(feature = "aws-lc")]
        return LongSha256(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256));
        #[cfg(not(feature = "aws-lc"))]
        return LongSha256(<Sha256 as sha2::Digest>::new());
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        #[cfg(feature = "aws-lc")]
        self.0.update(bytes);
        #[cfg(not(feature = "aws-lc"))]
        sha2::Digest::update(&mut self.0, bytes);
    }

    pub(crate) fn finish(self) -> [u8; 32] {
        #[cfg(feature = "aws-lc")]
        return self
            .0
            .finish()
            .as_ref()
            .try_into()
            .expect("32 bytes of SHA-256");
        #[cfg(not(feature = "aws-lc"))]
        return sha2::Digest::finalize(self.0).into();
    }
}

#[cfg(feature = "aws-lc")]
mod awslc {
    use std::sync::Arc;

    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};

    use super::{ChunkAead, TAG_SIZE};

    // LessSafeKey: nonces are managed by the STREAM construction (index + last flag) and the
    // one-time wrap keys, never reused under one key.
    #[derive(Clone)]
    pub struct Aead(Arc<LessSafeKey>);

    impl ChunkAead for Aead {
        fn new(key: &[u8; 32]) -> Self {
            let key = UnboundKey::new(&CHACHA20_POLY1305, key).expect("a 32-byte key");
            Aead(Arc::new(LessSafeKey::new(key)))
        }

        fn seal(&self, nonce: &[u8; 12], plaintext: &[u8], out: &mut [u8]) -> [u8; TAG_SIZE] {
            out.copy_from_slice(plaintext);
            self.seal_in_place(nonce, out)
        }

        fn seal_in_place(&self, nonce: &[u8; 12], buf: &mut [u8]) -> [u8; TAG_SIZE] {
            let nonce = Nonce::assume_unique_for_key(*nonce);
            let tag = self
                .0
                .seal_in_place_separate_tag(nonce, Aad::empty(), buf)
                .expect("chunks are far below the ChaCha20 length limit");
            tag.as_ref().try_into().expect("a 16-byte tag")
        }

        fn open(&self, nonce: &[u8; 12], ciphertext: &[u8], tag: &[u8], out: &mut [u8]) -> bool {
            let nonce = Nonce::assume_unique_for_key(*nonce);
            let ok = self
                .0
                .open_separate_gather(nonce, Aad::empty(), ciphertext, tag, out);
            if ok.is_err() {
                out.fill(0);
            }
            ok.is_ok()
        }
    }
}

/// An X25519 secret scalar in the backend's own form, made once, for keys that agree more
/// than once (a server identity opens every file with one) or that also need their public
/// key (an ephemeral share). AWS-LC computes the public key whenever a key is made from
/// bytes, a fixed-base multiplication: made per agreement, that was a fifth of the X25519
/// time of every file a batch opened.
pub struct X25519Secret(
    #[cfg(not(feature = "aws-lc"))] x25519_dalek::StaticSecret,
    #[cfg(feature = "aws-lc")] aws_lc_rs::agreement::PrivateKey,
);

impl X25519Secret {
    /// The scalar `secret` (clamped when used, as RFC 7748 says).
    #[cfg(not(feature = "aws-lc"))]
    pub fn new(secret: &[u8; 32]) -> X25519Secret {
        X25519Secret(x25519_dalek::StaticSecret::from(*secret))
    }

    /// The scalar `secret` (clamped when used, as RFC 7748 says).
    #[cfg(feature = "aws-lc")]
    pub fn new(secret: &[u8; 32]) -> X25519Secret {
        use aws_lc_rs::agreement::{PrivateKey, X25519};
        let key = PrivateKey::from_private_key(&X25519, secret).expect("any 32 bytes are a key");
        X25519Secret(key)
    }

    /// Its public key, by the fixed-base routine (precomputed tables, several times faster
    /// than the ladder on an arbitrary point).
    #[cfg(not(feature = "aws-lc"))]
    pub fn public(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.0).to_bytes()
    }

    /// Its public key, computed when the key was made.
    #[cfg(feature = "aws-lc")]
    pub fn public(&self) -> [u8; 32] {
        let public = self
            .0
            .compute_public_key()
            .expect("X25519 public keys always compute");
        public
            .as_ref()
            .try_into()
            .expect("32-byte X25519 public keys")
    }

    /// X25519 with a peer's `point` (RFC 7748); `None` when the result is all zeros, as it
    /// is for a low-order point.
    #[cfg(not(feature = "aws-lc"))]
    pub fn agree(&self, point: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
        let shared = self
            .0
            .diffie_hellman(&x25519_dalek::PublicKey::from(*point));
        let shared = Zeroizing::new(shared.to_bytes());
        // No early exit: the test takes the same time whatever the bytes.
        (shared.iter().fold(0, |acc, b| acc | b) != 0).then_some(shared)
    }

    /// X25519 with a peer's `point` (RFC 7748); `None` when the result is all zeros, as it
    /// is for a low-order point (AWS-LC refuses those itself).
    #[cfg(feature = "aws-lc")]
    pub fn agree(&self, point: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
        use aws_lc_rs::agreement::{agree, UnparsedPublicKey, X25519};
        let peer = UnparsedPublicKey::new(&X25519, point);
        agree(&self.0, peer, (), |shared| {
            let mut out = Zeroizing::new([0u8; 32]);
            out.copy_from_slice(shared);
            Ok(out)
        })
        .ok()
    }
}

/// X25519 of a secret scalar and a peer's point, once (RFC 7748, with clamping); `None`
/// when the result is all zeros, as it is for a low-order point.
pub fn x25519(secret: &[u8; 32], point: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
    X25519Secret::new(secret).agree(point)
}

/// The X25519 public key of a secret scalar.
pub fn x25519_base(secret: &[u8; 32]) -> [u8; 32] {
    X25519Secret::new(secret).public()
}

/// Encrypts a short message (a wrapped file key) under a one-time key with a zero nonce.
///
/// A zero nonce is safe because every key passed here is derived fresh for one message only.
pub fn seal_once(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    seal_with_nonce(key, &[0; 12], plaintext)
}

/// Decrypts a message made by [`seal_once`]; `None` if it does not authenticate.
pub fn open_once(key: &[u8; 32], ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    open_with_nonce(key, &[0; 12], ciphertext)
}

/// Encrypts one short message, no associated data, the tag appended. The caller answers for
/// the nonce never repeating under `key` (HPKE derives both per message).
pub fn seal_with_nonce(key: &[u8; 32], nonce: &[u8; 12], plaintext: &[u8]) -> Vec<u8> {
    let mut out = vec![0; plaintext.len() + TAG_SIZE];
    let (body, tag) = out.split_at_mut(plaintext.len());
    tag.copy_from_slice(&Aead::new(key).seal(nonce, plaintext, body));
    out
}

/// Decrypts a message made by [`seal_with_nonce`]; `None` if it does not authenticate.
pub fn open_with_nonce(
    key: &[u8; 32],
    nonce: &[u8; 12],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let split = ciphertext.len().checked_sub(TAG_SIZE)?;
    let (body, tag) = ciphertext.split_at(split);
    let mut out = Zeroizing::new(vec![0; body.len()]);
    Aead::new(key)
        .open(nonce, body, tag, &mut out)
        .then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_sha256_matches_fips_180_2_in_pieces() {
        // FIPS 180-2, appendix B.2: the two-block message, fed in uneven pieces.
        let message = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        let mut hasher = LongSha256::new();
        for piece in message.chunks(7) {
            hasher.update(piece);
        }
        let hex: String = hasher.finish().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn hkdf_matches_rfc5869_case_1_prefix() {
        // RFC 5869 test case 1, first 32 bytes of OKM.
        let ikm = [0x0b; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let okm = hkdf(&salt, &ikm, &info);
        assert_eq!(
            okm[..],
            [
                0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac, 0xd5, 0x7a, 0x90, 0x43, 0x4f, 0x64, 0xd0, 0x36,
                0x2f, 0x2a, 0x2d, 0x2d, 0x0a, 0x90, 0xcf, 0x1a, 0x5a, 0x4c, 0x5d, 0xb0, 0x2d, 0x56,
                0xec, 0xc4, 0xc5, 0xbf
            ]
        );
    }

    #[test]
    fn hmac_verify_rejects_any_flipped_bit() {
        let tag = hmac(b"key", b"data");
        assert!(hmac_verify(b"key", b"data", &tag));
        for i in 0..tag.len() {
            let mut bad = tag;
            bad[i] ^= 1;
            assert!(!hmac_verify(b"key", b"data", &bad));
        }
        assert!(!hmac_verify(b"key", b"data", &tag[..31]));
    }

    #[test]
    fn seal_once_round_trips_and_rejects_tampering() {
        let key = [7u8; 32];
        let ct = seal_once(&key, b"sixteen byte key");
        assert_eq!(ct.len(), 32);
        assert_eq!(&open_once(&key, &ct).unwrap()[..], b"sixteen byte key");
        let mut bad = ct.clone();
        bad[3] ^= 0x80;
        assert!(open_once(&key, &bad).is_none());
        assert!(open_once(&[8u8; 32], &ct).is_none());
        assert!(open_once(&key, &ct[..15]).is_none());
    }
}

/// Bytes from hex, for the known-answer tests of the crate.
#[cfg(test)]
pub(crate) fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

#[cfg(test)]
mod x25519_tests {
    use super::*;

    /// RFC 7748 section 6.1: Alice's and Bob's key pairs and their shared secret.
    #[test]
    fn rfc7748_diffie_hellman() {
        let hex = |s: &str| -> [u8; 32] { super::from_hex(s).try_into().unwrap() };
        let alice = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let alice_pub = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let bob = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        let bob_pub = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let shared = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(x25519_base(&alice), alice_pub, "{BACKEND}");
        assert_eq!(x25519_base(&bob), bob_pub, "{BACKEND}");
        assert_eq!(*x25519(&alice, &bob_pub).unwrap(), shared, "{BACKEND}");
        assert_eq!(*x25519(&bob, &alice_pub).unwrap(), shared, "{BACKEND}");
        assert!(
            x25519(&alice, &[0; 32]).is_none(),
            "all-zero result refused"
        );
    }
}

#[cfg(test)]
mod backend_tests {
    use super::*;
    // The previous generation of the RustCrypto crate, as an independent reference.
    use chacha20poly1305_ref::aead::{AeadInPlace, KeyInit};
    use chacha20poly1305_ref::ChaCha20Poly1305;

    /// Whichever backend this build uses must agree byte for byte with RustCrypto's reference
    /// implementation, across lengths around the SIMD block sizes.
    #[test]
    fn backend_matches_the_reference_implementation() {
        let key = [0x42u8; 32];
        let reference = ChaCha20Poly1305::new(&key.into());
        let ours = Aead::new(&key);
        for len in [0, 1, 15, 16, 63, 64, 65, 255, 256, 1000, 65_536] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let nonce = [len as u8; 12];
            let mut expected = plaintext.clone();
            let tag = reference
                .encrypt_in_place_detached(&nonce.into(), &[], &mut expected)
                .unwrap();
            let mut sealed = vec![0u8; len];
            assert_eq!(
                ours.seal(&nonce, &plaintext, &mut sealed),
                tag[..],
                "{BACKEND} len {len}"
            );
            assert_eq!(sealed, expected, "{BACKEND} len {len}");
            let mut opened = vec![0u8; len];
            assert!(ours.open(&nonce, &sealed, &tag, &mut opened));
            assert_eq!(opened, plaintext);
            let mut bad_tag = tag;
            bad_tag[0] ^= 1;
            assert!(!ours.open(&nonce, &sealed, &bad_tag, &mut opened));
            assert!(
                opened.iter().all(|&b| b == 0),
                "no plaintext after a failure"
            );
        }
    }
}
