//! The per-file cost of a post-quantum key next to an X25519 key: unwrapping the file key is
//! the floor of every file in batch mode (one KEM operation per file, whatever its size).
//!
//! Group `unwrap_pq`, for each key type (`x25519`, `mlkem768x25519`):
//! - `unwrap_file_key`: from a parsed one-stanza header to the file key, header MAC checked
//!   (X25519: one agreement, HKDF, AEAD; post-quantum: X-Wing decapsulation, that is ML-KEM-768
//!   decapsulation and one X25519 agreement, then the HPKE key schedule and AEAD);
//! - `open-empty`: a whole empty file in memory (parse, unwrap, MAC, the last chunk);
//! - `seal-empty`: sealing an empty file (the sender's side: encapsulation or agreement);
//! - `parse-identity` (post-quantum only): reading the secret key, which expands its seed into
//!   the ML-KEM and X25519 keys once per process, not per file.
//!
//! Run: `cargo bench --bench unwrap_pq -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use seal::{pq, x25519, Identity, Recipient, SealedSlice};

fn bench_key_type(
    c: &mut Criterion,
    name: &str,
    identity: &dyn Identity,
    recipient: &dyn Recipient,
) {
    let sealed = seal::encrypt(&[recipient], b"").expect("seal empty");
    let slice = SealedSlice::new(&sealed).expect("parse");
    assert_eq!(slice.header().stanzas.len(), 1, "one stanza");
    assert!(seal::decrypt(&[identity], &sealed)
        .expect("open")
        .is_empty());

    let mut group = c.benchmark_group("unwrap_pq");
    group.sample_size(30);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("{name}/unwrap_file_key"), |b| {
        b.iter(|| seal::unwrap_file_key(black_box(slice.header()), &[identity]).unwrap())
    });
    group.bench_function(format!("{name}/open-empty"), |b| {
        b.iter(|| seal::decrypt(&[identity], black_box(&sealed)).unwrap())
    });
    group.bench_function(format!("{name}/seal-empty"), |b| {
        b.iter(|| seal::encrypt(&[recipient], black_box(b"")).unwrap())
    });
    group.finish();
}

fn bench_unwrap_pq(c: &mut Criterion) {
    let classic = x25519::Identity::generate();
    bench_key_type(c, "x25519", &classic, &classic.to_public());

    let post_quantum = pq::Identity::generate();
    bench_key_type(
        c,
        "mlkem768x25519",
        &post_quantum,
        &post_quantum.to_public(),
    );

    let secret = post_quantum.to_secret_string();
    let mut group = c.benchmark_group("unwrap_pq");
    group.sample_size(30);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.bench_function("mlkem768x25519/parse-identity", |b| {
        b.iter(|| black_box(secret.as_str()).parse::<pq::Identity>().unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_unwrap_pq);
criterion_main!(benches);
