//! Sealing: wrap a fresh file key to every recipient, write the MAC'd header, then the payload.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use crate::engine::chunks::Chunks;
use crate::engine::mmap::{self, MappedOutput};
use crate::engine::parallel;
use crate::engine::pipeline;
use crate::engine::{Hash, Progress};
use crate::error::{EncryptError, StreamError};
use crate::format::stream::{self, PayloadCipher, StreamWriter, CHUNK_SIZE, NONCE_SIZE};
use crate::format::{Header, Stanza};
use crate::keys::recipient::{self, FileKey, Recipient};
use crate::primitives::{hkdf, hmac};
use crate::MappedFile;

/// The header that wraps `file_key` to each of `recipients`, with `extra` stanzas after
/// theirs, MAC'd under it: of a new file, or of a rotated one (`crate::rotate`).
pub(crate) fn header_for(
    file_key: &FileKey,
    recipients: &[&dyn Recipient],
    extra: Vec<Stanza>,
) -> Result<Header, EncryptError> {
    if recipients.is_empty() {
        return Err(EncryptError::NoRecipients);
    }
    recipient::check_header(recipients, extra.len())?;
    let mut stanzas = Vec::with_capacity(recipients.len() + extra.len());
    for recipient in recipients {
        stanzas.extend(recipient.wrap(file_key)?);
    }
    stanzas.extend(extra);
    let mac_key = hkdf(&[], file_key.expose_secret(), b"header");
    Ok(Header::new(stanzas, |bytes| hmac(mac_key.as_ref(), bytes)))
}

/// A file about to be sealed: its file key and header are chosen, its payload not yet written.
///
/// ```
/// use seal::{x25519, Encryptor, Decryptor};
/// use std::io::{Read, Write};
///
/// let server = x25519::Identity::generate();
/// let mut sealed = Vec::new();
/// let mut writer = Encryptor::new(&[&server.to_public()])?.stream(&mut sealed)?;
/// writer.write_all(b"quarterly report")?;
/// writer.finish()?;
///
/// let mut plaintext = String::new();
/// Decryptor::new(&sealed[..])?.unwrap(&[&server])?.read_to_string(&mut plaintext)?;
/// assert_eq!(plaintext, "quarterly report");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Encryptor {
    header: Header,
    nonce: [u8; NONCE_SIZE],
    cipher: PayloadCipher,
}

impl Encryptor {
    /// Chooses a file key and wraps it to each recipient. Refuses recipients that may not share
    /// a file ([`EncryptError::IncompatibleRecipients`]), and company for one that must be
    /// alone, such as a passphrase ([`EncryptError::PassphraseNotAlone`]).
    pub fn new(recipients: &[&dyn Recipient]) -> Result<Encryptor, EncryptError> {
        Encryptor::with_stanzas(recipients, Vec::new())
    }

    /// As [`Encryptor::new`], with `extra` stanzas after the recipients': stanzas that open
    /// nothing but say something about the file under the header MAC, such as who signed it
    /// ([`Encryptor::new_signed_by`]). age identities skip stanza types they do not know.
    pub(crate) fn with_stanzas(
        recipients: &[&dyn Recipient],
        extra: Vec<Stanza>,
    ) -> Result<Encryptor, EncryptError> {
        let file_key = FileKey::generate();
        let header = header_for(&file_key, recipients, extra)?;
        let nonce = PayloadCipher::random_nonce();
        let cipher = PayloadCipher::new(&file_key, &nonce);
        Ok(Encryptor {
            header,
            nonce,
            cipher,
        })
    }

    /// The header this file will carry.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Size of the sealed file for a plaintext of `plaintext_len` bytes.
    pub fn sealed_len(&self, plaintext_len: u64) -> u64 {
        self.prefix_len() + stream::encrypted_len(plaintext_len)
    }

    fn prefix_len(&self) -> u64 {
        (self.header.to_bytes().len() + NONCE_SIZE) as u64
    }

    /// Writes the header and returns a writer that seals what it is given, one chunk at a time.
    pub fn stream<W: Write>(self, mut out: W) -> io::Result<StreamWriter<W>> {
        out.write_all(self.header.to_bytes())?;
        out.write_all(&self.nonce)?;
        Ok(StreamWriter::new(out, self.cipher))
    }

    /// Seals a stream on every core of the current rayon pool, a window of chunks at a time,
    /// in bounded memory (48 MiB of buffers at most, whatever the stream's size); in a pool of
    /// one thread, chunk by chunk.
    pub fn seal_stream<R: io::Read + Send, W: Write + Send>(
        self,
        mut input: R,
        mut output: W,
    ) -> Result<(), StreamError> {
        output
            .write_all(self.header.to_bytes())
            .and_then(|()| output.write_all(&self.nonce))
            .map_err(StreamError::Write)?;
        let threads = rayon::current_num_threads();
        if threads > 1 {
            return pipeline::seal(&self.cipher, input, output, threads);
        }
        let mut writer = StreamWriter::new(output, self.cipher);
        let mut buf = vec![0u8; stream::CHUNK_SIZE];
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StreamError::Read(e)),
            };
            writer.write_all(&buf[..n]).map_err(StreamError::Write)?;
        }
        writer.finish().map_err(StreamError::Write)?;
        Ok(())
    }

    /// Seals `plaintext` in memory, on every core of the current rayon pool.
    pub fn seal_slice(self, plaintext: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; self.sealed_len(plaintext.len() as u64) as usize];
        let prefix = self.prefix_len() as usize;
        out[..prefix - NONCE_SIZE].copy_from_slice(self.header.to_bytes());
        out[prefix - NONCE_SIZE..prefix].copy_from_slice(&self.nonce);
        let threads = rayon::current_num_threads();
        parallel::seal_to_slice(&self.cipher, plaintext, &mut out[prefix..], threads);
        out
    }

    /// Seals `plaintext` into `file` from its start, on every core of the current rayon pool;
    /// returns the sealed size. The file is grown to that size first.
    pub fn seal_to_file(self, plaintext: &[u8], file: &File) -> io::Result<u64> {
        Ok(self.seal_chunks(Chunks::Memory(plaintext), file, false, None, &|_| {})?)
    }

    /// Seals the regular file `input`, as long as it is now, into `output` from its start with
    /// positioned writes, on every core of the current rayon pool, calling `progress` with
    /// each finished run of plaintext bytes; returns the sealed size.
    ///
    /// Each run of the input is read once, with positioned reads, into private memory: an
    /// input that shrinks meanwhile is an error, never a fault. With `hash`, every byte of the
    /// sealed file goes to it in order, one window behind the encryption, so the hash of a
    /// signature ([`crate::signing::sender::sign_file`]) costs one thread beside the sealing, not a
    /// second pass.
    pub fn seal_file(
        self,
        input: &File,
        output: &File,
        hash: Option<Hash<'_>>,
        progress: Progress<'_>,
    ) -> Result<u64, StreamError> {
        self.seal_chunks(file_chunks(input)?, output, false, hash, progress)
    }

    /// [`Encryptor::seal_file`] into a new file that nobody else writes ([`MappedFile::new`],
    /// `unsafe`): filled through a writable map where that is faster (8 threads or more, or
    /// with `hash`) and its file system can allocate the pages ahead; with positioned writes
    /// otherwise.
    pub fn seal_file_mapped(
        self,
        input: &File,
        output: MappedFile<'_>,
        hash: Option<Hash<'_>>,
        progress: Progress<'_>,
    ) -> Result<u64, StreamError> {
        self.seal_chunks(file_chunks(input)?, output.file(), true, hash, progress)
    }

    /// Seals `plaintext` into `file`; `mapped`: `file` came as a [`MappedFile`], and may be
    /// filled through a map.
    fn seal_chunks(
        self,
        plaintext: Chunks<'_>,
        file: &File,
        mapped: bool,
        hash: Option<Hash<'_>>,
        progress: Progress<'_>,
    ) -> Result<u64, StreamError> {
        let total = self.sealed_len(plaintext.len());
        let prefix = self.prefix_len() as usize;
        // A hash is fed from the map as each window is sealed, at any thread count.
        let maps = mapped
            && (hash.is_some()
                || plaintext.len() > CHUNK_SIZE as u64
                    && parallel::maps_output(rayon::current_num_threads()));
        if maps {
            // SAFETY: `mapped` says `file` came as a `MappedFile`, whose constructor was given
            // the same promise: a new file that nobody else writes, truncates or resizes.
            #[allow(unsafe_code)]
            let out = unsafe { self.mapped_output(file, total) };
            match out {
                Ok(mut out) => {
                    let (head, chunks) = out.split_at_mut(prefix);
                    match hash {
                        Some(hash) => {
                            hash(head);
                            parallel::seal_to_map_hashing(
                                &self.cipher,
                                plaintext,
                                chunks,
                                hash,
                                progress,
                            )?
                        }
                        None => parallel::seal_to_map(&self.cipher, plaintext, chunks, progress)?,
                    }
                    return Ok(total);
                }
                // The file system cannot allocate ahead: written instead.
                Err(e) if e.kind() == io::ErrorKind::Unsupported => {}
                Err(e) => return Err(StreamError::Write(e)),
            }
        }
        let header = self.header.to_bytes();
        file.set_len(total)
            .and_then(|()| file.write_all_at(header, 0))
            .and_then(|()| file.write_all_at(&self.nonce, header.len() as u64))
            .map_err(StreamError::Write)?;
        let offset = prefix as u64;
        match hash {
            Some(hash) => {
                hash(header);
                hash(&self.nonce);
                parallel::seal_to_file_hashing(
                    &self.cipher,
                    plaintext,
                    file,
                    offset,
                    hash,
                    progress,
                )?
            }
            None => parallel::seal_to_file(&self.cipher, plaintext, file, offset, progress)?,
        }
        Ok(total)
    }

    /// `file` sized to `total` bytes and mapped, with the header and the payload nonce
    /// written at its start: the chunks go after [`Self::prefix_len`] bytes.
    ///
    /// # Safety
    ///
    /// As for [`MappedOutput::new`]: `file` is a new file that nobody else writes, truncates
    /// or resizes while the map lives.
    #[allow(unsafe_code)]
    unsafe fn mapped_output(&self, file: &File, total: u64) -> io::Result<MappedOutput> {
        // SAFETY: the caller's promise, passed on.
        let mut out = unsafe { MappedOutput::new(file, total)? };
        let header = self.header.to_bytes();
        let prefix = self.prefix_len() as usize;
        mmap::populate(&mut out[..prefix])?;
        out[..header.len()].copy_from_slice(header);
        out[header.len()..prefix].copy_from_slice(&self.nonce);
        Ok(out)
    }
}

/// The regular file `input`, as long as it is now, read with positioned reads.
fn file_chunks(input: &File) -> Result<Chunks<'_>, StreamError> {
    let len = input.metadata().map_err(StreamError::Read)?.len();
    Ok(Chunks::File {
        file: input,
        start: 0,
        len,
    })
}

/// Seals `plaintext` to `recipients` in memory.
pub fn encrypt(recipients: &[&dyn Recipient], plaintext: &[u8]) -> Result<Vec<u8>, EncryptError> {
    Ok(Encryptor::new(recipients)?.seal_slice(plaintext))
}
