//! Server key rotation (issue 20): `unseal --rewrap-to NEW --key OLD PATHS...` rotates sealed
//! files in place through batch mode; the old key no longer opens them, the new one (and the
//! `age` crate with it) does, and a rerun leaves them alone.

use std::fs;

use crate::common::*;

/// A tree of two sealed files (one larger than the in-memory limit) sealed to `old`, and
/// their plaintexts.
fn sealed_tree(dir: &Dir) -> Vec<(&'static str, Vec<u8>)> {
    let files = vec![
        ("in/a.txt", b"alpha\n".to_vec()),
        ("in/sub/big.bin", data(3 << 20, 5)),
    ];
    for (name, plaintext) in &files {
        dir.write(name, plaintext);
    }
    dir.line("seal -q in --to old.pub").run().ok();
    for (name, _) in &files {
        dir.remove(name);
    }
    files
}

#[test]
fn a_tree_is_rotated_in_place_and_a_rerun_leaves_it_alone() {
    let dir = Dir::new();
    dir.new_key("old");
    dir.new_key("new");
    let files = sealed_tree(&dir);
    let before = dir.read("in/sub/big.bin.age");

    let run = dir
        .line("unseal --rewrap-to new.pub -k old.key in")
        .run()
        .ok();
    assert!(run.stderr.contains("2 rotated"), "{}", run.stderr);
    let after = dir.read("in/sub/big.bin.age");
    assert_eq!(after.len(), before.len());
    assert!(after[after.len() - (3 << 20)..] == before[before.len() - (3 << 20)..]);
    for (name, plaintext) in &files {
        let sealed = format!("{name}.age");
        assert!(dir.exists(format!("{sealed}.rotated")));
        let opened = dir
            .bin("unseal")
            .args([&sealed, "-k", "new.key", "-o", "-"]);
        assert!(opened.run().ok().stdout == *plaintext, "{name}");
        let theirs = age_identity(&dir, "new.key");
        assert!(age::decrypt(&theirs, &dir.read(&sealed)).unwrap() == *plaintext);
        let old = dir
            .bin("unseal")
            .args([&sealed, "-k", "old.key", "-o", "-"]);
        old.run().fails(3);
    }

    // --inspect says when and from which key: the old key's fingerprint.
    let fingerprint = dir.line("seal-keygen --fingerprint old.key").run().ok();
    let fingerprint = fingerprint.stdout_string();
    let fingerprint = fingerprint
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"));
    let run = dir.line("unseal --inspect in/a.txt.age").run().ok();
    let text = run.stdout_string();
    assert!(text.contains("rotated: 1 time\n"), "{text}");
    assert!(
        text.contains(&format!(" from {}\n", fingerprint.unwrap())),
        "{text}"
    );
    let run = dir.line("unseal --inspect in/a.txt.age --json").run().ok();
    assert!(run.stdout_string().contains(r#""rotations":[{"time":"20"#));

    // Again: nothing left for the old key, nothing changed.
    let listing = dir.listing();
    let run = dir
        .line("unseal --rewrap-to new.pub -k old.key in --json")
        .run()
        .ok();
    let lines = run.stdout_string();
    assert_eq!(
        lines.matches(r#""reason":"not-old-key""#).count(),
        2,
        "{lines}"
    );
    assert!(lines.contains(r#""rotated":0"#), "{lines}");
    assert_eq!(dir.listing(), listing);
    assert!(dir.read("in/sub/big.bin.age") == after);
    // Unsealing the tree skips the records, as it skips signatures.
    let run = dir.line("unseal -k new.key in -o out").run().ok();
    assert!(run.stderr.contains("2 unsealed"), "{}", run.stderr);
    assert!(dir.read("out/in/a.txt") == b"alpha\n");
}

#[test]
fn rotation_refuses_what_it_cannot_do_in_place() {
    let dir = Dir::new();
    dir.new_key("old");
    dir.new_key("new");
    sealed_tree(&dir);
    let listing = dir.listing();
    for (line, says) in [
        (
            "unseal --rewrap-to new.pub in",
            "needs the current server key",
        ),
        (
            "unseal --rewrap-to new.pub -k old.key",
            "needs the sealed files",
        ),
        (
            "unseal --rewrap-to new.pub -k old.key in -o out",
            "not with -o",
        ),
        (
            "unseal --rewrap-to new.pub -k old.key in --remove-source",
            "not with --remove-source",
        ),
        ("unseal -k old.key in --drop-bad-signatures", "--rewrap-to"),
    ] {
        let run = dir.line(line).run().fails(2);
        assert!(run.stderr.contains(says), "{line}: {}", run.stderr);
    }
    assert_eq!(dir.listing(), listing);
}

#[test]
fn a_signed_upload_keeps_its_sender_through_rotation_and_a_bad_signature_is_not_rotated() {
    let (dir, plaintext) = signed_upload();
    dir.new_key("new");
    let require = ["--allowed-signers", "allowed", "--require-signature"];
    // A second signed upload whose signature is another file's: refused, left as it is.
    dir.write("other", b"other");
    dir.line("seal other --to server.pub --sign-with alice.key")
        .run()
        .ok();
    fs::copy(dir.path("upload.age.sig"), dir.path("other.age.sig")).unwrap();
    let other = dir.read("other.age");

    let run = dir
        .line("unseal --rewrap-to new.pub -k server.key upload.age other.age")
        .run()
        .fails(7);
    assert!(run.stderr.contains("1 rotated"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("other.age: its signature (NAME.age.sig) does not check"),
        "{}",
        run.stderr
    );
    assert!(dir.read("other.age") == other && !dir.exists("other.age.rotated"));
    // Rotated anyway when asked, its signature removed: it is unsigned from now on.
    let run = dir
        .line("unseal --rewrap-to new.pub -k server.key other.age --drop-bad-signatures --json")
        .run()
        .ok();
    assert!(
        run.stderr
            .contains("other.age: its signature did not check and was removed: bad signature"),
        "{}",
        run.stderr
    );
    assert!(run.stdout_string().contains(r#""status":"rejected""#));
    assert!(!dir.exists("other.age.sig") && dir.exists("other.age.rotated"));
    let run = dir
        .bin("unseal")
        .args(["other.age", "-k", "new.key", "-o", "other.out"])
        .args(require)
        .run()
        .fails(8);
    assert!(run.stderr.contains("not signed"), "{}", run.stderr);

    // The rotated upload: its sender is still alice, single file (every read path) or batch.
    let out = ["-o", "out", "--force"];
    for flags in [&out[..], &[&out[..], &["--no-mmap"]].concat()] {
        let run = dir
            .bin("unseal")
            .args(["upload.age", "-k", "new.key"])
            .args(require)
            .args(flags)
            .run()
            .ok();
        assert!(
            run.stderr.contains("signed by alice"),
            "{flags:?}: {}",
            run.stderr
        );
        assert!(dir.read("out") == plaintext);
    }
    fs::create_dir(dir.path("in")).unwrap();
    for name in ["upload.age", "upload.age.sig", "upload.age.rotated"] {
        fs::copy(dir.path(name), dir.path(format!("in/{name}"))).unwrap();
    }
    let run = dir
        .bin("unseal")
        .args(["in", "-k", "new.key", "-o", "opened", "--json"])
        .args(require)
        .run()
        .ok();
    assert!(
        run.stdout_string().contains(r#""principals":["alice"]"#),
        "{}",
        run.stdout_string()
    );
    // Without its record, the signature covers a header the file no longer carries.
    dir.remove("upload.age.rotated");
    let run = dir
        .bin("unseal")
        .args(["upload.age", "-k", "new.key", "-o", "out2"])
        .args(require)
        .run()
        .fails(8);
    assert!(run.stderr.contains("bad signature"), "{}", run.stderr);
    assert!(!dir.exists("out2"));
}
