//! The FreshBooks → Mailchimp mapping, table by table: payment and financial status, balances,
//! member bodies, ids, order lines and fingerprints.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::json;

use super::*;
use crate::flows::mailchimp_member::fingerprint;
use crate::ids::Email;
use crate::vendors::freshbooks::models::{Money, VIS_DELETED};

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn money(s: &str, code: &str) -> Money {
    Money {
        amount: dec(s),
        code: Some(code.to_string()),
    }
}

fn client() -> Client {
    Client {
        id: "921895".into(),
        email: Some("  Jane.Doe@Example.com ".into()),
        fname: Some("Jane".into()),
        lname: Some("Doe".into()),
        organization: Some("Acme Ltd".into()),
        currency_code: Some("USD".into()),
        vis_state: 0,
        updated: Some("2026-03-01 09:00:00".into()),
        ..Client::default()
    }
}

/// A sent invoice for `amount` with `outstanding` due on `due`.
fn invoice(id: &str, created: &str, due: &str, amount: &str, outstanding: &str) -> Invoice {
    Invoice {
        id: id.into(),
        invoice_number: Some(format!("000{id}")),
        customerid: "921895".into(),
        create_date: Some(d(created)),
        due_date: Some(d(due)),
        date_paid: None,
        currency_code: Some("USD".into()),
        amount: money(amount, "USD"),
        outstanding: money(outstanding, "USD"),
        paid: money("0", "USD"),
        status: 2,
        v3_status: Some("sent".into()),
        payment_status: Some("unpaid".into()),
        display_status: Some("sent".into()),
        vis_state: 0,
        updated: None,
        lines: vec![],
    }
}

fn draft(mut i: Invoice) -> Invoice {
    i.status = 1;
    i.v3_status = Some("draft".into());
    i.display_status = Some("draft".into());
    i
}

fn deleted(mut i: Invoice) -> Invoice {
    i.vis_state = VIS_DELETED;
    i
}

fn paid(mut i: Invoice) -> Invoice {
    i.status = 4;
    i.v3_status = Some("paid".into());
    i.payment_status = Some("paid".into());
    i.outstanding.amount = Decimal::ZERO;
    i
}

fn line(id: &str, name: &str, qty: &str, unit: &str, amount: &str) -> Line {
    Line {
        lineid: id.into(),
        name: name.into(),
        description: None,
        qty: dec(qty),
        unit_cost: money(unit, "USD"),
        amount: money(amount, "USD"),
    }
}

#[test]
fn payment_status_table() {
    let today = d("2026-03-15");
    let cases: Vec<(&str, Vec<Invoice>, PaymentStatus, &str)> = vec![
        ("no invoices", vec![], PaymentStatus::PaidUp, "0"),
        (
            "all paid",
            vec![paid(invoice("1", "2026-01-01", "2026-01-31", "100", "0"))],
            PaymentStatus::PaidUp,
            "0",
        ),
        (
            "outstanding, not yet due",
            vec![invoice("1", "2026-03-01", "2026-03-31", "100", "40")],
            PaymentStatus::Pending,
            "40",
        ),
        (
            "due today is not overdue",
            vec![invoice("1", "2026-03-01", "2026-03-15", "100", "40")],
            PaymentStatus::Pending,
            "40",
        ),
        (
            "past due",
            vec![
                invoice("1", "2026-01-01", "2026-03-14", "100", "100"),
                invoice("2", "2026-03-01", "2026-03-31", "50", "50"),
            ],
            PaymentStatus::Overdue,
            "150",
        ),
        (
            "past due but settled",
            vec![invoice("1", "2026-01-01", "2026-02-01", "100", "0")],
            PaymentStatus::PaidUp,
            "0",
        ),
        (
            "drafts and deleted invoices do not count",
            vec![
                draft(invoice("1", "2026-01-01", "2026-02-01", "100", "100")),
                deleted(invoice("2", "2026-01-01", "2026-02-01", "70", "70")),
            ],
            PaymentStatus::PaidUp,
            "0",
        ),
    ];
    for (name, invoices, status, balance) in cases {
        let ctx = financial_context(&client(), &invoices, today);
        assert_eq!(ctx.status, status, "{name}");
        assert_eq!(ctx.balance, dec(balance), "{name}");
    }
}

#[test]
fn balance_is_in_the_clients_currency_and_last_invoice_is_the_latest() {
    let mut eur = invoice("9", "2026-03-10", "2026-04-10", "999", "999");
    eur.currency_code = Some("EUR".into());
    eur.amount.code = Some("EUR".into());
    let invoices = vec![
        invoice("3", "2026-02-01", "2026-03-01", "120.50", "20.25"),
        invoice("4", "2026-03-05", "2026-04-05", "80", "80"),
        eur,
        draft(invoice("5", "2026-03-12", "2026-04-12", "5000", "5000")),
    ];
    let ctx = financial_context(&client(), &invoices, d("2026-03-15"));
    assert_eq!(ctx.currency.as_deref(), Some("USD"));
    assert_eq!(ctx.balance, dec("100.25"));
    assert_eq!(ctx.status, PaymentStatus::Overdue);
    let last = ctx.last_invoice.unwrap();
    // The EUR invoice is the latest sent one; the draft is not counted.
    assert_eq!(last.total, dec("999"));
    assert_eq!(last.currency.as_deref(), Some("EUR"));
    assert_eq!(last.date, Some(d("2026-03-10")));

    // Without a client currency, the latest invoice's decides.
    let mut c = client();
    c.currency_code = None;
    let ctx = financial_context(&c, &invoices, d("2026-03-15"));
    assert_eq!(ctx.currency.as_deref(), Some("EUR"));
    assert_eq!(ctx.balance, dec("999"));

    // Same create date: the higher id is the latest.
    let same_day = vec![
        invoice("10", "2026-03-01", "2026-04-01", "1", "0"),
        invoice("9", "2026-03-01", "2026-04-01", "2", "0"),
    ];
    let ctx = financial_context(&client(), &same_day, d("2026-03-15"));
    assert_eq!(ctx.last_invoice.unwrap().total, dec("1"));
}

#[test]
fn member_upsert_carries_names_and_context() {
    let c = client();
    let email = client_email(&c).unwrap();
    assert_eq!(email.as_str(), "Jane.Doe@Example.com");
    let ctx = financial_context(
        &c,
        &[invoice(
            "1",
            "2026-03-01",
            "2026-03-31",
            "1222.00",
            "222.50",
        )],
        d("2026-03-15"),
    );
    let m = member_upsert(&c, &email, &ctx, "transactional");
    assert_eq!(
        serde_json::to_value(&m).unwrap(),
        json!({
            "email_address": "Jane.Doe@Example.com",
            "status_if_new": "transactional",
            "merge_fields": {
                "FNAME": "Jane", "LNAME": "Doe", "COMPANY": "Acme Ltd",
                "FB_STATUS": "pending", "FB_BALANCE": 222.5,
                "FB_LASTINV": 1222.0, "FB_LASTDT": "2026-03-01"
            }
        })
    );
    // No `status` key ever: it would overwrite an existing member's consent.
    assert!(serde_json::to_value(&m).unwrap().get("status").is_none());

    let mut bare = client();
    bare.fname = None;
    bare.lname = Some("  ".into());
    bare.organization = None;
    let m = member_upsert(
        &bare,
        &email,
        &financial_context(&bare, &[], d("2026-03-15")),
        "pending",
    );
    assert_eq!(
        serde_json::to_value(&m.merge_fields).unwrap(),
        json!({"FB_STATUS": "paid_up", "FB_BALANCE": 0.0, "FB_LASTINV": "", "FB_LASTDT": ""})
    );
    assert_eq!(m.status_if_new, "pending");
}

#[test]
fn emails_blank_and_case() {
    let mut c = client();
    for (raw, want) in [
        (Some(" a@b.c "), Some("a@b.c")),
        (Some("   "), None),
        (None, None),
    ] {
        c.email = raw.map(str::to_string);
        assert_eq!(client_email(&c).as_deref(), want, "{raw:?}");
    }
    let jane = Email::parse(Some("Jane@Example.com")).unwrap();
    assert!(jane.same(" jane@example.COM"));
    assert!(!jane.same("jane2@example.com"));
}

#[test]
fn status_tags_switch_exactly_one_status_on() {
    let ctx = FinancialContext {
        status: PaymentStatus::Overdue,
        currency: None,
        balance: Decimal::ZERO,
        last_invoice: None,
    };
    let tags: Vec<(String, bool)> = status_tags(&ctx)
        .into_iter()
        .map(|t| (t.name, t.status))
        .collect();
    assert_eq!(
        tags,
        [
            ("freshbooks".to_string(), true),
            ("fb-paid-up".to_string(), false),
            ("fb-pending".to_string(), false),
            ("fb-overdue".to_string(), true),
        ]
    );
}

#[test]
fn customer_ids_fit_fifty_characters() {
    assert_eq!(customer_id("6BApk", "921895"), "fb-6BApk-921895");
    let long = customer_id(&"a".repeat(40), "1234567890");
    assert!(
        long.len() <= MAX_ID_LEN && long.starts_with("fb-"),
        "{long}"
    );
    assert_eq!(long, customer_id(&"a".repeat(40), "1234567890"));
    assert_ne!(long, customer_id(&"a".repeat(40), "1234567891"));

    let cu = customer("6BApk", &client(), "Jane.Doe@Example.com");
    assert_eq!(
        serde_json::to_value(&cu).unwrap(),
        json!({"id": "fb-6BApk-921895", "email_address": "Jane.Doe@Example.com",
               "opt_in_status": false, "first_name": "Jane", "last_name": "Doe",
               "company": "Acme Ltd"})
    );

    assert_eq!(default_store_id("acme-books"), "acme-books");
    let s = default_store_id(&"x".repeat(64));
    assert!(s.len() <= MAX_ID_LEN, "{s}");
    assert_ne!(s, default_store_id(&format!("{}y", "x".repeat(63))));
}

#[test]
fn product_ids_follow_the_normalised_name() {
    assert_eq!(product_id("Consulting"), product_id("  consulting "));
    assert_eq!(product_id("Web  Design"), product_id("web design"));
    assert_ne!(product_id("Consulting"), product_id("Hosting"));
    let id = product_id("Consulting");
    assert!(id.starts_with("fb-") && id.len() == 19, "{id}");
}

#[test]
fn order_lines_table() {
    // (qty, unit cost, amount) → (quantity, price)
    let cases = [
        ("2", "611.00", "1222.00", 2, 611.0),
        ("1", "10", "10", 1, 10.0),
        ("2.5", "100", "250", 1, 250.0),
        ("0.25", "80", "20", 1, 20.0),
        ("0", "80", "0", 1, 0.0),
        ("-1", "50", "-50", 1, -50.0),
        ("3.000", "5", "15", 3, 5.0),
    ];
    for (qty, unit, amount, quantity, price) in cases {
        let l = order_line(&line("7", "Consulting", qty, unit, amount));
        assert_eq!((l.quantity, l.price), (quantity, price), "qty {qty}");
        assert_eq!(l.id, "7");
        assert_eq!(l.product_id, product_id("Consulting"));
        assert_eq!(l.product_variant_id, l.product_id);
    }
}

#[test]
fn financial_status_table() {
    let sent = invoice("1", "2026-03-01", "2026-03-31", "100", "100");
    let mut partial = sent.clone();
    partial.status = 8;
    partial.v3_status = Some("partial".into());
    partial.payment_status = Some("partial".into());
    partial.paid.amount = dec("40");
    partial.outstanding.amount = dec("60");
    let mut viewed = sent.clone();
    viewed.status = 3;
    viewed.v3_status = Some("viewed".into());
    let mut overdue = sent.clone();
    overdue.v3_status = Some("overdue".into());
    // Paid in full at 100, then edited to 160: 100 paid, 60 outstanding.
    let mut raised = partial.clone();
    raised.amount.amount = dec("160");
    raised.paid.amount = dec("100");
    let was = |status: &'static str, total: f64| {
        Some(ExistingOrder {
            financial_status: Some(status),
            order_total: total,
        })
    };
    let cases: Vec<(&str, Invoice, Option<ExistingOrder>, &str)> = vec![
        ("sent", sent.clone(), None, "pending"),
        ("viewed", viewed, None, "pending"),
        ("partial", partial.clone(), was("pending", 100.0), "pending"),
        ("overdue", overdue, None, "pending"),
        ("paid", paid(sent.clone()), None, "paid"),
        (
            "paid again after refund",
            paid(sent.clone()),
            was("refunded", 100.0),
            "paid",
        ),
        (
            "payment removed",
            sent.clone(),
            was("paid", 100.0),
            "refunded",
        ),
        (
            "partially refunded",
            partial,
            was("paid", 100.0),
            "refunded",
        ),
        (
            "paid, then total raised",
            raised,
            was("paid", 100.0),
            "pending",
        ),
        (
            "stays refunded",
            sent.clone(),
            was("refunded", 100.0),
            "refunded",
        ),
        (
            "deleted",
            deleted(sent.clone()),
            was("paid", 100.0),
            "cancelled",
        ),
        ("deleted unpaid", deleted(sent.clone()), None, "cancelled"),
        ("synced draft", draft(sent.clone()), None, "pending"),
    ];
    for (name, inv, existing, want) in cases {
        assert_eq!(financial_status(&inv, existing), want, "{name}");
    }
}

#[test]
fn invoice_becomes_an_order() {
    let mut inv = invoice("217506", "2026-03-01", "2026-03-31", "1272.00", "1272.00");
    inv.lines = vec![
        line("1", "Consulting", "2", "611.00", "1222.00"),
        line("2", "consulting ", "0.5", "100", "50"),
    ];
    let o = order("6BApk", &inv, None).unwrap();
    assert_eq!(
        serde_json::to_value(&o).unwrap(),
        json!({
            "id": "217506",
            "customer": {"id": "fb-6BApk-921895"},
            "currency_code": "USD",
            "order_total": 1272.0,
            "financial_status": "pending",
            // Midnight US/Eastern (EST, UTC−5) on the create date.
            "processed_at_foreign": "2026-03-01T05:00:00+00:00",
            "lines": [
                {"id": "1", "product_id": product_id("Consulting"),
                 "product_variant_id": product_id("Consulting"), "quantity": 2, "price": 611.0},
                {"id": "2", "product_id": product_id("Consulting"),
                 "product_variant_id": product_id("Consulting"), "quantity": 1, "price": 50.0}
            ]
        })
    );
    // Two lines with the same normalised name need one product.
    let ps = products(&inv);
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].title, "Consulting");
    assert_eq!(ps[0].variants[0].id, ps[0].id);

    // No lines: one line for the total.
    let bare = invoice("5", "2026-07-01", "2026-07-31", "99.99", "0");
    let o = order("6BApk", &bare, None).unwrap();
    assert_eq!(o.lines.len(), 1);
    assert_eq!(o.lines[0].price, 99.99);
    assert_eq!(
        o.processed_at_foreign.as_deref(),
        Some("2026-07-01T04:00:00+00:00")
    );
    assert_eq!(products(&bare)[0].id, o.lines[0].product_id);

    let mut no_currency = bare.clone();
    no_currency.currency_code = None;
    no_currency.amount.code = None;
    assert_eq!(
        order("6BApk", &no_currency, None).unwrap_err(),
        MappingError::NoCurrency("5".into())
    );
}

#[test]
fn fingerprints_are_stable_and_sensitive() {
    let a = json!({"b": 1, "a": [1, 2]});
    let b = json!({"a": [1, 2], "b": 1});
    assert_eq!(fingerprint(&a), fingerprint(&b));
    assert_ne!(fingerprint(&a), fingerprint(&json!({"a": [2, 1], "b": 1})));
    assert_eq!(fingerprint(&a).len(), 64);
}
