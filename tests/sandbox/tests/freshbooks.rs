//! Self-tests of the FreshBooks sandbox's bill vendors over HTTP: what a client sees. (The
//! rest of the FreshBooks sandbox is exercised through the connector's client in
//! `tests/tests/freshbooks_client.rs`.)

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the test failing, with the value

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use mlc::vendors::form::Form;
use mlc::vendors::freshbooks::webhook::{SIGNATURE_HEADER, verify};
use mlc_sandbox::freshbooks::*;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::mpsc;

struct Fixture {
    sandbox: FreshbooksSandbox,
    account: SandboxAccount,
    http: reqwest::Client,
}

impl Fixture {
    async fn new() -> Self {
        let sandbox = FreshbooksSandbox::start(FreshbooksSandboxOptions::default()).await;
        let account = sandbox.setup_account("owner@example.com", "Acme Ltd");
        Self {
            sandbox,
            account,
            http: reqwest::Client::new(),
        }
    }

    fn acct(&self) -> &str {
        &self.account.account_id
    }

    fn url(&self, rest: &str) -> String {
        format!(
            "{}/accounting/account/{}/bill_vendors/bill_vendors{rest}",
            self.sandbox.base_url(),
            self.acct()
        )
    }

    /// An authenticated GET of the bill vendors' routes (`rest` after `…/bill_vendors`).
    async fn get(&self, rest: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(self.url(rest))
            .bearer_auth(&self.account.tokens.access_token)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn vendor(&self, id: &str) -> Value {
        let (status, v) = self.get(&format!("/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["response"]["result"]["bill_vendor"].clone()
    }

    async fn listed_ids(&self, query: &str) -> Vec<String> {
        let (status, v) = self.get(query).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["response"]["result"]["bill_vendors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].to_string())
            .collect()
    }

    async fn create(&self, name: &str) -> String {
        self.sandbox
            .create_bill_vendor(
                self.acct(),
                BillVendorSpec {
                    vendor_name: Some(name.into()),
                    ..BillVendorSpec::default()
                },
                Webhooks::Suppress,
            )
            .await
            .unwrap()
    }
}

fn full_spec() -> BillVendorSpec {
    BillVendorSpec {
        vendor_name: Some("Paper Mill Co".into()),
        primary_contact_first_name: Some("Grace".into()),
        primary_contact_last_name: Some("Hopper".into()),
        primary_contact_email: Some("grace@papermill.example".into()),
        phone: Some("+1 416 555 0100".into()),
        website: Some("https://papermill.example".into()),
        street: Some("1 Mill Rd".into()),
        street2: Some("Unit 4".into()),
        city: Some("Toronto".into()),
        province: Some("Ontario".into()),
        postal_code: Some("M5H 3M9".into()),
        country: Some("Canada".into()),
        currency_code: Some("CAD".into()),
    }
}

#[tokio::test]
async fn a_bill_vendor_is_served_with_every_field_and_stays_readable_when_deleted() {
    let f = Fixture::new().await;
    let id = f
        .sandbox
        .create_bill_vendor(f.acct(), full_spec(), Webhooks::Suppress)
        .await
        .unwrap();
    let v = f.vendor(&id).await;
    let expected = json!({
        "vendor_name": "Paper Mill Co", "primary_contact_first_name": "Grace",
        "primary_contact_last_name": "Hopper", "primary_contact_email": "grace@papermill.example",
        "phone": "+1 416 555 0100", "website": "https://papermill.example",
        "street": "1 Mill Rd", "street2": "Unit 4", "city": "Toronto", "province": "Ontario",
        "postal_code": "M5H 3M9", "country": "Canada", "currency_code": "CAD", "vis_state": 0,
    });
    for (field, want) in expected.as_object().unwrap() {
        assert_eq!(&v[field], want, "{field}");
    }
    assert_eq!(v["id"].to_string(), id);
    assert_eq!(v["vendorid"], v["id"]);
    assert!(v["updated"].as_str().is_some_and(|u| u.len() == 19), "{v}");

    // Unset fields are blank, the currency USD.
    let bare = f.vendor(&f.create("Bare").await).await;
    assert_eq!(
        (&bare["phone"], &bare["currency_code"]),
        (&json!(""), &json!("USD"))
    );

    // An update changes only what it gives.
    f.sandbox
        .update_bill_vendor(
            f.acct(),
            &id,
            BillVendorSpec {
                phone: Some("+1 416 555 0199".into()),
                ..BillVendorSpec::default()
            },
            Webhooks::Suppress,
        )
        .await
        .unwrap();
    let v = f.vendor(&id).await;
    assert_eq!(
        (&v["phone"], &v["vendor_name"]),
        (&json!("+1 416 555 0199"), &json!("Paper Mill Co"))
    );

    f.sandbox
        .delete_bill_vendor(f.acct(), &id, Webhooks::Suppress)
        .await
        .unwrap();
    assert_eq!(f.vendor(&id).await["vis_state"], 1);

    let (status, v) = f.get("/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["response"]["errors"][0]["errno"], 1012);
}

#[tokio::test]
async fn bill_vendor_lists_page_filter_by_day_and_hide_deleted_ones() {
    let mut f = Fixture::new().await;
    let a = f.create("A").await;
    let b = f.create("B").await;
    let c = f.create("C").await;
    f.sandbox
        .delete_bill_vendor(f.acct(), &c, Webhooks::Suppress)
        .await
        .unwrap();

    // Active and archived by default; deleted ones only when asked for.
    assert_eq!(f.listed_ids("").await, [a.clone(), b.clone()]);
    assert_eq!(f.listed_ids("?search[vis_state]=1").await, [c]);

    let (_, page) = f.get("?per_page=1&page=2").await;
    let result = &page["response"]["result"];
    assert_eq!((&result["pages"], &result["total"]), (&json!(2), &json!(2)));
    assert_eq!(result["bill_vendors"][0]["id"].to_string(), b);

    // `search[updated_min]` compares US/Eastern days.
    let today = f.vendor(&a).await["updated"].as_str().unwrap()[..10].to_string();
    assert_eq!(
        f.listed_ids(&format!("?search[updated_min]={today}")).await,
        [a.clone(), b.clone()]
    );
    f.sandbox.advance_clock(chrono::Duration::days(2));
    // Access tokens live 12 hours.
    f.account.tokens = f.sandbox.mint_tokens(f.account.identity_id).unwrap();
    f.sandbox
        .update_bill_vendor(f.acct(), &b, BillVendorSpec::default(), Webhooks::Suppress)
        .await
        .unwrap();
    let later = f.vendor(&b).await["updated"].as_str().unwrap()[..10].to_string();
    assert_eq!(
        f.listed_ids(&format!("?search[updated_min]={later}")).await,
        [b]
    );
}

#[tokio::test]
async fn the_control_api_drives_bill_vendors_over_http() {
    let f = Fixture::new().await;
    let base = format!(
        "{}/_sandbox/accounts/{}/bill_vendors",
        f.sandbox.base_url(),
        f.acct()
    );
    let made: Value = f
        .http
        .post(&base)
        .json(&json!({"vendor_name": "Over HTTP", "city": "Ottawa"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!(f.vendor(&id).await["city"], "Ottawa");

    let patched = f
        .http
        .patch(format!("{base}/{id}?webhooks=suppress"))
        .json(&json!({"city": "Montreal"}))
        .send()
        .await
        .unwrap();
    assert!(patched.status().is_success());
    let v = f.vendor(&id).await;
    assert_eq!(
        (&v["city"], &v["vendor_name"]),
        (&json!("Montreal"), &json!("Over HTTP"))
    );

    let deleted = f.http.delete(format!("{base}/{id}")).send().await.unwrap();
    assert!(deleted.status().is_success());
    assert_eq!(f.vendor(&id).await["vis_state"], 1);

    let missing = f
        .http
        .delete(format!("{base}/999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// A webhook receiver: every POST's signature header and body, in order.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(Option<String>, Bytes)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    async fn hook(
        State(tx): State<mpsc::UnboundedSender<(Option<String>, Bytes)>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> &'static str {
        let signature = headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let _ = tx.send((signature, body));
        "ok"
    }
    let app = Router::new().route("/hook", post(hook)).with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), rx)
}

/// The next POST the receiver got; the timeout only bounds a broken sandbox.
async fn next(
    rx: &mut mpsc::UnboundedReceiver<(Option<String>, Bytes)>,
) -> (Option<String>, Bytes) {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a POST arrives")
        .expect("the receiver is running")
}

#[tokio::test]
async fn bill_vendor_changes_send_signed_callbacks() {
    let f = Fixture::new().await;
    let (uri, mut rx) = receiver().await;
    let callbacks = format!(
        "{}/events/account/{}/events/callbacks",
        f.sandbox.base_url(),
        f.acct()
    );
    let token = &f.account.tokens.access_token;
    let registered: Value = f
        .http
        .post(&callbacks)
        .bearer_auth(token)
        .json(&json!({"callback": {"event": "bill_vendor", "uri": uri}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let callback_id = registered["response"]["result"]["callback"]["callbackid"].to_string();
    let (_, handshake) = next(&mut rx).await;
    let verifier = Form::parse(&handshake)
        .unwrap()
        .get("verifier")
        .unwrap()
        .to_string();
    let verified: Value = f
        .http
        .put(format!("{callbacks}/{callback_id}"))
        .bearer_auth(token)
        .json(&json!({"callback": {"verifier": verifier}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verified["response"]["result"]["callback"]["verified"], true);

    // A client change does not match `bill_vendor`; each bill vendor change does, in order.
    f.sandbox
        .create_client(f.acct(), ClientSpec::default(), Webhooks::Send)
        .await
        .unwrap();
    let id = f
        .sandbox
        .create_bill_vendor(f.acct(), full_spec(), Webhooks::Send)
        .await
        .unwrap();
    f.sandbox
        .update_bill_vendor(f.acct(), &id, full_spec(), Webhooks::Send)
        .await
        .unwrap();
    f.sandbox
        .delete_bill_vendor(f.acct(), &id, Webhooks::Send)
        .await
        .unwrap();
    let verifier = SecretString::from(verifier);
    for op in ["create", "update", "delete"] {
        let (signature, body) = next(&mut rx).await;
        let form = Form::parse(&body).unwrap();
        assert_eq!(form.get("name"), Some(format!("bill_vendor.{op}").as_str()));
        assert_eq!(form.get("object_id"), Some(id.as_str()));
        assert_eq!(form.get("account_id"), Some(f.acct()));
        assert!(
            verify(&verifier, &form, &signature.expect("deliveries are signed")),
            "the connector accepts the sandbox's signature of bill_vendor.{op}"
        );
    }
    assert!(rx.try_recv().is_err(), "nothing else was delivered");
}
