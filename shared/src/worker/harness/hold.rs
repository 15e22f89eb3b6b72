//! Holds: a vendor refusing every call until a set time (a daily quota) keeps the event's
//! message in its queue until then, without spending the receives that would dead-letter it
//! (docs/architecture.md, "Vendor limits").

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::record::Details;
use super::{Attempt, Harness, Settled};
use crate::ports::queue::MAX_DELAY;
use crate::ports::{Outcome, OutgoingMessage};
use crate::worker::handler::HandlerError;
use crate::worker::report::Disposition;

/// The error class audit entries carry for a held event.
pub(super) const HELD_CLASS: &str = "held";

/// The longest a held message is hidden in one go. SQS refuses a visibility timeout that
/// would hide a message more than 12 hours after it was received, and this invocation may
/// have run up to 15 minutes (Lambda's limit) since the receive.
const MAX_HOLD_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60 - 15 * 60);

/// The batch entry id of a held message's fresh copy (the only entry of its batch).
const COPY_ID: &str = "held";

impl Harness {
    /// Holds the attempt's message until `until`: the claim is released and the hold audited
    /// (`retrying`, class `held`). While the message has receives to spare it is hidden until
    /// then (at most [`MAX_HOLD_VISIBILITY`]); otherwise a fresh copy of it — whose receive
    /// count starts over — is sent with a delay towards then (at most SQS's 15 minutes, after
    /// which the copy is held again, hidden) and the original is done. Either way no dead
    /// letter is written: the event has not failed, the vendor is closed.
    pub(super) async fn hold(
        &self,
        a: &mut Attempt<'_>,
        err: &HandlerError,
        until: DateTime<Utc>,
    ) -> Settled {
        self.release(a).await;
        let note = format!(
            "{}; held until {}",
            err.message(),
            until.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        let details = Details {
            error_class: Some(HELD_CLASS),
            error_message: Some(&note),
            vendor_request_id: err.vendor_request_id(),
            ..Details::default()
        };
        if let Err(e) = self.audit(a, Outcome::Retrying, details).await {
            tracing::warn!(error = %e, "could not audit the hold");
        }
        let wait = (until - self.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        // The next receive must not be the last: on it a transient failure is final, and
        // past it SQS's redrive policy moves the message to the dead-letter queue.
        let spare = a.message.receive_count.saturating_add(1) < self.config.max_receives;
        if spare {
            self.hide_until(a, until, wait).await
        } else {
            self.send_fresh_copy(a, until, wait).await
        }
    }

    /// Hides the received message for `wait` (capped). Best-effort: if the change fails, the
    /// message comes back after its current timeout and is held again.
    async fn hide_until(&self, a: &Attempt<'_>, until: DateTime<Utc>, wait: Duration) -> Settled {
        let timeout = wait.min(MAX_HOLD_VISIBILITY);
        tracing::warn!(%until, hidden_s = timeout.as_secs(), "held; hidden in its queue");
        if let Err(e) = self
            .queue
            .change_visibility(&self.config.queue, &a.message.receipt, timeout)
            .await
        {
            tracing::warn!(error = %e, "could not hide the held message; the queue's default applies");
        }
        (Outcome::Retrying, Disposition::Retry)
    }

    /// Sends a copy of the message's body to its queue, delayed by `wait` (capped), and
    /// settles the original as done. If the copy cannot be sent the original stays, to be
    /// held again on its next receive.
    async fn send_fresh_copy(
        &self,
        a: &Attempt<'_>,
        until: DateTime<Utc>,
        wait: Duration,
    ) -> Settled {
        let delay = wait.min(MAX_DELAY);
        let copy = OutgoingMessage::new(COPY_ID, a.message.body.clone()).with_delay(delay);
        let refused = match self.queue.send_batch(&self.config.queue, &[copy]).await {
            Ok(refused) => refused.into_iter().next().map(|f| f.reason),
            Err(e) => Some(e.to_string()),
        };
        match refused {
            None => {
                tracing::warn!(
                    %until,
                    delay_s = delay.as_secs(),
                    "held on its last receives; a fresh copy waits in the queue"
                );
                (Outcome::Retrying, Disposition::Done)
            }
            Some(reason) => {
                tracing::error!(
                    reason,
                    "could not send the held message's fresh copy; the message stays"
                );
                (Outcome::Retrying, Disposition::Retry)
            }
        }
    }
}
