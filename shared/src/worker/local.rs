//! The local host: the worker as a poll loop over the queue port (local mode, tests).

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::harness::Harness;
use super::report::{BatchReport, Disposition};
use crate::ports::PortResult;
use crate::ports::queue::MAX_BATCH;

/// How the local loop polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollOptions {
    /// Messages per batch, gathered 10 per receive (SQS allows at most 10 per receive).
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

/// Receives up to `max` messages as one batch, handles them, and deletes those that are done.
/// The batch's deadline is the visibility timeout: past it the messages could be handed to
/// someone else.
///
/// SQS hands out at most 10 messages per receive, so a larger `max` is gathered from several
/// receives (stopping at the first short one), as Lambda's event source mapping gathers a
/// `BatchSize` of up to 10,000: workers whose flows write whole batches (HubSpot's, `BatchSize`
/// 100) see the same batches locally as deployed.
pub async fn run_once(
    harness: &Harness,
    max: usize,
    visibility: Duration,
) -> PortResult<BatchReport> {
    let queue = harness.queue();
    let name = &harness.config().queue;
    let mut messages = queue.receive(name, max, visibility).await?;
    let mut last = messages.len();
    while last == MAX_BATCH && messages.len() < max {
        let more = queue
            .receive(name, (max - messages.len()).min(MAX_BATCH), visibility)
            .await?;
        last = more.len();
        messages.extend(more);
    }
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use crate::adapters::embedded::EmbeddedDb;
    use crate::event::{Origin, SourceEvent, SourceRef, SyncEvent};
    use crate::ports::{Clock, ManualClock, OutgoingMessage, Queue};
    use crate::vendor::Vendor;
    use crate::worker::HarnessConfig;
    use crate::worker::handler::{Handled, HandlerError, TargetHandler};

    /// Records the size of every batch it is handed.
    #[derive(Default)]
    struct Sizes(Mutex<Vec<usize>>);

    #[async_trait]
    impl TargetHandler for Sizes {
        async fn handle(&self, _: &SyncEvent) -> Result<Handled, HandlerError> {
            Ok(Handled::Unchanged)
        }
        async fn handle_batch(&self, events: &[SyncEvent]) -> Vec<Result<Handled, HandlerError>> {
            self.0.lock().unwrap().push(events.len());
            events.iter().map(|_| Ok(Handled::Unchanged)).collect()
        }
    }

    #[tokio::test]
    async fn a_batch_larger_than_one_receive_is_gathered_from_several() {
        let clock = Arc::new(ManualClock::at_unix(1_772_000_000));
        let db = EmbeddedDb::in_memory(clock.clone()).unwrap();
        db.declare_queue("q", 5, Duration::from_secs(30))
            .await
            .unwrap();
        let messages: Vec<OutgoingMessage> = (0..25)
            .map(|i| {
                let event = SourceEvent {
                    event_id: format!("evt-{i}"),
                    source: SourceRef {
                        vendor: Vendor::Freshbooks,
                        account: "acct".into(),
                    },
                    entity: "client".into(),
                    entity_id: i.to_string(),
                    operation: "update".into(),
                    occurred_at: None,
                    detail: Default::default(),
                }
                .for_connection("c", Origin::Webhook, clock.now());
                OutgoingMessage::new(format!("m{i}"), event.to_json())
            })
            .collect();
        for chunk in messages.chunks(10) {
            assert!(db.send_batch("q", chunk).await.unwrap().is_empty());
        }
        let sizes = Arc::new(Sizes::default());
        let harness = Harness::new(
            Arc::new(db.clone()),
            Arc::new(db.clone()),
            clock.clone(),
            sizes.clone(),
            HarnessConfig::new("q"),
        );
        // SQS hands out 10 per receive; a batch of up to 100 takes all 25 in one call.
        let report = run_once(&harness, 100, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(report.messages.len(), 25);
        assert_eq!(*sizes.0.lock().unwrap(), vec![25]);
        assert_eq!(db.depth("q").await.unwrap().visible, 0);
        // A batch of at most 10 is one receive, as before.
        assert!(
            db.send_batch("q", &messages[..10])
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            db.send_batch("q", &messages[10..12])
                .await
                .unwrap()
                .is_empty()
        );
        let report = run_once(&harness, 10, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(report.messages.len(), 10);
    }
}
