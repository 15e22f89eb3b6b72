//! The Mailchimp worker Lambda: hosts the worker harness with [`MailchimpTarget`] behind the
//! Mailchimp queue's SQS event source (`ReportBatchItemFailures`).
//!
//! Init does no network I/O: the AWS clients connect on first use, and vendor clients are built
//! per credential set on the first event that needs them.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::Error;
use mlc::adapters::aws::{AwsAdapters, http::load_sdk_config};
use mlc::connections::CachedConnections;
use mlc::flows::live_clients::{LiveClients, LiveClientsConfig};
use mlc::flows::mailchimp_target::MailchimpTarget;
use mlc::ports::{ConnectionStore, Leases, Secrets, Store, SystemClock};
use mlc::worker::{Harness, HarnessConfig, lambda::run_lambda};

/// How long a warm instance trusts the applied connections before reading them again.
const CONNECTIONS_TTL: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Error> {
    mlc::observability::init(true);
    let sdk = load_sdk_config().await;
    let aws = AwsAdapters::from_env(&sdk)?;
    let config = HarnessConfig::from_env()?;
    let clock = Arc::new(SystemClock);
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
    let handler =
        MailchimpTarget::new(connections, Arc::new(clients), store.clone(), clock.clone());
    let harness = Harness::new(Arc::new(aws.queue), store, clock, Arc::new(handler), config);
    run_lambda(harness).await
}
