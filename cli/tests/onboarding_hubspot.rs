//! `connect hubspot`, `apply`, `ping`, `status` and `backfill --only invoices` for a FreshBooks →
//! HubSpot connection, as a user runs them: the real binary against the HubSpot (and FreshBooks)
//! sandbox and a local store in a temporary directory.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the test failing, with the value

mod common;

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{BIN, Scratch, free_port, json_of, run, text};
use mlc::vendors::hubspot::HubspotCredentials;
use mlc::vendors::hubspot::credentials::AuthKind;
use mlc::vendors::hubspot::models::ObjectType;
use mlc::vendors::hubspot::spec::SCOPES;
use mlc_sandbox::freshbooks::{
    ClientSpec, FreshbooksSandbox, FreshbooksSandboxOptions, SandboxAccount, Webhooks,
};
use mlc_sandbox::hubspot::{ALL_SCOPES, HubspotSandbox, HubspotSandboxOptions};
use secrecy::ExposeSecret;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const CONNECTION: &str = "books-to-hubspot";

fn connections_file(scratch: &Scratch, account: &str, portal: u64) -> PathBuf {
    scratch.file(
        "connections.toml",
        &format!(
            r#"
[connection.{CONNECTION}]
source = {{ vendor = "freshbooks", account = "{account}", credentials = "fb" }}
target = {{ vendor = "hubspot", credentials = "hs", portal_id = "{portal}" }}
"#
        ),
    )
}

/// `connect hubspot --name <name> --auth <auth>` with the token on standard input.
async fn connect(
    scratch: &Scratch,
    base: &str,
    name: &str,
    auth: &str,
    portal: Option<&str>,
    token: &str,
) -> Output {
    let db = scratch.db_arg();
    let mut args = vec![
        "connect",
        "hubspot",
        "--name",
        name,
        "--auth",
        auth,
        "--hubspot-api",
        base,
        "--db",
        &db,
    ];
    if let Some(p) = portal {
        args.extend(["--portal-id", p]);
    }
    run(&args, token).await
}

async fn stored(scratch: &Scratch, name: &str) -> HubspotCredentials {
    let value = scratch
        .secret(&format!("credentials/{name}"))
        .await
        .expect("stored");
    HubspotCredentials::from_json(&value).expect("a HubSpot set")
}

#[tokio::test]
async fn connect_hubspot_stores_a_private_app_token_or_service_key_with_its_portal() {
    let sandbox = HubspotSandbox::start(HubspotSandboxOptions::default()).await;
    let portal = sandbox.setup_portal();
    let id = portal.portal.portal_id.to_string();
    let base = sandbox.base_url();
    let scratch = Scratch::new("hs-connect");

    let out = connect(
        &scratch,
        &base,
        "hs",
        "private-app",
        Some(&id),
        &portal.token,
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("portal (hub id) {id}")),
        "{stdout}"
    );
    assert!(!stdout.contains("lacks"), "{stdout}");
    assert!(!stdout.contains(&portal.token) && !stderr.contains(&portal.token));
    let set = stored(&scratch, "hs").await;
    assert_eq!(set.kind, AuthKind::PrivateApp);
    assert_eq!(set.portal_id, portal.portal.portal_id);
    assert_eq!(set.access_token.expose_secret(), portal.token);
    assert!(set.time_zone.is_some(), "the portal's zone is recorded");

    // A token of another portal than the connection's: refused, naming both, nothing stored.
    let out = connect(
        &scratch,
        &base,
        "other",
        "private-app",
        Some("999"),
        &portal.token,
    )
    .await;
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("the token is for HubSpot portal {id}"))
            && stderr.contains("names portal 999"),
        "{stderr}"
    );
    assert!(scratch.secret("credentials/other").await.is_none());

    // A service key lacking the invoice scopes: stored, with what is missing and where to add it.
    let scopes: Vec<&str> = ALL_SCOPES
        .iter()
        .copied()
        .filter(|s| !s.contains("invoices"))
        .collect();
    let key = sandbox
        .issue_service_key(portal.portal.portal_id, &scopes)
        .unwrap();
    let out = connect(&scratch, &base, "hs-key", "service-key", None, &key).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("lacks 4 scope(s)")
            && stdout.contains("crm.objects.invoices.write")
            && stdout.contains("Settings > Integrations > Service Keys"),
        "{stdout}"
    );
    assert_eq!(stored(&scratch, "hs-key").await.kind, AuthKind::ServiceKey);

    // A revoked token is refused before anything is stored.
    sandbox.revoke_token(&key);
    let out = connect(&scratch, &base, "gone", "service-key", None, &key).await;
    assert!(!out.status.success());
    assert!(text(&out).1.contains("HubSpot refused the token"));
    assert!(scratch.secret("credentials/gone").await.is_none());
}

#[tokio::test]
async fn connect_hubspot_oauth_runs_the_authorization_code_flow_then_pings_through_refresh() {
    let port = free_port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let sandbox = HubspotSandbox::start(HubspotSandboxOptions {
        redirect_uri: redirect_uri.clone(),
        ..Default::default()
    })
    .await;
    let portal = sandbox.setup_portal().portal.portal_id;
    let base = sandbox.base_url();
    let authorize = format!("{base}/oauth/authorize");
    let scratch = Scratch::new("hs-oauth");
    let db = scratch.db_arg();
    let port_arg = port.to_string();
    let client_id = HubspotSandboxOptions::default().client_id;
    let mut child = Command::new(BIN)
        .args([
            "connect",
            "hubspot",
            "--name",
            "hs",
            "--auth",
            "oauth",
            "--client-id",
            &client_id,
            "--port",
            &port_arg,
            "--no-browser",
            "--timeout",
            "30",
            "--authorize-url",
            &authorize,
            "--hubspot-api",
            &base,
            "--db",
            &db,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let secret = HubspotSandboxOptions::default().client_secret;
    input
        .write_all(format!("{secret}\n").as_bytes())
        .await
        .unwrap();
    drop(input);

    let (url, _stderr) = common::printed_url(&mut child).await;
    assert!(url.starts_with(&authorize), "{url}");
    let parsed = url::Url::parse(&url).unwrap();
    let param = |k: &str| {
        parsed
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("scope").unwrap(), SCOPES.join(" "));
    assert_eq!(
        param("redirect_uri").as_deref(),
        Some(redirect_uri.as_str())
    );
    // The "browser": the sandbox approves at once and redirects to the CLI's listener.
    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.status(), 200, "{url} → {}", page.url());

    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("portal (hub id) {portal}")),
        "{stdout}"
    );
    let set = stored(&scratch, "hs").await;
    assert_eq!(set.kind, AuthKind::OAuth);
    assert_eq!(set.portal_id, portal);
    let app = set.oauth.expect("the OAuth app");
    assert_eq!(app.client_id, client_id);
    assert_eq!(app.redirect_uri.as_deref(), Some(redirect_uri.as_str()));
    assert!(app.expires_at.is_some());

    // `ping` through the workers' client: the expired access token is refreshed on the way.
    sandbox.expire_oauth_tokens();
    let file = scratch.file(
        "c.toml",
        &format!(
            r#"
[connection.{CONNECTION}]
source = {{ vendor = "freshbooks", account = "acct", credentials = "fb" }}
target = {{ vendor = "hubspot", credentials = "hs", portal_id = "{portal}" }}
"#
        ),
    );
    let file = file.display().to_string();
    let out = run(
        &[
            "ping",
            "--connections",
            &file,
            "--hubspot-api",
            &base,
            "--db",
            &db,
        ],
        "",
    )
    .await;
    let (stdout, _) = text(&out);
    let line = stdout.lines().find(|l| l.starts_with("hs ")).unwrap();
    assert!(
        line.contains(&format!("portal {portal} (oauth)")) && line.contains("every scope"),
        "{stdout}"
    );
    assert!(!line.contains("FAILED"), "{stdout}");
}

/// A FreshBooks account with one client, and its credential set stored as `fb`.
async fn freshbooks(scratch: &Scratch) -> (FreshbooksSandbox, SandboxAccount) {
    let fb = FreshbooksSandbox::start(FreshbooksSandboxOptions::default()).await;
    let acct = fb.setup_account("owner@example.com", "Acme Ltd");
    fb.create_client(
        &acct.account_id,
        ClientSpec {
            email: Some("ann@example.com".into()),
            fname: Some("Ann".into()),
            ..ClientSpec::default()
        },
        Webhooks::Suppress,
    )
    .await
    .unwrap();
    scratch
        .put_secret("credentials/fb", &fb.credentials_json(&acct.tokens))
        .await;
    (fb, acct)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_the_properties_once_probes_invoices_and_backfill_only_invoices_clears_the_flag()
 {
    let hs = HubspotSandbox::start(HubspotSandboxOptions::default()).await;
    let portal = hs.setup_portal();
    let id = portal.portal.portal_id;
    let base = hs.base_url();
    let scratch = Scratch::new("hs-apply");
    let (fb, acct) = freshbooks(&scratch).await;
    let fb_base = fb.base_url();
    let db = scratch.db_arg();
    let out = connect(&scratch, &base, "hs", "private-app", None, &portal.token).await;
    assert!(out.status.success(), "{}", text(&out).1);
    let file = connections_file(&scratch, &acct.account_id, id)
        .display()
        .to_string();
    let apply = async || {
        run(
            &[
                "apply",
                &file,
                "--yes",
                "--hubspot-api",
                &base,
                "--freshbooks-api",
                &fb_base,
                "--db",
                &db,
            ],
            "",
        )
        .await
    };

    let out = apply().await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let defs = mlc::flows::freshbooks_hubspot::portal::property_definitions();
    assert!(
        stdout.contains(&format!("{} properties created", defs.len())),
        "{stdout}"
    );
    assert!(stdout.contains("invoice writes work (probe)"), "{stdout}");
    for t in ObjectType::ALL {
        assert!(
            hs.property_groups(id, t)
                .iter()
                .any(|g| g.name == "freshbooks"),
            "{t}"
        );
    }
    let key = hs
        .properties(id, ObjectType::Invoices)
        .into_iter()
        .find(|p| p.name == "fb_invoice_id")
        .expect("the invoice key");
    assert!(key.has_unique_value);
    // The probe's draft is in the recycle bin, not among the invoices.
    assert!(hs.objects(id, ObjectType::Invoices).is_empty());
    assert!(
        hs.archived(id, ObjectType::Invoices).iter().any(|o| o
            .properties
            .get("fb_invoice_id")
            .map(String::as_str)
            == Some("mlc-probe"))
    );

    // Again: nothing to create, nothing changed.
    let out = apply().await;
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("0 properties created"), "{stdout}");
    assert!(!stdout.contains("warning"), "{stdout}");

    let ping = async || {
        run(
            &[
                "ping",
                "--hubspot-api",
                &base,
                "--freshbooks-api",
                &fb_base,
                "--db",
                &db,
            ],
            "",
        )
        .await
    };
    let out = ping().await;
    let (stdout, _) = text(&out);
    let line = stdout.lines().find(|l| l.starts_with("hs ")).unwrap();
    assert!(
        line.contains(&format!("portal {id} (private_app)"))
            && line.contains("every scope the flow needs")
            && line.contains("invoice writes work (probe)")
            && line.contains("commerce payments: no refusal recorded"),
        "{stdout}"
    );

    // The portal stops taking invoices: apply records it, status warns with the fix.
    hs.set_invoice_writes_unavailable(id, true).unwrap();
    let out = apply().await;
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("warning: HubSpot refuses invoice writes in this portal"),
        "{stdout}"
    );
    let status = async || run(&["status", "--db", &db], "").await;
    let (stdout, _) = text(&status().await);
    assert!(
        stdout.contains(&format!(
            "{CONNECTION}: HubSpot refused invoice writes in this portal"
        )) && stdout.contains(&format!(
            "ml-connector backfill {CONNECTION} --only invoices"
        )),
        "{stdout}"
    );
    let (stdout, _) = text(&ping().await);
    assert!(
        stdout.contains("invoice writes NOT available in this portal"),
        "{stdout}"
    );

    // It takes them again: `backfill --only invoices` clears the flag and lists invoices only.
    hs.set_invoice_writes_unavailable(id, false).unwrap();
    let (store, _) = scratch.open();
    store
        .declare_queue("hubspot", 5, Duration::from_secs(30))
        .await
        .unwrap();
    drop(store);
    let out = run(
        &[
            "backfill",
            CONNECTION,
            "--only",
            "invoices",
            "--json",
            "--freshbooks-api",
            &fb_base,
            "--hubspot-api",
            &base,
            "--db",
            &db,
        ],
        "",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out).1);
    let report = json_of(&out);
    let listed = report["listed"].as_object().unwrap();
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["invoice"], "{report}");
    let (stdout, _) = text(&status().await);
    assert!(!stdout.contains("refused invoice writes"), "{stdout}");

    // An entity the source does not list is a usage error naming the choices.
    let out = run(
        &["backfill", CONNECTION, "--only", "estimates", "--db", &db],
        "",
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("client, invoice, payment"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_never_changes_an_existing_property_and_says_what_its_difference_breaks() {
    let hs = HubspotSandbox::start(HubspotSandboxOptions::default()).await;
    let portal = hs.setup_portal();
    let id = portal.portal.portal_id;
    let base = hs.base_url();
    // Someone made `fb_invoice_id` by hand, without unique values.
    let made = reqwest::Client::new()
        .post(format!("{base}/crm/v3/properties/invoices"))
        .bearer_auth(&portal.token)
        .json(&serde_json::json!({
            "name": "fb_invoice_id", "label": "FB id", "type": "string",
            "fieldType": "text", "groupName": "invoiceinformation",
        }))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "{}", made.text().await.unwrap());
    let scratch = Scratch::new("hs-apply-differs");
    let (fb, acct) = freshbooks(&scratch).await;
    let out = connect(&scratch, &base, "hs", "private-app", None, &portal.token).await;
    assert!(out.status.success(), "{}", text(&out).1);
    let file = connections_file(&scratch, &acct.account_id, id)
        .display()
        .to_string();
    let (fb_base, db) = (fb.base_url(), scratch.db_arg());
    let out = run(
        &[
            "apply",
            &file,
            "--yes",
            "--hubspot-api",
            &base,
            "--freshbooks-api",
            &fb_base,
            "--db",
            &db,
        ],
        "",
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("invoices property `fb_invoice_id` exists without unique values")
            && stdout.contains("every invoices write fails")
            && stdout.contains("invoice writes not probed"),
        "{stdout}"
    );
    assert!(stderr.contains("HubSpot properties"), "{stderr}");
    // Left as it was; everything else created.
    let key = hs
        .properties(id, ObjectType::Invoices)
        .into_iter()
        .find(|p| p.name == "fb_invoice_id")
        .unwrap();
    assert!(!key.has_unique_value && key.label == "FB id");
    assert!(
        hs.properties(id, ObjectType::LineItems)
            .iter()
            .any(|p| p.name == "fb_line_key" && p.has_unique_value)
    );
}
