//! [`HubspotClient`]: the CRM calls the HubSpot-targeted flow, `ping` and `apply` make
//! (docs/vendors/hubspot.md §1, §3, §5), implementing [`HubspotApi`].
//!
//! - `Authorization: Bearer` with a token from an [`AccessTokens`] source: a fixed token for
//!   private apps and service keys, the OAuth token manager for OAuth sets (a 401 then
//!   refreshes once and retries once, `call_with_token`; a static token's 401 is final).
//! - Every request first asks the portal's process-wide [`PortalLimiter`]: a spent daily limit
//!   answers [`HubspotError::DailyLimit`] with no request; otherwise it waits for room under
//!   the burst (and search) limits. Answers carrying `X-HubSpot-RateLimit-*` correct the burst.
//! - Batch calls send at most [`BATCH_LIMIT`] inputs, each with `objectWriteTraceId` = its
//!   index, and map the answer back to the inputs by trace id or key — never by position:
//!   HubSpot does not promise result order (§3.1).
//! - Nothing is retried here but the one 401 refresh. A `TEN_SECONDLY_ROLLING` 429 is handed
//!   to the harness with `retry_after` = the window (10 s) rather than waited out in the
//!   call: a worker sleeping 10 s holds its Lambda (and its share of the queue's concurrency)
//!   idle, and the limiter makes such 429s rare — they come from other apps on the portal,
//!   which a short in-call wait would not outlast either.
//! - Failures are logged with the call's route, status, category, policy and `correlationId`
//!   only: never bodies (they hold emails), tokens (one travels in a path for OAuth
//!   `token_info`) or messages.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderMap};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;

use super::BATCH_LIMIT;
use super::api::{HubspotApi, PerInput};
use super::credentials::{ApiVersion, AuthKind, HubspotCredentials};
use super::error::{ErrorBody, ErrorHeaders, HubspotError, RatePolicy, id_text};
use super::limiter::{CallKind, INTERVAL_HEADER, PortalLimiter, next_midnight};
use super::models::{
    AccountDetails, Association, AssociationType, HubObject, ObjectInput, ObjectType,
    PropertyDefinition, PropertyGroup, TokenInfo,
};
use crate::ports::{Clock, SystemClock};
use crate::tokens::{AccessTokens, StaticToken, call_with_token};
use crate::vendors::http::{ReadError, http_base, read_capped, retry_after, shared_http_client};
use crate::vendors::{is_plain_id, json_error_category};

/// HubSpot's API host (docs/vendors/hubspot.md §1).
pub const DEFAULT_API_BASE: &str = "https://api.hubapi.com";

/// Whole-request timeout (also the longest wait for the limiter).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest answer read: a property list of a busy portal is a few hundred kB.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// How long a `DAILY` 429 holds the portal when its time zone is unknown (the lookup failed,
/// likely under the same spent limit): one probe an hour costs nothing against a day's quota,
/// where guessing a zone could hold half a day too long.
const UNKNOWN_ZONE_HOLD: chrono::Duration = chrono::Duration::hours(1);

/// How a [`HubspotClient`] is set up.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Replaces [`DEFAULT_API_BASE`] (`HUBSPOT_API_BASE`: the sandbox's `http://127.0.0.1:<port>`).
    pub api_base: Option<String>,
    /// Whole-request timeout, and the longest wait for a limiter slot.
    pub timeout: Duration,
    /// How many processes share each portal's limits: the queue's event-source
    /// `MaximumConcurrency` (1 when running locally).
    pub max_concurrency: usize,
    /// Look up the portal's time zone (`GET /account-info/v3/details`) before the first call
    /// for a portal, once per process, unless the set names it: a `DAILY` 429 can then be held
    /// to the portal's midnight (the lookup would fail under the spent limit itself).
    pub prefetch_time_zone: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            api_base: None,
            timeout: DEFAULT_TIMEOUT,
            max_concurrency: 1,
            prefetch_time_zone: true,
        }
    }
}

/// Where the token goes in a request besides the `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenUse {
    /// Nowhere else.
    Header,
    /// As the last path segment (`GET /oauth/v1/access-tokens/{token}`).
    InPath,
    /// As `{"tokenKey": token}` (`POST /oauth/v2/private-apps/get/access-token-info`).
    InBody,
}

/// One request, before its token.
struct Request<'a> {
    method: Method,
    segments: Vec<&'a str>,
    query: Vec<(&'a str, &'a str)>,
    body: Option<Value>,
    kind: CallKind,
    token: TokenUse,
    /// What the logs call it: fixed text and object types, never ids, emails or tokens.
    route: String,
}

impl<'a> Request<'a> {
    fn new(method: Method, segments: Vec<&'a str>, route: String) -> Self {
        Self {
            method,
            segments,
            query: Vec::new(),
            body: None,
            kind: CallKind::Normal,
            token: TokenUse::Header,
            route,
        }
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

/// One credential set's HubSpot client. Cheap to share (`Arc`); clients for the same portal in
/// one process share its limiter.
pub struct HubspotClient {
    base_url: Url,
    http: reqwest::Client,
    tokens: Arc<dyn AccessTokens>,
    credentials: String,
    kind: AuthKind,
    portal_id: u64,
    api_version: ApiVersion,
    limiter: Arc<PortalLimiter>,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    prefetch_time_zone: bool,
}

impl HubspotClient {
    /// One batch of associations: `batch/associate/default` without a label, `batch/create`
    /// with one (docs/vendors/hubspot.md §3.4).
    async fn associate_batch(
        &self,
        from: ObjectType,
        to: ObjectType,
        label: Option<AssociationType>,
        pairs: &[Association],
    ) -> Result<PerInput<()>, HubspotError> {
        let inputs = pair_inputs(pairs, label)?;
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let op: &[&str] = match label {
            None => &["associate", "default"],
            Some(_) => &["create"],
        };
        let mut path = vec!["crm", "v4", "associations", from.path(), to.path(), "batch"];
        path.extend_from_slice(op);
        let request = Request::new(
            Method::POST,
            path,
            format!("associations {from}/{to} batch/{}", op.join("/")),
        )
        .body(json!({ "inputs": inputs }));
        let (status, results, errors) = self.batch(request).await?;
        Ok(assign_pairs(status, pairs, &results, errors))
    }

    /// A client for the portal of `set`, calling as credential set `credentials` with tokens
    /// from `tokens` (the OAuth token manager; for a static set, see
    /// [`HubspotClient::with_static_token`]).
    pub fn new(
        set: &HubspotCredentials,
        tokens: Arc<dyn AccessTokens>,
        credentials: &str,
        options: &ClientOptions,
    ) -> Result<Self, HubspotError> {
        let base = options.api_base.as_deref().unwrap_or(DEFAULT_API_BASE);
        let base_url = http_base(base).ok_or_else(|| {
            HubspotError::InvalidArgument(format!("`{base}` is not an http(s) API base URL"))
        })?;
        let http = shared_http_client(options.timeout).map_err(HubspotError::Transport)?;
        // Keyed by host and portal: a sandbox and production never share limits.
        let limiter = PortalLimiter::for_portal(
            &format!("{base_url}#{}", set.portal_id),
            set.burst(),
            options.max_concurrency,
        );
        if let Some(tz) = set.time_zone {
            limiter.set_time_zone(tz);
        }
        Ok(Self {
            base_url,
            http,
            tokens,
            credentials: credentials.to_string(),
            kind: set.kind,
            portal_id: set.portal_id,
            api_version: set.api_version.clone(),
            limiter,
            clock: Arc::new(SystemClock),
            timeout: options.timeout,
            prefetch_time_zone: options.prefetch_time_zone,
        })
    }

    /// A client using the set's own token as is: private apps and service keys (and tests).
    pub fn with_static_token(
        set: &HubspotCredentials,
        credentials: &str,
        options: &ClientOptions,
    ) -> Result<Self, HubspotError> {
        let tokens = Arc::new(StaticToken(set.access_token.clone()));
        Self::new(set, tokens, credentials, options)
    }

    /// The same client reading the time from `clock` (the daily hold's "now").
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The API base requests go to.
    pub fn base_url(&self) -> &str {
        self.base_url.as_str()
    }

    /// The portal the set names.
    pub fn portal_id(&self) -> u64 {
        self.portal_id
    }

    /// One request: the daily hold, the time-zone lookup, the token (with one refresh on an
    /// OAuth 401), the limiter; a `DAILY` 429 starts the hold. Every failure is logged.
    async fn call(&self, request: Request<'_>) -> Result<(u16, Value), HubspotError> {
        let now = self.clock.now();
        if let Some(until) = self.limiter.held_until(now) {
            tracing::debug!(
                credentials = %self.credentials,
                portal_id = self.portal_id,
                route = %request.route,
                %until,
                "HubSpot daily limit spent: call held without a request"
            );
            return Err(HubspotError::DailyLimit { until });
        }
        if self.prefetch_time_zone && self.limiter.claim_zone_lookup(now) {
            self.look_up_time_zone().await;
        }
        let result = match self.with_token(&request).await {
            Err(e) if e.policy() == Some(RatePolicy::Daily) => Err(self.hold_daily(e)),
            other => other,
        };
        if let Err(e) = &result {
            tracing::warn!(
                credentials = %self.credentials,
                portal_id = self.portal_id,
                route = %request.route,
                status = e.status().unwrap_or(0),
                category = e.category().unwrap_or(""),
                policy = ?e.policy(),
                correlation_id = e.correlation_id().unwrap_or(""),
                class = e.class(),
                "HubSpot call failed"
            );
        }
        result
    }

    /// `request` with a token; an OAuth 401 refreshes once and retries once.
    async fn with_token(&self, request: &Request<'_>) -> Result<(u16, Value), HubspotError> {
        let oauth = !self.kind.is_static();
        call_with_token(
            self.tokens.as_ref(),
            &self.credentials,
            |e: &HubspotError| oauth && e.status() == Some(401),
            |e| {
                tracing::info!(
                    credentials = %self.credentials,
                    portal_id = self.portal_id,
                    route = %request.route,
                    correlation_id = e.correlation_id().unwrap_or(""),
                    "HubSpot refused the access token; refreshing once"
                );
            },
            |token| async move { self.send(request, &token).await },
        )
        .await
    }

    /// A `DAILY` 429: holds the portal until its next midnight and says so in the error.
    fn hold_daily(&self, e: HubspotError) -> HubspotError {
        let now = self.clock.now();
        let until = match self.limiter.time_zone() {
            Some(tz) => next_midnight(now, tz),
            None => now + UNKNOWN_ZONE_HOLD,
        };
        self.limiter.hold_daily(until);
        match e {
            HubspotError::Api {
                status,
                category,
                sub_category,
                message,
                correlation_id,
                policy,
                retry_after,
                ..
            } => HubspotError::Api {
                status,
                category,
                sub_category,
                message,
                correlation_id,
                policy,
                retry_after,
                resets_at: Some(until),
            },
            other => other,
        }
    }

    /// Reads the portal's time zone into the limiter; a failure is only logged (the lookup is
    /// retried an hour later).
    async fn look_up_time_zone(&self) {
        let request = Request::new(
            Method::GET,
            vec!["account-info", "v3", "details"],
            "account-info".into(),
        );
        let details = match self.with_token(&request).await {
            Ok((status, v)) => parse_account(status, v),
            Err(e) => Err(e),
        };
        match details {
            Ok(details) => self.remember_time_zone(&details),
            Err(e) => tracing::info!(
                credentials = %self.credentials,
                portal_id = self.portal_id,
                status = e.status().unwrap_or(0),
                correlation_id = e.correlation_id().unwrap_or(""),
                "HubSpot portal time zone unknown (a daily-limit hold will be an hour)"
            ),
        }
    }

    fn remember_time_zone(&self, details: &AccountDetails) {
        match details.time_zone.trim().parse() {
            Ok(tz) => self.limiter.set_time_zone(tz),
            Err(_) => tracing::info!(
                portal_id = self.portal_id,
                time_zone = %details.time_zone,
                "HubSpot portal time zone is not an IANA name"
            ),
        }
    }

    /// Sends `request` with `token` under the limiter; a non-2xx answer is an error.
    async fn send(
        &self,
        request: &Request<'_>,
        token: &SecretString,
    ) -> Result<(u16, Value), HubspotError> {
        let mut segments = request.segments.clone();
        if request.token == TokenUse::InPath {
            segments.push(token.expose_secret());
        }
        let url = self.url(&segments, &request.query)?;
        let mut builder = self
            .http
            .request(request.method.clone(), url)
            .bearer_auth(token.expose_secret())
            .header(ACCEPT, "application/json");
        if request.token == TokenUse::InBody {
            builder = builder.json(&json!({ "tokenKey": token.expose_secret() }));
        } else if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        self.limiter.acquire(request.kind, self.timeout).await?;
        // Without the URL: it can hold a token (OAuth `token_info`).
        let response = builder
            .send()
            .await
            .map_err(|e| HubspotError::Transport(e.without_url()))?;
        let status = response.status().as_u16();
        self.limiter.observe(response.headers());
        let headers = error_headers(response.headers());
        let bytes = read_capped(response, MAX_BODY).await.map_err(|e| match e {
            ReadError::Transport(e) => HubspotError::Transport(e.without_url()),
            ReadError::TooLarge(max) => HubspotError::UnexpectedBody {
                status,
                reason: format!("answer larger than {max} bytes"),
            },
        })?;
        if !(200..300).contains(&status) {
            return Err(HubspotError::from_response(status, &bytes, headers));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            // 204 (archive) and other empty answers.
            return Ok((status, Value::Null));
        }
        let v = serde_json::from_slice(&bytes).map_err(|e| HubspotError::UnexpectedBody {
            status,
            reason: format!("not JSON ({} error)", json_error_category(&e)),
        })?;
        Ok((status, v))
    }

    /// `{base}/{segments…}?{query…}`; each segment percent-encoded as one segment.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, HubspotError> {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| {
                HubspotError::InvalidArgument(format!("`{}` cannot take a path", self.base_url))
            })?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// The segments of `object`'s collection plus `rest` (the one place object paths are
    /// built, by the set's API version, docs/vendors/hubspot.md §0).
    fn object_path<'a>(&'a self, object: ObjectType, rest: &[&'a str]) -> Vec<&'a str> {
        let mut segments = self.api_version.object_segments(object).to_vec();
        segments.extend_from_slice(rest);
        segments
    }

    /// A batch answer's results and errors.
    async fn batch(
        &self,
        request: Request<'_>,
    ) -> Result<(u16, Vec<Value>, Vec<ErrorBody>), HubspotError> {
        let (status, v) = self.call(request).await?;
        let list = |key: &str| match v.get(key) {
            Some(Value::Array(items)) => Ok(items.clone()),
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(_) => Err(unexpected(status, &format!("`{key}` is not a list"))),
        };
        let results = list("results")?;
        let errors = list("errors")?.iter().map(ErrorBody::from_value).collect();
        Ok((status, results, errors))
    }
}

/// `Retry-After` and the burst window of an answer.
fn error_headers(headers: &HeaderMap) -> ErrorHeaders {
    ErrorHeaders {
        retry_after: retry_after(headers),
        interval: headers
            .get(INTERVAL_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis),
    }
}

fn unexpected(status: u16, reason: &str) -> HubspotError {
    HubspotError::UnexpectedBody {
        status,
        reason: reason.to_string(),
    }
}

fn parse_account(status: u16, v: Value) -> Result<AccountDetails, HubspotError> {
    crate::vendors::from_value(v, "account details").map_err(|r| unexpected(status, &r))
}

/// Refuses a batch of more than [`BATCH_LIMIT`] inputs (docs/vendors/hubspot.md §3.1).
fn check_batch(n: usize) -> Result<(), HubspotError> {
    if n > BATCH_LIMIT {
        return Err(HubspotError::InvalidArgument(format!(
            "{n} inputs in one batch; HubSpot takes at most {BATCH_LIMIT}"
        )));
    }
    Ok(())
}

/// A HubSpot object id (also what goes into a path): a plain id, never `.` or `..`.
fn check_id(what: &str, id: &str) -> Result<(), HubspotError> {
    if is_plain_id(id) && id != "." && id != ".." {
        Ok(())
    } else {
        Err(HubspotError::InvalidArgument(format!(
            "a {what} is not a plain HubSpot id"
        )))
    }
}

/// An upsert or read key (an email, a `fb_…` value): carried in the body, so only non-empty
/// and free of control characters. The message never quotes it (it may be an email).
fn check_key(id: &str) -> Result<(), HubspotError> {
    if id.trim().is_empty() || id.chars().any(char::is_control) {
        return Err(HubspotError::InvalidArgument(
            "an input key is empty or holds a control character".into(),
        ));
    }
    Ok(())
}

/// A property's internal name (`email`, `fb_client_id`).
fn check_property(name: &str) -> Result<(), HubspotError> {
    if !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(())
    } else {
        Err(HubspotError::InvalidArgument(format!(
            "`{name}` is not a HubSpot property name"
        )))
    }
}

/// Whether two keys name the same record. Emails are compared case-insensitively: HubSpot
/// stores them lower-cased (docs/vendors/hubspot.md §3.2), so the answer's may differ from ours.
fn same_key(a: &str, b: &str, ignore_case: bool) -> bool {
    let (a, b) = (a.trim(), b.trim());
    if ignore_case {
        a.to_lowercase() == b.to_lowercase()
    } else {
        a == b
    }
}

/// The inputs whose key is one of `keys`.
fn inputs_with(inputs: &[&str], keys: &[String], ignore_case: bool) -> Vec<usize> {
    (0..inputs.len())
        .filter(|&i| keys.iter().any(|k| same_key(inputs[i], k, ignore_case)))
        .collect()
}

/// The input an answer item's `objectWriteTraceId` names (our index), if valid.
fn traced(item: &Value, n: usize) -> Option<usize> {
    item.get("objectWriteTraceId")
        .and_then(id_text)
        .and_then(|t| t.trim().parse::<usize>().ok())
        .filter(|i| *i < n)
}

/// The inputs a batch item error is about: by `context.objectWriteTraceId`, else by
/// `context.ids` (keys).
fn error_targets(error: &ErrorBody, inputs: &[&str], ignore_case: bool) -> Vec<usize> {
    let n = inputs.len();
    let by_trace: Vec<usize> = error
        .trace_ids
        .iter()
        .filter_map(|t| t.trim().parse::<usize>().ok())
        .filter(|i| *i < n)
        .collect();
    if !by_trace.is_empty() {
        return by_trace;
    }
    inputs_with(inputs, &error.ids, ignore_case)
}

/// A 207 item error as an error: its own status if it gave a number, else by category
/// (`OBJECT_NOT_FOUND` → 404, `CONFLICT` → 409), else 400.
fn item_error(error: ErrorBody) -> HubspotError {
    let status = error.status.unwrap_or(match error.category.as_deref() {
        Some("OBJECT_NOT_FOUND") => 404,
        Some("CONFLICT") => 409,
        _ => 400,
    });
    HubspotError::from_body(status, error, ErrorHeaders::default())
}

/// Per-input results of a batch answer: `results` are `(inputs it is for, value)`, `errors`
/// `(inputs it is about, error)`. A result wins over an error for the same input. An input with
/// neither gets the answer's first error that named no input (an error HubSpot gave without a
/// usable context is the only explanation there is), else [`HubspotError::UnexpectedBody`] —
/// transient, see [`HubspotError::is_transient`].
fn assign<T: Clone>(
    status: u16,
    n: usize,
    results: Vec<(Vec<usize>, T)>,
    errors: Vec<(Vec<usize>, ErrorBody)>,
) -> PerInput<T> {
    let mut slots: Vec<Option<Result<T, HubspotError>>> = (0..n).map(|_| None).collect();
    for (targets, value) in results {
        for i in targets {
            if let Some(slot @ None) = slots.get_mut(i) {
                *slot = Some(Ok(value.clone()));
            }
        }
    }
    let mut unmatched = None;
    for (targets, error) in errors {
        if targets.is_empty() {
            unmatched.get_or_insert(error);
            continue;
        }
        for i in targets {
            if let Some(slot @ None) = slots.get_mut(i) {
                *slot = Some(Err(item_error(error.clone())));
            }
        }
    }
    slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| match (slot, &unmatched) {
            (Some(r), _) => r,
            (None, Some(error)) => Err(item_error(error.clone())),
            (None, None) => Err(unexpected(
                status,
                &format!("input {i} has neither a result nor an error in the batch answer"),
            )),
        })
        .collect()
}

/// The objects in a batch answer's `results`, with the raw item (for its trace id).
fn objects(status: u16, results: Vec<Value>) -> Result<Vec<(Value, HubObject)>, HubspotError> {
    results
        .into_iter()
        .map(|raw| {
            let object = crate::vendors::from_value(raw.clone(), "result")
                .map_err(|r| unexpected(status, &r))?;
            Ok((raw, object))
        })
        .collect()
}

/// The object id of an association answer's side: `{"from": {"id": "1"}}` (default
/// associations) or `"fromObjectId": 1` (labelled).
fn side(item: &Value, name: &str) -> Option<String> {
    item.pointer(&format!("/{name}/id"))
        .or_else(|| item.get(format!("{name}ObjectId")))
        .and_then(id_text)
}

#[async_trait]
impl HubspotApi for HubspotClient {
    fn set_burst(&self, per_ten_seconds: u32) {
        self.limiter.set_burst(per_ten_seconds);
    }

    async fn upsert(
        &self,
        object: ObjectType,
        id_property: &str,
        inputs: &[ObjectInput],
    ) -> Result<PerInput<HubObject>, HubspotError> {
        check_batch(inputs.len())?;
        check_property(id_property)?;
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        for input in inputs {
            check_key(&input.id)?;
        }
        let body = json!({ "inputs": inputs.iter().enumerate().map(|(i, input)| json!({
            "idProperty": id_property,
            "id": input.id,
            "properties": input.properties,
            "objectWriteTraceId": i.to_string(),
        })).collect::<Vec<_>>() });
        let request = Request::new(
            Method::POST,
            self.object_path(object, &["batch", "upsert"]),
            format!("{object} batch/upsert"),
        )
        .body(body);
        let (status, results, errors) = self.batch(request).await?;
        let keys: Vec<&str> = inputs.iter().map(|i| i.id.as_str()).collect();
        let ignore_case = id_property == "email";
        let by_id = id_property == "hs_object_id";
        let results = objects(status, results)?
            .into_iter()
            .map(|(raw, object)| {
                let targets = match traced(&raw, keys.len()) {
                    Some(i) => vec![i],
                    None => {
                        let key = if by_id {
                            Some(object.id.clone())
                        } else {
                            object.property(id_property).map(str::to_string)
                        };
                        inputs_with(&keys, &key.into_iter().collect::<Vec<_>>(), ignore_case)
                    }
                };
                (targets, object)
            })
            .collect();
        let errors = errors
            .into_iter()
            .map(|e| (error_targets(&e, &keys, ignore_case), e))
            .collect();
        Ok(assign(status, keys.len(), results, errors))
    }

    async fn update(
        &self,
        object: ObjectType,
        inputs: &[ObjectInput],
    ) -> Result<PerInput<HubObject>, HubspotError> {
        check_batch(inputs.len())?;
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        for input in inputs {
            check_id("object id", &input.id)?;
        }
        let body = json!({ "inputs": inputs.iter().enumerate().map(|(i, input)| json!({
            "id": input.id,
            "properties": input.properties,
            "objectWriteTraceId": i.to_string(),
        })).collect::<Vec<_>>() });
        let request = Request::new(
            Method::POST,
            self.object_path(object, &["batch", "update"]),
            format!("{object} batch/update"),
        )
        .body(body);
        let (status, results, errors) = self.batch(request).await?;
        let keys: Vec<&str> = inputs.iter().map(|i| i.id.as_str()).collect();
        let results = objects(status, results)?
            .into_iter()
            .map(|(raw, object)| {
                let targets = traced(&raw, keys.len())
                    .map(|i| vec![i])
                    .unwrap_or_else(|| inputs_with(&keys, std::slice::from_ref(&object.id), false));
                (targets, object)
            })
            .collect();
        let errors = errors
            .into_iter()
            .map(|e| (error_targets(&e, &keys, false), e))
            .collect();
        Ok(assign(status, keys.len(), results, errors))
    }

    async fn read(
        &self,
        object: ObjectType,
        id_property: Option<&str>,
        ids: &[String],
        properties: &[&str],
    ) -> Result<Vec<Option<HubObject>>, HubspotError> {
        check_batch(ids.len())?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        for p in properties {
            check_property(p)?;
        }
        match id_property {
            Some(p) => {
                check_property(p)?;
                for id in ids {
                    check_key(id)?;
                }
            }
            None => {
                for id in ids {
                    check_id("object id", id)?;
                }
            }
        }
        // The key property is asked for too: results are matched to ids by it.
        let mut wanted: Vec<&str> = properties.to_vec();
        if let Some(p) = id_property
            && !wanted.contains(&p)
        {
            wanted.push(p);
        }
        let mut body = json!({
            "inputs": ids.iter().map(|id| json!({ "id": id })).collect::<Vec<_>>(),
            "properties": wanted,
        });
        if let Some(p) = id_property {
            body["idProperty"] = p.into();
        }
        let request = Request::new(
            Method::POST,
            self.object_path(object, &["batch", "read"]),
            format!("{object} batch/read"),
        )
        .body(body);
        let (status, results, errors) = self.batch(request).await?;
        // A missing object is `None`; any other item error fails the read.
        if let Some(e) = errors
            .into_iter()
            .map(item_error)
            .find(|e| !e.is_not_found())
        {
            return Err(e);
        }
        let keys: Vec<&str> = ids.iter().map(String::as_str).collect();
        let ignore_case = id_property == Some("email");
        let mut found: Vec<Option<HubObject>> = vec![None; ids.len()];
        for (_, object) in objects(status, results)? {
            let key = match id_property {
                None | Some("hs_object_id") => Some(object.id.clone()),
                Some(p) => object.property(p).map(str::to_string),
            };
            for i in inputs_with(&keys, &key.into_iter().collect::<Vec<_>>(), ignore_case) {
                found[i] = Some(object.clone());
            }
        }
        Ok(found)
    }

    async fn archive(&self, object: ObjectType, ids: &[String]) -> Result<(), HubspotError> {
        check_batch(ids.len())?;
        if ids.is_empty() {
            return Ok(());
        }
        for id in ids {
            check_id("object id", id)?;
        }
        let body =
            json!({ "inputs": ids.iter().map(|id| json!({ "id": id })).collect::<Vec<_>>() });
        let request = Request::new(
            Method::POST,
            self.object_path(object, &["batch", "archive"]),
            format!("{object} batch/archive"),
        )
        .body(body);
        let (_, _, errors) = self.batch(request).await?;
        // An id already gone is not an error (the archive is what was wanted).
        match errors
            .into_iter()
            .map(item_error)
            .find(|e| !e.is_not_found())
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn associate(
        &self,
        from: ObjectType,
        to: ObjectType,
        pairs: &[Association],
    ) -> Result<PerInput<()>, HubspotError> {
        self.associate_batch(from, to, None, pairs).await
    }

    async fn associate_labelled(
        &self,
        from: ObjectType,
        to: ObjectType,
        label: AssociationType,
        pairs: &[Association],
    ) -> Result<PerInput<()>, HubspotError> {
        self.associate_batch(from, to, Some(label), pairs).await
    }

    async fn properties(
        &self,
        object: ObjectType,
    ) -> Result<Vec<PropertyDefinition>, HubspotError> {
        let request = Request::new(
            Method::GET,
            vec!["crm", "v3", "properties", object.path()],
            format!("properties {object}"),
        );
        let (status, results, _) = self.batch(request).await?;
        Ok(lenient_list(status, results, "property"))
    }

    async fn create_property(
        &self,
        object: ObjectType,
        property: &PropertyDefinition,
    ) -> Result<(), HubspotError> {
        check_property(&property.name)?;
        let body = serde_json::to_value(property)
            .map_err(|e| HubspotError::InvalidArgument(format!("property definition: {e}")))?;
        let request = Request::new(
            Method::POST,
            vec!["crm", "v3", "properties", object.path()],
            format!("create property {object}"),
        )
        .body(body);
        self.call(request).await.map(|_| ())
    }

    async fn property_groups(
        &self,
        object: ObjectType,
    ) -> Result<Vec<PropertyGroup>, HubspotError> {
        let request = Request::new(
            Method::GET,
            vec!["crm", "v3", "properties", object.path(), "groups"],
            format!("property groups {object}"),
        );
        let (status, results, _) = self.batch(request).await?;
        Ok(lenient_list(status, results, "property group"))
    }

    async fn create_property_group(
        &self,
        object: ObjectType,
        group: &PropertyGroup,
    ) -> Result<(), HubspotError> {
        check_property(&group.name)?;
        let body = serde_json::to_value(group)
            .map_err(|e| HubspotError::InvalidArgument(format!("property group: {e}")))?;
        let request = Request::new(
            Method::POST,
            vec!["crm", "v3", "properties", object.path(), "groups"],
            format!("create property group {object}"),
        )
        .body(body);
        self.call(request).await.map(|_| ())
    }

    async fn account(&self) -> Result<AccountDetails, HubspotError> {
        let request = Request::new(
            Method::GET,
            vec!["account-info", "v3", "details"],
            "account-info".into(),
        );
        let (status, v) = self.call(request).await?;
        let details = parse_account(status, v)?;
        self.remember_time_zone(&details);
        Ok(details)
    }

    async fn token_info(&self) -> Result<TokenInfo, HubspotError> {
        let request = if self.kind.is_static() {
            // Sends the token in the body and as Bearer: EU tokens reportedly need the header
            // (docs/vendors/hubspot.md §1, UNCONFIRMED), and both are harmless.
            let mut r = Request::new(
                Method::POST,
                vec!["oauth", "v2", "private-apps", "get", "access-token-info"],
                "token info (private app)".into(),
            );
            r.token = TokenUse::InBody;
            r
        } else {
            let mut r = Request::new(
                Method::GET,
                vec!["oauth", "v1", "access-tokens"],
                "token info (oauth)".into(),
            );
            r.token = TokenUse::InPath;
            r
        };
        let (status, v) = self.call(request).await?;
        parse_token_info(status, &v)
    }
}

/// `{hubId, scopes, appId}` (private app, field names UNCONFIRMED) or `{hub_id, scopes,
/// app_id}` (OAuth), docs/vendors/hubspot.md §1: both spellings are read from either answer.
fn parse_token_info(status: u16, v: &Value) -> Result<TokenInfo, HubspotError> {
    let number = |keys: [&str; 2]| {
        keys.iter().find_map(|k| match v.get(*k) {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        })
    };
    let hub_id = number(["hubId", "hub_id"])
        .ok_or_else(|| unexpected(status, "no hub id in the token info"))?;
    let scopes = v
        .get("scopes")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(TokenInfo {
        hub_id,
        scopes,
        app_id: number(["appId", "app_id"]),
    })
}

/// The items of a list answer that fit `T`; the rest are skipped (one odd property of
/// hundreds must not fail the list) and counted in the logs.
fn lenient_list<T: serde::de::DeserializeOwned>(
    status: u16,
    results: Vec<Value>,
    what: &str,
) -> Vec<T> {
    let total = results.len();
    let items: Vec<T> = results
        .into_iter()
        .filter_map(|v| crate::vendors::from_value(v, what).ok())
        .collect();
    if items.len() < total {
        tracing::info!(
            status,
            skipped = total - items.len(),
            what,
            "HubSpot list items that do not fit the model were skipped"
        );
    }
    items
}

/// The batch inputs of association pairs (checked ids), with `label` for a labelled create.
fn pair_inputs(
    pairs: &[Association],
    label: Option<AssociationType>,
) -> Result<Vec<Value>, HubspotError> {
    check_batch(pairs.len())?;
    pairs
        .iter()
        .map(|p| {
            check_id("from id", &p.from)?;
            check_id("to id", &p.to)?;
            let mut input = json!({ "from": { "id": p.from }, "to": { "id": p.to } });
            if let Some(label) = label {
                input["types"] = json!([label]);
            }
            Ok(input)
        })
        .collect()
}

/// Per-pair results of an association batch: a result (either direction: HubSpot may answer
/// both) settles its pair; an error settles the pairs whose ids its `context.ids` names.
fn assign_pairs(
    status: u16,
    pairs: &[Association],
    results: &[Value],
    errors: Vec<ErrorBody>,
) -> PerInput<()> {
    let mut index: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, p) in pairs.iter().enumerate() {
        index.entry((&p.from, &p.to)).or_default().push(i);
    }
    let results = results
        .iter()
        .filter_map(|item| Some((side(item, "from")?, side(item, "to")?)))
        .map(|(a, b)| {
            let mut targets = index
                .get(&(a.as_str(), b.as_str()))
                .cloned()
                .unwrap_or_default();
            targets.extend(
                index
                    .get(&(b.as_str(), a.as_str()))
                    .cloned()
                    .unwrap_or_default(),
            );
            (targets, ())
        })
        .collect();
    let errors = errors
        .into_iter()
        .map(|e| {
            let targets = (0..pairs.len())
                .filter(|&i| {
                    e.ids
                        .iter()
                        .any(|id| *id == pairs[i].from || *id == pairs[i].to)
                })
                .collect();
            (targets, e)
        })
        .collect();
    assign(status, pairs.len(), results, errors)
}

impl std::fmt::Debug for HubspotClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubspotClient")
            .field("base_url", &self.base_url.as_str())
            .field("credentials", &self.credentials)
            .field("kind", &self.kind)
            .field("portal_id", &self.portal_id)
            .field("api_version", &self.api_version)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
