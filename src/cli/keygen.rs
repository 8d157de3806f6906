//! `seal-keygen`: make a server key pair, or print the public half of one.

use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use zeroize::Zeroizing;

use super::failure::{ExitCode, Failure};
use super::keyargs::{exposed, PassphraseFlags};
use super::paths::STDOUT;
use super::run;
use crate::error::KeyError;
use crate::keys;
use crate::keys::ssh;
use crate::{pq, x25519};

const EXAMPLES: &str = "\
Examples:
  seal-keygen -o server.key       writes server.key (0600) and server.pub
  seal-keygen -y server.key       prints the public key (of any supported key file)
  seal-keygen --client alice >> allowed_signers
                                  a client key pair for alice, and the server's line for it

More examples, and every flag in full: man seal-keygen";

const LONG_EXAMPLES: &str = "\
Examples:
  seal-keygen -o server.key       writes server.key (0600) and server.pub
  seal-keygen --pq -o server.key  the same, a post-quantum key (age1pq1...)
  seal-keygen --type rsa --bits 4096 -o server.key    an RSA key, in OpenSSH formats
  seal-keygen --type ed25519 -o server.key --key-passphrase-file pass    passphrase-protected
  seal-keygen -y server.key       prints the public key (of any supported key file)
  seal-keygen --fingerprint ~/.ssh/id_ed25519.pub    prints its SHA-256 fingerprint
  seal-keygen > key.txt           prints a new key (public key on stderr)
  seal-keygen --client alice >> allowed_signers
                                  a client key alice.key (0600, for the user) and alice.pub,
                                  and the server's allowed-signers line on stdout

A key kept in hardware is made by its age plugin, not here: age-plugin-yubikey --generate
writes an AGE-PLUGIN-YUBIKEY-1... identity for --key and prints its age1yubikey1... recipient
(doc/plugins.md).";

/// The kinds of key pair seal-keygen makes.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// age X25519 (`age1...`, `AGE-SECRET-KEY-1...`): the default, and the fastest to open.
    X25519,
    /// RSA, as an OpenSSH key pair (ssh-rsa): for servers whose keys must be RSA.
    Rsa,
    /// Ed25519, as an OpenSSH key pair (ssh-ed25519).
    Ed25519,
    /// Post-quantum ML-KEM-768 + X25519 hybrid (`age1pq1...`), the same as --pq.
    Pq,
}

/// Make server key pairs for seal and unseal, or show the public key or fingerprint of one
#[derive(Parser, Debug)]
#[command(name = "seal-keygen", version, after_help = EXAMPLES, after_long_help = LONG_EXAMPLES)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Write the private key here, the public key beside it
    ///
    /// The private key is created 0600, never over an existing file; the public key is
    /// NAME.pub for NAME.key, else OUTPUT.pub. Without -o, the private key goes to standard
    /// output, with a warning if that is a file others can read.
    #[arg(short, long, value_name = "OUTPUT", conflicts_with_all = ["public", "fingerprint"])]
    pub output: Option<PathBuf>,

    /// The kind of key pair to make
    ///
    /// RSA and Ed25519 keys are written in the OpenSSH formats, so ssh-keygen, age and rage
    /// read them too.
    #[arg(
        short = 't',
        long = "type",
        value_name = "TYPE",
        default_value = "x25519"
    )]
    pub key_type: KeyType,

    /// RSA modulus size in bits
    #[arg(short, long, value_name = "BITS", default_value = "3072",
          value_parser = [clap::builder::PossibleValue::new("2048"), "3072".into(), "4096".into()])]
    pub bits: String,

    /// Comment for a new OpenSSH key
    ///
    /// Shown after the public key.
    #[arg(short = 'C', long, value_name = "COMMENT", default_value = "")]
    pub comment: String,

    /// Make a post-quantum key (the same as --type pq)
    ///
    /// ML-KEM-768 + X25519 hybrid: age's `age1pq1...` keys, which Go age 1.3 and later reads.
    /// Files sealed to it stay safe from a future quantum computer.
    #[arg(long, conflicts_with_all = ["public", "fingerprint"])]
    pub pq: bool,

    /// Print the public key of a key file (`-`: standard input)
    ///
    /// Of each private key in it: age identity files, OpenSSH, PKCS#1 and PKCS#8 private
    /// keys.
    #[arg(short = 'y', value_name = "KEY", conflicts_with = "fingerprint")]
    pub public: Option<PathBuf>,

    /// Print the SHA-256 fingerprint of each key in FILE
    ///
    /// Private or public keys: for SSH keys exactly as `ssh-keygen -l` prints it; for age
    /// keys `SHA256:` and the base64 of SHA-256 of the `age1...` recipient.
    #[arg(long, value_name = "FILE")]
    pub fingerprint: Option<PathBuf>,

    /// Make a client key pair for NAME, who signs what they seal
    ///
    /// The client signs what they seal (seal --sign-with). An Ed25519 OpenSSH key pair:
    /// NAME.key (0600, to hand to the user; or -o PATH) and the public key beside it; the
    /// line for the server's allowed signers list (unseal --allowed-signers) goes to standard
    /// output. NAME is the signer's name in that list and the file's name: letters, digits,
    /// `.`, `_`, `-` and `@`, not starting with `.` or `-`.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["public", "fingerprint", "pq", "key_type"])]
    pub client: Option<String>,

    /// With --type rsa or ed25519: protect the new private key with the passphrase read from
    /// --key-passphrase-file or --key-passphrase-env.
    #[command(flatten)]
    pub passphrase: PassphraseFlags,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub help: super::HelpFlag,
}

/// The `seal-keygen` binary.
pub fn main() -> std::process::ExitCode {
    let args: Args = super::parse_args();
    run("seal-keygen", || keygen(args))
}

/// Runs `seal-keygen` with parsed arguments.
pub fn keygen(args: Args) -> Result<(), Failure> {
    if let Some(path) = &args.public {
        return print_public(path);
    }
    if let Some(path) = &args.fingerprint {
        return print_fingerprints(path);
    }
    if let Some(name) = &args.client {
        return make_client_key(&args, name);
    }
    let key_type = if args.pq { KeyType::Pq } else { args.key_type };
    let (text, public) = match key_type {
        KeyType::X25519 | KeyType::Pq => {
            if args.passphrase.given() {
                return Err(Failure::usage("age keys have no passphrase")
                    .hint("use --type rsa or --type ed25519 for a passphrase-protected key"));
            }
            let (public, secret) = match key_type {
                KeyType::Pq => {
                    let identity = pq::Identity::generate();
                    (
                        identity.to_public().to_string(),
                        identity.to_secret_string(),
                    )
                }
                _ => {
                    let identity = x25519::Identity::generate();
                    (
                        identity.to_public().to_string(),
                        identity.to_secret_string(),
                    )
                }
            };
            (
                keys::key_file_text(&public, &secret, &now_rfc3339()),
                public,
            )
        }
        KeyType::Rsa | KeyType::Ed25519 => {
            let passphrase = new_key_passphrase(&args)?;
            let key = match key_type {
                KeyType::Rsa => {
                    let bits = args.bits.parse().expect("clap allows numbers only");
                    ssh::PrivateKey::generate_rsa(bits, &args.comment)?
                }
                _ => ssh::PrivateKey::generate_ed25519(&args.comment),
            };
            let text = key.to_openssh(passphrase.as_ref().map(|p| p.as_str()));
            (text, key.to_public().to_string())
        }
    };
    match args.output {
        Some(path) => {
            write_pair(&path, &text, &public)?;
            say!(
                "seal-keygen: wrote {} (private: keep it on the server) and {} (public: give it to users)",
                crate::shown::path(&path),
                crate::shown::path(&public_path(&path))
            );
            say!("Public key: {public}");
        }
        None => {
            if !io::stdout().is_terminal() {
                say!("Public key: {public}");
            }
            warn_if_stdout_exposed();
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| Failure::io(STDOUT.as_ref(), &e))?;
        }
    }
    Ok(())
}

/// Warns when the private key goes to a regular file that group or others can read
/// (`seal-keygen > key.txt` under the usual umask), as age-keygen does.
fn warn_if_stdout_exposed() {
    let stdout = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from);
    if stdout
        .and_then(|file| file.metadata())
        .is_ok_and(|meta| exposed(&meta))
    {
        say!("seal-keygen: warning: standard output: writing a secret key to a file that group or others can read; run chmod 600 on it");
    }
}

/// Writes a new private key file (0600) and its public key beside it, never over anything.
fn write_pair(path: &Path, text: &str, public: &str) -> Result<(), Failure> {
    let public_path = public_path(path);
    for p in [path, &public_path] {
        if p.symlink_metadata().is_ok() {
            return Err(
                Failure::new(ExitCode::Io, "already exists; keys are never overwritten").about(p),
            );
        }
    }
    keys::write_new_private_file(path, text).map_err(|e| Failure::io(path, &e))?;
    std::fs::write(&public_path, format!("{public}\n")).map_err(|e| Failure::io(&public_path, &e))
}

/// `--client NAME`: an Ed25519 client key pair, and the allowed-signers line for it, limited
/// to the `seal` namespace, on standard output.
fn make_client_key(args: &Args, name: &str) -> Result<(), Failure> {
    if !is_client_name(name) {
        return Err(
            Failure::usage(format!("client name {name:?} cannot be a signer name")).hint(
                "use letters, digits, '.', '_', '-' and '@', not starting with '.' or '-', without spaces or slashes",
            ),
        );
    }
    let passphrase = new_key_passphrase(args)?;
    let comment = match args.comment.as_str() {
        "" => name,
        c => c,
    };
    let key = ssh::PrivateKey::generate_ed25519(comment);
    let text = key.to_openssh(passphrase.as_ref().map(|p| p.as_str()));
    let public = key.to_public().to_string();
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{name}.key")));
    write_pair(&path, &text, &public)?;
    say!(
        "seal-keygen: wrote {} (private: give it to {name}) and {} (public); add the line below to the server's allowed signers list",
        crate::shown::path(&path),
        crate::shown::path(&public_path(&path))
    );
    let namespace = crate::signing::sshsig::NAMESPACE;
    print_line(&format!("{name} namespaces=\"{namespace}\" {public}"))
}

/// A client name is the principal of an allowed-signers line and the name of the key file
/// (`NAME.key`, in the working directory): one plain word of ASCII letters, digits, `.`, `_`,
/// `-` and `@`, not starting with `.` (no hidden file, no `..`) or `-` (no option).
fn is_client_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    !name.starts_with(['.', '-']) && !name.is_empty() && name.chars().all(allowed)
}

/// The passphrase to protect a new SSH key with, if the flags give one.
fn new_key_passphrase(args: &Args) -> Result<Option<Zeroizing<String>>, Failure> {
    match args.passphrase.given() {
        true => Ok(Some(args.passphrase.get("the new key".as_ref())?)),
        false => Ok(None),
    }
}

fn read_text(path: &Path) -> Result<Zeroizing<String>, Failure> {
    let mut bytes = Zeroizing::new(Vec::new());
    let read = if path.as_os_str() == "-" {
        io::stdin().read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes))
    };
    read.map_err(|e| Failure::io(path, &e))?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_string())),
        Err(_) => Err(Failure::from(KeyError::UnknownFormat(keys::IDENTITY_FORMATS)).about(path)),
    }
}

fn print_public(path: &Path) -> Result<(), Failure> {
    let text = read_text(path)?;
    let is_openssh = text
        .trim_start()
        .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----");
    let publics = if is_openssh {
        // Stored in the clear: no passphrase needed to show it.
        keys::parse_public_keys(&text)
    } else {
        let mut no_passphrase = || Err(KeyError::PassphraseNeeded);
        keys::parse_private_keys(&text, &mut no_passphrase)
            .and_then(|keys| keys.iter().map(keys::PrivateKey::to_public).collect())
    };
    for public in publics.map_err(|e| Failure::from(e).about(path))? {
        print_line(&public.to_string())?;
    }
    Ok(())
}

fn print_fingerprints(path: &Path) -> Result<(), Failure> {
    let text = read_text(path)?;
    let publics = keys::parse_public_keys(&text).map_err(|e| Failure::from(e).about(path))?;
    for public in publics {
        print_line(&public.fingerprint_line())?;
    }
    Ok(())
}

/// Prints a line on standard output. A reader that went away (`| head -0`) ends the output
/// quietly, as it ends a stream; any other failure is an error, not a panic.
fn print_line(line: &str) -> Result<(), Failure> {
    match writeln!(io::stdout(), "{line}") {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Failure::io(STDOUT.as_ref(), &e)),
        _ => Ok(()),
    }
}

/// `server.key` → `server.pub`; any other name gets `.pub` appended.
fn public_path(private: &Path) -> PathBuf {
    if private.extension().is_some_and(|e| e == "key") {
        private.with_extension("pub")
    } else {
        let mut name = private.as_os_str().to_owned();
        name.push(".pub");
        name.into()
    }
}

/// The current UTC time as `2006-01-02T15:04:05Z`, as age-keygen writes it.
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_file_goes_beside_the_private_one() {
        assert_eq!(
            public_path(Path::new("keys/server.key")),
            Path::new("keys/server.pub")
        );
        assert_eq!(public_path(Path::new("server")), Path::new("server.pub"));
        assert_eq!(public_path(Path::new("a.txt")), Path::new("a.txt.pub"));
    }

    #[test]
    fn client_names_are_plain_words() {
        for good in [
            "alice",
            "a",
            "alice.smith@example.com",
            "build_bot-2",
            "a..b",
        ] {
            assert!(is_client_name(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../evil",
            "a/b",
            ".hidden",
            "-x",
            "a b",
            "a,b",
            "caf\u{e9}",
        ] {
            assert!(!is_client_name(bad), "{bad}");
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_783), (2026, 11, 26));
    }
}
