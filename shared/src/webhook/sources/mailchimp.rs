//! Mailchimp: no signature; the list webhook URL carries a secret path segment.

use super::super::response::Rejection;
use super::super::{Accepted, WebhookHandler};
use crate::ports::secret_names;
use crate::vendors::mailchimp::webhook;

pub(in crate::webhook) async fn accept(
    handler: &WebhookHandler,
    body: &[u8],
    list: &str,
    given: &str,
) -> Result<Accepted, Rejection> {
    let name = secret_names::mailchimp(list);
    let expected = handler.secret(&name).await?.ok_or_else(|| {
        Rejection::unauthorized(format!(
            "no webhook secret is configured for Mailchimp list `{list}`"
        ))
    })?;
    if !webhook::secret_matches(&expected, given) {
        handler.secrets.invalidate(&name);
        return Err(Rejection::unauthorized(
            "the webhook URL's secret does not match",
        ));
    }
    Ok(match webhook::parse(body, list) {
        Ok(event) => Accepted::Events(vec![event]),
        Err(err) => Accepted::Unparseable {
            reason: err.to_string(),
        },
    })
}
