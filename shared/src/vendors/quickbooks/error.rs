//! [`QuickbooksError`]: every way a QuickBooks call fails, classified for the flows (what is
//! worth retrying, what is "not found", what is a stale `SyncToken`).
//!
//! QuickBooks' error bodies vary (quickbooks.md §3.3, §4): JSON `Fault.Error[]` with capitals,
//! lower-case `fault.error[]` from the gateway on 401, and XML `<IntuitResponse><Fault>` on 429
//! even when JSON was asked for. The status code decides the class; the body only adds the code
//! and message. `code` is a string (`"5010"`).

use std::time::Duration;

use crate::tokens::TokenError;

/// QuickBooks' error code for a stale `SyncToken` (someone else changed the record first).
pub const CODE_STALE_OBJECT: &str = "5010";
/// QuickBooks' error code for an object that does not exist (or is gone).
pub const CODE_NOT_FOUND: &str = "610";
/// QuickBooks' authentication failure code.
pub const CODE_AUTH: &str = "3200";

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
        status: u16,
        /// QuickBooks' error code, e.g. `"5010"`; `None` when the body had no Fault.
        code: Option<String>,
        message: String,
        detail: Option<String>,
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
        status: u16,
        reason: String,
        intuit_tid: Option<String>,
    },
    /// An id we were asked to put in a URL path is not a plain id.
    #[error("`{what}` is not a valid QuickBooks id")]
    InvalidId { what: &'static str },
    /// The configured API base URL cannot have paths appended.
    #[error("invalid QuickBooks base URL `{0}`")]
    InvalidBaseUrl(String),
    /// The credential set is missing a field the client needs (e.g. `realm_id`). Never quotes
    /// the secret.
    #[error("QuickBooks credential set: {0}")]
    Credentials(String),
    /// No usable access token: the credential set is missing or broken (reconnect), or its
    /// refresh failed for now.
    #[error("QuickBooks credentials: {0}")]
    Token(#[from] TokenError),
}

impl QuickbooksError {
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
    pub fn is_unauthorized(&self) -> bool {
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
    pub fn class(&self) -> String {
        match self {
            QuickbooksError::Fault { code: Some(c), .. } => format!("quickbooks_{c}"),
            QuickbooksError::Fault { status, .. } => format!("quickbooks_{status}"),
            QuickbooksError::Transport(_) => "quickbooks_transport".into(),
            QuickbooksError::UnexpectedBody { .. } => "quickbooks_unexpected_response".into(),
            QuickbooksError::InvalidId { .. } => "invalid_id".into(),
            QuickbooksError::InvalidBaseUrl(_) => "configuration".into(),
            QuickbooksError::Credentials(_) => "credentials_invalid".into(),
            QuickbooksError::Token(e) => e.class().into(),
        }
    }
}
