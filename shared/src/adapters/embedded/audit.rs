//! The audit trail, keyed and indexed as the DynamoDB audit table is.

use async_trait::async_trait;
use chrono::{NaiveDate, SecondsFormat};
use rusqlite::named_params;

use super::db::{EmbeddedDb, LIVE, db_err, from_json, limit, ms, to_json};
use crate::ports::{AuditEntry, AuditLog, Outcome, PortResult};

/// The sort key: `<at RFC3339 millis Z>#<event_id>#<connection>`. Fixed-width time first, so
/// ordering by it is ordering by time.
fn sort_key(entry: &AuditEntry) -> String {
    format!(
        "{}#{}#{}",
        entry.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        entry.event_id,
        entry.connection
    )
}

/// The outcome+day index partition: `<outcome>#<YYYY-MM-DD>`.
fn outcome_day(outcome: Outcome, day: NaiveDate) -> String {
    format!("{}#{}", outcome.as_str(), day.format("%Y-%m-%d"))
}

#[async_trait]
impl AuditLog for EmbeddedDb {
    async fn record_audit(&self, entry: &AuditEntry) -> PortResult<()> {
        let item = to_json("audit entry", entry)?;
        let record_key = entry.record_key.clone();
        let sk = sort_key(entry);
        let by_outcome = outcome_day(entry.outcome, entry.day());
        let expires = entry.expires_at.map(ms);
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO audit (record_key, sk, outcome_day, expires_at_ms, item)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (record_key, sk) DO UPDATE SET
                     outcome_day = excluded.outcome_day,
                     expires_at_ms = excluded.expires_at_ms,
                     item = excluded.item",
                rusqlite::params![record_key, sk, by_outcome, expires, item],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn audit_by_record(&self, record_key: &str, max: usize) -> PortResult<Vec<AuditEntry>> {
        self.audit_newest_first("record_key", record_key.to_string(), max)
            .await
    }

    async fn audit_by_outcome(
        &self,
        outcome: Outcome,
        day: NaiveDate,
        max: usize,
    ) -> PortResult<Vec<AuditEntry>> {
        self.audit_newest_first("outcome_day", outcome_day(outcome, day), max)
            .await
    }
}

impl EmbeddedDb {
    /// Live entries whose indexed `column` equals `value`, newest first. `column` is one of
    /// this module's constants, never input.
    async fn audit_newest_first(
        &self,
        column: &'static str,
        value: String,
        max: usize,
    ) -> PortResult<Vec<AuditEntry>> {
        let now = ms(self.now());
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT item FROM audit WHERE {column} = :value AND {LIVE}
                     ORDER BY sk DESC LIMIT :limit"
                ))
                .map_err(db_err)?;
            let rows = stmt
                .query_map(
                    named_params! { ":value": value, ":now": now, ":limit": limit(max) },
                    |r| r.get::<_, String>(0),
                )
                .map_err(db_err)?;
            rows.map(|json| from_json("audit entry", &json.map_err(db_err)?))
                .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};

    use super::*;
    use crate::adapters::embedded::test_support::test_db;
    use crate::event::Origin;
    use crate::ports::Clock;

    fn entry(record: &str, at: DateTime<Utc>, event: &str, outcome: Outcome) -> AuditEntry {
        AuditEntry {
            record_key: record.to_string(),
            at,
            event_id: event.to_string(),
            connection: "fb-to-mc".to_string(),
            target: "mailchimp".to_string(),
            origin: Some(Origin::Webhook),
            operation: "update".to_string(),
            outcome,
            before: Some(serde_json::json!({"email": "old@example.com"})),
            written: Some(serde_json::json!({"email": "new@example.com", "total": 12.5})),
            error_class: None,
            error_message: None,
            vendor_request_id: Some("req-1".to_string()),
            attempt: 1,
            duration_ms: 42,
            message_id: Some("m-1".to_string()),
            expires_at: None,
        }
    }

    #[tokio::test]
    async fn by_record_is_newest_first_and_round_trips() {
        let (db, clock) = test_db();
        let t0 = clock.now();
        let first = entry("fb:acc:client:1", t0, "e1", Outcome::Synced);
        let second = entry(
            "fb:acc:client:1",
            t0 + Duration::seconds(5),
            "e2",
            Outcome::Unchanged,
        );
        let third = entry(
            "fb:acc:client:1",
            t0 + Duration::milliseconds(10),
            "e3",
            Outcome::Retrying,
        );
        let other = entry("fb:acc:client:2", t0, "e4", Outcome::Synced);
        for e in [&first, &second, &third, &other] {
            db.record_audit(e).await.unwrap();
        }
        let trail = db.audit_by_record("fb:acc:client:1", 10).await.unwrap();
        assert_eq!(trail, vec![second.clone(), third, first]);
        let top = db.audit_by_record("fb:acc:client:1", 1).await.unwrap();
        assert_eq!(top, vec![second]);
        assert!(db.audit_by_record("nothing", 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn by_outcome_filters_outcome_and_utc_day() {
        let (db, _clock) = test_db();
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let late = day.and_hms_opt(23, 59, 59).unwrap().and_utc();
        let early = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
        let next_day = late + Duration::seconds(1);
        let a = entry("r:1", early, "e1", Outcome::DeadLettered);
        let b = entry("r:2", late, "e2", Outcome::DeadLettered);
        let c = entry("r:3", late, "e3", Outcome::Synced);
        let d = entry("r:4", next_day, "e4", Outcome::DeadLettered);
        for e in [&a, &b, &c, &d] {
            db.record_audit(e).await.unwrap();
        }
        let dead = db
            .audit_by_outcome(Outcome::DeadLettered, day, 10)
            .await
            .unwrap();
        assert_eq!(dead, vec![b, a]);
        let synced = db.audit_by_outcome(Outcome::Synced, day, 10).await.unwrap();
        assert_eq!(synced, vec![c]);
        let next = db
            .audit_by_outcome(Outcome::DeadLettered, next_day.date_naive(), 10)
            .await
            .unwrap();
        assert_eq!(next, vec![d]);
    }

    #[tokio::test]
    async fn same_key_replaces_and_expired_entries_read_as_absent() {
        let (db, clock) = test_db();
        let t0 = clock.now();
        let mut e = entry("r:1", t0, "e1", Outcome::Retrying);
        db.record_audit(&e).await.unwrap();
        e.outcome = Outcome::Synced;
        e.expires_at = Some(t0 + Duration::days(1));
        db.record_audit(&e).await.unwrap();
        assert_eq!(
            db.audit_by_record("r:1", 10).await.unwrap(),
            vec![e.clone()]
        );
        // The replaced item left the old outcome's index too.
        assert!(
            db.audit_by_outcome(Outcome::Retrying, t0.date_naive(), 10)
                .await
                .unwrap()
                .is_empty()
        );
        clock.advance(Duration::days(1));
        assert!(db.audit_by_record("r:1", 10).await.unwrap().is_empty());
        assert!(
            db.audit_by_outcome(Outcome::Synced, t0.date_naive(), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(db.purge_expired().await.unwrap(), 1);
    }
}
