//! Phase 3: a claimed event's result settled on its message — audit, idempotency outcome,
//! dead letters, and what the queue does with the message next.

use std::time::Duration;

use super::record::Details;
use super::{Attempt, Harness, Settled};
use crate::ports::{Outcome, PortResult};
use crate::worker::backoff;
use crate::worker::handler::{Handled, HandlerError};
use crate::worker::report::Disposition;

impl Harness {
    /// Settles the handler's result for the attempt's event (`calls`: handler calls it took).
    /// When a port fails on the way, the claim is released and the message stays on its queue.
    pub(super) async fn settle(
        &self,
        a: &mut Attempt<'_>,
        result: Result<Handled, HandlerError>,
        calls: u32,
    ) -> Settled {
        match self.settle_result(a, result, calls).await {
            Ok(settled) => settled,
            Err(err) => {
                tracing::error!(error = %err, "a port call failed; the message stays on its queue");
                self.release(a).await;
                (Outcome::Retrying, Disposition::Retry)
            }
        }
    }

    async fn settle_result(
        &self,
        a: &mut Attempt<'_>,
        result: Result<Handled, HandlerError>,
        calls: u32,
    ) -> PortResult<Settled> {
        let err = match result {
            Ok(handled) => return self.succeeded(a, handled).await,
            Err(err) => err,
        };
        // A hold outranks the receive count: a held message is never dead-lettered.
        if let Some(until) = err.hold_until() {
            return Ok(self.hold(a, &err, until).await);
        }
        if err.is_transient() && !self.last_receive(a.message) {
            tracing::warn!(calls, error = %err, "transient failure; back to the queue");
            Ok(self.retry_later(a, &err).await)
        } else if err.is_transient() {
            tracing::error!(calls, error = %err, "transient failure on the last receive");
            self.give_up(a, &err).await
        } else {
            tracing::error!(error = %err, "permanent failure");
            self.dead_letter_now(a, &err).await
        }
    }

    /// Audit, then complete: if the audit write fails the work is redone (the target sees an
    /// unchanged record) rather than left unrecorded.
    async fn succeeded(&self, a: &mut Attempt<'_>, handled: Handled) -> PortResult<Settled> {
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

    /// Back to the queue with a growing visibility timeout. Every write here is best-effort:
    /// the message is retried whatever happens.
    pub(super) async fn retry_later(&self, a: &mut Attempt<'_>, err: &HandlerError) -> Settled {
        self.release(a).await;
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
    pub(super) async fn give_up(
        &self,
        a: &mut Attempt<'_>,
        err: &HandlerError,
    ) -> PortResult<Settled> {
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
    ) -> PortResult<Settled> {
        self.put_event_dead_letter(a, err).await?;
        self.queue
            .move_to_dead_letter(&self.config.queue, a.message)
            .await?;
        // The message has left the queue: from here on a failure cannot send it back.
        if let Err(e) = self.complete(a, Outcome::DeadLettered).await {
            tracing::error!(error = %e, "could not record the dead-lettered outcome");
            self.release(a).await;
        }
        if let Err(e) = self
            .audit(a, Outcome::DeadLettered, Details::error(err))
            .await
        {
            tracing::error!(error = %e, "could not audit the dead letter");
        }
        Ok((Outcome::DeadLettered, Disposition::MovedToDeadLetter))
    }
}
