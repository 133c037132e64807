//! Housekeeping a store does on the request path's behalf, such as deleting expired rows:
//! at most once per interval per process, the request that finds it due is elected (one
//! compare-and-swap, so concurrent requests never both start it) and starts it in the
//! background. No timer task to own, and an idle process does no work.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The election for one chore, shared by the clones of the store that runs it.
#[derive(Debug, Clone)]
pub struct Chore {
    /// Unix seconds of the last election (0: never).
    last: Arc<AtomicU64>,
    every_s: u64,
}

impl Chore {
    pub fn every(every_s: u64) -> Self {
        Self {
            last: Arc::new(AtomicU64::new(0)),
            every_s,
        }
    }

    /// Whether the caller, at `now` (unix seconds), is the one to run the chore: true at
    /// most once per interval in this process.
    pub fn elect(&self, now: u64) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        now >= last.saturating_add(self.every_s)
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Unix seconds of the last election (0: never).
    pub fn last(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }

    /// Makes the chore due at once (tests).
    pub fn make_due(&self) {
        self.last.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_election_per_interval() {
        let chore = Chore::every(60);
        assert!(chore.elect(1_000));
        assert!(!chore.elect(1_059), "not due yet");
        assert!(chore.elect(1_060));
        assert_eq!(chore.last(), 1_060);
        chore.make_due();
        assert!(chore.elect(1_061));
    }
}
