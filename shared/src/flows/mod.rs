//! The flows ml-connector runs: one folder per flow (options, pure mapping, orchestration) and
//! one row per flow in [`table::FLOWS`], which is all a worker, `connections check` and the
//! CLI know of it.
//!
//! Connections are directional. The two-way integrations (QuickBooks Online ↔ Mailchimp,
//! FreshBooks ↔ Stripe) are declared as one connection per direction.

pub mod clients;
pub mod connections;
pub mod errors;
pub mod freshbooks_hubspot;
pub mod freshbooks_mailchimp;
mod freshbooks_standing;

pub mod mailchimp_member;
pub mod mailchimp_quickbooks;
pub mod options;
pub mod quickbooks_mailchimp;
mod record_ids;
pub mod table;

use std::sync::Arc;

use async_trait::async_trait;

pub use table::{FLOWS, Flow, FlowDeps};

use crate::connections::Connection;
use crate::event::SyncEvent;
use crate::flows::errors::from_port;
use crate::ports::CachedConnections;
use crate::vendor::Vendor;
use crate::worker::{Handled, HandlerError, TargetHandler, one_of_batch};

/// The error for an event on a target's queue whose connection runs no flow into that target
/// (`flow` is the connection's, if it has one): permanent, since no retry will change it.
fn wrong_queue(connection: &str, flow: Option<&Flow>, target: Vendor) -> HandlerError {
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

/// One flow's handling of an event whose connection a `TargetDispatch` has looked up and
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

    /// Handles several events of the connection `name` at once, answering per event in the
    /// order given (see [`TargetHandler::handle_batch`]). By default one after another, a
    /// panic failing only its own event.
    async fn handle_connection_batch(
        &self,
        name: &str,
        connection: &Connection,
        events: &[SyncEvent],
    ) -> Vec<Result<Handled, HandlerError>> {
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            let handled = self.handle_connection(name, connection, event);
            results.push(one_of_batch(event, handled).await);
        }
        results
    }
}

/// A target worker's [`TargetHandler`]: looks up each event's connection and hands the event to
/// the handler of the connection's flow; an event whose connection's flow does not write to
/// `target` is on the wrong queue, a permanent `unsupported_flow` error.
pub(crate) struct TargetDispatch {
    target: Vendor,
    connections: Arc<CachedConnections>,
    flows: Vec<(&'static Flow, Box<dyn FlowHandler>)>,
}

impl TargetDispatch {
    /// The handler of `target`'s queue: every row of [`FLOWS`] that writes to `target`, built
    /// from `deps`. `None` when no flow of this build writes to `target`.
    pub(crate) fn for_target(
        target: Vendor,
        connections: Arc<CachedConnections>,
        deps: &FlowDeps,
    ) -> Option<Self> {
        let flows: Vec<_> = FLOWS
            .iter()
            .filter(|f| f.target == target)
            .map(|f| (f, f.handler(deps)))
            .collect();
        (!flows.is_empty()).then_some(TargetDispatch {
            target,
            connections,
            flows,
        })
    }
}

impl TargetDispatch {
    /// The applied connection `name` and the handler of its flow, or why its events cannot be
    /// handled on this queue.
    async fn route(&self, name: &str) -> Result<(Connection, &dyn FlowHandler), HandlerError> {
        let connection = lookup_connection(&self.connections, name).await?;
        let flow = Flow::of(&connection);
        match self.flows.iter().find(|(f, _)| Some(*f) == flow) {
            Some((_, handler)) => Ok((connection, handler.as_ref())),
            None => Err(wrong_queue(name, flow, self.target)),
        }
    }

    /// The events of one connection, through its flow's batch handler; a failed lookup fails
    /// each of them the same way.
    async fn handle_group(
        &self,
        name: &str,
        events: &[SyncEvent],
    ) -> Vec<Result<Handled, HandlerError>> {
        match self.route(name).await {
            Ok((connection, handler)) => {
                handler
                    .handle_connection_batch(name, &connection, events)
                    .await
            }
            Err(err) => vec![Err(err); events.len()],
        }
    }
}

/// The indexes of `events` by connection, connections in the order they first appear.
fn by_connection(events: &[SyncEvent]) -> Vec<(&str, Vec<usize>)> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let name = event.connection.as_str();
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, indexes)) => indexes.push(i),
            None => groups.push((name, vec![i])),
        }
    }
    groups
}

#[async_trait]
impl TargetHandler for TargetDispatch {
    async fn handle(&self, event: &SyncEvent) -> Result<Handled, HandlerError> {
        let (connection, handler) = self.route(&event.connection).await?;
        handler
            .handle_connection(&event.connection, &connection, event)
            .await
    }

    /// Looks each connection up once and hands its events to its flow together, so a flow
    /// with a batch endpoint makes one call per connection; answers come back in input order.
    async fn handle_batch(&self, events: &[SyncEvent]) -> Vec<Result<Handled, HandlerError>> {
        let mut results: Vec<Option<Result<Handled, HandlerError>>> = vec![None; events.len()];
        for (name, indexes) in by_connection(events) {
            let group: Vec<SyncEvent> = indexes.iter().map(|&i| events[i].clone()).collect();
            let answers = self.handle_group(name, &group).await;
            for (i, answer) in indexes.into_iter().zip(answers) {
                results[i] = Some(answer);
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    // The harness retries it; the flow's batch handler has a bug to fix.
                    Err(HandlerError::transient(
                        "the flow's batch handler returned no result for this event",
                    ))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
