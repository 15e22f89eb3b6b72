//! The per-portal limiter (docs/vendors/hubspot.md §3.3, §4.1, §4.2), one per portal and
//! process, shared by every client for that portal:
//!
//! - **burst**: HubSpot allows 100 (Free/Starter), 190 (Professional/Enterprise) or 250 (API
//!   pack) requests per rolling 10 s per app and portal. Up to `WORKER_MAX_CONCURRENCY` worker
//!   processes run at once, so each keeps to `permits_per_process(burst, max_concurrency)`
//!   through a GCRA limiter (`governor`). The burst starts from the set's tier (100 when
//!   unknown) and follows `X-HubSpot-RateLimit-Max` / `-Interval-Milliseconds` once a
//!   response carries them: the portal's own answer beats a configured tier.
//! - **search**: ≤ 4 requests a second (the changelog's per-token limit; search answers carry
//!   no rate headers), divided the same way.
//! - **daily**: once a 429 `DAILY` arrives, every later call for the portal is answered
//!   [`HubspotError::DailyLimit`] without a network call until the portal's next midnight (its
//!   time zone from `GET /account-info/v3/details`, cached here), so held events do not spend
//!   their receives on calls bound to fail.
//!
//! Each GCRA quota lets at most its total through in any window: a tenth as the burst and the
//! rest replenished over the window (a full burst plus a full window's replenishment would
//! allow nearly twice the limit across a window's edge), as the QuickBooks limiter does.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::HeaderMap;

use super::error::{BURST_WINDOW, HubspotError};
use crate::vendors::limits::{Registry, permits_per_process};

/// HubSpot's search limit per second (docs/vendors/hubspot.md §3.3: 4/s per token; 2026 docs
/// reportedly 5/s per account — the lower is kept).
const SEARCH_PER_SECOND: usize = 4;

/// The header with the burst limit of the window (docs/vendors/hubspot.md §4.1).
pub(crate) const MAX_HEADER: &str = "x-hubspot-ratelimit-max";
/// The header with the burst window's length in milliseconds.
pub(crate) const INTERVAL_HEADER: &str = "x-hubspot-ratelimit-interval-milliseconds";

/// Longest window a header may set (a bad header must not stall a portal for hours).
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// How long a failed time-zone lookup is not retried.
const ZONE_RETRY: chrono::Duration = chrono::Duration::hours(1);

/// Which of the portal's limits a call counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// Every call: the burst limit.
    Normal,
    /// A CRM search: the burst limit and the search limit.
    Search,
}

/// The burst limit in force and its limiter.
struct Burst {
    /// Whether an answer's `X-HubSpot-RateLimit-Max` stated `total`: the tier a connection
    /// names is then only a stale guess, and [`PortalLimiter::set_burst`] leaves it be.
    learned: bool,
    /// Requests per window for the whole app on the portal.
    total: u32,
    /// The window.
    interval: Duration,
    rate: Arc<DefaultDirectRateLimiter>,
}

/// What is known of the portal's time zone.
#[derive(Debug, Clone, Copy)]
enum Zone {
    Unknown,
    Known(Tz),
    /// The lookup failed at this time; not retried for [`ZONE_RETRY`].
    Failed(DateTime<Utc>),
}

/// One portal's limits in this process. Shared (`Arc`) by every client of the portal.
pub(crate) struct PortalLimiter {
    max_concurrency: usize,
    burst: Mutex<Burst>,
    search: DefaultDirectRateLimiter,
    daily_until: Mutex<Option<DateTime<Utc>>>,
    zone: Mutex<Zone>,
}

/// The limiters by portal key (API host and portal id) and process count.
static LIMITERS: Registry<(String, usize), Arc<PortalLimiter>> = Registry::new();

/// A GCRA quota letting at most `total` through in any `interval`: a tenth of it at once, the
/// rest spread over the window.
fn quota(total: usize, interval: Duration) -> Quota {
    let total = u32::try_from(total.max(1)).unwrap_or(u32::MAX);
    let burst = (total / 10).max(1);
    let replenish = total.saturating_sub(burst).max(1);
    let period = (interval / replenish).max(Duration::from_micros(1));
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PortalLimiter {
    /// The process-wide limiter of portal `key` (e.g. `{api base}#{portal id}`), starting at
    /// `burst` per 10 s for the app (the set's tier) unless the portal already has one.
    pub(crate) fn for_portal(key: &str, burst: u32, max_concurrency: usize) -> Arc<Self> {
        let max_concurrency = max_concurrency.max(1);
        LIMITERS.get_or_insert_with((key.to_string(), max_concurrency), || {
            Arc::new(Self::new(burst, max_concurrency))
        })
    }

    /// A limiter owned by the caller alone (not in the registry).
    pub(crate) fn new(burst: u32, max_concurrency: usize) -> Self {
        let max_concurrency = max_concurrency.max(1);
        Self {
            max_concurrency,
            burst: Mutex::new(Self::burst_for(burst, BURST_WINDOW, max_concurrency)),
            search: RateLimiter::direct(quota(
                permits_per_process(SEARCH_PER_SECOND, max_concurrency),
                Duration::from_secs(1),
            )),
            daily_until: Mutex::new(None),
            zone: Mutex::new(Zone::Unknown),
        }
    }

    fn burst_for(total: u32, interval: Duration, max_concurrency: usize) -> Burst {
        let share = permits_per_process(total as usize, max_concurrency);
        Burst {
            learned: false,
            total,
            interval,
            rate: Arc::new(RateLimiter::direct(quota(share, interval))),
        }
    }

    /// The burst in force: the app's total per window, the window, and this process's share.
    pub(crate) fn burst(&self) -> (u32, Duration, usize) {
        let b = lock(&self.burst);
        (
            b.total,
            b.interval,
            permits_per_process(b.total as usize, self.max_concurrency),
        )
    }

    /// Until when the portal's daily limit holds every call, if it does at `now`. A hold that
    /// has passed is forgotten.
    pub(crate) fn held_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut until = lock(&self.daily_until);
        match *until {
            Some(at) if at > now => Some(at),
            Some(_) => {
                *until = None;
                None
            }
            None => None,
        }
    }

    /// Holds every call for the portal until `until` (the later hold wins).
    pub(crate) fn hold_daily(&self, until: DateTime<Utc>) {
        let mut held = lock(&self.daily_until);
        if held.is_none_or(|at| at < until) {
            *held = Some(until);
        }
    }

    /// Waits up to `wait` for room under the burst limit (and the search limit for a search).
    pub(crate) async fn acquire(&self, kind: CallKind, wait: Duration) -> Result<(), HubspotError> {
        let deadline = tokio::time::Instant::now() + wait;
        let rate = lock(&self.burst).rate.clone();
        tokio::time::timeout_at(deadline, rate.until_ready())
            .await
            .map_err(|_| HubspotError::LimiterTimeout(wait))?;
        if kind == CallKind::Search {
            tokio::time::timeout_at(deadline, self.search.until_ready())
                .await
                .map_err(|_| HubspotError::LimiterTimeout(wait))?;
        }
        Ok(())
    }

    /// Sets the burst limit (per [`BURST_WINDOW`]) from the portal's tier, unless it is that
    /// already or an answer has stated the limit. The HubSpot flow calls this before every
    /// batch: overriding a learned limit would flip it back and forth with each answer, and
    /// every replacement starts a fresh limiter with a full burst (and its waiters keep
    /// pacing at the tier's rate) — more than the portal allows, answered with 429s.
    pub(crate) fn set_burst(&self, total: u32) {
        let mut burst = lock(&self.burst);
        if burst.learned {
            return;
        }
        if burst.total != total || burst.interval != BURST_WINDOW {
            *burst = Self::burst_for(total, BURST_WINDOW, self.max_concurrency);
        }
    }

    /// Learns the burst limit from a response's `X-HubSpot-RateLimit-Max` and
    /// `-Interval-Milliseconds` (either alone updates its half). A changed limit replaces the
    /// limiter: its state restarts, at worst one extra burst, which HubSpot answers with a
    /// transient 429. `-Remaining` is not followed: the limiter's share already keeps under
    /// the window, and other apps' use of the portal does not count against ours.
    pub(crate) fn observe(&self, headers: &HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)?
                .to_str()
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
        };
        let max = number(MAX_HEADER).and_then(|n| u32::try_from(n).ok());
        let interval = number(INTERVAL_HEADER)
            .map(Duration::from_millis)
            .map(|d| d.min(MAX_INTERVAL));
        if max.is_none() && interval.is_none() {
            return;
        }
        let mut burst = lock(&self.burst);
        let total = max.unwrap_or(burst.total);
        let interval = interval.unwrap_or(burst.interval);
        let learned = burst.learned || max.is_some();
        if (total, interval) != (burst.total, burst.interval) {
            tracing::info!(
                from = burst.total,
                to = total,
                interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
                "HubSpot burst limit learned from the portal's answer"
            );
            *burst = Self::burst_for(total, interval, self.max_concurrency);
        }
        burst.learned = learned;
    }

    /// The portal's time zone, if known.
    pub(crate) fn time_zone(&self) -> Option<Tz> {
        match *lock(&self.zone) {
            Zone::Known(tz) => Some(tz),
            _ => None,
        }
    }

    /// Remembers the portal's time zone.
    pub(crate) fn set_time_zone(&self, tz: Tz) {
        *lock(&self.zone) = Zone::Known(tz);
    }

    /// Whether the time zone should be looked up now: unknown, and no lookup failed within
    /// the last hour. Marks the lookup as under way (a failure until told otherwise), so
    /// concurrent calls do not all look it up.
    pub(crate) fn claim_zone_lookup(&self, now: DateTime<Utc>) -> bool {
        let mut zone = lock(&self.zone);
        let due = match *zone {
            Zone::Known(_) => false,
            Zone::Unknown => true,
            Zone::Failed(at) => now - at >= ZONE_RETRY,
        };
        if due {
            *zone = Zone::Failed(now);
        }
        due
    }
}

impl std::fmt::Debug for PortalLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (total, interval, share) = self.burst();
        f.debug_struct("PortalLimiter")
            .field("burst", &total)
            .field("interval", &interval)
            .field("share", &share)
            .field("daily_until", &*lock(&self.daily_until))
            .field("zone", &*lock(&self.zone))
            .finish()
    }
}

/// The first instant of the day after `now` in `tz` (the portal's midnight, when its daily
/// counter resets, docs/vendors/hubspot.md §4.1). Where a DST change skips midnight, the first
/// hour that exists.
pub(crate) fn next_midnight(now: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let today: NaiveDate = now.with_timezone(&tz).date_naive();
    let Some(tomorrow) = today.succ_opt() else {
        return now + chrono::Duration::days(1);
    };
    (0..4)
        .filter_map(|hour| tomorrow.and_hms_opt(hour, 0, 0))
        .find_map(|t| tz.from_local_datetime(&t).earliest())
        .map_or(now + chrono::Duration::days(1), |t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// How many calls the limiter lets through at once, with no time passing worth counting.
    fn immediate(l: &PortalLimiter) -> usize {
        let rate = lock(&l.burst).rate.clone();
        (0..1000).take_while(|_| rate.check().is_ok()).count()
    }

    #[test]
    fn the_burst_comes_from_the_tier_and_is_divided() {
        let l = PortalLimiter::new(190, 1);
        assert_eq!(l.burst(), (190, Duration::from_secs(10), 190));
        assert_eq!(immediate(&l), 19);
        let l = PortalLimiter::new(100, 4);
        assert_eq!(l.burst(), (100, Duration::from_secs(10), 25));
        assert_eq!(immediate(&l), 2);
        assert_eq!(PortalLimiter::new(100, 500).burst().2, 1);
        assert_eq!(immediate(&PortalLimiter::new(100, 500)), 1);
    }

    #[test]
    fn the_burst_follows_the_headers() {
        let l = PortalLimiter::new(100, 2);
        let mut h = HeaderMap::new();
        h.insert(MAX_HEADER, HeaderValue::from_static("250"));
        h.insert(INTERVAL_HEADER, HeaderValue::from_static("10000"));
        l.observe(&h);
        assert_eq!(l.burst(), (250, Duration::from_secs(10), 125));
        assert_eq!(immediate(&l), 12);
        // Lowered, and the window alone.
        h.insert(MAX_HEADER, HeaderValue::from_static("100"));
        h.insert(INTERVAL_HEADER, HeaderValue::from_static("1000"));
        l.observe(&h);
        assert_eq!(l.burst(), (100, Duration::from_secs(1), 50));
        let mut only = HeaderMap::new();
        only.insert(INTERVAL_HEADER, HeaderValue::from_static("10000"));
        l.observe(&only);
        assert_eq!(l.burst(), (100, Duration::from_secs(10), 50));
        // Junk and absent headers change nothing.
        let mut junk = HeaderMap::new();
        junk.insert(MAX_HEADER, HeaderValue::from_static("lots"));
        junk.insert(INTERVAL_HEADER, HeaderValue::from_static("0"));
        l.observe(&junk);
        l.observe(&HeaderMap::new());
        assert_eq!(l.burst(), (100, Duration::from_secs(10), 50));
    }

    #[test]
    fn a_tier_applies_until_an_answer_states_the_limit() {
        let l = PortalLimiter::new(100, 1);
        l.set_burst(190);
        assert_eq!(l.burst().0, 190, "the connection's tier, before any answer");
        // The window alone says nothing of the limit: the tier still applies.
        let mut window = HeaderMap::new();
        window.insert(INTERVAL_HEADER, HeaderValue::from_static("10000"));
        l.observe(&window);
        l.set_burst(250);
        assert_eq!(l.burst().0, 250);
        let mut h = HeaderMap::new();
        h.insert(MAX_HEADER, HeaderValue::from_static("100"));
        l.observe(&h);
        assert_eq!(l.burst().0, 100);
        // The flow sets the tier before every batch; the portal's answer stands, and its
        // limiter is not replaced (a fresh one would allow a second burst).
        let before = Arc::clone(&lock(&l.burst).rate);
        l.set_burst(190);
        assert_eq!(l.burst().0, 100);
        assert!(Arc::ptr_eq(&before, &lock(&l.burst).rate));
        // An answer equal to the tier counts as stated too.
        let l = PortalLimiter::new(190, 1);
        let mut same = HeaderMap::new();
        same.insert(MAX_HEADER, HeaderValue::from_static("190"));
        l.observe(&same);
        l.set_burst(100);
        assert_eq!(l.burst().0, 190);
        // Later answers still move it.
        l.observe(&h);
        assert_eq!(l.burst().0, 100);
    }

    #[tokio::test]
    async fn search_takes_both_limits_and_a_full_limiter_times_out() {
        let l = PortalLimiter::new(100, 1);
        let wait = Duration::from_millis(20);
        // Search: 4 a second → 1 at once.
        l.acquire(CallKind::Search, wait).await.unwrap();
        assert!(matches!(
            l.acquire(CallKind::Search, wait).await,
            Err(HubspotError::LimiterTimeout(_))
        ));
        // The burst still had room for plain calls.
        l.acquire(CallKind::Normal, wait).await.unwrap();
    }

    #[test]
    fn the_registry_shares_by_portal_and_processes() {
        let a = PortalLimiter::for_portal("hs-limiter-a", 100, 2);
        let a2 = PortalLimiter::for_portal("hs-limiter-a", 190, 2);
        let b = PortalLimiter::for_portal("hs-limiter-b", 100, 2);
        assert!(Arc::ptr_eq(&a, &a2));
        assert!(!Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(
            &a,
            &PortalLimiter::for_portal("hs-limiter-a", 100, 3)
        ));
    }

    #[test]
    fn the_daily_hold_lasts_until_it_passes() {
        let l = PortalLimiter::new(100, 1);
        let now = at("2026-12-07T22:00:00Z");
        assert_eq!(l.held_until(now), None);
        let until = at("2026-12-08T05:00:00Z");
        l.hold_daily(until);
        l.hold_daily(at("2026-12-08T01:00:00Z"));
        assert_eq!(l.held_until(now), Some(until));
        assert_eq!(l.held_until(at("2026-12-08T04:59:59Z")), Some(until));
        assert_eq!(l.held_until(until), None);
        assert_eq!(l.held_until(now), None, "forgotten once passed");
    }

    #[test]
    fn midnight_in_the_portals_zone() {
        let ny = chrono_tz::America::New_York;
        assert_eq!(
            next_midnight(at("2026-12-07T22:00:00Z"), ny),
            at("2026-12-08T05:00:00Z")
        );
        // 03:00 UTC is still the 7th in New York.
        assert_eq!(
            next_midnight(at("2026-12-08T03:00:00Z"), ny),
            at("2026-12-08T05:00:00Z")
        );
        assert_eq!(
            next_midnight(at("2026-12-07T22:00:00Z"), chrono_tz::Asia::Tokyo),
            at("2026-12-08T15:00:00Z")
        );
        assert_eq!(
            next_midnight(at("2026-12-07T00:00:00Z"), chrono_tz::UTC),
            at("2026-12-08T00:00:00Z")
        );
        // Summer time in New York (UTC-4).
        assert_eq!(
            next_midnight(at("2026-07-01T12:00:00Z"), ny),
            at("2026-07-02T04:00:00Z")
        );
        // Santiago skips 00:00 on its DST day (2026-09-06): the day starts at 01:00.
        let scl = chrono_tz::America::Santiago;
        let m = next_midnight(at("2026-09-05T12:00:00Z"), scl);
        assert_eq!(m, at("2026-09-06T04:00:00Z"));
    }

    #[test]
    fn the_zone_is_looked_up_once_and_retried_hourly_after_a_failure() {
        let l = PortalLimiter::new(100, 1);
        let now = at("2026-12-07T22:00:00Z");
        assert!(l.claim_zone_lookup(now));
        assert!(!l.claim_zone_lookup(now), "under way (or failed) now");
        assert!(!l.claim_zone_lookup(now + chrono::Duration::minutes(59)));
        assert!(l.claim_zone_lookup(now + chrono::Duration::minutes(60)));
        l.set_time_zone(chrono_tz::Europe::Berlin);
        assert_eq!(l.time_zone(), Some(chrono_tz::Europe::Berlin));
        assert!(!l.claim_zone_lookup(now + chrono::Duration::days(2)));
    }
}
