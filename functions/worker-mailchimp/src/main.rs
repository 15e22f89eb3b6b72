//! The Mailchimp worker Lambda: applies the Mailchimp queue's events to Mailchimp.
//! Built by [`mlc::app`]; the settings it reads are listed in the README's Configuration.

use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    mlc::app::lambda::run_worker(mlc::vendor::Vendor::Mailchimp).await
}
