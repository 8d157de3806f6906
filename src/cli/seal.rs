//! `seal`: encrypt a file to one or more recipients.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use clap::Parser;

use super::batch;
use super::failure::Failure;
use super::paths::{open_input, stream_outcome, Destination, Source, STDIN, STDOUT};
use super::progress::Progress;
use super::BatchFlags;
use super::{in_pool, keyargs, run, Shared};
use crate::batch::Keys;
use crate::mmap::MappedFile;
use crate::{Encryptor, Recipient};

const EXAMPLES: &str = "\
Examples:
  seal report.pdf --to server.pub           writes report.pdf.age
  seal report.pdf --to age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  tar c docs | seal --to server.pub > docs.tar.age
  seal big.iso --to server.pub -o /upload/big.iso.age --threads 4
  seal outbox --to server.pub -o /upload    a whole tree, in batch mode";

/// Seal files to a server's public key, in the age v1 format.
#[derive(Parser, Debug)]
#[command(name = "seal", version, after_help = EXAMPLES)]
pub struct Args {
    /// File to seal; `-` or none reads standard input. Directories, or several inputs, are
    /// sealed in batch mode: each file to FILE.age, mirrored under `-o DIRECTORY` if given.
    #[arg(value_name = "INPUT")]
    pub input: Vec<PathBuf>,

    /// Seal to a recipients file (such as server.pub) or to a literal `age1...` recipient.
    /// Repeatable.
    #[arg(short = 't', long = "to", value_name = "FILE|RECIPIENT")]
    pub to: Vec<String>,

    /// Seal to a literal recipient, as `age -r` does. Repeatable.
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipient: Vec<String>,

    /// Seal to the recipients listed in a file, as `age -R` does. Repeatable.
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_file: Vec<PathBuf>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub shared: Shared,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub batch: BatchFlags,
}

/// The `seal` binary.
pub fn main() -> std::process::ExitCode {
    let args = Args::parse();
    run("seal", || seal(args))
}

/// Runs `seal` with parsed arguments.
pub fn seal(args: Args) -> Result<(), Failure> {
    let recipients = keyargs::recipients(&args.to, &args.recipient, &args.recipients_file)?;
    let recipients: Vec<&dyn Recipient> = recipients.iter().map(|r| r.as_ref()).collect();
    if batch::wanted(&args.input) {
        let command = batch::Command {
            program: "seal",
            inputs: &args.input,
            shared: args.shared,
            flags: &args.batch,
        };
        return batch::run(command, Keys::Recipients(&recipients));
    }
    batch::check_single(&args.batch)?;
    let source = Source::from_arg(args.input.into_iter().next());
    let destination = Destination::new(
        args.shared.output,
        || match &source {
            Source::File(path) => {
                let mut name = path.clone().into_os_string();
                name.push(".age");
                Ok(Some(name.into()))
            }
            Source::Stdin => Ok(None),
        },
        args.shared.force,
    )?;
    if destination.is_terminal() {
        return Err(
            Failure::usage("refusing to write sealed binary data to a terminal")
                .hint("use -o FILE, or redirect standard output"),
        );
    }
    batch::check_remove_source(&args.batch, &source, &destination)?;
    let encryptor = Encryptor::new(&recipients)?;

    let (threads, quiet) = (args.shared.threads, args.shared.quiet);
    match (&source, destination) {
        (Source::File(path), Destination::File(pending)) => {
            let (file, meta) = open_input(path)?;
            let progress = Progress::for_file(quiet, &meta, path);
            if meta.is_file() && !args.shared.no_mmap {
                let map = MappedFile::new(file).map_err(|e| Failure::io(path, &e))?;
                let tick = |n| progress.add(n);
                let seal = || encryptor.seal_to_file_with_progress(&map, pending.file(), &tick);
                in_pool(threads, seal)?.map_err(|e| Failure::io(pending.target(), &e))?;
            } else {
                let input = progress.reader(file);
                stream(
                    encryptor,
                    threads,
                    input,
                    pending.file(),
                    path,
                    pending.target(),
                )?;
            }
            drop(progress);
            let output = pending.target().to_path_buf();
            pending.commit()?;
            batch::remove_single(&args.batch, path, &output)
        }
        (Source::File(path), Destination::Stdout) => {
            let (file, meta) = open_input(path)?;
            let progress = Progress::for_file(quiet, &meta, path);
            let input = progress.reader(file);
            stream(
                encryptor,
                threads,
                input,
                io::stdout(),
                path,
                STDOUT.as_ref(),
            )
        }
        (Source::Stdin, Destination::File(pending)) => {
            let progress = Progress::new(quiet, None, STDIN);
            let (input, output) = (progress.reader(io::stdin()), pending.file());
            stream(
                encryptor,
                threads,
                input,
                output,
                STDIN.as_ref(),
                pending.target(),
            )?;
            drop(progress);
            pending.commit()
        }
        (Source::Stdin, Destination::Stdout) => {
            let progress = Progress::new(quiet, None, STDIN);
            let input = progress.reader(io::stdin());
            stream(
                encryptor,
                threads,
                input,
                io::stdout(),
                STDIN.as_ref(),
                STDOUT.as_ref(),
            )
        }
    }
}

/// Seals a stream on `threads` threads, naming the side that failed.
fn stream(
    encryptor: Encryptor,
    threads: usize,
    input: impl Read + Send,
    output: impl Write + Send,
    input_name: &Path,
    output_name: &Path,
) -> Result<(), Failure> {
    let result = in_pool(threads, || encryptor.seal_stream(input, output))?;
    stream_outcome(result, input_name, output_name)
}
