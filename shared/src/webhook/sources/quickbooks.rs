//! QuickBooks Online: `intuit-signature` over the raw body, one app-wide verifier token.

use http::{HeaderMap, StatusCode};

use super::super::response::Rejection;
use super::super::{Accepted, WebhookHandler};
use crate::ports::secret_names;
use crate::vendors::quickbooks::webhook;

pub(in crate::webhook) async fn accept(
    handler: &WebhookHandler,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Accepted, Rejection> {
    // QuickBooks retries a 401 like any failure; 403 is what Intuit documents for a bad signature.
    let forbidden = |m: &str| Rejection::new(StatusCode::FORBIDDEN, m);
    let signature = super::header(headers, webhook::SIGNATURE_HEADER)
        .ok_or_else(|| forbidden("missing intuit-signature header"))?;
    let token = handler
        .secret(secret_names::QUICKBOOKS)
        .await?
        .ok_or_else(|| {
            forbidden(
                "QuickBooks webhooks are not configured: store the app's verifier token first",
            )
        })?;
    if !webhook::verify(&token, body, signature) {
        handler.secrets.invalidate(secret_names::QUICKBOOKS);
        return Err(forbidden("intuit-signature does not match the body"));
    }
    Ok(match webhook::parse(body) {
        Ok(events) => Accepted::Events(events),
        Err(err) => Accepted::Unparseable {
            reason: err.to_string(),
        },
    })
}
