//! [`HubspotApi`]: the calls the HubSpot-targeted flow, `ping` and `apply` make, as a trait so
//! flow logic is unit-tested on an in-memory fake and run against the real client or the
//! sandbox.
//!
//! Batch calls take at most [`super::BATCH_LIMIT`] inputs (the client refuses more) and answer
//! per input, in input order: the outer `Err` is the whole call failing (429, 401, 5xx,
//! transport), an inner `Err` one input refused in a 207 partial answer (or missing from the
//! results, which reads as transient).

use async_trait::async_trait;

use super::error::HubspotError;
use super::models::{
    AccountDetails, Association, AssociationType, HubObject, ObjectInput, ObjectType,
    PropertyDefinition, PropertyGroup, TokenInfo,
};

/// Per-input results of a batch write, in input order.
pub type PerInput<T> = Vec<Result<T, HubspotError>>;

/// One HubSpot portal, through one token.
#[async_trait]
pub trait HubspotApi: Send + Sync {
    /// `POST /crm/v3/objects/{type}/batch/upsert` with `idProperty` on each input: creates
    /// or updates by a unique property (`email`, `fb_client_id`, …).
    async fn upsert(
        &self,
        object: ObjectType,
        id_property: &str,
        inputs: &[ObjectInput],
    ) -> Result<PerInput<HubObject>, HubspotError>;

    /// `POST /crm/v3/objects/{type}/batch/update`, inputs keyed by HubSpot id.
    async fn update(
        &self,
        object: ObjectType,
        inputs: &[ObjectInput],
    ) -> Result<PerInput<HubObject>, HubspotError>;

    /// `POST /crm/v3/objects/{type}/batch/read` by HubSpot id (or by `id_property`), with
    /// `properties`; a missing object reads as `None`.
    async fn read(
        &self,
        object: ObjectType,
        id_property: Option<&str>,
        ids: &[String],
        properties: &[&str],
    ) -> Result<Vec<Option<HubObject>>, HubspotError>;

    /// `POST /crm/v3/objects/{type}/batch/archive` by HubSpot id (to the recycle bin); an id
    /// already gone is not an error.
    async fn archive(&self, object: ObjectType, ids: &[String]) -> Result<(), HubspotError>;

    /// `POST /crm/v4/associations/{from}/{to}/batch/associate/default`: the unlabelled
    /// association, idempotent.
    async fn associate(
        &self,
        from: ObjectType,
        to: ObjectType,
        pairs: &[Association],
    ) -> Result<PerInput<()>, HubspotError>;

    /// `POST /crm/v4/associations/{from}/{to}/batch/create` with one label for every pair.
    async fn associate_labelled(
        &self,
        from: ObjectType,
        to: ObjectType,
        label: AssociationType,
        pairs: &[Association],
    ) -> Result<PerInput<()>, HubspotError>;

    /// `GET /crm/v3/properties/{type}`: every property of the object type.
    async fn properties(&self, object: ObjectType)
    -> Result<Vec<PropertyDefinition>, HubspotError>;

    /// `POST /crm/v3/properties/{type}`.
    async fn create_property(
        &self,
        object: ObjectType,
        property: &PropertyDefinition,
    ) -> Result<(), HubspotError>;

    /// `GET /crm/v3/properties/{type}/groups`.
    async fn property_groups(&self, object: ObjectType)
    -> Result<Vec<PropertyGroup>, HubspotError>;

    /// `POST /crm/v3/properties/{type}/groups`.
    async fn create_property_group(
        &self,
        object: ObjectType,
        group: &PropertyGroup,
    ) -> Result<(), HubspotError>;

    /// `GET /account-info/v3/details`: the portal behind the token and its time zone.
    async fn account(&self) -> Result<AccountDetails, HubspotError>;

    /// Sets the portal's burst limit (calls per rolling 10 s for the app, from its tier, §4.1)
    /// when the connection names the tier, until an answer's `X-HubSpot-RateLimit-Max` states
    /// the limit: from then on the portal's answers set it and this does nothing. Makes no
    /// call.
    fn set_burst(&self, per_ten_seconds: u32) {
        let _ = per_ten_seconds;
    }

    /// The token's portal and scopes: `POST /oauth/v2/private-apps/get/access-token-info` for
    /// a private-app token or service key, `GET /oauth/v1/access-tokens/{token}` for an OAuth
    /// access token.
    async fn token_info(&self) -> Result<TokenInfo, HubspotError>;
}
