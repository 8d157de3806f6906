//! Offline file encryption to a server's public key, byte-compatible with
//! [age v1](https://age-encryption.org/v1), decrypting on every core.
//!
//! A server operator makes a key pair ([`x25519::Identity`], or the post-quantum
//! [`pq::Identity`]); users seal files to its public half ([`x25519::Recipient`],
//! [`pq::Recipient`]); the server opens them, one file on all cores at once.
//!
//! - [`encrypt`] / [`decrypt`]: whole messages in memory, parallel.
//! - [`Encryptor`] / [`Decryptor`]: streaming `Write` and `Read`.
//! - [`SealedSlice`] (in memory) and [`SealedFile`] (on disk, each byte read once): random
//!   access to a sealed file, for parallel decryption straight into an output file.
//! - [`file::seal_path`] / [`file::open_path`]: one file named by path, whole or not at all,
//!   as the `seal` and `unseal` commands do it.
//! - [`batch`]: whole directory trees, every file on one pool, one report per file.
//! - [`watch`]: the server inbox, each upload opened once as it arrives.
//! - [`sshsig`], [`allowed_signers`], [`sender`]: who sent a file, by client-key signatures.
//! - [`scrypt`]: passphrases instead of keys; [`armor`]: the ASCII armor, which
//!   [`Decryptor`] and [`decrypt`] detect by themselves.
//!
//! ```
//! let server = seal::x25519::Identity::generate();
//! let sealed = seal::encrypt(&[&server.to_public()], b"report")?;
//! assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
//! assert_eq!(seal::decrypt(&[&server], &sealed)?, b"report");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]
// Without the CLI, the crate-private helpers that only it uses are unused.
#![cfg_attr(not(feature = "cli"), allow(dead_code, unused_imports))]

// The format: the header (`format`), the payload's chunks (`format::stream`) and the ASCII
// armor (`format::armor`), over the crypto primitives.
pub mod format;
mod primitives;

// Key types, each behind the two traits of `keys::recipient`, and the key files that name them.
pub mod keys;

// Who sent a file: client-key signatures, the allowed signers, the check of both.
pub mod signing;

// Sealing and opening a payload, in memory, as a stream, on every core.
mod engine;

// One file, sealed or opened whole or not at all: the engine under single files and batches.
pub mod file;

// Whole trees: walk, plan, run every file on one pool.
pub mod batch;

// The server inbox: uploads opened as they arrive, each once.
#[cfg(feature = "watch")]
pub mod watch;

// What a sealed file says about itself, without a key.
pub mod inspect;

pub mod rotate;

pub mod error;
// How text from outside (file names, rejected keys) appears in messages, and in JSON.
mod json;
mod shown;

// The command-line glue shared by the `seal`, `unseal` and `seal-keygen` binaries, which
// reach it through `__private` below.
#[cfg(feature = "cli")]
mod cli;

pub use engine::decrypt::{
    decrypt, unwrap_file_key, Decryptor, Input, MappedFile, OpenPayload, OpenStream, Output,
    SealedFile, SealedSlice,
};
pub use engine::encrypt::{encrypt, Encryptor};
pub use engine::{Hash, Progress};
pub use error::{DecryptError, EncryptError, KeyError, StreamError};
pub use format::{armor, stream};
pub use keys::recipient::{self, FileKey, Identity, Recipient};
pub use keys::{pq, scrypt, ssh, ssh_ed25519, ssh_rsa, x25519};
pub use signing::{allowed_signers, sender, sshsig};

/// Not API: what the crate's own binaries, benches and tests reach inside it. May change or
/// go away in any release, without notice.
#[doc(hidden)]
pub mod __private {
    /// The command-line programs: `seal`, `unseal` and `seal-keygen`.
    #[cfg(feature = "cli")]
    pub mod cli {
        pub use crate::cli::{keygen, seal, unseal};
    }

    /// The crypto primitives, for the benches.
    pub mod primitives {
        pub use crate::primitives::{hkdf, hmac, rsa, Aead, ChunkAead, BACKEND, TAG_SIZE};
    }
}

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
