//! FreshBooks' OAuth2 token endpoint (docs/vendors/freshbooks.md §2): refreshing a token pair for the
//! [`TokenManager`](crate::tokens::TokenManager), and exchanging an authorization code (the
//! `connect` command).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::FreshbooksError;
use super::client::parse_base_url;
use super::credentials::Credentials;
use crate::tokens::{RefreshError, Refresher, TokenSet};
use crate::vendors::oauth2::{ClientAuth, TokenEndpoint};

/// Calls `POST {base}/auth/oauth/token`.
#[derive(Clone)]
pub struct FreshbooksOauth {
    endpoint: TokenEndpoint,
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
            endpoint: TokenEndpoint::new(token_url, describe_error),
        })
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
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("client_secret", client_secret.expose_secret()),
            ("code", code.expose_secret()),
            ("redirect_uri", redirect_uri),
        ];
        self.endpoint.call(ClientAuth::InForm, &form, now).await
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
        self.endpoint.call(ClientAuth::InForm, &form, now).await
    }
}

/// Any of FreshBooks' error shapes (usually `{"error": "...", "error_description": "..."}`
/// here).
fn describe_error(status: u16, body: &[u8]) -> String {
    super::error::from_error_response(status, body).to_string()
}

#[async_trait]
impl Refresher for FreshbooksOauth {
    fn vendor(&self) -> &'static str {
        super::spec::SPEC.display
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
            .field("token_url", &self.endpoint.url().as_str())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_url_is_under_the_base() {
        let o = FreshbooksOauth::new("http://127.0.0.1:9/").unwrap();
        assert_eq!(
            o.endpoint.url().as_str(),
            "http://127.0.0.1:9/auth/oauth/token"
        );
        assert!(FreshbooksOauth::new("mailto:x@y").is_err());
    }
}
