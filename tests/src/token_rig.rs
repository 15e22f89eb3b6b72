//! What a token manager runs on in the client tests: a manual clock (shared with the vendor
//! sandbox, so token expiry moves on both sides at once), an in-memory embedded database for
//! the refresh leases, and the secrets store over it holding the credential set.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mlc::adapters::embedded::{EmbeddedDb, EmbeddedSecrets};
use mlc::ports::{ManualClock, Secrets};
use mlc::tokens::{Refresher, TokenConfig, TokenManager};
use secrecy::{ExposeSecret, SecretString};

/// The clock, database and secrets of a token manager, with the credential sets in them.
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

    /// The credential set `name` as stored now.
    pub async fn stored(&self, name: &str) -> serde_json::Value {
        let raw = self
            .secrets
            .get(&format!("credentials/{name}"))
            .await
            .expect("the embedded secrets store reads")
            .unwrap_or_else(|| panic!("no credential set `{name}`"));
        serde_json::from_str(raw.expose_secret()).expect("the stored set is JSON")
    }

    /// One "Lambda instance": its own token manager (own cache and lease holder id) refreshing
    /// through `oauth` `margin` ahead of expiry, re-reading the set quickly while another
    /// instance refreshes.
    pub fn manager(
        &self,
        oauth: Arc<dyn Refresher>,
        margin: chrono::Duration,
    ) -> Arc<TokenManager> {
        Arc::new(
            TokenManager::new(
                self.secrets.clone(),
                Arc::new(self.db.clone()),
                self.clock.clone(),
                oauth,
            )
            .with_config(TokenConfig {
                margin,
                poll: Duration::from_millis(20),
                ..TokenConfig::default()
            }),
        )
    }
}
