//! Recipients and identities: every way of naming them, several of them, and key files
//! others can read or that are given to the wrong flag.

use crate::common::*;

#[test]
fn every_way_of_naming_a_recipient_seals_to_it() {
    let dir = Dir::new();
    let recipient = dir.new_key("server");
    let plaintext = data(70_000, 3);
    let ways: [&[&str]; 5] = [
        &["--to", "server.pub"],
        &["-t", "server.pub"],
        &["--to", &recipient],
        &["-r", &recipient],
        &["-R", "server.pub"],
    ];
    for to in ways {
        let sealed = seal_via(&dir, Io::OutputFlag, &plaintext, to);
        assert_eq!(Layout::of(&sealed).shares.len(), 1, "{to:?}");
        let opened = unseal_via(&dir, Io::OutputFlag, &sealed, WITH_KEY);
        assert!(opened == plaintext, "{to:?}");
    }
}

#[test]
fn every_recipient_of_a_file_can_open_it() {
    let dir = Dir::new();
    let [_, b, _, d, e] = ["a", "b", "c", "d", "e"].map(|name| dir.new_key(name));
    dir.write("team.pub", format!("# team\n{d}\n\n{e}\n"));
    let plaintext = data(CHUNK + 1, 4);
    let to = ["--to", "a.pub", "-r", &b, "-R", "c.pub", "-R", "team.pub"];
    let sealed = seal_via(&dir, Io::OutputFlag, &plaintext, &to);
    assert_eq!(Layout::of(&sealed).shares.len(), 5);
    for key in ["a.key", "b.key", "c.key", "d.key", "e.key"] {
        let opened = unseal_via(&dir, Io::OutputFlag, &sealed, &["--key", key]);
        assert!(opened == plaintext, "{key} did not open it");
    }
    dir.new_key("stranger");
    let no_match = (EXIT_NO_MATCH, "no key matches (tried 1)");
    let cases = [("sealed to others", sealed)];
    unseal_refuses(
        &dir,
        &bad_files(&["--key", "stranger.key"], no_match, cases),
    );
}

#[test]
fn an_identity_file_with_several_keys_opens_with_any_of_them() {
    let dir = Dir::new();
    dir.new_key("old");
    dir.new_key("server");
    let both = [dir.read("old.key"), dir.read("server.key")].concat();
    dir.write_private("both.key", both);
    let plaintext = data(5000, 5);
    let sealed = seal_to_server(&dir, &plaintext);
    for io in [Io::OutputFlag, Io::Pipes] {
        let opened = unseal_via(&dir, io, &sealed, &["--key", "both.key"]);
        assert!(opened == plaintext, "{io:?}");
    }
}

#[test]
fn repeated_key_flags_are_all_tried() {
    let dir = Dir::new();
    for name in ["a", "b", "server"] {
        dir.new_key(name);
    }
    let plaintext = data(CHUNK, 6);
    let sealed = seal_to_server(&dir, &plaintext);
    let ways: [&[&str]; 4] = [
        &["--key", "a.key", "--key", "server.key"],
        &["-k", "a.key", "-i", "b.key", "-i", "server.key"],
        &["-i", "server.key", "-k", "a.key"],
        &["--identity", "b.key", "--key", "server.key"],
    ];
    for keys in ways {
        let opened = unseal_via(&dir, Io::OutputFlag, &sealed, keys);
        assert!(opened == plaintext, "{keys:?}");
    }
}

#[test]
fn a_key_file_others_can_read_is_warned_about_but_works() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.chmod("server.key", 0o644);
    let sealed = seal_to_server(&dir, b"hello");
    dir.write("hello.age", &sealed);
    let run = dir
        .bin("unseal")
        .args(["hello.age", "-k", "server.key"])
        .run()
        .ok();
    let warning = "unseal: warning: server.key: private key is readable by group or others; \
                   run chmod 600";
    assert_eq!(run.stderr_lines(), [warning]);
    assert_eq!(dir.read("hello"), b"hello");
}

#[test]
fn a_private_key_given_as_a_recipients_file_is_never_echoed() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("plain.txt", "hello\n");
    for flag in ["--to", "-R"] {
        let run = dir
            .bin("seal")
            .args(["plain.txt", flag, "server.key"])
            .run();
        let run = run.fails(EXIT_USAGE);
        let stderr = &run.stderr;
        // Named by its kind ("AGE-SECRET-KEY-1..."), but no piece of the key is shown.
        let key = String::from_utf8(dir.read("server.key")).unwrap();
        let secret = key
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
            .unwrap();
        let body = &secret["AGE-SECRET-KEY-1".len()..];
        for piece in body.as_bytes().windows(8) {
            let piece = std::str::from_utf8(piece).unwrap();
            assert!(!stderr.contains(piece), "{flag}: the key leaked: {stderr}");
        }
        assert!(
            stderr.contains("secret key (AGE-SECRET-KEY-1...)"),
            "{stderr}"
        );
    }
}
