//! Marketo. This build runs no flow into Marketo yet; the vendor describes its endpoints so a
//! connections file can name one and be told so (docs/vendors/marketo.md).

use crate::vendor::Vendor;
use crate::vendors::spec::{CredentialKind, IdField, VendorSpec};

/// Marketo's description of itself.
pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Marketo,
    display: "Marketo",
    source_account: "the account id",
    ids: &[IdField {
        field: "instance",
        get: |e| &e.instance,
        target_requires: Some("the Munchkin id, e.g. 123-ABC-456"),
    }],
    target_account: None,
    ingress: None,
    route: None,
    // A LaunchPoint API-only user.
    credentials: CredentialKind::Keys(&["client_id", "client_secret"]),
    token_job: None,
    polled: false,
    worker_batch: 10,
};
