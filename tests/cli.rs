//! End-to-end tests of the `seal`, `unseal` and `seal-keygen` binaries.
//!
//! Every test works in its own temporary directory ([`Dir`]) and runs the built binaries in
//! it through [`Cmd`], in the style of ripgrep's integration tests (the harness is
//! `tests/common`). A failure is checked for its documented exit code, a single
//! `program: error: ...` line naming the file, and a directory left exactly as it was: no
//! output file, no `.seal-partial` temporary file.
//!
//! Nothing here runs a program from outside: interop is checked in process, against the
//! `age` crate, the `ssh-key` crate's own SSHSIG code, and what `ssh-keygen` made once
//! (`testdata/ssh-keygen`, `testdata/signatures`), and passphrase prompts on a
//! pseudo-terminal opened in process. The same checks against the Go `age` CLI, `ssh-keygen`
//! and `openssl` themselves are `tests/interop.rs` (`cargo test --test interop`).

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::{Duration, Instant};

mod common;
use common::terminal::on_terminal;
use common::*;

/// Sizes around every chunk edge, up to more than one parallel group (16 chunks).
const SIZES: &[usize] = &[
    0,
    1,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    2 * CHUNK,
    2 * CHUNK + 500,
    (1 << 20) + 3,
];

// ---------------------------------------------------------------------------------------------
// Round trips by way of files, default names and pipes.

/// Seals and unseals every size in [`SIZES`] by way of `io`, with extra flags for each side.
fn check_round_trips(io: Io, seal_flags: &[&str], unseal_flags: &[&str]) {
    let dir = Dir::new();
    dir.new_key("server");
    let to = [&["--to", "server.pub"], seal_flags].concat();
    let key = [&["--key", "server.key"], unseal_flags].concat();
    for (seed, &len) in SIZES.iter().enumerate() {
        let plaintext = data(len, seed as u64);
        let sealed = seal_via(&dir, io, &plaintext, &to);
        let opened = unseal_via(&dir, io, &sealed, &key);
        let how = format!("{io:?} {seal_flags:?} / {unseal_flags:?}");
        assert!(opened == plaintext, "{how}: {len} bytes did not round-trip");
    }
}

// ---------------------------------------------------------------------------------------------
// Refusals: exit code, one message naming the input, nothing left behind.

/// How `unseal` reads the file it must refuse.
#[derive(Clone, Copy, Debug)]
enum Read {
    /// A file argument, memory-mapped, opened on every core; default output name.
    Mapped,
    /// A file argument with `--no-mmap` (the streaming path); default output name.
    Streamed,
    /// Standard input, with `-o`.
    Stdin,
}

const READS: &[Read] = &[Read::Mapped, Read::Streamed, Read::Stdin];

/// Runs `unseal` with `keys` on each file of `cases` (named by what was done to it), read
/// each way in `reads`, and checks that it exits `code` with one error line that names the
/// input and contains `needle`, leaving the directory as it was.
fn check_refused(
    dir: &Dir,
    keys: &[&str],
    reads: &[Read],
    (code, needle): (i32, &str),
    cases: &[(&str, Vec<u8>)],
) {
    for (what, file) in cases {
        for &read in reads {
            dir.write("input.age", file);
            let before = dir.listing();
            let cmd = dir.bin("unseal").args(keys);
            let (cmd, name) = match read {
                Read::Mapped => (cmd.arg("input.age"), "input.age"),
                Read::Streamed => (cmd.args(["input.age", "--no-mmap"]), "input.age"),
                Read::Stdin => (
                    cmd.args(["-o", "output"]).stdin(file.clone()),
                    "standard input",
                ),
            };
            let run = cmd.run();
            let (got, stderr) = (run.code, &run.stderr);
            assert!(
                got == code,
                "{what} ({read:?}): exit {got}, not {code}; {stderr}"
            );
            run.says("unseal", &[&format!("error: {name}: "), needle], None);
            assert_eq!(
                dir.listing(),
                before,
                "{what} ({read:?}): files left behind"
            );
            dir.remove("input.age");
        }
    }
}

/// A directory with a `server` key, and three chunks (two full, one of 500 bytes) sealed to
/// it, with their layout.
fn three_chunk_file() -> (Dir, Vec<u8>, Layout) {
    let dir = Dir::new();
    dir.new_key("server");
    let plaintext = data(2 * CHUNK + 500, 7);
    let sealed = seal_to_server(&dir, &plaintext);
    let layout = Layout::of(&sealed);
    (dir, sealed, layout)
}

// ---------------------------------------------------------------------------------------------
// seal-keygen

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
fn keygen_y_refuses_a_public_key_file() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.bin("seal-keygen")
        .args(["-y", "server.pub"])
        .run()
        .fails(EXIT_USAGE)
        .says(
            "seal-keygen",
            &["server.pub: line 1: not a valid identity"],
            None,
        );
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

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn round_trip_with_default_output_names() {
    check_round_trips(Io::DefaultNames, &[], &[]);
}

#[test]
fn round_trip_with_output_flag() {
    check_round_trips(Io::OutputFlag, &[], &[]);
}

#[test]
fn round_trip_through_stdin_and_stdout() {
    check_round_trips(Io::Pipes, &[], &[]);
}

#[test]
fn round_trip_through_dash_arguments() {
    check_round_trips(Io::Dashes, &[], &[]);
}

#[test]
fn round_trip_with_one_thread() {
    check_round_trips(Io::OutputFlag, &["--threads", "1"], &["--threads", "1"]);
}

#[test]
fn round_trip_with_three_threads() {
    check_round_trips(Io::OutputFlag, &["--threads", "3"], &["--threads", "3"]);
}

#[test]
fn round_trip_without_mmap() {
    check_round_trips(Io::DefaultNames, &["--no-mmap"], &["--no-mmap"]);
}

#[test]
fn the_streaming_and_mapped_paths_read_each_other() {
    check_round_trips(Io::OutputFlag, &["--no-mmap"], &["--threads", "3"]);
    check_round_trips(Io::OutputFlag, &["--threads", "3"], &["--no-mmap"]);
}

/// A mapped file to standard output goes a 4 MiB window (64 chunks) at a time: a corrupt chunk
/// in the third window stops it after exactly the first two, and exits 6; a truncated file
/// releases nothing. With `--no-mmap` the same file goes through the stream pipeline.
#[test]
fn a_file_to_stdout_releases_only_authenticated_windows() {
    let dir = Dir::new();
    dir.new_key("server");
    let plaintext = data(150 * CHUNK + 77, 21);
    let sealed = seal_to_server(&dir, &plaintext);
    dir.write("f.age", &sealed);
    for flags in [&["--threads", "1"][..], &["--threads", "3"], &["--no-mmap"]] {
        let run = dir
            .bin("unseal")
            .args(["f.age", "--key", "server.key", "-o", "-"])
            .args(flags)
            .run()
            .ok();
        assert!(run.stdout == plaintext, "{flags:?}");
    }

    let at = Layout::of(&sealed);
    dir.write("bad.age", flipped(&sealed, at.chunk(130) + 5));
    let run = dir
        .bin("unseal")
        .args(["bad.age", "--key", "server.key", "-o", "-"])
        .run()
        .fails(EXIT_PAYLOAD)
        .says("unseal", &["bad.age", "payload corrupt at chunk 130"], None);
    assert_eq!(run.stdout.len(), 128 * CHUNK, "two whole windows, no more");
    assert!(run.stdout == plaintext[..128 * CHUNK]);

    dir.write("cut.age", truncated(&sealed, at.chunk(149)));
    let run = dir
        .bin("unseal")
        .args(["cut.age", "--key", "server.key", "-o", "-"])
        .run()
        .fails(EXIT_PAYLOAD);
    assert!(run.stdout.is_empty(), "a truncated file releases nothing");
}

/// A pipe on standard input or output is widened to 1 MiB, so that `cat f | unseal` hands
/// over 1 MiB per wake-up rather than 64 KiB; the stream still comes through whole.
#[test]
fn pipes_on_standard_input_and_output_are_widened() {
    let (dir, sealed, _) = three_chunk_file();
    let (stdin, mut feed) = std::io::pipe().unwrap();
    let (drain, stdout) = std::io::pipe().unwrap();
    let mut child = dir
        .bin("unseal")
        .cmd
        .args(WITH_KEY)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let widened = |pipe: &dyn std::os::fd::AsFd, name: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let size = rustix::pipe::fcntl_getpipe_size(pipe).unwrap();
            if size == 1 << 20 {
                break;
            }
            assert!(Instant::now() < deadline, "{name}: still {size} bytes");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    widened(&feed, "standard input");
    widened(&drain, "standard output");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut { drain }, &mut out).map(|_| out)
    });
    feed.write_all(&sealed).unwrap();
    drop(feed);
    assert!(child.wait().unwrap().success());
    let opened = reader.join().unwrap().unwrap();
    assert!(
        opened == data(2 * CHUNK + 500, 7),
        "the stream comes through whole"
    );
}

// ---------------------------------------------------------------------------------------------
// Recipients and identities

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
    check_refused(&dir, &["--key", "stranger.key"], READS, no_match, &cases);
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

// ---------------------------------------------------------------------------------------------
// Existing outputs

#[test]
fn an_existing_output_is_never_overwritten_without_force() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("report", "plain\n");
    let sealed = seal_to_server(&dir, b"plain\n");
    fs::create_dir(dir.path("in")).unwrap();
    dir.write("in/report.age", &sealed);
    // (command line, the output it names)
    let cases = [
        ("seal report --to server.pub", "report.age"),
        ("seal report --to server.pub -o sealed.age", "sealed.age"),
        ("unseal in/report.age -k server.key", "in/report"),
        ("unseal in/report.age -k server.key -o report", "report"),
    ];
    for (line, output) in cases {
        let program = line.split(' ').next().unwrap();
        let existed = fs::read(dir.path(output)).ok();
        dir.write(output, "keep me\n");
        let before = dir.listing();
        let error = format!("error: {output}: output file already exists");
        let hint = Some("use --force to overwrite it");
        dir.line(line)
            .run()
            .fails(EXIT_IO)
            .says(program, &[&error], hint);
        assert_eq!(dir.read_string(output), "keep me\n", "{line}");
        assert_eq!(dir.listing(), before, "{line}");

        for force in ["--force", "-f"] {
            dir.write(output, "keep me\n");
            dir.line(line).arg(force).run().ok();
            let written = dir.read(output);
            let plaintext = match program {
                "seal" => unseal_via(&dir, Io::Pipes, &written, WITH_KEY),
                _ => written,
            };
            assert_eq!(plaintext, b"plain\n", "{line} {force}");
            assert_eq!(dir.listing(), before, "{line} {force}");
        }
        match existed {
            Some(contents) => dir.write(output, contents),
            None => dir.remove(output),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wrong keys, and files that are not age files or are damaged

#[test]
fn a_wrong_key_is_exit_3_and_says_how_many_keys_were_tried() {
    let (dir, sealed, _) = three_chunk_file();
    dir.new_key("a");
    dir.new_key("b");
    let both = [dir.read("a.key"), dir.read("b.key")].concat();
    dir.write_private("both.key", both);
    let ways: [(&[&str], usize); 3] = [
        (&["--key", "a.key"], 1),
        (&["--key", "both.key"], 2),
        (&["-k", "a.key", "-i", "both.key"], 3),
    ];
    for (keys, tried) in ways {
        let needle = format!("no key matches (tried {tried})");
        let cases = [("sealed to another key", sealed.clone())];
        check_refused(&dir, keys, READS, (EXIT_NO_MATCH, &needle), &cases);
    }
}

#[test]
fn files_that_are_not_age_files_are_exit_4() {
    let dir = Dir::new();
    dir.new_key("server");
    let cases = [
        ("empty", Vec::new()),
        ("text", b"hello world\n".to_vec()),
        ("PNG", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()),
        (
            "garbage before armor",
            b"x\n-----BEGIN AGE ENCRYPTED FILE-----\n".to_vec(),
        ),
    ];
    let expected = (EXIT_HEADER, "not an age file");
    check_refused(&dir, WITH_KEY, READS, expected, &cases);
    // The begin line alone is armor (issue 6), cut short.
    let cases = [(
        "armor cut short",
        b"-----BEGIN AGE ENCRYPTED FILE-----\n".to_vec(),
    )];
    let expected = (EXIT_HEADER, "invalid armor: the armor has no end line");
    check_refused(&dir, WITH_KEY, READS, expected, &cases);
}

#[test]
fn header_damage_gets_the_exit_code_of_what_it_breaks() {
    let dir = Dir::new();
    dir.new_key("server");
    let sealed = seal_to_server(&dir, &data(1000, 8));
    let at = Layout::of(&sealed);
    let (share, body, mac) = (at.shares[0], at.bodies[0], at.mac);

    // A changed share is another valid point, so the derived wrap key is wrong; a changed
    // body fails to authenticate; a stanza of an unknown type is skipped. No key opens any.
    let no_match = [
        ("share changed", other_base64(&sealed, share)),
        ("body changed", other_base64(&sealed, body)),
        ("stanza type changed", altered(&sealed, share - 2, |_| b'8')),
    ];
    let expected = (EXIT_NO_MATCH, "no key matches (tried 1)");
    check_refused(&dir, WITH_KEY, READS, expected, &no_match);

    // The stanza opens, so the file key is right, but the MAC over the header is not.
    let bad_mac = [("MAC changed", other_base64(&sealed, mac))];
    let expected = (
        EXIT_HEADER_MAC,
        "header MAC is wrong: the header was modified",
    );
    check_refused(&dir, WITH_KEY, READS, expected, &bad_mac);

    // Bytes that do not parse make a malformed header.
    let malformed = [
        ("body not base64", altered(&sealed, body, |_| b'*')),
        ("body padding", noncanonical_base64(&sealed, body + 42)),
        ("share padding", noncanonical_base64(&sealed, share + 42)),
        ("MAC padding", noncanonical_base64(&sealed, mac + 42)),
        ("MAC not base64", altered(&sealed, mac, |_| b'*')),
        ("MAC line marker", altered(&sealed, mac - 2, |_| b'+')),
        ("stanza marker", altered(&sealed, share - 9, |_| b'=')),
        ("ends inside the MAC line", truncated(&sealed, mac + 10)),
        ("ends before the MAC line", truncated(&sealed, mac - 4)),
    ];
    let expected = (EXIT_HEADER, "invalid header");
    check_refused(&dir, WITH_KEY, READS, expected, &malformed);

    let version = [("version 2", altered(&sealed, 20, |_| b'2'))];
    let expected = (EXIT_HEADER, "unsupported age format version \"v2\"");
    check_refused(&dir, WITH_KEY, READS, expected, &version);
    let magic = [("magic", flipped(&sealed, 0))];
    let expected = (EXIT_HEADER, "not an age file");
    check_refused(&dir, WITH_KEY, READS, expected, &magic);
}

#[test]
fn damage_to_another_recipients_stanza_breaks_the_mac_for_everyone_else() {
    let dir = Dir::new();
    dir.new_key("first");
    dir.new_key("second");
    let to = ["--to", "first.pub", "--to", "second.pub"];
    let sealed = seal_via(&dir, Io::OutputFlag, &data(1000, 9), &to);
    let second_body = Layout::of(&sealed).bodies[1];
    let cases = [("second stanza's body", other_base64(&sealed, second_body))];
    // The first key opens the intact first stanza, then finds the header modified.
    let mac = (EXIT_HEADER_MAC, "header MAC is wrong");
    check_refused(&dir, &["--key", "first.key"], READS, mac, &cases);
    // The second key cannot open its own (damaged) stanza.
    let no_match = (EXIT_NO_MATCH, "no key matches (tried 1)");
    check_refused(&dir, &["--key", "second.key"], READS, no_match, &cases);
}

#[test]
fn a_damaged_chunk_is_exit_6_and_named() {
    let (dir, sealed, at) = three_chunk_file();
    for n in 0..3 {
        let tag_end = at.chunk(n + 1).min(sealed.len()) - 1;
        let cases = [
            ("body", flipped(&sealed, at.chunk(n) + 100)),
            ("tag", flipped(&sealed, tag_end)),
        ];
        let needle = format!("payload corrupt at chunk {n}");
        check_refused(&dir, WITH_KEY, READS, (EXIT_PAYLOAD, &needle), &cases);
    }
    // The payload nonce keys every chunk: the first one checked fails (the last, if mapped).
    let cases = [("payload nonce", flipped(&sealed, at.header_len))];
    let expected = (EXIT_PAYLOAD, "payload corrupt at chunk");
    check_refused(&dir, WITH_KEY, READS, expected, &cases);
}

#[test]
fn the_empty_chunk_of_an_empty_file_is_authenticated_too() {
    let dir = Dir::new();
    dir.new_key("server");
    let sealed = seal_to_server(&dir, b"");
    let at = Layout::of(&sealed);
    assert_eq!(
        sealed.len(),
        at.chunk(0) + TAG,
        "a nonce and an empty chunk"
    );
    let cases = [("tag", flipped(&sealed, sealed.len() - 1))];
    let expected = (EXIT_PAYLOAD, "payload corrupt at chunk 0");
    check_refused(&dir, WITH_KEY, READS, expected, &cases);
    let cases = [
        ("tag cut off", truncated(&sealed, at.chunk(0))),
        ("half the tag", truncated(&sealed, at.chunk(0) + TAG / 2)),
    ];
    check_refused(&dir, WITH_KEY, READS, (EXIT_PAYLOAD, "truncated"), &cases);
}

#[test]
fn a_truncated_file_is_exit_6_or_4_without_its_payload_nonce() {
    let (dir, sealed, at) = three_chunk_file();
    let cut = |len: usize| truncated(&sealed, len);

    // age reads the payload nonce with the header: a short one is a header failure.
    let cases = [
        ("no nonce", cut(at.header_len)),
        ("half a nonce", cut(at.header_len + NONCE / 2)),
    ];
    let expected = (
        EXIT_HEADER,
        "invalid header: the file ends before the 16-byte payload nonce",
    );
    check_refused(&dir, WITH_KEY, READS, expected, &cases);

    // At a chunk boundary, the chunk before opens as a non-final one: the end is missing.
    let cases = [
        ("no chunks", cut(at.chunk(0))),
        ("after chunk 0", cut(at.chunk(1))),
        ("after chunk 1", cut(at.chunk(2))),
        ("half a tag", cut(at.chunk(0) + TAG / 2)),
    ];
    check_refused(&dir, WITH_KEY, READS, (EXIT_PAYLOAD, "truncated"), &cases);

    // Inside a chunk, the cut chunk fails to open as the final one.
    let mid_chunk = [
        (0, cut(at.chunk(0) + 1000)),
        (1, cut(at.chunk(1) + 1000)),
        (1, cut(at.chunk(1) + TAG)),
        (2, cut(at.chunk(2) + 100)),
        (2, cut(sealed.len() - 1)),
    ];
    for (n, file) in mid_chunk {
        let needle = format!("payload corrupt at chunk {n}");
        let cases = [("cut inside a chunk", file)];
        check_refused(&dir, WITH_KEY, READS, (EXIT_PAYLOAD, &needle), &cases);
    }
}

#[test]
fn trailing_garbage_is_exit_6() {
    let (dir, sealed, _) = three_chunk_file();
    // After a short last chunk, the bytes lengthen it (or make a chunk after it), and the
    // lengthened chunk fails to open. Which chunk fails first depends on the path.
    let cases = [
        ("one byte", appended(&sealed, b"x")),
        ("a tag's worth", appended(&sealed, &[0; TAG])),
        ("a chunk's worth", appended(&sealed, &[7; SEALED_CHUNK])),
    ];
    let expected = (EXIT_PAYLOAD, "payload corrupt at chunk ");
    check_refused(&dir, WITH_KEY, READS, expected, &cases);

    // After a full last chunk, that chunk still opens as the final one: the rest is extra.
    for chunks in [1, 2] {
        let full = seal_to_server(&dir, &data(chunks * CHUNK, 10));
        let last_chunk = &full[Layout::of(&full).chunk(chunks - 1)..];
        let cases = [
            ("garbage", appended(&full, b"garbage after the end")),
            ("the last chunk again", appended(&full, last_chunk)),
        ];
        let expected = (EXIT_PAYLOAD, "trailing data after the end of the payload");
        check_refused(&dir, WITH_KEY, READS, expected, &cases);
    }
}

#[test]
fn a_missing_input_is_exit_1() {
    let dir = Dir::new();
    dir.new_key("server");
    let before = dir.listing();
    dir.bin("seal")
        .args(["missing", "--to", "server.pub"])
        .run()
        .fails(EXIT_IO)
        .says("seal", &["error: missing: no such file or directory"], None);
    dir.bin("unseal")
        .args(["missing.age", "--key", "server.key"])
        .run()
        .fails(EXIT_IO)
        .says(
            "unseal",
            &["error: missing.age: no such file or directory"],
            None,
        );
    assert_eq!(dir.listing(), before);
}

// ---------------------------------------------------------------------------------------------
// Usage errors

#[test]
fn usage_errors_are_exit_2_with_one_message_and_leave_nothing_behind() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("plain.txt", "hello\n");
    let sealed = seal_to_server(&dir, b"hello\n");
    dir.write("sealed.bin", &sealed);
    dir.write("sealed.age", &sealed);
    // (command line, in the error line, in the hint line)
    let cases = [
        (
            "seal plain.txt",
            "no recipients given",
            Some("use --to server.pub"),
        ),
        (
            "seal plain.txt --to server.key",
            "error: server.key: line 3: this is a secret key (AGE-SECRET-KEY-1...), not a recipient",
            Some("give --to the public key file (.pub); seal-keygen -y server.key prints its key"),
        ),
        (
            "seal plain.txt --to age1bogus",
            "invalid recipient \"age1bogus\"",
            None,
        ),
        (
            "seal plain.txt -r server.pub",
            "-r: server.pub is a file, not a recipient",
            Some("use -R server.pub (or --to server.pub)"),
        ),
        // A directory is batch mode (issue 3); a batch has no standard output to write to.
        (
            "seal . --to server.pub -o -",
            "error: a batch cannot write to standard output",
            Some("use -o DIRECTORY, or leave -o out to write beside the inputs"),
        ),
        (
            "unseal sealed.age",
            "no key given",
            Some("use --key server.key"),
        ),
        (
            "unseal sealed.age --key server.pub",
            "error: server.pub: line 1: not a valid identity",
            Some("this is a public key: --key needs the private key file"),
        ),
        (
            "unseal sealed.age --key plain.txt",
            "error: plain.txt: unknown key format; accepted: age identity files",
            None,
        ),
        (
            "unseal sealed.bin --key server.key",
            "error: sealed.bin: does not end in .age, so the output name is unknown",
            Some("use -o OUTPUT"),
        ),
    ];
    for (line, error, hint) in cases {
        let before = dir.listing();
        let program = line.split(' ').next().unwrap();
        dir.line(line)
            .run()
            .fails(EXIT_USAGE)
            .says(program, &[error], hint);
        assert_eq!(dir.listing(), before, "{line}");
    }
}

#[test]
fn bad_command_lines_are_exit_2() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("plain.txt", "hello\n");
    // (command line, in the message)
    let cases = [
        ("seal plain.txt --to server.pub --bogus", "--bogus"),
        ("unseal plain.txt.age --key server.key --bogus", "--bogus"),
        ("seal-keygen --bogus", "--bogus"),
        (
            "seal-keygen -o new.key -y server.key",
            "cannot be used with",
        ),
        ("seal plain.txt --to server.pub --threads many", "many"),
        // Several inputs are batch mode (issue 3), which reads no standard input.
        (
            "seal plain.txt - --to server.pub",
            "standard input cannot be part of a batch",
        ),
    ];
    for (line, needle) in cases {
        let before = dir.listing();
        let run = dir.line(line).run().fails(EXIT_USAGE);
        let stderr = &run.stderr;
        assert!(stderr.contains(needle), "{line}: {stderr}");
        assert!(run.stdout.is_empty(), "{line}");
        assert_eq!(dir.listing(), before, "{line}");
    }
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

// ---------------------------------------------------------------------------------------------
// Signals

/// With standard error a closed pipe, messages are lost but nothing else: a signal still stops
/// a stream (the handler's message used to panic its thread, and the command ran on), and a
/// failure keeps its exit code rather than a panic's 101. Lines printed to a closed standard
/// output end quietly.
#[test]
fn a_closed_stderr_loses_messages_but_not_signals_or_exit_codes() {
    let dir = Dir::new();
    dir.new_key("server");
    let closed = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    let status = dir
        .line("unseal missing.age --key server.key")
        .cmd
        .stdout(Stdio::null())
        .stderr(closed())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(EXIT_IO));
    // A closed standard output ends printed lines quietly, as it ends a stream.
    for line in [
        "seal-keygen -y server.key",
        "seal-keygen --fingerprint server.pub",
    ] {
        let status = dir.line(line).cmd.stdout(closed()).status().unwrap();
        assert!(status.success(), "{line}: {status}");
    }

    let mut child = dir
        .line("seal --to server.pub")
        .cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(closed())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    // Once SIGTERM is caught (bit 15 of SigCgt), the handler is in place.
    let status_file = format!("/proc/{}/status", child.id());
    let catches_term = || {
        let status = fs::read_to_string(&status_file).unwrap_or_default();
        let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"));
        mask.and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .is_some_and(|m| m & (1 << 14) != 0)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !catches_term() {
        assert!(
            Instant::now() < deadline,
            "seal never installed its signal handler"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    send_signal(&child, "TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("seal still running 20 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(stdin);
    assert_eq!(status.code(), Some(EXIT_INTERRUPTED));
}

#[test]
fn an_interrupted_command_exits_130_and_leaves_no_partial_output() {
    let cases = [
        ("seal", "--to server.pub", "INT"),
        ("seal", "--to server.pub", "TERM"),
        ("unseal", "--key server.key", "INT"),
        ("unseal", "--key server.key", "HUP"),
    ];
    for (program, args, signal) in cases {
        let dir = Dir::new();
        dir.new_key("server");
        dir.write("plain", data(3 << 20, 5));
        dir.line("seal plain --to server.pub -o sealed.age")
            .run()
            .ok();
        let sealed = dir.read("sealed.age");
        let before = dir.listing();
        let mut child = dir
            .line(&format!("{program} {args} -o output"))
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The command creates its temporary output (unseal: once the header has opened),
        // then blocks reading standard input, which stays open until after the signal.
        let mut stdin = child.stdin.take().unwrap();
        if program == "unseal" {
            stdin.write_all(&sealed[..sealed.len() / 2]).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let partial = |names: BTreeSet<PathBuf>| {
            let partial = |n: &PathBuf| n.to_string_lossy().ends_with(".seal-partial");
            names.iter().any(partial)
        };
        while !partial(dir.listing()) {
            assert!(Instant::now() < deadline, "{program}: no temporary file");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(100));
        send_signal(&child, signal);
        let output = child.wait_with_output().unwrap();
        drop(stdin);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let what = format!("{program} SIG{signal}: {stderr}");
        assert_eq!(output.status.code(), Some(EXIT_INTERRUPTED), "{what}");
        let message = format!("{program}: error: interrupted; no partial output was left behind");
        assert_eq!(stderr.trim_end(), message);
        assert_eq!(dir.listing(), before, "{what}");
    }
}

/// A server key and `big.age`: 192 MiB sealed to it, big enough that one debug-build thread
/// is still decrypting when the file shrinks under it. Returns the plaintext.
fn big_sealed_file(dir: &Dir) -> Vec<u8> {
    dir.new_key("server");
    let plaintext = vec![0x5a; 192 << 20];
    dir.write("big.age", seal_to_server(dir, &plaintext));
    plaintext
}

/// `unseal big.age --threads 1 -o OUTPUT`, started with standard error captured.
fn spawn_unseal_big(dir: &Dir, output: &str, stdout: Stdio) -> std::process::Child {
    let line = format!("unseal big.age --key server.key -o {output} --threads 1");
    let mut cmd = dir.line(&line).cmd;
    cmd.stdout(stdout).stderr(Stdio::piped()).spawn().unwrap()
}

/// Cuts `big.age` to nothing, as another process might while it is mapped.
fn truncate_big(dir: &Dir) {
    let file = fs::File::options().write(true).open(dir.path("big.age"));
    file.unwrap().set_len(0).unwrap();
}

#[test]
fn an_input_truncated_while_streamed_to_stdout_fails_with_a_read_error() {
    use std::io::Read;
    let dir = Dir::new();
    let plaintext = big_sealed_file(&dir);
    let mut child = spawn_unseal_big(&dir, "-", Stdio::piped());
    // The pipe holds unseal back: once a first MiB has come through, most of the file is
    // still to be read when it shrinks.
    let mut stdout = child.stdout.take().unwrap();
    let mut got = vec![0u8; 1 << 20];
    stdout.read_exact(&mut got).unwrap();
    truncate_big(&dir);
    stdout.read_to_end(&mut got).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(EXIT_IO), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("unseal: error: big.age: ")
            && stderr.contains("the file shrank while it was being read"),
        "{stderr}"
    );
    assert!(got.len() < plaintext.len() && got.iter().all(|&b| b == 0x5a));
}

#[test]
fn an_input_truncated_while_read_fails_cleanly_without_sigbus() {
    let dir = Dir::new();
    big_sealed_file(&dir);
    let before = dir.listing();
    let child = spawn_unseal_big(&dir, "big", Stdio::null());
    // Wait until decryption has begun: the temporary output is grown to the plaintext size
    // just before the chunks are read. Then cut the sealed file to nothing.
    let deadline = Instant::now() + Duration::from_secs(60);
    let started = || {
        fs::read_dir(dir.path(".")).unwrap().flatten().any(|e| {
            e.file_name().to_string_lossy().ends_with(".seal-partial")
                && e.metadata().is_ok_and(|m| m.len() > 0)
        })
    };
    while !started() {
        assert!(Instant::now() < deadline, "unseal never started writing");
        std::thread::sleep(Duration::from_millis(1));
    }
    truncate_big(&dir);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(EXIT_IO), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("unseal: error: big.age: the file shrank while it was being read"),
        "{stderr}"
    );
    let mut after = dir.listing();
    after.retain(|name| name != Path::new("big.age"));
    let mut expected = before;
    expected.retain(|name| name != Path::new("big.age"));
    assert_eq!(after, expected, "no output and no temporary file");
}

// ---------------------------------------------------------------------------------------------
// Interop with the `age` crate, in process (with the Go age CLI: tests/interop/go_age.rs)

/// The X25519 identity in an age key file, as the `age` crate reads it.
fn age_identity(dir: &Dir, key_file: &str) -> age::x25519::Identity {
    let text = dir.read_string(key_file);
    let secret = text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-1"));
    age::x25519::Identity::from_str(secret.expect("a secret key line")).unwrap()
}

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

// ---------------------------------------------------------------------------------------------
// ASCII armor and passphrases (issue 6)

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
fn bad_armor_is_refused_with_exit_4_and_nothing_left_behind() {
    let dir = Dir::new();
    dir.new_key("server");
    let plaintext = data(3 * CHUNK + 10, 9);
    let armored = transform(
        &dir,
        "seal",
        Io::Pipes,
        &plaintext,
        &["-a", "--to", "server.pub"],
    );
    let text = String::from_utf8(armored).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let with_line = |at: usize, line: &str| {
        let mut ls = lines.clone();
        ls[at] = line;
        (ls.join("\n") + "\n").into_bytes()
    };
    let long = format!("{} ", lines[2]);
    let cases = [
        ("trailing garbage", format!("{text}garbage\n").into_bytes()),
        ("a space at a line end", with_line(2, &long)),
        ("an empty line", with_line(5, "")),
        (
            "a lowercase end line",
            with_line(lines.len() - 1, &END.to_lowercase()),
        ),
        ("no end line", text.replace(END, "").into_bytes()),
        ("a short line in the middle", with_line(3, &lines[3][..60])),
    ];
    check_refused(
        &dir,
        WITH_KEY,
        READS,
        (EXIT_HEADER, "invalid armor"),
        &cases,
    );
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

#[test]
fn passphrase_files_round_trip_at_the_default_and_a_small_work_factor() {
    let dir = Dir::new();
    dir.write_private("pass", "correct horse battery staple\n");
    let plaintext = data(CHUNK + 3, 21);
    for work in [&[][..], &["--work-factor", "10"]] {
        for armor in [&[][..], &["-a"]] {
            let flags = [&["--passphrase-file", "pass"][..], work, armor].concat();
            let sealed = transform(&dir, "seal", Io::Pipes, &plaintext, &flags);
            let header = match armor.is_empty() {
                true => sealed.clone(),
                false => seal::armor::decode(&sealed).unwrap(),
            };
            let factor = if work.is_empty() { "18" } else { "10" };
            let (header, _) = seal::format::Header::parse(&header).unwrap();
            assert_eq!(header.stanzas.len(), 1);
            assert_eq!(header.stanzas[0].kind, "scrypt");
            assert_eq!(header.stanzas[0].args[1], factor);
            // The passphrase file's final newline is not part of the passphrase: the same
            // text without it opens the file too.
            dir.write_private("pass2", "correct horse battery staple");
            for file in ["pass", "pass2"] {
                let opened =
                    unseal_via(&dir, Io::OutputFlag, &sealed, &["--passphrase-file", file]);
                assert!(opened == plaintext, "{flags:?} {file}");
            }
        }
    }
}

#[test]
fn a_wrong_passphrase_exits_3_and_leaves_nothing_behind() {
    let dir = Dir::new();
    dir.write_private("pass", "right");
    dir.write_private("wrong", "wrong");
    let plaintext = data(2 * CHUNK, 22);
    let flags = ["--passphrase-file", "pass", "--work-factor", "10"];
    let sealed = transform(&dir, "seal", Io::Pipes, &plaintext, &flags);
    let armored = transform(
        &dir,
        "seal",
        Io::Pipes,
        &plaintext,
        &[&flags[..], &["-a"]].concat(),
    );
    let cases = [("binary", sealed), ("armored", armored)];
    let keys = ["--passphrase-file", "wrong"];
    check_refused(
        &dir,
        &keys,
        READS,
        (EXIT_NO_MATCH, "wrong passphrase"),
        &cases,
    );
}

#[test]
fn a_passphrase_is_never_mixed_with_keys() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write_private("pass", "p");
    dir.write("plain", "x");
    let before = dir.listing();
    dir.line("seal plain --passphrase-file pass --to server.pub")
        .run()
        .fails(EXIT_USAGE)
        .says("seal", &["passphrase cannot be combined"], Some("not both"));
    assert_eq!(dir.listing(), before);

    // A header with a passphrase stanza and a key stanza is refused, even by the key.
    let sealed = transform(&dir, "seal", Io::Pipes, b"x", &["--to", "server.pub"]);
    let scrypt = transform(
        &dir,
        "seal",
        Io::Pipes,
        b"x",
        &["--passphrase-file", "pass", "--work-factor", "2"],
    );
    let text = String::from_utf8_lossy(&scrypt);
    let stanza_end = text.find("\n---").unwrap();
    let stanza = &scrypt[b"age-encryption.org/v1\n".len()..stanza_end + 1];
    let at = b"age-encryption.org/v1\n".len();
    let mixed = [&sealed[..at], stanza, &sealed[at..]].concat();
    let cases = [("scrypt and X25519", mixed)];
    check_refused(
        &dir,
        WITH_KEY,
        READS,
        (EXIT_HEADER, "must be the only stanza"),
        &cases,
    );
}

/// `--work-factor` means nothing without a passphrase: it is a usage error, not ignored.
#[test]
fn a_work_factor_without_a_passphrase_is_a_usage_error() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("plain.txt", "hello\n");
    let before = dir.listing();
    let run = dir
        .bin("seal")
        .args(["plain.txt", "--to", "server.pub", "--work-factor", "10"])
        .run()
        .fails(2);
    assert!(run.stderr.contains("--work-factor"), "{}", run.stderr);
    assert_eq!(dir.listing(), before, "nothing written");
}

#[test]
fn a_hostile_work_factor_is_refused_before_any_work() {
    let dir = Dir::new();
    dir.write_private("pass", "p");
    let sealed = transform(
        &dir,
        "seal",
        Io::Pipes,
        b"x",
        &["--passphrase-file", "pass", "--work-factor", "2"],
    );
    let text = String::from_utf8_lossy(&sealed).into_owned();
    let line_end = text.find(" 2\n").unwrap();
    for factor in ["23", "40", "63"] {
        let hostile = [
            &sealed[..line_end + 1],
            factor.as_bytes(),
            &sealed[line_end + 2..],
        ]
        .concat();
        let started = Instant::now();
        let cases = [(factor, hostile)];
        let keys = ["--passphrase-file", "pass"];
        check_refused(
            &dir,
            &keys,
            READS,
            (EXIT_HEADER, "above the limit of 2^22"),
            &cases,
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{factor}: took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn passphrase_files_readable_by_others_are_warned_about() {
    let dir = Dir::new();
    dir.write("pass", "p");
    dir.chmod("pass", 0o644);
    dir.write("plain", "x");
    let run = dir
        .line("seal plain --passphrase-file pass --work-factor 2 -o sealed.age")
        .run()
        .ok();
    assert_eq!(
        run.stderr,
        "seal: warning: pass: passphrase file is readable by group or others; run chmod 600\n"
    );
    let run = dir
        .line("unseal sealed.age --passphrase-file pass -o -")
        .run()
        .ok();
    assert!(run
        .stderr
        .contains("unseal: warning: pass: passphrase file is readable"));
    assert_eq!(run.stdout, b"x");
}

#[test]
fn unseal_without_a_key_names_the_missing_key_when_the_file_needs_one() {
    let dir = Dir::new();
    dir.new_key("server");
    let sealed = transform(&dir, "seal", Io::Pipes, b"x", &["--to", "server.pub"]);
    dir.write("sealed.age", &sealed);
    let before = dir.listing();
    dir.line("unseal sealed.age").run().fails(EXIT_USAGE).says(
        "unseal",
        &["sealed.age: no key given"],
        Some("use --key server.key"),
    );
    assert_eq!(dir.listing(), before);
}

#[test]
fn armor_is_refused_in_batch_mode() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("a", "1");
    dir.write("b", "2");
    let before = dir.listing();
    dir.line("seal -a a b --to server.pub")
        .run()
        .fails(EXIT_USAGE)
        .says("seal", &["--armor seals one file at a time"], None);
    assert_eq!(dir.listing(), before);
}

#[test]
fn a_key_given_for_a_passphrase_file_gets_a_hint() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write_private("pass", "p");
    let flags = ["--passphrase-file", "pass", "--work-factor", "2"];
    let sealed = transform(&dir, "seal", Io::Pipes, b"x", &flags);
    dir.write("sealed.age", &sealed);
    let before = dir.listing();
    dir.line("unseal sealed.age --key server.key")
        .run()
        .fails(EXIT_NO_MATCH)
        .says(
            "unseal",
            &["sealed.age: the file is sealed with a passphrase, not to a key"],
            Some("leave out --key"),
        );
    assert_eq!(dir.listing(), before);
}

/// A passphrase for the `age` crate's scrypt recipients and identities.
fn age_passphrase(text: &str) -> age::secrecy::SecretString {
    age::secrecy::SecretString::from(text.to_string())
}

/// `seal --passphrase` and `unseal` of a passphrase file ask on the terminal, as a person
/// types: seal twice, unseal once and only because the file needs it. The `age` crate reads
/// what seal wrote, and unseal what it wrote (the Go age CLI: tests/interop/go_age.rs).
#[test]
fn passphrases_typed_on_a_terminal_seal_and_unseal_and_the_age_crate_agrees() {
    let dir = Dir::new();
    let plaintext = data(CHUNK + 100, 31);
    dir.write("plain", &plaintext);

    let line = "seal plain --passphrase --work-factor 12 -o ours.age";
    let run = on_terminal(dir.line(line), "hunter2\nhunter2\n").ok();
    let shown = run.stdout_string();
    assert!(
        shown.contains("Enter passphrase: ") && shown.contains("Confirm passphrase: "),
        "{shown}"
    );
    let mut identity = age::scrypt::Identity::new(age_passphrase("hunter2"));
    identity.set_max_work_factor(12);
    let opened = age::decrypt(&identity, &dir.read("ours.age")).unwrap();
    assert!(opened == plaintext, "the age crate opens what seal sealed");
    let run = on_terminal(dir.line("unseal ours.age -o opened"), "hunter2\n").ok();
    assert!(run.stdout_string().contains("Enter passphrase: "));
    assert!(dir.read("opened") == plaintext);
    dir.remove("opened");

    let mut recipient = age::scrypt::Recipient::new(age_passphrase("hunter2"));
    recipient.set_work_factor(12);
    dir.write("theirs.age", age::encrypt(&recipient, &plaintext).unwrap());
    on_terminal(dir.line("unseal theirs.age -o opened"), "hunter2\n").ok();
    assert!(
        dir.read("opened") == plaintext,
        "unseal opens what age sealed"
    );
    dir.remove("opened");

    // A wrong passphrase, and two that differ when sealing: nothing is written.
    let before = dir.listing();
    let run = on_terminal(dir.line("unseal theirs.age -o opened"), "hunter3\n");
    let run = run.fails(EXIT_NO_MATCH);
    assert!(run
        .stdout_string()
        .contains("unseal: error: theirs.age: wrong passphrase"));
    let line = "seal plain --passphrase -o again.age";
    let run = on_terminal(dir.line(line), "hunter2\nhunter3\n").fails(EXIT_USAGE);
    assert!(run
        .stdout_string()
        .contains("seal: error: the passphrases do not match"));
    assert_eq!(dir.listing(), before);
}

#[test]
fn batch_mode_opens_armored_files_small_and_large_mapped_or_not() {
    let dir = Dir::new();
    dir.new_key("server");
    fs::create_dir(dir.path("up")).unwrap();
    let small = data(100, 41);
    let large = data(2 * (1 << 20) + 7, 42);
    for (name, plaintext) in [("small", &small), ("large", &large)] {
        let armored = transform(
            &dir,
            "seal",
            Io::Pipes,
            plaintext,
            &["-a", "--to", "server.pub"],
        );
        dir.write(format!("up/{name}.age"), armored);
    }
    for flags in [&[][..], &["--no-mmap"]] {
        let out = format!("out{}", flags.len());
        let args = [&["up", "-q", "-k", "server.key", "-o", &out][..], flags].concat();
        dir.bin("unseal").args(args).run().ok();
        assert!(dir.read(format!("{out}/up/small")) == small, "{flags:?}");
        assert!(dir.read(format!("{out}/up/large")) == large, "{flags:?}");
    }
}

#[test]
fn a_batch_without_keys_is_a_usage_error_but_a_passphrase_file_opens_one() {
    let dir = Dir::new();
    fs::create_dir(dir.path("up")).unwrap();
    dir.write_private("pass", "p");
    let flags = ["--passphrase-file", "pass", "--work-factor", "2"];
    for name in ["a", "b"] {
        let sealed = transform(&dir, "seal", Io::Pipes, name.as_bytes(), &flags);
        dir.write(format!("up/{name}.age"), sealed);
    }
    let before = dir.listing();
    dir.line("unseal up -o out").run().fails(EXIT_USAGE).says(
        "unseal",
        &["no key given"],
        Some("--passphrase-file FILE"),
    );
    assert_eq!(dir.listing(), before);
    dir.line("unseal up -q -o out --passphrase-file pass")
        .run()
        .ok();
    assert_eq!(dir.read("out/up/a"), b"a");
    assert_eq!(dir.read("out/up/b"), b"b");
}

// ---------------------------------------------------------------------------------------------
// Post-quantum keys (issue 7): `seal-keygen --pq`, `age1pq1...` recipients.
//
// The Go age on this machine (1.1.x, Debian's) predates post-quantum keys (age 1.3), and the
// `age` crate has none either: the C2SP hybrid vectors are the interop check
// (tests/conformance.rs, and .ci/run through the real binary).

/// Makes `NAME.key` and `NAME.pub` with `seal-keygen --pq`; returns the `age1pq1...` recipient.
fn new_pq_key(dir: &Dir, name: &str) -> String {
    let private = format!("{name}.key");
    dir.bin("seal-keygen")
        .args(["--pq", "-o", &private])
        .run()
        .ok();
    dir.read_string(format!("{name}.pub"))
        .trim_end()
        .to_string()
}

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
    assert_ne!(new_pq_key(&dir, "other"), public);
}

#[test]
fn keygen_y_derives_the_public_key_of_the_spec_example() {
    let dir = Dir::new();
    let example = include_str!("../testdata/pq/spec-example.key");
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
fn keygen_pq_and_y_do_not_go_together() {
    let dir = Dir::new();
    dir.new_key("server");
    let run = dir
        .bin("seal-keygen")
        .args(["--pq", "-y", "server.key"])
        .run();
    let run = run.fails(EXIT_USAGE);
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn post_quantum_keys_round_trip_through_the_binaries() {
    let dir = Dir::new();
    let recipient = new_pq_key(&dir, "server");
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
    new_pq_key(&dir, "server");
    new_pq_key(&dir, "other");
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
        check_refused(&dir, keys, READS, needle, &cases);
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
    let pq = new_pq_key(&dir, "pq");
    let classic = dir.new_key("classic");
    dir.write("both.pub", format!("{classic}\n{pq}\n"));
    dir.write("plain", data(100, 5));
    std::fs::create_dir(dir.path("tree")).unwrap();
    dir.write("tree/a", data(10, 6));
    let before = dir.listing();
    let command_lines: [&[&str]; 5] = [
        &["plain", "--to", "pq.pub", "--to", "classic.pub"],
        &["plain", "-r", &classic, "-r", &pq],
        &["plain", "-R", "both.pub"],
        &["plain", "--to", "pq.pub", "-r", &classic, "-o", "out.age"],
        &["tree", "--to", "both.pub"],
    ];
    for args in command_lines {
        dir.bin("seal").args(args).run().fails(EXIT_USAGE).says(
            "seal",
            &["incompatible recipients", "post-quantum"],
            Some("age1pq1"),
        );
        assert_eq!(dir.listing(), before, "seal {args:?} left files");
    }
    // Several post-quantum keys may share a file.
    new_pq_key(&dir, "pq2");
    let to = ["--to", "pq.pub", "--to", "pq2.pub"];
    let sealed = transform(&dir, "seal", Io::Pipes, b"both", &to);
    for key in ["pq.key", "pq2.key"] {
        assert_eq!(
            unseal_via(&dir, Io::Pipes, &sealed, &["--key", key]),
            b"both"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// SSH and PEM keys, seal-keygen --type and --fingerprint, unseal --inspect (issue 4)

#[path = "cli/ssh_keys.rs"]
mod ssh_keys;

#[path = "cli/signing.rs"]
mod signing;

#[path = "cli/senders.rs"]
mod senders;

// ---------------------------------------------------------------------------------------------
// Issue 16: rough edges of the command line

#[path = "cli/rough_edges.rs"]
mod rough_edges;

#[path = "cli/killed.rs"]
mod killed;
