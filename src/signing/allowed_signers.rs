//! Which clients may sign: OpenSSH's `allowed_signers` file, as `ssh-keygen -Y verify -f`
//! reads it (see "ALLOWED SIGNERS" in ssh-keygen(1)).
//!
//! One signer per line: principals (comma-separated, the names reported for the signer),
//! optional options, and the public key, then an optional comment.
//!
//! ```text
//! # comment lines and blank lines are ignored
//! alice ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI...
//! bob,bob@example.com namespaces="seal,file",valid-before="20271231Z" ssh-ed25519 AAAA... bob's laptop
//! ```
//!
//! Options (names in any case, as OpenSSH reads them):
//! - `namespaces="PATTERN,..."`: the key signs only for matching namespaces (`*`, `?`, `!`
//!   as in OpenSSH patterns); seal signatures need `seal` to match.
//! - `valid-after="TIME"`, `valid-before="TIME"`: the key is valid from `valid-after`
//!   (inclusive) until `valid-before` (exclusive). TIME is `YYYYMMDD[HHMM[SS]]Z`. OpenSSH
//!   also reads times without the `Z` as local time; this library does not look at the
//!   machine's time zone, so it refuses such a line instead of guessing.
//! - `cert-authority`: the key is a certificate authority, which vouches only for
//!   certificates signed by it, never for signatures by the key itself. seal signatures carry
//!   plain keys, so such a line is parsed and then never matches.
//!
//! Any other option is an error, as in OpenSSH. Lines with keys of types seal does not
//! check signatures of (ECDSA, security keys, DSA, certificates) are kept and never match, so
//! one list can serve `ssh-keygen` and seal alike.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::shown;
use crate::signing::sshsig::{SignerKey, NAMESPACE};

/// A parsed allowed-signers list.
#[derive(Debug, Clone)]
pub struct AllowedSigners {
    entries: Vec<Entry>,
}

/// One line of the list.
#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    principals: Vec<String>,
    namespaces: Option<Vec<String>>,
    valid_after: Option<u64>,
    valid_before: Option<u64>,
    cert_authority: bool,
    /// `None` for a key of a type seal does not verify.
    key: Option<SignerKey>,
}

/// A line of an allowed-signers file that cannot be read. The file is refused as a whole:
/// a policy that is half understood is not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("allowed signers line {line}: {reason}")]
#[non_exhaustive]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// A signer the list accepts, for this namespace and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// The principals of the accepting line, as written there.
    pub principals: Vec<String>,
    /// Its 1-based line number.
    pub line: usize,
}

/// Why the list does not accept a signer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No line names this key (cert-authority lines and unsupported key types never do).
    #[error("signer {0} is not in the allowed signers list")]
    UnknownSigner(String),
    /// The key is listed, but not for the `seal` namespace.
    #[error("signer {principals} (line {line}) is not allowed to sign for namespace \"seal\"")]
    Namespace {
        /// The principals of the line, comma-separated.
        principals: String,
        /// Its 1-based line number.
        line: usize,
    },
    /// The key is listed, but `valid-before` has passed.
    #[error("signer {principals} (line {line}) expired: valid-before has passed")]
    Expired {
        /// The principals of the line, comma-separated.
        principals: String,
        /// Its 1-based line number.
        line: usize,
    },
    /// The key is listed, but `valid-after` has not come yet.
    #[error("signer {principals} (line {line}) is not valid yet: valid-after is in the future")]
    NotYetValid {
        /// The principals of the line, comma-separated.
        principals: String,
        /// Its 1-based line number.
        line: usize,
    },
}

impl AllowedSigners {
    /// Parses the text of an allowed-signers file.
    pub fn parse(text: &str) -> Result<AllowedSigners, ParseError> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let error = |reason: String| ParseError { line, reason };
            entries.push(parse_line(line, trimmed).map_err(error)?);
        }
        Ok(AllowedSigners { entries })
    }

    /// Whether the list accepts `key` as a signer of seal files at time `now`, and under
    /// which principals. The first line that accepts wins; if lines name the key but none
    /// accepts, the refusal is that of the first such line.
    pub fn check(&self, key: &SignerKey, now: SystemTime) -> Result<Allowed, Refusal> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut first_refusal = None;
        for entry in &self.entries {
            if entry.cert_authority || entry.key.as_ref() != Some(key) {
                continue;
            }
            let principals = entry.principals.join(",");
            let line = entry.line;
            let refusal = if !namespace_allowed(entry.namespaces.as_deref()) {
                Some(Refusal::Namespace { principals, line })
            } else if entry.valid_after.is_some_and(|t| now < t) {
                Some(Refusal::NotYetValid { principals, line })
            } else if entry.valid_before.is_some_and(|t| now >= t) {
                Some(Refusal::Expired { principals, line })
            } else {
                None
            };
            match refusal {
                None => {
                    return Ok(Allowed {
                        principals: entry.principals.clone(),
                        line,
                    })
                }
                Some(r) => {
                    first_refusal.get_or_insert(r);
                }
            }
        }
        Err(first_refusal.unwrap_or_else(|| Refusal::UnknownSigner(key.fingerprint())))
    }

    /// The number of signer lines (comments and blank lines not counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list has no signer lines at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn parse_line(line: usize, text: &str) -> Result<Entry, String> {
    let mut fields = Fields(text);
    let principals_field = fields.next()?.ok_or("no principals")?;
    let principals: Vec<String> = unquote(principals_field)?
        .split(',')
        .map(str::to_string)
        .collect();
    if principals.iter().any(|p| p.is_empty()) {
        return Err("empty principal".into());
    }

    let mut entry = Entry {
        line,
        principals,
        namespaces: None,
        valid_after: None,
        valid_before: None,
        cert_authority: false,
        key: None,
    };
    let mut key_type = fields.next()?.ok_or("no key")?;
    // Key type names never hold `=` or `,`, and `cert-authority` is the one option without a
    // value: anything else in this place is the options field.
    if key_type.contains(['=', ',', '"']) || key_type.eq_ignore_ascii_case("cert-authority") {
        parse_options(&mut entry, key_type)?;
        key_type = fields.next()?.ok_or("no key after the options")?;
    }
    let key_body = fields.next()?.ok_or("key type without a key")?;
    // Whatever follows is a comment.

    // Key types OpenSSH allows in the list that seal does not verify signatures of.
    if crate::keys::ssh::OTHER_TYPES.contains(&key_type)
        || key_type.ends_with("-cert-v01@openssh.com")
    {
        return Ok(entry);
    }
    let key = SignerKey::from_openssh(&format!("{key_type} {key_body}"))
        .map_err(|_| format!("not a valid {} public key", shown::value(key_type)))?;
    if key.algorithm() != key_type {
        return Err(format!(
            "key type {} does not match the key",
            shown::value(key_type)
        ));
    }
    entry.key = Some(key);
    Ok(entry)
}

/// The options field: comma-separated `name` or `name="value"`, names in any case.
fn parse_options(entry: &mut Entry, field: &str) -> Result<(), String> {
    for option in split_unquoted(field, ',') {
        let (name, value) = match option.split_once('=') {
            Some((n, v)) => (n, Some(unquote(v)?)),
            None => (option, None),
        };
        let name = name.to_ascii_lowercase();
        let value_of = |what: &str| value.clone().ok_or(format!("{what} needs a value"));
        match name.as_str() {
            "cert-authority" if value.is_none() => {
                set_once(&mut entry.cert_authority, true, &name)?;
            }
            "namespaces" => {
                let list = value_of("namespaces")?;
                let patterns = list.split(',').map(str::to_string).collect::<Vec<_>>();
                if patterns.iter().any(|p| p.is_empty()) {
                    return Err("empty namespace pattern".into());
                }
                set_once(&mut entry.namespaces, Some(patterns), &name)?;
            }
            "valid-after" => {
                let t = parse_time(&value_of("valid-after")?)?;
                set_once(&mut entry.valid_after, Some(t), &name)?;
            }
            "valid-before" => {
                let t = parse_time(&value_of("valid-before")?)?;
                set_once(&mut entry.valid_before, Some(t), &name)?;
            }
            _ => return Err(format!("unknown option \"{}\"", shown::value(option))),
        }
    }
    Ok(())
}

/// Sets an option, refusing a second occurrence (which OpenSSH also refuses).
fn set_once<T: Default + PartialEq>(slot: &mut T, value: T, name: &str) -> Result<(), String> {
    if *slot != T::default() {
        return Err(format!("option {name} given twice"));
    }
    *slot = value;
    Ok(())
}

/// Whether the `namespaces=` patterns (absent: any namespace) let the key sign for seal:
/// some pattern matches and no negated (`!`) pattern does.
fn namespace_allowed(patterns: Option<&[String]>) -> bool {
    let Some(patterns) = patterns else {
        return true;
    };
    let mut matched = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if wildcard_match(negated, NAMESPACE) => return false,
            Some(_) => {}
            None => matched |= wildcard_match(pattern, NAMESPACE),
        }
    }
    matched
}

/// OpenSSH pattern matching: `*` any run of characters, `?` one character, else literal.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// `YYYYMMDD[HHMM[SS]]Z` as seconds since the Unix epoch.
fn parse_time(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "invalid time \"{}\" (expected YYYYMMDD[HHMM[SS]]Z)",
            shown::value(text)
        )
    };
    let Some(digits) = text.strip_suffix(['Z', 'z']) else {
        return Err(format!(
            "time \"{}\" has no Z: seal reads only UTC times (YYYYMMDD[HHMM[SS]]Z)",
            shown::value(text)
        ));
    };
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> u64 {
        digits.get(range).map_or(0, |s| s.parse().unwrap_or(0))
    };
    let (year, month, day) = (num(0..4), num(4..6), num(6..8));
    let (hour, minute, second) = (num(8..10), num(10..12), num(12..14));
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    let days = days_since_epoch(year, month, day);
    Ok(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn is_leap(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date (year 1970 or later).
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    let years: u64 = (1970..year)
        .map(|y| if is_leap(y) { 366 } else { 365 })
        .sum();
    let months: u64 = (1..month).map(|m| days_in_month(year, m)).sum();
    years + months + day - 1
}

/// Whitespace-separated fields of a line, where a double-quoted part may hold spaces.
struct Fields<'a>(&'a str);

impl<'a> Fields<'a> {
    fn next(&mut self) -> Result<Option<&'a str>, String> {
        let rest = self.0.trim_start();
        if rest.is_empty() {
            return Ok(None);
        }
        let mut quoted = false;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '"' => quoted = !quoted,
                c if c.is_whitespace() && !quoted => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        if quoted {
            return Err("unterminated quote".into());
        }
        self.0 = &rest[end..];
        Ok(Some(&rest[..end]))
    }
}

/// `text` split at `sep` outside double quotes.
fn split_unquoted(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut start) = (false, 0);
    for (i, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&text[start..i]);
            start = i + 1;
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A value without its surrounding double quotes; quotes elsewhere are an error.
fn unquote(value: &str) -> Result<String, String> {
    let inner = match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').ok_or("unterminated quote")?,
        None => value,
    };
    if inner.contains('"') {
        return Err(format!("stray quote in \"{}\"", shown::value(value)));
    }
    Ok(inner.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::sshsig::SigningKey;
    use std::time::Duration;

    fn at(text: &str) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(parse_time(text).unwrap())
    }

    fn key() -> SignerKey {
        SigningKey::generate_ed25519("").public_key()
    }

    fn list(lines: &[String]) -> Result<AllowedSigners, ParseError> {
        AllowedSigners::parse(&lines.join("\n"))
    }

    #[test]
    fn times_are_utc_and_checked() {
        assert_eq!(parse_time("19700101Z"), Ok(0));
        assert_eq!(parse_time("19700102000001Z"), Ok(86_401));
        assert_eq!(parse_time("20000301Z"), Ok(951_868_800));
        assert_eq!(parse_time("202402291230Z"), Ok(1_709_209_800));
        for bad in [
            "20230229Z",
            "20241301Z",
            "2024010Z",
            "20240101",
            "2024010112Z",
            "20240101246000Z",
            "19691231Z",
            "2024-01-01Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn wildcards() {
        for (pattern, matches) in [
            ("seal", true),
            ("*", true),
            ("s*", true),
            ("s??l", true),
            ("se*al", true),
            ("*l", true),
            ("sea", false),
            ("seal?", false),
            ("file", false),
            ("", false),
        ] {
            assert_eq!(wildcard_match(pattern, "seal"), matches, "{pattern}");
        }
        let allowed = |p: &[&str]| {
            namespace_allowed(Some(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()))
        };
        assert!(namespace_allowed(None));
        assert!(allowed(&["file", "seal"]));
        assert!(!allowed(&["file"]));
        assert!(!allowed(&["*", "!seal"]));
        assert!(!allowed(&["!seal", "*"]));
        assert!(!allowed(&["!file"]));
        assert!(allowed(&["!file", "s*"]));
    }

    #[test]
    fn a_listed_key_is_accepted_with_its_principals() {
        let (alice, bob) = (key(), key());
        let signers = list(&[
            "# clients".into(),
            String::new(),
            format!("alice,alice@example.com {alice} laptop key"),
            format!("  \"bob\"\t{bob}"),
        ])
        .unwrap();
        assert_eq!(signers.len(), 2);
        let now = SystemTime::now();
        let ok = signers.check(&alice, now).unwrap();
        assert_eq!(ok.principals, ["alice", "alice@example.com"]);
        assert_eq!(ok.line, 3);
        assert_eq!(signers.check(&bob, now).unwrap().principals, ["bob"]);
        let stranger = key();
        assert_eq!(
            signers.check(&stranger, now),
            Err(Refusal::UnknownSigner(stranger.fingerprint()))
        );
    }

    #[test]
    fn validity_windows_and_namespaces() {
        let alice = key();
        let signers = list(&[format!(
            "alice valid-after=\"20250101Z\",VALID-BEFORE=\"20260101Z\",namespaces=\"file,seal\" {alice}"
        )])
        .unwrap();
        let principals = "alice".to_string();
        assert_eq!(
            signers.check(&alice, at("20241231235959Z")),
            Err(Refusal::NotYetValid {
                principals: principals.clone(),
                line: 1
            })
        );
        assert!(signers.check(&alice, at("20250101Z")).is_ok());
        assert!(signers.check(&alice, at("20251231235959Z")).is_ok());
        assert_eq!(
            signers.check(&alice, at("20260101Z")),
            Err(Refusal::Expired {
                principals: principals.clone(),
                line: 1
            })
        );

        let signers = list(&[format!("alice namespaces=\"file,git\" {alice}")]).unwrap();
        assert_eq!(
            signers.check(&alice, SystemTime::now()),
            Err(Refusal::Namespace {
                principals,
                line: 1
            })
        );

        // A later line for the same key can accept what an earlier one refuses.
        let signers = list(&[
            format!("old valid-before=\"20200101Z\" {alice}"),
            format!("alice {alice}"),
        ])
        .unwrap();
        assert_eq!(signers.check(&alice, SystemTime::now()).unwrap().line, 2);
    }

    #[test]
    fn cert_authority_and_other_key_types_never_match() {
        let alice = key();
        let signers = list(&[
            format!("*@example.com cert-authority {alice}"),
            "carol ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY= c".into(),
        ])
        .unwrap();
        assert!(matches!(
            signers.check(&alice, SystemTime::now()),
            Err(Refusal::UnknownSigner(_))
        ));
    }

    #[test]
    fn malformed_lines_are_refused_with_their_number() {
        let alice = key();
        let body = alice.to_string();
        let (_, b64) = body.split_once(' ').unwrap();
        for (line, why) in [
            ("alice".to_string(), "no key"),
            ("alice ssh-ed25519".to_string(), "key type without a key"),
            (format!("alice ssh-ed25519 {}", &b64[..20]), "not a valid"),
            (format!("alice ssh-rsa {b64}"), ""),
            (format!("alice restrict {alice}"), "not a valid"),
            (format!("alice foo=\"bar\" {alice}"), "unknown option"),
            (format!("alice namespaces {alice}"), ""),
            (
                format!("alice namespaces=\"seal {alice}"),
                "unterminated quote",
            ),
            (format!("alice valid-after=\"20250101\" {alice}"), "no Z"),
            (
                format!("alice valid-after=\"20250101Z\",valid-after=\"20250101Z\" {alice}"),
                "twice",
            ),
            (format!(",alice {alice}"), "empty principal"),
            (format!("alice namespaces=\"\" {alice}"), "empty namespace"),
        ] {
            let text = format!("# header\n{line}\n");
            let err = AllowedSigners::parse(&text).expect_err(&line);
            assert_eq!(err.line, 2, "{line}");
            assert!(err.reason.contains(why), "{line}: {err}");
        }
    }
}
