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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use futures_util::{StreamExt, stream};
use serde_json::json;

use super::ledger::Ledger;
use super::mapping::{self, Company};
use super::options::Options;
use crate::connections::Connection;
use crate::event::SyncEvent;
use crate::flows::FlowHandler;
use crate::flows::clients::VendorClients;
use crate::flows::errors::{from_port, from_vendor};
use crate::flows::freshbooks_standing::{Standing, invoice_currency, standing};
use crate::flows::mailchimp_member::fingerprint;
use crate::flows::options::Retire;
use crate::ids::Email;
use crate::ports::{Clock, IdMap, IdMapping};
use crate::vendors::freshbooks::models::{
    BillVendor, Client, Entity, Invoice, Payment, eastern_date,
};
use crate::vendors::freshbooks::{FreshbooksApi, FreshbooksError};
use crate::vendors::hubspot::models::{
    Association, AssociationType, HubObject, ObjectInput, ObjectType, Properties,
};
use crate::vendors::hubspot::target::HubspotTarget;
use crate::vendors::hubspot::{BATCH_LIMIT, HubspotApi, HubspotError};
use crate::worker::{Handled, HandlerError};

/// The entities the flow syncs; events for others are skipped.
pub(crate) const ENTITIES: &[&str] = &["client", "invoice", "payment", "bill_vendor"];

/// How many FreshBooks reads a batch keeps in flight.
const READ_CONCURRENCY: usize = 4;

/// Id-map key of the portal's invoice-write availability.
pub(crate) const INVOICES_FLAG: &str = "portal:invoice_writes";
/// Id-map key of the portal's commerce-payment availability.
pub(crate) const PAYMENTS_FLAG: &str = "portal:payment_writes";
/// The flags' fingerprint once the portal refused such writes.
pub(crate) const UNAVAILABLE: &str = "unavailable";
/// A payment recorded only in the contact's properties.
const FALLBACK: &str = "fallback";

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
struct ClientData {
    /// `None` when FreshBooks no longer has it.
    client: Option<Client>,
    invoices: Vec<Invoice>,
}

/// What the batch read from FreshBooks, by record id; a failed read is that record's error.
#[derive(Default)]
struct Loaded {
    clients: BTreeMap<String, ClientData>,
    invoices: BTreeMap<String, Option<Invoice>>,
    payments: BTreeMap<String, Option<Payment>>,
    vendors: BTreeMap<String, Option<BillVendor>>,
}

/// One batch of one connection.
struct Cx<'a> {
    name: &'a str,
    account: &'a str,
    options: Options,
    fb: Arc<dyn FreshbooksApi>,
    hs: Arc<dyn HubspotApi>,
    id_map: &'a dyn IdMap,
    clock: &'a dyn Clock,
    today: NaiveDate,
}

impl Cx<'_> {
    async fn get(&self, key: &str) -> Result<Option<IdMapping>, HandlerError> {
        self.id_map
            .get_mapping(self.name, key)
            .await
            .map_err(from_port)
    }

    async fn put(&self, key: &str, target_id: &str, fp: &str) -> Result<(), HandlerError> {
        let mapping = IdMapping {
            target_id: target_id.to_string(),
            fingerprint: fp.to_string(),
            updated_at: self.clock.now(),
        };
        self.id_map
            .put_mapping(self.name, key, &mapping)
            .await
            .map_err(from_port)
    }

    /// Whether the portal refused writes of the flag's kind before.
    async fn unavailable(&self, flag: &str) -> Result<bool, HandlerError> {
        Ok(self
            .get(flag)
            .await?
            .is_some_and(|m| m.fingerprint == UNAVAILABLE))
    }

    async fn mark_unavailable(&self, flag: &str, e: &HubspotError) -> Result<(), HandlerError> {
        tracing::warn!(
            connection = self.name,
            flag,
            error = %e,
            "HubSpot refuses these writes in this portal; they are skipped until it takes them \
             (see `ml-connector status`)"
        );
        self.put(flag, "", UNAVAILABLE).await
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
        Ok(Cx {
            name,
            account: connection.source.account.as_deref().unwrap_or_default(),
            options,
            fb: self
                .clients
                .freshbooks(&connection.source.credentials)
                .await?,
            hs,
            id_map: &*self.id_map,
            clock: &*self.clock,
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

// ---- reading FreshBooks -----------------------------------------------------------------

/// Reads every record the events name, each once: payments, then their invoices, then every
/// client those (and the client events) belong to, with the client's invoices. A failed read
/// fails its record in the ledger.
async fn load(cx: &Cx<'_>, events: &[&SyncEvent], ledger: &mut Ledger) -> Loaded {
    let mut loaded = Loaded::default();
    let ids = |entity: Entity| -> BTreeSet<String> {
        events
            .iter()
            .filter(|e| Entity::parse(&e.entity) == Some(entity))
            .map(|e| e.entity_id.clone())
            .collect()
    };
    let fb = &cx.fb;
    let account = cx.account;

    for (id, read) in read_all(ids(Entity::Payment), |id| async move {
        fb.payment(account, &id).await
    })
    .await
    {
        match read {
            Ok(p) => {
                loaded.payments.insert(id, p);
            }
            Err(e) => ledger.fail(&format!("payment:{id}"), from_vendor(e)),
        }
    }
    let mut invoice_ids = ids(Entity::Invoice);
    invoice_ids.extend(
        loaded
            .payments
            .values()
            .flatten()
            .map(|p| p.invoiceid.clone()),
    );
    for (id, read) in read_all(
        invoice_ids,
        |id| async move { fb.invoice(account, &id).await },
    )
    .await
    {
        match read {
            Ok(i) => {
                loaded.invoices.insert(id, i);
            }
            Err(e) => ledger.fail(&format!("invoice:{id}"), from_vendor(e)),
        }
    }
    let mut client_ids = ids(Entity::Client);
    client_ids.extend(
        loaded
            .invoices
            .values()
            .flatten()
            .map(|i| i.customerid.clone()),
    );
    for (id, read) in read_all(client_ids, |id| async move {
        let client = fb.client(account, &id).await?;
        let invoices = match &client {
            Some(c) if !c.is_deleted() => fb.invoices_for_client(account, &id).await?,
            _ => Vec::new(),
        };
        Ok::<_, FreshbooksError>(ClientData { client, invoices })
    })
    .await
    {
        match read {
            Ok(c) => {
                loaded.clients.insert(id, c);
            }
            Err(e) => ledger.fail(&format!("client:{id}"), from_vendor(e)),
        }
    }
    for (id, read) in read_all(ids(Entity::BillVendor), |id| async move {
        fb.bill_vendor(account, &id).await
    })
    .await
    {
        match read {
            Ok(v) => {
                loaded.vendors.insert(id, v);
            }
            Err(e) => ledger.fail(&format!("vendor:{id}"), from_vendor(e)),
        }
    }
    loaded
}

/// `read` for every id, [`READ_CONCURRENCY`] at a time.
async fn read_all<T, E, F, Fut>(ids: BTreeSet<String>, read: F) -> Vec<(String, Result<T, E>)>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    stream::iter(ids)
        .map(|id| {
            let fut = read(id.clone());
            async move { (id, fut.await) }
        })
        .buffer_unordered(READ_CONCURRENCY)
        .collect()
        .await
}

// ---- batch writes -----------------------------------------------------------------------

/// One upsert or update input, and the record key its outcome belongs to.
struct Pending {
    key: String,
    input: ObjectInput,
}

/// Writes `pending` in chunks of [`BATCH_LIMIT`]: by `id_property` (an upsert) or, with
/// `None`, by HubSpot id (an update). Returns each record's object, or its error (a whole
/// chunk failing fails every record in it).
async fn write_objects(
    hs: &dyn HubspotApi,
    object: ObjectType,
    id_property: Option<&str>,
    pending: Vec<Pending>,
) -> Vec<(String, Result<HubObject, HubspotError>)> {
    let mut out = Vec::with_capacity(pending.len());
    let mut rest = pending;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(BATCH_LIMIT));
        let chunk = std::mem::replace(&mut rest, tail);
        let inputs: Vec<ObjectInput> = chunk.iter().map(|p| p.input.clone()).collect();
        let answer = match id_property {
            Some(prop) => hs.upsert(object, prop, &inputs).await,
            None => hs.update(object, &inputs).await,
        };
        match answer {
            Ok(results) => {
                let mut results = results.into_iter();
                for p in chunk {
                    let r = results.next().unwrap_or_else(|| {
                        Err(HubspotError::UnexpectedBody {
                            status: 200,
                            reason: "fewer results than inputs".into(),
                        })
                    });
                    out.push((p.key, r));
                }
            }
            Err(e) => {
                let shared = SharedError::new(e);
                for p in chunk {
                    out.push((p.key, Err(shared.copy())));
                }
            }
        }
    }
    out
}

/// Associates `pairs` (with the record key each belongs to) in chunks; with `label`, a
/// labelled association, else the default one. Returns the keys whose association failed.
async fn associate(
    hs: &dyn HubspotApi,
    from: ObjectType,
    to: ObjectType,
    label: Option<AssociationType>,
    pairs: Vec<(String, Association)>,
) -> Vec<(String, HubspotError)> {
    let mut failed = Vec::new();
    for chunk in pairs.chunks(BATCH_LIMIT) {
        let inputs: Vec<Association> = chunk.iter().map(|(_, a)| a.clone()).collect();
        let answer = match label {
            Some(label) => hs.associate_labelled(from, to, label, &inputs).await,
            None => hs.associate(from, to, &inputs).await,
        };
        match answer {
            Ok(results) => {
                for ((key, _), r) in chunk.iter().zip(results) {
                    if let Err(e) = r {
                        failed.push((key.clone(), e));
                    }
                }
            }
            Err(e) => {
                let shared = SharedError::new(e);
                failed.extend(chunk.iter().map(|(key, _)| (key.clone(), shared.copy())));
            }
        }
    }
    failed
}

/// A whole-call error, handed to every record of the call: [`HubspotError`] holds a
/// `reqwest::Error` and is not `Clone`, so the copies keep what classification needs.
struct SharedError(HubspotError);

impl SharedError {
    fn new(e: HubspotError) -> Self {
        SharedError(e)
    }

    fn copy(&self) -> HubspotError {
        match &self.0 {
            HubspotError::Api {
                status,
                category,
                sub_category,
                message,
                correlation_id,
                policy,
                retry_after,
                resets_at,
            } => HubspotError::Api {
                status: *status,
                category: category.clone(),
                sub_category: sub_category.clone(),
                message: message.clone(),
                correlation_id: correlation_id.clone(),
                policy: *policy,
                retry_after: *retry_after,
                resets_at: *resets_at,
            },
            HubspotError::DailyLimit { until } => HubspotError::DailyLimit { until: *until },
            HubspotError::UnexpectedBody { status, reason } => HubspotError::UnexpectedBody {
                status: *status,
                reason: reason.clone(),
            },
            HubspotError::Credentials(m) => HubspotError::Credentials(m.clone()),
            HubspotError::InvalidArgument(m) => HubspotError::InvalidArgument(m.clone()),
            // A transport failure is transient whatever it says; keep its text.
            HubspotError::Transport(e) => HubspotError::UnexpectedBody {
                status: 503,
                reason: format!("request failed: {e}"),
            },
            HubspotError::LimiterTimeout(d) => HubspotError::LimiterTimeout(*d),
            // A token error is not `Clone`: a transient one stays transient, the rest are the
            // credential set's problem; its text is kept.
            HubspotError::Token(t) if t.is_transient() => HubspotError::UnexpectedBody {
                status: 503,
                reason: format!("HubSpot token: {t}"),
            },
            HubspotError::Token(t) => HubspotError::Credentials(t.to_string()),
        }
    }
}

/// What `write_people` established per client, for the invoices and payments after it.
#[derive(Default)]
struct People {
    /// client id → contact id.
    contacts: HashMap<String, String>,
    /// client id → company id.
    companies: HashMap<String, String>,
    /// client id → the client's email, for payments.
    emails: HashMap<String, Email>,
    /// client id → its standing's currency.
    currencies: HashMap<String, String>,
}

/// A client's planned writes.
struct ClientPlan {
    id: String,
    previous: Option<IdMapping>,
    contact: Option<Properties>,
    email: Option<Email>,
    company: Option<Company>,
    company_previous: Option<IdMapping>,
    fp: String,
    company_fp: String,
}

/// Contacts and client companies, and the contact's primary company.
async fn write_people(cx: &Cx<'_>, loaded: &Loaded, ledger: &mut Ledger) -> People {
    let mut people = People::default();
    let mut plans = Vec::new();
    let mut deleted = Vec::new();
    for (id, data) in &loaded.clients {
        let key = format!("client:{id}");
        let previous = match cx.get(&key).await {
            Ok(p) => p,
            Err(e) => {
                ledger.fail(&key, e);
                continue;
            }
        };
        let client = match &data.client {
            Some(c) if !c.is_deleted() => c,
            _ => {
                deleted.push((id.clone(), previous));
                continue;
            }
        };
        let s: Standing = standing(client, &data.invoices, cx.today);
        if let Some(c) = &s.currency {
            people.currencies.insert(id.clone(), c.clone());
        }
        let email = Email::parse(client.email.as_deref());
        let contact = email.as_ref().map(|e| mapping::contact(client, e, &s));
        let company = mapping::client_company(cx.account, client, &s);
        if contact.is_none() && company.is_none() {
            ledger.skip(&key, "client has no email and no organization");
            continue;
        }
        let company_previous = match cx.get(&format!("company:client:{id}")).await {
            Ok(p) => p,
            Err(e) => {
                ledger.fail(&key, e);
                continue;
            }
        };
        if let Some(e) = &email {
            people.emails.insert(id.clone(), e.clone());
        }
        let fp = fingerprint(
            &json!({"contact": contact, "company": company.as_ref().map(|c| &c.properties)}),
        );
        let company_fp = fingerprint(&json!(company.as_ref().map(|c| &c.properties)));
        plans.push(ClientPlan {
            id: id.clone(),
            previous,
            contact,
            email,
            company,
            company_previous,
            fp,
            company_fp,
        });
    }

    retire_clients(cx, deleted, &mut people, ledger).await;

    // Contacts: unchanged ones cost nothing; mapped ones are updated by id (an email change
    // stays the same contact), the rest upserted by email.
    let mut by_id = Vec::new();
    let mut by_email = Vec::new();
    for plan in &plans {
        let key = format!("client:{}", plan.id);
        let mapped = plan.previous.as_ref().filter(|m| !m.target_id.is_empty());
        if let Some(m) = mapped {
            people.contacts.insert(plan.id.clone(), m.target_id.clone());
        }
        if let Some(m) = plan
            .company_previous
            .as_ref()
            .filter(|m| !m.target_id.is_empty())
        {
            people
                .companies
                .insert(plan.id.clone(), m.target_id.clone());
        }
        if plan
            .previous
            .as_ref()
            .is_some_and(|m| m.fingerprint == plan.fp)
        {
            ledger.unchanged(&key);
            continue;
        }
        let (Some(props), Some(email)) = (&plan.contact, &plan.email) else {
            continue;
        };
        match mapped {
            Some(m) => by_id.push(Pending {
                key: key.clone(),
                input: ObjectInput {
                    id: m.target_id.clone(),
                    properties: props.clone(),
                },
            }),
            None => by_email.push(Pending {
                key: key.clone(),
                input: ObjectInput {
                    id: email.to_string(),
                    properties: props.clone(),
                },
            }),
        }
    }
    let mut results = write_objects(&*cx.hs, ObjectType::Contacts, None, by_id).await;
    results.extend(write_objects(&*cx.hs, ObjectType::Contacts, Some("email"), by_email).await);
    for (key, r) in results {
        match r {
            Ok(obj) => {
                let id = key.trim_start_matches("client:").to_string();
                ledger.wrote(&key, "contact", json!({"id": obj.id}));
                people.contacts.insert(id, obj.id);
            }
            Err(e) => ledger.fail(&key, from_vendor(e)),
        }
    }

    // Companies of the clients whose record changed.
    let changed: Vec<&ClientPlan> = plans
        .iter()
        .filter(|p| {
            let key = format!("client:{}", p.id);
            !ledger.settled(&key) && p.previous.as_ref().is_none_or(|m| m.fingerprint != p.fp)
        })
        .collect();
    let companies: Vec<(String, Company, Option<String>)> = changed
        .iter()
        .filter(|p| {
            p.company_previous
                .as_ref()
                .is_none_or(|m| m.fingerprint != p.company_fp)
        })
        .filter_map(|p| {
            let company = p.company.clone()?;
            let mapped = p
                .company_previous
                .as_ref()
                .map(|m| m.target_id.clone())
                .filter(|t| !t.is_empty());
            Some((format!("client:{}", p.id), company, mapped))
        })
        .collect();
    for (key, r) in write_companies(cx, companies).await {
        let id = key.trim_start_matches("client:").to_string();
        match r {
            Ok(obj) => {
                ledger.wrote(&key, "company", json!({"id": obj.id}));
                people.companies.insert(id, obj.id);
            }
            Err(e) => ledger.fail(&key, from_vendor(e)),
        }
    }

    // The contact's primary company: labelled (type 1) on top of the default association.
    let pairs: Vec<(String, Association)> = changed
        .iter()
        .filter_map(|p| {
            let key = format!("client:{}", p.id);
            let contact = people.contacts.get(&p.id)?;
            let company = people.companies.get(&p.id)?;
            (!ledger.settled(&key)).then(|| {
                (
                    key,
                    Association {
                        from: contact.clone(),
                        to: company.clone(),
                    },
                )
            })
        })
        .collect();
    for (key, e) in associate(
        &*cx.hs,
        ObjectType::Contacts,
        ObjectType::Companies,
        Some(AssociationType::CONTACT_TO_PRIMARY_COMPANY),
        pairs,
    )
    .await
    {
        ledger.fail(&key, from_vendor(e));
    }

    // The id map last: a failure above leaves the old fingerprint, and the retry writes again.
    for plan in changed {
        let key = format!("client:{}", plan.id);
        if ledger.settled(&key) {
            continue;
        }
        let contact = people.contacts.get(&plan.id).cloned().unwrap_or_default();
        if let Err(e) = cx.put(&key, &contact, &plan.fp).await {
            ledger.fail(&key, e);
            continue;
        }
        if let Some(company) = people.companies.get(&plan.id)
            && let Err(e) = cx
                .put(
                    &format!("company:client:{}", plan.id),
                    company,
                    &plan.company_fp,
                )
                .await
        {
            ledger.fail(&key, e);
        }
    }
    people
}

/// Companies by HubSpot id when mapped, else upserted by `fb_company_key`; two records with
/// the same key in one batch (a vendor and a client on one domain) are one input.
async fn write_companies(
    cx: &Cx<'_>,
    companies: Vec<(String, Company, Option<String>)>,
) -> Vec<(String, Result<HubObject, HubspotError>)> {
    let mut by_id = Vec::new();
    let mut by_key: Vec<(Vec<String>, Company)> = Vec::new();
    for (record, company, mapped) in companies {
        match mapped {
            Some(id) => by_id.push(Pending {
                key: record,
                input: ObjectInput {
                    id,
                    properties: company.properties,
                },
            }),
            None => match by_key.iter_mut().find(|(_, c)| c.key == company.key) {
                Some((records, c)) => {
                    records.push(record);
                    c.merge(company);
                }
                None => by_key.push((vec![record], company)),
            },
        }
    }
    let mut out = write_objects(&*cx.hs, ObjectType::Companies, None, by_id).await;
    let upserts: Vec<Pending> = by_key
        .iter()
        .map(|(records, c)| Pending {
            key: records.join("\n"),
            input: ObjectInput {
                id: c.key.clone(),
                properties: c.properties.clone(),
            },
        })
        .collect();
    for (keys, r) in write_objects(
        &*cx.hs,
        ObjectType::Companies,
        Some(mapping::FB_COMPANY_KEY),
        upserts,
    )
    .await
    {
        let shared = r.map_err(SharedError::new);
        for key in keys.split('\n') {
            out.push((
                key.to_string(),
                match &shared {
                    Ok(obj) => Ok(obj.clone()),
                    Err(e) => Err(e.copy()),
                },
            ));
        }
    }
    out
}

/// Deleted clients: the contact is flagged `fb_deleted` (or archived, with
/// `on_client_delete = "archive"`); a client never synced is skipped.
async fn retire_clients(
    cx: &Cx<'_>,
    deleted: Vec<(String, Option<IdMapping>)>,
    people: &mut People,
    ledger: &mut Ledger,
) {
    let archive = cx.options.on_client_delete == Retire::Archive;
    let marker = if archive { "archived" } else { "deleted" };
    let mut flag = Vec::new();
    let mut gone = Vec::new();
    for (id, previous) in deleted {
        let key = format!("client:{id}");
        let Some(m) = previous.filter(|m| !m.target_id.is_empty()) else {
            ledger.skip(&key, "client deleted in FreshBooks and never synced");
            continue;
        };
        if m.fingerprint == marker {
            ledger.unchanged(&key);
            continue;
        }
        people.contacts.insert(id.clone(), m.target_id.clone());
        if archive {
            gone.push((key, m.target_id));
        } else {
            flag.push(Pending {
                key,
                input: ObjectInput {
                    id: m.target_id,
                    properties: mapping::deleted(),
                },
            });
        }
    }
    let mut done = Vec::new();
    for (key, r) in write_objects(&*cx.hs, ObjectType::Contacts, None, flag).await {
        match r {
            Ok(obj) => {
                ledger.wrote(
                    &key,
                    "contact",
                    json!({"id": obj.id, mapping::FB_DELETED: true}),
                );
                done.push((key, obj.id));
            }
            Err(e) => ledger.fail(&key, from_vendor(e)),
        }
    }
    for chunk in gone.chunks(BATCH_LIMIT) {
        let ids: Vec<String> = chunk.iter().map(|(_, id)| id.clone()).collect();
        match cx.hs.archive(ObjectType::Contacts, &ids).await {
            Ok(()) => {
                for (key, id) in chunk {
                    ledger.wrote(key, "contact", json!({"id": id, "archived": true}));
                    done.push((key.clone(), id.clone()));
                }
            }
            Err(e) => {
                let shared = SharedError::new(e);
                for (key, _) in chunk {
                    ledger.fail(key, from_vendor(shared.copy()));
                }
            }
        }
    }
    for (key, id) in done {
        if let Err(e) = cx.put(&key, &id, marker).await {
            ledger.fail(&key, e);
        }
    }
}

/// Bill vendors as companies, marked as vendors.
async fn write_vendors(cx: &Cx<'_>, loaded: &Loaded, ledger: &mut Ledger) {
    let mut companies = Vec::new();
    let mut fps = HashMap::new();
    for (id, vendor) in &loaded.vendors {
        let key = format!("vendor:{id}");
        let map_key = format!("company:vendor:{id}");
        let previous = match cx.get(&map_key).await {
            Ok(p) => p,
            Err(e) => {
                ledger.fail(&key, e);
                continue;
            }
        };
        let Some(vendor) = vendor else {
            ledger.skip(&key, "bill vendor no longer in FreshBooks");
            continue;
        };
        if vendor.is_deleted() && previous.is_none() {
            ledger.skip(&key, "bill vendor deleted in FreshBooks and never synced");
            continue;
        }
        let company = mapping::vendor_company(cx.account, vendor);
        let fp = fingerprint(&json!(company.properties));
        if previous.as_ref().is_some_and(|m| m.fingerprint == fp) {
            ledger.unchanged(&key);
            continue;
        }
        fps.insert(key.clone(), (map_key, fp));
        let mapped = previous.map(|m| m.target_id).filter(|t| !t.is_empty());
        companies.push((key, company, mapped));
    }
    for (key, r) in write_companies(cx, companies).await {
        match r {
            Ok(obj) => {
                ledger.wrote(&key, "company", json!({"id": obj.id}));
                if let Some((map_key, fp)) = fps.get(&key)
                    && let Err(e) = cx.put(map_key, &obj.id, fp).await
                {
                    ledger.fail(&key, e);
                }
            }
            Err(e) => ledger.fail(&key, from_vendor(e)),
        }
    }
}

/// What `write_invoices` established: FreshBooks invoice id → HubSpot invoice id.
type InvoiceIds = HashMap<String, String>;

/// An invoice's planned writes.
struct InvoicePlan {
    id: String,
    client: String,
    properties: Properties,
    lines: Vec<(String, Properties)>,
    status: &'static str,
    previous: Option<IdMapping>,
    previous_lines: Vec<String>,
    fp: String,
}

/// Invoices, their line items, associations and status.
async fn write_invoices(
    cx: &Cx<'_>,
    loaded: &Loaded,
    events: &[&SyncEvent],
    people: &People,
    ledger: &mut Ledger,
) -> InvoiceIds {
    let mut ids = InvoiceIds::new();
    let needed: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| match Entity::parse(&e.entity) {
            Some(Entity::Invoice) => Some(e.entity_id.as_str()),
            Some(Entity::Payment) => loaded
                .payments
                .get(&e.entity_id)
                .and_then(|p| p.as_ref())
                .map(|p| p.invoiceid.as_str()),
            _ => None,
        })
        .collect();
    if needed.is_empty() {
        return ids;
    }
    match cx.unavailable(INVOICES_FLAG).await {
        Ok(false) => {}
        Ok(true) => {
            for id in needed {
                ledger.skip(
                    &format!("invoice:{id}"),
                    format!(
                        "{INVOICES_UNAVAILABLE}: this HubSpot portal refused invoice writes; \
                         once it takes them, run `ml-connector backfill {} --only invoices`",
                        cx.name
                    ),
                );
            }
            return ids;
        }
        Err(e) => {
            for id in needed {
                ledger.fail(&format!("invoice:{id}"), e.clone());
            }
            return ids;
        }
    }

    let mut plans = Vec::new();
    for id in needed {
        let key = format!("invoice:{id}");
        if ledger.settled(&key) {
            continue;
        }
        let (previous, previous_lines) = match (
            cx.get(&key).await,
            cx.get(&format!("invoice_lines:{id}")).await,
        ) {
            (Ok(p), Ok(l)) => (
                p,
                l.map(|l| {
                    l.target_id
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            ),
            (Err(e), _) | (_, Err(e)) => {
                ledger.fail(&key, e);
                continue;
            }
        };
        if let Some(m) = &previous {
            ids.insert(id.to_string(), m.target_id.clone());
        }
        let Some(Some(inv)) = loaded.invoices.get(id) else {
            match &previous {
                Some(_) => plans.push(void_plan(id, previous, previous_lines)),
                None => ledger.skip(&key, "invoice no longer in FreshBooks"),
            }
            continue;
        };
        if inv.is_draft() && !cx.options.sync_drafts && previous.is_none() {
            ledger.skip(&key, "draft invoice (sync_drafts is off)");
            continue;
        }
        if inv.is_deleted() && previous.is_none() {
            ledger.skip(&key, "invoice deleted in FreshBooks and never synced");
            continue;
        }
        let currency = invoice_currency(inv)
            .or_else(|| people.currencies.get(&inv.customerid).cloned())
            // HubSpot needs a currency on every invoice (§3.6); FreshBooks accounts default to
            // USD when none is set.
            .unwrap_or_else(|| "USD".to_string());
        let properties = mapping::invoice(cx.account, inv, &currency);
        let lines: Vec<(String, Properties)> = inv
            .lines
            .iter()
            .map(|l| mapping::line_item(cx.account, &inv.id, l))
            .collect();
        let status = mapping::invoice_status(inv);
        let contact = people.contacts.get(&inv.customerid);
        let company = people.companies.get(&inv.customerid);
        let hash = fingerprint(&json!({
            "invoice": properties, "lines": lines, "contact": contact, "company": company
        }));
        let fp = format!("{status}:{hash}");
        if previous.as_ref().is_some_and(|m| m.fingerprint == fp) {
            ledger.unchanged(&key);
            continue;
        }
        plans.push(InvoicePlan {
            id: id.to_string(),
            client: inv.customerid.clone(),
            properties,
            lines,
            status,
            previous,
            previous_lines,
            fp,
        });
    }
    if plans.is_empty() {
        return ids;
    }

    // The invoices themselves (a voided one that is gone from FreshBooks has only a status).
    let upserts: Vec<Pending> = plans
        .iter()
        .filter(|p| !p.properties.is_empty())
        .map(|p| Pending {
            key: format!("invoice:{}", p.id),
            input: ObjectInput {
                id: mapping::scoped(cx.account, &p.id),
                properties: p.properties.clone(),
            },
        })
        .collect();
    let mut refused = None;
    for (key, r) in write_objects(
        &*cx.hs,
        ObjectType::Invoices,
        Some(mapping::FB_INVOICE_ID),
        upserts,
    )
    .await
    {
        match r {
            Ok(obj) => {
                ids.insert(key.trim_start_matches("invoice:").to_string(), obj.id);
            }
            Err(e) if e.is_unavailable() => {
                ledger.skip(
                    &key,
                    format!(
                        "{INVOICES_UNAVAILABLE}: {e}; once the portal takes invoice writes, run \
                         `ml-connector backfill {} --only invoices`",
                        cx.name
                    ),
                );
                refused.get_or_insert(e);
            }
            Err(e) => ledger.fail(&key, from_vendor(e)),
        }
    }
    if let Some(e) = refused
        && let Err(err) = cx.mark_unavailable(INVOICES_FLAG, &e).await
    {
        tracing::warn!(error = %err, "could not record that invoices are unavailable");
    }
    let live = |ledger: &Ledger, p: &InvoicePlan| {
        !ledger.settled(&format!("invoice:{}", p.id)) && ids.contains_key(&p.id)
    };

    // Line items, upserted by their key; lines FreshBooks dropped are archived.
    let mut line_ids: HashMap<String, Vec<String>> = HashMap::new();
    let lines: Vec<Pending> = plans
        .iter()
        .filter(|p| live(ledger, p))
        .flat_map(|p| {
            p.lines.iter().map(|(line_key, props)| Pending {
                key: format!("invoice:{}", p.id),
                input: ObjectInput {
                    id: line_key.clone(),
                    properties: props.clone(),
                },
            })
        })
        .collect();
    for (key, r) in write_objects(
        &*cx.hs,
        ObjectType::LineItems,
        Some(mapping::FB_LINE_KEY),
        lines,
    )
    .await
    {
        match r {
            Ok(obj) => line_ids
                .entry(key.trim_start_matches("invoice:").to_string())
                .or_default()
                .push(obj.id),
            Err(e) => ledger.fail(&key, from_vendor(e)),
        }
    }
    let stale: Vec<String> = plans
        .iter()
        .filter(|p| live(ledger, p))
        .flat_map(|p| {
            let now = line_ids.get(&p.id).cloned().unwrap_or_default();
            p.previous_lines
                .iter()
                .filter(move |l| !now.contains(l))
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    for chunk in stale.chunks(BATCH_LIMIT) {
        if let Err(e) = cx.hs.archive(ObjectType::LineItems, chunk).await {
            // The lines stay on the invoice until the next change retries: a stale line is
            // not worth failing the invoice for.
            tracing::warn!(error = %e, "could not archive line items FreshBooks dropped");
        }
    }

    // Associations: lines, contact and company.
    let mut to_lines = Vec::new();
    let mut to_contacts = Vec::new();
    let mut to_companies = Vec::new();
    let written: Vec<&InvoicePlan> = plans.iter().filter(|p| live(ledger, p)).collect();
    for p in written {
        let key = format!("invoice:{}", p.id);
        let Some(invoice) = ids.get(&p.id) else {
            continue;
        };
        for line in line_ids.get(&p.id).into_iter().flatten() {
            to_lines.push((key.clone(), pair(invoice, line)));
        }
        if let Some(c) = people.contacts.get(&p.client) {
            to_contacts.push((key.clone(), pair(invoice, c)));
        }
        if let Some(c) = people.companies.get(&p.client) {
            to_companies.push((key.clone(), pair(invoice, c)));
        }
    }
    for (object, pairs) in [
        (ObjectType::LineItems, to_lines),
        (ObjectType::Contacts, to_contacts),
        (ObjectType::Companies, to_companies),
    ] {
        for (key, e) in associate(&*cx.hs, ObjectType::Invoices, object, None, pairs).await {
            ledger.fail(&key, from_vendor(e));
        }
    }

    // Status last: HubSpot opens an invoice only once it has a contact and lines (§3.6).
    let status_updates: Vec<Pending> = plans
        .iter()
        .filter(|p| live(ledger, p))
        .filter(|p| {
            let before = p
                .previous
                .as_ref()
                .and_then(|m| m.fingerprint.split_once(':'))
                .map(|(s, _)| s);
            // A new invoice is a draft already.
            before.unwrap_or(mapping::STATUS_DRAFT) != p.status
        })
        .filter_map(|p| {
            Some(Pending {
                key: format!("invoice:{}", p.id),
                input: ObjectInput {
                    id: ids.get(&p.id)?.clone(),
                    properties: Properties::from([(
                        "hs_invoice_status".to_string(),
                        p.status.to_string(),
                    )]),
                },
            })
        })
        .collect();
    for (key, r) in write_objects(&*cx.hs, ObjectType::Invoices, None, status_updates).await {
        if let Err(e) = r {
            ledger.fail(&key, from_vendor(e));
        }
    }

    let written: Vec<&InvoicePlan> = plans.iter().filter(|p| live(ledger, p)).collect();
    for p in written {
        let key = format!("invoice:{}", p.id);
        let Some(invoice) = ids.get(&p.id) else {
            continue;
        };
        let lines = line_ids.get(&p.id).cloned().unwrap_or_default();
        ledger.wrote(
            &key,
            "invoice",
            json!({"id": invoice, "status": p.status, "line_items": lines.len()}),
        );
        let saved = async {
            if !p.properties.is_empty() {
                cx.put(&format!("invoice_lines:{}", p.id), &lines.join(","), "")
                    .await?;
            }
            cx.put(&key, invoice, &p.fp).await
        };
        if let Err(e) = saved.await {
            ledger.fail(&key, e);
        }
    }
    ids
}

/// The plan of an invoice gone from FreshBooks that HubSpot has: void it.
fn void_plan(id: &str, previous: Option<IdMapping>, previous_lines: Vec<String>) -> InvoicePlan {
    InvoicePlan {
        id: id.to_string(),
        client: String::new(),
        properties: Properties::new(),
        lines: Vec::new(),
        status: mapping::STATUS_VOIDED,
        fp: format!("{}:gone", mapping::STATUS_VOIDED),
        previous,
        previous_lines,
    }
}

fn pair(from: &str, to: &str) -> Association {
    Association {
        from: from.to_string(),
        to: to.to_string(),
    }
}

/// Payments as commerce payments associated to their invoice and contact; where the portal
/// takes none, the contact's `fb_…` properties (written above) are the record, and the audit
/// says so.
async fn write_payments(
    cx: &Cx<'_>,
    loaded: &Loaded,
    events: &[&SyncEvent],
    people: &People,
    invoices: &InvoiceIds,
    ledger: &mut Ledger,
) {
    let needed: BTreeSet<&str> = events
        .iter()
        .filter(|e| Entity::parse(&e.entity) == Some(Entity::Payment))
        .map(|e| e.entity_id.as_str())
        .collect();
    if needed.is_empty() {
        return;
    }
    let payments_off = match cx.unavailable(PAYMENTS_FLAG).await {
        Ok(off) => off,
        Err(e) => {
            for id in needed {
                ledger.fail(&format!("payment:{id}"), e.clone());
            }
            return;
        }
    };
    let fallback = |ledger: &mut Ledger, key: &str, why: &str| {
        ledger.wrote(
            key,
            "payment",
            json!({FALLBACK: format!("recorded on the contact's FreshBooks properties only: {why}")}),
        );
    };
    let mut upserts = Vec::new();
    let mut targets = HashMap::new();
    let mut gone = Vec::new();
    for id in needed {
        let key = format!("payment:{id}");
        if ledger.settled(&key) {
            continue;
        }
        let previous = match cx.get(&key).await {
            Ok(p) => p,
            Err(e) => {
                ledger.fail(&key, e);
                continue;
            }
        };
        let payment = match loaded.payments.get(id) {
            Some(Some(p)) if p.vis_state != 1 => p,
            _ => {
                match previous.filter(|m| !m.target_id.is_empty() && m.target_id != FALLBACK) {
                    Some(m) => gone.push((key, m.target_id)),
                    None => ledger.skip(&key, "payment no longer in FreshBooks"),
                }
                continue;
            }
        };
        let invoice_key = format!("invoice:{}", payment.invoiceid);
        let invoice = invoices.get(&payment.invoiceid);
        let client = loaded
            .invoices
            .get(&payment.invoiceid)
            .and_then(|i| i.as_ref())
            .map(|i| i.customerid.clone())
            .or_else(|| payment.clientid.clone())
            .unwrap_or_default();
        if payments_off {
            fallback(ledger, &key, "this portal has no payment processing");
            continue;
        }
        let Some(invoice) = invoice.filter(|_| !ledger.settled(&invoice_key)) else {
            fallback(ledger, &key, "its invoice is not in HubSpot");
            continue;
        };
        let currency = people.currencies.get(&client).map(String::as_str);
        let props = mapping::payment(cx.account, payment, currency, people.emails.get(&client));
        let fp = fingerprint(&json!({"payment": props, "invoice": invoice}));
        if previous.as_ref().is_some_and(|m| m.fingerprint == fp) {
            ledger.unchanged(&key);
            continue;
        }
        targets.insert(
            key.clone(),
            (invoice.clone(), people.contacts.get(&client).cloned(), fp),
        );
        upserts.push(Pending {
            key,
            input: ObjectInput {
                id: mapping::scoped(cx.account, &payment.id),
                properties: props,
            },
        });
    }
    for chunk in gone.chunks(BATCH_LIMIT) {
        let ids: Vec<String> = chunk.iter().map(|(_, id)| id.clone()).collect();
        match cx.hs.archive(ObjectType::CommercePayments, &ids).await {
            Ok(()) => {
                for (key, id) in chunk {
                    ledger.wrote(key, "payment", json!({"id": id, "archived": true}));
                    if let Err(e) = cx.put(key, "", "archived").await {
                        ledger.fail(key, e);
                    }
                }
            }
            Err(e) => {
                let shared = SharedError::new(e);
                for (key, _) in chunk {
                    ledger.fail(key, from_vendor(shared.copy()));
                }
            }
        }
    }
    let mut written = Vec::new();
    let mut refused = None;
    for (key, r) in write_objects(
        &*cx.hs,
        ObjectType::CommercePayments,
        Some(mapping::FB_PAYMENT_ID),
        upserts,
    )
    .await
    {
        match r {
            Ok(obj) => written.push((key, obj.id)),
            Err(e) if e.is_unavailable() => {
                fallback(ledger, &key, &format!("HubSpot refused it ({e})"));
                if let Some((_, _, _)) = targets.get(&key)
                    && let Err(err) = cx.put(&key, FALLBACK, FALLBACK).await
                {
                    ledger.fail(&key, err);
                }
                refused.get_or_insert(e);
            }
            Err(e) => ledger.fail(&key, from_vendor(e)),
        }
    }
    if let Some(e) = refused
        && let Err(err) = cx.mark_unavailable(PAYMENTS_FLAG, &e).await
    {
        tracing::warn!(error = %err, "could not record that payments are unavailable");
    }
    let mut to_invoices = Vec::new();
    let mut to_contacts = Vec::new();
    for (key, id) in &written {
        if let Some((invoice, contact, _)) = targets.get(key) {
            to_invoices.push((key.clone(), pair(id, invoice)));
            if let Some(c) = contact {
                to_contacts.push((key.clone(), pair(id, c)));
            }
        }
    }
    for (object, pairs) in [
        (ObjectType::Invoices, to_invoices),
        (ObjectType::Contacts, to_contacts),
    ] {
        for (key, e) in associate(&*cx.hs, ObjectType::CommercePayments, object, None, pairs).await
        {
            ledger.fail(&key, from_vendor(e));
        }
    }
    for (key, id) in written {
        if ledger.settled(&key) {
            continue;
        }
        ledger.wrote(&key, "payment", json!({"id": id}));
        if let Some((_, _, fp)) = targets.get(&key)
            && let Err(e) = cx.put(&key, &id, fp).await
        {
            ledger.fail(&key, e);
        }
    }
}
