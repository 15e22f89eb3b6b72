//! Embedded adapters: one SQLite file for the queue, the state store and encrypted secrets.
//!
//! Local mode (the whole pipeline in one process) and the domain tests run on these. They keep
//! the semantics of the AWS set — SQS visibility, receipts, redrive policy and DLQ; the DynamoDB
//! tables' keys, orderings and conditional writes — and, with no TTL sweeper behind them, treat a
//! row whose `expires_at` has passed as absent ([`EmbeddedDb::purge_expired`] reclaims the space).
//!
//! ```no_run
//! # async fn demo() -> mlc::ports::PortResult<()> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use mlc::adapters::embedded::{EmbeddedDb, EmbeddedSecrets};
//! use mlc::ports::SystemClock;
//!
//! let db = EmbeddedDb::open("ml-connector.db", Arc::new(SystemClock))?;
//! db.declare_queue("mailchimp", 5, Duration::from_secs(60)).await?;
//! let secrets = EmbeddedSecrets::open(&db)?; // key in `ml-connector.db.key`
//! # Ok(()) }
//! ```

mod audit;
mod db;
mod dead_letters;
mod idempotency;
mod queue;
mod schema;
mod secrets;
mod state;

pub use db::EmbeddedDb;
pub use secrets::EmbeddedSecrets;

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod test_support {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use super::EmbeddedDb;
    use crate::ports::ManualClock;

    /// A fresh in-memory database on a manual clock at 2026-02-25.
    pub(crate) fn test_db() -> (EmbeddedDb, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::at_unix(1_772_000_000));
        let db = EmbeddedDb::in_memory(clock.clone()).expect("in-memory database opens");
        (db, clock)
    }

    /// A directory under the system temp dir, removed when dropped.
    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new() -> Self {
            let path = std::env::temp_dir()
                .join(format!("mlc-embedded-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&path).expect("temp dir can be created");
            Self(path)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
