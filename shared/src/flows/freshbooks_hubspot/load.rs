//! Reading what a batch names from FreshBooks, each record once.

use std::collections::BTreeSet;

use futures_util::{StreamExt, stream};

use super::handler::{ClientData, Cx, Loaded};
use super::ledger::Ledger;
use crate::event::SyncEvent;
use crate::flows::errors::from_vendor;
use crate::vendors::freshbooks::FreshbooksError;
use crate::vendors::freshbooks::models::Entity;

/// How many FreshBooks reads a batch keeps in flight.
const READ_CONCURRENCY: usize = 4;

/// Reads every record the events name, each once: payments, then their invoices, then every
/// client those (and the client events) belong to, with the client's invoices. A failed read
/// fails its record in the ledger.
pub(super) async fn load(cx: &Cx<'_>, events: &[&SyncEvent], ledger: &mut Ledger) -> Loaded {
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
