//! Issue 5: `unseal --allowed-signers` and `--require-signature`, single files on every read
//! path and batches. A refusal is exit code 8, one error line naming the file, and nothing
//! left behind.
//!
//! Signatures by other keys than the one a file names are made in process by the `ssh-key`
//! crate's own signer (SHA-512, as `ssh-keygen -Y sign` signs), or are fixtures that
//! `ssh-keygen` made (`testdata/signatures`); with `ssh-keygen` itself: `tests/interop`.

use std::fs;

use crate::common::*;

/// The ways a single input is read.
const PATHS: &[&str] = &["mapped", "streamed", "stdin", "stdout", "armored"];

/// Re-seals `upload.age` armored, signed by alice (for the armored path).
fn armored_upload(dir: &Dir, plaintext: &[u8]) {
    dir.write("upload", plaintext);
    dir.line("seal upload -a --to server.pub --sign-with alice.key -f")
        .run()
        .ok();
    dir.remove("upload");
    assert!(dir.read("upload.age").starts_with(b"-----BEGIN AGE"));
}

#[test]
fn a_signed_file_opens_on_every_path_and_names_its_signer() {
    let (dir, plaintext) = signed_upload();
    let fingerprint = dir
        .bin("seal-keygen")
        .args(["--fingerprint", "alice.pub"])
        .run()
        .ok()
        .stdout_string();
    let fingerprint = fingerprint.split_whitespace().nth(1).unwrap().to_string();
    for &path in PATHS {
        if path == "armored" {
            armored_upload(&dir, &plaintext);
        }
        for require in [false, true] {
            let mut flags = vec!["--allowed-signers", "allowed"];
            flags.extend(require.then_some("--require-signature"));
            if require && path == "stdout" {
                // Plaintext streamed out cannot be held back until the signature checks
                // out, and reading the file twice would check one copy and release another.
                unseal_signed(&dir, "upload.age", path, &flags)
                    .fails(EXIT_USAGE)
                    .says("unseal", &["cannot hold back plaintext"], Some("-o FILE"));
                continue;
            }
            let run = unseal_signed(&dir, "upload.age", path, &flags).ok();
            let expected = format!(
                "unseal: {}: signed by alice (ssh-ed25519 {fingerprint})",
                shown("upload.age", path)
            );
            assert_eq!(run.stderr_lines(), [expected.as_str()], "{path}");
            let got = match path {
                "stdout" => run.stdout.clone(),
                _ => {
                    let out = dir.read("out");
                    dir.remove("out");
                    out
                }
            };
            assert!(got == plaintext, "{path}: plaintext differs");
        }
    }
}

#[test]
fn signatures_of_another_implementation_over_a_bound_file_are_accepted() {
    let (dir, plaintext) = signed_upload();
    // Alice signs with the ssh-key crate over SHA-512 (as ssh-keygen signs) instead of seal
    // (SHA-256).
    dir.remove("upload.age.sig");
    ssh_key_sign(&dir, "alice.key", "seal", "upload.age");
    assert!(dir.read_string("upload.age.sig").contains("SSH SIGNATURE"));
    let flags = ["--allowed-signers", "allowed", "--require-signature"];
    let run = unseal_signed(&dir, "upload.age", "mapped", &flags).ok();
    assert!(run.stderr.contains("signed by alice"), "{}", run.stderr);
    assert!(dir.read("out") == plaintext);
    // The extra stanza is nothing to the age crate.
    let identity = age_identity(&dir, "server.key");
    let opened = age::decrypt(&identity, &dir.read("upload.age")).unwrap();
    assert!(opened == plaintext);
}

/// Every refusal under `--require-signature`, on every read path: exit 8, one line that says
/// why, nothing written. Without `--require-signature` the same files open with a warning.
#[test]
fn require_signature_refuses_unsigned_unknown_expired_re_signed_and_altered_files() {
    let (dir, plaintext) = signed_upload();
    let sealed = dir.read("upload.age");
    let signature = dir.read("upload.age.sig");

    // Each case: what to do to the directory, and what the refusal says.
    type Setup = Box<dyn Fn(&Dir)>;
    let sign_as = |who: &'static str| -> Setup {
        Box::new(move |dir: &Dir| {
            dir.remove("upload.age.sig");
            ssh_key_sign(dir, &format!("{who}.key"), "seal", "upload.age");
        })
    };
    let with_list = |extra: &'static str| -> Setup {
        Box::new(move |dir: &Dir| {
            let key = dir.read_string("alice.pub");
            dir.write("allowed", format!("alice {extra} {key}"));
        })
    };
    let other_signature = {
        Box::new(move |dir: &Dir| {
            dir.write("other", b"another file");
            dir.remove("upload.age.sig");
            ssh_key_sign(dir, "alice.key", "seal", "other");
            fs::rename(dir.path("other.sig"), dir.path("upload.age.sig")).unwrap();
            dir.remove("other");
        })
    };
    let flipped_signature = {
        let signature = signature.clone();
        Box::new(move |dir: &Dir| {
            let at = signature.len() / 2;
            dir.write("upload.age.sig", other_base64(&signature, at));
        })
    };
    let cases: Vec<(&str, Setup, &str)> = vec![
        (
            "unsigned",
            Box::new(|dir: &Dir| dir.remove("upload.age.sig")),
            "not signed",
        ),
        (
            "unknown signer",
            sign_as("bob"),
            "is not in the allowed signers list",
        ),
        (
            "re-signed by another allowed client",
            sign_as("mallory"),
            "(re-signed)",
        ),
        (
            "expired",
            with_list("valid-before=\"20200101Z\""),
            "expired",
        ),
        (
            "not yet valid",
            with_list("valid-after=\"29991231Z\""),
            "not valid yet",
        ),
        (
            "other namespace",
            with_list("namespaces=\"file,git\""),
            "namespace",
        ),
        (
            "signature of another file",
            other_signature,
            "bad signature",
        ),
        ("altered signature", flipped_signature, "signature"),
    ];
    let allowed = dir.read("allowed");
    for (what, setup, needle) in &cases {
        for &path in PATHS {
            if path == "stdout" {
                continue; // checked below: the mapped path to standard output
            }
            dir.write("upload.age", &sealed);
            dir.write("upload.age.sig", &signature);
            dir.write("allowed", &allowed);
            if path == "armored" {
                armored_upload(&dir, &plaintext);
            }
            setup(&dir);
            let before = dir.listing();
            let flags = ["--allowed-signers", "allowed", "--require-signature"];
            let run = unseal_signed(&dir, "upload.age", path, &flags);
            let name = shown("upload.age", path);
            run.fails(EXIT_SIGNATURE).says(
                "unseal",
                &[&format!("{name}: signature refused: "), needle],
                None,
            );
            assert_eq!(dir.listing(), before, "{what} ({path}): files left behind");

            // Reported, not refused, without --require-signature.
            if path == "mapped" {
                let run = unseal_signed(&dir, "upload.age", path, &flags[..2]).ok();
                let lines = run.stderr_lines();
                let expected = match *what {
                    "unsigned" => "unseal: upload.age: not signed".to_string(),
                    _ => "unseal: warning: upload.age: signature not accepted: ".to_string(),
                };
                assert!(
                    lines.len() == 1 && lines[0].starts_with(&expected),
                    "{what}: {lines:?}"
                );
                assert!(dir.read("out") == plaintext);
                dir.remove("out");
            }
        }
    }

    // To standard output, --require-signature is refused before anything is read.
    dir.write("upload.age", &sealed);
    dir.write("allowed", &allowed);
    sign_as("mallory")(&dir);
    let flags = ["--allowed-signers", "allowed", "--require-signature"];
    let run = unseal_signed(&dir, "upload.age", "stdout", &flags).fails(EXIT_USAGE);
    assert!(run.stdout.is_empty());
}

#[test]
fn an_altered_signed_file_is_refused_and_leaves_nothing() {
    let (dir, _) = signed_upload();
    let sealed = dir.read("upload.age");
    let flags = ["--allowed-signers", "allowed", "--require-signature"];
    // A flipped byte in the header MAC or in the payload: the file itself fails to open,
    // before or after its signature is checked, and nothing is left.
    let mac = sealed.windows(5).position(|w| w == b"\n--- ").unwrap() + 10;
    let cases = [
        (other_base64(&sealed, mac), EXIT_HEADER_MAC),
        (flipped(&sealed, sealed.len() - 100), EXIT_PAYLOAD),
    ];
    for (altered, code) in cases {
        dir.write("upload.age", altered);
        for path in ["mapped", "streamed", "stdin"] {
            let before = dir.listing();
            unseal_signed(&dir, "upload.age", path, &flags).fails(code);
            assert_eq!(dir.listing(), before, "exit {code} ({path})");
        }
    }
}

#[test]
fn signature_flags_are_checked_before_anything_is_read() {
    let (dir, _) = signed_upload();
    let before = dir.listing();
    dir.line("unseal upload.age -k server.key --require-signature")
        .run()
        .fails(EXIT_USAGE);
    dir.write("bad-list", "alice ssh-ed25519 AAAA-not-base64\n");
    dir.line("unseal upload.age -k server.key --allowed-signers bad-list")
        .run()
        .fails(EXIT_USAGE)
        .says("unseal", &["bad-list: allowed signers line 1: "], None);
    dir.write(
        "local-time",
        "alice valid-before=\"20300101\" ssh-ed25519 AAAA\n",
    );
    dir.line("unseal upload.age -k server.key --allowed-signers local-time")
        .run()
        .fails(EXIT_USAGE)
        .says("unseal", &["line 1", "has no Z"], None);
    dir.line("unseal upload.age -k server.key --allowed-signers missing")
        .run()
        .fails(EXIT_IO)
        .says("unseal", &["missing: no such file"], None);
    // Standard input to standard output cannot be held back until the signature checks.
    dir.bin("unseal")
        .args(["-k", "server.key", "--allowed-signers", "allowed"])
        .args(["--signature", "upload.age.sig", "--require-signature"])
        .stdin(dir.read("upload.age"))
        .run()
        .fails(EXIT_USAGE)
        .says("unseal", &["standard output"], Some("-o FILE"));
    dir.remove("bad-list");
    dir.remove("local-time");
    assert_eq!(dir.listing(), before);
}

#[test]
fn a_batch_checks_and_reports_every_files_signer_under_one_policy() {
    let (dir, plaintext) = signed_upload();
    fs::create_dir(dir.path("in")).unwrap();
    fs::rename(dir.path("upload.age"), dir.path("in/a.age")).unwrap();
    fs::rename(dir.path("upload.age.sig"), dir.path("in/a.age.sig")).unwrap();
    // b: signed by bob (not listed); c: unsigned; d: large (mapped), signed by mallory.
    let large = data(2 << 20, 4);
    dir.write("b", b"from bob");
    dir.write("c", b"from nobody");
    dir.write("d", &large);
    dir.line("seal b --to server.pub --sign-with bob.key -o in/b.age")
        .run()
        .ok();
    dir.line("seal c --to server.pub -o in/c.age").run().ok();
    dir.line("seal d --to server.pub --sign-with mallory.key -o in/d.age")
        .run()
        .ok();

    // Reported only: all four open, each with its verdict.
    let run = dir
        .line("unseal in -k server.key -o out --allowed-signers allowed --json")
        .run()
        .ok();
    let report = run.stdout_string();
    let record = |name: &str| {
        report
            .lines()
            .find(|l| l.contains(&format!("\"path\":\"in/{name}\"")))
            .unwrap_or_else(|| panic!("no record of {name}: {report}"))
            .to_string()
    };
    assert!(record("a.age").contains(r#""signature":{"status":"signed","principals":["alice"]"#));
    assert!(record("b.age").contains(r#""signature":{"status":"rejected","error":"signer SHA256:"#));
    assert!(record("c.age").contains(r#""signature":{"status":"unsigned"}"#));
    assert!(record("d.age").contains(r#""principals":["mallory"]"#));
    assert!(record("a.age.sig").contains(r#""outcome":"skipped","reason":"signature""#));
    assert!(run.stderr.contains("unseal: in/a.age: signed by alice ("));
    assert!(run.stderr.contains("unseal: in/c.age: not signed"));
    assert!(run
        .stderr
        .contains("unseal: warning: in/b.age: signature not accepted"));
    assert!(dir.read("out/in/a") == plaintext && dir.read("out/in/d") == large);
    fs::remove_dir_all(dir.path("out")).unwrap();

    // Required: b and c fail with code 8 and leave nothing; a and d open.
    let run = dir
        .line("unseal in -k server.key -o out --allowed-signers allowed --require-signature --json")
        .run()
        .fails(EXIT_BATCH);
    let report = run.stdout_string();
    for name in ["b.age", "c.age"] {
        let line = report
            .lines()
            .find(|l| l.contains(&format!("\"path\":\"in/{name}\"")))
            .unwrap();
        assert!(
            line.contains(r#""outcome":"failed""#) && line.contains(r#""code":8"#),
            "{line}"
        );
    }
    let mut outputs: Vec<String> = fs::read_dir(dir.path("out/in"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    outputs.sort();
    assert_eq!(outputs, ["a", "d"]);

    // --signature names one file's signature, not a batch's.
    dir.line("unseal in -k server.key -o out2 --allowed-signers allowed --signature x.sig")
        .run()
        .fails(EXIT_USAGE);
}

#[test]
fn an_rsa_client_key_signs_and_one_under_2048_bits_is_refused() {
    let dir = with_keys();
    dir.new_key("server");
    let list = format!(
        "carol {}dave {}",
        dir.read_string("rsa2048.pub"),
        dir.read_string("rsa1024.pub")
    );
    dir.write("allowed", list);
    let plaintext = data(100_000, 3);
    dir.write("upload", &plaintext);
    dir.line("seal upload --to server.pub --sign-with rsa2048")
        .run()
        .ok();
    let flags = ["--allowed-signers", "allowed", "--require-signature"];
    let run = unseal_signed(&dir, "upload.age", "mapped", &flags).ok();
    assert!(
        run.stderr
            .starts_with("unseal: upload.age: signed by carol (ssh-rsa SHA256:"),
        "{}",
        run.stderr
    );
    assert!(dir.read("out") == plaintext);
    dir.remove("out");

    // ssh-keygen still signs with a 1024-bit key (this signature, over another file: the key
    // is refused whatever it signed); unseal refuses the key by its size.
    dir.write("upload.age.sig", fixture_signature("rsa1024.seal-sig"));
    let before = dir.listing();
    unseal_signed(&dir, "upload.age", "mapped", &flags)
        .fails(EXIT_SIGNATURE)
        .says("unseal", &["RSA key of 1024 bits is too small"], None);
    assert_eq!(dir.listing(), before);
}

#[test]
fn remove_source_takes_a_checked_signature_with_its_file() {
    let (dir, plaintext) = signed_upload();
    dir.line("unseal upload.age -k server.key --allowed-signers allowed --remove-source")
        .run()
        .ok();
    assert!(dir.read("upload") == plaintext);
    assert!(!dir.path("upload.age").exists() && !dir.path("upload.age.sig").exists());

    // In a batch too.
    fs::create_dir(dir.path("in")).unwrap();
    for name in ["a", "b"] {
        dir.write(format!("in/{name}"), &plaintext);
        dir.bin("seal")
            .args([
                &format!("in/{name}"),
                "--to",
                "server.pub",
                "--sign-with",
                "alice.key",
            ])
            .arg("--remove-source")
            .run()
            .ok();
    }
    dir.line(
        "unseal in/a.age in/b.age -k server.key -o out --allowed-signers allowed --remove-source",
    )
    .run()
    .ok();
    assert!(!dir.path("in/a.age.sig").exists() && !dir.path("in/b.age.sig").exists());
    assert!(dir.read("out/a") == plaintext);
}

#[test]
fn a_batch_seal_signs_every_output_and_a_rerun_leaves_the_signatures_alone() {
    let (dir, _) = signed_upload();
    fs::create_dir(dir.path("in")).unwrap();
    let (small, large) = (data(1000, 1), data((1 << 20) + 5, 2));
    dir.write("in/x", &small);
    dir.write("in/y", &large);
    dir.line("seal in --to server.pub --sign-with mallory.key")
        .run()
        .ok();
    for name in ["x", "y"] {
        let sealed = dir.read(format!("in/{name}.age"));
        let pem = dir.read(format!("in/{name}.age.sig"));
        ssh_key_verifies(&dir.read_string("mallory.pub"), &sealed, &pem).unwrap();
    }
    // Again: the sealed files and their signatures are skipped, never sealed themselves.
    let before = dir.listing();
    let run = dir
        .line("seal in --to server.pub --sign-with mallory.key")
        .run()
        .ok();
    assert!(run.stderr.contains("2 signatures"), "{}", run.stderr);
    assert_eq!(dir.listing(), before);

    let run = dir
        .line("unseal in -k server.key -o out --allowed-signers allowed --require-signature")
        .run()
        .ok();
    assert!(run.stderr.contains("unseal: in/y.age: signed by mallory ("));
    assert!(dir.read("out/in/x") == small && dir.read("out/in/y") == large);

    // A signature in the way stops its file: no sealed file appears without its signature.
    dir.remove("in/x.age");
    let before = dir.listing();
    dir.line("seal in --to server.pub --sign-with mallory.key")
        .run()
        .fails(EXIT_BATCH);
    assert_eq!(dir.listing(), before);
}
