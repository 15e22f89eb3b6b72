//! The control API over HTTP (`/_sandbox/...`, JSON), for drivers in another process (the CLI
//! demo, `dev --sandbox`, benchmarks). Each route calls the [`Control`] method it names.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::state::parse_type;
use super::{Control, Fault, Policy, PortalSeed, SandboxError, Tier};

pub(super) fn router(control: Control) -> Router {
    let portal = "/_sandbox/portals/{portal}";
    Router::new()
        .route("/_sandbox/stats", get(stats))
        .route("/_sandbox/stats/reset", post(reset_stats))
        .route("/_sandbox/violations", get(violations))
        .route("/_sandbox/setup", post(setup))
        .route("/_sandbox/portals", post(add_portal))
        .route(portal, get(snapshot))
        .route(&format!("{portal}/tokens"), post(issue_token))
        .route(&format!("{portal}/codes"), post(issue_code))
        .route(&format!("{portal}/oauth"), post(issue_oauth))
        .route(&format!("{portal}/switches"), put(switches))
        .route(
            &format!("{portal}/objects/{{type}}"),
            post(create_object).get(objects),
        )
        .route("/_sandbox/tokens/expire", post(expire))
        .route("/_sandbox/tokens/revoke", post(revoke))
        .route("/_sandbox/search-lag", put(search_lag))
        .route("/_sandbox/clock/advance", post(advance_clock))
        .route(
            "/_sandbox/faults",
            post(inject).delete(clear_faults).get(list_faults),
        )
        .route("/_sandbox/storms", post(storm))
        .with_state(control)
}

type Reply = Result<axum::Json<Value>, SandboxError>;

fn ok(v: Value) -> Reply {
    Ok(axum::Json(v))
}

async fn stats(State(c): State<Control>) -> Reply {
    ok(json!(c.stats()))
}

async fn reset_stats(State(c): State<Control>) -> Reply {
    c.reset_stats();
    ok(json!({}))
}

async fn violations(State(c): State<Control>) -> Reply {
    ok(json!(c.violations()))
}

async fn setup(State(c): State<Control>) -> Reply {
    ok(json!(c.setup_portal()))
}

async fn add_portal(State(c): State<Control>, axum::Json(seed): axum::Json<PortalSeed>) -> Reply {
    ok(json!(c.add_portal(seed)?))
}

async fn snapshot(State(c): State<Control>, Path(portal): Path<u64>) -> Reply {
    ok(c.snapshot(portal)?)
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum StaticKind {
    PrivateApp,
    ServiceKey,
}

#[derive(Deserialize)]
struct TokenBody {
    kind: StaticKind,
    scopes: Option<Vec<String>>,
}

/// The scopes asked for, or every scope.
fn scopes(asked: &Option<Vec<String>>) -> Vec<&str> {
    match asked {
        Some(s) => s.iter().map(String::as_str).collect(),
        None => super::ALL_SCOPES.to_vec(),
    }
}

async fn issue_token(
    State(c): State<Control>,
    Path(portal): Path<u64>,
    axum::Json(b): axum::Json<TokenBody>,
) -> Reply {
    let scopes = scopes(&b.scopes);
    let token = match b.kind {
        StaticKind::PrivateApp => c.issue_private_app_token(portal, &scopes)?,
        StaticKind::ServiceKey => c.issue_service_key(portal, &scopes)?,
    };
    ok(json!({"token": token}))
}

#[derive(Deserialize)]
struct ScopesBody {
    scopes: Option<Vec<String>>,
}

async fn issue_code(
    State(c): State<Control>,
    Path(portal): Path<u64>,
    axum::Json(b): axum::Json<ScopesBody>,
) -> Reply {
    ok(json!({"code": c.issue_oauth_code(portal, &scopes(&b.scopes))?}))
}

async fn issue_oauth(
    State(c): State<Control>,
    Path(portal): Path<u64>,
    axum::Json(b): axum::Json<ScopesBody>,
) -> Reply {
    ok(json!(c.issue_oauth_tokens(portal, &scopes(&b.scopes))?))
}

#[derive(Deserialize)]
struct SwitchesBody {
    invoice_writes_unavailable: Option<bool>,
    no_payment_processing: Option<bool>,
    tier: Option<Tier>,
    daily_limit: Option<u64>,
}

async fn switches(
    State(c): State<Control>,
    Path(portal): Path<u64>,
    axum::Json(b): axum::Json<SwitchesBody>,
) -> Reply {
    if let Some(on) = b.invoice_writes_unavailable {
        c.set_invoice_writes_unavailable(portal, on)?;
    }
    if let Some(on) = b.no_payment_processing {
        c.set_no_payment_processing(portal, on)?;
    }
    if let Some(tier) = b.tier {
        c.set_tier(portal, tier)?;
    }
    if let Some(limit) = b.daily_limit {
        c.set_daily_limit(portal, limit)?;
    }
    ok(json!(c.portal(portal)?))
}

#[derive(Deserialize)]
struct ObjectBody {
    properties: Map<String, Value>,
}

async fn create_object(
    State(c): State<Control>,
    Path((portal, t)): Path<(u64, String)>,
    axum::Json(b): axum::Json<ObjectBody>,
) -> Reply {
    let t = parse_type(&t).ok_or_else(|| SandboxError::NotFound(format!("object type {t}")))?;
    let props: Vec<(String, String)> = b
        .properties
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_string),
            )
        })
        .collect();
    let pairs: Vec<(&str, &str)> = props
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    ok(json!({"id": c.create_object(portal, t, &pairs)?}))
}

async fn objects(State(c): State<Control>, Path((portal, t)): Path<(u64, String)>) -> Reply {
    let t = parse_type(&t).ok_or_else(|| SandboxError::NotFound(format!("object type {t}")))?;
    ok(json!(c.objects(portal, t)))
}

async fn expire(State(c): State<Control>) -> Reply {
    c.expire_oauth_tokens();
    ok(json!({}))
}

#[derive(Deserialize)]
struct RevokeBody {
    token: String,
}

async fn revoke(State(c): State<Control>, axum::Json(b): axum::Json<RevokeBody>) -> Reply {
    c.revoke_token(&b.token);
    ok(json!({}))
}

#[derive(Deserialize)]
struct LagBody {
    millis: u64,
}

async fn search_lag(State(c): State<Control>, axum::Json(b): axum::Json<LagBody>) -> Reply {
    c.set_search_lag(Duration::from_millis(b.millis));
    ok(json!({}))
}

#[derive(Deserialize)]
struct AdvanceBody {
    seconds: i64,
}

async fn advance_clock(State(c): State<Control>, axum::Json(b): axum::Json<AdvanceBody>) -> Reply {
    c.advance_clock(chrono::Duration::seconds(b.seconds));
    ok(json!({"now": c.now()}))
}

async fn inject(State(c): State<Control>, axum::Json(f): axum::Json<Fault>) -> Reply {
    c.inject(f);
    ok(json!({}))
}

async fn clear_faults(State(c): State<Control>) -> Reply {
    c.clear_faults();
    ok(json!({}))
}

async fn list_faults(State(c): State<Control>) -> Reply {
    ok(json!(c.faults()))
}

#[derive(Deserialize)]
struct StormBody {
    policy: Policy,
    times: u32,
    route: Option<String>,
}

async fn storm(State(c): State<Control>, axum::Json(b): axum::Json<StormBody>) -> Reply {
    c.storm(b.policy, b.times, b.route.as_deref());
    ok(json!({}))
}
