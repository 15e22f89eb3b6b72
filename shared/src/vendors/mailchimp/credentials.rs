//! A Mailchimp credential set, as stored (JSON) in the secret `credentials/<name>`
//! (docs/vendors/mailchimp.md §1). One of:
//!
//! ```json
//! {"api_key": "0123456789abcdef0123456789abcdef-us21"}
//! {"access_token": "…", "dc": "us21"}
//! {"access_token": "…", "api_endpoint": "https://us21.api.mailchimp.com"}
//! ```
//! An API key authenticates with HTTP Basic (any user name, the key as password) and names its
//! data centre after the last `-`. An OAuth token authenticates with `Bearer` and never expires;
//! its data centre comes from the OAuth metadata call, stored beside it at connect time.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// How requests authenticate, and which data centre serves the account.
#[derive(Clone)]
pub enum Credentials {
    /// `<32 hex>-<dc>`; sent as HTTP Basic password.
    ApiKey {
        /// The whole key, data centre suffix included.
        key: SecretString,
        /// The data centre, from the key's suffix (e.g. `us21`).
        dc: String,
    },
    /// An OAuth 2 access token; sent as `Bearer`. `api_endpoint` (e.g.
    /// `https://us21.api.mailchimp.com`, no `/3.0`) wins over `dc` when both are stored.
    OAuth {
        /// The access token (Mailchimp's do not expire).
        token: SecretString,
        /// The data centre from the OAuth metadata, e.g. `us21`.
        dc: Option<String>,
        /// The API base from the OAuth metadata.
        api_endpoint: Option<String>,
    },
}

/// The secret's value is not a usable credential set. Carries only the position and category
/// of the problem, never the input: serde's messages can quote it, and the input is a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The value is not JSON, or not the stored shape.
    #[error(
        "Mailchimp credentials are not valid JSON of the expected shape ({category} error at line {line}, column {column})"
    )]
    Json {
        /// serde_json's category: `syntax`, `data` or `eof`.
        category: &'static str,
        /// Where in the value, 1-based.
        line: usize,
        /// Where in the line, 1-based.
        column: usize,
    },
    /// Well-formed JSON, but neither `api_key` nor `access_token`, or an unusable value.
    #[error("Mailchimp credentials: {0}")]
    Invalid(&'static str),
}

/// The stored shape; every field optional so the checks below can say what is missing.
#[derive(Deserialize)]
struct Stored {
    #[serde(default)]
    api_key: Option<SecretString>,
    #[serde(default)]
    access_token: Option<SecretString>,
    #[serde(default)]
    dc: Option<String>,
    #[serde(default)]
    api_endpoint: Option<String>,
}

impl Credentials {
    /// Parses the credential secret's JSON.
    pub fn from_json(json: &str) -> Result<Self, CredentialsError> {
        let stored: Stored = serde_json::from_str(json).map_err(|e| CredentialsError::Json {
            category: crate::vendors::json_error_category(&e),
            line: e.line(),
            column: e.column(),
        })?;
        match (stored.api_key, stored.access_token) {
            (Some(key), None) => Self::from_api_key(key),
            (None, Some(token)) => {
                if token.expose_secret().trim().is_empty() {
                    return Err(CredentialsError::Invalid("access_token is empty"));
                }
                let dc = stored.dc.map(|d| d.trim().to_string());
                if let Some(dc) = &dc
                    && !is_dc(dc)
                {
                    return Err(CredentialsError::Invalid(
                        "dc must be a data centre name such as us21",
                    ));
                }
                let api_endpoint = stored
                    .api_endpoint
                    .map(|e| e.trim().trim_end_matches('/').to_string());
                if let Some(endpoint) = &api_endpoint
                    && url::Url::parse(endpoint).is_err()
                {
                    return Err(CredentialsError::Invalid("api_endpoint is not a URL"));
                }
                if dc.is_none() && api_endpoint.is_none() {
                    return Err(CredentialsError::Invalid(
                        "an access_token needs dc or api_endpoint (from the OAuth metadata call)",
                    ));
                }
                Ok(Credentials::OAuth {
                    token,
                    dc,
                    api_endpoint,
                })
            }
            (Some(_), Some(_)) => Err(CredentialsError::Invalid(
                "both api_key and access_token are set; keep one",
            )),
            (None, None) => Err(CredentialsError::Invalid(
                "neither api_key nor access_token is set",
            )),
        }
    }

    /// An API key `<key>-<dc>`; the data centre is the text after the last `-` (what the
    /// official SDKs do). The key part is not checked for 32 hex digits: Mailchimp decides.
    pub fn from_api_key(key: SecretString) -> Result<Self, CredentialsError> {
        let text = key.expose_secret().trim();
        let Some((head, dc)) = text.rsplit_once('-') else {
            return Err(CredentialsError::Invalid(
                "api_key has no data-centre suffix (expected <key>-<dc>)",
            ));
        };
        if head.is_empty() || !is_dc(dc) {
            return Err(CredentialsError::Invalid(
                "api_key has no usable data-centre suffix (expected <key>-<dc>)",
            ));
        }
        let dc = dc.to_string();
        let key = SecretString::from(text.to_string());
        Ok(Credentials::ApiKey { key, dc })
    }

    /// The data centre, when known from the key or stored `dc`.
    pub fn dc(&self) -> Option<&str> {
        match self {
            Credentials::ApiKey { dc, .. } => Some(dc),
            Credentials::OAuth { dc, .. } => dc.as_deref(),
        }
    }

    /// `https://<dc>.api.mailchimp.com/3.0` (or the stored `api_endpoint` + `/3.0`).
    pub(crate) fn base_url(&self) -> String {
        match self {
            Credentials::OAuth {
                api_endpoint: Some(endpoint),
                ..
            } => format!("{endpoint}/3.0"),
            _ => format!(
                "https://{}.api.mailchimp.com/3.0",
                self.dc().unwrap_or_default()
            ),
        }
    }

    /// The `Authorization` header value.
    pub(crate) fn authorization(&self) -> SecretString {
        use base64::Engine as _;
        match self {
            Credentials::ApiKey { key, .. } => {
                let pair = format!("user:{}", key.expose_secret());
                SecretString::from(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            }
            Credentials::OAuth { token, .. } => {
                SecretString::from(format!("Bearer {}", token.expose_secret()))
            }
        }
    }

    /// A stable, non-reversible identifier of the key/token (hex of a SHA-256 prefix), for the
    /// connection limiter's registry and for logs. Never the secret itself.
    pub(crate) fn fingerprint(&self) -> String {
        let secret = match self {
            Credentials::ApiKey { key, .. } => key,
            Credentials::OAuth { token, .. } => token,
        };
        let mut sha = Sha256::new();
        sha.update(b"mailchimp-credential:");
        sha.update(secret.expose_secret().as_bytes());
        hex::encode(&sha.finalize()[..12])
    }
}

/// Data-centre names are short lower-case alphanumerics (`us21`).
fn is_dc(s: &str) -> bool {
    !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::ApiKey { dc, .. } => f
                .debug_struct("Credentials::ApiKey")
                .field("key", &"[REDACTED]")
                .field("dc", dc)
                .finish(),
            Credentials::OAuth {
                dc, api_endpoint, ..
            } => f
                .debug_struct("Credentials::OAuth")
                .field("token", &"[REDACTED]")
                .field("dc", dc)
                .field("api_endpoint", api_endpoint)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef-us21";

    #[test]
    fn api_key_gives_dc_and_basic_auth() {
        let c = Credentials::from_json(&format!(r#"{{"api_key":"{KEY}"}}"#)).unwrap();
        assert_eq!(c.dc(), Some("us21"));
        assert_eq!(c.base_url(), "https://us21.api.mailchimp.com/3.0");
        // The value docs/vendors/mailchimp.md §1 spells out.
        assert_eq!(
            c.authorization().expose_secret(),
            "Basic dXNlcjowMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZi11czIx"
        );
        // The last `-` decides.
        let c = Credentials::from_api_key("ab-cd-us7".into()).unwrap();
        assert_eq!(c.dc(), Some("us7"));
    }

    #[test]
    fn oauth_with_dc_or_endpoint() {
        let c = Credentials::from_json(r#"{"access_token":"tok-SECRET","dc":"us3"}"#).unwrap();
        assert_eq!(c.base_url(), "https://us3.api.mailchimp.com/3.0");
        assert_eq!(c.authorization().expose_secret(), "Bearer tok-SECRET");
        let c = Credentials::from_json(
            r#"{"access_token":"tok","api_endpoint":"https://us9.api.mailchimp.com/"}"#,
        )
        .unwrap();
        assert_eq!(c.base_url(), "https://us9.api.mailchimp.com/3.0");
    }

    #[test]
    fn bad_sets_are_refused_without_quoting_them() {
        for (json, secret) in [
            (r#"{"api_key":"SECRETKEY"}"#, "SECRETKEY"),
            (r#"{"api_key":"SECRETKEY-"}"#, "SECRETKEY"),
            (r#"{"api_key":"SECRETKEY-us/1"}"#, "SECRETKEY"),
            (r#"{"access_token":"SECRETTOK"}"#, "SECRETTOK"),
            (r#"{"access_token":"SECRETTOK","dc":"us 1"}"#, "SECRETTOK"),
            (
                r#"{"api_key":"a-us1","access_token":"SECRETTOK"}"#,
                "SECRETTOK",
            ),
            (r#"{}"#, "none"),
            (r#""SECRETKEY-us21""#, "SECRETKEY"),
            (r#"{"api_key":"SECRETKEY-us21""#, "SECRETKEY"),
        ] {
            let err = Credentials::from_json(json).unwrap_err();
            assert!(!err.to_string().contains(secret), "{err}");
        }
    }

    #[test]
    fn debug_and_fingerprint_hide_the_secret() {
        let c = Credentials::from_json(&format!(r#"{{"api_key":"{KEY}"}}"#)).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("0123456789abcdef"), "{debug}");
        assert!(debug.contains("us21"));
        let fp = c.fingerprint();
        assert_eq!(fp.len(), 24);
        assert!(!fp.contains("0123456789abcdef"));
        let other = Credentials::from_api_key("ffff-us21".into()).unwrap();
        assert_ne!(fp, other.fingerprint());
    }
}
