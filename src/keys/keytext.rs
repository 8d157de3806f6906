//! Keys as text: Bech32 as age writes them, one human-readable part per key type.
//!
//! age uses BIP 173's Bech32 checksum without its length limits: a post-quantum recipient is
//! 1959 characters, past both BIP 173's 90 and the 1023 that the `bech32` crate's `Bech32`
//! checksum type allows, so the checksum is declared here again with no limit.

use bech32::primitives::checksum::Checksum;
use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32, Hrp};

/// BIP 173's Bech32 checksum (not Bech32m), with no limit on the length.
enum Bech32Unlimited {}

impl Checksum for Bech32Unlimited {
    type MidstateRepr = <Bech32 as Checksum>::MidstateRepr;
    const CODE_LENGTH: usize = usize::MAX;
    const CHECKSUM_LENGTH: usize = <Bech32 as Checksum>::CHECKSUM_LENGTH;
    const GENERATOR_SH: [u32; 5] = <Bech32 as Checksum>::GENERATOR_SH;
    const TARGET_RESIDUE: u32 = <Bech32 as Checksum>::TARGET_RESIDUE;
}

/// `bytes` as lowercase Bech32 under the human-readable part `hrp` (a valid one: ours are
/// constants).
pub(crate) fn encode(hrp: &str, bytes: &[u8]) -> String {
    bech32::encode::<Bech32Unlimited>(Hrp::parse_unchecked(hrp), bytes)
        .expect("no length limit, and our HRPs are valid")
}

/// Decodes Bech32 with exactly the human-readable part `hrp`, case included (age writes
/// recipients lowercase and identities uppercase).
pub(crate) fn decode(s: &str, hrp: &str) -> Option<Vec<u8>> {
    let checked = CheckedHrpstring::new::<Bech32Unlimited>(s).ok()?;
    let (found, _) = s.rsplit_once('1')?;
    (found == hrp && checked.hrp().as_str().eq_ignore_ascii_case(hrp))
        .then(|| checked.byte_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_bech32_crate_where_it_has_no_limit_issue() {
        let bytes: Vec<u8> = (0..32).collect();
        let ours = encode("age", &bytes);
        let theirs = bech32::encode::<Bech32>(Hrp::parse_unchecked("age"), &bytes).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(decode(&theirs, "age").unwrap(), bytes);
    }

    #[test]
    fn long_strings_round_trip_and_keep_their_checksum() {
        let bytes: Vec<u8> = (0..1216).map(|i| (i * 7) as u8).collect();
        let text = encode("age1pq", &bytes);
        assert_eq!(text.len(), 1959);
        assert_eq!(decode(&text, "age1pq").unwrap(), bytes);
        let mut typo = text.clone();
        let swap = if &text[900..901] == "q" { "p" } else { "q" };
        typo.replace_range(900..901, swap);
        assert!(decode(&typo, "age1pq").is_none());
    }

    #[test]
    fn the_human_readable_part_must_match_exactly() {
        let text = encode("age", &[1, 2, 3]);
        assert!(decode(&text, "age1pq").is_none());
        assert!(decode(&text.to_uppercase(), "age").is_none());
        let upper = encode("AGE-SECRET-KEY-", &[1, 2, 3]).to_uppercase();
        assert_eq!(decode(&upper, "AGE-SECRET-KEY-").unwrap(), [1, 2, 3]);
        assert!(decode(&upper, "AGE-SECRET-KEY-PQ-").is_none());
        // Bech32m's checksum is not Bech32's.
        let m = bech32::encode::<bech32::Bech32m>(Hrp::parse_unchecked("age"), &[1, 2, 3]);
        assert!(decode(&m.unwrap(), "age").is_none());
    }
}
