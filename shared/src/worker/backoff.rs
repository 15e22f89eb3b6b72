//! Retry delays: in-invocation backoff (exponential, full jitter, `Retry-After` honoured) and the
//! growing visibility timeout a message gets when it goes back to its queue.
//!
//! The delay functions take the random sample as an argument (`unit`, in `[0, 1)`) so they are
//! deterministic under test; `sample` draws a real one.
//!
//! `backon` was considered: its builders cover the exponential + jitter part, but each retry here
//! also has to fit a Lambda deadline and stretch to a vendor's `Retry-After`, which means
//! deciding every sleep ourselves — the crate would be a wrapper around these ten lines.

use std::time::Duration;

use tokio::time::Instant;

/// SQS's largest visibility timeout (12 hours).
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// A uniform sample in `[0, 1)`.
pub(crate) fn sample() -> f64 {
    fastrand::f64()
}

/// `base * 2^(n-1)` for the `n`th try (1-based), capped at `max`. Saturates instead of overflowing.
fn exponential(base: Duration, max: Duration, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(max)
}

/// Full jitter: uniform in `[0, cap]`. Spreads retries of many consumers the most.
fn full_jitter(cap: Duration, unit: f64) -> Duration {
    cap.mul_f64(unit.clamp(0.0, 1.0))
}

/// Equal jitter: uniform in `[cap/2, cap]`. Still spreads retries, but the delay keeps growing,
/// which is what a queue-level backoff is for.
fn equal_jitter(cap: Duration, unit: f64) -> Duration {
    let half = cap / 2;
    half + (cap - half).mul_f64(unit.clamp(0.0, 1.0))
}

/// Retries inside one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Handler calls per receive, the first included (1 = no in-invocation retry).
    pub attempts: u32,
    /// The cap on the first retry's sleep; it doubles per retry (full jitter below the cap).
    pub base: Duration,
    /// The longest single sleep. A `Retry-After` longer than this is left to the queue.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base: Duration::from_millis(200),
            max: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The sleep before retry number `retry` (1 = the first retry), or `None` when the vendor asked
    /// for a longer wait than this policy sleeps in-process.
    pub(crate) fn delay(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        unit: f64,
    ) -> Option<Duration> {
        let jittered = full_jitter(exponential(self.base, self.max, retry), unit);
        match retry_after {
            Some(after) if after > self.max => None,
            Some(after) => Some(jittered.max(after)),
            None => Some(jittered),
        }
    }
}

/// The visibility timeout a message gets when a transient failure sends it back to its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisibilityPolicy {
    /// The timeout after the first receive; it doubles per receive (equal jitter).
    pub base: Duration,
    /// The longest timeout, a `Retry-After` or a broken connection's wait included.
    pub max: Duration,
}

impl Default for VisibilityPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(60),
            max: Duration::from_secs(60 * 60),
        }
    }
}

impl VisibilityPolicy {
    /// `base * 2^(receive_count-1)`, capped and equal-jittered, stretched to a `Retry-After`, and
    /// never over `max` (the operator's ceiling on any wait, a vendor's or a broken
    /// connection's included) nor SQS's limit.
    pub(crate) fn timeout(
        &self,
        receive_count: u32,
        retry_after: Option<Duration>,
        unit: f64,
    ) -> Duration {
        let backoff = equal_jitter(exponential(self.base, self.max, receive_count.max(1)), unit);
        backoff
            .max(retry_after.unwrap_or_default().min(self.max))
            .min(MAX_VISIBILITY)
    }
}

/// Time left before `deadline` once `margin` is kept back; `None` means no deadline.
pub(crate) fn budget(
    now: Instant,
    deadline: Option<Instant>,
    margin: Duration,
) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(now).saturating_sub(margin))
}

/// Whether sleeping `delay` now still leaves `margin` before the deadline.
pub(crate) fn fits(
    now: Instant,
    delay: Duration,
    deadline: Option<Instant>,
    margin: Duration,
) -> bool {
    budget(now, deadline, margin).is_none_or(|left| delay < left)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn exponential_doubles_caps_and_saturates() {
        assert_eq!(exponential(MS(100), MS(1000), 0), MS(100));
        assert_eq!(exponential(MS(100), MS(1000), 1), MS(100));
        assert_eq!(exponential(MS(100), MS(1000), 2), MS(200));
        assert_eq!(exponential(MS(100), MS(1000), 4), MS(800));
        assert_eq!(exponential(MS(100), MS(1000), 5), MS(1000));
        assert_eq!(exponential(MS(100), MS(1000), 200), MS(1000));
        assert_eq!(exponential(Duration::MAX, Duration::MAX, 3), Duration::MAX);
    }

    #[test]
    fn jitter_stays_in_range() {
        assert_eq!(full_jitter(MS(800), 0.0), MS(0));
        assert_eq!(full_jitter(MS(800), 0.5), MS(400));
        assert!(full_jitter(MS(800), 0.999_999) <= MS(800));
        assert_eq!(full_jitter(MS(800), 7.0), MS(800));
        assert_eq!(equal_jitter(MS(800), 0.0), MS(400));
        assert_eq!(equal_jitter(MS(800), 0.5), MS(600));
        assert!(equal_jitter(MS(800), 0.999_999) <= MS(800));
        for _ in 0..1000 {
            let d = full_jitter(MS(800), sample());
            assert!(d <= MS(800));
        }
    }

    #[test]
    fn retry_delay_honours_retry_after_within_its_cap() {
        let p = RetryPolicy {
            attempts: 3,
            base: MS(100),
            max: MS(2000),
        };
        assert_eq!(p.delay(1, None, 0.5), Some(MS(50)));
        assert_eq!(p.delay(3, None, 0.5), Some(MS(200)));
        assert_eq!(p.delay(1, Some(MS(1500)), 0.5), Some(MS(1500)));
        assert_eq!(p.delay(10, Some(MS(10)), 1.0), Some(MS(2000)));
        assert_eq!(p.delay(1, Some(MS(2001)), 0.5), None);
    }

    #[test]
    fn visibility_grows_with_receives_and_respects_limits() {
        let p = VisibilityPolicy {
            base: Duration::from_secs(60),
            max: Duration::from_secs(600),
        };
        let secs = Duration::from_secs;
        assert_eq!(p.timeout(1, None, 1.0), secs(60));
        assert_eq!(p.timeout(1, None, 0.0), secs(30));
        assert_eq!(p.timeout(3, None, 1.0), secs(240));
        assert_eq!(p.timeout(3, None, 0.0), secs(120));
        assert_eq!(p.timeout(9, None, 1.0), secs(600));
        assert_eq!(p.timeout(0, None, 1.0), secs(60));
        assert_eq!(p.timeout(1, Some(secs(500)), 0.0), secs(500));
        assert_eq!(p.timeout(1, Some(secs(900)), 0.0), secs(600));
        let uncapped = VisibilityPolicy {
            max: Duration::from_secs(100_000),
            ..p
        };
        assert_eq!(
            uncapped.timeout(1, Some(secs(100_000)), 0.0),
            MAX_VISIBILITY
        );
        let mut last = Duration::ZERO;
        for n in 1..=4 {
            let lowest = p.timeout(n, None, 0.0);
            assert!(lowest >= last, "receive {n} may come sooner than {last:?}");
            last = p.timeout(n, None, 1.0);
        }
    }

    #[test]
    fn budget_keeps_the_margin() {
        let now = Instant::now();
        let margin = MS(500);
        assert_eq!(budget(now, None, margin), None);
        assert_eq!(budget(now, Some(now + MS(2000)), margin), Some(MS(1500)));
        assert_eq!(budget(now, Some(now + MS(100)), margin), Some(MS(0)));
        assert!(fits(now, MS(1499), Some(now + MS(2000)), margin));
        assert!(!fits(now, MS(1500), Some(now + MS(2000)), margin));
        assert!(fits(now, Duration::MAX, None, margin));
    }
}
