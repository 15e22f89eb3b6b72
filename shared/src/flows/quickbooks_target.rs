//! [`QuickbooksTarget`]: the QuickBooks worker's [`TargetHandler`], dispatching each event to the
//! flow of its connection.

use std::sync::Arc;

use async_trait::async_trait;

use super::clients::VendorClients;
use super::mailchimp_quickbooks::MailchimpToQuickbooks;
use super::{Flow, lookup_connection, wrong_queue};
use crate::connections::CachedConnections;
use crate::event::SyncEvent;
use crate::vendor::Vendor;
use crate::worker::{Handled, HandlerError, TargetHandler};

/// Every flow that writes to QuickBooks, behind one handler.
pub struct QuickbooksTarget {
    connections: Arc<CachedConnections>,
    mailchimp: MailchimpToQuickbooks,
}

impl QuickbooksTarget {
    pub fn new(connections: Arc<CachedConnections>, clients: Arc<dyn VendorClients>) -> Self {
        QuickbooksTarget {
            mailchimp: MailchimpToQuickbooks::new(clients),
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
            other => Err(wrong_queue(&event.connection, other, Vendor::Quickbooks)),
        }
    }
}
