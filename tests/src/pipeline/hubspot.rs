//! The whole FreshBooks → HubSpot pipeline in one test process: the FreshBooks and HubSpot
//! sandboxes, the real webhook handler on a local port (FreshBooks delivers to it), the
//! `hubspot` queue, the HubSpot worker harness with the real flow and clients, and the poller —
//! on the embedded adapters or on moto.
//!
//! # Batches
//! The deployed HubSpot worker gets up to 100 messages per invocation (`BatchSize: 100` with a
//! batching window in `template.yaml`): Lambda's event source mapping gathers them from many
//! SQS receives, each of which hands out at most 10 (SQS's cap; moto keeps it, and so does the
//! embedded queue). [`Pipeline::drain`] does the same through
//! [`mlc::worker::local::run_once`], which gathers receives of 10 into one batch of up to
//! [`BATCH`] and makes one `process_batch` (one `handle_batch`) call of it — so a backlog
//! reaches the flow as batches of many events, and HubSpot as batch calls of many inputs.
//!
//! # Clock
//! Everything runs on one [`ShiftClock`] (real time plus an offset): the app (harness, webhook,
//! poller, the HubSpot client's daily hold), the embedded queue's visibility, and both
//! sandboxes. Moving it moves them all, e.g. past a portal's midnight to end a daily-limit
//! hold. Moto's visibility timeouts are real seconds whatever the clock says.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mlc::app::{LiveClients, LiveClientsConfig};
use mlc::connections::ConnectionSet;
use mlc::event::{Origin, SourceEvent, SourceRef};
use mlc::fanout::{FanOut, FanOutReport};
use mlc::flows::Flow;
use mlc::flows::clients::VendorClients;
use mlc::flows::freshbooks_hubspot::portal;
use mlc::poller::{Poller, PollerConfig};
use mlc::ports::{Clock, Queue, QueueDepth, Secrets, Store};
use mlc::vendor::Vendor;
use mlc::vendors::freshbooks::callback_registration::{
    CallbackSpec, register_pending, wait_verified,
};
use mlc::vendors::freshbooks::client::FreshbooksClient;
use mlc::vendors::mailchimp::client::ClientOptions;
use mlc::worker::local::run_once;
use mlc::worker::{BatchReport, Harness};

use super::rig::{Adapters, Backend, WebhookServer, harness_config};

use crate::sandbox::freshbooks::{FreshbooksSandbox, FreshbooksSandboxOptions, SandboxAccount};
use crate::sandbox::hubspot::{
    ALL_SCOPES, HubspotSandbox, HubspotSandboxOptions, PortalInfo, PortalSeed, Tier,
};

/// The logical queue (target vendor).
pub const QUEUE: &str = "hubspot";
/// The connection every pipeline applies.
pub const CONNECTION: &str = "fb-to-hs";
/// Credential-set names.
pub const FB_CREDENTIALS: &str = "fb";
pub const HS_CREDENTIALS: &str = "hs";
/// Messages per worker batch: the deployed event source mapping's `BatchSize`.
pub const BATCH: usize = 100;
/// How long a received batch stays hidden (and the batch's deadline).
const VISIBILITY: Duration = Duration::from_secs(60);

/// Real time plus an offset that tests move forward.
#[derive(Debug, Default)]
pub struct ShiftClock {
    offset: Mutex<chrono::Duration>,
}

impl ShiftClock {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        *self.offset.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }
}

impl Clock for ShiftClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.offset.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Knobs for a pipeline.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub backend: Backend,
    /// Receives before a message is dead-lettered (the queue's `maxReceiveCount`).
    pub max_receives: u32,
    /// Extra connection options (TOML, e.g. `on_client_delete = "archive"`).
    pub options_toml: String,
    /// Register FreshBooks callbacks (webhooks) at start.
    pub webhooks: bool,
    /// The portal's tier (its burst limit).
    pub tier: Tier,
    /// Create the flow's properties in the portal at start (what `apply` does).
    pub properties: bool,
    /// The portal's IANA time zone (its daily limit resets at its midnight); New York when
    /// `None`.
    pub time_zone: Option<String>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            backend: Backend::Embedded,
            max_receives: 5,
            options_toml: String::new(),
            webhooks: true,
            tier: Tier::Free,
            properties: true,
            time_zone: None,
        }
    }
}

/// A running pipeline. Dropping it stops the servers.
pub struct Pipeline {
    pub fb: FreshbooksSandbox,
    pub hs: HubspotSandbox,
    pub account: SandboxAccount,
    pub portal: PortalInfo,
    pub adapters: Adapters,
    pub queue: Arc<dyn Queue>,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn Secrets>,
    /// The pipeline's clock (also the sandboxes' and the embedded queue's).
    pub clock: Arc<ShiftClock>,
    pub harness: Arc<Harness>,
    pub poller: Arc<Poller>,
    pub clients: Arc<LiveClients>,
    pub webhook_base: String,
    /// Serves the webhook routes until the pipeline is dropped.
    _server: WebhookServer,
}

impl Pipeline {
    pub async fn start(options: PipelineOptions) -> Pipeline {
        let shift = Arc::new(ShiftClock::default());
        let clock: Arc<dyn Clock> = shift.clone();
        let fb = FreshbooksSandbox::start(FreshbooksSandboxOptions {
            clock: clock.clone(),
            // As in the Mailchimp pipeline: a delivery cut off mid-enqueue on a loaded box
            // would be a lost webhook, not what a test checks.
            delivery_timeout: Duration::from_secs(60),
            ..FreshbooksSandboxOptions::default()
        })
        .await;
        let hs = HubspotSandbox::start(HubspotSandboxOptions {
            clock: clock.clone(),
            ..HubspotSandboxOptions::default()
        })
        .await;
        let account = fb.setup_account("owner@example.com", "Acme Books");
        let portal = hs
            .add_portal(PortalSeed {
                tier: options.tier,
                time_zone: options.time_zone.clone(),
                ..PortalSeed::default()
            })
            .expect("a portal");
        let token = hs
            .issue_private_app_token(portal.portal_id, ALL_SCOPES)
            .expect("a private-app token");

        let adapters =
            Adapters::start(options.backend, &[QUEUE], options.max_receives, &clock).await;
        let (queue, store, secrets) = (
            adapters.queue.clone(),
            adapters.store.clone(),
            adapters.secrets.clone(),
        );
        let tier = match options.tier {
            Tier::Free => "free",
            Tier::Starter => "starter",
            Tier::Professional => "professional",
            Tier::Enterprise => "enterprise",
        };
        let set = ConnectionSet::from_toml(
            &format!(
                r#"
[connection.{CONNECTION}]
source = {{ vendor = "freshbooks", account = "{account}", credentials = "{FB_CREDENTIALS}" }}
target = {{ vendor = "hubspot", credentials = "{HS_CREDENTIALS}", portal_id = "{portal_id}" }}
[connection.{CONNECTION}.options]
tier = "{tier}"
{extra}
"#,
                account = account.account_id,
                portal_id = portal.portal_id,
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
        // The zone is named so a daily-limit hold needs no lookup (`connect` stores it too).
        adapters
            .put_secret(
                &format!("credentials/{HS_CREDENTIALS}"),
                &serde_json::json!({
                    "kind": "private_app",
                    "access_token": token,
                    "portal_id": portal.portal_id,
                    "tier": tier,
                    "time_zone": portal.time_zone,
                })
                .to_string(),
            )
            .await;

        let app = adapters.app(
            &clock,
            LiveClientsConfig {
                freshbooks_api_base: fb.base_url(),
                hubspot_api_base: Some(hs.base_url()),
                mailchimp: ClientOptions::default(),
                ..LiveClientsConfig::default()
            },
        );
        let harness = Arc::new(
            app.worker(Vendor::Hubspot, harness_config(QUEUE, options.max_receives))
                .expect("the HubSpot worker"),
        );
        let poller = Arc::new(app.poller(PollerConfig::default()).expect("the poller"));
        let clients = app.clients().expect("the vendor clients");
        let server = WebhookServer::start(&app).await;

        let pipeline = Pipeline {
            fb,
            hs,
            account,
            portal,
            adapters,
            queue,
            store,
            secrets,
            clock: shift,
            harness,
            poller,
            clients,
            webhook_base: server.base.clone(),
            _server: server,
        };
        if options.properties {
            pipeline.create_properties().await;
        }
        if options.webhooks {
            pipeline.register_callbacks().await;
        }
        pipeline
    }

    /// Creates the flow's property group and properties in the portal through the HubSpot
    /// client, as `apply` does (the definitions are the flow's own,
    /// `freshbooks_hubspot::portal::property_definitions`), so the flow's upserts by `fb_…`
    /// keys find their unique properties. The sandbox's calls are counted; tests that count
    /// calls reset the stats after start.
    async fn create_properties(&self) {
        let hs = self
            .clients
            .hubspot(HS_CREDENTIALS)
            .await
            .expect("the HubSpot client");
        let group = portal::property_group();
        let mut grouped = std::collections::BTreeSet::new();
        for (object, definition) in portal::property_definitions() {
            if grouped.insert(object) {
                hs.create_property_group(object, &group)
                    .await
                    .expect("creating the property group");
            }
            hs.create_property(object, &definition)
                .await
                .expect("creating a property");
        }
        self.hs.reset_stats();
    }

    /// Registers a FreshBooks callback per event the flow reads, as `apply` does, and waits
    /// until our records say each is verified (see the Mailchimp pipeline's).
    pub async fn register_callbacks(&self) {
        let fb = self.freshbooks_client();
        let flow = Flow::between(Vendor::Freshbooks, Vendor::Hubspot).expect("this build's flow");
        let mut routes = Vec::new();
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

    /// Enqueues one event per `(entity, id)` for the connection alone, origin `backfill`, as
    /// `ml-connector backfill` does (through the same fan-out, each run's event ids new).
    pub async fn backfill(&self, records: &[(&str, String)]) -> FanOutReport {
        let set = self
            .store
            .get_connections()
            .await
            .expect("reading the connections")
            .expect("applied connections");
        let run = uuid::Uuid::new_v4().simple().to_string();
        let source = SourceRef {
            vendor: Vendor::Freshbooks,
            account: self.account().into(),
        };
        let events: Vec<SourceEvent> = records
            .iter()
            .map(|(entity, id)| SourceEvent {
                event_id: format!("backfill-{run}-{entity}-{id}"),
                source: source.clone(),
                entity: entity.to_string(),
                entity_id: id.clone(),
                operation: "update".into(),
                occurred_at: None,
                detail: serde_json::Map::new(),
            })
            .collect();
        let fanout = FanOut::new(
            self.queue.clone(),
            self.store.clone(),
            self.clock.clone(),
            Duration::from_secs(14 * 24 * 3600),
        );
        let mut total = FanOutReport::default();
        for chunk in events.chunks(100) {
            let r = fanout
                .enqueue(&set, chunk, Origin::Backfill)
                .await
                .expect("enqueuing");
            total.queued += r.queued;
            total.dead_lettered += r.dead_lettered;
        }
        total
    }

    /// The FreshBooks account id.
    pub fn account(&self) -> &str {
        &self.account.account_id
    }

    /// The HubSpot portal id.
    pub fn portal_id(&self) -> u64 {
        self.portal.portal_id
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

    /// One worker batch: up to [`BATCH`] messages gathered from receives of 10, handled by
    /// one `process_batch` call, the done ones deleted.
    pub async fn run_batch(&self) -> BatchReport {
        run_once(&self.harness, BATCH, VISIBILITY)
            .await
            .expect("receiving")
    }

    /// Runs the worker until the queue is empty (retries waiting out their visibility
    /// timeout), or `limit` passes. Returns the batch reports.
    pub async fn drain(&self, limit: Duration) -> Vec<BatchReport> {
        self.drain_while(limit, |d| d.visible != 0 || d.in_flight != 0)
            .await
    }

    /// Runs the worker until no message is visible and none is in flight but `hidden`
    /// (held messages stay hidden in the queue), or `limit` passes.
    pub async fn drain_except_hidden(&self, hidden: u64, limit: Duration) -> Vec<BatchReport> {
        self.drain_while(limit, |d| d.visible != 0 || d.in_flight > hidden)
            .await
    }

    async fn drain_while(
        &self,
        limit: Duration,
        busy: impl Fn(&QueueDepth) -> bool,
    ) -> Vec<BatchReport> {
        self.assert_deliveries_accepted();
        let deadline = tokio::time::Instant::now() + limit;
        let mut reports = Vec::new();
        loop {
            let report = self.run_batch().await;
            if !report.messages.is_empty() {
                reports.push(report);
                continue;
            }
            let depth = self.depth().await;
            if !busy(&depth) {
                return reports;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the queue did not drain in {limit:?}: {depth:?}"
            );
            // Waiting out a retry's visibility timeout (real seconds on moto).
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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
}
