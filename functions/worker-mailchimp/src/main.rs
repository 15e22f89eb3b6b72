//! The Mailchimp worker Lambda: hosts the worker harness with [`MailchimpTarget`] behind the
//! Mailchimp queue's SQS event source (`ReportBatchItemFailures`).

use lambda_runtime::Error;
use mlc::flows::mailchimp_target::MailchimpTarget;
use mlc::flows::target_worker::run_target_worker;

#[tokio::main]
async fn main() -> Result<(), Error> {
    run_target_worker(|p| MailchimpTarget::new(p.connections, p.clients, p.store, p.clock)).await
}
