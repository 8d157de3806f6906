//! Identity and recipients file parsers: no panics, and an accepted recipient prints back to
//! the text it was parsed from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seal::keys;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = keys::parse_identity_file(text);
    let _ = keys::parse_recipients_file(text);
    if let Ok(ids) = keys::parse_x25519_identities(text) {
        for id in ids {
            let again = keys::parse_x25519_identities(id.to_secret_string().as_str()).unwrap();
            assert!(again[0].to_public() == id.to_public());
        }
    }
    if let Ok(recipient) = text.parse::<seal::x25519::Recipient>() {
        assert_eq!(recipient.to_string(), text.to_ascii_lowercase());
    }
});
