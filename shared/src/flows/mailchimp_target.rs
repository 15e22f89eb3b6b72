//! [`MailchimpTarget`]: the Mailchimp worker's [`TargetHandler`], dispatching each event to the
//! flow of its connection (FreshBooks → Mailchimp, QuickBooks → Mailchimp).

use std::sync::Arc;

use async_trait::async_trait;

use super::clients::VendorClients;
use super::freshbooks_mailchimp::FreshbooksToMailchimp;
use super::quickbooks_mailchimp::QuickbooksToMailchimp;
use super::{Flow, TargetDispatch};
use crate::connections::CachedConnections;
use crate::event::SyncEvent;
use crate::ports::{Clock, Store};
use crate::vendor::Vendor;
use crate::worker::{Handled, HandlerError, TargetHandler};

/// Every flow that writes to Mailchimp, behind one handler.
pub struct MailchimpTarget(TargetDispatch);

impl MailchimpTarget {
    pub fn new(
        connections: Arc<CachedConnections>,
        clients: Arc<dyn VendorClients>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let freshbooks = FreshbooksToMailchimp::new(clients.clone(), store.clone(), clock.clone());
        let quickbooks = QuickbooksToMailchimp::new(clients, store, clock);
        MailchimpTarget(TargetDispatch::new(
            Vendor::Mailchimp,
            connections,
            vec![
                (Flow::FreshbooksToMailchimp, Box::new(freshbooks)),
                (Flow::QuickbooksToMailchimp, Box::new(quickbooks)),
            ],
        ))
    }
}

#[async_trait]
impl TargetHandler for MailchimpTarget {
    async fn handle(&self, event: &SyncEvent) -> Result<Handled, HandlerError> {
        self.0.handle(event).await
    }
}
