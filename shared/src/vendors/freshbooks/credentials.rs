//! A FreshBooks credential set, as stored (JSON) in the secret `credentials/<name>`.
//!
//! ```json
//! {"access_token": "…", "refresh_token": "…", "expires_at": "2026-03-02T17:04:11Z",
//!  "client_id": "…", "client_secret": "…", "redirect_uri": "https://…"}
//! ```
//! Only the two tokens are required. Refresh tokens are single-use (docs/vendors/freshbooks.md §2): whoever
//! refreshes must store the new pair with [`Credentials::to_secret_json`] before using it.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// OAuth tokens (and, optionally, the app's client credentials for refreshing them).
#[derive(Clone, Deserialize)]
pub struct Credentials {
    /// The bearer token for API calls.
    pub access_token: SecretString,
    /// The token a refresh spends (FreshBooks rotates it: each is good once).
    pub refresh_token: SecretString,
    /// When the access token expires (12 h after issue); unknown if absent.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// The OAuth app's client id, needed to refresh.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The OAuth app's client secret, needed to refresh.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// The redirect URI registered on the app; FreshBooks wants it on refresh too.
    #[serde(default)]
    pub redirect_uri: Option<String>,
}

/// The secret's value is not a credential set. Deliberately carries only the position and
/// category of the problem: serde's messages can quote input (`invalid type: string "…"`),
/// and the input here is a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "FreshBooks credentials are not valid JSON of the expected shape ({category} error at line {line}, column {column})"
)]
pub struct CredentialsError {
    category: &'static str,
    line: usize,
    column: usize,
}

impl Credentials {
    /// Parses the credential secret's JSON.
    pub fn from_json(json: &str) -> Result<Self, CredentialsError> {
        serde_json::from_str(json).map_err(|e| CredentialsError {
            category: crate::vendors::json_error_category(&e),
            line: e.line(),
            column: e.column(),
        })
    }

    /// The JSON to store back in the secret (after a refresh), as a secret itself.
    pub fn to_secret_json(&self) -> SecretString {
        let mut map = serde_json::Map::new();
        map.insert(
            "access_token".into(),
            self.access_token.expose_secret().into(),
        );
        map.insert(
            "refresh_token".into(),
            self.refresh_token.expose_secret().into(),
        );
        if let Some(at) = self.expires_at {
            map.insert("expires_at".into(), at.to_rfc3339().into());
        }
        if let Some(id) = &self.client_id {
            map.insert("client_id".into(), id.as_str().into());
        }
        if let Some(secret) = &self.client_secret {
            map.insert("client_secret".into(), secret.expose_secret().into());
        }
        if let Some(uri) = &self.redirect_uri {
            map.insert("redirect_uri".into(), uri.as_str().into());
        }
        SecretString::from(serde_json::Value::Object(map).to_string())
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_token", &"[REDACTED]")
            .field("refresh_token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"{"access_token":"at-SECRET-1","refresh_token":"rt-SECRET-2",
        "expires_at":"2026-03-02T17:04:11Z","client_id":"cid","client_secret":"cs-SECRET-3",
        "redirect_uri":"https://example.com/cb","extra":"ignored"}"#;

    #[test]
    fn parses_and_round_trips() {
        let c = Credentials::from_json(FULL).unwrap();
        assert_eq!(c.access_token.expose_secret(), "at-SECRET-1");
        assert_eq!(c.refresh_token.expose_secret(), "rt-SECRET-2");
        assert_eq!(
            c.expires_at.unwrap().to_rfc3339(),
            "2026-03-02T17:04:11+00:00"
        );
        assert_eq!(c.client_id.as_deref(), Some("cid"));
        let back = Credentials::from_json(c.to_secret_json().expose_secret()).unwrap();
        assert_eq!(back.client_secret.unwrap().expose_secret(), "cs-SECRET-3");
        assert_eq!(back.expires_at, c.expires_at);

        let minimal =
            Credentials::from_json(r#"{"access_token":"a","refresh_token":"r"}"#).unwrap();
        assert!(minimal.expires_at.is_none() && minimal.client_secret.is_none());
    }

    #[test]
    fn debug_never_shows_a_token() {
        let debug = format!("{:?}", Credentials::from_json(FULL).unwrap());
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("cid") && debug.contains("2026-03-02"));
    }

    #[test]
    fn errors_never_quote_the_input() {
        // A bare token stored instead of JSON: serde would say `invalid type: string "…"`.
        let err = Credentials::from_json(r#""at-SECRET-1""#).unwrap_err();
        assert_eq!(err.category, "data");
        assert!(!err.to_string().contains("SECRET"));
        let err = Credentials::from_json(r#"{"access_token":"at-SECRET-1"}"#).unwrap_err();
        assert!(!err.to_string().contains("SECRET"));
        assert_eq!(Credentials::from_json("{").unwrap_err().category, "eof");
        assert_eq!(
            Credentials::from_json("nope").unwrap_err().category,
            "syntax"
        );
    }
}
