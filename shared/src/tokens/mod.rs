//! OAuth access tokens for the vendor APIs, refreshed single-flight across every Lambda instance
//! (docs/architecture.md, "Tokens").
//!
//! A credential set is one secret, `credentials/<name>`, holding JSON with at least
//! `access_token` and `refresh_token` (and usually `expires_at`, `client_id`, `client_secret`,
//! `redirect_uri`; vendor-specific fields are kept untouched). Refresh tokens are single-use
//! (FreshBooks) or superseded on use (QuickBooks), so two instances refreshing at once would
//! strand one of them and force the user to re-authorise. [`TokenManager`] therefore:
//! 1. caches the access token per instance and uses it until it expires within a margin;
//! 2. refreshes one credential set at a time per instance (an async mutex), and across
//!    instances under the store lease `token-refresh/<name>`;
//! 3. re-reads the secret (no cache) once it holds the lease: if the access token already
//!    differs from the stale one, another instance refreshed and that token is used;
//! 4. otherwise calls the vendor's [`Refresher`], **stores the new pair before using it**, and
//!    releases the lease. Instances that find the lease taken poll the secret until the token
//!    changes (bounded by [`TokenConfig::wait`]).
//! 5. when the vendor refuses the refresh token (`invalid_grant`), writes
//!    `needs_reconnect: {"since", "reason"}` into the stored set (tokens kept) and from then on
//!    answers [`TokenError::Broken`] for that set without calling the vendor, until the set is
//!    rewritten (`ml-connector connect`).
//!
//! The vendor-specific part is only the token endpoint call ([`Refresher`]); FreshBooks' is
//! [`crate::vendors::freshbooks::oauth::FreshbooksOauth`].

mod manager;
mod stored;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::ports::PortError;

pub use manager::{TokenConfig, TokenManager};
pub use stored::{NeedsReconnect, StoredTokens};

/// The name of the store lease that serialises refreshes of one credential set.
fn lease_name(credentials: &str) -> String {
    format!("token-refresh/{credentials}")
}

/// A fresh token pair from a vendor's token endpoint.
#[derive(Clone)]
pub struct TokenSet {
    /// The bearer token for API calls.
    pub access_token: SecretString,
    /// The token for the next refresh: the vendors rotate it, so it replaces the stored one.
    pub refresh_token: SecretString,
    /// When the access token expires; `None` if the vendor did not say.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the refresh token itself expires unless used (QuickBooks'
    /// `x_refresh_token_expires_in`); `None` if the vendor did not say (FreshBooks never does).
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"[REDACTED]")
            .field("refresh_token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish()
    }
}

/// Why a vendor's token endpoint did not give a new pair.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The vendor refused the refresh token (revoked, already used, app disconnected): only a
    /// person re-authorising fixes it.
    #[error("the refresh token was refused: {0}")]
    Refused(String),
    /// Worth trying again later: transport failure, 429, 5xx.
    #[error("{0}")]
    Transient(String),
    /// The credential set or the client is set up wrongly (no client id, bad URL, odd answer).
    #[error("{0}")]
    Misconfigured(String),
}

/// One vendor's token endpoint. QuickBooks plugs in its own implementation; the manager's
/// single-flight logic is shared.
#[async_trait]
pub trait Refresher: Send + Sync {
    /// The vendor's display name, for messages (`FreshBooks`).
    fn vendor(&self) -> &'static str;

    /// Exchanges the refresh token in `credentials` (the whole stored JSON, so the refresher
    /// can read `client_id` and friends) for a new pair. `now` dates the expiry when the
    /// vendor gives only a lifetime.
    async fn refresh(
        &self,
        credentials: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<TokenSet, RefreshError>;
}

/// Where an API client gets its bearer token. [`TokenManager`] is the real one; tests may pass
/// a fixed token.
#[async_trait]
pub trait AccessTokens: Send + Sync {
    /// A usable access token for credential set `name` (refreshed first if it is expiring).
    async fn access_token(&self, name: &str) -> Result<SecretString, TokenError>;

    /// The vendor answered 401 to `rejected`: a token that differs from it (another instance's
    /// refresh, or a refresh made now).
    async fn refresh_after_unauthorized(
        &self,
        name: &str,
        rejected: &SecretString,
    ) -> Result<SecretString, TokenError>;
}

/// One vendor call with a token from `tokens` for credential set `name`. When `send` fails
/// with an error `is_unauthorized` calls a 401, `on_refused` sees it (the vendor's log line),
/// the token is refreshed once ([`AccessTokens::refresh_after_unauthorized`]) and the call
/// retried once. Nothing else is retried.
pub(crate) async fn call_with_token<T, E, Fut>(
    tokens: &dyn AccessTokens,
    name: &str,
    is_unauthorized: impl Fn(&E) -> bool + Send,
    on_refused: impl FnOnce(&E) + Send,
    mut send: impl FnMut(SecretString) -> Fut + Send,
) -> Result<T, E>
where
    E: From<TokenError>,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let token = tokens.access_token(name).await?;
    match send(token.clone()).await {
        Err(e) if is_unauthorized(&e) => {
            on_refused(&e);
            let token = tokens.refresh_after_unauthorized(name, &token).await?;
            send(token).await
        }
        other => other,
    }
}

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The secret `credentials/<name>` does not exist.
    #[error("credential set `{name}` not found (secret `{secret}`); run `ml-connector connect`")]
    NotFound {
        /// The credential set's name, as connections name it.
        name: String,
        /// The secret looked up.
        secret: String,
    },
    /// The secret is not a credential set. `reason` never quotes the secret.
    #[error("credential set `{name}` is unreadable: {reason}")]
    Invalid {
        /// The credential set's name.
        name: String,
        /// What is missing or malformed.
        reason: String,
    },
    /// The vendor refused the refresh token, or a rotated pair could not be saved: the
    /// connection stays broken until someone re-authorises.
    #[error(
        "connection broken: {message}; re-authorise {vendor} for credential set `{name}` (`ml-connector connect`)"
    )]
    Broken {
        /// The credential set's name.
        name: String,
        /// The vendor's display name (`FreshBooks`), for the message.
        vendor: &'static str,
        /// What happened: the refusal, or why the new pair could not be stored.
        message: String,
    },
    /// The credential set cannot be refreshed as configured (e.g. no client secret).
    #[error("credential set `{name}` cannot be refreshed: {message}")]
    Misconfigured {
        /// The credential set's name.
        name: String,
        /// What is missing from the set or the app settings.
        message: String,
    },
    /// The token endpoint failed in a way worth retrying.
    #[error("refreshing credential set `{name}` failed: {message}")]
    Refresh {
        /// The credential set's name.
        name: String,
        /// The token endpoint's error.
        message: String,
    },
    /// Another instance held the refresh lease for longer than we wait.
    #[error("another instance is refreshing credential set `{name}`; gave up waiting")]
    Busy {
        /// The credential set's name.
        name: String,
    },
    /// The secret store or the lease store failed.
    #[error("token store: {0}")]
    Store(#[from] PortError),
}

impl TokenError {
    /// Worth retrying later (the worker harness backs off).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TokenError::Refresh { .. } | TokenError::Busy { .. } | TokenError::Store(_)
        )
    }

    /// A stable class for dead letters and dashboards.
    pub(crate) fn class(&self) -> &'static str {
        match self {
            TokenError::NotFound { .. } => "credentials_missing",
            TokenError::Invalid { .. } => "credentials_invalid",
            TokenError::Broken { .. } => "connection_broken",
            TokenError::Misconfigured { .. } => "configuration",
            TokenError::Refresh { .. } => "token_refresh",
            TokenError::Busy { .. } => "token_refresh_busy",
            TokenError::Store(_) => "store",
        }
    }
}

/// A fixed token (tests, one-off scripts). A 401 is final: there is nothing to refresh to.
pub struct StaticToken(pub SecretString);

#[async_trait]
impl AccessTokens for StaticToken {
    async fn access_token(&self, _name: &str) -> Result<SecretString, TokenError> {
        Ok(self.0.clone())
    }

    async fn refresh_after_unauthorized(
        &self,
        name: &str,
        _rejected: &SecretString,
    ) -> Result<SecretString, TokenError> {
        Err(TokenError::Misconfigured {
            name: name.to_string(),
            message: "a fixed token cannot be refreshed".into(),
        })
    }
}

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticToken([REDACTED])")
    }
}
