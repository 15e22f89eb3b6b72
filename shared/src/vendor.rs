//! The vendors ml-connector talks to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A vendor system, as named in connections files, routes, queue names and record keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    Freshbooks,
    Quickbooks,
    Mailchimp,
    Hubspot,
    Marketo,
    Stripe,
}

impl Vendor {
    /// Every vendor, in a stable order.
    pub const ALL: [Vendor; 6] = [
        Vendor::Freshbooks,
        Vendor::Quickbooks,
        Vendor::Mailchimp,
        Vendor::Hubspot,
        Vendor::Marketo,
        Vendor::Stripe,
    ];

    /// The lower-case name used on the wire and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Freshbooks => "freshbooks",
            Vendor::Quickbooks => "quickbooks",
            Vendor::Mailchimp => "mailchimp",
            Vendor::Hubspot => "hubspot",
            Vendor::Marketo => "marketo",
            Vendor::Stripe => "stripe",
        }
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name did not match any vendor.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown vendor `{0}` (expected one of freshbooks, quickbooks, mailchimp, hubspot, marketo, stripe)"
)]
pub struct UnknownVendor(pub String);

impl FromStr for Vendor {
    type Err = UnknownVendor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Vendor::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownVendor(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in Vendor::ALL {
            assert_eq!(v.as_str().parse::<Vendor>().unwrap(), v);
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{v}\""));
        }
        assert!("freshbook".parse::<Vendor>().is_err());
    }
}
