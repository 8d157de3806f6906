//! The STREAM payload: chunk arithmetic, nonces, and the sequential reader and writer.
//!
//! The payload is a 16-byte nonce followed by chunks of 64 KiB plaintext, each sealed with
//! ChaCha20-Poly1305 under a nonce that is the 11-byte big-endian chunk index plus a flag byte
//! (1 on the last chunk). Because the nonce is a pure function of the index, and the payload
//! size alone says where every chunk is and which one is last, chunks can be processed in any
//! order: the parallel paths (`src/engine/parallel.rs`) schedule the same chunk calls across threads.

use std::io::{self, Read, Write};

use rand_core::{OsRng, RngCore};

use crate::error::DecryptError;
use crate::keys::recipient::FileKey;
use crate::primitives::{hkdf, Aead, ChunkAead, TAG_SIZE};

/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Ciphertext bytes per full chunk.
pub const ENCRYPTED_CHUNK_SIZE: usize = CHUNK_SIZE + TAG_SIZE;
/// Size of the payload nonce that precedes the chunks.
pub const NONCE_SIZE: usize = 16;

/// The nonce of chunk `index`.
pub(crate) fn chunk_nonce(index: u64, last: bool) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&index.to_be_bytes());
    nonce[11] = last as u8;
    nonce
}

/// Number of chunks for a plaintext of `len` bytes (an empty plaintext is one empty chunk).
pub(crate) fn chunk_count(plaintext_len: u64) -> u64 {
    plaintext_len.div_ceil(CHUNK_SIZE as u64).max(1)
}

/// Size of the chunks (without the payload nonce) that seal `len` plaintext bytes.
pub fn encrypted_len(plaintext_len: u64) -> u64 {
    plaintext_len + chunk_count(plaintext_len) * TAG_SIZE as u64
}

/// Validates the size of the chunks (without the payload nonce) and returns the plaintext size.
///
/// Every size is either valid or rejected here, before any chunk is touched: the last chunk
/// must hold at least a tag, and may be empty only if it is the only chunk.
pub fn plaintext_len(encrypted_len: u64) -> Result<u64, DecryptError> {
    if encrypted_len == 0 {
        return Err(DecryptError::Truncated);
    }
    let chunks = encrypted_len.div_ceil(ENCRYPTED_CHUNK_SIZE as u64);
    let last = encrypted_len - (chunks - 1) * ENCRYPTED_CHUNK_SIZE as u64;
    if last < TAG_SIZE as u64 {
        return Err(DecryptError::Truncated);
    }
    if last == TAG_SIZE as u64 && chunks > 1 {
        return Err(DecryptError::PayloadCorrupt { chunk: chunks - 1 });
    }
    Ok(encrypted_len - chunks * TAG_SIZE as u64)
}

/// The payload key, set up once per file and shared by every chunk. With the default
/// backend it is wiped when the last copy is dropped.
#[derive(Clone)]
pub(crate) struct PayloadCipher(Aead);

/// Its only field, the RustCrypto AEAD, wipes its key on drop.
#[cfg(not(feature = "aws-lc"))]
impl zeroize::ZeroizeOnDrop for PayloadCipher {}

impl PayloadCipher {
    /// `HKDF-SHA256(file key, salt = nonce, info = "payload")`.
    pub fn new(file_key: &FileKey, nonce: &[u8; NONCE_SIZE]) -> PayloadCipher {
        PayloadCipher(Aead::new(&hkdf(
            nonce,
            file_key.expose_secret(),
            b"payload",
        )))
    }

    /// A fresh random payload nonce.
    pub fn random_nonce() -> [u8; NONCE_SIZE] {
        let mut nonce = [0u8; NONCE_SIZE];
        OsRng.fill_bytes(&mut nonce);
        nonce
    }

    /// Seals the chunks of `plaintext`, the first of which has index `first`, into `out`
    /// (exactly `encrypted_len` long). `ends` says whether the last of them ends the payload.
    pub fn seal_chunks(&self, first: u64, ends: bool, plaintext: &[u8], out: &mut [u8]) {
        let count = chunk_count(plaintext.len() as u64);
        for i in 0..count {
            let start = i as usize * CHUNK_SIZE;
            let chunk = &plaintext[start..(start + CHUNK_SIZE).min(plaintext.len())];
            let at = i as usize * ENCRYPTED_CHUNK_SIZE;
            let (body, rest) = out[at..].split_at_mut(chunk.len());
            let nonce = chunk_nonce(first + i, ends && i + 1 == count);
            rest[..TAG_SIZE].copy_from_slice(&self.0.seal(&nonce, chunk, body));
        }
    }

    /// [`PayloadCipher::seal_chunks`] in place: `buf` holds `plain_len` bytes of plaintext
    /// laid out as their sealed chunks will be (chunk `i` at `i * ENCRYPTED_CHUNK_SIZE`, a
    /// tag's room after each), and is exactly `encrypted_len(plain_len)` long.
    pub fn seal_chunks_in_place(&self, first: u64, ends: bool, plain_len: usize, buf: &mut [u8]) {
        let count = chunk_count(plain_len as u64);
        for i in 0..count {
            let start = i as usize * CHUNK_SIZE;
            let len = CHUNK_SIZE.min(plain_len - start);
            let at = i as usize * ENCRYPTED_CHUNK_SIZE;
            let (body, rest) = buf[at..].split_at_mut(len);
            let nonce = chunk_nonce(first + i, ends && i + 1 == count);
            rest[..TAG_SIZE].copy_from_slice(&self.0.seal_in_place(&nonce, body));
        }
    }

    /// Opens consecutive chunks, the first of which has index `first`, into `out` (exactly the
    /// plaintext size). `ends` says whether the last of them ends the payload.
    ///
    /// Every chunk is authenticated, the empty final chunk of an empty payload included. On
    /// failure `out` holds no unauthenticated plaintext: the failing chunk is wiped.
    pub fn open_chunks(
        &self,
        first: u64,
        ends: bool,
        encrypted: &[u8],
        out: &mut [u8],
    ) -> Result<(), DecryptError> {
        let count = encrypted.len().div_ceil(ENCRYPTED_CHUNK_SIZE);
        let mut at = 0;
        for (i, chunk) in encrypted.chunks(ENCRYPTED_CHUNK_SIZE).enumerate() {
            let len = chunk
                .len()
                .checked_sub(TAG_SIZE)
                .ok_or(DecryptError::Truncated)?;
            let last = ends && i + 1 == count;
            self.open_chunk(first + i as u64, last, chunk, &mut out[at..at + len])?;
            at += len;
        }
        Ok(())
    }

    fn open_chunk(
        &self,
        index: u64,
        last: bool,
        chunk: &[u8],
        out: &mut [u8],
    ) -> Result<(), DecryptError> {
        let (body, tag) = chunk.split_at(chunk.len() - TAG_SIZE);
        if self.0.open(&chunk_nonce(index, last), body, tag, out) {
            return Ok(());
        }
        Err(self.diagnose(index, last, chunk, out))
    }

    /// Names the failure of a chunk that did not open: a chunk that opens with the other
    /// last-chunk flag means the payload was cut short, or has data after its end.
    /// `scratch` is the failed chunk's output, wiped again before returning.
    fn diagnose(&self, index: u64, last: bool, chunk: &[u8], scratch: &mut [u8]) -> DecryptError {
        let (body, tag) = chunk.split_at(chunk.len() - TAG_SIZE);
        let opens_flipped = self.0.open(&chunk_nonce(index, !last), body, tag, scratch);
        scratch.fill(0);
        match (opens_flipped, last) {
            (true, true) => DecryptError::Truncated,
            (true, false) => DecryptError::TrailingData,
            (false, _) => DecryptError::PayloadCorrupt { chunk: index },
        }
    }
}

/// Sequential encryption: a `Write` that seals what it is given, chunk by chunk.
///
/// Call [`StreamWriter::finish`] at the end: it writes the last chunk. Dropping the writer
/// without it leaves an invalid (truncated) file, never a shorter valid one.
pub struct StreamWriter<W: Write> {
    out: W,
    cipher: PayloadCipher,
    index: u64,
    plaintext: Vec<u8>,
    encrypted: Vec<u8>,
}

impl<W: Write> StreamWriter<W> {
    pub(crate) fn new(out: W, cipher: PayloadCipher) -> Self {
        StreamWriter {
            out,
            cipher,
            index: 0,
            plaintext: Vec::with_capacity(CHUNK_SIZE),
            encrypted: vec![0; ENCRYPTED_CHUNK_SIZE],
        }
    }

    fn flush_chunk(&mut self, last: bool) -> io::Result<()> {
        let len = self.plaintext.len() + TAG_SIZE;
        let out = &mut self.encrypted[..len];
        self.cipher
            .seal_chunks(self.index, last, &self.plaintext, out);
        self.out.write_all(out)?;
        self.plaintext.clear();
        self.index += 1;
        Ok(())
    }

    /// Seals the last chunk, flushes, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_chunk(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for StreamWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // A full chunk is sealed only once more data arrives: until then it may be the last.
        if self.plaintext.len() == CHUNK_SIZE {
            self.flush_chunk(false)?;
        }
        let n = buf.len().min(CHUNK_SIZE - self.plaintext.len());
        self.plaintext.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Sequential decryption: a `Read` that releases each chunk only after it authenticates.
///
/// Errors come out of `read` as `io::Error`s of kind `InvalidData` wrapping a
/// [`DecryptError`]; [`StreamReader::next_chunk`] gives them typed.
pub struct StreamReader<R: Read> {
    input: R,
    cipher: PayloadCipher,
    index: u64,
    /// Ciphertext: one chunk plus one byte of look-ahead, which tells whether it is the last.
    encrypted: Vec<u8>,
    filled: usize,
    plaintext: Vec<u8>,
    /// Bytes of `plaintext` not yet returned by `read`: `pos..available`.
    pos: usize,
    available: usize,
    done: bool,
}

impl<R: Read> StreamReader<R> {
    pub(crate) fn new(input: R, cipher: PayloadCipher) -> Self {
        StreamReader {
            input,
            cipher,
            index: 0,
            encrypted: vec![0; ENCRYPTED_CHUNK_SIZE + 1],
            filled: 0,
            plaintext: vec![0; CHUNK_SIZE],
            pos: 0,
            available: 0,
            done: false,
        }
    }

    /// The next authenticated chunk of plaintext, or `None` after the last one.
    pub fn next_chunk(&mut self) -> Result<Option<&[u8]>, DecryptError> {
        if self.done {
            return Ok(None);
        }
        while self.filled < self.encrypted.len() {
            match self.input.read(&mut self.encrypted[self.filled..]) {
                Ok(0) => break,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let last = self.filled <= ENCRYPTED_CHUNK_SIZE;
        let len = self.filled.min(ENCRYPTED_CHUNK_SIZE);
        if len < TAG_SIZE {
            return Err(DecryptError::Truncated);
        }
        if last && len == TAG_SIZE && self.index > 0 {
            return Err(DecryptError::PayloadCorrupt { chunk: self.index });
        }
        let out = &mut self.plaintext[..len - TAG_SIZE];
        self.cipher
            .open_chunks(self.index, last, &self.encrypted[..len], out)?;
        self.index += 1;
        if last {
            self.done = true;
        } else {
            self.encrypted.copy_within(ENCRYPTED_CHUNK_SIZE.., 0);
        }
        self.filled -= len;
        Ok(Some(&self.plaintext[..len - TAG_SIZE]))
    }
}

impl<R: Read> Read for StreamReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.available {
            self.pos = 0;
            self.available = 0;
            match self.next_chunk()? {
                Some(chunk) => self.available = chunk.len(),
                None => return Ok(0),
            }
        }
        let n = (self.available - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.plaintext[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checked at compile time: a dropped payload cipher leaves no key behind.
    #[cfg(not(feature = "aws-lc"))]
    #[test]
    fn a_dropped_payload_cipher_wipes_its_key() {
        fn wipes<T: zeroize::ZeroizeOnDrop>() {}
        wipes::<chacha20poly1305::ChaCha20Poly1305>();
        wipes::<PayloadCipher>();
    }

    fn cipher() -> PayloadCipher {
        PayloadCipher::new(&FileKey::from_slice(&[7; 16]).unwrap(), &[1; NONCE_SIZE])
    }

    #[test]
    fn an_empty_final_chunk_is_authenticated_too() {
        let mut sealed = [0u8; TAG_SIZE];
        cipher().seal_chunks(0, true, &[], &mut sealed);
        assert!(cipher().open_chunks(0, true, &sealed, &mut []).is_ok());
        for i in 0..TAG_SIZE {
            let mut bad = sealed;
            bad[i] ^= 1;
            assert!(
                cipher().open_chunks(0, true, &bad, &mut []).is_err(),
                "tag byte {i}"
            );
        }
        assert!(
            cipher().open_chunks(1, true, &sealed, &mut []).is_err(),
            "index is bound"
        );
        // A final chunk where a middle one was expected: data follows the end.
        assert!(matches!(
            cipher().open_chunks(0, false, &sealed, &mut []),
            Err(DecryptError::TrailingData)
        ));
    }

    #[test]
    fn payload_sizes_are_validated_before_any_chunk() {
        let e = ENCRYPTED_CHUNK_SIZE as u64;
        assert_eq!(plaintext_len(16).unwrap(), 0);
        assert_eq!(plaintext_len(17).unwrap(), 1);
        assert_eq!(plaintext_len(e).unwrap(), CHUNK_SIZE as u64);
        assert_eq!(plaintext_len(e + 17).unwrap(), CHUNK_SIZE as u64 + 1);
        assert!(matches!(plaintext_len(0), Err(DecryptError::Truncated)));
        assert!(matches!(plaintext_len(15), Err(DecryptError::Truncated)));
        assert!(matches!(
            plaintext_len(e + 15),
            Err(DecryptError::Truncated)
        ));
        assert!(matches!(
            plaintext_len(e + 16),
            Err(DecryptError::PayloadCorrupt { chunk: 1 })
        ));
        for len in [0u64, 1, 65_535, 65_536, 65_537, 131_072, 131_572] {
            assert_eq!(plaintext_len(encrypted_len(len)).unwrap(), len);
        }
    }

    #[test]
    fn nonces_are_the_big_endian_index_and_the_last_flag() {
        assert_eq!(chunk_nonce(0, false), [0; 12]);
        assert_eq!(chunk_nonce(1, true), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(chunk_nonce(0x0102, false)[9..], [1, 2, 0]);
    }
}
