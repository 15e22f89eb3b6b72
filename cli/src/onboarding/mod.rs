//! Onboarding: `connect` (credentials in), `ping` (do they work), `apply` (connections and
//! webhook registration). Each works on the local store (`--local`/`--db`, the default) or a
//! deployed stack (`--stack`): credential sets go to the stack's Secrets Manager prefix
//! (`ml-connector/<Stage>/credentials/<name>`), the connections and callback records to its
//! state table.

pub mod apply;
pub mod connect;
mod input;
pub mod mailchimp_webhook;
pub mod oauth_listener;
pub mod ping;
pub mod quickbooks;

use std::sync::Arc;

use mlc::ports::{Secrets, Store};

use crate::local_store::StoreArgs;
use crate::target::{Target, TargetArgs, Where};

/// The ports an onboarding command works through.
pub struct Ports {
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn Secrets>,
    pub place: Where,
    /// The stack, when the command works on one (its outputs).
    pub stack: Option<Target>,
}

/// Opens the stack, or the local store — created if missing: onboarding is what a new user
/// runs first, before `dev` has made one.
pub async fn open(target: &TargetArgs) -> anyhow::Result<Ports> {
    if let Some(name) = target.stack_name()? {
        let t = target.open_stack(name).await?;
        return Ok(Ports {
            store: t.store.clone(),
            secrets: t.secrets.clone(),
            place: t.place.clone(),
            stack: Some(t),
        });
    }
    let (db, secrets) = StoreArgs {
        db: target.db.clone(),
    }
    .open()?;
    Ok(Ports {
        store: Arc::new(db),
        secrets: Arc::new(secrets),
        place: Where::Local {
            db: target.db.clone(),
        },
        stack: None,
    })
}
