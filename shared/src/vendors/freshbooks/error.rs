//! [`FreshbooksError`] and the readers for FreshBooks' several error body shapes.

use serde_json::Value;

use crate::vendors::form::truncate;
use crate::vendors::http::ReadError;

/// Longest message kept from an error body, so a proxy's HTML page does not flood the logs.
const MAX_MESSAGE: usize = 500;

/// A failed FreshBooks API call.
#[derive(Debug, thiserror::Error)]
pub enum FreshbooksError {
    /// FreshBooks answered with an error: a non-2xx status, or a 2xx whose body holds errors
    /// (older endpoints do that). `errno` is FreshBooks' error number when the body has one.
    #[error("FreshBooks answered HTTP {status}{}: {message}", errno.map(|e| format!(" (errno {e})")).unwrap_or_default())]
    Api {
        /// The HTTP status.
        status: u16,
        /// FreshBooks' error number, when the body has one.
        errno: Option<i64>,
        /// The body's error message (truncated), or the status's reason when it has none.
        message: String,
    },
    /// The request did not complete: DNS, connect, TLS, timeout, a dropped connection.
    #[error("FreshBooks request failed: {0}")]
    Transport(#[source] reqwest::Error),
    /// A 2xx answer without the expected fields, or a body that is not JSON.
    #[error("unexpected FreshBooks response (HTTP {status}): {reason}")]
    UnexpectedBody {
        /// The HTTP status.
        status: u16,
        /// What was wrong with the body (never the body itself).
        reason: String,
    },
    /// An id we were asked to put in a URL path is not a plain id.
    #[error("`{what}` is not a valid FreshBooks id")]
    InvalidId {
        /// Which id, e.g. `account_id`.
        what: &'static str,
    },
    /// The configured API base URL cannot have paths appended.
    #[error("invalid FreshBooks base URL `{0}`")]
    InvalidBaseUrl(String),
    /// No usable access token: the credential set is missing or broken (re-authorise), or its
    /// refresh failed for now.
    #[error("FreshBooks credentials: {0}")]
    Token(#[from] crate::tokens::TokenError),
}

impl FreshbooksError {
    /// The error for an answer with `status` whose body could not be read.
    pub(crate) fn reading(status: u16, e: ReadError) -> Self {
        match e {
            ReadError::Transport(e) => FreshbooksError::Transport(e),
            too_large @ ReadError::TooLarge(_) => FreshbooksError::UnexpectedBody {
                status,
                reason: too_large.to_string(),
            },
        }
    }

    /// Worth retrying later: transport failures, 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            FreshbooksError::Transport(_) => true,
            FreshbooksError::Api { status, .. } => *status == 429 || *status >= 500,
            FreshbooksError::Token(e) => e.is_transient(),
            _ => false,
        }
    }

    /// The access token was refused (refresh once, then retry once).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, FreshbooksError::Api { status: 401, .. })
    }
}

/// The error a non-2xx answer stands for, whatever the body looks like.
pub(crate) fn from_error_response(status: u16, body: &[u8]) -> FreshbooksError {
    let parsed = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| error_in_body(&v));
    let (errno, message) = parsed.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() {
            "(empty body)".to_string()
        } else {
            truncate(text, MAX_MESSAGE).to_string()
        };
        (None, message)
    });
    FreshbooksError::Api {
        status,
        errno,
        message,
    }
}

/// `(errno, message)` from any of FreshBooks' error shapes, or `None` if `v` is not one:
/// - events API, flat: `{"errno":404,"message":"…","details":["…"]}`;
/// - accounting: `{"response":{"errors":[{"errno":1012,"message":"…"}]}}`;
/// - google-rpc: `{"code":3,"message":"…","details":[{"reason":"1012"} | {"fieldViolations":[…]}]}`;
/// - OAuth: `{"error":"invalid_token","error_description":"…"}`.
pub(crate) fn error_in_body(v: &Value) -> Option<(Option<i64>, String)> {
    let obj = v.as_object()?;
    let message_of = |o: &serde_json::Map<String, Value>| {
        o.get("message").and_then(Value::as_str).map(str::to_string)
    };

    if let Some(errno) = obj.get("errno").and_then(as_number) {
        let mut message = message_of(obj).unwrap_or_default();
        for detail in details(obj).filter_map(Value::as_str) {
            append(&mut message, detail);
        }
        return Some((Some(errno), cap(message)));
    }

    if let Some(first) = v
        .pointer("/response/errors")
        .and_then(Value::as_array)
        .and_then(|errors| errors.first())
        .and_then(Value::as_object)
    {
        let errno = first.get("errno").and_then(as_number);
        let message = message_of(first).unwrap_or_default();
        return Some((errno, cap(message)));
    }

    if obj.contains_key("code")
        && let Some(mut message) = message_of(obj)
    {
        let mut errno = None;
        for detail in details(obj).filter_map(Value::as_object) {
            if errno.is_none() {
                errno = detail.get("reason").and_then(as_number);
            }
            let violations = detail.get("fieldViolations").and_then(Value::as_array);
            for violation in violations.into_iter().flatten() {
                let field = violation.get("field").and_then(Value::as_str).unwrap_or("");
                let description = violation
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                append(&mut message, &format!("{field}: {description}"));
            }
        }
        return Some((errno, cap(message)));
    }

    if let Some(error) = obj.get("error").and_then(Value::as_str) {
        let message = match obj.get("error_description").and_then(Value::as_str) {
            Some(description) => format!("{error}: {description}"),
            None => error.to_string(),
        };
        return Some((None, cap(message)));
    }
    None
}

fn details(obj: &serde_json::Map<String, Value>) -> impl Iterator<Item = &Value> {
    obj.get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A number, or a string holding one (google-rpc `reason`s are strings).
fn as_number(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

fn append(message: &mut String, part: &str) {
    if !message.is_empty() {
        message.push_str("; ");
    }
    message.push_str(part);
}

fn cap(message: String) -> String {
    if message.len() <= MAX_MESSAGE {
        message
    } else {
        truncate(&message, MAX_MESSAGE).to_string()
    }
}

impl crate::vendors::error::VendorError for FreshbooksError {
    const VENDOR: &'static str = "FreshBooks";
    const CONNECT: &'static str = "ml-connector connect";

    fn is_transient(&self) -> bool {
        FreshbooksError::is_transient(self)
    }

    fn reconnect(&self) -> Option<crate::vendors::error::Reconnect> {
        use crate::vendors::error::Reconnect;
        match self {
            FreshbooksError::Token(crate::tokens::TokenError::Broken { .. }) => {
                Some(Reconnect::Refused)
            }
            FreshbooksError::Api { status: 401, .. } => Some(Reconnect::Unauthorized),
            _ => None,
        }
    }

    /// `freshbooks_<status>` for an answer, the token error's class for token failures.
    fn class(&self) -> std::borrow::Cow<'static, str> {
        match self {
            FreshbooksError::Token(token) => token.class().into(),
            FreshbooksError::Api { status, .. } => format!("freshbooks_{status}").into(),
            FreshbooksError::UnexpectedBody { .. } => "freshbooks_unexpected_response".into(),
            FreshbooksError::InvalidId { .. } => "invalid_id".into(),
            FreshbooksError::InvalidBaseUrl(_) => "configuration".into(),
            _ => "freshbooks".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, body: &str) -> (u16, Option<i64>, String) {
        match from_error_response(status, body.as_bytes()) {
            FreshbooksError::Api {
                status,
                errno,
                message,
            } => (status, errno, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_every_documented_shape() {
        assert_eq!(
            api(
                404,
                r#"{"errno":404,"message":"Requested resource could not be found."}"#
            ),
            (
                404,
                Some(404),
                "Requested resource could not be found.".into()
            )
        );
        assert_eq!(
            api(
                422,
                r#"{"errno":422,"message":"Invalid","details":["event: Value error, Unrecognized event."]}"#
            ),
            (
                422,
                Some(422),
                "Invalid; event: Value error, Unrecognized event.".into()
            )
        );
        assert_eq!(
            api(
                400,
                r#"{"code":3,"message":"Invalid data","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"event","description":"Unrecognized event."}]}]}"#
            ),
            (400, None, "Invalid data; event: Unrecognized event.".into())
        );
        assert_eq!(
            api(
                404,
                r#"{"code":5,"message":"Client not found.","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"1012"}]}"#
            ),
            (404, Some(1012), "Client not found.".into())
        );
        assert_eq!(
            api(
                404,
                r#"{"response":{"errors":[{"errno":1012,"field":"userid","message":"Client not found."}]}}"#
            ),
            (404, Some(1012), "Client not found.".into())
        );
        assert_eq!(
            api(
                401,
                r#"{"error":"invalid_token","error_description":"The access token is invalid","state":"unauthorized"}"#
            ),
            (
                401,
                None,
                "invalid_token: The access token is invalid".into()
            )
        );
    }

    #[test]
    fn falls_back_to_the_text_of_unknown_bodies() {
        assert_eq!(
            api(502, "<html>Bad gateway</html>").2,
            "<html>Bad gateway</html>"
        );
        assert_eq!(api(503, "  ").2, "(empty body)");
        assert_eq!(api(500, &"x".repeat(10_000)).2.len(), MAX_MESSAGE);
        assert_eq!(api(500, r#"{"unrelated":true}"#).2, r#"{"unrelated":true}"#);
    }

    #[test]
    fn classifies_for_retries() {
        let e = |status| FreshbooksError::Api {
            status,
            errno: None,
            message: String::new(),
        };
        assert!(e(429).is_transient() && e(503).is_transient());
        assert!(!e(404).is_transient() && !e(401).is_transient());
        assert!(e(401).is_unauthorized() && !e(403).is_unauthorized());
        assert_eq!(e(404).to_string(), "FreshBooks answered HTTP 404: ");
        let with_errno = FreshbooksError::Api {
            status: 404,
            errno: Some(1012),
            message: "Client not found.".into(),
        };
        assert_eq!(
            with_errno.to_string(),
            "FreshBooks answered HTTP 404 (errno 1012): Client not found."
        );
    }
}
