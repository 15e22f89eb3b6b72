//! FreshBooks' OAuth2 token endpoint (freshbooks.md §2): refreshing a token pair for the
//! [`TokenManager`](crate::tokens::TokenManager), and exchanging an authorization code (the
//! `connect` command).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::FreshbooksError;
use super::client::{REQUEST_TIMEOUT, parse_base_url};
use super::credentials::Credentials;
use crate::tokens::{RefreshError, Refresher, TokenSet};
use crate::vendors::http::{read_capped, shared_http_client};

/// Largest token-endpoint answer read.
const MAX_BODY: usize = 64 * 1024;

/// Calls `POST {base}/auth/oauth/token`.
#[derive(Clone)]
pub struct FreshbooksOauth {
    token_url: Url,
    /// Set by [`Self::with_http`]; else the process-wide client, built on first use so
    /// creating this at Lambda init costs no TLS set-up.
    http: Option<reqwest::Client>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    refresh_token: SecretString,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    created_at: Option<i64>,
}

impl FreshbooksOauth {
    /// The token endpoint under `base_url` (`https://api.freshbooks.com`, or the sandbox's).
    pub fn new(base_url: &str) -> Result<Self, FreshbooksError> {
        let mut token_url = parse_base_url(base_url)?;
        token_url
            .path_segments_mut()
            .map_err(|()| FreshbooksError::InvalidBaseUrl(base_url.to_string()))?
            .pop_if_empty()
            .extend(["auth", "oauth", "token"]);
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

    /// The authorization-code grant: the first token pair after the user approved the app.
    pub async fn exchange_code(
        &self,
        client_id: &str,
        client_secret: &SecretString,
        redirect_uri: &str,
        code: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<TokenSet, RefreshError> {
        self.token_call(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("client_secret", client_secret.expose_secret()),
                ("code", code.expose_secret()),
                ("redirect_uri", redirect_uri),
            ],
            now,
        )
        .await
    }

    /// The refresh-token grant. FreshBooks' SDK always sends `redirect_uri`, so it is sent when
    /// the credential set has one.
    pub async fn refresh_credentials(
        &self,
        credentials: &Credentials,
        now: DateTime<Utc>,
    ) -> Result<TokenSet, RefreshError> {
        let (Some(client_id), Some(client_secret)) =
            (&credentials.client_id, &credentials.client_secret)
        else {
            return Err(RefreshError::Misconfigured(
                "the credential set has no client_id/client_secret to refresh with".into(),
            ));
        };
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", credentials.refresh_token.expose_secret()),
            ("client_id", client_id.as_str()),
            ("client_secret", client_secret.expose_secret()),
        ];
        if let Some(uri) = &credentials.redirect_uri {
            form.push(("redirect_uri", uri.as_str()));
        }
        self.token_call(&form, now).await
    }

    async fn token_call(
        &self,
        form: &[(&str, &str)],
        now: DateTime<Utc>,
    ) -> Result<TokenSet, RefreshError> {
        let http = match &self.http {
            Some(http) => http.clone(),
            None => shared_http_client(REQUEST_TIMEOUT).map_err(|e| {
                RefreshError::Misconfigured(FreshbooksError::Transport(e).to_string())
            })?,
        };
        let response = http
            .post(self.token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| RefreshError::Transient(format!("token endpoint unreachable: {e}")))?;
        let status = response.status().as_u16();
        let body = read_capped(response, MAX_BODY).await.map_err(|e| {
            RefreshError::Transient(FreshbooksError::reading(status, e).to_string())
        })?;
        if (200..300).contains(&status) {
            let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
                RefreshError::Misconfigured(format!(
                    "token endpoint answered HTTP {status} without a token pair ({:?} error)",
                    e.classify()
                ))
            })?;
            let issued = parsed
                .created_at
                .and_then(|s| DateTime::from_timestamp(s, 0))
                .unwrap_or(now);
            let expires_at = parsed
                .expires_in
                .map(|secs| issued + chrono::Duration::seconds(secs));
            return Ok(TokenSet {
                access_token: parsed.access_token,
                refresh_token: parsed.refresh_token,
                expires_at,
                refresh_expires_at: None,
            });
        }
        // The body of an error is `{"error": "...", "error_description": "..."}` and carries no
        // token, so it may be quoted.
        let message = super::error::from_error_response(status, &body).to_string();
        Err(classify_refusal(status, message))
    }
}

/// Which failures of the token endpoint are a refusal of the grant. The exact error code for a
/// reused or revoked refresh token is UNCONFIRMED (`invalid_grant` per OAuth2), so any 400/401/
/// 403 counts: none of them gets better by retrying the same refresh token.
fn classify_refusal(status: u16, message: String) -> RefreshError {
    match status {
        400 | 401 | 403 => RefreshError::Refused(message),
        429 | 500..=599 | 408 => RefreshError::Transient(message),
        _ => RefreshError::Misconfigured(message),
    }
}

#[async_trait]
impl Refresher for FreshbooksOauth {
    fn vendor(&self) -> &'static str {
        "FreshBooks"
    }

    async fn refresh(
        &self,
        credentials: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<TokenSet, RefreshError> {
        let credentials = Credentials::from_json(credentials.expose_secret())
            .map_err(|e| RefreshError::Misconfigured(e.to_string()))?;
        self.refresh_credentials(&credentials, now).await
    }
}

impl std::fmt::Debug for FreshbooksOauth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreshbooksOauth")
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_permanent_and_outages_transient() {
        assert!(matches!(
            classify_refusal(400, "invalid_grant".into()),
            RefreshError::Refused(_)
        ));
        assert!(matches!(
            classify_refusal(401, String::new()),
            RefreshError::Refused(_)
        ));
        assert!(matches!(
            classify_refusal(503, String::new()),
            RefreshError::Transient(_)
        ));
        assert!(matches!(
            classify_refusal(404, String::new()),
            RefreshError::Misconfigured(_)
        ));
    }

    #[test]
    fn the_token_url_is_under_the_base() {
        let o = FreshbooksOauth::new("http://127.0.0.1:9/").unwrap();
        assert_eq!(o.token_url.as_str(), "http://127.0.0.1:9/auth/oauth/token");
        assert!(FreshbooksOauth::new("mailto:x@y").is_err());
    }
}
