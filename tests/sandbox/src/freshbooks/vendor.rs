//! The FreshBooks-facing routes: OAuth token endpoint, identity, accounting reads, callbacks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use mlc::vendors::form::Form;
use serde_json::{Value, json};

use super::delivery::{self, spawn_handshake};
use super::faults::{Injected, KillSwitch};
use super::state::{self, ACTIVE, CallbackRec, ClientSpec, DELETED, State as Db};
use super::{ErrorShape, Inner};
use crate::authorize::{self, oauth_error};

type Shared = Arc<Inner>;
type Params = Query<Vec<(String, String)>>;

pub(super) fn router(inner: Shared) -> Router {
    let events = "/events/account/{account}/events/callbacks";
    Router::new()
        .route("/auth/oauth/token", post(token))
        .route("/oauth/authorize", get(authorize_page))
        .route("/auth/api/v1/users/me", get(me))
        .route(
            "/accounting/account/{account}/users/clients",
            get(list_clients).post(create_client),
        )
        .route(
            "/accounting/account/{account}/users/clients/{id}",
            get(get_client).put(update_client),
        )
        .route(
            "/accounting/account/{account}/invoices/invoices",
            get(list_invoices),
        )
        .route(
            "/accounting/account/{account}/invoices/invoices/{id}",
            get(get_invoice),
        )
        .route(
            "/accounting/account/{account}/payments/payments",
            get(list_payments),
        )
        .route(
            "/accounting/account/{account}/payments/payments/{id}",
            get(get_payment),
        )
        .route(
            "/accounting/account/{account}/bill_vendors/bill_vendors",
            get(list_bill_vendors),
        )
        .route(
            "/accounting/account/{account}/bill_vendors/bill_vendors/{id}",
            get(get_bill_vendor),
        )
        .route(events, post(register_callback).get(list_callbacks))
        .route(
            &format!("{events}/{{id}}"),
            get(get_callback).put(put_callback).delete(delete_callback),
        )
        .layer(middleware::from_fn_with_state(
            inner.clone(),
            count_and_fault,
        ))
        .with_state(inner)
}

/// The route class a path belongs to, for counters and fault rules.
fn route_class(path: &str) -> &'static str {
    if path.starts_with("/auth/oauth") {
        "token"
    } else if path.starts_with("/auth/") {
        "identity"
    } else if path.starts_with("/events/") {
        "callbacks"
    } else if path.contains("/users/clients") {
        "clients"
    } else if path.contains("/invoices/invoices") {
        "invoices"
    } else if path.contains("/payments/payments") {
        "payments"
    } else if path.contains("/bill_vendors/bill_vendors") {
        "bill_vendors"
    } else {
        "other"
    }
}

/// Counts the request and applies the fault rules ([`crate::faults::Gate::pass`]), with
/// FreshBooks' error shapes: JSON 429, plain-text other statuses, `response.errors` with HTTP 200.
async fn count_and_fault(
    State(inner): State<Shared>,
    ConnectInfo(kill): ConnectInfo<KillSwitch>,
    request: Request,
    next: Next,
) -> Response {
    let class = route_class(request.uri().path());
    let passed = inner
        .gate
        .pass(request.method(), class, &kill, |injected| match injected {
            Injected::ErrorWith200 { errno, message } => json_response(
                StatusCode::OK,
                json!({"response": {"errors": [{"errno": errno, "message": message}]}}),
            ),
            Injected::Status(StatusCode::TOO_MANY_REQUESTS) => json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"errno": 429, "message": "Too Many Requests"}),
            ),
            Injected::Status(status) => (
                status,
                status.canonical_reason().unwrap_or("error").to_string(),
            )
                .into_response(),
        })
        .await;
    match passed {
        Ok(_) => next.run(request).await,
        Err(answer) => answer,
    }
}

fn json_response(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

/// Which 401 body a route family answers with (docs/vendors/freshbooks.md §2).
#[derive(Clone, Copy)]
enum Family {
    Identity,
    Accounting,
    Events,
}

fn unauthorized(family: Family) -> Response {
    let body = match family {
        Family::Identity => json!({"error": "unauthenticated",
            "error_description": "This action requires authentication to continue."}),
        // The accounting shape is UNCONFIRMED; this is the token-info style.
        Family::Accounting => json!({"error": "invalid_token",
            "error_description": "The access token is invalid", "state": "unauthorized"}),
        Family::Events => json!({"errno": 401,
            "message": "invalid_token: The request token failed to authenticate or validate."}),
    };
    json_response(StatusCode::UNAUTHORIZED, body)
}

/// The identity behind the bearer token, or the 401 to answer.
/// Errors are boxed: a `Response` is large.
fn authenticate(inner: &Inner, headers: &HeaderMap, family: Family) -> Result<i64, Box<Response>> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Box::new(unauthorized(family)))?;
    inner
        .state()
        .authenticate(token.trim(), inner.now())
        .ok_or_else(|| Box::new(unauthorized(family)))
}

/// Authenticated and allowed into `account`.
fn authorize(
    inner: &Inner,
    headers: &HeaderMap,
    account: &str,
    family: Family,
) -> Result<(), Box<Response>> {
    let identity = authenticate(inner, headers, family)?;
    if inner.state().may_access(identity, account) {
        return Ok(());
    }
    Err(Box::new(json_response(
        StatusCode::FORBIDDEN,
        json!({"response": {"errors": [{"errno": 1003,
            "message": "The server could not verify that you are authorized to access the URL requested."}]}}),
    )))
}

// ---- OAuth ----

/// `GET /oauth/authorize` (auth.freshbooks.com's page, here on the same host): approves at once
/// as `identity_id` (a sandbox-only parameter) or, without it, as the only user; `deny=1`
/// declines. A wrong `client_id` or `redirect_uri` gets an error page, never a redirect (an
/// unregistered URI must not receive anything); otherwise 302 to
/// `redirect_uri?code=…&state=…` with a code for the token endpoint.
async fn authorize_page(State(inner): State<Shared>, Query(params): Params) -> Response {
    let o = &inner.options;
    authorize::respond(&params, &o.client_id, &o.redirect_uri, |_| {
        let now = inner.now();
        let mut db = inner.state();
        let identity = match authorize::param(&params, "identity_id") {
            Some(id) => id.parse::<i64>().ok(),
            None if db.users.len() == 1 => db.users.keys().next().copied(),
            None => None,
        };
        let Some(identity) = identity else {
            return Err(
                "which user approves? pass identity_id (the sandbox has several users)".into(),
            );
        };
        db.mint_code(identity, now)
            .map(|code| vec![("code", code)])
            .map_err(|_| "unknown identity_id".to_string())
    })
}

async fn token(State(inner): State<Shared>, body: Bytes) -> Response {
    let Ok(form) = Form::parse(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body is not a form.",
        );
    };
    let o = &inner.options;
    let grant = form.get("grant_type").unwrap_or_default();
    if grant == "refresh_token" {
        inner.refresh_calls.fetch_add(1, Ordering::SeqCst);
    }
    if form.get("client_id") != Some(o.client_id.as_str())
        || form.get("client_secret") != Some(o.client_secret.as_str())
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
        );
    }
    let invalid_grant = || {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
        )
    };
    if form
        .get("redirect_uri")
        .is_some_and(|uri| uri != o.redirect_uri)
    {
        return invalid_grant();
    }
    let now = inner.now();
    let mut state = inner.state();
    let identity = match grant {
        "refresh_token" => {
            let Some(t) = form
                .get("refresh_token")
                .and_then(|t| state.refresh_tokens.get_mut(t))
                .filter(|t| !t.used)
            else {
                return invalid_grant();
            };
            // Single use: this refresh token is spent whatever happens next.
            t.used = true;
            t.identity_id
        }
        "authorization_code" => {
            if form.get("redirect_uri").is_none() {
                return invalid_grant();
            }
            let Some(c) = form
                .get("code")
                .and_then(|c| state.codes.get_mut(c))
                .filter(|c| !c.used && c.expires_at > now)
            else {
                return invalid_grant();
            };
            c.used = true;
            c.identity_id
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            );
        }
    };
    let lifetime = o.access_token_lifetime;
    let supersede = o.supersede_on_refresh;
    match state.mint_pair(identity, now, lifetime, supersede) {
        Ok(pair) => json_response(
            StatusCode::OK,
            json!({
                "access_token": pair.access_token, "token_type": "Bearer",
                "expires_in": lifetime.num_seconds(), "refresh_token": pair.refresh_token,
                "scope": "user:profile:read user:clients:read user:invoices:read user:payments:read",
                "created_at": now.timestamp(),
            }),
        ),
        Err(_) => invalid_grant(),
    }
}

async fn me(State(inner): State<Shared>, headers: HeaderMap) -> Response {
    let identity = match authenticate(&inner, &headers, Family::Identity) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let state = inner.state();
    let Some(user) = state.users.get(&identity) else {
        return unauthorized(Family::Identity);
    };
    // The fields of the SDK fixture auth_me_response.json; what the sandbox does not model is
    // at a new user's values.
    let memberships: Vec<Value> = user
        .accounts
        .iter()
        .filter_map(|a| state.businesses.get(a))
        .map(|b| {
            let role = if b.owner_identity_id == identity { "owner" } else { "business_employee" };
            json!({"id": b.business_id, "role": role, "unacknowledged_change": false,
                "business": {"id": b.business_id, "business_uuid": format!("uuid-{}", b.business_id),
                    "name": b.name, "account_id": b.account_id, "date_format": "mm/dd/yyyy",
                    "address": {"id": b.business_id, "street": "", "city": "", "province": "",
                        "country": "United States", "postal_code": ""},
                    "phone_number": null, "business_clients": []}})
        })
        .collect();
    let groups: Vec<Value> = user
        .accounts
        .iter()
        .filter_map(|a| state.businesses.get(a))
        .map(|b| {
            let role = if b.owner_identity_id == identity {
                "owner"
            } else {
                "business_employee"
            };
            json!({"id": b.business_id, "group_id": b.business_id, "role": role,
                "identity_id": identity, "identity_uuid": format!("uuid-identity-{identity}"),
                "business_id": b.business_id, "active": true})
        })
        .collect();
    let roles: Vec<Value> = user
        .accounts
        .iter()
        .map(|a| {
            json!({"role": "admin", "accountid": a, "userid": 1, "systemid": 1,
            "links": {"destroy": format!("/service/auth/api/v1/users/role/{identity}")}})
        })
        .collect();
    let permissions: serde_json::Map<String, Value> = user
        .accounts
        .iter()
        .map(|a| (a.clone(), json!({})))
        .collect();
    let subscriptions: serde_json::Map<String, Value> = user
        .accounts
        .iter()
        .map(|a| (a.clone(), json!("active")))
        .collect();
    json_response(
        StatusCode::OK,
        json!({"response": {"id": identity, "identity_id": identity,
            "identity_uuid": format!("uuid-identity-{identity}"), "email": user.email,
            "first_name": "Sandbox", "last_name": "User", "language": "en",
            "confirmed_at": null, "created_at": null, "unconfirmed_email": null,
            "setup_complete": true, "phone_numbers": [], "addresses": [],
            "profile": {"setup_complete": true, "first_name": "Sandbox", "last_name": "User",
                "phone_number": null, "address": null, "professions": [], "has_password": true},
            "profession": null,
            "links": {"me": format!("/service/auth/api/v1/users?id={identity}"),
                "roles": format!("/service/auth/api/v1/users/role/{identity}")},
            "permissions": permissions, "groups": groups,
            "subscription_statuses": subscriptions, "integrations": {},
            "business_memberships": memberships, "identity_origin": null, "roles": roles}}),
    )
}

// ---- accounting ----

/// google-rpc's code for an HTTP status (google.rpc.Code), for the google-rpc error shape.
fn rpc_code(status: StatusCode) -> u16 {
    match status.as_u16() {
        400 | 422 => 3,
        401 => 16,
        403 => 7,
        404 => 5,
        409 => 6,
        429 => 8,
        501 => 12,
        503 => 14,
        _ => 13,
    }
}

fn error_shape(inner: &Inner) -> ErrorShape {
    *crate::lock(&inner.error_shape)
}

/// One accounting error (docs/vendors/freshbooks.md §3.1) in the sandbox's current shape: the SDK fixtures'
/// `{"response":{"errors":[{errno, field, message, object, value}]}}` or google-rpc's
/// `{"code","message","details":[ErrorInfo]}`; with `status`, or HTTP 200 under the
/// errors-with-200 quirk.
fn accounting_error(
    inner: &Inner,
    status: StatusCode,
    errno: i64,
    object: &str,
    field: &str,
    message: &str,
    value: &str,
) -> Response {
    let body = match error_shape(inner) {
        ErrorShape::Legacy => json!({"response": {"errors": [{"errno": errno, "field": field,
            "message": message, "object": object, "value": value}]}}),
        ErrorShape::GoogleRpc => json!({"code": rpc_code(status), "message": message,
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": errno.to_string(), "domain": "accounting.api.freshbooks.com",
                "metadata": {"object": object, "message": message, "value": value, "field": field}}]}),
    };
    let status = if inner.errors_with_200.load(Ordering::SeqCst) {
        StatusCode::OK
    } else {
        status
    };
    json_response(status, body)
}

/// Accounting "not found": errno 1012, HTTP 404.
fn not_found(inner: &Inner, object: &str, field: &str, id: &str) -> Response {
    let mut title = object.to_string();
    if let Some(first) = title.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    accounting_error(
        inner,
        StatusCode::NOT_FOUND,
        1012,
        object,
        field,
        &format!("{title} not found."),
        id,
    )
}

#[derive(Default)]
struct ListQuery {
    page: usize,
    per_page: usize,
    updated_min: Option<NaiveDate>,
    updated_max: Option<NaiveDate>,
    vis_state: Option<i64>,
    search: Vec<(String, String)>,
    lines: bool,
}

fn list_query(params: &[(String, String)]) -> ListQuery {
    let mut q = ListQuery {
        page: 1,
        per_page: 30,
        ..ListQuery::default()
    };
    for (k, v) in params {
        match k.as_str() {
            "page" => q.page = v.parse().unwrap_or(1).max(1),
            "per_page" => q.per_page = v.parse().unwrap_or(30).clamp(1, 100),
            "search[updated_min]" => q.updated_min = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok(),
            "search[updated_max]" => q.updated_max = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok(),
            "search[vis_state]" => q.vis_state = v.parse().ok(),
            "include[]" if v == "lines" => q.lines = true,
            _ => {
                if let Some(field) = k.strip_prefix("search[").and_then(|f| f.strip_suffix(']')) {
                    q.search.push((field.to_string(), v.clone()));
                }
            }
        }
    }
    q
}

impl ListQuery {
    /// The checks that need no rendering: visibility, the `updated` window and the id filters
    /// in `ids` (field, value). Run before rendering, so a list filtered to one client does not
    /// render every invoice of the account (which made large sandboxes quadratic).
    fn may_keep(
        &self,
        vis_state: i64,
        updated: chrono::DateTime<chrono::Utc>,
        ids: &[(&str, i64)],
    ) -> bool {
        let vis_ok = match self.vis_state {
            Some(v) => vis_state == v,
            None => vis_state != DELETED,
        };
        let day = state::eastern_date(updated);
        vis_ok
            && self.updated_min.is_none_or(|min| day >= min)
            && self.updated_max.is_none_or(|max| day < max)
            && self.search.iter().all(|(field, want)| {
                ids.iter()
                    .find(|(f, _)| f == field)
                    .is_none_or(|(_, id)| id.to_string() == *want)
            })
    }

    /// The search filters against the rendered record (after [`Self::may_keep`]).
    fn matches_rendered(&self, record: &Value) -> bool {
        self.search
            .iter()
            .all(|(field, want)| match record.get(field) {
                Some(Value::Number(n)) => n.to_string() == *want,
                Some(Value::String(s)) => s == want,
                // Unknown filters are ignored, as FreshBooks does.
                _ => true,
            })
    }

    /// One page of `records` under this query: the cheap checks first, then rendering, then
    /// the filters on rendered fields.
    fn list<'a, R: 'a>(
        &self,
        plural: &str,
        records: impl Iterator<Item = &'a R>,
        keys: impl Fn(&R) -> (i64, chrono::DateTime<chrono::Utc>, Vec<(&'static str, i64)>),
        render: impl Fn(&R) -> Value,
    ) -> Response {
        let rendered = records
            .filter(|r| {
                let (vis_state, updated, ids) = keys(r);
                self.may_keep(vis_state, updated, &ids)
            })
            .map(render)
            .filter(|v| self.matches_rendered(v))
            .collect();
        self.page(plural, rendered)
    }

    fn page(&self, plural: &str, records: Vec<Value>) -> Response {
        let total = records.len();
        let pages = total.div_ceil(self.per_page);
        let start = (self.page - 1).saturating_mul(self.per_page).min(total);
        let end = (start + self.per_page).min(total);
        json_response(
            StatusCode::OK,
            json!({"response": {"result": {plural: records[start..end].to_vec(),
                "page": self.page, "pages": pages, "per_page": self.per_page, "total": total}}}),
        )
    }
}

macro_rules! guard {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return *r,
        }
    };
}

async fn list_clients(
    State(inner): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    guard!(authorize(&inner, &headers, &account, Family::Accounting));
    let q = list_query(&params);
    let state = inner.state();
    let Some(books) = state.books.get(&account) else {
        return not_found(&inner, "account", "accountid", &account);
    };
    q.list(
        "clients",
        books.clients.values(),
        |c| (c.vis_state, c.updated, vec![]),
        Db::render_client,
    )
}

async fn get_client(
    State(inner): State<Shared>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    guard!(authorize(&inner, &headers, &account, Family::Accounting));
    let state = inner.state();
    let found = state
        .books
        .get(&account)
        .zip(id.parse::<i64>().ok())
        .and_then(|(b, id)| b.clients.get(&id));
    match found {
        Some(c) => json_response(
            StatusCode::OK,
            json!({"response": {"result": {"client": Db::render_client(c)}}}),
        ),
        None => not_found(&inner, "client", "userid", &id),
    }
}

/// What a client create or update body asks for.
struct ClientWrite {
    spec: ClientSpec,
    /// [`state::CLIENT_TEXT_FIELDS`] given.
    contact: BTreeMap<String, String>,
    vis_state: Option<i64>,
}

/// The `client` object of a create or update body, or the 422 to answer.
fn client_body(inner: &Inner, body: &[u8], id: &str) -> Result<ClientWrite, Box<Response>> {
    let invalid = |field: &str, value: &str| {
        Box::new(accounting_error(
            inner,
            StatusCode::UNPROCESSABLE_ENTITY,
            7012,
            "client",
            field,
            "Invalid value for field.",
            value,
        ))
    };
    let parsed: Value = serde_json::from_slice(body).map_err(|_| invalid("client", id))?;
    let Some(client) = parsed.get("client").filter(|c| c.is_object()) else {
        return Err(invalid("client", id));
    };
    let text = |field: &str| -> Result<Option<String>, Box<Response>> {
        match client.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(field, &other.to_string())),
        }
    };
    let spec = ClientSpec {
        email: text("email")?,
        fname: text("fname")?,
        lname: text("lname")?,
        organization: text("organization")?,
        currency_code: text("currency_code")?,
    };
    // An address FreshBooks could not mail is refused; blank is allowed (clients may have none).
    if let Some(email) = spec.email.as_deref()
        && !email.is_empty()
        && !plausible_email(email)
    {
        return Err(invalid("email", email));
    }
    let vis_state = match client.get("vis_state") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(v @ (ACTIVE | DELETED | 2)) => Some(v),
            _ => return Err(invalid("vis_state", &v.to_string())),
        },
    };
    let mut contact = BTreeMap::new();
    for field in state::CLIENT_TEXT_FIELDS {
        if let Some(value) = text(field)? {
            contact.insert(field.to_string(), value);
        }
    }
    Ok(ClientWrite {
        spec,
        contact,
        vis_state,
    })
}

/// `local@domain.tld`, no spaces: the sandbox's stand-in for FreshBooks' (unpublished) check.
fn plausible_email(email: &str) -> bool {
    email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email.chars().any(char::is_whitespace)
    })
}

fn client_answer(inner: &Inner, account: &str, id: i64) -> Response {
    let state = inner.state();
    match state.books.get(account).and_then(|b| b.clients.get(&id)) {
        Some(c) => json_response(
            StatusCode::OK,
            json!({"response": {"result": {"client": Db::render_client(c)}}}),
        ),
        None => not_found(inner, "client", "userid", &id.to_string()),
    }
}

/// `POST …/users/clients` `{"client":{…}}`: creates the client (callbacks `client.create`).
async fn create_client(
    State(inner): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    guard!(authorize(&inner, &headers, &account, Family::Accounting));
    let write = guard!(client_body(&inner, &body, ""));
    let now = inner.now();
    let made = {
        let mut db = inner.state();
        db.create_client(&account, write.spec, now)
            .and_then(|(id, changes)| {
                db.set_client_contact(&account, id, write.contact)?;
                Ok((id, changes))
            })
    };
    match made {
        Ok((id, changes)) => {
            deliver_later(&inner, changes);
            client_answer(&inner, &account, id)
        }
        Err(_) => not_found(&inner, "account", "accountid", &account),
    }
}

/// Sends an API write's callbacks after the answer, as FreshBooks does (the control API, by
/// contrast, waits for them so tests can).
fn deliver_later(inner: &Shared, changes: Vec<state::Change>) {
    let inner = inner.clone();
    tokio::spawn(async move { delivery::deliver(&inner, changes).await });
}

/// `PUT …/users/clients/{id}` `{"client":{…}}`: changes the given fields; a `vis_state`
/// deletes (1) or restores (0) and discards every other field, as FreshBooks does
/// (docs/vendors/freshbooks.md §0.10).
async fn update_client(
    State(inner): State<Shared>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    guard!(authorize(&inner, &headers, &account, Family::Accounting));
    let exists = id.parse::<i64>().ok().filter(|n| {
        inner
            .state()
            .books
            .get(&account)
            .is_some_and(|b| b.clients.contains_key(n))
    });
    let Some(n) = exists else {
        return not_found(&inner, "client", "userid", &id);
    };
    let write = guard!(client_body(&inner, &body, &id));
    let now = inner.now();
    let done = {
        let mut db = inner.state();
        match write.vis_state {
            Some(DELETED) => db.delete_client(&account, n, now),
            Some(v) => db.set_client_vis_state(&account, n, v, now),
            None => db
                .update_client(&account, n, write.spec, now)
                .and_then(|changes| {
                    db.set_client_contact(&account, n, write.contact)?;
                    Ok(changes)
                }),
        }
    };
    match done {
        Ok(changes) => {
            deliver_later(&inner, changes);
            client_answer(&inner, &account, n)
        }
        Err(_) => not_found(&inner, "client", "userid", &id),
    }
}

async fn list_invoices(
    State(inner): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    guard!(authorize(&inner, &headers, &account, Family::Accounting));
    let q = list_query(&params);
    let state = inner.state();
    let Some(books) = state.books.get(&account) else {
        return not_found(&inner, "account", "accountid", &account);
    };
    q.list(
        "invoices",
        books.invoices.values(),
        |i| (i.vis_state, i.updated, vec![("customerid", i.customerid)]),
        |i| Db::render_invoice(books, &account, i, q.lines),
    )
}

async fn get_invoice(
    State(inner): State<Shared>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    guard!(authorize(&inner, &headers, &account, Family::Accounting));
    let lines = list_query(&params).lines;
    let state = inner.state();
    let books = state.books.get(&account);
    let found = books
        .zip(id.parse::<i64>().ok())
        .and_then(|(b, id)| Some((b, b.invoices.get(&id)?)));
    match found {
        Some((b, i)) => json_response(
            StatusCode::OK,
            json!({"response": {"result": {"invoice": Db::render_invoice(b, &account, i, lines)}}}),
        ),
        None => not_found(&inner, "invoice", "invoiceid", &id),
    }
}

async fn list_payments(
    State(inner): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    guard!(authorize(&inner, &headers, &account, Family::Accounting));
    let q = list_query(&params);
    let state = inner.state();
    let Some(books) = state.books.get(&account) else {
        return not_found(&inner, "account", "accountid", &account);
    };
    q.list(
        "payments",
        books.payments.values(),
        |p| {
            (
                p.vis_state,
                p.updated,
                vec![("invoiceid", p.invoiceid), ("clientid", p.clientid)],
            )
        },
        Db::render_payment,
    )
}

async fn get_payment(
    State(inner): State<Shared>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    guard!(authorize(&inner, &headers, &account, Family::Accounting));
    let state = inner.state();
    let found = state
        .books
        .get(&account)
        .zip(id.parse::<i64>().ok())
        .and_then(|(b, id)| b.payments.get(&id));
    match found {
        Some(p) => json_response(
            StatusCode::OK,
            json!({"response": {"result": {"payment": Db::render_payment(p)}}}),
        ),
        None => not_found(&inner, "payment", "logid", &id),
    }
}

async fn list_bill_vendors(
    State(inner): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    guard!(authorize(&inner, &headers, &account, Family::Accounting));
    let q = list_query(&params);
    let state = inner.state();
    let Some(books) = state.books.get(&account) else {
        return not_found(&inner, "account", "accountid", &account);
    };
    q.list(
        "bill_vendors",
        books.bill_vendors.values(),
        |b| (b.vis_state, b.updated, vec![]),
        Db::render_bill_vendor,
    )
}

/// `GET …/bill_vendors/bill_vendors/{id}`: deleted ones too (`vis_state` 1), as for clients.
async fn get_bill_vendor(
    State(inner): State<Shared>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    guard!(authorize(&inner, &headers, &account, Family::Accounting));
    let state = inner.state();
    let found = state
        .books
        .get(&account)
        .zip(id.parse::<i64>().ok())
        .and_then(|(b, id)| b.bill_vendors.get(&id));
    match found {
        Some(b) => json_response(
            StatusCode::OK,
            json!({"response": {"result": {"bill_vendor": Db::render_bill_vendor(b)}}}),
        ),
        None => not_found(&inner, "bill_vendor", "vendorid", &id),
    }
}

// ---- callbacks (events API) ----

/// The events FreshBooks accepts a callback for (docs/vendors/freshbooks.md §1.5).
fn known_event(event: &str) -> bool {
    const RESOURCES: [&str; 15] = [
        "bill",
        "bill_vendor",
        "category",
        "credit_note",
        "expense",
        "item",
        "project",
        "recurring",
        "service",
        "tax",
        "time_entry",
        "client",
        "invoice",
        "estimate",
        "payment",
    ];
    let (resource, action) = event.split_once('.').unwrap_or((event, ""));
    RESOURCES.contains(&resource)
        && (matches!(action, "" | "create" | "update" | "delete")
            || (action == "sendByEmail" && matches!(resource, "invoice" | "estimate")))
}

/// An events-API error: flat `{"errno","message","details":["field: Value error, …"]}` as the
/// SDK fixtures show, or google-rpc `{"code","message","details":[BadRequest]}` (freshbooks.md
/// §1.1). `violations` are (field, description).
fn events_error(
    inner: &Inner,
    status: StatusCode,
    message: &str,
    violations: &[(&str, &str)],
) -> Response {
    let body = match error_shape(inner) {
        ErrorShape::Legacy => {
            let mut body = json!({"errno": status.as_u16(), "message": message});
            if !violations.is_empty() {
                let details: Vec<String> = violations
                    .iter()
                    .map(|(field, description)| format!("{field}: Value error, {description}"))
                    .collect();
                body["details"] = json!(details);
            }
            body
        }
        ErrorShape::GoogleRpc => {
            let mut body = json!({"code": rpc_code(status), "message": message, "details": []});
            if !violations.is_empty() {
                let field_violations: Vec<Value> = violations
                    .iter()
                    .map(|(field, description)| json!({"field": field, "description": description}))
                    .collect();
                body["details"] = json!([{"@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": field_violations}]);
            }
            body
        }
    };
    json_response(status, body)
}

fn events_not_found(inner: &Inner) -> Response {
    events_error(
        inner,
        StatusCode::NOT_FOUND,
        "Requested resource could not be found.",
        &[],
    )
}

fn callback_response(c: &CallbackRec) -> Response {
    json_response(
        StatusCode::OK,
        json!({"response": {"result": {"callback": Db::render_callback(c)}}}),
    )
}

async fn register_callback(
    State(inner): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    guard!(authorize(&inner, &headers, &account, Family::Events));
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let event = parsed
        .as_ref()
        .and_then(|v| v.pointer("/callback/event"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let uri = parsed
        .as_ref()
        .and_then(|v| v.pointer("/callback/uri"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut violations = Vec::new();
    if !known_event(&event) {
        violations.push(("event", "Unrecognized event."));
    }
    if !(uri.starts_with("http://") || uri.starts_with("https://")) {
        violations.push(("uri", "invalid uri."));
    }
    if !violations.is_empty() {
        return events_error(
            &inner,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid callback.",
            &violations,
        );
    }
    let now = inner.now();
    let rec = {
        let mut state = inner.state();
        let id = state.id();
        let Ok(books) = state.books_mut(&account) else {
            return events_not_found(&inner);
        };
        let rec = CallbackRec {
            id,
            event,
            uri,
            verified: false,
            verifier: uuid::Uuid::new_v4().simple().to_string(),
            updated: now,
        };
        books.callbacks.insert(id, rec.clone());
        rec
    };
    spawn_handshake(inner.clone(), account, rec.id);
    callback_response(&rec)
}

async fn list_callbacks(
    State(inner): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    guard!(authorize(&inner, &headers, &account, Family::Events));
    let q = list_query(&params);
    let event = q
        .search
        .iter()
        .find(|(k, _)| k == "event")
        .map(|(_, v)| v.clone());
    let uri = q
        .search
        .iter()
        .find(|(k, _)| k == "uri")
        .map(|(_, v)| v.clone());
    let state = inner.state();
    let Some(books) = state.books.get(&account) else {
        return events_not_found(&inner);
    };
    let records = books
        .callbacks
        .values()
        .filter(|c| {
            event
                .as_deref()
                .is_none_or(|e| super::delivery::event_matches(e, &c.event) || c.event == e)
                && uri.as_deref().is_none_or(|u| c.uri == u)
        })
        .map(Db::render_callback)
        .collect();
    q.page("callbacks", records)
}

fn find_callback<'a>(state: &'a mut Db, account: &str, id: &str) -> Option<&'a mut CallbackRec> {
    let id: i64 = id.parse().ok()?;
    state.books.get_mut(account)?.callbacks.get_mut(&id)
}

async fn get_callback(
    State(inner): State<Shared>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    guard!(authorize(&inner, &headers, &account, Family::Events));
    let mut state = inner.state();
    match find_callback(&mut state, &account, &id) {
        Some(c) => callback_response(c),
        None => events_not_found(&inner),
    }
}

async fn put_callback(
    State(inner): State<Shared>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    guard!(authorize(&inner, &headers, &account, Family::Events));
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let now = inner.now();
    let mut state = inner.state();
    let Some(c) = find_callback(&mut state, &account, &id) else {
        return events_not_found(&inner);
    };
    if parsed.pointer("/callback/resend").and_then(Value::as_bool) == Some(true) {
        let (cid, response) = (c.id, callback_response(c));
        drop(state);
        spawn_handshake(inner.clone(), account, cid);
        return response;
    }
    match parsed.pointer("/callback/verifier").and_then(Value::as_str) {
        Some(v) => {
            if v == c.verifier {
                c.verified = true;
                c.updated = now;
            }
            callback_response(c)
        }
        None => events_error(
            &inner,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid callback.",
            &[("callback", "expected `verifier` or `resend`.")],
        ),
    }
}

async fn delete_callback(
    State(inner): State<Shared>,
    Path((account, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    guard!(authorize(&inner, &headers, &account, Family::Events));
    let mut state = inner.state();
    let removed = id
        .parse::<i64>()
        .ok()
        .and_then(|id| state.books.get_mut(&account)?.callbacks.remove(&id));
    match removed {
        // FreshBooks answers a delete with 204 and no body; its SDK expects exactly that.
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => events_not_found(&inner),
    }
}
