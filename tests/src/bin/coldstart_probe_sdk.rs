//! Cold-start experiment: a Lambda that builds the SQS, DynamoDB and Secrets Manager clients
//! at init, as the webhook does, then serves `{}` like `hello_lambda`.
//!
//! `COLDSTART_PROBE_MODE` picks how the SDK is set up, so `coldstart --probe` can compare:
//! - `none`: no SDK work at all, isolating what this binary's larger size costs at load;
//! - `naive`: `aws_config::load_defaults` with the SDK's default HTTPS client (native roots
//!   read from `/etc/ssl/certs` while each client is constructed);
//! - `webpki`: [`mlc::adapters::aws::http::load_sdk_config`] (compiled-in roots, TLS set up on
//!   first request);
//! - `webpki-reqwest-eager`: `webpki` plus a `reqwest::Client` built at init, to show what an
//!   eagerly built vendor HTTP client costs (rustls-platform-verifier loads native roots in
//!   `ClientBuilder::build`).
//!
//! With `COLDSTART_PROBE_TIMINGS` set, the time each init step took is printed to stderr,
//! followed by two Secrets Manager calls to a refused loopback port (retries off): the first
//! pays for whatever TLS set-up the HTTP client deferred, the second shows the steady state.

use std::time::Instant;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// The service clients a webhook holds for its whole lifetime.
struct Clients {
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    secrets: aws_sdk_secretsmanager::Client,
}

impl Clients {
    fn new(config: &SdkConfig) -> Self {
        Self {
            sqs: aws_sdk_sqs::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
        }
    }
}

/// Prints how long each init step took when `COLDSTART_PROBE_TIMINGS` is set.
struct StepTimer {
    enabled: bool,
    last: Instant,
}

impl StepTimer {
    fn new() -> Self {
        Self {
            enabled: std::env::var_os("COLDSTART_PROBE_TIMINGS").is_some(),
            last: Instant::now(),
        }
    }

    fn step(&mut self, name: &str) {
        let now = Instant::now();
        if self.enabled {
            eprintln!("{name}: {:.3} ms", (now - self.last).as_secs_f64() * 1e3);
        }
        self.last = now;
    }
}

/// Sends one `GetSecretValue` to a loopback port nobody listens on, without retries.
async fn refused_request(secrets: &aws_sdk_secretsmanager::Client) {
    let outcome = secrets
        .get_secret_value()
        .secret_id("coldstart-probe")
        .customize()
        .config_override(
            aws_sdk_secretsmanager::config::Builder::new()
                .endpoint_url("http://127.0.0.1:1")
                .retry_config(aws_config::retry::RetryConfig::disabled()),
        )
        .send()
        .await;
    if outcome.is_ok() {
        eprintln!("unexpected: a request to 127.0.0.1:1 succeeded");
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut timer = StepTimer::new();
    let mode = std::env::var("COLDSTART_PROBE_MODE").unwrap_or_default();
    let (config, eager_reqwest) = match mode.as_str() {
        "none" => (None, false),
        "naive" => (
            Some(aws_config::load_defaults(BehaviorVersion::latest()).await),
            false,
        ),
        "webpki" => (
            Some(mlc::adapters::aws::http::load_sdk_config().await),
            false,
        ),
        "webpki-reqwest-eager" => (
            Some(mlc::adapters::aws::http::load_sdk_config().await),
            true,
        ),
        other => {
            return Err(format!(
                "COLDSTART_PROBE_MODE must be none, naive, webpki or webpki-reqwest-eager, not {other:?}"
            )
            .into());
        }
    };
    timer.step("load sdk config");
    let clients = config.as_ref().map(Clients::new);
    timer.step("build sqs, dynamodb and secrets manager clients");
    let vendor_http = if eager_reqwest {
        Some(reqwest::Client::builder().build()?)
    } else {
        None
    };
    timer.step("build reqwest client");
    if let (true, Some(clients)) = (timer.enabled, &clients) {
        for step in ["first request (refused)", "second request (refused)"] {
            refused_request(&clients.secrets).await;
            timer.step(step);
        }
    }
    let vendor_http = &vendor_http;
    let clients = &clients;
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| async move {
        // Reported so the clients are observably part of the handler's state.
        let region = |c: Option<&Region>| c.map(|r| r.to_string());
        Ok::<Value, Error>(json!({
            "sqs_region": clients.as_ref().and_then(|c| region(c.sqs.config().region())),
            "dynamodb_region": clients.as_ref().and_then(|c| region(c.dynamodb.config().region())),
            "secrets_region": clients.as_ref().and_then(|c| region(c.secrets.config().region())),
            "vendor_http": vendor_http.is_some(),
        }))
    }))
    .await
}
