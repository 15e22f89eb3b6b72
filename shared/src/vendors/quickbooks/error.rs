//! [`QuickbooksError`]: every way a QuickBooks call fails, classified for the flows (what is
//! worth retrying, what is "not found", what is a stale `SyncToken`).
//!
//! QuickBooks' error bodies vary (docs/vendors/quickbooks.md §3.3, §4): JSON `Fault.Error[]` with capitals,
//! lower-case `fault.error[]` from the gateway on 401, and XML `<IntuitResponse><Fault>` on 429
//! even when JSON was asked for. The status code decides the class; the body only adds the code
//! and message. `code` is a string (`"5010"`).

use std::borrow::Cow;
use std::time::Duration;

use super::client::{cut_chars, transport};
use crate::tokens::TokenError;
use crate::vendors::error::{Reconnect, VendorError};
use crate::vendors::http::ReadError;

/// QuickBooks' error code for a stale `SyncToken` (someone else changed the record first).
const CODE_STALE_OBJECT: &str = "5010";
/// QuickBooks' error code for an object that does not exist (or is gone).
const CODE_NOT_FOUND: &str = "610";
/// QuickBooks' fault code for a display name already taken by another customer, vendor or
/// employee.
const CODE_DUPLICATE_NAME: &str = "6240";

/// A failed QuickBooks call. Every variant that came from an HTTP answer carries QuickBooks'
/// `intuit_tid` (the id Intuit support asks for) when the answer had one.
#[derive(Debug, thiserror::Error)]
pub enum QuickbooksError {
    /// QuickBooks answered with a Fault (JSON or XML).
    #[error(
        "QuickBooks answered HTTP {status}: {message}{}{}{}",
        code.as_deref().map(|c| format!(" (code {c})")).unwrap_or_default(),
        detail.as_deref().filter(|d| !d.is_empty()).map(|d| format!(": {d}")).unwrap_or_default(),
        intuit_tid.as_deref().map(|t| format!(" [intuit_tid {t}]")).unwrap_or_default()
    )]
    Fault {
        /// The HTTP status.
        status: u16,
        /// QuickBooks' error code, e.g. `"5010"`; `None` when the body had no Fault.
        code: Option<String>,
        /// The Fault's `Message`, or the status's reason when there was no Fault.
        message: String,
        /// The Fault's `Detail`, which often names the field or object at fault.
        detail: Option<String>,
        /// Intuit's transaction id for the request, for its support.
        intuit_tid: Option<String>,
        /// `Retry-After`, if QuickBooks sent one (undocumented: UNCONFIRMED that it ever does).
        retry_after: Option<Duration>,
    },
    /// The request did not complete: DNS, connect, TLS, timeout, a dropped connection.
    #[error("QuickBooks request failed: {0}")]
    Transport(String),
    /// A 2xx answer without the expected fields, or a body that is not JSON.
    #[error(
        "unexpected QuickBooks response (HTTP {status}): {reason}{}",
        intuit_tid.as_deref().map(|t| format!(" [intuit_tid {t}]")).unwrap_or_default()
    )]
    UnexpectedBody {
        /// The HTTP status.
        status: u16,
        /// What was wrong with the body (never the body itself).
        reason: String,
        /// Intuit's transaction id for the request, for its support.
        intuit_tid: Option<String>,
    },
    /// An id we were asked to put in a URL path is not a plain id.
    #[error("`{what}` is not a valid QuickBooks id")]
    InvalidId {
        /// Which id, e.g. `realm id`.
        what: &'static str,
    },
    /// An argument cannot be sent safely (e.g. a control character or backslash in a query
    /// literal); says which and why, never quoting the value.
    #[error("invalid QuickBooks request: {0}")]
    InvalidArgument(String),
    /// The configured API base URL cannot have paths appended.
    #[error("invalid QuickBooks base URL `{0}`")]
    InvalidBaseUrl(String),
    /// No usable access token: the credential set is missing or broken (reconnect), or its
    /// refresh failed for now.
    #[error("QuickBooks credentials: {0}")]
    Token(#[from] TokenError),
}

impl QuickbooksError {
    /// The error for an answer with `status` (and `intuit_tid`) whose body could not be read.
    pub(crate) fn reading(status: u16, intuit_tid: Option<String>, e: ReadError) -> Self {
        match e {
            ReadError::Transport(e) => transport(e),
            too_large @ ReadError::TooLarge(_) => QuickbooksError::UnexpectedBody {
                status,
                reason: too_large.to_string(),
                intuit_tid,
            },
        }
    }

    /// Worth retrying later: transport failures, 429 (and the 403 some sandboxes used for
    /// throttling, code 3001), 5xx, transient token failures.
    pub fn is_transient(&self) -> bool {
        match self {
            QuickbooksError::Transport(_) => true,
            QuickbooksError::Fault { status, code, .. } => {
                *status == 429
                    || *status >= 500
                    || code
                        .as_deref()
                        .is_some_and(|c| c.trim_start_matches('0') == "3001")
            }
            QuickbooksError::Token(e) => e.is_transient(),
            _ => false,
        }
    }

    /// Throttled (429 or throttle code 3001): the realm's limit was hit.
    pub fn is_throttled(&self) -> bool {
        matches!(self, QuickbooksError::Fault { status: 429, .. })
            || matches!(self, QuickbooksError::Fault { code: Some(c), .. } if c.trim_start_matches('0') == "3001")
    }

    /// The access token was refused (refresh once, then retry once).
    pub(crate) fn is_unauthorized(&self) -> bool {
        matches!(self, QuickbooksError::Fault { status: 401, .. })
    }

    /// Fault 5010: the `SyncToken` sent is not the current one.
    pub fn is_stale(&self) -> bool {
        self.code() == Some(CODE_STALE_OBJECT)
    }

    /// Fault 610: the object does not exist (deleted, or never did).
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(CODE_NOT_FOUND)
    }

    /// QuickBooks' error code, if the answer had one.
    pub fn code(&self) -> Option<&str> {
        match self {
            QuickbooksError::Fault { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The `intuit_tid` of the answer, for logs and dead letters.
    pub fn intuit_tid(&self) -> Option<&str> {
        match self {
            QuickbooksError::Fault { intuit_tid, .. }
            | QuickbooksError::UnexpectedBody { intuit_tid, .. } => intuit_tid.as_deref(),
            _ => None,
        }
    }

    /// `Retry-After`, when QuickBooks sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            QuickbooksError::Fault { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A stable class for dead letters and dashboards: `quickbooks_<code>` for Faults with a
    /// code, `quickbooks_<status>` without, and the token error's class for token failures.
    fn class(&self) -> String {
        match self {
            QuickbooksError::Fault { code: Some(c), .. } => format!("quickbooks_{c}"),
            QuickbooksError::Fault { status, .. } => format!("quickbooks_{status}"),
            QuickbooksError::Transport(_) => "quickbooks_transport".into(),
            QuickbooksError::UnexpectedBody { .. } => "quickbooks_unexpected_response".into(),
            QuickbooksError::InvalidId { .. } => "invalid_id".into(),
            QuickbooksError::InvalidArgument(_) => "invalid_argument".into(),
            QuickbooksError::InvalidBaseUrl(_) => "configuration".into(),
            QuickbooksError::Token(e) => e.class().into(),
        }
    }
}

/// The header carrying Intuit's transaction id on every answer (docs/vendors/quickbooks.md §3.1).
pub(crate) const INTUIT_TID_HEADER: &str = "intuit_tid";

/// Most characters of a message or detail kept from an error body.
const MAX_TEXT: usize = 500;

/// The code, message and detail of the first error in a QuickBooks error body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FaultBody {
    code: Option<String>,
    message: Option<String>,
    detail: Option<String>,
}

impl QuickbooksError {
    /// The error for a non-2xx answer: status, `intuit_tid` and `Retry-After` from the headers,
    /// code/message/detail from the body (JSON Fault in any capitalisation, or the XML Fault
    /// of a 429) when it has them.
    pub(crate) fn from_response(
        status: u16,
        body: &[u8],
        intuit_tid: Option<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        let fault = parse_fault(body).unwrap_or_default();
        let message = fault
            .message
            .unwrap_or_else(|| default_message(status).into());
        QuickbooksError::Fault {
            status,
            code: fault.code,
            message,
            detail: fault.detail,
            intuit_tid,
            retry_after,
        }
    }
}

fn default_message(status: u16) -> &'static str {
    match status {
        401 => "authentication failed",
        403 => "forbidden",
        404 => "not found",
        429 => "too many requests",
        500..=599 => "server error",
        _ => "request failed",
    }
}

/// The first error of a QuickBooks error body: JSON (`Fault.Error[]`, or the gateway's
/// `fault.error[]`; keys matched case-insensitively, `code` a string or a number) or XML
/// (`<Fault><Error code="…"><Message>…</Message><Detail>…</Detail></Error></Fault>`).
fn parse_fault(body: &[u8]) -> Option<FaultBody> {
    let text = std::str::from_utf8(body)
        .ok()?
        .trim_start_matches('\u{feff}')
        .trim();
    if text.starts_with('<') {
        return parse_xml_fault(text);
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    parse_json_fault(&value)
}

fn get_ci<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn text_of(v: Option<&serde_json::Value>) -> Option<String> {
    let s = match v? {
        serde_json::Value::String(s) => s.trim().to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then(|| clip(&s))
}

fn parse_json_fault(v: &serde_json::Value) -> Option<FaultBody> {
    let fault = get_ci(v, "fault")?;
    let errors = get_ci(fault, "error")?;
    // An array in every documented shape; a single object is accepted too.
    let first = match errors {
        serde_json::Value::Array(items) => items.first()?,
        other => other,
    };
    let body = FaultBody {
        code: text_of(get_ci(first, "code")),
        message: text_of(get_ci(first, "message")),
        detail: text_of(get_ci(first, "detail")),
    };
    (body != FaultBody::default()).then_some(body)
}

/// A deliberately small reader for the one XML shape QuickBooks sends (the 429 Fault): it only
/// looks for the first `<Error` element's `code` attribute and its `Message`/`Detail` texts,
/// and never resolves entities beyond the five predefined ones.
fn parse_xml_fault(xml: &str) -> Option<FaultBody> {
    let start = find_element(xml, "Error")?;
    let rest = &xml[start..];
    let tag_end = rest.find('>')?;
    let open_tag = &rest[..tag_end];
    let code = attribute(open_tag, "code").map(|c| clip(&unescape(c)));
    // A self-closing `<Error …/>` has no texts; otherwise the first Message/Detail after it
    // are its own (the shape has nothing else in between).
    let inner = if open_tag.ends_with('/') {
        ""
    } else {
        &rest[tag_end + 1..]
    };
    let body = FaultBody {
        code: code.filter(|c| !c.is_empty()),
        message: element_text(inner, "Message"),
        detail: element_text(inner, "Detail"),
    };
    (body != FaultBody::default()).then_some(body)
}

/// The byte offset of the first `<name` (optionally namespace-prefixed) followed by a space,
/// `>` or `/`.
fn find_element(xml: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = xml[from..].find('<') {
        let at = from + i;
        let tag = &xml[at + 1..];
        let local = tag
            .split([' ', '>', '/', '\t', '\n', '\r'])
            .next()
            .unwrap_or_default();
        let local = local.rsplit(':').next().unwrap_or_default();
        if local == name {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    while let Some(i) = rest.find(name) {
        let before_ok = i == 0 || rest.as_bytes()[i - 1].is_ascii_whitespace();
        let after = rest[i + name.len()..].trim_start();
        if before_ok && let Some(after) = after.strip_prefix('=') {
            let after = after.trim_start();
            let quote = after.chars().next()?;
            if quote == '"' || quote == '\'' {
                let value = &after[1..];
                return value.find(quote).map(|end| &value[..end]);
            }
        }
        rest = &rest[i + name.len()..];
    }
    None
}

fn element_text(xml: &str, name: &str) -> Option<String> {
    let start = find_element(xml, name)?;
    let rest = &xml[start..];
    let open_end = rest.find('>')?;
    if rest[..open_end].ends_with('/') {
        return None;
    }
    let content = &rest[open_end + 1..];
    let end = content.find('<').unwrap_or(content.len());
    let text = unescape(content[..end].trim());
    (!text.is_empty()).then(|| clip(&text))
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// At most [`MAX_TEXT`] characters, cut on a character boundary.
fn clip(s: &str) -> String {
    let cut = cut_chars(s, MAX_TEXT);
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        s.to_string()
    }
}

impl VendorError for QuickbooksError {
    const VENDOR: &'static str = "QuickBooks";
    const CONNECT: &'static str = "ml-connector connect quickbooks";

    fn is_transient(&self) -> bool {
        QuickbooksError::is_transient(self)
    }

    fn reconnect(&self) -> Option<Reconnect> {
        if matches!(self, QuickbooksError::Token(TokenError::Broken { .. })) {
            Some(Reconnect::Refused)
        } else if self.is_unauthorized() {
            Some(Reconnect::Unauthorized)
        } else {
            None
        }
    }

    fn class(&self) -> Cow<'static, str> {
        QuickbooksError::class(self).into()
    }

    fn retry_after(&self) -> Option<Duration> {
        QuickbooksError::retry_after(self)
    }

    fn request_id(&self) -> Option<&str> {
        self.intuit_tid()
    }

    /// What to do about a permanent QuickBooks failure.
    fn advice(&self) -> Cow<'static, str> {
        let advice = match self {
            QuickbooksError::Fault { status, code, .. } => match (code.as_deref(), *status) {
                (Some(CODE_STALE_OBJECT), _) => {
                    "; the customer kept changing in QuickBooks while we updated it: replay to \
                     re-read and re-apply"
                }
                (Some(CODE_NOT_FOUND), _) => "; the record no longer exists in QuickBooks",
                (Some(CODE_DUPLICATE_NAME), _) => {
                    "; another customer, vendor or employee already has this display name: \
                     rename one in QuickBooks, then replay"
                }
                (_, 403) => {
                    "; the app may not access this company (scope or subscription): reconnect \
                     with the accounting scope (`ml-connector connect quickbooks`)"
                }
                (_, 400) => "; QuickBooks refused the request as invalid (see the detail)",
                _ => "",
            },
            QuickbooksError::UnexpectedBody { .. } => {
                "; QuickBooks answered in a shape we do not read: report it with the intuit_tid"
            }
            QuickbooksError::InvalidId { .. } | QuickbooksError::InvalidArgument(_) => {
                "; the event carries a value QuickBooks cannot take: nothing to retry"
            }
            QuickbooksError::InvalidBaseUrl(_) => "; fix QUICKBOOKS_API_BASE",
            _ => "",
        };
        Cow::Borrowed(advice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_faults_in_both_capitalisations() {
        let stale = br#"{"Fault":{"Error":[{"Message":"Stale Object Error","Detail":"You and Jane were working on this at the same time.","code":"5010","element":""}],"type":"ValidationFault"},"time":"2018-03-20T20:15:59.571-07:00"}"#;
        let f = parse_fault(stale).unwrap();
        assert_eq!(f.code.as_deref(), Some("5010"));
        assert_eq!(f.message.as_deref(), Some("Stale Object Error"));
        assert!(f.detail.unwrap().contains("same time"));
        let gateway = br#"{"fault":{"error":[{"message":"message=AuthenticationFailed; errorCode=003200; statusCode=401","detail":"Token expired","code":3200}],"type":"AUTHENTICATION"}}"#;
        let f = parse_fault(gateway).unwrap();
        assert_eq!(f.code.as_deref(), Some("3200"));
        assert_eq!(f.detail.as_deref(), Some("Token expired"));
        assert!(parse_fault(b"{}").is_none());
        assert!(parse_fault(b"{\"Fault\":{\"Error\":[]}}").is_none());
        assert!(parse_fault(b"<html>oops</html>").is_none());
        assert!(parse_fault(b"\xff\xfe").is_none());
        assert!(parse_fault(b"").is_none());
    }

    #[test]
    fn the_xml_throttle_fault() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<IntuitResponse time="2026-03-02T10:00:00.000-08:00" xmlns="http://schema.intuit.com/finance/v3"><Fault type="SERVICE">
  <Error code="3001"><Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>
  <Detail>The request limit was reached.  Try again later</Detail></Error></Fault></IntuitResponse>"#;
        let f = parse_fault(xml).unwrap();
        assert_eq!(f.code.as_deref(), Some("3001"));
        assert!(f.message.unwrap().contains("ThrottleExceeded"));
        assert_eq!(
            f.detail.as_deref(),
            Some("The request limit was reached.  Try again later")
        );
        let e = QuickbooksError::from_response(
            429,
            xml,
            Some("1-abc".into()),
            Some(Duration::from_secs(7)),
        );
        assert!(e.is_transient() && e.is_throttled());
        assert_eq!(e.intuit_tid(), Some("1-abc"));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.class(), "quickbooks_3001");
        // Odd shapes give what they can, never a panic.
        let odd = parse_fault(br#"<q:Error code='x&amp;y'><Message/></q:Error>"#).unwrap();
        assert_eq!(odd.code.as_deref(), Some("x&y"));
        for bad in [
            &b"<Error"[..],
            b"<Error code=",
            b"<Error code=\"1",
            b"<",
            b"<Errors/>",
        ] {
            let _ = parse_fault(bad);
        }
    }

    #[test]
    fn answers_without_a_fault_keep_the_status() {
        let e = QuickbooksError::from_response(503, b"<html>down</html>", None, None);
        assert!(e.is_transient());
        assert_eq!(e.class(), "quickbooks_503");
        assert!(e.to_string().contains("server error"), "{e}");
        let e = QuickbooksError::from_response(
            400,
            br#"{"Fault":{"Error":[{"Message":"Object Not Found","code":"610"}]}}"#,
            Some("tid-1".into()),
            None,
        );
        assert!(e.is_not_found() && !e.is_transient());
        assert!(e.to_string().contains("[intuit_tid tid-1]"), "{e}");
    }

    #[test]
    fn long_texts_are_clipped_on_a_char_boundary() {
        let long = "é".repeat(MAX_TEXT + 10);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), MAX_TEXT + 1);
    }
}
