//! The Intuit-facing routes: OAuth token, revoke and authorize endpoints, and the Accounting API
//! under `/v3/company/{realm}/`, behind counters, fault rules and the per-company limits.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use mlc::vendors::form::Form;
use mlc::vendors::quickbooks::models::MINOR_VERSION;
use serde_json::{Map, Value, json};

use super::query;
use super::state::{self, AuthFailure, Change, QboFault};
use super::{Inner, Webhooks, lock};
use crate::authorize::{self, oauth_error, param};
use crate::faults::{Injected, KillSwitch};

type Shared = Arc<Inner>;
type Params = Query<Vec<(String, String)>>;

/// The Fault code of a CDC request reaching back more than 30 days (Intuit's exact code and
/// text are UNCONFIRMED: clients should branch on the 400, not on this).
const CDC_TOO_OLD_CODE: &str = "4002";

pub(super) fn router(inner: Shared) -> Router {
    let company = "/v3/company/{realm}";
    Router::new()
        .route("/oauth2/v1/tokens/bearer", post(token))
        .route("/v2/oauth2/tokens/revoke", post(revoke))
        .route("/connect/oauth2", get(authorize_page))
        // intuit-oauth reads the OpenID discovery document before anything else; Intuit serves
        // it with a trailing slash (the SDK's URL) and without.
        .route("/.well-known/openid_sandbox_configuration", get(discovery))
        .route("/.well-known/openid_sandbox_configuration/", get(discovery))
        .route("/.well-known/openid_configuration", get(discovery))
        .route("/.well-known/openid_configuration/", get(discovery))
        .route("/v1/openid_connect/userinfo", get(userinfo))
        .route(&format!("{company}/customer/{{id}}"), get(get_customer))
        .route(&format!("{company}/{{entity}}"), post(post_entity))
        .route(&format!("{company}/query"), get(query_get).post(query_post))
        .route(&format!("{company}/cdc"), get(cdc))
        .route(&format!("{company}/companyinfo/{{id}}"), get(company_info))
        .layer(middleware::from_fn_with_state(inner.clone(), gate))
        .with_state(inner)
}

/// The route class a path belongs to, for counters and fault rules.
fn route_class(path: &str) -> &'static str {
    if path == "/oauth2/v1/tokens/bearer" {
        return "token";
    }
    if path == "/v2/oauth2/tokens/revoke" {
        return "revoke";
    }
    if path == "/connect/oauth2" {
        return "authorize";
    }
    if path.starts_with("/.well-known/") {
        return "discovery";
    }
    if path == "/v1/openid_connect/userinfo" {
        return "userinfo";
    }
    match company_path(path).map(|(_, rest)| rest.split('/').next().unwrap_or_default()) {
        Some("customer") => "customer",
        Some("query") => "query",
        Some("cdc") => "cdc",
        Some("attachable") => "attachable",
        Some("companyinfo") => "companyinfo",
        _ => "other",
    }
}

/// `(realm, rest)` of `/v3/company/{realm}/{rest}`.
fn company_path(path: &str) -> Option<(&str, &str)> {
    path.strip_prefix("/v3/company/")?.split_once('/')
}

/// Counts the request, applies fault rules, records `minorversion`, enforces the company's
/// limits, and stamps `intuit_tid` on whatever is answered.
async fn gate(
    State(inner): State<Shared>,
    ConnectInfo(kill): ConnectInfo<KillSwitch>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let class = route_class(&path);
    let mut response = answer(&inner, kill, request, next, &path, class).await;
    let tid = uuid::Uuid::new_v4().simple().to_string();
    if let Ok(v) = HeaderValue::from_str(&tid) {
        response.headers_mut().insert("intuit_tid", v);
    }
    response
}

async fn answer(
    inner: &Shared,
    kill: KillSwitch,
    request: Request,
    next: Next,
    path: &str,
    class: &str,
) -> Response {
    let passed = inner
        .gate
        .pass(request.method(), class, &kill, |injected| match injected {
            Injected::Status(status) => injected_status(inner, status),
            Injected::ErrorWith200 { errno, message } => {
                let fault = QboFault {
                    status: 200,
                    code: errno.to_string(),
                    message,
                    detail: String::new(),
                    element: String::new(),
                    kind: "ValidationFault",
                };
                fault_response(inner, &fault)
            }
        })
        .await;
    let key = match passed {
        Ok(key) => key,
        Err(answer) => return answer,
    };
    let Some((realm, _)) = company_path(path) else {
        return next.run(request).await;
    };
    let minor = request.uri().query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "minorversion" && v == MINOR_VERSION)
    });
    if !minor {
        *lock(&inner.without_minorversion).entry(key).or_default() += 1;
    }
    let Some(_guard) = admit(inner, realm) else {
        inner.throttled.fetch_add(1, Ordering::SeqCst);
        return throttled(inner);
    };
    next.run(request).await
}

/// Holds one in-flight slot of a company until the answer is made.
struct InFlight {
    inner: Shared,
    realm: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(load) = lock(&self.inner.load).get_mut(&self.realm) {
            load.in_flight = load.in_flight.saturating_sub(1);
        }
    }
}

/// A slot under the company's per-minute and concurrency limits, or `None` (429).
fn admit(inner: &Shared, realm: &str) -> Option<InFlight> {
    let now = Instant::now();
    let mut loads = lock(&inner.load);
    let load = loads.entry(realm.to_string()).or_default();
    while load
        .window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
    {
        load.window.pop_front();
    }
    let o = &inner.options;
    if load.window.len() >= o.requests_per_minute as usize || load.in_flight >= o.max_concurrent {
        return None;
    }
    load.window.push_back(now);
    load.in_flight += 1;
    Some(InFlight {
        inner: inner.clone(),
        realm: realm.to_string(),
    })
}

/// Intuit's 429: XML even when JSON was asked for (docs/vendors/quickbooks.md §4).
fn throttled(inner: &Inner) -> Response {
    let time = inner.response_time(inner.now());
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<IntuitResponse time=\"{time}\" xmlns=\"http://schema.intuit.com/finance/v3\"><Fault type=\"SERVICE\"><Error code=\"3001\"><Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message><Detail>The request limit was reached.  Try again later</Detail></Error></Fault></IntuitResponse>"
    );
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, "application/xml")],
        body,
    )
        .into_response()
}

/// QuickBooks' answer to an injected status: the XML throttle body, the gateway 401, a JSON
/// `SystemFault`, else the reason phrase.
fn injected_status(inner: &Inner, code: StatusCode) -> Response {
    match code.as_u16() {
        429 => throttled(inner),
        401 => unauthorized(inner, "Token invalid: rejected by an injected fault"),
        500..=599 => {
            let time = inner.response_time(inner.now());
            (
                code,
                axum::Json(json!({"Fault": {"Error": [{"Message": "An application error has occurred while processing your request",
                    "Detail": "System Failure Error: injected by the sandbox", "code": "10000"}],
                    "type": "SystemFault"}, "time": time})),
            )
                .into_response()
        }
        _ => (code, code.canonical_reason().unwrap_or("error").to_string()).into_response(),
    }
}

fn fault_response(inner: &Inner, fault: &QboFault) -> Response {
    let time = inner.response_time(inner.now());
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(fault.body(&time))).into_response()
}

/// `{"<key>": value, "time": …}` with HTTP 200.
fn entity_response(inner: &Inner, key: &str, value: Value) -> Response {
    let time = inner.response_time(inner.now());
    axum::Json(json!({key: value, "time": time})).into_response()
}

/// The gateway's 401: lower-case `fault`/`error` (docs/vendors/quickbooks.md §3.3).
fn unauthorized(inner: &Inner, detail: &str) -> Response {
    let time = inner.response_time(inner.now());
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"fault": {"error": [{
            "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
            "detail": detail, "code": "3200"}], "type": "AUTHENTICATION"}, "time": time})),
    )
        .into_response()
}

/// The bearer token must be valid and belong to `realm`. Errors are boxed: a `Response` is
/// large.
fn authorize(inner: &Inner, headers: &HeaderMap, realm: &str) -> Result<(), Box<Response>> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return Err(Box::new(unauthorized(
            inner,
            "Token invalid: no bearer token in the Authorization header",
        )));
    };
    let now = inner.now();
    let owner = inner.state().authenticate(token, now).map(str::to_string);
    match owner {
        Ok(owner) if owner == realm => Ok(()),
        // Intuit's answer to another company's token is UNCONFIRMED; 403 as for an app not
        // authorised for the company.
        Ok(_) => {
            let time = inner.response_time(now);
            Err(Box::new(
                (
                    StatusCode::FORBIDDEN,
                    axum::Json(json!({"Fault": {"Error": [{
                        "Message": "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                        "Detail": "", "code": "003100"}], "type": "SERVICE"}, "time": time})),
                )
                    .into_response(),
            ))
        }
        Err(AuthFailure::Expired) => Err(Box::new(unauthorized(
            inner,
            "Token expired: the access token is past its expiry",
        ))),
        Err(AuthFailure::Unknown) => Err(Box::new(unauthorized(
            inner,
            "Token invalid: the access token is not known",
        ))),
    }
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, QboFault> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(QboFault::invalid(
            "the request body is not a JSON object".into(),
        )),
        Err(e) => Err(QboFault::invalid(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

// ---- OAuth ------------------------------------------------------------------------------------

/// Whether the Basic credentials are the app's.
fn client_authenticated(inner: &Inner, headers: &HeaderMap) -> bool {
    let decoded = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok());
    let o = &inner.options;
    decoded.is_some_and(|d| d == format!("{}:{}", o.client_id, o.client_secret))
}

async fn token(State(inner): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(form) = Form::parse(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body is not application/x-www-form-urlencoded",
        );
    };
    let grant = form.get("grant_type");
    if grant == Some("refresh_token") {
        inner.refresh_calls.fetch_add(1, Ordering::SeqCst);
    }
    if !client_authenticated(&inner, &headers) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    let now = inner.now();
    let lifetimes = inner.options.lifetimes();
    let issued = match grant {
        Some("authorization_code") => {
            let Some(code) = form.get("code") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "code is missing",
                );
            };
            inner
                .state()
                .exchange_code(code, form.get("redirect_uri"), now, lifetimes)
                .map(|(_, pair)| pair)
        }
        Some("refresh_token") => {
            let Some(refresh) = form.get("refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is missing",
                );
            };
            inner.state().refresh(refresh, now, lifetimes)
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            );
        }
    };
    match issued {
        Ok(pair) => axum::Json(json!({
            "token_type": "bearer",
            "access_token": pair.access_token,
            "expires_in": (pair.expires_at - now).num_seconds(),
            "refresh_token": pair.refresh_token,
            "x_refresh_token_expires_in": (pair.refresh_expires_at - now).num_seconds(),
        }))
        .into_response(),
        Err(refused) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", refused.0),
    }
}

async fn revoke(State(inner): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if !client_authenticated(&inner, &headers) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    let token = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_string));
    let Some(token) = token else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be JSON {\"token\": …}",
        );
    };
    // Unknown tokens are "revoked" too (RFC 7009): nothing to tell the caller.
    inner.state().revoke_by_token(&token);
    StatusCode::OK.into_response()
}

/// The OpenID discovery document (docs/vendors/quickbooks.md §2), every endpoint on this server: Intuit
/// spreads them over several hosts (appcenter, oauth.platform, developer.api, accounts), the
/// sandbox answers them all on one. Built from the request's `Host`, so it names the address
/// the caller reached.
async fn discovery(headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let base = format!("http://{host}");
    (
        StatusCode::OK,
        axum::Json(json!({
            "issuer": format!("{base}/op/v1"),
            "authorization_endpoint": format!("{base}/connect/oauth2"),
            "token_endpoint": format!("{base}/oauth2/v1/tokens/bearer"),
            "userinfo_endpoint": format!("{base}/v1/openid_connect/userinfo"),
            "revocation_endpoint": format!("{base}/v2/oauth2/tokens/revoke"),
            "jwks_uri": format!("{base}/op/v1/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "address", "phone"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
        })),
    )
        .into_response()
}

/// `GET /v1/openid_connect/userinfo` (Bearer access token): the connecting user as Intuit's
/// OpenID userinfo names them. The sandbox has one user per company, so the claims are derived
/// from the company; an unknown or expired token gets 401 as at Intuit.
async fn userinfo(State(inner): State<Shared>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let now = inner.now();
    let state = inner.state();
    let Ok(realm) = state.authenticate(token, now) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token is unknown or expired",
        );
    };
    (
        StatusCode::OK,
        axum::Json(json!({
            "sub": format!("sandbox-user-{realm}"),
            "email": format!("owner-{realm}@example.com"),
            "emailVerified": true,
            "givenName": "Sandbox",
            "familyName": "Owner",
        })),
    )
        .into_response()
}

/// `GET /connect/oauth2`: approves at once for `realm_id` (a sandbox-only parameter) or,
/// without it, the only company; the redirect carries `code`, `realmId` and `state`.
async fn authorize_page(State(inner): State<Shared>, Query(params): Params) -> Response {
    let o = &inner.options;
    authorize::respond(&params, &o.client_id, &o.redirect_uri, |redirect_uri| {
        let now = inner.now();
        let mut db = inner.state();
        let realm = match param(&params, "realm_id") {
            Some(r) => r.to_string(),
            None if db.companies.len() == 1 => {
                db.companies.keys().next().cloned().unwrap_or_default()
            }
            None => {
                return Err(
                    "which company? pass realm_id (the sandbox has none or several)".into(),
                );
            }
        };
        let code = db
            .mint_code(&realm, Some(redirect_uri), now, o.lifetimes())
            .map_err(|e| e.to_string())?;
        Ok(vec![("code", code), ("realmId", realm)])
    })
}

// ---- Accounting -------------------------------------------------------------------------------

/// The company (realm) of a `/v3/company/{realm}/…` request whose bearer token opens it; the
/// extractor rejects with the 401/403 answer otherwise.
struct Company(String);

impl FromRequestParts<Shared> for Company {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, inner: &Shared) -> Result<Self, Response> {
        let realm = company_path(parts.uri.path())
            .map(|(realm, _)| realm.to_string())
            .unwrap_or_default();
        authorize(inner, &parts.headers, &realm).map_err(|r| *r)?;
        Ok(Company(realm))
    }
}

async fn get_customer(
    State(inner): State<Shared>,
    Company(realm): Company,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let customer = inner.state().customer(&realm, &id);
    match customer {
        Some(c) => entity_response(&inner, "Customer", c),
        None => fault_response(&inner, &QboFault::not_found(&format!("Customer {id}"))),
    }
}

/// A write with an optional `requestid`: a replay answers the first result. `write` returns the
/// result and the changes to notify (a failed write may have changed something too).
fn idempotent_write(
    inner: &Shared,
    realm: &str,
    params: &[(String, String)],
    key: &str,
    write: impl FnOnce(&mut state::State) -> (Result<Value, QboFault>, Vec<Change>),
) -> Response {
    let request_id = param(params, "requestid").filter(|r| !r.is_empty());
    // One guard from the replay lookup to `remember`, so two concurrent retries with the same
    // `requestid` cannot both write; it is released before the webhooks are queued.
    let (result, changes) = {
        let mut books = inner.state();
        match request_id.and_then(|rid| books.replayed(realm, rid)) {
            Some(first) => (Ok(first), Vec::new()),
            None => {
                let (result, changes) = write(&mut books);
                if let (Some(rid), Ok(value)) = (request_id, &result) {
                    books.remember(realm, rid, value.clone());
                }
                (result, changes)
            }
        }
    };
    // QuickBooks notifies API changes too (the product must not loop on its own writes).
    inner.enqueue(changes, Webhooks::Send);
    match result {
        Ok(value) => entity_response(inner, key, value),
        Err(fault) => fault_response(inner, &fault),
    }
}

/// `POST customer` (create, or update with `Id`) and `POST attachable`: the writes, with
/// `requestid` replay. Other entities are not served (Fault 610 naming them).
async fn post_entity(
    State(inner): State<Shared>,
    Company(realm): Company,
    Path((_, entity)): Path<(String, String)>,
    Query(params): Params,
    body: Bytes,
) -> Response {
    let key = match entity.as_str() {
        "customer" => "Customer",
        "attachable" => "Attachable",
        other => {
            return fault_response(
                &inner,
                &QboFault::not_found(&format!("entity `{other}` (not served by this sandbox)")),
            );
        }
    };
    idempotent_write(&inner, &realm, &params, key, |books| {
        let body = match json_object(&body) {
            Ok(body) => body,
            Err(fault) => return (Err(fault), Vec::new()),
        };
        let now = inner.now();
        if key == "Attachable" {
            (books.create_attachable(&realm, &body, now), Vec::new())
        } else if body.contains_key("Id") {
            books.update_customer(&realm, &body, now)
        } else {
            match books.create_customer(&realm, &body, now) {
                Ok((value, change)) => (Ok(value), vec![change]),
                Err(f) => (Err(f), Vec::new()),
            }
        }
    })
}

fn run_query(inner: &Shared, realm: &str, statement: &str) -> Response {
    let parsed = match query::parse(statement) {
        Ok(q) => q,
        Err(e) => return fault_response(inner, &QboFault::query(&e)),
    };
    let answer = inner.state().query(realm, &parsed);
    match answer {
        Ok(v) => entity_response(inner, "QueryResponse", v),
        Err(f) => fault_response(inner, &f),
    }
}

async fn query_get(
    State(inner): State<Shared>,
    Company(realm): Company,
    Query(params): Params,
) -> Response {
    run_query(&inner, &realm, param(&params, "query").unwrap_or_default())
}

async fn query_post(State(inner): State<Shared>, Company(realm): Company, body: Bytes) -> Response {
    run_query(&inner, &realm, &String::from_utf8_lossy(&body))
}

async fn cdc(
    State(inner): State<Shared>,
    Company(realm): Company,
    Query(params): Params,
) -> Response {
    let entities: Vec<&str> = param(&params, "entities")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entities.is_empty() {
        return fault_response(&inner, &QboFault::required("entities"));
    }
    if let Some(other) = entities
        .iter()
        .find(|e| !e.eq_ignore_ascii_case("Customer"))
    {
        return fault_response(
            &inner,
            &QboFault::invalid(format!(
                "entities: {other} is not served by this sandbox (Customer only)"
            )),
        );
    }
    let Some(since) = param(&params, "changedSince") else {
        return fault_response(&inner, &QboFault::required("changedSince"));
    };
    let zone = inner.state().zone();
    let Some(since) = query::parse_time(since, zone) else {
        return fault_response(
            &inner,
            &QboFault::invalid(format!("changedSince `{since}` is not a date-time")),
        );
    };
    let now = inner.now();
    if since < now - inner.options.cdc_lookback {
        let fault = QboFault {
            status: 400,
            code: CDC_TOO_OLD_CODE.to_string(),
            message: "Invalid changedSince".to_string(),
            detail: format!(
                "changedSince cannot be more than {} days in the past",
                inner.options.cdc_lookback.num_days()
            ),
            element: "changedSince".to_string(),
            kind: "ValidationFault",
        };
        return fault_response(&inner, &fault);
    }
    let changed = inner
        .state()
        .changed_customers(&realm, since, inner.options.cdc_cap);
    match changed {
        Ok(response) => entity_response(
            &inner,
            "CDCResponse",
            json!([{"QueryResponse": [response]}]),
        ),
        Err(f) => fault_response(&inner, &f),
    }
}

async fn company_info(
    State(inner): State<Shared>,
    Company(realm): Company,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let info = (id == realm)
        .then(|| inner.state().company_info(&realm))
        .flatten();
    match info {
        Some(info) => entity_response(&inner, "CompanyInfo", info),
        None => fault_response(&inner, &QboFault::not_found(&format!("CompanyInfo {id}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(route_class("/oauth2/v1/tokens/bearer"), "token");
        assert_eq!(route_class("/v3/company/1/customer/5"), "customer");
        assert_eq!(route_class("/v3/company/1/customer"), "customer");
        assert_eq!(route_class("/v3/company/1/query"), "query");
        assert_eq!(route_class("/v3/company/1/companyinfo/1"), "companyinfo");
        assert_eq!(route_class("/v3/company/1"), "other");
    }
}
