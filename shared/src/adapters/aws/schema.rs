//! Creates the AWS resources the adapters expect — the three tables and a queue with its
//! dead-letter queue — for tests and the local emulator bootstrap. `template.yaml` declares the
//! same resources for deployments; both follow the layouts below.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, SseSpecification, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::config::{QueueUrls, TableNames};
use super::dynamo::TTL_ATTRIBUTE;
use super::error;
use crate::ports::{PortError, PortResult};

/// A global secondary index: string partition and sort keys, all attributes projected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexLayout {
    /// The index name the adapter's queries give (`IndexName`).
    pub name: &'static str,
    /// The attribute the index is partitioned on.
    pub partition_key: &'static str,
    /// The attribute the index sorts each partition by.
    pub sort_key: &'static str,
}

/// A table's keys (all strings) and indexes. Every table has TTL on `expires_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableLayout {
    /// The partition (hash) key attribute.
    pub partition_key: &'static str,
    /// The sort (range) key attribute, for tables that have one.
    pub sort_key: Option<&'static str>,
    /// The table's global secondary indexes.
    pub indexes: &'static [IndexLayout],
}

/// The audit table (`AUDIT_TABLE`): a record's trail under its key, in time order (the sort key
/// starts with the time), and an index by outcome and day.
pub const AUDIT_LAYOUT: TableLayout = TableLayout {
    partition_key: "pk",
    sort_key: Some("sk"),
    indexes: &[IndexLayout {
        name: super::dynamo::OUTCOME_DAY_INDEX,
        partition_key: "outcome_day",
        sort_key: "sk",
    }],
};

/// The dead-letter table (`DEAD_LETTER_TABLE`): one item per deterministic id, listed by status
/// and creation time through an index.
pub const DEAD_LETTER_LAYOUT: TableLayout = TableLayout {
    partition_key: "id",
    sort_key: None,
    indexes: &[IndexLayout {
        name: super::dynamo::STATUS_INDEX,
        partition_key: "status",
        sort_key: "created_at",
    }],
};

/// The state table (`STATE_TABLE`): every other kind of record, told apart by `pk` prefix.
pub const STATE_LAYOUT: TableLayout = TableLayout {
    partition_key: "pk",
    sort_key: Some("sk"),
    indexes: &[],
};

/// How long both queues keep a message: SQS's maximum, 14 days, so there is time to replay.
/// (A message moved to the DLQ keeps its original age, so the DLQ must not keep less.)
const RETENTION: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// One logical queue to create, with its dead-letter queue `<name>-dlq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Physical queue name.
    pub name: String,
    /// Receives after which SQS moves a message to the dead-letter queue.
    pub max_receive_count: u32,
    /// The queue's default visibility timeout.
    pub visibility_timeout: Duration,
}

fn build_error(e: impl std::fmt::Display) -> PortError {
    PortError::backend("schema", e)
}

fn key(name: &str, key_type: KeyType) -> PortResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(build_error)
}

fn key_schema(partition: &str, sort: Option<&str>) -> PortResult<Vec<KeySchemaElement>> {
    let mut keys = vec![key(partition, KeyType::Hash)?];
    if let Some(sort) = sort {
        keys.push(key(sort, KeyType::Range)?);
    }
    Ok(keys)
}

/// Creates one table (or finds it), waits until it is active and makes sure TTL is on.
async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    layout: &TableLayout,
) -> PortResult<()> {
    let mut attributes: Vec<&str> = vec![layout.partition_key];
    attributes.extend(layout.sort_key);
    for index in layout.indexes {
        attributes.extend([index.partition_key, index.sort_key]);
    }
    attributes.sort_unstable();
    attributes.dedup();
    let definitions = attributes
        .into_iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(a)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)
        })
        .collect::<PortResult<Vec<_>>>()?;
    let indexes = layout
        .indexes
        .iter()
        .map(|index| {
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .set_key_schema(Some(key_schema(index.partition_key, Some(index.sort_key))?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(build_error)
        })
        .collect::<PortResult<Vec<_>>>()?;

    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(definitions))
        .set_key_schema(Some(key_schema(layout.partition_key, layout.sort_key)?))
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .sse_specification(SseSpecification::builder().enabled(true).build())
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e) if error::error_code(&e) == Some("ResourceInUseException") => {}
        Err(e) => return Err(error::backend("dynamodb", "CreateTable", name, &e)),
    }
    wait_until_active(client, name).await?;
    enable_ttl(client, name).await
}

async fn wait_until_active(client: &aws_sdk_dynamodb::Client, name: &str) -> PortResult<()> {
    for _ in 0..120 {
        let out = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| error::backend("dynamodb", "DescribeTable", name, &e))?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(PortError::backend(
        "dynamodb",
        format!("table `{name}` did not become active within two minutes"),
    ))
}

async fn enable_ttl(client: &aws_sdk_dynamodb::Client, name: &str) -> PortResult<()> {
    let current = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| error::backend("dynamodb", "DescribeTimeToLive", name, &e))?;
    let description = current.time_to_live_description();
    let status = description.and_then(|d| d.time_to_live_status());
    if matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        return match description.and_then(|d| d.attribute_name()) {
            Some(TTL_ATTRIBUTE) => Ok(()),
            other => Err(PortError::backend(
                "dynamodb",
                format!("table `{name}` has TTL on {other:?}, not `{TTL_ATTRIBUTE}`"),
            )),
        };
    }
    let spec = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(TTL_ATTRIBUTE)
        .build()
        .map_err(build_error)?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| error::backend("dynamodb", "UpdateTimeToLive", name, &e))?;
    Ok(())
}

/// Creates (or finds) the audit, dead-letter and state tables.
pub async fn create_tables(
    client: &aws_sdk_dynamodb::Client,
    tables: &TableNames,
) -> PortResult<()> {
    create_table(client, &tables.audit, &AUDIT_LAYOUT).await?;
    create_table(client, &tables.dead_letters, &DEAD_LETTER_LAYOUT).await?;
    create_table(client, &tables.state, &STATE_LAYOUT).await
}

async fn queue_arn(client: &aws_sdk_sqs::Client, url: &str) -> PortResult<String> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| error::backend("sqs", "GetQueueAttributes", url, &e))?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| PortError::corrupt("queue attributes", format!("{url}: no QueueArn")))
}

/// Creates (or finds) a queue and its dead-letter queue, joined by a RedrivePolicy; both
/// encrypted with SQS-managed keys.
pub async fn create_queue_pair(
    client: &aws_sdk_sqs::Client,
    spec: &QueueSpec,
) -> PortResult<QueueUrls> {
    let dlq_name = format!("{}-dlq", spec.name);
    let dlq_url = client
        .create_queue()
        .queue_name(&dlq_name)
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            RETENTION.as_secs().to_string(),
        )
        .attributes(QueueAttributeName::SqsManagedSseEnabled, "true")
        .send()
        .await
        .map_err(|e| error::backend("sqs", "CreateQueue", &dlq_name, &e))?
        .queue_url()
        .map(str::to_string)
        .ok_or_else(|| PortError::corrupt("queue", format!("{dlq_name}: no QueueUrl")))?;
    let dlq_arn = queue_arn(client, &dlq_url).await?;

    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": spec.max_receive_count,
    });
    let url = client
        .create_queue()
        .queue_name(&spec.name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            RETENTION.as_secs().to_string(),
        )
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            spec.visibility_timeout.as_secs().to_string(),
        )
        .attributes(QueueAttributeName::SqsManagedSseEnabled, "true")
        .send()
        .await
        .map_err(|e| error::backend("sqs", "CreateQueue", &spec.name, &e))?
        .queue_url()
        .map(str::to_string)
        .ok_or_else(|| PortError::corrupt("queue", format!("{}: no QueueUrl", spec.name)))?;
    let arn = queue_arn(client, &url).await?;
    Ok(QueueUrls {
        url,
        arn,
        dlq_url,
        dlq_arn,
    })
}
