//! The webhook routes: `/webhooks/<vendor>/…`, one source per vendor that sends webhooks
//! ([`crate::vendors::ingress::WebhookSource`]), so the handler knows which secret verifies a
//! delivery without guessing. Each source says which methods and segments it takes.
//!
//! Anything before the `webhooks` segment (an API Gateway stage name, a local prefix) is ignored.

use http::Method;

use crate::vendors::ingress::{RouteError, WebhookSource};

/// The source a request is for, and the path segments after `/webhooks/<vendor>`.
pub fn route<'s, 'p>(
    sources: &'s [Box<dyn WebhookSource>],
    method: &Method,
    path: &'p str,
) -> Result<(&'s dyn WebhookSource, Vec<&'p str>), RouteError> {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    if !segments.any(|s| s == "webhooks") {
        return Err(RouteError::NotFound);
    }
    let rest: Vec<&str> = segments.collect();
    if !rest.iter().all(|s| is_segment(s)) {
        return Err(RouteError::NotFound);
    }
    let (vendor, params) = rest.split_first().ok_or(RouteError::NotFound)?;
    let source = sources
        .iter()
        .find(|s| s.vendor().as_str() == *vendor)
        .ok_or(RouteError::NotFound)?;
    source.route(method, params)?;
    Ok((source.as_ref(), params.to_vec()))
}

/// Every route, spelled for a 404's message.
pub fn describe(sources: &[Box<dyn WebhookSource>]) -> String {
    sources
        .iter()
        .map(|s| s.routes())
        .collect::<Vec<_>>()
        .join(", ")
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
    use std::sync::Arc;

    use async_trait::async_trait;
    use secrecy::SecretString;

    use super::*;
    use crate::vendor::Vendor;
    use crate::vendors::freshbooks::FreshbooksError;
    use crate::vendors::freshbooks::callbacks::CallbackVerifier;
    use crate::vendors::ingress::{SourceDeps, sources};

    struct NoVerifier;

    #[async_trait]
    impl CallbackVerifier for NoVerifier {
        async fn verify(
            &self,
            _: &SecretString,
            _: &str,
            _: &str,
            _: &SecretString,
        ) -> Result<bool, FreshbooksError> {
            Ok(false)
        }
    }

    fn all() -> Vec<Box<dyn WebhookSource>> {
        sources(&SourceDeps {
            freshbooks: Arc::new(NoVerifier),
        })
    }

    fn routed(method: Method, path: &str) -> Result<(Vendor, Vec<&str>), RouteError> {
        let sources = all();
        route(&sources, &method, path).map(|(s, p)| (s.vendor(), p))
    }

    #[test]
    fn matches_each_source() {
        assert_eq!(
            routed(Method::POST, "/webhooks/freshbooks/6BApk/cb1"),
            Ok((Vendor::Freshbooks, vec!["6BApk", "cb1"]))
        );
        assert_eq!(
            routed(Method::POST, "/prod/webhooks/quickbooks"),
            Ok((Vendor::Quickbooks, vec![]))
        );
        assert_eq!(
            routed(Method::POST, "/webhooks/stripe/acct_1/"),
            Ok((Vendor::Stripe, vec!["acct_1"]))
        );
        assert_eq!(
            routed(Method::GET, "/webhooks/mailchimp/l1/s3cr3t"),
            Ok((Vendor::Mailchimp, vec!["l1", "s3cr3t"]))
        );
        assert_eq!(
            routed(Method::POST, "/webhooks/mailchimp/l1/s3cr3t"),
            Ok((Vendor::Mailchimp, vec!["l1", "s3cr3t"]))
        );
        let listed = describe(&all());
        for route in [
            "POST /webhooks/freshbooks/{account}/{route}",
            "POST /webhooks/quickbooks",
            "POST /webhooks/stripe/{account}",
            "GET|POST /webhooks/mailchimp/{list}/{secret}",
        ] {
            assert!(listed.contains(route), "{listed}");
        }
    }

    #[test]
    fn refuses_the_rest() {
        for (method, path) in [
            (Method::POST, "/webhooks/hubspot"),
            (Method::POST, "/other/quickbooks"),
            (Method::POST, "/webhooks/stripe/../x"),
            (Method::POST, "/webhooks/stripe/a%2Fb"),
            (Method::POST, "/webhooks/stripe/.."),
            (Method::POST, "/webhooks/quickbooks/extra"),
            (Method::POST, "/webhooks/freshbooks/6BApk"),
        ] {
            assert_eq!(routed(method, path), Err(RouteError::NotFound), "{path}");
        }
        assert_eq!(
            routed(Method::GET, "/webhooks/quickbooks"),
            Err(RouteError::MethodNotAllowed { allowed: "POST" })
        );
        assert_eq!(
            routed(Method::DELETE, "/webhooks/mailchimp/l/s"),
            Err(RouteError::MethodNotAllowed {
                allowed: "GET, POST"
            })
        );
    }
}
