//! Memory: the work factor of a passphrase (scrypt) stanza is the uploader's choice, and each
//! derivation takes 1 KiB times 2^factor. However many such files a batch opens at once, and
//! on however many threads, their derivations share one budget: the peak is one derivation's
//! worth plus a fixed margin, and factors above the limit are refused before any work.

use std::process::ExitStatus;
use std::time::Instant;

use crate::common::*;

/// 2^18: 256 MiB a derivation, age's default, about a second.
const FACTOR: u32 = 18;
const DERIVATION: u64 = 1024 << FACTOR;

/// Runs `cmd` to its end; returns its exit status, standard error, and peak resident memory
/// in bytes: the highest `VmHWM` of the child's own address space, read every 2 ms while it
/// runs. (`wait4`'s `ru_maxrss` would also count the test process, whose memory the child
/// shares until it execs.) A child that ends within the first read reports what it reached.
fn run_with_peak(cmd: Cmd) -> (ExitStatus, String, u64) {
    let mut child = cmd.spawn();
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).map(|_| text)
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        let hwm = std::fs::read_to_string(&status_file).ok().and_then(|text| {
            let line = text.lines().find(|line| line.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        });
        // In KiB.
        peak = peak.max(hwm.unwrap_or(0) * 1024);
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let stderr = reader.join().unwrap().expect("stderr is UTF-8");
    (status, stderr, peak)
}

#[test]
fn a_batch_of_scrypt_files_costs_one_derivation_of_memory_not_one_per_thread() {
    let dir = Dir::new();
    dir.write("pass", "correct horse battery staple\n");
    dir.write("plain", data(190, 15));
    dir.line(&format!(
        "seal plain --passphrase-file pass --work-factor {FACTOR} -o one.age"
    ))
    .run()
    .ok();
    dir.mkdir("in");
    for name in ["a", "b", "c", "d"] {
        dir.write(format!("in/{name}.age"), dir.read("one.age"));
    }
    let started = Instant::now();
    let (status, stderr, peak) =
        run_with_peak(dir.line("unseal in --passphrase-file pass -o out --threads 4 --quiet"));
    assert!(status.success(), "unseal: {status}; stderr:\n{stderr}");
    for name in ["a", "b", "c", "d"] {
        assert_eq!(dir.read(format!("out/in/{name}")), data(190, 15));
    }
    let limit = DERIVATION * 3 / 2 + (100 << 20);
    eprintln!(
        "4 files of 2^{FACTOR}, 4 threads: peak {} MiB (limit {} MiB), {:.1} s",
        peak >> 20,
        limit >> 20,
        started.elapsed().as_secs_f64()
    );
    assert!(
        peak < limit,
        "peak {} MiB: more than one derivation of {} MiB at a time",
        peak >> 20,
        DERIVATION >> 20
    );
}

#[test]
fn a_work_factor_above_the_limit_is_refused_before_any_work() {
    let dir = Dir::new();
    dir.write("pass", "p\n");
    dir.write("plain", "x");
    dir.line("seal plain --passphrase-file pass --work-factor 2 -o small.age")
        .run()
        .ok();
    let sealed = dir.read("small.age");
    let text = String::from_utf8_lossy(&sealed).into_owned();
    let line_end = text.find(" 2\n").expect("the scrypt stanza's work factor");
    for factor in ["23", "40", "63"] {
        let mut bomb = sealed[..line_end + 1].to_vec();
        bomb.extend_from_slice(factor.as_bytes());
        bomb.extend_from_slice(&sealed[line_end + 2..]);
        dir.write("bomb.age", &bomb);
        let started = Instant::now();
        let (status, stderr, peak) =
            run_with_peak(dir.line("unseal bomb.age --passphrase-file pass -o out"));
        assert_eq!(status.code(), Some(4), "2^{factor}: {stderr}");
        assert!(
            stderr.contains("above the limit of 2^22"),
            "2^{factor}: {stderr}"
        );
        assert!(started.elapsed().as_secs() < 10, "2^{factor} did work");
        assert!(peak < 100 << 20, "2^{factor}: peak {} MiB", peak >> 20);
        assert!(!dir.exists("out"));
    }
}
