//! Intuit's OAuth2 token endpoint for QuickBooks Online (quickbooks.md §2): exchanging an
//! authorization code (the `connect` command) and refreshing a token pair for the
//! [`TokenManager`](crate::tokens::TokenManager) ([`Refresher`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::client::DEFAULT_TIMEOUT;
use super::credentials::QuickbooksCredentials;
use crate::tokens::{RefreshError, Refresher, TokenSet};
use crate::vendors::http::{ReadError, read_capped, shared_http_client};

/// Intuit's token endpoint, the same host for sandbox and production companies.
pub const TOKEN_URL: &str = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer";

/// Largest token-endpoint answer read.
const MAX_BODY: usize = 64 * 1024;

/// Calls `POST {token_url}` with HTTP Basic client authentication.
#[derive(Clone)]
pub struct QuickbooksOauth {
    token_url: Url,
    /// Set by [`Self::with_http`]; else the process-wide client, taken on first use so creating
    /// this at Lambda init costs no TLS set-up.
    http: Option<reqwest::Client>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    refresh_token: SecretString,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    x_refresh_token_expires_in: Option<i64>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl QuickbooksOauth {
    /// The token endpoint at `token_url` ([`TOKEN_URL`], or a test double's).
    pub fn new(token_url: &str) -> Result<Self, RefreshError> {
        let token_url = Url::parse(token_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                RefreshError::Misconfigured(format!(
                    "QuickBooks token URL `{token_url}` is not an http(s) address"
                ))
            })?;
        Ok(Self {
            token_url,
            http: None,
        })
    }

    /// Uses `http` instead of the process-wide client.
    pub fn with_http(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The token endpoint under `api_base` (`{base}/oauth2/v1/tokens/bearer`): how a
    /// `QUICKBOOKS_API_BASE` override (the sandbox) serves both the API and the tokens.
    pub fn for_api_base(api_base: &str) -> Result<Self, RefreshError> {
        let url = format!("{}/oauth2/v1/tokens/bearer", api_base.trim_end_matches('/'));
        Self::new(&url)
    }

    /// The token endpoint's URL.
    pub fn token_url(&self) -> &str {
        self.token_url.as_str()
    }

    /// The refresh-token grant (`grant_type=refresh_token`). Intuit may answer with a new
    /// refresh token (rotation): the caller must store whatever comes back before using it.
    pub async fn refresh_credentials(
        &self,
        credentials: &QuickbooksCredentials,
        now: DateTime<Utc>,
    ) -> Result<TokenSet, RefreshError> {
        let (Some(client_id), Some(client_secret)) =
            (&credentials.client_id, &credentials.client_secret)
        else {
            return Err(RefreshError::Misconfigured(
                "the credential set has no client_id/client_secret to refresh with".into(),
            ));
        };
        self.token_call(
            client_id,
            client_secret,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", credentials.refresh_token.expose_secret()),
            ],
            now,
        )
        .await
    }

    /// The authorization-code grant: the first token pair after the user approved the app.
    /// `redirect_uri` must be exactly the one the authorize request carried.
    pub async fn exchange_code(
        &self,
        client_id: &str,
        client_secret: &SecretString,
        redirect_uri: &str,
        code: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<TokenSet, RefreshError> {
        self.token_call(
            client_id,
            client_secret,
            &[
                ("grant_type", "authorization_code"),
                ("code", code.expose_secret()),
                ("redirect_uri", redirect_uri),
            ],
            now,
        )
        .await
    }

    async fn token_call(
        &self,
        client_id: &str,
        client_secret: &SecretString,
        form: &[(&str, &str)],
        now: DateTime<Utc>,
    ) -> Result<TokenSet, RefreshError> {
        let http = match &self.http {
            Some(http) => http.clone(),
            None => shared_http_client(DEFAULT_TIMEOUT).map_err(|e| {
                RefreshError::Misconfigured(format!(
                    "HTTP client: QuickBooks request failed: building the HTTP client: {e}"
                ))
            })?,
        };
        let response = http
            .post(self.token_url.clone())
            .basic_auth(client_id, Some(client_secret.expose_secret()))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| RefreshError::Transient(format!("token endpoint unreachable: {e}")))?;
        let status = response.status().as_u16();
        let body = read_capped(response, MAX_BODY).await.map_err(|e| match e {
            ReadError::Transport(e) => {
                RefreshError::Transient(format!("reading the token answer: {e}"))
            }
            ReadError::TooLarge(max) => RefreshError::Misconfigured(format!(
                "token endpoint answered HTTP {status} with more than {max} bytes"
            )),
        })?;
        if (200..300).contains(&status) {
            return parse_tokens(status, &body, now);
        }
        Err(classify_refusal(status, error_message(status, &body)))
    }
}

/// The token pair in a 2xx answer; serde's message is not quoted (it could echo a token).
fn parse_tokens(status: u16, body: &[u8], now: DateTime<Utc>) -> Result<TokenSet, RefreshError> {
    let parsed: TokenResponse = serde_json::from_slice(body).map_err(|e| {
        RefreshError::Misconfigured(format!(
            "token endpoint answered HTTP {status} without a token pair ({:?} error)",
            e.classify()
        ))
    })?;
    let after = |secs: Option<i64>| secs.map(|s| now + chrono::Duration::seconds(s));
    Ok(TokenSet {
        access_token: parsed.access_token,
        refresh_token: parsed.refresh_token,
        expires_at: after(parsed.expires_in),
        // QuickBooks' refresh token expires too unless used (rolling ~100 days).
        refresh_expires_at: after(parsed.x_refresh_token_expires_in),
    })
}

/// `error: error_description` from Intuit's error body (it carries no token, so it may be
/// quoted), else the HTTP status alone.
fn error_message(status: u16, body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(e) => match e.error_description.filter(|d| !d.is_empty()) {
            Some(d) => format!("{} ({d}), HTTP {status}", e.error),
            None => format!("{}, HTTP {status}", e.error),
        },
        Err(_) => format!("HTTP {status}"),
    }
}

/// `invalid_grant` comes as 400 and a wrong client as 401; neither improves by retrying.
fn classify_refusal(status: u16, message: String) -> RefreshError {
    match status {
        400 | 401 | 403 => RefreshError::Refused(message),
        408 | 429 | 500..=599 => RefreshError::Transient(message),
        _ => RefreshError::Misconfigured(message),
    }
}

#[async_trait]
impl Refresher for QuickbooksOauth {
    fn vendor(&self) -> &'static str {
        "QuickBooks"
    }

    async fn refresh(
        &self,
        credentials: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<TokenSet, RefreshError> {
        let credentials = QuickbooksCredentials::from_secret(credentials)
            .map_err(|e| RefreshError::Misconfigured(e.to_string()))?;
        self.refresh_credentials(&credentials, now).await
    }
}

impl std::fmt::Debug for QuickbooksOauth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuickbooksOauth")
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_expiries_are_dated_from_now() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let body = br#"{"token_type":"bearer","access_token":"a","refresh_token":"r",
            "expires_in":3600,"x_refresh_token_expires_in":8726400}"#;
        let t = parse_tokens(200, body, now).unwrap();
        assert_eq!(t.expires_at, Some(now + chrono::Duration::hours(1)));
        assert_eq!(
            t.refresh_expires_at,
            Some(now + chrono::Duration::seconds(8_726_400))
        );
        assert_eq!(t.refresh_token.expose_secret(), "r");
        assert!(parse_tokens(200, b"{}", now).is_err());
    }

    #[test]
    fn invalid_grant_is_a_refusal_naming_the_error() {
        let body = br#"{"error":"invalid_grant","error_description":"Token invalid"}"#;
        match classify_refusal(400, error_message(400, body)) {
            RefreshError::Refused(m) => {
                assert!(m.contains("invalid_grant") && m.contains("Token invalid"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify_refusal(503, error_message(503, b"<html>")),
            RefreshError::Transient(m) if m == "HTTP 503"
        ));
    }

    #[tokio::test]
    async fn refreshing_needs_the_client_credentials() {
        let oauth = QuickbooksOauth::for_api_base("http://127.0.0.1:9/").unwrap();
        assert_eq!(
            oauth.token_url(),
            "http://127.0.0.1:9/oauth2/v1/tokens/bearer"
        );
        assert_eq!(oauth.vendor(), "QuickBooks");
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let no_client =
            SecretString::from(r#"{"access_token":"a","refresh_token":"r-SECRET","realm_id":"1"}"#);
        assert!(matches!(
            oauth.refresh(&no_client, now).await,
            Err(RefreshError::Misconfigured(m)) if m.contains("client_id")
        ));
        let not_a_set = SecretString::from(r#"{"access_token":"a-SECRET"}"#);
        assert!(matches!(
            oauth.refresh(&not_a_set, now).await,
            Err(RefreshError::Misconfigured(m)) if !m.contains("SECRET")
        ));
        // Nothing listens on port 9: an unreachable endpoint is worth retrying.
        let set = SecretString::from(
            r#"{"access_token":"a","refresh_token":"r","realm_id":"1","client_id":"c","client_secret":"s"}"#,
        );
        assert!(matches!(
            oauth.refresh(&set, now).await,
            Err(RefreshError::Transient(_))
        ));
    }

    #[test]
    fn the_token_url_must_be_http() {
        assert!(QuickbooksOauth::new(TOKEN_URL).is_ok());
        assert!(QuickbooksOauth::new("mailto:x@y").is_err());
        assert!(QuickbooksOauth::new("not a url").is_err());
    }
}
