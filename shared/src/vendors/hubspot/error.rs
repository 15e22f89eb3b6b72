//! [`HubspotError`]: a failed HubSpot call, classified for the worker harness
//! (docs/vendors/hubspot.md §4).

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::vendors::error::VendorError;

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

    /// Worth retrying later: transport, 429 (but not `DAILY`, which holds), 423, 477, 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            HubspotError::Transport(_) | HubspotError::DailyLimit { .. } => true,
            HubspotError::Api { status, .. } => matches!(status, 423 | 429 | 477) || *status >= 500,
            _ => false,
        }
    }

    /// A stable label for dead letters and dashboards.
    pub fn class(&self) -> &'static str {
        match self {
            HubspotError::DailyLimit { .. } => "daily_limit",
            _ if self.is_transient() => "transient",
            HubspotError::Api { status: 401, .. } => "auth",
            HubspotError::Api { status: 403, .. } => "forbidden",
            HubspotError::Api { status: 404, .. } => "not_found",
            HubspotError::Api { status: 409, .. } => "conflict",
            HubspotError::Api { .. } | HubspotError::InvalidArgument(_) => "validation",
            HubspotError::UnexpectedBody { .. } => "unexpected_response",
            HubspotError::Credentials(_) => "credentials",
            HubspotError::Transport(_) => "transient",
        }
    }
}

impl VendorError for HubspotError {
    const VENDOR: &'static str = "HubSpot";
    const CONNECT: &'static str = "ml-connector connect hubspot";

    fn is_transient(&self) -> bool {
        HubspotError::is_transient(self)
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
