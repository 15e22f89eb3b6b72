//! Dead letters: messages and deliveries that will not succeed, kept with why.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, named_params, params};

use super::db::{EmbeddedDb, LIVE, db_err, from_json, limit, ms, to_json};
use crate::ports::{DeadLetter, DeadLetterStatus, DeadLetters, PortResult};

const WHAT: &str = "dead letter";

#[async_trait]
impl DeadLetters for EmbeddedDb {
    /// Stores the letter as given, replacing any with its id (a failed replay re-opens it).
    async fn put_dead_letter(&self, letter: &DeadLetter) -> PortResult<()> {
        let item = to_json(WHAT, letter)?;
        let id = letter.id.clone();
        let status = letter.status.as_str();
        let created = ms(letter.created_at);
        let expires = letter.expires_at.map(ms);
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO dead_letters (id, status, created_at_ms, expires_at_ms, item)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET
                     status = excluded.status,
                     created_at_ms = excluded.created_at_ms,
                     expires_at_ms = excluded.expires_at_ms,
                     item = excluded.item",
                params![id, status, created, expires, item],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn get_dead_letter(&self, id: &str) -> PortResult<Option<DeadLetter>> {
        let id = id.to_string();
        let now = ms(self.now());
        self.read(move |conn| {
            let json: Option<String> = conn
                .query_row(
                    &format!("SELECT item FROM dead_letters WHERE id = :id AND {LIVE}"),
                    named_params! { ":id": id, ":now": now },
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            json.map(|j| from_json(WHAT, &j)).transpose()
        })
        .await
    }

    async fn list_dead_letters(
        &self,
        status: DeadLetterStatus,
        max: usize,
    ) -> PortResult<Vec<DeadLetter>> {
        let now = ms(self.now());
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT item FROM dead_letters WHERE status = :status AND {LIVE}
                     ORDER BY created_at_ms DESC, id DESC LIMIT :limit"
                ))
                .map_err(db_err)?;
            let rows = stmt
                .query_map(
                    named_params! {
                        ":status": status.as_str(), ":now": now, ":limit": limit(max)
                    },
                    |r| r.get::<_, String>(0),
                )
                .map_err(db_err)?;
            rows.map(|json| from_json(WHAT, &json.map_err(db_err)?))
                .collect()
        })
        .await
    }

    async fn resolve_dead_letter(&self, id: &str, at: DateTime<Utc>) -> PortResult<bool> {
        let id = id.to_string();
        let now = ms(self.now());
        self.write(move |tx| {
            let json: Option<String> = tx
                .query_row(
                    &format!(
                        "SELECT item FROM dead_letters
                         WHERE id = :id AND status = 'open' AND {LIVE}"
                    ),
                    named_params! { ":id": id, ":now": now },
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            let Some(json) = json else {
                return Ok(false);
            };
            let mut letter: DeadLetter = from_json(WHAT, &json)?;
            letter.status = DeadLetterStatus::Resolved;
            letter.resolved_at = Some(at);
            tx.execute(
                "UPDATE dead_letters SET status = ?2, item = ?3 WHERE id = ?1",
                params![id, letter.status.as_str(), to_json(WHAT, &letter)?],
            )
            .map_err(db_err)?;
            Ok(true)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::adapters::embedded::test_support::test_db;
    use crate::ports::Clock;

    fn letter(id: &str, created_at: DateTime<Utc>) -> DeadLetter {
        DeadLetter {
            id: id.to_string(),
            stage: "worker:mailchimp".to_string(),
            queue: Some("mailchimp".to_string()),
            event_id: Some("evt-1".to_string()),
            record_key: Some("freshbooks:acc:client:1".to_string()),
            connection: Some("fb-to-mc".to_string()),
            error_class: "permanent".to_string(),
            reason: "member in compliance state".to_string(),
            vendor_request_id: Some("req-9".to_string()),
            attempts: 3,
            payload: "{\"v\":1}".to_string(),
            status: DeadLetterStatus::Open,
            created_at,
            resolved_at: None,
            expires_at: None,
        }
    }

    #[tokio::test]
    async fn resolve_only_open_and_put_reopens() {
        let (db, clock) = test_db();
        let t0 = clock.now();
        let open = letter("event:c:e1", t0);
        db.put_dead_letter(&open).await.unwrap();
        assert_eq!(
            db.get_dead_letter("event:c:e1").await.unwrap(),
            Some(open.clone())
        );

        let at = t0 + Duration::minutes(5);
        assert!(db.resolve_dead_letter("event:c:e1", at).await.unwrap());
        let resolved = db.get_dead_letter("event:c:e1").await.unwrap().unwrap();
        assert_eq!(resolved.status, DeadLetterStatus::Resolved);
        assert_eq!(resolved.resolved_at, Some(at));
        // Already resolved, or never there: nothing to resolve.
        assert!(!db.resolve_dead_letter("event:c:e1", at).await.unwrap());
        assert!(!db.resolve_dead_letter("missing", at).await.unwrap());
        assert!(
            db.list_dead_letters(DeadLetterStatus::Open, 10)
                .await
                .unwrap()
                .is_empty()
        );

        // The replay failed again: the new letter replaces the resolved one, open.
        let again = letter("event:c:e1", t0 + Duration::hours(1));
        db.put_dead_letter(&again).await.unwrap();
        assert_eq!(
            db.list_dead_letters(DeadLetterStatus::Open, 10)
                .await
                .unwrap(),
            vec![again]
        );
        assert!(
            db.list_dead_letters(DeadLetterStatus::Resolved, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn list_is_newest_first_by_status_and_hides_expired() {
        let (db, clock) = test_db();
        let t0 = clock.now();
        let a = letter("a", t0);
        let b = letter("b", t0 + Duration::seconds(2));
        let mut c = letter("c", t0 + Duration::seconds(1));
        c.expires_at = Some(t0 + Duration::hours(1));
        for l in [&a, &b, &c] {
            db.put_dead_letter(l).await.unwrap();
        }
        db.resolve_dead_letter("b", t0).await.unwrap();
        let open = db
            .list_dead_letters(DeadLetterStatus::Open, 10)
            .await
            .unwrap();
        assert_eq!(open, vec![c.clone(), a.clone()]);
        assert_eq!(
            db.list_dead_letters(DeadLetterStatus::Open, 1)
                .await
                .unwrap(),
            vec![c]
        );
        clock.advance(Duration::hours(1));
        assert_eq!(
            db.list_dead_letters(DeadLetterStatus::Open, 10)
                .await
                .unwrap(),
            vec![a]
        );
        assert_eq!(db.get_dead_letter("c").await.unwrap(), None);
        assert!(!db.resolve_dead_letter("c", clock.now()).await.unwrap());
    }
}
