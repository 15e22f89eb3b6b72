//! Stripe, as it describes itself to the connections check.

use crate::ports::secret_names;
use crate::vendor::Vendor;
use crate::vendors::spec::{CredentialKind, VendorSpec, WebhookRoute};

/// Stripe's description of itself.
pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Stripe,
    display: "Stripe",
    source_account: "the Stripe account id (`acct_…`) whose webhooks feed it",
    ids: &[],
    target_account: Some("the account id the writes go to"),
    ingress: Some(|_| Box::new(super::ingress::StripeSource)),
    route: Some(WebhookRoute {
        path: |account| format!("stripe/{account}"),
        secret: secret_names::stripe,
        one_per_app: false,
        by_hand: Some(|base, account| {
            format!(
                "Stripe {account}: add an endpoint at {base}/stripe/{account} and store its signing secret: ml-connector secrets put {} < whsec.txt",
                secret_names::stripe(account)
            )
        }),
    }),
    // A restricted key (`rk_live_…`).
    credentials: CredentialKind::Keys(&["secret_key"]),
    token_job: None,
    polled: false,
    worker_batch: 10,
};
