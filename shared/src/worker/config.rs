//! How a worker retries, how long it keeps things, and the environment variables that set it.

use std::time::Duration;

use super::backoff::{RetryPolicy, VisibilityPolicy};
use crate::config::{ConfigError, FromEnv, Vars};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Environment variables [`HarnessConfig`] is read from ([`FromEnv`]). Only `WORKER_QUEUE` is
/// required.
mod env {
    /// Logical queue name = the target vendor, e.g. `mailchimp`.
    pub(crate) const QUEUE: &str = "WORKER_QUEUE";
    /// Receives before SQS dead-letters a message; must equal the queue's redrive
    /// `maxReceiveCount`. Default 5.
    pub(crate) const MAX_RECEIVES: &str = "WORKER_MAX_RECEIVES";
    /// Seconds an idempotency claim lasts; must exceed the function timeout. Default 300.
    pub(crate) const CLAIM_LEASE_SECONDS: &str = "WORKER_CLAIM_LEASE_SECONDS";
    /// Days an (event, target) outcome is remembered for duplicate detection. Default 14.
    pub(crate) const IDEMPOTENCY_TTL_DAYS: &str = "IDEMPOTENCY_TTL_DAYS";
    /// Days audit entries are kept. Default 90.
    pub(crate) const AUDIT_TTL_DAYS: &str = "AUDIT_RETENTION_DAYS";
    /// Days dead letters (and their stored bodies) are kept. Default 365, as the stack's parameter.
    pub(crate) const DEAD_LETTER_TTL_DAYS: &str = "DEAD_LETTER_RETENTION_DAYS";
    /// Handler calls per receive, the first included. Default 3.
    pub(crate) const RETRY_ATTEMPTS: &str = "WORKER_RETRY_ATTEMPTS";
    /// In-invocation backoff base, milliseconds. Default 200.
    pub(crate) const RETRY_BASE_MS: &str = "WORKER_RETRY_BASE_MS";
    /// Longest in-invocation sleep, milliseconds. Default 5000.
    pub(crate) const RETRY_MAX_MS: &str = "WORKER_RETRY_MAX_MS";
    /// Visibility timeout after the first failed receive, seconds. Default 60.
    pub(crate) const VISIBILITY_BASE_SECONDS: &str = "WORKER_VISIBILITY_BASE_SECONDS";
    /// Largest visibility timeout a retried message gets, seconds: the backoff grows to it and
    /// a vendor's `Retry-After` (or a broken connection's wait) is cut to it. Default 3600.
    pub(crate) const VISIBILITY_MAX_SECONDS: &str = "WORKER_VISIBILITY_MAX_SECONDS";
    /// Time kept back before the invocation deadline for bookkeeping, milliseconds. Default 3000.
    pub(crate) const DEADLINE_MARGIN_MS: &str = "WORKER_DEADLINE_MARGIN_MS";
}

/// A worker's settings. [`HarnessConfig::new`] gives the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarnessConfig {
    /// The logical queue (target vendor) this worker consumes.
    pub(crate) queue: String,
    /// The queue's redrive `maxReceiveCount`: on this receive a transient failure is final.
    pub max_receives: u32,
    /// How long an idempotency claim lasts. The harness stretches it to cover the invocation's
    /// deadline, so this matters when a consumer dies mid-handler.
    pub(crate) claim_lease: Duration,
    pub(crate) idempotency_ttl: Duration,
    pub(crate) audit_ttl: Duration,
    pub(crate) dead_letter_ttl: Duration,
    /// Retries inside one invocation, before the message goes back to the queue.
    pub retry: RetryPolicy,
    /// How long a message that failed transiently stays hidden before its next receive.
    pub visibility: VisibilityPolicy,
    /// Time kept back before a deadline for the writes after the handler.
    pub deadline_margin: Duration,
}

impl HarnessConfig {
    /// The defaults, for `queue`.
    pub fn new(queue: impl Into<String>) -> Self {
        Self {
            queue: queue.into(),
            max_receives: 5,
            claim_lease: Duration::from_secs(300),
            idempotency_ttl: 14 * DAY,
            audit_ttl: 90 * DAY,
            dead_letter_ttl: 365 * DAY,
            retry: RetryPolicy::default(),
            visibility: VisibilityPolicy::default(),
            deadline_margin: Duration::from_secs(3),
        }
    }
}

/// Reads the `WORKER_*` variables (listed in this module's `env`). Unset variables take the defaults; set but unparsable ones
/// are errors, not defaults.
impl FromEnv for HarnessConfig {
    fn read(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        let mut c = Self::new(vars.required_text(env::QUEUE)?);
        if let Some(n) = vars.number_u32(env::MAX_RECEIVES, 1)? {
            c.max_receives = n;
        }
        if let Some(n) = vars.number(env::CLAIM_LEASE_SECONDS, 1)? {
            c.claim_lease = Duration::from_secs(n);
        }
        let days = |n: u64| DAY.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
        if let Some(n) = vars.number(env::IDEMPOTENCY_TTL_DAYS, 1)? {
            c.idempotency_ttl = days(n);
        }
        if let Some(n) = vars.number(env::AUDIT_TTL_DAYS, 1)? {
            c.audit_ttl = days(n);
        }
        if let Some(n) = vars.number(env::DEAD_LETTER_TTL_DAYS, 1)? {
            c.dead_letter_ttl = days(n);
        }
        if let Some(n) = vars.number_u32(env::RETRY_ATTEMPTS, 1)? {
            c.retry.attempts = n;
        }
        if let Some(n) = vars.number(env::RETRY_BASE_MS, 0)? {
            c.retry.base = Duration::from_millis(n);
        }
        if let Some(n) = vars.number(env::RETRY_MAX_MS, 0)? {
            c.retry.max = Duration::from_millis(n);
        }
        if let Some(n) = vars.number(env::VISIBILITY_BASE_SECONDS, 0)? {
            c.visibility.base = Duration::from_secs(n);
        }
        if let Some(n) = vars.number(env::VISIBILITY_MAX_SECONDS, 0)? {
            c.visibility.max = Duration::from_secs(n);
        }
        if let Some(n) = vars.number(env::DEADLINE_MARGIN_MS, 0)? {
            c.deadline_margin = Duration::from_millis(n);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<HarnessConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HarnessConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_only_the_queue_is_set() {
        assert_eq!(
            from(&[(env::QUEUE, "mailchimp")]).unwrap(),
            HarnessConfig::new("mailchimp")
        );
    }

    #[test]
    fn every_variable_is_read() {
        let c = from(&[
            (env::QUEUE, " hubspot "),
            (env::MAX_RECEIVES, "8"),
            (env::CLAIM_LEASE_SECONDS, "120"),
            (env::IDEMPOTENCY_TTL_DAYS, "7"),
            (env::AUDIT_TTL_DAYS, "365"),
            (env::DEAD_LETTER_TTL_DAYS, "60"),
            (env::RETRY_ATTEMPTS, "1"),
            (env::RETRY_BASE_MS, "50"),
            (env::RETRY_MAX_MS, "1000"),
            (env::VISIBILITY_BASE_SECONDS, "10"),
            (env::VISIBILITY_MAX_SECONDS, "900"),
            (env::DEADLINE_MARGIN_MS, "0"),
        ])
        .unwrap();
        assert_eq!(c.queue, "hubspot");
        assert_eq!(c.max_receives, 8);
        assert_eq!(c.claim_lease, Duration::from_secs(120));
        assert_eq!(c.idempotency_ttl, 7 * DAY);
        assert_eq!(c.audit_ttl, 365 * DAY);
        assert_eq!(c.dead_letter_ttl, 60 * DAY);
        assert_eq!(c.retry.attempts, 1);
        assert_eq!(c.retry.base, Duration::from_millis(50));
        assert_eq!(c.retry.max, Duration::from_millis(1000));
        assert_eq!(c.visibility.base, Duration::from_secs(10));
        assert_eq!(c.visibility.max, Duration::from_secs(900));
        assert_eq!(c.deadline_margin, Duration::ZERO);
    }

    #[test]
    fn bad_values_are_errors_not_defaults() {
        assert!(matches!(
            from(&[]),
            Err(ConfigError::Missing("WORKER_QUEUE"))
        ));
        assert!(matches!(
            from(&[(env::QUEUE, "  ")]),
            Err(ConfigError::Missing(_))
        ));
        for (name, value) in [
            (env::MAX_RECEIVES, "0"),
            (env::MAX_RECEIVES, "five"),
            (env::MAX_RECEIVES, "99999999999"),
            (env::RETRY_ATTEMPTS, "-1"),
            (env::AUDIT_TTL_DAYS, "1.5"),
        ] {
            let err = from(&[(env::QUEUE, "stripe"), (name, value)]).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { name: n, .. } if n == name),
                "{name}={value}: {err}"
            );
        }
    }
}
