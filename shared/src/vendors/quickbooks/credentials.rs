//! A QuickBooks credential set, as stored (JSON) in the secret `credentials/<name>`.
//!
//! ```json
//! {"access_token": "…", "refresh_token": "…", "expires_at": "2026-03-02T17:04:11Z",
//!  "refresh_expires_at": "2026-06-10T16:04:11Z", "client_id": "…", "client_secret": "…",
//!  "redirect_uri": "https://…", "realm_id": "9341453050771234", "environment": "sandbox"}
//! ```
//! The two tokens and `realm_id` are required; `environment` is `"production"` (the default) or
//! `"sandbox"` and picks the API host. `needs_reconnect` is written by the token manager when
//! Intuit refuses the refresh token; `ml-connector connect quickbooks` rewrites the whole set.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::tokens::NeedsReconnect;
use crate::vendors::is_plain_id;

/// Accounting API host for production companies (docs/vendors/quickbooks.md §3.1).
const PRODUCTION_API_BASE: &str = "https://quickbooks.api.intuit.com";
/// Accounting API host for sandbox (developer) companies.
const SANDBOX_API_BASE: &str = "https://sandbox-quickbooks.api.intuit.com";

/// Which Intuit environment the company lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// A real company: `quickbooks.api.intuit.com`.
    #[default]
    Production,
    /// A developer sandbox company: `sandbox-quickbooks.api.intuit.com`.
    Sandbox,
}

impl Environment {
    /// The credential set's `environment` value (also `connect --environment`'s).
    fn as_str(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::Sandbox => "sandbox",
        }
    }

    /// The other one (what a wrong choice would have needed).
    pub fn other(self) -> Self {
        match self {
            Environment::Production => Environment::Sandbox,
            Environment::Sandbox => Environment::Production,
        }
    }

    /// The Accounting API base URL of this environment.
    fn api_base(self) -> &'static str {
        match self {
            Environment::Production => PRODUCTION_API_BASE,
            Environment::Sandbox => SANDBOX_API_BASE,
        }
    }
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// OAuth tokens, the app's client credentials and the company (realm) they reach.
#[derive(Clone, Deserialize)]
pub struct QuickbooksCredentials {
    /// The bearer token for API calls.
    pub access_token: SecretString,
    /// The token a refresh spends; Intuit may rotate it on any refresh.
    pub refresh_token: SecretString,
    /// When the access token expires (1 h after issue); unknown if absent.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// When the refresh token expires unless used (rolling ~100 days).
    #[serde(default)]
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// The OAuth app's client id, needed to refresh.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The OAuth app's client secret, needed to refresh.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// The redirect URI registered on the app, kept with the set it authorised (the token
    /// exchange must repeat it; a refresh does not need it).
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// The company id in every API URL (`realmId` on the OAuth redirect).
    pub realm_id: String,
    /// Which API host serves the company; production when absent.
    #[serde(default)]
    pub environment: Environment,
    /// Set when Intuit refused the refresh token and the connection needs re-authorising.
    #[serde(default, deserialize_with = "NeedsReconnect::deserialize_mark")]
    pub needs_reconnect: Option<NeedsReconnect>,
}

/// The secret's value is not a QuickBooks credential set. Carries only the position and
/// category of the problem (serde's messages can quote the input, which is a secret), or the
/// name of a field that is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The value is not JSON, or not the stored shape.
    #[error(
        "QuickBooks credentials are not valid JSON of the expected shape ({category} error at line {line}, column {column}); required: access_token, refresh_token, realm_id"
    )]
    Json {
        /// serde_json's category: `syntax`, `data` or `eof`.
        category: &'static str,
        /// Where in the value, 1-based.
        line: usize,
        /// Where in the line, 1-based.
        column: usize,
    },
    /// `realm_id` would not be safe in a URL path (it must be a plain id).
    #[error("QuickBooks credentials: `realm_id` is not a plain company id")]
    RealmId,
}

impl QuickbooksCredentials {
    /// Parses the credential secret's JSON.
    pub fn from_json(json: &str) -> Result<Self, CredentialsError> {
        let parsed: Self = serde_json::from_str(json).map_err(|e| CredentialsError::Json {
            category: crate::vendors::json_error_category(&e),
            line: e.line(),
            column: e.column(),
        })?;
        if !is_plain_id(&parsed.realm_id) {
            return Err(CredentialsError::RealmId);
        }
        Ok(parsed)
    }

    /// Parses a secret.
    pub(crate) fn from_secret(secret: &SecretString) -> Result<Self, CredentialsError> {
        Self::from_json(secret.expose_secret())
    }

    /// The Accounting API base URL: `override_base` (`QUICKBOOKS_API_BASE`) if set, else the
    /// environment's host.
    pub(crate) fn api_base<'a>(&self, override_base: Option<&'a str>) -> &'a str {
        override_base.unwrap_or(self.environment.api_base())
    }

    /// The JSON to store in the secret, as a secret itself. `needs_reconnect` is never written:
    /// a set is written whole by `connect`, and writing it is what clears the mark.
    pub fn to_secret_json(&self) -> SecretString {
        let mut map = serde_json::Map::new();
        let mut put = |k: &str, v: serde_json::Value| {
            map.insert(k.to_string(), v);
        };
        put("access_token", self.access_token.expose_secret().into());
        put("refresh_token", self.refresh_token.expose_secret().into());
        if let Some(at) = self.expires_at {
            put("expires_at", at.to_rfc3339().into());
        }
        if let Some(at) = self.refresh_expires_at {
            put("refresh_expires_at", at.to_rfc3339().into());
        }
        if let Some(id) = &self.client_id {
            put("client_id", id.as_str().into());
        }
        if let Some(secret) = &self.client_secret {
            put("client_secret", secret.expose_secret().into());
        }
        if let Some(uri) = &self.redirect_uri {
            put("redirect_uri", uri.as_str().into());
        }
        put("realm_id", self.realm_id.as_str().into());
        put("environment", self.environment.as_str().into());
        SecretString::from(serde_json::Value::Object(map).to_string())
    }
}

impl std::fmt::Debug for QuickbooksCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuickbooksCredentials")
            .field("access_token", &"[REDACTED]")
            .field("refresh_token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("redirect_uri", &self.redirect_uri)
            .field("realm_id", &self.realm_id)
            .field("environment", &self.environment)
            .field("needs_reconnect", &self.needs_reconnect)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"{"access_token":"at-SECRET-1","refresh_token":"rt-SECRET-2",
        "expires_at":"2026-03-02T17:04:11Z","refresh_expires_at":"2026-06-10T16:04:11Z",
        "client_id":"cid","client_secret":"cs-SECRET-3","redirect_uri":"https://example.com/cb",
        "realm_id":"9341453050771234","environment":"sandbox","extra":1}"#;

    #[test]
    fn parses_every_field() {
        let c = QuickbooksCredentials::from_json(FULL).unwrap();
        assert_eq!(c.access_token.expose_secret(), "at-SECRET-1");
        assert_eq!(c.realm_id, "9341453050771234");
        assert_eq!(c.environment, Environment::Sandbox);
        assert_eq!(c.api_base(None), SANDBOX_API_BASE);
        assert_eq!(c.api_base(Some("http://127.0.0.1:1")), "http://127.0.0.1:1");
        assert!(c.refresh_expires_at.is_some() && c.needs_reconnect.is_none());
        let minimal = QuickbooksCredentials::from_json(
            r#"{"access_token":"a","refresh_token":"r","realm_id":"1"}"#,
        )
        .unwrap();
        assert_eq!(minimal.environment, Environment::Production);
        assert_eq!(minimal.api_base(None), PRODUCTION_API_BASE);
        let marked = QuickbooksCredentials::from_json(
            r#"{"access_token":"a","refresh_token":"r","realm_id":"1",
                "needs_reconnect":{"since":"2026-03-02T00:00:00Z","reason":"invalid_grant"}}"#,
        )
        .unwrap();
        assert_eq!(
            marked.needs_reconnect.unwrap().reason.as_deref(),
            Some("invalid_grant")
        );
    }

    #[test]
    fn round_trips_without_the_mark() {
        let mut c = QuickbooksCredentials::from_json(FULL).unwrap();
        c.needs_reconnect = Some(NeedsReconnect::default());
        let json = c.to_secret_json();
        let back = QuickbooksCredentials::from_secret(&json).unwrap();
        assert_eq!(back.refresh_token.expose_secret(), "rt-SECRET-2");
        assert_eq!(back.client_secret.unwrap().expose_secret(), "cs-SECRET-3");
        assert_eq!(
            (back.expires_at, back.refresh_expires_at),
            (c.expires_at, c.refresh_expires_at)
        );
        assert_eq!(
            (back.realm_id.as_str(), back.environment),
            ("9341453050771234", Environment::Sandbox)
        );
        assert!(back.needs_reconnect.is_none());
        assert!(!json.expose_secret().contains("extra"));
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let debug = format!("{:?}", QuickbooksCredentials::from_json(FULL).unwrap());
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("9341453050771234") && debug.contains("cid"));
    }

    #[test]
    fn bad_sets_are_refused_without_quoting_them() {
        for bad in [
            r#""at-SECRET-1""#,
            r#"{"access_token":"at-SECRET-1","refresh_token":"r"}"#,
            r#"{"access_token":"at-SECRET-1","refresh_token":"r","realm_id":"1","environment":"SECRET"}"#,
        ] {
            let err = QuickbooksCredentials::from_json(bad).unwrap_err();
            assert!(!err.to_string().contains("SECRET"), "{err}");
        }
        assert_eq!(
            QuickbooksCredentials::from_json(
                r#"{"access_token":"a","refresh_token":"r","realm_id":"1/../2"}"#
            )
            .unwrap_err(),
            CredentialsError::RealmId
        );
    }
}
