//! The connection options of the Mailchimp → QuickBooks flow, typed. `ml-connector apply`
//! reads them (the worker needs none) with the same [`crate::flows::options::parse`] that
//! `connections check` uses.

use serde::Deserialize;

use crate::flows::options::strict_bool;

/// The options of one connection, with defaults applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// `apply` registers the list's webhook through Mailchimp's API instead of printing the URL
    /// to add by hand; default false (the webhook base must be reachable from the internet).
    #[serde(deserialize_with = "strict_bool")]
    pub register_webhook: bool,
}
