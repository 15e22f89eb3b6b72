//! [`FreshbooksClient`]: the FreshBooks REST calls the connector makes — identity, clients,
//! invoices with lines, payments, changed-since listings and the callbacks API
//! (docs/vendors/freshbooks.md §1.1, §3).
//!
//! Every call takes a bearer token from an [`AccessTokens`] source; a 401 refreshes it once and
//! retries once. Nothing else is retried here: the worker harness retries transient errors with
//! backoff. Errors that FreshBooks reports with HTTP 200 are errors. Tokens and bodies are never
//! logged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use url::Url;

use super::FreshbooksError;
use super::api::FreshbooksApi;
use super::error::{error_in_body, from_error_response};
use super::models::{
    BillVendor, Business, Callback, Changed, Client, Entity, Identity, Invoice, Payment,
    VIS_DELETED,
};
use crate::tokens::{AccessTokens, call_with_token};
use crate::vendors::http::{http_base, read_capped, shared_http_client};
use crate::vendors::{is_plain_id, json_error_category};

pub use super::callbacks::DEFAULT_BASE_URL;

/// Whole-request timeout (connect, send, read the body).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Largest response body read: a page of 100 invoices with lines is well under this.
const MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;

/// FreshBooks caps `per_page` at 100 (docs/vendors/freshbooks.md §3.2).
const PER_PAGE: u32 = 100;

/// A listing longer than this many pages is refused rather than followed forever.
const MAX_PAGES: u64 = 10_000;

/// An `http(s)` URL that paths can be appended to.
pub(crate) fn parse_base_url(base_url: &str) -> Result<Url, FreshbooksError> {
    http_base(base_url).ok_or_else(|| FreshbooksError::InvalidBaseUrl(base_url.to_string()))
}

/// The FreshBooks API for one credential set.
pub struct FreshbooksClient {
    base_url: Url,
    http: reqwest::Client,
    tokens: Arc<dyn AccessTokens>,
    credentials: String,
}

impl FreshbooksClient {
    /// A client for `base_url` ([`DEFAULT_BASE_URL`], or the sandbox's `http://127.0.0.1:port`)
    /// calling as credential set `credentials`, with tokens from `tokens`.
    pub fn new(
        base_url: &str,
        tokens: Arc<dyn AccessTokens>,
        credentials: &str,
    ) -> Result<Self, FreshbooksError> {
        Ok(Self {
            base_url: parse_base_url(base_url)?,
            http: shared_http_client(REQUEST_TIMEOUT).map_err(FreshbooksError::Transport)?,
            tokens,
            credentials: credentials.to_string(),
        })
    }

    /// `GET /auth/api/v1/users/me`: the user and the businesses (account ids) they belong to.
    pub async fn identity(&self) -> Result<Identity, FreshbooksError> {
        let url = self.url(&["auth", "api", "v1", "users", "me"], &[])?;
        let (status, v) = self.call(Method::GET, url, None).await?;
        let response = v
            .get("response")
            .ok_or_else(|| unexpected(status, "no `response` object"))?;
        let identity_id = ["identity_id", "id"]
            .iter()
            .find_map(|k| as_i64(response.get(*k)?))
            .ok_or_else(|| unexpected(status, "no identity id"))?;
        let businesses = response
            .get("business_memberships")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let b = m.get("business")?;
                Some(Business {
                    business_id: as_i64(b.get("id")?)?,
                    account_id: b.get("account_id")?.as_str()?.to_string(),
                    name: b
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                })
            })
            .collect();
        Ok(Identity {
            identity_id,
            email: response
                .get("email")
                .and_then(Value::as_str)
                .map(str::to_string),
            businesses,
        })
    }

    /// `POST /events/account/{account}/events/callbacks`. FreshBooks then posts the
    /// verification handshake to `uri`.
    pub async fn register_callback(
        &self,
        account: &str,
        event: &str,
        uri: &str,
    ) -> Result<Callback, FreshbooksError> {
        let url = self.url(&callbacks_path(plain("account_id", account)?, None), &[])?;
        let body = json!({ "callback": { "event": event, "uri": uri } });
        let (status, v) = self.call(Method::POST, url, Some(&body)).await?;
        single(status, &v, "callback")
    }

    /// Every callback registered on `account`, all pages.
    pub async fn list_callbacks(&self, account: &str) -> Result<Vec<Callback>, FreshbooksError> {
        let segments = callbacks_path(plain("account_id", account)?, None);
        self.list_all(&segments, "callbacks", &[]).await
    }

    /// Sends the handshake's `verifier` back; `true` when FreshBooks now reports the callback
    /// as verified.
    pub async fn verify_callback(
        &self,
        account: &str,
        id: &str,
        verifier: &SecretString,
    ) -> Result<bool, FreshbooksError> {
        let url = self.callback_url(account, id)?;
        let body = json!({ "callback": { "verifier": verifier.expose_secret() } });
        let (status, v) = self.call(Method::PUT, url, Some(&body)).await?;
        v.pointer("/response/result/callback/verified")
            .and_then(Value::as_bool)
            .ok_or_else(|| unexpected(status, "no boolean at response.result.callback.verified"))
    }

    /// Asks FreshBooks to post the verification handshake again.
    pub async fn resend_verification(
        &self,
        account: &str,
        id: &str,
    ) -> Result<(), FreshbooksError> {
        let url = self.callback_url(account, id)?;
        let body = json!({ "callback": { "resend": true } });
        self.call(Method::PUT, url, Some(&body)).await.map(|_| ())
    }

    /// Deletes a callback. Already gone (404) counts as done.
    pub async fn delete_callback(&self, account: &str, id: &str) -> Result<(), FreshbooksError> {
        let url = self.callback_url(account, id)?;
        match self.call(Method::DELETE, url, None).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn callback_url(&self, account: &str, id: &str) -> Result<Url, FreshbooksError> {
        let account = plain("account_id", account)?;
        let id = plain("callback_id", id)?;
        self.url(&callbacks_path(account, Some(id)), &[])
    }

    /// One record by id; `None` when FreshBooks says it does not exist.
    async fn get_one<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        key: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<T>, FreshbooksError> {
        let url = self.url(segments, query)?;
        match self.call(Method::GET, url, None).await {
            Ok((status, v)) => single(status, &v, key).map(Some),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every page of a listing (`per_page=100`, following `pages`).
    async fn list_all<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        key: &str,
        filters: &[(&str, &str)],
    ) -> Result<Vec<T>, FreshbooksError> {
        let mut out = Vec::new();
        let per_page = PER_PAGE.to_string();
        let mut page: u64 = 1;
        loop {
            let page_text = page.to_string();
            let mut query = vec![
                ("page", page_text.as_str()),
                ("per_page", per_page.as_str()),
            ];
            query.extend_from_slice(filters);
            let url = self.url(segments, &query)?;
            let (status, v) = self.call(Method::GET, url, None).await?;
            let result = v
                .pointer("/response/result")
                .ok_or_else(|| unexpected(status, "no `response.result`"))?;
            let items = result
                .get(key)
                .and_then(Value::as_array)
                .ok_or_else(|| unexpected(status, &format!("no `{key}` list")))?;
            for item in items {
                out.push(from_value(status, key, item.clone())?);
            }
            let pages = result.get("pages").and_then(as_i64).unwrap_or(1).max(1) as u64;
            if items.is_empty() || page >= pages {
                return Ok(out);
            }
            if page >= MAX_PAGES {
                return Err(unexpected(status, "more than 10000 pages"));
            }
            page += 1;
        }
    }

    /// One request with a token; on 401 one refresh and one retry.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<(u16, Value), FreshbooksError> {
        let (method, url) = (&method, &url);
        call_with_token(
            self.tokens.as_ref(),
            &self.credentials,
            FreshbooksError::is_unauthorized,
            |_| {
                tracing::info!(
                    credentials = %self.credentials,
                    path = url.path(),
                    "FreshBooks refused the access token; refreshing once"
                );
            },
            |token| async move { self.send(method, url, body, &token).await },
        )
        .await
    }

    async fn send(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&Value>,
        token: &SecretString,
    ) -> Result<(u16, Value), FreshbooksError> {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(FreshbooksError::Transport)?;
        let status = response.status().as_u16();
        let bytes = read_capped(response, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| FreshbooksError::reading(status, e))?;
        if !(200..300).contains(&status) {
            return Err(from_error_response(status, &bytes));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            // DELETE answers may be empty.
            return Ok((status, Value::Null));
        }
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            unexpected(
                status,
                &format!("not JSON ({} error)", json_error_category(&e)),
            )
        })?;
        // Older endpoints report errors with HTTP 200 (docs/vendors/freshbooks.md §3.1).
        if v.pointer("/response/result").is_none()
            && let Some((errno, message)) = error_in_body(&v)
        {
            return Err(FreshbooksError::Api {
                status,
                errno,
                message,
            });
        }
        Ok((status, v))
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, FreshbooksError> {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| FreshbooksError::InvalidBaseUrl(self.base_url.to_string()))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    async fn changed_pass(
        &self,
        account: &str,
        entity: Entity,
        since: &str,
        deleted_pass: bool,
    ) -> Result<Vec<Value>, FreshbooksError> {
        let (segments, key) = collection(account, entity);
        let mut filters = vec![("search[updated_min]", since)];
        if deleted_pass {
            filters.push(("search[vis_state]", "1"));
        }
        self.list_all(&segments, key, &filters).await
    }
}

#[async_trait]
impl FreshbooksApi for FreshbooksClient {
    async fn client(&self, account: &str, id: &str) -> Result<Option<Client>, FreshbooksError> {
        let account = plain("account_id", account)?;
        let id = plain("client id", id)?;
        let segments = ["accounting", "account", account, "users", "clients", id];
        self.get_one(&segments, "client", &[]).await
    }

    async fn invoice(&self, account: &str, id: &str) -> Result<Option<Invoice>, FreshbooksError> {
        let account = plain("account_id", account)?;
        let id = plain("invoice id", id)?;
        let segments = ["accounting", "account", account, "invoices", "invoices", id];
        self.get_one(&segments, "invoice", &[("include[]", "lines")])
            .await
    }

    async fn invoices_for_client(
        &self,
        account: &str,
        client_id: &str,
    ) -> Result<Vec<Invoice>, FreshbooksError> {
        let account = plain("account_id", account)?;
        let client_id = plain("client id", client_id)?;
        let (segments, key) = collection(account, Entity::Invoice);
        let invoices: Vec<Invoice> = self
            .list_all(
                &segments,
                key,
                &[("include[]", "lines"), ("search[customerid]", client_id)],
            )
            .await?;
        // Lists leave deleted records out by default; guard against a server that does not.
        Ok(invoices.into_iter().filter(|i| !i.is_deleted()).collect())
    }

    async fn payment(&self, account: &str, id: &str) -> Result<Option<Payment>, FreshbooksError> {
        let account = plain("account_id", account)?;
        let id = plain("payment id", id)?;
        let segments = ["accounting", "account", account, "payments", "payments", id];
        self.get_one(&segments, "payment", &[]).await
    }

    async fn bill_vendor(
        &self,
        account: &str,
        id: &str,
    ) -> Result<Option<BillVendor>, FreshbooksError> {
        let account = plain("account_id", account)?;
        let id = plain("bill vendor id", id)?;
        let segments = [
            "accounting",
            "account",
            account,
            "bill_vendors",
            "bill_vendors",
            id,
        ];
        let record: Option<Value> = self.get_one(&segments, "bill_vendor", &[]).await?;
        record
            .map(|v| from_value(200, "bill_vendor", one_id(v, "vendorid")))
            .transpose()
    }

    async fn changed_since(
        &self,
        account: &str,
        entity: Entity,
        since: NaiveDate,
    ) -> Result<Vec<Changed>, FreshbooksError> {
        let account = plain("account_id", account)?;
        let since = since.format("%Y-%m-%d").to_string();
        // Lists return active and archived records; deletions need a second pass.
        let live = self.changed_pass(account, entity, &since, false).await?;
        let deleted = self.changed_pass(account, entity, &since, true).await?;
        let mut out: Vec<Changed> = Vec::with_capacity(live.len() + deleted.len());
        let mut index: HashMap<String, usize> = HashMap::new();
        for (record, from_deleted_pass) in live
            .iter()
            .map(|r| (r, false))
            .chain(deleted.iter().map(|r| (r, true)))
        {
            let Some(id) = record_id(record, entity) else {
                return Err(unexpected(200, "a listed record has no id"));
            };
            let vis_state = record.get("vis_state").and_then(as_i64);
            let changed = Changed {
                entity,
                id: id.clone(),
                updated: record
                    .get("updated")
                    .and_then(Value::as_str)
                    .filter(|s| !s.trim().is_empty())
                    .map(str::to_string),
                deleted: vis_state == Some(VIS_DELETED)
                    || (from_deleted_pass && vis_state.is_none()),
            };
            match index.get(&id) {
                // Seen in both passes (deleted between them): the deletion wins.
                Some(&at) if changed.deleted => out[at] = changed,
                Some(_) => {}
                None => {
                    index.insert(id, out.len());
                    out.push(changed);
                }
            }
        }
        Ok(out)
    }
}

impl std::fmt::Debug for FreshbooksClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreshbooksClient")
            .field("base_url", &self.base_url.as_str())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// "Does not exist", in any of FreshBooks' shapes: HTTP 404; errno 1012 (accounting "… not
/// found", also seen with HTTP 200) or 404 (events API); or, tolerantly since the full errno
/// table is UNCONFIRMED, a message saying "not found".
fn is_not_found(e: &FreshbooksError) -> bool {
    match e {
        FreshbooksError::Api {
            status,
            errno,
            message,
        } => {
            *status == 404
                || matches!(errno, Some(1012 | 404))
                || message.to_ascii_lowercase().contains("not found")
        }
        _ => false,
    }
}

fn collection(account: &str, entity: Entity) -> ([&str; 5], &'static str) {
    match entity {
        Entity::Client => (
            ["accounting", "account", account, "users", "clients"],
            "clients",
        ),
        Entity::Invoice => (
            ["accounting", "account", account, "invoices", "invoices"],
            "invoices",
        ),
        Entity::Payment => (
            ["accounting", "account", account, "payments", "payments"],
            "payments",
        ),
        Entity::BillVendor => (
            [
                "accounting",
                "account",
                account,
                "bill_vendors",
                "bill_vendors",
            ],
            "bill_vendors",
        ),
    }
}

fn callbacks_path<'a>(account: &'a str, id: Option<&'a str>) -> Vec<&'a str> {
    let mut segments = vec!["events", "account", account, "events", "callbacks"];
    segments.extend(id);
    segments
}

/// The record's id: `id`, or the legacy name of the same field.
fn record_id(record: &Value, entity: Entity) -> Option<String> {
    let legacy = match entity {
        Entity::Client => "userid",
        Entity::Invoice => "invoiceid",
        Entity::Payment => "logid",
        Entity::BillVendor => "vendorid",
    };
    [record.get("id"), record.get(legacy)]
        .into_iter()
        .flatten()
        .find_map(|v| match v {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            _ => None,
        })
}

/// `record` with one id field: its `legacy` spelling dropped when `id` is there too. A model
/// that takes either spelling (serde `alias`, as [`BillVendor`] does while FreshBooks' field
/// names are UNCONFIRMED) refuses a record that carries both as a duplicate field — and
/// FreshBooks' records carry both where known (clients' `id` and `userid`).
fn one_id(mut record: Value, legacy: &str) -> Value {
    if let Some(fields) = record.as_object_mut()
        && fields.get("id").is_some_and(|id| !id.is_null())
    {
        fields.remove(legacy);
    }
    record
}

fn plain<'a>(what: &'static str, id: &'a str) -> Result<&'a str, FreshbooksError> {
    if is_plain_id(id) {
        Ok(id)
    } else {
        Err(FreshbooksError::InvalidId { what })
    }
}

fn single<T: DeserializeOwned>(status: u16, v: &Value, key: &str) -> Result<T, FreshbooksError> {
    let record = v
        .pointer("/response/result")
        .and_then(|r| r.get(key))
        .ok_or_else(|| unexpected(status, &format!("no `response.result.{key}`")))?;
    from_value(status, key, record.clone())
}

fn from_value<T: DeserializeOwned>(status: u16, key: &str, v: Value) -> Result<T, FreshbooksError> {
    crate::vendors::from_value(v, key).map_err(|reason| unexpected(status, &reason))
}

fn unexpected(status: u16, reason: &str) -> FreshbooksError {
    FreshbooksError::UnexpectedBody {
        status,
        reason: reason.to_string(),
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bill_vendor_reads_with_either_id_spelling_or_both() {
        for record in [
            json!({"id": 7, "vendorid": 7, "vendor_name": "Mill"}),
            json!({"vendorid": 7, "vendor_name": "Mill"}),
            json!({"id": "7", "vendor_name": "Mill"}),
        ] {
            let v: BillVendor = from_value(200, "bill_vendor", one_id(record.clone(), "vendorid"))
                .unwrap_or_else(|e| panic!("{record}: {e}"));
            assert_eq!(
                (v.id.as_str(), v.vendor_name.as_deref()),
                ("7", Some("Mill"))
            );
        }
    }

    #[test]
    fn not_found_in_every_shape() {
        let api = |status, errno, message: &str| FreshbooksError::Api {
            status,
            errno,
            message: message.into(),
        };
        assert!(is_not_found(&api(404, None, "")));
        assert!(is_not_found(&api(200, Some(1012), "Client not found.")));
        assert!(is_not_found(&api(200, None, "Invoice not found")));
        assert!(!is_not_found(&api(200, Some(7012), "Invalid email")));
        assert!(!is_not_found(&api(500, None, "")));
    }

    #[test]
    fn ids_from_either_field() {
        assert_eq!(
            record_id(&json!({"id": 12}), Entity::Client).as_deref(),
            Some("12")
        );
        assert_eq!(
            record_id(&json!({"logid": "7"}), Entity::Payment).as_deref(),
            Some("7")
        );
        assert_eq!(record_id(&json!({"id": null}), Entity::Invoice), None);
    }

    #[test]
    fn model_errors_do_not_quote_values() {
        let err = from_value::<Client>(200, "client", json!({"id": 1, "email": 5})).unwrap_err();
        assert!(err.to_string().contains("client"), "{err}");
        let err = from_value::<Invoice>(
            200,
            "invoice",
            json!({"id": 1, "customerid": 2, "amount": {"amount": "x@y.com"}}),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("x@y.com"), "{err}");
    }

    #[tokio::test]
    async fn ids_are_checked_before_any_request() {
        let client = FreshbooksClient::new(
            "http://127.0.0.1:9",
            Arc::new(crate::tokens::StaticToken("t".into())),
            "fb",
        )
        .unwrap();
        assert!(matches!(
            client.client("6BApk", "1/../2").await,
            Err(FreshbooksError::InvalidId { .. })
        ));
        assert!(matches!(
            client.invoice("a b", "1").await,
            Err(FreshbooksError::InvalidId { .. })
        ));
    }
}
