//! The webhook Lambda: verifies vendor deliveries behind API Gateway and enqueues them.
//! Built by [`mlc::app`]; the settings it reads are listed in the README's Configuration.

use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    mlc::app::lambda::run_webhook().await
}
