//! The Mailchimp sandbox: an in-process Marketing API v3 on `127.0.0.1:<random port>` speaking
//! the subset the product uses, with Mailchimp's auth, error shapes and limits, request
//! validation against Mailchimp's OpenAPI document, fault injection and a control API.
//!
//! ```no_run
//! # async fn demo() {
//! use mlc_sandbox::mailchimp::{Fault, MailchimpSandbox, MailchimpSandboxOptions};
//! let sandbox = MailchimpSandbox::start(MailchimpSandboxOptions::default()).await;
//! let base = sandbox.base_url(); // http://127.0.0.1:PORT/3.0
//! let key = sandbox.api_key();   // <32 hex>-us21
//! sandbox.inject(Fault::status(503).probability(0.2));
//! // … run the product …
//! assert!(sandbox.violations().is_empty());
//! # }
//! ```
//!
//! # API behaviour
//! - Auth: HTTP Basic with any user name and [`MailchimpSandbox::api_key`] as password, or
//!   `Bearer` [`MailchimpSandbox::oauth_token`]. Anything else → 401 "API Key Invalid" (none at
//!   all → 401 "API Key Missing"). A key for another data centre is a different key, so 401.
//! - Simultaneous connections: more than `connection_limit` (10) requests in flight → 429
//!   "Too Many Requests". Counted: [`MailchimpSandbox::too_many_requests_served`], and the peak
//!   in flight: [`MailchimpSandbox::peak_concurrency`].
//! - Validation: every request is matched to a path of the spec, its query checked and its JSON
//!   body validated against the operation's `requestBody` schema ([`spec`]). A violation is
//!   answered 400 "Invalid Resource" with `errors[]` and recorded
//!   ([`MailchimpSandbox::violations`]). A path not in the spec → 404, a method not in the spec
//!   → 405, both recorded as violations too.
//! - Endpoints (state semantics in [`state`]): `GET /` (the account), `GET /ping`;
//!   `GET /lists/{id}`; members `GET`/`PUT`/`PATCH`/`DELETE` (archive), `POST /lists/{id}/members`
//!   (a new address only) and `POST …/actions/delete-permanent`; tags
//!   `GET`/`POST`; merge fields `GET` (count/offset)/`POST`; stores `POST`/`GET`/`PATCH`/`DELETE`;
//!   customers `PUT`/`POST`/`PATCH`/`GET`/`DELETE`; products `POST`/`GET`/`PATCH`, variants `PUT`; orders
//!   `POST`/`GET`/`PATCH`/`DELETE`, order lines `DELETE`; list webhooks `POST`/`GET` and
//!   `GET`/`DELETE` by id ([`webhooks`]: creating GETs the URL first and needs a 200, else
//!   400 "We couldn't verify the URL is working…"); the lists a user of `dev --sandbox` looks
//!   at: `GET /lists`, `GET /lists/{id}/members` (`status`, `since_`/`before_last_changed`,
//!   `since_`/`before_timestamp_opt`, `unique_email_id`, `vip_only`), stores, and a store's
//!   customers, products (and their variants) and orders (and their lines), one merge field;
//!   lists paged by `count` (10, ≤ 1000)/`offset`. A filter the
//!   sandbox does not apply → 501 naming it. Other spec operations → 501
//!   ([`NOT_SERVED`] lists them).
//!   `GET /oauth2/metadata` (header `Authorization: OAuth <token>`) answers the OAuth metadata
//!   with `api_endpoint` = this server.
//! - List webhook deliveries ([`webhooks`]): member changes made through the control API (as a
//!   person in Mailchimp: source `user`, or `admin` for cleaning) and through `PUT` members
//!   (source `api`) are POSTed form-encoded to every webhook of the list whose `events` and
//!   `sources` take them, asynchronously, in order per webhook, retried on failure. Tests
//!   wait with [`MailchimpSandbox::wait_for_list_webhook_deliveries`].
//! - Errors are `application/problem+json` `{type,title,status,detail,instance[,errors]}` with
//!   the same id in the `X-Request-Id` header.
//!
//! # Control API
//! As Rust methods on [`MailchimpSandbox`] and as JSON over HTTP (no auth) on the same port:
//!
//! | HTTP | Rust | what |
//! |---|---|---|
//! | `GET /_sandbox/state` | [`MailchimpSandbox::state`] | lists (merge fields, members, forgotten), stores (customers, products, orders with lines) |
//! | `GET /_sandbox/stats` | [`MailchimpSandbox::stats`] | 429s served, peak/current concurrency, request counts by `METHOD /template`, violation count |
//! | `GET /_sandbox/requests` | [`MailchimpSandbox::requests`] | the request log |
//! | `GET /_sandbox/violations` | [`MailchimpSandbox::violations`] | spec violations |
//! | `POST /_sandbox/lists` `{"id","name"}` | [`MailchimpSandbox::create_list`] | add an audience |
//! | `POST /_sandbox/members` `{"list_id","email","status","compliance"}` | [`MailchimpSandbox::seed_member`] | add/replace a member |
//! | `POST /_sandbox/compliance` `{"list_id","email","compliance"}` | [`MailchimpSandbox::set_compliance`] | flag a member in compliance state |
//! | `POST /_sandbox/forget` `{"list_id","email"}` | [`MailchimpSandbox::forget_member`] | permanently delete a member |
//! | `POST /_sandbox/faults` [`Fault`] | [`MailchimpSandbox::inject`] | add a fault rule |
//! | `DELETE /_sandbox/faults` | [`MailchimpSandbox::clear_faults`] | remove all fault rules |
//! | `PUT /_sandbox/latency` `{"ms"}` | [`MailchimpSandbox::set_latency`] | latency added to every API request |
//! | `PUT /_sandbox/connection-limit` `{"limit"}` | [`MailchimpSandbox::set_connection_limit`] | simultaneous-connection limit |
//! | `POST /_sandbox/reset-stats` | [`MailchimpSandbox::reset_stats`] | zero counters, clear the request log and violations |
//! | `POST /_sandbox/list-webhooks` `{"list_id","url"}` | [`MailchimpSandbox::add_list_webhook`] | add a webhook as a user in the UI (validated with a GET) |
//! | `POST /_sandbox/members/subscribe` `{"list_id","email"}` | [`MailchimpSandbox::subscribe_member`] | the person subscribes |
//! | `POST /_sandbox/members/unsubscribe` `{"list_id","email","reason"?}` | [`MailchimpSandbox::unsubscribe_member`] | the person unsubscribes |
//! | `POST /_sandbox/members/profile` `{"list_id","email","merges"}` | [`MailchimpSandbox::update_member_profile`] | the person edits their profile |
//! | `POST /_sandbox/members/email` `{"list_id","email","new_email"}` | [`MailchimpSandbox::change_member_email`] | the person changes their address |
//! | `POST /_sandbox/members/clean` `{"list_id","email","reason"?}` | [`MailchimpSandbox::clean_member`] | Mailchimp cleans the address |
//! | `GET /_sandbox/list-webhook-deliveries` | [`MailchimpSandbox::list_webhook_deliveries`] | every delivery attempt |
//! | `GET /_sandbox/list-webhook-validations` | [`MailchimpSandbox::list_webhook_validations`] | every validation GET |
//!
//! Fault rules ([`Fault`]) are tried in order for each API request (after auth and the
//! connection limit); the first that matches method/path and wins its probability roll fires:
//! an injected status (problem body, or none with `bare`), a dropped connection (before or after
//! the request is processed), or only a delay. `times` limits a rule to its next N firings
//! (a 429 burst = `Fault::status(429).times(n)`).

pub mod spec;
pub mod state;
pub mod webhooks;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::lock;
pub use spec::FieldError;
use state::Reply;
pub use state::{
    AccountState, ListState, MemberState, MergeFieldState, OrderState, ProductState, StoreState,
};
pub use state::{ApiError, NewWebhook};
pub use webhooks::{
    ListWebhookDelivery, ListWebhookValidation, WebhookEvents, WebhookSources, WebhookState,
};

/// The list the default options pre-create (Mailchimp list ids are 10 hex digits).
pub const DEFAULT_LIST_ID: &str = "a1b2c3d4e5";

/// How the sandbox starts.
#[derive(Debug, Clone)]
pub struct MailchimpSandboxOptions {
    /// Data centre of the key (`us21`).
    pub dc: String,
    /// The accepted key's 32-hex part; random when `None`.
    pub key_hex: Option<String>,
    /// Audiences to pre-create (with Mailchimp's default merge fields).
    pub lists: Vec<String>,
    /// Simultaneous requests allowed before 429 (Mailchimp: 10).
    pub connection_limit: usize,
    /// Added to every API request.
    pub latency: Duration,
    /// Refuse merge tags the audience does not have (see [`state`]).
    pub strict_merge_fields: bool,
    /// Seed for fault probabilities (reproducible runs); random when `None`.
    pub seed: Option<u64>,
    /// Timeout of one list-webhook delivery or validation GET (Mailchimp: 10 s).
    pub webhook_timeout: Duration,
    /// Waits before each retry of a failed list-webhook delivery; its length is the number of
    /// retries. Mailchimp retries at growing intervals for 75 minutes; scaled down here.
    pub webhook_retry_delays: Vec<Duration>,
}

impl Default for MailchimpSandboxOptions {
    fn default() -> Self {
        Self {
            dc: "us21".into(),
            key_hex: None,
            lists: vec![DEFAULT_LIST_ID.into()],
            connection_limit: 10,
            latency: Duration::ZERO,
            strict_merge_fields: true,
            seed: None,
            webhook_timeout: Duration::from_secs(10),
            webhook_retry_delays: [100, 500, 2000]
                .into_iter()
                .map(Duration::from_millis)
                .collect(),
        }
    }
}

/// How a dropped connection happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropMode {
    /// The request is not processed.
    Before,
    /// The request is processed (a write is applied), then the connection dies.
    After,
}

/// A fault rule (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Answer with this status (a problem document unless `bare`).
    #[serde(default)]
    pub status: Option<u16>,
    /// Drop the connection instead.
    #[serde(default)]
    pub drop: Option<DropMode>,
    /// Delay before answering (alone: a slow but normal answer).
    #[serde(default)]
    pub delay_ms: u64,
    /// Only this method (`PUT`).
    #[serde(default)]
    pub method: Option<String>,
    /// Only paths containing this text (`/orders`).
    #[serde(default)]
    pub path_contains: Option<String>,
    /// Fire at most this many more times; unlimited when `None`.
    #[serde(default)]
    pub times: Option<u32>,
    /// Chance of firing when it matches (0..=1).
    #[serde(default = "one")]
    pub probability: f64,
    /// An injected status without a body (Mailchimp's bare 403/429 under load).
    #[serde(default)]
    pub bare: bool,
    /// `Retry-After` seconds on an injected status.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
}

fn one() -> f64 {
    1.0
}

impl Fault {
    fn base() -> Self {
        Self {
            status: None,
            drop: None,
            delay_ms: 0,
            method: None,
            path_contains: None,
            times: None,
            probability: 1.0,
            bare: false,
            retry_after_secs: None,
        }
    }

    /// Answer `status`.
    pub fn status(status: u16) -> Self {
        Self {
            status: Some(status),
            ..Self::base()
        }
    }

    /// Drop the connection.
    pub fn drop_connection(mode: DropMode) -> Self {
        Self {
            drop: Some(mode),
            ..Self::base()
        }
    }

    /// Only delay.
    pub fn delay(delay: Duration) -> Self {
        Self {
            delay_ms: delay.as_millis() as u64,
            ..Self::base()
        }
    }

    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    pub fn probability(mut self, p: f64) -> Self {
        self.probability = p;
        self
    }

    pub fn on(mut self, method: &str, path_contains: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self.path_contains = Some(path_contains.into());
        self
    }

    pub fn bare(mut self) -> Self {
        self.bare = true;
        self
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
}

/// One API request as served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub request_id: String,
    pub method: String,
    pub path: String,
    /// The spec's path template, when the path matched one.
    pub template: Option<String>,
    pub status: u16,
    /// What answered: `api`, `auth`, `limit`, `fault`, `drop`, `validation`.
    pub by: String,
}

/// A request that broke the spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub request_id: String,
    pub method: String,
    pub path: String,
    pub template: Option<String>,
    pub errors: Vec<FieldError>,
    pub body: Option<Value>,
}

/// Counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub too_many_requests: u64,
    pub peak_concurrency: usize,
    pub in_flight: usize,
    pub requests: usize,
    /// By `METHOD /template` (or the raw path when no template matched).
    pub counts: BTreeMap<String, u64>,
    pub violations: usize,
}

struct Shared {
    api_key: String,
    oauth_token: String,
    dc: String,
    root_url: String,
    strict_merge_fields: bool,
    connection_limit: AtomicUsize,
    latency_ms: AtomicU64,
    account: Mutex<AccountState>,
    faults: Mutex<Vec<Fault>>,
    rng: Mutex<fastrand::Rng>,
    requests: Mutex<Vec<RequestRecord>>,
    violations: Mutex<Vec<Violation>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    throttled: AtomicU64,
    webhooks: webhooks::Deliverer,
}

/// A running sandbox; stops when dropped.
pub struct MailchimpSandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for MailchimpSandbox {
    fn drop(&mut self) {
        self.server.abort();
        self.shared.webhooks.abort();
    }
}

impl MailchimpSandbox {
    /// Starts the sandbox. Panics if the port cannot be bound or the vendored spec cannot be
    /// loaded (test infrastructure: the test cannot run then); see [`Self::try_start`].
    pub async fn start(options: MailchimpSandboxOptions) -> Self {
        match Self::try_start(options).await {
            Ok(s) => s,
            Err(e) => panic!("Mailchimp sandbox did not start: {e}"),
        }
    }

    /// Starts the sandbox, or says why it could not.
    pub async fn try_start(options: MailchimpSandboxOptions) -> Result<Self, String> {
        // Load (once per process) before serving, so the first request is not slow.
        let spec_load = tokio::task::spawn_blocking(spec::spec)
            .await
            .map_err(|e| format!("loading the spec: {e}"))?;
        spec_load?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("binding 127.0.0.1:0: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let key_hex = options
            .key_hex
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let mut account = AccountState::default();
        for list in &options.lists {
            account.create_list(list, &format!("Audience {list}"), true);
        }
        let shared = Arc::new(Shared {
            api_key: format!("{key_hex}-{}", options.dc),
            oauth_token: uuid::Uuid::new_v4().simple().to_string(),
            dc: options.dc.clone(),
            root_url: format!("http://{addr}"),
            strict_merge_fields: options.strict_merge_fields,
            connection_limit: AtomicUsize::new(options.connection_limit),
            latency_ms: AtomicU64::new(options.latency.as_millis() as u64),
            account: Mutex::new(account),
            faults: Mutex::new(Vec::new()),
            rng: Mutex::new(match options.seed {
                Some(seed) => fastrand::Rng::with_seed(seed),
                None => fastrand::Rng::new(),
            }),
            requests: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            throttled: AtomicU64::new(0),
            webhooks: webhooks::Deliverer::new(
                options.webhook_timeout,
                options.webhook_retry_delays.clone(),
            )?,
        });
        let app = router(shared.clone());
        let server = tokio::spawn(async move {
            // Ends only when aborted (drop) or the listener fails.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            shared,
            addr,
            server,
        })
    }

    /// `http://127.0.0.1:PORT/3.0`.
    pub fn base_url(&self) -> String {
        format!("http://{}/3.0", self.addr)
    }

    /// `http://127.0.0.1:PORT` (the OAuth `api_endpoint`).
    pub fn root_url(&self) -> String {
        self.shared.root_url.clone()
    }

    /// `http://127.0.0.1:PORT/oauth2/metadata`.
    pub fn oauth_metadata_url(&self) -> String {
        format!("http://{}/oauth2/metadata", self.addr)
    }

    /// The accepted API key, `<32 hex>-<dc>`.
    pub fn api_key(&self) -> String {
        self.shared.api_key.clone()
    }

    /// The accepted OAuth access token.
    pub fn oauth_token(&self) -> String {
        self.shared.oauth_token.clone()
    }

    pub fn dc(&self) -> String {
        self.shared.dc.clone()
    }

    /// The credential secret JSON for the API key: `{"api_key":"…"}`.
    pub fn credentials_json(&self) -> String {
        json!({ "api_key": self.shared.api_key }).to_string()
    }

    // ---- control ----------------------------------------------------------------------

    pub fn create_list(&self, id: &str, name: &str) {
        lock(&self.shared.account).create_list(id, name, true);
    }

    /// Adds or replaces a member directly (no API semantics).
    pub fn seed_member(&self, list_id: &str, email: &str, status: &str, compliance: bool) {
        seed_member(&self.shared, list_id, email, status, compliance);
    }

    /// Flags a member so writes answer "Member In Compliance State"; false if no such member.
    pub fn set_compliance(&self, list_id: &str, email: &str, compliance: bool) -> bool {
        let mut account = lock(&self.shared.account);
        let hash = state::member_key(email);
        match account
            .lists
            .get_mut(list_id)
            .and_then(|l| l.members.get_mut(&hash))
        {
            Some(m) => {
                m.compliance = compliance;
                true
            }
            None => false,
        }
    }

    /// Permanently deletes a member: later writes answer "Forgotten Email Not Subscribed".
    pub fn forget_member(&self, list_id: &str, email: &str) {
        forget_member(&self.shared, list_id, email);
    }

    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    pub fn set_latency(&self, latency: Duration) {
        self.shared
            .latency_ms
            .store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn set_connection_limit(&self, limit: usize) {
        self.shared.connection_limit.store(limit, Ordering::SeqCst);
    }

    pub fn reset_stats(&self) {
        reset_stats(&self.shared);
    }

    // ---- members changed as people do in Mailchimp, list webhooks ----------------------

    /// Adds a list webhook as a user pasting `url` into Mailchimp's UI: every member event,
    /// sources `user` and `admin` (not `api`). Like the API, it GETs the URL first and needs
    /// a 200.
    pub async fn add_list_webhook(
        &self,
        list_id: &str,
        url: &str,
    ) -> Result<WebhookState, ApiError> {
        add_list_webhook(&self.shared, list_id, url).await
    }

    /// The person subscribes through a Mailchimp form (created if new): `subscribe`, source
    /// `user`.
    pub async fn subscribe_member(&self, list_id: &str, email: &str) -> Result<(), ApiError> {
        change_member(&self.shared, |a| a.subscribe_member(list_id, email))
    }

    /// The person unsubscribes: status `unsubscribed`, `unsubscribe` with `data[action]=unsub`
    /// and `data[reason]` = `reason` or `manual`, source `user`.
    pub async fn unsubscribe_member(
        &self,
        list_id: &str,
        email: &str,
        reason: Option<&str>,
    ) -> Result<(), ApiError> {
        change_member(&self.shared, |a| {
            a.unsubscribe_member(list_id, email, reason)
        })
    }

    /// The person edits their profile (merge tag → value): `profile`, source `user`.
    pub async fn update_member_profile(
        &self,
        list_id: &str,
        email: &str,
        merges: serde_json::Map<String, Value>,
    ) -> Result<(), ApiError> {
        change_member(&self.shared, |a| {
            a.update_member_profile(list_id, email, &merges)
        })
    }

    /// The person changes their address; the member keeps its data under the new address
    /// (new subscriber hash): `upemail`, then `profile`, source `user`.
    pub async fn change_member_email(
        &self,
        list_id: &str,
        old_email: &str,
        new_email: &str,
    ) -> Result<(), ApiError> {
        change_member(&self.shared, |a| {
            a.change_member_email(list_id, old_email, new_email)
        })
    }

    /// Mailchimp cleans the address: status `cleaned`, `cleaned` with `data[reason]` =
    /// `reason` or `hard`, source `admin`.
    pub async fn clean_member(
        &self,
        list_id: &str,
        email: &str,
        reason: Option<&str>,
    ) -> Result<(), ApiError> {
        change_member(&self.shared, |a| a.clean_member(list_id, email, reason))
    }

    /// The list's webhooks.
    pub fn list_webhooks(&self, list_id: &str) -> Vec<WebhookState> {
        lock(&self.shared.account)
            .lists
            .get(list_id)
            .map(|l| l.webhooks.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every list-webhook delivery attempt so far, oldest first (retries are separate
    /// records with a higher `attempt`).
    pub fn list_webhook_deliveries(&self) -> Vec<ListWebhookDelivery> {
        self.shared.webhooks.deliveries()
    }

    /// Every validation GET made when creating webhooks.
    pub fn list_webhook_validations(&self) -> Vec<ListWebhookValidation> {
        self.shared.webhooks.validations()
    }

    /// Deliveries queued and not finished (delivered or out of retries).
    pub fn pending_list_webhook_deliveries(&self) -> usize {
        self.shared.webhooks.pending()
    }

    /// Waits until no delivery is pending; false if some still are after `timeout`.
    pub async fn wait_for_list_webhook_deliveries(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.shared.webhooks.pending() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    // ---- state ------------------------------------------------------------------------

    /// A snapshot of the account.
    pub fn state(&self) -> AccountState {
        lock(&self.shared.account).clone()
    }

    pub fn member(&self, list_id: &str, email: &str) -> Option<MemberState> {
        lock(&self.shared.account)
            .lists
            .get(list_id)?
            .members
            .get(&state::member_key(email))
            .cloned()
    }

    pub fn members(&self, list_id: &str) -> Vec<MemberState> {
        lock(&self.shared.account)
            .lists
            .get(list_id)
            .map(|l| l.members.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn merge_fields(&self, list_id: &str) -> Vec<MergeFieldState> {
        lock(&self.shared.account)
            .lists
            .get(list_id)
            .map(|l| l.merge_fields.clone())
            .unwrap_or_default()
    }

    pub fn store(&self, store_id: &str) -> Option<StoreState> {
        lock(&self.shared.account).stores.get(store_id).cloned()
    }

    pub fn order(&self, store_id: &str, order_id: &str) -> Option<OrderState> {
        lock(&self.shared.account)
            .stores
            .get(store_id)?
            .orders
            .get(order_id)
            .cloned()
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).clone()
    }

    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.shared.violations).clone()
    }

    pub fn stats(&self) -> Stats {
        stats(&self.shared)
    }

    /// Requests served by `METHOD /template`.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        stats(&self.shared).counts
    }

    pub fn too_many_requests_served(&self) -> u64 {
        self.shared.throttled.load(Ordering::SeqCst)
    }

    pub fn peak_concurrency(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }
}

fn seed_member(shared: &Shared, list_id: &str, email: &str, status: &str, compliance: bool) {
    let mut account = lock(&shared.account);
    if !account.lists.contains_key(list_id) {
        account.create_list(list_id, list_id, true);
    }
    if let Some(list) = account.lists.get_mut(list_id) {
        let hash = mlc::vendors::mailchimp::webhook::subscriber_hash(email);
        list.forgotten.remove(&hash);
        list.members.insert(
            hash,
            MemberState {
                email_address: email.trim().to_string(),
                status: status.into(),
                merge_fields: BTreeMap::new(),
                tags: Default::default(),
                compliance,
                writes: 0,
                meta: state::MemberMeta::new("Admin Add"),
            },
        );
    }
}

fn forget_member(shared: &Shared, list_id: &str, email: &str) {
    let mut account = lock(&shared.account);
    if let Some(list) = account.lists.get_mut(list_id) {
        let hash = state::member_key(email);
        list.members.remove(&hash);
        list.forgotten.insert(hash);
    }
}

/// Hands the account's new member events to the webhook deliveries, in order.
fn flush_events(shared: &Shared, account: &mut AccountState) {
    for event in std::mem::take(&mut account.outbox) {
        if let Some(list) = account.lists.get(&event.list_id) {
            shared.webhooks.enqueue(&event, list.webhooks.values());
        }
    }
}

/// Applies a control change to a member and queues its deliveries.
fn change_member(
    shared: &Shared,
    change: impl FnOnce(&mut AccountState) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let mut account = lock(&shared.account);
    let result = change(&mut account);
    flush_events(shared, &mut account);
    result
}

/// Creates a webhook: `check` reads the request, then the URL must answer the validation GET
/// with 200 (not under the account lock).
async fn create_webhook(
    shared: &Shared,
    list_id: &str,
    check: impl FnOnce(&mut AccountState) -> Result<NewWebhook, ApiError>,
) -> Result<WebhookState, ApiError> {
    let new = check(&mut lock(&shared.account))?;
    if let Err(message) = shared.webhooks.validate(list_id, &new.url).await {
        return Err(ApiError::invalid(
            message.clone(),
            vec![FieldError {
                field: "url".into(),
                message,
            }],
        ));
    }
    lock(&shared.account).insert_webhook(list_id, new)
}

async fn add_list_webhook(
    shared: &Shared,
    list_id: &str,
    url: &str,
) -> Result<WebhookState, ApiError> {
    let body = json!({"url": url, "events": WebhookEvents::members(),
        "sources": WebhookSources::not_api()});
    create_webhook(shared, list_id, |a| a.check_new_webhook(list_id, &body)).await
}

fn reset_stats(shared: &Shared) {
    lock(&shared.requests).clear();
    lock(&shared.violations).clear();
    shared.throttled.store(0, Ordering::SeqCst);
    shared
        .peak
        .store(shared.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
}

fn stats(shared: &Shared) -> Stats {
    let requests = lock(&shared.requests);
    let mut counts = BTreeMap::new();
    for r in requests.iter() {
        let key = format!("{} {}", r.method, r.template.as_deref().unwrap_or(&r.path));
        *counts.entry(key).or_insert(0) += 1;
    }
    Stats {
        too_many_requests: shared.throttled.load(Ordering::SeqCst),
        peak_concurrency: shared.peak.load(Ordering::SeqCst),
        in_flight: shared.in_flight.load(Ordering::SeqCst),
        requests: requests.len(),
        counts,
        violations: lock(&shared.violations).len(),
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/3.0/{*rest}", any(api))
        // The API root (`GET /3.0/`): a catch-all does not match an empty rest.
        .route("/3.0/", any(api))
        .route("/3.0", any(api))
        .route("/oauth2/metadata", get(oauth_metadata))
        .route("/_sandbox/state", get(control_state))
        .route("/_sandbox/stats", get(control_stats))
        .route("/_sandbox/requests", get(control_requests))
        .route("/_sandbox/violations", get(control_violations))
        .route("/_sandbox/lists", post(control_list))
        .route("/_sandbox/members", post(control_member))
        .route("/_sandbox/compliance", post(control_compliance))
        .route("/_sandbox/forget", post(control_forget))
        .route(
            "/_sandbox/faults",
            post(control_fault).delete(control_clear_faults),
        )
        .route("/_sandbox/latency", put(control_latency))
        .route("/_sandbox/connection-limit", put(control_limit))
        .route("/_sandbox/reset-stats", post(control_reset))
        .route("/_sandbox/list-webhooks", post(control_add_webhook))
        .route(
            "/_sandbox/list-webhook-deliveries",
            get(control_webhook_deliveries),
        )
        .route(
            "/_sandbox/list-webhook-validations",
            get(control_webhook_validations),
        )
        .route("/_sandbox/members/{change}", post(control_member_change))
        .with_state(shared)
}

/// Counts a request in flight for as long as it lives (also when its future is dropped).
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> (Self, usize) {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak.fetch_max(now, Ordering::SeqCst);
        (Self(shared), now)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn problem(request_id: &str, err: &ApiError) -> Response {
    let mut body = json!({
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": err.title, "status": err.status, "detail": err.detail, "instance": request_id,
    });
    if !err.errors.is_empty() {
        body["errors"] = json!(err.errors);
    }
    let mut response = (
        StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body.to_string(),
    )
        .into_response();
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/problem+json; charset=utf-8"),
    );
    response
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

fn reply_response(reply: Reply, request_id: &str) -> Response {
    match reply {
        Ok((status, body)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            match body {
                Some(body) => (status, axum::Json(body)).into_response(),
                None => status.into_response(),
            }
        }
        Err(e) => problem(request_id, &e),
    }
}

/// A body that fails at once: the server drops the connection.
struct Failing;

impl futures_core::Stream for Failing {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox fault: connection dropped",
        ))))
    }
}

fn dropped() -> Response {
    Response::new(Body::from_stream(Failing))
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    use base64::Engine as _;
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(ApiError::new(
            401,
            "API Key Missing",
            "Your request did not include an API key.",
        ));
    };
    let ok = if let Some(b64) = value.strip_prefix("Basic ") {
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| pair.split_once(':').map(|(_, key)| key == shared.api_key))
            .unwrap_or(false)
    } else if let Some(token) = value.strip_prefix("Bearer ") {
        token.trim() == shared.oauth_token
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            401,
            "API Key Invalid",
            "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
        ))
    }
}

/// The fault to apply to this request, if any rule fires.
fn pick_fault(shared: &Shared, method: &str, path: &str) -> Option<Fault> {
    let mut faults = lock(&shared.faults);
    let mut rng = lock(&shared.rng);
    for fault in faults.iter_mut() {
        let matches = fault.method.as_deref().is_none_or(|m| m == method)
            && fault
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
            && fault.times != Some(0);
        if matches && rng.f64() < fault.probability {
            if let Some(n) = fault.times.as_mut() {
                *n -= 1;
            }
            return Some(fault.clone());
        }
    }
    None
}

async fn api(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (_guard, now) = InFlight::enter(&shared);
    let method = method.as_str().to_string();
    let path = uri
        .path()
        .strip_prefix("/3.0")
        .unwrap_or(uri.path())
        .to_string();
    let mut record = RequestRecord {
        request_id: request_id.clone(),
        method: method.clone(),
        path: path.clone(),
        template: None,
        status: 0,
        by: "api".into(),
    };
    let response = serve(&shared, &mut record, now, &uri, &headers, &body).await;
    record.status = response.status().as_u16();
    lock(&shared.requests).push(record);
    with_request_id(response, &request_id)
}

async fn serve(
    shared: &Shared,
    record: &mut RequestRecord,
    in_flight: usize,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let request_id = record.request_id.clone();
    let query: Vec<(String, String)> = uri.query().map(parse_query).unwrap_or_default();
    // Matched early so every log entry carries its template.
    let checked = match spec::spec() {
        Ok(spec) => spec.check(&record.method, &record.path, &query, body),
        Err(e) => {
            return problem(&request_id, &ApiError::new(500, "Internal Server Error", e));
        }
    };
    record.template = checked.template.clone();
    if let Err(e) = authorized(shared, headers) {
        record.by = "auth".into();
        return problem(&request_id, &e);
    }
    if in_flight > shared.connection_limit.load(Ordering::SeqCst) {
        shared.throttled.fetch_add(1, Ordering::SeqCst);
        record.by = "limit".into();
        return problem(
            &request_id,
            &ApiError::new(
                429,
                "Too Many Requests",
                "You have exceeded the limit of 10 simultaneous connections.",
            ),
        );
    }
    let latency = shared.latency_ms.load(Ordering::SeqCst);
    let fault = pick_fault(shared, &record.method, &record.path);
    let delay = latency + fault.as_ref().map_or(0, |f| f.delay_ms);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if let Some(fault) = &fault {
        if fault.drop == Some(DropMode::Before) {
            record.by = "drop".into();
            return dropped();
        }
        if let Some(status) = fault.status {
            record.by = "fault".into();
            let mut response = if fault.bare {
                StatusCode::from_u16(status)
                    .unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
                    .into_response()
            } else {
                let title = StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("Error");
                problem(
                    &request_id,
                    &ApiError::new(status, title, "Injected by the sandbox."),
                )
            };
            if let Some(secs) = fault.retry_after_secs {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from(secs));
            }
            return response;
        }
    }
    if !checked.errors.is_empty() {
        record.by = "validation".into();
        lock(&shared.violations).push(Violation {
            request_id: request_id.clone(),
            method: record.method.clone(),
            path: record.path.clone(),
            template: checked.template.clone(),
            errors: checked.errors.clone(),
            body: checked.body.clone(),
        });
        let err = match (&checked.template, checked.method_known) {
            (None, _) => ApiError::not_found(),
            (Some(_), false) => ApiError::new(
                405,
                "Method Not Allowed",
                "The requested method and resource are not compatible.",
            ),
            (Some(_), true) => ApiError::invalid(
                "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
                checked.errors.clone(),
            ),
        };
        return problem(&request_id, &err);
    }
    let reply = if (record.method.as_str(), checked.template.as_deref())
        == ("POST", Some("/lists/{list_id}/webhooks"))
    {
        // Not under the account lock: creating waits for the validation GET.
        let list_id = checked.params.get("list_id").cloned().unwrap_or_default();
        let body = checked.body.clone().unwrap_or(Value::Null);
        create_webhook(shared, &list_id, |a| a.check_new_webhook(&list_id, &body))
            .await
            .map(|w| (200, Some(w.render(&list_id))))
    } else {
        dispatch(shared, &record.method, &checked, &query)
    };
    let response = reply_response(reply, &request_id);
    if fault.is_some_and(|f| f.drop == Some(DropMode::After)) {
        record.by = "drop".into();
        return dropped();
    }
    response
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The operations the sandbox serves (the `dispatch` arms, and list-webhook creation, which
/// validates the URL before it reaches the books); every other operation of the spec answers 501.
pub const SERVED: &[(&str, &str)] = &[
    ("DELETE", "/ecommerce/stores/{store_id}"),
    (
        "DELETE",
        "/ecommerce/stores/{store_id}/customers/{customer_id}",
    ),
    ("DELETE", "/ecommerce/stores/{store_id}/orders/{order_id}"),
    (
        "DELETE",
        "/ecommerce/stores/{store_id}/orders/{order_id}/lines/{line_id}",
    ),
    ("DELETE", "/lists/{list_id}/members/{subscriber_hash}"),
    ("DELETE", "/lists/{list_id}/webhooks/{webhook_id}"),
    ("GET", "/"),
    ("GET", "/ecommerce/stores"),
    ("GET", "/ecommerce/stores/{store_id}"),
    ("GET", "/ecommerce/stores/{store_id}/customers"),
    (
        "GET",
        "/ecommerce/stores/{store_id}/customers/{customer_id}",
    ),
    ("GET", "/ecommerce/stores/{store_id}/orders"),
    ("GET", "/ecommerce/stores/{store_id}/orders/{order_id}"),
    (
        "GET",
        "/ecommerce/stores/{store_id}/orders/{order_id}/lines",
    ),
    (
        "GET",
        "/ecommerce/stores/{store_id}/orders/{order_id}/lines/{line_id}",
    ),
    ("GET", "/ecommerce/stores/{store_id}/products"),
    ("GET", "/ecommerce/stores/{store_id}/products/{product_id}"),
    (
        "GET",
        "/ecommerce/stores/{store_id}/products/{product_id}/variants",
    ),
    (
        "GET",
        "/ecommerce/stores/{store_id}/products/{product_id}/variants/{variant_id}",
    ),
    ("GET", "/lists"),
    ("GET", "/lists/{list_id}"),
    ("GET", "/lists/{list_id}/members"),
    ("GET", "/lists/{list_id}/members/{subscriber_hash}"),
    ("GET", "/lists/{list_id}/members/{subscriber_hash}/tags"),
    ("GET", "/lists/{list_id}/merge-fields"),
    ("GET", "/lists/{list_id}/merge-fields/{merge_id}"),
    ("GET", "/lists/{list_id}/webhooks"),
    ("GET", "/lists/{list_id}/webhooks/{webhook_id}"),
    ("GET", "/ping"),
    ("PATCH", "/ecommerce/stores/{store_id}"),
    (
        "PATCH",
        "/ecommerce/stores/{store_id}/customers/{customer_id}",
    ),
    ("PATCH", "/ecommerce/stores/{store_id}/orders/{order_id}"),
    ("PATCH", "/lists/{list_id}/members/{subscriber_hash}"),
    (
        "PATCH",
        "/ecommerce/stores/{store_id}/products/{product_id}",
    ),
    ("POST", "/ecommerce/stores"),
    ("POST", "/ecommerce/stores/{store_id}/customers"),
    ("POST", "/ecommerce/stores/{store_id}/orders"),
    ("POST", "/ecommerce/stores/{store_id}/products"),
    ("POST", "/lists/{list_id}/members"),
    (
        "POST",
        "/lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent",
    ),
    ("POST", "/lists/{list_id}/members/{subscriber_hash}/tags"),
    ("POST", "/lists/{list_id}/merge-fields"),
    ("POST", "/lists/{list_id}/webhooks"),
    (
        "PUT",
        "/ecommerce/stores/{store_id}/customers/{customer_id}",
    ),
    (
        "PUT",
        "/ecommerce/stores/{store_id}/products/{product_id}/variants/{variant_id}",
    ),
    ("PUT", "/lists/{list_id}/members/{subscriber_hash}"),
];

/// The spec's operations the sandbox answers 501 for: all but [`SERVED`].
pub fn not_served(spec: &spec::Spec) -> Vec<(String, String)> {
    spec.operations()
        .into_iter()
        .filter(|(m, t)| !SERVED.contains(&(m.as_str(), t.as_str())))
        .collect()
}

/// Query parameters every list operation takes and the sandbox honours (or, for `fields` and
/// `exclude_fields`, ignores as it does on every operation: the full object is a superset).
const PAGING: [&str; 4] = ["count", "offset", "fields", "exclude_fields"];

/// 501 naming a query parameter the spec allows but the sandbox does not apply: ignoring a
/// filter would answer more than Mailchimp would, silently.
fn unsupported(query: &[(String, String)], honoured: &[&str]) -> Option<ApiError> {
    query
        .iter()
        .find(|(k, _)| !PAGING.contains(&k.as_str()) && !honoured.contains(&k.as_str()))
        .map(|(k, _)| {
            ApiError::new(
                501,
                "Not Implemented",
                format!("The sandbox does not implement the `{k}` parameter of this operation."),
            )
        })
}

/// The member-list filters of `query`; 501 for one the sandbox does not apply, 400 for a time
/// that is not one.
fn member_filter(query: &[(String, String)]) -> Result<state::MemberFilter, ApiError> {
    const HONOURED: [&str; 8] = [
        "status",
        "email_type",
        "unique_email_id",
        "vip_only",
        "since_last_changed",
        "before_last_changed",
        "since_timestamp_opt",
        "before_timestamp_opt",
    ];
    if let Some(e) = unsupported(query, &HONOURED) {
        return Err(e);
    }
    let mut f = state::MemberFilter::default();
    for (k, v) in query {
        let time = || {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| ApiError::field(k, "This value is not a valid ISO 8601 date-time."))
        };
        match k.as_str() {
            "status" => f.status = Some(v.clone()),
            "unique_email_id" => f.unique_email_id = Some(v.clone()),
            "vip_only" => f.vip_only = spec::query_bool(v).unwrap_or(false),
            "since_last_changed" => f.since_last_changed = Some(time()?),
            "before_last_changed" => f.before_last_changed = Some(time()?),
            "since_timestamp_opt" => f.since_timestamp_opt = Some(time()?),
            "before_timestamp_opt" => f.before_timestamp_opt = Some(time()?),
            // Every sandbox member is `html`; any other type matches none.
            "email_type" if v != "html" => f.status = Some(String::new()),
            _ => {}
        }
    }
    Ok(f)
}

fn dispatch(
    shared: &Shared,
    method: &str,
    checked: &spec::Checked,
    query: &[(String, String)],
) -> Reply {
    let p = |name: &str| {
        checked
            .params
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    };
    let body = checked.body.clone().unwrap_or(Value::Null);
    let number = |name: &str, default: usize| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let text = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let page = || state::Page {
        count: number("count", 10).min(1000),
        offset: number("offset", 0),
    };
    let template = checked.template.as_deref().unwrap_or_default();
    let mut a = lock(&shared.account);
    let reply = match (method, template) {
        ("GET", "/ping") => Ok((200, Some(json!({"health_status": "Everything's Chimpy!"})))),
        // The API root: the account. A user's first call; the sandbox's one account.
        ("GET", "/") => Ok((
            200,
            Some(json!({"account_id": "sandbox", "login_id": "sandbox",
                "account_name": "ml-connector sandbox", "email": "owner@example.com",
                "first_name": "Sandbox", "last_name": "Owner", "username": "sandbox",
                "avatar_url": "", "role": "owner", "member_since": "2026-01-01T00:00:00+00:00",
                "pricing_plan_type": "monthly", "first_payment": "", "account_timezone": "UTC",
                "account_industry": "Software", "contact": {"company": "ml-connector sandbox",
                    "addr1": "1 Main St", "addr2": "", "city": "Atlanta", "state": "GA",
                    "zip": "30308", "country": "US"},
                "pro_enabled": false, "last_login": "", "total_subscribers":
                    a.lists.values().map(|l| l.members.values().filter(|m| m.status == "subscribed").count()).sum::<usize>(),
                "industry_stats": {"open_rate": 0, "bounce_rate": 0, "click_rate": 0},
                "_links": []})),
        )),
        ("GET", "/lists") => match unsupported(query, &["email"]) {
            Some(e) => Err(e),
            None => a.get_lists(page(), text("email")),
        },
        ("GET", "/lists/{list_id}") => a.get_list(p("list_id")),
        ("GET", "/lists/{list_id}/members") => match member_filter(query) {
            Ok(filter) => a.get_members(p("list_id"), page(), &filter),
            Err(e) => Err(e),
        },
        ("GET", "/ecommerce/stores") => a.get_stores(page()),
        ("GET", "/ecommerce/stores/{store_id}/customers") => {
            match unsupported(query, &["email_address"]) {
                Some(e) => Err(e),
                None => a.get_customers(p("store_id"), page(), text("email_address")),
            }
        }
        ("GET", "/ecommerce/stores/{store_id}/products") => a.get_products(p("store_id"), page()),
        ("GET", "/ecommerce/stores/{store_id}/orders") => {
            match unsupported(query, &["customer_id"]) {
                Some(e) => Err(e),
                None => a.get_orders(p("store_id"), page(), text("customer_id")),
            }
        }
        ("GET", "/lists/{list_id}/members/{subscriber_hash}") => {
            a.get_member(p("list_id"), p("subscriber_hash"))
        }
        ("PUT", "/lists/{list_id}/members/{subscriber_hash}") => a.put_member(
            p("list_id"),
            p("subscriber_hash"),
            &body,
            shared.strict_merge_fields,
        ),
        ("DELETE", "/lists/{list_id}/members/{subscriber_hash}") => {
            a.archive_member(p("list_id"), p("subscriber_hash"))
        }
        ("POST", "/lists/{list_id}/members") => {
            a.post_member(p("list_id"), &body, shared.strict_merge_fields)
        }
        ("PATCH", "/lists/{list_id}/members/{subscriber_hash}") => a.patch_member(
            p("list_id"),
            p("subscriber_hash"),
            &body,
            shared.strict_merge_fields,
        ),
        ("POST", "/lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent") => {
            a.delete_permanent(p("list_id"), p("subscriber_hash"))
        }
        ("GET", "/lists/{list_id}/members/{subscriber_hash}/tags") => {
            a.get_tags(p("list_id"), p("subscriber_hash"))
        }
        ("POST", "/lists/{list_id}/members/{subscriber_hash}/tags") => {
            a.post_tags(p("list_id"), p("subscriber_hash"), &body)
        }
        ("GET", "/lists/{list_id}/merge-fields") => a.get_merge_fields(
            p("list_id"),
            number("count", 10).min(1000),
            number("offset", 0),
        ),
        ("POST", "/lists/{list_id}/merge-fields") => a.post_merge_field(p("list_id"), &body),
        ("GET", "/lists/{list_id}/merge-fields/{merge_id}") => {
            a.get_merge_field(p("list_id"), p("merge_id"))
        }
        ("GET", "/ecommerce/stores/{store_id}/orders/{order_id}/lines") => {
            a.get_order_lines(p("store_id"), p("order_id"), page())
        }
        ("GET", "/ecommerce/stores/{store_id}/orders/{order_id}/lines/{line_id}") => {
            a.get_order_line(p("store_id"), p("order_id"), p("line_id"))
        }
        ("GET", "/ecommerce/stores/{store_id}/products/{product_id}/variants") => {
            a.get_variants(p("store_id"), p("product_id"), page())
        }
        ("GET", "/ecommerce/stores/{store_id}/products/{product_id}/variants/{variant_id}") => {
            a.get_variant(p("store_id"), p("product_id"), p("variant_id"))
        }
        ("GET", "/lists/{list_id}/webhooks") => a.list_webhooks(p("list_id")),
        ("GET", "/lists/{list_id}/webhooks/{webhook_id}") => {
            a.get_webhook(p("list_id"), p("webhook_id"))
        }
        ("DELETE", "/lists/{list_id}/webhooks/{webhook_id}") => {
            let reply = a.delete_webhook(p("list_id"), p("webhook_id"));
            if reply.is_ok() {
                shared.webhooks.forget(p("webhook_id"));
            }
            reply
        }
        ("POST", "/ecommerce/stores") => a.post_store(&body),
        ("GET", "/ecommerce/stores/{store_id}") => a.get_store(p("store_id")),
        ("PATCH", "/ecommerce/stores/{store_id}") => a.patch_store(p("store_id"), &body),
        ("DELETE", "/ecommerce/stores/{store_id}") => a.delete_store(p("store_id")),
        ("PUT", "/ecommerce/stores/{store_id}/customers/{customer_id}") => {
            a.put_customer(p("store_id"), p("customer_id"), &body)
        }
        ("GET", "/ecommerce/stores/{store_id}/customers/{customer_id}") => {
            a.get_customer(p("store_id"), p("customer_id"))
        }
        ("POST", "/ecommerce/stores/{store_id}/customers") => a.post_customer(p("store_id"), &body),
        ("PATCH", "/ecommerce/stores/{store_id}/customers/{customer_id}") => {
            a.patch_customer(p("store_id"), p("customer_id"), &body)
        }
        ("DELETE", "/ecommerce/stores/{store_id}/customers/{customer_id}") => {
            a.delete_customer(p("store_id"), p("customer_id"))
        }
        ("POST", "/ecommerce/stores/{store_id}/products") => a.post_product(p("store_id"), &body),
        ("GET", "/ecommerce/stores/{store_id}/products/{product_id}") => {
            a.get_product(p("store_id"), p("product_id"))
        }
        ("PATCH", "/ecommerce/stores/{store_id}/products/{product_id}") => {
            a.patch_product(p("store_id"), p("product_id"), &body)
        }
        ("PUT", "/ecommerce/stores/{store_id}/products/{product_id}/variants/{variant_id}") => {
            a.put_variant(p("store_id"), p("product_id"), p("variant_id"), &body)
        }
        ("POST", "/ecommerce/stores/{store_id}/orders") => a.post_order(p("store_id"), &body),
        ("GET", "/ecommerce/stores/{store_id}/orders/{order_id}") => {
            a.get_order(p("store_id"), p("order_id"))
        }
        ("PATCH", "/ecommerce/stores/{store_id}/orders/{order_id}") => {
            a.patch_order(p("store_id"), p("order_id"), &body)
        }
        ("DELETE", "/ecommerce/stores/{store_id}/orders/{order_id}") => {
            a.delete_order(p("store_id"), p("order_id"))
        }
        ("DELETE", "/ecommerce/stores/{store_id}/orders/{order_id}/lines/{line_id}") => {
            a.delete_order_line(p("store_id"), p("order_id"), p("line_id"))
        }
        _ => Err(ApiError::new(
            501,
            "Not Implemented",
            format!("The sandbox does not implement {method} {template}."),
        )),
    };
    // API writes are source `api`: only webhooks with `sources.api` hear them.
    flush_events(shared, &mut a);
    reply
}

async fn oauth_metadata(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("OAuth "));
    if token.map(str::trim) != Some(shared.oauth_token.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_token"})),
        )
            .into_response();
    }
    axum::Json(json!({
        "dc": shared.dc, "role": "owner", "accountname": "Sandbox Account", "user_id": 1,
        "login": {"email": "owner@example.com", "login_id": 1, "login_name": "owner",
                  "login_email": "owner@example.com"},
        "login_url": "https://login.mailchimp.com", "api_endpoint": shared.root_url,
    }))
    .into_response()
}

// ---- control routes -------------------------------------------------------------------

async fn control_state(State(shared): State<Arc<Shared>>) -> axum::Json<AccountState> {
    axum::Json(lock(&shared.account).clone())
}

async fn control_stats(State(shared): State<Arc<Shared>>) -> axum::Json<Stats> {
    axum::Json(stats(&shared))
}

async fn control_requests(State(shared): State<Arc<Shared>>) -> axum::Json<Vec<RequestRecord>> {
    axum::Json(lock(&shared.requests).clone())
}

async fn control_violations(State(shared): State<Arc<Shared>>) -> axum::Json<Vec<Violation>> {
    axum::Json(lock(&shared.violations).clone())
}

#[derive(Deserialize)]
struct ListBody {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

async fn control_list(
    State(shared): State<Arc<Shared>>,
    axum::Json(b): axum::Json<ListBody>,
) -> StatusCode {
    let name = b.name.unwrap_or_else(|| b.id.clone());
    lock(&shared.account).create_list(&b.id, &name, true);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct MemberBody {
    list_id: String,
    email: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    compliance: bool,
}

async fn control_member(
    State(shared): State<Arc<Shared>>,
    axum::Json(b): axum::Json<MemberBody>,
) -> StatusCode {
    let status = b.status.unwrap_or_else(|| "subscribed".into());
    seed_member(&shared, &b.list_id, &b.email, &status, b.compliance);
    StatusCode::NO_CONTENT
}

async fn control_compliance(
    State(shared): State<Arc<Shared>>,
    axum::Json(b): axum::Json<MemberBody>,
) -> StatusCode {
    let mut account = lock(&shared.account);
    match account
        .lists
        .get_mut(&b.list_id)
        .and_then(|l| l.members.get_mut(&state::member_key(&b.email)))
    {
        Some(m) => {
            m.compliance = b.compliance;
            StatusCode::NO_CONTENT
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn control_forget(
    State(shared): State<Arc<Shared>>,
    axum::Json(b): axum::Json<MemberBody>,
) -> StatusCode {
    forget_member(&shared, &b.list_id, &b.email);
    StatusCode::NO_CONTENT
}

async fn control_fault(
    State(shared): State<Arc<Shared>>,
    axum::Json(f): axum::Json<Fault>,
) -> StatusCode {
    lock(&shared.faults).push(f);
    StatusCode::NO_CONTENT
}

async fn control_clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    lock(&shared.faults).clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct LatencyBody {
    ms: u64,
}

async fn control_latency(
    State(shared): State<Arc<Shared>>,
    axum::Json(b): axum::Json<LatencyBody>,
) -> StatusCode {
    shared.latency_ms.store(b.ms, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct LimitBody {
    limit: usize,
}

async fn control_limit(
    State(shared): State<Arc<Shared>>,
    axum::Json(b): axum::Json<LimitBody>,
) -> StatusCode {
    shared.connection_limit.store(b.limit, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

async fn control_reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    reset_stats(&shared);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct WebhookBody {
    list_id: String,
    url: String,
}

fn control_problem(e: &ApiError) -> Response {
    problem(&uuid::Uuid::new_v4().to_string(), e)
}

async fn control_add_webhook(
    State(shared): State<Arc<Shared>>,
    axum::Json(b): axum::Json<WebhookBody>,
) -> Response {
    match add_list_webhook(&shared, &b.list_id, &b.url).await {
        Ok(w) => axum::Json(w.render(&b.list_id)).into_response(),
        Err(e) => control_problem(&e),
    }
}

async fn control_webhook_deliveries(
    State(shared): State<Arc<Shared>>,
) -> axum::Json<Vec<ListWebhookDelivery>> {
    axum::Json(shared.webhooks.deliveries())
}

async fn control_webhook_validations(
    State(shared): State<Arc<Shared>>,
) -> axum::Json<Vec<ListWebhookValidation>> {
    axum::Json(shared.webhooks.validations())
}

#[derive(Deserialize)]
struct MemberChangeBody {
    list_id: String,
    /// The member's address (`email`: the current one).
    email: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    merges: serde_json::Map<String, Value>,
    #[serde(default)]
    new_email: Option<String>,
}

/// `POST /_sandbox/members/{subscribe|unsubscribe|profile|email|clean}`.
async fn control_member_change(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(change): axum::extract::Path<String>,
    axum::Json(b): axum::Json<MemberChangeBody>,
) -> Response {
    let (list, email, reason) = (b.list_id.as_str(), b.email.as_str(), b.reason.as_deref());
    let result = match change.as_str() {
        "subscribe" => change_member(&shared, |a| a.subscribe_member(list, email)),
        "unsubscribe" => change_member(&shared, |a| a.unsubscribe_member(list, email, reason)),
        "profile" => change_member(&shared, |a| a.update_member_profile(list, email, &b.merges)),
        "email" => match b.new_email.as_deref() {
            Some(new) => change_member(&shared, |a| a.change_member_email(list, email, new)),
            None => Err(ApiError::new(
                400,
                "Invalid Resource",
                "new_email is required.",
            )),
        },
        "clean" => change_member(&shared, |a| a.clean_member(list, email, reason)),
        other => Err(ApiError::new(
            404,
            "Resource Not Found",
            format!("no member change `{other}`: subscribe, unsubscribe, profile, email or clean"),
        )),
    };
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => control_problem(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_operations_are_the_specs_and_the_rest_is_501() {
        let spec = spec::spec().unwrap();
        let all = spec.operations();
        for (method, template) in SERVED {
            assert!(
                all.iter().any(|(m, t)| m == method && t == template),
                "{method} {template} is not a spec operation"
            );
        }
        let missing = not_served(spec);
        assert_eq!(missing.len() + SERVED.len(), all.len());
        // What a user of `dev --sandbox` reaches for first is served.
        for op in [("GET", "/lists/{list_id}/members"), ("GET", "/lists")] {
            assert!(!missing.iter().any(|(m, t)| (m.as_str(), t.as_str()) == op));
        }
    }

    /// SERVED says what `dispatch` does: every spec operation is called (ids made up, body
    /// `{}`); a served one never answers the "does not implement" 501, and one that is not
    /// served answers nothing else once it passes validation (a 400 there proves nothing).
    #[tokio::test]
    async fn served_matches_what_dispatch_serves() {
        let sandbox = MailchimpSandbox::start(MailchimpSandboxOptions::default()).await;
        let http = reqwest::Client::new();
        let spec = spec::spec().unwrap();
        let mut wrong = Vec::new();
        for (method, template) in spec.operations() {
            let path: String = template
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x1" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let method_ = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut request = http
                .request(method_, format!("{}{path}", sandbox.base_url()))
                .basic_auth("user", Some(sandbox.api_key()));
            if matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
                request = request
                    .header("content-type", "application/json")
                    .body("{}");
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            let unimplemented = status == 501 && text.contains("does not implement");
            let served = SERVED.contains(&(method.as_str(), template.as_str()));
            if (served && unimplemented) || (!served && !unimplemented && status != 400) {
                wrong.push(format!(
                    "{method} {template}: {status} (in SERVED: {served})"
                ));
            }
        }
        assert!(
            wrong.is_empty(),
            "SERVED disagrees with dispatch:\n{}",
            wrong.join("\n")
        );
    }
}
