//! End-to-end pipelines in one test process: the vendor sandboxes, the real webhook handler on a
//! local port, the queues, the worker harnesses with the real flows and clients, and the poller —
//! on either adapter set (embedded SQLite, or SQS/DynamoDB/Secrets Manager on moto).
//!
//! - [`freshbooks`]: FreshBooks → Mailchimp (re-exported here; the worker benchmark uses it).
//! - [`hubspot`]: FreshBooks → HubSpot.
//! - [`quickbooks`]: QuickBooks Online ↔ Mailchimp.
//! - [`rig`]: the parts every pipeline shares.

pub mod freshbooks;
pub mod hubspot;
pub mod quickbooks;
pub mod rig;

pub use freshbooks::*;
pub use rig::Backend;
