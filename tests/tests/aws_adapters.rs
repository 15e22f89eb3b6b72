//! The AWS adapters against moto, beyond the shared conformance suite: what the raw items,
//! tables and queues look like, conditional writes under contention, error mapping, and the one
//! call moto lacks (`StartMessageMoveTask`), checked for its request shape with
//! `aws-smithy-mocks`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::types::{AttributeValue, KeyType, ProjectionType, TimeToLiveStatus};
use aws_sdk_sqs::config::Credentials;
use aws_sdk_sqs::operation::start_message_move_task::{
    StartMessageMoveTaskError, StartMessageMoveTaskOutput,
};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use aws_smithy_mocks::{
    MockResponse, MockResponseInterceptor, RuleMode, create_mock_http_client, mock,
};
use chrono::{DateTime, Duration as Span, Utc};
use mlc::adapters::aws::schema::{self, QueueSpec, TableLayout};
use mlc::adapters::aws::sqs::ORIGINAL_MESSAGE_ID_ATTRIBUTE;
use mlc::adapters::aws::{
    DynamoStore, QueueMap, QueueUrls, SecretsManagerSecrets, SqsQueue, TableNames,
};
use mlc::ports::{
    AuditEntry, AuditLog, Begin, Blobs, Cursors, DeadLetter, DeadLetterStatus, DeadLetters, IdMap,
    IdMapping, Idempotency, Leases, ManualClock, Outcome, OutgoingMessage, PortError, Queue,
    Secrets,
};
use mlc_tests::conformance::start_time;
use mlc_tests::moto;
use secrecy::{ExposeSecret, SecretString};

type Item = HashMap<String, AttributeValue>;
/// What a mock's request matcher saw, one entry per call.
type Recorded<T> = Arc<Mutex<Vec<T>>>;

/// Fresh tables on moto with a store over them.
struct Tables {
    client: aws_sdk_dynamodb::Client,
    names: TableNames,
    store: Arc<DynamoStore>,
    clock: Arc<ManualClock>,
}

impl Tables {
    async fn new() -> Self {
        let sdk = moto::sdk_config().await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let names = TableNames::with_prefix(&format!("{}-", moto::unique_name("t")));
        schema::create_tables(&client, &names)
            .await
            .expect("create tables");
        let clock = Arc::new(ManualClock::new(start_time()));
        let store = Arc::new(DynamoStore::new(
            client.clone(),
            names.clone(),
            clock.clone(),
        ));
        Self {
            client,
            names,
            store,
            clock,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        mlc::ports::Clock::now(self.clock.as_ref())
    }

    async fn raw(&self, table: &str, key: &[(&str, &str)]) -> Option<Item> {
        let mut get = self
            .client
            .get_item()
            .table_name(table)
            .consistent_read(true);
        for (name, value) in key {
            get = get.key(*name, AttributeValue::S((*value).to_string()));
        }
        get.send().await.expect("GetItem").item().cloned()
    }

    async fn state(&self, pk: &str, sk: &str) -> Option<Item> {
        self.raw(&self.names.state, &[("pk", pk), ("sk", sk)]).await
    }
}

fn n(item: &Item, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("numeric `{name}` in {item:?}"))
}

fn s<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .unwrap_or_else(|| panic!("string `{name}` in {item:?}"))
}

async fn assert_layout(tables: &Tables, name: &str, layout: &TableLayout) {
    let described = tables
        .client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .expect("DescribeTable");
    let table = described.table().expect("a table");
    let keys: Vec<(String, KeyType)> = table
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name().to_string(), k.key_type().clone()))
        .collect();
    let mut expected = vec![(layout.partition_key.to_string(), KeyType::Hash)];
    expected.extend(layout.sort_key.map(|k| (k.to_string(), KeyType::Range)));
    assert_eq!(keys, expected, "{name} keys");
    assert_eq!(
        table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str()),
        Some("PAY_PER_REQUEST")
    );
    let indexes = table.global_secondary_indexes();
    assert_eq!(indexes.len(), layout.indexes.len(), "{name} indexes");
    for want in layout.indexes {
        let got = indexes
            .iter()
            .find(|i| i.index_name() == Some(want.name))
            .unwrap_or_else(|| panic!("{name} has index {}", want.name));
        let keys: Vec<_> = got
            .key_schema()
            .iter()
            .map(|k| k.attribute_name().to_string())
            .collect();
        assert_eq!(keys, [want.partition_key, want.sort_key]);
        assert_eq!(
            got.projection().and_then(|p| p.projection_type()),
            Some(&ProjectionType::All)
        );
    }
    let ttl = tables
        .client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .expect("DescribeTimeToLive");
    let ttl = ttl.time_to_live_description().expect("TTL description");
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
}

#[tokio::test]
async fn tables_have_the_documented_layout_and_ttl() {
    let t = Tables::new().await;
    assert_layout(&t, &t.names.audit, &schema::AUDIT_LAYOUT).await;
    assert_layout(&t, &t.names.dead_letters, &schema::DEAD_LETTER_LAYOUT).await;
    assert_layout(&t, &t.names.state, &schema::STATE_LAYOUT).await;
    // Creating again finds them (the emulator bootstrap runs at every start).
    schema::create_tables(&t.client, &t.names)
        .await
        .expect("idempotent create");
}

fn audit_entry(record_key: &str, at: DateTime<Utc>, outcome: Outcome) -> AuditEntry {
    AuditEntry {
        record_key: record_key.to_string(),
        at,
        event_id: "evt-1".into(),
        connection: "acme-books-to-mailchimp".into(),
        target: "mailchimp".into(),
        origin: None,
        operation: "upsert_member".into(),
        outcome,
        before: None,
        written: Some(serde_json::json!({"email_address": "a@example.com"})),
        error_class: None,
        error_message: None,
        vendor_request_id: None,
        attempt: 1,
        duration_ms: 5,
        message_id: None,
        expires_at: Some(at + Span::days(90)),
    }
}

#[tokio::test]
async fn written_items_carry_expires_at() {
    let t = Tables::new().await;
    let now = t.now();
    let expiry = now + Span::days(30);

    let at = now + Span::milliseconds(250);
    let entry = audit_entry("freshbooks:1:client:7", at, Outcome::Synced);
    t.store.record_audit(&entry).await.expect("audit");
    let sk = format!(
        "{}#evt-1#acme-books-to-mailchimp",
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    let raw = t
        .raw(
            &t.names.audit,
            &[("pk", "freshbooks:1:client:7"), ("sk", &sk)],
        )
        .await
        .expect("audit item under the documented key");
    // Rounded up to whole seconds: TTL never deletes early.
    assert_eq!(n(&raw, "expires_at"), (at + Span::days(90)).timestamp() + 1);
    assert_eq!(
        s(&raw, "outcome_day"),
        format!("synced#{}", at.format("%Y-%m-%d"))
    );

    let letter = DeadLetter {
        id: "event:c:e".into(),
        stage: "webhook:stripe".into(),
        queue: None,
        event_id: None,
        record_key: None,
        connection: None,
        error_class: "unparseable".into(),
        reason: "missing field `type`".into(),
        vendor_request_id: None,
        attempts: 1,
        payload: "{}".into(),
        status: DeadLetterStatus::Open,
        created_at: now,
        resolved_at: None,
        expires_at: Some(expiry),
    };
    t.store.put_dead_letter(&letter).await.expect("dead letter");
    let raw = t
        .raw(&t.names.dead_letters, &[("id", "event:c:e")])
        .await
        .expect("dead letter item");
    assert_eq!(n(&raw, "expires_at"), expiry.timestamp());
    assert_eq!(s(&raw, "status"), "open");

    let lease = Duration::from_secs(90);
    assert_eq!(
        t.store.begin("k1", now, lease).await.expect("begin"),
        Begin::Proceed { replay: false }
    );
    let claim = t.state("IDEM#k1", "IDEM").await.expect("claim item");
    assert_eq!(s(&claim, "status"), "claimed");
    assert_eq!(
        n(&claim, "lease_until"),
        (now + Span::seconds(90)).timestamp_millis()
    );
    assert_eq!(
        n(&claim, "expires_at"),
        (now + Span::seconds(90)).timestamp()
    );
    t.store
        .complete("k1", Outcome::Unchanged, expiry)
        .await
        .expect("complete");
    let done = t.state("IDEM#k1", "IDEM").await.expect("done item");
    assert_eq!(s(&done, "status"), "done");
    assert_eq!(s(&done, "outcome"), "unchanged");
    assert_eq!(n(&done, "expires_at"), expiry.timestamp());

    assert!(
        t.store
            .acquire_lease("qbo-refresh", "fn-1", now, Duration::from_secs(30))
            .await
            .expect("lease")
    );
    let raw = t
        .state("LEASE#qbo-refresh", "LEASE")
        .await
        .expect("lease item");
    assert_eq!(s(&raw, "holder"), "fn-1");
    assert_eq!(n(&raw, "expires_at"), (now + Span::seconds(30)).timestamp());

    t.store
        .put_blob("b1", b"body", Some(expiry))
        .await
        .expect("blob");
    let raw = t.state("BLOB#b1", "00000").await.expect("blob chunk 0");
    assert_eq!(n(&raw, "expires_at"), expiry.timestamp());

    // Types without an expiry write none.
    t.store
        .put_mapping(
            "conn",
            "client:1",
            &IdMapping {
                target_id: "t".into(),
                fingerprint: "f".into(),
                updated_at: now,
            },
        )
        .await
        .expect("mapping");
    let raw = t.state("MAP#conn", "client:1").await.expect("mapping item");
    assert!(!raw.contains_key("expires_at"));
}

#[tokio::test]
async fn expired_items_read_as_absent_though_moto_keeps_them() {
    let t = Tables::new().await;
    let now = t.now();
    t.store
        .put_blob("short", b"x", Some(now + Span::seconds(5)))
        .await
        .expect("blob");
    t.clock.advance(Span::seconds(5));
    assert_eq!(t.store.get_blob("short").await.expect("get"), None);
    assert!(
        t.state("BLOB#short", "00000").await.is_some(),
        "the item is still stored: reads, not TTL, hide it"
    );
}

#[tokio::test]
async fn claims_are_single_winner_under_contention() {
    let t = Tables::new().await;
    let now = t.now();
    let mut begins = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = t.store.clone();
        begins.spawn(async move { store.begin("contended", now, Duration::from_secs(60)).await });
    }
    let mut results = Vec::new();
    while let Some(joined) = begins.join_next().await {
        results.push(joined.expect("task").expect("begin"));
    }
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, Begin::Proceed { .. }))
            .count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|r| **r == Begin::InProgress).count(),
        7
    );

    let mut leases = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = t.store.clone();
        leases.spawn(async move {
            store
                .acquire_lease(
                    "token-refresh",
                    &format!("fn-{i}"),
                    now,
                    Duration::from_secs(60),
                )
                .await
        });
    }
    let mut won = 0;
    while let Some(joined) = leases.join_next().await {
        won += usize::from(joined.expect("task").expect("acquire"));
    }
    assert_eq!(won, 1, "one lease holder");
}

#[tokio::test]
async fn audit_by_outcome_reads_the_index() {
    let t = Tables::new().await;
    let day_start = t.now();
    for (i, outcome) in [Outcome::Synced, Outcome::Rejected, Outcome::Synced]
        .into_iter()
        .enumerate()
    {
        let at = day_start + Span::seconds(i as i64);
        let mut entry = audit_entry(&format!("rec-{i}"), at, outcome);
        entry.event_id = format!("evt-{i}");
        t.store.record_audit(&entry).await.expect("audit");
    }
    // Straight through the GSI, as an operator would.
    let day = day_start.format("%Y-%m-%d").to_string();
    let raw = t
        .client
        .query()
        .table_name(&t.names.audit)
        .index_name("by_outcome_day")
        .key_condition_expression("outcome_day = :od")
        .expression_attribute_values(":od", AttributeValue::S(format!("synced#{day}")))
        .send()
        .await
        .expect("Query by_outcome_day");
    assert_eq!(raw.items().len(), 2);
    let through_port = t
        .store
        .audit_by_outcome(Outcome::Synced, day_start.date_naive(), 10)
        .await
        .expect("by outcome");
    let records: Vec<_> = through_port.iter().map(|e| e.record_key.as_str()).collect();
    if day_start.date_naive() == (day_start + Span::seconds(2)).date_naive() {
        assert_eq!(records, ["rec-2", "rec-0"], "newest first");
    }
}

#[tokio::test]
async fn blobs_are_chunked_below_the_item_limit() {
    let t = Tables::new().await;
    let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    t.store.put_blob("big", &body, None).await.expect("put");
    // Four chunks span two 1 MB query pages.
    let chunks: Vec<Item> = t
        .client
        .query()
        .table_name(&t.names.state)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("BLOB#big".into()))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("Query");
    let sizes: Vec<usize> = chunks
        .iter()
        .map(|i| {
            i.get("data")
                .and_then(|d| d.as_b().ok())
                .map_or(0, |b| b.as_ref().len())
        })
        .collect();
    assert_eq!(sizes, [300_000, 300_000, 300_000, 100_000]);
    assert_eq!(t.store.get_blob("big").await.expect("get"), Some(body));

    // Overwriting with a smaller blob removes the old tail.
    t.store.put_blob("big", b"small", None).await.expect("put");
    let left = t
        .client
        .query()
        .table_name(&t.names.state)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("BLOB#big".into()))
        .send()
        .await
        .expect("Query");
    assert_eq!(left.items().len(), 1);
}

#[tokio::test]
async fn errors_name_the_operation_and_the_aws_code() {
    let t = Tables::new().await;
    let missing = DynamoStore::new(
        t.client.clone(),
        TableNames::with_prefix("mlc-no-such-"),
        t.clock.clone(),
    );
    let err = missing.get_cursor("c").await.expect_err("no table");
    assert!(
        matches!(&err, PortError::NotFound { what: "table", name } if name == "mlc-no-such-state"),
        "{err:?}"
    );
    // An empty sort key is invalid in DynamoDB.
    let mapping = IdMapping {
        target_id: "t".into(),
        fingerprint: "f".into(),
        updated_at: t.now(),
    };
    let err = t
        .store
        .put_mapping("conn", "", &mapping)
        .await
        .expect_err("empty key");
    let text = err.to_string();
    assert!(text.starts_with("dynamodb: PutItem `"), "{text}");
    assert!(text.contains("ValidationException"), "{text}");
}

async fn queue_pair(max_receive_count: u32) -> (aws_sdk_sqs::Client, QueueUrls, SqsQueue) {
    let client = aws_sdk_sqs::Client::new(&moto::sdk_config().await);
    let spec = QueueSpec {
        name: moto::unique_name("q"),
        max_receive_count,
        visibility_timeout: Duration::from_secs(30),
    };
    let urls = schema::create_queue_pair(&client, &spec)
        .await
        .expect("create queues");
    let mut map = QueueMap::new();
    map.insert("mailchimp", urls.clone());
    let queue = SqsQueue::new(client.clone(), map).with_receive_wait(Duration::ZERO);
    (client, urls, queue)
}

#[tokio::test]
async fn queues_have_a_redrive_policy_and_the_dlq_takes_over() {
    let (client, urls, queue) = queue_pair(3).await;
    let attrs = client
        .get_queue_attributes()
        .queue_url(&urls.url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("attributes");
    let attrs = attrs.attributes().expect("attributes");
    let policy: serde_json::Value = serde_json::from_str(
        attrs
            .get(&QueueAttributeName::RedrivePolicy)
            .expect("a redrive policy"),
    )
    .expect("JSON policy");
    assert_eq!(policy["deadLetterTargetArn"], urls.dlq_arn.as_str());
    assert_eq!(policy["maxReceiveCount"].to_string().trim_matches('"'), "3");

    let sent = vec![OutgoingMessage::new("e1", "poison")];
    assert!(
        queue
            .send_batch("mailchimp", &sent)
            .await
            .expect("send")
            .is_empty()
    );
    for count in 1..=3 {
        let got = queue
            .receive("mailchimp", 1, Duration::from_secs(30))
            .await
            .expect("receive");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].receive_count, count);
        queue
            .change_visibility("mailchimp", &got[0].receipt, Duration::ZERO)
            .await
            .expect("release");
    }
    assert!(
        queue
            .receive("mailchimp", 1, Duration::from_secs(30))
            .await
            .expect("receive")
            .is_empty()
    );
    let depth = queue.depth("mailchimp").await.expect("depth");
    assert_eq!((depth.visible, depth.in_flight, depth.dead), (0, 0, 1));
    let dead = client
        .receive_message()
        .queue_url(&urls.dlq_url)
        .send()
        .await
        .expect("receive from the DLQ");
    assert_eq!(dead.messages()[0].body(), Some("poison"));
}

#[tokio::test]
async fn move_to_dead_letter_keeps_the_body_and_the_original_id() {
    let (client, urls, queue) = queue_pair(5).await;
    let body = serde_json::json!({"v": 1, "event_id": "e-1"}).to_string();
    queue
        .send_batch("mailchimp", &[OutgoingMessage::new("e1", body.clone())])
        .await
        .expect("send");
    let got = queue
        .receive("mailchimp", 1, Duration::from_secs(30))
        .await
        .expect("receive");
    queue
        .move_to_dead_letter("mailchimp", &got[0])
        .await
        .expect("move");
    let dead = client
        .receive_message()
        .queue_url(&urls.dlq_url)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .expect("receive from the DLQ");
    let message = &dead.messages()[0];
    assert_eq!(message.body(), Some(body.as_str()));
    let original = message
        .message_attributes()
        .and_then(|a| a.get(ORIGINAL_MESSAGE_ID_ATTRIBUTE))
        .and_then(|v| v.string_value());
    assert_eq!(original, Some(got[0].message_id.as_str()));
    // The copy just received is in flight on the DLQ: still counted as dead.
    let depth = queue.depth("mailchimp").await.expect("depth");
    assert_eq!((depth.visible, depth.in_flight, depth.dead), (0, 0, 1));
}

#[tokio::test]
async fn batches_over_the_call_limit_are_split() {
    let (_, _, queue) = queue_pair(5).await;
    // Ten 200 KB messages: 2 MB, far over one SendMessageBatch call's 256 KiB.
    let messages: Vec<_> = (0..10)
        .map(|i| OutgoingMessage::new(format!("m{i}"), format!("{i}").repeat(200_000)))
        .collect();
    let failures = queue
        .send_batch("mailchimp", &messages)
        .await
        .expect("send");
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(queue.depth("mailchimp").await.expect("depth").visible, 10);
    // SQS caps the total time hidden since the receive at 12 hours, so even the clamped
    // maximum is refused a moment after the receive (moto enforces this as AWS does); the
    // clamp itself is checked on the request in `change_visibility_is_clamped_to_12_hours`.
    let got = queue
        .receive("mailchimp", 1, Duration::from_secs(30))
        .await
        .expect("receive");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let err = queue
        .change_visibility("mailchimp", &got[0].receipt, Duration::from_secs(86_400))
        .await
        .expect_err("over the total");
    assert!(err.to_string().contains("InvalidParameterValue"), "{err}");
}

#[tokio::test]
async fn unknown_queues_are_not_found() {
    let (client, urls, _) = queue_pair(5).await;
    let mut map = QueueMap::new();
    map.insert(
        "gone",
        QueueUrls {
            url: format!("{}-deleted", urls.url),
            ..urls
        },
    );
    let queue = SqsQueue::new(client, map);
    let err = queue.depth("gone").await.expect_err("no such queue");
    assert!(
        matches!(err, PortError::NotFound { what: "queue", .. }),
        "{err:?}"
    );
    let err = queue
        .depth("never-configured")
        .await
        .expect_err("not in the map");
    assert!(
        matches!(err, PortError::NotFound { what: "queue", .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn moto_does_not_implement_start_message_move_task() {
    let (client, urls, queue) = queue_pair(5).await;
    let raw = client
        .start_message_move_task()
        .source_arn(&urls.dlq_arn)
        .destination_arn(&urls.arn)
        .send()
        .await
        .expect_err("moto 5.2 lacks StartMessageMoveTask");
    let status = raw.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(500), "{raw:?}");
    let err = queue
        .redrive("mailchimp")
        .await
        .expect_err("redrive on moto");
    let text = err.to_string();
    assert!(text.contains("StartMessageMoveTask"), "{text}");
    assert!(text.contains("HTTP 500"), "{text}");
}

fn mocked_sqs(interceptor: MockResponseInterceptor) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("a", "b", None, None, "mock"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

fn mocked_urls() -> QueueUrls {
    QueueUrls {
        url: "https://sqs.us-east-1.amazonaws.com/123456789012/mlc-mailchimp".into(),
        arn: "arn:aws:sqs:us-east-1:123456789012:mlc-mailchimp".into(),
        dlq_url: "https://sqs.us-east-1.amazonaws.com/123456789012/mlc-mailchimp-dlq".into(),
        dlq_arn: "arn:aws:sqs:us-east-1:123456789012:mlc-mailchimp-dlq".into(),
    }
}

#[tokio::test]
async fn redrive_moves_from_the_dlq_to_the_queue() {
    let seen: Recorded<(Option<String>, Option<String>)> = Arc::default();
    let recorder = seen.clone();
    let rule = mock!(aws_sdk_sqs::Client::start_message_move_task)
        .match_requests(move |req| {
            recorder.lock().expect("not poisoned").push((
                req.source_arn().map(str::to_string),
                req.destination_arn().map(str::to_string),
            ));
            true
        })
        .then_output(|| {
            StartMessageMoveTaskOutput::builder()
                .task_handle("task-handle-1")
                .build()
        });
    let client = mocked_sqs(
        MockResponseInterceptor::new()
            .rule_mode(RuleMode::MatchAny)
            .with_rule(&rule),
    );
    let mut map = QueueMap::new();
    map.insert("mailchimp", mocked_urls());
    let queue = SqsQueue::new(client, map);

    assert_eq!(
        queue.redrive("mailchimp").await.expect("redrive"),
        "task-handle-1"
    );
    assert_eq!(rule.num_calls(), 1);
    let urls = mocked_urls();
    assert_eq!(
        seen.lock().expect("not poisoned").as_slice(),
        [(Some(urls.dlq_arn), Some(urls.arn))],
        "SourceArn = the DLQ, DestinationArn = the queue"
    );
}

/// Answers a `SendMessageBatch` like SQS, refusing entry `m3`, or fails the whole call when
/// it carries `fail_with`.
fn batch_response(
    req: &aws_sdk_sqs::operation::send_message_batch::SendMessageBatchInput,
    fail_with: Option<&str>,
) -> MockResponse<
    aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput,
    aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError,
> {
    use aws_sdk_sqs::operation::send_message_batch::{
        SendMessageBatchError, SendMessageBatchOutput,
    };
    use aws_sdk_sqs::types::{BatchResultErrorEntry, SendMessageBatchResultEntry};
    let entries = req.entries();
    if let Some(id) = fail_with
        && entries.iter().any(|e| e.id() == id)
    {
        return MockResponse::Error(SendMessageBatchError::unhandled("connection reset"));
    }
    // Both lists are required in the model, even when empty.
    let mut out = SendMessageBatchOutput::builder()
        .set_successful(Some(Vec::new()))
        .set_failed(Some(Vec::new()));
    for entry in entries {
        if entry.id() == "m3" {
            out = out.failed(
                BatchResultErrorEntry::builder()
                    .id(entry.id())
                    .sender_fault(true)
                    .code("InvalidParameterValue")
                    .message("refused")
                    .build()
                    .expect("complete entry"),
            );
        } else {
            out = out.successful(
                SendMessageBatchResultEntry::builder()
                    .id(entry.id())
                    .message_id(format!("sqs-{}", entry.id()))
                    .md5_of_message_body("-")
                    .build()
                    .expect("complete entry"),
            );
        }
    }
    MockResponse::Output(out.build().expect("complete output"))
}

fn sixty_kb_messages() -> Vec<OutgoingMessage> {
    (0..10)
        .map(|i| OutgoingMessage::new(format!("m{i}"), "x".repeat(60_000)))
        .collect()
}

#[tokio::test]
async fn send_batch_keeps_each_call_under_the_payload_limit() {
    let calls: Recorded<(Vec<String>, usize)> = Arc::default();
    let recorder = calls.clone();
    let rule = mock!(aws_sdk_sqs::Client::send_message_batch)
        .match_requests(move |req| {
            let entries = req.entries();
            recorder.lock().expect("not poisoned").push((
                entries.iter().map(|e| e.id().to_string()).collect(),
                entries.iter().map(|e| e.message_body().len()).sum(),
            ));
            true
        })
        .then_compute_response(|req| batch_response(req, None));
    let client = mocked_sqs(
        MockResponseInterceptor::new()
            .rule_mode(RuleMode::MatchAny)
            .with_rule(&rule),
    );
    let mut map = QueueMap::new();
    map.insert("mailchimp", mocked_urls());
    let queue = SqsQueue::new(client, map);

    let failures = queue
        .send_batch("mailchimp", &sixty_kb_messages())
        .await
        .expect("send");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].id, "m3");
    assert_eq!(failures[0].reason, "InvalidParameterValue: refused");
    let calls = calls.lock().expect("not poisoned").clone();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(calls.iter().all(|(_, bytes)| *bytes <= 256 * 1024));
    let sent: Vec<String> = calls.into_iter().flat_map(|(ids, _)| ids).collect();
    assert_eq!(sent, (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_failed_later_call_is_reported_per_message_not_as_an_error() {
    let later = mock!(aws_sdk_sqs::Client::send_message_batch)
        .then_compute_response(|req| batch_response(req, Some("m4")));
    let client = mocked_sqs(
        MockResponseInterceptor::new()
            .rule_mode(RuleMode::MatchAny)
            .with_rule(&later),
    );
    let mut map = QueueMap::new();
    map.insert("mailchimp", mocked_urls());
    let queue = SqsQueue::new(client, map);
    let failures = queue
        .send_batch("mailchimp", &sixty_kb_messages())
        .await
        .expect("the first call went out, so this is no error");
    let mut ids: Vec<_> = failures.iter().map(|f| f.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["m3", "m4", "m5", "m6", "m7"], "{failures:?}");

    let first = mock!(aws_sdk_sqs::Client::send_message_batch)
        .then_compute_response(|req| batch_response(req, Some("m0")));
    let client = mocked_sqs(
        MockResponseInterceptor::new()
            .rule_mode(RuleMode::MatchAny)
            .with_rule(&first),
    );
    let mut map = QueueMap::new();
    map.insert("mailchimp", mocked_urls());
    let err = SqsQueue::new(client, map)
        .send_batch("mailchimp", &sixty_kb_messages())
        .await
        .expect_err("nothing was sent");
    assert!(err.to_string().contains("SendMessageBatch"), "{err}");
}

#[tokio::test]
async fn change_visibility_is_clamped_to_12_hours() {
    let seen: Arc<Mutex<Vec<Option<i32>>>> = Arc::default();
    let recorder = seen.clone();
    let rule = mock!(aws_sdk_sqs::Client::change_message_visibility)
        .match_requests(move |req| {
            recorder
                .lock()
                .expect("not poisoned")
                .push(req.visibility_timeout());
            true
        })
        .then_output(|| {
            aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityOutput::builder()
                .build()
        });
    let client = mocked_sqs(
        MockResponseInterceptor::new()
            .rule_mode(RuleMode::MatchAny)
            .with_rule(&rule),
    );
    let mut map = QueueMap::new();
    map.insert("mailchimp", mocked_urls());
    let queue = SqsQueue::new(client, map);
    for timeout in [86_400_000, 43_200_000, 1_500, 0] {
        queue
            .change_visibility("mailchimp", "receipt", Duration::from_millis(timeout))
            .await
            .expect("change_visibility");
    }
    assert_eq!(
        seen.lock().expect("not poisoned").as_slice(),
        [Some(43_200), Some(43_200), Some(2), Some(0)]
    );
}

#[tokio::test]
async fn redrive_failures_carry_the_aws_code() {
    let rule = mock!(aws_sdk_sqs::Client::start_message_move_task).then_error(|| {
        StartMessageMoveTaskError::UnsupportedOperation(
            aws_sdk_sqs::types::error::UnsupportedOperation::builder()
                .message("a move task is already running")
                .meta(
                    aws_sdk_sqs::error::ErrorMetadata::builder()
                        .code("AWS.SimpleQueueService.UnsupportedOperation")
                        .message("a move task is already running")
                        .build(),
                )
                .build(),
        )
    });
    let client = mocked_sqs(MockResponseInterceptor::new().with_rule(&rule));
    let mut map = QueueMap::new();
    map.insert("mailchimp", mocked_urls());
    let err = SqsQueue::new(client, map)
        .redrive("mailchimp")
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(
        text.starts_with("sqs: StartMessageMoveTask `arn:"),
        "{text}"
    );
    assert!(
        text.contains(
            "AWS.SimpleQueueService.UnsupportedOperation: a move task is already running"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn secrets_keep_versions_and_read_the_current_one() {
    let sdk = moto::sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let prefix = format!("{}/", moto::unique_name("s"));
    let secrets = SecretsManagerSecrets::new(client.clone(), prefix.clone());
    let name = "credentials/freshbooks-acme";
    secrets
        .put(name, &SecretString::from("{\"refresh_token\":\"rt-1\"}"))
        .await
        .expect("create");
    secrets
        .put(name, &SecretString::from("{\"refresh_token\":\"rt-2\"}"))
        .await
        .expect("rotate");
    let current = secrets.get(name).await.expect("get").expect("exists");
    assert_eq!(current.expose_secret(), "{\"refresh_token\":\"rt-2\"}");

    let versions = client
        .list_secret_version_ids()
        .secret_id(format!("{prefix}{name}"))
        .send()
        .await
        .expect("versions under the prefixed name");
    let stages: Vec<Vec<String>> = versions
        .versions()
        .iter()
        .map(|v| v.version_stages().to_vec())
        .collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(stages.iter().any(|s| s.contains(&"AWSCURRENT".to_string())));
    assert!(
        stages
            .iter()
            .any(|s| s.contains(&"AWSPREVIOUS".to_string()))
    );

    let shown = format!("{secrets:?}");
    assert!(
        !shown.contains("rt-2") && !shown.contains("rt-1"),
        "{shown}"
    );
    assert!(
        secrets
            .get("credentials/none")
            .await
            .expect("get")
            .is_none()
    );
}
