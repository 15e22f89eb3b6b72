//! Where local mode keeps its state: one SQLite file and its key file.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use mlc::adapters::embedded::{EmbeddedDb, EmbeddedSecrets};
use mlc::ports::SystemClock;

/// The `--db` option every local command shares.
#[derive(clap::Args)]
pub(crate) struct StoreArgs {
    /// The local store (SQLite; its encryption key is kept beside it as `<db>.key`).
    #[arg(
        long,
        env = "ML_CONNECTOR_DB",
        default_value = ".ml-connector/local.db"
    )]
    pub db: PathBuf,
}

impl StoreArgs {
    /// Opens (creating if needed) the store and its encrypted secrets.
    pub(crate) fn open(&self) -> anyhow::Result<(EmbeddedDb, EmbeddedSecrets)> {
        if let Some(dir) = self.db.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let db = EmbeddedDb::open(&self.db, Arc::new(SystemClock))
            .with_context(|| format!("opening {}", self.db.display()))?;
        let secrets = EmbeddedSecrets::open(&db)
            .with_context(|| format!("opening the secret store of {}", self.db.display()))?;
        Ok((db, secrets))
    }
}
