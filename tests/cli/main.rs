//! End-to-end tests of the `seal`, `unseal` and `seal-keygen` binaries, one file per topic.
//!
//! Every test works in its own temporary directory and runs the built binaries in it, in the
//! style of ripgrep's integration tests; the harness is `tests/common`. A refusal is checked
//! for its documented exit code, a single `program: error: ...` line naming the file, and a
//! directory left exactly as it was (`tests/common/refusals.rs` runs the tables of them).
//!
//! Nothing here runs a program from outside: interop is checked in process, against the
//! `age` crate, the `ssh-key` crate's own SSHSIG code, and what `ssh-keygen` made once
//! (`testdata/ssh-keygen`, `testdata/signatures`), and passphrase prompts on a
//! pseudo-terminal opened in process. The same checks against the Go `age` CLI, `ssh-keygen`
//! and `openssl` themselves are `tests/interop.rs` (`cargo test --test interop`).

#[path = "../common/mod.rs"]
mod common;

mod age_crate;
mod armor;
mod batch;
mod damaged;
mod interrupts;
mod keygen;
mod killed;
mod outputs;
mod passphrase;
mod plugins;
mod post_quantum;
mod recipients;
mod refusals;
mod rotate;
mod rough_edges;
mod round_trips;
mod senders;
mod signing;
mod ssh_keys;
mod streams;
mod watch;
