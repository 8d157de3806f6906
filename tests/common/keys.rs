//! The fixture keys (`testdata/keys`) and what `ssh-keygen` printed for them once
//! (`testdata/ssh-keygen`).
//!
//! The keys were made once by `ssh-keygen` (RSA 2048 and 4096, Ed25519, with and without the
//! passphrase in `passphrase.txt`; RSA 1024 and ECDSA, to be refused) and `openssl`
//! (`genpkey`: PKCS#8, `genrsa -traditional`: PKCS#1, `pkey -pubout` and `rsa -pubout`: SPKI,
//! `pkcs1-1024.spki.pem` from `pkcs1-1024.pem`).

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

/// A path under `testdata/`.
pub fn testdata(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(path)
}

/// A directory with the fixture keys, copied readable by their owner only (git does not keep
/// the 0600 mode, and unseal warns about keys others can read).
pub fn with_keys() -> Dir {
    let dir = Dir::new();
    for entry in fs::read_dir(testdata("keys")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        dir.write_private(&name, fs::read(entry.path()).unwrap());
    }
    dir
}

/// A directory with `k.key`, an Ed25519 key that `seal-keygen` protected with the passphrase
/// `s3cret words` (read from `pass`, whose final newline is not part of it), and `k.pub`.
pub fn with_protected_key() -> Dir {
    let dir = Dir::new();
    dir.write_private("pass", "s3cret words\n");
    dir.bin("seal-keygen")
        .args(["--type", "ed25519", "-o", "k.key"])
        .args(["--key-passphrase-file", "pass"])
        .run()
        .ok();
    dir
}

/// (public key file, private key file) for every key type that opens files.
pub const PAIRS: &[(&str, &str)] = &[
    ("rsa2048.pub", "rsa2048"),
    ("rsa4096.pub", "rsa4096"),
    ("ed25519.pub", "ed25519"),
    ("pkcs8.spki.pem", "pkcs8.pem"),
    ("pkcs1.spki.pem", "pkcs1.pem"),
];

/// The first line of a file, without its newline.
pub fn first_line(dir: &Dir, name: &str) -> String {
    dir.read_string(name).lines().next().unwrap().to_string()
}

/// What `ssh-keygen` printed for each fixture key file, read from `testdata/ssh-keygen/NAME`
/// (`fingerprints`: `-l`; `public-keys`: `-y`): (file, the line it printed, with its newline).
pub fn ssh_keygen_printed(name: &str) -> Vec<(String, String)> {
    let path = testdata(&format!("ssh-keygen/{name}"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.lines()
        .map(|line| {
            let (file, printed) = line.split_once(' ').expect("FILE OUTPUT");
            (file.to_string(), format!("{printed}\n"))
        })
        .collect()
}
