//! Fan-out: each source event becomes one queue message per connection of its source.

use std::collections::BTreeMap;

use super::WebhookHandler;
use super::response::{self, Rejection, WebhookResponse};
use crate::event::{MAX_MESSAGE_BYTES, Origin, SourceEvent, SyncEvent};
use crate::observability::{self, Metric};
use crate::ports::queue::send_all;
use crate::ports::{OutgoingMessage, PortError};
use crate::vendor::Vendor;

impl WebhookHandler {
    /// Enqueues the events for every connection of their sources. Answers 200 only once every
    /// message is in a queue (or, when its target has no queue, kept as a dead letter).
    pub(super) async fn enqueue(
        &self,
        vendor: Vendor,
        events: Vec<SourceEvent>,
    ) -> Result<WebhookResponse, Rejection> {
        let connections = self.connections.get().await?;
        let now = self.clock.now();
        let mut by_queue: BTreeMap<&str, Vec<SyncEvent>> = BTreeMap::new();
        for event in &events {
            let mut matched = false;
            for (name, connection) in connections.for_source(&event.source) {
                matched = true;
                by_queue
                    .entry(connection.queue())
                    .or_default()
                    .push(event.for_connection(name, Origin::Webhook, now));
            }
            if !matched {
                tracing::warn!(
                    source = %event.source, event_id = %event.event_id,
                    "no enabled connection takes events from this source; event ignored"
                );
            }
        }
        observability::count(Metric::EventsReceived, events.len() as u64);

        let (mut queued, mut dead) = (0, 0);
        for (queue, sync_events) in by_queue {
            let mut messages = Vec::with_capacity(sync_events.len());
            for (i, event) in sync_events.iter().enumerate() {
                messages.push(OutgoingMessage {
                    id: format!("m{i}"),
                    body: self.message_body(event).await?,
                });
            }
            match send_all(self.queue.as_ref(), queue, &messages).await {
                Ok(failures) if failures.is_empty() => queued += messages.len(),
                Ok(failures) => {
                    for f in &failures {
                        tracing::error!(queue, message = %f.id, reason = %f.reason, "queue refused a message");
                    }
                    return Err(Rejection::unavailable(
                        "some events could not be queued; please retry",
                    ));
                }
                Err(PortError::NotFound { .. }) => {
                    // A connection whose target has no queue in this deployment: retrying will not
                    // help, so keep the events where `replay` can find them once the worker exists.
                    for event in &sync_events {
                        self.dead_letter_event(event, queue).await?;
                    }
                    dead += sync_events.len();
                }
                Err(err) => return Err(err.into()),
            }
        }
        tracing::info!(vendor = %vendor, events = events.len(), queued, dead_lettered = dead, "webhook accepted");
        Ok(response::accepted(events.len(), queued, dead))
    }

    /// The queue message for an event; a detail too large for SQS is stored and referenced.
    async fn message_body(&self, event: &SyncEvent) -> Result<String, Rejection> {
        let body = event.to_json();
        if body.len() <= MAX_MESSAGE_BYTES {
            return Ok(body);
        }
        let key = format!("event/{}/{}", event.connection, event.event_id);
        let detail = serde_json::Value::Object(event.detail.clone()).to_string();
        self.store
            .put_blob(&key, detail.as_bytes(), Some(self.expiry()))
            .await?;
        let mut slim = event.clone();
        slim.detail.clear();
        slim.detail_ref = Some(key);
        Ok(slim.to_json())
    }
}
