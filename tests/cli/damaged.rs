//! Files `unseal` refuses: for another key, not age files, damaged headers, chunks and
//! ends. Each gets the exit code of what it breaks and one error line naming it, read each
//! way (mapped, streamed, standard input), and leaves nothing behind.

use crate::common::*;

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
        unseal_refuses(&dir, &bad_files(keys, (EXIT_NO_MATCH, &needle), cases));
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
    unseal_refuses(&dir, &bad_files(WITH_KEY, expected, cases));
    // The begin line alone is armor (issue 6), cut short.
    let cases = [(
        "armor cut short",
        b"-----BEGIN AGE ENCRYPTED FILE-----\n".to_vec(),
    )];
    let expected = (EXIT_HEADER, "invalid armor: the armor has no end line");
    unseal_refuses(&dir, &bad_files(WITH_KEY, expected, cases));
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
    unseal_refuses(&dir, &bad_files(WITH_KEY, expected, no_match));

    // The stanza opens, so the file key is right, but the MAC over the header is not.
    let bad_mac = [("MAC changed", other_base64(&sealed, mac))];
    let expected = (
        EXIT_HEADER_MAC,
        "header MAC is wrong: the header was modified",
    );
    unseal_refuses(&dir, &bad_files(WITH_KEY, expected, bad_mac));

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
    unseal_refuses(&dir, &bad_files(WITH_KEY, expected, malformed));

    let version = [("version 2", altered(&sealed, 20, |_| b'2'))];
    let expected = (EXIT_HEADER, "unsupported age format version \"v2\"");
    unseal_refuses(&dir, &bad_files(WITH_KEY, expected, version));
    let magic = [("magic", flipped(&sealed, 0))];
    let expected = (EXIT_HEADER, "not an age file");
    unseal_refuses(&dir, &bad_files(WITH_KEY, expected, magic));
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
    unseal_refuses(
        &dir,
        &bad_files(&["--key", "first.key"], mac, cases.clone()),
    );
    // The second key cannot open its own (damaged) stanza.
    let no_match = (EXIT_NO_MATCH, "no key matches (tried 1)");
    unseal_refuses(&dir, &bad_files(&["--key", "second.key"], no_match, cases));
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
        unseal_refuses(&dir, &bad_files(WITH_KEY, (EXIT_PAYLOAD, &needle), cases));
    }
    // The payload nonce keys every chunk: the first one checked fails (the last, if mapped).
    let cases = [("payload nonce", flipped(&sealed, at.header_len))];
    let expected = (EXIT_PAYLOAD, "payload corrupt at chunk");
    unseal_refuses(&dir, &bad_files(WITH_KEY, expected, cases));
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
    unseal_refuses(&dir, &bad_files(WITH_KEY, expected, cases));
    let cases = [
        ("tag cut off", truncated(&sealed, at.chunk(0))),
        ("half the tag", truncated(&sealed, at.chunk(0) + TAG / 2)),
    ];
    unseal_refuses(
        &dir,
        &bad_files(WITH_KEY, (EXIT_PAYLOAD, "truncated"), cases),
    );
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
    unseal_refuses(&dir, &bad_files(WITH_KEY, expected, cases));

    // At a chunk boundary, the chunk before opens as a non-final one: the end is missing.
    let cases = [
        ("no chunks", cut(at.chunk(0))),
        ("after chunk 0", cut(at.chunk(1))),
        ("after chunk 1", cut(at.chunk(2))),
        ("half a tag", cut(at.chunk(0) + TAG / 2)),
    ];
    unseal_refuses(
        &dir,
        &bad_files(WITH_KEY, (EXIT_PAYLOAD, "truncated"), cases),
    );

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
        unseal_refuses(&dir, &bad_files(WITH_KEY, (EXIT_PAYLOAD, &needle), cases));
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
    unseal_refuses(&dir, &bad_files(WITH_KEY, expected, cases));

    // After a full last chunk, that chunk still opens as the final one: the rest is extra.
    for chunks in [1, 2] {
        let full = seal_to_server(&dir, &data(chunks * CHUNK, 10));
        let last_chunk = &full[Layout::of(&full).chunk(chunks - 1)..];
        let cases = [
            ("garbage", appended(&full, b"garbage after the end")),
            ("the last chunk again", appended(&full, last_chunk)),
        ];
        let expected = (EXIT_PAYLOAD, "trailing data after the end of the payload");
        unseal_refuses(&dir, &bad_files(WITH_KEY, expected, cases));
    }
}
