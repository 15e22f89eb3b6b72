//! [`AuditLog`] over the audit table: `pk` = record key, `sk` = `<at, millis>#<event>#<connection>`,
//! GSI `by_outcome_day` on `outcome_day` = `<outcome>#<YYYY-MM-DD>` + `sk`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::DynamoStore;
use super::format;
use super::item::{self, Item};
use crate::event::Origin;
use crate::ports::{AuditEntry, AuditLog, Outcome, PortResult};

/// The outcome + day index.
pub(crate) const OUTCOME_DAY_INDEX: &str = "by_outcome_day";

/// Above this many bytes of `before` + `written` JSON the snapshots are left out of the item, so
/// the audit write itself stays under DynamoDB's 400 KB item limit (they are meant to be trimmed
/// by the caller; this is the backstop that keeps an oversized one from failing the message).
const MAX_SNAPSHOT_BYTES: usize = 300_000;
/// The snapshot attributes (JSON text) that count towards [`MAX_SNAPSHOT_BYTES`].
const SNAPSHOTS: [&str; 2] = ["before", "written"];

fn sort_key(entry: &AuditEntry) -> String {
    format!(
        "{}#{}#{}",
        entry.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        entry.event_id,
        entry.connection
    )
}

fn outcome_day(outcome: Outcome, day: NaiveDate) -> String {
    format!("{outcome}#{}", day.format("%Y-%m-%d"))
}

const WHAT: &str = "audit entry";

/// The stored layout of an [`AuditEntry`]: the record key is the partition key `pk`; the sort
/// and index keys are derived ([`to_item`]) and never read back.
#[derive(Serialize, Deserialize)]
#[serde(remote = "AuditEntry")]
struct Stored {
    #[serde(rename = "pk")]
    record_key: String,
    #[serde(serialize_with = "format::time")]
    at: DateTime<Utc>,
    event_id: String,
    connection: String,
    target: String,
    origin: Option<Origin>,
    operation: String,
    outcome: Outcome,
    #[serde(with = "format::json", default)]
    before: Option<serde_json::Value>,
    #[serde(with = "format::json", default)]
    written: Option<serde_json::Value>,
    error_class: Option<String>,
    error_message: Option<String>,
    vendor_request_id: Option<String>,
    attempt: u32,
    duration_ms: u64,
    message_id: Option<String>,
    #[serde(with = "format::ttl", default)]
    expires_at: Option<DateTime<Utc>>,
}

fn to_item(entry: &AuditEntry) -> PortResult<Item> {
    let mut item = item::to_item(entry, Stored::serialize, WHAT)?;
    item.insert("sk".into(), AttributeValue::S(sort_key(entry)));
    item.insert(
        "outcome_day".into(),
        AttributeValue::S(outcome_day(entry.outcome, entry.day())),
    );
    let snapshot_bytes: usize = SNAPSHOTS
        .iter()
        .filter_map(|name| item.get(*name)?.as_s().ok())
        .map(String::len)
        .sum();
    if snapshot_bytes > MAX_SNAPSHOT_BYTES {
        for name in SNAPSHOTS {
            item.remove(name);
        }
        item.insert(
            "snapshots_omitted_bytes".into(),
            AttributeValue::N(snapshot_bytes.to_string()),
        );
    }
    Ok(item)
}

fn from_item(item: Item) -> PortResult<AuditEntry> {
    item::from_item(item, Stored::deserialize, WHAT)
}

#[async_trait]
impl AuditLog for DynamoStore {
    async fn record_audit(&self, entry: &AuditEntry) -> PortResult<()> {
        self.put(&self.tables.audit, to_item(entry)?).await
    }

    async fn audit_by_record(&self, record_key: &str, limit: usize) -> PortResult<Vec<AuditEntry>> {
        let table = &self.tables.audit;
        let query = self
            .client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(record_key.to_string()))
            .scan_index_forward(false);
        self.query_live(query, table, limit)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    async fn audit_by_outcome(
        &self,
        outcome: Outcome,
        day: NaiveDate,
        limit: usize,
    ) -> PortResult<Vec<AuditEntry>> {
        let table = &self.tables.audit;
        let query = self
            .client
            .query()
            .table_name(table)
            .index_name(OUTCOME_DAY_INDEX)
            .key_condition_expression("outcome_day = :od")
            .expression_attribute_values(":od", AttributeValue::S(outcome_day(outcome, day)))
            .scan_index_forward(false);
        self.query_live(query, table, limit)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    use chrono::DateTime;

    use super::super::TTL_ATTRIBUTE;
    use super::super::item::literal;
    use super::*;

    fn entry() -> AuditEntry {
        AuditEntry {
            record_key: "freshbooks:abc:invoice:42".into(),
            at: DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap(),
            event_id: "evt-1".into(),
            connection: "fb-to-mc".into(),
            target: "mailchimp".into(),
            origin: Some(Origin::Webhook),
            operation: "upsert_order".into(),
            outcome: Outcome::Synced,
            before: Some(serde_json::json!({"total": "1.00"})),
            written: None,
            error_class: None,
            error_message: None,
            vendor_request_id: Some("req-9".into()),
            attempt: 2,
            duration_ms: 31,
            message_id: Some("m-1".into()),
            expires_at: Some(DateTime::from_timestamp(1_800_000_000, 0).unwrap()),
        }
    }

    #[test]
    fn keys_follow_the_layout() {
        let item = to_item(&entry()).unwrap();
        let s = |k: &str| item[k].as_s().unwrap().clone();
        assert_eq!(s("sk"), "2023-11-14T22:13:20.123Z#evt-1#fb-to-mc");
        assert_eq!(s("outcome_day"), "synced#2023-11-14");
        assert_eq!(item[TTL_ATTRIBUTE].as_n().unwrap(), "1800000000");
        assert_eq!(from_item(item).unwrap(), entry());
    }

    // The stored layout, attribute by attribute: items already in the table must keep reading,
    // and new ones must look the same.
    #[test]
    fn items_keep_their_layout() {
        let full = AuditEntry {
            written: Some(serde_json::json!({"email_address": "a@example.com", "n": 1})),
            error_class: Some("transient".into()),
            error_message: Some("503".into()),
            ..entry()
        };
        let stored = literal([
            ("pk", S("freshbooks:abc:invoice:42".into())),
            ("sk", S("2023-11-14T22:13:20.123Z#evt-1#fb-to-mc".into())),
            ("outcome_day", S("synced#2023-11-14".into())),
            ("at", S("2023-11-14T22:13:20.123456789Z".into())),
            ("event_id", S("evt-1".into())),
            ("connection", S("fb-to-mc".into())),
            ("target", S("mailchimp".into())),
            ("origin", S("webhook".into())),
            ("operation", S("upsert_order".into())),
            ("outcome", S("synced".into())),
            ("before", S(r#"{"total":"1.00"}"#.into())),
            (
                "written",
                S(r#"{"email_address":"a@example.com","n":1}"#.into()),
            ),
            ("error_class", S("transient".into())),
            ("error_message", S("503".into())),
            ("vendor_request_id", S("req-9".into())),
            ("attempt", N("2".into())),
            ("duration_ms", N("31".into())),
            ("message_id", S("m-1".into())),
            ("expires_at", N("1800000000".into())),
        ]);
        assert_eq!(to_item(&full).unwrap(), stored);
        assert_eq!(from_item(stored).unwrap(), full);

        // Every optional attribute left out (absent, not null).
        let bare = AuditEntry {
            origin: None,
            before: None,
            vendor_request_id: None,
            message_id: None,
            expires_at: None,
            ..entry()
        };
        let stored = literal([
            ("pk", S("freshbooks:abc:invoice:42".into())),
            ("sk", S("2023-11-14T22:13:20.123Z#evt-1#fb-to-mc".into())),
            ("outcome_day", S("synced#2023-11-14".into())),
            ("at", S("2023-11-14T22:13:20.123456789Z".into())),
            ("event_id", S("evt-1".into())),
            ("connection", S("fb-to-mc".into())),
            ("target", S("mailchimp".into())),
            ("operation", S("upsert_order".into())),
            ("outcome", S("synced".into())),
            ("attempt", N("2".into())),
            ("duration_ms", N("31".into())),
        ]);
        assert_eq!(to_item(&bare).unwrap(), stored);
        assert_eq!(from_item(stored).unwrap(), bare);
    }

    #[test]
    fn unreadable_items_are_corrupt_not_panics() {
        let mut stored = to_item(&entry()).unwrap();
        stored.insert("before".into(), S("{not json".into()));
        assert!(matches!(
            from_item(stored),
            Err(crate::ports::PortError::Corrupt { .. })
        ));
    }

    #[test]
    fn oversized_snapshots_are_left_out() {
        let mut big = entry();
        big.written = Some(serde_json::Value::String("x".repeat(MAX_SNAPSHOT_BYTES)));
        let item = to_item(&big).unwrap();
        assert!(!item.contains_key("before") && !item.contains_key("written"));
        // The JSON text's size: the 300 000 x's, their quotes and `{"total":"1.00"}`.
        assert_eq!(
            item["snapshots_omitted_bytes"],
            N((MAX_SNAPSHOT_BYTES + 2 + 16).to_string())
        );
        assert_eq!(
            from_item(item).unwrap(),
            AuditEntry {
                before: None,
                written: None,
                ..big
            }
        );
    }
}
