//! Helpers the CLI's onboarding binary tests share: the binary run as a user runs it, a local
//! store in a scratch directory, and the webhook routes served over that store.

// Each test binary compiles this module and uses its own share of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mlc::adapters::embedded::{EmbeddedDb, EmbeddedSecrets};
use mlc::ports::{Secrets, SystemClock};
use mlc::vendors::freshbooks::callbacks::CallbacksClient;
use mlc::webhook::{WebhookConfig, WebhookDeps, WebhookHandler, local};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_ml-connector");

/// A scratch directory holding the local store; removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "mlc-onboarding-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn db(&self) -> PathBuf {
        self.0.join("local.db")
    }

    /// The store's path as a command-line argument.
    pub fn db_arg(&self) -> String {
        self.db().display().to_string()
    }

    /// Writes `text` to `name` in the directory.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn open(&self) -> (EmbeddedDb, EmbeddedSecrets) {
        let db = EmbeddedDb::open(self.db(), Arc::new(SystemClock)).unwrap();
        let secrets = EmbeddedSecrets::open(&db).unwrap();
        (db, secrets)
    }

    pub async fn put_secret(&self, name: &str, value: &str) {
        let (_, secrets) = self.open();
        secrets
            .put(name, &SecretString::from(value.to_string()))
            .await
            .unwrap();
    }

    pub async fn secret(&self, name: &str) -> Option<String> {
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
pub async fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("FRESHBOOKS_API_BASE")
        .env_remove("MAILCHIMP_API_BASE")
        .env_remove("QUICKBOOKS_API_BASE")
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
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Serves the webhook routes over the scratch store, as `ml-connector dev` does; returns their
/// base (`http://127.0.0.1:<port>/webhooks`).
pub async fn webhook_server(scratch: &Scratch, freshbooks_base: &str) -> String {
    let (db, secrets) = scratch.open();
    let deps = WebhookDeps {
        queue: Arc::new(db.clone()),
        store: Arc::new(db.clone()),
        secrets: Arc::new(secrets),
        clock: Arc::new(SystemClock),
        freshbooks: Arc::new(CallbacksClient::with_base_url(freshbooks_base).unwrap()),
    };
    let handler = Arc::new(WebhookHandler::new(deps, WebhookConfig::default()));
    let (listener, addr) = local::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    tokio::spawn(local::serve(handler, listener, std::future::pending()));
    format!("http://{addr}/webhooks")
}

/// The approval address `connect` prints on standard error, read from a running `child`
/// (spawned with `stderr(Stdio::piped())`); the rest of its standard error comes back too.
///
/// # Panics
/// When no address is printed within 30 s.
pub async fn printed_url(child: &mut Child) -> (String, Lines<BufReader<ChildStderr>>) {
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
