//! HubSpot as a target: FreshBooks clients become contacts and companies, bill vendors become
//! companies, invoices become HubSpot invoices with line items, payments become commerce
//! payments (docs/vendors/hubspot.md).
//!
//! Every write is a batch of up to [`BATCH_LIMIT`] inputs, and every object the product creates
//! is upserted through a property that is unique per object type (`email` for contacts, a
//! `fb_…` key for the rest), so a redelivered event never creates a second record
//! (docs/vendors/hubspot.md §3.1, §3.2).

pub mod api;
pub mod client;
pub mod credentials;
pub mod error;
pub(crate) mod limiter;
pub mod models;
pub mod oauth;
pub mod spec;
pub mod target;

pub use api::HubspotApi;
pub use credentials::HubspotCredentials;
pub use error::HubspotError;

/// HubSpot's cap on inputs per batch request (docs/vendors/hubspot.md §3.1).
pub const BATCH_LIMIT: usize = 100;
