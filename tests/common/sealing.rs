//! Sealing and unsealing through the binaries, by way of files, default names and pipes.

use std::path::PathBuf;

use super::*;

/// The key flags of a directory with a `server` key ([`Dir::new_key`]).
pub const WITH_KEY: &[&str] = &["--key", "server.key"];

/// Sizes around every chunk edge, up to more than one parallel group (16 chunks).
pub const SIZES: &[usize] = &[
    0,
    1,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    2 * CHUNK,
    2 * CHUNK + 500,
    (1 << 20) + 3,
];

/// Sizes for interop: empty, one byte, one chunk, a chunk and a byte, several chunks.
pub const INTEROP_SIZES: &[usize] = &[0, 1, CHUNK, CHUNK + 1, 300 * 1024];

/// How a command gets its input and where its output goes.
#[derive(Clone, Copy, Debug)]
pub enum Io {
    /// `seal FILE` writes `FILE.age`; `unseal FILE.age` writes `FILE`.
    DefaultNames,
    /// `-o OUTPUT`.
    OutputFlag,
    /// No file argument: standard input to standard output.
    Pipes,
    /// `-` as the input and `-o -` as the output.
    Dashes,
}

/// Runs `program` (seal or unseal) on `input` by way of `io`, with `args`; returns its
/// output. The directory is left as it was found: the output file is read and removed after
/// checking that it and the input are all the command left there.
pub fn transform(dir: &Dir, program: &str, io: Io, input: &[u8], args: &[&str]) -> Vec<u8> {
    let before = dir.listing();
    let (input_name, output_name) = match (program, io) {
        ("seal", Io::DefaultNames) => ("input", "input.age"),
        ("seal", _) => ("input", "output.age"),
        (_, Io::DefaultNames) => ("input.age", "input"),
        _ => ("input.age", "output"),
    };
    let cmd = dir.bin(program).args(args);
    let cmd = match io {
        Io::DefaultNames => cmd.arg(input_name),
        Io::OutputFlag => cmd.args([input_name, "-o", output_name]),
        Io::Pipes => cmd.stdin(input),
        Io::Dashes => cmd.args(["-", "-o", "-"]).stdin(input),
    };
    let to_files = matches!(io, Io::DefaultNames | Io::OutputFlag);
    if to_files {
        dir.write(input_name, input);
    }
    let run = cmd.run().ok();
    assert_eq!(run.stderr, "", "{}: stderr", run.what);
    if !to_files {
        assert_eq!(dir.listing(), before, "{}: files left behind", run.what);
        return run.stdout;
    }
    let mut expected = before;
    expected.extend([PathBuf::from(input_name), PathBuf::from(output_name)]);
    assert_eq!(dir.listing(), expected, "{}: files left behind", run.what);
    assert!(run.stdout.is_empty(), "{}: wrote to stdout", run.what);
    let output = dir.read(output_name);
    dir.remove(input_name);
    dir.remove(output_name);
    output
}

/// Seals `plaintext`, and checks the sealed file's start and size.
pub fn seal_via(dir: &Dir, io: Io, plaintext: &[u8], args: &[&str]) -> Vec<u8> {
    let sealed = transform(dir, "seal", io, plaintext, args);
    assert!(sealed.starts_with(b"age-encryption.org/v1\n-> X25519 "));
    let header_len = Layout::of(&sealed).header_len;
    let len = plaintext.len();
    assert_eq!(
        sealed.len(),
        sealed_len(header_len, len),
        "sealed {len} bytes"
    );
    sealed
}

pub fn unseal_via(dir: &Dir, io: Io, sealed: &[u8], args: &[&str]) -> Vec<u8> {
    transform(dir, "unseal", io, sealed, args)
}

/// Seals `plaintext` to `server.pub` with `-o`.
pub fn seal_to_server(dir: &Dir, plaintext: &[u8]) -> Vec<u8> {
    seal_via(dir, Io::OutputFlag, plaintext, &["--to", "server.pub"])
}

/// A directory with a `server` key, and three chunks (two full, one of 500 bytes:
/// `data(2 * CHUNK + 500, 7)`) sealed to it, with their layout.
pub fn three_chunk_file() -> (Dir, Vec<u8>, Layout) {
    let dir = Dir::new();
    dir.new_key("server");
    let plaintext = data(2 * CHUNK + 500, 7);
    let sealed = seal_to_server(&dir, &plaintext);
    let layout = Layout::of(&sealed);
    (dir, sealed, layout)
}

/// Seals `plaintext` with `args` through pipes.
pub fn seal_ssh(dir: &Dir, plaintext: &[u8], args: &[&str]) -> Vec<u8> {
    transform(dir, "seal", Io::Pipes, plaintext, args)
}

/// Unseals `sealed` with `args` by way of files and `-o`.
pub fn unseal_ssh(dir: &Dir, sealed: &[u8], args: &[&str]) -> Vec<u8> {
    transform(dir, "unseal", Io::OutputFlag, sealed, args)
}
