//! Opening the SQLite file, migrating its schema, and running statements off the async runtime.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use secrecy::SecretBox;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::schema::MIGRATIONS;
use crate::ports::{Clock, PortError, PortResult};

/// The service name in [`PortError::Backend`] errors from this adapter set.
pub(super) const SERVICE: &str = "sqlite";

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A SQL condition true for a row whose `expires_at_ms` has not passed at `?now`. Local mode has
/// no TTL sweeper, so every read applies it.
pub(super) const LIVE: &str = "(expires_at_ms IS NULL OR expires_at_ms > :now)";

/// One SQLite database holding queues, state and secrets. Cheap to clone: clones share one
/// connection. Implements [`crate::ports::Queue`] and [`crate::ports::Store`]; secrets go through
/// [`super::EmbeddedSecrets`] on top of it.
#[derive(Clone)]
pub struct EmbeddedDb {
    inner: Arc<Inner>,
}

struct Inner {
    // One connection behind a mutex: the workload is small, and it keeps transactions simple.
    // Other processes on the same file are coordinated by SQLite's own locks.
    conn: Mutex<Connection>,
    clock: Arc<dyn Clock>,
    path: Option<PathBuf>,
    // The encryption key of an in-memory database's secrets, which live no longer than it does.
    ephemeral_key: Option<SecretBox<[u8; 32]>>,
}

impl EmbeddedDb {
    /// Opens (creating if needed, mode 0600) the database file at `path` in WAL mode and brings
    /// its schema up to date. Blocking: call it at start-up, not on a hot path.
    pub fn open(path: impl AsRef<Path>, clock: Arc<dyn Clock>) -> PortResult<Self> {
        let path = path.as_ref();
        create_private(path)?;
        let conn = Connection::open(path).map_err(|e| open_err(path, e))?;
        configure(&conn, true)?;
        Self::finish(conn, clock, Some(path.to_path_buf()), None)
    }

    /// A private in-memory database, for tests. Gone when the last clone is dropped.
    pub fn in_memory(clock: Arc<dyn Clock>) -> PortResult<Self> {
        let conn = Connection::open_in_memory().map_err(db_err)?;
        configure(&conn, false)?;
        let key = super::secrets::random_key()?;
        Self::finish(conn, clock, None, Some(key))
    }

    fn finish(
        mut conn: Connection,
        clock: Arc<dyn Clock>,
        path: Option<PathBuf>,
        ephemeral_key: Option<SecretBox<[u8; 32]>>,
    ) -> PortResult<Self> {
        migrate(&mut conn)?;
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                clock,
                path,
                ephemeral_key,
            }),
        })
    }

    /// The database file, `None` for an in-memory database.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The injected clock's current time.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Deletes every row whose `expires_at` has passed (audit items, dead letters, idempotency
    /// records, leases, blobs) and returns how many went. Reads already hide such rows; this only
    /// reclaims space, standing in for DynamoDB's TTL sweeper.
    pub async fn purge_expired(&self) -> PortResult<u64> {
        let now = ms(self.now());
        self.write(move |tx| {
            let mut removed = 0usize;
            for table in ["audit", "dead_letters", "blobs"] {
                removed += tx
                    .execute(
                        &format!("DELETE FROM {table} WHERE expires_at_ms <= ?1"),
                        [now],
                    )
                    .map_err(db_err)?;
            }
            for table in ["idempotency", "leases"] {
                removed += tx
                    .execute(&format!("DELETE FROM {table} WHERE until_ms <= ?1"), [now])
                    .map_err(db_err)?;
            }
            Ok(u64::try_from(removed).unwrap_or(u64::MAX))
        })
        .await
    }

    /// Runs `f` on the connection on the blocking thread pool, so SQLite I/O (and waits on
    /// another process's lock) never stall the async runtime.
    pub(super) async fn read<T, F>(&self, f: F) -> PortResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> PortResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves no half-done work behind: an open
            // transaction rolls back when it is dropped during unwinding.
            let conn = inner.conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| PortError::backend(SERVICE, format!("database task failed: {e}")))?
    }

    /// Runs `f` in a write transaction (`BEGIN IMMEDIATE`, so a read-modify-write never fails to
    /// upgrade its lock halfway), committing when it returns `Ok`.
    pub(super) async fn write<T, F>(&self, f: F) -> PortResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> PortResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let out = f(&tx)?;
            tx.commit().map_err(db_err)?;
            Ok(out)
        })
        .await
        .map_err(|e| PortError::backend(SERVICE, format!("database task failed: {e}")))?
    }

    /// The key for an in-memory database's secrets, drawn when it was created; `None` for a file.
    pub(super) fn ephemeral_key(&self) -> Option<&SecretBox<[u8; 32]>> {
        self.inner.ephemeral_key.as_ref()
    }
}

impl fmt::Debug for EmbeddedDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedDb")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// Creates the file readable by its owner only, before SQLite creates it with the umask's
/// permissions; SQLite gives the WAL and shared-memory files the same mode.
fn create_private(path: &Path) -> PortResult<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| open_err(path, e))
}

fn configure(conn: &Connection, file: bool) -> PortResult<()> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(db_err)?;
    if file {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(db_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(PortError::backend(
                SERVICE,
                format!("cannot use WAL journal mode (got `{mode}`)"),
            ));
        }
        // In WAL mode NORMAL loses no committed data on an application crash, only possibly the
        // last transactions on power loss, and saves an fsync per commit.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
    }
    Ok(())
}

/// Applies the migrations the file has not had, one transaction each. The version is read inside
/// the write transaction, so two processes opening a new file at once do not both migrate it.
fn migrate(conn: &mut Connection) -> PortResult<()> {
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(db_err)?;
        let Some(sql) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            if usize::try_from(version).is_ok_and(|v| v == MIGRATIONS.len()) {
                return Ok(());
            }
            return Err(PortError::corrupt(
                "database",
                format!(
                    "schema version {version} is not one this build knows (0..={})",
                    MIGRATIONS.len()
                ),
            ));
        };
        tx.execute_batch(sql).map_err(db_err)?;
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
    }
}

/// A SQLite failure as a port error.
pub(super) fn db_err(e: rusqlite::Error) -> PortError {
    PortError::backend(SERVICE, e)
}

fn open_err(path: &Path, e: impl fmt::Display) -> PortError {
    PortError::backend(SERVICE, format!("cannot open {}: {e}", path.display()))
}

/// Epoch milliseconds, the unit every time column uses.
pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// `now + d` in epoch milliseconds, saturating instead of overflowing on absurd durations.
pub(super) fn ms_after(now: DateTime<Utc>, d: Duration) -> i64 {
    ms(now).saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A `LIMIT` value; `usize` beyond `i64` cannot be reached by any real table.
pub(super) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Serializes a row's JSON item.
pub(super) fn to_json<T: Serialize>(what: &'static str, value: &T) -> PortResult<String> {
    serde_json::to_string(value)
        .map_err(|e| PortError::backend(SERVICE, format!("cannot encode {what}: {e}")))
}

/// Reads a row's JSON item back.
pub(super) fn from_json<T: DeserializeOwned>(what: &'static str, json: &str) -> PortResult<T> {
    serde_json::from_str(json).map_err(|e| PortError::corrupt(what, e))
}
