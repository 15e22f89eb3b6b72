//! FreshBooks records in, Mailchimp writes out: pure functions, no I/O, no clock (the caller
//! passes "today").
//!
//! Money stays [`Decimal`] through every computation and becomes `f64` only in the Mailchimp
//! bodies ([`to_f64`]), because Mailchimp's schema takes JSON numbers.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use serde_json::json;

use crate::event::short_hash;
use crate::flows::freshbooks_standing::{LastInvoice, PaymentState, invoice_currency, standing};
use crate::ids::Email;
use crate::vendors::freshbooks::models::{Client, Invoice, Line, eastern_to_utc};
use crate::vendors::mailchimp::models::{
    Customer, CustomerRef, MemberUpsert, MergeField, Order, OrderLine, Product, TagChange, Variant,
};

/// Mailchimp's limit on customer (and advisable limit on store) ids.
const MAX_ID_LEN: usize = 50;

use crate::flows::mailchimp_member::{name_merge_field_definitions, name_merge_fields};

/// The flow's own merge tags. Tags are at most 10 characters (Mailchimp's limit).
/// `paid_up` | `pending` | `overdue`.
const FB_STATUS: &str = "FB_STATUS";
/// Outstanding balance in the client's currency.
const FB_BALANCE: &str = "FB_BALANCE";
/// Total of the latest invoice.
const FB_LASTINV: &str = "FB_LASTINV";
/// Date of the latest invoice.
const FB_LASTDT: &str = "FB_LASTDT";

/// The tag every synced member carries.
const TAG_FRESHBOOKS: &str = "freshbooks";

/// The merge fields the flow needs on the audience, created when missing.
pub(crate) fn merge_field_definitions() -> Vec<MergeField> {
    let field = |tag: &str, name: &str, kind: &str| MergeField {
        tag: tag.to_string(),
        name: name.to_string(),
        kind: kind.to_string(),
    };
    let mut fields = name_merge_field_definitions();
    fields.extend([
        field(FB_STATUS, "FreshBooks payment status", "text"),
        field(FB_BALANCE, "FreshBooks outstanding balance", "number"),
        field(FB_LASTINV, "FreshBooks last invoice total", "number"),
        field(FB_LASTDT, "FreshBooks last invoice date", "date"),
    ]);
    fields
}

/// A client's standing, from its invoices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PaymentStatus {
    /// Nothing outstanding.
    PaidUp,
    /// Something outstanding, nothing past due.
    Pending,
    /// Something outstanding past its due date.
    Overdue,
}

impl PaymentStatus {
    const ALL: [PaymentStatus; 3] = [
        PaymentStatus::PaidUp,
        PaymentStatus::Pending,
        PaymentStatus::Overdue,
    ];

    /// The `FB_STATUS` merge-field value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::PaidUp => "paid_up",
            PaymentStatus::Pending => "pending",
            PaymentStatus::Overdue => "overdue",
        }
    }

    /// The member tag for this status.
    fn tag(self) -> &'static str {
        match self {
            PaymentStatus::PaidUp => "fb-paid-up",
            PaymentStatus::Pending => "fb-pending",
            PaymentStatus::Overdue => "fb-overdue",
        }
    }
}

/// The FreshBooks financial context a member carries: the client's [`Standing`], with
/// Mailchimp's three statuses (partly paid and unpaid are both `pending`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FinancialContext {
    pub(crate) status: PaymentStatus,
    pub(crate) currency: Option<String>,
    balance: Decimal,
    last_invoice: Option<LastInvoice>,
}

/// The client's financial context on `today` (see [`standing`]).
pub(crate) fn financial_context(
    client: &Client,
    invoices: &[Invoice],
    today: NaiveDate,
) -> FinancialContext {
    let s = standing(client, invoices, today);
    FinancialContext {
        status: match s.state {
            PaymentState::Paid => PaymentStatus::PaidUp,
            PaymentState::Partial | PaymentState::Unpaid => PaymentStatus::Pending,
            PaymentState::Overdue => PaymentStatus::Overdue,
        },
        currency: s.currency,
        balance: s.balance,
        last_invoice: s.last_invoice,
    }
}

/// The client's email as Mailchimp should see it: trimmed, `None` when blank. Case is kept
/// (Mailchimp stores the address as given and hashes it lower-cased).
pub(crate) fn client_email(client: &Client) -> Option<Email> {
    Email::parse(client.email.as_deref())
}

/// Decimal → JSON number for a Mailchimp body. Every `Decimal` fits an `f64` (with rounding
/// beyond ~15 significant digits, far past any invoice amount).
fn to_f64(d: Decimal) -> f64 {
    d.to_f64().unwrap_or_default()
}

/// The member upsert for a client with `email`. Names and company are sent only when FreshBooks
/// has them, so a blank FreshBooks field does not wipe what someone typed in Mailchimp. The
/// `FB_*` fields are the flow's own and always sent; empty ones are sent as `""` to clear a
/// stale value (the upsert skips merge validation).
pub(crate) fn member_upsert(
    client: &Client,
    email: &str,
    ctx: &FinancialContext,
    status_if_new: &str,
) -> MemberUpsert {
    let mut merge_fields = name_merge_fields(
        client.fname.as_deref(),
        client.lname.as_deref(),
        client.organization.as_deref(),
    );
    merge_fields.insert(FB_STATUS.into(), json!(ctx.status.as_str()));
    merge_fields.insert(FB_BALANCE.into(), json!(to_f64(ctx.balance)));
    let (total, date) = match &ctx.last_invoice {
        Some(last) => (
            json!(to_f64(last.total)),
            // Date merge fields are sent as YYYY-MM-DD. UNCONFIRMED whether Mailchimp parses
            // that for a field whose display format is MM/DD/YYYY; the API is documented to
            // take ISO dates.
            last.date.map_or(json!(""), |d| json!(d.to_string())),
        ),
        None => (json!(""), json!("")),
    };
    merge_fields.insert(FB_LASTINV.into(), total);
    merge_fields.insert(FB_LASTDT.into(), date);
    MemberUpsert {
        email_address: email.to_string(),
        status_if_new: status_if_new.to_string(),
        merge_fields,
    }
}

/// The tag changes for a context: `freshbooks` and the status tag on, the other two status tags
/// off (a client moves between them).
pub(crate) fn status_tags(ctx: &FinancialContext) -> Vec<TagChange> {
    let mut tags = vec![TagChange {
        name: TAG_FRESHBOOKS.to_string(),
        status: true,
    }];
    tags.extend(PaymentStatus::ALL.into_iter().map(|s| TagChange {
        name: s.tag().to_string(),
        status: s == ctx.status,
    }));
    tags
}

/// The e-commerce customer id of a FreshBooks client: `fb-<account>-<client id>`, or a hash of
/// both when that would pass Mailchimp's 50-character limit.
fn customer_id(account: &str, client_id: &str) -> String {
    let id = format!("fb-{account}-{client_id}");
    if id.len() <= MAX_ID_LEN {
        id
    } else {
        format!("fb-{}", short_hash(&[account, client_id], 40))
    }
}

/// The e-commerce customer for a client. `opt_in_status` is always false: an invoice is not
/// marketing consent, and Mailchimp never lets `false` downgrade an existing member.
pub(crate) fn customer(account: &str, client: &Client, email: &str) -> Customer {
    let clean = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Customer {
        id: customer_id(account, &client.id),
        email_address: email.to_string(),
        opt_in_status: false,
        first_name: clean(&client.fname),
        last_name: clean(&client.lname),
        company: clean(&client.organization),
    }
}

/// The store id a connection writes to when it names none: the connection name, shortened with
/// a hash past Mailchimp's 50 characters.
pub(crate) fn default_store_id(connection: &str) -> String {
    if connection.len() <= MAX_ID_LEN {
        connection.to_string()
    } else {
        let head: String = connection.chars().take(MAX_ID_LEN - 17).collect();
        format!("{head}-{}", short_hash(&[connection], 16))
    }
}

/// Title of the product a line sells: its name, or `Item` for an unnamed line.
fn line_title(line: &Line) -> String {
    let name = line.name.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        "Item".to_string()
    } else {
        name
    }
}

/// The product (and variant) id for a line name: FreshBooks lines name free-text items, not
/// catalogue entries, so the id is derived from the normalised name (case and spacing ignored)
/// and the same name always lands on the same product.
pub(crate) fn product_id(name: &str) -> String {
    let normalised = name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    format!("fb-{}", short_hash(&[&normalised], 16))
}

/// Title of the stand-in line for an invoice without lines.
const WHOLE_INVOICE: &str = "FreshBooks invoice";
/// Its line id (FreshBooks line ids are numbers, so it cannot collide).
const WHOLE_INVOICE_LINE: &str = "invoice";

/// The products an invoice's lines need, each with one variant of the same id (Mailchimp's
/// own plugin models catalogue-less items this way, docs/vendors/mailchimp.md §3.3), without duplicates.
pub(crate) fn products(invoice: &Invoice) -> Vec<Product> {
    let titles: Vec<String> = if invoice.lines.is_empty() {
        vec![WHOLE_INVOICE.to_string()]
    } else {
        invoice.lines.iter().map(line_title).collect()
    };
    let mut out: Vec<Product> = Vec::new();
    for title in titles {
        let id = product_id(&title);
        if out.iter().any(|p| p.id == id) {
            continue;
        }
        out.push(Product {
            id: id.clone(),
            title: title.clone(),
            variants: vec![Variant {
                id,
                title,
                price: None,
            }],
        });
    }
    out
}

/// One order line. Mailchimp quantities are integers and FreshBooks' may be fractional (hours,
/// 2.5 kg): a positive whole quantity is sent as is with the unit cost as price; anything else
/// (fractional, zero, negative) is sent as quantity 1 priced at the line amount, so the line
/// still adds up to what the invoice says.
fn order_line(line: &Line) -> OrderLine {
    let id = product_id(&line_title(line));
    let whole = (line.qty > Decimal::ZERO && line.qty.fract().is_zero())
        .then(|| line.qty.to_i64())
        .flatten();
    let (quantity, price) = match whole {
        Some(q) => (q, line.unit_cost.amount),
        None => (1, line.amount.amount),
    };
    OrderLine {
        id: line.lineid.clone(),
        product_id: id.clone(),
        product_variant_id: id,
        quantity,
        price: to_f64(price),
    }
}

/// Fully paid according to any of FreshBooks' three status fields.
fn is_paid(invoice: &Invoice) -> bool {
    matches!(
        invoice.payment_status.as_deref(),
        Some("paid" | "auto-paid")
    ) || matches!(invoice.status, 4 | 5)
        || matches!(
            invoice.v3_status.as_deref(),
            Some("paid" | "autopaid" | "success")
        )
}

/// What the order already in Mailchimp says, for [`financial_status`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ExistingOrder<'a> {
    pub(crate) financial_status: Option<&'a str>,
    pub(crate) order_total: f64,
}

/// The order's `financial_status`, given the existing order (if any):
/// deleted → `cancelled`; paid → `paid`; otherwise `refunded` when the order was paid (or
/// refunded) and less has been paid than that order's total — a payment was removed or
/// refunded; it stays refunded until paid again. A paid invoice that is merely edited to a
/// higher total (now partially paid) is `pending`, not a refund. Anything else (sent, viewed,
/// partial, overdue, a synced draft) → `pending`.
pub(crate) fn financial_status(
    invoice: &Invoice,
    existing: Option<ExistingOrder<'_>>,
) -> &'static str {
    if invoice.is_deleted() {
        "cancelled"
    } else if is_paid(invoice) {
        "paid"
    } else if existing.is_some_and(|e| {
        matches!(e.financial_status, Some("paid" | "refunded"))
            && cents(invoice.paid.amount) < (e.order_total * 100.0).round() as i64
    }) {
        "refunded"
    } else {
        "pending"
    }
}

/// A decimal amount in whole cents (rounded), for comparing with Mailchimp's float totals.
fn cents(d: Decimal) -> i64 {
    (d * Decimal::ONE_HUNDRED)
        .round()
        .to_i64()
        .unwrap_or(i64::MAX)
}

/// Why an invoice cannot become an order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MappingError {
    #[error("invoice {0} has no currency (neither currency_code nor amount.code)")]
    NoCurrency(String),
}

/// The order for an invoice. `existing` is the order already in Mailchimp, if any (it decides
/// `refunded`). `processed_at_foreign` is the invoice's
/// `create_date` at midnight US/Eastern, so purchase-date segments use the invoice date rather
/// than the sync time. `updated_at_foreign` is left out on purpose: it would change with every
/// FreshBooks edit and defeat skip-unchanged for edits the order does not show.
pub(crate) fn order(
    account: &str,
    invoice: &Invoice,
    existing: Option<ExistingOrder<'_>>,
) -> Result<Order, MappingError> {
    let currency_code =
        invoice_currency(invoice).ok_or_else(|| MappingError::NoCurrency(invoice.id.clone()))?;
    let lines = if invoice.lines.is_empty() {
        // Mailchimp requires at least one line; an invoice without lines becomes one line for
        // its total.
        let id = product_id(WHOLE_INVOICE);
        vec![OrderLine {
            id: WHOLE_INVOICE_LINE.to_string(),
            product_id: id.clone(),
            product_variant_id: id,
            quantity: 1,
            price: to_f64(invoice.amount.amount),
        }]
    } else {
        invoice.lines.iter().map(order_line).collect()
    };
    let processed_at_foreign = invoice
        .create_date
        .and_then(|d| eastern_to_utc(&format!("{d} 00:00:00")))
        .or_else(|| invoice.updated.as_deref().and_then(eastern_to_utc))
        .map(|t| t.to_rfc3339());
    Ok(Order {
        id: invoice.id.clone(),
        customer: CustomerRef {
            id: customer_id(account, &invoice.customerid),
        },
        currency_code,
        order_total: to_f64(invoice.amount.amount),
        financial_status: Some(financial_status(invoice, existing).to_string()),
        processed_at_foreign,
        updated_at_foreign: None,
        lines,
    })
}

#[cfg(test)]
mod tests;
