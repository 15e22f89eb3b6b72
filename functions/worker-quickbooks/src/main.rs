//! The QuickBooks worker Lambda: hosts the worker harness with the QuickBooks queue's handler
//! ([`target_handler`](mlc::flows::target_worker::target_handler)) behind its SQS event source
//! (`ReportBatchItemFailures`). QuickBooks clients come from the connection's credential set
//! (realm, environment, tokens); `QUICKBOOKS_API_BASE` points them at a sandbox.

use lambda_runtime::Error;
use mlc::flows::target_worker::run_target_worker;
use mlc::vendor::Vendor;

#[tokio::main]
async fn main() -> Result<(), Error> {
    run_target_worker(Vendor::Quickbooks).await
}
