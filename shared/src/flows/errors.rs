//! Vendor and store errors as [`HandlerError`]s: the one place a flow decides what is worth
//! retrying (docs/architecture.md, "Failures").
//!
//! Transient failures carry the vendor's `Retry-After` and request id so the harness can honour
//! the first and support can trace the second. Permanent failures carry a stable class (for
//! dashboards and dead-letter queries) and a message that says what to fix.

use std::time::Duration;

use crate::ports::PortError;
use crate::vendors::error::{Reconnect, VendorError};
use crate::worker::HandlerError;

/// How long an event waits in its queue while its connection is broken, per receive.
const BROKEN_CONNECTION_RETRY: Duration = Duration::from_secs(15 * 60);

/// A failed vendor call, the same way for every vendor ([`VendorError`]).
///
/// Transient failures keep the vendor's `Retry-After` and request id. A broken connection — the
/// refresh token refused, or a 401 although the client had just refreshed — needs a person to
/// re-authorise. docs/architecture.md ("Tokens") says such events stay in the queue, so nothing
/// is dropped and nothing needs replaying once the user reconnects: they are transient with a
/// long `Retry-After` (`BROKEN_CONNECTION_RETRY`), and the `TokenRefreshFailed` alarm tells
/// the operator. Only after the queue's receive count runs out (hours) do they reach the
/// dead-letter queue, replayable as any other. Everything else is permanent, with the vendor's
/// stable class and its advice on what to fix.
pub fn from_vendor<E: VendorError>(e: E) -> HandlerError {
    let err = if let Some(until) = e.hold_until() {
        HandlerError::transient(e.to_string()).with_hold_until(until)
    } else if e.is_transient() {
        transient(e.to_string(), e.retry_after())
    } else {
        match e.reconnect() {
            Some(Reconnect::Refused) => broken(e.to_string()),
            Some(Reconnect::Unauthorized) => {
                unauthorized_although_refreshed(&e, E::VENDOR, E::CONNECT)
            }
            None => HandlerError::permanent(e.class(), format!("{e}{}", e.advice())),
        }
    };
    with_request_id(err, e.request_id())
}

fn broken(message: String) -> HandlerError {
    HandlerError::transient(message).with_retry_after(BROKEN_CONNECTION_RETRY)
}

/// A 401 right after the client refreshed its token: the grant itself is gone, so the
/// connection is [`broken`] until someone re-authorises with `connect`.
fn unauthorized_although_refreshed(
    e: &dyn std::fmt::Display,
    vendor: &str,
    connect: &str,
) -> HandlerError {
    broken(format!(
        "connection broken: {e} although the token was just refreshed; re-authorise {vendor} \
         for this connection's credentials (`{connect}`)"
    ))
}

/// A failure worth retrying, after the vendor's `Retry-After` when it sent one.
fn transient(message: String, retry_after: Option<Duration>) -> HandlerError {
    let err = HandlerError::transient(message);
    match retry_after {
        Some(after) => err.with_retry_after(after),
        None => err,
    }
}

/// `err` with the id the vendor gave its answer, when there is one, for support to trace.
fn with_request_id(err: HandlerError, id: Option<&str>) -> HandlerError {
    match id {
        Some(id) => err.with_vendor_request_id(id),
        None => err,
    }
}

/// A state-store failure (id map, connections): the store being unreachable is worth retrying;
/// corrupt or missing state is not.
pub(crate) fn from_port(e: PortError) -> HandlerError {
    match e {
        PortError::Backend { .. } => HandlerError::transient(format!("state store: {e}")),
        PortError::Corrupt { .. } | PortError::NotFound { .. } => {
            HandlerError::permanent("state_store", e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::tokens::TokenError;
    use crate::vendors::freshbooks::FreshbooksError;
    use crate::vendors::mailchimp::MailchimpError;
    use crate::vendors::mailchimp::error::{COMPLIANCE_STATE, FORGOTTEN_EMAIL};
    use crate::vendors::mailchimp::models::{Problem, ProblemField};
    use crate::vendors::quickbooks::QuickbooksError;

    fn fb(status: u16) -> FreshbooksError {
        FreshbooksError::Api {
            status,
            errno: Some(1012),
            message: "Client not found.".into(),
        }
    }

    fn mc(status: u16, title: &str, detail: &str) -> MailchimpError {
        MailchimpError::from_problem(
            status,
            Some(Problem {
                title: title.into(),
                status,
                detail: detail.into(),
                instance: Some("req-9".into()),
                errors: vec![],
            }),
            None,
            Some(Duration::from_secs(3)),
        )
    }

    #[test]
    fn freshbooks_errors_are_classified() {
        let t = from_vendor(fb(503));
        assert!(t.is_transient());
        assert!(from_vendor(fb(429)).is_transient());

        let auth = from_vendor(fb(401));
        assert!(
            auth.is_transient(),
            "a broken connection waits in the queue"
        );
        assert_eq!(auth.retry_after(), Some(BROKEN_CONNECTION_RETRY));
        assert!(auth.message().contains("re-authorise FreshBooks"), "{auth}");

        let refused = from_vendor(FreshbooksError::Token(TokenError::Broken {
            name: "fb".into(),
            vendor: "FreshBooks",
            message: "the refresh token was refused".into(),
        }));
        assert!(refused.is_transient());
        assert_eq!(refused.retry_after(), Some(BROKEN_CONNECTION_RETRY));
        let missing = from_vendor(FreshbooksError::Token(TokenError::NotFound {
            name: "fb".into(),
            secret: "credentials/fb".into(),
        }));
        assert!(!missing.is_transient());
        assert!(
            missing.message().contains("ml-connector connect"),
            "{missing}"
        );

        let nf = from_vendor(fb(404));
        assert_eq!(nf.class(), "freshbooks_404");
        assert!(nf.message().contains("errno 1012"), "{nf}");
        assert!(nf.message().contains("Client not found."), "{nf}");

        let body = from_vendor(FreshbooksError::UnexpectedBody {
            status: 200,
            reason: "not JSON".into(),
        });
        assert_eq!(body.class(), "freshbooks_unexpected_response");
        assert_eq!(
            from_vendor(FreshbooksError::InvalidId { what: "client id" }).class(),
            "invalid_id"
        );
    }

    #[test]
    fn mailchimp_transient_errors_keep_retry_after_and_request_id() {
        let t = from_vendor(mc(429, "Too Many Requests", "slow down"));
        assert!(t.is_transient());
        assert_eq!(t.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(t.vendor_request_id(), Some("req-9"));
    }

    #[test]
    fn mailchimp_member_states_are_permanent_with_a_reason() {
        let c = from_vendor(mc(
            400,
            COMPLIANCE_STATE,
            "jane@example.com is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be subscribed.",
        ));
        assert!(!c.is_transient());
        assert_eq!(c.class(), "compliance_state");
        assert!(c.message().contains("is in a compliance state"), "{c}");
        assert!(c.message().contains("nothing to retry"), "{c}");
        assert_eq!(c.vendor_request_id(), Some("req-9"));

        let f = from_vendor(mc(400, FORGOTTEN_EMAIL, "was permanently deleted"));
        assert_eq!(f.class(), "forgotten_email");
        assert!(f.message().contains("signup form"), "{f}");
    }

    #[test]
    fn mailchimp_validation_errors_list_the_fields() {
        let e = MailchimpError::from_problem(
            400,
            Some(Problem {
                title: "Invalid Resource".into(),
                status: 400,
                detail: "The resource submitted could not be validated.".into(),
                instance: None,
                errors: vec![ProblemField {
                    field: "email_address".into(),
                    message: "This value should be a valid email.".into(),
                }],
            }),
            Some("hdr-1".into()),
            None,
        );
        let h = from_vendor(e);
        assert_eq!(h.class(), "validation");
        assert!(
            h.message()
                .contains("email_address: This value should be a valid email."),
            "{h}"
        );
        assert_eq!(h.vendor_request_id(), Some("hdr-1"));
        let creds = from_vendor(MailchimpError::Credentials("no data centre".into()));
        assert_eq!(creds.class(), "credentials");
    }

    fn qb(status: u16, code: &str) -> QuickbooksError {
        QuickbooksError::Fault {
            status,
            code: Some(code.into()),
            message: "m".into(),
            detail: None,
            intuit_tid: Some("tid-7".into()),
            retry_after: Some(Duration::from_secs(4)),
        }
    }

    #[test]
    fn quickbooks_errors_are_classified() {
        let t = from_vendor(qb(429, "3001"));
        assert!(t.is_transient());
        assert_eq!(t.retry_after(), Some(Duration::from_secs(4)));
        assert_eq!(t.vendor_request_id(), Some("tid-7"));
        assert!(from_vendor(QuickbooksError::Transport("reset".into())).is_transient());

        let auth = from_vendor(qb(401, "3200"));
        assert!(auth.is_transient());
        assert_eq!(auth.retry_after(), Some(BROKEN_CONNECTION_RETRY));
        assert!(auth.message().contains("connect quickbooks"), "{auth}");
        assert_eq!(auth.vendor_request_id(), Some("tid-7"));
        let refused = from_vendor(QuickbooksError::Token(TokenError::Broken {
            name: "qb".into(),
            vendor: "QuickBooks",
            message: "invalid_grant".into(),
        }));
        assert_eq!(refused.retry_after(), Some(BROKEN_CONNECTION_RETRY));

        let stale = from_vendor(qb(400, "5010"));
        assert!(!stale.is_transient());
        assert_eq!(stale.class(), "quickbooks_5010");
        assert!(stale.message().contains("re-read"), "{stale}");
        assert_eq!(stale.vendor_request_id(), Some("tid-7"));
        let dup = from_vendor(qb(400, "6240"));
        assert!(dup.message().contains("display name"), "{dup}");
        let id = from_vendor(QuickbooksError::InvalidId {
            what: "customer id",
        });
        assert_eq!(id.class(), "invalid_id");
        let missing = from_vendor(QuickbooksError::Token(TokenError::NotFound {
            name: "qb".into(),
            secret: "credentials/qb".into(),
        }));
        assert_eq!(missing.class(), "credentials_missing");
        assert!(!missing.is_transient());
    }

    #[test]
    fn store_errors() {
        let t = from_port(PortError::Backend {
            service: "dynamodb",
            message: "timeout".into(),
        });
        assert!(t.is_transient());
        let p = from_port(PortError::Corrupt {
            what: "id mapping",
            message: "bad json".into(),
        });
        assert_eq!(p.class(), "state_store");
    }
}
