//! FreshBooks records in, HubSpot properties out: pure functions, no I/O, no clock (the
//! caller passes the client's standing, computed for "today").
//!
//! Every value is a string (HubSpot's properties are, docs/vendors/hubspot.md §3.1); money keeps
//! its decimal digits exactly; dates are `YYYY-MM-DD` (§5; the sandbox takes that form and
//! midnight-UTC milliseconds alike, which form HubSpot prefers is UNCONFIRMED). Absent source
//! values are left out rather than sent as `""`, so a blank FreshBooks field never wipes what a
//! salesperson typed in HubSpot; the flow's own `fb_…` properties are always sent in full.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::flows::freshbooks_standing::{PaymentState, Standing};
use crate::ids::Email;
use crate::vendors::freshbooks::models::{BillVendor, Client, Invoice, Line, Payment};
use crate::vendors::hubspot::models::{
    ObjectType, Properties, PropertyDefinition, PropertyGroup, PropertyOption,
};

/// The property group holding the flow's properties on every object type.
pub(crate) const GROUP: &str = "freshbooks";

/// Contacts and companies: the FreshBooks client id.
pub(crate) const FB_CLIENT_ID: &str = "fb_client_id";
/// Companies: the unique upsert key ([`company_key`]).
pub(crate) const FB_COMPANY_KEY: &str = "fb_company_key";
/// Companies: the FreshBooks bill vendor id, when the company is a vendor.
const FB_VENDOR_ID: &str = "fb_vendor_id";
/// Companies: `true` when the company is a FreshBooks bill vendor.
const FB_IS_VENDOR: &str = "fb_is_vendor";
/// Contacts and companies: `true` once the FreshBooks record is deleted.
pub(crate) const FB_DELETED: &str = "fb_deleted";
/// Invoices: the unique upsert key (`<account>:<invoice id>`).
pub(crate) const FB_INVOICE_ID: &str = "fb_invoice_id";
const FB_INVOICE_NUMBER: &str = "fb_invoice_number";
/// Line items: the unique upsert key (`<account>:<invoice id>:<line id>`).
pub(crate) const FB_LINE_KEY: &str = "fb_line_key";
/// Commerce payments: the unique upsert key (`<account>:<payment id>`).
pub(crate) const FB_PAYMENT_ID: &str = "fb_payment_id";
const FB_PAYMENT_STATUS: &str = "fb_payment_status";
const FB_OUTSTANDING: &str = "fb_outstanding_balance";
const FB_TOTAL_INVOICED: &str = "fb_total_invoiced";
const FB_INVOICE_COUNT: &str = "fb_invoice_count";
const FB_LAST_INVOICE_DATE: &str = "fb_last_invoice_date";
const FB_LAST_PAYMENT_DATE: &str = "fb_last_payment_date";
const FB_CURRENCY: &str = "fb_currency";

/// HubSpot's invoice status values (docs/vendors/hubspot.md §3.6).
pub(crate) const STATUS_DRAFT: &str = "draft";
pub(crate) const STATUS_OPEN: &str = "open";
pub(crate) const STATUS_VOIDED: &str = "voided";

/// Mail providers whose domain says nothing about a client's company: a client writing from
/// one of them gets no company domain. The one list the product keeps.
pub(crate) const FREE_MAIL_DOMAINS: &[&str] = &[
    "aol.com",
    "comcast.net",
    "fastmail.com",
    "gmail.com",
    "gmx.com",
    "gmx.de",
    "googlemail.com",
    "hey.com",
    "hotmail.co.uk",
    "hotmail.com",
    "icloud.com",
    "live.com",
    "mac.com",
    "mail.com",
    "me.com",
    "msn.com",
    "outlook.com",
    "pm.me",
    "proton.me",
    "protonmail.com",
    "qq.com",
    "verizon.net",
    "web.de",
    "yahoo.co.uk",
    "yahoo.com",
    "yandex.com",
    "yandex.ru",
    "zoho.com",
];

/// The company domain an email address implies: its domain, lower-cased, unless it is a
/// free-mail provider's.
pub(crate) fn company_domain(email: &str) -> Option<String> {
    let domain = email.rsplit_once('@')?.1.trim().to_ascii_lowercase();
    (!domain.is_empty() && domain.contains('.') && !FREE_MAIL_DOMAINS.contains(&domain.as_str()))
        .then_some(domain)
}

/// A website's host (`https://www.acme.com/about` → `acme.com`), for a vendor without an email.
fn website_domain(url: &str) -> Option<String> {
    let rest = url.trim();
    let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
    let host = rest
        .split(['/', '?', '#', ':'])
        .next()?
        .to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host).to_string();
    (host.contains('.') && !FREE_MAIL_DOMAINS.contains(&host.as_str())).then_some(host)
}

/// The unique key a company is upserted by. A domain names the company whoever brings it, so a
/// bill vendor and a client's organization on the same domain meet in one company; without a
/// domain, the FreshBooks record names it.
pub(crate) fn company_key(account: &str, domain: Option<&str>, record: CompanyOf<'_>) -> String {
    match (domain, record) {
        (Some(d), _) => format!("domain:{d}"),
        (None, CompanyOf::Client(id)) => format!("fb:{account}:client:{id}"),
        (None, CompanyOf::Vendor(id)) => format!("fb:{account}:vendor:{id}"),
    }
}

/// Which FreshBooks record a company comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompanyOf<'a> {
    Client(&'a str),
    Vendor(&'a str),
}

/// `<account>:<id>`: what the flow's unique keys are made of, since several FreshBooks accounts
/// may write to one portal.
pub(crate) fn scoped(account: &str, id: &str) -> String {
    format!("{account}:{id}")
}

fn put(p: &mut Properties, name: &str, value: Option<&str>) {
    if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
        p.insert(name.to_string(), v.to_string());
    }
}

fn date(d: Option<NaiveDate>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn money(d: Decimal) -> String {
    d.normalize().to_string()
}

/// The financial context every client's contact and company carries.
fn standing_properties(p: &mut Properties, client_id: &str, s: &Standing) {
    p.insert(FB_CLIENT_ID.into(), client_id.to_string());
    p.insert(FB_PAYMENT_STATUS.into(), s.state.as_str().into());
    p.insert(FB_OUTSTANDING.into(), money(s.balance));
    p.insert(FB_TOTAL_INVOICED.into(), money(s.total_invoiced));
    p.insert(FB_INVOICE_COUNT.into(), s.invoice_count.to_string());
    p.insert(
        FB_LAST_INVOICE_DATE.into(),
        date(s.last_invoice.as_ref().and_then(|l| l.date)),
    );
    p.insert(FB_LAST_PAYMENT_DATE.into(), date(s.last_payment));
    p.insert(FB_CURRENCY.into(), s.currency.clone().unwrap_or_default());
    p.insert(FB_DELETED.into(), "false".into());
}

/// A client's contact: name, email, phone, address, company name and standing.
pub(crate) fn contact(client: &Client, email: &Email, s: &Standing) -> Properties {
    let mut p = Properties::new();
    p.insert("email".into(), email.to_string());
    put(&mut p, "firstname", client.fname.as_deref());
    put(&mut p, "lastname", client.lname.as_deref());
    put(&mut p, "company", client.organization.as_deref());
    put(&mut p, "phone", phone(client));
    address(&mut p, client_address(client));
    standing_properties(&mut p, &client.id, s);
    p
}

/// The client's business phone, else mobile, else home.
fn phone(client: &Client) -> Option<&str> {
    client
        .bus_phone
        .as_deref()
        .or(client.mob_phone.as_deref())
        .or(client.home_phone.as_deref())
}

/// A client's primary (billing) address, in [`address`]'s order.
fn client_address(client: &Client) -> [Option<&str>; 6] {
    [
        client.p_street.as_deref(),
        client.p_street2.as_deref(),
        client.p_city.as_deref(),
        client.p_province.as_deref(),
        client.p_code.as_deref(),
        client.p_country.as_deref(),
    ]
}

/// HubSpot's address properties (the same names on contacts and companies).
fn address(p: &mut Properties, [street, street2, city, state, zip, country]: [Option<&str>; 6]) {
    let street = match (street, street2.filter(|s| !s.trim().is_empty())) {
        (Some(a), Some(b)) => Some(format!("{}, {}", a.trim(), b.trim())),
        (a, b) => a.or(b).map(str::to_string),
    };
    put(p, "address", street.as_deref());
    put(p, "city", city);
    put(p, "state", state);
    put(p, "zip", zip);
    put(p, "country", country);
}

/// The properties a deleted client's contact (or company) keeps getting: the flag only.
pub(crate) fn deleted() -> Properties {
    Properties::from([(FB_DELETED.to_string(), "true".to_string())])
}

/// A client's organization as a company: name, domain, phone, address, standing, the key.
pub(crate) fn client_company(account: &str, client: &Client, s: &Standing) -> Option<Company> {
    let name = client.organization.as_deref()?.trim();
    if name.is_empty() {
        return None;
    }
    let domain = client.email.as_deref().and_then(company_domain);
    let mut p = Properties::new();
    p.insert("name".into(), name.to_string());
    put(&mut p, "domain", domain.as_deref());
    put(&mut p, "phone", phone(client));
    address(&mut p, client_address(client));
    standing_properties(&mut p, &client.id, s);
    let key = company_key(account, domain.as_deref(), CompanyOf::Client(&client.id));
    p.insert(FB_COMPANY_KEY.into(), key.clone());
    Some(Company { key, properties: p })
}

/// A bill vendor as a company, marked as a FreshBooks vendor.
pub(crate) fn vendor_company(account: &str, v: &BillVendor) -> Company {
    let domain = v
        .primary_contact_email
        .as_deref()
        .and_then(company_domain)
        .or_else(|| v.website.as_deref().and_then(website_domain));
    let mut p = Properties::new();
    let contact_name = [
        v.primary_contact_first_name.as_deref(),
        v.primary_contact_last_name.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let name = v
        .vendor_name
        .clone()
        .or_else(|| (!contact_name.is_empty()).then_some(contact_name))
        .unwrap_or_else(|| format!("FreshBooks vendor {}", v.id));
    p.insert("name".into(), name);
    put(&mut p, "domain", domain.as_deref());
    put(&mut p, "phone", v.phone.as_deref());
    put(&mut p, "website", v.website.as_deref());
    address(
        &mut p,
        [
            v.street.as_deref(),
            v.street2.as_deref(),
            v.city.as_deref(),
            v.province.as_deref(),
            v.postal_code.as_deref(),
            v.country.as_deref(),
        ],
    );
    p.insert(FB_VENDOR_ID.into(), v.id.clone());
    p.insert(FB_IS_VENDOR.into(), "true".into());
    p.insert(FB_DELETED.into(), v.is_deleted().to_string());
    let key = company_key(account, domain.as_deref(), CompanyOf::Vendor(&v.id));
    p.insert(FB_COMPANY_KEY.into(), key.clone());
    Company { key, properties: p }
}

/// A company to upsert: its unique key and properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Company {
    pub(crate) key: String,
    pub(crate) properties: Properties,
}

impl Company {
    /// Another record's view of the same company (a vendor and a client on one domain): its
    /// properties join these, the client's standing and name winning over the vendor's.
    pub(crate) fn merge(&mut self, other: Company) {
        for (k, v) in other.properties {
            self.properties.entry(k).or_insert(v);
        }
    }
}

/// An invoice's own properties (its status is written apart, once its lines and contact are
/// associated: HubSpot refuses to open an invoice without them, §3.6).
pub(crate) fn invoice(account: &str, inv: &Invoice, currency: &str) -> Properties {
    let mut p = Properties::new();
    p.insert(FB_INVOICE_ID.into(), scoped(account, &inv.id));
    p.insert("hs_currency".into(), currency.to_string());
    put(
        &mut p,
        "hs_invoice_date",
        inv.create_date.map(|d| d.to_string()).as_deref(),
    );
    put(
        &mut p,
        "hs_due_date",
        inv.due_date.map(|d| d.to_string()).as_deref(),
    );
    let number = inv.invoice_number.as_deref().unwrap_or(&inv.id);
    p.insert("hs_title".into(), format!("FreshBooks invoice {number}"));
    p.insert(FB_INVOICE_NUMBER.into(), number.to_string());
    p
}

/// The HubSpot status an invoice should have: voided when deleted in FreshBooks, draft while a
/// FreshBooks draft, else open (HubSpot turns it paid itself once payments cover it, §3.7).
pub(crate) fn invoice_status(inv: &Invoice) -> &'static str {
    if inv.is_deleted() || inv.v3_status.as_deref() == Some("void") {
        STATUS_VOIDED
    } else if inv.is_draft() {
        STATUS_DRAFT
    } else {
        STATUS_OPEN
    }
}

/// One line item per FreshBooks line, keyed by invoice and line id.
pub(crate) fn line_item(account: &str, invoice_id: &str, line: &Line) -> (String, Properties) {
    let key = format!("{account}:{invoice_id}:{}", line.lineid);
    let mut p = Properties::new();
    p.insert(FB_LINE_KEY.into(), key.clone());
    let name = if line.name.trim().is_empty() {
        format!("Line {}", line.lineid)
    } else {
        line.name.trim().to_string()
    };
    p.insert("name".into(), name);
    put(&mut p, "description", line.description.as_deref());
    // HubSpot refuses a negative price (§3.5); a FreshBooks discount line is negative, so it
    // travels as a negative quantity of a positive price.
    let (qty, price) = if line.unit_cost.amount < Decimal::ZERO {
        (-line.qty, -line.unit_cost.amount)
    } else {
        (line.qty, line.unit_cost.amount)
    };
    p.insert("quantity".into(), money(qty));
    p.insert("price".into(), money(price));
    (key, p)
}

/// A payment as a commerce payment (§3.7): amount, date, currency, the payer's email.
pub(crate) fn payment(
    account: &str,
    pay: &Payment,
    currency: Option<&str>,
    email: Option<&Email>,
) -> Properties {
    let mut p = Properties::new();
    p.insert(FB_PAYMENT_ID.into(), scoped(account, &pay.id));
    p.insert("hs_initial_amount".into(), money(pay.amount.amount));
    p.insert(
        "hs_initiated_date".into(),
        pay.date.map(|d| d.to_string()).unwrap_or_default(),
    );
    put(&mut p, "hs_currency_code", currency);
    put(&mut p, "hs_customer_email", email.map(|e| e.as_str()));
    put(
        &mut p,
        "hs_payment_method",
        pay.kind.as_deref().map(payment_method),
    );
    p
}

/// HubSpot's `hs_payment_method` option for a FreshBooks payment `type`: an enumeration of
/// `ach|card|cash|check|wire_transfer|other`, so FreshBooks' display names ("Check", "Credit
/// Card", "VISA"…, docs/vendors/freshbooks.md) sent as they are were refused with
/// `INVALID_OPTION` and the payment dead-lettered.
pub(crate) fn payment_method(kind: &str) -> &'static str {
    match kind.trim().to_ascii_lowercase().as_str() {
        "check" | "cheque" => "check",
        "cash" => "cash",
        "ach" => "ach",
        "bank transfer" | "wire" | "wire transfer" => "wire_transfer",
        "credit card" | "debit" | "visa" | "mastercard" | "discover" | "amex" | "diners"
        | "jcb" => "card",
        _ => "other",
    }
}

/// The group and properties the flow writes, per object type, for `apply` to create when
/// missing (§5). Unique keys are `hasUniqueValue`, fixed once created.
pub(crate) fn property_definitions() -> Vec<(ObjectType, PropertyDefinition)> {
    let text = |name: &str, label: &str, unique: bool| PropertyDefinition {
        name: name.into(),
        label: label.into(),
        kind: "string".into(),
        field_type: "text".into(),
        group_name: GROUP.into(),
        has_unique_value: unique,
        ..PropertyDefinition::default()
    };
    let number = |name: &str, label: &str, hint: &str| PropertyDefinition {
        kind: "number".into(),
        field_type: "number".into(),
        number_display_hint: Some(hint.into()),
        ..text(name, label, false)
    };
    let day = |name: &str, label: &str| PropertyDefinition {
        kind: "date".into(),
        field_type: "date".into(),
        ..text(name, label, false)
    };
    let flag = |name: &str, label: &str| PropertyDefinition {
        kind: "bool".into(),
        field_type: "booleancheckbox".into(),
        options: vec![
            PropertyOption {
                label: "Yes".into(),
                value: "true".into(),
                display_order: 0,
                hidden: false,
            },
            PropertyOption {
                label: "No".into(),
                value: "false".into(),
                display_order: 1,
                hidden: false,
            },
        ],
        ..text(name, label, false)
    };
    let status = PropertyDefinition {
        kind: "enumeration".into(),
        field_type: "select".into(),
        options: PaymentState::ALL
            .iter()
            .zip(0..)
            .map(|(s, i)| PropertyOption {
                label: s.as_str().into(),
                value: s.as_str().into(),
                display_order: i,
                hidden: false,
            })
            .collect(),
        ..text(FB_PAYMENT_STATUS, "FreshBooks payment status", false)
    };
    let standing = || {
        vec![
            text(FB_CLIENT_ID, "FreshBooks client id", false),
            status.clone(),
            number(FB_OUTSTANDING, "FreshBooks outstanding balance", "currency"),
            number(FB_TOTAL_INVOICED, "FreshBooks total invoiced", "currency"),
            number(FB_INVOICE_COUNT, "FreshBooks invoice count", "unformatted"),
            day(FB_LAST_INVOICE_DATE, "FreshBooks last invoice date"),
            day(FB_LAST_PAYMENT_DATE, "FreshBooks last payment date"),
            text(FB_CURRENCY, "FreshBooks currency", false),
            flag(FB_DELETED, "Deleted in FreshBooks"),
        ]
    };
    let mut out = Vec::new();
    out.extend(standing().into_iter().map(|d| (ObjectType::Contacts, d)));
    out.extend(
        standing()
            .into_iter()
            .chain([
                text(FB_COMPANY_KEY, "FreshBooks company key", true),
                text(FB_VENDOR_ID, "FreshBooks bill vendor id", false),
                flag(FB_IS_VENDOR, "FreshBooks bill vendor"),
            ])
            .map(|d| (ObjectType::Companies, d)),
    );
    out.extend([
        (
            ObjectType::Invoices,
            text(FB_INVOICE_ID, "FreshBooks invoice key", true),
        ),
        (
            ObjectType::Invoices,
            text(FB_INVOICE_NUMBER, "FreshBooks invoice number", false),
        ),
        (
            ObjectType::LineItems,
            text(FB_LINE_KEY, "FreshBooks line key", true),
        ),
        (
            ObjectType::CommercePayments,
            text(FB_PAYMENT_ID, "FreshBooks payment key", true),
        ),
    ]);
    out
}

/// The flow's property group, as created on each object type.
pub(crate) fn group() -> PropertyGroup {
    PropertyGroup {
        name: GROUP.into(),
        label: "FreshBooks".into(),
        display_order: -1,
    }
}
