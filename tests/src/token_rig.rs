//! What a token manager runs on in the client tests: a manual clock (shared with the vendor
//! sandbox, so token expiry moves on both sides at once), an in-memory embedded database for
//! the refresh leases, and the secrets store over it holding the credential set.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use mlc::adapters::embedded::{EmbeddedDb, EmbeddedSecrets};
use mlc::ports::{ManualClock, Secrets};
use secrecy::SecretString;

/// The clock, database and secrets of a token manager; take the fields apart for a fixture.
pub struct TokenRig {
    pub clock: Arc<ManualClock>,
    pub db: EmbeddedDb,
    pub secrets: Arc<EmbeddedSecrets>,
}

impl TokenRig {
    /// A clock at `start` and an empty database on it.
    pub fn new(start: DateTime<Utc>) -> Self {
        let clock = Arc::new(ManualClock::new(start));
        let db = EmbeddedDb::in_memory(clock.clone()).expect("an in-memory database");
        let secrets =
            Arc::new(EmbeddedSecrets::open(&db).expect("secrets over an in-memory database"));
        Self { clock, db, secrets }
    }

    /// Stores `json` as the credential set `name` (secret `credentials/<name>`).
    pub async fn store_credentials(&self, name: &str, json: &str) {
        self.secrets
            .put(
                &format!("credentials/{name}"),
                &SecretString::from(json.to_string()),
            )
            .await
            .expect("the embedded secrets store takes the credential set");
    }
}
