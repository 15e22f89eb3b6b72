//! Stripe's webhook ingress: `POST /webhooks/stripe/{account}`, `Stripe-Signature` (a
//! timestamped HMAC, several `v1` during a rotation) with the endpoint's signing secret(s).

use async_trait::async_trait;
use http::{Method, StatusCode};
use secrecy::ExposeSecret;

use super::webhook;
use crate::ports::secret_names;
use crate::vendor::Vendor;
use crate::vendors::ingress::{
    Accepted, Delivery, Ingress, Rejection, RouteError, SignatureError, WebhookSource, header,
    post_only,
};

/// Stripe's webhook source.
pub struct StripeSource;

#[async_trait]
impl WebhookSource for StripeSource {
    fn vendor(&self) -> Vendor {
        Vendor::Stripe
    }

    fn routes(&self) -> &'static str {
        "POST /webhooks/stripe/{account}"
    }

    fn route(&self, method: &Method, params: &[&str]) -> Result<(), RouteError> {
        post_only(method, params, 1)
    }

    async fn accept(&self, ingress: &Ingress<'_>, d: &Delivery<'_>) -> Result<Accepted, Rejection> {
        let account = d.params[0];
        let unauthorized = |e: SignatureError| e.reject(StatusCode::UNAUTHORIZED);
        let signature = header(d.headers, webhook::SIGNATURE_HEADER)
            .ok_or_else(|| unauthorized(SignatureError::MissingHeader("Stripe-Signature")))?;
        let name = secret_names::stripe(account);
        let stored = ingress.secret(&name).await?.ok_or_else(|| {
            unauthorized(SignatureError::NotConfigured(format!(
                "no signing secret is configured for Stripe account `{account}`"
            )))
        })?;
        // During a rotation on our side the secret holds the old and the new `whsec_` values.
        let secrets: Vec<&str> = stored
            .expose_secret()
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .collect();
        if let Err(err) = webhook::verify(secrets, d.body, signature, ingress.clock.now()) {
            ingress.secrets.invalidate(&name);
            return Err(unauthorized(SignatureError::Mismatch(err.to_string())));
        }
        Ok(match webhook::parse(d.body, account) {
            Ok(event) => Accepted::Events(vec![event]),
            Err(err) => Accepted::Unparseable {
                reason: err.to_string(),
            },
        })
    }
}
