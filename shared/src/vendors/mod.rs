//! One module per vendor: its [`spec::VendorSpec`], webhook verification and parsing, API
//! clients, models.
//!
//! Every webhook module follows the same shape: a `SIGNATURE_HEADER` (where the vendor signs),
//! a pure `verify` over the bytes as received, and a pure parser from the delivery to
//! [`SourceEvent`](crate::event::SourceEvent)s. Nothing here does I/O except the API clients.

pub mod error;
pub mod form;
pub mod freshbooks;
pub mod http;
pub mod hubspot;
pub mod ingress;
pub mod limits;
pub mod mailchimp;
pub mod marketo;
pub(crate) mod oauth2;
pub mod quickbooks;
pub mod spec;
pub mod stripe;

use crate::vendor::Vendor;
use spec::VendorSpec;

/// What `vendor` says about itself: the one place a vendor's module is found by its name.
pub fn spec(vendor: Vendor) -> &'static VendorSpec {
    match vendor {
        Vendor::Freshbooks => &freshbooks::spec::SPEC,
        Vendor::Quickbooks => &quickbooks::spec::SPEC,
        Vendor::Mailchimp => &mailchimp::spec::SPEC,
        Vendor::Hubspot => &hubspot::spec::SPEC,
        Vendor::Marketo => &marketo::SPEC,
        Vendor::Stripe => &stripe::spec::SPEC,
    }
}

/// `v` as a `T` (a record under `key` in a vendor's answer). The error is only the part of
/// serde's message before anything it quotes: it can quote the offending value (an email, a
/// name).
pub(crate) fn from_value<T: serde::de::DeserializeOwned>(
    v: serde_json::Value,
    key: &str,
) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| {
        let message = e.to_string();
        let safe = message
            .split(['"', '`'])
            .next()
            .unwrap_or_default()
            .trim_end();
        format!("a `{key}` record does not fit the model: {safe}")
    })
}

/// Whether a vendor id is safe to put into a record key (`vendor:account:entity:id`), a DynamoDB
/// key or a URL path: 1–128 bytes of ASCII letters, digits, `_`, `-` and `.`. Every id the
/// vendors document fits; anything else in a delivery is refused rather than escaped.
pub(crate) fn is_plain_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The category of a JSON parse error, for errors about secrets: serde's own messages can quote
/// the input (`invalid type: string "…"`), and the input there is a secret.
pub(crate) fn json_error_category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "io",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "data",
        serde_json::error::Category::Eof => "eof",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids() {
        for ok in ["6BApk", "217506", "in_1AbC", "a-b.c_d", &"x".repeat(128)] {
            assert!(is_plain_id(ok), "{ok}");
        }
        for bad in ["", "a:b", "a/b", "a b", "é", &"x".repeat(129)] {
            assert!(!is_plain_id(bad), "{bad}");
        }
    }
}
