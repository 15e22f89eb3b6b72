//! QuickBooks customers in, Mailchimp member writes out: pure functions, no I/O.
//!
//! Only who the person is crosses over — names, company, email. Accounting data (invoices,
//! payments, balances) is not sent to Mailchimp (issue 5), and neither are `Notes`: the
//! Mailchimp → QuickBooks flow writes its e-mail status line there, so leaving `Notes` out of
//! the member (and its fingerprint) is what keeps our own QuickBooks write from bouncing back
//! as a Mailchimp write.

use serde_json::{Map, Value, json};

use crate::flows::mailchimp_member::{fingerprint, name_merge_fields};
use crate::ids::Email;
use crate::vendors::mailchimp::models::MemberUpsert;
use crate::vendors::quickbooks::models::Customer;

/// The id-map fingerprint prefix of a merged-away customer: `merged:<survivor id>`. Never a
/// sha256 hex, so it cannot collide with a real fingerprint.
const MERGED_PREFIX: &str = "merged:";

/// The id-map key of a customer, under the connection name.
pub(crate) fn customer_key(customer_id: &str) -> String {
    format!("customer:{customer_id}")
}

/// The tombstone fingerprint of a customer merged into `survivor`.
pub(crate) fn merged_fingerprint(survivor: &str) -> String {
    format!("{MERGED_PREFIX}{survivor}")
}

/// The survivor a tombstone fingerprint names, if it is one.
pub(crate) fn merged_into(fingerprint: &str) -> Option<&str> {
    fingerprint.strip_prefix(MERGED_PREFIX)
}

/// Whether the customer should have a member: active, and not a CDC "deleted" stub.
/// QuickBooks has no hard delete for customers; deactivation is its delete (docs/vendors/quickbooks.md §3.2).
pub(crate) fn is_live(customer: &Customer) -> bool {
    customer.active && !customer.is_deleted()
}

/// The customer's primary email as Mailchimp should see it (trimmed, case kept), `None` when
/// missing or blank.
pub(crate) fn customer_email(customer: &Customer) -> Option<Email> {
    Email::parse(customer.email())
}

/// The member upsert for a customer with `email`: `FNAME` = `GivenName`, `LNAME` =
/// `FamilyName`, `COMPANY` = `CompanyName`, each only when QuickBooks has it (a blank field does
/// not wipe what someone typed in Mailchimp). Only `status_if_new` is set — never `status` — so
/// a member who unsubscribed (or was archived) in Mailchimp keeps that status.
pub(crate) fn member_upsert(customer: &Customer, email: &str, status_if_new: &str) -> MemberUpsert {
    MemberUpsert {
        email_address: email.to_string(),
        status_if_new: status_if_new.to_string(),
        merge_fields: name_merge_fields(
            customer.given_name.as_deref(),
            customer.family_name.as_deref(),
            customer.company_name.as_deref(),
        ),
    }
}

/// The fingerprint of the member a sync writes to audience `list_id`. Equal fingerprints (for
/// the same address) mean Mailchimp already holds it. The archive of an old address is left
/// out on purpose: it happens once, with the email change that triggers it (the id map's
/// address then differs), and a print that remembered it would make the next event after an
/// email change — such as the QuickBooks update our own `Notes` write causes — write again.
pub(crate) fn member_fingerprint(list_id: &str, member: &MemberUpsert) -> String {
    fingerprint(&json!({"list": list_id, "member": member}))
}

/// The merged-away customer id of a merge event. The QuickBooks webhook parser puts it in
/// `detail.deleted_id`; the vendor spellings (`deletedId` legacy, `deletedid` CloudEvents) and a
/// number instead of a string are accepted too, in case an event was built elsewhere.
pub(crate) fn merged_away_id(detail: &Map<String, Value>) -> Option<String> {
    ["deleted_id", "deletedId", "deletedid"]
        .iter()
        .find_map(|k| match detail.get(*k)? {
            Value::String(s) => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::quickbooks::models::EmailAddress;

    fn customer() -> Customer {
        serde_json::from_value(json!({
            "Id": "58", "SyncToken": "3", "DisplayName": "Jane Doe (Acme)",
            "GivenName": " Jane ", "FamilyName": "Doe", "CompanyName": "Acme Ltd",
            "PrimaryEmailAddr": {"Address": " Jane.Doe@Example.com "},
            "Active": true, "Notes": "Mailchimp: subscribed", "Balance": 1250.5,
        }))
        .unwrap()
    }

    #[test]
    fn names_and_company_become_merge_fields_and_nothing_else() {
        let c = customer();
        let email = customer_email(&c).unwrap();
        assert_eq!(email.as_str(), "Jane.Doe@Example.com");
        let m = member_upsert(&c, &email, "transactional");
        let body = serde_json::to_value(&m).unwrap();
        assert_eq!(body["email_address"], "Jane.Doe@Example.com");
        assert_eq!(body["status_if_new"], "transactional");
        assert_eq!(
            body["merge_fields"],
            json!({"FNAME": "Jane", "LNAME": "Doe", "COMPANY": "Acme Ltd"})
        );
        // Never `status`, never the balance or the notes.
        assert!(body.get("status").is_none(), "{body}");
        let text = body.to_string();
        assert!(
            !text.contains("1250") && !text.contains("Mailchimp:"),
            "{text}"
        );
    }

    #[test]
    fn blank_fields_are_left_out_and_no_email_is_none() {
        let mut c = customer();
        c.company_name = Some("  ".into());
        c.given_name = None;
        let m = member_upsert(&c, "x@example.com", "pending");
        assert_eq!(json!(m.merge_fields), json!({"LNAME": "Doe"}));
        assert_eq!(m.status_if_new, "pending");

        c.primary_email_addr = Some(EmailAddress {
            address: Some("   ".into()),
        });
        assert_eq!(customer_email(&c), None);
        c.primary_email_addr = None;
        assert_eq!(customer_email(&c), None);
    }

    #[test]
    fn notes_do_not_change_the_fingerprint() {
        let mut c = customer();
        let fp = |c: &Customer| member_fingerprint("l1", &member_upsert(c, "a@b.c", "x"));
        let before = fp(&c);
        c.notes = Some("Mailchimp: unsubscribed (reason: manual) at 2026-03-01".into());
        c.sync_token = "4".into();
        assert_eq!(fp(&c), before);
        c.family_name = Some("Smith".into());
        assert_ne!(fp(&c), before);
        assert_ne!(
            member_fingerprint("l2", &member_upsert(&customer(), "a@b.c", "x")),
            before
        );
    }

    #[test]
    fn liveness_follows_active_and_deleted_stubs() {
        let mut c = customer();
        assert!(is_live(&c));
        c.active = false;
        assert!(!is_live(&c));
        let stub: Customer =
            serde_json::from_value(json!({"Id": "9", "status": "Deleted"})).unwrap();
        assert!(!is_live(&stub));
    }

    #[test]
    fn merge_details_and_tombstones() {
        let d = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            merged_away_id(&d(json!({"deleted_id": "27"}))).as_deref(),
            Some("27")
        );
        assert_eq!(
            merged_away_id(&d(json!({"deletedid": 27}))).as_deref(),
            Some("27")
        );
        assert_eq!(
            merged_away_id(&d(json!({"deletedId": " 5 "}))).as_deref(),
            Some("5")
        );
        assert_eq!(merged_away_id(&d(json!({"deleted_id": ""}))), None);
        assert_eq!(merged_away_id(&d(json!({}))), None);
        assert_eq!(merged_into(&merged_fingerprint("58")), Some("58"));
        assert_eq!(merged_into("archived"), None);
        assert_eq!(customer_key("58"), "customer:58");
    }
}
