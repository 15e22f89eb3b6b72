//! A backfill into Mailchimp pauses the e-commerce store's automations first (`is_syncing`),
//! so historical orders do not e-mail customers, and `backfill --finish` resumes them.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use mlc::app::LiveClients;
use mlc::connections::Connection;
use mlc::flows::clients::VendorClients;
use mlc::flows::freshbooks_mailchimp::{begin_backfill, end_backfill, store_id};
use mlc::vendors::mailchimp::MailchimpApi;

use crate::vendors::{BackfillTarget, Paused};

/// Mailchimp as a backfill target: its store's automations.
pub(super) struct Target;

fn paused(store: String, existed: bool) -> Paused {
    Paused {
        what: format!("Mailchimp store `{store}`"),
        held: "automations",
        id: store,
        existed,
    }
}

/// The store the connection `name` writes to, and the Mailchimp client of its target.
async fn store_and_api(
    clients: &LiveClients,
    name: &str,
    connection: &Connection,
) -> anyhow::Result<(String, Arc<dyn MailchimpApi>)> {
    let api = clients
        .mailchimp(&connection.target.credentials)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    Ok((store_id(name, connection), api))
}

#[async_trait]
impl BackfillTarget for Target {
    async fn pause(
        &self,
        clients: &LiveClients,
        name: &str,
        connection: &Connection,
    ) -> anyhow::Result<Paused> {
        let (store, api) = store_and_api(clients, name, connection).await?;
        let existed = begin_backfill(api.as_ref(), &store)
            .await
            .with_context(|| format!("pausing the automations of Mailchimp store `{store}`"))?;
        Ok(paused(store, existed))
    }

    async fn resume(
        &self,
        clients: &LiveClients,
        name: &str,
        connection: &Connection,
    ) -> anyhow::Result<Paused> {
        let (store, api) = store_and_api(clients, name, connection).await?;
        let found = end_backfill(api.as_ref(), &store)
            .await
            .with_context(|| format!("resuming the automations of Mailchimp store `{store}`"))?;
        Ok(paused(store, found))
    }
}
