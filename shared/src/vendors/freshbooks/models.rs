//! The FreshBooks records the connector reads, as the accounting API returns them
//! (docs/vendors/freshbooks.md §3.4–3.6).
//!
//! Only the fields the flows use are modelled; everything else in a response is ignored. Money
//! is a decimal string on the wire and [`Decimal`] here (never a float). Timestamps such as
//! `updated` are US/Eastern without a zone; [`eastern_to_utc`] converts them.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::US::Eastern;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};

/// The `vis_state` of a deleted record (0 is active, 2 archived; docs/vendors/freshbooks.md §3.2).
pub(crate) const VIS_DELETED: i64 = 1;

/// `{"amount": "1222.00", "code": "USD"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// The amount, exact (a decimal string on the wire).
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// Upper-case ISO-4217; FreshBooks omits it in some request echoes.
    #[serde(default)]
    pub(crate) code: Option<String>,
}

impl Money {
    fn zero() -> Self {
        Money {
            amount: Decimal::ZERO,
            code: None,
        }
    }
}

/// A client (`/accounting/account/{account_id}/users/clients/{id}`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Client {
    #[serde(deserialize_with = "id_string")]
    pub(crate) id: String,
    /// The client's email; the flows key the Mailchimp member on it (`None` when blank).
    #[serde(default, deserialize_with = "blank_is_none")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) fname: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) lname: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) organization: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) currency_code: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) bus_phone: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) mob_phone: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) home_phone: Option<String>,
    /// The primary (billing) address.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) p_street: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) p_street2: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) p_city: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) p_province: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) p_code: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) p_country: Option<String>,
    #[serde(default)]
    pub(crate) vis_state: i64,
    /// US/Eastern, zone-less: `2019-11-14 11:27:45`.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub updated: Option<String>,
}

impl Client {
    pub(crate) fn is_deleted(&self) -> bool {
        self.vis_state == VIS_DELETED
    }
}

/// An invoice (`/accounting/account/{account_id}/invoices/invoices/{id}`), with its lines when
/// read with `include[]=lines`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    #[serde(deserialize_with = "id_string")]
    pub(crate) id: String,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) invoice_number: Option<String>,
    /// The client's id.
    #[serde(deserialize_with = "id_string")]
    pub customerid: String,
    #[serde(default)]
    pub(crate) create_date: Option<NaiveDate>,
    #[serde(default)]
    pub(crate) due_date: Option<NaiveDate>,
    /// When the invoice was paid in full; `None` while unpaid (FreshBooks sends a blank date).
    #[serde(default, deserialize_with = "blank_date_is_none")]
    pub date_paid: Option<NaiveDate>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) currency_code: Option<String>,
    /// The invoice total.
    pub amount: Money,
    /// What is still owed (zero when FreshBooks omits it).
    #[serde(default = "Money::zero")]
    pub outstanding: Money,
    #[serde(default = "Money::zero")]
    pub(crate) paid: Money,
    /// 0 disputed, 1 draft, 2 sent, 3 viewed, 4 paid, 5 auto-paid, 6 retry, 7 failed, 8 partial.
    #[serde(default)]
    pub status: i64,
    /// created, draft, sent, viewed, paid, partial, overdue, … (docs/vendors/freshbooks.md §3.5).
    #[serde(default, deserialize_with = "blank_is_none")]
    pub v3_status: Option<String>,
    /// unpaid | partial | paid | auto-paid.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub payment_status: Option<String>,
    /// draft | created | sent | viewed | outstanding.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) display_status: Option<String>,
    #[serde(default)]
    pub(crate) vis_state: i64,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) updated: Option<String>,
    /// The invoice's lines; empty unless it was read with `include[]=lines`.
    #[serde(default)]
    pub lines: Vec<Line>,
}

/// `status` code of a draft invoice.
const INVOICE_STATUS_DRAFT: i64 = 1;

impl Invoice {
    /// Deleted in FreshBooks (`vis_state` 1); an archived invoice is not deleted.
    pub fn is_deleted(&self) -> bool {
        self.vis_state == VIS_DELETED
    }

    /// Not yet sent (or marked sent): FreshBooks does not count it in accounting.
    pub(crate) fn is_draft(&self) -> bool {
        self.status == INVOICE_STATUS_DRAFT
            || self.v3_status.as_deref() == Some("draft")
            || self.display_status.as_deref() == Some("draft")
    }
}

/// One invoice line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    #[serde(deserialize_with = "id_string")]
    pub(crate) lineid: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) description: Option<String>,
    /// A string or a number on the wire.
    #[serde(deserialize_with = "decimal_any")]
    pub qty: Decimal,
    pub(crate) unit_cost: Money,
    pub(crate) amount: Money,
}

/// A payment (`/accounting/account/{account_id}/payments/payments/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    #[serde(deserialize_with = "id_string")]
    pub(crate) id: String,
    /// The invoice the payment is for.
    #[serde(deserialize_with = "id_string")]
    pub invoiceid: String,
    #[serde(default, deserialize_with = "opt_id_string")]
    pub(crate) clientid: Option<String>,
    /// The amount paid.
    pub amount: Money,
    #[serde(default)]
    pub(crate) date: Option<NaiveDate>,
    #[serde(default, rename = "type", deserialize_with = "blank_is_none")]
    pub(crate) kind: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) note: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) transactionid: Option<String>,
    #[serde(default)]
    pub(crate) vis_state: i64,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) updated: Option<String>,
}

/// A bill vendor: someone the business pays
/// (`/accounting/account/{account_id}/bill_vendors/bill_vendors/{id}`, docs/vendors/freshbooks.md
/// §3.7). The field names follow FreshBooks' SDKs and third-party clients (UNCONFIRMED against a
/// FreshBooks reference page), so every one of them is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillVendor {
    #[serde(alias = "vendorid", deserialize_with = "id_string")]
    pub(crate) id: String,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) vendor_name: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) primary_contact_first_name: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) primary_contact_last_name: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) primary_contact_email: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) phone: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) website: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) street: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) street2: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) city: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) province: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) postal_code: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) country: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub(crate) currency_code: Option<String>,
    #[serde(default)]
    pub(crate) vis_state: i64,
}

impl BillVendor {
    /// Deleted in FreshBooks (`vis_state` 1); an archived vendor is not deleted.
    pub fn is_deleted(&self) -> bool {
        self.vis_state == VIS_DELETED
    }
}

/// The accounting entities the connector reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Entity {
    /// A client: a Mailchimp member and e-commerce customer.
    Client,
    /// An invoice: a Mailchimp e-commerce order.
    Invoice,
    /// A payment: it changes its invoice's paid state.
    Payment,
    /// A bill vendor: a HubSpot company. Polled, backfilled and subscribed to only for an
    /// account some connection of which runs a flow that lists it among its source entities
    /// (the Mailchimp flow does not).
    #[serde(rename = "bill_vendor")]
    BillVendor,
}

impl Entity {
    /// Every entity, in the order polls and backfills go through them. Which of them an
    /// account's poll lists is up to its connections' flows ([`Entity::among`]).
    pub const ALL: [Entity; 4] = [
        Entity::Client,
        Entity::Invoice,
        Entity::Payment,
        Entity::BillVendor,
    ];

    /// The entities named in `names` (flows' source entities), in [`Entity::ALL`]'s order.
    /// Names of no FreshBooks entity are left out: a FreshBooks-sourced flow naming one is
    /// caught by the flow table's tests, not at run time.
    pub fn among(names: &BTreeSet<&str>) -> Vec<Entity> {
        Entity::ALL
            .into_iter()
            .filter(|e| names.contains(e.as_str()))
            .collect()
    }

    /// The name events and record keys use.
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Client => "client",
            Entity::Invoice => "invoice",
            Entity::Payment => "payment",
            Entity::BillVendor => "bill_vendor",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Entity> {
        Entity::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// One record a changed-since listing returned: enough to enqueue an event for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub(crate) entity: Entity,
    /// The record's id.
    pub id: String,
    /// The record's `updated` as FreshBooks sent it (US/Eastern, zone-less).
    pub updated: Option<String>,
    /// The record is deleted (`vis_state` 1, or found by the deleted-records pass).
    pub deleted: bool,
}

/// One business the authorised user belongs to (`/auth/api/v1/users/me`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Business {
    /// The business id (the events API's `business_id`).
    pub business_id: i64,
    /// The accounting account id: what connections name as the FreshBooks account.
    pub account_id: String,
    /// The business's name, to pick the account by.
    pub name: String,
}

/// The authorised user and their businesses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The user's identity id.
    pub identity_id: i64,
    /// The user's login email, if FreshBooks gives it.
    pub email: Option<String>,
    /// The businesses the user can act for.
    pub businesses: Vec<Business>,
}

/// A webhook callback as the events API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callback {
    /// FreshBooks' id for the callback, to verify, resend or delete it by.
    #[serde(deserialize_with = "id_string")]
    pub callbackid: String,
    /// The event subscribed to: a noun (`invoice`, all its events) or `noun.verb`.
    pub event: String,
    /// Where FreshBooks delivers: the webhook's callback route.
    pub uri: String,
    /// Whether the verification handshake completed; FreshBooks delivers only to verified
    /// callbacks.
    #[serde(default)]
    pub verified: bool,
}

/// A FreshBooks `YYYY-MM-DD HH:MM:SS` (US/Eastern, zone-less) timestamp in UTC. `None` when it
/// does not parse. An ambiguous local time (the autumn DST overlap) takes the earlier instant;
/// a nonexistent one (the spring gap) is read as standard time.
pub fn eastern_to_utc(s: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    match Eastern.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(early, _) => Some(early.with_timezone(&Utc)),
        chrono::LocalResult::None => {
            // In the spring-forward gap: EST is UTC−5.
            Some(Utc.from_utc_datetime(&(naive + chrono::Duration::hours(5))))
        }
    }
}

/// The US/Eastern calendar date of a UTC instant: what `search[updated_min]` compares against.
pub fn eastern_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&Eastern).date_naive()
}

/// Ids are numbers in most responses and strings in some; both become strings.
fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    opt_id_string(d)?.ok_or_else(|| serde::de::Error::custom("missing id"))
}

fn opt_id_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        serde_json::Value::Null | serde_json::Value::String(_) => None,
        other => {
            return Err(serde::de::Error::custom(format!(
                "an id must be a number or a string, not {}",
                json_kind(&other)
            )));
        }
    })
}

/// FreshBooks sends `""` or `null` for absent strings.
fn blank_is_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.trim().is_empty()))
}

/// `date_paid` is `null`, `""` or `YYYY-MM-DD`.
fn blank_date_is_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    match blank_is_none(d)? {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(&s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| serde::de::Error::custom("date_paid is not YYYY-MM-DD")),
    }
}

/// A quantity: a decimal string or a JSON number.
fn decimal_any<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom("quantity is not a decimal")),
        serde_json::Value::Number(n) => n
            .to_string()
            .parse()
            .map_err(|_| serde::de::Error::custom("quantity is not a decimal")),
        other => Err(serde::de::Error::custom(format!(
            "quantity must be a number or a string, not {}",
            json_kind(&other)
        ))),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn invoice_parses_the_documented_shape() {
        let inv: Invoice = serde_json::from_value(json!({
            "id": 217506, "invoiceid": 217506, "invoice_number": "0000042", "customerid": 921895,
            "create_date": "2026-03-01", "due_date": "2026-03-31", "date_paid": null,
            "currency_code": "USD", "amount": {"amount": "1222.00", "code": "USD"},
            "outstanding": {"amount": "222.00", "code": "USD"},
            "paid": {"amount": "1000.00", "code": "USD"},
            "status": 8, "v3_status": "partial", "payment_status": "partial",
            "display_status": "sent", "vis_state": 0, "updated": "2026-03-02 11:27:45",
            "lines": [{"lineid": 1, "name": "Consulting", "description": "",
                       "qty": "2", "unit_cost": {"amount": "611.00", "code": "USD"},
                       "amount": {"amount": "1222.00", "code": "USD"}}]
        }))
        .unwrap();
        assert_eq!(inv.id, "217506");
        assert_eq!(inv.customerid, "921895");
        assert_eq!(inv.amount.amount, Decimal::new(122200, 2));
        assert_eq!(inv.lines[0].qty, Decimal::from(2));
        assert_eq!(inv.lines[0].description, None);
        assert!(!inv.is_draft() && !inv.is_deleted());
    }

    #[test]
    fn eastern_times_convert_with_dst() {
        // EST (winter): +5 h; EDT (summer): +4 h (docs/vendors/freshbooks.md §0.6).
        assert_eq!(
            eastern_to_utc("2019-11-14 11:27:45").unwrap().to_rfc3339(),
            "2019-11-14T16:27:45+00:00"
        );
        assert_eq!(
            eastern_to_utc("2026-07-01 08:00:00").unwrap().to_rfc3339(),
            "2026-07-01T12:00:00+00:00"
        );
        assert!(eastern_to_utc("yesterday").is_none());
        let late_utc = "2026-03-02T03:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(eastern_date(late_utc).to_string(), "2026-03-01");
    }

    #[test]
    fn odd_ids_and_blanks_are_tolerated_or_refused_clearly() {
        let c: Client =
            serde_json::from_value(json!({"id": "77", "email": " ", "vis_state": 1})).unwrap();
        assert_eq!(c.id, "77");
        assert_eq!(c.email, None);
        assert!(c.is_deleted());
        let err = serde_json::from_value::<Client>(json!({"id": [1]})).unwrap_err();
        assert!(err.to_string().contains("an array"), "{err}");
    }
}
