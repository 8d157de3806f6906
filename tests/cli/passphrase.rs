//! Passphrases (issue 6): passphrase files and work factors, prompts on a terminal, and a
//! passphrase never mixed with keys.

use std::time::{Duration, Instant};

use crate::common::terminal::on_terminal;
use crate::common::*;

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
    unseal_refuses(
        &dir,
        &bad_files(&keys, (EXIT_NO_MATCH, "wrong passphrase"), cases),
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
    unseal_refuses(
        &dir,
        &bad_files(WITH_KEY, (EXIT_HEADER, "must be the only stanza"), cases),
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
        unseal_refuses(
            &dir,
            &bad_files(&keys, (EXIT_HEADER, "above the limit of 2^22"), cases),
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

/// `seal --passphrase` and `unseal` of a passphrase file ask on the terminal, as a person
/// types: seal twice, unseal once and only because the file needs it. The `age` crate reads
/// what seal wrote, and unseal what it wrote (the Go age CLI: tests/interop/go_age.rs).
#[test]
fn passphrases_typed_on_a_terminal_seal_and_unseal_and_the_age_crate_agrees() {
    let dir = Dir::new();
    let plaintext = data(CHUNK + 100, 31);
    dir.write("plain", &plaintext);

    let line = "seal plain --passphrase --work-factor 12 -o ours.age";
    let run = on_terminal(dir.line(line), "hunter2\nhunter2\n").ok();
    let shown = run.stdout_string();
    assert!(
        shown.contains("Enter passphrase: ") && shown.contains("Confirm passphrase: "),
        "{shown}"
    );
    let mut identity = age::scrypt::Identity::new(age_passphrase("hunter2"));
    identity.set_max_work_factor(12);
    let opened = age::decrypt(&identity, &dir.read("ours.age")).unwrap();
    assert!(opened == plaintext, "the age crate opens what seal sealed");
    let run = on_terminal(dir.line("unseal ours.age -o opened"), "hunter2\n").ok();
    assert!(run.stdout_string().contains("Enter passphrase: "));
    assert!(dir.read("opened") == plaintext);
    dir.remove("opened");

    let mut recipient = age::scrypt::Recipient::new(age_passphrase("hunter2"));
    recipient.set_work_factor(12);
    dir.write("theirs.age", age::encrypt(&recipient, &plaintext).unwrap());
    on_terminal(dir.line("unseal theirs.age -o opened"), "hunter2\n").ok();
    assert!(
        dir.read("opened") == plaintext,
        "unseal opens what age sealed"
    );
    dir.remove("opened");

    // A wrong passphrase, and two that differ when sealing: nothing is written.
    let before = dir.listing();
    let run = on_terminal(dir.line("unseal theirs.age -o opened"), "hunter3\n");
    let run = run.fails(EXIT_NO_MATCH);
    assert!(run
        .stdout_string()
        .contains("unseal: error: theirs.age: wrong passphrase"));
    let line = "seal plain --passphrase -o again.age";
    let run = on_terminal(dir.line(line), "hunter2\nhunter3\n").fails(EXIT_USAGE);
    assert!(run
        .stdout_string()
        .contains("seal: error: the passphrases do not match"));
    assert_eq!(dir.listing(), before);
}
