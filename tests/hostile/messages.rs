//! Messages: a secret given where a recipient belongs is named by its kind only, never
//! echoed; a file name (chosen by the uploader) cannot forge a line or drive the terminal;
//! and a thread count that would stall the machine is capped with a warning.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use crate::common::*;

/// The first 8-character piece of `secret` that `stderr` shows (case folded), if any.
fn leaked_piece<'a>(stderr: &str, secret: &'a str) -> Option<&'a str> {
    let stderr = stderr.to_ascii_lowercase();
    let secret = secret.as_bytes();
    secret
        .windows(8)
        .map(|w| std::str::from_utf8(w).unwrap())
        .find(|piece| stderr.contains(&piece.to_ascii_lowercase()))
}

/// The secret line of an age identity file (`AGE-SECRET-KEY-...`).
fn secret_line(dir: &Dir, key: &str) -> String {
    let text = String::from_utf8(dir.read(key)).unwrap();
    let line = text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-"));
    line.expect("a secret key line").to_string()
}

/// Runs `seal plain ARGS` and checks that it refuses with exit 2, names the kind of secret,
/// and shows no piece of `secret_body`.
fn refuses_without_echo(dir: &Dir, args: &[&str], secret_body: &str, kind: &str) {
    let run = dir.bin("seal").arg("plain").args(args).run().fails(2);
    if let Some(piece) = leaked_piece(&run.stderr, secret_body) {
        panic!(
            "{args:.20?}: stderr shows {piece:?} of the secret:\n{}",
            run.stderr
        );
    }
    run.mentions(&["seal: error: ", kind, "not a recipient"]);
    assert!(
        run.stderr.contains("seal: hint: "),
        "{args:.20?}: no hint:\n{}",
        run.stderr
    );
    assert!(!dir.exists("plain.age"), "{args:.20?} left an output");
}

#[test]
fn a_secret_key_given_as_a_recipient_is_named_by_its_kind_and_never_shown() {
    let dir = Dir::new();
    dir.write("plain", "hello");
    dir.new_key("server");
    let secret = secret_line(&dir, "server.key");
    let body = &secret["AGE-SECRET-KEY-1".len()..];
    let lower = secret.to_lowercase();
    let kind = "secret key (AGE-SECRET-KEY-1...)";
    refuses_without_echo(&dir, &["--to", &secret], body, kind);
    refuses_without_echo(&dir, &["--to", &lower], body, kind);
    refuses_without_echo(&dir, &["-r", &secret], body, kind);
    refuses_without_echo(&dir, &["-R", &secret], body, kind);
    refuses_without_echo(&dir, &["--to", "server.key"], body, kind);
    refuses_without_echo(&dir, &["-R", "server.key"], body, kind);
    // A recipients file with the secret on a later line: the line is named, not shown.
    let public = String::from_utf8(dir.read("server.pub")).unwrap();
    dir.write("team.pub", format!("# team\n{public}{secret}\n"));
    refuses_without_echo(&dir, &["--to", "team.pub"], body, kind);
    dir.bin("seal")
        .args(["plain", "--to", "team.pub"])
        .run()
        .fails(2)
        .mentions(&["team.pub: line 3: "]);

    dir.line("seal-keygen --pq -o pq.key").run().ok();
    let pq = secret_line(&dir, "pq.key");
    let pq_body = &pq["AGE-SECRET-KEY-PQ-1".len()..];
    let pq_kind = "post-quantum secret key (AGE-SECRET-KEY-PQ-1...)";
    refuses_without_echo(&dir, &["--to", &pq], pq_body, pq_kind);
    refuses_without_echo(&dir, &["-r", &pq], pq_body, pq_kind);

    let plugin = "AGE-PLUGIN-YUBIKEY-1QQQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS";
    let plugin_body = &plugin["AGE-PLUGIN-YUBIKEY-1".len()..];
    refuses_without_echo(&dir, &["--to", plugin], plugin_body, "plugin identity");
}

#[test]
fn an_openssh_private_key_given_as_a_recipient_is_named_by_its_kind_and_never_shown() {
    let dir = Dir::new();
    dir.write("plain", "hello");
    dir.line("seal-keygen -t ed25519 -o id").run().ok();
    let block = String::from_utf8(dir.read("id")).unwrap();
    assert!(block.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    let body: String = block.lines().filter(|l| !l.starts_with("-----")).collect();
    let kind = "private key (-----BEGIN OPENSSH PRIVATE KEY-----)";
    refuses_without_echo(&dir, &[&format!("--to={block}")], &body, kind);
    refuses_without_echo(&dir, &[&format!("--recipient={block}")], &body, kind);
    refuses_without_echo(&dir, &["--to", "id"], &body, kind);
    refuses_without_echo(&dir, &["-R", "id"], &body, kind);
    // As a separate argument it starts with a dash, so the command-line parser refuses it
    // (exit 2) before seal sees it: its message names the kind too.
    let run = dir
        .bin("seal")
        .args(["plain", "--to", &block])
        .run()
        .fails(2);
    if let Some(piece) = leaked_piece(&run.stderr, &body) {
        panic!("stderr shows {piece:?} of the secret:\n{}", run.stderr);
    }
    run.mentions(&[kind, "not shown"]);
    // One line of it, pasted alone.
    let line = block.lines().nth(1).unwrap();
    refuses_without_echo(&dir, &["-r", line], line, "private key");
}

/// A server key and `plain.age` sealed to it; returns the key's secret line.
fn sealed_to_server(dir: &Dir) -> String {
    dir.new_key("server");
    dir.write("plain", "hello");
    dir.line("seal plain --to server.pub").run().ok();
    secret_line(dir, "server.key")
}

#[test]
fn a_secret_key_given_to_key_instead_of_its_file_is_never_shown() {
    let dir = Dir::new();
    let secret = sealed_to_server(&dir);
    let body = &secret["AGE-SECRET-KEY-1".len()..];
    let run = dir
        .bin("unseal")
        .args(["plain.age", "--key", &secret, "-o", "out"])
        .run()
        .fails(2);
    if let Some(piece) = leaked_piece(&run.stderr, body) {
        panic!("stderr shows {piece:?} of the secret:\n{}", run.stderr);
    }
    run.mentions(&["unseal: error: --key: ", "secret key (AGE-SECRET-KEY-1...)"]);
    assert!(!dir.exists("out"));
}

#[test]
fn secrets_in_an_allowed_signers_list_or_a_passphrase_argument_are_never_shown() {
    let dir = Dir::new();
    let secret = sealed_to_server(&dir);
    let body = &secret["AGE-SECRET-KEY-1".len()..];
    // A secret pasted into the list where a key type belongs.
    dir.write("signers", format!("alice {secret} AAAA\n"));
    let run = dir
        .line("unseal plain.age --key server.key -o out --allowed-signers signers")
        .run()
        .fails(2);
    if let Some(piece) = leaked_piece(&run.stderr, body) {
        panic!("stderr shows {piece:?} of the secret:\n{}", run.stderr);
    }
    run.mentions(&["signers: allowed signers line 1: ", "secret key"]);
    // A passphrase typed where its file belongs is not repeated.
    let run = dir
        .bin("unseal")
        .args([
            "plain.age",
            "-o",
            "out",
            "--passphrase-file",
            "hunter2-passphrase",
        ])
        .run()
        .fails(1);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    run.mentions(&["--passphrase-file: no such file or directory"]);
    assert!(!dir.exists("out"));
}

/// Names that try to forge a line, clear the screen, ring the bell, or are not UTF-8.
fn hostile_names() -> Vec<(Vec<u8>, &'static str)> {
    vec![
        (
            b"a\nunseal: all files verified.age".to_vec(),
            r"a\nunseal: all files verified.age",
        ),
        (b"\x1b[2J\x1b[H.age".to_vec(), r"\x1b[2J\x1b[H.age"),
        (b"cr\r\x07\x7f.age".to_vec(), r"cr\r\x07\x7f.age"),
        (
            "c1 \u{9b}31m é.age".as_bytes().to_vec(),
            r"c1 \x9b31m é.age",
        ),
        (b"raw \xff\xfe.age".to_vec(), r"raw \xff\xfe.age"),
    ]
}

/// No stderr line that does not start with `program: `, and no control character left.
fn only_own_lines(program: &str, stderr: &str) {
    let prefix = format!("{program}: ");
    for line in stderr.lines() {
        assert!(
            line.starts_with(&prefix),
            "a line not from {program}: {line:?} in:\n{stderr}"
        );
        let control = line
            .chars()
            .find(|c| c.is_control() || ('\u{80}'..='\u{9f}').contains(c));
        assert_eq!(control, None, "a control character in {line:?}");
    }
}

#[test]
fn file_names_cannot_forge_a_line_or_reach_the_terminal_raw() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.mkdir("in");
    for (name, _) in hostile_names() {
        dir.write(
            std::path::Path::new("in").join(OsStr::from_bytes(&name)),
            "not an age file",
        );
    }
    let run = dir
        .line("unseal in --key server.key -o out --json")
        .run()
        .fails(7);
    only_own_lines("unseal", &run.stderr);
    for (name, escaped) in hostile_names() {
        run.mentions(&["unseal: error: in/", escaped, ": not an age file"]);
        // The report keeps the exact name: JSON escapes it, and bytes that are not UTF-8
        // come in base64 too.
        let record = run
            .json()
            .into_iter()
            .find(|r| match r["path_base64"].as_str() {
                Some(b64) => b64 == base64_of(&[b"in/", &name[..]].concat()),
                None => {
                    r["path"].as_str().map(str::as_bytes) == Some(&[b"in/", &name[..]].concat())
                }
            });
        assert!(record.is_some(), "no record with the exact name {name:?}");
    }

    // A single file: the name in the message is escaped the same way.
    for (name, escaped) in hostile_names() {
        let run = dir
            .bin("unseal")
            .arg(OsStr::from_bytes(&name))
            .args(["--key", "server.key", "-o", "single.out"])
            .run()
            .fails(1);
        only_own_lines("unseal", &run.stderr);
        run.mentions(&["unseal: error: ", escaped, ": no such file or directory"]);
        let run = dir
            .bin("seal")
            .arg(OsStr::from_bytes(&name))
            .args(["--to", "server.pub"])
            .run()
            .fails(1);
        only_own_lines("seal", &run.stderr);
        run.mentions(&["seal: error: ", escaped]);
    }
}

/// Standard base64 with padding, enough for the test's names.
fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn a_huge_thread_count_is_capped_with_a_warning_and_finishes_quickly() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("plain", data(300_000, 1));
    for (program, args) in [
        ("seal", ["plain", "--to", "server.pub"]),
        ("unseal", ["seal.out", "--key", "server.key"]),
    ] {
        let started = Instant::now();
        let mut child = dir
            .bin(program)
            .args(args)
            .args(["-o", &format!("{program}.out"), "--threads", "100000"])
            .spawn();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("{program} --threads 100000 still runs after a minute");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(status.success(), "{program}: {status}; stderr:\n{stderr}");
        let warning = stderr.lines().find(|l| {
            l.starts_with(&format!(
                "{program}: warning: --threads 100000 is more than"
            ))
        });
        let warning = warning.unwrap_or_else(|| panic!("{program}: no warning in:\n{stderr}"));
        assert!(warning.contains("; using "), "{warning}");
    }
    assert_eq!(dir.read("unseal.out"), data(300_000, 1));
}
