//! The C2SP age test vectors (testdata/age-vectors, copied from ../shared/conformance), run
//! through the library's sequential and parallel decryptors, which must agree with each other
//! and with the vector's expected outcome.
//!
//! Every vector runs, none is skipped: armored vectors go through the same calls as binary ones
//! (both decryptors detect armor), passphrase vectors open with `scrypt` identities, and hybrid
//! vectors with `AGE-SECRET-KEY-PQ-1` identities.

use std::path::Path;

use seal::{DecryptError, Decryptor, Identity};
use sha2::{Digest, Sha256};

/// The suite's standard X25519 test identity, for vectors that name none.
const DEFAULT_IDENTITY: &str =
    "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";

struct Vector {
    name: String,
    expect: String,
    payload: Option<Vec<u8>>,
    identities: Vec<String>,
    passphrases: Vec<String>,
    armored: bool,
    file_key: String,
    file: Vec<u8>,
}

fn load(path: &Path) -> Vector {
    let raw = std::fs::read(path).unwrap();
    let split = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("vector header ends with an empty line");
    let (head, body) = (
        std::str::from_utf8(&raw[..split]).unwrap(),
        &raw[split + 2..],
    );
    let mut v = Vector {
        name: path.file_name().unwrap().to_str().unwrap().to_string(),
        expect: String::new(),
        payload: None,
        identities: Vec::new(),
        passphrases: Vec::new(),
        armored: false,
        file_key: String::new(),
        file: body.to_vec(),
    };
    for line in head.lines() {
        let (key, value) = line.split_once(": ").expect("key: value");
        match key {
            "expect" => v.expect = value.to_string(),
            "payload" => v.payload = Some(hex(value)),
            "identity" => v.identities.push(value.to_string()),
            "file key" => v.file_key = value.to_string(),
            "passphrase" => v.passphrases.push(value.to_string()),
            "armored" => v.armored = value == "yes",
            "compressed" => {
                assert_eq!(value, "zlib");
                v.file = miniz_oxide::inflate::decompress_to_vec_zlib(body).unwrap();
            }
            _ => {}
        }
    }
    v
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors() -> Vec<Vector> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/age-vectors");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "LICENSE")
        .collect();
    paths.sort();
    assert!(paths.len() >= 71, "vectors missing from {}", dir.display());
    paths.iter().map(|p| load(p)).collect()
}

/// The outcome classes of the vector suite.
fn class(result: &Result<(), DecryptError>) -> &'static str {
    match result {
        Ok(()) => "success",
        Err(DecryptError::InvalidArmor(_)) => "armor failure",
        Err(DecryptError::NoMatch { .. }) => "no match",
        Err(DecryptError::HeaderMac) => "HMAC failure",
        Err(
            DecryptError::NotAgeFile
            | DecryptError::UnsupportedVersion(_)
            | DecryptError::InvalidHeader(_),
        ) => "header failure",
        Err(
            DecryptError::PayloadCorrupt { .. }
            | DecryptError::Truncated
            | DecryptError::TrailingData,
        ) => "payload failure",
        Err(DecryptError::Io(e)) => panic!("I/O error on an in-memory vector: {e}"),
        Err(other) => panic!("an outcome this test does not know: {other:?}"),
    }
}

/// Sequential: returns the outcome and every byte released before it.
fn open_sequential(ids: &[&dyn Identity], file: &[u8]) -> (Result<(), DecryptError>, Vec<u8>) {
    let mut released = Vec::new();
    let result = (|| {
        let mut reader = Decryptor::new(file)?.unwrap(ids)?;
        while let Some(chunk) = reader.next_chunk()? {
            released.extend_from_slice(chunk);
        }
        Ok(())
    })();
    (result, released)
}

#[test]
fn every_vector_gives_its_expected_outcome_on_both_paths() {
    let mut passed = 0;
    let mut failures = Vec::new();
    let mut armored = 0;
    let mut passphrase = 0;
    let all = vectors();
    for v in &all {
        let ids = identities(v);
        let ids: Vec<&dyn Identity> = ids.iter().map(|i| i.as_ref()).collect();
        armored += usize::from(v.armored);
        passphrase += usize::from(!v.passphrases.is_empty());

        let (sequential, released) = open_sequential(&ids, &v.file);
        let parallel = seal::decrypt(&ids, &v.file);
        let parallel_class = class(&parallel.as_ref().map(|_| ()).map_err(clone_kind));
        let mut problems = Vec::new();
        if !same_class(&v.file, class(&sequential), &v.expect) {
            problems.push(format!("sequential gave {:?}", sequential.as_ref().err()));
        }
        if !same_class(&v.file, parallel_class, &v.expect) {
            problems.push(format!("parallel gave {:?}", parallel.as_ref().err()));
        }
        if let Some(payload) = &v.payload {
            // What a decryptor may release: for a failing file, the chunks that authenticate
            // before the failure. We may release less (the parallel path releases nothing).
            let allowed = match &parallel {
                Ok(plain) => plain.clone(),
                Err(_) => authenticated_prefix(v),
            };
            if Sha256::digest(&allowed).as_slice() != payload.as_slice() {
                problems.push("plaintext does not match the payload hash".into());
            }
            if !allowed.starts_with(&released) {
                problems.push(format!(
                    "sequential released {} bytes beyond the authenticated prefix",
                    released.len()
                ));
            }
        } else if !released.is_empty() {
            problems.push("released plaintext on a vector without a payload".into());
        }
        if problems.is_empty() {
            passed += 1;
        } else {
            failures.push(format!(
                "{} (expect {}): {}",
                v.name,
                v.expect,
                problems.join("; ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "failing vectors:\n{}",
        failures.join("\n")
    );
    assert_eq!(passed, all.len(), "every vector passes");
    assert!(all.len() >= 71, "only {} vectors found", all.len());
    assert!(
        armored >= 16 && passphrase >= 12,
        "{armored} armored, {passphrase} scrypt"
    );
    println!(
        "{passed} vectors passed on both paths ({armored} armored, {passphrase} with a passphrase)"
    );
}

/// The vector's identities: its X25519 keys and a `scrypt` identity per passphrase, or the
/// suite's standard identity when it names neither.
fn identities(v: &Vector) -> Vec<Box<dyn Identity>> {
    let mut ids = Vec::new();
    if !v.identities.is_empty() {
        let text = v.identities.join("\n");
        ids = seal::keys::parse_identity_file(&text).expect("X25519 identities parse");
    }
    for p in &v.passphrases {
        let passphrase = zeroize::Zeroizing::new(p.clone());
        ids.push(Box::new(seal::scrypt::Identity::new(passphrase)) as Box<dyn Identity>);
    }
    if ids.is_empty() {
        ids = seal::keys::parse_identity_file(DEFAULT_IDENTITY).unwrap();
    }
    ids
}

/// Whether an outcome is the one expected. One allowance: text before the begin line means the
/// input is not recognized as armor at all (as with `age -d`), so "armor failure" there shows
/// up as "not an age file", which is still a refusal before any key is tried.
fn same_class(file: &[u8], got: &str, expect: &str) -> bool {
    got == expect
        || (expect == "armor failure"
            && got == "header failure"
            && !seal::armor::is_armored(file)
            && matches!(
                seal::format::Header::parse(file),
                Err(DecryptError::NotAgeFile)
            ))
}

/// The plaintext of the chunks that authenticate from the start of the payload, computed
/// chunk by chunk from the vector's file key with the reference AEAD crate (the STREAM of
/// age's spec, written out here rather than taken from the crate under test): each full chunk
/// as a middle chunk or else as the last one, a short chunk only as the last one.
fn authenticated_prefix(v: &Vector) -> Vec<u8> {
    use chacha20poly1305_ref::aead::{Aead, KeyInit};
    use chacha20poly1305_ref::ChaCha20Poly1305;
    use seal::stream::{ENCRYPTED_CHUNK_SIZE, NONCE_SIZE};
    let file = match v.armored {
        true => seal::armor::decode(&v.file).unwrap(),
        false => v.file.clone(),
    };
    let (_, header_len) = seal::format::Header::parse(&file).unwrap();
    let payload = &file[header_len..];
    // The payload key: HKDF-SHA256(file key, salt = payload nonce, info = "payload").
    let mut key = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(&payload[..NONCE_SIZE]), &hex(&v.file_key))
        .expand(b"payload", &mut key)
        .unwrap();
    let cipher = ChaCha20Poly1305::new(&key.into());
    // The chunk nonce: the 11-byte big-endian chunk index, then 1 on the last chunk.
    let open = |i: usize, last: bool, chunk: &[u8]| {
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&(i as u64).to_be_bytes());
        nonce[11] = last as u8;
        cipher.decrypt(&nonce.into(), chunk).ok()
    };
    let mut out = Vec::new();
    for (i, chunk) in payload[NONCE_SIZE..]
        .chunks(ENCRYPTED_CHUNK_SIZE)
        .enumerate()
    {
        let full = chunk.len() == ENCRYPTED_CHUNK_SIZE;
        if let Some(plain) = full.then(|| open(i, false, chunk)).flatten() {
            out.extend_from_slice(&plain);
        } else {
            if let Some(plain) = open(i, true, chunk) {
                out.extend_from_slice(&plain);
            }
            break;
        }
    }
    out
}

/// `DecryptError` holds an `io::Error`, so it is not `Clone`; the class is all we compare.
fn clone_kind(e: &DecryptError) -> DecryptError {
    match e {
        DecryptError::NotAgeFile => DecryptError::NotAgeFile,
        DecryptError::InvalidArmor(e) => DecryptError::InvalidArmor(*e),
        DecryptError::UnsupportedVersion(v) => DecryptError::UnsupportedVersion(v.clone()),
        DecryptError::InvalidHeader(m) => DecryptError::InvalidHeader(m.clone()),
        DecryptError::NoMatch { tried } => DecryptError::NoMatch { tried: *tried },
        DecryptError::HeaderMac => DecryptError::HeaderMac,
        DecryptError::PayloadCorrupt { chunk } => DecryptError::PayloadCorrupt { chunk: *chunk },
        DecryptError::Truncated => DecryptError::Truncated,
        DecryptError::TrailingData => DecryptError::TrailingData,
        DecryptError::Io(e) => DecryptError::Io(std::io::Error::new(e.kind(), e.to_string())),
        other => panic!("a class this test does not know: {other:?}"),
    }
}
