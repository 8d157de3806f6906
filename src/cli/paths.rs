//! Where a command reads and writes: files, or standard input and output.

use std::fs::{File, Metadata};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::failure::Failure;
use super::output::PendingFile;
use crate::error::StreamError;

/// What standard input and output are called in messages.
pub const STDIN: &str = "standard input";
pub const STDOUT: &str = "standard output";

/// The outcome of a stream, failures blamed on the side that failed. A reader that went away
/// (a closed pipe on standard output, as in `unseal x.age | head`) ends the stream quietly.
pub fn stream_outcome(
    result: Result<(), StreamError>,
    input: &Path,
    output: &Path,
) -> Result<(), Failure> {
    match result {
        Ok(()) => Ok(()),
        Err(StreamError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(StreamError::Read(e)) => Err(Failure::io(input, &e)),
        Err(StreamError::Write(e)) => Err(Failure::io(output, &e)),
        Err(StreamError::Decrypt(e)) => Err(Failure::from(e).about(input)),
    }
}

/// The input named on the command line.
pub enum Source {
    /// Standard input (`-` or no argument).
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Source {
    pub fn from_arg(arg: Option<PathBuf>) -> Source {
        match arg {
            Some(path) if path.as_os_str() != "-" => Source::File(path),
            _ => Source::Stdin,
        }
    }
}

/// Opens an input file; directories are refused with a clear message.
pub fn open_input(path: &Path) -> Result<(File, Metadata), Failure> {
    let file = File::open(path).map_err(|e| Failure::io(path, &e))?;
    let meta = file.metadata().map_err(|e| Failure::io(path, &e))?;
    if meta.is_dir() {
        return Err(Failure::usage("is a directory").about(path));
    }
    Ok((file, meta))
}

/// Where the output goes.
pub enum Destination {
    /// Standard output.
    Stdout,
    /// A file, written under a temporary name and renamed into place on success.
    File(PendingFile),
}

impl Destination {
    /// `-o -` means standard output; `-o PATH` a file; without `-o`, `default` decides.
    pub fn new(
        output: Option<PathBuf>,
        default: impl FnOnce() -> Result<Option<PathBuf>, Failure>,
        force: bool,
    ) -> Result<Destination, Failure> {
        let path = match output {
            Some(path) if path.as_os_str() == "-" => None,
            Some(path) => Some(path),
            None => default()?,
        };
        match path {
            Some(path) => Ok(Destination::File(PendingFile::create(&path, force)?)),
            None => Ok(Destination::Stdout),
        }
    }

    /// Whether this is standard output and standard output is a terminal.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Destination::Stdout) && std::io::stdout().is_terminal()
    }
}
