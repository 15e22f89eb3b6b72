//! What the vendors' rate and connection limiters share: dividing a vendor's limit among the
//! worker processes, and the process-wide registry every client for the same key draws from.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, OnceLock};

/// What one process may use of a deployment-wide `total`: `max(1, total / max_concurrency)`,
/// `max_concurrency` being how many worker processes run at once (the queue's event-source
/// `MaximumConcurrency`). A zero `max_concurrency` is treated as 1.
pub fn permits_per_process(total: usize, max_concurrency: usize) -> usize {
    (total / max_concurrency.max(1)).max(1)
}

/// Process-wide limiters by key: every client built for the same key (and configuration, part
/// of the key so two configurations in one process, as in tests, do not share) gets the same
/// limiter. For a `static`.
pub(crate) struct Registry<K, V>(OnceLock<Mutex<HashMap<K, V>>>);

impl<K: Eq + Hash, V: Clone> Registry<K, V> {
    pub(crate) const fn new() -> Self {
        Self(OnceLock::new())
    }

    /// The limiter registered under `key`, made by `make` if there is none yet.
    pub(crate) fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> V {
        // A poisoned lock only means another thread panicked while inserting; the map is
        // still a valid map.
        let mut map = self
            .0
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(key).or_insert_with(make).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_divide_the_total() {
        assert_eq!(permits_per_process(10, 1), 10);
        assert_eq!(permits_per_process(10, 0), 10);
        assert_eq!(permits_per_process(10, 2), 5);
        assert_eq!(permits_per_process(10, 3), 3);
        assert_eq!(permits_per_process(10, 10), 1);
        assert_eq!(permits_per_process(10, 50), 1);
    }
}
