//! [`HubspotTarget`]: what a HubSpot target endpoint must name.

use crate::connections::Endpoint;
use crate::vendors::spec::{MissingField, required_target_field};

/// Where a connection's HubSpot writes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubspotTarget<'a> {
    /// The credential set the writes use.
    pub credentials: &'a str,
    /// The portal (hub) id the connection writes to; checked against the token's.
    pub portal_id: &'a str,
}

impl<'a> HubspotTarget<'a> {
    /// The typed target of `ep`, a HubSpot endpoint.
    pub fn of(ep: &'a Endpoint) -> Result<Self, MissingField> {
        Ok(HubspotTarget {
            credentials: &ep.credentials,
            portal_id: required_target_field(ep, "portal_id")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendor::Vendor;

    #[test]
    fn a_target_needs_its_portal() {
        let mut ep = Endpoint {
            vendor: Vendor::Hubspot,
            account: None,
            credentials: "hs".into(),
            list_id: None,
            store_id: None,
            portal_id: Some("62515".into()),
            instance: None,
            realm_id: None,
        };
        let t = HubspotTarget::of(&ep).unwrap();
        assert_eq!((t.credentials, t.portal_id), ("hs", "62515"));
        ep.portal_id = None;
        assert!(
            HubspotTarget::of(&ep)
                .unwrap_err()
                .to_string()
                .contains("portal_id")
        );
    }
}
