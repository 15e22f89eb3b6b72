//! [`AuditLog`] over the audit table: `pk` = record key, `sk` = `<at, millis>#<event>#<connection>`,
//! GSI `by_outcome_day` on `outcome_day` = `<outcome>#<YYYY-MM-DD>` + `sk`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{NaiveDate, SecondsFormat};

use super::item::{Fields, Item, ItemBuilder};
use super::{DynamoStore, TTL_ATTRIBUTE, timestamp, ttl_secs};
use crate::ports::{AuditEntry, AuditLog, Outcome, PortResult};

/// The outcome + day index.
pub const OUTCOME_DAY_INDEX: &str = "by_outcome_day";

/// Above this many bytes of `before` + `written` JSON the snapshots are left out of the item, so
/// the audit write itself stays under DynamoDB's 400 KB item limit (they are meant to be trimmed
/// by the caller; this is the backstop that keeps an oversized one from failing the message).
const MAX_SNAPSHOT_BYTES: usize = 300_000;

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

fn to_item(entry: &AuditEntry) -> Item {
    let json = |v: &Option<serde_json::Value>| v.as_ref().map(serde_json::Value::to_string);
    let (mut before, mut written) = (json(&entry.before), json(&entry.written));
    let snapshot_bytes =
        before.as_ref().map_or(0, String::len) + written.as_ref().map_or(0, String::len);
    let omitted = (snapshot_bytes > MAX_SNAPSHOT_BYTES).then(|| {
        before = None;
        written = None;
        snapshot_bytes
    });
    ItemBuilder::new()
        .s("pk", &entry.record_key)
        .s("sk", sort_key(entry))
        .s("outcome_day", outcome_day(entry.outcome, entry.day()))
        .s("at", timestamp(entry.at))
        .s("event_id", &entry.event_id)
        .s("connection", &entry.connection)
        .s("target", &entry.target)
        .opt_s("origin", entry.origin.map(|o| o.as_str()))
        .s("operation", &entry.operation)
        .s("outcome", entry.outcome.as_str())
        .opt_s("before", before)
        .opt_s("written", written)
        .opt_n("snapshots_omitted_bytes", omitted)
        .opt_s("error_class", entry.error_class.as_deref())
        .opt_s("error_message", entry.error_message.as_deref())
        .opt_s("vendor_request_id", entry.vendor_request_id.as_deref())
        .n("attempt", entry.attempt)
        .n("duration_ms", entry.duration_ms)
        .opt_s("message_id", entry.message_id.as_deref())
        .opt_n(TTL_ATTRIBUTE, entry.expires_at.map(ttl_secs))
        .build()
}

fn from_item(item: &Item) -> PortResult<AuditEntry> {
    let f = Fields::new(item, "audit entry");
    let owned = |v: Option<&str>| v.map(str::to_string);
    Ok(AuditEntry {
        record_key: f.s("pk")?.to_string(),
        at: f.time("at")?,
        event_id: f.s("event_id")?.to_string(),
        connection: f.s("connection")?.to_string(),
        target: f.s("target")?.to_string(),
        origin: f.opt_enum("origin")?,
        operation: f.s("operation")?.to_string(),
        outcome: f.parsed("outcome")?,
        before: f.opt_json("before")?,
        written: f.opt_json("written")?,
        error_class: owned(f.opt_s("error_class")?),
        error_message: owned(f.opt_s("error_message")?),
        vendor_request_id: owned(f.opt_s("vendor_request_id")?),
        attempt: f.n("attempt")?,
        duration_ms: f.n("duration_ms")?,
        message_id: owned(f.opt_s("message_id")?),
        expires_at: f.opt_epoch(TTL_ATTRIBUTE)?,
    })
}

#[async_trait]
impl AuditLog for DynamoStore {
    async fn record_audit(&self, entry: &AuditEntry) -> PortResult<()> {
        self.put(&self.tables.audit, to_item(entry)).await
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
            .iter()
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
            .iter()
            .map(from_item)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    use chrono::DateTime;

    use super::super::item::literal;
    use super::*;
    use crate::event::Origin;

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
        let item = to_item(&entry());
        let s = |k: &str| item[k].as_s().unwrap().clone();
        assert_eq!(s("sk"), "2023-11-14T22:13:20.123Z#evt-1#fb-to-mc");
        assert_eq!(s("outcome_day"), "synced#2023-11-14");
        assert_eq!(item[TTL_ATTRIBUTE].as_n().unwrap(), "1800000000");
        assert_eq!(from_item(&item).unwrap(), entry());
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
        assert_eq!(to_item(&full), stored);
        assert_eq!(from_item(&stored).unwrap(), full);

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
        assert_eq!(to_item(&bare), stored);
        assert_eq!(from_item(&stored).unwrap(), bare);
    }

    #[test]
    fn unreadable_items_are_corrupt_not_panics() {
        let mut stored = to_item(&entry());
        stored.insert("before".into(), S("{not json".into()));
        assert!(matches!(
            from_item(&stored),
            Err(crate::ports::PortError::Corrupt { .. })
        ));
    }

    #[test]
    fn oversized_snapshots_are_left_out() {
        let mut big = entry();
        big.written = Some(serde_json::Value::String("x".repeat(MAX_SNAPSHOT_BYTES)));
        let item = to_item(&big);
        assert!(!item.contains_key("before") && !item.contains_key("written"));
        // The JSON text's size: the 300 000 x's, their quotes and `{"total":"1.00"}`.
        assert_eq!(
            item["snapshots_omitted_bytes"],
            N((MAX_SNAPSHOT_BYTES + 2 + 16).to_string())
        );
        assert_eq!(
            from_item(&item).unwrap(),
            AuditEntry {
                before: None,
                written: None,
                ..big
            }
        );
    }
}
