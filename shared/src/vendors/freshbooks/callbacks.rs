//! FreshBooks callbacks (docs/vendors/freshbooks.md §1.1–1.2): confirming a registration handshake, as the
//! webhook handler needs it. Registering them against our store's records is
//! [`super::callback_registration`].

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::error::{self, FreshbooksError};
use crate::vendors::http::read_capped;
use crate::vendors::is_plain_id;

/// FreshBooks' production API.
pub const DEFAULT_BASE_URL: &str = "https://api.freshbooks.com";

/// Whole-request timeout: the handshake is confirmed inside a webhook request, which must
/// answer quickly.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest response body read; a callback object is a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;

/// Confirms a FreshBooks callback registration. A trait so the webhook handler can be tested
/// with a fake.
#[async_trait]
pub trait CallbackVerifier: Send + Sync {
    /// Sends the handshake's `verifier` back to FreshBooks; `Ok(true)` when FreshBooks now
    /// reports the callback as verified.
    async fn verify(
        &self,
        access_token: &SecretString,
        account_id: &str,
        callback_id: &str,
        verifier: &SecretString,
    ) -> Result<bool, FreshbooksError>;
}

/// Client for `…/events/account/{account_id}/events/callbacks/{callback_id}`. Construction costs
/// nothing: the HTTP client (and its TLS roots) is built on first use, so creating this at
/// Lambda init does not slow cold starts for deliveries that never need it.
pub(crate) struct CallbacksClient {
    base_url: Url,
    timeout: Duration,
    http: OnceLock<reqwest::Client>,
}

impl CallbacksClient {
    /// A client for FreshBooks' production API.
    fn new() -> Self {
        Self {
            // A constant, valid URL.
            base_url: Url::parse(DEFAULT_BASE_URL).expect("DEFAULT_BASE_URL is a valid URL"),
            timeout: DEFAULT_TIMEOUT,
            http: OnceLock::new(),
        }
    }

    /// A client for another base URL (the sandbox), e.g. `http://127.0.0.1:8081`.
    pub(crate) fn with_base_url(base_url: &str) -> Result<Self, FreshbooksError> {
        Ok(Self {
            base_url: super::client::parse_base_url(base_url)?,
            ..Self::new()
        })
    }

    /// Replaces the whole-request timeout ([`DEFAULT_TIMEOUT`]).
    #[cfg(test)]
    fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.http = OnceLock::new();
        self
    }

    /// `PUT /events/account/{account_id}/events/callbacks/{callback_id}` with
    /// `{"callback":{"verifier":"…"}}`; returns `response.result.callback.verified`.
    async fn verify(
        &self,
        access_token: &SecretString,
        account_id: &str,
        callback_id: &str,
        verifier: &SecretString,
    ) -> Result<bool, FreshbooksError> {
        let url = self.callback_url(account_id, callback_id)?;
        let body = serde_json::json!({ "callback": { "verifier": verifier.expose_secret() } });
        let response = self
            .http()?
            .put(url)
            .bearer_auth(access_token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body)
            .send()
            .await
            .map_err(FreshbooksError::Transport)?;
        let status = response.status().as_u16();
        let body = read_capped(response, MAX_BODY)
            .await
            .map_err(|e| FreshbooksError::reading(status, e))?;
        if !(200..300).contains(&status) {
            return Err(error::from_error_response(status, &body));
        }
        let unexpected = |reason: String| FreshbooksError::UnexpectedBody { status, reason };
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| unexpected(format!("not JSON: {e}")))?;
        if let Some(verified) = value
            .pointer("/response/result/callback/verified")
            .and_then(serde_json::Value::as_bool)
        {
            return Ok(verified);
        }
        // Older endpoints report errors with a 2xx status.
        if let Some((errno, message)) = error::error_in_body(&value) {
            return Err(FreshbooksError::Api {
                status,
                errno,
                message,
            });
        }
        Err(unexpected(
            "no boolean at response.result.callback.verified".to_string(),
        ))
    }

    fn callback_url(&self, account_id: &str, callback_id: &str) -> Result<Url, FreshbooksError> {
        if !is_plain_id(account_id) {
            return Err(FreshbooksError::InvalidId { what: "account_id" });
        }
        if !is_plain_id(callback_id) {
            return Err(FreshbooksError::InvalidId {
                what: "callback_id",
            });
        }
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| FreshbooksError::InvalidBaseUrl(self.base_url.to_string()))?
            .pop_if_empty()
            .extend([
                "events",
                "account",
                account_id,
                "events",
                "callbacks",
                callback_id,
            ]);
        Ok(url)
    }

    fn http(&self) -> Result<&reqwest::Client, FreshbooksError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(3)))
            .user_agent(concat!("ml-connector/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(FreshbooksError::Transport)?;
        // Two racing first calls may both build; one client wins and the other is dropped.
        Ok(self.http.get_or_init(|| client))
    }
}

impl Default for CallbacksClient {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for CallbacksClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbacksClient")
            .field("base_url", &self.base_url.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl CallbackVerifier for CallbacksClient {
    async fn verify(
        &self,
        access_token: &SecretString,
        account_id: &str,
        callback_id: &str,
        verifier: &SecretString,
    ) -> Result<bool, FreshbooksError> {
        CallbacksClient::verify(self, access_token, account_id, callback_id, verifier).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::Router;
    use axum::extract::Path;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::put;

    const TOKEN: &str = "access-token-1";

    /// A stand-in for FreshBooks: callback `1` verifies, `2` does not (wrong code), `3` answers
    /// 200 with an accounting-style error, `4` answers 200 with junk, `5` is slow; anything else
    /// is 404. A wrong token is a 401.
    async fn fake_freshbooks(
        Path((account, callback)): Path<(String, String)>,
        headers: HeaderMap,
        body: String,
    ) -> (StatusCode, String) {
        let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
            == Some("Bearer access-token-1");
        if !authorized {
            return (
                StatusCode::UNAUTHORIZED,
                r#"{"errno":401,"message":"invalid_token: The request token failed to authenticate or validate."}"#.into(),
            );
        }
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&body) else {
            return (StatusCode::BAD_REQUEST, "not json".into());
        };
        let verifier = json.pointer("/callback/verifier").and_then(|v| v.as_str());
        let ok = |verified: bool| {
            serde_json::json!({"response": {"result": {"callback": {
                "callbackid": callback.parse::<i64>().unwrap_or(0), "event": "invoice",
                "uri": "https://hooks.example.com/fb", "verified": verified,
                "updated_at": "2026-03-02T17:04:11Z"}}}})
            .to_string()
        };
        match (account.as_str(), callback.as_str()) {
            ("6BApk", "1") if verifier == Some("right-code") => (StatusCode::OK, ok(true)),
            ("6BApk", "2") => (StatusCode::OK, ok(false)),
            ("6BApk", "3") => (
                StatusCode::OK,
                r#"{"response":{"errors":[{"errno":1012,"message":"Not allowed."}]}}"#.into(),
            ),
            ("6BApk", "4") => (StatusCode::OK, "<html>hello</html>".into()),
            ("6BApk", "5") => {
                tokio::time::sleep(Duration::from_secs(2)).await;
                (StatusCode::OK, ok(true))
            }
            _ => (
                StatusCode::NOT_FOUND,
                r#"{"errno":404,"message":"Requested resource could not be found."}"#.into(),
            ),
        }
    }

    async fn serve() -> String {
        let app = Router::new().route(
            "/events/account/{account}/events/callbacks/{callback}",
            put(fake_freshbooks),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    async fn call(
        client: &dyn CallbackVerifier,
        token: &str,
        callback: &str,
    ) -> Result<bool, FreshbooksError> {
        client
            .verify(
                &SecretString::from(token),
                "6BApk",
                callback,
                &SecretString::from("right-code"),
            )
            .await
    }

    #[tokio::test]
    async fn confirms_handshakes_and_types_failures() {
        let base = serve().await;
        let client = CallbacksClient::with_base_url(&base).unwrap();

        assert!(call(&client, TOKEN, "1").await.unwrap());
        assert!(!call(&client, TOKEN, "2").await.unwrap());

        match call(&client, TOKEN, "404").await {
            Err(FreshbooksError::Api {
                status: 404,
                errno: Some(404),
                message,
            }) => assert_eq!(message, "Requested resource could not be found."),
            other => panic!("{other:?}"),
        }

        let unauthorized = call(&client, "stale-token", "1").await.unwrap_err();
        assert!(unauthorized.is_unauthorized(), "{unauthorized:?}");
        assert!(!unauthorized.is_transient());

        assert!(matches!(
            call(&client, TOKEN, "3").await,
            Err(FreshbooksError::Api {
                status: 200,
                errno: Some(1012),
                ..
            })
        ));
        assert!(matches!(
            call(&client, TOKEN, "4").await,
            Err(FreshbooksError::UnexpectedBody { status: 200, .. })
        ));
    }

    #[tokio::test]
    async fn times_out_and_reports_transport_errors() {
        let base = serve().await;
        let client = CallbacksClient::with_base_url(&base)
            .unwrap()
            .with_timeout(Duration::from_millis(200));
        let err = call(&client, TOKEN, "5").await.unwrap_err();
        assert!(
            matches!(&err, FreshbooksError::Transport(e) if e.is_timeout()),
            "{err:?}"
        );
        assert!(err.is_transient());

        // Nothing listens on the port of a listener we just dropped.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let client = CallbacksClient::with_base_url(&format!("http://{closed}")).unwrap();
        assert!(matches!(
            call(&client, TOKEN, "1").await,
            Err(FreshbooksError::Transport(_))
        ));
    }

    #[tokio::test]
    async fn refuses_ids_that_would_change_the_path() {
        let client = CallbacksClient::new();
        for (account, callback, what) in [
            ("6BApk", "1/../2", "callback_id"),
            ("../x", "1", "account_id"),
            ("", "1", "account_id"),
        ] {
            let err = client
                .verify(
                    &SecretString::from(TOKEN),
                    account,
                    callback,
                    &SecretString::from("v"),
                )
                .await
                .unwrap_err();
            assert!(
                matches!(err, FreshbooksError::InvalidId { what: w } if w == what),
                "{err:?}"
            );
        }
        // No HTTP client was built for refused calls.
        assert!(client.http.get().is_none());
    }

    #[test]
    fn builds_urls_and_validates_base_urls() {
        let client = CallbacksClient::new();
        assert_eq!(
            client.callback_url("6BApk", "2001").unwrap().as_str(),
            "https://api.freshbooks.com/events/account/6BApk/events/callbacks/2001"
        );
        let sandbox = CallbacksClient::with_base_url("http://127.0.0.1:9/fb/").unwrap();
        assert_eq!(
            sandbox.callback_url("a", "1").unwrap().as_str(),
            "http://127.0.0.1:9/fb/events/account/a/events/callbacks/1"
        );
        for bad in ["not a url", "mailto:x@example.com", "ftp://example.com"] {
            assert!(matches!(
                CallbacksClient::with_base_url(bad),
                Err(FreshbooksError::InvalidBaseUrl(_))
            ));
        }
        // Lazy: nothing built yet.
        assert!(client.http.get().is_none());
    }
}
