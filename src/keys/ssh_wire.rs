//! What `ssh-rsa` and `ssh-ed25519` stanzas share: the SSH wire encoding of a public key
//! (RFC 4253 section 6.6), and the tag derived from it.
//!
//! Both stanza types name their recipient by a tag, the first four bytes of SHA-256 of the
//! wire encoding, so an identity can tell a stanza that is not its own without trying it.

use sha2::{Digest, Sha256};
use ssh_key::public::{KeyData, RsaPublicKey};
use ssh_key::Mpint;

use crate::primitives::rsa;

/// The SSH wire encoding of a public key.
pub(crate) fn wire(data: KeyData) -> Vec<u8> {
    ssh_key::PublicKey::new(data, "")
        .to_bytes()
        .expect("a valid public key always encodes")
}

/// The tag of a stanza for the SSH public key whose wire encoding is `wire`.
pub(crate) fn tag(wire: &[u8]) -> [u8; 4] {
    let hash = Sha256::digest(wire);
    [hash[0], hash[1], hash[2], hash[3]]
}

/// The wire form of an RSA public key.
pub(crate) fn rsa_public(key: &rsa::PublicKey) -> RsaPublicKey {
    let mpint = |b: &[u8]| Mpint::from_positive_bytes(b).expect("a positive number");
    RsaPublicKey {
        e: mpint(&key.e()),
        n: mpint(&key.n()),
    }
}
