//! Idempotency records and single-flight leases: both are claims that lapse at a time.
//!
//! A row is live while `until_ms > now`; at `until` exactly it has lapsed, so a lease taken for
//! `ttl` at `t` is free again at `t + ttl`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::db::{EmbeddedDb, db_err, ms, ms_after};
use crate::ports::{Begin, Idempotency, Leases, Outcome, PortError, PortResult};

#[async_trait]
impl Idempotency for EmbeddedDb {
    async fn begin(&self, key: &str, now: DateTime<Utc>, lease: Duration) -> PortResult<Begin> {
        let key = key.to_string();
        let until = ms_after(now, lease);
        let now = ms(now);
        self.write(move |tx| {
            let row: Option<(String, Option<String>, i64)> = tx
                .query_row(
                    "SELECT state, outcome, until_ms FROM idempotency WHERE key = ?1",
                    [&key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(db_err)?;
            let mut replay = false;
            if let Some((state, outcome, row_until)) = row
                && row_until > now
            {
                match (state.as_str(), outcome) {
                    ("done", Some(outcome)) => {
                        let outcome = outcome
                            .parse::<Outcome>()
                            .map_err(|e| PortError::corrupt("idempotency record", e))?;
                        if outcome != Outcome::DeadLettered {
                            return Ok(Begin::Duplicate(outcome));
                        }
                        // A replay of a dead-lettered event: it takes a claim like any delivery.
                        replay = true;
                    }
                    ("claimed", _) => return Ok(Begin::InProgress),
                    (state, _) => {
                        return Err(PortError::corrupt(
                            "idempotency record",
                            format!("state `{state}` without a valid outcome"),
                        ));
                    }
                }
            }
            // Absent, abandoned, dead-lettered, expired done record, or a lapsed claim.
            tx.execute(
                "INSERT INTO idempotency (key, state, outcome, until_ms)
                 VALUES (?1, 'claimed', NULL, ?2)
                 ON CONFLICT (key) DO UPDATE SET
                     state = 'claimed', outcome = NULL, until_ms = excluded.until_ms",
                params![key, until],
            )
            .map_err(db_err)?;
            Ok(Begin::Proceed { replay })
        })
        .await
    }

    async fn complete(
        &self,
        key: &str,
        outcome: Outcome,
        expires_at: DateTime<Utc>,
    ) -> PortResult<()> {
        let key = key.to_string();
        let until = ms(expires_at);
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO idempotency (key, state, outcome, until_ms)
                 VALUES (?1, 'done', ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET
                     state = 'done', outcome = excluded.outcome, until_ms = excluded.until_ms",
                params![key, outcome.as_str(), until],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    /// Drops a claim; a completed record stays, so abandoning late cannot re-open done work.
    async fn abandon(&self, key: &str) -> PortResult<()> {
        let key = key.to_string();
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM idempotency WHERE key = ?1 AND state = 'claimed'",
                [key],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Leases for EmbeddedDb {
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> PortResult<bool> {
        let (name, holder) = (name.to_string(), holder.to_string());
        let until = ms_after(now, ttl);
        let now = ms(now);
        self.write(move |tx| {
            // One conditional upsert, like DynamoDB's conditional put: it changes a row only if
            // the lease is free, lapsed or already this holder's.
            let changed = tx
                .execute(
                    "INSERT INTO leases (name, holder, until_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET
                         holder = excluded.holder, until_ms = excluded.until_ms
                     WHERE leases.until_ms <= ?4 OR leases.holder = excluded.holder",
                    params![name, holder, until, now],
                )
                .map_err(db_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> PortResult<()> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
                params![name, holder],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration as Span;

    use super::*;
    use crate::adapters::embedded::test_support::test_db;
    use crate::ports::Clock;

    const LEASE: Duration = Duration::from_secs(60);
    const PROCEED: Begin = Begin::Proceed { replay: false };
    const PROCEED_REPLAY: Begin = Begin::Proceed { replay: true };

    #[tokio::test]
    async fn claim_then_complete_then_duplicate_until_expiry() {
        let (db, clock) = test_db();
        let t0 = clock.now();
        assert_eq!(db.begin("e1:c", t0, LEASE).await.unwrap(), PROCEED);
        // Someone else while the claim is live.
        let t1 = t0 + Span::seconds(59);
        assert_eq!(
            db.begin("e1:c", t1, LEASE).await.unwrap(),
            Begin::InProgress
        );
        let expires = t0 + Span::days(7);
        db.complete("e1:c", Outcome::Synced, expires).await.unwrap();
        assert_eq!(
            db.begin("e1:c", t1, LEASE).await.unwrap(),
            Begin::Duplicate(Outcome::Synced)
        );
        // Abandoning a completed key does not undo it.
        db.abandon("e1:c").await.unwrap();
        let almost = expires - Span::milliseconds(1);
        assert_eq!(
            db.begin("e1:c", almost, LEASE).await.unwrap(),
            Begin::Duplicate(Outcome::Synced)
        );
        // Once expires_at has passed, the event may be handled again.
        assert_eq!(db.begin("e1:c", expires, LEASE).await.unwrap(), PROCEED);
        assert_eq!(
            db.begin("e1:c", expires, LEASE).await.unwrap(),
            Begin::InProgress
        );
        // Other keys are independent.
        assert_eq!(db.begin("e2:c", t1, LEASE).await.unwrap(), PROCEED);
    }

    #[tokio::test]
    async fn expired_or_abandoned_claims_proceed() {
        let (db, clock) = test_db();
        let t0 = clock.now();
        assert_eq!(db.begin("k", t0, LEASE).await.unwrap(), PROCEED);
        let lapsed = t0 + Span::seconds(60);
        assert_eq!(db.begin("k", lapsed, LEASE).await.unwrap(), PROCEED);
        // The new claim runs from `lapsed`.
        assert_eq!(
            db.begin("k", lapsed + Span::seconds(30), LEASE)
                .await
                .unwrap(),
            Begin::InProgress
        );
        db.abandon("k").await.unwrap();
        assert_eq!(
            db.begin("k", lapsed + Span::seconds(30), LEASE)
                .await
                .unwrap(),
            PROCEED
        );
    }

    #[tokio::test]
    async fn dead_lettered_keys_are_claimed_as_replays() {
        let (db, clock) = test_db();
        let t0 = clock.now();
        let expires = t0 + Span::hours(1);
        db.complete("k", Outcome::DeadLettered, expires)
            .await
            .unwrap();
        assert_eq!(db.begin("k", t0, LEASE).await.unwrap(), PROCEED_REPLAY);
        // The replay holds a real claim: a concurrent copy must wait.
        assert_eq!(db.begin("k", t0, LEASE).await.unwrap(), Begin::InProgress);
        // Abandoning the replay's claim leaves no record behind.
        db.abandon("k").await.unwrap();
        assert_eq!(db.begin("k", t0, LEASE).await.unwrap(), PROCEED);
        db.complete("k", Outcome::Synced, expires).await.unwrap();
        assert_eq!(
            db.begin("k", t0, LEASE).await.unwrap(),
            Begin::Duplicate(Outcome::Synced)
        );
        // An expired dead-lettered record is no longer in force: not a replay.
        db.complete("old", Outcome::DeadLettered, t0).await.unwrap();
        assert_eq!(db.begin("old", t0, LEASE).await.unwrap(), PROCEED);
    }

    #[tokio::test]
    async fn leases_free_expired_or_same_holder() {
        let (db, clock) = test_db();
        let t0 = clock.now();
        let ttl = Duration::from_secs(30);
        assert!(db.acquire_lease("refresh:qbo", "a", t0, ttl).await.unwrap());
        assert!(!db.acquire_lease("refresh:qbo", "b", t0, ttl).await.unwrap());
        // The holder renews; the renewal runs from its own `now`.
        let t1 = t0 + Span::seconds(20);
        assert!(db.acquire_lease("refresh:qbo", "a", t1, ttl).await.unwrap());
        assert!(
            !db.acquire_lease("refresh:qbo", "b", t0 + Span::seconds(49), ttl)
                .await
                .unwrap()
        );
        assert!(
            db.acquire_lease("refresh:qbo", "b", t0 + Span::seconds(50), ttl)
                .await
                .unwrap()
        );
        // Releasing someone else's lease does nothing; releasing one's own frees it.
        db.release_lease("refresh:qbo", "a").await.unwrap();
        assert!(
            !db.acquire_lease("refresh:qbo", "a", t0 + Span::seconds(51), ttl)
                .await
                .unwrap()
        );
        db.release_lease("refresh:qbo", "b").await.unwrap();
        assert!(
            db.acquire_lease("refresh:qbo", "a", t0 + Span::seconds(51), ttl)
                .await
                .unwrap()
        );
        // Another lease name is independent.
        assert!(db.acquire_lease("refresh:fb", "b", t0, ttl).await.unwrap());
    }
}
