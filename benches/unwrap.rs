//! The per-file cost of each key type: unwrapping the file key from a one-stanza header.
//!
//! In batch mode every file has its own file key, wrapped for the server's key, so this is
//! the floor under the per-file time: X25519 (one agreement), ssh-ed25519 (two: the agreement
//! and the tweak), RSA-2048 and RSA-4096 (one OAEP private-key operation, on the build's RSA
//! backend: `rsa` 0.10 by default, AWS-LC with `--features aws-lc`). Also the sender's cost,
//! wrapping a file key for each type: for X25519 once a recipient's table of multiples is built
//! (from its third file on, as in a batch) and for its first file.
//!
//! Run: `cargo bench --bench unwrap -- --warm-up-time 1 --measurement-time 3`, and again with
//! `--features aws-lc`. The RSA keys are the committed fixtures in `testdata/keys`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

use seal::format::Header;
use seal::recipient::FileKey;
use seal::{keys, unwrap_file_key, Identity, Recipient};

fn fixture(name: &str) -> String {
    let path = format!("{}/testdata/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A key type: its label, an identity and its recipient.
type KeyType = (&'static str, Box<dyn Identity>, Box<dyn Recipient>);

/// Each key type measured.
fn key_types() -> Vec<KeyType> {
    let x25519 = seal::x25519::Identity::generate();
    let x25519_public = Box::new(x25519.to_public());
    let mut out: Vec<KeyType> = vec![("x25519", Box::new(x25519), x25519_public)];
    for (label, name) in [
        ("ssh-ed25519", "ed25519"),
        ("ssh-rsa-2048", "rsa2048"),
        ("ssh-rsa-4096", "rsa4096"),
    ] {
        let id = keys::parse_identity_file(&fixture(name))
            .expect("fixture key")
            .remove(0);
        let recipient = keys::parse_recipient(fixture(&format!("{name}.pub")).trim())
            .expect("fixture public key");
        out.push((label, id, recipient));
    }
    out
}

fn bench_unwrap(c: &mut Criterion) {
    let backend = seal::__private::primitives::rsa::BACKEND;
    let mut group = c.benchmark_group(format!("unwrap ({backend})"));
    for (label, identity, recipient) in key_types() {
        let file_key = FileKey::generate();
        let stanzas = recipient.wrap(&file_key).unwrap();
        let mac_key = seal::__private::primitives::hkdf(&[], file_key.expose_secret(), b"header");
        let header = Header::new(stanzas, |data| {
            seal::__private::primitives::hmac(mac_key.as_ref(), data)
        });
        let identities = [identity.as_ref()];
        unwrap_file_key(&header, &identities).expect("the identity opens its own stanza");
        group.bench_function(label, |b| {
            b.iter(|| unwrap_file_key(black_box(&header), &identities).expect("unwrap"))
        });
    }
    group.finish();

    let mut group = c.benchmark_group(format!("wrap ({backend})"));
    for (label, _, recipient) in key_types() {
        let file_key = FileKey::generate();
        group.bench_function(label, |b| b.iter(|| recipient.wrap(black_box(&file_key))));
    }
    // A recipient's first file: X25519 by the ladder, before its table of multiples is built
    // (a recipient used many times, as above, uses the table from its third file).
    let first = seal::x25519::Identity::generate().to_public();
    let file_key = FileKey::generate();
    group.bench_function("x25519, first file", |b| {
        b.iter(|| first.clone().wrap(black_box(&file_key)))
    });
    group.finish();
}

criterion_group!(benches, bench_unwrap);
criterion_main!(benches);
