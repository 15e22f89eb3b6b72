//! [`SyncEvent`]: the versioned message every queue carries.
//!
//! Events carry ids, not records: workers fetch the current state of the record, so ordering and
//! replays stop mattering (docs/architecture.md, "Events carry ids").

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{AccountId, ConnectionName};
use crate::vendor::Vendor;

/// The schema version written into every event; readers reject versions they do not know.
pub const SYNC_EVENT_VERSION: u32 = 1;

/// SQS's hard limit on a message body.
pub(crate) const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Origin {
    /// Delivered by the vendor's webhook.
    Webhook,
    /// Found by a scheduled poll or sweep.
    Poll,
    /// Enqueued by `ml-connector backfill`.
    Backfill,
    /// Sent again from a dead letter by `ml-connector replay`.
    Replay,
}

impl Origin {
    /// The name in logs, stored items and dead-letter stages (serde's spelling).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The vendor account an event belongs to: a FreshBooks account id, a QuickBooks realm id, a
/// Mailchimp list id, a Stripe account label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceRef {
    /// The source vendor.
    pub vendor: Vendor,
    /// Its account (FreshBooks account id, QuickBooks realm id, Mailchimp list id, Stripe account).
    pub account: AccountId,
}

impl fmt::Display for SourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.vendor, self.account)
    }
}

/// One change to one source record, addressed to one connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncEvent {
    /// Schema version, [`SYNC_EVENT_VERSION`] when written by this build.
    pub v: u32,
    /// Stable id: the vendor's event id where one exists, else `derived_event_id`.
    pub event_id: String,
    /// The connection (by name) this event is addressed to.
    pub connection: ConnectionName,
    /// Where the record lives.
    pub source: SourceRef,
    /// The vendor's entity name in lower case: `client`, `invoice`, `payment`, `customer`, `member`…
    pub entity: String,
    /// The record's id at the source.
    pub entity_id: String,
    /// The vendor's operation in lower case: `create`, `update`, `delete`, `merge`, `subscribe`…
    pub operation: String,
    /// When the vendor says the change happened, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<DateTime<Utc>>,
    /// When the webhook, poller or CLI received or made it.
    pub received_at: DateTime<Utc>,
    /// What produced it.
    pub origin: Origin,
    /// Small vendor hints (e.g. a merged-away id, a Mailchimp email); never a whole record.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub detail: serde_json::Map<String, serde_json::Value>,
    /// Key of a stored body when the detail would not fit in a queue message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail_ref: Option<String>,
}

/// Why a queue message is not a [`SyncEvent`] this build can handle.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("message is not a SyncEvent: {0}")]
    /// Not JSON, or not the shape of a `SyncEvent`.
    Malformed(#[from] serde_json::Error),
    #[error(
        "SyncEvent version {found} is not supported (this build reads version {SYNC_EVENT_VERSION})"
    )]
    /// A version this build does not read (a newer producer).
    UnsupportedVersion {
        /// The version the message carries.
        found: u32,
    },
}

impl SyncEvent {
    /// The key audit entries and id maps use for the source record:
    /// `vendor:account:entity:id`, e.g. `freshbooks:6BApk:client:123`.
    pub fn record_key(&self) -> String {
        record_key(&self.source, &self.entity, &self.entity_id)
    }

    /// Serializes for a queue message.
    pub fn to_json(&self) -> String {
        // A struct of strings, maps of JSON values and timestamps always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a queue message, checking the schema version.
    pub fn from_json(body: &str) -> Result<Self, DecodeError> {
        #[derive(Deserialize)]
        struct Version {
            v: u32,
        }
        let Version { v } = serde_json::from_str(body)?;
        if v != SYNC_EVENT_VERSION {
            return Err(DecodeError::UnsupportedVersion { found: v });
        }
        Ok(serde_json::from_str(body)?)
    }
}

/// `vendor:account:entity:id`: the one spelling of a source record's key.
pub fn record_key(source: &SourceRef, entity: &str, entity_id: &str) -> String {
    format!(
        "{}:{}:{}:{}",
        source.vendor, source.account, entity, entity_id
    )
}

/// A stable event id for vendors whose deliveries carry none: a hash of what identifies the
/// change, so the same delivery retried by the vendor gets the same id.
pub(crate) fn derived_event_id(
    source: &SourceRef,
    entity: &str,
    entity_id: &str,
    operation: &str,
    vendor_time: &str,
) -> String {
    let hash = short_hash(
        &[
            source.vendor.as_str(),
            &source.account,
            entity,
            entity_id,
            operation,
            vendor_time,
        ],
        32,
    );
    format!("{}-{hash}", source.vendor)
}

/// The first `hex_len` hex digits of SHA-256 over `parts`, each followed by a NUL so that
/// `["ab", "c"]` and `["a", "bc"]` differ: the one recipe behind every derived id, which must
/// never change (stored ids and idempotency keys were made with it).
pub(crate) fn short_hash(parts: &[&str], hex_len: usize) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let mut s = hex::encode(h.finalize());
    s.truncate(hex_len);
    s
}

/// What a webhook parser extracts from a delivery before fan-out to connections.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceEvent {
    /// The vendor's event id, or one derived from the record and its version.
    pub event_id: String,
    /// Where the record lives.
    pub source: SourceRef,
    /// The kind of record (`client`, `invoice`, `customer`, `member`, …).
    pub entity: String,
    /// The record's id at the source.
    pub entity_id: String,
    /// What happened to it (`create`, `update`, `delete`, …), as the source says it.
    pub operation: String,
    /// When it happened, if the source says.
    pub occurred_at: Option<DateTime<Utc>>,
    /// What the delivery carried beyond ids, for flows that need it (no secrets).
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl SourceEvent {
    /// The event addressed to one connection.
    pub fn for_connection(
        &self,
        connection: &str,
        origin: Origin,
        received_at: DateTime<Utc>,
    ) -> SyncEvent {
        SyncEvent {
            v: SYNC_EVENT_VERSION,
            event_id: self.event_id.clone(),
            connection: connection.into(),
            source: self.source.clone(),
            entity: self.entity.clone(),
            entity_id: self.entity_id.clone(),
            operation: self.operation.clone(),
            occurred_at: self.occurred_at,
            received_at,
            origin,
            detail: self.detail.clone(),
            detail_ref: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SyncEvent {
        SourceEvent {
            event_id: "evt_1".into(),
            source: SourceRef {
                vendor: Vendor::Freshbooks,
                account: "6BApk".into(),
            },
            entity: "invoice".into(),
            entity_id: "217506".into(),
            operation: "update".into(),
            occurred_at: None,
            detail: Default::default(),
        }
        .for_connection(
            "fb-to-mc",
            Origin::Webhook,
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        )
    }

    #[test]
    fn round_trips_and_names_the_record() {
        let e = sample();
        let back = SyncEvent::from_json(&e.to_json()).unwrap();
        assert_eq!(back, e);
        assert_eq!(e.record_key(), "freshbooks:6BApk:invoice:217506");
    }

    #[test]
    fn rejects_unknown_versions_and_garbage() {
        let body = sample().to_json().replace("\"v\":1", "\"v\":9");
        assert!(matches!(
            SyncEvent::from_json(&body),
            Err(DecodeError::UnsupportedVersion { found: 9 })
        ));
        assert!(matches!(
            SyncEvent::from_json("{"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            SyncEvent::from_json("{\"v\":1}"),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let s = SourceRef {
            vendor: Vendor::Quickbooks,
            account: "913".into(),
        };
        let a = derived_event_id(&s, "customer", "58", "update", "2026-03-02T17:04:11Z");
        assert_eq!(
            a,
            derived_event_id(&s, "customer", "58", "update", "2026-03-02T17:04:11Z")
        );
        assert_ne!(
            a,
            derived_event_id(&s, "customer", "58", "update", "2026-03-02T17:04:12Z")
        );
        assert_ne!(
            a,
            derived_event_id(&s, "customer", "5", "8update", "2026-03-02T17:04:11Z")
        );
    }

    /// Derived ids are stored and used as idempotency keys: the recipe may never drift.
    /// Expected values computed outside Rust (Python hashlib).
    #[test]
    fn short_hash_recipe_is_pinned() {
        let s = SourceRef {
            vendor: Vendor::Quickbooks,
            account: "913".into(),
        };
        assert_eq!(
            derived_event_id(&s, "customer", "58", "update", "2026-03-02T17:04:11Z"),
            "quickbooks-0480100838e2ad80d614a74ac79fe11a"
        );
        assert_eq!(
            short_hash(&["a", "b"], 40),
            "8fb20ef63ced4145fc2e983ffe597d1dcff39154"
        );
    }
}
