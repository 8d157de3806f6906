//! Opening: parse the header, find an identity that unwraps the file key, check the header
//! MAC, then decrypt the payload, as a stream or on every core.

use std::fs::File;
use std::io::{self, BufRead, Chain, Cursor, Read};

use zeroize::Zeroizing;

use crate::engine::chunks::{self, Chunks};
use crate::engine::mmap::MappedOutput;
use crate::engine::{parallel, pipeline};
use crate::engine::{Hash, Progress};
use crate::error::{DecryptError, StreamError};
use crate::format::armor::{self, ArmorError, ArmoredReader};
use crate::format::stream::{PayloadCipher, StreamReader, CHUNK_SIZE, NONCE_SIZE};
use crate::format::Header;
use crate::keys::recipient::{FileKey, Identity};
use crate::primitives::{hkdf, hmac_verify};

/// Finds the file key: each identity tries each stanza; the first that opens one wins, and
/// the header MAC must then verify under that key. A header whose passphrase stanza has
/// company is refused first.
pub fn unwrap_file_key(
    header: &Header,
    identities: &[&dyn Identity],
) -> Result<FileKey, DecryptError> {
    unwrap_file_key_by(header, identities).map(|(file_key, _, _)| file_key)
}

/// [`unwrap_file_key`], the key of the header MAC it checked, and which of `identities` (its
/// index) unwrapped it.
pub(crate) fn unwrap_file_key_by(
    header: &Header,
    identities: &[&dyn Identity],
) -> Result<(FileKey, HeaderKey, usize), DecryptError> {
    header.check_alone()?;
    // A plugin that failed does not stop the other keys; it is the error if none opens it.
    let mut failed_plugin = None;
    for (i, identity) in identities.iter().enumerate() {
        let file_key = match identity.unwrap_stanzas(&header.stanzas) {
            None => continue,
            Some(Err(DecryptError::Plugin(e))) => {
                failed_plugin.get_or_insert(e);
                continue;
            }
            Some(file_key) => file_key?,
        };
        let header_key = HeaderKey::of(&file_key);
        if !header_key.authenticates(header) {
            return Err(DecryptError::HeaderMac);
        }
        return Ok((file_key, header_key, i));
    }
    Err(match failed_plugin {
        Some(e) => DecryptError::Plugin(e),
        None => DecryptError::NoMatch {
            tried: identities.len(),
        },
    })
}

/// The key of a file key's header MAC: whether a header's MAC checks under it says whether
/// that header wraps the same file key (a rotated file's original header, `crate::rotate`).
pub(crate) struct HeaderKey(Zeroizing<[u8; 32]>);

impl HeaderKey {
    pub(crate) fn of(file_key: &FileKey) -> HeaderKey {
        HeaderKey(hkdf(&[], file_key.expose_secret(), b"header"))
    }

    /// Whether `header`'s MAC checks under this key.
    pub(crate) fn authenticates(&self, header: &Header) -> bool {
        hmac_verify(self.0.as_ref(), header.mac_input(), &header.mac)
    }
}

/// The payload nonce is read with the header, and age counts a short one as a header failure.
pub(crate) fn short_nonce() -> DecryptError {
    DecryptError::header("the file ends before the 16-byte payload nonce")
}

/// A sealed stream whose header has been read. Binary and ASCII-armored input are both
/// accepted: armor is detected from the first bytes and decoded as the stream is read.
pub struct Decryptor<R: BufRead> {
    header: Header,
    input: Input<R>,
}

/// The rest of a [`Decryptor`]'s input after its header: the payload as it is, or with its
/// armor removed line by line.
pub struct Input<R: BufRead>(Source<R>);

/// The bytes read to detect armor, then the rest of the input.
type Peeked<R> = Chain<Cursor<Vec<u8>>, R>;

enum Source<R: BufRead> {
    Binary(Peeked<R>),
    Armored(ArmoredReader<Peeked<R>>),
}

impl<R: BufRead> Input<R> {
    /// Reads enough of `input` to tell armor from binary: leading whitespace (at most a few
    /// KiB of it) and then as many bytes as the begin line has.
    fn detect(mut input: R) -> io::Result<Input<R>> {
        const MAX_LEADING_WHITESPACE: usize = 4096;
        let mut peeked = Vec::new();
        while peeked.len() < MAX_LEADING_WHITESPACE {
            let buf = input.fill_buf()?;
            let n = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let done = buf.is_empty() || n < buf.len();
            peeked.extend_from_slice(&buf[..n]);
            input.consume(n);
            if done {
                break;
            }
        }
        (&mut input)
            .take(armor::BEGIN.len() as u64)
            .read_to_end(&mut peeked)?;
        let armored = armor::is_armored(&peeked);
        let chained = Cursor::new(peeked).chain(input);
        Ok(Input(match armored {
            true => Source::Armored(ArmoredReader::new(chained)),
            false => Source::Binary(chained),
        }))
    }

    /// Whether the input is ASCII-armored.
    pub fn is_armored(&self) -> bool {
        matches!(self.0, Source::Armored(_))
    }
}

impl<R: BufRead> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.0 {
            Source::Binary(r) => r.read(buf),
            Source::Armored(r) => r.read(buf),
        }
    }
}

impl<R: BufRead> BufRead for Input<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match &mut self.0 {
            Source::Binary(r) => r.fill_buf(),
            Source::Armored(r) => r.fill_buf(),
        }
    }

    fn consume(&mut self, amt: usize) {
        match &mut self.0 {
            Source::Binary(r) => r.consume(amt),
            Source::Armored(r) => r.consume(amt),
        }
    }
}

/// A read error of a stream, or the armor decoder reporting malformed armor.
fn read_side(e: DecryptError) -> StreamError {
    match e {
        DecryptError::Io(e) => StreamError::Read(e),
        other => StreamError::Decrypt(other),
    }
}

impl<R: BufRead> Decryptor<R> {
    /// Detects armor, then reads and parses the header.
    pub fn new(input: R) -> Result<Self, DecryptError> {
        let mut input = Input::detect(input)?;
        let header = Header::read(&mut input)?;
        Ok(Decryptor { header, input })
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Whether the input is ASCII-armored.
    pub fn is_armored(&self) -> bool {
        self.input.is_armored()
    }

    /// Unwraps the file key (which checks the header MAC) and reads the payload nonce: the
    /// header is now known to be the sealer's, and the payload is ready to decrypt.
    pub fn open(mut self, identities: &[&dyn Identity]) -> Result<OpenStream<R>, DecryptError> {
        let (cipher, header_key) = self.payload_cipher(identities)?;
        Ok(OpenStream {
            header: self.header,
            input: self.input,
            cipher,
            header_key,
        })
    }

    /// Unwraps the file key and returns a reader of the authenticated plaintext.
    pub fn unwrap(
        self,
        identities: &[&dyn Identity],
    ) -> Result<StreamReader<Input<R>>, DecryptError> {
        Ok(self.open(identities)?.into_reader())
    }

    /// Unwraps the file key and decrypts the rest of the stream into `output`: see
    /// [`OpenStream::decrypt_to`].
    pub fn decrypt_stream<W: std::io::Write + Send>(
        self,
        identities: &[&dyn Identity],
        output: W,
    ) -> Result<(), StreamError>
    where
        R: Send,
    {
        self.open(identities).map_err(read_side)?.decrypt_to(output)
    }

    fn payload_cipher(
        &mut self,
        identities: &[&dyn Identity],
    ) -> Result<(PayloadCipher, HeaderKey), DecryptError> {
        let (file_key, header_key, _) = unwrap_file_key_by(&self.header, identities)?;
        let mut nonce = [0u8; NONCE_SIZE];
        self.input
            .read_exact(&mut nonce)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => short_nonce(),
                _ => DecryptError::from(e),
            })?;
        Ok((PayloadCipher::new(&file_key, &nonce), header_key))
    }
}

/// A sealed stream whose file key is unwrapped and header MAC checked ([`Decryptor::open`]).
pub struct OpenStream<R: BufRead> {
    header: Header,
    input: Input<R>,
    cipher: PayloadCipher,
    header_key: HeaderKey,
}

impl<R: BufRead> OpenStream<R> {
    /// The header, authenticated.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Whether `other` wraps the same file key as this stream's header (its MAC checks
    /// under that key): a rotated file's original header does.
    pub fn authenticates(&self, other: &Header) -> bool {
        self.header_key.authenticates(other)
    }

    /// A reader of the authenticated plaintext, chunk by chunk.
    pub fn into_reader(self) -> StreamReader<Input<R>> {
        StreamReader::new(self.input, self.cipher)
    }

    /// Decrypts the rest of the stream into `output` on every core of the current rayon
    /// pool, a window of chunks at a time, in bounded memory (48 MiB of buffers at most,
    /// whatever the stream's size); in a pool of one thread, chunk by chunk. Only authenticated plaintext reaches `output`.
    pub fn decrypt_to<W: std::io::Write + Send>(self, mut output: W) -> Result<(), StreamError>
    where
        R: Send,
    {
        let threads = rayon::current_num_threads();
        if threads > 1 {
            let opened = pipeline::open(&self.cipher, self.input, output, threads);
            return opened.map_err(|e| match e {
                StreamError::Read(e) => read_side(DecryptError::from(e)),
                other => other,
            });
        }
        let mut reader = self.into_reader();
        while let Some(chunk) = reader.next_chunk().map_err(read_side)? {
            output.write_all(chunk).map_err(StreamError::Write)?;
        }
        output.flush().map_err(StreamError::Write)
    }
}

/// A whole sealed file in memory (or mapped), opened with random access to its chunks.
///
/// Binary only: armored input is refused with [`DecryptError::InvalidArmor`]; decode it with
/// [`armor::decode`] first, or read it through [`Decryptor`] (as [`decrypt`] does).
pub struct SealedSlice<'a> {
    header: Header,
    payload: &'a [u8],
}

impl<'a> SealedSlice<'a> {
    /// Parses the header at the start of `sealed`.
    pub fn new(sealed: &'a [u8]) -> Result<Self, DecryptError> {
        if armor::is_armored(sealed) {
            return Err(DecryptError::InvalidArmor(ArmorError::not_binary(
                "armored input needs decoding first (armor::decode)",
            )));
        }
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
        let (file_key, header_key, _) = unwrap_file_key_by(&self.header, identities)?;
        if self.payload.len() < NONCE_SIZE {
            return Err(short_nonce());
        }
        let (nonce, encrypted) = self.payload.split_at(NONCE_SIZE);
        let nonce = nonce.try_into().expect("split at the nonce size");
        OpenPayload::new(&file_key, header_key, nonce, Chunks::Memory(encrypted))
    }
}

/// A sealed file on disk, opened with random access to its chunks.
///
/// Nothing is mapped: the header, the payload nonce and each run of chunks are read once,
/// with positioned reads, into this process's memory, and only those copies are
/// authenticated, decrypted and hashed (see `src/engine/chunks.rs`). So the file may be rewritten
/// or truncated while it is opened, as a hostile upload can be, and the worst that follows
/// is an error for this file: never plaintext that was not authenticated, never a fault.
/// Binary only, as [`SealedSlice`]: armored files go through [`Decryptor`].
pub struct SealedFile<'f> {
    file: &'f File,
    header: Header,
    /// The header and the payload nonce, exactly as read: what a signature's hash begins with.
    head: Vec<u8>,
    /// The file's size when it was opened: later growth is not read.
    len: u64,
}

impl<'f> SealedFile<'f> {
    /// Reads and parses the header of `file`, and the payload nonce after it.
    pub fn new(file: &'f File) -> Result<Self, DecryptError> {
        let len = file.metadata()?.len();
        let mut reader = io::BufReader::new(chunks::ReadAt::new(file, 0));
        if armor::is_armored(reader.fill_buf()?) {
            return Err(DecryptError::InvalidArmor(ArmorError::not_binary(
                "armored input is read as a stream (Decryptor)",
            )));
        }
        let header = Header::read(&mut reader)?;
        let mut head = header.to_bytes().to_vec();
        let header_len = head.len() as u64;
        let nonce_len = len.saturating_sub(header_len).min(NONCE_SIZE as u64) as usize;
        head.resize(head.len() + nonce_len, 0);
        chunks::read_exact_at(file, &mut head[header_len as usize..], header_len)?;
        Ok(SealedFile {
            file,
            header,
            head,
            len,
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header and the payload nonce as read: the first bytes of a signature's hash, which
    /// [`OpenPayload::decrypt`] continues over the chunks.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Unwraps the file key, checks the payload size and authenticates the last chunk.
    pub fn unwrap(&self, identities: &[&dyn Identity]) -> Result<OpenPayload<'f>, DecryptError> {
        let (file_key, header_key, _) = unwrap_file_key_by(&self.header, identities)?;
        let header_len = self.header.to_bytes().len();
        let nonce: [u8; NONCE_SIZE] = self.head[header_len..]
            .try_into()
            .map_err(|_| short_nonce())?;
        let start = self.head.len() as u64;
        let chunks = Chunks::File {
            file: self.file,
            start,
            len: self.len - start,
        };
        OpenPayload::new(&file_key, header_key, &nonce, chunks)
    }
}

/// A payload whose key is known, whose size is valid and whose last chunk authenticates.
pub struct OpenPayload<'a> {
    cipher: PayloadCipher,
    chunks: Chunks<'a>,
    plaintext_len: u64,
    header_key: HeaderKey,
}

/// A caller's promise about a new output file: it may be filled through a writable map.
///
/// Made only by the `unsafe` [`MappedFile::new`]; given to
/// [`Output::Mapped`](crate::Output::Mapped) or
/// [`Encryptor::seal_file_mapped`](crate::Encryptor::seal_file_mapped), which map it where
/// that is faster (8 threads or more, and for a signed seal) and the file system can allocate
/// its pages ahead, and write it with positioned writes otherwise.
#[derive(Debug, Clone, Copy)]
pub struct MappedFile<'a>(&'a File);

impl<'a> MappedFile<'a> {
    /// Allows `file` to be filled through a writable map.
    ///
    /// # Safety
    ///
    /// `file` must be a new file, open for reading and writing, that nobody else (no other
    /// thread or process, no other handle of this one) writes, truncates or resizes while it
    /// is being filled: such as a temporary file this process just created, mode 0600. A file
    /// truncated under a map raises SIGBUS when the map is written, and a write through
    /// another handle races with the map's.
    #[allow(unsafe_code)] // Only the promise: the function itself does nothing unsafe.
    pub unsafe fn new(file: &'a File) -> MappedFile<'a> {
        MappedFile(file)
    }

    /// The file.
    pub(crate) fn file(&self) -> &'a File {
        self.0
    }
}

/// Where [`OpenPayload::decrypt`] writes the plaintext.
#[non_exhaustive]
pub enum Output<'a> {
    /// A new file, grown to the plaintext size and filled on every core with positioned
    /// writes. On error it holds partial plaintext: the caller must discard it.
    File(&'a File),
    /// A new file that nobody else writes ([`MappedFile::new`], `unsafe`): as
    /// [`Output::File`], but filled through a writable map where that is faster (8 threads or
    /// more) and its file system can allocate the pages ahead; with positioned writes
    /// otherwise.
    Mapped(MappedFile<'a>),
    /// A stream (standard output, a pipe), written in order a window at a time: only
    /// authenticated windows reach it, so on a corrupt chunk it has received the windows
    /// before it, as with any stream.
    Writer(&'a mut (dyn io::Write + Send)),
}

impl<'a> OpenPayload<'a> {
    fn new(
        file_key: &FileKey,
        header_key: HeaderKey,
        nonce: &[u8; NONCE_SIZE],
        chunks: Chunks<'a>,
    ) -> Result<Self, DecryptError> {
        let cipher = PayloadCipher::new(file_key, nonce);
        let plaintext_len =
            parallel::check_payload(&cipher, &chunks).map_err(DecryptError::from)?;
        Ok(OpenPayload {
            cipher,
            chunks,
            plaintext_len,
            header_key,
        })
    }

    /// Whether `header` wraps the same file key as the header this payload was opened with
    /// (its MAC checks under that key): a rotated file's original header does.
    pub fn authenticates(&self, header: &Header) -> bool {
        self.header_key.authenticates(header)
    }

    /// Size of the plaintext.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Decrypts into memory on every core of the current rayon pool.
    pub fn decrypt_to_vec(&self) -> Result<Vec<u8>, DecryptError> {
        let mut out = Zeroizing::new(vec![0u8; self.plaintext_len as usize]);
        let sink = parallel::Sink::Slice(&mut out);
        let threads = rayon::current_num_threads();
        parallel::open(&self.cipher, self.chunks, sink, None, &|_| {}, threads)
            .map_err(DecryptError::from)?;
        Ok(std::mem::take(&mut *out))
    }

    /// Decrypts into `file` from its start, on every core of the current rayon pool. On error
    /// the file holds partial plaintext: the caller must discard it.
    pub fn decrypt_to_file(&self, file: &File) -> Result<u64, DecryptError> {
        self.decrypt(Output::File(file), None, &|_| {})
            .map_err(DecryptError::from)
    }

    /// Decrypts to `out` (standard output, a pipe) in order, on every core of the current
    /// rayon pool; see [`Output::Writer`].
    pub fn decrypt_to_writer<W: io::Write + Send>(&self, mut out: W) -> Result<u64, StreamError> {
        self.decrypt(Output::Writer(&mut out), None, &|_| {})
    }

    /// Decrypts to `output` on every core of the current rayon pool, calling `progress` with
    /// each finished run of plaintext bytes; returns the plaintext size.
    ///
    /// With `hash`, every sealed byte of the chunks goes to it in order (after
    /// [`SealedFile::head`], which the caller hashes first): exactly the bytes that were
    /// authenticated and decrypted, so a signature checked over the hash is a signature
    /// over the plaintext released.
    pub fn decrypt(
        &self,
        output: Output<'_>,
        hash: Option<Hash<'_>>,
        progress: Progress<'_>,
    ) -> Result<u64, StreamError> {
        let threads = rayon::current_num_threads();
        let sink = match output {
            Output::Writer(out) => parallel::Sink::Writer(out),
            Output::File(file) => self.positioned(file)?,
            Output::Mapped(mapped) => {
                let file = mapped.file();
                let maps = self.plaintext_len > CHUNK_SIZE as u64 && parallel::maps_output(threads);
                // SAFETY: `MappedFile::new` was given the same promise: a new file that
                // nobody else writes, truncates or resizes while it is filled.
                #[allow(unsafe_code)]
                let out = maps.then(|| unsafe { MappedOutput::new(file, self.plaintext_len) });
                match out {
                    Some(Ok(mut out)) => {
                        // Pages are allocated before they are written, so a full file system
                        // is an error, not a fault while the map is written.
                        let sink = parallel::Sink::Map(&mut out);
                        return parallel::open(
                            &self.cipher,
                            self.chunks,
                            sink,
                            hash,
                            progress,
                            threads,
                        );
                    }
                    // The file system cannot allocate ahead: written instead.
                    Some(Err(e)) if e.kind() == io::ErrorKind::Unsupported => {
                        self.positioned(file)?
                    }
                    Some(Err(e)) => return Err(StreamError::Write(e)),
                    None => self.positioned(file)?,
                }
            }
        };
        parallel::open(&self.cipher, self.chunks, sink, hash, progress, threads)
    }

    /// `file` grown to the plaintext size, to be filled with positioned writes.
    fn positioned<'f>(&self, file: &'f File) -> Result<parallel::Sink<'f>, StreamError> {
        file.set_len(self.plaintext_len)
            .map_err(StreamError::Write)?;
        Ok(parallel::Sink::File(file, 0))
    }
}

/// Opens a sealed file held in memory, binary or armored, on every core of the current rayon
/// pool.
///
/// ```
/// let server = seal::x25519::Identity::generate();
/// let sealed = seal::encrypt(&[&server.to_public()], b"hello")?;
/// assert_eq!(seal::decrypt(&[&server], &sealed)?, b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decrypt(identities: &[&dyn Identity], sealed: &[u8]) -> Result<Vec<u8>, DecryptError> {
    if armor::is_armored(sealed) {
        let binary = armor::decode(sealed)?;
        return SealedSlice::new(&binary)?
            .unwrap(identities)?
            .decrypt_to_vec();
    }
    SealedSlice::new(sealed)?
        .unwrap(identities)?
        .decrypt_to_vec()
}
