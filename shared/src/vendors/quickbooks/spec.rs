//! QuickBooks Online, as it describes itself to the connections check.

use crate::ports::secret_names;
use crate::vendor::Vendor;
use crate::vendors::spec::{CredentialKind, IdField, VendorSpec, WebhookRoute};

/// QuickBooks' description of itself.
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
    route: Some(WebhookRoute {
        path: |_| "quickbooks".to_string(),
        secret: |_| secret_names::QUICKBOOKS.to_string(),
        one_per_app: true,
        by_hand: Some(|base, _| {
            format!(
                "QuickBooks: in the Intuit developer portal set the app's webhook endpoint to {base}/quickbooks (Customer events) and store its verifier token: ml-connector secrets put {} < token.txt",
                secret_names::QUICKBOOKS
            )
        }),
    }),
    credentials: CredentialKind::OAuth,
    token_job: Some("quickbooks_token_refresh"),
    polled: true,
    worker_batch: 10,
};
