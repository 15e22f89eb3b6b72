//! What the vendors' rate and connection limiters share: dividing a vendor's limit among the
//! worker processes, the process-wide registry every client for the same key draws from, and
//! the connection limiter (a semaphore with a bounded wait) Mailchimp and QuickBooks both use.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::convert::Infallible;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What one process may use of a deployment-wide `total`: `max(1, total / max_concurrency)`,
/// `max_concurrency` being how many worker processes run at once (the queue's event-source
/// `MaximumConcurrency`). A zero `max_concurrency` is treated as 1.
pub fn permits_per_process(total: usize, max_concurrency: usize) -> usize {
    (total / max_concurrency.max(1)).max(1)
}

/// Process-wide limiters (or other shared clients) by key: every client built for the same key
/// (and configuration, part of the key so two configurations in one process, as in tests, do
/// not share) gets the same value. For a `static`.
pub(crate) struct Registry<K, V>(OnceLock<Mutex<HashMap<K, V>>>);

impl<K: Eq + Hash, V: Clone> Registry<K, V> {
    pub(crate) const fn new() -> Self {
        Self(OnceLock::new())
    }

    /// The value registered under `key`, made by `make` if there is none yet.
    pub(crate) fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> V {
        let Ok(value) = self.get_or_try_insert_with(key, || Ok::<_, Infallible>(make()));
        value
    }

    /// The value registered under `key`, made by `make` if there is none yet; if `make` fails,
    /// its error, and nothing is registered.
    pub(crate) fn get_or_try_insert_with<E>(
        &self,
        key: K,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        // A poisoned lock only means another thread panicked while inserting; the map is
        // still a valid map.
        let mut map = self
            .0
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match map.entry(key) {
            Entry::Occupied(entry) => Ok(entry.get().clone()),
            Entry::Vacant(entry) => Ok(entry.insert(make()?).clone()),
        }
    }
}

/// A limit on simultaneous connections (or requests in flight). Cloning shares the semaphore;
/// [`ConnectionLimiter::for_key`] shares it process-wide by key and permit count.
#[derive(Clone)]
pub struct ConnectionLimiter {
    pub(super) semaphore: Arc<Semaphore>,
    permits: usize,
}

/// The semaphores by key and permit count.
static SEMAPHORES: Registry<(String, usize), Arc<Semaphore>> = Registry::new();

impl ConnectionLimiter {
    /// The process-wide limiter for `key` (a credential's fingerprint, never the secret itself)
    /// with `permits` connections (at least 1).
    pub fn for_key(key: &str, permits: usize) -> Self {
        let permits = permits.max(1);
        let semaphore = SEMAPHORES.get_or_insert_with((key.to_string(), permits), || {
            Arc::new(Semaphore::new(permits))
        });
        Self { semaphore, permits }
    }

    /// A limiter owned by the caller alone (not in the registry), with `permits` connections
    /// (at least 1).
    pub fn unshared(permits: usize) -> Self {
        let permits = permits.max(1);
        Self {
            semaphore: Arc::new(Semaphore::new(permits)),
            permits,
        }
    }

    /// The configured number of simultaneous connections.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Permits free right now (for tests and metrics).
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// Waits up to `wait` for a connection slot; `None` if none freed up in time. The slot is
    /// released when the permit is dropped.
    pub async fn acquire(&self, wait: Duration) -> Option<OwnedSemaphorePermit> {
        match tokio::time::timeout(wait, self.semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Some(permit),
            // The semaphore is never closed; treat it like a timeout all the same.
            Ok(Err(_)) | Err(_) => None,
        }
    }
}

impl std::fmt::Debug for ConnectionLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionLimiter")
            .field("permits", &self.permits)
            .field("available", &self.available())
            .finish()
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

    #[test]
    fn same_key_shares_other_keys_do_not() {
        let a = ConnectionLimiter::for_key("limiter-test-a", 2);
        let a2 = ConnectionLimiter::for_key("limiter-test-a", 2);
        let b = ConnectionLimiter::for_key("limiter-test-b", 2);
        let a3 = ConnectionLimiter::for_key("limiter-test-a", 3);
        assert!(Arc::ptr_eq(&a.semaphore, &a2.semaphore));
        assert!(!Arc::ptr_eq(&a.semaphore, &b.semaphore));
        assert!(!Arc::ptr_eq(&a.semaphore, &a3.semaphore));
        assert_eq!(ConnectionLimiter::for_key("limiter-test-z", 0).permits(), 1);
    }

    #[tokio::test]
    async fn holds_at_most_permits_and_times_out() {
        let limiter = ConnectionLimiter::for_key("limiter-test-c", 2);
        let wait = Duration::from_millis(20);
        let p1 = limiter.acquire(wait).await.expect("first");
        let _p2 = limiter.acquire(wait).await.expect("second");
        assert_eq!(limiter.available(), 0);
        // The clone shares the semaphore, so it is full too.
        assert!(limiter.clone().acquire(wait).await.is_none());
        drop(p1);
        assert!(limiter.acquire(wait).await.is_some());
    }

    #[tokio::test]
    async fn concurrent_tasks_never_exceed_the_limit() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let limiter = ConnectionLimiter::for_key("limiter-test-d", 3);
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (limiter, now, peak) = (limiter.clone(), now.clone(), peak.clone());
                tokio::spawn(async move {
                    let _permit = limiter.acquire(Duration::from_secs(5)).await.unwrap();
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let peak = peak.load(Ordering::SeqCst);
        assert!((1..=3).contains(&peak), "peak {peak}");
    }
}
