use chrono::Duration;

use super::*;
use crate::adapters::embedded::test_support::test_db;
use crate::ports::Clock;
use crate::vendor::Vendor;

#[tokio::test]
async fn id_map_is_per_connection_and_replaces() {
    let (db, clock) = test_db();
    assert_eq!(db.get_mapping("c1", "client:1").await.unwrap(), None);
    let first = IdMapping {
        target_id: "cus_1".to_string(),
        fingerprint: "f1".to_string(),
        updated_at: clock.now(),
    };
    db.put_mapping("c1", "client:1", &first).await.unwrap();
    assert_eq!(db.get_mapping("c1", "client:1").await.unwrap(), Some(first));
    assert_eq!(db.get_mapping("c2", "client:1").await.unwrap(), None);
    let second = IdMapping {
        target_id: "cus_1".to_string(),
        fingerprint: "f2".to_string(),
        updated_at: clock.now() + Duration::nanoseconds(1_234_567),
    };
    db.put_mapping("c1", "client:1", &second).await.unwrap();
    assert_eq!(
        db.get_mapping("c1", "client:1").await.unwrap(),
        Some(second)
    );
}

#[tokio::test]
async fn cursors_round_trip() {
    let (db, _) = test_db();
    assert_eq!(db.get_cursor("fb:acc:invoices").await.unwrap(), None);
    db.put_cursor("fb:acc:invoices", "2026-03-02T00:00:00Z")
        .await
        .unwrap();
    db.put_cursor("fb:acc:invoices", "2026-03-03T00:00:00Z")
        .await
        .unwrap();
    assert_eq!(
        db.get_cursor("fb:acc:invoices").await.unwrap().as_deref(),
        Some("2026-03-03T00:00:00Z")
    );
}

#[tokio::test]
async fn callback_verifies_only_from_pending() {
    let (db, clock) = test_db();
    let t0 = clock.now();
    let record = CallbackRecord {
        route_id: "r-1".to_string(),
        vendor: Vendor::Freshbooks,
        account: "acc".to_string(),
        callback_id: Some("77".to_string()),
        event: "invoice".to_string(),
        credentials: "credentials/fb".to_string(),
        status: CallbackStatus::Pending,
        updated_at: t0,
    };
    assert!(!db.mark_callback_verified("r-1", t0).await.unwrap());
    db.put_callback(&record).await.unwrap();
    assert_eq!(db.get_callback("r-1").await.unwrap(), Some(record.clone()));
    let at = t0 + Duration::seconds(3);
    assert!(db.mark_callback_verified("r-1", at).await.unwrap());
    let verified = db.get_callback("r-1").await.unwrap().unwrap();
    assert_eq!(verified.status, CallbackStatus::Verified);
    assert_eq!(verified.updated_at, at);
    assert!(!db.mark_callback_verified("r-1", at).await.unwrap());
    // Re-registering puts it back to pending.
    db.put_callback(&record).await.unwrap();
    assert!(db.mark_callback_verified("r-1", at).await.unwrap());
}

#[tokio::test]
async fn blobs_round_trip_and_expire() {
    let (db, clock) = test_db();
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    db.put_blob("body:1", &big, None).await.unwrap();
    db.put_blob("body:2", b"short", Some(clock.now() + Duration::hours(1)))
        .await
        .unwrap();
    assert_eq!(db.get_blob("body:1").await.unwrap(), Some(big));
    assert_eq!(
        db.get_blob("body:2").await.unwrap().as_deref(),
        Some(&b"short"[..])
    );
    assert_eq!(db.get_blob("missing").await.unwrap(), None);
    clock.advance(Duration::hours(1));
    assert_eq!(db.get_blob("body:2").await.unwrap(), None);
    assert_eq!(db.purge_expired().await.unwrap(), 1);
    assert!(db.get_blob("body:1").await.unwrap().is_some());
}

#[tokio::test]
async fn connections_round_trip_as_json() {
    let (db, _) = test_db();
    assert_eq!(db.get_connections().await.unwrap(), None);
    let example = include_str!("../../../../../connections.example.toml");
    let set = ConnectionSet::from_toml(example, "connections.example.toml").unwrap();
    assert!(!set.connections.is_empty());
    db.put_connections(&set).await.unwrap();
    assert_eq!(db.get_connections().await.unwrap(), Some(set));
    db.put_connections(&ConnectionSet::default()).await.unwrap();
    assert_eq!(
        db.get_connections().await.unwrap(),
        Some(ConnectionSet::default())
    );
}
