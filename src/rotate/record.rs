//! The rotation record beside a rotated file (`NAME.age.rotated`): what a rerun needs to
//! finish an interrupted rotation, and what a signature check needs once the header the
//! sender signed is gone.
//!
//! ```text
//! seal-rotation/v1
//! nonce <base64 of the payload nonce: the file this record belongs to>
//! rotated <RFC 3339 time> <fingerprint of the key that unwrapped it, or ->
//! ...                     (one line per rotation, oldest first)
//! original <length>
//! <the header the file was sealed with, byte for byte>
//! current <length>
//! <the header the file carries now, or is about to>
//! ```
//!
//! The record is written (and durable) before the file's header changes, so it is also the
//! write-ahead record of that change: a file whose header is not `current` while its nonce
//! matches was interrupted, and `current` is what it must carry. Headers are at most
//! 1 MiB each (the header limit), so a record is read with a bounded buffer.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

use crate::format::stream::NONCE_SIZE;
use crate::format::MAX_HEADER_SIZE;

/// The name of a rotated file's record: `NAME.age` + this.
pub const SUFFIX: &str = ".rotated";

const MAGIC: &str = "seal-rotation/v1";

/// The most bytes a record may hold: two headers and the lines around them.
pub(crate) const MAX_RECORD_SIZE: usize = 2 * MAX_HEADER_SIZE + (64 << 10);

/// One rotation of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// When, in RFC 3339 (UTC).
    pub time: String,
    /// The fingerprint of the key that unwrapped the file key (`SHA256:...`), if it has one.
    pub from: Option<String>,
}

/// A rotated file's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The file's payload nonce, which ties the record to that one file.
    pub nonce: [u8; NONCE_SIZE],
    /// Its rotations, oldest first.
    pub rotations: Vec<Rotation>,
    /// The header the file was sealed with: what a sender's signature covers.
    pub original: Vec<u8>,
    /// The header the file carries, or is being given.
    pub current: Vec<u8>,
}

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed rotation record: {0}")]
pub struct MalformedRecord(pub(crate) &'static str);

impl Record {
    /// The record as written.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.original.len() + self.current.len() + 256);
        out.extend_from_slice(MAGIC.as_bytes());
        out.extend_from_slice(b"\nnonce ");
        out.extend_from_slice(STANDARD_NO_PAD.encode(self.nonce).as_bytes());
        out.push(b'\n');
        for rotation in &self.rotations {
            let from = rotation.from.as_deref().unwrap_or("-");
            out.extend_from_slice(format!("rotated {} {from}\n", rotation.time).as_bytes());
        }
        for (word, header) in [("original", &self.original), ("current", &self.current)] {
            out.extend_from_slice(format!("{word} {}\n", header.len()).as_bytes());
            out.extend_from_slice(header);
        }
        out
    }

    /// Parses a record, strictly: [`Record::to_bytes`] gives back exactly `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Record, MalformedRecord> {
        let mut rest = bytes;
        if line(&mut rest)? != MAGIC.as_bytes() {
            return Err(MalformedRecord("not a rotation record"));
        }
        let nonce = line(&mut rest)?
            .strip_prefix(b"nonce ")
            .and_then(|b64| STANDARD_NO_PAD.decode(b64).ok())
            .and_then(|nonce| <[u8; NONCE_SIZE]>::try_from(nonce).ok())
            .ok_or(MalformedRecord("no payload nonce"))?;
        let mut rotations = Vec::new();
        let original = loop {
            let next = line(&mut rest)?;
            if let Some(len) = next.strip_prefix(b"original ") {
                break block(&mut rest, len)?;
            }
            let text = next
                .strip_prefix(b"rotated ")
                .and_then(|text| std::str::from_utf8(text).ok())
                .ok_or(MalformedRecord(
                    "expected a rotation or the original header",
                ))?;
            let (time, from) = text
                .split_once(' ')
                .filter(|(time, from)| !time.is_empty() && !from.is_empty())
                .ok_or(MalformedRecord("a rotation needs a time and a key"))?;
            let from = (from != "-").then(|| from.to_string());
            let time = time.to_string();
            rotations.push(Rotation { time, from });
        };
        let current = match line(&mut rest)?.strip_prefix(b"current ") {
            Some(len) => block(&mut rest, len)?,
            None => return Err(MalformedRecord("no current header")),
        };
        if !rest.is_empty() {
            return Err(MalformedRecord("bytes after the current header"));
        }
        let record = Record {
            nonce,
            rotations,
            original,
            current,
        };
        // Canonical, so that one record has one encoding.
        match record.to_bytes() == bytes {
            true => Ok(record),
            false => Err(MalformedRecord("not in canonical form")),
        }
    }
}

/// The next line of `rest`, without its newline.
fn line<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], MalformedRecord> {
    let end = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(MalformedRecord("ends inside a line"))?;
    let line = &rest[..end];
    *rest = &rest[end + 1..];
    Ok(line)
}

/// A header of the length given in decimal by `len`, taken from the front of `rest`.
fn block(rest: &mut &[u8], len: &[u8]) -> Result<Vec<u8>, MalformedRecord> {
    let len: usize = std::str::from_utf8(len)
        .ok()
        .and_then(|len| len.parse().ok())
        .filter(|&len| len <= MAX_HEADER_SIZE && len <= rest.len())
        .ok_or(MalformedRecord("bad header length"))?;
    let (header, after) = rest.split_at(len);
    *rest = after;
    Ok(header.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            nonce: [7; NONCE_SIZE],
            rotations: vec![
                Rotation {
                    time: "2026-12-07T11:50:00.000000Z".into(),
                    from: Some("SHA256:abc".into()),
                },
                Rotation {
                    time: "2026-12-08T09:00:00.000000Z".into(),
                    from: None,
                },
            ],
            original: b"age-encryption.org/v1\n-> X25519 a\nb\n--- m\n".to_vec(),
            current: b"age-encryption.org/v1\n-> X25519 c\nd\n--- n\n".to_vec(),
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let record = record();
        assert_eq!(Record::parse(&record.to_bytes()).unwrap(), record);
    }

    #[test]
    fn any_change_to_its_framing_is_refused() {
        let record = record();
        let text = String::from_utf8(record.to_bytes()).unwrap();
        let (original, current) = (record.original.len(), record.current.len());
        let broken = [
            text.replacen("seal-rotation/v1", "seal-rotation/v2", 1),
            text.replacen("nonce ", "nonce x", 1),
            text.replacen("rotated 2026-12-08T09:00:00.000000Z -", "rotated  -", 1),
            text.replacen(
                &format!("original {original}"),
                &format!("original {}", original + 1),
                1,
            ),
            text.replacen(
                &format!("current {current}"),
                &format!("current 0{current}"),
                1,
            ),
            text.replacen(&format!("current {current}"), "current 99999999999", 1),
            format!("{text}x"),
            text[..text.len() - 1].to_string(),
        ];
        for broken in broken {
            assert_ne!(broken, text, "each case changes the record");
            assert!(Record::parse(broken.as_bytes()).is_err(), "{broken:?}");
        }
    }
}
