//! The secrets port (Secrets Manager; the encrypted local store) and a per-instance cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::SecretString;

use super::PortResult;

/// Where credentials and webhook signing keys live, by name ([`crate::ports::secret_names`]).
#[async_trait]
pub trait Secrets: Send + Sync {
    /// The current value of a secret, `None` if it does not exist.
    async fn get(&self, name: &str) -> PortResult<Option<SecretString>>;

    /// Creates the secret or stores a new current version of it.
    async fn put(&self, name: &str, value: &SecretString) -> PortResult<()>;
}

/// How long a miss is cached (at most `ttl`): long enough to absorb a flood of deliveries to an
/// unconfigured route, short enough that a secret stored elsewhere (a webhook handshake on
/// another instance, the CLI) is picked up moments later.
const MISS_TTL: Duration = Duration::from_secs(10);

/// Caches secret values per Lambda instance for `ttl`, so a warm instance verifies a webhook
/// without a Secrets Manager round trip. Misses are cached too (briefly), so a flood of deliveries
/// to an unconfigured route does not become a flood of Secrets Manager calls.
pub struct CachedSecrets {
    inner: Arc<dyn Secrets>,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Option<SecretString>)>>,
}

impl CachedSecrets {
    pub(crate) fn new(inner: Arc<dyn Secrets>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value, from cache when fresh.
    pub(crate) async fn get(&self, name: &str) -> PortResult<Option<SecretString>> {
        if let Some((at, value)) = self.lock().get(name)
            && at.elapsed() < self.fresh_for(value)
        {
            return Ok(value.clone());
        }
        let value = self.inner.get(name).await?;
        self.lock()
            .insert(name.to_string(), (Instant::now(), value.clone()));
        Ok(value)
    }

    /// Writes through and updates the cache.
    pub(crate) async fn put(&self, name: &str, value: &SecretString) -> PortResult<()> {
        self.inner.put(name, value).await?;
        self.lock()
            .insert(name.to_string(), (Instant::now(), Some(value.clone())));
        Ok(())
    }

    fn fresh_for(&self, value: &Option<SecretString>) -> Duration {
        match value {
            Some(_) => self.ttl,
            None => self.ttl.min(MISS_TTL),
        }
    }

    /// Forgets a cached value, e.g. after a signature failed with it (the secret may have rotated).
    pub(crate) fn invalidate(&self, name: &str) {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts lookups; knows only `present`.
    #[derive(Default)]
    struct Counting {
        gets: AtomicUsize,
    }

    #[async_trait]
    impl Secrets for Counting {
        async fn get(&self, name: &str) -> PortResult<Option<SecretString>> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            Ok((name == "present").then(|| SecretString::from("value")))
        }

        async fn put(&self, _: &str, _: &SecretString) -> PortResult<()> {
            Ok(())
        }
    }

    /// Ages every cached entry by `by`, instead of sleeping.
    fn age(cache: &CachedSecrets, by: Duration) {
        for (at, _) in cache.lock().values_mut() {
            *at = at.checked_sub(by).expect("Instant too early to age");
        }
    }

    #[tokio::test]
    async fn a_miss_is_cached_only_briefly_while_a_hit_lasts_the_full_ttl() {
        let inner = Arc::new(Counting::default());
        let cache = CachedSecrets::new(inner.clone(), Duration::from_secs(300));
        assert!(cache.get("absent").await.unwrap().is_none());
        assert!(cache.get("present").await.unwrap().is_some());
        assert_eq!(inner.gets.load(Ordering::SeqCst), 2);

        cache.get("absent").await.unwrap();
        cache.get("present").await.unwrap();
        assert_eq!(
            inner.gets.load(Ordering::SeqCst),
            2,
            "both cached while fresh"
        );

        age(&cache, MISS_TTL);
        cache.get("present").await.unwrap();
        assert_eq!(
            inner.gets.load(Ordering::SeqCst),
            2,
            "the hit is still fresh"
        );
        cache.get("absent").await.unwrap();
        assert_eq!(
            inner.gets.load(Ordering::SeqCst),
            3,
            "the miss was asked again"
        );
    }
}
