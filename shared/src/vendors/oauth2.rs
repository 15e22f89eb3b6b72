//! The OAuth2 token endpoint call both accounting vendors share (RFC 6749 §4.1.3 and §6): one
//! form POST, the token pair out of a 2xx answer, and a refusal told apart from an outage.
//! What differs per vendor is only how the client authenticates (in the form for FreshBooks,
//! HTTP Basic for Intuit), the form's fields and how an error body reads.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::http::{ReadError, http_base, read_capped, shared_http_client};
use super::json_error_category;
use crate::tokens::{RefreshError, TokenSet};

/// Largest token-endpoint answer read.
const MAX_BODY: usize = 64 * 1024;

/// Whole-request timeout of a token call.
const TIMEOUT: Duration = Duration::from_secs(20);

/// One vendor's token endpoint.
#[derive(Clone)]
pub(crate) struct TokenEndpoint {
    url: Url,
    /// The message for a non-2xx answer's body; it carries no token, so it may be quoted.
    describe_error: fn(u16, &[u8]) -> String,
}

/// How the client proves who it is.
pub(crate) enum ClientAuth<'a> {
    /// `client_id`/`client_secret` are among the form's fields.
    InForm,
    /// HTTP Basic with the client id and secret.
    Basic(&'a str, &'a SecretString),
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    refresh_token: SecretString,
    #[serde(default)]
    expires_in: Option<i64>,
    /// FreshBooks dates the pair itself (epoch seconds).
    #[serde(default)]
    created_at: Option<i64>,
    /// Intuit's refresh tokens expire too unless used (rolling ~100 days).
    #[serde(default)]
    x_refresh_token_expires_in: Option<i64>,
}

impl TokenEndpoint {
    pub(crate) fn new(url: Url, describe_error: fn(u16, &[u8]) -> String) -> Self {
        Self {
            url,
            describe_error,
        }
    }

    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// POSTs `form` and reads the token pair; expiries are dated from the answer's
    /// `created_at`, else from `now`.
    pub(crate) async fn call(
        &self,
        auth: ClientAuth<'_>,
        form: &[(&str, &str)],
        now: DateTime<Utc>,
    ) -> Result<TokenSet, RefreshError> {
        // Taken on first use, so creating an endpoint at Lambda init costs no TLS set-up.
        let http = shared_http_client(TIMEOUT)
            .map_err(|e| RefreshError::Misconfigured(format!("building the HTTP client: {e}")))?;
        let mut request = http
            .post(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form);
        if let ClientAuth::Basic(id, secret) = auth {
            request = request.basic_auth(id, Some(secret.expose_secret()));
        }
        let response = request
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
        Err(classify_refusal(
            status,
            (self.describe_error)(status, &body),
        ))
    }
}

/// The token pair in a 2xx answer; serde's message is not quoted (it could echo a token).
fn parse_tokens(status: u16, body: &[u8], now: DateTime<Utc>) -> Result<TokenSet, RefreshError> {
    let parsed: TokenResponse = serde_json::from_slice(body).map_err(|e| {
        RefreshError::Misconfigured(format!(
            "token endpoint answered HTTP {status} without a token pair ({} error)",
            json_error_category(&e)
        ))
    })?;
    let issued = parsed
        .created_at
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or(now);
    let after = |secs: Option<i64>| secs.map(|s| issued + chrono::Duration::seconds(s));
    Ok(TokenSet {
        access_token: parsed.access_token,
        refresh_token: parsed.refresh_token,
        expires_at: after(parsed.expires_in),
        refresh_expires_at: after(parsed.x_refresh_token_expires_in),
    })
}

/// Which failures are a refusal of the grant. `invalid_grant` comes as 400 and a wrong client
/// as 401; the exact code for a reused or revoked refresh token is UNCONFIRMED for FreshBooks,
/// so any 400/401/403 counts: none of them gets better by retrying the same grant.
fn classify_refusal(status: u16, message: String) -> RefreshError {
    match status {
        400 | 401 | 403 => RefreshError::Refused(message),
        408 | 429 | 500..=599 => RefreshError::Transient(message),
        _ => RefreshError::Misconfigured(message),
    }
}

/// The token endpoint's URL, which must be http(s) with a host.
pub(crate) fn token_url(raw: &str, vendor: &str) -> Result<Url, RefreshError> {
    http_base(raw).filter(Url::has_host).ok_or_else(|| {
        RefreshError::Misconfigured(format!(
            "{vendor} token URL `{raw}` is not an http(s) address"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_permanent_and_outages_transient() {
        let refused = |s| matches!(classify_refusal(s, String::new()), RefreshError::Refused(_));
        let transient = |s| {
            matches!(
                classify_refusal(s, String::new()),
                RefreshError::Transient(_)
            )
        };
        assert!(refused(400) && refused(401) && refused(403));
        assert!(transient(408) && transient(429) && transient(503));
        assert!(matches!(
            classify_refusal(404, String::new()),
            RefreshError::Misconfigured(_)
        ));
    }

    #[test]
    fn expiries_are_dated_from_created_at_else_now() {
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

        let created = br#"{"access_token":"a","refresh_token":"r","expires_in":43200,
            "created_at":1699990000}"#;
        let t = parse_tokens(200, created, now).unwrap();
        let issued = DateTime::from_timestamp(1_699_990_000, 0).unwrap();
        assert_eq!(t.expires_at, Some(issued + chrono::Duration::hours(12)));
        assert_eq!(t.refresh_expires_at, None);
    }

    #[test]
    fn a_bad_answer_is_not_quoted() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        for body in [&b"{}"[..], br#"{"access_token":"a-SECRET"}"#, b"<html>"] {
            match parse_tokens(200, body, now) {
                Err(RefreshError::Misconfigured(m)) => assert!(!m.contains("SECRET"), "{m}"),
                other => panic!("{:?}", other.map(|_| ())),
            }
        }
    }

    #[test]
    fn token_urls_must_be_http() {
        assert!(token_url("https://oauth.example/token", "X").is_ok());
        assert!(token_url("mailto:x@y", "X").is_err());
        assert!(token_url("not a url", "X").is_err());
    }
}
