//! [`Harness`]: one batch of queue messages through a [`TargetHandler`], with idempotency,
//! retries, dead letters and an audit entry per attempt (docs/architecture.md, "Idempotency", "Failures",
//! "Audit trail").
//!
//! Every message is settled on its own: a bad record, a panicking handler or a failed port call
//! changes that message's [`Disposition`] and nothing else. A message is never lost: whenever
//! the harness cannot prove its work is recorded, the message stays on its queue.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;
use tracing::Instrument;

use super::backoff;
use super::config::HarnessConfig;
use super::handler::{Handled, HandlerError, TargetHandler};
use super::invoke;
use super::report::{BatchReport, Disposition};
use super::trim::{AUDIT_VALUE_LIMIT, TEXT_LIMIT, trim_text, trim_value};
use crate::event::{Origin, SyncEvent};
use crate::ports::{
    AuditEntry, Begin, Clock, DeadLetter, DeadLetterStatus, Outcome, PortResult, Queue,
    ReceivedMessage, Store,
};

/// Bodies larger than this are kept as a blob, not inline in the dead-letter item.
const INLINE_PAYLOAD_LIMIT: usize = 64 * 1024;

/// The error class of a message that is not a [`SyncEvent`].
const UNDECODABLE_CLASS: &str = "undecodable";

/// The worker harness. Cheap to share behind an `Arc`; one per worker process.
pub struct Harness {
    queue: Arc<dyn Queue>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    handler: Arc<dyn TargetHandler>,
    config: HarnessConfig,
    /// The last audit time handed out, in epoch milliseconds (see [`Harness::audit_time`]).
    last_audit_ms: Mutex<i64>,
}

/// The state of one message's attempt.
struct Attempt<'a> {
    message: &'a ReceivedMessage,
    event: &'a SyncEvent,
    /// `<connection>#<event_id>`.
    key: String,
    started: Instant,
    /// The event was dead-lettered before: this delivery is a redrive.
    replay: bool,
    /// This attempt holds the idempotency claim (and must abandon it if it gives up).
    claimed: bool,
}

/// What an audit entry says beyond the attempt's identity.
#[derive(Default)]
struct Details<'a> {
    before: Option<serde_json::Value>,
    written: Option<serde_json::Value>,
    error_class: Option<&'a str>,
    error_message: Option<&'a str>,
    vendor_request_id: Option<&'a str>,
}

impl<'a> Details<'a> {
    fn error(e: &'a HandlerError) -> Self {
        Self {
            error_class: Some(e.class()),
            error_message: Some(e.message()),
            vendor_request_id: e.vendor_request_id(),
            ..Self::default()
        }
    }
}

impl Harness {
    /// A harness consuming `config.queue` through `queue`, recording in `store` and running
    /// `handler` on each decoded event.
    pub fn new(
        queue: Arc<dyn Queue>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        handler: Arc<dyn TargetHandler>,
        config: HarnessConfig,
    ) -> Self {
        Self {
            queue,
            store,
            clock,
            handler,
            config,
            last_audit_ms: Mutex::new(i64::MIN),
        }
    }

    /// The settings the harness runs with (the local loop reads the queue name).
    #[cfg(feature = "local")]
    pub(crate) fn config(&self) -> &HarnessConfig {
        &self.config
    }

    /// The queue port, for hosts that receive and delete themselves (the local loop).
    #[cfg(feature = "local")]
    pub(crate) fn queue(&self) -> &Arc<dyn Queue> {
        &self.queue
    }

    /// Handles a batch received from the configured queue. `deadline` is when the host stops
    /// waiting (the Lambda invocation deadline, the local visibility timeout); the harness keeps
    /// `deadline_margin` of it for its own writes and leaves unstarted messages to the queue.
    pub async fn process_batch(
        &self,
        messages: Vec<ReceivedMessage>,
        deadline: Option<Instant>,
    ) -> BatchReport {
        let mut report = BatchReport::default();
        for message in messages {
            let span = tracing::info_span!(
                "message",
                queue = %self.config.queue,
                message_id = %message.message_id,
                receive_count = message.receive_count,
                event_id = tracing::field::Empty,
                connection = tracing::field::Empty,
            );
            let (outcome, disposition) = self.process(&message, deadline).instrument(span).await;
            report.push(message.message_id, outcome, disposition);
        }
        report.publish_metrics();
        report
    }

    async fn process(
        &self,
        message: &ReceivedMessage,
        deadline: Option<Instant>,
    ) -> (Outcome, Disposition) {
        let started = Instant::now();
        if backoff::budget(started, deadline, self.config.deadline_margin) == Some(Duration::ZERO) {
            tracing::warn!("no time left before the deadline; leaving the message to its queue");
            return (Outcome::Retrying, Disposition::Retry);
        }
        let event = match SyncEvent::from_json(&message.body) {
            Ok(event) => event,
            Err(err) => return self.reject(message, &err.to_string(), started).await,
        };
        let span = tracing::Span::current();
        span.record("event_id", event.event_id.as_str());
        span.record("connection", event.connection.as_str());
        let mut attempt = Attempt {
            message,
            key: format!("{}#{}", event.connection, event.event_id),
            event: &event,
            started,
            replay: false,
            claimed: false,
        };
        match self.attempt(&mut attempt, deadline).await {
            Ok(settled) => settled,
            Err(err) => {
                tracing::error!(error = %err, "a port call failed; the message stays on its queue");
                if attempt.claimed {
                    self.abandon_quietly(&attempt.key).await;
                }
                (Outcome::Retrying, Disposition::Retry)
            }
        }
    }

    /// Claims the event, runs the handler and settles the result. An `Err` means a port failed
    /// while the message could still be retried safely.
    async fn attempt(
        &self,
        a: &mut Attempt<'_>,
        deadline: Option<Instant>,
    ) -> PortResult<(Outcome, Disposition)> {
        let now = self.clock.now();
        // The claim must outlive this invocation, or a redelivery could run beside us.
        let lease = backoff::budget(Instant::now(), deadline, Duration::ZERO)
            .map_or(self.config.claim_lease, |left| {
                left.max(self.config.claim_lease)
            });
        match self.store.begin(&a.key, now, lease).await? {
            Begin::Proceed { replay } => {
                // A replay (redriven from the dead-letter queue) holds a claim like any other
                // delivery, so a concurrent copy of it waits rather than running beside it.
                if replay {
                    tracing::info!("replay of a dead-lettered event");
                }
                a.claimed = true;
                a.replay = replay;
            }
            Begin::Duplicate(prior) => return self.duplicate(a, prior).await,
            Begin::InProgress => return Ok(self.in_progress(a).await),
        }

        let (result, calls) = invoke::call_with_retries(
            &self.handler,
            a.event,
            self.config.retry,
            deadline,
            self.config.deadline_margin,
        )
        .await;
        match result {
            Ok(handled) => self.succeeded(a, handled).await,
            Err(err) if err.is_transient() && !self.last_receive(a.message) => {
                tracing::warn!(calls, error = %err, "transient failure; back to the queue");
                Ok(self.retry_later(a, &err).await)
            }
            Err(err) if err.is_transient() => {
                tracing::error!(calls, error = %err, "transient failure on the last receive");
                self.give_up(a, &err).await
            }
            Err(err) => {
                tracing::error!(error = %err, "permanent failure");
                self.dead_letter_now(a, &err).await
            }
        }
    }

    fn last_receive(&self, message: &ReceivedMessage) -> bool {
        message.receive_count >= self.config.max_receives
    }

    /// Audit, then complete: if the audit write fails the work is redone (the target sees an
    /// unchanged record) rather than left unrecorded.
    async fn succeeded(
        &self,
        a: &mut Attempt<'_>,
        handled: Handled,
    ) -> PortResult<(Outcome, Disposition)> {
        let outcome = handled.outcome();
        let details = match &handled {
            Handled::Synced { before, written } => Details {
                before: before.clone(),
                written: written.clone(),
                ..Details::default()
            },
            Handled::Unchanged => Details::default(),
            // The audit entry has no field for a note; the reason is why nothing was written.
            Handled::Skipped { reason } => Details {
                error_message: Some(reason),
                ..Details::default()
            },
        };
        self.audit(a, outcome, details).await?;
        self.complete(a, outcome).await?;
        self.resolve(a).await?;
        tracing::info!(outcome = %outcome, replay = a.replay, "handled");
        Ok((outcome, Disposition::Done))
    }

    /// Already handled: recorded as a duplicate. A success also resolves the event's dead
    /// letter, in case an earlier delivery was dead-lettered while another one succeeded.
    async fn duplicate(
        &self,
        a: &Attempt<'_>,
        prior: Outcome,
    ) -> PortResult<(Outcome, Disposition)> {
        tracing::info!(prior = %prior, "duplicate; already handled");
        self.audit(a, Outcome::Duplicate, Details::default())
            .await?;
        if matches!(
            prior,
            Outcome::Synced | Outcome::Unchanged | Outcome::Skipped
        ) {
            self.resolve(a).await?;
        }
        Ok((Outcome::Duplicate, Disposition::Done))
    }

    /// Another consumer holds the claim: a transient failure that must not touch the claim.
    async fn in_progress(&self, a: &mut Attempt<'_>) -> (Outcome, Disposition) {
        let err = HandlerError::transient("another consumer is handling this event");
        if !self.last_receive(a.message) {
            tracing::info!("{}; back to the queue", err.message());
            return self.retry_later(a, &err).await;
        }
        tracing::error!("{} on the last receive", err.message());
        match self.give_up(a, &err).await {
            Ok(settled) => settled,
            Err(port) => {
                tracing::error!(error = %port, "could not record the dead letter");
                (Outcome::Retrying, Disposition::Retry)
            }
        }
    }

    /// Back to the queue with a growing visibility timeout. Every write here is best-effort:
    /// the message is retried whatever happens.
    async fn retry_later(&self, a: &mut Attempt<'_>, err: &HandlerError) -> (Outcome, Disposition) {
        if a.claimed {
            self.abandon_quietly(&a.key).await;
            a.claimed = false;
        }
        if let Err(e) = self.audit(a, Outcome::Retrying, Details::error(err)).await {
            tracing::warn!(error = %e, "could not audit the retry");
        }
        let timeout = self.config.visibility.timeout(
            a.message.receive_count,
            err.retry_after(),
            backoff::sample(),
        );
        if let Err(e) = self
            .queue
            .change_visibility(&self.config.queue, &a.message.receipt, timeout)
            .await
        {
            tracing::warn!(error = %e, "could not delay the retry; the queue's default applies");
        }
        (Outcome::Retrying, Disposition::Retry)
    }

    /// A transient failure on the last receive: the dead-letter item is written here, the
    /// message itself goes to the dead-letter queue through the queue's redrive policy.
    async fn give_up(
        &self,
        a: &mut Attempt<'_>,
        err: &HandlerError,
    ) -> PortResult<(Outcome, Disposition)> {
        self.put_event_dead_letter(a, err).await?;
        if a.claimed {
            self.complete(a, Outcome::DeadLettered).await?;
        }
        if let Err(e) = self
            .audit(a, Outcome::DeadLettered, Details::error(err))
            .await
        {
            tracing::warn!(error = %e, "could not audit the dead letter");
        }
        // Visible at once, so the next receive hands it to the redrive policy now.
        if let Err(e) = self
            .queue
            .change_visibility(&self.config.queue, &a.message.receipt, Duration::ZERO)
            .await
        {
            tracing::warn!(error = %e, "could not release the message early");
        }
        Ok((Outcome::DeadLettered, Disposition::Retry))
    }

    /// A permanent failure: dead-letter item, then the message to the dead-letter queue now,
    /// where a redrive replays it once the cause is fixed.
    async fn dead_letter_now(
        &self,
        a: &mut Attempt<'_>,
        err: &HandlerError,
    ) -> PortResult<(Outcome, Disposition)> {
        self.put_event_dead_letter(a, err).await?;
        self.queue
            .move_to_dead_letter(&self.config.queue, a.message)
            .await?;
        // The message has left the queue: from here on a failure cannot send it back.
        if let Err(e) = self.complete(a, Outcome::DeadLettered).await {
            tracing::error!(error = %e, "could not record the dead-lettered outcome");
            self.abandon_quietly(&a.key).await;
            a.claimed = false;
        }
        if let Err(e) = self
            .audit(a, Outcome::DeadLettered, Details::error(err))
            .await
        {
            tracing::error!(error = %e, "could not audit the dead letter");
        }
        Ok((Outcome::DeadLettered, Disposition::MovedToDeadLetter))
    }

    /// Not a [`SyncEvent`]: kept as a dead letter, moved to the dead-letter queue, audited as
    /// rejected under `message:<id>`.
    async fn reject(
        &self,
        message: &ReceivedMessage,
        reason: &str,
        started: Instant,
    ) -> (Outcome, Disposition) {
        tracing::error!(reason, "undecodable message");
        // Whatever ids the body still has (e.g. an event of an unknown version) help find it.
        let hint = |field: &str| -> Option<String> {
            serde_json::from_str::<serde_json::Value>(&message.body)
                .ok()?
                .get(field)?
                .as_str()
                .map(|s| trim_text(s, 256))
        };
        let now = self.clock.now();
        let record_key = format!("message:{}", message.message_id);
        let letter = DeadLetter {
            id: format!("message:{}:{}", self.config.queue, message.message_id),
            stage: self.stage(),
            queue: Some(self.config.queue.clone()),
            event_id: hint("event_id"),
            record_key: Some(record_key.clone()),
            connection: hint("connection"),
            error_class: UNDECODABLE_CLASS.into(),
            reason: trim_text(reason, TEXT_LIMIT),
            vendor_request_id: None,
            attempts: message.receive_count,
            payload: String::new(),
            status: DeadLetterStatus::Open,
            created_at: now,
            resolved_at: None,
            expires_at: Some(after(now, self.config.dead_letter_ttl)),
        };
        let moved = async {
            self.put_dead_letter(letter.clone(), &message.body).await?;
            self.queue
                .move_to_dead_letter(&self.config.queue, message)
                .await
        }
        .await;
        if let Err(e) = moved {
            tracing::error!(error = %e, "could not dead-letter the message; it stays on its queue");
            return (Outcome::Retrying, Disposition::Retry);
        }
        let at = self.audit_time();
        let entry = AuditEntry {
            record_key,
            at,
            event_id: letter.event_id.unwrap_or_default(),
            connection: letter.connection.unwrap_or_default(),
            target: self.config.queue.clone(),
            origin: None,
            operation: String::new(),
            outcome: Outcome::Rejected,
            before: None,
            written: None,
            error_class: Some(UNDECODABLE_CLASS.into()),
            error_message: Some(letter.reason),
            vendor_request_id: None,
            attempt: message.receive_count,
            duration_ms: elapsed_ms(started),
            message_id: Some(message.message_id.clone()),
            expires_at: Some(after(at, self.config.audit_ttl)),
        };
        if let Err(e) = self.store.record_audit(&entry).await {
            tracing::error!(error = %e, "could not audit the rejection");
        }
        (Outcome::Rejected, Disposition::MovedToDeadLetter)
    }

    fn stage(&self) -> String {
        format!("worker:{}", self.config.queue)
    }

    async fn put_event_dead_letter(&self, a: &Attempt<'_>, err: &HandlerError) -> PortResult<()> {
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
    async fn put_dead_letter(&self, mut letter: DeadLetter, body: &str) -> PortResult<()> {
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

    async fn complete(&self, a: &mut Attempt<'_>, outcome: Outcome) -> PortResult<()> {
        let expires = after(self.clock.now(), self.config.idempotency_ttl);
        self.store.complete(&a.key, outcome, expires).await?;
        // Done, no longer a claim: abandoning now would erase the outcome.
        a.claimed = false;
        Ok(())
    }

    async fn resolve(&self, a: &Attempt<'_>) -> PortResult<()> {
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

    async fn abandon_quietly(&self, key: &str) {
        if let Err(e) = self.store.abandon(key).await {
            tracing::warn!(error = %e, "could not release the claim; it lapses with its lease");
        }
    }

    /// The clock's time in whole milliseconds, and strictly later than the last audit time
    /// this harness handed out. An audit item's key is its time (to the millisecond), event and
    /// connection: two attempts of one event within a millisecond — a duplicate right behind
    /// its original on the embedded store — would otherwise overwrite each other.
    fn audit_time(&self) -> DateTime<Utc> {
        let now = self.clock.now();
        let mut last = self.last_audit_ms.lock().unwrap_or_else(|p| p.into_inner());
        let ms = now.timestamp_millis().max(last.saturating_add(1));
        *last = ms;
        DateTime::from_timestamp_millis(ms).unwrap_or(now)
    }

    async fn audit(
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
fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn elapsed_ms(since: Instant) -> u64 {
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
