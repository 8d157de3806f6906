//! `unseal`: decrypt a sealed file with the server's key, on every core.

use std::fs::{File, Metadata};
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Parser;

use super::batch;
use super::failure::{ExitCode, Failure};
use super::passphrase::{self, Passphrase};
use super::paths::{
    open_input, stdin, stdout_file, stream_outcome, Destination, Source, STDIN, STDOUT,
};
use super::progress::{label, Progress};
use super::senders::{self, FileCheck, Senders};
use super::BatchFlags;
use super::{in_pool, keyargs, run, Shared};
use crate::batch::Keys;
use crate::sender::HashingReader;
use crate::sshsig::Hasher;
use crate::{armor, parallel, Decryptor, Identity, Output, SealedFile};

const EXAMPLES: &str = "\
Examples:
  unseal report.pdf.age --key server.key    writes report.pdf
  unseal --key server.key < docs.tar.age | tar x
  unseal /srv/upload -k server.key -o /srv/inbox    a whole tree, in batch mode
  unseal --inspect upload.age               what it holds, without opening it

More examples, and every flag in full: man unseal";

const LONG_EXAMPLES: &str = "\
Examples:
  unseal report.pdf.age --key server.key    writes report.pdf
  unseal upload.age -k server.key -o /srv/inbox/upload.bin
  unseal --key server.key < docs.tar.age | tar x
  unseal big.iso.age --key old.key --key server.key --threads 8
  unseal /srv/upload -k server.key -o /srv/inbox --json    a whole tree, in batch mode
  unseal notes.txt.age                      asks for the passphrase if it was sealed with one
  unseal notes.txt.age --passphrase-file pass.txt
  unseal --inspect upload.age [--json] [--key server.key]   what it holds, without opening it
  unseal upload.age -k server.key --allowed-signers clients --require-signature
                                            only if upload.age.sig is by a listed client

ASCII-armored input (seal -a, age -a) is detected and decoded by itself. age's -d
(--decrypt) is accepted, and changes nothing.";

/// Open files sealed to this server, in the age v1 format, on every core
#[derive(Parser, Debug)]
#[command(name = "unseal", version, after_help = EXAMPLES, after_long_help = LONG_EXAMPLES)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Files or directories to open (none or `-`: standard input)
    ///
    /// Directories, or several inputs, are opened in batch mode: each NAME.age to NAME,
    /// mirrored under `-o DIRECTORY` if given.
    #[arg(value_name = "INPUT")]
    pub input: Vec<PathBuf>,

    /// Identity file, such as server.key; repeatable
    ///
    /// It may hold several keys: age identities, or an OpenSSH or PEM private key. A public
    /// key given here is named as one.
    #[arg(
        short = 'k',
        long = "key",
        visible_short_alias = 'i',
        alias = "identity",
        value_name = "FILE"
    )]
    pub key: Vec<PathBuf>,

    /// Passphrase of a file sealed with one, from FILE
    ///
    /// Its contents, without a final newline. Without it and without --key, unseal asks on
    /// the terminal if the file needs it.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub passphrase: keyargs::PassphraseFlags,

    /// Show what a sealed file holds, without opening it
    ///
    /// Format, armor, each stanza's type and the recipient it names where knowable (or the
    /// signer it names), header and payload sizes, chunk count. Needs no key; with --key,
    /// also says which key opens which stanza. Writes no plaintext.
    #[arg(long)]
    pub inspect: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub shared: Shared,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub senders: senders::SignatureFlags,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub batch: BatchFlags,
}

/// The `unseal` binary.
pub fn main() -> std::process::ExitCode {
    let mut args: Args = super::parse_args();
    args.shared.cap_threads("unseal");
    run("unseal", || unseal(args))
}

/// Runs `unseal` with parsed arguments.
pub fn unseal(args: Args) -> Result<(), Failure> {
    args.shared.check_direction("unseal")?;
    if args.inspect {
        return super::inspect::run(&args.input, &args.key, &args.passphrase, args.batch.json);
    }
    let single = !batch::wanted(&args.input);
    let senders = Senders::from_flags(&args.senders, args.shared.quiet)?;
    if let Some(senders) = &senders {
        senders.check_single(single)?;
    }
    let keys = keyargs::identities("unseal", &args.key, &args.passphrase)?;
    if !single && keys.is_empty() && args.passphrase_file.is_none() {
        // A batch does not stop to ask: the passphrase comes from a file, if at all.
        return Err(Failure::usage("no key given").hint(
            "use --key server.key, or --passphrase-file FILE for files sealed with a passphrase",
        ));
    }
    let passphrase = match &args.passphrase_file {
        Some(path) => Some(Passphrase::given(passphrase::from_file("unseal", path)?)),
        None if keys.is_empty() => Some(Passphrase::prompt()),
        None => None,
    };
    let mut identities: Vec<&dyn Identity> = keys.iter().map(|i| i.as_ref()).collect();
    identities.extend(passphrase.as_ref().map(|p| p as &dyn Identity));
    let input_name = match args.input.as_slice() {
        [path] if path.as_os_str() != "-" => path.clone(),
        _ => PathBuf::from(STDIN),
    };
    let result = open(args, &identities, senders.as_ref());
    match (result, &passphrase) {
        (Err(failure), Some(passphrase)) if single => Err(passphrase.explain(failure, &input_name)),
        (Err(failure), None) if single && failure.code == ExitCode::NoMatch => {
            Err(explain_passphrase_file(failure, &input_name))
        }
        (result, _) => result,
    }
}

/// Keys were given but none matched: if the file (not standard input, which is gone) is
/// sealed with a passphrase, say so.
fn explain_passphrase_file(failure: Failure, input: &Path) -> Failure {
    let header = std::fs::File::open(input)
        .ok()
        .and_then(|file| Decryptor::new(BufReader::new(file)).ok());
    let passphrase = header.is_some_and(|d| {
        let stanzas = &d.header().stanzas;
        stanzas.iter().any(|s| s.kind == crate::scrypt::STANZA_KIND)
    });
    match passphrase {
        true => Failure::new(
            ExitCode::NoMatch,
            "the file is sealed with a passphrase, not to a key",
        )
        .about(input)
        .hint("leave out --key to be asked for the passphrase, or use --passphrase-file FILE"),
        false => failure,
    }
}

fn open(
    args: Args,
    identities: &[&dyn Identity],
    senders: Option<&Senders>,
) -> Result<(), Failure> {
    if batch::wanted(&args.input) {
        let command = batch::Command {
            program: "unseal",
            inputs: &args.input,
            shared: args.shared,
            flags: &args.batch,
            signer: None,
            senders: senders.map(|s| &s.policy),
        };
        return batch::run(command, Keys::Identities(identities));
    }
    batch::check_single(&args.batch)?;
    let source = Source::from_arg(args.input.into_iter().next());
    let destination = Destination::new(
        args.shared.output,
        || match &source {
            Source::File(path) => default_output(path).map(Some),
            Source::Stdin => Ok(None),
        },
        args.shared.force,
        &source,
    )?;
    batch::check_remove_source(&args.batch, &source, &destination)?;
    let (threads, quiet) = (args.shared.threads, args.shared.quiet);
    let (input_path, input_name) = match &source {
        Source::File(path) => (Some(path.as_path()), path.as_path()),
        Source::Stdin => (None, Path::new(STDIN)),
    };
    // The signature is found and looked up before the input is read: an unsigned or
    // unknown sender is refused before any decryption.
    let (mut signed, mut hasher) = FileCheck::start(senders, input_path, input_name)?;
    match (&source, destination) {
        (Source::File(path), Destination::File(pending)) => {
            let (file, meta) = open_input(path)?;
            let output = pending.target();
            let names = (path.as_path(), output);
            if positioned(&file, &meta, args.shared.no_mmap, path)? {
                // SAFETY: the temporary output is a new file of ours (mode 0600), which
                // nothing else writes, truncates or resizes until it is committed.
                #[allow(unsafe_code)]
                let mapped = unsafe { crate::MappedFile::new(pending.file()) };
                let out = (Output::Mapped(mapped), output);
                let check = (&mut signed, hasher.as_mut());
                decrypt_file(&file, path, identities, (threads, quiet), check, out)?;
            } else {
                // Armored, not a regular file, or --no-mmap: read as a stream, hashed as read.
                let progress = Progress::for_file(quiet, &meta, path);
                let input =
                    BufReader::new(HashingReader::new(progress.reader(file), hasher.as_mut()));
                let (out, check) = (pending.file(), &mut signed);
                stream(input, identities, threads, out, names, check)?;
            }
            // The output stays a temporary file until the signature checks out.
            signed.finish(hasher)?;
            let output = pending.target().to_path_buf();
            pending.commit()?;
            // A checked signature goes with its file.
            batch::remove_single(&args.batch, (path, &meta), &output, senders.is_some())
        }
        (Source::File(path), Destination::Stdout) => {
            refuse_unchecked_stream(&signed)?;
            let (file, meta) = open_input(path)?;
            let to_terminal = io::stdout().is_terminal();
            if !to_terminal && positioned(&file, &meta, args.shared.no_mmap, path)? {
                let mut stdout = stdout_file()?;
                let out = (Output::Writer(&mut stdout), STDOUT.as_ref());
                let check = (&mut signed, hasher.as_mut());
                decrypt_file(&file, path, identities, (threads, quiet), check, out)?;
                return signed.finish(hasher);
            }
            let progress = Progress::for_file(quiet, &meta, path);
            let input = BufReader::new(HashingReader::new(progress.reader(file), hasher.as_mut()));
            to_stdout(input, identities, threads, path, &mut signed)?;
            signed.finish(hasher)
        }
        (Source::Stdin, Destination::File(pending)) => {
            let progress = Progress::new(quiet, None, STDIN);
            let input = BufReader::new(HashingReader::new(
                progress.reader(stdin()),
                hasher.as_mut(),
            ));
            let names = (STDIN.as_ref(), pending.target());
            let (out, check) = (pending.file(), &mut signed);
            stream(input, identities, threads, out, names, check)?;
            drop(progress);
            signed.finish(hasher)?;
            pending.commit()
        }
        (Source::Stdin, Destination::Stdout) => {
            refuse_unchecked_stream(&signed)?;
            let progress = Progress::new(quiet, None, STDIN);
            let input = BufReader::new(HashingReader::new(
                progress.reader(stdin()),
                hasher.as_mut(),
            ));
            to_stdout(input, identities, threads, STDIN.as_ref(), &mut signed)?;
            drop(progress);
            signed.finish(hasher)
        }
    }
}

/// A stream to standard output is written as it decrypts, before its last byte is hashed:
/// with `--require-signature` it would release plaintext of a sender not yet checked.
fn refuse_unchecked_stream(signed: &FileCheck<'_>) -> Result<(), Failure> {
    match signed.required() {
        true => Err(Failure::usage(
            "--require-signature cannot hold back plaintext streamed to standard output",
        )
        .hint("write to a file with -o FILE (renamed into place once the signature checks out), or name a regular file as the input")),
        false => Ok(()),
    }
}

/// Whether a file is opened with positioned reads on every core ([`SealedFile`]): a regular,
/// binary file, unless `--no-mmap` asks for a stream.
fn positioned(file: &File, meta: &Metadata, no_mmap: bool, path: &Path) -> Result<bool, Failure> {
    if !meta.is_file() || no_mmap {
        return Ok(false);
    }
    armor::is_armored_file(file)
        .map(|armored| !armored)
        .map_err(|e| Failure::io(path, &e))
}

/// Opens a regular binary file with positioned reads on every core ([`SealedFile`]) into
/// `out` (named `out_name` in messages): the header authenticated, the signer bound, and the
/// header, nonce and every chunk hashed from the very copies that are decrypted.
fn decrypt_file(
    file: &File,
    path: &Path,
    identities: &[&dyn Identity],
    (threads, quiet): (usize, bool),
    (signed, mut hasher): (&mut FileCheck<'_>, Option<&mut Hasher>),
    (out, out_name): (Output<'_>, &Path),
) -> Result<(), Failure> {
    let blame = |e| Failure::from(e).about(path);
    let sealed = SealedFile::new(file).map_err(blame)?;
    let opened = sealed.unwrap(identities).map_err(blame)?;
    signed.bind(&sealed.header().stanzas)?;
    if let Some(hasher) = hasher.as_mut() {
        hasher.update(sealed.head());
    }
    let progress = Progress::new(quiet, Some(opened.plaintext_len()), &label(path));
    let tick = |n| progress.add(n);
    let result = in_pool(threads, || {
        let mut feed = hasher.map(|h| |bytes: &[u8]| h.update(bytes));
        let hash = feed.as_mut().map(|f| f as parallel::Hash<'_>);
        opened.decrypt(out, hash, &tick).map(drop)
    })?;
    stream_outcome(result, path, out_name)
}

/// `report.pdf.age` becomes `report.pdf`; anything else needs `-o`.
fn default_output(input: &Path) -> Result<PathBuf, Failure> {
    let name = input.file_name().and_then(|n| n.to_str()).unwrap_or("");
    match name.strip_suffix(".age") {
        Some(stem) if !stem.is_empty() => Ok(input.with_file_name(stem)),
        _ => Err(
            Failure::usage("does not end in .age, so the output name is unknown")
                .about(input)
                .hint("use -o OUTPUT"),
        ),
    }
}

/// Opens a stream on `threads` threads; only authenticated plaintext reaches `output`. The
/// header must name the signer `signed` expects.
fn stream(
    input: impl BufRead + Send,
    identities: &[&dyn Identity],
    threads: usize,
    output: impl Write + Send,
    (input_name, output_name): (&Path, &Path),
    signed: &mut FileCheck<'_>,
) -> Result<(), Failure> {
    let opened = Decryptor::new(input)
        .and_then(|d| d.open(identities))
        .map_err(|e| Failure::from(e).about(input_name))?;
    signed.bind(&opened.header().stanzas)?;
    let result = in_pool(threads, || opened.decrypt_to(output))?;
    stream_outcome(result, input_name, output_name)
}

/// Opens a stream to standard output. A terminal gets text only: the first chunk is checked
/// before anything is written, so this path goes chunk by chunk.
fn to_stdout(
    input: impl BufRead + Send,
    identities: &[&dyn Identity],
    threads: usize,
    input_name: &Path,
    signed: &mut FileCheck<'_>,
) -> Result<(), Failure> {
    let output_name = STDOUT.as_ref();
    if !io::stdout().is_terminal() {
        let names = (input_name, output_name);
        let (out, check) = (stdout_file()?, signed);
        return stream(input, identities, threads, out, names, check);
    }
    let blame = |e| Failure::from(e).about(input_name);
    let opened = Decryptor::new(input)
        .and_then(|d| d.open(identities))
        .map_err(blame)?;
    signed.bind(&opened.header().stanzas)?;
    let mut reader = opened.into_reader();
    let mut out = io::stdout().lock();
    let mut first = true;
    while let Some(chunk) = reader.next_chunk().map_err(blame)? {
        if first && looks_binary(chunk) {
            return Err(
                Failure::usage("refusing to write binary plaintext to a terminal")
                    .about(input_name)
                    .hint("use -o FILE, or redirect standard output"),
            );
        }
        first = false;
        out.write_all(chunk)
            .map_err(|e| Failure::io(output_name, &e))?;
    }
    out.flush().map_err(|e| Failure::io(output_name, &e))
}

/// Binary, for the terminal check: a NUL byte, or bytes that are not UTF-8 (a character cut
/// at the end of the chunk is fine).
fn looks_binary(chunk: &[u8]) -> bool {
    chunk.contains(&0) || matches!(std::str::from_utf8(chunk), Err(e) if e.error_len().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_name_strips_age_or_asks_for_o() {
        assert_eq!(
            default_output(Path::new("in/report.pdf.age")).unwrap(),
            Path::new("in/report.pdf")
        );
        assert!(default_output(Path::new("report.pdf")).is_err());
        assert!(default_output(Path::new(".age")).is_err());
    }

    #[test]
    fn text_is_not_binary_but_nul_and_invalid_utf8_are() {
        assert!(!looks_binary("héllo\n".as_bytes()));
        assert!(!looks_binary(&"é".as_bytes()[..1]));
        assert!(looks_binary(b"a\0b"));
        assert!(looks_binary(b"\xff\xfe"));
    }
}
