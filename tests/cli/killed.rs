//! Runs that are stopped: by SIGKILL, which nothing can catch (the next run into the same place
//! clears up), and by a signal while plaintext streams to standard output (the message says
//! how much went out, and that it is incomplete).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;

/// Starts `line` with its standard input a pipe, writes `head` into it, waits until the
/// command has made its temporary output file, and kills it with SIGKILL; returns the file
/// it left.
fn kill_mid_write(dir: &Dir, line: &str, head: &[u8]) -> PathBuf {
    let mut child = dir
        .line(line)
        .cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(head).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while dir.partial_files().is_empty() {
        assert!(Instant::now() < deadline, "{line}: no temporary file");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let it write some of the input into the temporary file.
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    let left = dir.partial_files();
    assert_eq!(
        left.len(),
        1,
        "{line}: SIGKILL leaves its temporary file: {left:?}"
    );
    left.into_iter().next().unwrap()
}

#[test]
fn a_run_after_a_killed_unseal_removes_its_temporary_file_and_writes_the_output() {
    let dir = Dir::new();
    dir.new_key("server");
    let plaintext = data(6 << 20, 17);
    dir.write("plain", &plaintext);
    dir.line("seal plain --to server.pub -o in.age").run().ok();
    let sealed = dir.read("in.age");
    let left = kill_mid_write(
        &dir,
        "unseal --key server.key -o out",
        &sealed[..sealed.len() / 2],
    );
    assert!(left.to_string_lossy().starts_with(".out."), "{left:?}");
    assert!(!dir.exists("out"));

    let run = dir.line("unseal in.age --key server.key -o out").run().ok();
    let line = format!(
        "unseal: removed {}, left by an interrupted run",
        left.display()
    );
    assert_eq!(run.stderr_lines(), [line.as_str()], "{}", run.stderr);
    assert_eq!(dir.partial_files(), Vec::<PathBuf>::new());
    assert_eq!(dir.read("out"), plaintext);
}

#[test]
fn a_run_after_a_killed_seal_removes_its_temporary_file_and_writes_the_output() {
    let dir = Dir::new();
    dir.new_key("server");
    let plaintext = data(6 << 20, 18);
    dir.write("plain", &plaintext);
    let left = kill_mid_write(
        &dir,
        "seal --to server.pub -o out.age",
        &plaintext[..3 << 20],
    );
    assert!(left.to_string_lossy().starts_with(".out.age."), "{left:?}");

    let run = dir.line("seal plain --to server.pub -o out.age").run().ok();
    let line = format!(
        "seal: removed {}, left by an interrupted run",
        left.display()
    );
    assert_eq!(run.stderr_lines(), [line.as_str()], "{}", run.stderr);
    assert_eq!(dir.partial_files(), Vec::<PathBuf>::new());
    let opened = dir.line("unseal out.age --key server.key -o -").run().ok();
    assert_eq!(opened.stdout, plaintext);
}

#[test]
fn a_rerun_leaves_the_temporary_files_of_other_outputs_and_of_live_runs() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("plain", b"text");
    // Another output's leftover stays; so does this output's file while a live process
    // holds it (locked): only a dead run's file of this output goes.
    dir.write(".other.age.AAAAAA.seal-partial", b"half");
    dir.write(".out.age.BBBBBB.seal-partial", b"live");
    let live = std::fs::File::open(dir.path(".out.age.BBBBBB.seal-partial")).unwrap();
    live.lock().unwrap();
    dir.write(".out.age.CCCCCC.seal-partial", b"half");
    let run = dir.line("seal plain --to server.pub -o out.age").run().ok();
    run.mentions(&["removed .out.age.CCCCCC.seal-partial"]);
    let left: Vec<_> = dir.partial_files().into_iter().collect();
    assert_eq!(
        left,
        [
            ".other.age.AAAAAA.seal-partial",
            ".out.age.BBBBBB.seal-partial"
        ]
        .map(PathBuf::from)
    );
    drop(live);
}

#[test]
fn an_interrupted_stream_to_standard_output_says_how_much_went_out_and_that_it_is_incomplete() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("plain", data(24 << 20, 19));
    dir.line("seal plain --to server.pub -o in.age").run().ok();
    let sealed = dir.read("in.age");
    let mut child = dir
        .line("unseal --key server.key -o -")
        .cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&sealed[..sealed.len() / 2]).unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Some plaintext has gone out, and the writes that carried it have returned.
    let mut first = vec![0u8; 1 << 20];
    stdout.read_exact(&mut first).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    send_signal(&child, "INT");
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let output = child.wait_with_output().unwrap();
    drop(stdin);
    let received = (first.len() + rest.len()) as u64;
    assert_eq!(output.status.code(), Some(EXIT_INTERRUPTED));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let (message, count) = stderr
        .trim_end()
        .split_once(" bytes")
        .and_then(|(head, tail)| {
            let (message, count) = head.rsplit_once(' ')?;
            Some((
                format!("{message} N bytes{tail}"),
                count.parse::<u64>().ok()?,
            ))
        })
        .unwrap_or_else(|| panic!("no byte count in: {stderr}"));
    assert_eq!(
        message,
        "unseal: error: interrupted; standard output is incomplete: at least N bytes of plaintext were written to it"
    );
    // What it counts went out; less than the whole plaintext did.
    assert!(
        count > 0 && count <= received,
        "{count} said, {received} received"
    );
    assert!(received < (24 << 20));
}
