//! Tier 2: interop with programs from outside, run as a person runs them: the Go `age` and
//! `age-keygen` CLI, `ssh-keygen` and `openssl`. `cargo test` checks the same in process (the
//! `age` crate, the `ssh-key` crate, what these programs made once under `testdata/`) and
//! needs none of them; this suite is declared `test = false` in Cargo.toml, so only
//! `cargo test --test interop` builds and runs it. A missing program fails its tests loudly,
//! naming the Debian package to install (`common::program`): none is skipped.

mod common;

#[path = "interop/go_age.rs"]
mod go_age;
#[path = "interop/openssl.rs"]
mod openssl;
#[path = "interop/ssh_keygen.rs"]
mod ssh_keygen;
