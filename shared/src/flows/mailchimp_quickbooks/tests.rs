//! The flow end to end through [`QuickbooksTarget`] over the in-memory QuickBooks fake and the
//! embedded store (which holds the applied connections), and the pure texts as tables.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value, json};

use super::handler::{MAX_ATTEMPTS, MailchimpToQuickbooks, choose, note_request_id};
use super::note::{
    MemberChange, NotesPlan, STATUS_MARKER, StatusLine, activity_note, clean, cut,
    find_status_line, plan_notes,
};
use crate::adapters::embedded::EmbeddedDb;
use crate::connections::{Connection, ConnectionSet};
use crate::event::{Origin, SourceRef, SyncEvent};
use crate::flows::FlowHandler;
use crate::flows::{FlowDeps, TargetDispatch};
use crate::ports::CachedConnections;
use crate::ports::{ConnectionStore, ManualClock};
use crate::testing::fakes::FakeClients;
use crate::testing::quickbooks_fake::{EmailQuery, FakeQuickbooks, method, not_found, throttled};
use crate::vendor::Vendor;
use crate::vendors::quickbooks::models::{Customer, MAX_NOTE_CHARS};
use crate::worker::{Handled, HandlerError, TargetHandler};

const CONN: &str = "mc-to-qbo";
const LIST: &str = "list1";
const REALM: &str = "9130";

fn connections_toml() -> String {
    format!(
        r#"
[connection.{CONN}]
source = {{ vendor = "mailchimp", account = "{LIST}", credentials = "mc" }}
target = {{ vendor = "quickbooks", credentials = "qb", realm_id = "{REALM}" }}

[connection.off]
source = {{ vendor = "mailchimp", account = "list-off", credentials = "mc" }}
target = {{ vendor = "quickbooks", credentials = "qb", realm_id = "{REALM}" }}
enabled = false

[connection.qbo-to-mc]
source = {{ vendor = "quickbooks", account = "{REALM}", credentials = "qb" }}
target = {{ vendor = "mailchimp", credentials = "mc", list_id = "{LIST}" }}
"#
    )
}

struct World {
    qb: Arc<FakeQuickbooks>,
    handler: TargetDispatch,
    clients: Arc<FakeClients>,
}

impl World {
    async fn new() -> World {
        let clock = Arc::new(ManualClock::at_unix(1_772_470_000));
        let db = Arc::new(EmbeddedDb::in_memory(clock.clone()).unwrap());
        let set = ConnectionSet::from_toml(&connections_toml(), "test").unwrap();
        db.put_connections(&set).await.unwrap();
        let connections = Arc::new(CachedConnections::new(db.clone(), Duration::ZERO));
        let qb = FakeQuickbooks::new();
        let clients = Arc::new(FakeClients::quickbooks_only(qb.clone()));
        let deps = FlowDeps {
            clients: clients.clone(),
            id_map: db.clone(),
            clock,
        };
        let handler = TargetDispatch::for_target(Vendor::Quickbooks, connections, &deps).unwrap();
        World {
            qb,
            handler,
            clients,
        }
    }

    async fn run(&self, event: &SyncEvent) -> Result<Handled, HandlerError> {
        self.handler.handle(event).await
    }
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, h, m, s).single().unwrap()
}

/// A member event as the Mailchimp webhook parser makes it.
fn event(op: &str, detail: Value, when: DateTime<Utc>) -> SyncEvent {
    let detail: Map<String, Value> = detail.as_object().cloned().unwrap_or_default();
    SyncEvent {
        v: crate::event::SYNC_EVENT_VERSION,
        event_id: format!("mailchimp-{op}-{}", when.timestamp()),
        connection: CONN.into(),
        source: SourceRef {
            vendor: Vendor::Mailchimp,
            account: LIST.into(),
        },
        entity: "member".into(),
        entity_id: "hash".into(),
        operation: op.into(),
        occurred_at: Some(when),
        received_at: when + chrono::Duration::seconds(2),
        origin: Origin::Webhook,
        detail,
        detail_ref: None,
    }
}

fn unsubscribe(email: &str, when: DateTime<Utc>) -> SyncEvent {
    event(
        "unsubscribe",
        json!({"email": email, "reason": "manual", "action": "unsub"}),
        when,
    )
}

fn written(h: &Handled) -> Value {
    match h {
        Handled::Synced { written, .. } => written.clone().unwrap_or(Value::Null),
        other => panic!("expected synced, got {other:?}"),
    }
}

fn notes(qb: &FakeQuickbooks, id: &str) -> String {
    qb.stored(id).and_then(|c| c.notes).unwrap_or_default()
}

// ---- each event type -------------------------------------------------------------------------

#[tokio::test]
async fn each_member_event_becomes_a_note_and_a_status_line() {
    let cases: [(&str, Value, &str, Option<&str>); 5] = [
        (
            "subscribe",
            json!({"email": "jane@example.com"}),
            "Mailchimp: subscribed at 2026-03-02 17:04 UTC",
            Some("Mailchimp email status: subscribed, as of 2026-03-02 17:04:05 UTC"),
        ),
        (
            "unsubscribe",
            json!({"email": "jane@example.com", "reason": "manual", "action": "unsub"}),
            "Mailchimp: unsubscribed (reason: manual) at 2026-03-02 17:04 UTC",
            Some(
                "Mailchimp email status: unsubscribed (reason: manual), as of 2026-03-02 \
                 17:04:05 UTC",
            ),
        ),
        (
            "profile",
            json!({"email": "jane@example.com"}),
            "Mailchimp: profile updated at 2026-03-02 17:04 UTC",
            None,
        ),
        (
            "upemail",
            json!({"email": "new@example.com", "old_email": "jane@example.com",
                   "new_email": "new@example.com"}),
            "Mailchimp: email changed from jane@example.com to new@example.com at 2026-03-02 \
             17:04 UTC",
            Some(
                "Mailchimp email status: email changed (now new@example.com), as of \
                 2026-03-02 17:04:05 UTC",
            ),
        ),
        (
            "cleaned",
            json!({"email": "jane@example.com", "reason": "hard"}),
            "Mailchimp: address cleaned (reason: hard bounce) at 2026-03-02 17:04 UTC",
            Some("Mailchimp email status: cleaned (hard bounce), as of 2026-03-02 17:04:05 UTC"),
        ),
    ];
    for (op, detail, note, line) in cases {
        let w = World::new().await;
        let id = w.qb.add_customer_with(|c| {
            c.display_name = Some("Jane".into());
            c.primary_email_addr = Some(crate::vendors::quickbooks::models::EmailAddress {
                address: Some("Jane@Example.com".into()),
            });
            c.notes = Some("Prefers phone calls.".into());
        });
        let h = w.run(&event(op, detail, at(17, 4, 5))).await.unwrap();
        let out = written(&h);
        assert_eq!(w.qb.notes_of(&id), vec![note.to_string()], "{op}");
        assert_eq!(out["note"], json!(note), "{op}");
        assert_eq!(out["customer_id"], json!(id), "{op}");
        match line {
            Some(line) => {
                assert_eq!(
                    notes(&w.qb, &id),
                    format!("Prefers phone calls.\n{line}"),
                    "{op}"
                );
                assert_eq!(out["status_line"], json!(line), "{op}");
                assert_eq!(out["status_line_outcome"], json!("written"), "{op}");
                assert_eq!(out["attempts"], json!(1), "{op}");
                assert_eq!(w.qb.calls_to(method::UPDATE_CUSTOMER), 1, "{op}");
            }
            None => {
                assert_eq!(notes(&w.qb, &id), "Prefers phone calls.", "{op}");
                assert_eq!(out["status_line_outcome"], json!("not_a_status_change"));
                assert_eq!(w.qb.calls_to(method::UPDATE_CUSTOMER), 0, "{op}");
            }
        }
    }
}

#[tokio::test]
async fn a_status_line_is_replaced_in_place_and_the_user_text_kept() {
    let w = World::new().await;
    let id = w.qb.add_customer("Jane", Some("jane@example.com"));
    w.qb.edit_customer(&id, |c| c.notes = Some("Line one\r\nLine two\r\n".into()));
    w.run(&event(
        "subscribe",
        json!({"email": "jane@example.com"}),
        at(9, 0, 0),
    ))
    .await
    .unwrap();
    assert_eq!(
        notes(&w.qb, &id),
        "Line one\r\nLine two\r\nMailchimp email status: subscribed, as of 2026-03-02 09:00:00 UTC"
    );
    w.qb.edit_customer(&id, |c| {
        let n = c.notes.clone().unwrap_or_default();
        c.notes = Some(format!("{n}\r\nLine three"));
    });
    w.run(&unsubscribe("jane@example.com", at(10, 0, 0)))
        .await
        .unwrap();
    assert_eq!(
        notes(&w.qb, &id),
        "Line one\r\nLine two\r\nMailchimp email status: unsubscribed (reason: manual), as of \
         2026-03-02 10:00:00 UTC\r\nLine three"
    );
    assert_eq!(w.qb.notes_of(&id).len(), 2);
}

#[tokio::test]
async fn upemail_finds_the_customer_by_the_new_address_when_the_old_has_none() {
    let w = World::new().await;
    let id = w.qb.add_customer("Jane", Some("new@example.com"));
    let e = event(
        "upemail",
        json!({"email": "new@example.com", "old_email": "old@example.com",
               "new_email": "new@example.com"}),
        at(8, 0, 0),
    );
    w.run(&e).await.unwrap();
    assert_eq!(w.qb.notes_of(&id).len(), 1);
    let lookups: Vec<String> =
        w.qb.calls()
            .into_iter()
            .filter(|c| c.starts_with(method::CUSTOMERS_BY_EMAIL))
            .collect();
    assert_eq!(
        lookups,
        vec![
            "customers_by_email old@example.com".to_string(),
            "customers_by_email new@example.com".to_string()
        ]
    );
}

#[tokio::test]
async fn a_delivery_parsed_from_mailchimp_s_form_lands_as_a_note() {
    let w = World::new().await;
    let id = w.qb.add_customer("Jane", Some("jane@example.com"));
    let body = format!(
        "type=unsubscribe&fired_at=2026-03-02+17%3A04%3A05&data%5Blist_id%5D={LIST}\
         &data%5Bemail%5D=jane%40example.com&data%5Breason%5D=manual&data%5Baction%5D=unsub"
    );
    let parsed = crate::vendors::mailchimp::webhook::parse(body.as_bytes(), LIST).unwrap();
    let e = parsed.for_connection(CONN, Origin::Webhook, at(17, 4, 6));
    w.run(&e).await.unwrap();
    assert_eq!(
        w.qb.notes_of(&id),
        vec!["Mailchimp: unsubscribed (reason: manual) at 2026-03-02 17:04 UTC".to_string()]
    );
    assert!(notes(&w.qb, &id).ends_with("as of 2026-03-02 17:04:05 UTC"));
}

#[tokio::test]
async fn email_lookup_tolerates_case_sensitive_and_unfiltered_queries() {
    // QuickBooks compares exactly: Mailchimp's capitals are retried in lower case.
    let w = World::new().await;
    w.qb.with(|s| s.email_query = EmailQuery::Exact);
    let id = w.qb.add_customer("Jane", Some("jane@example.com"));
    w.run(&unsubscribe("Jane@Example.com", at(9, 0, 0)))
        .await
        .unwrap();
    assert_eq!(w.qb.notes_of(&id).len(), 1);
    assert_eq!(w.qb.calls_to(method::CUSTOMERS_BY_EMAIL), 2);

    // QuickBooks ignores the filter: only the customer with the address is written.
    let w = World::new().await;
    w.qb.with(|s| s.email_query = EmailQuery::Unfiltered);
    let stranger = w.qb.add_customer("Stranger", Some("stranger@example.com"));
    let id = w.qb.add_customer("Jane", Some("jane@example.com"));
    w.run(&unsubscribe("jane@example.com", at(9, 0, 0)))
        .await
        .unwrap();
    assert_eq!(w.qb.notes_of(&id).len(), 1);
    assert!(w.qb.notes_of(&stranger).is_empty());
    let h = w
        .run(&unsubscribe("nobody@example.com", at(9, 0, 0)))
        .await
        .unwrap();
    assert!(matches!(h, Handled::Skipped { .. }), "{h:?}");
    assert!(w.qb.notes_of(&stranger).is_empty());
}

// ---- skips and refusals ------------------------------------------------------------------------

#[tokio::test]
async fn no_customer_is_a_skip_without_writes() {
    let w = World::new().await;
    w.qb.add_customer("Other", Some("other@example.com"));
    let h = w
        .run(&unsubscribe("nobody@example.com", at(9, 0, 0)))
        .await
        .unwrap();
    assert_eq!(
        h,
        Handled::Skipped {
            reason: "no QuickBooks customer has email nobody@example.com".into()
        }
    );
    assert_eq!(w.qb.calls_to(method::CREATE_CUSTOMER_NOTE), 0);
    assert_eq!(w.qb.calls_to(method::UPDATE_CUSTOMER), 0);
}

#[tokio::test]
async fn campaign_and_unknown_events_are_skipped() {
    let w = World::new().await;
    let mut campaign = event("campaign", json!({"status": "sent"}), at(9, 0, 0));
    campaign.entity = "campaign".into();
    let h = w.run(&campaign).await.unwrap();
    assert!(
        matches!(&h, Handled::Skipped { reason } if reason.contains("`campaign` events")),
        "{h:?}"
    );
    let h = w
        .run(&event(
            "sms_subscribe",
            json!({"email": "a@example.com"}),
            at(9, 0, 0),
        ))
        .await
        .unwrap();
    assert!(
        matches!(&h, Handled::Skipped { reason } if reason.contains("`sms_subscribe`")),
        "{h:?}"
    );
    let mut off = unsubscribe("a@example.com", at(9, 0, 0));
    off.connection = "off".into();
    let h = w.run(&off).await.unwrap();
    assert!(
        matches!(&h, Handled::Skipped { reason } if reason.contains("disabled")),
        "{h:?}"
    );
    assert!(w.qb.calls().is_empty());
}

#[tokio::test]
async fn misaddressed_or_malformed_events_are_permanent() {
    let w = World::new().await;
    let mut other_list = unsubscribe("a@example.com", at(9, 0, 0));
    other_list.source.account = "list2".into();
    let e = w.run(&other_list).await.unwrap_err();
    assert_eq!(e.class(), "configuration");
    assert!(e.message().contains("list2"), "{e}");

    let no_email = event("unsubscribe", json!({"reason": "manual"}), at(9, 0, 0));
    assert_eq!(w.run(&no_email).await.unwrap_err().class(), "invalid_event");
    let no_new = event(
        "upemail",
        json!({"old_email": "a@example.com"}),
        at(9, 0, 0),
    );
    assert_eq!(w.run(&no_new).await.unwrap_err().class(), "invalid_event");

    let mut wrong_queue = unsubscribe("a@example.com", at(9, 0, 0));
    wrong_queue.connection = "qbo-to-mc".into();
    let e = w.run(&wrong_queue).await.unwrap_err();
    assert_eq!(e.class(), "unsupported_flow");
    assert!(e.message().contains("wrong queue"), "{e}");

    let mut unknown = unsubscribe("a@example.com", at(9, 0, 0));
    unknown.connection = "gone".into();
    assert_eq!(
        w.run(&unknown).await.unwrap_err().class(),
        "unknown_connection"
    );

    // A connection without a realm cannot pass `connections check`; the flow still refuses it
    // in words rather than writing somewhere.
    let flow = MailchimpToQuickbooks::new(w.clients.clone());
    let set = ConnectionSet::from_toml(&connections_toml(), "test").unwrap();
    let mut conn: Connection = set.connections[CONN].clone();
    conn.target.realm_id = None;
    let e = flow
        .handle_connection(CONN, &conn, &unsubscribe("a@example.com", at(9, 0, 0)))
        .await
        .unwrap_err();
    assert_eq!(e.class(), "configuration");
    assert!(e.message().contains("realm_id"), "{e}");
    assert!(w.qb.calls().is_empty());
}

#[tokio::test]
async fn several_customers_pick_the_lowest_active_id_and_say_so() {
    let w = World::new().await;
    let inactive = w.qb.add_customer("Old", Some("jane@example.com"));
    w.qb.edit_customer(&inactive, |c| c.active = false);
    let first_active = w.qb.add_customer("Jane", Some("jane@example.com"));
    let second_active = w.qb.add_customer("Jane 2", Some("JANE@example.com"));
    let h = w
        .run(&unsubscribe("jane@example.com", at(9, 0, 0)))
        .await
        .unwrap();
    let out = written(&h);
    assert_eq!(out["customer_id"], json!(first_active));
    let choice = out["customer_choice"].as_str().unwrap();
    assert!(choice.contains("3 customers"), "{choice}");
    assert!(
        choice.contains(&format!("chose Id {first_active}")),
        "{choice}"
    );
    assert_eq!(w.qb.notes_of(&first_active).len(), 1);
    assert!(w.qb.notes_of(&second_active).is_empty());
    assert!(w.qb.notes_of(&inactive).is_empty());

    // Only inactive ones: the lowest of those.
    let base = w.qb.stored(&first_active).unwrap();
    let c = |id: &str, active: bool| Customer {
        id: id.into(),
        active,
        ..base.clone()
    };
    let (picked, why) = choose(vec![c("12", false), c("9", false)]).unwrap();
    assert_eq!(picked.id, "9");
    assert!(why.unwrap().contains("inactive"));
    let (picked, why) = choose(vec![c("12", true)]).unwrap();
    assert_eq!((picked.id.as_str(), why), ("12", None));
    assert!(choose(vec![]).is_none());
}

// ---- SyncToken conflicts -------------------------------------------------------------------------

#[tokio::test]
async fn a_stale_sync_token_is_re_read_and_re_applied_over_the_concurrent_edit() {
    let w = World::new().await;
    let id = w.qb.add_customer("Jane", Some("jane@example.com"));
    w.qb.edit_customer(&id, |c| c.notes = Some("Mine.".into()));
    w.qb.concurrent_edits(
        &id,
        1,
        Arc::new(|c: &mut Customer| {
            let n = c.notes.clone().unwrap_or_default();
            c.notes = Some(format!("{n}\nTheirs."));
        }),
    );
    let h = w
        .run(&unsubscribe("jane@example.com", at(9, 0, 0)))
        .await
        .unwrap();
    let out = written(&h);
    assert_eq!(out["attempts"], json!(2));
    assert_eq!(out["status_line_outcome"], json!("written"));
    assert_eq!(
        notes(&w.qb, &id),
        "Mine.\nTheirs.\nMailchimp email status: unsubscribed (reason: manual), as of \
         2026-03-02 09:00:00 UTC"
    );
    assert_eq!(w.qb.notes_of(&id).len(), 1);
    assert_eq!(w.qb.calls_to(method::UPDATE_CUSTOMER), 2);
    assert_eq!(w.qb.calls_to(method::CUSTOMER), 1, "one re-read");
}

#[tokio::test]
async fn endless_conflicts_end_in_a_transient_error_and_the_retry_adds_no_second_note() {
    let w = World::new().await;
    let id = w.qb.add_customer("Jane", Some("jane@example.com"));
    w.qb.concurrent_edits(&id, 10, Arc::new(|_: &mut Customer| {}));
    let e = unsubscribe("jane@example.com", at(9, 0, 0));
    let err = w.run(&e).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.message().contains("5010"), "{err}");
    assert_eq!(
        w.qb.calls_to(method::UPDATE_CUSTOMER),
        MAX_ATTEMPTS as usize
    );
    w.qb.with(|s| s.concurrent.clear());
    let h = w.run(&e).await.unwrap();
    assert_eq!(written(&h)["status_line_outcome"], json!("written"));
    assert_eq!(w.qb.notes_of(&id).len(), 1, "requestid dedupes the retry");
    assert_eq!(w.qb.with(|s| s.notes.len()), 1);
}

#[tokio::test]
async fn a_customer_gone_mid_update_is_transient() {
    let w = World::new().await;
    let id = w.qb.add_customer("Jane", Some("jane@example.com"));
    w.qb.inject(method::UPDATE_CUSTOMER, not_found());
    let err = w
        .run(&unsubscribe("jane@example.com", at(9, 0, 0)))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.message().contains(&id), "{err}");
}

#[tokio::test]
async fn quickbooks_errors_keep_their_class() {
    let w = World::new().await;
    w.qb.add_customer("Jane", Some("jane@example.com"));
    w.qb.inject(method::CUSTOMERS_BY_EMAIL, throttled());
    let err = w
        .run(&unsubscribe("jane@example.com", at(9, 0, 0)))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.vendor_request_id(), Some("fake-tid-3001"));
    w.qb.inject(
        method::CREATE_CUSTOMER_NOTE,
        crate::testing::quickbooks_fake::fault(400, "2020", "Required param missing"),
    );
    let err = w
        .run(&unsubscribe("jane@example.com", at(9, 0, 0)))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert_eq!(err.class(), "quickbooks_2020");
}

// ---- idempotence and ordering -----------------------------------------------------------------

#[tokio::test]
async fn the_same_event_twice_writes_one_note_and_notes_once() {
    let w = World::new().await;
    let id = w.qb.add_customer("Jane", Some("jane@example.com"));
    let e = unsubscribe("jane@example.com", at(9, 0, 0));
    w.run(&e).await.unwrap();
    let token = w.qb.stored(&id).unwrap().sync_token;
    let h = w.run(&e).await.unwrap();
    assert_eq!(written(&h)["status_line_outcome"], json!("current"));
    assert_eq!(written(&h)["attempts"], json!(0));
    assert_eq!(w.qb.notes_of(&id).len(), 1);
    assert_eq!(w.qb.calls_to(method::UPDATE_CUSTOMER), 1);
    assert_eq!(w.qb.stored(&id).unwrap().sync_token, token);
}

#[tokio::test]
async fn an_older_event_does_not_overwrite_a_newer_line() {
    let w = World::new().await;
    let id = w.qb.add_customer("Jane", Some("jane@example.com"));
    w.run(&event(
        "subscribe",
        json!({"email": "jane@example.com"}),
        at(12, 0, 0),
    ))
    .await
    .unwrap();
    let newer = notes(&w.qb, &id);
    let h = w
        .run(&unsubscribe("jane@example.com", at(11, 59, 59)))
        .await
        .unwrap();
    let out = written(&h);
    assert_eq!(out["status_line_outcome"], json!("newer_kept"));
    assert_eq!(notes(&w.qb, &id), newer);
    assert_eq!(w.qb.calls_to(method::UPDATE_CUSTOMER), 1);
    // The older event is still recorded as activity.
    assert_eq!(w.qb.notes_of(&id).len(), 2);
    // A later one does overwrite.
    w.run(&unsubscribe("jane@example.com", at(12, 0, 1)))
        .await
        .unwrap();
    assert!(notes(&w.qb, &id).contains("unsubscribed (reason: manual), as of 2026-03-02 12:00:01"));
}

// ---- length limits ------------------------------------------------------------------------------

#[tokio::test]
async fn notes_near_the_limit_take_the_short_line_or_none() {
    let w = World::new().await;
    let line = StatusLine::for_change(
        &MemberChange::Unsubscribed {
            reason: Some("manual".into()),
            deleted: false,
        },
        at(9, 0, 0),
    )
    .unwrap();
    // Room for the short line only (plus its line break).
    let room_short = MAX_NOTE_CHARS - line.short().chars().count() - 1;
    let id = w.qb.add_customer("Jane", Some("jane@example.com"));
    let user_text = "é".repeat(room_short);
    w.qb.edit_customer(&id, |c| c.notes = Some(user_text.clone()));
    let h = w
        .run(&unsubscribe("jane@example.com", at(9, 0, 0)))
        .await
        .unwrap();
    let out = written(&h);
    assert_eq!(out["status_line_shortened"], json!(true));
    let now = notes(&w.qb, &id);
    assert_eq!(now.chars().count(), MAX_NOTE_CHARS);
    assert_eq!(now, format!("{user_text}\n{}", line.short()));

    // One character more and not even the short line fits: the notes stay, the note is written.
    let id = w.qb.add_customer("Joe", Some("joe@example.com"));
    let user_text = "x".repeat(room_short + 1);
    w.qb.edit_customer(&id, |c| c.notes = Some(user_text.clone()));
    let h = w
        .run(&unsubscribe("joe@example.com", at(9, 0, 0)))
        .await
        .unwrap();
    let out = written(&h);
    assert_eq!(out["status_line_outcome"], json!("too_long"));
    assert!(
        out["status_line_reason"]
            .as_str()
            .unwrap()
            .contains("never cut")
    );
    assert_eq!(notes(&w.qb, &id), user_text);
    assert_eq!(w.qb.notes_of(&id).len(), 1);
    assert_eq!(w.qb.calls_to(method::UPDATE_CUSTOMER), 1, "only Jane's");
}

// ---- pure texts ---------------------------------------------------------------------------------

#[test]
fn notes_and_lines_by_change() {
    let t = at(17, 4, 5);
    let cases: [(MemberChange, &str, Option<&str>); 7] = [
        (
            MemberChange::Subscribed,
            "Mailchimp: subscribed at 2026-03-02 17:04 UTC",
            Some("Mailchimp email status: subscribed, as of 2026-03-02 17:04:05 UTC"),
        ),
        (
            MemberChange::Unsubscribed {
                reason: Some("abuse".into()),
                deleted: false,
            },
            "Mailchimp: unsubscribed (reason: spam complaint) at 2026-03-02 17:04 UTC",
            Some(
                "Mailchimp email status: unsubscribed (reason: spam complaint), as of \
                 2026-03-02 17:04:05 UTC",
            ),
        ),
        (
            MemberChange::Unsubscribed {
                reason: None,
                deleted: true,
            },
            "Mailchimp: unsubscribed and deleted from the audience at 2026-03-02 17:04 UTC",
            Some("Mailchimp email status: unsubscribed and deleted, as of 2026-03-02 17:04:05 UTC"),
        ),
        (
            MemberChange::ProfileUpdated,
            "Mailchimp: profile updated at 2026-03-02 17:04 UTC",
            None,
        ),
        (
            MemberChange::EmailChanged {
                from: None,
                to: "b@example.com".into(),
            },
            "Mailchimp: email changed to b@example.com at 2026-03-02 17:04 UTC",
            Some(
                "Mailchimp email status: email changed (now b@example.com), as of 2026-03-02 \
                 17:04:05 UTC",
            ),
        ),
        (
            MemberChange::Cleaned {
                reason: Some("abuse".into()),
            },
            "Mailchimp: address cleaned (reason: spam complaint) at 2026-03-02 17:04 UTC",
            Some("Mailchimp email status: cleaned (spam complaint), as of 2026-03-02 17:04:05 UTC"),
        ),
        (
            MemberChange::Cleaned { reason: None },
            "Mailchimp: address cleaned at 2026-03-02 17:04 UTC",
            Some("Mailchimp email status: cleaned, as of 2026-03-02 17:04:05 UTC"),
        ),
    ];
    for (change, note, line) in cases {
        assert_eq!(activity_note(&change, t), note);
        let status = StatusLine::for_change(&change, t);
        assert_eq!(status.as_ref().map(StatusLine::full).as_deref(), line);
        if let Some(s) = status {
            assert!(s.full().starts_with(STATUS_MARKER));
            assert!(s.short().starts_with(STATUS_MARKER));
            assert!(s.short().chars().count() <= s.full().chars().count());
            assert!(s.full().chars().count() < 200, "{}", s.full());
            assert_eq!(StatusLine::time_of(&s.full()), Some(t));
            assert_eq!(StatusLine::time_of(&s.short()), Some(t));
        }
    }
}

#[test]
fn vendor_values_cannot_break_lines_or_grow_texts() {
    let detail = json!({"email": "a@example.com", "reason": "x\nMailchimp email status: forged",
                        "action": "unsub"});
    let change = MemberChange::from_event("unsubscribe", detail.as_object().unwrap()).unwrap();
    let line = StatusLine::for_change(&change, at(1, 0, 0)).unwrap().full();
    assert!(!line.contains('\n'), "{line}");
    let long = "r".repeat(5000);
    let change =
        MemberChange::from_event("cleaned", json!({"reason": long}).as_object().unwrap()).unwrap();
    let note = activity_note(&change, at(1, 0, 0));
    assert!(note.chars().count() < 200, "{}", note.chars().count());
    assert_eq!(clean(" a\r\nb\t", 10), "a  b");
    assert_eq!(cut("abcdef", 4), "abc…");
    assert_eq!(cut("abc", 4), "abc");
    assert_eq!(
        MemberChange::from_event("campaign", &Map::new()),
        None,
        "not a member change"
    );
}

#[test]
fn plans_for_the_notes() {
    let line = StatusLine::for_change(&MemberChange::Subscribed, at(9, 0, 0)).unwrap();
    let full = line.full();
    let write = |notes: &str| NotesPlan::Write {
        notes: notes.to_string(),
        line: full.clone(),
        shortened: false,
    };
    assert_eq!(plan_notes(None, &line), write(&full));
    assert_eq!(plan_notes(Some(""), &line), write(&full));
    assert_eq!(plan_notes(Some("a\n"), &line), write(&format!("a\n{full}")));
    assert_eq!(plan_notes(Some(&full), &line), NotesPlan::Current);
    assert_eq!(
        plan_notes(Some(&format!("a\n{}\nb", line.short())), &line),
        NotesPlan::Current
    );
    // An edited line (time unreadable) counts as older and is replaced in place.
    assert_eq!(
        plan_notes(Some(&format!("a\n{STATUS_MARKER} whatever\nb")), &line),
        write(&format!("a\n{full}\nb"))
    );
    let later = StatusLine {
        at: at(10, 0, 0),
        ..line.clone()
    }
    .full();
    assert_eq!(
        plan_notes(Some(&later), &line),
        NotesPlan::Newer {
            existing: later.clone()
        }
    );
    // Only the first marker line is ours to replace.
    let twice = format!("{STATUS_MARKER} x\n{STATUS_MARKER} y");
    assert_eq!(
        plan_notes(Some(&twice), &line),
        write(&format!("{full}\n{STATUS_MARKER} y"))
    );
    assert_eq!(
        find_status_line("a\r\n  Mailchimp email status: z\r\n"),
        Some("  Mailchimp email status: z")
    );
}

#[test]
fn request_ids_are_stable_short_and_distinct() {
    let a = note_request_id(CONN, "mailchimp-1", "58");
    assert_eq!(a, note_request_id(CONN, "mailchimp-1", "58"));
    assert_ne!(a, note_request_id(CONN, "mailchimp-2", "58"));
    assert_ne!(a, note_request_id(CONN, "mailchimp-1", "59"));
    assert_ne!(a, note_request_id("other", "mailchimp-1", "58"));
    assert_eq!(a.len(), 36);
}
