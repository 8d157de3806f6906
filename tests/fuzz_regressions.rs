//! Replays, through the fuzz targets' own checks (`fuzz/checks.rs`), every input kept under
//! `testdata/fuzz-regressions/TARGET/` (inputs that once broke a target), and every C2SP
//! vector, which seed the fuzz corpora. Runs without libFuzzer, on the stable toolchain.

use std::path::Path;

#[path = "../fuzz/checks.rs"]
mod checks;

type Check = fn(&[u8]);

const TARGETS: &[(&str, Check)] = &[
    ("header", checks::header),
    ("armor", checks::armor),
    ("keys", checks::keys),
    ("signers", checks::signers),
    ("decrypt", checks::decrypt),
];

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().unwrap() != ".gitkeep")
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn every_kept_crash_input_now_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fuzz-regressions");
    let mut replayed = 0;
    for (target, check) in TARGETS {
        for (name, input) in files(&root.join(target)) {
            println!("{target}: {name}");
            check(&input);
            replayed += 1;
        }
    }
    println!("{replayed} kept inputs replayed");
}

#[test]
fn every_vector_passes_every_target() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/age-vectors");
    let mut checked = 0;
    for (name, raw) in files(&dir) {
        if name.ends_with("LICENSE") {
            continue;
        }
        let split = raw.windows(2).position(|w| w == b"\n\n").unwrap();
        let head = std::str::from_utf8(&raw[..split]).unwrap();
        let mut body = raw[split + 2..].to_vec();
        if head.contains("compressed: zlib") {
            body = miniz_oxide::inflate::decompress_to_vec_zlib(&body).unwrap();
        }
        for (_, check) in TARGETS {
            check(&body);
        }
        let identities: Vec<&str> = head
            .lines()
            .filter_map(|l| l.strip_prefix("identity: "))
            .collect();
        checks::keys(identities.join("\n").as_bytes());
        checked += 1;
    }
    assert!(checked >= 71, "only {checked} vectors");
}
