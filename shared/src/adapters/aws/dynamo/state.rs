//! The claims in the state table, each decided by one conditional write: idempotency records
//! (`IDEM#<key>` / `IDEM`) and leases (`LEASE#<name>` / `LEASE`).
//!
//! Claim ends (`lease_until`) are epoch milliseconds; `expires_at` (epoch seconds) lets TTL
//! collect the item once it no longer matters.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};

use super::item::{Fields, Item, ItemBuilder, key};
use super::{
    DynamoStore, TTL_ATTRIBUTE, condition_failed, conditional, dynamo_error, epoch_millis_ceil,
    is_live, ttl_secs,
};
use crate::ports::{Begin, Idempotency, Leases, Outcome, PortError, PortResult};

const CLAIMED: &str = "claimed";
const DONE: &str = "done";

/// How often `begin` re-tries when the record it lost to vanished before it could be read.
const BEGIN_ATTEMPTS: usize = 3;

fn idem_pk(key: &str) -> String {
    format!("IDEM#{key}")
}

fn lease_pk(name: &str) -> String {
    format!("LEASE#{name}")
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The end of a claim taken at `now` for `ttl`.
fn claim_end(now: DateTime<Utc>, ttl: Duration) -> PortResult<DateTime<Utc>> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .ok_or_else(|| PortError::backend("dynamodb", format!("claim of {ttl:?} is too long")))
}

/// Whether the record our claim replaced was a dead-lettered outcome still in force, i.e. the
/// claim is a replay. The condition let the write through, so this only reads the old item.
fn replaced_dead_letter(old: Option<&Item>, now: DateTime<Utc>) -> bool {
    let Some(old) = old else { return false };
    let s = |name: &str| {
        old.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    };
    s("status") == Some(DONE)
        && s("outcome") == Some(Outcome::DeadLettered.as_str())
        && is_live(old, now).unwrap_or(false)
}

/// What a record that refused our claim says.
fn refused_by(item: &Item) -> PortResult<Begin> {
    let f = Fields::new(item, "idempotency record");
    match f.s("status")? {
        DONE => Ok(Begin::Duplicate(f.parsed::<Outcome>("outcome")?)),
        CLAIMED => Ok(Begin::InProgress),
        other => Err(PortError::corrupt(
            "idempotency record",
            format!("unknown status `{other}`"),
        )),
    }
}

impl DynamoStore {
    pub(super) async fn read_state(&self, pk: String, sk: &str) -> PortResult<Option<Item>> {
        let table = &self.tables.state;
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error("GetItem", table, &e))?;
        Ok(out.item().cloned())
    }
}

#[async_trait]
impl Idempotency for DynamoStore {
    async fn begin(&self, key: &str, now: DateTime<Utc>, lease: Duration) -> PortResult<Begin> {
        let table = &self.tables.state;
        let until = claim_end(now, lease)?;
        let claim = ItemBuilder::new()
            .s("pk", idem_pk(key))
            .s("sk", "IDEM")
            .s("status", CLAIMED)
            .n("lease_until", epoch_millis_ceil(until))
            .n(TTL_ATTRIBUTE, ttl_secs(until))
            .build();
        for _ in 0..BEGIN_ATTEMPTS {
            let result = self
                .client
                .put_item()
                .table_name(table)
                .set_item(Some(claim.clone()))
                // A dead-lettered outcome is claimable: a replay takes a claim like any
                // delivery, so two copies of it cannot both run.
                .condition_expression(
                    "attribute_not_exists(pk) \
                     OR (#status = :claimed AND lease_until <= :now_ms) \
                     OR (#status = :done AND #outcome = :dead_lettered) \
                     OR expires_at <= :now_s",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#outcome", "outcome")
                .expression_attribute_values(":claimed", AttributeValue::S(CLAIMED.into()))
                .expression_attribute_values(":done", AttributeValue::S(DONE.into()))
                .expression_attribute_values(
                    ":dead_lettered",
                    AttributeValue::S(Outcome::DeadLettered.as_str().into()),
                )
                .expression_attribute_values(":now_ms", n(now.timestamp_millis()))
                .expression_attribute_values(":now_s", n(now.timestamp()))
                .return_values(ReturnValue::AllOld)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let err = match result {
                Ok(out) => {
                    let replay = replaced_dead_letter(out.attributes(), now);
                    return Ok(Begin::Proceed { replay });
                }
                Err(e) if condition_failed(&e) => e,
                Err(e) => return Err(dynamo_error("PutItem", table, &e)),
            };
            // The record that refused us comes back with the error; older emulators leave it
            // out, so read it then.
            let returned = match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => c.item().cloned(),
                _ => None,
            };
            let current = match returned {
                Some(item) => Some(item),
                None => self.read_state(idem_pk(key), "IDEM").await?,
            };
            match current {
                Some(item) => return refused_by(&item),
                // Abandoned between our write and our read: try again.
                None => continue,
            }
        }
        // Every attempt lost a race to a claim that was then dropped: someone is working on it.
        Ok(Begin::InProgress)
    }

    async fn complete(
        &self,
        key: &str,
        outcome: Outcome,
        expires_at: DateTime<Utc>,
    ) -> PortResult<()> {
        let table = &self.tables.state;
        let done = ItemBuilder::new()
            .s("pk", idem_pk(key))
            .s("sk", "IDEM")
            .s("status", DONE)
            .s("outcome", outcome.as_str())
            .n(TTL_ATTRIBUTE, ttl_secs(expires_at))
            .build();
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(done))
            .send()
            .await
            .map_err(|e| dynamo_error("PutItem", table, &e))?;
        Ok(())
    }

    async fn abandon(&self, key: &str) -> PortResult<()> {
        let table = &self.tables.state;
        // Only a claim is dropped: a finished record must keep answering `Duplicate`.
        let result = self
            .client
            .delete_item()
            .table_name(table)
            .set_key(Some(super::item::key(idem_pk(key), "IDEM")))
            .condition_expression("#status = :claimed")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":claimed", AttributeValue::S(CLAIMED.into()))
            .send()
            .await;
        conditional(result, "DeleteItem", table).map(drop)
    }
}

#[async_trait]
impl Leases for DynamoStore {
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> PortResult<bool> {
        let table = &self.tables.state;
        let until = claim_end(now, ttl)?;
        let lease = ItemBuilder::new()
            .s("pk", lease_pk(name))
            .s("sk", "LEASE")
            .s("holder", holder)
            .n("lease_until", epoch_millis_ceil(until))
            .n(TTL_ATTRIBUTE, ttl_secs(until))
            .build();
        let result = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(lease))
            .condition_expression(
                "attribute_not_exists(pk) OR holder = :holder \
                 OR lease_until <= :now_ms OR expires_at <= :now_s",
            )
            .expression_attribute_values(":holder", AttributeValue::S(holder.into()))
            .expression_attribute_values(":now_ms", n(now.timestamp_millis()))
            .expression_attribute_values(":now_s", n(now.timestamp()))
            .send()
            .await;
        conditional(result, "PutItem", table)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> PortResult<()> {
        let table = &self.tables.state;
        let result = self
            .client
            .delete_item()
            .table_name(table)
            .set_key(Some(key(lease_pk(name), "LEASE")))
            .condition_expression("holder = :holder")
            .expression_attribute_values(":holder", AttributeValue::S(holder.into()))
            .send()
            .await;
        // Someone else's (or nobody's) lease: nothing of ours to give up.
        conditional(result, "DeleteItem", table).map(drop)
    }
}

/// Whether a state item read back is still in force (used by the record readers too).
pub(super) fn live_state(item: Option<Item>, now: DateTime<Utc>) -> PortResult<Option<Item>> {
    match item {
        Some(item) if is_live(&item, now)? => Ok(Some(item)),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_read_from_the_record() {
        let done = ItemBuilder::new()
            .s("status", DONE)
            .s("outcome", "unchanged")
            .build();
        assert_eq!(
            refused_by(&done).unwrap(),
            Begin::Duplicate(Outcome::Unchanged)
        );
        let claimed = ItemBuilder::new().s("status", CLAIMED).build();
        assert_eq!(refused_by(&claimed).unwrap(), Begin::InProgress);
        let odd = ItemBuilder::new().s("status", "weird").build();
        assert!(refused_by(&odd).is_err());
    }

    #[test]
    fn only_a_live_dead_lettered_record_makes_a_replay() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        let done = |outcome: &str, expires: i64| {
            ItemBuilder::new()
                .s("status", DONE)
                .s("outcome", outcome)
                .n(TTL_ATTRIBUTE, expires)
                .build()
        };
        assert!(replaced_dead_letter(
            Some(&done("dead_lettered", 1_001)),
            now
        ));
        assert!(!replaced_dead_letter(
            Some(&done("dead_lettered", 1_000)),
            now
        ));
        assert!(!replaced_dead_letter(Some(&done("synced", 1_001)), now));
        let lapsed = ItemBuilder::new().s("status", CLAIMED).build();
        assert!(!replaced_dead_letter(Some(&lapsed), now));
        assert!(!replaced_dead_letter(None, now));
    }

    #[test]
    fn absurd_claims_are_errors_not_panics() {
        let now = DateTime::from_timestamp(0, 0).unwrap();
        assert!(claim_end(now, Duration::from_secs(u64::MAX)).is_err());
        assert_eq!(
            claim_end(now, Duration::from_millis(1500)).unwrap(),
            DateTime::from_timestamp(1, 500_000_000).unwrap()
        );
    }
}
