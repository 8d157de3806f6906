//! Server key rotation ([`seal::rotate`]): headers re-wrapped in place or by a copy, payload
//! bytes untouched, the record that keeps the original header and lets a rerun finish an
//! interrupted rotation; the `age` crate opens rotated files under the new key only.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use seal::file::FileError;
use seal::rotate::{self, Record};
use seal::sshsig::SigningKey;
use seal::{x25519, DecryptError, Encryptor, Identity, Recipient};

/// A sealed file of a few chunks in a temporary directory, sealed to `to`.
struct Sealed {
    _dir: tempfile::TempDir,
    path: PathBuf,
    plaintext: Vec<u8>,
}

impl Sealed {
    fn new(to: &[&dyn Recipient], signer: Option<&seal::sshsig::SigningKey>) -> Sealed {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.pdf.age");
        let plaintext = super::data(3 * seal::stream::CHUNK_SIZE + 77);
        let encryptor = match signer {
            Some(key) => Encryptor::new_signed_by(to, &key.public_key()).unwrap(),
            None => Encryptor::new(to).unwrap(),
        };
        std::fs::write(&path, encryptor.seal_slice(&plaintext)).unwrap();
        Sealed {
            _dir: dir,
            path,
            plaintext,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }

    fn record(&self) -> Record {
        Record::parse(&std::fs::read(record_path(&self.path)).unwrap()).unwrap()
    }
}

fn record_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(rotate::SUFFIX);
    PathBuf::from(name)
}

/// [`rotate::rotate_path`] with these keys, a bad signature refused.
fn rotate_with(
    path: &Path,
    identities: &[&dyn Identity],
    recipients: &[&dyn Recipient],
) -> Result<Option<seal::sender::Rejection>, FileError> {
    let keys = rotate::Keys {
        identities,
        recipients,
        drop_bad_signatures: false,
    };
    rotate::rotate_path(path, keys)
}

/// The header and the rest (nonce and chunks) of a sealed file.
fn split(sealed: &[u8]) -> (&[u8], &[u8]) {
    let (_, len) = seal::format::Header::parse(sealed).unwrap();
    sealed.split_at(len)
}

/// `N` new server keys.
fn keys<const N: usize>() -> [x25519::Identity; N] {
    std::array::from_fn(|_| x25519::Identity::generate())
}

fn age_opens(identity: &x25519::Identity, sealed: &[u8]) -> Option<Vec<u8>> {
    use std::str::FromStr;
    let theirs = age::x25519::Identity::from_str(identity.to_secret_string().as_str()).unwrap();
    age::decrypt(&theirs, sealed).ok()
}

#[test]
fn a_same_length_header_is_rotated_in_place_and_only_the_new_key_opens_it() {
    let [old, new] = keys();
    let file = Sealed::new(&[&old.to_public()], None);
    let before = file.bytes();
    let inode = std::fs::metadata(&file.path).unwrap().ino();

    rotate_with(&file.path, &[&old], &[&new.to_public()]).unwrap();
    let after = file.bytes();
    assert_eq!(
        std::fs::metadata(&file.path).unwrap().ino(),
        inode,
        "in place"
    );
    assert_eq!(after.len(), before.len());
    assert_ne!(split(&after).0, split(&before).0, "a new header");
    assert!(
        split(&after).1 == split(&before).1,
        "the same payload bytes"
    );
    assert!(seal::decrypt(&[&new], &after).unwrap() == file.plaintext);
    assert!(age_opens(&new, &after).unwrap() == file.plaintext);
    assert!(matches!(
        seal::decrypt(&[&old], &after),
        Err(DecryptError::NoMatch { .. })
    ));
    assert!(age_opens(&old, &after).is_none());

    let record = file.record();
    assert_eq!(record.original, split(&before).0);
    assert_eq!(record.current, split(&after).0);
    assert_eq!(record.rotations.len(), 1);
    assert_eq!(
        record.rotations[0].from,
        Some(seal::keys::PublicKey::X25519(old.to_public()).fingerprint())
    );

    // Done once: the old key no longer opens it, and it is left as it is.
    let e = rotate_with(&file.path, &[&old], &[&new.to_public()]).unwrap_err();
    assert!(
        matches!(e, FileError::Decrypt(DecryptError::NoMatch { .. })),
        "{e}"
    );
    assert!(file.bytes() == after);
}

#[test]
fn a_longer_header_goes_through_a_copy_and_a_second_rotation_keeps_the_original() {
    let [old, new, escrow] = keys();
    let file = Sealed::new(&[&old.to_public()], None);
    let before = file.bytes();
    let inode = std::fs::metadata(&file.path).unwrap().ino();
    std::fs::set_permissions(
        &file.path,
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();

    let to: [&dyn Recipient; 2] = [&new.to_public(), &escrow.to_public()];
    rotate_with(&file.path, &[&old], &to).unwrap();
    let after = file.bytes();
    let meta = std::fs::metadata(&file.path).unwrap();
    assert_ne!(meta.ino(), inode, "a new file");
    assert_eq!(meta.mode() & 0o777, 0o640, "with the old one's permissions");
    assert!(
        split(&after).1 == split(&before).1,
        "the same payload bytes"
    );
    for key in [&new, &escrow] {
        assert!(age_opens(key, &after).unwrap() == file.plaintext);
    }
    assert!(age_opens(&old, &after).is_none());

    // Rotated again, by the escrow key, back to one recipient.
    let newer = x25519::Identity::generate();
    rotate_with(&file.path, &[&escrow], &[&newer.to_public()]).unwrap();
    let last = file.bytes();
    assert!(age_opens(&newer, &last).unwrap() == file.plaintext);
    assert!(age_opens(&new, &last).is_none());
    let record = file.record();
    assert_eq!(
        record.original,
        split(&before).0,
        "the header it was sealed with"
    );
    assert_eq!(record.current, split(&last).0);
    assert_eq!(record.rotations.len(), 2);
}

#[test]
fn a_rerun_finishes_a_rotation_interrupted_before_or_while_the_header_was_written() {
    let [old, new] = keys();
    let file = Sealed::new(&[&old.to_public()], None);
    let before = file.bytes();
    rotate_with(&file.path, &[&old], &[&new.to_public()]).unwrap();
    let rotated = file.bytes();

    // The record went in place, then the run died: the file still has its old header.
    std::fs::write(&file.path, &before).unwrap();
    rotate_with(&file.path, &[&old], &[&new.to_public()]).unwrap();
    assert!(file.bytes() == rotated, "finished to the record's header");

    // A power loss tore the header written in place.
    let mut torn = rotated.clone();
    torn[..30].copy_from_slice(&before[..30]);
    torn[5] ^= 0xff;
    std::fs::write(&file.path, &torn).unwrap();
    rotate_with(&file.path, &[&old], &[&new.to_public()]).unwrap();
    assert!(file.bytes() == rotated);
    assert!(age_opens(&new, &file.bytes()).unwrap() == file.plaintext);
    assert_eq!(file.record().rotations.len(), 1);
}

#[test]
fn a_rerun_finishes_an_interrupted_copy_and_a_stale_record_is_replaced() {
    let [old, new, escrow] = keys();
    let file = Sealed::new(&[&old.to_public()], None);
    let before = file.bytes();
    let to: [&dyn Recipient; 2] = [&new.to_public(), &escrow.to_public()];
    rotate_with(&file.path, &[&old], &to).unwrap();
    let rotated = file.bytes();
    // Died after the record, before the new file's rename.
    std::fs::write(&file.path, &before).unwrap();
    rotate_with(&file.path, &[&old], &to).unwrap();
    assert!(file.bytes() == rotated);

    // Another file under the same name, beside the old record: rotated from itself.
    let other = Sealed::new(&[&old.to_public()], None);
    std::fs::copy(&other.path, &file.path).unwrap();
    rotate_with(&file.path, &[&old], &[&new.to_public()]).unwrap();
    assert!(age_opens(&new, &file.bytes()).unwrap() == other.plaintext);
    let record = file.record();
    assert_eq!(record.original, split(&other.bytes()).0);
    assert_eq!(record.rotations.len(), 1);
}

#[test]
fn the_signer_stays_named_and_signed_armored_passphrase_and_bad_records_are_refused() {
    let [old, new] = keys();
    let alice = seal::sshsig::SigningKey::generate_ed25519("alice");
    let file = Sealed::new(&[&old.to_public()], Some(&alice));
    rotate_with(&file.path, &[&old], &[&new.to_public()]).unwrap();
    let (header, _) = seal::format::Header::parse(&file.bytes()).unwrap();
    let named: Vec<_> = header
        .stanzas
        .iter()
        .filter(|s| s.kind == "seal-signer")
        .map(|s| s.args.clone())
        .collect();
    assert_eq!(named, [vec![alice.public_key().fingerprint()]]);

    // With a signature beside it that does not check: refused, and left as it is.
    let signed = Sealed::new(&[&old.to_public()], Some(&alice));
    let other = Sealed::new(&[&old.to_public()], Some(&alice));
    let sig = seal::sender::signature_path(&signed.path);
    let theirs = seal::sender::sign_file(&alice, &std::fs::File::open(&other.path).unwrap());
    std::fs::write(&sig, theirs.unwrap().to_pem()).unwrap();
    let before = signed.bytes();
    let e = rotate_with(&signed.path, &[&old], &[&new.to_public()]).unwrap_err();
    assert!(e.to_string().contains("does not check"), "{e}");
    assert!(signed.bytes() == before && !record_path(&signed.path).exists());
    // Unless asked to rotate it anyway: then it goes, unsigned.
    let keys = rotate::Keys {
        identities: &[&old],
        recipients: &[&new.to_public()],
        drop_bad_signatures: true,
    };
    let dropped = rotate::rotate_path(&signed.path, keys).unwrap();
    assert!(dropped.unwrap().to_string().contains("bad signature"));
    assert!(!std::path::Path::new(&sig).exists() && record_path(&signed.path).exists());
    let ids: [&dyn Identity; 1] = [&new];
    assert!(seal::decrypt(&ids, &signed.bytes()).unwrap() == signed.plaintext);

    // A malformed record: refused, and the file is left as it is.
    let sealed = Sealed::new(&[&old.to_public()], None);
    std::fs::write(record_path(&sealed.path), b"seal-rotation/v1\nnonce x\n").unwrap();
    let e = rotate_with(&sealed.path, &[&old], &[&new.to_public()]).unwrap_err();
    assert!(matches!(e, FileError::Rotate(_)), "{e}");
    std::fs::remove_file(record_path(&sealed.path)).unwrap();

    // Armor, and a passphrase among the new recipients.
    let armored = seal::armor::encode(&sealed.bytes());
    std::fs::write(&sealed.path, armored.as_bytes()).unwrap();
    let e = rotate_with(&sealed.path, &[&old], &[&new.to_public()]).unwrap_err();
    assert!(e.to_string().contains("armored"), "{e}");
    let plain = Sealed::new(&[&old.to_public()], None);
    let pass = seal::scrypt::Recipient::new(zeroize::Zeroizing::new("p".into()));
    let e = rotate_with(&plain.path, &[&old], &[&pass]).unwrap_err();
    assert!(e.to_string().contains("passphrase"), "{e}");
    assert!(!record_path(&plain.path).exists());
    let ids: [&dyn Identity; 1] = [&old];
    assert!(seal::decrypt(&ids, &plain.bytes()).unwrap() == plain.plaintext);
}

/// A file sealed to `to` by `alice` with `seal::file::seal_path`, signed beside it.
fn seal_signed(
    dir: &Path,
    name: &str,
    len: usize,
    to: &dyn Recipient,
    alice: &SigningKey,
) -> PathBuf {
    let (plain, sealed) = (dir.join(name), dir.join(format!("{name}.age")));
    std::fs::write(&plain, super::data(len)).unwrap();
    let mut options = seal::file::Options::new();
    options.signer = Some(alice);
    seal::file::seal_path(&plain, &sealed, &[to], &options).unwrap();
    sealed
}

/// Opens `sealed` under a policy that requires a signature by `alice`, in each of the three
/// ways a file is read (in memory when small, positioned, streamed): the signer, or why not.
fn open_signed(sealed: &Path, key: &dyn Identity, alice: &SigningKey) -> Result<String, String> {
    let policy = seal::sender::Policy {
        allowed: seal::allowed_signers::AllowedSigners::parse(&format!(
            "alice {}\n",
            alice.public_key()
        ))
        .unwrap(),
        require: true,
        now: std::time::SystemTime::now(),
    };
    let mut found = Vec::new();
    for positioned in [true, false] {
        let out = sealed.with_extension(format!("out{positioned}"));
        let mut options = seal::file::Options::new();
        options.senders = Some(&policy);
        options.positioned = positioned;
        let verdict = seal::file::open_path(sealed, &out, &[key], &options);
        assert_eq!(
            verdict.is_ok(),
            out.exists(),
            "output only if it checks out"
        );
        found.push(match verdict {
            Ok(Some(seal::sender::Verdict::Signed(sender))) => {
                std::fs::remove_file(&out).unwrap();
                Ok(sender.principals.join(","))
            }
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e.to_string()),
        });
    }
    assert_eq!(found[0], found[1], "positioned and streamed agree");
    found.remove(0)
}

#[test]
fn a_signed_file_still_checks_after_rotation_and_not_once_its_record_or_payload_is_altered() {
    let [old, new] = keys();
    let alice = SigningKey::generate_ed25519("alice");
    let dir = tempfile::tempdir().unwrap();
    // Small (read in memory) and large (positioned), in place and by a copy.
    let files: Vec<_> = [(1000, 1), (3 << 20, 1), (5000, 2), (2 << 20, 2)]
        .into_iter()
        .enumerate()
        .map(|(i, (len, to))| {
            let path = seal_signed(dir.path(), &format!("f{i}"), len, &old.to_public(), &alice);
            let (new, escrow) = (new.to_public(), x25519::Identity::generate().to_public());
            let news: [&dyn Recipient; 2] = [&new, &escrow];
            rotate_with(&path, &[&old], &news[..to]).unwrap();
            assert!(record_path(&path).exists());
            path
        })
        .collect();
    for path in &files {
        assert_eq!(
            open_signed(path, &new, &alice),
            Ok("alice".into()),
            "{path:?}"
        );
    }

    // A second rotation: still the original header that checks.
    let [newer] = keys();
    rotate_with(&files[1], &[&new], &[&newer.to_public()]).unwrap();
    assert_eq!(open_signed(&files[1], &newer, &alice), Ok("alice".into()));

    // The kept original header altered (its MAC): no longer this file's.
    let path = &files[0];
    let good_record = std::fs::read(record_path(path)).unwrap();
    let mut record = Record::parse(&good_record).unwrap();
    let at = record.original.len() - 3;
    record.original[at] = if record.original[at] == b'A' {
        b'B'
    } else {
        b'A'
    };
    std::fs::write(record_path(path), record.to_bytes()).unwrap();
    let e = open_signed(path, &new, &alice).unwrap_err();
    assert!(e.contains("original header is not this file's"), "{e}");

    // Another file's record (sealed and signed by alice too, rotated the same way): its
    // current header is not this file's, so the file is checked as it is, and fails.
    std::fs::write(
        record_path(path),
        std::fs::read(record_path(&files[2])).unwrap(),
    )
    .unwrap();
    let e = open_signed(path, &new, &alice).unwrap_err();
    assert!(e.contains("bad signature"), "{e}");
    std::fs::write(record_path(path), &good_record).unwrap();
    assert_eq!(open_signed(path, &new, &alice), Ok("alice".into()));

    // The header swapped for another file's rotated header, record and all.
    let theirs = std::fs::read(&files[2]).unwrap();
    let (their_header, _) = split(&theirs);
    let mine = std::fs::read(path).unwrap();
    let (_, my_payload) = split(&mine);
    std::fs::write(path, [their_header, my_payload].concat()).unwrap();
    std::fs::write(
        record_path(path),
        std::fs::read(record_path(&files[2])).unwrap(),
    )
    .unwrap();
    assert!(open_signed(path, &new, &alice).is_err());

    // The payload altered, in a large file: refused.
    let path = &files[1];
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(path, &bytes).unwrap();
    assert!(open_signed(path, &newer, &alice).is_err());

    // Without its record, a rotated file's signature covers a header it no longer has.
    std::fs::remove_file(record_path(&files[3])).unwrap();
    let e = open_signed(&files[3], &new, &alice).unwrap_err();
    assert!(e.contains("bad signature"), "{e}");

    // A stale record beside a signed file never rotated: checked as it is, and passes.
    let fresh = seal_signed(dir.path(), "fresh", 3 << 20, &old.to_public(), &alice);
    std::fs::write(record_path(&fresh), &good_record).unwrap();
    assert_eq!(open_signed(&fresh, &old, &alice), Ok("alice".into()));
}
