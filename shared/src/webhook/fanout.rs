//! Fan-out of a verified delivery through the shared [`crate::fanout::FanOut`]: one queue message per
//! connection of the event's source; the answer reflects what reached a queue.

use super::WebhookHandler;
use crate::event::{Origin, SourceEvent};
use crate::fanout::FanOutError;
use crate::vendor::Vendor;
use crate::vendors::ingress::{Rejection, WebhookResponse, response};

impl WebhookHandler {
    /// Enqueues the events for every connection of their sources. Answers 200 only once every
    /// message is in a queue (or, when its target has no queue, kept as a dead letter).
    pub(super) async fn enqueue(
        &self,
        vendor: Vendor,
        events: Vec<SourceEvent>,
    ) -> Result<WebhookResponse, Rejection> {
        let connections = self.connections.get().await?;
        let report = match self
            .fanout
            .enqueue(&connections, &events, Origin::Webhook)
            .await
        {
            Ok(report) => report,
            Err(FanOutError::Refused { .. }) => {
                return Err(Rejection::unavailable(
                    "some events could not be queued; please retry",
                ));
            }
            Err(FanOutError::Port(err)) => return Err(err.into()),
        };
        tracing::info!(
            vendor = %vendor, events = report.events, queued = report.queued,
            dead_lettered = report.dead_lettered, "webhook accepted"
        );
        Ok(response::accepted(
            report.events,
            report.queued,
            report.dead_lettered,
        ))
    }
}
