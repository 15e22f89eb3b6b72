//! [`DeadLetters`] over the dead-letter table: key `id`, GSI `by_status` on `status` +
//! `created_at`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};

use super::format;
use super::item::{self, Item};
use super::{DynamoStore, conditional, dynamo_error, is_live, timestamp};
use crate::ports::{DeadLetter, DeadLetterStatus, DeadLetters, PortResult};

/// The status index.
pub(crate) const STATUS_INDEX: &str = "by_status";

const WHAT: &str = "dead letter";

/// The stored layout of a [`DeadLetter`]: its fields under their own names, no key to add (the
/// table's key is `id`).
#[derive(Serialize, Deserialize)]
#[serde(remote = "DeadLetter")]
struct Stored {
    id: String,
    stage: String,
    queue: Option<String>,
    event_id: Option<String>,
    record_key: Option<String>,
    connection: Option<String>,
    error_class: String,
    reason: String,
    vendor_request_id: Option<String>,
    attempts: u32,
    payload: String,
    status: DeadLetterStatus,
    #[serde(serialize_with = "format::time")]
    created_at: DateTime<Utc>,
    #[serde(serialize_with = "format::opt_time")]
    resolved_at: Option<DateTime<Utc>>,
    #[serde(with = "format::ttl", default)]
    expires_at: Option<DateTime<Utc>>,
}

fn to_item(letter: &DeadLetter) -> PortResult<Item> {
    item::to_item(letter, Stored::serialize, WHAT)
}

fn from_item(item: Item) -> PortResult<DeadLetter> {
    item::from_item(item, Stored::deserialize, WHAT)
}

#[async_trait]
impl DeadLetters for DynamoStore {
    async fn put_dead_letter(&self, letter: &DeadLetter) -> PortResult<()> {
        self.put(&self.tables.dead_letters, to_item(letter)?).await
    }

    async fn get_dead_letter(&self, id: &str) -> PortResult<Option<DeadLetter>> {
        let table = &self.tables.dead_letters;
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key("id", AttributeValue::S(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error("GetItem", table, &e))?;
        match out.item {
            Some(item) if is_live(&item, self.clock.now())? => from_item(item).map(Some),
            _ => Ok(None),
        }
    }

    async fn list_dead_letters(
        &self,
        status: DeadLetterStatus,
        limit: usize,
    ) -> PortResult<Vec<DeadLetter>> {
        let table = &self.tables.dead_letters;
        let query = self
            .client
            .query()
            .table_name(table)
            .index_name(STATUS_INDEX)
            .key_condition_expression("#status = :status")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", AttributeValue::S(status.as_str().into()))
            .scan_index_forward(false);
        self.query_live(query, table, limit)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    async fn resolve_dead_letter(&self, id: &str, at: DateTime<Utc>) -> PortResult<bool> {
        let table = &self.tables.dead_letters;
        let now = self.clock.now();
        let result = self
            .client
            .update_item()
            .table_name(table)
            .key("id", AttributeValue::S(id.to_string()))
            .update_expression("SET #status = :resolved, resolved_at = :at")
            .condition_expression(
                "#status = :open AND (attribute_not_exists(expires_at) OR expires_at > :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(
                ":resolved",
                AttributeValue::S(DeadLetterStatus::Resolved.as_str().into()),
            )
            .expression_attribute_values(
                ":open",
                AttributeValue::S(DeadLetterStatus::Open.as_str().into()),
            )
            .expression_attribute_values(":at", AttributeValue::S(timestamp(at)))
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .send()
            .await;
        conditional(result, "UpdateItem", table)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};

    use super::super::TTL_ATTRIBUTE;
    use super::super::item::literal;
    use super::*;

    #[test]
    fn round_trips() {
        let letter = DeadLetter {
            id: DeadLetter::id_for_event("c1", "e1"),
            stage: "worker:mailchimp".into(),
            queue: Some("mailchimp".into()),
            event_id: Some("e1".into()),
            record_key: None,
            connection: Some("c1".into()),
            error_class: "permanent".into(),
            reason: "400 Invalid Resource".into(),
            vendor_request_id: None,
            attempts: 3,
            payload: "{}".into(),
            status: DeadLetterStatus::Open,
            created_at: DateTime::from_timestamp(1_700_000_000, 7).unwrap(),
            resolved_at: None,
            expires_at: Some(DateTime::from_timestamp(1_800_000_000, 0).unwrap()),
        };
        let item = to_item(&letter).unwrap();
        assert_eq!(item["status"].as_s().unwrap(), "open");
        assert_eq!(from_item(item).unwrap(), letter);
    }

    // The stored layout, attribute by attribute: items already in the table must keep reading,
    // and new ones must look the same.
    #[test]
    fn items_keep_their_layout() {
        let t = |secs, nanos| DateTime::from_timestamp(secs, nanos).unwrap();
        let full = DeadLetter {
            id: "event:c1:e1".into(),
            stage: "worker:mailchimp".into(),
            queue: Some("mailchimp".into()),
            event_id: Some("e1".into()),
            record_key: Some("freshbooks:abc:invoice:42".into()),
            connection: Some("c1".into()),
            error_class: "permanent".into(),
            reason: "400".into(),
            vendor_request_id: Some("req-1".into()),
            attempts: 3,
            payload: "{}".into(),
            status: DeadLetterStatus::Resolved,
            created_at: t(1_700_000_000, 5),
            resolved_at: Some(t(1_700_000_060, 0)),
            expires_at: Some(t(1_800_000_000, 1)),
        };
        let stored = literal([
            ("id", S("event:c1:e1".into())),
            ("stage", S("worker:mailchimp".into())),
            ("queue", S("mailchimp".into())),
            ("event_id", S("e1".into())),
            ("record_key", S("freshbooks:abc:invoice:42".into())),
            ("connection", S("c1".into())),
            ("error_class", S("permanent".into())),
            ("reason", S("400".into())),
            ("vendor_request_id", S("req-1".into())),
            ("attempts", N("3".into())),
            ("payload", S("{}".into())),
            ("status", S("resolved".into())),
            ("created_at", S("2023-11-14T22:13:20.000000005Z".into())),
            ("resolved_at", S("2023-11-14T22:14:20.000000000Z".into())),
            // Rounded up to whole seconds.
            ("expires_at", N("1800000001".into())),
        ]);
        assert_eq!(to_item(&full).unwrap(), stored);
        let read = DeadLetter {
            expires_at: Some(t(1_800_000_001, 0)),
            ..full.clone()
        };
        assert_eq!(from_item(stored).unwrap(), read);

        // Every optional attribute left out (absent, not null).
        let bare = DeadLetter {
            queue: None,
            event_id: None,
            record_key: None,
            connection: None,
            vendor_request_id: None,
            status: DeadLetterStatus::Open,
            resolved_at: None,
            expires_at: None,
            ..full
        };
        let stored = literal([
            ("id", S("event:c1:e1".into())),
            ("stage", S("worker:mailchimp".into())),
            ("error_class", S("permanent".into())),
            ("reason", S("400".into())),
            ("attempts", N("3".into())),
            ("payload", S("{}".into())),
            ("status", S("open".into())),
            ("created_at", S("2023-11-14T22:13:20.000000005Z".into())),
        ]);
        assert_eq!(to_item(&bare).unwrap(), stored);
        assert_eq!(from_item(stored.clone()).unwrap(), bare);
        // A NULL (never written here, but valid DynamoDB) reads as absent too.
        let mut nulls = stored;
        nulls.insert("queue".into(), AttributeValue::Null(true));
        nulls.insert(TTL_ATTRIBUTE.into(), AttributeValue::Null(true));
        assert_eq!(from_item(nulls).unwrap(), bare);
    }

    #[test]
    fn unreadable_items_are_corrupt_not_panics() {
        let stored = literal([("id", S("x".into())), ("attempts", S("three".into()))]);
        assert!(matches!(
            from_item(stored),
            Err(crate::ports::PortError::Corrupt { .. })
        ));
    }
}
