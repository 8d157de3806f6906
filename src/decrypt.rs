//! Opening: parse the header, find an identity that unwraps the file key, check the header
//! MAC, then decrypt the payload, as a stream or on every core.

use std::fs::File;
use std::io::BufRead;

use crate::error::{DecryptError, StreamError};
use crate::format::Header;
use crate::mmap::MappedOutput;
use crate::primitives::{hkdf, hmac_verify};
use crate::recipient::{FileKey, Identity};
use crate::stream::{PayloadCipher, StreamReader, CHUNK_SIZE, NONCE_SIZE};
use crate::{parallel, pipeline};

/// Finds the file key: each identity tries each stanza; the first that opens one wins, and
/// the header MAC must then verify under that key.
pub fn unwrap_file_key(
    header: &Header,
    identities: &[&dyn Identity],
) -> Result<FileKey, DecryptError> {
    for identity in identities {
        for stanza in &header.stanzas {
            if let Some(file_key) = identity.unwrap_stanza(stanza) {
                let file_key = file_key?;
                let mac_key = hkdf(&[], file_key.expose_secret(), b"header");
                if !hmac_verify(mac_key.as_ref(), header.mac_input(), &header.mac) {
                    return Err(DecryptError::HeaderMac);
                }
                return Ok(file_key);
            }
        }
    }
    Err(DecryptError::NoMatch {
        tried: identities.len(),
    })
}

/// The payload nonce is read with the header, and age counts a short one as a header failure.
fn short_nonce() -> DecryptError {
    DecryptError::header("the file ends before the 16-byte payload nonce")
}

/// A sealed stream whose header has been read.
pub struct Decryptor<R: BufRead> {
    header: Header,
    input: R,
}

impl<R: BufRead> Decryptor<R> {
    /// Reads and parses the header.
    pub fn new(mut input: R) -> Result<Self, DecryptError> {
        let header = Header::read(&mut input)?;
        Ok(Decryptor { header, input })
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Unwraps the file key and returns a reader of the authenticated plaintext.
    pub fn unwrap(mut self, identities: &[&dyn Identity]) -> Result<StreamReader<R>, DecryptError> {
        let cipher = self.payload_cipher(identities)?;
        Ok(StreamReader::new(self.input, cipher))
    }

    /// Unwraps the file key and decrypts the rest of the stream into `output` on every core
    /// of the current rayon pool, a window of chunks at a time, in bounded memory (see
    /// [`pipeline`]); in a pool of one thread, chunk by chunk. Only authenticated plaintext
    /// reaches `output`.
    pub fn decrypt_stream<W: std::io::Write + Send>(
        mut self,
        identities: &[&dyn Identity],
        mut output: W,
    ) -> Result<(), StreamError>
    where
        R: Send,
    {
        let read_side = |e| match e {
            DecryptError::Io(e) => StreamError::Read(e),
            other => StreamError::Decrypt(other),
        };
        let cipher = self.payload_cipher(identities).map_err(read_side)?;
        if rayon::current_num_threads() > 1 {
            return pipeline::open(&cipher, self.input, output);
        }
        let mut reader = StreamReader::new(self.input, cipher);
        while let Some(chunk) = reader.next_chunk().map_err(read_side)? {
            output.write_all(chunk).map_err(StreamError::Write)?;
        }
        output.flush().map_err(StreamError::Write)
    }

    fn payload_cipher(
        &mut self,
        identities: &[&dyn Identity],
    ) -> Result<PayloadCipher, DecryptError> {
        let file_key = unwrap_file_key(&self.header, identities)?;
        let mut nonce = [0u8; NONCE_SIZE];
        self.input
            .read_exact(&mut nonce)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => short_nonce(),
                _ => DecryptError::Io(e),
            })?;
        Ok(PayloadCipher::new(&file_key, &nonce))
    }
}

/// A whole sealed file in memory (or mapped), opened with random access to its chunks.
pub struct SealedSlice<'a> {
    header: Header,
    payload: &'a [u8],
}

impl<'a> SealedSlice<'a> {
    /// Parses the header at the start of `sealed`.
    pub fn new(sealed: &'a [u8]) -> Result<Self, DecryptError> {
        let (header, len) = Header::parse(sealed)?;
        Ok(SealedSlice {
            header,
            payload: &sealed[len..],
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Unwraps the file key, checks the payload size and authenticates the last chunk.
    pub fn unwrap(&self, identities: &[&dyn Identity]) -> Result<OpenPayload<'a>, DecryptError> {
        let file_key = unwrap_file_key(&self.header, identities)?;
        if self.payload.len() < NONCE_SIZE {
            return Err(short_nonce());
        }
        let (nonce, encrypted) = self.payload.split_at(NONCE_SIZE);
        let nonce = nonce.try_into().expect("split at the nonce size");
        let cipher = PayloadCipher::new(&file_key, nonce);
        let plaintext_len = parallel::check_payload(&cipher, encrypted)?;
        Ok(OpenPayload {
            cipher,
            encrypted,
            plaintext_len,
        })
    }
}

/// A payload whose key is known, whose size is valid and whose last chunk authenticates.
pub struct OpenPayload<'a> {
    cipher: PayloadCipher,
    encrypted: &'a [u8],
    plaintext_len: u64,
}

impl OpenPayload<'_> {
    /// Size of the plaintext.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Decrypts into memory on every core of the current rayon pool.
    pub fn decrypt_to_vec(&self) -> Result<Vec<u8>, DecryptError> {
        let mut out = vec![0u8; self.plaintext_len as usize];
        parallel::open_to_slice(&self.cipher, self.encrypted, &mut out)?;
        Ok(out)
    }

    /// Decrypts into `file` from its start, on every core of the current rayon pool. On error
    /// the file holds partial plaintext: the caller must discard it.
    pub fn decrypt_to_file(&self, file: &File) -> Result<u64, DecryptError> {
        self.decrypt_to_file_with_progress(file, &|_| {})
    }

    /// [`OpenPayload::decrypt_to_file`], calling `progress` with each finished run of bytes.
    pub fn decrypt_to_file_with_progress(
        &self,
        file: &File,
        progress: parallel::Progress<'_>,
    ) -> Result<u64, DecryptError> {
        if self.plaintext_len > CHUNK_SIZE as u64
            && parallel::maps_output(rayon::current_num_threads())
        {
            let mut out = MappedOutput::new(file, self.plaintext_len)?;
            return parallel::open_to_map(&self.cipher, self.encrypted, &mut out, progress);
        }
        file.set_len(self.plaintext_len)?;
        parallel::open_to_file(&self.cipher, self.encrypted, file, 0, progress)
    }
}

/// Opens a sealed file held in memory, on every core of the current rayon pool.
///
/// ```
/// let server = seal::x25519::Identity::generate();
/// let sealed = seal::encrypt(&[&server.to_public()], b"hello")?;
/// assert_eq!(seal::decrypt(&[&server], &sealed)?, b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decrypt(identities: &[&dyn Identity], sealed: &[u8]) -> Result<Vec<u8>, DecryptError> {
    SealedSlice::new(sealed)?
        .unwrap(identities)?
        .decrypt_to_vec()
}
