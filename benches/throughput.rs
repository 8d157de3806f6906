//! Throughput of sealing and unsealing one message, against the `age` crate as the baseline.
//!
//! Groups:
//! - `seal`, `unseal`: per size (64 KiB, 1 MiB, 64 MiB, plus `SEAL_BENCH_LARGE_MIB` MiB if
//!   set), this crate in memory on a rayon pool of 1, 2, 4, ... threads up to
//!   `available_parallelism()` (`mem-Nt`), this crate's sequential streaming path (`stream`),
//!   and the `age` crate (`age-crate`). Every `unseal` bench opens the same sealed input,
//!   made by this crate.
//! - `aead`: the ceiling: ChaCha20-Poly1305 alone over 64 KiB chunks, out of place into a
//!   warm output buffer, on the same pools (no header, no STREAM bookkeeping, no I/O). The
//!   whole-process `unseal > /dev/null` rate is compared against its 2-thread figure.
//! - `aead-parts` (default build): ChaCha20 alone and Poly1305 alone, one core, one chunk.
//! - `unwrap`: the per-file floor in batch mode: unwrapping the file key from a one-stanza
//!   X25519 header, and opening a whole empty file (parse, unwrap, MAC, last chunk), here and
//!   with the `age` crate.
//!
//! Run: `cargo bench --bench throughput` (add `-- seal/` or `-- unwrap` to filter;
//! `SEAL_BENCH_LARGE_MIB=1024 cargo bench --bench throughput -- 1024MiB` for one large size).
//! Quick check that every bench runs once: `cargo bench --bench throughput -- --test`.

use std::hint::black_box;
use std::io::{Read, Write};
use std::iter;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use rand_core::{OsRng, RngCore};
use rayon::{ThreadPool, ThreadPoolBuilder};

use rayon::prelude::*;
use seal::__private::primitives::{Aead, ChunkAead, TAG_SIZE};
use seal::{x25519, Decryptor, Encryptor, Identity, Recipient, SealedSlice};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Sizes from 1 MiB up get flat sampling and a fixed, short measurement budget.
const LARGE_FROM: usize = MIB;

/// The message sizes, in bytes: the fixed three plus `SEAL_BENCH_LARGE_MIB` if set.
fn sizes() -> Vec<usize> {
    let mut sizes = vec![64 * KIB, MIB, 64 * MIB];
    if let Ok(value) = std::env::var("SEAL_BENCH_LARGE_MIB") {
        match value.trim().parse::<usize>() {
            Ok(mib) if mib > 0 => {
                if !sizes.contains(&(mib * MIB)) {
                    sizes.push(mib * MIB);
                }
            }
            _ => eprintln!(
                "throughput: ignoring SEAL_BENCH_LARGE_MIB={value:?}: not a positive number of MiB"
            ),
        }
    }
    sizes
}

/// Every size is a whole number of MiB from 1 MiB up, of KiB below.
fn size_label(bytes: usize) -> String {
    if bytes >= MIB {
        format!("{}MiB", bytes / MIB)
    } else {
        format!("{}KiB", bytes / KIB)
    }
}

/// 1, then every power of two up to the core count, then the core count itself.
fn thread_counts() -> Vec<usize> {
    let max = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts: Vec<usize> = iter::successors(Some(1usize), |n| n.checked_mul(2))
        .take_while(|&n| n <= max)
        .collect();
    if counts.last() != Some(&max) {
        counts.push(max);
    }
    counts
}

/// One rayon pool per thread count, built once, outside the timed code.
fn pools() -> Vec<(usize, ThreadPool)> {
    thread_counts()
        .into_iter()
        .map(|n| {
            let pool = ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(move |i| format!("bench-{n}t-{i}"))
                .build()
                .expect("build rayon pool");
            (n, pool)
        })
        .collect()
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// The same key pair, as this crate's and as the `age` crate's types.
struct Keys {
    identity: x25519::Identity,
    recipient: x25519::Recipient,
    age_identity: age::x25519::Identity,
    age_recipient: age::x25519::Recipient,
}

impl Keys {
    fn new() -> Keys {
        let identity = x25519::Identity::generate();
        let recipient = identity.to_public();
        let age_identity: age::x25519::Identity = identity
            .to_secret_string()
            .parse()
            .expect("age parses our identity");
        let age_recipient = age_identity.to_public();
        assert_eq!(
            age_recipient.to_string(),
            recipient.to_string(),
            "same key pair in both crates"
        );
        Keys {
            identity,
            recipient,
            age_identity,
            age_recipient,
        }
    }

    fn recipients(&self) -> [&dyn Recipient; 1] {
        [&self.recipient]
    }

    fn identities(&self) -> [&dyn Identity; 1] {
        [&self.identity]
    }
}

// The operations measured, each also used once untimed to check the others.

fn seal_mem(keys: &Keys, plaintext: &[u8]) -> Vec<u8> {
    Encryptor::new(&keys.recipients())
        .expect("encryptor")
        .seal_slice(plaintext)
}

fn seal_stream(keys: &Keys, plaintext: &[u8]) -> Vec<u8> {
    let encryptor = Encryptor::new(&keys.recipients()).expect("encryptor");
    let mut out = Vec::with_capacity(encryptor.sealed_len(plaintext.len() as u64) as usize);
    let mut writer = encryptor.stream(&mut out).expect("write header");
    writer.write_all(plaintext).expect("seal");
    writer.finish().expect("finish");
    out
}

fn seal_age(keys: &Keys, plaintext: &[u8]) -> Vec<u8> {
    let encryptor =
        age::Encryptor::with_recipients(iter::once(&keys.age_recipient as &dyn age::Recipient))
            .expect("age encryptor");
    // Room for the header and the 16-byte tag of every 64 KiB chunk, as the others get.
    let mut out = Vec::with_capacity(plaintext.len() + plaintext.len() / 4096 + 1024);
    let mut writer = encryptor.wrap_output(&mut out).expect("age header");
    writer.write_all(plaintext).expect("age seal");
    writer.finish().expect("age finish");
    out
}

fn unseal_mem(keys: &Keys, sealed: &[u8]) -> Vec<u8> {
    SealedSlice::new(sealed)
        .expect("parse")
        .unwrap(&keys.identities())
        .expect("unwrap")
        .decrypt_to_vec()
        .expect("decrypt")
}

fn unseal_stream(keys: &Keys, sealed: &[u8], plaintext_len: usize) -> Vec<u8> {
    let mut reader = Decryptor::new(sealed)
        .expect("parse")
        .unwrap(&keys.identities())
        .expect("unwrap");
    let mut out = Vec::with_capacity(plaintext_len);
    reader.read_to_end(&mut out).expect("decrypt");
    out
}

fn unseal_age(keys: &Keys, sealed: &[u8], plaintext_len: usize) -> Vec<u8> {
    // `new_buffered` is the age crate's fast path for `BufRead` inputs such as slices;
    // `Decryptor::new` reads the header byte by byte.
    let decryptor = age::Decryptor::new_buffered(sealed).expect("age parse");
    let mut reader = decryptor
        .decrypt(iter::once(&keys.age_identity as &dyn age::Identity))
        .expect("age unwrap");
    let mut out = Vec::with_capacity(plaintext_len);
    reader.read_to_end(&mut out).expect("age decrypt");
    out
}

/// Short, bounded runs: 10 samples; large sizes sampled flat with a fixed budget.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>, size: usize) {
    group.throughput(Throughput::Bytes(size as u64));
    group.sample_size(10);
    if size >= LARGE_FROM {
        group.sampling_mode(SamplingMode::Flat);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(if size >= 64 * MIB { 4 } else { 2 }));
    } else {
        group.sampling_mode(SamplingMode::Auto);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(1));
    }
}

fn bench_seal(c: &mut Criterion) {
    let keys = Keys::new();
    let pools = pools();
    let mut group = c.benchmark_group("seal");
    for size in sizes() {
        let label = size_label(size);
        let plaintext = random_bytes(size);

        // Untimed: every way of sealing opens to the same plaintext.
        for sealed in [
            seal_mem(&keys, &plaintext),
            seal_stream(&keys, &plaintext),
            seal_age(&keys, &plaintext),
        ] {
            assert_eq!(unseal_mem(&keys, &sealed), plaintext, "seal round trip");
        }

        configure(&mut group, size);
        for (threads, pool) in &pools {
            group.bench_function(BenchmarkId::new(format!("mem-{threads}t"), &label), |b| {
                b.iter(|| pool.install(|| seal_mem(&keys, black_box(&plaintext))))
            });
        }
        group.bench_function(BenchmarkId::new("stream", &label), |b| {
            b.iter(|| seal_stream(&keys, black_box(&plaintext)))
        });
        group.bench_function(BenchmarkId::new("age-crate", &label), |b| {
            b.iter(|| seal_age(&keys, black_box(&plaintext)))
        });
    }
    group.finish();
}

fn bench_unseal(c: &mut Criterion) {
    let keys = Keys::new();
    let pools = pools();
    let mut group = c.benchmark_group("unseal");
    for size in sizes() {
        let label = size_label(size);
        let plaintext = random_bytes(size);
        let sealed = seal_mem(&keys, &plaintext);

        // Untimed: all three readers agree, and this crate opens the age crate's output.
        assert_eq!(unseal_mem(&keys, &sealed), plaintext);
        assert_eq!(unseal_stream(&keys, &sealed, size), plaintext);
        assert_eq!(unseal_age(&keys, &sealed, size), plaintext);
        drop(plaintext);

        configure(&mut group, size);
        for (threads, pool) in &pools {
            group.bench_function(BenchmarkId::new(format!("mem-{threads}t"), &label), |b| {
                b.iter(|| pool.install(|| unseal_mem(&keys, black_box(&sealed))))
            });
        }
        group.bench_function(BenchmarkId::new("stream", &label), |b| {
            b.iter(|| unseal_stream(&keys, black_box(&sealed), size))
        });
        group.bench_function(BenchmarkId::new("age-crate", &label), |b| {
            b.iter(|| unseal_age(&keys, black_box(&sealed), size))
        });
    }
    group.finish();
}

fn bench_aead(c: &mut Criterion) {
    const CHUNK: usize = 64 * KIB;
    let aead = Aead::new(&[0x5a; 32]);
    let nonce = |i: usize| {
        let mut n = [0u8; 12];
        n[3..11].copy_from_slice(&(i as u64).to_be_bytes());
        n
    };
    let pools = pools();
    let mut group = c.benchmark_group("aead");
    for size in sizes().into_iter().filter(|&s| s >= MIB) {
        let label = size_label(size);
        let plaintext = random_bytes(size);
        let mut sealed = Vec::with_capacity(size + size / CHUNK * TAG_SIZE);
        for (i, chunk) in plaintext.chunks(CHUNK).enumerate() {
            let mut ct = vec![0u8; chunk.len()];
            let tag = aead.seal(&nonce(i), chunk, &mut ct);
            sealed.extend_from_slice(&ct);
            sealed.extend_from_slice(&tag);
        }
        let mut out = vec![0u8; size];
        let open_all = |out: &mut [u8]| {
            sealed
                .par_chunks(CHUNK + TAG_SIZE)
                .zip(out.par_chunks_mut(CHUNK))
                .enumerate()
                .all(|(i, (ct, pt))| {
                    let (body, tag) = ct.split_at(ct.len() - TAG_SIZE);
                    aead.open(&nonce(i), body, tag, pt)
                })
        };
        assert!(open_all(&mut out) && out == plaintext, "AEAD round trip");

        configure(&mut group, size);
        for (threads, pool) in &pools {
            group.bench_function(BenchmarkId::new(format!("open-{threads}t"), &label), |b| {
                b.iter(|| pool.install(|| assert!(open_all(black_box(&mut out)))))
            });
        }
    }
    group.finish();
}

/// The two halves of the default build's AEAD on one core and one 64 KiB chunk: what its
/// single-core speed is made of, whichever backends the crates pick on this CPU.
#[cfg(not(feature = "aws-lc"))]
fn bench_aead_parts(c: &mut Criterion) {
    use chacha20::cipher::{KeyIvInit, StreamCipher};
    use poly1305::universal_hash::{KeyInit, UniversalHash};

    const CHUNK: usize = 64 * KIB;
    let key = [0x5a; 32];
    let mut buf = random_bytes(CHUNK);
    let mut group = c.benchmark_group("aead-parts");
    group.throughput(Throughput::Bytes(CHUNK as u64));
    group.bench_function("chacha20-1t/64KiB", |b| {
        b.iter(|| chacha20::ChaCha20::new(&key.into(), &[0; 12].into()).apply_keystream(&mut buf))
    });
    group.bench_function("poly1305-1t/64KiB", |b| {
        b.iter(|| {
            let mut mac = poly1305::Poly1305::new(&key.into());
            mac.update_padded(black_box(&buf));
            mac.finalize()
        })
    });
    group.finish();
}

#[cfg(feature = "aws-lc")]
fn bench_aead_parts(_: &mut Criterion) {}

fn bench_unwrap(c: &mut Criterion) {
    let keys = Keys::new();
    let sealed = seal::encrypt(&keys.recipients(), b"").expect("seal empty");
    let slice = SealedSlice::new(&sealed).expect("parse");
    assert_eq!(slice.header().stanzas.len(), 1, "one X25519 stanza");
    assert!(unseal_mem(&keys, &sealed).is_empty());
    assert!(unseal_age(&keys, &sealed, 0).is_empty());

    let mut group = c.benchmark_group("unwrap");
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(1));

    // The key unwrap alone: X25519, HKDF, the stanza AEAD and the header MAC.
    group.bench_function("unwrap_file_key", |b| {
        b.iter(|| seal::unwrap_file_key(black_box(slice.header()), &keys.identities()).unwrap())
    });
    // A whole empty file: header parse, unwrap, then the (only) last chunk.
    group.bench_function("open-empty/mem", |b| {
        b.iter(|| unseal_mem(&keys, black_box(&sealed)))
    });
    group.bench_function("open-empty/age-crate", |b| {
        b.iter(|| unseal_age(&keys, black_box(&sealed), 0))
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_seal,
    bench_unseal,
    bench_aead,
    bench_aead_parts,
    bench_unwrap
);
criterion_main!(benches);
