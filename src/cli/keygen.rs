//! `seal-keygen`: make a server key pair, or print the public half of one.

use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use clap::Parser;
use zeroize::Zeroizing;

use super::failure::{ExitCode, Failure};
use super::run;
use crate::keys;
use crate::{pq, x25519};

const EXAMPLES: &str = "\
Examples:
  seal-keygen -o server.key       writes server.key (0600) and server.pub
  seal-keygen --pq -o server.key  the same, a post-quantum key (age1pq1...)
  seal-keygen -y server.key       prints the public key
  seal-keygen > key.txt           prints a new key (public key on stderr)";

/// Make server key pairs for seal and unseal (age X25519 keys, or post-quantum hybrid keys).
#[derive(Parser, Debug)]
#[command(name = "seal-keygen", version, after_help = EXAMPLES)]
pub struct Args {
    /// Write the private key here (created 0600, never over an existing file) and the public
    /// key beside it (NAME.pub for NAME.key, else OUTPUT.pub).
    #[arg(short, long, value_name = "OUTPUT", conflicts_with = "public")]
    pub output: Option<PathBuf>,

    /// Print the public key of each private key in this identity file (`-` for standard input).
    #[arg(short = 'y', value_name = "KEY")]
    pub public: Option<PathBuf>,

    /// Make a post-quantum key: ML-KEM-768 + X25519 hybrid (age's `age1pq1...` keys, which Go
    /// age 1.3 and later reads). Files sealed to it stay safe from a future quantum computer.
    #[arg(long, conflicts_with = "public")]
    pub pq: bool,
}

/// The `seal-keygen` binary.
pub fn main() -> std::process::ExitCode {
    let args = Args::parse();
    run("seal-keygen", || keygen(args))
}

/// Runs `seal-keygen` with parsed arguments.
pub fn keygen(args: Args) -> Result<(), Failure> {
    if let Some(path) = args.public {
        return print_public(&path);
    }
    let created = now_rfc3339();
    let (public, secret) = if args.pq {
        let identity = pq::Identity::generate();
        (
            identity.to_public().to_string(),
            identity.to_secret_string(),
        )
    } else {
        let identity = x25519::Identity::generate();
        (
            identity.to_public().to_string(),
            identity.to_secret_string(),
        )
    };
    let text = keys::key_file_text(&public, &secret, &created);
    match args.output {
        Some(path) => {
            let public_path = public_path(&path);
            for p in [&path, &public_path] {
                if p.symlink_metadata().is_ok() {
                    return Err(Failure::new(
                        ExitCode::Io,
                        "already exists; keys are never overwritten",
                    )
                    .about(p));
                }
            }
            keys::write_new_private_file(&path, &text).map_err(|e| Failure::io(&path, &e))?;
            std::fs::write(&public_path, format!("{public}\n"))
                .map_err(|e| Failure::io(&public_path, &e))?;
            eprintln!(
                "seal-keygen: wrote {} (private: keep it on the server) and {} (public: give it to users)",
                path.display(),
                public_path.display()
            );
            eprintln!("Public key: {public}");
        }
        None => {
            if !io::stdout().is_terminal() {
                eprintln!("Public key: {public}");
            }
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| Failure::io("standard output".as_ref(), &e))?;
        }
    }
    Ok(())
}

fn print_public(path: &Path) -> Result<(), Failure> {
    let mut text = Zeroizing::new(String::new());
    let read = if path.as_os_str() == "-" {
        io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| Failure::io(path, &e))?;
    let public_keys =
        keys::public_keys_of_identity_file(&text).map_err(|e| Failure::from(e).about(path))?;
    for public in public_keys {
        println!("{public}");
    }
    Ok(())
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
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_783), (2026, 11, 26));
    }
}
