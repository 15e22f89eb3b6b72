//! Audit trail and dead letters: round trips, index queries, ordering, expiry.

use chrono::{DateTime, Duration as Span, Utc};
use mlc::event::Origin;
use mlc::ports::{AuditEntry, DeadLetter, DeadLetterStatus, Outcome};

use super::super::StoreFixture;
use super::unique;

/// Expiries in whole seconds: the AWS store keeps `expires_at` as DynamoDB TTL epoch seconds
/// (rounded up), so only whole seconds round-trip on every store.
fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

fn audit_entry(record_key: &str, at: DateTime<Utc>, outcome: Outcome) -> AuditEntry {
    AuditEntry {
        record_key: record_key.to_string(),
        at,
        event_id: unique("evt"),
        connection: "acme-books-to-mailchimp".into(),
        target: "mailchimp".into(),
        origin: Some(Origin::Webhook),
        operation: "upsert_order".into(),
        outcome,
        before: Some(serde_json::json!({"total": "10.00", "lines": [1, 2]})),
        written: Some(serde_json::json!({"total": "12.50"})),
        error_class: (outcome == Outcome::Retrying).then(|| "transient".into()),
        error_message: (outcome == Outcome::Retrying).then(|| "503 from vendor".into()),
        vendor_request_id: Some("req-1".into()),
        attempt: 1,
        duration_ms: 42,
        message_id: Some("m-1".into()),
        expires_at: Some(whole_seconds(at + Span::days(30))),
    }
}

/// Entries by record (newest first, limited) and by outcome + day via the index; expired
/// entries are not returned.
pub async fn audit(fx: &StoreFixture) {
    let s = fx.store.as_ref();
    let t0 = fx.now();
    let record = format!("freshbooks:6BApk:invoice:{}", unique("inv"));
    let first = audit_entry(&record, t0, Outcome::Retrying);
    let mut second = audit_entry(&record, t0 + Span::milliseconds(1250), Outcome::Synced);
    second.origin = None;
    second.before = None;
    second.vendor_request_id = None;
    let third = audit_entry(&record, t0 + Span::seconds(2), Outcome::Unchanged);
    for entry in [&second, &first, &third] {
        s.record_audit(entry).await.expect("record");
    }

    let trail = s.audit_by_record(&record, 10).await.expect("by record");
    assert_eq!(trail, vec![third.clone(), second.clone(), first.clone()]);
    let top = s.audit_by_record(&record, 2).await.expect("by record");
    assert_eq!(top, vec![third.clone(), second.clone()]);
    assert!(
        s.audit_by_record(&record, 0)
            .await
            .expect("limit 0")
            .is_empty()
    );
    assert!(
        s.audit_by_record(&unique("none"), 10)
            .await
            .expect("unknown")
            .is_empty()
    );

    // Outcome + day: every entry of that outcome on that day, whatever the record.
    let other_record = format!("quickbooks:1:customer:{}", unique("c"));
    let other = audit_entry(&other_record, t0 + Span::seconds(3), Outcome::Synced);
    s.record_audit(&other).await.expect("record");
    let synced = s
        .audit_by_outcome(Outcome::Synced, t0.date_naive(), 100)
        .await
        .expect("by outcome");
    let ours: Vec<_> = synced
        .into_iter()
        .filter(|e| e.record_key == record || e.record_key == other_record)
        .collect();
    // `other` and `second` may fall on different days only within a second of midnight.
    if other.day() == second.day() {
        assert_eq!(ours, vec![other.clone(), second.clone()]);
    }
    let retrying = s
        .audit_by_outcome(Outcome::Retrying, first.day(), 100)
        .await
        .expect("by outcome");
    assert!(retrying.contains(&first));
    assert!(!retrying.contains(&second));
    let next_day = first.day().succ_opt().expect("a next day");
    assert!(
        !s.audit_by_outcome(Outcome::Retrying, next_day, 100)
            .await
            .expect("other day")
            .contains(&first)
    );

    // An entry past its expiry is gone for readers even before TTL deletes it.
    let expired_record = format!("stripe:acct:charge:{}", unique("ch"));
    let mut expired = audit_entry(&expired_record, t0, Outcome::Skipped);
    expired.expires_at = Some(t0 + Span::seconds(10));
    s.record_audit(&expired).await.expect("record");
    assert_eq!(
        s.audit_by_record(&expired_record, 10).await.expect("read"),
        vec![expired.clone()]
    );
    fx.clock.advance(Span::seconds(10));
    assert!(
        s.audit_by_record(&expired_record, 10)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        !s.audit_by_outcome(Outcome::Skipped, expired.day(), 100)
            .await
            .expect("by outcome")
            .contains(&expired)
    );
}

fn dead_letter(created_at: DateTime<Utc>) -> DeadLetter {
    let event = unique("evt");
    DeadLetter {
        id: DeadLetter::id_for_event("acme-books-to-mailchimp", &event),
        stage: "worker:mailchimp".into(),
        queue: Some("mailchimp".into()),
        event_id: Some(event),
        record_key: Some("freshbooks:6BApk:invoice:42".into()),
        connection: Some("acme-books-to-mailchimp".into()),
        error_class: "permanent".into(),
        reason: "400 Invalid Resource: email looks fake".into(),
        vendor_request_id: Some("mc-req-9".into()),
        attempts: 3,
        payload: r#"{"v":1}"#.into(),
        status: DeadLetterStatus::Open,
        created_at,
        resolved_at: None,
        expires_at: Some(whole_seconds(created_at + Span::days(14))),
    }
}

/// Put/get, the status index newest first, resolve exactly once, re-open, expiry.
pub async fn dead_letters(fx: &StoreFixture) {
    let s = fx.store.as_ref();
    let t0 = fx.now();
    let older = dead_letter(t0);
    let newer = dead_letter(t0 + Span::milliseconds(1500));
    s.put_dead_letter(&older).await.expect("put");
    s.put_dead_letter(&newer).await.expect("put");
    assert_eq!(
        s.get_dead_letter(&older.id).await.expect("get"),
        Some(older.clone())
    );
    assert_eq!(s.get_dead_letter(&unique("none")).await.expect("get"), None);

    // The tables are fresh per fixture, so these are all the open letters.
    let open = s
        .list_dead_letters(DeadLetterStatus::Open, 10)
        .await
        .expect("list");
    assert_eq!(open, vec![newer.clone(), older.clone()]);
    assert_eq!(
        s.list_dead_letters(DeadLetterStatus::Open, 1)
            .await
            .expect("list"),
        vec![newer.clone()]
    );

    let t1 = t0 + Span::seconds(5);
    assert!(s.resolve_dead_letter(&older.id, t1).await.expect("resolve"));
    assert!(
        !s.resolve_dead_letter(&older.id, t1)
            .await
            .expect("resolve again"),
        "only an open letter resolves"
    );
    assert!(
        !s.resolve_dead_letter(&unique("none"), t1)
            .await
            .expect("resolve unknown")
    );
    let resolved = s
        .get_dead_letter(&older.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(resolved.status, DeadLetterStatus::Resolved);
    assert_eq!(resolved.resolved_at, Some(t1));
    assert_eq!(
        s.list_dead_letters(DeadLetterStatus::Open, 10)
            .await
            .expect("list"),
        vec![newer.clone()]
    );
    assert_eq!(
        s.list_dead_letters(DeadLetterStatus::Resolved, 10)
            .await
            .expect("list"),
        vec![resolved]
    );

    // Putting the same id again re-opens it.
    s.put_dead_letter(&older).await.expect("re-open");
    assert_eq!(
        s.get_dead_letter(&older.id)
            .await
            .expect("get")
            .map(|d| d.status),
        Some(DeadLetterStatus::Open)
    );

    // Past its expiry a letter is absent and cannot be resolved.
    let mut short = dead_letter(t0 + Span::seconds(2));
    short.expires_at = Some(t0 + Span::seconds(20));
    s.put_dead_letter(&short).await.expect("put");
    fx.clock.advance(Span::seconds(20));
    assert_eq!(s.get_dead_letter(&short.id).await.expect("get"), None);
    assert!(
        !s.resolve_dead_letter(&short.id, fx.now())
            .await
            .expect("resolve")
    );
    assert!(
        !s.list_dead_letters(DeadLetterStatus::Open, 10)
            .await
            .expect("list")
            .iter()
            .any(|d| d.id == short.id)
    );
}
