//! The poller: scheduled jobs that find work the webhooks did not bring, and keep tokens fresh.
//!
//! Like the webhook handler it only produces [`SyncEvent`](crate::event::SyncEvent)s (through
//! the shared [`FanOut`]); workers do the writes. Each job runs from an EventBridge schedule
//! ([`lambda::run_lambda`], the rule's input names the job) or from a local loop
//! ([`local::run_schedule`], `ml-connector dev`), and both call [`Poller::run_job`].
//!
//! Jobs:
//! - [`Job::FreshbooksPoll`]: the FreshBooks fallback poll ([`freshbooks_poll`]).
//! - [`Job::TokenRefresh`]: proactive FreshBooks token refresh ([`token_refresh`]).

pub mod config;
pub mod freshbooks_poll;
pub mod lambda;
pub mod local;
pub mod token_refresh;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use config::PollerConfig;
pub use freshbooks_poll::AccountPoll;
pub use token_refresh::{CredentialRefresh, RefreshError, TokenRefresher};

use crate::fanout::FanOut;
use crate::flows::clients::VendorClients;
use crate::ports::{Clock, PortError, Queue, Store};

/// A job the poller runs. Spelled in snake case in the schedule's input: `{"job":"token_refresh"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// List FreshBooks clients, invoices and payments changed since the cursor and enqueue the
    /// ones not seen yet.
    FreshbooksPoll,
    /// Refresh FreshBooks access tokens that expire soon.
    TokenRefresh,
}

impl Job {
    pub const ALL: [Job; 2] = [Job::FreshbooksPoll, Job::TokenRefresh];

    pub fn as_str(self) -> &'static str {
        match self {
            Job::FreshbooksPoll => "freshbooks_poll",
            Job::TokenRefresh => "token_refresh",
        }
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job name that is not one of [`Job::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job `{0}`; the jobs are freshbooks_poll, token_refresh")]
pub struct UnknownJob(pub String);

impl FromStr for Job {
    type Err = UnknownJob;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Job::ALL
            .into_iter()
            .find(|j| j.as_str() == s.trim())
            .ok_or_else(|| UnknownJob(s.to_string()))
    }
}

/// What one run of a job did. Serialized as the Lambda's result, so a manual invoke shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobReport {
    pub job: Job,
    /// Another run held the job's lease, so this one did nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped_busy: bool,
    /// One entry per FreshBooks account polled ([`Job::FreshbooksPoll`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub polled: Vec<AccountPoll>,
    /// One entry per credential set checked ([`Job::TokenRefresh`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refreshed: Vec<CredentialRefresh>,
    /// Accounts or credential sets the job could not handle; the others were still handled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<JobFailure>,
}

impl JobReport {
    fn new(job: Job) -> Self {
        Self {
            job,
            skipped_busy: false,
            polled: Vec::new(),
            refreshed: Vec::new(),
            failures: Vec::new(),
        }
    }
}

/// One account or credential set a job could not handle, and why (no secrets, ids only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobFailure {
    /// `freshbooks/<account>` or `credentials/<name>`.
    pub name: String,
    pub error: String,
}

/// A job that did not fully succeed. The Lambda turns it into an invocation error, so the
/// poller's Errors alarm sees it.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The applied connections (or the job's lease) could not be read: nothing was done.
    #[error("{job}: state store: {source}")]
    Store { job: Job, source: PortError },
    /// Some accounts or credential sets failed; the report says which and what the rest did.
    #[error("{}: {} of {} failed: {}", .0.job, .0.failures.len(), .0.polled.len() + .0.refreshed.len() + .0.failures.len(), summary(&.0.failures))]
    Failed(Box<JobReport>),
}

fn summary(failures: &[JobFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("{}: {}", f.name, f.error))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the poller needs from the outside world.
#[derive(Clone)]
pub struct PollerDeps {
    pub queue: Arc<dyn Queue>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// FreshBooks clients by credential-set name (the same clients the workers use).
    pub clients: Arc<dyn VendorClients>,
    /// Refreshes a credential set's tokens ahead of expiry.
    pub tokens: Arc<dyn TokenRefresher>,
}

/// Runs jobs. Build one per process and share it.
pub struct Poller {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    clients: Arc<dyn VendorClients>,
    tokens: Arc<dyn TokenRefresher>,
    fanout: FanOut,
    config: PollerConfig,
}

impl Poller {
    pub fn new(deps: PollerDeps, config: PollerConfig) -> Self {
        Self {
            fanout: FanOut::new(
                deps.queue,
                deps.store.clone(),
                deps.clock.clone(),
                config.dead_letter_ttl,
            ),
            store: deps.store,
            clock: deps.clock,
            clients: deps.clients,
            tokens: deps.tokens,
            config,
        }
    }

    pub fn config(&self) -> &PollerConfig {
        &self.config
    }

    /// Runs one job to the end. `Ok` when everything it covers succeeded (or another run held
    /// its lease); [`JobError::Failed`] when some part failed, with the report of the rest.
    pub async fn run_job(&self, job: Job) -> Result<JobReport, JobError> {
        let report = match job {
            Job::FreshbooksPoll => self.freshbooks_poll().await?,
            Job::TokenRefresh => self.token_refresh().await?,
        };
        if report.failures.is_empty() {
            Ok(report)
        } else {
            Err(JobError::Failed(Box::new(report)))
        }
    }
}

impl fmt::Debug for Poller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poller")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
