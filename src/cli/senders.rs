//! `unseal --allowed-signers`: who sent each file, and whether that is enough to open it.
//!
//! The checks are [`crate::signing::sender`]'s; this module turns the flags into a policy, finds each
//! file's signature, and says what it found: `FILE: signed by alice (ssh-ed25519 SHA256:...)`
//! or `FILE: not signed` on standard error (not with `--quiet`), a warning for a signature
//! that is not accepted, and with `--require-signature` a refusal, exit code 8.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::Args;

use super::failure::{ExitCode, Failure};
use crate::signing::allowed_signers::AllowedSigners;
use crate::signing::sender::SealedHash;
use crate::signing::sender::{self, Policy, Rejection, Sender, Verdict};

/// The sender-signature flags of `unseal`.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = "Sender signatures")]
pub struct SignatureFlags {
    /// Check each file's signature against these client keys
    ///
    /// The signature is FILE.age.sig, as `seal --sign-with` writes it; the list is in the
    /// allowed signers format of OpenSSH. Each file's signer is reported.
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,

    /// Open only files whose signature is accepted
    ///
    /// A file that is unsigned, signed by a key the list does not accept (now, for namespace
    /// "seal"), or whose signature is bad is refused: exit code 8, and no plaintext is left.
    #[arg(long, requires = "allowed_signers")]
    pub require_signature: bool,

    /// The input's signature (default: INPUT.sig)
    ///
    /// For the one input, instead of INPUT.sig beside it; needed to check standard input.
    #[arg(long, value_name = "FILE", requires = "allowed_signers")]
    pub signature: Option<PathBuf>,
}

/// The sender check of a run of `unseal`.
pub struct Senders {
    /// Whom to accept.
    pub policy: Policy,
    signature: Option<PathBuf>,
    quiet: bool,
}

impl Senders {
    /// The check the flags ask for; `None` without `--allowed-signers`.
    pub fn from_flags(flags: &SignatureFlags, quiet: bool) -> Result<Option<Senders>, Failure> {
        let Some(path) = &flags.allowed_signers else {
            return Ok(None);
        };
        let text = std::fs::read(path).map_err(|e| Failure::io(path, &e))?;
        let text =
            String::from_utf8(text).map_err(|_| Failure::usage("not a text file").about(path))?;
        let allowed =
            AllowedSigners::parse(&text).map_err(|e| Failure::usage(e.to_string()).about(path))?;
        let policy = Policy {
            allowed,
            require: flags.require_signature,
            now: SystemTime::now(),
        };
        Ok(Some(Senders {
            policy,
            signature: flags.signature.clone(),
            quiet,
        }))
    }

    /// `--signature` with several inputs is ambiguous: refused.
    pub fn check_single(&self, single: bool) -> Result<(), Failure> {
        match self.signature.is_some() && !single {
            true => Err(
                Failure::usage("--signature names the signature of one input")
                    .hint("in batch mode each FILE.age is checked against FILE.age.sig beside it"),
            ),
            false => Ok(()),
        }
    }

    /// Starts the check of one input (`None`: standard input), named `name` in messages,
    /// before it is read: its signature is found, parsed and looked up in the list. Also
    /// returns the hasher to feed every byte of the input to, if there is a signature.
    pub fn file(
        &self,
        input: Option<&Path>,
        name: &Path,
    ) -> Result<(sender::FileCheck, Option<SealedHash>), Failure> {
        let path = match (&self.signature, input) {
            (Some(path), _) => Some(path.clone()),
            (None, Some(input)) => Some(sender::signature_path(input)),
            (None, None) => None,
        };
        let text = match &path {
            Some(path) => sender::read_signature(path).map_err(|e| Failure::io(path, &e))?,
            None => None,
        };
        let record = match (input, &text) {
            (Some(input), Some(_)) => {
                let path = crate::rotate::record_path(input);
                sender::read_record(&path).map_err(|e| Failure::io(&path, &e))?
            }
            _ => None,
        };
        let looked_at = path.map_or("--signature FILE".into(), |p| crate::shown::path(&p));
        self.policy
            .check_file(text.as_deref(), &looked_at, record.as_deref())
            .map_err(|r| refusal(&r).about(name))
    }

    pub fn report(&self, name: &Path, verdict: &Verdict) {
        if let Some(line) = report_line(name, verdict, self.quiet) {
            say!("unseal: {line}");
        }
    }
}

/// The refusal of a file under `--require-signature`.
pub fn refusal(rejection: &Rejection) -> Failure {
    Failure::new(
        ExitCode::Signature,
        format!("signature refused: {rejection}"),
    )
}

/// The line [`describe`] gives, unless `quiet` silences it: a signature not accepted is
/// always reported.
pub fn report_line(name: &Path, verdict: &Verdict, quiet: bool) -> Option<String> {
    let shown = !quiet || matches!(verdict, Verdict::Rejected(_));
    shown.then(|| describe(name, verdict))
}

/// One line about a file's sender: `FILE: signed by alice (ssh-ed25519 SHA256:...)`,
/// `FILE: not signed`, `warning: FILE: signature not accepted: WHY`.
pub fn describe(name: &Path, verdict: &Verdict) -> String {
    let name = crate::shown::path(name);
    match verdict {
        Verdict::Signed(sender) => format!("{name}: signed by {}", signer(sender)),
        Verdict::Unsigned => format!("{name}: not signed"),
        Verdict::Rejected(why) => format!("warning: {name}: signature not accepted: {why}"),
    }
}

/// `alice,alice@example (ssh-ed25519 SHA256:...)`, the principals escaped.
pub fn signer(sender: &Sender) -> String {
    let principals: Vec<String> = sender
        .principals
        .iter()
        .map(|p| crate::shown::escape(p.as_bytes()))
        .collect();
    format!(
        "{} ({} {})",
        principals.join(","),
        sender.key.algorithm(),
        sender.key.fingerprint()
    )
}
