//! QuickBooks Online: webhook deliveries (legacy and CloudEvents), the OAuth token endpoint,
//! and the Accounting API calls the flows make ([`api::QuickbooksApi`]).

pub mod api;
pub mod error;
pub mod models;
pub mod oauth;
pub mod webhook;

pub use api::QuickbooksApi;
pub use error::QuickbooksError;
