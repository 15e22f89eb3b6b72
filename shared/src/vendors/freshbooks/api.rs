//! [`FreshbooksApi`]: the reads every FreshBooks-sourced flow makes, as a trait so flow logic can
//! be unit-tested with an in-memory fake and run against the real client (or the sandbox).

use async_trait::async_trait;
use chrono::NaiveDate;

use super::FreshbooksError;
use super::models::{BillVendor, Changed, Client, Entity, Invoice, Payment};

/// Reads from one FreshBooks account set (one credential set). Implementations fetch an access
/// token themselves, refresh it before expiry and once on a 401, and treat FreshBooks errors
/// that arrive with HTTP 200 as errors.
///
/// "Not found" is `Ok(None)`, not an error: a record deleted for good is a normal event. A
/// record deleted with `vis_state = 1` is returned, with `Client::is_deleted` etc. true.
#[async_trait]
pub trait FreshbooksApi: Send + Sync {
    /// `GET /accounting/account/{account}/users/clients/{id}`.
    async fn client(&self, account: &str, id: &str) -> Result<Option<Client>, FreshbooksError>;

    /// `GET /accounting/account/{account}/invoices/invoices/{id}?include[]=lines`.
    async fn invoice(&self, account: &str, id: &str) -> Result<Option<Invoice>, FreshbooksError>;

    /// Every invoice of one client (active and archived, not deleted), all pages, with lines.
    async fn invoices_for_client(
        &self,
        account: &str,
        client_id: &str,
    ) -> Result<Vec<Invoice>, FreshbooksError>;

    /// `GET /accounting/account/{account}/payments/payments/{id}`.
    async fn payment(&self, account: &str, id: &str) -> Result<Option<Payment>, FreshbooksError>;

    /// `GET /accounting/account/{account}/bill_vendors/bill_vendors/{id}`.
    async fn bill_vendor(
        &self,
        account: &str,
        id: &str,
    ) -> Result<Option<BillVendor>, FreshbooksError>;

    /// Records of `entity` updated on or after `since` (US/Eastern date; FreshBooks'
    /// `search[updated_min]` is day-granular), deleted ones included, all pages.
    async fn changed_since(
        &self,
        account: &str,
        entity: Entity,
        since: NaiveDate,
    ) -> Result<Vec<Changed>, FreshbooksError>;
}
