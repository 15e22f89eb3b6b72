//! [`FLOWS`]: the flows this build runs, one row each — source, target, typed options and the
//! handler builder. Workers (`super::TargetDispatch`), `ml-connector connections check`
//! ([`super::connections`]) and the CLI learn every flow from here; adding a flow is adding
//! its folder and a row.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use super::clients::VendorClients;
use super::options::{self, FlowOptions, OptionError};
use super::{
    FlowHandler, freshbooks_hubspot, freshbooks_mailchimp, mailchimp_quickbooks,
    quickbooks_mailchimp,
};
use crate::connections::Connection;
use crate::ports::{Clock, IdMap};
use crate::vendor::Vendor;

/// What a flow handler is built from: the vendor clients, the id maps (all a flow needs of the
/// state store) and the clock.
#[derive(Clone)]
pub struct FlowDeps {
    /// The vendor clients, by credential-set name.
    pub clients: Arc<dyn VendorClients>,
    /// The id map: source record → target id and fingerprint, per connection.
    pub id_map: Arc<dyn IdMap>,
    /// The time flows stamp writes with.
    pub clock: Arc<dyn Clock>,
}

/// A directed source → target flow the product runs: a row of [`FLOWS`].
pub struct Flow {
    /// The vendor events come from.
    pub source: Vendor,
    /// The vendor the flow writes to.
    pub target: Vendor,
    /// The source entities the flow reads, as events name them (`client`, `bill_vendor`…):
    /// what a poll of the connection's account lists, what its backfill lists and which
    /// callbacks `apply` registers for it. Events of other entities are skipped.
    source_entities: &'static [&'static str],
    /// The flow's option names, as spelled in a connections file.
    options: fn() -> &'static [&'static str],
    /// Reads a connection's options into the flow's type, discarding it: the check.
    check_options: fn(&BTreeMap<String, toml::Value>) -> Result<(), OptionError>,
    build: fn(&FlowDeps) -> Box<dyn FlowHandler>,
}

/// Every flow of this build. A connection whose vendors match no row is refused when the
/// connections file is loaded.
pub static FLOWS: &[Flow] = &[
    Flow::row::<freshbooks_mailchimp::Options>(
        Vendor::Freshbooks,
        Vendor::Mailchimp,
        freshbooks_mailchimp::ENTITIES,
        |d| {
            Box::new(freshbooks_mailchimp::FreshbooksToMailchimp::new(
                d.clients.clone(),
                d.id_map.clone(),
                d.clock.clone(),
            ))
        },
    ),
    Flow::row::<quickbooks_mailchimp::Options>(
        Vendor::Quickbooks,
        Vendor::Mailchimp,
        quickbooks_mailchimp::ENTITIES,
        |d| {
            Box::new(quickbooks_mailchimp::QuickbooksToMailchimp::new(
                d.clients.clone(),
                d.id_map.clone(),
                d.clock.clone(),
            ))
        },
    ),
    Flow::row::<freshbooks_hubspot::Options>(
        Vendor::Freshbooks,
        Vendor::Hubspot,
        freshbooks_hubspot::ENTITIES,
        |d| {
            Box::new(freshbooks_hubspot::FreshbooksToHubspot::new(
                d.clients.clone(),
                d.id_map.clone(),
                d.clock.clone(),
            ))
        },
    ),
    Flow::row::<mailchimp_quickbooks::Options>(
        Vendor::Mailchimp,
        Vendor::Quickbooks,
        mailchimp_quickbooks::ENTITIES,
        |d| {
            Box::new(mailchimp_quickbooks::MailchimpToQuickbooks::new(
                d.clients.clone(),
            ))
        },
    ),
];

impl Flow {
    const fn row<O: FlowOptions>(
        source: Vendor,
        target: Vendor,
        source_entities: &'static [&'static str],
        build: fn(&FlowDeps) -> Box<dyn FlowHandler>,
    ) -> Flow {
        Flow {
            source,
            target,
            source_entities,
            options: options::keys::<O>,
            check_options: |table| options::parse::<O>(table).map(drop),
            build,
        }
    }

    /// The flow from `source` to `target`, if this build runs one.
    pub fn between(source: Vendor, target: Vendor) -> Option<&'static Flow> {
        FLOWS
            .iter()
            .find(|f| f.source == source && f.target == target)
    }

    /// The flow `connection` runs, if this build has it (checked when the set was loaded).
    pub fn of(connection: &Connection) -> Option<&'static Flow> {
        Flow::between(connection.source.vendor, connection.target.vendor)
    }

    /// Every flow of this build, spelled for messages.
    pub fn list() -> String {
        FLOWS
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The source entities the flow reads, as events name them (`client`, `bill_vendor`…).
    pub fn source_entities(&self) -> &'static [&'static str] {
        self.source_entities
    }

    /// The source entities `connection`'s flow reads; none when this build has no flow for it
    /// (such a connection is refused when a connections file is loaded).
    pub fn source_entities_of(connection: &Connection) -> &'static [&'static str] {
        Flow::of(connection).map_or(&[], Flow::source_entities)
    }

    /// The source entities `connections` need between them, by `needs` (in the product
    /// [`Flow::source_entities_of`]; tests pass flows this build does not have): the union,
    /// each once, sorted. What is polled, backfilled and subscribed to for a source account.
    pub fn needed_entities<'a>(
        connections: impl IntoIterator<Item = &'a Connection>,
        needs: impl Fn(&Connection) -> &'static [&'static str],
    ) -> BTreeSet<&'static str> {
        connections
            .into_iter()
            .flat_map(|c| needs(c).iter().copied())
            .collect()
    }

    /// The option names the flow takes.
    pub fn options(&self) -> &'static [&'static str] {
        (self.options)()
    }

    /// Checks a connection's options against the flow's type.
    pub(crate) fn check_options(
        &self,
        options: &BTreeMap<String, toml::Value>,
    ) -> Result<(), OptionError> {
        (self.check_options)(options)
    }

    /// Builds the flow's handler.
    pub fn handler(&self, deps: &FlowDeps) -> Box<dyn FlowHandler> {
        (self.build)(deps)
    }
}

impl PartialEq for Flow {
    fn eq(&self, other: &Self) -> bool {
        (self.source, self.target) == (other.source, other.target)
    }
}

impl Eq for Flow {}

impl fmt::Debug for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flow({self})")
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {}", self.source, self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flow_is_found_by_its_ends_once() {
        for flow in FLOWS {
            assert_eq!(Flow::between(flow.source, flow.target), Some(flow));
        }
        let ends: std::collections::HashSet<_> =
            FLOWS.iter().map(|f| (f.source, f.target)).collect();
        assert_eq!(ends.len(), FLOWS.len());
        assert_eq!(Flow::between(Vendor::Mailchimp, Vendor::Freshbooks), None);
        assert_eq!(Flow::between(Vendor::Hubspot, Vendor::Freshbooks), None);
    }

    #[test]
    fn every_freshbooks_flow_reads_only_entities_freshbooks_has() {
        use crate::vendors::freshbooks::models::Entity;
        for flow in FLOWS.iter().filter(|f| f.source == Vendor::Freshbooks) {
            for name in flow.source_entities() {
                // `Entity::among` leaves unknown names out; a typo here would never be polled.
                assert!(
                    Entity::ALL.iter().any(|e| e.as_str() == *name),
                    "{flow} reads `{name}`, which is no FreshBooks entity"
                );
            }
        }
        assert!(FLOWS.iter().all(|f| !f.source_entities().is_empty()));
    }

    #[test]
    fn freshbooks_to_mailchimp_reads_no_bill_vendors() {
        let flow = Flow::between(Vendor::Freshbooks, Vendor::Mailchimp).unwrap();
        assert_eq!(flow.source_entities(), ["client", "invoice", "payment"]);
    }

    #[test]
    fn rows_know_their_options() {
        let flow = Flow::between(Vendor::Mailchimp, Vendor::Quickbooks).unwrap();
        assert_eq!(flow.options(), ["register_webhook"]);
        assert_eq!(flow.to_string(), "mailchimp → quickbooks");
    }
}
