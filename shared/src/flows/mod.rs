//! The flows ml-connector runs: which source vendor may feed which target vendor.
//!
//! Connections are directional. The two-way integrations (QuickBooks Online ↔ Mailchimp,
//! FreshBooks ↔ Stripe) are declared as one connection per direction.

pub mod clients;
pub mod errors;
#[cfg(test)]
pub(crate) mod fakes;
pub mod freshbooks_mailchimp;
pub mod live_clients;
pub mod mailchimp_member;
pub mod mailchimp_quickbooks;
pub mod mailchimp_target;
#[cfg(test)]
pub(crate) mod quickbooks_fake;
pub mod quickbooks_mailchimp;
pub mod quickbooks_target;
pub mod target_worker;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::connections::{CachedConnections, Connection};
use crate::event::SyncEvent;
use crate::flows::errors::from_port;
use crate::vendor::Vendor;
use crate::worker::{Handled, HandlerError, TargetHandler};

/// A directed source → target pair the product implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    FreshbooksToMailchimp,
    QuickbooksToMailchimp,
    MailchimpToQuickbooks,
    FreshbooksToMarketo,
    FreshbooksToHubspot,
    FreshbooksToStripe,
    StripeToFreshbooks,
}

impl Flow {
    pub const ALL: [Flow; 7] = [
        Flow::FreshbooksToMailchimp,
        Flow::QuickbooksToMailchimp,
        Flow::MailchimpToQuickbooks,
        Flow::FreshbooksToMarketo,
        Flow::FreshbooksToHubspot,
        Flow::FreshbooksToStripe,
        Flow::StripeToFreshbooks,
    ];

    /// The flow from `source` to `target`, if the product has one.
    pub fn between(source: Vendor, target: Vendor) -> Option<Flow> {
        Flow::ALL
            .into_iter()
            .find(|f| f.source() == source && f.target() == target)
    }

    pub fn source(self) -> Vendor {
        match self {
            Flow::FreshbooksToMailchimp
            | Flow::FreshbooksToMarketo
            | Flow::FreshbooksToHubspot
            | Flow::FreshbooksToStripe => Vendor::Freshbooks,
            Flow::QuickbooksToMailchimp => Vendor::Quickbooks,
            Flow::MailchimpToQuickbooks => Vendor::Mailchimp,
            Flow::StripeToFreshbooks => Vendor::Stripe,
        }
    }

    pub fn target(self) -> Vendor {
        match self {
            Flow::FreshbooksToMailchimp | Flow::QuickbooksToMailchimp => Vendor::Mailchimp,
            Flow::MailchimpToQuickbooks => Vendor::Quickbooks,
            Flow::FreshbooksToMarketo => Vendor::Marketo,
            Flow::FreshbooksToHubspot => Vendor::Hubspot,
            Flow::FreshbooksToStripe => Vendor::Stripe,
            Flow::StripeToFreshbooks => Vendor::Freshbooks,
        }
    }

    /// Every directed pair, spelled for error messages.
    pub fn list() -> String {
        Flow::ALL
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {}", self.source(), self.target())
    }
}

/// The error for an event on a target's queue whose connection runs no flow into that target
/// (`flow` is the connection's, if it has one): permanent, since no retry will change it.
fn wrong_queue(connection: &str, flow: Option<Flow>, target: Vendor) -> HandlerError {
    HandlerError::permanent(
        "unsupported_flow",
        match flow {
            Some(flow) => format!(
                "connection `{connection}` runs {flow}, which does not write to {target}: the \
                 event is on the wrong queue"
            ),
            None => format!("connection `{connection}` has no flow"),
        },
    )
}

/// The applied connection called `name`, or a permanent error: an event for a connection that
/// is no longer applied cannot be handled until it is applied again (then replay).
async fn lookup_connection(
    connections: &CachedConnections,
    name: &str,
) -> Result<Connection, HandlerError> {
    let set = connections.get().await.map_err(from_port)?;
    set.connections.get(name).cloned().ok_or_else(|| {
        HandlerError::permanent(
            "unknown_connection",
            format!("connection `{name}` is not applied; apply it and replay the dead letter"),
        )
    })
}

/// One flow's handling of an event whose connection a [`TargetDispatch`] has looked up and
/// found to run that flow.
#[async_trait]
pub trait FlowHandler: Send + Sync {
    /// Handles `event` for the connection `name` (already looked up).
    async fn handle_connection(
        &self,
        name: &str,
        connection: &Connection,
        event: &SyncEvent,
    ) -> Result<Handled, HandlerError>;
}

/// A target worker's [`TargetHandler`]: looks up each event's connection and hands the event to
/// the handler of the connection's flow; an event whose connection's flow does not write to
/// `target` is on the wrong queue, a permanent `unsupported_flow` error.
pub struct TargetDispatch {
    target: Vendor,
    connections: Arc<CachedConnections>,
    flows: Vec<(Flow, Box<dyn FlowHandler>)>,
}

impl TargetDispatch {
    /// `flows`: every flow into `target` with its handler.
    pub fn new(
        target: Vendor,
        connections: Arc<CachedConnections>,
        flows: Vec<(Flow, Box<dyn FlowHandler>)>,
    ) -> Self {
        TargetDispatch {
            target,
            connections,
            flows,
        }
    }
}

#[async_trait]
impl TargetHandler for TargetDispatch {
    async fn handle(&self, event: &SyncEvent) -> Result<Handled, HandlerError> {
        let connection = lookup_connection(&self.connections, &event.connection).await?;
        let flow = connection.flow();
        match self.flows.iter().find(|(f, _)| Some(*f) == flow) {
            Some((_, handler)) => {
                handler
                    .handle_connection(&event.connection, &connection, event)
                    .await
            }
            None => Err(wrong_queue(&event.connection, flow, self.target)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flow_is_found_by_its_ends() {
        for flow in Flow::ALL {
            assert_eq!(Flow::between(flow.source(), flow.target()), Some(flow));
        }
        assert_eq!(Flow::between(Vendor::Mailchimp, Vendor::Freshbooks), None);
        assert_eq!(Flow::between(Vendor::Hubspot, Vendor::Freshbooks), None);
    }
}
