//! File keys unwrapped ahead, for keys that unwrap many files better than one at a time
//! ([`Identity::unwrap_many`]: a plugin, whose session asks for a PIN or a touch).
//!
//! Before the pool starts, the headers of the batch's sealed files are read (at most
//! [`MAX_AHEAD`] bytes of them in all, each file opened as the batch opens it: from its
//! planned directory's handle, never through a link it would not follow, never blocking on a
//! FIFO) and handed to each such key in one go. Each key is then replaced, for this batch,
//! by [`Ahead`]: the answer it gave for a header with exactly these stanzas, or, for a header
//! it was not asked about (a file rewritten since, or past the limit), the key itself. A file
//! key found ahead is used only for a header of exactly the stanzas it was unwrapped from,
//! and the header's MAC is checked under it when the file is opened, as for any key.

use std::collections::HashMap;
use std::io::BufReader;

use super::Job;
use crate::error::DecryptError;
use crate::file::staging::dir::parent;
use crate::file::Dirs;
use crate::format::{write_stanza, Header, Stanza};
use crate::keys::plugin::PluginError;
use crate::keys::recipient::{FileKey, Identity};

/// The most header bytes read ahead for one batch.
const MAX_AHEAD: usize = 64 << 20;

/// An identity with the answers it gave ahead, by header.
pub(crate) struct Ahead<'a> {
    identity: &'a dyn Identity,
    answers: HashMap<Vec<u8>, Result<Option<FileKey>, PluginError>>,
}

/// `identities`, those that unwrap many files at once given the headers of `jobs` (in
/// directories among `inputs`) first, the others as they are. `None` if none of them does.
pub(crate) fn unwrap_ahead<'a>(
    identities: &[&'a dyn Identity],
    jobs: &[Job],
    inputs: &Dirs,
) -> Option<Vec<Ahead<'a>>> {
    if !identities.iter().any(|i| i.unwraps_many()) {
        return None;
    }
    let headers = read_headers(jobs, inputs);
    let mut out = Vec::with_capacity(identities.len());
    for &identity in identities {
        if !identity.unwraps_many() || headers.is_empty() {
            let answers = HashMap::new();
            out.push(Ahead { identity, answers });
            continue;
        }
        let answers = identity.unwrap_many(&headers);
        let answers = headers
            .iter()
            .zip(answers)
            .filter_map(|(stanzas, answer)| {
                let answer = match answer {
                    None => Ok(None),
                    Some(Ok(key)) => Ok(Some(key)),
                    Some(Err(DecryptError::Plugin(e))) => Err(e),
                    // Malformed for this key: left to the file's own opening, which says so.
                    Some(Err(_)) => return None,
                };
                Some((encode(stanzas), answer))
            })
            .collect();
        out.push(Ahead { identity, answers });
    }
    Some(out)
}

/// The headers of the sealed files among `jobs`, as far as [`MAX_AHEAD`] goes; files that
/// cannot be read, or are not binary age files, are left out.
fn read_headers(jobs: &[Job], inputs: &Dirs) -> Vec<Vec<Stanza>> {
    let mut total = 0;
    let mut headers = Vec::new();
    for job in jobs {
        let Some(header) = read_header(job, inputs) else {
            continue;
        };
        total += header.to_bytes().len();
        if total > MAX_AHEAD {
            break;
        }
        headers.push(header.stanzas);
    }
    headers
}

fn read_header(job: &Job, inputs: &Dirs) -> Option<Header> {
    let dir = inputs.get(&parent(&job.source))?.ok()?;
    let file = dir.open_file(job.source.file_name()?, job.follow).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    Header::read(&mut BufReader::new(file)).ok()
}

/// A header's stanzas as one key for [`Ahead::answers`].
fn encode(stanzas: &[Stanza]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for stanza in stanzas {
        write_stanza(&mut bytes, stanza);
    }
    bytes
}

impl Identity for Ahead<'_> {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>> {
        self.identity.unwrap_stanza(stanza)
    }

    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, DecryptError>> {
        match self.answers.get(&encode(stanzas)) {
            Some(Ok(Some(key))) => Some(Ok(FileKey::from_slice(key.expose_secret())?)),
            Some(Ok(None)) => None,
            Some(Err(e)) => Some(Err(DecryptError::Plugin(e.clone()))),
            None => self.identity.unwrap_stanzas(stanzas),
        }
    }

    fn fingerprint(&self) -> Option<String> {
        self.identity.fingerprint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A key that opens the stanzas of type `mine` (their body is the file key), counting
    /// how often it is asked one header at a time.
    struct Toy {
        asked: AtomicUsize,
    }

    impl Identity for Toy {
        fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            (stanza.kind == "mine").then(|| Ok(FileKey::from_slice(&stanza.body).unwrap()))
        }

        fn unwraps_many(&self) -> bool {
            true
        }
    }

    fn stanza(kind: &str, key: u8) -> Vec<Stanza> {
        let (kind, args, body) = (kind.to_string(), vec!["a".into()], vec![key; 16]);
        vec![Stanza { kind, args, body }]
    }

    #[test]
    fn answers_given_ahead_serve_exactly_their_headers_and_others_ask_the_key() {
        let toy = Toy {
            asked: AtomicUsize::new(0),
        };
        let headers = vec![stanza("mine", 1), stanza("theirs", 2)];
        let answers = toy.unwrap_many(&headers);
        let answers = headers
            .iter()
            .zip(answers)
            .map(|(h, a)| (encode(h), a.transpose().map_err(|_| unreachable!())))
            .collect();
        let ahead = Ahead {
            identity: &toy,
            answers,
        };
        let asked = toy.asked.load(Ordering::SeqCst);
        let key = ahead.unwrap_stanzas(&headers[0]).unwrap().unwrap();
        assert_eq!(key.expose_secret(), &[1; 16]);
        assert!(ahead.unwrap_stanzas(&headers[1]).is_none());
        assert_eq!(toy.asked.load(Ordering::SeqCst), asked, "answered ahead");
        // The same file rewritten: another key in its stanza is the key's to answer.
        let rewritten = stanza("mine", 9);
        let key = ahead.unwrap_stanzas(&rewritten).unwrap().unwrap();
        assert_eq!(key.expose_secret(), &[9; 16]);
        assert_eq!(toy.asked.load(Ordering::SeqCst), asked + 1);
    }
}
