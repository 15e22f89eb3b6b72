//! FreshBooks → HubSpot end to end, through the real pipeline pieces: FreshBooks (sandbox)
//! delivers signed webhooks to the webhook handler on a local port → the `hubspot` queue → the
//! HubSpot worker (harness + flow + real clients, whole batches) → HubSpot (sandbox), and the
//! poller for the fallback. Every scenario runs on the embedded adapters and on moto.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the test failing, with the value

use std::time::Duration;

use chrono::{NaiveTime, Utc};
use mlc::flows::freshbooks_hubspot::portal;
use mlc::poller::Job;
use mlc::ports::{AuditEntry, Clock, DeadLetterStatus, Outcome};
use mlc::vendors::hubspot::models::ObjectType;
use mlc::worker::Disposition;
use mlc_tests::pipeline::Backend;
use mlc_tests::pipeline::hubspot::{CONNECTION, Pipeline, PipelineOptions, QUEUE};
use mlc_tests::sandbox::freshbooks::{
    BillVendorSpec, ClientSpec, InvoiceSpec, LineSpec, PaymentSpec, Webhooks,
};
use mlc_tests::sandbox::hubspot::{Policy, StoredObject};

const DRAIN: Duration = Duration::from_secs(90);

fn client(email: &str, fname: &str, organization: Option<&str>) -> ClientSpec {
    ClientSpec {
        email: Some(email.into()),
        fname: Some(fname.into()),
        lname: Some("Doe".into()),
        organization: organization.map(str::to_string),
        currency_code: Some("USD".into()),
    }
}

fn line(name: &str, qty: &str, unit_cost: &str) -> LineSpec {
    LineSpec {
        name: name.into(),
        description: None,
        qty: qty.into(),
        unit_cost: unit_cost.into(),
    }
}

/// An invoice of three lines (2 × 150 + 1 × 20 + 4 × 5 = 340).
fn invoice(customer: &str, sent: bool) -> InvoiceSpec {
    InvoiceSpec {
        customerid: customer.into(),
        lines: vec![
            line("Consulting", "2", "150.00"),
            line("Hosting", "1", "20.00"),
            line("Support", "4", "5.00"),
        ],
        currency_code: Some("USD".into()),
        sent,
        ..InvoiceSpec::default()
    }
}

fn objects(p: &Pipeline, t: ObjectType) -> Vec<StoredObject> {
    p.hs.objects(p.portal_id(), t)
}

fn contact(p: &Pipeline, email: &str) -> Option<StoredObject> {
    objects(p, ObjectType::Contacts)
        .into_iter()
        .find(|c| c.properties.get("email").map(String::as_str) == Some(email))
}

fn prop<'a>(o: &'a StoredObject, name: &str) -> Option<&'a str> {
    o.properties.get(name).map(String::as_str)
}

/// The HubSpot invoice of FreshBooks invoice `id`.
fn hs_invoice(p: &Pipeline, id: &str) -> Option<StoredObject> {
    let key = format!("{}:{id}", p.account());
    objects(p, ObjectType::Invoices)
        .into_iter()
        .find(|i| prop(i, "fb_invoice_id") == Some(key.as_str()))
}

fn linked(p: &Pipeline, from: ObjectType, id: u64, to: ObjectType) -> Vec<String> {
    p.hs.associations(p.portal_id(), from, &id.to_string(), to)
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

async fn trail(p: &Pipeline, entity: &str, id: &str) -> Vec<AuditEntry> {
    let key = format!("freshbooks:{}:{entity}:{id}", p.account());
    p.store.audit_by_record(&key, 50).await.unwrap()
}

/// Nothing dead-lettered, no request off HubSpot's documented shape.
async fn assert_clean(p: &Pipeline) {
    let open = p
        .store
        .list_dead_letters(DeadLetterStatus::Open, 10)
        .await
        .unwrap();
    assert!(open.is_empty(), "dead letters: {open:#?}");
    assert_eq!(p.depth().await.dead, 0, "nothing in the DLQ");
    let violations = p.hs.violations();
    assert!(violations.is_empty(), "violations: {violations:#?}");
}

async fn start(backend: Backend) -> Pipeline {
    Pipeline::start(PipelineOptions {
        backend,
        ..PipelineOptions::default()
    })
    .await
}

// ---------------------------------------------------------------------------------------------

/// Client create → contact (and its company); update; email change → the same contact;
/// delete → flagged `fb_deleted`.
async fn client_lifecycle(backend: Backend) {
    let p = start(backend).await;
    let acct = p.account().to_string();
    let c =
        p.fb.create_client(
            &acct,
            client("Jane@Acme.com", "Jane", Some("Acme Ltd")),
            Webhooks::Send,
        )
        .await
        .unwrap();
    p.drain(DRAIN).await;
    let jane = contact(&p, "jane@acme.com").expect("the contact");
    assert_eq!(prop(&jane, "firstname"), Some("Jane"));
    assert_eq!(prop(&jane, "fb_client_id"), Some(c.as_str()));
    assert_eq!(prop(&jane, "fb_deleted"), Some("false"));
    let companies = objects(&p, ObjectType::Companies);
    assert_eq!(companies.len(), 1, "{companies:#?}");
    assert_eq!(prop(&companies[0], "domain"), Some("acme.com"));
    assert_eq!(
        linked(&p, ObjectType::Contacts, jane.id, ObjectType::Companies),
        vec![companies[0].id.to_string()]
    );

    p.fb.update_client(
        &acct,
        &c,
        ClientSpec {
            fname: Some("Janet".into()),
            ..ClientSpec::default()
        },
        Webhooks::Send,
    )
    .await
    .unwrap();
    p.drain(DRAIN).await;
    assert_eq!(
        prop(&contact(&p, "jane@acme.com").unwrap(), "firstname"),
        Some("Janet")
    );

    // Email change: the id map holds the contact's id, so the same contact takes the address.
    p.fb.update_client(
        &acct,
        &c,
        ClientSpec {
            email: Some("janet@acme.com".into()),
            ..ClientSpec::default()
        },
        Webhooks::Send,
    )
    .await
    .unwrap();
    p.drain(DRAIN).await;
    let contacts = objects(&p, ObjectType::Contacts);
    assert_eq!(contacts.len(), 1, "{contacts:#?}");
    assert_eq!(contacts[0].id, jane.id, "the same contact");
    assert_eq!(prop(&contacts[0], "email"), Some("janet@acme.com"));

    // Deleted: kept, flagged.
    p.fb.delete_client(&acct, &c, Webhooks::Send).await.unwrap();
    p.drain(DRAIN).await;
    let gone = contact(&p, "janet@acme.com").expect("kept");
    assert_eq!(prop(&gone, "fb_deleted"), Some("true"));
    assert_eq!(objects(&p, ObjectType::Companies).len(), 1);
    assert_clean(&p).await;
}

/// `on_client_delete = "archive"`: a deleted client's contact is archived.
async fn client_delete_archives(backend: Backend) {
    let p = Pipeline::start(PipelineOptions {
        backend,
        options_toml: "on_client_delete = \"archive\"".into(),
        ..PipelineOptions::default()
    })
    .await;
    let acct = p.account().to_string();
    let c =
        p.fb.create_client(&acct, client("arch@acme.com", "Ari", None), Webhooks::Send)
            .await
            .unwrap();
    p.drain(DRAIN).await;
    let id = contact(&p, "arch@acme.com").expect("the contact").id;
    p.fb.delete_client(&acct, &c, Webhooks::Send).await.unwrap();
    p.drain(DRAIN).await;
    assert!(contact(&p, "arch@acme.com").is_none());
    assert!(
        p.hs.archived(p.portal_id(), ObjectType::Contacts)
            .iter()
            .any(|o| o.id == id),
        "archived, not deleted"
    );
    assert_clean(&p).await;
}

/// A client's organization with a domain is a company; a bill vendor on that domain is the
/// same company, marked a vendor.
async fn company_association(backend: Backend) {
    let p = start(backend).await;
    let acct = p.account().to_string();
    p.fb.create_client(
        &acct,
        client("buyer@widgets.io", "Bea", Some("Widgets Inc")),
        Webhooks::Send,
    )
    .await
    .unwrap();
    p.fb.create_bill_vendor(
        &acct,
        BillVendorSpec {
            vendor_name: Some("Widgets Supplies".into()),
            primary_contact_email: Some("ap@widgets.io".into()),
            ..BillVendorSpec::default()
        },
        Webhooks::Send,
    )
    .await
    .unwrap();
    p.drain(DRAIN).await;
    let companies = objects(&p, ObjectType::Companies);
    assert_eq!(companies.len(), 1, "one company: {companies:#?}");
    let company = &companies[0];
    assert_eq!(prop(company, "domain"), Some("widgets.io"));
    assert_eq!(prop(company, "fb_is_vendor"), Some("true"));
    let bea = contact(&p, "buyer@widgets.io").unwrap();
    assert_eq!(
        linked(&p, ObjectType::Contacts, bea.id, ObjectType::Companies),
        vec![company.id.to_string()]
    );
    assert_clean(&p).await;
}

/// An invoice of three lines: a draft is not synced; sent → an open HubSpot invoice with three
/// line items, associated to the contact and company; paid through a payment → a commerce
/// payment on the invoice, which the sandbox marks paid; another invoice deleted → voided.
async fn invoice_lifecycle(backend: Backend) {
    let p = start(backend).await;
    let acct = p.account().to_string();
    let c =
        p.fb.create_client(
            &acct,
            client("pay@acme.com", "Pat", Some("Acme Ltd")),
            Webhooks::Send,
        )
        .await
        .unwrap();
    let inv =
        p.fb.create_invoice(&acct, invoice(&c, false), Webhooks::Send)
            .await
            .unwrap();
    p.drain(DRAIN).await;
    assert!(hs_invoice(&p, &inv).is_none(), "drafts are not synced");

    p.fb.mark_invoice_sent(&acct, &inv, Webhooks::Send)
        .await
        .unwrap();
    p.drain(DRAIN).await;
    let hinv = hs_invoice(&p, &inv).expect("the invoice");
    assert_eq!(prop(&hinv, "hs_invoice_status"), Some("open"));
    assert_eq!(prop(&hinv, "hs_amount_billed"), Some("340"));
    let lines = linked(&p, ObjectType::Invoices, hinv.id, ObjectType::LineItems);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let pat = contact(&p, "pay@acme.com").unwrap();
    assert_eq!(
        linked(&p, ObjectType::Invoices, hinv.id, ObjectType::Contacts),
        vec![pat.id.to_string()]
    );
    assert_eq!(
        linked(&p, ObjectType::Invoices, hinv.id, ObjectType::Companies).len(),
        1
    );

    // Paid in full through a payment.
    let pay =
        p.fb.create_payment(
            &acct,
            PaymentSpec {
                invoiceid: inv.clone(),
                amount: "340.00".into(),
                date: None,
                kind: Some("Check".into()),
                note: None,
                transactionid: None,
            },
            Webhooks::Send,
        )
        .await
        .unwrap();
    p.drain(DRAIN).await;
    let payments = objects(&p, ObjectType::CommercePayments);
    assert_eq!(payments.len(), 1, "{payments:#?}");
    assert_eq!(
        prop(&payments[0], "fb_payment_id"),
        Some(format!("{acct}:{pay}").as_str())
    );
    assert_eq!(
        linked(
            &p,
            ObjectType::CommercePayments,
            payments[0].id,
            ObjectType::Invoices
        ),
        vec![hinv.id.to_string()]
    );
    assert_eq!(
        prop(&hs_invoice(&p, &inv).unwrap(), "hs_invoice_status"),
        Some("paid")
    );

    // Another invoice, sent then deleted in FreshBooks: voided in HubSpot, not removed.
    let other =
        p.fb.create_invoice(&acct, invoice(&c, true), Webhooks::Send)
            .await
            .unwrap();
    p.drain(DRAIN).await;
    assert_eq!(
        prop(&hs_invoice(&p, &other).unwrap(), "hs_invoice_status"),
        Some("open")
    );
    p.fb.delete_invoice(&acct, &other, Webhooks::Send)
        .await
        .unwrap();
    p.drain(DRAIN).await;
    assert_eq!(
        prop(&hs_invoice(&p, &other).unwrap(), "hs_invoice_status"),
        Some("voided")
    );
    assert_eq!(objects(&p, ObjectType::LineItems).len(), 6);
    assert_clean(&p).await;
}

/// A portal refusing invoice writes: invoices skipped (`invoices_unavailable`), contacts still
/// synced; once the portal takes them and the flag is cleared (as `backfill --only invoices`
/// does), a backfill of the invoices brings them.
async fn invoices_unavailable_then_backfill(backend: Backend) {
    let p = start(backend).await;
    let acct = p.account().to_string();
    p.hs.set_invoice_writes_unavailable(p.portal_id(), true)
        .unwrap();
    let c =
        p.fb.create_client(&acct, client("inv@acme.com", "Ivy", None), Webhooks::Send)
            .await
            .unwrap();
    let a =
        p.fb.create_invoice(&acct, invoice(&c, true), Webhooks::Send)
            .await
            .unwrap();
    let b =
        p.fb.create_invoice(&acct, invoice(&c, true), Webhooks::Send)
            .await
            .unwrap();
    p.drain(DRAIN).await;
    assert!(contact(&p, "inv@acme.com").is_some(), "contacts still sync");
    assert!(objects(&p, ObjectType::Invoices).is_empty());
    for id in [&a, &b] {
        let t = trail(&p, "invoice", id).await;
        assert!(
            t.iter().any(|e| e.outcome == Outcome::Skipped
                && e.error_message
                    .as_deref()
                    .unwrap_or_default()
                    .contains("invoices_unavailable")),
            "{t:#?}"
        );
    }
    assert!(
        portal::unavailable(p.store.as_ref(), CONNECTION)
            .await
            .unwrap()
            .invoices
    );

    // The portal takes invoices again; the flag is cleared and the invoices backfilled.
    p.hs.set_invoice_writes_unavailable(p.portal_id(), false)
        .unwrap();
    portal::set_invoices_available(p.store.as_ref(), CONNECTION, true, Utc::now())
        .await
        .unwrap();
    let queued = p
        .backfill(&[("invoice", a.clone()), ("invoice", b.clone())])
        .await;
    assert_eq!(queued.queued, 2);
    p.drain(DRAIN).await;
    for id in [&a, &b] {
        let i = hs_invoice(&p, id).expect("backfilled");
        assert_eq!(prop(&i, "hs_invoice_status"), Some("open"));
    }
    assert_eq!(objects(&p, ObjectType::LineItems).len(), 6);
    assert_clean(&p).await;
}

/// A portal without payment processing: the payment is recorded in the contact's properties
/// (audited as the fallback), nothing dead-lettered.
async fn no_payment_processing(backend: Backend) {
    let p = start(backend).await;
    let acct = p.account().to_string();
    p.hs.set_no_payment_processing(p.portal_id(), true).unwrap();
    let c =
        p.fb.create_client(&acct, client("np@acme.com", "Nia", None), Webhooks::Send)
            .await
            .unwrap();
    let inv =
        p.fb.create_invoice(&acct, invoice(&c, true), Webhooks::Send)
            .await
            .unwrap();
    p.drain(DRAIN).await;
    let pay =
        p.fb.create_payment(
            &acct,
            PaymentSpec {
                invoiceid: inv.clone(),
                amount: "100.00".into(),
                date: None,
                kind: Some("Check".into()),
                note: None,
                transactionid: None,
            },
            Webhooks::Send,
        )
        .await
        .unwrap();
    p.drain(DRAIN).await;
    assert!(objects(&p, ObjectType::CommercePayments).is_empty());
    let t = trail(&p, "payment", &pay).await;
    assert!(
        t.iter().any(|e| e.outcome == Outcome::Synced
            && e.written
                .as_ref()
                .is_some_and(|w| w.to_string().contains("fallback"))),
        "{t:#?}"
    );
    let nia = contact(&p, "np@acme.com").unwrap();
    assert_eq!(prop(&nia, "fb_outstanding_balance"), Some("240"));
    assert!(
        portal::unavailable(p.store.as_ref(), CONNECTION)
            .await
            .unwrap()
            .payments
    );
    assert_clean(&p).await;
}

/// A storm of `TEN_SECONDLY_ROLLING` 429s: the batch goes back to the queue (HubSpot's 10 s
/// window capped by the visibility policy) without dead letters, and everything syncs after.
async fn rate_limit_storm(backend: Backend) {
    let p = Pipeline::start(PipelineOptions {
        backend,
        max_receives: 10,
        ..PipelineOptions::default()
    })
    .await;
    let acct = p.account().to_string();
    let mut clients = Vec::new();
    for i in 0..12 {
        let c =
            p.fb.create_client(
                &acct,
                client(&format!("s{i}@storm{i}.com"), "S", Some("Storm Co")),
                Webhooks::Send,
            )
            .await
            .unwrap();
        p.fb.create_invoice(&acct, invoice(&c, true), Webhooks::Send)
            .await
            .unwrap();
        clients.push(c);
    }
    p.hs.storm(Policy::TenSecondlyRolling, 6, None);
    p.drain(Duration::from_secs(180)).await;
    let stats = p.hs.stats();
    assert_eq!(
        stats.stormed.get("TEN_SECONDLY_ROLLING").copied(),
        Some(6),
        "{stats:#?}"
    );
    assert_eq!(objects(&p, ObjectType::Contacts).len(), 12);
    assert_eq!(objects(&p, ObjectType::Invoices).len(), 12);
    assert_eq!(objects(&p, ObjectType::LineItems).len(), 36);
    assert_clean(&p).await;
}

/// The portal's DAILY limit spent: the batch is held (hidden until the portal's midnight,
/// audited `held`), nothing dead-lettered and no receive spent on calls bound to fail; past
/// midnight the held messages come back and everything syncs.
///
/// The portal's zone is UTC and the pipeline clock is moved to a few seconds before its
/// midnight, so the hold is seconds long: on the embedded queue the clock is then moved past
/// midnight; on moto, whose visibility timeouts are real seconds, the drain waits them out.
async fn daily_limit_hold(backend: Backend) {
    let p = Pipeline::start(PipelineOptions {
        backend,
        time_zone: Some("UTC".into()),
        ..PipelineOptions::default()
    })
    .await;
    let acct = p.account().to_string();
    let mut ids = Vec::new();
    for i in 0..15 {
        let c =
            p.fb.create_client(
                &acct,
                client(&format!("d{i}@daily.com"), "D", None),
                Webhooks::Send,
            )
            .await
            .unwrap();
        ids.push(c);
    }
    let waiting = p.depth().await.visible;
    assert_eq!(waiting, 15);
    // A few seconds before the portal's midnight, with the day's quota spent.
    let now = p.clock.now();
    let midnight = (now.date_naive() + chrono::Days::new(1))
        .and_time(NaiveTime::MIN)
        .and_utc();
    p.clock
        .advance(midnight - now - chrono::Duration::seconds(6));
    let used = p.hs.daily_usage(p.portal_id());
    p.hs.set_daily_limit(p.portal_id(), used).unwrap();

    // One batch: every message held, none failed, none deleted.
    let report = p.run_batch().await;
    assert_eq!(report.messages.len(), 15, "one batch of all: {report:?}");
    assert!(
        report
            .messages
            .iter()
            .all(|m| m.disposition == Disposition::Retry),
        "{report:?}"
    );
    assert_eq!(
        p.hs.stats().throttled.get("DAILY").copied(),
        Some(1),
        "one refused call; the rest held without a request"
    );
    let depth = p.depth().await;
    assert_eq!(
        (depth.visible, depth.in_flight),
        (0, 15),
        "hidden: {depth:?}"
    );
    let t = trail(&p, "client", &ids[0]).await;
    let held: Vec<_> = t
        .iter()
        .filter(|e| e.error_class.as_deref() == Some("held"))
        .collect();
    assert!(!held.is_empty(), "the hold is audited: {t:#?}");
    // Another batch now finds nothing to receive: held messages spend no receives.
    assert!(p.run_batch().await.messages.is_empty());

    if backend == Backend::Embedded {
        // The embedded queue's visibility runs on the pipeline clock.
        p.clock.advance(chrono::Duration::seconds(10));
    }
    p.drain(DRAIN).await;
    assert_eq!(objects(&p, ObjectType::Contacts).len(), 15);
    assert_clean(&p).await;
}

/// The same webhooks delivered three times, and a batch the queue hands out again (a worker
/// crash after the writes) → one contact, one invoice, three line items, one payment.
async fn duplicates(backend: Backend) {
    let p = start(backend).await;
    let acct = p.account().to_string();
    let c =
        p.fb.create_client(
            &acct,
            client("dup@acme.com", "Dee", Some("Acme Ltd")),
            Webhooks::Send,
        )
        .await
        .unwrap();
    let inv =
        p.fb.create_invoice(&acct, invoice(&c, true), Webhooks::Send)
            .await
            .unwrap();
    p.fb.create_payment(
        &acct,
        PaymentSpec {
            invoiceid: inv.clone(),
            amount: "40.00".into(),
            date: None,
            kind: Some("Check".into()),
            note: None,
            transactionid: None,
        },
        Webhooks::Send,
    )
    .await
    .unwrap();
    // FreshBooks retries: every delivery arrives twice more.
    let http = reqwest::Client::new();
    for d in p.fb.deliveries().iter().filter(|d| d.kind == "event") {
        for _ in 0..2 {
            let status = http
                .post(&d.uri)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("X-FreshBooks-Hmac-SHA256", d.signature.clone().unwrap())
                .body(d.body.clone())
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200);
        }
    }
    // The queue redelivers: a batch handled but never deleted comes back.
    let first = p
        .queue
        .receive(QUEUE, 10, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(!first.is_empty());
    let report = p.harness.process_batch(first, None).await;
    assert!(
        report
            .messages
            .iter()
            .all(|m| m.disposition == Disposition::Done),
        "{report:?}"
    );
    if backend == Backend::Embedded {
        p.clock.advance(chrono::Duration::seconds(2));
    }
    p.drain(DRAIN).await;
    assert_eq!(objects(&p, ObjectType::Contacts).len(), 1);
    assert_eq!(objects(&p, ObjectType::Companies).len(), 1);
    assert_eq!(objects(&p, ObjectType::Invoices).len(), 1);
    assert_eq!(objects(&p, ObjectType::LineItems).len(), 3);
    assert_eq!(objects(&p, ObjectType::CommercePayments).len(), 1);
    let t = trail(&p, "client", &c).await;
    assert!(
        t.iter()
            .any(|e| matches!(e.outcome, Outcome::Duplicate | Outcome::Unchanged)),
        "{t:#?}"
    );
    assert_clean(&p).await;
}

/// Webhooks suppressed: the fallback poll finds the changes; a second poll enqueues nothing.
async fn fallback_poll(backend: Backend) {
    let p = start(backend).await;
    let acct = p.account().to_string();
    let c =
        p.fb.create_client(
            &acct,
            client("quiet@acme.com", "Quinn", None),
            Webhooks::Suppress,
        )
        .await
        .unwrap();
    p.fb.create_invoice(&acct, invoice(&c, true), Webhooks::Suppress)
        .await
        .unwrap();
    p.drain(DRAIN).await;
    assert!(contact(&p, "quiet@acme.com").is_none());
    p.poller.run_job(Job::FreshbooksPoll).await.unwrap();
    p.drain(DRAIN).await;
    assert_eq!(
        prop(&contact(&p, "quiet@acme.com").unwrap(), "firstname"),
        Some("Quinn")
    );
    assert_eq!(objects(&p, ObjectType::Invoices).len(), 1);
    assert_eq!(objects(&p, ObjectType::LineItems).len(), 3);
    p.poller.run_job(Job::FreshbooksPoll).await.unwrap();
    assert_eq!(p.depth().await.visible, 0, "nothing re-enqueued");
    assert_clean(&p).await;
}

mlc_tests::on_both_backends!(
    client_lifecycle,
    client_delete_archives,
    company_association,
    invoice_lifecycle,
    invoices_unavailable_then_backfill,
    no_payment_processing,
    rate_limit_storm,
    daily_limit_hold,
    duplicates,
    fallback_poll,
);
