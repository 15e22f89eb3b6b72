//! Phase 1: a message's event decoded (or the message rejected) and claimed in the
//! idempotency store (or settled as a duplicate or a copy in progress).

use std::ops::ControlFlow;
use std::time::Duration;

use tokio::time::Instant;

use super::record::{UNDECODABLE_CLASS, after, elapsed_ms};
use super::{Attempt, Harness, Settled};
use crate::event::SyncEvent;
use crate::ports::{
    AuditEntry, Begin, DeadLetter, DeadLetterStatus, Outcome, PortResult, ReceivedMessage,
};
use crate::worker::backoff;
use crate::worker::handler::HandlerError;
use crate::worker::report::Disposition;
use crate::worker::trim::{TEXT_LIMIT, trim_text};

/// A message the harness did not get to: it stays on its queue, unrecorded.
const LEFT_TO_THE_QUEUE: Settled = (Outcome::Retrying, Disposition::Retry);

impl Harness {
    /// The message's event, ready to be claimed; or the message settled: rejected when it is
    /// not a [`SyncEvent`], left to its queue when the deadline is too close.
    pub(super) async fn decode<'a>(
        &self,
        message: &'a ReceivedMessage,
        deadline: Option<Instant>,
    ) -> Result<Attempt<'a>, Settled> {
        let started = Instant::now();
        if self.out_of_time(deadline) {
            tracing::warn!("no time left before the deadline; leaving the message to its queue");
            return Err(LEFT_TO_THE_QUEUE);
        }
        let event = match SyncEvent::from_json(&message.body) {
            Ok(event) => event,
            Err(err) => return Err(self.reject(message, &err.to_string(), started).await),
        };
        let span = tracing::Span::current();
        span.record("event_id", event.event_id.as_str());
        span.record("connection", event.connection.as_str());
        Ok(Attempt {
            message,
            key: format!("{}#{}", event.connection, event.event_id),
            event,
            started,
            replay: false,
            claimed: false,
        })
    }

    /// Claims the attempt's event: `Continue` when the handler is to run it, `Break` with what
    /// the message came to otherwise.
    pub(super) async fn claim(
        &self,
        a: &mut Attempt<'_>,
        deadline: Option<Instant>,
    ) -> ControlFlow<Settled> {
        // Checked again here: a later round of the batch may start close to the deadline.
        if self.out_of_time(deadline) {
            tracing::warn!("no time left before the deadline; leaving the message to its queue");
            return ControlFlow::Break(LEFT_TO_THE_QUEUE);
        }
        match self.begin(a, deadline).await {
            Ok(flow) => flow,
            Err(err) => {
                tracing::error!(error = %err, "a port call failed; the message stays on its queue");
                ControlFlow::Break(LEFT_TO_THE_QUEUE)
            }
        }
    }

    async fn begin(
        &self,
        a: &mut Attempt<'_>,
        deadline: Option<Instant>,
    ) -> PortResult<ControlFlow<Settled>> {
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
                Ok(ControlFlow::Continue(()))
            }
            Begin::Duplicate(prior) => self.duplicate(a, prior).await.map(ControlFlow::Break),
            Begin::InProgress => Ok(ControlFlow::Break(self.in_progress(a).await)),
        }
    }

    /// Already handled: recorded as a duplicate. A success also resolves the event's dead
    /// letter, in case an earlier delivery was dead-lettered while another one succeeded.
    async fn duplicate(&self, a: &Attempt<'_>, prior: Outcome) -> PortResult<Settled> {
        tracing::info!(prior = %prior, "duplicate; already handled");
        self.audit(a, Outcome::Duplicate, Default::default())
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
    async fn in_progress(&self, a: &mut Attempt<'_>) -> Settled {
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
                LEFT_TO_THE_QUEUE
            }
        }
    }

    /// Not a [`SyncEvent`]: kept as a dead letter, moved to the dead-letter queue, audited as
    /// rejected under `message:<id>`.
    async fn reject(&self, message: &ReceivedMessage, reason: &str, started: Instant) -> Settled {
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
            return LEFT_TO_THE_QUEUE;
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
}
