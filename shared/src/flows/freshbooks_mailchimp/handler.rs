//! [`FreshbooksToMailchimp`]: one event in, the Mailchimp writes it calls for out.
//!
//! Every path reads the record's current state from FreshBooks (events carry ids), maps it with
//! [`super::mapping`], compares the fingerprint of what it would write with the id map's, and
//! only then talks to Mailchimp. The id map is saved after the writes succeed, so a failure part
//! way leaves the old fingerprint and the retry writes again (every write is an upsert or keyed
//! by a deterministic id, so writing twice is harmless).
//!
//! Id map keys, under the connection name:
//! - `client:<id>`: target id = the last email synced (what an email change or a delete
//!   archives); fingerprint of the member, tags and customer, or [`ARCHIVED`](crate::flows::mailchimp_member::ARCHIVED).
//! - `invoice:<id>`: target id = the FreshBooks client id (the order id is the invoice id
//!   itself; the client id lets a vanished invoice still refresh its client's context).
//! - `payment:<id>`: target id = the invoice id, so a payment deleted for good still finds its
//!   invoice.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::NaiveDate;
use serde_json::{Value, json};

use super::mapping;
use super::options::Options;
use crate::connections::Connection;
use crate::event::{Origin, SyncEvent};
use crate::flows::FlowHandler;
use crate::flows::clients::VendorClients;
use crate::flows::errors::from_vendor;
use crate::flows::mailchimp_member::{
    Audience, EmailChange, FlowParts, RetireReason, SourceSpec, already_exists, fingerprint,
    unchanged,
};
use crate::ports::{Clock, IdMap, IdMapping};
use crate::vendors::freshbooks::FreshbooksApi;
use crate::vendors::freshbooks::models::{Client, Entity, Invoice, eastern_date};
use crate::vendors::mailchimp::models::{Order, Product, Store as McStore};
use crate::worker::{Handled, HandlerError};

/// The FreshBooks entities the flow reads: its row in [`crate::flows::FLOWS`] (what is polled,
/// backfilled and subscribed to) and the check of every event, from one list.
pub(crate) const ENTITIES: &[&str] = &["client", "invoice", "payment"];

/// What the flow takes from FreshBooks.
const SOURCE: SourceSpec = SourceSpec {
    vendor: "FreshBooks",
    account: "account",
    entities: ENTITIES,
};

/// The FreshBooks → Mailchimp flow, which the Mailchimp worker's
/// `crate::flows::TargetDispatch` dispatches to.
pub struct FreshbooksToMailchimp {
    /// Clients, store, clock, and the merge fields, stores and products known to
    /// exist per process (each read, and created if missing, once rather than on every event).
    parts: FlowParts,
}

/// Everything one event's handling needs about its connection.
struct Cx<'a> {
    connection: &'a str,
    account: &'a str,
    store_id: String,
    options: Options,
    fb: Arc<dyn FreshbooksApi>,
    /// The audience, its Mailchimp client and the connection's id map.
    au: Audience<'a>,
    backfill: bool,
    /// Whether [`FreshbooksToMailchimp::ensure_store`] already passed for this event: an
    /// invoice event needs the store for its order and again for its client, and a backfill
    /// would otherwise read it twice. Atomic so the handling future stays `Send`.
    store_ensured: AtomicBool,
    /// US/Eastern date of the clock: what "overdue" compares due dates with.
    today: NaiveDate,
}

/// The Mailchimp store a connection writes to: its `store_id`, else one derived from the
/// connection name (`mapping::default_store_id`). The CLI's backfill uses this with
/// [`super::begin_backfill`].
pub fn store_id(connection_name: &str, connection: &Connection) -> String {
    connection
        .target
        .store_id
        .clone()
        .unwrap_or_else(|| mapping::default_store_id(connection_name))
}

impl FreshbooksToMailchimp {
    pub(crate) fn new(
        clients: Arc<dyn VendorClients>,
        id_map: Arc<dyn IdMap>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let parts = FlowParts::new(clients, id_map, clock);
        FreshbooksToMailchimp { parts }
    }

    // ---- clients ------------------------------------------------------------------------

    /// Upserts the client's member (with its financial context), tags and e-commerce customer;
    /// archives the old member on an email change and the member of a deleted client.
    /// `prefetched` saves a read when the invoice path already has the client.
    async fn sync_client(
        &self,
        cx: &Cx<'_>,
        client_id: &str,
        prefetched: Option<Client>,
    ) -> Result<Handled, HandlerError> {
        let key = format!("client:{client_id}");
        let client = match prefetched {
            Some(c) => Some(c),
            None => cx
                .fb
                .client(cx.account, client_id)
                .await
                .map_err(from_vendor)?,
        };
        let previous = cx.au.ids.get(&key).await?;
        let client = match client {
            Some(c) if !c.is_deleted() => c,
            _ => return self.retire_client(cx, &key, previous).await,
        };
        let Some(email) = mapping::client_email(&client) else {
            return Ok(Handled::Skipped {
                reason: "client has no email".into(),
            });
        };
        let invoices = cx
            .fb
            .invoices_for_client(cx.account, &client.id)
            .await
            .map_err(from_vendor)?;
        let ctx = mapping::financial_context(&client, &invoices, cx.today);
        let member =
            mapping::member_upsert(&client, &email, &ctx, cx.options.status_if_new.as_str());
        let tags = cx.options.tags.then(|| mapping::status_tags(&ctx));
        let customer = mapping::customer(cx.account, &client, &email);
        // The address a changed email leaves behind (the id map remembers the last one synced).
        // An archived entry still counts here (the QuickBooks flow leaves it out).
        let EmailChange {
            old: old_email,
            archive: retire_old,
        } = EmailChange::new(previous.as_ref(), &email, cx.options.on_email_change, false);
        let fp = fingerprint(&json!({
            "list": cx.au.list_id,
            "store": cx.store_id,
            "member": member,
            "tags": tags,
            "customer": customer,
            "archive": retire_old,
        }));
        if unchanged(previous.as_ref(), &fp, &email) {
            return Ok(Handled::Unchanged);
        }

        cx.au
            .ensure_merge_fields(&mapping::merge_field_definitions())
            .await?;
        let currency = store_currency(&[client.currency_code.as_deref(), ctx.currency.as_deref()]);
        self.ensure_store(cx, &currency).await?;
        let written_member = cx.au.upsert(&member).await?;
        if let Some(tags) = &tags {
            cx.au
                .mc
                .update_tags(cx.au.list_id, &email, tags, cx.backfill)
                .await
                .map_err(|e| cx.au.error(e))?;
        }
        cx.au
            .mc
            .upsert_customer(&cx.store_id, &customer)
            .await
            .map_err(|e| cx.au.error(e))?;
        // Archive the old address only once the new one is in place.
        let archived_old = match retire_old {
            Some(old) => Some(cx.au.archive(&old).await?),
            None => None,
        };
        cx.au.ids.put(&key, &email, &fp).await?;
        Ok(Handled::Synced {
            before: previous.map(|m| json!({"email": m.target_id})),
            written: Some(json!({
                "member": email,
                "member_status": written_member.status,
                "fb_status": ctx.status.as_str(),
                "tags": tags.is_some(),
                "customer": customer.id,
                "old_email": old_email,
                "old_archived": archived_old,
            })),
        })
    }

    /// A client gone from FreshBooks (or deleted): archive the member of the last email synced,
    /// unless the connection keeps it ([`Audience::retire`]).
    async fn retire_client(
        &self,
        cx: &Cx<'_>,
        key: &str,
        previous: Option<IdMapping>,
    ) -> Result<Handled, HandlerError> {
        let choice = cx.options.on_client_delete;
        let (what, option) = ("client deleted", "on_client_delete");
        let reason = RetireReason {
            what,
            option,
            choice,
        };
        cx.au.retire(key, previous, reason).await
    }

    // ---- invoices -----------------------------------------------------------------------

    /// Writes the invoice's order (store, customer, products first), then refreshes the
    /// client's member.
    async fn sync_invoice(&self, cx: &Cx<'_>, invoice_id: &str) -> Result<Handled, HandlerError> {
        let key = format!("invoice:{invoice_id}");
        let invoice = cx
            .fb
            .invoice(cx.account, invoice_id)
            .await
            .map_err(from_vendor)?;
        let previous = cx.au.ids.get(&key).await?;
        let invoice = match invoice {
            Some(i) if !i.is_deleted() => i,
            gone => {
                return self
                    .cancel_order(cx, &key, invoice_id, gone, previous)
                    .await;
            }
        };
        // Decision: a draft is skipped without looking for an existing order. FreshBooks
        // invoices do not go back to draft once sent, and a lookup would cost a Mailchimp call
        // on every draft edit. (Turning `sync_drafts` off later leaves already-synced drafts as
        // `pending` orders until they are sent, paid or deleted.)
        if invoice.is_draft() && !cx.options.sync_drafts {
            return Ok(Handled::Skipped {
                reason: "draft invoice; the connection does not sync drafts \
                         (options.sync_drafts)"
                    .into(),
            });
        }
        let client = cx
            .fb
            .client(cx.account, &invoice.customerid)
            .await
            .map_err(from_vendor)?;
        let client = match client {
            Some(c) if !c.is_deleted() => c,
            Some(_) => return skipped("the invoice's client is deleted in FreshBooks"),
            None => return skipped("the invoice's client does not exist in FreshBooks"),
        };
        let Some(email) = mapping::client_email(&client) else {
            return skipped(
                "the invoice's client has no email, so Mailchimp has no customer for the order",
            );
        };
        let customer = mapping::customer(cx.account, &client, &email);
        let products = mapping::products(&invoice);
        // The order as FreshBooks alone says it; `refunded` needs the existing order and is
        // decided after the unchanged check (the fingerprint changes when payment does).
        let intended = mapping::order(cx.account, &invoice, None)
            .map_err(|e| HandlerError::permanent("mapping", e.to_string()))?;
        let fp = fingerprint(&json!({
            "list": cx.au.list_id,
            "store": cx.store_id,
            "customer": customer,
            "products": products,
            "order": intended,
        }));
        let order_result = if previous.as_ref().is_some_and(|m| m.fingerprint == fp) {
            None
        } else {
            let currency = store_currency(&[
                client.currency_code.as_deref(),
                Some(intended.currency_code.as_str()),
            ]);
            let result = self
                .write_order(cx, &invoice, intended, &customer, &products, &currency)
                .await?;
            cx.au.ids.put(&key, &client.id, &fp).await?;
            Some(result)
        };
        // Always refresh the member, even when the order is unchanged: a retry after the member
        // write failed must still get there. Its own fingerprint makes it free when unchanged.
        let client_id = client.id.clone();
        let member = self.sync_client(cx, &client_id, Some(client)).await?;
        Ok(combine(order_result, member))
    }

    /// Creates or updates the order; on update, deletes the lines the invoice no longer has.
    async fn write_order(
        &self,
        cx: &Cx<'_>,
        invoice: &Invoice,
        mut order: Order,
        customer: &crate::vendors::mailchimp::models::Customer,
        products: &[Product],
        currency: &str,
    ) -> Result<(Value, Value), HandlerError> {
        self.ensure_store(cx, currency).await?;
        self.ensure_products(cx, products).await?;
        let existing = cx
            .au
            .mc
            .order(&cx.store_id, &order.id)
            .await
            .map_err(|e| cx.au.error(e))?;
        let existing_summary = existing.as_ref().map(|o| mapping::ExistingOrder {
            financial_status: o.financial_status.as_deref(),
            order_total: o.order_total,
        });
        order.financial_status =
            Some(mapping::financial_status(invoice, existing_summary).to_string());
        let before = match &existing {
            Some(o) => json!({"financial_status": o.financial_status, "lines": o.lines.len(),
                              "order_total": o.order_total}),
            None => Value::Null,
        };
        let mut deleted_lines = Vec::new();
        let action = match &existing {
            None => {
                // Orders reference the customer by id: make sure it exists (an idempotent PUT).
                cx.au
                    .mc
                    .upsert_customer(&cx.store_id, customer)
                    .await
                    .map_err(|e| cx.au.error(e))?;
                match cx.au.mc.create_order(&cx.store_id, &order).await {
                    Ok(()) => "created",
                    // Another worker created it between our read and write: update instead.
                    Err(e) if already_exists(&e) => {
                        cx.au
                            .mc
                            .update_order(&cx.store_id, &order)
                            .await
                            .map_err(|e| cx.au.error(e))?;
                        "updated"
                    }
                    Err(e) => return Err(cx.au.error(e)),
                }
            }
            Some(old) => {
                let action = if same_order(old, &order) {
                    "unchanged"
                } else {
                    cx.au
                        .mc
                        .update_order(&cx.store_id, &order)
                        .await
                        .map_err(|e| cx.au.error(e))?;
                    "updated"
                };
                // PATCH cannot remove lines (docs/vendors/mailchimp.md §3.4): delete the stale ones, after
                // the PATCH so the order is never left without lines.
                let keep: HashSet<&str> = order.lines.iter().map(|l| l.id.as_str()).collect();
                for line in old.lines.iter().filter(|l| !keep.contains(l.id.as_str())) {
                    cx.au
                        .mc
                        .delete_order_line(&cx.store_id, &order.id, &line.id)
                        .await
                        .map_err(|e| cx.au.error(e))?;
                    deleted_lines.push(line.id.clone());
                }
                action
            }
        };
        let written = json!({
            "order": order.id,
            "action": action,
            "financial_status": order.financial_status,
            "order_total": order.order_total,
            "currency": order.currency_code,
            "lines": order.lines.len(),
            "deleted_lines": deleted_lines,
        });
        Ok((before, written))
    }

    /// A deleted (or vanished) invoice: its order becomes `cancelled` — preferred over deleting
    /// the order, which would rewrite the customer's purchase history (docs/vendors/mailchimp.md §3.4).
    async fn cancel_order(
        &self,
        cx: &Cx<'_>,
        key: &str,
        invoice_id: &str,
        invoice: Option<Invoice>,
        previous: Option<IdMapping>,
    ) -> Result<Handled, HandlerError> {
        let client_id = invoice
            .as_ref()
            .map(|i| i.customerid.clone())
            .or_else(|| previous.as_ref().map(|m| m.target_id.clone()))
            .filter(|id| !id.is_empty());
        let fp = fingerprint(&json!({"store": cx.store_id, "cancelled": invoice_id}));
        let order_result = if previous.as_ref().is_some_and(|m| m.fingerprint == fp) {
            None
        } else {
            let existing = cx
                .au
                .mc
                .order(&cx.store_id, invoice_id)
                .await
                .map_err(|e| cx.au.error(e))?;
            let result = match existing {
                None => None,
                Some(o) if o.financial_status.as_deref() == Some("cancelled") => None,
                Some(mut o) => {
                    if cx.backfill {
                        self.ensure_store(cx, &o.currency_code).await?;
                    }
                    let before = json!({"financial_status": o.financial_status});
                    o.financial_status = Some("cancelled".into());
                    cx.au
                        .mc
                        .update_order(&cx.store_id, &o)
                        .await
                        .map_err(|e| cx.au.error(e))?;
                    Some((
                        before,
                        json!({"order": o.id, "action": "cancelled",
                               "financial_status": "cancelled"}),
                    ))
                }
            };
            cx.au
                .ids
                .put(key, client_id.as_deref().unwrap_or_default(), &fp)
                .await?;
            match result {
                Some(r) => Some(r),
                None if previous.is_none() => {
                    // Never synced (e.g. a deleted draft): nothing in Mailchimp to cancel.
                    return skipped("invoice deleted; no order was synced for it");
                }
                None => None,
            }
        };
        let member = match client_id {
            Some(id) => Some(self.sync_client(cx, &id, None).await?),
            None => None,
        };
        Ok(match member {
            Some(member) => combine(order_result, member),
            None => match order_result {
                Some((before, written)) => Handled::Synced {
                    before: Some(json!({"order": before})),
                    written: Some(json!({"order": written})),
                },
                None => Handled::Unchanged,
            },
        })
    }

    // ---- payments -----------------------------------------------------------------------

    /// A payment changes its invoice: sync the invoice. The id map remembers which invoice a
    /// payment belongs to, for when the payment is deleted for good.
    async fn sync_payment(&self, cx: &Cx<'_>, payment_id: &str) -> Result<Handled, HandlerError> {
        let key = format!("payment:{payment_id}");
        let payment = cx
            .fb
            .payment(cx.account, payment_id)
            .await
            .map_err(from_vendor)?;
        let previous = cx.au.ids.get(&key).await?;
        let invoice_id = match payment {
            Some(p) => {
                if previous.as_ref().map(|m| m.target_id.as_str()) != Some(p.invoiceid.as_str()) {
                    cx.au.ids.put(&key, &p.invoiceid, "").await?;
                }
                p.invoiceid
            }
            None => match previous {
                Some(m) if !m.target_id.is_empty() => m.target_id,
                _ => {
                    return skipped(
                        "payment not found in FreshBooks and never seen before: \
                         no invoice to update",
                    );
                }
            },
        };
        self.sync_invoice(cx, &invoice_id).await
    }

    // ---- ensuring what writes depend on --------------------------------------------------

    /// The connection's store exists (created on the connection's audience if not) and belongs
    /// to that audience. During a backfill it is re-read once per event and set to
    /// `is_syncing: true` if it is not, so no order or tag write of the backfill triggers
    /// Mailchimp automations; `end_backfill` turns it off.
    async fn ensure_store(&self, cx: &Cx<'_>, currency: &str) -> Result<(), HandlerError> {
        let key = format!("store\0{}\0{}", cx.au.credentials, cx.store_id);
        if cx.store_ensured.load(Ordering::Relaxed)
            || (!cx.backfill && cx.au.ensured.contains(&key))
        {
            return Ok(());
        }
        match cx
            .au
            .mc
            .store(&cx.store_id)
            .await
            .map_err(|e| cx.au.error(e))?
        {
            Some(store) => {
                if store.list_id != cx.au.list_id {
                    // A store's audience can never change (docs/vendors/mailchimp.md §3.1).
                    return Err(HandlerError::permanent(
                        "configuration",
                        format!(
                            "Mailchimp store `{}` belongs to audience `{}`, but connection `{}` \
                             writes to audience `{}`; set target.store_id to a store of that \
                             audience (or a new id)",
                            cx.store_id, store.list_id, cx.connection, cx.au.list_id
                        ),
                    ));
                }
                if cx.backfill && store.is_syncing != Some(true) {
                    cx.au
                        .mc
                        .set_store_syncing(&cx.store_id, true)
                        .await
                        .map_err(|e| cx.au.error(e))?;
                }
            }
            None => {
                let store = McStore {
                    id: cx.store_id.clone(),
                    list_id: cx.au.list_id.to_string(),
                    name: format!("FreshBooks {}", cx.account),
                    currency_code: currency.to_string(),
                    is_syncing: cx.backfill.then_some(true),
                };
                match cx.au.mc.create_store(&store).await {
                    Ok(_) => {}
                    Err(e) if already_exists(&e) => {}
                    Err(e) => return Err(cx.au.error(e)),
                }
            }
        }
        cx.au.ensured.insert(key);
        cx.store_ensured.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Every product (with its variant) an order's lines reference exists.
    async fn ensure_products(&self, cx: &Cx<'_>, products: &[Product]) -> Result<(), HandlerError> {
        for product in products {
            let key = format!(
                "product\0{}\0{}\0{}",
                cx.au.credentials, cx.store_id, product.id
            );
            if cx.au.ensured.contains(&key) {
                continue;
            }
            let exists = cx
                .au
                .mc
                .product(&cx.store_id, &product.id)
                .await
                .map_err(|e| cx.au.error(e))?
                .is_some();
            if !exists {
                match cx.au.mc.create_product(&cx.store_id, product).await {
                    Ok(()) => {}
                    Err(e) if already_exists(&e) => {}
                    Err(e) => return Err(cx.au.error(e)),
                }
            }
            cx.au.ensured.insert(key);
        }
        Ok(())
    }
}

#[async_trait]
impl FlowHandler for FreshbooksToMailchimp {
    async fn handle_connection(
        &self,
        name: &str,
        connection: &Connection,
        event: &SyncEvent,
    ) -> Result<Handled, HandlerError> {
        let begun = match self
            .parts
            .begin::<Options>(&SOURCE, name, connection, event)
            .await?
        {
            Ok(begun) => begun,
            Err(reason) => return Ok(Handled::Skipped { reason }),
        };
        let fb = self
            .parts
            .clients
            .freshbooks(&connection.source.credentials)
            .await?;
        let cx = Cx {
            connection: name,
            account: begun.account,
            store_id: store_id(name, connection),
            options: begun.options,
            fb,
            au: begun.audience,
            backfill: event.origin == Origin::Backfill,
            store_ensured: AtomicBool::new(false),
            today: eastern_date(self.parts.clock.now()),
        };
        // `begin` skipped the entities outside ENTITIES (each of them an `Entity`).
        let entity = Entity::parse(&event.entity).ok_or_else(|| {
            HandlerError::permanent(
                "invalid_event",
                format!("FreshBooks entity `{}` is not one we read", event.entity),
            )
        })?;
        match entity {
            Entity::Client => self.sync_client(&cx, &event.entity_id, None).await,
            Entity::Invoice => self.sync_invoice(&cx, &event.entity_id).await,
            Entity::Payment => self.sync_payment(&cx, &event.entity_id).await,
            // Outside SOURCE.entities: `begin` skipped it already.
            Entity::BillVendor => skipped("bill vendors are not synced to Mailchimp"),
        }
    }
}

fn skipped(reason: &str) -> Result<Handled, HandlerError> {
    Ok(Handled::Skipped {
        reason: reason.to_string(),
    })
}

/// The currency a new store is created with: the first candidate present (the client's, then
/// its invoices'). A store needs one, though orders carry their own; USD is the last resort for
/// a client with neither a currency nor an invoice.
fn store_currency(candidates: &[Option<&str>]) -> String {
    candidates
        .iter()
        .flatten()
        .map(|c| c.trim().to_ascii_uppercase())
        .find(|c| !c.is_empty())
        .unwrap_or_else(|| "USD".to_string())
}

/// Whether the order in Mailchimp already says what we would write (e.g. after the id map was
/// lost): then the PATCH is skipped. Amounts compare to the cent.
fn same_order(a: &Order, b: &Order) -> bool {
    let cents = |x: f64| (x * 100.0).round() as i64;
    let lines = |o: &Order| {
        let mut v: Vec<_> = o
            .lines
            .iter()
            .map(|l| {
                (
                    l.id.clone(),
                    l.product_id.clone(),
                    l.product_variant_id.clone(),
                    l.quantity,
                    cents(l.price),
                )
            })
            .collect();
        v.sort();
        v
    };
    a.financial_status == b.financial_status
        && a.currency_code.eq_ignore_ascii_case(&b.currency_code)
        && cents(a.order_total) == cents(b.order_total)
        && a.customer == b.customer
        && lines(a) == lines(b)
}

/// One outcome for an invoice (or payment) event from the order's and the member's.
fn combine(order: Option<(Value, Value)>, member: Handled) -> Handled {
    let member_synced = matches!(member, Handled::Synced { .. });
    let (member_before, member_written) = match member {
        Handled::Synced { before, written } => (before, written),
        Handled::Unchanged => (None, Some(json!("unchanged"))),
        Handled::Skipped { reason } => (None, Some(json!({"skipped": reason}))),
    };
    match order {
        None if !member_synced => Handled::Unchanged,
        order => {
            let (order_before, order_written) = match order {
                Some((b, w)) => (b, w),
                None => (Value::Null, json!("unchanged")),
            };
            Handled::Synced {
                before: Some(json!({"order": order_before, "member": member_before})),
                written: Some(json!({"order": order_written, "member": member_written})),
            }
        }
    }
}
