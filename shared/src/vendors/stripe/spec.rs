//! Stripe, as it describes itself to the connections check.

use crate::vendor::Vendor;
use crate::vendors::spec::VendorSpec;

pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Stripe,
    display: "Stripe",
    source_account: "the Stripe account id (`acct_…`) whose webhooks feed it",
    ids: &[],
    target_account: Some("the account id the writes go to"),
    ingress: Some(|_| Box::new(super::ingress::StripeSource)),
};
