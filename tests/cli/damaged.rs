//! Files `unseal` refuses, as one table: sealed to other keys or passphrases, not age files,
//! damaged headers, chunks, ends and armor. Each gets the exit code of what it breaks and one
//! error line naming the input, read each way (mapped, streamed, standard input), and leaves
//! nothing behind. Each function below makes the rows of one rule.

use crate::common::*;

#[test]
fn refused_files_get_the_exit_code_of_what_is_wrong_with_them() {
    let (dir, sealed, at) = three_chunk_file();
    let rows = [
        a_wrong_key_is_exit_3_and_says_how_many_keys_were_tried(&dir, &sealed),
        files_that_are_not_age_files_are_exit_4(),
        header_damage_gets_the_exit_code_of_what_it_breaks(&dir),
        damage_to_another_recipients_stanza_breaks_the_mac_for_everyone_else(&dir),
        a_damaged_chunk_is_exit_6_and_named(&sealed, &at),
        the_empty_chunk_of_an_empty_file_is_authenticated_too(&dir),
        a_truncated_file_is_exit_6_or_4_without_its_payload_nonce(&sealed, &at),
        trailing_garbage_is_exit_6(&dir, &sealed),
        bad_armor_is_exit_4(&dir),
        a_wrong_passphrase_is_exit_3(&dir),
        a_passphrase_stanza_beside_a_key_stanza_is_exit_4(&dir),
    ];
    unseal_refuses(&dir, &rows.concat());
}

fn a_wrong_key_is_exit_3_and_says_how_many_keys_were_tried(
    dir: &Dir,
    sealed: &[u8],
) -> Vec<BadFile> {
    dir.new_key("a");
    dir.new_key("b");
    let both = [dir.read("a.key"), dir.read("b.key")].concat();
    dir.write_private("both.key", both);
    let ways: [(&[&str], usize); 3] = [
        (&["--key", "a.key"], 1),
        (&["--key", "both.key"], 2),
        (&["-k", "a.key", "-i", "both.key"], 3),
    ];
    let rows = ways.into_iter().flat_map(|(keys, tried)| {
        let needle = format!("no key matches (tried {tried})");
        let cases = [(format!("sealed to another key, {keys:?}"), sealed.to_vec())];
        bad_files(keys, (EXIT_NO_MATCH, &needle), cases)
    });
    rows.collect()
}

fn files_that_are_not_age_files_are_exit_4() -> Vec<BadFile> {
    let cases = [
        ("empty", Vec::new()),
        ("text", b"hello world\n".to_vec()),
        ("PNG", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()),
        (
            "garbage before armor",
            b"x\n-----BEGIN AGE ENCRYPTED FILE-----\n".to_vec(),
        ),
    ];
    let not_age = bad_files(WITH_KEY, (EXIT_HEADER, "not an age file"), cases);
    // The begin line alone is armor (issue 6), cut short.
    let cases = [(
        "armor cut short",
        b"-----BEGIN AGE ENCRYPTED FILE-----\n".to_vec(),
    )];
    let expected = (EXIT_HEADER, "invalid armor: the armor has no end line");
    [not_age, bad_files(WITH_KEY, expected, cases)].concat()
}

fn header_damage_gets_the_exit_code_of_what_it_breaks(dir: &Dir) -> Vec<BadFile> {
    let sealed = seal_to_server(dir, &data(1000, 8));
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
    let no_match = bad_files(WITH_KEY, expected, no_match);

    // The stanza opens, so the file key is right, but the MAC over the header is not.
    let bad_mac = [("MAC changed", other_base64(&sealed, mac))];
    let expected = (
        EXIT_HEADER_MAC,
        "header MAC is wrong: the header was modified",
    );
    let bad_mac = bad_files(WITH_KEY, expected, bad_mac);

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
    let malformed = bad_files(WITH_KEY, (EXIT_HEADER, "invalid header"), malformed);

    let version = [("version 2", altered(&sealed, 20, |_| b'2'))];
    let expected = (EXIT_HEADER, "unsupported age format version \"v2\"");
    let version = bad_files(WITH_KEY, expected, version);
    let magic = [("magic", flipped(&sealed, 0))];
    let magic = bad_files(WITH_KEY, (EXIT_HEADER, "not an age file"), magic);
    [no_match, bad_mac, malformed, version, magic].concat()
}

fn damage_to_another_recipients_stanza_breaks_the_mac_for_everyone_else(dir: &Dir) -> Vec<BadFile> {
    dir.new_key("first");
    dir.new_key("second");
    let to = ["--to", "first.pub", "--to", "second.pub"];
    let sealed = seal_via(dir, Io::OutputFlag, &data(1000, 9), &to);
    let second_body = Layout::of(&sealed).bodies[1];
    let damaged = other_base64(&sealed, second_body);
    // The first key opens the intact first stanza, then finds the header modified.
    let first = [("second stanza's body, first key", damaged.clone())];
    let mac = (EXIT_HEADER_MAC, "header MAC is wrong");
    let first = bad_files(&["--key", "first.key"], mac, first);
    // The second key cannot open its own (damaged) stanza.
    let second = [("second stanza's body, second key", damaged)];
    let no_match = (EXIT_NO_MATCH, "no key matches (tried 1)");
    let second = bad_files(&["--key", "second.key"], no_match, second);
    [first, second].concat()
}

fn a_damaged_chunk_is_exit_6_and_named(sealed: &[u8], at: &Layout) -> Vec<BadFile> {
    let mut rows = Vec::new();
    for n in 0..3 {
        let tag_end = at.chunk(n + 1).min(sealed.len()) - 1;
        let cases = [
            (
                format!("chunk {n}: body"),
                flipped(sealed, at.chunk(n) + 100),
            ),
            (format!("chunk {n}: tag"), flipped(sealed, tag_end)),
        ];
        let needle = format!("payload corrupt at chunk {n}");
        rows.extend(bad_files(WITH_KEY, (EXIT_PAYLOAD, &needle), cases));
    }
    // The payload nonce keys every chunk: the first one checked fails (the last, if mapped).
    let cases = [("payload nonce", flipped(sealed, at.header_len))];
    let expected = (EXIT_PAYLOAD, "payload corrupt at chunk");
    rows.extend(bad_files(WITH_KEY, expected, cases));
    rows
}

fn the_empty_chunk_of_an_empty_file_is_authenticated_too(dir: &Dir) -> Vec<BadFile> {
    let sealed = seal_to_server(dir, b"");
    let at = Layout::of(&sealed);
    assert_eq!(
        sealed.len(),
        at.chunk(0) + TAG,
        "a nonce and an empty chunk"
    );
    let cases = [("empty file: tag", flipped(&sealed, sealed.len() - 1))];
    let expected = (EXIT_PAYLOAD, "payload corrupt at chunk 0");
    let flipped = bad_files(WITH_KEY, expected, cases);
    let cases = [
        ("empty file: tag cut off", truncated(&sealed, at.chunk(0))),
        (
            "empty file: half the tag",
            truncated(&sealed, at.chunk(0) + TAG / 2),
        ),
    ];
    let cut = bad_files(WITH_KEY, (EXIT_PAYLOAD, "truncated"), cases);
    [flipped, cut].concat()
}

fn a_truncated_file_is_exit_6_or_4_without_its_payload_nonce(
    sealed: &[u8],
    at: &Layout,
) -> Vec<BadFile> {
    let cut = |len: usize| truncated(sealed, len);

    // age reads the payload nonce with the header: a short one is a header failure.
    let cases = [
        ("no nonce", cut(at.header_len)),
        ("half a nonce", cut(at.header_len + NONCE / 2)),
    ];
    let expected = (
        EXIT_HEADER,
        "invalid header: the file ends before the 16-byte payload nonce",
    );
    let no_nonce = bad_files(WITH_KEY, expected, cases);

    // At a chunk boundary, the chunk before opens as a non-final one: the end is missing.
    let cases = [
        ("no chunks", cut(at.chunk(0))),
        ("after chunk 0", cut(at.chunk(1))),
        ("after chunk 1", cut(at.chunk(2))),
        ("half a tag", cut(at.chunk(0) + TAG / 2)),
    ];
    let at_boundary = bad_files(WITH_KEY, (EXIT_PAYLOAD, "truncated"), cases);

    // Inside a chunk, the cut chunk fails to open as the final one.
    let mid_chunk = [
        (0, at.chunk(0) + 1000),
        (1, at.chunk(1) + 1000),
        (1, at.chunk(1) + TAG),
        (2, at.chunk(2) + 100),
        (2, sealed.len() - 1),
    ];
    let mid_chunk = mid_chunk.into_iter().flat_map(|(n, len)| {
        let needle = format!("payload corrupt at chunk {n}");
        let cases = [(format!("cut inside chunk {n}, at byte {len}"), cut(len))];
        bad_files(WITH_KEY, (EXIT_PAYLOAD, &needle), cases)
    });
    [no_nonce, at_boundary, mid_chunk.collect()].concat()
}

fn trailing_garbage_is_exit_6(dir: &Dir, sealed: &[u8]) -> Vec<BadFile> {
    // After a short last chunk, the bytes lengthen it (or make a chunk after it), and the
    // lengthened chunk fails to open. Which chunk fails first depends on the path.
    let cases = [
        ("one byte", appended(sealed, b"x")),
        ("a tag's worth", appended(sealed, &[0; TAG])),
        ("a chunk's worth", appended(sealed, &[7; SEALED_CHUNK])),
    ];
    let expected = (EXIT_PAYLOAD, "payload corrupt at chunk ");
    let mut rows = bad_files(WITH_KEY, expected, cases);

    // After a full last chunk, that chunk still opens as the final one: the rest is extra.
    for chunks in [1, 2] {
        let full = seal_to_server(dir, &data(chunks * CHUNK, 10));
        let last_chunk = &full[Layout::of(&full).chunk(chunks - 1)..];
        let cases = [
            (
                format!("{chunks} full chunks, then garbage"),
                appended(&full, b"garbage after the end"),
            ),
            (
                format!("{chunks} full chunks, then the last chunk again"),
                appended(&full, last_chunk),
            ),
        ];
        let expected = (EXIT_PAYLOAD, "trailing data after the end of the payload");
        rows.extend(bad_files(WITH_KEY, expected, cases));
    }
    rows
}

fn bad_armor_is_exit_4(dir: &Dir) -> Vec<BadFile> {
    let plaintext = data(3 * CHUNK + 10, 9);
    let armored = transform(
        dir,
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
    let cases = cases.map(|(what, file)| (format!("armor: {what}"), file));
    bad_files(WITH_KEY, (EXIT_HEADER, "invalid armor"), cases)
}

fn a_wrong_passphrase_is_exit_3(dir: &Dir) -> Vec<BadFile> {
    dir.write_private("right", "right");
    dir.write_private("wrong", "wrong");
    let plaintext = data(2 * CHUNK, 22);
    let flags = ["--passphrase-file", "right", "--work-factor", "10"];
    let sealed = transform(dir, "seal", Io::Pipes, &plaintext, &flags);
    let armored = [&flags[..], &["-a"]].concat();
    let armored = transform(dir, "seal", Io::Pipes, &plaintext, &armored);
    let cases = [
        ("wrong passphrase, binary", sealed),
        ("wrong passphrase, armored", armored),
    ];
    let keys = ["--passphrase-file", "wrong"];
    bad_files(&keys, (EXIT_NO_MATCH, "wrong passphrase"), cases)
}

/// A header with a passphrase stanza and a key stanza is refused, even by the key.
fn a_passphrase_stanza_beside_a_key_stanza_is_exit_4(dir: &Dir) -> Vec<BadFile> {
    dir.write_private("mixed-pass", "p");
    let sealed = transform(dir, "seal", Io::Pipes, b"x", &["--to", "server.pub"]);
    let flags = ["--passphrase-file", "mixed-pass", "--work-factor", "2"];
    let scrypt = transform(dir, "seal", Io::Pipes, b"x", &flags);
    let text = String::from_utf8_lossy(&scrypt);
    let stanza_end = text.find("\n---").unwrap();
    let stanza = &scrypt[b"age-encryption.org/v1\n".len()..stanza_end + 1];
    let at = b"age-encryption.org/v1\n".len();
    let mixed = [&sealed[..at], stanza, &sealed[at..]].concat();
    let cases = [("scrypt and X25519", mixed)];
    bad_files(WITH_KEY, (EXIT_HEADER, "must be the only stanza"), cases)
}
