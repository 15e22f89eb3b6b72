//! The webhook routes: one per source, so the handler knows which secret verifies a delivery
//! without guessing.
//!
//! | method | path | source |
//! |---|---|---|
//! | POST | `/webhooks/freshbooks/{account}/{route}` | one FreshBooks callback (its own verifier) |
//! | POST | `/webhooks/quickbooks` | the QuickBooks app (one verifier token; events name their realm) |
//! | POST | `/webhooks/stripe/{account}` | one Stripe webhook endpoint |
//! | GET, POST | `/webhooks/mailchimp/{list}/{secret}` | one Mailchimp audience's list webhook |
//!
//! Anything before the `webhooks` segment (an API Gateway stage name, a local prefix) is ignored.

use http::Method;

/// A delivery's destination, parsed from method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Freshbooks { account: String, route_id: String },
    Quickbooks,
    Stripe { account: String },
    MailchimpValidate,
    Mailchimp { list: String, secret: String },
}

/// Why a request matches no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    MethodNotAllowed { allowed: &'static str },
}

/// Every route, spelled for a 404's message.
pub const ROUTES: &str = "POST /webhooks/freshbooks/{account}/{route}, POST /webhooks/quickbooks, \
POST /webhooks/stripe/{account}, GET|POST /webhooks/mailchimp/{list}/{secret}";

/// Matches a request to its route.
pub fn route(method: &Method, path: &str) -> Result<Route, RouteError> {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    if !segments.any(|s| s == "webhooks") {
        return Err(RouteError::NotFound);
    }
    let rest: Vec<&str> = segments.collect();
    let valid = |s: &&str| is_segment(s);
    if !rest.iter().all(valid) {
        return Err(RouteError::NotFound);
    }
    let post_only = |r: Route| {
        if method == Method::POST {
            Ok(r)
        } else {
            Err(RouteError::MethodNotAllowed { allowed: "POST" })
        }
    };
    match rest.as_slice() {
        ["freshbooks", account, route_id] => post_only(Route::Freshbooks {
            account: account.to_string(),
            route_id: route_id.to_string(),
        }),
        ["quickbooks"] => post_only(Route::Quickbooks),
        ["stripe", account] => post_only(Route::Stripe {
            account: account.to_string(),
        }),
        ["mailchimp", list, secret] => match *method {
            Method::GET | Method::HEAD => Ok(Route::MailchimpValidate),
            Method::POST => Ok(Route::Mailchimp {
                list: list.to_string(),
                secret: secret.to_string(),
            }),
            _ => Err(RouteError::MethodNotAllowed {
                allowed: "GET, POST",
            }),
        },
        _ => Err(RouteError::NotFound),
    }
}

/// Path segments become secret names and store keys: keep them to a safe alphabet.
fn is_segment(s: &str) -> bool {
    s.len() <= 128
        && s.bytes().any(|b| b != b'.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_each_source() {
        assert_eq!(
            route(&Method::POST, "/webhooks/freshbooks/6BApk/cb1"),
            Ok(Route::Freshbooks {
                account: "6BApk".into(),
                route_id: "cb1".into()
            })
        );
        assert_eq!(
            route(&Method::POST, "/prod/webhooks/quickbooks"),
            Ok(Route::Quickbooks)
        );
        assert_eq!(
            route(&Method::POST, "/webhooks/stripe/acct_1/"),
            Ok(Route::Stripe {
                account: "acct_1".into()
            })
        );
        assert_eq!(
            route(&Method::GET, "/webhooks/mailchimp/l1/s3cr3t"),
            Ok(Route::MailchimpValidate)
        );
        assert_eq!(
            route(&Method::POST, "/webhooks/mailchimp/l1/s3cr3t"),
            Ok(Route::Mailchimp {
                list: "l1".into(),
                secret: "s3cr3t".into()
            })
        );
    }

    #[test]
    fn refuses_the_rest() {
        assert_eq!(
            route(&Method::POST, "/webhooks/hubspot"),
            Err(RouteError::NotFound)
        );
        assert_eq!(
            route(&Method::POST, "/other/quickbooks"),
            Err(RouteError::NotFound)
        );
        assert_eq!(
            route(&Method::POST, "/webhooks/stripe/../x"),
            Err(RouteError::NotFound)
        );
        assert_eq!(
            route(&Method::POST, "/webhooks/stripe/a%2Fb"),
            Err(RouteError::NotFound)
        );
        assert_eq!(
            route(&Method::POST, "/webhooks/stripe/.."),
            Err(RouteError::NotFound)
        );
        assert_eq!(
            route(&Method::GET, "/webhooks/quickbooks"),
            Err(RouteError::MethodNotAllowed { allowed: "POST" })
        );
        assert_eq!(
            route(&Method::DELETE, "/webhooks/mailchimp/l/s"),
            Err(RouteError::MethodNotAllowed {
                allowed: "GET, POST"
            })
        );
    }
}
