//! [`Job::QuickbooksCdc`]: the QuickBooks Change Data Capture sweep, for customer changes whose
//! webhook never came (docs/vendors/quickbooks.md §1.1: Intuit recommends a CDC catch-up from the last
//! processed time plus a daily sweep; production webhooks are aggregated and retried for hours).
//!
//! Per QuickBooks realm that an enabled connection takes events from (each realm once, whatever
//! the number of its connections):
//! 1. `since` = the cursor: the server's `time` from the last successful sweep's answer, never
//!    our clock (ours and Intuit's differ, and a change written while our request was in flight
//!    would fall between the two). First contact: now − [`FIRST_LOOKBACK`] (one day), pinned as
//!    the cursor before the call, so a first sweep that fails is retried from that same point.
//!    The window starts [`CURSOR_OVERLAP`] before `since` (whole-second `LastUpdatedTime`,
//!    `changedSince` inclusiveness UNCONFIRMED); the seen markers absorb the overlap.
//! 2. `GET …/cdc?entities=Customer&changedSince=<window start>`
//!    ([`QuickbooksApi::changed_customers`]).
//!    Two cases fall back to the query endpoint for the same window
//!    ([`QuickbooksApi::customers_updated_since`], every page), each with a warning and counted
//!    in the report ([`QueryFallback`]):
//!    - **gap**: `since` is older than CDC's 30-day look-back minus [`CDC_SAFETY_MARGIN`]
//!      (the poller was off, or a realm was broken for weeks);
//!    - **truncated**: the CDC answer holds its maximum of 1000 objects, so it may be missing
//!      some. The schedule (`QuickbooksCdcSchedule`, daily by default) must be frequent enough
//!      that a window normally holds fewer than 1000 changed customers; the fallback keeps a
//!      busy window correct, at the cost of more requests.
//! 3. Drop customers already seen in the same version, `SyncToken@LastUpdatedTime` (the
//!    overlap re-reads them): see "Seen markers" below.
//! 4. Fan the rest out to every connection of the realm exactly as the webhook does, as
//!    `origin = poll`, entity `customer`, operation `update` (`delete` for a deleted stub),
//!    event id `derived_event_id(realm, customer, id, operation, version)`: two sweeps of the
//!    same change give the same id, so the worker's idempotency drops the repeat.
//! 5. Only then write the seen markers and move the cursor to the answer's server time. A
//!    failure anywhere before leaves the cursor, so the next run reads the same window again.
//!
//! Realms are independent: one failing (needs reconnect, QuickBooks down) is reported and the
//! others are still swept; the job then fails as a whole so the poller's alarm fires.
//!
//! **Seen markers** live in the id map under the pseudo connection `poll:quickbooks:<realm>`
//! (no real connection name contains `:`), keyed by the record key
//! (`quickbooks:<realm>:customer:<id>`), with the customer's version
//! (`SyncToken@MetaData.LastUpdatedTime`) as fingerprint (`deleted` for a deleted stub) and an
//! empty target id. **The cursor** is
//! `poll:quickbooks:<realm>` in the cursors table, holding an RFC 3339 time.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::{
    EnqueueError, Found, Job, JobFailure, JobReport, Poller, cursor_name, first_client,
    source_accounts,
};
use crate::connections::ConnectionSet;
use crate::event::{SourceEvent, SourceRef, derived_event_id, record_key};
use crate::ports::PortError;
use crate::vendor::Vendor;
use crate::vendors::quickbooks::models::{ChangedCustomers, Customer};
use crate::vendors::quickbooks::{QuickbooksApi, QuickbooksError};
use crate::worker::HandlerError;

/// The entity name the QuickBooks webhook gives customers; events from the sweep use the same.
pub(crate) const CUSTOMER: &str = "customer";

/// How far back the first sweep of a realm reads.
pub(crate) const FIRST_LOOKBACK: chrono::Duration = chrono::Duration::days(1);

/// How far back CDC can look (docs/vendors/quickbooks.md §3.5).
pub(crate) const CDC_LOOKBACK: chrono::Duration = chrono::Duration::days(30);

/// Taken off [`CDC_LOOKBACK`] before trusting CDC with a window: it covers clock skew between
/// us and Intuit and the time a request takes, and whether Intuit counts the 30 days inclusively
/// or in its own time zone is UNCONFIRMED. A window this close to the limit is read with the
/// query endpoint instead, which has no look-back limit.
pub(crate) const CDC_SAFETY_MARGIN: chrono::Duration = chrono::Duration::days(1);

/// How far before the cursor each window starts. `LastUpdatedTime` has whole seconds and the
/// server's `time` finer ones, and whether `changedSince` is inclusive is UNCONFIRMED: a change
/// in the cursor's own second could fall between two windows. The seen markers make the
/// re-read customers cost nothing.
pub(crate) const CURSOR_OVERLAP: chrono::Duration = chrono::Duration::minutes(5);

/// The fingerprint a seen marker stores for a changed customer.
pub(crate) fn seen_fingerprint(customer: &Customer) -> String {
    if customer.is_deleted() {
        "deleted".to_string()
    } else {
        // `LastUpdatedTime` has whole seconds, so two changes in one second share it; the
        // SyncToken moves on every change.
        format!(
            "{}@{}",
            customer.sync_token,
            customer.last_updated().unwrap_or("")
        )
    }
}

/// Why a window was read with the query endpoint instead of CDC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryFallback {
    /// The cursor is older than CDC's 30-day look-back (minus `CDC_SAFETY_MARGIN`).
    GapBeyondCdcLookback,
    /// The CDC answer held its maximum of 1000 objects and may be incomplete.
    CdcTruncated,
}

/// What the sweep did for one realm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RealmSweep {
    /// The QuickBooks realm (company) id.
    pub realm: String,
    /// The `changedSince` used (the previous cursor).
    pub since: DateTime<Utc>,
    /// Set when the window was read with the query endpoint, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<QueryFallback>,
    /// Customers QuickBooks returned (deleted stubs included).
    pub listed: usize,
    /// Customers not seen before with this `LastUpdatedTime`: the ones enqueued.
    pub new: usize,
    /// Queue messages sent (one per new customer and connection).
    pub queued: usize,
    /// Messages kept as `no_queue` dead letters.
    pub dead_lettered: usize,
    /// The cursor written: the server time of the answer.
    pub cursor: DateTime<Utc>,
}

/// Why one realm could not be swept.
#[derive(Debug, thiserror::Error)]
enum SweepError {
    #[error("credentials: {0}")]
    Credentials(HandlerError),
    #[error("{call}: {source}")]
    Quickbooks {
        call: &'static str,
        source: QuickbooksError,
    },
    #[error(
        "cursor `{name}` holds `{value}`, not an RFC 3339 time; fix or delete it in the state table"
    )]
    Cursor { name: String, value: String },
    #[error("state store: {0}")]
    Store(#[from] PortError),
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
}

impl SweepError {
    fn intuit_tid(&self) -> Option<&str> {
        match self {
            SweepError::Quickbooks { source, .. } => source.intuit_tid(),
            _ => None,
        }
    }
}

impl Poller {
    pub(super) async fn quickbooks_cdc(&self) -> Result<JobReport, super::JobError> {
        self.leased(Job::QuickbooksCdc, self.sweep_realms()).await
    }

    async fn sweep_realms(&self) -> Result<JobReport, PortError> {
        let job = Job::QuickbooksCdc;
        let mut report = JobReport::new(job);
        let connections = self.store.get_connections().await?.unwrap_or_default();
        for (realm, credentials) in source_accounts(&connections, Vendor::Quickbooks) {
            match self.sweep_realm(&connections, &realm, &credentials).await {
                Ok(sweep) => {
                    tracing::info!(
                        job = %job, realm = %sweep.realm, since = %sweep.since,
                        fallback = ?sweep.fallback, listed = sweep.listed, new = sweep.new,
                        queued = sweep.queued, dead_lettered = sweep.dead_lettered,
                        cursor = %sweep.cursor, "quickbooks realm swept"
                    );
                    report.swept.push(sweep);
                }
                Err(e) => {
                    tracing::error!(
                        job = %job, realm = %realm, error = %e, intuit_tid = e.intuit_tid(),
                        "quickbooks realm sweep failed"
                    );
                    report.failures.push(JobFailure {
                        name: format!("quickbooks/{realm}"),
                        error: e.to_string(),
                    });
                }
            }
        }
        report.query_fallbacks = report.swept.iter().filter(|s| s.fallback.is_some()).count();
        Ok(report)
    }

    async fn sweep_realm(
        &self,
        connections: &ConnectionSet,
        realm: &str,
        credentials: &[String],
    ) -> Result<RealmSweep, SweepError> {
        let started = self.clock.now();
        let source = SourceRef {
            vendor: Vendor::Quickbooks,
            account: realm.into(),
        };
        let name = cursor_name(Vendor::Quickbooks, realm);
        let since = match self.store.get_cursor(&name).await? {
            Some(value) => DateTime::parse_from_rfc3339(value.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| SweepError::Cursor {
                    name: name.clone(),
                    value,
                })?,
            None => {
                // First contact: pin the start of the window now. Until a sweep succeeds, every
                // run reads from here, so failing first runs cannot skip a day.
                let since = started - FIRST_LOOKBACK;
                self.store.put_cursor(&name, &cursor_text(since)).await?;
                tracing::info!(realm, cursor = %since, "first CDC sweep of this quickbooks realm");
                since
            }
        };
        let api = first_client(Vendor::Quickbooks, credentials, |name| {
            self.clients.quickbooks(name)
        })
        .await
        .map_err(SweepError::Credentials)?;
        let (changed, fallback) =
            read_window(api.as_ref(), realm, since - CURSOR_OVERLAP, started).await?;

        // A customer changed twice in the window (or listed on two query pages while it
        // changed) is enqueued once: `enqueue_unseen` keeps the last listing.
        let listed = changed.customers.len();
        let found = changed
            .customers
            .iter()
            .map(|c| {
                let version = seen_fingerprint(c);
                Found {
                    key: record_key(&source, CUSTOMER, &c.id),
                    event: to_event(&source, c, &version),
                    fingerprint: version,
                }
            })
            .collect();
        let done = self
            .enqueue_unseen(connections, &name, found, started)
            .await?;
        // Never move the cursor back (a server answering with an older time than a previous
        // answer would otherwise re-read, or worse, a slow run finishing after a faster one).
        let next = changed.server_time.max(since);
        self.store.put_cursor(&name, &cursor_text(next)).await?;
        Ok(RealmSweep {
            realm: realm.to_string(),
            since,
            fallback,
            listed,
            new: done.new,
            queued: done.sent.queued,
            dead_lettered: done.sent.dead_lettered,
            cursor: next,
        })
    }
}

/// Reads the customers changed since `since`: CDC when it can cover the window completely, the
/// query endpoint otherwise (and why).
async fn read_window(
    api: &dyn QuickbooksApi,
    realm: &str,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(ChangedCustomers, Option<QueryFallback>), SweepError> {
    let fallback = if now - since > CDC_LOOKBACK - CDC_SAFETY_MARGIN {
        tracing::warn!(
            realm, since = %since,
            "the CDC cursor is older than CDC's 30-day look-back; reading the window with a full customer query instead"
        );
        QueryFallback::GapBeyondCdcLookback
    } else {
        let cdc = api
            .changed_customers(realm, since)
            .await
            .map_err(|source| SweepError::Quickbooks {
                call: "change data capture",
                source,
            })?;
        if !cdc.truncated {
            return Ok((cdc, None));
        }
        tracing::warn!(
            realm, since = %since, returned = cdc.customers.len(),
            "the CDC answer hit its 1000-object cap; reading the window with a customer query instead (windows are kept short enough for the cap by running the QuickbooksCdcSchedule more often)"
        );
        QueryFallback::CdcTruncated
    };
    let queried = api
        .customers_updated_since(realm, Some(since))
        .await
        .map_err(|source| SweepError::Quickbooks {
            call: "customer query",
            source,
        })?;
    Ok((queried, Some(fallback)))
}

/// The cursor's spelling: RFC 3339, UTC, milliseconds.
fn cursor_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The source event for a changed customer at `version` (its [`seen_fingerprint`]).
fn to_event(source: &SourceRef, c: &Customer, version: &str) -> SourceEvent {
    let operation = if c.is_deleted() { "delete" } else { "update" };
    let updated = c.last_updated().unwrap_or("");
    SourceEvent {
        // The version (SyncToken and time), so two changes in one second are two events.
        event_id: derived_event_id(source, CUSTOMER, &c.id, operation, version),
        source: source.clone(),
        entity: CUSTOMER.to_string(),
        entity_id: c.id.clone(),
        operation: operation.to_string(),
        occurred_at: DateTime::parse_from_rfc3339(updated)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        detail: serde_json::Map::new(),
    }
}
