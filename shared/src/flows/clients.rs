//! [`VendorClients`]: how a flow gets the API client for a connection's credential set.
//!
//! Handlers see only the traits ([`FreshbooksApi`], [`MailchimpApi`], [`QuickbooksApi`],
//! [`HubspotApi`]), so flow logic is tested
//! with in-memory fakes and runs unchanged against the vendors or the sandbox.

use std::sync::Arc;

use async_trait::async_trait;

use crate::vendors::freshbooks::FreshbooksApi;
use crate::vendors::hubspot::HubspotApi;
use crate::vendors::mailchimp::MailchimpApi;
use crate::vendors::quickbooks::QuickbooksApi;
use crate::worker::HandlerError;

/// Clients by credential-set name (the `credentials` of a connection endpoint). Implementations
/// cache clients per name; an error means the credential set cannot be used right now
/// (missing, unreadable, revoked) and says what to fix.
#[async_trait]
pub trait VendorClients: Send + Sync {
    /// The FreshBooks client of credential set `credentials`.
    async fn freshbooks(&self, credentials: &str) -> Result<Arc<dyn FreshbooksApi>, HandlerError>;
    /// The Mailchimp client of credential set `credentials`.
    async fn mailchimp(&self, credentials: &str) -> Result<Arc<dyn MailchimpApi>, HandlerError>;

    /// A QuickBooks client for credential set `credentials` (the realm, environment and tokens
    /// come from the set).
    async fn quickbooks(&self, credentials: &str) -> Result<Arc<dyn QuickbooksApi>, HandlerError>;

    /// A HubSpot client for credential set `credentials` (a private-app token, a service key
    /// or an OAuth set; the portal, API version and tier come from the set).
    async fn hubspot(&self, credentials: &str) -> Result<Arc<dyn HubspotApi>, HandlerError>;
}
