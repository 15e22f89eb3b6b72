//! Invoices, their line items, associations and status.

use std::collections::{BTreeSet, HashMap};

use serde_json::json;

use super::batch::{Pending, associate, write_objects};
use super::handler::{Cx, INVOICES_FLAG, INVOICES_UNAVAILABLE, Loaded, pair};
use super::ledger::Ledger;
use super::mapping;
use super::people::People;
use crate::event::SyncEvent;
use crate::flows::freshbooks_standing::invoice_currency;
use crate::flows::record_ids::fingerprint;
use crate::ports::IdMapping;
use crate::vendors::freshbooks::models::Entity;
use crate::vendors::hubspot::BATCH_LIMIT;
use crate::vendors::hubspot::models::{ObjectInput, ObjectType, Properties};

/// What `write_invoices` established: FreshBooks invoice id → HubSpot invoice id.
pub(super) type InvoiceIds = HashMap<String, String>;

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
pub(super) async fn write_invoices(
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
            cx.ids.get(&key).await,
            cx.ids.get(&format!("invoice_lines:{id}")).await,
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
        let contact = people.contacts.get(&inv.customerid);
        let status = match mapping::invoice_status(inv) {
            // HubSpot opens an invoice only with a contact (§3.6): a client without an email
            // has none, so its invoice stays a draft there.
            mapping::STATUS_OPEN if contact.is_none() => mapping::STATUS_DRAFT,
            status => status,
        };
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
            Err(e) if e.unavailable => {
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
            Err(e) => ledger.fail(&key, e.error),
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
            Err(e) => ledger.fail(&key, e.error),
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
    for p in plans.iter().filter(|p| live(ledger, p)) {
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
            ledger.fail(&key, e.error);
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
            ledger.fail(&key, e.error);
        }
    }

    let done: Vec<&InvoicePlan> = plans.iter().filter(|p| live(ledger, p)).collect();
    for p in done {
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
                cx.ids
                    .put(&format!("invoice_lines:{}", p.id), &lines.join(","), "")
                    .await?;
            }
            cx.ids.put(&key, invoice, &p.fp).await
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
