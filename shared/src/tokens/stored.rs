//! Reading the token fields of a stored credential set and writing a new pair back into it,
//! keeping every other (vendor-specific) field as it was.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::TokenSet;

/// The fields of a credential set the token manager needs.
#[derive(Clone, Deserialize)]
pub struct StoredTokens {
    /// The bearer token last obtained.
    pub access_token: SecretString,
    /// The token the next refresh spends.
    pub refresh_token: SecretString,
    /// When the access token expires; `None` when unknown (it is then used until a 401).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Written when the vendor refused the refresh token ([`mark_needs_reconnect`]). Cleared
    /// by rewriting the set (`ml-connector connect`).
    #[serde(default, deserialize_with = "NeedsReconnect::deserialize_mark")]
    needs_reconnect: Option<NeedsReconnect>,
}

/// The `needs_reconnect` mark in a stored credential set, `{"since": RFC 3339, "reason": "…"}`:
/// the vendor refused the refresh token. Every vendor's set carries it the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NeedsReconnect {
    /// When the refusal happened (RFC 3339), if recorded.
    pub since: Option<String>,
    /// The vendor's reason for the refusal, if recorded.
    pub reason: Option<String>,
}

impl NeedsReconnect {
    /// Reads the field: any non-null value marks the set (one written by hand, e.g. `true`,
    /// too); blank or missing `since`/`reason` are unknown.
    pub(crate) fn deserialize_mark<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Self>, D::Error> {
        let mark = Option::<Value>::deserialize(d)?.filter(|v| !v.is_null());
        Ok(mark.map(|v| {
            let field = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            NeedsReconnect {
                since: field("since"),
                reason: field("reason"),
            }
        }))
    }

    /// ` since <since> (<reason>)`, each part only when known: what follows "needs reconnect"
    /// in a message.
    pub fn details(&self) -> String {
        let since = self.since.as_ref().map(|s| format!(" since {s}"));
        let reason = self.reason.as_ref().map(|r| format!(" ({r})"));
        format!(
            "{}{}",
            since.unwrap_or_default(),
            reason.unwrap_or_default()
        )
    }
}

impl StoredTokens {
    /// Why the set is marked as needing reconnect (`since`, `reason`), if it is.
    pub fn reconnect_reason(&self) -> Option<String> {
        let mark = self.needs_reconnect.as_ref()?;
        Some(format!("marked as needing reconnect{}", mark.details()))
    }

    /// Parses the secret's JSON. The error says only where parsing failed: serde's messages
    /// can quote input, and the input is a secret.
    pub fn parse(json: &SecretString) -> Result<Self, String> {
        serde_json::from_str(json.expose_secret()).map_err(|e| {
            format!(
                "not a credential set ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            )
        })
    }

    /// Whether the access token expires within `margin` of `now`. Unknown expiry counts as
    /// not expiring: the vendor's 401 triggers the refresh then.
    pub(crate) fn expires_within(&self, now: DateTime<Utc>, margin: chrono::Duration) -> bool {
        expires_within(self.expires_at, now, margin)
    }
}

/// [`StoredTokens::expires_within`] for an expiry kept elsewhere (the manager's cache).
pub(super) fn expires_within(
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    margin: chrono::Duration,
) -> bool {
    at.is_some_and(|at| at - now <= margin)
}

impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTokens")
            .field("access_token", &"[REDACTED]")
            .field("refresh_token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("needs_reconnect", &self.needs_reconnect)
            .finish()
    }
}

/// `credentials` (a JSON object) with `access_token`, `refresh_token`, `expires_at` and
/// `refresh_expires_at` replaced by `tokens`; every other field is kept. An expiry is removed
/// when the new one is unknown, so a stale expiry never outlives its token.
pub(super) fn merge_tokens(
    credentials: &SecretString,
    tokens: &TokenSet,
) -> Result<SecretString, String> {
    edit_object(credentials, |object| {
        object.insert(
            "access_token".into(),
            tokens.access_token.expose_secret().into(),
        );
        object.insert(
            "refresh_token".into(),
            tokens.refresh_token.expose_secret().into(),
        );
        match tokens.expires_at {
            Some(at) => object.insert("expires_at".into(), at.to_rfc3339().into()),
            None => object.remove("expires_at"),
        };
        match tokens.refresh_expires_at {
            Some(at) => object.insert("refresh_expires_at".into(), at.to_rfc3339().into()),
            None => object.remove("refresh_expires_at"),
        };
    })
}

/// `credentials` (a JSON object) with `needs_reconnect: {"since", "reason"}` added; every
/// other field, the tokens included, is kept.
pub(super) fn mark_needs_reconnect(
    credentials: &SecretString,
    since: DateTime<Utc>,
    reason: &str,
) -> Result<SecretString, String> {
    edit_object(credentials, |object| {
        object.insert(
            "needs_reconnect".into(),
            serde_json::json!({ "since": since.to_rfc3339(), "reason": reason }),
        );
    })
}

/// `credentials` (a JSON object) after `change`; every field it leaves alone is kept.
fn edit_object(
    credentials: &SecretString,
    change: impl FnOnce(&mut Map<String, Value>),
) -> Result<SecretString, String> {
    let mut object = match serde_json::from_str::<Value>(credentials.expose_secret()) {
        Ok(Value::Object(map)) => map,
        _ => return Err("the stored credential set is not a JSON object".into()),
    };
    change(&mut object);
    Ok(SecretString::from(Value::Object(object).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_other_fields_and_replaces_the_tokens() {
        let stored = SecretString::from(
            r#"{"access_token":"a1","refresh_token":"r1","expires_at":"2026-03-02T17:04:11Z","client_id":"cid","realm_id":"9"}"#,
        );
        let new = TokenSet {
            access_token: "a2".into(),
            refresh_token: "r2".into(),
            expires_at: None,
            refresh_expires_at: None,
        };
        let merged = merge_tokens(&stored, &new).unwrap();
        let v: Value = serde_json::from_str(merged.expose_secret()).unwrap();
        assert_eq!(v["access_token"], "a2");
        assert_eq!(v["refresh_token"], "r2");
        assert_eq!(v["client_id"], "cid");
        assert_eq!(v["realm_id"], "9");
        assert!(v.get("expires_at").is_none());
        assert!(v.get("refresh_expires_at").is_none());
        let at: DateTime<Utc> = "2026-06-10T16:04:11Z".parse().unwrap();
        let with_both = TokenSet {
            expires_at: Some(at),
            refresh_expires_at: Some(at),
            ..new.clone()
        };
        let v: Value =
            serde_json::from_str(merge_tokens(&stored, &with_both).unwrap().expose_secret())
                .unwrap();
        assert_eq!(v["refresh_expires_at"], "2026-06-10T16:04:11+00:00");
        assert_eq!(v["expires_at"], "2026-06-10T16:04:11+00:00");
        assert!(merge_tokens(&SecretString::from("[1]"), &new).is_err());
    }

    #[test]
    fn marking_keeps_the_tokens_and_reads_back() {
        let stored = SecretString::from(r#"{"access_token":"a1","refresh_token":"r1","x":1}"#);
        assert!(
            StoredTokens::parse(&stored)
                .unwrap()
                .reconnect_reason()
                .is_none()
        );
        let at: DateTime<Utc> = "2026-03-02T17:04:11Z".parse().unwrap();
        let marked = mark_needs_reconnect(&stored, at, "invalid_grant").unwrap();
        let v: Value = serde_json::from_str(marked.expose_secret()).unwrap();
        assert_eq!(v["refresh_token"], "r1");
        assert_eq!(v["x"], 1);
        assert_eq!(v["needs_reconnect"]["reason"], "invalid_grant");
        let reason = StoredTokens::parse(&marked)
            .unwrap()
            .reconnect_reason()
            .unwrap();
        assert!(reason.contains("2026-03-02T17:04:11") && reason.contains("invalid_grant"));
        let null = SecretString::from(
            r#"{"access_token":"a","refresh_token":"r","needs_reconnect":null}"#,
        );
        assert!(
            StoredTokens::parse(&null)
                .unwrap()
                .reconnect_reason()
                .is_none()
        );
        assert!(mark_needs_reconnect(&SecretString::from("[]"), at, "x").is_err());
    }

    #[test]
    fn parse_errors_do_not_quote_the_secret() {
        let err =
            StoredTokens::parse(&SecretString::from(r#"{"access_token":"SECRET"}"#)).unwrap_err();
        assert!(!err.contains("SECRET"), "{err}");
        let ok = StoredTokens::parse(&SecretString::from(
            r#"{"access_token":"a","refresh_token":"r"}"#,
        ))
        .unwrap();
        assert!(!ok.expires_within(Utc::now(), chrono::Duration::hours(1)));
        assert!(!format!("{ok:?}").contains("\"a\""));
    }
}
