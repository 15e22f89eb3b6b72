//! [`VendorError`]: what the flows need to know of any vendor's error to decide its fate, so
//! `flows::errors::from_vendor` maps every vendor the same way (docs/architecture.md,
//! "Failures"). Each vendor's error type implements it beside its own definition.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// Why a connection needs a person to re-authorise it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconnect {
    /// The refresh token was refused (the credential set is marked broken).
    Refused,
    /// The vendor answered 401 although the client had just refreshed its token.
    Unauthorized,
}

/// A vendor call's failure, as the flows classify it.
pub trait VendorError: fmt::Display {
    /// The vendor as people spell it, e.g. `QuickBooks`.
    const VENDOR: &'static str;
    /// The command that re-authorises the vendor's credentials.
    const CONNECT: &'static str;

    /// Worth retrying later (transport, 429, 5xx, a transient token failure).
    fn is_transient(&self) -> bool;

    /// When the connection needs re-authorising; `None` for every other failure.
    fn reconnect(&self) -> Option<Reconnect> {
        None
    }

    /// A stable class for dead letters and dashboards.
    fn class(&self) -> Cow<'static, str>;

    /// The vendor's `Retry-After`, when it sent one.
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// When the vendor takes calls again, for a quota that holds every call until a reset
    /// (HubSpot's `DAILY` limit, Marketo's 607): the event waits, it is not retried.
    fn hold_until(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        None
    }

    /// The id the vendor gave its answer, for support to trace.
    fn request_id(&self) -> Option<&str> {
        None
    }

    /// What to do about a permanent failure (and any detail the message lacks), appended to
    /// the message: empty, or starting with `; ` or ` (`.
    fn advice(&self) -> Cow<'static, str> {
        Cow::Borrowed("")
    }
}
