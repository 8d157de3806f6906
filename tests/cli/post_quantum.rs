//! Post-quantum keys (issue 7): `seal-keygen --pq`, `age1pq1...` recipients.
//!
//! The Go age on this machine (1.1.x, Debian's) predates post-quantum keys (age 1.3), and
//! the `age` crate has none either: the C2SP hybrid vectors are the interop check
//! (`tests/conformance.rs`, and `.ci/run` through the real binary).

use crate::common::*;

#[test]
fn keygen_pq_writes_a_post_quantum_key_pair_that_y_reads_back() {
    let dir = Dir::new();
    let run = dir
        .bin("seal-keygen")
        .args(["--pq", "-o", "server.key"])
        .run()
        .ok();
    assert_eq!(dir.listing(), listing(&["server.key", "server.pub"]));
    assert_eq!(dir.mode("server.key"), 0o600);
    let text = dir.read_string("server.key");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() == 3 && lines[0].starts_with("# created: "),
        "{text}"
    );
    let public = lines[1]
        .strip_prefix("# public key: ")
        .expect("# public key:");
    assert!(
        public.starts_with("age1pq1") && public.len() == 1959,
        "{public}"
    );
    assert!(lines[2].starts_with("AGE-SECRET-KEY-PQ-1") && lines[2].len() == 77);
    assert_eq!(dir.read_string("server.pub"), format!("{public}\n"));
    assert!(run.stderr.contains(&format!("Public key: {public}")));

    let from_file = dir.bin("seal-keygen").args(["-y", "server.key"]).run().ok();
    assert_eq!(from_file.stdout_string(), format!("{public}\n"));
    let from_stdin = dir.bin("seal-keygen").args(["-y", "-"]);
    let from_stdin = from_stdin.stdin(dir.read("server.key")).run().ok();
    assert_eq!(from_stdin.stdout_string(), format!("{public}\n"));

    // Two runs make two different keys.
    assert_ne!(dir.new_pq_key("other"), public);
}

#[test]
fn keygen_y_derives_the_public_key_of_the_spec_example() {
    let dir = Dir::new();
    let example = include_str!("../../testdata/pq/spec-example.key");
    dir.write_private("example.key", example);
    let run = dir
        .bin("seal-keygen")
        .args(["-y", "example.key"])
        .run()
        .ok();
    let public = example
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap();
    assert_eq!(run.stdout_string(), format!("{public}\n"));
}

#[test]
fn post_quantum_keys_round_trip_through_the_binaries() {
    let dir = Dir::new();
    let recipient = dir.new_pq_key("server");
    for (seed, &len) in [0, 1, CHUNK, 2 * CHUNK + 500].iter().enumerate() {
        let plaintext = data(len, 300 + seed as u64);
        let ways: [(&[&str], Io); 3] = [
            (&["--to", "server.pub"], Io::DefaultNames),
            (&["-r", &recipient], Io::Pipes),
            (&["-R", "server.pub", "--threads", "1"], Io::OutputFlag),
        ];
        for (to, io) in ways {
            let sealed = transform(&dir, "seal", io, &plaintext, to);
            assert!(sealed.starts_with(b"age-encryption.org/v1\n-> mlkem768x25519 "));
            assert_eq!(
                sealed_len(Layout::of(&sealed).header_len, len),
                sealed.len()
            );
            for io in [Io::DefaultNames, Io::Pipes] {
                let opened = unseal_via(&dir, io, &sealed, WITH_KEY);
                assert!(opened == plaintext, "{len} bytes, sealed {to:?}");
            }
        }
    }
}

#[test]
fn a_post_quantum_file_with_another_key_is_exit_3() {
    let dir = Dir::new();
    dir.new_pq_key("server");
    dir.new_pq_key("other");
    dir.new_key("classic");
    let sealed = transform(
        &dir,
        "seal",
        Io::Pipes,
        &data(5000, 4),
        &["--to", "server.pub"],
    );
    for keys in [&["--key", "other.key"][..], &["--key", "classic.key"]] {
        let cases = [("sealed to another key", sealed.clone())];
        let needle = (EXIT_NO_MATCH, "no key matches (tried 1)");
        unseal_refuses(&dir, &bad_files(keys, needle, cases));
    }
    // A key file with a classical key and the right post-quantum key opens it.
    let both = [dir.read("classic.key"), dir.read("server.key")].concat();
    dir.write_private("both.key", both);
    let opened = unseal_via(&dir, Io::Pipes, &sealed, &["--key", "both.key"]);
    assert_eq!(opened, data(5000, 4));
}

#[test]
fn mixing_post_quantum_and_classical_keys_is_refused_and_writes_nothing() {
    let dir = Dir::new();
    let pq = dir.new_pq_key("pq");
    let classic = dir.new_key("classic");
    dir.write("both.pub", format!("{classic}\n{pq}\n"));
    dir.write("plain", data(100, 5));
    std::fs::create_dir(dir.path("tree")).unwrap();
    dir.write("tree/a", data(10, 6));
    let command_lines: [&[&str]; 5] = [
        &["plain", "--to", "pq.pub", "--to", "classic.pub"],
        &["plain", "-r", &classic, "-r", &pq],
        &["plain", "-R", "both.pub"],
        &["plain", "--to", "pq.pub", "-r", &classic, "-o", "out.age"],
        &["tree", "--to", "both.pub"],
    ];
    let says = Says::Hint(&["incompatible recipients", "post-quantum"], "age1pq1");
    let rows = command_lines.map(|args| (format!("seal {args:?}"), args));
    each_row(rows, |args| {
        refuses(&dir, dir.bin("seal").args(args), EXIT_USAGE, says);
    });
    // Several post-quantum keys may share a file.
    dir.new_pq_key("pq2");
    let to = ["--to", "pq.pub", "--to", "pq2.pub"];
    let sealed = transform(&dir, "seal", Io::Pipes, b"both", &to);
    for key in ["pq.key", "pq2.key"] {
        assert_eq!(
            unseal_via(&dir, Io::Pipes, &sealed, &["--key", key]),
            b"both"
        );
    }
}
