//! Mailchimp, as it describes itself to the connections check.

use crate::vendor::Vendor;
use crate::vendors::spec::{IdField, VendorSpec};

pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Mailchimp,
    display: "Mailchimp",
    source_account: "the Mailchimp audience (list) id whose webhooks feed it",
    ids: &[
        IdField {
            field: "list_id",
            get: |e| &e.list_id,
            target_requires: Some(
                "the audience id (Audience → Settings → Audience name and defaults)",
            ),
        },
        IdField {
            field: "store_id",
            get: |e| &e.store_id,
            target_requires: None,
        },
    ],
    target_account: None,
    ingress: Some(|_| Box::new(super::ingress::MailchimpSource)),
};
