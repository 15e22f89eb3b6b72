//! What a batch came to: per message, its outcome and what the consumer must do with it.

use crate::observability::{self, Metric};
use crate::ports::Outcome;

/// What is left for the consumer to do with a message after the harness is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Finished (handled, a duplicate, or deliberately skipped): delete it.
    Done,
    /// Leave it on the queue: it is redelivered after its visibility timeout, or moved to the
    /// dead-letter queue by the queue's redrive policy if this was its last receive.
    Retry,
    /// Already moved to the dead-letter queue by the harness: nothing left to delete.
    MovedToDeadLetter,
}

/// One message's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageReport {
    /// The queue's id for the message.
    pub message_id: String,
    /// What the audit trail recorded (`Retrying` also when a port failed before anything was
    /// recorded).
    pub outcome: Outcome,
    /// What the consumer must still do with the message.
    pub disposition: Disposition,
}

/// The result of [`super::Harness::process_batch`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Every message of the batch, in order.
    pub messages: Vec<MessageReport>,
    /// The ids SQS must keep (disposition [`Disposition::Retry`]): a Lambda returns them as
    /// `batchItemFailures`; everything else in the batch counts as done.
    pub failed: Vec<String>,
}

impl BatchReport {
    pub(crate) fn push(&mut self, message_id: String, outcome: Outcome, disposition: Disposition) {
        if disposition == Disposition::Retry {
            self.failed.push(message_id.clone());
        }
        self.messages.push(MessageReport {
            message_id,
            outcome,
            disposition,
        });
    }

    /// The outcome of the message with this id, if it was in the batch.
    pub fn outcome(&self, message_id: &str) -> Option<Outcome> {
        self.find(message_id).map(|m| m.outcome)
    }

    /// The disposition of the message with this id, if it was in the batch.
    pub fn disposition(&self, message_id: &str) -> Option<Disposition> {
        self.find(message_id).map(|m| m.disposition)
    }

    fn find(&self, message_id: &str) -> Option<&MessageReport> {
        self.messages.iter().find(|m| m.message_id == message_id)
    }

    /// Publishes the batch's counters, one metric line each rather than one per message.
    pub(crate) fn publish_metrics(&self) {
        let n = |o: Outcome| self.messages.iter().filter(|m| m.outcome == o).count() as u64;
        let dead = n(Outcome::DeadLettered) + n(Outcome::Rejected);
        observability::count(Metric::EventsSynced, n(Outcome::Synced));
        observability::count(Metric::EventsUnchanged, n(Outcome::Unchanged));
        observability::count(Metric::EventsFailed, n(Outcome::Retrying) + dead);
        observability::count(Metric::DeadLettered, dead);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_retries_are_failed() {
        let mut r = BatchReport::default();
        r.push("a".into(), Outcome::Synced, Disposition::Done);
        r.push("b".into(), Outcome::Retrying, Disposition::Retry);
        r.push(
            "c".into(),
            Outcome::DeadLettered,
            Disposition::MovedToDeadLetter,
        );
        r.push("d".into(), Outcome::DeadLettered, Disposition::Retry);
        assert_eq!(r.failed, ["b", "d"]);
        assert_eq!(r.outcome("c"), Some(Outcome::DeadLettered));
        assert_eq!(r.disposition("a"), Some(Disposition::Done));
        assert_eq!(r.outcome("zz"), None);
        r.publish_metrics();
    }
}
