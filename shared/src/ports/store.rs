//! The state store port: audit trail, dead letters, idempotency records, the id map, cursors,
//! leases, webhook callbacks, large bodies and the applied connections.
//!
//! Each concern is its own narrow trait; [`Store`] is all of them, which both adapter sets
//! implement on one type. Times are passed in (from the [`super::Clock`]) so behaviour that
//! depends on them — lease expiry, TTLs — is testable.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::PortResult;
use crate::connections::ConnectionSet;
use crate::event::Origin;

/// What happened to one (record, event, target) attempt.
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
)]
#[serde(rename_all = "snake_case")]
#[strum(
    serialize_all = "snake_case",
    parse_err_ty = String,
    parse_err_fn = unknown_outcome
)]
pub enum Outcome {
    /// The target was written.
    Synced,
    /// The target already matched; nothing was written.
    Unchanged,
    /// The event had already been handled; nothing was done.
    Duplicate,
    /// A transient failure; the message goes back to its queue.
    Retrying,
    /// The message will not succeed and was dead-lettered.
    DeadLettered,
    /// Refused before any work (e.g. undecodable, unknown connection).
    Rejected,
    /// Deliberately not synced (e.g. a draft invoice the connection does not sync).
    Skipped,
}

impl Outcome {
    /// Every outcome (an array: `ops audit` and `ops status` map over it).
    pub const ALL: [Outcome; 7] = [
        Outcome::Synced,
        Outcome::Unchanged,
        Outcome::Duplicate,
        Outcome::Retrying,
        Outcome::DeadLettered,
        Outcome::Rejected,
        Outcome::Skipped,
    ];

    /// The name stored in audit and idempotency items (serde's spelling).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

fn unknown_outcome(s: &str) -> String {
    format!("unknown outcome `{s}`")
}

/// One audit item: one (record, event, target) attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// `vendor:account:entity:id` of the source record, or `message:<id>` when undecodable.
    pub record_key: String,
    pub at: DateTime<Utc>,
    pub event_id: String,
    pub connection: String,
    /// The queue (target) that handled it.
    pub target: String,
    pub origin: Option<Origin>,
    pub operation: String,
    pub outcome: Outcome,
    /// What the target looked like before the write (trimmed).
    pub before: Option<serde_json::Value>,
    /// What was written (trimmed).
    pub written: Option<serde_json::Value>,
    pub error_class: Option<String>,
    pub error_message: Option<String>,
    pub vendor_request_id: Option<String>,
    pub attempt: u32,
    pub duration_ms: u64,
    pub message_id: Option<String>,
    /// When the backend may delete the item (DynamoDB TTL).
    pub expires_at: Option<DateTime<Utc>>,
}

impl AuditEntry {
    /// The day bucket the outcome+day index uses.
    pub fn day(&self) -> NaiveDate {
        self.at.date_naive()
    }
}

#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn record_audit(&self, entry: &AuditEntry) -> PortResult<()>;
    /// A record's trail, newest first.
    async fn audit_by_record(&self, record_key: &str, limit: usize) -> PortResult<Vec<AuditEntry>>;
    /// Entries with one outcome on one (UTC) day, newest first.
    async fn audit_by_outcome(
        &self,
        outcome: Outcome,
        day: NaiveDate,
        limit: usize,
    ) -> PortResult<Vec<AuditEntry>>;
}

/// Whether a dead letter still needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum DeadLetterStatus {
    Open,
    Resolved,
}

impl DeadLetterStatus {
    /// The name stored in dead-letter items (serde's spelling).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A message (or webhook delivery) that will not succeed, kept with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Deterministic, so a replay can find it: see [`DeadLetter::id_for_event`].
    pub id: String,
    /// Where it failed: `worker:<queue>` or `webhook:<vendor>`.
    pub stage: String,
    /// The queue whose DLQ holds the message, if it reached a queue.
    pub queue: Option<String>,
    pub event_id: Option<String>,
    pub record_key: Option<String>,
    pub connection: Option<String>,
    pub error_class: String,
    pub reason: String,
    pub vendor_request_id: Option<String>,
    pub attempts: u32,
    /// The message body, or `blob:<key>` when it was too large to keep inline.
    pub payload: String,
    pub status: DeadLetterStatus,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl DeadLetter {
    /// The id of the dead letter for one event on one connection.
    pub fn id_for_event(connection: &str, event_id: &str) -> String {
        format!("event:{connection}:{event_id}")
    }
}

#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Creates or replaces (re-opening) the dead letter with this id.
    async fn put_dead_letter(&self, letter: &DeadLetter) -> PortResult<()>;
    async fn get_dead_letter(&self, id: &str) -> PortResult<Option<DeadLetter>>;
    /// Dead letters with a status, newest first.
    async fn list_dead_letters(
        &self,
        status: DeadLetterStatus,
        limit: usize,
    ) -> PortResult<Vec<DeadLetter>>;
    /// Marks an open dead letter resolved; `false` if there was no open one.
    async fn resolve_dead_letter(&self, id: &str, at: DateTime<Utc>) -> PortResult<bool>;
}

/// What [`Idempotency::begin`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// The caller now holds the claim: nobody has handled the key, a previous attempt was
    /// abandoned or its lease ran out, or the key was completed with [`Outcome::DeadLettered`].
    Proceed {
        /// The claim replaced a record, still in force, completed with
        /// [`Outcome::DeadLettered`]: this delivery is a replay of a dead-lettered event.
        replay: bool,
    },
    /// Already handled, with this outcome (never [`Outcome::DeadLettered`], which is claimable).
    Duplicate(Outcome),
    /// Another consumer holds a live claim on the key.
    InProgress,
}

/// Idempotency records: one per (event, connection), claimed with a conditional write.
#[async_trait]
pub trait Idempotency: Send + Sync {
    /// Claims `key` for `lease` unless it is done or claimed by someone else.
    ///
    /// A key completed with [`Outcome::DeadLettered`] is claimable like an absent one (and
    /// reported as [`Begin::Proceed`] with `replay: true`): a replay from the dead-letter queue
    /// takes a real claim, so two concurrent copies of it cannot both run the handler.
    async fn begin(&self, key: &str, now: DateTime<Utc>, lease: Duration) -> PortResult<Begin>;
    /// Marks the key done; later `begin`s see [`Begin::Duplicate`] until `expires_at`.
    async fn complete(
        &self,
        key: &str,
        outcome: Outcome,
        expires_at: DateTime<Utc>,
    ) -> PortResult<()>;
    /// Drops a claim so the next attempt can proceed. A completed record is left in place; a
    /// replay's claim has replaced its `DeadLettered` record, so abandoning it leaves the key
    /// absent (and the next `begin` reports `replay: false`).
    async fn abandon(&self, key: &str) -> PortResult<()>;
}

/// Source id → target id, with a fingerprint of the last write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapping {
    pub target_id: String,
    pub fingerprint: String,
    pub updated_at: DateTime<Utc>,
}

#[async_trait]
pub trait IdMap: Send + Sync {
    async fn get_mapping(
        &self,
        connection: &str,
        source_key: &str,
    ) -> PortResult<Option<IdMapping>>;
    async fn put_mapping(
        &self,
        connection: &str,
        source_key: &str,
        mapping: &IdMapping,
    ) -> PortResult<()>;
}

/// Poll positions (e.g. the last `updated` seen per connection and entity).
#[async_trait]
pub trait Cursors: Send + Sync {
    async fn get_cursor(&self, name: &str) -> PortResult<Option<String>>;
    async fn put_cursor(&self, name: &str, value: &str) -> PortResult<()>;
}

/// Single-flight leases (e.g. token refresh across all Lambdas).
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes the lease if it is free, expired, or already `holder`'s; `true` when taken.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> PortResult<bool>;
    /// Gives the lease up if `holder` has it.
    async fn release_lease(&self, name: &str, holder: &str) -> PortResult<()>;
}

/// Where a webhook callback is in its verification handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CallbackStatus {
    /// Registered with the vendor; waiting for the verifier.
    Pending,
    /// The vendor confirmed the verifier; deliveries are checked against it.
    Verified,
}

impl CallbackStatus {
    /// The name stored in callback items (serde's spelling).
    pub(crate) fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A vendor-side webhook registration with a route of its own (FreshBooks callbacks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRecord {
    /// The last path segment of the route, chosen by us when registering.
    pub route_id: String,
    pub vendor: crate::vendor::Vendor,
    pub account: String,
    /// The vendor's id for the callback, once registered.
    pub callback_id: Option<String>,
    /// The vendor event the callback subscribes to (e.g. `invoice`).
    pub event: String,
    /// Name of the credential secret used to confirm the handshake.
    pub credentials: String,
    pub status: CallbackStatus,
    pub updated_at: DateTime<Utc>,
}

#[async_trait]
pub trait WebhookCallbacks: Send + Sync {
    async fn get_callback(&self, route_id: &str) -> PortResult<Option<CallbackRecord>>;
    async fn put_callback(&self, record: &CallbackRecord) -> PortResult<()>;
    /// Pending → verified, conditionally; `false` if the record was not pending.
    async fn mark_callback_verified(&self, route_id: &str, at: DateTime<Utc>) -> PortResult<bool>;
    /// Records the vendor's id for an existing callback and leaves its status alone: the
    /// handshake may verify the callback before the registration call that returns the id
    /// does, and a whole-record put then would set it back to pending. `false` if there is no
    /// record.
    async fn record_callback_id(&self, route_id: &str, callback_id: &str) -> PortResult<bool>;
}

/// Bodies too large for a queue message or a dead-letter item.
#[async_trait]
pub trait Blobs: Send + Sync {
    async fn put_blob(
        &self,
        key: &str,
        body: &[u8],
        expires_at: Option<DateTime<Utc>>,
    ) -> PortResult<()>;
    async fn get_blob(&self, key: &str) -> PortResult<Option<Vec<u8>>>;
}

/// The applied connections set.
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    async fn get_connections(&self) -> PortResult<Option<ConnectionSet>>;
    async fn put_connections(&self, set: &ConnectionSet) -> PortResult<()>;
}

/// Everything the state store does, as one object.
pub trait Store:
    AuditLog
    + DeadLetters
    + Idempotency
    + IdMap
    + Cursors
    + Leases
    + WebhookCallbacks
    + Blobs
    + ConnectionStore
{
}

impl<T> Store for T where
    T: AuditLog
        + DeadLetters
        + Idempotency
        + IdMap
        + Cursors
        + Leases
        + WebhookCallbacks
        + Blobs
        + ConnectionStore
{
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names stored in items and printed by the CLI are serde's: both spellings agree, and
    /// every outcome parses back.
    #[test]
    fn names_are_serdes() {
        let serde_name = |v: serde_json::Value| v.as_str().map(str::to_string);
        for outcome in Outcome::ALL {
            let name = serde_name(serde_json::to_value(outcome).unwrap());
            assert_eq!(name.as_deref(), Some(outcome.as_str()));
            assert_eq!(outcome.to_string(), outcome.as_str());
            assert_eq!(outcome.as_str().parse::<Outcome>(), Ok(outcome));
        }
        assert_eq!(Outcome::DeadLettered.as_str(), "dead_lettered");
        assert_eq!(
            "lost".parse::<Outcome>(),
            Err("unknown outcome `lost`".to_string())
        );
        for status in [DeadLetterStatus::Open, DeadLetterStatus::Resolved] {
            let name = serde_name(serde_json::to_value(status).unwrap());
            assert_eq!(name.as_deref(), Some(status.as_str()));
        }
        for origin in [
            Origin::Webhook,
            Origin::Poll,
            Origin::Backfill,
            Origin::Replay,
        ] {
            let name = serde_name(serde_json::to_value(origin).unwrap());
            assert_eq!(name.as_deref(), Some(origin.as_str()));
        }
    }
}
