//! The secrets port (Secrets Manager; the encrypted local store) and a per-instance cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::SecretString;

use super::PortResult;

#[async_trait]
pub trait Secrets: Send + Sync {
    /// The current value of a secret, `None` if it does not exist.
    async fn get(&self, name: &str) -> PortResult<Option<SecretString>>;

    /// Creates the secret or stores a new current version of it.
    async fn put(&self, name: &str, value: &SecretString) -> PortResult<()>;
}

/// Caches secret values per Lambda instance for `ttl`, so a warm instance verifies a webhook
/// without a Secrets Manager round trip. Misses are cached too (briefly), so a flood of deliveries
/// to an unconfigured route does not become a flood of Secrets Manager calls.
pub struct CachedSecrets {
    inner: Arc<dyn Secrets>,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Option<SecretString>)>>,
}

impl CachedSecrets {
    pub fn new(inner: Arc<dyn Secrets>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value, from cache when fresh.
    pub async fn get(&self, name: &str) -> PortResult<Option<SecretString>> {
        if let Some((at, value)) = self.lock().get(name)
            && at.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        let value = self.inner.get(name).await?;
        self.lock()
            .insert(name.to_string(), (Instant::now(), value.clone()));
        Ok(value)
    }

    /// Writes through and updates the cache.
    pub async fn put(&self, name: &str, value: &SecretString) -> PortResult<()> {
        self.inner.put(name, value).await?;
        self.lock()
            .insert(name.to_string(), (Instant::now(), Some(value.clone())));
        Ok(())
    }

    /// Forgets a cached value, e.g. after a signature failed with it (the secret may have rotated).
    pub fn invalidate(&self, name: &str) {
        self.lock().remove(name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Option<SecretString>)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for CachedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedSecrets")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}
