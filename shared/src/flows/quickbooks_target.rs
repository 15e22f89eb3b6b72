//! [`QuickbooksTarget`]: the QuickBooks worker's [`TargetHandler`], dispatching each event to the
//! flow of its connection.

use std::sync::Arc;

use async_trait::async_trait;

use super::clients::VendorClients;
use super::mailchimp_quickbooks::MailchimpToQuickbooks;
use super::{Flow, TargetDispatch};
use crate::connections::CachedConnections;
use crate::event::SyncEvent;
use crate::vendor::Vendor;
use crate::worker::{Handled, HandlerError, TargetHandler};

/// Every flow that writes to QuickBooks, behind one handler.
pub struct QuickbooksTarget(TargetDispatch);

impl QuickbooksTarget {
    pub fn new(connections: Arc<CachedConnections>, clients: Arc<dyn VendorClients>) -> Self {
        QuickbooksTarget(TargetDispatch::new(
            Vendor::Quickbooks,
            connections,
            vec![(
                Flow::MailchimpToQuickbooks,
                Box::new(MailchimpToQuickbooks::new(clients)),
            )],
        ))
    }
}

#[async_trait]
impl TargetHandler for QuickbooksTarget {
    async fn handle(&self, event: &SyncEvent) -> Result<Handled, HandlerError> {
        self.0.handle(event).await
    }
}
