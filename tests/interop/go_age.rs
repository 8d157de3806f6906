//! The Go `age` and `age-keygen` CLI (Debian package `age`): each opens what seal writes and
//! seal opens what it writes, binary and armored, to age keys, SSH keys and passphrases.
//! In process, with the `age` crate, `cargo test` checks the same (`tests/cli/age_crate.rs`,
//! `armor.rs`, `ssh_keys.rs`, `passphrase.rs`).

use seal::sshsig::SigningKey;

use crate::common::terminal::on_terminal;
use crate::common::*;

#[test]
fn go_age_opens_what_seal_writes() {
    let age = program("age");
    let dir = Dir::new();
    dir.new_key("server");
    for (seed, &len) in INTEROP_SIZES.iter().enumerate() {
        let plaintext = data(len, 100 + seed as u64);
        for flags in [&[][..], &["--no-mmap"]] {
            let to = [&["--to", "server.pub"], flags].concat();
            let sealed = seal_via(&dir, Io::OutputFlag, &plaintext, &to);
            dir.write("sealed.age", sealed);
            // To stdout: age creates an `-o` file only when it first writes to it.
            let opened = dir.cmd(&age).args(["-d", "-i", "server.key", "sealed.age"]);
            let opened = opened.run().ok().stdout;
            assert!(opened == plaintext, "age -d: {len} bytes, {flags:?}");
        }
    }
}

#[test]
fn unseal_opens_what_go_age_writes() {
    let age = program("age");
    let dir = Dir::new();
    let recipient = dir.new_key("server");
    for (seed, &len) in INTEROP_SIZES.iter().enumerate() {
        let plaintext = data(len, 200 + seed as u64);
        dir.write("plain", &plaintext);
        for to in [["-R", "server.pub"], ["-r", &recipient]] {
            let age_encrypt = dir.cmd(&age).args(to);
            age_encrypt.args(["-o", "sealed.age", "plain"]).run().ok();
            let sealed = dir.read("sealed.age");
            dir.remove("sealed.age");
            for flags in [&[][..], &["--no-mmap"], &["--threads", "1"]] {
                let keys = [WITH_KEY, flags].concat();
                for io in [Io::DefaultNames, Io::Pipes] {
                    let opened = unseal_via(&dir, io, &sealed, &keys);
                    let how = format!("{to:?}, {len} bytes, unsealed {flags:?} {io:?}");
                    assert!(opened == plaintext, "age {how}");
                }
            }
        }
        dir.remove("plain");
    }
}

#[test]
fn go_age_keygen_and_seal_keygen_read_each_others_keys() {
    let age_keygen = program("age-keygen");
    let dir = Dir::new();
    let ours = dir.new_key("ours");
    let derived = dir.cmd(&age_keygen).args(["-y", "ours.key"]).run().ok();
    assert_eq!(derived.stdout_string(), format!("{ours}\n"));

    dir.cmd(&age_keygen).args(["-o", "theirs.key"]).run().ok();
    let run = dir.bin("seal-keygen").args(["-y", "theirs.key"]).run().ok();
    let theirs = run.stdout_string();
    let theirs = theirs.trim_end();
    let text = dir.read_string("theirs.key");
    let line = format!("# public key: {theirs}\n");
    assert!(text.contains(&line), "{text}");

    let plaintext = data(CHUNK + 7, 13);
    let sealed = seal_via(&dir, Io::Pipes, &plaintext, &["-r", theirs]);
    let opened = unseal_via(&dir, Io::Pipes, &sealed, &["--key", "theirs.key"]);
    assert!(opened == plaintext);
}

#[test]
fn go_age_opens_what_seal_armors() {
    let age = program("age");
    let dir = Dir::new();
    dir.new_key("server");
    for (seed, &len) in INTEROP_SIZES.iter().enumerate() {
        let plaintext = data(len, 400 + seed as u64);
        let armored = transform(
            &dir,
            "seal",
            Io::Pipes,
            &plaintext,
            &["-a", "--to", "server.pub"],
        );
        dir.write("sealed.age", armored);
        let opened = dir.cmd(&age).args(["-d", "-i", "server.key", "sealed.age"]);
        assert!(opened.run().ok().stdout == plaintext, "age -d: {len} bytes");
    }
}

#[test]
fn unseal_opens_what_go_age_armors() {
    let age = program("age");
    let dir = Dir::new();
    dir.new_key("server");
    for (seed, &len) in INTEROP_SIZES.iter().enumerate() {
        let plaintext = data(len, 500 + seed as u64);
        dir.write("plain", &plaintext);
        let age_encrypt = dir
            .cmd(&age)
            .args(["-a", "-R", "server.pub", "-o", "sealed.age"]);
        age_encrypt.arg("plain").run().ok();
        let armored = dir.read("sealed.age");
        assert!(armored.starts_with(BEGIN.as_bytes()));
        dir.remove("sealed.age");
        dir.remove("plain");
        for flags in [&[][..], &["--no-mmap"]] {
            let keys = [WITH_KEY, flags].concat();
            for io in [Io::DefaultNames, Io::Pipes] {
                let opened = unseal_via(&dir, io, &armored, &keys);
                assert!(opened == plaintext, "age -a: {len} bytes, {flags:?} {io:?}");
            }
        }
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
fn go_age_opens_what_seal_seals_to_key_pairs_seal_keygen_makes() {
    let age = program("age");
    let dir = Dir::new();
    for kind in ["rsa", "ed25519"] {
        let key = format!("{kind}.key");
        let public = format!("{kind}.pub");
        dir.new_ssh_key(kind, &key);
        let plaintext = data(CHUNK + 5, 77);
        let sealed = seal_ssh(&dir, &plaintext, &["--to", &public]);
        dir.write("s.age", &sealed);
        let opened = dir.cmd(&age).args(["-d", "-i", &key, "s.age"]).run().ok();
        assert!(opened.stdout == plaintext, "{kind}");
        dir.remove("s.age");
    }
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
fn go_age_opens_signed_files() {
    let age = program("age");
    let (dir, _) = with_sealed_upload();
    let alice = SigningKey::generate_ed25519("alice");
    let plaintext = data(2 * CHUNK + 9, 8);
    let sealed = seal_signed(&dir, &alice.public_key(), &plaintext);
    dir.write("signed.age", &sealed);
    // The extra stanza is nothing to Go age, with either key.
    for key in ["server.key", "ed25519"] {
        let run = dir
            .cmd(&age)
            .args(["-d", "-i", key, "signed.age"])
            .run()
            .ok();
        assert!(run.stdout == plaintext, "age -d -i {key}");
    }
}

/// Passphrases typed on a terminal (a pseudo-terminal opened in process): seal asks twice
/// and `age -d` once; `age -p` asks twice and unseal once, only because the file needs it.
#[test]
fn passphrases_typed_on_a_terminal_interoperate_with_go_age_both_ways() {
    let age = program("age");
    let dir = Dir::new();
    let plaintext = data(CHUNK + 100, 31);
    dir.write("plain", &plaintext);

    let line = "seal plain --passphrase --work-factor 12 -o ours.age";
    on_terminal(dir.line(line), "hunter2\nhunter2\n").ok();
    let age_decrypt = dir.cmd(&age).args(["-d", "-o", "opened", "ours.age"]);
    on_terminal(age_decrypt, "hunter2\n").ok();
    assert!(dir.read("opened") == plaintext);
    dir.remove("opened");

    let age_encrypt = dir.cmd(&age).args(["-p", "-o", "theirs.age", "plain"]);
    on_terminal(age_encrypt, "hunter2\nhunter2\n").ok();
    on_terminal(dir.line("unseal theirs.age -o opened"), "hunter2\n").ok();
    assert!(dir.read("opened") == plaintext);
}

/// Issue 20: files Go age sealed to the old server key, rotated by `unseal --rewrap-to` (in
/// place, and by a copy to two recipients), open with Go age under the new keys only.
#[test]
fn go_age_opens_files_rotated_from_what_it_wrote_under_the_new_key_only() {
    let age = program("age");
    let dir = Dir::new();
    dir.new_key("old");
    dir.new_key("new");
    dir.new_key("escrow");
    let plaintext = data(3 << 20, 300);
    dir.write("plain", &plaintext);
    dir.mkdir("one");
    dir.mkdir("two");
    for sealed in ["one/a.age", "two/a.age"] {
        let age_encrypt = dir.cmd(&age).args(["-R", "old.pub", "-o", sealed, "plain"]);
        age_encrypt.run().ok();
    }
    dir.line("unseal --rewrap-to new.pub -k old.key one")
        .run()
        .ok();
    let two = "unseal --rewrap-to new.pub --rewrap-to escrow.pub -k old.key two";
    dir.line(two).run().ok();
    for (sealed, keys) in [
        ("one/a.age", &["new"][..]),
        ("two/a.age", &["new", "escrow"]),
    ] {
        for key in keys {
            let opened = dir
                .cmd(&age)
                .args(["-d", "-i", &format!("{key}.key"), sealed]);
            assert!(opened.run().ok().stdout == plaintext, "{sealed}, {key}");
        }
        let old = dir.cmd(&age).args(["-d", "-i", "old.key", sealed]).run();
        assert_ne!(old.code, 0, "{sealed}: the old key still opens it");
    }
}

#[test]
fn go_age_and_seal_run_the_same_plugin_both_ways() {
    let age = program("age");
    let dir = Dir::new();
    let recipient = plugin_key(&dir);
    let plaintext = data(3 << 20, 77);
    dir.write("plain", &plaintext);
    let path = path_with(&plugin_dir());

    // seal to the plugin, age opens with it.
    with_plugin(&dir, "seal plain --to plugin.pub -o ours.age", &[])
        .run()
        .ok();
    let mut opened = dir.cmd(&age).args(["-d", "-i", "plugin.key", "ours.age"]);
    opened.cmd.env("PATH", &path);
    assert!(opened.run().ok().stdout == plaintext, "age -d opens seal's");

    // age seals to the plugin, unseal opens with it.
    let mut sealed = dir
        .cmd(&age)
        .args(["-r", &recipient, "-o", "theirs.age", "plain"]);
    sealed.cmd.env("PATH", &path);
    sealed.run().ok();
    with_plugin(&dir, "unseal theirs.age -k plugin.key -o opened", &[])
        .run()
        .ok();
    assert!(dir.read("opened") == plaintext, "unseal opens age's");
}
