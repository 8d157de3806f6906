//! How text from outside appears in messages: escaped, so that it cannot forge a line or
//! drive a terminal, and never a secret.
//!
//! File names are chosen by whoever wrote the files (on a server, the uploader), principals
//! and stanzas come from files, and a key argument may be a secret pasted in the wrong
//! place. The CLI writes every message line through [`line`]; names go through [`path`]
//! first, so that bytes that are not UTF-8 are shown exactly; rejected key text goes
//! through [`value`].
//!
//! Escaping: a newline is `\n`, a carriage return `\r`, a tab `\t`; other C0 controls, DEL,
//! C1 controls and bytes that are not UTF-8 are `\xNN`; the invisible characters that move
//! lines or reorder text (U+2028, U+2029, the bidirectional overrides and isolates) are
//! `\u{NNNN}`. Spaces, printable non-ASCII characters and backslashes are kept, so escaping
//! an escaped text changes nothing.
//!
//! Secrets: an age secret key (`AGE-SECRET-KEY-1...`, `AGE-SECRET-KEY-PQ-1...`), a plugin
//! identity (`AGE-PLUGIN-...`), a PEM private key block and the first line of an OpenSSH
//! private key's body are replaced by their kind.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A kind of secret, found in text by its prefix (ASCII, matched in any case).
struct Secret {
    prefix: &'static str,
    kind: &'static str,
    /// What follows the prefix.
    body: Body,
}

/// How far a secret goes after its prefix.
#[derive(Clone, Copy)]
enum Body {
    /// Bech32 characters.
    Bech32,
    /// A plugin's name, its dash, the Bech32 separator `1` and Bech32 characters: a program
    /// named `age-plugin-NAME` holds no key.
    PluginBech32,
    /// Base64 characters.
    Base64,
    /// Through the `-----END ...-----` line.
    PemBlock,
}

impl Body {
    /// Whether `after` (the text after the prefix) starts with key material.
    fn holds_key(self, after: &str) -> bool {
        match self {
            Body::Bech32 | Body::Base64 => self.len(after) >= MIN_BODY,
            Body::PluginBech32 => {
                let run = &after[..self.len(after)];
                run.find("-1")
                    .is_some_and(|at| run.len() - at - 2 >= MIN_BODY)
            }
            Body::PemBlock => Body::Base64.len(after.trim_start()) >= MIN_BODY,
        }
    }

    fn len(self, after: &str) -> usize {
        let count = |f: fn(&u8) -> bool| after.bytes().take_while(f).count();
        match self {
            Body::Bech32 | Body::PluginBech32 => count(|b| b.is_ascii_alphanumeric() || *b == b'-'),
            Body::Base64 => count(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')),
            Body::PemBlock => pem_block_len(after),
        }
    }
}

/// Longest prefix first: the post-quantum prefix starts like the classical one.
const SECRETS: &[Secret] = &[
    Secret {
        prefix: "AGE-SECRET-KEY-PQ-1",
        kind: "post-quantum secret key (AGE-SECRET-KEY-PQ-1...)",
        body: Body::Bech32,
    },
    Secret {
        prefix: "AGE-SECRET-KEY-",
        kind: "secret key (AGE-SECRET-KEY-1...)",
        body: Body::Bech32,
    },
    Secret {
        prefix: "AGE-PLUGIN-",
        kind: "plugin identity (AGE-PLUGIN-...)",
        body: Body::PluginBech32,
    },
    Secret {
        prefix: "-----BEGIN OPENSSH PRIVATE KEY-----",
        kind: "private key (-----BEGIN OPENSSH PRIVATE KEY-----)",
        body: Body::PemBlock,
    },
    Secret {
        prefix: "-----BEGIN RSA PRIVATE KEY-----",
        kind: "private key (-----BEGIN RSA PRIVATE KEY-----)",
        body: Body::PemBlock,
    },
    Secret {
        prefix: "-----BEGIN EC PRIVATE KEY-----",
        kind: "private key (-----BEGIN EC PRIVATE KEY-----)",
        body: Body::PemBlock,
    },
    Secret {
        prefix: "-----BEGIN ENCRYPTED PRIVATE KEY-----",
        kind: "private key (-----BEGIN ENCRYPTED PRIVATE KEY-----)",
        body: Body::PemBlock,
    },
    Secret {
        prefix: "-----BEGIN PRIVATE KEY-----",
        kind: "private key (-----BEGIN PRIVATE KEY-----)",
        body: Body::PemBlock,
    },
    // `openssh-key-v1\0` in base64: the first line of an OpenSSH private key's body.
    Secret {
        prefix: "b3BlbnNzaC1rZXktdjE",
        kind: "line of a private key (-----BEGIN OPENSSH PRIVATE KEY-----)",
        body: Body::Base64,
    },
];

/// Characters of key material that must follow a prefix for it to be a secret: a prefix
/// alone, as in a message naming a kind ("AGE-SECRET-KEY-1..."), is none.
const MIN_BODY: usize = 8;

/// The first secret in `text`: where it starts, and its kind.
fn find_secret(text: &str) -> Option<(usize, &'static Secret)> {
    let bytes = text.as_bytes();
    (0..bytes.len()).find_map(|at| {
        SECRETS.iter().find_map(|secret| {
            let prefix = secret.prefix.as_bytes();
            let here = bytes.get(at..at + prefix.len())?;
            // Only then is `at + prefix.len()` a character boundary (the prefix is ASCII).
            let found = here.eq_ignore_ascii_case(prefix)
                && secret.body.holds_key(&text[at + prefix.len()..]);
            found.then_some((at, secret))
        })
    })
}

/// What kind of secret `text` holds, if it holds one: "secret key (AGE-SECRET-KEY-1...)",
/// "private key (-----BEGIN OPENSSH PRIVATE KEY-----)", and so on, for "this is a ...".
pub(crate) fn secret_kind(text: &str) -> Option<&'static str> {
    find_secret(text).map(|(_, secret)| secret.kind)
}

/// `text` with every secret in it replaced by `<KIND, not shown>`. A PEM block is replaced
/// up to its end line (or the end of the text), other secrets as far as their characters go.
#[cfg_attr(not(feature = "cli"), allow(dead_code))] // messages of the CLI
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    let mut rest = text;
    let mut out = String::new();
    while let Some((at, secret)) = find_secret(rest) {
        out.push_str(&rest[..at]);
        let _ = write!(out, "<{}, not shown>", secret.kind);
        let after = &rest[at + secret.prefix.len()..];
        rest = &after[secret.body.len(after)..];
    }
    if rest.len() == text.len() {
        return Cow::Borrowed(text);
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// How far the rest of a PEM block goes: through its `-----END ...-----` line, or to the end.
fn pem_block_len(after: &str) -> usize {
    let Some(end) = after.find("-----END ") else {
        return after.len();
    };
    let tail = &after[end + "-----END ".len()..];
    match tail.find("-----") {
        // With the line end after it, if any.
        Some(close) => {
            let len = end + "-----END ".len() + close + "-----".len();
            len + usize::from(after[len..].starts_with('\n'))
        }
        None => after.len(),
    }
}

/// `bytes` escaped (see the module's documentation); bytes that are not UTF-8 as `\xNN`.
pub(crate) fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                '\u{2028}'
                | '\u{2029}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}' => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// A file name for a message: its exact bytes, escaped, any secret in it replaced.
#[cfg_attr(not(feature = "cli"), allow(dead_code))] // messages of the CLI
pub(crate) fn path(path: &Path) -> String {
    let escaped = escape(path.as_os_str().as_bytes());
    redact(&escaped).into_owned()
}

/// One line of a message, as written to the terminal or a log: secrets replaced, then
/// escaped, so that it stays one line whatever text went into it.
#[cfg_attr(not(feature = "cli"), allow(dead_code))] // messages of the CLI
pub(crate) fn line(text: &str) -> String {
    escape(redact(text).as_bytes())
}

/// A rejected value (a key, a recipient, an option) as a message shows it: a secret by its
/// kind only, anything else escaped and cut to 80 characters.
pub(crate) fn value(text: &str) -> String {
    if let Some(kind) = secret_kind(text) {
        return format!("<{kind}, not shown>");
    }
    let escaped = escape(text.as_bytes());
    match escaped.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &escaped[..cut]),
        None => escaped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn control_characters_and_invalid_bytes_are_escaped_and_the_rest_kept() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain name.age", "plain name.age"),
            (
                b"a\nunseal: all files verified",
                r"a\nunseal: all files verified",
            ),
            (b"\x1b[2J\x1b[H", r"\x1b[2J\x1b[H"),
            (
                b"cr\r tab\t bell\x07 del\x7f nul\0",
                r"cr\r tab\t bell\x07 del\x7f nul\x00",
            ),
            ("c1 \u{9b}31m".as_bytes(), r"c1 \x9b31m"),
            (b"raw \xff\xfe end", r"raw \xff\xfe end"),
            ("café 日本 \\n".as_bytes(), "café 日本 \\n"),
            (
                "ltr\u{202e}txt.exe\u{2028}".as_bytes(),
                r"ltr\u{202e}txt.exe\u{2028}",
            ),
        ];
        for (input, want) in cases {
            let escaped = escape(input);
            assert_eq!(escaped, *want);
            // Escaping an escaped text changes nothing.
            assert_eq!(escape(escaped.as_bytes()), escaped);
            assert!(!escaped.chars().any(char::is_control), "{escaped}");
        }
        let name = Path::new(OsStr::from_bytes(b"in/\xff\n.age"));
        assert_eq!(path(name), r"in/\xff\n.age");
        let name = Path::new(OsStr::from_bytes(
            "c1 \u{9b}31m é-----BEGIN PRIVATE KEY-----".as_bytes(),
        ));
        assert_eq!(path(name), r"c1 \x9b31m é-----BEGIN PRIVATE KEY-----");
    }

    #[test]
    fn secrets_are_named_by_kind_and_never_shown() {
        let age = "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSXYZ";
        assert_eq!(secret_kind(age), Some("secret key (AGE-SECRET-KEY-1...)"));
        assert_eq!(
            secret_kind(&age.to_lowercase()),
            Some("secret key (AGE-SECRET-KEY-1...)")
        );
        assert_eq!(
            secret_kind("AGE-SECRET-KEY-PQ-1ABCDEFGHJK"),
            Some("post-quantum secret key (AGE-SECRET-KEY-PQ-1...)")
        );
        assert_eq!(
            secret_kind("AGE-PLUGIN-YUBIKEY-1ABCDEFGHJK"),
            Some("plugin identity (AGE-PLUGIN-...)")
        );
        // A plugin's program is named like its identities begin.
        assert_eq!(
            redact("cannot start /usr/bin/age-plugin-yubikey-agent: not found"),
            "cannot start /usr/bin/age-plugin-yubikey-agent: not found"
        );
        assert_eq!(secret_kind("age1qyqszqgpqyqs"), None);
        // A kind named in a message is no secret.
        let message = "this is a secret key (AGE-SECRET-KEY-1...), not a private key \
(-----BEGIN OPENSSH PRIVATE KEY-----)";
        assert_eq!(secret_kind(message), None);
        assert!(matches!(redact(message), Cow::Borrowed(_)));
        assert_eq!(secret_kind("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"), None);

        let line = format!("seal: error: {age}: no such file or directory");
        assert_eq!(
            redact(&line),
            "seal: error: <secret key (AGE-SECRET-KEY-1...), not shown>: no such file or directory"
        );
        let block = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\nQyNTUxOQ\n\
-----END OPENSSH PRIVATE KEY-----\n";
        let said = format!("error: unexpected argument '{block}' found");
        assert_eq!(
            redact(&said),
            "error: unexpected argument '<private key (-----BEGIN OPENSSH PRIVATE KEY-----), \
not shown>' found"
        );
        assert_eq!(
            value("b3BlbnNzaC1rZXktdjEAAAAABG5vbmU"),
            "<line of a private key (-----BEGIN OPENSSH PRIVATE KEY-----), not shown>"
        );
        assert!(matches!(redact("nothing secret"), Cow::Borrowed(_)));
    }

    #[test]
    fn values_are_escaped_and_shortened() {
        assert_eq!(value("age1bogus"), "age1bogus");
        assert_eq!(value("a\x1b[31mb"), r"a\x1b[31mb");
        let long = "x".repeat(200);
        assert_eq!(value(&long), format!("{}...", "x".repeat(80)));
    }
}
