//! Stripe: `Stripe-Signature` (timestamped HMAC, several `v1` during rotation).

use http::HeaderMap;
use secrecy::ExposeSecret;

use super::super::response::Rejection;
use super::super::{Accepted, WebhookHandler};
use crate::ports::secret_names;
use crate::vendors::stripe::webhook;

pub(in crate::webhook) async fn accept(
    handler: &WebhookHandler,
    headers: &HeaderMap,
    body: &[u8],
    account: &str,
) -> Result<Accepted, Rejection> {
    let signature = super::header(headers, webhook::SIGNATURE_HEADER)
        .ok_or_else(|| Rejection::unauthorized("missing Stripe-Signature header"))?;
    let name = secret_names::stripe(account);
    let stored = handler.secret(&name).await?.ok_or_else(|| {
        Rejection::unauthorized(format!(
            "no signing secret is configured for Stripe account `{account}`"
        ))
    })?;
    // During a rotation on our side the secret holds the old and the new `whsec_` values.
    let secrets: Vec<&str> = stored
        .expose_secret()
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .collect();
    if let Err(err) = webhook::verify(secrets, body, signature, handler.clock.now()) {
        handler.secrets.invalidate(&name);
        return Err(Rejection::unauthorized(err.to_string()));
    }
    Ok(match webhook::parse(body, account) {
        Ok(event) => Accepted::Events(vec![event]),
        Err(err) => Accepted::Unparseable {
            reason: err.to_string(),
        },
    })
}
