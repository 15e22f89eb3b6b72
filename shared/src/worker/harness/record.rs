//! What the harness writes about an attempt: audit entries, dead letters, the idempotency
//! outcome and the dead letter's resolution.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;

use super::{Attempt, Harness};
use crate::event::Origin;
use crate::ports::{AuditEntry, DeadLetter, DeadLetterStatus, Outcome, PortResult};
use crate::worker::handler::HandlerError;
use crate::worker::trim::{AUDIT_VALUE_LIMIT, TEXT_LIMIT, trim_text, trim_value};

/// Bodies larger than this are kept as a blob, not inline in the dead-letter item.
const INLINE_PAYLOAD_LIMIT: usize = 64 * 1024;

/// The error class of a message that is not a [`crate::event::SyncEvent`].
pub(super) const UNDECODABLE_CLASS: &str = "undecodable";

/// What an audit entry says beyond the attempt's identity.
#[derive(Default)]
pub(super) struct Details<'a> {
    pub(super) before: Option<serde_json::Value>,
    pub(super) written: Option<serde_json::Value>,
    pub(super) error_class: Option<&'a str>,
    pub(super) error_message: Option<&'a str>,
    pub(super) vendor_request_id: Option<&'a str>,
}

impl<'a> Details<'a> {
    pub(super) fn error(e: &'a HandlerError) -> Self {
        Self {
            error_class: Some(e.class()),
            error_message: Some(e.message()),
            vendor_request_id: e.vendor_request_id(),
            ..Self::default()
        }
    }
}

impl Harness {
    pub(super) async fn put_event_dead_letter(
        &self,
        a: &Attempt<'_>,
        err: &HandlerError,
    ) -> PortResult<()> {
        let now = self.clock.now();
        let letter = DeadLetter {
            id: DeadLetter::id_for_event(&a.event.connection, &a.event.event_id),
            stage: self.stage(),
            queue: Some(self.config.queue.clone()),
            event_id: Some(a.event.event_id.clone()),
            record_key: Some(a.event.record_key()),
            connection: Some(a.event.connection.to_string()),
            error_class: err.class().to_string(),
            reason: trim_text(err.message(), TEXT_LIMIT),
            vendor_request_id: err.vendor_request_id().map(str::to_string),
            attempts: a.message.receive_count,
            payload: String::new(),
            status: DeadLetterStatus::Open,
            created_at: now,
            resolved_at: None,
            expires_at: Some(after(now, self.config.dead_letter_ttl)),
        };
        self.put_dead_letter(letter, &a.message.body).await
    }

    /// Writes `letter` with `body` as its payload, inline or as a blob when large.
    pub(super) async fn put_dead_letter(
        &self,
        mut letter: DeadLetter,
        body: &str,
    ) -> PortResult<()> {
        letter.payload = if body.len() > INLINE_PAYLOAD_LIMIT {
            let key = format!("dead-letter/{}", letter.id);
            self.store
                .put_blob(&key, body.as_bytes(), letter.expires_at)
                .await?;
            format!("blob:{key}")
        } else {
            body.to_string()
        };
        self.store.put_dead_letter(&letter).await?;
        tracing::warn!(dead_letter = %letter.id, class = %letter.error_class, "dead-lettered");
        Ok(())
    }

    pub(super) async fn complete(&self, a: &mut Attempt<'_>, outcome: Outcome) -> PortResult<()> {
        let expires = after(self.clock.now(), self.config.idempotency_ttl);
        self.store.complete(&a.key, outcome, expires).await?;
        // Done, no longer a claim: abandoning now would erase the outcome.
        a.claimed = false;
        Ok(())
    }

    pub(super) async fn resolve(&self, a: &Attempt<'_>) -> PortResult<()> {
        let id = DeadLetter::id_for_event(&a.event.connection, &a.event.event_id);
        if self
            .store
            .resolve_dead_letter(&id, self.clock.now())
            .await?
        {
            tracing::info!(dead_letter = %id, "resolved the dead letter");
        }
        Ok(())
    }

    /// Drops the attempt's claim, if it holds one, so the next delivery can take it.
    pub(super) async fn release(&self, a: &mut Attempt<'_>) {
        if a.claimed {
            if let Err(e) = self.store.abandon(&a.key).await {
                tracing::warn!(error = %e, "could not release the claim; it lapses with its lease");
            }
            a.claimed = false;
        }
    }

    /// The clock's time in whole milliseconds, and strictly later than the last audit time
    /// this harness handed out. An audit item's key is its time (to the millisecond), event and
    /// connection: two attempts of one event within a millisecond — a duplicate right behind
    /// its original on the embedded store — would otherwise overwrite each other.
    pub(super) fn audit_time(&self) -> DateTime<Utc> {
        let now = self.clock.now();
        let mut last = self.last_audit_ms.lock().unwrap_or_else(|p| p.into_inner());
        let ms = now.timestamp_millis().max(last.saturating_add(1));
        *last = ms;
        DateTime::from_timestamp_millis(ms).unwrap_or(now)
    }

    pub(super) async fn audit(
        &self,
        a: &Attempt<'_>,
        outcome: Outcome,
        details: Details<'_>,
    ) -> PortResult<()> {
        let at = self.audit_time();
        let entry = AuditEntry {
            record_key: a.event.record_key(),
            at,
            event_id: a.event.event_id.clone(),
            connection: a.event.connection.to_string(),
            target: self.config.queue.clone(),
            origin: Some(if a.replay {
                Origin::Replay
            } else {
                a.event.origin
            }),
            operation: a.event.operation.clone(),
            outcome,
            before: details.before.map(|v| trim_value(v, AUDIT_VALUE_LIMIT)),
            written: details.written.map(|v| trim_value(v, AUDIT_VALUE_LIMIT)),
            error_class: details.error_class.map(str::to_string),
            error_message: details.error_message.map(|m| trim_text(m, TEXT_LIMIT)),
            vendor_request_id: details.vendor_request_id.map(str::to_string),
            attempt: a.message.receive_count,
            duration_ms: elapsed_ms(a.started),
            message_id: Some(a.message.message_id.clone()),
            expires_at: Some(after(at, self.config.audit_ttl)),
        };
        self.store.record_audit(&entry).await
    }
}

/// `now + d`, saturating at the end of time instead of panicking on absurd TTLs.
pub(super) fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub(super) fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_saturates() {
        let now = DateTime::UNIX_EPOCH;
        assert_eq!(
            after(now, Duration::from_secs(60)),
            now + TimeDelta::seconds(60)
        );
        assert_eq!(after(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
    }
}
