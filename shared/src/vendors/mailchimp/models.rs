//! The Mailchimp Marketing API objects the connector writes and reads (docs/vendors/mailchimp.md §2–3), as
//! request/response bodies. Optional fields are left out of requests when `None`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `PUT /lists/{list_id}/members/{subscriber_hash}`. Never carries `status` (it would overwrite
/// an existing member's consent); `status_if_new` applies only when the member is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberUpsert {
    pub email_address: String,
    pub status_if_new: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub merge_fields: BTreeMap<String, Value>,
}

/// A list member as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub(crate) email_address: String,
    /// subscribed | unsubscribed | cleaned | pending | transactional | archived.
    pub status: String,
    #[serde(default)]
    pub merge_fields: BTreeMap<String, Value>,
    #[serde(default)]
    pub(crate) tags: Vec<MemberTag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MemberTag {
    pub(crate) name: String,
}

/// One change in `POST /lists/{list_id}/members/{hash}/tags`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagChange {
    pub name: String,
    /// `true` adds the tag (`active`), `false` removes it (`inactive`).
    #[serde(with = "tag_status")]
    pub status: bool,
}

mod tag_status {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(active: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if *active { "active" } else { "inactive" })
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(String::deserialize(d)? == "active")
    }
}

/// An audience merge field (`/lists/{list_id}/merge-fields`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeField {
    /// Up to 10 characters, upper case (`FNAME`, `FB_BAL`).
    pub tag: String,
    pub name: String,
    /// text | number | date | …
    #[serde(rename = "type")]
    pub kind: String,
}

/// An e-commerce store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Store {
    pub id: String,
    pub list_id: String,
    pub name: String,
    pub currency_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_syncing: Option<bool>,
}

/// `PUT /ecommerce/stores/{store_id}/customers/{customer_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// At most 50 characters.
    pub id: String,
    pub email_address: String,
    pub opt_in_status: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
}

/// A product with its variants (`POST /ecommerce/stores/{store_id}/products`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub title: String,
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
}

/// Only the customer's id: orders reference a customer upserted before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRef {
    pub id: String,
}

/// An order (`POST /ecommerce/stores/{store_id}/orders`, `PATCH …/orders/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub customer: CustomerRef,
    pub currency_code: String,
    pub order_total: f64,
    /// paid | pending | refunded | cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub financial_status: Option<String>,
    /// When the order happened in the source system, ISO-8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at_foreign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at_foreign: Option<String>,
    pub lines: Vec<OrderLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    pub id: String,
    pub product_id: String,
    pub product_variant_id: String,
    pub quantity: i64,
    pub price: f64,
}

/// Mailchimp's error document (`application/problem+json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Problem {
    #[serde(default)]
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) status: u16,
    #[serde(default)]
    pub(crate) detail: String,
    #[serde(default)]
    pub(crate) instance: Option<String>,
    #[serde(default)]
    pub(crate) errors: Vec<ProblemField>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProblemField {
    #[serde(default)]
    pub(crate) field: String,
    #[serde(default)]
    pub(crate) message: String,
}
