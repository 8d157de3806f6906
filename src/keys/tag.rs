//! Tagged recipients (`age1tag1...`): age 1.3's native recipients for P-256 keys held in
//! hardware (a YubiKey, the Secure Enclave, a TPM), sealed to without any plugin. Only the
//! sealing side is here: the private key never leaves its hardware, and its plugin opens the
//! files (`age-plugin-yubikey`, `age-plugin-se`, ...: [`crate::keys::plugin`]).
//!
//! - Recipient: a P-256 point, 33 bytes compressed (SEC 1), Bech32 with HRP `age1tag`.
//! - Stanza (C2SP `age.md`, "p256tag recipient stanza"): HPKE `SealBase` of the file key with
//!   DHKEM(P-256, HKDF-SHA256), HKDF-SHA256 and ChaCha20-Poly1305, `info =
//!   "age-encryption.org/p256tag"`, empty `aad`, to the uncompressed point; written as
//!   `-> p256tag base64(tag) base64(enc)` with the ciphertext as its body, where `tag` is the
//!   first 4 bytes of `HKDF-Extract(salt = "age-encryption.org/p256tag", ikm = enc || pkR)`:
//!   the hardware finds its key by it without asking the user.

use std::fmt;

use p256::ecdh::EphemeralSecret;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::OsRng;

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
        let tag = stanza_tag(&kem_context);
        Ok(vec![Stanza {
            kind: STANZA_KIND.into(),
            args: vec![encode_arg(&tag[..4]), encode_arg(&enc)],
            body: SUITE
                .key_schedule(shared.as_slice(), INFO)
                .seal(file_key.expose_secret()),
        }])
    }
}

/// The stanza's tag: the first 4 bytes of `HKDF-Extract(INFO, enc || pkR)`, `pkR` the
/// uncompressed point (as Go age 1.3 computes it; the `age` crate 0.12 takes an earlier
/// draft's, over a hash of the compressed recipient, which hardware plugins no longer match).
fn stanza_tag(kem_context: &[u8]) -> [u8; 4] {
    let prk = hkdf_extract(INFO, kem_context);
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
        assert_eq!(encode_arg(&stanza_tag(&kem_context)), "CXBuUw");
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
