//! A HubSpot credential set, as stored (JSON) in the secret `credentials/<name>`
//! (docs/vendors/hubspot.md §0, §1). One of three kinds:
//!
//! ```json
//! {"kind": "private_app", "access_token": "pat-na1-…", "portal_id": 123}
//! {"kind": "service_key", "access_token": "…", "portal_id": 123}
//! {"kind": "oauth", "client_id": "…", "client_secret": "…", "access_token": "…",
//!  "refresh_token": "…", "expires_at": "2026-12-07T22:30:00Z", "portal_id": 123}
//! ```
//! Optional on every kind: `"api_version"` (`"v3"`, the default, or a date version such as
//! `"2026-03"`, which moves object paths to `/crm/objects/2026-03/{type}`, §0), `"tier"`
//! (`free|starter|professional|enterprise|api_pack`: the burst limit, §4.1) and `"time_zone"`
//! (the portal's IANA zone, when known at connect time, so the daily limit's reset needs no
//! lookup). The OAuth set is the token managers' shape (`crate::tokens::StoredTokens`:
//! `access_token`, `refresh_token`, `expires_at`, `needs_reconnect`), so the single-flight
//! refresh rewrites it in place and keeps every other field; `redirect_uri` may be kept beside
//! it for `connect`.
//!
//! Private-app tokens and service keys never expire and are not refreshed (§1).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use super::models::ObjectType;
use crate::tokens::NeedsReconnect;

/// The API version when a set names none.
const DEFAULT_API_VERSION: &str = "v3";

/// What kind of token a set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// A legacy private app's static token (`pat-<region>-<uuid>`, §1).
    PrivateApp,
    /// A service key: static, used as a private-app token is (§0).
    ServiceKey,
    /// An OAuth app's access token (30 min) with its refresh token.
    OAuth,
}

impl AuthKind {
    /// As the set's `kind` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::PrivateApp => "private_app",
            AuthKind::ServiceKey => "service_key",
            AuthKind::OAuth => "oauth",
        }
    }

    /// Whether the token is static (no refresh; a 401 is final).
    pub fn is_static(self) -> bool {
        !matches!(self, AuthKind::OAuth)
    }
}

/// The portal's subscription tier, which sets the burst limit (docs/vendors/hubspot.md §4.1).
/// HubSpot offers no API to read it: it is a connection setting (the flow's `tier` option or
/// the credential set's), or the safe default. Spelled in snake case (`api_pack`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumString,
    strum::VariantNames,
    strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
pub enum Tier {
    /// Free: 100 per 10 s.
    Free,
    /// Starter: 100 per 10 s.
    Starter,
    /// Professional: 190 per 10 s.
    Professional,
    /// Enterprise: 190 per 10 s.
    Enterprise,
    /// With the API Limit Increase pack: 250 per 10 s (the private-app page says 200,
    /// UNCONFIRMED which holds; a response's `X-HubSpot-RateLimit-Max` corrects it).
    ApiPack,
}

impl Tier {
    /// Requests per 10-second window for the whole app on the portal.
    pub fn burst(self) -> u32 {
        match self {
            Tier::Free | Tier::Starter => 100,
            Tier::Professional | Tier::Enterprise => 190,
            Tier::ApiPack => 250,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        s.trim().parse().ok()
    }
}

/// The burst per 10 s when the tier is unknown: the lowest (Free/Starter), §4.1.
pub const DEFAULT_BURST: u32 = 100;

/// Which API version object paths use (docs/vendors/hubspot.md §0).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ApiVersion {
    /// `/crm/v3/objects/{type}`.
    V3,
    /// A date version (`2026-03`): `/crm/objects/2026-03/{type}`.
    Dated(String),
}

impl ApiVersion {
    /// `v3`, or a `YYYY-MM` date version.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s == DEFAULT_API_VERSION {
            return Some(ApiVersion::V3);
        }
        let b = s.as_bytes();
        let dated = b.len() == 7
            && b[4] == b'-'
            && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
            && matches!(
                &s[5..],
                "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
            );
        dated.then(|| ApiVersion::Dated(s.to_string()))
    }

    /// The path segments of an object type's collection, the one place the version enters a
    /// path: `crm/v3/objects/{type}` or `crm/objects/{date}/{type}` (§0). Only the CRM object
    /// endpoints move with it; properties (`/crm/v3/properties`) and associations
    /// (`/crm/v4/associations`) keep their numbered paths until HubSpot retires them (their
    /// dated forms are UNCONFIRMED).
    pub fn object_segments(&self, object: ObjectType) -> [&str; 4] {
        match self {
            ApiVersion::V3 => ["crm", "v3", "objects", object.path()],
            ApiVersion::Dated(date) => ["crm", "objects", date.as_str(), object.path()],
        }
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiVersion::V3 => f.write_str(DEFAULT_API_VERSION),
            ApiVersion::Dated(d) => f.write_str(d),
        }
    }
}

/// The OAuth part of a set: what a refresh needs.
#[derive(Clone)]
pub struct OauthApp {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: SecretString,
    /// The token a refresh spends.
    pub refresh_token: SecretString,
    /// When the access token expires (30 min after issue); unknown if absent.
    pub expires_at: Option<DateTime<Utc>>,
    /// The redirect URI the app was authorised with (kept for `connect`; a refresh does not
    /// need it).
    pub redirect_uri: Option<String>,
}

/// A parsed HubSpot credential set.
#[derive(Clone)]
pub struct HubspotCredentials {
    /// What kind of token it is.
    pub kind: AuthKind,
    /// The bearer token (for OAuth, the one last stored; the token manager supplies fresher).
    pub access_token: SecretString,
    /// The portal (hub) id the token reaches.
    pub portal_id: u64,
    /// Which version object paths use.
    pub api_version: ApiVersion,
    /// The portal's tier, if the set says.
    pub tier: Option<Tier>,
    /// The portal's time zone, if the set says.
    pub time_zone: Option<Tz>,
    /// The OAuth app and refresh token (only for [`AuthKind::OAuth`]).
    pub oauth: Option<OauthApp>,
    /// Set by the token manager when HubSpot refused the refresh token.
    pub needs_reconnect: Option<NeedsReconnect>,
}

/// The secret's value is not a usable HubSpot credential set. Never quotes the value: serde's
/// messages can, and the value is a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// Not JSON, or not the stored shape.
    #[error(
        "HubSpot credentials are not valid JSON of the expected shape ({category} error at line {line}, column {column}); required: kind, access_token, portal_id"
    )]
    Json {
        /// serde_json's category: `syntax`, `data` or `eof`.
        category: &'static str,
        /// Where in the value, 1-based.
        line: usize,
        /// Where in the line, 1-based.
        column: usize,
    },
    /// Well-formed, but a field is missing or unusable (the field is named, its value never).
    #[error("HubSpot credentials: {0}")]
    Invalid(&'static str),
}

/// The stored shape; every field optional so the checks can say what is missing.
#[derive(Deserialize)]
struct Stored {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    access_token: Option<SecretString>,
    #[serde(default, deserialize_with = "portal_id")]
    portal_id: Option<u64>,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<SecretString>,
    #[serde(default)]
    refresh_token: Option<SecretString>,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default, deserialize_with = "NeedsReconnect::deserialize_mark")]
    needs_reconnect: Option<NeedsReconnect>,
}

/// `portal_id` as a number or a string of digits (hand-written sets quote it).
fn portal_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(u64),
        Text(String),
    }
    Ok(match Option::<Id>::deserialize(d)? {
        None => None,
        Some(Id::Number(n)) => Some(n),
        Some(Id::Text(s)) => Some(
            s.trim()
                .parse()
                .map_err(|_| serde::de::Error::custom("portal_id is not a number"))?,
        ),
    })
}

fn present(s: Option<SecretString>) -> Option<SecretString> {
    s.filter(|s| !s.expose_secret().trim().is_empty())
}

impl HubspotCredentials {
    /// Parses the credential secret's JSON.
    pub fn from_json(json: &str) -> Result<Self, CredentialsError> {
        let stored: Stored = serde_json::from_str(json).map_err(|e| CredentialsError::Json {
            category: crate::vendors::json_error_category(&e),
            line: e.line(),
            column: e.column(),
        })?;
        let kind = match stored.kind.as_deref().map(str::trim) {
            Some("private_app") => AuthKind::PrivateApp,
            Some("service_key") => AuthKind::ServiceKey,
            Some("oauth") => AuthKind::OAuth,
            Some(_) => {
                return Err(CredentialsError::Invalid(
                    "kind must be private_app, service_key or oauth",
                ));
            }
            None => return Err(CredentialsError::Invalid("kind is missing")),
        };
        // Opaque: only "not empty" is checked (docs/vendors/hubspot.md §1).
        let access_token = present(stored.access_token).ok_or(CredentialsError::Invalid(
            "access_token is missing or empty",
        ))?;
        let portal_id = stored
            .portal_id
            .filter(|id| *id > 0)
            .ok_or(CredentialsError::Invalid("portal_id is missing or zero"))?;
        let api_version = match stored.api_version {
            None => ApiVersion::V3,
            Some(v) => ApiVersion::parse(&v).ok_or(CredentialsError::Invalid(
                "api_version must be v3 or a date version such as 2026-03",
            ))?,
        };
        let tier = match stored.tier {
            None => None,
            Some(t) => Some(Tier::parse(&t).ok_or(CredentialsError::Invalid(
                "tier must be free, starter, professional, enterprise or api_pack",
            ))?),
        };
        let time_zone = match stored.time_zone {
            None => None,
            Some(z) => Some(z.trim().parse::<Tz>().map_err(|_| {
                CredentialsError::Invalid("time_zone is not an IANA time zone name")
            })?),
        };
        let oauth = match kind {
            AuthKind::OAuth => Some(OauthApp {
                client_id: stored
                    .client_id
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .ok_or(CredentialsError::Invalid("an oauth set needs client_id"))?,
                client_secret: present(stored.client_secret).ok_or(CredentialsError::Invalid(
                    "an oauth set needs client_secret",
                ))?,
                refresh_token: present(stored.refresh_token).ok_or(CredentialsError::Invalid(
                    "an oauth set needs refresh_token",
                ))?,
                expires_at: stored.expires_at,
                redirect_uri: stored.redirect_uri,
            }),
            AuthKind::PrivateApp | AuthKind::ServiceKey => {
                if stored.refresh_token.is_some() {
                    return Err(CredentialsError::Invalid(
                        "a refresh_token belongs to an oauth set; this kind's token is static",
                    ));
                }
                None
            }
        };
        Ok(Self {
            kind,
            access_token,
            portal_id,
            api_version,
            tier,
            time_zone,
            oauth,
            needs_reconnect: stored.needs_reconnect,
        })
    }

    /// Parses a secret.
    pub fn from_secret(secret: &SecretString) -> Result<Self, CredentialsError> {
        Self::from_json(secret.expose_secret())
    }

    /// The burst per 10 s for the whole app: by tier, else [`DEFAULT_BURST`].
    pub fn burst(&self) -> u32 {
        self.tier.map_or(DEFAULT_BURST, Tier::burst)
    }

    /// The JSON to store in the secret. `needs_reconnect` is never written: `connect` writes a
    /// set whole, and writing it is what clears the mark.
    pub fn to_secret_json(&self) -> SecretString {
        let mut map = serde_json::Map::new();
        let mut put = |k: &str, v: serde_json::Value| {
            map.insert(k.to_string(), v);
        };
        put("kind", self.kind.as_str().into());
        put("access_token", self.access_token.expose_secret().into());
        put("portal_id", self.portal_id.into());
        if self.api_version != ApiVersion::V3 {
            put("api_version", self.api_version.to_string().into());
        }
        if let Some(tier) = self.tier {
            put("tier", <&str>::from(tier).into());
        }
        if let Some(tz) = self.time_zone {
            put("time_zone", tz.name().into());
        }
        if let Some(app) = &self.oauth {
            put("client_id", app.client_id.as_str().into());
            put("client_secret", app.client_secret.expose_secret().into());
            put("refresh_token", app.refresh_token.expose_secret().into());
            if let Some(at) = app.expires_at {
                put("expires_at", at.to_rfc3339().into());
            }
            if let Some(uri) = &app.redirect_uri {
                put("redirect_uri", uri.as_str().into());
            }
        }
        SecretString::from(serde_json::Value::Object(map).to_string())
    }
}

/// Whether a value is a usable set (its error never quotes it): the spec's
/// `CredentialKind::Checked`.
pub fn check(value: &str) -> Result<(), String> {
    HubspotCredentials::from_json(value)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

impl std::fmt::Debug for OauthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OauthApp")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("refresh_token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

impl std::fmt::Debug for HubspotCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubspotCredentials")
            .field("kind", &self.kind)
            .field("access_token", &"[REDACTED]")
            .field("portal_id", &self.portal_id)
            .field("api_version", &self.api_version)
            .field("tier", &self.tier)
            .field("time_zone", &self.time_zone)
            .field("oauth", &self.oauth)
            .field("needs_reconnect", &self.needs_reconnect)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::StoredTokens;

    const OAUTH: &str = r#"{"kind":"oauth","client_id":"cid","client_secret":"cs-SECRET-1",
        "access_token":"at-SECRET-2","refresh_token":"rt-SECRET-3",
        "expires_at":"2026-12-07T22:30:00Z","portal_id":123,"tier":"professional",
        "api_version":"2026-03","time_zone":"America/New_York","extra":1}"#;

    #[test]
    fn the_three_kinds() {
        let c = HubspotCredentials::from_json(
            r#"{"kind":"private_app","access_token":"pat-na1-SECRET","portal_id":123}"#,
        )
        .unwrap();
        assert_eq!(c.kind, AuthKind::PrivateApp);
        assert!(c.kind.is_static());
        assert_eq!(c.portal_id, 123);
        assert_eq!(c.api_version, ApiVersion::V3);
        assert_eq!(c.burst(), DEFAULT_BURST);
        assert!(c.oauth.is_none() && c.time_zone.is_none());
        let c = HubspotCredentials::from_json(
            r#"{"kind":"service_key","access_token":"k","portal_id":"456","tier":"api_pack"}"#,
        )
        .unwrap();
        assert_eq!(
            (c.kind, c.portal_id, c.burst()),
            (AuthKind::ServiceKey, 456, 250)
        );
        let c = HubspotCredentials::from_json(OAUTH).unwrap();
        assert_eq!(c.kind, AuthKind::OAuth);
        assert!(!c.kind.is_static());
        let app = c.oauth.as_ref().unwrap();
        assert_eq!(app.client_id, "cid");
        assert_eq!(app.refresh_token.expose_secret(), "rt-SECRET-3");
        assert_eq!(c.burst(), 190);
        assert_eq!(c.api_version, ApiVersion::Dated("2026-03".into()));
        assert_eq!(c.time_zone, Some(chrono_tz::America::New_York));
    }

    #[test]
    fn tiers_set_the_burst() {
        for (name, burst) in [
            ("free", 100),
            ("starter", 100),
            ("professional", 190),
            ("enterprise", 190),
            ("api_pack", 250),
        ] {
            let c = HubspotCredentials::from_json(&format!(
                r#"{{"kind":"private_app","access_token":"t","portal_id":1,"tier":"{name}"}}"#
            ))
            .unwrap();
            assert_eq!(c.burst(), burst, "{name}");
        }
    }

    #[test]
    fn the_oauth_set_is_a_token_managers_set() {
        // The token manager reads and rewrites the same fields (crate::tokens::stored).
        let stored = StoredTokens::parse(&SecretString::from(OAUTH)).unwrap();
        assert!(stored.expires_at.is_some());
        let c = HubspotCredentials::from_json(OAUTH).unwrap();
        let back = HubspotCredentials::from_secret(&c.to_secret_json()).unwrap();
        assert_eq!(
            back.oauth.unwrap().client_secret.expose_secret(),
            "cs-SECRET-1"
        );
        assert_eq!(
            (back.portal_id, back.api_version),
            (123, c.api_version.clone())
        );
        assert_eq!((back.tier, back.time_zone), (c.tier, c.time_zone));
        assert!(!c.to_secret_json().expose_secret().contains("extra"));
        let marked = OAUTH.replace(
            r#""extra":1"#,
            r#""needs_reconnect":{"since":"2026-12-07T00:00:00Z","reason":"BAD_REFRESH_TOKEN"}"#,
        );
        let c = HubspotCredentials::from_json(&marked).unwrap();
        assert!(c.needs_reconnect.is_some());
        assert!(
            !c.to_secret_json()
                .expose_secret()
                .contains("needs_reconnect")
        );
    }

    #[test]
    fn api_versions_and_object_paths() {
        assert_eq!(ApiVersion::parse("v3"), Some(ApiVersion::V3));
        assert_eq!(
            ApiVersion::parse(" 2026-09 "),
            Some(ApiVersion::Dated("2026-09".into()))
        );
        for bad in [
            "v4",
            "2026-13",
            "2026-3",
            "26-03",
            "2026/03",
            "",
            "2026-03/../x",
        ] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad}");
        }
        assert_eq!(
            ApiVersion::V3
                .object_segments(ObjectType::LineItems)
                .join("/"),
            "crm/v3/objects/line_items"
        );
        assert_eq!(
            ApiVersion::Dated("2026-03".into())
                .object_segments(ObjectType::Contacts)
                .join("/"),
            "crm/objects/2026-03/contacts"
        );
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let debug = format!("{:?}", HubspotCredentials::from_json(OAUTH).unwrap());
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("cid") && debug.contains("123"));
    }

    #[test]
    fn bad_sets_are_refused_without_quoting_them() {
        for bad in [
            r#""pat-SECRET""#,
            r#"{"access_token":"pat-SECRET","portal_id":1}"#,
            r#"{"kind":"SECRET","access_token":"pat-SECRET","portal_id":1}"#,
            r#"{"kind":"private_app","access_token":"pat-SECRET"}"#,
            r#"{"kind":"private_app","access_token":"pat-SECRET","portal_id":"SECRET"}"#,
            r#"{"kind":"private_app","access_token":"pat-SECRET","portal_id":0}"#,
            r#"{"kind":"private_app","access_token":"   ","portal_id":1}"#,
            r#"{"kind":"private_app","access_token":"pat-SECRET","portal_id":1,"tier":"SECRET"}"#,
            r#"{"kind":"private_app","access_token":"pat-SECRET","portal_id":1,"api_version":"SECRET"}"#,
            r#"{"kind":"private_app","access_token":"pat-SECRET","portal_id":1,"time_zone":"SECRET"}"#,
            r#"{"kind":"private_app","access_token":"pat-SECRET","portal_id":1,"refresh_token":"SECRET"}"#,
            r#"{"kind":"oauth","access_token":"pat-SECRET","portal_id":1,"client_id":"c","client_secret":"SECRET"}"#,
            r#"{"kind":"oauth","access_token":"pat-SECRET","portal_id":1,"refresh_token":"SECRET","client_secret":"SECRET"}"#,
            r#"{"kind":"private_app","access_token":"pat-SECRET","portal_id":1"#,
        ] {
            let err = HubspotCredentials::from_json(bad).unwrap_err();
            assert!(!err.to_string().contains("SECRET"), "{err}");
            assert!(check(bad).is_err());
        }
        assert!(check(r#"{"kind":"private_app","access_token":"t","portal_id":1}"#).is_ok());
    }
}
