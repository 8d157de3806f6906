//! End-to-end tests of the `seal`, `unseal` and `seal-keygen` binaries.
//!
//! Every test works in its own temporary directory ([`Dir`]) and runs the built binaries in
//! it through [`Cmd`], in the style of ripgrep's integration tests. A failure is checked for
//! its documented exit code, a single `program: error: ...` line naming the file, and a
//! directory left exactly as it was: no output file, no `.seal-partial` temporary file.
//!
//! The interop tests need the Go `age` CLI on `PATH`, and fail loudly without it.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

// Only the pseudo-random data of the shared harness: this suite keeps its own `Dir` and `Cmd`.
mod common;
use common::data;

// The documented exit codes (src/cli/failure.rs).
const EXIT_IO: i32 = 1;
const EXIT_USAGE: i32 = 2;
const EXIT_NO_MATCH: i32 = 3;
const EXIT_HEADER: i32 = 4;
const EXIT_HEADER_MAC: i32 = 5;
const EXIT_PAYLOAD: i32 = 6;
const EXIT_INTERRUPTED: i32 = 130;

// The age v1 payload layout.
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const SEALED_CHUNK: usize = CHUNK + TAG;
const NONCE: usize = 16;

/// Sizes around every chunk edge, up to more than one parallel group (16 chunks).
const SIZES: &[usize] = &[
    0,
    1,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    2 * CHUNK,
    2 * CHUNK + 500,
    (1 << 20) + 3,
];

// ---------------------------------------------------------------------------------------------
// Harness: a temporary directory, commands run in it, and what they did.

/// The path of one of this crate's binaries.
fn bin(program: &str) -> &'static str {
    match program {
        "seal" => env!("CARGO_BIN_EXE_seal"),
        "unseal" => env!("CARGO_BIN_EXE_unseal"),
        "seal-keygen" => env!("CARGO_BIN_EXE_seal-keygen"),
        _ => panic!("no binary {program}"),
    }
}

/// A temporary directory that commands run in; files are named relative to it.
struct Dir(TempDir);

impl Dir {
    fn new() -> Dir {
        let dir = tempfile::Builder::new().prefix("seal-cli-test.").tempdir();
        Dir(dir.expect("create a temporary directory"))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) {
        fs::write(self.path(name), contents).unwrap_or_else(|e| panic!("write {name}: {e}"));
    }

    /// Writes a file readable by its owner only, as key files should be.
    fn write_private(&self, name: &str, contents: impl AsRef<[u8]>) {
        self.write(name, contents);
        self.chmod(name, 0o600);
    }

    fn chmod(&self, name: &str, mode: u32) {
        fs::set_permissions(self.path(name), fs::Permissions::from_mode(mode)).unwrap();
    }

    fn mode(&self, name: &str) -> u32 {
        fs::metadata(self.path(name)).unwrap().permissions().mode() & 0o777
    }

    fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    fn read_string(&self, name: &str) -> String {
        String::from_utf8(self.read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn remove(&self, name: &str) {
        fs::remove_file(self.path(name)).unwrap_or_else(|e| panic!("remove {name}: {e}"));
    }

    /// The paths of every file and directory in the directory, hidden (temporary) files and
    /// the contents of subdirectories included.
    fn listing(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let mut dirs = vec![String::new()];
        while let Some(dir) = dirs.pop() {
            for entry in fs::read_dir(self.0.path().join(&dir)).unwrap() {
                let entry = entry.unwrap();
                let name = entry.file_name().into_string().unwrap();
                let path = if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                };
                if entry.file_type().unwrap().is_dir() {
                    dirs.push(path.clone());
                }
                names.insert(path);
            }
        }
        names
    }

    /// Any program, run in this directory.
    fn cmd(&self, program: impl AsRef<OsStr>) -> Cmd {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.0.path());
        Cmd { cmd, stdin: None }
    }

    /// One of this crate's binaries (`seal`, `unseal`, `seal-keygen`).
    fn bin(&self, program: &str) -> Cmd {
        self.cmd(bin(program))
    }

    /// A command line of one of this crate's binaries, split at whitespace.
    fn line(&self, line: &str) -> Cmd {
        let mut words = line.split_whitespace();
        self.bin(words.next().expect("a program")).args(words)
    }

    /// Makes `NAME.key` and `NAME.pub` with `seal-keygen`; returns the `age1...` recipient.
    fn new_key(&self, name: &str) -> String {
        let private = format!("{name}.key");
        self.bin("seal-keygen").args(["-o", &private]).run().ok();
        self.read_string(&format!("{name}.pub"))
            .trim_end()
            .to_string()
    }
}

/// `names` as a directory listing.
fn listing(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| name.to_string()).collect()
}

/// A command to run, with optional standard input (otherwise `/dev/null`).
struct Cmd {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.cmd.arg(arg);
        self
    }

    fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Cmd {
        self.cmd.args(args);
        self
    }

    fn stdin(mut self, input: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(input.into());
        self
    }

    fn run(mut self) -> Run {
        let what = format!("{:?}", self.cmd);
        let stdin = match self.stdin {
            Some(_) => Stdio::piped(),
            None => Stdio::null(),
        };
        let mut child = self
            .cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        // Feed stdin from a thread, so a large input cannot deadlock against a full stdout
        // pipe. A command that fails early closes its stdin: that write error is expected.
        let feeder = child.stdin.take().zip(self.stdin).map(|(mut pipe, input)| {
            std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            })
        });
        let output = child.wait_with_output().unwrap();
        if let Some(feeder) = feeder {
            feeder.join().unwrap();
        }
        let code = output.status.code();
        Run {
            code: code.unwrap_or_else(|| panic!("{what} was killed: {:?}", output.status)),
            stdout: output.stdout,
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
            what,
        }
    }
}

/// A finished command.
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
    what: String,
}

impl Run {
    /// Asserts success.
    fn ok(self) -> Run {
        self.fails(0)
    }

    /// Asserts exit code `code`.
    fn fails(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "{} exited {} instead of {code}; stderr:\n{}",
            self.what, self.code, self.stderr
        );
        self
    }

    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    fn stdout_string(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    /// Asserts that stderr is exactly one `program: error: ...` line containing each of
    /// `needles`, then, if `hint` is given, one `program: hint: ...` line containing it.
    fn says(self, program: &str, needles: &[&str], hint: Option<&str>) -> Run {
        let lines = self.stderr_lines();
        let expected = 1 + usize::from(hint.is_some());
        let what = &self.what;
        assert_eq!(lines.len(), expected, "{what}: stderr:\n{}", self.stderr);
        let error = lines[0];
        let prefix = format!("{program}: error: ");
        assert!(error.starts_with(&prefix), "{what}: {error:?}");
        assert!(
            !error.ends_with('.'),
            "{what}: messages end without a period"
        );
        for needle in needles {
            assert!(error.contains(needle), "{what}: no {needle:?} in {error:?}");
        }
        if let Some(hint) = hint {
            let line = lines[1];
            let prefix = format!("{program}: hint: ");
            assert!(line.starts_with(&prefix), "{what}: not a hint: {line:?}");
            assert!(line.contains(hint), "{what}: no {hint:?} in {line:?}");
        }
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Data, and where things are in a sealed file.

/// Offsets in a sealed file, as `seal` writes it (one-line stanza bodies).
struct Layout {
    /// The share argument of each `-> X25519 ` stanza.
    shares: Vec<usize>,
    /// The body line of each stanza.
    bodies: Vec<usize>,
    /// The base64 MAC on the `--- ` line.
    mac: usize,
    /// Length of the header, its final newline included.
    header_len: usize,
}

impl Layout {
    fn of(sealed: &[u8]) -> Layout {
        let (mut shares, mut bodies) = (Vec::new(), Vec::new());
        let mut offset = 0;
        for line in sealed.split_inclusive(|&b| b == b'\n') {
            if shares.len() > bodies.len() {
                bodies.push(offset);
            } else if line.starts_with(b"-> X25519 ") {
                shares.push(offset + "-> X25519 ".len());
            } else if line.starts_with(b"--- ") {
                let (mac, header_len) = (offset + "--- ".len(), offset + line.len());
                return Layout {
                    shares,
                    bodies,
                    mac,
                    header_len,
                };
            }
            offset += line.len();
        }
        panic!("no MAC line in the sealed file");
    }

    /// Offset of chunk `index` (the payload nonce comes first).
    fn chunk(&self, index: usize) -> usize {
        self.header_len + NONCE + index * SEALED_CHUNK
    }
}

/// Size of the age file that seals `len` bytes under a header of `header_len` bytes.
fn sealed_len(header_len: usize, len: usize) -> usize {
    header_len + NONCE + len + len.div_ceil(CHUNK).max(1) * TAG
}

const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A copy of `bytes` with the byte at `at` replaced by `f` of it (which must differ).
fn altered(bytes: &[u8], at: usize, f: impl FnOnce(u8) -> u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] = f(out[at]);
    assert_ne!(out[at], bytes[at], "the alteration must change the byte");
    out
}

/// Flips the low bit of the byte at `at`.
fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
    altered(bytes, at, |b| b ^ 1)
}

/// Applies `f` to the index of the base64 character at `at`.
fn base64_altered(bytes: &[u8], at: usize, f: impl FnOnce(usize) -> usize) -> Vec<u8> {
    altered(bytes, at, |c| {
        let index = BASE64
            .iter()
            .position(|&b| b == c)
            .expect("a base64 character");
        BASE64[f(index)]
    })
}

/// Swaps a base64 character that carries six data bits for another: still canonical base64,
/// but other bytes.
fn other_base64(bytes: &[u8], at: usize) -> Vec<u8> {
    base64_altered(bytes, at, |i| i ^ 0b10_0000)
}

/// Sets a padding bit in the last character of a 32-byte value (43 characters, the last of
/// which carries four data bits and two zero bits): the base64 is no longer canonical.
fn noncanonical_base64(bytes: &[u8], at: usize) -> Vec<u8> {
    base64_altered(bytes, at, |i| i | 1)
}

fn truncated(bytes: &[u8], len: usize) -> Vec<u8> {
    bytes[..len].to_vec()
}

fn appended(bytes: &[u8], tail: &[u8]) -> Vec<u8> {
    [bytes, tail].concat()
}

// ---------------------------------------------------------------------------------------------
// Sealing and unsealing by way of files, default names and pipes.

/// How a command gets its input and where its output goes.
#[derive(Clone, Copy, Debug)]
enum Io {
    /// `seal FILE` writes `FILE.age`; `unseal FILE.age` writes `FILE`.
    DefaultNames,
    /// `-o OUTPUT`.
    OutputFlag,
    /// No file argument: standard input to standard output.
    Pipes,
    /// `-` as the input and `-o -` as the output.
    Dashes,
}

/// Runs `program` (seal or unseal) on `input` by way of `io`, with `args`; returns its
/// output. The directory is left as it was found: the output file is read and removed after
/// checking that it and the input are all the command left there.
fn transform(dir: &Dir, program: &str, io: Io, input: &[u8], args: &[&str]) -> Vec<u8> {
    let before = dir.listing();
    let (input_name, output_name) = match (program, io) {
        ("seal", Io::DefaultNames) => ("input", "input.age"),
        ("seal", _) => ("input", "output.age"),
        (_, Io::DefaultNames) => ("input.age", "input"),
        _ => ("input.age", "output"),
    };
    let cmd = dir.bin(program).args(args);
    let cmd = match io {
        Io::DefaultNames => cmd.arg(input_name),
        Io::OutputFlag => cmd.args([input_name, "-o", output_name]),
        Io::Pipes => cmd.stdin(input),
        Io::Dashes => cmd.args(["-", "-o", "-"]).stdin(input),
    };
    let to_files = matches!(io, Io::DefaultNames | Io::OutputFlag);
    if to_files {
        dir.write(input_name, input);
    }
    let run = cmd.run().ok();
    assert_eq!(run.stderr, "", "{}: stderr", run.what);
    if !to_files {
        assert_eq!(dir.listing(), before, "{}: files left behind", run.what);
        return run.stdout;
    }
    let mut expected = before;
    expected.extend([input_name.to_string(), output_name.to_string()]);
    assert_eq!(dir.listing(), expected, "{}: files left behind", run.what);
    assert!(run.stdout.is_empty(), "{}: wrote to stdout", run.what);
    let output = dir.read(output_name);
    dir.remove(input_name);
    dir.remove(output_name);
    output
}

/// Seals `plaintext`, and checks the sealed file's start and size.
fn seal_via(dir: &Dir, io: Io, plaintext: &[u8], args: &[&str]) -> Vec<u8> {
    let sealed = transform(dir, "seal", io, plaintext, args);
    assert!(sealed.starts_with(b"age-encryption.org/v1\n-> X25519 "));
    let header_len = Layout::of(&sealed).header_len;
    let len = plaintext.len();
    assert_eq!(
        sealed.len(),
        sealed_len(header_len, len),
        "sealed {len} bytes"
    );
    sealed
}

fn unseal_via(dir: &Dir, io: Io, sealed: &[u8], args: &[&str]) -> Vec<u8> {
    transform(dir, "unseal", io, sealed, args)
}

/// Seals and unseals every size in [`SIZES`] by way of `io`, with extra flags for each side.
fn check_round_trips(io: Io, seal_flags: &[&str], unseal_flags: &[&str]) {
    let dir = Dir::new();
    dir.new_key("server");
    let to = [&["--to", "server.pub"], seal_flags].concat();
    let key = [&["--key", "server.key"], unseal_flags].concat();
    for (seed, &len) in SIZES.iter().enumerate() {
        let plaintext = data(len, seed as u64);
        let sealed = seal_via(&dir, io, &plaintext, &to);
        let opened = unseal_via(&dir, io, &sealed, &key);
        let how = format!("{io:?} {seal_flags:?} / {unseal_flags:?}");
        assert!(opened == plaintext, "{how}: {len} bytes did not round-trip");
    }
}

// ---------------------------------------------------------------------------------------------
// Refusals: exit code, one message naming the input, nothing left behind.

/// How `unseal` reads the file it must refuse.
#[derive(Clone, Copy, Debug)]
enum Read {
    /// A file argument, memory-mapped, opened on every core; default output name.
    Mapped,
    /// A file argument with `--no-mmap` (the streaming path); default output name.
    Streamed,
    /// Standard input, with `-o`.
    Stdin,
}

const READS: &[Read] = &[Read::Mapped, Read::Streamed, Read::Stdin];

/// Runs `unseal` with `keys` on each file of `cases` (named by what was done to it), read
/// each way in `reads`, and checks that it exits `code` with one error line that names the
/// input and contains `needle`, leaving the directory as it was.
fn check_refused(
    dir: &Dir,
    keys: &[&str],
    reads: &[Read],
    (code, needle): (i32, &str),
    cases: &[(&str, Vec<u8>)],
) {
    for (what, file) in cases {
        for &read in reads {
            dir.write("input.age", file);
            let before = dir.listing();
            let cmd = dir.bin("unseal").args(keys);
            let (cmd, name) = match read {
                Read::Mapped => (cmd.arg("input.age"), "input.age"),
                Read::Streamed => (cmd.args(["input.age", "--no-mmap"]), "input.age"),
                Read::Stdin => (
                    cmd.args(["-o", "output"]).stdin(file.clone()),
                    "standard input",
                ),
            };
            let run = cmd.run();
            let (got, stderr) = (run.code, &run.stderr);
            assert!(
                got == code,
                "{what} ({read:?}): exit {got}, not {code}; {stderr}"
            );
            run.says("unseal", &[&format!("error: {name}: "), needle], None);
            assert_eq!(
                dir.listing(),
                before,
                "{what} ({read:?}): files left behind"
            );
            dir.remove("input.age");
        }
    }
}

/// Seals `plaintext` to `server.pub` with `-o`.
fn seal_to_server(dir: &Dir, plaintext: &[u8]) -> Vec<u8> {
    seal_via(dir, Io::OutputFlag, plaintext, &["--to", "server.pub"])
}

/// A directory with a `server` key, and three chunks (two full, one of 500 bytes) sealed to
/// it, with their layout.
fn three_chunk_file() -> (Dir, Vec<u8>, Layout) {
    let dir = Dir::new();
    dir.new_key("server");
    let plaintext = data(2 * CHUNK + 500, 7);
    let sealed = seal_to_server(&dir, &plaintext);
    let layout = Layout::of(&sealed);
    (dir, sealed, layout)
}

const WITH_KEY: &[&str] = &["--key", "server.key"];

// ---------------------------------------------------------------------------------------------
// seal-keygen

#[test]
fn keygen_writes_a_0600_private_key_and_the_public_key_beside_it() {
    let dir = Dir::new();
    let run = dir.bin("seal-keygen").args(["-o", "server.key"]).run().ok();
    assert_eq!(dir.listing(), listing(&["server.key", "server.pub"]));
    assert_eq!(dir.mode("server.key"), 0o600);

    let text = dir.read_string("server.key");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() == 3 && text.ends_with('\n'),
        "server.key:\n{text}"
    );
    let created = lines[0].strip_prefix("# created: ").expect("# created:");
    let rfc3339 = created.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b'T',
        13 | 16 => b == b':',
        19 => b == b'Z',
        _ => b.is_ascii_digit(),
    });
    assert!(
        rfc3339 && created.len() == 20,
        "not an RFC 3339 UTC time: {created}"
    );
    let public = lines[1]
        .strip_prefix("# public key: ")
        .expect("# public key:");
    assert!(public.starts_with("age1") && public.len() == 62, "{public}");
    assert!(lines[2].starts_with("AGE-SECRET-KEY-1") && lines[2].len() == 74);

    assert_eq!(dir.read_string("server.pub"), format!("{public}\n"));
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains(&format!("Public key: {public}")));
}

#[test]
fn keygen_names_the_public_file_after_any_output_name() {
    let dir = Dir::new();
    dir.bin("seal-keygen").args(["-o", "id"]).run().ok();
    dir.bin("seal-keygen").args(["-o", "a.txt"]).run().ok();
    let expected = listing(&["a.txt", "a.txt.pub", "id", "id.pub"]);
    assert_eq!(dir.listing(), expected);
}

#[test]
fn keygen_never_overwrites_a_key_or_its_public_file() {
    for existing in ["server.key", "server.pub"] {
        let dir = Dir::new();
        dir.write(existing, "precious\n");
        dir.bin("seal-keygen")
            .args(["-o", "server.key"])
            .run()
            .fails(EXIT_IO)
            .says(
                "seal-keygen",
                &[&format!("{existing}: already exists")],
                None,
            );
        assert_eq!(dir.read_string(existing), "precious\n");
        assert_eq!(dir.listing(), listing(&[existing]), "a file was written");
    }
}

#[test]
fn keygen_y_prints_the_public_key_of_a_key_file_or_of_stdin() {
    let dir = Dir::new();
    let recipient = dir.new_key("server");
    let from_file = dir.bin("seal-keygen").args(["-y", "server.key"]).run().ok();
    assert_eq!(from_file.stdout_string(), format!("{recipient}\n"));
    let key = dir.read("server.key");
    let from_stdin = dir
        .bin("seal-keygen")
        .args(["-y", "-"])
        .stdin(key)
        .run()
        .ok();
    assert_eq!(from_stdin.stdout_string(), format!("{recipient}\n"));
}

#[test]
fn keygen_y_refuses_a_public_key_file() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.bin("seal-keygen")
        .args(["-y", "server.pub"])
        .run()
        .fails(EXIT_USAGE)
        .says(
            "seal-keygen",
            &["server.pub: line 1: not a valid identity"],
            None,
        );
}

#[test]
fn keygen_without_o_prints_a_working_key_to_stdout() {
    let dir = Dir::new();
    let run = dir.bin("seal-keygen").run().ok();
    assert_eq!(dir.listing(), listing(&[]), "no files without -o");
    let text = run.stdout_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() == 3 && lines[0].starts_with("# created: "),
        "{text}"
    );
    assert!(lines[2].starts_with("AGE-SECRET-KEY-1"), "{text}");
    let public = lines[1]
        .strip_prefix("# public key: ")
        .expect("# public key:");
    assert_eq!(run.stderr, format!("Public key: {public}\n"));

    dir.write_private("printed.key", &text);
    let plaintext = data(1000, 1);
    let sealed = seal_via(&dir, Io::Pipes, &plaintext, &["-r", public]);
    let opened = unseal_via(&dir, Io::Pipes, &sealed, &["--key", "printed.key"]);
    assert_eq!(opened, plaintext);
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn round_trip_with_default_output_names() {
    check_round_trips(Io::DefaultNames, &[], &[]);
}

#[test]
fn round_trip_with_output_flag() {
    check_round_trips(Io::OutputFlag, &[], &[]);
}

#[test]
fn round_trip_through_stdin_and_stdout() {
    check_round_trips(Io::Pipes, &[], &[]);
}

#[test]
fn round_trip_through_dash_arguments() {
    check_round_trips(Io::Dashes, &[], &[]);
}

#[test]
fn round_trip_with_one_thread() {
    check_round_trips(Io::OutputFlag, &["--threads", "1"], &["--threads", "1"]);
}

#[test]
fn round_trip_with_three_threads() {
    check_round_trips(Io::OutputFlag, &["--threads", "3"], &["--threads", "3"]);
}

#[test]
fn round_trip_without_mmap() {
    check_round_trips(Io::DefaultNames, &["--no-mmap"], &["--no-mmap"]);
}

#[test]
fn the_streaming_and_mapped_paths_read_each_other() {
    check_round_trips(Io::OutputFlag, &["--no-mmap"], &["--threads", "3"]);
    check_round_trips(Io::OutputFlag, &["--threads", "3"], &["--no-mmap"]);
}

/// A mapped file to standard output goes a 4 MiB window (64 chunks) at a time: a corrupt chunk
/// in the third window stops it after exactly the first two, and exits 6; a truncated file
/// releases nothing. With `--no-mmap` the same file goes through the stream pipeline.
#[test]
fn a_file_to_stdout_releases_only_authenticated_windows() {
    let dir = Dir::new();
    dir.new_key("server");
    let plaintext = data(150 * CHUNK + 77, 21);
    let sealed = seal_to_server(&dir, &plaintext);
    dir.write("f.age", &sealed);
    for flags in [&["--threads", "1"][..], &["--threads", "3"], &["--no-mmap"]] {
        let run = dir
            .bin("unseal")
            .args(["f.age", "--key", "server.key", "-o", "-"])
            .args(flags)
            .run()
            .ok();
        assert!(run.stdout == plaintext, "{flags:?}");
    }

    let at = Layout::of(&sealed);
    dir.write("bad.age", flipped(&sealed, at.chunk(130) + 5));
    let run = dir
        .bin("unseal")
        .args(["bad.age", "--key", "server.key", "-o", "-"])
        .run()
        .fails(EXIT_PAYLOAD)
        .says("unseal", &["bad.age", "payload corrupt at chunk 130"], None);
    assert_eq!(run.stdout.len(), 128 * CHUNK, "two whole windows, no more");
    assert!(run.stdout == plaintext[..128 * CHUNK]);

    dir.write("cut.age", truncated(&sealed, at.chunk(149)));
    let run = dir
        .bin("unseal")
        .args(["cut.age", "--key", "server.key", "-o", "-"])
        .run()
        .fails(EXIT_PAYLOAD);
    assert!(run.stdout.is_empty(), "a truncated file releases nothing");
}

/// A pipe on standard input or output is widened to 1 MiB, so that `cat f | unseal` hands
/// over 1 MiB per wake-up rather than 64 KiB; the stream still comes through whole.
#[test]
fn pipes_on_standard_input_and_output_are_widened() {
    let (dir, sealed, _) = three_chunk_file();
    let (stdin, mut feed) = std::io::pipe().unwrap();
    let (drain, stdout) = std::io::pipe().unwrap();
    let mut child = dir
        .bin("unseal")
        .cmd
        .args(WITH_KEY)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let widened = |pipe: &dyn std::os::fd::AsFd, name: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let size = rustix::pipe::fcntl_getpipe_size(pipe).unwrap();
            if size == 1 << 20 {
                break;
            }
            assert!(Instant::now() < deadline, "{name}: still {size} bytes");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    widened(&feed, "standard input");
    widened(&drain, "standard output");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut { drain }, &mut out).map(|_| out)
    });
    feed.write_all(&sealed).unwrap();
    drop(feed);
    assert!(child.wait().unwrap().success());
    let opened = reader.join().unwrap().unwrap();
    assert!(
        opened == data(2 * CHUNK + 500, 7),
        "the stream comes through whole"
    );
}

// ---------------------------------------------------------------------------------------------
// Recipients and identities

#[test]
fn every_way_of_naming_a_recipient_seals_to_it() {
    let dir = Dir::new();
    let recipient = dir.new_key("server");
    let plaintext = data(70_000, 3);
    let ways: [&[&str]; 5] = [
        &["--to", "server.pub"],
        &["-t", "server.pub"],
        &["--to", &recipient],
        &["-r", &recipient],
        &["-R", "server.pub"],
    ];
    for to in ways {
        let sealed = seal_via(&dir, Io::OutputFlag, &plaintext, to);
        assert_eq!(Layout::of(&sealed).shares.len(), 1, "{to:?}");
        let opened = unseal_via(&dir, Io::OutputFlag, &sealed, WITH_KEY);
        assert!(opened == plaintext, "{to:?}");
    }
}

#[test]
fn every_recipient_of_a_file_can_open_it() {
    let dir = Dir::new();
    let [_, b, _, d, e] = ["a", "b", "c", "d", "e"].map(|name| dir.new_key(name));
    dir.write("team.pub", format!("# team\n{d}\n\n{e}\n"));
    let plaintext = data(CHUNK + 1, 4);
    let to = ["--to", "a.pub", "-r", &b, "-R", "c.pub", "-R", "team.pub"];
    let sealed = seal_via(&dir, Io::OutputFlag, &plaintext, &to);
    assert_eq!(Layout::of(&sealed).shares.len(), 5);
    for key in ["a.key", "b.key", "c.key", "d.key", "e.key"] {
        let opened = unseal_via(&dir, Io::OutputFlag, &sealed, &["--key", key]);
        assert!(opened == plaintext, "{key} did not open it");
    }
    dir.new_key("stranger");
    let no_match = (EXIT_NO_MATCH, "no key matches (tried 1)");
    let cases = [("sealed to others", sealed)];
    check_refused(&dir, &["--key", "stranger.key"], READS, no_match, &cases);
}

#[test]
fn an_identity_file_with_several_keys_opens_with_any_of_them() {
    let dir = Dir::new();
    dir.new_key("old");
    dir.new_key("server");
    let both = [dir.read("old.key"), dir.read("server.key")].concat();
    dir.write_private("both.key", both);
    let plaintext = data(5000, 5);
    let sealed = seal_to_server(&dir, &plaintext);
    for io in [Io::OutputFlag, Io::Pipes] {
        let opened = unseal_via(&dir, io, &sealed, &["--key", "both.key"]);
        assert!(opened == plaintext, "{io:?}");
    }
}

#[test]
fn repeated_key_flags_are_all_tried() {
    let dir = Dir::new();
    for name in ["a", "b", "server"] {
        dir.new_key(name);
    }
    let plaintext = data(CHUNK, 6);
    let sealed = seal_to_server(&dir, &plaintext);
    let ways: [&[&str]; 4] = [
        &["--key", "a.key", "--key", "server.key"],
        &["-k", "a.key", "-i", "b.key", "-i", "server.key"],
        &["-i", "server.key", "-k", "a.key"],
        &["--identity", "b.key", "--key", "server.key"],
    ];
    for keys in ways {
        let opened = unseal_via(&dir, Io::OutputFlag, &sealed, keys);
        assert!(opened == plaintext, "{keys:?}");
    }
}

#[test]
fn a_key_file_others_can_read_is_warned_about_but_works() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.chmod("server.key", 0o644);
    let sealed = seal_to_server(&dir, b"hello");
    dir.write("hello.age", &sealed);
    let run = dir
        .bin("unseal")
        .args(["hello.age", "-k", "server.key"])
        .run()
        .ok();
    let warning = "unseal: warning: server.key: private key is readable by group or others; \
                   run chmod 600";
    assert_eq!(run.stderr_lines(), [warning]);
    assert_eq!(dir.read("hello"), b"hello");
}

// ---------------------------------------------------------------------------------------------
// Existing outputs

#[test]
fn an_existing_output_is_never_overwritten_without_force() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("report", "plain\n");
    let sealed = seal_to_server(&dir, b"plain\n");
    fs::create_dir(dir.path("in")).unwrap();
    dir.write("in/report.age", &sealed);
    // (command line, the output it names)
    let cases = [
        ("seal report --to server.pub", "report.age"),
        ("seal report --to server.pub -o sealed.age", "sealed.age"),
        ("unseal in/report.age -k server.key", "in/report"),
        ("unseal in/report.age -k server.key -o report", "report"),
    ];
    for (line, output) in cases {
        let program = line.split(' ').next().unwrap();
        let existed = fs::read(dir.path(output)).ok();
        dir.write(output, "keep me\n");
        let before = dir.listing();
        let error = format!("error: {output}: output file already exists");
        let hint = Some("use --force to overwrite it");
        dir.line(line)
            .run()
            .fails(EXIT_IO)
            .says(program, &[&error], hint);
        assert_eq!(dir.read_string(output), "keep me\n", "{line}");
        assert_eq!(dir.listing(), before, "{line}");

        for force in ["--force", "-f"] {
            dir.write(output, "keep me\n");
            dir.line(line).arg(force).run().ok();
            let written = dir.read(output);
            let plaintext = match program {
                "seal" => unseal_via(&dir, Io::Pipes, &written, WITH_KEY),
                _ => written,
            };
            assert_eq!(plaintext, b"plain\n", "{line} {force}");
            assert_eq!(dir.listing(), before, "{line} {force}");
        }
        match existed {
            Some(contents) => dir.write(output, contents),
            None => dir.remove(output),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wrong keys, and files that are not age files or are damaged

#[test]
fn a_wrong_key_is_exit_3_and_says_how_many_keys_were_tried() {
    let (dir, sealed, _) = three_chunk_file();
    dir.new_key("a");
    dir.new_key("b");
    let both = [dir.read("a.key"), dir.read("b.key")].concat();
    dir.write_private("both.key", both);
    let ways: [(&[&str], usize); 3] = [
        (&["--key", "a.key"], 1),
        (&["--key", "both.key"], 2),
        (&["-k", "a.key", "-i", "both.key"], 3),
    ];
    for (keys, tried) in ways {
        let needle = format!("no key matches (tried {tried})");
        let cases = [("sealed to another key", sealed.clone())];
        check_refused(&dir, keys, READS, (EXIT_NO_MATCH, &needle), &cases);
    }
}

#[test]
fn files_that_are_not_age_files_are_exit_4() {
    let dir = Dir::new();
    dir.new_key("server");
    let cases = [
        ("empty", Vec::new()),
        ("text", b"hello world\n".to_vec()),
        ("PNG", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()),
        (
            "garbage before armor",
            b"x\n-----BEGIN AGE ENCRYPTED FILE-----\n".to_vec(),
        ),
    ];
    let expected = (EXIT_HEADER, "not an age file");
    check_refused(&dir, WITH_KEY, READS, expected, &cases);
    // The begin line alone is armor (issue 6), cut short.
    let cases = [(
        "armor cut short",
        b"-----BEGIN AGE ENCRYPTED FILE-----\n".to_vec(),
    )];
    let expected = (EXIT_HEADER, "invalid armor: the armor has no end line");
    check_refused(&dir, WITH_KEY, READS, expected, &cases);
}

#[test]
fn header_damage_gets_the_exit_code_of_what_it_breaks() {
    let dir = Dir::new();
    dir.new_key("server");
    let sealed = seal_to_server(&dir, &data(1000, 8));
    let at = Layout::of(&sealed);
    let (share, body, mac) = (at.shares[0], at.bodies[0], at.mac);

    // A changed share is another valid point, so the derived wrap key is wrong; a changed
    // body fails to authenticate; a stanza of an unknown type is skipped. No key opens any.
    let no_match = [
        ("share changed", other_base64(&sealed, share)),
        ("body changed", other_base64(&sealed, body)),
        ("stanza type changed", altered(&sealed, share - 2, |_| b'8')),
    ];
    let expected = (EXIT_NO_MATCH, "no key matches (tried 1)");
    check_refused(&dir, WITH_KEY, READS, expected, &no_match);

    // The stanza opens, so the file key is right, but the MAC over the header is not.
    let bad_mac = [("MAC changed", other_base64(&sealed, mac))];
    let expected = (
        EXIT_HEADER_MAC,
        "header MAC is wrong: the header was modified",
    );
    check_refused(&dir, WITH_KEY, READS, expected, &bad_mac);

    // Bytes that do not parse make a malformed header.
    let malformed = [
        ("body not base64", altered(&sealed, body, |_| b'*')),
        ("body padding", noncanonical_base64(&sealed, body + 42)),
        ("share padding", noncanonical_base64(&sealed, share + 42)),
        ("MAC padding", noncanonical_base64(&sealed, mac + 42)),
        ("MAC not base64", altered(&sealed, mac, |_| b'*')),
        ("MAC line marker", altered(&sealed, mac - 2, |_| b'+')),
        ("stanza marker", altered(&sealed, share - 9, |_| b'=')),
        ("ends inside the MAC line", truncated(&sealed, mac + 10)),
        ("ends before the MAC line", truncated(&sealed, mac - 4)),
    ];
    let expected = (EXIT_HEADER, "invalid header");
    check_refused(&dir, WITH_KEY, READS, expected, &malformed);

    let version = [("version 2", altered(&sealed, 20, |_| b'2'))];
    let expected = (EXIT_HEADER, "unsupported age format version \"v2\"");
    check_refused(&dir, WITH_KEY, READS, expected, &version);
    let magic = [("magic", flipped(&sealed, 0))];
    let expected = (EXIT_HEADER, "not an age file");
    check_refused(&dir, WITH_KEY, READS, expected, &magic);
}

#[test]
fn damage_to_another_recipients_stanza_breaks_the_mac_for_everyone_else() {
    let dir = Dir::new();
    dir.new_key("first");
    dir.new_key("second");
    let to = ["--to", "first.pub", "--to", "second.pub"];
    let sealed = seal_via(&dir, Io::OutputFlag, &data(1000, 9), &to);
    let second_body = Layout::of(&sealed).bodies[1];
    let cases = [("second stanza's body", other_base64(&sealed, second_body))];
    // The first key opens the intact first stanza, then finds the header modified.
    let mac = (EXIT_HEADER_MAC, "header MAC is wrong");
    check_refused(&dir, &["--key", "first.key"], READS, mac, &cases);
    // The second key cannot open its own (damaged) stanza.
    let no_match = (EXIT_NO_MATCH, "no key matches (tried 1)");
    check_refused(&dir, &["--key", "second.key"], READS, no_match, &cases);
}

#[test]
fn a_damaged_chunk_is_exit_6_and_named() {
    let (dir, sealed, at) = three_chunk_file();
    for n in 0..3 {
        let tag_end = at.chunk(n + 1).min(sealed.len()) - 1;
        let cases = [
            ("body", flipped(&sealed, at.chunk(n) + 100)),
            ("tag", flipped(&sealed, tag_end)),
        ];
        let needle = format!("payload corrupt at chunk {n}");
        check_refused(&dir, WITH_KEY, READS, (EXIT_PAYLOAD, &needle), &cases);
    }
    // The payload nonce keys every chunk: the first one checked fails (the last, if mapped).
    let cases = [("payload nonce", flipped(&sealed, at.header_len))];
    let expected = (EXIT_PAYLOAD, "payload corrupt at chunk");
    check_refused(&dir, WITH_KEY, READS, expected, &cases);
}

#[test]
fn the_empty_chunk_of_an_empty_file_is_authenticated_too() {
    let dir = Dir::new();
    dir.new_key("server");
    let sealed = seal_to_server(&dir, b"");
    let at = Layout::of(&sealed);
    assert_eq!(
        sealed.len(),
        at.chunk(0) + TAG,
        "a nonce and an empty chunk"
    );
    let cases = [("tag", flipped(&sealed, sealed.len() - 1))];
    let expected = (EXIT_PAYLOAD, "payload corrupt at chunk 0");
    check_refused(&dir, WITH_KEY, READS, expected, &cases);
    let cases = [
        ("tag cut off", truncated(&sealed, at.chunk(0))),
        ("half the tag", truncated(&sealed, at.chunk(0) + TAG / 2)),
    ];
    check_refused(&dir, WITH_KEY, READS, (EXIT_PAYLOAD, "truncated"), &cases);
}

#[test]
fn a_truncated_file_is_exit_6_or_4_without_its_payload_nonce() {
    let (dir, sealed, at) = three_chunk_file();
    let cut = |len: usize| truncated(&sealed, len);

    // age reads the payload nonce with the header: a short one is a header failure.
    let cases = [
        ("no nonce", cut(at.header_len)),
        ("half a nonce", cut(at.header_len + NONCE / 2)),
    ];
    let expected = (
        EXIT_HEADER,
        "invalid header: the file ends before the 16-byte payload nonce",
    );
    check_refused(&dir, WITH_KEY, READS, expected, &cases);

    // At a chunk boundary, the chunk before opens as a non-final one: the end is missing.
    let cases = [
        ("no chunks", cut(at.chunk(0))),
        ("after chunk 0", cut(at.chunk(1))),
        ("after chunk 1", cut(at.chunk(2))),
        ("half a tag", cut(at.chunk(0) + TAG / 2)),
    ];
    check_refused(&dir, WITH_KEY, READS, (EXIT_PAYLOAD, "truncated"), &cases);

    // Inside a chunk, the cut chunk fails to open as the final one.
    let mid_chunk = [
        (0, cut(at.chunk(0) + 1000)),
        (1, cut(at.chunk(1) + 1000)),
        (1, cut(at.chunk(1) + TAG)),
        (2, cut(at.chunk(2) + 100)),
        (2, cut(sealed.len() - 1)),
    ];
    for (n, file) in mid_chunk {
        let needle = format!("payload corrupt at chunk {n}");
        let cases = [("cut inside a chunk", file)];
        check_refused(&dir, WITH_KEY, READS, (EXIT_PAYLOAD, &needle), &cases);
    }
}

#[test]
fn trailing_garbage_is_exit_6() {
    let (dir, sealed, _) = three_chunk_file();
    // After a short last chunk, the bytes lengthen it (or make a chunk after it), and the
    // lengthened chunk fails to open. Which chunk fails first depends on the path.
    let cases = [
        ("one byte", appended(&sealed, b"x")),
        ("a tag's worth", appended(&sealed, &[0; TAG])),
        ("a chunk's worth", appended(&sealed, &[7; SEALED_CHUNK])),
    ];
    let expected = (EXIT_PAYLOAD, "payload corrupt at chunk ");
    check_refused(&dir, WITH_KEY, READS, expected, &cases);

    // After a full last chunk, that chunk still opens as the final one: the rest is extra.
    for chunks in [1, 2] {
        let full = seal_to_server(&dir, &data(chunks * CHUNK, 10));
        let last_chunk = &full[Layout::of(&full).chunk(chunks - 1)..];
        let cases = [
            ("garbage", appended(&full, b"garbage after the end")),
            ("the last chunk again", appended(&full, last_chunk)),
        ];
        let expected = (EXIT_PAYLOAD, "trailing data after the end of the payload");
        check_refused(&dir, WITH_KEY, READS, expected, &cases);
    }
}

#[test]
fn a_missing_input_is_exit_1() {
    let dir = Dir::new();
    dir.new_key("server");
    let before = dir.listing();
    dir.bin("seal")
        .args(["missing", "--to", "server.pub"])
        .run()
        .fails(EXIT_IO)
        .says("seal", &["error: missing: no such file or directory"], None);
    dir.bin("unseal")
        .args(["missing.age", "--key", "server.key"])
        .run()
        .fails(EXIT_IO)
        .says(
            "unseal",
            &["error: missing.age: no such file or directory"],
            None,
        );
    assert_eq!(dir.listing(), before);
}

// ---------------------------------------------------------------------------------------------
// Usage errors

#[test]
fn usage_errors_are_exit_2_with_one_message_and_leave_nothing_behind() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("plain.txt", "hello\n");
    let sealed = seal_to_server(&dir, b"hello\n");
    dir.write("sealed.bin", &sealed);
    dir.write("sealed.age", &sealed);
    // (command line, in the error line, in the hint line)
    let cases = [
        (
            "seal plain.txt",
            "no recipients given",
            Some("use --to server.pub"),
        ),
        (
            "seal plain.txt --to server.key",
            "error: server.key: line 3: this is a secret key (AGE-SECRET-KEY-1...), not a recipient",
            Some("give --to the public key file (.pub); seal-keygen -y server.key prints its key"),
        ),
        (
            "seal plain.txt --to age1bogus",
            "invalid recipient \"age1bogus\"",
            None,
        ),
        (
            "seal plain.txt -r server.pub",
            "-r: server.pub is a file, not a recipient",
            Some("use -R server.pub (or --to server.pub)"),
        ),
        // A directory is batch mode (issue 3); a batch has no standard output to write to.
        (
            "seal . --to server.pub -o -",
            "error: a batch cannot write to standard output",
            Some("use -o DIRECTORY, or leave -o out to write beside the inputs"),
        ),
        (
            "unseal sealed.age",
            "no key given",
            Some("use --key server.key"),
        ),
        (
            "unseal sealed.age --key server.pub",
            "error: server.pub: line 1: not a valid identity",
            Some("this is a public key: --key needs the private key file"),
        ),
        (
            "unseal sealed.age --key plain.txt",
            "error: plain.txt: unknown key format; accepted: age identity files",
            None,
        ),
        (
            "unseal sealed.bin --key server.key",
            "error: sealed.bin: does not end in .age, so the output name is unknown",
            Some("use -o OUTPUT"),
        ),
    ];
    for (line, error, hint) in cases {
        let before = dir.listing();
        let program = line.split(' ').next().unwrap();
        dir.line(line)
            .run()
            .fails(EXIT_USAGE)
            .says(program, &[error], hint);
        assert_eq!(dir.listing(), before, "{line}");
    }
}

#[test]
fn bad_command_lines_are_exit_2() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("plain.txt", "hello\n");
    // (command line, in the message)
    let cases = [
        ("seal plain.txt --to server.pub --bogus", "--bogus"),
        ("unseal plain.txt.age --key server.key --bogus", "--bogus"),
        ("seal-keygen --bogus", "--bogus"),
        (
            "seal-keygen -o new.key -y server.key",
            "cannot be used with",
        ),
        ("seal plain.txt --to server.pub --threads many", "many"),
        // Several inputs are batch mode (issue 3), which reads no standard input.
        (
            "seal plain.txt - --to server.pub",
            "standard input cannot be part of a batch",
        ),
    ];
    for (line, needle) in cases {
        let before = dir.listing();
        let run = dir.line(line).run().fails(EXIT_USAGE);
        let stderr = &run.stderr;
        assert!(stderr.contains(needle), "{line}: {stderr}");
        assert!(run.stdout.is_empty(), "{line}");
        assert_eq!(dir.listing(), before, "{line}");
    }
}

#[test]
fn a_private_key_given_as_a_recipients_file_is_never_echoed() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("plain.txt", "hello\n");
    for flag in ["--to", "-R"] {
        let run = dir
            .bin("seal")
            .args(["plain.txt", flag, "server.key"])
            .run();
        let run = run.fails(EXIT_USAGE);
        let stderr = &run.stderr;
        // Named by its kind ("AGE-SECRET-KEY-1..."), but no piece of the key is shown.
        let key = String::from_utf8(dir.read("server.key")).unwrap();
        let secret = key
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
            .unwrap();
        let body = &secret["AGE-SECRET-KEY-1".len()..];
        for piece in body.as_bytes().windows(8) {
            let piece = std::str::from_utf8(piece).unwrap();
            assert!(!stderr.contains(piece), "{flag}: the key leaked: {stderr}");
        }
        assert!(
            stderr.contains("secret key (AGE-SECRET-KEY-1...)"),
            "{stderr}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Signals

/// Sends `signal` (a name: `TERM`, `INT`, `HUP`) to a running child.
fn send_signal(child: &std::process::Child, signal: &str) {
    let kill = format!("kill -{signal} {}", child.id());
    let killed = Command::new("sh").args(["-c", &kill]).status().unwrap();
    assert!(killed.success(), "{kill}");
}

/// With standard error a closed pipe, messages are lost but nothing else: a signal still stops
/// a stream (the handler's message used to panic its thread, and the command ran on), and a
/// failure keeps its exit code rather than a panic's 101. Lines printed to a closed standard
/// output end quietly.
#[test]
fn a_closed_stderr_loses_messages_but_not_signals_or_exit_codes() {
    let dir = Dir::new();
    dir.new_key("server");
    let closed = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    let status = dir
        .line("unseal missing.age --key server.key")
        .cmd
        .stdout(Stdio::null())
        .stderr(closed())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(EXIT_IO));
    // A closed standard output ends printed lines quietly, as it ends a stream.
    for line in [
        "seal-keygen -y server.key",
        "seal-keygen --fingerprint server.pub",
    ] {
        let status = dir.line(line).cmd.stdout(closed()).status().unwrap();
        assert!(status.success(), "{line}: {status}");
    }

    let mut child = dir
        .line("seal --to server.pub")
        .cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(closed())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    // Once SIGTERM is caught (bit 15 of SigCgt), the handler is in place.
    let status_file = format!("/proc/{}/status", child.id());
    let catches_term = || {
        let status = fs::read_to_string(&status_file).unwrap_or_default();
        let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"));
        mask.and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .is_some_and(|m| m & (1 << 14) != 0)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !catches_term() {
        assert!(
            Instant::now() < deadline,
            "seal never installed its signal handler"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    send_signal(&child, "TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("seal still running 20 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(stdin);
    assert_eq!(status.code(), Some(EXIT_INTERRUPTED));
}

#[test]
fn an_interrupted_command_exits_130_and_leaves_no_partial_output() {
    let cases = [
        ("seal", "--to server.pub", "INT"),
        ("seal", "--to server.pub", "TERM"),
        ("unseal", "--key server.key", "INT"),
        ("unseal", "--key server.key", "HUP"),
    ];
    for (program, args, signal) in cases {
        let dir = Dir::new();
        dir.new_key("server");
        let before = dir.listing();
        let mut child = dir
            .line(&format!("{program} {args} -o output"))
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The command creates its temporary output, then blocks reading standard input,
        // which stays open until after the signal.
        let stdin = child.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(30);
        let partial = |names: BTreeSet<String>| names.iter().any(|n| n.ends_with(".seal-partial"));
        while !partial(dir.listing()) {
            assert!(Instant::now() < deadline, "{program}: no temporary file");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(100));
        send_signal(&child, signal);
        let output = child.wait_with_output().unwrap();
        drop(stdin);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let what = format!("{program} SIG{signal}: {stderr}");
        assert_eq!(output.status.code(), Some(EXIT_INTERRUPTED), "{what}");
        let message = format!("{program}: error: interrupted; no partial output was left behind");
        assert_eq!(stderr.trim_end(), message);
        assert_eq!(dir.listing(), before, "{what}");
    }
}

/// A server key and `big.age`: 192 MiB sealed to it, big enough that one debug-build thread
/// is still decrypting when the file shrinks under it. Returns the plaintext.
fn big_sealed_file(dir: &Dir) -> Vec<u8> {
    dir.new_key("server");
    let plaintext = vec![0x5a; 192 << 20];
    dir.write("big.age", seal_to_server(dir, &plaintext));
    plaintext
}

/// `unseal big.age --threads 1 -o OUTPUT`, started with standard error captured.
fn spawn_unseal_big(dir: &Dir, output: &str, stdout: Stdio) -> std::process::Child {
    let line = format!("unseal big.age --key server.key -o {output} --threads 1");
    let mut cmd = dir.line(&line).cmd;
    cmd.stdout(stdout).stderr(Stdio::piped()).spawn().unwrap()
}

/// Cuts `big.age` to nothing, as another process might while it is mapped.
fn truncate_big(dir: &Dir) {
    let file = fs::File::options().write(true).open(dir.path("big.age"));
    file.unwrap().set_len(0).unwrap();
}

#[test]
fn an_input_truncated_while_streamed_to_stdout_fails_with_a_read_error() {
    use std::io::Read;
    let dir = Dir::new();
    let plaintext = big_sealed_file(&dir);
    let mut child = spawn_unseal_big(&dir, "-", Stdio::piped());
    // The pipe holds unseal back: once a first MiB has come through, most of the file is
    // still to be read when it shrinks.
    let mut stdout = child.stdout.take().unwrap();
    let mut got = vec![0u8; 1 << 20];
    stdout.read_exact(&mut got).unwrap();
    truncate_big(&dir);
    stdout.read_to_end(&mut got).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(EXIT_IO), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("unseal: error: big.age: ")
            && stderr.contains("the file shrank while it was being read"),
        "{stderr}"
    );
    assert!(got.len() < plaintext.len() && got.iter().all(|&b| b == 0x5a));
}

#[test]
fn an_input_truncated_while_read_fails_cleanly_without_sigbus() {
    let dir = Dir::new();
    big_sealed_file(&dir);
    let before = dir.listing();
    let child = spawn_unseal_big(&dir, "big", Stdio::null());
    // Wait until decryption has begun: the temporary output is grown to the plaintext size
    // just before the chunks are read. Then cut the sealed file to nothing.
    let deadline = Instant::now() + Duration::from_secs(60);
    let started = || {
        fs::read_dir(dir.path(".")).unwrap().flatten().any(|e| {
            e.file_name().to_string_lossy().ends_with(".seal-partial")
                && e.metadata().is_ok_and(|m| m.len() > 0)
        })
    };
    while !started() {
        assert!(Instant::now() < deadline, "unseal never started writing");
        std::thread::sleep(Duration::from_millis(1));
    }
    truncate_big(&dir);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(EXIT_IO), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("unseal: error: big.age: the file shrank while it was being read"),
        "{stderr}"
    );
    let mut after = dir.listing();
    after.retain(|name| name != "big.age");
    let mut expected = before;
    expected.retain(|name| name != "big.age");
    assert_eq!(after, expected, "no output and no temporary file");
}

// ---------------------------------------------------------------------------------------------
// Interop with the Go age CLI

/// The path of a Go age tool. Fails the test when it is missing: never skips it.
fn go_tool(name: &str) -> PathBuf {
    tool(name, "the Go age CLI is required (apt-get install age)")
}

/// The path of a program on `PATH`; fails the test, saying `why`, when it is missing.
fn tool(name: &str, why: &str) -> PathBuf {
    let executable = |path: &PathBuf| {
        let meta = path.metadata();
        meta.is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(executable)
        })
        .unwrap_or_else(|| panic!("`{name}` is not on PATH: {why}"))
}

const INTEROP_SIZES: &[usize] = &[0, 1, CHUNK, CHUNK + 1, 300 * 1024];

#[test]
fn go_age_opens_what_seal_writes() {
    let age = go_tool("age");
    let dir = Dir::new();
    dir.new_key("server");
    for (seed, &len) in INTEROP_SIZES.iter().enumerate() {
        let plaintext = data(len, 100 + seed as u64);
        for flags in [&[][..], &["--no-mmap"]] {
            let to = [&["--to", "server.pub"], flags].concat();
            let sealed = seal_via(&dir, Io::OutputFlag, &plaintext, &to);
            dir.write("sealed.age", sealed);
            // To stdout: age creates an `-o` file only when it first writes to it.
            let opened = dir.cmd(&age).args(["-d", "-i", "server.key", "sealed.age"]);
            let opened = opened.run().ok().stdout;
            assert!(opened == plaintext, "age -d: {len} bytes, {flags:?}");
        }
    }
}

#[test]
fn unseal_opens_what_go_age_writes() {
    let age = go_tool("age");
    let dir = Dir::new();
    let recipient = dir.new_key("server");
    for (seed, &len) in INTEROP_SIZES.iter().enumerate() {
        let plaintext = data(len, 200 + seed as u64);
        dir.write("plain", &plaintext);
        for to in [["-R", "server.pub"], ["-r", &recipient]] {
            let age_encrypt = dir.cmd(&age).args(to);
            age_encrypt.args(["-o", "sealed.age", "plain"]).run().ok();
            let sealed = dir.read("sealed.age");
            dir.remove("sealed.age");
            for flags in [&[][..], &["--no-mmap"], &["--threads", "1"]] {
                let keys = [WITH_KEY, flags].concat();
                for io in [Io::DefaultNames, Io::Pipes] {
                    let opened = unseal_via(&dir, io, &sealed, &keys);
                    let how = format!("{to:?}, {len} bytes, unsealed {flags:?} {io:?}");
                    assert!(opened == plaintext, "age {how}");
                }
            }
        }
        dir.remove("plain");
    }
}

#[test]
fn go_age_keygen_and_seal_keygen_read_each_others_keys() {
    let age_keygen = go_tool("age-keygen");
    let dir = Dir::new();
    let ours = dir.new_key("ours");
    let derived = dir.cmd(&age_keygen).args(["-y", "ours.key"]).run().ok();
    assert_eq!(derived.stdout_string(), format!("{ours}\n"));

    dir.cmd(&age_keygen).args(["-o", "theirs.key"]).run().ok();
    let run = dir.bin("seal-keygen").args(["-y", "theirs.key"]).run().ok();
    let theirs = run.stdout_string();
    let theirs = theirs.trim_end();
    let text = dir.read_string("theirs.key");
    let line = format!("# public key: {theirs}\n");
    assert!(text.contains(&line), "{text}");

    let plaintext = data(CHUNK + 7, 13);
    let sealed = seal_via(&dir, Io::Pipes, &plaintext, &["-r", theirs]);
    let opened = unseal_via(&dir, Io::Pipes, &sealed, &["--key", "theirs.key"]);
    assert!(opened == plaintext);
}

// ---------------------------------------------------------------------------------------------
// ASCII armor and passphrases (issue 6)

const BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
const END: &str = "-----END AGE ENCRYPTED FILE-----";

/// Checks the shape age's spec gives armor: the begin line, full 64-column lines, a last line
/// that may be shorter but not empty, the end line, a final newline.
fn assert_armor_shape(armored: &[u8]) {
    let text = std::str::from_utf8(armored).expect("armor is text");
    assert!(text.ends_with(&format!("\n{END}\n")), "{text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], BEGIN);
    let body = &lines[1..lines.len() - 1];
    assert!(!body.is_empty());
    for line in &body[..body.len() - 1] {
        assert_eq!(line.len(), 64, "{line:?}");
    }
    let last = body[body.len() - 1];
    assert!(!last.is_empty() && last.len() <= 64 && last.len().is_multiple_of(4));
}

#[test]
fn armor_round_trips_every_size_by_every_way_in_and_out() {
    let dir = Dir::new();
    dir.new_key("server");
    for (seed, &len) in SIZES.iter().enumerate() {
        let plaintext = data(len, 300 + seed as u64);
        for io in [Io::OutputFlag, Io::Pipes] {
            let armored = transform(&dir, "seal", io, &plaintext, &["-a", "--to", "server.pub"]);
            assert_armor_shape(&armored);
            for flags in [&[][..], &["--no-mmap"], &["--threads", "1"]] {
                let keys = [WITH_KEY, flags].concat();
                for unseal_io in [Io::DefaultNames, Io::Pipes] {
                    let opened = unseal_via(&dir, unseal_io, &armored, &keys);
                    assert!(
                        opened == plaintext,
                        "{len} bytes, {io:?} {flags:?} {unseal_io:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn armored_output_may_go_to_standard_output_and_crlf_armor_opens() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("notes.txt", "meet at noon\n");
    let run = dir
        .line("seal -a notes.txt --to server.pub -o -")
        .run()
        .ok();
    let crlf = run.stdout_string().replace('\n', "\r\n");
    let opened = unseal_via(&dir, Io::Pipes, crlf.as_bytes(), WITH_KEY);
    assert_eq!(opened, b"meet at noon\n");
}

#[test]
fn bad_armor_is_refused_with_exit_4_and_nothing_left_behind() {
    let dir = Dir::new();
    dir.new_key("server");
    let plaintext = data(3 * CHUNK + 10, 9);
    let armored = transform(
        &dir,
        "seal",
        Io::Pipes,
        &plaintext,
        &["-a", "--to", "server.pub"],
    );
    let text = String::from_utf8(armored).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let with_line = |at: usize, line: &str| {
        let mut ls = lines.clone();
        ls[at] = line;
        (ls.join("\n") + "\n").into_bytes()
    };
    let long = format!("{} ", lines[2]);
    let cases = [
        ("trailing garbage", format!("{text}garbage\n").into_bytes()),
        ("a space at a line end", with_line(2, &long)),
        ("an empty line", with_line(5, "")),
        (
            "a lowercase end line",
            with_line(lines.len() - 1, &END.to_lowercase()),
        ),
        ("no end line", text.replace(END, "").into_bytes()),
        ("a short line in the middle", with_line(3, &lines[3][..60])),
    ];
    check_refused(
        &dir,
        WITH_KEY,
        READS,
        (EXIT_HEADER, "invalid armor"),
        &cases,
    );
}

#[test]
fn go_age_opens_what_seal_armors() {
    let age = go_tool("age");
    let dir = Dir::new();
    dir.new_key("server");
    for (seed, &len) in INTEROP_SIZES.iter().enumerate() {
        let plaintext = data(len, 400 + seed as u64);
        let armored = transform(
            &dir,
            "seal",
            Io::Pipes,
            &plaintext,
            &["-a", "--to", "server.pub"],
        );
        dir.write("sealed.age", armored);
        let opened = dir.cmd(&age).args(["-d", "-i", "server.key", "sealed.age"]);
        assert!(opened.run().ok().stdout == plaintext, "age -d: {len} bytes");
    }
}

#[test]
fn unseal_opens_what_go_age_armors() {
    let age = go_tool("age");
    let dir = Dir::new();
    dir.new_key("server");
    for (seed, &len) in INTEROP_SIZES.iter().enumerate() {
        let plaintext = data(len, 500 + seed as u64);
        dir.write("plain", &plaintext);
        let age_encrypt = dir
            .cmd(&age)
            .args(["-a", "-R", "server.pub", "-o", "sealed.age"]);
        age_encrypt.arg("plain").run().ok();
        let armored = dir.read("sealed.age");
        assert!(armored.starts_with(BEGIN.as_bytes()));
        dir.remove("sealed.age");
        dir.remove("plain");
        for flags in [&[][..], &["--no-mmap"]] {
            let keys = [WITH_KEY, flags].concat();
            for io in [Io::DefaultNames, Io::Pipes] {
                let opened = unseal_via(&dir, io, &armored, &keys);
                assert!(opened == plaintext, "age -a: {len} bytes, {flags:?} {io:?}");
            }
        }
    }
}

#[test]
fn passphrase_files_round_trip_at_the_default_and_a_small_work_factor() {
    let dir = Dir::new();
    dir.write_private("pass", "correct horse battery staple\n");
    let plaintext = data(CHUNK + 3, 21);
    for work in [&[][..], &["--work-factor", "10"]] {
        for armor in [&[][..], &["-a"]] {
            let flags = [&["--passphrase-file", "pass"][..], work, armor].concat();
            let sealed = transform(&dir, "seal", Io::Pipes, &plaintext, &flags);
            let header = match armor.is_empty() {
                true => sealed.clone(),
                false => seal::armor::decode(&sealed).unwrap(),
            };
            let factor = if work.is_empty() { "18" } else { "10" };
            let (header, _) = seal::format::Header::parse(&header).unwrap();
            assert_eq!(header.stanzas.len(), 1);
            assert_eq!(header.stanzas[0].kind, "scrypt");
            assert_eq!(header.stanzas[0].args[1], factor);
            // The passphrase file's final newline is not part of the passphrase: the same
            // text without it opens the file too.
            dir.write_private("pass2", "correct horse battery staple");
            for file in ["pass", "pass2"] {
                let opened =
                    unseal_via(&dir, Io::OutputFlag, &sealed, &["--passphrase-file", file]);
                assert!(opened == plaintext, "{flags:?} {file}");
            }
        }
    }
}

#[test]
fn a_wrong_passphrase_exits_3_and_leaves_nothing_behind() {
    let dir = Dir::new();
    dir.write_private("pass", "right");
    dir.write_private("wrong", "wrong");
    let plaintext = data(2 * CHUNK, 22);
    let flags = ["--passphrase-file", "pass", "--work-factor", "10"];
    let sealed = transform(&dir, "seal", Io::Pipes, &plaintext, &flags);
    let armored = transform(
        &dir,
        "seal",
        Io::Pipes,
        &plaintext,
        &[&flags[..], &["-a"]].concat(),
    );
    let cases = [("binary", sealed), ("armored", armored)];
    let keys = ["--passphrase-file", "wrong"];
    check_refused(
        &dir,
        &keys,
        READS,
        (EXIT_NO_MATCH, "wrong passphrase"),
        &cases,
    );
}

#[test]
fn a_passphrase_is_never_mixed_with_keys() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write_private("pass", "p");
    dir.write("plain", "x");
    let before = dir.listing();
    dir.line("seal plain --passphrase-file pass --to server.pub")
        .run()
        .fails(EXIT_USAGE)
        .says("seal", &["passphrase cannot be combined"], Some("not both"));
    assert_eq!(dir.listing(), before);

    // A header with a passphrase stanza and a key stanza is refused, even by the key.
    let sealed = transform(&dir, "seal", Io::Pipes, b"x", &["--to", "server.pub"]);
    let scrypt = transform(
        &dir,
        "seal",
        Io::Pipes,
        b"x",
        &["--passphrase-file", "pass", "--work-factor", "2"],
    );
    let text = String::from_utf8_lossy(&scrypt);
    let stanza_end = text.find("\n---").unwrap();
    let stanza = &scrypt[b"age-encryption.org/v1\n".len()..stanza_end + 1];
    let at = b"age-encryption.org/v1\n".len();
    let mixed = [&sealed[..at], stanza, &sealed[at..]].concat();
    let cases = [("scrypt and X25519", mixed)];
    check_refused(
        &dir,
        WITH_KEY,
        READS,
        (EXIT_HEADER, "must be the only stanza"),
        &cases,
    );
}

/// `--work-factor` means nothing without a passphrase: it is a usage error, not ignored.
#[test]
fn a_work_factor_without_a_passphrase_is_a_usage_error() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("plain.txt", "hello\n");
    let before = dir.listing();
    let run = dir
        .bin("seal")
        .args(["plain.txt", "--to", "server.pub", "--work-factor", "10"])
        .run()
        .fails(2);
    assert!(run.stderr.contains("--work-factor"), "{}", run.stderr);
    assert_eq!(dir.listing(), before, "nothing written");
}

#[test]
fn a_hostile_work_factor_is_refused_before_any_work() {
    let dir = Dir::new();
    dir.write_private("pass", "p");
    let sealed = transform(
        &dir,
        "seal",
        Io::Pipes,
        b"x",
        &["--passphrase-file", "pass", "--work-factor", "2"],
    );
    let text = String::from_utf8_lossy(&sealed).into_owned();
    let line_end = text.find(" 2\n").unwrap();
    for factor in ["23", "40", "63"] {
        let hostile = [
            &sealed[..line_end + 1],
            factor.as_bytes(),
            &sealed[line_end + 2..],
        ]
        .concat();
        let started = Instant::now();
        let cases = [(factor, hostile)];
        let keys = ["--passphrase-file", "pass"];
        check_refused(
            &dir,
            &keys,
            READS,
            (EXIT_HEADER, "above the limit of 2^22"),
            &cases,
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{factor}: took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn passphrase_files_readable_by_others_are_warned_about() {
    let dir = Dir::new();
    dir.write("pass", "p");
    dir.chmod("pass", 0o644);
    dir.write("plain", "x");
    let run = dir
        .line("seal plain --passphrase-file pass --work-factor 2 -o sealed.age")
        .run()
        .ok();
    assert_eq!(
        run.stderr,
        "seal: warning: pass: passphrase file is readable by group or others; run chmod 600\n"
    );
    let run = dir
        .line("unseal sealed.age --passphrase-file pass -o -")
        .run()
        .ok();
    assert!(run
        .stderr
        .contains("unseal: warning: pass: passphrase file is readable"));
    assert_eq!(run.stdout, b"x");
}

#[test]
fn unseal_without_a_key_names_the_missing_key_when_the_file_needs_one() {
    let dir = Dir::new();
    dir.new_key("server");
    let sealed = transform(&dir, "seal", Io::Pipes, b"x", &["--to", "server.pub"]);
    dir.write("sealed.age", &sealed);
    let before = dir.listing();
    dir.line("unseal sealed.age").run().fails(EXIT_USAGE).says(
        "unseal",
        &["sealed.age: no key given"],
        Some("use --key server.key"),
    );
    assert_eq!(dir.listing(), before);
}

#[test]
fn armor_is_refused_in_batch_mode() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("a", "1");
    dir.write("b", "2");
    let before = dir.listing();
    dir.line("seal -a a b --to server.pub")
        .run()
        .fails(EXIT_USAGE)
        .says("seal", &["--armor seals one file at a time"], None);
    assert_eq!(dir.listing(), before);
}

#[test]
fn a_key_given_for_a_passphrase_file_gets_a_hint() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write_private("pass", "p");
    let flags = ["--passphrase-file", "pass", "--work-factor", "2"];
    let sealed = transform(&dir, "seal", Io::Pipes, b"x", &flags);
    dir.write("sealed.age", &sealed);
    let before = dir.listing();
    dir.line("unseal sealed.age --key server.key")
        .run()
        .fails(EXIT_NO_MATCH)
        .says(
            "unseal",
            &["sealed.age: the file is sealed with a passphrase, not to a key"],
            Some("leave out --key"),
        );
    assert_eq!(dir.listing(), before);
}

/// Runs `command` (a shell line) on a fresh pseudo-terminal, typing `typed` at it, as a
/// person would answer passphrase prompts. Needs `script` (util-linux); fails loudly without.
fn on_terminal(dir: &Dir, command: &str, typed: &str) -> Run {
    let script = tool("script", "util-linux's script runs commands on a terminal");
    dir.cmd(script)
        .args(["-qec", command, "/dev/null"])
        .stdin(typed)
        .run()
}

#[test]
fn passphrases_typed_on_a_terminal_interoperate_with_go_age_both_ways() {
    let age = go_tool("age");
    let age = age.to_str().unwrap();
    let dir = Dir::new();
    let plaintext = data(CHUNK + 100, 31);
    dir.write("plain", &plaintext);
    let (seal, unseal) = (bin("seal"), bin("unseal"));

    // seal asks twice; age -d asks once.
    let line = format!("{seal} plain --passphrase --work-factor 12 -o ours.age");
    on_terminal(&dir, &line, "hunter2\nhunter2\n").ok();
    on_terminal(&dir, &format!("{age} -d -o opened ours.age"), "hunter2\n").ok();
    assert!(dir.read("opened") == plaintext);
    dir.remove("opened");

    // age -p asks twice; unseal asks once, and only because the file needs it.
    on_terminal(
        &dir,
        &format!("{age} -p -o theirs.age plain"),
        "hunter2\nhunter2\n",
    )
    .ok();
    on_terminal(&dir, &format!("{unseal} theirs.age -o opened"), "hunter2\n").ok();
    assert!(dir.read("opened") == plaintext);
    dir.remove("opened");

    // A wrong passphrase, and two that differ when sealing: nothing is written.
    let before = dir.listing();
    let run = on_terminal(&dir, &format!("{unseal} theirs.age -o opened"), "hunter3\n");
    let run = run.fails(EXIT_NO_MATCH);
    assert!(run
        .stdout_string()
        .contains("unseal: error: theirs.age: wrong passphrase"));
    let line = format!("{seal} plain --passphrase -o again.age");
    let run = on_terminal(&dir, &line, "hunter2\nhunter3\n").fails(EXIT_USAGE);
    assert!(run
        .stdout_string()
        .contains("seal: error: the passphrases do not match"));
    assert_eq!(dir.listing(), before);
}

#[test]
fn batch_mode_opens_armored_files_small_and_large_mapped_or_not() {
    let dir = Dir::new();
    dir.new_key("server");
    fs::create_dir(dir.path("up")).unwrap();
    let small = data(100, 41);
    let large = data(2 * (1 << 20) + 7, 42);
    for (name, plaintext) in [("small", &small), ("large", &large)] {
        let armored = transform(
            &dir,
            "seal",
            Io::Pipes,
            plaintext,
            &["-a", "--to", "server.pub"],
        );
        dir.write(&format!("up/{name}.age"), armored);
    }
    for flags in [&[][..], &["--no-mmap"]] {
        let out = format!("out{}", flags.len());
        let args = [&["up", "-q", "-k", "server.key", "-o", &out][..], flags].concat();
        dir.bin("unseal").args(args).run().ok();
        assert!(dir.read(&format!("{out}/up/small")) == small, "{flags:?}");
        assert!(dir.read(&format!("{out}/up/large")) == large, "{flags:?}");
    }
}

#[test]
fn a_batch_without_keys_is_a_usage_error_but_a_passphrase_file_opens_one() {
    let dir = Dir::new();
    fs::create_dir(dir.path("up")).unwrap();
    dir.write_private("pass", "p");
    let flags = ["--passphrase-file", "pass", "--work-factor", "2"];
    for name in ["a", "b"] {
        let sealed = transform(&dir, "seal", Io::Pipes, name.as_bytes(), &flags);
        dir.write(&format!("up/{name}.age"), sealed);
    }
    let before = dir.listing();
    dir.line("unseal up -o out").run().fails(EXIT_USAGE).says(
        "unseal",
        &["no key given"],
        Some("--passphrase-file FILE"),
    );
    assert_eq!(dir.listing(), before);
    dir.line("unseal up -q -o out --passphrase-file pass")
        .run()
        .ok();
    assert_eq!(dir.read("out/up/a"), b"a");
    assert_eq!(dir.read("out/up/b"), b"b");
}

// ---------------------------------------------------------------------------------------------
// Post-quantum keys (issue 7): `seal-keygen --pq`, `age1pq1...` recipients.
//
// The Go age on this machine (1.1.x, Debian's) predates post-quantum keys (age 1.3), and the
// `age` crate has none either: the C2SP hybrid vectors are the interop check
// (tests/conformance.rs, and .ci/run through the real binary).

/// Makes `NAME.key` and `NAME.pub` with `seal-keygen --pq`; returns the `age1pq1...` recipient.
fn new_pq_key(dir: &Dir, name: &str) -> String {
    let private = format!("{name}.key");
    dir.bin("seal-keygen")
        .args(["--pq", "-o", &private])
        .run()
        .ok();
    dir.read_string(&format!("{name}.pub"))
        .trim_end()
        .to_string()
}

#[test]
fn keygen_pq_writes_a_post_quantum_key_pair_that_y_reads_back() {
    let dir = Dir::new();
    let run = dir
        .bin("seal-keygen")
        .args(["--pq", "-o", "server.key"])
        .run()
        .ok();
    assert_eq!(dir.listing(), listing(&["server.key", "server.pub"]));
    assert_eq!(dir.mode("server.key"), 0o600);
    let text = dir.read_string("server.key");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() == 3 && lines[0].starts_with("# created: "),
        "{text}"
    );
    let public = lines[1]
        .strip_prefix("# public key: ")
        .expect("# public key:");
    assert!(
        public.starts_with("age1pq1") && public.len() == 1959,
        "{public}"
    );
    assert!(lines[2].starts_with("AGE-SECRET-KEY-PQ-1") && lines[2].len() == 77);
    assert_eq!(dir.read_string("server.pub"), format!("{public}\n"));
    assert!(run.stderr.contains(&format!("Public key: {public}")));

    let from_file = dir.bin("seal-keygen").args(["-y", "server.key"]).run().ok();
    assert_eq!(from_file.stdout_string(), format!("{public}\n"));
    let from_stdin = dir.bin("seal-keygen").args(["-y", "-"]);
    let from_stdin = from_stdin.stdin(dir.read("server.key")).run().ok();
    assert_eq!(from_stdin.stdout_string(), format!("{public}\n"));

    // Two runs make two different keys.
    assert_ne!(new_pq_key(&dir, "other"), public);
}

#[test]
fn keygen_y_derives_the_public_key_of_the_spec_example() {
    let dir = Dir::new();
    let example = include_str!("../testdata/pq/spec-example.key");
    dir.write_private("example.key", example);
    let run = dir
        .bin("seal-keygen")
        .args(["-y", "example.key"])
        .run()
        .ok();
    let public = example
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap();
    assert_eq!(run.stdout_string(), format!("{public}\n"));
}

#[test]
fn keygen_pq_and_y_do_not_go_together() {
    let dir = Dir::new();
    dir.new_key("server");
    let run = dir
        .bin("seal-keygen")
        .args(["--pq", "-y", "server.key"])
        .run();
    let run = run.fails(EXIT_USAGE);
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn post_quantum_keys_round_trip_through_the_binaries() {
    let dir = Dir::new();
    let recipient = new_pq_key(&dir, "server");
    for (seed, &len) in [0, 1, CHUNK, 2 * CHUNK + 500].iter().enumerate() {
        let plaintext = data(len, 300 + seed as u64);
        let ways: [(&[&str], Io); 3] = [
            (&["--to", "server.pub"], Io::DefaultNames),
            (&["-r", &recipient], Io::Pipes),
            (&["-R", "server.pub", "--threads", "1"], Io::OutputFlag),
        ];
        for (to, io) in ways {
            let sealed = transform(&dir, "seal", io, &plaintext, to);
            assert!(sealed.starts_with(b"age-encryption.org/v1\n-> mlkem768x25519 "));
            assert_eq!(
                sealed_len(Layout::of(&sealed).header_len, len),
                sealed.len()
            );
            for io in [Io::DefaultNames, Io::Pipes] {
                let opened = unseal_via(&dir, io, &sealed, WITH_KEY);
                assert!(opened == plaintext, "{len} bytes, sealed {to:?}");
            }
        }
    }
}

#[test]
fn a_post_quantum_file_with_another_key_is_exit_3() {
    let dir = Dir::new();
    new_pq_key(&dir, "server");
    new_pq_key(&dir, "other");
    dir.new_key("classic");
    let sealed = transform(
        &dir,
        "seal",
        Io::Pipes,
        &data(5000, 4),
        &["--to", "server.pub"],
    );
    for keys in [&["--key", "other.key"][..], &["--key", "classic.key"]] {
        let cases = [("sealed to another key", sealed.clone())];
        let needle = (EXIT_NO_MATCH, "no key matches (tried 1)");
        check_refused(&dir, keys, READS, needle, &cases);
    }
    // A key file with a classical key and the right post-quantum key opens it.
    let both = [dir.read("classic.key"), dir.read("server.key")].concat();
    dir.write_private("both.key", both);
    let opened = unseal_via(&dir, Io::Pipes, &sealed, &["--key", "both.key"]);
    assert_eq!(opened, data(5000, 4));
}

#[test]
fn mixing_post_quantum_and_classical_keys_is_refused_and_writes_nothing() {
    let dir = Dir::new();
    let pq = new_pq_key(&dir, "pq");
    let classic = dir.new_key("classic");
    dir.write("both.pub", format!("{classic}\n{pq}\n"));
    dir.write("plain", data(100, 5));
    std::fs::create_dir(dir.path("tree")).unwrap();
    dir.write("tree/a", data(10, 6));
    let before = dir.listing();
    let command_lines: [&[&str]; 5] = [
        &["plain", "--to", "pq.pub", "--to", "classic.pub"],
        &["plain", "-r", &classic, "-r", &pq],
        &["plain", "-R", "both.pub"],
        &["plain", "--to", "pq.pub", "-r", &classic, "-o", "out.age"],
        &["tree", "--to", "both.pub"],
    ];
    for args in command_lines {
        dir.bin("seal").args(args).run().fails(EXIT_USAGE).says(
            "seal",
            &["incompatible recipients", "post-quantum"],
            Some("age1pq1"),
        );
        assert_eq!(dir.listing(), before, "seal {args:?} left files");
    }
    // Several post-quantum keys may share a file.
    new_pq_key(&dir, "pq2");
    let to = ["--to", "pq.pub", "--to", "pq2.pub"];
    let sealed = transform(&dir, "seal", Io::Pipes, b"both", &to);
    for key in ["pq.key", "pq2.key"] {
        assert_eq!(
            unseal_via(&dir, Io::Pipes, &sealed, &["--key", key]),
            b"both"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// SSH and PEM keys, seal-keygen --type and --fingerprint, unseal --inspect (issue 4)

#[path = "cli/ssh_keys.rs"]
mod ssh_keys;

#[path = "cli/signing.rs"]
mod signing;

#[path = "cli/senders.rs"]
mod senders;

// ---------------------------------------------------------------------------------------------
// Issue 16: rough edges of the command line

#[path = "cli/rough_edges.rs"]
mod rough_edges;
