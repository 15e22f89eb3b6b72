//! QuickBooks Online Accounting API v3 records as the flows use them (docs/vendors/quickbooks.md §3). Field
//! spellings are Intuit's (`PascalCase`); unknown fields are ignored, so Intuit adding fields
//! never breaks a read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The `minorversion` sent with every request. Since 2025-08-01 versions below 75 are ignored;
/// we send it explicitly so a future default change cannot alter what we read (docs/vendors/quickbooks.md §3.1).
pub const MINOR_VERSION: &str = "75";

/// The most characters `Customer.Notes` and `Attachable.Note` hold. Intuit's limit as quoted by
/// third parties (UNCONFIRMED); we never send more.
pub const MAX_NOTE_CHARS: usize = 2000;

/// A customer (`GET /v3/company/{realm}/customer/{id}`). CDC "deleted" stubs carry only `Id`,
/// `status = "Deleted"` and `MetaData`, so everything else is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Customer {
    /// The customer's id within its company.
    pub id: String,
    /// Optimistic-lock token; a sparse update must send the current one.
    #[serde(default)]
    pub sync_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) display_name: Option<String>,
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) primary_email_addr: Option<EmailAddress>,
    /// `false` once the customer is deactivated (QuickBooks' only "delete" for customers).
    #[serde(default = "active_default")]
    pub active: bool,
    /// The customer's free-text notes (we write at most [`MAX_NOTE_CHARS`]); the
    /// Mailchimp → QuickBooks flow keeps a status line in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) meta_data: Option<MetaData>,
    /// `"Deleted"` on CDC stubs of deleted records; absent otherwise.
    #[serde(default, rename = "status", skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<String>,
}

fn active_default() -> bool {
    true
}

impl Customer {
    /// The primary email, trimmed; `None` when missing or blank.
    pub fn email(&self) -> Option<&str> {
        self.primary_email_addr
            .as_ref()
            .and_then(|e| e.address.as_deref())
            .map(str::trim)
            .filter(|e| !e.is_empty())
    }

    /// A CDC stub of a deleted record.
    pub fn is_deleted(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("deleted"))
    }

    /// When QuickBooks last changed it, as the server wrote it (kept as text: the CDC seen
    /// markers compare it verbatim).
    pub fn last_updated(&self) -> Option<&str> {
        self.meta_data
            .as_ref()
            .and_then(|m| m.last_updated_time.as_deref())
    }
}

/// `PrimaryEmailAddr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EmailAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) address: Option<String>,
}

/// `MetaData`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct MetaData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) create_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_updated_time: Option<String>,
}

/// A sparse customer update (`POST /customer` with `"sparse": true`): only the fields set are
/// written. Never a full update — that would null every field left out (docs/vendors/quickbooks.md §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerUpdate {
    /// The customer to update.
    pub id: String,
    /// The `SyncToken` of the customer as last read; stale → Fault 5010.
    pub sync_token: String,
    /// The new `Notes`, if they change.
    pub notes: Option<String>,
    /// The new `Active`, if it changes (`false` deactivates the customer).
    pub active: Option<bool>,
}

/// A note-only attachable linked to one customer (`POST /attachable`): how an activity shows on
/// the customer (docs/vendors/quickbooks.md §3.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attachable {
    /// QuickBooks' id; `None` on a create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sync_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
    /// What the attachable is linked to: the customer.
    #[serde(default)]
    pub attachable_ref: Vec<AttachableRef>,
}

/// `AttachableRef[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttachableRef {
    /// The linked object.
    pub entity_ref: EntityRef,
    #[serde(default)]
    pub(crate) include_on_send: bool,
}

/// `EntityRef` (`type` and `value` are lower case in Intuit's JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRef {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// The object's id.
    pub value: String,
}

/// Customers changed since a time, and the server's clock at the answer: the next cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedCustomers {
    /// Changed customers, deleted stubs included ([`Customer::is_deleted`]).
    pub customers: Vec<Customer>,
    /// The response's `time`: what the next `changedSince` must be (never our own clock).
    pub server_time: DateTime<Utc>,
    /// The answer held as many objects as QuickBooks returns at most (1000 for CDC): there may
    /// be more, so the caller must not trust it to be complete.
    pub truncated: bool,
}
