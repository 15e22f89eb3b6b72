//! FreshBooks → Mailchimp end to end, through the real pipeline pieces: FreshBooks (sandbox)
//! delivers signed webhooks to the webhook handler on a local port → queue → the Mailchimp
//! worker (harness + flow + real clients) → Mailchimp (sandbox), and the poller for the
//! fallback. Every scenario runs on the embedded adapters and on moto.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the test failing, with the value

use std::collections::BTreeSet;
use std::time::Duration;

use mlc::poller::Job;
use mlc::ports::{DeadLetterStatus, Outcome};
use mlc::vendors::freshbooks::credentials::Credentials;
use mlc::worker::Disposition;
use mlc_tests::pipeline::{Backend, Pipeline, PipelineOptions, STORE_ID};
use mlc_tests::sandbox::freshbooks::{
    ClientSpec, Fault as FbFault, InvoicePatch, InvoiceSpec, LineSpec, Webhooks,
};
use mlc_tests::sandbox::mailchimp::{DEFAULT_LIST_ID, Fault as McFault};
use secrecy::ExposeSecret;
use serde_json::Value;

const LIST: &str = DEFAULT_LIST_ID;
const DRAIN: Duration = Duration::from_secs(60);

fn client(email: &str, fname: &str, lname: &str) -> ClientSpec {
    ClientSpec {
        email: Some(email.into()),
        fname: Some(fname.into()),
        lname: Some(lname.into()),
        organization: Some(format!("{lname} & Co")),
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

fn sent_invoice(customer: &str, lines: Vec<LineSpec>) -> InvoiceSpec {
    InvoiceSpec {
        customerid: customer.into(),
        lines,
        currency_code: Some("USD".into()),
        sent: true,
        ..InvoiceSpec::default()
    }
}

fn merge(p: &Pipeline, email: &str, field: &str) -> Value {
    p.mc.member(LIST, email)
        .unwrap_or_else(|| panic!("member {email} exists"))
        .merge_fields
        .get(field)
        .cloned()
        .unwrap_or(Value::Null)
}

fn status(p: &Pipeline, email: &str) -> String {
    p.mc.member(LIST, email)
        .unwrap_or_else(|| panic!("member {email} exists"))
        .status
}

fn order_status(p: &Pipeline, invoice: &str) -> Option<String> {
    p.mc.order(STORE_ID, invoice)
        .and_then(|o| o.financial_status().map(str::to_string))
}

/// Every request the product sent to Mailchimp was valid against Mailchimp's OpenAPI spec.
fn assert_spec_clean(p: &Pipeline) {
    let violations = p.mc.violations();
    assert!(violations.is_empty(), "spec violations: {violations:#?}");
}

async fn start(backend: Backend) -> Pipeline {
    Pipeline::start(PipelineOptions {
        backend,
        ..PipelineOptions::default()
    })
    .await
}

// ---------------------------------------------------------------------------------------------

/// Client create / update / email change / delete; invoice create → paid → deleted.
async fn lifecycle(backend: Backend) {
    let p = start(backend).await;
    let acct = p.account().to_string();

    let c =
        p.fb.create_client(
            &acct,
            client("Jane@Example.com", "Jane", "Doe"),
            Webhooks::Send,
        )
        .await
        .unwrap();
    p.drain(DRAIN).await;
    assert_eq!(status(&p, "jane@example.com"), "transactional");
    assert_eq!(merge(&p, "jane@example.com", "FNAME"), "Jane");
    assert_eq!(merge(&p, "jane@example.com", "COMPANY"), "Doe & Co");
    assert_eq!(merge(&p, "jane@example.com", "FB_STATUS"), "paid_up");
    let store = p.mc.store(STORE_ID).expect("the store was created");
    assert_eq!(store.list_id(), LIST);
    assert_eq!(store.customers.len(), 1);

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
    assert_eq!(merge(&p, "jane@example.com", "FNAME"), "Janet");

    // An invoice, sent: a pending order with its lines; the member shows the balance.
    let inv =
        p.fb.create_invoice(
            &acct,
            sent_invoice(
                &c,
                vec![
                    line("Consulting", "2", "150.00"),
                    line("Hosting", "1", "20.00"),
                ],
            ),
            Webhooks::Send,
        )
        .await
        .unwrap();
    p.drain(DRAIN).await;
    let order = p.mc.order(STORE_ID, &inv).expect("the order exists");
    assert_eq!(order.financial_status(), Some("pending"));
    assert_eq!(order.line_ids().len(), 2);
    assert_eq!(order.order.get("order_total"), Some(&Value::from(320.0)));
    assert_eq!(merge(&p, "jane@example.com", "FB_STATUS"), "pending");
    assert_eq!(merge(&p, "jane@example.com", "FB_BALANCE"), 320.0);

    // A line removed: Mailchimp's PATCH cannot drop it, so the worker deletes it.
    p.fb.update_invoice(
        &acct,
        &inv,
        InvoicePatch {
            lines: Some(vec![line("Consulting", "2", "150.00")]),
            ..InvoicePatch::default()
        },
        Webhooks::Send,
    )
    .await
    .unwrap();
    p.drain(DRAIN).await;
    let order = p.mc.order(STORE_ID, &inv).unwrap();
    assert_eq!(order.line_ids().len(), 1, "{order:?}");
    assert_eq!(order.order.get("order_total"), Some(&Value::from(300.0)));

    // Paid.
    p.fb.mark_invoice_paid(&acct, &inv, Webhooks::Send)
        .await
        .unwrap();
    p.drain(DRAIN).await;
    assert_eq!(order_status(&p, &inv).as_deref(), Some("paid"));
    assert_eq!(merge(&p, "jane@example.com", "FB_STATUS"), "paid_up");

    // Deleted: cancelled, not removed.
    p.fb.delete_invoice(&acct, &inv, Webhooks::Send)
        .await
        .unwrap();
    p.drain(DRAIN).await;
    assert_eq!(order_status(&p, &inv).as_deref(), Some("cancelled"));

    // Email change: the new address is upserted, the old member archived.
    p.fb.update_client(
        &acct,
        &c,
        ClientSpec {
            email: Some("janet@example.org".into()),
            ..ClientSpec::default()
        },
        Webhooks::Send,
    )
    .await
    .unwrap();
    p.drain(DRAIN).await;
    assert_eq!(status(&p, "janet@example.org"), "transactional");
    assert_eq!(status(&p, "jane@example.com"), "archived");

    // Client deleted: its member archived.
    p.fb.delete_client(&acct, &c, Webhooks::Send).await.unwrap();
    p.drain(DRAIN).await;
    assert_eq!(status(&p, "janet@example.org"), "archived");

    // A client without an email is audited as skipped, with the reason.
    let nobody =
        p.fb.create_client(
            &acct,
            ClientSpec {
                fname: Some("No".into()),
                ..ClientSpec::default()
            },
            Webhooks::Send,
        )
        .await
        .unwrap();
    p.drain(DRAIN).await;
    let key = format!("freshbooks:{acct}:client:{nobody}");
    let trail = p.store.audit_by_record(&key, 10).await.unwrap();
    assert!(
        trail.iter().any(|e| e.outcome == Outcome::Skipped
            && e.error_message
                .as_deref()
                .unwrap_or_default()
                .contains("no email")),
        "{trail:#?}"
    );
    assert_spec_clean(&p);
}

/// The same webhook delivered three times, and a message redelivered by the queue → one
/// member, one order, and no second write.
async fn duplicates(backend: Backend) {
    let p = start(backend).await;
    let acct = p.account().to_string();
    let c =
        p.fb.create_client(
            &acct,
            client("dup@example.com", "Dee", "Upe"),
            Webhooks::Send,
        )
        .await
        .unwrap();
    let inv =
        p.fb.create_invoice(
            &acct,
            sent_invoice(&c, vec![line("Widget", "3", "5.00")]),
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
    // The queue redelivers: a first batch is handled but never deleted (a worker crash
    // after the writes), so every message comes back.
    let first = p
        .queue
        .receive(mlc_tests::pipeline::QUEUE, 10, Duration::from_secs(1))
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
    tokio::time::sleep(Duration::from_millis(1100)).await;
    p.drain(DRAIN).await;

    let members = p.mc.members(LIST);
    assert_eq!(members.len(), 1, "{members:#?}");
    let store = p.mc.store(STORE_ID).unwrap();
    assert_eq!(store.orders.len(), 1);
    assert_eq!(store.orders[&inv].line_ids().len(), 1);
    // Order creates: exactly one POST ever succeeded.
    let counts = p.mc.request_counts();
    let order_posts = counts
        .iter()
        .filter(|(k, _)| k.starts_with("POST") && k.ends_with("/orders"))
        .map(|(_, n)| n)
        .sum::<u64>();
    assert_eq!(order_posts, 1, "{counts:#?}");
    let key = format!("freshbooks:{acct}:client:{c}");
    let outcomes: Vec<Outcome> = p
        .store
        .audit_by_record(&key, 50)
        .await
        .unwrap()
        .iter()
        .map(|e| e.outcome)
        .collect();
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Duplicate | Outcome::Unchanged)),
        "{outcomes:?}"
    );
    assert_spec_clean(&p);
}

/// The access token expires mid-run and ten worker instances need a refresh at once →
/// exactly one refresh call, no failed event, the rotated refresh token stored.
async fn token_refresh_single_flight(backend: Backend) {
    let p = start(backend).await;
    let acct = p.account().to_string();
    for i in 0..20 {
        p.fb.create_client(
            &acct,
            client(&format!("c{i}@example.com"), "C", &format!("N{i}")),
            Webhooks::Send,
        )
        .await
        .unwrap();
    }
    let before = stored_credentials(&p).await;
    p.fb.expire_access_tokens();
    let instances: Vec<_> = (0..10).map(|_| p.instance()).collect();
    p.drain_concurrently(&instances, DRAIN).await;

    assert_eq!(
        p.fb.refresh_calls(),
        1,
        "exactly one refresh across instances"
    );
    assert_eq!(p.mc.members(LIST).len(), 20);
    assert!(
        p.store
            .list_dead_letters(DeadLetterStatus::Open, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let after = stored_credentials(&p).await;
    assert_ne!(
        before.refresh_token.expose_secret(),
        after.refresh_token.expose_secret(),
        "the rotated refresh token is stored"
    );
    assert!(
        p.fb.stats()
            .valid_refresh_tokens
            .iter()
            .any(|t| t == after.refresh_token.expose_secret()),
        "the stored refresh token is the live one"
    );
}

async fn stored_credentials(p: &Pipeline) -> Credentials {
    let raw = p
        .secrets
        .get(&format!(
            "credentials/{}",
            mlc_tests::pipeline::FB_CREDENTIALS
        ))
        .await
        .unwrap()
        .unwrap();
    Credentials::from_json(raw.expose_secret()).unwrap()
}

/// 20 % injected 5xx (both vendors) and a 429 burst → everything synced, nothing duplicated.
async fn faults(backend: Backend) {
    let p = start(backend).await;
    let acct = p.account().to_string();
    p.mc.inject(McFault::status(503).probability(0.2));
    p.mc.inject(McFault::status(429).times(15).retry_after(1));
    p.fb.inject(FbFault::status(503).probability(0.2).on_route("clients"));
    let mut invoices = Vec::new();
    for i in 0..8 {
        let c =
            p.fb.create_client(
                &acct,
                client(&format!("f{i}@example.com"), "F", &format!("L{i}")),
                Webhooks::Send,
            )
            .await
            .unwrap();
        invoices.push(
            p.fb.create_invoice(
                &acct,
                sent_invoice(&c, vec![line("Item", "1", "10.00")]),
                Webhooks::Send,
            )
            .await
            .unwrap(),
        );
    }
    p.drain(Duration::from_secs(120)).await;
    p.mc.clear_faults();
    p.fb.clear_faults();

    assert_eq!(p.mc.members(LIST).len(), 8);
    let store = p.mc.store(STORE_ID).unwrap();
    assert_eq!(
        store.orders.keys().cloned().collect::<BTreeSet<_>>(),
        invoices.iter().cloned().collect::<BTreeSet<_>>()
    );
    for inv in &invoices {
        assert_eq!(store.orders[inv].line_ids().len(), 1, "no duplicated lines");
    }
    assert!(
        p.store
            .list_dead_letters(DeadLetterStatus::Open, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing dead-lettered"
    );
    let faulted = |status: u16| {
        p.mc.requests()
            .iter()
            .filter(|r| r.by == "fault" && r.status == status)
            .count()
    };
    assert_eq!(faulted(429), 15, "the 429 burst was served");
    assert!(faulted(503) > 0, "5xx were injected");
    assert_spec_clean(&p);
}

/// A permanent error → dead letter with the vendor's reason; after fixing the data, redrive →
/// synced and the dead letter resolved.
async fn permanent_error_then_redrive(backend: Backend) {
    let p = Pipeline::start(PipelineOptions {
        backend,
        max_receives: 2,
        ..PipelineOptions::default()
    })
    .await;
    let acct = p.account().to_string();
    p.mc.seed_member(LIST, "gone@example.com", "unsubscribed", true);
    p.fb.create_client(
        &acct,
        client("gone@example.com", "Gone", "Away"),
        Webhooks::Send,
    )
    .await
    .unwrap();
    p.drain(DRAIN).await;

    let open = p
        .store
        .list_dead_letters(DeadLetterStatus::Open, 10)
        .await
        .unwrap();
    assert_eq!(open.len(), 1, "{open:#?}");
    assert_eq!(open[0].error_class, "compliance_state");
    assert!(
        open[0].reason.contains("compliance state"),
        "the vendor's reason: {}",
        open[0].reason
    );
    assert_eq!(p.depth().await.dead, 1, "the message is in the DLQ");

    // The member's compliance review is cleared in Mailchimp; replay.
    p.mc.set_compliance(LIST, "gone@example.com", false);
    p.redrive().await;
    p.drain(DRAIN).await;
    assert_eq!(merge(&p, "gone@example.com", "FNAME"), "Gone");
    assert_eq!(
        status(&p, "gone@example.com"),
        "unsubscribed",
        "status kept"
    );
    let letter = p.store.get_dead_letter(&open[0].id).await.unwrap().unwrap();
    assert_eq!(letter.status, DeadLetterStatus::Resolved);
}

/// The fallback poll finds a change whose webhook never arrived.
async fn fallback_poll(backend: Backend) {
    let p = start(backend).await;
    let acct = p.account().to_string();
    let c =
        p.fb.create_client(
            &acct,
            client("quiet@example.com", "Quiet", "One"),
            Webhooks::Suppress,
        )
        .await
        .unwrap();
    p.fb.create_invoice(
        &acct,
        sent_invoice(&c, vec![line("Thing", "1", "9.99")]),
        Webhooks::Suppress,
    )
    .await
    .unwrap();
    p.drain(DRAIN).await;
    assert!(p.mc.member(LIST, "quiet@example.com").is_none());

    p.poller.run_job(Job::FreshbooksPoll).await.unwrap();
    p.drain(DRAIN).await;
    assert_eq!(merge(&p, "quiet@example.com", "FNAME"), "Quiet");
    assert_eq!(p.mc.store(STORE_ID).unwrap().orders.len(), 1);

    // A second poll finds nothing new to enqueue.
    let writes = p.mc.requests().len();
    p.poller.run_job(Job::FreshbooksPoll).await.unwrap();
    assert_eq!(p.depth().await.visible, 0, "nothing re-enqueued");
    p.drain(DRAIN).await;
    assert_eq!(p.mc.requests().len(), writes);
}

/// Re-processing an unchanged client makes no Mailchimp write.
async fn unchanged_costs_nothing(backend: Backend) {
    let p = start(backend).await;
    let acct = p.account().to_string();
    let c =
        p.fb.create_client(
            &acct,
            client("same@example.com", "Sam", "Same"),
            Webhooks::Send,
        )
        .await
        .unwrap();
    p.drain(DRAIN).await;
    let before = p.mc.requests().len();
    // An update that changes nothing Mailchimp holds.
    p.fb.update_client(&acct, &c, ClientSpec::default(), Webhooks::Send)
        .await
        .unwrap();
    p.drain(DRAIN).await;
    assert_eq!(p.mc.requests().len(), before, "no Mailchimp call");
}

mlc_tests::on_both_backends!(
    lifecycle,
    duplicates,
    token_refresh_single_flight,
    faults,
    permanent_error_then_redrive,
    fallback_poll,
    unchanged_costs_nothing,
);
