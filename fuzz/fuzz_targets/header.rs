//! The header parser: whatever it accepts, it gives back byte for byte (non-malleability), and
//! the streaming reader agrees with the slice parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seal::format::Header;

fuzz_target!(|data: &[u8]| {
    let parsed = Header::parse(data);
    let read = Header::read(&mut &data[..]);
    match parsed {
        Ok((header, len)) => {
            assert_eq!(header.to_bytes(), &data[..len], "re-serialized header differs");
            let rebuilt = Header::new(header.stanzas.clone(), |_| header.mac);
            assert_eq!(rebuilt.to_bytes(), header.to_bytes(), "rebuilt header differs");
            let read = read.expect("the reader refused what the parser accepted");
            assert_eq!(read.to_bytes(), header.to_bytes());
        }
        Err(_) => assert!(read.is_err(), "the reader accepted what the parser refused"),
    }
});
