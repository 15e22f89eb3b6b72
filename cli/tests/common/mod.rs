//! Helpers the CLI's binary tests share: the binary run as a user runs it (locally or against a
//! moto stack), a local store in a scratch directory, the webhook routes served over that
//! store, and readers of what the binary printed.

#![allow(clippy::unwrap_used)]
// test support: a failed set-up is the test failing

// Each test binary compiles this module and uses its own share of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mlc::adapters::embedded::{EmbeddedDb, EmbeddedSecrets};
use mlc::app::{App, LiveClientsConfig, Ports};
use mlc::ports::{Secrets, SystemClock};
use mlc::webhook::{WebhookConfig, local};
use mlc_tests::moto::{self, AwsEnv};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_ml-connector");

/// A scratch directory holding the local store; removed on drop.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "mlc-cli-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.0
    }

    pub(crate) fn db(&self) -> PathBuf {
        self.0.join("local.db")
    }

    /// The store's path as a command-line argument.
    pub(crate) fn db_arg(&self) -> String {
        self.db().display().to_string()
    }

    /// Writes `text` to `name` in the directory.
    pub(crate) fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    pub(crate) fn open(&self) -> (EmbeddedDb, EmbeddedSecrets) {
        let db = EmbeddedDb::open(self.db(), Arc::new(SystemClock)).unwrap();
        let secrets = EmbeddedSecrets::open(&db).unwrap();
        (db, secrets)
    }

    pub(crate) async fn put_secret(&self, name: &str, value: &str) {
        let (_, secrets) = self.open();
        secrets
            .put(name, &SecretString::from(value.to_string()))
            .await
            .unwrap();
    }

    pub(crate) async fn secret(&self, name: &str) -> Option<String> {
        let (_, secrets) = self.open();
        secrets
            .get(name)
            .await
            .unwrap()
            .map(|s| s.expose_secret().to_string())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary with `stdin` as its standard input (closed after), no terminal, and none of
/// the vendor base variables of the environment the tests run in.
pub(crate) async fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("FRESHBOOKS_API_BASE")
        .env_remove("MAILCHIMP_API_BASE")
        .env_remove("QUICKBOOKS_API_BASE")
        .env_remove("HUBSPOT_API_BASE")
        .env_remove("ML_CONNECTOR_WEBHOOK_BASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the command finished")
        .unwrap()
}

/// Standard output and standard error as text.
pub(crate) fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Standard output then standard error, as one text.
pub(crate) fn all_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The exit code.
pub(crate) fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

/// Standard output as JSON.
pub(crate) fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The binary in `dir`, pointed at moto (and at no stack or AWS profile of the environment).
pub(crate) fn moto_command(dir: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(BIN);
    command
        .current_dir(dir)
        .env("AWS_ENDPOINT_URL", moto::endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("ML_CONNECTOR_STACK");
    command
}

/// The outputs `template.yaml` gives a stack (tables, secret prefix, `Queues`), pointing at
/// `env`.
pub(crate) fn stack_outputs(env: &AwsEnv) -> Value {
    let unique = &env.prefix;
    let queues = serde_json::json!({"mailchimp": {
        "url": env.pair.urls.url, "arn": env.pair.urls.arn,
        "dlq_url": env.pair.urls.dlq_url, "dlq_arn": env.pair.urls.dlq_arn,
    }});
    serde_json::json!({
        "AuditTableName": {"Value": format!("{unique}-audit")},
        "DeadLetterTableName": {"Value": format!("{unique}-dead-letters")},
        "StateTableName": {"Value": format!("{unique}-state")},
        "SecretPrefix": {"Value": format!("{unique}/")},
        "Queues": {"Value": queues.to_string()},
    })
}

/// Creates the stack `<env.prefix>-<suffix>` in moto with `outputs`; returns its name.
pub(crate) async fn create_stack(env: &AwsEnv, suffix: &str, outputs: Value) -> String {
    let name = format!("{}-{suffix}", env.prefix);
    let template = serde_json::json!({
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": format!("{name}-marker")}}},
        "Outputs": outputs,
    });
    let sdk = moto::sdk_config().await;
    aws_sdk_cloudformation::Client::new(&sdk)
        .create_stack()
        .stack_name(&name)
        .template_body(template.to_string())
        .send()
        .await
        .expect("moto creates the stack");
    name
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Serves the webhook routes over the scratch store, as `ml-connector dev` does; returns their
/// base (`http://127.0.0.1:<port>/webhooks`).
pub(crate) async fn webhook_server(scratch: &Scratch, freshbooks_base: &str) -> String {
    let (db, secrets) = scratch.open();
    let ports = Ports {
        queue: Arc::new(db.clone()),
        store: Arc::new(db),
        secrets: Arc::new(secrets),
        clock: Arc::new(SystemClock),
    };
    let clients = LiveClientsConfig {
        freshbooks_api_base: freshbooks_base.to_string(),
        ..LiveClientsConfig::default()
    };
    let handler = Arc::new(
        App::new(ports, clients)
            .webhook(WebhookConfig::default())
            .unwrap(),
    );
    let (listener, addr) = local::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    tokio::spawn(local::serve(handler, listener, std::future::pending()));
    format!("http://{addr}/webhooks")
}

/// The approval address `connect` prints on standard error, read from a running `child`
/// (spawned with `stderr(Stdio::piped())`); the rest of its standard error comes back too.
///
/// # Panics
/// When no address is printed within 30 s.
pub(crate) async fn printed_url(child: &mut Child) -> (String, Lines<BufReader<ChildStderr>>) {
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stderr.next_line().await.expect("reading stderr") {
            if let Some(i) = line.find("http") {
                return line[i..].trim().to_string();
            }
        }
        panic!("no authorize URL printed");
    })
    .await
    .expect("the authorize URL");
    (url, stderr)
}
