//! `seal`: encrypt a file to one or more recipients.

use std::path::{Path, PathBuf};

use clap::Parser;

use super::batch;
use super::failure::Failure;
use super::passphrase;
use super::paths::{file_outcome, Destination, Source};
use super::BatchFlags;
use super::{in_pool, keyargs, run, Shared};
use crate::batch::Keys;
use crate::file;
use crate::keys::KeyFileKind;
use crate::signing::sshsig::SigningKey;
use crate::{scrypt, Encryptor, Recipient};

const EXAMPLES: &str = "\
Examples:
  seal report.pdf --to server.pub           writes report.pdf.age
  tar c docs | seal --to server.pub > docs.tar.age
  seal outbox --to server.pub -o /upload    a whole tree, in batch mode

More examples, and every flag in full: man seal";

const LONG_EXAMPLES: &str = "\
Examples:
  seal report.pdf --to server.pub           writes report.pdf.age
  seal report.pdf --to age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  tar c docs | seal --to server.pub > docs.tar.age
  seal big.iso --to server.pub -o /upload/big.iso.age --threads 4
  seal big.iso --to server.pub -o /upload   writes /upload/big.iso.age
  seal outbox --to server.pub -o /upload    a whole tree, in batch mode
  seal notes.txt --passphrase               asks for a passphrase, twice
  seal notes.txt -a --to server.pub -o -    ASCII armor, for email or a terminal
  seal report.pdf --to server.pub --sign-with alice.key
                                            also writes report.pdf.age.sig, signed by alice

age's -e (--encrypt) is accepted, and changes nothing.";

/// Seal files to a server's public key, in the age v1 format
#[derive(Parser, Debug)]
#[command(name = "seal", version, after_help = EXAMPLES, after_long_help = LONG_EXAMPLES)]
#[command(disable_help_flag = true)]
#[command(group(clap::ArgGroup::new("passphrase_source").args(["passphrase", "passphrase_file"])))]
pub struct Args {
    /// Files or directories to seal (none or `-`: standard input)
    ///
    /// Directories, or several inputs, are sealed in batch mode: each file to FILE.age,
    /// mirrored under `-o DIRECTORY` if given.
    #[arg(value_name = "INPUT")]
    pub input: Vec<PathBuf>,

    /// Seal to a recipients file (server.pub) or a recipient
    ///
    /// A file of recipients (one per line, or a PEM public key), or a literal `age1...` or
    /// `ssh-...` recipient that names no file. Repeatable.
    #[arg(short = 't', long = "to", value_name = "FILE|RECIPIENT")]
    pub to: Vec<String>,

    /// Seal to a recipient (age1...), as `age -r`
    ///
    /// Repeatable. Spaces and line ends around it (as pasted) are left out, and an `AGE1...`
    /// recipient in upper case is read as Bech32 allows. A file given here is refused, with
    /// a hint: -R and --to take files.
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipient: Vec<String>,

    /// Seal to the recipients in a file, as `age -R`
    ///
    /// Repeatable. A recipient given here is refused, with a hint: -r and --to take
    /// recipients.
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_file: Vec<PathBuf>,

    /// Seal with a passphrase, asked on the terminal
    ///
    /// Instead of keys; asked twice, without echo.
    #[arg(short = 'p', long, conflicts_with = "passphrase_file")]
    pub passphrase: bool,

    /// Seal with the passphrase in FILE
    ///
    /// Its contents, without a final newline: for scripts.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// The passphrase's scrypt work factor
    ///
    /// log2 of scrypt's N: each step doubles the time and memory it takes to try a
    /// passphrase. 18 (age's choice: about a second, 256 MiB) by default; unseal and age
    /// refuse more than 22.
    #[arg(long, value_name = "LOG2N", default_value_t = scrypt::DEFAULT_WORK_FACTOR,
          value_parser = clap::value_parser!(u8).range(1..=22), requires = "passphrase_source")]
    pub work_factor: u8,

    /// Write ASCII armor instead of binary
    ///
    /// PEM-like text, `-----BEGIN AGE ENCRYPTED FILE-----`, for email or a terminal; one
    /// file at a time.
    #[arg(short = 'a', long)]
    pub armor: bool,

    /// Sign with a client key too, into OUTPUT.sig
    ///
    /// KEY is an OpenSSH Ed25519 private key, such as `seal-keygen --client` makes, or an RSA
    /// one of 2048 bits or more. The detached signature OUTPUT.sig is SSHSIG, namespace
    /// `seal`, which `ssh-keygen -Y verify -n seal` checks too; the file's header names the
    /// signer. In batch mode, every output is signed. A public key, an age identity or a PEM
    /// key given here is named for what it is.
    #[arg(long, value_name = "KEY")]
    pub sign_with: Option<PathBuf>,

    /// Where the passphrase of a protected --sign-with key comes from (and a plugin's PIN).
    #[command(flatten)]
    pub key_passphrase: keyargs::PassphraseFlags,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub plugins: super::plugins::PluginFlags,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub shared: Shared,

    #[command(flatten, next_help_heading = super::batch::HEADING)]
    #[allow(missing_docs)]
    pub batch: BatchFlags,
}

/// The `seal` binary.
pub fn main() -> std::process::ExitCode {
    let mut args: Args = super::parse_args();
    args.shared.cap_threads("seal");
    run("seal", || seal(args))
}

/// Runs `seal` with parsed arguments.
pub fn seal(args: Args) -> Result<(), Failure> {
    args.shared.check_direction("seal")?;
    if args.sign_with.is_some() && (args.passphrase || args.passphrase_file.is_some()) {
        return Err(
            Failure::usage("--sign-with cannot be combined with a passphrase")
                .hint("a passphrase stanza must be alone in its header, and the signer's is another; seal to keys (--to)"),
        );
    }
    let recipients = recipients(&args)?;
    let recipients: Vec<&dyn Recipient> = recipients.iter().map(|r| r.as_ref()).collect();
    if batch::wanted(&args.input) {
        if args.armor {
            return Err(Failure::usage(
                "--armor seals one file at a time, not a batch",
            ));
        }
        let signer = match &args.sign_with {
            Some(path) => Some(signing_key(path, &args.key_passphrase)?.into()),
            None => None,
        };
        let command = batch::Command {
            program: "seal",
            inputs: &args.input,
            shared: args.shared,
            flags: &args.batch,
            signer,
            senders: None,
        };
        return batch::run(command, Keys::Recipients(&recipients));
    }
    batch::check_single(&args.batch)?;
    let quiet = args.shared.quiet;
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
        (args.shared.force, "seal", quiet),
        &source,
    )?;
    if destination.is_terminal() && !args.armor {
        return Err(
            Failure::usage("refusing to write sealed binary data to a terminal")
                .hint("use -o FILE, or redirect standard output"),
        );
    }
    batch::check_remove_source(&args.batch, &source, &destination)?;
    // A signature goes beside the sealed file: an existing one stops everything now.
    let signer = match (&args.sign_with, &destination) {
        (None, _) => None,
        (Some(_), Destination::Stdout) => {
            return Err(Failure::usage("--sign-with needs an output file")
                .hint("name one with -o FILE, or seal a file rather than standard input"))
        }
        (Some(key), Destination::File(target)) => {
            target.check_signature(("seal", quiet))?;
            Some(signing_key(key, &args.key_passphrase)?)
        }
    };
    let encryptor = match &signer {
        None => Encryptor::new(&recipients)?,
        Some(key) => Encryptor::new_signed_by(&recipients, &key.public_key())?,
    };

    let mut opened = source.open()?;
    let progress = opened.progress(quiet, source.name());
    let tick = |n| progress.add(n);
    let mut stdout = None;
    let output = destination.output(&mut stdout, |out| Box::new(out))?;
    let sealing = file::Sealing {
        encryptor,
        signer: signer.as_ref(),
        armor: args.armor,
    };
    let positioned = !args.shared.no_mmap;
    let input = opened.input();
    let result = in_pool(args.shared.threads, || {
        file::seal(input, output, sealing, positioned, &tick).and_then(file::Written::commit)
    })?;
    file_outcome(result, source.name())?;
    drop(progress);
    match (&source, &destination, opened.meta()) {
        (Source::File(path), Destination::File(_), Some(meta)) => {
            batch::remove_single(&args.batch, (path, meta), false)
        }
        _ => Ok(()),
    }
}

/// The client key of `--sign-with`, asking for its passphrase if it has one. A key file of
/// another kind (a public key, an age identity, a PEM key) is named for what it is.
fn signing_key(
    path: &Path,
    passphrase_flags: &keyargs::PassphraseFlags,
) -> Result<SigningKey, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure::io(path, &e))?;
    let kind = KeyFileKind::of(&text).filter(|kind| *kind != KeyFileKind::OpenSsh);
    if let Some(kind) = kind {
        let hint = match kind {
            KeyFileKind::Public => "give the private key, not its public half",
            KeyFileKind::Pem => "--sign-with takes a client key: seal-keygen --client NAME makes one (ssh-keygen -p -f KEY converts a PEM key)",
            _ => "--sign-with takes a client key: seal-keygen --client NAME makes one",
        };
        let failure = Failure::usage(format!("this is {kind}, not an OpenSSH private key"));
        return Err(failure.about(path).hint(hint));
    }
    let mut passphrase = || passphrase_flags.get(path);
    SigningKey::from_openssh(&text, &mut passphrase).map_err(|e| Failure::from(e).about(path))
}

/// The recipients: keys from `--to`, `-r` and `-R`, or a passphrase, never both.
fn recipients(args: &Args) -> Result<Vec<Box<dyn Recipient>>, Failure> {
    let passphrase = match &args.passphrase_file {
        Some(path) => Some(passphrase::from_file("seal", path)?),
        None if args.passphrase => Some(passphrase::ask_new()?),
        None => None,
    };
    let Some(passphrase) = passphrase else {
        let plugins = args.plugins.client("seal", &args.key_passphrase)?;
        return keyargs::recipients(&args.to, &args.recipient, &args.recipients_file, &plugins);
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
