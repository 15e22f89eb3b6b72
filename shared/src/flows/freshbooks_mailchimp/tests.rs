//! The flow end to end over in-memory FreshBooks and Mailchimp and the embedded store (which
//! holds the id map and the applied connections).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::mapping::product_id;
use crate::adapters::embedded::EmbeddedDb;
use crate::connections::ConnectionSet;
use crate::event::{Origin, SourceRef, SyncEvent};
use crate::flows::{FlowDeps, TargetDispatch};
use crate::ports::CachedConnections;
use crate::ports::{ConnectionStore, IdMap, ManualClock};
use crate::testing::fakes::{FakeClients, FakeFreshbooks, FakeMailchimp};
use crate::testing::quickbooks_fake::FakeQuickbooks;
use crate::vendor::Vendor;
use crate::vendors::freshbooks::models::{Client, Invoice, Line, Money, Payment, VIS_DELETED};
use crate::vendors::mailchimp::error::COMPLIANCE_STATE;
use crate::vendors::mailchimp::models::Store;
use crate::worker::{Handled, HandlerError, TargetHandler};

const CONN: &str = "books-to-mc";
const LIST: &str = "list1";
const STORE: &str = "store1";

struct World {
    fb: Arc<FakeFreshbooks>,
    mc: Arc<FakeMailchimp>,
    qb: Arc<FakeQuickbooks>,
    db: Arc<EmbeddedDb>,
    handler: TargetDispatch,
}

fn connections_toml(options: &str) -> String {
    format!(
        r#"
[connection.{CONN}]
source = {{ vendor = "freshbooks", account = "acct", credentials = "fb" }}
target = {{ vendor = "mailchimp", credentials = "mc", list_id = "{LIST}", store_id = "{STORE}" }}
options = {{ {options} }}

[connection.qbo-to-mc]
source = {{ vendor = "quickbooks", account = "realm", credentials = "qb" }}
target = {{ vendor = "mailchimp", credentials = "mc", list_id = "{LIST}" }}
"#
    )
}

impl World {
    async fn new(options: &str) -> World {
        // 2026-03-15 12:00 UTC: 08:00 on the 15th in New York.
        let clock = Arc::new(ManualClock::at_unix(1_773_576_000));
        let db = Arc::new(EmbeddedDb::in_memory(clock.clone()).unwrap());
        let set = ConnectionSet::from_toml(&connections_toml(options), "test").unwrap();
        db.put_connections(&set).await.unwrap();
        let connections = Arc::new(CachedConnections::new(db.clone(), Duration::ZERO));
        let fb = Arc::new(FakeFreshbooks::default());
        let mc = Arc::new(FakeMailchimp::default());
        let qb = FakeQuickbooks::new();
        let clients = Arc::new(FakeClients::new(fb.clone(), mc.clone(), qb.clone()));
        let deps = FlowDeps {
            clients,
            id_map: db.clone(),
            clock,
        };
        let handler = TargetDispatch::for_target(Vendor::Mailchimp, connections, &deps).unwrap();
        World {
            fb,
            mc,
            qb,
            db,
            handler,
        }
    }

    async fn run(&self, entity: &str, id: &str) -> Result<Handled, HandlerError> {
        self.run_as(entity, id, Origin::Webhook).await
    }

    async fn run_as(
        &self,
        entity: &str,
        id: &str,
        origin: Origin,
    ) -> Result<Handled, HandlerError> {
        self.handler.handle(&event(CONN, entity, id, origin)).await
    }

    fn put_client(&self, c: Client) {
        self.fb.with(|s| s.clients.insert(c.id.clone(), c));
    }

    fn put_invoice(&self, i: Invoice) {
        self.fb.with(|s| s.invoices.insert(i.id.clone(), i));
    }

    fn edit_invoice(&self, id: &str, f: impl FnOnce(&mut Invoice)) {
        self.fb.with(|s| f(s.invoices.get_mut(id).unwrap()));
    }

    async fn mapping(&self, key: &str) -> Option<crate::ports::IdMapping> {
        self.db.get_mapping(CONN, key).await.unwrap()
    }
}

fn event(connection: &str, entity: &str, id: &str, origin: Origin) -> SyncEvent {
    SyncEvent {
        v: 1,
        event_id: format!("{entity}-{id}"),
        connection: connection.into(),
        source: SourceRef {
            vendor: Vendor::Freshbooks,
            account: "acct".into(),
        },
        entity: entity.into(),
        entity_id: id.into(),
        operation: "update".into(),
        occurred_at: None,
        received_at: chrono::Utc::now(),
        origin,
        detail: Default::default(),
        detail_ref: None,
    }
}

fn client(id: &str, email: Option<&str>) -> Client {
    Client {
        id: id.into(),
        email: email.map(str::to_string),
        fname: Some("Jane".into()),
        lname: Some("Doe".into()),
        organization: Some("Acme".into()),
        currency_code: Some("USD".into()),
        vis_state: 0,
        updated: None,
        ..Client::default()
    }
}

fn usd(s: &str) -> Money {
    Money {
        amount: s.parse().unwrap(),
        code: Some("USD".into()),
    }
}

fn line(id: &str, name: &str, qty: &str, unit: &str, amount: &str) -> Line {
    Line {
        lineid: id.into(),
        name: name.into(),
        description: None,
        qty: qty.parse().unwrap(),
        unit_cost: usd(unit),
        amount: usd(amount),
    }
}

/// A sent, unpaid invoice of client 7 due on `due`, with two lines (100 + 50).
fn invoice(id: &str, due: &str) -> Invoice {
    Invoice {
        id: id.into(),
        invoice_number: None,
        customerid: "7".into(),
        create_date: Some("2026-03-01".parse().unwrap()),
        due_date: Some(due.parse().unwrap()),
        date_paid: None,
        currency_code: Some("USD".into()),
        amount: usd("150"),
        outstanding: usd("150"),
        paid: usd("0"),
        status: 2,
        v3_status: Some("sent".into()),
        payment_status: Some("unpaid".into()),
        display_status: Some("sent".into()),
        vis_state: 0,
        updated: None,
        lines: vec![
            line("1", "Consulting", "2", "50", "100"),
            line("2", "Hosting", "1", "50", "50"),
        ],
    }
}

fn mark_paid(i: &mut Invoice) {
    i.status = 4;
    i.v3_status = Some("paid".into());
    i.payment_status = Some("paid".into());
    i.outstanding = usd("0");
    i.paid = i.amount.clone();
}

fn mark_unpaid(i: &mut Invoice) {
    i.status = 2;
    i.v3_status = Some("sent".into());
    i.payment_status = Some("unpaid".into());
    i.outstanding = i.amount.clone();
    i.paid = usd("0");
}

fn tags(world: &World, email: &str) -> Vec<String> {
    world
        .mc
        .member(email)
        .unwrap()
        .tags
        .into_iter()
        .map(|t| t.name)
        .collect()
}

fn synced(h: &Handled) -> bool {
    matches!(h, Handled::Synced { .. })
}

// ---- clients ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_new_client_becomes_a_member_and_a_customer() {
    let w = World::new("").await;
    w.put_client(client("7", Some(" Jane@Example.com ")));
    w.put_invoice(invoice("100", "2026-03-31"));

    let h = w.run("client", "7").await.unwrap();
    assert!(synced(&h), "{h:?}");

    let m = w.mc.member("jane@example.com").unwrap();
    assert_eq!(m.email_address, "Jane@Example.com");
    assert_eq!(m.status, "transactional");
    assert_eq!(
        json!(m.merge_fields),
        json!({"FNAME": "Jane", "LNAME": "Doe", "COMPANY": "Acme", "FB_STATUS": "pending",
               "FB_BALANCE": 150.0, "FB_LASTINV": 150.0, "FB_LASTDT": "2026-03-01"})
    );
    assert_eq!(tags(&w, "jane@example.com"), ["fb-pending", "freshbooks"]);
    w.mc.with(|s| {
        let store = &s.stores[STORE];
        assert_eq!(
            (store.list_id.as_str(), store.currency_code.as_str()),
            (LIST, "USD")
        );
        assert_eq!(store.is_syncing, None);
        let customer = &s.customers["fb-acct-7"];
        assert_eq!(customer.email_address, "Jane@Example.com");
        assert!(!customer.opt_in_status);
        let tags: Vec<_> = s.merge_fields.iter().map(|f| f.tag.as_str()).collect();
        assert_eq!(
            tags,
            [
                "FNAME",
                "LNAME",
                "COMPANY",
                "FB_STATUS",
                "FB_BALANCE",
                "FB_LASTINV",
                "FB_LASTDT"
            ]
        );
        assert_eq!(s.tag_syncing, [false]);
    });
    let mapping = w.mapping("client:7").await.unwrap();
    assert_eq!(mapping.target_id, "Jane@Example.com");
    assert_eq!(mapping.fingerprint.len(), 64);
}

#[tokio::test]
async fn an_unchanged_client_costs_no_mailchimp_call() {
    let w = World::new("").await;
    w.put_client(client("7", Some("jane@example.com")));
    w.run("client", "7").await.unwrap();
    w.mc.take_calls();

    assert_eq!(w.run("client", "7").await.unwrap(), Handled::Unchanged);
    assert_eq!(w.mc.take_calls(), Vec::<String>::new());

    // A change is written, without re-reading merge fields or the store (cached per process).
    w.fb.with(|s| s.clients.get_mut("7").unwrap().lname = Some("Smith".into()));
    assert!(synced(&w.run("client", "7").await.unwrap()));
    let calls = w.mc.take_calls();
    assert_eq!(
        calls,
        [
            "upsert_member list1 jane@example.com",
            "update_tags list1 jane@example.com",
            "upsert_customer store1 fb-acct-7",
        ]
    );
    assert_eq!(
        w.mc.member("jane@example.com").unwrap().merge_fields["LNAME"],
        "Smith"
    );

    // A new invoice changes the financial context: written again.
    w.put_invoice(invoice("100", "2026-03-01"));
    assert!(synced(&w.run("client", "7").await.unwrap()));
    assert_eq!(tags(&w, "jane@example.com"), ["fb-overdue", "freshbooks"]);
}

#[tokio::test]
async fn an_email_change_archives_the_old_member() {
    let w = World::new("").await;
    w.put_client(client("7", Some("old@example.com")));
    w.run("client", "7").await.unwrap();
    w.fb.with(|s| s.clients.get_mut("7").unwrap().email = Some("new@example.com".into()));

    let h = w.run("client", "7").await.unwrap();
    let Handled::Synced { before, written } = h else {
        panic!("{h:?}")
    };
    assert_eq!(before.unwrap()["email"], "old@example.com");
    assert_eq!(written.unwrap()["old_archived"], true);
    assert_eq!(w.mc.member("old@example.com").unwrap().status, "archived");
    assert_eq!(
        w.mc.member("new@example.com").unwrap().status,
        "transactional"
    );
    assert_eq!(
        w.mapping("client:7").await.unwrap().target_id,
        "new@example.com"
    );

    // A case-only change is the same member: nothing archived.
    w.fb.with(|s| s.clients.get_mut("7").unwrap().email = Some("NEW@example.com".into()));
    w.mc.take_calls();
    w.run("client", "7").await.unwrap();
    assert!(
        !w.mc
            .take_calls()
            .iter()
            .any(|c| c.starts_with("archive_member"))
    );
    assert_eq!(
        w.mc.member("new@example.com").unwrap().status,
        "transactional"
    );
}

#[tokio::test]
async fn an_email_change_can_keep_the_old_member() {
    let w = World::new("on_email_change = \"keep\"").await;
    w.put_client(client("7", Some("old@example.com")));
    w.run("client", "7").await.unwrap();
    w.fb.with(|s| s.clients.get_mut("7").unwrap().email = Some("new@example.com".into()));
    w.run("client", "7").await.unwrap();
    assert_eq!(
        w.mc.member("old@example.com").unwrap().status,
        "transactional"
    );
    assert_eq!(
        w.mc.member("new@example.com").unwrap().status,
        "transactional"
    );
}

#[tokio::test]
async fn a_deleted_client_archives_its_member_once() {
    let w = World::new("").await;
    w.put_client(client("7", Some("jane@example.com")));
    w.put_client(client("8", Some("joe@example.com")));
    w.run("client", "7").await.unwrap();
    w.run("client", "8").await.unwrap();

    // Deleted with vis_state = 1…
    w.fb.with(|s| s.clients.get_mut("7").unwrap().vis_state = VIS_DELETED);
    assert!(synced(&w.run("client", "7").await.unwrap()));
    assert_eq!(w.mc.member("jane@example.com").unwrap().status, "archived");
    w.mc.take_calls();
    assert_eq!(w.run("client", "7").await.unwrap(), Handled::Unchanged);
    assert!(w.mc.take_calls().is_empty());

    // …or gone for good: the id map still knows the email.
    w.fb.with(|s| s.clients.remove("8"));
    assert!(synced(&w.run("client", "8").await.unwrap()));
    assert_eq!(w.mc.member("joe@example.com").unwrap().status, "archived");

    // Never synced: nothing to archive.
    let h = w.run("client", "99").await.unwrap();
    assert!(
        matches!(&h, Handled::Skipped { reason } if reason.contains("ever synced")),
        "{h:?}"
    );
}

#[tokio::test]
async fn a_deleted_client_can_keep_its_member() {
    let w = World::new("on_client_delete = \"keep\"").await;
    w.put_client(client("7", Some("jane@example.com")));
    w.run("client", "7").await.unwrap();
    w.fb.with(|s| s.clients.remove("7"));
    let h = w.run("client", "7").await.unwrap();
    assert!(
        matches!(&h, Handled::Skipped { reason } if reason.contains("on_client_delete")),
        "{h:?}"
    );
    assert_eq!(
        w.mc.member("jane@example.com").unwrap().status,
        "transactional"
    );
}

#[tokio::test]
async fn a_client_without_email_is_skipped() {
    let w = World::new("").await;
    w.put_client(client("7", Some("   ")));
    assert_eq!(
        w.run("client", "7").await.unwrap(),
        Handled::Skipped {
            reason: "client has no email".into()
        }
    );
    assert!(w.mc.take_calls().is_empty());
}

#[tokio::test]
async fn tags_can_be_turned_off() {
    let w = World::new("tags = false, status_if_new = \"pending\"").await;
    w.put_client(client("7", Some("jane@example.com")));
    w.run("client", "7").await.unwrap();
    assert!(
        !w.mc
            .take_calls()
            .iter()
            .any(|c| c.starts_with("update_tags"))
    );
    let m = w.mc.member("jane@example.com").unwrap();
    assert_eq!(m.status, "pending");
    assert_eq!(m.merge_fields["FB_STATUS"], "paid_up");
}

// ---- invoices and payments ------------------------------------------------------------------

#[tokio::test]
async fn invoice_lifecycle_create_paid_refunded_cancelled() {
    let w = World::new("").await;
    w.put_client(client("7", Some("jane@example.com")));
    w.put_invoice(invoice("100", "2026-03-31"));

    // Sent → pending order, with products, variants and the customer created first.
    assert!(synced(&w.run("invoice", "100").await.unwrap()));
    let o = w.mc.order("100").unwrap();
    assert_eq!(o.financial_status.as_deref(), Some("pending"));
    assert_eq!((o.order_total, o.currency_code.as_str()), (150.0, "USD"));
    assert_eq!(o.customer.id, "fb-acct-7");
    assert_eq!(o.lines.len(), 2);
    assert_eq!((o.lines[0].quantity, o.lines[0].price), (2, 50.0));
    w.mc.with(|s| {
        assert!(s.products.contains_key(&product_id("Consulting")));
        assert!(s.products.contains_key(&product_id("hosting")));
    });
    // The member's context follows the invoice.
    assert_eq!(
        w.mc.member("jane@example.com").unwrap().merge_fields["FB_STATUS"],
        "pending"
    );
    assert_eq!(w.mapping("invoice:100").await.unwrap().target_id, "7");

    // Redelivered: no Mailchimp write at all.
    w.mc.take_calls();
    assert_eq!(w.run("invoice", "100").await.unwrap(), Handled::Unchanged);
    assert_eq!(w.mc.take_calls(), Vec::<String>::new());

    // A payment makes it paid; the payment event finds its invoice.
    w.edit_invoice("100", mark_paid);
    w.fb.with(|s| {
        s.payments.insert(
            "P1".into(),
            Payment {
                id: "P1".into(),
                invoiceid: "100".into(),
                clientid: Some("7".into()),
                amount: usd("150"),
                date: None,
                kind: Some("Check".into()),
                note: None,
                transactionid: None,
                vis_state: 0,
                updated: None,
            },
        )
    });
    assert!(synced(&w.run("payment", "P1").await.unwrap()));
    assert_eq!(
        w.mc.order("100").unwrap().financial_status.as_deref(),
        Some("paid")
    );
    assert_eq!(
        w.mc.member("jane@example.com").unwrap().merge_fields["FB_STATUS"],
        "paid_up"
    );
    assert_eq!(w.mapping("payment:P1").await.unwrap().target_id, "100");

    // The payment is deleted for good: the id map still knows its invoice → refunded.
    w.fb.with(|s| s.payments.remove("P1"));
    w.edit_invoice("100", mark_unpaid);
    assert!(synced(&w.run("payment", "P1").await.unwrap()));
    assert_eq!(
        w.mc.order("100").unwrap().financial_status.as_deref(),
        Some("refunded")
    );

    // Deleted invoice → cancelled, and it no longer counts for the member.
    w.edit_invoice("100", |i| i.vis_state = VIS_DELETED);
    assert!(synced(&w.run("invoice", "100").await.unwrap()));
    assert_eq!(
        w.mc.order("100").unwrap().financial_status.as_deref(),
        Some("cancelled")
    );
    assert_eq!(w.mc.order("100").unwrap().lines.len(), 2);
    assert_eq!(
        w.mc.member("jane@example.com").unwrap().merge_fields["FB_STATUS"],
        "paid_up"
    );
    w.mc.take_calls();
    assert_eq!(w.run("invoice", "100").await.unwrap(), Handled::Unchanged);
    assert_eq!(w.mc.take_calls(), Vec::<String>::new());

    // Gone for good later: still nothing to do.
    w.fb.with(|s| s.invoices.remove("100"));
    assert_eq!(w.run("invoice", "100").await.unwrap(), Handled::Unchanged);
    assert!(FakeMailchimp::writes(&w.mc.take_calls()).is_empty());
}

#[tokio::test]
async fn removed_lines_are_deleted_from_the_order() {
    let w = World::new("").await;
    w.put_client(client("7", Some("jane@example.com")));
    w.put_invoice(invoice("100", "2026-03-31"));
    w.run("invoice", "100").await.unwrap();
    w.mc.take_calls();

    // Line 2 removed, line 3 added (fractional hours: quantity 1 at the line amount).
    w.edit_invoice("100", |i| {
        i.lines.truncate(1);
        i.lines.push(line("3", "Design", "1.5", "40", "60"));
        i.amount = usd("160");
        i.outstanding = usd("160");
    });
    let h = w.run("invoice", "100").await.unwrap();
    let Handled::Synced { written, .. } = h else {
        panic!("{h:?}")
    };
    assert_eq!(written.unwrap()["order"]["deleted_lines"], json!(["2"]));
    let calls = FakeMailchimp::writes(&w.mc.take_calls());
    let patch = calls
        .iter()
        .position(|c| c.starts_with("update_order"))
        .unwrap();
    let delete = calls
        .iter()
        .position(|c| c == "delete_order_line store1 100 2")
        .unwrap();
    assert!(patch < delete, "{calls:?}");
    assert!(calls.contains(&format!("create_product store1 {}", product_id("Design"))));

    let o = w.mc.order("100").unwrap();
    let lines: Vec<_> = o
        .lines
        .iter()
        .map(|l| (l.id.as_str(), l.quantity, l.price))
        .collect();
    assert_eq!(lines, [("1", 2, 50.0), ("3", 1, 60.0)]);
    assert_eq!(o.order_total, 160.0);
}

#[tokio::test]
async fn drafts_are_skipped_unless_the_connection_syncs_them() {
    let mut draft = invoice("100", "2026-03-31");
    draft.status = 1;
    draft.v3_status = Some("draft".into());
    draft.display_status = Some("draft".into());

    let w = World::new("").await;
    w.put_client(client("7", Some("jane@example.com")));
    w.put_invoice(draft.clone());
    let h = w.run("invoice", "100").await.unwrap();
    assert!(
        matches!(&h, Handled::Skipped { reason } if reason.contains("sync_drafts")),
        "{h:?}"
    );
    assert!(w.mc.take_calls().is_empty());

    let w = World::new("sync_drafts = true").await;
    w.put_client(client("7", Some("jane@example.com")));
    w.put_invoice(draft);
    assert!(synced(&w.run("invoice", "100").await.unwrap()));
    assert_eq!(
        w.mc.order("100").unwrap().financial_status.as_deref(),
        Some("pending")
    );
    // A draft still does not count in the member's context.
    assert_eq!(
        w.mc.member("jane@example.com").unwrap().merge_fields["FB_STATUS"],
        "paid_up"
    );
}

#[tokio::test]
async fn an_invoice_of_a_client_without_email_is_skipped() {
    let w = World::new("").await;
    w.put_client(client("7", None));
    w.put_invoice(invoice("100", "2026-03-31"));
    let h = w.run("invoice", "100").await.unwrap();
    assert!(
        matches!(&h, Handled::Skipped { reason } if reason.contains("no email")),
        "{h:?}"
    );
    assert!(w.mc.take_calls().is_empty());
}

#[tokio::test]
async fn a_lost_id_map_does_not_duplicate_or_rewrite_an_identical_order() {
    let w = World::new("").await;
    w.put_client(client("7", Some("jane@example.com")));
    w.put_invoice(invoice("100", "2026-03-31"));
    w.run("invoice", "100").await.unwrap();
    // Another instance (empty caches) with the id map entry gone.
    let w2 = World::new("").await;
    w2.put_client(client("7", Some("jane@example.com")));
    w2.put_invoice(invoice("100", "2026-03-31"));
    w.mc.with(|a| {
        w2.mc.with(|b| {
            b.stores = a.stores.clone();
            b.customers = a.customers.clone();
            b.products = a.products.clone();
            b.orders = a.orders.clone();
        })
    });
    w2.run("invoice", "100").await.unwrap();
    let writes = FakeMailchimp::writes(&w2.mc.take_calls());
    assert!(
        !writes
            .iter()
            .any(|c| c.contains("_order") || c.starts_with("create_product")),
        "{writes:?}"
    );
}

// ---- backfill ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_backfill_writes_with_the_store_syncing() {
    let w = World::new("").await;
    w.put_client(client("7", Some("jane@example.com")));
    w.put_invoice(invoice("100", "2026-03-31"));

    // The first backfill event creates the store already syncing.
    w.run_as("invoice", "100", Origin::Backfill).await.unwrap();
    w.mc.with(|s| {
        assert_eq!(s.stores[STORE].is_syncing, Some(true));
        assert_eq!(s.tag_syncing, [true]);
    });
    let calls = w.mc.take_calls();
    let create_store = calls
        .iter()
        .position(|c| c.starts_with("create_store"))
        .unwrap();
    let create_order = calls
        .iter()
        .position(|c| c.starts_with("create_order"))
        .unwrap();
    assert!(create_store < create_order, "{calls:?}");

    // The CLI ends the backfill; a later backfill over the existing store turns it on first.
    assert!(super::end_backfill(w.mc.as_ref(), STORE).await.unwrap());
    assert_eq!(w.mc.with(|s| s.stores[STORE].is_syncing), Some(false));
    w.mc.take_calls();
    w.edit_invoice("100", mark_paid);
    w.run_as("invoice", "100", Origin::Backfill).await.unwrap();
    let calls = FakeMailchimp::writes(&w.mc.take_calls());
    assert_eq!(calls[0], "set_store_syncing store1 true", "{calls:?}");
    assert!(calls.iter().any(|c| c == "update_order store1 100 paid"));

    assert!(super::begin_backfill(w.mc.as_ref(), STORE).await.unwrap());
    assert!(!super::begin_backfill(w.mc.as_ref(), "nope").await.unwrap());
}

// ---- failures ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_member_in_compliance_state_is_a_permanent_error_with_the_reason() {
    let w = World::new("").await;
    w.put_client(client("7", Some("gone@example.com")));
    let detail = "gone@example.com is in a compliance state due to unsubscribe, bounce, or \
                  compliance review and cannot be subscribed.";
    w.mc.with(|s| {
        s.refuse.insert(
            "gone@example.com".into(),
            (400, COMPLIANCE_STATE.into(), detail.into()),
        )
    });
    let e = w.run("client", "7").await.unwrap_err();
    assert!(!e.is_transient());
    assert_eq!(e.class(), "compliance_state");
    assert!(e.message().contains(detail), "{e}");
    assert_eq!(e.vendor_request_id(), Some("req-400"));
    // Nothing recorded: a replay after the person re-subscribes writes again.
    assert!(w.mapping("client:7").await.is_none());
}

#[tokio::test]
async fn transient_failures_leave_the_id_map_for_the_retry() {
    let w = World::new("").await;
    w.put_client(client("7", Some("jane@example.com")));
    w.put_invoice(invoice("100", "2026-03-31"));
    w.run("client", "7").await.unwrap();
    w.mc.with(|s| s.fail_next = Some(503));
    let e = w.run("invoice", "100").await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(w.mapping("invoice:100").await.is_none());
    assert!(synced(&w.run("invoice", "100").await.unwrap()));
    assert!(w.mc.order("100").is_some());

    w.fb.with(|s| s.fail = Some(401));
    let e = w.run("client", "7").await.unwrap_err();
    // A broken connection waits in the queue for re-authorisation (docs/architecture.md "Tokens").
    assert!(e.is_transient(), "{e}");
    assert!(e.message().contains("connection broken"), "{e}");
    w.fb.with(|s| s.fail = Some(500));
    assert!(w.run("client", "7").await.unwrap_err().is_transient());
}

#[tokio::test]
async fn a_store_on_another_audience_is_refused() {
    let w = World::new("").await;
    w.put_client(client("7", Some("jane@example.com")));
    w.mc.with(|s| {
        s.stores.insert(
            STORE.into(),
            Store {
                id: STORE.into(),
                list_id: "other".into(),
                name: "x".into(),
                currency_code: "USD".into(),
                is_syncing: None,
            },
        )
    });
    let e = w.run("client", "7").await.unwrap_err();
    assert_eq!(e.class(), "configuration");
    assert!(e.message().contains("belongs to audience `other`"), "{e}");
}

#[tokio::test]
async fn dispatch_by_connection_and_entity() {
    let w = World::new("").await;
    let h = w.run("expense", "1").await.unwrap();
    assert!(
        matches!(&h, Handled::Skipped { reason } if reason.contains("`expense`")),
        "{h:?}"
    );

    // The QuickBooks connection's events reach the QuickBooks flow, which writes to the same
    // audience.
    let mut qbo = event("qbo-to-mc", "customer", "", Origin::Webhook);
    qbo.source = SourceRef {
        vendor: Vendor::Quickbooks,
        account: "realm".into(),
    };
    qbo.entity_id = w.qb.add_customer("Ann", Some("ann@example.com"));
    assert!(synced(&w.handler.handle(&qbo).await.unwrap()));
    assert_eq!(
        w.mc.member("ann@example.com").map(|m| m.status).as_deref(),
        Some("transactional")
    );

    let e = w
        .handler
        .handle(&event("nope", "client", "1", Origin::Webhook))
        .await
        .unwrap_err();
    assert_eq!(e.class(), "unknown_connection");

    let mut other = event(CONN, "client", "1", Origin::Webhook);
    other.source.account = "someone-else".into();
    assert_eq!(
        w.handler.handle(&other).await.unwrap_err().class(),
        "configuration"
    );
}
