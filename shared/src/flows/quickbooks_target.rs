//! [`QuickbooksTarget`]: the QuickBooks worker's [`TargetHandler`], dispatching each event to the
//! flow of its connection.

use std::sync::Arc;

use async_trait::async_trait;

use super::Flow;
use super::clients::VendorClients;
use super::freshbooks_mailchimp::lookup_connection;
use super::mailchimp_quickbooks::MailchimpToQuickbooks;
use crate::connections::CachedConnections;
use crate::event::SyncEvent;
use crate::ports::{Clock, Store};
use crate::worker::{Handled, HandlerError, TargetHandler};

/// Every flow that writes to QuickBooks, behind one handler.
pub struct QuickbooksTarget {
    connections: Arc<CachedConnections>,
    mailchimp: MailchimpToQuickbooks,
}

impl QuickbooksTarget {
    /// Built like the other targets' handlers, so the worker entries stay alike. The Mailchimp →
    /// QuickBooks flow keeps no id map and takes its times from the events, so `store` and
    /// `clock` are not held; they are here for flows into QuickBooks that will need them.
    pub fn new(
        connections: Arc<CachedConnections>,
        clients: Arc<dyn VendorClients>,
        _store: Arc<dyn Store>,
        _clock: Arc<dyn Clock>,
    ) -> Self {
        QuickbooksTarget {
            mailchimp: MailchimpToQuickbooks::new(connections.clone(), clients),
            connections,
        }
    }
}

#[async_trait]
impl TargetHandler for QuickbooksTarget {
    async fn handle(&self, event: &SyncEvent) -> Result<Handled, HandlerError> {
        let connection = lookup_connection(&self.connections, &event.connection).await?;
        match connection.flow() {
            Some(Flow::MailchimpToQuickbooks) => {
                self.mailchimp
                    .handle_connection(&event.connection, &connection, event)
                    .await
            }
            Some(flow) => Err(HandlerError::permanent(
                "unsupported_flow",
                format!(
                    "connection `{}` runs {flow}, which does not write to QuickBooks: the event \
                     is on the wrong queue",
                    event.connection
                ),
            )),
            None => Err(HandlerError::permanent(
                "unsupported_flow",
                format!("connection `{}` has no flow", event.connection),
            )),
        }
    }
}
