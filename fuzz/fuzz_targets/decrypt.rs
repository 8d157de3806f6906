//! Whole-file decryption with fixed keys (the vector suite's X25519 identity and the
//! passphrase "password", work factors up to 2^10): the sequential `Decryptor`, the parallel
//! in-memory `decrypt` and the parallel streaming pipeline must agree on accept or reject, and
//! on the plaintext.
#![no_main]

use std::io::Read;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use seal::{Decryptor, Identity};

const IDENTITY: &str = "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";

struct Keys {
    x25519: Vec<Box<dyn Identity>>,
    passphrase: seal::scrypt::Identity,
    pool: rayon::ThreadPool,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        x25519: seal::keys::parse_identity_file(IDENTITY).unwrap(),
        passphrase: seal::scrypt::Identity::new(zeroize::Zeroizing::new("password".into()))
            .with_max_work_factor(10),
        pool: rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap(),
    })
}

fuzz_target!(|data: &[u8]| {
    let keys = keys();
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
});
