//! The memory budget of scrypt, shared by every thread of the process.
//!
//! The work factor of a passphrase stanza is chosen by whoever sealed the file: each
//! derivation takes 1 KiB times 2^factor (256 MiB at age's default of 18, 4 GiB at the limit
//! of 22). Without a budget, a batch of hostile files took that much on every thread at once
//! (16.8 GB for four files of 2^22 on four threads). With it, derivations in flight together
//! use at most [`BUDGET`] bytes, and one larger than the budget runs alone:
//!
//! **peak scrypt memory = max([`BUDGET`], the largest single derivation)**, whatever the
//! number of files or threads: 256 MiB for any batch at factors up to 18, 4 GiB (one file's
//! worth) for a batch at the limit of 22. The rest of the process (buffers of the files in
//! flight, mappings) comes on top, as without scrypt.
//!
//! A derivation waits for its share before it allocates, and gives it back when done (or
//! panics). Waiting blocks a thread of the pool, which is fine: the holder runs scrypt to
//! its end without waiting on the pool, so it always finishes and wakes the next.

use std::sync::{Condvar, Mutex, MutexGuard};

/// Bytes of scrypt memory in flight at once, across the process: four derivations at 2^16,
/// or one at age's default of 2^18.
pub const BUDGET: u64 = 256 << 20;

/// The bytes a derivation of `N = 2^log2_n`, `r = 8`, `p = 1` allocates: its `V` array of
/// `128 * r * N` bytes (the rest is a few KiB).
pub fn derivation_bytes(log2_n: u8) -> u64 {
    (128 * 8) << log2_n
}

/// A budget of bytes, lent out and waited for.
pub struct Budget {
    capacity: u64,
    in_use: Mutex<u64>,
    freed: Condvar,
}

/// A share of a [`Budget`], given back when dropped.
pub struct Share<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    /// A budget of `capacity` bytes.
    pub const fn new(capacity: u64) -> Budget {
        Budget {
            capacity,
            in_use: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits until `bytes` fit, and takes them; more than the capacity takes all of it.
    pub fn take(&self, bytes: u64) -> Share<'_> {
        let bytes = bytes.min(self.capacity);
        let mut in_use = self.lock();
        while *in_use + bytes > self.capacity {
            in_use = self.freed.wait(in_use).unwrap_or_else(|e| e.into_inner());
        }
        *in_use += bytes;
        Share {
            budget: self,
            bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, u64> {
        // The count stays right even if a thread panicked holding the lock: it is only ever
        // changed in one statement.
        self.in_use.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        *self.budget.lock() -= self.bytes;
        self.budget.freed.notify_all();
    }
}

/// The process's budget.
static PROCESS: Budget = Budget::new(BUDGET);

/// Waits for the memory of one derivation at `2^log2_n` from the process's budget.
pub fn reserve(log2_n: u8) -> Share<'static> {
    PROCESS.take(derivation_bytes(log2_n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn small_shares_run_together_and_a_large_one_waits_for_all_of_them() {
        let budget = Budget::new(100);
        let small: Vec<Share<'_>> = (0..4).map(|_| budget.take(25)).collect();
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let _all = budget.take(1000);
                done.store(true, Ordering::SeqCst);
            });
            std::thread::sleep(Duration::from_millis(100));
            assert!(!done.load(Ordering::SeqCst), "took more than the budget");
            drop(small);
        });
        assert!(done.load(Ordering::SeqCst));
        assert_eq!(*budget.lock(), 0);
    }

    #[test]
    fn large_shares_run_one_at_a_time() {
        let budget = Budget::new(100);
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    let _share = budget.take(150);
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    now.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_share_comes_back_when_its_holder_panics() {
        let budget = Budget::new(100);
        let panicked = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let _share = budget.take(100);
                    panic!("scrypt failed");
                })
                .join()
        });
        assert!(panicked.is_err());
        drop(budget.take(100));
    }

    #[test]
    fn a_derivation_at_2_to_the_18_is_256_mib() {
        assert_eq!(derivation_bytes(18), 256 << 20);
        assert_eq!(derivation_bytes(22), 4 << 30);
    }
}
