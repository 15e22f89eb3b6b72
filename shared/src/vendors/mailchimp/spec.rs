//! Mailchimp, as it describes itself to the connections check.

use crate::ports::secret_names;
use crate::vendor::Vendor;
use crate::vendors::spec::{CredentialKind, IdField, VendorSpec, WebhookRoute};

/// Mailchimp's description of itself.
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
    route: Some(WebhookRoute {
        path: |list| format!("mailchimp/{list}/<secret>"),
        secret: secret_names::mailchimp,
        one_per_app: false,
        // `ml-connector apply` registers each list's webhook through the API.
        by_hand: None,
    }),
    credentials: CredentialKind::Checked(|value| {
        super::credentials::Credentials::from_json(value)
            .map(drop)
            .map_err(|e| e.to_string())
    }),
    token_job: None,
    polled: false,
    worker_batch: 10,
};
