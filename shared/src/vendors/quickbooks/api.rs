//! [`QuickbooksApi`]: the calls the QuickBooks flows make, as a trait so flow logic is tested
//! with an in-memory fake and runs unchanged against QuickBooks or the sandbox.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::QuickbooksError;
use super::models::{Attachable, ChangedCustomers, Customer, CustomerUpdate};

/// One QuickBooks company (realm) through one credential set. Implementations send
/// `minorversion` explicitly, fetch their access token themselves (refreshed before expiry and
/// once on a 401), keep to the realm's limits (500 requests a minute, 10 at once, shared by the
/// queue's concurrent workers) and log `intuit_tid` with every error.
///
/// Reads of customers return inactive (deactivated) customers too: inactive is not deleted.
#[async_trait]
pub trait QuickbooksApi: Send + Sync {
    /// `GET /v3/company/{realm}/customer/{id}`. `Ok(None)` when QuickBooks answers Fault 610
    /// (Object Not Found).
    async fn customer(&self, realm: &str, id: &str) -> Result<Option<Customer>, QuickbooksError>;

    /// Customers, active or not, whose `PrimaryEmailAddr` is `email`
    /// (`SELECT * FROM Customer WHERE PrimaryEmailAddr = '…' AND Active IN (true, false)`, with
    /// `'` escaped as `\'`). Usually zero or one.
    async fn customers_by_email(
        &self,
        realm: &str,
        email: &str,
    ) -> Result<Vec<Customer>, QuickbooksError>;

    /// Change Data Capture for `Customer` since `since` (at most 30 days back):
    /// `GET /v3/company/{realm}/cdc?entities=Customer&changedSince=…`. One call; the answer is
    /// capped at 1000 objects (see [`ChangedCustomers::truncated`]).
    async fn changed_customers(
        &self,
        realm: &str,
        since: DateTime<Utc>,
    ) -> Result<ChangedCustomers, QuickbooksError>;

    /// Every customer, active or not, updated after `since` (`None`: every customer), through
    /// the query endpoint, all pages of up to 1000 (`ORDERBY Id`). The fallback when CDC cannot
    /// cover a window (gap over 30 days, or a capped answer). Never truncated.
    async fn customers_updated_since(
        &self,
        realm: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<ChangedCustomers, QuickbooksError>;

    /// Sparse update (`"sparse": true`) under `SyncToken` control. A stale token is
    /// [`QuickbooksError::is_stale`] (Fault 5010): re-read and re-apply.
    async fn update_customer(
        &self,
        realm: &str,
        update: &CustomerUpdate,
    ) -> Result<Customer, QuickbooksError>;

    /// Creates a note-only attachable linked to customer `customer_id`. `request_id` goes out as
    /// `requestid`, so a retry of the same write returns the first result instead of a second
    /// note. `note` is cut to [`super::models::MAX_NOTE_CHARS`].
    async fn create_customer_note(
        &self,
        realm: &str,
        customer_id: &str,
        note: &str,
        request_id: &str,
    ) -> Result<Attachable, QuickbooksError>;

    /// The company's name (`GET /v3/company/{realm}/companyinfo/{realm}`): what `ping` shows.
    async fn company_name(&self, realm: &str) -> Result<String, QuickbooksError>;
}
