//! QuickBooks Online's webhook ingress: `POST /webhooks/quickbooks`, `intuit-signature` over the
//! raw body with the one app-wide verifier token; events name their realm.

use async_trait::async_trait;
use http::{Method, StatusCode};

use super::webhook;
use crate::ports::secret_names;
use crate::vendor::Vendor;
use crate::vendors::ingress::{
    Accepted, Delivery, Ingress, Rejection, RouteError, SignatureError, WebhookSource, header,
    post_only,
};

/// QuickBooks' webhook source.
pub struct QuickbooksSource;

#[async_trait]
impl WebhookSource for QuickbooksSource {
    fn vendor(&self) -> Vendor {
        Vendor::Quickbooks
    }

    fn routes(&self) -> &'static str {
        "POST /webhooks/quickbooks"
    }

    fn route(&self, method: &Method, params: &[&str]) -> Result<(), RouteError> {
        post_only(method, params, 0)
    }

    async fn accept(&self, ingress: &Ingress<'_>, d: &Delivery<'_>) -> Result<Accepted, Rejection> {
        // QuickBooks retries a 401 like any failure; 403 is what Intuit documents for a bad
        // signature.
        let forbidden = |e: SignatureError| e.reject(StatusCode::FORBIDDEN);
        let signature = header(d.headers, webhook::SIGNATURE_HEADER)
            .ok_or_else(|| forbidden(SignatureError::MissingHeader(webhook::SIGNATURE_HEADER)))?;
        let token = ingress
            .secret(secret_names::QUICKBOOKS)
            .await?
            .ok_or_else(|| {
                forbidden(SignatureError::NotConfigured(
                    "QuickBooks webhooks are not configured: store the app's verifier token first"
                        .into(),
                ))
            })?;
        if !webhook::verify(&token, d.body, signature) {
            ingress.secrets.invalidate(secret_names::QUICKBOOKS);
            return Err(forbidden(SignatureError::Mismatch(
                "intuit-signature does not match the body".into(),
            )));
        }
        Ok(match webhook::parse(d.body) {
            Ok(events) => Accepted::Events(events),
            Err(err) => Accepted::Unparseable {
                reason: err.to_string(),
            },
        })
    }
}
