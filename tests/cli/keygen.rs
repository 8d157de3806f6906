//! `seal-keygen` for age keys: the key file and its public file, `-y`, and standard output.
//! (Post-quantum keys: `post_quantum.rs`; SSH keys: `ssh_keys.rs`; client keys:
//! `signing.rs`.)

use crate::common::*;

#[test]
fn keygen_writes_a_0600_private_key_and_the_public_key_beside_it() {
    let dir = Dir::new();
    let run = dir.bin("seal-keygen").args(["-o", "server.key"]).run().ok();
    assert_eq!(dir.listing(), listing(&["server.key", "server.pub"]));
    assert_eq!(dir.mode("server.key"), 0o600);

    let text = dir.read_string("server.key");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() == 3 && text.ends_with('\n'),
        "server.key:\n{text}"
    );
    let created = lines[0].strip_prefix("# created: ").expect("# created:");
    let rfc3339 = created.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b'T',
        13 | 16 => b == b':',
        19 => b == b'Z',
        _ => b.is_ascii_digit(),
    });
    assert!(
        rfc3339 && created.len() == 20,
        "not an RFC 3339 UTC time: {created}"
    );
    let public = lines[1]
        .strip_prefix("# public key: ")
        .expect("# public key:");
    assert!(public.starts_with("age1") && public.len() == 62, "{public}");
    assert!(lines[2].starts_with("AGE-SECRET-KEY-1") && lines[2].len() == 74);

    assert_eq!(dir.read_string("server.pub"), format!("{public}\n"));
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains(&format!("Public key: {public}")));
}

#[test]
fn keygen_names_the_public_file_after_any_output_name() {
    let dir = Dir::new();
    dir.bin("seal-keygen").args(["-o", "id"]).run().ok();
    dir.bin("seal-keygen").args(["-o", "a.txt"]).run().ok();
    let expected = listing(&["a.txt", "a.txt.pub", "id", "id.pub"]);
    assert_eq!(dir.listing(), expected);
}

#[test]
fn keygen_never_overwrites_a_key_or_its_public_file() {
    for existing in ["server.key", "server.pub"] {
        let dir = Dir::new();
        dir.write(existing, "precious\n");
        dir.bin("seal-keygen")
            .args(["-o", "server.key"])
            .run()
            .fails(EXIT_IO)
            .says(
                "seal-keygen",
                &[&format!("{existing}: already exists")],
                None,
            );
        assert_eq!(dir.read_string(existing), "precious\n");
        assert_eq!(dir.listing(), listing(&[existing]), "a file was written");
    }
}

#[test]
fn keygen_y_prints_the_public_key_of_a_key_file_or_of_stdin() {
    let dir = Dir::new();
    let recipient = dir.new_key("server");
    let from_file = dir.bin("seal-keygen").args(["-y", "server.key"]).run().ok();
    assert_eq!(from_file.stdout_string(), format!("{recipient}\n"));
    let key = dir.read("server.key");
    let from_stdin = dir
        .bin("seal-keygen")
        .args(["-y", "-"])
        .stdin(key)
        .run()
        .ok();
    assert_eq!(from_stdin.stdout_string(), format!("{recipient}\n"));
}

#[test]
fn keygen_without_o_prints_a_working_key_to_stdout() {
    let dir = Dir::new();
    let run = dir.bin("seal-keygen").run().ok();
    assert_eq!(dir.listing(), listing(&[]), "no files without -o");
    let text = run.stdout_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() == 3 && lines[0].starts_with("# created: "),
        "{text}"
    );
    assert!(lines[2].starts_with("AGE-SECRET-KEY-1"), "{text}");
    let public = lines[1]
        .strip_prefix("# public key: ")
        .expect("# public key:");
    assert_eq!(run.stderr, format!("Public key: {public}\n"));

    dir.write_private("printed.key", &text);
    let plaintext = data(1000, 1);
    let sealed = seal_via(&dir, Io::Pipes, &plaintext, &["-r", public]);
    let opened = unseal_via(&dir, Io::Pipes, &sealed, &["--key", "printed.key"]);
    assert_eq!(opened, plaintext);
}
