//! [`VendorSpec`]: what a vendor says about itself — how people spell it, what its endpoints in
//! a connections file need — so the code that checks connections (and the CLI that prompts for
//! them) asks the vendor instead of matching on it. Each vendor module holds its own `SPEC`;
//! [`super::spec`] finds it.

use super::ingress::{SourceDeps, WebhookSource};
use super::spec;
use crate::connections::Endpoint;
use crate::vendor::Vendor;

/// Builds a vendor's webhook ingress from what sources may need.
pub type BuildSource = fn(&SourceDeps) -> Box<dyn WebhookSource>;

/// A vendor's description of itself.
pub struct VendorSpec {
    pub vendor: Vendor,
    /// The vendor's name as people spell it, e.g. `FreshBooks`.
    pub display: &'static str,
    /// What a source endpoint's `account` is, e.g. "the FreshBooks account id (e.g. `6BApk`)".
    pub source_account: &'static str,
    /// The endpoint fields only this vendor's endpoints take, with whether a target needs it.
    pub ids: &'static [IdField],
    /// When a target endpoint needs `account` (the account the writes go to), what it is.
    pub target_account: Option<&'static str>,
    /// Builds the vendor's webhook ingress, when it sends webhooks.
    pub ingress: Option<BuildSource>,
}

/// An endpoint field only one vendor takes (`list_id`, `realm_id`, …).
#[derive(Debug)]
pub struct IdField {
    pub field: &'static str,
    /// Reads the field from an endpoint.
    pub get: fn(&Endpoint) -> &Option<String>,
    /// `Some(what it is)` when a target endpoint of the vendor must give it.
    pub target_requires: Option<&'static str>,
}

/// Checks one side of a connection against its vendor's spec: `Err((field, message))`.
pub fn check_endpoint(ep: &Endpoint, is_source: bool) -> Result<(), (&'static str, String)> {
    if ep.credentials.trim().is_empty() {
        return Err((
            "credentials",
            "must name the secret holding this vendor's credentials".into(),
        ));
    }
    let own = spec(ep.vendor);
    let every = Vendor::ALL.into_iter().map(spec);
    if is_source && ep.account.as_deref().is_none_or(|a| a.trim().is_empty()) {
        return Err(("account", format!("required: {}", own.source_account)));
    }
    for other in every {
        for id in other.ids {
            match (id.get)(ep).as_deref() {
                Some(v) if v.trim().is_empty() => {
                    return Err((id.field, "must not be empty".into()));
                }
                Some(_) if other.vendor != ep.vendor => {
                    return Err((
                        id.field,
                        format!("applies to a {} endpoint, not {}", other.vendor, ep.vendor),
                    ));
                }
                _ => {}
            }
        }
    }
    if is_source {
        return Ok(());
    }
    let required = own
        .ids
        .iter()
        .filter_map(|id| Some((id.field, id.target_requires?, (id.get)(ep))))
        .chain(
            own.target_account
                .map(|hint| ("account", hint, &ep.account)),
        );
    for (field, hint, value) in required {
        if value.is_none() {
            return Err((
                field,
                format!("required for a {} target: {hint}", ep.vendor),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vendor_describes_itself() {
        for vendor in Vendor::ALL {
            let s = spec(vendor);
            assert_eq!(s.vendor, vendor);
            assert!(
                s.display.eq_ignore_ascii_case(vendor.as_str()),
                "{}",
                s.display
            );
        }
    }
}
