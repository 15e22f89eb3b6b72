//! Webhook settings, from the environment on Lambda.

use std::time::Duration;

/// A setting in the environment that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?}: {message}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub message: String,
}

/// How the webhook handler behaves.
#[derive(Debug, Clone)]
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

impl WebhookConfig {
    /// Defaults overridden by `WEBHOOK_BODY_LIMIT` (bytes) and `DEAD_LETTER_RETENTION_DAYS`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(limit) = env_number("WEBHOOK_BODY_LIMIT")? {
            config.body_limit = limit as usize;
        }
        if let Some(days) = env_number("DEAD_LETTER_RETENTION_DAYS")? {
            config.dead_letter_ttl = Duration::from_secs(days * 24 * 3600);
        }
        Ok(config)
    }
}

fn env_number(name: &'static str) -> Result<Option<u64>, ConfigError> {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ConfigError {
                name,
                value,
                message: "must be a whole number".into(),
            }),
        Err(_) => Ok(None),
    }
}
