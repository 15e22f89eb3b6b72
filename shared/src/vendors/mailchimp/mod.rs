//! Mailchimp: list webhook deliveries (URL secret, PHP-style form) and the subscriber hash.

pub mod webhook;
