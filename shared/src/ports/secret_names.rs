//! Names of the secrets in the secret store, relative to the deployment's secret prefix: the
//! credential sets the connections name, and what verifies each webhook source's deliveries.

/// A FreshBooks callback's verifier (stored by the handshake).
pub fn freshbooks(account: &str, route_id: &str) -> String {
    format!("webhook/freshbooks/{account}/{route_id}")
}

/// The QuickBooks app's webhook verifier token.
pub const QUICKBOOKS: &str = "webhook/quickbooks/app";

/// A Stripe endpoint's signing secret(s): one `whsec_…` per line during a rotation.
pub fn stripe(account: &str) -> String {
    format!("webhook/stripe/{account}")
}

/// The secret path segment of a Mailchimp list's webhook URL.
pub fn mailchimp(list: &str) -> String {
    format!("webhook/mailchimp/{list}")
}

/// A credential set named in the connections file.
pub fn credentials(name: &str) -> String {
    format!("credentials/{name}")
}
