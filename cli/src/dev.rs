//! `ml-connector dev`: the webhook routes on a local port over the embedded store — the same
//! handler the Lambda runs — with the connections file applied from disk.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mlc::connections::ConnectionSet;
use mlc::ports::{ConnectionStore, Queue, Secrets, SystemClock};
use mlc::vendor::Vendor;
use mlc::vendors::freshbooks::callbacks::CallbacksClient;
use mlc::webhook::{WebhookConfig, WebhookDeps, WebhookHandler, local, secret_names};

use crate::local_store::StoreArgs;

/// How often a local message may be received before it moves to its dead-letter queue (the
/// stack's queues use the same count).
const MAX_RECEIVES: u32 = 5;

#[derive(clap::Args)]
pub struct DevArgs {
    /// The connections file to apply.
    #[arg(long, default_value = "connections.toml")]
    connections: PathBuf,
    /// Address for the webhook routes.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// FreshBooks API base for the callback handshake (e.g. a sandbox).
    #[arg(long, env = "FRESHBOOKS_API_BASE")]
    freshbooks_api: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    mlc::observability::init(false);
    let set = ConnectionSet::load(&args.connections)?;
    let (db, secrets) = args.store.open()?;
    db.put_connections(&set)
        .await
        .context("applying the connections")?;
    let queues: BTreeSet<&str> = set.connections.values().map(|c| c.queue()).collect();
    for queue in &queues {
        db.declare_queue(queue, MAX_RECEIVES, Duration::from_secs(60))
            .await?;
    }
    let freshbooks = match &args.freshbooks_api {
        Some(base) => CallbacksClient::with_base_url(base)?,
        None => CallbacksClient::new(),
    };
    let secrets = Arc::new(secrets);
    let deps = WebhookDeps {
        queue: Arc::new(db.clone()),
        store: Arc::new(db.clone()),
        secrets: secrets.clone(),
        clock: Arc::new(SystemClock),
        freshbooks: Arc::new(freshbooks),
    };
    let handler = Arc::new(WebhookHandler::new(deps, WebhookConfig::default()));
    let (listener, addr) = local::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;

    println!(
        "ml-connector dev: {} connection(s) from {}, store {}",
        set.connections.len(),
        args.connections.display(),
        args.store.db.display()
    );
    for (route, secret) in routes(&set, addr) {
        let state = match secrets.get(&secret).await? {
            Some(_) => "ready".to_string(),
            None if secret.starts_with("webhook/freshbooks/") => {
                "waiting for FreshBooks' verification handshake".to_string()
            }
            None => format!("needs secret `{secret}`: ml-connector secrets put {secret} < file"),
        };
        println!("  {route}  ({state})");
    }
    println!("Press Ctrl-C to stop.");

    let watcher = tokio::spawn(watch_queues(
        db.clone(),
        queues.iter().map(|q| q.to_string()).collect(),
    ));
    local::serve(handler, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("serving webhooks")?;
    watcher.abort();
    println!(
        "stopped; queued events stay in {} for the next run",
        args.store.db.display()
    );
    Ok(())
}

/// The local URL of every webhook route the connections need, with the secret that verifies it.
fn routes(set: &ConnectionSet, addr: SocketAddr) -> BTreeMap<String, String> {
    let base = format!("http://{addr}/webhooks");
    let mut routes = BTreeMap::new();
    for c in set.connections.values().filter(|c| c.enabled) {
        let account = c.source.account.clone().unwrap_or_default();
        let (route, secret) = match c.source.vendor {
            Vendor::Freshbooks => (
                format!("POST {base}/freshbooks/{account}/<route>"),
                secret_names::freshbooks(&account, "<route>"),
            ),
            Vendor::Quickbooks => (
                format!("POST {base}/quickbooks"),
                secret_names::QUICKBOOKS.to_string(),
            ),
            Vendor::Stripe => (
                format!("POST {base}/stripe/{account}"),
                secret_names::stripe(&account),
            ),
            Vendor::Mailchimp => (
                format!("POST {base}/mailchimp/{account}/<secret>"),
                secret_names::mailchimp(&account),
            ),
            Vendor::Hubspot | Vendor::Marketo => continue,
        };
        routes.insert(route, secret);
    }
    routes
}

/// Prints a line whenever a queue's depth changes, so a delivery is visible as it lands.
async fn watch_queues(queue: mlc::adapters::embedded::EmbeddedDb, names: Vec<String>) {
    let mut last = BTreeMap::new();
    loop {
        for name in &names {
            if let Ok(depth) = queue.depth(name).await
                && last.insert(name.clone(), depth) != Some(depth)
            {
                println!(
                    "  queue {name}: {} waiting, {} in flight, {} dead-lettered",
                    depth.visible, depth.in_flight, depth.dead
                );
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
