//! Mailchimp: list webhook deliveries (URL secret, PHP-style form), the subscriber hash, and the
//! Marketing API ([`api::MailchimpApi`]) the Mailchimp-targeted flows write through.

pub mod api;
pub mod client;
pub mod credentials;
pub mod error;
pub mod ingress;
pub mod limiter;
pub mod list_webhooks;
pub mod models;
pub mod spec;
pub mod target;
pub mod webhook;

pub use api::MailchimpApi;
pub use error::MailchimpError;
