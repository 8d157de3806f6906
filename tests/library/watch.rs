//! The inbox watcher as a Rust MFT server embeds it: a listener called per settled upload, a
//! control that stops it and hands it a new sender policy.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use seal::batch::Outcome;
use seal::watch::{self, Control, Listener, Record};
use seal::x25519;

/// One record as heard: the upload's path, whether it was opened, the plaintext's digest,
/// where it was quarantined.
type Heard1 = (PathBuf, bool, Option<[u8; 32]>, Option<PathBuf>);

/// What the listener heard.
#[derive(Default)]
struct Heard(Mutex<Vec<Heard1>>);

impl seal::batch::Temporaries for Heard {}

impl Listener for Heard {
    fn record(&self, record: &Record<'_>) {
        let report = record.report;
        let done = matches!(report.outcome, Outcome::Done);
        let quarantined = record.quarantined.map(Path::to_path_buf);
        let heard = (report.source.clone(), done, report.sha256, quarantined);
        self.0.lock().unwrap().push(heard);
    }
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "waited 60 s for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_embedded_watcher_reports_each_upload_once_and_stops_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let (inbox, out, quarantine) = (
        dir.path().join("in"),
        dir.path().join("out"),
        dir.path().join("q"),
    );
    std::fs::create_dir_all(inbox.join("team")).unwrap();
    let server = x25519::Identity::generate();
    let sealed = seal::encrypt(&[&server.to_public()], b"quarterly figures").unwrap();
    let mut options = watch::Options::new(inbox.clone(), out.clone(), dir.path().join("state"));
    options.quarantine = Some(quarantine.clone());
    let (control, heard) = (Control::new(), Heard::default());
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| watch::watch(&options, &[&server], &heard, &control));
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(inbox.join("team/q3.csv.age"), &sealed).unwrap();
        std::fs::write(inbox.join("broken.age"), &sealed[..sealed.len() - 1]).unwrap();
        wait_until("two records", || heard.0.lock().unwrap().len() == 2);
        control.stop();
        watcher.join().unwrap().unwrap();
    });
    assert_eq!(
        std::fs::read(out.join("team/q3.csv")).unwrap(),
        b"quarterly figures"
    );
    let heard = heard.0.into_inner().unwrap();
    let opened = heard
        .iter()
        .find(|h| h.0.ends_with("team/q3.csv.age"))
        .unwrap();
    assert!(opened.1);
    let digest: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(b"quarterly figures").into()
    };
    assert_eq!(opened.2, Some(digest));
    let broken = heard.iter().find(|h| h.0.ends_with("broken.age")).unwrap();
    assert!(!broken.1);
    assert_eq!(
        broken.3.as_deref(),
        Some(quarantine.join("broken.age").as_path())
    );
    assert!(quarantine.join("broken.age.json").exists());
}
