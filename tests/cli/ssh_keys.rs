//! Issue 4: SSH and PEM keys as recipients and identities, `seal-keygen --type`, `-y` and
//! `--fingerprint`, `unseal --inspect`.
//!
//! The keys in `testdata/keys` were made once by `ssh-keygen` (RSA 2048 and 4096, Ed25519,
//! with and without the passphrase in `passphrase.txt`; RSA 1024 and ECDSA, to be refused)
//! and `openssl` (`genpkey`: PKCS#8, `genrsa -traditional`: PKCS#1, `pkey -pubout`: SPKI).
//! The interop tests run the Go `age` CLI, `ssh-keygen` and fail loudly without them.

use super::*;

/// `ssh-keygen -q -Y sign -f KEY -n NAMESPACE FILE`: writes FILE.sig.
pub(crate) fn ssh_sign(dir: &Dir, key: &str, namespace: &str, file: &str) {
    dir.cmd(program("ssh-keygen"))
        .args(["-q", "-Y", "sign", "-f", key, "-n", namespace, file])
        .run()
        .ok();
}

/// The fixture keys, copied into the test directory readable by their owner only (git does
/// not keep the 0600 mode, and unseal warns about keys others can read).
pub(crate) fn with_keys() -> Dir {
    let dir = Dir::new();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/keys");
    for entry in fs::read_dir(&fixtures).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        dir.write_private(&name, fs::read(entry.path()).unwrap());
    }
    dir
}

/// (public key file, private key file) for every key type that opens files.
const PAIRS: &[(&str, &str)] = &[
    ("rsa2048.pub", "rsa2048"),
    ("rsa4096.pub", "rsa4096"),
    ("ed25519.pub", "ed25519"),
    ("pkcs8.spki.pem", "pkcs8.pem"),
    ("pkcs1.spki.pem", "pkcs1.pem"),
];

fn seal_ssh(dir: &Dir, plaintext: &[u8], args: &[&str]) -> Vec<u8> {
    transform(dir, "seal", Io::Pipes, plaintext, args)
}

pub(crate) fn unseal_ssh(dir: &Dir, sealed: &[u8], args: &[&str]) -> Vec<u8> {
    transform(dir, "unseal", Io::OutputFlag, sealed, args)
}

/// The first line of a file, without its newline.
fn first_line(dir: &Dir, name: &str) -> String {
    dir.read_string(name).lines().next().unwrap().to_string()
}

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
fn go_age_opens_what_seal_writes_to_ssh_keys_and_the_reverse() {
    let age = program("age");
    let dir = with_keys();
    for (seed, (public, private)) in PAIRS[..3].iter().enumerate() {
        for &len in &[0, CHUNK + 1] {
            let plaintext = data(len, 400 + seed as u64);
            let sealed = seal_ssh(&dir, &plaintext, &["--to", public]);
            dir.write("ours.age", &sealed);
            let opened = dir.cmd(&age).args(["-d", "-i", private, "ours.age"]).run();
            assert!(
                opened.ok().stdout == plaintext,
                "age -d -i {private}, {len} bytes"
            );
            dir.remove("ours.age");

            dir.write("plain", &plaintext);
            dir.cmd(&age)
                .args(["-R", public, "-o", "theirs.age", "plain"])
                .run()
                .ok();
            let theirs = dir.read("theirs.age");
            dir.remove("theirs.age");
            dir.remove("plain");
            let opened = unseal_ssh(&dir, &theirs, &["--key", private]);
            assert!(opened == plaintext, "age -R {public}, {len} bytes");
        }
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
    // (command line, in the error line)
    let cases = [
        ("seal plain --to rsa1024.pub", "rsa1024.pub: line 1: the RSA key has 1024 bits: keys under 2048 bits are refused"),
        ("unseal in.age -o out --key rsa1024", "rsa1024: the RSA key has 1024 bits: keys under 2048 bits are refused"),
        ("unseal in.age -o out --key pkcs1-1024.pem", "has 1024 bits: keys under 2048 bits are refused"),
        ("unseal in.age -o out --key truncated.pem", "truncated.pem: damaged PEM file"),
        ("unseal in.age -o out --key ecdsa", "ecdsa: ecdsa-sha2-nistp256 keys are not supported"),
        ("seal plain --to ecdsa.pub", "ecdsa-sha2-nistp256 keys are not supported"),
        ("unseal in.age -o out --key plain", "plain: unknown key format; accepted: age identity files"),
        ("seal plain --to plain", "plain: unknown key format; accepted: age recipients (age1...), ssh-rsa and ssh-ed25519"),
    ];
    for (line, error) in cases {
        let before = dir.listing();
        let program = line.split(' ').next().unwrap();
        dir.line(line)
            .run()
            .fails(EXIT_USAGE)
            .says(program, &[error], None);
        assert_eq!(dir.listing(), before, "{line}");
    }
    // Keys of the wrong kind for the flag get a hint.
    let hinted = [
        (
            "seal plain --to rsa2048",
            "this is a private key (-----BEGIN OPENSSH PRIVATE KEY-----), not a recipient",
            "give --to the public key file",
        ),
        (
            "seal plain --to pkcs1.pem",
            "this is a private key (-----BEGIN RSA PRIVATE KEY-----), not a recipient",
            "give --to the public key file",
        ),
        (
            "unseal in.age -o out --key rsa2048.pub",
            "a public key, not a private key",
            "--key needs the private key file",
        ),
        (
            "unseal in.age -o out --key pkcs8.spki.pem",
            "a public key, not a private key",
            "--key needs the private key file",
        ),
    ];
    for (line, error, hint) in hinted {
        let before = dir.listing();
        let program = line.split(' ').next().unwrap();
        dir.line(line)
            .run()
            .fails(EXIT_USAGE)
            .says(program, &[error], Some(hint));
        assert_eq!(dir.listing(), before, "{line}");
    }
}

#[test]
fn keygen_makes_openssh_key_pairs_that_ssh_keygen_and_go_age_read() {
    let ssh_keygen = program("ssh-keygen");
    let age = program("age");
    let dir = Dir::new();
    for (kind, bits, prefix) in [
        ("rsa", "2048", "ssh-rsa "),
        ("ed25519", "256", "ssh-ed25519 "),
    ] {
        let key = format!("{kind}.key");
        let public = format!("{kind}.pub");
        dir.bin("seal-keygen")
            .args([
                "--type",
                kind,
                "--bits",
                "2048",
                "-C",
                "test@seal",
                "-o",
                &key,
            ])
            .run()
            .ok();
        assert_eq!(dir.mode(&key), 0o600);
        let line = first_line(&dir, &public);
        assert!(
            line.starts_with(prefix) && line.ends_with(" test@seal"),
            "{line}"
        );
        // ssh-keygen derives the same public key and fingerprint.
        let derived = dir.cmd(&ssh_keygen).args(["-y", "-f", &key]).run().ok();
        assert_eq!(derived.stdout_string().trim_end(), line);
        let theirs = dir.cmd(&ssh_keygen).args(["-l", "-f", &public]).run().ok();
        let ours = dir
            .bin("seal-keygen")
            .args(["--fingerprint", &public])
            .run()
            .ok();
        assert_eq!(ours.stdout_string(), theirs.stdout_string());
        assert!(theirs
            .stdout_string()
            .starts_with(&format!("{bits} SHA256:")));
        // Go age opens what is sealed to it; we open what Go age seals to it.
        let plaintext = data(CHUNK + 5, 77);
        let sealed = seal_ssh(&dir, &plaintext, &["--to", &public]);
        dir.write("s.age", &sealed);
        let opened = dir.cmd(&age).args(["-d", "-i", &key, "s.age"]).run().ok();
        assert!(opened.stdout == plaintext, "{kind}");
        dir.remove("s.age");
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
    let ssh_keygen = program("ssh-keygen");
    let dir = Dir::new();
    dir.write_private("pass", "s3cret words\n");
    dir.bin("seal-keygen")
        .args([
            "--type",
            "ed25519",
            "-o",
            "k.key",
            "--key-passphrase-file",
            "pass",
        ])
        .run()
        .ok();
    // Without the passphrase ssh-keygen cannot read it; with it, it can.
    dir.cmd(&ssh_keygen)
        .args(["-y", "-P", "", "-f", "k.key"])
        .run()
        .fails(255);
    let derived = dir
        .cmd(&ssh_keygen)
        .args(["-y", "-P", "s3cret words", "-f", "k.key"]);
    assert_eq!(
        derived.run().ok().stdout_string().trim_end(),
        first_line(&dir, "k.pub")
    );
    let plaintext = data(100, 1);
    let sealed = seal_ssh(&dir, &plaintext, &["--to", "k.pub"]);
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
fn fingerprints_are_those_ssh_keygen_prints_and_stable_for_age_keys() {
    let ssh_keygen = program("ssh-keygen");
    let dir = with_keys();
    // Public key files, unencrypted private keys (OpenSSH and PEM): the line ssh-keygen -l
    // prints. For a protected key, the public half is read without its passphrase.
    let files = [
        "rsa2048.pub",
        "rsa2048",
        "rsa4096.pub",
        "rsa4096",
        "ed25519.pub",
        "ed25519",
        "rsa2048-pass.pub",
        "ed25519-pass.pub",
        "pkcs1.pem",
        "pkcs8.pem",
    ];
    for file in files {
        let theirs = dir.cmd(&ssh_keygen).args(["-l", "-f", file]).run().ok();
        let ours = dir
            .bin("seal-keygen")
            .args(["--fingerprint", file])
            .run()
            .ok();
        assert_eq!(ours.stdout_string(), theirs.stdout_string(), "{file}");
    }
    let protected = dir
        .bin("seal-keygen")
        .args(["--fingerprint", "ed25519-pass"])
        .run()
        .ok();
    let public = dir
        .cmd(&ssh_keygen)
        .args(["-l", "-f", "ed25519-pass.pub"])
        .run()
        .ok();
    let fp = |s: String| s.split(' ').nth(1).unwrap().to_string();
    assert_eq!(fp(protected.stdout_string()), fp(public.stdout_string()));
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
fn keygen_y_prints_the_openssh_public_key_of_openssh_and_pem_private_keys() {
    let ssh_keygen = program("ssh-keygen");
    let dir = with_keys();
    for file in [
        "rsa2048",
        "ed25519",
        "pkcs1.pem",
        "pkcs8.pem",
        "ed25519-pass",
    ] {
        let ours = dir
            .bin("seal-keygen")
            .args(["-y", file])
            .run()
            .ok()
            .stdout_string();
        let key_part = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        let theirs = dir
            .cmd(&ssh_keygen)
            .args(["-y", "-P", "correct horse", "-f", file]);
        let theirs = theirs.run().ok().stdout_string();
        assert_eq!(key_part(&ours), key_part(&theirs), "{file}");
    }
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

#[test]
fn inspect_sees_armor_that_go_age_writes() {
    let age = program("age");
    let dir = with_keys();
    dir.write("plain", data(1000, 3));
    dir.cmd(&age)
        .args(["-a", "-R", "ed25519.pub", "-o", "a.age", "plain"])
        .run()
        .ok();
    let run = dir.line("unseal --inspect a.age --json").run().ok();
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["armored"], true);
    assert_eq!(json["plaintext_bytes"], 1000);
    assert_eq!(json["stanzas"][0]["type"], "ssh-ed25519");
}

#[test]
fn fresh_openssl_keys_work_and_small_ones_are_refused() {
    let openssl = program("openssl");
    let dir = Dir::new();
    let run = |args: &[&str]| dir.cmd(&openssl).args(args).run().ok();
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "p8.pem",
    ]);
    run(&["pkey", "-in", "p8.pem", "-pubout", "-out", "p8.pub.pem"]);
    run(&["genrsa", "-traditional", "-out", "p1.pem", "2048"]);
    run(&["rsa", "-in", "p1.pem", "-pubout", "-out", "p1.pub.pem"]);
    run(&["genrsa", "-traditional", "-out", "small.pem", "1024"]);
    run(&[
        "rsa",
        "-in",
        "small.pem",
        "-pubout",
        "-out",
        "small.pub.pem",
    ]);
    for name in ["p8.pem", "p1.pem", "small.pem"] {
        dir.chmod(name, 0o600);
    }
    let plaintext = data(70_000, 8);
    for (public, private) in [("p8.pub.pem", "p8.pem"), ("p1.pub.pem", "p1.pem")] {
        let sealed = seal_ssh(&dir, &plaintext, &["--to", public]);
        assert!(
            unseal_ssh(&dir, &sealed, &["--key", private]) == plaintext,
            "{private}"
        );
    }
    dir.write("plain", "x");
    let before = dir.listing();
    dir.line("seal plain --to small.pub.pem")
        .run()
        .fails(EXIT_USAGE)
        .says("seal", &["small.pub.pem: the RSA key has 1024 bits"], None);
    assert_eq!(dir.listing(), before);
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
