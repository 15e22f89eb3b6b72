//! `connect`, `apply` and `ping` on a deployed stack, against moto: a CloudFormation stack whose
//! outputs name the tables, queues, secret prefix and webhook base made by
//! `mlc_tests::moto::AwsEnv`, found by the binary through `--stack`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is the test failing, with the value

mod common;

use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{all_text as text, moto_command, stack_outputs};
use mlc::connections::ConnectionSet;
use mlc::ports::SystemClock;
use mlc_sandbox::mailchimp::{MailchimpSandbox, MailchimpSandboxOptions};
use mlc_sandbox::quickbooks::{QuickbooksSandbox, QuickbooksSandboxOptions};
use mlc_tests::moto::AwsEnv;
use secrecy::ExposeSecret;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const WEBHOOK_BASE: &str = "https://hooks.example.test/webhooks";

/// A stack in moto with `template.yaml`'s outputs, pointing at `env`.
async fn create_stack(env: &AwsEnv) -> String {
    let mut outputs = stack_outputs(env);
    outputs["WebhookBaseUrl"] = serde_json::json!({"Value": WEBHOOK_BASE});
    common::create_stack(env, "onboarding", outputs).await
}

async fn run(dir: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::from(moto_command(dir))
        .args(args)
        .env_remove("MAILCHIMP_API_BASE")
        .env_remove("QUICKBOOKS_API_BASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("writing stdin");
    drop(input);
    tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the command finished")
        .expect("the binary ran")
}

#[tokio::test]
async fn connect_apply_and_ping_on_a_stack() {
    let env = AwsEnv::start("mailchimp", 5, Arc::new(SystemClock)).await;
    let stack = create_stack(&env).await;
    let mc = MailchimpSandbox::start(MailchimpSandboxOptions::default()).await;
    let qb = QuickbooksSandbox::start(QuickbooksSandboxOptions::default()).await;
    let company = qb.setup_company("Acme Books Ltd");
    let dir = std::env::temp_dir().join(format!("mlc-onboarding-moto-{stack}"));
    std::fs::create_dir_all(&dir).unwrap();
    let stack_arg = format!("--stack={stack}");
    let base = mc.base_url();

    // connect: the key goes to the stack's secret prefix, nowhere local.
    let out = run(
        &dir,
        &[
            "connect",
            "mailchimp",
            "--name",
            "mc",
            &stack_arg,
            "--mailchimp-api",
            &base,
        ],
        &mc.api_key(),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("stack {stack}")),
        "{}",
        text(&out)
    );
    let stored = env.secrets.get("credentials/mc").await.unwrap().unwrap();
    let stored: serde_json::Value = serde_json::from_str(stored.expose_secret()).unwrap();
    assert_eq!(stored["api_key"], mc.api_key());
    assert!(!dir.join(".ml-connector").exists(), "no local store made");

    // apply: connections into the state table; the Mailchimp list's URL under the stack's
    // WebhookBaseUrl, its path secret made and stored.
    let file = dir.join("connections.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[connection.mc-to-qbo]
source = {{ vendor = "mailchimp", account = "f6e5d4c3b2", credentials = "mc" }}
target = {{ vendor = "quickbooks", credentials = "qbo", realm_id = "{}" }}
"#,
            company.realm_id
        ),
    )
    .unwrap();
    let file_arg = file.display().to_string();
    let out = run(&dir, &["apply", &file_arg, "--yes", &stack_arg], "").await;
    assert!(out.status.success(), "{}", text(&out));
    let secret = env
        .secrets
        .get("webhook/mailchimp/f6e5d4c3b2")
        .await
        .unwrap()
        .expect("the list's path secret");
    assert!(
        text(&out).contains(&format!(
            "{WEBHOOK_BASE}/mailchimp/f6e5d4c3b2/{}",
            secret.expose_secret()
        )),
        "{}",
        text(&out)
    );
    assert_eq!(
        env.store.get_connections().await.unwrap().unwrap(),
        ConnectionSet::load(&file).unwrap()
    );

    // ping: the applied set's credentials, from the stack; the QuickBooks company's name.
    env.secrets
        .put(
            "credentials/qbo",
            &secrecy::SecretString::from(qb.credentials_json(&company)),
        )
        .await
        .unwrap();
    let qb_base = qb.base_url();
    let out = run(
        &dir,
        &[
            "ping",
            "--json",
            &stack_arg,
            "--mailchimp-api",
            &base,
            "--quickbooks-api",
            &qb_base,
        ],
        "",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcome = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["credentials"] == name)
            .map(|r| r["outcome"].clone())
    };
    assert_eq!(outcome("mc"), Some("ok".into()), "{rows}");
    assert_eq!(outcome("qbo"), Some("ok".into()), "{rows}");
    assert!(rows.to_string().contains("Acme Books Ltd"), "{rows}");
    let _ = std::fs::remove_dir_all(&dir);
}
