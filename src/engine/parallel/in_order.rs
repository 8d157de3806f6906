//! Hashing in file order what many threads open out of order: each thread hands in the
//! sealed copy of the run it opened, and whichever thread completes the next run in file order
//! hashes every run whose turn has come. A signature's hash so sees exactly the bytes that
//! were decrypted, while they are still in a core's cache, and no thread waits for another
//! unless the copies in flight reach their bound.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use super::Hash;
use crate::error::StreamError;

/// Hashes runs in file order as they are handed in, in any order, from any thread.
pub(super) struct InOrder<'h> {
    queue: Mutex<Queue>,
    /// A buffer went back to the spares, or a run failed.
    changed: Condvar,
    /// Held by the one thread hashing now.
    hash: Mutex<Hash<'h>>,
}

struct Queue {
    /// The run to hash next.
    next: usize,
    /// Opened runs waiting for their turn, by index.
    ready: BTreeMap<usize, Vec<u8>>,
    /// Buffers hashed and free to take; `made` so far, at most `most`.
    spare: Vec<Vec<u8>>,
    made: usize,
    most: usize,
    /// The first failing run in file order so far, and its error.
    failed: Option<(usize, StreamError)>,
}

impl<'h> InOrder<'h> {
    pub(super) fn new(hash: Hash<'h>, most: usize) -> Self {
        let queue = Queue {
            next: 0,
            ready: Default::default(),
            spare: Vec::new(),
            made: 0,
            most,
            failed: None,
        };
        InOrder {
            queue: Mutex::new(queue),
            changed: Condvar::new(),
            hash: Mutex::new(hash),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A buffer for the next run: a spare, a new one, or one freed by hashing; `None` once
    /// a run has failed.
    pub(super) fn buffer(&self) -> Option<Vec<u8>> {
        let mut queue = self.queue();
        loop {
            if queue.failed.is_some() {
                return None;
            }
            if let Some(buffer) = queue.spare.pop() {
                return Some(buffer);
            }
            if queue.made < queue.most {
                queue.made += 1;
                return Some(Vec::new());
            }
            queue = self
                .changed
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Hands in run `index`, then hashes every run whose turn has come, unless another
    /// thread is hashing already (it will take this one too).
    pub(super) fn hash(&self, index: usize, sealed: Vec<u8>) {
        self.queue().ready.insert(index, sealed);
        while let Ok(mut hash) = self.hash.try_lock() {
            loop {
                let mut queue = self.queue();
                let next = queue.next;
                let Some(sealed) = queue.ready.remove(&next) else {
                    break;
                };
                drop(queue);
                hash(&sealed);
                let mut queue = self.queue();
                queue.next += 1;
                queue.spare.push(sealed);
                self.changed.notify_one();
            }
            drop(hash);
            // A run handed in after the last look, while this thread still held the hash,
            // found it held: its thread left the hashing to this one.
            let queue = self.queue();
            if !queue.ready.contains_key(&queue.next) {
                return;
            }
        }
    }

    pub(super) fn fail(&self, index: usize, e: StreamError) {
        let mut queue = self.queue();
        if queue.failed.as_ref().is_none_or(|(at, _)| index < *at) {
            queue.failed = Some((index, e));
        }
        self.changed.notify_all();
    }

    pub(super) fn finish(self) -> Result<(), StreamError> {
        let queue = self
            .queue
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        match queue.failed {
            Some((_, e)) => Err(e),
            None => {
                debug_assert!(queue.ready.is_empty(), "every run hashed");
                Ok(())
            }
        }
    }
}
