//! `connect`, `ping` and `apply` as a user runs them: the real binary against the FreshBooks and
//! Mailchimp sandboxes, a local store in a temporary directory, and (for `apply`) the webhook
//! routes served in this process over the same store.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the test failing, with the value

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{BIN, Scratch, free_port, run, text, webhook_server};
use mlc::ports::ConnectionStore;
use mlc_sandbox::freshbooks::{FreshbooksSandbox, FreshbooksSandboxOptions};
use mlc_sandbox::mailchimp::{MailchimpSandbox, MailchimpSandboxOptions};
use secrecy::ExposeSecret;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

fn connections_file(scratch: &Scratch, account: &str, list: &str) -> PathBuf {
    scratch.file(
        "connections.toml",
        &format!(
            r#"
[connection.books-to-mailchimp]
source = {{ vendor = "freshbooks", account = "{account}", credentials = "fb" }}
target = {{ vendor = "mailchimp", credentials = "mc", list_id = "{list}" }}
"#
        ),
    )
}

#[tokio::test]
async fn connect_freshbooks_runs_the_authorization_code_flow_against_the_sandbox() {
    let port = free_port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let sandbox = FreshbooksSandbox::start(FreshbooksSandboxOptions {
        redirect_uri: redirect_uri.clone(),
        ..Default::default()
    })
    .await;
    let acct = sandbox.setup_account("owner@example.com", "Acme Ltd");
    let scratch = Scratch::new("fb-oauth");
    let base = sandbox.base_url();
    let authorize = format!("{base}/oauth/authorize");
    let port_arg = port.to_string();
    let db = scratch.db_arg();
    let mut child = Command::new(BIN)
        .args([
            "connect",
            "freshbooks",
            "--name",
            "fb",
            "--client-id",
            "sandbox-client-id",
            "--port",
            &port_arg,
            "--no-browser",
            "--timeout",
            "30",
            "--authorize-url",
            &authorize,
            "--freshbooks-api",
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
    input.write_all(b"sandbox-client-secret\n").await.unwrap();
    drop(input);

    // The approval address is printed on standard error.
    let (url, _stderr) = common::printed_url(&mut child).await;
    let parsed = url::Url::parse(&url).unwrap();
    assert!(url.starts_with(&authorize), "{url}");
    let param = |k: &str| {
        parsed
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("client_id").as_deref(), Some("sandbox-client-id"));
    assert_eq!(param("response_type").as_deref(), Some("code"));
    assert_eq!(
        param("redirect_uri").as_deref(),
        Some(redirect_uri.as_str())
    );
    assert!(param("state").is_some_and(|s| s.len() >= 16));

    // The "browser": approve as the sandbox user and follow the redirect to the CLI.
    let approve = format!("{url}&identity_id={}", acct.identity_id);
    let page = reqwest::get(&approve).await.unwrap();
    assert_eq!(page.status(), 200, "{approve} → {}", page.url());
    assert!(page.text().await.unwrap().contains("authorised"));

    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(&acct.account_id), "{stdout}");
    assert!(stdout.contains("Acme Ltd"), "{stdout}");

    let stored = scratch.secret("credentials/fb").await.expect("stored");
    let creds =
        mlc::vendors::freshbooks::credentials::Credentials::from_json(&stored).expect("parses");
    assert!(
        sandbox
            .stats()
            .valid_access_tokens
            .contains(&creds.access_token.expose_secret().to_string()),
        "the stored access token is one the sandbox issued"
    );
    assert_eq!(creds.client_id.as_deref(), Some("sandbox-client-id"));
    assert_eq!(creds.redirect_uri.as_deref(), Some(redirect_uri.as_str()));
    assert!(creds.expires_at.is_some());
}

#[tokio::test]
async fn connect_freshbooks_without_client_id_is_refused_before_any_listener() {
    let scratch = Scratch::new("fb-noid");
    let out = run(
        &[
            "connect",
            "freshbooks",
            "--name",
            "fb",
            "--db",
            &scratch.db_arg(),
        ],
        "secret",
    )
    .await;
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("--client-id"), "{stderr}");
}

#[tokio::test]
async fn connect_mailchimp_reads_the_key_from_stdin_and_checks_it() {
    let mc = MailchimpSandbox::start(MailchimpSandboxOptions::default()).await;
    let scratch = Scratch::new("mc");
    let base = mc.base_url();
    let db = scratch.db_arg();
    let args = [
        "connect",
        "mailchimp",
        "--name",
        "mc",
        "--mailchimp-api",
        &base,
        "--db",
        &db,
    ];

    let bad = run(&args, &format!("{}-{}", "0".repeat(32), mc.dc())).await;
    assert!(!bad.status.success());
    assert!(text(&bad).1.contains("refused"), "{}", text(&bad).1);
    assert_eq!(scratch.secret("credentials/mc").await, None);

    let good = run(&args, &format!("{}\n", mc.api_key())).await;
    let (stdout, stderr) = text(&good);
    assert!(good.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("data centre {}", mc.dc())),
        "{stdout}"
    );
    assert!(!stdout.contains(&mc.api_key()) && !stderr.contains(&mc.api_key()));
    let stored: serde_json::Value =
        serde_json::from_str(&scratch.secret("credentials/mc").await.unwrap()).unwrap();
    assert_eq!(stored["api_key"], mc.api_key());
}

#[tokio::test]
async fn connect_stripe_takes_its_fields_as_json() {
    let scratch = Scratch::new("stripe");
    let db = scratch.db_arg();
    let args = ["connect", "stripe", "--name", "st", "--db", &db];
    let missing = run(&args, r#"{"other": "x"}"#).await;
    assert!(!missing.status.success());
    assert!(text(&missing).1.contains("secret_key"));
    let ok = run(&args, r#"{"secret_key": "rk_test_123"}"#).await;
    assert!(ok.status.success(), "{:?}", text(&ok));
    assert_eq!(
        scratch.secret("credentials/st").await.as_deref(),
        Some(r#"{"secret_key":"rk_test_123"}"#)
    );
    let qb = run(&["connect", "quickbooks", "--name", "qb", "--db", &db], "").await;
    assert!(!qb.status.success());
    assert!(
        text(&qb).1.contains("QUICKBOOKS_CLIENT_ID"),
        "{}",
        text(&qb).1
    );
}

#[tokio::test]
async fn ping_reports_working_and_broken_credentials() {
    let fb = FreshbooksSandbox::start(FreshbooksSandboxOptions::default()).await;
    let mc = MailchimpSandbox::start(MailchimpSandboxOptions::default()).await;
    let acct = fb.setup_account("owner@example.com", "Acme Ltd");
    let scratch = Scratch::new("ping");
    let file = connections_file(&scratch, &acct.account_id, "a1b2c3d4e5");
    scratch
        .put_secret("credentials/fb", &fb.credentials_json(&acct.tokens))
        .await;
    scratch
        .put_secret("credentials/mc", &mc.credentials_json())
        .await;
    let (fb_base, mc_base, db) = (fb.base_url(), mc.base_url(), scratch.db_arg());
    let file_arg = file.display().to_string();
    let args = [
        "ping",
        "--json",
        "--connections",
        &file_arg,
        "--freshbooks-api",
        &fb_base,
        "--mailchimp-api",
        &mc_base,
        "--db",
        &db,
    ];

    let out = run(&args, "").await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "ok"),
        "{rows}"
    );

    // An expired access token with a working refresh token: refreshed, still ok.
    fb.expire_access_tokens();
    let out = run(&args, "").await;
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("refreshed"), "{stdout}");

    // Broken: a refresh token the sandbox refuses, a key Mailchimp refuses, a missing set.
    let mut broken: serde_json::Value =
        serde_json::from_str(&scratch.secret("credentials/fb").await.unwrap()).unwrap();
    broken["refresh_token"] = "spent".into();
    scratch
        .put_secret("credentials/fb", &broken.to_string())
        .await;
    fb.expire_access_tokens();
    scratch
        .put_secret(
            "credentials/mc",
            &serde_json::json!({"api_key": format!("{}-{}", "0".repeat(32), mc.dc())}).to_string(),
        )
        .await;
    let out = run(&args, "").await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let row = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["credentials"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("fb")["outcome"], "failed");
    let detail = row("fb")["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("refresh was refused") && detail.contains("reconnect"),
        "{rows}"
    );
    assert_eq!(row("mc")["outcome"], "failed");
    assert!(
        row("mc")["detail"].as_str().unwrap().contains("refused"),
        "{rows}"
    );

    // The human table, with a credential set that does not exist.
    let other = scratch.file(
        "other.toml",
        r#"
[connection.x]
source = { vendor = "freshbooks", account = "ZZ", credentials = "nobody" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "a1b2c3d4e5" }
"#,
    );
    let other_arg = other.display().to_string();
    let out = run(
        &[
            "ping",
            "--connections",
            &other_arg,
            "--freshbooks-api",
            &fb_base,
            "--mailchimp-api",
            &mc_base,
            "--db",
            &db,
        ],
        "",
    )
    .await;
    let (stdout, _) = text(&out);
    assert!(!out.status.success());
    assert!(stdout.contains("CREDENTIALS"), "{stdout}");
    assert!(
        stdout.contains("missing secret `credentials/nobody`"),
        "{stdout}"
    );
}

#[tokio::test]
async fn apply_stores_the_set_registers_callbacks_and_completes_the_handshake() {
    let fb = FreshbooksSandbox::start(FreshbooksSandboxOptions::default()).await;
    let acct = fb.setup_account("owner@example.com", "Acme Ltd");
    let scratch = Scratch::new("apply");
    scratch
        .put_secret("credentials/fb", &fb.credentials_json(&acct.tokens))
        .await;
    let file = connections_file(&scratch, &acct.account_id, "a1b2c3d4e5");
    let hooks = webhook_server(&scratch, &fb.base_url()).await;
    let (fb_base, db, file_arg) = (fb.base_url(), scratch.db_arg(), file.display().to_string());
    let args = [
        "apply",
        file_arg.as_str(),
        "--yes",
        "--webhook-base",
        &hooks,
        "--wait",
        "20",
        "--freshbooks-api",
        &fb_base,
        "--db",
        &db,
    ];

    let out = run(&args, "").await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("+ books-to-mailchimp"), "{stdout}");
    assert!(
        stdout.contains("1 to add, 0 to remove, 0 to change"),
        "{stdout}"
    );
    let callbacks = fb.callbacks(&acct.account_id).unwrap();
    assert_eq!(callbacks.len(), 3, "{callbacks:?}");
    assert!(callbacks.iter().all(|c| c.verified), "{callbacks:?}");
    for event in ["client", "invoice", "payment"] {
        let route = format!("{}-{event}", acct.account_id);
        assert!(callbacks.iter().any(|c| c.event == event
            && c.uri == format!("{hooks}/freshbooks/{}/{route}", acct.account_id)));
        assert!(
            scratch
                .secret(&format!("webhook/freshbooks/{}/{route}", acct.account_id))
                .await
                .is_some(),
            "the handshake stored the verifier of {route}"
        );
    }
    let (store, _) = scratch.open();
    assert_eq!(
        store.get_connections().await.unwrap().unwrap(),
        mlc::connections::ConnectionSet::load(&file).unwrap()
    );
    // Mailchimp is only a target here: nothing to register by hand.
    assert!(!stdout.contains("Register by hand"), "{stdout}");

    // Again: nothing changes, nothing is registered twice.
    let out = run(&args, "").await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("0 to add, 0 to remove, 0 to change, 1 unchanged"),
        "{stdout}"
    );
    assert!(stdout.contains("already registered"), "{stdout}");
    assert_eq!(fb.callbacks(&acct.account_id).unwrap().len(), 3);
}

#[tokio::test]
async fn apply_shows_the_diff_and_refuses_without_yes_when_it_cannot_ask() {
    let scratch = Scratch::new("apply-no");
    let file = connections_file(&scratch, "ACC1", "a1b2c3d4e5");
    let db = scratch.db_arg();
    let file_arg = file.display().to_string();
    let out = run(&["apply", &file_arg, "--db", &db], "y\n").await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stdout.contains("+ books-to-mailchimp: freshbooks/ACC1"),
        "{stdout}"
    );
    assert!(stderr.contains("--yes"), "{stderr}");
    let (store, _) = scratch.open();
    assert_eq!(store.get_connections().await.unwrap(), None);

    // Applied, then a change and a removal show as such; Mailchimp sources get their URL.
    let applied = run(&["apply", &file_arg, "--yes", "--db", &db], "").await;
    assert!(applied.status.success(), "{:?}", text(&applied));
    let changed = scratch.file(
        "changed.toml",
        r#"
[connection.books-to-mailchimp]
source = { vendor = "freshbooks", account = "ACC1", credentials = "fb" }
target = { vendor = "mailchimp", credentials = "mc", list_id = "f6e5d4c3b2" }
"#,
    );
    let changed_arg = changed.display().to_string();
    let out = run(&["apply", &changed_arg, "--yes", "--db", &db], "").await;
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("~ books-to-mailchimp"), "{stdout}");
    assert!(stdout.contains("list=f6e5d4c3b2"), "{stdout}");
    assert!(
        stdout.contains("0 to add, 0 to remove, 1 to change"),
        "{stdout}"
    );

    // Removing the only connection: shown as such, and its callbacks are mentioned.
    let empty = scratch.file("empty.toml", "# nothing\n");
    let empty_arg = empty.display().to_string();
    let out = run(&["apply", &empty_arg, "--yes", "--db", &db], "").await;
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("- books-to-mailchimp"), "{stdout}");
    assert!(
        stdout.contains("0 to add, 1 to remove, 0 to change"),
        "{stdout}"
    );
    assert!(
        stdout.contains("account ACC1 is no longer a source"),
        "{stdout}"
    );
}

#[tokio::test]
async fn connect_freshbooks_with_a_non_loopback_redirect_takes_the_pasted_address() {
    let redirect_uri = "https://app.example.test/freshbooks/callback";
    let sandbox = FreshbooksSandbox::start(FreshbooksSandboxOptions {
        redirect_uri: redirect_uri.into(),
        ..Default::default()
    })
    .await;
    let acct = sandbox.setup_account("owner@example.com", "Acme Ltd");
    let scratch = Scratch::new("fb-paste");
    let base = sandbox.base_url();
    let authorize = format!("{base}/oauth/authorize");
    let db = scratch.db_arg();
    let mut child = Command::new(BIN)
        .args([
            "connect",
            "freshbooks",
            "--name",
            "fb",
            "--client-id",
            "sandbox-client-id",
            "--redirect-uri",
            redirect_uri,
            "--no-browser",
            "--authorize-url",
            &authorize,
            "--freshbooks-api",
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
    input.write_all(b"sandbox-client-secret\n").await.unwrap();
    let (url, _stderr) = common::printed_url(&mut child).await;

    // The browser lands on the app's https page; the user copies its address.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = no_redirects
        .get(format!("{url}&identity_id={}", acct.identity_id))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 302);
    let landed = answer.headers()["location"].to_str().unwrap().to_string();
    assert!(landed.starts_with(redirect_uri), "{landed}");
    input
        .write_all(format!("{landed}\n").as_bytes())
        .await
        .unwrap();
    drop(input);

    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(&acct.account_id), "{stdout}");
    let stored = scratch.secret("credentials/fb").await.expect("stored");
    let creds =
        mlc::vendors::freshbooks::credentials::Credentials::from_json(&stored).expect("parses");
    assert_eq!(creds.redirect_uri.as_deref(), Some(redirect_uri));
}

#[tokio::test]
async fn connect_mailchimp_oauth_stores_the_token_with_its_data_centre() {
    let mc = MailchimpSandbox::start(MailchimpSandboxOptions::default()).await;
    let scratch = Scratch::new("mc-oauth");
    let (base, meta, db) = (mc.base_url(), mc.oauth_metadata_url(), scratch.db_arg());
    let out = run(
        &[
            "connect",
            "mailchimp",
            "--oauth",
            "--name",
            "mc",
            "--mailchimp-api",
            &base,
            "--mailchimp-metadata-url",
            &meta,
            "--db",
            &db,
        ],
        &mc.oauth_token(),
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("data centre {}", mc.dc())),
        "{stdout}"
    );
    let stored: serde_json::Value =
        serde_json::from_str(&scratch.secret("credentials/mc").await.unwrap()).unwrap();
    assert_eq!(stored["access_token"], mc.oauth_token());
    assert_eq!(stored["dc"], mc.dc());
    // What was stored is a credential set the worker can use.
    mlc::vendors::mailchimp::credentials::Credentials::from_json(&stored.to_string())
        .expect("a usable Mailchimp credential set");
}

#[tokio::test]
async fn connections_check_lists_the_file_and_refuses_a_flow_this_build_does_not_run() {
    let scratch = Scratch::new("connections-check");
    let good = connections_file(&scratch, "6BApk", "l1");
    let out = run(&["connections", "check", &good.display().to_string()], "").await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("books-to-mailchimp: freshbooks/6BApk → mailchimp"),
        "{stdout}"
    );
    assert!(
        stdout.contains("flows this build runs: freshbooks → mailchimp"),
        "{stdout}"
    );

    let marketo = scratch.file(
        "marketo.toml",
        r#"
[connection.books-to-marketo]
source = { vendor = "freshbooks", account = "6BApk", credentials = "fb" }
target = { vendor = "marketo", credentials = "mk", instance = "123-ABC-456" }
"#,
    );
    let out = run(
        &["connections", "check", &marketo.display().to_string()],
        "",
    )
    .await;
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "connection `books-to-marketo`: target.vendor: there is no flow from freshbooks to \
             marketo in this build; the flows it runs are: freshbooks → mailchimp"
        ),
        "{stderr}"
    );
}
