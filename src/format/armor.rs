//! ASCII armor: the age file as strict PEM, for channels that only carry text.
//!
//! ```text
//! -----BEGIN AGE ENCRYPTED FILE-----
//! <canonical padded base64 of the binary file, 64 columns per line, the last line may be shorter>
//! -----END AGE ENCRYPTED FILE-----
//! ```
//!
//! Writing is [`ArmoredWriter`], a `Write` adapter around any output. Reading is
//! [`ArmoredReader`], a streaming decoder: it holds one line at a time, so an armored file of
//! any size opens in the same bounded memory as a binary one, and the decrypting side can
//! still run on every core. [`crate::Decryptor`] and [`crate::decrypt`] detect armor
//! themselves.
//!
//! Decoding is as strict as age's: canonical padded base64; every line exactly 64 columns
//! except the last, which may be shorter but not empty; LF or CRLF line ends; whitespace
//! allowed only before the begin line and after the end line; nothing else after the end line.
//! A violation is an [`ArmorError`], which the decryptors report as an invalid armor.

use std::io::{self, BufRead, Read, Write};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The line that opens an armored file.
pub const BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
/// The line that closes an armored file.
pub const END: &str = "-----END AGE ENCRYPTED FILE-----";
const COLUMNS: usize = 64;
/// Binary bytes per full line.
const BYTES_PER_LINE: usize = COLUMNS / 4 * 3;
/// The longest line we read: 64 columns and a CRLF. Longer lines are refused without
/// buffering them.
const MAX_LINE: usize = COLUMNS + 2;

/// Whether `input` starts (after whitespace) with the armor's begin line. Looks at the first
/// bytes only; the rest is checked while decoding.
pub fn is_armored(input: &[u8]) -> bool {
    input.trim_ascii_start().starts_with(BEGIN.as_bytes())
}

/// Whether the file `file` is armored, from its first bytes (read where they are, without
/// moving the file's offset).
pub(crate) fn is_armored_file(file: &std::fs::File) -> std::io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 4096 + BEGIN.len()];
    let mut filled = 0;
    while filled < head.len() {
        match file.read_at(&mut head[filled..], filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(is_armored(&head[..filled]))
}

/// Decodes a whole armored file held in memory.
///
/// ```
/// let armored = seal::armor::encode(b"age-encryption.org/v1\n");
/// assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
/// assert_eq!(seal::armor::decode(armored.as_bytes())?, b"age-encryption.org/v1\n");
/// # Ok::<(), seal::armor::ArmorError>(())
/// ```
pub fn decode(armored: &[u8]) -> Result<Vec<u8>, ArmorError> {
    let mut out = Vec::with_capacity(armored.len() / 4 * 3);
    match ArmoredReader::new(armored).read_to_end(&mut out) {
        Ok(_) => Ok(out),
        // Reading a slice cannot fail: every error is the armor's.
        Err(e) => Err(ArmorError::of(&e).expect("reading a slice fails only on bad armor")),
    }
}

/// Encodes a binary file as armor, in memory.
pub fn encode(binary: &[u8]) -> String {
    let mut writer = ArmoredWriter::new(Vec::with_capacity(binary.len() / 3 * 4 + 128));
    writer
        .write_all(binary)
        .expect("writing to a Vec cannot fail");
    let out = writer.finish().expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("armor is ASCII")
}

/// Why armor did not decode: returned by [`decode`], carried inside an `io::Error` by
/// [`ArmoredReader`], and reported as an invalid armor by the decryptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArmorError(&'static str);

impl ArmorError {
    /// Armored input given where only the binary format is read; `instead` says what reads it.
    pub(crate) const fn not_binary(instead: &'static str) -> ArmorError {
        ArmorError(instead)
    }

    /// The armor error inside `e`, if `e` is one that [`ArmoredReader`] returned.
    pub(crate) fn of(e: &io::Error) -> Option<ArmorError> {
        e.get_ref()?.downcast_ref::<ArmorError>().copied()
    }
}

impl std::fmt::Display for ArmorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ArmorError {}

fn armor_error(reason: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, ArmorError(reason))
}

/// A `Write` adapter that armors what it is given. Call [`ArmoredWriter::finish`] at the end:
/// it writes the last line and the end line.
///
/// Encoded lines are collected and handed to the output in blocks of about
/// [`ArmoredWriter::BLOCK`] bytes, so an unbuffered output (a file, a pipe) is not written
/// one 65-byte line at a time.
pub struct ArmoredWriter<W: Write> {
    out: W,
    /// Binary bytes of the current line not yet encoded.
    pending: [u8; BYTES_PER_LINE],
    filled: usize,
    /// Encoded text not yet written to `out`, the begin line first.
    encoded: Vec<u8>,
}

impl<W: Write> ArmoredWriter<W> {
    /// How much encoded text is collected before it is written out.
    pub const BLOCK: usize = 64 * 1024;

    /// Wraps `out`.
    pub fn new(out: W) -> Self {
        let mut encoded = Vec::with_capacity(Self::BLOCK + COLUMNS + 1);
        encoded.extend_from_slice(BEGIN.as_bytes());
        encoded.push(b'\n');
        ArmoredWriter {
            out,
            pending: [0; BYTES_PER_LINE],
            filled: 0,
            encoded,
        }
    }

    fn encode_pending(&mut self) {
        let mut line = [0u8; COLUMNS];
        let n = STANDARD
            .encode_slice(&self.pending[..self.filled], &mut line)
            .expect("48 bytes fit in 64 columns");
        self.encoded.extend_from_slice(&line[..n]);
        self.encoded.push(b'\n');
        self.filled = 0;
    }

    fn write_encoded(&mut self) -> io::Result<()> {
        self.out.write_all(&self.encoded)?;
        self.encoded.clear();
        Ok(())
    }

    /// Writes the last (possibly short) line and the end line; returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        if self.filled > 0 {
            self.encode_pending();
        }
        self.encoded.extend_from_slice(END.as_bytes());
        self.encoded.push(b'\n');
        self.write_encoded()?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ArmoredWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Output first, so that an error means none of `buf` was taken.
        if self.encoded.len() >= Self::BLOCK {
            self.write_encoded()?;
        }
        let mut rest = buf;
        // A full line is encoded only when more bytes follow, so that `finish` never has to
        // decide whether a line already written was the last one.
        while !rest.is_empty() && self.encoded.len() < Self::BLOCK {
            if self.filled == BYTES_PER_LINE {
                self.encode_pending();
            }
            let n = rest.len().min(BYTES_PER_LINE - self.filled);
            self.pending[self.filled..self.filled + n].copy_from_slice(&rest[..n]);
            self.filled += n;
            rest = &rest[n..];
        }
        Ok(buf.len() - rest.len())
    }

    /// Writes out the complete lines so far (not the current, unfinished one).
    fn flush(&mut self) -> io::Result<()> {
        self.write_encoded()?;
        self.out.flush()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the begin line.
    Start,
    /// Reading full lines.
    Body,
    /// After a short line: only the end line may follow.
    AfterShortLine,
    /// After the end line, which was followed by whitespace only.
    Done,
    /// After an error, which every later read repeats.
    Failed(&'static str),
}

/// A streaming armor decoder: a `Read` (and `BufRead`) of the binary file inside the armor.
///
/// Holds one decoded line at a time. Errors come out of `read` as `io::Error`s of kind
/// `InvalidData` wrapping an [`ArmorError`]. End of input is reported only after the end line and the
/// whitespace-only rest have been checked, so a consumer that reads to the end sees every
/// violation before it finishes.
pub struct ArmoredReader<R: BufRead> {
    input: R,
    state: State,
    line: Vec<u8>,
    decoded: [u8; BYTES_PER_LINE],
    pos: usize,
    len: usize,
}

impl<R: BufRead> ArmoredReader<R> {
    /// Wraps `input`, which must start (after optional whitespace) with the begin line.
    pub fn new(input: R) -> Self {
        ArmoredReader {
            input,
            state: State::Start,
            line: Vec::with_capacity(MAX_LINE + 1),
            decoded: [0; BYTES_PER_LINE],
            pos: 0,
            len: 0,
        }
    }

    /// Reads one line without its line end into `self.line`. `Ok(false)` at end of input.
    /// A final line without a line end counts as a line.
    fn read_line(&mut self) -> io::Result<bool> {
        self.line.clear();
        let n = (&mut self.input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut self.line)?;
        if n == 0 {
            return Ok(false);
        }
        if self.line.ends_with(b"\n") {
            self.line.pop();
            if self.line.ends_with(b"\r") {
                self.line.pop();
            }
        } else if self.line.len() > MAX_LINE {
            return Err(armor_error("armor line longer than 64 columns"));
        }
        Ok(true)
    }

    fn skip_whitespace(&mut self) -> io::Result<bool> {
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Ok(false);
            }
            let n = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let more = n < buf.len();
            self.input.consume(n);
            if more {
                return Ok(true);
            }
        }
    }

    /// Decodes the next line into `self.decoded`; leaves `len == 0` at the end. A malformed
    /// armor error is sticky: the reader never resumes past it.
    fn next_line(&mut self) -> io::Result<()> {
        self.pos = 0;
        self.len = 0;
        if let State::Failed(reason) = self.state {
            return Err(armor_error(reason));
        }
        let result = self.decode_line();
        if let Some(ArmorError(reason)) = result.as_ref().err().and_then(ArmorError::of) {
            self.state = State::Failed(reason);
        }
        result
    }

    fn decode_line(&mut self) -> io::Result<()> {
        loop {
            match self.state {
                State::Done => return Ok(()),
                State::Failed(reason) => return Err(armor_error(reason)),
                State::Start => {
                    self.skip_whitespace()?;
                    if !self.read_line()? || self.line != BEGIN.as_bytes() {
                        return Err(armor_error("the armor does not start with its begin line"));
                    }
                    self.state = State::Body;
                }
                State::Body | State::AfterShortLine => {
                    if !self.read_line()? {
                        return Err(armor_error("the armor has no end line"));
                    }
                    if self.line == END.as_bytes() {
                        if self.skip_whitespace()? {
                            return Err(armor_error("data after the armor's end line"));
                        }
                        self.state = State::Done;
                        return Ok(());
                    }
                    if self.state == State::AfterShortLine {
                        return Err(armor_error("an armor line follows a short line"));
                    }
                    if self.line.is_empty() {
                        return Err(armor_error("empty line in the armor"));
                    }
                    if self.line.len() > COLUMNS {
                        return Err(armor_error("armor line longer than 64 columns"));
                    }
                    let n = STANDARD
                        .decode_slice(&self.line, &mut self.decoded)
                        .map_err(|_| armor_error("the armor is not canonical padded base64"))?;
                    if n < BYTES_PER_LINE {
                        self.state = State::AfterShortLine;
                    }
                    self.len = n;
                    return Ok(());
                }
            }
        }
    }
}

impl<R: BufRead> Read for ArmoredReader<R> {
    /// Fills `buf` with as many lines as fit. An error after some bytes were copied comes out
    /// of the next call (armor errors are sticky), so no decoded byte is lost.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut copied = 0;
        while copied < buf.len() {
            let available = match self.fill_buf() {
                Ok(available) => available,
                Err(_) if copied > 0 => break,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            let n = available.len().min(buf.len() - copied);
            buf[copied..copied + n].copy_from_slice(&available[..n]);
            self.consume(n);
            copied += n;
        }
        Ok(copied)
    }
}

impl<R: BufRead> BufRead for ArmoredReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.len && self.state != State::Done {
            self.next_line()?;
        }
        Ok(&self.decoded[self.pos..self.len])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armor_error_of(input: &str) -> String {
        match decode(input.as_bytes()) {
            Err(e) => e.to_string(),
            Ok(out) => panic!("{input:?} decoded to {out:?}"),
        }
    }

    #[test]
    fn round_trips_every_length_around_the_line_edge() {
        for len in [0usize, 1, 2, 3, 47, 48, 49, 95, 96, 97, 1000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let armored = encode(&data);
            let lines: Vec<&str> = armored.lines().collect();
            assert_eq!(lines[0], BEGIN);
            assert_eq!(*lines.last().unwrap(), END);
            let body = &lines[1..lines.len() - 1];
            assert_eq!(body.len(), len.div_ceil(BYTES_PER_LINE), "{len}");
            for line in &body[..body.len().saturating_sub(1)] {
                assert_eq!(line.len(), COLUMNS);
            }
            assert!(body.iter().all(|l| !l.is_empty()));
            assert!(armored.ends_with("-----\n"));
            assert_eq!(decode(armored.as_bytes()).unwrap(), data, "{len}");
            let crlf = armored.replace('\n', "\r\n");
            assert_eq!(decode(crlf.as_bytes()).unwrap(), data, "{len} crlf");
            let spaced = format!(" \n\t{armored}\n  \r\n");
            assert_eq!(decode(spaced.as_bytes()).unwrap(), data, "{len} spaced");
            let no_eol = armored.trim_end();
            assert_eq!(decode(no_eol.as_bytes()).unwrap(), data, "{len} no eol");
        }
    }

    #[test]
    fn refuses_every_deviation() {
        let good = encode(&[7u8; 100]);
        let lines: Vec<&str> = good.lines().collect();
        let join = |ls: &[&str]| ls.join("\n") + "\n";
        let cases: Vec<(String, &str)> = vec![
            (format!("x{good}"), "does not start"),
            (format!("{good}x\n"), "after the armor"),
            (
                good.replace(BEGIN, "-----BEGIN age ENCRYPTED FILE-----"),
                "start",
            ),
            (
                good.replace(END, "----- END AGE ENCRYPTED FILE -----"),
                "short line",
            ),
            (
                join(&[lines[0], "", lines[1], lines[2], lines[3], lines[4]]),
                "empty",
            ),
            (
                join(&[lines[0], lines[1], lines[2], lines[3], "", lines[4]]),
                "short line",
            ),
            (
                join(&[lines[0], lines[1], lines[2], lines[3]]),
                "no end line",
            ),
            (
                good.replacen(lines[3], lines[3].trim_end_matches('='), 1),
                "canonical",
            ),
            (
                good.replacen(lines[1], &format!("{} ", lines[1]), 1),
                "longer",
            ),
            (
                good.replacen(lines[3], &format!("{} ", lines[3]), 1),
                "canonical",
            ),
            (
                join(&[lines[0], lines[3], lines[1], lines[4]]),
                "follows a short",
            ),
            (format!("{}\n{}A\n", lines[0], lines[1]), "longer"),
            (good.replacen(&lines[1][..4], "YW==", 1), "canonical"),
            (String::new(), "does not start"),
        ];
        for (input, why) in cases {
            let message = armor_error_of(&input);
            assert!(message.contains(why), "{input:?}: {message} (wanted {why})");
        }
    }

    #[test]
    fn the_writer_collects_lines_into_blocks_whatever_the_write_sizes() {
        /// Counts the writes it gets.
        struct Counting(Vec<u8>, usize);
        impl Write for Counting {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.1 += 1;
                self.0.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i % 253) as u8).collect();
        for piece in [1, 47, 48, 49, 4096, 1 << 20] {
            let mut writer = ArmoredWriter::new(Counting(Vec::new(), 0));
            for part in data.chunks(piece) {
                writer.write_all(part).unwrap();
            }
            let Counting(out, writes) = writer.finish().unwrap();
            assert_eq!(out, encode(&data).into_bytes(), "{piece}");
            assert!(
                writes <= out.len() / ArmoredWriter::<Vec<u8>>::BLOCK + 2,
                "{writes}"
            );
        }
    }

    #[test]
    fn an_error_is_never_skipped_by_a_later_read() {
        let good = encode(&[9u8; 500]);
        let mut lines: Vec<&str> = good.lines().collect();
        lines.insert(3, "");
        let bad = lines.join("\n");
        let mut reader = ArmoredReader::new(bad.as_bytes());
        let mut buf = [0u8; 1000];
        // The first read returns the two good lines, the next ones the error, for ever.
        assert_eq!(reader.read(&mut buf).unwrap(), 2 * BYTES_PER_LINE);
        for _ in 0..3 {
            let err = reader.read(&mut buf).unwrap_err();
            assert!(err.to_string().contains("empty line"), "{err}");
        }
    }

    #[test]
    fn a_long_line_is_refused_without_buffering_it() {
        let input = format!("{BEGIN}\n{}", "A".repeat(10 << 20));
        assert!(armor_error_of(&input).contains("longer"));
    }

    #[test]
    fn detection_looks_past_leading_whitespace_only() {
        assert!(is_armored(b"\r\n  -----BEGIN AGE ENCRYPTED FILE-----\n"));
        assert!(!is_armored(b"age-encryption.org/v1\n"));
        assert!(!is_armored(
            b"garbage\n-----BEGIN AGE ENCRYPTED FILE-----\n"
        ));
    }
}
