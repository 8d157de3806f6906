//! `ssh-keygen` (Debian package `openssh-client`): it reads the keys seal-keygen makes and
//! prints for the fixture keys what `testdata/ssh-keygen` says (which `cargo test` compares
//! seal with); it accepts the signatures seal makes, makes signatures seal accepts (and,
//! deterministic, the fixtures in `testdata/signatures`), and reads allowed-signers lists as
//! seal does.

use std::fs;

use seal::sshsig::{Digest, Signature, SignatureError, SignerKey, SigningKey, NAMESPACE};

use crate::common::*;

#[test]
fn ssh_keygen_reads_the_key_pairs_seal_keygen_makes() {
    let ssh_keygen = program("ssh-keygen");
    let dir = Dir::new();
    for (kind, bits) in [("rsa", "2048"), ("ed25519", "256")] {
        let key = format!("{kind}.key");
        let public = format!("{kind}.pub");
        dir.new_ssh_key(kind, &key);
        // ssh-keygen derives the same public key and fingerprint.
        let derived = dir.cmd(&ssh_keygen).args(["-y", "-f", &key]).run().ok();
        assert_eq!(
            derived.stdout_string().trim_end(),
            first_line(&dir, &public)
        );
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
    }
}

#[test]
fn ssh_keygen_reads_a_protected_key_seal_keygen_makes_only_with_its_passphrase() {
    let ssh_keygen = program("ssh-keygen");
    let dir = with_protected_key();
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
}

/// What ssh-keygen prints for the fixture keys is what `testdata/ssh-keygen` says, and what
/// seal-keygen prints.
#[test]
fn fingerprints_and_public_keys_are_those_ssh_keygen_prints() {
    let ssh_keygen = program("ssh-keygen");
    let dir = with_keys();
    for (file, printed) in ssh_keygen_printed("fingerprints") {
        let theirs = dir.cmd(&ssh_keygen).args(["-l", "-f", &file]).run().ok();
        assert_eq!(
            theirs.stdout_string(),
            printed,
            "{file}: testdata/ssh-keygen"
        );
        let ours = dir.bin("seal-keygen").args(["--fingerprint", &file]).run();
        assert_eq!(ours.ok().stdout_string(), printed, "{file}");
    }
    // For a protected key, the public half is read without its passphrase.
    let fp = |s: String| s.split(' ').nth(1).unwrap().to_string();
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
    assert_eq!(fp(protected.stdout_string()), fp(public.stdout_string()));

    let key_part = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    for (file, printed) in ssh_keygen_printed("public-keys") {
        let theirs = dir
            .cmd(&ssh_keygen)
            .args(["-y", "-P", "correct horse", "-f", &file])
            .run()
            .ok();
        assert_eq!(
            theirs.stdout_string(),
            printed,
            "{file}: testdata/ssh-keygen"
        );
        let ours = dir.bin("seal-keygen").args(["-y", &file]).run().ok();
        assert_eq!(
            key_part(&ours.stdout_string()),
            key_part(&printed),
            "{file}"
        );
    }
}

#[test]
fn signatures_made_here_pass_ssh_keygen_verify_and_altered_files_do_not() {
    let ssh_keygen = program("ssh-keygen");
    let (dir, sealed) = with_sealed_upload();
    let alice = SigningKey::generate_ed25519("alice");
    let sig = alice.sign(&Digest::of(&sealed)).unwrap();
    dir.write("upload.age.sig", sig.to_pem());
    dir.write("allowed_signers", format!("alice {}\n", alice.public_key()));
    let verify = |input: &[u8], namespace: &str| {
        dir.cmd(&ssh_keygen)
            .args(["-Y", "verify", "-f", "allowed_signers", "-I", "alice"])
            .args(["-n", namespace, "-s", "upload.age.sig"])
            .stdin(input.to_vec())
            .run()
    };
    let run = verify(&sealed, NAMESPACE).ok();
    assert!(run
        .stdout_string()
        .contains("Good \"seal\" signature for alice"));
    verify(&flipped(&sealed, sealed.len() / 2), NAMESPACE).fails(255);
    verify(&sealed, "file").fails(255);
}

#[test]
fn rsa_signatures_made_here_pass_ssh_keygen_verify_and_altered_ones_do_not() {
    let ssh_keygen = program("ssh-keygen");
    let (dir, sealed) = with_sealed_upload();
    let alice = SigningKey::from_openssh(&dir.read_string("rsa2048"), &mut no_passphrase).unwrap();
    let sig = alice.sign(&Digest::of(&sealed)).unwrap();
    let pem = sig.to_pem();
    dir.write("allowed_signers", format!("alice {}\n", alice.public_key()));
    let verify = |input: &[u8], sig: &[u8]| {
        dir.write("upload.age.sig", sig);
        dir.cmd(&ssh_keygen)
            .args(["-Y", "verify", "-f", "allowed_signers", "-I", "alice"])
            .args(["-n", NAMESPACE, "-s", "upload.age.sig"])
            .stdin(input.to_vec())
            .run()
    };
    let run = verify(&sealed, pem.as_bytes()).ok();
    assert!(run
        .stdout_string()
        .contains("Good \"seal\" signature for alice"));
    verify(&flipped(&sealed, sealed.len() / 2), pem.as_bytes()).fails(255);
    // A character of the RSA signature itself (the end of the body) altered.
    let end = pem.rfind("-----END").unwrap();
    let at = (0..end)
        .rev()
        .filter(|&i| pem.as_bytes()[i].is_ascii_alphanumeric())
        .nth(5)
        .unwrap();
    verify(&sealed, &other_base64(pem.as_bytes(), at)).fails(255);
}

/// Signatures ssh-keygen makes now verify here, over either hash; and since they are
/// deterministic, over the fixture file they are the fixtures `cargo test` checks seal with.
#[test]
fn signatures_ssh_keygen_makes_verify_here_and_are_the_fixtures() {
    let ssh_keygen = program("ssh-keygen");
    let (dir, sealed) = with_sealed_upload();
    let sign = |key: &str, namespace: &str, options: &[&str], input: &[u8]| {
        dir.cmd(&ssh_keygen)
            .args(["-q", "-Y", "sign", "-f", key, "-n", namespace])
            .args(options)
            .stdin(input)
            .run()
            .ok()
            .stdout
    };
    let sha256: &[&str] = &["-O", "hashalg=sha256"];
    for (key, options) in [
        ("ed25519", &[][..]),
        ("ed25519", sha256),
        ("rsa2048", &[]),
        ("rsa2048", sha256),
    ] {
        let sig = Signature::from_pem(&sign(key, NAMESPACE, options, &sealed)).unwrap();
        let public = SignerKey::from_openssh(&dir.read_string(format!("{key}.pub"))).unwrap();
        assert_eq!(sig.signer(), public, "{key} {options:?}");
        sig.digest_of(&sealed).and_then(|d| sig.verify(&d)).unwrap();
        let altered = sig.digest_of(&flipped(&sealed, sealed.len() / 2)).unwrap();
        assert_eq!(sig.verify(&altered), Err(SignatureError::Invalid));
    }

    let message = fs::read(testdata(SIGNED_FIXTURE)).unwrap();
    let fixtures = [
        ("ed25519.seal-sig", "ed25519", NAMESPACE, &[][..]),
        ("ed25519-sha256.seal-sig", "ed25519", NAMESPACE, sha256),
        ("ed25519.file-sig", "ed25519", "file", &[]),
        ("rsa2048.seal-sig", "rsa2048", NAMESPACE, &[]),
        ("rsa2048-sha256.seal-sig", "rsa2048", NAMESPACE, sha256),
        ("rsa1024.seal-sig", "rsa1024", NAMESPACE, &[]),
    ];
    for (fixture, key, namespace, options) in fixtures {
        let made = sign(key, namespace, options, &message);
        assert!(made == fixture_signature(fixture), "{fixture}");
    }
}

/// ssh-keygen's verdict on each list of [`allowed_signers_cases`] is the one recorded there,
/// which `cargo test` checks seal's against.
#[test]
fn ssh_keygen_reads_allowed_signers_lists_as_recorded() {
    let ssh_keygen = program("ssh-keygen");
    let (dir, sealed) = with_sealed_upload();
    let alice = SigningKey::generate_ed25519("alice");
    dir.write(
        "upload.age.sig",
        alice.sign(&Digest::of(&sealed)).unwrap().to_pem(),
    );
    for (list, openssh_accepts, _) in allowed_signers_cases(&alice.public_key()) {
        dir.write("allowed_signers", format!("{list}\n"));
        let run = dir
            .cmd(&ssh_keygen)
            .args(["-Y", "verify", "-f", "allowed_signers", "-I", "alice"])
            .args(["-n", NAMESPACE, "-s", "upload.age.sig"])
            .stdin(sealed.clone())
            .run();
        assert_eq!(
            run.code == 0,
            openssh_accepts,
            "ssh-keygen on {list}: {}",
            run.stderr
        );
    }
}

#[test]
fn ssh_keygen_signs_with_a_client_key_and_accepts_it_under_the_printed_line() {
    let ssh_keygen = program("ssh-keygen");
    let (dir, sealed) = with_sealed_upload();
    let line = dir.line("seal-keygen --client alice").run().ok();
    dir.write("allowed_signers", line.stdout);
    ssh_sign(&dir, "alice.key", NAMESPACE, "upload.age");
    dir.cmd(&ssh_keygen)
        .args(["-Y", "verify", "-f", "allowed_signers", "-I", "alice"])
        .args(["-n", NAMESPACE, "-s", "upload.age.sig"])
        .stdin(sealed.clone())
        .run()
        .ok();
    // And so does seal, with the key read as a signing key.
    let key = SigningKey::from_openssh(&dir.read_string("alice.key"), &mut no_passphrase).unwrap();
    let sig = Signature::from_pem(&dir.read("upload.age.sig")).unwrap();
    sig.digest_of(&sealed).and_then(|d| sig.verify(&d)).unwrap();
    assert_eq!(sig.signer(), key.public_key());
}

#[test]
fn ssh_keygen_accepts_what_seal_sign_with_writes() {
    let ssh_keygen = program("ssh-keygen");
    let dir = with_keys();
    dir.new_key("server");
    let allowed = dir.line("seal-keygen --client alice").run().ok().stdout;
    dir.write("allowed_signers", allowed);
    dir.write("report", data(2 * CHUNK + 1, 9));
    for (flags, sealed_name) in [("", "report.age"), (" -o out.age", "out.age")] {
        let line = format!("seal report --to server.pub --sign-with alice.key{flags}");
        dir.line(&line).run().ok();
        let sealed = dir.read(sealed_name);
        let verify = |input: Vec<u8>| {
            dir.cmd(&ssh_keygen)
                .args(["-Y", "verify", "-f", "allowed_signers", "-I", "alice"])
                .args(["-n", NAMESPACE, "-s", &format!("{sealed_name}.sig")])
                .stdin(input)
                .run()
        };
        let run = verify(sealed.clone()).ok();
        assert!(run
            .stdout_string()
            .contains("Good \"seal\" signature for alice"));
        verify(flipped(&sealed, sealed.len() / 2)).fails(255);
        dir.remove(sealed_name);
        dir.remove(format!("{sealed_name}.sig"));
    }
}

#[test]
fn seal_sign_with_an_rsa_key_writes_a_signature_ssh_keygen_accepts() {
    let ssh_keygen = program("ssh-keygen");
    let dir = with_keys();
    dir.new_key("server");
    let public = dir.read_string("rsa2048.pub");
    dir.write(
        "allowed_signers",
        format!("alice namespaces=\"seal\" {public}"),
    );
    let plaintext = data(2 * CHUNK + 1, 9);
    dir.write("report", &plaintext);

    dir.line("seal report --to server.pub --sign-with rsa2048")
        .run()
        .ok();
    let sealed = dir.read("report.age");
    let run = dir
        .cmd(&ssh_keygen)
        .args(["-Y", "verify", "-f", "allowed_signers", "-I", "alice"])
        .args(["-n", NAMESPACE, "-s", "report.age.sig"])
        .stdin(sealed.clone())
        .run()
        .ok();
    assert!(run
        .stdout_string()
        .contains("Good \"seal\" signature for alice"));
    dir.cmd(&ssh_keygen)
        .args(["-Y", "verify", "-f", "allowed_signers", "-I", "alice"])
        .args(["-n", NAMESPACE, "-s", "report.age.sig"])
        .stdin(flipped(&sealed, sealed.len() - 1))
        .run()
        .fails(255);
}

#[test]
fn ssh_keygen_signatures_over_a_bound_file_are_accepted_and_go_age_still_opens_it() {
    let age = program("age");
    let (dir, plaintext) = signed_upload();
    // Alice signs with ssh-keygen (SHA-512, its default) instead of seal (SHA-256).
    dir.remove("upload.age.sig");
    ssh_sign(&dir, "alice.key", "seal", "upload.age");
    assert!(dir.read_string("upload.age.sig").contains("SSH SIGNATURE"));
    let flags = ["--allowed-signers", "allowed", "--require-signature"];
    let run = unseal_signed(&dir, "upload.age", "mapped", &flags).ok();
    assert!(run.stderr.contains("signed by alice"), "{}", run.stderr);
    assert!(dir.read("out") == plaintext);
    // The extra stanza is nothing to Go age.
    let age_key = dir.read_string("server.key");
    dir.write_private("age.key", age_key);
    let run = dir
        .cmd(&age)
        .args(["-d", "-i", "age.key", "upload.age"])
        .run()
        .ok();
    assert!(run.stdout == plaintext);
}
