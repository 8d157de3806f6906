//! The age v1 header: recipient stanzas and the MAC line, parsed strictly and written canonically.
//!
//! ```text
//! age-encryption.org/v1
//! -> X25519 <base64 share>
//! <base64 body, 64 columns per line, the last line shorter (possibly empty)>
//! --- <base64 HMAC-SHA256 of everything above, up to and including "---">
//! ```
//!
//! Parsing is non-malleable: for any input it accepts, [`Header::to_bytes`] gives back exactly
//! the bytes it read, so the MAC covers the header as written.

// The header is this module; the payload's chunks and the ASCII armor are its two parts.
pub mod armor;
pub mod stream;

use std::io::BufRead;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

use crate::error::DecryptError;

/// The first line of every age v1 file, without its newline.
pub(crate) const VERSION_LINE: &str = "age-encryption.org/v1";
const VERSION_PREFIX: &str = "age-encryption.org/";
const STANZA_PREFIX: &[u8] = b"-> ";
const MAC_PREFIX: &[u8] = b"---";
const COLUMNS: usize = 64;

/// Largest header accepted, in bytes. A hostile file cannot make us buffer more.
pub(crate) const MAX_HEADER_SIZE: usize = 1 << 20;
/// Most stanzas accepted in one header; each may cost an unwrap attempt per identity.
pub(crate) const MAX_STANZAS: usize = 4096;
/// The stanza types that age v1 wants alone in a header: a passphrase's. Anyone who knows the
/// passphrase could otherwise take the other stanzas out unnoticed, so every reader refuses a
/// header where one has company, whatever key it holds (age's test vectors count it a header
/// failure). Sealing keeps the rule through [`crate::Recipient::must_be_alone`].
const ALONE: &[&str] = &["scrypt"];

/// One recipient stanza: a type, its arguments and a binary body.
#[derive(Clone, PartialEq, Eq)]
pub struct Stanza {
    /// The stanza type, such as `X25519`.
    pub kind: String,
    /// The arguments after the type.
    pub args: Vec<String>,
    /// The decoded body.
    pub body: Vec<u8>,
}

// Bodies hold wrapped (encrypted) file keys only, but there is no reason to print them.
impl std::fmt::Debug for Stanza {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stanza")
            .field("kind", &self.kind)
            .field("args", &self.args)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A parsed header and the exact bytes it was read from.
#[derive(Debug, Clone)]
pub struct Header {
    /// The recipient stanzas, in file order.
    pub stanzas: Vec<Stanza>,
    /// The header MAC.
    pub mac: [u8; 32],
    /// The header bytes, up to and including the final newline.
    encoded: Vec<u8>,
}

impl Header {
    /// Builds the header for `stanzas`, with the MAC computed by `mac_of` over the MAC'd part.
    pub fn new(stanzas: Vec<Stanza>, mac_of: impl FnOnce(&[u8]) -> [u8; 32]) -> Header {
        let mut encoded = Vec::with_capacity(128 * stanzas.len() + 64);
        encoded.extend_from_slice(VERSION_LINE.as_bytes());
        encoded.push(b'\n');
        for stanza in &stanzas {
            write_stanza(&mut encoded, stanza);
        }
        encoded.extend_from_slice(MAC_PREFIX);
        let mac = mac_of(&encoded);
        encoded.push(b' ');
        encoded.extend_from_slice(STANDARD_NO_PAD.encode(mac).as_bytes());
        encoded.push(b'\n');
        Header {
            stanzas,
            mac,
            encoded,
        }
    }

    /// The header as written in the file.
    pub fn to_bytes(&self) -> &[u8] {
        &self.encoded
    }

    /// The bytes the header MAC covers: everything up to and including `---`.
    pub(crate) fn mac_input(&self) -> &[u8] {
        // The encoded header ends with " " + 43 base64 characters + "\n".
        &self.encoded[..self.encoded.len() - 45]
    }

    /// Refuses a header in which a stanza that age v1 wants alone has company.
    pub(crate) fn check_alone(&self) -> Result<(), DecryptError> {
        let alone = |s: &Stanza| ALONE.contains(&s.kind.as_str());
        match self.stanzas.len() > 1 && self.stanzas.iter().any(alone) {
            true => Err(DecryptError::header(
                "a passphrase (scrypt) stanza must be the only stanza",
            )),
            false => Ok(()),
        }
    }

    /// Parses the header at the start of `input`; returns it and its length in bytes.
    pub fn parse(input: &[u8]) -> Result<(Header, usize), DecryptError> {
        let mut lines = Lines {
            rest: input,
            pos: 0,
        };
        let first = lines.next().ok_or_else(|| not_age_or_truncated(input))?;
        check_version(first)?;

        let mut stanzas = Vec::new();
        loop {
            let line = lines
                .next()
                .ok_or_else(|| DecryptError::header("the header ends before its MAC line"))?;
            // The same cap as `read`: a mapped file is not buffered, but a header this large
            // would still be decoded into memory, stanza by stanza.
            if lines.pos > MAX_HEADER_SIZE {
                return Err(too_large());
            }
            if line.starts_with(STANZA_PREFIX) {
                if stanzas.len() == MAX_STANZAS {
                    return Err(DecryptError::header(format!(
                        "more than {MAX_STANZAS} stanzas"
                    )));
                }
                stanzas.push(parse_stanza(&line[STANZA_PREFIX.len()..], &mut lines)?);
            } else if line.starts_with(MAC_PREFIX) {
                let mac = parse_mac_line(line)?;
                let len = lines.pos;
                let header = Header {
                    stanzas,
                    mac,
                    encoded: input[..len].to_vec(),
                };
                return Ok((header, len));
            } else {
                return Err(DecryptError::header(
                    "expected a recipient stanza or the MAC line",
                ));
            }
        }
    }

    /// Reads a header from a stream, consuming exactly its bytes.
    pub fn read(reader: &mut impl BufRead) -> Result<Header, DecryptError> {
        let mut buf = Vec::with_capacity(256);
        loop {
            let start = buf.len();
            let limit = (MAX_HEADER_SIZE - start) as u64;
            let n = std::io::Read::take(&mut *reader, limit).read_until(b'\n', &mut buf)?;
            let line = &buf[start..];
            if start == 0 && !line.is_empty() {
                // Fail fast on a file that is clearly not age, before buffering a megabyte.
                check_version(line.strip_suffix(b"\n").unwrap_or(line))?;
            }
            if n == 0 || !line.ends_with(b"\n") {
                if buf.len() >= MAX_HEADER_SIZE {
                    return Err(too_large());
                }
                // End of input inside the header: let the parser name what is missing.
                return Header::parse(&buf).map(|(header, _)| header);
            }
            if line.starts_with(MAC_PREFIX) {
                return Header::parse(&buf).map(|(header, _)| header);
            }
        }
    }
}

fn too_large() -> DecryptError {
    DecryptError::header(format!("the header is larger than {MAX_HEADER_SIZE} bytes"))
}

fn not_age_or_truncated(input: &[u8]) -> DecryptError {
    if VERSION_PREFIX.as_bytes().starts_with(input) && !input.is_empty() {
        DecryptError::header("the file ends inside the version line")
    } else if input.starts_with(VERSION_PREFIX.as_bytes()) {
        DecryptError::header("the version line has no newline")
    } else {
        DecryptError::NotAgeFile
    }
}

fn check_version(line: &[u8]) -> Result<(), DecryptError> {
    if line == VERSION_LINE.as_bytes() {
        Ok(())
    } else if let Some(version) = line.strip_prefix(VERSION_PREFIX.as_bytes()) {
        Err(DecryptError::UnsupportedVersion(
            String::from_utf8_lossy(version).into_owned(),
        ))
    } else if VERSION_PREFIX.as_bytes().starts_with(line) && !line.is_empty() {
        Err(DecryptError::header(
            "the file ends inside the version line",
        ))
    } else {
        Err(DecryptError::NotAgeFile)
    }
}

/// Newline-terminated lines, without their newline; a final unterminated piece is not a line.
struct Lines<'a> {
    rest: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let end = self.rest.iter().position(|&b| b == b'\n')?;
        let line = &self.rest[..end];
        self.rest = &self.rest[end + 1..];
        self.pos += end + 1;
        Some(line)
    }
}

fn parse_stanza(args_line: &[u8], lines: &mut Lines<'_>) -> Result<Stanza, DecryptError> {
    let mut args = Vec::new();
    for arg in args_line.split(|&b| b == b' ') {
        if arg.is_empty() {
            return Err(DecryptError::header("empty stanza argument"));
        }
        if !arg.iter().all(|b| (0x21..=0x7e).contains(b)) {
            return Err(DecryptError::header(
                "stanza argument with a character outside printable ASCII",
            ));
        }
        // Checked to be ASCII just above.
        args.push(String::from_utf8_lossy(arg).into_owned());
    }
    let kind = args.remove(0);

    let mut body = Vec::new();
    loop {
        let line = lines
            .next()
            .ok_or_else(|| DecryptError::header("a stanza body has no final short line"))?;
        if line.len() > COLUMNS {
            return Err(DecryptError::header(
                "stanza body line longer than 64 columns",
            ));
        }
        STANDARD_NO_PAD
            .decode_vec(line, &mut body)
            .map_err(|_| DecryptError::header("stanza body is not canonical base64"))?;
        if line.len() < COLUMNS {
            return Ok(Stanza { kind, args, body });
        }
    }
}

/// Parses `bytes`, exactly one stanza as [`write_stanza`] writes it (first line with its
/// `-> ` and every body line, each with its newline), as strictly as in a header.
pub(crate) fn parse_one_stanza(bytes: &[u8]) -> Result<Stanza, DecryptError> {
    let mut lines = Lines {
        rest: bytes,
        pos: 0,
    };
    let first = lines
        .next()
        .and_then(|l| l.strip_prefix(STANZA_PREFIX))
        .ok_or_else(|| DecryptError::header("not a stanza"))?;
    let stanza = parse_stanza(first, &mut lines)?;
    match lines.rest.is_empty() {
        true => Ok(stanza),
        false => Err(DecryptError::header("bytes after the stanza")),
    }
}

fn parse_mac_line(line: &[u8]) -> Result<[u8; 32], DecryptError> {
    let encoded = line
        .strip_prefix(b"--- ")
        .ok_or_else(|| DecryptError::header("malformed MAC line"))?;
    let mut mac = [0u8; 32];
    match STANDARD_NO_PAD.decode_slice(encoded, &mut mac) {
        Ok(32) if encoded.len() == 43 => Ok(mac),
        _ => Err(DecryptError::header(
            "the header MAC is not 32 bytes of canonical base64",
        )),
    }
}

/// Writes `stanza` as in a header: its first line, then its body in lines of 64 columns.
pub(crate) fn write_stanza(out: &mut Vec<u8>, stanza: &Stanza) {
    out.extend_from_slice(STANZA_PREFIX);
    out.extend_from_slice(stanza.kind.as_bytes());
    for arg in &stanza.args {
        out.push(b' ');
        out.extend_from_slice(arg.as_bytes());
    }
    out.push(b'\n');
    let body = STANDARD_NO_PAD.encode(&stanza.body);
    let mut columns = body.as_bytes().chunks(COLUMNS);
    for line in columns.by_ref() {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    // A body whose encoding fills its last line exactly ends with an empty line.
    if body.len().is_multiple_of(COLUMNS) {
        out.push(b'\n');
    }
}

/// Decodes a base64 stanza argument strictly (canonical, unpadded) to exactly `N` bytes.
pub fn decode_arg<const N: usize>(arg: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    match STANDARD_NO_PAD.decode_slice(arg, &mut out) {
        Ok(n) if n == N && arg.len() == (N * 4).div_ceil(3) => Some(out),
        _ => None,
    }
}

/// Encodes bytes as a stanza argument (unpadded base64).
pub fn encode_arg(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stanza(kind: &str, args: &[&str], body_len: usize) -> Stanza {
        Stanza {
            kind: kind.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            body: (0..body_len).map(|i| i as u8).collect(),
        }
    }

    #[test]
    fn a_passphrase_stanza_with_company_is_refused_whatever_the_company() {
        let header = |kinds: &[&str]| {
            let stanzas = kinds.iter().map(|k| stanza(k, &["a"], 16)).collect();
            Header::new(stanzas, |_| [9; 32])
        };
        for alone in [
            &["scrypt"][..],
            &["X25519"],
            &["X25519", "X25519", "ssh-ed25519"],
        ] {
            assert!(header(alone).check_alone().is_ok(), "{alone:?}");
        }
        for mixed in [
            &["X25519", "scrypt"][..],
            &["scrypt", "scrypt"],
            &["scrypt", "x"],
        ] {
            let err = header(mixed).check_alone().unwrap_err();
            assert!(
                matches!(&err, DecryptError::InvalidHeader(m) if m.contains("must be the only stanza")),
                "{mixed:?}: {err}"
            );
        }
    }

    #[test]
    fn serialize_then_parse_is_identity_for_every_body_length_around_the_column_edge() {
        for body_len in [0, 1, 2, 47, 48, 49, 95, 96, 97, 300] {
            let header = Header::new(vec![stanza("X25519", &["abc"], body_len)], |_| [9; 32]);
            let mut bytes = header.to_bytes().to_vec();
            bytes.extend_from_slice(b"payload");
            let (parsed, len) = Header::parse(&bytes).unwrap();
            assert_eq!(len, header.to_bytes().len());
            assert_eq!(parsed.stanzas, header.stanzas);
            assert_eq!(parsed.to_bytes(), header.to_bytes());
            assert_eq!(parsed.mac, [9; 32]);
            assert!(parsed.mac_input().ends_with(b"\n---"));
        }
    }

    #[test]
    fn read_consumes_exactly_the_header() {
        let header = Header::new(vec![stanza("a", &["b", "c"], 33)], |_| [1; 32]);
        let mut bytes = header.to_bytes().to_vec();
        bytes.extend_from_slice(b"\x00rest");
        let mut reader = &bytes[..];
        let parsed = Header::read(&mut reader).unwrap();
        assert_eq!(parsed.to_bytes(), header.to_bytes());
        assert_eq!(reader, b"\x00rest");
    }

    #[test]
    fn rejects_malformed_headers() {
        let mac = format!("--- {}\n", encode_arg(&[0; 32]));
        let cases: &[(&str, &str)] = &[
            ("age-encryption.org/v1\n->  X25519\n\n", "empty argument"),
            ("age-encryption.org/v1\n-> X25519 a \n\n", "trailing space"),
            ("age-encryption.org/v1\n-> \n\n", "no type"),
            ("age-encryption.org/v1\n->X25519\n\n", "bad start"),
            ("age-encryption.org/v1\n-> X25519\r\n\n", "carriage return"),
            (
                "age-encryption.org/v1\n-> X25519\nAA\nAA\n",
                "two short lines",
            ),
            (
                "age-encryption.org/v1\n-> X25519\nAB\n",
                "non-canonical body",
            ),
            ("age-encryption.org/v1\n-> X25519\nAA==\n", "padded body"),
            ("age-encryption.org/v1\nfoo\n", "junk line"),
        ];
        for (text, why) in cases {
            let input = format!("{text}{mac}");
            assert!(
                matches!(
                    Header::parse(input.as_bytes()),
                    Err(DecryptError::InvalidHeader(_))
                ),
                "{why}: {input:?}"
            );
        }
        assert!(Header::parse(b"age-encryption.org/v1\n-> X25519 a\n\n").is_err());
        let bad_macs = ["---\n", "--- \n", "---  AAAA\n", "--- AAAA\n"];
        for line in bad_macs {
            let input = format!("age-encryption.org/v1\n{line}");
            assert!(Header::parse(input.as_bytes()).is_err(), "{line:?}");
        }
        let trailing_space = format!("age-encryption.org/v1\n--- {} \n", encode_arg(&[0; 32]));
        assert!(Header::parse(trailing_space.as_bytes()).is_err());
    }

    #[test]
    fn tells_not_age_from_unsupported_version() {
        assert!(matches!(
            Header::parse(b"%PDF-1.4\n"),
            Err(DecryptError::NotAgeFile)
        ));
        assert!(matches!(Header::parse(b""), Err(DecryptError::NotAgeFile)));
        assert!(matches!(
            Header::parse(b"age-encryption.org/v2\n"),
            Err(DecryptError::UnsupportedVersion(v)) if v == "v2"
        ));
        assert!(matches!(
            Header::read(&mut &b"\x89PNG\r\n\x1a\n"[..]),
            Err(DecryptError::NotAgeFile)
        ));
    }

    #[test]
    fn read_refuses_an_oversized_header() {
        let mut input = b"age-encryption.org/v1\n-> a\n".to_vec();
        input.extend(std::iter::repeat_n(b'A', MAX_HEADER_SIZE));
        assert!(matches!(
            Header::read(&mut &input[..]),
            Err(DecryptError::InvalidHeader(m)) if m.contains("larger")
        ));
    }

    #[test]
    fn parse_refuses_an_oversized_header_too_and_both_ways_agree_at_the_edge() {
        // One stanza whose argument makes the header exactly the cap, then one byte more:
        // the version line, "-> a ARG\n", an empty body line, "--- MAC\n".
        let fixed = 22 + 5 + 1 + 1 + 48;
        for extra in [0, 1] {
            let arg = "x".repeat(MAX_HEADER_SIZE + extra - fixed);
            let header = Header::new(vec![stanza("a", &[&arg], 0)], |_| [0; 32]);
            let input = header.to_bytes();
            assert_eq!(input.len(), MAX_HEADER_SIZE + extra);
            let parsed = Header::parse(input);
            let read = Header::read(&mut &input[..]);
            assert_eq!(parsed.is_ok(), extra == 0, "parse, {extra} over");
            assert_eq!(read.is_ok(), extra == 0, "read, {extra} over");
        }
    }

    #[test]
    fn decode_arg_is_strict() {
        let share = encode_arg(&[0xff; 32]);
        assert_eq!(decode_arg::<32>(&share), Some([0xff; 32]));
        assert_eq!(decode_arg::<32>(&format!("{share}=")), None);
        assert_eq!(decode_arg::<16>(&share), None);
        // Same bytes, non-zero trailing bits: not canonical.
        let mut alt = share.clone();
        alt.replace_range(42.., "/");
        assert_eq!(decode_arg::<32>(&alt), None);
    }
}
