//! Plain records in the state table: the id map (`MAP#<connection>` / `<source_key>`), cursors
//! (`CURSOR#<name>` / `CURSOR`), webhook callbacks (`CALLBACK#<route_id>` / `CALLBACK`) and the
//! applied connections (`CONNECTIONS` / `CURRENT`, JSON in `json`).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::format;
use super::item::{self, Fields, Item, ItemBuilder, key};
use super::state::live_state;
use super::{DynamoStore, conditional, timestamp};
use crate::connections::ConnectionSet;
use crate::ports::{
    CallbackRecord, CallbackStatus, ConnectionStore, Cursors, IdMap, IdMapping, PortError,
    PortResult, WebhookCallbacks,
};
use crate::vendor::Vendor;

/// The stored layout of an [`IdMapping`], under `MAP#<connection>` / `<source_key>`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "IdMapping")]
struct StoredMapping {
    target_id: String,
    fingerprint: String,
    #[serde(serialize_with = "format::time")]
    updated_at: DateTime<Utc>,
}

fn mapping_item(connection: &str, source_key: &str, mapping: &IdMapping) -> PortResult<Item> {
    let mut item = item::to_item(mapping, StoredMapping::serialize, "id mapping")?;
    item.extend(key(format!("MAP#{connection}"), source_key));
    Ok(item)
}

fn mapping_from_item(item: Item) -> PortResult<IdMapping> {
    item::from_item(item, StoredMapping::deserialize, "id mapping")
}

/// The stored layout of a [`CallbackRecord`], under `CALLBACK#<route_id>` / `CALLBACK`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "CallbackRecord")]
struct StoredCallback {
    route_id: String,
    vendor: Vendor,
    account: String,
    callback_id: Option<String>,
    event: String,
    credentials: String,
    status: CallbackStatus,
    #[serde(serialize_with = "format::time")]
    updated_at: DateTime<Utc>,
}

fn callback_item(record: &CallbackRecord) -> PortResult<Item> {
    let mut item = item::to_item(record, StoredCallback::serialize, "webhook callback")?;
    item.extend(key(format!("CALLBACK#{}", record.route_id), "CALLBACK"));
    Ok(item)
}

fn callback_from_item(item: Item) -> PortResult<CallbackRecord> {
    item::from_item(item, StoredCallback::deserialize, "webhook callback")
}

impl DynamoStore {
    pub(super) async fn put_state(&self, item: Item) -> PortResult<()> {
        self.put(&self.tables.state, item).await
    }

    pub(super) async fn get_state(&self, pk: String, sk: &str) -> PortResult<Option<Item>> {
        let item = self.read_state(pk, sk).await?;
        live_state(item, self.clock.now())
    }
}

#[async_trait]
impl IdMap for DynamoStore {
    async fn get_mapping(
        &self,
        connection: &str,
        source_key: &str,
    ) -> PortResult<Option<IdMapping>> {
        let Some(item) = self
            .get_state(format!("MAP#{connection}"), source_key)
            .await?
        else {
            return Ok(None);
        };
        mapping_from_item(item).map(Some)
    }

    async fn put_mapping(
        &self,
        connection: &str,
        source_key: &str,
        mapping: &IdMapping,
    ) -> PortResult<()> {
        self.put_state(mapping_item(connection, source_key, mapping)?)
            .await
    }
}

#[async_trait]
impl Cursors for DynamoStore {
    async fn get_cursor(&self, name: &str) -> PortResult<Option<String>> {
        let Some(item) = self.get_state(format!("CURSOR#{name}"), "CURSOR").await? else {
            return Ok(None);
        };
        Ok(Some(Fields::new(&item, "cursor").s("value")?.to_string()))
    }

    async fn put_cursor(&self, name: &str, value: &str) -> PortResult<()> {
        let item = ItemBuilder::new()
            .s("pk", format!("CURSOR#{name}"))
            .s("sk", "CURSOR")
            .s("value", value)
            .build();
        self.put_state(item).await
    }
}

#[async_trait]
impl WebhookCallbacks for DynamoStore {
    async fn get_callback(&self, route_id: &str) -> PortResult<Option<CallbackRecord>> {
        let item = self
            .get_state(format!("CALLBACK#{route_id}"), "CALLBACK")
            .await?;
        item.map(callback_from_item).transpose()
    }

    async fn put_callback(&self, record: &CallbackRecord) -> PortResult<()> {
        self.put_state(callback_item(record)?).await
    }

    async fn mark_callback_verified(&self, route_id: &str, at: DateTime<Utc>) -> PortResult<bool> {
        let table = &self.tables.state;
        let result = self
            .client
            .update_item()
            .table_name(table)
            .set_key(Some(key(format!("CALLBACK#{route_id}"), "CALLBACK")))
            .update_expression("SET #status = :verified, updated_at = :at")
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(
                ":verified",
                AttributeValue::S(CallbackStatus::Verified.as_str().into()),
            )
            .expression_attribute_values(
                ":pending",
                AttributeValue::S(CallbackStatus::Pending.as_str().into()),
            )
            .expression_attribute_values(":at", AttributeValue::S(timestamp(at)))
            .send()
            .await;
        conditional(result, "UpdateItem", table)
    }

    async fn record_callback_id(&self, route_id: &str, callback_id: &str) -> PortResult<bool> {
        let table = &self.tables.state;
        let result = self
            .client
            .update_item()
            .table_name(table)
            .set_key(Some(key(format!("CALLBACK#{route_id}"), "CALLBACK")))
            .update_expression("SET callback_id = :id")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":id", AttributeValue::S(callback_id.into()))
            .send()
            .await;
        conditional(result, "UpdateItem", table)
    }
}

#[async_trait]
impl ConnectionStore for DynamoStore {
    async fn get_connections(&self) -> PortResult<Option<ConnectionSet>> {
        let Some(item) = self.get_state("CONNECTIONS".into(), "CURRENT").await? else {
            return Ok(None);
        };
        let json = Fields::new(&item, "connections").s("json")?;
        serde_json::from_str(json)
            .map(Some)
            .map_err(|e| PortError::corrupt("connections", e))
    }

    async fn put_connections(&self, set: &ConnectionSet) -> PortResult<()> {
        let json = serde_json::to_string(set).map_err(|e| PortError::corrupt("connections", e))?;
        let item = ItemBuilder::new()
            .s("pk", "CONNECTIONS")
            .s("sk", "CURRENT")
            .s("json", json)
            .s("updated_at", timestamp(self.clock.now()))
            .build();
        self.put_state(item).await
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue::S;

    use super::super::item::literal;
    use super::*;

    fn t(nanos: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, nanos).unwrap()
    }

    // The stored layouts, attribute by attribute: items already in the table must keep reading,
    // and new ones must look the same.
    #[test]
    fn mapping_items_keep_their_layout() {
        let mapping = IdMapping {
            target_id: "m-9".into(),
            fingerprint: "f00d".into(),
            updated_at: t(120_000_000),
        };
        let stored = literal([
            ("pk", S("MAP#fb-to-mc".into())),
            ("sk", S("client:7".into())),
            ("target_id", S("m-9".into())),
            ("fingerprint", S("f00d".into())),
            ("updated_at", S("2023-11-14T22:13:20.120000000Z".into())),
        ]);
        assert_eq!(
            mapping_item("fb-to-mc", "client:7", &mapping).unwrap(),
            stored
        );
        assert_eq!(mapping_from_item(stored).unwrap(), mapping);
    }

    #[test]
    fn callback_items_keep_their_layout() {
        let mut record = CallbackRecord {
            route_id: "r1".into(),
            vendor: Vendor::Freshbooks,
            account: "abc".into(),
            callback_id: Some("77".into()),
            event: "invoice".into(),
            credentials: "freshbooks/abc".into(),
            status: CallbackStatus::Verified,
            updated_at: t(0),
        };
        let mut stored = literal([
            ("pk", S("CALLBACK#r1".into())),
            ("sk", S("CALLBACK".into())),
            ("route_id", S("r1".into())),
            ("vendor", S("freshbooks".into())),
            ("account", S("abc".into())),
            ("callback_id", S("77".into())),
            ("event", S("invoice".into())),
            ("credentials", S("freshbooks/abc".into())),
            ("status", S("verified".into())),
            ("updated_at", S("2023-11-14T22:13:20.000000000Z".into())),
        ]);
        assert_eq!(callback_item(&record).unwrap(), stored);
        assert_eq!(callback_from_item(stored.clone()).unwrap(), record);

        // No id yet: the attribute is absent, not null.
        record.callback_id = None;
        record.status = CallbackStatus::Pending;
        stored.remove("callback_id");
        stored.insert("status".into(), S("pending".into()));
        assert_eq!(callback_item(&record).unwrap(), stored);
        assert_eq!(callback_from_item(stored).unwrap(), record);
    }

    #[test]
    fn unreadable_callbacks_are_corrupt_not_panics() {
        let stored = literal([("route_id", S("r1".into())), ("vendor", S("nope".into()))]);
        assert!(matches!(
            callback_from_item(stored),
            Err(PortError::Corrupt { .. })
        ));
    }

    #[test]
    fn callback_status_names_match_serde() {
        for status in [CallbackStatus::Pending, CallbackStatus::Verified] {
            let serde = serde_json::to_value(status).unwrap();
            assert_eq!(serde.as_str(), Some(status.as_str()));
        }
    }
}
