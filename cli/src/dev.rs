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
use mlc::ports::{ConnectionStore, Queue, Secrets, SystemClock};
use mlc::vendor::Vendor;
use mlc::vendors;
use mlc::vendors::spec::needed_routes;
use mlc::webhook::{WebhookConfig, WebhookHandler, local};
use mlc::worker::local::{PollOptions, run_until};
use mlc::worker::{Harness, HarnessConfig};
use tokio::sync::watch;

use crate::clients::clients_config;
use crate::local_store::StoreArgs;

#[cfg(not(feature = "sandbox"))]
mod no_sandbox;
#[cfg(feature = "sandbox")]
pub(crate) mod sandbox;

#[cfg(not(feature = "sandbox"))]
use no_sandbox::DevSandboxes;
#[cfg(feature = "sandbox")]
use sandbox::DevSandboxes;

/// How often a local message may be received before it moves to its dead-letter queue (the
/// stack's queues use the same count).
const MAX_RECEIVES: u32 = 5;

#[derive(clap::Args)]
pub(crate) struct DevArgs {
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
    /// Minutes between FreshBooks fallback polls (the stack's `FreshbooksPollSchedule`, 15 by
    /// default).
    #[arg(long, default_value_t = SCHEDULES[0].default_minutes, value_parser = clap::value_parser!(u64).range(1..))]
    poll_minutes: u64,
    /// Minutes between QuickBooks CDC sweeps (the stack's `QuickbooksCdcSchedule`, daily by
    /// default). The first sweep runs at start.
    #[arg(long, default_value_t = SCHEDULES[2].default_minutes, value_parser = clap::value_parser!(u64).range(1..))]
    cdc_minutes: u64,
    #[command(flatten)]
    store: StoreArgs,
}

/// One poller job on `dev`'s timers: the `template.yaml` parameter that schedules it on a stack,
/// that parameter's default `rate(…)` in minutes, and the `dev` flag that overrides it, if any.
/// The tests hold the rows to the template and to the flags' defaults and help.
struct Schedule {
    job: Job,
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "the tests check it against template.yaml")
    )]
    parameter: &'static str,
    default_minutes: u64,
    /// Reads the flag's value from the arguments.
    flag: Option<fn(&DevArgs) -> u64>,
}

impl Schedule {
    const fn new(job: Job, parameter: &'static str, default_minutes: u64) -> Self {
        Self {
            job,
            parameter,
            default_minutes,
            flag: None,
        }
    }

    const fn flag(mut self, minutes: fn(&DevArgs) -> u64) -> Self {
        self.flag = Some(minutes);
        self
    }

    /// How often `dev` runs the job: the flag's value, or the stack's default.
    fn every(&self, args: &DevArgs) -> Duration {
        let minutes = self.flag.map_or(self.default_minutes, |f| f(args));
        Duration::from_secs(minutes * 60)
    }
}

/// The stack's poller schedules, as `dev` runs them (the first run of each at start). The
/// defaults of `--poll-minutes` and `--cdc-minutes` are rows 0 and 2.
const SCHEDULES: [Schedule; 4] = [
    Schedule::new(Job::FreshbooksPoll, "FreshbooksPollSchedule", 15).flag(|a| a.poll_minutes),
    Schedule::new(Job::TokenRefresh, "TokenRefreshSchedule", 30),
    Schedule::new(Job::QuickbooksCdc, "QuickbooksCdcSchedule", 24 * 60).flag(|a| a.cdc_minutes),
    Schedule::new(
        Job::QuickbooksTokenRefresh,
        "QuickbooksTokenRefreshSchedule",
        50,
    ),
];

/// The poller's timers for this run.
fn poller_schedule(args: &DevArgs) -> Vec<(Job, Duration)> {
    SCHEDULES.iter().map(|s| (s.job, s.every(args))).collect()
}

pub(crate) async fn run(args: DevArgs) -> anyhow::Result<()> {
    mlc::observability::init(false);
    let setup = Setup::build(&args).await?;
    let (listener, addr) = local::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    println!(
        "ml-connector dev: {} connection(s) from {}, store {}",
        setup.set.connections.len(),
        setup.source,
        args.store.db.display()
    );
    let server = tokio::spawn(local::serve(
        setup.pipeline.handler.clone(),
        listener,
        ctrl_c(),
    ));
    setup.announce_routes(addr).await?;
    println!("Press Ctrl-C to stop.");

    let (stop, stopped) = watch::channel(false);
    let mut tasks = spawn_workers(&setup.pipeline, &setup.queues, &stopped)?;
    tasks.push(spawn_poller(
        &setup.pipeline,
        poller_schedule(&args),
        stopped,
    )?);
    let watcher = tokio::spawn(watch_queues(
        setup.pipeline.db.clone(),
        setup.queues.iter().cloned().collect(),
    ));
    let sweeper = tokio::spawn(sweep_expired(setup.pipeline.db.clone()));
    server
        .await
        .context("the webhook server stopped")?
        .context("serving webhooks")?;
    watcher.abort();
    sweeper.abort();
    stop_tasks(stop, tasks).await;
    println!(
        "stopped; queued events stay in {} for the next run",
        args.store.db.display()
    );
    Ok(())
}

/// What `dev` runs, built from its arguments. Fields drop in order: the pipeline before the
/// sandboxes it talks to.
struct Setup {
    pipeline: Local,
    /// The target queues of the enabled connections.
    queues: BTreeSet<String>,
    /// The applied connections, and where they came from.
    set: ConnectionSet,
    source: String,
    /// With `--sandbox`: they live as long as the run (dropping them stops their servers).
    sandboxes: Option<DevSandboxes>,
}

impl Setup {
    /// Opens the store, reads the connections (onto the sandboxes with `--sandbox`, whose
    /// credential sets are then stored), builds the pipeline and applies the connections.
    async fn build(args: &DevArgs) -> anyhow::Result<Self> {
        let (db, secrets) = args.store.open()?;
        let secrets: Arc<dyn Secrets> = Arc::new(secrets);
        let (set, source, sandboxes) = if args.sandbox {
            let (set, source, sandboxes) = DevSandboxes::start(args.connections.as_deref()).await?;
            sandboxes.store_credentials(secrets.as_ref(), &set).await?;
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
            Some(sandboxes) => sandboxes.clients_config()?,
            None => clients_config(
                args.freshbooks_api.as_deref(),
                args.mailchimp_api.as_deref(),
                args.quickbooks_api.as_deref(),
            )?,
        };
        let pipeline = Local::new(db, secrets, clients_config)?;
        let queues = pipeline.apply(&set).await?;
        Ok(Self {
            set,
            source,
            sandboxes,
            pipeline,
            queues,
        })
    }

    /// Prints the webhook routes at `addr`: on the sandboxes, registered there first (and
    /// listed with the sandboxes' control URLs); otherwise each with what it still needs.
    async fn announce_routes(&self, addr: SocketAddr) -> anyhow::Result<()> {
        let webhook_base = format!("http://{addr}/webhooks");
        match &self.sandboxes {
            Some(sandboxes) => {
                sandboxes
                    .announce(&self.pipeline, &self.set, &webhook_base)
                    .await
            }
            None => print_route_states(self.pipeline.secrets().as_ref(), &self.set, addr).await,
        }
    }
}

/// Prints every webhook route the connections need, with whether its secret is there yet.
async fn print_route_states(
    secrets: &dyn Secrets,
    set: &ConnectionSet,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    for (route, secret) in routes(set, addr) {
        let state = match secrets.get(&secret).await? {
            Some(_) => "ready".to_string(),
            None if secret.starts_with("webhook/freshbooks/") => {
                "waiting for FreshBooks' verification handshake".to_string()
            }
            None => format!("needs secret `{secret}`: ml-connector secrets put {secret} < file"),
        };
        println!("  {route}  ({state})");
    }
    Ok(())
}

type Task = tokio::task::JoinHandle<()>;

async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Stops the workers and the poller; workers finish the batch in hand, so nothing is left
/// half-applied.
async fn stop_tasks(stop: watch::Sender<bool>, tasks: Vec<Task>) {
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
}

/// A worker loop per target queue that has a worker in this build; the others are listed.
fn spawn_workers(
    pipeline: &Local,
    queues: &BTreeSet<String>,
    stopped: &watch::Receiver<bool>,
) -> anyhow::Result<Vec<Task>> {
    let mut tasks = Vec::new();
    for queue in queues {
        let Some(target) = pipeline.worker(queue)? else {
            println!("  queue {queue}: no worker for this target yet; events wait in the queue");
            continue;
        };
        let stopped = stopped.clone();
        let options = PollOptions {
            max_messages: queue
                .parse::<Vendor>()
                .map_or(PollOptions::default().max_messages, |v| {
                    vendors::spec(v).worker_batch
                }),
            ..PollOptions::default()
        };
        tasks.push(tokio::spawn(async move {
            run_until(&target, options, stopped).await;
        }));
    }
    Ok(tasks)
}

/// The poller's jobs on their timers, until `stopped`.
fn spawn_poller(
    pipeline: &Local,
    schedule: Vec<(Job, Duration)>,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<Task> {
    let poller = pipeline.app.poller(PollerConfig::default())?;
    Ok(tokio::spawn(async move {
        run_schedule(&poller, &schedule, stopped).await;
    }))
}

/// The local URL of every webhook route the connections need, with the secret that verifies it.
fn routes(set: &ConnectionSet, addr: SocketAddr) -> BTreeMap<String, String> {
    needed_routes(set)
        .into_iter()
        .map(|r| {
            (
                format!("POST http://{addr}/webhooks/{}", r.path()),
                r.secret(),
            )
        })
        .collect()
}

/// How often `dev` deletes expired rows from its store.
const SWEEP_EVERY: Duration = Duration::from_secs(60 * 60);

/// Deletes the store's expired rows (audit items, dead letters, idempotency records, leases,
/// blobs) at start and then every [`SWEEP_EVERY`], as DynamoDB's TTL does for a stack: reads
/// already hide them, so this only keeps a long-running local store from growing.
async fn sweep_expired(db: EmbeddedDb) {
    loop {
        match db.purge_expired().await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "expired rows deleted from the local store"),
            Err(e) => tracing::warn!(error = %e, "could not delete expired rows; will try again"),
        }
        tokio::time::sleep(SWEEP_EVERY).await;
    }
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
    pub(crate) fn new(
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

    pub(crate) fn secrets(&self) -> &Arc<dyn Secrets> {
        &self.app.ports().secrets
    }

    /// The FreshBooks API base the clients use.
    #[cfg(feature = "sandbox")]
    pub(crate) fn freshbooks_api(&self) -> &str {
        &self.app.clients_config().freshbooks_api_base
    }

    /// The worker of a target queue, if a flow of this build writes to its target.
    pub(crate) fn worker(&self, queue: &str) -> anyhow::Result<Option<Harness>> {
        let Some(target) = queue.parse::<Vendor>().ok().filter(|t| App::has_worker(*t)) else {
            return Ok(None);
        };
        let mut config = HarnessConfig::new(queue);
        config.max_receives = MAX_RECEIVES;
        Ok(Some(self.app.worker(target, config)?))
    }

    /// Applies the connections and declares the target queues of the enabled ones; returns the
    /// queue names.
    pub(crate) async fn apply(&self, set: &ConnectionSet) -> anyhow::Result<BTreeSet<String>> {
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Duration;

    use clap::{CommandFactory, Parser};
    use mlc::poller::Job;

    use super::{DevArgs, SCHEDULES};

    /// The stack's template, whose schedules `dev` mirrors.
    const TEMPLATE: &str = include_str!("../../template.yaml");

    /// `template.yaml`'s parameters and their defaults (`None`: no default).
    fn parameters() -> BTreeMap<&'static str, Option<&'static str>> {
        let mut parameters = BTreeMap::new();
        let mut current = None;
        let section = TEMPLATE
            .lines()
            .skip_while(|l| *l != "Parameters:")
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with(' ') || l.starts_with('#'));
        for line in section {
            if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
                && !name.starts_with([' ', '#'])
            {
                parameters.insert(name, None);
                current = Some(name);
            } else if let (Some(name), Some(default)) =
                (current, line.strip_prefix("    Default: "))
            {
                parameters.insert(name, Some(default.trim()));
            }
        }
        parameters
    }

    /// Every poller job `template.yaml` schedules, with the parameter its schedule reads.
    fn scheduled_jobs() -> BTreeSet<(String, &'static str)> {
        let mut jobs = BTreeSet::new();
        let mut parameter = None;
        for line in TEMPLATE.lines().map(str::trim) {
            if let Some(p) = line.strip_prefix("ScheduleExpression: !Ref ") {
                parameter = Some(p.trim());
            } else if let Some(input) = line.strip_prefix("Input: ") {
                let input: serde_json::Value =
                    serde_json::from_str(input.trim_matches('\'')).expect("a JSON input");
                let job = input["job"].as_str().expect("a job name");
                let job = job.parse::<Job>().expect("a job the poller knows");
                jobs.insert((
                    job.to_string(),
                    parameter.take().expect("an input after a schedule"),
                ));
            }
        }
        jobs
    }

    /// A `rate(N minute(s)|hour(s)|day(s))` expression in minutes.
    fn rate_minutes(expression: &str) -> Option<u64> {
        let inner = expression.strip_prefix("rate(")?.strip_suffix(')')?;
        let (n, unit) = inner.split_once(' ')?;
        let per = match unit.trim_end_matches('s') {
            "minute" => 1,
            "hour" => 60,
            "day" => 24 * 60,
            _ => return None,
        };
        Some(n.parse::<u64>().ok()? * per)
    }

    #[test]
    fn every_schedule_is_a_template_parameter_with_the_same_default() {
        let parameters = parameters();
        assert!(
            parameters.contains_key("FreshbooksPollSchedule"),
            "{parameters:?}"
        );
        for s in &SCHEDULES {
            let default = parameters
                .get(s.parameter)
                .unwrap_or_else(|| panic!("template.yaml has no parameter `{}`", s.parameter))
                .unwrap_or_else(|| panic!("`{}` has no default", s.parameter));
            assert_eq!(
                rate_minutes(default),
                Some(s.default_minutes),
                "`{}` defaults to {default}; dev's {} runs every {} minutes",
                s.parameter,
                s.job,
                s.default_minutes
            );
        }
    }

    #[test]
    fn every_job_the_template_schedules_is_in_the_table_under_its_parameter() {
        let template = scheduled_jobs();
        let table: BTreeSet<(String, &str)> = SCHEDULES
            .iter()
            .map(|s| (s.job.to_string(), s.parameter))
            .collect();
        assert!(!template.is_empty());
        assert_eq!(template, table);
        assert_eq!(SCHEDULES.len(), table.len(), "a job scheduled twice");
    }

    #[derive(Parser)]
    struct Dev {
        #[command(flatten)]
        args: DevArgs,
    }

    fn parse(flags: &[&str]) -> DevArgs {
        let argv = std::iter::once("dev").chain(flags.iter().copied());
        Dev::try_parse_from(argv).expect("dev's arguments").args
    }

    #[test]
    fn without_flags_every_job_runs_at_the_stack_default() {
        let args = parse(&[]);
        for s in &SCHEDULES {
            assert_eq!(
                s.every(&args),
                Duration::from_secs(s.default_minutes * 60),
                "{}",
                s.job
            );
        }
    }

    /// Each flag's help names the parameter of the schedule it sets, and it sets that one.
    #[test]
    fn each_flag_names_and_sets_its_schedule() {
        let command = Dev::command();
        for (i, s) in SCHEDULES
            .iter()
            .enumerate()
            .filter(|(_, s)| s.flag.is_some())
        {
            let flags: Vec<&str> = command
                .get_arguments()
                .filter(|a| {
                    a.get_help()
                        .is_some_and(|h| h.to_string().contains(&format!("`{}`", s.parameter)))
                })
                .filter_map(|a| a.get_long())
                .collect();
            assert_eq!(flags.len(), 1, "flags naming `{}`: {flags:?}", s.parameter);
            let flag = format!("--{}", flags[0]);
            let args = parse(&[&flag, "7"]);
            for (j, other) in SCHEDULES.iter().enumerate() {
                let minutes = if i == j { 7 } else { other.default_minutes };
                assert_eq!(
                    other.every(&args),
                    Duration::from_secs(minutes * 60),
                    "{flag}"
                );
            }
        }
    }
}
