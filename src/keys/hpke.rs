//! HPKE (RFC 9180) in base mode, single shot, as age's post-quantum stanza uses it: one short
//! message per encapsulation, KDF HKDF-SHA256, AEAD ChaCha20-Poly1305, empty associated data.
//!
//! The KEM is the caller's. It contributes its id (to the suite id, which every derivation is
//! labelled with) and the shared secret it encapsulated; the key schedule here turns that into
//! the message's key and nonce (RFC 9180, sections 5.1 and 6.1):
//!
//! ```text
//! suite_id             = "HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) || I2OSP(aead_id, 2)
//! key_schedule_context = 0x00 || LabeledExtract("", "psk_id_hash", "")
//!                             || LabeledExtract("", "info_hash", info)
//! secret               = LabeledExtract(shared_secret, "secret", "")
//! key                  = LabeledExpand(secret, "key", key_schedule_context, 32)
//! base_nonce           = LabeledExpand(secret, "base_nonce", key_schedule_context, 12)
//! ```
//!
//! The one message is sealed under sequence number 0, so its nonce is `base_nonce` itself.
//! The exporter secret is not derived: age exports nothing.

use zeroize::Zeroizing;

use crate::primitives::{hkdf_expand, hkdf_extract, open_with_nonce, seal_with_nonce};

/// HPKE's version label, prefixed to every labelled derivation.
const VERSION: &[u8] = b"HPKE-v1";
/// The KDF: HKDF-SHA256.
const KDF_HKDF_SHA256: u16 = 0x0001;
/// The AEAD: ChaCha20Poly1305.
const AEAD_CHACHA20_POLY1305: u16 = 0x0003;
/// The base mode: no pre-shared key, no sender authentication.
const MODE_BASE: u8 = 0x00;

/// An HPKE cipher suite: a KEM id with HKDF-SHA256 and ChaCha20-Poly1305.
pub(crate) struct Suite {
    id: [u8; 10],
}

impl Suite {
    /// The suite of the KEM `kem_id`.
    pub(crate) const fn new(kem_id: u16) -> Suite {
        let [k0, k1] = kem_id.to_be_bytes();
        let [f0, f1] = KDF_HKDF_SHA256.to_be_bytes();
        let [a0, a1] = AEAD_CHACHA20_POLY1305.to_be_bytes();
        Suite {
            id: [b'H', b'P', b'K', b'E', k0, k1, f0, f1, a0, a1],
        }
    }

    /// The key and nonce of the one message sent with `shared_secret` (section 5.1).
    pub(crate) fn key_schedule(&self, shared_secret: &[u8], info: &[u8]) -> Context {
        let context = self.key_schedule_context(info);
        let secret = self.labeled_extract(shared_secret, b"secret", b"");
        let mut key = Zeroizing::new([0u8; 32]);
        self.labeled_expand(&secret, b"key", &context, key.as_mut());
        let mut base_nonce = [0u8; 12];
        self.labeled_expand(&secret, b"base_nonce", &context, &mut base_nonce);
        Context { key, base_nonce }
    }

    fn key_schedule_context(&self, info: &[u8]) -> [u8; 65] {
        let mut context = [0u8; 65];
        context[0] = MODE_BASE;
        context[1..33].copy_from_slice(self.labeled_extract(b"", b"psk_id_hash", b"").as_ref());
        context[33..].copy_from_slice(self.labeled_extract(b"", b"info_hash", info).as_ref());
        context
    }

    fn labeled_extract(&self, salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<[u8; 32]> {
        labeled_extract(&self.id, salt, label, ikm)
    }

    fn labeled_expand(&self, prk: &[u8; 32], label: &[u8], info: &[u8], out: &mut [u8]) {
        labeled_expand(&self.id, prk, label, info, out)
    }
}

/// The shared secret of a Diffie-Hellman KEM (DHKEM, RFC 9180 section 4.1) from its `dh`
/// and `kem_context` (`enc || pkRm`): `ExtractAndExpand`, under the KEM's own suite id.
pub(crate) fn dhkem_shared_secret(
    kem_id: u16,
    dh: &[u8],
    kem_context: &[u8],
) -> Zeroizing<[u8; 32]> {
    let [k0, k1] = kem_id.to_be_bytes();
    let suite_id = [b'K', b'E', b'M', k0, k1];
    let eae_prk = labeled_extract(&suite_id, b"", b"eae_prk", dh);
    let mut shared = Zeroizing::new([0u8; 32]);
    labeled_expand(
        &suite_id,
        &eae_prk,
        b"shared_secret",
        kem_context,
        shared.as_mut(),
    );
    shared
}

/// `HKDF-Extract(salt, "HPKE-v1" || suite_id || label || ikm)`.
fn labeled_extract(suite_id: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<[u8; 32]> {
    let labeled = Zeroizing::new([VERSION, suite_id, label, ikm].concat());
    hkdf_extract(salt, &labeled)
}

/// `HKDF-Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info, L)`.
fn labeled_expand(suite_id: &[u8], prk: &[u8; 32], label: &[u8], info: &[u8], out: &mut [u8]) {
    let length = u16::try_from(out.len())
        .expect("HPKE outputs are short")
        .to_be_bytes();
    let labeled = [&length, VERSION, suite_id, label, info].concat();
    hkdf_expand(prk, &labeled, out);
}

/// The derived key and nonce of one HPKE message. The key is zeroized on drop.
pub(crate) struct Context {
    key: Zeroizing<[u8; 32]>,
    base_nonce: [u8; 12],
}

impl Context {
    /// `ContextS.Seal("", plaintext)` at sequence number 0: ciphertext and tag.
    pub(crate) fn seal(self, plaintext: &[u8]) -> Vec<u8> {
        seal_with_nonce(&self.key, &self.base_nonce, plaintext)
    }

    /// `ContextR.Open("", ciphertext)` at sequence number 0; `None` if it does not authenticate.
    pub(crate) fn open(self, ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        open_with_nonce(&self.key, &self.base_nonce, ciphertext)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The `name: hex` records of a test-vector file under `testdata/`, one map per
    /// blank-line-separated record; `#` lines are comments.
    pub(crate) fn vector_records(text: &str) -> Vec<std::collections::BTreeMap<String, Vec<u8>>> {
        let mut records = vec![std::collections::BTreeMap::new()];
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            match line.split_once(": ") {
                Some((name, value)) => {
                    let bytes = crate::primitives::from_hex(value);
                    let record = records.last_mut().expect("one record at least");
                    assert!(record.insert(name.to_string(), bytes).is_none(), "{name}");
                }
                None if records.last().is_some_and(|r| !r.is_empty()) => {
                    records.push(Default::default())
                }
                None => {}
            }
        }
        records.retain(|r| !r.is_empty());
        records
    }

    /// RFC 9180 A.2.1 (the same KDF and AEAD, with DHKEM(X25519) as the KEM): every
    /// intermediate value of the key schedule. Only the suite id depends on the KEM.
    #[test]
    fn key_schedule_matches_rfc9180_a2_1() {
        let records = vector_records(include_str!("../../testdata/hpke/rfc9180-a2-1.txt"));
        let [v] = records.as_slice() else {
            panic!("one vector expected")
        };
        let kem_id = u16::from_be_bytes(v["kem_id"].as_slice().try_into().unwrap());
        let suite = Suite::new(kem_id);
        assert_eq!(&suite.id, b"HPKE\x00\x20\x00\x01\x00\x03");

        assert_eq!(
            suite.key_schedule_context(&v["info"]).as_slice(),
            v["key_schedule_context"]
        );
        let secret = suite.labeled_extract(&v["shared_secret"], b"secret", b"");
        assert_eq!(secret.as_slice(), v["secret"]);
        let context = suite.key_schedule(&v["shared_secret"], &v["info"]);
        assert_eq!(context.key.as_slice(), v["key"]);
        assert_eq!(context.base_nonce.as_slice(), v["base_nonce"]);
    }

    #[test]
    fn the_suite_id_holds_the_kem_kdf_and_aead_ids() {
        assert_eq!(&Suite::new(0x647a).id, b"HPKE\x64\x7a\x00\x01\x00\x03");
    }

    #[test]
    fn seal_then_open_round_trips_and_every_input_matters() {
        let suite = Suite::new(0x647a);
        let sealed = suite
            .key_schedule(b"shared", b"info")
            .seal(b"sixteen byte key");
        assert_eq!(sealed.len(), 32);
        let opened = suite
            .key_schedule(b"shared", b"info")
            .open(&sealed)
            .unwrap();
        assert_eq!(opened.as_slice(), b"sixteen byte key");

        assert!(suite
            .key_schedule(b"shareD", b"info")
            .open(&sealed)
            .is_none());
        assert!(suite
            .key_schedule(b"shared", b"infO")
            .open(&sealed)
            .is_none());
        let other_kem = Suite::new(0x0020);
        assert!(other_kem
            .key_schedule(b"shared", b"info")
            .open(&sealed)
            .is_none());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(suite.key_schedule(b"shared", b"info").open(&bad).is_none());
        }
    }
}
