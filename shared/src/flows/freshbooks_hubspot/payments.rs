//! Commerce payments, or the contact's properties where the portal takes none.

use std::collections::{BTreeSet, HashMap};

use serde_json::json;

use super::batch::{Pending, WriteError, associate, write_objects};
use super::handler::{Cx, FALLBACK, Loaded, PAYMENTS_FLAG, pair};
use super::invoices::InvoiceIds;
use super::ledger::Ledger;
use super::mapping;
use super::people::People;
use crate::event::SyncEvent;
use crate::flows::record_ids::fingerprint;
use crate::vendors::freshbooks::models::Entity;
use crate::vendors::hubspot::BATCH_LIMIT;
use crate::vendors::hubspot::models::{ObjectInput, ObjectType};

/// Payments as commerce payments associated to their invoice and contact; where the portal
/// takes none, the contact's `fb_…` properties (written above) are the record, and the audit
/// says so.
pub(super) async fn write_payments(
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
        let previous = match cx.ids.get(&key).await {
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
                    if let Err(e) = cx.ids.put(key, "", "archived").await {
                        ledger.fail(key, e);
                    }
                }
            }
            Err(e) => {
                let shared = WriteError::from(e);
                for (key, _) in chunk {
                    ledger.fail(key, shared.error.clone());
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
            Err(e) if e.unavailable => {
                fallback(ledger, &key, &format!("HubSpot refused it ({e})"));
                if let Some((_, _, _)) = targets.get(&key)
                    && let Err(err) = cx.ids.put(&key, FALLBACK, FALLBACK).await
                {
                    ledger.fail(&key, err);
                }
                refused.get_or_insert(e);
            }
            Err(e) => ledger.fail(&key, e.error),
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
            ledger.fail(&key, e.error);
        }
    }
    for (key, id) in written {
        if ledger.settled(&key) {
            continue;
        }
        ledger.wrote(&key, "payment", json!({"id": id}));
        if let Some((_, _, fp)) = targets.get(&key)
            && let Err(e) = cx.ids.put(&key, &id, fp).await
        {
            ledger.fail(&key, e);
        }
    }
}
