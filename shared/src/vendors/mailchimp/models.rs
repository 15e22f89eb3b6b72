//! The Mailchimp Marketing API objects the connector writes and reads (docs/vendors/mailchimp.md §2–3), as
//! request/response bodies. Optional fields are left out of requests when `None`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `PUT /lists/{list_id}/members/{subscriber_hash}`. Never carries `status` (it would overwrite
/// an existing member's consent); `status_if_new` applies only when the member is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberUpsert {
    /// The member's address (the path's hash is of its lower-cased form).
    pub email_address: String,
    /// The status a new member gets (`subscribed`, `pending`, `transactional`…); the
    /// connection's `status_if_new` option.
    pub status_if_new: String,
    /// Merge field values by tag (`FNAME`, `FB_BALANCE`…); left out when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub merge_fields: BTreeMap<String, Value>,
}

/// A list member as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub(crate) email_address: String,
    /// subscribed | unsubscribed | cleaned | pending | transactional | archived.
    pub status: String,
    /// Merge field values by tag, as Mailchimp holds them.
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
    /// The tag's name (created on first use).
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
    /// The label Mailchimp's UI shows.
    pub name: String,
    /// text | number | date | …
    #[serde(rename = "type")]
    pub kind: String,
}

/// An e-commerce store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Store {
    /// The store id, chosen by the connector (the connection's `store_id`).
    pub id: String,
    /// The audience the store's customers belong to; it can never change (docs/vendors/mailchimp.md §3.1).
    pub list_id: String,
    /// The store's display name.
    pub name: String,
    /// The store's currency (ISO 4217).
    pub currency_code: String,
    /// While `true`, the store's automations (abandoned cart, order notifications) are paused;
    /// a backfill sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_syncing: Option<bool>,
}

/// `PUT /ecommerce/stores/{store_id}/customers/{customer_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// At most 50 characters.
    pub id: String,
    /// The address that links the customer to the audience member.
    pub email_address: String,
    /// Whether a customer who is not yet a member is subscribed; the connector sends `false`.
    pub opt_in_status: bool,
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
}

/// A product with its variants (`POST /ecommerce/stores/{store_id}/products`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// The product id, derived from what the source sells (e.g. an invoice line's name).
    pub id: String,
    /// The product's display name.
    pub title: String,
    /// Its variants; the connector makes one, with the product's id.
    pub variants: Vec<Variant>,
}

/// A variant of a [`Product`]: what order lines point at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// The variant id.
    pub id: String,
    /// The variant's display name.
    pub title: String,
    /// A list price, if any (order lines carry their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
}

/// Only the customer's id: orders reference a customer upserted before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRef {
    /// The [`Customer::id`].
    pub id: String,
}

/// An order (`POST /ecommerce/stores/{store_id}/orders`, `PATCH …/orders/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The order id, derived from the source record (e.g. the invoice's).
    pub id: String,
    /// Who placed it.
    pub customer: CustomerRef,
    /// ISO 4217.
    pub currency_code: String,
    /// The order's total.
    pub order_total: f64,
    /// paid | pending | refunded | cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub financial_status: Option<String>,
    /// When the order happened in the source system, ISO-8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at_foreign: Option<String>,
    /// When the order last changed in the source system, ISO-8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at_foreign: Option<String>,
    /// What was ordered; at least one line.
    pub lines: Vec<OrderLine>,
}

/// One line of an [`Order`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The line id, unique within the order.
    pub id: String,
    /// The [`Product`] sold.
    pub product_id: String,
    /// The [`Variant`] sold.
    pub product_variant_id: String,
    /// How many (whole: a line with a fractional quantity is sent as 1 at the line's amount).
    pub quantity: i64,
    /// The price of one.
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
