//! Interop with the `age` crate, in process: it opens what `seal` writes, `unseal` opens
//! what it writes, and each reads the other's keys. (Armor: `armor.rs`; SSH keys:
//! `ssh_keys.rs`; the Go age CLI: `tests/interop/go_age.rs`.)

use std::str::FromStr;

use crate::common::*;

#[test]
fn the_age_crate_opens_what_seal_writes() {
    let dir = Dir::new();
    dir.new_key("server");
    let identity = age_identity(&dir, "server.key");
    for (seed, &len) in INTEROP_SIZES.iter().enumerate() {
        let plaintext = data(len, 100 + seed as u64);
        for flags in [&[][..], &["--no-mmap"], &["--threads", "1"]] {
            let to = [&["--to", "server.pub"], flags].concat();
            let sealed = seal_via(&dir, Io::OutputFlag, &plaintext, &to);
            let opened = age::decrypt(&identity, &sealed).unwrap();
            assert!(opened == plaintext, "age: {len} bytes, sealed {flags:?}");
        }
    }
}

#[test]
fn unseal_opens_what_the_age_crate_writes() {
    let dir = Dir::new();
    let recipient = dir.new_key("server");
    let to = age::x25519::Recipient::from_str(&recipient).unwrap();
    for (seed, &len) in INTEROP_SIZES.iter().enumerate() {
        let plaintext = data(len, 200 + seed as u64);
        let sealed = age::encrypt(&to, &plaintext).unwrap();
        for flags in [&[][..], &["--no-mmap"], &["--threads", "1"]] {
            let keys = [WITH_KEY, flags].concat();
            for io in [Io::DefaultNames, Io::Pipes] {
                let opened = unseal_via(&dir, io, &sealed, &keys);
                let how = format!("{len} bytes, unsealed {flags:?} {io:?}");
                assert!(opened == plaintext, "age: {how}");
            }
        }
    }
}

#[test]
fn the_age_crate_and_seal_keygen_read_each_others_keys() {
    use age::secrecy::ExposeSecret;
    let dir = Dir::new();
    let ours = dir.new_key("ours");
    let derived = age_identity(&dir, "ours.key").to_public().to_string();
    assert_eq!(derived, ours);
    let identities = age::IdentityFile::from_buffer(&dir.read("ours.key")[..]).unwrap();
    let identities = identities.into_identities().unwrap();
    let sealed = seal_via(&dir, Io::Pipes, b"to ours", &["-r", &ours]);
    let decryptor = age::Decryptor::new_buffered(&sealed[..]).unwrap();
    let mut opened = Vec::new();
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as _))
        .unwrap();
    std::io::Read::read_to_end(&mut reader, &mut opened).unwrap();
    assert_eq!(opened, b"to ours");

    // A key the age crate made, in the file age-keygen writes.
    let key = age::x25519::Identity::generate();
    let theirs = key.to_public().to_string();
    let secret = key.to_string();
    let file = format!(
        "# created: 2025-01-01T00:00:00Z\n# public key: {theirs}\n{}\n",
        secret.expose_secret()
    );
    dir.write_private("theirs.key", file);
    let run = dir.bin("seal-keygen").args(["-y", "theirs.key"]).run().ok();
    assert_eq!(run.stdout_string(), format!("{theirs}\n"));

    let plaintext = data(CHUNK + 7, 13);
    let sealed = seal_via(&dir, Io::Pipes, &plaintext, &["-r", &theirs]);
    assert!(age::decrypt(&key, &sealed).unwrap() == plaintext);
    let opened = unseal_via(&dir, Io::Pipes, &sealed, &["--key", "theirs.key"]);
    assert!(opened == plaintext);
}
