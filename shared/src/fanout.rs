//! Fan-out: each source event becomes one [`SyncEvent`] per enabled connection of its source,
//! sent to the connection's target queue in `SendMessageBatch` calls.
//!
//! The webhook handler and the poller both produce events through [`FanOut`], so an event has
//! the same shape, the same oversize handling and the same "no queue" dead letter whichever way
//! it was found (docs/architecture.md, "All sync work goes through a queue").

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::connections::ConnectionSet;
use crate::event::{MAX_MESSAGE_BYTES, Origin, SourceEvent, SyncEvent};
use crate::observability::{self, Metric};
use crate::ports::queue::send_all;
use crate::ports::{Clock, DeadLetter, DeadLetterStatus, OutgoingMessage, PortError, Queue, Store};

/// What one [`FanOut::enqueue`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOutReport {
    /// Source events handed in.
    pub(crate) events: usize,
    /// Messages now in a target queue.
    pub queued: usize,
    /// Messages kept as `no_queue` dead letters: their target has no queue in this deployment.
    pub dead_lettered: usize,
    /// Source events no enabled connection takes (logged and dropped).
    unmatched: usize,
}

/// Why events could not all be enqueued. Some messages may already be in a queue: callers
/// retry the whole set (the webhook answers 5xx, the poller keeps its cursor), and the
/// workers' idempotency makes the repeats harmless.
#[derive(Debug, thiserror::Error)]
pub enum FanOutError {
    /// The queue accepted the call but refused some messages.
    #[error("queue `{queue}` refused {refused} message(s): {first_reason}")]
    Refused {
        /// The target queue (a vendor's name, e.g. `mailchimp`).
        queue: String,
        /// How many messages it refused.
        refused: usize,
        /// The queue's reason for the first of them (the others are logged).
        first_reason: String,
    },
    /// The queue or the store could not be reached.
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Sends source events to the queues of every connection that takes them. Build one per
/// process and share it.
pub struct FanOut {
    queue: Arc<dyn Queue>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// How long stored oversize bodies and `no_queue` dead letters are kept.
    retention: Duration,
}

impl FanOut {
    /// `retention` bounds the life of what the fan-out stores (oversize event details,
    /// `no_queue` dead letters); use the deployment's dead-letter retention.
    pub fn new(
        queue: Arc<dyn Queue>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        retention: Duration,
    ) -> Self {
        Self {
            queue,
            store,
            clock,
            retention,
        }
    }

    /// Enqueues `events` for every enabled connection of their sources in `connections`,
    /// stamped with `origin` and the current time. Returns once every message is in a queue or,
    /// when its target has no queue, kept as a dead letter that `replay` can find.
    pub async fn enqueue(
        &self,
        connections: &ConnectionSet,
        events: &[SourceEvent],
        origin: Origin,
    ) -> Result<FanOutReport, FanOutError> {
        let now = self.clock.now();
        let mut report = FanOutReport {
            events: events.len(),
            ..FanOutReport::default()
        };
        let mut by_queue: BTreeMap<&str, Vec<SyncEvent>> = BTreeMap::new();
        for event in events {
            let mut matched = false;
            for (name, connection) in connections.for_source(&event.source) {
                matched = true;
                by_queue
                    .entry(connection.queue())
                    .or_default()
                    .push(event.for_connection(name, origin, now));
            }
            if !matched {
                report.unmatched += 1;
                tracing::warn!(
                    source = %event.source, event_id = %event.event_id, origin = origin.as_str(),
                    "no enabled connection takes events from this source; event ignored"
                );
            }
        }
        observability::count(Metric::EventsReceived, events.len() as u64);

        for (queue, sync_events) in by_queue {
            let mut messages = Vec::with_capacity(sync_events.len());
            for (i, event) in sync_events.iter().enumerate() {
                messages.push(OutgoingMessage::new(
                    format!("m{i}"),
                    self.message_body(event).await?,
                ));
            }
            match send_all(self.queue.as_ref(), queue, &messages).await {
                Ok(failures) if failures.is_empty() => report.queued += messages.len(),
                Ok(failures) => {
                    for f in &failures {
                        tracing::error!(queue, message = %f.id, reason = %f.reason, "queue refused a message");
                    }
                    return Err(FanOutError::Refused {
                        queue: queue.to_string(),
                        refused: failures.len(),
                        first_reason: failures[0].reason.clone(),
                    });
                }
                Err(PortError::NotFound { .. }) => {
                    // A connection whose target has no queue in this deployment: retrying will
                    // not help, so keep the events where `replay` can find them once the worker
                    // exists.
                    for event in &sync_events {
                        self.dead_letter_event(event, queue, now).await?;
                    }
                    report.dead_lettered += sync_events.len();
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(report)
    }

    /// The queue message for an event; a detail too large for SQS is stored and referenced,
    /// never truncated.
    async fn message_body(&self, event: &SyncEvent) -> Result<String, PortError> {
        let body = event.to_json();
        if body.len() <= MAX_MESSAGE_BYTES {
            return Ok(body);
        }
        let key = format!("event/{}/{}", event.connection, event.event_id);
        let detail = serde_json::Value::Object(event.detail.clone()).to_string();
        self.store
            .put_blob(&key, detail.as_bytes(), Some(self.expiry(self.clock.now())))
            .await?;
        let mut slim = event.clone();
        slim.detail.clear();
        slim.detail_ref = Some(key);
        Ok(slim.to_json())
    }

    /// Keeps an event whose connection's target has no queue as an open dead letter, stage
    /// `<origin>:<source vendor>` (e.g. `webhook:freshbooks`, `poll:freshbooks`).
    async fn dead_letter_event(
        &self,
        event: &SyncEvent,
        queue: &str,
        now: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let id = DeadLetter::id_for_event(&event.connection, &event.event_id);
        let letter = DeadLetter {
            id: id.clone(),
            stage: format!("{}:{}", event.origin.as_str(), event.source.vendor),
            queue: Some(queue.to_string()),
            event_id: Some(event.event_id.clone()),
            record_key: Some(event.record_key()),
            connection: Some(event.connection.to_string()),
            error_class: "no_queue".to_string(),
            reason: format!(
                "connection `{}` targets `{queue}`, which has no queue in this deployment; deploy its worker, then replay",
                event.connection
            ),
            vendor_request_id: None,
            attempts: 1,
            payload: event.to_json(),
            status: DeadLetterStatus::Open,
            created_at: now,
            resolved_at: None,
            expires_at: Some(self.expiry(now)),
        };
        self.store.put_dead_letter(&letter).await?;
        observability::count(Metric::DeadLettered, 1);
        tracing::error!(event_id = %event.event_id, connection = %event.connection, queue, dead_letter = %id, "no queue for target; dead-lettered");
        Ok(())
    }

    fn expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::days(365))
    }
}

impl std::fmt::Debug for FanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanOut")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}
