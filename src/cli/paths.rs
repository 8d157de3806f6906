//! Where a command reads and writes: files, or standard input and output.

use std::fs::{File, Metadata};
use std::io::{self, IsTerminal};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::failure::{ExitCode, Failure};
use super::interrupts::{Streamed, Tracked};
use crate::file::{self, Dir, FileError, FileId};

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

/// A failure of the per-file engine, as the single-file commands say it: blamed on the input
/// `input` or on the output it names. A reader that went away (a closed pipe on standard
/// output, as in `unseal x.age | head`) ends the command quietly.
pub fn file_outcome<T: Default>(result: Result<T, FileError>, input: &Path) -> Result<T, Failure> {
    let error = match result {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    Err(match error {
        FileError::Write { error, .. } if error.kind() == io::ErrorKind::BrokenPipe => {
            return Ok(T::default())
        }
        FileError::Write { path, error } if error.kind() == io::ErrorKind::AlreadyExists => {
            already_exists(&path)
        }
        FileError::Write { path, error } => match Refusal::from_io(error) {
            Ok(failure) => failure.about(input),
            Err(error) => Failure::io(&path, &error),
        },
        FileError::Read(e) => Failure::io(input, &e),
        FileError::Decrypt(e) => Failure::from(e).about(input),
        FileError::Sender(rejection) => super::senders::refusal(&rejection).about(input),
        other => Failure::new(ExitCode::Io, other.to_string()).about(input),
    })
}

/// A writer's refusal to take what the engine gives it (binary plaintext for a terminal):
/// carried through the engine as an I/O error, and said as this failure.
#[derive(Debug)]
pub struct Refusal(pub Failure);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for Refusal {}

impl Refusal {
    /// The failure an I/O error carries, if it is a refusal.
    fn from_io(error: io::Error) -> Result<Failure, io::Error> {
        if !error.get_ref().is_some_and(|e| e.is::<Refusal>()) {
            return Err(error);
        }
        let inner = error.into_inner().expect("checked above");
        Ok(inner.downcast::<Refusal>().expect("checked above").0)
    }
}

/// [`file::prepare_output`], its refusals said as the commands say them.
fn prepare(path: &Path, force: bool) -> Result<(Dir, std::ffi::OsString, Vec<PathBuf>), Failure> {
    file::prepare_output(path, force).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => already_exists(path),
        io::ErrorKind::InvalidInput => Failure::usage("not a file name").about(path),
        _ => Failure::io(path, &e),
    })
}

fn already_exists(target: &Path) -> Failure {
    Failure::new(ExitCode::Io, "output file already exists")
        .about(target)
        .hint("use --force to overwrite it")
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

impl Source {
    /// The input's path, if it is a file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Source::File(path) => Some(path),
            Source::Stdin => None,
        }
    }

    /// What messages call the input.
    pub fn name(&self) -> &Path {
        self.path().unwrap_or(Path::new(STDIN))
    }

    /// Opens the input; a directory is refused with a clear message.
    pub fn open(&self) -> Result<Opened, Failure> {
        let file = match self.path() {
            Some(path) => Some(open_input(path)?),
            None => None,
        };
        Ok(Opened { file, stdin: None })
    }
}

/// The input of a single-file command, open: a file and its metadata, or standard input.
pub struct Opened {
    file: Option<(File, Metadata)>,
    stdin: Option<io::Stdin>,
}

impl Opened {
    /// The file's metadata (from `fstat` of the file read); none for standard input.
    pub fn meta(&self) -> Option<&Metadata> {
        self.file.as_ref().map(|(_, meta)| meta)
    }

    /// A progress bar over the input (`name` in messages).
    pub fn progress(&self, quiet: bool, name: &Path) -> super::progress::Progress {
        match self.meta() {
            Some(meta) => super::progress::Progress::for_file(quiet, meta, name),
            None => super::progress::Progress::new(quiet, None, STDIN),
        }
    }

    /// The input, for the engine.
    pub fn input(&mut self) -> file::Input<'_> {
        match &self.file {
            Some((file, meta)) => file::Input::File(file, meta),
            None => file::Input::Stream(self.stdin.insert(stdin())),
        }
    }
}

/// Opens an input file ([`file::open_input`]); a directory is refused with a clear message.
fn open_input(path: &Path) -> Result<(File, Metadata), Failure> {
    file::open_input(path).map_err(|e| match e {
        FileError::Read(e) => Failure::io(path, &e),
        _ => Failure::usage("is a directory").about(path),
    })
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
    File(Target),
}

/// A file output: its directory (open), its name there, and its path as named.
pub struct Target {
    dir: Dir,
    name: std::ffi::OsString,
    path: PathBuf,
    force: bool,
}

impl Target {
    /// Refuses an existing `path` unless `force` (a race is caught again when the output is
    /// renamed into place), opens its directory, and removes the temporary files that an
    /// earlier run into the same place left behind (killed by SIGKILL, or a power loss),
    /// saying so unless `quiet`.
    fn new(path: PathBuf, force: bool, (program, quiet): (&str, bool)) -> Result<Target, Failure> {
        let (dir, name, removed) = prepare(&path, force)?;
        let target = Target {
            dir,
            name,
            path,
            force,
        };
        target.say_removed(removed, (program, quiet));
        Ok(target)
    }

    /// Says which leftover temporary files beside the output were removed.
    fn say_removed(&self, removed: Vec<PathBuf>, (program, quiet): (&str, bool)) {
        for path in removed {
            if !quiet {
                // Named as the output is: beside it.
                let path = self
                    .path
                    .with_file_name(path.file_name().unwrap_or_default());
                let path = crate::shown::path(&path);
                say!("{program}: removed {path}, left by an interrupted run");
            }
        }
    }

    /// The output, for the engine.
    pub fn output(&self) -> file::Output<'_, '_> {
        file::Output::File(file::Target {
            dir: &self.dir,
            name: &self.name,
            path: &self.path,
            force: self.force,
            temporaries: &Tracked,
        })
    }

    /// Refuses an existing signature beside the output (`NAME.sig`) unless forced, and
    /// removes its leftover temporary files: a signed output is two files.
    pub fn check_signature(&self, (program, quiet): (&str, bool)) -> Result<(), Failure> {
        let path = crate::signing::sender::signature_path(&self.path);
        let (_, _, removed) = prepare(&path, self.force)?;
        self.say_removed(removed, (program, quiet));
        Ok(())
    }
}

impl Destination {
    /// `-o -` means standard output; `-o PATH` a file, or, if PATH is an existing directory,
    /// the file in it that `default` names (as `cp` places a file); without `-o`, `default`
    /// decides. An output that is the input `source` itself is refused before anything is
    /// made.
    pub fn new(
        output: Option<PathBuf>,
        default: impl FnOnce() -> Result<Option<PathBuf>, Failure>,
        (force, program, quiet): (bool, &str, bool),
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
                let target = Target::new(path, force, (program, quiet))?;
                Ok(Destination::File(target))
            }
            None => Ok(Destination::Stdout),
        }
    }

    /// The engine's output: the staged file, or standard output, as `stdout` wraps it, kept
    /// in `slot` and counted for the message of a signal.
    pub fn output<'a>(
        &'a self,
        slot: &'a mut Option<Streamed<Box<dyn io::Write + Send>>>,
        stdout: impl FnOnce(File) -> Box<dyn io::Write + Send>,
    ) -> Result<file::Output<'a, 'a>, Failure> {
        match self {
            Destination::File(target) => Ok(target.output()),
            Destination::Stdout => {
                let writer = slot.insert(Streamed::new(stdout(stdout_file()?)));
                Ok(file::Output::Stream {
                    writer,
                    name: STDOUT.as_ref(),
                })
            }
        }
    }

    /// Whether this is standard output and standard output is a terminal.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Destination::Stdout) && std::io::stdout().is_terminal()
    }
}
