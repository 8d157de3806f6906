//! Writes only beneath `-o`: an uploader who can write into the output directory swaps a
//! directory of the batch for a symbolic link to its own; an output that names its own
//! input; two batches on one tree removing each other's temporary files (issue 15).
//!
//! The uploader is simulated by a thread of the test racing the batch: the tests run as
//! root in CI, where no second user is at hand, and the kernel checks no permission on the
//! paths a root process follows anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::*;

/// `count` small files under `TREE` (every other one in `TREE/sub`), sealed to the key
/// `server` under `sealed/TREE` by one `seal` run; returns their relative paths and contents.
fn sealed_tree(dir: &Dir, count: u64) -> BTreeMap<PathBuf, Vec<u8>> {
    dir.new_key("server");
    let files: BTreeMap<PathBuf, Vec<u8>> = (0..count)
        .map(|i| {
            let name = match i % 2 {
                0 => format!("f{i:05}.bin"),
                _ => format!("sub/f{i:05}.bin"),
            };
            (PathBuf::from(name), data(16 + (i % 97) as usize, i))
        })
        .collect();
    for (name, contents) in &files {
        dir.write(Path::new("TREE").join(name), contents);
    }
    dir.line("seal TREE --to server.pub -o sealed --quiet")
        .run()
        .ok();
    files
}

/// The regular files under `root`, however deep (links not followed).
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                found.push(entry.path());
            }
        }
    }
    found
}

/// Outputs in place in `dir`: regular files, not temporary (`.NAME...`), not inputs
/// (`NAME.age`).
fn outputs_in(dir: &Path) -> usize {
    let output = |name: &[u8]| !name.starts_with(b".") && !name.ends_with(b".age");
    fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| output(e.file_name().as_encoded_bytes()))
            .count()
    })
}

/// The attacker: once the batch has put its first output into `victim` (a directory it
/// made), renames `victim` away (to `OUT/moved-N`) and puts a symbolic link to `attacker`
/// in its place, again whenever a real directory is back there, until the batch ends.
/// Returns the directories moved away, and whether outputs kept arriving in one of them
/// after it was moved (the attack landed in the middle of the batch).
fn swap_for_links(
    dir: &Dir,
    batch: &mut Background,
    victim: &Path,
    attacker: &Path,
) -> (Vec<PathBuf>, bool) {
    let mut moved: Vec<(PathBuf, usize)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while batch.running() {
        assert!(Instant::now() < deadline, "the batch never ended");
        let real_dir = fs::symlink_metadata(victim).is_ok_and(|meta| meta.is_dir());
        if real_dir && outputs_in(victim) > 0 {
            let away = dir.path(format!("OUT/moved-{}", moved.len()));
            if fs::rename(victim, &away).is_ok() {
                symlink(attacker, victim).unwrap();
                let before = outputs_in(&away);
                moved.push((away, before));
            }
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    let landed = moved
        .iter()
        .any(|(away, before)| outputs_in(away) > *before);
    (moved.into_iter().map(|(away, _)| away).collect(), landed)
}

#[test]
fn a_directory_swapped_for_a_symbolic_link_mid_batch_never_takes_an_output_elsewhere() {
    let dir = Dir::new();
    let files = sealed_tree(&dir, 2000);
    let attacker = dir.path("attacker");
    let mut landed = 0;
    // The tree's own directory under -o, its subdirectory, and the subdirectory of a tree
    // opened beside its inputs (the uploader's own inbox): each twice.
    let trials = [
        ("sealed/TREE", "OUT/TREE", "OUT/TREE", ""),
        ("sealed/TREE", "OUT/TREE", "OUT/TREE/sub", "sub"),
        ("inbox/TREE", "inbox/TREE", "inbox/TREE/sub", "sub"),
    ];
    for (trial, (input, out, victim, prefix)) in trials.iter().cycle().take(6).enumerate() {
        for stale in ["OUT", "inbox", "attacker"] {
            let _ = fs::remove_dir_all(dir.path(stale));
        }
        // The attacker's directory has the tree's shape, so that paths through the link
        // resolve.
        fs::create_dir_all(attacker.join("sub")).unwrap();
        fs::create_dir_all(dir.path("OUT")).unwrap();
        let line = match *input {
            "inbox/TREE" => {
                for name in files.keys() {
                    let name = format!("TREE/{}.age", name.display());
                    dir.write(format!("inbox/{name}"), dir.read(format!("sealed/{name}")));
                }
                format!("unseal {input} --key server.key --json")
            }
            _ => format!("unseal {input} --key server.key -o OUT --json"),
        };
        let mut batch = dir.line(&line).start();
        let (moved, hit) = swap_for_links(&dir, &mut batch, &dir.path(victim), &attacker);
        let run = batch.wait();
        landed += usize::from(hit);

        let stolen = files_under(&attacker);
        assert!(
            stolen.is_empty(),
            "trial {trial} ({victim}): {} outputs written outside -o, such as {:?}",
            stolen.len(),
            stolen.first()
        );
        assert!(
            [0, EXIT_BATCH].contains(&run.code),
            "trial {trial}: exit {}: {}",
            run.code,
            run.stderr
        );
        // Every file is either reported failed, or whole in the real output tree (where
        // it was, or in the directory moved away).
        let outcomes: BTreeMap<String, String> = run
            .json()
            .into_iter()
            .filter(|record| record["type"] == "file")
            .map(|r| {
                let path = r["path"].as_str().unwrap().to_string();
                (path, r["outcome"].as_str().unwrap().to_string())
            })
            .collect();
        assert_eq!(
            outcomes.len(),
            files.len(),
            "trial {trial}: one record a file"
        );
        for (name, contents) in &files {
            let source = format!("{input}/{}.age", name.display());
            match outcomes[&source].as_str() {
                "failed" => {}
                "unsealed" => {
                    let mut places = vec![dir.path(out).join(name)];
                    if let Ok(rest) = name.strip_prefix(prefix) {
                        places.extend(moved.iter().map(|away| away.join(rest)));
                    }
                    let whole = places
                        .iter()
                        .any(|p| fs::read(p).ok().as_ref() == Some(contents));
                    assert!(
                        whole,
                        "trial {trial}: {source} reported done, but not whole in {places:?}"
                    );
                }
                other => panic!("trial {trial}: {source}: {other}"),
            }
        }
    }
    assert!(
        landed > 0,
        "the swap never landed while the batch was writing: the test proves nothing"
    );
}

#[test]
fn an_output_that_is_its_own_input_is_refused_whatever_force_says() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("x", "the only copy\n");
    dir.line("seal x --to server.pub -o x.age").run().ok();
    let sealed = dir.read("x.age");
    fs::hard_link(dir.path("x.age"), dir.path("hard.age")).unwrap();
    dir.symlink("x.age", "soft.age");
    fs::hard_link(dir.path("x"), dir.path("hard")).unwrap();
    dir.symlink("x", "soft");
    let listing = dir.listing();

    let unseal = "--key server.key --force --remove-source";
    let seal = "--to server.pub --force --remove-source";
    let cases = [
        (
            format!("unseal x.age -o x.age {unseal}"),
            "unseal: error: x.age:",
        ),
        (
            format!("unseal x.age -o hard.age {unseal}"),
            "unseal: error: x.age:",
        ),
        (
            format!("unseal x.age -o soft.age {unseal}"),
            "unseal: error: x.age:",
        ),
        (
            format!("unseal soft.age -o x.age {unseal}"),
            "unseal: error: soft.age:",
        ),
        (format!("seal x -o x {seal}"), "seal: error: x:"),
        (format!("seal x -o hard {seal}"), "seal: error: x:"),
        (format!("seal x -o soft {seal}"), "seal: error: x:"),
        (format!("seal soft -o x {seal}"), "seal: error: soft:"),
    ];
    for (line, error) in cases {
        dir.line(&line)
            .run()
            .fails(EXIT_USAGE)
            .mentions(&[error, "the output is the input itself"]);
        assert_eq!(dir.listing(), listing, "{line}: nothing changed");
        assert_eq!(dir.read("x.age"), sealed, "{line}");
        assert_eq!(dir.read("x"), b"the only copy\n", "{line}");
    }
}

#[test]
fn a_batch_fails_only_the_file_whose_output_is_its_own_input() {
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("in/a", "a");
    dir.write("in/b", "b");
    dir.line("seal in --to server.pub --quiet").run().ok();
    // The uploader makes `in/a` a second name of `in/a.age`, and `in/b` a link to `in/b.age`.
    fs::remove_file(dir.path("in/a")).unwrap();
    fs::hard_link(dir.path("in/a.age"), dir.path("in/a")).unwrap();
    fs::remove_file(dir.path("in/b")).unwrap();
    dir.symlink("b.age", "in/b");
    dir.write("in/c", "c");
    dir.line("seal in/c --to server.pub").run().ok();
    fs::remove_file(dir.path("in/c")).unwrap();
    let a = dir.read("in/a.age");

    let run = dir
        .line("unseal in --key server.key --force --remove-source")
        .run()
        .fails(EXIT_BATCH);
    run.mentions(&["unseal: error: in/a.age: the output is the input itself"])
        .mentions(&["unseal: error: in/b.age: the output is the input itself"]);
    assert_eq!(run.summary("unseal", " unsealed"), (1, 2, 2));
    assert_eq!(dir.read("in/a.age"), a);
    assert_eq!(dir.read("in/a"), a);
    assert!(dir.exists("in/b.age"));
    assert_eq!(dir.read("in/c"), b"c");
    assert!(!dir.exists("in/c.age"));

    // Sealing: `in/d.age` is a second name of `in/d`.
    let dir = Dir::new();
    dir.new_key("server");
    dir.write("in/d", "d");
    fs::hard_link(dir.path("in/d"), dir.path("in/d.age")).unwrap();
    dir.write("in/e", "e");
    let run = dir
        .line("seal in --to server.pub --force --remove-source")
        .run()
        .fails(EXIT_BATCH);
    run.mentions(&["seal: error: in/d: the output is the input itself"]);
    assert_eq!(dir.read("in/d"), b"d");
    assert_eq!(dir.read("in/d.age"), b"d");
    assert!(!dir.exists("in/e") && dir.exists("in/e.age"));
}

#[test]
fn two_concurrent_batches_on_one_tree_never_remove_each_others_temporary_files() {
    let dir = Dir::new();
    let files = sealed_tree(&dir, 2000);
    for trial in 0..5 {
        let _ = fs::remove_dir_all(dir.path("OUT"));
        let line = "unseal sealed/TREE --key server.key -o OUT --force --quiet";
        let mut first = dir.line(line).start();
        // The second starts (and clears the output tree of stale temporary files) while the
        // first is writing; a third and a fourth do the same a little later.
        let mut others = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(300);
        while others.len() < 3 && first.running() {
            assert!(Instant::now() < deadline, "the first batch never ended");
            let written = outputs_in(&dir.path("OUT/TREE")) + outputs_in(&dir.path("OUT/TREE/sub"));
            if written > 100 * (others.len() + 1) {
                others.push(dir.line(line).start());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        for run in std::iter::once(first).chain(others).map(Background::wait) {
            assert_eq!(run.code, 0, "trial {trial}: {}", run.stderr);
        }
        for (name, contents) in &files {
            assert_eq!(
                &dir.read(Path::new("OUT/TREE").join(name)),
                contents,
                "trial {trial}"
            );
        }
        let partial = files_under(&dir.path("OUT"))
            .into_iter()
            .find(|p| p.as_os_str().as_encoded_bytes().ends_with(b".seal-partial"));
        assert_eq!(partial, None, "trial {trial}");
    }
}

#[test]
fn an_input_directory_swapped_for_a_symbolic_link_mid_batch_is_never_read_through_it() {
    let dir = Dir::new();
    let files = sealed_tree(&dir, 2000);
    let sub: Vec<&PathBuf> = files.keys().filter(|p| p.starts_with("sub")).collect();
    let mut landed = 0;
    for trial in 0..3 {
        for stale in ["OUT", "inbox", "victim"] {
            let _ = fs::remove_dir_all(dir.path(stale));
        }
        // Another user's uploads, named as the files of `sub` are: what the batch would read,
        // and remove, through the link.
        for name in files.keys() {
            let sealed = dir.read(format!("sealed/TREE/{}.age", name.display()));
            dir.write(format!("inbox/TREE/{}.age", name.display()), &sealed);
            if let Ok(rest) = name.strip_prefix("sub") {
                dir.write(format!("victim/{}.age", rest.display()), &sealed);
            }
        }
        let theirs = || -> BTreeSet<PathBuf> {
            let all = dir.listing();
            all.into_iter()
                .filter(|p| p.starts_with("victim"))
                .collect()
        };
        let victim = theirs();
        let line = "unseal inbox/TREE --key server.key -o OUT --remove-source --json";
        let mut batch = dir.line(line).start();
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut hit = false;
        let sub_dir = dir.path("inbox/TREE/sub");
        while batch.running() {
            assert!(Instant::now() < deadline, "the batch never ended");
            let real_dir = fs::symlink_metadata(&sub_dir).is_ok_and(|meta| meta.is_dir());
            if real_dir && outputs_in(&dir.path("OUT/TREE/sub")) > 0 {
                let away = dir.path("inbox/away");
                if fs::rename(&sub_dir, &away).is_ok() {
                    symlink(dir.path("victim"), &sub_dir).unwrap();
                    hit = fs::read_dir(&away).unwrap().count() > 0;
                }
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        let run = batch.wait();
        landed += usize::from(hit);
        assert!(
            [0, EXIT_BATCH].contains(&run.code),
            "trial {trial}: exit {}: {}",
            run.code,
            run.stderr
        );
        // Nothing of the other user's was removed, and nothing of theirs was read: every
        // output is the file the batch planned, from the directory it planned.
        let now = theirs();
        let removed: Vec<&PathBuf> = victim.difference(&now).collect();
        assert!(
            removed.is_empty() && now == victim,
            "trial {trial}: {} of the other user's files were removed through the link, such as {:?}",
            removed.len(),
            removed.first()
        );
        let count = fs::read_dir(dir.path("victim")).unwrap().count();
        assert_eq!(count, sub.len(), "trial {trial}");
        for record in run.json().iter().filter(|r| r["type"] == "file") {
            assert!(
                ["unsealed", "failed"].contains(&record["outcome"].as_str().unwrap()),
                "trial {trial}: {record}"
            );
        }
    }
    assert!(
        landed > 0,
        "the swap never landed while the batch was reading: the test proves nothing"
    );
}
