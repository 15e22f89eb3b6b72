//! The connections file: which source account feeds which target, with which credentials.
//!
//! Users keep it in their repository as TOML (see `connections.example.toml` at the repo root).
//! `ConnectionSet::parse_with` parses and validates it, given the check of what only the flow
//! table knows (`ConnectionSet::from_toml` and `load` in [`crate::flows::connections`] pass
//! it); errors name the file, the connection and the field. The applied set lives in the state
//! store ([`crate::ports::ConnectionStore`]) and Lambdas read it through `crate::ports::CachedConnections`.

mod validate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::SourceRef;
use crate::ids::{AccountId, ConnectionName};
use crate::vendor::Vendor;

/// The whole applied set, keyed by connection name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSet {
    /// Each `[connection.<name>]` table of the file, by name; the name keys audit entries, dead
    /// letters and idempotency claims.
    #[serde(default, rename = "connection")]
    pub connections: BTreeMap<ConnectionName, Connection>,
}

/// One directed source → target connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// Where events come from: the vendor account whose webhooks or polls feed this connection.
    pub source: Endpoint,
    /// Where the flow writes: the vendor account, and its audience, store or realm.
    pub target: Endpoint,
    /// Flow options, checked per flow (e.g. `status_if_new` for a Mailchimp target).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, toml::Value>,
    /// A disabled connection stays applied but receives no events.
    #[serde(default = "enabled_default")]
    pub enabled: bool,
}

fn enabled_default() -> bool {
    true
}

/// One side of a connection: a vendor account and the secret holding its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// The vendor of this side; with the other side's, it picks the flow.
    pub vendor: Vendor,
    /// Source side: the account whose events this connection takes (FreshBooks account id,
    /// QuickBooks realm id, Mailchimp list id, Stripe account id). Target side: optional label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    /// Name of the credential set in the secret store (Secrets Manager or the local store).
    pub credentials: String,
    /// Mailchimp audience id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_id: Option<String>,
    /// Mailchimp e-commerce store id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    /// HubSpot portal (hub) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal_id: Option<String>,
    /// Marketo instance (Munchkin id, e.g. `123-ABC-456`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) instance: Option<String>,
    /// QuickBooks realm (company) id when QuickBooks is the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm_id: Option<String>,
}

impl Connection {
    /// The source this connection takes events from.
    pub fn source_ref(&self) -> SourceRef {
        SourceRef {
            vendor: self.source.vendor,
            account: self.source.account.clone().unwrap_or_default(),
        }
    }

    /// The queue its events go to: the target vendor's.
    pub fn queue(&self) -> &'static str {
        self.target.vendor.as_str()
    }
}

/// A connections file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionsError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The path as given.
        file: String,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file is not TOML, or not the shape of a connections file.
    #[error("{file}: {message}")]
    Syntax {
        /// The path as given.
        file: String,
        /// The parser's message, with the line and column.
        message: String,
    },
    /// A connection is well formed but cannot run as written.
    #[error("{file}: connection `{connection}`: {field}: {message}")]
    Invalid {
        /// The path as given.
        file: String,
        /// The connection's name.
        connection: String,
        /// The field at fault, e.g. `target.list_id` or `options.status_if_new`.
        field: String,
        /// What is wrong and what it must be.
        message: String,
    },
}

/// What only the layers above know about a connection — its vendors' endpoints, that this build
/// runs its flow, the flow's options: `Err((field, message))`.
type ConnectionCheck<'a> = &'a dyn Fn(&Connection) -> Result<(), (String, String)>;

impl ConnectionSet {
    /// Parses TOML text and validates it, `check` included; `file` names it in errors.
    pub(crate) fn parse_with(
        text: &str,
        file: &str,
        check: ConnectionCheck,
    ) -> Result<Self, ConnectionsError> {
        let set: ConnectionSet = toml::from_str(text).map_err(|e| ConnectionsError::Syntax {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        validate::validate(&set, file, check)?;
        Ok(set)
    }

    /// Parses TOML text with the structural checks only (names, duplicates): for tests of
    /// routing and fan-out, which work the same whether or not this build runs a connection's
    /// flow.
    pub fn from_toml_any_flow(text: &str, file: &str) -> Result<Self, ConnectionsError> {
        Self::parse_with(text, file, &|_| Ok(()))
    }

    /// Enabled connections whose source is `source`, with their names.
    pub(crate) fn for_source<'a>(
        &'a self,
        source: &'a SourceRef,
    ) -> impl Iterator<Item = (&'a str, &'a Connection)> + 'a {
        self.connections
            .iter()
            .filter(move |(_, c)| {
                c.enabled
                    && c.source.vendor == source.vendor
                    && c.source.account.as_deref() == Some(source.account.as_str())
            })
            .map(|(n, c)| (n.as_str(), c))
    }

    /// Enabled connections whose source is the vendor, any account.
    pub fn for_vendor(&self, vendor: Vendor) -> impl Iterator<Item = (&str, &Connection)> {
        self.connections
            .iter()
            .filter(move |(_, c)| c.enabled && c.source.vendor == vendor)
            .map(|(n, c)| (n.as_str(), c))
    }
}
