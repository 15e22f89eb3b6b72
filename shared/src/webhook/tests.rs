//! The handler end to end over the embedded adapters, with the vendors' published test vectors.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Method, Request, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::*;
use crate::adapters::embedded::{EmbeddedDb, EmbeddedSecrets};
use crate::connections::ConnectionSet;
use crate::event::SyncEvent;
use crate::ports::secret_names;
use crate::ports::{
    Blobs, CallbackRecord, CallbackStatus, ConnectionStore, DeadLetterStatus, DeadLetters,
    ManualClock, OutgoingMessage, PortResult, QueueDepth, ReceivedMessage, SendFailure,
    WebhookCallbacks,
};
use crate::vendor::Vendor;
use crate::vendors::freshbooks::error::FreshbooksError;

const FB_VERIFIER: &str = "a1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW";
const FB_BODY: &str = "name=invoice.update&object_id=217506&account_id=6BApk&business_id=6543&identity_id=1234&user_id=1";
const FB_HEADER: &str = "6F2rFUY1A7AzEMuMqGvboq7iafQHKAsZwKvnS7qfMkw=";
const QBO_TOKEN: &str = "c0ffee00-1234-4abc-9def-0123456789ab";
const QBO_BODY: &str = r#"{"eventNotifications":[{"realmId":"9130357766900000","dataChangeEvent":{"entities":[{"name":"Customer","id":"58","operation":"Update","lastUpdated":"2026-03-02T17:04:11.000Z"}]}}]}"#;
const QBO_HEADER: &str = "Bq6czDfnA1GdW2i2YzEbPpdhysEwGpCcIxEdsrkYLs4=";
const STRIPE_BODY: &str = r#"{"id":"evt_test_1","object":"event","api_version":"2026-10-28.endive","created":1700000000,"data":{"object":{"id":"in_test_1","object":"invoice","amount_paid":1999,"currency":"usd","customer":"cus_test_1","metadata":{"fb_invoice_id":"217506"},"status":"paid"}},"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"invoice.paid"}"#;
const STRIPE_HEADER: &str =
    "t=1700000000,v1=ec07df07ba279a66bd7b62d4c1d20a9933b055bd559ba8acf6ac9853b365fd89";

const CONNECTIONS: &str = r#"
[connection.fb-mc]
source = { vendor = "freshbooks", account = "6BApk", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "l1", store_id = "s1" }
[connection.fb-hs]
source = { vendor = "freshbooks", account = "6BApk", credentials = "fb" }
target = { vendor = "hubspot", credentials = "hs", portal_id = "1" }
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

/// Confirms every verifier it is told to, and counts calls.
struct FakeFreshbooks {
    confirm: bool,
    calls: AtomicUsize,
}

#[async_trait]
impl CallbackVerifier for FakeFreshbooks {
    async fn verify(
        &self,
        token: &SecretString,
        account: &str,
        _: &str,
        _: &SecretString,
    ) -> Result<bool, FreshbooksError> {
        assert_eq!(token.expose_secret(), "fb-access-token");
        assert_eq!(account, "6BApk");
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.confirm)
    }
}

struct Fixture {
    handler: WebhookHandler,
    db: EmbeddedDb,
    secrets: Arc<EmbeddedSecrets>,
    clock: Arc<ManualClock>,
    freshbooks: Arc<FakeFreshbooks>,
}

async fn fixture_with(
    confirm: bool,
    queue: Option<Arc<dyn Queue>>,
    config: WebhookConfig,
) -> Fixture {
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let db = EmbeddedDb::in_memory(clock.clone()).unwrap();
    for q in ["mailchimp", "quickbooks", "freshbooks"] {
        db.declare_queue(q, 5, Duration::from_secs(30))
            .await
            .unwrap();
    }
    db.put_connections(&ConnectionSet::from_toml_any_flow(CONNECTIONS, "test").unwrap())
        .await
        .unwrap();
    let secrets = Arc::new(EmbeddedSecrets::open(&db).unwrap());
    for (name, value) in [
        ("webhook/freshbooks/6BApk/cb-invoices", FB_VERIFIER),
        (secret_names::QUICKBOOKS, QBO_TOKEN),
        (
            "webhook/stripe/acct_1",
            "whsec_old_secret_A\nwhsec_test_secret",
        ),
        ("webhook/mailchimp/l2", "s3cr3t-path-token"),
        (
            "credentials/fb",
            r#"{"access_token":"fb-access-token","refresh_token":"r"}"#,
        ),
    ] {
        secrets.put(name, &SecretString::from(value)).await.unwrap();
    }
    let callback = |route: &str, status| CallbackRecord {
        route_id: route.into(),
        vendor: Vendor::Freshbooks,
        account: "6BApk".into(),
        callback_id: Some("4501".into()),
        event: "invoice".into(),
        credentials: "fb".into(),
        status,
        updated_at: clock.now(),
    };
    db.put_callback(&callback("cb-invoices", CallbackStatus::Verified))
        .await
        .unwrap();
    db.put_callback(&callback("cb-new", CallbackStatus::Pending))
        .await
        .unwrap();
    let freshbooks = Arc::new(FakeFreshbooks {
        confirm,
        calls: AtomicUsize::new(0),
    });
    let deps = WebhookDeps {
        queue: queue.unwrap_or_else(|| Arc::new(db.clone())),
        store: Arc::new(db.clone()),
        secrets: secrets.clone(),
        clock: clock.clone(),
        freshbooks: freshbooks.clone(),
    };
    Fixture {
        handler: WebhookHandler::new(deps, config),
        db,
        secrets,
        clock,
        freshbooks,
    }
}

async fn fixture() -> Fixture {
    fixture_with(true, None, WebhookConfig::default()).await
}

fn post(path: &str, headers: &[(&str, &str)], body: &str) -> Request<Bytes> {
    let mut req = Request::builder().method(Method::POST).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Bytes::from(body.to_string())).unwrap()
}

async fn call(f: &Fixture, req: Request<Bytes>) -> (StatusCode, serde_json::Value) {
    let resp = f.handler.handle(req).await;
    let body = serde_json::from_str(resp.body()).unwrap();
    (resp.status(), body)
}

async fn drain(f: &Fixture, queue: &str) -> Vec<SyncEvent> {
    let msgs =
        f.db.receive(queue, 10, Duration::from_secs(30))
            .await
            .unwrap();
    msgs.iter()
        .map(|m| SyncEvent::from_json(&m.body).unwrap())
        .collect()
}

fn qbo_sign(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(QBO_TOKEN.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn freshbooks_delivery_fans_out_to_every_connection_of_the_account() {
    let f = fixture().await;
    let (status, body) = call(
        &f,
        post(
            "/webhooks/freshbooks/6BApk/cb-invoices",
            &[("X-FreshBooks-Hmac-SHA256", FB_HEADER)],
            FB_BODY,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // fb-mc reaches the mailchimp queue; fb-hs targets hubspot, which has no queue here.
    assert_eq!(
        body,
        serde_json::json!({ "accepted": 1, "queued": 1, "dead_lettered": 1 })
    );
    let events = drain(&f, "mailchimp").await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (
            e.connection.as_str(),
            e.entity.as_str(),
            e.entity_id.as_str(),
            e.operation.as_str()
        ),
        ("fb-mc", "invoice", "217506", "update")
    );
    assert_eq!(e.record_key(), "freshbooks:6BApk:invoice:217506");
    assert_eq!(e.origin, crate::event::Origin::Webhook);
    let dead =
        f.db.list_dead_letters(DeadLetterStatus::Open, 10)
            .await
            .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].connection.as_deref(), Some("fb-hs"));
    assert_eq!(dead[0].error_class, "no_queue");
    assert!(
        SyncEvent::from_json(&dead[0].payload).is_ok(),
        "the dead letter keeps the replayable event"
    );
}

#[tokio::test]
async fn freshbooks_bill_vendor_deliveries_are_accepted_as_bill_vendor_events() {
    use crate::vendors::form::Form;
    use crate::vendors::freshbooks::webhook::sign;
    let f = fixture().await;
    for (i, op) in ["create", "update", "delete"].into_iter().enumerate() {
        let body =
            format!("name=bill_vendor.{op}&object_id=330{i}&account_id=6BApk&business_id=6543");
        let header = sign(
            &SecretString::from(FB_VERIFIER),
            &Form::parse(body.as_bytes()).unwrap(),
        );
        let (status, answer) = call(
            &f,
            post(
                "/webhooks/freshbooks/6BApk/cb-invoices",
                &[("X-FreshBooks-Hmac-SHA256", &header)],
                &body,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        // Accepted and fanned out like any entity's (fb-hs has no queue here): which flows
        // sync bill vendors is the workers' business, not the ingress's.
        assert_eq!(
            answer,
            serde_json::json!({ "accepted": 1, "queued": 1, "dead_lettered": 1 }),
            "bill_vendor.{op}"
        );
    }
    let events = drain(&f, "mailchimp").await;
    let mut seen: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.entity.as_str(),
                e.entity_id.as_str(),
                e.operation.as_str(),
            )
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        [
            ("bill_vendor", "3300", "create"),
            ("bill_vendor", "3301", "update"),
            ("bill_vendor", "3302", "delete"),
        ]
    );
    assert_eq!(
        events[0]
            .record_key()
            .split(':')
            .take(3)
            .collect::<Vec<_>>(),
        ["freshbooks", "6BApk", "bill_vendor"]
    );
}

#[tokio::test]
async fn freshbooks_wrong_variants_are_refused_and_nothing_is_queued() {
    let f = fixture().await;
    let sorted_keys = "Z8lHspbMRjpAlHgydDoi7G6flJz5Lv0NIP/X9ooKgNk=";
    let compact = "amVs7uBwMq3N53xgegHp6JIpZlIGM9Y2uKrqzmB2XhM=";
    for header in [sorted_keys, compact, ""] {
        let req = post(
            "/webhooks/freshbooks/6BApk/cb-invoices",
            &[("X-FreshBooks-Hmac-SHA256", header)],
            FB_BODY,
        );
        assert_eq!(call(&f, req).await.0, StatusCode::UNAUTHORIZED);
    }
    let tampered = FB_BODY.replace("217506", "217507");
    let req = post(
        "/webhooks/freshbooks/6BApk/cb-invoices",
        &[("X-FreshBooks-Hmac-SHA256", FB_HEADER)],
        &tampered,
    );
    assert_eq!(call(&f, req).await.0, StatusCode::UNAUTHORIZED);
    let req = post("/webhooks/freshbooks/6BApk/cb-invoices", &[], FB_BODY);
    assert_eq!(call(&f, req).await.0, StatusCode::UNAUTHORIZED);
    // A route nobody verified, and a verified route under another account.
    for path in [
        "/webhooks/freshbooks/6BApk/cb-unknown",
        "/webhooks/freshbooks/other/cb-invoices",
    ] {
        let req = post(path, &[("X-FreshBooks-Hmac-SHA256", FB_HEADER)], FB_BODY);
        assert_eq!(call(&f, req).await.0, StatusCode::UNAUTHORIZED);
        // Handshakes need a registered, pending callback at the route.
        let req = post(path, &[], "object_id=4501&verifier=v");
        assert_eq!(call(&f, req).await.0, StatusCode::NOT_FOUND);
    }
    assert!(drain(&f, "mailchimp").await.is_empty());
}

#[tokio::test]
async fn freshbooks_handshake_stores_the_verifier_only_once_confirmed() {
    let f = fixture().await;
    let handshake = "name=callback.verify&object_id=4501&verifier=fresh-verifier-123";
    let (status, _) = call(
        &f,
        post("/webhooks/freshbooks/6BApk/cb-new", &[], handshake),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(f.freshbooks.calls.load(Ordering::SeqCst), 1);
    let stored = f
        .secrets
        .get("webhook/freshbooks/6BApk/cb-new")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.expose_secret(), "fresh-verifier-123");
    assert_eq!(
        f.db.get_callback("cb-new").await.unwrap().unwrap().status,
        CallbackStatus::Verified
    );

    // A second (forged) handshake on the now verified callback changes nothing.
    let forged = "object_id=4501&verifier=attacker";
    let (status, _) = call(&f, post("/webhooks/freshbooks/6BApk/cb-new", &[], forged)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(f.freshbooks.calls.load(Ordering::SeqCst), 1);
    let stored = f
        .secrets
        .get("webhook/freshbooks/6BApk/cb-new")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.expose_secret(), "fresh-verifier-123");

    // The good verifier's callback is untouched by a handshake aimed at it.
    let (status, _) = call(
        &f,
        post("/webhooks/freshbooks/6BApk/cb-invoices", &[], forged),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn freshbooks_handshake_that_freshbooks_does_not_confirm_is_not_stored() {
    let f = fixture_with(false, None, WebhookConfig::default()).await;
    let (status, _) = call(
        &f,
        post(
            "/webhooks/freshbooks/6BApk/cb-new",
            &[],
            "object_id=4501&verifier=guess",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        f.secrets
            .get("webhook/freshbooks/6BApk/cb-new")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        f.db.get_callback("cb-new").await.unwrap().unwrap().status,
        CallbackStatus::Pending
    );
    // A handshake naming another callback id never reaches FreshBooks.
    let (status, _) = call(
        &f,
        post(
            "/webhooks/freshbooks/6BApk/cb-new",
            &[],
            "object_id=999&verifier=guess",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(f.freshbooks.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn quickbooks_signed_batches_fan_out_and_bad_signatures_get_403() {
    let f = fixture().await;
    let (status, body) = call(
        &f,
        post(
            "/webhooks/quickbooks",
            &[("intuit-signature", QBO_HEADER)],
            QBO_BODY,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let events = drain(&f, "mailchimp").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].record_key(),
        "quickbooks:9130357766900000:customer:58"
    );

    let with_newline = format!("{QBO_BODY}\n");
    let req = post(
        "/webhooks/quickbooks",
        &[("intuit-signature", QBO_HEADER)],
        &with_newline,
    );
    assert_eq!(call(&f, req).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        call(&f, post("/webhooks/quickbooks", &[], QBO_BODY))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // CloudEvents, several realms in one POST, with the CloudEvents content type.
    let ce = r#"[{"specversion":"1.0","id":"e1","source":"intuit.x","type":"qbo.customer.created.v1","time":"2026-03-02T17:04:11Z","intuitentityid":"7","intuitaccountid":"9130357766900000"},{"specversion":"1.0","id":"e2","source":"intuit.x","type":"qbo.customer.updated.v1","time":"2026-03-02T17:04:12Z","intuitentityid":"8","intuitaccountid":"555"}]"#;
    let sig = qbo_sign(ce);
    let req = post(
        "/webhooks/quickbooks",
        &[
            ("intuit-signature", &sig),
            ("content-type", "application/cloudevents+json"),
        ],
        ce,
    );
    let (status, body) = call(&f, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["queued"], 1, "realm 555 has no connection");
    let events = drain(&f, "mailchimp").await;
    assert_eq!(
        events
            .iter()
            .map(|e| e.event_id.as_str())
            .collect::<Vec<_>>(),
        ["e1"]
    );
}

#[tokio::test]
async fn signed_but_unparseable_deliveries_are_dead_lettered_and_acknowledged() {
    let f = fixture().await;
    let garbage = r#"{"something":"else"}"#;
    let sig = qbo_sign(garbage);
    let (status, body) = call(
        &f,
        post(
            "/webhooks/quickbooks",
            &[("intuit-signature", &sig)],
            garbage,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["dead_lettered"], 1);
    let dead =
        f.db.list_dead_letters(DeadLetterStatus::Open, 10)
            .await
            .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].stage, "webhook:quickbooks");
    assert_eq!(dead[0].payload, garbage);
    assert!(!dead[0].reason.is_empty());
}

#[tokio::test]
async fn stripe_checks_tolerance_and_rotation() {
    let f = fixture().await;
    let req = || {
        post(
            "/webhooks/stripe/acct_1",
            &[("Stripe-Signature", STRIPE_HEADER)],
            STRIPE_BODY,
        )
    };
    let (status, body) = call(&f, req()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let events = drain(&f, "freshbooks").await;
    assert_eq!(events[0].event_id, "evt_test_1");
    assert_eq!(events[0].connection, "stripe-fb");

    f.clock.advance(chrono::Duration::seconds(301));
    let (status, body) = call(&f, req()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"].as_str().unwrap().contains("tolerance"),
        "{body}"
    );
    let req = post(
        "/webhooks/stripe/acct_unknown",
        &[("Stripe-Signature", STRIPE_HEADER)],
        STRIPE_BODY,
    );
    assert_eq!(call(&f, req).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn mailchimp_validates_by_get_and_checks_the_url_secret() {
    let f = fixture().await;
    let get = Request::builder()
        .method(Method::GET)
        .uri("/webhooks/mailchimp/l2/anything")
        .body(Bytes::new())
        .unwrap();
    assert_eq!(call(&f, get).await.0, StatusCode::OK);
    let form = "type=unsubscribe&fired_at=2009-03-26+21%3A40%3A57&data%5Baction%5D=unsub&data%5Breason%5D=manual&data%5Bid%5D=8a25ff1d98&data%5Blist_id%5D=l2&data%5Bemail%5D=api%2Bunsub%40mailchimp.com&data%5Bemail_type%5D=html&data%5Bmerges%5D%5BEMAIL%5D=api%2Bunsub%40mailchimp.com&data%5Bmerges%5D%5BFNAME%5D=Mailchimp&data%5Bip_opt%5D=10.20.10.30&data%5Bcampaign_id%5D=cb398d21d2";
    assert_eq!(
        call(&f, post("/webhooks/mailchimp/l2/wrong", &[], form))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = call(
        &f,
        post("/webhooks/mailchimp/l2/s3cr3t-path-token", &[], form),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let events = drain(&f, "quickbooks").await;
    assert_eq!(
        (events[0].entity.as_str(), events[0].operation.as_str()),
        ("member", "unsubscribe")
    );
    assert_eq!(events[0].detail["email"], "api+unsub@mailchimp.com");
}

#[tokio::test]
async fn limits_routes_and_methods_answer_clearly() {
    let config = WebhookConfig {
        body_limit: 64,
        ..WebhookConfig::default()
    };
    let f = fixture_with(true, None, config).await;
    let (status, body) = call(&f, post("/webhooks/quickbooks", &[], &"x".repeat(65))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["error"].as_str().unwrap().contains("at most 64"));
    assert_eq!(
        call(&f, post("/webhooks/hubspot", &[], "")).await.0,
        StatusCode::NOT_FOUND
    );
    let get = Request::builder()
        .method(Method::GET)
        .uri("/webhooks/quickbooks")
        .body(Bytes::new())
        .unwrap();
    let resp = f.handler.handle(get).await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "POST");
}

/// A queue that is down.
struct DownQueue;

#[async_trait]
impl Queue for DownQueue {
    async fn send_batch(&self, _: &str, _: &[OutgoingMessage]) -> PortResult<Vec<SendFailure>> {
        Err(crate::ports::PortError::backend(
            "sqs",
            "connection refused",
        ))
    }
    async fn receive(&self, _: &str, _: usize, _: Duration) -> PortResult<Vec<ReceivedMessage>> {
        unreachable!("the webhook never receives")
    }
    async fn delete(&self, _: &str, _: &str) -> PortResult<()> {
        unreachable!("the webhook never deletes")
    }
    async fn change_visibility(&self, _: &str, _: &str, _: Duration) -> PortResult<()> {
        unreachable!("the webhook never changes visibility")
    }
    async fn move_to_dead_letter(&self, _: &str, _: &ReceivedMessage) -> PortResult<()> {
        unreachable!("the webhook never moves messages")
    }
    async fn redrive(&self, _: &str) -> PortResult<String> {
        unreachable!("the webhook never redrives")
    }
    async fn depth(&self, _: &str) -> PortResult<QueueDepth> {
        unreachable!("the webhook never asks for depth")
    }
}

#[tokio::test]
async fn an_enqueue_failure_answers_503_so_the_vendor_retries() {
    let f = fixture_with(true, Some(Arc::new(DownQueue)), WebhookConfig::default()).await;
    let (status, body) = call(
        &f,
        post(
            "/webhooks/quickbooks",
            &[("intuit-signature", QBO_HEADER)],
            QBO_BODY,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        !body.to_string().contains("connection refused"),
        "infrastructure detail stays in the logs"
    );
}

#[tokio::test]
async fn oversized_events_travel_by_reference() {
    let f = fixture().await;
    let mut event = crate::event::SourceEvent {
        event_id: "big".into(),
        source: crate::event::SourceRef {
            vendor: Vendor::Quickbooks,
            account: "9130357766900000".into(),
        },
        entity: "customer".into(),
        entity_id: "1".into(),
        operation: "update".into(),
        occurred_at: None,
        detail: Default::default(),
    };
    event.detail.insert(
        "blob".into(),
        serde_json::Value::String("x".repeat(300 * 1024)),
    );
    let resp = f
        .handler
        .enqueue(Vendor::Quickbooks, vec![event])
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let events = drain(&f, "mailchimp").await;
    let key = events[0]
        .detail_ref
        .clone()
        .expect("detail moved to a blob");
    assert!(events[0].detail.is_empty());
    let blob = f.db.get_blob(&key).await.unwrap().unwrap();
    assert!(blob.len() > 300 * 1024);
}
