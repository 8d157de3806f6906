//! Passphrases (issue 6): passphrase files and work factors, a hostile work factor, files
//! others can read, and prompts on a terminal. (A passphrase given with keys, a work factor
//! without one, a wrong one: the tables of `refusals.rs` and `damaged.rs`.)

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
