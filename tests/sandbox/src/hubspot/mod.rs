//! A local HubSpot: the subset of the CRM v3 objects, associations v4, properties, account and
//! OAuth APIs ml-connector uses, stateful and multi-portal, with HubSpot's auth, error shapes,
//! limits and fault injection (docs/vendors/hubspot.md), plus a control API.
//!
//! ```no_run
//! # async fn demo() {
//! use mlc_sandbox::hubspot::*;
//! let sandbox = HubspotSandbox::start(HubspotSandboxOptions::default()).await;
//! let setup = sandbox.setup_portal(); // a portal + a private-app token with ALL_SCOPES
//! // point the client's base URL at sandbox.base_url(), Bearer setup.token
//! assert!(sandbox.violations().is_empty());
//! # }
//! ```
//!
//! # Vendor API (as HubSpot)
//! Every API route takes `Authorization: Bearer <token>`: a private-app token
//! (`pat-na1-<uuid>`), a service key (`sk-…`) or an OAuth access token (`oat-na1-…`, expires
//! after [`HubspotSandboxOptions::access_token_lifetime`], 1800 s). The OAuth and
//! introspection routes take none.
//! - `POST /oauth/v1/token` (form): `grant_type=authorization_code` (`code`, `redirect_uri`,
//!   `client_id`, `client_secret`; codes single use) or `refresh_token` (`refresh_token`,
//!   `client_id`, `client_secret`; HubSpot's refresh tokens do not rotate) →
//!   `{"token_type":"bearer","access_token","refresh_token","expires_in":1800}`. Refusals: 400
//!   `{"status":"BAD_AUTH_CODE"|"BAD_REFRESH_TOKEN"|"BAD_CLIENT_ID"|"BAD_CLIENT_SECRET"|
//!   "BAD_REDIRECT_URI"|"BAD_GRANT_TYPE","message","correlationId"}` (`missing or unknown
//!   refresh token`, `missing or unknown auth code`).
//! - `GET /oauth/authorize?client_id&redirect_uri&scope&optional_scope&state[&portal_id]`:
//!   approves at once, 302 to `redirect_uri?code=…&state=…` (`deny=1` → `error=access_denied`).
//! - `POST /oauth/v2/private-apps/get/access-token-info` `{"tokenKey"}` → `{"userId","hubId",
//!   "appId","scopes"}` (private-app tokens and service keys; OAuth token → 400, unknown → 401).
//! - `GET /oauth/v1/access-tokens/{token}` → `{"token","user","hub_domain","scopes","hub_id",
//!   "app_id","expires_in","user_id","token_type":"access"}` (OAuth tokens; others → 400,
//!   unknown → 401, expired → 401 `EXPIRED_AUTHENTICATION`).
//! - `GET /account-info/v3/details` → `{"portalId","accountType":"STANDARD","timeZone",
//!   "companyCurrency","additionalCurrencies":[],"utcOffset":"-05:00","utcOffsetMilliseconds",
//!   "uiDomain":"app.hubspot.com","dataHostingLocation":"na1"}` (no scope checked).
//! - `GET /account-info/v3/api-usage/daily/private-apps` → `{"results":[{"name":
//!   "private-apps-api-calls-daily","usageLimit","currentUsage","collectedAt","resetsAt",
//!   "fetchStatus":"SUCCESS"}]}`.
//! - Objects (for `contacts`, `companies`, `line_items`, `invoices`,
//!   `commerce_payments`) at `/crm/v3/objects/{type}` and `/crm/objects/{version}/{type}` (any
//!   version, e.g. `2026-03`): `GET ?limit≤100&after&properties&associations`, `POST` (201, inline
//!   `associations`), `GET|PATCH /{id}?idProperty&properties`, `DELETE /{id}` (204),
//!   `POST /batch/{read|create|update|upsert|archive}`, `POST /search`. Scopes
//!   `crm.objects.{contacts|companies|line_items|invoices|commercepayments}.{read|write}`.
//!   Objects render as `{"id","properties":{…,"hs_object_id","createdate",
//!   "lastmodifieddate"|"hs_lastmodifieddate"},"createdAt","updatedAt","archived":false}`
//!   (requested properties that are unset are `null`; without `properties`, a few defaults);
//!   writes answer every stored property; upsert results add `"new"`. List and read take
//!   `associations=companies,…` and add `"associations":{"companies":{"results":[{"id",
//!   "type":"contact_to_company"|"contact_to_company_unlabeled"}]}}` (names UNCONFIRMED beyond
//!   contact↔company).
//! - Associations v4: `POST /crm/v4/associations/{from}/{to}/batch/associate/default`,
//!   `…/batch/create`, `…/batch/read`, `…/batch/archive` (204), `GET …/labels`;
//!   `PUT /crm/v4/objects/{type}/{id}/associations/default/{toType}/{toId}`,
//!   `PUT|DELETE /crm/v4/objects/{type}/{id}/associations/{toType}/{toId}` (labelled PUT takes
//!   `[{"associationCategory","associationTypeId"}]`, 201), `GET /crm/v4/objects/{type}/{id}/
//!   associations/{toType}?limit≤500&after`.
//! - Properties: `GET|POST /crm/v3/properties/{type}`, `POST …/batch/create`,
//!   `GET|PATCH|DELETE …/{name}`, `GET|POST …/groups`. Scopes `crm.schemas.{type}.{read|write}`
//!   (payments: `crm.schemas.commercepayments.*`).
//!
//! # Error shapes
//! One renderer: `{"status":"error","message","correlationId":<uuid>,"category",
//! "errors"?:[…],"links"?:{…}}` with the HTTP status.
//! - 401 `INVALID_AUTHENTICATION` (`Authentication credentials not found. …`) or
//!   `EXPIRED_AUTHENTICATION` (`The OAuth token used to make this call expired N second(s) ago.`).
//! - 403 `MISSING_SCOPES`: `errors:[{"message":"One or more of the following scopes are
//!   required.","context":{"requiredGranularScopes":[…]}}]`, `links:{"scopes":…}`.
//! - 403 `FORBIDDEN`: portal switches (invoice writes unavailable; no payment processing — the
//!   message says "payment processing").
//! - 400 `VALIDATION_ERROR`: bad JSON, > 100 inputs, bad `idProperty`, duplicate ids in one
//!   batch, rules (invoice status, currency, payments' required fields, negative price); for
//!   property values `Property values were not valid: [<json>]` with `errors:[{"message","code":
//!   "PROPERTY_DOESNT_EXIST"|"READ_ONLY_VALUE"|"INVALID_OPTION"|"INVALID_DECIMAL"|
//!   "INVALID_BOOLEAN"|"INVALID_DATE"|"INVALID_DATETIME"|"INVALID_EMAIL","context":{"propertyName":[name]}}]` (codes beyond the first UNCONFIRMED).
//! - 404 `OBJECT_NOT_FOUND`; 409 `CONFLICT` (`Contact already exists. Existing ID: 123`; other
//!   unique values: `A company with the value 'x' for the unique property 'p' already exists.
//!   Existing ID: 123`, wording UNCONFIRMED); 409 `OBJECT_ALREADY_EXISTS` (`Property named 'x'
//!   already exists.`, groups likewise).
//! - 429: `{"status":"error","message":"You have reached your ten_secondly_rolling limit."|
//!   "You have reached your daily limit."|"You have reached your secondly limit.","errorType":
//!   "RATE_LIMIT","correlationId","policyName":"TEN_SECONDLY_ROLLING"|"DAILY"}` (no `category`;
//!   the search body has no `policyName`, UNCONFIRMED).
//!
//! Batch routes answer 200 `{"status":"COMPLETE","results":[…],"startedAt","completedAt"}`,
//! or 207 with `"numErrors":n,"errors":[{"status":"error","category","message","context":
//! {"ids":[<input id or idProperty value>],"objectWriteTraceId":[<trace>]},"errors"?:[…]}]`
//! when inputs fail (each input is applied or refused on its own; a create has no id, so only
//! its trace). Results come back in **reverse input order** (HubSpot promises no order;
//! UNCONFIRMED how it orders). Whole-request refusals (shape, > 100 inputs, non-unique
//! `idProperty`, duplicate ids, scopes, switches) are plain errors.
//!
//! # Rules
//! - Property values are strings; non-strings are accepted (stringified) but recorded as
//!   violations; `""` clears. Unknown and read-only properties → 400.
//! - Contacts: `email` is unique, case-insensitive, stored lower-cased; an implausible one
//!   (no `@`, no dotted domain, spaces) → 400 `INVALID_EMAIL` (rule and code UNCONFIRMED). `hasUniqueValue`
//!   properties are unique too (exact match); at most 10 custom ones per type.
//! - Upserts: `idProperty` per input, `email` (contacts), `hs_object_id` or a `hasUniqueValue`
//!   property; else 400.
//! - Invoices: `hs_currency` required; created as `draft` (a requested status is applied after
//!   inline associations, with the rules below, and the create undone if refused);
//!   `hs_invoice_status` ∈ draft|open|paid|voided; → `open` needs an associated contact and
//!   line item; `paid` cannot be set (payments set it) and a paid invoice keeps its status;
//!   a voided invoice cannot be edited (these three UNCONFIRMED). `hs_number` (`INV-1001`…),
//!   `hs_amount_billed` (Σ quantity × price of associated line items), `hs_amount_paid` (Σ
//!   `hs_initial_amount` of associated payments whose `hs_latest_status` is `succeeded`, the
//!   default), `hs_balance_due` are read-only and computed; an open invoice they cover becomes
//!   `paid`. Amounts are written without trailing zeros (`100`, `12.5`).
//! - Line items: `price` ≥ 0; associated with at most one invoice.
//! - Commerce payments: `hs_initial_amount` and `hs_initiated_date` required on create.
//!
//! # Associations
//! Type ids (`HUBSPOT_DEFINED`; the reverse after the slash): contact→company 279/280, primary 1/2;
//! invoice→contact 177/178; invoice→company 179/180; invoice→line item 409/410;
//! payment→invoice 541/542; payment→contact 387/388; payment→company 389/390;
//! payment→line item 391/392 (all but contact↔company UNCONFIRMED). A labelled association
//! also creates the unlabelled one; every association is stored both ways. Missing objects are
//! 207 item errors (`OBJECT_NOT_FOUND`, `context.ids` = the missing id). `batch/read` of an
//! object without associations answers an empty `to` (UNCONFIRMED). Results: default →
//! `{"from":{"id"},"to":{"id"},"associationSpec":{"associationCategory","associationTypeId"}}`;
//! labelled → `{"fromObjectTypeId","fromObjectId","toObjectTypeId","toObjectId","labels":[…]}`;
//! read → `{"from":{"id"},"to":[{"toObjectId","associationTypes":[{"category","typeId",
//! "label"}]}]}`. Object type ids: contacts 0-1, companies 0-2, line items 0-8, invoices 0-53,
//! payments 0-101 (the last three UNCONFIRMED).
//!
//! # Search
//! `filterGroups` (≤ 5, ≤ 10 filters each, ≤ 25 in all) with `EQ NEQ LT LTE GT GTE BETWEEN IN
//! NOT_IN HAS_PROPERTY NOT_HAS_PROPERTY CONTAINS_TOKEN NOT_CONTAINS_TOKEN` (text compares
//! case-insensitively, numbers numerically, date properties as epoch ms / RFC 3339 /
//! `YYYY-MM-DD`), one sort (`"prop"`, `"-prop"` or `{"propertyName","direction"}`), `query`,
//! `properties`, `limit` ≤ 200, `after` (an offset) < 10,000 → `{"total","results","paging"?:
//! {"next":{"after"}}}`. Objects written within the search lag are not found.
//!
//! # Limits
//! On the sandbox clock. Per app and portal (each private-app token and service key is its own
//! app; OAuth tokens share the OAuth app's): a rolling 10 s window of 100 (Free/Starter) or 190
//! (Professional/Enterprise) requests. Per portal: the daily limit, reset at midnight in the
//! portal's zone. Per token: 4 searches per rolling second (search answers carry no rate
//! headers and do not use the burst window). Answers carry `X-HubSpot-RateLimit-Max`,
//! `-Remaining`, `-Interval-Milliseconds: 10000`, and for non-OAuth tokens `-Daily`,
//! `-Daily-Remaining`. Refused requests do not count.
//!
//! # Faults
//! [`Fault`] rules apply per route class: `oauth`, `account`, `objects` (single-object routes),
//! `batch`, `search`, `associations`, `properties`. A 429 renders as the burst limit, 401 as
//! `INVALID_AUTHENTICATION`, 423 `LOCKED`, 477 `MIGRATION_IN_PROGRESS` with `Retry-After: 60`
//! (or the rule's), 5xx `INTERNAL_ERROR`; `ErrorWith200` is the error body with status 200.
//! [`Control::storm`] forces 429s of a given [`Policy`] (after authentication).
//!
//! # Violations
//! [`Control::violations`] lists requests that broke the shape the notes describe: unknown
//! fields in bodies (batch inputs, search filters, property definitions), > 100 inputs, a
//! non-unique `idProperty`, duplicate ids in a batch, non-string property values or ids,
//! `limit` > 200 in search, unknown routes, a `/crm/objects/{version}` path whose version is not a
//! date (`YYYY-MM`).
//!
//! # Control API
//! In Rust through [`Control`] (the sandbox handle derefs to it), and over HTTP (JSON):
//!
//! | HTTP | Rust |
//! |---|---|
//! | `POST /_sandbox/setup` → [`SandboxPortal`] | [`Control::setup_portal`] |
//! | `POST /_sandbox/portals` [`PortalSeed`] → [`PortalInfo`] | [`Control::add_portal`] |
//! | `GET /_sandbox/portals/{id}` → portal, objects, associations | [`Control::snapshot`] |
//! | `POST /_sandbox/portals/{id}/tokens` `{"kind":"private_app"\|"service_key","scopes"?}` → `{"token"}` | [`Control::issue_private_app_token`], [`Control::issue_service_key`] |
//! | `POST /_sandbox/portals/{id}/codes` `{"scopes"?}` → `{"code"}` | [`Control::issue_oauth_code`] |
//! | `POST /_sandbox/portals/{id}/oauth` `{"scopes"?}` → [`OAuthTokens`] | [`Control::issue_oauth_tokens`] |
//! | `PUT /_sandbox/portals/{id}/switches` `{"invoice_writes_unavailable"?,"no_payment_processing"?,"tier"?,"daily_limit"?}` | [`Control::set_invoice_writes_unavailable`], [`Control::set_no_payment_processing`], [`Control::set_tier`], [`Control::set_daily_limit`] |
//! | `POST\|GET /_sandbox/portals/{id}/objects/{type}` `{"properties"}` → `{"id"}` | [`Control::create_object`], [`Control::objects`] |
//! | `POST /_sandbox/tokens/expire`; `POST /_sandbox/tokens/revoke` `{"token"}` | [`Control::expire_oauth_tokens`], [`Control::revoke_token`] |
//! | `PUT /_sandbox/search-lag` `{"millis"}` | [`Control::set_search_lag`] |
//! | `POST /_sandbox/clock/advance` `{"seconds"}` | [`Control::advance_clock`] |
//! | `POST\|DELETE\|GET /_sandbox/faults` | [`Control::inject`], [`Control::clear_faults`], [`Control::faults`] |
//! | `POST /_sandbox/storms` `{"policy":"TEN_SECONDLY_ROLLING"\|"SECONDLY"\|"DAILY","times","route"?}` | [`Control::storm`] |
//! | `GET /_sandbox/stats`; `POST /_sandbox/stats/reset` | [`Control::stats`], [`Control::reset_stats`] |
//! | `GET /_sandbox/violations` | [`Control::violations`] |
//!
//! Rust only: [`Control::object`], [`Control::archived`], [`Control::associations`],
//! [`Control::properties`], [`Control::property_groups`], [`Control::portal`],
//! [`Control::daily_usage`], [`Control::now`].

mod assoc_types;
mod associations;
mod auth;
mod control;
mod errors;
mod invoices;
mod limits;
mod objects;
mod properties;
mod properties_api;
mod search;
mod state;
mod vendor;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mlc::ports::{Clock, SystemClock};
use mlc::vendors::hubspot::models::ObjectType;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::faults::{self, Gate};
use crate::lock;

pub use crate::SandboxError;
pub use crate::faults::{Fault, FaultAction};
pub use errors::Policy;
pub use properties::{Property, PropertyGroup};
pub use state::{PortalInfo, PortalSeed, StoredObject, Tier, TokenKind};

use state::State;

/// Every scope the sandbox checks: objects and schemas, read and write, for the five types.
pub const ALL_SCOPES: &[&str] = &[
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.objects.line_items.read",
    "crm.objects.line_items.write",
    "crm.objects.invoices.read",
    "crm.objects.invoices.write",
    "crm.objects.commercepayments.read",
    "crm.objects.commercepayments.write",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
    "crm.schemas.companies.read",
    "crm.schemas.companies.write",
    "crm.schemas.line_items.read",
    "crm.schemas.line_items.write",
    "crm.schemas.invoices.read",
    "crm.schemas.invoices.write",
    "crm.schemas.commercepayments.read",
    "crm.schemas.commercepayments.write",
];

/// How the sandbox behaves.
#[derive(Clone)]
pub struct HubspotSandboxOptions {
    /// The OAuth app's client id (token endpoint, authorize page).
    pub client_id: String,
    /// The OAuth app's client secret.
    pub client_secret: String,
    /// The OAuth app's registered redirect URI.
    pub redirect_uri: String,
    /// The OAuth app's id (`app_id` in token metadata; OAuth tokens share its rate limit).
    pub oauth_app_id: u64,
    /// OAuth access-token lifetime: 1800 s at HubSpot.
    pub access_token_lifetime: chrono::Duration,
    /// A new portal's daily request limit unless its seed says otherwise: 250,000 (Free).
    pub daily_limit: u64,
    /// Search requests per second per token: 4 (§3.3).
    pub search_per_second: u32,
    /// How long a written object stays invisible to search (eventual consistency): 0 for
    /// tests, a few seconds at HubSpot. [`Control::set_search_lag`] changes it.
    pub search_lag: Duration,
    /// The clock the sandbox clock runs on ([`Control::advance_clock`] adds an offset).
    pub clock: Arc<dyn Clock>,
    /// Seed of the fault-probability generator.
    pub seed: u64,
}

impl Default for HubspotSandboxOptions {
    fn default() -> Self {
        Self {
            client_id: "sandbox-hubspot-client-id".into(),
            client_secret: "sandbox-hubspot-client-secret".into(),
            redirect_uri: "https://localhost/hubspot/oauth".into(),
            oauth_app_id: 2_000_001,
            access_token_lifetime: chrono::Duration::seconds(1800),
            daily_limit: 250_000,
            search_per_second: 4,
            search_lag: Duration::ZERO,
            clock: Arc::new(SystemClock),
            seed: 0x4b5_5eed,
        }
    }
}

/// A portal with a private-app token holding [`ALL_SCOPES`]: what most tests need.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxPortal {
    /// The portal's settings.
    pub portal: PortalInfo,
    /// A private-app token (`pat-na1-…`) with every scope.
    pub token: String,
}

/// An OAuth token answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthTokens {
    /// The access token (expires after the access-token lifetime).
    pub access_token: String,
    /// The refresh token (does not rotate).
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// A request that broke the API shape the vendor notes describe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// `GET`, `POST`…
    pub method: String,
    /// The request path.
    pub path: String,
    /// What was wrong.
    pub problems: Vec<String>,
}

/// Counters for benchmarks and tests ([`Control::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HubspotStats {
    /// Vendor requests (faulted, refused and throttled ones included).
    pub total: u64,
    /// Requests by route kind, e.g. `"contacts batch/upsert"`, `"associations batch/read"`.
    pub by_route: BTreeMap<String, u64>,
    /// CRM object requests by the API version in their path: `v3` (`/crm/v3/objects/…`) or
    /// the date (`/crm/objects/2026-03/…`).
    pub by_version: BTreeMap<String, u64>,
    /// 429s answered by the limits (not by fault rules), by policy: `TEN_SECONDLY_ROLLING`,
    /// `SECONDLY`, `DAILY`.
    pub throttled: BTreeMap<String, u64>,
    /// 429s answered by [`Control::storm`], by policy.
    pub stormed: BTreeMap<String, u64>,
    /// The most requests one app made to one portal within any 10 s (sandbox clock).
    pub max_in_window: u64,
    /// Batch requests by route kind.
    pub batch_calls: BTreeMap<String, u64>,
    /// Inputs sent in batch requests by route kind.
    pub batch_inputs: BTreeMap<String, u64>,
    /// Requests answered 401.
    pub unauthenticated: u64,
    /// Shape violations recorded ([`Control::violations`]).
    pub violations: usize,
}

/// A run of forced 429s of one policy ([`Control::storm`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Storm {
    policy: Policy,
    route: Option<String>,
    remaining: u32,
}

pub(crate) struct Inner {
    options: HubspotSandboxOptions,
    state: Mutex<State>,
    gate: Gate,
    offset: Mutex<chrono::Duration>,
    search_lag: Mutex<Duration>,
    limits: Mutex<limits::Windows>,
    storms: Mutex<Vec<Storm>>,
    stats: Mutex<HubspotStats>,
    violations: Mutex<Vec<Violation>>,
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        self.options.clock.now() + *lock(&self.offset)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn violate(&self, method: &str, path: &str, problems: Vec<String>) {
        if problems.is_empty() {
            return;
        }
        lock(&self.violations).push(Violation {
            method: method.to_string(),
            path: path.to_string(),
            problems,
        });
    }

    fn count_batch(&self, kind: &str, inputs: usize) {
        let mut stats = lock(&self.stats);
        *stats.batch_calls.entry(kind.to_string()).or_default() += 1;
        *stats.batch_inputs.entry(kind.to_string()).or_default() += inputs as u64;
    }

    /// Takes one forced 429 for a request of class `class`, if a storm is on.
    fn storm(&self, class: &str) -> Option<Policy> {
        let mut storms = lock(&self.storms);
        let i = storms
            .iter()
            .position(|s| s.route.as_deref().is_none_or(|r| r == class))?;
        let policy = storms[i].policy;
        storms[i].remaining = storms[i].remaining.saturating_sub(1);
        if storms[i].remaining == 0 {
            storms.remove(i);
        }
        Some(policy)
    }
}

/// The control API. Cheap to clone.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

/// A running sandbox; stops when dropped.
pub struct HubspotSandbox {
    control: Control,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl HubspotSandbox {
    /// Starts the server on `127.0.0.1:0`.
    pub async fn start(options: HubspotSandboxOptions) -> Self {
        let inner = Arc::new(Inner {
            gate: Gate::new(options.seed),
            state: Mutex::new(State::new()),
            search_lag: Mutex::new(options.search_lag),
            options,
            offset: Mutex::new(chrono::Duration::zero()),
            limits: Mutex::new(limits::Windows::default()),
            storms: Mutex::new(Vec::new()),
            stats: Mutex::new(HubspotStats::default()),
            violations: Mutex::new(Vec::new()),
        });
        let control = Control { inner };
        let app = vendor::router(control.inner.clone()).merge(control::router(control.clone()));
        let (addr, server) = faults::serve(app).await;
        Self {
            control,
            addr,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`: the API base (HubSpot's `https://api.hubapi.com`), the OAuth
    /// endpoints and the control API.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The OAuth token endpoint URL.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/v1/token", self.base_url())
    }
}

impl std::ops::Deref for HubspotSandbox {
    type Target = Control;
    fn deref(&self) -> &Control {
        &self.control
    }
}

impl Drop for HubspotSandbox {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn scope_set(scopes: &[&str]) -> std::collections::BTreeSet<String> {
    scopes.iter().map(|s| s.to_string()).collect()
}

impl Control {
    /// The sandbox clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    /// Moves the sandbox clock forward: OAuth tokens expire, rate windows slide, the daily
    /// limit resets at each portal's midnight.
    pub fn advance_clock(&self, by: chrono::Duration) {
        *lock(&self.inner.offset) += by;
    }

    /// Adds a portal.
    pub fn add_portal(&self, seed: PortalSeed) -> Result<PortalInfo, SandboxError> {
        let now = self.inner.now();
        let daily = self.inner.options.daily_limit;
        self.inner.state().add_portal(seed, daily, now)
    }

    /// A default portal (New York, USD, Free) with a private-app token holding every scope.
    pub fn setup_portal(&self) -> SandboxPortal {
        let seed = PortalSeed::default();
        let portal = match self.add_portal(seed) {
            Ok(p) => p,
            // A default seed names no portal id and a valid zone: it cannot fail.
            Err(e) => unreachable!("a default portal seed is valid: {e}"),
        };
        let token = self
            .issue_private_app_token(portal.portal_id, ALL_SCOPES)
            .unwrap_or_default();
        SandboxPortal { portal, token }
    }

    /// The credential-set JSON (secret `credentials/<name>`) for a token: HubSpot's spec takes
    /// one key, `access_token` (a private-app token, service key or OAuth access token). Point
    /// the client's API base at [`HubspotSandbox::base_url`].
    pub fn credentials_json(&self, token: &str) -> String {
        serde_json::json!({ "access_token": token }).to_string()
    }

    /// A portal's settings.
    pub fn portal(&self, portal_id: u64) -> Result<PortalInfo, SandboxError> {
        Ok(self.inner.state().portal(portal_id)?.info.clone())
    }

    fn issue_static(
        &self,
        portal_id: u64,
        scopes: &[&str],
        kind: TokenKind,
    ) -> Result<String, SandboxError> {
        let mut state = self.inner.state();
        state.portal(portal_id)?;
        let app_id = state.next_app_id();
        let token = match kind {
            TokenKind::PrivateApp => format!("pat-na1-{}", uuid::Uuid::new_v4()),
            _ => format!("sk-{}", uuid::Uuid::new_v4().simple()),
        };
        state.tokens.insert(
            token.clone(),
            state::Token {
                kind,
                portal_id,
                app_id,
                user_id: 9_000_000 + app_id % 1000,
                scopes: scope_set(scopes),
                expires_at: None,
            },
        );
        Ok(token)
    }

    /// A private-app token (`pat-na1-<uuid>`, static) with `scopes`; each is its own app (own
    /// burst window).
    pub fn issue_private_app_token(
        &self,
        portal_id: u64,
        scopes: &[&str],
    ) -> Result<String, SandboxError> {
        self.issue_static(portal_id, scopes, TokenKind::PrivateApp)
    }

    /// A service key (static, opaque) with `scopes`.
    pub fn issue_service_key(
        &self,
        portal_id: u64,
        scopes: &[&str],
    ) -> Result<String, SandboxError> {
        self.issue_static(portal_id, scopes, TokenKind::ServiceKey)
    }

    /// An OAuth authorization code for the OAuth app (single use; exchanged at
    /// `POST /oauth/v1/token` with any redirect URI).
    pub fn issue_oauth_code(
        &self,
        portal_id: u64,
        scopes: &[&str],
    ) -> Result<String, SandboxError> {
        let mut state = self.inner.state();
        state.portal(portal_id)?;
        Ok(auth::mint_code(
            &mut state,
            portal_id,
            scope_set(scopes),
            None,
        ))
    }

    /// An OAuth token pair straight away (as if the code had been exchanged).
    pub fn issue_oauth_tokens(
        &self,
        portal_id: u64,
        scopes: &[&str],
    ) -> Result<OAuthTokens, SandboxError> {
        let now = self.inner.now();
        let mut state = self.inner.state();
        state.portal(portal_id)?;
        let grant = state::Grant {
            portal_id,
            scopes: scope_set(scopes),
            user_id: 9_100_001,
        };
        Ok(auth::mint_pair(&mut state, &self.inner.options, grant, now))
    }

    /// Forgets a token (any kind, access or refresh): it answers 401 from now on.
    pub fn revoke_token(&self, token: &str) {
        let mut state = self.inner.state();
        state.tokens.remove(token);
        state.refresh_tokens.remove(token);
    }

    /// Makes every OAuth access token expire now (refresh tokens keep working).
    pub fn expire_oauth_tokens(&self) {
        let now = self.inner.now();
        for t in self.inner.state().tokens.values_mut() {
            if let Some(at) = t.expires_at.as_mut() {
                *at = (*at).min(now);
            }
        }
    }

    fn switch(&self, portal_id: u64, f: impl FnOnce(&mut PortalInfo)) -> Result<(), SandboxError> {
        let mut state = self.inner.state();
        f(&mut state.portal_mut(portal_id)?.info);
        Ok(())
    }

    /// Invoice and line-item writes answer 403 `FORBIDDEN` (reads still work).
    pub fn set_invoice_writes_unavailable(
        &self,
        portal_id: u64,
        on: bool,
    ) -> Result<(), SandboxError> {
        self.switch(portal_id, |i| i.invoice_writes_unavailable = on)
    }

    /// Commerce-payment writes answer 403 `FORBIDDEN` naming payment processing.
    pub fn set_no_payment_processing(&self, portal_id: u64, on: bool) -> Result<(), SandboxError> {
        self.switch(portal_id, |i| i.no_payment_processing = on)
    }

    /// Changes a portal's tier (its burst limit).
    pub fn set_tier(&self, portal_id: u64, tier: Tier) -> Result<(), SandboxError> {
        self.switch(portal_id, |i| i.tier = tier)
    }

    /// Changes a portal's daily limit.
    pub fn set_daily_limit(&self, portal_id: u64, limit: u64) -> Result<(), SandboxError> {
        self.switch(portal_id, |i| i.daily_limit = limit)
    }

    /// How long written objects stay invisible to search.
    pub fn set_search_lag(&self, lag: Duration) {
        *lock(&self.inner.search_lag) = lag;
    }

    /// Adds a fault rule (route classes: see the module docs).
    pub fn inject(&self, fault: Fault) {
        self.inner.gate.inject(fault);
    }

    /// Removes every fault rule and storm.
    pub fn clear_faults(&self) {
        self.inner.gate.clear_faults();
        lock(&self.inner.storms).clear();
    }

    /// The fault rules still active.
    pub fn faults(&self) -> Vec<Fault> {
        self.inner.gate.faults()
    }

    /// The next `times` authenticated requests (of route class `route`, or any) answer 429
    /// with `policy`'s body, as if that limit were hit.
    pub fn storm(&self, policy: Policy, times: u32, route: Option<&str>) {
        if times == 0 {
            return;
        }
        lock(&self.inner.storms).push(Storm {
            policy,
            route: route.map(str::to_string),
            remaining: times,
        });
    }

    /// Creates an object directly (no scopes, switches or limits; the type's rules still
    /// apply); returns its id.
    pub fn create_object(
        &self,
        portal_id: u64,
        t: ObjectType,
        properties: &[(&str, &str)],
    ) -> Result<String, SandboxError> {
        let now = self.inner.now();
        let mut state = self.inner.state();
        let id = state.next_object_id();
        let props = properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        state
            .portal_mut(portal_id)?
            .create(id, t, props, now)
            .map(|id| id.to_string())
            .map_err(|e| SandboxError::Invalid(e.message))
    }

    /// One object as stored (every property), or `None` when absent or archived.
    pub fn object(&self, portal_id: u64, t: ObjectType, id: &str) -> Option<StoredObject> {
        let id = id.parse::<u64>().ok()?;
        let state = self.inner.state();
        state.portal(portal_id).ok()?.object(t, id).cloned()
    }

    /// Every live object of a type, by id.
    pub fn objects(&self, portal_id: u64, t: ObjectType) -> Vec<StoredObject> {
        let state = self.inner.state();
        state
            .portal(portal_id)
            .map(|p| p.objects_of(t).cloned().collect())
            .unwrap_or_default()
    }

    /// Archived objects of a type (the recycle bin).
    pub fn archived(&self, portal_id: u64, t: ObjectType) -> Vec<StoredObject> {
        let state = self.inner.state();
        state
            .portal(portal_id)
            .ok()
            .and_then(|p| p.archived.get(&t))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The objects of type `to` associated with `(from, id)` and the type ids of each link.
    pub fn associations(
        &self,
        portal_id: u64,
        from: ObjectType,
        id: &str,
        to: ObjectType,
    ) -> Vec<(String, Vec<u32>)> {
        let Ok(id) = id.parse::<u64>() else {
            return Vec::new();
        };
        let state = self.inner.state();
        let Ok(portal) = state.portal(portal_id) else {
            return Vec::new();
        };
        portal
            .linked(from, id, to)
            .into_iter()
            .map(|other| {
                let types = portal
                    .link_types((from, id), (to, other))
                    .into_iter()
                    .map(|(_, type_id)| type_id)
                    .collect();
                (other.to_string(), types)
            })
            .collect()
    }

    /// A type's property definitions.
    pub fn properties(&self, portal_id: u64, t: ObjectType) -> Vec<Property> {
        let state = self.inner.state();
        state
            .portal(portal_id)
            .ok()
            .and_then(|p| p.property_defs(t))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// A type's property groups.
    pub fn property_groups(&self, portal_id: u64, t: ObjectType) -> Vec<PropertyGroup> {
        let state = self.inner.state();
        state
            .portal(portal_id)
            .ok()
            .and_then(|p| p.groups.get(&t).cloned())
            .unwrap_or_default()
    }

    /// Requests a portal made today (its day, in its time zone).
    pub fn daily_usage(&self, portal_id: u64) -> u64 {
        let now = self.inner.now();
        let mut state = self.inner.state();
        state
            .portal_mut(portal_id)
            .map(|p| limits::roll_day(p, now))
            .unwrap_or(0)
    }

    /// The counters.
    pub fn stats(&self) -> HubspotStats {
        let mut stats = lock(&self.inner.stats).clone();
        stats.violations = lock(&self.inner.violations).len();
        stats
    }

    /// Zeroes the counters and clears the violations (limits and state are kept).
    pub fn reset_stats(&self) {
        *lock(&self.inner.stats) = HubspotStats::default();
        lock(&self.inner.violations).clear();
    }

    /// Requests that broke the API shape; a test of a client asserts this is empty.
    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.inner.violations).clone()
    }

    /// A JSON snapshot of a portal (objects, associations) for the HTTP control API.
    pub fn snapshot(&self, portal_id: u64) -> Result<Value, SandboxError> {
        let state = self.inner.state();
        let portal = state.portal(portal_id)?;
        let mut objects = serde_json::Map::new();
        for t in ObjectType::ALL {
            let list: Vec<Value> = portal.objects_of(t).map(|o| serde_json::json!(o)).collect();
            objects.insert(t.path().to_string(), Value::Array(list));
        }
        let links: Vec<Value> = portal
            .links
            .iter()
            .flat_map(|((ft, fid), m)| {
                m.iter().map(move |((tt, tid), types)| {
                    serde_json::json!({
                        "from": {"type": ft.path(), "id": fid.to_string()},
                        "to": {"type": tt.path(), "id": tid.to_string()},
                        "typeIds": types.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
                    })
                })
            })
            .collect();
        Ok(serde_json::json!({"portal": portal.info, "objects": objects, "associations": links}))
    }
}
