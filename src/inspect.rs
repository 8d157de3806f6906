//! What a sealed file says about itself, read without any key: its stanzas and sizes.
//!
//! A stanza names its recipient only where the recipient type puts a tag in it (`ssh-rsa`,
//! `ssh-ed25519`: the first four bytes of SHA-256 of the SSH public key). An X25519 stanza
//! holds an ephemeral share only: which key it is for cannot be known without trying it.

use crate::error::DecryptError;
use crate::format::armor;
use crate::format::stream::{chunk_count, plaintext_len, NONCE_SIZE};
use crate::format::{Header, VERSION_LINE};

/// One stanza, as far as it can be read without a key.
#[derive(Debug, Clone)]
pub struct StanzaInfo {
    /// The stanza type, such as `X25519` or `ssh-ed25519`.
    pub kind: String,
    /// Its arguments, as written.
    pub args: Vec<String>,
    /// The size of its body in bytes.
    pub body_len: usize,
    /// The tag naming its recipient, for the types that carry one.
    pub tag: Option<String>,
}

impl StanzaInfo {
    /// Who the stanza is for, in words.
    pub fn target(&self) -> String {
        match (&self.tag, self.kind.as_str()) {
            (Some(tag), "p256tag") => format!(
                "a P-256 key in hardware (age1tag), tagged {tag}; its plugin opens it (doc/plugins.md)"
            ),
            (Some(tag), "mlkem768p256tag") => format!(
                "a post-quantum ML-KEM-768 + P-256 key in hardware (age1tagpq), tagged {tag}; its plugin opens it"
            ),
            (Some(tag), _) => {
                format!("the SSH key tagged {tag} (the first 4 bytes of SHA-256 of its public key)")
            }
            (None, "X25519") => "not knowable (X25519 stanzas do not name their recipient)".into(),
            (None, "scrypt") => "a passphrase".into(),
            (None, crate::signing::sshsig::SIGNER_STANZA) => format!(
                "not a recipient; it names the file's signer, {} (unseal --allowed-signers checks it)",
                self.signer().unwrap_or("")
            ),
            (None, _) => {
                "not knowable (a type this version does not know: a plugin's, perhaps, which its plugin opens)".into()
            }
        }
    }

    /// The signer's fingerprint, for the stanza that names the file's signer: it opens
    /// nothing, and no key is tried on it.
    pub fn signer(&self) -> Option<&str> {
        match self.kind == crate::signing::sshsig::SIGNER_STANZA {
            true => Some(self.args.first().map_or("", String::as_str)),
            false => None,
        }
    }
}

/// What a sealed file says about itself.
#[derive(Debug)]
pub struct Inspection {
    /// The format version line.
    pub version: &'static str,
    /// Whether the file is ASCII-armored (the sizes below are of the decoded file).
    pub armored: bool,
    /// The recipient stanzas, in file order.
    pub stanzas: Vec<StanzaInfo>,
    /// The header size in bytes, MAC line included.
    pub header_len: u64,
    /// Everything after the header: payload nonce and chunks.
    pub payload_len: u64,
    /// The plaintext size and chunk count, or why the payload size is impossible.
    pub plaintext: Result<(u64, u64), DecryptError>,
}

impl Inspection {
    /// From a parsed header, its length, and the length of the whole (decoded) file.
    pub fn new(header: &Header, header_len: u64, file_len: u64, armored: bool) -> Inspection {
        let payload_len = file_len.saturating_sub(header_len);
        let plaintext = match payload_len.checked_sub(NONCE_SIZE as u64) {
            Some(chunks) => plaintext_len(chunks).map(|len| (len, chunk_count(len))),
            None => Err(DecryptError::header(
                "the file ends before the 16-byte payload nonce",
            )),
        };
        let stanzas = header
            .stanzas
            .iter()
            .map(|s| StanzaInfo {
                kind: s.kind.clone(),
                args: s.args.clone(),
                body_len: s.body.len(),
                tag: match s.kind.as_str() {
                    "ssh-rsa" | "ssh-ed25519" | "p256tag" | "mlkem768p256tag" => {
                        s.args.first().cloned()
                    }
                    _ => None,
                },
            })
            .collect();
        Inspection {
            version: VERSION_LINE,
            armored,
            stanzas,
            header_len,
            payload_len,
            plaintext,
        }
    }

    /// Inspects a whole file in memory, armored or not; returns the header too.
    pub fn of_bytes(file: &[u8]) -> Result<(Inspection, Header), DecryptError> {
        if armor::is_armored(file) {
            let decoded = armor::decode(file)?;
            let (header, len) = Header::parse(&decoded)?;
            let info = Inspection::new(&header, len as u64, decoded.len() as u64, true);
            return Ok((info, header));
        }
        let (header, len) = Header::parse(file)?;
        let info = Inspection::new(&header, len as u64, file.len() as u64, false);
        Ok((info, header))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::x25519;

    #[test]
    fn sizes_and_chunks_of_a_sealed_file() {
        let id = x25519::Identity::generate();
        for len in [0usize, 1, 65_536, 65_537] {
            let sealed = crate::encrypt(&[&id.to_public()], &vec![7u8; len]).unwrap();
            let (info, _) = Inspection::of_bytes(&sealed).unwrap();
            assert!(!info.armored);
            assert_eq!(info.stanzas.len(), 1);
            assert_eq!(info.stanzas[0].kind, "X25519");
            assert_eq!(info.stanzas[0].tag, None);
            assert_eq!(info.header_len + info.payload_len, sealed.len() as u64);
            let (plain, chunks) = info.plaintext.unwrap();
            assert_eq!(plain, len as u64);
            assert_eq!(chunks, crate::format::stream::chunk_count(len as u64));

            let (truncated, _) = Inspection::of_bytes(&sealed[..sealed.len() - 1]).unwrap();
            if len == 0 {
                assert!(truncated.plaintext.is_err());
            }
        }
    }

    #[test]
    fn the_signer_stanza_is_named_for_what_it_is() {
        let signer = crate::signing::sshsig::SigningKey::generate_ed25519("alice").public_key();
        let server = crate::keys::x25519::Identity::generate();
        let sealed = crate::Encryptor::new_signed_by(&[&server.to_public()], &signer)
            .unwrap()
            .seal_slice(b"x");
        let (info, _) = Inspection::of_bytes(&sealed).unwrap();
        let target = info.stanzas[1].target();
        assert!(target.contains(&signer.fingerprint()), "{target}");
        assert!(target.starts_with("not a recipient"), "{target}");
        assert_eq!(info.stanzas[1].signer(), Some(&*signer.fingerprint()));
        assert_eq!(info.stanzas[0].signer(), None);
    }

    #[test]
    fn armor_is_seen_and_decoded() {
        let id = x25519::Identity::generate();
        let sealed = crate::encrypt(&[&id.to_public()], b"hi").unwrap();
        let armored = armor::encode(&sealed);
        let (info, _) = Inspection::of_bytes(armored.as_bytes()).unwrap();
        assert!(info.armored);
        assert_eq!(info.plaintext.unwrap(), (2, 1));
        let broken = armored.replacen("\n", "\n!!!!", 1);
        assert!(matches!(
            Inspection::of_bytes(broken.as_bytes()),
            Err(DecryptError::InvalidArmor(_))
        ));
    }
}
