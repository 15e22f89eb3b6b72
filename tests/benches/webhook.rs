//! In-process cost of one webhook delivery per source: route + verify + parse + fan-out +
//! serialize, with the queue send replaced by a discarding queue (the network call is excluded
//! by design). Secrets and connections are warm in the per-instance caches, as on a warm Lambda.
//!
//! `infra/bench.sh` runs it; the issue's target is ≤ 20 µs for FreshBooks and Stripe.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Method, Request};
use mlc::adapters::embedded::{EmbeddedDb, EmbeddedSecrets};
use mlc::app::{App, LiveClientsConfig, Ports};
use mlc::connections::ConnectionSet;
use mlc::ports::{
    ConnectionStore, ManualClock, OutgoingMessage, PortResult, Queue, QueueDepth, ReceivedMessage,
    Secrets, SendFailure,
};
use mlc::webhook::{WebhookConfig, WebhookHandler};
use secrecy::SecretString;

const CONNECTIONS: &str = r#"
[connection.fb-mc]
source = { vendor = "freshbooks", account = "6BApk", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1", store_id = "s1" }
[connection.qbo-mc]
source = { vendor = "quickbooks", account = "9130357766900000", credentials = "qbo" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l2" }
[connection.mc-qbo]
source = { vendor = "mailchimp", account = "l2", credentials = "mc" }
target = { vendor = "quickbooks", credentials = "qbo", realm_id = "9130357766900000" }
[connection.stripe-fb]
source = { vendor = "stripe", account = "acct_1", credentials = "st" }
target = { vendor = "freshbooks", credentials = "fb", account = "6BApk" }
"#;

/// The vendor's typical delivery for each route, with the header that signs it
/// (vectors from docs/vendors/*.md).
const DELIVERIES: [(&str, &str, &str, &str, &str); 4] = [
    (
        "freshbooks",
        "/webhooks/freshbooks/6BApk/cb1",
        "X-FreshBooks-Hmac-SHA256",
        "6F2rFUY1A7AzEMuMqGvboq7iafQHKAsZwKvnS7qfMkw=",
        "name=invoice.update&object_id=217506&account_id=6BApk&business_id=6543&identity_id=1234&user_id=1",
    ),
    (
        "quickbooks",
        "/webhooks/quickbooks",
        "intuit-signature",
        "Bq6czDfnA1GdW2i2YzEbPpdhysEwGpCcIxEdsrkYLs4=",
        r#"{"eventNotifications":[{"realmId":"9130357766900000","dataChangeEvent":{"entities":[{"name":"Customer","id":"58","operation":"Update","lastUpdated":"2026-03-02T17:04:11.000Z"}]}}]}"#,
    ),
    (
        "stripe",
        "/webhooks/stripe/acct_1",
        "Stripe-Signature",
        "t=1700000000,v1=ec07df07ba279a66bd7b62d4c1d20a9933b055bd559ba8acf6ac9853b365fd89",
        r#"{"id":"evt_test_1","object":"event","api_version":"2026-10-28.endive","created":1700000000,"data":{"object":{"id":"in_test_1","object":"invoice","amount_paid":1999,"currency":"usd","customer":"cus_test_1","metadata":{"fb_invoice_id":"217506"},"status":"paid"}},"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid"}"#,
    ),
    (
        "mailchimp",
        "/webhooks/mailchimp/l2/s3cr3t-path-token",
        "content-type",
        "application/x-www-form-urlencoded",
        "type=profile&fired_at=2009-03-26+21%3A31%3A21&data%5Bid%5D=8a25ff1d98&data%5Blist_id%5D=l2&data%5Bemail%5D=api%40mailchimp.com&data%5Bemail_type%5D=html&data%5Bmerges%5D%5BEMAIL%5D=api%40mailchimp.com&data%5Bmerges%5D%5BFNAME%5D=Mailchimp&data%5Bmerges%5D%5BLNAME%5D=API&data%5Bmerges%5D%5BINTERESTS%5D=Group1%2CGroup2&data%5Bip_opt%5D=10.20.10.30",
    ),
];

/// Accepts every message and keeps none: the benchmark measures the handler, not SQS.
struct DiscardQueue;

#[async_trait]
impl Queue for DiscardQueue {
    async fn send_batch(
        &self,
        _: &str,
        messages: &[OutgoingMessage],
    ) -> PortResult<Vec<SendFailure>> {
        black_box(messages);
        Ok(Vec::new())
    }
    async fn receive(&self, _: &str, _: usize, _: Duration) -> PortResult<Vec<ReceivedMessage>> {
        Ok(Vec::new())
    }
    async fn delete(&self, _: &str, _: &str) -> PortResult<()> {
        Ok(())
    }
    async fn change_visibility(&self, _: &str, _: &str, _: Duration) -> PortResult<()> {
        Ok(())
    }
    async fn move_to_dead_letter(&self, _: &str, _: &ReceivedMessage) -> PortResult<()> {
        Ok(())
    }
    async fn redrive(&self, _: &str) -> PortResult<String> {
        Ok(String::new())
    }
    async fn depth(&self, _: &str) -> PortResult<QueueDepth> {
        Ok(QueueDepth::default())
    }
}

fn handler(rt: &tokio::runtime::Runtime) -> WebhookHandler {
    rt.block_on(async {
        let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
        let db = EmbeddedDb::in_memory(clock.clone()).expect("in-memory store");
        db.put_connections(
            &ConnectionSet::from_toml_any_flow(CONNECTIONS, "bench").expect("valid connections"),
        )
        .await
        .expect("connections stored");
        let secrets = EmbeddedSecrets::open(&db).expect("secret store");
        for (name, value) in [
            (
                "webhook/freshbooks/6BApk/cb1",
                "a1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
            ),
            (
                "webhook/quickbooks/app",
                "c0ffee00-1234-4abc-9def-0123456789ab",
            ),
            ("webhook/stripe/acct_1", "whsec_test_secret"),
            ("webhook/mailchimp/l2", "s3cr3t-path-token"),
        ] {
            secrets
                .put(name, &SecretString::from(value))
                .await
                .expect("secret stored");
        }
        let ports = Ports {
            queue: Arc::new(DiscardQueue),
            store: Arc::new(db),
            secrets: Arc::new(secrets),
            clock,
        };
        App::new(ports, LiveClientsConfig::default())
            .webhook(WebhookConfig::default())
            .expect("the webhook handler")
    })
}

fn request(path: &str, header: &str, value: &str, body: &'static str) -> Request<Bytes> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header, value)
        .body(Bytes::from_static(body.as_bytes()))
        .expect("valid request")
}

fn deliveries(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let handler = handler(&rt);
    let mut group = c.benchmark_group("webhook_delivery");
    for (source, path, header, value, body) in DELIVERIES {
        // Warm the caches and prove the delivery is accepted and queued, not rejected.
        let resp = rt.block_on(handler.handle(request(path, header, value, body)));
        assert_eq!(resp.status(), 200, "{source}: {}", resp.body());
        assert!(
            resp.body().contains("\"queued\":1"),
            "{source}: {}",
            resp.body()
        );
        group.bench_function(source, |b| {
            b.iter_batched(
                || request(path, header, value, body),
                |req| rt.block_on(handler.handle(req)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = deliveries
}
criterion_main!(benches);
