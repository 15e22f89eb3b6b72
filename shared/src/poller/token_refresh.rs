//! Proactive token refresh, so workers and polls rarely meet an expired token and never
//! refresh on the hot path:
//! - [`Job::TokenRefresh`] renews FreshBooks access tokens well before their 12-hour expiry
//!   (margin [`PollerConfig::refresh_margin`](super::PollerConfig::refresh_margin), 2 hours).
//! - [`Job::QuickbooksTokenRefresh`] renews QuickBooks access tokens, which live 1 hour, on
//!   every run of its 50-minute schedule: its margin
//!   ([`PollerConfig::quickbooks_refresh_margin`](super::PollerConfig::quickbooks_refresh_margin),
//!   55 minutes) exceeds what is left of a token refreshed by the previous run, so each run
//!   refreshes unless a worker did within the last few minutes. Refreshing also keeps the
//!   rolling 100-day refresh token alive and stores whatever refresh token Intuit returns.
//!
//! Every credential set of the vendor that an enabled connection names (as source or as target)
//! is checked; the refresher is the vendor's [`TokenManager`], single-flight across instances
//! (docs/architecture.md, "Tokens"), so a worker refreshing at the same moment is safe. One set failing
//! does not stop the others.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{Job, JobError, JobFailure, JobReport, Poller};
use crate::connections::ConnectionSet;
use crate::tokens::{TokenError, TokenManager};
use crate::vendor::Vendor;
use crate::vendors::spec::token_job_vendor;

/// Refreshes a credential set's tokens when they are about to expire. One per vendor (see
/// [`PollerDeps::refreshers`](super::PollerDeps::refreshers)).
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
    /// The credential set's name.
    pub credentials: String,
    /// `true`: refreshed now; `false`: still valid beyond the margin.
    pub refreshed: bool,
}

impl Poller {
    /// Renews the tokens of the vendor whose spec names `job` as its token job
    /// ([`VendorSpec::token_job`](crate::vendors::spec::VendorSpec::token_job)), with the job's
    /// margin.
    pub(super) async fn token_job(
        &self,
        job: Job,
        margin: Duration,
    ) -> Result<JobReport, JobError> {
        let Some(vendor) = token_job_vendor(job.into()) else {
            let mut report = JobReport::new(job);
            report.failures.push(JobFailure {
                name: format!("job/{job}"),
                error: "no vendor names this job as its token refresh".to_string(),
            });
            return Ok(report);
        };
        self.refresh_tokens(job, vendor, margin).await
    }

    /// Refreshes every credential set of `vendor` whose access token expires within `margin`.
    async fn refresh_tokens(
        &self,
        job: Job,
        vendor: Vendor,
        margin: Duration,
    ) -> Result<JobReport, JobError> {
        let mut report = JobReport::new(job);
        let connections = self
            .store
            .get_connections()
            .await
            .map_err(|source| JobError::Store { job, source })?
            .unwrap_or_default();
        let refresher: Option<&Arc<dyn TokenRefresher>> = self.refreshers.get(&vendor);
        for name in credential_sets(&connections, vendor) {
            let result = match refresher {
                Some(r) => r.refresh_if_expiring(&name, margin).await,
                None => Err(RefreshError(format!(
                    "this poller has no {vendor} token refresher (PollerDeps::refreshers)"
                ))),
            };
            match result {
                Ok(refreshed) => {
                    tracing::info!(job = %job, %vendor, credentials = %name, refreshed, "token checked");
                    report.refreshed.push(CredentialRefresh {
                        credentials: name,
                        refreshed,
                    });
                }
                Err(e) => {
                    tracing::error!(job = %job, %vendor, credentials = %name, error = %e, "token refresh failed");
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

/// The credential sets of `vendor` that enabled connections name, on either side.
pub(crate) fn credential_sets(connections: &ConnectionSet, vendor: Vendor) -> BTreeSet<String> {
    connections
        .connections
        .values()
        .filter(|c| c.enabled)
        .flat_map(|c| [&c.source, &c.target])
        .filter(|e| e.vendor == vendor)
        .map(|e| e.credentials.clone())
        .collect()
}

/// The real refresher: the same [`TokenManager`] the vendor's clients use, so the job and the
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
