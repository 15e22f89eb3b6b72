//! [`MailchimpToQuickbooks`]: one Mailchimp member event in, the QuickBooks writes it calls for
//! out.
//!
//! 1. Find the customer by email (`upemail`: the old address first, then the new one). No
//!    customer → skipped, not failed: most list members are not customers.
//! 2. Record the event as a note attachable linked to the customer. Its `requestid` is derived
//!    from the connection, the event id and the customer, so a retry after a crash (or a
//!    redelivery of the same event) returns the first note instead of adding a second.
//! 3. Keep the customer's e-mail status line in `Notes` current ([`super::note::plan_notes`])
//!    with a sparse update under `SyncToken` control. A stale token (Fault 5010: someone edited
//!    the customer between our read and our write) → re-read, re-plan, retry, at most
//!    [`MAX_ATTEMPTS`] writes; then a transient error, and the queue retries the whole event
//!    (the note is not duplicated, see 2). The line is deterministic in the event, so a retry
//!    finds it current and writes nothing.
//!
//! No id map: the customer is found by email each time (QuickBooks is the record of who the
//! customer is), and both writes are idempotent by themselves.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::note::{
    MemberChange, NotesPlan, OPERATIONS, StatusLine, activity_note, find_status_line, plan_notes,
};
use crate::connections::Connection;
use crate::event::{SyncEvent, short_hash};
use crate::flows::FlowHandler;
use crate::flows::clients::VendorClients;
use crate::flows::errors::from_vendor;
use crate::vendors::quickbooks::models::{Customer, CustomerUpdate};
use crate::vendors::quickbooks::target::QuickbooksTarget;
use crate::vendors::quickbooks::{QuickbooksApi, QuickbooksError};
use crate::worker::{Handled, HandlerError};

/// The most sparse updates one event makes to keep the status line current when each meets a
/// concurrent edit (Fault 5010). Bounded so two writers cannot spin; the queue's retry comes
/// after a delay, by which time the other writer is usually done.
pub(crate) const MAX_ATTEMPTS: u32 = 4;

/// The Mailchimp entities the flow reads: its row in [`crate::flows::FLOWS`] and the check of
/// every event, from one list.
pub(crate) const ENTITIES: &[&str] = &["member"];

/// The Mailchimp → QuickBooks flow, which the QuickBooks worker's
/// [`crate::flows::TargetDispatch`] dispatches to.
pub(crate) struct MailchimpToQuickbooks {
    clients: Arc<dyn VendorClients>,
}

/// What became of the status line, for the audit trail.
struct StatusResult {
    /// The line as first read (before any write of ours).
    before: Option<String>,
    /// `written`, `current`, `newer_kept`, `too_long` or `not_a_status_change`.
    outcome: &'static str,
    /// The line now in the notes (or that would be), when there is one.
    line: Option<String>,
    /// Whether the line went in without its detail to fit the notes.
    shortened: bool,
    /// Sparse updates sent.
    attempts: u32,
    /// Why nothing was written, in words.
    reason: Option<String>,
}

impl MailchimpToQuickbooks {
    pub(crate) fn new(clients: Arc<dyn VendorClients>) -> Self {
        MailchimpToQuickbooks { clients }
    }
}

#[async_trait]
impl FlowHandler for MailchimpToQuickbooks {
    async fn handle_connection(
        &self,
        name: &str,
        connection: &Connection,
        event: &SyncEvent,
    ) -> Result<Handled, HandlerError> {
        if !ENTITIES.contains(&event.entity.as_str()) {
            return skipped(format!(
                "Mailchimp `{}` events are not recorded in QuickBooks (only member events are)",
                event.entity
            ));
        }
        if !OPERATIONS.contains(&event.operation.as_str()) {
            return skipped(format!(
                "Mailchimp member `{}` events are not recorded in QuickBooks",
                event.operation
            ));
        }
        if !connection.enabled {
            return skipped(format!("connection `{name}` is disabled"));
        }
        let list = connection.source.account.as_deref().unwrap_or_default();
        if event.source.account != list {
            return Err(HandlerError::permanent(
                "configuration",
                format!(
                    "the event is from Mailchimp list `{}` but connection `{name}` reads list \
                     `{list}`",
                    event.source.account
                ),
            ));
        }
        let target = QuickbooksTarget::of(&connection.target).map_err(|e| {
            HandlerError::permanent("configuration", format!("connection `{name}` {e}"))
        })?;
        let realm = target.realm_id;
        let change =
            MemberChange::from_event(&event.operation, &event.detail).ok_or_else(|| {
                HandlerError::permanent(
                    "invalid_event",
                    format!(
                        "Mailchimp `{}` event without its new address (detail.new_email)",
                        event.operation
                    ),
                )
            })?;
        let emails = lookup_emails(event);
        if emails.is_empty() {
            return Err(HandlerError::permanent(
                "invalid_event",
                format!(
                    "Mailchimp `{}` event without an email address in its detail",
                    event.operation
                ),
            ));
        }
        let qb = self.clients.quickbooks(target.credentials).await?;

        let Some((customer, chosen)) = find_customer(qb.as_ref(), realm, &emails).await? else {
            return skipped(format!(
                "no QuickBooks customer has email {}",
                emails.join(" or ")
            ));
        };
        // When the vendor gave no time, the time we received it is the best there is.
        let at = event.occurred_at.unwrap_or(event.received_at);
        let note = activity_note(&change, at);
        let request_id = note_request_id(name, &event.event_id, &customer.id);
        let attachable = qb
            .create_customer_note(realm, &customer.id, &note, &request_id)
            .await
            .map_err(|e| gone_or(e, &customer.id))?;
        let id = customer.id.clone();
        let status = update_status_line(qb.as_ref(), realm, customer, &change, at).await?;

        Ok(Handled::Synced {
            before: Some(json!({
                "customer_id": id,
                "status_line": status.before,
            })),
            written: Some(json!({
                "customer_id": id,
                "customer_choice": chosen,
                "note_id": attachable.id,
                "note": note,
                "status_line": status.line,
                "status_line_outcome": status.outcome,
                "status_line_shortened": status.shortened,
                "status_line_reason": status.reason,
                "attempts": status.attempts,
            })),
        })
    }
}

fn skipped(reason: String) -> Result<Handled, HandlerError> {
    Ok(Handled::Skipped { reason })
}

/// The addresses to look the customer up by, in order, without repeats: `upemail` tries the old
/// address first (the customer still has it, unless someone already changed it in QuickBooks),
/// then the new one; every other event its `email`.
fn lookup_emails(event: &SyncEvent) -> Vec<String> {
    let field = |k: &str| {
        event
            .detail
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let wanted: Vec<&str> = if event.operation == "upemail" {
        vec!["old_email", "new_email", "email"]
    } else {
        vec!["email"]
    };
    let mut out: Vec<String> = Vec::new();
    for email in wanted.into_iter().filter_map(field) {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(email)) {
            out.push(email.to_string());
        }
    }
    out
}

/// The customer to record the event on, and how it was chosen when several share the address:
/// active before inactive, then the lowest numeric `Id` (the oldest), so every retry picks the
/// same one.
///
/// Whether QuickBooks compares `PrimaryEmailAddr` case-sensitively, and whether it is filterable
/// at all, is UNCONFIRMED (docs/vendors/quickbooks.md §3.4). So each address is asked as Mailchimp sent it
/// and, when that finds nothing and it has capitals, once more in lower case; and only customers
/// whose address really matches (ignoring case) are kept — a query that ignored its filter can
/// never make us write on a stranger.
async fn find_customer(
    qb: &dyn QuickbooksApi,
    realm: &str,
    emails: &[String],
) -> Result<Option<(Customer, Option<String>)>, HandlerError> {
    for email in emails {
        let lower = email.to_lowercase();
        let spellings = if lower == *email {
            vec![email.as_str()]
        } else {
            vec![email.as_str(), lower.as_str()]
        };
        for spelling in spellings {
            let mut found = qb
                .customers_by_email(realm, spelling)
                .await
                .map_err(from_vendor)?;
            found.retain(|c| c.email().is_some_and(|e| e.to_lowercase() == lower));
            if let Some((customer, choice)) = choose(found) {
                return Ok(Some((
                    customer,
                    choice.map(|c| format!("{c} (email {email})")),
                )));
            }
        }
    }
    Ok(None)
}

/// The pick among the customers sharing an address, and a sentence on it when there were
/// several.
pub(crate) fn choose(mut found: Vec<Customer>) -> Option<(Customer, Option<String>)> {
    found.retain(|c| !c.is_deleted());
    found.sort_by(|a, b| {
        let key = |c: &Customer| (!c.active, c.id.parse::<u64>().unwrap_or(u64::MAX));
        key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id))
    });
    let n = found.len();
    let mut found = found.into_iter();
    let first = found.next()?;
    let choice = (n > 1).then(|| {
        let others: Vec<String> = found.map(|c| c.id).collect();
        format!(
            "{n} customers have this email; chose Id {} ({}, lowest Id{}), not {}",
            first.id,
            if first.active { "active" } else { "inactive" },
            if first.active {
                " among active ones"
            } else {
                ""
            },
            others.join(", ")
        )
    });
    Some((first, choice))
}

/// The `requestid` of the note for one event on one customer: QuickBooks answers a replay of
/// the same `requestid` with the first result, so a retried event never adds a second note.
/// A hash keeps it short (Intuit's length limit on `requestid` is UNCONFIRMED; 36 characters
/// stay well inside any UUID-sized limit).
pub(crate) fn note_request_id(connection: &str, event_id: &str, customer_id: &str) -> String {
    format!(
        "mlc-{}",
        short_hash(&[connection, event_id, customer_id], 32)
    )
}

/// A 610 on a customer we just found means it was merged away or deleted in between: transient,
/// since the retry looks it up by email again and finds the survivor. Other errors as usual.
fn gone_or(e: QuickbooksError, customer_id: &str) -> HandlerError {
    if e.is_not_found() {
        HandlerError::transient(format!(
            "QuickBooks customer {customer_id} disappeared (merged or deleted) while the event \
             was being recorded; the retry looks the email up again: {e}"
        ))
    } else {
        from_vendor(e)
    }
}

/// Keeps the customer's status line current: plan on the customer as read, sparse-update with
/// its `SyncToken`, and on 5010 re-read and re-plan (the concurrent edit may have changed the
/// notes, or even written a newer line).
async fn update_status_line(
    qb: &dyn QuickbooksApi,
    realm: &str,
    mut customer: Customer,
    change: &MemberChange,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<StatusResult, HandlerError> {
    let before = customer
        .notes
        .as_deref()
        .and_then(find_status_line)
        .map(str::to_string);
    let mut result = StatusResult {
        before: before.clone(),
        outcome: "not_a_status_change",
        line: before,
        shortened: false,
        attempts: 0,
        reason: None,
    };
    let Some(line) = StatusLine::for_change(change, at) else {
        result.reason = Some("a profile update does not change the e-mail status".into());
        return Ok(result);
    };
    loop {
        match plan_notes(customer.notes.as_deref(), &line) {
            NotesPlan::Current => {
                result.outcome = "current";
                return Ok(result);
            }
            NotesPlan::Newer { existing } => {
                result.outcome = "newer_kept";
                result.reason = Some(format!(
                    "the notes already hold a later status ({existing}); this event is older"
                ));
                result.line = Some(existing);
                return Ok(result);
            }
            NotesPlan::TooLong { needed } => {
                result.outcome = "too_long";
                result.reason = Some(format!(
                    "the customer's notes would need {needed} characters with the status line, \
                     over QuickBooks' {} (the user's text is never cut); the note attachable \
                     still records the event",
                    crate::vendors::quickbooks::models::MAX_NOTE_CHARS
                ));
                return Ok(result);
            }
            NotesPlan::Write {
                notes,
                line: text,
                shortened,
            } => {
                if result.attempts >= MAX_ATTEMPTS {
                    return Err(HandlerError::transient(format!(
                        "QuickBooks customer {} changed under each of {MAX_ATTEMPTS} status-line \
                         updates (Fault 5010, stale object); the event is retried later",
                        customer.id
                    )));
                }
                result.attempts += 1;
                // Sparse, with only Notes: never a full update (that would null every other
                // field), and the SyncToken of the customer as read.
                let update = CustomerUpdate {
                    id: customer.id.clone(),
                    sync_token: customer.sync_token.clone(),
                    notes: Some(notes),
                    active: None,
                };
                match qb.update_customer(realm, &update).await {
                    Ok(_) => {
                        result.outcome = "written";
                        result.line = Some(text);
                        result.shortened = shortened;
                        return Ok(result);
                    }
                    Err(e) if e.is_stale() => {
                        tracing::info!(
                            customer = %customer.id,
                            attempt = result.attempts,
                            intuit_tid = e.intuit_tid().unwrap_or_default(),
                            "QuickBooks customer changed concurrently (5010); re-reading"
                        );
                        match qb
                            .customer(realm, &customer.id)
                            .await
                            .map_err(|e| gone_or(e, &update.id))?
                        {
                            Some(c) => customer = c,
                            None => {
                                return Err(HandlerError::transient(format!(
                                    "QuickBooks customer {} disappeared (merged or deleted) \
                                     while its notes were being updated; the retry looks the \
                                     email up again",
                                    update.id
                                )));
                            }
                        }
                    }
                    Err(e) => return Err(gone_or(e, &customer.id)),
                }
            }
        }
    }
}
