//! FreshBooks → Mailchimp: clients become audience members (with their financial context as
//! merge fields and tags) and e-commerce customers; invoices become e-commerce orders.
//!
//! - `options`: the connection's options, typed.
//! - `mapping`: FreshBooks records in, Mailchimp bodies out — pure functions.
//! - `handler`: [`FreshbooksToMailchimp`], the orchestration (the Mailchimp worker reaches it
//!   through `crate::flows::TargetDispatch`).
//!
//! A store backfill (the CLI's `backfill` command) brackets its events with [`begin_backfill`]
//! and [`end_backfill`]; events of origin `backfill` also make sure the store is syncing before
//! they write, and pass `is_syncing` on tag updates, so Mailchimp automations do not e-mail
//! customers about historical orders.

mod handler;
mod mapping;
mod options;

pub(crate) use handler::ENTITIES;
pub use handler::{FreshbooksToMailchimp, store_id};
pub use options::Options;

use crate::vendors::mailchimp::{MailchimpApi, MailchimpError};

/// Pauses the store's automations before a backfill (`PATCH` `is_syncing: true`). `Ok(false)`
/// when the store does not exist yet: the first backfill event creates it already syncing.
pub async fn begin_backfill(
    api: &dyn MailchimpApi,
    store_id: &str,
) -> Result<bool, MailchimpError> {
    set_syncing(api, store_id, true).await
}

/// Resumes the store's automations after a backfill. Call it only once the backfill's events
/// have drained from the queue: a backfill event handled later turns syncing back on.
/// `Ok(false)` when there is no such store.
pub async fn end_backfill(api: &dyn MailchimpApi, store_id: &str) -> Result<bool, MailchimpError> {
    set_syncing(api, store_id, false).await
}

async fn set_syncing(
    api: &dyn MailchimpApi,
    store_id: &str,
    syncing: bool,
) -> Result<bool, MailchimpError> {
    match api.store(store_id).await? {
        None => Ok(false),
        Some(store) if store.is_syncing == Some(syncing) => Ok(true),
        Some(_) => {
            api.set_store_syncing(store_id, syncing).await?;
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests;
