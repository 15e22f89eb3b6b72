//! The QuickBooks worker Lambda: hosts the worker harness with [`QuickbooksTarget`] behind the
//! QuickBooks queue's SQS event source (`ReportBatchItemFailures`). QuickBooks clients come from
//! the connection's credential set (realm, environment, tokens); `QUICKBOOKS_API_BASE` points
//! them at a sandbox.

use lambda_runtime::Error;
use mlc::flows::quickbooks_target::QuickbooksTarget;
use mlc::flows::target_worker::run_target_worker;

#[tokio::main]
async fn main() -> Result<(), Error> {
    run_target_worker(|p| QuickbooksTarget::new(p.connections, p.clients)).await
}
