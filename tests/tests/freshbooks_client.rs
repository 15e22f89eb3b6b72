//! The FreshBooks client and the token manager against the FreshBooks sandbox: reads, paging,
//! not-found and errors with HTTP 200, the 401 → refresh → retry path, single-flight refresh
//! across ten instances, a refused refresh token, and callbacks from registration to a signed
//! delivery.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the test failing, with the value

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use mlc::ports::Clock;
use mlc::tokens::{TokenConfig, TokenError, TokenManager};
use mlc::vendors::form::Form;
use mlc::vendors::freshbooks::FreshbooksApi;
use mlc::vendors::freshbooks::FreshbooksError;
use mlc::vendors::freshbooks::client::FreshbooksClient;
use mlc::vendors::freshbooks::models::{Entity, eastern_date};
use mlc::vendors::freshbooks::oauth::FreshbooksOauth;
use mlc::vendors::freshbooks::webhook::{SIGNATURE_HEADER, verify};
use mlc_tests::sandbox::freshbooks::*;
use mlc_tests::token_rig::TokenRig;
use secrecy::SecretString;
use tokio::sync::mpsc;

const CREDENTIALS: &str = "fb-main";

struct Fixture {
    sandbox: FreshbooksSandbox,
    account: SandboxAccount,
    rig: TokenRig,
}

impl Fixture {
    async fn new() -> Self {
        let rig = TokenRig::new("2026-03-02T15:00:00Z".parse().unwrap());
        let sandbox = FreshbooksSandbox::start(FreshbooksSandboxOptions {
            clock: rig.clock.clone(),
            ..FreshbooksSandboxOptions::default()
        })
        .await;
        let account = sandbox.setup_account("owner@example.com", "Acme Ltd");
        rig.store_credentials(CREDENTIALS, &sandbox.credentials_json(&account.tokens))
            .await;
        Self {
            sandbox,
            account,
            rig,
        }
    }

    /// One "Lambda instance", with the default margin.
    fn manager(&self) -> Arc<TokenManager> {
        let oauth = FreshbooksOauth::new(&self.sandbox.base_url()).unwrap();
        self.rig
            .manager(Arc::new(oauth), TokenConfig::default().margin)
    }

    fn client(&self) -> FreshbooksClient {
        self.client_with(self.manager())
    }

    fn client_with(&self, manager: Arc<TokenManager>) -> FreshbooksClient {
        FreshbooksClient::new(&self.sandbox.base_url(), manager, CREDENTIALS).unwrap()
    }

    fn acct(&self) -> &str {
        &self.account.account_id
    }

    async fn stored(&self) -> serde_json::Value {
        self.rig.stored(CREDENTIALS).await
    }

    /// Moves both clocks (the sandbox's and the manager's).
    fn advance(&self, by: chrono::Duration) {
        self.rig.clock.advance(by);
    }

    async fn client_record(&self, email: &str) -> String {
        self.sandbox
            .create_client(
                self.acct(),
                ClientSpec {
                    email: Some(email.into()),
                    fname: Some("Ada".into()),
                    lname: Some("Lovelace".into()),
                    ..ClientSpec::default()
                },
                Webhooks::Send,
            )
            .await
            .unwrap()
    }

    async fn invoice_record(&self, client: &str, sent: bool) -> String {
        self.sandbox
            .create_invoice(
                self.acct(),
                InvoiceSpec {
                    customerid: client.into(),
                    sent,
                    lines: vec![
                        LineSpec {
                            name: "Consulting".into(),
                            description: Some("March".into()),
                            qty: "2".into(),
                            unit_cost: "611.00".into(),
                        },
                        LineSpec {
                            name: "Travel".into(),
                            description: None,
                            qty: "1.5".into(),
                            unit_cost: "10.00".into(),
                        },
                    ],
                    ..InvoiceSpec::default()
                },
                Webhooks::Send,
            )
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn identity_names_the_account() {
    let f = Fixture::new().await;
    let me = f.client().identity().await.unwrap();
    assert_eq!(me.identity_id, f.account.identity_id);
    assert_eq!(me.email.as_deref(), Some("owner@example.com"));
    assert_eq!(me.businesses.len(), 1);
    assert_eq!(me.businesses[0].account_id, f.account.account_id);
    assert_eq!(me.businesses[0].business_id, f.account.business_id);
}

#[tokio::test]
async fn reads_clients_invoices_with_lines_and_payments() {
    let f = Fixture::new().await;
    let client = f.client();
    let cid = f.client_record("ada@example.com").await;
    let iid = f.invoice_record(&cid, true).await;

    let c = client.client(f.acct(), &cid).await.unwrap().unwrap();
    assert_eq!(c.email.as_deref(), Some("ada@example.com"));
    assert_eq!(
        c.updated.as_deref(),
        Some("2026-03-02 10:00:00"),
        "US/Eastern"
    );

    let inv = client.invoice(f.acct(), &iid).await.unwrap().unwrap();
    assert_eq!(inv.customerid, cid);
    assert_eq!(inv.lines.len(), 2);
    assert_eq!(inv.amount.amount.to_string(), "1237.00");
    assert_eq!(inv.lines[1].qty.to_string(), "1.5");
    assert_eq!(inv.status, 2);

    let pid = f
        .sandbox
        .create_payment(
            f.acct(),
            PaymentSpec {
                invoiceid: iid.clone(),
                amount: "237.00".into(),
                ..PaymentSpec::default()
            },
            Webhooks::Send,
        )
        .await
        .unwrap();
    let p = client.payment(f.acct(), &pid).await.unwrap().unwrap();
    assert_eq!(
        (p.invoiceid.as_str(), p.amount.amount.to_string()),
        (iid.as_str(), "237.00".into())
    );
    let inv = client.invoice(f.acct(), &iid).await.unwrap().unwrap();
    assert_eq!(inv.payment_status.as_deref(), Some("partial"));
    assert_eq!(inv.outstanding.amount.to_string(), "1000.00");

    f.sandbox
        .mark_invoice_paid(f.acct(), &iid, Webhooks::Send)
        .await
        .unwrap();
    let inv = client.invoice(f.acct(), &iid).await.unwrap().unwrap();
    assert_eq!((inv.status, inv.v3_status.as_deref()), (4, Some("paid")));
    assert!(inv.date_paid.is_some());
}

#[tokio::test]
async fn not_found_is_none_with_404_or_200() {
    let f = Fixture::new().await;
    let client = f.client();
    assert!(client.client(f.acct(), "999").await.unwrap().is_none());
    assert!(client.invoice(f.acct(), "999").await.unwrap().is_none());
    f.sandbox.set_errors_with_200(true);
    assert!(client.payment(f.acct(), "999").await.unwrap().is_none());
    assert!(client.client(f.acct(), "999").await.unwrap().is_none());
}

/// FreshBooks answers errors in the SDK fixtures' shapes or in the newer google-rpc one, with
/// the proper status or (a weakly sourced quirk) HTTP 200: the connector must read all of them
/// alike (docs/vendors/freshbooks.md §0.9, §3.1).
#[tokio::test]
async fn every_error_shape_reads_the_same() {
    let f = Fixture::new().await;
    let client = f.client();
    let (uri, _rx) = receiver().await;
    for (shape, with_200) in [
        (ErrorShape::Legacy, false),
        (ErrorShape::Legacy, true),
        (ErrorShape::GoogleRpc, false),
        (ErrorShape::GoogleRpc, true),
    ] {
        f.sandbox.set_error_shape(shape);
        f.sandbox.set_errors_with_200(with_200);
        let case = format!("{shape:?}, errors with 200: {with_200}");
        assert!(
            client.client(f.acct(), "999").await.unwrap().is_none(),
            "{case}"
        );
        assert!(
            client.invoice(f.acct(), "999").await.unwrap().is_none(),
            "{case}"
        );
        assert!(
            client.payment(f.acct(), "999").await.unwrap().is_none(),
            "{case}"
        );
        // Events errors keep their status: the quirk is the accounting API's.
        let err = client
            .register_callback(f.acct(), "no.such_event", &uri)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, FreshbooksError::Api { status: 422, message, .. } if message.contains("event")),
            "{case}: {err:?}"
        );
        assert!(!err.is_transient(), "{case}");
        // Deleting a callback that is gone counts as done in every shape.
        client.delete_callback(f.acct(), "999").await.unwrap();
    }
}

#[tokio::test]
async fn an_error_with_http_200_is_an_error() {
    let f = Fixture::new().await;
    let cid = f.client_record("ada@example.com").await;
    f.sandbox
        .inject(Fault::error_with_200(7012, "Invalid value for field.").times(1));
    let err = f.client().client(f.acct(), &cid).await.unwrap_err();
    assert!(
        matches!(
            err,
            FreshbooksError::Api {
                status: 200,
                errno: Some(7012),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn transient_faults_surface_as_transient_errors_without_retries() {
    let f = Fixture::new().await;
    let cid = f.client_record("ada@example.com").await;
    let client = f.client();
    f.sandbox.inject(Fault::throttle(7).times(1));
    let err = client.client(f.acct(), &cid).await.unwrap_err();
    assert!(matches!(err, FreshbooksError::Api { status: 429, .. }) && err.is_transient());
    f.sandbox.inject(Fault::status(503).times(1));
    assert!(
        client
            .client(f.acct(), &cid)
            .await
            .unwrap_err()
            .is_transient()
    );
    f.sandbox.inject(Fault::drop_connection().times(1));
    let err = client.client(f.acct(), &cid).await.unwrap_err();
    assert!(matches!(err, FreshbooksError::Transport(_)), "{err:?}");
    // One request each, no client-side retries; then it works again.
    assert_eq!(f.sandbox.request_count("GET clients"), 3);
    assert!(client.client(f.acct(), &cid).await.unwrap().is_some());
}

#[tokio::test]
async fn listings_follow_every_page() {
    let f = Fixture::new().await;
    let mut ids = Vec::new();
    for i in 0..230 {
        ids.push(f.client_record(&format!("c{i}@example.com")).await);
    }
    let client = f.client();
    let today = eastern_date(f.sandbox.now());
    let changed = client
        .changed_since(f.acct(), Entity::Client, today)
        .await
        .unwrap();
    assert_eq!(changed.len(), 230);
    assert_eq!(
        changed.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        ids
    );
    // Three pages of live records plus one (empty) page of deleted ones.
    assert_eq!(f.sandbox.request_count("GET clients"), 4);

    let owner = &ids[0];
    for _ in 0..120 {
        f.invoice_record(owner, true).await;
    }
    f.invoice_record(&ids[1], true).await;
    let invoices = client.invoices_for_client(f.acct(), owner).await.unwrap();
    assert_eq!(invoices.len(), 120);
    assert!(
        invoices
            .iter()
            .all(|i| i.customerid == *owner && i.lines.len() == 2)
    );
}

#[tokio::test]
async fn changed_since_includes_deletions_and_honours_the_day() {
    let f = Fixture::new().await;
    let a = f.client_record("a@example.com").await;
    let b = f.client_record("b@example.com").await;
    let iid = f.invoice_record(&a, true).await;
    f.advance(chrono::Duration::days(2));
    let today = eastern_date(f.sandbox.now());
    f.sandbox
        .delete_client(f.acct(), &b, Webhooks::Suppress)
        .await
        .unwrap();
    f.sandbox
        .delete_invoice(f.acct(), &iid, Webhooks::Suppress)
        .await
        .unwrap();
    let client = f.client();

    let clients = client
        .changed_since(f.acct(), Entity::Client, today)
        .await
        .unwrap();
    assert_eq!(clients.len(), 1, "{clients:?}");
    assert_eq!(
        (clients[0].id.as_str(), clients[0].deleted),
        (b.as_str(), true)
    );
    let earlier = today - chrono::Duration::days(3);
    let all = client
        .changed_since(f.acct(), Entity::Client, earlier)
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(|c| c.id == a && !c.deleted));
    let invoices = client
        .changed_since(f.acct(), Entity::Invoice, today)
        .await
        .unwrap();
    assert_eq!((invoices.len(), invoices[0].deleted), (1, true));
    // A deleted invoice is still readable by id, marked deleted; the client's list skips it.
    assert!(
        client
            .invoice(f.acct(), &iid)
            .await
            .unwrap()
            .unwrap()
            .is_deleted()
    );
    assert!(
        client
            .invoices_for_client(f.acct(), &a)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Bill vendors (docs/vendors/freshbooks.md §3.7): read by id with every field the model
/// names, still readable once deleted, `None` when missing; listed by `changed_since` like the
/// other entities, deletions included.
#[tokio::test]
async fn bill_vendors_read_and_list() {
    let f = Fixture::new().await;
    let client = f.client();
    let spec = BillVendorSpec {
        vendor_name: Some("Paper Mill Co".into()),
        primary_contact_first_name: Some("Grace".into()),
        primary_contact_last_name: Some("Hopper".into()),
        primary_contact_email: Some("grace@papermill.example".into()),
        phone: Some("+1 416 555 0100".into()),
        website: Some("https://papermill.example".into()),
        street: Some("1 Mill Rd".into()),
        street2: None,
        city: Some("Toronto".into()),
        province: Some("Ontario".into()),
        postal_code: Some("M5H 3M9".into()),
        country: Some("Canada".into()),
        currency_code: Some("CAD".into()),
    };
    let id = f
        .sandbox
        .create_bill_vendor(f.acct(), spec, Webhooks::Send)
        .await
        .unwrap();
    let other = f
        .sandbox
        .create_bill_vendor(f.acct(), BillVendorSpec::default(), Webhooks::Send)
        .await
        .unwrap();

    let vendor = client.bill_vendor(f.acct(), &id).await.unwrap().unwrap();
    assert!(!vendor.is_deleted());
    // The model's fields are the crate's; its serialised form shows what was read.
    assert_eq!(
        serde_json::to_value(&vendor).unwrap(),
        serde_json::json!({
            "id": id, "vendor_name": "Paper Mill Co", "primary_contact_first_name": "Grace",
            "primary_contact_last_name": "Hopper",
            "primary_contact_email": "grace@papermill.example", "phone": "+1 416 555 0100",
            "website": "https://papermill.example", "street": "1 Mill Rd",
            "street2": null, "city": "Toronto", "province": "Ontario",
            "postal_code": "M5H 3M9", "country": "Canada", "currency_code": "CAD",
            "vis_state": 0,
        }),
        "blank fields read as absent"
    );
    assert!(client.bill_vendor(f.acct(), "999").await.unwrap().is_none());

    f.advance(chrono::Duration::days(2));
    let today = eastern_date(f.sandbox.now());
    f.sandbox
        .delete_bill_vendor(f.acct(), &id, Webhooks::Send)
        .await
        .unwrap();
    let deleted = client.bill_vendor(f.acct(), &id).await.unwrap().unwrap();
    assert!(deleted.is_deleted());
    assert_eq!(serde_json::to_value(&deleted).unwrap()["vis_state"], 1);

    let reads = f.sandbox.request_count("GET bill_vendors");
    let changed = client
        .changed_since(f.acct(), Entity::BillVendor, today)
        .await
        .unwrap();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(
        (changed[0].id.as_str(), changed[0].deleted),
        (id.as_str(), true)
    );
    assert!(changed[0].updated.is_some());
    let all = client
        .changed_since(
            f.acct(),
            Entity::BillVendor,
            today - chrono::Duration::days(3),
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().any(|c| c.id == other && !c.deleted));
    // Each listing: one page of live records and one of deleted ones.
    assert_eq!(f.sandbox.request_count("GET bill_vendors") - reads, 4);
}

#[tokio::test]
async fn a_401_refreshes_once_and_retries_once() {
    let f = Fixture::new().await;
    let cid = f.client_record("ada@example.com").await;
    let client = f.client();
    assert!(client.client(f.acct(), &cid).await.unwrap().is_some());
    let before = f.stored().await;
    // The token dies early (revoked server-side): the cached one is refused.
    f.sandbox.expire_access_tokens();
    assert!(client.client(f.acct(), &cid).await.unwrap().is_some());
    assert_eq!(f.sandbox.refresh_calls(), 1);
    assert_eq!(f.sandbox.request_count("GET clients"), 3);
    let after = f.stored().await;
    assert_ne!(after["refresh_token"], before["refresh_token"]);
    assert_eq!(
        f.sandbox.stats().valid_refresh_tokens,
        vec![after["refresh_token"].as_str().unwrap().to_string()],
        "the rotated refresh token is the one stored"
    );
    assert_eq!(after["client_secret"], before["client_secret"]);
}

#[tokio::test]
async fn ten_instances_needing_a_refresh_make_exactly_one_refresh_call() {
    let f = Fixture::new().await;
    let cid = f.client_record("ada@example.com").await;
    // 11 h 45 min in: inside the 30-minute margin of the 12-hour token.
    f.advance(chrono::Duration::minutes(11 * 60 + 45));
    let clients: Vec<_> = (0..10).map(|_| Arc::new(f.client())).collect();
    let tasks: Vec<_> = clients
        .iter()
        .map(|c| {
            let (c, acct, cid) = (c.clone(), f.acct().to_string(), cid.clone());
            tokio::spawn(async move { c.client(&acct, &cid).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().unwrap().is_some());
    }
    assert_eq!(f.sandbox.refresh_calls(), 1);
    let stored = f.stored().await;
    let stats = f.sandbox.stats();
    assert_eq!(
        stats.valid_refresh_tokens,
        vec![stored["refresh_token"].as_str().unwrap().to_string()]
    );
    assert_eq!(
        stats.valid_access_tokens,
        vec![stored["access_token"].as_str().unwrap().to_string()]
    );
}

#[tokio::test]
async fn ten_instances_meeting_an_expired_token_mid_run_refresh_once() {
    let f = Fixture::new().await;
    let cid = f.client_record("ada@example.com").await;
    let clients: Vec<_> = (0..10).map(|_| Arc::new(f.client())).collect();
    for c in &clients {
        assert!(c.client(f.acct(), &cid).await.unwrap().is_some());
    }
    // The sandbox's token expires early (its clock runs ahead): every cached token gets a 401.
    f.sandbox.advance_clock(chrono::Duration::hours(13));
    let tasks: Vec<_> = clients
        .iter()
        .map(|c| {
            let (c, acct, cid) = (c.clone(), f.acct().to_string(), cid.clone());
            tokio::spawn(async move { c.client(&acct, &cid).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().unwrap().is_some());
    }
    assert_eq!(f.sandbox.refresh_calls(), 1);
}

#[tokio::test]
async fn a_refused_refresh_token_is_a_permanent_broken_connection() {
    let f = Fixture::new().await;
    let cid = f.client_record("ada@example.com").await;
    // Someone else spent the stored refresh token (e.g. a second deployment).
    let oauth = FreshbooksOauth::new(&f.sandbox.base_url()).unwrap();
    let creds = mlc::vendors::freshbooks::credentials::Credentials::from_json(
        &f.sandbox.credentials_json(&f.account.tokens),
    )
    .unwrap();
    oauth
        .refresh_credentials(&creds, f.rig.clock.now())
        .await
        .unwrap();
    f.sandbox.expire_access_tokens();

    let err = f.client().client(f.acct(), &cid).await.unwrap_err();
    assert!(
        matches!(err, FreshbooksError::Token(TokenError::Broken { .. })),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert!(err.to_string().contains("ml-connector connect"), "{err}");
    assert_eq!(f.sandbox.refresh_calls(), 2);
}

#[tokio::test]
async fn an_authorization_code_is_exchanged_once() {
    let f = Fixture::new().await;
    let code = SecretString::from(f.sandbox.mint_code(f.account.identity_id).unwrap());
    let oauth = FreshbooksOauth::new(&f.sandbox.base_url()).unwrap();
    let o = FreshbooksSandboxOptions::default();
    let secret = SecretString::from(o.client_secret.clone());
    let now = f.rig.clock.now();
    let pair = oauth
        .exchange_code(&o.client_id, &secret, &o.redirect_uri, &code, now)
        .await
        .unwrap();
    assert_eq!(pair.expires_at, Some(now + chrono::Duration::hours(12)));
    let again = oauth
        .exchange_code(&o.client_id, &secret, &o.redirect_uri, &code, now)
        .await
        .unwrap_err();
    assert!(
        matches!(again, mlc::tokens::RefreshError::Refused(_)),
        "{again:?}"
    );
}

/// A webhook receiver: every POST's signature header and body, in order.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(Option<String>, Bytes)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    async fn hook(
        State(tx): State<mpsc::UnboundedSender<(Option<String>, Bytes)>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> &'static str {
        let signature = headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let _ = tx.send((signature, body));
        "ok"
    }
    let app = Router::new().route("/hook", post(hook)).with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), rx)
}

async fn next(
    rx: &mut mpsc::UnboundedReceiver<(Option<String>, Bytes)>,
) -> (Option<String>, Bytes) {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a POST arrives")
        .expect("the receiver is running")
}

#[tokio::test]
async fn callbacks_from_registration_to_a_signed_delivery() {
    let f = Fixture::new().await;
    let client = f.client();
    let (uri, mut rx) = receiver().await;

    let cb = client
        .register_callback(f.acct(), "invoice", &uri)
        .await
        .unwrap();
    assert!(!cb.verified);
    assert_eq!(
        (cb.event.as_str(), cb.uri.as_str()),
        ("invoice", uri.as_str())
    );

    let (signature, body) = next(&mut rx).await;
    assert!(signature.is_none(), "the handshake is unsigned");
    let form = Form::parse(&body).unwrap();
    assert_eq!(form.get("object_id"), Some(cb.callbackid.as_str()));
    let verifier = SecretString::from(form.get("verifier").unwrap().to_string());

    assert!(
        !client
            .verify_callback(f.acct(), &cb.callbackid, &SecretString::from("wrong"))
            .await
            .unwrap()
    );
    assert!(
        client
            .verify_callback(f.acct(), &cb.callbackid, &verifier)
            .await
            .unwrap()
    );
    let listed = client.list_callbacks(f.acct()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].verified);

    // A client change does not match `invoice`; an invoice change does.
    let cid = f.client_record("ada@example.com").await;
    let iid = f.invoice_record(&cid, false).await;
    let (signature, body) = next(&mut rx).await;
    let form = Form::parse(&body).unwrap();
    assert_eq!(form.get("name"), Some("invoice.create"));
    assert_eq!(form.get("object_id"), Some(iid.as_str()));
    assert_eq!(form.get("account_id"), Some(f.acct()));
    let signature = signature.expect("deliveries are signed");
    assert!(
        verify(&verifier, &form, &signature),
        "the connector accepts the sandbox's signature"
    );
    assert!(!verify(&SecretString::from("other"), &form, &signature));

    // A suppressed change never arrives; the next one does.
    f.sandbox
        .mark_invoice_sent(f.acct(), &iid, Webhooks::Suppress)
        .await
        .unwrap();
    f.sandbox
        .delete_invoice(f.acct(), &iid, Webhooks::Send)
        .await
        .unwrap();
    let (_, body) = next(&mut rx).await;
    assert_eq!(
        Form::parse(&body).unwrap().get("name"),
        Some("invoice.delete")
    );

    client
        .resend_verification(f.acct(), &cb.callbackid)
        .await
        .unwrap();
    let (_, body) = next(&mut rx).await;
    assert!(Form::parse(&body).unwrap().get("verifier").is_some());

    client
        .delete_callback(f.acct(), &cb.callbackid)
        .await
        .unwrap();
    client
        .delete_callback(f.acct(), &cb.callbackid)
        .await
        .unwrap();
    assert!(client.list_callbacks(f.acct()).await.unwrap().is_empty());
    assert_eq!(
        f.sandbox
            .deliveries()
            .iter()
            .filter(|d| d.kind == "event")
            .count(),
        2
    );
}

#[tokio::test]
async fn the_control_api_works_over_http() {
    let f = Fixture::new().await;
    let http = reqwest::Client::new();
    let base = f.sandbox.base_url();
    let v: serde_json::Value = http
        .post(format!("{base}/_sandbox/accounts/{}/clients", f.acct()))
        .json(&serde_json::json!({"email": "http@example.com"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    let c = f.client().client(f.acct(), &id).await.unwrap().unwrap();
    assert_eq!(c.email.as_deref(), Some("http@example.com"));
    let status = http
        .post(format!("{base}/_sandbox/faults"))
        .json(&serde_json::json!({"action": {"kind": "status", "status": 503}, "times": 1}))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
    assert!(
        f.client()
            .client(f.acct(), &id)
            .await
            .unwrap_err()
            .is_transient()
    );
    let state: serde_json::Value = http
        .get(format!("{base}/_sandbox/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["requests"]["GET clients"], 2);
}
