//! The flow end to end over the in-memory QuickBooks company, the in-memory Mailchimp and the
//! embedded store (id map and applied connections), through the Mailchimp worker's dispatch.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::adapters::embedded::EmbeddedDb;
use crate::connections::ConnectionSet;
use crate::event::{Origin, SourceRef, SyncEvent};
use crate::flows::mailchimp_member::ARCHIVED;
use crate::flows::{FlowDeps, TargetDispatch};
use crate::ports::CachedConnections;
use crate::ports::{ConnectionStore, IdMap, IdMapping, ManualClock};
use crate::testing::fakes::{FakeClients, FakeFreshbooks, FakeMailchimp};
use crate::testing::quickbooks_fake::{FakeQuickbooks, method, throttled};
use crate::vendor::Vendor;
use crate::vendors::quickbooks::models::{Customer, EmailAddress};
use crate::worker::{Handled, HandlerError, TargetHandler};

const CONN: &str = "qbo-to-mc";
const REALM: &str = "9130";
const LIST: &str = "list1";

struct World {
    qb: Arc<FakeQuickbooks>,
    mc: Arc<FakeMailchimp>,
    db: Arc<EmbeddedDb>,
    handler: TargetDispatch,
}

impl World {
    async fn new(options: &str) -> World {
        let clock = Arc::new(ManualClock::at_unix(1_773_576_000));
        let db = Arc::new(EmbeddedDb::in_memory(clock.clone()).unwrap());
        let toml = format!(
            r#"
[connection.{CONN}]
source = {{ vendor = "quickbooks", account = "{REALM}", credentials = "qb" }}
target = {{ vendor = "mailchimp", credentials = "mc", list_id = "{LIST}" }}
options = {{ {options} }}
"#
        );
        let set = ConnectionSet::from_toml(&toml, "test").unwrap();
        db.put_connections(&set).await.unwrap();
        let connections = Arc::new(CachedConnections::new(db.clone(), Duration::ZERO));
        let qb = FakeQuickbooks::new();
        let mc = Arc::new(FakeMailchimp::default());
        let clients = Arc::new(FakeClients::new(
            Arc::new(FakeFreshbooks::default()),
            mc.clone(),
            qb.clone(),
        ));
        let deps = FlowDeps {
            clients,
            id_map: db.clone(),
            clock,
        };
        let handler = TargetDispatch::for_target(Vendor::Mailchimp, connections, &deps).unwrap();
        World {
            qb,
            mc,
            db,
            handler,
        }
    }

    /// A customer event (`update` unless said) for customer `id`.
    async fn run(&self, op: &str, id: &str) -> Result<Handled, HandlerError> {
        self.handler.handle(&event(op, id, json!({}))).await
    }

    /// QuickBooks merged `merged_away` into `survivor`: the merged-away customer is gone.
    async fn merge(&self, survivor: &str, merged_away: &str) -> Result<Handled, HandlerError> {
        self.qb.delete_customer(merged_away);
        let e = event("merge", survivor, json!({"deleted_id": merged_away}));
        self.handler.handle(&e).await
    }

    fn add(&self, email: Option<&str>) -> String {
        self.qb.add_customer_with(|c| {
            c.display_name = Some("Jane Doe".into());
            c.given_name = Some("Jane".into());
            c.family_name = Some("Doe".into());
            c.company_name = Some("Acme".into());
            c.primary_email_addr = email.map(email_addr);
        })
    }

    fn edit(&self, id: &str, f: impl FnOnce(&mut Customer)) {
        assert!(self.qb.edit_customer(id, f));
    }

    fn status(&self, email: &str) -> Option<String> {
        self.mc.member(email).map(|m| m.status)
    }

    async fn mapping(&self, id: &str) -> Option<IdMapping> {
        self.db
            .get_mapping(CONN, &format!("customer:{id}"))
            .await
            .unwrap()
    }
}

fn email_addr(e: &str) -> EmailAddress {
    EmailAddress {
        address: Some(e.into()),
    }
}

fn event(op: &str, id: &str, detail: Value) -> SyncEvent {
    SyncEvent {
        v: 1,
        event_id: format!("customer-{id}-{op}"),
        connection: CONN.into(),
        source: SourceRef {
            vendor: Vendor::Quickbooks,
            account: REALM.into(),
        },
        entity: "customer".into(),
        entity_id: id.into(),
        operation: op.into(),
        occurred_at: None,
        received_at: chrono::Utc::now(),
        origin: Origin::Webhook,
        detail: detail.as_object().cloned().unwrap_or_default(),
        detail_ref: None,
    }
}

fn written(h: &Handled) -> Value {
    match h {
        Handled::Synced { written, .. } => written.clone().unwrap_or_default(),
        other => panic!("expected Synced, got {other:?}"),
    }
}

fn skipped(h: &Handled) -> &str {
    match h {
        Handled::Skipped { reason } => reason,
        other => panic!("expected Skipped, got {other:?}"),
    }
}

fn archive_calls(calls: &[String]) -> Vec<&String> {
    calls
        .iter()
        .filter(|c| c.starts_with("archive_member"))
        .collect()
}

// ---- create / update ----------------------------------------------------------------------

#[tokio::test]
async fn a_new_customer_becomes_a_transactional_member_with_names_and_company() {
    let w = World::new("").await;
    let id = w.add(Some(" Jane@Example.com "));

    let h = w.run("create", &id).await.unwrap();
    assert_eq!(written(&h)["member_status"], "transactional");

    let m = w.mc.member("jane@example.com").unwrap();
    assert_eq!(m.email_address, "Jane@Example.com");
    assert_eq!(m.status, "transactional");
    assert_eq!(
        json!(m.merge_fields),
        json!({"FNAME": "Jane", "LNAME": "Doe", "COMPANY": "Acme"})
    );
    // The audience had FNAME and LNAME; COMPANY was created.
    w.mc.with(|s| {
        let tags: Vec<_> = s.merge_fields.iter().map(|f| f.tag.as_str()).collect();
        assert_eq!(tags, ["FNAME", "LNAME", "COMPANY"]);
    });
    let mapping = w.mapping(&id).await.unwrap();
    assert_eq!(mapping.target_id, "Jane@Example.com");
    assert_eq!(mapping.fingerprint.len(), 64);
}

#[tokio::test]
async fn status_if_new_comes_from_the_options() {
    let w = World::new("status_if_new = \"pending\"").await;
    let id = w.add(Some("jane@example.com"));
    w.run("create", &id).await.unwrap();
    assert_eq!(w.status("jane@example.com").as_deref(), Some("pending"));
}

#[tokio::test]
async fn an_unchanged_customer_and_our_own_notes_write_cost_no_mailchimp_call() {
    let w = World::new("").await;
    let id = w.add(Some("jane@example.com"));
    w.run("create", &id).await.unwrap();
    w.mc.take_calls();

    assert_eq!(w.run("update", &id).await.unwrap(), Handled::Unchanged);
    assert_eq!(w.mc.take_calls(), Vec::<String>::new());

    // The Mailchimp → QuickBooks flow writes its status line into Notes; QuickBooks then sends
    // an update webhook. It must not bounce back as a Mailchimp write.
    w.edit(&id, |c| {
        c.notes = Some("Mailchimp: unsubscribed (reason: manual) at 2026-03-15".into())
    });
    assert_eq!(w.run("update", &id).await.unwrap(), Handled::Unchanged);
    assert_eq!(w.mc.take_calls(), Vec::<String>::new());

    // A real change is written, without re-reading the merge fields (cached per process).
    w.edit(&id, |c| c.family_name = Some("Smith".into()));
    let h = w.run("update", &id).await.unwrap();
    assert_eq!(written(&h)["merge_fields"]["LNAME"], "Smith");
    assert_eq!(w.mc.take_calls(), ["upsert_member list1 jane@example.com"]);
    assert_eq!(
        w.mc.member("jane@example.com").unwrap().merge_fields["LNAME"],
        "Smith"
    );
}

#[tokio::test]
async fn an_unsubscribed_member_is_never_resubscribed() {
    let w = World::new("status_if_new = \"subscribed\"").await;
    let id = w.add(Some("jane@example.com"));
    w.run("create", &id).await.unwrap();
    assert_eq!(w.status("jane@example.com").as_deref(), Some("subscribed"));
    // The person unsubscribes in Mailchimp.
    w.mc.with(|s| {
        s.members.get_mut("jane@example.com").unwrap().status = "unsubscribed".into();
    });

    w.edit(&id, |c| c.company_name = Some("Acme Holdings".into()));
    let h = w.run("update", &id).await.unwrap();
    assert_eq!(written(&h)["member_status"], "unsubscribed");
    let m = w.mc.member("jane@example.com").unwrap();
    assert_eq!(m.status, "unsubscribed");
    assert_eq!(m.merge_fields["COMPANY"], "Acme Holdings");
}

#[tokio::test]
async fn unknown_verbs_are_updates_and_other_entities_are_skipped() {
    let w = World::new("").await;
    let id = w.add(Some("jane@example.com"));
    assert!(matches!(
        w.run("emailed", &id).await.unwrap(),
        Handled::Synced { .. }
    ));

    let mut invoice = event("create", "12", json!({}));
    invoice.entity = "invoice".into();
    let h = w.handler.handle(&invoice).await.unwrap();
    assert_eq!(
        skipped(&h),
        "QuickBooks `invoice` records are not synced to Mailchimp"
    );

    let mut elsewhere = event("update", &id, json!({}));
    elsewhere.source.account = "other-realm".into();
    let e = w.handler.handle(&elsewhere).await.unwrap_err();
    assert_eq!(e.class(), "configuration");
    assert!(e.message().contains("other-realm"), "{e}");
}

#[tokio::test]
async fn a_customer_without_email_is_skipped() {
    let w = World::new("").await;
    let id = w.add(None);
    let h = w.run("create", &id).await.unwrap();
    assert_eq!(skipped(&h), "customer has no email");
    w.edit(&id, |c| c.primary_email_addr = Some(email_addr("   ")));
    let h = w.run("update", &id).await.unwrap();
    assert_eq!(skipped(&h), "customer has no email");
    assert!(w.mc.with(|s| s.members.is_empty()));
    assert!(w.mapping(&id).await.is_none());
}

// ---- email changes --------------------------------------------------------------------------

#[tokio::test]
async fn an_email_change_upserts_the_new_member_then_archives_the_old() {
    let w = World::new("").await;
    let id = w.add(Some("old@example.com"));
    w.run("create", &id).await.unwrap();
    w.mc.take_calls();

    w.edit(&id, |c| {
        c.primary_email_addr = Some(email_addr("new@example.com"))
    });
    let h = w.run("update", &id).await.unwrap();
    let out = written(&h);
    assert_eq!(
        (out["old_email"].clone(), out["old_archived"].clone()),
        (json!("old@example.com"), json!(true))
    );
    assert_eq!(
        w.mc.take_calls(),
        [
            "upsert_member list1 new@example.com",
            "archive_member list1 old@example.com"
        ]
    );
    assert_eq!(w.status("old@example.com").as_deref(), Some("archived"));
    assert_eq!(
        w.status("new@example.com").as_deref(),
        Some("transactional")
    );
    assert_eq!(w.mapping(&id).await.unwrap().target_id, "new@example.com");

    // The Mailchimp → QuickBooks flow notes the address change in Notes; the update that
    // causes in QuickBooks writes nothing.
    w.edit(&id, |c| c.notes = Some("Mailchimp: email changed".into()));
    assert_eq!(w.run("update", &id).await.unwrap(), Handled::Unchanged);
    assert_eq!(w.mc.take_calls(), Vec::<String>::new());

    // A case-only change is the same member: nothing archived.
    w.edit(&id, |c| {
        c.primary_email_addr = Some(email_addr("NEW@example.com"))
    });
    w.run("update", &id).await.unwrap();
    assert!(archive_calls(&w.mc.take_calls()).is_empty());
    assert_eq!(
        w.status("new@example.com").as_deref(),
        Some("transactional")
    );
}

#[tokio::test]
async fn an_email_change_keeps_the_old_member_when_asked() {
    let w = World::new("on_email_change = \"keep\"").await;
    let id = w.add(Some("old@example.com"));
    w.run("create", &id).await.unwrap();
    w.edit(&id, |c| {
        c.primary_email_addr = Some(email_addr("new@example.com"))
    });
    w.mc.take_calls();

    let h = w.run("update", &id).await.unwrap();
    assert_eq!(written(&h)["old_archived"], Value::Null);
    assert!(archive_calls(&w.mc.take_calls()).is_empty());
    assert_eq!(
        w.status("old@example.com").as_deref(),
        Some("transactional")
    );
    assert_eq!(
        w.status("new@example.com").as_deref(),
        Some("transactional")
    );
}

// ---- deactivation ---------------------------------------------------------------------------

#[tokio::test]
async fn deactivation_archives_the_member_and_reactivation_syncs_again() {
    let w = World::new("").await;
    let id = w.add(Some("jane@example.com"));
    w.run("create", &id).await.unwrap();

    w.edit(&id, |c| c.active = false);
    let h = w.run("delete", &id).await.unwrap();
    assert_eq!(written(&h)["archived"], "jane@example.com");
    assert_eq!(w.status("jane@example.com").as_deref(), Some("archived"));
    let m = w.mapping(&id).await.unwrap();
    assert_eq!(
        (m.target_id.as_str(), m.fingerprint.as_str()),
        ("jane@example.com", ARCHIVED)
    );

    // The same deactivation again (redelivery, or the update QuickBooks also sends): no call.
    w.mc.take_calls();
    assert_eq!(w.run("update", &id).await.unwrap(), Handled::Unchanged);
    assert_eq!(w.mc.take_calls(), Vec::<String>::new());

    // Reactivated: synced again (the id map no longer says archived). Mailchimp keeps an
    // archived member archived on an upsert with only `status_if_new`, which the audit shows.
    w.edit(&id, |c| c.active = true);
    let h = w.run("update", &id).await.unwrap();
    assert_eq!(written(&h)["member"], "jane@example.com");
    assert_eq!(written(&h)["member_status"], "archived");
    assert_eq!(w.mc.take_calls(), ["upsert_member list1 jane@example.com"]);
    assert_eq!(w.mapping(&id).await.unwrap().fingerprint.len(), 64);
    assert_eq!(w.run("update", &id).await.unwrap(), Handled::Unchanged);
}

#[tokio::test]
async fn a_customer_gone_from_quickbooks_is_archived_too() {
    let w = World::new("").await;
    let id = w.add(Some("jane@example.com"));
    w.run("create", &id).await.unwrap();
    w.qb.delete_customer(&id);
    let h = w.run("delete", &id).await.unwrap();
    assert!(
        written(&h)["because"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{h:?}"
    );
    assert_eq!(w.status("jane@example.com").as_deref(), Some("archived"));

    // Never synced: nothing to archive.
    let h = w.run("delete", "404").await.unwrap();
    assert!(skipped(&h).contains("ever synced"), "{h:?}");
}

#[tokio::test]
async fn deactivation_keeps_the_member_when_asked() {
    let w = World::new("on_customer_deactivate = \"keep\"").await;
    let id = w.add(Some("jane@example.com"));
    w.run("create", &id).await.unwrap();
    w.edit(&id, |c| c.active = false);
    w.mc.take_calls();

    let h = w.run("update", &id).await.unwrap();
    assert!(skipped(&h).contains("on_customer_deactivate"), "{h:?}");
    assert_eq!(w.mc.take_calls(), Vec::<String>::new());
    assert_eq!(
        w.status("jane@example.com").as_deref(),
        Some("transactional")
    );
}

// ---- merges ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_merge_moves_the_mapping_to_an_unsynced_survivor() {
    let w = World::new("").await;
    let away = w.add(Some("jane@old.example"));
    w.run("create", &away).await.unwrap();
    // The survivor was never synced (say its webhook is still on its way).
    let survivor = w.add(Some("jane@new.example"));
    w.mc.take_calls();

    let h = w.merge(&survivor, &away).await.unwrap();
    let out = written(&h);
    assert_eq!(out["moved_mapping"], true);
    assert_eq!(out["survivor"]["old_email"], "jane@old.example");
    // Handled as an email change: the survivor's member first, then the old one archived.
    assert_eq!(
        w.mc.take_calls(),
        [
            "upsert_member list1 jane@new.example",
            "archive_member list1 jane@old.example"
        ]
    );
    assert_eq!(w.status("jane@old.example").as_deref(), Some("archived"));
    assert_eq!(
        w.mapping(&survivor).await.unwrap().target_id,
        "jane@new.example"
    );
    let tomb = w.mapping(&away).await.unwrap();
    assert_eq!(tomb.target_id, "");
    assert_eq!(tomb.fingerprint, format!("merged:{survivor}"));

    // A later event for the merged-away id (QuickBooks' delete of it, a CDC stub) is skipped,
    // and the merged-away member is not archived twice or resurrected.
    let h = w.run("delete", &away).await.unwrap();
    assert_eq!(skipped(&h), format!("merged into {survivor}"));
    // The merge redelivered: only the survivor's (unchanged) sync.
    assert_eq!(w.merge(&survivor, &away).await.unwrap(), Handled::Unchanged);
    assert_eq!(w.mc.take_calls(), Vec::<String>::new());
}

#[tokio::test]
async fn a_merge_into_an_unsynced_survivor_with_the_same_email_writes_nothing() {
    let w = World::new("").await;
    let away = w.add(Some("jane@example.com"));
    w.run("create", &away).await.unwrap();
    let survivor = w.add(Some("jane@example.com"));
    w.mc.take_calls();

    // Same person, same address, same names: Mailchimp already holds it.
    assert_eq!(w.merge(&survivor, &away).await.unwrap(), Handled::Unchanged);
    assert_eq!(w.mc.take_calls(), Vec::<String>::new());
    assert_eq!(
        w.status("jane@example.com").as_deref(),
        Some("transactional")
    );
    assert_eq!(
        w.mapping(&survivor).await.unwrap().target_id,
        "jane@example.com"
    );
}

#[tokio::test]
async fn a_merge_of_two_synced_customers_archives_the_member_left_behind() {
    let w = World::new("").await;
    let away = w.add(Some("jane@old.example"));
    let survivor = w.add(Some("jane@new.example"));
    w.run("create", &away).await.unwrap();
    w.run("create", &survivor).await.unwrap();
    w.mc.take_calls();

    let h = w.merge(&survivor, &away).await.unwrap();
    let out = written(&h);
    assert_eq!(out["moved_mapping"], false);
    assert_eq!(
        out["left_behind"],
        json!({"email": "jane@old.example", "archived": true})
    );
    assert_eq!(w.mc.take_calls(), ["archive_member list1 jane@old.example"]);
    assert_eq!(w.status("jane@old.example").as_deref(), Some("archived"));
    assert_eq!(
        w.status("jane@new.example").as_deref(),
        Some("transactional")
    );
    assert_eq!(
        w.mapping(&away).await.unwrap().fingerprint,
        format!("merged:{survivor}")
    );
    let h = w.run("update", &away).await.unwrap();
    assert_eq!(skipped(&h), format!("merged into {survivor}"));
}

#[tokio::test]
async fn a_merge_of_two_synced_customers_keeps_the_second_member_when_asked() {
    let w = World::new("on_email_change = \"keep\"").await;
    let away = w.add(Some("jane@old.example"));
    let survivor = w.add(Some("jane@new.example"));
    w.run("create", &away).await.unwrap();
    w.run("create", &survivor).await.unwrap();
    w.mc.take_calls();

    // Nothing to write in Mailchimp; the mapping still moves.
    assert_eq!(w.merge(&survivor, &away).await.unwrap(), Handled::Unchanged);
    assert!(archive_calls(&w.mc.take_calls()).is_empty());
    assert_eq!(
        w.status("jane@old.example").as_deref(),
        Some("transactional")
    );
    assert_eq!(
        w.mapping(&away).await.unwrap().fingerprint,
        format!("merged:{survivor}")
    );
}

#[tokio::test]
async fn a_merge_without_a_merged_away_id_resyncs_the_survivor() {
    let w = World::new("").await;
    let id = w.add(Some("jane@example.com"));
    let h = w
        .handler
        .handle(&event("merge", &id, json!({})))
        .await
        .unwrap();
    assert_eq!(written(&h)["member"], "jane@example.com");
}

// ---- failures -------------------------------------------------------------------------------

#[tokio::test]
async fn vendor_failures_leave_the_id_map_for_the_retry() {
    let w = World::new("").await;
    let id = w.add(Some("jane@example.com"));

    w.qb.inject(method::CUSTOMER, throttled());
    let e = w.run("create", &id).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(w.mc.take_calls(), Vec::<String>::new());

    w.mc.with(|s| s.fail_next = Some(503));
    let e = w.run("create", &id).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(w.mapping(&id).await.is_none());

    assert!(matches!(
        w.run("create", &id).await.unwrap(),
        Handled::Synced { .. }
    ));
    assert_eq!(
        w.status("jane@example.com").as_deref(),
        Some("transactional")
    );
}

#[tokio::test]
async fn a_compliance_refusal_is_permanent_and_explained() {
    let w = World::new("").await;
    let id = w.add(Some("jane@example.com"));
    w.mc.with(|s| {
        s.refuse.insert(
            "jane@example.com".into(),
            (
                400,
                "Member In Compliance State".into(),
                "jane@example.com is in a compliance state".into(),
            ),
        )
    });
    let e = w.run("create", &id).await.unwrap_err();
    assert!(!e.is_transient(), "{e}");
    assert!(w.mapping(&id).await.is_none());
}
