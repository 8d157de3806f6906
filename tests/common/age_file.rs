//! The age v1 layout as `seal` writes it: sizes, where things are in a sealed file, and ways
//! to damage one.

// The age v1 payload layout.
pub const CHUNK: usize = 64 * 1024;
pub const TAG: usize = 16;
pub const SEALED_CHUNK: usize = CHUNK + TAG;
pub const NONCE: usize = 16;

/// The armor lines (issue 6).
pub const BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
pub const END: &str = "-----END AGE ENCRYPTED FILE-----";

/// Offsets in a sealed file, as `seal` writes it (one-line stanza bodies).
pub struct Layout {
    /// The share argument of each `-> X25519 ` stanza.
    pub shares: Vec<usize>,
    /// The body line of each stanza.
    pub bodies: Vec<usize>,
    /// The base64 MAC on the `--- ` line.
    pub mac: usize,
    /// Length of the header, its final newline included.
    pub header_len: usize,
}

impl Layout {
    pub fn of(sealed: &[u8]) -> Layout {
        let (mut shares, mut bodies) = (Vec::new(), Vec::new());
        let mut offset = 0;
        for line in sealed.split_inclusive(|&b| b == b'\n') {
            if shares.len() > bodies.len() {
                bodies.push(offset);
            } else if line.starts_with(b"-> X25519 ") {
                shares.push(offset + "-> X25519 ".len());
            } else if line.starts_with(b"--- ") {
                let (mac, header_len) = (offset + "--- ".len(), offset + line.len());
                return Layout {
                    shares,
                    bodies,
                    mac,
                    header_len,
                };
            }
            offset += line.len();
        }
        panic!("no MAC line in the sealed file");
    }

    /// Offset of chunk `index` (the payload nonce comes first).
    pub fn chunk(&self, index: usize) -> usize {
        self.header_len + NONCE + index * SEALED_CHUNK
    }
}

/// Size of the age file that seals `len` bytes under a header of `header_len` bytes.
pub fn sealed_len(header_len: usize, len: usize) -> usize {
    header_len + NONCE + len + len.div_ceil(CHUNK).max(1) * TAG
}

pub const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A copy of `bytes` with the byte at `at` replaced by `f` of it (which must differ).
pub fn altered(bytes: &[u8], at: usize, f: impl FnOnce(u8) -> u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] = f(out[at]);
    assert_ne!(out[at], bytes[at], "the alteration must change the byte");
    out
}

/// Flips the low bit of the byte at `at`.
pub fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
    altered(bytes, at, |b| b ^ 1)
}

/// Applies `f` to the index of the base64 character at `at`.
pub fn base64_altered(bytes: &[u8], at: usize, f: impl FnOnce(usize) -> usize) -> Vec<u8> {
    altered(bytes, at, |c| {
        let index = BASE64
            .iter()
            .position(|&b| b == c)
            .expect("a base64 character");
        BASE64[f(index)]
    })
}

/// Swaps a base64 character that carries six data bits for another: still canonical base64,
/// but other bytes.
pub fn other_base64(bytes: &[u8], at: usize) -> Vec<u8> {
    base64_altered(bytes, at, |i| i ^ 0b10_0000)
}

/// Sets a padding bit in the last character of a 32-byte value (43 characters, the last of
/// which carries four data bits and two zero bits): the base64 is no longer canonical.
pub fn noncanonical_base64(bytes: &[u8], at: usize) -> Vec<u8> {
    base64_altered(bytes, at, |i| i | 1)
}

pub fn truncated(bytes: &[u8], len: usize) -> Vec<u8> {
    bytes[..len].to_vec()
}

pub fn appended(bytes: &[u8], tail: &[u8]) -> Vec<u8> {
    [bytes, tail].concat()
}
