//! The per-realm limiter. QuickBooks allows 500 requests a minute and 10 concurrent requests
//! per company (realm) and app (docs/vendors/quickbooks.md §4); beyond that it answers 429. Up to
//! `max_concurrency` worker instances (the queue's event-source `MaximumConcurrency`) run at
//! once, each its own process, so each process keeps to `max(1, limit / max_concurrency)` of
//! both, through one rate limiter (`governor`, GCRA) and one [`ConnectionLimiter`] per realm
//! shared by every client in the process.
//!
//! Registered by realm and the two shares, so two configurations in one process (tests) do not
//! share state.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::OwnedSemaphorePermit;

use crate::vendors::limits::{ConnectionLimiter, Registry, permits_per_process};

/// QuickBooks' documented requests per minute per realm and app.
const QUICKBOOKS_REQUESTS_PER_MINUTE: usize = 500;
/// QuickBooks' documented concurrent requests per realm and app.
const QUICKBOOKS_CONCURRENT_REQUESTS: usize = 10;

/// One process's share of a realm's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RealmShare {
    /// Requests per minute this process may send to the realm (at least 1).
    per_minute: usize,
    /// Requests this process may have in flight to the realm at once (at least 1).
    concurrent: usize,
}

impl RealmShare {
    /// QuickBooks' limits divided among `max_concurrency` processes.
    pub(crate) fn for_processes(max_concurrency: usize) -> Self {
        Self {
            per_minute: permits_per_process(QUICKBOOKS_REQUESTS_PER_MINUTE, max_concurrency),
            concurrent: permits_per_process(QUICKBOOKS_CONCURRENT_REQUESTS, max_concurrency),
        }
    }
}

/// The rate and concurrency limits of one realm, shared process-wide. Cloning shares them.
#[derive(Clone)]
pub(crate) struct RealmLimiter {
    share: RealmShare,
    rate: Arc<DefaultDirectRateLimiter>,
    slots: ConnectionLimiter,
}

/// Why no request slot was had in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "no QuickBooks request slot for the realm within {0:?} (this process's share of 500/min, 10 at once)"
)]
pub(crate) struct LimiterTimeout(pub(crate) Duration);

/// The limiters by realm and share.
static LIMITERS: Registry<(String, RealmShare), RealmLimiter> = Registry::new();

/// A GCRA quota that never lets more than `per_minute` through in any 60-second window: a
/// burst of a tenth, and the rest replenished over the minute (a plain `per_minute` quota with
/// the full burst would allow nearly twice the limit across a window's edge).
fn quota(per_minute: usize) -> Quota {
    let per_minute = u32::try_from(per_minute.max(1)).unwrap_or(u32::MAX);
    let burst = (per_minute / 10).max(1);
    let replenish = per_minute.saturating_sub(burst).max(1);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let replenish = NonZeroU32::new(replenish).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(replenish).allow_burst(burst)
}

impl RealmLimiter {
    /// The process-wide limiter of `realm` (any key naming the company, e.g. API host and
    /// realm id) for `share`.
    pub(crate) fn for_realm(realm: &str, share: RealmShare) -> Self {
        let share = RealmShare {
            per_minute: share.per_minute.max(1),
            concurrent: share.concurrent.max(1),
        };
        LIMITERS.get_or_insert_with((realm.to_string(), share), || Self::unshared(share))
    }

    /// A limiter owned by the caller alone (not in the registry).
    fn unshared(share: RealmShare) -> Self {
        Self {
            share,
            rate: Arc::new(RateLimiter::direct(quota(share.per_minute))),
            slots: ConnectionLimiter::unshared(share.concurrent),
        }
    }

    /// Concurrent slots free right now (for tests and metrics).
    fn available(&self) -> usize {
        self.slots.available()
    }

    /// Waits up to `wait` for a concurrent slot and then for the rate; the slot is released
    /// when the permit drops (after the response body was read).
    pub(crate) async fn acquire(
        &self,
        wait: Duration,
    ) -> Result<OwnedSemaphorePermit, LimiterTimeout> {
        // One deadline for both waits: `wait` bounds the whole acquisition, not each step.
        let deadline = tokio::time::Instant::now() + wait;
        let permit = self.slots.acquire(wait).await.ok_or(LimiterTimeout(wait))?;
        tokio::time::timeout_at(deadline, self.rate.until_ready())
            .await
            .map_err(|_| LimiterTimeout(wait))?;
        Ok(permit)
    }
}

impl std::fmt::Debug for RealmLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealmLimiter")
            .field("share", &self.share)
            .field("available", &self.available())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_divide_both_limits() {
        assert_eq!(
            RealmShare::for_processes(1),
            RealmShare {
                per_minute: 500,
                concurrent: 10
            }
        );
        assert_eq!(
            RealmShare::for_processes(4),
            RealmShare {
                per_minute: 125,
                concurrent: 2
            }
        );
        assert_eq!(RealmShare::for_processes(50).concurrent, 1);
        assert_eq!(RealmShare::for_processes(1000).per_minute, 1);
        assert_eq!(RealmShare::for_processes(0), RealmShare::for_processes(1));
    }

    #[test]
    fn same_realm_shares_other_realms_do_not() {
        let share = RealmShare::for_processes(5);
        let a = RealmLimiter::for_realm("qb-limiter-a", share);
        let a2 = RealmLimiter::for_realm("qb-limiter-a", share);
        let b = RealmLimiter::for_realm("qb-limiter-b", share);
        assert!(
            Arc::ptr_eq(&a.slots.semaphore, &a2.slots.semaphore) && Arc::ptr_eq(&a.rate, &a2.rate)
        );
        assert!(!Arc::ptr_eq(&a.slots.semaphore, &b.slots.semaphore));
        let other = RealmLimiter::for_realm("qb-limiter-a", RealmShare::for_processes(1));
        assert!(!Arc::ptr_eq(&a.slots.semaphore, &other.slots.semaphore));
    }

    #[tokio::test]
    async fn the_rate_holds_within_a_minute() {
        // 20 a minute: a burst of 2, then one every 60/18 s.
        let limiter = RealmLimiter::unshared(RealmShare {
            per_minute: 20,
            concurrent: 10,
        });
        let wait = Duration::from_millis(50);
        for _ in 0..2 {
            drop(limiter.acquire(wait).await.expect("within the burst"));
        }
        assert!(limiter.acquire(wait).await.is_err(), "past the burst");
    }

    #[tokio::test]
    async fn concurrency_is_capped() {
        let limiter = RealmLimiter::unshared(RealmShare {
            per_minute: 500,
            concurrent: 2,
        });
        let wait = Duration::from_millis(30);
        let p1 = limiter.acquire(wait).await.unwrap();
        let _p2 = limiter.acquire(wait).await.unwrap();
        assert_eq!(limiter.available(), 0);
        assert_eq!(
            limiter.acquire(wait).await.unwrap_err(),
            LimiterTimeout(wait)
        );
        drop(p1);
        assert!(limiter.acquire(wait).await.is_ok());
    }
}
