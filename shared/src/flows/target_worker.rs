//! [`run_target_worker`]: the one Lambda entry every target worker runs (the Mailchimp worker,
//! the QuickBooks worker): the harness behind the target queue's SQS event source
//! (`ReportBatchItemFailures`), with the target's [`TargetHandler`] in the middle.
//!
//! Init does no network I/O: the AWS clients connect on first use, and vendor clients are built
//! per credential set on the first event that needs them.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::aws::{AwsAdapters, http::load_sdk_config};
use crate::connections::CachedConnections;
use crate::flows::clients::VendorClients;
use crate::flows::live_clients::{LiveClients, LiveClientsConfig};
use crate::ports::{Clock, ConnectionStore, Leases, Secrets, Store, SystemClock};
use crate::worker::{Harness, HarnessConfig, TargetHandler, lambda::run_lambda};

/// How long a warm instance trusts the applied connections before reading them again.
pub const CONNECTIONS_TTL: Duration = Duration::from_secs(60);

/// What a target handler is built from: the applied connections, the live vendor clients, the
/// state store and the clock.
pub struct TargetParts {
    pub connections: Arc<CachedConnections>,
    pub clients: Arc<dyn VendorClients>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
}

/// Runs the worker Lambda with the handler `make` builds (e.g.
/// `|p| MailchimpTarget::new(p.connections, p.clients, p.store, p.clock)`), reading the
/// harness, AWS and vendor-client settings from the environment.
pub async fn run_target_worker<H, F>(make: F) -> Result<(), lambda_runtime::Error>
where
    H: TargetHandler + 'static,
    F: FnOnce(TargetParts) -> H,
{
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
    let handler = make(TargetParts {
        connections,
        clients: Arc::new(clients),
        store: store.clone(),
        clock: clock.clone(),
    });
    let harness = Harness::new(Arc::new(aws.queue), store, clock, Arc::new(handler), config);
    run_lambda(harness).await
}
