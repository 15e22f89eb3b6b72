//! The poller Lambda: runs the job an EventBridge schedule names (`{"job":"freshbooks_poll"}`).
//! Built by [`mlc::app`]; the settings it reads are listed in the README's Configuration.

use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    mlc::app::lambda::run_poller().await
}
