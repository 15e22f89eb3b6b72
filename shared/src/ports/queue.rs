//! The queue port: SQS semantics (at-least-once, visibility timeout, receive count, a
//! dead-letter queue per queue with redrive back).
//!
//! Queues are addressed by logical name — the target vendor a worker writes to, e.g. `mailchimp`.
//! Each adapter maps the name to its queue and that queue's dead-letter queue.

use std::time::Duration;

use async_trait::async_trait;

use super::PortResult;

/// SQS's longest delay on a sent message (15 minutes).
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

/// A message to enqueue. `id` is unique within one batch and comes back in [`SendFailure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The message's id within its batch (SQS `Id`), to match refusals to messages.
    pub id: String,
    /// The payload: a serialised [`crate::event::SyncEvent`].
    pub body: String,
    /// How long the message stays invisible after it is sent (SQS `DelaySeconds`, at most
    /// [`MAX_DELAY`]; a longer one is refused). Zero for most messages (the queue's own delay,
    /// none on ours); the harness delays the fresh copy of a held message
    /// (docs/architecture.md, "Vendor limits").
    pub delay: Duration,
}

impl OutgoingMessage {
    /// A message delivered as soon as it is sent.
    pub fn new(id: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// The same message, invisible for `delay` after it is sent.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One message of a batch that the queue refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    /// The refused message's [`OutgoingMessage::id`].
    pub id: String,
    /// The queue's code and message for the refusal.
    pub reason: String,
}

/// A message handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The queue's id for the message (SQS `MessageId`), stable across receives.
    pub message_id: String,
    /// Handle for delete / change-visibility, valid for this receive only.
    pub receipt: String,
    /// The payload as sent.
    pub body: String,
    /// How many times the message has been received, this time included (SQS
    /// `ApproximateReceiveCount`).
    pub receive_count: u32,
}

/// Messages in a queue and in its dead-letter queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Waiting to be received.
    pub visible: u64,
    /// Received and not yet deleted: being handled, or waiting out a visibility timeout.
    pub in_flight: u64,
    /// In the dead-letter queue, waiting for a redrive.
    pub dead: u64,
}

/// The work queues between the webhook (and poller) and the per-target workers.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends up to 10 messages in one call (SQS `SendMessageBatch`). Per-message refusals come
    /// back as [`SendFailure`]s; an `Err` means none can be assumed sent.
    async fn send_batch(
        &self,
        queue: &str,
        messages: &[OutgoingMessage],
    ) -> PortResult<Vec<SendFailure>>;

    /// Receives up to `max` messages, hiding them for `visibility`. Messages whose receive count
    /// would pass the queue's maximum are moved to its dead-letter queue instead.
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> PortResult<Vec<ReceivedMessage>>;

    /// Removes a received message for good.
    async fn delete(&self, queue: &str, receipt: &str) -> PortResult<()>;

    /// Makes a received message visible again after `timeout` (zero: at once).
    async fn change_visibility(
        &self,
        queue: &str,
        receipt: &str,
        timeout: Duration,
    ) -> PortResult<()>;

    /// Moves a received message to the queue's dead-letter queue now, so a redrive replays it.
    async fn move_to_dead_letter(&self, queue: &str, message: &ReceivedMessage) -> PortResult<()>;

    /// Starts moving every message in the dead-letter queue back to `queue` (SQS
    /// `StartMessageMoveTask`). Returns a task handle or a count, as the backend reports it.
    async fn redrive(&self, queue: &str) -> PortResult<String>;

    /// Approximate counts for `queue` and its dead-letter queue.
    async fn depth(&self, queue: &str) -> PortResult<QueueDepth>;
}

/// SQS's limit on messages per `SendMessageBatch`.
pub(crate) const MAX_BATCH: usize = 10;

/// Sends any number of messages in batches of `MAX_BATCH`, collecting refusals.
pub async fn send_all(
    queue: &dyn Queue,
    name: &str,
    messages: &[OutgoingMessage],
) -> PortResult<Vec<SendFailure>> {
    let mut failures = Vec::new();
    for chunk in messages.chunks(MAX_BATCH) {
        failures.extend(queue.send_batch(name, chunk).await?);
    }
    Ok(failures)
}
