//! A local FreshBooks: the subset of the API ml-connector uses, stateful and multi-account, with
//! FreshBooks' auth behaviour, error shapes and callbacks (docs/vendors/freshbooks.md), plus a control API.
//!
//! ```no_run
//! # async fn demo() {
//! use mlc_sandbox::freshbooks::*;
//! let sandbox = FreshbooksSandbox::start(FreshbooksSandboxOptions::default()).await;
//! let acct = sandbox.setup_account("owner@example.com", "Acme Ltd");
//! let client = sandbox
//!     .create_client(&acct.account_id, ClientSpec { email: Some("a@b.c".into()), ..Default::default() }, Webhooks::Send)
//!     .await
//!     .unwrap();
//! // point the FreshBooks client at sandbox.base_url(), store sandbox.credentials_json(&acct.tokens)
//! # }
//! ```
//!
//! # Vendor API (as FreshBooks)
//! - `POST /auth/oauth/token` (form): `grant_type=refresh_token` (single-use, rotating refresh
//!   tokens; a reused or unknown one → 400 `{"error":"invalid_grant",…}`; a new pair supersedes
//!   the user's older tokens unless [`FreshbooksSandboxOptions::supersede_on_refresh`] is off)
//!   and `grant_type=authorization_code` (codes from [`Control::mint_code`], 5 minutes, single
//!   use). Wrong client credentials → 401 `invalid_client`. `redirect_uri`, when sent, must match.
//! - `GET /oauth/authorize` (`client_id`, `response_type=code`, `redirect_uri`, `state`): approves
//!   at once as `identity_id` (sandbox-only parameter; default: the only user) and redirects to
//!   `redirect_uri?code=…&state=…` (`deny=1` → `error=access_denied`).
//! - `GET /auth/api/v1/users/me`: identity and business memberships (no `result` level).
//! - `GET /accounting/account/{account}/users/clients[/{id}]`, `…/invoices/invoices[/{id}]`
//!   (`include[]=lines`), `…/payments/payments[/{id}]`: `page`, `per_page` (≤ 100),
//!   `search[updated_min|updated_max]` (US/Eastern `YYYY-MM-DD`), `search[vis_state]` (lists
//!   return active + archived by default), `search[customerid]`, `search[invoiceid]`,
//!   `search[clientid]`, `search[email]`; `…/bill_vendors/bill_vendors[/{id}]` likewise
//!   (result key `bill_vendor`, list key `bill_vendors`; fields as in FreshBooks' Python SDK,
//!   UNCONFIRMED: [`BillVendorSpec`]). Not found → 404 `{"response":{"errors":[{"errno":1012,…}]}}`
//!   — or the same body with HTTP 200 under [`Control::set_errors_with_200`]. `updated` (and
//!   invoices' `created_at`) is US/Eastern, zone-less, from the sandbox clock; a client's
//!   `signup_date` is UTC in the same format and a callback's `updated_at` ISO 8601 with `Z`, as
//!   FreshBooks' SDK reads them.
//! - `POST …/users/clients` `{"client":{…}}` and `PUT …/users/clients/{id}` (a `vis_state` in
//!   the PUT deletes or restores and discards every other field, as FreshBooks does): the
//!   client in the get shape, callbacks as for control-API changes; an invalid `email` → 422
//!   errno 7012.
//! - Errors in the google-rpc shape (`{"code":5,"message",…,"details":[ErrorInfo|BadRequest]}`)
//!   instead of the SDK fixtures' ones under [`Control::set_error_shape`].
//! - `…/events/account/{account}/events/callbacks[/{id}]`: register (POST; the handshake
//!   `name=callback.verify&object_id=<id>&verifier=<v>&account_id=…` is POSTed to the uri after
//!   [`FreshbooksSandboxOptions::handshake_delay`], unsigned), list (GET, paged), get, PUT
//!   `{"callback":{"verifier":…}}` (→ `verified`), PUT `{"callback":{"resend":true}}`, DELETE
//!   (204, no body).
//! - Expired, superseded or unknown access token → 401 with the body of the route's API family.
//!
//! Record mutations through the control API POST signed deliveries
//! (`name=<resource>.<action>&object_id=…&account_id=…&business_id=…&identity_id=…&user_id=…`,
//! header `X-FreshBooks-Hmac-SHA256`) to every verified callback of the account whose event
//! matches (`invoice` matches `invoice.create`), and return once they have been answered.
//! Payments also cause `invoice.update`; bill vendors cause `bill_vendor.create|update|delete`. [`Webhooks::Suppress`] skips the deliveries (a webhook
//! that never arrives).
//!
//! # Control API
//! In Rust through [`Control`] (the sandbox handle derefs to it), and over HTTP (JSON) for other
//! processes. Mutations take `?webhooks=suppress` to skip deliveries.
//!
//! | HTTP | Rust |
//! |---|---|
//! | `POST /_sandbox/setup` `{"email","business_name"}` → [`SandboxAccount`] + `credentials_json` | [`Control::setup_account`] |
//! | `POST /_sandbox/users` `{"email"}` → `{"identity_id"}` | [`Control::add_user`] |
//! | `POST /_sandbox/businesses` `{"identity_id","name"}` → [`BusinessInfo`] | [`Control::add_business`] |
//! | `POST /_sandbox/tokens` `{"identity_id"}` → [`TokenPair`] | [`Control::mint_tokens`] |
//! | `POST /_sandbox/tokens/expire` | [`Control::expire_access_tokens`] |
//! | `POST /_sandbox/codes` `{"identity_id"}` → `{"code"}` | [`Control::mint_code`] |
//! | `POST /_sandbox/clock/advance` `{"seconds"}` | [`Control::advance_clock`] |
//! | `POST /_sandbox/accounts/{a}/clients` [`ClientSpec`] → `{"id"}` | [`Control::create_client`] |
//! | `PATCH`/`DELETE /_sandbox/accounts/{a}/clients/{id}` | [`Control::update_client`], [`Control::delete_client`] |
//! | `POST /_sandbox/accounts/{a}/invoices` [`InvoiceSpec`] → `{"id"}` | [`Control::create_invoice`] |
//! | `PATCH`/`DELETE /_sandbox/accounts/{a}/invoices/{id}` [`InvoicePatch`] | [`Control::update_invoice`], [`Control::delete_invoice`] |
//! | `POST /_sandbox/accounts/{a}/invoices/{id}/mark_sent` | [`Control::mark_invoice_sent`] |
//! | `POST /_sandbox/accounts/{a}/invoices/{id}/mark_paid` → `{"id"}` (payment) | [`Control::mark_invoice_paid`] |
//! | `POST /_sandbox/accounts/{a}/payments` [`PaymentSpec`] → `{"id"}` | [`Control::create_payment`] |
//! | `DELETE /_sandbox/accounts/{a}/payments/{id}` | [`Control::delete_payment`] |
//! | `POST /_sandbox/accounts/{a}/bill_vendors` [`BillVendorSpec`] → `{"id"}` | [`Control::create_bill_vendor`] |
//! | `PATCH`/`DELETE /_sandbox/accounts/{a}/bill_vendors/{id}` [`BillVendorSpec`] | [`Control::update_bill_vendor`], [`Control::delete_bill_vendor`] |
//! | `GET /_sandbox/accounts/{a}/callbacks` → [`CallbackState`]s | [`Control::callbacks`] |
//! | `POST /_sandbox/faults` [`Fault`]; `DELETE /_sandbox/faults` | [`Control::inject`], [`Control::clear_faults`] |
//! | `POST /_sandbox/errors_with_200` `{"enabled"}` | [`Control::set_errors_with_200`] |
//! | `POST /_sandbox/error_shape` `{"shape":"legacy"\|"google_rpc"}` | [`Control::set_error_shape`] |
//! | `GET /_sandbox/state` → [`SandboxStats`] | [`Control::stats`] |
//! | `GET /_sandbox/deliveries` → [`DeliveryRecord`]s | [`Control::deliveries`] |
//!
//! Ids are deterministic: one counter from 100001 for every record, token and business.

mod control;
mod delivery;
mod state;
mod vendor;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mlc::ports::{Clock, SystemClock};

// Fault rules and the killable listener are shared with the QuickBooks sandbox.
use crate::faults;
use serde::{Deserialize, Serialize};

pub use crate::{SandboxError, Webhooks};
pub use delivery::DeliveryRecord;
pub use faults::{Fault, FaultAction};
pub use state::{
    BillVendorSpec, BusinessInfo, ClientSpec, InvoicePatch, InvoiceSpec, LineSpec, PaymentSpec,
    TokenPair,
};

use crate::lock;
use faults::Gate;
use state::{Change, State};

/// How the sandbox behaves.
#[derive(Clone)]
pub struct FreshbooksSandboxOptions {
    /// The OAuth app's client id the token endpoint accepts.
    pub client_id: String,
    pub client_secret: String,
    /// The app's registered redirect URI.
    pub redirect_uri: String,
    /// Access-token lifetime: 12 hours at FreshBooks.
    pub access_token_lifetime: chrono::Duration,
    /// Whether a refresh invalidates the user's older tokens ("a new token pair invalidates
    /// older ones", docs/vendors/freshbooks.md §2).
    pub supersede_on_refresh: bool,
    /// The clock the sandbox clock runs on ([`Control::advance_clock`] adds an offset). Share a
    /// `ManualClock` with the code under test to keep both in step.
    pub clock: Arc<dyn Clock>,
    /// Delay between registering a callback (or asking to resend) and the handshake POST, so
    /// the caller can store the callback id first.
    pub handshake_delay: Duration,
    /// Timeout of one delivery POST.
    pub delivery_timeout: Duration,
    /// Seed of the fault-probability generator.
    pub seed: u64,
}

impl Default for FreshbooksSandboxOptions {
    fn default() -> Self {
        Self {
            client_id: "sandbox-client-id".into(),
            client_secret: "sandbox-client-secret".into(),
            redirect_uri: "https://localhost/freshbooks/oauth".into(),
            access_token_lifetime: chrono::Duration::hours(12),
            supersede_on_refresh: true,
            clock: Arc::new(SystemClock),
            handshake_delay: Duration::from_millis(100),
            delivery_timeout: Duration::from_secs(10),
            seed: 0x5eed,
        }
    }
}

/// A user with one business and a token pair: what a test or the demo usually needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxAccount {
    pub identity_id: i64,
    pub account_id: String,
    pub business_id: i64,
    pub tokens: TokenPair,
}

/// A callback as the sandbox holds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CallbackState {
    pub callback_id: String,
    pub event: String,
    pub uri: String,
    pub verified: bool,
}

/// Counters and current tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxStats {
    /// Requests to the vendor routes by `"<METHOD> <route class>"` (faulted ones included).
    pub requests: BTreeMap<String, u64>,
    /// Calls to the token endpoint with `grant_type=refresh_token`, refused ones included.
    pub refresh_calls: u64,
    /// Access tokens valid now.
    pub valid_access_tokens: Vec<String>,
    /// Refresh tokens not yet used.
    pub valid_refresh_tokens: Vec<String>,
    /// The sandbox clock.
    pub now: DateTime<Utc>,
}

pub(crate) struct Inner {
    options: FreshbooksSandboxOptions,
    state: Mutex<State>,
    /// Request counters and fault rules.
    gate: Gate,
    refresh_calls: AtomicU64,
    deliveries: Mutex<Vec<DeliveryRecord>>,
    offset: Mutex<chrono::Duration>,
    errors_with_200: AtomicBool,
    error_shape: Mutex<ErrorShape>,
    http: reqwest::Client,
}

/// Which body FreshBooks' errors come in (docs/vendors/freshbooks.md §1.1, §3.1): the SDK fixtures' shapes
/// (accounting `response.errors[]`, events flat `{errno, message, details}`), or the newer
/// google-rpc `{code, message, details[]}` some endpoints answer with. A client must read both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorShape {
    #[default]
    Legacy,
    GoogleRpc,
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        self.options.clock.now() + *lock(&self.offset)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// The control API. Cheap to clone.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

/// A running sandbox; stops when dropped.
pub struct FreshbooksSandbox {
    control: Control,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl FreshbooksSandbox {
    /// Starts the server on `127.0.0.1:0`.
    pub async fn start(options: FreshbooksSandboxOptions) -> Self {
        let http = reqwest::Client::builder()
            .timeout(options.delivery_timeout)
            .build()
            .expect("the delivery HTTP client builds");
        let inner = Arc::new(Inner {
            gate: Gate::new(options.seed),
            options,
            state: Mutex::new(State::new()),
            refresh_calls: AtomicU64::new(0),
            deliveries: Mutex::new(Vec::new()),
            offset: Mutex::new(chrono::Duration::zero()),
            errors_with_200: AtomicBool::new(false),
            error_shape: Mutex::new(ErrorShape::Legacy),
            http,
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

    /// `http://127.0.0.1:<port>`: the API base URL (and the token endpoint's).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A clonable control handle (e.g. for another task).
    pub fn control(&self) -> Control {
        self.control.clone()
    }
}

impl std::ops::Deref for FreshbooksSandbox {
    type Target = Control;
    fn deref(&self) -> &Control {
        &self.control
    }
}

impl Drop for FreshbooksSandbox {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Control {
    /// The sandbox clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    /// Moves the sandbox clock forward (tokens expire, `updated` stamps move).
    pub fn advance_clock(&self, by: chrono::Duration) {
        *lock(&self.inner.offset) += by;
    }

    /// A new user; returns the identity id.
    pub fn add_user(&self, email: &str) -> i64 {
        self.inner.state().add_user(email)
    }

    /// A new business owned by (and visible to) `identity_id`.
    pub fn add_business(&self, identity_id: i64, name: &str) -> Result<BusinessInfo, SandboxError> {
        self.inner.state().add_business(identity_id, name)
    }

    /// Gives another user access to an existing business.
    pub fn grant_access(&self, identity_id: i64, account_id: &str) -> Result<(), SandboxError> {
        let mut state = self.inner.state();
        if !state.businesses.contains_key(account_id) {
            return Err(SandboxError::NotFound(format!("account {account_id}")));
        }
        let user = state
            .users
            .get_mut(&identity_id)
            .ok_or_else(|| SandboxError::NotFound(format!("user {identity_id}")))?;
        user.accounts.push(account_id.to_string());
        Ok(())
    }

    /// An initial token pair for `identity_id` (as if the user had just authorised the app).
    pub fn mint_tokens(&self, identity_id: i64) -> Result<TokenPair, SandboxError> {
        let now = self.inner.now();
        let lifetime = self.inner.options.access_token_lifetime;
        self.inner
            .state()
            .mint_pair(identity_id, now, lifetime, false)
    }

    /// An authorization code for `identity_id` (5 minutes, single use).
    pub fn mint_code(&self, identity_id: i64) -> Result<String, SandboxError> {
        let now = self.inner.now();
        self.inner.state().mint_code(identity_id, now)
    }

    /// Makes every access token expire now (refresh tokens keep working).
    pub fn expire_access_tokens(&self) {
        let now = self.inner.now();
        for t in self.inner.state().access_tokens.values_mut() {
            t.expires_at = t.expires_at.min(now);
        }
    }

    /// A user, a business and a token pair in one call.
    pub fn setup_account(&self, email: &str, business_name: &str) -> SandboxAccount {
        let identity_id = self.add_user(email);
        // The user was just created, so neither call can fail.
        let business = self
            .add_business(identity_id, business_name)
            .expect("a new user can own a business");
        let tokens = self
            .mint_tokens(identity_id)
            .expect("a new user can get tokens");
        SandboxAccount {
            identity_id,
            account_id: business.account_id,
            business_id: business.business_id,
            tokens,
        }
    }

    /// The credential-set JSON (secret `credentials/<name>`) for `tokens` and this sandbox's app.
    pub fn credentials_json(&self, tokens: &TokenPair) -> String {
        let o = &self.inner.options;
        serde_json::json!({
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": tokens.expires_at.to_rfc3339(),
            "client_id": o.client_id,
            "client_secret": o.client_secret,
            "redirect_uri": o.redirect_uri,
        })
        .to_string()
    }

    pub async fn create_client(
        &self,
        account: &str,
        spec: ClientSpec,
        webhooks: Webhooks,
    ) -> Result<String, SandboxError> {
        self.mutate(webhooks, |s, now| s.create_client(account, spec, now))
            .await
            .map(|id| id.to_string())
    }

    /// Changes the given fields (absent ones stay).
    pub async fn update_client(
        &self,
        account: &str,
        id: &str,
        patch: ClientSpec,
        webhooks: Webhooks,
    ) -> Result<(), SandboxError> {
        let id = parse_id(id)?;
        self.mutate(webhooks, |s, now| {
            with_unit(s.update_client(account, id, patch, now))
        })
        .await
    }

    /// `vis_state = 1`.
    pub async fn delete_client(
        &self,
        account: &str,
        id: &str,
        webhooks: Webhooks,
    ) -> Result<(), SandboxError> {
        let id = parse_id(id)?;
        self.mutate(webhooks, |s, now| {
            with_unit(s.delete_client(account, id, now))
        })
        .await
    }

    pub async fn create_invoice(
        &self,
        account: &str,
        spec: InvoiceSpec,
        webhooks: Webhooks,
    ) -> Result<String, SandboxError> {
        self.mutate(webhooks, |s, now| s.create_invoice(account, spec, now))
            .await
            .map(|id| id.to_string())
    }

    pub async fn update_invoice(
        &self,
        account: &str,
        id: &str,
        patch: InvoicePatch,
        webhooks: Webhooks,
    ) -> Result<(), SandboxError> {
        let id = parse_id(id)?;
        self.mutate(webhooks, |s, now| {
            with_unit(s.update_invoice(account, id, patch, now))
        })
        .await
    }

    pub async fn mark_invoice_sent(
        &self,
        account: &str,
        id: &str,
        webhooks: Webhooks,
    ) -> Result<(), SandboxError> {
        let id = parse_id(id)?;
        self.mutate(webhooks, |s, now| {
            with_unit(s.mark_invoice_sent(account, id, now))
        })
        .await
    }

    /// Records a payment of the outstanding amount; returns the payment id.
    pub async fn mark_invoice_paid(
        &self,
        account: &str,
        id: &str,
        webhooks: Webhooks,
    ) -> Result<String, SandboxError> {
        let id = parse_id(id)?;
        self.mutate(webhooks, |s, now| s.mark_invoice_paid(account, id, now))
            .await
            .map(|payment| payment.to_string())
    }

    /// `vis_state = 1`.
    pub async fn delete_invoice(
        &self,
        account: &str,
        id: &str,
        webhooks: Webhooks,
    ) -> Result<(), SandboxError> {
        let id = parse_id(id)?;
        self.mutate(webhooks, |s, now| {
            with_unit(s.delete_invoice(account, id, now))
        })
        .await
    }

    pub async fn create_payment(
        &self,
        account: &str,
        spec: PaymentSpec,
        webhooks: Webhooks,
    ) -> Result<String, SandboxError> {
        self.mutate(webhooks, |s, now| s.create_payment(account, spec, now))
            .await
            .map(|id| id.to_string())
    }

    /// `vis_state = 1`; the invoice's paid/outstanding/status follow.
    pub async fn delete_payment(
        &self,
        account: &str,
        id: &str,
        webhooks: Webhooks,
    ) -> Result<(), SandboxError> {
        let id = parse_id(id)?;
        self.mutate(webhooks, |s, now| {
            with_unit(s.delete_payment(account, id, now))
        })
        .await
    }

    /// A new bill vendor (callbacks `bill_vendor.create`); returns its id.
    pub async fn create_bill_vendor(
        &self,
        account: &str,
        spec: BillVendorSpec,
        webhooks: Webhooks,
    ) -> Result<String, SandboxError> {
        self.mutate(webhooks, |s, now| s.create_bill_vendor(account, spec, now))
            .await
            .map(|id| id.to_string())
    }

    /// Changes the given fields (absent ones stay); callbacks `bill_vendor.update`.
    pub async fn update_bill_vendor(
        &self,
        account: &str,
        id: &str,
        patch: BillVendorSpec,
        webhooks: Webhooks,
    ) -> Result<(), SandboxError> {
        let id = parse_id(id)?;
        self.mutate(webhooks, |s, now| {
            with_unit(s.update_bill_vendor(account, id, patch, now))
        })
        .await
    }

    /// `vis_state = 1`; callbacks `bill_vendor.delete`.
    pub async fn delete_bill_vendor(
        &self,
        account: &str,
        id: &str,
        webhooks: Webhooks,
    ) -> Result<(), SandboxError> {
        let id = parse_id(id)?;
        self.mutate(webhooks, |s, now| {
            with_unit(s.delete_bill_vendor(account, id, now))
        })
        .await
    }

    /// Applies one change to the books at the sandbox clock's now, then makes its webhook
    /// deliveries (unless suppressed), returning once they are answered.
    async fn mutate<T>(
        &self,
        webhooks: Webhooks,
        change: impl FnOnce(&mut State, DateTime<Utc>) -> Result<(T, Vec<Change>), SandboxError>,
    ) -> Result<T, SandboxError> {
        let now = self.inner.now();
        let (value, changes) = change(&mut self.inner.state(), now)?;
        self.deliver(changes, webhooks).await;
        Ok(value)
    }

    /// The account's callbacks.
    pub fn callbacks(&self, account: &str) -> Result<Vec<CallbackState>, SandboxError> {
        let mut state = self.inner.state();
        Ok(state
            .books_mut(account)?
            .callbacks
            .values()
            .map(|c| CallbackState {
                callback_id: c.id.to_string(),
                event: c.event.clone(),
                uri: c.uri.clone(),
                verified: c.verified,
            })
            .collect())
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

    /// Whether accounting errors (not found, validation) come with HTTP 200: an injectable
    /// quirk, weakly sourced (docs/vendors/freshbooks.md §0.9; the SDKs' fixtures show 404 and 422, the
    /// default here). The Python SDK would take such an answer for a success.
    pub fn set_errors_with_200(&self, enabled: bool) {
        self.inner.errors_with_200.store(enabled, Ordering::SeqCst);
    }

    /// The body errors come in from now on (statuses stay as they are).
    pub fn set_error_shape(&self, shape: ErrorShape) {
        *lock(&self.inner.error_shape) = shape;
    }

    /// Request counters and current tokens.
    pub fn stats(&self) -> SandboxStats {
        let now = self.inner.now();
        let state = self.inner.state();
        let mut valid_access_tokens: Vec<String> = state
            .access_tokens
            .iter()
            .filter(|(_, t)| !t.revoked && t.expires_at > now)
            .map(|(k, _)| k.clone())
            .collect();
        valid_access_tokens.sort();
        let mut valid_refresh_tokens: Vec<String> = state
            .refresh_tokens
            .iter()
            .filter(|(_, t)| !t.used)
            .map(|(k, _)| k.clone())
            .collect();
        valid_refresh_tokens.sort();
        SandboxStats {
            requests: self.inner.gate.requests(),
            refresh_calls: self.inner.refresh_calls.load(Ordering::SeqCst),
            valid_access_tokens,
            valid_refresh_tokens,
            now,
        }
    }

    /// Requests so far to `"<METHOD> <route class>"`, e.g. `"GET clients"`.
    pub fn request_count(&self, key: &str) -> u64 {
        self.inner.gate.request_count(key)
    }

    /// Calls to the token endpoint with `grant_type=refresh_token`.
    pub fn refresh_calls(&self) -> u64 {
        self.inner.refresh_calls.load(Ordering::SeqCst)
    }

    /// Every handshake and delivery POST made so far, oldest first.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        lock(&self.inner.deliveries).clone()
    }

    async fn deliver(&self, changes: Vec<Change>, webhooks: Webhooks) {
        if webhooks == Webhooks::Send {
            delivery::deliver(&self.inner, changes).await;
        }
    }
}

/// A change that returns only its webhook deliveries, in [`Control::mutate`]'s shape.
fn with_unit(
    changes: Result<Vec<Change>, SandboxError>,
) -> Result<((), Vec<Change>), SandboxError> {
    changes.map(|c| ((), c))
}

fn parse_id(id: &str) -> Result<i64, SandboxError> {
    id.parse()
        .map_err(|_| SandboxError::NotFound(format!("record {id}")))
}
