//! [`Harness`]: one batch of queue messages through a [`TargetHandler`], with idempotency,
//! retries, dead letters and an audit entry per attempt (docs/architecture.md, "Idempotency", "Failures",
//! "Audit trail").
//!
//! A batch goes through in three phases: each message is decoded and its event claimed
//! ([`claim`]); the claimed events go to the handler together, in one
//! [`TargetHandler::handle_batch`] call ([`invoke`]); each message is settled on its own from
//! its event's result ([`settle`], [`hold`]). A bad record, a failed port call or a failed
//! event changes that message's [`Disposition`] and nothing else. A message is never lost:
//! whenever the harness cannot prove its work is recorded, the message stays on its queue.

mod claim;
mod hold;
mod record;
mod settle;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tracing::{Instrument, Span};

use super::config::HarnessConfig;
use super::handler::TargetHandler;
use super::invoke;
use super::report::{BatchReport, Disposition};
use crate::event::SyncEvent;
use crate::ports::{Clock, Outcome, Queue, ReceivedMessage, Store};

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

/// What a message came to: its audit outcome and what the consumer must do with it.
type Settled = (Outcome, Disposition);

/// Attempts with the index of their message in the batch.
type Indexed<'a> = Vec<(usize, Attempt<'a>)>;

/// The state of one message's attempt, from its decoded event to its settlement.
struct Attempt<'a> {
    message: &'a ReceivedMessage,
    event: SyncEvent,
    /// `<connection>#<event_id>`.
    key: String,
    started: Instant,
    /// The event was dead-lettered before: this delivery is a redrive.
    replay: bool,
    /// This attempt holds the idempotency claim (and must abandon it if it gives up).
    claimed: bool,
}

impl Harness {
    /// A harness consuming `config.queue` through `queue`, recording in `store` and running
    /// `handler` on the decoded events of each batch.
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
        let spans: Vec<Span> = messages.iter().map(|m| self.message_span(m)).collect();
        let mut settled: Vec<Option<Settled>> = vec![None; messages.len()];
        let mut waiting = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            match self
                .decode(message, deadline)
                .instrument(spans[i].clone())
                .await
            {
                Ok(attempt) => waiting.push((i, attempt)),
                Err(done) => settled[i] = Some(done),
            }
        }
        // Two copies of one event in a batch: the second waits for the first to be settled,
        // as if it came in the next batch, so it is seen as a duplicate (or handled afresh if
        // the first failed), not as a copy in progress. Usually there is a single round.
        while !waiting.is_empty() {
            let (round, later) = first_copies(waiting);
            for (i, done) in self.round(round, deadline, &spans).await {
                settled[i] = Some(done);
            }
            waiting = later;
        }
        let mut report = BatchReport::default();
        for (message, done) in messages.into_iter().zip(settled) {
            // Every message is settled above; the fallback keeps it on its queue regardless.
            let (outcome, disposition) = done.unwrap_or((Outcome::Retrying, Disposition::Retry));
            report.push(message.message_id, outcome, disposition);
        }
        report.publish_metrics();
        report
    }

    /// The span every log line about `message` is in; `decode` fills in the event's ids.
    fn message_span(&self, message: &ReceivedMessage) -> Span {
        tracing::info_span!(
            "message",
            queue = %self.config.queue,
            message_id = %message.message_id,
            receive_count = message.receive_count,
            event_id = tracing::field::Empty,
            connection = tracing::field::Empty,
        )
    }

    /// Claims each attempt's event, hands the claimed ones to the handler in one batch, and
    /// settles every attempt. Returns what each message (by its index in the batch) came to.
    async fn round(
        &self,
        attempts: Indexed<'_>,
        deadline: Option<Instant>,
        spans: &[Span],
    ) -> Vec<(usize, Settled)> {
        let mut done = Vec::with_capacity(attempts.len());
        let mut claimed = Vec::with_capacity(attempts.len());
        for (i, mut attempt) in attempts {
            match self
                .claim(&mut attempt, deadline)
                .instrument(spans[i].clone())
                .await
            {
                ControlFlow::Continue(()) => claimed.push((i, attempt)),
                ControlFlow::Break(settled) => done.push((i, settled)),
            }
        }
        if claimed.is_empty() {
            return done;
        }
        let events: Vec<SyncEvent> = claimed.iter().map(|(_, a)| a.event.clone()).collect();
        let batch = tracing::info_span!("batch", queue = %self.config.queue, events = events.len());
        let answers = invoke::call_with_retries(
            &self.handler,
            &events,
            self.config.retry,
            deadline,
            self.config.deadline_margin,
        )
        .instrument(batch)
        .await;
        for ((i, mut attempt), (result, calls)) in claimed.into_iter().zip(answers) {
            let settled = self
                .settle(&mut attempt, result, calls)
                .instrument(spans[i].clone())
                .await;
            done.push((i, settled));
        }
        done
    }

    fn last_receive(&self, message: &ReceivedMessage) -> bool {
        message.receive_count >= self.config.max_receives
    }

    /// Whether the deadline leaves no time to start on a message.
    fn out_of_time(&self, deadline: Option<Instant>) -> bool {
        super::backoff::budget(Instant::now(), deadline, self.config.deadline_margin)
            == Some(Duration::ZERO)
    }

    fn stage(&self) -> String {
        format!("worker:{}", self.config.queue)
    }
}

/// Splits `attempts` into the first copy of each event and the later copies.
fn first_copies(attempts: Indexed<'_>) -> (Indexed<'_>, Indexed<'_>) {
    let mut keys = HashSet::new();
    attempts
        .into_iter()
        .partition(|(_, a)| keys.insert(a.key.clone()))
}
