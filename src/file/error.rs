//! Why one file failed.

use std::io;
use std::path::PathBuf;

use crate::error::DecryptError;
use crate::signing::sender::Rejection;

/// Why one file failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The input could not be listed, opened or read.
    #[error("cannot read: {0}")]
    Read(io::Error),
    /// The input changed into something other than a regular file after it was planned.
    #[error("no longer a regular file")]
    NotAFile,
    /// The sealed input does not open: wrong key, not age, modified, corrupt, truncated.
    #[error(transparent)]
    Decrypt(DecryptError),
    /// There were no recipients to seal to.
    #[error("no recipients given")]
    NoRecipients,
    /// The recipients may not share a file (post-quantum mixed with classical).
    #[error(transparent)]
    IncompatibleRecipients(crate::EncryptError),
    /// The keys given do not fit the direction of the batch.
    #[error("recipients given to open files, or identities to seal them")]
    WrongKeys,
    /// The output names the input itself (the same file, also through a hard or symbolic
    /// link): writing it would destroy the input, so it is refused, `force` or not.
    #[error("the output is the input itself")]
    OutputIsInput,
    /// The output could not be created, written, synced or renamed into place.
    #[error("cannot write {}: {error}", path.display())]
    Write {
        /// The output (or output directory) that failed.
        path: PathBuf,
        /// What failed.
        error: io::Error,
    },
    /// The sender check refused the file (a signature is required): nothing was written.
    #[error("signature refused: {0}")]
    Sender(Rejection),
    /// The file's signature (`NAME.age.sig`) exists but could not be read.
    #[error("cannot read its signature: {0}")]
    ReadSignature(io::Error),
    /// The file is signed, and its rotation record (`NAME.age.rotated`) exists but could
    /// not be read.
    #[error("cannot read its rotation record: {0}")]
    ReadRecord(io::Error),
    /// The file could not be rotated ([`crate::rotate`]).
    #[error(transparent)]
    Rotate(crate::rotate::RotateError),
    /// The output is complete, but removing the source failed.
    #[error("output written, but the source could not be removed: {0}")]
    RemoveSource(io::Error),
}
