//! The queue port on SQLite, with SQS semantics: visibility timeouts, a fresh receipt per
//! receive, a redrive policy moving a message to `<name>-dlq` once its receive count would pass
//! the queue's maximum, and redrive back.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Transaction, named_params, params};

use super::db::{EmbeddedDb, SERVICE, db_err, limit, ms, ms_after};
use crate::ports::queue::{MAX_BATCH, MAX_DELAY};
use crate::ports::{
    OutgoingMessage, PortError, PortResult, Queue, QueueDepth, ReceivedMessage, SendFailure,
};

/// SQS's largest message body.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// SQS's longest visibility timeout.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// SQS's bounds on a redrive policy's `maxReceiveCount`.
const MAX_RECEIVES: std::ops::RangeInclusive<u32> = 1..=1000;

/// The dead-letter queue of queue `name`.
fn dlq_name(name: &str) -> String {
    format!("{name}-dlq")
}

/// A declared queue's settings, read back by the tests of [`EmbeddedDb::declare_queue`].
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueConfig {
    /// Receives after which the next one moves the message to the dead-letter queue.
    pub(crate) max_receives: u32,
    /// The visibility timeout a consumer should ask for (SQS `VisibilityTimeout` attribute).
    pub(crate) default_visibility: Duration,
}

/// A queue row: `dlq`/`max_receives` are `None` for a dead-letter queue itself.
struct QueueRow {
    dlq: Option<String>,
    max_receives: Option<u32>,
}

impl EmbeddedDb {
    /// Creates queue `name` and its dead-letter queue `<name>-dlq` with a redrive policy of
    /// `max_receives`. Declaring an existing queue again updates its settings and keeps its
    /// messages (unlike SQS `CreateQueue`, which refuses changed attributes), so local mode can
    /// change them between runs.
    pub async fn declare_queue(
        &self,
        name: &str,
        max_receives: u32,
        default_visibility: Duration,
    ) -> PortResult<()> {
        validate_name(name)?;
        if !MAX_RECEIVES.contains(&max_receives) {
            return Err(invalid(format!(
                "max_receives {max_receives} is outside {}..={}",
                MAX_RECEIVES.start(),
                MAX_RECEIVES.end()
            )));
        }
        let visibility = visibility_ms(default_visibility)?;
        let name = name.to_string();
        let dlq = dlq_name(&name);
        self.write(move |tx| {
            if is_dead_letter_queue(tx, &name)? {
                return Err(invalid(format!("`{name}` is already a dead-letter queue")));
            }
            tx.execute(
                "INSERT INTO queues (name, dlq, max_receives, visibility_ms)
                 VALUES (?1, NULL, NULL, ?2) ON CONFLICT (name) DO NOTHING",
                params![dlq, visibility],
            )
            .map_err(db_err)?;
            tx.execute(
                "INSERT INTO queues (name, dlq, max_receives, visibility_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET
                     dlq = excluded.dlq,
                     max_receives = excluded.max_receives,
                     visibility_ms = excluded.visibility_ms",
                params![name, dlq, max_receives, visibility],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    /// The settings `name` was declared with; `None` for an undeclared or dead-letter queue.
    #[cfg(test)]
    pub(crate) async fn queue_config(&self, name: &str) -> PortResult<Option<QueueConfig>> {
        let name = name.to_string();
        self.read(move |conn| {
            conn.query_row(
                "SELECT max_receives, visibility_ms FROM queues
                 WHERE name = ?1 AND dlq IS NOT NULL",
                [name],
                |row| Ok((row.get::<_, u32>(0)?, row.get::<_, i64>(1)?)),
            )
            .optional()
            .map_err(db_err)
            .map(|found| {
                found.map(|(max_receives, vis)| QueueConfig {
                    max_receives,
                    default_visibility: Duration::from_millis(u64::try_from(vis).unwrap_or(0)),
                })
            })
        })
        .await
    }
}

#[async_trait]
impl Queue for EmbeddedDb {
    async fn send_batch(
        &self,
        queue: &str,
        messages: &[OutgoingMessage],
    ) -> PortResult<Vec<SendFailure>> {
        if messages.len() > MAX_BATCH {
            return Err(invalid(format!(
                "{} messages in one batch; at most {MAX_BATCH}",
                messages.len()
            )));
        }
        for (i, m) in messages.iter().enumerate() {
            if !valid_entry_id(&m.id) {
                return Err(invalid(format!(
                    "batch entry id `{}` must be 1-80 characters of A-Z a-z 0-9 - _",
                    m.id.escape_debug()
                )));
            }
            if messages[..i].iter().any(|other| other.id == m.id) {
                return Err(invalid(format!("batch entry id `{}` is not unique", m.id)));
            }
        }
        let mut failures = Vec::new();
        let mut accepted = Vec::new();
        let now = self.now();
        for m in messages {
            match refusal(m) {
                Some(reason) => failures.push(SendFailure {
                    id: m.id.clone(),
                    reason,
                }),
                None => accepted.push((m.body.clone(), ms_after(now, m.delay))),
            }
        }
        let queue = queue.to_string();
        let now = ms(now);
        self.write(move |tx| {
            queue_row(tx, &queue)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO messages (queue, message_id, body, sent_at_ms, visible_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(db_err)?;
            for (body, visible_at) in accepted {
                let id = uuid::Uuid::new_v4().to_string();
                insert
                    .execute(params![queue, id, body, now, visible_at])
                    .map_err(db_err)?;
            }
            Ok(())
        })
        .await?;
        Ok(failures)
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> PortResult<Vec<ReceivedMessage>> {
        visibility_ms(visibility)?;
        let now = self.now();
        let visible_until = ms_after(now, visibility);
        let now = ms(now);
        // SQS returns at most 10 per call.
        let max = max.min(MAX_BATCH);
        let queue = queue.to_string();
        self.write(move |tx| receive_in(tx, &queue, max, now, visible_until))
            .await
    }

    async fn delete(&self, queue: &str, receipt: &str) -> PortResult<()> {
        let (queue, receipt) = (queue.to_string(), receipt.to_string());
        self.write(move |tx| {
            queue_row(tx, &queue)?;
            let n = tx
                .execute(
                    "DELETE FROM messages WHERE queue = ?1 AND receipt = ?2",
                    params![queue, receipt],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(stale_receipt(&receipt));
            }
            Ok(())
        })
        .await
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt: &str,
        timeout: Duration,
    ) -> PortResult<()> {
        visibility_ms(timeout)?;
        let visible_at = ms_after(self.now(), timeout);
        let (queue, receipt) = (queue.to_string(), receipt.to_string());
        self.write(move |tx| {
            queue_row(tx, &queue)?;
            let n = tx
                .execute(
                    "UPDATE messages SET visible_at_ms = ?3 WHERE queue = ?1 AND receipt = ?2",
                    params![queue, receipt, visible_at],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(stale_receipt(&receipt));
            }
            Ok(())
        })
        .await
    }

    async fn move_to_dead_letter(&self, queue: &str, message: &ReceivedMessage) -> PortResult<()> {
        let (queue, receipt) = (queue.to_string(), message.receipt.clone());
        let now = ms(self.now());
        self.write(move |tx| {
            let dlq = dlq_of(tx, &queue)?;
            let n = tx
                .execute(
                    "UPDATE messages SET queue = ?3, receipt = NULL, visible_at_ms = ?4
                     WHERE queue = ?1 AND receipt = ?2",
                    params![queue, receipt, dlq, now],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(stale_receipt(&receipt));
            }
            Ok(())
        })
        .await
    }

    async fn redrive(&self, queue: &str) -> PortResult<String> {
        let queue = queue.to_string();
        let now = ms(self.now());
        self.write(move |tx| {
            let dlq = dlq_of(tx, &queue)?;
            // A redriven message starts over: no receives, no receipt, visible at once. Its
            // `seq` stays, so it is delivered ahead of messages sent after it.
            let moved = tx
                .execute(
                    "UPDATE messages
                     SET queue = ?1, receive_count = 0, receipt = NULL, visible_at_ms = ?3
                     WHERE queue = ?2",
                    params![queue, dlq, now],
                )
                .map_err(db_err)?;
            Ok(moved.to_string())
        })
        .await
    }

    async fn depth(&self, queue: &str) -> PortResult<QueueDepth> {
        let queue = queue.to_string();
        let now = ms(self.now());
        self.read(move |conn| {
            let row = queue_row(conn, &queue)?;
            let (visible, in_flight): (i64, i64) = conn
                .query_row(
                    "SELECT COALESCE(SUM(visible_at_ms <= :now), 0),
                            COALESCE(SUM(visible_at_ms > :now), 0)
                     FROM messages WHERE queue = :queue",
                    named_params! { ":now": now, ":queue": queue },
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(db_err)?;
            let dead: i64 = match row.dlq {
                Some(dlq) => conn
                    .query_row(
                        "SELECT COUNT(*) FROM messages WHERE queue = ?1",
                        [dlq],
                        |r| r.get(0),
                    )
                    .map_err(db_err)?,
                None => 0,
            };
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            Ok(QueueDepth {
                visible: count(visible),
                in_flight: count(in_flight),
                dead: count(dead),
            })
        })
        .await
    }
}

/// Delivers up to `max` visible messages oldest first, moving those past the redrive policy's
/// maximum to the dead-letter queue on the way (they do not count towards `max`).
fn receive_in(
    tx: &Transaction<'_>,
    queue: &str,
    max: usize,
    now: i64,
    visible_until: i64,
) -> PortResult<Vec<ReceivedMessage>> {
    let row = queue_row(tx, queue)?;
    let mut out = Vec::with_capacity(max);
    let mut select = tx
        .prepare_cached(
            "SELECT seq, message_id, body, receive_count FROM messages
             WHERE queue = ?1 AND visible_at_ms <= ?2 ORDER BY seq LIMIT ?3",
        )
        .map_err(db_err)?;
    // Each round either delivers (hides) or moves every row it selected, so the next round
    // sees new rows and the loop ends when the queue has no visible messages left.
    while out.len() < max {
        let candidates = select
            .query_map(params![queue, now, limit(max - out.len())], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u32>(3)?,
                ))
            })
            .map_err(db_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?;
        if candidates.is_empty() {
            break;
        }
        for (seq, message_id, body, count) in candidates {
            let receive_count = count.saturating_add(1);
            if let (Some(dlq), Some(max_receives)) = (&row.dlq, row.max_receives)
                && receive_count > max_receives
            {
                // Keeps the receive count, as SQS does when its redrive policy moves a message.
                tx.execute(
                    "UPDATE messages SET queue = ?2, receipt = NULL, visible_at_ms = ?3
                     WHERE seq = ?1",
                    params![seq, dlq, now],
                )
                .map_err(db_err)?;
                continue;
            }
            let receipt = uuid::Uuid::new_v4().simple().to_string();
            tx.execute(
                "UPDATE messages SET receive_count = ?2, receipt = ?3, visible_at_ms = ?4
                 WHERE seq = ?1",
                params![seq, receive_count, receipt, visible_until],
            )
            .map_err(db_err)?;
            out.push(ReceivedMessage {
                message_id,
                receipt,
                body,
                receive_count,
            });
        }
    }
    Ok(out)
}

fn queue_row(conn: &rusqlite::Connection, name: &str) -> PortResult<QueueRow> {
    conn.query_row(
        "SELECT dlq, max_receives FROM queues WHERE name = ?1",
        [name],
        |r| {
            Ok(QueueRow {
                dlq: r.get(0)?,
                max_receives: r.get(1)?,
            })
        },
    )
    .optional()
    .map_err(db_err)?
    .ok_or_else(|| PortError::NotFound {
        what: "queue",
        name: name.to_string(),
    })
}

/// The dead-letter queue of `queue`, which must be a declared source queue.
fn dlq_of(conn: &rusqlite::Connection, queue: &str) -> PortResult<String> {
    queue_row(conn, queue)?
        .dlq
        .ok_or_else(|| PortError::NotFound {
            what: "dead-letter queue of",
            name: queue.to_string(),
        })
}

fn is_dead_letter_queue(conn: &rusqlite::Connection, name: &str) -> PortResult<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM queues WHERE dlq = ?1)",
        [name],
        |r| r.get(0),
    )
    .map_err(db_err)
}

/// Why SQS would refuse this message, if it would.
fn refusal(message: &OutgoingMessage) -> Option<String> {
    if message.delay > MAX_DELAY {
        return Some(format!(
            "delay of {} s is over SQS's {} s",
            message.delay.as_secs(),
            MAX_DELAY.as_secs()
        ));
    }
    let body = &message.body;
    if body.is_empty() {
        return Some("message body is empty".to_string());
    }
    if body.len() > MAX_BODY_BYTES {
        return Some(format!(
            "message body is {} bytes; the limit is {MAX_BODY_BYTES}",
            body.len()
        ));
    }
    // SQS accepts only the characters XML allows.
    if let Some(c) = body.chars().find(|&c| !xml_char(c)) {
        return Some(format!(
            "message body contains a character SQS does not allow (U+{:04X})",
            u32::from(c)
        ));
    }
    None
}

fn xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

fn valid_entry_id(id: &str) -> bool {
    (1..=80).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// SQS queue names are 1-80 of `A-Z a-z 0-9 - _`; four characters go to the `-dlq` suffix.
fn validate_name(name: &str) -> PortResult<()> {
    let ok = (1..=76).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "queue name `{}` must be 1-76 characters of A-Z a-z 0-9 - _",
            name.escape_debug()
        )))
    }
}

fn visibility_ms(d: Duration) -> PortResult<i64> {
    if d > MAX_VISIBILITY {
        return Err(invalid(format!(
            "visibility timeout {}s exceeds SQS's {}s",
            d.as_secs(),
            MAX_VISIBILITY.as_secs()
        )));
    }
    // At most 12 h, so it fits.
    Ok(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A receipt that is not the latest one of a message still in the queue: the message was
/// received again, deleted or moved since.
fn stale_receipt(receipt: &str) -> PortError {
    PortError::NotFound {
        what: "receipt handle",
        name: receipt.to_string(),
    }
}

fn invalid(message: String) -> PortError {
    PortError::Backend {
        service: SERVICE,
        message,
    }
}

#[cfg(test)]
mod tests;
