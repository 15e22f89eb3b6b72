//! `ml-connector demo`: FreshBooks → Mailchimp end to end on this machine, in one process and
//! under a minute. The FreshBooks and Mailchimp sandboxes, the webhook routes on a loopback
//! port and the Mailchimp worker run over a temporary embedded store; sample FreshBooks data
//! makes the sandbox send real signed webhooks to the routes, and each event is shown as it is
//! received, queued and synced. It ends with what Mailchimp holds, one record's audit trail and
//! a check that everything arrived: any miss is a non-zero exit.
//!
//! The poller is not run: the demo shows the webhook path, and a fallback poll landing in the
//! middle would add events the walkthrough does not explain.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use mlc::connections::ConnectionSet;
use mlc::ports::{AuditEntry, AuditLog, DeadLetterStatus, DeadLetters, Queue};
use mlc::webhook::local;
use mlc::worker::local::{PollOptions, run_until};
use mlc_sandbox::Sandboxes;
use mlc_sandbox::freshbooks::{ClientSpec, FreshbooksSandbox, InvoiceSpec, LineSpec, Webhooks};
use mlc_sandbox::mailchimp::{OrderState, StoreState};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clients::clients_config;
use crate::dev::{self, Local};
use crate::local_store::StoreArgs;

#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// Give up (and exit non-zero) if the demo has not finished after this many seconds.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(5..))]
    timeout: u64,
}

/// How long one step may take to reach Mailchimp.
const STEP_LIMIT: Duration = Duration::from_secs(30);

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    // The walkthrough is the output: only warnings and errors from the pipeline itself.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
    let dir = TempDir::create()?;
    let limit = Duration::from_secs(args.timeout);
    let outcome = tokio::time::timeout(limit, demo(dir.path())).await;
    drop(dir);
    match outcome {
        Ok(result) => result,
        Err(_) => bail!("the demo did not finish within {}s", args.timeout),
    }
}

/// A directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn create() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "ml-connector-demo-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One sample client: what FreshBooks gets and what Mailchimp should end with.
struct SampleClient {
    fname: &'static str,
    lname: &'static str,
    email: &'static str,
}

const CLIENTS: [SampleClient; 3] = [
    SampleClient {
        fname: "Jane",
        lname: "Doe",
        email: "jane@example.com",
    },
    SampleClient {
        fname: "Sam",
        lname: "Lee",
        email: "sam@example.com",
    },
    SampleClient {
        fname: "Ada",
        lname: "Byron",
        email: "ada@example.com",
    },
];

/// An invoice line: name, quantity, unit cost.
type Line = (&'static str, &'static str, &'static str);

/// The invoices sent in step 2: the client (an index into [`CLIENTS`]) and the lines.
const INVOICES: [(usize, &[Line]); 4] = [
    (
        0,
        &[("Consulting", "2", "150.00"), ("Hosting", "1", "20.00")],
    ),
    (1, &[("Design", "1", "800.00")]),
    (2, &[("Training", "3", "120.00")]),
    (0, &[("Support plan", "1", "99.00")]),
];

/// Sam's new address (the email change step).
const SAM_NEW_EMAIL: &str = "sam.lee@example.org";

async fn demo(dir: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    println!("ml-connector demo: FreshBooks → Mailchimp, end to end on this machine\n");
    let rig = Rig::build(dir).await?;
    let (listener, addr) = local::bind("127.0.0.1:0".parse().context("an address")?)
        .await
        .context("binding the webhook port")?;
    let tasks = Tasks::spawn(&rig, listener)?;
    rig.print(addr);
    let webhook_base = format!("http://{addr}/webhooks");
    let registered =
        dev::sandbox::register_freshbooks_callbacks(&rig.pipeline, &rig.set, &webhook_base).await?;
    println!(
        "  {} FreshBooks callbacks registered; each verified by FreshBooks' signed handshake through the route\n",
        registered.len()
    );

    let mut watch = Watch::new(&rig.sandboxes, &rig.pipeline, started);
    let result = walkthrough(&rig.sandboxes, &rig.pipeline, &mut watch).await;
    tasks.stop().await;
    result?;
    print_done(started, &watch);
    Ok(())
}

/// The demo's sandboxes and local pipeline over the temporary store, with the built-in
/// sandbox connection applied.
/// Fields drop in order: the pipeline before the sandboxes it talks to.
struct Rig {
    pipeline: Local,
    queues: BTreeSet<String>,
    set: ConnectionSet,
    db_path: PathBuf,
    sandboxes: Sandboxes,
}

impl Rig {
    async fn build(dir: &Path) -> anyhow::Result<Self> {
        let sandboxes = Sandboxes::start()
            .await
            .map_err(|e| anyhow::anyhow!("starting the sandboxes: {e}"))?;
        let db_path = dir.join("demo.db");
        let (db, secrets) = StoreArgs {
            db: db_path.clone(),
        }
        .open()?;
        let secrets = Arc::new(secrets);
        let set = dev::sandbox::sandbox_connections(&sandboxes)?;
        dev::sandbox::store_sandbox_credentials(secrets.as_ref(), &set, &sandboxes).await?;
        let clients_config = clients_config(
            Some(&sandboxes.freshbooks.base_url()),
            Some(&sandboxes.mailchimp.base_url()),
            None,
        )?;
        let pipeline = Local::new(db, secrets, clients_config)?;
        let queues = pipeline.apply(&set).await?;
        Ok(Self {
            sandboxes,
            db_path,
            set,
            pipeline,
            queues,
        })
    }

    /// Where everything runs, with the webhook routes at `addr`.
    fn print(&self, addr: SocketAddr) {
        println!(
            "  FreshBooks sandbox  {}  (account {})",
            self.sandboxes.freshbooks.base_url(),
            self.sandboxes.account_id()
        );
        println!(
            "  Mailchimp sandbox   {}  (audience {})",
            self.sandboxes.mailchimp.base_url(),
            self.sandboxes.list_id
        );
        println!("  webhook routes      http://{addr}/webhooks  (the Lambda's handler)");
        println!(
            "  store               {} (temporary)",
            self.db_path.display()
        );
    }
}

/// The webhook routes and a worker per target queue, running until [`Tasks::stop`].
struct Tasks {
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl Tasks {
    fn spawn(rig: &Rig, listener: TcpListener) -> anyhow::Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let server = {
            let handler = rig.pipeline.handler.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(local::serve(handler, listener, async move {
                let _ = stopped.wait_for(|s| *s).await;
            }))
        };
        let mut workers = Vec::new();
        for queue in &rig.queues {
            let harness = rig
                .pipeline
                .worker(queue)?
                .with_context(|| format!("no worker for queue {queue}"))?;
            let stopped = stopped.clone();
            let options = PollOptions {
                idle_max: Duration::from_millis(200),
                ..PollOptions::default()
            };
            workers.push(tokio::spawn(async move {
                run_until(&harness, options, stopped).await;
            }));
        }
        Ok(Self {
            stop,
            server,
            workers,
        })
    }

    /// Stops the workers (each finishes the batch in hand), then the routes.
    async fn stop(self) {
        let _ = self.stop.send(true);
        for worker in self.workers {
            let _ = worker.await;
        }
        let _ = self.server.await;
    }
}

fn print_done(started: Instant, watch: &Watch<'_>) {
    println!(
        "\nDone in {:.1}s: {} webhooks received, {} events synced, nothing dead-lettered.",
        started.elapsed().as_secs_f64(),
        watch.received,
        watch.synced
    );
    println!(
        "\nNext steps:\n  \
         connect real accounts   ml-connector connect freshbooks; ml-connector connect mailchimp\n  \
         check them              ml-connector ping\n  \
         apply your connections  ml-connector apply connections.toml\n  \
         run locally             ml-connector dev --connections connections.toml   (or `dev --sandbox`)\n  \
         deploy to AWS           sam build && sam deploy --guided"
    );
}

/// The sample data, step by step (each step synced before the next, so every event's effect
/// is shown on its own), then the checks and the tables.
async fn walkthrough(
    sandboxes: &Sandboxes,
    pipeline: &Local,
    watch: &mut Watch<'_>,
) -> anyhow::Result<()> {
    let steps = Steps {
        fb: &sandboxes.freshbooks,
        account: sandboxes.account_id().to_string(),
    };
    let client_ids = steps.create_clients(watch).await?;
    let invoice_ids = steps.send_invoices(&client_ids, watch).await?;
    steps.pay_invoice(&invoice_ids[0], watch).await?;
    steps.change_email(&client_ids[1], watch).await?;

    let problems = check(sandboxes, pipeline, &invoice_ids).await?;
    let sam = format!("freshbooks:{}:client:{}", steps.account, client_ids[1]);
    print_results(sandboxes, pipeline, &invoice_ids, &sam).await?;
    if !problems.is_empty() {
        bail!("not everything synced:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

/// The walkthrough's steps on the FreshBooks sandbox's account; each waits until the pipeline
/// has synced what it caused.
struct Steps<'a> {
    fb: &'a FreshbooksSandbox,
    account: String,
}

fn sandbox_err(e: mlc_sandbox::freshbooks::SandboxError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

impl Steps<'_> {
    /// Step 1; returns the clients' ids, in [`CLIENTS`]' order.
    async fn create_clients(&self, watch: &mut Watch<'_>) -> anyhow::Result<Vec<String>> {
        println!("1. Three clients are created in FreshBooks");
        let account = &self.account;
        let mut client_ids = Vec::new();
        for c in &CLIENTS {
            let client = ClientSpec {
                email: Some(c.email.into()),
                fname: Some(c.fname.into()),
                lname: Some(c.lname.into()),
                organization: Some(format!("{} & Co", c.lname)),
                currency_code: Some("USD".into()),
            };
            let id = self
                .fb
                .create_client(account, client, Webhooks::Send)
                .await
                .map_err(sandbox_err)?;
            watch.track(format!("freshbooks:{account}:client:{id}"), c.email);
            client_ids.push(id);
        }
        watch.settle().await?;
        Ok(client_ids)
    }

    /// Step 2; returns the invoices' ids, in [`INVOICES`]' order.
    async fn send_invoices(
        &self,
        client_ids: &[String],
        watch: &mut Watch<'_>,
    ) -> anyhow::Result<Vec<String>> {
        println!("\n2. Four invoices are sent");
        let account = &self.account;
        let mut invoice_ids = Vec::new();
        for (client, lines) in INVOICES {
            let invoice = InvoiceSpec {
                customerid: client_ids[client].clone(),
                lines: lines.iter().map(line_spec).collect(),
                currency_code: Some("USD".into()),
                sent: true,
                ..InvoiceSpec::default()
            };
            let id = self
                .fb
                .create_invoice(account, invoice, Webhooks::Send)
                .await
                .map_err(sandbox_err)?;
            watch.track(
                format!("freshbooks:{account}:invoice:{id}"),
                &format!("invoice {id}"),
            );
            invoice_ids.push(id);
        }
        watch.settle().await?;
        Ok(invoice_ids)
    }

    /// Step 3: Jane pays `invoice`.
    async fn pay_invoice(&self, invoice: &str, watch: &mut Watch<'_>) -> anyhow::Result<()> {
        println!("\n3. Jane pays her first invoice");
        let account = &self.account;
        let payment = self
            .fb
            .mark_invoice_paid(account, invoice, Webhooks::Send)
            .await
            .map_err(sandbox_err)?;
        watch.track(
            format!("freshbooks:{account}:payment:{payment}"),
            &format!("payment {payment}"),
        );
        watch.settle().await
    }

    /// Step 4: Sam (`client`) changes his email address.
    async fn change_email(&self, client: &str, watch: &mut Watch<'_>) -> anyhow::Result<()> {
        println!("\n4. Sam changes his email address");
        let change = ClientSpec {
            email: Some(SAM_NEW_EMAIL.into()),
            ..ClientSpec::default()
        };
        self.fb
            .update_client(&self.account, client, change, Webhooks::Send)
            .await
            .map_err(sandbox_err)?;
        watch.settle().await
    }
}

fn line_spec(&(name, qty, unit_cost): &Line) -> LineSpec {
    LineSpec {
        name: name.into(),
        description: None,
        qty: qty.into(),
        unit_cost: unit_cost.into(),
    }
}

/// The members Mailchimp should end with, and their statuses.
const EXPECTED_MEMBERS: [(&str, &str); 4] = [
    ("jane@example.com", "transactional"),
    ("sam@example.com", "archived"),
    (SAM_NEW_EMAIL, "transactional"),
    ("ada@example.com", "transactional"),
];

/// The orders' expected statuses, in [`INVOICES`]' order (Jane paid the first).
const EXPECTED_ORDERS: [&str; 4] = ["paid", "pending", "pending", "pending"];

/// What is not as it should be: members, orders, open dead letters, requests outside
/// Mailchimp's spec.
async fn check(
    sandboxes: &Sandboxes,
    pipeline: &Local,
    invoice_ids: &[String],
) -> anyhow::Result<Vec<String>> {
    let mc = &sandboxes.mailchimp;
    let mut problems = Vec::new();
    for (email, status) in EXPECTED_MEMBERS {
        match mc.member(&sandboxes.list_id, email) {
            Some(m) if m.status == status => {}
            Some(m) => problems.push(format!("member {email} is {}, expected {status}", m.status)),
            None => problems.push(format!("member {email} is missing")),
        }
    }
    for (invoice, status) in invoice_ids.iter().zip(EXPECTED_ORDERS) {
        match mc.order(dev::sandbox::SANDBOX_STORE, invoice) {
            Some(o) if o.financial_status() == Some(status) => {}
            Some(o) => problems.push(format!(
                "order {invoice} is {}, expected {status}",
                o.financial_status().unwrap_or("without a status")
            )),
            None => problems.push(format!("order {invoice} is missing")),
        }
    }
    let open = pipeline
        .db
        .list_dead_letters(DeadLetterStatus::Open, 20)
        .await?;
    for letter in &open {
        problems.push(format!(
            "dead letter {}: {} ({})",
            letter.id, letter.reason, letter.error_class
        ));
    }
    for v in mc.violations() {
        problems.push(format!("Mailchimp request outside its OpenAPI spec: {v:?}"));
    }
    Ok(problems)
}

/// What Mailchimp holds and the audit trail of Sam's client record (`sam`).
async fn print_results(
    sandboxes: &Sandboxes,
    pipeline: &Local,
    invoice_ids: &[String],
    sam: &str,
) -> anyhow::Result<()> {
    println!("\nMailchimp audience {}:", sandboxes.list_id);
    println!("{}", members_table(sandboxes));
    println!("\nMailchimp store {} orders:", dev::sandbox::SANDBOX_STORE);
    println!("{}", orders_table(sandboxes, invoice_ids));
    println!("\nAudit trail of {sam} (Sam), newest first:");
    let trail = pipeline.db.audit_by_record(sam, 20).await?;
    println!("{}", audit_table(&trail));
    Ok(())
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

fn members_table(sandboxes: &Sandboxes) -> Table {
    let mut t = table(&["email", "status", "name", "FB_STATUS", "FB_BALANCE"]);
    let mut members = sandboxes.mailchimp.members(&sandboxes.list_id);
    members.sort_by(|a, b| a.email_address.cmp(&b.email_address));
    for m in members {
        let field = |k: &str| m.merge_fields.get(k).map(plain).unwrap_or_default();
        t.add_row(vec![
            m.email_address.clone(),
            m.status.clone(),
            format!("{} {}", field("FNAME"), field("LNAME"))
                .trim()
                .to_string(),
            field("FB_STATUS"),
            field("FB_BALANCE"),
        ]);
    }
    t
}

fn orders_table(sandboxes: &Sandboxes, invoice_ids: &[String]) -> Table {
    let mut t = table(&["order (invoice)", "customer", "total", "status", "lines"]);
    let store = sandboxes.mailchimp.store(dev::sandbox::SANDBOX_STORE);
    for id in invoice_ids {
        let Some(o) = sandboxes.mailchimp.order(dev::sandbox::SANDBOX_STORE, id) else {
            t.add_row(vec![id.clone(), "(missing)".into()]);
            continue;
        };
        let total = format!(
            "{} {}",
            o.order.get("order_total").map(plain).unwrap_or_default(),
            o.order.get("currency_code").map(plain).unwrap_or_default()
        );
        let lines: Vec<String> = o
            .lines
            .iter()
            .map(|l| order_line(store.as_ref(), l))
            .collect();
        t.add_row(vec![
            id.clone(),
            order_customer(store.as_ref(), &o),
            total,
            o.financial_status().unwrap_or_default().to_string(),
            lines.join(", "),
        ]);
    }
    t
}

/// The order's customer: its email as the store holds it, else its id.
fn order_customer(store: Option<&StoreState>, o: &OrderState) -> String {
    let customer_id = o
        .order
        .get("customer")
        .and_then(|c| c.get("id"))
        .map(plain)
        .unwrap_or_default();
    store
        .and_then(|s| s.customers.get(&customer_id))
        .and_then(|c| c.get("email_address"))
        .map(plain)
        .unwrap_or(customer_id)
}

/// An order line as `quantity × product title @ price`.
fn order_line(store: Option<&StoreState>, line: &Map<String, Value>) -> String {
    let product = line.get("product_id").map(plain).unwrap_or_default();
    let title = store
        .and_then(|s| s.products.get(&product))
        .and_then(|p| p.product.get("title"))
        .map(plain)
        .unwrap_or(product);
    format!(
        "{} × {title} @ {}",
        line.get("quantity").map(plain).unwrap_or_default(),
        line.get("price").map(plain).unwrap_or_default()
    )
}

fn audit_table(trail: &[AuditEntry]) -> Table {
    let mut t = table(&[
        "at (UTC)",
        "operation",
        "outcome",
        "before",
        "written",
        "ms",
    ]);
    for e in trail {
        t.add_row(vec![
            e.at.format("%H:%M:%S%.3f").to_string(),
            e.operation.clone(),
            e.outcome.to_string(),
            e.before
                .as_ref()
                .map(|b| shorten(&b.to_string(), 40))
                .unwrap_or_default(),
            e.written
                .as_ref()
                .map(summary)
                .or_else(|| e.error_message.clone())
                .unwrap_or_default(),
            e.duration_ms.to_string(),
        ]);
    }
    t
}

/// A JSON value as a table cell: strings without their quotes.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Follows the pipeline while it works: prints each webhook FreshBooks delivers, each change of
/// the queue's depth and each audit entry of the tracked records, as they appear.
struct Watch<'a> {
    sandboxes: &'a Sandboxes,
    pipeline: &'a Local,
    started: Instant,
    /// Deliveries already shown.
    deliveries: usize,
    /// Record key → label.
    records: BTreeMap<String, String>,
    /// (record key, event id, outcome) already shown.
    seen: BTreeSet<(String, String, String)>,
    depth: Option<(u64, u64)>,
    received: usize,
    synced: usize,
}

impl<'a> Watch<'a> {
    fn new(sandboxes: &'a Sandboxes, pipeline: &'a Local, started: Instant) -> Self {
        Self {
            sandboxes,
            pipeline,
            started,
            // The handshakes are not events.
            deliveries: sandboxes.freshbooks.deliveries().len(),
            records: BTreeMap::new(),
            seen: BTreeSet::new(),
            depth: None,
            received: 0,
            synced: 0,
        }
    }

    fn track(&mut self, record_key: String, label: &str) {
        self.records.insert(record_key, label.to_string());
    }

    fn stamp(&self) -> String {
        format!("{:>6.2}s", self.started.elapsed().as_secs_f64())
    }

    /// Prints what happened since the last call; true when the pipeline is idle (every
    /// delivery answered, nothing waiting or in flight).
    async fn poll(&mut self) -> anyhow::Result<bool> {
        let answered = self.show_deliveries()?;
        let depth = self.show_depth().await?;
        self.show_audit().await?;
        Ok(answered && depth == (0, 0))
    }

    /// Prints the webhooks FreshBooks delivered since the last call; false while one is still
    /// unanswered. Fails when the route refused one or FreshBooks could not deliver it.
    fn show_deliveries(&mut self) -> anyhow::Result<bool> {
        let deliveries = self.sandboxes.freshbooks.deliveries();
        for d in deliveries.iter().skip(self.deliveries) {
            if d.status.is_none() && d.error.is_none() {
                return Ok(false);
            }
            let state = match (d.status, &d.error) {
                (Some(200), _) => "accepted".to_string(),
                (Some(status), _) => bail!(
                    "the webhook route answered {status} to FreshBooks' {} {}",
                    d.name,
                    d.object_id
                ),
                (None, error) => bail!(
                    "FreshBooks could not deliver {} {}: {}",
                    d.name,
                    d.object_id,
                    error.as_deref().unwrap_or("no answer")
                ),
            };
            if d.kind == "event" {
                self.received += 1;
                println!(
                    "  {}  received  {:<15} #{:<6} signed webhook, {state}",
                    self.stamp(),
                    d.name,
                    d.object_id
                );
            }
            self.deliveries += 1;
        }
        Ok(true)
    }

    /// Prints the Mailchimp queue's depth when it changed; returns (waiting, in flight). Fails
    /// when a message was dead-lettered.
    async fn show_depth(&mut self) -> anyhow::Result<(u64, u64)> {
        let depth = self.pipeline.db.depth("mailchimp").await?;
        if depth.dead > 0 {
            bail!("{} message(s) were dead-lettered", depth.dead);
        }
        let now = (depth.visible, depth.in_flight);
        if self.depth != Some(now) {
            self.depth = Some(now);
            println!(
                "  {}  queued    mailchimp queue: {} waiting, {} in flight",
                self.stamp(),
                depth.visible,
                depth.in_flight
            );
        }
        Ok(now)
    }

    /// Prints the tracked records' audit entries not shown yet, oldest first.
    async fn show_audit(&mut self) -> anyhow::Result<()> {
        for (key, label) in &self.records {
            let entries = self.pipeline.db.audit_by_record(key, 20).await?;
            for e in entries.iter().rev() {
                let id = (key.clone(), e.event_id.clone(), e.outcome.to_string());
                if self.seen.contains(&id) {
                    continue;
                }
                if e.outcome == mlc::ports::Outcome::Synced {
                    self.synced += 1;
                }
                let target = e
                    .written
                    .as_ref()
                    .map(summary)
                    .filter(|s| !s.is_empty())
                    .map(|s| format!(" → {s}"))
                    .unwrap_or_default();
                println!(
                    "  {}  {:<9} {:<15} {label}{target}",
                    self.stamp(),
                    e.outcome.as_str(),
                    e.operation,
                );
                self.seen.insert(id);
            }
        }
        Ok(())
    }

    /// Follows the pipeline until it is idle for a few polls in a row.
    async fn settle(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STEP_LIMIT;
        let mut idle = 0;
        while idle < 3 {
            if Instant::now() >= deadline {
                bail!("the pipeline did not settle within {STEP_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            idle = if self.poll().await? { idle + 1 } else { 0 };
        }
        Ok(())
    }
}

/// A few words on what a write did, from the flow's audit `written` (member and/or order).
fn summary(written: &Value) -> String {
    let field = |k: &str| written.get(k).map(plain).unwrap_or_default();
    let mut parts = Vec::new();
    match written.get("member") {
        Some(Value::String(unchanged)) if unchanged == "unchanged" => {
            parts.push("member unchanged".to_string());
        }
        Some(Value::String(email)) => {
            parts.push(format!("member {email} ({})", field("member_status")));
            if let Some(Value::String(old)) = written.get("old_email") {
                parts.push(format!("{old} archived"));
            }
        }
        Some(nested @ Value::Object(_)) => parts.push(summary(nested)),
        _ => {}
    }
    match written.get("order") {
        Some(Value::String(id)) => parts.push(format!(
            "order {id} {} {} {}",
            field("financial_status"),
            field("order_total"),
            field("currency")
        )),
        Some(nested @ Value::Object(_)) => parts.push(summary(nested)),
        _ => {}
    }
    if let Some(Value::String(old)) = written.get("archived") {
        parts.push(format!("member {old} archived"));
    }
    parts.retain(|p| !p.is_empty());
    parts.join("; ")
}
