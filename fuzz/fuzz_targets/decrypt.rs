//! See `fuzz/checks.rs` for what the `decrypt` target checks.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::decrypt(data));
