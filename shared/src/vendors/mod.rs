//! One module per vendor: webhook verification and parsing, API clients, models.

pub mod freshbooks;
pub mod mailchimp;
pub mod quickbooks;
pub mod stripe;
