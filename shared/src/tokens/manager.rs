//! [`TokenManager`]: per-instance token cache plus the single-flight refresh protocol described
//! in the module docs of [`crate::tokens`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::stored::{StoredTokens, expires_within, mark_needs_reconnect, merge_tokens};
use super::{AccessTokens, RefreshError, Refresher, TokenError, lease_name};
use crate::observability::{Metric, count};
use crate::ports::secret_names;
use crate::ports::{Clock, Leases, Secrets};

/// Timing of the refresh protocol.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// Refresh when the access token expires within this (FreshBooks tokens live 12 h).
    pub margin: chrono::Duration,
    /// How long the refresh lease is held at most if its holder dies mid-refresh. Longer than
    /// one token-endpoint call (the clients' 20 s timeout).
    pub lease_ttl: Duration,
    /// How long to wait for another instance's refresh before giving up (transiently).
    pub wait: Duration,
    /// How often to re-read the secret while waiting.
    pub poll: Duration,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            margin: chrono::Duration::minutes(30),
            lease_ttl: Duration::from_secs(30),
            wait: Duration::from_secs(20),
            poll: Duration::from_millis(200),
        }
    }
}

/// Attempts at storing a rotated pair. The old refresh token is spent once the vendor answered,
/// so losing the new pair breaks the connection: worth a few quick retries.
const STORE_ATTEMPTS: u32 = 3;

#[derive(Clone)]
struct Cached {
    access_token: SecretString,
    expires_at: Option<DateTime<Utc>>,
}

/// Access tokens for every credential set of one vendor, cached per instance and refreshed
/// single-flight across instances. Cheap to share (`Arc`); one per vendor per process.
pub struct TokenManager {
    secrets: Arc<dyn Secrets>,
    leases: Arc<dyn Leases>,
    clock: Arc<dyn Clock>,
    refresher: Arc<dyn Refresher>,
    config: TokenConfig,
    /// This instance's lease holder id.
    holder: String,
    cache: Mutex<HashMap<String, Cached>>,
    /// One refresh at a time per credential set within this instance.
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl TokenManager {
    /// The vendor whose tokens this manager holds, as people spell it (`FreshBooks`): its
    /// refresher's name, which is the vendor spec's `display`.
    pub fn vendor(&self) -> &'static str {
        self.refresher.vendor()
    }

    /// A manager reading `credentials/<name>` from `secrets` (uncached: it keeps its own
    /// cache and must see other instances' writes), serialising refreshes with `leases`.
    pub fn new(
        secrets: Arc<dyn Secrets>,
        leases: Arc<dyn Leases>,
        clock: Arc<dyn Clock>,
        refresher: Arc<dyn Refresher>,
    ) -> Self {
        Self {
            secrets,
            leases,
            clock,
            refresher,
            config: TokenConfig::default(),
            holder: format!("tokens-{}", uuid::Uuid::new_v4().simple()),
            cache: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the timing ([`TokenConfig::default`]).
    pub fn with_config(mut self, config: TokenConfig) -> Self {
        self.config = config;
        self
    }

    /// A usable access token: the cached one unless it expires within the margin, else the
    /// stored one, else a refreshed one.
    async fn access_token(&self, name: &str) -> Result<SecretString, TokenError> {
        let now = self.clock.now();
        if let Some(cached) = self.cached(name)
            && !expires_within(cached.expires_at, now, self.config.margin)
        {
            return Ok(cached.access_token);
        }
        let (_, stored) = self.read(name).await?;
        if !stored.expires_within(now, self.config.margin) {
            self.remember(name, &stored.access_token, stored.expires_at);
            return Ok(stored.access_token);
        }
        self.refresh(name, &stored.access_token).await
    }

    /// Caches the access token of credential set `name` from `stored`, just read from its
    /// secret by the caller, so the first [`Self::access_token`] does not read the secret again.
    /// A set marked `needs_reconnect` is not cached: [`Self::access_token`] must read it and
    /// report it broken.
    pub(crate) fn prime(&self, name: &str, stored: &StoredTokens) {
        if stored.reconnect_reason().is_none() {
            self.remember(name, &stored.access_token, stored.expires_at);
        }
    }

    /// After a 401 for `rejected`: another instance's newer token if there is one, else a
    /// refreshed one.
    async fn refresh_after_unauthorized(
        &self,
        name: &str,
        rejected: &SecretString,
    ) -> Result<SecretString, TokenError> {
        self.forget_if(name, rejected);
        self.refresh(name, rejected).await
    }

    /// Proactive refresh (the poller's job): refreshes credential set `name` if its access
    /// token expires within `margin`. `true` when the stored token was replaced (here, or by
    /// another instance while this one waited).
    pub async fn refresh_if_expiring(
        &self,
        name: &str,
        margin: chrono::Duration,
    ) -> Result<bool, TokenError> {
        let (_, stored) = self.read(name).await?;
        if !stored.expires_within(self.clock.now(), margin) {
            return Ok(false);
        }
        self.refresh(name, &stored.access_token).await?;
        Ok(true)
    }

    /// The single-flight protocol: returns a token different from `stale`.
    async fn refresh(&self, name: &str, stale: &SecretString) -> Result<SecretString, TokenError> {
        let flight = self.flight(name);
        let _one_at_a_time = flight.lock().await;
        // Another task of this instance may have refreshed while this one queued.
        if let Some(cached) = self.cached(name)
            && !same(&cached.access_token, stale)
        {
            return Ok(cached.access_token);
        }
        let lease = lease_name(name);
        let deadline = Instant::now() + self.config.wait;
        loop {
            let taken = self
                .leases
                .acquire_lease(
                    &lease,
                    &self.holder,
                    self.clock.now(),
                    self.config.lease_ttl,
                )
                .await?;
            if taken {
                let result = self.refresh_holding_lease(name, stale).await;
                if let Err(e) = self.leases.release_lease(&lease, &self.holder).await {
                    // It expires on its own after `lease_ttl`; others wait until then.
                    tracing::warn!(credentials = name, error = %e, "could not release the token-refresh lease");
                }
                return result;
            }
            // Someone else is refreshing: wait for their token to appear in the secret.
            let (_, stored) = self.read(name).await?;
            if !same(&stored.access_token, stale) {
                self.remember(name, &stored.access_token, stored.expires_at);
                return Ok(stored.access_token);
            }
            if Instant::now() >= deadline {
                return Err(TokenError::Busy {
                    name: name.to_string(),
                });
            }
            tokio::time::sleep(self.config.poll).await;
        }
    }

    async fn refresh_holding_lease(
        &self,
        name: &str,
        stale: &SecretString,
    ) -> Result<SecretString, TokenError> {
        // Read again under the lease: a refresh may have finished between our last read and
        // taking the lease.
        let (raw, stored) = self.read(name).await?;
        if !same(&stored.access_token, stale) {
            self.remember(name, &stored.access_token, stored.expires_at);
            return Ok(stored.access_token);
        }
        let vendor = self.refresher.vendor();
        let tokens = match self.refresher.refresh(&raw, self.clock.now()).await {
            Ok(tokens) => tokens,
            Err(RefreshError::Refused(message)) => {
                tracing::error!(
                    credentials = name,
                    vendor,
                    reason = %message,
                    "refresh token refused: the connection needs re-authorising"
                );
                count(Metric::TokenRefreshFailed, 1);
                self.mark_needs_reconnect(name, &stored.refresh_token, &message)
                    .await;
                return Err(TokenError::Broken {
                    name: name.to_string(),
                    vendor,
                    message: format!("{vendor} refused the refresh token ({message})"),
                });
            }
            Err(RefreshError::Transient(message)) => {
                tracing::warn!(credentials = name, vendor, reason = %message, "token refresh failed; will retry");
                return Err(TokenError::Refresh {
                    name: name.to_string(),
                    message,
                });
            }
            Err(RefreshError::Misconfigured(message)) => {
                tracing::error!(credentials = name, vendor, reason = %message, "token refresh is misconfigured");
                count(Metric::TokenRefreshFailed, 1);
                return Err(TokenError::Misconfigured {
                    name: name.to_string(),
                    message,
                });
            }
        };
        let merged = merge_tokens(&raw, &tokens).map_err(|reason| TokenError::Invalid {
            name: name.to_string(),
            reason,
        })?;
        self.store(name, vendor, &merged).await?;
        count(Metric::TokenRefreshed, 1);
        tracing::info!(credentials = name, vendor, expires_at = ?tokens.expires_at, "access token refreshed");
        self.remember(name, &tokens.access_token, tokens.expires_at);
        Ok(tokens.access_token)
    }

    /// Stores a rotated pair, retrying briefly: the vendor has already spent the old refresh
    /// token, so failing here breaks the connection.
    async fn store(
        &self,
        name: &str,
        vendor: &'static str,
        merged: &SecretString,
    ) -> Result<(), TokenError> {
        let secret = secret_names::credentials(name);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.secrets.put(&secret, merged).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < STORE_ATTEMPTS => {
                    tracing::warn!(credentials = name, attempt, error = %e, "storing refreshed tokens failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(e) => {
                    tracing::error!(credentials = name, error = %e, "refreshed tokens could not be stored; the old refresh token is spent");
                    count(Metric::TokenRefreshFailed, 1);
                    return Err(TokenError::Broken {
                        name: name.to_string(),
                        vendor,
                        message: format!("the refreshed tokens could not be stored ({e})"),
                    });
                }
            }
        }
    }

    /// Writes `needs_reconnect` into the stored set so every instance stops calling the
    /// token endpoint with a refresh token it refused. Re-read first: if the set was rewritten
    /// meanwhile (a new `connect`), its new refresh token is not the refused one and the set is
    /// left alone. Failing to write only costs more refused calls, so it is logged, not raised.
    async fn mark_needs_reconnect(&self, name: &str, refused: &SecretString, reason: &str) {
        self.forget(name);
        let current = match self.read(name).await {
            Ok((raw, now)) if same(&now.refresh_token, refused) => raw,
            // Rewritten, gone, unreadable or marked already: nothing to mark.
            Ok(_)
            | Err(
                TokenError::NotFound { .. }
                | TokenError::Invalid { .. }
                | TokenError::Broken { .. },
            ) => return,
            Err(e) => {
                tracing::warn!(credentials = name, error = %e, "could not re-read the credential set to mark it as needing reconnect");
                return;
            }
        };
        let secret = secret_names::credentials(name);
        let marked = match mark_needs_reconnect(&current, self.clock.now(), reason) {
            Ok(marked) => marked,
            Err(e) => {
                tracing::warn!(credentials = name, error = %e, "could not mark the credential set as needing reconnect");
                return;
            }
        };
        if let Err(e) = self.secrets.put(&secret, &marked).await {
            tracing::warn!(credentials = name, error = %e, "could not mark the credential set as needing reconnect");
        }
    }

    /// The secret, uncached, and its token fields. A set marked `needs_reconnect` is
    /// [`TokenError::Broken`] at once: its refresh token was refused, and calling the vendor
    /// again with it cannot help.
    async fn read(&self, name: &str) -> Result<(SecretString, StoredTokens), TokenError> {
        let secret = secret_names::credentials(name);
        let raw = self
            .secrets
            .get(&secret)
            .await?
            .ok_or_else(|| TokenError::NotFound {
                name: name.to_string(),
                secret: secret.clone(),
            })?;
        let stored = StoredTokens::parse(&raw).map_err(|reason| TokenError::Invalid {
            name: name.to_string(),
            reason,
        })?;
        if let Some(reason) = stored.reconnect_reason() {
            self.forget(name);
            return Err(TokenError::Broken {
                name: name.to_string(),
                vendor: self.refresher.vendor(),
                message: format!("the credential set is {reason}"),
            });
        }
        Ok((raw, stored))
    }

    fn cached(&self, name: &str) -> Option<Cached> {
        lock(&self.cache).get(name).cloned()
    }

    fn remember(&self, name: &str, token: &SecretString, expires_at: Option<DateTime<Utc>>) {
        lock(&self.cache).insert(
            name.to_string(),
            Cached {
                access_token: token.clone(),
                expires_at,
            },
        );
    }

    fn forget(&self, name: &str) {
        lock(&self.cache).remove(name);
    }

    fn forget_if(&self, name: &str, token: &SecretString) {
        let mut cache = lock(&self.cache);
        if cache
            .get(name)
            .is_some_and(|c| same(&c.access_token, token))
        {
            cache.remove(name);
        }
    }

    fn flight(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.flights)
            .entry(name.to_string())
            .or_default()
            .clone()
    }
}

#[async_trait]
impl AccessTokens for TokenManager {
    async fn access_token(&self, name: &str) -> Result<SecretString, TokenError> {
        TokenManager::access_token(self, name).await
    }

    async fn refresh_after_unauthorized(
        &self,
        name: &str,
        rejected: &SecretString,
    ) -> Result<SecretString, TokenError> {
        TokenManager::refresh_after_unauthorized(self, name, rejected).await
    }
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("vendor", &self.refresher.vendor())
            .field("holder", &self.holder)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn same(a: &SecretString, b: &SecretString) -> bool {
    a.expose_secret() == b.expose_secret()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::adapters::embedded::{EmbeddedDb, EmbeddedSecrets};
    use crate::ports::ManualClock;
    use crate::tokens::TokenSet;

    /// A token endpoint that counts calls, hands out `a<n>`/`r<n>` and refuses reused refresh
    /// tokens, like FreshBooks.
    struct FakeRefresher {
        calls: AtomicUsize,
        spent: Mutex<Vec<String>>,
        delay: Duration,
        fail_with: Mutex<Option<RefreshError>>,
    }

    impl FakeRefresher {
        fn new(delay: Duration) -> Arc<Self> {
            Arc::new(Self {
                calls: AtomicUsize::new(0),
                spent: Mutex::new(Vec::new()),
                delay,
                fail_with: Mutex::new(None),
            })
        }
    }

    #[async_trait]
    impl Refresher for FakeRefresher {
        fn vendor(&self) -> &'static str {
            "FreshBooks"
        }

        async fn refresh(
            &self,
            credentials: &SecretString,
            now: DateTime<Utc>,
        ) -> Result<TokenSet, RefreshError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(self.delay).await;
            if let Some(e) = lock(&self.fail_with).take() {
                return Err(e);
            }
            let stored = StoredTokens::parse(credentials).unwrap();
            let refresh = stored.refresh_token.expose_secret().to_string();
            let mut spent = lock(&self.spent);
            if spent.contains(&refresh) {
                return Err(RefreshError::Refused("invalid_grant".into()));
            }
            spent.push(refresh);
            Ok(TokenSet {
                access_token: format!("a{n}").into(),
                refresh_token: format!("r{n}").into(),
                expires_at: Some(now + chrono::Duration::hours(12)),
                refresh_expires_at: None,
            })
        }
    }

    struct Setup {
        db: EmbeddedDb,
        secrets: Arc<EmbeddedSecrets>,
        clock: Arc<ManualClock>,
    }

    async fn setup(expires_in: chrono::Duration) -> Setup {
        let clock = Arc::new(ManualClock::at_unix(1_772_000_000));
        let db = EmbeddedDb::in_memory(clock.clone()).unwrap();
        let secrets = Arc::new(EmbeddedSecrets::open(&db).unwrap());
        let json = serde_json::json!({
            "access_token": "a0", "refresh_token": "r0",
            "expires_at": (clock.now() + expires_in).to_rfc3339(),
            "client_id": "cid", "client_secret": "cs",
        });
        secrets
            .put("credentials/fb", &SecretString::from(json.to_string()))
            .await
            .unwrap();
        Setup { db, secrets, clock }
    }

    impl Setup {
        fn manager(&self, refresher: Arc<FakeRefresher>) -> TokenManager {
            TokenManager::new(
                self.secrets.clone(),
                Arc::new(self.db.clone()),
                self.clock.clone(),
                refresher,
            )
            .with_config(TokenConfig {
                poll: Duration::from_millis(10),
                ..TokenConfig::default()
            })
        }

        async fn stored(&self) -> serde_json::Value {
            let raw = self.secrets.get("credentials/fb").await.unwrap().unwrap();
            serde_json::from_str(raw.expose_secret()).unwrap()
        }
    }

    #[tokio::test]
    async fn a_primed_token_is_used_without_reading_the_secret() {
        let s = setup(chrono::Duration::hours(11)).await;
        let m = s.manager(FakeRefresher::new(Duration::ZERO));
        let primed = |json: serde_json::Value| {
            StoredTokens::parse(&SecretString::from(json.to_string())).unwrap()
        };
        let expires_at = (s.clock.now() + chrono::Duration::hours(11)).to_rfc3339();
        // Marked sets are not cached: the secret (unmarked here) is read instead.
        m.prime(
            "fb",
            &primed(serde_json::json!({
                "access_token": "marked", "refresh_token": "r",
                "expires_at": expires_at, "needs_reconnect": {"reason": "x"},
            })),
        );
        assert_eq!(m.access_token("fb").await.unwrap().expose_secret(), "a0");
        m.prime(
            "fb",
            &primed(serde_json::json!({
                "access_token": "primed", "refresh_token": "r", "expires_at": expires_at,
            })),
        );
        assert_eq!(
            m.access_token("fb").await.unwrap().expose_secret(),
            "primed"
        );
    }

    #[tokio::test]
    async fn a_fresh_token_is_used_without_refreshing() {
        let s = setup(chrono::Duration::hours(11)).await;
        let refresher = FakeRefresher::new(Duration::ZERO);
        let m = s.manager(refresher.clone());
        assert_eq!(m.access_token("fb").await.unwrap().expose_secret(), "a0");
        assert!(
            !m.refresh_if_expiring("fb", chrono::Duration::hours(1))
                .await
                .unwrap()
        );
        assert_eq!(refresher.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn ten_instances_needing_a_refresh_make_one_call() {
        let s = setup(chrono::Duration::minutes(10)).await;
        let refresher = FakeRefresher::new(Duration::from_millis(50));
        let managers: Vec<_> = (0..10)
            .map(|_| Arc::new(s.manager(refresher.clone())))
            .collect();
        let tasks: Vec<_> = managers
            .iter()
            .map(|m| {
                let m = m.clone();
                tokio::spawn(async move { m.access_token("fb").await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().expose_secret(), "a1");
        }
        assert_eq!(refresher.calls.load(Ordering::SeqCst), 1);
        let stored = s.stored().await;
        assert_eq!(stored["refresh_token"], "r1");
        assert_eq!(stored["client_id"], "cid", "other fields are kept");
    }

    #[tokio::test]
    async fn concurrent_callers_in_one_instance_share_a_refresh() {
        let s = setup(chrono::Duration::minutes(10)).await;
        let refresher = FakeRefresher::new(Duration::from_millis(20));
        let m = Arc::new(s.manager(refresher.clone()));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let m = m.clone();
                tokio::spawn(async move { m.access_token("fb").await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().expose_secret(), "a1");
        }
        assert_eq!(refresher.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_401_uses_another_instances_newer_token_before_refreshing() {
        let s = setup(chrono::Duration::hours(11)).await;
        let refresher = FakeRefresher::new(Duration::ZERO);
        let first = s.manager(refresher.clone());
        let second = s.manager(refresher.clone());
        let old = first.access_token("fb").await.unwrap();
        let _ = second.access_token("fb").await.unwrap();
        // The first instance refreshes after a 401 ...
        let new = first.refresh_after_unauthorized("fb", &old).await.unwrap();
        assert_eq!(new.expose_secret(), "a1");
        // ... and the second, refused the same old token, picks the stored one up.
        let picked = second.refresh_after_unauthorized("fb", &old).await.unwrap();
        assert_eq!(picked.expose_secret(), "a1");
        assert_eq!(refresher.calls.load(Ordering::SeqCst), 1);
        // A 401 for the new token refreshes again.
        let newer = second.refresh_after_unauthorized("fb", &new).await.unwrap();
        assert_eq!(newer.expose_secret(), "a2");
        assert_eq!(s.stored().await["refresh_token"], "r2");
    }

    #[tokio::test]
    async fn a_refused_refresh_token_breaks_the_connection() {
        let s = setup(chrono::Duration::minutes(1)).await;
        let refresher = FakeRefresher::new(Duration::ZERO);
        *lock(&refresher.fail_with) = Some(RefreshError::Refused("invalid_grant".into()));
        let m = s.manager(refresher.clone());
        let err = m.access_token("fb").await.unwrap_err();
        assert!(matches!(err, TokenError::Broken { .. }), "{err:?}");
        assert!(!err.is_transient());
        assert!(err.to_string().contains("ml-connector connect"), "{err}");
        // The lease was released: a later attempt (after re-authorising) goes ahead.
        assert!(
            s.db.acquire_lease(
                &lease_name("fb"),
                "other",
                s.clock.now(),
                Duration::from_secs(5)
            )
            .await
            .unwrap()
        );
        s.db.release_lease(&lease_name("fb"), "other")
            .await
            .unwrap();
        // The set is marked, the tokens kept ...
        let stored = s.stored().await;
        assert_eq!(stored["refresh_token"], "r0");
        assert_eq!(stored["client_id"], "cid");
        assert_eq!(stored["needs_reconnect"]["reason"], "invalid_grant");
        assert!(stored["needs_reconnect"]["since"].is_string());
        // ... so every instance fails fast without calling the token endpoint again.
        let other = s.manager(refresher.clone());
        for m in [&m, &other] {
            let err = m.access_token("fb").await.unwrap_err();
            assert!(matches!(err, TokenError::Broken { .. }), "{err:?}");
            assert!(err.to_string().contains("needing reconnect"), "{err}");
            let err = m
                .refresh_after_unauthorized("fb", &"a0".into())
                .await
                .unwrap_err();
            assert!(matches!(err, TokenError::Broken { .. }), "{err:?}");
            assert!(matches!(
                m.refresh_if_expiring("fb", chrono::Duration::hours(1))
                    .await,
                Err(TokenError::Broken { .. })
            ));
        }
        assert_eq!(refresher.calls.load(Ordering::SeqCst), 1);
        // Rewriting the set (`connect`) clears the mark.
        let fresh = serde_json::json!({
            "access_token": "c0", "refresh_token": "rc0",
            "expires_at": (s.clock.now() + chrono::Duration::hours(11)).to_rfc3339(),
        });
        s.secrets
            .put("credentials/fb", &SecretString::from(fresh.to_string()))
            .await
            .unwrap();
        assert_eq!(m.access_token("fb").await.unwrap().expose_secret(), "c0");
    }

    #[tokio::test]
    async fn a_set_rewritten_during_the_refusal_is_not_marked() {
        let s = setup(chrono::Duration::minutes(1)).await;
        // The token endpoint refuses, and meanwhile someone reconnects.
        struct RefuseAndReconnect(Arc<EmbeddedSecrets>);
        #[async_trait]
        impl Refresher for RefuseAndReconnect {
            fn vendor(&self) -> &'static str {
                "QuickBooks"
            }
            async fn refresh(
                &self,
                _: &SecretString,
                _: DateTime<Utc>,
            ) -> Result<TokenSet, RefreshError> {
                let json = r#"{"access_token":"n0","refresh_token":"rn0"}"#;
                self.0
                    .put("credentials/fb", &SecretString::from(json))
                    .await
                    .unwrap();
                Err(RefreshError::Refused("invalid_grant".into()))
            }
        }
        let m = TokenManager::new(
            s.secrets.clone(),
            Arc::new(s.db.clone()),
            s.clock.clone(),
            Arc::new(RefuseAndReconnect(s.secrets.clone())),
        );
        let err = m.access_token("fb").await.unwrap_err();
        assert!(err.to_string().contains("QuickBooks refused"), "{err}");
        let stored = s.stored().await;
        assert!(stored.get("needs_reconnect").is_none(), "{stored}");
        assert_eq!(m.access_token("fb").await.unwrap().expose_secret(), "n0");
    }

    #[tokio::test]
    async fn transient_refresh_failures_are_transient_and_keep_the_stored_pair() {
        let s = setup(chrono::Duration::minutes(1)).await;
        let refresher = FakeRefresher::new(Duration::ZERO);
        *lock(&refresher.fail_with) = Some(RefreshError::Transient("HTTP 503".into()));
        let m = s.manager(refresher.clone());
        assert!(m.access_token("fb").await.unwrap_err().is_transient());
        assert_eq!(s.stored().await["refresh_token"], "r0");
        // The failed call counted as the first; the retry succeeds.
        assert_eq!(m.access_token("fb").await.unwrap().expose_secret(), "a2");
    }

    #[tokio::test]
    async fn a_held_lease_makes_callers_wait_then_give_up_transiently() {
        let s = setup(chrono::Duration::minutes(1)).await;
        let refresher = FakeRefresher::new(Duration::ZERO);
        let m = s.manager(refresher.clone()).with_config(TokenConfig {
            wait: Duration::from_millis(50),
            poll: Duration::from_millis(10),
            ..TokenConfig::default()
        });
        assert!(
            s.db.acquire_lease(
                &lease_name("fb"),
                "dead-instance",
                s.clock.now(),
                Duration::from_secs(30)
            )
            .await
            .unwrap()
        );
        let err = m.access_token("fb").await.unwrap_err();
        assert!(matches!(err, TokenError::Busy { .. }) && err.is_transient());
        assert_eq!(refresher.calls.load(Ordering::SeqCst), 0);
        // Once the dead holder's lease expires, the refresh goes ahead.
        s.clock.advance(chrono::Duration::seconds(31));
        assert_eq!(m.access_token("fb").await.unwrap().expose_secret(), "a1");
    }

    #[tokio::test]
    async fn missing_and_corrupt_credentials_are_permanent() {
        let s = setup(chrono::Duration::hours(1)).await;
        let m = s.manager(FakeRefresher::new(Duration::ZERO));
        let err = m.access_token("nope").await.unwrap_err();
        assert!(matches!(err, TokenError::NotFound { .. }) && !err.is_transient());
        s.secrets
            .put("credentials/bad", &SecretString::from(r#""SECRET""#))
            .await
            .unwrap();
        let err = m.access_token("bad").await.unwrap_err();
        assert!(matches!(err, TokenError::Invalid { .. }));
        assert!(!err.to_string().contains("SECRET"));
    }

    #[tokio::test]
    async fn proactive_refresh_only_when_expiring() {
        let s = setup(chrono::Duration::hours(2)).await;
        let refresher = FakeRefresher::new(Duration::ZERO);
        let m = s.manager(refresher.clone());
        assert!(
            !m.refresh_if_expiring("fb", chrono::Duration::hours(1))
                .await
                .unwrap()
        );
        assert!(
            m.refresh_if_expiring("fb", chrono::Duration::hours(3))
                .await
                .unwrap()
        );
        assert_eq!(s.stored().await["access_token"], "a1");
        assert_eq!(refresher.calls.load(Ordering::SeqCst), 1);
    }
}
