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
    // OAuth set. `Checked` rather than `OAuth`: most sets are static tokens, which `status`
    // must not read as a token pair lacking its refresh token, and an OAuth set is still the
    // token managers' shape (its `needs_reconnect` mark shows in `status` all the same).
    // `connect` has no generic prompt for `Checked`: a CLI hook (or `secrets put`) writes it.
    credentials: CredentialKind::Checked(super::credentials::check),
    token_job: None,
    polled: false,
};
