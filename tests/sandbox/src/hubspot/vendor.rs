//! The HubSpot-facing router and the gate every request passes first: counters, fault rules
//! (rendered in HubSpot's error shape), Bearer authentication, forced 429 storms and the rate
//! limits, with the `X-HubSpot-RateLimit-*` headers stamped on the answer. Also the request
//! helpers the route modules share (JSON bodies, object types, scopes, batch inputs).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use mlc::vendors::hubspot::BATCH_LIMIT;
use mlc::vendors::hubspot::models::ObjectType;
use serde_json::{Value, json};

use super::auth::{self, Caller};
use super::errors::{HsError, Policy};
use super::state::{PortalInfo, parse_type, scope_segment};
use super::{Inner, associations, limits, lock, objects, properties_api, search};
use crate::faults::{Injected, KillSwitch};

type Shared = Arc<Inner>;

pub(super) fn router(inner: Shared) -> Router {
    let mut router = Router::new()
        .route("/oauth/v1/token", post(auth::token))
        .route("/oauth/authorize", get(auth::authorize))
        .route(
            "/oauth/v2/private-apps/get/access-token-info",
            post(auth::access_token_info),
        )
        .route(
            "/oauth/v1/access-tokens/{token}",
            get(auth::access_token_meta),
        )
        .route("/account-info/v3/details", get(auth::details))
        .route(
            "/account-info/v3/api-usage/daily/private-apps",
            get(auth::daily_usage),
        );
    // The numbered path and the date-based one (`/crm/objects/2026-03/contacts`, §0).
    for base in ["/crm/v3/objects/{type}", "/crm/objects/{version}/{type}"] {
        router = router
            .route(base, get(objects::list).post(objects::create))
            .route(
                &format!("{base}/{{id}}"),
                get(objects::read)
                    .patch(objects::update)
                    .delete(objects::archive),
            )
            .route(&format!("{base}/batch/{{op}}"), post(objects::batch))
            .route(&format!("{base}/search"), post(search::search));
    }
    let pair = "/crm/v4/associations/{from}/{to}";
    let object = "/crm/v4/objects/{type}/{id}/associations";
    let props = "/crm/v3/properties/{type}";
    router
        .route(
            &format!("{pair}/batch/associate/default"),
            post(associations::batch_default),
        )
        .route(&format!("{pair}/batch/{{op}}"), post(associations::batch))
        .route(&format!("{pair}/labels"), get(associations::labels))
        .route(
            &format!("{object}/default/{{to_type}}/{{to_id}}"),
            put(associations::put_default),
        )
        .route(
            &format!("{object}/{{to_type}}/{{to_id}}"),
            put(associations::put_labelled).delete(associations::delete),
        )
        .route(&format!("{object}/{{to_type}}"), get(associations::list))
        .route(
            props,
            get(properties_api::list).post(properties_api::create),
        )
        .route(
            &format!("{props}/batch/create"),
            post(properties_api::batch_create),
        )
        .route(
            &format!("{props}/groups"),
            get(properties_api::groups).post(properties_api::create_group),
        )
        .route(
            &format!("{props}/{{name}}"),
            get(properties_api::read)
                .patch(properties_api::update)
                .delete(properties_api::archive),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(inner.clone(), gate))
        .with_state(inner)
}

async fn not_found() -> Response {
    HsError::new(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "resource not found",
    )
    .into_response()
}

/// `(route class, route kind)`: the class picks fault rules and limits (`oauth`, `account`,
/// `objects`, `batch`, `search`, `associations`, `properties`), the kind is the counter key
/// (`contacts batch/upsert`, `associations batch/read`, …).
pub(crate) fn classify(method: &str, path: &str) -> (&'static str, String) {
    let s: Vec<&str> = path.trim_matches('/').split('/').collect();
    let objects = |t: &str, rest: &[&str]| -> (&'static str, String) {
        match rest {
            [] if method == "GET" => ("objects", format!("{t} list")),
            [] => ("objects", format!("{t} create")),
            ["batch", op] => ("batch", format!("{t} batch/{op}")),
            ["search"] => ("search", format!("{t} search")),
            [_] => (
                "objects",
                format!(
                    "{t} {}",
                    match method {
                        "PATCH" => "update",
                        "DELETE" => "archive",
                        _ => "read",
                    }
                ),
            ),
            _ => ("objects", format!("{t} other")),
        }
    };
    match s.as_slice() {
        ["oauth", "v1", "token"] => ("oauth", "oauth token".into()),
        ["oauth", "authorize"] => ("oauth", "oauth authorize".into()),
        ["oauth", "v2", ..] => ("oauth", "oauth access-token-info".into()),
        ["oauth", "v1", "access-tokens", ..] => ("oauth", "oauth access-tokens".into()),
        ["account-info", "v3", "details"] => ("account", "account details".into()),
        ["account-info", ..] => ("account", "account usage".into()),
        ["crm", "v3", "objects", t, rest @ ..] | ["crm", "objects", _, t, rest @ ..] => {
            objects(t, rest)
        }
        ["crm", "v4", "associations", _, _, rest @ ..] => {
            ("associations", format!("associations {}", rest.join("/")))
        }
        ["crm", "v4", "objects", ..] => ("associations", format!("associations {method}")),
        ["crm", "v3", "properties", t, rest @ ..] => (
            "properties",
            format!(
                "properties {t} {method} {}",
                rest.first().copied().unwrap_or("")
            ),
        ),
        _ => ("other", path.to_string()),
    }
}

/// Counts, faults, authenticates, limits; stamps the rate-limit headers.
async fn gate(
    State(inner): State<Shared>,
    ConnectInfo(kill): ConnectInfo<KillSwitch>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let (class, kind) = classify(method.as_str(), &path);
    {
        let mut stats = lock(&inner.stats);
        stats.total += 1;
        *stats.by_route.entry(kind).or_default() += 1;
        if let Some(version) = object_version(&path) {
            *stats.by_version.entry(version.to_string()).or_default() += 1;
        }
    }
    // The `{version}` of `/crm/objects/{version}/…` takes any segment, but HubSpot serves only
    // date versions there (docs/vendors/hubspot.md §0): `/crm/objects/v3/…` does not exist.
    if let ["crm", "objects", version, _, ..] =
        path.trim_matches('/').split('/').collect::<Vec<_>>()[..]
        && !is_date_version(version)
    {
        inner.violate(
            method.as_str(),
            &path,
            vec![format!(
                "`{version}` is not a date version (YYYY-MM) in /crm/objects/{{version}}"
            )],
        );
    }
    if let Err(answer) = inner
        .gate
        .pass(&method, class, &kill, render_injected)
        .await
    {
        return answer;
    }
    if class == "oauth" {
        return next.run(request).await;
    }
    let caller = match auth::authenticate(&inner, request.headers(), method.as_str(), &path) {
        Ok(c) => c,
        Err(e) => {
            lock(&inner.stats).unauthenticated += 1;
            return e.into_response();
        }
    };
    if let Some(policy) = inner.storm(class) {
        *lock(&inner.stats)
            .stormed
            .entry(policy.key().into())
            .or_default() += 1;
        return HsError::rate_limited(policy).into_response();
    }
    let headers = match limits::admit(&inner, &caller, class == "search") {
        Ok(h) => h,
        Err((policy, h)) => {
            *lock(&inner.stats)
                .throttled
                .entry(policy.key().into())
                .or_default() += 1;
            let mut response = HsError::rate_limited(policy).into_response();
            stamp(&mut response, h);
            return response;
        }
    };
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    stamp(&mut response, headers);
    response
}

/// The API version of a CRM object path: `v3` for `/crm/v3/objects/…`, the date (or whatever
/// stands there) for `/crm/objects/{version}/…`.
fn object_version(path: &str) -> Option<&str> {
    let s: Vec<&str> = path.trim_matches('/').split('/').collect();
    match s.as_slice() {
        ["crm", "v3", "objects", ..] => Some("v3"),
        ["crm", "objects", version, _, ..] => Some(version),
        _ => None,
    }
}

/// `YYYY-MM` with a month 01–12.
fn is_date_version(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
        && matches!(
            &v[5..],
            "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
        )
}

fn stamp(response: &mut Response, headers: limits::Headers) {
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(n, v);
        }
    }
}

/// An injected fault in HubSpot's shape: 429 as the burst limit, 401 as a bad token, 423
/// `LOCKED`, 477 `MIGRATION_IN_PROGRESS` with `Retry-After` (60 s unless the rule says), 5xx
/// `INTERNAL_ERROR`; an error with 200 is HubSpot's error body with status 200 (categories
/// beyond the notes UNCONFIRMED).
fn render_injected(injected: Injected) -> Response {
    let e = match injected {
        Injected::ErrorWith200 { errno, message } => {
            let mut e = HsError::new(StatusCode::OK, "VALIDATION_ERROR", message);
            e.extra.insert("errno".into(), json!(errno));
            e
        }
        Injected::Status(status) => match status.as_u16() {
            429 => HsError::rate_limited(Policy::TenSecondlyRolling),
            401 => HsError::unauthenticated(false),
            403 => HsError::forbidden("This request is forbidden for this portal."),
            404 => HsError::not_found("resource not found"),
            409 => HsError::conflict("conflict"),
            423 => HsError::new(
                status,
                "LOCKED",
                "The record is locked by another sync; retry in a few seconds.",
            ),
            477 => HsError::new(
                status,
                "MIGRATION_IN_PROGRESS",
                "This portal is migrating to another data centre; retry after Retry-After seconds.",
            ),
            s if s >= 500 => HsError::new(
                status,
                "INTERNAL_ERROR",
                "An internal error occurred; please retry.",
            ),
            _ => HsError::new(status, "VALIDATION_ERROR", "The request was refused."),
        },
    };
    let mut response = e.clone().into_response();
    if e.status.as_u16() == 477 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(60u32));
    }
    response
}

/// A JSON request body, or HubSpot's 400 for it.
pub(crate) fn parse_json(body: &Bytes) -> Result<Value, HsError> {
    if body.is_empty() {
        return Err(HsError::validation("Invalid input JSON: the body is empty"));
    }
    serde_json::from_slice(body).map_err(|e| {
        HsError::validation(format!(
            "Invalid input JSON on line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}

/// The object type of a path segment, or HubSpot's 400.
pub(crate) fn object_type(segment: &str) -> Result<ObjectType, HsError> {
    parse_type(segment)
        .ok_or_else(|| HsError::validation(format!("Unable to infer object type from: {segment}")))
}

/// `crm.objects.{type}.read|write`.
pub(crate) fn object_scope(t: ObjectType, write: bool) -> String {
    format!(
        "crm.objects.{}.{}",
        scope_segment(t),
        if write { "write" } else { "read" }
    )
}

/// `crm.schemas.{type}.read|write`.
pub(crate) fn schema_scope(t: ObjectType, write: bool) -> String {
    format!(
        "crm.schemas.{}.{}",
        scope_segment(t),
        if write { "write" } else { "read" }
    )
}

/// Reports fields of `v` (an object) not in `allowed`, prefixed by `at`.
pub(crate) fn unknown_fields(v: &Value, allowed: &[&str], at: &str, problems: &mut Vec<String>) {
    match v.as_object() {
        Some(o) => {
            for k in o.keys() {
                if !allowed.contains(&k.as_str()) {
                    problems.push(format!("{at}: unknown field `{k}`"));
                }
            }
        }
        None => problems.push(format!("{at}: not an object")),
    }
}

/// The `inputs` of a batch body: counted, shape-checked (unknown fields are violations), at
/// most [`BATCH_LIMIT`] (else 400, a violation too).
pub(crate) fn batch_inputs(
    inner: &Inner,
    caller: &Caller,
    kind: &str,
    body: &Value,
    top: &[&str],
    input: &[&str],
) -> Result<Vec<Value>, HsError> {
    let mut problems = Vec::new();
    unknown_fields(body, top, "body", &mut problems);
    let Some(inputs) = body.get("inputs").and_then(Value::as_array) else {
        problems.push("body: `inputs` is missing or not an array".into());
        inner.violate(&caller.method, &caller.path, problems);
        return Err(HsError::validation(
            "Invalid input JSON: inputs is required and must be an array",
        ));
    };
    inner.count_batch(kind, inputs.len());
    for (i, v) in inputs.iter().enumerate() {
        unknown_fields(v, input, &format!("inputs[{i}]"), &mut problems);
    }
    if inputs.len() > BATCH_LIMIT {
        problems.push(format!("{} inputs: more than {BATCH_LIMIT}", inputs.len()));
        inner.violate(&caller.method, &caller.path, problems);
        return Err(HsError::validation(format!(
            "Too many inputs: {} (the limit is {BATCH_LIMIT} per batch request)",
            inputs.len()
        )));
    }
    inner.violate(&caller.method, &caller.path, problems);
    Ok(inputs.clone())
}

/// 403 when a portal switch turns the type's writes off.
pub(crate) fn writable(info: &PortalInfo, t: ObjectType) -> Result<(), HsError> {
    match t {
        ObjectType::Invoices | ObjectType::LineItems if info.invoice_writes_unavailable => {
            Err(HsError::forbidden(
                "Invoice writes are not available for this account: invoices and their line items can be read but not created or changed through the API.",
            ))
        }
        ObjectType::CommercePayments if info.no_payment_processing => Err(HsError::forbidden(
            "Commerce payments cannot be written: this account has no payment processing (HubSpot payments or Stripe payment processing) set up.",
        )),
        _ => Ok(()),
    }
}
