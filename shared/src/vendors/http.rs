//! HTTP pieces every vendor client shares: the process-wide `reqwest` clients.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The longest wait for a TCP/TLS connection, whatever the whole-request timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The process-wide HTTP client (rustls) for whole-request timeout `timeout`: one connection
/// pool, and one load of the TLS roots, per timeout for every vendor and credential set.
/// Clients rebuilt per credential set (Mailchimp's every few minutes) would throw both away.
pub fn shared_http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    static CLIENTS: OnceLock<Mutex<HashMap<Duration, reqwest::Client>>> = OnceLock::new();
    // A poisoned map still holds only fully built clients.
    let mut clients = CLIENTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(client) = clients.get(&timeout) {
        return Ok(client.clone());
    }
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(CONNECT_TIMEOUT))
        .user_agent(concat!("ml-connector/", env!("CARGO_PKG_VERSION")))
        .build()?;
    clients.insert(timeout, client.clone());
    Ok(client)
}
