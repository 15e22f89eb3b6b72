//! Onboarding QuickBooks Online ↔ Mailchimp as a user runs it: `apply` sets up the Mailchimp
//! list webhook (printed with its secret URL, or registered through the Mailchimp sandbox's
//! API, once), and `ping` checks a QuickBooks credential set against the QuickBooks sandbox.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the test failing, with the value

mod common;

use std::path::PathBuf;

use common::{Scratch, run, text, webhook_server};
use mlc::adapters::embedded::EmbeddedDb;
use mlc::ports::Queue;
use mlc_sandbox::mailchimp::{MailchimpSandbox, MailchimpSandboxOptions, WebhookEvents};
use mlc_sandbox::quickbooks::{QuickbooksSandbox, QuickbooksSandboxOptions};

const LIST: &str = "f6e5d4c3b2";
const REALM: &str = "9130357766900000";

/// The two connections of the integration; `register` sets `register_webhook` on the
/// Mailchimp → QuickBooks one.
fn connections(scratch: &Scratch, realm: &str, register: Option<bool>) -> PathBuf {
    let options = register
        .map(|r| format!("options = {{ register_webhook = {r} }}\n"))
        .unwrap_or_default();
    scratch.file(
        "connections.toml",
        &format!(
            r#"
[connection.qbo-to-mailchimp]
source = {{ vendor = "quickbooks", account = "{realm}", credentials = "qb" }}
target = {{ vendor = "mailchimp", credentials = "mc", list_id = "{LIST}" }}
options = {{ status_if_new = "subscribed", on_customer_deactivate = "archive" }}

[connection.mailchimp-to-qbo]
source = {{ vendor = "mailchimp", account = "{LIST}", credentials = "mc" }}
target = {{ vendor = "quickbooks", credentials = "qb", realm_id = "{realm}" }}
{options}"#
        ),
    )
}

/// The list webhook URL `apply` printed under `base`.
fn printed_url(stdout: &str, base: &str) -> String {
    let prefix = format!("{base}/mailchimp/{LIST}/");
    let at = stdout
        .find(&prefix)
        .unwrap_or_else(|| panic!("no {prefix}… in:\n{stdout}"));
    stdout[at..].split_whitespace().next().unwrap().to_string()
}

/// A Mailchimp `unsubscribe` delivery, form-encoded as Mailchimp sends it.
fn unsubscribe_form() -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("type", "unsubscribe")
        .append_pair("fired_at", "2026-03-02 10:00:00")
        .append_pair("data[list_id]", LIST)
        .append_pair("data[email]", "ada@example.com")
        .append_pair("data[action]", "unsub")
        .append_pair("data[reason]", "manual")
        .finish()
}

/// The scratch store with the QuickBooks queue declared, as `ml-connector dev` does.
async fn quickbooks_queue(scratch: &Scratch) -> EmbeddedDb {
    let (db, _) = scratch.open();
    db.declare_queue("quickbooks", 5, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    db
}

/// Messages waiting in the QuickBooks queue.
async fn queued(db: &EmbeddedDb) -> u64 {
    db.depth("quickbooks").await.unwrap().visible
}

#[tokio::test]
async fn apply_prints_the_list_webhook_url_the_route_accepts_and_keeps_its_secret() {
    let scratch = Scratch::new("mc-url");
    let file = connections(&scratch, REALM, None);
    let (file_arg, db) = (file.display().to_string(), scratch.db_arg());

    // Locally without a flag: `ml-connector dev`'s address.
    let out = run(&["apply", &file_arg, "--yes", "--db", &db], "").await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let secret = scratch
        .secret("webhook/mailchimp/f6e5d4c3b2")
        .await
        .expect("apply stored the list's secret");
    assert!(
        secret.len() >= 43,
        "a 32-byte secret at least: {}",
        secret.len()
    );
    let dev = "http://127.0.0.1:8787/webhooks";
    assert_eq!(
        printed_url(&stdout, dev),
        format!("{dev}/mailchimp/{LIST}/{secret}")
    );
    assert_eq!(
        stdout.matches(&secret).count(),
        1,
        "the secret appears only inside the URL: {stdout}"
    );
    for what in [
        "Audience → Settings → Webhooks",
        "subscribes, unsubscribes, profile updates, cleaned address, email changed",
        "via the API",
        "mailchimp-to-qbo",
        &format!("{dev}/quickbooks"),
        "ml-connector secrets put webhook/quickbooks/app",
    ] {
        assert!(stdout.contains(what), "{what}: {stdout}");
    }

    // Again with the webhook routes' real base: the same secret, under that base.
    let store = quickbooks_queue(&scratch).await;
    let hooks = webhook_server(&scratch, "http://127.0.0.1:9").await;
    let out = run(
        &[
            "apply",
            &file_arg,
            "--yes",
            "--webhook-base-url",
            &hooks,
            "--db",
            &db,
        ],
        "",
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("0 to add, 0 to remove, 0 to change, 2 unchanged"));
    let url = printed_url(&stdout, &hooks);
    assert_eq!(url, format!("{hooks}/mailchimp/{LIST}/{secret}"));
    assert_eq!(
        scratch
            .secret("webhook/mailchimp/f6e5d4c3b2")
            .await
            .unwrap(),
        secret
    );

    // The route takes Mailchimp's validation GET and a delivery to the printed URL, and refuses
    // another secret.
    let http = reqwest::Client::new();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    let post = |to: String| {
        http.post(to)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(unsubscribe_form())
            .send()
    };
    assert_eq!(post(url.clone()).await.unwrap().status(), 200);
    assert_eq!(queued(&store).await, 1);
    let wrong = format!("{hooks}/mailchimp/{LIST}/{}", "0".repeat(96));
    assert_eq!(post(wrong).await.unwrap().status(), 401);
    assert_eq!(queued(&store).await, 1);
}

#[tokio::test]
async fn apply_registers_the_list_webhook_through_the_api_once() {
    let mc = MailchimpSandbox::start(MailchimpSandboxOptions {
        lists: vec![LIST.to_string()],
        ..MailchimpSandboxOptions::default()
    })
    .await;
    let scratch = Scratch::new("mc-register");
    scratch
        .put_secret("credentials/mc", &mc.credentials_json())
        .await;
    let file = connections(&scratch, REALM, Some(true));
    // The product's webhook routes answer the sandbox's validation GET.
    let store = quickbooks_queue(&scratch).await;
    let hooks = webhook_server(&scratch, "http://127.0.0.1:9").await;
    let (file_arg, db, mc_base) = (file.display().to_string(), scratch.db_arg(), mc.base_url());
    let args = [
        "apply",
        file_arg.as_str(),
        "--yes",
        "--webhook-base-url",
        &hooks,
        "--mailchimp-api",
        &mc_base,
        "--db",
        &db,
    ];

    let out = run(&args, "").await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let secret = scratch
        .secret("webhook/mailchimp/f6e5d4c3b2")
        .await
        .unwrap();
    let url = format!("{hooks}/mailchimp/{LIST}/{secret}");
    assert!(stdout.contains("registered (webhook"), "{stdout}");
    assert_eq!(printed_url(&stdout, &hooks), url);
    let hooks_at_mailchimp = mc.list_webhooks(LIST);
    assert_eq!(hooks_at_mailchimp.len(), 1, "{hooks_at_mailchimp:?}");
    assert_eq!(hooks_at_mailchimp[0].url, url);
    let registered = &hooks_at_mailchimp[0];
    assert_eq!(
        registered.events,
        WebhookEvents::members(),
        "every member event"
    );
    assert!(
        registered.sources.user && registered.sources.admin && !registered.sources.api,
        "our own API writes must not come back: {registered:?}"
    );
    assert_eq!(
        mc.list_webhook_validations().len(),
        1,
        "validated with a GET first"
    );

    // Again: found by its URL and left alone.
    let out = run(&args, "").await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("already registered"), "{stdout}");
    assert_eq!(mc.list_webhooks(LIST).len(), 1);

    // A person unsubscribing in Mailchimp now reaches the QuickBooks queue.
    mc.seed_member(LIST, "ada@example.com", "subscribed", true);
    mc.unsubscribe_member(LIST, "ada@example.com", Some("manual"))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while queued(&store).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery queued: {:?}",
            mc.list_webhook_deliveries()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn registering_at_a_loopback_base_with_the_real_mailchimp_says_why_not() {
    let scratch = Scratch::new("mc-loopback");
    scratch
        .put_secret(
            "credentials/mc",
            &serde_json::json!({"api_key": format!("{}-us21", "0".repeat(32))}).to_string(),
        )
        .await;
    let file = connections(&scratch, REALM, Some(true));
    let (file_arg, db) = (file.display().to_string(), scratch.db_arg());
    // No --mailchimp-api: the real Mailchimp, which is never called (the check comes first).
    let out = run(&["apply", &file_arg, "--yes", "--db", &db], "").await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("NOT registered"), "{stdout}");
    assert!(
        stdout.contains("127.0.0.1 is a loopback address") && stdout.contains("--webhook-base-url"),
        "{stdout}"
    );
    // The way to do it by hand is still there.
    assert!(
        stdout.contains("Audience → Settings → Webhooks"),
        "{stdout}"
    );
    assert!(
        stderr.contains("webhooks registered and verified"),
        "{stderr}"
    );
    // The connections were applied all the same.
    let (store, _) = scratch.open();
    assert!(
        mlc::ports::ConnectionStore::get_connections(&store)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn ping_reads_the_quickbooks_company_name_and_says_how_to_fix_a_broken_set() {
    let qb = QuickbooksSandbox::start(QuickbooksSandboxOptions::default()).await;
    let mc = MailchimpSandbox::start(MailchimpSandboxOptions::default()).await;
    let company = qb.setup_company("Acme Books Ltd");
    let scratch = Scratch::new("qb-ping");
    scratch
        .put_secret("credentials/qb", &qb.credentials_json(&company))
        .await;
    scratch
        .put_secret("credentials/mc", &mc.credentials_json())
        .await;
    let file = connections(&scratch, &company.realm_id, None);
    let (file_arg, db, qb_base, mc_base) = (
        file.display().to_string(),
        scratch.db_arg(),
        qb.base_url(),
        mc.base_url(),
    );
    let args = [
        "ping",
        "--json",
        "--connections",
        &file_arg,
        "--quickbooks-api",
        &qb_base,
        "--mailchimp-api",
        &mc_base,
        "--db",
        &db,
    ];
    let row = |stdout: &str| -> serde_json::Value {
        let rows: serde_json::Value = serde_json::from_str(stdout).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["credentials"] == "qb")
            .unwrap()
            .clone()
    };

    let out = run(&args, "").await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let qb_row = row(&stdout);
    assert_eq!(qb_row["outcome"], "ok", "{qb_row}");
    let detail = qb_row["detail"].as_str().unwrap();
    assert!(
        detail.contains("Acme Books Ltd") && detail.contains(&company.realm_id),
        "{detail}"
    );
    assert!(detail.contains("sandbox"), "{detail}");

    // An expired access token: refreshed as the worker would, still ok.
    qb.expire_access_tokens();
    let out = run(&args, "").await;
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(
        row(&stdout)["detail"]
            .as_str()
            .unwrap()
            .contains("refreshed"),
        "{stdout}"
    );

    // Connections naming another company than the set reaches.
    let other = connections(&scratch, REALM, None);
    let other_arg = other.display().to_string();
    let mut wrong = args;
    wrong[3] = &other_arg;
    let out = run(&wrong, "").await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let detail = row(&stdout)["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains(REALM) && detail.contains("connections"),
        "{detail}"
    );

    // A set the token manager marked: reconnect, in the set's environment.
    let mut marked: serde_json::Value =
        serde_json::from_str(&scratch.secret("credentials/qb").await.unwrap()).unwrap();
    marked["needs_reconnect"] =
        serde_json::json!({"since": "2026-03-02T10:00:00Z", "reason": "invalid_grant"});
    scratch
        .put_secret("credentials/qb", &marked.to_string())
        .await;
    let out = run(&args, "").await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let qb_row = row(&stdout);
    assert_eq!(qb_row["outcome"], "failed");
    let detail = qb_row["detail"].as_str().unwrap();
    assert!(
        detail.contains("needs reconnect since 2026-03-02T10:00:00Z")
            && detail.contains("ml-connector connect quickbooks --name qb --environment sandbox"),
        "{detail}"
    );
}
