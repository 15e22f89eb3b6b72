//! The whole FreshBooks → Mailchimp pipeline in one test process: the FreshBooks and Mailchimp
//! sandboxes, the real webhook handler on a local port (FreshBooks delivers to it), the queue,
//! the Mailchimp worker harness with the real flow and clients, and the poller.
//!
//! Used by the end-to-end tests and the worker benchmark.

use std::sync::Arc;
use std::time::Duration;

use mlc::app::{App, LiveClients, LiveClientsConfig};
use mlc::connections::ConnectionSet;
use mlc::flows::Flow;
use mlc::poller::{Poller, PollerConfig};
use mlc::ports::{Clock, Queue, QueueDepth, Secrets, Store, SystemClock};
use mlc::vendor::Vendor;
use mlc::vendors::freshbooks::callback_registration::{
    CallbackSpec, register_pending, wait_verified,
};
use mlc::vendors::freshbooks::client::FreshbooksClient;
use mlc::vendors::mailchimp::client::ClientOptions;
use mlc::worker::{BatchReport, Harness};

use super::rig::{Adapters, Backend, WebhookServer, drain_all, drain_concurrently, harness_config};

use crate::sandbox::freshbooks::{FreshbooksSandbox, FreshbooksSandboxOptions, SandboxAccount};
use crate::sandbox::mailchimp::{DEFAULT_LIST_ID, MailchimpSandbox, MailchimpSandboxOptions};

/// The logical queue (target vendor).
pub const QUEUE: &str = "mailchimp";
/// The connection every pipeline applies.
pub const CONNECTION: &str = "fb-to-mc";
/// The e-commerce store the connection writes orders to.
pub const STORE_ID: &str = "fb-store";
/// Credential-set names.
pub const FB_CREDENTIALS: &str = "fb";
pub const MC_CREDENTIALS: &str = "mc";

/// Knobs for a pipeline.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub backend: Backend,
    /// Receives before a message is dead-lettered (the queue's `maxReceiveCount`).
    pub max_receives: u32,
    /// The worker's share of Mailchimp's connections is 10 ÷ this.
    pub max_concurrency: usize,
    /// Extra connection options (TOML, e.g. `sync_drafts = true`).
    pub options_toml: String,
    /// Register FreshBooks callbacks (webhooks) at start.
    pub webhooks: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            backend: Backend::Embedded,
            max_receives: 5,
            max_concurrency: 1,
            options_toml: String::new(),
            webhooks: true,
        }
    }
}

/// A running pipeline. Dropping it stops the servers.
pub struct Pipeline {
    pub fb: FreshbooksSandbox,
    pub mc: MailchimpSandbox,
    pub account: SandboxAccount,
    pub adapters: Adapters,
    pub queue: Arc<dyn Queue>,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn Secrets>,
    pub clock: Arc<dyn Clock>,
    pub harness: Arc<Harness>,
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
    fb_base: String,
    mc_base: String,
    max_concurrency: usize,
    max_receives: u32,
}

impl InstanceConfig {
    /// A worker as one Lambda instance has it: its own app (clients and token cache) over the
    /// shared queue, store and secrets.
    fn instance(&self, adapters: &Adapters, clock: &Arc<dyn Clock>) -> (App, Arc<Harness>) {
        let app = adapters.app(
            clock,
            LiveClientsConfig {
                freshbooks_api_base: self.fb_base.clone(),
                mailchimp: ClientOptions {
                    base_url: Some(self.mc_base.clone()),
                    max_concurrency: self.max_concurrency,
                    ..ClientOptions::default()
                },
                ..LiveClientsConfig::default()
            },
        );
        let harness = app
            .worker(Vendor::Mailchimp, harness_config(QUEUE, self.max_receives))
            .expect("the Mailchimp worker");
        (app, Arc::new(harness))
    }
}

impl Pipeline {
    pub async fn start(options: PipelineOptions) -> Pipeline {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let fb = FreshbooksSandbox::start(FreshbooksSandboxOptions {
            clock: clock.clone(),
            // FreshBooks' own 10 s is too tight for a webhook on moto on a loaded 2-core box;
            // a delivery cut off mid-enqueue would be a lost webhook, not what a test checks.
            delivery_timeout: Duration::from_secs(60),
            ..FreshbooksSandboxOptions::default()
        })
        .await;
        let mc = MailchimpSandbox::start(MailchimpSandboxOptions::default()).await;
        let account = fb.setup_account("owner@example.com", "Acme Books");

        let adapters =
            Adapters::start(options.backend, &[QUEUE], options.max_receives, &clock).await;
        let (queue, store, secrets) = (
            adapters.queue.clone(),
            adapters.store.clone(),
            adapters.secrets.clone(),
        );

        let set = ConnectionSet::from_toml(
            &format!(
                r#"
[connection.{CONNECTION}]
source = {{ vendor = "freshbooks", account = "{account}", credentials = "{FB_CREDENTIALS}" }}
target = {{ vendor = "mailchimp", credentials = "{MC_CREDENTIALS}", list_id = "{DEFAULT_LIST_ID}", store_id = "{STORE_ID}" }}
[connection.{CONNECTION}.options]
{extra}
"#,
                account = account.account_id,
                extra = options.options_toml,
            ),
            "pipeline.toml",
        )
        .expect("the pipeline's connections file is valid");
        store.put_connections(&set).await.expect("applying");
        adapters
            .put_secret(
                &format!("credentials/{FB_CREDENTIALS}"),
                &fb.credentials_json(&account.tokens),
            )
            .await;
        adapters
            .put_secret(
                &format!("credentials/{MC_CREDENTIALS}"),
                &mc.credentials_json(),
            )
            .await;

        let config = InstanceConfig {
            fb_base: fb.base_url(),
            mc_base: mc.base_url(),
            max_concurrency: options.max_concurrency,
            max_receives: options.max_receives,
        };
        let (app, harness) = config.instance(&adapters, &clock);
        let poller = Arc::new(app.poller(PollerConfig::default()).expect("the poller"));
        let clients = app.clients().expect("the vendor clients");
        // The webhook confirms handshakes at the app's FreshBooks base: the sandbox's.
        let server = WebhookServer::start(&app).await;

        let pipeline = Pipeline {
            fb,
            mc,
            account,
            adapters,
            queue,
            store,
            secrets,
            clock,
            harness,
            poller,
            clients,
            webhook_base: server.base.clone(),
            _server: server,
            config,
        };
        if options.webhooks {
            pipeline.register_callbacks().await;
        }
        pipeline
    }

    /// Another worker instance (as a second Lambda would be): its own clients and token
    /// cache over the same queue, store and secrets.
    pub fn instance(&self) -> Arc<Harness> {
        self.config.instance(&self.adapters, &self.clock).1
    }

    /// The FreshBooks account id.
    pub fn account(&self) -> &str {
        &self.account.account_id
    }

    /// Registers a callback per event as `ml-connector apply` does: a pending record first,
    /// then the registration; FreshBooks' handshake then reaches the webhook route, which
    /// stores the verifier and confirms it. Returns when our records say every callback is
    /// verified — FreshBooks' own flag flips before the verifier is stored, and a delivery in
    /// between would find no verifier.
    pub async fn register_callbacks(&self) {
        let fb = self.freshbooks_client();
        let mut routes = Vec::new();
        let flow = Flow::between(Vendor::Freshbooks, Vendor::Mailchimp).expect("this build's flow");
        for &event in flow.source_entities() {
            let route_id = format!("cb-{event}");
            let uri = format!(
                "{}/freshbooks/{}/{route_id}",
                self.webhook_base,
                self.account()
            );
            let spec = CallbackSpec {
                account: self.account(),
                credentials: FB_CREDENTIALS,
                event,
                route_id: &route_id,
                uri: &uri,
            };
            register_pending(self.store.as_ref(), self.clock.as_ref(), &fb, &spec, None)
                .await
                .expect("registering a callback");
            routes.push(route_id);
        }
        let routes: Vec<&str> = routes.iter().map(String::as_str).collect();
        let verified = wait_verified(
            self.store.as_ref(),
            &routes,
            Duration::from_secs(20),
            Duration::from_millis(20),
        )
        .await;
        for route_id in routes {
            assert!(
                verified.contains(route_id),
                "FreshBooks callback {route_id} not verified through the webhook"
            );
        }
    }

    /// A FreshBooks client on the pipeline's credentials (for setup calls).
    pub fn freshbooks_client(&self) -> FreshbooksClient {
        FreshbooksClient::new(
            &self.fb.base_url(),
            self.clients.freshbooks_tokens(),
            FB_CREDENTIALS,
        )
        .expect("sandbox URL")
    }

    /// Runs the worker until the queue is empty (retries waiting out their visibility
    /// timeout), or `limit` passes. Returns the merged batch reports.
    pub async fn drain(&self, limit: Duration) -> Vec<BatchReport> {
        self.assert_deliveries_accepted();
        drain_all(&self.queue, &[(QUEUE, &self.harness)], limit).await
    }

    /// Runs one consumer per harness at once until the queue is empty.
    pub async fn drain_concurrently(&self, harnesses: &[Arc<Harness>], limit: Duration) {
        drain_concurrently(&self.queue, QUEUE, harnesses, limit).await;
    }

    /// Every webhook FreshBooks sent so far was answered 200 (so its events are queued).
    pub fn assert_deliveries_accepted(&self) {
        let failed: Vec<_> = self
            .fb
            .deliveries()
            .into_iter()
            .filter(|d| d.status != Some(200))
            .collect();
        assert!(failed.is_empty(), "undelivered webhooks: {failed:#?}");
    }

    pub async fn depth(&self) -> QueueDepth {
        self.queue.depth(QUEUE).await.expect("queue depth")
    }

    /// Moves dead-lettered messages back to the queue.
    pub async fn redrive(&self) {
        self.adapters.redrive(QUEUE).await;
    }
}
