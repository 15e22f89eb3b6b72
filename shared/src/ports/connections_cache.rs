//! The applied connections, read from the store and cached briefly per instance.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{ConnectionStore, PortResult};
use crate::connections::ConnectionSet;

/// Reads the applied [`ConnectionSet`] at most once per `ttl`, so `apply` takes effect within
/// `ttl` on every warm Lambda without a store read per request.
pub(crate) struct CachedConnections {
    store: Arc<dyn ConnectionStore>,
    ttl: Duration,
    cached: Mutex<Option<(Instant, Arc<ConnectionSet>)>>,
}

impl CachedConnections {
    pub(crate) fn new(store: Arc<dyn ConnectionStore>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            cached: Mutex::new(None),
        }
    }

    /// The applied set; empty when nothing has been applied yet.
    pub(crate) async fn get(&self) -> PortResult<Arc<ConnectionSet>> {
        if let Some((at, set)) = self
            .cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(set.clone());
        }
        let set = Arc::new(self.store.get_connections().await?.unwrap_or_default());
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), set.clone()));
        Ok(set)
    }
}
