//! [`Job::TokenRefresh`]: renews FreshBooks access tokens well before their 12-hour expiry, so
//! workers and the poll rarely meet an expired token and never refresh on the hot path.
//!
//! Every FreshBooks credential set an enabled connection names (as source or as target) is
//! checked; the refresher itself is single-flight across instances (DESIGN.md, "Tokens"), so a
//! worker refreshing at the same moment is safe. One set failing does not stop the others.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{Job, JobError, JobFailure, JobReport, Poller};
use crate::connections::ConnectionSet;
use crate::tokens::{TokenError, TokenManager};
use crate::vendor::Vendor;

/// Refreshes a credential set's tokens when they are about to expire.
#[async_trait]
pub trait TokenRefresher: Send + Sync {
    /// Refreshes the access token of credential set `credentials` if it expires within
    /// `margin` (storing the new pair before use). `Ok(true)` when it refreshed, `Ok(false)`
    /// when the token was fresh enough.
    async fn refresh_if_expiring(
        &self,
        credentials: &str,
        margin: Duration,
    ) -> Result<bool, RefreshError>;
}

/// A refresh that failed: the message says what to fix and never carries a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RefreshError(pub String);

/// What the job did for one credential set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialRefresh {
    pub credentials: String,
    /// `true`: refreshed now; `false`: still valid beyond the margin.
    pub refreshed: bool,
}

impl Poller {
    pub(super) async fn token_refresh(&self) -> Result<JobReport, JobError> {
        let job = Job::TokenRefresh;
        let mut report = JobReport::new(job);
        let connections = self
            .store
            .get_connections()
            .await
            .map_err(|source| JobError::Store { job, source })?
            .unwrap_or_default();
        for name in freshbooks_credentials(&connections) {
            match self
                .tokens
                .refresh_if_expiring(&name, self.config.refresh_margin)
                .await
            {
                Ok(refreshed) => {
                    tracing::info!(job = %job, credentials = %name, refreshed, "freshbooks token checked");
                    report.refreshed.push(CredentialRefresh {
                        credentials: name,
                        refreshed,
                    });
                }
                Err(e) => {
                    tracing::error!(job = %job, credentials = %name, error = %e, "freshbooks token refresh failed");
                    report.failures.push(JobFailure {
                        name: format!("credentials/{name}"),
                        error: e.to_string(),
                    });
                }
            }
        }
        Ok(report)
    }
}

/// The FreshBooks credential sets enabled connections name, on either side.
pub fn freshbooks_credentials(connections: &ConnectionSet) -> BTreeSet<String> {
    connections
        .connections
        .values()
        .filter(|c| c.enabled)
        .flat_map(|c| [&c.source, &c.target])
        .filter(|e| e.vendor == Vendor::Freshbooks)
        .map(|e| e.credentials.clone())
        .collect()
}

/// The real refresher: the same [`TokenManager`] the FreshBooks clients use, so the job and the
/// workers share one single-flight protocol and one per-instance token cache.
#[async_trait]
impl TokenRefresher for TokenManager {
    async fn refresh_if_expiring(
        &self,
        credentials: &str,
        margin: Duration,
    ) -> Result<bool, RefreshError> {
        let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::hours(2));
        TokenManager::refresh_if_expiring(self, credentials, margin)
            .await
            .map_err(RefreshError::from)
    }
}

/// The token manager's error, which names the credential set and the fix, never a token.
impl From<TokenError> for RefreshError {
    fn from(e: TokenError) -> Self {
        RefreshError(e.to_string())
    }
}
