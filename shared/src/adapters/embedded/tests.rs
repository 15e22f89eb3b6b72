//! Opening, reopening and migrating database files.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Span;

use super::test_support::{TempDir, test_db};
use super::*;
use crate::ports::{
    Begin, Clock, Cursors, DeadLetterStatus, DeadLetters, Idempotency, ManualClock, Outcome,
    PortError, Queue,
};

#[tokio::test]
async fn a_reopened_file_keeps_its_data() {
    let dir = TempDir::new();
    let path = dir.path().join("local.db");
    let clock = Arc::new(ManualClock::at_unix(1_772_000_000));
    let t0 = clock.now();
    {
        let db = EmbeddedDb::open(&path, clock.clone()).unwrap();
        assert_eq!(db.path(), Some(path.as_path()));
        db.declare_queue("stripe", 3, Duration::from_secs(30))
            .await
            .unwrap();
        let msg = crate::ports::OutgoingMessage::new("1", "{\"v\":1}");
        assert!(db.send_batch("stripe", &[msg]).await.unwrap().is_empty());
        db.put_cursor("fb:acc", "42").await.unwrap();
        db.complete("e1:c", Outcome::Synced, t0 + Span::days(1))
            .await
            .unwrap();
    }
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let db = EmbeddedDb::open(&path, clock.clone()).unwrap();
    assert_eq!(
        db.get_cursor("fb:acc").await.unwrap().as_deref(),
        Some("42")
    );
    assert_eq!(
        db.begin("e1:c", t0, Duration::from_secs(60)).await.unwrap(),
        Begin::Duplicate(Outcome::Synced)
    );
    let got = db
        .receive("stripe", 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "{\"v\":1}");
    assert!(
        db.list_dead_letters(DeadLetterStatus::Open, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let (mode, version): (String, i64) = db
        .read(|conn| {
            let mode = conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .map_err(db::db_err)?;
            let version = conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(db::db_err)?;
            Ok((mode, version))
        })
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(version, schema::MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn two_handles_on_one_file_see_each_other() {
    let dir = TempDir::new();
    let path = dir.path().join("shared.db");
    let clock = Arc::new(ManualClock::at_unix(1_772_000_000));
    let a = EmbeddedDb::open(&path, clock.clone()).unwrap();
    let b = EmbeddedDb::open(&path, clock.clone()).unwrap();
    let now = clock.now();
    let lease = Duration::from_secs(60);
    assert_eq!(
        a.begin("k", now, lease).await.unwrap(),
        Begin::Proceed { replay: false }
    );
    assert_eq!(b.begin("k", now, lease).await.unwrap(), Begin::InProgress);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = TempDir::new();
    let path = dir.path().join("future.db");
    let clock = Arc::new(ManualClock::at_unix(0));
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = EmbeddedDb::open(&path, clock).unwrap_err();
    assert!(
        matches!(
            err,
            PortError::Corrupt {
                what: "database",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn opening_in_a_missing_directory_fails_cleanly() {
    let dir = TempDir::new();
    let path = dir.path().join("no/such/dir/x.db");
    let err = EmbeddedDb::open(&path, Arc::new(ManualClock::at_unix(0))).unwrap_err();
    assert!(matches!(err, PortError::Backend { .. }), "{err}");
}

#[tokio::test]
async fn clones_share_one_database_across_tasks() {
    let (db, clock) = test_db();
    let now = clock.now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { db.begin("shared", now, Duration::from_secs(60)).await })
        })
        .collect();
    let mut proceeded = 0;
    for t in tasks {
        if matches!(t.await.unwrap().unwrap(), Begin::Proceed { .. }) {
            proceeded += 1;
        }
    }
    assert_eq!(proceeded, 1, "exactly one claim wins");
}
