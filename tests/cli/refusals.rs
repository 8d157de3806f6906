//! Command lines refused before anything is read, as one table: each with its documented
//! exit code and one message (the argument parser's usage message for what it refuses),
//! leaving nothing behind. Refusals that need a directory of their own stay with their
//! topic (`rough_edges.rs`, `ssh_keys.rs`, `signing.rs`, ...), run by the same loop.

use crate::common::*;

/// (command line, exit code, what it says), run in [`fixture`].
const REFUSALS: &[(&str, i32, Says)] = &[
    // Inputs that are not there (exit 1).
    (
        "seal missing --to server.pub",
        EXIT_IO,
        Says::Error(&["error: missing: no such file or directory"]),
    ),
    (
        "unseal missing.age --key server.key",
        EXIT_IO,
        Says::Error(&["error: missing.age: no such file or directory"]),
    ),
    // Usage errors (exit 2): one message, and a hint where one helps.
    (
        "seal plain.txt",
        EXIT_USAGE,
        Says::Hint(&["no recipients given"], "use --to server.pub"),
    ),
    (
        "seal plain.txt --to server.key",
        EXIT_USAGE,
        Says::Hint(
            &["error: server.key: line 3: this is a secret key (AGE-SECRET-KEY-1...), not a recipient"],
            "give --to the public key file (.pub); seal-keygen -y server.key prints its key",
        ),
    ),
    (
        "seal plain.txt --to age1bogus",
        EXIT_USAGE,
        Says::Error(&["invalid recipient \"age1bogus\""]),
    ),
    (
        "seal plain.txt -r server.pub",
        EXIT_USAGE,
        Says::Hint(
            &["-r: server.pub is a file, not a recipient"],
            "use -R server.pub (or --to server.pub)",
        ),
    ),
    // A directory is batch mode (issue 3); a batch has no standard output to write to.
    (
        "seal . --to server.pub -o -",
        EXIT_USAGE,
        Says::Hint(
            &["error: a batch cannot write to standard output"],
            "use -o DIRECTORY, or leave -o out to write beside the inputs",
        ),
    ),
    // Armor is one file at a time, never a batch.
    (
        "seal -a a b --to server.pub",
        EXIT_USAGE,
        Says::Error(&["--armor seals one file at a time"]),
    ),
    // Without a key, unseal names the key the file needs.
    (
        "unseal sealed.age",
        EXIT_USAGE,
        Says::Hint(&["sealed.age: no key given"], "use --key server.key"),
    ),
    (
        "unseal sealed.age --key server.pub",
        EXIT_USAGE,
        Says::Hint(
            &["error: server.pub: line 1: not a valid identity"],
            "this is a public key: --key needs the private key file",
        ),
    ),
    (
        "unseal sealed.age --key plain.txt",
        EXIT_USAGE,
        Says::Error(&["error: plain.txt: unknown key format; accepted: age identity files"]),
    ),
    (
        "unseal sealed.bin --key server.key",
        EXIT_USAGE,
        Says::Hint(
            &["error: sealed.bin: does not end in .age, so the output name is unknown"],
            "use -o OUTPUT",
        ),
    ),
    (
        "seal-keygen -y server.pub",
        EXIT_USAGE,
        Says::Error(&["server.pub: line 1: not a valid identity"]),
    ),
    // A passphrase is never mixed with keys, nor a work factor given without one; a key
    // given for a file sealed with a passphrase gets a hint (exit 3: no key matches).
    (
        "seal plain.txt --passphrase-file pass --to server.pub",
        EXIT_USAGE,
        Says::Hint(&["passphrase cannot be combined"], "not both"),
    ),
    (
        "seal plain.txt --to server.pub --work-factor 10",
        EXIT_USAGE,
        Says::Usage("--work-factor"),
    ),
    (
        "unseal by-passphrase.age --key server.key",
        EXIT_NO_MATCH,
        Says::Hint(
            &["by-passphrase.age: the file is sealed with a passphrase, not to a key"],
            "leave out --key",
        ),
    ),
    // What the argument parser refuses (exit 2, its usage message).
    (
        "seal plain.txt --to server.pub --bogus",
        EXIT_USAGE,
        Says::Usage("--bogus"),
    ),
    (
        "unseal plain.txt.age --key server.key --bogus",
        EXIT_USAGE,
        Says::Usage("--bogus"),
    ),
    ("seal-keygen --bogus", EXIT_USAGE, Says::Usage("--bogus")),
    (
        "seal-keygen -o new.key -y server.key",
        EXIT_USAGE,
        Says::Usage("cannot be used with"),
    ),
    (
        "seal-keygen --pq -y server.key",
        EXIT_USAGE,
        Says::Usage("cannot be used with"),
    ),
    (
        "seal plain.txt --to server.pub --threads many",
        EXIT_USAGE,
        Says::Usage("many"),
    ),
    // Several inputs are batch mode (issue 3), which reads no standard input.
    (
        "seal plain.txt - --to server.pub",
        EXIT_USAGE,
        Says::Usage("standard input cannot be part of a batch"),
    ),
];

/// A `server` key; `plain.txt`, and `a` and `b`; `plain.txt` sealed to the key as
/// `sealed.age` and as `sealed.bin` (a name without `.age`); and `by-passphrase.age`,
/// sealed with the passphrase in `pass`.
fn fixture() -> Dir {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("plain.txt", "hello\n");
    dir.write("a", "1");
    dir.write("b", "2");
    let sealed = seal_to_server(&dir, b"hello\n");
    dir.write("sealed.bin", &sealed);
    dir.write("sealed.age", &sealed);
    dir.write_private("pass", "p");
    let flags = ["--passphrase-file", "pass", "--work-factor", "2"];
    let by_passphrase = transform(&dir, "seal", Io::Pipes, b"x", &flags);
    dir.write("by-passphrase.age", by_passphrase);
    dir
}

#[test]
fn command_lines_are_refused_with_their_exit_code_and_one_message() {
    refuses_all(&fixture(), REFUSALS);
}
