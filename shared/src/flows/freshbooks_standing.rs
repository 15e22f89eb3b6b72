//! A FreshBooks client's standing from its invoices: what every FreshBooks-sourced flow tells
//! the target about a client's money (payment status, balance, totals, dates). Pure: the caller
//! passes the invoices and "today".

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::vendors::freshbooks::models::{Client, Invoice};

/// Where a client stands with its invoices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PaymentState {
    /// Nothing outstanding.
    Paid,
    /// Something outstanding on an invoice that is partly paid; nothing past due.
    Partial,
    /// Something outstanding, nothing paid on it, nothing past due.
    Unpaid,
    /// Something outstanding past its due date.
    Overdue,
}

impl PaymentState {
    /// Every state, in the order targets list them.
    pub(crate) const ALL: [PaymentState; 4] = [
        PaymentState::Paid,
        PaymentState::Partial,
        PaymentState::Unpaid,
        PaymentState::Overdue,
    ];

    /// `paid`, `partial`, `unpaid`, `overdue`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PaymentState::Paid => "paid",
            PaymentState::Partial => "partial",
            PaymentState::Unpaid => "unpaid",
            PaymentState::Overdue => "overdue",
        }
    }
}

/// The latest counted invoice's total and date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LastInvoice {
    pub(crate) total: Decimal,
    pub(crate) currency: Option<String>,
    pub(crate) date: Option<NaiveDate>,
}

/// A client's standing on a given day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Standing {
    pub(crate) state: PaymentState,
    /// The currency the sums are in: the client's, else the latest invoice's.
    pub(crate) currency: Option<String>,
    /// Sum of `outstanding` over the counted invoices in `currency`.
    pub(crate) balance: Decimal,
    /// Sum of `amount` over the counted invoices in `currency`.
    pub(crate) total_invoiced: Decimal,
    /// How many invoices count (any currency).
    pub(crate) invoice_count: usize,
    pub(crate) last_invoice: Option<LastInvoice>,
    /// The latest `date_paid` of a counted invoice. FreshBooks invoices carry no date for a
    /// partial payment, so a partly paid client's last payment shows only once an invoice is
    /// paid in full.
    pub(crate) last_payment: Option<NaiveDate>,
}

/// Invoices that count: sent (not draft) and not deleted — what FreshBooks' own accounting
/// counts.
pub(crate) fn counts(invoice: &Invoice) -> bool {
    !invoice.is_draft() && !invoice.is_deleted()
}

/// An invoice's currency: `currency_code`, else the code on its amount.
pub(crate) fn invoice_currency(invoice: &Invoice) -> Option<String> {
    invoice
        .currency_code
        .clone()
        .or_else(|| invoice.amount.code.clone())
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty())
}

/// Orders invoices oldest first by `create_date`, then by id (numerically when both are
/// numbers), so "latest" is deterministic.
fn invoice_order(a: &Invoice, b: &Invoice) -> std::cmp::Ordering {
    a.create_date.cmp(&b.create_date).then_with(|| {
        match (a.id.parse::<u64>(), b.id.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.id.cmp(&b.id),
        }
    })
}

/// The client's standing on `today` (the US/Eastern date of the event clock: FreshBooks due
/// dates are Eastern calendar dates). Overdue when any counted invoice has something outstanding
/// and a due date before today; partial when an outstanding invoice is partly paid; unpaid when
/// something is outstanding; else paid. Sums cover one currency only, because amounts in
/// different currencies do not add up.
pub(crate) fn standing(client: &Client, invoices: &[Invoice], today: NaiveDate) -> Standing {
    let counted: Vec<&Invoice> = invoices.iter().filter(|i| counts(i)).collect();
    let outstanding = |i: &Invoice| i.outstanding.amount > Decimal::ZERO;
    let state = if counted
        .iter()
        .any(|i| outstanding(i) && i.due_date.is_some_and(|d| d < today))
    {
        PaymentState::Overdue
    } else if counted
        .iter()
        .any(|i| outstanding(i) && i.paid.amount > Decimal::ZERO)
    {
        PaymentState::Partial
    } else if counted.iter().any(|i| outstanding(i)) {
        PaymentState::Unpaid
    } else {
        PaymentState::Paid
    };
    let latest = counted.iter().copied().max_by(|a, b| invoice_order(a, b));
    let currency = client
        .currency_code
        .as_deref()
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty())
        .or_else(|| latest.and_then(invoice_currency));
    let in_currency: Vec<&Invoice> = counted
        .iter()
        .copied()
        .filter(|i| match (&currency, invoice_currency(i)) {
            (Some(want), Some(have)) => *want == have,
            // An invoice without a currency is the client's.
            _ => true,
        })
        .collect();
    Standing {
        state,
        balance: in_currency.iter().map(|i| i.outstanding.amount).sum(),
        total_invoiced: in_currency.iter().map(|i| i.amount.amount).sum(),
        invoice_count: counted.len(),
        currency,
        last_invoice: latest.map(|i| LastInvoice {
            total: i.amount.amount,
            currency: invoice_currency(i),
            date: i.create_date,
        }),
        last_payment: counted.iter().filter_map(|i| i.date_paid).max(),
    }
}
