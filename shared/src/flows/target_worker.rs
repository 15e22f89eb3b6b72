//! [`run_target_worker`]: the one Lambda entry every target worker runs (the Mailchimp worker,
//! the QuickBooks worker): the harness behind the target queue's SQS event source
//! (`ReportBatchItemFailures`), with the target's [`TargetHandler`] ([`target_handler`]) in the
//! middle.
//!
//! Init does no network I/O: the AWS clients connect on first use, and vendor clients are built
//! per credential set on the first event that needs them.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::aws::{AwsAdapters, http::load_sdk_config};
use crate::ports::CachedConnections;
use crate::flows::clients::VendorClients;
use crate::flows::live_clients::{LiveClients, LiveClientsConfig};
use crate::flows::{FlowDeps, TargetDispatch};
use crate::ports::{Clock, ConnectionStore, Leases, Secrets, Store, SystemClock};
use crate::vendor::Vendor;
use crate::worker::{Harness, HarnessConfig, TargetHandler, lambda::run_lambda};

/// How long a warm instance trusts the applied connections before reading them again.
pub const CONNECTIONS_TTL: Duration = Duration::from_secs(60);

/// What a target handler is built from: the applied connections, the live vendor clients, the
/// state store and the clock.
#[derive(Clone)]
pub struct TargetParts {
    pub connections: Arc<CachedConnections>,
    pub clients: Arc<dyn VendorClients>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
}

/// The handler of `target`'s queue: every flow that writes to `target`. `None` for a vendor no
/// flow writes to. The one place a queue's handler is chosen, for the Lambdas, `ml-connector
/// dev` and the test pipelines alike.
pub fn target_handler(target: Vendor, parts: TargetParts) -> Option<Arc<dyn TargetHandler>> {
    let TargetParts {
        connections,
        clients,
        store,
        clock,
    } = parts;
    let deps = FlowDeps {
        clients,
        store,
        clock,
    };
    TargetDispatch::for_target(target, connections, &deps)
        .map(|dispatch| Arc::new(dispatch) as Arc<dyn TargetHandler>)
}

/// Runs the worker Lambda of `target`'s queue ([`target_handler`]), reading the harness, AWS
/// and vendor-client settings from the environment.
pub async fn run_target_worker(target: Vendor) -> Result<(), lambda_runtime::Error> {
    crate::observability::init(true);
    let sdk = load_sdk_config().await;
    let aws = AwsAdapters::from_env(&sdk)?;
    let config = HarnessConfig::from_env()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store: Arc<dyn Store> = Arc::new(aws.store);
    let secrets: Arc<dyn Secrets> = Arc::new(aws.secrets);
    let clients = LiveClients::new(
        secrets,
        store.clone() as Arc<dyn Leases>,
        clock.clone(),
        LiveClientsConfig::from_env()?,
    )?;
    let connections = Arc::new(CachedConnections::new(
        store.clone() as Arc<dyn ConnectionStore>,
        CONNECTIONS_TTL,
    ));
    let handler = target_handler(
        target,
        TargetParts {
            connections,
            clients: Arc::new(clients),
            store: store.clone(),
            clock: clock.clone(),
        },
    )
    .ok_or_else(|| format!("no flow writes to {target}: no worker for its queue"))?;
    let harness = Harness::new(Arc::new(aws.queue), store, clock, handler, config);
    run_lambda(harness).await
}
