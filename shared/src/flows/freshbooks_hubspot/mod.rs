//! FreshBooks → HubSpot: a sales team sees each customer's invoices and payment health in
//! HubSpot without opening FreshBooks.
//!
//! - **Clients → contacts**, upserted by email, with the client's standing as `fb_…`
//!   properties; an email change updates the same contact (the id map holds its HubSpot id).
//!   A deleted client's contact is flagged `fb_deleted` (or archived, with
//!   `on_client_delete = "archive"`).
//! - **Clients with an organization → companies**, upserted by `fb_company_key` (the domain of
//!   a non-free-mail email, else the client), associated to the contact as its primary
//!   company. **Bill vendors → companies** too, marked `fb_is_vendor`; a vendor on a client's
//!   domain is the same company.
//! - **Invoices → HubSpot invoices** with one line item per FreshBooks line, associated to the
//!   contact and company; draft, open once sent, voided when FreshBooks voids or deletes it.
//!   A portal refusing invoice writes is remembered; its invoices are skipped
//!   (`invoices_unavailable`) until `backfill --only invoices`.
//! - **Payments → commerce payments** associated to the invoice and the contact, or, where
//!   the portal has no payment processing, the contact's `fb_…` properties alone.
//!
//! The worker hands the flow a whole SQS batch per connection ([`crate::flows::FlowHandler::
//! handle_connection_batch`]), and each phase writes it with HubSpot's batch endpoints.

mod batch;
mod handler;
mod invoices;
mod ledger;
mod load;
pub(crate) mod mapping;
mod options;
mod payments;
mod people;
pub mod portal;
#[cfg(test)]
mod tests;

pub use handler::FreshbooksToHubspot;
pub(crate) use handler::{ENTITIES, INVOICES_FLAG, PAYMENTS_FLAG, UNAVAILABLE};
pub use options::{Options, Tier};
