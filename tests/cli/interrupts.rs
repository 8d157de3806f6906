//! Signals: an interrupted command exits 130 and leaves no partial output, and a closed
//! standard error loses messages, never signals or exit codes.

use std::fs;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;

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
        while dir.partial_files().is_empty() {
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
