//! The properties the fuzz targets check, shared with `tests/fuzz_regressions.rs`, which
//! replays every input that ever broke one of them. Each function panics on a violation.

use std::io::Read;
use std::sync::OnceLock;

use seal::format::Header;
use seal::{armor, keys, Decryptor, Identity};

/// The header parser: whatever it accepts, it gives back byte for byte (non-malleability),
/// and the streaming reader agrees with the slice parser.
pub fn header(data: &[u8]) {
    let parsed = Header::parse(data);
    let read = Header::read(&mut &data[..]);
    match parsed {
        Ok((header, len)) => {
            assert_eq!(
                header.to_bytes(),
                &data[..len],
                "re-serialized header differs"
            );
            let rebuilt = Header::new(header.stanzas.clone(), |_| header.mac);
            assert_eq!(
                rebuilt.to_bytes(),
                header.to_bytes(),
                "rebuilt header differs"
            );
            let read = read.expect("the reader refused what the parser accepted");
            assert_eq!(read.to_bytes(), header.to_bytes());
        }
        Err(_) => assert!(read.is_err(), "the reader accepted what the parser refused"),
    }
}

/// The armor decoder: what it accepts is the canonical encoding of what it returns, up to
/// surrounding whitespace and CRLF line ends.
pub fn armor(data: &[u8]) {
    if let Ok(binary) = armor::decode(data) {
        let canonical = armor::encode(&binary);
        let text = std::str::from_utf8(data).expect("accepted armor is ASCII");
        let normalized = format!("{}\n", text.trim_ascii().replace("\r\n", "\n"));
        assert_eq!(normalized, canonical, "accepted a non-canonical armor");
        assert_eq!(armor::decode(canonical.as_bytes()).unwrap(), binary);
    }
}

/// Key file parsers: no panics; parsed keys print back to what was parsed.
pub fn keys(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = keys::parse_identity_file(text);
    let _ = keys::parse_recipients_file(text);
    if let Ok(ids) = keys::parse_x25519_identities(text) {
        for id in ids {
            let again = keys::parse_x25519_identities(id.to_secret_string().as_str()).unwrap();
            assert!(again[0].to_public() == id.to_public());
        }
    }
    if let Ok(recipient) = text.parse::<seal::x25519::Recipient>() {
        assert_eq!(recipient.to_string(), text);
    }
}

/// Sender signatures: allowed-signers lists and SSHSIG signatures never panic; a signature
/// that parses prints back to exactly its input's blob (one encoding per signature), and is
/// never good over bytes nobody signed.
pub fn signers(data: &[u8]) {
    use seal::allowed_signers::AllowedSigners;
    use seal::sshsig::{Digest, Signature};
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(list) = AllowedSigners::parse(text) {
            assert!(list.len() <= text.lines().count());
        }
    }
    if let Ok(sig) = Signature::from_pem(data) {
        let again = Signature::from_pem(sig.to_pem().as_bytes()).expect("re-parse");
        assert!(again == sig, "signature changed on a round trip");
        if let Ok(digest) = sig.digest_of(b"fuzz") {
            assert!(
                sig.verify(&digest).is_err(),
                "a signature over unsigned bytes"
            );
        }
        let _ = sig.verify(&Digest::of(b"fuzz"));
    }
}

const IDENTITY: &str = "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";

struct Keys {
    x25519: Vec<Box<dyn Identity>>,
    passphrase: seal::scrypt::Identity,
    pool: rayon::ThreadPool,
}

fn fixed_keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        x25519: keys::parse_identity_file(IDENTITY).unwrap(),
        // Work factors up to 2^10 (the vectors' own), so each input stays fast.
        passphrase: seal::scrypt::Identity::new(zeroize::Zeroizing::new("password".into()))
            .with_max_work_factor(10),
        pool: rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap(),
    })
}

/// Whole-file decryption with fixed keys: the sequential `Decryptor`, the parallel in-memory
/// `decrypt` and the parallel streaming pipeline agree on accept or reject, and on the
/// plaintext.
pub fn decrypt(data: &[u8]) {
    let keys = fixed_keys();
    let ids: Vec<&dyn Identity> = vec![keys.x25519[0].as_ref(), &keys.passphrase];
    let sequential = Decryptor::new(data).and_then(|d| {
        let mut plain = Vec::new();
        d.unwrap(&ids)?.read_to_end(&mut plain)?;
        Ok(plain)
    });
    let parallel = keys.pool.install(|| seal::decrypt(&ids, data));
    let streamed = keys.pool.install(|| {
        let mut plain = Vec::new();
        Decryptor::new(data)
            .map_err(|e| e.to_string())?
            .decrypt_stream(&ids, &mut plain)
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(plain)
    });
    match (&sequential, &parallel, &streamed) {
        (Ok(a), Ok(b), Ok(c)) => {
            assert!(a == b, "sequential and parallel plaintexts differ");
            assert!(a == c, "sequential and streamed plaintexts differ");
        }
        (Err(_), Err(_), Err(_)) => {}
        _ => panic!(
            "paths disagree: sequential {:?}, parallel {:?}, streamed {:?}",
            sequential.as_ref().map(Vec::len),
            parallel.as_ref().map(Vec::len),
            streamed.as_ref().map(Vec::len)
        ),
    }
}
