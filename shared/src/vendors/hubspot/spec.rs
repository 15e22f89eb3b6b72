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
    // A private app's token (`pat-…`).
    credentials: CredentialKind::Keys(&["access_token"]),
    token_job: None,
    polled: false,
};
