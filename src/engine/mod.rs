//! Sealing and opening a payload, sequentially and on every core: what the one-file engine
//! ([`crate::file`]), batch mode and the in-memory API run on.
//!
//! - [`encrypt`] and [`decrypt`]: the public entry points, in memory, as streams and on files.
//! - [`parallel`]: a file or buffer split into runs of chunks across the current rayon pool;
//!   its tuning sizes in one place, `parallel/sizes.rs`.
//! - [`pipeline`]: a stream, a window of chunks at a time.
//! - [`chunks`]: where sealed chunks come from (memory, or a file read once into private
//!   memory) and [`mmap`]: the writable map of a new output file, the crate's only `unsafe`
//!   besides the calls that promise a file is new and private, and [`writeback`]'s one
//!   system call that starts writing an output's finished bytes to its disk.

pub(crate) mod chunks;
pub(crate) mod decrypt;
pub(crate) mod encrypt;
#[allow(unsafe_code)]
pub(crate) mod mmap;
pub(crate) mod parallel;
pub(crate) mod pipeline;
#[allow(unsafe_code)]
pub(crate) mod writeback;

/// A progress callback of the file paths: plaintext bytes just finished, from any thread.
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// Something that sees every sealed byte of a file in order: a signature's hash.
pub type Hash<'a> = &'a mut (dyn FnMut(&[u8]) + Send);
