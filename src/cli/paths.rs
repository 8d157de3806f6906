//! Where a command reads and writes: files, or standard input and output.

use std::fs::{File, Metadata};
use std::io::{self, IsTerminal};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::failure::Failure;
use super::output::PendingFile;
use crate::batch::FileId;
use crate::error::StreamError;

/// What standard input and output are called in messages.
pub const STDIN: &str = "standard input";
pub const STDOUT: &str = "standard output";

/// Standard input for a stream, its pipe widened (see [`widen_pipe`]).
pub fn stdin() -> io::Stdin {
    widen_pipe(io::stdin());
    io::stdin()
}

/// Standard output for a stream, as a file (a duplicate of descriptor 1), its pipe widened:
/// written directly, without the line buffering of `io::Stdout` that splits every large
/// write at its last newline, and movable to whichever thread writes.
pub fn stdout_file() -> Result<File, Failure> {
    widen_pipe(io::stdout());
    io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .map_err(|e| Failure::io(STDOUT.as_ref(), &e))
}

/// Pipe buffer asked for: the most an unprivileged process may set by default
/// (`/proc/sys/fs/pipe-max-size`).
const PIPE_SIZE: usize = 1 << 20;

/// Grows the buffer of a pipe to [`PIPE_SIZE`]. With the default 64 KiB, `cat f | unseal`
/// hands over 64 KiB per wake-up of either side; 1 MiB took `cat 1GiB | unseal > out` from
/// 1.61 s to 1.53 s on two cores. Not a pipe, a larger pipe, or a user over the pipe quota:
/// nothing changes.
fn widen_pipe(fd: impl AsFd) {
    #[cfg(target_os = "linux")]
    if rustix::pipe::fcntl_getpipe_size(&fd).is_ok_and(|size| size < PIPE_SIZE) {
        let _ = rustix::pipe::fcntl_setpipe_size(&fd, PIPE_SIZE);
    }
}

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

/// Refuses an output that names the input file itself (the same device and inode, also
/// through a hard or symbolic link), whatever `--force` says: the output would replace the
/// input as it is read, and `--remove-source` would then remove the output.
fn refuse_input(source: &Source, output: &Path) -> Result<(), Failure> {
    let Source::File(input) = source else {
        return Ok(());
    };
    let same = match (std::fs::metadata(input), std::fs::metadata(output)) {
        (Ok(input), Ok(output)) => FileId::of_metadata(&input) == FileId::of_metadata(&output),
        _ => false,
    };
    match same {
        true => Err(Failure::usage("the output is the input itself").about(input)),
        false => Ok(()),
    }
}

/// The output for `-o DIR`, an existing directory: the file the default output names, in
/// `dir`. Standard input, or an input whose output name is unknown, names none.
fn into_dir(
    dir: &Path,
    default: impl FnOnce() -> Result<Option<PathBuf>, Failure>,
) -> Result<PathBuf, Failure> {
    let hint = format!("name the file: -o {}/NAME", crate::shown::path(dir));
    let name = match default() {
        Ok(path) => path.and_then(|path| path.file_name().map(|name| name.to_owned())),
        Err(failure) => return Err(failure.hint(hint)),
    };
    match name {
        Some(name) => Ok(dir.join(name)),
        None => Err(Failure::usage(
            "is a directory, and standard input has no name to give a file in it",
        )
        .about(dir)
        .hint(hint)),
    }
}

/// Where the output goes.
pub enum Destination {
    /// Standard output.
    Stdout,
    /// A file, written under a temporary name and renamed into place on success.
    File(PendingFile),
}

impl Destination {
    /// `-o -` means standard output; `-o PATH` a file, or, if PATH is an existing directory,
    /// the file in it that `default` names (as `cp` places a file); without `-o`, `default`
    /// decides. An output that is the input `source` itself is refused before anything is
    /// made.
    pub fn new(
        output: Option<PathBuf>,
        default: impl FnOnce() -> Result<Option<PathBuf>, Failure>,
        force: bool,
        source: &Source,
    ) -> Result<Destination, Failure> {
        let path = match output {
            Some(path) if path.as_os_str() == "-" => None,
            Some(dir) if dir.is_dir() => Some(into_dir(&dir, default)?),
            Some(path) => Some(path),
            None => default()?,
        };
        match path {
            Some(path) => {
                refuse_input(source, &path)?;
                Ok(Destination::File(PendingFile::create(&path, force)?))
            }
            None => Ok(Destination::Stdout),
        }
    }

    /// Whether this is standard output and standard output is a terminal.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Destination::Stdout) && std::io::stdout().is_terminal()
    }
}
