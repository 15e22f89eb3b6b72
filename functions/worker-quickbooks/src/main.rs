//! The QuickBooks worker Lambda: applies the QuickBooks queue's events to QuickBooks Online.
//! Built by [`mlc::app`]; the settings it reads are listed in the README's Configuration.

use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    mlc::app::lambda::run_worker(mlc::vendor::Vendor::Quickbooks).await
}
