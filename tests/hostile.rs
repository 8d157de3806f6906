//! The uploader is the adversary: attacks on `unseal` (and `seal`) by someone who controls
//! the inputs, and often the directories around them, while the tools run.
//!
//! Each module reproduces one class of attack from issue 15 and checks the promise it
//! breaks: plaintext only if authenticated over the bytes decrypted, writes only beneath
//! `-o`, one bad file never stopping the rest, memory bounded whatever arrives, and messages
//! that neither leak a secret nor let a file name forge a line. The threat model is in
//! `doc/security.md`.

mod common;

#[path = "hostile/confinement.rs"]
mod confinement;
#[path = "hostile/mapping.rs"]
mod mapping;
#[path = "hostile/memory.rs"]
mod memory;
#[path = "hostile/messages.rs"]
mod messages;
