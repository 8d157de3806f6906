//! Tagged recipients (`age1tag1...`, issue 21): what `seal` writes to a P-256 hardware key
//! opens with a software stand-in for that key, built here from the spec (C2SP `age.md`,
//! "p256tag recipient stanza", as Go age 1.3 implements it) on the `hpke` crate, an HPKE
//! implementation independent of ours. The `age` crate (0.12) writes the same HPKE
//! ciphertext, but its tag follows an earlier draft: the stand-in opens its stanza when told
//! to skip the tag.

use std::str::FromStr;

use hkdf::Hkdf;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::DhP256HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, Serializable};
use sha2::Sha256;

use seal::format::Stanza;
use seal::{DecryptError, FileKey, Identity};

const INFO: &[u8] = b"age-encryption.org/p256tag";

/// A P-256 key in software, opening p256tag stanzas as the spec says a hardware key's plugin
/// does: by the stanza's tag first, then HPKE `OpenBase`.
struct SoftTag {
    secret: <DhP256HkdfSha256 as Kem>::PrivateKey,
    public: Vec<u8>,
    /// Skip stanzas whose tag is not this key's (as a hardware plugin does).
    match_tag: bool,
}

impl SoftTag {
    fn generate() -> SoftTag {
        let (secret, public) = DhP256HkdfSha256::gen_keypair(&mut rand_core::OsRng);
        SoftTag {
            secret,
            public: public.to_bytes().to_vec(),
            match_tag: true,
        }
    }

    /// `age1tag1...`: the point compressed, as the spec encodes recipients.
    fn recipient(&self) -> String {
        let point = p256::PublicKey::from_sec1_bytes(&self.public).unwrap();
        let compressed = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&point, true);
        let hrp = bech32::Hrp::parse("age1tag").unwrap();
        bech32::encode::<bech32::Bech32>(hrp, compressed.as_bytes()).unwrap()
    }
}

fn b64(arg: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(arg)
        .ok()
}

impl Identity for SoftTag {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>> {
        if stanza.kind != "p256tag" {
            return None;
        }
        let [tag, enc] = stanza.args.as_slice() else {
            panic!("a p256tag stanza has two arguments after its type: {stanza:?}");
        };
        let (tag, enc) = (b64(tag).unwrap(), b64(enc).unwrap());
        assert_eq!((tag.len(), enc.len(), stanza.body.len()), (4, 65, 32));
        let (expected, _) =
            Hkdf::<Sha256>::extract(Some(INFO), &[enc.as_slice(), &self.public].concat());
        if self.match_tag && tag != expected[..4] {
            return None;
        }
        let enc = <DhP256HkdfSha256 as Kem>::EncappedKey::from_bytes(&enc).unwrap();
        let key = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, DhP256HkdfSha256>(
            &OpModeR::Base,
            &self.secret,
            &enc,
            INFO,
            &stanza.body,
            b"",
        )
        .ok()?;
        Some(Ok(FileKey::from_slice(&key).unwrap()))
    }
}

#[test]
fn seal_to_a_tag_recipient_opens_with_the_key_and_matches_the_age_crate() {
    let (key, other) = (SoftTag::generate(), SoftTag::generate());
    let plaintext = super::data(100_000);
    let recipient = seal::keys::parse_recipient(&key.recipient()).unwrap();
    let sealed = seal::encrypt(&[recipient.as_ref()], &plaintext).unwrap();
    let (header, _) = seal::format::Header::parse(&sealed).unwrap();
    assert_eq!(header.stanzas.len(), 1);
    assert_eq!(header.stanzas[0].kind, "p256tag");
    assert_eq!(seal::decrypt(&[&key], &sealed).unwrap(), plaintext);
    // Another P-256 key: its tag does not match, and it is not asked to try.
    assert!(matches!(
        seal::decrypt(&[&other], &sealed),
        Err(DecryptError::NoMatch { .. })
    ));

    // The age crate, to the same recipient: the same HPKE ciphertext, another tag.
    let theirs = age::tag::Recipient::from_str(&key.recipient()).unwrap();
    let sealed = age::encrypt(&theirs, &plaintext).unwrap();
    assert!(seal::decrypt(&[&key], &sealed).is_err());
    let any_tag = SoftTag {
        match_tag: false,
        ..key
    };
    assert_eq!(seal::decrypt(&[&any_tag], &sealed).unwrap(), plaintext);
    let key = any_tag;
    // And the text of a recipient reads back as the age crate writes it.
    assert_eq!(theirs.to_string(), key.recipient());
    assert_eq!(recipient_text(&key.recipient()), key.recipient());
}

fn recipient_text(s: &str) -> String {
    seal::keys::parse_public_keys(s).unwrap()[0].to_string()
}
