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
    /// When the attempt ended.
    pub at: DateTime<Utc>,
    /// The event's id (empty when the message could not be decoded).
    pub event_id: String,
    /// The connection the event travelled on (empty when unknown).
    pub connection: String,
    /// The queue (target) that handled it.
    pub target: String,
    /// Webhook, poll, backfill or replay; `None` when the message could not be decoded.
    pub origin: Option<Origin>,
    /// The source operation, e.g. `update` or `delete` (empty when undecodable).
    pub operation: String,
    /// What the attempt came to.
    pub outcome: Outcome,
    /// What the target looked like before the write (trimmed).
    pub before: Option<serde_json::Value>,
    /// What was written (trimmed).
    pub written: Option<serde_json::Value>,
    /// On failure: `transient`, or the permanent error's class (e.g. `configuration`).
    pub error_class: Option<String>,
    /// On failure: the error's message (trimmed).
    pub error_message: Option<String>,
    /// The vendor's id for the request that failed or wrote, for its support.
    pub vendor_request_id: Option<String>,
    /// The message's receive count at this attempt (1 for the first).
    pub attempt: u32,
    /// How long the attempt took.
    pub duration_ms: u64,
    /// The queue's id of the message carrying the event.
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

/// The audit trail: every attempt at every event, queryable by record and by outcome and day.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends one entry.
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
    /// No replay of it has succeeded yet: it counts in `ops status` and waits for a replay.
    Open,
    /// A replay of it succeeded; kept, for the record, until it expires.
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
    /// The event's id, when the message could be read that far.
    pub event_id: Option<String>,
    /// The source record's key (see [`AuditEntry::record_key`]), when known.
    pub record_key: Option<String>,
    /// The connection, when known.
    pub connection: Option<String>,
    /// The failure's class, e.g. `undecodable` or a permanent error's class.
    pub error_class: String,
    /// Why it will not succeed (trimmed).
    pub reason: String,
    /// The vendor's id for the failed request, for its support.
    pub vendor_request_id: Option<String>,
    /// How many times the message was received before it was given up on.
    pub attempts: u32,
    /// The message body, or `blob:<key>` when it was too large to keep inline.
    pub payload: String,
    /// Open until replayed or resolved.
    pub status: DeadLetterStatus,
    /// When it was (last) dead-lettered.
    pub created_at: DateTime<Utc>,
    /// When it was resolved, if it was.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When the backend may delete the item (DynamoDB TTL).
    pub expires_at: Option<DateTime<Utc>>,
}

impl DeadLetter {
    /// The id of the dead letter for one event on one connection.
    pub fn id_for_event(connection: &str, event_id: &str) -> String {
        format!("event:{connection}:{event_id}")
    }
}

/// Dead letters: what will not succeed, with why, kept for an operator to inspect and replay.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Creates or replaces (re-opening) the dead letter with this id.
    async fn put_dead_letter(&self, letter: &DeadLetter) -> PortResult<()>;
    /// The dead letter with this id, open or resolved.
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
    /// The target's id for the record (e.g. the Mailchimp member's email).
    pub target_id: String,
    /// A hash of what was last written, to skip unchanged writes; or a marker such as the
    /// archived one.
    pub fingerprint: String,
    /// When the entry was last written.
    pub updated_at: DateTime<Utc>,
}

/// The id map: per connection, which target record a source record was written to.
#[async_trait]
pub trait IdMap: Send + Sync {
    /// The entry for `source_key` (e.g. `client:123`) on `connection`, if any.
    async fn get_mapping(
        &self,
        connection: &str,
        source_key: &str,
    ) -> PortResult<Option<IdMapping>>;
    /// Creates or replaces the entry for `source_key` on `connection`.
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
    /// The cursor's value (e.g. `poll:freshbooks:<account>`), `None` before the first poll.
    async fn get_cursor(&self, name: &str) -> PortResult<Option<String>>;
    /// Stores the cursor's new value.
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
    /// The vendor that delivers to the route.
    pub vendor: crate::vendor::Vendor,
    /// The vendor account the callback is registered on.
    pub account: String,
    /// The vendor's id for the callback, once registered.
    pub callback_id: Option<String>,
    /// The vendor event the callback subscribes to (e.g. `invoice`).
    pub event: String,
    /// Name of the credential secret used to confirm the handshake.
    pub credentials: String,
    /// Pending until the handshake is confirmed.
    pub status: CallbackStatus,
    /// When the record last changed.
    pub updated_at: DateTime<Utc>,
}

/// Webhook callbacks registered with a vendor, by route: what the webhook checks a delivery to a
/// callback route against.
#[async_trait]
pub trait WebhookCallbacks: Send + Sync {
    /// The callback behind a route, if any.
    async fn get_callback(&self, route_id: &str) -> PortResult<Option<CallbackRecord>>;
    /// Creates or replaces the record.
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
    /// Stores `body` under `key` (e.g. `event/<connection>/<event id>`), deletable after
    /// `expires_at`.
    async fn put_blob(
        &self,
        key: &str,
        body: &[u8],
        expires_at: Option<DateTime<Utc>>,
    ) -> PortResult<()>;
    /// The body stored under `key`, if it is still there.
    async fn get_blob(&self, key: &str) -> PortResult<Option<Vec<u8>>>;
}

/// The applied connections set.
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// The applied set; `None` before the first `connections apply`.
    async fn get_connections(&self) -> PortResult<Option<ConnectionSet>>;
    /// Replaces the applied set.
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
