//! QuickBooks Online, as it describes itself to the connections check.

use crate::vendor::Vendor;
use crate::vendors::spec::{IdField, VendorSpec};

pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Quickbooks,
    display: "QuickBooks",
    source_account: "the QuickBooks realm (company) id",
    ids: &[IdField {
        field: "realm_id",
        get: |e| &e.realm_id,
        target_requires: Some("the QuickBooks company (realm) id"),
    }],
    target_account: None,
    ingress: Some(|_| Box::new(super::ingress::QuickbooksSource)),
};
