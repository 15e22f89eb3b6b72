//! `backfill` reading a FreshBooks account: every record of the entities the connection's flow
//! reads (clients, invoices and payments for Mailchimp) changed since a day, listed as the
//! fallback poll lists them, as events of this run.

use std::collections::BTreeMap;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use chrono::NaiveDate;
use mlc::app::LiveClients;
use mlc::connections::Connection;
use mlc::flows::clients::VendorClients;
use mlc::poller::freshbooks_poll::{entities_for, to_event};

use crate::ops::backfill::Listing;
use crate::ops::output;
use crate::vendors::BackfillSource;

/// FreshBooks as a backfill source.
pub(super) struct Source;

#[async_trait]
impl BackfillSource for Source {
    async fn list(
        &self,
        clients: &LiveClients,
        connection: &Connection,
        account: &str,
        only: &[&str],
        since: NaiveDate,
        run: &str,
        json: bool,
    ) -> anyhow::Result<Listing> {
        let fb = clients
            .freshbooks(&connection.source.credentials)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        let source = connection.source_ref();
        let mut listing = Listing {
            counts: BTreeMap::new(),
            events: Vec::new(),
        };
        for entity in entities_for([connection])
            .into_iter()
            .filter(|e| only.contains(&e.as_str()))
        {
            let spinner = output::spinner(&format!("listing {}s", entity.as_str()), json);
            let records = fb
                .changed_since(account, entity, since)
                .await
                .with_context(|| {
                    format!(
                        "listing FreshBooks {}s of account {account}",
                        entity.as_str()
                    )
                })?;
            spinner.finish_and_clear();
            listing.counts.insert(entity.as_str(), records.len());
            listing.events.extend(records.iter().map(|c| {
                let updated = c.updated.as_deref().unwrap_or_default();
                to_event(&source, c, &format!("backfill {run} {updated}"))
            }));
        }
        Ok(listing)
    }
}
