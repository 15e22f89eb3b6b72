//! The app, assembled in one place: [`App`] turns one set of ports (queue, store, secrets,
//! clock) and the vendor-client configuration into the webhook handler, each target's worker
//! and the poller. The Lambdas ([`lambda`]), `ml-connector dev` and `demo`, the operator
//! commands and the end-to-end tests all build through it, so a part is wired the same way
//! wherever it runs.
//!
//! This is the one layer that knows every other: entry points → [`App`] → flows, webhook,
//! poller → vendors, tokens → ports ← adapters (docs/architecture.md, "Layers").

pub mod env;
pub mod lambda;
pub mod live_clients;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use live_clients::{LiveClients, LiveClientsConfig, LiveClientsError};

use crate::flows::clients::VendorClients;
use crate::flows::{FLOWS, FlowDeps, TargetDispatch};
use crate::poller::{Poller, PollerConfig, PollerDeps};
use crate::ports::{CachedConnections, Clock, ConnectionStore, Queue, Secrets, Store};
use crate::vendor::Vendor;
use crate::vendors::freshbooks::FreshbooksError;
use crate::vendors::freshbooks::callbacks::CallbacksClient;
use crate::webhook::{WebhookConfig, WebhookDeps, WebhookHandler};
use crate::worker::{Harness, HarnessConfig, TargetHandler};

/// How long a warm worker trusts the applied connections before reading them again.
pub(crate) const CONNECTIONS_TTL: Duration = Duration::from_secs(60);

/// The ports every part of the app runs on: one adapter set (AWS, or the embedded store).
#[derive(Clone)]
pub struct Ports {
    /// The queues the webhook and the poller send to and the workers read.
    pub queue: Arc<dyn Queue>,
    /// The state store: idempotency, id map, audit, dead letters, connections, cursors, leases.
    pub store: Arc<dyn Store>,
    /// Credential sets and webhook secrets.
    pub secrets: Arc<dyn Secrets>,
    /// The time every part reads (a manual clock in tests).
    pub clock: Arc<dyn Clock>,
}

/// A part of the app that cannot be built from this configuration.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A vendor base URL that does not parse.
    #[error(transparent)]
    Clients(#[from] LiveClientsError),
    /// The FreshBooks API base the webhook confirms handshakes with does not parse.
    #[error("FreshBooks API base: {0}")]
    FreshbooksBase(#[from] FreshbooksError),
    /// No flow of this build writes to the target, so its queue has no worker.
    #[error("no flow of this build writes to {0}: there is no worker for its queue")]
    NoWorker(Vendor),
}

/// One instance of the app: what a Lambda instance, or the local process, holds. Vendor
/// clients (and their token caches) are built on first use and shared by every part built
/// from the same `App`; another `App` over the same ports is another instance.
pub struct App {
    ports: Ports,
    clients_config: LiveClientsConfig,
    connections_ttl: Duration,
    clients: OnceLock<Arc<LiveClients>>,
}

impl App {
    /// An app over `ports`, reaching vendors as `clients_config` says.
    pub fn new(ports: Ports, clients_config: LiveClientsConfig) -> Self {
        App {
            ports,
            clients_config,
            connections_ttl: CONNECTIONS_TTL,
            clients: OnceLock::new(),
        }
    }

    /// How long workers trust the applied connections (`CONNECTIONS_TTL` by default; tests
    /// and local mode read them sooner, so an `apply` shows at once).
    pub fn with_connections_ttl(mut self, ttl: Duration) -> Self {
        self.connections_ttl = ttl;
        self
    }

    /// The ports the app was built on.
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// The vendor-client settings the app's clients are built with.
    pub fn clients_config(&self) -> &LiveClientsConfig {
        &self.clients_config
    }

    /// The instance's vendor clients, built on first use.
    pub fn clients(&self) -> Result<Arc<LiveClients>, AppError> {
        if let Some(clients) = self.clients.get() {
            return Ok(clients.clone());
        }
        let clients = Arc::new(LiveClients::new(
            self.ports.secrets.clone(),
            self.ports.store.clone(),
            self.ports.clock.clone(),
            self.clients_config.clone(),
        )?);
        // Two racing first calls may both build; one set wins and the other is dropped.
        Ok(self.clients.get_or_init(|| clients).clone())
    }

    /// The webhook handler. It confirms FreshBooks callback handshakes at the clients'
    /// FreshBooks API base, and builds no vendor client.
    pub fn webhook(&self, config: WebhookConfig) -> Result<WebhookHandler, AppError> {
        let callbacks = CallbacksClient::with_base_url(&self.clients_config.freshbooks_api_base)?;
        let deps = WebhookDeps {
            queue: self.ports.queue.clone(),
            store: self.ports.store.clone(),
            secrets: self.ports.secrets.clone(),
            clock: self.ports.clock.clone(),
            freshbooks: Arc::new(callbacks),
        };
        Ok(WebhookHandler::new(deps, config))
    }

    /// Whether a flow of this build writes to `target` (so its queue has a worker).
    pub fn has_worker(target: Vendor) -> bool {
        FLOWS.iter().any(|f| f.target == target)
    }

    /// The handler of `target`'s queue: every flow of [`FLOWS`] that writes to `target`.
    pub(crate) fn target_handler(
        &self,
        target: Vendor,
    ) -> Result<Arc<dyn TargetHandler>, AppError> {
        let connections = Arc::new(CachedConnections::new(
            self.ports.store.clone() as Arc<dyn ConnectionStore>,
            self.connections_ttl,
        ));
        let deps = FlowDeps {
            clients: self.clients()? as Arc<dyn VendorClients>,
            id_map: self.ports.store.clone(),
            clock: self.ports.clock.clone(),
        };
        let dispatch = TargetDispatch::for_target(target, connections, &deps)
            .ok_or(AppError::NoWorker(target))?;
        Ok(Arc::new(dispatch))
    }

    /// `target`'s worker: the harness around `App::target_handler`, on `config`'s queue.
    pub fn worker(&self, target: Vendor, config: HarnessConfig) -> Result<Harness, AppError> {
        Ok(Harness::new(
            self.ports.queue.clone(),
            self.ports.store.clone(),
            self.ports.clock.clone(),
            self.target_handler(target)?,
            config,
        ))
    }

    /// The poller, on the same clients (and token managers) as this instance's workers.
    pub fn poller(&self, config: PollerConfig) -> Result<Poller, AppError> {
        let clients = self.clients()?;
        let deps = PollerDeps {
            queue: self.ports.queue.clone(),
            store: self.ports.store.clone(),
            clock: self.ports.clock.clone(),
            refreshers: clients.token_refreshers(),
            clients,
        };
        Ok(Poller::new(deps, config))
    }
}
