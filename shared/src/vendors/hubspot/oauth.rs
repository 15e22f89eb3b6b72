//! HubSpot's OAuth token endpoint (`POST /oauth/v1/token`, docs/vendors/hubspot.md §1):
//! refreshing an OAuth set's 30-minute access token for the
//! [`TokenManager`](crate::tokens::TokenManager) ([`Refresher`]), and exchanging an
//! authorization code (the `connect` command). Client credentials travel in the form.
//!
//! A refused refresh (400 `BAD_REFRESH_TOKEN`: the app was uninstalled or the token revoked)
//! is [`RefreshError::Refused`]: the manager marks the set `needs_reconnect`, and the client's
//! calls fail with `TokenError::Broken` (`Reconnect::Refused`) until `connect` rewrites it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::credentials::HubspotCredentials;
use super::error::ErrorBody;
use crate::tokens::{RefreshError, Refresher, TokenSet};
use crate::vendors::oauth2::{ClientAuth, TokenEndpoint, token_url};

/// HubSpot's token endpoint.
pub const TOKEN_URL: &str = "https://api.hubapi.com/oauth/v1/token";

/// Calls `POST {base}/oauth/v1/token`.
#[derive(Clone)]
pub struct HubspotOauth {
    endpoint: TokenEndpoint,
}

impl HubspotOauth {
    /// The token endpoint at `url` ([`TOKEN_URL`], or a test double's).
    pub fn new(url: &str) -> Result<Self, RefreshError> {
        Ok(Self {
            endpoint: TokenEndpoint::new(token_url(url, "HubSpot")?, error_message),
        })
    }

    /// The token endpoint under `api_base` (`{base}/oauth/v1/token`): HubSpot serves tokens
    /// from the API host, so a `HUBSPOT_API_BASE` override (the sandbox) serves both.
    pub fn for_api_base(api_base: &str) -> Result<Self, RefreshError> {
        Self::new(&format!(
            "{}/oauth/v1/token",
            api_base.trim_end_matches('/')
        ))
    }

    /// The token endpoint's URL.
    pub fn token_url(&self) -> &str {
        self.endpoint.url().as_str()
    }

    /// The refresh-token grant. HubSpot answers with a refresh token too: whatever comes back
    /// is stored before use (the manager does).
    async fn refresh_credentials(
        &self,
        credentials: &HubspotCredentials,
        now: DateTime<Utc>,
    ) -> Result<TokenSet, RefreshError> {
        let Some(app) = &credentials.oauth else {
            return Err(RefreshError::Misconfigured(format!(
                "a HubSpot {} set has a static token; only oauth sets are refreshed",
                credentials.kind.as_str()
            )));
        };
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.expose_secret()),
            ("refresh_token", app.refresh_token.expose_secret()),
        ];
        self.endpoint.call(ClientAuth::InForm, &form, now).await
    }

    /// The authorization-code grant: the first token pair after the user installed the app.
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
            ("client_id", client_id),
            ("client_secret", client_secret.expose_secret()),
            ("redirect_uri", redirect_uri),
            ("code", code.expose_secret()),
        ];
        self.endpoint.call(ClientAuth::InForm, &form, now).await
    }
}

/// `status: message (correlationId)` from HubSpot's OAuth error body
/// (`{"status":"BAD_REFRESH_TOKEN","message":"…","correlationId":"…"}`), else the HTTP status.
/// The message names the problem, never a token.
fn error_message(status: u16, body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let Some(v) = parsed.filter(serde_json::Value::is_object) else {
        return format!("HTTP {status}");
    };
    let code = v
        .get("status")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("error");
    let e = ErrorBody::from_value(&v);
    let mut out = format!("{code}, HTTP {status}");
    if let Some(m) = e.message {
        out.push_str(&format!(": {m}"));
    }
    if let Some(c) = e.correlation_id {
        out.push_str(&format!(" (correlationId {c})"));
    }
    out
}

#[async_trait]
impl Refresher for HubspotOauth {
    fn vendor(&self) -> &'static str {
        super::spec::SPEC.display
    }

    async fn refresh(
        &self,
        credentials: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<TokenSet, RefreshError> {
        let credentials = HubspotCredentials::from_secret(credentials)
            .map_err(|e| RefreshError::Misconfigured(e.to_string()))?;
        self.refresh_credentials(&credentials, now).await
    }
}

impl std::fmt::Debug for HubspotOauth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubspotOauth")
            .field("token_url", &self.token_url())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::post;

    use super::*;

    #[test]
    fn bad_refresh_token_names_the_error() {
        let body = br#"{"status":"BAD_REFRESH_TOKEN","message":"missing or invalid refresh token","correlationId":"c-9"}"#;
        assert_eq!(
            error_message(400, body),
            "BAD_REFRESH_TOKEN, HTTP 400: missing or invalid refresh token (correlationId c-9)"
        );
        assert_eq!(error_message(503, b"<html>"), "HTTP 503");
    }

    #[test]
    fn urls() {
        assert_eq!(HubspotOauth::new(TOKEN_URL).unwrap().token_url(), TOKEN_URL);
        assert_eq!(
            HubspotOauth::for_api_base("http://127.0.0.1:9/")
                .unwrap()
                .token_url(),
            "http://127.0.0.1:9/oauth/v1/token"
        );
        assert!(HubspotOauth::new("mailto:x@y").is_err());
    }

    /// A token endpoint answering `status` with `body`, recording the forms it got.
    async fn endpoint(status: u16, body: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route(
                "/oauth/v1/token",
                post(
                    move |State(seen): State<Arc<Mutex<Vec<String>>>>, form: String| async move {
                        seen.lock().unwrap().push(form);
                        (StatusCode::from_u16(status).unwrap(), body)
                    },
                ),
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), seen)
    }

    const SET: &str = r#"{"kind":"oauth","client_id":"cid","client_secret":"cs","access_token":"a",
        "refresh_token":"r-1","portal_id":7}"#;

    #[tokio::test]
    async fn a_refresh_posts_the_form_and_reads_the_pair() {
        let (base, seen) = endpoint(
            200,
            r#"{"token_type":"bearer","access_token":"a-2","refresh_token":"r-2","expires_in":1800}"#,
        )
        .await;
        let oauth = HubspotOauth::for_api_base(&base).unwrap();
        assert_eq!(oauth.vendor(), "HubSpot");
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let set = oauth.refresh(&SecretString::from(SET), now).await.unwrap();
        assert_eq!(set.access_token.expose_secret(), "a-2");
        assert_eq!(set.refresh_token.expose_secret(), "r-2");
        assert_eq!(set.expires_at, Some(now + chrono::Duration::seconds(1800)));
        let form = seen.lock().unwrap()[0].clone();
        for part in [
            "grant_type=refresh_token",
            "client_id=cid",
            "client_secret=cs",
            "refresh_token=r-1",
        ] {
            assert!(form.contains(part), "{form}");
        }
    }

    #[tokio::test]
    async fn a_refused_refresh_token_is_a_refusal() {
        let (base, _) = endpoint(
            400,
            r#"{"status":"BAD_REFRESH_TOKEN","message":"missing or invalid refresh token","correlationId":"c"}"#,
        )
        .await;
        let oauth = HubspotOauth::for_api_base(&base).unwrap();
        let now = Utc::now();
        match oauth.refresh(&SecretString::from(SET), now).await {
            Err(RefreshError::Refused(m)) => assert!(m.contains("BAD_REFRESH_TOKEN"), "{m}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
        let code = oauth
            .exchange_code("cid", &"cs".into(), "https://x/cb", &"code".into(), now)
            .await;
        assert!(matches!(code, Err(RefreshError::Refused(_))));
    }

    #[tokio::test]
    async fn static_sets_are_not_refreshed() {
        let oauth = HubspotOauth::for_api_base("http://127.0.0.1:9").unwrap();
        let now = Utc::now();
        let set =
            SecretString::from(r#"{"kind":"private_app","access_token":"SECRET","portal_id":1}"#);
        assert!(matches!(
            oauth.refresh(&set, now).await,
            Err(RefreshError::Misconfigured(m)) if !m.contains("SECRET")
        ));
        // Nothing listens on port 9: an unreachable endpoint is worth retrying.
        assert!(matches!(
            oauth.refresh(&SecretString::from(SET), now).await,
            Err(RefreshError::Transient(_))
        ));
    }
}
