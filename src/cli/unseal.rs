//! `unseal`: decrypt a sealed file with the server's key, on every core.

use std::io::{self, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Parser;

use super::batch;
use super::failure::{ExitCode, Failure};
use super::passphrase::{self, Passphrase};
use super::paths::{file_outcome, Destination, Refusal, Source, STDIN};
use super::senders::{self, Senders};
use super::watch;
use super::BatchFlags;
use super::{in_pool, keyargs, run, Shared};
use crate::batch::Keys;
use crate::file;
use crate::signing::sender::SealedHash;
use crate::signing::sender::{FileCheck, Policy};
use crate::{Decryptor, Identity};

const EXAMPLES: &str = "\
Examples:
  unseal report.pdf.age --key server.key    writes report.pdf
  unseal --key server.key < docs.tar.age | tar x
  unseal /srv/upload -k server.key -o /srv/inbox    a whole tree, in batch mode

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

    #[command(flatten)]
    #[allow(missing_docs)]
    pub plugins: super::plugins::PluginFlags,

    /// Show what a sealed file holds, without opening it
    ///
    /// Format, armor, each stanza's type and the recipient it names where knowable (or the
    /// signer it names), header and payload sizes, chunk count. Needs no key; with --key,
    /// also says which key opens which stanza. Writes no plaintext.
    #[arg(long)]
    pub inspect: bool,

    /// Rotate the sealed files named to these recipients, in place (repeatable)
    ///
    /// A recipient (age1..., ssh-...) or a file of them, as seal --to. --key gives the
    /// current server key: each file's key is unwrapped with it and wrapped again to the new
    /// recipients; the payload is neither decrypted nor rewritten. A file the key does not
    /// open is left as it is (rotated already). Directories go through whole. Beside each
    /// file, NAME.age.rotated keeps the header it was sealed with, which its signature needs.
    #[arg(long, value_name = "RECIPIENT|FILE")]
    pub rewrap_to: Vec<String>,

    /// With --rewrap-to: rotate a file whose signature does not check too, removing that
    /// signature (the file is then unsigned); without it such a file is refused
    #[arg(long, requires = "rewrap_to", hide_short_help = true)]
    pub drop_bad_signatures: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub shared: Shared,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub senders: senders::SignatureFlags,

    #[command(flatten, next_help_heading = watch::HEADING)]
    #[allow(missing_docs)]
    pub batch: BatchFlags,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub watch: watch::WatchFlags,
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
        let plugins = args.plugins.client("unseal", &args.passphrase)?;
        return super::inspect::run(
            &args.input,
            &args.key,
            &args.passphrase,
            &plugins,
            args.batch.json,
        );
    }
    if !args.rewrap_to.is_empty() {
        return rewrap(args);
    }
    let single = !batch::wanted(&args.input) && args.watch.watch.is_none();
    let senders = Senders::from_flags(&args.senders, args.shared.quiet)?;
    if let Some(senders) = &senders {
        senders.check_single(single)?;
    }
    let plugins = args.plugins.client("unseal", &args.passphrase)?;
    let keys = keyargs::identities("unseal", &args.key, &args.passphrase, &plugins)?;
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
    if let Some(inbox) = &args.watch.watch {
        let command = watch::Command {
            inbox,
            flags: &args.watch,
            output: args.shared.output.as_deref(),
            inputs: &args.input,
            remove_source: args.batch.remove_source,
            json: args.batch.json,
            quiet: args.shared.quiet,
            force: args.shared.force,
            threads: args.shared.threads,
            senders: senders.as_ref().map(|s| &s.policy),
            signature_flags: &args.senders,
        };
        return watch::run(command, &identities);
    }
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

/// `--rewrap-to`: rotates the files named, through batch mode.
fn rewrap(args: Args) -> Result<(), Failure> {
    let refused = [
        (args.watch.watch.is_some(), "--watch"),
        (args.shared.output.is_some(), "-o"),
        (args.batch.remove_source, "--remove-source"),
        (args.passphrase_file.is_some(), "--passphrase-file"),
        (args.senders.allowed_signers.is_some(), "--allowed-signers"),
    ];
    if let Some((_, flag)) = refused.iter().find(|(given, _)| *given) {
        return Err(Failure::usage(format!(
            "--rewrap-to rotates files in place: not with {flag}"
        )));
    }
    if args.input.is_empty() {
        return Err(Failure::usage(
            "--rewrap-to needs the sealed files or directories to rotate",
        ));
    }
    let plugins = args.plugins.client("unseal", &args.passphrase)?;
    let recipients = keyargs::recipients(&args.rewrap_to, &[], &[], &plugins)?;
    let recipients: Vec<&dyn crate::Recipient> = recipients.iter().map(|r| r.as_ref()).collect();
    let keys = keyargs::identities("unseal", &args.key, &args.passphrase, &plugins)?;
    if keys.is_empty() {
        return Err(
            Failure::usage("--rewrap-to needs the current server key").hint("use --key server.key")
        );
    }
    let identities: Vec<&dyn Identity> = keys.iter().map(|i| i.as_ref()).collect();
    let keys = Keys::Rewrap {
        identities: &identities,
        recipients: &recipients,
        drop_bad_signatures: args.drop_bad_signatures,
    };
    run_batch(args, keys, None)
}

/// Batch mode with `keys`: opening (under `senders`, if given) or rotating.
fn run_batch(args: Args, keys: Keys<'_>, senders: Option<&Policy>) -> Result<(), Failure> {
    let command = batch::Command {
        program: "unseal",
        inputs: &args.input,
        shared: args.shared,
        flags: &args.batch,
        signer: None,
        senders,
    };
    batch::run(command, keys)
}

/// Keys were given but none matched: if the file (not standard input, which is gone) is
/// sealed with a passphrase, say so.
fn explain_passphrase_file(failure: Failure, input: &Path) -> Failure {
    let header = std::fs::File::open(input)
        .ok()
        .and_then(|file| Decryptor::new(BufReader::new(file)).ok());
    let passphrase = header.is_some_and(|d| {
        let stanzas = &d.header().stanzas;
        stanzas
            .iter()
            .any(|s| s.kind == crate::keys::scrypt::STANZA_KIND)
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
        let senders = senders.map(|s| &s.policy);
        return run_batch(args, Keys::Identities(identities), senders);
    }
    batch::check_single(&args.batch)?;
    let quiet = args.shared.quiet;
    let source = Source::from_arg(args.input.into_iter().next());
    let destination = Destination::new(
        args.shared.output,
        || match &source {
            Source::File(path) => default_output(path).map(Some),
            Source::Stdin => Ok(None),
        },
        (args.shared.force, "unseal", quiet),
        &source,
    )?;
    batch::check_remove_source(&args.batch, &source, &destination)?;
    let input_name = source.name();
    // The signature is found and looked up before the input is read: an unsigned or
    // unknown sender is refused before any decryption.
    let sender = match senders {
        Some(senders) => Some(senders.file(source.path(), input_name)?),
        None => None,
    };
    if matches!(destination, Destination::Stdout) {
        refuse_unchecked_stream(sender.as_ref())?;
    }
    let mut opened = source.open()?;
    let progress = opened.progress(quiet, input_name);
    let tick = |n| progress.add(n);
    let mut stdout = None;
    let terminal = io::stdout().is_terminal();
    let output = destination.output(&mut stdout, |out| Box::new(TextOnly::new(out, terminal)))?;
    let opening = file::Opening { identities, sender };
    let positioned = !args.shared.no_mmap;
    let input = opened.input();
    let result = in_pool(args.shared.threads, || {
        let opened = file::open(input, output, opening, positioned, &tick);
        opened.and_then(|(verdict, written)| written.commit().map(|()| verdict))
    })?;
    let verdict = file_outcome(result, input_name)?;
    drop(progress);
    if let (Some(senders), Some(verdict)) = (senders, &verdict) {
        senders.report(input_name, verdict);
    }
    match (&source, &destination, opened.meta()) {
        (Source::File(path), Destination::File(_), Some(meta)) => {
            // A checked signature goes with its file.
            batch::remove_single(&args.batch, (path, meta), senders.is_some())
        }
        _ => Ok(()),
    }
}

/// A stream to standard output is written as it decrypts, before its last byte is hashed:
/// with `--require-signature` it would release plaintext of a sender not yet checked.
fn refuse_unchecked_stream(
    sender: Option<&(FileCheck, Option<SealedHash>)>,
) -> Result<(), Failure> {
    match sender.is_some_and(|(check, _)| check.required()) {
        true => Err(Failure::usage(
            "--require-signature cannot hold back plaintext streamed to standard output",
        )
        .hint("write to a file with -o FILE (renamed into place once the signature checks out), or name a regular file as the input")),
        false => Ok(()),
    }
}

/// Standard output that takes text only when it is a terminal: the first bytes the engine
/// writes (authenticated plaintext) are checked before any is written.
struct TextOnly<W> {
    inner: W,
    check: bool,
}

impl<W> TextOnly<W> {
    fn new(inner: W, terminal: bool) -> TextOnly<W> {
        TextOnly {
            inner,
            check: terminal,
        }
    }
}

impl<W: Write> Write for TextOnly<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.check && !buf.is_empty() {
            if looks_binary(&buf[..buf.len().min(crate::format::stream::CHUNK_SIZE)]) {
                let failure = Failure::usage("refusing to write binary plaintext to a terminal")
                    .hint("use -o FILE, or redirect standard output");
                return Err(io::Error::other(Refusal(failure)));
            }
            self.check = false;
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
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
