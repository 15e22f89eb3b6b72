//! [`MailchimpError`]: a failed Mailchimp call, classified for the worker harness.

use std::borrow::Cow;
use std::time::Duration;

use super::models::Problem;
use crate::vendors::error::VendorError;
use crate::vendors::http::ReadError;

/// A failed Mailchimp API call.
#[derive(Debug, thiserror::Error)]
pub enum MailchimpError {
    /// Mailchimp answered with an error document (or a bare error status).
    #[error("Mailchimp answered HTTP {status}: {title}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Api {
        /// The HTTP status.
        status: u16,
        /// The problem document's `title` (e.g. `Member Exists`), or the status's reason.
        title: String,
        /// The problem document's `detail`; may be empty.
        detail: String,
        /// `instance` / `X-Request-Id`, for Mailchimp support.
        request_id: Option<String>,
        /// `Retry-After`, when sent (UNCONFIRMED that Mailchimp ever sends it).
        retry_after: Option<Duration>,
        /// Field errors of an "Invalid Resource" answer, as `field: message`.
        fields: Vec<String>,
    },
    /// The request did not complete: DNS, connect, TLS, timeout, a dropped connection.
    #[error("Mailchimp request failed: {0}")]
    Transport(#[source] reqwest::Error),
    /// A 2xx answer that is not the expected JSON.
    #[error("unexpected Mailchimp response (HTTP {status}): {reason}")]
    UnexpectedBody {
        /// The HTTP status.
        status: u16,
        /// What was wrong with the body (never the body itself).
        reason: String,
    },
    /// The credential set cannot be used (no key, no data centre, unreadable secret).
    #[error("Mailchimp credentials: {0}")]
    Credentials(String),
    /// No connection slot of the per-key limiter freed up in time (every slot busy with a
    /// slow call); worth retrying later.
    #[error("no Mailchimp connection slot free within {0:?} (per-key limit reached)")]
    LimiterTimeout(Duration),
    /// A call argument cannot be put in a request (an empty id, say); a bug in the caller.
    #[error("invalid Mailchimp call: {0}")]
    InvalidArgument(String),
    /// The configured base URL cannot be used.
    #[error("Mailchimp base URL is not usable: {0}")]
    InvalidBaseUrl(String),
}

/// Titles of the permanent member errors (docs/vendors/mailchimp.md §2.5).
pub(crate) const COMPLIANCE_STATE: &str = "Member In Compliance State";
pub(crate) const FORGOTTEN_EMAIL: &str = "Forgotten Email Not Subscribed";

impl MailchimpError {
    /// The error for an answer with `status` whose body could not be read.
    pub(crate) fn reading(status: u16, e: ReadError) -> Self {
        match e {
            ReadError::Transport(e) => MailchimpError::Transport(e),
            too_large @ ReadError::TooLarge(_) => MailchimpError::UnexpectedBody {
                status,
                reason: too_large.to_string(),
            },
        }
    }

    /// Builds the error for a non-2xx answer from its status, problem document (if any) and
    /// headers' request id / retry-after.
    pub(crate) fn from_problem(
        status: u16,
        problem: Option<Problem>,
        request_id: Option<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        let problem = problem.unwrap_or_default();
        MailchimpError::Api {
            status,
            title: if problem.title.is_empty() {
                format!("HTTP {status}")
            } else {
                problem.title
            },
            detail: problem.detail,
            request_id: problem.instance.or(request_id),
            retry_after,
            fields: problem
                .errors
                .into_iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect(),
        }
    }

    /// Worth retrying later: transport failures, 429, 5xx, and a 403 without an error document
    /// (Mailchimp's own plugin treats that as rate limiting, docs/vendors/mailchimp.md §5).
    pub fn is_transient(&self) -> bool {
        match self {
            MailchimpError::Transport(_) | MailchimpError::LimiterTimeout(_) => true,
            MailchimpError::Api { status, title, .. } => {
                *status == 429 || *status >= 500 || (*status == 403 && title == "HTTP 403")
            }
            _ => false,
        }
    }

    /// A stable label for dead letters and dashboards.
    pub fn class(&self) -> &'static str {
        match self {
            _ if self.is_transient() => "transient",
            MailchimpError::Api { title, .. } if title == COMPLIANCE_STATE => "compliance_state",
            MailchimpError::Api { title, .. } if title == FORGOTTEN_EMAIL => "forgotten_email",
            MailchimpError::Api { status: 401, .. } => "auth",
            MailchimpError::Api { status: 403, .. } => "forbidden",
            MailchimpError::Api { status: 404, .. } => "not_found",
            MailchimpError::Api { .. } => "validation",
            MailchimpError::UnexpectedBody { .. } => "unexpected_response",
            MailchimpError::InvalidArgument(_) => "validation",
            MailchimpError::Credentials(_) | MailchimpError::InvalidBaseUrl(_) => "credentials",
            MailchimpError::Transport(_) | MailchimpError::LimiterTimeout(_) => "transient",
        }
    }

    /// Mailchimp's id for the failed request (`instance` or `X-Request-Id`), for its support.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            MailchimpError::Api { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// How long Mailchimp asked us to wait, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            MailchimpError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The status Mailchimp answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            MailchimpError::Api { status, .. } => Some(*status),
            MailchimpError::UnexpectedBody { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl VendorError for MailchimpError {
    const VENDOR: &'static str = "Mailchimp";
    const CONNECT: &'static str = "ml-connector connect mailchimp";

    fn is_transient(&self) -> bool {
        MailchimpError::is_transient(self)
    }

    fn class(&self) -> Cow<'static, str> {
        MailchimpError::class(self).into()
    }

    fn retry_after(&self) -> Option<Duration> {
        MailchimpError::retry_after(self)
    }

    fn request_id(&self) -> Option<&str> {
        MailchimpError::request_id(self)
    }

    /// Mailchimp's field errors, and what to do for the member-state classes, so the dead
    /// letter explains itself instead of causing a retry storm.
    fn advice(&self) -> Cow<'static, str> {
        let hint = match MailchimpError::class(self) {
            "compliance_state" => {
                "; the person unsubscribed, bounced or is under compliance review, so Mailchimp \
                 will not add them back: nothing to retry until they re-subscribe"
            }
            "forgotten_email" => {
                "; the address was permanently deleted from the audience and can only come back \
                 through a Mailchimp signup form"
            }
            "auth" => "; check or replace the Mailchimp API key / OAuth token",
            _ => "",
        };
        match self {
            MailchimpError::Api { fields, .. } if !fields.is_empty() => {
                format!(" ({}){hint}", fields.join("; ")).into()
            }
            _ => Cow::Borrowed(hint),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, title: &str) -> MailchimpError {
        MailchimpError::from_problem(
            status,
            (!title.is_empty()).then(|| Problem {
                title: title.into(),
                status,
                ..Problem::default()
            }),
            Some("req-1".into()),
            None,
        )
    }

    #[test]
    fn classes() {
        assert_eq!(api(400, COMPLIANCE_STATE).class(), "compliance_state");
        assert_eq!(api(400, FORGOTTEN_EMAIL).class(), "forgotten_email");
        assert_eq!(api(400, "Invalid Resource").class(), "validation");
        assert_eq!(api(429, "Too Many Requests").class(), "transient");
        assert_eq!(api(503, "").class(), "transient");
        assert_eq!(api(403, "").class(), "transient");
        assert_eq!(api(403, "Forbidden").class(), "forbidden");
        assert_eq!(api(401, "API Key Invalid").class(), "auth");
        assert_eq!(api(400, "").request_id(), Some("req-1"));
    }
}
