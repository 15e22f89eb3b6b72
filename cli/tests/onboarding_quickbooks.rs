//! `connect quickbooks` as a user runs it: the real binary against a small fake of Intuit's
//! authorize page (redirects with `code`, `state` and `realmId`) and token endpoint (checks the
//! Basic client authentication and the form; refuses unknown codes with `invalid_grant`).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the test failing, with the value

mod common;

use std::collections::HashMap;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use common::{BIN, Scratch, free_port};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const CLIENT_ID: &str = "qb-client";
const CLIENT_SECRET: &str = "qb-secret";
/// base64("qb-client:qb-secret")
const BASIC: &str = "Basic cWItY2xpZW50OnFiLXNlY3JldA==";
const GOOD_CODE: &str = "good-code";
const REALM: &str = "9130355";

/// What the fake token endpoint saw: one entry per call, `Ok` for a well-formed request.
#[derive(Clone, Default)]
struct Fake {
    calls: Arc<Mutex<Vec<Result<(), String>>>>,
    redirect_uri: Arc<Mutex<String>>,
}

/// Intuit's authorize page, already approved: back to `redirect_uri` with a code and the
/// company. The test's "browser" may ask for another code (`fake_code`) or no realm.
async fn authorize(Query(q): Query<HashMap<String, String>>) -> Response {
    let ok = q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && q.get("response_type").map(String::as_str) == Some("code")
        && q.get("scope").map(String::as_str) == Some("com.intuit.quickbooks.accounting");
    let (Some(redirect), Some(state), true) = (q.get("redirect_uri"), q.get("state"), ok) else {
        return (StatusCode::BAD_REQUEST, "bad authorize request").into_response();
    };
    let mut to = url::Url::parse(redirect).unwrap();
    to.query_pairs_mut()
        .append_pair(
            "code",
            q.get("fake_code").map(String::as_str).unwrap_or(GOOD_CODE),
        )
        .append_pair("state", state);
    if !q.contains_key("no_realm") {
        to.query_pairs_mut().append_pair("realmId", REALM);
    }
    Redirect::to(to.as_str()).into_response()
}

async fn token(State(fake): State<Fake>, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let h = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let expected_redirect = fake.redirect_uri.lock().unwrap().clone();
    let problem = if h(header::AUTHORIZATION) != Some(BASIC) {
        Some((StatusCode::UNAUTHORIZED, "invalid_client"))
    } else if h(header::ACCEPT) != Some("application/json")
        || form.get("grant_type").map(String::as_str) != Some("authorization_code")
        || form.get("redirect_uri") != Some(&expected_redirect)
    {
        Some((StatusCode::BAD_REQUEST, "invalid_request"))
    } else if form.get("code").map(String::as_str) != Some(GOOD_CODE) {
        Some((StatusCode::BAD_REQUEST, "invalid_grant"))
    } else {
        None
    };
    fake.calls
        .lock()
        .unwrap()
        .push(problem.map_or(Ok(()), |(_, e)| Err(e.to_string())));
    match problem {
        Some((status, error)) => (
            status,
            axum::Json(serde_json::json!({"error": error, "error_description": "Token invalid"})),
        )
            .into_response(),
        None => axum::Json(serde_json::json!({
            "token_type": "bearer",
            "access_token": "qb-access",
            "refresh_token": "qb-refresh",
            "expires_in": 3600,
            "x_refresh_token_expires_in": 8726400
        }))
        .into_response(),
    }
}

async fn start_fake(fake: Fake) -> String {
    let app = Router::new()
        .route("/connect/oauth2", get(authorize))
        .route("/oauth2/v1/tokens/bearer", post(token))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Runs `connect quickbooks` (with `flags` added) against the fake, approves in the "browser"
/// with `extra` added to the authorize address, and returns the command's output.
async fn connect(
    fake: &Fake,
    base: &str,
    scratch: &Scratch,
    extra: &str,
    flags: &[&str],
) -> Output {
    let port = free_port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    *fake.redirect_uri.lock().unwrap() = redirect_uri.clone();
    let authorize_url = format!("{base}/connect/oauth2");
    let token_url = format!("{base}/oauth2/v1/tokens/bearer");
    let (port_arg, db) = (port.to_string(), scratch.db_arg());
    let mut child = Command::new(BIN)
        .args([
            "connect",
            "quickbooks",
            "--name",
            "qb",
            "--client-id",
            CLIENT_ID,
            "--port",
            &port_arg,
            "--no-browser",
            "--timeout",
            "30",
            "--authorize-url",
            &authorize_url,
            "--token-url",
            &token_url,
            "--db",
            &db,
        ])
        .args(flags)
        .env_remove("QUICKBOOKS_AUTHORIZE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(format!("{CLIENT_SECRET}\n").as_bytes())
        .await
        .unwrap();
    drop(input);

    let (url, mut stderr) = common::printed_url(&mut child).await;
    assert!(url.starts_with(&authorize_url), "{url}");
    let parsed = url::Url::parse(&url).unwrap();
    let param = |k: &str| {
        parsed
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(
        param("redirect_uri").as_deref(),
        Some(redirect_uri.as_str())
    );
    assert!(param("state").is_some_and(|s| s.len() >= 16));

    // The "browser": the fake approves at once and redirects to the CLI's listener.
    let page = reqwest::get(format!("{url}{extra}")).await.unwrap();
    assert_eq!(page.status(), 200, "{}", page.url());

    let mut out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the command finished")
        .unwrap();
    // The rest of standard error (the reader took it over).
    let mut rest = Vec::new();
    while let Ok(Some(line)) = stderr.next_line().await {
        rest.extend_from_slice(line.as_bytes());
        rest.push(b'\n');
    }
    out.stderr = rest;
    out
}

#[tokio::test]
async fn connect_quickbooks_stores_the_tokens_and_the_realm_id() {
    let fake = Fake::default();
    let base = start_fake(fake.clone()).await;
    let scratch = Scratch::new("ok");
    let out = connect(&fake, &base, &scratch, "", &[]).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(REALM), "{stdout}");
    assert!(
        stdout.contains("source.account") && stdout.contains("target.realm_id"),
        "{stdout}"
    );
    assert!(!stdout.contains("qb-access") && !stderr.contains("qb-access"));
    assert_eq!(*fake.calls.lock().unwrap(), vec![Ok(())]);

    let stored: serde_json::Value =
        serde_json::from_str(&scratch.secret("credentials/qb").await.expect("stored")).unwrap();
    assert_eq!(stored["access_token"], "qb-access");
    assert_eq!(stored["refresh_token"], "qb-refresh");
    assert_eq!(stored["realm_id"], REALM);
    assert_eq!(stored["client_id"], CLIENT_ID);
    assert_eq!(stored["client_secret"], CLIENT_SECRET);
    assert_eq!(stored["redirect_uri"], *fake.redirect_uri.lock().unwrap());
    assert_eq!(stored["environment"], "production", "the default");
    let at = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(stored[k].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let now = chrono::Utc::now();
    assert!(
        (at("expires_at") - now - chrono::Duration::hours(1))
            .num_seconds()
            .abs()
            < 120
    );
    assert!(at("refresh_expires_at") - now > chrono::Duration::days(100));
    // What was stored is a credential set the token manager and the clients can read.
    mlc::tokens::StoredTokens::parse(&secrecy::SecretString::from(stored.to_string()))
        .expect("a credential set");
    let set = mlc::vendors::quickbooks::credentials::QuickbooksCredentials::from_json(
        &stored.to_string(),
    )
    .expect("a QuickBooks credential set");
    assert_eq!(
        set.environment,
        mlc::vendors::quickbooks::credentials::Environment::Production
    );
}

#[tokio::test]
async fn a_sandbox_company_is_stored_with_its_environment() {
    let fake = Fake::default();
    let base = start_fake(fake.clone()).await;
    let scratch = Scratch::new("sandbox-env");
    // A set marked for reconnection before: connecting again rewrites it whole.
    let stale = serde_json::json!({
        "access_token": "old", "refresh_token": "old", "realm_id": REALM,
        "needs_reconnect": {"since": "2026-01-01T00:00:00Z", "reason": "invalid_grant"}
    });
    scratch
        .put_secret("credentials/qb", &stale.to_string())
        .await;
    let out = connect(&fake, &base, &scratch, "", &["--environment", "sandbox"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("sandbox company"), "{stdout}");
    let stored: serde_json::Value =
        serde_json::from_str(&scratch.secret("credentials/qb").await.expect("stored")).unwrap();
    assert_eq!(stored["environment"], "sandbox");
    assert_eq!(stored["access_token"], "qb-access");
    assert!(stored.get("needs_reconnect").is_none(), "{stored}");
}

#[tokio::test]
async fn environment_is_refused_for_other_vendors_and_values() {
    let scratch = Scratch::new("env-refused");
    let db = scratch.db_arg();
    let other = common::run(
        &[
            "connect",
            "mailchimp",
            "--name",
            "mc",
            "--environment",
            "sandbox",
            "--db",
            &db,
        ],
        "",
    )
    .await;
    assert!(!other.status.success());
    assert!(
        common::text(&other).1.contains("QuickBooks only"),
        "{}",
        common::text(&other).1
    );
    let bad = common::run(
        &[
            "connect",
            "quickbooks",
            "--name",
            "qb",
            "--environment",
            "staging",
            "--db",
            &db,
        ],
        "",
    )
    .await;
    assert!(!bad.status.success());
    let stderr = common::text(&bad).1;
    assert!(
        stderr.contains("production") && stderr.contains("sandbox"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_refused_code_exits_non_zero_and_says_why() {
    let fake = Fake::default();
    let base = start_fake(fake.clone()).await;
    let scratch = Scratch::new("refused");
    let out = connect(&fake, &base, &scratch, "&fake_code=used-code", &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("QuickBooks refused the authorization code")
            && stderr.contains("invalid_grant"),
        "{stderr}"
    );
    assert_eq!(
        *fake.calls.lock().unwrap(),
        vec![Err("invalid_grant".to_string())]
    );
    assert_eq!(scratch.secret("credentials/qb").await, None);
}

#[tokio::test]
async fn a_redirect_without_the_company_does_not_spend_the_code() {
    let fake = Fake::default();
    let base = start_fake(fake.clone()).await;
    let scratch = Scratch::new("norealm");
    let out = connect(&fake, &base, &scratch, "&no_realm=1", &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("realmId"), "{stderr}");
    assert!(fake.calls.lock().unwrap().is_empty());
    assert_eq!(scratch.secret("credentials/qb").await, None);
}
