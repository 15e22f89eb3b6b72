//! FreshBooks, as it describes itself to the connections check.

use crate::ports::secret_names;
use crate::vendor::Vendor;
use crate::vendors::spec::{CredentialKind, VendorSpec, WebhookRoute};

/// FreshBooks' description of itself.
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
    route: Some(WebhookRoute {
        path: |account| format!("freshbooks/{account}/<route>"),
        secret: |account| secret_names::freshbooks(account, "<route>"),
        one_per_app: false,
        // `ml-connector apply` registers each callback through the API.
        by_hand: None,
    }),
    credentials: CredentialKind::OAuth,
    token_job: Some("token_refresh"),
    polled: true,
    worker_batch: 10,
};
