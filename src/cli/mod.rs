//! The command-line glue: flags, key files, output files, messages and exit codes.
//!
//! Everything that prints, exits, reads the terminal or handles signals lives here; the
//! binaries in `src/bin` only call [`seal::main`](crate::cli::seal::main),
//! [`unseal::main`](crate::cli::unseal::main) and [`keygen::main`](crate::cli::keygen::main).
//!
//! Messages follow age: `seal: error: report.pdf: ...` on stderr, lowercase, no trailing
//! period, one line; hints on their own `hint:` line.

/// `eprintln!` that never panics, for every message line. With standard error a closed
/// pipe, `eprintln!` panics; in the signal handler's thread that left the process running
/// after SIGTERM, elsewhere it turned a documented exit code into 101. A message that cannot
/// be written is dropped.
///
/// The line goes through [`crate::shown::line`]: whatever text went into it (a file name, a
/// principal, a rejected value), it stays one line, drives no terminal, and shows no secret.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = crate::shown::line(&format!($($arg)*));
        let _ = writeln!(std::io::stderr(), "{line}");
    }};
}

mod batch;
mod failure;
mod inspect;
mod interrupts;
mod keyargs;
mod passphrase;
mod paths;
mod plugins;
mod progress;
mod senders;
mod watch;

pub mod keygen;
pub mod seal;
pub mod unseal;

pub use batch::Flags as BatchFlags;
pub use failure::{ExitCode, Failure};

use std::ffi::OsString;
use std::path::PathBuf;
use std::process;

/// The flags `seal` and `unseal` share, in one file or in batch mode.
///
/// Help texts: the first paragraph is the one-line `--help` (`-h` and `--help` both print the
/// short help, [`HelpFlag`]); the whole text goes to the man page (`cargo run --example
/// gen-docs`).
#[derive(clap::Args, Debug)]
pub struct Shared {
    /// Output file, directory, or `-` for standard output
    ///
    /// Default: beside the input (`seal` adds `.age`, `unseal` strips it), or standard output
    /// when reading standard input. An existing directory takes the output under the name it
    /// would have beside the input, as `cp` places a file (`seal report.pdf -o /upload`
    /// writes /upload/report.pdf.age).
    ///
    /// In batch mode: the directory to mirror the inputs under (default: beside them), made if
    /// missing. It must be a directory: an existing file is refused, and so is a missing
    /// `NAME.age` given to seal, which reads as one sealed file (to seal a directory into one
    /// file, use tar; to use such a name for a directory, make it first).
    #[arg(short, long, value_name = "OUTPUT")]
    pub output: Option<PathBuf>,

    /// Overwrite outputs that exist
    #[arg(short, long)]
    pub force: bool,

    /// Worker threads: 0 one per core, 1 sequential
    ///
    /// At most 4 per core: more is capped, with a warning.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// Read the input as one stream
    ///
    /// Instead of with positioned reads on every core (the name is historical: no input is
    /// memory-mapped).
    #[arg(long)]
    pub no_mmap: bool,

    /// No progress bar; in batch mode, errors only
    ///
    /// The bar is shown only on a terminal, for large inputs. In batch mode, no summary or
    /// notes either.
    #[arg(short, long)]
    pub quiet: bool,

    /// age's `-e`/`--encrypt`: `seal` encrypts anyway; `unseal` points to `seal`.
    #[arg(short = 'e', long, hide = true)]
    pub encrypt: bool,

    /// age's `-d`/`--decrypt`: `unseal` decrypts anyway; `seal` points to `unseal`.
    #[arg(short = 'd', long, hide = true)]
    pub decrypt: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub help: HelpFlag,
}

impl Shared {
    /// Caps `--threads` at four per core (`max_threads`), with a warning saying what is
    /// used instead.
    pub fn cap_threads(&mut self, program: &str) {
        let (max, cores) = max_threads();
        if self.threads > max {
            say!(
                "{program}: warning: --threads {} is more than {THREADS_PER_CORE} per core ({cores} cores); using {max}",
                self.threads
            );
            self.threads = max;
        }
    }

    /// age's `-e` and `-d`, as scripts written for age pass them: the direction `program`
    /// goes is accepted and changes nothing; the other one is refused, naming the tool that
    /// goes that way.
    pub fn check_direction(&self, program: &str) -> Result<(), Failure> {
        let (wrong, verb, other) = match program {
            "seal" => (self.decrypt, "decrypt", "unseal"),
            _ => (self.encrypt, "encrypt", "seal"),
        };
        match wrong {
            true => Err(Failure::usage(format!("{program} does not {verb}"))
                .hint(format!("to {verb}, use {other}"))),
            false => Ok(()),
        }
    }
}

/// `-h` and `--help`: both print the short help, one line per flag, as age's does; every
/// detail is in the man page. (Clap's own flag prints the long help for `--help`.)
#[derive(clap::Args, Debug)]
pub struct HelpFlag {
    /// Print help
    #[arg(short = 'h', long = "help", action = clap::ArgAction::HelpShort)]
    help: Option<bool>,
}

/// Worker threads per core at most. The work is CPU-bound (ChaCha20-Poly1305, scrypt,
/// public-key operations): threads past the cores only add stacks, buffers and switching.
/// A few per core still help where threads wait on a slow disk or a network file system;
/// beyond that a thread count is a mistake (`--threads 100000` spent minutes starting
/// threads).
const THREADS_PER_CORE: usize = 4;

/// The most worker threads `--threads` may ask for, and the cores it is counted from.
fn max_threads() -> (usize, usize) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (THREADS_PER_CORE * cores, cores)
}

/// The command line, parsed by clap. A long option typed with one dash is refused first
/// (see [`one_dash_long`]); a clap error that would repeat a secret (a private key given as
/// an argument clap does not expect) is printed with the secret replaced by its kind.
fn parse_args<A: clap::Parser>() -> A {
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut command = A::command();
    command.build();
    if let Some(failure) = one_dash_long(&command, args.get(1..).unwrap_or_default()) {
        failure.print(command.get_name());
        process::exit(ExitCode::Usage as i32);
    }
    A::try_parse_from(args).unwrap_or_else(|e| {
        let text = e.render().to_string();
        if let std::borrow::Cow::Owned(redacted) = crate::shown::redact(&text) {
            use std::io::Write as _;
            let _ = write!(std::io::stderr(), "{redacted}");
            process::exit(e.exit_code());
        }
        e.exit()
    })
}

/// `-to`, `-key`, `-output`: a long option of `command` typed with one dash (before any
/// `--`). Clap would read `-to` as `-t o` and seal to a file named `o`; Go age refuses
/// `-to` too. The value after a `=` is not repeated: it may be a secret.
fn one_dash_long(command: &clap::Command, args: &[OsString]) -> Option<Failure> {
    let is_long = |name: &str| {
        command.get_arguments().any(|arg| {
            arg.get_long() == Some(name) || arg.get_all_aliases().is_some_and(|a| a.contains(&name))
        })
    };
    let name = args
        .iter()
        .take_while(|arg| *arg != "--")
        .filter_map(|arg| arg.to_str()?.strip_prefix('-'))
        .filter(|word| !word.starts_with('-'))
        .map(|word| word.split('=').next().unwrap_or(word))
        .find(|name| name.len() > 1 && is_long(name))?;
    Some(Failure::usage(format!(
        "-{name}: long options take two dashes: --{name}"
    )))
}

/// Builds a rayon pool of `threads` threads (0 = one per core) and runs `f` in it.
fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> Result<T, Failure> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Failure::new(ExitCode::Io, format!("cannot start worker threads: {e}")))?;
    Ok(pool.install(f))
}

/// Raises the soft limit on open files as far as the hard limit lets it, as Go programs do
/// at start: a batch keeps up to 1,500 outputs in flight, each with its files open
/// (`batch::run::in_flight`), where the usual soft limit of 1,024 would hold it to a fifth of
/// them (the hard limit is 524,288 under systemd). Best effort: a limit that cannot be
/// raised stays as it was, and the batch keeps fewer outputs in flight. Programs started from
/// here (plugins) inherit the raised limit.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    for soft in open_files_targets(limit.current, limit.maximum) {
        let raised = rustix::process::Rlimit {
            current: Some(soft),
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return;
        }
    }
}

/// The soft limits on open files to try, best first, given the current soft and hard ones
/// (`None`: unlimited): the hard limit, at most 2^20 (Linux refuses more than its `nr_open`,
/// 2^20 by default), then macOS's `OPEN_MAX`, 10,240 (it refuses more whatever the hard
/// limit says); only those above the soft limit and within the hard one.
fn open_files_targets(soft: Option<u64>, hard: Option<u64>) -> Vec<u64> {
    const MOST: u64 = 1 << 20;
    const OPEN_MAX: u64 = 10_240;
    let Some(soft) = soft else {
        return Vec::new();
    };
    let hard = hard.unwrap_or(u64::MAX);
    let mut targets = vec![hard.min(MOST)];
    if OPEN_MAX < targets[0] {
        targets.push(OPEN_MAX);
    }
    targets.retain(|&target| target > soft && target <= hard);
    targets
}

/// Runs a command body, prints its failure if any, and exits with the documented code.
fn run(program: &str, body: impl FnOnce() -> Result<(), Failure>) -> process::ExitCode {
    let streamed = match program {
        "seal" => "sealed data",
        _ => "plaintext",
    };
    interrupts::install_handler(program, streamed);
    raise_open_files_limit();
    match body() {
        Ok(()) => process::ExitCode::SUCCESS,
        Err(failure) => {
            failure.print(program);
            failure.code.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::open_files_targets;

    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_limit_within_what_kernels_accept() {
        // The usual Linux limits: up to the hard limit (macOS's most, should that fail).
        assert_eq!(
            open_files_targets(Some(1024), Some(524_288)),
            [524_288, 10_240]
        );
        assert_eq!(open_files_targets(Some(1024), Some(4096)), [4096]);
        // Unlimited, or past Linux's nr_open: 2^20 first, then macOS's OPEN_MAX.
        assert_eq!(open_files_targets(Some(256), None), [1 << 20, 10_240]);
        assert_eq!(
            open_files_targets(Some(256), Some(1 << 30)),
            [1 << 20, 10_240]
        );
        // Never lowered: a soft limit already there, or unlimited, stays.
        assert!(open_files_targets(Some(4096), Some(4096)).is_empty());
        assert!(open_files_targets(Some(20_000), Some(10_000)).is_empty());
        assert!(open_files_targets(None, None).is_empty());
        assert_eq!(open_files_targets(Some(20_000), None), [1 << 20]);
    }
}
