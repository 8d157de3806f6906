//! X-Wing, the ML-KEM-768 + X25519 hybrid KEM (draft-connolly-cfrg-xwing-kem-06; HPKE's
//! MLKEM768-X25519, KEM id `0x647a`, in draft-ietf-hpke-pq), on RustCrypto's `ml-kem` and this
//! crate's X25519.
//!
//! ```text
//! expand(seed)      = SHAKE256(seed, 96) = d || z || sk_X   (ML-KEM KeyGen_internal(d, z))
//! public key        = pk_M || pk_X                         (1184 + 32 bytes)
//! ciphertext        = ct_M || ct_X                         (1088 + 32 bytes)
//! shared secret     = SHA3-256(ss_M || ss_X || ct_X || pk_X || "\.//^\")
//! ```
//!
//! The decapsulation key is expanded once, when it is made, not at each decapsulation (the
//! draft's section 5.5.1 allows this): a server opens many files with one key.
//! Unlike the draft, decapsulation refuses an X25519 share that makes the X25519 secret all
//! zeros, as age requires (and as RFC 7748 allows).

use ml_kem::kem::Decapsulate;
use ml_kem::{EncapsulateDeterministic, EncodedSizeUser, KemCore, MlKem768, B32};
use sha3::digest::{ExtendableOutput, Update, XofReader};
use sha3::{Digest, Sha3_256, Shake256};
use zeroize::{Zeroize, Zeroizing};

use crate::primitives::{x25519, x25519_base};

/// Size of a decapsulation key: its seed.
pub(crate) const SEED_SIZE: usize = 32;
/// Size of an encapsulation (public) key.
pub(crate) const PUBLIC_KEY_SIZE: usize = ML_KEM_PUBLIC_KEY_SIZE + 32;
/// Size of a ciphertext (HPKE's `enc`).
pub(crate) const CIPHERTEXT_SIZE: usize = ML_KEM_CIPHERTEXT_SIZE + 32;

const ML_KEM_PUBLIC_KEY_SIZE: usize = 1184;
const ML_KEM_CIPHERTEXT_SIZE: usize = 1088;
const LABEL: &[u8; 6] = br"\.//^\";

type MlKemDecapsulationKey = <MlKem768 as KemCore>::DecapsulationKey;
type MlKemEncapsulationKey = <MlKem768 as KemCore>::EncapsulationKey;

/// An X-Wing public key, checked: its ML-KEM half passes FIPS 203's encapsulation key check and
/// its X25519 half is not a low-order point.
#[derive(Clone, PartialEq)]
pub(crate) struct EncapsulationKey {
    ml_kem: MlKemEncapsulationKey,
    x25519: [u8; 32],
}

/// An X-Wing private key: its seed, and what the seed expands to. No `Debug`.
#[derive(Clone)]
pub(crate) struct DecapsulationKey {
    seed: Zeroizing<[u8; SEED_SIZE]>,
    ml_kem: MlKemDecapsulationKey,
    x25519: Zeroizing<[u8; 32]>,
    public: EncapsulationKey,
}

impl EncapsulationKey {
    /// Parses a public key; `None` if either half fails its check.
    pub(crate) fn from_bytes(bytes: &[u8; PUBLIC_KEY_SIZE]) -> Option<EncapsulationKey> {
        let (ml_kem, x25519_point) = bytes.split_at(ML_KEM_PUBLIC_KEY_SIZE);
        let encoded = ml_kem::Encoded::<MlKemEncapsulationKey>::try_from(ml_kem).ok()?;
        let ml_kem = MlKemEncapsulationKey::from_bytes(&encoded);
        // FIPS 203, section 7.2: decoding reduces every coefficient mod q, so a key whose
        // coefficients are not all below q does not encode back to itself.
        if ml_kem.as_bytes() != encoded {
            return None;
        }
        let x25519_point: [u8; 32] = x25519_point.try_into().ok()?;
        x25519(&[0x5a; 32], &x25519_point)?;
        Some(EncapsulationKey {
            ml_kem,
            x25519: x25519_point,
        })
    }

    /// The public key's bytes.
    pub(crate) fn to_bytes(&self) -> [u8; PUBLIC_KEY_SIZE] {
        let mut out = [0u8; PUBLIC_KEY_SIZE];
        out[..ML_KEM_PUBLIC_KEY_SIZE].copy_from_slice(&self.ml_kem.as_bytes());
        out[ML_KEM_PUBLIC_KEY_SIZE..].copy_from_slice(&self.x25519);
        out
    }

    /// The draft's EncapsulateDerand: `eseed` is 64 uniformly random bytes, the first half
    /// for ML-KEM's encapsulation, the second the ephemeral X25519 secret. Returns the
    /// ciphertext and the shared secret.
    pub(crate) fn encapsulate(
        &self,
        eseed: &[u8; 64],
    ) -> ([u8; CIPHERTEXT_SIZE], Zeroizing<[u8; 32]>) {
        let (m, ephemeral) = eseed.split_at(32);
        let m = <&B32>::try_from(m).expect("32 bytes");
        let (ct_m, mut ss_m) = self
            .ml_kem
            .encapsulate_deterministic(m)
            .expect("ML-KEM encapsulation cannot fail");
        let ephemeral: &[u8; 32] = ephemeral.try_into().expect("32 bytes");
        let ct_x = x25519_base(ephemeral);
        let ss_x = x25519(ephemeral, &self.x25519).expect("the X25519 half is not low-order");
        let mut ct = [0u8; CIPHERTEXT_SIZE];
        ct[..ML_KEM_CIPHERTEXT_SIZE].copy_from_slice(&ct_m);
        ct[ML_KEM_CIPHERTEXT_SIZE..].copy_from_slice(&ct_x);
        let shared = combine(&ss_m, &ss_x, &ct_x, &self.x25519);
        ss_m.as_mut_slice().zeroize();
        (ct, shared)
    }
}

impl DecapsulationKey {
    /// The key of a 32-byte seed, expanded.
    pub(crate) fn from_seed(seed: &[u8; SEED_SIZE]) -> DecapsulationKey {
        let mut expanded = Zeroizing::new([0u8; 96]);
        let mut shake = Shake256::default();
        shake.update(seed);
        shake.finalize_xof().read(expanded.as_mut());
        let d = <&B32>::try_from(&expanded[..32]).expect("32 bytes");
        let z = <&B32>::try_from(&expanded[32..64]).expect("32 bytes");
        let (ml_kem, ml_kem_public) = MlKem768::generate_deterministic(d, z);
        let x25519_secret =
            Zeroizing::new(<[u8; 32]>::try_from(&expanded[64..]).expect("the last 32 of 96 bytes"));
        let public = EncapsulationKey {
            ml_kem: ml_kem_public,
            x25519: x25519_base(&x25519_secret),
        };
        DecapsulationKey {
            seed: Zeroizing::new(*seed),
            ml_kem,
            x25519: x25519_secret,
            public,
        }
    }

    /// The seed: the key's whole secret.
    pub(crate) fn seed(&self) -> &[u8; SEED_SIZE] {
        &self.seed
    }

    /// The matching public key.
    pub(crate) fn public(&self) -> &EncapsulationKey {
        &self.public
    }

    /// The shared secret of `ct`; `None` if its X25519 share makes the X25519 secret all
    /// zeros (a low-order point). ML-KEM rejects implicitly: a damaged ciphertext gives an
    /// unrelated secret, not an error.
    pub(crate) fn decapsulate(&self, ct: &[u8; CIPHERTEXT_SIZE]) -> Option<Zeroizing<[u8; 32]>> {
        let (ct_m, ct_x) = ct.split_at(ML_KEM_CIPHERTEXT_SIZE);
        let ct_m = <&ml_kem::Ciphertext<MlKem768>>::try_from(ct_m).expect("1088 bytes");
        let ct_x: &[u8; 32] = ct_x.try_into().expect("32 bytes");
        let ss_x = x25519(&self.x25519, ct_x)?;
        let mut ss_m = self
            .ml_kem
            .decapsulate(ct_m)
            .expect("ML-KEM decapsulation cannot fail");
        let shared = combine(&ss_m, &ss_x, ct_x, &self.public.x25519);
        ss_m.as_mut_slice().zeroize();
        Some(shared)
    }
}

/// The X-Wing combiner (section 5.3).
fn combine(ss_m: &[u8], ss_x: &[u8; 32], ct_x: &[u8; 32], pk_x: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut hash = Sha3_256::new();
    for part in [ss_m, ss_x, ct_x, pk_x, LABEL] {
        Digest::update(&mut hash, part);
    }
    Zeroizing::new(hash.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::hpke::tests::vector_records;

    /// Draft 06, Appendix C: the seed gives the public key; EncapsulateDerand gives the
    /// ciphertext and the shared secret; the seed's key decapsulates the ciphertext to it.
    #[test]
    fn matches_the_draft_06_vectors() {
        let records = vector_records(include_str!("../../testdata/xwing/draft-06-vectors.txt"));
        assert_eq!(records.len(), 3);
        for v in &records {
            let key = DecapsulationKey::from_seed(v["seed"].as_slice().try_into().unwrap());
            assert_eq!(key.public().to_bytes().as_slice(), v["pk"]);
            let parsed = EncapsulationKey::from_bytes(v["pk"].as_slice().try_into().unwrap());
            assert!(parsed.unwrap() == *key.public());

            let (ct, ss) = key
                .public()
                .encapsulate(v["eseed"].as_slice().try_into().unwrap());
            assert_eq!(ct.as_slice(), v["ct"]);
            assert_eq!(ss.as_slice(), v["ss"]);
            assert_eq!(key.decapsulate(&ct).unwrap().as_slice(), v["ss"]);
        }
    }

    #[test]
    fn every_part_of_the_ciphertext_matters() {
        let key = DecapsulationKey::from_seed(&[3; 32]);
        let (ct, ss) = key.public().encapsulate(&[4; 64]);
        for at in [
            0,
            600,
            ML_KEM_CIPHERTEXT_SIZE - 1,
            ML_KEM_CIPHERTEXT_SIZE,
            CIPHERTEXT_SIZE - 2,
        ] {
            let mut bad = ct;
            bad[at] ^= 0x04;
            assert_ne!(key.decapsulate(&bad).unwrap(), ss, "byte {at}");
        }
        let other = DecapsulationKey::from_seed(&[5; 32]);
        assert_ne!(other.decapsulate(&ct).unwrap(), ss);
    }

    #[test]
    fn a_low_order_x25519_share_is_refused() {
        let key = DecapsulationKey::from_seed(&[3; 32]);
        let (mut ct, _) = key.public().encapsulate(&[4; 64]);
        ct[ML_KEM_CIPHERTEXT_SIZE..].fill(0);
        assert!(key.decapsulate(&ct).is_none());
        ct[ML_KEM_CIPHERTEXT_SIZE] = 1; // the point u = 1, of order 4
        assert!(key.decapsulate(&ct).is_none());
    }

    #[test]
    fn public_keys_are_checked() {
        let good = DecapsulationKey::from_seed(&[3; 32]).public().to_bytes();
        assert!(EncapsulationKey::from_bytes(&good).is_some());
        // FIPS 203 section 7.2: a first coefficient of 0xfff, not below q = 3329.
        let mut unreduced = good;
        unreduced[0] = 0xff;
        unreduced[1] |= 0x0f;
        assert!(EncapsulationKey::from_bytes(&unreduced).is_none());
        let mut low_order = good;
        low_order[ML_KEM_PUBLIC_KEY_SIZE..].fill(0);
        assert!(EncapsulationKey::from_bytes(&low_order).is_none());
    }

    #[test]
    fn a_clone_is_the_same_key() {
        let key = DecapsulationKey::from_seed(&[8; 32]);
        let copy = key.clone();
        assert_eq!(copy.seed(), key.seed());
        assert!(copy.public() == key.public());
        let (ct, ss) = key.public().encapsulate(&[1; 64]);
        assert_eq!(copy.decapsulate(&ct).unwrap(), ss);
    }
}
