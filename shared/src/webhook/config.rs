//! Webhook settings, from the environment on Lambda.

use std::time::Duration;

use crate::config::{ConfigError, FromEnv, Vars};

/// Environment variables [`WebhookConfig`] is read from; both optional.
pub(super) mod env {
    /// Larger request bodies get 413, bytes. Default 5 MiB.
    pub(crate) const BODY_LIMIT: &str = "WEBHOOK_BODY_LIMIT";
    /// Days a dead-lettered delivery is kept. Default 365.
    pub(crate) const DEAD_LETTER_TTL_DAYS: &str = "DEAD_LETTER_RETENTION_DAYS";
}

/// How the webhook handler behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Larger bodies get 413. Lambda's own request limit is 6 MB.
    pub body_limit: usize,
    /// How long a verification secret is trusted before it is read again.
    pub secret_cache_ttl: Duration,
    /// How long the applied connections are trusted before they are read again.
    pub connections_cache_ttl: Duration,
    /// How long a dead-lettered delivery is kept.
    pub dead_letter_ttl: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            body_limit: 5 * 1024 * 1024,
            secret_cache_ttl: Duration::from_secs(300),
            connections_cache_ttl: Duration::from_secs(60),
            dead_letter_ttl: Duration::from_secs(365 * 24 * 3600),
        }
    }
}

/// Defaults overridden by `WEBHOOK_BODY_LIMIT` (bytes) and `DEAD_LETTER_RETENTION_DAYS`.
impl FromEnv for WebhookConfig {
    fn read(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(limit) = vars.number(env::BODY_LIMIT, 0)? {
            config.body_limit = usize::try_from(limit).unwrap_or(usize::MAX);
        }
        if let Some(days) = vars.number(env::DEAD_LETTER_TTL_DAYS, 0)? {
            config.dead_letter_ttl = Duration::from_secs(days.saturating_mul(24 * 3600));
        }
        Ok(config)
    }
}
