//! The poller Lambda: runs the job an EventBridge schedule names in its input
//! (`{"job":"freshbooks_poll"}`, `{"job":"token_refresh"}`, `{"job":"quickbooks_cdc"}`,
//! `{"job":"quickbooks_token_refresh"}`). See [`mlc::poller`].

use std::sync::Arc;

use lambda_runtime::Error;
use mlc::adapters::aws::{AwsAdapters, http::load_sdk_config};
use mlc::flows::live_clients::{LiveClients, LiveClientsConfig};
use mlc::poller::{Poller, PollerConfig, PollerDeps, lambda::run_lambda};
use mlc::ports::{Leases, Secrets, Store, SystemClock};
use mlc::vendor::Vendor;

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
    // The QuickBooks clients and this refresher share one token manager, so the job and the
    // CDC sweep see the same tokens and refresh single-flight.
    let quickbooks_tokens = clients.quickbooks_tokens();
    let deps = PollerDeps {
        queue: Arc::new(aws.queue),
        store,
        clock,
        tokens: clients.freshbooks_tokens(),
        clients: Arc::new(clients),
    };
    let poller = Poller::new(deps, PollerConfig::from_env()?)
        .with_token_refresher(Vendor::Quickbooks, quickbooks_tokens);
    run_lambda(poller).await
}
