//! [`MailchimpTarget`]: the Mailchimp worker's [`TargetHandler`], dispatching each event to the
//! flow of its connection (FreshBooks → Mailchimp, QuickBooks → Mailchimp).

use std::sync::Arc;

use async_trait::async_trait;

use super::clients::VendorClients;
use super::freshbooks_mailchimp::FreshbooksToMailchimp;
use super::quickbooks_mailchimp::QuickbooksToMailchimp;
use super::{Flow, lookup_connection, wrong_queue};
use crate::connections::CachedConnections;
use crate::event::SyncEvent;
use crate::ports::{Clock, Store};
use crate::vendor::Vendor;
use crate::worker::{Handled, HandlerError, TargetHandler};

/// Every flow that writes to Mailchimp, behind one handler.
pub struct MailchimpTarget {
    connections: Arc<CachedConnections>,
    freshbooks: FreshbooksToMailchimp,
    quickbooks: QuickbooksToMailchimp,
}

impl MailchimpTarget {
    pub fn new(
        connections: Arc<CachedConnections>,
        clients: Arc<dyn VendorClients>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        MailchimpTarget {
            freshbooks: FreshbooksToMailchimp::new(clients.clone(), store.clone(), clock.clone()),
            quickbooks: QuickbooksToMailchimp::new(clients, store, clock),
            connections,
        }
    }
}

#[async_trait]
impl TargetHandler for MailchimpTarget {
    async fn handle(&self, event: &SyncEvent) -> Result<Handled, HandlerError> {
        let connection = lookup_connection(&self.connections, &event.connection).await?;
        match connection.flow() {
            Some(Flow::FreshbooksToMailchimp) => {
                self.freshbooks
                    .handle_connection(&event.connection, &connection, event)
                    .await
            }
            Some(Flow::QuickbooksToMailchimp) => {
                self.quickbooks
                    .handle_connection(&event.connection, &connection, event)
                    .await
            }
            other => Err(wrong_queue(&event.connection, other, Vendor::Mailchimp)),
        }
    }
}
