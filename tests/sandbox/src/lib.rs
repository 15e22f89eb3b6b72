//! Local servers that speak the subset of each vendor API the product uses: stateful, with the
//! vendors' auth behaviour, error shapes and limits, plus a control API for tests to inject
//! faults and read state. The end-to-end tests, the demo and the benchmarks run against them.

mod authorize;
mod faults;
pub mod freshbooks;
pub mod hubspot;
pub mod mailchimp;
pub mod quickbooks;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use freshbooks::{FreshbooksSandbox, FreshbooksSandboxOptions, SandboxAccount};
use hubspot::{HubspotSandbox, HubspotSandboxOptions, SandboxPortal};
use mailchimp::{DEFAULT_LIST_ID, MailchimpSandbox, MailchimpSandboxOptions};
use quickbooks::{QuickbooksSandbox, QuickbooksSandboxOptions, SandboxCompany};

/// Whether a change made through a control API sends its webhooks (FreshBooks callbacks,
/// QuickBooks webhooks); `?webhooks=suppress` over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Webhooks {
    #[default]
    Send,
    /// The change happens but no delivery is made (a webhook that never arrives).
    Suppress,
}

/// Why a control call failed (either sandbox's); on the control routes, 404 or 400 with
/// `{"error": …}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid: {0}")]
    Invalid(String),
}

impl IntoResponse for SandboxError {
    fn into_response(self) -> Response {
        let status = match self {
            SandboxError::NotFound(_) => StatusCode::NOT_FOUND,
            SandboxError::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        (
            status,
            axum::Json(serde_json::json!({"error": self.to_string()})),
        )
            .into_response()
    }
}

/// Locks `m` even if a panic elsewhere poisoned it: the sandboxes hold plain data, so they keep
/// serving.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The sandboxes with what a local run needs in them: one FreshBooks account (a user, a
/// business, a token pair), one QuickBooks company (a realm and a token pair), one Mailchimp
/// audience ([`DEFAULT_LIST_ID`]) and one HubSpot portal (a private-app token with every
/// scope). `ml-connector demo` and `ml-connector dev --sandbox` share it.
pub struct Sandboxes {
    pub freshbooks: FreshbooksSandbox,
    pub mailchimp: MailchimpSandbox,
    pub quickbooks: QuickbooksSandbox,
    pub hubspot: HubspotSandbox,
    /// The HubSpot portal and its token.
    pub portal: SandboxPortal,
    /// The FreshBooks account the credential set opens.
    pub account: SandboxAccount,
    /// The Mailchimp audience id.
    pub list_id: String,
    /// The QuickBooks company the QuickBooks credential set opens.
    pub company: SandboxCompany,
}

impl Sandboxes {
    /// Starts the servers on loopback ports and sets up the account, the company and the
    /// audience.
    ///
    /// Fails if the Mailchimp sandbox cannot start (e.g. its vendored OpenAPI document is not
    /// found: see [`mailchimp::spec::SPEC_PATH_ENV`]).
    pub async fn start() -> Result<Self, String> {
        let mailchimp = MailchimpSandbox::try_start(MailchimpSandboxOptions::default()).await?;
        let freshbooks = FreshbooksSandbox::start(FreshbooksSandboxOptions {
            // FreshBooks gives a receiver 10 s; a debug build on a busy machine can need more
            // for its first delivery, and a cut-off delivery would be a lost webhook.
            delivery_timeout: Duration::from_secs(30),
            ..FreshbooksSandboxOptions::default()
        })
        .await;
        let account = freshbooks.setup_account("owner@example.com", "Acme Books");
        let quickbooks = QuickbooksSandbox::start(QuickbooksSandboxOptions {
            // As for FreshBooks: a debug build can need more than Intuit's 3 s.
            delivery_timeout: Duration::from_secs(30),
            ..QuickbooksSandboxOptions::default()
        })
        .await;
        let company = quickbooks.setup_company("Acme Books");
        let hubspot = HubspotSandbox::start(HubspotSandboxOptions::default()).await;
        let portal = hubspot.setup_portal();
        Ok(Self {
            freshbooks,
            mailchimp,
            quickbooks,
            hubspot,
            portal,
            account,
            list_id: DEFAULT_LIST_ID.to_string(),
            company,
        })
    }

    /// The FreshBooks account id (`source.account` of a connection).
    pub fn account_id(&self) -> &str {
        &self.account.account_id
    }

    /// The FreshBooks credential-set JSON (secret `credentials/<name>`).
    pub fn freshbooks_credentials_json(&self) -> String {
        self.freshbooks.credentials_json(&self.account.tokens)
    }

    /// The QuickBooks realm (company) id (`source.account` of a QuickBooks connection).
    pub fn realm_id(&self) -> &str {
        &self.company.realm_id
    }

    /// The QuickBooks credential-set JSON (secret `credentials/<name>`), environment
    /// `"sandbox"`; point `QUICKBOOKS_API_BASE` at `quickbooks.base_url()`.
    pub fn quickbooks_credentials_json(&self) -> String {
        self.quickbooks.credentials_json(&self.company)
    }

    /// The Mailchimp credential-set JSON (secret `credentials/<name>`).
    pub fn mailchimp_credentials_json(&self) -> String {
        self.mailchimp.credentials_json()
    }

    /// The HubSpot portal id (`target.portal_id` of a HubSpot connection).
    pub fn portal_id(&self) -> String {
        self.portal.portal.portal_id.to_string()
    }

    /// The HubSpot credential-set JSON (secret `credentials/<name>`): the portal's private-app
    /// token; point `HUBSPOT_API_BASE` at `hubspot.base_url()`.
    pub fn hubspot_credentials_json(&self) -> String {
        serde_json::json!({
            "kind": "private_app",
            "access_token": self.portal.token,
            "portal_id": self.portal.portal.portal_id,
        })
        .to_string()
    }

    /// Where to inspect and drive each sandbox by hand (`/_sandbox/…` control routes).
    pub fn control_urls(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "FreshBooks state",
                format!("{}/_sandbox/state", self.freshbooks.base_url()),
            ),
            (
                "FreshBooks deliveries",
                format!("{}/_sandbox/deliveries", self.freshbooks.base_url()),
            ),
            (
                "FreshBooks clients (POST to create)",
                format!(
                    "{}/_sandbox/accounts/{}/clients",
                    self.freshbooks.base_url(),
                    self.account_id()
                ),
            ),
            (
                "QuickBooks state",
                format!("{}/_sandbox/state", self.quickbooks.base_url()),
            ),
            (
                "QuickBooks deliveries",
                format!("{}/_sandbox/deliveries", self.quickbooks.base_url()),
            ),
            (
                "QuickBooks customers (POST to create)",
                format!(
                    "{}/_sandbox/companies/{}/customers",
                    self.quickbooks.base_url(),
                    self.realm_id()
                ),
            ),
            (
                "Mailchimp state",
                format!("{}/_sandbox/state", self.mailchimp.root_url()),
            ),
            (
                "Mailchimp requests",
                format!("{}/_sandbox/requests", self.mailchimp.root_url()),
            ),
            (
                "HubSpot portal",
                format!(
                    "{}/_sandbox/portals/{}",
                    self.hubspot.base_url(),
                    self.portal_id()
                ),
            ),
            (
                "HubSpot call counts",
                format!("{}/_sandbox/stats", self.hubspot.base_url()),
            ),
        ]
    }
}
