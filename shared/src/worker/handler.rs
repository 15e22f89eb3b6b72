//! The contract between the harness and a target's handler.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::Instrument;

use super::invoke::PANICKED;
use crate::event::SyncEvent;
use crate::ports::Outcome;

/// What a target does with one event: fetch the source record's current state, map it, write it.
///
/// The harness owns everything around the call — decoding, idempotency, retries, dead letters,
/// the audit trail — so a handler only says what happened or why it failed. It may be called
/// again for the same event (a retry after a transient failure, a replay), so its writes must be
/// idempotent on the target side (docs/architecture.md, "Idempotency").
#[async_trait]
pub trait TargetHandler: Send + Sync {
    /// Brings the target in line with the event's source record.
    async fn handle(&self, event: &SyncEvent) -> Result<Handled, HandlerError>;

    /// Brings the target in line with several events at once, answering per event in the
    /// order given, so a target with batch endpoints (HubSpot, Marketo) spends one call on
    /// many records. The harness settles each answer as it settles [`TargetHandler::handle`]'s;
    /// an event without an answer (too few results) is a transient failure, and a panic fails
    /// the whole batch transiently.
    ///
    /// By default the events are handled one after another, and a panic fails only the event
    /// it happened on, as when the harness called `handle` per message.
    async fn handle_batch(&self, events: &[SyncEvent]) -> Vec<Result<Handled, HandlerError>> {
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            results.push(one_of_batch(event, self.handle(event)).await);
        }
        results
    }
}

/// Runs `handle`, the handling of `event` within a one-at-a-time batch, as the harness ran a
/// single event's handler: its logs name the event, and a panic inside it becomes a transient
/// [`PANICKED`] failure of this event alone.
pub(crate) async fn one_of_batch<F>(event: &SyncEvent, handle: F) -> Result<Handled, HandlerError>
where
    F: Future<Output = Result<Handled, HandlerError>> + Unpin,
{
    let span = tracing::info_span!(
        "event",
        event_id = %event.event_id,
        connection = %event.connection,
    );
    contain_panic(handle).instrument(span).await
}

async fn contain_panic<F>(mut handle: F) -> Result<Handled, HandlerError>
where
    F: Future<Output = Result<Handled, HandlerError>> + Unpin,
{
    std::future::poll_fn(|cx| {
        // Nothing is shared with the panicking future after this: it is dropped unpolled.
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut handle).poll(cx))) {
            Ok(poll) => poll,
            Err(_) => {
                // The payload is not logged: it may quote the record the handler choked on.
                tracing::error!("{PANICKED}");
                Poll::Ready(Err(HandlerError::transient(PANICKED)))
            }
        }
    })
    .await
}

/// A handled event.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// The target was written. `before` is what the target held (if the handler read it),
    /// `written` what was sent; the harness trims both for the audit trail.
    Synced {
        /// The target record before the write, if the handler read it.
        before: Option<Value>,
        /// The body sent to the target.
        written: Option<Value>,
    },
    /// The target already matched the source; nothing was written.
    Unchanged,
    /// Deliberately not synced (e.g. a draft invoice the connection does not sync).
    Skipped {
        /// Why, for the audit trail (e.g. `client has no email`).
        reason: String,
    },
}

impl Handled {
    /// The audit outcome this result is recorded as.
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Handled::Synced { .. } => Outcome::Synced,
            Handled::Unchanged => Outcome::Unchanged,
            Handled::Skipped { .. } => Outcome::Skipped,
        }
    }
}

/// Why a handler did not finish. Messages end up in logs, the audit trail and dead letters:
/// they must name what failed (status, vendor error code, field) and never carry a token or a
/// whole vendor payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Might succeed later: a timeout, a 5xx, a 429, a lock. Retried in the invocation while
    /// time allows, then by the queue with a growing delay, then dead-lettered.
    #[error("transient: {message}")]
    Transient {
        /// What failed: status, vendor error code, field.
        message: String,
        /// How long the vendor asked us to wait (`Retry-After`), if it did.
        retry_after: Option<Duration>,
        /// The vendor's id for the failed request, for its support.
        vendor_request_id: Option<String>,
        /// The vendor refuses every call until then (a daily quota): the message waits in its
        /// queue until that time without spending its receives.
        hold_until: Option<DateTime<Utc>>,
    },
    /// Will not succeed as is: a validation error, a record in a state the target refuses.
    /// Dead-lettered at once; a replay after the cause is fixed retries it.
    #[error("{class}: {message}")]
    Permanent {
        /// A short, stable label for dashboards and queries (e.g. `validation`, `compliance_state`).
        class: String,
        /// What failed and why it will not succeed as is.
        message: String,
        /// The vendor's id for the failed request, for its support.
        vendor_request_id: Option<String>,
    },
}

/// The error class audit entries and dead letters carry for transient failures.
const TRANSIENT_CLASS: &str = "transient";

impl HandlerError {
    /// A transient failure with no vendor hints.
    pub fn transient(message: impl Into<String>) -> Self {
        HandlerError::Transient {
            message: message.into(),
            retry_after: None,
            vendor_request_id: None,
            hold_until: None,
        }
    }

    /// A permanent failure of the given class.
    pub fn permanent(class: impl Into<String>, message: impl Into<String>) -> Self {
        HandlerError::Permanent {
            class: class.into(),
            message: message.into(),
            vendor_request_id: None,
        }
    }

    /// Adds the vendor's `Retry-After` (ignored on permanent errors, which are never retried).
    pub(crate) fn with_retry_after(mut self, after: Duration) -> Self {
        if let HandlerError::Transient { retry_after, .. } = &mut self {
            *retry_after = Some(after);
        }
        self
    }

    /// Holds the event until `until` (ignored on permanent errors).
    pub(crate) fn with_hold_until(mut self, until: DateTime<Utc>) -> Self {
        if let HandlerError::Transient { hold_until, .. } = &mut self {
            *hold_until = Some(until);
        }
        self
    }

    /// When the vendor will take calls again, for a failure that holds rather than retries.
    pub fn hold_until(&self) -> Option<DateTime<Utc>> {
        match self {
            HandlerError::Transient { hold_until, .. } => *hold_until,
            HandlerError::Permanent { .. } => None,
        }
    }

    /// Adds the vendor's request id, so support can trace the call on their side.
    pub fn with_vendor_request_id(mut self, id: impl Into<String>) -> Self {
        match &mut self {
            HandlerError::Transient {
                vendor_request_id, ..
            }
            | HandlerError::Permanent {
                vendor_request_id, ..
            } => *vendor_request_id = Some(id.into()),
        }
        self
    }

    /// Whether the failure is worth retrying (in the invocation, then through the queue).
    pub fn is_transient(&self) -> bool {
        matches!(self, HandlerError::Transient { .. })
    }

    /// `transient`, or the permanent error's class.
    pub(crate) fn class(&self) -> &str {
        match self {
            HandlerError::Transient { .. } => TRANSIENT_CLASS,
            HandlerError::Permanent { class, .. } => class,
        }
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            HandlerError::Transient { message, .. } | HandlerError::Permanent { message, .. } => {
                message
            }
        }
    }

    /// The vendor's request id, if the failing call returned one.
    pub fn vendor_request_id(&self) -> Option<&str> {
        match self {
            HandlerError::Transient {
                vendor_request_id, ..
            }
            | HandlerError::Permanent {
                vendor_request_id, ..
            } => vendor_request_id.as_deref(),
        }
    }

    /// The `Retry-After` a transient error carries.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            HandlerError::Transient { retry_after, .. } => *retry_after,
            HandlerError::Permanent { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_fill_the_right_variant() {
        let t = HandlerError::transient("HTTP 503")
            .with_retry_after(Duration::from_secs(7))
            .with_vendor_request_id("req-1");
        assert!(t.is_transient());
        assert_eq!(t.class(), "transient");
        assert_eq!(t.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(t.vendor_request_id(), Some("req-1"));
        assert_eq!(t.to_string(), "transient: HTTP 503");

        let p = HandlerError::permanent("validation", "email is invalid")
            .with_retry_after(Duration::from_secs(7))
            .with_vendor_request_id("req-2");
        assert!(!p.is_transient());
        assert_eq!(p.class(), "validation");
        assert_eq!(p.retry_after(), None);
        assert_eq!(p.vendor_request_id(), Some("req-2"));
        assert_eq!(p.message(), "email is invalid");
        assert_eq!(p.to_string(), "validation: email is invalid");
    }

    /// Panics on entity `boom`, syncs anything else; a single-event handler.
    struct PanicsOnBoom;

    #[async_trait]
    impl TargetHandler for PanicsOnBoom {
        async fn handle(&self, event: &SyncEvent) -> Result<Handled, HandlerError> {
            if event.entity_id == "boom" {
                panic!("scripted panic");
            }
            Ok(Handled::Unchanged)
        }
    }

    fn event(entity_id: &str) -> SyncEvent {
        crate::event::SourceEvent {
            event_id: format!("e-{entity_id}"),
            source: crate::event::SourceRef {
                vendor: crate::vendor::Vendor::Freshbooks,
                account: "acct".into(),
            },
            entity: "client".into(),
            entity_id: entity_id.into(),
            operation: "update".into(),
            occurred_at: None,
            detail: Default::default(),
        }
        .for_connection("c", crate::event::Origin::Webhook, DateTime::UNIX_EPOCH)
    }

    #[tokio::test]
    async fn the_default_batch_fails_only_the_event_that_panicked() {
        let results = PanicsOnBoom
            .handle_batch(&[event("a"), event("boom"), event("b")])
            .await;
        assert_eq!(
            results,
            [
                Ok(Handled::Unchanged),
                Err(HandlerError::transient(PANICKED)),
                Ok(Handled::Unchanged),
            ]
        );
    }

    #[test]
    fn handled_maps_to_outcomes() {
        assert_eq!(
            Handled::Synced {
                before: None,
                written: None
            }
            .outcome(),
            Outcome::Synced
        );
        assert_eq!(Handled::Unchanged.outcome(), Outcome::Unchanged);
        assert_eq!(
            Handled::Skipped { reason: "x".into() }.outcome(),
            Outcome::Skipped
        );
    }
}
