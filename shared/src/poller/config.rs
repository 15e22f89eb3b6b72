//! Poller settings and the environment variables that set them. The schedules themselves
//! (how often each job runs) are in `template.yaml`, not here.

use std::time::Duration;

use crate::config::{ConfigError, FromEnv, Vars};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Environment variables [`PollerConfig`] is read from ([`FromEnv`]); all optional.
pub mod env {
    /// Days the FreshBooks poll re-reads before its cursor date. `search[updated_min]` is
    /// day-granular, so at least 1. Default 1.
    pub(crate) const POLL_OVERLAP_DAYS: &str = "POLL_OVERLAP_DAYS";
    /// Minutes before expiry at which `token_refresh` renews an access token. Default 120: with
    /// a refresh run every 30 minutes, a 12-hour FreshBooks token gets several chances.
    pub(crate) const TOKEN_REFRESH_MARGIN_MINUTES: &str = "TOKEN_REFRESH_MARGIN_MINUTES";
    /// Minutes before expiry at which `quickbooks_token_refresh` renews an access token.
    /// Default 55: QuickBooks tokens live 60 minutes and the job runs every 50, so a token the
    /// previous run refreshed has about 10 minutes left and every run refreshes it. Keep it
    /// above 60 minus the schedule's interval.
    pub(crate) const QUICKBOOKS_TOKEN_REFRESH_MARGIN_MINUTES: &str =
        "QUICKBOOKS_TOKEN_REFRESH_MARGIN_MINUTES";
    /// Seconds a job's lease lasts, so two overlapping runs of one job do not both work.
    /// Must exceed the function timeout. Default 900.
    pub(crate) const JOB_LEASE_SECONDS: &str = "POLLER_JOB_LEASE_SECONDS";
    /// Days `no_queue` dead letters and stored oversize bodies are kept. Default 365.
    pub(crate) const DEAD_LETTER_TTL_DAYS: &str = "DEAD_LETTER_RETENTION_DAYS";
}

/// How the poller's jobs behave. [`PollerConfig::default`] gives the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollerConfig {
    /// Whole days re-read before the cursor date (≥ 1).
    pub overlap_days: u32,
    /// Tokens expiring within this are refreshed by [`super::Job::TokenRefresh`].
    pub refresh_margin: Duration,
    /// Tokens expiring within this are refreshed by [`super::Job::QuickbooksTokenRefresh`].
    pub quickbooks_refresh_margin: Duration,
    /// How long a job's lease lasts: a run that dies frees it after this.
    pub job_lease: Duration,
    /// How long `no_queue` dead letters of found events are kept.
    pub dead_letter_ttl: Duration,
}

impl Default for PollerConfig {
    fn default() -> Self {
        Self {
            overlap_days: 1,
            refresh_margin: Duration::from_secs(2 * 60 * 60),
            quickbooks_refresh_margin: Duration::from_secs(55 * 60),
            job_lease: Duration::from_secs(15 * 60),
            dead_letter_ttl: 365 * DAY,
        }
    }
}

/// Reads the variables in `env`. Unset variables take the defaults; set but unusable ones are
/// errors.
impl FromEnv for PollerConfig {
    fn read(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        let mut c = Self::default();
        let minutes = |n: u32| Duration::from_secs(u64::from(n) * 60);
        if let Some(n) = vars.number_u32(env::POLL_OVERLAP_DAYS, 1)? {
            c.overlap_days = n;
        }
        if let Some(n) = vars.number_u32(env::TOKEN_REFRESH_MARGIN_MINUTES, 1)? {
            c.refresh_margin = minutes(n);
        }
        if let Some(n) = vars.number_u32(env::QUICKBOOKS_TOKEN_REFRESH_MARGIN_MINUTES, 1)? {
            c.quickbooks_refresh_margin = minutes(n);
        }
        if let Some(n) = vars.number_u32(env::JOB_LEASE_SECONDS, 1)? {
            c.job_lease = Duration::from_secs(u64::from(n));
        }
        if let Some(n) = vars.number_u32(env::DEAD_LETTER_TTL_DAYS, 1)? {
            c.dead_letter_ttl = DAY.saturating_mul(n);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<PollerConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PollerConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(from(&[]).unwrap(), PollerConfig::default());
        let c = from(&[
            (env::POLL_OVERLAP_DAYS, "2"),
            (env::TOKEN_REFRESH_MARGIN_MINUTES, " 90 "),
            (env::QUICKBOOKS_TOKEN_REFRESH_MARGIN_MINUTES, "58"),
            (env::JOB_LEASE_SECONDS, "600"),
            (env::DEAD_LETTER_TTL_DAYS, "30"),
        ])
        .unwrap();
        assert_eq!(c.overlap_days, 2);
        assert_eq!(c.refresh_margin, Duration::from_secs(90 * 60));
        assert_eq!(c.quickbooks_refresh_margin, Duration::from_secs(58 * 60));
        assert_eq!(c.job_lease, Duration::from_secs(600));
        assert_eq!(c.dead_letter_ttl, 30 * DAY);
    }

    #[test]
    fn unusable_values_are_errors() {
        for (name, value) in [
            (env::POLL_OVERLAP_DAYS, "0"),
            (env::POLL_OVERLAP_DAYS, "one"),
            (env::TOKEN_REFRESH_MARGIN_MINUTES, "-5"),
            (env::QUICKBOOKS_TOKEN_REFRESH_MARGIN_MINUTES, "0"),
            (env::JOB_LEASE_SECONDS, "1.5"),
        ] {
            let err = from(&[(name, value)]).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { name: n, .. } if n == name),
                "{name}={value}: {err}"
            );
        }
    }
}
