//! The harness of the end-to-end tests: a temporary directory, this crate's binaries run in
//! it, and what they did. Each test target takes it with `mod common;`, and none uses all of
//! it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

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

    pub fn read(&self, name: impl AsRef<Path>) -> Vec<u8> {
        let path = self.path(name);
        fs::read(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"))
    }

    pub fn mkdir(&self, name: impl AsRef<Path>) {
        fs::create_dir_all(self.path(name)).unwrap();
    }

    pub fn symlink(&self, target: &str, name: impl AsRef<Path>) {
        std::os::unix::fs::symlink(target, self.path(name)).unwrap();
    }

    pub fn mkfifo(&self, name: &str) {
        let made = Command::new("mkfifo")
            .arg(self.path(name))
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo {name}");
    }

    pub fn exists(&self, name: impl AsRef<Path>) -> bool {
        self.path(name).symlink_metadata().is_ok()
    }

    pub fn mode(&self, name: impl AsRef<Path>) -> u32 {
        fs::metadata(self.path(name)).unwrap().permissions().mode() & 0o777
    }

    /// Every file, directory and link under the directory (hidden ones too), as relative
    /// paths, kept as bytes so that names that are not UTF-8 compare exactly.
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

    /// The listing without what lies under `prefix`.
    pub fn listing_outside(&self, prefix: &str) -> BTreeSet<PathBuf> {
        let mut names = self.listing();
        names.retain(|p| !p.starts_with(prefix));
        names
    }

    /// One of this crate's binaries, run in this directory.
    pub fn bin(&self, program: &str) -> Cmd {
        let mut cmd = Command::new(bin(program));
        cmd.current_dir(self.0.path());
        Cmd { cmd }
    }

    /// A command line of one of this crate's binaries, split at whitespace.
    pub fn line(&self, line: &str) -> Cmd {
        let mut words = line.split_whitespace();
        let program = words.next().expect("a program");
        let mut cmd = self.bin(program);
        cmd.cmd.args(words);
        cmd
    }

    /// Makes `NAME.key` and `NAME.pub`.
    pub fn new_key(&self, name: &str) {
        self.line(&format!("seal-keygen -o {name}.key")).run().ok();
    }
}

/// A command to run, with no standard input unless given one.
pub struct Cmd {
    pub cmd: Command,
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

    /// Starts the command in the background, its output captured.
    pub fn spawn(mut self) -> std::process::Child {
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
        let output = self
            .cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        Run {
            code: output
                .status
                .code()
                .unwrap_or_else(|| panic!("{what} was killed")),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stdout_bytes: output.stdout,
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
        let stdout = self.stdout.join().unwrap();
        Run {
            code: status
                .code()
                .unwrap_or_else(|| panic!("{} was killed", self.what)),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stdout_bytes: stdout,
            stderr: String::from_utf8(self.stderr.join().unwrap()).expect("stderr is UTF-8"),
            what: self.what,
        }
    }
}

/// A finished command.
pub struct Run {
    pub code: i32,
    /// Standard output as text (bytes that are not UTF-8 replaced), and as it was.
    pub stdout: String,
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
    pub what: String,
}

impl Run {
    pub fn ok(self) -> Run {
        self.fails(0)
    }

    pub fn fails(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "{} exited {} instead of {code}; stderr:\n{}",
            self.what, self.code, self.stderr
        );
        self
    }

    /// Asserts that some stderr line contains every one of `needles`.
    pub fn says(&self, needles: &[&str]) -> &Run {
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
        self.stdout
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
