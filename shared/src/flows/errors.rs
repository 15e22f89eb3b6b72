//! Vendor and store errors as [`HandlerError`]s: the one place a flow decides what is worth
//! retrying (docs/architecture.md, "Failures").
//!
//! Transient failures carry the vendor's `Retry-After` and request id so the harness can honour
//! the first and support can trace the second. Permanent failures carry a stable class (for
//! dashboards and dead-letter queries) and a message that says what to fix.

use std::time::Duration;

use crate::ports::PortError;
use crate::tokens::TokenError;
use crate::vendors::freshbooks::FreshbooksError;
use crate::vendors::mailchimp::MailchimpError;
use crate::vendors::quickbooks::QuickbooksError;
use crate::vendors::quickbooks::error::{CODE_DUPLICATE_NAME, CODE_NOT_FOUND, CODE_STALE_OBJECT};
use crate::worker::HandlerError;

/// How long an event waits in its queue while its connection is broken, per receive.
pub const BROKEN_CONNECTION_RETRY: Duration = Duration::from_secs(15 * 60);

/// A failed FreshBooks read. Transport failures, 429 and 5xx are transient.
///
/// A broken connection — the refresh token refused, or a 401 although the client had just
/// refreshed — needs a person to re-authorise. docs/architecture.md ("Tokens") says such events stay in
/// the queue, so nothing is dropped and nothing needs replaying once the user reconnects: they
/// are transient with a long `Retry-After` ([`BROKEN_CONNECTION_RETRY`]), and the
/// `TokenRefreshFailed` alarm tells the operator. Only after the queue's receive count runs out
/// (hours) do they reach the dead-letter queue, replayable as any other.
///
/// A missing or unreadable credential set is permanent (class `credentials`): it is a setup
/// mistake the dead letter explains. Everything else is permanent as `freshbooks_<status>`
/// with FreshBooks' errno.
pub fn from_freshbooks(e: FreshbooksError) -> HandlerError {
    if e.is_transient() {
        return HandlerError::transient(e.to_string());
    }
    // `if let`s rather than an exhaustive match: the vendor module may grow variants, which
    // then fall to the generic permanent class below.
    if let FreshbooksError::Token(token) = &e {
        return match token {
            TokenError::Broken { .. } => broken(e.to_string()),
            _ => HandlerError::permanent(token.class(), e.to_string()),
        };
    }
    if let FreshbooksError::Api { status, .. } = &e {
        return if *status == 401 {
            unauthorized_although_refreshed(&e, "FreshBooks", "ml-connector connect")
        } else {
            HandlerError::permanent(format!("freshbooks_{status}"), e.to_string())
        };
    }
    let class = match &e {
        FreshbooksError::UnexpectedBody { .. } => "freshbooks_unexpected_response",
        FreshbooksError::InvalidId { .. } => "invalid_id",
        FreshbooksError::InvalidBaseUrl(_) => "configuration",
        _ => "freshbooks",
    };
    HandlerError::permanent(class, e.to_string())
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

/// A failed Mailchimp call. Transient ones keep `Retry-After` and the request id. Permanent ones
/// take [`MailchimpError::class`] (`compliance_state`, `forgotten_email`, `validation`, `auth`,
/// …) and Mailchimp's own detail, with a hint on what to do for the member-state classes, so the
/// dead letter explains itself instead of causing a retry storm.
pub fn from_mailchimp(e: MailchimpError) -> HandlerError {
    let err = if e.is_transient() {
        transient(e.to_string(), e.retry_after())
    } else {
        let class = e.class();
        let hint = match class {
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
        let fields = match &e {
            MailchimpError::Api { fields, .. } if !fields.is_empty() => {
                format!(" ({})", fields.join("; "))
            }
            _ => String::new(),
        };
        HandlerError::permanent(class, format!("{e}{fields}{hint}"))
    };
    with_request_id(err, e.request_id())
}

/// A failed QuickBooks call. Transient ones (transport, 429/throttle, 5xx, token endpoint
/// trouble) keep `Retry-After`; every one that came from an answer carries its `intuit_tid` as
/// the vendor request id. A broken connection — the refresh token refused (the set is then
/// marked `needs_reconnect`), or a 401 although the client had just refreshed — waits in the
/// queue like FreshBooks' ([`BROKEN_CONNECTION_RETRY`]). Everything else is permanent with
/// [`QuickbooksError::class`] and a hint on what to fix.
pub fn from_quickbooks(e: QuickbooksError) -> HandlerError {
    let err = if e.is_transient() {
        transient(e.to_string(), e.retry_after())
    } else if matches!(e, QuickbooksError::Token(TokenError::Broken { .. })) {
        broken(e.to_string())
    } else if e.is_unauthorized() {
        unauthorized_although_refreshed(&e, "QuickBooks", "ml-connector connect quickbooks")
    } else {
        HandlerError::permanent(e.class(), format!("{e}{}", quickbooks_hint(&e)))
    };
    with_request_id(err, e.intuit_tid())
}

/// What to do about a permanent QuickBooks failure, appended to its message.
fn quickbooks_hint(e: &QuickbooksError) -> &'static str {
    match e {
        QuickbooksError::Fault { status, code, .. } => match (code.as_deref(), *status) {
            (Some(CODE_STALE_OBJECT), _) => {
                "; the customer kept changing in QuickBooks while we updated it: replay to \
                 re-read and re-apply"
            }
            (Some(CODE_NOT_FOUND), _) => "; the record no longer exists in QuickBooks",
            (Some(CODE_DUPLICATE_NAME), _) => {
                "; another customer, vendor or employee already has this display name: rename \
                 one in QuickBooks, then replay"
            }
            (_, 403) => {
                "; the app may not access this company (scope or subscription): reconnect with \
                 the accounting scope (`ml-connector connect quickbooks`)"
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
    }
}

/// A state-store failure (id map, connections): the store being unreachable is worth retrying;
/// corrupt or missing state is not.
pub fn from_port(e: PortError) -> HandlerError {
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
    use crate::vendors::mailchimp::error::{COMPLIANCE_STATE, FORGOTTEN_EMAIL};
    use crate::vendors::mailchimp::models::{Problem, ProblemField};

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
        let t = from_freshbooks(fb(503));
        assert!(t.is_transient());
        assert!(from_freshbooks(fb(429)).is_transient());

        let auth = from_freshbooks(fb(401));
        assert!(
            auth.is_transient(),
            "a broken connection waits in the queue"
        );
        assert_eq!(auth.retry_after(), Some(BROKEN_CONNECTION_RETRY));
        assert!(auth.message().contains("re-authorise FreshBooks"), "{auth}");

        let refused = from_freshbooks(FreshbooksError::Token(TokenError::Broken {
            name: "fb".into(),
            vendor: "FreshBooks",
            message: "the refresh token was refused".into(),
        }));
        assert!(refused.is_transient());
        assert_eq!(refused.retry_after(), Some(BROKEN_CONNECTION_RETRY));
        let missing = from_freshbooks(FreshbooksError::Token(TokenError::NotFound {
            name: "fb".into(),
            secret: "credentials/fb".into(),
        }));
        assert!(!missing.is_transient());
        assert!(
            missing.message().contains("ml-connector connect"),
            "{missing}"
        );

        let nf = from_freshbooks(fb(404));
        assert_eq!(nf.class(), "freshbooks_404");
        assert!(nf.message().contains("errno 1012"), "{nf}");
        assert!(nf.message().contains("Client not found."), "{nf}");

        let body = from_freshbooks(FreshbooksError::UnexpectedBody {
            status: 200,
            reason: "not JSON".into(),
        });
        assert_eq!(body.class(), "freshbooks_unexpected_response");
        assert_eq!(
            from_freshbooks(FreshbooksError::InvalidId { what: "client id" }).class(),
            "invalid_id"
        );
    }

    #[test]
    fn mailchimp_transient_errors_keep_retry_after_and_request_id() {
        let t = from_mailchimp(mc(429, "Too Many Requests", "slow down"));
        assert!(t.is_transient());
        assert_eq!(t.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(t.vendor_request_id(), Some("req-9"));
    }

    #[test]
    fn mailchimp_member_states_are_permanent_with_a_reason() {
        let c = from_mailchimp(mc(
            400,
            COMPLIANCE_STATE,
            "jane@example.com is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be subscribed.",
        ));
        assert!(!c.is_transient());
        assert_eq!(c.class(), "compliance_state");
        assert!(c.message().contains("is in a compliance state"), "{c}");
        assert!(c.message().contains("nothing to retry"), "{c}");
        assert_eq!(c.vendor_request_id(), Some("req-9"));

        let f = from_mailchimp(mc(400, FORGOTTEN_EMAIL, "was permanently deleted"));
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
        let h = from_mailchimp(e);
        assert_eq!(h.class(), "validation");
        assert!(
            h.message()
                .contains("email_address: This value should be a valid email."),
            "{h}"
        );
        assert_eq!(h.vendor_request_id(), Some("hdr-1"));
        let creds = from_mailchimp(MailchimpError::Credentials("no data centre".into()));
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
        let t = from_quickbooks(qb(429, "3001"));
        assert!(t.is_transient());
        assert_eq!(t.retry_after(), Some(Duration::from_secs(4)));
        assert_eq!(t.vendor_request_id(), Some("tid-7"));
        assert!(from_quickbooks(QuickbooksError::Transport("reset".into())).is_transient());

        let auth = from_quickbooks(qb(401, "3200"));
        assert!(auth.is_transient());
        assert_eq!(auth.retry_after(), Some(BROKEN_CONNECTION_RETRY));
        assert!(auth.message().contains("connect quickbooks"), "{auth}");
        assert_eq!(auth.vendor_request_id(), Some("tid-7"));
        let refused = from_quickbooks(QuickbooksError::Token(TokenError::Broken {
            name: "qb".into(),
            vendor: "QuickBooks",
            message: "invalid_grant".into(),
        }));
        assert_eq!(refused.retry_after(), Some(BROKEN_CONNECTION_RETRY));

        let stale = from_quickbooks(qb(400, "5010"));
        assert!(!stale.is_transient());
        assert_eq!(stale.class(), "quickbooks_5010");
        assert!(stale.message().contains("re-read"), "{stale}");
        assert_eq!(stale.vendor_request_id(), Some("tid-7"));
        let dup = from_quickbooks(qb(400, "6240"));
        assert!(dup.message().contains("display name"), "{dup}");
        let id = from_quickbooks(QuickbooksError::InvalidId {
            what: "customer id",
        });
        assert_eq!(id.class(), "invalid_id");
        let missing = from_quickbooks(QuickbooksError::Token(TokenError::NotFound {
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
