//! The two small traits every key type implements, and the file key they protect.
//!
//! A [`Recipient`] wraps the file key into stanzas; an [`Identity`] tries to unwrap a stanza.
//! "This stanza is not mine" (`None`) is an expected outcome, distinct from "this stanza is
//! mine and it is broken" (`Some(Err(..))`), which stops decryption.

use std::collections::BTreeSet;

use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::error::{DecryptError, EncryptError};
use crate::format::Stanza;

/// Size of an age file key.
pub const FILE_KEY_SIZE: usize = 16;

/// The random key a file is encrypted under. Zeroized on drop; never printed.
pub struct FileKey(Zeroizing<[u8; FILE_KEY_SIZE]>);

impl FileKey {
    /// A fresh random file key.
    pub fn generate() -> FileKey {
        let mut key = Zeroizing::new([0u8; FILE_KEY_SIZE]);
        OsRng.fill_bytes(key.as_mut());
        FileKey(key)
    }

    /// A file key from bytes unwrapped by an identity; `None` unless exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<FileKey> {
        let bytes: [u8; FILE_KEY_SIZE] = bytes.try_into().ok()?;
        Some(FileKey(Zeroizing::new(bytes)))
    }

    /// The key bytes, for recipient types that wrap them.
    pub fn expose_secret(&self) -> &[u8; FILE_KEY_SIZE] {
        &self.0
    }
}

/// Something a file can be sealed to.
pub trait Recipient: Send + Sync {
    /// Wraps `file_key` into one or more stanzas for the header. Fails only where the key
    /// lives elsewhere ([`crate::keys::plugin`]).
    fn wrap(&self, file_key: &FileKey) -> Result<Vec<Stanza>, EncryptError>;

    /// Labels that every recipient of one file must share, as age's `RecipientWithLabels`:
    /// sealing refuses recipients whose label sets differ. Post-quantum recipients carry
    /// `postquantum`, so no file is sealed to one of them and to a classical key
    /// (which would leave it only as strong as the classical key). None by default.
    fn labels(&self) -> BTreeSet<String> {
        BTreeSet::new()
    }

    /// Whether this recipient must be alone in its file's header: no other recipient, and no
    /// stanza beside its own, not even one that opens nothing (such as the signer's). A
    /// passphrase must ([`crate::keys::scrypt`]). Age gives such a recipient a label no other
    /// shares; asking outright also keeps out the stanzas that no recipient wraps, and lets
    /// sealing say which rule was broken ([`EncryptError::PassphraseNotAlone`]). No by default.
    fn must_be_alone(&self) -> bool {
        false
    }
}

/// Checks that `recipients` may share one file: they all carry the same labels.
pub(crate) fn check_compatible(recipients: &[&dyn Recipient]) -> Result<(), EncryptError> {
    let mut labels = recipients.iter().map(|r| r.labels());
    match labels.next() {
        Some(first) if labels.any(|other| other != first) => {
            Err(EncryptError::IncompatibleRecipients)
        }
        _ => Ok(()),
    }
}

/// Checks that `recipients` may share one header with `extra` stanzas that no recipient
/// wraps: they are compatible, and one that must be alone is.
pub(crate) fn check_header(
    recipients: &[&dyn Recipient],
    extra: usize,
) -> Result<(), EncryptError> {
    check_compatible(recipients)?;
    let company = recipients.len() + extra > 1;
    match company && recipients.iter().any(|r| r.must_be_alone()) {
        true => Err(EncryptError::PassphraseNotAlone),
        false => Ok(()),
    }
}

/// A private key that can open files sealed to its recipient.
pub trait Identity: Send + Sync {
    /// `None` if the stanza is not addressed to this kind of key or does not open with it;
    /// `Some(Err(..))` if it is of this key's type but malformed.
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>>;

    /// [`Identity::unwrap_stanza`] over a whole header's stanzas: the first that this key
    /// opens, or is malformed for it. A key that opens a header in one go (a plugin, which
    /// is a process to start) does it here.
    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, DecryptError>> {
        stanzas.iter().find_map(|stanza| self.unwrap_stanza(stanza))
    }

    /// Whether this key unwraps many files' keys better together than one at a time (a
    /// plugin: one session, one PIN, one touch), so that batch mode hands it every header
    /// first ([`Identity::unwrap_many`]). No by default.
    fn unwraps_many(&self) -> bool {
        false
    }

    /// [`Identity::unwrap_stanzas`] for many files' headers, one answer each: by default one
    /// at a time.
    fn unwrap_many(&self, headers: &[Vec<Stanza>]) -> Vec<Option<Result<FileKey, DecryptError>>> {
        headers.iter().map(|h| self.unwrap_stanzas(h)).collect()
    }

    /// The fingerprint of this key's public half (`SHA256:...`, as
    /// [`crate::keys::PublicKey::fingerprint`]), for records that say which key did what;
    /// `None` for a key without one (a passphrase).
    fn fingerprint(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recipient of no real key type: one stanza, the labels and the rule it is given.
    struct Toy {
        labels: &'static [&'static str],
        alone: bool,
    }

    impl Recipient for Toy {
        fn wrap(&self, _: &FileKey) -> Result<Vec<Stanza>, EncryptError> {
            let (kind, args, body) = ("toy".into(), Vec::new(), Vec::new());
            Ok(vec![Stanza { kind, args, body }])
        }
        fn labels(&self) -> BTreeSet<String> {
            self.labels.iter().map(|l| l.to_string()).collect()
        }
        fn must_be_alone(&self) -> bool {
            self.alone
        }
    }

    const PLAIN: Toy = Toy {
        labels: &[],
        alone: false,
    };
    const ALONE: Toy = Toy {
        labels: &[],
        alone: true,
    };
    const LABELLED: Toy = Toy {
        labels: &["postquantum"],
        alone: false,
    };

    #[test]
    fn one_that_must_be_alone_has_no_recipient_and_no_stanza_beside_it() {
        assert!(check_header(&[&ALONE], 0).is_ok());
        assert!(check_header(&[&PLAIN, &PLAIN], 1).is_ok());
        for (recipients, extra) in [
            (&[&ALONE as &dyn Recipient, &PLAIN][..], 0),
            (&[&PLAIN, &ALONE], 0),
            (&[&ALONE, &ALONE], 0),
            (&[&ALONE], 1),
        ] {
            assert!(matches!(
                check_header(recipients, extra),
                Err(EncryptError::PassphraseNotAlone)
            ));
        }
    }

    #[test]
    fn differing_labels_are_told_first() {
        assert!(matches!(
            check_header(&[&LABELLED, &PLAIN], 0),
            Err(EncryptError::IncompatibleRecipients)
        ));
        assert!(matches!(
            check_header(&[&LABELLED, &ALONE], 0),
            Err(EncryptError::IncompatibleRecipients)
        ));
        assert!(check_header(&[&LABELLED, &LABELLED], 0).is_ok());
    }
}
