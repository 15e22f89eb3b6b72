//! Holds on the embedded queue and store: the edges the scenario tests in
//! `tests/tests/worker_harness.rs` leave out.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::adapters::embedded::EmbeddedDb;
use crate::event::{Origin, SourceEvent, SourceRef};
use crate::ports::{
    Begin, DeadLetter, DeadLetters, Idempotency, ManualClock, OutgoingMessage, PortError,
    PortResult, QueueDepth, SendFailure,
};
use crate::vendor::Vendor;
use crate::worker::handler::{Handled, HandlerError};

const QUEUE: &str = "hubspot";

/// Holds every event until `until`.
struct Holds {
    until: DateTime<Utc>,
}

#[async_trait]
impl TargetHandler for Holds {
    async fn handle(&self, _: &SyncEvent) -> Result<Handled, HandlerError> {
        Err(HandlerError::transient("daily limit").with_hold_until(self.until))
    }
}

/// The embedded queue, with sends that fail while `refuse` is set.
struct Refusing {
    db: EmbeddedDb,
    refuse: AtomicBool,
}

#[async_trait]
impl Queue for Refusing {
    async fn send_batch(
        &self,
        queue: &str,
        messages: &[OutgoingMessage],
    ) -> PortResult<Vec<SendFailure>> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(PortError::backend("test", "SendMessageBatch: outage"));
        }
        self.db.send_batch(queue, messages).await
    }
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> PortResult<Vec<ReceivedMessage>> {
        self.db.receive(queue, max, visibility).await
    }
    async fn delete(&self, queue: &str, receipt: &str) -> PortResult<()> {
        self.db.delete(queue, receipt).await
    }
    async fn change_visibility(&self, q: &str, receipt: &str, t: Duration) -> PortResult<()> {
        self.db.change_visibility(q, receipt, t).await
    }
    async fn move_to_dead_letter(&self, q: &str, m: &ReceivedMessage) -> PortResult<()> {
        self.db.move_to_dead_letter(q, m).await
    }
    async fn redrive(&self, queue: &str) -> PortResult<String> {
        self.db.redrive(queue).await
    }
    async fn depth(&self, queue: &str) -> PortResult<QueueDepth> {
        self.db.depth(queue).await
    }
}

struct World {
    clock: Arc<ManualClock>,
    db: EmbeddedDb,
    queue: Arc<Refusing>,
    harness: Harness,
}

impl World {
    /// A queue redriving after `max_receives`, and a harness holding every event for `hold`.
    async fn new(max_receives: u32, hold: TimeDelta) -> Self {
        let clock = Arc::new(ManualClock::at_unix(1_772_000_000));
        let db = EmbeddedDb::in_memory(clock.clone()).unwrap();
        db.declare_queue(QUEUE, max_receives, Duration::from_secs(30))
            .await
            .unwrap();
        let queue = Arc::new(Refusing {
            db: db.clone(),
            refuse: AtomicBool::new(false),
        });
        let mut config = HarnessConfig::new(QUEUE);
        config.max_receives = max_receives;
        let until = clock.now() + hold;
        let harness = Harness::new(
            queue.clone(),
            Arc::new(db.clone()),
            clock.clone(),
            Arc::new(Holds { until }),
            config,
        );
        let event = SourceEvent {
            event_id: "evt-1".into(),
            source: SourceRef {
                vendor: Vendor::Freshbooks,
                account: "acct".into(),
            },
            entity: "client".into(),
            entity_id: "1".into(),
            operation: "update".into(),
            occurred_at: None,
            detail: Default::default(),
        }
        .for_connection("fb-to-hs", Origin::Webhook, clock.now());
        let sent = db
            .send_batch(QUEUE, &[OutgoingMessage::new("m", event.to_json())])
            .await
            .unwrap();
        assert!(sent.is_empty());
        Self {
            clock,
            db,
            queue,
            harness,
        }
    }

    async fn receive(&self) -> Vec<ReceivedMessage> {
        self.db
            .receive(QUEUE, 10, Duration::from_secs(30))
            .await
            .unwrap()
    }

    /// Receives and handles one batch; the message's disposition.
    async fn round(&self) -> Disposition {
        let messages = self.receive().await;
        assert_eq!(messages.len(), 1);
        let report = self.harness.process_batch(messages, None).await;
        assert_eq!(report.messages[0].outcome, Outcome::Retrying);
        report.messages[0].disposition
    }

    fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
    }

    /// No dead letter, and the claim released for the next delivery.
    async fn assert_nothing_left_behind(&self) {
        let letter = DeadLetter::id_for_event("fb-to-hs", "evt-1");
        assert!(self.db.get_dead_letter(&letter).await.unwrap().is_none());
        let begin = self
            .db
            .begin("fb-to-hs#evt-1", self.clock.now(), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(begin, Begin::Proceed { replay: false });
        self.db.abandon("fb-to-hs#evt-1").await.unwrap();
    }
}

#[tokio::test]
async fn a_long_hold_hides_the_message_for_at_most_11_h_45() {
    let w = World::new(5, TimeDelta::days(2)).await;
    assert_eq!(w.round().await, Disposition::Retry);
    w.assert_nothing_left_behind().await;
    w.advance(TimeDelta::minutes(11 * 60 + 44));
    assert!(w.receive().await.is_empty());
    w.advance(TimeDelta::minutes(2));
    let back = w.receive().await;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].receive_count, 2);
}

#[tokio::test]
async fn a_hold_already_over_frees_the_message_at_once() {
    let w = World::new(5, TimeDelta::minutes(-1)).await;
    assert_eq!(w.round().await, Disposition::Retry);
    assert_eq!(w.receive().await.len(), 1);
}

#[tokio::test]
async fn on_the_last_receives_a_copy_replaces_the_message() {
    let w = World::new(3, TimeDelta::minutes(20)).await;
    // A receive spent elsewhere: the next one, 2 of 3, is followed only by the last.
    let first = w.receive().await;
    w.db.change_visibility(QUEUE, &first[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    let original = w.receive().await;
    assert_eq!(original[0].receive_count, 2);
    let report = w.harness.process_batch(original.clone(), None).await;
    assert_eq!(report.messages[0].disposition, Disposition::Done);
    w.assert_nothing_left_behind().await;
    w.db.delete(QUEUE, &original[0].receipt).await.unwrap();
    // The copy waits SQS's longest delay, 15 of the hold's 20 minutes, and starts over.
    w.advance(TimeDelta::minutes(14));
    assert!(w.receive().await.is_empty());
    w.advance(TimeDelta::minutes(2));
    let copy = w.receive().await;
    assert_eq!(copy.len(), 1);
    assert_eq!(copy[0].receive_count, 1);
    assert_ne!(copy[0].message_id, original[0].message_id);
    assert_eq!(copy[0].body, original[0].body);
}

#[tokio::test]
async fn a_copy_that_cannot_be_sent_keeps_the_original() {
    let w = World::new(2, TimeDelta::hours(1)).await;
    w.queue.refuse.store(true, Ordering::SeqCst);
    assert_eq!(w.round().await, Disposition::Retry);
    w.assert_nothing_left_behind().await;
    let depth = w.db.depth(QUEUE).await.unwrap();
    assert_eq!((depth.in_flight, depth.dead), (1, 0), "only the original");
}
