//! [`MailchimpClient`]: the Marketing API v3 over HTTPS, implementing [`MailchimpApi`].
//!
//! - Base URL `https://<dc>.api.mailchimp.com/3.0` from the credentials, or an override (the
//!   sandbox, `http://127.0.0.1:<port>/3.0`).
//! - Every request holds a permit of the per-key [`ConnectionLimiter`] from before it is sent
//!   until its body is read, so a process never has more than its share of Mailchimp's
//!   10 simultaneous connections per key open.
//! - No retries here: the worker harness retries with backoff and honours `retry_after`.
//!   Errors are classified by [`MailchimpError`] (problem+json, bare 403/429 = transient).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use super::api::MailchimpApi;
use super::credentials::Credentials;
use super::error::MailchimpError;
use super::limiter::MAILCHIMP_CONNECTION_LIMIT;
use super::models::{
    Customer, Member, MemberUpsert, MergeField, Order, Problem, Product, Store, TagChange,
};
use super::webhook::subscriber_hash;
use crate::vendors::http::{http_base, read_capped, retry_after, shared_http_client};
use crate::vendors::limits::{ConnectionLimiter, permits_per_process};

/// Whole-request timeout. Mailchimp's own server-side limit is 120 s (docs/vendors/mailchimp.md §5); a
/// worker would rather give up sooner and let the harness retry.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the OAuth metadata (data centre of a token) is read.
pub const OAUTH_METADATA_URL: &str = "https://login.mailchimp.com/oauth2/metadata";

/// Largest response body read. Merge-field lists and orders are a few kB; a member ~2 kB.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// How a [`MailchimpClient`] is set up.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Replaces the base URL derived from the credentials, e.g. `http://127.0.0.1:4010/3.0`.
    pub base_url: Option<String>,
    /// Whole-request timeout (also the longest wait for a limiter slot).
    pub timeout: Duration,
    /// Simultaneous connections allowed per key across the deployment (Mailchimp: 10).
    pub total_connections: usize,
    /// How many processes share that allowance: the queue's event-source
    /// `MaximumConcurrency` (1 when running locally).
    pub max_concurrency: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            base_url: None,
            timeout: DEFAULT_TIMEOUT,
            total_connections: MAILCHIMP_CONNECTION_LIMIT,
            max_concurrency: 1,
        }
    }
}

impl ClientOptions {
    /// Connections this process may hold per key.
    pub(crate) fn permits(&self) -> usize {
        permits_per_process(self.total_connections, self.max_concurrency)
    }
}

/// One Mailchimp account's API client. Cheap to share (`Arc`); clients for the same key in one
/// process share one limiter, and clients with the same timeout one connection pool.
pub struct MailchimpClient {
    base_url: Url,
    /// The `Authorization` header (marked sensitive), built once.
    authorization: HeaderValue,
    limiter: ConnectionLimiter,
    timeout: Duration,
    http: reqwest::Client,
}

impl MailchimpClient {
    /// A client for `credentials`; [`MailchimpError::Credentials`] if the key or token cannot be
    /// sent in a header.
    pub fn new(credentials: &Credentials, options: &ClientOptions) -> Result<Self, MailchimpError> {
        let base = options
            .base_url
            .clone()
            .unwrap_or_else(|| credentials.base_url());
        let base_url =
            http_base(&base).ok_or_else(|| MailchimpError::InvalidBaseUrl(base.clone()))?;
        let mut authorization = HeaderValue::from_str(credentials.authorization().expose_secret())
            .map_err(|_| {
                MailchimpError::Credentials("the key or token is not header-safe".into())
            })?;
        authorization.set_sensitive(true);
        let http = shared_http_client(options.timeout).map_err(MailchimpError::Transport)?;
        Ok(Self {
            base_url,
            authorization,
            limiter: ConnectionLimiter::for_key(&credentials.fingerprint(), options.permits()),
            timeout: options.timeout,
            http,
        })
    }

    /// A client from the credential secret's JSON (see [`Credentials`]).
    pub fn from_secret(
        secret: &SecretString,
        options: &ClientOptions,
    ) -> Result<Self, MailchimpError> {
        let credentials = Credentials::from_json(secret.expose_secret())
            .map_err(|e| MailchimpError::Credentials(e.to_string()))?;
        Self::new(&credentials, options)
    }

    /// The base URL requests go to (ends in `/3.0`).
    pub fn base_url(&self) -> &str {
        self.base_url.as_str()
    }

    /// `GET /ping`: whether the key works and Mailchimp answers.
    pub async fn ping(&self) -> Result<(), MailchimpError> {
        self.request_json::<serde_json::Value>(Method::GET, &["ping"], &[], None)
            .await
            .map(|_| ())
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, MailchimpError> {
        if let Some(i) = segments.iter().position(|s| s.trim().is_empty()) {
            return Err(MailchimpError::InvalidArgument(format!(
                "empty path segment {i} in a Mailchimp call"
            )));
        }
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| MailchimpError::InvalidBaseUrl(self.base_url.to_string()))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends one request under a limiter permit; returns the status and the (capped) body.
    /// Non-2xx answers become errors.
    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Vec<u8>), MailchimpError> {
        let url = self.url(segments, query)?;
        let mut request = self
            .http
            .request(method, url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        // Held until the body is read: the connection is busy until then.
        let _permit = self
            .limiter
            .acquire(self.timeout)
            .await
            .ok_or(MailchimpError::LimiterTimeout(self.timeout))?;
        let response = request.send().await.map_err(MailchimpError::Transport)?;
        let status = response.status();
        // Only an error needs the headers (request id, Retry-After).
        let headers = (!status.is_success()).then(|| response.headers().clone());
        let bytes = read_capped(response, MAX_BODY)
            .await
            .map_err(|e| MailchimpError::reading(status.as_u16(), e))?;
        match headers {
            None => Ok((status, bytes)),
            Some(headers) => Err(error_for(status.as_u16(), &headers, &bytes)),
        }
    }

    /// A request whose 2xx answer is JSON of type `T` (also for the list-webhook methods in
    /// [`super::list_webhooks`]).
    pub(super) async fn request_json<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<T, MailchimpError> {
        let (status, bytes) = self.send(method, segments, query, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| MailchimpError::UnexpectedBody {
            status: status.as_u16(),
            reason: format!("not the expected JSON: {e}"),
        })
    }

    /// A read where 404 means "not there".
    async fn get_optional<T: DeserializeOwned>(
        &self,
        segments: &[&str],
    ) -> Result<Option<T>, MailchimpError> {
        match self
            .request_json::<T>(Method::GET, segments, &[], None)
            .await
        {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A write whose answer body is not needed.
    async fn write(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Vec<u8>>,
    ) -> Result<(), MailchimpError> {
        self.send(method, segments, &[], body).await.map(|_| ())
    }
}

fn json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, MailchimpError> {
    serde_json::to_vec(value).map_err(|e| MailchimpError::InvalidArgument(e.to_string()))
}

/// The error for a non-2xx answer: its problem document if the body is one (Mailchimp sends
/// `application/problem+json`, but any JSON body is tried), else a bare status.
fn error_for(status: u16, headers: &HeaderMap, body: &[u8]) -> MailchimpError {
    let problem = serde_json::from_slice::<Problem>(body)
        .ok()
        .filter(|p| !p.title.is_empty() || !p.detail.is_empty());
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    MailchimpError::from_problem(status, problem, request_id, retry_after(headers))
}

#[derive(Deserialize)]
struct MergeFieldPage {
    #[serde(default)]
    merge_fields: Vec<MergeField>,
}

#[async_trait]
impl MailchimpApi for MailchimpClient {
    async fn upsert_member(
        &self,
        list_id: &str,
        member: &MemberUpsert,
    ) -> Result<Member, MailchimpError> {
        let hash = subscriber_hash(&member.email_address);
        self.request_json(
            Method::PUT,
            &["lists", list_id, "members", &hash],
            &[("skip_merge_validation", "true")],
            Some(json(member)?),
        )
        .await
    }

    async fn member(&self, list_id: &str, email: &str) -> Result<Option<Member>, MailchimpError> {
        let hash = subscriber_hash(email);
        self.get_optional(&["lists", list_id, "members", &hash])
            .await
    }

    async fn archive_member(&self, list_id: &str, email: &str) -> Result<bool, MailchimpError> {
        let hash = subscriber_hash(email);
        match self
            .write(Method::DELETE, &["lists", list_id, "members", &hash], None)
            .await
        {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.status(), Some(404 | 405)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn update_tags(
        &self,
        list_id: &str,
        email: &str,
        tags: &[TagChange],
        is_syncing: bool,
    ) -> Result<(), MailchimpError> {
        let hash = subscriber_hash(email);
        let body = serde_json::json!({ "tags": tags, "is_syncing": is_syncing });
        self.write(
            Method::POST,
            &["lists", list_id, "members", &hash, "tags"],
            Some(json(&body)?),
        )
        .await
    }

    async fn merge_fields(&self, list_id: &str) -> Result<Vec<MergeField>, MailchimpError> {
        let page: MergeFieldPage = self
            .request_json(
                Method::GET,
                &["lists", list_id, "merge-fields"],
                &[("count", "1000")],
                None,
            )
            .await?;
        Ok(page.merge_fields)
    }

    async fn create_merge_field(
        &self,
        list_id: &str,
        field: &MergeField,
    ) -> Result<MergeField, MailchimpError> {
        self.request_json(
            Method::POST,
            &["lists", list_id, "merge-fields"],
            &[],
            Some(json(field)?),
        )
        .await
    }

    async fn store(&self, store_id: &str) -> Result<Option<Store>, MailchimpError> {
        self.get_optional(&["ecommerce", "stores", store_id]).await
    }

    async fn create_store(&self, store: &Store) -> Result<Store, MailchimpError> {
        self.request_json(
            Method::POST,
            &["ecommerce", "stores"],
            &[],
            Some(json(store)?),
        )
        .await
    }

    async fn set_store_syncing(&self, store_id: &str, syncing: bool) -> Result<(), MailchimpError> {
        let body = serde_json::json!({ "is_syncing": syncing });
        self.write(
            Method::PATCH,
            &["ecommerce", "stores", store_id],
            Some(json(&body)?),
        )
        .await
    }

    async fn upsert_customer(
        &self,
        store_id: &str,
        customer: &Customer,
    ) -> Result<(), MailchimpError> {
        self.write(
            Method::PUT,
            &["ecommerce", "stores", store_id, "customers", &customer.id],
            Some(json(customer)?),
        )
        .await
    }

    async fn product(
        &self,
        store_id: &str,
        product_id: &str,
    ) -> Result<Option<Product>, MailchimpError> {
        self.get_optional(&["ecommerce", "stores", store_id, "products", product_id])
            .await
    }

    async fn create_product(
        &self,
        store_id: &str,
        product: &Product,
    ) -> Result<(), MailchimpError> {
        self.write(
            Method::POST,
            &["ecommerce", "stores", store_id, "products"],
            Some(json(product)?),
        )
        .await
    }

    async fn order(&self, store_id: &str, order_id: &str) -> Result<Option<Order>, MailchimpError> {
        self.get_optional(&["ecommerce", "stores", store_id, "orders", order_id])
            .await
    }

    async fn create_order(&self, store_id: &str, order: &Order) -> Result<(), MailchimpError> {
        self.write(
            Method::POST,
            &["ecommerce", "stores", store_id, "orders"],
            Some(json(order)?),
        )
        .await
    }

    async fn update_order(&self, store_id: &str, order: &Order) -> Result<(), MailchimpError> {
        self.write(
            Method::PATCH,
            &["ecommerce", "stores", store_id, "orders", &order.id],
            Some(json(order)?),
        )
        .await
    }

    async fn delete_order_line(
        &self,
        store_id: &str,
        order_id: &str,
        line_id: &str,
    ) -> Result<(), MailchimpError> {
        match self
            .write(
                Method::DELETE,
                &[
                    "ecommerce",
                    "stores",
                    store_id,
                    "orders",
                    order_id,
                    "lines",
                    line_id,
                ],
                None,
            )
            .await
        {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other,
        }
    }
}

impl std::fmt::Debug for MailchimpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailchimpClient")
            .field("base_url", &self.base_url.as_str())
            .field("timeout", &self.timeout)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

/// What `GET https://login.mailchimp.com/oauth2/metadata` says about an OAuth token: where its
/// account lives. Store `dc` / `api_endpoint` beside the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthMetadata {
    /// The data centre, e.g. `us21`.
    pub dc: String,
    /// e.g. `https://us21.api.mailchimp.com` (no `/3.0`).
    pub api_endpoint: String,
    /// The Mailchimp account's name, to show the user which account they connected.
    #[serde(default)]
    pub accountname: Option<String>,
    #[serde(default)]
    login_url: Option<String>,
}

/// Reads the OAuth metadata of `token` from `url`: Mailchimp's login server
/// ([`OAUTH_METADATA_URL`]) or the sandbox's `…/oauth2/metadata`. Note the header is `Authorization: OAuth <token>`, not `Bearer` (docs/vendors/mailchimp.md §1).
pub async fn oauth_metadata_at(
    url: &str,
    token: &SecretString,
    timeout: Duration,
) -> Result<OAuthMetadata, MailchimpError> {
    let url = Url::parse(url).map_err(|_| MailchimpError::InvalidBaseUrl(url.to_string()))?;
    let mut auth = HeaderValue::from_str(&format!("OAuth {}", token.expose_secret()))
        .map_err(|_| MailchimpError::Credentials("the token is not header-safe".into()))?;
    auth.set_sensitive(true);
    let http = shared_http_client(timeout).map_err(MailchimpError::Transport)?;
    let response = http
        .get(url)
        .header(AUTHORIZATION, auth)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(MailchimpError::Transport)?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(MailchimpError::Transport)?;
    if !(200..300).contains(&status) {
        return Err(error_for(status, &headers, &body));
    }
    serde_json::from_slice(&body).map_err(|e| MailchimpError::UnexpectedBody {
        status,
        reason: format!("not OAuth metadata: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> MailchimpClient {
        let creds = Credentials::from_api_key("0123456789abcdef0123456789abcdef-us21".into())
            .expect("valid key");
        MailchimpClient::new(
            &creds,
            &ClientOptions {
                base_url: Some(base.into()),
                ..ClientOptions::default()
            },
        )
        .expect("client")
    }

    #[test]
    fn urls_escape_ids_and_keep_the_version_prefix() {
        let c = client("http://127.0.0.1:9/3.0");
        let url = c
            .url(&["lists", "a/b", "members", "x y"], &[("count", "1000")])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/3.0/lists/a%2Fb/members/x%20y?count=1000"
        );
        assert!(matches!(
            c.url(&["lists", ""], &[]),
            Err(MailchimpError::InvalidArgument(_))
        ));
        let default = MailchimpClient::new(
            &Credentials::from_api_key("k-us5".into()).unwrap(),
            &ClientOptions::default(),
        )
        .unwrap();
        assert_eq!(default.base_url(), "https://us5.api.mailchimp.com/3.0");
        assert!(
            MailchimpClient::new(
                &Credentials::from_api_key("k-us5".into()).unwrap(),
                &ClientOptions {
                    base_url: Some("not a url".into()),
                    ..ClientOptions::default()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn errors_from_problem_documents_and_bare_statuses() {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", HeaderValue::from_static("hdr-id"));
        headers.insert("retry-after", HeaderValue::from_static("7"));
        let e = error_for(
            400,
            &headers,
            br#"{"type":"t","title":"Member In Compliance State","status":400,
                "detail":"x is in a compliance state","instance":"inst-1"}"#,
        );
        assert_eq!(e.class(), "compliance_state");
        assert_eq!(e.request_id(), Some("inst-1"));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let bare = error_for(403, &headers, b"");
        assert!(bare.is_transient());
        assert_eq!(bare.request_id(), Some("hdr-id"));
        assert!(error_for(429, &HeaderMap::new(), b"<html>").is_transient());
        assert!(!error_for(404, &HeaderMap::new(), b"").is_transient());
    }

    #[test]
    fn options_divide_the_limit() {
        let o = ClientOptions {
            max_concurrency: 4,
            ..ClientOptions::default()
        };
        assert_eq!(o.permits(), 2);
        assert_eq!(ClientOptions::default().permits(), 10);
    }

    #[test]
    fn debug_hides_the_key() {
        let debug = format!("{:?}", client("http://127.0.0.1:9/3.0"));
        assert!(!debug.contains("0123456789abcdef"), "{debug}");
        assert!(!debug.contains("Basic"), "{debug}");
    }
}
