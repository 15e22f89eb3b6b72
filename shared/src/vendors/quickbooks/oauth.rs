//! Intuit's OAuth2 token endpoint for QuickBooks Online (docs/vendors/quickbooks.md §2): exchanging an
//! authorization code (the `connect` command) and refreshing a token pair for the
//! [`TokenManager`](crate::tokens::TokenManager) ([`Refresher`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::credentials::QuickbooksCredentials;
use crate::tokens::{RefreshError, Refresher, TokenSet};
use crate::vendors::oauth2::{ClientAuth, TokenEndpoint, token_url};

/// Intuit's token endpoint, the same host for sandbox and production companies.
pub const TOKEN_URL: &str = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer";

/// Calls `POST {token_url}` with HTTP Basic client authentication.
#[derive(Clone)]
pub struct QuickbooksOauth {
    endpoint: TokenEndpoint,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl QuickbooksOauth {
    /// The token endpoint at `token_url` ([`TOKEN_URL`], or a test double's).
    pub fn new(url: &str) -> Result<Self, RefreshError> {
        Ok(Self {
            endpoint: TokenEndpoint::new(token_url(url, "QuickBooks")?, error_message),
        })
    }

    /// The token endpoint under `api_base` (`{base}/oauth2/v1/tokens/bearer`): how a
    /// `QUICKBOOKS_API_BASE` override (the sandbox) serves both the API and the tokens.
    pub fn for_api_base(api_base: &str) -> Result<Self, RefreshError> {
        let url = format!("{}/oauth2/v1/tokens/bearer", api_base.trim_end_matches('/'));
        Self::new(&url)
    }

    /// The token endpoint's URL.
    pub(crate) fn token_url(&self) -> &str {
        self.endpoint.url().as_str()
    }

    /// The refresh-token grant (`grant_type=refresh_token`). Intuit may answer with a new
    /// refresh token (rotation): the caller must store whatever comes back before using it.
    async fn refresh_credentials(
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
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", credentials.refresh_token.expose_secret()),
        ];
        let auth = ClientAuth::Basic(client_id, client_secret);
        self.endpoint.call(auth, &form, now).await
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
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.expose_secret()),
            ("redirect_uri", redirect_uri),
        ];
        let auth = ClientAuth::Basic(client_id, client_secret);
        self.endpoint.call(auth, &form, now).await
    }
}

/// `error: error_description` from Intuit's error body, else the HTTP status alone.
fn error_message(status: u16, body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(e) => match e.error_description.filter(|d| !d.is_empty()) {
            Some(d) => format!("{} ({d}), HTTP {status}", e.error),
            None => format!("{}, HTTP {status}", e.error),
        },
        Err(_) => format!("HTTP {status}"),
    }
}

#[async_trait]
impl Refresher for QuickbooksOauth {
    fn vendor(&self) -> &'static str {
        super::spec::SPEC.display
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
            .field("token_url", &self.token_url())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_grant_names_the_error() {
        let body = br#"{"error":"invalid_grant","error_description":"Token invalid"}"#;
        assert_eq!(
            error_message(400, body),
            "invalid_grant (Token invalid), HTTP 400"
        );
        assert_eq!(error_message(503, b"<html>"), "HTTP 503");
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
