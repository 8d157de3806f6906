//! The armor decoder: no panics; what it accepts is the canonical encoding of what it returns,
//! up to surrounding whitespace and CRLF line ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seal::armor;

fuzz_target!(|data: &[u8]| {
    if let Ok(binary) = armor::decode(data) {
        let canonical = armor::encode(&binary);
        let text = std::str::from_utf8(data).expect("accepted armor is ASCII");
        let normalized = format!("{}\n", text.trim_ascii().replace("\r\n", "\n"));
        assert_eq!(normalized, canonical, "accepted a non-canonical armor");
        assert_eq!(armor::decode(canonical.as_bytes()).unwrap(), binary);
    }
});
