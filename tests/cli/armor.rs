//! ASCII armor (issue 6): its shape, round trips every way in and out, CRLF, and the `age`
//! crate's armor.

use std::str::FromStr;

use crate::common::*;

/// Checks the shape age's spec gives armor: the begin line, full 64-column lines, a last line
/// that may be shorter but not empty, the end line, a final newline.
fn assert_armor_shape(armored: &[u8]) {
    let text = std::str::from_utf8(armored).expect("armor is text");
    assert!(text.ends_with(&format!("\n{END}\n")), "{text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], BEGIN);
    let body = &lines[1..lines.len() - 1];
    assert!(!body.is_empty());
    for line in &body[..body.len() - 1] {
        assert_eq!(line.len(), 64, "{line:?}");
    }
    let last = body[body.len() - 1];
    assert!(!last.is_empty() && last.len() <= 64 && last.len().is_multiple_of(4));
}

#[test]
fn armor_round_trips_every_size_by_every_way_in_and_out() {
    let dir = Dir::new();
    dir.new_key("server");
    for (seed, &len) in SIZES.iter().enumerate() {
        let plaintext = data(len, 300 + seed as u64);
        for io in [Io::OutputFlag, Io::Pipes] {
            let armored = transform(&dir, "seal", io, &plaintext, &["-a", "--to", "server.pub"]);
            assert_armor_shape(&armored);
            for flags in [&[][..], &["--no-mmap"], &["--threads", "1"]] {
                let keys = [WITH_KEY, flags].concat();
                for unseal_io in [Io::DefaultNames, Io::Pipes] {
                    let opened = unseal_via(&dir, unseal_io, &armored, &keys);
                    assert!(
                        opened == plaintext,
                        "{len} bytes, {io:?} {flags:?} {unseal_io:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn armored_output_may_go_to_standard_output_and_crlf_armor_opens() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("notes.txt", "meet at noon\n");
    let run = dir
        .line("seal -a notes.txt --to server.pub -o -")
        .run()
        .ok();
    let crlf = run.stdout_string().replace('\n', "\r\n");
    let opened = unseal_via(&dir, Io::Pipes, crlf.as_bytes(), WITH_KEY);
    assert_eq!(opened, b"meet at noon\n");
}

#[test]
fn the_age_crate_reads_what_seal_armors_and_unseal_what_it_armors() {
    let dir = Dir::new();
    let recipient = dir.new_key("server");
    let identity = age_identity(&dir, "server.key");
    let to = age::x25519::Recipient::from_str(&recipient).unwrap();
    for (seed, &len) in INTEROP_SIZES.iter().enumerate() {
        let plaintext = data(len, 400 + seed as u64);
        let ours = transform(
            &dir,
            "seal",
            Io::Pipes,
            &plaintext,
            &["-a", "--to", "server.pub"],
        );
        let opened = age::decrypt(&identity, &ours).unwrap();
        assert!(opened == plaintext, "age: {len} bytes armored by seal");

        let theirs = age::encrypt_and_armor(&to, &plaintext).unwrap();
        assert!(theirs.starts_with(BEGIN));
        for flags in [&[][..], &["--no-mmap"]] {
            let keys = [WITH_KEY, flags].concat();
            for io in [Io::DefaultNames, Io::Pipes] {
                let opened = unseal_via(&dir, io, theirs.as_bytes(), &keys);
                assert!(opened == plaintext, "age -a: {len} bytes, {flags:?} {io:?}");
            }
        }
    }
}
