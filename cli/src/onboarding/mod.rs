//! Onboarding: `connect` (credentials in), `ping` (do they work), `apply` (connections and
//! webhook registration). Each works on the local store (`--local`/`--db`, the default) or a
//! deployed stack (`--stack`): credential sets go to the stack's Secrets Manager prefix
//! (`ml-connector/<Stage>/credentials/<name>`), the connections and callback records to its
//! state table.

pub(crate) mod apply;
pub(crate) mod connect;
pub(crate) mod input;
pub(crate) mod oauth_listener;
pub(crate) mod ping;

use std::sync::Arc;

use mlc::app::{App, LiveClientsConfig};
use mlc::ports::{Queue, Secrets, Store, SystemClock};

use crate::local_store::StoreArgs;
use crate::target::{Target, TargetArgs, Where};

/// The ports an onboarding command works through.
pub(crate) struct Ports {
    pub queue: Arc<dyn Queue>,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn Secrets>,
    pub place: Where,
    /// The stack, when the command works on one (its outputs).
    pub stack: Option<Target>,
}

/// Opens the stack, or the local store — created if missing: onboarding is what a new user
/// runs first, before `dev` has made one.
pub(crate) async fn open(target: &TargetArgs) -> anyhow::Result<Ports> {
    if let Some(name) = target.stack_name()? {
        let t = target.open_stack(name).await?;
        return Ok(Ports {
            queue: t.queue.clone(),
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
        queue: Arc::new(db.clone()),
        store: Arc::new(db),
        secrets: Arc::new(secrets),
        place: Where::Local {
            db: target.db.clone(),
        },
        stack: None,
    })
}

impl Ports {
    /// The app over these ports, as the Lambdas build it: its clients are the workers' own.
    pub(crate) fn app(&self, clients: LiveClientsConfig) -> App {
        let ports = mlc::app::Ports {
            queue: self.queue.clone(),
            store: self.store.clone(),
            secrets: self.secrets.clone(),
            clock: Arc::new(SystemClock),
        };
        App::new(ports, clients)
    }
}
