//! The harness of the end-to-end tests: a temporary directory, programs run in it, and what
//! they did. Each test target takes it with `mod common;` (`tests/cli/main.rs` by its path),
//! and none uses all of it.
//!
//! Two tiers share it. `cargo test` runs every target that needs nothing but this crate's
//! binaries; `cargo test --test interop` runs the tests that drive programs from outside
//! (the Go `age` CLI, `ssh-keygen`, `openssl`), which it finds with [`program`], failing
//! loudly, never skipping, when one is missing.
// Each target uses a part: the rest, and its re-export below, are unused there.
#![allow(dead_code, unused_imports)]

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

pub mod age_crate;
pub mod age_file;
pub mod keys;
pub mod plugins;
pub mod refusals;
pub mod sealing;
pub mod signers;
pub mod terminal;

pub use age_crate::*;
pub use age_file::*;
pub use keys::*;
pub use plugins::*;
pub use refusals::*;
pub use sealing::*;
pub use signers::*;

// The documented exit codes (src/cli/failure.rs).
pub const EXIT_IO: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_NO_MATCH: i32 = 3;
pub const EXIT_HEADER: i32 = 4;
pub const EXIT_HEADER_MAC: i32 = 5;
pub const EXIT_PAYLOAD: i32 = 6;
pub const EXIT_BATCH: i32 = 7;
pub const EXIT_SIGNATURE: i32 = 8;
pub const EXIT_INTERRUPTED: i32 = 130;

/// The path of one of this crate's binaries: this build's, or those in `SEAL_TEST_BIN_DIR`
/// when it is set (to show that an attack test fails on an older build).
pub fn bin(program: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("SEAL_TEST_BIN_DIR") {
        return Path::new(&dir).join(program);
    }
    PathBuf::from(match program {
        "seal" => env!("CARGO_BIN_EXE_seal"),
        "unseal" => env!("CARGO_BIN_EXE_unseal"),
        "seal-keygen" => env!("CARGO_BIN_EXE_seal-keygen"),
        _ => panic!("no binary {program}"),
    })
}

/// The Debian package of each outside program that the interop tests run.
const PACKAGES: &[(&str, &str)] = &[
    ("age", "age"),
    ("age-keygen", "age"),
    ("ssh-keygen", "openssh-client"),
    ("openssl", "openssl"),
];

/// The path of an outside program on `PATH`. Fails the test, naming the package to install,
/// when it is missing: a test that needs it never skips.
pub fn program(name: &str) -> PathBuf {
    let package = PACKAGES
        .iter()
        .find_map(|&(program, package)| (program == name).then_some(package))
        .unwrap_or_else(|| panic!("`{name}` is not a program the tests know the package of"));
    let executable = |path: &PathBuf| {
        let meta = path.metadata();
        meta.is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(executable)
        })
        .unwrap_or_else(|| {
            panic!("`{name}` is not on PATH: the interop tests run it (apt-get install {package})")
        })
}

/// Sends `signal` (a name: `TERM`, `INT`, `HUP`) to a running child.
pub fn send_signal(child: &std::process::Child, signal: &str) {
    let number = match signal {
        "TERM" => libc::SIGTERM,
        "INT" => libc::SIGINT,
        "HUP" => libc::SIGHUP,
        _ => panic!("no signal {signal}"),
    };
    let pid = libc::pid_t::try_from(child.id()).expect("a process id");
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let sent = unsafe { libc::kill(pid, number) };
    assert_eq!(
        sent,
        0,
        "kill -{signal} {pid}: {}",
        std::io::Error::last_os_error()
    );
}

/// A temporary directory that commands run in; paths are relative to it.
pub struct Dir(pub TempDir);

impl Dir {
    pub fn new() -> Dir {
        let dir = tempfile::Builder::new().prefix("seal-test.").tempdir();
        Dir(dir.expect("create a temporary directory"))
    }

    pub fn path(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.path().join(name)
    }

    pub fn write(&self, name: impl AsRef<Path>, contents: impl AsRef<[u8]>) {
        let path = self.path(&name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
    }

    /// Writes a file readable by its owner only, as key files should be.
    pub fn write_private(&self, name: impl AsRef<Path>, contents: impl AsRef<[u8]>) {
        self.write(&name, contents);
        self.chmod(name, 0o600);
    }

    pub fn chmod(&self, name: impl AsRef<Path>, mode: u32) {
        fs::set_permissions(self.path(name), fs::Permissions::from_mode(mode)).unwrap();
    }

    pub fn read(&self, name: impl AsRef<Path>) -> Vec<u8> {
        let path = self.path(name);
        fs::read(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"))
    }

    pub fn read_string(&self, name: impl AsRef<Path>) -> String {
        let path = self.path(name);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"))
    }

    pub fn remove(&self, name: impl AsRef<Path>) {
        let path = self.path(name);
        fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {path:?}: {e}"));
    }

    pub fn mkdir(&self, name: impl AsRef<Path>) {
        fs::create_dir_all(self.path(name)).unwrap();
    }

    pub fn symlink(&self, target: &str, name: impl AsRef<Path>) {
        std::os::unix::fs::symlink(target, self.path(name)).unwrap();
    }

    pub fn mkfifo(&self, name: &str) {
        use rustix::fs::{mknodat, FileType, Mode, CWD};
        let path = self.path(name);
        mknodat(CWD, &path, FileType::Fifo, Mode::from_raw_mode(0o644), 0)
            .unwrap_or_else(|e| panic!("mkfifo {path:?}: {e}"));
    }

    pub fn exists(&self, name: impl AsRef<Path>) -> bool {
        self.path(name).symlink_metadata().is_ok()
    }

    pub fn mode(&self, name: impl AsRef<Path>) -> u32 {
        fs::metadata(self.path(name)).unwrap().permissions().mode() & 0o777
    }

    /// Every file, directory and link under the directory (hidden ones, such as temporary
    /// files, too), as relative paths, kept as bytes so that names that are not UTF-8
    /// compare exactly.
    pub fn listing(&self) -> BTreeSet<PathBuf> {
        let mut names = BTreeSet::new();
        let mut dirs = vec![PathBuf::new()];
        while let Some(dir) = dirs.pop() {
            for entry in fs::read_dir(self.path(&dir)).unwrap() {
                let entry = entry.unwrap();
                let path = dir.join(entry.file_name());
                if entry.file_type().unwrap().is_dir() {
                    dirs.push(path.clone());
                }
                names.insert(path);
            }
        }
        names
    }

    /// The temporary files (`.seal-partial`) anywhere under the directory.
    pub fn partial_files(&self) -> Vec<PathBuf> {
        let partial = |p: &PathBuf| p.as_os_str().as_bytes().ends_with(b".seal-partial");
        self.listing().into_iter().filter(partial).collect()
    }

    /// The listing without what lies under `prefix`.
    pub fn listing_outside(&self, prefix: &str) -> BTreeSet<PathBuf> {
        let mut names = self.listing();
        names.retain(|p| !p.starts_with(prefix));
        names
    }

    /// Any program, run in this directory.
    pub fn cmd(&self, program: impl AsRef<OsStr>) -> Cmd {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.0.path());
        Cmd { cmd, stdin: None }
    }

    /// One of this crate's binaries (`seal`, `unseal`, `seal-keygen`), run in this directory.
    pub fn bin(&self, program: &str) -> Cmd {
        self.cmd(bin(program))
    }

    /// A command line of one of this crate's binaries, split at whitespace.
    pub fn line(&self, line: &str) -> Cmd {
        let mut words = line.split_whitespace();
        self.bin(words.next().expect("a program")).args(words)
    }

    /// Makes `NAME.key` and `NAME.pub` with `seal-keygen`; returns the `age1...` recipient.
    pub fn new_key(&self, name: &str) -> String {
        let private = format!("{name}.key");
        self.bin("seal-keygen").args(["-o", &private]).run().ok();
        self.read_string(format!("{name}.pub"))
            .trim_end()
            .to_string()
    }

    /// Makes `NAME.key` and `NAME.pub` with `seal-keygen --pq`; returns the `age1pq1...`
    /// recipient.
    pub fn new_pq_key(&self, name: &str) -> String {
        let private = format!("{name}.key");
        self.bin("seal-keygen")
            .args(["--pq", "-o", &private])
            .run()
            .ok();
        self.read_string(format!("{name}.pub"))
            .trim_end()
            .to_string()
    }

    /// `seal-keygen --type KIND -C test@seal -o KEY` (RSA at 2048 bits, the quickest):
    /// an OpenSSH key pair, `KEY` and `KEY` with `.pub` for `.key`.
    pub fn new_ssh_key(&self, kind: &str, key: &str) {
        let bits: &[&str] = if kind == "rsa" {
            &["--bits", "2048"]
        } else {
            &[]
        };
        self.bin("seal-keygen")
            .args(["--type", kind, "-C", "test@seal", "-o", key])
            .args(bits)
            .run()
            .ok();
    }
}

/// `names` as a directory listing.
pub fn listing(names: &[&str]) -> BTreeSet<PathBuf> {
    names.iter().map(PathBuf::from).collect()
}

/// A command to run, with optional standard input (otherwise `/dev/null`).
pub struct Cmd {
    pub cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.cmd.arg(arg);
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Cmd {
        self.cmd.args(args);
        self
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(input.into());
        self
    }

    /// Starts the command in the background, its output captured.
    pub fn spawn(mut self) -> std::process::Child {
        assert!(self.stdin.is_none(), "a background command reads no input");
        self.cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", self.cmd))
    }

    /// Starts the command in the background, its standard output and error drained by
    /// threads (so that a long report never blocks it on a full pipe).
    pub fn start(self) -> Background {
        let what = format!("{:?}", self.cmd);
        let mut child = self.spawn();
        let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                pipe.read_to_end(&mut bytes).unwrap();
                bytes
            })
        };
        let stdout = drain(Box::new(child.stdout.take().unwrap()));
        let stderr = drain(Box::new(child.stderr.take().unwrap()));
        Background {
            child,
            stdout,
            stderr,
            what,
        }
    }

    pub fn run(mut self) -> Run {
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

/// A command running in the background ([`Cmd::start`]).
pub struct Background {
    pub child: std::process::Child,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
    what: String,
}

impl Background {
    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for it to finish.
    pub fn wait(mut self) -> Run {
        let status = self.child.wait().unwrap();
        Run {
            code: status
                .code()
                .unwrap_or_else(|| panic!("{} was killed", self.what)),
            stdout: self.stdout.join().unwrap(),
            stderr: String::from_utf8(self.stderr.join().unwrap()).expect("stderr is UTF-8"),
            what: self.what,
        }
    }
}

/// A finished command.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub what: String,
}

impl Run {
    /// Asserts success.
    pub fn ok(self) -> Run {
        self.fails(0)
    }

    /// Asserts exit code `code`.
    pub fn fails(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "{} exited {} instead of {code}; stderr:\n{}",
            self.what, self.code, self.stderr
        );
        self
    }

    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    pub fn stdout_string(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    /// Asserts that stderr is exactly one `program: error: ...` line containing each of
    /// `needles`, then, if `hint` is given, one `program: hint: ...` line containing it.
    pub fn says(self, program: &str, needles: &[&str], hint: Option<&str>) -> Run {
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

    /// Asserts that some stderr line contains every one of `needles` (among other lines,
    /// as a batch prints them).
    pub fn mentions(&self, needles: &[&str]) -> &Run {
        let found = self
            .stderr
            .lines()
            .any(|line| needles.iter().all(|needle| line.contains(needle)));
        assert!(
            found,
            "{}: no line with {needles:?} in:\n{}",
            self.what, self.stderr
        );
        self
    }

    /// The `--json` report, one parsed object per line.
    pub fn json(&self) -> Vec<serde_json::Value> {
        String::from_utf8_lossy(&self.stdout)
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}"))
            })
            .collect()
    }

    /// The counts on the summary line: (done, skipped, failed).
    pub fn summary(&self, program: &str, done_word: &str) -> (u64, u64, u64) {
        let prefix = format!("{program}: ");
        let line = self
            .stderr
            .lines()
            .rfind(|line| line.starts_with(&prefix) && line.contains(" skipped"))
            .unwrap_or_else(|| panic!("{}: no summary in:\n{}", self.what, self.stderr));
        let number = |word: &str| -> u64 {
            let before = &line[..line.find(word).expect(word)];
            let digits = before.trim_end().rsplit([' ', ',']).next().unwrap();
            digits
                .parse()
                .unwrap_or_else(|_| panic!("{word} in {line}"))
        };
        (number(done_word), number(" skipped"), number(" failed"))
    }
}

/// `len` pseudo-random bytes (xorshift64*), different for each `seed`.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}
