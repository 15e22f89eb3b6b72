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
    // Vendor JSON of three kinds (`credentials.rs`). `Keys` so `connect` works without a CLI
    // hook: it prompts for (or reads as JSON) the three fields a private-app token or service
    // key set needs, `{"kind": "private_app", "access_token": "pat-…", "portal_id": "123"}`.
    // An OAuth set, a `tier` or an `api_version` is written with `secrets put` until a hook
    // runs HubSpot's OAuth; then this becomes `Checked(super::credentials::check)`, which
    // `status` can use to read the set fully (not `OAuth`: most sets are static tokens).
    credentials: CredentialKind::Keys(&["kind", "access_token", "portal_id"]),
    token_job: None,
    polled: false,
};
