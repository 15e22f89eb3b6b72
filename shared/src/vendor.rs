//! The vendors ml-connector talks to.

use serde::{Deserialize, Serialize};
use strum::VariantArray;

/// A vendor system, as named in connections files, routes, queue names and record keys: the
/// lower-case variant name on the wire (`freshbooks`), parsed without regard to case.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "lowercase")]
#[strum(
    serialize_all = "lowercase",
    ascii_case_insensitive,
    parse_err_ty = UnknownVendor,
    parse_err_fn = UnknownVendor::named
)]
pub enum Vendor {
    /// FreshBooks: accounting; a source (webhooks and polls).
    Freshbooks,
    /// QuickBooks Online: accounting; a source and a target.
    Quickbooks,
    /// Mailchimp: marketing; a target and a source (list webhooks).
    Mailchimp,
    /// HubSpot: CRM; a target.
    Hubspot,
    /// Marketo (Adobe Marketo Engage): marketing automation; a target.
    Marketo,
    /// Stripe: billing; a source (webhooks) and a target.
    Stripe,
}

impl Vendor {
    /// Every vendor, in declaration order (the order of [`Ord`]).
    pub const ALL: &'static [Vendor] = Vendor::VARIANTS;

    /// The lower-case name used on the wire and in configuration.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The name did not match any vendor.
#[derive(Debug, thiserror::Error)]
#[error("unknown vendor `{0}` (expected one of {names})", names = names())]
pub struct UnknownVendor(pub String);

impl UnknownVendor {
    fn named(name: &str) -> Self {
        Self(name.to_string())
    }
}

/// Every vendor's name, comma-separated.
fn names() -> String {
    Vendor::ALL
        .iter()
        .map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in Vendor::ALL.iter().copied() {
            assert_eq!(v.as_str().parse::<Vendor>().unwrap(), v);
            assert_eq!(v.as_str().to_uppercase().parse::<Vendor>().unwrap(), v);
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{v}\""));
        }
        let e = "freshbook".parse::<Vendor>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown vendor `freshbook` (expected one of freshbooks, quickbooks, mailchimp, hubspot, marketo, stripe)"
        );
    }
}
