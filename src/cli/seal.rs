//! `seal`: encrypt a file to one or more recipients.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use clap::Parser;

use super::batch;
use super::failure::Failure;
use super::passphrase;
use super::paths::{open_input, stream_outcome, Destination, Source, STDIN, STDOUT};
use super::progress::Progress;
use super::BatchFlags;
use super::{in_pool, keyargs, run, Shared};
use crate::armor::ArmoredWriter;
use crate::batch::Keys;
use crate::mmap::MappedFile;
use crate::{scrypt, Encryptor, Recipient};

const EXAMPLES: &str = "\
Examples:
  seal report.pdf --to server.pub           writes report.pdf.age
  seal report.pdf --to age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  tar c docs | seal --to server.pub > docs.tar.age
  seal big.iso --to server.pub -o /upload/big.iso.age --threads 4
  seal outbox --to server.pub -o /upload    a whole tree, in batch mode
  seal notes.txt --passphrase               asks for a passphrase, twice
  seal notes.txt -a --to server.pub -o -    ASCII armor, for email or a terminal";

/// Seal files to a server's public key, in the age v1 format.
#[derive(Parser, Debug)]
#[command(name = "seal", version, after_help = EXAMPLES)]
#[command(group(clap::ArgGroup::new("passphrase_source").args(["passphrase", "passphrase_file"])))]
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

    /// Seal with a passphrase instead of keys, asked twice on the terminal (no echo).
    #[arg(short = 'p', long, conflicts_with = "passphrase_file")]
    pub passphrase: bool,

    /// Seal with the passphrase in FILE (its contents, without a final newline), for scripts.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// The passphrase's scrypt work factor, log2 of N: each step doubles the time and memory
    /// it takes to try a passphrase. 18 (age's choice: about a second, 256 MiB) by default;
    /// unseal and age refuse more than 22.
    #[arg(long, value_name = "LOG2N", default_value_t = scrypt::DEFAULT_WORK_FACTOR,
          value_parser = clap::value_parser!(u8).range(1..=22), requires = "passphrase_source")]
    pub work_factor: u8,

    /// Write ASCII armor (PEM-like text, `-----BEGIN AGE ENCRYPTED FILE-----`) instead of
    /// binary; one file at a time.
    #[arg(short = 'a', long)]
    pub armor: bool,

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
    let recipients = recipients(&args)?;
    let recipients: Vec<&dyn Recipient> = recipients.iter().map(|r| r.as_ref()).collect();
    if batch::wanted(&args.input) {
        if args.armor {
            return Err(Failure::usage(
                "--armor seals one file at a time, not a batch",
            ));
        }
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
    if destination.is_terminal() && !args.armor {
        return Err(
            Failure::usage("refusing to write sealed binary data to a terminal")
                .hint("use -o FILE, or redirect standard output"),
        );
    }
    batch::check_remove_source(&args.batch, &source, &destination)?;
    let encryptor = Encryptor::new(&recipients)?;

    let (threads, quiet, armor) = (args.shared.threads, args.shared.quiet, args.armor);
    let how = How { threads, armor };
    match (&source, destination) {
        (Source::File(path), Destination::File(pending)) => {
            let (file, meta) = open_input(path)?;
            let progress = Progress::for_file(quiet, &meta, path);
            if meta.is_file() && !args.shared.no_mmap && !armor {
                let map = MappedFile::new(file).map_err(|e| Failure::io(path, &e))?;
                let tick = |n| progress.add(n);
                let seal = || encryptor.seal_to_file_with_progress(&map, pending.file(), &tick);
                in_pool(threads, seal)?.map_err(|e| Failure::io(pending.target(), &e))?;
            } else {
                let input = progress.reader(file);
                stream(
                    encryptor,
                    how,
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
            stream(encryptor, how, input, io::stdout(), path, STDOUT.as_ref())
        }
        (Source::Stdin, Destination::File(pending)) => {
            let progress = Progress::new(quiet, None, STDIN);
            let (input, output) = (progress.reader(io::stdin()), pending.file());
            stream(
                encryptor,
                how,
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
                how,
                input,
                io::stdout(),
                STDIN.as_ref(),
                STDOUT.as_ref(),
            )
        }
    }
}

/// The recipients: keys from `--to`, `-r` and `-R`, or a passphrase, never both.
fn recipients(args: &Args) -> Result<Vec<Box<dyn Recipient>>, Failure> {
    let passphrase = match &args.passphrase_file {
        Some(path) => Some(passphrase::from_file("seal", path)?),
        None if args.passphrase => Some(passphrase::ask_new()?),
        None => None,
    };
    let Some(passphrase) = passphrase else {
        return keyargs::recipients(&args.to, &args.recipient, &args.recipients_file);
    };
    if !(args.to.is_empty() && args.recipient.is_empty() && args.recipients_file.is_empty()) {
        return Err(
            Failure::usage("a passphrase cannot be combined with other recipients")
                .hint("seal with either --passphrase or --to, not both"),
        );
    }
    let recipient = scrypt::Recipient::new(passphrase).with_work_factor(args.work_factor);
    Ok(vec![Box::new(recipient)])
}

/// How to seal a stream: on how many threads, armored or not.
#[derive(Clone, Copy)]
struct How {
    threads: usize,
    armor: bool,
}

/// Seals a stream, armored if asked, naming the side that failed.
fn stream(
    encryptor: Encryptor,
    How { threads, armor }: How,
    input: impl Read + Send,
    output: impl Write + Send,
    input_name: &Path,
    output_name: &Path,
) -> Result<(), Failure> {
    if !armor {
        let result = in_pool(threads, || encryptor.seal_stream(input, output))?;
        return stream_outcome(result, input_name, output_name);
    }
    let mut armored = ArmoredWriter::new(output);
    let result = in_pool(threads, || encryptor.seal_stream(input, &mut armored))?;
    stream_outcome(result, input_name, output_name)?;
    match armored.finish() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Failure::io(output_name, &e)),
        _ => Ok(()),
    }
}
