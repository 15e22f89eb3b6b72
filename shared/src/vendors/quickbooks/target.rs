//! A QuickBooks target endpoint as flows use it: the company the writes go to, typed, with the
//! fields a QuickBooks target requires present.

use crate::connections::Endpoint;
use crate::vendors::spec::{MissingField, required_target_field};

/// Where a connection's QuickBooks writes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuickbooksTarget<'a> {
    /// The credential set the writes use.
    pub credentials: &'a str,
    /// The company (realm) id.
    pub realm_id: &'a str,
}

impl<'a> QuickbooksTarget<'a> {
    /// The typed target of `ep`, a QuickBooks endpoint.
    pub fn of(ep: &'a Endpoint) -> Result<Self, MissingField> {
        Ok(QuickbooksTarget {
            credentials: &ep.credentials,
            realm_id: required_target_field(ep, "realm_id")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendor::Vendor;

    #[test]
    fn a_target_needs_its_company() {
        let mut ep = Endpoint {
            vendor: Vendor::Quickbooks,
            account: None,
            credentials: "qb".into(),
            list_id: None,
            store_id: None,
            portal_id: None,
            instance: None,
            realm_id: Some("913".into()),
        };
        assert_eq!(QuickbooksTarget::of(&ep).unwrap().realm_id, "913");
        ep.realm_id = Some(String::new());
        let e = QuickbooksTarget::of(&ep).unwrap_err();
        assert_eq!(
            e.to_string(),
            "has no target.realm_id (the QuickBooks company (realm) id)"
        );
    }
}
