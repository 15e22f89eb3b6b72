//! How the stored layouts (`#[serde(remote = …)]` definitions, see [`super::item::to_item`])
//! write what serde's defaults would write differently.

use chrono::{DateTime, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{timestamp, ttl_secs};

/// A time as fixed-width RFC 3339 nanoseconds ([`timestamp`]), for `serialize_with`. chrono's
/// own serde format writes 0, 3, 6 or 9 digits, whichever is shortest, so its strings would
/// neither match the stored ones nor sort as times (the dead-letter index sorts on
/// `created_at`). Reading takes chrono's default, which parses both.
pub(super) fn time<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&timestamp(*at))
}

/// An optional [`time`].
pub(super) fn opt_time<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    at.map(timestamp).serialize(serializer)
}

/// The TTL attribute: epoch seconds, rounded up ([`ttl_secs`]) so TTL never deletes early.
pub(super) mod ttl {
    use super::*;

    pub(in super::super) fn serialize<S: Serializer>(
        at: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        at.map(ttl_secs).serialize(serializer)
    }

    pub(in super::super) use chrono::serde::ts_seconds_option::deserialize;
}

/// A JSON value kept as JSON text in a string attribute, as the audit snapshots have always
/// been stored: one string to size against the item limit and to drop whole.
pub(super) mod json {
    use super::*;

    pub(in super::super) fn serialize<S: Serializer>(
        value: &Option<serde_json::Value>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value
            .as_ref()
            .map(serde_json::Value::to_string)
            .serialize(serializer)
    }

    pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<serde_json::Value>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| serde_json::from_str(&text).map_err(D::Error::custom))
            .transpose()
    }
}
