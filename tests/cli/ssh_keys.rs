//! Issue 4: SSH and PEM keys as recipients and identities, `seal-keygen --type`, `-y` and
//! `--fingerprint`, `unseal --inspect`.
//!
//! The fixture keys are `testdata/keys` (`tests/common/keys.rs` says how they were made).
//! Interop is checked in process: the `age` crate, with its own OpenSSH key parser, opens what
//! seal seals to SSH keys and seals what unseal opens, and fingerprints and public keys are
//! compared with what `ssh-keygen` printed for the fixtures (`testdata/ssh-keygen`). The
//! same against the Go `age` CLI, `ssh-keygen` and `openssl` run: `tests/interop`.

use std::str::FromStr;

use crate::common::terminal::on_terminal;
use crate::common::*;

#[test]
fn every_ssh_and_pem_key_pair_round_trips() {
    let dir = with_keys();
    for (seed, (public, private)) in PAIRS.iter().enumerate() {
        for &len in &[0, 1, CHUNK + 1] {
            let plaintext = data(len, 300 + seed as u64);
            let sealed = seal_ssh(&dir, &plaintext, &["--to", public]);
            let kind = if public.contains("ed25519") {
                "ssh-ed25519"
            } else {
                "ssh-rsa"
            };
            let start = format!("age-encryption.org/v1\n-> {kind} ");
            assert!(sealed.starts_with(start.as_bytes()), "{public}");
            let opened = unseal_ssh(&dir, &sealed, &["--key", private]);
            assert!(opened == plaintext, "{public} -> {private}, {len} bytes");
        }
    }
    // A literal authorized_keys line, with -r or --to.
    let line = first_line(&dir, "ed25519.pub");
    let plaintext = data(999, 9);
    for flag in ["-r", "--to"] {
        let sealed = seal_ssh(&dir, &plaintext, &[flag, &line]);
        assert!(unseal_ssh(&dir, &sealed, &["--key", "ed25519"]) == plaintext);
    }
}

#[test]
fn a_file_for_several_key_types_opens_with_each_and_stanzas_not_ours_are_skipped() {
    let dir = with_keys();
    let age = dir.new_key("server");
    let plaintext = data(2 * CHUNK + 3, 4);
    let sealed = seal_ssh(
        &dir,
        &plaintext,
        &[
            "--to",
            "rsa2048.pub",
            "--to",
            "ed25519.pub",
            "-r",
            &age,
            "--to",
            "pkcs8.spki.pem",
        ],
    );
    for key in ["rsa2048", "ed25519", "server.key", "pkcs8.pem"] {
        assert!(
            unseal_ssh(&dir, &sealed, &["--key", key]) == plaintext,
            "{key}"
        );
    }
    // A key of each type that is not a recipient: every stanza is someone else's.
    for key in ["rsa4096", "pkcs1.pem", "ed25519-pass"] {
        let before = dir.listing();
        dir.write("in.age", &sealed);
        dir.bin("unseal")
            .args(["in.age", "-o", "out", "--key", key])
            .args(["--key-passphrase-file", "passphrase.txt"])
            .run()
            .fails(EXIT_NO_MATCH)
            .says("unseal", &["in.age: no key matches (tried 1)"], None);
        dir.remove("in.age");
        assert_eq!(dir.listing(), before, "{key}");
    }
}

#[test]
fn protected_openssh_keys_open_with_the_passphrase_from_a_file_or_the_environment() {
    let dir = with_keys();
    let plaintext = data(5000, 5);
    for name in ["ed25519-pass", "rsa2048-pass"] {
        let sealed = seal_ssh(&dir, &plaintext, &["--to", &format!("{name}.pub")]);
        let from_file = ["--key", name, "--key-passphrase-file", "passphrase.txt"];
        assert!(unseal_ssh(&dir, &sealed, &from_file) == plaintext, "{name}");

        dir.write("in.age", &sealed);
        let from_env = dir.bin("unseal").args([
            "in.age",
            "-o",
            "out",
            "--key",
            name,
            "--key-passphrase-env",
            "SEAL_TEST_PASS",
        ]);
        let mut from_env = from_env;
        from_env.cmd.env("SEAL_TEST_PASS", "correct horse");
        from_env.run().ok();
        assert!(dir.read("out") == plaintext);
        dir.remove("out");

        // Failures: exit 2, one line that names the key file, never the passphrase, no output.
        let before = dir.listing();
        let mut wrong = dir
            .bin("unseal")
            .args(["in.age", "-o", "out", "--key", name]);
        wrong = wrong.args(["--key-passphrase-env", "SEAL_TEST_PASS"]);
        wrong.cmd.env("SEAL_TEST_PASS", "incorrect horse");
        let run = wrong.run().fails(EXIT_USAGE);
        let run = run.says("unseal", &[&format!("{name}: wrong passphrase")], None);
        assert!(!run.stderr.contains("horse"), "{}", run.stderr);
        dir.bin("unseal")
            .args(["in.age", "-o", "out", "--key", name])
            .run()
            .fails(EXIT_USAGE)
            .says(
                "unseal",
                &[name, "passphrase-protected"],
                Some("--key-passphrase-file"),
            );
        dir.bin("unseal")
            .args(["in.age", "-o", "out", "--key", name])
            .args(["--key-passphrase-env", "SEAL_TEST_UNSET_VARIABLE"])
            .run()
            .fails(EXIT_USAGE)
            .says("unseal", &["SEAL_TEST_UNSET_VARIABLE is not set"], None);
        assert_eq!(dir.listing(), before, "{name}");
        dir.remove("in.age");
    }
}

#[test]
fn small_rsa_keys_other_key_types_and_damaged_files_are_refused_clearly() {
    let dir = with_keys();
    dir.write("plain", "hello\n");
    let sealed = seal_ssh(&dir, b"hello\n", &["--to", "ed25519.pub"]);
    dir.write("in.age", &sealed);
    refuses_all(
        &dir,
        &[
            ("seal plain --to rsa1024.pub", EXIT_USAGE, Says::Error(&["rsa1024.pub: line 1: the RSA key has 1024 bits: keys under 2048 bits are refused"])),
            ("unseal in.age -o out --key rsa1024", EXIT_USAGE, Says::Error(&["rsa1024: the RSA key has 1024 bits: keys under 2048 bits are refused"])),
            ("unseal in.age -o out --key pkcs1-1024.pem", EXIT_USAGE, Says::Error(&["has 1024 bits: keys under 2048 bits are refused"])),
            ("seal plain --to pkcs1-1024.spki.pem", EXIT_USAGE, Says::Error(&["pkcs1-1024.spki.pem: the RSA key has 1024 bits"])),
            ("unseal in.age -o out --key truncated.pem", EXIT_USAGE, Says::Error(&["truncated.pem: damaged PEM file"])),
            ("unseal in.age -o out --key ecdsa", EXIT_USAGE, Says::Error(&["ecdsa: ecdsa-sha2-nistp256 keys are not supported"])),
            ("seal plain --to ecdsa.pub", EXIT_USAGE, Says::Error(&["ecdsa-sha2-nistp256 keys are not supported"])),
            ("unseal in.age -o out --key plain", EXIT_USAGE, Says::Error(&["plain: unknown key format; accepted: age identity files"])),
            ("seal plain --to plain", EXIT_USAGE, Says::Error(&["plain: unknown key format; accepted: age recipients (age1...), ssh-rsa and ssh-ed25519"])),
            // Keys of the wrong kind for the flag get a hint.
            ("seal plain --to rsa2048", EXIT_USAGE, Says::Hint(&["this is a private key (-----BEGIN OPENSSH PRIVATE KEY-----), not a recipient"], "give --to the public key file")),
            ("seal plain --to pkcs1.pem", EXIT_USAGE, Says::Hint(&["this is a private key (-----BEGIN RSA PRIVATE KEY-----), not a recipient"], "give --to the public key file")),
            ("unseal in.age -o out --key rsa2048.pub", EXIT_USAGE, Says::Hint(&["a public key, not a private key"], "--key needs the private key file")),
            ("unseal in.age -o out --key pkcs8.spki.pem", EXIT_USAGE, Says::Hint(&["a public key, not a private key"], "--key needs the private key file")),
        ],
    );
}

#[test]
fn inspect_shows_stanzas_tags_and_sizes_without_a_key_and_writes_nothing() {
    let dir = with_keys();
    let age_recipient = dir.new_key("server");
    let plaintext = data(3 * CHUNK + 10, 12);
    let sealed = seal_ssh(
        &dir,
        &plaintext,
        &[
            "--to",
            "rsa2048.pub",
            "--to",
            "ed25519.pub",
            "-r",
            &age_recipient,
        ],
    );
    dir.write("in.age", &sealed);
    let header_len = Layout::of(&sealed).header_len;
    let before = dir.listing();

    let text = dir
        .line("unseal --inspect in.age")
        .run()
        .ok()
        .stdout_string();
    assert!(text.contains("format: age-encryption.org/v1\n"), "{text}");
    assert!(text.contains("armored: no\n"), "{text}");
    assert!(
        text.contains(&format!("header: {header_len} bytes\n")),
        "{text}"
    );
    let payload = sealed.len() - header_len;
    let line = format!(
        "payload: {payload} bytes (16-byte nonce, 4 chunks, {} bytes",
        plaintext.len()
    );
    assert!(text.contains(&line), "{text}");
    assert!(text.contains("stanzas: 3\n"), "{text}");
    assert!(
        text.contains("  1. ssh-rsa, recipient: the SSH key tagged "),
        "{text}"
    );
    assert!(
        text.contains("  3. X25519, recipient: not knowable"),
        "{text}"
    );

    // JSON, and the tags agree with the keys' fingerprints (their first 30 bits).
    let run = dir
        .line("unseal --inspect in.age --json --key ed25519 --key server.key")
        .run()
        .ok();
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["format"], "age-encryption.org/v1");
    assert_eq!(json["armored"], false);
    assert_eq!(json["header_bytes"], header_len as u64);
    assert_eq!(json["payload_bytes"], payload as u64);
    assert_eq!(json["plaintext_bytes"], plaintext.len() as u64);
    assert_eq!(json["chunks"], 4);
    let stanzas = json["stanzas"].as_array().unwrap();
    let types: Vec<&str> = stanzas
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["ssh-rsa", "ssh-ed25519", "X25519"]);
    for (stanza, key) in stanzas[..2].iter().zip(["rsa2048.pub", "ed25519.pub"]) {
        let fp = dir
            .bin("seal-keygen")
            .args(["--fingerprint", key])
            .run()
            .ok()
            .stdout_string();
        let fp = fp
            .split(' ')
            .nth(1)
            .unwrap()
            .strip_prefix("SHA256:")
            .unwrap()
            .to_string();
        let tag = stanza["tag"].as_str().unwrap();
        assert_eq!(tag.len(), 6);
        assert_eq!(&tag[..5], &fp[..5], "{key}");
    }
    assert_eq!(stanzas[0]["opens_with"], serde_json::json!([]));
    assert_eq!(stanzas[1]["opens_with"], serde_json::json!(["ed25519"]));
    assert_eq!(stanzas[2]["opens_with"], serde_json::json!(["server.key"]));
    assert_eq!(stanzas[2]["tag"], serde_json::Value::Null);
    assert_eq!(dir.listing(), before, "inspect writes nothing");

    // Standard input, and a truncated payload is reported, not fatal.
    let cut = &sealed[..sealed.len() - 1];
    let run = dir
        .bin("unseal")
        .args(["--inspect", "--json"])
        .stdin(cut)
        .run()
        .ok();
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["payload_bytes"], (payload - 1) as u64);
    assert_eq!(json["stanzas"].as_array().unwrap().len(), 3);

    // Not an age file: exit 4, as unseal.
    dir.line("unseal --inspect passphrase.txt")
        .run()
        .fails(EXIT_HEADER)
        .says("unseal", &["passphrase.txt: not an age file"], None);
}

/// An SSH private key file as the `age` crate reads it (its own OpenSSH parser, not ours).
fn age_ssh_identity(dir: &Dir, file: &str) -> age::ssh::Identity {
    let bytes = dir.read(file);
    age::ssh::Identity::from_buffer(&bytes[..], Some(file.to_string()))
        .unwrap_or_else(|e| panic!("age cannot read {file}: {e}"))
}

/// The SSH public key in `file` as the `age` crate reads it.
fn age_ssh_recipient(dir: &Dir, file: &str) -> age::ssh::Recipient {
    age::ssh::Recipient::from_str(&first_line(dir, file))
        .unwrap_or_else(|e| panic!("age cannot read {file}: {e:?}"))
}

#[test]
fn the_age_crate_opens_what_seal_seals_to_ssh_keys_and_the_reverse() {
    let dir = with_keys();
    for (seed, (public, private)) in PAIRS[..3].iter().enumerate() {
        let identity = age_ssh_identity(&dir, private);
        let recipient = age_ssh_recipient(&dir, public);
        for &len in &[0, CHUNK + 1] {
            let plaintext = data(len, 400 + seed as u64);
            let sealed = seal_ssh(&dir, &plaintext, &["--to", public]);
            let opened = age::decrypt(&identity, &sealed).unwrap();
            assert!(opened == plaintext, "age with {private}, {len} bytes");

            let theirs = age::encrypt(&recipient, &plaintext).unwrap();
            let opened = unseal_ssh(&dir, &theirs, &["--key", private]);
            assert!(opened == plaintext, "age to {public}, {len} bytes");
        }
    }
}

#[test]
fn keygen_makes_openssh_key_pairs_that_the_age_crate_reads() {
    let dir = Dir::new();
    for (kind, bits, prefix) in [
        ("rsa", "2048", "ssh-rsa "),
        ("ed25519", "256", "ssh-ed25519 "),
    ] {
        let key = format!("{kind}.key");
        let public = format!("{kind}.pub");
        dir.new_ssh_key(kind, &key);
        assert_eq!(dir.mode(&key), 0o600);
        let line = first_line(&dir, &public);
        assert!(
            line.starts_with(prefix) && line.ends_with(" test@seal"),
            "{line}"
        );
        // The private key gives the same public key and fingerprint.
        let derived = dir.bin("seal-keygen").args(["-y", &key]).run().ok();
        let key_part = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        assert_eq!(key_part(&derived.stdout_string()), key_part(&line));
        let fingerprint = |file: &str| {
            let run = dir.bin("seal-keygen").args(["--fingerprint", file]).run();
            run.ok().stdout_string()
        };
        let of_public = fingerprint(&public);
        assert!(
            of_public.starts_with(&format!("{bits} SHA256:")),
            "{of_public}"
        );
        let hash = |line: &str| line.split(' ').nth(1).unwrap().to_string();
        assert_eq!(hash(&fingerprint(&key)), hash(&of_public));
        // The age crate opens what is sealed to the new key, and seals what unseal opens.
        let plaintext = data(CHUNK + 5, 77);
        let sealed = seal_ssh(&dir, &plaintext, &["--to", &public]);
        let opened = age::decrypt(&age_ssh_identity(&dir, &key), &sealed).unwrap();
        assert!(opened == plaintext, "age with {key}");
        let theirs = age::encrypt(&age_ssh_recipient(&dir, &public), &plaintext).unwrap();
        assert!(unseal_ssh(&dir, &theirs, &["--key", &key]) == plaintext);
        // Never over an existing key.
        let before = dir.listing();
        dir.bin("seal-keygen")
            .args(["--type", kind, "-o", &key])
            .run()
            .fails(EXIT_IO)
            .says("seal-keygen", &[&key, "already exists"], None);
        assert_eq!(dir.listing(), before);
    }
}

#[test]
fn keygen_protects_a_new_key_with_a_passphrase_when_asked() {
    let dir = with_protected_key();
    // The age crate finds the key encrypted: the passphrase (without the file's final
    // newline) opens it, and nothing else does.
    let age::ssh::Identity::Encrypted(key) = age_ssh_identity(&dir, "k.key") else {
        panic!("k.key is not encrypted");
    };
    assert!(key.decrypt(age_passphrase("s3cret words\n")).is_err());
    let identity = age::ssh::Identity::from(key.decrypt(age_passphrase("s3cret words")).unwrap());
    let plaintext = data(100, 1);
    let sealed = seal_ssh(&dir, &plaintext, &["--to", "k.pub"]);
    assert!(age::decrypt(&identity, &sealed).unwrap() == plaintext);
    let opened = unseal_ssh(
        &dir,
        &sealed,
        &["--key", "k.key", "--key-passphrase-file", "pass"],
    );
    assert!(opened == plaintext);
    // An age key has no passphrase to protect it with.
    dir.bin("seal-keygen")
        .args(["-o", "age.key", "--key-passphrase-file", "pass"])
        .run()
        .fails(EXIT_USAGE)
        .says(
            "seal-keygen",
            &["age keys have no passphrase"],
            Some("--type"),
        );
}

#[test]
fn fingerprints_are_those_ssh_keygen_printed_and_stable_for_age_keys() {
    let dir = with_keys();
    // Public key files, unencrypted private keys (OpenSSH and PEM): the line ssh-keygen -l
    // printed for each.
    let printed = ssh_keygen_printed("fingerprints");
    for (file, theirs) in &printed {
        let ours = dir.bin("seal-keygen").args(["--fingerprint", file]).run();
        assert_eq!(&ours.ok().stdout_string(), theirs, "{file}");
    }
    // For a protected key, the public half is read without its passphrase.
    let fp = |s: &str| s.split(' ').nth(1).unwrap().to_string();
    let protected = dir
        .bin("seal-keygen")
        .args(["--fingerprint", "ed25519-pass"])
        .run()
        .ok();
    let public = &printed
        .iter()
        .find(|(f, _)| f == "ed25519-pass.pub")
        .unwrap()
        .1;
    assert_eq!(fp(&protected.stdout_string()), fp(public));
    // SPKI public keys: the same fingerprint as the private key they came from.
    for (spki, pem) in [
        ("pkcs1.spki.pem", "pkcs1.pem"),
        ("pkcs8.spki.pem", "pkcs8.pem"),
    ] {
        let a = dir
            .bin("seal-keygen")
            .args(["--fingerprint", spki])
            .run()
            .ok();
        let b = dir
            .bin("seal-keygen")
            .args(["--fingerprint", pem])
            .run()
            .ok();
        assert_eq!(a.stdout_string(), b.stdout_string());
    }

    // age keys: SHA256: and the base64 of SHA-256 of the recipient string, the same for the
    // private and the public file. A fixed key pins the documented value.
    let recipient = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";
    dir.write("fixed.pub", format!("{recipient}\n"));
    dir.write_private(
        "fixed.key",
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX\n",
    );
    let expected =
        format!("SHA256:aoBHc5goQPp+rjhHB5pTsLFA1ngTDcaPHH9yteUIDU8 {recipient} (X25519)\n");
    for file in ["fixed.pub", "fixed.key"] {
        let run = dir
            .bin("seal-keygen")
            .args(["--fingerprint", file])
            .run()
            .ok();
        assert_eq!(run.stdout_string(), expected, "{file}");
    }
}

#[test]
fn keygen_y_prints_the_public_key_ssh_keygen_printed_for_openssh_and_pem_private_keys() {
    let dir = with_keys();
    let key_part = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    for (file, theirs) in ssh_keygen_printed("public-keys") {
        let ours = dir.bin("seal-keygen").args(["-y", &file]).run().ok();
        assert_eq!(key_part(&ours.stdout_string()), key_part(&theirs), "{file}");
    }
}

#[test]
fn inspect_sees_armor_that_the_age_crate_writes() {
    let dir = with_keys();
    let to = age_ssh_recipient(&dir, "ed25519.pub");
    dir.write(
        "a.age",
        age::encrypt_and_armor(&to, &data(1000, 3)).unwrap(),
    );
    let run = dir.line("unseal --inspect a.age --json").run().ok();
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["armored"], true);
    assert_eq!(json["plaintext_bytes"], 1000);
    assert_eq!(json["stanzas"][0]["type"], "ssh-ed25519");
}

#[test]
fn without_a_flag_the_passphrase_is_asked_on_the_terminal() {
    let dir = with_keys();
    let plaintext = data(3000, 6);
    let sealed = seal_ssh(&dir, &plaintext, &["--to", "ed25519-pass.pub"]);
    dir.write("in.age", &sealed);
    let unseal = "unseal --key ed25519-pass in.age -o out";
    let run = on_terminal(dir.line(unseal), "correct horse\n").ok();
    assert!(run
        .stdout_string()
        .contains("Passphrase for ed25519-pass: "));
    assert!(dir.read("out") == plaintext);
    dir.remove("out");
    let before = dir.listing();
    let run = on_terminal(dir.line(unseal), "incorrect horse\n").fails(EXIT_USAGE);
    assert!(run.stdout_string().contains("wrong passphrase"));
    assert_eq!(dir.listing(), before);
}
