//! A batch killed at each step of its group commit, then run again.
//!
//! The test runs its own binary again as the batch to kill: with `SEAL_CRASH_POINT` set, the
//! same test function runs a batch with an observer that sends itself SIGKILL at that point
//! (no destructor, no clean-up, as `kill -9` or the OOM killer would). The parent checks what
//! the dead batch left, runs the batch again in its own process, and checks the outcome.
//!
//! What must hold after a kill at any point: every output that has its name is whole; no
//! input is gone without its output; and a second run finishes the batch, removing the dead
//! run's temporary files, making every missing output, and removing the inputs of the
//! outputs it makes (an input whose output the dead run had already put in place is kept,
//! and reported as "output exists": nothing is lost, nothing is made twice).

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use seal::batch::{self, Direction, Event, Keys, Observer, Options, Outcome, Skip, Temporaries};
use seal::x25519;

const POINT: &str = "SEAL_CRASH_POINT";
const DIR: &str = "SEAL_CRASH_DIR";
/// Files in the batch: more than a group of a commit holds.
const FILES: usize = 300;

/// Where the child kills itself: at the `n`-th call of one of the batch's hooks.
#[derive(Clone, Copy, Debug)]
enum Point {
    /// Once the `n`-th temporary file is made: outputs being written.
    Created(usize),
    /// At the `n`-th rename, before it: the group's bytes are on the disk, the names not.
    BeforeRename(usize),
    /// Right after the `n`-th rename: a group partly in place, its directory not yet synced.
    AfterRename(usize),
    /// At the `n`-th report: its group durable, its input removed, later ones not yet.
    Reported(usize),
}

const POINTS: &[Point] = &[
    Point::Created(1),
    Point::Created(200),
    Point::BeforeRename(1),
    Point::AfterRename(1),
    Point::AfterRename(60),
    Point::BeforeRename(150),
    Point::AfterRename(FILES),
    Point::Reported(1),
    Point::Reported(140),
    Point::Reported(FILES),
];

impl Point {
    fn parse(text: &str) -> Point {
        let (kind, n) = text.split_once(':').expect("KIND:N");
        let n = n.parse().expect("a count");
        match kind {
            "created" => Point::Created(n),
            "before-rename" => Point::BeforeRename(n),
            "after-rename" => Point::AfterRename(n),
            "reported" => Point::Reported(n),
            other => panic!("no crash point {other}"),
        }
    }

    fn text(self) -> String {
        match self {
            Point::Created(n) => format!("created:{n}"),
            Point::BeforeRename(n) => format!("before-rename:{n}"),
            Point::AfterRename(n) => format!("after-rename:{n}"),
            Point::Reported(n) => format!("reported:{n}"),
        }
    }
}

/// Kills this process at its point.
struct Killer {
    point: Point,
    created: AtomicUsize,
    renamed: AtomicUsize,
    reported: AtomicUsize,
}

fn die() -> ! {
    // SAFETY: kill(2) and getpid(2) take plain integers and touch no memory of ours. After
    // SIGKILL nothing of this process runs.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    unreachable!("killed");
}

impl Temporaries for Killer {
    fn partial_creating(&self, create: &mut dyn FnMut() -> Option<PathBuf>) {
        create();
        let n = self.created.fetch_add(1, Ordering::SeqCst) + 1;
        if matches!(self.point, Point::Created(at) if at == n) {
            die();
        }
    }

    fn partial_finishing(&self, path: &Path, finish: &mut dyn FnMut()) {
        let _ = path;
        let n = self.renamed.load(Ordering::SeqCst) + 1;
        // Temporary files of failed outputs are removed through here too; this batch has none.
        if matches!(self.point, Point::BeforeRename(at) if at == n) {
            die();
        }
        finish();
        self.renamed.store(n, Ordering::SeqCst);
        if matches!(self.point, Point::AfterRename(at) if at == n) {
            die();
        }
    }
}

impl Observer for Killer {
    fn event(&self, event: Event<'_>) {
        if let Event::Finished(_) = event {
            let n = self.reported.fetch_add(1, Ordering::SeqCst) + 1;
            if matches!(self.point, Point::Reported(at) if at == n) {
                die();
            }
        }
    }
}

fn content(i: usize) -> Vec<u8> {
    format!("file {i}\n").repeat(1 + i % 97).into_bytes()
}

fn input(root: &Path, i: usize) -> PathBuf {
    root.join(format!("in/f{i:03}.txt"))
}

fn output(root: &Path, i: usize) -> PathBuf {
    root.join(format!("out/in/f{i:03}.txt.age"))
}

fn options(root: &Path) -> Options {
    let mut options = Options::new(Direction::Seal);
    options.output_dir = Some(root.join("out"));
    options.remove_source = true;
    options
}

/// Runs the batch of `root` with `observer`; returns its reports.
fn run_batch(root: &Path, observer: &dyn Observer) -> Vec<batch::Report> {
    let text = fs::read_to_string(root.join("server.key")).unwrap();
    let recipient = x25519::Identity::from_str(text.trim()).unwrap().to_public();
    let options = options(root);
    let plan = batch::plan(&[root.join("in")], &options);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| batch::run(plan, Keys::Recipients(&[&recipient]), &options, observer))
}

/// What the dead batch left, checked: returns the indices whose output is in place.
fn check_left(root: &Path, identity: &x25519::Identity, point: Point) -> Vec<usize> {
    let mut placed = Vec::new();
    for i in 0..FILES {
        let (input, output) = (input(root, i), output(root, i));
        match fs::read(&output) {
            Ok(sealed) => {
                let opened = seal::decrypt(&[identity], &sealed);
                assert_eq!(opened.ok(), Some(content(i)), "{point:?}: {output:?} whole");
                placed.push(i);
            }
            Err(_) => assert!(
                input.exists(),
                "{point:?}: {input:?} gone without its output"
            ),
        }
    }
    placed
}

fn temporaries(root: &Path) -> usize {
    fs::read_dir(root.join("out/in")).map_or(0, |dir| {
        dir.filter(|entry| {
            let name = entry.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".seal-partial")
        })
        .count()
    })
}

/// In the child process (`SEAL_CRASH_POINT` set): runs `batch` on the test's directory with
/// a [`Killer`], which must kill the process at its point.
fn die_at_the_point_if_child(batch: fn(&Path, &dyn Observer) -> Vec<batch::Report>) {
    let Ok(point) = std::env::var(POINT) else {
        return;
    };
    let root = PathBuf::from(std::env::var(DIR).unwrap());
    let killer = Killer {
        point: Point::parse(&point),
        created: AtomicUsize::new(0),
        renamed: AtomicUsize::new(0),
        reported: AtomicUsize::new(0),
    };
    batch(&root, &killer);
    panic!("the batch ended without reaching {point}");
}

/// Runs the test `name` again as a child that kills itself at `point` in `root`.
fn killed_at(name: &str, point: Point, root: &Path) {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture"])
        .env(POINT, point.text())
        .env(DIR, root)
        .output()
        .unwrap();
    assert_eq!(
        child.status.signal(),
        Some(9),
        "{point:?}: the batch was not killed there: {}",
        String::from_utf8_lossy(&child.stdout)
    );
}

#[test]
fn a_batch_killed_at_any_step_of_its_commit_is_finished_by_the_next_run() {
    die_at_the_point_if_child(run_batch);
    for &point in POINTS {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let identity = x25519::Identity::generate();
        fs::write(
            root.join("server.key"),
            identity.to_secret_string().as_bytes(),
        )
        .unwrap();
        fs::create_dir(root.join("in")).unwrap();
        for i in 0..FILES {
            fs::write(input(root, i), content(i)).unwrap();
        }

        killed_at(
            "crash_points::a_batch_killed_at_any_step_of_its_commit_is_finished_by_the_next_run",
            point,
            root,
        );
        let placed = check_left(root, &identity, point);
        // Outputs are renamed one at a time, and reported once in place; none is in place
        // before its temporary file is made.
        let n = placed.len();
        match point {
            Point::Created(at) => assert!(n < at, "{point:?}: {n} in place"),
            Point::BeforeRename(at) => assert_eq!(n, at - 1, "{point:?}"),
            Point::AfterRename(at) => assert_eq!(n, at, "{point:?}"),
            Point::Reported(at) => assert!(n >= at, "{point:?}: {n} in place"),
        }
        let left = temporaries(root);
        let removed_before = placed.iter().filter(|&&i| !input(root, i).exists()).count();

        let removed = AtomicUsize::new(0);
        struct Counting<'a>(&'a AtomicUsize);
        impl Temporaries for Counting<'_> {}
        impl Observer for Counting<'_> {
            fn event(&self, event: Event<'_>) {
                if let Event::RemovedPartial(_) = event {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        let reports = run_batch(root, &Counting(&removed));
        assert_eq!(
            removed.load(Ordering::SeqCst),
            left,
            "{point:?}: temporaries cleared"
        );
        assert_eq!(temporaries(root), 0, "{point:?}");
        for report in &reports {
            let i: usize = report.source.file_stem().unwrap().to_str().unwrap()[1..4]
                .parse()
                .unwrap();
            match &report.outcome {
                Outcome::Done => assert!(!placed.contains(&i), "{point:?}: {i} made twice"),
                Outcome::Skipped(Skip::OutputExists) => {
                    assert!(placed.contains(&i), "{point:?}: {i}");
                    assert!(input(root, i).exists(), "{point:?}: {i} kept");
                }
                other => panic!("{point:?}: {i}: {other:?}"),
            }
        }
        // The dead run's removed inputs are not in the plan; every other one is reported.
        assert_eq!(reports.len() + removed_before, FILES, "{point:?}");
        for i in 0..FILES {
            let sealed = fs::read(output(root, i)).unwrap();
            assert_eq!(seal::decrypt(&[&identity], &sealed).unwrap(), content(i));
            if !placed.contains(&i) {
                assert!(!input(root, i).exists(), "{point:?}: {i} removed once made");
            }
        }
    }
}

/// The sealed file `i` of a rotation batch, and its record.
fn sealed(root: &Path, i: usize) -> PathBuf {
    root.join(format!("in/f{i:03}.age"))
}

fn record(root: &Path, i: usize) -> Option<seal::rotate::Record> {
    let path = seal::rotate::record_path(&sealed(root, i));
    let text = fs::read(path).ok()?;
    Some(seal::rotate::Record::parse(&text).expect("a whole record"))
}

/// Rotates the files of `root/in` from `old.key` to `new.key`'s recipient.
fn rotate_batch(root: &Path, observer: &dyn Observer) -> Vec<batch::Report> {
    let key = |name: &str| {
        let text = fs::read_to_string(root.join(name)).unwrap();
        x25519::Identity::from_str(text.trim()).unwrap()
    };
    let (old, new) = (key("old.key"), key("new.key").to_public());
    let options = Options::new(Direction::Rewrap);
    let plan = batch::plan(&[root.join("in")], &options);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let keys = Keys::Rewrap {
        identities: &[&old],
        recipients: &[&new],
        drop_bad_signatures: false,
    };
    pool.install(|| batch::run(plan, keys, &options, observer))
}

#[test]
fn a_rotation_killed_at_any_step_of_its_commit_leaves_files_old_or_new_and_is_finished_by_the_next_run(
) {
    const NAME: &str = "crash_points::a_rotation_killed_at_any_step_of_its_commit_leaves_files_old_or_new_and_is_finished_by_the_next_run";
    die_at_the_point_if_child(rotate_batch);
    for &point in POINTS {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let (old, new) = (x25519::Identity::generate(), x25519::Identity::generate());
        for (name, key) in [("old.key", &old), ("new.key", &new)] {
            fs::write(root.join(name), key.to_secret_string().as_bytes()).unwrap();
        }
        fs::create_dir(root.join("in")).unwrap();
        let mut originals = Vec::new();
        for i in 0..FILES {
            let bytes = seal::encrypt(&[&old.to_public()], &content(i)).unwrap();
            let (_, len) = seal::format::Header::parse(&bytes).unwrap();
            originals.push(bytes[..len].to_vec());
            fs::write(sealed(root, i), bytes).unwrap();
        }

        killed_at(NAME, point, root);
        // Every file is old or new, whole; a new one has its record, and so may an old one
        // (its record durable, its header not yet written: what a rerun finishes).
        let (mut rotated, mut interrupted) = (0, 0);
        for (i, original) in originals.iter().enumerate() {
            let bytes = fs::read(sealed(root, i)).unwrap();
            let by_old = seal::decrypt(&[&old], &bytes).ok();
            let by_new = seal::decrypt(&[&new], &bytes).ok();
            match (by_old, by_new, record(root, i)) {
                (Some(plain), None, record) => {
                    assert_eq!(plain, content(i), "{point:?}: {i}");
                    if let Some(record) = record {
                        assert_eq!(&record.original, original, "{point:?}: {i}");
                        interrupted += 1;
                    }
                }
                (None, Some(plain), Some(record)) => {
                    assert_eq!(plain, content(i), "{point:?}: {i}");
                    assert_eq!(&record.original, original, "{point:?}: {i}");
                    rotated += 1;
                }
                other => panic!("{point:?}: {i} neither old nor new: {other:?}"),
            }
        }
        if let Point::AfterRename(_) = point {
            assert!(
                interrupted > 0,
                "{point:?}: records go in place before headers"
            );
        }

        let reports = rotate_batch(root, &());
        let records = reports
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Skipped(Skip::RotationRecord)))
            .count();
        assert_eq!(reports.len() - records, FILES, "{point:?}");
        let done = reports
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Done))
            .count();
        let skipped = reports
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Skipped(Skip::NotOldKey)))
            .count();
        assert_eq!((done, skipped), (FILES - rotated, rotated), "{point:?}");
        for (i, original) in originals.iter().enumerate() {
            let bytes = fs::read(sealed(root, i)).unwrap();
            assert!(seal::decrypt(&[&old], &bytes).is_err(), "{point:?}: {i}");
            assert_eq!(seal::decrypt(&[&new], &bytes).unwrap(), content(i));
            assert_eq!(&record(root, i).unwrap().original, original);
        }
        let left: Vec<_> = fs::read_dir(root.join("in"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| !name.ends_with(".age") && !name.ends_with(".age.rotated"))
            .collect();
        assert!(left.is_empty(), "{point:?}: {left:?}");
    }
}
