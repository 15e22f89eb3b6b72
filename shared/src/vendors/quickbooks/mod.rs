//! QuickBooks Online: webhook deliveries (legacy and CloudEvents), the OAuth token endpoint,
//! and the Accounting API calls the flows make ([`api::QuickbooksApi`], implemented over HTTP by
//! [`client::QuickbooksClient`] within the realm's limits of [`limiter`]).

pub mod api;
pub mod client;
pub mod credentials;
pub mod error;
pub mod ingress;
pub mod limiter;
pub mod models;
pub mod oauth;
pub mod spec;
pub mod target;
pub mod webhook;

pub use api::QuickbooksApi;
pub use client::QuickbooksClient;
pub use credentials::QuickbooksCredentials;
pub use error::QuickbooksError;
