//! Sender signatures: the directories the signature tests start from, the signatures
//! `ssh-keygen` made once over a fixed file (`testdata/signatures`), two signers independent
//! of seal's, and the allowed-signers lists checked against OpenSSH's reading of them.

use seal::allowed_signers::Refusal;
use seal::sshsig::{SignerKey, SigningKey};

use super::*;

/// The passphrase callback of a key that has none.
pub fn no_passphrase() -> Result<zeroize::Zeroizing<String>, seal::KeyError> {
    Err(seal::KeyError::PassphraseNeeded)
}

/// A directory with the fixture keys, a `server` key and `upload.age`, sealed to it.
pub fn with_sealed_upload() -> (Dir, Vec<u8>) {
    let dir = with_keys();
    dir.new_key("server");
    let sealed = seal_to_server(&dir, &data(3 * CHUNK + 17, 5));
    dir.write("upload.age", &sealed);
    (dir, sealed)
}

/// A server key; client keys alice, mallory (both listed) and bob (not listed); the list
/// `allowed`; and `upload.age` (three chunks and a bit) with `upload.age.sig`, signed by
/// alice. Returns the plaintext.
pub fn signed_upload() -> (Dir, Vec<u8>) {
    let dir = Dir::new();
    dir.new_key("server");
    for client in ["alice", "mallory", "bob"] {
        dir.bin("seal-keygen").args(["--client", client]).run().ok();
    }
    let line = |name: &str| format!("{name} {}", dir.read_string(format!("{name}.pub")));
    dir.write("allowed", line("alice") + &line("mallory"));
    let plaintext = data(3 * CHUNK + 77, 9);
    dir.write("upload", &plaintext);
    dir.line("seal upload --to server.pub --sign-with alice.key")
        .run()
        .ok();
    dir.remove("upload");
    (dir, plaintext)
}

/// `unseal` of `input` (and its signature beside it) on read path `path`, with `flags`;
/// the plaintext goes to `out` (or standard output).
pub fn unseal_signed(dir: &Dir, input: &str, path: &str, flags: &[&str]) -> Run {
    let cmd = dir.bin("unseal").args(["-k", "server.key"]).args(flags);
    let cmd = match path {
        "mapped" | "armored" => cmd.args([input, "-o", "out"]),
        "streamed" => cmd.args([input, "--no-mmap", "-o", "out"]),
        "stdin" => cmd
            .args(["--signature", &format!("{input}.sig"), "-o", "out"])
            .stdin(dir.read(input)),
        "stdout" => cmd.args([input, "-o", "-"]),
        _ => unreachable!(),
    };
    cmd.run()
}

/// The name unseal gives the input in messages.
pub fn shown(input: &str, path: &str) -> String {
    match path {
        "stdin" => "standard input".into(),
        _ => input.into(),
    }
}

/// `plaintext` sealed to `server.pub` and the fixture `ed25519.pub`, naming `signer` in the
/// header.
pub fn seal_signed(dir: &Dir, signer: &SignerKey, plaintext: &[u8]) -> Vec<u8> {
    let server = seal::keys::parse_recipient(dir.read_string("server.pub").trim()).unwrap();
    let ssh = seal::keys::parse_recipient(dir.read_string("ed25519.pub").trim()).unwrap();
    seal::Encryptor::new_signed_by(&[server.as_ref(), ssh.as_ref()], signer)
        .unwrap()
        .seal_slice(plaintext)
}

/// The file the fixture signatures sign.
pub const SIGNED_FIXTURE: &str = "demo/quarterly-report.csv";

/// A signature that `ssh-keygen -Y sign` made over [`SIGNED_FIXTURE`]
/// (`testdata/signatures/NAME`; its README says how).
pub fn fixture_signature(name: &str) -> Vec<u8> {
    let path = testdata(&format!("signatures/{name}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// `ssh-keygen -q -Y sign -f KEY -n NAMESPACE FILE`: writes FILE.sig (over SHA-512, its
/// default). Fails loudly without `ssh-keygen`.
pub fn ssh_sign(dir: &Dir, key: &str, namespace: &str, file: &str) {
    dir.cmd(program("ssh-keygen"))
        .args(["-q", "-Y", "sign", "-f", key, "-n", namespace, file])
        .run()
        .ok();
}

/// What `ssh_sign` does, in process, through the `ssh-key` crate's own SSHSIG signer (not
/// seal's): writes FILE.sig, over SHA-512 as `ssh-keygen` signs. For Ed25519 keys (the
/// crate signs RSA only with a feature seal leaves off).
pub fn ssh_key_sign(dir: &Dir, key: &str, namespace: &str, file: &str) {
    let key = ssh_key::PrivateKey::from_openssh(dir.read_string(key)).unwrap();
    let sig = key
        .sign(namespace, ssh_key::HashAlg::Sha512, &dir.read(file))
        .unwrap();
    let pem = sig.to_pem(ssh_key::LineEnding::LF).unwrap();
    dir.write(format!("{file}.sig"), pem);
}

/// Checks `pem` over `signed` with the `ssh-key` crate's own SSHSIG verifier, not seal's,
/// for the signer whose OpenSSH public key is `public`, in seal's namespace.
pub fn ssh_key_verifies(public: &str, signed: &[u8], pem: &[u8]) -> Result<(), ssh_key::Error> {
    let key = ssh_key::PublicKey::from_openssh(public.trim()).unwrap();
    let sig = ssh_key::SshSig::from_pem(pem).unwrap();
    key.verify(seal::sshsig::NAMESPACE, signed, &sig)
}

/// What seal says of an allowed-signers list: these principals, or a refusal of this kind.
pub type Verdict = Result<&'static [&'static str], fn(&Refusal) -> bool>;

/// Allowed-signers lists that name `key`, alice's: (list, whether
/// `ssh-keygen -Y verify -I alice` accepts her signature under it, what seal says).
pub fn allowed_signers_cases(key: &SignerKey) -> Vec<(String, bool, Verdict)> {
    vec![
        (
            format!("alice,alice@example.com {key} laptop"),
            true,
            Ok(&["alice", "alice@example.com"]),
        ),
        (
            format!("alice namespaces=\"file,se?l\",valid-after=\"20200101Z\" {key}"),
            true,
            Ok(&["alice"]),
        ),
        (
            format!("alice valid-before=\"20200101Z\" {key}"),
            false,
            Err(|r| matches!(r, Refusal::Expired { .. })),
        ),
        (
            format!("alice valid-after=\"29990101Z\" {key}"),
            false,
            Err(|r| matches!(r, Refusal::NotYetValid { .. })),
        ),
        (
            format!("alice namespaces=\"file,git\" {key}"),
            false,
            Err(|r| matches!(r, Refusal::Namespace { .. })),
        ),
        (
            format!("alice cert-authority {key}"),
            false,
            Err(|r| matches!(r, Refusal::UnknownSigner(_))),
        ),
        (
            format!("bob {}", SigningKey::generate_ed25519("").public_key()),
            false,
            Err(|r| matches!(r, Refusal::UnknownSigner(_))),
        ),
    ]
}
