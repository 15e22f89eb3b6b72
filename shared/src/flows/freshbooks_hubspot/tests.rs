//! The flow over in-memory FreshBooks and HubSpot and the embedded store (id map, connections),
//! through the HubSpot worker's dispatch, a batch at a time.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::mapping;
use crate::adapters::embedded::EmbeddedDb;
use crate::connections::ConnectionSet;
use crate::event::{Origin, SourceRef, SyncEvent};
use crate::flows::{FlowDeps, TargetDispatch};
use crate::ports::{CachedConnections, ConnectionStore, IdMap, ManualClock};
use crate::testing::fakes::{FakeClients, FakeFreshbooks};
use crate::testing::hubspot_fake::{Failure, FakeHubspot};
use crate::vendor::Vendor;
use crate::vendors::freshbooks::models::{
    BillVendor, Client, Invoice, Line, Money, Payment, VIS_DELETED,
};
use crate::vendors::hubspot::error::RatePolicy;
use crate::vendors::hubspot::models::{HubObject, ObjectType};
use crate::worker::{Handled, HandlerError, TargetHandler};

const CONN: &str = "books-to-hs";

struct World {
    fb: Arc<FakeFreshbooks>,
    hs: Arc<FakeHubspot>,
    db: Arc<EmbeddedDb>,
    handler: TargetDispatch,
}

impl World {
    async fn new(options: &str) -> World {
        // 2026-03-15 12:00 UTC: 08:00 on the 15th in New York.
        let clock = Arc::new(ManualClock::at_unix(1_773_576_000));
        let db = Arc::new(EmbeddedDb::in_memory(clock.clone()).unwrap());
        let toml = format!(
            r#"
[connection.{CONN}]
source = {{ vendor = "freshbooks", account = "acct", credentials = "fb" }}
target = {{ vendor = "hubspot", credentials = "hs", portal_id = "1" }}
options = {{ {options} }}
"#
        );
        let set = ConnectionSet::from_toml(&toml, "test").unwrap();
        db.put_connections(&set).await.unwrap();
        let connections = Arc::new(CachedConnections::new(db.clone(), Duration::ZERO));
        let fb = Arc::new(FakeFreshbooks::default());
        let hs = Arc::new(FakeHubspot::default());
        // What `apply` creates: the flow's properties, unique keys among them.
        hs.with(|s| {
            for (object, def) in mapping::property_definitions() {
                s.properties.entry(object).or_default().push(def);
            }
        });
        let clients = Arc::new(FakeClients::freshbooks_hubspot(fb.clone(), hs.clone()));
        let deps = FlowDeps {
            clients,
            id_map: db.clone(),
            clock,
        };
        let handler = TargetDispatch::for_target(Vendor::Hubspot, connections, &deps).unwrap();
        World {
            fb,
            hs,
            db,
            handler,
        }
    }

    async fn run(&self, events: &[(&str, &str)]) -> Vec<Result<Handled, HandlerError>> {
        let events: Vec<SyncEvent> = events.iter().map(|(e, id)| event(e, id)).collect();
        self.handler.handle_batch(&events).await
    }

    async fn one(&self, entity: &str, id: &str) -> Result<Handled, HandlerError> {
        self.run(&[(entity, id)]).await.pop().unwrap()
    }

    fn put_client(&self, c: Client) {
        self.fb.with(|s| s.clients.insert(c.id.clone(), c));
    }

    fn put_invoice(&self, i: Invoice) {
        self.fb.with(|s| s.invoices.insert(i.id.clone(), i));
    }

    fn contacts(&self) -> Vec<HubObject> {
        self.hs.objects(ObjectType::Contacts)
    }

    fn only(&self, object: ObjectType) -> HubObject {
        let all = self.hs.objects(object);
        assert_eq!(all.len(), 1, "{object}: {all:?}");
        all.into_iter().next().unwrap()
    }

    async fn flag(&self, key: &str) -> bool {
        self.db
            .get_mapping(CONN, key)
            .await
            .unwrap()
            .is_some_and(|m| m.fingerprint == super::UNAVAILABLE)
    }
}

fn event(entity: &str, id: &str) -> SyncEvent {
    SyncEvent {
        v: 1,
        event_id: format!("{entity}-{id}"),
        connection: CONN.into(),
        source: SourceRef {
            vendor: Vendor::Freshbooks,
            account: "acct".into(),
        },
        entity: entity.into(),
        entity_id: id.into(),
        operation: "update".into(),
        occurred_at: None,
        received_at: Utc::now(),
        origin: Origin::Webhook,
        detail: Default::default(),
        detail_ref: None,
    }
}

fn client(id: &str, email: Option<&str>, org: Option<&str>) -> Client {
    Client {
        id: id.into(),
        email: email.map(str::to_string),
        fname: Some("Jane".into()),
        lname: Some("Doe".into()),
        organization: org.map(str::to_string),
        currency_code: Some("USD".into()),
        bus_phone: Some("+1 555 0100".into()),
        p_city: Some("Toronto".into()),
        ..Client::default()
    }
}

fn usd(s: &str) -> Money {
    Money {
        amount: s.parse().unwrap(),
        code: Some("USD".into()),
    }
}

fn line(id: &str, qty: &str, cost: &str) -> Line {
    Line {
        lineid: id.into(),
        name: format!("Service {id}"),
        description: None,
        qty: qty.parse().unwrap(),
        unit_cost: usd(cost),
        amount: usd(cost),
    }
}

/// A sent invoice of client `client` with three lines (100 + 2×50 + 25 = 225).
fn invoice(id: &str, client: &str) -> Invoice {
    Invoice {
        id: id.into(),
        invoice_number: Some(format!("INV-{id}")),
        customerid: client.into(),
        create_date: NaiveDate::from_ymd_opt(2026, 3, 1),
        due_date: NaiveDate::from_ymd_opt(2026, 3, 31),
        date_paid: None,
        currency_code: Some("USD".into()),
        amount: usd("225"),
        outstanding: usd("225"),
        paid: usd("0"),
        status: 2,
        v3_status: Some("sent".into()),
        payment_status: Some("unpaid".into()),
        display_status: Some("sent".into()),
        vis_state: 0,
        updated: None,
        lines: vec![
            line("1", "1", "100"),
            line("2", "2", "50"),
            line("3", "1", "25"),
        ],
    }
}

fn payment(id: &str, invoice: &str, amount: &str) -> Payment {
    Payment {
        id: id.into(),
        invoiceid: invoice.into(),
        clientid: None,
        amount: usd(amount),
        date: NaiveDate::from_ymd_opt(2026, 3, 10),
        kind: Some("Check".into()),
        note: None,
        transactionid: None,
        vis_state: 0,
        updated: None,
    }
}

fn synced(r: &Result<Handled, HandlerError>) -> bool {
    matches!(r, Ok(Handled::Synced { .. }))
}

#[tokio::test]
async fn a_client_becomes_a_contact_and_company_with_its_standing() {
    let w = World::new("").await;
    w.put_client(client("7", Some("Jane@Acme.com"), Some("Acme Ltd")));
    w.put_invoice(invoice("70", "7"));
    assert!(synced(&w.one("client", "7").await));

    let contact = w.hs.contact("jane@acme.com").unwrap();
    assert_eq!(contact.property("firstname"), Some("Jane"));
    assert_eq!(contact.property("phone"), Some("+1 555 0100"));
    assert_eq!(contact.property("fb_client_id"), Some("7"));
    assert_eq!(contact.property("fb_payment_status"), Some("unpaid"));
    assert_eq!(contact.property("fb_outstanding_balance"), Some("225"));
    assert_eq!(contact.property("fb_invoice_count"), Some("1"));
    assert_eq!(contact.property("fb_last_invoice_date"), Some("2026-03-01"));
    assert_eq!(contact.property("fb_deleted"), Some("false"));

    let company = w.only(ObjectType::Companies);
    assert_eq!(company.property("name"), Some("Acme Ltd"));
    assert_eq!(company.property("domain"), Some("acme.com"));
    assert_eq!(company.property("fb_company_key"), Some("domain:acme.com"));
    assert_eq!(
        w.hs.associated(ObjectType::Contacts, &contact.id, ObjectType::Companies),
        vec![company.id.clone()]
    );

    // Nothing changed: nothing written.
    w.hs.take_calls();
    assert_eq!(w.one("client", "7").await, Ok(Handled::Unchanged));
    assert_eq!(w.hs.writes(), 0);
}

#[tokio::test]
async fn a_batch_costs_one_call_per_hundred_records_per_phase() {
    let w = World::new("").await;
    let ids: Vec<String> = (1..=150).map(|i| i.to_string()).collect();
    for id in &ids {
        w.put_client(client(
            id,
            Some(&format!("p{id}@firm{id}.com")),
            Some(&format!("Firm {id}")),
        ));
    }
    let events: Vec<(&str, &str)> = ids.iter().map(|id| ("client", id.as_str())).collect();
    let answers = w.run(&events).await;
    assert!(answers.iter().all(synced), "{answers:?}");
    assert_eq!(w.contacts().len(), 150);
    assert_eq!(w.hs.objects(ObjectType::Companies).len(), 150);
    // Contacts, companies and the primary association: two chunks each (100 + 50).
    assert_eq!(w.hs.writes(), 6, "{:?}", w.hs.calls());
}

#[tokio::test]
async fn an_email_change_updates_the_same_contact() {
    let w = World::new("").await;
    w.put_client(client("7", Some("old@acme.com"), None));
    w.one("client", "7").await.unwrap();
    let id = w.hs.contact("old@acme.com").unwrap().id;
    w.put_client(client("7", Some("new@acme.com"), None));
    assert!(synced(&w.one("client", "7").await));
    assert_eq!(w.contacts().len(), 1);
    assert_eq!(w.hs.contact("new@acme.com").unwrap().id, id);
}

#[tokio::test]
async fn a_deleted_client_keeps_its_contact_flagged_or_archives_it() {
    let w = World::new("").await;
    w.put_client(client("7", Some("jane@acme.com"), None));
    w.one("client", "7").await.unwrap();
    w.fb.with(|s| s.clients.get_mut("7").unwrap().vis_state = VIS_DELETED);
    assert!(synced(&w.one("client", "7").await));
    let contact = w.hs.contact("jane@acme.com").unwrap();
    assert_eq!(contact.property("fb_deleted"), Some("true"));
    assert_eq!(w.one("client", "7").await, Ok(Handled::Unchanged));

    let w = World::new("on_client_delete = \"archive\"").await;
    w.put_client(client("7", Some("jane@acme.com"), None));
    w.one("client", "7").await.unwrap();
    w.fb.with(|s| s.clients.get_mut("7").unwrap().vis_state = VIS_DELETED);
    assert!(synced(&w.one("client", "7").await));
    assert!(w.hs.contact("jane@acme.com").is_none());

    // Never synced: nothing to retire.
    w.put_client(Client {
        vis_state: VIS_DELETED,
        ..client("8", Some("x@y.com"), None)
    });
    assert!(matches!(
        w.one("client", "8").await,
        Ok(Handled::Skipped { .. })
    ));
}

#[tokio::test]
async fn free_mail_clients_get_no_domain_and_a_vendor_on_a_clients_domain_is_one_company() {
    let w = World::new("").await;
    w.put_client(client("7", Some("jane@gmail.com"), Some("Jane's Bakery")));
    w.one("client", "7").await.unwrap();
    let c = w.only(ObjectType::Companies);
    assert_eq!(c.property("domain"), None);
    assert_eq!(c.property("fb_company_key"), Some("fb:acct:client:7"));

    let w = World::new("").await;
    w.put_client(client("7", Some("jane@acme.com"), Some("Acme Ltd")));
    w.fb.with(|s| {
        s.bill_vendors.insert(
            "v1".into(),
            BillVendor {
                id: "v1".into(),
                vendor_name: Some("ACME Supplies".into()),
                primary_contact_first_name: None,
                primary_contact_last_name: None,
                primary_contact_email: Some("ap@acme.com".into()),
                phone: None,
                website: None,
                street: None,
                street2: None,
                city: None,
                province: None,
                postal_code: None,
                country: None,
                currency_code: None,
                vis_state: 0,
            },
        )
    });
    let answers = w.run(&[("client", "7"), ("bill_vendor", "v1")]).await;
    assert!(answers.iter().all(synced), "{answers:?}");
    let c = w.only(ObjectType::Companies);
    assert_eq!(c.property("fb_is_vendor"), Some("true"));
    assert_eq!(c.property("fb_client_id"), Some("7"));
    // The vendor alone again: the same company.
    w.fb.with(|s| s.bill_vendors.get_mut("v1").unwrap().phone = Some("1".into()));
    assert!(synced(&w.one("bill_vendor", "v1").await));
    assert_eq!(w.hs.objects(ObjectType::Companies).len(), 1);
}

#[tokio::test]
async fn an_invoice_goes_out_with_its_lines_and_opens_then_voids() {
    let w = World::new("").await;
    w.put_client(client("7", Some("jane@acme.com"), Some("Acme Ltd")));
    w.put_invoice(invoice("70", "7"));
    let answer = w.one("invoice", "70").await;
    assert!(synced(&answer), "{answer:?}");

    let inv = w.only(ObjectType::Invoices);
    assert_eq!(inv.property("fb_invoice_id"), Some("acct:70"));
    assert_eq!(inv.property("hs_currency"), Some("USD"));
    assert_eq!(inv.property("hs_invoice_status"), Some("open"));
    let lines =
        w.hs.associated(ObjectType::Invoices, &inv.id, ObjectType::LineItems);
    assert_eq!(lines.len(), 3);
    let contact = w.hs.contact("jane@acme.com").unwrap();
    assert_eq!(
        w.hs.associated(ObjectType::Invoices, &inv.id, ObjectType::Contacts),
        vec![contact.id]
    );
    assert_eq!(
        w.hs.associated(ObjectType::Invoices, &inv.id, ObjectType::Companies)
            .len(),
        1
    );
    let prices: Vec<Decimal> =
        w.hs.objects(ObjectType::LineItems)
            .iter()
            .map(|l| l.property("price").unwrap().parse().unwrap())
            .collect();
    assert_eq!(prices.iter().sum::<Decimal>(), Decimal::from(175));

    // Redelivered: no second invoice or line.
    w.db.put_mapping(
        CONN,
        "invoice:70",
        &crate::ports::IdMapping {
            target_id: inv.id.clone(),
            fingerprint: "open:stale".into(),
            updated_at: Utc::now(),
        },
    )
    .await
    .unwrap();
    assert!(synced(&w.one("invoice", "70").await));
    assert_eq!(w.hs.objects(ObjectType::Invoices).len(), 1);
    assert_eq!(w.hs.objects(ObjectType::LineItems).len(), 3);

    // A line dropped in FreshBooks is archived in HubSpot.
    w.fb.with(|s| s.invoices.get_mut("70").unwrap().lines.pop());
    assert!(synced(&w.one("invoice", "70").await));
    assert_eq!(w.hs.objects(ObjectType::LineItems).len(), 2);

    // Deleted in FreshBooks: voided.
    w.fb.with(|s| s.invoices.get_mut("70").unwrap().vis_state = VIS_DELETED);
    assert!(synced(&w.one("invoice", "70").await));
    assert_eq!(
        w.only(ObjectType::Invoices).property("hs_invoice_status"),
        Some("voided")
    );
}

#[tokio::test]
async fn an_invoice_of_a_client_without_email_stays_a_draft() {
    let w = World::new("").await;
    w.put_client(client("7", None, Some("Acme Ltd")));
    w.put_invoice(invoice("70", "7"));
    let answer = w.one("invoice", "70").await;
    assert!(synced(&answer), "{answer:?}");
    // Created as a draft (HubSpot's default) and never opened.
    assert_ne!(
        w.only(ObjectType::Invoices).property("hs_invoice_status"),
        Some("open")
    );
    assert!(w.contacts().is_empty());
}

#[tokio::test]
async fn drafts_wait_for_sync_drafts() {
    let w = World::new("").await;
    w.put_client(client("7", Some("jane@acme.com"), None));
    w.put_invoice(Invoice {
        status: 1,
        v3_status: Some("draft".into()),
        display_status: Some("draft".into()),
        ..invoice("70", "7")
    });
    assert!(matches!(
        w.one("invoice", "70").await,
        Ok(Handled::Skipped { .. })
    ));
    assert!(w.hs.objects(ObjectType::Invoices).is_empty());

    let w = World::new("sync_drafts = true").await;
    w.put_client(client("7", Some("jane@acme.com"), None));
    w.put_invoice(Invoice {
        status: 1,
        v3_status: Some("draft".into()),
        display_status: Some("draft".into()),
        ..invoice("70", "7")
    });
    assert!(synced(&w.one("invoice", "70").await));
    let inv = w.only(ObjectType::Invoices);
    assert_ne!(inv.property("hs_invoice_status"), Some("open"));
}

#[tokio::test]
async fn invoices_unavailable_are_skipped_and_remembered_while_contacts_sync() {
    let w = World::new("").await;
    w.hs.with(|s| s.invoice_writes_unavailable = true);
    w.put_client(client("7", Some("jane@acme.com"), None));
    w.put_invoice(invoice("70", "7"));
    w.put_invoice(invoice("71", "7"));
    let answer = w.one("invoice", "70").await;
    let Ok(Handled::Skipped { reason }) = answer else {
        panic!("{answer:?}");
    };
    assert!(reason.starts_with("invoices_unavailable"), "{reason}");
    assert!(reason.contains("--only invoices"), "{reason}");
    assert!(w.flag(super::INVOICES_FLAG).await);
    assert!(w.hs.contact("jane@acme.com").is_some());

    // Known now: the next invoice costs no invoice call.
    w.hs.take_calls();
    assert!(matches!(
        w.one("invoice", "71").await,
        Ok(Handled::Skipped { .. })
    ));
    assert!(
        w.hs.calls()
            .iter()
            .all(|c| c.object != Some(ObjectType::Invoices))
    );
}

#[tokio::test]
async fn a_payment_is_recorded_against_its_invoice_or_falls_back() {
    let w = World::new("").await;
    w.put_client(client("7", Some("jane@acme.com"), None));
    w.put_invoice(invoice("70", "7"));
    w.fb.with(|s| s.payments.insert("p1".into(), payment("p1", "70", "225")));
    let answer = w.one("payment", "p1").await;
    assert!(synced(&answer), "{answer:?}");
    let pay = w.only(ObjectType::CommercePayments);
    assert_eq!(pay.property("hs_initial_amount"), Some("225"));
    assert_eq!(pay.property("fb_payment_id"), Some("acct:p1"));
    let inv = w.only(ObjectType::Invoices);
    assert_eq!(
        w.hs.associated(ObjectType::CommercePayments, &pay.id, ObjectType::Invoices),
        vec![inv.id]
    );
    // Redelivered: still one payment.
    assert!(w.one("payment", "p1").await.is_ok());
    assert_eq!(w.hs.objects(ObjectType::CommercePayments).len(), 1);

    // A portal without payment processing: the contact's properties, no dead letter.
    let w = World::new("").await;
    w.hs.with(|s| s.no_payment_processing = true);
    w.put_client(client("7", Some("jane@acme.com"), None));
    w.put_invoice(invoice("70", "7"));
    w.fb.with(|s| s.payments.insert("p1".into(), payment("p1", "70", "225")));
    let answer = w.one("payment", "p1").await;
    let Ok(Handled::Synced {
        written: Some(written),
        ..
    }) = &answer
    else {
        panic!("{answer:?}");
    };
    assert!(written.to_string().contains("fallback"), "{written}");
    assert!(w.hs.objects(ObjectType::CommercePayments).is_empty());
    assert!(w.flag(super::PAYMENTS_FLAG).await);
}

#[tokio::test]
async fn a_refused_input_fails_only_its_event() {
    let w = World::new("").await;
    w.put_client(client("7", Some("jane@acme.com"), None));
    w.put_client(client("8", Some("bad@acme.com"), None));
    w.hs.with(|s| {
        s.refuse.insert(
            (ObjectType::Contacts, "bad@acme.com".into()),
            (
                400,
                "VALIDATION_ERROR".into(),
                "Email address is invalid".into(),
            ),
        )
    });
    let answers = w.run(&[("client", "7"), ("client", "8")]).await;
    assert!(synced(&answers[0]), "{answers:?}");
    let Err(e) = &answers[1] else {
        panic!("{answers:?}")
    };
    assert!(
        !e.is_transient() && e.to_string().contains("invalid"),
        "{e}"
    );
}

#[tokio::test]
async fn throttles_retry_and_the_daily_limit_holds() {
    let w = World::new("").await;
    w.put_client(client("7", Some("jane@acme.com"), None));
    w.put_client(client("8", Some("joe@acme.com"), None));
    w.hs.with(|s| s.fail_next.push_back(Failure::Status(503)));
    let answers = w.run(&[("client", "7"), ("client", "8")]).await;
    assert!(
        answers
            .iter()
            .all(|a| a.as_ref().is_err_and(|e| e.is_transient()))
    );

    let until: DateTime<Utc> = "2026-03-16T04:00:00Z".parse().unwrap();
    w.hs.with(|s| {
        s.daily_reset = until;
        s.fail_next
            .push_back(Failure::RateLimited(RatePolicy::Daily));
    });
    let answers = w.run(&[("client", "7"), ("client", "8")]).await;
    for a in &answers {
        let Err(e) = a else { panic!("{answers:?}") };
        assert_eq!(e.hold_until(), Some(until), "{e}");
    }
    // After the reset everything goes through.
    w.hs.with(|s| s.daily_limit = None);
    let answers = w.run(&[("client", "7"), ("client", "8")]).await;
    assert!(answers.iter().all(synced), "{answers:?}");
}

#[tokio::test]
async fn events_it_does_not_sync_are_skipped() {
    let w = World::new("").await;
    assert!(matches!(
        w.one("estimate", "1").await,
        Ok(Handled::Skipped { .. })
    ));
}

#[test]
fn freshbooks_payment_types_become_hubspot_payment_methods() {
    for (kind, method) in [
        ("Check", "check"),
        ("Cash", "cash"),
        ("ACH", "ach"),
        ("Bank Transfer", "wire_transfer"),
        ("Credit Card", "card"),
        ("VISA", "card"),
        ("AMEX", "card"),
        ("Debit", "card"),
        ("PayPal", "other"),
        ("Credit", "other"),
        ("2Checkout", "other"),
    ] {
        assert_eq!(mapping::payment_method(kind), method, "{kind}");
    }
}
