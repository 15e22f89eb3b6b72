//! The control API over HTTP (`/_sandbox/...`, JSON), for drivers in another process (the CLI
//! demo, `dev --sandbox`). Each route calls the [`Control`] method of the same name.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::state::patch_fields;
use super::{Control, CustomerSeed, Fault, PayloadFormat, SandboxError, Webhooks};

pub(super) fn router(control: Control) -> Router {
    let customers = "/_sandbox/companies/{realm}/customers";
    Router::new()
        .route("/_sandbox/state", get(stats))
        .route("/_sandbox/deliveries", get(deliveries))
        .route("/_sandbox/setup", post(setup))
        .route("/_sandbox/codes", post(mint_code))
        .route("/_sandbox/tokens/expire", post(expire_tokens))
        .route("/_sandbox/companies/{realm}/revoke", post(revoke))
        .route("/_sandbox/clock/advance", post(advance_clock))
        .route("/_sandbox/webhook", put(set_webhook))
        .route(
            "/_sandbox/faults",
            post(inject).delete(clear_faults).get(list_faults),
        )
        .route(customers, post(create_customer))
        .route(
            &format!("{customers}/{{id}}"),
            get(customer).patch(update_customer),
        )
        .route(
            &format!("{customers}/{{id}}/deactivate"),
            post(deactivate_customer),
        )
        .route(&format!("{customers}/{{id}}/merge"), post(merge_customers))
        .route(&format!("{customers}/{{id}}/notes"), get(notes_of))
        .route(
            &format!("{customers}/{{id}}/concurrent_edits"),
            post(concurrent_edits),
        )
        .with_state(control)
}

type Reply = Result<axum::Json<Value>, SandboxError>;

fn ok(v: Value) -> Reply {
    Ok(axum::Json(v))
}

#[derive(Deserialize)]
struct WebhooksParam {
    #[serde(default)]
    webhooks: Webhooks,
}

async fn stats(State(c): State<Control>) -> Reply {
    ok(json!(c.stats()))
}

async fn deliveries(State(c): State<Control>) -> Reply {
    ok(json!(c.deliveries()))
}

#[derive(Deserialize)]
struct SetupBody {
    name: String,
}

async fn setup(State(c): State<Control>, axum::Json(b): axum::Json<SetupBody>) -> Reply {
    let company = c.setup_company(&b.name);
    let credentials_json = c.credentials_json(&company);
    ok(json!({"company": company, "credentials_json": credentials_json}))
}

#[derive(Deserialize)]
struct RealmBody {
    realm_id: String,
}

async fn mint_code(State(c): State<Control>, axum::Json(b): axum::Json<RealmBody>) -> Reply {
    ok(json!({"code": c.mint_code(&b.realm_id)?}))
}

async fn expire_tokens(State(c): State<Control>) -> Reply {
    c.expire_access_tokens();
    ok(json!({}))
}

async fn revoke(State(c): State<Control>, Path(realm): Path<String>) -> Reply {
    c.revoke_tokens(&realm);
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

#[derive(Deserialize)]
struct WebhookBody {
    url: String,
    verifier_token: String,
    #[serde(default)]
    format: PayloadFormat,
}

async fn set_webhook(State(c): State<Control>, axum::Json(b): axum::Json<WebhookBody>) -> Reply {
    c.set_webhook(&b.url, &b.verifier_token, b.format);
    ok(json!({}))
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

async fn create_customer(
    State(c): State<Control>,
    Path(realm): Path<String>,
    Query(w): Query<WebhooksParam>,
    axum::Json(seed): axum::Json<CustomerSeed>,
) -> Reply {
    ok(json!({"id": c.create_customer(&realm, seed, w.webhooks).await?}))
}

async fn customer(State(c): State<Control>, Path((realm, id)): Path<(String, String)>) -> Reply {
    c.customer(&realm, &id)
        .map(axum::Json)
        .ok_or_else(|| SandboxError::NotFound(format!("customer {id} in {realm}")))
}

async fn update_customer(
    State(c): State<Control>,
    Path((realm, id)): Path<(String, String)>,
    Query(w): Query<WebhooksParam>,
    axum::Json(patch): axum::Json<Value>,
) -> Reply {
    let Value::Object(patch) = patch else {
        return Err(SandboxError::Invalid(
            "the body must be a JSON object of customer fields".into(),
        ));
    };
    c.update_customer(
        &realm,
        &id,
        |v| {
            if let Some(o) = v.as_object_mut() {
                patch_fields(o, &patch);
            }
        },
        w.webhooks,
    )
    .await?;
    ok(json!(c.customer(&realm, &id)))
}

async fn deactivate_customer(
    State(c): State<Control>,
    Path((realm, id)): Path<(String, String)>,
    Query(w): Query<WebhooksParam>,
) -> Reply {
    c.deactivate_customer(&realm, &id, w.webhooks).await?;
    ok(json!({}))
}

#[derive(Deserialize)]
struct MergeBody {
    merged_away: String,
}

async fn merge_customers(
    State(c): State<Control>,
    Path((realm, id)): Path<(String, String)>,
    Query(w): Query<WebhooksParam>,
    axum::Json(b): axum::Json<MergeBody>,
) -> Reply {
    c.merge_customers(&realm, &id, &b.merged_away, w.webhooks)
        .await?;
    ok(json!({}))
}

async fn notes_of(State(c): State<Control>, Path((realm, id)): Path<(String, String)>) -> Reply {
    ok(json!(c.notes_of(&realm, &id)))
}

#[derive(Deserialize)]
struct EditsBody {
    n: u32,
}

async fn concurrent_edits(
    State(c): State<Control>,
    Path((realm, id)): Path<(String, String)>,
    axum::Json(b): axum::Json<EditsBody>,
) -> Reply {
    c.concurrent_edit_before_next_update(&realm, &id, b.n)?;
    ok(json!({}))
}
