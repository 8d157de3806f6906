//! Command lines refused before anything is read: usage errors (exit 2) and missing inputs
//! (exit 1), each with one message, leaving nothing behind.

use crate::common::*;

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
