//! Standard input and output: what `unseal` releases to a pipe and when, pipes widened, and
//! an input that shrinks while it is read.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;

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
