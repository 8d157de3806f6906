//! `unseal --watch INBOX -o OUTDIR`: the inbox as a service, until SIGTERM or SIGINT.
//!
//! The watcher itself is [`crate::watch`]; this is its command line: the flags, the default
//! state directory, the checks that keep the inbox, the output, the quarantine and the state
//! apart, and the audit log (one JSON object a line on standard output with `--json`,
//! otherwise one line a file on standard error).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use clap::Args;
use indicatif::HumanBytes;
use sha2::{Digest, Sha256};

use super::batch::{json_record, message};
use super::failure::{describe_io, ExitCode, Failure};
use super::interrupts::{self, Tracked};
use super::senders::{Senders, SignatureFlags};
use crate::batch::{Outcome, Summary};
use crate::file::Temporaries;
use crate::json::{self, json_path};
use crate::keys::recipient::Identity;
use crate::signing::sender::Policy;
use crate::watch::{self, Control, Listener, Record};

/// Where `unseal --help` lists them, with the flags of batch mode that they share.
pub const HEADING: &str = "Batch and watch mode (a directory, several inputs, or --watch)";

/// Flags of watch mode.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = HEADING)]
pub struct WatchFlags {
    /// Open each upload to INBOX as it arrives, into -o OUTDIR
    ///
    /// Runs until SIGTERM or SIGINT (exit 0); SIGHUP reads --allowed-signers again.
    /// INBOX/a/b.age becomes OUTDIR/a/b, once its writer closes it or it is renamed in. Each
    /// upload is opened once across restarts and crashes (doc/watch.md).
    #[arg(long, value_name = "INBOX")]
    pub watch: Option<PathBuf>,

    /// Move bad uploads to DIR, with a JSON note of why beside each
    ///
    /// On the inbox's file system, outside the inbox. Without it, a bad upload is left
    /// where it is and reported once.
    #[arg(long, value_name = "DIR", requires = "watch")]
    pub quarantine: Option<PathBuf>,

    /// Where the watcher keeps its journal
    ///
    /// Default: $STATE_DIRECTORY (systemd's StateDirectory=), else
    /// ~/.local/state/unseal/ with a name for this inbox and output directory. Watchers of
    /// one inbox must share it.
    #[arg(long, value_name = "DIR", requires = "watch")]
    pub state_dir: Option<PathBuf>,

    /// Scan every SECONDS instead of waiting for events (NFS)
    #[arg(long, value_name = "SECONDS", requires = "watch")]
    pub poll: Option<f64>,

    /// Wait until a file a scan finds is unchanged this long
    ///
    /// Files found at start-up, or by --poll, may still be being written: they are opened
    /// once unchanged for SECONDS (default 5). Files announced by an event are opened at once.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 5.0,
        hide_default_value = true,
        requires = "watch"
    )]
    pub settle: f64,
}

/// What the watcher needs from the rest of the command line.
pub struct Command<'a> {
    /// The inbox.
    pub inbox: &'a Path,
    /// The flags of watch mode.
    pub flags: &'a WatchFlags,
    /// `-o`, required.
    pub output: Option<&'a Path>,
    /// Positional inputs: none allowed.
    pub inputs: &'a [PathBuf],
    /// `--remove-source`.
    pub remove_source: bool,
    /// `--json`.
    pub json: bool,
    /// `--quiet`.
    pub quiet: bool,
    /// `--force`: refused, outputs are never replaced.
    pub force: bool,
    /// `--threads`.
    pub threads: usize,
    /// The sender policy, under `--allowed-signers`.
    pub senders: Option<&'a Policy>,
    /// The flags it came from, read again on SIGHUP.
    pub signature_flags: &'a SignatureFlags,
}

/// Runs the watcher until a signal; exit 0 once it has stopped cleanly.
pub fn run(command: Command<'_>, identities: &[&dyn Identity]) -> Result<(), Failure> {
    let options = options(&command)?;
    let (stop, reload) = interrupts::graceful();
    let control = Control::new();
    let audit = Audit {
        json: command.json,
        quiet: command.quiet,
        summary: Mutex::default(),
        lines: Mutex::default(),
    };
    if !command.quiet {
        say!(
            "unseal: watching {} into {} (state in {}); SIGTERM or Ctrl-C stops",
            crate::shown::path(&options.inbox),
            crate::shown::path(&options.output),
            crate::shown::path(&options.state),
        );
    }
    let finished = AtomicBool::new(false);
    let watched = std::thread::scope(|scope| {
        scope.spawn(|| {
            // Signals, as the watcher hears them.
            while !finished.load(Ordering::Acquire) {
                if stop.load(Ordering::Acquire) {
                    control.stop();
                }
                if reload.swap(false, Ordering::AcqRel) {
                    reread_senders(command.signature_flags, &control, command.quiet);
                }
                std::thread::sleep(SIGNAL_TICK);
            }
        });
        let watched = watch::watch(&options, identities, &audit, &control);
        finished.store(true, Ordering::Release);
        watched
    });
    watched.map_err(|e| Failure::new(ExitCode::Io, describe_io(&e.error)).about(&e.path))?;
    if !command.quiet {
        let s = *audit.summary.lock().unwrap_or_else(|e| e.into_inner());
        say!(
            "unseal: stopped; {} unsealed ({}), {} failed, {} left",
            s.done,
            HumanBytes(s.bytes),
            s.failed,
            s.skipped
        );
    }
    Ok(())
}

/// How often signals are looked at.
const SIGNAL_TICK: Duration = Duration::from_millis(50);

/// SIGHUP: the allowed signers read again, for the uploads taken from now on; a file that no
/// longer reads keeps the list in use.
fn reread_senders(flags: &SignatureFlags, control: &Control, quiet: bool) {
    if flags.allowed_signers.is_none() {
        return;
    }
    match Senders::from_flags(flags, quiet) {
        Ok(senders) => {
            let senders = senders.map(|s| s.policy);
            if !quiet {
                let keys = senders.as_ref().map_or(0, |p| p.allowed.len());
                say!("unseal: read the allowed signers again: {keys} keys");
            }
            control.set_senders(senders);
        }
        Err(failure) => say!(
            "unseal: warning: cannot read the allowed signers again, keeping the list in use: {}",
            crate::shown::line(&failure.message)
        ),
    }
}

/// The watcher's options from the command line, once the directories are known apart.
fn options(command: &Command<'_>) -> Result<watch::Options, Failure> {
    let usage = |text: &str| Failure::usage(text.to_string());
    if !command.inputs.is_empty() {
        return Err(usage("--watch takes no other inputs")
            .hint("unseal --watch INBOX -o OUTDIR --key server.key"));
    }
    if command.force {
        return Err(
            usage("--watch never replaces an output; --force is refused")
                .hint("an upload whose output exists is left and reported"),
        );
    }
    let Some(output) = command.output else {
        return Err(usage("--watch needs -o OUTDIR, where the plaintext goes"));
    };
    let meta = std::fs::metadata(command.inbox).map_err(|e| Failure::io(command.inbox, &e))?;
    if !meta.is_dir() {
        return Err(usage("not a directory").about(command.inbox));
    }
    std::fs::create_dir_all(output).map_err(|e| Failure::io(output, &e))?;
    let inbox = canonical(command.inbox)?;
    let out = canonical(output)?;
    let state = match &command.flags.state_dir {
        Some(dir) => absolute(dir)?,
        None => default_state(&inbox, &out)?,
    };
    let quarantine = match &command.flags.quarantine {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Failure::io(dir, &e))?;
            Some(canonical(dir)?)
        }
        None => None,
    };
    let apart = |a: &Path, an: &str, b: &Path, bn: &str| match a.starts_with(b) || b.starts_with(a)
    {
        true => Err(usage(&format!(
            "the {an} and the {bn} must not lie one in the other"
        ))
        .about(a)),
        false => Ok(()),
    };
    apart(&out, "output directory", &inbox, "inbox")?;
    apart(&state, "state directory", &inbox, "inbox")?;
    apart(&state, "state directory", &out, "output directory")?;
    if let Some(q) = &quarantine {
        apart(q, "quarantine", &inbox, "inbox")?;
        apart(q, "quarantine", &out, "output directory")?;
    }
    let seconds = |s: f64, flag: &str| match s.is_finite() && (0.0..=86_400.0).contains(&s) {
        true => Ok(Duration::from_secs_f64(s)),
        false => Err(usage(&format!("{flag} takes seconds, from 0 to 86400"))),
    };
    let poll = match command.flags.poll {
        Some(s) => Some(seconds(s, "--poll")?.max(Duration::from_millis(10))),
        None => None,
    };
    Ok(watch::Options {
        quarantine,
        remove_source: command.remove_source,
        senders: command.senders.cloned(),
        poll,
        settle: seconds(command.flags.settle, "--settle")?,
        // The SHA-256 of each plaintext is for the JSON audit log only.
        digest: command.json,
        threads: command.threads,
        ..watch::Options::new(inbox, out, state)
    })
}

fn canonical(path: &Path) -> Result<PathBuf, Failure> {
    std::fs::canonicalize(path).map_err(|e| Failure::io(path, &e))
}

fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(path).map_err(|e| Failure::io(path, &e))
}

/// `$STATE_DIRECTORY` (systemd; the first, if it names several), else
/// `$XDG_STATE_HOME/unseal/watch-HASH` or `~/.local/state/unseal/watch-HASH`, the hash of the
/// inbox and output paths: watchers of the same inbox into the same place share it.
fn default_state(inbox: &Path, output: &Path) -> Result<PathBuf, Failure> {
    if let Some(dirs) = std::env::var_os("STATE_DIRECTORY") {
        let first = dirs.to_string_lossy().split(':').next().map(PathBuf::from);
        if let Some(first) = first.filter(|p| p.is_absolute()) {
            return Ok(first);
        }
    }
    let base = match (std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME")) {
        (Some(state), _) if Path::new(&state).is_absolute() => PathBuf::from(state),
        (_, Some(home)) => Path::new(&home).join(".local/state"),
        _ => {
            return Err(
                Failure::usage("no place for the watcher's journal").hint("use --state-dir DIR")
            )
        }
    };
    let mut hash = Sha256::new();
    hash.update(inbox.as_os_str().as_encoded_bytes());
    hash.update([0]);
    hash.update(output.as_os_str().as_encoded_bytes());
    let digest = hash.finalize();
    let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok(base.join("unseal").join(format!("watch-{name}")))
}

/// The audit log.
struct Audit {
    json: bool,
    quiet: bool,
    summary: Mutex<Summary>,
    /// JSON lines of the group being settled.
    lines: Mutex<String>,
}

impl Listener for Audit {
    fn record(&self, record: &Record<'_>) {
        let report = record.report;
        self.summary
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(report);
        if self.json {
            let line = json_record(report, "unsealed", |line| {
                line.push_str(",\"time\":");
                json::json_string(line, &json::time(record.time));
                json_path(line, "quarantined", record.quarantined);
                line.push_str(&format!(
                    ",\"recovered\":{},\"duration_ms\":{:.3}",
                    record.recovered,
                    record.duration.as_secs_f64() * 1e3
                ));
            });
            // Written out with the rest of its group ([`Listener::flush`]).
            self.lines
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_str(&line);
            return;
        }
        let path = crate::shown::path(&report.source);
        match &report.outcome {
            Outcome::Done if !self.quiet => {
                let output = report.output.as_deref().map(crate::shown::path);
                let recovered = match record.recovered {
                    true => " (by an earlier run)",
                    false => "",
                };
                say!(
                    "unseal: {path} -> {}, {}{recovered}",
                    output.unwrap_or_default(),
                    HumanBytes(report.bytes)
                );
            }
            Outcome::Done => {}
            Outcome::Skipped(skip) => say!("unseal: left {path}: {skip}"),
            Outcome::Failed(error) => match record.quarantined {
                Some(q) => say!(
                    "unseal: error: {path}: {}; moved to {}",
                    message(error),
                    crate::shown::path(q)
                ),
                None => say!(
                    "unseal: error: {path}: {}; left in the inbox",
                    message(error)
                ),
            },
        }
    }

    fn removed_partial(&self, path: &Path) {
        if !self.quiet {
            let path = crate::shown::path(path);
            say!("unseal: removed {path}, left by an interrupted run");
        }
    }

    fn trouble(&self, what: &str) {
        say!("unseal: warning: {}", crate::shown::value(what));
    }

    fn flush(&self) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        // A reader that went away loses the lines, not the uploads.
        let _ = io::stdout().lock().write_all(lines.as_bytes());
        lines.clear();
    }
}

impl Temporaries for Audit {
    fn partial_creating(&self, create: &mut dyn FnMut() -> Option<PathBuf>) {
        Tracked.partial_creating(create);
    }

    fn partial_finishing(&self, path: &Path, finish: &mut dyn FnMut()) {
        Tracked.partial_finishing(path, finish);
    }
}
