//! Mailchimp's webhook ingress: `GET|POST /webhooks/mailchimp/{list}/{secret}`. Mailchimp signs
//! nothing; the list webhook URL carries a secret path segment, and Mailchimp validates a URL
//! with a GET before it saves it.

use async_trait::async_trait;
use http::{Method, StatusCode};

use super::webhook;
use crate::ports::secret_names;
use crate::vendor::Vendor;
use crate::vendors::ingress::{
    Accepted, Delivery, Ingress, Rejection, RouteError, SignatureError, WebhookSource, response,
};

/// Mailchimp's webhook source.
pub struct MailchimpSource;

#[async_trait]
impl WebhookSource for MailchimpSource {
    fn vendor(&self) -> Vendor {
        Vendor::Mailchimp
    }

    fn routes(&self) -> &'static str {
        "GET|POST /webhooks/mailchimp/{list}/{secret}"
    }

    fn route(&self, method: &Method, params: &[&str]) -> Result<(), RouteError> {
        match (params.len(), method) {
            (2, &Method::GET | &Method::HEAD | &Method::POST) => Ok(()),
            (2, _) => Err(RouteError::MethodNotAllowed {
                allowed: "GET, POST",
            }),
            _ => Err(RouteError::NotFound),
        }
    }

    async fn accept(&self, ingress: &Ingress<'_>, d: &Delivery<'_>) -> Result<Accepted, Rejection> {
        if d.method != Method::POST {
            // Mailchimp's validation request: the URL exists.
            return Ok(Accepted::Answered(response::json(
                StatusCode::OK,
                serde_json::json!({ "ok": true }),
            )));
        }
        let (list, given) = (d.params[0], d.params[1]);
        let unauthorized = |e: SignatureError| e.reject(StatusCode::UNAUTHORIZED);
        let name = secret_names::mailchimp(list);
        let expected = ingress.secret(&name).await?.ok_or_else(|| {
            unauthorized(SignatureError::NotConfigured(format!(
                "no webhook secret is configured for Mailchimp list `{list}`"
            )))
        })?;
        if !webhook::secret_matches(&expected, given) {
            ingress.secrets.invalidate(&name);
            return Err(unauthorized(SignatureError::Mismatch(
                "the webhook URL's secret does not match".into(),
            )));
        }
        Ok(match webhook::parse(d.body, list) {
            Ok(event) => Accepted::Events(vec![event]),
            Err(err) => Accepted::Unparseable {
                reason: err.to_string(),
            },
        })
    }
}
