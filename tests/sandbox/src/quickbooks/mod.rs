//! A local QuickBooks Online: the subset of Intuit's OAuth and Accounting API v3 ml-connector
//! uses, stateful and multi-company, with QuickBooks' error shapes, limits and webhooks
//! (docs/vendors/quickbooks.md), plus a control API.
//!
//! ```no_run
//! # async fn demo() {
//! use mlc_sandbox::quickbooks::*;
//! let sandbox = QuickbooksSandbox::start(QuickbooksSandboxOptions::default()).await;
//! let company = sandbox.setup_company("Acme Books");
//! let id = sandbox
//!     .create_customer(&company.realm_id, CustomerSeed { email: Some("a@b.c".into()), ..Default::default() }, Webhooks::Send)
//!     .await
//!     .unwrap();
//! // QUICKBOOKS_API_BASE=sandbox.base_url(), credential set sandbox.credentials_json(&company)
//! # }
//! ```
//!
//! # Vendor API (as Intuit)
//! Every response carries an `intuit_tid` header.
//! - `POST /oauth2/v1/tokens/bearer` (HTTP Basic `client_id:client_secret`, form body):
//!   `grant_type=authorization_code` (`code`, `redirect_uri`; codes from [`Control::mint_code`]
//!   or the authorize page, single use, [`QuickbooksSandboxOptions::code_lifetime`]) and
//!   `grant_type=refresh_token`. Answer `{"token_type":"bearer","access_token","expires_in":3600,
//!   "refresh_token","x_refresh_token_expires_in":8726400}`. Every refresh rotates the refresh
//!   token; the used one keeps working for [`QuickbooksSandboxOptions::refresh_grace`], then (or
//!   when unknown, expired or revoked) HTTP 400 `{"error":"invalid_grant"}`. Wrong client
//!   credentials: 401 `{"error":"invalid_client"}`.
//! - `POST /v2/oauth2/tokens/revoke` (Basic, JSON `{"token"}`): disconnects the app from the
//!   token's company (all its tokens stop working).
//! - `GET /.well-known/openid_sandbox_configuration[/]` (and `openid_configuration`): the OpenID
//!   discovery document intuit-oauth reads first, every endpoint on this server.
//!   `GET /v1/openid_connect/userinfo` (Bearer access token): the connecting user's claims.
//! - `GET /connect/oauth2?client_id&redirect_uri&state&response_type=code&scope`: approves at
//!   once for `realm_id` (sandbox-only parameter; default: the only company) and redirects to
//!   `redirect_uri?code=…&state=…&realmId=…` (`deny=1` → `error=access_denied`).
//! - Under `/v3/company/{realm}/` (Bearer token of that company; expired or unknown → 401 with the
//!   gateway's lower-case `fault` envelope, code 3200; another company's token → 403 code
//!   003100):
//!   - `GET customer/{id}` → `{"Customer":{…},"time":…}` (inactive ones too); unknown or
//!     merged away → 400 Fault 610.
//!   - `POST customer`: without `Id` create (Fault 6240 on a duplicate `DisplayName`); with `Id`
//!     update, sparse when `"sparse": true`, else full (omitted writable fields dropped).
//!     `SyncToken` must be current (else Fault 5010); `Notes` over 2000 characters → Fault 2050
//!     (UNCONFIRMED code). Creates and updates send Create/Update webhooks, as QuickBooks does
//!     for API changes.
//!   - `GET query?query=…` / `POST query` (`application/text` body): see [`query`].
//!   - `GET cdc?entities=Customer&changedSince=…` (RFC 3339 with or without seconds; zone-less
//!     times and dates in the company's zone, as Intuit reads them) → `CDCResponse` with full customers (inactive
//!     included) changed after `changedSince` and merged-away ones as `"status":"Deleted"`
//!     stubs, oldest first, at most [`QuickbooksSandboxOptions::cdc_cap`]; more than 30 days back
//!     → 400 Fault (text UNCONFIRMED).
//!   - `POST attachable` → a note-only attachable linked by `AttachableRef`.
//!   - `GET companyinfo/{realm}`.
//!   - Writes with `requestid=…` are idempotent per company: the same id answers the first
//!     result again without writing.
//!   - `minorversion` other than 75 (or missing) is served but counted
//!     ([`SandboxStats::minorversion_violations`]).
//! - Limits per company: [`QuickbooksSandboxOptions::requests_per_minute`] (500) and
//!   [`QuickbooksSandboxOptions::max_concurrent`] (10) requests → HTTP 429 with Intuit's XML
//!   `ThrottleExceeded` body (`application/xml`).
//!
//! Fault rules ([`Fault`]) apply per route class: `token`, `revoke`, `authorize`, `customer`,
//! `query`, `cdc`, `attachable`, `companyinfo`. A 429 rule answers the XML throttle body, a 401
//! the gateway body, a 5xx a JSON `SystemFault`; `ErrorWith200` a Fault with HTTP 200.
//!
//! # Webhooks
//! [`Control::set_webhook`] sets the app's one endpoint, its verifier token and the payload
//! format ([`PayloadFormat::Legacy`] `eventNotifications` or [`PayloadFormat::CloudEvents`]
//! array, `Content-Type: application/cloudevents+json`). Customer changes (control API or API
//! writes) are POSTed one per request, in order, by a background task after
//! [`QuickbooksSandboxOptions::webhook_delay`], signed with `intuit-signature` (base64
//! HMAC-SHA256 of the body with the verifier token), and recorded in [`Control::deliveries`].
//! Failed deliveries are recorded, not retried. [`Control::flush_webhooks`] waits until every
//! queued delivery is made.
//!
//! # Control API
//! In Rust through [`Control`] (the sandbox handle derefs to it), and over HTTP (JSON) for other
//! processes. Mutations take `?webhooks=suppress`.
//!
//! | HTTP | Rust |
//! |---|---|
//! | `POST /_sandbox/setup` `{"name"}` → [`SandboxCompany`] + `credentials_json` | [`Control::setup_company`] |
//! | `POST /_sandbox/codes` `{"realm_id"}` → `{"code"}` | [`Control::mint_code`] |
//! | `POST /_sandbox/tokens/expire` | [`Control::expire_access_tokens`] |
//! | `POST /_sandbox/companies/{realm}/revoke` | [`Control::revoke_tokens`] |
//! | `POST /_sandbox/clock/advance` `{"seconds"}` | [`Control::advance_clock`] |
//! | `PUT /_sandbox/webhook` `{"url","verifier_token","format":"legacy"\|"cloud_events"}` | [`Control::set_webhook`] |
//! | `GET /_sandbox/deliveries` → [`DeliveryRecord`]s | [`Control::deliveries`] |
//! | `POST /_sandbox/companies/{realm}/customers` [`CustomerSeed`] → `{"id"}` | [`Control::create_customer`] |
//! | `GET /_sandbox/companies/{realm}/customers/{id}` | [`Control::customer`] |
//! | `PATCH /_sandbox/companies/{realm}/customers/{id}` `{fields…}` (top-level merge, `null` removes) | [`Control::update_customer`] |
//! | `POST /_sandbox/companies/{realm}/customers/{id}/deactivate` | [`Control::deactivate_customer`] |
//! | `POST /_sandbox/companies/{realm}/customers/{id}/merge` `{"merged_away"}` | [`Control::merge_customers`] |
//! | `GET /_sandbox/companies/{realm}/customers/{id}/notes` | [`Control::notes_of`] |
//! | `POST /_sandbox/companies/{realm}/customers/{id}/concurrent_edits` `{"n"}` | [`Control::concurrent_edit_before_next_update`] |
//! | `POST /_sandbox/faults` [`Fault`]; `DELETE`/`GET /_sandbox/faults` | [`Control::inject`], [`Control::clear_faults`], [`Control::faults`] |
//! | `GET /_sandbox/state` → [`SandboxStats`] | [`Control::stats`] |

mod control;
mod delivery;
pub mod query;
mod state;
mod vendor;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Utc};
use mlc::ports::{Clock, SystemClock};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use crate::faults::{self, Gate};
use crate::lock;

pub use crate::faults::{Fault, FaultAction};
pub use crate::{SandboxError, Webhooks};
pub use delivery::{DeliveryRecord, PayloadFormat};
pub use state::{CustomerSeed, TokenPair};

use state::{Change, Lifetimes, State};

/// How the sandbox behaves.
#[derive(Clone)]
pub struct QuickbooksSandboxOptions {
    /// The app's OAuth client id (the token endpoint's Basic auth).
    pub client_id: String,
    pub client_secret: String,
    /// The app's registered redirect URI (the authorize page accepts only it).
    pub redirect_uri: String,
    /// Access-token lifetime: 3600 s at Intuit.
    pub access_token_lifetime: chrono::Duration,
    /// Rolling refresh-token lifetime: 8,726,400 s at Intuit.
    pub refresh_token_lifetime: chrono::Duration,
    /// How long a rotated-out refresh token keeps working: 24 h per Intuit's Node client.
    pub refresh_grace: chrono::Duration,
    /// Authorization-code lifetime (UNCONFIRMED at Intuit: minutes).
    pub code_lifetime: chrono::Duration,
    /// How far back CDC may look: 30 days.
    pub cdc_lookback: chrono::Duration,
    /// Most objects in one CDC answer: 1000.
    pub cdc_cap: usize,
    /// Requests per company per minute before 429: 500 in production.
    pub requests_per_minute: u32,
    /// Requests of one company in flight at once before 429: 10.
    pub max_concurrent: u32,
    /// The offset `MetaData` and `time` are written in (a company's local time; Intuit writes
    /// e.g. `-07:00`).
    pub utc_offset: FixedOffset,
    /// The clock the sandbox clock runs on ([`Control::advance_clock`] adds an offset).
    pub clock: Arc<dyn Clock>,
    /// Delay before each webhook POST (Intuit delivers asynchronously).
    pub webhook_delay: Duration,
    /// Timeout of one webhook POST (Intuit gives a receiver 3 s; debug builds need more).
    pub delivery_timeout: Duration,
    /// Seed of the fault-probability generator.
    pub seed: u64,
}

impl Default for QuickbooksSandboxOptions {
    fn default() -> Self {
        Self {
            client_id: "sandbox-qbo-client-id".into(),
            client_secret: "sandbox-qbo-client-secret".into(),
            redirect_uri: "https://localhost/quickbooks/oauth".into(),
            access_token_lifetime: chrono::Duration::seconds(3600),
            refresh_token_lifetime: chrono::Duration::seconds(8_726_400),
            refresh_grace: chrono::Duration::hours(24),
            code_lifetime: chrono::Duration::minutes(10),
            cdc_lookback: chrono::Duration::days(30),
            cdc_cap: 1000,
            requests_per_minute: 500,
            max_concurrent: 10,
            utc_offset: FixedOffset::west_opt(7 * 3600).expect("-07:00 is a valid offset"),
            clock: Arc::new(SystemClock),
            webhook_delay: Duration::from_millis(20),
            delivery_timeout: Duration::from_secs(10),
            seed: 0x0b0_5eed,
        }
    }
}

impl QuickbooksSandboxOptions {
    fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            access: self.access_token_lifetime,
            refresh: self.refresh_token_lifetime,
            grace: self.refresh_grace,
            code: self.code_lifetime,
        }
    }
}

/// A company the app is connected to: what a test or the demo usually needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxCompany {
    pub realm_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub tokens: TokenPair,
}

/// Counters and current tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxStats {
    /// Requests to the vendor routes by `"<METHOD> <route class>"` (faulted and throttled ones
    /// included).
    pub requests: BTreeMap<String, u64>,
    /// Accounting requests without `minorversion=75`, by `"<METHOD> <route class>"`.
    pub requests_without_minorversion: BTreeMap<String, u64>,
    /// Their total.
    pub minorversion_violations: u64,
    /// Requests answered 429 by the per-company limits (not by fault rules).
    pub throttled: u64,
    /// Calls to the token endpoint with `grant_type=refresh_token`, refused ones included.
    pub refresh_calls: u64,
    /// Access tokens valid now.
    pub valid_access_tokens: usize,
    /// Refresh tokens usable now (rotated-out ones in their grace period included).
    pub valid_refresh_tokens: usize,
    /// Webhook deliveries queued but not yet made.
    pub pending_webhooks: usize,
    /// The sandbox clock.
    pub now: DateTime<Utc>,
}

/// The app's webhook endpoint.
struct WebhookConfig {
    url: String,
    verifier_token: SecretString,
    format: PayloadFormat,
}

/// A company's request window and in-flight count.
#[derive(Default)]
struct RealmLoad {
    window: VecDeque<Instant>,
    in_flight: u32,
}

pub(crate) struct Inner {
    options: QuickbooksSandboxOptions,
    state: Mutex<State>,
    /// Request counters and fault rules.
    gate: Gate,
    without_minorversion: Mutex<BTreeMap<String, u64>>,
    throttled: AtomicU64,
    load: Mutex<HashMap<String, RealmLoad>>,
    refresh_calls: AtomicU64,
    offset: Mutex<chrono::Duration>,
    webhook: Mutex<Option<WebhookConfig>>,
    deliveries: Mutex<Vec<DeliveryRecord>>,
    queue: mpsc::UnboundedSender<Change>,
    pending: AtomicUsize,
    idle: Notify,
    http: reqwest::Client,
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        self.options.clock.now() + *lock(&self.offset)
    }

    /// Milliseconds, company offset: how a response's `time` reads. The offset is fixed at
    /// start, so no lock is needed.
    fn response_time(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.options.utc_offset)
            .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Queues webhooks for changes (unless suppressed).
    fn enqueue(&self, changes: Vec<Change>, webhooks: Webhooks) {
        if webhooks == Webhooks::Suppress {
            return;
        }
        for change in changes {
            self.pending.fetch_add(1, Ordering::SeqCst);
            if self.queue.send(change).is_err() {
                // The delivery task is gone (sandbox shutting down): nothing will be sent.
                self.pending.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

/// The control API. Cheap to clone.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

/// A running sandbox; stops when dropped.
pub struct QuickbooksSandbox {
    control: Control,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
    delivery: tokio::task::JoinHandle<()>,
}

impl QuickbooksSandbox {
    /// Starts the server on `127.0.0.1:0`.
    pub async fn start(options: QuickbooksSandboxOptions) -> Self {
        let http = reqwest::Client::builder()
            .timeout(options.delivery_timeout)
            .build()
            .expect("the delivery HTTP client builds");
        let (queue, queued) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            gate: Gate::new(options.seed),
            state: Mutex::new(State::new(options.utc_offset)),
            options,
            without_minorversion: Mutex::new(BTreeMap::new()),
            throttled: AtomicU64::new(0),
            load: Mutex::new(HashMap::new()),
            refresh_calls: AtomicU64::new(0),
            offset: Mutex::new(chrono::Duration::zero()),
            webhook: Mutex::new(None),
            deliveries: Mutex::new(Vec::new()),
            queue,
            pending: AtomicUsize::new(0),
            idle: Notify::new(),
            http,
        });
        let delivery = tokio::spawn(delivery::run(Arc::downgrade(&inner), queued));
        let control = Control { inner };
        let app = vendor::router(control.inner.clone()).merge(control::router(control.clone()));
        let (addr, server) = faults::serve(app).await;
        Self {
            control,
            addr,
            server,
            delivery,
        }
    }

    /// `http://127.0.0.1:<port>`: the Accounting API base and the token endpoint's host (what
    /// `QUICKBOOKS_API_BASE` is set to).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token endpoint URL.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/v1/tokens/bearer", self.base_url())
    }
}

impl std::ops::Deref for QuickbooksSandbox {
    type Target = Control;
    fn deref(&self) -> &Control {
        &self.control
    }
}

impl Drop for QuickbooksSandbox {
    fn drop(&mut self) {
        self.server.abort();
        self.delivery.abort();
    }
}

impl Control {
    /// The sandbox clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    /// Moves the sandbox clock forward (tokens and codes expire, `MetaData` times move).
    pub fn advance_clock(&self, by: chrono::Duration) {
        *lock(&self.inner.offset) += by;
    }

    /// A new company the app is connected to, with a fresh token pair.
    pub fn setup_company(&self, name: &str) -> SandboxCompany {
        let now = self.inner.now();
        let o = &self.inner.options;
        let mut state = self.inner.state();
        let realm_id = state.add_company(name, now);
        let tokens = state.mint_pair(&realm_id, now, o.lifetimes());
        SandboxCompany {
            realm_id,
            client_id: o.client_id.clone(),
            client_secret: o.client_secret.clone(),
            tokens,
        }
    }

    /// A new token pair for a company (as if the user had connected the app again).
    pub fn mint_tokens(&self, realm: &str) -> Result<TokenPair, SandboxError> {
        let now = self.inner.now();
        let mut state = self.inner.state();
        state.company(realm)?;
        Ok(state.mint_pair(realm, now, self.inner.options.lifetimes()))
    }

    /// An authorization code for `realm` (single use; exchanged with any or no `redirect_uri`).
    pub fn mint_code(&self, realm: &str) -> Result<String, SandboxError> {
        let now = self.inner.now();
        self.inner
            .state()
            .mint_code(realm, None, now, self.inner.options.lifetimes())
    }

    /// The credential-set JSON (secret `credentials/<name>`) for a company, environment
    /// `"sandbox"`.
    pub fn credentials_json(&self, company: &SandboxCompany) -> String {
        serde_json::json!({
            "access_token": company.tokens.access_token,
            "refresh_token": company.tokens.refresh_token,
            "expires_at": company.tokens.expires_at.to_rfc3339(),
            "refresh_expires_at": company.tokens.refresh_expires_at.to_rfc3339(),
            "client_id": company.client_id,
            "client_secret": company.client_secret,
            "redirect_uri": self.inner.options.redirect_uri,
            "realm_id": company.realm_id,
            "environment": "sandbox",
        })
        .to_string()
    }

    /// Makes every access token expire now (refresh tokens keep working).
    pub fn expire_access_tokens(&self) {
        let now = self.inner.now();
        for t in self.inner.state().access_tokens.values_mut() {
            t.expires_at = t.expires_at.min(now);
        }
    }

    /// Disconnects the app from a company (the user revoked it): every token of the company
    /// stops working; refreshing answers `invalid_grant`.
    pub fn revoke_tokens(&self, realm: &str) {
        self.inner.state().revoke_realm(realm);
    }

    /// Creates a customer (as a person in QuickBooks); returns its id. Sends a Create webhook.
    pub async fn create_customer(
        &self,
        realm: &str,
        seed: CustomerSeed,
        webhooks: Webhooks,
    ) -> Result<String, SandboxError> {
        let now = self.inner.now();
        let (value, change) =
            self.inner
                .state()
                .create_customer(realm, &state::seed_fields(&seed), now)?;
        self.inner.enqueue(vec![change], webhooks);
        Ok(value["Id"].as_str().unwrap_or_default().to_string())
    }

    /// Changes a customer through `edit` on its JSON (e.g. `v["PrimaryEmailAddr"] =
    /// json!({"Address": "new@example.com"})`). Read-only fields (`Id`, `SyncToken`,
    /// `MetaData`, balances) are ignored; the change is validated like an API update, moves
    /// `SyncToken` and `LastUpdatedTime`, and sends an Update webhook.
    pub async fn update_customer(
        &self,
        realm: &str,
        id: &str,
        edit: impl FnOnce(&mut Value),
        webhooks: Webhooks,
    ) -> Result<(), SandboxError> {
        let now = self.inner.now();
        let change = self.inner.state().edit_customer(realm, id, edit, now)?;
        self.inner.enqueue(vec![change], webhooks);
        Ok(())
    }

    /// `Active = false` (QuickBooks' "delete" for a customer). The webhook operation is Update
    /// (whether Intuit sends Update or Delete is UNCONFIRMED).
    pub async fn deactivate_customer(
        &self,
        realm: &str,
        id: &str,
        webhooks: Webhooks,
    ) -> Result<(), SandboxError> {
        self.update_customer(realm, id, |v| v["Active"] = Value::Bool(false), webhooks)
            .await
    }

    /// Merges `merged_away` into `survivor` (a UI-only operation at Intuit): a Merge webhook on
    /// the survivor with `deletedId`; the merged-away customer reads as 610 and shows in CDC as
    /// a deleted stub.
    pub async fn merge_customers(
        &self,
        realm: &str,
        survivor: &str,
        merged_away: &str,
        webhooks: Webhooks,
    ) -> Result<(), SandboxError> {
        let now = self.inner.now();
        let change = self
            .inner
            .state()
            .merge_customers(realm, survivor, merged_away, now)?;
        self.inner.enqueue(vec![change], webhooks);
        Ok(())
    }

    /// A customer as `GET customer/{id}` returns it; `None` when unknown or merged away.
    pub fn customer(&self, realm: &str, id: &str) -> Option<Value> {
        self.inner.state().customer(realm, id)
    }

    /// The notes of the attachables linked to a customer, oldest first (empty when the company
    /// is unknown).
    pub fn notes_of(&self, realm: &str, customer_id: &str) -> Vec<String> {
        self.inner
            .state()
            .notes_of(realm, customer_id)
            .unwrap_or_default()
    }

    /// The next `n` API updates of the customer each meet a person's edit just before them
    /// (new phone number, `SyncToken` + 1, an Update webhook), so they fail with 5010.
    pub fn concurrent_edit_before_next_update(
        &self,
        realm: &str,
        id: &str,
        n: u32,
    ) -> Result<(), SandboxError> {
        self.inner.state().schedule_concurrent_edits(realm, id, n)
    }

    /// Sets the app's webhook endpoint, verifier token and payload format (replacing any).
    pub fn set_webhook(&self, url: &str, verifier_token: &str, format: PayloadFormat) {
        *lock(&self.inner.webhook) = Some(WebhookConfig {
            url: url.to_string(),
            verifier_token: SecretString::from(verifier_token.to_string()),
            format,
        });
    }

    /// Every webhook POST made so far, oldest first.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        lock(&self.inner.deliveries).clone()
    }

    /// Waits until every queued webhook has been delivered (or has failed).
    pub async fn flush_webhooks(&self) {
        loop {
            let idle = self.inner.idle.notified();
            if self.inner.pending.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Adds a fault rule.
    pub fn inject(&self, fault: Fault) {
        self.inner.gate.inject(fault);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.inner.gate.clear_faults();
    }

    /// The fault rules still active (spent next-N rules disappear).
    pub fn faults(&self) -> Vec<Fault> {
        self.inner.gate.faults()
    }

    /// Counters and token counts.
    pub fn stats(&self) -> SandboxStats {
        let now = self.inner.now();
        let grace = self.inner.options.refresh_grace;
        let (valid_access_tokens, valid_refresh_tokens) = {
            let state = self.inner.state();
            (
                state
                    .access_tokens
                    .values()
                    .filter(|t| t.expires_at > now)
                    .count(),
                state
                    .refresh_tokens
                    .values()
                    .filter(|t| t.check(now, grace).is_ok())
                    .count(),
            )
        };
        let without = lock(&self.inner.without_minorversion).clone();
        SandboxStats {
            requests: self.inner.gate.requests(),
            minorversion_violations: without.values().sum(),
            requests_without_minorversion: without,
            throttled: self.inner.throttled.load(Ordering::SeqCst),
            refresh_calls: self.inner.refresh_calls.load(Ordering::SeqCst),
            valid_access_tokens,
            valid_refresh_tokens,
            pending_webhooks: self.inner.pending.load(Ordering::SeqCst),
            now,
        }
    }

    /// Requests so far to `"<METHOD> <route class>"`, e.g. `"POST customer"`.
    pub fn request_count(&self, route: &str) -> u64 {
        self.inner.gate.request_count(route)
    }

    /// Calls to the token endpoint with `grant_type=refresh_token`.
    pub fn refresh_calls(&self) -> u64 {
        self.inner.refresh_calls.load(Ordering::SeqCst)
    }
}
