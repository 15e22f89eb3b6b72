//! What the operator command does differently per vendor, one folder each: how `connect`
//! obtains a credential set, how `ping` checks one, and what `apply` sets up for the vendor's
//! sources. The commands ask [`hooks`] instead of matching on vendors; a vendor without hooks
//! gets what its [`VendorSpec`](mlc::vendors::spec::VendorSpec) allows (its credential fields
//! typed in, no live check, nothing to set up).
//!
//! Adding a vendor's CLI support is one folder here and one entry in [`HOOKS`]
//! (docs/adding-an-integration.md).

mod freshbooks;
pub(crate) mod hubspot;
pub(crate) mod mailchimp;
mod quickbooks;

pub(crate) use hubspot::connect::Auth as HubspotAuth;
pub(crate) use quickbooks::oauth as quickbooks_environment;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use mlc::app::LiveClients;
use mlc::connections::{Connection, ConnectionSet};
use mlc::ports::IdMap;
use mlc::vendor::Vendor;
use secrecy::SecretString;

use crate::onboarding::apply::Applying;
use crate::onboarding::connect::ConnectArgs;
use crate::onboarding::ping::{Checker, Outcome, Wanted};
use crate::ops::backfill::Listing;

/// A vendor's part in `connect`, `ping` and `apply`.
#[async_trait]
pub(crate) trait VendorCli: Send + Sync {
    /// The vendor these hooks serve.
    fn vendor(&self) -> Vendor;

    /// Whether the vendor has separate environments (`connect --environment`).
    fn has_environments(&self) -> bool {
        false
    }

    /// Whether `connect --auth` chooses how the set is obtained (HubSpot).
    fn has_auth_choices(&self) -> bool {
        false
    }

    /// Obtains a credential set (OAuth approval, or keys read and checked): the secret's value.
    /// `applied` is the applied connections (empty when none), which may say what the set
    /// must reach.
    async fn connect(
        &self,
        args: &ConnectArgs,
        applied: &ConnectionSet,
    ) -> anyhow::Result<SecretString>;

    /// One cheap call with the stored set `value` of `name`: how it fared and why.
    async fn ping(
        &self,
        checker: &Checker,
        name: &str,
        value: &SecretString,
        wanted: &Wanted,
    ) -> (Outcome, String);

    /// What `apply` sets up for the vendor's sources once the set is stored (webhook
    /// registrations). `Ok(false)` when something asked for did not happen.
    async fn apply(&self, _applying: &Applying<'_>) -> anyhow::Result<bool> {
        Ok(true)
    }

    /// What `backfill <name> --only <entities>` does first for a connection targeting the
    /// vendor (HubSpot: `--only invoices` clears the record that the portal refused invoice
    /// writes): lines to print.
    async fn before_backfill(
        &self,
        _id_map: &dyn IdMap,
        _name: &str,
        _only: &[&str],
        _now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Warnings `status` shows for connection `name` targeting the vendor, each with its fix
    /// (HubSpot: invoice or payment writes the portal refused).
    async fn status_warnings(
        &self,
        _id_map: &dyn IdMap,
        _name: &str,
        _connection: &Connection,
    ) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// How `backfill` lists the vendor's source records, if it can.
    fn backfill_source(&self) -> Option<&'static dyn BackfillSource> {
        None
    }

    /// What a backfill into the vendor holds back while it runs, if anything.
    fn backfill_target(&self) -> Option<&'static dyn BackfillTarget> {
        None
    }
}

/// `backfill` reading a vendor's source records.
#[async_trait]
pub(crate) trait BackfillSource: Sync {
    /// The records of `account` changed since `since`, of the entities the connection's flow
    /// reads that are in `only` (`backfill --only`, else all of them), as events whose versions
    /// name the run (`run`), with counts per entity; a spinner per entity unless `json`.
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        clients: &LiveClients,
        connection: &Connection,
        account: &str,
        only: &[&str],
        since: NaiveDate,
        run: &str,
        json: bool,
    ) -> anyhow::Result<Listing>;
}

/// What a backfill into a vendor holds back until `backfill --finish` (Mailchimp: a store's
/// automations, so historical orders do not e-mail customers).
#[async_trait]
pub(crate) trait BackfillTarget: Sync {
    /// Holds it back for the connection `name`.
    async fn pause(
        &self,
        clients: &LiveClients,
        name: &str,
        connection: &Connection,
    ) -> anyhow::Result<Paused>;

    /// Lets it go again (the queue has drained).
    async fn resume(
        &self,
        clients: &LiveClients,
        name: &str,
        connection: &Connection,
    ) -> anyhow::Result<Paused>;
}

/// What a [`BackfillTarget`] paused or resumed.
#[derive(Debug, Clone)]
pub(crate) struct Paused {
    /// The thing, as people name it: "Mailchimp store `acme`".
    pub what: String,
    /// What of it is held back: "automations".
    pub held: &'static str,
    /// Its id (the report's `store_id`).
    pub id: String,
    /// Whether it existed (`false`: the first event creates it, held back).
    pub existed: bool,
}

/// Every vendor's hooks. Order is the order `apply` sets vendors up in.
static HOOKS: [&dyn VendorCli; 4] = [
    &freshbooks::Hooks,
    &hubspot::Hooks,
    &mailchimp::Hooks,
    &quickbooks::Hooks,
];

/// The hooks of `vendor`, if the CLI has more for it than its spec says.
pub(crate) fn hooks(vendor: Vendor) -> Option<&'static dyn VendorCli> {
    HOOKS.iter().copied().find(|h| h.vendor() == vendor)
}

/// Every vendor's hooks, for the commands that visit all vendors (`apply`).
pub(crate) fn all() -> impl Iterator<Item = &'static dyn VendorCli> {
    HOOKS.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_vendor_has_at_most_one_set_of_hooks() {
        for vendor in Vendor::ALL.iter().copied() {
            assert!(HOOKS.iter().filter(|h| h.vendor() == vendor).count() <= 1);
        }
    }
}
