//! The store port over DynamoDB: the audit, dead-letter and state tables laid out as in
//! `docs/architecture.md` (and created by [`super::schema`] / `template.yaml`).
//!
//! Expiry: every item of a type with an expiry carries `expires_at` (epoch seconds, rounded up),
//! DynamoDB's TTL attribute. TTL deletes lazily (up to days late), so reads treat an item whose
//! `expires_at` has passed as absent, and conditional writes treat it as free.

mod audit;
mod blobs;
mod dead_letters;
mod format;
mod item;
mod records;
mod state;

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use chrono::{DateTime, SecondsFormat, Utc};

use super::config::TableNames;
use super::error;
use crate::ports::{Clock, PortError, PortResult};
use item::{Fields, Item};

pub(crate) use audit::OUTCOME_DAY_INDEX;
pub(crate) use dead_letters::STATUS_INDEX;

const SERVICE: &str = "dynamodb";
const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

/// The TTL attribute on every table.
pub(crate) const TTL_ATTRIBUTE: &str = "expires_at";

/// The store port (every store trait) over the three DynamoDB tables. Expired items that TTL
/// has not deleted yet read as absent.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    tables: TableNames,
    clock: Arc<dyn Clock>,
}

impl DynamoStore {
    /// A store over `tables`; `clock` decides what "expired" means on reads.
    pub fn new(client: Client, tables: TableNames, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            tables,
            clock,
        }
    }

    /// An unconditional `PutItem`.
    async fn put(&self, table: &str, item: Item) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| dynamo_error("PutItem", table, &e))?;
        Ok(())
    }

    /// Pages through a query, newest-first or not as the builder says, keeping live items until
    /// `limit` are found.
    async fn query_live(
        &self,
        query: QueryFluentBuilder,
        table: &str,
        limit: usize,
    ) -> PortResult<Vec<Item>> {
        let mut found = Vec::new();
        if limit == 0 {
            return Ok(found);
        }
        let now = self.clock.now();
        let page_size = i32::try_from(limit.min(1000)).unwrap_or(1000);
        let mut start = None;
        loop {
            let out = query
                .clone()
                .limit(page_size)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| dynamo_error("Query", table, &e))?;
            for item in out.items() {
                if is_live(item, now)? {
                    found.push(item.clone());
                    if found.len() == limit {
                        return Ok(found);
                    }
                }
            }
            match out.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(found),
            }
        }
    }
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

/// Maps a failed call, turning a missing table into [`PortError::NotFound`].
fn dynamo_error<E>(operation: &str, table: &str, err: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if error::error_code(err) == Some("ResourceNotFoundException") {
        return PortError::NotFound {
            what: "table",
            name: table.to_string(),
        };
    }
    error::backend(SERVICE, operation, table, err)
}

/// Whether a conditional write failed its condition (as opposed to failing).
fn condition_failed<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    error::error_code(err) == Some(CONDITION_FAILED)
}

/// A conditional write's outcome: `true` written, `false` its condition did not hold (which
/// includes a missing item for conditions on its attributes), any other failure an error.
fn conditional<O, E>(
    result: Result<O, SdkError<E, HttpResponse>>,
    operation: &str,
    table: &str,
) -> PortResult<bool>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if condition_failed(&e) => Ok(false),
        Err(e) => Err(dynamo_error(operation, table, &e)),
    }
}

/// RFC 3339, UTC, nanoseconds: fixed width, so string order is time order (sort keys), and
/// lossless.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// The TTL value for an expiry: epoch seconds rounded up, so an item never expires early.
fn ttl_secs(at: DateTime<Utc>) -> i64 {
    at.timestamp() + i64::from(at.timestamp_subsec_nanos() > 0)
}

/// Epoch milliseconds rounded up (lease ends).
fn epoch_millis_ceil(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis() + i64::from(!at.timestamp_subsec_nanos().is_multiple_of(1_000_000))
}

/// An item is live until its `expires_at` second begins (`now < expires_at`); the condition
/// expressions use the same rule as `expires_at <= :now_s`.
fn is_live(item: &Item, now: DateTime<Utc>) -> PortResult<bool> {
    let expires: Option<i64> = Fields::new(item, "item").opt_n(TTL_ATTRIBUTE)?;
    Ok(expires.is_none_or(|e| now.timestamp() < e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rounds_up_and_is_exclusive() {
        let at = DateTime::from_timestamp(100, 500_000_000).unwrap();
        assert_eq!(ttl_secs(at), 101);
        assert_eq!(ttl_secs(DateTime::from_timestamp(100, 0).unwrap()), 100);
        assert_eq!(
            epoch_millis_ceil(DateTime::from_timestamp(1, 1).unwrap()),
            1001
        );

        let item: Item = [(
            TTL_ATTRIBUTE.to_string(),
            aws_sdk_dynamodb::types::AttributeValue::N("100".into()),
        )]
        .into();
        let t = |s, n| DateTime::from_timestamp(s, n).unwrap();
        assert!(is_live(&item, t(99, 999_999_999)).unwrap());
        assert!(!is_live(&item, t(100, 0)).unwrap());
        assert!(is_live(&Item::new(), t(i64::from(i32::MAX), 0)).unwrap());
    }

    #[test]
    fn timestamps_sort_as_times() {
        let a = timestamp(DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let b = timestamp(DateTime::from_timestamp(1_700_000_000, 5).unwrap());
        assert_eq!(a, "2023-11-14T22:13:20.000000000Z");
        assert!(a < b);
    }
}
