//! Who sent a file: SSHSIG signatures by client keys ([`sshsig`]), the server's list of
//! allowed signers ([`allowed_signers`]), and the check of both while a file decrypts
//! ([`sender`]).

pub mod allowed_signers;
pub mod sender;
pub mod sshsig;
