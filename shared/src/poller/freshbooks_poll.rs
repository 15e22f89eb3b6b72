//! [`Job::FreshbooksPoll`]: the fallback for FreshBooks webhooks that never arrive
//! (docs/vendors/freshbooks.md §1.6: FreshBooks documents no retry schedule and may disable callbacks).
//!
//! Per FreshBooks account that an enabled connection takes events from (each account once,
//! whatever the number of its connections):
//! 1. `since` = cursor date − `PollerConfig::overlap_days`; first run: today (US/Eastern) −
//!    the overlap. `search[updated_min]` is day-granular and compares US/Eastern dates, so the
//!    overlap re-reads the cursor's day and the day before.
//! 2. List the entities the account's connections need ([`entities_for`]: the union of their
//!    flows' source entities, e.g. clients, invoices and payments for FreshBooks → Mailchimp)
//!    changed since then, deleted ones included.
//! 3. Drop the records already seen with the same `updated` (the overlap re-reads them every
//!    time): see "Seen markers" below.
//! 4. Fan the rest out to every connection of the account exactly as the webhook does, as
//!    `origin = poll`, operation `update` (`delete` for a deleted record), event id
//!    `derived_event_id(source, entity, id, operation, updated)`: two polls of the same change
//!    give the same id, so the worker's idempotency drops the repeat; a change already applied
//!    from its webhook costs the worker one read and no write (the id map's fingerprint).
//! 5. Only then write the seen markers and advance the cursor to today's US/Eastern date. A
//!    failure anywhere before leaves the cursor, so the next run lists the same window again.
//!    (The first run pins the cursor to its own date before listing, so a first run that fails
//!    is retried from that date too, not from "yesterday" of a later day.)
//!
//! Accounts are independent: one failing (expired grant, FreshBooks down) is reported and the
//! others are still polled; the job then fails as a whole so the poller's alarm fires.
//!
//! **Seen markers** live in the id map under the pseudo connection `poll:freshbooks:<account>`
//! ([`super::cursor_name`]; no real connection name contains `:`), keyed by the record key
//! (`freshbooks:<account>:<entity>:<id>`), with the record's `updated` string as fingerprint
//! (suffixed ` deleted` for a deleted record, so a deletion that keeps `updated` still counts
//! as a change) and an empty target id. A record without `updated` is enqueued once and then
//! treated as seen. **The cursor** is `poll:freshbooks:<account>` in the cursors table, holding
//! the `YYYY-MM-DD` US/Eastern date on which the last successful poll of the account started.

use chrono::{Days, NaiveDate};
use serde::Serialize;

use super::{
    EnqueueError, Found, Job, JobError, JobFailure, JobReport, Poller, cursor_name, first_client,
    source_accounts,
};
use crate::connections::{Connection, ConnectionSet};
use crate::event::{SourceEvent, SourceRef, derived_event_id, record_key};
use crate::flows::Flow;
use crate::ports::PortError;
use crate::vendor::Vendor;
use crate::vendors::freshbooks::FreshbooksError;
use crate::vendors::freshbooks::models::{Changed, Entity, eastern_date, eastern_to_utc};
use crate::worker::HandlerError;

/// The date format of cursors.
const CURSOR_DATE: &str = "%Y-%m-%d";

/// The fingerprint a seen marker stores for a listed record.
pub(crate) fn seen_fingerprint(changed: &Changed) -> String {
    let updated = changed.updated.as_deref().unwrap_or("");
    if changed.deleted {
        format!("{updated} deleted")
    } else {
        updated.to_string()
    }
}

/// The FreshBooks entities `connections` (those of one account) need between them, in the
/// order polls go through them: the union of their flows' source entities. What the poll lists,
/// `backfill` lists and `apply` subscribes to for the account, so an entity is read only when
/// some connection's flow syncs it.
pub fn entities_for<'a>(connections: impl IntoIterator<Item = &'a Connection>) -> Vec<Entity> {
    Entity::among(&Flow::needed_entities(
        connections,
        Flow::source_entities_of,
    ))
}

/// What the poll did for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountPoll {
    /// The FreshBooks account id.
    pub account: String,
    /// The `search[updated_min]` date used.
    pub since: NaiveDate,
    /// Records FreshBooks listed (all entities).
    pub listed: usize,
    /// Records not seen before (with this `updated`): the ones enqueued.
    pub new: usize,
    /// Queue messages sent (one per new record and connection).
    pub queued: usize,
    /// Messages kept as `no_queue` dead letters.
    pub dead_lettered: usize,
    /// The cursor date written.
    pub cursor: NaiveDate,
}

/// Why one account could not be polled.
#[derive(Debug, thiserror::Error)]
pub(super) enum PollError {
    #[error("credentials: {0}")]
    Credentials(HandlerError),
    #[error("listing {entity}s: {source}")]
    Freshbooks {
        entity: &'static str,
        source: FreshbooksError,
    },
    #[error(
        "cursor `{name}` holds `{value}`, not a YYYY-MM-DD date; fix or delete it in the state table"
    )]
    Cursor { name: String, value: String },
    #[error("state store: {0}")]
    Store(#[from] PortError),
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
}

impl Poller {
    pub(super) async fn freshbooks_poll(&self) -> Result<JobReport, JobError> {
        self.leased(Job::FreshbooksPoll, self.poll_accounts()).await
    }

    async fn poll_accounts(&self) -> Result<JobReport, PortError> {
        let mut report = JobReport::new(Job::FreshbooksPoll);
        let connections = self.store.get_connections().await?.unwrap_or_default();
        for (account, credentials) in source_accounts(&connections, Vendor::Freshbooks) {
            let source = SourceRef {
                vendor: Vendor::Freshbooks,
                account: account.as_str().into(),
            };
            let entities = entities_for(connections.for_source(&source).map(|(_, c)| c));
            match self
                .poll_account(&connections, &account, &credentials, &entities)
                .await
            {
                Ok(poll) => {
                    tracing::info!(
                        job = %Job::FreshbooksPoll, account = %poll.account, since = %poll.since,
                        listed = poll.listed, new = poll.new, queued = poll.queued,
                        dead_lettered = poll.dead_lettered, "freshbooks account polled"
                    );
                    report.polled.push(poll);
                }
                Err(e) => {
                    tracing::error!(job = %Job::FreshbooksPoll, account = %account, error = %e, "freshbooks account poll failed");
                    report.failures.push(JobFailure {
                        name: format!("freshbooks/{account}"),
                        error: e.to_string(),
                    });
                }
            }
        }
        Ok(report)
    }

    /// Polls `account` for `entities` (what its connections need: [`entities_for`]).
    pub(super) async fn poll_account(
        &self,
        connections: &ConnectionSet,
        account: &str,
        credentials: &[String],
        entities: &[Entity],
    ) -> Result<AccountPoll, PollError> {
        let started = self.clock.now();
        let source = SourceRef {
            vendor: Vendor::Freshbooks,
            account: account.into(),
        };
        let name = cursor_name(Vendor::Freshbooks, account);
        let cursor = match self.store.get_cursor(&name).await? {
            Some(value) => Some(
                NaiveDate::parse_from_str(value.trim(), CURSOR_DATE).map_err(|_| {
                    PollError::Cursor {
                        name: name.clone(),
                        value,
                    }
                })?,
            ),
            None => None,
        };
        let cursor = match cursor {
            Some(date) => date,
            None => {
                // First contact: pin the start of the window now. Until a poll succeeds, every
                // run lists from here, so an outage on the first days cannot skip a day.
                let today = eastern_date(started);
                self.store
                    .put_cursor(&name, &today.format(CURSOR_DATE).to_string())
                    .await?;
                tracing::info!(account, cursor = %today, "first poll of this freshbooks account");
                today
            }
        };
        let since = cursor
            .checked_sub_days(Days::new(u64::from(self.config.overlap_days)))
            .unwrap_or(cursor);
        let api = first_client(Vendor::Freshbooks, credentials, |name| {
            self.clients.freshbooks(name)
        })
        .await
        .map_err(PollError::Credentials)?;

        // A record that changes while the pages are read can be listed twice;
        // `enqueue_unseen` keeps the last listing.
        let mut listed = 0;
        let mut found = Vec::new();
        for &entity in entities {
            let records = api
                .changed_since(account, entity, since)
                .await
                .map_err(|source| PollError::Freshbooks {
                    entity: entity.as_str(),
                    source,
                })?;
            listed += records.len();
            found.extend(records.iter().map(|c| Found {
                key: record_key(&source, c.entity.as_str(), &c.id),
                fingerprint: seen_fingerprint(c),
                event: to_event(&source, c, c.updated.as_deref().unwrap_or("")),
            }));
        }

        let done = self
            .enqueue_unseen(connections, &name, found, started)
            .await?;
        // Never move the cursor back (a clock step, a slow run finishing after a faster one).
        let next = eastern_date(started).max(cursor);
        self.store
            .put_cursor(&name, &next.format(CURSOR_DATE).to_string())
            .await?;
        Ok(AccountPoll {
            account: account.to_string(),
            since,
            listed,
            new: done.new,
            queued: done.sent.queued,
            dead_lettered: done.sent.dead_lettered,
            cursor: next,
        })
    }
}

/// The source event for a listed record: operation `update` (`delete` for a deleted record),
/// event id derived from the record and `version` (the poll passes the record's `updated`, so
/// two polls of one change give one id; the CLI's backfill adds its run, so each run's events
/// are new).
pub fn to_event(source: &SourceRef, c: &Changed, version: &str) -> SourceEvent {
    let operation = if c.deleted { "delete" } else { "update" };
    let entity = c.entity.as_str();
    SourceEvent {
        event_id: derived_event_id(source, entity, &c.id, operation, version),
        source: source.clone(),
        entity: entity.to_string(),
        entity_id: c.id.clone(),
        operation: operation.to_string(),
        occurred_at: c.updated.as_deref().and_then(eastern_to_utc),
        detail: serde_json::Map::new(),
    }
}
