//! `ml-connector dev`: the whole pipeline in one process over the embedded store — the webhook
//! routes on a local port (the handler the Lambda runs), a worker loop per target that has a
//! worker (the harness and flows the Lambdas run) and the poller's jobs on timers — with the
//! connections file applied from disk.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mlc::adapters::embedded::EmbeddedDb;
use mlc::connections::{CachedConnections, ConnectionSet};
use mlc::flows::live_clients::{LiveClients, LiveClientsConfig};
use mlc::flows::mailchimp_target::MailchimpTarget;
use mlc::poller::local::run_schedule;
use mlc::poller::{Job, Poller, PollerConfig, PollerDeps};
use mlc::ports::{Clock, ConnectionStore, Queue, Secrets, Store, SystemClock};
use mlc::vendor::Vendor;
use mlc::vendors::freshbooks::callbacks::CallbacksClient;
use mlc::webhook::{WebhookConfig, WebhookDeps, WebhookHandler, local, secret_names};
use mlc::worker::local::{PollOptions, run_until};
use mlc::worker::{Harness, HarnessConfig, TargetHandler};
use tokio::sync::watch;

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
    /// FreshBooks API base (e.g. a sandbox's `http://127.0.0.1:<port>`).
    #[arg(long, env = "FRESHBOOKS_API_BASE")]
    freshbooks_api: Option<String>,
    /// Mailchimp API base including `/3.0` (e.g. a sandbox's); default: from the key's data centre.
    #[arg(long, env = "MAILCHIMP_API_BASE")]
    mailchimp_api: Option<String>,
    /// Minutes between FreshBooks fallback polls (the stack's `PollSchedule`, 15 by default).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..))]
    poll_minutes: u64,
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
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let secrets: Arc<dyn Secrets> = Arc::new(secrets);
    let mut clients_config = LiveClientsConfig::from_env()?;
    if let Some(base) = &args.freshbooks_api {
        clients_config.freshbooks_api_base = base.clone();
    }
    if let Some(base) = &args.mailchimp_api {
        clients_config.mailchimp.base_url = Some(base.clone());
    }
    let clients = Arc::new(LiveClients::new(
        secrets.clone(),
        Arc::new(db.clone()),
        clock.clone(),
        clients_config,
    )?);
    let freshbooks = match &args.freshbooks_api {
        Some(base) => CallbacksClient::with_base_url(base)?,
        None => CallbacksClient::new(),
    };
    let deps = WebhookDeps {
        queue: Arc::new(db.clone()),
        store: Arc::new(db.clone()),
        secrets: secrets.clone(),
        clock: clock.clone(),
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

    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for queue in &queues {
        let Some(target) = worker_for(queue, &db, &clients, &clock) else {
            println!("  queue {queue}: no worker for this target yet; events wait in the queue");
            continue;
        };
        let stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            run_until(&target, PollOptions::default(), stopped).await;
        }));
    }
    let poller = Poller::new(
        PollerDeps {
            queue: Arc::new(db.clone()),
            store: Arc::new(db.clone()),
            clock: clock.clone(),
            clients: clients.clone(),
            tokens: clients.freshbooks_tokens(),
        },
        PollerConfig::default(),
    );
    let schedule = [
        (
            Job::FreshbooksPoll,
            Duration::from_secs(args.poll_minutes * 60),
        ),
        (Job::TokenRefresh, Duration::from_secs(30 * 60)),
    ];
    {
        let stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            run_schedule(&poller, &schedule, stopped).await;
        }));
    }

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
    // Workers finish the batch in hand, so nothing is left half-applied.
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    println!(
        "stopped; queued events stay in {} for the next run",
        args.store.db.display()
    );
    Ok(())
}

/// The worker for a target queue, if the target has one.
fn worker_for(
    queue: &str,
    db: &EmbeddedDb,
    clients: &Arc<LiveClients>,
    clock: &Arc<dyn Clock>,
) -> Option<Harness> {
    let store: Arc<dyn Store> = Arc::new(db.clone());
    let handler: Arc<dyn TargetHandler> = match queue {
        "mailchimp" => Arc::new(MailchimpTarget::new(
            Arc::new(CachedConnections::new(
                Arc::new(db.clone()),
                Duration::from_secs(5),
            )),
            clients.clone(),
            store.clone(),
            clock.clone(),
        )),
        _ => return None,
    };
    let mut config = HarnessConfig::new(queue);
    config.max_receives = MAX_RECEIVES;
    Some(Harness::new(
        Arc::new(db.clone()),
        store,
        clock.clone(),
        handler,
        config,
    ))
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
async fn watch_queues(queue: EmbeddedDb, names: Vec<String>) {
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
