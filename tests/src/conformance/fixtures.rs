//! The two adapter sets as fixtures: embedded (in-memory SQLite on a manual clock) and AWS on
//! moto (fresh queues and tables per fixture, unique secret prefixes).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mlc::adapters::aws::schema::{self, QueueSpec};
use mlc::adapters::aws::{DynamoStore, QueueMap, SecretsManagerSecrets, SqsQueue, TableNames};
use mlc::adapters::embedded::{EmbeddedDb, EmbeddedSecrets};
use mlc::ports::{ManualClock, Queue};

use super::{QueueFixture, StoreFixture, start_time};
use crate::moto;

/// Default visibility timeout of the queues fixtures declare.
const DEFAULT_VISIBILITY: Duration = Duration::from_secs(30);

/// Queues in one in-memory database whose clock the fixture advances.
pub struct EmbeddedQueues {
    db: EmbeddedDb,
    clock: Arc<ManualClock>,
}

impl EmbeddedQueues {
    pub fn new() -> Self {
        let clock = Arc::new(ManualClock::new(start_time()));
        let db = EmbeddedDb::in_memory(clock.clone()).expect("in-memory database");
        Self { db, clock }
    }
}

impl Default for EmbeddedQueues {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl QueueFixture for EmbeddedQueues {
    async fn declare(&self, max_receives: u32) -> (Arc<dyn Queue>, String) {
        let name = moto::unique_name("q");
        self.db
            .declare_queue(&name, max_receives, DEFAULT_VISIBILITY)
            .await
            .expect("declare queue");
        (Arc::new(self.db.clone()), name)
    }

    async fn advance(&self, by: Duration) {
        self.clock
            .advance(chrono::Duration::from_std(by).expect("a short duration"));
    }

    fn supports_redrive(&self) -> bool {
        true
    }
}

/// A fresh embedded store on a manual clock.
pub fn embedded_store() -> StoreFixture {
    let clock = Arc::new(ManualClock::new(start_time()));
    let db = EmbeddedDb::in_memory(clock.clone()).expect("in-memory database");
    StoreFixture {
        store: Arc::new(db),
        clock,
    }
}

/// Embedded secrets in a fresh in-memory database.
pub fn embedded_secrets() -> EmbeddedSecrets {
    let clock = Arc::new(ManualClock::new(start_time()));
    let db = EmbeddedDb::in_memory(clock).expect("in-memory database");
    EmbeddedSecrets::open(&db).expect("secrets over an in-memory database")
}

/// SQS queues on moto; time passes for real.
pub struct AwsQueues {
    client: aws_sdk_sqs::Client,
}

impl AwsQueues {
    pub async fn new() -> Self {
        Self {
            client: aws_sdk_sqs::Client::new(&moto::sdk_config().await),
        }
    }
}

#[async_trait]
impl QueueFixture for AwsQueues {
    async fn declare(&self, max_receives: u32) -> (Arc<dyn Queue>, String) {
        let name = moto::unique_name("q");
        let spec = QueueSpec {
            name: name.clone(),
            max_receive_count: max_receives,
            visibility_timeout: DEFAULT_VISIBILITY,
        };
        let urls = schema::create_queue_pair(&self.client, &spec)
            .await
            .expect("create queue on moto");
        let mut map = QueueMap::new();
        map.insert(name.clone(), urls);
        // moto answers a short poll from the whole queue, so no wait is needed, and a wait
        // would blur the visibility checks' timing.
        let queue = SqsQueue::new(self.client.clone(), map).with_receive_wait(Duration::ZERO);
        (Arc::new(queue), name)
    }

    async fn advance(&self, by: Duration) {
        tokio::time::sleep(by).await;
    }

    fn supports_redrive(&self) -> bool {
        false
    }
}

/// Fresh tables on moto and a store over them on a manual clock.
pub async fn aws_store() -> StoreFixture {
    let sdk = moto::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let tables = TableNames::with_prefix(&format!("{}-", moto::unique_name("t")));
    schema::create_tables(&client, &tables)
        .await
        .expect("create tables on moto");
    let clock = Arc::new(ManualClock::new(start_time()));
    StoreFixture {
        store: Arc::new(DynamoStore::new(client, tables, clock.clone())),
        clock,
    }
}

/// Secrets Manager on moto under a prefix unique to this fixture.
pub async fn aws_secrets() -> SecretsManagerSecrets {
    let sdk = moto::sdk_config().await;
    SecretsManagerSecrets::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        format!("{}/", moto::unique_name("s")),
    )
}
