//! The HubSpot worker Lambda: applies the HubSpot queue's events to HubSpot, a whole SQS batch
//! at a time. Built by [`mlc::app`]; the settings it reads are listed in the README's
//! Configuration.

use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    mlc::app::lambda::run_worker(mlc::vendor::Vendor::Hubspot).await
}
