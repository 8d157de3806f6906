//! X25519 with one peer point many times: a batch sealing every file to one recipient.
//!
//! Each file gets a fresh ephemeral scalar `e`, and its shared secret is `X25519(e, R)` for the
//! same recipient point `R`. A Montgomery ladder starts from nothing each time; a table of
//! multiples of `R` (the fixed-base method that computes public keys, here with `R` as the
//! base) does the same multiplication in about a third of the time. The table is built from
//! the third agreement on, so one file pays nothing for it.
//!
//! The result is the ladder's exactly. `R` is taken to an Edwards point (either sign: a point
//! and its negation have the same Montgomery `u`), multiplied by the clamped scalar, and taken
//! back to `u`. Clamping makes the scalar a multiple of the cofactor, so a small-order part of
//! `R` vanishes as it does on the ladder, and a result at the identity comes back as `u = 0`,
//! which [`X25519Peer::exchange`] refuses as the ladder's all-zero output is refused. A point
//! with no Edwards form (on the quadratic twist, or `u = -1`) keeps the ladder. The table's
//! look-ups and additions take the same time whatever the scalar (each look-up reads every
//! entry), as for the secret scalars of public keys.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use curve25519_dalek::edwards::EdwardsBasepointTable;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::traits::BasepointTable;
use zeroize::Zeroizing;

use super::{x25519_base, X25519Secret};

/// Agreements with a peer made by the ladder before its table is built.
const LADDER_AGREEMENTS: u32 = 2;

/// A peer's X25519 point, agreed with many times ([`X25519Peer::exchange`]).
pub struct X25519Peer {
    point: [u8; 32],
    agreements: AtomicU32,
    /// Built on first need past [`LADDER_AGREEMENTS`]; `None` for a point with no Edwards
    /// form, which keeps the ladder.
    table: OnceLock<Option<Box<EdwardsBasepointTable>>>,
}

impl X25519Peer {
    /// The peer point `point` (a `u`-coordinate, as RFC 7748 encodes it).
    pub fn new(point: [u8; 32]) -> X25519Peer {
        X25519Peer {
            point,
            agreements: AtomicU32::new(0),
            table: OnceLock::new(),
        }
    }

    /// The point, as given.
    pub fn point(&self) -> &[u8; 32] {
        &self.point
    }

    /// The public key of the ephemeral scalar `secret`, and X25519 of `secret` with this
    /// point (RFC 7748, with clamping): `None` when that is all zeros, as it is for a
    /// low-order point.
    pub fn exchange(&self, secret: &[u8; 32]) -> ([u8; 32], Option<Zeroizing<[u8; 32]>>) {
        let Some(table) = self.table() else {
            let key = X25519Secret::new(secret);
            return (key.public(), key.agree(&self.point));
        };
        let shared = Zeroizing::new(table.mul_base_clamped(*secret).to_montgomery().0);
        // No early exit: the test takes the same time whatever the bytes.
        let nonzero = shared.iter().fold(0, |acc, b| acc | b) != 0;
        (x25519_base(secret), nonzero.then_some(shared))
    }

    fn table(&self) -> Option<&EdwardsBasepointTable> {
        if let Some(table) = self.table.get() {
            return table.as_deref();
        }
        if self.agreements.fetch_add(1, Ordering::Relaxed) < LADDER_AGREEMENTS {
            return None;
        }
        let table = self.table.get_or_init(|| {
            let point = MontgomeryPoint(self.point).to_edwards(0)?;
            Some(Box::new(EdwardsBasepointTable::create(&point)))
        });
        table.as_deref()
    }
}

impl Clone for X25519Peer {
    /// The same point; its table is built again if needed.
    fn clone(&self) -> X25519Peer {
        X25519Peer::new(self.point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::x25519;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use rand_core::{OsRng, RngCore};

    fn random() -> [u8; 32] {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        bytes
    }

    /// A peer whose table is built (or known to be impossible).
    fn warm(point: [u8; 32]) -> X25519Peer {
        let peer = X25519Peer::new(point);
        for _ in 0..=LADDER_AGREEMENTS {
            peer.exchange(&random());
        }
        assert!(peer.table.get().is_some(), "the table was tried");
        peer
    }

    #[test]
    fn the_table_agrees_with_the_ladder_on_every_kind_of_point() {
        let mut points = Vec::new();
        for _ in 0..8 {
            // Public keys, as recipients are.
            points.push(super::super::x25519_base(&random()));
            // Any 32 bytes: on the curve or on its twist, the top bit set or not.
            points.push(random());
        }
        // Public keys with a small-order part added, each of the eight.
        let public = curve25519_dalek::EdwardsPoint::mul_base_clamped(random());
        for torsion in EIGHT_TORSION {
            points.push((public + torsion).to_montgomery().0);
        }
        // Small-order points themselves, u = -1, and u + p (non-canonical) for small u.
        points.extend(EIGHT_TORSION.map(|t| t.to_montgomery().0));
        let mut minus_one = [0xff; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        points.push(minus_one);
        for u in [9u8, 12, 18] {
            let mut non_canonical = minus_one;
            non_canonical[0] = 0xed + u;
            points.push(non_canonical);
        }
        let mut tabled = 0;
        for point in points {
            let peer = warm(point);
            tabled += usize::from(peer.table.get().is_some_and(Option::is_some));
            for _ in 0..16 {
                let secret = random();
                let (share, shared) = peer.exchange(&secret);
                assert_eq!(share, x25519_base(&secret));
                let ladder = x25519(&secret, &point);
                assert_eq!(shared.as_deref(), ladder.as_deref(), "point {point:02x?}");
            }
        }
        assert!(tabled >= 8 + 8 + 4, "the table was used: {tabled}");
    }

    #[test]
    fn the_first_agreements_use_the_ladder_and_clones_share_nothing() {
        let peer = X25519Peer::new(super::super::x25519_base(&random()));
        for _ in 0..LADDER_AGREEMENTS {
            peer.exchange(&random()).1.unwrap();
            assert!(peer.table.get().is_none());
        }
        peer.exchange(&random()).1.unwrap();
        assert!(peer.table.get().is_some_and(Option::is_some));
        assert!(peer.clone().table.get().is_none());
    }
}
