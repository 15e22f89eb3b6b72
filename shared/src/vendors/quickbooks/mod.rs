//! QuickBooks Online: webhook deliveries (legacy and CloudEvents), and the OAuth token endpoint.

pub mod oauth;
pub mod webhook;
