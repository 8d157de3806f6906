//! Every tuning size of the parallel engine, in one place: how many chunks go to a task, to a
//! positioned write and to a window, how many buffers are in flight, and from how many threads
//! an output file is mapped.
//!
//! These are choices, not format: the chunk and tag sizes are age's
//! ([`crate::format::stream::CHUNK_SIZE`], [`crate::primitives::TAG_SIZE`]) and stay with the format.
//! Each size says what it sizes, why it has its value, and what measurement chose it (the
//! numbers are in `benches/`). Changing one is a retune: measure before and after, on the same
//! machine.
//!
//! Two kinds of streaming window are sized here. The stream pipeline ([`crate::engine::pipeline`]: a
//! reader thread, the pool, a writer thread) goes by [`PIPELINE_WINDOW_CHUNKS`], with
//! [`PIPELINE_BUFFERS`] of them on each side. A sealed payload at hand ([`crate::engine::parallel`])
//! goes by windows only where something must see its bytes in order behind the pool: a stream
//! to write the plaintext to ([`WRITER_WINDOW_RUNS`]), or, when sealing, a signature's hash
//! ([`HASH_WINDOW_RUNS`]).

use crate::format::stream::{CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE};

// Tasks: how a run of chunks in memory is shared out among the pool's threads.

/// Chunks per task: 1 MiB of plaintext, enough to amortise scheduling, small enough to
/// balance. A run of at most one group never goes through the pool. Chosen with the first
/// parallel path; no measurement of another value is recorded.
pub(crate) const GROUP: usize = 16;
/// The plaintext bytes of a [`GROUP`].
pub(crate) const PLAIN_GROUP: usize = GROUP * CHUNK_SIZE;
/// The sealed bytes of a [`GROUP`].
pub(crate) const SEALED_GROUP: usize = GROUP * ENCRYPTED_CHUNK_SIZE;

/// Tasks each thread should get from a short run of chunks, so that a thread slowed down by
/// other work leaves little for the rest to wait on: a run too short for that is cut into
/// groups smaller than [`GROUP`]. Before, a 4 MiB window was cut into 4 groups of 16 chunks,
/// and on 16 cores `unseal >/dev/null` stopped at 0.27 s from 4 threads up (commit 4534f13).
pub(crate) const TASKS_PER_THREAD: usize = 2;

// Runs: the unit of work of the file paths, each copied once into private memory.

/// Chunks per positioned write, and per task of the file paths: 256 KiB, so that the buffer a
/// thread fills, and the kernel then copies from, stays in the core's L2 cache. Against a
/// 1 MiB buffer wiped after every write, unseal of 1 GiB into tmpfs on 2 cores went from
/// 1.17 s to 1.10 s (`benches/README.md`, "Output writes of 256 KiB").
pub(crate) const WRITE_RUN: usize = 4;
/// The sealed bytes of one run of [`WRITE_RUN`] chunks.
pub(crate) const RUN_SEALED: usize = WRITE_RUN * ENCRYPTED_CHUNK_SIZE;
/// The plaintext bytes of one run of [`WRITE_RUN`] chunks.
pub(crate) const RUN_PLAIN: usize = WRITE_RUN * CHUNK_SIZE;

/// Chunks decrypted and written at a time within a run that goes out by positioned writes: a
/// pair, so that the thread's plaintext buffer and its sealed copy of the run fit a core's L2
/// cache together (a quarter MiB each would not, on 512 KiB). It made the signed row 0.97 of
/// the build without it (`benches/read-once.md`, 2 cores, paired, 9 runs).
pub(crate) const WRITE_PAIR: usize = 2;

/// Sealed copies of runs per thread, being opened or waiting for their turn to be hashed,
/// when a payload at hand is opened with a signature's hash: 1 MiB. A thread waits for a
/// slower one only once they are all taken. Measured as a whole with the hashing in turn
/// (`benches/read-once.md`, "The signed row, hashed in turn": 0.93 of the windowed build on
/// 2 threads); no other value was tried.
pub(crate) const SPARE_RUNS: usize = 4;

// Windows: where bytes must be seen in order behind the pool.

/// Runs per window when a payload at hand is opened to a stream: 8 MiB of plaintext, the
/// pool decrypting one window while the window before is written (and hashed), so two windows
/// of each side, 32 MiB at most. Windows of 2 MiB made the signed row slower (1.17), windows
/// of 32 MiB were no faster than 8 MiB (1.07), when signed files still went by windows
/// (`benches/read-once.md`).
pub(crate) const WRITER_WINDOW_RUNS: usize = 32;

/// Runs per window when sealing with a signature's hash: 32 MiB of plaintext, enough to keep
/// 16 threads busy, small enough that hashing the last window alone, after the sealing, costs
/// little (about 30 ms at the 1.2 GB/s of one core's SHA-256). `seal --sign-with` on 16 cores
/// took 0.86 s against 0.27 s unsigned, one core's SHA-256 (`benches/README.md`); no other
/// value was tried.
pub(crate) const HASH_WINDOW_RUNS: usize = 128;

/// Chunks per window of the stream pipeline: 8 MiB of plaintext. Larger windows hand over
/// work between the stages less often: `cat 1GiB | unseal > out` on two cores took 1.61 s
/// with 8 MiB windows, three of each side, and 1.69 s with 4 MiB ones, four of each side
/// (hyperfine, 10 runs each; commit 1bf3950).
pub(crate) const PIPELINE_WINDOW_CHUNKS: usize = 128;
/// Windows of each side (input and output) in circulation in the stream pipeline: three,
/// measured with [`PIPELINE_WINDOW_CHUNKS`].
pub(crate) const PIPELINE_BUFFERS: usize = 3;

/// The most memory the stream pipeline's buffers take, in bytes: each window holds one byte
/// of look-ahead too.
pub(crate) const PIPELINE_MEMORY: usize =
    PIPELINE_BUFFERS * (PIPELINE_WINDOW_CHUNKS * ENCRYPTED_CHUNK_SIZE + 1) * 2;

// Streams are promised to stay within 64 MiB of buffers whatever their size.
const _: () = assert!(PIPELINE_MEMORY <= 64 << 20);

// Output.

/// From how many threads the file paths fill their output through a writable mapping rather
/// than positioned writes ([`super::maps_output`]).
///
/// Positioned writes to one file serialize on its lock in the kernel, so they stop scaling
/// after a few threads; page faults on a shared mapping do not. Measured on 1 GiB into tmpfs
/// (`benches/scaling.sh`): on 16 cores, unseal at 8 threads took 0.385 s with writes and
/// 0.284 s mapped, at 16 threads 0.458 s and 0.286 s; at 4 threads they were even, and at 2
/// the writes were faster (0.558 s against 0.753 s), as on the 2-core machine.
pub(crate) const MAP_FROM_THREADS: usize = 8;
