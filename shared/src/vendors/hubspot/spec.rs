//! HubSpot's description of itself (docs/vendors/hubspot.md).

use crate::vendor::Vendor;
use crate::vendors::spec::{CredentialKind, IdField, VendorSpec};

/// HubSpot's description of itself.
pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Hubspot,
    display: "HubSpot",
    source_account: "the account id",
    ids: &[IdField {
        field: "portal_id",
        get: |e| &e.portal_id,
        target_requires: Some("the HubSpot account (hub) id"),
    }],
    target_account: None,
    ingress: None,
    route: None,
    // Vendor JSON of three kinds (`credentials.rs`): a private-app token, a service key, or an
    // OAuth set, written by the CLI's HubSpot hook (`connect hubspot --auth …`, which reads the
    // token's portal) or `secrets put`. `Checked` so `status` reads a set fully; not `OAuth`:
    // most sets are static tokens, which `status` must not read as a token pair lacking its
    // refresh token (an OAuth set's `needs_reconnect` mark shows all the same).
    credentials: CredentialKind::Checked(super::credentials::check),
    token_job: None,
    polled: false,
    // HubSpot's batch calls take 100 inputs (docs/vendors/hubspot.md §3.1).
    worker_batch: 100,
};

/// Every scope a FreshBooks → HubSpot connection's token needs, in the order HubSpot's scope
/// pickers list them: the one list `connect` asks an OAuth app for and `ping` checks a token
/// against (docs/vendors/hubspot.md §1, §3, §5). Objects are read and written; the schema
/// scopes let `apply` read and create the `fb_…` properties (including the unique keys on line
/// items, invoices and commerce payments, whose schema scopes are UNCONFIRMED by HubSpot's
/// reference; the sandbox requires them).
pub const SCOPES: &[&str] = &[
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.objects.line_items.read",
    "crm.objects.line_items.write",
    "crm.objects.invoices.read",
    "crm.objects.invoices.write",
    "crm.objects.commercepayments.read",
    "crm.objects.commercepayments.write",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
    "crm.schemas.companies.read",
    "crm.schemas.companies.write",
    "crm.schemas.line_items.read",
    "crm.schemas.line_items.write",
    "crm.schemas.invoices.read",
    "crm.schemas.invoices.write",
    "crm.schemas.commercepayments.read",
    "crm.schemas.commercepayments.write",
];

/// The [`SCOPES`] a token lacks, given the scopes it was granted; in [`SCOPES`]' order.
pub fn missing_scopes(granted: &[String]) -> Vec<&'static str> {
    SCOPES
        .iter()
        .copied()
        .filter(|s| !granted.iter().any(|g| g.trim() == *s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::hubspot::models::ObjectType;

    #[test]
    fn every_write_scope_is_asked_for_and_missing_ones_are_listed_in_order() {
        for t in ObjectType::ALL {
            assert!(SCOPES.contains(&t.write_scope()), "{t}");
        }
        let granted: Vec<String> = SCOPES
            .iter()
            .filter(|s| !s.contains("invoices"))
            .map(|s| s.to_string())
            .chain(["oauth".to_string()])
            .collect();
        assert_eq!(
            missing_scopes(&granted),
            [
                "crm.objects.invoices.read",
                "crm.objects.invoices.write",
                "crm.schemas.invoices.read",
                "crm.schemas.invoices.write"
            ]
        );
        let all: Vec<String> = SCOPES.iter().map(|s| s.to_string()).collect();
        assert!(missing_scopes(&all).is_empty());
    }
}
