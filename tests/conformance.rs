//! The C2SP age test vectors (testdata/age-vectors, copied from ../shared/conformance), run
//! through the library's sequential and parallel decryptors, which must agree with each other
//! and with the vector's expected outcome.
//!
//! Vectors that need features of later issues (ASCII armor, scrypt passphrases) are listed in
//! `EXPECTED_UNSUPPORTED` by name. The list is checked both ways:
//! a vector that needs none of those features may not hide in it, and each listed vector must
//! still be refused rather than opened wrongly.

use std::collections::BTreeSet;
use std::path::Path;

use seal::{DecryptError, Decryptor, Identity};
use sha2::{Digest, Sha256};

/// Vectors that use ASCII armor (issue 6) or scrypt (issue 6). The post-quantum hybrid vectors
/// (issue 7) all run, except the armored one.
const EXPECTED_UNSUPPORTED: &[&str] = &[
    "armor_empty_last_line",
    "armor_empty_line_begin",
    "armor_empty_line_end",
    "armor_full_last_line",
    "armor_garbage_leading",
    "armor_garbage_trailing",
    "armor_header_crlf",
    "armor_hybrid",
    "armor_lowercase",
    "armor_no_eol",
    "armor_no_match",
    "armor_no_padding",
    "armor_pgp_checksum",
    "armor_scrypt",
    "armor_whitespace_end",
    "armor_whitespace_eol",
    "armor_whitespace_last_line",
    "scrypt",
    "scrypt_bad_tag",
    "scrypt_double",
    "scrypt_no_match",
    "scrypt_not_canonical_body",
    "scrypt_not_canonical_salt",
    "scrypt_salt_missing",
    "scrypt_work_factor_hex",
    "scrypt_work_factor_leading_plus",
    "scrypt_work_factor_missing",
    "scrypt_work_factor_negative",
    "scrypt_work_factor_overflow",
];

/// The suite's standard X25519 test identity, for vectors that name none.
const DEFAULT_IDENTITY: &str =
    "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";

struct Vector {
    name: String,
    expect: String,
    payload: Option<Vec<u8>>,
    identities: Vec<String>,
    file_key: String,
    needs_unsupported: bool,
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
        file_key: String::new(),
        needs_unsupported: false,
        file: body.to_vec(),
    };
    for line in head.lines() {
        let (key, value) = line.split_once(": ").expect("key: value");
        match key {
            "expect" => v.expect = value.to_string(),
            "payload" => v.payload = Some(hex(value)),
            "identity" => v.identities.push(value.to_string()),
            "file key" => v.file_key = value.to_string(),
            "passphrase" => v.needs_unsupported = true,
            "armored" => v.needs_unsupported |= value == "yes",
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
fn every_supported_vector_gives_its_expected_outcome_on_both_paths() {
    let mut passed = 0;
    let mut failures = Vec::new();
    for v in vectors().iter().filter(|v| !v.needs_unsupported) {
        let text = match v.identities.is_empty() {
            true => DEFAULT_IDENTITY.to_string(),
            false => v.identities.join("\n"),
        };
        let ids = seal::keys::parse_identity_file(&text).expect("the identities parse");
        let ids: Vec<&dyn Identity> = ids.iter().map(|i| i.as_ref()).collect();

        let (sequential, released) = open_sequential(&ids, &v.file);
        let parallel = seal::decrypt(&ids, &v.file);
        let parallel_class = class(&parallel.as_ref().map(|_| ()).map_err(clone_kind));
        let mut problems = Vec::new();
        if class(&sequential) != v.expect {
            problems.push(format!("sequential gave {:?}", sequential.as_ref().err()));
        }
        if parallel_class != v.expect {
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
    assert!(passed >= 42, "only {passed} supported vectors ran");
    println!("{passed} supported vectors passed on both paths");
}

/// The plaintext of the chunks that authenticate from the start of the payload, computed
/// chunk by chunk from the vector's file key: each full chunk as a middle chunk or else as the
/// last one, a short chunk only as the last one.
fn authenticated_prefix(v: &Vector) -> Vec<u8> {
    use seal::stream::{PayloadCipher, CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, NONCE_SIZE};
    let (_, header_len) = seal::format::Header::parse(&v.file).unwrap();
    let file_key = hex(&v.file_key);
    let file_key = seal::FileKey::from_slice(&file_key).unwrap();
    let payload = &v.file[header_len..];
    let nonce = payload[..NONCE_SIZE].try_into().unwrap();
    let cipher = PayloadCipher::new(&file_key, nonce);
    let mut out = Vec::new();
    for (i, chunk) in payload[NONCE_SIZE..]
        .chunks(ENCRYPTED_CHUNK_SIZE)
        .enumerate()
    {
        let mut plain = vec![0u8; chunk.len().saturating_sub(16).min(CHUNK_SIZE)];
        let full = chunk.len() == ENCRYPTED_CHUNK_SIZE;
        if full
            && cipher
                .open_chunks(i as u64, false, chunk, &mut plain)
                .is_ok()
        {
            out.extend_from_slice(&plain);
        } else {
            if chunk.len() >= 16
                && cipher
                    .open_chunks(i as u64, true, chunk, &mut plain)
                    .is_ok()
            {
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
        DecryptError::UnsupportedVersion(v) => DecryptError::UnsupportedVersion(v.clone()),
        DecryptError::InvalidHeader(m) => DecryptError::InvalidHeader(m.clone()),
        DecryptError::NoMatch { tried } => DecryptError::NoMatch { tried: *tried },
        DecryptError::HeaderMac => DecryptError::HeaderMac,
        DecryptError::PayloadCorrupt { chunk } => DecryptError::PayloadCorrupt { chunk: *chunk },
        DecryptError::Truncated => DecryptError::Truncated,
        DecryptError::TrailingData => DecryptError::TrailingData,
        DecryptError::Io(e) => DecryptError::Io(std::io::Error::new(e.kind(), e.to_string())),
    }
}

#[test]
fn expected_unsupported_list_is_exactly_the_vectors_needing_later_features() {
    let all = vectors();
    let needing: BTreeSet<&str> = all
        .iter()
        .filter(|v| v.needs_unsupported)
        .map(|v| v.name.as_str())
        .collect();
    let listed: BTreeSet<&str> = EXPECTED_UNSUPPORTED.iter().copied().collect();
    assert_eq!(needing, listed);
    println!(
        "expected-unsupported (armor, scrypt): {} of {} vectors",
        listed.len(),
        all.len()
    );
}

#[test]
fn expected_unsupported_vectors_are_refused_without_releasing_plaintext() {
    let server = seal::x25519::Identity::generate();
    for v in vectors().iter().filter(|v| v.needs_unsupported) {
        // Classic identities of the vector where there are any, else a stranger's key.
        let parsed = seal::keys::parse_identity_file(&v.identities.join("\n"));
        let ids: Vec<Box<dyn Identity>> = parsed.unwrap_or_else(|_| vec![Box::new(server.clone())]);
        let ids: Vec<&dyn Identity> = ids.iter().map(|i| i.as_ref()).collect();
        let (result, released) = open_sequential(&ids, &v.file);
        assert!(result.is_err(), "{} opened without its feature", v.name);
        assert!(released.is_empty(), "{} released plaintext", v.name);
        assert!(
            seal::decrypt(&ids, &v.file).is_err(),
            "{} opened in parallel",
            v.name
        );
    }
}
