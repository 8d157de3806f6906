//! Batch mode (issue 3): `seal DIR...` and `unseal DIR...`.
//!
//! Each test builds a tree in its own temporary directory ([`Dir`]), runs the built binaries
//! in it ([`Cmd`]), and checks what they wrote: outputs byte-identical to their inputs, one
//! report per bad file, the documented exit code, and a directory listing that changed only
//! where it should (nothing outside the output directory, no `.seal-partial` file left).

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::common::*;

/// A file name that is not UTF-8.
fn raw_name() -> OsString {
    OsString::from_vec(b"caf\xe9-\xff.bin".to_vec())
}

fn with_age(name: &OsStr) -> OsString {
    let mut name = name.to_os_string();
    name.push(".age");
    name
}

// ---------------------------------------------------------------------------------------------
// The mixed tree: every kind of entry a batch meets.

/// Regular files of the mixed tree, relative to `in/`, with their contents. `big.bin` is
/// larger than the in-memory limit (1 MiB), so it takes the mapped, chunk-parallel path.
fn good_files() -> Vec<(PathBuf, Vec<u8>)> {
    vec![
        ("a.txt".into(), b"alpha\n".to_vec()),
        ("empty.txt".into(), Vec::new()),
        ("space name.txt".into(), data(65_536, 1)),
        ("nested/big.bin".into(), data((1 << 20) + 70_000, 2)),
        ("nested/deeper/c.bin".into(), data(200_001, 3)),
        (PathBuf::from(raw_name()), data(10, 4)),
    ]
}

/// Builds `in/` with the good files, an empty directory, links inside and outside the tree,
/// and a FIFO; `secret.txt` lies outside it.
fn mixed_tree(dir: &Dir) {
    for (name, contents) in good_files() {
        dir.write(Path::new("in").join(name), contents);
    }
    dir.mkdir("in/empty-dir");
    dir.write("secret.txt", "outside the tree\n");
    dir.symlink("a.txt", "in/link-inside");
    dir.symlink("../secret.txt", "in/link-outside");
    dir.mkfifo("in/fifo");
}

/// The sealed outputs of the good files under `out`.
fn sealed_names(out: &str) -> Vec<PathBuf> {
    good_files()
        .into_iter()
        .map(|(name, _)| Path::new(out).join(with_age(name.as_os_str())))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn a_mixed_tree_round_trips_byte_for_byte_and_odd_entries_are_reported() {
    let dir = Dir::new();
    dir.new_key("server");
    mixed_tree(&dir);
    let outside = dir.listing_outside("out");

    let run = dir.line("seal in --to server.pub -o out").run().ok();
    run.mentions(&["seal: skipped in/fifo:", "not a regular file"])
        .mentions(&[
            "seal: skipped in/link-inside:",
            "symbolic link, not followed",
        ])
        .mentions(&[
            "in/link-outside",
            "symbolic link to outside the input directory",
        ]);
    for name in sealed_names("out/in") {
        assert!(dir.path(&name).is_file(), "{name:?}");
    }
    assert!(
        dir.path("out/in/empty-dir").is_dir(),
        "empty directories are mirrored"
    );
    assert!(!dir.exists("out/in/fifo.age") && !dir.exists("out/in/link-inside.age"));
    assert_eq!(
        dir.listing_outside("out"),
        outside,
        "nothing written outside out/"
    );

    let run = dir.line("unseal out --key server.key -o plain").run().ok();
    assert_eq!(run.summary("unseal", " unsealed"), (6, 0, 0));
    for (name, contents) in good_files() {
        let output = Path::new("plain/out/in").join(&name);
        assert_eq!(dir.read(&output), contents, "{name:?}");
        assert_eq!(
            dir.mode(&output),
            0o600,
            "plaintext is owner-only: {name:?}"
        );
    }
    assert_eq!(dir.mode("plain/out/in/nested"), 0o700);
    assert!(dir.path("plain/out/in/empty-dir").is_dir());
    assert!(dir.partial_files().is_empty());
    let mut expected = outside;
    expected.extend(dir.listing().into_iter().filter(|p| p.starts_with("plain")));
    assert_eq!(
        dir.listing_outside("out"),
        expected,
        "unseal wrote only under plain/"
    );
}

#[test]
fn one_bad_file_never_spoils_the_batch_and_each_is_reported_with_exit_7() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.new_key("other");
    mixed_tree(&dir);
    dir.line("seal in --to server.pub -o out").run().ok();
    // Damage: a flipped payload byte, a file for another key, a cut-off file, not age at all,
    // and a file without .age.
    let mut corrupt = dir.read("out/in/nested/deeper/c.bin.age");
    let at = corrupt.len() - 100;
    corrupt[at] ^= 1;
    dir.write("out/in/corrupt.bin.age", corrupt);
    dir.line("seal in/a.txt --to other.pub -o out/in/other.txt.age")
        .run()
        .ok();
    let sealed = dir.read("out/in/space name.txt.age");
    dir.write("out/in/truncated.txt.age", &sealed[..sealed.len() - 20]);
    dir.write("out/in/garbage.age", "hello, not age\n");
    dir.write("out/in/notes.txt", "not sealed\n");
    let outside = dir.listing_outside("plain");

    let run = dir
        .line("unseal out --key server.key -o plain")
        .run()
        .fails(EXIT_BATCH);
    run.mentions(&["unseal: error: out/in/corrupt.bin.age: payload corrupt at chunk"])
        .mentions(&["unseal: error: out/in/other.txt.age: no key matches (tried 1)"])
        .mentions(&["unseal: error: out/in/truncated.txt.age:"])
        .mentions(&["unseal: error: out/in/garbage.age: not an age file"])
        .mentions(&["unseal: error: 4 of 11 files failed"]);
    assert_eq!(run.summary("unseal", " unsealed"), (6, 1, 4));
    for (name, contents) in good_files() {
        assert_eq!(dir.read(Path::new("plain/out/in").join(&name)), contents);
    }
    for bad in [
        "corrupt.bin",
        "other.txt",
        "truncated.txt",
        "garbage",
        "notes.txt",
    ] {
        assert!(!dir.exists(Path::new("plain/out/in").join(bad)), "{bad}");
    }
    assert!(dir.partial_files().is_empty());
    assert_eq!(
        dir.listing_outside("plain"),
        outside,
        "nothing written outside plain/"
    );
}

#[test]
fn files_and_directories_mix_and_without_o_outputs_go_beside_the_inputs() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("top.txt", data(5000, 7));
    dir.write("docs/one.txt", data(100, 8));
    dir.write("docs/sub/two.txt", data(0, 9));

    dir.line("seal top.txt docs --to server.pub --remove-source")
        .run()
        .ok();
    let sealed = [
        "docs",
        "docs/sub",
        "docs/one.txt.age",
        "docs/sub/two.txt.age",
        "top.txt.age",
    ];
    let keys = ["server.key", "server.pub"];
    let expected: BTreeSet<PathBuf> = sealed.iter().chain(&keys).map(PathBuf::from).collect();
    assert_eq!(
        dir.listing(),
        expected,
        "each source replaced by its sealed file"
    );

    // A re-run beside the inputs leaves the sealed files alone.
    let run = dir.line("seal top.txt.age docs --to server.pub").run().ok();
    assert_eq!(run.summary("seal", " sealed"), (0, 3, 0));
    assert_eq!(dir.listing(), expected);

    dir.line("unseal top.txt.age docs --key server.key --remove-source")
        .run()
        .ok();
    assert_eq!(dir.read("top.txt"), data(5000, 7));
    assert_eq!(dir.read("docs/one.txt"), data(100, 8));
    assert_eq!(dir.read("docs/sub/two.txt"), data(0, 9));
    let names = [
        "docs",
        "docs/sub",
        "docs/one.txt",
        "docs/sub/two.txt",
        "top.txt",
    ];
    let expected: BTreeSet<PathBuf> = names.iter().chain(&keys).map(PathBuf::from).collect();
    assert_eq!(dir.listing(), expected);
}

// ---------------------------------------------------------------------------------------------
// Resuming

#[test]
fn a_rerun_skips_every_file_whose_output_exists_and_force_redoes_them() {
    let dir = Dir::new();
    dir.new_key("server");
    mixed_tree(&dir);
    dir.line("seal in --to server.pub -o out").run().ok();
    let first: Vec<Vec<u8>> = sealed_names("out/in").iter().map(|n| dir.read(n)).collect();
    let listing = dir.listing();

    let run = dir.line("seal in --to server.pub -o out").run().ok();
    assert_eq!(run.summary("seal", " sealed"), (0, 9, 0));
    run.mentions(&["6 existing outputs"])
        .mentions(&["seal: hint: use --force"]);
    let again: Vec<Vec<u8>> = sealed_names("out/in").iter().map(|n| dir.read(n)).collect();
    assert_eq!(again, first, "skipped outputs are untouched");
    assert_eq!(dir.listing(), listing);

    let run = dir
        .line("seal in --to server.pub -o out --force")
        .run()
        .ok();
    assert_eq!(run.summary("seal", " sealed"), (6, 3, 0));
    for (name, old) in sealed_names("out/in").iter().zip(&first) {
        assert_ne!(
            &dir.read(name),
            old,
            "resealed under a new file key: {name:?}"
        );
    }
    assert_eq!(dir.listing(), listing);
    dir.line("unseal out --key server.key -o plain").run().ok();
    for (name, contents) in good_files() {
        assert_eq!(dir.read(Path::new("plain/out/in").join(&name)), contents);
    }
}

#[test]
fn the_next_run_removes_temporary_files_left_by_a_killed_run_but_not_live_ones() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("in/a.txt", "a");
    dir.write("in/sub/b.txt", "b");
    // What a SIGKILL leaves: temporary files, in the output tree and beside the inputs.
    dir.write("out/in/.a.txt.age.Xy12Zq.seal-partial", "half");
    dir.write("out/in/sub/.b.txt.age.Qw34Er.seal-partial", "half");
    dir.write("in/.c.txt.age.As56Df.seal-partial", "half");
    // One still being written by a live process holds its lock.
    dir.write("out/in/.live.age.Zx78Cv.seal-partial", "busy");
    let live = fs::File::open(dir.path("out/in/.live.age.Zx78Cv.seal-partial")).unwrap();
    live.lock().unwrap();

    let run = dir.line("seal in --to server.pub -o out").run().ok();
    run.mentions(&[
        "seal: removed out/in/.a.txt.age.Xy12Zq.seal-partial, left by an interrupted run",
    ])
    .mentions(&["removed out/in/sub/.b.txt.age.Qw34Er.seal-partial"])
    .mentions(&["skipped in/.c.txt.age.As56Df.seal-partial: temporary file"]);
    let partials = dir.partial_files();
    let expected = [
        "in/.c.txt.age.As56Df.seal-partial",
        "out/in/.live.age.Zx78Cv.seal-partial",
    ];
    assert_eq!(partials, expected.map(PathBuf::from));
    assert!(dir.path("out/in/a.txt.age").is_file() && dir.path("out/in/sub/b.txt.age").is_file());

    // Beside the inputs, the temporary file in the input tree is its own output tree's.
    drop(live);
    dir.line("seal in --to server.pub")
        .run()
        .ok()
        .mentions(&["removed in/.c.txt.age.As56Df"]);
    assert!(!dir.exists("in/.c.txt.age.As56Df.seal-partial"));
    assert!(
        !dir.exists("in/.c.txt.age.As56Df.seal-partial.age"),
        "never sealed as an input"
    );
}

#[test]
fn sigterm_or_sigint_mid_batch_stops_cleanly_leaving_only_whole_outputs() {
    for signal in ["TERM", "INT"] {
        // Big enough that one thread is still sealing it when the signal comes; on a loaded
        // machine the window can still be missed (the run ends first), so it grows and the
        // run is tried again, a bounded number of times.
        let (dir, output) = [192, 512, 1024]
            .into_iter()
            .find_map(|mib| signal_while_the_big_file_is_sealed(signal, mib << 20))
            .unwrap_or_else(|| panic!("SIG{signal}: every run ended before the signal"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(EXIT_INTERRUPTED),
            "SIG{signal}: {stderr}"
        );
        assert!(stderr.contains("seal: error: interrupted; no partial output was left behind"));
        assert_eq!(dir.partial_files(), Vec::<PathBuf>::new(), "SIG{signal}");
        assert!(
            !dir.exists("out/in/z-big.bin.age"),
            "SIG{signal}: no half output"
        );
        // The small files came first (one thread, name order): whole, and they open.
        dir.line("unseal out --key server.key -o plain").run().ok();
        for i in 0..20 {
            let plain = format!("plain/out/in/a{i:02}.txt");
            assert_eq!(dir.read(&plain), data(3000, i), "SIG{signal}: {plain}");
        }
    }
}

/// Seals 20 small files and one of `big` bytes on one thread and sends `signal` once the small
/// ones are in place and the big one is under way; `None` if the run ended before that was seen.
fn signal_while_the_big_file_is_sealed(
    signal: &str,
    big: usize,
) -> Option<(Dir, std::process::Output)> {
    let dir = Dir::new();
    dir.new_key("server");
    for i in 0..20 {
        dir.write(format!("in/a{i:02}.txt"), data(3000, i));
    }
    dir.write("in/z-big.bin", vec![0x5a; big]);
    let mut child = dir
        .line("seal in --to server.pub -o out --threads 1")
        .cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The small files are a group of their own, committed while the big one is sealed.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !dir.exists("out/in/a19.txt.age")
        || dir
            .partial_files()
            .iter()
            .all(|p| !p.as_os_str().as_bytes().starts_with(b"out/in/.z-big"))
    {
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        assert!(Instant::now() < deadline, "SIG{signal}: the run is stuck");
        std::thread::sleep(Duration::from_millis(1));
    }
    send_signal(&child, signal);
    Some((dir, child.wait_with_output().unwrap()))
}

// ---------------------------------------------------------------------------------------------
// The report

#[test]
fn the_json_report_has_one_record_per_file_then_a_summary() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.new_key("other");
    mixed_tree(&dir);
    dir.line("seal in --to server.pub -o out").run().ok();
    dir.line("seal in/a.txt --to other.pub -o out/in/other.age")
        .run()
        .ok();
    dir.write("out/in/notes.txt", "x");

    let run = dir
        .line("unseal out --key server.key -o plain --json")
        .run()
        .fails(EXIT_BATCH);
    let records = run.json();
    let (summary, files) = records.split_last().expect("records");
    assert_eq!(files.len(), 8, "{}", String::from_utf8_lossy(&run.stdout));
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["unsealed"], 6);
    assert_eq!(summary["skipped"], 1);
    assert_eq!(summary["failed"], 1);
    let plain_bytes: usize = good_files().iter().map(|(_, c)| c.len()).sum();
    assert!(summary["bytes"].as_u64().unwrap() > plain_bytes as u64);

    let by_path = |path: &str| {
        files.iter().find(|r| r["path"] == path).unwrap_or_else(|| {
            panic!(
                "no record for {path}: {}",
                String::from_utf8_lossy(&run.stdout)
            )
        })
    };
    let a = by_path("out/in/a.txt.age");
    assert_eq!(a["type"], "file");
    assert_eq!(a["output"], "plain/out/in/a.txt");
    assert_eq!(a["outcome"], "unsealed");
    assert_eq!(
        a["bytes"],
        fs::metadata(dir.path("out/in/a.txt.age")).unwrap().len()
    );
    assert!(a["error"].is_null() && a["reason"].is_null());
    let other = by_path("out/in/other.age");
    assert_eq!(other["outcome"], "failed");
    assert_eq!(other["error"], "no key matches (tried 1)");
    assert_eq!(other["code"], 3);
    let notes = by_path("out/in/notes.txt");
    assert_eq!(notes["outcome"], "skipped");
    assert_eq!(notes["reason"], "not-age-name");
    assert!(notes["output"].is_null());

    // A name that is not UTF-8: a readable (lossy) string, and its exact bytes.
    let raw = files
        .iter()
        .find(|r| r.get("path_base64").is_some())
        .expect("raw name");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw["path_base64"].as_str().unwrap())
        .unwrap();
    let mut expected = b"out/in/".to_vec();
    expected.extend_from_slice(with_age(&raw_name()).as_bytes());
    assert_eq!(bytes, expected);
    assert!(raw["path"].as_str().unwrap().contains('\u{fffd}'));
    assert!(raw.get("output_base64").is_some());
}

#[test]
fn quiet_prints_only_errors_and_progress_prints_lines_off_a_terminal() {
    let dir = Dir::new();
    dir.new_key("server");
    mixed_tree(&dir);
    let run = dir.line("seal in --to server.pub -o out -q").run().ok();
    assert_eq!(run.stderr, "", "nothing but errors with --quiet");
    dir.write("out/in/broken.age", "not age");
    let run = dir
        .line("unseal out --key server.key -o plain -q")
        .run()
        .fails(EXIT_BATCH);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "unseal: error: out/in/broken.age: not an age file",
            "unseal: error: 1 of 7 files failed"
        ]
    );

    let run = dir
        .line("seal in --to server.pub -o out2 --progress")
        .run()
        .ok();
    run.mentions(&["seal: 9/9 files, ", "/s"]);
    let run = dir.line("seal in --to server.pub -o out3").run().ok();
    assert!(
        !run.stderr.contains(" files, "),
        "no progress off a terminal: {}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Safety

#[test]
fn an_output_directory_inside_the_input_tree_is_never_walked() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("in/a.txt", "a");
    dir.write("in/sub/b.txt", "b");
    dir.line("seal in --to server.pub -o in/sealed").run().ok();
    let listing = dir.listing();
    let run = dir.line("seal in --to server.pub -o in/sealed").run().ok();
    assert_eq!(run.summary("seal", " sealed"), (0, 2, 0));
    assert_eq!(dir.listing(), listing);
    let sealed: Vec<_> = listing
        .iter()
        .filter(|p| p.starts_with("in/sealed"))
        .collect();
    let expected = [
        "in/sealed",
        "in/sealed/in",
        "in/sealed/in/a.txt.age",
        "in/sealed/in/sub",
        "in/sealed/in/sub/b.txt.age",
    ];
    assert_eq!(
        sealed,
        expected.map(PathBuf::from).iter().collect::<Vec<_>>()
    );
}

#[test]
fn a_tree_of_more_directories_than_open_files_allowed_goes_through_whole() {
    // 600 directories, a file in each, under a limit of 256 open files (macOS's default; soft
    // and hard): directories are held open a few at a time, and fewer outputs are in flight.
    let dir = Dir::new();
    dir.new_key("server");
    for i in 0..600 {
        dir.write(format!("in/d{i:03}/f.txt"), data(100, i));
    }
    let limited = |tool: &str, args: &str| {
        let line = format!("ulimit -n 256 && exec \"$0\" {args}");
        dir.cmd("sh").arg("-c").arg(line).arg(bin(tool)).run()
    };
    limited("seal", "in --to server.pub -o sealed --quiet").ok();
    limited("unseal", "sealed/in --key server.key -o plain --quiet").ok();
    for i in 0..600 {
        assert_eq!(dir.read(format!("plain/in/d{i:03}/f.txt")), data(100, i));
    }
}

#[test]
fn outputs_are_never_written_through_a_symbolic_link_in_the_output_tree() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("in/a.txt", "a");
    dir.write("in/sub/b.txt", "b");
    dir.mkdir("elsewhere");
    dir.mkdir("out");
    dir.symlink("../elsewhere", "out/in");
    let run = dir
        .line("seal in --to server.pub -o out")
        .run()
        .fails(EXIT_BATCH);
    run.mentions(&[
        "seal: error: in/a.txt: cannot write out/in:",
        "not a directory",
    ])
    .mentions(&["seal: error: in/sub/b.txt: cannot write out/in:"]);
    assert_eq!(fs::read_dir(dir.path("elsewhere")).unwrap().count(), 0);
}

#[test]
fn follow_symlinks_follows_links_inside_the_root_only() {
    let dir = Dir::new();
    dir.new_key("server");
    mixed_tree(&dir);
    dir.symlink("nested", "in/dir-link");
    dir.symlink("..", "in/nested/up");
    dir.symlink("missing", "in/dangling");
    let run = dir
        .line("seal in --to server.pub -o out --follow-symlinks")
        .run()
        .fails(EXIT_BATCH);
    run.mentions(&["skipped in/link-outside: symbolic link to outside the input directory"])
        .mentions(&["skipped in/nested/up: symbolic link to a directory that contains it"])
        .mentions(&["skipped in/dir-link/up: symbolic link to a directory that contains it"])
        .mentions(&["seal: error: in/dangling: cannot read: no such file or directory"]);
    assert!(!dir.exists("out/in/link-outside.age"));
    dir.line("unseal out --key server.key -o plain").run().ok();
    assert_eq!(dir.read("plain/out/in/link-inside"), b"alpha\n");
    // A linked directory is mirrored under the link's name, the real one under its own.
    let big = data((1 << 20) + 70_000, 2);
    assert_eq!(dir.read("plain/out/in/dir-link/big.bin"), big);
    assert_eq!(dir.read("plain/out/in/nested/big.bin"), big);
}

#[test]
fn missing_inputs_and_duplicate_outputs_are_reported_and_the_rest_proceeds() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("d1/x.txt", "one");
    dir.write("d2/x.txt", "two");
    dir.write("y.txt", "y");
    let run = dir
        .line("seal missing.txt d1/x.txt d2/x.txt y.txt --to server.pub -o out")
        .run()
        .fails(EXIT_BATCH);
    run.mentions(&["seal: error: missing.txt: cannot read: no such file or directory"])
        .mentions(&["seal: skipped d2/x.txt: another input has the same output path"]);
    assert_eq!(run.summary("seal", " sealed"), (2, 1, 1));
    dir.line("unseal out/x.txt.age --key server.key -o x.txt")
        .run()
        .ok();
    assert_eq!(dir.read("x.txt"), b"one");
}

#[test]
fn remove_source_removes_only_the_inputs_that_were_processed() {
    let dir = Dir::new();
    dir.new_key("server");
    mixed_tree(&dir);
    dir.line("seal in --to server.pub -o out").run().ok();
    dir.write("out/in/garbage.age", "not age");
    dir.write("out/in/notes.txt", "not sealed");
    let run = dir
        .line("unseal out --key server.key -o plain --remove-source")
        .run()
        .fails(EXIT_BATCH);
    assert_eq!(run.summary("unseal", " unsealed"), (6, 1, 1));
    for name in sealed_names("out/in") {
        assert!(!dir.exists(&name), "processed, so removed: {name:?}");
    }
    assert!(dir.exists("out/in/garbage.age"), "failed, so kept");
    assert!(dir.exists("out/in/notes.txt"), "skipped, so kept");
    for (name, contents) in good_files() {
        assert_eq!(dir.read(Path::new("plain/out/in").join(&name)), contents);
    }
}

#[test]
fn a_single_file_takes_remove_source_but_not_the_batch_only_flags() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("a.txt", "alpha");
    dir.line("seal a.txt --to server.pub --remove-source")
        .run()
        .ok();
    assert!(!dir.exists("a.txt") && dir.exists("a.txt.age"));
    dir.line("unseal a.txt.age --key server.key --remove-source")
        .run()
        .ok();
    assert_eq!(dir.read("a.txt"), b"alpha");
    assert!(!dir.exists("a.txt.age"));
    let refused = [
        (
            "seal a.txt --to server.pub --json",
            EXIT_USAGE,
            Says::Mentions(&["seal: error: --json works in batch mode only"]),
        ),
        (
            "seal a.txt --to server.pub --remove-source -o -",
            EXIT_USAGE,
            Says::Mentions(&["--remove-source needs an input file and an output file"]),
        ),
        (
            "seal a.txt . --to server.pub -o -",
            EXIT_USAGE,
            Says::Mentions(&["a batch cannot write to standard output"]),
        ),
    ];
    refuses_all(&dir, &refused);
}

// ---------------------------------------------------------------------------------------------
// Issue 16: what a batch counts, leaves behind and suggests.

#[test]
fn signatures_beside_sealed_files_are_not_counted_as_files() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("a.txt", "a\n");
    dir.mkdir("in");
    dir.line("seal a.txt --to server.pub -o in/a.txt.age")
        .run()
        .ok();
    dir.write("in/a.txt.age.sig", "a detached signature, not checked here");
    dir.write("in/b.txt.age", "not age");
    dir.write("in/b.txt.age.sig", "another");
    let run = dir
        .line("unseal in --key server.key -o out")
        .run()
        .fails(EXIT_BATCH);
    run.mentions(&["unseal: error: 1 of 2 files failed"]);
    // The signatures are still reported, as skipped.
    assert_eq!(run.summary("unseal", " unsealed"), (1, 2, 1));
    run.mentions(&["2 signatures"]);
}

#[test]
fn directories_made_for_outputs_that_all_failed_are_removed_and_empty_inputs_mirrored() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.new_key("other");
    dir.write("in/ok/a.txt", "a\n");
    dir.write("in/bad/deeper/b.txt", "b\n");
    dir.mkdir("in/empty");
    dir.line("seal in/ok --to server.pub -o sealed/in")
        .run()
        .ok();
    dir.line("seal in/bad --to other.pub -o sealed/in")
        .run()
        .ok();
    dir.mkdir("sealed/in/empty");

    let run = dir
        .line("unseal sealed --key server.key -o plain")
        .run()
        .fails(EXIT_BATCH);
    assert_eq!(run.summary("unseal", " unsealed"), (1, 0, 1));
    assert_eq!(dir.read("plain/sealed/in/ok/a.txt"), b"a\n");
    assert!(
        dir.path("plain/sealed/in/empty").is_dir(),
        "empty inputs are mirrored"
    );
    assert!(
        !dir.exists("plain/sealed/in/bad"),
        "no empty tree for failed files"
    );

    // A batch that writes nothing leaves nothing, its -o directory included...
    let before = dir.listing();
    dir.line("unseal sealed/in/bad --key server.key -o nothing")
        .run()
        .fails(EXIT_BATCH);
    assert_eq!(dir.listing(), before);
    // ...but a directory that was there before stays.
    dir.mkdir("there");
    dir.line("unseal sealed/in/bad --key server.key -o there")
        .run()
        .fails(EXIT_BATCH);
    assert!(dir.path("there").is_dir());
    assert_eq!(fs::read_dir(dir.path("there")).unwrap().count(), 0);
}

#[test]
fn follow_symlinks_is_suggested_only_for_links_it_would_follow() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("secret.txt", "outside\n");
    dir.write("in/a.txt", "a\n");
    dir.symlink("a.txt", "in/inside");
    dir.symlink("../secret.txt", "in/outside");
    dir.symlink("missing", "in/dangling");
    dir.mkdir("in/sub");
    dir.symlink("..", "in/sub/up");
    let run = dir.line("seal in --to server.pub -o out").run().ok();
    run.mentions(&["seal: skipped in/inside: symbolic link, not followed (use --follow-symlinks)"])
        .mentions(&["seal: skipped in/outside: symbolic link to outside the input directory"])
        .mentions(&["seal: skipped in/dangling: symbolic link to nothing"])
        .mentions(&["seal: skipped in/sub/up: symbolic link to a directory that contains it"]);
    let hinted: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("--follow-symlinks"))
        .collect();
    assert_eq!(hinted.len(), 1, "{}", run.stderr);
    assert_eq!(run.summary("seal", " sealed"), (1, 4, 0));
}

#[test]
fn a_huge_thread_count_is_capped_in_batch_mode_too() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("in/a.txt", "a\n");
    let run = dir
        .line("seal in --to server.pub -o out --threads 100000")
        .run()
        .ok();
    run.mentions(&[
        "seal: warning: --threads 100000 is more than 4 per core",
        "; using ",
    ]);
    assert!(dir.path("out/in/a.txt.age").is_file());
}

// ---------------------------------------------------------------------------------------------
// Armor and passphrases in a batch (issue 6)

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
