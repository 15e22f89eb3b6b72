//! The Mailchimp client against the Mailchimp sandbox: member, tag, merge-field and e-commerce
//! semantics, error classification, the per-key connection limiter against the sandbox's
//! 10-connection limit, and request validity against Mailchimp's OpenAPI document.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the test failing, with the value

use std::sync::Arc;
use std::time::Duration;

use mlc::vendors::mailchimp::MailchimpApi;
use mlc::vendors::mailchimp::client::{ClientOptions, MailchimpClient, oauth_metadata_at};
use mlc::vendors::mailchimp::error::MailchimpError;
use mlc::vendors::mailchimp::list_webhooks::{ListWebhookEvents, ListWebhookSources};
use mlc::vendors::mailchimp::models::{
    Customer, CustomerRef, MemberUpsert, MergeField, Order, OrderLine, Product, Store, TagChange,
    Variant,
};
use mlc::vendors::mailchimp::webhook::{parse, subscriber_hash};
use mlc_tests::sandbox::mailchimp::{
    DEFAULT_LIST_ID as LIST, DropMode, Fault, MailchimpSandbox, MailchimpSandboxOptions,
};
use secrecy::SecretString;
use serde_json::json;

async fn sandbox() -> MailchimpSandbox {
    MailchimpSandbox::start(MailchimpSandboxOptions {
        seed: Some(7),
        ..MailchimpSandboxOptions::default()
    })
    .await
}

fn options(sb: &MailchimpSandbox) -> ClientOptions {
    ClientOptions {
        base_url: Some(sb.base_url()),
        timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

fn client(sb: &MailchimpSandbox) -> MailchimpClient {
    MailchimpClient::from_secret(&SecretString::from(sb.credentials_json()), &options(sb))
        .expect("client")
}

fn upsert(email: &str, status_if_new: &str) -> MemberUpsert {
    MemberUpsert {
        email_address: email.into(),
        status_if_new: status_if_new.into(),
        merge_fields: [("FNAME".to_string(), json!("Jane"))].into(),
    }
}

/// Every request the client sent was valid against the spec.
fn assert_valid(sb: &MailchimpSandbox) {
    let violations = sb.violations();
    assert!(violations.is_empty(), "spec violations: {violations:#?}");
}

#[tokio::test]
async fn upsert_creates_and_never_overwrites_status() {
    let sb = sandbox().await;
    let mc = client(&sb);
    mc.ping().await.expect("ping");

    let created = mc
        .upsert_member(LIST, &upsert("  Jane.Doe@Example.COM ", "transactional"))
        .await
        .unwrap();
    assert_eq!(created.status, "transactional");
    assert_eq!(created.merge_fields["FNAME"], "Jane");
    let stored = sb.member(LIST, "jane.doe@example.com").expect("member");
    assert_eq!(stored.status, "transactional");

    // Existing members keep their status: status_if_new applies only on create.
    sb.seed_member(LIST, "sub@example.com", "subscribed", false);
    sb.seed_member(LIST, "gone@example.com", "archived", false);
    let m = mc
        .upsert_member(LIST, &upsert("sub@example.com", "transactional"))
        .await
        .unwrap();
    assert_eq!(m.status, "subscribed");
    let m = mc
        .upsert_member(LIST, &upsert("gone@example.com", "transactional"))
        .await
        .unwrap();
    assert_eq!(m.status, "archived");
    assert_eq!(
        sb.member(LIST, "sub@example.com").unwrap().merge_fields["FNAME"],
        "Jane"
    );

    let read = mc.member(LIST, "SUB@example.com").await.unwrap().unwrap();
    assert_eq!(read.status, "subscribed");
    assert!(
        mc.member(LIST, "nobody@example.com")
            .await
            .unwrap()
            .is_none()
    );

    // The PUT went out with skip_merge_validation on the hashed path.
    let hash = subscriber_hash("jane.doe@example.com");
    assert!(sb.requests().iter().any(|r| r.method == "PUT"
        && r.path == format!("/lists/{LIST}/members/{hash}")
        && r.status == 200));
    assert_eq!(
        sb.request_counts()["PUT /lists/{list_id}/members/{subscriber_hash}"],
        3
    );
    assert_valid(&sb);
}

#[tokio::test]
async fn archive_answers_405_and_404_as_nothing_to_do() {
    let sb = sandbox().await;
    let mc = client(&sb);
    sb.seed_member(LIST, "a@example.com", "subscribed", false);
    sb.seed_member(LIST, "p@example.com", "pending", false);
    assert!(mc.archive_member(LIST, "a@example.com").await.unwrap());
    assert_eq!(sb.member(LIST, "a@example.com").unwrap().status, "archived");
    assert!(!mc.archive_member(LIST, "a@example.com").await.unwrap()); // 405
    assert!(!mc.archive_member(LIST, "p@example.com").await.unwrap()); // 405
    assert!(!mc.archive_member(LIST, "none@example.com").await.unwrap()); // 404
    let statuses: Vec<u16> = sb
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [204, 405, 405, 404]);
    assert_valid(&sb);
}

#[tokio::test]
async fn tags_and_merge_fields() {
    let sb = sandbox().await;
    let mc = client(&sb);
    mc.upsert_member(LIST, &upsert("t@example.com", "transactional"))
        .await
        .unwrap();
    let tag = |name: &str, status| TagChange {
        name: name.into(),
        status,
    };
    mc.update_tags(
        LIST,
        "t@example.com",
        &[tag("fb-client", true), tag("overdue", true)],
        true,
    )
    .await
    .unwrap();
    mc.update_tags(LIST, "t@example.com", &[tag("overdue", false)], false)
        .await
        .unwrap();
    let tags: Vec<String> = sb
        .member(LIST, "t@example.com")
        .unwrap()
        .tags
        .into_iter()
        .collect();
    assert_eq!(tags, ["fb-client"]);
    let err = mc
        .update_tags(LIST, "x@example.com", &[tag("a", true)], false)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));

    let fields = mc.merge_fields(LIST).await.unwrap();
    assert_eq!(fields.len(), 5, "{fields:?}");
    let created = mc
        .create_merge_field(
            LIST,
            &MergeField {
                tag: "FB_BAL".into(),
                name: "FreshBooks balance".into(),
                kind: "number".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(created.tag, "FB_BAL");
    assert!(
        mc.merge_fields(LIST)
            .await
            .unwrap()
            .iter()
            .any(|f| f.tag == "FB_BAL")
    );
    let too_long = mc
        .create_merge_field(
            LIST,
            &MergeField {
                tag: "FB_BALANCE_X".into(),
                name: "x".into(),
                kind: "text".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(too_long.class(), "validation");
    // A merge tag the audience lacks is refused by the (strict) sandbox.
    let mut m = upsert("t@example.com", "transactional");
    m.merge_fields.insert("NOPE".into(), json!("x"));
    assert_eq!(
        mc.upsert_member(LIST, &m).await.unwrap_err().class(),
        "validation"
    );
    assert_valid(&sb);
}

fn order(id: &str, lines: &[(&str, &str, f64)]) -> Order {
    Order {
        id: id.into(),
        customer: CustomerRef { id: "c1".into() },
        currency_code: "USD".into(),
        order_total: lines.iter().map(|l| l.2).sum(),
        financial_status: Some("pending".into()),
        processed_at_foreign: Some("2026-03-02T17:04:11+00:00".into()),
        updated_at_foreign: None,
        lines: lines
            .iter()
            .map(|(line, product, price)| OrderLine {
                id: (*line).into(),
                product_id: (*product).into(),
                product_variant_id: (*product).into(),
                quantity: 1,
                price: *price,
            })
            .collect(),
    }
}

#[tokio::test]
async fn ecommerce_store_customer_product_order() {
    let sb = sandbox().await;
    let mc = client(&sb);
    assert!(mc.store("fb-1").await.unwrap().is_none());
    let store = Store {
        id: "fb-1".into(),
        list_id: LIST.into(),
        name: "FreshBooks".into(),
        currency_code: "USD".into(),
        is_syncing: Some(true),
    };
    mc.create_store(&store).await.unwrap();
    assert_eq!(mc.store("fb-1").await.unwrap().unwrap().list_id, LIST);
    let dup = mc.create_store(&store).await.unwrap_err();
    assert!(dup.to_string().contains("already exists"), "{dup}");
    mc.set_store_syncing("fb-1", false).await.unwrap();
    assert!(!sb.store("fb-1").unwrap().is_syncing());

    // A customer for an address not in the audience adds a transactional member.
    mc.upsert_customer(
        "fb-1",
        &Customer {
            id: "c1".into(),
            email_address: "buyer@example.com".into(),
            opt_in_status: false,
            first_name: Some("Bo".into()),
            last_name: None,
            company: Some("Acme".into()),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        sb.member(LIST, "buyer@example.com").unwrap().status,
        "transactional"
    );

    for id in ["p1", "p2", "p3"] {
        mc.create_product(
            "fb-1",
            &Product {
                id: id.into(),
                title: format!("Item {id}"),
                variants: vec![Variant {
                    id: id.into(),
                    title: format!("Item {id}"),
                    price: Some(10.0),
                }],
            },
        )
        .await
        .unwrap();
    }
    let p = mc.product("fb-1", "p1").await.unwrap().unwrap();
    assert_eq!(p.variants.len(), 1);
    assert!(mc.product("fb-1", "zz").await.unwrap().is_none());

    mc.create_order(
        "fb-1",
        &order("inv-1", &[("l1", "p1", 10.0), ("l2", "p2", 5.0)]),
    )
    .await
    .unwrap();
    let dup = mc
        .create_order("fb-1", &order("inv-1", &[("l1", "p1", 10.0)]))
        .await
        .unwrap_err();
    assert!(dup.to_string().contains("already exists"), "{dup}");
    let unknown = mc
        .create_order("fb-1", &order("inv-2", &[("l1", "nope", 1.0)]))
        .await
        .unwrap_err();
    assert_eq!(unknown.status(), Some(400));
    assert!(
        unknown
            .to_string()
            .contains("A product with the provided ID does not exist"),
        "{unknown}"
    );

    // PATCH merges by line id and never removes: l2 stays until deleted.
    let mut changed = order("inv-1", &[("l1", "p1", 12.0), ("l3", "p3", 3.0)]);
    changed.financial_status = Some("paid".into());
    mc.update_order("fb-1", &changed).await.unwrap();
    let stored = sb.order("fb-1", "inv-1").unwrap();
    assert_eq!(stored.line_ids(), ["l1", "l2", "l3"]);
    assert_eq!(stored.financial_status(), Some("paid"));
    mc.delete_order_line("fb-1", "inv-1", "l2").await.unwrap();
    mc.delete_order_line("fb-1", "inv-1", "l2").await.unwrap(); // 404 is fine
    let read = mc.order("fb-1", "inv-1").await.unwrap().unwrap();
    let lines: Vec<_> = read
        .lines
        .iter()
        .map(|l| (l.id.as_str(), l.price))
        .collect();
    assert_eq!(lines, [("l1", 12.0), ("l3", 3.0)]);
    assert_eq!(read.customer.id, "c1");
    assert!(mc.order("fb-1", "inv-9").await.unwrap().is_none());
    assert_valid(&sb);
}

#[tokio::test]
async fn compliance_and_forgotten_members_are_permanent_errors() {
    let sb = sandbox().await;
    let mc = client(&sb);
    sb.seed_member(LIST, "held@example.com", "unsubscribed", true);
    let err = mc
        .upsert_member(LIST, &upsert("held@example.com", "transactional"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), "compliance_state");
    assert!(!err.is_transient());
    assert!(
        err.to_string()
            .contains("held@example.com is in a compliance state"),
        "{err}"
    );
    assert!(err.request_id().is_some());

    sb.seed_member(LIST, "erased@example.com", "subscribed", false);
    sb.forget_member(LIST, "erased@example.com");
    let err = mc
        .upsert_member(LIST, &upsert("erased@example.com", "pending"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), "forgotten_email");
    assert!(err.to_string().contains("was permanently deleted"), "{err}");
    assert_valid(&sb);
}

#[tokio::test]
async fn throttling_server_errors_and_drops_are_transient() {
    let sb = sandbox().await;
    let mc = client(&sb);
    sb.inject(Fault::status(503).times(1));
    let e = mc.ping().await.unwrap_err();
    assert!(e.is_transient() && e.status() == Some(503), "{e:?}");
    sb.inject(Fault::status(429).bare().retry_after(3).times(1));
    let e = mc.ping().await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    assert!(e.request_id().is_some(), "X-Request-Id is kept");
    sb.inject(Fault::status(403).bare().times(1));
    assert!(mc.ping().await.unwrap_err().is_transient());
    sb.inject(Fault::drop_connection(DropMode::Before).times(1));
    let e = mc.ping().await.unwrap_err();
    assert!(
        matches!(e, MailchimpError::Transport(_)) && e.is_transient(),
        "{e:?}"
    );
    // Rules are used up: the next call goes through.
    mc.ping().await.unwrap();

    // A dropped answer after the write was applied: the member exists although the client saw
    // a failure, so a retry must be an idempotent upsert.
    sb.inject(
        Fault::drop_connection(DropMode::After)
            .on("PUT", "/members/")
            .times(1),
    );
    assert!(
        mc.upsert_member(LIST, &upsert("d@example.com", "transactional"))
            .await
            .is_err()
    );
    assert!(sb.member(LIST, "d@example.com").is_some());
    mc.upsert_member(LIST, &upsert("d@example.com", "transactional"))
        .await
        .unwrap();
    assert_valid(&sb);
}

#[tokio::test]
async fn wrong_key_is_auth_and_oauth_tokens_work() {
    let sb = sandbox().await;
    let wrong_dc = format!("{}-us1", sb.api_key().split('-').next().unwrap());
    let mc = MailchimpClient::from_secret(
        &SecretString::from(json!({ "api_key": wrong_dc }).to_string()),
        &options(&sb),
    )
    .unwrap();
    let e = mc.ping().await.unwrap_err();
    assert_eq!(e.class(), "auth");
    assert!(e.to_string().contains("API Key Invalid"), "{e}");

    let token = SecretString::from(sb.oauth_token());
    let meta = oauth_metadata_at(&sb.oauth_metadata_url(), &token, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(meta.dc, "us21");
    assert_eq!(meta.api_endpoint, sb.root_url());
    // A token stored with its api_endpoint reaches the sandbox with Bearer auth.
    let secret = json!({ "access_token": sb.oauth_token(), "api_endpoint": meta.api_endpoint });
    let oauth = MailchimpClient::from_secret(
        &SecretString::from(secret.to_string()),
        &ClientOptions {
            timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        },
    )
    .unwrap();
    assert_eq!(oauth.base_url(), sb.base_url());
    oauth.ping().await.unwrap();
    assert!(
        oauth_metadata_at(
            &sb.oauth_metadata_url(),
            &SecretString::from("wrong".to_string()),
            Duration::from_secs(5)
        )
        .await
        .is_err()
    );
}

/// 25 concurrent calls from three clients sharing one key: `clients` clients built with
/// `options`, calls spread over them. Returns the sandbox afterwards.
async fn burst(total_connections: usize) -> MailchimpSandbox {
    let sb = MailchimpSandbox::start(MailchimpSandboxOptions {
        latency: Duration::from_millis(40),
        seed: Some(1),
        ..MailchimpSandboxOptions::default()
    })
    .await;
    let opts = ClientOptions {
        total_connections,
        ..options(&sb)
    };
    let secret = SecretString::from(sb.credentials_json());
    let clients: Vec<Arc<MailchimpClient>> = (0..3)
        .map(|_| Arc::new(MailchimpClient::from_secret(&secret, &opts).unwrap()))
        .collect();
    let tasks: Vec<_> = (0..25)
        .map(|i| {
            let mc = clients[i % clients.len()].clone();
            tokio::spawn(async move {
                mc.upsert_member(LIST, &upsert(&format!("m{i}@example.com"), "transactional"))
                    .await
            })
        })
        .collect();
    for t in tasks {
        // Results are judged by the sandbox's counters below.
        let _ = t.await.expect("task");
    }
    sb
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_limiter_keeps_a_burst_under_the_connection_limit() {
    let sb = burst(10).await;
    assert_eq!(sb.too_many_requests_served(), 0);
    let peak = sb.peak_concurrency();
    assert!((2..=10).contains(&peak), "peak {peak}");
    assert_eq!(sb.members(LIST).len(), 25);
    assert_valid(&sb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_tight_limiter_the_sandbox_throttles() {
    // The same burst allowed 25 connections: the sandbox must refuse some, else the test above
    // could not fail.
    let sb = burst(25).await;
    assert!(sb.too_many_requests_served() > 0, "{:?}", sb.stats());
    assert!(sb.peak_concurrency() > 10);
}

#[tokio::test]
async fn the_validator_catches_invalid_bodies() {
    let sb = sandbox().await;
    let http = reqwest::Client::new();
    let hash = subscriber_hash("v@example.com");
    let response = http
        .put(format!("{}/lists/{LIST}/members/{hash}", sb.base_url()))
        .basic_auth("user", Some(sb.api_key()))
        .json(&json!({"email_address": "v@example.com", "status_if_new": "bogus"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().contains_key("x-request-id"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["title"], "Invalid Resource");
    assert_eq!(body["errors"][0]["field"], "status_if_new");
    let violations = sb.violations();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert_eq!(
        violations[0].template.as_deref(),
        Some("/lists/{list_id}/members/{subscriber_hash}")
    );
    assert!(
        sb.member(LIST, "v@example.com").is_none(),
        "nothing written"
    );

    // An order line without a price, and an unknown query parameter.
    let response = http
        .post(format!(
            "{}/ecommerce/stores/s1/orders?cuont=5",
            sb.base_url()
        ))
        .basic_auth("user", Some(sb.api_key()))
        .json(
            &json!({"id": "o", "customer": {"id": "c"}, "currency_code": "USD",
            "order_total": 1, "lines": [{"id": "l", "product_id": "p",
            "product_variant_id": "p", "quantity": 1}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let v = sb.violations();
    let fields: Vec<&str> = v[1].errors.iter().map(|e| e.field.as_str()).collect();
    assert!(
        fields.contains(&"cuont") && fields.contains(&"lines.0"),
        "{fields:?}"
    );

    // The HTTP control API reports the same.
    let stats: serde_json::Value = http
        .get(format!("{}/_sandbox/stats", sb.root_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["violations"], 2);
}

// ---- list webhooks ----------------------------------------------------------------------

/// What the in-test webhook receiver saw.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    user_agent: String,
    content_type: String,
    body: String,
}

/// A tiny receiver on a loopback port: paths under `/missing` answer 404; POSTs answer 500
/// while `fail_posts` is above zero (counting down); everything else 200.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<std::sync::Mutex<Vec<Received>>>,
    fail_posts: Arc<std::sync::atomic::AtomicU32>,
}

impl Receiver {
    async fn start() -> (String, Receiver) {
        let rx = Receiver::default();
        let app = axum::Router::new().fallback(receive).with_state(rx.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), rx)
    }

    fn seen(&self, method: &str, path: &str) -> Vec<Received> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .cloned()
            .collect()
    }
}

async fn receive(
    axum::extract::State(rx): axum::extract::State<Receiver>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    use std::sync::atomic::Ordering;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    rx.seen.lock().unwrap().push(Received {
        method: method.to_string(),
        path: uri.path().to_string(),
        user_agent: header("user-agent"),
        content_type: header("content-type"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if uri.path().starts_with("/missing") {
        return axum::http::StatusCode::NOT_FOUND;
    }
    if method == axum::http::Method::POST
        && rx
            .fail_posts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
    }
    axum::http::StatusCode::OK
}

async fn webhook_sandbox() -> MailchimpSandbox {
    MailchimpSandbox::start(MailchimpSandboxOptions {
        seed: Some(7),
        webhook_retry_delays: vec![Duration::from_millis(20); 3],
        ..MailchimpSandboxOptions::default()
    })
    .await
}

#[tokio::test]
async fn list_webhooks_are_created_after_a_validation_get() {
    let sb = sandbox().await;
    let mc = client(&sb);
    let (base, rx) = Receiver::start().await;
    let url = format!("{base}/ok/tenant-1/s3cret-token");

    let created = mc.create_list_webhook(LIST, &url).await.expect("created");
    assert_eq!(created.url, url);
    assert_eq!(created.events, ListWebhookEvents::members());
    assert!(!created.events.campaign);
    assert_eq!(created.sources, ListWebhookSources::not_api());
    let debug = format!("{created:?}");
    assert!(!debug.contains("s3cret-token"), "{debug}");
    assert!(debug.contains("/ok/tenant-1/<redacted>"), "{debug}");

    // Mailchimp GETs the URL first, as its validator.
    let gets = rx.seen("GET", "/ok/tenant-1/s3cret-token");
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(gets[0].user_agent, "MailChimp.com WebHook Validator");
    assert!(gets[0].body.is_empty());

    let listed = mc.list_webhooks(LIST).await.expect("listed");
    assert_eq!(listed, vec![created.clone()]);
    let stored = sb.list_webhooks(LIST);
    assert_eq!(stored.len(), 1);
    assert!(stored[0].sources.user && stored[0].sources.admin && !stored[0].sources.api);

    // A URL that does not answer 200 is refused with Mailchimp's message.
    let err = mc
        .create_list_webhook(LIST, &format!("{base}/missing/tenant-2/secret"))
        .await
        .expect_err("404 at the URL");
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.class(), "validation");
    let message = err.to_string();
    assert!(
        message.contains("We couldn't verify the URL is working")
            && message.contains("HTTP Code: 404"),
        "{message}"
    );
    // So is the same URL twice, and an unknown list is not found.
    let dup = mc
        .create_list_webhook(LIST, &url)
        .await
        .expect_err("duplicate");
    assert_eq!(dup.status(), Some(400));
    let unknown = mc
        .create_list_webhook("0000000000", &url)
        .await
        .expect_err("no such list");
    assert_eq!(unknown.status(), Some(404));
    assert_eq!(mc.list_webhooks(LIST).await.unwrap().len(), 1);
    assert_eq!(
        sb.list_webhook_validations()
            .iter()
            .map(|v| v.status)
            .collect::<Vec<_>>(),
        [Some(200), Some(404)]
    );

    // Deleting (the API, as an operator would) leaves the list empty.
    let http = reqwest::Client::new();
    let deleted = http
        .delete(format!(
            "{}/lists/{LIST}/webhooks/{}",
            sb.base_url(),
            created.id
        ))
        .basic_auth("user", Some(sb.api_key()))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(mc.list_webhooks(LIST).await.unwrap().is_empty());
    assert_valid(&sb);
}

#[tokio::test]
async fn member_changes_made_in_mailchimp_reach_the_webhook_but_api_writes_do_not() {
    let sb = webhook_sandbox().await;
    let mc = client(&sb);
    let (base, rx) = Receiver::start().await;
    // The product's registration (sources user + admin) ...
    mc.create_list_webhook(LIST, &format!("{base}/ok/product/secret"))
        .await
        .expect("product webhook");
    // ... and one that hears only API writes, so they are known to be fired at all.
    let api_hook = reqwest::Client::new()
        .post(format!("{}/lists/{LIST}/webhooks", sb.base_url()))
        .basic_auth("user", Some(sb.api_key()))
        .json(&json!({"url": format!("{base}/ok/api-only"),
            "events": {"subscribe": true, "unsubscribe": true, "profile": true,
                       "cleaned": true, "upemail": true, "campaign": false},
            "sources": {"user": false, "admin": false, "api": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(api_hook.status(), 200);

    // API writes: a new subscribed member, then a profile change.
    mc.upsert_member(LIST, &upsert("api@example.com", "subscribed"))
        .await
        .unwrap();
    mc.upsert_member(
        LIST,
        &MemberUpsert {
            email_address: "api@example.com".into(),
            status_if_new: "subscribed".into(),
            merge_fields: [("FNAME".to_string(), json!("Janet"))].into(),
        },
    )
    .await
    .unwrap();

    // Changes people make in Mailchimp.
    sb.subscribe_member(LIST, "ann@example.com").await.unwrap();
    let merges = json!({"FNAME": "Ann", "LNAME": "Lee"});
    sb.update_member_profile(LIST, "ann@example.com", merges.as_object().unwrap().clone())
        .await
        .unwrap();
    sb.unsubscribe_member(LIST, "Ann@Example.com", None)
        .await
        .unwrap();
    sb.seed_member(LIST, "old@example.com", "subscribed", false);
    sb.change_member_email(LIST, "old@example.com", "new@example.com")
        .await
        .unwrap();
    sb.seed_member(LIST, "bounce@example.com", "subscribed", false);
    sb.clean_member(LIST, "bounce@example.com", None)
        .await
        .unwrap();
    // Refused changes deliver nothing.
    assert!(sb.subscribe_member(LIST, "new@example.com").await.is_err());
    assert!(
        sb.unsubscribe_member(LIST, "ann@example.com", None)
            .await
            .is_err()
    );
    assert!(
        sb.clean_member(LIST, "nobody@example.com", None)
            .await
            .is_err()
    );

    assert!(
        sb.wait_for_list_webhook_deliveries(Duration::from_secs(10))
            .await
    );

    let product = rx.seen("POST", "/ok/product/secret");
    for r in &product {
        assert_eq!(r.user_agent, "MailChimp.com");
        assert_eq!(r.content_type, "application/x-www-form-urlencoded");
        assert!(
            r.body.contains("data%5Blist_id%5D="),
            "bracket keys: {}",
            r.body
        );
    }
    let events: Vec<_> = product
        .iter()
        .map(|r| parse(r.body.as_bytes(), LIST).unwrap_or_else(|e| panic!("{e}: {}", r.body)))
        .collect();
    let seen: Vec<(&str, &str, Option<&str>)> = events
        .iter()
        .map(|e| {
            (
                e.operation.as_str(),
                e.detail["email"].as_str().unwrap_or_default(),
                e.detail.get("reason").and_then(|v| v.as_str()),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("subscribe", "ann@example.com", None),
            ("profile", "ann@example.com", None),
            ("unsubscribe", "ann@example.com", Some("manual")),
            ("upemail", "new@example.com", None),
            ("profile", "new@example.com", None),
            ("cleaned", "bounce@example.com", Some("hard")),
        ],
        "{product:#?}"
    );
    for e in &events {
        assert_eq!(e.entity, "member");
        assert_eq!(
            e.entity_id,
            subscriber_hash(e.detail["email"].as_str().unwrap())
        );
        assert!(e.occurred_at.is_some());
    }
    assert_eq!(events[2].detail["action"], "unsub");
    assert_eq!(events[3].detail["old_email"], "old@example.com");
    assert_eq!(events[3].detail["new_email"], "new@example.com");
    let profile = mlc::vendors::mailchimp::webhook::parse_form(product[1].body.as_bytes()).unwrap();
    assert_eq!(profile["data"]["merges"]["FNAME"], "Ann");
    assert_eq!(profile["data"]["merges"]["LNAME"], "Lee");
    assert_eq!(profile["data"]["id"].as_str().map(str::len), Some(10));

    // The API writes went only to the webhook that takes source `api`.
    let api_events: Vec<String> = rx
        .seen("POST", "/ok/api-only")
        .iter()
        .map(|r| parse(r.body.as_bytes(), LIST).unwrap().operation)
        .collect();
    assert_eq!(api_events, ["subscribe", "profile"]);
    assert!(
        events
            .iter()
            .all(|e| e.detail["email"] != "api@example.com"),
        "an API write echoed to the product's webhook"
    );

    let deliveries = sb.list_webhook_deliveries();
    assert_eq!(deliveries.len(), 8, "{deliveries:#?}");
    assert!(deliveries.iter().all(|d| d.delivered() && d.attempt == 1));
    assert_eq!(deliveries.iter().filter(|d| d.source == "api").count(), 2);

    // The state followed: the member moved to the new address with its data.
    assert!(sb.member(LIST, "old@example.com").is_none());
    assert_eq!(
        sb.member(LIST, "new@example.com").unwrap().status,
        "subscribed"
    );
    assert_eq!(
        sb.member(LIST, "ann@example.com").unwrap().status,
        "unsubscribed"
    );
    assert_eq!(
        sb.member(LIST, "bounce@example.com").unwrap().status,
        "cleaned"
    );
    assert_valid(&sb);
}

#[tokio::test]
async fn failed_deliveries_are_retried_then_given_up() {
    let sb = webhook_sandbox().await;
    let (base, rx) = Receiver::start().await;
    sb.add_list_webhook(LIST, &format!("{base}/ok/flaky"))
        .await
        .expect("webhook");
    sb.seed_member(LIST, "a@example.com", "subscribed", false);
    sb.seed_member(LIST, "b@example.com", "subscribed", false);

    // Two 500s, then 200: three attempts of one delivery. Through the HTTP control API.
    rx.fail_posts.store(2, std::sync::atomic::Ordering::SeqCst);
    let http = reqwest::Client::new();
    let answer = http
        .post(format!("{}/_sandbox/members/unsubscribe", sb.root_url()))
        .json(&json!({"list_id": LIST, "email": "a@example.com", "reason": "abuse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 204);
    assert!(
        sb.wait_for_list_webhook_deliveries(Duration::from_secs(10))
            .await
    );
    let posts = rx.seen("POST", "/ok/flaky");
    assert_eq!(posts.len(), 3);
    assert!(
        posts.iter().all(|p| p.body == posts[0].body),
        "retries resend the body"
    );
    let attempts: Vec<(u32, Option<u16>)> = sb
        .list_webhook_deliveries()
        .iter()
        .map(|d| (d.attempt, d.status))
        .collect();
    assert_eq!(attempts, [(1, Some(500)), (2, Some(500)), (3, Some(200))]);
    let event = parse(posts[2].body.as_bytes(), LIST).unwrap();
    assert_eq!(event.detail["reason"], "abuse");

    // A receiver that keeps failing: 1 + 3 retries, then the delivery is dropped.
    rx.fail_posts
        .store(100, std::sync::atomic::Ordering::SeqCst);
    sb.clean_member(LIST, "b@example.com", Some("abuse"))
        .await
        .unwrap();
    assert!(
        sb.wait_for_list_webhook_deliveries(Duration::from_secs(10))
            .await
    );
    let cleaned: Vec<_> = sb
        .list_webhook_deliveries()
        .into_iter()
        .filter(|d| d.event == "cleaned")
        .collect();
    assert_eq!(cleaned.len(), 4);
    assert!(cleaned.iter().all(|d| !d.delivered()));
    assert_eq!(sb.pending_list_webhook_deliveries(), 0);

    // The HTTP control API lists the attempts too.
    let listed: Vec<serde_json::Value> = http
        .get(format!(
            "{}/_sandbox/list-webhook-deliveries",
            sb.root_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 7);
    assert_valid(&sb);
}
