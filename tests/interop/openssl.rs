//! `openssl` (Debian package `openssl`): RSA keys it makes now, PKCS#8 and PKCS#1 with their
//! SPKI public keys, seal and open; a 1024-bit one is refused. (The fixtures it made once,
//! `testdata/keys/*.pem`, are checked by `cargo test`.)

use crate::common::*;

#[test]
fn fresh_openssl_keys_work_and_small_ones_are_refused() {
    let openssl = program("openssl");
    let dir = Dir::new();
    let run = |args: &[&str]| dir.cmd(&openssl).args(args).run().ok();
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "p8.pem",
    ]);
    run(&["pkey", "-in", "p8.pem", "-pubout", "-out", "p8.pub.pem"]);
    run(&["genrsa", "-traditional", "-out", "p1.pem", "2048"]);
    run(&["rsa", "-in", "p1.pem", "-pubout", "-out", "p1.pub.pem"]);
    run(&["genrsa", "-traditional", "-out", "small.pem", "1024"]);
    run(&[
        "rsa",
        "-in",
        "small.pem",
        "-pubout",
        "-out",
        "small.pub.pem",
    ]);
    for name in ["p8.pem", "p1.pem", "small.pem"] {
        dir.chmod(name, 0o600);
    }
    let plaintext = data(70_000, 8);
    for (public, private) in [("p8.pub.pem", "p8.pem"), ("p1.pub.pem", "p1.pem")] {
        let sealed = seal_ssh(&dir, &plaintext, &["--to", public]);
        assert!(
            unseal_ssh(&dir, &sealed, &["--key", private]) == plaintext,
            "{private}"
        );
    }
    dir.write("plain", "x");
    let before = dir.listing();
    dir.line("seal plain --to small.pub.pem")
        .run()
        .fails(EXIT_USAGE)
        .says("seal", &["small.pub.pem: the RSA key has 1024 bits"], None);
    assert_eq!(dir.listing(), before);
}
