//! [`LiveClients`]: the real [`VendorClients`], building vendor API clients from the credential
//! sets in the secret store (Secrets Manager on Lambda, the encrypted local store in dev).
//!
//! One client per credential-set name is built and kept: FreshBooks and QuickBooks clients for
//! the life of the process (their tokens come from one [`TokenManager`] per vendor, which
//! re-reads and refreshes the secret itself), Mailchimp clients for [`LiveClientsConfig::cache_ttl`], so a replaced API
//! key is picked up without a redeploy. Clients of one Mailchimp key share one connection
//! limiter whatever the number of rebuilds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::SecretString;

use crate::config::{ConfigError, FromEnv, Vars};
use crate::flows::clients::VendorClients;
use crate::ports::secret_names;
use crate::ports::{Clock, Leases, PortError, Secrets};
use crate::tokens::{RefreshError, StoredTokens, TokenConfig, TokenManager};
use crate::vendors::freshbooks::FreshbooksApi;
use crate::vendors::freshbooks::client::{DEFAULT_BASE_URL, FreshbooksClient};
use crate::vendors::freshbooks::oauth::FreshbooksOauth;
use crate::vendors::hubspot::client::{ClientOptions as HubspotOptions, HubspotClient};
use crate::vendors::hubspot::oauth::{HubspotOauth, TOKEN_URL as HUBSPOT_TOKEN_URL};
use crate::vendors::hubspot::{HubspotApi, HubspotCredentials, HubspotError};
use crate::vendors::mailchimp::client::{ClientOptions, MailchimpClient};
use crate::vendors::mailchimp::{MailchimpApi, MailchimpError};
use crate::vendors::quickbooks::client::{ClientOptions as QuickbooksOptions, QuickbooksClient};
use crate::vendors::quickbooks::oauth::{QuickbooksOauth, TOKEN_URL as QUICKBOOKS_TOKEN_URL};
use crate::vendors::quickbooks::{QuickbooksApi, QuickbooksCredentials};
use crate::worker::HandlerError;

/// Environment variables [`LiveClientsConfig`] is read from ([`FromEnv`]); all optional.
pub mod env {
    /// FreshBooks API (and OAuth token endpoint) base URL. Default `https://api.freshbooks.com`;
    /// the sandbox's `http://127.0.0.1:<port>` in tests and `ml-connector dev --sandbox`.
    pub const FRESHBOOKS_API_BASE: &str = "FRESHBOOKS_API_BASE";
    /// Mailchimp API base URL (with `/3.0`), replacing the one derived from the key's data
    /// centre. Unset in production.
    pub const MAILCHIMP_API_BASE: &str = "MAILCHIMP_API_BASE";
    /// QuickBooks Accounting API base URL, which also serves the token endpoint
    /// (`{base}/oauth2/v1/tokens/bearer`): the sandbox's `http://127.0.0.1:<port>`. Unset: each
    /// credential set's `environment` picks Intuit's production or sandbox host, and tokens go
    /// to Intuit's token endpoint.
    pub const QUICKBOOKS_API_BASE: &str = "QUICKBOOKS_API_BASE";
    /// HubSpot API base URL, which also serves the OAuth token endpoint
    /// (`{base}/oauth/v1/token`): the sandbox's `http://127.0.0.1:<port>`. Unset:
    /// `https://api.hubapi.com`.
    pub const HUBSPOT_API_BASE: &str = "HUBSPOT_API_BASE";
    /// The worker queue's event-source `MaximumConcurrency`: how many instances share
    /// Mailchimp's 10 connections per key, and QuickBooks' 500 requests a minute and 10 at once
    /// per company. Default 1 (one local process).
    pub(crate) const WORKER_MAX_CONCURRENCY: &str = "WORKER_MAX_CONCURRENCY";
}

/// How [`LiveClients`] builds clients.
#[derive(Debug, Clone)]
pub struct LiveClientsConfig {
    /// FreshBooks API base URL (`FRESHBOOKS_API_BASE`; a sandbox's in tests).
    pub freshbooks_api_base: String,
    /// Base URL override, timeout and the limiter's share of Mailchimp's connections (its
    /// `max_concurrency`, `WORKER_MAX_CONCURRENCY`, also divides QuickBooks' realm limits).
    pub mailchimp: ClientOptions,
    /// `QUICKBOOKS_API_BASE`: replaces the API host of every QuickBooks credential set and the
    /// token endpoint; `None` in production.
    pub quickbooks_api_base: Option<String>,
    /// `HUBSPOT_API_BASE`: replaces HubSpot's API host and token endpoint; `None` in
    /// production.
    pub hubspot_api_base: Option<String>,
    /// How long a credential secret (and the Mailchimp or HubSpot client built from it) is
    /// trusted.
    pub cache_ttl: Duration,
}

impl Default for LiveClientsConfig {
    fn default() -> Self {
        Self {
            freshbooks_api_base: DEFAULT_BASE_URL.to_string(),
            mailchimp: ClientOptions::default(),
            quickbooks_api_base: None,
            hubspot_api_base: None,
            cache_ttl: Duration::from_secs(300),
        }
    }
}

/// Reads the variables in `env`; unset or blank URLs take the defaults.
impl FromEnv for LiveClientsConfig {
    fn read(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        let mut c = Self::default();
        if let Some(base) = vars.text(env::FRESHBOOKS_API_BASE) {
            c.freshbooks_api_base = base;
        }
        c.mailchimp.base_url = vars.text(env::MAILCHIMP_API_BASE);
        c.quickbooks_api_base = vars.text(env::QUICKBOOKS_API_BASE);
        c.hubspot_api_base = vars.text(env::HUBSPOT_API_BASE);
        if let Some(n) = vars.number(env::WORKER_MAX_CONCURRENCY, 1)? {
            c.mailchimp.max_concurrency = usize::try_from(n).unwrap_or(usize::MAX);
        }
        Ok(c)
    }
}

impl LiveClientsConfig {
    /// How QuickBooks clients are set up under this configuration.
    pub(crate) fn quickbooks_options(&self) -> QuickbooksOptions {
        QuickbooksOptions {
            api_base: self.quickbooks_api_base.clone(),
            max_concurrency: self.mailchimp.max_concurrency,
            ..QuickbooksOptions::default()
        }
    }

    /// The QuickBooks token endpoint: under `QUICKBOOKS_API_BASE` when set, else Intuit's.
    pub(crate) fn quickbooks_oauth(&self) -> Result<QuickbooksOauth, RefreshError> {
        match &self.quickbooks_api_base {
            Some(base) => QuickbooksOauth::for_api_base(base),
            None => QuickbooksOauth::new(QUICKBOOKS_TOKEN_URL),
        }
    }
}

impl LiveClientsConfig {
    /// How HubSpot clients are set up under this configuration.
    pub(crate) fn hubspot_options(&self) -> HubspotOptions {
        HubspotOptions {
            api_base: self.hubspot_api_base.clone(),
            max_concurrency: self.mailchimp.max_concurrency,
            ..HubspotOptions::default()
        }
    }

    /// The HubSpot token endpoint: under `HUBSPOT_API_BASE` when set, else HubSpot's.
    pub(crate) fn hubspot_oauth(&self) -> Result<HubspotOauth, RefreshError> {
        match &self.hubspot_api_base {
            Some(base) => HubspotOauth::for_api_base(base),
            None => HubspotOauth::new(HUBSPOT_TOKEN_URL),
        }
    }
}

/// When the HubSpot manager refreshes ahead of expiry: HubSpot's OAuth access tokens live
/// 30 min (`expires_in` 1800), so the FreshBooks default margin (30 min) would refresh on
/// every call.
pub const HUBSPOT_TOKEN_MARGIN: chrono::Duration = chrono::Duration::minutes(5);

/// When the QuickBooks manager refreshes ahead of expiry: Intuit's access tokens live 1 h, so
/// the FreshBooks default (30 min of a 12 h token) would refresh every half hour.
pub const QUICKBOOKS_TOKEN_MARGIN: chrono::Duration = chrono::Duration::minutes(10);

/// A [`LiveClients`] that cannot be set up (a base URL that does not parse).
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {source}")]
pub struct LiveClientsError {
    /// The variable that holds the bad value.
    pub variable: &'static str,
    /// Why it cannot be used.
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// The real [`VendorClients`]. Build one per process and share it.
pub struct LiveClients {
    /// Read uncached: a FreshBooks set is read once per process, a Mailchimp one once per
    /// [`LiveClientsConfig::cache_ttl`] (the client cache is the only cache).
    secrets: Arc<dyn Secrets>,
    freshbooks_tokens: Arc<TokenManager>,
    quickbooks_tokens: Arc<TokenManager>,
    /// OAuth HubSpot sets only; private-app tokens and service keys are static.
    hubspot_tokens: Arc<TokenManager>,
    config: LiveClientsConfig,
    freshbooks: Mutex<HashMap<String, Arc<FreshbooksClient>>>,
    quickbooks: Mutex<HashMap<String, Arc<QuickbooksClient>>>,
    mailchimp: Mutex<HashMap<String, (Instant, Arc<MailchimpClient>)>>,
    hubspot: Mutex<HashMap<String, (Instant, Arc<HubspotClient>)>>,
    /// The app's clock: a HubSpot daily-limit hold ends at the portal's midnight on it, the
    /// same clock the harness hides held messages by.
    clock: Arc<dyn Clock>,
}

impl LiveClients {
    /// Clients reading credential sets from `secrets`; FreshBooks and QuickBooks token
    /// refreshes are single-flight through `leases` (the state store).
    pub fn new(
        secrets: Arc<dyn Secrets>,
        leases: Arc<dyn Leases>,
        clock: Arc<dyn Clock>,
        config: LiveClientsConfig,
    ) -> Result<Self, LiveClientsError> {
        let oauth = FreshbooksOauth::new(&config.freshbooks_api_base).map_err(|source| {
            LiveClientsError {
                variable: env::FRESHBOOKS_API_BASE,
                source: source.into(),
            }
        })?;
        let qb_oauth = config
            .quickbooks_oauth()
            .map_err(|source| LiveClientsError {
                variable: env::QUICKBOOKS_API_BASE,
                source: source.into(),
            })?;
        let hs_oauth = config.hubspot_oauth().map_err(|source| LiveClientsError {
            variable: env::HUBSPOT_API_BASE,
            source: source.into(),
        })?;
        let hubspot_tokens = Arc::new(
            TokenManager::new(
                secrets.clone(),
                leases.clone(),
                clock.clone(),
                Arc::new(hs_oauth),
            )
            .with_config(TokenConfig {
                margin: HUBSPOT_TOKEN_MARGIN,
                ..TokenConfig::default()
            }),
        );
        // The token managers read the secret uncached: they must see other instances'
        // rotations.
        let freshbooks_tokens = Arc::new(TokenManager::new(
            secrets.clone(),
            leases.clone(),
            clock.clone(),
            Arc::new(oauth),
        ));
        let quickbooks_tokens = Arc::new(
            TokenManager::new(secrets.clone(), leases, clock.clone(), Arc::new(qb_oauth))
                .with_config(TokenConfig {
                    margin: QUICKBOOKS_TOKEN_MARGIN,
                    ..TokenConfig::default()
                }),
        );
        Ok(Self {
            secrets,
            freshbooks_tokens,
            quickbooks_tokens,
            hubspot_tokens,
            config,
            freshbooks: Mutex::new(HashMap::new()),
            quickbooks: Mutex::new(HashMap::new()),
            mailchimp: Mutex::new(HashMap::new()),
            hubspot: Mutex::new(HashMap::new()),
            clock,
        })
    }

    /// The FreshBooks token manager the clients use; the poller's `token_refresh` job runs on
    /// it so its refreshes and the workers' share one single-flight protocol.
    pub fn freshbooks_tokens(&self) -> Arc<TokenManager> {
        self.freshbooks_tokens.clone()
    }

    /// The poller's token refreshers: the same managers the clients use, so the token jobs and
    /// the workers share one single-flight protocol and one per-instance cache.
    pub(crate) fn token_refreshers(&self) -> crate::poller::Refreshers {
        [&self.freshbooks_tokens, &self.quickbooks_tokens]
            .into_iter()
            .filter_map(|manager| {
                // Each manager names its vendor as the vendor's spec displays it; a name no spec
                // has would be a bug in the refresher, and leaves that vendor without a refresher
                // (the token job reports it) rather than failing the whole poller.
                let vendor = crate::vendor::Vendor::ALL
                    .iter()
                    .copied()
                    .find(|v| crate::vendors::spec(*v).display == manager.vendor())?;
                Some((
                    vendor,
                    manager.clone() as Arc<dyn crate::poller::TokenRefresher>,
                ))
            })
            .collect()
    }

    /// The HubSpot token manager OAuth clients use (margin [`HUBSPOT_TOKEN_MARGIN`]). Not among
    /// [`LiveClients::token_refreshers`]: HubSpot names no poller token job (its 30-minute
    /// tokens are refreshed on use, ahead of expiry, single-flight like the others).
    pub fn hubspot_tokens(&self) -> Arc<TokenManager> {
        self.hubspot_tokens.clone()
    }

    /// The QuickBooks token manager the clients use (margin [`QUICKBOOKS_TOKEN_MARGIN`]); the
    /// poller's `quickbooks_token_refresh` job runs on it.
    pub fn quickbooks_tokens(&self) -> Arc<TokenManager> {
        self.quickbooks_tokens.clone()
    }

    /// The credential secret `credentials/<name>`; missing → a permanent error saying how to
    /// set it. The value never appears in an error.
    async fn credential_secret(
        &self,
        vendor: &str,
        name: &str,
    ) -> Result<SecretString, HandlerError> {
        let secret = secret_names::credentials(name);
        match self.secrets.get(&secret).await {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(missing(vendor, name)),
            Err(e) => Err(store_error(&secret, e)),
        }
    }
}

/// The error for a credential set that does not exist.
fn missing(vendor: &str, name: &str) -> HandlerError {
    let secret = secret_names::credentials(name);
    HandlerError::permanent(
        "credentials_missing",
        format!(
            "{vendor} credential set `{name}` not found: set it with `ml-connector secrets put {secret}` (or `ml-connector connect`), then replay"
        ),
    )
}

/// The error for a credential set that exists but cannot be used. `reason` never quotes the
/// secret.
fn unreadable(vendor: &str, name: &str, reason: &str) -> HandlerError {
    let secret = secret_names::credentials(name);
    HandlerError::permanent(
        "credentials_invalid",
        format!(
            "{vendor} credential set `{name}` is unusable ({reason}): replace it with `ml-connector secrets put {secret}`, then replay"
        ),
    )
}

fn store_error(secret: &str, e: PortError) -> HandlerError {
    match e {
        PortError::Backend { .. } => {
            HandlerError::transient(format!("reading secret `{secret}`: {e}"))
        }
        PortError::Corrupt { .. } | PortError::NotFound { .. } => HandlerError::permanent(
            "credentials_invalid",
            format!("reading secret `{secret}`: {e}"),
        ),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl VendorClients for LiveClients {
    async fn freshbooks(&self, credentials: &str) -> Result<Arc<dyn FreshbooksApi>, HandlerError> {
        if let Some(client) = lock(&self.freshbooks).get(credentials) {
            return Ok(client.clone());
        }
        // Checked once, before the first client is built, so a missing or malformed set fails
        // here with the fix rather than on the first API call.
        let secret = self.credential_secret("FreshBooks", credentials).await?;
        let stored = StoredTokens::parse(&secret)
            .map_err(|reason| unreadable("FreshBooks", credentials, &reason))?;
        let client = FreshbooksClient::new(
            &self.config.freshbooks_api_base,
            self.freshbooks_tokens.clone(),
            credentials,
        )
        .map_err(|e| {
            HandlerError::permanent(
                "configuration",
                format!("{}: {e}", env::FRESHBOOKS_API_BASE),
            )
        })?;
        // The secret was just read: the first call need not read it again for its token.
        self.freshbooks_tokens.prime(credentials, &stored);
        let client = Arc::new(client);
        lock(&self.freshbooks)
            .entry(credentials.to_string())
            .or_insert(client.clone());
        Ok(client)
    }

    async fn mailchimp(&self, credentials: &str) -> Result<Arc<dyn MailchimpApi>, HandlerError> {
        if let Some((at, client)) = lock(&self.mailchimp).get(credentials)
            && at.elapsed() < self.config.cache_ttl
        {
            return Ok(client.clone());
        }
        let secret = self.credential_secret("Mailchimp", credentials).await?;
        let client =
            MailchimpClient::from_secret(&secret, &self.config.mailchimp).map_err(|e| match e {
                MailchimpError::Credentials(reason) => {
                    unreadable("Mailchimp", credentials, &reason)
                }
                MailchimpError::InvalidBaseUrl(_) => HandlerError::permanent(
                    "configuration",
                    format!("{}: {e}", env::MAILCHIMP_API_BASE),
                ),
                other => HandlerError::transient(format!("building the Mailchimp client: {other}")),
            })?;
        let client = Arc::new(client);
        lock(&self.mailchimp).insert(credentials.to_string(), (Instant::now(), client.clone()));
        Ok(client)
    }

    async fn quickbooks(&self, credentials: &str) -> Result<Arc<dyn QuickbooksApi>, HandlerError> {
        Ok(self.quickbooks_client(credentials).await?)
    }

    async fn hubspot(&self, credentials: &str) -> Result<Arc<dyn HubspotApi>, HandlerError> {
        Ok(self.hubspot_client(credentials).await?)
    }
}

impl LiveClients {
    /// The QuickBooks client of credential set `credentials`, built once per process.
    async fn quickbooks_client(
        &self,
        credentials: &str,
    ) -> Result<Arc<QuickbooksClient>, HandlerError> {
        if let Some(client) = lock(&self.quickbooks).get(credentials) {
            return Ok(client.clone());
        }
        // Read once, for the realm's environment (API host); tokens come from the manager.
        let secret = self.credential_secret("QuickBooks", credentials).await?;
        let set = QuickbooksCredentials::from_secret(&secret)
            .map_err(|e| unreadable("QuickBooks", credentials, &e.to_string()))?;
        // The first call need not read the secret again for its token. A set that parses as
        // QuickBooks credentials holds the token fields too.
        if let Ok(stored) = StoredTokens::parse(&secret) {
            self.quickbooks_tokens.prime(credentials, &stored);
        }
        let client = QuickbooksClient::for_credentials(
            &set,
            self.quickbooks_tokens.clone(),
            credentials,
            &self.config.quickbooks_options(),
        )
        .map_err(|e| {
            HandlerError::permanent(
                "configuration",
                format!("{}: {e}", env::QUICKBOOKS_API_BASE),
            )
        })?;
        let client = Arc::new(client);
        Ok(lock(&self.quickbooks)
            .entry(credentials.to_string())
            .or_insert(client)
            .clone())
    }
}

impl LiveClients {
    /// The HubSpot client of credential set `credentials`, rebuilt after
    /// [`LiveClientsConfig::cache_ttl`] like Mailchimp's: a replaced private-app token (or a
    /// set rewritten by `connect`) is picked up without a redeploy. OAuth tokens come from the
    /// HubSpot token manager; the portal's limiter is shared whatever the rebuilds.
    async fn hubspot_client(&self, credentials: &str) -> Result<Arc<HubspotClient>, HandlerError> {
        if let Some((at, client)) = lock(&self.hubspot).get(credentials)
            && at.elapsed() < self.config.cache_ttl
        {
            return Ok(client.clone());
        }
        let secret = self.credential_secret("HubSpot", credentials).await?;
        let set = HubspotCredentials::from_secret(&secret)
            .map_err(|e| unreadable("HubSpot", credentials, &e.to_string()))?;
        let options = self.config.hubspot_options();
        let built = if set.kind.is_static() {
            HubspotClient::with_static_token(&set, credentials, &options)
        } else {
            // The first call need not read the secret again for its token.
            if let Ok(stored) = StoredTokens::parse(&secret) {
                self.hubspot_tokens.prime(credentials, &stored);
            }
            HubspotClient::new(&set, self.hubspot_tokens.clone(), credentials, &options)
        };
        let client = Arc::new(built.map(|c| c.with_clock(self.clock.clone())).map_err(
            |e| match e {
                HubspotError::InvalidArgument(_) => HandlerError::permanent(
                    "configuration",
                    format!("{}: {e}", env::HUBSPOT_API_BASE),
                ),
                other => HandlerError::transient(format!("building the HubSpot client: {other}")),
            },
        )?);
        lock(&self.hubspot).insert(credentials.to_string(), (Instant::now(), client.clone()));
        Ok(client)
    }
}

impl std::fmt::Debug for LiveClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveClients")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::{EmbeddedDb, EmbeddedSecrets};
    use crate::ports::ManualClock;

    const SECRET_VALUE: &str = "do-not-leak-1234567890";

    async fn clients() -> (LiveClients, Arc<EmbeddedSecrets>) {
        let clock = Arc::new(ManualClock::at_unix(1_772_000_000));
        let db = EmbeddedDb::in_memory(clock.clone()).unwrap();
        let secrets = Arc::new(EmbeddedSecrets::open(&db).unwrap());
        let config = LiveClientsConfig {
            freshbooks_api_base: "http://127.0.0.1:9".into(),
            ..LiveClientsConfig::default()
        };
        let live = LiveClients::new(secrets.clone(), Arc::new(db), clock, config).unwrap();
        (live, secrets)
    }

    fn permanent(e: &HandlerError) -> (&str, &str) {
        match e {
            HandlerError::Permanent { class, message, .. } => (class, message),
            other => panic!("expected a permanent error, got {other:?}"),
        }
    }

    /// Every vendor whose spec names a token job gets a refresher, and no other does: the
    /// poller's token jobs find the vendor through the spec and its refresher here.
    #[tokio::test]
    async fn every_vendor_with_a_token_job_has_a_refresher() {
        let (live, _) = clients().await;
        let refreshers = live.token_refreshers();
        let with_jobs: Vec<_> = crate::vendor::Vendor::ALL
            .iter()
            .copied()
            .filter(|v| crate::vendors::spec(*v).token_job.is_some())
            .collect();
        assert_eq!(refreshers.keys().copied().collect::<Vec<_>>(), with_jobs);
    }

    #[tokio::test]
    async fn a_missing_credential_set_names_the_secret_to_set() {
        let (live, _) = clients().await;
        let Err(e) = live.freshbooks("fb-main").await else {
            panic!("no secret, no client");
        };
        let (class, message) = permanent(&e);
        assert_eq!(class, "credentials_missing");
        assert!(
            message.contains("ml-connector secrets put credentials/fb-main"),
            "{message}"
        );
        let Err(e) = live.mailchimp("mc-main").await else {
            panic!("no secret, no client");
        };
        let (class, message) = permanent(&e);
        assert_eq!(class, "credentials_missing");
        assert!(message.contains("credentials/mc-main"), "{message}");
    }

    #[tokio::test]
    async fn an_unusable_credential_set_says_so_without_quoting_it() {
        let (live, secrets) = clients().await;
        // Not JSON at all, and JSON without the token fields.
        secrets
            .put("credentials/fb", &SecretString::from(SECRET_VALUE))
            .await
            .unwrap();
        secrets
            .put(
                "credentials/mc",
                &SecretString::from(format!(r#"{{"token":"{SECRET_VALUE}"}}"#)),
            )
            .await
            .unwrap();
        for e in [
            live.freshbooks("fb").await.err().unwrap(),
            live.mailchimp("mc").await.err().unwrap(),
        ] {
            let (class, message) = permanent(&e);
            assert_eq!(class, "credentials_invalid", "{message}");
            assert!(
                message.contains("ml-connector secrets put credentials/"),
                "{message}"
            );
            assert!(
                !message.contains(SECRET_VALUE),
                "the secret leaked: {message}"
            );
            assert!(!format!("{e:?}").contains(SECRET_VALUE));
        }
    }

    #[tokio::test]
    async fn quickbooks_sets_are_checked_and_clients_kept() {
        let (live, secrets) = clients().await;
        let Err(e) = live.quickbooks("qb").await else {
            panic!("no secret, no client");
        };
        assert_eq!(permanent(&e).0, "credentials_missing");
        // No realm_id: unusable, and the message does not quote the set.
        secrets
            .put(
                "credentials/qb",
                &SecretString::from(format!(
                    r#"{{"access_token":"{SECRET_VALUE}","refresh_token":"r"}}"#
                )),
            )
            .await
            .unwrap();
        let e = live.quickbooks("qb").await.err().unwrap();
        let (class, message) = permanent(&e);
        assert_eq!(class, "credentials_invalid");
        assert!(message.contains("realm_id") && !message.contains(SECRET_VALUE));
        secrets
            .put(
                "credentials/qb",
                &SecretString::from(
                    r#"{"access_token":"a","refresh_token":"r","realm_id":"123","environment":"sandbox"}"#,
                ),
            )
            .await
            .unwrap();
        let a = live.quickbooks_client("qb").await.unwrap();
        let b = live.quickbooks_client("qb").await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(
            a.base_url()
                .starts_with("https://sandbox-quickbooks.api.intuit.com")
        );
        assert!(!Arc::ptr_eq(
            &live.quickbooks_tokens(),
            &live.freshbooks_tokens()
        ));
    }

    #[tokio::test]
    async fn clients_are_built_once_per_credential_set() {
        let (live, secrets) = clients().await;
        secrets
            .put(
                "credentials/fb",
                &SecretString::from(r#"{"access_token":"a","refresh_token":"r"}"#),
            )
            .await
            .unwrap();
        secrets
            .put(
                "credentials/mc",
                &SecretString::from(r#"{"api_key":"0123456789abcdef0123456789abcdef-us21"}"#),
            )
            .await
            .unwrap();
        let a = live.freshbooks("fb").await.unwrap();
        let b = live.freshbooks("fb").await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let a = live.mailchimp("mc").await.unwrap();
        let b = live.mailchimp("mc").await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[tokio::test]
    async fn hubspot_sets_are_checked_and_clients_kept() {
        let (live, secrets) = clients().await;
        let Err(e) = live.hubspot("hs").await else {
            panic!("no secret, no client");
        };
        assert_eq!(permanent(&e).0, "credentials_missing");
        secrets
            .put(
                "credentials/hs",
                &SecretString::from(format!(
                    r#"{{"kind":"private_app","access_token":"{SECRET_VALUE}"}}"#
                )),
            )
            .await
            .unwrap();
        let e = live.hubspot("hs").await.err().unwrap();
        let (class, message) = permanent(&e);
        assert_eq!(class, "credentials_invalid");
        assert!(message.contains("portal_id") && !message.contains(SECRET_VALUE));
        secrets
            .put(
                "credentials/hs",
                &SecretString::from(r#"{"kind":"private_app","access_token":"t","portal_id":42}"#),
            )
            .await
            .unwrap();
        let a = live.hubspot_client("hs").await.unwrap();
        let b = live.hubspot_client("hs").await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.portal_id(), 42);
        assert_eq!(a.base_url(), "https://api.hubapi.com/");
        secrets
            .put(
                "credentials/hs-oauth",
                &SecretString::from(
                    r#"{"kind":"oauth","client_id":"c","client_secret":"s","access_token":"a",
                        "refresh_token":"r","portal_id":43}"#,
                ),
            )
            .await
            .unwrap();
        assert_eq!(
            live.hubspot_client("hs-oauth").await.unwrap().portal_id(),
            43
        );
    }

    #[test]
    fn config_from_the_environment() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let c = LiveClientsConfig::from_lookup(vars(&[])).unwrap();
        assert_eq!(c.freshbooks_api_base, DEFAULT_BASE_URL);
        assert_eq!(c.mailchimp.base_url, None);
        assert_eq!(c.mailchimp.max_concurrency, 1);
        let c = LiveClientsConfig::from_lookup(vars(&[
            (env::FRESHBOOKS_API_BASE, "http://127.0.0.1:8081"),
            (env::MAILCHIMP_API_BASE, " http://127.0.0.1:8082/3.0 "),
            (env::WORKER_MAX_CONCURRENCY, "2"),
        ]))
        .unwrap();
        assert_eq!(c.freshbooks_api_base, "http://127.0.0.1:8081");
        assert_eq!(
            c.mailchimp.base_url.as_deref(),
            Some("http://127.0.0.1:8082/3.0")
        );
        assert_eq!(c.mailchimp.max_concurrency, 2);
        assert_eq!(c.mailchimp.permits(), 5);
        assert!(
            LiveClientsConfig::from_lookup(vars(&[(env::WORKER_MAX_CONCURRENCY, "0")])).is_err()
        );
        assert_eq!(c.quickbooks_api_base, None);
        assert_eq!(
            c.quickbooks_oauth().unwrap().token_url(),
            QUICKBOOKS_TOKEN_URL
        );
        let c = LiveClientsConfig::from_lookup(vars(&[
            (env::QUICKBOOKS_API_BASE, "http://127.0.0.1:8083/"),
            (env::WORKER_MAX_CONCURRENCY, "4"),
        ]))
        .unwrap();
        let qb = c.quickbooks_options();
        assert_eq!(qb.api_base.as_deref(), Some("http://127.0.0.1:8083/"));
        assert_eq!(qb.max_concurrency, 4);
        assert_eq!(
            c.quickbooks_oauth().unwrap().token_url(),
            "http://127.0.0.1:8083/oauth2/v1/tokens/bearer"
        );
        assert_eq!(c.hubspot_oauth().unwrap().token_url(), HUBSPOT_TOKEN_URL);
        let c = LiveClientsConfig::from_lookup(vars(&[
            (env::HUBSPOT_API_BASE, "http://127.0.0.1:8084"),
            (env::WORKER_MAX_CONCURRENCY, "3"),
        ]))
        .unwrap();
        let hs = c.hubspot_options();
        assert_eq!(hs.api_base.as_deref(), Some("http://127.0.0.1:8084"));
        assert_eq!(hs.max_concurrency, 3);
        assert_eq!(
            c.hubspot_oauth().unwrap().token_url(),
            "http://127.0.0.1:8084/oauth/v1/token"
        );
    }
}
