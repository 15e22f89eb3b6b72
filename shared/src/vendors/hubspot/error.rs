//! [`HubspotError`]: a failed HubSpot call, classified for the worker harness
//! (docs/vendors/hubspot.md §4).

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};

use serde_json::Value;

use crate::tokens::TokenError;
use crate::vendors::error::{Reconnect, VendorError};

/// The longest `message` kept from an error body: HubSpot's validation messages can be long
/// (they list every invalid property), and the message ends up in dead letters.
const MAX_MESSAGE_CHARS: usize = 500;

/// The burst window when a `TEN_SECONDLY_ROLLING` 429 carries no interval header
/// (docs/vendors/hubspot.md §4.1: "e.g. `10000`").
pub(crate) const BURST_WINDOW: Duration = Duration::from_secs(10);

/// How long a search 429 (`secondly`) waits: the Node SDK's 1 s (docs/vendors/hubspot.md §4.2).
const SECONDLY_WAIT: Duration = Duration::from_secs(1);

/// How long a 423 (record locked) waits: "at least 2 s" (docs/vendors/hubspot.md §4.3).
const LOCKED_WAIT: Duration = Duration::from_secs(2);

/// Which HubSpot limit a 429 hit (its `policyName`, docs/vendors/hubspot.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatePolicy {
    /// `TEN_SECONDLY_ROLLING`: the burst limit; wait out the window.
    TenSecondly,
    /// The search limit (`You have reached your secondly limit.`).
    Secondly,
    /// `DAILY`: the portal's daily quota; nothing works until its midnight.
    Daily,
    /// A 429 with a policy this build does not know.
    Other,
}

/// A failed HubSpot API call.
#[derive(Debug, thiserror::Error)]
pub enum HubspotError {
    /// HubSpot answered with an error status (or a 207 item error, with the item's status).
    #[error("HubSpot answered HTTP {status}{}: {message}", category.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Api {
        /// The HTTP status (for a 207 item, the item's own status when given, else 400).
        status: u16,
        /// `category` (e.g. `VALIDATION_ERROR`, `MISSING_SCOPES`, `RATE_LIMIT`).
        category: Option<String>,
        /// `subCategory`, when given.
        sub_category: Option<String>,
        /// `message` (never a token; HubSpot's messages name fields and values).
        message: String,
        /// `correlationId`, for HubSpot support.
        correlation_id: Option<String>,
        /// A 429's `policyName`.
        policy: Option<RatePolicy>,
        /// `Retry-After` (477, and 429 when sent).
        retry_after: Option<Duration>,
        /// For a `DAILY` 429: when the portal's day ends (its midnight), if known.
        resets_at: Option<DateTime<Utc>>,
    },
    /// The request did not complete: DNS, connect, TLS, timeout, a dropped connection.
    #[error("HubSpot request failed: {0}")]
    Transport(#[source] reqwest::Error),
    /// A 2xx answer that is not the expected JSON, or a batch answer missing an input.
    #[error("unexpected HubSpot response (HTTP {status}): {reason}")]
    UnexpectedBody {
        /// The HTTP status.
        status: u16,
        /// What was wrong (never the body itself).
        reason: String,
    },
    /// The credential set cannot be used (no token, unreadable secret, refresh refused).
    #[error("HubSpot credentials: {0}")]
    Credentials(String),
    /// The portal's daily quota is spent (learned from an earlier 429 `DAILY`): no call was
    /// made. Held until `until`.
    #[error("HubSpot's daily API limit for this portal is spent until {until}")]
    DailyLimit {
        /// The portal's next midnight.
        until: DateTime<Utc>,
    },
    /// A call argument cannot be put in a request (an empty id, more than 100 inputs).
    #[error("invalid HubSpot call: {0}")]
    InvalidArgument(String),
    /// No usable OAuth access token: the credential set is missing, unreadable, or broken
    /// (HubSpot refused the refresh token, `BAD_REFRESH_TOKEN`: reconnect).
    #[error("HubSpot token: {0}")]
    Token(#[from] TokenError),
    /// This process's share of the portal's rate limits had no room within the wait (the
    /// whole-request timeout): nothing was sent.
    #[error(
        "no HubSpot request slot for the portal within {0:?} (this process's share of its limits)"
    )]
    LimiterTimeout(Duration),
}

impl HubspotError {
    /// The HTTP status HubSpot answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            HubspotError::Api { status, .. } | HubspotError::UnexpectedBody { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// HubSpot's `category`, if it gave one.
    pub fn category(&self) -> Option<&str> {
        match self {
            HubspotError::Api { category, .. } => category.as_deref(),
            _ => None,
        }
    }

    /// The portal refuses the write for what it is, not for its content: a 403 (missing scope,
    /// a feature off or in beta, no payment processing). The vendor notes do not say how a
    /// portal without invoice writes or payment processing answers (docs/vendors/hubspot.md
    /// §3.6, §3.7, UNCONFIRMED): any 403 reads as "unavailable here".
    pub fn is_unavailable(&self) -> bool {
        self.status() == Some(403)
    }

    /// When a `DAILY` limit lifts, if this is one.
    pub fn daily_limit_until(&self) -> Option<DateTime<Utc>> {
        match self {
            HubspotError::DailyLimit { until } => Some(*until),
            HubspotError::Api {
                policy: Some(RatePolicy::Daily),
                resets_at,
                ..
            } => *resets_at,
            _ => None,
        }
    }

    /// Worth retrying later: transport, 429 (but not `DAILY`, which holds), 423, 477, 5xx, a
    /// local limiter wait, a transient token failure, and a 2xx answer that does not read.
    ///
    /// `UnexpectedBody` is transient on purpose: it is what a batch answer missing one of our
    /// inputs (no result and no error for it — an answer still `PENDING`/`PROCESSING`, or cut
    /// short) becomes, and every write the product makes is an idempotent upsert or update, so
    /// sending the input again is safe; a permanent error would drop the event for a HubSpot
    /// glitch. A model that never reads (our bug) still ends in the dead-letter queue once the
    /// receives run out, with its own class (`unexpected_response`).
    pub fn is_transient(&self) -> bool {
        match self {
            HubspotError::Transport(_)
            | HubspotError::DailyLimit { .. }
            | HubspotError::LimiterTimeout(_)
            | HubspotError::UnexpectedBody { .. } => true,
            HubspotError::Api { status, .. } => matches!(status, 423 | 429 | 477) || *status >= 500,
            HubspotError::Token(e) => e.is_transient(),
            _ => false,
        }
    }

    /// A stable label for dead letters and dashboards.
    pub fn class(&self) -> &'static str {
        match self {
            HubspotError::DailyLimit { .. } => "daily_limit",
            HubspotError::UnexpectedBody { .. } => "unexpected_response",
            HubspotError::Token(e) => e.class(),
            _ if self.is_transient() => "transient",
            HubspotError::Api { status: 401, .. } => "auth",
            HubspotError::Api { status: 403, .. } => "forbidden",
            HubspotError::Api { status: 404, .. } => "not_found",
            HubspotError::Api { status: 409, .. } => "conflict",
            HubspotError::Api { .. } | HubspotError::InvalidArgument(_) => "validation",
            HubspotError::Credentials(_) => "credentials",
            HubspotError::Transport(_) | HubspotError::LimiterTimeout(_) => "transient",
        }
    }
}

impl RatePolicy {
    /// The 429's policy from its `policyName`, else from its message (the search limit has
    /// only a message, docs/vendors/hubspot.md §4.2).
    fn of(policy_name: Option<&str>, message: &str) -> Self {
        match policy_name.map(str::trim) {
            Some("TEN_SECONDLY_ROLLING") => return RatePolicy::TenSecondly,
            Some("DAILY") => return RatePolicy::Daily,
            Some("SECONDLY") => return RatePolicy::Secondly,
            _ => {}
        }
        let message = message.to_ascii_lowercase();
        if message.contains("ten_secondly_rolling") {
            RatePolicy::TenSecondly
        } else if message.contains("daily limit") {
            RatePolicy::Daily
        } else if message.contains("secondly limit") {
            RatePolicy::Secondly
        } else {
            RatePolicy::Other
        }
    }
}

/// What an error answer's headers say, besides its status.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ErrorHeaders {
    /// `Retry-After` in seconds (477; 429 when sent).
    pub(crate) retry_after: Option<Duration>,
    /// `X-HubSpot-RateLimit-Interval-Milliseconds`: the burst window.
    pub(crate) interval: Option<Duration>,
}

/// HubSpot's error body (docs/vendors/hubspot.md §4.3), every field optional: only `message`,
/// `correlationId` and `category` are documented as required, and even they are read leniently.
/// `subCategory` is a string in the answers seen, but typed loosely in the spec.
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrorBody {
    pub(crate) message: Option<String>,
    pub(crate) category: Option<String>,
    pub(crate) sub_category: Option<String>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) policy_name: Option<String>,
    /// The item's own `status` in a 207's `errors[]` (a number, or a numeric string).
    pub(crate) status: Option<u16>,
    /// `context.objectWriteTraceId` (a batch item error).
    pub(crate) trace_ids: Vec<String>,
    /// `context.ids` (a batch item error).
    pub(crate) ids: Vec<String>,
}

impl ErrorBody {
    /// Reads an error object; anything missing or oddly typed is `None`.
    pub(crate) fn from_value(v: &Value) -> Self {
        let text = |key: &str| {
            v.get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let strings = |key: &str| -> Vec<String> {
            match v.pointer(&format!("/context/{key}")) {
                Some(Value::Array(items)) => items.iter().filter_map(id_text).collect(),
                Some(one) => id_text(one).into_iter().collect(),
                None => Vec::new(),
            }
        };
        let status = match v.get("status") {
            Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        ErrorBody {
            message: text("message"),
            category: text("category"),
            sub_category: text("subCategory"),
            correlation_id: text("correlationId"),
            policy_name: text("policyName"),
            status,
            trace_ids: strings("objectWriteTraceId"),
            ids: strings("ids"),
        }
    }

    /// Reads an error answer's bytes; a body that is not a JSON object reads as empty.
    fn from_bytes(body: &[u8]) -> Self {
        match serde_json::from_slice::<Value>(body) {
            Ok(v @ Value::Object(_)) => Self::from_value(&v),
            _ => ErrorBody::default(),
        }
    }
}

/// An id in a context list: a string or a number.
pub(crate) fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// At most [`MAX_MESSAGE_CHARS`] characters of `s`, cut on a character boundary.
fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

impl HubspotError {
    /// The error for a non-2xx answer: `status`, its body (read leniently, never quoted
    /// whole: a body that is not HubSpot's JSON becomes "HTTP {status}") and its headers.
    ///
    /// Waits for the harness (docs/vendors/hubspot.md §4.2, §4.3): `Retry-After` when sent;
    /// else a `TEN_SECONDLY_ROLLING` 429 waits out the burst window (the interval header, else
    /// 10 s), a search 429 1 s and a 423 2 s. A `DAILY` 429 gets no `resets_at` here: the
    /// client fills it in from the portal's time zone.
    pub(crate) fn from_response(status: u16, body: &[u8], headers: ErrorHeaders) -> Self {
        Self::from_body(status, ErrorBody::from_bytes(body), headers)
    }

    /// [`HubspotError::from_response`] for an already-read body (also a 207's item error, with
    /// the item's status).
    pub(crate) fn from_body(status: u16, body: ErrorBody, headers: ErrorHeaders) -> Self {
        let message = body
            .message
            .as_deref()
            .map(cut)
            .unwrap_or_else(|| format!("HTTP {status}"));
        let policy = (status == 429).then(|| RatePolicy::of(body.policy_name.as_deref(), &message));
        let wait = match (status, policy) {
            (429, Some(RatePolicy::TenSecondly | RatePolicy::Other)) => {
                Some(headers.interval.unwrap_or(BURST_WINDOW))
            }
            (429, Some(RatePolicy::Secondly)) => Some(SECONDLY_WAIT),
            (423, _) => Some(LOCKED_WAIT),
            _ => None,
        };
        HubspotError::Api {
            status,
            category: body.category,
            sub_category: body.sub_category,
            message,
            correlation_id: body.correlation_id,
            policy,
            retry_after: headers.retry_after.or(wait),
            resets_at: None,
        }
    }

    /// HubSpot's `correlationId`, if it gave one.
    pub fn correlation_id(&self) -> Option<&str> {
        match self {
            HubspotError::Api { correlation_id, .. } => correlation_id.as_deref(),
            _ => None,
        }
    }

    /// The 429's policy, if this is a 429.
    pub fn policy(&self) -> Option<RatePolicy> {
        match self {
            HubspotError::Api { policy, .. } => *policy,
            _ => None,
        }
    }

    /// Whether the object does not exist (404, or a batch item's `OBJECT_NOT_FOUND`).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404) || self.category() == Some("OBJECT_NOT_FOUND")
    }
}

impl VendorError for HubspotError {
    const VENDOR: &'static str = "HubSpot";
    const CONNECT: &'static str = "ml-connector connect hubspot";

    fn is_transient(&self) -> bool {
        HubspotError::is_transient(self)
    }

    /// A refused refresh token (the token manager marked the set broken) or a 401: only a
    /// person fixes either. A 401 counts for static tokens too (a private-app token revoked or
    /// rotated, its creator removed, docs/vendors/hubspot.md §1, §4.3): events wait in the
    /// queue for the reconnect instead of dead-lettering; for an OAuth set the client has
    /// already refreshed once and retried (`call_with_token`).
    fn reconnect(&self) -> Option<Reconnect> {
        match self {
            HubspotError::Token(TokenError::Broken { .. }) => Some(Reconnect::Refused),
            HubspotError::Api { status: 401, .. } => Some(Reconnect::Unauthorized),
            _ => None,
        }
    }

    fn class(&self) -> Cow<'static, str> {
        HubspotError::class(self).into()
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            HubspotError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn hold_until(&self) -> Option<DateTime<Utc>> {
        self.daily_limit_until()
    }

    fn request_id(&self) -> Option<&str> {
        match self {
            HubspotError::Api { correlation_id, .. } => correlation_id.as_deref(),
            _ => None,
        }
    }

    fn advice(&self) -> Cow<'static, str> {
        Cow::Borrowed(match HubspotError::class(self) {
            "auth" => {
                "; the token was revoked or expired: reconnect with `ml-connector connect hubspot`"
            }
            "forbidden" => {
                "; the token lacks a scope or the portal lacks the feature: `ml-connector ping` \
                 lists what the connection needs"
            }
            _ => "",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_HEADERS: ErrorHeaders = ErrorHeaders {
        retry_after: None,
        interval: None,
    };

    fn parse(status: u16, body: &str) -> HubspotError {
        HubspotError::from_response(status, body.as_bytes(), NO_HEADERS)
    }

    #[test]
    fn the_ten_secondly_429_waits_out_the_window() {
        // docs/vendors/hubspot.md §4.2, verbatim.
        let e = parse(
            429,
            r#"{"status":"error","message":"You have reached your ten_secondly_rolling limit.",
             "errorType":"RATE_LIMIT","correlationId":"c-1","policyName":"TEN_SECONDLY_ROLLING"}"#,
        );
        assert_eq!(e.policy(), Some(RatePolicy::TenSecondly));
        assert!(e.is_transient());
        assert_eq!(e.class(), "transient");
        assert_eq!(VendorError::retry_after(&e), Some(Duration::from_secs(10)));
        assert_eq!(VendorError::request_id(&e), Some("c-1"));
        assert!(VendorError::hold_until(&e).is_none());
        let e = HubspotError::from_response(
            429,
            br#"{"message":"x","policyName":"TEN_SECONDLY_ROLLING"}"#,
            ErrorHeaders {
                retry_after: None,
                interval: Some(Duration::from_secs(1)),
            },
        );
        assert_eq!(VendorError::retry_after(&e), Some(Duration::from_secs(1)));
        let e = HubspotError::from_response(
            429,
            br#"{"message":"x","policyName":"TEN_SECONDLY_ROLLING"}"#,
            ErrorHeaders {
                retry_after: Some(Duration::from_secs(3)),
                interval: None,
            },
        );
        assert_eq!(VendorError::retry_after(&e), Some(Duration::from_secs(3)));
    }

    #[test]
    fn the_daily_429_holds_once_its_reset_is_known() {
        let e = parse(
            429,
            r#"{"status":"error","message":"You have reached your daily limit.",
             "errorType":"RATE_LIMIT","correlationId":"c-2","policyName":"DAILY"}"#,
        );
        assert_eq!(e.policy(), Some(RatePolicy::Daily));
        assert_eq!(VendorError::retry_after(&e), None);
        // Told apart by its message alone, too.
        let e = parse(429, r#"{"message":"You have reached your daily limit."}"#);
        assert_eq!(e.policy(), Some(RatePolicy::Daily));
        let until: DateTime<Utc> = "2026-12-08T05:00:00Z".parse().unwrap();
        let held = HubspotError::DailyLimit { until };
        assert_eq!(VendorError::hold_until(&held), Some(until));
        assert_eq!(held.class(), "daily_limit");
        assert!(held.is_transient());
    }

    #[test]
    fn the_search_429_is_told_by_its_message() {
        let e = parse(
            429,
            r#"{"status":"error","message":"You have reached your secondly limit.","correlationId":"c-3"}"#,
        );
        assert_eq!(e.policy(), Some(RatePolicy::Secondly));
        assert_eq!(VendorError::retry_after(&e), Some(Duration::from_secs(1)));
        let e = parse(429, "<html>Too Many</html>");
        assert_eq!(e.policy(), Some(RatePolicy::Other));
        assert!(e.is_transient());
        assert!(!e.to_string().contains("html"), "{e}");
    }

    #[test]
    fn every_status_of_the_table_is_classified() {
        // docs/vendors/hubspot.md §4.3.
        let body = r#"{"status":"error","message":"m","correlationId":"c","category":"VALIDATION_ERROR",
            "subCategory":"sub","context":{"x":["y"]},"errors":[{"message":"e","code":"c"}],"links":{}}"#;
        let e = parse(400, body);
        assert_eq!(e.category(), Some("VALIDATION_ERROR"));
        assert!(matches!(&e, HubspotError::Api { sub_category: Some(s), .. } if s == "sub"));
        assert_eq!(e.class(), "validation");
        assert!(!e.is_transient());
        let auth = parse(
            401,
            r#"{"status":"error","message":"expired","category":"EXPIRED_AUTHENTICATION"}"#,
        );
        assert_eq!(auth.class(), "auth");
        assert_eq!(auth.reconnect(), Some(Reconnect::Unauthorized));
        let scope = parse(403, r#"{"message":"m","category":"MISSING_SCOPES"}"#);
        assert!(scope.is_unavailable() && !scope.is_transient());
        assert_eq!(scope.class(), "forbidden");
        assert_eq!(scope.reconnect(), None);
        assert_eq!(parse(404, "{}").class(), "not_found");
        assert!(parse(404, "{}").is_not_found());
        assert_eq!(parse(409, r#"{"message":"exists"}"#).class(), "conflict");
        assert_eq!(parse(414, "").class(), "validation");
        let locked = parse(423, r#"{"message":"locked"}"#);
        assert!(locked.is_transient());
        assert_eq!(
            VendorError::retry_after(&locked),
            Some(Duration::from_secs(2))
        );
        let moving = HubspotError::from_response(
            477,
            b"{}",
            ErrorHeaders {
                retry_after: Some(Duration::from_secs(3600)),
                interval: None,
            },
        );
        assert!(moving.is_transient());
        assert_eq!(
            VendorError::retry_after(&moving),
            Some(Duration::from_secs(3600))
        );
        for s in [500, 502, 503, 504, 521] {
            assert!(parse(s, "").is_transient(), "{s}");
        }
    }

    #[test]
    fn bodies_are_read_leniently_and_never_quoted_whole() {
        let e = parse(
            400,
            r#"{"message": 5, "category": null, "status": "error"}"#,
        );
        assert_eq!(e.to_string(), "HubSpot answered HTTP 400: HTTP 400");
        let e = parse(502, "upstream jane@example.com failed");
        assert!(!e.to_string().contains("jane"), "{e}");
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(2000));
        match parse(400, &long) {
            HubspotError::Api { message, .. } => assert!(message.chars().count() <= 501),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn item_errors_carry_their_context() {
        let v: Value = serde_json::from_str(
            r#"{"status":"error","category":"VALIDATION_ERROR","message":"bad",
                "context":{"ids":["a@x.com", 7],"objectWriteTraceId":["3"]}}"#,
        )
        .unwrap();
        let b = ErrorBody::from_value(&v);
        assert_eq!(b.ids, vec!["a@x.com".to_string(), "7".to_string()]);
        assert_eq!(b.trace_ids, vec!["3".to_string()]);
        assert_eq!(b.status, None);
        let v: Value =
            serde_json::from_str(r#"{"status":"404","category":"OBJECT_NOT_FOUND"}"#).unwrap();
        assert_eq!(ErrorBody::from_value(&v).status, Some(404));
    }

    #[test]
    fn token_failures_keep_their_class_and_reconnect() {
        let broken = HubspotError::Token(TokenError::Broken {
            name: "hs".into(),
            vendor: "HubSpot",
            message: "BAD_REFRESH_TOKEN".into(),
        });
        assert_eq!(broken.reconnect(), Some(Reconnect::Refused));
        assert_eq!(broken.class(), "connection_broken");
        let busy = HubspotError::Token(TokenError::Busy { name: "hs".into() });
        assert!(busy.is_transient());
        let missing = HubspotError::UnexpectedBody {
            status: 207,
            reason: "input 2 missing".into(),
        };
        assert!(missing.is_transient());
        assert_eq!(missing.class(), "unexpected_response");
        assert!(HubspotError::LimiterTimeout(Duration::from_secs(1)).is_transient());
    }
}
