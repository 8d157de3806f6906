//! `unseal --watch`: uploads written the ways clients write them, opened once each, across
//! restarts, kills and a second watcher; bad ones quarantined; SIGTERM stops cleanly.
//!
//! Each test runs the real binary on a real inbox and waits for outcomes with a deadline, so a
//! watcher that never acts fails the test instead of hanging it.

use std::collections::HashMap;
use std::fs::{File, FileTimes};
use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use sha2::Digest;

use crate::common::*;

/// A running `unseal --watch in -o out` with its journal in `state`, reporting in JSON.
struct Watching {
    child: Child,
}

impl Watching {
    fn start(dir: &Dir, extra: &str) -> Watching {
        Watching::start_with(dir, extra, &[])
    }

    /// As [`Watching::start`], with environment variables set.
    fn start_with(dir: &Dir, extra: &str, env: &[(&str, std::ffi::OsString)]) -> Watching {
        let line =
            format!("unseal --watch in -o out -k server.key --state-dir state --json {extra}");
        let mut cmd = dir.line(&line);
        for (name, value) in env {
            cmd.cmd.env(name, value);
        }
        let child = cmd
            .cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Watching { child }
    }

    /// SIGTERM; the exit code, the JSON records and standard error.
    fn stop(self) -> (Option<i32>, Vec<serde_json::Value>, String) {
        send_signal(&self.child, "TERM");
        let output = self.child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let records = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect();
        (output.status.code(), records, stderr)
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// A directory with the server key and an empty inbox, `in`.
fn server_inbox() -> Dir {
    let dir = Dir::new();
    dir.new_key("server");
    dir.mkdir("in");
    dir
}

/// Runs a watcher until `a.age`, uploaded, is opened to `out/a`, and stops it; returns its
/// records. The upload stays in the inbox.
fn open_a(dir: &Dir) -> Vec<serde_json::Value> {
    let watching = Watching::start(dir, "--settle 0.2");
    dir.write("in/a.age", sealed(dir, b"a"));
    wait_until("a", || dir.exists("out/a"));
    let (code, records, stderr) = watching.stop();
    assert_eq!(code, Some(0), "{stderr}");
    records
}

/// Waits until `done` holds, failing after 60 s.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "waited 60 s for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn data(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7) % 251) as u8)
        .collect()
}

/// `text` sealed to `server.pub`, made outside the inbox.
fn sealed(dir: &Dir, text: &[u8]) -> Vec<u8> {
    dir.write("staging/plain", text);
    let _ = std::fs::remove_file(dir.path("staging/plain.age"));
    dir.line("seal staging/plain --to server.pub").run().ok();
    dir.read("staging/plain.age")
}

/// Makes `name` look an hour old: found by a scan, it is taken at once.
fn age_it(dir: &Dir, name: &str) {
    let old = SystemTime::now() - Duration::from_secs(3600);
    let file = File::options().write(true).open(dir.path(name)).unwrap();
    file.set_times(FileTimes::new().set_modified(old).set_accessed(old))
        .unwrap();
}

/// How many records say each input was unsealed by this run (not recovered).
fn unsealed(records: &[serde_json::Value]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for record in records {
        if record["outcome"] == "unsealed" && record["recovered"] == false {
            let path = record["path"].as_str().unwrap().to_string();
            *counts.entry(path).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn uploads_written_closed_renamed_or_slowly_open_once_each_and_sigterm_exits_0() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.mkdir("in/sub");
    // There before the watcher: found by its first scan.
    dir.write("in/before.age", sealed(&dir, b"before"));
    age_it(&dir, "in/before.age");
    let watching = Watching::start(&dir, "--settle 0.2");
    wait_until("the file already there", || dir.exists("out/before"));
    // Written, then closed.
    dir.write("in/sub/closed.age", sealed(&dir, b"closed"));
    // Written under a temporary name, then renamed in.
    dir.write("in/.renamed.age.part", sealed(&dir, b"renamed"));
    std::fs::rename(dir.path("in/.renamed.age.part"), dir.path("in/renamed.age")).unwrap();
    // Written slowly, in pieces, with pauses longer than --settle: taken only once closed.
    let slow = sealed(&dir, &data(300_000, 1));
    let mut file = File::create(dir.path("in/slow.age")).unwrap();
    for piece in slow.chunks(100_000) {
        file.write_all(piece).unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(400));
        assert!(!dir.exists("out/slow"), "taken while still being written");
    }
    drop(file);
    // Larger than a window of the stream pipeline (8 MiB), renamed in.
    let large = data(9 << 20, 2);
    dir.write("in/.large.tmp", sealed(&dir, &large));
    std::fs::rename(dir.path("in/.large.tmp"), dir.path("in/large.age")).unwrap();
    // A directory made with an upload already in it.
    dir.mkdir("staging/newdir");
    dir.write("staging/newdir/inside.age", sealed(&dir, b"inside"));
    std::fs::rename(dir.path("staging/newdir"), dir.path("in/newdir")).unwrap();
    for out in ["sub/closed", "renamed", "slow", "large", "newdir/inside"] {
        wait_until(out, || dir.exists(format!("out/{out}")));
    }
    let (code, records, stderr) = watching.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("unseal: stopped; 6 unsealed"), "{stderr}");
    assert_eq!(dir.read("out/before"), b"before");
    assert_eq!(dir.read("out/sub/closed"), b"closed");
    assert_eq!(dir.read("out/renamed"), b"renamed");
    assert_eq!(dir.read("out/slow"), data(300_000, 1));
    assert_eq!(dir.read("out/large"), large);
    assert_eq!(dir.read("out/newdir/inside"), b"inside");
    let counts = unsealed(&records);
    assert_eq!(counts.len(), 6, "{records:?}");
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    // The audit record: time, digest of the plaintext, duration.
    let closed = records
        .iter()
        .find(|r| r["output"].as_str().unwrap().ends_with("out/sub/closed"))
        .unwrap();
    let digest: String = sha2::Sha256::digest(b"closed")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(closed["sha256"], digest.as_str());
    assert!(closed["time"].as_str().unwrap().ends_with('Z'));
    assert!(closed["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(dir.partial_files(), Vec::<std::path::PathBuf>::new());
    // Nothing but outputs in the output directory: the journal is elsewhere.
    assert!(dir.exists("state/journal"));
    assert!(!dir.exists("out/journal"));
}

#[test]
fn a_restart_opens_nothing_twice_and_takes_what_arrived_meanwhile() {
    let dir = server_inbox();
    let first = open_a(&dir);
    dir.write("in/b.age", sealed(&dir, b"b"));
    let watching = Watching::start(&dir, "--settle 0.2");
    wait_until("b, which arrived while no watcher ran", || {
        dir.exists("out/b")
    });
    let (code, second, stderr) = watching.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(unsealed(&first).len(), 1);
    let second = unsealed(&second);
    assert_eq!(second.len(), 1, "{second:?}");
    assert!(second.keys().all(|path| path.ends_with("in/b.age")));
    assert_eq!(dir.read("out/a"), b"a");
    assert_eq!(dir.read("out/b"), b"b");
}

#[test]
fn bad_uploads_are_quarantined_with_a_note_or_left_and_reported_once() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.new_key("other");
    dir.mkdir("in/x");
    let good = sealed(&dir, b"fine");
    dir.write("staging/o", b"for another server");
    dir.line("seal staging/o --to other.pub -o staging/foreign.age")
        .run()
        .ok();
    let foreign = dir.read("staging/foreign.age");
    let watching = Watching::start(&dir, "--settle 0.2 --quarantine q");
    dir.write("in/x/garbage.age", b"not age at all\n");
    dir.write("in/truncated.age", &good[..good.len() - 5]);
    dir.write("in/foreign.age", &foreign);
    dir.write("in/good.age", &good);
    for q in ["x/garbage.age", "truncated.age", "foreign.age"] {
        wait_until(q, || dir.exists(format!("q/{q}.json")));
    }
    wait_until("good", || dir.exists("out/good"));
    let (code, records, stderr) = watching.stop();
    assert_eq!(code, Some(0), "{stderr}");
    for (q, why) in [
        ("x/garbage.age", "not an age file"),
        ("truncated.age", "truncated"),
        ("foreign.age", "no key matches"),
    ] {
        assert!(!dir.exists(format!("in/{q}")), "{q} left in the inbox");
        let note: serde_json::Value =
            serde_json::from_slice(&dir.read(format!("q/{q}.json"))).unwrap();
        assert!(note["reason"].as_str().unwrap().contains(why), "{note}");
        let record = records
            .iter()
            .find(|r| r["path"].as_str().unwrap().ends_with(&format!("in/{q}")))
            .unwrap();
        assert_eq!(record["outcome"], "failed");
        assert!(record["quarantined"]
            .as_str()
            .unwrap()
            .ends_with(&format!("q/{q}")));
        assert!(stderr.is_empty() || !stderr.contains(&format!("in/{q} -> ")));
    }
    assert_eq!(dir.read("q/foreign.age"), foreign);
    assert!(!dir.exists("out/x/garbage") && !dir.exists("out/truncated"));

    // Without a quarantine: left where it is, reported once, not again after a restart.
    dir.write("in/again.age", b"still not age\n");
    let watching = Watching::start(&dir, "--settle 0.2");
    std::thread::sleep(Duration::from_millis(1500));
    let (_, first, _) = watching.stop();
    let watching = Watching::start(&dir, "--settle 0.2");
    std::thread::sleep(Duration::from_millis(1000));
    let (_, second, _) = watching.stop();
    let failed = |records: &[serde_json::Value]| {
        records
            .iter()
            .filter(|r| r["path"].as_str().unwrap().ends_with("in/again.age"))
            .count()
    };
    assert_eq!(failed(&first), 1, "{first:?}");
    assert_eq!(failed(&second), 0, "{second:?}");
    assert!(dir.exists("in/again.age"));
}

#[test]
fn two_watchers_on_one_inbox_open_each_upload_once() {
    let dir = server_inbox();
    let one = Watching::start(&dir, "--settle 0.2");
    let two = Watching::start(&dir, "--settle 0.2");
    std::thread::sleep(Duration::from_millis(500));
    let uploads: Vec<Vec<u8>> = (0..40).map(|i| sealed(&dir, &data(5000, i))).collect();
    for (i, upload) in uploads.iter().enumerate() {
        dir.write(format!("in/.u{i}.part"), upload);
        std::fs::rename(
            dir.path(format!("in/.u{i}.part")),
            dir.path(format!("in/u{i}.age")),
        )
        .unwrap();
    }
    wait_until("all 40 outputs", || {
        (0..40).all(|i| dir.exists(format!("out/u{i}")))
    });
    let (_, a, _) = one.stop();
    let (_, b, _) = two.stop();
    let mut counts = unsealed(&a);
    for (path, n) in unsealed(&b) {
        *counts.entry(path).or_insert(0) += n;
    }
    assert_eq!(counts.len(), 40, "{counts:?}");
    assert!(counts.values().all(|&n| n == 1), "opened twice: {counts:?}");
    for i in 0..40 {
        assert_eq!(dir.read(format!("out/u{i}")), data(5000, i));
    }
}

#[test]
fn kill_9_mid_run_then_restart_leaves_each_output_once_and_whole() {
    let dir = server_inbox();
    for i in 0..150 {
        dir.write(format!("in/f{i:03}.age"), sealed(&dir, &data(20_000, i)));
        age_it(&dir, &format!("in/f{i:03}.age"));
    }
    let watching = Watching::start(&dir, "--threads 1 --remove-source");
    wait_until("some outputs", || dir.exists("out/f010"));
    watching.kill();
    let watching = Watching::start(&dir, "--remove-source");
    wait_until("every output", || {
        (0..150).all(|i| dir.exists(format!("out/f{i:03}")))
    });
    wait_until("every upload removed", || {
        (0..150).all(|i| !dir.exists(format!("in/f{i:03}.age")))
    });
    let (code, records, stderr) = watching.stop();
    assert_eq!(code, Some(0), "{stderr}");
    for i in 0..150 {
        assert_eq!(dir.read(format!("out/f{i:03}")), data(20_000, i), "f{i:03}");
    }
    assert!(
        records.iter().all(|r| r["outcome"] == "unsealed"),
        "{records:?}"
    );
    assert_eq!(dir.partial_files(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn watch_mode_refuses_what_would_mix_inbox_output_and_state() {
    let dir = server_inbox();
    for (line, says) in [
        ("unseal --watch in -k server.key", "needs -o OUTDIR"),
        (
            "unseal --watch in -o in/out -k server.key",
            "must not lie one in the other",
        ),
        (
            "unseal --watch in -o out -k server.key --state-dir out/s",
            "must not lie one in the other",
        ),
        (
            "unseal --watch in -o out -k server.key --quarantine in/q",
            "must not lie one in the other",
        ),
        (
            "unseal --watch in -o out -k server.key --force",
            "never replaces an output",
        ),
        (
            "unseal --watch in x.age -o out -k server.key",
            "takes no other inputs",
        ),
    ] {
        let run = dir.line(line).run().fails(EXIT_USAGE);
        let stderr = run.stderr_lines().join("\n");
        assert!(stderr.contains(says), "{line}: {stderr}");
    }
}

#[test]
fn signatures_are_awaited_checked_and_a_sighup_reads_the_allowed_signers_again() {
    let (dir, _) = signed_upload();
    dir.mkdir("in");
    // alice and mallory are allowed; bob is not, yet.
    let upload = |client: &str, name: &str, text: &[u8]| {
        dir.write("staging/x", text);
        let line =
            format!("seal staging/x --to server.pub --sign-with {client}.key -o staging/{name}");
        dir.line(&line).run().ok();
    };
    let watching = Watching::start(
        &dir,
        "--settle 5 --quarantine q --allowed-signers allowed --require-signature",
    );
    upload("alice", "a.age", b"from alice");
    // The upload first, its signature after it: the upload waits for it.
    std::fs::rename(dir.path("staging/a.age"), dir.path("in/a.age")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!dir.exists("out/a"), "opened before its signature came");
    std::fs::rename(dir.path("staging/a.age.sig"), dir.path("in/a.age.sig")).unwrap();
    wait_until("alice's upload", || dir.exists("out/a"));
    upload("bob", "b.age", b"from bob");
    std::fs::rename(dir.path("staging/b.age.sig"), dir.path("in/b.age.sig")).unwrap();
    std::fs::rename(dir.path("staging/b.age"), dir.path("in/b.age")).unwrap();
    wait_until("bob's upload quarantined", || dir.exists("q/b.age.json"));
    assert!(dir.exists("q/b.age.sig"), "the signature goes with it");
    // bob is allowed from now on.
    let bob = format!("bob {}", dir.read_string("bob.pub"));
    let allowed = dir.read_string("allowed") + &bob;
    dir.write("allowed", allowed);
    send_signal(&watching.child, "HUP");
    std::thread::sleep(Duration::from_millis(500));
    upload("bob", "c.age", b"from bob, allowed");
    std::fs::rename(dir.path("staging/c.age.sig"), dir.path("in/c.age.sig")).unwrap();
    std::fs::rename(dir.path("staging/c.age"), dir.path("in/c.age")).unwrap();
    wait_until("bob's upload, once allowed", || dir.exists("out/c"));
    let (code, records, stderr) = watching.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("read the allowed signers again: 3 keys"),
        "{stderr}"
    );
    assert_eq!(dir.read("out/a"), b"from alice");
    assert_eq!(dir.read("out/c"), b"from bob, allowed");
    let signer = |name: &str| {
        let record = records
            .iter()
            .find(|r| r["path"].as_str().unwrap().ends_with(name))
            .unwrap();
        record["signature"].clone()
    };
    assert_eq!(signer("in/a.age")["principals"][0], "alice");
    assert_eq!(signer("in/c.age")["principals"][0], "bob");
    let note: serde_json::Value = serde_json::from_slice(&dir.read("q/b.age.json")).unwrap();
    assert!(
        note["reason"].as_str().unwrap().contains("signature"),
        "{note}"
    );
}

#[test]
fn sigterm_while_busy_finishes_what_it_holds_exits_0_and_a_restart_takes_the_rest() {
    const FILES: usize = 100;
    let dir = server_inbox();
    // Large enough that one thread is still busy when the signal comes.
    let plaintext = data(2 << 20, 3);
    let upload = sealed(&dir, &plaintext);
    for i in 0..FILES {
        dir.write(format!("in/f{i:03}.age"), &upload);
        age_it(&dir, &format!("in/f{i:03}.age"));
    }
    let watching = Watching::start(&dir, "--threads 1");
    wait_until("the first outputs", || dir.exists("out/f002"));
    let (code, first, stderr) = watching.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("unseal: stopped;"), "{stderr}");
    assert_eq!(dir.partial_files(), Vec::<std::path::PathBuf>::new());
    let done = (0..FILES)
        .filter(|i| dir.exists(format!("out/f{i:03}")))
        .count();
    assert!(done < FILES, "stopped only once everything was done");
    assert_eq!(unsealed(&first).len(), done, "{first:?}");
    let watching = Watching::start(&dir, "");
    wait_until("every output", || {
        (0..FILES).all(|i| dir.exists(format!("out/f{i:03}")))
    });
    let (code, second, _) = watching.stop();
    assert_eq!(code, Some(0));
    assert_eq!(
        unsealed(&second).len(),
        FILES - done,
        "nothing opened twice"
    );
    for i in 0..FILES {
        assert!(dir.read(format!("out/f{i:03}")) == plaintext, "f{i:03}");
    }
}

#[test]
fn polling_takes_uploads_without_file_system_events_once_they_settle() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.mkdir("in/deep/er");
    let watching = Watching::start(&dir, "--poll 0.1 --settle 0.3");
    dir.write("in/deep/er/p.age", sealed(&dir, b"polled"));
    // A partial-upload name is never taken, however long it waits.
    dir.write("in/q.age.filepart", sealed(&dir, b"not yet"));
    wait_until("the polled upload", || dir.exists("out/deep/er/p"));
    std::thread::sleep(Duration::from_millis(600));
    let (code, records, stderr) = watching.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(dir.read("out/deep/er/p"), b"polled");
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(!dir.exists("out/q.age") && !dir.exists("out/q"));
}

#[test]
fn an_upload_recorded_done_but_still_there_is_removed_by_the_next_run_with_remove_source() {
    // What a kill between the journal's `done` and the removal of the upload leaves: the
    // output in place, the upload still in the inbox. A run that kept its uploads leaves the
    // same.
    let dir = server_inbox();
    open_a(&dir);
    assert!(dir.exists("in/a.age"));
    let watching = Watching::start(&dir, "--settle 0.2 --remove-source");
    wait_until("the upload removed", || !dir.exists("in/a.age"));
    let (code, records, stderr) = watching.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(dir.read("out/a"), b"a");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["outcome"], "unsealed");
    assert_eq!(records[0]["recovered"], true);
}

#[test]
fn a_symbolic_link_in_the_inbox_is_never_followed_to_an_upload_outside_it() {
    let dir = server_inbox();
    // An uploader links a directory and a file from elsewhere into the inbox.
    dir.write("elsewhere/x.age", sealed(&dir, b"not an upload"));
    age_it(&dir, "elsewhere/x.age");
    dir.symlink("../elsewhere", "in/linked");
    dir.symlink("../elsewhere/x.age", "in/y.age");
    let watching = Watching::start(&dir, "--settle 0.2 --remove-source --quarantine q");
    // And one renamed in while the watcher runs: an event names it.
    std::thread::sleep(Duration::from_millis(500));
    dir.symlink("../elsewhere/x.age", "staging/z.age");
    std::fs::rename(dir.path("staging/z.age"), dir.path("in/z.age")).unwrap();
    // A real upload after them: once it is opened, the scan and the events have been seen.
    dir.write("in/real.age", sealed(&dir, b"real"));
    wait_until("the real upload", || dir.exists("out/real"));
    std::thread::sleep(Duration::from_millis(500));
    let (code, records, stderr) = watching.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(!dir.exists("out/linked") && !dir.exists("out/y") && !dir.exists("out/z"));
    assert!(dir.exists("elsewhere/x.age"), "removed through a link");
    assert!(!dir.exists("q/linked") && !dir.exists("q/y.age") && !dir.exists("q/z.age"));
}

#[test]
fn a_server_key_in_a_plugin_opens_each_upload_with_its_pin_from_a_file() {
    let dir = Dir::new();
    plugin_key(&dir);
    std::fs::rename(dir.path("plugin.key"), dir.path("server.key")).unwrap();
    dir.mkdir("in");
    dir.write_private("pin", "2468\n");
    let env = [
        ("PATH", path_with(&plugin_dir())),
        ("SEALTEST_PIN", "2468".into()),
        ("SEALTEST_LOG", dir.path("plugin.log").into_os_string()),
    ];
    let watching = Watching::start_with(&dir, "--settle 0.2 --key-passphrase-file pin", &env);
    for name in ["a", "b", "c"] {
        dir.write(format!("staging/{name}"), name.repeat(1000));
        let mut seal = dir.line(&format!("seal staging/{name} --to plugin.pub"));
        seal.cmd.env("PATH", path_with(&plugin_dir()));
        seal.run().ok();
        std::fs::rename(
            dir.path(format!("staging/{name}.age")),
            dir.path(format!("in/{name}.age")),
        )
        .unwrap();
        wait_until(name, || dir.exists(format!("out/{name}")));
    }
    let (code, records, stderr) = watching.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(unsealed(&records).len(), 3, "{stderr}");
    assert_eq!(dir.read("out/b"), "b".repeat(1000).as_bytes());
    // The inbox opens each upload as it comes: a session each, the PIN from the file.
    let log = dir.read_string("plugin.log");
    assert_eq!(log.matches("identity-v1 1").count(), 3, "{log}");
}
