//! The Lambda entry points: each function's `main` calls one of these. They read the function's
//! environment once ([`super::env`]), build the [`App`] over the AWS adapters it names and hand
//! its part to the runtime.
//!
//! Init does no network I/O and loads no certificates (see [`crate::adapters::aws::http`]):
//! the AWS clients connect on first use, and vendor clients are built per credential set on
//! the first event that needs them.

use std::sync::Arc;

use bytes::Bytes;
use lambda_http::{Body, Request, service_fn};
use lambda_runtime::Error;

use super::env::{PollerEnv, WebhookEnv, WorkerEnv};
use super::{App, LiveClientsConfig, Ports};
use crate::adapters::aws::{AwsAdapters, AwsSettings, http::load_sdk_config};
use crate::config::FromEnv;
use crate::ports::SystemClock;
use crate::vendor::Vendor;

/// Reads the function's environment (one struct, read once) after logging is set up, so a
/// variable that cannot be used is reported like any other start-up error.
fn read_env<E: FromEnv>() -> Result<E, Error> {
    crate::observability::init(true);
    Ok(E::from_env()?)
}

/// The app over the AWS adapters the environment names and its vendor-client settings.
async fn aws_app(aws: AwsSettings, clients: LiveClientsConfig) -> App {
    let sdk = load_sdk_config().await;
    let aws = AwsAdapters::from_settings(&sdk, aws);
    let ports = Ports {
        queue: Arc::new(aws.queue),
        store: Arc::new(aws.store),
        secrets: Arc::new(aws.secrets),
        clock: Arc::new(SystemClock),
    };
    App::new(ports, clients)
}

/// The webhook function: the handler behind API Gateway (HTTP API).
pub async fn run_webhook() -> Result<(), Error> {
    let env: WebhookEnv = read_env()?;
    let app = aws_app(env.aws, env.clients).await;
    let handler = Arc::new(app.webhook(env.webhook)?);
    lambda_http::run(service_fn(move |req: Request| {
        let handler = handler.clone();
        async move { Ok::<_, Error>(handler.handle(raw_request(req)).await.map(Body::from)) }
    }))
    .await
}

/// `target`'s worker function: the harness behind the target queue's SQS event source
/// (`ReportBatchItemFailures`).
pub async fn run_worker(target: Vendor) -> Result<(), Error> {
    let env: WorkerEnv = read_env()?;
    let app = aws_app(env.aws, env.clients).await;
    let harness = app.worker(target, env.harness)?;
    crate::worker::lambda::run_lambda(harness).await
}

/// The poller function: runs the job an EventBridge schedule names in its input.
pub async fn run_poller() -> Result<(), Error> {
    let env: PollerEnv = read_env()?;
    let app = aws_app(env.aws, env.clients).await;
    let poller = app.poller(env.poller)?;
    crate::poller::lambda::run_lambda(poller).await
}

/// The request with its body as the raw bytes the vendor signed (`lambda_http` has already
/// undone API Gateway's base64 encoding).
fn raw_request(req: Request) -> http::Request<Bytes> {
    let (parts, body) = req.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        other => Bytes::copy_from_slice(&other),
    };
    http::Request::from_parts(parts, bytes)
}
