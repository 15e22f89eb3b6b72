//! The small state items: id map, cursors, webhook callbacks, blobs and applied connections.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, named_params, params};

use super::db::{EmbeddedDb, LIVE, db_err, from_json, ms, to_json};
use crate::connections::ConnectionSet;
use crate::ports::{
    Blobs, CallbackRecord, CallbackStatus, ConnectionStore, Cursors, IdMap, IdMapping, PortResult,
    WebhookCallbacks,
};

#[async_trait]
impl IdMap for EmbeddedDb {
    async fn get_mapping(
        &self,
        connection: &str,
        source_key: &str,
    ) -> PortResult<Option<IdMapping>> {
        let (connection, source_key) = (connection.to_string(), source_key.to_string());
        self.read(move |conn| {
            let json: Option<String> = conn
                .query_row(
                    "SELECT item FROM id_map WHERE connection = ?1 AND source_key = ?2",
                    params![connection, source_key],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            json.map(|j| from_json("id mapping", &j)).transpose()
        })
        .await
    }

    async fn put_mapping(
        &self,
        connection: &str,
        source_key: &str,
        mapping: &IdMapping,
    ) -> PortResult<()> {
        let item = to_json("id mapping", mapping)?;
        let (connection, source_key) = (connection.to_string(), source_key.to_string());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO id_map (connection, source_key, item) VALUES (?1, ?2, ?3)
                 ON CONFLICT (connection, source_key) DO UPDATE SET item = excluded.item",
                params![connection, source_key, item],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Cursors for EmbeddedDb {
    async fn get_cursor(&self, name: &str) -> PortResult<Option<String>> {
        let name = name.to_string();
        self.read(move |conn| {
            conn.query_row("SELECT value FROM cursors WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn put_cursor(&self, name: &str, value: &str) -> PortResult<()> {
        let (name, value) = (name.to_string(), value.to_string());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO cursors (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}

const CALLBACK: &str = "webhook callback";

#[async_trait]
impl WebhookCallbacks for EmbeddedDb {
    async fn get_callback(&self, route_id: &str) -> PortResult<Option<CallbackRecord>> {
        let route_id = route_id.to_string();
        self.read(move |conn| {
            let json: Option<String> = conn
                .query_row(
                    "SELECT item FROM callbacks WHERE route_id = ?1",
                    [route_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            json.map(|j| from_json(CALLBACK, &j)).transpose()
        })
        .await
    }

    async fn put_callback(&self, record: &CallbackRecord) -> PortResult<()> {
        let item = to_json(CALLBACK, record)?;
        let route_id = record.route_id.clone();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO callbacks (route_id, item) VALUES (?1, ?2)
                 ON CONFLICT (route_id) DO UPDATE SET item = excluded.item",
                params![route_id, item],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn mark_callback_verified(&self, route_id: &str, at: DateTime<Utc>) -> PortResult<bool> {
        self.update_callback(route_id, move |record| {
            if record.status != CallbackStatus::Pending {
                return false;
            }
            record.status = CallbackStatus::Verified;
            record.updated_at = at;
            true
        })
        .await
    }

    async fn record_callback_id(&self, route_id: &str, callback_id: &str) -> PortResult<bool> {
        let callback_id = callback_id.to_string();
        self.update_callback(route_id, move |record| {
            record.callback_id = Some(callback_id);
            true
        })
        .await
    }
}

impl EmbeddedDb {
    /// Read-modify-write of one callback record in a single transaction; `change` says
    /// whether to write. `false` if there is no record or nothing was written.
    async fn update_callback(
        &self,
        route_id: &str,
        change: impl FnOnce(&mut CallbackRecord) -> bool + Send + 'static,
    ) -> PortResult<bool> {
        let route_id = route_id.to_string();
        self.write(move |tx| {
            let json: Option<String> = tx
                .query_row(
                    "SELECT item FROM callbacks WHERE route_id = ?1",
                    [&route_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            let Some(json) = json else {
                return Ok(false);
            };
            let mut record: CallbackRecord = from_json(CALLBACK, &json)?;
            if !change(&mut record) {
                return Ok(false);
            }
            tx.execute(
                "UPDATE callbacks SET item = ?2 WHERE route_id = ?1",
                params![route_id, to_json(CALLBACK, &record)?],
            )
            .map_err(db_err)?;
            Ok(true)
        })
        .await
    }
}

#[async_trait]
impl Blobs for EmbeddedDb {
    /// Stores the body in one row: SQLite has no item size limit worth chunking around.
    async fn put_blob(
        &self,
        key: &str,
        body: &[u8],
        expires_at: Option<DateTime<Utc>>,
    ) -> PortResult<()> {
        let (key, body) = (key.to_string(), body.to_vec());
        let expires = expires_at.map(ms);
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO blobs (key, body, expires_at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET
                     body = excluded.body, expires_at_ms = excluded.expires_at_ms",
                params![key, body, expires],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn get_blob(&self, key: &str) -> PortResult<Option<Vec<u8>>> {
        let key = key.to_string();
        let now = ms(self.now());
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT body FROM blobs WHERE key = :key AND {LIVE}"),
                named_params! { ":key": key, ":now": now },
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }
}

const CONNECTIONS: &str = "connections set";

#[async_trait]
impl ConnectionStore for EmbeddedDb {
    async fn get_connections(&self) -> PortResult<Option<ConnectionSet>> {
        self.read(|conn| {
            let json: Option<String> = conn
                .query_row("SELECT json FROM connections WHERE id = 1", [], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db_err)?;
            json.map(|j| from_json(CONNECTIONS, &j)).transpose()
        })
        .await
    }

    async fn put_connections(&self, set: &ConnectionSet) -> PortResult<()> {
        let json = to_json(CONNECTIONS, set)?;
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO connections (id, json) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET json = excluded.json",
                [json],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests;
