//! The per-key connection limiter. Mailchimp allows 10 simultaneous connections per API key or
//! user (mailchimp.md §5); the 11th is answered 429. The whole deployment must stay under that,
//! and up to `max_concurrency` worker instances (the queue's Lambda event-source
//! `MaximumConcurrency`) run at once, each with its own process. So each process may hold
//! `max(1, total / max_concurrency)` connections per key, enforced by one semaphore per key
//! shared by every client in the process.
//!
//! Semaphores are registered by the credential's fingerprint (a hash, never the key) and the
//! permit count, so two configurations in one process (tests) do not share a semaphore.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::vendors::limits::Registry;

/// Mailchimp's documented simultaneous-connection limit per key.
pub const MAILCHIMP_CONNECTION_LIMIT: usize = 10;

/// A per-key connection limit, shared process-wide by everything built for the same key and
/// permit count. Cloning shares the semaphore.
#[derive(Clone)]
pub struct ConnectionLimiter {
    semaphore: Arc<Semaphore>,
    permits: usize,
}

/// The semaphores by key fingerprint and permit count.
static SEMAPHORES: Registry<(String, usize), Arc<Semaphore>> = Registry::new();

impl ConnectionLimiter {
    /// The process-wide limiter for `key_fingerprint` (see
    /// [`super::credentials::Credentials::fingerprint`]) with `permits` connections (at least 1).
    pub fn for_key(key_fingerprint: &str, permits: usize) -> Self {
        let permits = permits.max(1);
        let semaphore = SEMAPHORES
            .get_or_insert_with((key_fingerprint.to_string(), permits), || {
                Arc::new(Semaphore::new(permits))
            });
        Self { semaphore, permits }
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
