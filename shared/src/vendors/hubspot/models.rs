//! The HubSpot shapes the product reads and writes (docs/vendors/hubspot.md §1, §3, §5). Every
//! property value travels as a string (§3.1); an absent and a `null` value are both `None`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A CRM object type, as its path segment names it (docs/vendors/hubspot.md §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectType {
    /// `contacts` (`0-1`).
    Contacts,
    /// `companies` (`0-2`).
    Companies,
    /// `line_items`.
    LineItems,
    /// `invoices`.
    Invoices,
    /// `commerce_payments`.
    CommercePayments,
}

impl ObjectType {
    /// Every object type the product writes.
    pub const ALL: [ObjectType; 5] = [
        ObjectType::Contacts,
        ObjectType::Companies,
        ObjectType::LineItems,
        ObjectType::Invoices,
        ObjectType::CommercePayments,
    ];

    /// The path segment (`contacts`, `line_items`, …), also the properties API's object type.
    pub fn path(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contacts",
            ObjectType::Companies => "companies",
            ObjectType::LineItems => "line_items",
            ObjectType::Invoices => "invoices",
            ObjectType::CommercePayments => "commerce_payments",
        }
    }

    /// The scope a write needs (docs/vendors/hubspot.md §3.2, §3.5–§3.7).
    pub fn write_scope(self) -> &'static str {
        match self {
            ObjectType::Contacts => "crm.objects.contacts.write",
            ObjectType::Companies => "crm.objects.companies.write",
            ObjectType::LineItems => "crm.objects.line_items.write",
            ObjectType::Invoices => "crm.objects.invoices.write",
            ObjectType::CommercePayments => "crm.objects.commercepayments.write",
        }
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// Property values by internal name, as HubSpot takes them: strings, `""` clears.
pub type Properties = BTreeMap<String, String>;

/// One input of a batch write: the record's key (the `idProperty` value for an upsert, the
/// HubSpot id for an update) and the properties to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInput {
    /// The key: an email, a `fb_…` key, or a HubSpot object id.
    pub id: String,
    /// The properties to write.
    pub properties: Properties,
}

/// A CRM object as HubSpot returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct HubObject {
    /// HubSpot's object id (`hs_object_id`).
    pub id: String,
    /// The returned properties; `null` values read as `None`.
    #[serde(default)]
    pub properties: BTreeMap<String, Option<String>>,
    /// On an upsert: whether the object was created by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<bool>,
}

impl HubObject {
    /// A property's value, `None` when absent or `null`.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).and_then(|v| v.as_deref())
    }
}

/// One pair of a batch association (object ids).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Association {
    /// The `from` object's id.
    pub from: String,
    /// The `to` object's id.
    pub to: String,
}

/// A labelled association type (docs/vendors/hubspot.md §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociationType {
    /// `HUBSPOT_DEFINED`, `USER_DEFINED`, `INTEGRATOR_DEFINED` or `WORK`.
    pub association_category: &'static str,
    /// The type id, e.g. 1 for a contact's primary company.
    pub association_type_id: u32,
}

impl AssociationType {
    /// contact → company, primary (type id 1, docs/vendors/hubspot.md §3.4).
    pub const CONTACT_TO_PRIMARY_COMPANY: AssociationType = AssociationType {
        association_category: "HUBSPOT_DEFINED",
        association_type_id: 1,
    };
}

/// A property definition (docs/vendors/hubspot.md §5), read from and written to
/// `/crm/v3/properties/{objectType}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyDefinition {
    /// Internal name, the one the API uses.
    pub name: String,
    /// Label shown in HubSpot.
    pub label: String,
    /// `bool|date|datetime|enumeration|number|phone_number|string`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `booleancheckbox|date|number|select|text|…`.
    pub field_type: String,
    /// The property group's internal name.
    pub group_name: String,
    /// One value per object: what makes a property an upsert key. Fixed at creation.
    #[serde(default)]
    pub has_unique_value: bool,
    /// An enumeration's options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<PropertyOption>,
    /// How a number shows (`currency`, `unformatted`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_display_hint: Option<String>,
    /// Shown under the label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An enumeration property's option.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyOption {
    /// What people see.
    pub label: String,
    /// What the API writes.
    pub value: String,
    /// Order in pickers.
    #[serde(default)]
    pub display_order: i32,
    /// Hidden from pickers.
    #[serde(default)]
    pub hidden: bool,
}

/// A property group.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyGroup {
    /// Internal name.
    pub name: String,
    /// Label shown in HubSpot.
    pub label: String,
    /// Order among the object's groups.
    #[serde(default)]
    pub display_order: i32,
}

/// `GET /account-info/v3/details` (docs/vendors/hubspot.md §1).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountDetails {
    /// The portal (hub) id.
    pub portal_id: u64,
    /// `STANDARD`, `DEVELOPER_TEST`, `SANDBOX`, `APP_DEVELOPER`.
    #[serde(default)]
    pub account_type: String,
    /// The portal's IANA time zone: the daily limit resets at its midnight (§4.1).
    #[serde(default)]
    pub time_zone: String,
    /// The portal's currency.
    #[serde(default)]
    pub company_currency: String,
    /// Where the portal's data lives (`na1`, `eu1`, …).
    #[serde(default)]
    pub data_hosting_location: String,
}

/// What a token is (docs/vendors/hubspot.md §1): its portal and scopes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenInfo {
    /// The portal (hub) id the token belongs to.
    pub hub_id: u64,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// The app (private app, OAuth app) behind the token, if said.
    pub app_id: Option<u64>,
}
