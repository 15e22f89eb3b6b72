//! The control API over HTTP (`/_sandbox/...`, JSON), for drivers in another process (the CLI
//! demo). Each route calls the [`Control`] method of the same name.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    BillVendorSpec, ClientSpec, Control, Fault, InvoicePatch, InvoiceSpec, PaymentSpec,
    SandboxError, Webhooks,
};

pub(super) fn router(control: Control) -> Router {
    Router::new()
        .route("/_sandbox/state", get(stats))
        .route("/_sandbox/deliveries", get(deliveries))
        .route("/_sandbox/setup", post(setup))
        .route("/_sandbox/users", post(add_user))
        .route("/_sandbox/businesses", post(add_business))
        .route("/_sandbox/tokens", post(mint_tokens))
        .route("/_sandbox/tokens/expire", post(expire_tokens))
        .route("/_sandbox/codes", post(mint_code))
        .route("/_sandbox/clock/advance", post(advance_clock))
        .route(
            "/_sandbox/faults",
            post(inject).delete(clear_faults).get(list_faults),
        )
        .route("/_sandbox/errors_with_200", post(errors_with_200))
        .route("/_sandbox/error_shape", post(error_shape))
        .route("/_sandbox/accounts/{account}/callbacks", get(callbacks))
        .route("/_sandbox/accounts/{account}/clients", post(create_client))
        .route(
            "/_sandbox/accounts/{account}/clients/{id}",
            delete(delete_client).patch(update_client),
        )
        .route(
            "/_sandbox/accounts/{account}/invoices",
            post(create_invoice),
        )
        .route(
            "/_sandbox/accounts/{account}/invoices/{id}",
            delete(delete_invoice).patch(update_invoice),
        )
        .route(
            "/_sandbox/accounts/{account}/invoices/{id}/mark_sent",
            post(mark_sent),
        )
        .route(
            "/_sandbox/accounts/{account}/invoices/{id}/mark_paid",
            post(mark_paid),
        )
        .route(
            "/_sandbox/accounts/{account}/payments",
            post(create_payment),
        )
        .route(
            "/_sandbox/accounts/{account}/payments/{id}",
            delete(delete_payment),
        )
        .route(
            "/_sandbox/accounts/{account}/bill_vendors",
            post(create_bill_vendor),
        )
        .route(
            "/_sandbox/accounts/{account}/bill_vendors/{id}",
            delete(delete_bill_vendor).patch(update_bill_vendor),
        )
        .with_state(control)
}

type Reply = Result<axum::Json<Value>, SandboxError>;

fn ok(v: Value) -> Reply {
    Ok(axum::Json(v))
}

#[derive(Deserialize, Default)]
struct Hooks {
    #[serde(default)]
    webhooks: Webhooks,
}

#[derive(Deserialize)]
struct Email {
    email: String,
}

#[derive(Deserialize)]
struct Setup {
    email: String,
    business_name: String,
}

#[derive(Deserialize)]
struct NewBusiness {
    identity_id: i64,
    name: String,
}

#[derive(Deserialize)]
struct Identity {
    identity_id: i64,
}

#[derive(Deserialize)]
struct Seconds {
    seconds: i64,
}

#[derive(Deserialize)]
struct Enabled {
    enabled: bool,
}

async fn stats(State(c): State<Control>) -> Reply {
    ok(json!(c.stats()))
}

async fn deliveries(State(c): State<Control>) -> Reply {
    ok(json!(c.deliveries()))
}

async fn setup(State(c): State<Control>, axum::Json(s): axum::Json<Setup>) -> Reply {
    let account = c.setup_account(&s.email, &s.business_name);
    let credentials_json = c.credentials_json(&account.tokens);
    let mut v = json!(account);
    v["credentials_json"] = credentials_json.into();
    ok(v)
}

async fn add_user(State(c): State<Control>, axum::Json(e): axum::Json<Email>) -> Reply {
    ok(json!({"identity_id": c.add_user(&e.email)}))
}

async fn add_business(State(c): State<Control>, axum::Json(b): axum::Json<NewBusiness>) -> Reply {
    ok(json!(c.add_business(b.identity_id, &b.name)?))
}

async fn mint_tokens(State(c): State<Control>, axum::Json(i): axum::Json<Identity>) -> Reply {
    let pair = c.mint_tokens(i.identity_id)?;
    let credentials_json = c.credentials_json(&pair);
    let mut v = json!(pair);
    v["credentials_json"] = credentials_json.into();
    ok(v)
}

async fn expire_tokens(State(c): State<Control>) -> Reply {
    c.expire_access_tokens();
    ok(json!({}))
}

async fn mint_code(State(c): State<Control>, axum::Json(i): axum::Json<Identity>) -> Reply {
    ok(json!({"code": c.mint_code(i.identity_id)?}))
}

async fn advance_clock(State(c): State<Control>, axum::Json(s): axum::Json<Seconds>) -> Reply {
    c.advance_clock(chrono::Duration::seconds(s.seconds));
    ok(json!({"now": c.now()}))
}

async fn inject(State(c): State<Control>, axum::Json(f): axum::Json<Fault>) -> Reply {
    c.inject(f);
    ok(json!({"faults": c.faults()}))
}

async fn clear_faults(State(c): State<Control>) -> Reply {
    c.clear_faults();
    ok(json!({}))
}

async fn list_faults(State(c): State<Control>) -> Reply {
    ok(json!({"faults": c.faults()}))
}

async fn errors_with_200(State(c): State<Control>, axum::Json(e): axum::Json<Enabled>) -> Reply {
    c.set_errors_with_200(e.enabled);
    ok(json!({"enabled": e.enabled}))
}

#[derive(Deserialize)]
struct Shape {
    shape: super::ErrorShape,
}

async fn error_shape(State(c): State<Control>, axum::Json(s): axum::Json<Shape>) -> Reply {
    c.set_error_shape(s.shape);
    ok(json!({"shape": s.shape}))
}

async fn callbacks(State(c): State<Control>, Path(account): Path<String>) -> Reply {
    ok(json!(c.callbacks(&account)?))
}

async fn create_client(
    State(c): State<Control>,
    Path(account): Path<String>,
    Query(h): Query<Hooks>,
    axum::Json(spec): axum::Json<ClientSpec>,
) -> Reply {
    ok(json!({"id": c.create_client(&account, spec, h.webhooks).await?}))
}

async fn update_client(
    State(c): State<Control>,
    Path((account, id)): Path<(String, String)>,
    Query(h): Query<Hooks>,
    axum::Json(patch): axum::Json<ClientSpec>,
) -> Reply {
    c.update_client(&account, &id, patch, h.webhooks).await?;
    ok(json!({"id": id}))
}

async fn delete_client(
    State(c): State<Control>,
    Path((account, id)): Path<(String, String)>,
    Query(h): Query<Hooks>,
) -> Reply {
    c.delete_client(&account, &id, h.webhooks).await?;
    ok(json!({"id": id}))
}

async fn create_invoice(
    State(c): State<Control>,
    Path(account): Path<String>,
    Query(h): Query<Hooks>,
    axum::Json(spec): axum::Json<InvoiceSpec>,
) -> Reply {
    ok(json!({"id": c.create_invoice(&account, spec, h.webhooks).await?}))
}

async fn update_invoice(
    State(c): State<Control>,
    Path((account, id)): Path<(String, String)>,
    Query(h): Query<Hooks>,
    axum::Json(patch): axum::Json<InvoicePatch>,
) -> Reply {
    c.update_invoice(&account, &id, patch, h.webhooks).await?;
    ok(json!({"id": id}))
}

async fn delete_invoice(
    State(c): State<Control>,
    Path((account, id)): Path<(String, String)>,
    Query(h): Query<Hooks>,
) -> Reply {
    c.delete_invoice(&account, &id, h.webhooks).await?;
    ok(json!({"id": id}))
}

async fn mark_sent(
    State(c): State<Control>,
    Path((account, id)): Path<(String, String)>,
    Query(h): Query<Hooks>,
) -> Reply {
    c.mark_invoice_sent(&account, &id, h.webhooks).await?;
    ok(json!({"id": id}))
}

async fn mark_paid(
    State(c): State<Control>,
    Path((account, id)): Path<(String, String)>,
    Query(h): Query<Hooks>,
) -> Reply {
    ok(json!({"id": c.mark_invoice_paid(&account, &id, h.webhooks).await?}))
}

async fn create_payment(
    State(c): State<Control>,
    Path(account): Path<String>,
    Query(h): Query<Hooks>,
    axum::Json(spec): axum::Json<PaymentSpec>,
) -> Reply {
    ok(json!({"id": c.create_payment(&account, spec, h.webhooks).await?}))
}

async fn delete_payment(
    State(c): State<Control>,
    Path((account, id)): Path<(String, String)>,
    Query(h): Query<Hooks>,
) -> Reply {
    c.delete_payment(&account, &id, h.webhooks).await?;
    ok(json!({"id": id}))
}

async fn create_bill_vendor(
    State(c): State<Control>,
    Path(account): Path<String>,
    Query(h): Query<Hooks>,
    axum::Json(spec): axum::Json<BillVendorSpec>,
) -> Reply {
    ok(json!({"id": c.create_bill_vendor(&account, spec, h.webhooks).await?}))
}

async fn update_bill_vendor(
    State(c): State<Control>,
    Path((account, id)): Path<(String, String)>,
    Query(h): Query<Hooks>,
    axum::Json(patch): axum::Json<BillVendorSpec>,
) -> Reply {
    c.update_bill_vendor(&account, &id, patch, h.webhooks)
        .await?;
    ok(json!({"id": id}))
}

async fn delete_bill_vendor(
    State(c): State<Control>,
    Path((account, id)): Path<(String, String)>,
    Query(h): Query<Hooks>,
) -> Reply {
    c.delete_bill_vendor(&account, &id, h.webhooks).await?;
    ok(json!({"id": id}))
}
