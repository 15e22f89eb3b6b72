//! The local host: the worker as a poll loop over the queue port (local mode, tests).

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::harness::Harness;
use super::report::{BatchReport, Disposition};
use crate::ports::PortResult;

/// How the local loop polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollOptions {
    /// Messages per receive (SQS allows at most 10).
    pub max_messages: usize,
    /// How long received messages stay hidden; also the batch's deadline.
    pub visibility: Duration,
    /// First wait after an empty receive or a failed one.
    pub idle_min: Duration,
    /// The longest wait between polls of an idle queue.
    pub idle_max: Duration,
}

impl Default for PollOptions {
    fn default() -> Self {
        Self {
            max_messages: 10,
            visibility: Duration::from_secs(60),
            idle_min: Duration::from_millis(100),
            idle_max: Duration::from_secs(2),
        }
    }
}

/// Receives up to `max` messages, handles them, and deletes those that are done. The batch's
/// deadline is the visibility timeout: past it the messages could be handed to someone else.
pub async fn run_once(
    harness: &Harness,
    max: usize,
    visibility: Duration,
) -> PortResult<BatchReport> {
    let queue = harness.queue();
    let name = &harness.config().queue;
    let messages = queue.receive(name, max, visibility).await?;
    if messages.is_empty() {
        return Ok(BatchReport::default());
    }
    let receipts: Vec<(String, String)> = messages
        .iter()
        .map(|m| (m.message_id.clone(), m.receipt.clone()))
        .collect();
    let report = harness
        .process_batch(messages, Some(Instant::now() + visibility))
        .await;
    for (message_id, receipt) in receipts {
        if report.disposition(&message_id) != Some(Disposition::Done) {
            continue;
        }
        if let Err(e) = queue.delete(name, &receipt).await {
            // Redelivered later and recorded as a duplicate: wasteful, not wrong.
            tracing::warn!(%message_id, error = %e, "could not delete a handled message");
        }
    }
    Ok(report)
}

/// Polls until `shutdown` turns `true` (or its sender is dropped), backing off while the queue
/// is idle or unreachable. A batch in progress is finished before it returns.
pub async fn run_until(
    harness: &Harness,
    options: PollOptions,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut idle = options.idle_min;
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        let wait = match run_once(harness, options.max_messages, options.visibility).await {
            Ok(report) if !report.messages.is_empty() => {
                idle = options.idle_min;
                continue;
            }
            Ok(_) => idle,
            Err(e) => {
                tracing::warn!(queue = %harness.config().queue, error = %e, "receive failed");
                idle
            }
        };
        idle = idle.saturating_mul(2).min(options.idle_max);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
