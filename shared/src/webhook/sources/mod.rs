//! One module per webhook source: verify the delivery with that source's secret, then parse it.

pub(super) mod freshbooks;
pub(super) mod mailchimp;
pub(super) mod quickbooks;
pub(super) mod stripe;

use http::HeaderMap;

/// A header's value as text, if present and visible ASCII.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
