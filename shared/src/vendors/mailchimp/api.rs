//! [`MailchimpApi`]: the calls the Mailchimp-targeted flows make, as a trait so flow logic can be
//! unit-tested with an in-memory fake and run against the real client (or the sandbox).

use async_trait::async_trait;

use super::error::MailchimpError;
use super::models::{Customer, Member, MemberUpsert, MergeField, Order, Product, Store, TagChange};

/// One Mailchimp account (one API key or OAuth token). Members are addressed by email; the
/// implementation computes the subscriber hash. "Not found" reads are `Ok(None)`.
#[async_trait]
pub trait MailchimpApi: Send + Sync {
    /// `PUT /lists/{list_id}/members/{hash}?skip_merge_validation=true`: create or update.
    async fn upsert_member(
        &self,
        list_id: &str,
        member: &MemberUpsert,
    ) -> Result<Member, MailchimpError>;

    /// `GET /lists/{list_id}/members/{hash}`.
    async fn member(&self, list_id: &str, email: &str) -> Result<Option<Member>, MailchimpError>;

    /// `DELETE /lists/{list_id}/members/{hash}` (archive, never delete-permanent). `Ok(false)`
    /// when there was nothing to archive: no such member (404), or one Mailchimp will not
    /// archive because it is already archived, cleaned or pending (405).
    async fn archive_member(&self, list_id: &str, email: &str) -> Result<bool, MailchimpError>;

    /// `POST /lists/{list_id}/members/{hash}/tags`. `is_syncing` suppresses tag automations.
    async fn update_tags(
        &self,
        list_id: &str,
        email: &str,
        tags: &[TagChange],
        is_syncing: bool,
    ) -> Result<(), MailchimpError>;

    /// `GET /lists/{list_id}/merge-fields?count=1000`.
    async fn merge_fields(&self, list_id: &str) -> Result<Vec<MergeField>, MailchimpError>;

    /// `POST /lists/{list_id}/merge-fields`.
    async fn create_merge_field(
        &self,
        list_id: &str,
        field: &MergeField,
    ) -> Result<MergeField, MailchimpError>;

    /// `GET /ecommerce/stores/{store_id}`.
    async fn store(&self, store_id: &str) -> Result<Option<Store>, MailchimpError>;

    /// `POST /ecommerce/stores`.
    async fn create_store(&self, store: &Store) -> Result<Store, MailchimpError>;

    /// `PATCH /ecommerce/stores/{store_id}` with `{"is_syncing": …}`.
    async fn set_store_syncing(&self, store_id: &str, syncing: bool) -> Result<(), MailchimpError>;

    /// `PUT /ecommerce/stores/{store_id}/customers/{customer.id}`.
    async fn upsert_customer(
        &self,
        store_id: &str,
        customer: &Customer,
    ) -> Result<(), MailchimpError>;

    /// `GET /ecommerce/stores/{store_id}/products/{product_id}`.
    async fn product(
        &self,
        store_id: &str,
        product_id: &str,
    ) -> Result<Option<Product>, MailchimpError>;

    /// `POST /ecommerce/stores/{store_id}/products`.
    async fn create_product(&self, store_id: &str, product: &Product)
    -> Result<(), MailchimpError>;

    /// `GET /ecommerce/stores/{store_id}/orders/{order_id}`.
    async fn order(&self, store_id: &str, order_id: &str) -> Result<Option<Order>, MailchimpError>;

    /// `POST /ecommerce/stores/{store_id}/orders`.
    async fn create_order(&self, store_id: &str, order: &Order) -> Result<(), MailchimpError>;

    /// `PATCH /ecommerce/stores/{store_id}/orders/{order.id}` with the whole order. Lines not in
    /// `order` stay (Mailchimp's PATCH cannot remove lines): see [`Self::delete_order_line`].
    async fn update_order(&self, store_id: &str, order: &Order) -> Result<(), MailchimpError>;

    /// `DELETE /ecommerce/stores/{store_id}/orders/{order_id}/lines/{line_id}`; a missing line
    /// is not an error.
    async fn delete_order_line(
        &self,
        store_id: &str,
        order_id: &str,
        line_id: &str,
    ) -> Result<(), MailchimpError>;
}
