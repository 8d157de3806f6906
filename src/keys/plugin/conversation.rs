//! One session with a plugin program: its two state machines (`recipient-v1` to wrap a file
//! key, `identity-v1` to unwrap one), over stanzas framed as in the age header.
//!
//! The plugin's output is read by a thread of its own, a line at a time and at most
//! [`MAX_LINE`] bytes a line, into a bounded channel; this side waits for each line at most
//! [`Client::timeout`]. A plugin that hangs, dies, floods, or answers out of turn ends the
//! session with an error, and is killed when the session is dropped.

use std::io::{self, BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use zeroize::{Zeroize, Zeroizing};

use super::{failure, Client, PluginError};
use crate::error::DecryptError;
use crate::format::{self, Stanza};
use crate::keys::recipient::{FileKey, FILE_KEY_SIZE};
use crate::shown;

/// The longest line a plugin may send (a stanza's first line, or a body line).
pub(super) const MAX_LINE: usize = 16 << 10;
/// The largest stanza body a plugin may send.
const MAX_BODY: usize = 1 << 20;
/// The most stanzas a plugin may send in one session, beyond [`STANZAS_PER_FILE`] a file:
/// its requests and messages.
const MAX_STANZAS: usize = 4096;
/// The stanzas a plugin may send for each file of a session: its file key or an error, and
/// a message or request about it.
const STANZAS_PER_FILE: usize = 4;

/// A running plugin.
pub(super) struct Conversation<'c> {
    name: &'c str,
    client: &'c Client,
    child: Child,
    stdin: Option<ChildStdin>,
    /// Lines as received: they may carry a file key or a secret, and are zeroized.
    lines: mpsc::Receiver<io::Result<Zeroizing<Vec<u8>>>>,
    received: usize,
    /// The most stanzas this session takes from the plugin.
    budget: usize,
}

impl<'c> Conversation<'c> {
    /// Starts `age-plugin-NAME --age-plugin=STATE_MACHINE` for a session about `files`
    /// files.
    fn start(
        client: &'c Client,
        name: &'c str,
        state_machine: &str,
        files: usize,
    ) -> Result<Self, PluginError> {
        let program = client.program(name)?;
        let mut child = Command::new(&program)
            .arg(format!("--age-plugin={state_machine}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| failure(name, format!("cannot start {}: {e}", program.display())))?;
        let stdout = child.stdout.take().expect("piped");
        let stdin = child.stdin.take();
        // Written without blocking, so that a plugin that stops reading cannot hold this
        // side past its timeout ([`write_within`]).
        if let Some(stdin) = &stdin {
            let flags = rustix::fs::OFlags::NONBLOCK;
            rustix::fs::fcntl_setfl(stdin, flags)
                .map_err(|e| failure(name, format!("cannot set up its input: {e}")))?;
        }
        let (send, lines) = mpsc::sync_channel(16);
        std::thread::spawn(move || read_lines(BufReader::new(stdout), &send));
        Ok(Conversation {
            name,
            client,
            child,
            stdin,
            lines,
            received: 0,
            budget: MAX_STANZAS + STANZAS_PER_FILE * files,
        })
    }

    fn error(&self, message: impl Into<String>) -> PluginError {
        failure(self.name, message)
    }

    /// Sends one stanza. Its body (a file key, a secret) is zeroized once written.
    fn send(&mut self, kind: &str, args: &[&str], body: &[u8]) -> Result<(), PluginError> {
        let mut stanza = Stanza {
            kind: kind.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            body: body.to_vec(),
        };
        let mut bytes = Zeroizing::new(Vec::new());
        format::write_stanza(&mut bytes, &stanza);
        stanza.body.zeroize();
        let stdin = self.stdin.as_ref().expect("open until the session ends");
        match write_within(stdin, &bytes, self.client.timeout) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(self.error(format!(
                "read nothing of its input for {} s: stopped",
                self.client.timeout.as_secs_f64()
            ))),
            Err(e) => Err(self.error(format!("stopped reading its input ({e})"))),
        }
    }

    /// The next stanza from the plugin.
    fn receive(&mut self) -> Result<Stanza, PluginError> {
        self.received += 1;
        if self.received > self.budget {
            let budget = self.budget;
            return Err(self.error(format!("sent more than {budget} stanzas")));
        }
        let first = self.line()?;
        if !first.starts_with(b"-> ") {
            return Err(self.error(format!(
                "sent {} where a stanza belongs",
                shown_line(&first)
            )));
        }
        let mut bytes = first;
        bytes.push(b'\n');
        loop {
            let line = self.line()?;
            let last = line.len() < 64;
            bytes.extend_from_slice(&line);
            bytes.push(b'\n');
            if last {
                break;
            }
            if bytes.len() > MAX_BODY * 4 / 3 + MAX_LINE {
                return Err(self.error("sent a stanza larger than 1 MiB"));
            }
        }
        format::parse_one_stanza(&bytes)
            .map_err(|e| self.error(format!("sent a malformed stanza: {e}")))
    }

    /// The next line, without its newline.
    fn line(&mut self) -> Result<Zeroizing<Vec<u8>>, PluginError> {
        match self.lines.recv_timeout(self.client.timeout) {
            Ok(Ok(line)) => Ok(line),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                let status = self.status();
                Err(self.error(format!("exited before the end of the protocol{status}")))
            }
            Ok(Err(e)) => Err(self.error(e.to_string())),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(self.error(format!(
                "sent nothing for {} s: stopped",
                self.client.timeout.as_secs_f64()
            ))),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(self.error("its output closed")),
        }
    }

    /// How the plugin exited, if it has: for the message about its early end.
    fn status(&mut self) -> String {
        std::thread::sleep(Duration::from_millis(10));
        match self.child.try_wait() {
            Ok(Some(status)) => format!(" ({status})"),
            _ => String::new(),
        }
    }

    /// Answers the requests the plugin may make in phase 2 (`msg`, `confirm`,
    /// `request-public`, `request-secret`): `Ok(true)` if `stanza` was one.
    fn answer_request(&mut self, stanza: &Stanza) -> Result<bool, PluginError> {
        let ui = &self.client.ui;
        let text = || String::from_utf8_lossy(&stanza.body).into_owned();
        match stanza.kind.as_str() {
            "msg" => {
                let shown = ui.message(self.name, &shown::escape(stanza.body.as_slice()));
                self.send(if shown { "ok" } else { "fail" }, &[], &[])?;
            }
            "confirm" => {
                let decode = |arg: &String| {
                    let bytes = STANDARD_NO_PAD.decode(arg).ok()?;
                    Some(shown::escape(bytes.as_slice()))
                };
                let yes = stanza.args.first().and_then(decode);
                let no = stanza.args.get(1).and_then(decode);
                let Some(yes) = yes else {
                    return Err(self.error("sent a confirm request without its options"));
                };
                let answer = ui.confirm(
                    self.name,
                    &shown::escape(text().as_bytes()),
                    &yes,
                    no.as_deref(),
                );
                match answer {
                    Some(true) => self.send("ok", &["yes"], &[])?,
                    Some(false) => self.send("ok", &["no"], &[])?,
                    None => self.send("fail", &[], &[])?,
                }
            }
            "request-public" => {
                match ui.request_public(self.name, &shown::escape(text().as_bytes())) {
                    Some(value) => self.send("ok", &[], value.as_bytes())?,
                    None => self.send("fail", &[], &[])?,
                }
            }
            "request-secret" => {
                match ui.request_secret(self.name, &shown::escape(text().as_bytes())) {
                    Some(secret) => self.send("ok", &[], secret.as_bytes())?,
                    None => self.send("fail", &[], &[])?,
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Phase 2, which the plugin leads, to its `done`: its requests answered, and every
    /// other stanza given to `handle`, which returns `Ok(false)` for one it does not know
    /// (answered `unsupported`, as the protocol asks).
    fn phase_two(
        &mut self,
        mut handle: impl FnMut(&mut Self, Stanza) -> Result<bool, PluginError>,
    ) -> Result<(), PluginError> {
        loop {
            let stanza = self.receive()?;
            if self.answer_request(&stanza)? {
                continue;
            }
            if stanza.kind == "done" {
                return Ok(());
            }
            if !handle(self, stanza)? {
                self.send("unsupported", &[], &[])?;
            }
        }
    }

    /// An `error` stanza from the plugin, acknowledged: as this session's error. A plugin
    /// that reports an error may leave without hearing the answer: then it is the error.
    fn acknowledge(&mut self, stanza: &Stanza) -> Result<PluginError, PluginError> {
        let which = stanza.args.join(" ");
        let text = shown::escape(stanza.body.as_slice());
        let error = self.error(format!("{text} ({})", shown::escape(which.as_bytes())));
        match self.send("ok", &[], &[]) {
            Ok(()) => Ok(error),
            Err(_) => Err(error),
        }
    }
}

impl Drop for Conversation<'_> {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // A plugin that finished has exited or is about to; one that did not is stopped.
        match self.child.try_wait() {
            Ok(Some(_)) => {}
            _ => {
                std::thread::sleep(Duration::from_millis(5));
                if !matches!(self.child.try_wait(), Ok(Some(_))) {
                    let _ = self.child.kill();
                }
                let _ = self.child.wait();
            }
        }
    }
}

/// Writes all of `bytes` to the plugin's input (non-blocking), waiting at most `timeout` each
/// time it is full: `TimedOut` if the plugin reads none of it meanwhile.
fn write_within(stdin: &ChildStdin, mut bytes: &[u8], timeout: Duration) -> io::Result<()> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    use rustix::io::Errno;
    while !bytes.is_empty() {
        match rustix::io::write(stdin, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                let wait = Timespec {
                    tv_sec: timeout.as_secs() as _,
                    tv_nsec: timeout.subsec_nanos() as _,
                };
                let mut fds = [PollFd::new(stdin, PollFlags::OUT)];
                match poll(&mut fds, Some(&wait)) {
                    Ok(0) => return Err(io::ErrorKind::TimedOut.into()),
                    Ok(_) | Err(Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads `reader` a line at a time into `send`, until it ends, fails, or a line is too long.
fn read_lines(mut reader: impl BufRead, send: &mpsc::SyncSender<io::Result<Zeroizing<Vec<u8>>>>) {
    loop {
        let mut line = Zeroizing::new(Vec::new());
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line);
        let result = match read {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) if line.last() == Some(&b'\n') => {
                line.pop();
                Ok(line)
            }
            Ok(_) if line.len() > MAX_LINE => Err(io::Error::other(format!(
                "sent a line longer than {MAX_LINE} bytes"
            ))),
            Ok(_) => Err(io::ErrorKind::UnexpectedEof.into()),
            Err(e) => Err(e),
        };
        let end = result.is_err();
        if send.send(result).is_err() || end {
            return;
        }
    }
}

fn shown_line(line: &[u8]) -> String {
    let cut = &line[..line.len().min(40)];
    format!("{:?}", shown::escape(cut))
}

/// Wraps `file_key` to the plugin recipient `recipient` (`recipient-v1`).
pub(super) fn wrap(
    client: &Client,
    name: &str,
    recipient: &str,
    file_key: &FileKey,
) -> Result<Vec<Stanza>, PluginError> {
    let mut plugin = Conversation::start(client, name, "recipient-v1", 1)?;
    plugin.send("add-recipient", &[recipient], &[])?;
    plugin.send("wrap-file-key", &[], file_key.expose_secret())?;
    plugin.send("done", &[], &[])?;
    let mut stanzas = Vec::new();
    let mut errors = Vec::new();
    plugin.phase_two(|plugin, stanza| {
        match stanza.kind.as_str() {
            "recipient-stanza" => {
                let (index, wrapped) = inner_stanza(plugin, stanza)?;
                if index != 0 {
                    return Err(plugin.error("sent a stanza for a file it was not given"));
                }
                stanzas.push(wrapped);
                plugin.send("ok", &[], &[])?;
            }
            "error" => errors.push(plugin.acknowledge(&stanza)?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if let Some(error) = errors.into_iter().next() {
        return Err(error);
    }
    match stanzas.len() {
        0 => Err(plugin.error("wrapped the file key to no stanza")),
        1 => Ok(stanzas),
        _ => Err(plugin.error("sent more stanzas than it was given recipients")),
    }
}

/// Unwraps the file keys of the headers `files` (each a header's stanzas) by the plugin
/// identity `identity`, in one session (`identity-v1`): for each file, its key, `None` if
/// the plugin finds none of its stanzas its own, or the error (a session that failed fails
/// every file).
pub(super) fn unwrap(
    client: &Client,
    name: &str,
    identity: &str,
    files: &[&[Stanza]],
) -> Vec<Result<Option<FileKey>, DecryptError>> {
    match unwrap_session(client, name, identity, files) {
        Ok(answers) => answers
            .into_iter()
            .map(|answer| answer.map_err(DecryptError::Plugin))
            .collect(),
        Err(e) => files
            .iter()
            .map(|_| Err(DecryptError::Plugin(e.clone())))
            .collect(),
    }
}

type Answer = Result<Option<FileKey>, PluginError>;

fn unwrap_session(
    client: &Client,
    name: &str,
    identity: &str,
    files: &[&[Stanza]],
) -> Result<Vec<Answer>, PluginError> {
    let mut plugin = Conversation::start(client, name, "identity-v1", files.len())?;
    plugin.send("add-identity", &[identity], &[])?;
    for (i, stanzas) in files.iter().enumerate() {
        let index = i.to_string();
        for stanza in stanzas.iter() {
            let mut args = vec![index.as_str(), stanza.kind.as_str()];
            args.extend(stanza.args.iter().map(String::as_str));
            plugin.send("recipient-stanza", &args, &stanza.body)?;
        }
    }
    plugin.send("done", &[], &[])?;
    let mut answers: Vec<Answer> = files.iter().map(|_| Ok(None)).collect();
    let mut general = None;
    plugin.phase_two(|plugin, stanza| {
        match stanza.kind.as_str() {
            "file-key" => {
                let mut stanza = stanza;
                let index = match stanza.args.as_slice() {
                    [index] => index.parse::<usize>().ok().filter(|&i| i < files.len()),
                    _ => None,
                };
                let Some(index) = index.filter(|&i| matches!(answers[i], Ok(None))) else {
                    return Err(
                        plugin.error("sent a file key for a file it was not given, or twice")
                    );
                };
                let key = FileKey::from_slice(&stanza.body).ok_or_else(|| {
                    plugin.error(format!(
                        "sent a file key of {} bytes, not {FILE_KEY_SIZE}",
                        stanza.body.len()
                    ))
                })?;
                stanza.body.zeroize();
                answers[index] = Ok(Some(key));
                plugin.send("ok", &[], &[])?;
            }
            "error" => {
                let error = plugin.acknowledge(&stanza)?;
                // `error stanza FILE STANZA` is that file's; any other, every file's.
                let file = match stanza.args.as_slice() {
                    [kind, file, _] if kind == "stanza" => file.parse::<usize>().ok(),
                    _ => None,
                };
                match file.filter(|&i| i < files.len()) {
                    Some(i) => answers[i] = Err(error),
                    None => {
                        general.get_or_insert(error);
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if let Some(error) = general {
        for answer in &mut answers {
            if matches!(answer, Ok(None)) {
                *answer = Err(error.clone());
            }
        }
    }
    Ok(answers)
}

/// The `FILE_INDEX STANZA...` of a `recipient-stanza` command.
fn inner_stanza(plugin: &Conversation<'_>, stanza: Stanza) -> Result<(usize, Stanza), PluginError> {
    let mut args = stanza.args.into_iter();
    let index = args.next().and_then(|i| i.parse().ok());
    let kind = args.next();
    match (index, kind) {
        (Some(index), Some(kind)) => Ok((
            index,
            Stanza {
                kind,
                args: args.collect(),
                body: stanza.body,
            },
        )),
        _ => Err(plugin.error("sent a recipient stanza without its file index and type")),
    }
}
