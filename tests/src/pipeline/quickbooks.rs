//! The whole QuickBooks Online ↔ Mailchimp pipeline in one test process: the QuickBooks and
//! Mailchimp sandboxes, both delivering webhooks to the real webhook handler on a local port
//! (QuickBooks signed, Mailchimp by secret URL), the two queues, the Mailchimp worker
//! (customers → members) and the QuickBooks worker (list events → notes), and the poller (CDC
//! sweep, token refresh).

use std::sync::Arc;
use std::time::Duration;

use mlc::app::{App, LiveClients, LiveClientsConfig};
use mlc::connections::ConnectionSet;
use mlc::poller::{Poller, PollerConfig};
use mlc::ports::{Clock, Queue, Secrets, Store, SystemClock, secret_names};
use mlc::vendors::mailchimp::client::ClientOptions;
use mlc::worker::local::run_once;
use mlc::worker::{BatchReport, Harness};

use super::rig::{Adapters, Backend, WebhookServer, drain_all, drain_concurrently, harness_config};
use crate::sandbox::mailchimp::{DEFAULT_LIST_ID, MailchimpSandbox, MailchimpSandboxOptions};
use crate::sandbox::quickbooks::{
    PayloadFormat, QuickbooksSandbox, QuickbooksSandboxOptions, SandboxCompany,
};

/// The target queues.
pub const MC_QUEUE: &str = "mailchimp";
pub const QB_QUEUE: &str = "quickbooks";
/// The two connections, one per direction.
pub const QB_TO_MC: &str = "qbo-to-mc";
pub const MC_TO_QB: &str = "mc-to-qbo";
/// Credential-set names.
pub const QB_CREDENTIALS: &str = "qbo";
pub const MC_CREDENTIALS: &str = "mc";
/// The QuickBooks app's webhook verifier token (docs/vendors/quickbooks.md §5's test vector key).
pub const VERIFIER: &str = "c0ffee00-1234-4abc-9def-0123456789ab";
/// The secret path segment of the Mailchimp list webhook URL.
pub const MC_HOOK_SECRET: &str = "mc-hook-5ecret-0123456789abcdef";
/// The audience both connections use.
pub const LIST: &str = DEFAULT_LIST_ID;

/// Knobs for a QuickBooks pipeline.
#[derive(Debug, Clone)]
pub struct QboOptions {
    pub backend: Backend,
    /// Receives before a message is dead-lettered.
    pub max_receives: u32,
    /// Extra options of the QuickBooks → Mailchimp connection (TOML).
    pub options_toml: String,
    /// The payload format QuickBooks delivers webhooks in.
    pub format: PayloadFormat,
    /// Register both vendors' webhooks at start.
    pub webhooks: bool,
}

impl Default for QboOptions {
    fn default() -> Self {
        Self {
            backend: Backend::Embedded,
            max_receives: 5,
            options_toml: String::new(),
            format: PayloadFormat::CloudEvents,
            webhooks: true,
        }
    }
}

/// A running QuickBooks ↔ Mailchimp pipeline. Dropping it stops the servers.
pub struct QboPipeline {
    pub qb: QuickbooksSandbox,
    pub mc: MailchimpSandbox,
    pub company: SandboxCompany,
    pub adapters: Adapters,
    pub queue: Arc<dyn Queue>,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn Secrets>,
    pub clock: Arc<dyn Clock>,
    /// The Mailchimp worker (QuickBooks customers → members).
    pub mc_worker: Arc<Harness>,
    /// The QuickBooks worker (Mailchimp list events → customer notes).
    pub qb_worker: Arc<Harness>,
    pub poller: Arc<Poller>,
    pub clients: Arc<LiveClients>,
    pub webhook_base: String,
    /// Serves the webhook routes until the pipeline is dropped.
    _server: WebhookServer,
    config: InstanceConfig,
}

/// What a worker instance is built from.
#[derive(Debug, Clone)]
struct InstanceConfig {
    qb_base: String,
    mc_base: String,
    max_receives: u32,
}

/// One worker instance's pieces, as one Lambda instance of each worker has them.
struct Instance {
    app: App,
    mc_worker: Arc<Harness>,
    qb_worker: Arc<Harness>,
}

impl InstanceConfig {
    fn instance(&self, adapters: &Adapters, clock: &Arc<dyn Clock>) -> Instance {
        let app = adapters.app(
            clock,
            LiveClientsConfig {
                quickbooks_api_base: Some(self.qb_base.clone()),
                mailchimp: ClientOptions {
                    base_url: Some(self.mc_base.clone()),
                    ..ClientOptions::default()
                },
                ..LiveClientsConfig::default()
            },
        );
        let harness = |queue: &str| {
            let target = queue
                .parse()
                .expect("a queue is named after its target vendor");
            let config = harness_config(queue, self.max_receives);
            Arc::new(app.worker(target, config).expect("a target worker"))
        };
        let mc_worker = harness(MC_QUEUE);
        let qb_worker = harness(QB_QUEUE);
        Instance {
            app,
            mc_worker,
            qb_worker,
        }
    }
}

impl QboPipeline {
    pub async fn start(options: QboOptions) -> QboPipeline {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let qb = QuickbooksSandbox::start(QuickbooksSandboxOptions::default()).await;
        let mc = MailchimpSandbox::start(MailchimpSandboxOptions::default()).await;
        let company = qb.setup_company("Acme Books");

        let adapters = Adapters::start(
            options.backend,
            &[MC_QUEUE, QB_QUEUE],
            options.max_receives,
            &clock,
        )
        .await;
        let set = ConnectionSet::from_toml(
            &format!(
                r#"
[connection.{QB_TO_MC}]
source = {{ vendor = "quickbooks", account = "{realm}", credentials = "{QB_CREDENTIALS}" }}
target = {{ vendor = "mailchimp", credentials = "{MC_CREDENTIALS}", list_id = "{LIST}" }}
[connection.{QB_TO_MC}.options]
{extra}

[connection.{MC_TO_QB}]
source = {{ vendor = "mailchimp", account = "{LIST}", credentials = "{MC_CREDENTIALS}" }}
target = {{ vendor = "quickbooks", credentials = "{QB_CREDENTIALS}", realm_id = "{realm}" }}
"#,
                realm = company.realm_id,
                extra = options.options_toml,
            ),
            "pipeline.toml",
        )
        .expect("the pipeline's connections file is valid");
        adapters
            .store
            .put_connections(&set)
            .await
            .expect("applying");
        adapters
            .put_secret(
                &secret_names::credentials(QB_CREDENTIALS),
                &qb.credentials_json(&company),
            )
            .await;
        adapters
            .put_secret(
                &secret_names::credentials(MC_CREDENTIALS),
                &mc.credentials_json(),
            )
            .await;
        adapters
            .put_secret(secret_names::QUICKBOOKS, VERIFIER)
            .await;
        adapters
            .put_secret(&secret_names::mailchimp(LIST), MC_HOOK_SECRET)
            .await;

        let config = InstanceConfig {
            qb_base: qb.base_url(),
            mc_base: mc.base_url(),
            max_receives: options.max_receives,
        };
        let Instance {
            app,
            mc_worker,
            qb_worker,
        } = config.instance(&adapters, &clock);
        let poller = Arc::new(app.poller(PollerConfig::default()).expect("the poller"));
        let clients = app.clients().expect("the vendor clients");
        let server = WebhookServer::start(&app).await;

        let pipeline = QboPipeline {
            queue: adapters.queue.clone(),
            store: adapters.store.clone(),
            secrets: adapters.secrets.clone(),
            qb,
            mc,
            company,
            adapters,
            clock,
            mc_worker,
            qb_worker,
            poller,
            clients,
            webhook_base: server.base.clone(),
            _server: server,
            config,
        };
        if options.webhooks {
            pipeline.register_webhooks(options.format).await;
        }
        pipeline
    }

    /// Points QuickBooks' webhooks at the handler (as the app's developer portal setting) and
    /// adds the list webhook to Mailchimp (as a user pasting the URL `apply` printed).
    pub async fn register_webhooks(&self, format: PayloadFormat) {
        self.qb.set_webhook(
            &format!("{}/quickbooks", self.webhook_base),
            VERIFIER,
            format,
        );
        self.mc
            .add_list_webhook(LIST, &self.mailchimp_webhook_url())
            .await
            .expect("Mailchimp validates the list webhook URL");
    }

    /// The list webhook URL `ml-connector apply` prints.
    pub fn mailchimp_webhook_url(&self) -> String {
        format!("{}/mailchimp/{LIST}/{MC_HOOK_SECRET}", self.webhook_base)
    }

    /// The credential set a user gets by connecting the app again (`ml-connector connect
    /// quickbooks`): a new token pair for the company.
    pub fn reconnected_credentials(&self) -> String {
        let company = SandboxCompany {
            tokens: self
                .qb
                .mint_tokens(&self.company.realm_id)
                .expect("the company exists"),
            ..self.company.clone()
        };
        self.qb.credentials_json(&company)
    }

    /// The QuickBooks company (realm) id.
    pub fn realm(&self) -> &str {
        &self.company.realm_id
    }

    /// Another instance of both workers (as second Lambdas would be): their own clients and
    /// token caches over the same queues, store and secrets. Returns (Mailchimp worker,
    /// QuickBooks worker).
    pub fn instance(&self) -> (Arc<Harness>, Arc<Harness>) {
        let i = self.config.instance(&self.adapters, &self.clock);
        (i.mc_worker, i.qb_worker)
    }

    /// Runs both workers until both queues are empty at once (each vendor's writes come back
    /// as the other's webhooks, so the two settle together), or `limit` passes.
    pub async fn drain(&self, limit: Duration) -> Vec<BatchReport> {
        self.wait_for_deliveries().await;
        let reports = drain_all(
            &self.queue,
            &[(MC_QUEUE, &self.mc_worker), (QB_QUEUE, &self.qb_worker)],
            limit,
        )
        .await;
        // A write near the end may have triggered a webhook still in flight.
        self.wait_for_deliveries().await;
        let more = drain_all(
            &self.queue,
            &[(MC_QUEUE, &self.mc_worker), (QB_QUEUE, &self.qb_worker)],
            limit,
        )
        .await;
        reports.into_iter().chain(more).collect()
    }

    /// Runs one consumer per harness at once on `queue` until it is empty.
    pub async fn drain_concurrently(
        &self,
        queue: &str,
        harnesses: &[Arc<Harness>],
        limit: Duration,
    ) {
        self.wait_for_deliveries().await;
        drain_concurrently(&self.queue, queue, harnesses, limit).await;
    }

    /// Waits until every webhook either sandbox queued has been sent, and checks each was
    /// answered 200 (so its events are queued).
    pub async fn wait_for_deliveries(&self) {
        self.qb.flush_webhooks().await;
        assert!(
            self.mc
                .wait_for_list_webhook_deliveries(Duration::from_secs(30))
                .await,
            "Mailchimp list webhook deliveries finished"
        );
        let failed_qb: Vec<_> = self
            .qb
            .deliveries()
            .into_iter()
            .filter(|d| d.status != Some(200))
            .collect();
        assert!(
            failed_qb.is_empty(),
            "QuickBooks deliveries refused: {failed_qb:#?}"
        );
        let failed_mc: Vec<_> = self
            .mc
            .list_webhook_deliveries()
            .into_iter()
            .filter(|d| d.status != Some(200))
            .collect();
        assert!(
            failed_mc.is_empty(),
            "Mailchimp deliveries refused: {failed_mc:#?}"
        );
    }

    /// Runs both workers for `time`, whatever the queues hold: for states that do not drain
    /// (events waiting for a reconnect).
    pub async fn pump(&self, time: Duration) {
        let deadline = tokio::time::Instant::now() + time;
        while tokio::time::Instant::now() < deadline {
            for worker in [&self.mc_worker, &self.qb_worker] {
                run_once(worker, 10, Duration::from_secs(30))
                    .await
                    .expect("receiving");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Moves `queue`'s dead-lettered messages back.
    pub async fn redrive(&self, queue: &str) {
        self.adapters.redrive(queue).await;
    }
}
