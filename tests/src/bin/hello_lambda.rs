//! Baseline for the cold-start benchmark: the smallest useful `lambda_runtime` function.
//!
//! It answers every invocation with `{}`. `coldstart` compares the webhook's start-up against
//! this binary, so it must stay free of any init work of its own.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| async {
        Ok::<Value, Error>(json!({}))
    }))
    .await
}
