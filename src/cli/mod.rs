//! The command-line glue: flags, key files, output files, messages and exit codes.
//!
//! Everything that prints, exits, reads the terminal or handles signals lives here; the
//! binaries in `src/bin` only call [`seal::main`], [`unseal::main`] and [`keygen::main`].
//!
//! Messages follow age: `seal: error: report.pdf: ...` on stderr, lowercase, no trailing
//! period, one line; hints on their own `hint:` line.

mod batch;
mod failure;
mod keyargs;
mod output;
mod paths;
mod progress;

pub mod keygen;
pub mod seal;
pub mod unseal;

pub use batch::Flags as BatchFlags;
pub use failure::{ExitCode, Failure};

use std::process;

/// Builds a rayon pool of `threads` threads (0 = one per core) and runs `f` in it.
fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> Result<T, Failure> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Failure::new(ExitCode::Io, format!("cannot start worker threads: {e}")))?;
    Ok(pool.install(f))
}

/// Runs a command body, prints its failure if any, and exits with the documented code.
fn run(program: &str, body: impl FnOnce() -> Result<(), Failure>) -> process::ExitCode {
    output::install_interrupt_handler(program);
    match body() {
        Ok(()) => process::ExitCode::SUCCESS,
        Err(failure) => {
            failure.print(program);
            failure.code.into()
        }
    }
}
