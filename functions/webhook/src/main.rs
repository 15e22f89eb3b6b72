//! The webhook Lambda: hosts [`mlc::webhook::WebhookHandler`] behind API Gateway (HTTP API).
//!
//! Init does no network I/O and loads no certificates (see `mlc::adapters::aws::http`), so a
//! cold start costs little more than a bare `lambda_runtime` binary's.

use std::sync::Arc;

use bytes::Bytes;
use lambda_http::{Body, Error, Request, service_fn};
use mlc::adapters::aws::{AwsAdapters, http::load_sdk_config};
use mlc::ports::SystemClock;
use mlc::vendors::freshbooks::callbacks::CallbacksClient;
use mlc::webhook::{WebhookConfig, WebhookDeps, WebhookHandler};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mlc::observability::init(true);
    let sdk = load_sdk_config().await;
    let aws = AwsAdapters::from_env(&sdk)?;
    let freshbooks = match std::env::var("FRESHBOOKS_API_BASE") {
        Ok(base) if !base.is_empty() => CallbacksClient::with_base_url(&base)?,
        _ => CallbacksClient::new(),
    };
    let deps = WebhookDeps {
        queue: Arc::new(aws.queue),
        store: Arc::new(aws.store),
        secrets: Arc::new(aws.secrets),
        clock: Arc::new(SystemClock),
        freshbooks: Arc::new(freshbooks),
    };
    let handler = Arc::new(WebhookHandler::new(deps, WebhookConfig::from_env()?));
    lambda_http::run(service_fn(move |req: Request| {
        let handler = handler.clone();
        async move { Ok::<_, Error>(handler.handle(raw_request(req)).await.map(Body::from)) }
    }))
    .await
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
