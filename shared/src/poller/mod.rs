//! The poller: scheduled jobs that find work the webhooks did not bring, and keep tokens fresh.
//!
//! Like the webhook handler it only produces [`SyncEvent`](crate::event::SyncEvent)s (through
//! the shared [`FanOut`]); workers do the writes. Each job runs from an EventBridge schedule
//! (`lambda::run_lambda`, the rule's input names the job) or from a local loop
//! ([`local::run_schedule`], `ml-connector dev`), and both call [`Poller::run_job`].
//!
//! Jobs:
//! - [`Job::FreshbooksPoll`]: the FreshBooks fallback poll ([`freshbooks_poll`]).
//! - `Job::TokenRefresh`: proactive FreshBooks token refresh (`token_refresh`).
//! - `Job::QuickbooksCdc`: the QuickBooks Change Data Capture sweep (`quickbooks_cdc`).
//! - [`Job::QuickbooksTokenRefresh`]: QuickBooks access tokens renewed on every run
//!   (`token_refresh`).

pub mod config;
pub mod freshbooks_poll;
pub mod lambda;
#[cfg(feature = "local")]
pub mod local;
pub(crate) mod quickbooks_cdc;
pub(crate) mod token_refresh;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strum::VariantArray;

pub use crate::vendors::spec::cursor_name;
pub use config::PollerConfig;
pub use freshbooks_poll::AccountPoll;
pub use quickbooks_cdc::{QueryFallback, RealmSweep};
pub use token_refresh::{CredentialRefresh, RefreshError, TokenRefresher};

use crate::connections::ConnectionSet;
use crate::event::{Origin, SourceEvent};
use crate::fanout::{FanOut, FanOutError, FanOutReport};
use crate::flows::clients::VendorClients;
use crate::ports::{Clock, IdMapping, PortError, Queue, Store};
use crate::vendor::Vendor;
use crate::worker::HandlerError;

/// A job the poller runs. Spelled in snake case in the schedule's input: `{"job":"token_refresh"}`.
/// [`VariantArray::VARIANTS`] lists every job, in the order [`UnknownJob`] names them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(
    serialize_all = "snake_case",
    parse_err_ty = UnknownJob,
    parse_err_fn = UnknownJob::named
)]
pub enum Job {
    /// List FreshBooks clients, invoices and payments changed since the cursor and enqueue the
    /// ones not seen yet.
    FreshbooksPoll,
    /// Refresh FreshBooks access tokens that expire soon.
    TokenRefresh,
    /// Change Data Capture sweep of QuickBooks customers changed since the cursor; enqueue the
    /// ones not seen yet.
    QuickbooksCdc,
    /// Refresh QuickBooks access tokens (1 hour) on every run.
    QuickbooksTokenRefresh,
}

impl Job {
    /// Every job's name, as a schedule's input spells it, comma-separated.
    pub(crate) fn names() -> String {
        Job::VARIANTS
            .iter()
            .map(<&str>::from)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A job name that is not one of [`Job`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job `{0}`; the jobs are {jobs}", jobs = Job::names())]
pub struct UnknownJob(pub String);

impl UnknownJob {
    fn named(name: &str) -> Self {
        Self(name.to_string())
    }
}

/// What one run of a job did. Serialized as the Lambda's result, so a manual invoke shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobReport {
    /// The job this run was.
    pub job: Job,
    /// Another run held the job's lease, so this one did nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped_busy: bool,
    /// One entry per FreshBooks account polled ([`Job::FreshbooksPoll`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub polled: Vec<AccountPoll>,
    /// One entry per credential set checked ([`Job::TokenRefresh`],
    /// [`Job::QuickbooksTokenRefresh`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refreshed: Vec<CredentialRefresh>,
    /// One entry per QuickBooks realm swept ([`Job::QuickbooksCdc`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub swept: Vec<RealmSweep>,
    /// Realms whose window was read with the query endpoint instead of CDC (a gap beyond CDC's
    /// 30 days, or a CDC answer at its 1000-object cap): the entries of `swept` with a
    /// `fallback` (which says why), counted once every realm is swept.
    #[serde(skip_serializing_if = "is_zero")]
    pub query_fallbacks: usize,
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
            swept: Vec::new(),
            query_fallbacks: 0,
            failures: Vec::new(),
        }
    }

    /// Accounts, realms or credential sets handled, failed ones included.
    fn covered(&self) -> usize {
        self.polled.len() + self.refreshed.len() + self.swept.len() + self.failures.len()
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One account or credential set a job could not handle, and why (no secrets, ids only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobFailure {
    /// `freshbooks/<account>`, `quickbooks/<realm>` or `credentials/<name>`.
    pub name: String,
    /// What went wrong, in words (no secrets).
    pub error: String,
}

/// A job that did not fully succeed. The Lambda turns it into an invocation error, so the
/// poller's Errors alarm sees it.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The applied connections (or the job's lease) could not be read: nothing was done.
    #[error("{job}: state store: {source}")]
    Store {
        /// The job that stopped.
        job: Job,
        /// What the store answered.
        source: PortError,
    },
    /// Some accounts or credential sets failed; the report says which and what the rest did.
    #[error("{}: {} of {} failed: {}", .0.job, .0.failures.len(), .0.covered(), summary(&.0.failures))]
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
    /// The target queues the found events go to.
    pub queue: Arc<dyn Queue>,
    /// Connections, cursors, seen markers, leases and dead letters.
    pub store: Arc<dyn Store>,
    /// The time cursors and leases are read against.
    pub clock: Arc<dyn Clock>,
    /// Vendor clients by credential-set name (the same clients the workers use).
    pub clients: Arc<dyn VendorClients>,
    /// One refresher per vendor whose tokens the token jobs renew ahead of expiry
    /// (`LiveClients::token_refreshers`); a vendor without one has its credential sets
    /// reported as failed, saying so.
    pub refreshers: Refreshers,
}

/// Token refreshers by vendor: each vendor has its own token endpoint, so its own
/// [`TokenManager`](crate::tokens::TokenManager).
pub(crate) type Refreshers = BTreeMap<Vendor, Arc<dyn TokenRefresher>>;

/// Runs jobs. Build one per process and share it.
pub struct Poller {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    clients: Arc<dyn VendorClients>,
    refreshers: Refreshers,
    fanout: FanOut,
    config: PollerConfig,
}

impl Poller {
    /// A poller over `deps`, fanning out through one shared [`FanOut`].
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
            refreshers: deps.refreshers,
            config,
        }
    }

    /// The settings it runs with.
    pub fn config(&self) -> &PollerConfig {
        &self.config
    }

    /// Runs one job to the end. `Ok` when everything it covers succeeded (or another run held
    /// its lease); [`JobError::Failed`] when some part failed, with the report of the rest.
    pub async fn run_job(&self, job: Job) -> Result<JobReport, JobError> {
        let report = match job {
            Job::FreshbooksPoll => self.freshbooks_poll().await?,
            Job::TokenRefresh => self.token_job(job, self.config.refresh_margin).await?,
            Job::QuickbooksCdc => self.quickbooks_cdc().await?,
            Job::QuickbooksTokenRefresh => {
                self.token_job(job, self.config.quickbooks_refresh_margin)
                    .await?
            }
        };
        if report.failures.is_empty() {
            Ok(report)
        } else {
            Err(JobError::Failed(Box::new(report)))
        }
    }

    /// Runs `body` under the job's lease, so two runs of one job never overlap (schedules
    /// deliver at least once, and a slow run can meet the next one). When another run holds the
    /// lease the report says `skipped_busy` and `body` never starts.
    async fn leased(
        &self,
        job: Job,
        body: impl Future<Output = Result<JobReport, PortError>>,
    ) -> Result<JobReport, JobError> {
        let lease = format!("poller:{job}");
        let holder = uuid::Uuid::new_v4().to_string();
        let store_err = |source| JobError::Store { job, source };
        let taken = self
            .store
            .acquire_lease(&lease, &holder, self.clock.now(), self.config.job_lease)
            .await
            .map_err(store_err)?;
        if !taken {
            tracing::warn!(job = %job, "another run holds the job's lease; skipping this run");
            let mut report = JobReport::new(job);
            report.skipped_busy = true;
            return Ok(report);
        }
        let result = body.await;
        if let Err(e) = self.store.release_lease(&lease, &holder).await {
            // It expires on its own after `job_lease`.
            tracing::warn!(job = %job, error = %e, "could not release the job's lease");
        }
        result.map_err(store_err)
    }
}

/// A record a poll found, as the source event it becomes and its seen marker.
struct Found {
    /// The record key (`vendor:account:entity:id`), the seen marker's key.
    key: String,
    /// What the seen marker holds for this version of the record.
    fingerprint: String,
    event: SourceEvent,
}

/// What [`Poller::enqueue_unseen`] did.
struct Enqueued {
    /// Records not seen before with this fingerprint: the ones enqueued.
    new: usize,
    sent: FanOutReport,
}

/// Why [`Poller::enqueue_unseen`] stopped; the seen markers written so far are only those of
/// records already in a queue.
#[derive(Debug, thiserror::Error)]
enum EnqueueError {
    #[error("state store: {0}")]
    Store(#[from] PortError),
    #[error("enqueue: {0}")]
    FanOut(#[from] FanOutError),
}

impl Poller {
    /// Drops the records whose seen marker under `markers` (the poll's pseudo connection)
    /// holds the same fingerprint, fans the rest out to every connection of their source as
    /// `origin = poll`, and only then writes their seen markers (stamped `at`).
    ///
    /// A record listed more than once (it changed while the pages were read, or twice in the
    /// window) is enqueued once: the last listing in `found` wins. Records go out in key order.
    async fn enqueue_unseen(
        &self,
        connections: &ConnectionSet,
        markers: &str,
        found: Vec<Found>,
        at: DateTime<Utc>,
    ) -> Result<Enqueued, EnqueueError> {
        let found: BTreeMap<String, Found> =
            found.into_iter().map(|f| (f.key.clone(), f)).collect();
        let mut fresh = Vec::new();
        for f in found.into_values() {
            match self.store.get_mapping(markers, &f.key).await? {
                Some(seen) if seen.fingerprint == f.fingerprint => {}
                _ => fresh.push(f),
            }
        }
        let events: Vec<SourceEvent> = fresh.iter().map(|f| f.event.clone()).collect();
        let sent = if events.is_empty() {
            FanOutReport::default()
        } else {
            self.fanout
                .enqueue(connections, &events, Origin::Poll)
                .await?
        };
        for f in &fresh {
            let marker = IdMapping {
                target_id: String::new(),
                fingerprint: f.fingerprint.clone(),
                updated_at: at,
            };
            self.store.put_mapping(markers, &f.key, &marker).await?;
        }
        Ok(Enqueued {
            new: fresh.len(),
            sent,
        })
    }
}

/// Source accounts (FreshBooks account ids, QuickBooks realm ids) of `vendor` that enabled
/// connections take events from, each with the distinct credential sets those connections name
/// (in connection-name order). A source without an account is logged and left out.
pub(crate) fn source_accounts(
    connections: &ConnectionSet,
    vendor: Vendor,
) -> BTreeMap<String, Vec<String>> {
    let mut accounts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (name, connection) in connections.for_vendor(vendor) {
        let Some(account) = connection
            .source
            .account
            .as_deref()
            .filter(|a| !a.is_empty())
        else {
            tracing::warn!(connection = name, %vendor, "source without an account; not polled");
            continue;
        };
        let credentials = &connection.source.credentials;
        let entry = accounts.entry(account.to_string()).or_default();
        if seen.insert((account, credentials.as_str())) {
            entry.push(credentials.clone());
        }
    }
    accounts
}

/// The client of the first of `credentials` that yields one (an account read by several
/// connections may name several sets); the first error when none does.
///
/// `client` takes names borrowed for `'a` (not a closure over any lifetime, nor an async
/// closure): the futures of the jobs must stay `Send` for `tokio::spawn`.
async fn first_client<'a, T, Fut>(
    vendor: Vendor,
    credentials: &'a [String],
    client: impl Fn(&'a str) -> Fut,
) -> Result<T, HandlerError>
where
    Fut: Future<Output = Result<T, HandlerError>>,
{
    let mut first_error = None;
    for name in credentials {
        match client(name).await {
            Ok(api) => return Ok(api),
            Err(e) => {
                tracing::warn!(credentials = %name, %vendor, error = %e, "credential set unusable");
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| {
        HandlerError::permanent("configuration", "no credential set names this account")
    }))
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
