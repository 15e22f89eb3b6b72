//! [`QuickbooksClient`]: the Accounting API v3 calls the QuickBooks flows make (docs/vendors/quickbooks.md
//! §3), implementing [`QuickbooksApi`].
//!
//! - Every request sends `minorversion=75` and `Accept: application/json`, takes its bearer
//!   token from an [`AccessTokens`] source (a 401 refreshes once and retries once), and holds a
//!   slot of the realm's process-wide `RealmLimiter` until its body is read.
//! - Nothing else is retried here: the worker harness retries transient errors (429, 5xx,
//!   transport) with backoff and honours `retry_after`.
//! - Every failed call is logged with its `intuit_tid`, status and QuickBooks code; tokens,
//!   bodies and query strings (which hold email addresses) never are.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use url::Url;

use super::QuickbooksError;
use super::api::QuickbooksApi;
use super::credentials::QuickbooksCredentials;
use super::error::INTUIT_TID_HEADER;
use super::limiter::{RealmLimiter, RealmShare};
use super::models::{
    Attachable, ChangedCustomers, Customer, CustomerUpdate, MAX_NOTE_CHARS, MINOR_VERSION,
};
use crate::tokens::{AccessTokens, call_with_token};
use crate::vendors::http::{http_base, read_capped, retry_after, shared_http_client};
use crate::vendors::{is_plain_id, json_error_category};

/// Whole-request timeout (also the longest wait for a limiter slot).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Largest response body read: a CDC answer of 1000 customers is a few MB.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// QuickBooks' largest query page (`MAXRESULTS`), and the most objects a CDC answer holds.
const PAGE_SIZE: usize = 1000;

/// A paged query longer than this many pages is refused rather than followed forever.
const MAX_PAGES: usize = 10_000;

/// How a [`QuickbooksClient`] is set up.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Replaces the API base derived from the credential set's `environment`
    /// (`QUICKBOOKS_API_BASE`; the sandbox's `http://127.0.0.1:<port>`).
    pub(crate) api_base: Option<String>,
    /// Whole-request timeout, and the longest wait for a limiter slot.
    pub(crate) timeout: Duration,
    /// How many processes share each realm's limits: the queue's event-source
    /// `MaximumConcurrency` (1 when running locally).
    pub(crate) max_concurrency: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            api_base: None,
            timeout: DEFAULT_TIMEOUT,
            max_concurrency: 1,
        }
    }
}

/// One credential set's QuickBooks API client. Cheap to share (`Arc`); clients for the same
/// realm in one process share its limiter.
pub struct QuickbooksClient {
    base_url: Url,
    http: reqwest::Client,
    tokens: Arc<dyn AccessTokens>,
    credentials: String,
    share: RealmShare,
    timeout: Duration,
}

impl QuickbooksClient {
    /// A client for the API at `api_base` (`https://quickbooks.api.intuit.com`, or the
    /// sandbox's), calling as credential set `credentials` with tokens from `tokens`.
    pub fn new(
        api_base: &str,
        tokens: Arc<dyn AccessTokens>,
        credentials: &str,
        options: &ClientOptions,
    ) -> Result<Self, QuickbooksError> {
        let base_url = http_base(api_base)
            .ok_or_else(|| QuickbooksError::InvalidBaseUrl(api_base.to_string()))?;
        let http = shared_http_client(options.timeout)
            .map_err(|e| QuickbooksError::Transport(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            base_url,
            http,
            tokens,
            credentials: credentials.to_string(),
            share: RealmShare::for_processes(options.max_concurrency),
            timeout: options.timeout,
        })
    }

    /// A client for a parsed credential set: the API base is `options.api_base` if set, else
    /// the set's `environment` host.
    pub(crate) fn for_credentials(
        set: &QuickbooksCredentials,
        tokens: Arc<dyn AccessTokens>,
        credentials: &str,
        options: &ClientOptions,
    ) -> Result<Self, QuickbooksError> {
        Self::new(
            set.api_base(options.api_base.as_deref()),
            tokens,
            credentials,
            options,
        )
    }

    /// The API base requests go to.
    #[cfg(test)]
    pub(crate) fn base_url(&self) -> &str {
        self.base_url.as_str()
    }

    /// One request with a token (on 401 one refresh and one retry), its answer read by
    /// `parse`. Every failure, an answer `parse` cannot read included, carries the answer's
    /// `intuit_tid` and is logged.
    async fn call<T, F>(
        &self,
        method: Method,
        realm: &str,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
        parse: F,
    ) -> Result<T, QuickbooksError>
    where
        F: FnOnce(Value) -> Result<T, QuickbooksError> + Send,
    {
        let url = self.url(realm, segments, query)?;
        let result = match self.call_once_or_twice(&method, realm, &url, body).await {
            Ok((v, intuit_tid)) => parse(v).map_err(|e| with_tid(e, intuit_tid)),
            Err(e) => Err(e),
        };
        match &result {
            // An expected answer for reads ("is it still there?"), not worth a warning.
            Err(e) if e.is_not_found() => tracing::debug!(
                credentials = %self.credentials,
                realm,
                path = url.path(),
                intuit_tid = e.intuit_tid().unwrap_or(""),
                "QuickBooks: object not found"
            ),
            Err(e) => tracing::warn!(
                credentials = %self.credentials,
                realm,
                method = %method,
                path = url.path(),
                intuit_tid = e.intuit_tid().unwrap_or(""),
                status = status_of(e),
                code = e.code().unwrap_or(""),
                error = %e,
                "QuickBooks call failed"
            ),
            Ok(_) => {}
        }
        result
    }

    async fn call_once_or_twice(
        &self,
        method: &Method,
        realm: &str,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<(Value, Option<String>), QuickbooksError> {
        // Keyed by host and realm: a sandbox company and a production one never share limits.
        // Looked up once: the retry after a 401 counts against the same realm.
        let limiter = RealmLimiter::for_realm(&format!("{}#{realm}", self.base_url), self.share);
        let limiter = &limiter;
        call_with_token(
            self.tokens.as_ref(),
            &self.credentials,
            QuickbooksError::is_unauthorized,
            |e| {
                tracing::info!(
                    credentials = %self.credentials,
                    realm,
                    path = url.path(),
                    intuit_tid = e.intuit_tid().unwrap_or(""),
                    "QuickBooks refused the access token; refreshing once"
                );
            },
            |token| async move { self.send(method, url, body, &token, limiter).await },
        )
        .await
    }

    async fn send(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&Value>,
        token: &SecretString,
        limiter: &RealmLimiter,
    ) -> Result<(Value, Option<String>), QuickbooksError> {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        // Held until the body is read: the request counts against the realm until then.
        let _slot = limiter
            .acquire(self.timeout)
            .await
            .map_err(|e| QuickbooksError::Transport(e.to_string()))?;
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let intuit_tid = response
            .headers()
            .get(INTUIT_TID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.trim().is_empty())
            .map(str::to_string);
        let retry_after = retry_after(response.headers());
        let bytes = match read_capped(response, MAX_BODY).await {
            Ok(bytes) => bytes,
            Err(e) => return Err(QuickbooksError::reading(status, intuit_tid, e)),
        };
        if !(200..300).contains(&status) {
            return Err(QuickbooksError::from_response(
                status,
                &bytes,
                intuit_tid,
                retry_after,
            ));
        }
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| QuickbooksError::UnexpectedBody {
                status,
                reason: format!("not JSON ({} error)", json_error_category(&e)),
                intuit_tid: intuit_tid.clone(),
            })?;
        // A Fault inside a 2xx answer is still a failure (batch-style answers do this).
        if v.get("Fault").is_some() {
            return Err(QuickbooksError::from_response(
                status,
                &bytes,
                intuit_tid,
                retry_after,
            ));
        }
        Ok((v, intuit_tid))
    }

    /// `{base}/v3/company/{realm}/{segments…}?{query…}&minorversion=75`.
    fn url(
        &self,
        realm: &str,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Url, QuickbooksError> {
        let realm = plain("realm id", realm)?;
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| QuickbooksError::InvalidBaseUrl(self.base_url.to_string()))?
            .pop_if_empty()
            .extend(["v3", "company", realm])
            .extend(segments);
        url.query_pairs_mut()
            .extend_pairs(query)
            .append_pair("minorversion", MINOR_VERSION);
        Ok(url)
    }

    /// `GET query?query=…`: the customers in the answer and its `time`.
    async fn query_customers(
        &self,
        realm: &str,
        statement: &str,
    ) -> Result<(Vec<Customer>, Option<DateTime<Utc>>), QuickbooksError> {
        self.call(
            Method::GET,
            realm,
            &["query"],
            &[("query", statement)],
            None,
            |v| query_rows(v, "Customer"),
        )
        .await
    }
}

#[async_trait]
impl QuickbooksApi for QuickbooksClient {
    async fn customer(&self, realm: &str, id: &str) -> Result<Option<Customer>, QuickbooksError> {
        let id = plain("customer id", id)?;
        let read = self
            .call(Method::GET, realm, &["customer", id], &[], None, |v| {
                entity(&v, "Customer")
            })
            .await;
        match read {
            Ok(customer) => Ok(Some(customer)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn customers_by_email(
        &self,
        realm: &str,
        email: &str,
    ) -> Result<Vec<Customer>, QuickbooksError> {
        let email = email.trim();
        if email.is_empty() {
            // `PrimaryEmailAddr = ''` would match customers without an address.
            return Err(QuickbooksError::InvalidArgument(
                "an empty email cannot identify a customer".into(),
            ));
        }
        let statement = format!(
            "SELECT * FROM Customer WHERE PrimaryEmailAddr = {} AND Active IN (true, false)",
            quote_literal(email, "email")?
        );
        Ok(self.query_customers(realm, &statement).await?.0)
    }

    async fn changed_customers(
        &self,
        realm: &str,
        since: DateTime<Utc>,
    ) -> Result<ChangedCustomers, QuickbooksError> {
        let since = since.to_rfc3339_opts(SecondsFormat::Secs, false);
        self.call(
            Method::GET,
            realm,
            &["cdc"],
            &[("entities", "Customer"), ("changedSince", &since)],
            None,
            |v| parse_cdc(&v),
        )
        .await
    }

    async fn customers_updated_since(
        &self,
        realm: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<ChangedCustomers, QuickbooksError> {
        let filter = match since {
            Some(at) => format!(
                " AND MetaData.LastUpdatedTime > '{}'",
                at.to_rfc3339_opts(SecondsFormat::Secs, false)
            ),
            None => String::new(),
        };
        let mut customers = Vec::new();
        let mut first_time = None;
        for page in 0..MAX_PAGES {
            let statement = format!(
                "SELECT * FROM Customer WHERE Active IN (true, false){filter} ORDERBY Id STARTPOSITION {} MAXRESULTS {PAGE_SIZE}",
                page * PAGE_SIZE + 1
            );
            let (rows, time) = self.query_customers(realm, &statement).await?;
            // The first page's clock: anything changed while paging is after it, so the next
            // window (from this time) sees it again rather than never.
            if page == 0 {
                first_time = time;
            }
            let n = rows.len();
            customers.extend(rows);
            if n < PAGE_SIZE {
                let server_time =
                    first_time.ok_or_else(|| unexpected("no `time` in the query answer"))?;
                return Ok(ChangedCustomers {
                    customers,
                    server_time,
                    truncated: false,
                });
            }
        }
        Err(unexpected(&format!(
            "more than {MAX_PAGES} pages of customers"
        )))
    }

    async fn update_customer(
        &self,
        realm: &str,
        update: &CustomerUpdate,
    ) -> Result<Customer, QuickbooksError> {
        plain("customer id", &update.id)?;
        let mut body = json!({
            "Id": update.id,
            "SyncToken": update.sync_token,
            "sparse": true,
        });
        if let Some(notes) = &update.notes {
            body["Notes"] = cut_chars(notes, MAX_NOTE_CHARS).into();
        }
        if let Some(active) = update.active {
            body["Active"] = active.into();
        }
        self.call(Method::POST, realm, &["customer"], &[], Some(&body), |v| {
            entity(&v, "Customer")
        })
        .await
    }

    async fn create_customer_note(
        &self,
        realm: &str,
        customer_id: &str,
        note: &str,
        request_id: &str,
    ) -> Result<Attachable, QuickbooksError> {
        let customer_id = plain("customer id", customer_id)?;
        let request_id = plain("request id", request_id)?;
        let body = json!({
            "AttachableRef": [{
                "EntityRef": { "type": "Customer", "value": customer_id },
                "IncludeOnSend": false,
            }],
            "Note": cut_chars(note, MAX_NOTE_CHARS),
        });
        self.call(
            Method::POST,
            realm,
            &["attachable"],
            &[("requestid", request_id)],
            Some(&body),
            |v| entity(&v, "Attachable"),
        )
        .await
    }

    async fn company_name(&self, realm: &str) -> Result<String, QuickbooksError> {
        let realm_segment = plain("realm id", realm)?;
        self.call(
            Method::GET,
            realm,
            &["companyinfo", realm_segment],
            &[],
            None,
            |v| {
                v.pointer("/CompanyInfo/CompanyName")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| unexpected("no `CompanyInfo.CompanyName`"))
            },
        )
        .await
    }
}

impl std::fmt::Debug for QuickbooksClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuickbooksClient")
            .field("base_url", &self.base_url.as_str())
            .field("credentials", &self.credentials)
            .field("share", &self.share)
            .finish_non_exhaustive()
    }
}

/// A query string literal: `'…'` with `'` escaped as `\'` (docs/vendors/quickbooks.md §3.4). Control
/// characters and backslashes are refused: whether QuickBooks' grammar escapes a backslash is
/// UNCONFIRMED, and an unescaped one before our closing quote would end the literal elsewhere.
fn quote_literal(value: &str, what: &str) -> Result<String, QuickbooksError> {
    if value.chars().any(char::is_control) {
        return Err(QuickbooksError::InvalidArgument(format!(
            "the {what} holds a control character"
        )));
    }
    if value.contains('\\') {
        return Err(QuickbooksError::InvalidArgument(format!(
            "the {what} holds a backslash, which a QuickBooks query cannot carry"
        )));
    }
    Ok(format!("'{}'", value.replace('\'', "\\'")))
}

/// At most `max` characters of `s`, cut on a character boundary.
pub(crate) fn cut_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// The changed customers of a CDC answer:
/// `{"CDCResponse":[{"QueryResponse":[{"Customer":[…]}, …]}],"time":"…"}`. Objects of every
/// entity count towards the 1000 cap.
fn parse_cdc(v: &Value) -> Result<ChangedCustomers, QuickbooksError> {
    let server_time = server_time(v).ok_or_else(|| unexpected("no `time` in the CDC answer"))?;
    let responses = v
        .get("CDCResponse")
        .and_then(Value::as_array)
        .ok_or_else(|| unexpected("no `CDCResponse` list"))?;
    let mut customers = Vec::new();
    let mut objects = 0usize;
    for response in responses {
        let queries = match response.get("QueryResponse") {
            Some(Value::Array(items)) => items.as_slice(),
            Some(single @ Value::Object(_)) => std::slice::from_ref(single),
            _ => &[],
        };
        for query in queries {
            let Some(map) = query.as_object() else {
                continue;
            };
            for (key, value) in map {
                let Some(rows) = value.as_array() else {
                    // startPosition, maxResults, totalCount …
                    continue;
                };
                objects += rows.len();
                if key == "Customer" {
                    for row in rows {
                        customers.push(from_value(row.clone(), "Customer")?);
                    }
                }
            }
        }
    }
    Ok(ChangedCustomers {
        customers,
        server_time,
        truncated: objects >= PAGE_SIZE,
    })
}

/// The rows of `entity` in a query answer (`QueryResponse: {}` without the key when there are
/// none) and the answer's `time`.
fn query_rows<T: DeserializeOwned>(
    v: Value,
    entity: &str,
) -> Result<(Vec<T>, Option<DateTime<Utc>>), QuickbooksError> {
    let time = server_time(&v);
    let Value::Object(mut top) = v else {
        return Err(unexpected("the answer is not an object"));
    };
    let rows = match top.get_mut("QueryResponse").map(Value::take) {
        None => return Err(unexpected("no `QueryResponse`")),
        Some(Value::Object(mut response)) => match response.remove(entity) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(rows)) => rows,
            Some(_) => {
                return Err(unexpected(&format!(
                    "`QueryResponse.{entity}` is not a list"
                )));
            }
        },
        Some(_) => return Err(unexpected("`QueryResponse` is not an object")),
    };
    let rows = rows
        .into_iter()
        .map(|row| from_value(row, entity))
        .collect::<Result<_, _>>()?;
    Ok((rows, time))
}

/// `e` with the answer's `intuit_tid` when it lacks one (a 2xx answer we could not read).
fn with_tid(e: QuickbooksError, tid: Option<String>) -> QuickbooksError {
    match e {
        QuickbooksError::UnexpectedBody {
            status,
            reason,
            intuit_tid: None,
        } => QuickbooksError::UnexpectedBody {
            status,
            reason,
            intuit_tid: tid,
        },
        other => other,
    }
}

/// The answer's `time` (the server's clock, e.g. `2026-03-02T07:15:59.571-08:00`).
fn server_time(v: &Value) -> Option<DateTime<Utc>> {
    let raw = v.get("time")?.as_str()?;
    DateTime::parse_from_rfc3339(raw.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn entity<T: DeserializeOwned>(v: &Value, key: &str) -> Result<T, QuickbooksError> {
    let record = v
        .get(key)
        .ok_or_else(|| unexpected(&format!("no `{key}` in the answer")))?;
    from_value(record.clone(), key)
}

fn from_value<T: DeserializeOwned>(v: Value, key: &str) -> Result<T, QuickbooksError> {
    crate::vendors::from_value(v, key).map_err(|reason| unexpected(&reason))
}

/// A transport failure without its URL: query strings hold email addresses, and this message
/// ends up in logs and dead letters. The causes are kept (connection refused, timeout, …).
pub(super) fn transport(e: reqwest::Error) -> QuickbooksError {
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    QuickbooksError::Transport(message)
}

fn unexpected(reason: &str) -> QuickbooksError {
    QuickbooksError::UnexpectedBody {
        status: 200,
        reason: reason.to_string(),
        intuit_tid: None,
    }
}

fn plain<'a>(what: &'static str, id: &'a str) -> Result<&'a str, QuickbooksError> {
    if is_plain_id(id) {
        Ok(id)
    } else {
        Err(QuickbooksError::InvalidId { what })
    }
}

fn status_of(e: &QuickbooksError) -> u16 {
    match e {
        QuickbooksError::Fault { status, .. } | QuickbooksError::UnexpectedBody { status, .. } => {
            *status
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_quoted_and_escaped() {
        assert_eq!(
            quote_literal("o'brien@example.com", "email").unwrap(),
            r"'o\'brien@example.com'"
        );
        assert_eq!(quote_literal("", "email").unwrap(), "''");
        for bad in ["a\nb@x.com", "a\u{0}@x", "a\u{7f}@x", r"a\@x.com"] {
            assert!(matches!(
                quote_literal(bad, "email"),
                Err(QuickbooksError::InvalidArgument(m)) if !m.contains('@')
            ));
        }
    }

    #[test]
    fn notes_are_cut_on_char_boundaries() {
        let note = "ü".repeat(MAX_NOTE_CHARS + 5);
        let cut = cut_chars(&note, MAX_NOTE_CHARS);
        assert_eq!(cut.chars().count(), MAX_NOTE_CHARS);
        assert_eq!(cut_chars("short", MAX_NOTE_CHARS), "short");
    }

    #[test]
    fn cdc_answers_with_stubs_and_other_entities() {
        let v = json!({
            "CDCResponse": [{"QueryResponse": [
                {"Customer": [
                    {"Id": "1", "SyncToken": "2", "DisplayName": "Ada",
                     "PrimaryEmailAddr": {"Address": "ada@example.com"}, "Active": false,
                     "MetaData": {"LastUpdatedTime": "2026-03-02T07:00:00-08:00"}},
                    {"Id": "2", "status": "Deleted",
                     "MetaData": {"LastUpdatedTime": "2026-03-02T07:01:00-08:00"}}
                 ], "startPosition": 1, "maxResults": 2},
                {"Invoice": [{"Id": "9"}]}
            ]}],
            "time": "2026-03-02T07:15:59.571-08:00"
        });
        let changed = parse_cdc(&v).unwrap();
        assert_eq!(changed.customers.len(), 2);
        assert!(!changed.customers[0].active);
        assert!(changed.customers[1].is_deleted());
        assert!(!changed.truncated);
        assert_eq!(
            changed.server_time,
            "2026-03-02T15:15:59.571Z".parse::<DateTime<Utc>>().unwrap()
        );
        let empty = parse_cdc(
            &json!({"CDCResponse": [{"QueryResponse": [{}]}], "time": "2026-03-02T00:00:00Z"}),
        )
        .unwrap();
        assert!(empty.customers.is_empty());
        assert!(parse_cdc(&json!({"CDCResponse": []})).is_err(), "no time");
        assert!(parse_cdc(&json!({"time": "2026-03-02T00:00:00Z"})).is_err());
    }

    #[test]
    fn a_full_cdc_answer_is_truncated() {
        let rows: Vec<Value> = (0..PAGE_SIZE)
            .map(|i| json!({"Id": i.to_string()}))
            .collect();
        let v = json!({"CDCResponse": [{"QueryResponse": [{"Customer": rows}]}],
                       "time": "2026-03-02T00:00:00Z"});
        assert!(parse_cdc(&v).unwrap().truncated);
    }

    #[tokio::test]
    async fn transport_errors_do_not_quote_the_url() {
        // Nothing listens on port 9: the connection is refused.
        let err = reqwest::Client::new()
            .get("http://127.0.0.1:9/v3/company/1/query?query=jane%40example.com")
            .send()
            .await
            .unwrap_err();
        let e = transport(err);
        assert!(e.is_transient());
        assert!(!e.to_string().contains("jane"), "{e}");
    }

    #[test]
    fn query_answers_with_and_without_rows() {
        let (rows, time) = query_rows::<Customer>(
            json!({"QueryResponse": {"Customer": [{"Id": "1"}], "startPosition": 1},
                   "time": "2026-03-02T07:00:00-08:00"}),
            "Customer",
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert!(time.is_some());
        let (rows, _) =
            query_rows::<Customer>(json!({"QueryResponse": {}, "time": "x"}), "Customer").unwrap();
        assert!(rows.is_empty());
        assert!(query_rows::<Customer>(json!({"time": "x"}), "Customer").is_err());
        let e = query_rows::<Customer>(json!({"QueryResponse": {"Customer": 5}}), "Customer")
            .unwrap_err();
        let e = with_tid(e, Some("tid-9".into()));
        assert_eq!(e.intuit_tid(), Some("tid-9"));
    }

    #[test]
    fn model_errors_do_not_quote_values() {
        let err = from_value::<Customer>(
            json!({"Id": "1", "PrimaryEmailAddr": {"Address": 5}, "DisplayName": ["jane@example.com"]}),
            "Customer",
        )
        .unwrap_err();
        assert!(!err.to_string().contains("jane@"), "{err}");
    }

    fn client() -> QuickbooksClient {
        QuickbooksClient::new(
            "http://127.0.0.1:9/prefix/",
            Arc::new(crate::tokens::StaticToken("t".into())),
            "qb",
            &ClientOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn urls_carry_the_realm_and_minorversion() {
        let url = client()
            .url(
                "123",
                &["query"],
                &[(
                    "query",
                    "SELECT * FROM Customer WHERE PrimaryEmailAddr = 'a+b@x.com'",
                )],
            )
            .unwrap();
        assert_eq!(url.path(), "/prefix/v3/company/123/query");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            pairs[0].1,
            "SELECT * FROM Customer WHERE PrimaryEmailAddr = 'a+b@x.com'"
        );
        assert_eq!(pairs[1], ("minorversion".into(), MINOR_VERSION.into()));
        assert!(!url.as_str().contains("a+b"), "encoded: {url}");
        assert!(matches!(
            client().url("1/2", &[], &[]),
            Err(QuickbooksError::InvalidId { what: "realm id" })
        ));
    }

    #[tokio::test]
    async fn ids_and_literals_are_checked_before_any_request() {
        let c = client();
        assert!(matches!(
            c.customer("123", "1/../2").await,
            Err(QuickbooksError::InvalidId { .. })
        ));
        assert!(matches!(
            c.customers_by_email("123", "a\r\nb@x.com").await,
            Err(QuickbooksError::InvalidArgument(_))
        ));
        assert!(matches!(
            c.customers_by_email("123", "  ").await,
            Err(QuickbooksError::InvalidArgument(_))
        ));
        assert!(matches!(
            c.create_customer_note("123", "1", "n", "req id").await,
            Err(QuickbooksError::InvalidId { what: "request id" })
        ));
        assert!(matches!(
            c.company_name("a b").await,
            Err(QuickbooksError::InvalidId { .. })
        ));
        assert!(
            QuickbooksClient::new(
                "mailto:x@y",
                Arc::new(crate::tokens::StaticToken("t".into())),
                "qb",
                &ClientOptions::default()
            )
            .is_err()
        );
    }
}
