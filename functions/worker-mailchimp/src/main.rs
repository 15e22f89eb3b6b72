//! The Mailchimp worker Lambda: hosts the worker harness with the Mailchimp queue's handler
//! ([`target_handler`](mlc::flows::target_worker::target_handler)) behind its SQS event source
//! (`ReportBatchItemFailures`).

use lambda_runtime::Error;
use mlc::flows::target_worker::run_target_worker;
use mlc::vendor::Vendor;

#[tokio::main]
async fn main() -> Result<(), Error> {
    run_target_worker(Vendor::Mailchimp).await
}
