//! Invoices' rules (docs/vendors/hubspot.md §3.6, §3.7): status transitions, and the amounts
//! HubSpot computes from an invoice's line items and payments, which also mark it paid. Kept
//! apart from the generic object store so the one place that knows invoice semantics is small.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use mlc::vendors::hubspot::models::ObjectType;

use super::errors::{HsError, timestamp};
use super::state::Portal;

/// A number as HubSpot writes computed amounts: no trailing zeros (`150`, `12.5`).
fn format_number(n: f64) -> String {
    let rounded = (n * 100.0).round() / 100.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        let s = format!("{rounded:.2}");
        s.trim_end_matches('0').to_string()
    }
}

fn number(props: &BTreeMap<String, String>, name: &str) -> f64 {
    props
        .get(name)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Statuses an invoice may be set to through the API.
const INVOICE_STATUSES: [&str; 4] = ["draft", "open", "paid", "voided"];

impl Portal {
    /// An invoice status change: draft → open needs a contact and a line item; `paid` comes
    /// from payments only; paid and voided invoices stay so (UNCONFIRMED beyond §3.6).
    pub(super) fn check_transition(&self, id: u64, from: &str, to: &str) -> Result<(), HsError> {
        if !INVOICE_STATUSES.contains(&to) {
            return Err(HsError::validation(format!(
                "{to} is not a valid hs_invoice_status: one of draft, open, paid, voided"
            )));
        }
        if from == to {
            return Ok(());
        }
        match (from, to) {
            (_, "paid") => Err(HsError::validation(
                "An invoice becomes paid when associated payments cover its amount; hs_invoice_status cannot be set to paid",
            )),
            ("paid", _) => Err(HsError::validation(format!(
                "Invoice {id} is paid and its status cannot change"
            ))),
            (_, "open") => {
                let contacts = self.linked(ObjectType::Invoices, id, ObjectType::Contacts);
                let items = self.linked(ObjectType::Invoices, id, ObjectType::LineItems);
                if contacts.is_empty() || items.is_empty() {
                    return Err(HsError::validation(format!(
                        "Invoice {id} cannot be set to open: an invoice needs an associated contact and at least one associated line item"
                    )));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub(super) fn touched_invoices(&self, t: ObjectType, id: u64) -> Vec<u64> {
        match t {
            ObjectType::Invoices => vec![id],
            ObjectType::LineItems | ObjectType::CommercePayments => {
                self.linked(t, id, ObjectType::Invoices)
            }
            _ => Vec::new(),
        }
    }

    /// Recomputes the invoices a change to `(t, id)` affects.
    pub(super) fn settle(&mut self, t: ObjectType, id: u64, now: DateTime<Utc>) {
        for invoice in self.touched_invoices(t, id) {
            self.settle_invoice(invoice, now);
        }
    }

    /// An invoice's amounts from its line items (quantity × price) and completed payments
    /// (`hs_latest_status` `succeeded`, the default for recorded payments); an open invoice
    /// they cover becomes paid (and a paid one they no longer cover open again).
    pub(super) fn settle_invoice(&mut self, id: u64, now: DateTime<Utc>) {
        let billed: f64 = self
            .linked(ObjectType::Invoices, id, ObjectType::LineItems)
            .into_iter()
            .filter_map(|i| self.object(ObjectType::LineItems, i))
            .map(|i| number(&i.properties, "quantity") * number(&i.properties, "price"))
            .sum();
        let paid: f64 = self
            .linked(ObjectType::Invoices, id, ObjectType::CommercePayments)
            .into_iter()
            .filter_map(|p| self.object(ObjectType::CommercePayments, p))
            .filter(|p| {
                p.properties
                    .get("hs_latest_status")
                    .is_none_or(|s| s == "succeeded")
            })
            .map(|p| number(&p.properties, "hs_initial_amount"))
            .sum();
        let Some(invoice) = self
            .objects
            .get_mut(&ObjectType::Invoices)
            .and_then(|m| m.get_mut(&id))
        else {
            return;
        };
        let p = &mut invoice.properties;
        let before = p.clone();
        p.insert("hs_amount_billed".into(), format_number(billed));
        p.insert("hs_amount_paid".into(), format_number(paid));
        p.insert(
            "hs_balance_due".into(),
            format_number((billed - paid).max(0.0)),
        );
        let covered = billed > 0.0 && paid + 0.005 >= billed;
        match p.get("hs_invoice_status").map(String::as_str) {
            Some("open") if covered => {
                p.insert("hs_invoice_status".into(), "paid".into());
            }
            Some("paid") if !covered => {
                p.insert("hs_invoice_status".into(), "open".into());
            }
            _ => {}
        }
        if *p != before {
            p.insert("hs_lastmodifieddate".into(), timestamp(now));
            invoice.updated_at = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::format_number;

    #[test]
    fn amounts_have_no_trailing_zeros() {
        assert_eq!(format_number(100.0), "100");
        assert_eq!(format_number(12.5), "12.5");
        assert_eq!(format_number(0.1 + 0.2), "0.3");
        assert_eq!(format_number(9.999), "10");
    }
}
