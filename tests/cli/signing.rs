//! Issue 5: sender signatures. SSHSIG signatures over sealed files, checked in process
//! against implementations that are not seal's: the `ssh-key` crate's own SSHSIG signer and
//! verifier, and the signatures `ssh-keygen -Y sign` made over a fixed file
//! (`testdata/signatures`), which seal must verify and, since Ed25519 and RSA PKCS#1 v1.5
//! signatures are deterministic, make byte for byte. `ssh-keygen -Y sign` and `-Y verify`
//! themselves, in both directions: `tests/interop/ssh_keygen.rs`.

use std::fs;
use std::time::SystemTime;

use seal::sshsig::{Digest, Signature, SignatureError, SignerKey, SigningKey, NAMESPACE};

use crate::common::*;

/// The fixture file the `testdata/signatures` signatures sign.
fn signed_fixture() -> Vec<u8> {
    fs::read(testdata(SIGNED_FIXTURE)).unwrap()
}

/// A fixture key (`testdata/keys/NAME`) as seal reads it to sign.
fn fixture_signing_key(name: &str) -> SigningKey {
    let text = fs::read_to_string(testdata(&format!("keys/{name}"))).unwrap();
    SigningKey::from_openssh(&text, &mut no_passphrase).unwrap()
}

/// A fixture public key (`testdata/keys/NAME.pub`) as seal reads it.
fn fixture_signer(name: &str) -> SignerKey {
    let text = fs::read_to_string(testdata(&format!("keys/{name}.pub"))).unwrap();
    SignerKey::from_openssh(&text).unwrap()
}

/// Every character of the base64 body of `pem` altered, one at a time (not the line breaks,
/// nor the padding at the end): none parses and verifies over `signed`.
fn every_altered_character_fails(pem: &[u8], signed: &[u8], what: &str) {
    let text = std::str::from_utf8(pem).unwrap();
    let body_start = text.find('\n').unwrap() + 1;
    let body_end = text.rfind("-----END").unwrap();
    for at in body_start..body_end {
        if matches!(text.as_bytes()[at], b'\n' | b'=') {
            continue;
        }
        let bad = other_base64(text.as_bytes(), at);
        let verdict =
            Signature::from_pem(&bad).and_then(|s| s.digest_of(signed).and_then(|d| s.verify(&d)));
        assert!(
            verdict.is_err(),
            "{what}: signature character {at} altered, still accepted"
        );
    }
}

#[test]
fn signatures_made_here_pass_the_ssh_key_crates_check_and_altered_files_do_not() {
    let (_dir, sealed) = with_sealed_upload();
    let alice = SigningKey::generate_ed25519("alice");
    let pem = alice.sign(&Digest::of(&sealed)).unwrap().to_pem();
    let public = alice.public_key().to_string();
    ssh_key_verifies(&public, &sealed, pem.as_bytes()).unwrap();
    let altered = flipped(&sealed, sealed.len() / 2);
    assert!(ssh_key_verifies(&public, &altered, pem.as_bytes()).is_err());
    let other = SigningKey::generate_ed25519("mallory")
        .public_key()
        .to_string();
    assert!(ssh_key_verifies(&other, &sealed, pem.as_bytes()).is_err());
}

/// Ed25519 and RSA PKCS#1 v1.5 signatures are deterministic: over the same file with the
/// same key and hash, seal's signer writes exactly what `ssh-keygen -Y sign -O hashalg=sha256`
/// wrote (seal signs over SHA-256).
#[test]
fn signatures_made_here_are_the_bytes_ssh_keygen_made() {
    let message = signed_fixture();
    for name in ["ed25519", "rsa2048"] {
        let ours = fixture_signing_key(name)
            .sign(&Digest::of(&message))
            .unwrap();
        let theirs = fixture_signature(&format!("{name}-sha256.seal-sig"));
        assert_eq!(ours.to_pem(), String::from_utf8(theirs).unwrap(), "{name}");
    }
}

#[test]
fn ssh_keygen_signatures_verify_here_and_altered_ones_do_not() {
    let message = signed_fixture();
    let pem = fixture_signature("ed25519.seal-sig");
    let sig = Signature::from_pem(&pem).unwrap();
    assert_eq!(sig.signer(), fixture_signer("ed25519"));
    sig.digest_of(&message)
        .and_then(|d| sig.verify(&d))
        .unwrap();

    // The file changed: one flipped byte anywhere, or another file.
    for at in [0, 40, message.len() / 2, message.len() - 1] {
        let digest = sig.digest_of(&flipped(&message, at)).unwrap();
        assert_eq!(
            sig.verify(&digest),
            Err(SignatureError::Invalid),
            "byte {at}"
        );
    }
    assert_eq!(
        sig.digest_of(b"another upload")
            .and_then(|d| sig.verify(&d)),
        Err(SignatureError::Invalid)
    );

    // The signature changed: any altered character of its base64 body fails to parse or
    // to verify (never verifies).
    every_altered_character_fails(&pem, &message, "ed25519");

    // Signed for another namespace: refused by name.
    let sig = Signature::from_pem(&fixture_signature("ed25519.file-sig")).unwrap();
    assert_eq!(
        sig.digest_of(&message).and_then(|d| sig.verify(&d)),
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
fn ssh_keygen_rsa_signatures_verify_here_with_either_hash_and_small_keys_are_refused() {
    let message = signed_fixture();
    let expected = fixture_signer("rsa2048");
    for (name, hash) in [
        ("rsa2048.seal-sig", "sha512"),
        ("rsa2048-sha256.seal-sig", "sha256"),
    ] {
        let pem = fixture_signature(name);
        let sig = Signature::from_pem(&pem).unwrap();
        assert_eq!(sig.signer(), expected);
        let digest = sig.digest_of(&message).unwrap();
        assert!(
            format!("{digest:?}").starts_with(&format!("Digest({hash}:")),
            "{name}: {digest:?}"
        );
        sig.verify(&digest).unwrap();

        for at in [0, message.len() / 2, message.len() - 1] {
            let digest = sig.digest_of(&flipped(&message, at)).unwrap();
            assert_eq!(
                sig.verify(&digest),
                Err(SignatureError::Invalid),
                "{name}, byte {at}"
            );
        }
        every_altered_character_fails(&pem, &message, name);
    }

    // ssh-keygen still signs with a 1024-bit key; seal refuses the signature by the size.
    let sig = Signature::from_pem(&fixture_signature("rsa1024.seal-sig")).unwrap();
    let verdict = sig.digest_of(&message).and_then(|d| sig.verify(&d));
    assert_eq!(verdict, Err(SignatureError::RsaKeySize(1024)));
    let message = verdict.unwrap_err().to_string();
    assert!(
        message.contains("1024 bits") && message.contains("2048"),
        "{message}"
    );
}

/// Seal's verdict on each list of [`allowed_signers_cases`] agrees with the one
/// `ssh-keygen -Y verify` gave (checked again against it by `tests/interop/ssh_keygen.rs`).
#[test]
fn allowed_signers_lists_are_read_as_ssh_keygen_reads_them() {
    use seal::allowed_signers::AllowedSigners;
    let key = SigningKey::generate_ed25519("alice").public_key();
    let now = SystemTime::now();
    for (list, openssh_accepts, ours) in allowed_signers_cases(&key) {
        let verdict = AllowedSigners::parse(&list).unwrap().check(&key, now);
        assert_eq!(verdict.is_ok(), openssh_accepts, "{list}: {verdict:?}");
        match (ours, verdict) {
            (Ok(principals), Ok(allowed)) => assert_eq!(allowed.principals, principals),
            (Err(expected), Err(refusal)) => assert!(expected(&refusal), "{list}: {refusal}"),
            (_, verdict) => panic!("{list}: {verdict:?}"),
        }
    }
}

#[test]
fn signed_files_name_their_signer_and_the_age_crate_and_unseal_still_open_them() {
    let (dir, _) = with_sealed_upload();
    let alice = SigningKey::generate_ed25519("alice");
    let plaintext = data(2 * CHUNK + 9, 8);
    let sealed = seal_signed(&dir, &alice.public_key(), &plaintext);

    let slice = seal::SealedSlice::new(&sealed).unwrap();
    let stanza = slice.header().stanzas.last().unwrap();
    assert_eq!(stanza.kind, "seal-signer");
    assert_eq!(stanza.args, [alice.public_key().fingerprint()]);
    assert!(stanza.body.is_empty());

    for key in ["server.key", "ed25519"] {
        let opened = unseal_ssh(&dir, &sealed, &["--key", key]);
        assert!(opened == plaintext, "unseal --key {key}");
    }
    // The extra stanza is nothing to the age crate, with either key.
    let identity = age_identity(&dir, "server.key");
    let opened = age::decrypt(&identity, &sealed).unwrap();
    assert!(opened == plaintext, "the age crate, X25519");
    let ssh = age::ssh::Identity::from_buffer(&dir.read("ed25519")[..], None).unwrap();
    let opened = age::decrypt(&ssh, &sealed).unwrap();
    assert!(opened == plaintext, "the age crate, ssh-ed25519");
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
    let (dir, sealed) = with_sealed_upload();
    let run = dir.line("seal-keygen --client alice").run().ok();
    assert_eq!(dir.mode("alice.key"), 0o600);
    let line = run.stdout_string();
    let public = dir.read_string("alice.pub");
    assert_eq!(line, format!("alice namespaces=\"seal\" {public}"));
    assert!(public.starts_with("ssh-ed25519 ") && public.ends_with(" alice\n"));
    dir.write("allowed_signers", &line);

    // The ssh-key crate reads the key file and signs with it (as ssh-keygen does: SHA-512);
    // seal accepts the signature, by the key it reads from the file, under the printed line.
    ssh_key_sign(&dir, "alice.key", NAMESPACE, "upload.age");
    let key = SigningKey::from_openssh(&dir.read_string("alice.key"), &mut no_passphrase).unwrap();
    let sig = Signature::from_pem(&dir.read("upload.age.sig")).unwrap();
    sig.digest_of(&sealed).and_then(|d| sig.verify(&d)).unwrap();
    assert_eq!(sig.signer(), key.public_key());
    let signers = AllowedSigners::parse(&line).unwrap();
    let allowed = signers.check(&key.public_key(), SystemTime::now());
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
fn seal_sign_with_writes_a_signature_the_ssh_key_crate_accepts_and_a_bound_header() {
    let dir = with_keys();
    dir.new_key("server");
    dir.line("seal-keygen --client alice").run().ok();
    let alice =
        SigningKey::from_openssh(&dir.read_string("alice.key"), &mut no_passphrase).unwrap();
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
        // The ssh-key crate's own verifier accepts it; and it is what seal's signer makes over
        // these bytes (deterministic, and ssh-keygen's byte for byte: see
        // signatures_made_here_are_the_bytes_ssh_keygen_made).
        let pem = dir.read(&sig_name);
        ssh_key_verifies(&dir.read_string("alice.pub"), &sealed, &pem).unwrap();
        let expected = alice.sign(&Digest::of(&sealed)).unwrap().to_pem();
        assert_eq!(pem, expected.as_bytes(), "{line}");
        let sig = Signature::from_pem(&pem).unwrap();
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
    let refused = [
        (
            "seal report --to server.pub --sign-with alice.key",
            EXIT_IO,
            Says::Hint(&["report.age.sig", "already exists"], "--force"),
        ),
        (
            "seal report --to server.pub --sign-with alice.key -o -",
            EXIT_USAGE,
            Says::Hint(&["--sign-with", "output file"], "-o FILE"),
        ),
        (
            "seal report --to server.pub --sign-with ecdsa -o r.age",
            EXIT_USAGE,
            Says::Error(&["ecdsa: ", "not supported"]),
        ),
        (
            "seal report --to server.pub --sign-with rsa1024 -o r.age",
            EXIT_USAGE,
            Says::Error(&["rsa1024: ", "1024 bits"]),
        ),
        (
            "seal report --to server.pub --sign-with nonexistent.key -o r.age",
            EXIT_IO,
            Says::Error(&["nonexistent.key: no such file"]),
        ),
        (
            "seal report --passphrase-file report --sign-with alice.key -o r.age",
            EXIT_USAGE,
            Says::Hint(&["--sign-with", "passphrase"], "--to"),
        ),
    ];
    refuses_all(&dir, &refused);
}

#[test]
fn seal_sign_with_an_rsa_key_writes_the_signature_ssh_keygen_would_and_a_bound_header() {
    let dir = with_keys();
    dir.new_key("server");
    let plaintext = data(2 * CHUNK + 1, 9);
    dir.write("report", &plaintext);
    dir.line("seal report --to server.pub --sign-with rsa2048")
        .run()
        .ok();
    let sealed = dir.read("report.age");
    let pem = dir.read_string("report.age.sig");
    // RSA PKCS#1 v1.5 is deterministic: the signature seal's signer makes over these bytes,
    // which over the fixture file is ssh-keygen's, byte for byte.
    let key = fixture_signing_key("rsa2048");
    assert_eq!(key.sign(&Digest::of(&sealed)).unwrap().to_pem(), pem);

    // Bound to the header, which names the RSA key; refused over other bytes.
    let sig = Signature::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(sig.signer(), fixture_signer("rsa2048"));
    let server = seal::keys::parse_identity_file(&dir.read_string("server.key")).unwrap();
    let slice = seal::SealedSlice::new(&sealed).unwrap();
    let payload = slice.unwrap(&[server[0].as_ref()]).unwrap();
    sig.verify_bound(&Digest::of(&sealed), &slice.header().stanzas)
        .unwrap();
    assert!(payload.decrypt_to_vec().unwrap() == plaintext);
    let altered = sig.digest_of(&flipped(&sealed, sealed.len() - 1)).unwrap();
    assert_eq!(sig.verify(&altered), Err(SignatureError::Invalid));
}
