//! AWS adapters: [`SqsQueue`] (SQS), [`DynamoStore`] (DynamoDB) and [`SecretsManagerSecrets`]
//! (Secrets Manager), configured from the Lambda environment ([`AwsSettings`]) or, for the CLI,
//! from a stack's outputs ([`AwsAdapters::new`]).
//!
//! [`schema`] creates the resources they expect, for tests and the local emulator; deployments
//! get the same resources from `template.yaml`.

pub(crate) mod config;
pub(crate) mod dynamo;
mod error;
pub mod http;
pub mod schema;
pub(crate) mod secrets;
pub mod sqs;

use std::sync::Arc;

use aws_config::SdkConfig;

pub use config::{AwsSettings, QueueMap, QueueUrls, TableNames};
pub use dynamo::DynamoStore;
pub use secrets::SecretsManagerSecrets;
pub use sqs::SqsQueue;

use crate::ports::{Clock, SystemClock};

/// The three AWS adapters, sharing one SDK configuration: what an app (a Lambda, or the CLI on
/// a deployed stack) needs for its queue, store and secrets ports.
#[derive(Debug, Clone)]
pub struct AwsAdapters {
    /// The queue port, over the queues of the [`QueueMap`].
    pub queue: SqsQueue,
    /// The store port, over the three [`TableNames`] tables.
    pub store: DynamoStore,
    /// The secrets port, over the names under the secret prefix.
    pub secrets: SecretsManagerSecrets,
}

impl AwsAdapters {
    /// Builds the adapters from the function's [`AwsSettings`] (read from `QUEUES`,
    /// `AUDIT_TABLE`, `DEAD_LETTER_TABLE`, `STATE_TABLE`, `SECRET_PREFIX`) on the real clock.
    ///
    /// Does no I/O of its own: it wraps `sdk` in three clients, which
    /// open no connection. What the clients' construction costs is the HTTP client's doing:
    /// the SDK's default client loads the platform's root certificates while the first client is
    /// built (~150 files under `/etc/ssl/certs`, once per [`SdkConfig`]); with
    /// [`http::load_sdk_config`] nothing TLS-related happens until the first request.
    pub(crate) fn from_settings(sdk: &SdkConfig, settings: AwsSettings) -> Self {
        Self::new(
            sdk,
            settings.queues,
            settings.tables,
            settings.secret_prefix,
            Arc::new(SystemClock),
        )
    }

    /// Builds the adapters from settings found elsewhere than the Lambda environment (the CLI
    /// reads them from a stack's outputs, the tests make them up), on `clock`. Does no I/O of
    /// its own: it wraps `sdk` in three clients, which open no connection.
    pub fn new(
        sdk: &SdkConfig,
        queues: QueueMap,
        tables: TableNames,
        secret_prefix: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            queue: SqsQueue::new(aws_sdk_sqs::Client::new(sdk), queues),
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), tables, clock),
            secrets: SecretsManagerSecrets::new(
                aws_sdk_secretsmanager::Client::new(sdk),
                secret_prefix,
            ),
        }
    }
}
