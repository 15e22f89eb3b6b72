//! `ml-connector dev`: the whole pipeline in one process over the embedded store — the webhook
//! routes on a local port (the handler the Lambda runs), a worker loop per target that has a
//! worker (Mailchimp, QuickBooks: the harness and flows the Lambdas run) and the poller's jobs
//! on timers (FreshBooks poll and token refresh, QuickBooks CDC sweep and token refresh) — with
//! the connections file applied from disk.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mlc::adapters::embedded::EmbeddedDb;
use mlc::app::{App, LiveClientsConfig, Ports};
use mlc::connections::ConnectionSet;
use mlc::poller::local::run_schedule;
use mlc::poller::{Job, PollerConfig};
use mlc::ports::{ConnectionStore, Queue, Secrets, SystemClock, secret_names};
use mlc::vendor::Vendor;
use mlc::vendors::freshbooks::callbacks;
use mlc::vendors::freshbooks::client::FreshbooksClient;
use mlc::webhook::callback_registration::{CallbackSpec, register_pending, wait_verified};
use mlc::webhook::{WebhookConfig, WebhookHandler, local};
use mlc::worker::local::{PollOptions, run_until};
use mlc::worker::{Harness, HarnessConfig};
use secrecy::SecretString;
use tokio::sync::watch;

use crate::clients::clients_config;
use crate::local_store::StoreArgs;
use crate::onboarding::mailchimp_webhook;
use mlc_sandbox::Sandboxes;
use mlc_sandbox::quickbooks::PayloadFormat;

/// How often a local message may be received before it moves to its dead-letter queue (the
/// stack's queues use the same count).
const MAX_RECEIVES: u32 = 5;

#[derive(clap::Args)]
pub struct DevArgs {
    /// The connections file to apply [default: connections.toml; with --sandbox, built-in
    /// FreshBooks → Mailchimp, QuickBooks → Mailchimp and Mailchimp → QuickBooks connections on
    /// the sandboxes].
    #[arg(long)]
    connections: Option<PathBuf>,
    /// Run the FreshBooks, QuickBooks and Mailchimp sandboxes in this process and point every
    /// connection at them: their credential sets are stored, FreshBooks callbacks registered
    /// and verified, the QuickBooks webhook and Mailchimp list webhooks set to the local routes.
    #[arg(long, conflicts_with_all = ["freshbooks_api", "mailchimp_api", "quickbooks_api"])]
    sandbox: bool,
    /// Address for the webhook routes.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// FreshBooks API base (e.g. a sandbox's `http://127.0.0.1:<port>`).
    #[arg(long, env = "FRESHBOOKS_API_BASE")]
    freshbooks_api: Option<String>,
    /// Mailchimp API base including `/3.0` (e.g. a sandbox's); default: from the key's data centre.
    #[arg(long, env = "MAILCHIMP_API_BASE")]
    mailchimp_api: Option<String>,
    /// QuickBooks API and token endpoint base (e.g. a sandbox's `http://127.0.0.1:<port>`);
    /// default: per credential set, Intuit's production or sandbox host.
    #[arg(long, env = "QUICKBOOKS_API_BASE")]
    quickbooks_api: Option<String>,
    /// Minutes between FreshBooks fallback polls (the stack's `PollSchedule`, 15 by default).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..))]
    poll_minutes: u64,
    /// Minutes between QuickBooks CDC sweeps (the stack's `QuickbooksCdcSchedule`, daily by
    /// default). The first sweep runs at start.
    #[arg(long, default_value_t = 24 * 60, value_parser = clap::value_parser!(u64).range(1..))]
    cdc_minutes: u64,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    mlc::observability::init(false);
    let (db, secrets) = args.store.open()?;
    let secrets: Arc<dyn Secrets> = Arc::new(secrets);
    // The sandboxes live as long as this function: dropping them stops their servers.
    let (set, source, sandboxes) = if args.sandbox {
        let sandboxes = Sandboxes::start()
            .await
            .map_err(|e| anyhow::anyhow!("starting the sandboxes: {e}"))?;
        let (set, source) = match &args.connections {
            Some(file) => (
                sandbox_set(ConnectionSet::load(file)?, &sandboxes),
                file.display().to_string(),
            ),
            None => (
                dev_sandbox_connections(&sandboxes)?,
                "the built-in sandbox connections".to_string(),
            ),
        };
        store_sandbox_credentials(secrets.as_ref(), &set, &sandboxes).await?;
        (set, source, Some(sandboxes))
    } else {
        let file = args
            .connections
            .clone()
            .unwrap_or_else(|| PathBuf::from("connections.toml"));
        (
            ConnectionSet::load(&file)?,
            file.display().to_string(),
            None,
        )
    };
    let clients_config = match &sandboxes {
        Some(s) => clients_config(
            Some(&s.freshbooks.base_url()),
            Some(&s.mailchimp.base_url()),
            Some(&s.quickbooks.base_url()),
        )?,
        None => clients_config(
            args.freshbooks_api.as_deref(),
            args.mailchimp_api.as_deref(),
            args.quickbooks_api.as_deref(),
        )?,
    };
    let pipeline = Local::new(db, secrets, clients_config)?;
    let queues = pipeline.apply(&set).await?;
    let (db, secrets, handler) = (&pipeline.db, pipeline.secrets(), &pipeline.handler);
    let (listener, addr) = local::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;

    println!(
        "ml-connector dev: {} connection(s) from {source}, store {}",
        set.connections.len(),
        args.store.db.display()
    );
    let server = {
        let handler = handler.clone();
        tokio::spawn(local::serve(handler, listener, async {
            let _ = tokio::signal::ctrl_c().await;
        }))
    };
    if let Some(sandboxes) = &sandboxes {
        let webhook_base = format!("http://{addr}/webhooks");
        let registered = register_freshbooks_callbacks(&pipeline, &set, &webhook_base).await?;
        println!(
            "  sandboxes: FreshBooks {} (account {}), QuickBooks {} (company {}), Mailchimp {} (audience {})",
            sandboxes.freshbooks.base_url(),
            sandboxes.account_id(),
            sandboxes.quickbooks.base_url(),
            sandboxes.realm_id(),
            sandboxes.mailchimp.base_url(),
            sandboxes.list_id
        );
        println!(
            "  {} FreshBooks callback(s) registered and verified:",
            registered.len()
        );
        for uri in &registered {
            println!("    POST {uri}");
        }
        for line in register_sandbox_webhooks(&pipeline, &set, sandboxes, &webhook_base).await? {
            println!("  {line}");
        }
        for (what, url) in sandboxes.control_urls() {
            println!("  {what}: {url}");
        }
    }
    // On the sandboxes every route is registered and listed above.
    let unregistered = if sandboxes.is_some() {
        BTreeMap::new()
    } else {
        routes(&set, addr)
    };
    for (route, secret) in unregistered {
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
        let Some(target) = pipeline.worker(queue)? else {
            println!("  queue {queue}: no worker for this target yet; events wait in the queue");
            continue;
        };
        let stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            run_until(&target, PollOptions::default(), stopped).await;
        }));
    }
    let poller = pipeline.app.poller(PollerConfig::default())?;
    // The stack's schedules: FreshBooks tokens every 30 minutes, QuickBooks' (1 hour) every 50.
    let schedule = [
        (
            Job::FreshbooksPoll,
            Duration::from_secs(args.poll_minutes * 60),
        ),
        (Job::TokenRefresh, Duration::from_secs(30 * 60)),
        (
            Job::QuickbooksCdc,
            Duration::from_secs(args.cdc_minutes * 60),
        ),
        (Job::QuickbooksTokenRefresh, Duration::from_secs(50 * 60)),
    ];
    {
        let stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            run_schedule(&poller, &schedule, stopped).await;
        }));
    }

    let watcher = tokio::spawn(watch_queues(db.clone(), queues.iter().cloned().collect()));
    server
        .await
        .context("the webhook server stopped")?
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

/// The local pipeline over one embedded store: what `dev` and `demo` both run, built by the
/// same [`App`] as the Lambdas.
pub(crate) struct Local {
    pub db: EmbeddedDb,
    pub app: App,
    /// The webhook routes (the handler the Lambda runs).
    pub handler: Arc<WebhookHandler>,
}

impl Local {
    /// Builds the app over `db`; the callback handshake is checked with FreshBooks at the
    /// clients' FreshBooks API base.
    pub fn new(
        db: EmbeddedDb,
        secrets: Arc<dyn Secrets>,
        clients_config: LiveClientsConfig,
    ) -> anyhow::Result<Self> {
        let ports = Ports {
            queue: Arc::new(db.clone()),
            store: Arc::new(db.clone()),
            secrets,
            clock: Arc::new(SystemClock),
        };
        // Connections are re-read every few seconds locally, so an `apply` shows at once.
        let app = App::new(ports, clients_config).with_connections_ttl(Duration::from_secs(5));
        let handler = Arc::new(app.webhook(WebhookConfig::default())?);
        Ok(Self { db, app, handler })
    }

    pub fn secrets(&self) -> &Arc<dyn Secrets> {
        &self.app.ports().secrets
    }

    /// The FreshBooks API base the clients use.
    pub fn freshbooks_api(&self) -> &str {
        &self.app.clients_config().freshbooks_api_base
    }

    /// The worker of a target queue, if a flow of this build writes to its target.
    pub fn worker(&self, queue: &str) -> anyhow::Result<Option<Harness>> {
        let Some(target) = queue.parse::<Vendor>().ok().filter(|t| App::has_worker(*t)) else {
            return Ok(None);
        };
        let mut config = HarnessConfig::new(queue);
        config.max_receives = MAX_RECEIVES;
        Ok(Some(self.app.worker(target, config)?))
    }

    /// Applies the connections and declares the target queues of the enabled ones; returns the
    /// queue names.
    pub async fn apply(&self, set: &ConnectionSet) -> anyhow::Result<BTreeSet<String>> {
        self.db
            .put_connections(set)
            .await
            .context("applying the connections")?;
        let queues: BTreeSet<String> = set
            .connections
            .values()
            .filter(|c| c.enabled)
            .map(|c| c.queue().to_string())
            .collect();
        for queue in &queues {
            self.db
                .declare_queue(queue, MAX_RECEIVES, Duration::from_secs(60))
                .await?;
        }
        Ok(queues)
    }
}

/// The connections file used on the sandboxes when none is given: the sandbox's FreshBooks
/// account into its audience, with an e-commerce store for the invoices.
pub(crate) fn sandbox_connections(sandboxes: &Sandboxes) -> anyhow::Result<ConnectionSet> {
    let text = format!(
        r#"
[connection.{SANDBOX_CONNECTION}]
source = {{ vendor = "freshbooks", account = "{account}", credentials = "freshbooks-sandbox" }}
target = {{ vendor = "mailchimp", credentials = "mailchimp-sandbox", list_id = "{list}", store_id = "{SANDBOX_STORE}" }}
"#,
        account = sandboxes.account_id(),
        list = sandboxes.list_id,
    );
    Ok(ConnectionSet::from_toml(&text, "sandbox connections")?)
}

/// `dev --sandbox`'s built-in connections: [`sandbox_connections`] plus the sandbox's
/// QuickBooks company into the same audience and that audience's list webhooks back into the
/// company (as notes on its customers).
fn dev_sandbox_connections(sandboxes: &Sandboxes) -> anyhow::Result<ConnectionSet> {
    let mut set = sandbox_connections(sandboxes)?;
    let text = format!(
        r#"
[connection.quickbooks-to-mailchimp]
source = {{ vendor = "quickbooks", account = "{realm}", credentials = "quickbooks-sandbox" }}
target = {{ vendor = "mailchimp", credentials = "mailchimp-sandbox", list_id = "{list}" }}
[connection.mailchimp-to-quickbooks]
source = {{ vendor = "mailchimp", account = "{list}", credentials = "mailchimp-sandbox" }}
target = {{ vendor = "quickbooks", credentials = "quickbooks-sandbox", realm_id = "{realm}" }}
"#,
        realm = sandboxes.realm_id(),
        list = sandboxes.list_id,
    );
    let quickbooks = ConnectionSet::from_toml(&text, "sandbox connections")?;
    set.connections.extend(quickbooks.connections);
    Ok(set)
}

/// Points the sandboxes' webhooks for the enabled QuickBooks and Mailchimp sources at the local
/// routes under `webhook_base`: the QuickBooks app's endpoint (signed CloudEvents, with a fresh
/// verifier token stored as the route's secret) and one list webhook per Mailchimp source list,
/// added as a user would paste it in Mailchimp (the sandbox validates it with a GET first, so
/// the routes must be serving). Returns a line per webhook, without secrets.
async fn register_sandbox_webhooks(
    pipeline: &Local,
    set: &ConnectionSet,
    sandboxes: &Sandboxes,
    webhook_base: &str,
) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    if set.for_vendor(Vendor::Quickbooks).next().is_some() {
        let token = uuid::Uuid::new_v4().simple().to_string();
        pipeline
            .secrets()
            .put(secret_names::QUICKBOOKS, &SecretString::from(token.clone()))
            .await
            .with_context(|| format!("storing `{}`", secret_names::QUICKBOOKS))?;
        let url = format!("{webhook_base}/quickbooks");
        sandboxes
            .quickbooks
            .set_webhook(&url, &token, PayloadFormat::CloudEvents);
        lines.push(format!(
            "QuickBooks webhook (company {}): POST {url}",
            sandboxes.realm_id()
        ));
    }
    for list in mailchimp_webhook::plans(set).into_keys() {
        let secret = mailchimp_webhook::secret(pipeline.secrets().as_ref(), &list).await?;
        sandboxes
            .mailchimp
            .add_list_webhook(&list, &mailchimp_webhook::url(webhook_base, &list, &secret))
            .await
            .map_err(|e| anyhow::anyhow!("adding the sandbox list webhook of `{list}`: {e:?}"))?;
        lines.push(format!(
            "Mailchimp list webhook (audience {list}): POST {webhook_base}/mailchimp/{list}/<secret>"
        ));
    }
    Ok(lines)
}

/// The built-in sandbox connection's name and Mailchimp store id.
pub(crate) const SANDBOX_CONNECTION: &str = "freshbooks-to-mailchimp";
pub(crate) const SANDBOX_STORE: &str = "sandbox-store";

/// A connections file bent onto the sandboxes: FreshBooks sources read the sandbox's account
/// (its ids are the sandbox's own), Mailchimp audiences are created in the sandbox, and
/// connections touching a vendor without a sandbox are disabled so nothing reaches a real
/// vendor.
fn sandbox_set(mut set: ConnectionSet, sandboxes: &Sandboxes) -> ConnectionSet {
    for (name, c) in set.connections.iter_mut() {
        let supported = |v: Vendor| {
            matches!(
                v,
                Vendor::Freshbooks | Vendor::Quickbooks | Vendor::Mailchimp
            )
        };
        if !supported(c.source.vendor) || !supported(c.target.vendor) {
            if c.enabled {
                println!(
                    "  connection {name}: no sandbox for {}/{}; disabled for this run",
                    c.source.vendor, c.target.vendor
                );
            }
            c.enabled = false;
            continue;
        }
        match c.source.vendor {
            Vendor::Freshbooks => c.source.account = Some(sandboxes.account_id().to_string()),
            Vendor::Quickbooks => c.source.account = Some(sandboxes.realm_id().to_string()),
            // A Mailchimp source's account is its list: created below like a target's.
            _ => {}
        }
        if c.target.vendor == Vendor::Quickbooks {
            c.target.realm_id = Some(sandboxes.realm_id().to_string());
        }
        if c.source.vendor == Vendor::Mailchimp
            && let Some(list) = &c.source.account
        {
            sandboxes
                .mailchimp
                .create_list(list, &format!("Audience {list}"));
        }
        for endpoint in [&c.source, &c.target] {
            if endpoint.vendor == Vendor::Mailchimp
                && let Some(list) = &endpoint.list_id
            {
                sandboxes
                    .mailchimp
                    .create_list(list, &format!("Audience {list}"));
            }
        }
    }
    set
}

/// Stores the sandboxes' credential sets under every name the enabled connections use.
pub(crate) async fn store_sandbox_credentials(
    secrets: &dyn Secrets,
    set: &ConnectionSet,
    sandboxes: &Sandboxes,
) -> anyhow::Result<()> {
    for c in set.connections.values().filter(|c| c.enabled) {
        for endpoint in [&c.source, &c.target] {
            let value = match endpoint.vendor {
                Vendor::Freshbooks => sandboxes.freshbooks_credentials_json(),
                Vendor::Quickbooks => sandboxes.quickbooks_credentials_json(),
                Vendor::Mailchimp => sandboxes.mailchimp_credentials_json(),
                _ => continue,
            };
            let name = secret_names::credentials(&endpoint.credentials);
            secrets
                .put(&name, &SecretString::from(value))
                .await
                .with_context(|| format!("storing `{name}`"))?;
        }
    }
    Ok(())
}

/// How long FreshBooks' verification handshake may take to reach the route.
const HANDSHAKE_WAIT: Duration = Duration::from_secs(20);

/// Registers a FreshBooks callback per event for every enabled FreshBooks source at the local
/// webhook routes, as `apply` does for a stack (its [`register_pending`]), under route ids
/// named after the connection; the handshake then reaches the webhook route, which verifies it
/// with FreshBooks. Returns the callbacks' URLs once every one is verified.
pub(crate) async fn register_freshbooks_callbacks(
    pipeline: &Local,
    set: &ConnectionSet,
    webhook_base: &str,
) -> anyhow::Result<Vec<String>> {
    let mut routes = Vec::new();
    let mut uris = Vec::new();
    for (name, c) in &set.connections {
        if !c.enabled || c.source.vendor != Vendor::Freshbooks {
            continue;
        }
        let account =
            c.source.account.as_deref().with_context(|| {
                format!("connection {name}: FreshBooks source without an account")
            })?;
        let client = FreshbooksClient::new(
            pipeline.freshbooks_api(),
            pipeline.app.clients()?.freshbooks_tokens(),
            &c.source.credentials,
        )?;
        for event in callbacks::EVENTS {
            let route_id = format!("{name}-{event}");
            let uri = format!("{webhook_base}/freshbooks/{account}/{route_id}");
            let spec = CallbackSpec {
                account,
                credentials: &c.source.credentials,
                event,
                route_id: &route_id,
                uri: &uri,
            };
            register_pending(
                &pipeline.db,
                pipeline.app.ports().clock.as_ref(),
                &client,
                &spec,
                None,
            )
            .await
            .with_context(|| format!("the FreshBooks `{event}` callback"))?;
            routes.push(route_id);
            uris.push(uri);
        }
    }
    let routes: Vec<&str> = routes.iter().map(String::as_str).collect();
    let verified = wait_verified(
        &pipeline.db,
        &routes,
        HANDSHAKE_WAIT,
        Duration::from_millis(50),
    )
    .await;
    let pending: Vec<&str> = routes
        .into_iter()
        .filter(|r| !verified.contains(r))
        .collect();
    if !pending.is_empty() {
        anyhow::bail!(
            "FreshBooks callbacks not verified within {HANDSHAKE_WAIT:?}: {}",
            pending.join(", ")
        );
    }
    Ok(uris)
}
