//! Self-tests of the QuickBooks sandbox over HTTP: what a client sees.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the test failing, with the value

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use mlc::vendors::quickbooks::webhook::verify;
use mlc_sandbox::quickbooks::*;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

struct Fixture {
    sandbox: QuickbooksSandbox,
    company: SandboxCompany,
    http: reqwest::Client,
}

impl Fixture {
    async fn new(options: QuickbooksSandboxOptions) -> Self {
        let sandbox = QuickbooksSandbox::start(options).await;
        let company = sandbox.setup_company("Acme Books");
        Self {
            sandbox,
            company,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, rest: &str) -> String {
        let sep = if rest.contains('?') { '&' } else { '?' };
        format!(
            "{}/v3/company/{}/{rest}{sep}minorversion=75",
            self.sandbox.base_url(),
            self.company.realm_id
        )
    }

    async fn get(&self, rest: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(self.url(rest))
            .bearer_auth(&self.company.tokens.access_token)
            .send()
            .await
            .unwrap();
        assert!(r.headers().contains_key("intuit_tid"));
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, rest: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(rest))
            .bearer_auth(&self.company.tokens.access_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.sandbox.token_url())
            .basic_auth(&self.company.client_id, Some(&self.company.client_secret))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    async fn customer(&self, seed: &str) -> String {
        self.sandbox
            .create_customer(
                &self.company.realm_id,
                CustomerSeed {
                    display_name: Some(seed.to_string()),
                    email: Some(format!("{}@example.com", seed.to_lowercase())),
                    ..Default::default()
                },
                Webhooks::Suppress,
            )
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn customers_read_with_bearer_tokens_that_expire_and_refresh_with_rotation() {
    let mut f = Fixture::new(QuickbooksSandboxOptions::default()).await;
    let id = f.customer("Jane").await;
    let (status, body) = f.get(&format!("customer/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["Customer"]["PrimaryEmailAddr"]["Address"],
        "jane@example.com"
    );
    assert_eq!(body["Customer"]["SyncToken"], "0");
    assert!(body["time"].is_string());

    let (status, body) = f.get("customer/999").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["Fault"]["Error"][0]["code"], "610");

    f.sandbox.expire_access_tokens();
    let (status, body) = f.get(&format!("customer/{id}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["fault"]["error"][0]["code"], "3200");

    let old_refresh = f.company.tokens.refresh_token.clone();
    let (status, tokens) = f
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &old_refresh),
        ])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["x_refresh_token_expires_in"], 8_726_400);
    assert_ne!(tokens["refresh_token"], old_refresh.as_str());
    f.company.tokens.access_token = tokens["access_token"].as_str().unwrap().to_string();
    assert_eq!(f.get(&format!("customer/{id}")).await.0, StatusCode::OK);

    // The rotated-out refresh token works for 24 hours, then is invalid_grant.
    f.sandbox.advance_clock(chrono::Duration::hours(25));
    let (status, body) = f
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &old_refresh),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(f.sandbox.refresh_calls(), 2);

    // Wrong client credentials.
    let r = f
        .http
        .post(f.sandbox.token_url())
        .basic_auth("someone", Some("else"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A request without minorversion is served but counted (the clock moved a day: a new
    // connection's tokens).
    f.company.tokens = f.sandbox.mint_tokens(&f.company.realm_id).unwrap();
    let r = f
        .http
        .get(format!(
            "{}/v3/company/{}/customer/{id}",
            f.sandbox.base_url(),
            f.company.realm_id
        ))
        .bearer_auth(&f.company.tokens.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let stats = f.sandbox.stats();
    assert_eq!(stats.minorversion_violations, 1);
    assert_eq!(stats.requests_without_minorversion["GET customer"], 1);
}

#[tokio::test]
async fn authorize_redirects_with_a_code_the_token_endpoint_exchanges_once() {
    let f = Fixture::new(QuickbooksSandboxOptions::default()).await;
    let o = QuickbooksSandboxOptions::default();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects
        .get(format!("{}/connect/oauth2", f.sandbox.base_url()))
        .query(&[
            ("client_id", o.client_id.as_str()),
            ("redirect_uri", o.redirect_uri.as_str()),
            ("state", "s1"),
            ("response_type", "code"),
            ("scope", "com.intuit.quickbooks.accounting"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let location = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "s1");
    assert_eq!(q["realmId"], f.company.realm_id);
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", q["code"].as_str()),
        ("redirect_uri", o.redirect_uri.as_str()),
    ];
    assert_eq!(f.token(&exchange).await.0, StatusCode::OK);
    let (status, body) = f.token(&exchange).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let code = f.sandbox.mint_code(&f.company.realm_id).unwrap();
    let (status, body) = f
        .token(&[("grant_type", "authorization_code"), ("code", &code)])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A webhook receiver that records bodies and headers and answers 200.
async fn receiver() -> (String, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn sparse_updates_lock_on_sync_token_and_notify_like_quickbooks() {
    let f = Fixture::new(QuickbooksSandboxOptions::default()).await;
    let (url, seen) = receiver().await;
    f.sandbox
        .set_webhook(&url, "verifier", PayloadFormat::CloudEvents);
    let realm = f.company.realm_id.clone();

    // A create through the API, then a sparse update.
    let (status, created) = f
        .post(
            "customer",
            json!({"DisplayName": "Jo", "PrimaryEmailAddr": {"Address": "jo@example.com"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["Customer"]["Id"].as_str().unwrap().to_string();
    let (status, dup) = f.post("customer", json!({"DisplayName": "jo"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(dup["Fault"]["Error"][0]["code"], "6240");
    let (status, updated) = f
        .post(
            "customer",
            json!({"Id": id, "SyncToken": "0", "sparse": true, "Notes": "n"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["Customer"]["SyncToken"], "1");
    assert_eq!(
        updated["Customer"]["PrimaryEmailAddr"]["Address"],
        "jo@example.com"
    );

    // Someone edits it in QuickBooks just before our next update.
    f.sandbox
        .concurrent_edit_before_next_update(&realm, &id, 1)
        .unwrap();
    let (status, stale) = f
        .post(
            "customer",
            json!({"Id": id, "SyncToken": "1", "sparse": true, "Active": false}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(stale["Fault"]["Error"][0]["code"], "5010");
    assert_eq!(stale["Fault"]["Error"][0]["Message"], "Stale Object Error");
    let (status, _) = f
        .post(
            "customer",
            json!({"Id": id, "SyncToken": "2", "sparse": true, "Active": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Inactive but still readable by id.
    assert_eq!(
        f.get(&format!("customer/{id}")).await.1["Customer"]["Active"],
        false
    );

    let other = f.customer("Kim").await;
    f.sandbox
        .merge_customers(&realm, &id, &other, Webhooks::Send)
        .await
        .unwrap();
    f.sandbox.flush_webhooks().await;
    let deliveries = f.sandbox.deliveries();
    let ops: Vec<&str> = deliveries.iter().map(|d| d.operation.as_str()).collect();
    assert_eq!(ops, ["Create", "Update", "Update", "Update", "Merge"]);
    assert!(deliveries.iter().all(|d| d.status == Some(200)));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 5);
    let token = SecretString::from("verifier");
    for (headers, body) in seen.iter() {
        assert_eq!(headers["content-type"], "application/cloudevents+json");
        assert!(verify(
            &token,
            body,
            headers["intuit-signature"].to_str().unwrap()
        ));
    }
    let merge: Value = serde_json::from_slice(&seen[4].1).unwrap();
    assert_eq!(merge[0]["type"], "qbo.customer.merged.v1");
    assert_eq!(merge[0]["data"]["deletedid"], other);

    // CDC shows the survivor and the merged-away customer as a deleted stub.
    let since = (f.sandbox.now() - chrono::Duration::hours(1)).to_rfc3339();
    let (status, cdc) = f
        .get(&format!(
            "cdc?entities=Customer&changedSince={}",
            urlencode(&since)
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{cdc}");
    let customers = cdc["CDCResponse"][0]["QueryResponse"][0]["Customer"]
        .as_array()
        .unwrap();
    assert!(
        customers
            .iter()
            .any(|c| c["Id"] == other.as_str() && c["status"] == "Deleted")
    );
    let too_old = (f.sandbox.now() - chrono::Duration::days(31)).to_rfc3339();
    let (status, _) = f
        .get(&format!(
            "cdc?entities=Customer&changedSince={}",
            urlencode(&too_old)
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn queries_notes_and_idempotent_writes() {
    let f = Fixture::new(QuickbooksSandboxOptions::default()).await;
    let a = f.customer("Ann").await;
    f.customer("Bob").await;
    f.sandbox
        .deactivate_customer(&f.company.realm_id, &a, Webhooks::Suppress)
        .await
        .unwrap();
    let q = |s: &str| format!("query?query={}", urlencode(s));
    let (_, r) = f
        .get(&q(
            "SELECT * FROM Customer WHERE PrimaryEmailAddr = 'ann@example.com'",
        ))
        .await;
    assert_eq!(r["QueryResponse"], json!({}));
    let (_, r) = f
        .get(&q("select * from Customer where PrimaryEmailAddr = 'ann@example.com' and Active in (true, false)"))
        .await;
    assert_eq!(r["QueryResponse"]["Customer"][0]["Id"], a.as_str());
    let (status, r) = f.get(&q("SELECT * FROM Customer WHERE")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(r["Fault"]["Error"][0]["code"], "4000");

    // POST query with an application/text body.
    let r: Value = f
        .http
        .post(f.url("query"))
        .bearer_auth(&f.company.tokens.access_token)
        .header("content-type", "application/text")
        .body("SELECT COUNT(*) FROM Customer WHERE Active IN (true, false)")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["QueryResponse"]["totalCount"], 2);

    let note = json!({"AttachableRef": [{"EntityRef": {"type": "Customer", "value": a}, "IncludeOnSend": false}],
        "Note": "Mailchimp: opened 'Spring Sale'"});
    let (s1, first) = f.post("attachable?requestid=r-1", note.clone()).await;
    let (s2, again) = f.post("attachable?requestid=r-1", note.clone()).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(first["Attachable"]["Id"], again["Attachable"]["Id"]);
    assert_eq!(
        f.sandbox.notes_of(&f.company.realm_id, &a),
        ["Mailchimp: opened 'Spring Sale'"]
    );
    let (_, r) = f
        .get(&q(&format!("SELECT * FROM Attachable WHERE AttachableRef.EntityRef.Type = 'customer' AND AttachableRef.EntityRef.value = '{a}'")))
        .await;
    assert_eq!(
        r["QueryResponse"]["Attachable"].as_array().unwrap().len(),
        1
    );

    let (status, info) = f.get(&format!("companyinfo/{}", f.company.realm_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["CompanyInfo"]["CompanyName"], "Acme Books");
}

#[tokio::test]
async fn limits_answer_xml_429_and_faults_apply_per_route() {
    let f = Fixture::new(QuickbooksSandboxOptions {
        requests_per_minute: 3,
        ..Default::default()
    })
    .await;
    let path = format!("companyinfo/{}", f.company.realm_id);
    for _ in 0..3 {
        assert_eq!(f.get(&path).await.0, StatusCode::OK);
    }
    let r = f
        .http
        .get(f.url(&path))
        .bearer_auth(&f.company.tokens.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["content-type"], "application/xml");
    assert!(r.text().await.unwrap().contains("ThrottleExceeded"));
    assert_eq!(f.sandbox.stats().throttled, 1);

    let g = Fixture::new(QuickbooksSandboxOptions::default()).await;
    g.sandbox
        .inject(Fault::status(503).times(1).on_route("query"));
    g.sandbox
        .inject(Fault::drop_connection().times(1).on_route("customer"));
    let q = format!("query?query={}", urlencode("SELECT * FROM Customer"));
    assert_eq!(g.get(&q).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(g.get(&q).await.0, StatusCode::OK);
    let dropped = g
        .http
        .get(g.url("customer/1"))
        .bearer_auth(&g.company.tokens.access_token)
        .send()
        .await;
    assert!(dropped.is_err());
    assert_eq!(g.sandbox.request_count("GET customer"), 1);
}
