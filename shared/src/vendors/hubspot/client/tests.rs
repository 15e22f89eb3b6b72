//! The client against an in-process HTTP server playing HubSpot: request shapes, 207 mapping,
//! the daily hold, the burst headers, tokens. The sandbox tests (tests/sandbox) come later.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap as AxumHeaders, Method as AxumMethod, Response, Uri};
use chrono::{DateTime, Utc};

use super::*;
use crate::ports::ManualClock;
use crate::tokens::TokenError;
use crate::vendors::error::VendorError;

/// What the server got.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: String,
    body: Value,
}

/// An answer to give.
#[derive(Clone)]
struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn answer(status: u16, body: Value) -> Canned {
    Canned {
        status,
        headers: Vec::new(),
        body: if body.is_null() {
            String::new()
        } else {
            body.to_string()
        },
    }
}

#[derive(Default)]
struct Server {
    seen: Mutex<Vec<Seen>>,
    answers: Mutex<VecDeque<Canned>>,
}

impl Server {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn push(&self, canned: Canned) {
        self.answers.lock().unwrap().push_back(canned);
    }
}

async fn handle(
    State(server): State<Arc<Server>>,
    method: AxumMethod,
    uri: Uri,
    headers: AxumHeaders,
    body: String,
) -> Response<Body> {
    server.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    });
    let canned = server
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| answer(500, json!({"message": "no canned answer"})));
    let mut response = Response::builder().status(canned.status);
    for (k, v) in canned.headers {
        response = response.header(k, v);
    }
    response
        .header("content-type", "application/json")
        .body(Body::from(canned.body))
        .unwrap()
}

async fn server() -> (String, Arc<Server>) {
    let state = Arc::new(Server::default());
    let app = Router::new().fallback(handle).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), state)
}

fn options(base: &str) -> ClientOptions {
    ClientOptions {
        api_base: Some(base.to_string()),
        timeout: Duration::from_secs(5),
        max_concurrency: 1,
        prefetch_time_zone: false,
    }
}

fn set(json: &str) -> HubspotCredentials {
    HubspotCredentials::from_json(json).unwrap()
}

/// A private-app client on its own portal (each test its own, so limiters are not shared).
fn private_app(base: &str, portal: u64) -> HubspotClient {
    let s = set(&format!(
        r#"{{"kind":"private_app","access_token":"pat-na1-TOKEN","portal_id":{portal}}}"#
    ));
    HubspotClient::with_static_token(&s, "hs", &options(base)).unwrap()
}

fn input(id: &str, props: &[(&str, &str)]) -> ObjectInput {
    ObjectInput {
        id: id.to_string(),
        properties: props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[tokio::test]
async fn an_upsert_sends_trace_ids_and_maps_a_207_back_whatever_the_order() {
    let (base, server) = server().await;
    let client = private_app(&base, 9001);
    server.push(answer(
        207,
        json!({
            "status": "COMPLETE",
            // Out of order; the first by trace id, the second only by its (lower-cased) email.
            "results": [
                {"id": "3", "properties": {"email": "c@x.com"}, "new": true},
                {"id": "1", "properties": {"email": "a@x.com"}, "new": false, "objectWriteTraceId": "0"},
            ],
            "errors": [
                {"status": "error", "category": "VALIDATION_ERROR", "message": "bad phone",
                 "context": {"objectWriteTraceId": ["1"]}},
                {"status": "error", "category": "VALIDATION_ERROR", "message": "bad name",
                 "context": {"ids": ["D@X.com"]}},
            ],
            "numErrors": 2,
        }),
    ));
    let inputs = [
        input("A@x.com", &[("firstname", "A")]),
        input("b@x.com", &[("phone", "x")]),
        input("C@X.COM", &[]),
        input("d@x.com", &[]),
        input("e@x.com", &[]),
    ];
    let out = client
        .upsert(ObjectType::Contacts, "email", &inputs)
        .await
        .unwrap();
    assert_eq!(out.len(), 5);
    assert_eq!(out[0].as_ref().unwrap().id, "1");
    assert!(
        matches!(&out[1], Err(HubspotError::Api { status: 400, message, .. }) if message == "bad phone")
    );
    assert_eq!(out[2].as_ref().unwrap().new, Some(true));
    assert!(matches!(&out[3], Err(HubspotError::Api { message, .. }) if message == "bad name"));
    assert!(
        matches!(&out[4], Err(e @ HubspotError::UnexpectedBody { status: 207, .. }) if e.is_transient())
    );

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/crm/v3/objects/contacts/batch/upsert");
    assert_eq!(seen[0].authorization, "Bearer pat-na1-TOKEN");
    let sent = &seen[0].body["inputs"];
    assert_eq!(sent[1]["idProperty"], "email");
    assert_eq!(sent[1]["id"], "b@x.com");
    assert_eq!(sent[1]["objectWriteTraceId"], "1");
    assert_eq!(sent[0]["properties"]["firstname"], "A");
}

#[tokio::test]
async fn batches_are_capped_and_ids_checked_before_any_request() {
    let (base, server) = server().await;
    let client = private_app(&base, 9002);
    let many: Vec<ObjectInput> = (0..101)
        .map(|i| input(&format!("{i}@x.com"), &[]))
        .collect();
    assert!(matches!(
        client.upsert(ObjectType::Contacts, "email", &many).await,
        Err(HubspotError::InvalidArgument(_))
    ));
    assert!(matches!(
        client
            .update(ObjectType::Companies, &[input("../1", &[])])
            .await,
        Err(HubspotError::InvalidArgument(_))
    ));
    assert!(matches!(
        client
            .upsert(ObjectType::Contacts, "Email; x", &[input("a@x.com", &[])])
            .await,
        Err(HubspotError::InvalidArgument(_))
    ));
    match client
        .upsert(ObjectType::Contacts, "email", &[input("jane@x.com\n", &[])])
        .await
    {
        Err(HubspotError::InvalidArgument(m)) => assert!(!m.contains("jane"), "{m}"),
        other => panic!("{other:?}"),
    }
    let pairs = [Association {
        from: "1".into(),
        to: "..".into(),
    }];
    assert!(matches!(
        client
            .associate(ObjectType::Contacts, ObjectType::Companies, &pairs)
            .await,
        Err(HubspotError::InvalidArgument(_))
    ));
    assert!(
        client
            .upsert(ObjectType::Contacts, "email", &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(server.seen().is_empty(), "no request was made");
}

#[tokio::test]
async fn a_dated_api_version_moves_object_paths_only() {
    let (base, server) = server().await;
    let s = set(
        r#"{"kind":"service_key","access_token":"k","portal_id":9003,"api_version":"2026-03"}"#,
    );
    let client = HubspotClient::with_static_token(&s, "hs", &options(&base)).unwrap();
    server.push(answer(
        200,
        json!({"results": [{"id": "5", "properties": {"hs_object_id": "5"}}]}),
    ));
    server.push(answer(200, json!({"results": []})));
    let out = client
        .update(ObjectType::LineItems, &[input("5", &[("quantity", "2")])])
        .await
        .unwrap();
    assert_eq!(out[0].as_ref().unwrap().id, "5");
    client.properties(ObjectType::Contacts).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen[0].path, "/crm/objects/2026-03/line_items/batch/update");
    assert_eq!(seen[1].path, "/crm/v3/properties/contacts");
}

#[tokio::test]
async fn a_daily_429_holds_the_portal_until_its_midnight_without_calls() {
    let (base, server) = server().await;
    let clock = Arc::new(ManualClock::new("2026-12-07T22:00:00Z".parse().unwrap()));
    let s = set(r#"{"kind":"private_app","access_token":"t","portal_id":9004}"#);
    let client = HubspotClient::with_static_token(
        &s,
        "hs",
        &ClientOptions {
            prefetch_time_zone: true,
            ..options(&base)
        },
    )
    .unwrap()
    .with_clock(clock.clone());
    // The first call looks the time zone up, then gets the 429.
    server.push(answer(
        200,
        json!({"portalId": 9004, "timeZone": "US/Eastern", "accountType": "STANDARD"}),
    ));
    server.push(answer(
        429,
        json!({"status": "error", "message": "You have reached your daily limit.",
               "errorType": "RATE_LIMIT", "correlationId": "c-d", "policyName": "DAILY"}),
    ));
    let until: DateTime<Utc> = "2026-12-08T05:00:00Z".parse().unwrap();
    let e = client
        .archive(ObjectType::Contacts, &["1".into()])
        .await
        .unwrap_err();
    assert_eq!(e.daily_limit_until(), Some(until));
    assert_eq!(VendorError::hold_until(&e), Some(until));
    assert_eq!(server.seen().len(), 2);
    assert_eq!(server.seen()[0].path, "/account-info/v3/details");

    // Every later call for the portal, even through another client, is held with no request.
    clock.advance(chrono::Duration::hours(6));
    let other = private_app(&base, 9004);
    let other = other.with_clock(clock.clone());
    for e in [
        client.account().await.unwrap_err(),
        other.properties(ObjectType::Companies).await.unwrap_err(),
    ] {
        assert!(
            matches!(e, HubspotError::DailyLimit { until: u } if u == until),
            "{e:?}"
        );
    }
    assert_eq!(server.seen().len(), 2);

    // After midnight the calls go out again.
    clock.advance(chrono::Duration::hours(1));
    server.push(answer(204, Value::Null));
    client
        .archive(ObjectType::Contacts, &["1".into()])
        .await
        .unwrap();
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn an_unknown_zone_holds_an_hour() {
    let (base, server) = server().await;
    let now: DateTime<Utc> = "2026-12-07T22:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(now));
    let client = private_app(&base, 9005).with_clock(clock);
    server.push(answer(
        429,
        json!({"message": "You have reached your daily limit.", "policyName": "DAILY"}),
    ));
    let e = client.account().await.unwrap_err();
    assert_eq!(
        e.daily_limit_until(),
        Some(now + chrono::Duration::hours(1))
    );
}

#[tokio::test]
async fn rate_headers_set_the_burst_and_a_burst_429_waits_the_window() {
    let (base, server) = server().await;
    let client = private_app(&base, 9006);
    assert_eq!(client.limiter.burst().0, 100);
    server.push(Canned {
        headers: vec![
            ("X-HubSpot-RateLimit-Max", "190".into()),
            ("X-HubSpot-RateLimit-Interval-Milliseconds", "10000".into()),
            ("X-HubSpot-RateLimit-Remaining", "189".into()),
        ],
        ..answer(200, json!({"results": []}))
    });
    client.property_groups(ObjectType::Contacts).await.unwrap();
    assert_eq!(client.limiter.burst(), (190, Duration::from_secs(10), 190));
    server.push(Canned {
        headers: vec![("X-HubSpot-RateLimit-Interval-Milliseconds", "10000".into())],
        ..answer(
            429,
            json!({"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                   "errorType": "RATE_LIMIT", "correlationId": "c-t", "policyName": "TEN_SECONDLY_ROLLING"}),
        )
    });
    let e = client
        .property_groups(ObjectType::Contacts)
        .await
        .unwrap_err();
    assert!(e.is_transient());
    assert_eq!(VendorError::retry_after(&e), Some(Duration::from_secs(10)));
    assert_eq!(e.correlation_id(), Some("c-t"));
    server.push(Canned {
        headers: vec![("Retry-After", "3600".into())],
        ..answer(477, json!({"status": "error", "message": "migrating"}))
    });
    let e = client
        .property_groups(ObjectType::Contacts)
        .await
        .unwrap_err();
    assert_eq!(
        VendorError::retry_after(&e),
        Some(Duration::from_secs(3600))
    );
}

#[tokio::test]
async fn read_maps_by_key_and_treats_missing_as_none() {
    let (base, server) = server().await;
    let client = private_app(&base, 9007);
    server.push(answer(
        207,
        json!({"status": "COMPLETE",
               "results": [{"id": "7", "properties": {"email": "b@x.com", "firstname": "B"}}],
               "errors": [{"status": "error", "category": "OBJECT_NOT_FOUND",
                           "message": "not found", "context": {"ids": ["a@x.com"]}}]}),
    ));
    let out = client
        .read(
            ObjectType::Contacts,
            Some("email"),
            &["a@x.com".into(), "B@x.com".into()],
            &["firstname"],
        )
        .await
        .unwrap();
    assert_eq!(out[0], None);
    assert_eq!(out[1].as_ref().unwrap().property("firstname"), Some("B"));
    let sent = &server.seen()[0].body;
    assert_eq!(sent["idProperty"], "email");
    assert_eq!(sent["properties"], json!(["firstname", "email"]));
    // Any other item error fails the read.
    server.push(answer(
        207,
        json!({"results": [], "errors": [{"category": "VALIDATION_ERROR", "message": "no such property"}]}),
    ));
    assert!(
        client
            .read(ObjectType::Contacts, None, &["1".into()], &[])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn associations_map_by_pair_in_either_direction() {
    let (base, server) = server().await;
    let client = private_app(&base, 9008);
    server.push(answer(
        207,
        json!({"status": "COMPLETE",
               "results": [
                   {"from": {"id": "20"}, "to": {"id": "10"}, "associationSpec": {}},
                   {"fromObjectId": 11, "toObjectId": 21, "labels": []},
               ],
               "errors": [{"status": "error", "category": "VALIDATION_ERROR", "message": "no such object",
                           "context": {"ids": ["12"]}}]}),
    ));
    let pairs: Vec<Association> = [("10", "20"), ("11", "21"), ("12", "22")]
        .iter()
        .map(|(a, b)| Association {
            from: a.to_string(),
            to: b.to_string(),
        })
        .collect();
    let out = client
        .associate_labelled(
            ObjectType::Contacts,
            ObjectType::Companies,
            AssociationType::CONTACT_TO_PRIMARY_COMPANY,
            &pairs,
        )
        .await
        .unwrap();
    assert!(out[0].is_ok() && out[1].is_ok());
    assert!(out[2].is_err());
    let seen = &server.seen()[0];
    assert_eq!(
        seen.path,
        "/crm/v4/associations/contacts/companies/batch/create"
    );
    assert_eq!(
        seen.body["inputs"][0]["types"][0],
        json!({"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1})
    );
}

#[tokio::test]
async fn token_info_for_each_kind() {
    let (base, server) = server().await;
    let client = private_app(&base, 9009);
    server.push(answer(
        200,
        json!({"userId": 1, "hubId": 9009, "appId": 77, "scopes": ["crm.objects.contacts.write"]}),
    ));
    let info = client.token_info().await.unwrap();
    assert_eq!((info.hub_id, info.app_id), (9009, Some(77)));
    assert_eq!(info.scopes, vec!["crm.objects.contacts.write".to_string()]);
    let seen = &server.seen()[0];
    assert_eq!(seen.path, "/oauth/v2/private-apps/get/access-token-info");
    assert_eq!(seen.body, json!({"tokenKey": "pat-na1-TOKEN"}));
    assert_eq!(seen.authorization, "Bearer pat-na1-TOKEN");

    let s = set(
        r#"{"kind":"oauth","client_id":"c","client_secret":"s","access_token":"oa-1",
        "refresh_token":"r","portal_id":9010}"#,
    );
    let oauth = HubspotClient::with_static_token(&s, "hs", &options(&base)).unwrap();
    server.push(answer(
        200,
        json!({"token": "oa-1", "hub_id": 9010, "app_id": 5, "scopes": ["oauth"], "expires_in": 1700}),
    ));
    let info = oauth.token_info().await.unwrap();
    assert_eq!((info.hub_id, info.app_id), (9010, Some(5)));
    assert_eq!(server.seen()[1].path, "/oauth/v1/access-tokens/oa-1");
}

/// Tokens that change on refresh, counting refreshes.
struct Rotating {
    refreshes: Mutex<u32>,
}

#[async_trait]
impl AccessTokens for Rotating {
    async fn access_token(&self, _name: &str) -> Result<SecretString, TokenError> {
        Ok(format!("tok-{}", *self.refreshes.lock().unwrap()).into())
    }

    async fn refresh_after_unauthorized(
        &self,
        name: &str,
        _rejected: &SecretString,
    ) -> Result<SecretString, TokenError> {
        *self.refreshes.lock().unwrap() += 1;
        self.access_token(name).await
    }
}

#[tokio::test]
async fn an_oauth_401_refreshes_once_and_retries_but_a_static_401_is_final() {
    let (base, server) = server().await;
    let s = set(
        r#"{"kind":"oauth","client_id":"c","client_secret":"s","access_token":"a",
        "refresh_token":"r","portal_id":9011}"#,
    );
    let tokens = Arc::new(Rotating {
        refreshes: Mutex::new(0),
    });
    let client = HubspotClient::new(&s, tokens.clone(), "hs", &options(&base)).unwrap();
    server.push(answer(
        401,
        json!({"status": "error", "message": "expired", "category": "EXPIRED_AUTHENTICATION"}),
    ));
    server.push(answer(200, json!({"results": []})));
    client.properties(ObjectType::Contacts).await.unwrap();
    assert_eq!(*tokens.refreshes.lock().unwrap(), 1);
    let auth: Vec<String> = server
        .seen()
        .iter()
        .map(|s| s.authorization.clone())
        .collect();
    assert_eq!(auth, ["Bearer tok-0", "Bearer tok-1"]);

    let fixed = private_app(&base, 9012);
    server.push(answer(
        401,
        json!({"status": "error", "message": "revoked"}),
    ));
    let e = fixed.properties(ObjectType::Contacts).await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert_eq!(server.seen().len(), 3, "no retry for a static token");
}

#[tokio::test]
async fn transport_failures_do_not_quote_the_url() {
    let s = set(
        r#"{"kind":"oauth","client_id":"c","client_secret":"s","access_token":"SECRET-TOKEN",
        "refresh_token":"r","portal_id":9013}"#,
    );
    // Nothing listens on port 9.
    let client =
        HubspotClient::with_static_token(&s, "hs", &options("http://127.0.0.1:9")).unwrap();
    let e = client.token_info().await.unwrap_err();
    assert!(e.is_transient());
    assert!(!e.to_string().contains("SECRET"), "{e}");
    assert!(!format!("{e:?}").contains("SECRET"));
}

#[test]
fn assign_prefers_results_then_errors_then_unmatched_errors() {
    let err = |m: &str| ErrorBody {
        message: Some(m.into()),
        ..ErrorBody::default()
    };
    let out = assign(
        207,
        4,
        vec![(vec![0], "r0"), (vec![1], "r1"), (vec![9], "stray")],
        vec![(vec![1, 2], err("e12")), (vec![], err("loose"))],
    );
    assert_eq!(out[0].as_ref().unwrap(), &"r0");
    assert_eq!(out[1].as_ref().unwrap(), &"r1", "a result wins");
    assert!(matches!(&out[2], Err(HubspotError::Api { message, .. }) if message == "e12"));
    assert!(matches!(&out[3], Err(HubspotError::Api { message, .. }) if message == "loose"));
    let out = assign::<()>(200, 1, vec![], vec![]);
    assert!(matches!(
        &out[0],
        Err(HubspotError::UnexpectedBody { status: 200, .. })
    ));
    let not_found = item_error(ErrorBody {
        category: Some("OBJECT_NOT_FOUND".into()),
        ..ErrorBody::default()
    });
    assert!(not_found.is_not_found());
}

#[test]
fn base_urls_must_be_http() {
    let s = set(r#"{"kind":"private_app","access_token":"t","portal_id":1}"#);
    assert!(HubspotClient::with_static_token(&s, "hs", &options("mailto:x@y")).is_err());
    let c = HubspotClient::with_static_token(&s, "hs", &ClientOptions::default()).unwrap();
    assert_eq!(c.base_url(), "https://api.hubapi.com/");
    assert!(!format!("{c:?}").contains("\"t\""));
}
