//! The poller Lambda: runs the job an EventBridge schedule names in its input
//! (`{"job":"freshbooks_poll"}`, `{"job":"token_refresh"}`, `{"job":"quickbooks_cdc"}`,
//! `{"job":"quickbooks_token_refresh"}`). See [`mlc::poller`].

use std::sync::Arc;

use lambda_runtime::Error;
use mlc::adapters::aws::{AwsAdapters, http::load_sdk_config};
use mlc::flows::live_clients::{LiveClients, LiveClientsConfig};
use mlc::poller::{Poller, PollerConfig, PollerDeps, lambda::run_lambda};
use mlc::ports::{Leases, Secrets, Store, SystemClock};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mlc::observability::init(true);
    let sdk = load_sdk_config().await;
    let aws = AwsAdapters::from_env(&sdk)?;
    let clock = Arc::new(SystemClock);
    let store: Arc<dyn Store> = Arc::new(aws.store);
    let secrets: Arc<dyn Secrets> = Arc::new(aws.secrets);
    let clients = LiveClients::new(
        secrets,
        store.clone() as Arc<dyn Leases>,
        clock.clone(),
        LiveClientsConfig::from_env()?,
    )?;
    let deps = PollerDeps {
        queue: Arc::new(aws.queue),
        store,
        clock,
        refreshers: clients.token_refreshers(),
        clients: Arc::new(clients),
    };
    let poller = Poller::new(deps, PollerConfig::from_env()?);
    run_lambda(poller).await
}
