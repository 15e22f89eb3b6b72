//! [`FreshbooksToHubspot`]: a batch of one connection's events in, HubSpot batch writes out.
//!
//! A batch is handled in phases, each one HubSpot call per 100 records: read what the events
//! name from FreshBooks (each record once, a few at a time); write contacts (update by the id
//! map's HubSpot id, else upsert by email), companies (by id, else upsert by
//! `fb_company_key`) and their primary association; then invoices (upsert by `fb_invoice_id`),
//! their line items (upsert by `fb_line_key`), associations and status; then commerce payments
//! (upsert by `fb_payment_id`) and their associations. Every create is an upsert on a unique
//! property, so a redelivered batch writes the same records again and never a second copy
//! (docs/vendors/hubspot.md §3.1); the id map is written after HubSpot answered and is the
//! source of truth for what a record became — search is never used (it lags writes, §3.3).
//!
//! Id map keys, under the connection name:
//! - `client:<id>` → the contact's HubSpot id; fingerprint of what was written.
//! - `company:client:<id>`, `company:vendor:<id>` → the company's HubSpot id.
//! - `invoice:<id>` → the HubSpot invoice id; fingerprint `<status>:<hash>`.
//! - `invoice_lines:<id>` → the invoice's line item ids, comma-separated (to archive lines
//!   FreshBooks dropped).
//! - `payment:<id>` → the commerce payment id, or [`FALLBACK`] when the portal takes none.
//! - [`INVOICES_FLAG`], [`PAYMENTS_FLAG`] → [`UNAVAILABLE`] once the portal refused such writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;

use super::batch::WriteError;
use super::invoices::write_invoices;
use super::ledger::Ledger;
use super::load::load;
use super::options::Options;
use super::payments::write_payments;
use super::people::{write_people, write_vendors};
use crate::connections::Connection;
use crate::event::SyncEvent;
use crate::flows::FlowHandler;
use crate::flows::clients::VendorClients;
use crate::flows::record_ids::ConnectionIds;
use crate::ports::{Clock, IdMap};
use crate::vendors::freshbooks::FreshbooksApi;
use crate::vendors::freshbooks::models::{
    BillVendor, Client, Entity, Invoice, Payment, eastern_date,
};
use crate::vendors::hubspot::HubspotApi;
use crate::vendors::hubspot::models::Association;
use crate::vendors::hubspot::target::HubspotTarget;
use crate::worker::{Handled, HandlerError};

/// The entities the flow syncs; events for others are skipped.
pub(crate) const ENTITIES: &[&str] = &["client", "invoice", "payment", "bill_vendor"];

/// Id-map key of the portal's invoice-write availability.
pub(crate) const INVOICES_FLAG: &str = "portal:invoice_writes";
/// Id-map key of the portal's commerce-payment availability.
pub(crate) const PAYMENTS_FLAG: &str = "portal:payment_writes";
/// The flags' fingerprint once the portal refused such writes.
pub(crate) const UNAVAILABLE: &str = "unavailable";
/// A payment recorded only in the contact's properties.
pub(super) const FALLBACK: &str = "fallback";

/// The skip reason of an invoice the portal cannot take.
pub(crate) const INVOICES_UNAVAILABLE: &str = "invoices_unavailable";

/// The FreshBooks → HubSpot flow, which the HubSpot worker's `crate::flows::TargetDispatch`
/// dispatches to.
pub struct FreshbooksToHubspot {
    clients: Arc<dyn VendorClients>,
    id_map: Arc<dyn IdMap>,
    clock: Arc<dyn Clock>,
}

/// A client with the invoices its standing is computed from.
#[derive(Clone)]
pub(super) struct ClientData {
    /// `None` when FreshBooks no longer has it.
    pub(super) client: Option<Client>,
    pub(super) invoices: Vec<Invoice>,
}

/// What the batch read from FreshBooks, by record id; a failed read is that record's error.
#[derive(Default)]
pub(super) struct Loaded {
    pub(super) clients: BTreeMap<String, ClientData>,
    pub(super) invoices: BTreeMap<String, Option<Invoice>>,
    pub(super) payments: BTreeMap<String, Option<Payment>>,
    pub(super) vendors: BTreeMap<String, Option<BillVendor>>,
}

/// One batch of one connection.
pub(super) struct Cx<'a> {
    pub(super) name: &'a str,
    pub(super) account: &'a str,
    pub(super) options: Options,
    pub(super) fb: Arc<dyn FreshbooksApi>,
    pub(super) hs: Arc<dyn HubspotApi>,
    pub(super) ids: ConnectionIds<'a>,
    pub(super) today: NaiveDate,
}

impl Cx<'_> {
    /// Whether the portal refused writes of the flag's kind before.
    pub(super) async fn unavailable(&self, flag: &str) -> Result<bool, HandlerError> {
        Ok(self
            .ids
            .get(flag)
            .await?
            .is_some_and(|m| m.fingerprint == UNAVAILABLE))
    }

    pub(super) async fn mark_unavailable(
        &self,
        flag: &str,
        e: &WriteError,
    ) -> Result<(), HandlerError> {
        tracing::warn!(
            connection = self.name,
            flag,
            error = %e.message,
            "HubSpot refuses these writes in this portal; they are skipped until it takes them \
             (see `ml-connector status`)"
        );
        self.ids.put(flag, "", UNAVAILABLE).await.map(drop)
    }
}

/// The records an event depends on, its own first.
fn event_keys(event: &SyncEvent, loaded: &Loaded) -> Vec<String> {
    let id = &event.entity_id;
    let invoice_client = |invoice_id: &str| {
        loaded
            .invoices
            .get(invoice_id)
            .and_then(|i| i.as_ref())
            .map(|i| format!("client:{}", i.customerid))
    };
    match Entity::parse(&event.entity) {
        Some(Entity::Client) => vec![format!("client:{id}")],
        Some(Entity::Invoice) => std::iter::once(format!("invoice:{id}"))
            .chain(invoice_client(id))
            .collect(),
        Some(Entity::Payment) => {
            let mut keys = vec![format!("payment:{id}")];
            if let Some(Some(p)) = loaded.payments.get(id.as_str()) {
                keys.push(format!("invoice:{}", p.invoiceid));
                keys.extend(invoice_client(&p.invoiceid));
            }
            keys
        }
        Some(Entity::BillVendor) => vec![format!("vendor:{id}")],
        None => vec![format!("{}:{id}", event.entity)],
    }
}

impl FreshbooksToHubspot {
    pub(crate) fn new(
        clients: Arc<dyn VendorClients>,
        id_map: Arc<dyn IdMap>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        FreshbooksToHubspot {
            clients,
            id_map,
            clock,
        }
    }

    /// The checks before any vendor call, for the whole batch: a permanent configuration error
    /// fails every event.
    async fn begin<'a>(
        &'a self,
        name: &'a str,
        connection: &'a Connection,
    ) -> Result<Cx<'a>, HandlerError> {
        let target = HubspotTarget::of(&connection.target).map_err(|e| {
            HandlerError::permanent("configuration", format!("connection `{name}` {e}"))
        })?;
        let options = crate::flows::options::parse::<Options>(&connection.options)
            .map_err(|e| HandlerError::permanent("configuration", format!("`{name}`: {e}")))?;
        let hs = self.clients.hubspot(target.credentials).await?;
        if let Some(tier) = options.tier {
            hs.set_burst(tier.burst());
        }
        Ok(Cx {
            name,
            account: connection.source.account.as_deref().unwrap_or_default(),
            options,
            fb: self
                .clients
                .freshbooks(&connection.source.credentials)
                .await?,
            hs,
            ids: ConnectionIds::new(&*self.id_map, &*self.clock, name),
            today: eastern_date(self.clock.now()),
        })
    }

    async fn run(&self, cx: &Cx<'_>, events: &[&SyncEvent], ledger: &mut Ledger) -> Loaded {
        let loaded = load(cx, events, ledger).await;
        let written = write_people(cx, &loaded, ledger).await;
        write_vendors(cx, &loaded, ledger).await;
        let invoices = write_invoices(cx, &loaded, events, &written, ledger).await;
        write_payments(cx, &loaded, events, &written, &invoices, ledger).await;
        loaded
    }
}

#[async_trait]
impl FlowHandler for FreshbooksToHubspot {
    async fn handle_connection(
        &self,
        name: &str,
        connection: &Connection,
        event: &SyncEvent,
    ) -> Result<Handled, HandlerError> {
        self.handle_connection_batch(name, connection, std::slice::from_ref(event))
            .await
            .pop()
            .unwrap_or_else(|| Err(HandlerError::transient("the batch gave no answer")))
    }

    async fn handle_connection_batch(
        &self,
        name: &str,
        connection: &Connection,
        events: &[SyncEvent],
    ) -> Vec<Result<Handled, HandlerError>> {
        let mut answers: Vec<Option<Result<Handled, HandlerError>>> = vec![None; events.len()];
        let account = connection.source.account.as_deref().unwrap_or_default();
        let mut todo = Vec::new();
        for (i, event) in events.iter().enumerate() {
            answers[i] = if !ENTITIES.contains(&event.entity.as_str()) {
                Some(Ok(Handled::Skipped {
                    reason: format!(
                        "FreshBooks `{}` records are not synced to HubSpot",
                        event.entity
                    ),
                }))
            } else if !connection.enabled {
                Some(Ok(Handled::Skipped {
                    reason: format!("connection `{name}` is disabled"),
                }))
            } else if event.source.account != account {
                Some(Err(HandlerError::permanent(
                    "configuration",
                    format!(
                        "the event is from FreshBooks account `{}` but connection `{name}` \
                         reads account `{account}`",
                        event.source.account
                    ),
                )))
            } else {
                todo.push(i);
                None
            };
        }
        if !todo.is_empty() {
            let batch: Vec<&SyncEvent> = todo.iter().map(|&i| &events[i]).collect();
            match self.begin(name, connection).await {
                Err(e) => {
                    for &i in &todo {
                        answers[i] = Some(Err(e.clone()));
                    }
                }
                Ok(cx) => {
                    let mut ledger = Ledger::default();
                    let loaded = self.run(&cx, &batch, &mut ledger).await;
                    for (&i, event) in todo.iter().zip(&batch) {
                        answers[i] = Some(ledger.answer(&event_keys(event, &loaded)));
                    }
                }
            }
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Err(HandlerError::transient("event left unanswered"))))
            .collect()
    }
}

/// One association pair of HubSpot ids.
pub(super) fn pair(from: &str, to: &str) -> Association {
    Association {
        from: from.to_string(),
        to: to.to_string(),
    }
}
