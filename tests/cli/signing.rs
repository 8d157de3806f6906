//! Issue 5: sender signatures. SSHSIG signatures over sealed files, checked against
//! `ssh-keygen -Y sign` and `ssh-keygen -Y verify` in both directions (which fail loudly
//! when `ssh-keygen` is missing, as the other interop tests do).

use seal::sshsig::{Digest, Signature, SignatureError, SignerKey, SigningKey, NAMESPACE};

use super::ssh_keys::{ssh_sign, unseal_ssh, with_keys};
use super::*;

fn no_passphrase() -> Result<zeroize::Zeroizing<String>, seal::KeyError> {
    Err(seal::KeyError::PassphraseNeeded)
}

/// A directory with the fixture keys, a `server` key and `upload.age`, sealed to it.
fn with_sealed_upload() -> (Dir, Vec<u8>) {
    let dir = with_keys();
    dir.new_key("server");
    let sealed = seal_to_server(&dir, &data(3 * CHUNK + 17, 5));
    dir.write("upload.age", &sealed);
    (dir, sealed)
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
fn ssh_keygen_signatures_verify_here_and_altered_ones_do_not() {
    let ssh_keygen = program("ssh-keygen");
    let (dir, sealed) = with_sealed_upload();
    ssh_sign(&dir, "ed25519", NAMESPACE, "upload.age");
    let pem = dir.read("upload.age.sig");
    let sig = Signature::from_pem(&pem).unwrap();
    let expected = SignerKey::from_openssh(&dir.read_string("ed25519.pub")).unwrap();
    assert_eq!(sig.signer(), expected);
    sig.digest_of(&sealed).and_then(|d| sig.verify(&d)).unwrap();

    // The file changed: one flipped byte anywhere, or another file.
    for at in [0, 40, sealed.len() / 2, sealed.len() - 1] {
        let digest = sig.digest_of(&flipped(&sealed, at)).unwrap();
        assert_eq!(
            sig.verify(&digest),
            Err(SignatureError::Invalid),
            "byte {at}"
        );
    }
    let other = seal_to_server(&dir, b"another upload");
    assert_eq!(
        sig.digest_of(&other).and_then(|d| sig.verify(&d)),
        Err(SignatureError::Invalid)
    );

    // The signature changed: any flipped character of its base64 body fails to parse or
    // to verify (never verifies).
    let text = String::from_utf8(pem).unwrap();
    let body_start = text.find('\n').unwrap() + 1;
    let body_end = text.rfind("-----END").unwrap();
    for at in body_start..body_end {
        if text.as_bytes()[at] == b'\n' {
            continue;
        }
        let bad = other_base64(text.as_bytes(), at);
        let verdict =
            Signature::from_pem(&bad).and_then(|s| s.digest_of(&sealed).and_then(|d| s.verify(&d)));
        assert!(
            verdict.is_err(),
            "signature character {at} altered, still accepted"
        );
    }

    // Signed for another namespace: refused by name.
    let run = dir
        .cmd(&ssh_keygen)
        .args(["-q", "-Y", "sign", "-f", "ed25519", "-n", "file"])
        .stdin(sealed.clone())
        .run()
        .ok();
    let sig = Signature::from_pem(&run.stdout).unwrap();
    assert_eq!(
        sig.digest_of(&sealed).and_then(|d| sig.verify(&d)),
        Err(SignatureError::Namespace("file".into()))
    );
}

#[test]
fn existing_ed25519_and_rsa_ssh_keys_sign_and_other_types_are_refused() {
    let dir = with_keys();
    let key = SigningKey::from_openssh(&dir.read_string("ed25519"), &mut no_passphrase).unwrap();
    let public = SignerKey::from_openssh(&dir.read_string("ed25519.pub")).unwrap();
    assert_eq!(key.public_key(), public);

    let passphrase = dir.read_string("passphrase.txt").trim_end().to_string();
    let mut ask = || Ok(zeroize::Zeroizing::new(passphrase.clone()));
    let key = SigningKey::from_openssh(&dir.read_string("ed25519-pass"), &mut ask).unwrap();
    let public = SignerKey::from_openssh(&dir.read_string("ed25519-pass.pub")).unwrap();
    assert_eq!(key.public_key(), public);

    // RSA keys, protected or not, of 2048 bits and more: each signs, and the signature is
    // its own.
    for name in ["rsa2048", "rsa2048-pass", "rsa4096"] {
        let key = SigningKey::from_openssh(&dir.read_string(name), &mut ask).unwrap();
        let public = SignerKey::from_openssh(&dir.read_string(format!("{name}.pub"))).unwrap();
        assert_eq!(key.public_key(), public, "{name}");
        let digest = Digest::of(name.as_bytes());
        let sig = key.sign(&digest).unwrap();
        assert_eq!(sig.signer(), public);
        sig.verify(&digest).unwrap();
    }
    let err = SigningKey::from_openssh(&dir.read_string("rsa2048-pass"), &mut no_passphrase);
    assert!(matches!(err, Err(seal::KeyError::PassphraseNeeded)));

    // Too small an RSA key, by its size; other types, by name.
    let err = SigningKey::from_openssh(&dir.read_string("rsa1024"), &mut no_passphrase)
        .expect_err("rsa1024 was accepted as a signing key");
    assert!(err.to_string().contains("1024 bits"), "{err}");
    let err = SigningKey::from_openssh(&dir.read_string("ecdsa"), &mut no_passphrase)
        .expect_err("ecdsa was accepted as a signing key");
    let message = err.to_string();
    assert!(
        message.contains("ecdsa") && message.contains("ssh-ed25519") && message.contains("ssh-rsa"),
        "{message}"
    );
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

#[test]
fn ssh_keygen_rsa_signatures_verify_here_with_either_hash_and_small_keys_are_refused() {
    let ssh_keygen = program("ssh-keygen");
    let (dir, sealed) = with_sealed_upload();
    let expected = SignerKey::from_openssh(&dir.read_string("rsa2048.pub")).unwrap();
    let sign = |key: &str, options: &[&str]| {
        let run = dir
            .cmd(&ssh_keygen)
            .args(["-q", "-Y", "sign", "-f", key, "-n", NAMESPACE])
            .args(options)
            .stdin(sealed.clone())
            .run()
            .ok();
        run.stdout
    };
    for (options, hash) in [
        (&[][..], "sha512"),
        (&["-O", "hashalg=sha256"][..], "sha256"),
    ] {
        let pem = sign("rsa2048", options);
        let sig = Signature::from_pem(&pem).unwrap();
        assert_eq!(sig.signer(), expected);
        let digest = sig.digest_of(&sealed).unwrap();
        assert!(
            format!("{digest:?}").starts_with(&format!("Digest({hash}:")),
            "{options:?}: {digest:?}"
        );
        sig.verify(&digest).unwrap();

        for at in [0, sealed.len() / 2, sealed.len() - 1] {
            let digest = sig.digest_of(&flipped(&sealed, at)).unwrap();
            assert_eq!(
                sig.verify(&digest),
                Err(SignatureError::Invalid),
                "{options:?}, byte {at}"
            );
        }
        let text = String::from_utf8(pem).unwrap();
        let body_start = text.find('\n').unwrap() + 1;
        let body_end = text.rfind("-----END").unwrap();
        for at in body_start..body_end {
            // Not the line breaks, nor the padding at the end.
            if matches!(text.as_bytes()[at], b'\n' | b'=') {
                continue;
            }
            let bad = other_base64(text.as_bytes(), at);
            let verdict = Signature::from_pem(&bad)
                .and_then(|s| s.digest_of(&sealed).and_then(|d| s.verify(&d)));
            assert!(
                verdict.is_err(),
                "{options:?}: signature character {at} altered, still accepted"
            );
        }
    }

    // ssh-keygen still signs with a 1024-bit key; seal refuses the signature by the size.
    let sig = Signature::from_pem(&sign("rsa1024", &[])).unwrap();
    let verdict = sig.digest_of(&sealed).and_then(|d| sig.verify(&d));
    assert_eq!(verdict, Err(SignatureError::RsaKeySize(1024)));
    let message = verdict.unwrap_err().to_string();
    assert!(
        message.contains("1024 bits") && message.contains("2048"),
        "{message}"
    );
}

#[test]
fn allowed_signers_lists_are_read_as_ssh_keygen_reads_them() {
    use seal::allowed_signers::{AllowedSigners, Refusal};
    let ssh_keygen = program("ssh-keygen");
    let (dir, sealed) = with_sealed_upload();
    let alice = SigningKey::generate_ed25519("alice");
    dir.write(
        "upload.age.sig",
        alice.sign(&Digest::of(&sealed)).unwrap().to_pem(),
    );
    let now = std::time::SystemTime::now();
    let key = alice.public_key();

    // What seal says of a list: these principals, or a refusal of this kind.
    type Verdict = Result<&'static [&'static str], fn(&Refusal) -> bool>;
    // (list, whether ssh-keygen -Y verify -I alice accepts, what seal says)
    let cases: Vec<(String, bool, Verdict)> = vec![
        (
            format!("alice,alice@example.com {key} laptop"),
            true,
            Ok(&["alice", "alice@example.com"]),
        ),
        (
            format!("alice namespaces=\"file,se?l\",valid-after=\"20200101Z\" {key}"),
            true,
            Ok(&["alice"]),
        ),
        (
            format!("alice valid-before=\"20200101Z\" {key}"),
            false,
            Err(|r| matches!(r, Refusal::Expired { .. })),
        ),
        (
            format!("alice valid-after=\"29990101Z\" {key}"),
            false,
            Err(|r| matches!(r, Refusal::NotYetValid { .. })),
        ),
        (
            format!("alice namespaces=\"file,git\" {key}"),
            false,
            Err(|r| matches!(r, Refusal::Namespace { .. })),
        ),
        (
            format!("alice cert-authority {key}"),
            false,
            Err(|r| matches!(r, Refusal::UnknownSigner(_))),
        ),
        (
            format!("bob {}", SigningKey::generate_ed25519("").public_key()),
            false,
            Err(|r| matches!(r, Refusal::UnknownSigner(_))),
        ),
    ];
    for (list, openssh_accepts, ours) in cases {
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
        let verdict = AllowedSigners::parse(&list).unwrap().check(&key, now);
        match (ours, verdict) {
            (Ok(principals), Ok(allowed)) => assert_eq!(allowed.principals, principals),
            (Err(expected), Err(refusal)) => assert!(expected(&refusal), "{list}: {refusal}"),
            (_, verdict) => panic!("{list}: {verdict:?}"),
        }
    }
}

/// `plaintext` sealed to `server.pub` and the fixture `ed25519.pub`, naming `signer` in the
/// header.
fn seal_signed(dir: &Dir, signer: &SignerKey, plaintext: &[u8]) -> Vec<u8> {
    let server = seal::keys::parse_recipient(dir.read_string("server.pub").trim()).unwrap();
    let ssh = seal::keys::parse_recipient(dir.read_string("ed25519.pub").trim()).unwrap();
    seal::Encryptor::new_signed_by(&[server.as_ref(), ssh.as_ref()], signer)
        .unwrap()
        .seal_slice(plaintext)
}

#[test]
fn signed_files_name_their_signer_and_go_age_rage_and_unseal_still_open_them() {
    let age = program("age");
    let (dir, _) = with_sealed_upload();
    let alice = SigningKey::generate_ed25519("alice");
    let plaintext = data(2 * CHUNK + 9, 8);
    let sealed = seal_signed(&dir, &alice.public_key(), &plaintext);
    dir.write("signed.age", &sealed);

    let slice = seal::SealedSlice::new(&sealed).unwrap();
    let stanza = slice.header().stanzas.last().unwrap();
    assert_eq!(stanza.kind, "seal-signer");
    assert_eq!(stanza.args, [alice.public_key().fingerprint()]);
    assert!(stanza.body.is_empty());

    for key in ["server.key", "ed25519"] {
        let run = dir
            .cmd(&age)
            .args(["-d", "-i", key, "signed.age"])
            .run()
            .ok();
        assert!(run.stdout == plaintext, "age -d -i {key}");
        let opened = unseal_ssh(&dir, &sealed, &["--key", key]);
        assert!(opened == plaintext, "unseal --key {key}");
    }
    let identity: age::x25519::Identity = dir
        .read_string("server.key")
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .parse()
        .unwrap();
    let opened = age::decrypt(&identity, &sealed).unwrap();
    assert!(opened == plaintext, "the age crate");
}

#[test]
fn a_re_signed_file_is_refused_and_so_is_a_signature_over_an_unbound_file() {
    let (dir, _) = with_sealed_upload();
    let server = seal::keys::parse_identity_file(&dir.read_string("server.key")).unwrap();
    let (alice, mallory) = (
        SigningKey::generate_ed25519("alice"),
        SigningKey::generate_ed25519("mallory"),
    );
    let sealed = seal_signed(&dir, &alice.public_key(), b"alice's upload");
    let digest = Digest::of(&sealed);
    let slice = seal::SealedSlice::new(&sealed).unwrap();
    slice.unwrap(&[server[0].as_ref()]).unwrap();
    let stanzas = &slice.header().stanzas;

    alice
        .sign(&digest)
        .unwrap()
        .verify_bound(&digest, stanzas)
        .unwrap();
    // Mallory strips Alice's signature and signs the same bytes: a good signature, by the
    // wrong key.
    let resigned = mallory.sign(&digest).unwrap();
    resigned.verify(&digest).unwrap();
    assert_eq!(
        resigned.verify_bound(&digest, stanzas),
        Err(SignatureError::WrongSigner {
            signed: mallory.public_key().fingerprint(),
            named: alice.public_key().fingerprint(),
        })
    );

    // A file sealed without naming a signer: whoever signs it later proves nothing.
    let unbound = seal_to_server(&dir, b"anonymous upload");
    let digest = Digest::of(&unbound);
    let slice = seal::SealedSlice::new(&unbound).unwrap();
    slice.unwrap(&[server[0].as_ref()]).unwrap();
    assert_eq!(
        mallory
            .sign(&digest)
            .unwrap()
            .verify_bound(&digest, &slice.header().stanzas),
        Err(SignatureError::Unbound)
    );

    // Mallory rewrites the header to name himself: the header MAC, which he cannot compute
    // without the file key, no longer verifies, so the file does not open at all.
    let text = String::from_utf8_lossy(&sealed).into_owned();
    let (alice_fp, mallory_fp) = (
        alice.public_key().fingerprint(),
        mallory.public_key().fingerprint(),
    );
    let at = text.find(&alice_fp).unwrap();
    let mut forged = sealed.clone();
    forged[at..at + alice_fp.len()].copy_from_slice(mallory_fp.as_bytes());
    let slice = seal::SealedSlice::new(&forged).unwrap();
    assert!(matches!(
        slice.unwrap(&[server[0].as_ref()]),
        Err(seal::DecryptError::HeaderMac)
    ));
}

#[test]
fn keygen_client_makes_a_signing_key_pair_and_the_allowed_signers_line() {
    use seal::allowed_signers::AllowedSigners;
    let ssh_keygen = program("ssh-keygen");
    let (dir, sealed) = with_sealed_upload();
    let run = dir.line("seal-keygen --client alice").run().ok();
    assert_eq!(dir.mode("alice.key"), 0o600);
    let line = run.stdout_string();
    let public = dir.read_string("alice.pub");
    assert_eq!(line, format!("alice namespaces=\"seal\" {public}"));
    assert!(public.starts_with("ssh-ed25519 ") && public.ends_with(" alice\n"));
    dir.write("allowed_signers", &line);

    // ssh-keygen signs with the key, and accepts the signature under the printed line.
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
    let signers = AllowedSigners::parse(&line).unwrap();
    let allowed = signers.check(&key.public_key(), std::time::SystemTime::now());
    assert_eq!(allowed.unwrap().principals, ["alice"]);

    // -o names the files; nothing is overwritten; a name that cannot be a principal is refused.
    dir.line("seal-keygen --client bob -o keys.bob").run().ok();
    assert!(dir.path("keys.bob").is_file() && dir.path("keys.bob.pub").is_file());
    let before = dir.listing();
    dir.line("seal-keygen --client alice").run().fails(EXIT_IO);
    for bad in ["a,b", "a\"b", "*"] {
        dir.bin("seal-keygen")
            .args(["--client", bad])
            .run()
            .fails(EXIT_USAGE)
            .says(
                "seal-keygen",
                &["cannot be a signer name"],
                Some("without spaces"),
            );
    }
    dir.line("seal-keygen --client carol --pq")
        .run()
        .fails(EXIT_USAGE);
    assert_eq!(dir.listing(), before);
}

#[test]
fn seal_sign_with_writes_a_signature_ssh_keygen_accepts_and_a_bound_header() {
    let ssh_keygen = program("ssh-keygen");
    let dir = with_keys();
    dir.new_key("server");
    let allowed = dir.line("seal-keygen --client alice").run().ok().stdout;
    dir.write("allowed_signers", allowed);
    let plaintext = data(2 * CHUNK + 1, 9);
    dir.write("report", &plaintext);

    for (flags, sealed_name) in [
        ("", "report.age"),
        (" --no-mmap", "report.age"),
        (" -o out.age", "out.age"),
    ] {
        let line = format!("seal report --to server.pub --sign-with alice.key{flags}");
        dir.line(&line).run().ok();
        let sig_name = format!("{sealed_name}.sig");
        let sealed = dir.read(sealed_name);
        dir.cmd(&ssh_keygen)
            .args([
                "-Y",
                "verify",
                "-f",
                "allowed_signers",
                "-I",
                "alice",
                "-n",
                NAMESPACE,
            ])
            .args(["-s", &sig_name])
            .stdin(sealed.clone())
            .run()
            .ok();
        let sig = Signature::from_pem(&dir.read(&sig_name)).unwrap();
        let server = seal::keys::parse_identity_file(&dir.read_string("server.key")).unwrap();
        let slice = seal::SealedSlice::new(&sealed).unwrap();
        let payload = slice.unwrap(&[server[0].as_ref()]).unwrap();
        sig.verify_bound(&Digest::of(&sealed), &slice.header().stanzas)
            .unwrap();
        assert!(payload.decrypt_to_vec().unwrap() == plaintext, "{line}");
        dir.remove(sealed_name);
        dir.remove(&sig_name);
    }

    // Refused, with nothing written: an existing signature file, standard output, a
    // passphrase, a key that cannot sign. (Armor is signed as written: tests/cli/senders.rs.)
    dir.write("report.age.sig", "old");
    let before = dir.listing();
    let refused = [
        ("seal report --to server.pub --sign-with alice.key", EXIT_IO),
        (
            "seal report --to server.pub --sign-with alice.key -o -",
            EXIT_USAGE,
        ),
        (
            "seal report --to server.pub --sign-with ecdsa -o r.age",
            EXIT_USAGE,
        ),
        (
            "seal report --to server.pub --sign-with rsa1024 -o r.age",
            EXIT_USAGE,
        ),
        (
            "seal report --to server.pub --sign-with nonexistent.key -o r.age",
            EXIT_IO,
        ),
        (
            "seal report --passphrase-file report --sign-with alice.key -o r.age",
            EXIT_USAGE,
        ),
    ];
    for (line, code) in refused {
        let run = dir.line(line).run().fails(code);
        assert!(
            run.stderr.starts_with("seal: error: "),
            "{line}: {}",
            run.stderr
        );
        assert_eq!(dir.listing(), before, "{line}");
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

    // Here too, bound to the header, which names the RSA key.
    let sig = Signature::from_pem(&dir.read("report.age.sig")).unwrap();
    assert_eq!(sig.signer(), SignerKey::from_openssh(&public).unwrap());
    let server = seal::keys::parse_identity_file(&dir.read_string("server.key")).unwrap();
    let slice = seal::SealedSlice::new(&sealed).unwrap();
    let payload = slice.unwrap(&[server[0].as_ref()]).unwrap();
    sig.verify_bound(&Digest::of(&sealed), &slice.header().stanzas)
        .unwrap();
    assert!(payload.decrypt_to_vec().unwrap() == plaintext);
}
