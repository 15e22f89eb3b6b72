//! The Lambda entry points: each function's `main` calls one of these. They build the [`App`]
//! over the AWS adapters from the environment and hand its part to the runtime.
//!
//! Init does no network I/O and loads no certificates (see [`crate::adapters::aws::http`]):
//! the AWS clients connect on first use, and vendor clients are built per credential set on
//! the first event that needs them.

use std::sync::Arc;

use bytes::Bytes;
use lambda_http::{Body, Request, service_fn};
use lambda_runtime::Error;

use super::{App, LiveClientsConfig, Ports};
use crate::adapters::aws::{AwsAdapters, http::load_sdk_config};
use crate::poller::PollerConfig;
use crate::ports::SystemClock;
use crate::vendor::Vendor;
use crate::webhook::WebhookConfig;
use crate::worker::HarnessConfig;

/// The app over the AWS adapters and vendor settings the function's environment names.
async fn aws_app() -> Result<App, Error> {
    crate::observability::init(true);
    let sdk = load_sdk_config().await;
    let aws = AwsAdapters::from_env(&sdk)?;
    let ports = Ports {
        queue: Arc::new(aws.queue),
        store: Arc::new(aws.store),
        secrets: Arc::new(aws.secrets),
        clock: Arc::new(SystemClock),
    };
    Ok(App::new(ports, LiveClientsConfig::from_env()?))
}

/// The webhook function: the handler behind API Gateway (HTTP API).
pub async fn run_webhook() -> Result<(), Error> {
    let app = aws_app().await?;
    let handler = Arc::new(app.webhook(WebhookConfig::from_env()?)?);
    lambda_http::run(service_fn(move |req: Request| {
        let handler = handler.clone();
        async move { Ok::<_, Error>(handler.handle(raw_request(req)).await.map(Body::from)) }
    }))
    .await
}

/// `target`'s worker function: the harness behind the target queue's SQS event source
/// (`ReportBatchItemFailures`).
pub async fn run_worker(target: Vendor) -> Result<(), Error> {
    let app = aws_app().await?;
    let harness = app.worker(target, HarnessConfig::from_env()?)?;
    crate::worker::lambda::run_lambda(harness).await
}

/// The poller function: runs the job an EventBridge schedule names in its input.
pub async fn run_poller() -> Result<(), Error> {
    let app = aws_app().await?;
    let poller = app.poller(PollerConfig::from_env()?)?;
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
