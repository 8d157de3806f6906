//! Tagged recipients (`age1tag1...`, `age1tagpq1...`): age 1.3's native recipients for keys
//! held in hardware (a YubiKey, the Secure Enclave, a TPM), sealed to without any plugin.
//! Only the sealing side is here: the private key never leaves its hardware, and its plugin
//! opens the files (`age-plugin-yubikey`, `age-plugin-se`, ...: [`crate::keys::plugin`]).
//!
//! - Recipient: a P-256 point, 33 bytes compressed (SEC 1), Bech32 with HRP `age1tag`.
//! - Stanza (C2SP `age.md`, "p256tag recipient stanza"): HPKE `SealBase` of the file key with
//!   DHKEM(P-256, HKDF-SHA256), HKDF-SHA256 and ChaCha20-Poly1305, `info =
//!   "age-encryption.org/p256tag"`, empty `aad`, to the uncompressed point; written as
//!   `-> p256tag base64(tag) base64(enc)` with the ciphertext as its body, where `tag` is the
//!   first 4 bytes of `HKDF-Extract(salt = "age-encryption.org/p256tag", ikm = enc || pkR)`:
//!   the hardware finds its key by it without asking the user.
//! - Hybrid ([`HybridRecipient`], post-quantum): an ML-KEM-768 encapsulation key and an
//!   uncompressed P-256 point (1249 bytes), HRP `age1tagpq`; the stanza `mlkem768p256tag` is
//!   the same construction over draft-ietf-hpke-pq's MLKEM768-P256 KEM (id `0x0050`, shared
//!   secret `SHA3-256(ss_M || ss_P || ct_P || pk_P || "MLKEM768-P256")`, as filippo.io/hpke
//!   v0.4.0 under Go age 1.3.0 computes it), `info = "age-encryption.org/mlkem768p256tag"`,
//!   and a tag over the P-256 parts only.

use std::fmt;

use p256::ecdh::EphemeralSecret;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::OsRng;

use std::collections::BTreeSet;

use ml_kem::{EncapsulateDeterministic, EncodedSizeUser, KemCore, MlKem768, B32};
use p256::elliptic_curve::ops::MulByGenerator;
use p256::{NonZeroScalar, ProjectivePoint};
use rand_core::RngCore;
use sha3::{Digest, Sha3_256};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{EncryptError, KeyError};
use crate::format::{encode_arg, Stanza};
use crate::keys::hpke::{dhkem_shared_secret, Suite};
use crate::keys::keytext;
use crate::keys::recipient::{self, FileKey};
use crate::primitives::hkdf_extract;
use crate::shown;

const STANZA_KIND: &str = "p256tag";
const INFO: &[u8] = b"age-encryption.org/p256tag";
/// HPKE's KEM id for DHKEM(P-256, HKDF-SHA256).
const KEM_ID: u16 = 0x0010;
const SUITE: Suite = Suite::new(KEM_ID);
const RECIPIENT_HRP: &str = "age1tag";

const HYBRID_STANZA_KIND: &str = "mlkem768p256tag";
const HYBRID_INFO: &[u8] = b"age-encryption.org/mlkem768p256tag";
/// HPKE's KEM id for MLKEM768-P256 (draft-ietf-hpke-pq).
const HYBRID_KEM_ID: u16 = 0x0050;
const HYBRID_SUITE: Suite = Suite::new(HYBRID_KEM_ID);
const HYBRID_RECIPIENT_HRP: &str = "age1tagpq";
/// The combiner's label, as filippo.io/hpke v0.4.0 (under Go age 1.3.0) has it.
const HYBRID_LABEL: &[u8] = b"MLKEM768-P256";
const ML_KEM_PUBLIC_KEY_SIZE: usize = 1184;
const ML_KEM_CIPHERTEXT_SIZE: usize = 1088;
const POINT_SIZE: usize = 65;

type MlKemEncapsulationKey = <MlKem768 as KemCore>::EncapsulationKey;

/// A P-256 key in hardware, by its public half: `age1tag1...`.
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient(p256::PublicKey);

impl Recipient {
    /// The point, uncompressed: HPKE's `pkRm`.
    fn uncompressed(&self) -> [u8; 65] {
        let point = self.0.to_encoded_point(false);
        point
            .as_bytes()
            .try_into()
            .expect("an uncompressed P-256 point")
    }
}

impl std::str::FromStr for Recipient {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Recipient, KeyError> {
        let invalid = || KeyError::InvalidRecipient(shown::value(s));
        let bytes = keytext::decode(s, RECIPIENT_HRP).ok_or_else(invalid)?;
        // Compressed only (tag 2 or 3), as the encoding says: from_sec1_bytes takes other
        // forms too, the 33-byte "compact" one (tag 5) among them.
        if bytes.len() != 33 || !matches!(bytes[0], 0x02 | 0x03) {
            return Err(invalid());
        }
        p256::PublicKey::from_sec1_bytes(&bytes)
            .map(Recipient)
            .map_err(|_| invalid())
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let compressed = self.0.to_encoded_point(true);
        f.write_str(&keytext::encode(RECIPIENT_HRP, compressed.as_bytes()))
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tag::Recipient({self})")
    }
}

impl recipient::Recipient for Recipient {
    fn wrap(&self, file_key: &FileKey) -> Result<Vec<Stanza>, EncryptError> {
        let ephemeral = EphemeralSecret::random(&mut OsRng);
        let enc: [u8; 65] = ephemeral
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .try_into()
            .expect("an uncompressed P-256 point");
        let dh = ephemeral.diffie_hellman(&self.0);
        let pk = self.uncompressed();
        let kem_context = [enc.as_slice(), &pk].concat();
        let shared = dhkem_shared_secret(KEM_ID, dh.raw_secret_bytes(), &kem_context);
        let tag = stanza_tag(INFO, &kem_context);
        Ok(vec![Stanza {
            kind: STANZA_KIND.into(),
            args: vec![encode_arg(&tag[..4]), encode_arg(&enc)],
            body: SUITE
                .key_schedule(shared.as_slice(), INFO)
                .seal(file_key.expose_secret()),
        }])
    }
}

/// A hybrid post-quantum key in hardware, by its public half: `age1tagpq1...`.
#[derive(Clone, PartialEq)]
pub struct HybridRecipient {
    ml_kem: MlKemEncapsulationKey,
    point: p256::PublicKey,
}

impl HybridRecipient {
    /// The recipient's bytes: the ML-KEM key, then the point uncompressed.
    fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = self.ml_kem.as_bytes().to_vec();
        bytes.extend_from_slice(self.point.to_encoded_point(false).as_bytes());
        bytes
    }

    /// MLKEM768-P256's encapsulation with its randomness given (`m` for ML-KEM, the
    /// ephemeral P-256 scalar): `enc` (ML-KEM's ciphertext, then the ephemeral point) and the
    /// shared secret.
    fn encapsulate(
        &self,
        m: &[u8; 32],
        ephemeral: &NonZeroScalar,
    ) -> (Vec<u8>, Zeroizing<[u8; 32]>) {
        let (ct_m, mut ss_m) = self
            .ml_kem
            .encapsulate_deterministic(&B32::from(*m))
            .expect("ML-KEM encapsulation cannot fail");
        let ct_p = ProjectivePoint::mul_by_generator(ephemeral.as_ref()).to_affine();
        let ct_p = p256::PublicKey::from_affine(ct_p).expect("the point of a non-zero scalar");
        let ct_p = ct_p.to_encoded_point(false);
        let ss_p = p256::ecdh::diffie_hellman(ephemeral, self.point.as_affine());
        let pk_p = self.point.to_encoded_point(false);
        let shared = hybrid_shared_secret(
            &ss_m,
            ss_p.raw_secret_bytes(),
            ct_p.as_bytes(),
            pk_p.as_bytes(),
        );
        ss_m.as_mut_slice().zeroize();
        (([ct_m.as_slice(), ct_p.as_bytes()]).concat(), shared)
    }
}

/// MLKEM768-P256's combiner: `SHA3-256(ss_M || ss_P || ct_P || pk_P || label)`.
fn hybrid_shared_secret(ss_m: &[u8], ss_p: &[u8], ct_p: &[u8], pk_p: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut hash = Sha3_256::new();
    for part in [ss_m, ss_p, ct_p, pk_p, HYBRID_LABEL] {
        hash.update(part);
    }
    Zeroizing::new(hash.finalize().into())
}

impl std::str::FromStr for HybridRecipient {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<HybridRecipient, KeyError> {
        let invalid = || KeyError::InvalidRecipient(shown::value(s));
        let bytes = keytext::decode(s, HYBRID_RECIPIENT_HRP).ok_or_else(invalid)?;
        // The point uncompressed (tag 4), as the encoding says.
        if bytes.len() != ML_KEM_PUBLIC_KEY_SIZE + POINT_SIZE
            || bytes[ML_KEM_PUBLIC_KEY_SIZE] != 0x04
        {
            return Err(invalid());
        }
        let (ml_kem, point) = bytes.split_at(ML_KEM_PUBLIC_KEY_SIZE);
        let encoded =
            ml_kem::Encoded::<MlKemEncapsulationKey>::try_from(ml_kem).map_err(|_| invalid())?;
        let ml_kem = MlKemEncapsulationKey::from_bytes(&encoded);
        // FIPS 203's check of an encapsulation key: it encodes back to itself.
        if ml_kem.as_bytes() != encoded {
            return Err(invalid());
        }
        let point = p256::PublicKey::from_sec1_bytes(point).map_err(|_| invalid())?;
        Ok(HybridRecipient { ml_kem, point })
    }
}

impl fmt::Display for HybridRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&keytext::encode(HYBRID_RECIPIENT_HRP, &self.to_bytes()))
    }
}

impl fmt::Debug for HybridRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tag::HybridRecipient({}...)", &self.to_string()[..24])
    }
}

impl recipient::Recipient for HybridRecipient {
    fn wrap(&self, file_key: &FileKey) -> Result<Vec<Stanza>, EncryptError> {
        let mut m = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(m.as_mut());
        let ephemeral = NonZeroScalar::random(&mut OsRng);
        let (enc, shared) = self.encapsulate(&m, &ephemeral);
        let pk_p = self.point.to_encoded_point(false);
        let tag = stanza_tag(
            HYBRID_INFO,
            &[&enc[ML_KEM_CIPHERTEXT_SIZE..], pk_p.as_bytes()].concat(),
        );
        Ok(vec![Stanza {
            kind: HYBRID_STANZA_KIND.into(),
            args: vec![encode_arg(&tag), encode_arg(&enc)],
            body: HYBRID_SUITE
                .key_schedule(shared.as_slice(), HYBRID_INFO)
                .seal(file_key.expose_secret()),
        }])
    }

    /// Post-quantum: never in a file with a classical recipient.
    fn labels(&self) -> BTreeSet<String> {
        BTreeSet::from([crate::keys::pq::POST_QUANTUM.to_string()])
    }
}

/// A stanza's tag: the first 4 bytes of `HKDF-Extract(info, ikm)`, for p256tag `ikm = enc ||
/// pkR`, `pkR` the uncompressed point (as Go age 1.3 computes it; the `age` crate 0.12 takes an earlier
/// draft's, over a hash of the compressed recipient, which hardware plugins no longer match).
fn stanza_tag(info: &[u8], ikm: &[u8]) -> [u8; 4] {
    let prk = hkdf_extract(info, ikm);
    prk[..4].try_into().expect("4 of 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::hpke::tests::vector_records;

    /// RFC 9180 A.4.1, the suite of the p256tag stanza: the KEM's shared secret from the
    /// published key pairs, then the key schedule's key and nonce.
    #[test]
    fn the_kem_and_key_schedule_match_rfc9180_a4_1() {
        let records = vector_records(include_str!("../../testdata/hpke/rfc9180-a4-1.txt"));
        let [v] = records.as_slice() else {
            panic!("one vector expected")
        };
        let sk = p256::SecretKey::from_slice(&v["skEm"]).unwrap();
        let pk_r = p256::PublicKey::from_sec1_bytes(&v["pkRm"]).unwrap();
        assert_eq!(
            sk.public_key().to_encoded_point(false).as_bytes(),
            v["pkEm"]
        );
        let dh = p256::ecdh::diffie_hellman(sk.to_nonzero_scalar(), pk_r.as_affine());
        let kem_context = [v["enc"].as_slice(), &v["pkRm"]].concat();
        let shared = dhkem_shared_secret(KEM_ID, dh.raw_secret_bytes(), &kem_context);
        assert_eq!(shared.as_slice(), v["shared_secret"]);
        assert_eq!(
            u16::from_be_bytes(v["kem_id"].as_slice().try_into().unwrap()),
            KEM_ID
        );
        let context = SUITE.key_schedule(&v["shared_secret"], &v["info"]);
        let sealed = context.seal(b"x");
        let opened = SUITE
            .key_schedule(&v["shared_secret"], &v["info"])
            .open(&sealed);
        assert_eq!(opened.unwrap().as_slice(), b"x");
    }

    /// The example of the spec (C2SP `age.md`): its recipient and its stanza's `enc` give its
    /// stanza's tag.
    #[test]
    fn the_tag_of_the_specs_example_stanza() {
        let recipient: Recipient =
            "age1tag1qt8lw0ual6avlwmwatk888yqnmdamm7xfd0wak53ut6elz5c4swx2yqdj4e"
                .parse()
                .unwrap();
        let enc = "BOqTylUtZFwkMTxd6UENg8kopiMhRJBOUXMv5w2xVOmJu7eezoALGXiNtq5Vka+UQvaYbQvAdwjIJEDaoBaq7So";
        let enc: [u8; 65] = crate::format::decode_arg(enc).unwrap();
        let kem_context = [enc.as_slice(), &recipient.uncompressed()].concat();
        assert_eq!(encode_arg(&stanza_tag(INFO, &kem_context)), "CXBuUw");
    }

    /// The hybrid key of a vector of the HPKE Go age 1.3 uses, from its seed as the draft
    /// derives it (`SHAKE256(seed)`: ML-KEM's `d` and `z`, then the P-256 scalar); returns the
    /// ML-KEM decapsulation key and the scalar.
    fn hybrid_key(seed: &[u8]) -> (<MlKem768 as KemCore>::DecapsulationKey, NonZeroScalar) {
        use sha3::digest::{ExtendableOutput, Update, XofReader};
        let mut expanded = [0u8; 96];
        let mut shake = sha3::Shake256::default();
        Update::update(&mut shake, seed);
        shake.finalize_xof().read(&mut expanded);
        let (d, z) = (
            B32::try_from(&expanded[..32]).unwrap(),
            B32::try_from(&expanded[32..64]).unwrap(),
        );
        let (dk, _) = MlKem768::generate_deterministic(&d, &z);
        let scalar: [u8; 32] = expanded[64..].try_into().unwrap();
        (dk, NonZeroScalar::from_repr(scalar.into()).unwrap())
    }

    /// Decapsulates `enc` with a key from [`hybrid_key`]: what the hardware does.
    fn hybrid_decapsulate(
        dk: &<MlKem768 as KemCore>::DecapsulationKey,
        scalar: &NonZeroScalar,
        enc: &[u8],
    ) -> Zeroizing<[u8; 32]> {
        use ml_kem::kem::Decapsulate;
        let (ct_m, ct_p) = enc.split_at(ML_KEM_CIPHERTEXT_SIZE);
        let ct_m = <&ml_kem::Ciphertext<MlKem768>>::try_from(ct_m).unwrap();
        let ss_m = dk.decapsulate(ct_m).unwrap();
        let point = p256::PublicKey::from_sec1_bytes(ct_p).unwrap();
        let ss_p = p256::ecdh::diffie_hellman(scalar, point.as_affine());
        let pk = p256::PublicKey::from_secret_scalar(scalar).to_encoded_point(false);
        hybrid_shared_secret(&ss_m, ss_p.raw_secret_bytes(), ct_p, pk.as_bytes())
    }

    /// draft-ietf-hpke-pq's MLKEM768-P256, a vector of the HPKE Go age 1.3 uses: the key from
    /// its seed is its public key, and decapsulates its `enc` to its shared secret with the
    /// combiner sealing uses; what sealing encapsulates decapsulates to the same secret.
    #[test]
    fn the_hybrid_kem_matches_the_vector_of_go_ages_hpke_and_round_trips() {
        let records = vector_records(include_str!("../../testdata/hpke/mlkem768-p256.txt"));
        let [v] = records.as_slice() else {
            panic!("one vector expected")
        };
        let (dk, scalar) = hybrid_key(&v["skRm"]);
        let recipient: HybridRecipient = keytext::encode(HYBRID_RECIPIENT_HRP, &v["pkRm"])
            .parse()
            .unwrap();
        assert_eq!(recipient.to_bytes(), v["pkRm"]);
        assert_eq!(
            dk.encapsulation_key().as_bytes().as_slice(),
            &v["pkRm"][..ML_KEM_PUBLIC_KEY_SIZE]
        );
        let pk = p256::PublicKey::from_secret_scalar(&scalar);
        assert_eq!(pk, recipient.point);
        let shared = hybrid_decapsulate(&dk, &scalar, &v["enc"]);
        assert_eq!(shared.as_slice(), v["shared_secret"]);

        let ephemeral = NonZeroScalar::random(&mut OsRng);
        let (enc, ours) = recipient.encapsulate(&[7; 32], &ephemeral);
        assert_eq!(enc.len(), ML_KEM_CIPHERTEXT_SIZE + POINT_SIZE);
        assert_eq!(
            hybrid_decapsulate(&dk, &scalar, &enc).as_slice(),
            ours.as_slice()
        );
        // And a whole stanza: the tag over the P-256 parts, the file key under HPKE.
        let key = FileKey::generate();
        let [stanza] = <HybridRecipient as recipient::Recipient>::wrap(&recipient, &key)
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(stanza.kind, "mlkem768p256tag");
        let enc: Vec<u8> = base64_decode(&stanza.args[1]);
        let tag = stanza_tag(
            HYBRID_INFO,
            &[
                &enc[ML_KEM_CIPHERTEXT_SIZE..],
                pk.to_encoded_point(false).as_bytes(),
            ]
            .concat(),
        );
        assert_eq!(stanza.args[0], encode_arg(&tag));
        let shared = hybrid_decapsulate(&dk, &scalar, &enc);
        let opened = HYBRID_SUITE
            .key_schedule(shared.as_slice(), HYBRID_INFO)
            .open(&stanza.body);
        assert_eq!(opened.unwrap().as_slice(), key.expose_secret());
    }

    fn base64_decode(arg: &str) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(arg)
            .unwrap()
    }

    #[test]
    fn recipients_are_compressed_points_and_round_trip() {
        let sk = p256::SecretKey::random(&mut OsRng);
        let compressed = sk.public_key().to_encoded_point(true);
        let text = keytext::encode(RECIPIENT_HRP, compressed.as_bytes());
        let recipient: Recipient = text.parse().unwrap();
        assert_eq!(recipient.to_string(), text);
        // Uncompressed, or not a point: refused.
        let uncompressed = sk.public_key().to_encoded_point(false);
        let long = keytext::encode(RECIPIENT_HRP, uncompressed.as_bytes());
        assert!(long.parse::<Recipient>().is_err());
        for first in [0x00, 0x04, 0x05] {
            let mut bad = compressed.as_bytes().to_vec();
            bad[0] = first;
            assert!(keytext::encode(RECIPIENT_HRP, &bad)
                .parse::<Recipient>()
                .is_err());
        }
    }
}
