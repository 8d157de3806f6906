//! See `fuzz/checks.rs` for what the `signers` target checks.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::signers(data));
