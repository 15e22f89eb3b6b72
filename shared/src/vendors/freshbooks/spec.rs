//! FreshBooks, as it describes itself to the connections check.

use crate::vendor::Vendor;
use crate::vendors::spec::VendorSpec;

pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Freshbooks,
    display: "FreshBooks",
    source_account: "the FreshBooks account id (e.g. `6BApk`)",
    ids: &[],
    target_account: Some("the account id the writes go to"),
    ingress: Some(|deps| {
        Box::new(super::ingress::FreshbooksSource::new(
            deps.freshbooks.clone(),
        ))
    }),
};
